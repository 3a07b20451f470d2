/*
 * enlace: the analyst's command line. Most commands talk to the local
 * agent (enlace_agent.c); `seal` and `open` work offline on envelope
 * files (enlace_files.c). Here: the options, the command table, main.
 *
 * Exit status: 0 success, 1 failure (a verification that fails included),
 * 2 usage error.
 */
#include <malloc.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

#include "enlace_cli.h"

const char *const prog = "enlace";

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
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

int
fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, enl_strerror(err));
	return EXIT_FAIL;
}

int
usage_err(const char *msg, const char *usage)
{
	fprintf(stderr, "%s: %s\nusage: %s\n", prog, msg, usage);
	return EXIT_USAGE;
}

int
context_load(struct context *c)
{
	char path[4096];
	uint8_t pk[32];
	bool no_tty = false;
	struct enl_dir_check chk = {pk, 0, (int64_t)time(NULL)};
	int rc;

	if ((rc = enl_authority_pub_read(c->authpub, pk)) != ENL_OK)
		return fail(c->authpub, rc);
	if ((rc = enl_directory_load(c->dir_file, &chk, &c->dir)) != ENL_OK)
		return fail(c->dir_file, rc);
	c->kr = enl_directory_keyring(c->dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/secret.key", c->key_dir) >= sizeof(path))
		return fail(c->key_dir, ENL_E_INVAL);
	rc = enl_keyfile_unlock(path, c->pass_file, &c->me, NULL, NULL, &no_tty);
	if (no_tty) {
		fprintf(stderr, "%s: %s is encrypted and there is no terminal to ask for "
			"its passphrase: use --passphrase-file FILE\n", prog, path);
		return EXIT_FAIL;
	}
	if (rc != ENL_OK)
		return fail(path, rc);
	if (enl_directory_find(c->dir, enl_identity_id(c->me)) == NULL) {
		fprintf(stderr, "%s: %s: this agency (%s) is not in the directory\n",
			prog, c->dir_file, enl_identity_id(c->me));
		return EXIT_FAIL;
	}
	return 0;
}

void
context_fini(struct context *c)
{
	enl_identity_free(c->me);
	enl_directory_free(c->dir);
}

int
parse_args(int argc, char **argv, const int *allowed, const char *usage, struct args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", all_opts, NULL)) != -1) {
		bool ok = c == OPT_HELP;
		for (const int *p = allowed; *p && !ok; p++)
			ok = *p == c;
		if (c == '?' || c == ':' || !ok) {
			char msg[256];
			enl_option_fault(all_opts, argv, c, msg, sizeof(msg));
			return usage_err(msg, usage);
		}
		switch (c) {
		case OPT_KEY: a->ctx.key_dir = optarg; break;
		case OPT_PASSFILE: a->ctx.pass_file = optarg; break;
		case OPT_DIRECTORY: a->ctx.dir_file = optarg; break;
		case OPT_AUTHPUB: a->ctx.authpub = optarg; break;
		case OPT_TO:
			if (a->n_to == ENL_MAX_RECIPIENTS)
				return usage_err("too many --to", usage);
			a->to[a->n_to++] = optarg;
			break;
		case OPT_ATTACH:
			if (a->n_attach == MAX_ATTACH)
				return usage_err("too many --attach", usage);
			a->attach[a->n_attach++] = optarg;
			break;
		case OPT_CASE: a->case_ref = optarg; break;
		case OPT_TLP: a->tlp = optarg; break;
		case OPT_ONWARD: a->onward = optarg; break;
		case OPT_EVID: a->evid = optarg; break;
		case OPT_TYPE: a->type = optarg; break;
		case OPT_REL: a->rel = optarg; break;
		case OPT_ASSESS: a->assess = optarg; break;
		case OPT_PRIO: a->prio = optarg; break;
		case OPT_EXPIRES: a->expires = optarg; break;
		case OPT_REPLYBY: a->reply_by = optarg; break;
		case OPT_INREPLY: a->in_reply = optarg; break;
		case OPT_SUBJECT: a->subject = optarg; break;
		case OPT_TEXT: a->text = optarg; break;
		case OPT_NOTE: a->text = optarg; break;
		case OPT_REASON: a->text = optarg; break;
		case OPT_TEXTFILE: a->text_file = optarg; break;
		case OPT_OUT: a->out = optarg; break;
		case OPT_MAXPAY: a->max_payload = optarg; break;
		case OPT_JSON: a->json = true; break;
		case OPT_SAVE: a->save = optarg; break;
		case OPT_SOCKET: a->socket = optarg; break;
		case OPT_WAIT: a->wait = true; break;
		case OPT_HELP: a->help = true; break;
		}
	}
	a->argc = argc - optind;
	a->argv = argv + optind;
	return 0;
}

