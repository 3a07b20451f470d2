/*
 * enlace-broker policy check|explain: the routing policy, offline.
 *
 *   enlace-broker policy check (--config FILE | --policy FILE [--directory FILE
 *                              --authority-pub FILE])
 *   enlace-broker policy explain (--config FILE | --policy FILE --directory FILE
 *                                --authority-pub FILE) --from ID --to ID
 *                                [--type TYPE] --tlp LEVEL [--size N] [--forward] [--json]
 *   enlace-broker policy explain ... --batch   (queries on stdin, JSON lines out)
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "enlace/cli.h"

static const char usage[] =
	"usage: enlace-broker policy check (--config FILE | --policy FILE\n"
	"                                  [--directory FILE --authority-pub FILE])\n"
	"       enlace-broker policy explain (--config FILE | --policy FILE --directory FILE\n"
	"                                    --authority-pub FILE) --from ID --to ID\n"
	"                                    [--type TYPE] --tlp LEVEL [--size BYTES]\n"
	"                                    [--forward] [--json]\n"
	"       enlace-broker policy explain (--config FILE | ...) --batch\n\n"
	"check reads a policy file (docs/POLICY.md) as the broker would and lists what\n"
	"is wrong with it: errors (the broker refuses such a file), agency ids not in\n"
	"the directory, and rules that can never decide (shadowed or unreachable).\n"
	"Exit 0: nothing to say; 1: findings; 2: usage.\n\n"
	"explain says which rule decides for one recipient and why each rule before\n"
	"it does not match. TYPE defaults to CASE_MESSAGE, BYTES to 1024. Exit 0 if\n"
	"allowed, 1 if denied, 2 on a usage error. With --batch it reads one query a\n"
	"line on stdin, 'FROM TO TYPE TLP [SIZE] [forward]', and answers each with a\n"
	"JSON line (from, to, type, tlp, decision, rule, line; or error); exit 0 if\n"
	"every line was a query, 2 if not.\n";

struct popts {
	const char *config, *policy, *directory, *authority_pub, *from, *to, *type, *tlp, *size;
	bool forward, json, batch;
};

static const struct option all_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"policy", required_argument, NULL, 'p'},
	{"directory", required_argument, NULL, 'd'},
	{"authority-pub", required_argument, NULL, 'a'},
	{"from", required_argument, NULL, 'f'},
	{"to", required_argument, NULL, 't'},
	{"type", required_argument, NULL, 'y'},
	{"tlp", required_argument, NULL, 'l'},
	{"size", required_argument, NULL, 's'},
	{"forward", no_argument, NULL, 'w'},
	{"json", no_argument, NULL, 'j'},
	{"batch", no_argument, NULL, 'b'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Takes one option into the struct popts (enl_cli_parse's `set`). */
static const char *
opt_set(void *ctx, int val, const char *arg)
{
	struct popts *o = ctx;

	switch (val) {
	case 'c': o->config = arg; break;
	case 'p': o->policy = arg; break;
	case 'd': o->directory = arg; break;
	case 'a': o->authority_pub = arg; break;
	case 'f': o->from = arg; break;
	case 't': o->to = arg; break;
	case 'y': o->type = arg; break;
	case 'l': o->tlp = arg; break;
	case 's': o->size = arg; break;
	case 'w': o->forward = true; break;
	case 'j': o->json = true; break;
	case 'b': o->batch = true; break;
	}
	return NULL;
}

static int
parse(int argc, char **argv, struct popts *o)
{
	static const struct enl_cli_opts opts = {"enlace-broker policy", all_opts, 'h', opt_set};
	int first, ret;

	memset(o, 0, sizeof(*o));
	if ((ret = enl_cli_parse(&opts, argc, argv, NULL, usage, NULL, o, &first)) >= 0)
		return ret;
	if (first != argc)
		return enl_cli_usage_error("enlace-broker policy", "no argument is taken here",
					   usage);
	return -1;
}

/* The policy (and the directory, if named) from the options or the
 * broker's config. */
static int
load(struct popts *o, struct broker_config *cfg, struct policy **p,
     struct enl_directory **dir)
{
	char err[1200];
	uint8_t hash[32], apk[32];
	int rc;

	if (o->config != NULL) {
		if (config_load(o->config, cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "enlace-broker: %s\n", err);
			return 1;
		}
		o->policy = o->policy ? o->policy : cfg->policy;
		o->directory = o->directory ? o->directory : cfg->directory;
		o->authority_pub = o->authority_pub ? o->authority_pub : cfg->authority_pub;
	}
	if (o->policy == NULL) {
		fprintf(stderr, "enlace-broker policy: name the policy: --config or --policy\n");
		return 2;
	}
	if (policy_load(o->policy, p, hash, err, sizeof(err)) != ENL_OK) {
		fprintf(stderr, "%s: %s\n", o->policy, err);
		return 1;
	}
	if (o->directory != NULL) {
		struct enl_dir_check chk = {apk, 0, 0};
		if (o->authority_pub == NULL) {
			fprintf(stderr, "enlace-broker policy: --directory needs --authority-pub\n");
			return 2;
		}
		if ((rc = enl_authority_pub_read(o->authority_pub, apk)) != ENL_OK ||
		    (rc = enl_directory_load(o->directory, &chk, dir)) != ENL_OK) {
			fprintf(stderr, "%s: %s\n", o->directory, enl_strerror(rc));
			return 1;
		}
	}
	return 0;
}

