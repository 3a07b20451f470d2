/*
 * The routing policy's text (docs/POLICY.md), parsed whole or refused
 * whole: a keyword table per statement, each error naming its line.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "policy_int.h"

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
	for (size_t i = 0; i < p->groups.n; i++)
		if (strcmp(p->groups.v[i].name, name) == 0)
			return &p->groups.v[i];
	return NULL;
}

static int
parse_group(struct parser *ps, char **w, size_t n)
{
	struct group *g;
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
	if ((g = enl_vec_push(&ps->p->groups)) == NULL)
		return perr(ps, "out of memory, or more than %d groups", GROUPS_MAX);
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
	struct rule *r;
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
	for (size_t i = 0; i < ps->p->rules.n; i++)
		if (strcmp(ps->p->rules.v[i].name, w[1]) == 0)
			return perr(ps, "two rules are named %s", w[1]);
	if (strcasecmp(w[2], "allow") != 0 && strcasecmp(w[2], "deny") != 0)
		return perr(ps, "a rule says allow or deny, not '%s'", w[2]);
	if ((r = enl_vec_push(&ps->p->rules)) == NULL)
		return perr(ps, "out of memory, or more than %d rules", RULES_MAX);
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
	if ((ps.p = calloc(1, sizeof(*ps.p))) != NULL) {
		ps.p->rules.max = RULES_MAX;
		ps.p->groups.max = GROUPS_MAX;
	}
	if (ps.p == NULL || (copy = malloc(len + 1)) == NULL) {
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
				current = &ps.p->rules.v[ps.p->rules.n - 1];
		} else {
			rc = perr(&ps, "expected 'group' or 'rule', not '%s' (a rule's conditions "
				  "are indented)", words[0]);
		}
	}
	if (rc == ENL_OK)
		rc = rule_complete(&ps, current);
	if (rc == ENL_OK && ps.p->rules.n == 0) {
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
