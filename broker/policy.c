/* The routing policy: see policy.h and docs/POLICY.md. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "policy.h"

#define MAX_WORDS 256
#define MAX_VALUES 256

/* One condition on one side: the value must be one of the set. */
enum dim { DIM_AGENCY, DIM_KIND, DIM_COUNTRY, DIM_COUNT };

struct set {
	bool used;
	size_t n;
	char (*v)[ENL_ID_MAX + 1];	/* agency ids or country codes */
	uint32_t kinds;			/* DIM_KIND: bit k for kind k */
	char what[ENL_ID_MAX + 16];	/* how it was written, for explain */
};

struct side {
	bool any;
	/* a side may name several country sets ("country AR and group
	 * MERCOSUR"): each must hold */
	struct set c[DIM_COUNT];
	struct set groups[8];
	size_t n_groups;
};

struct rule {
	char name[POLICY_NAME_MAX + 1];
	bool allow;
	unsigned line;
	bool has_from, has_to;
	struct side from, to;
	bool same_country;
	uint32_t types;		/* 0: any */
	int tlp_max;		/* 0: any */
	uint64_t size_max;	/* 0: any */
	int forward;		/* -1 any, 0 only originals, 1 only forwards */
};

struct group {
	char name[POLICY_NAME_MAX + 1];
	struct set countries;
};

struct policy {
	struct rule *rules;
	size_t n_rules;
	struct group *groups;
	size_t n_groups;
};

/* ---- names ---- */

static const char *const type_names[] = {
	NULL, "CASE_MESSAGE", "FIU_REPORT", "REQUEST", "REPLY", "FORWARD",
	"CONSENT_REQUEST", "CONSENT_DECISION",
};
static const char *const tlp_names[] = {NULL, "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"};

const char *
policy_type_name(int type)
{
	return type > 0 && type < 8 ? type_names[type] : "?";
}

const char *
policy_tlp_name(int tlp)
{
	return tlp > 0 && tlp < 6 ? tlp_names[tlp] : "?";
}

int
policy_type_parse(const char *s)
{
	for (int i = 1; i < 8; i++)
		if (strcasecmp(s, type_names[i]) == 0)
			return i;
	return 0;
}

int
policy_tlp_parse(const char *s)
{
	for (int i = 1; i < 6; i++)
		if (strcasecmp(s, tlp_names[i]) == 0)
			return i;
	if (strcasecmp(s, "AMBER_STRICT") == 0 || strcasecmp(s, "AMBER-STRICT") == 0)
		return 4;
	return 0;
}

/* ---- sets ---- */

static int
set_add(struct set *s, const char *v)
{
	char (*n)[ENL_ID_MAX + 1];

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return ENL_OK;
	if (s->n == MAX_VALUES)
		return ENL_E_TOO_LARGE;
	if ((n = realloc(s->v, (s->n + 1) * sizeof(*n))) == NULL)
		return ENL_E_NOMEM;
	s->v = n;
	snprintf(s->v[s->n++], ENL_ID_MAX + 1, "%s", v);
	return ENL_OK;
}

static bool
set_has(const struct set *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return true;
	return false;
}

/* a ⊆ b */
static bool
set_within(const struct set *a, const struct set *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!set_has(b, a->v[i]))
			return false;
	return true;
}

static void
set_free(struct set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void
side_free(struct side *s)
{
	for (int d = 0; d < DIM_COUNT; d++)
		set_free(&s->c[d]);
	for (size_t i = 0; i < s->n_groups; i++)
		set_free(&s->groups[i]);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		side_free(&p->rules[i].from);
		side_free(&p->rules[i].to);
	}
	for (size_t i = 0; i < p->n_groups; i++)
		set_free(&p->groups[i].countries);
	free(p->rules);
	free(p->groups);
	free(p);
}

size_t
policy_rule_count(const struct policy *p)
{
	return p->n_rules;
}

/* ---- parsing ---- */

struct parser {
	struct policy *p;
	unsigned line;
	char *err;
	size_t cap;
};

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *ps, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->cap, "line %u: %s", ps->line, msg);
	return ENL_E_MALFORMED;
}

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > POLICY_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* Splits a line into words at blanks and commas (the line is modified). */
static size_t
split(char *line, char *words[MAX_WORDS])
{
	size_t n = 0;

	for (char *p = line; *p && n < MAX_WORDS;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			*p++ = '\0';
		if (*p == '\0')
			break;
		words[n++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != ',')
			p++;
	}
	return n;
}

