/*
 * enlace-broker policy check|explain: the routing policy, offline.
 *
 *   enlace-broker policy check (--config FILE | --policy FILE [--directory FILE
 *                              --authority-pub FILE])
 *   enlace-broker policy explain (--config FILE | --policy FILE --directory FILE
 *                                --authority-pub FILE) --from ID --to ID
 *                                [--type TYPE] --tlp LEVEL [--size N] [--forward] [--json]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

static const char usage[] =
	"usage: enlace-broker policy check (--config FILE | --policy FILE\n"
	"                                  [--directory FILE --authority-pub FILE])\n"
	"       enlace-broker policy explain (--config FILE | --policy FILE --directory FILE\n"
	"                                    --authority-pub FILE) --from ID --to ID\n"
	"                                    [--type TYPE] --tlp LEVEL [--size BYTES]\n"
	"                                    [--forward] [--json]\n\n"
	"check reads a policy file (docs/POLICY.md) as the broker would and lists what\n"
	"is wrong with it: errors (the broker refuses such a file), agency ids not in\n"
	"the directory, and rules that can never decide (shadowed or unreachable).\n"
	"Exit 0: nothing to say; 1: findings; 2: usage.\n\n"
	"explain says which rule decides for one recipient and why each rule before\n"
	"it does not match. TYPE defaults to CASE_MESSAGE, BYTES to 1024. Exit 0 if\n"
	"allowed, 1 if denied, 2 on a usage error.\n";

struct popts {
	const char *config, *policy, *directory, *authority_pub, *from, *to, *type, *tlp, *size;
	bool forward, json;
};

static int
parse(int argc, char **argv, struct popts *o)
{
	static const struct option opts[] = {
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
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'p': o->policy = optarg; break;
		case 'd': o->directory = optarg; break;
		case 'a': o->authority_pub = optarg; break;
		case 'f': o->from = optarg; break;
		case 't': o->to = optarg; break;
		case 'y': o->type = optarg; break;
		case 'l': o->tlp = optarg; break;
		case 's': o->size = optarg; break;
		case 'w': o->forward = true; break;
		case 'j': o->json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			fprintf(stderr, "enlace-broker policy: unknown option or missing value '%s'\n%s",
				argv[optind - 1], usage);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "enlace-broker policy: unexpected '%s'\n%s", argv[optind], usage);
		return 2;
	}
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

static int
explain(struct popts *o, const struct policy *p, const struct enl_directory *dir)
{
	const struct enl_card *from, *to;
	struct policy_decision d;
	struct policy_query q;

	if (dir == NULL || o->from == NULL || o->to == NULL || o->tlp == NULL) {
		fprintf(stderr, "enlace-broker policy explain: needs the directory, --from, --to "
			"and --tlp\n%s", usage);
		return 2;
	}
	memset(&q, 0, sizeof(q));
	if ((from = enl_directory_find(dir, o->from)) == NULL ||
	    (to = enl_directory_find(dir, o->to)) == NULL) {
		fprintf(stderr, "enlace-broker policy explain: %s is not in the directory\n",
			from == NULL ? o->from : o->to);
		return 2;
	}
	policy_query_from(&q, from);
	policy_query_to(&q, to);
	q.type = policy_type_parse(o->type ? o->type : "CASE_MESSAGE");
	q.tlp = policy_tlp_parse(o->tlp);
	q.size = 1024;
	q.forward = o->forward;
	if (o->size != NULL) {
		char *end;
		q.size = strtoull(o->size, &end, 10);
		if (*end != '\0' || o->size[0] < '0' || o->size[0] > '9') {
			fprintf(stderr, "enlace-broker policy explain: --size is in bytes\n");
			return 2;
		}
	}
	if (q.type == 0 || q.tlp == 0) {
		fprintf(stderr, "enlace-broker policy explain: unknown %s '%s'\n",
			q.type == 0 ? "type" : "TLP level", q.type == 0 ? o->type : o->tlp);
		return 2;
	}
	policy_decide(p, &q, &d);
	if (o->json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "decision", d.allow ? "allow" : "deny");
		enl_json_str(&j, "rule", d.rule);
		enl_json_int(&j, "line", d.line);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		policy_explain(p, &q, stdout);
	}
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
