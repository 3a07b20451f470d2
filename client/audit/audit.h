/*
 * enlace-audit: what its commands share: options, the log's source (a
 * folder or HTTP), the broker's key. Not a library: one program's
 * internal header.
 */
#ifndef ENLACE_AUDIT_H
#define ENLACE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "enlace/cli.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"
#include "evidence.h"

extern const char usage[];

#define EXIT_BAD 1


/* ---- options shared by the commands ---- */

struct opts {
	const char *broker_pub, *since_checkpoint, *log, *directory, *authority_pub, *out;
	const char *since, *until, *format, *key, *pass_file;
	bool json, quiet;
	int argc;
	char **argv;		/* positional arguments */
};

enum { O_BROKER = 1, O_SINCE_CP, O_LOG, O_DIR, O_AUTH, O_OUT, O_SINCE, O_UNTIL, O_FORMAT,
       O_JSON, O_QUIET, O_HELP, O_KEY, O_PASS };

/* ---- where the log comes from: a folder, or HTTP ---- */

struct source {
	struct enl_tlog_source s;
	const char *where;
	/* http */
	char base[1024];
	nng_http_client *client;
	nng_url *url;
	struct enl_identity *reader;	/* signs each request */
	char origin[ENL_VKEY_NAME_MAX + 1];
	int unreachable;	/* the nng error of a request that got no answer */
	int refused;		/* the log refused our reader's signature */
	/* progress */
	bool quiet;
	time_t shown;
	/* what the command collects from each entry */
	int (*on_entry)(void *arg, uint64_t index, const uint8_t *e, size_t len,
			Enlace__AuditEntry *decoded);
	void *arg;
};

struct message_log {
	struct enl_directory *dir;
	uint8_t *dir_bytes;
	size_t dir_len;
	char broker[ENL_ID_MAX + 1];
	struct source src;
	struct enl_tlog *log;
	struct enl_checkpoint cp;
	struct trail t;
};

/* main.c */
int usage_error(const char *msg);

/* merkle.c */
int cmd_merkle(int argc, char **argv);

/* options.c */
int parse_opts(int argc, char **argv, struct opts *o);
int broker_key(const char *path, struct enl_note_keys *k);
int load_directory(const struct opts *o, struct enl_directory **dir, uint8_t **bytes, size_t *len);
int directory_broker(const struct enl_directory *dir, struct enl_note_keys *k, char *id);

/* prove.c */
int cmd_prove(int argc, char **argv);
int cmd_check_bundle(int argc, char **argv);

/* report.c */
int cmd_report(int argc, char **argv);

/* source.c */
int source_open(struct source *src, const char *where, const struct opts *o,
	    const struct enl_note_keys *k);
void source_close(struct source *src);
int source_load(struct source *src, const struct enl_note_keys *k, struct enl_tlog **log,
	    struct enl_checkpoint *cp, bool json);

/* trail.c */
void message_log_free(struct message_log *m);
int message_log_load(const struct opts *o, struct message_log *m);
int cmd_trail(int argc, char **argv);

/* verify.c */
int cmd_verify(int argc, char **argv);

#endif
