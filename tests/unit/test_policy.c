/* The routing policy (broker/policy.h, docs/POLICY.md): parsing, each
 * condition, first match wins, default deny, refusals whole, lint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/proto.h"
#include "harness.h"
#include "policy.h"

static struct policy *
parse(const char *text, char *err, size_t cap)
{
	struct policy *p = NULL;

	err[0] = '\0';
	if (policy_parse(text, strlen(text), &p, err, cap) != ENL_OK)
		return NULL;
	return p;
}

static struct policy_query
query(const char *from, const char *fc, int fk, const char *to, const char *tc, int tk)
{
	struct policy_query q = {from, fc, fk, to, tc, tk, ENL_MSG_CASE_MESSAGE, ENL_TLP_AMBER,
				 1000, false};

	return q;
}

static const char mercosur[] =
	"# the example of docs/POLICY.md\n"
	"group MERCOSUR: AR BR PY UY BO\n"
	"\n"
	"rule no-red-abroad: deny\n"
	"    from any\n"
	"    to any\n"
	"    tlp up to RED\n"
	"    type FIU_REPORT\n"
	"rule mercosur-justice: allow\n"
	"    from group MERCOSUR and kind POLICE, PROSECUTOR\n"
	"    to group MERCOSUR and kind POLICE, PROSECUTOR, JUDICIAL\n"
	"    type CASE_MESSAGE, REQUEST, REPLY\n"
	"    tlp up to AMBER\n"
	"rule fiu-small: allow\n"
	"    from kind FIU\n"
	"    to kind FIU and same-country\n"
	"    size up to 1K\n"
	"rule no-forwards-to-us: deny\n"
	"    from any\n"
	"    to agency US-FINCEN\n"
	"    forward yes\n"
	"rule fincen: allow\n"
	"    from country AR\n"
	"    to agency US-FINCEN\n";

static void
test_decisions(void)
{
	char err[300];
	struct policy *p = parse(mercosur, err, sizeof(err));
	struct policy_decision d;
	struct policy_query q;

	REQUIRE(p != NULL);
	CHECK(policy_rule_count(p) == 5);
	/* group and kind on both sides */
	q = query("AR-PF", "AR", ENL_KIND_POLICE, "BR-PF", "BR", ENL_KIND_POLICE);
	policy_decide(p, &q, &d);
	CHECK(d.allow && strcmp(d.rule, "mercosur-justice") == 0 && d.line == 9);
	/* tlp up to AMBER: RED is over it, and nothing below allows */
	q.tlp = ENL_TLP_RED;
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, POLICY_DEFAULT_RULE) == 0 && d.line == 0);
	/* a type not listed */
	q = query("AR-PF", "AR", ENL_KIND_POLICE, "BR-PF", "BR", ENL_KIND_POLICE);
	q.type = ENL_MSG_FORWARD;
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, POLICY_DEFAULT_RULE) == 0);
	/* a country outside the group */
	q = query("AR-PF", "AR", ENL_KIND_POLICE, "CL-PDI", "CL", ENL_KIND_POLICE);
	policy_decide(p, &q, &d);
	CHECK(!d.allow);
	/* a kind not listed on the recipient's side */
	q = query("AR-PF", "AR", ENL_KIND_POLICE, "BR-COAF", "BR", ENL_KIND_FIU);
	policy_decide(p, &q, &d);
	CHECK(!d.allow);
	/* first match wins: a deny above an allow */
	q = query("AR-UIF", "AR", ENL_KIND_FIU, "AR-UIF2", "AR", ENL_KIND_FIU);
	q.type = ENL_MSG_FIU_REPORT;
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, "no-red-abroad") == 0 && d.line == 4);
	/* same-country and size: 1K is 1024 bytes */
	q.type = ENL_MSG_CASE_MESSAGE;
	q.size = 1024;
	policy_decide(p, &q, &d);
	CHECK(d.allow && strcmp(d.rule, "fiu-small") == 0);
	q.size = 1025;
	policy_decide(p, &q, &d);
	CHECK(!d.allow);
	q.size = 10;
	q.to_country = "UY";
	policy_decide(p, &q, &d);
	CHECK(!d.allow);	/* not the sender's country */
	/* forward yes denies before the agency rule allows */
	q = query("AR-UIF", "AR", ENL_KIND_FIU, "US-FINCEN", "US", ENL_KIND_FIU);
	q.forward = true;
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, "no-forwards-to-us") == 0);
	q.forward = false;
	policy_decide(p, &q, &d);
	CHECK(d.allow && strcmp(d.rule, "fincen") == 0);
	q.from_country = "BR";
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, POLICY_DEFAULT_RULE) == 0);
	policy_free(p);
}

