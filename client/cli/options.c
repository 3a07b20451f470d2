/*
 * The options every command of enlace draws from, and what the offline
 * commands (seal, open) load: the key, the directory, the pinned authority.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "enlace/cli.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

static const struct option all_opts[] = {
	{"key", required_argument, NULL, OPT_KEY},
	{"passphrase-file", required_argument, NULL, OPT_PASSFILE},
	{"directory", required_argument, NULL, OPT_DIRECTORY},
	{"authority-pub", required_argument, NULL, OPT_AUTHPUB},
	{"to", required_argument, NULL, OPT_TO},
	{"case", required_argument, NULL, OPT_CASE},
	{"tlp", required_argument, NULL, OPT_TLP},
	{"onward", required_argument, NULL, OPT_ONWARD},
	{"evidential", required_argument, NULL, OPT_EVID},
	{"type", required_argument, NULL, OPT_TYPE},
	{"reliability", required_argument, NULL, OPT_REL},
	{"assessment", required_argument, NULL, OPT_ASSESS},
	{"priority", required_argument, NULL, OPT_PRIO},
	{"expires", required_argument, NULL, OPT_EXPIRES},
	{"reply-by", required_argument, NULL, OPT_REPLYBY},
	{"in-reply-to", required_argument, NULL, OPT_INREPLY},
	{"subject", required_argument, NULL, OPT_SUBJECT},
	{"text", required_argument, NULL, OPT_TEXT},
	{"note", required_argument, NULL, OPT_NOTE},
	{"reason", required_argument, NULL, OPT_REASON},
	{"text-file", required_argument, NULL, OPT_TEXTFILE},
	{"attach", required_argument, NULL, OPT_ATTACH},
	{"out", required_argument, NULL, OPT_OUT},
	{"max-payload", required_argument, NULL, OPT_MAXPAY},
	{"json", no_argument, NULL, OPT_JSON},
	{"save", required_argument, NULL, OPT_SAVE},
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"wait", no_argument, NULL, OPT_WAIT},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

int
context_load(struct context *c)
{
	char path[4096];
	uint8_t pk[32];
	bool no_tty = false;
	struct enl_dir_check chk = {pk, 0, (int64_t)time(NULL)};
	int rc;

	if ((rc = enl_authority_pub_read(c->authpub, pk)) != ENL_OK)
		return enl_cli_fail(prog, c->authpub, rc);
	if ((rc = enl_directory_load(c->dir_file, &chk, &c->dir)) != ENL_OK)
		return enl_cli_fail(prog, c->dir_file, rc);
	c->kr = enl_directory_keyring(c->dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/secret.key", c->key_dir) >= sizeof(path))
		return enl_cli_fail(prog, c->key_dir, ENL_E_INVAL);
	rc = enl_keyfile_unlock(path, c->pass_file, &c->me, NULL, NULL, &no_tty);
	if (no_tty) {
		fprintf(stderr, "%s: %s is encrypted and there is no terminal to ask for "
			"its passphrase: use --passphrase-file FILE\n", prog, path);
		return ENL_EXIT_FAIL;
	}
	if (rc != ENL_OK)
		return enl_cli_fail(prog, path, rc);
	if (enl_directory_find(c->dir, enl_identity_id(c->me)) == NULL) {
		fprintf(stderr, "%s: %s: this agency (%s) is not in the directory\n",
			prog, c->dir_file, enl_identity_id(c->me));
		return ENL_EXIT_FAIL;
	}
	return 0;
}

void
context_fini(struct context *c)
{
	enl_identity_free(c->me);
	enl_directory_free(c->dir);
}

/* Takes one option into the struct args (enl_cli_parse's `set`). */
static const char *
arg_set(void *ctx, int val, const char *arg)
{
	struct args *a = ctx;

	switch (val) {
	case OPT_KEY: a->ctx.key_dir = arg; break;
	case OPT_PASSFILE: a->ctx.pass_file = arg; break;
	case OPT_DIRECTORY: a->ctx.dir_file = arg; break;
	case OPT_AUTHPUB: a->ctx.authpub = arg; break;
	case OPT_TO:
		if (a->n_to == ENL_MAX_RECIPIENTS)
			return "too many --to";
		a->to[a->n_to++] = arg;
		break;
	case OPT_ATTACH:
		if (a->n_attach == MAX_ATTACH)
			return "too many --attach";
		a->attach[a->n_attach++] = arg;
		break;
	case OPT_CASE: a->case_ref = arg; break;
	case OPT_TLP: a->tlp = arg; break;
	case OPT_ONWARD: a->onward = arg; break;
	case OPT_EVID: a->evid = arg; break;
	case OPT_TYPE: a->type = arg; break;
	case OPT_REL: a->rel = arg; break;
	case OPT_ASSESS: a->assess = arg; break;
	case OPT_PRIO: a->prio = arg; break;
	case OPT_EXPIRES: a->expires = arg; break;
	case OPT_REPLYBY: a->reply_by = arg; break;
	case OPT_INREPLY: a->in_reply = arg; break;
	case OPT_SUBJECT: a->subject = arg; break;
	case OPT_TEXT: a->text = arg; break;
	case OPT_NOTE: a->text = arg; break;
	case OPT_REASON: a->text = arg; break;
	case OPT_TEXTFILE: a->text_file = arg; break;
	case OPT_OUT: a->out = arg; break;
	case OPT_MAXPAY: a->max_payload = arg; break;
	case OPT_JSON: a->json = true; break;
	case OPT_SAVE: a->save = arg; break;
	case OPT_SOCKET: a->socket = arg; break;
	case OPT_WAIT: a->wait = true; break;
	case OPT_TIMEOUT: a->timeout = arg; break;
	}
	return NULL;
}

