/*
 * The routing policy: who may send what to whom (docs/POLICY.md).
 *
 * A policy is parsed whole or not at all; once made it is read-only, so
 * that any number of threads may decide with it while a newer one is
 * loaded. Default deny: the first rule that matches a (sender, recipient)
 * pair decides, and every decision names its rule.
 */
#ifndef ENLACE_POLICY_H
#define ENLACE_POLICY_H

#include <stdio.h>

#include "enlace/keys.h"

#define POLICY_MAX_BYTES ((size_t)1 << 20)
#define POLICY_NAME_MAX 64
#define POLICY_DEFAULT_RULE "default-deny"

struct policy;

/* What a rule is matched against: one recipient of one message. */
struct policy_query {
	const char *from_id, *from_country;
	int from_kind;			/* enum enl_agency_kind */
	const char *to_id, *to_country;
	int to_kind;
	int type;			/* enum enl_msg_type */
	int tlp;			/* enum enl_tlp */
	uint64_t size;			/* the envelope's bytes */
	bool forward;
};

struct policy_decision {
	bool allow;
	char rule[POLICY_NAME_MAX + 1];	/* POLICY_DEFAULT_RULE if none matched */
	unsigned line;			/* the rule's line, 0 for the default */
};

/*
 * Parses a policy. On failure *out is NULL and `err` names the line and
 * what is wrong. ENL_E_MALFORMED, ENL_E_TOO_LARGE, ENL_E_NOMEM.
 */
int policy_parse(const char *text, size_t len, struct policy **out, char *err,
		 size_t err_cap) ENL_WUR;
/* Reads and parses a file; also gives its SHA-256 (for the log). */
int policy_load(const char *path, struct policy **out, uint8_t hash[32], char *err,
		size_t err_cap) ENL_WUR;
void policy_free(struct policy *p);

size_t policy_rule_count(const struct policy *p);

void policy_decide(const struct policy *p, const struct policy_query *q,
		   struct policy_decision *d);

/* Fills the sender's or recipient's side of a query from its card. */
void policy_query_from(struct policy_query *q, const struct enl_card *c);
void policy_query_to(struct policy_query *q, const struct enl_card *c);

/*
 * Writes, for each rule in order until the one that decides, whether it
 * matches and, if not, the first condition that fails; then the
 * decision. One line each.
 */
void policy_explain(const struct policy *p, const struct policy_query *q, FILE *out);

/*
 * Lints: agency ids not in `dir` (if not NULL), rules that can never
 * decide because an earlier rule matches everything they match
 * (shadowed) or everything at all (unreachable). One line per finding to
 * `out`; returns the number of findings.
 */
size_t policy_lint(const struct policy *p, const struct enl_directory *dir, FILE *out);

/* Names, for the command line and the log. */
const char *policy_type_name(int type);
const char *policy_tlp_name(int tlp);
int policy_type_parse(const char *s);	/* 0 if unknown */
int policy_tlp_parse(const char *s);	/* 0 if unknown */

#endif