/* A policy without a rule would deny everything: refused, not put in force. */
static void
test_no_rules_refused(void)
{
	char err[300];
	struct policy *p = parse("# nothing\ngroup G: AR\n\n", err, sizeof(err));

	CHECK(p == NULL);
	CHECK(strstr(err, "no rules") != NULL);
	policy_free(p);
}

/* No rule matching: default deny, named. */
static void
test_default_deny(void)
{
	char err[300];
	struct policy *p = parse("rule only-ar: allow\n    from country AR\n    to any\n", err,
				 sizeof(err));
	struct policy_query q = query("BR-COAF", "BR", ENL_KIND_FIU, "AR-UIF", "AR", ENL_KIND_FIU);
	struct policy_decision d;

	REQUIRE(p != NULL);
	policy_decide(p, &q, &d);
	CHECK(!d.allow && strcmp(d.rule, POLICY_DEFAULT_RULE) == 0 && d.line == 0);
	policy_free(p);
}

/* A file with any error is refused whole, naming the line. */
static void
test_refused_whole(void)
{
	static const struct {
		const char *text, *says;
	} bad[] = {
		{"rule a: allow\n    from any\n", "line 1"},	/* no `to` */
		{"rule a: allow\n    from any\n    to any\nrule a: deny\n    from any\n    to any\n",
		 "two rules are named a"},
		{"rule a: maybe\n    from any\n    to any\n", "allow or deny"},
		{"rule a: allow\n    from group NOPE\n    to any\n", "NOPE"},
		{"group G: AR\ngroup G: BR\n", "defined twice"},
		{"group G: ar\n", "not a country code"},
		{"rule a: allow\n    from any\n    to any\n    tlp up to PURPLE\n", "line 4"},
		{"rule a: allow\n    from any\n    to any\n    type CASE_MESSAGE\n"
		 "    type REPLY\n", "line 5"},
		{"rule a: allow\n    from same-country\n    to any\n", "line 2"},
		{"rule a: allow\n    from any and kind FIU\n    to any\n", "line 2"},
		{"rule default-deny: allow\n    from any\n    to any\n", "default-deny"},
		{"    from any\n", "line 1"},
	};
	char err[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy *p = parse(bad[i].text, err, sizeof(err));
		CHECK(p == NULL);
		if (strstr(err, bad[i].says) == NULL) {
			harness_failed++;
			fprintf(stderr, "policy %zu: the error '%s' does not say '%s'\n", i, err,
				bad[i].says);
		}
		policy_free(p);
	}
}

static void
test_limits(void)
{
	/* over the file limit: refused before anything is parsed */
	size_t n = POLICY_MAX_BYTES + 1;
	char *big = malloc(n + 1), err[300];
	struct policy *p = NULL;

	REQUIRE(big != NULL);
	memset(big, '#', n);
	big[n] = '\0';
	CHECK_RC(policy_parse(big, n, &p, err, sizeof(err)), ENL_E_TOO_LARGE);
	CHECK(p == NULL);
	free(big);
}

static void
test_lint(void)
{
	char err[300], *out = NULL;
	size_t len = 0, findings;
	struct policy *p = parse("rule everything: allow\n    from any\n    to any\n"
				 "rule never: deny\n    from kind FIU\n    to any\n"
				 "rule also-never: allow\n    from agency AR-UIF\n    to any\n",
				 err, sizeof(err));
	FILE *f = open_memstream(&out, &len);

	REQUIRE(p != NULL && f != NULL);
	findings = policy_lint(p, NULL, f);
	fclose(f);
	CHECK(findings == 2);
	CHECK(strstr(out, "never") != NULL && strstr(out, "also-never") != NULL);
	free(out);
	policy_free(p);
}

static void
test_explain(void)
{
	char err[300], *out = NULL;
	size_t len = 0;
	struct policy *p = parse(mercosur, err, sizeof(err));
	struct policy_query q = query("AR-PF", "AR", ENL_KIND_POLICE, "CL-PDI", "CL",
				      ENL_KIND_POLICE);
	FILE *f = open_memstream(&out, &len);

	REQUIRE(p != NULL && f != NULL);
	policy_explain(p, &q, f);
	fclose(f);
	/* every rule named, and the decision last */
	CHECK(strstr(out, "mercosur-justice") != NULL && strstr(out, "fincen") != NULL);
	CHECK(strstr(out, POLICY_DEFAULT_RULE) != NULL);
	free(out);
	policy_free(p);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	RUN(test_decisions);
	RUN(test_no_rules_refused);
	RUN(test_default_deny);
	RUN(test_refused_whole);
	RUN(test_limits);
	RUN(test_lint);
	RUN(test_explain);
	return harness_done();
}