static const struct group *
group_find(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (strcmp(p->groups[i].name, name) == 0)
			return &p->groups[i];
	return NULL;
}

static int
parse_group(struct parser *ps, char **w, size_t n)
{
	struct group *g, *ng;
	size_t len;
	int rc;

	/* group NAME: CC CC ... */
	if (n < 3)
		return perr(ps, "a group is: group NAME: COUNTRY COUNTRY ...");
	len = strlen(w[1]);
	if (len < 2 || w[1][len - 1] != ':')
		return perr(ps, "a colon must follow the group's name");
	w[1][len - 1] = '\0';
	if (!name_ok(w[1]))
		return perr(ps, "'%s' is not a valid name", w[1]);
	if (group_find(ps->p, w[1]) != NULL)
		return perr(ps, "group %s is defined twice", w[1]);
	if ((ng = realloc(ps->p->groups, (ps->p->n_groups + 1) * sizeof(*ng))) == NULL)
		return ENL_E_NOMEM;
	ps->p->groups = ng;
	g = &ng[ps->p->n_groups++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", w[1]);
	for (size_t i = 2; i < n; i++) {
		if (!enl_country_valid(w[i]))
			return perr(ps, "'%s' is not a country code (2 to 8 letters A-Z)", w[i]);
		if ((rc = set_add(&g->countries, w[i])) != ENL_OK)
			return rc == ENL_E_TOO_LARGE ? perr(ps, "too many countries") : rc;
	}
	return ENL_OK;
}

/* from|to SEL [and SEL]... */
static int
parse_side(struct parser *ps, struct rule *r, bool to, char **w, size_t n)
{
	struct side *s = to ? &r->to : &r->from;
	size_t i = 1;
	int rc;

	if ((to && r->has_to) || (!to && r->has_from))
		return perr(ps, "'%s' twice in rule %s", w[0], r->name);
	if (to)
		r->has_to = true;
	else
		r->has_from = true;
	if (n < 2)
		return perr(ps, "%s what? (any, agency, kind, country, group%s)", w[0],
			    to ? ", same-country" : "");
	while (i < n) {
		const char *sel = w[i++];
		struct set *set = NULL;
		bool is_group = false;
		size_t start = i;
		if (strcasecmp(sel, "any") == 0) {
			s->any = true;
		} else if (to && strcasecmp(sel, "same-country") == 0) {
			r->same_country = true;
		} else if (strcasecmp(sel, "agency") == 0) {
			set = &s->c[DIM_AGENCY];
		} else if (strcasecmp(sel, "kind") == 0) {
			set = &s->c[DIM_KIND];
		} else if (strcasecmp(sel, "country") == 0) {
			set = &s->c[DIM_COUNTRY];
		} else if (strcasecmp(sel, "group") == 0) {
			if (s->n_groups == sizeof(s->groups) / sizeof(s->groups[0]))
				return perr(ps, "too many groups on one side");
			set = &s->groups[s->n_groups++];
			is_group = true;
		} else {
			return perr(ps, "unknown selector '%s' (any, agency, kind, country, group%s)",
				    sel, to ? ", same-country" : "");
		}
		if (set != NULL && set->used && !is_group)
			return perr(ps, "'%s' twice on one side", sel);
		if (set != NULL) {
			set->used = true;
			snprintf(set->what, sizeof(set->what), "%s", sel);
		}
		for (; i < n && strcasecmp(w[i], "and") != 0; i++) {
			if (set == NULL)
				return perr(ps, "unexpected '%s' after %s", w[i], sel);
			if (set == &s->c[DIM_KIND]) {
				int k = enl_kind_parse(w[i]);
				if (k == 0)
					return perr(ps, "unknown kind '%s'", w[i]);
				set->kinds |= 1u << k;
			} else if (set == &s->c[DIM_AGENCY]) {
				if (!enl_id_valid(w[i]))
					return perr(ps, "'%s' is not an agency id", w[i]);
				if ((rc = set_add(set, w[i])) != ENL_OK)
					return rc == ENL_E_TOO_LARGE ? perr(ps, "too many values") : rc;
			} else if (set == &s->c[DIM_COUNTRY]) {
				if (!enl_country_valid(w[i]))
					return perr(ps, "'%s' is not a country code", w[i]);
				if ((rc = set_add(set, w[i])) != ENL_OK)
					return rc == ENL_E_TOO_LARGE ? perr(ps, "too many values") : rc;
			} else if (is_group) {
				const struct group *g = group_find(ps->p, w[i]);
				if (g == NULL)
					return perr(ps, "unknown group '%s' (define it above)", w[i]);
				for (size_t k = 0; k < g->countries.n; k++)
					if ((rc = set_add(set, g->countries.v[k])) != ENL_OK)
						return rc == ENL_E_TOO_LARGE ? perr(ps, "too many values")
									     : rc;
			}
		}
		if (set != NULL && i == start)
			return perr(ps, "%s needs at least one value", sel);
		if (i < n) {
			i++;	/* "and" */
			if (i == n)
				return perr(ps, "'and' needs a selector after it");
		}
	}
	if (s->any && (s->n_groups > 0 || s->c[DIM_AGENCY].used || s->c[DIM_KIND].used ||
		       s->c[DIM_COUNTRY].used))
		return perr(ps, "'any' with other selectors on the same side");
	if (!s->any && !(s->n_groups > 0 || s->c[DIM_AGENCY].used || s->c[DIM_KIND].used ||
			 s->c[DIM_COUNTRY].used)) {
		if (!(to && r->same_country))
			return perr(ps, "%s needs a selector", w[0]);
		s->any = true;	/* "to same-country" alone */
	}
	return ENL_OK;
}

static int
parse_limit(struct parser *ps, char **w, size_t n, const char *what)
{
	/* tlp up to LEVEL | size up to N */
	if (n != 4 || strcasecmp(w[1], "up") != 0 || strcasecmp(w[2], "to") != 0)
		return perr(ps, "write: %s up to %s", what,
			    strcmp(what, "tlp") == 0 ? "LEVEL" : "SIZE");
	return ENL_OK;
}

static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return ENL_E_MALFORMED;
	v = strtoull(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end != '\0' || v == 0 || v > ((uint64_t)1 << 40))
		return ENL_E_MALFORMED;
	*out = v;
	return ENL_OK;
}