int
need_context(const struct args *a, const char *usage)
{
	if (a->ctx.key_dir == NULL || a->ctx.dir_file == NULL || a->ctx.authpub == NULL)
		return usage_err("--key, --directory and --authority-pub are required", usage);
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
	return usage_err(msg, usage);
}

/* ---- the command table ---- */

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"seal", cmd_seal, "seal a message into an envelope file (offline)"},
	{"open", cmd_open, "verify and open an envelope file (offline)"},
	{"send", cmd_send, "send a message through the local agent"},
	{"forward", cmd_forward, "forward a message received to a third party"},
	{"consent", cmd_consent, "answer requests to forward your messages"},
	{"inbox", cmd_inbox, "list the messages received"},
	{"read", cmd_read, "show one received message"},
	{"receipts", cmd_receipts, "delivery state of a message sent"},
	{"status", cmd_status, "the agent's connection and queues"},
};

void
help(FILE *fp)
{
	fprintf(fp, "usage: enlace COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "\n`enlace COMMAND --help` tells more. Exit status: 0 success, 1 "
		    "failure\n(a verification that fails included), 2 usage error.\n");
}

static const struct command *
command_named(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* The buffers of a large message (up to 2 x the payload limit, several
 * alive at once) come from one heap and are reused, rather than mapped
 * fresh for each copy and faulted in page by page; freed memory is kept
 * up to 512 MiB. Before any thread starts. */
static void
tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
}

int
main(int argc, char **argv)
{
	const struct command *c;

	tune_malloc();
	if (enl_init() != ENL_OK) {
		fprintf(stderr, "%s: cannot initialize libsodium\n", prog);
		return EXIT_FAIL;
	}
	if (argc < 2) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		help(stdout);
		return 0;
	}
	/* options before the command (enlace --socket S status) go after it */
	for (int at = 2; argv[1][0] == '-' && at < argc; at++)
		if (command_named(argv[at]) != NULL && strcmp(argv[at - 1], "--socket") != 0) {
			char *cmd = argv[at];
			memmove(argv + 2, argv + 1, (size_t)(at - 1) * sizeof(*argv));
			argv[1] = cmd;
			break;
		}
	if ((c = command_named(argv[1])) != NULL)
		return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	help(stderr);
	return EXIT_USAGE;
}

const char *
tline(struct tbuf *tb, const char *s)
{
	char *e;

	if (s == NULL)
		return "";
	if (tb->n == tb->cap) {
		size_t cap = tb->cap ? 2 * tb->cap : 16;
		char **p = realloc(tb->p, cap * sizeof(*p));
		if (p == NULL)
			return "(text not shown: out of memory)";
		tb->p = p;
		tb->cap = cap;
	}
	if ((e = enl_term_escape(s, false)) == NULL)
		return "(text not shown: out of memory)";
	tb->p[tb->n++] = e;
	return e;
}

void
tbuf_free(struct tbuf *tb)
{
	for (size_t i = 0; i < tb->n; i++)
		free(tb->p[i]);
	free(tb->p);
	tb->p = NULL;
	tb->n = tb->cap = 0;
}

void
tbody(FILE *fp, const char *body)
{
	char *e = enl_term_escape(body != NULL ? body : "", true), *line, *nl;

	if (e == NULL) {
		fputs("  | (body not shown: out of memory)\n", fp);
		return;
	}
	for (line = e; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		fprintf(fp, "  | %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
		if (nl == NULL)
			break;
	}
	free(e);
}
