/*
 * enlace-keys: what its files share (options, passphrases, writing key
 * files). Not a library: one program's internal header.
 */
#ifndef ENLACE_KEYS_TOOL_H
#define ENLACE_KEYS_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "enlace/cli.h"
#include "enlace/keys.h"

extern const char *const prog;

/* ---- options shared by the commands that write a key file ---- */

struct pass_opts {
	const char *file;
	bool none;
	bool force;
};

/* ---- argument parsing ---- */

enum {
	OPT_ID = 256, OPT_KIND, OPT_COUNTRY, OPT_NAME, OPT_PASSFILE, OPT_NOPASS,
	OPT_FORCE, OPT_AUTHORITY, OPT_SERIAL, OPT_EXPIRES, OPT_OUT, OPT_IN,
	OPT_VERSION, OPT_REASON, OPT_JSON, OPT_AUTHPUB, OPT_HELP, OPT_KEEPREV,
};

struct args {
	const char *id, *kind, *country, *name, *authority, *serial, *expires;
	const char *out, *in, *version, *reason, *authpub, *keeprev;
	struct pass_opts pass;
	bool json;
	int argc;
	char **argv;		/* positional arguments */
};

/* common.c */
int get_passphrase(const struct pass_opts *po, bool confirm, char **pass, size_t *len);
void join(char *out, size_t cap, const char *dir, const char *name);
int load_identity(const char *dir, const char *pass_file, struct enl_identity **out,
	      char **pass_out, size_t *pass_len_out);
int write_keyfile(const char *dir, const struct enl_identity *ident, const char *pass,
	      size_t plen, bool force);
int write_public(const char *dir, const char *name, const uint8_t *buf, size_t len,
	     bool force);
/* The command's options into *a: -1 to go on, or the exit status (after
 * --help, which prints "usage: USAGE" and HELP, or a usage error). */
int parse_args(int argc, char **argv, const int *allowed, const char *usage, const char *help,
	       struct args *a);
bool parse_u64(const char *s, uint64_t *v);
bool parse_expiry(const char *s, int64_t now, int64_t *out);
int new_identity(const struct args *a, const char *dir, const char *id,
	     struct enl_identity **out);
int load_authority(const char *dir, struct enl_identity **out);
int read_authority_pub(const char *path, uint8_t pk[32]);

/* directory.c */
int cmd_directory_build(int argc, char **argv);
int cmd_directory_revoke(int argc, char **argv);
int cmd_directory_show(int argc, char **argv);
int cmd_directory_verify(int argc, char **argv);

/* fingerprint.c */
int cmd_fingerprint(int argc, char **argv);

/* identity.c */
int cmd_authority_init(int argc, char **argv);
int cmd_agency_new(int argc, char **argv);
int cmd_broker_new(int argc, char **argv);
int cmd_agency_rotate(int argc, char **argv);

#endif