static int
parse_condition(struct parser *ps, struct rule *r, char **w, size_t n)
{
	if (strcasecmp(w[0], "from") == 0 || strcasecmp(w[0], "to") == 0)
		return parse_side(ps, r, strcasecmp(w[0], "to") == 0, w, n);
	if (strcasecmp(w[0], "type") == 0) {
		if (r->types != 0)
			return perr(ps, "'type' twice in rule %s", r->name);
		if (n < 2)
			return perr(ps, "type what?");
		for (size_t i = 1; i < n; i++) {
			int t = policy_type_parse(w[i]);
			if (t == 0)
				return perr(ps, "unknown message type '%s'", w[i]);
			r->types |= 1u << t;
		}
		return ENL_OK;
	}
	if (strcasecmp(w[0], "tlp") == 0) {
		if (r->tlp_max != 0)
			return perr(ps, "'tlp' twice in rule %s", r->name);
		if (parse_limit(ps, w, n, "tlp") != ENL_OK)
			return ENL_E_MALFORMED;
		if ((r->tlp_max = policy_tlp_parse(w[3])) == 0)
			return perr(ps, "unknown TLP level '%s' (CLEAR, GREEN, AMBER, AMBER+STRICT, "
				    "RED)", w[3]);
		return ENL_OK;
	}
	if (strcasecmp(w[0], "size") == 0) {
		if (r->size_max != 0)
			return perr(ps, "'size' twice in rule %s", r->name);
		if (parse_limit(ps, w, n, "size") != ENL_OK)
			return ENL_E_MALFORMED;
		if (parse_size(w[3], &r->size_max) != ENL_OK)
			return perr(ps, "'%s' is not a size (bytes, or with K, M, G)", w[3]);
		return ENL_OK;
	}
	if (strcasecmp(w[0], "forward") == 0) {
		if (r->forward != -1)
			return perr(ps, "'forward' twice in rule %s", r->name);
		if (n != 2 || (strcasecmp(w[1], "yes") != 0 && strcasecmp(w[1], "no") != 0))
			return perr(ps, "write: forward yes (only forwards) or forward no (only "
				    "originals)");
		r->forward = strcasecmp(w[1], "yes") == 0;
		return ENL_OK;
	}
	return perr(ps, "unknown condition '%s' (from, to, type, tlp, size, forward)", w[0]);
}