/* One query from its words: ENL_OK, or a usage error said into why. */
static int
query_make(const struct enl_directory *dir, const char *from_id, const char *to_id,
	   const char *type, const char *tlp, const char *size, bool forward,
	   struct policy_query *q, char *why, size_t cap)
{
	const struct enl_card *from, *to;

	memset(q, 0, sizeof(*q));
	if ((from = enl_directory_find(dir, from_id)) == NULL ||
	    (to = enl_directory_find(dir, to_id)) == NULL) {
		snprintf(why, cap, "%s is not in the directory",
			 from == NULL ? from_id : to_id);
		return ENL_E_INVAL;
	}
	policy_query_from(q, from);
	policy_query_to(q, to);
	q->type = policy_type_parse(type ? type : "CASE_MESSAGE");
	q->tlp = policy_tlp_parse(tlp);
	q->size = 1024;
	q->forward = forward;
	if (size != NULL) {
		char *end;
		q->size = strtoull(size, &end, 10);
		if (*end != '\0' || size[0] < '0' || size[0] > '9') {
			snprintf(why, cap, "the size is in bytes, not '%s'", size);
			return ENL_E_INVAL;
		}
	}
	if (q->type == 0 || q->tlp == 0) {
		snprintf(why, cap, "unknown %s '%s'", q->type == 0 ? "type" : "TLP level",
			 q->type == 0 ? type : tlp);
		return ENL_E_INVAL;
	}
	return ENL_OK;
}

static void
decision_json(const char *const words[4], const struct policy_decision *d, const char *error)
{
	static const char *const names[] = {"from", "to", "type", "tlp"};
	struct enl_json j;

	enl_json_init(&j, stdout);
	enl_json_obj_begin(&j, NULL);
	for (int i = 0; i < 4 && words != NULL; i++)
		if (words[i] != NULL)
			enl_json_str(&j, names[i], words[i]);
	if (error != NULL) {
		enl_json_str(&j, "error", error);
	} else {
		enl_json_str(&j, "decision", d->allow ? "allow" : "deny");
		enl_json_str(&j, "rule", d->rule);
		enl_json_int(&j, "line", d->line);
	}
	enl_json_obj_end(&j);
	enl_json_end(&j);
}

/* The blank-separated words of line (cut in place) into w, at most max:
 * true if there were more. */
static bool
split_words(char *line, const char **w, size_t max, size_t *n)
{
	char *p = line;

	*n = 0;
	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return false;
		if (*n == max)
			return true;
		w[(*n)++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p != '\0')
			*p++ = '\0';
	}
}

/* --batch: a query a line on stdin, a JSON line for each on stdout. */
static int
explain_batch(const struct policy *p, const struct enl_directory *dir)
{
	char line[512], why[200];
	int ret = 0;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		const char *w[6] = {NULL};
		size_t n = 0;
		bool more = split_words(line, w, 6, &n);
		struct policy_query q;
		struct policy_decision d;

		if (n == 0)
			continue;
		bool fwd = n >= 5 && strcmp(w[n - 1], "forward") == 0;
		const char *size = n >= 5 && !(n == 5 && fwd) ? w[4] : NULL;
		if (n < 4 || more || (n == 6 && !fwd)) {
			snprintf(why, sizeof(why), "a query is FROM TO TYPE TLP [SIZE] [forward]");
			ret = 2;
			decision_json(NULL, NULL, why);
		} else if (query_make(dir, w[0], w[1], w[2], w[3], size, fwd, &q, why,
				      sizeof(why)) != ENL_OK) {
			ret = 2;
			decision_json(w, NULL, why);
		} else {
			policy_decide(p, &q, &d);
			decision_json(w, &d, NULL);
		}
	}
	return ret;
}

static int
explain(struct popts *o, const struct policy *p, const struct enl_directory *dir)
{
	struct policy_decision d;
	struct policy_query q;
	char why[200];

	if (dir == NULL || (!o->batch && (o->from == NULL || o->to == NULL || o->tlp == NULL))) {
		fprintf(stderr, "enlace-broker policy explain: needs the directory, --from, --to "
			"and --tlp (or --batch)\n%s", usage);
		return 2;
	}
	if (o->batch)
		return explain_batch(p, dir);
	if (query_make(dir, o->from, o->to, o->type, o->tlp, o->size, o->forward, &q, why,
		       sizeof(why)) != ENL_OK) {
		fprintf(stderr, "enlace-broker policy explain: %s\n", why);
		return 2;
	}
	policy_decide(p, &q, &d);
	if (o->json)
		decision_json(NULL, &d, NULL);
	else
		policy_explain(p, &q, stdout);
	return d.allow ? 0 : 1;
}

int
policy_main(int argc, char **argv)
{
	struct broker_config cfg;
	struct enl_directory *dir = NULL;
	struct policy *p = NULL;
	struct popts o;
	const char *what = argc > 1 ? argv[1] : "";
	int rc;

	if (strcmp(what, "--help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(what, "check") != 0 && strcmp(what, "explain") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = parse(argc - 1, argv + 1, &o)) >= 0)
		return rc;
	if ((rc = load(&o, &cfg, &p, &dir)) != 0) {
		policy_free(p);
		enl_directory_free(dir);
		return rc;
	}
	if (strcmp(what, "check") == 0) {
		size_t n = policy_lint(p, dir, stdout);
		if (n == 0)
			printf("%s: %zu rules, nothing to report\n", o.policy, policy_rule_count(p));
		rc = n == 0 ? 0 : 1;
	} else {
		rc = explain(&o, p, dir);
	}
	policy_free(p);
	enl_directory_free(dir);
	return rc;
}