int
parse_args(int argc, char **argv, const int *allowed, const char *usage, const char *help,
	   struct args *a)
{
	static const struct enl_cli_opts opts = {"enlace", all_opts, OPT_HELP, arg_set};

	memset(a, 0, sizeof(*a));
	return enl_cli_command(&opts, argc, argv, allowed, usage, help, a, &a->argc, &a->argv);
}

int
need_context(const struct args *a, const char *usage)
{
	if (a->ctx.key_dir == NULL || a->ctx.dir_file == NULL || a->ctx.authpub == NULL)
		return enl_cli_usage_line(prog, "--key, --directory and --authority-pub are required", usage);
	return 0;
}

/* "30d", "12h", "45m" from now; 0 on a bad value. */
int64_t
parse_after(const char *s, int64_t now)
{
	char *end;
	long long n;
	int64_t unit;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || n <= 0 || n > 100000 || end[1] != '\0')
		return 0;
	switch (*end) {
	case 'd': unit = 86400; break;
	case 'h': unit = 3600; break;
	case 'm': unit = 60; break;
	default: return 0;
	}
	return now + (int64_t)n * unit;
}

const char *
media_type(const char *name)
{
	static const char *const types[][2] = {
		{".csv", "text/csv"}, {".txt", "text/plain"}, {".xml", "application/xml"},
		{".json", "application/json"}, {".pdf", "application/pdf"},
		{".png", "image/png"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
		{".zip", "application/zip"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot, types[i][0]) == 0)
			return types[i][1];
	return "application/octet-stream";
}

/* Parses an enum option (--NAME VAL) with its parser into *out; on a bad
 * value says which option and what it takes. */
int
enum_opt(const char *name, const char *val, int (*parse)(const char *), const char *values,
	 int *out, const char *usage)
{
	char msg[256];

	if (val == NULL || (*out = parse(val)) != 0)
		return 0;
	snprintf(msg, sizeof(msg), "--%s takes %s, not '%.64s'", name, values, val);
	return enl_cli_usage_line(prog, msg, usage);
}

int
wait_timeout(const struct args *a, const char *usage, uint32_t *ms)
{
	uint64_t v = 60000;

	if (a->timeout != NULL && !a->wait)
		return enl_cli_usage_line(prog, "--timeout is for --wait", usage);
	if (a->timeout != NULL &&
	    (enl_config_number(a->timeout, ENL_CFG_MS, &v) != 0 || v < 1000 || v > 3600000))
		return enl_cli_usage_line(prog, "--timeout takes a duration from 1s to 1h, such as "
					  "30s or 5m", usage);
	*ms = (uint32_t)v;
	return 0;
}