static int
parse_rule(struct parser *ps, char **w, size_t n)
{
	struct rule *r, *nr;
	size_t len;

	/* rule NAME: allow|deny */
	if (n != 3)
		return perr(ps, "a rule starts: rule NAME: allow (or deny)");
	len = strlen(w[1]);
	if (len < 2 || w[1][len - 1] != ':')
		return perr(ps, "a colon must follow the rule's name");
	w[1][len - 1] = '\0';
	if (!name_ok(w[1]) || strcmp(w[1], POLICY_DEFAULT_RULE) == 0)
		return perr(ps, "'%s' is not a valid rule name", w[1]);
	for (size_t i = 0; i < ps->p->n_rules; i++)
		if (strcmp(ps->p->rules[i].name, w[1]) == 0)
			return perr(ps, "two rules are named %s", w[1]);
	if (strcasecmp(w[2], "allow") != 0 && strcasecmp(w[2], "deny") != 0)
		return perr(ps, "a rule says allow or deny, not '%s'", w[2]);
	if ((nr = realloc(ps->p->rules, (ps->p->n_rules + 1) * sizeof(*nr))) == NULL)
		return ENL_E_NOMEM;
	ps->p->rules = nr;
	r = &nr[ps->p->n_rules++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", w[1]);
	r->allow = strcasecmp(w[2], "allow") == 0;
	r->line = ps->line;
	r->forward = -1;
	return ENL_OK;
}

static int
rule_complete(struct parser *ps, const struct rule *r)
{
	if (r != NULL && (!r->has_from || !r->has_to)) {
		ps->line = r->line;
		return perr(ps, "rule %s needs both a 'from' and a 'to' line", r->name);
	}
	return ENL_OK;
}

int
policy_parse(const char *text, size_t len, struct policy **out, char *err, size_t err_cap)
{
	struct parser ps = {NULL, 0, err, err_cap};
	struct rule *current = NULL;
	char *copy, *line, *next;
	int rc = ENL_OK;

	*out = NULL;
	err[0] = '\0';
	if (len > POLICY_MAX_BYTES) {
		snprintf(err, err_cap, "the policy is larger than %zu bytes", POLICY_MAX_BYTES);
		return ENL_E_TOO_LARGE;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, err_cap, "the policy holds a NUL byte");
		return ENL_E_MALFORMED;
	}
	if ((ps.p = calloc(1, sizeof(*ps.p))) == NULL || (copy = malloc(len + 1)) == NULL) {
		free(ps.p);
		return ENL_E_NOMEM;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line != NULL && rc == ENL_OK; line = next) {
		char *words[MAX_WORDS], *hash;
		bool indented = line[0] == ' ' || line[0] == '\t';
		size_t n;
		ps.line++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		for (char *c = line; *c; c++)
			if ((unsigned char)*c < 0x20 && *c != '\t' && *c != '\r')
				rc = perr(&ps, "a control character");
		for (char *c = line; *c; c++)
			if (*c == '\r')
				*c = ' ';
		if (rc != ENL_OK)
			break;
		if ((n = split(line, words)) == 0)
			continue;
		if (n == MAX_WORDS) {
			rc = perr(&ps, "too many words on one line");
			break;
		}
		if (indented) {
			if (current == NULL)
				rc = perr(&ps, "an indented line belongs to a rule, and there is none "
					  "above it");
			else
				rc = parse_condition(&ps, current, words, n);
			continue;
		}
		if ((rc = rule_complete(&ps, current)) != ENL_OK)
			break;
		current = NULL;
		if (strcasecmp(words[0], "group") == 0) {
			rc = parse_group(&ps, words, n);
		} else if (strcasecmp(words[0], "rule") == 0) {
			if ((rc = parse_rule(&ps, words, n)) == ENL_OK)
				current = &ps.p->rules[ps.p->n_rules - 1];
		} else {
			rc = perr(&ps, "expected 'group' or 'rule', not '%s' (a rule's conditions "
				  "are indented)", words[0]);
		}
	}
	if (rc == ENL_OK)
		rc = rule_complete(&ps, current);
	if (rc == ENL_OK && ps.p->n_rules == 0) {
		snprintf(err, err_cap, "no rules: everything would be denied");
		rc = ENL_E_MALFORMED;
	}
	free(copy);
	if (rc != ENL_OK) {
		policy_free(ps.p);
		return rc;
	}
	*out = ps.p;
	return ENL_OK;
}

int
policy_load(const char *path, struct policy **out, uint8_t hash[32], char *err, size_t err_cap)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, POLICY_MAX_BYTES, &buf, &len);

	*out = NULL;
	if (rc != ENL_OK) {
		snprintf(err, err_cap, "%s: %s", path, enl_strerror(rc));
		return rc;
	}
	crypto_hash_sha256(hash, buf, len);
	rc = policy_parse((const char *)buf, len, out, err, err_cap);
	free(buf);
	return rc;
}

