/*
 * The routing policy (policy.h, docs/POLICY.md): its decisions, the
 * explanation of one, and the lint of a whole policy.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "policy_int.h"

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

int
set_add(struct set *s, const char *v)
{
	policy_id *n;

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return ENL_OK;
	s->max = MAX_VALUES;
	if ((n = enl_vec_push(s)) == NULL)
		return s->n == MAX_VALUES ? ENL_E_TOO_LARGE : ENL_E_NOMEM;
	snprintf(*n, sizeof(*n), "%s", v);
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
	for (size_t i = 0; i < p->rules.n; i++) {
		side_free(&p->rules.v[i].from);
		side_free(&p->rules.v[i].to);
	}
	for (size_t i = 0; i < p->groups.n; i++)
		set_free(&p->groups.v[i].countries);
	enl_vec_free(&p->rules);
	enl_vec_free(&p->groups);
	free(p);
}

size_t
policy_rule_count(const struct policy *p)
{
	return p->rules.n;
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

	for (size_t i = 0; i < p->rules.n; i++)
		if (rule_fails(&p->rules.v[i], q, buf, sizeof(buf)) == NULL) {
			d->allow = p->rules.v[i].allow;
			snprintf(d->rule, sizeof(d->rule), "%s", p->rules.v[i].name);
			d->line = p->rules.v[i].line;
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
	for (size_t i = 0; i < p->rules.n; i++) {
		const struct rule *r = &p->rules.v[i];
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

	for (size_t i = 0; i < p->rules.n; i++) {
		const struct rule *r = &p->rules.v[i];
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
			const struct rule *a = &p->rules.v[j];
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
