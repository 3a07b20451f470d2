/*
 * enlace, the analyst's command line: what its files share (options,
 * the offline context, the helpers of more than one command).
 */
#ifndef ENLACE_CLIENT_CLI_H
#define ENLACE_CLIENT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "enlace/cli.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

#define MAX_ATTACH 64

extern const char *const prog;

/* ---- what other agencies wrote, on the terminal ---- */

/* Escaped copies of partner text (enl_term_escape), freed together;
 * zero-initialized to start. */
struct tbuf {
	char **p;
	size_t n, cap;	/* at most TBUF_MAX */
};
#define TBUF_MAX 1000000
/* s as one line with its controls and bidirectional formatting escaped
 * visibly; valid until tbuf_free(tb). Never NULL. */
const char *tline(struct tbuf *tb, const char *s);
void tbuf_free(struct tbuf *tb);
/* A body, escaped, each line after "  | " so that nothing in it can pass
 * for a line of enlace's own. */
void tbody(FILE *fp, const char *body);

/* ---- what seal and open share: key, directory, pinned authority ---- */

struct context {
	const char *key_dir, *pass_file, *dir_file, *authpub;
	struct enl_identity *me;
	struct enl_directory *dir;
	struct enl_keyring kr;
};

/* ---- options ---- */

enum {
	OPT_KEY = 256, OPT_PASSFILE, OPT_DIRECTORY, OPT_AUTHPUB, OPT_TO, OPT_CASE,
	OPT_TLP, OPT_ONWARD, OPT_EVID, OPT_TYPE, OPT_REL, OPT_ASSESS, OPT_PRIO,
	OPT_EXPIRES, OPT_REPLYBY, OPT_INREPLY, OPT_SUBJECT, OPT_TEXT, OPT_TEXTFILE,
	OPT_ATTACH, OPT_OUT, OPT_MAXPAY, OPT_JSON, OPT_SAVE, OPT_HELP, OPT_SOCKET,
	OPT_WAIT, OPT_NOTE, OPT_REASON, OPT_TIMEOUT,
};

struct args {
	struct context ctx;
	const char *to[ENL_MAX_RECIPIENTS];
	size_t n_to;
	const char *attach[MAX_ATTACH];
	size_t n_attach;
	const char *case_ref, *tlp, *onward, *evid, *type, *rel, *assess, *prio;
	const char *expires, *reply_by, *in_reply, *subject, *text, *text_file;
	const char *out, *max_payload, *save, *socket, *timeout;
	bool json, wait;
	int argc;
	char **argv;
};

/* A message's body and attachments read from files (seal and send). */
struct loaded {
	uint8_t *body;
	uint8_t *att[MAX_ATTACH];		/* read (seal) */
	const uint8_t *mapped[MAX_ATTACH];	/* or mapped (send) */
	size_t mapped_len[MAX_ATTACH];
	struct enl_attachment atts[MAX_ATTACH];
};

/* enlace.c: options, the command table, main */
const char *media_type(const char *name);
int context_load(struct context *c);
int enum_opt(const char *name, const char *val, int (*parse)(const char *), const char *values,
	     int *out, const char *usage);
int need_context(const struct args *a, const char *usage);
/* --wait's --timeout (default 60 s) in *ms: 0, or a usage error's exit
 * status. */
int wait_timeout(const struct args *a, const char *usage, uint32_t *ms);
/* The command's options into *a: -1 to go on, or the exit status (after
 * --help, which prints "usage: USAGE" and HELP, or a usage error). */
int parse_args(int argc, char **argv, const int *allowed, const char *usage, const char *help,
	       struct args *a);
int64_t parse_after(const char *s, int64_t now);
void context_fini(struct context *c);

/* enlace_files.c: seal and open, on envelope files */
const char *upper(const char *s, char *buf, size_t cap);
int cmd_open(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int save_attachments(const struct enl_message *m, const char *dir);
int seal_header(const struct args *a, struct enl_header *h, int64_t now, const char *usage);
/* The attachments are read into memory, or with `map` mapped: only for
 * bytes that go to the kernel as they are (see enl_file_map). */
int seal_payload(const struct args *a, size_t max, bool map, struct loaded *l,
		 struct enl_payload *p, const char *usage);
void loaded_free(struct loaded *l, size_t n);

/* enlace_agent.c: the commands that talk to the local agent */
int cmd_consent(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_receipts(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_status(int argc, char **argv);

/* agentlink.c */
int agent_call(const struct args *a, const Enlace__CtlRequest *req, int timeout_ms,
	   Enlace__CtlResponse **resp);
void print_states(const Enlace__CtlResponse *r, bool json);
int wait_verdict(const Enlace__CtlResponse *r);

#endif