/* ---- deciding ---- */

void
policy_query_from(struct policy_query *q, const struct enl_card *c)
{
	q->from_id = c->id;
	q->from_kind = (int)c->kind;
	q->from_country = c->country;
}

void
policy_query_to(struct policy_query *q, const struct enl_card *c)
{
	q->to_id = c->id;
	q->to_kind = (int)c->kind;
	q->to_country = c->country;
}

/* NULL if the side holds for (id, kind, country); else what fails. */
static const char *
side_fails(const struct side *s, const char *id, int kind, const char *country)
{
	if (s->any)
		return NULL;
	if (s->c[DIM_AGENCY].used && !set_has(&s->c[DIM_AGENCY], id))
		return "agency";
	if (s->c[DIM_KIND].used && !(s->c[DIM_KIND].kinds & (1u << kind)))
		return "kind";
	if (s->c[DIM_COUNTRY].used && !set_has(&s->c[DIM_COUNTRY], country))
		return "country";
	for (size_t i = 0; i < s->n_groups; i++)
		if (!set_has(&s->groups[i], country))
			return "country";
	return NULL;
}

/* NULL if the rule matches; else the first condition that fails. */
static const char *
rule_fails(const struct rule *r, const struct policy_query *q, char *buf, size_t cap)
{
	const char *f;

	if ((f = side_fails(&r->from, q->from_id, q->from_kind, q->from_country)) != NULL) {
		snprintf(buf, cap, "the sender's %s (%s) %s", f,
			 strcmp(f, "agency") == 0 ? q->from_id
			 : strcmp(f, "kind") == 0 ? (enl_kind_name(q->from_kind) ? enl_kind_name(q->from_kind) : "?")
			 : q->from_country,
			 "is not one the rule names");
		return buf;
	}
	if ((f = side_fails(&r->to, q->to_id, q->to_kind, q->to_country)) != NULL) {
		snprintf(buf, cap, "the recipient's %s (%s) %s", f,
			 strcmp(f, "agency") == 0 ? q->to_id
			 : strcmp(f, "kind") == 0 ? (enl_kind_name(q->to_kind) ? enl_kind_name(q->to_kind) : "?")
			 : q->to_country,
			 "is not one the rule names");
		return buf;
	}
	if (r->same_country && strcmp(q->from_country, q->to_country) != 0)
		return "sender and recipient are not of the same country";
	if (r->types != 0 && (q->type <= 0 || q->type >= 32 || !(r->types & (1u << q->type)))) {
		snprintf(buf, cap, "type %s is not one the rule names", policy_type_name(q->type));
		return buf;
	}
	if (r->tlp_max != 0 && (q->tlp <= 0 || q->tlp > r->tlp_max)) {
		snprintf(buf, cap, "TLP:%s is above the rule's TLP:%s", policy_tlp_name(q->tlp),
			 policy_tlp_name(r->tlp_max));
		return buf;
	}
	if (r->size_max != 0 && q->size > r->size_max) {
		snprintf(buf, cap, "%llu bytes is over the rule's %llu",
			 (unsigned long long)q->size, (unsigned long long)r->size_max);
		return buf;
	}
	if (r->forward != -1 && r->forward != (int)q->forward)
		return r->forward ? "the rule is for forwards only" : "the rule is not for forwards";
	return NULL;
}

void
policy_decide(const struct policy *p, const struct policy_query *q, struct policy_decision *d)
{
	char buf[160];

	for (size_t i = 0; i < p->n_rules; i++)
		if (rule_fails(&p->rules[i], q, buf, sizeof(buf)) == NULL) {
			d->allow = p->rules[i].allow;
			snprintf(d->rule, sizeof(d->rule), "%s", p->rules[i].name);
			d->line = p->rules[i].line;
			return;
		}
	d->allow = false;
	snprintf(d->rule, sizeof(d->rule), "%s", POLICY_DEFAULT_RULE);
	d->line = 0;
}

void
policy_explain(const struct policy *p, const struct policy_query *q, FILE *out)
{
	char buf[160];

	fprintf(out, "%s (%s, %s) to %s (%s, %s), %s, TLP:%s, %llu bytes%s\n", q->from_id,
		enl_kind_name(q->from_kind) ? enl_kind_name(q->from_kind) : "?", q->from_country,
		q->to_id, enl_kind_name(q->to_kind) ? enl_kind_name(q->to_kind) : "?",
		q->to_country, policy_type_name(q->type), policy_tlp_name(q->tlp),
		(unsigned long long)q->size, q->forward ? ", a forward" : "");
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];
		const char *why = rule_fails(r, q, buf, sizeof(buf));
		if (why != NULL) {
			fprintf(out, "  rule %s (line %u): does not match: %s\n", r->name, r->line, why);
			continue;
		}
		fprintf(out, "  rule %s (line %u): matches\n%s by rule %s (line %u)\n", r->name,
			r->line, r->allow ? "ALLOW" : "DENY", r->name, r->line);
		return;
	}
	fprintf(out, "DENY by %s: no rule matches\n", POLICY_DEFAULT_RULE);
}

/* ---- linting ---- */

/* Every pair side b admits, side a admits too. */
static bool
side_covers(const struct side *a, const struct side *b)
{
	if (a->any)
		return true;
	if (b->any)
		return false;
	if (a->c[DIM_AGENCY].used &&
	    !(b->c[DIM_AGENCY].used && set_within(&b->c[DIM_AGENCY], &a->c[DIM_AGENCY])))
		return false;
	if (a->c[DIM_KIND].used && !(b->c[DIM_KIND].used &&
				     (b->c[DIM_KIND].kinds & ~a->c[DIM_KIND].kinds) == 0))
		return false;
	/* each country set of a must contain one of b's country sets */
	{
		const struct set *as[9], *bs[9];
		size_t na = 0, nb = 0;
		if (a->c[DIM_COUNTRY].used)
			as[na++] = &a->c[DIM_COUNTRY];
		for (size_t i = 0; i < a->n_groups; i++)
			as[na++] = &a->groups[i];
		if (b->c[DIM_COUNTRY].used)
			bs[nb++] = &b->c[DIM_COUNTRY];
		for (size_t i = 0; i < b->n_groups; i++)
			bs[nb++] = &b->groups[i];
		for (size_t i = 0; i < na; i++) {
			bool found = false;
			for (size_t k = 0; k < nb && !found; k++)
				found = set_within(bs[k], as[i]);
			if (!found)
				return false;
		}
	}
	return true;
}

/* Every query rule b matches, rule a matches too. */
static bool
rule_covers(const struct rule *a, const struct rule *b)
{
	return side_covers(&a->from, &b->from) && side_covers(&a->to, &b->to) &&
	       (!a->same_country || b->same_country) &&
	       (a->types == 0 || (b->types != 0 && (b->types & ~a->types) == 0)) &&
	       (a->tlp_max == 0 || (b->tlp_max != 0 && b->tlp_max <= a->tlp_max)) &&
	       (a->size_max == 0 || (b->size_max != 0 && b->size_max <= a->size_max)) &&
	       (a->forward == -1 || a->forward == b->forward);
}

static bool
matches_all(const struct rule *r)
{
	return r->from.any && r->to.any && !r->same_country && r->types == 0 &&
	       r->tlp_max == 0 && r->size_max == 0 && r->forward == -1;
}

size_t
policy_lint(const struct policy *p, const struct enl_directory *dir, FILE *out)
{
	size_t findings = 0;

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];
		const struct side *sides[2] = {&r->from, &r->to};
		for (int s = 0; dir != NULL && s < 2; s++)
			for (size_t k = 0; k < sides[s]->c[DIM_AGENCY].n; k++)
				if (enl_directory_find(dir, sides[s]->c[DIM_AGENCY].v[k]) == NULL) {
					fprintf(out, "line %u: rule %s names agency %s, which is not "
						"in the directory\n", r->line, r->name,
						sides[s]->c[DIM_AGENCY].v[k]);
					findings++;
				}
		for (size_t j = 0; j < i; j++) {
			const struct rule *a = &p->rules[j];
			if (matches_all(a)) {
				fprintf(out, "line %u: rule %s is unreachable: rule %s (line %u), "
					"above it, matches everything\n", r->line, r->name, a->name,
					a->line);
				findings++;
				break;
			}
			if (rule_covers(a, r)) {
				fprintf(out, "line %u: rule %s is shadowed by rule %s (line %u): it "
					"matches everything %s matches, so %s never decides\n", r->line,
					r->name, a->name, a->line, r->name, r->name);
				findings++;
				break;
			}
		}
	}
	return findings;
}
