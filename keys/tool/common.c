/*
 * What the commands of enlace-keys share: options, passphrases, key
 * files written once and 0600, the authority's key.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "tool.h"

int
get_passphrase(const struct pass_opts *po, bool confirm, char **pass, size_t *len)
{
	int rc;

	*pass = NULL;
	*len = 0;
	if (po->none)
		return ENL_OK;
	if (po->file != NULL) {
		rc = enl_passphrase_from_file(po->file, pass, len);
		if (rc != ENL_OK)
			fprintf(stderr, "%s: %s: %s\n", prog, po->file, enl_strerror(rc));
		return rc;
	}
	rc = enl_passphrase_prompt(confirm ? "New passphrase: " : "Passphrase: ",
				   confirm, pass, len);
	if (rc == ENL_E_NOT_FOUND)
		fprintf(stderr, "%s: no terminal to ask for a passphrase: use "
				"--passphrase-file FILE, or --no-passphrase to "
				"store the key unencrypted\n", prog);
	else if (rc == ENL_E_INVAL)
		fprintf(stderr, "%s: the passphrases do not match\n", prog);
	else if (rc == ENL_E_MALFORMED)
		fprintf(stderr, "%s: the passphrase is empty\n", prog);
	else if (rc != ENL_OK)
		fprintf(stderr, "%s: reading the passphrase: %s\n", prog, enl_strerror(rc));
	return rc;
}

static int
make_dir(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: cannot create folder: %s\n", prog, dir,
			strerror(errno));
		return ENL_E_IO;
	}
	return ENL_OK;
}

void
join(char *out, size_t cap, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
		fprintf(stderr, "%s: %s: path too long\n", prog, dir);
		exit(ENL_EXIT_USAGE);
	}
}

/* Loads DIR/secret.key, asking for the passphrase if it needs one. */
int
load_identity(const char *dir, const char *pass_file, struct enl_identity **out,
	      char **pass_out, size_t *pass_len_out)
{
	char path[4096];
	bool no_tty = false;
	int rc;

	join(path, sizeof(path), dir, "secret.key");
	rc = enl_keyfile_unlock(path, pass_file, out, pass_out, pass_len_out, &no_tty);
	if (rc == ENL_OK)
		return 0;
	if (no_tty)
		fprintf(stderr, "%s: %s is encrypted and there is no terminal to ask "
			"for its passphrase: use --passphrase-file FILE\n", prog, path);
	else if (rc == ENL_E_INSECURE_FILE)
		fprintf(stderr, "%s: %s: unencrypted key file is readable by others; "
			"chmod 600 it\n", prog, path);
	else if (pass_file != NULL && access(path, R_OK) == 0 &&
		 (rc == ENL_E_NOT_FOUND || rc == ENL_E_PERMISSION || rc == ENL_E_TOO_LARGE))
		enl_cli_fail(prog, pass_file, rc);	/* the key file is there: the other one failed */
	else
		enl_cli_fail(prog, path, rc);
	return ENL_EXIT_FAIL;
}

int
write_keyfile(const char *dir, const struct enl_identity *ident, const char *pass,
	      size_t plen, bool force)
{
	char path[4096];
	struct enl_kdf_cost cost = enl_kdf_cost_default();
	int rc;

	join(path, sizeof(path), dir, "secret.key");
	rc = enl_keyfile_write(path, ident, pass, plen, &cost, force);
	if (rc == ENL_E_EXISTS) {
		fprintf(stderr, "%s: %s: already exists (use --force to replace it)\n",
			prog, path);
		return ENL_EXIT_FAIL;
	}
	return rc == ENL_OK ? 0 : enl_cli_fail(prog, path, rc);
}

int
write_public(const char *dir, const char *name, const uint8_t *buf, size_t len,
	     bool force)
{
	char path[4096];
	int rc;

	join(path, sizeof(path), dir, name);
	rc = enl_file_write(path, buf, len, 0644, force);
	if (rc == ENL_E_EXISTS) {
		fprintf(stderr, "%s: %s: already exists (use --force to replace it)\n",
			prog, path);
		return ENL_EXIT_FAIL;
	}
	return rc == ENL_OK ? 0 : enl_cli_fail(prog, path, rc);
}

static const struct option all_opts[] = {
	{"id", required_argument, NULL, OPT_ID},
	{"kind", required_argument, NULL, OPT_KIND},
	{"country", required_argument, NULL, OPT_COUNTRY},
	{"name", required_argument, NULL, OPT_NAME},
	{"passphrase-file", required_argument, NULL, OPT_PASSFILE},
	{"no-passphrase", no_argument, NULL, OPT_NOPASS},
	{"force", no_argument, NULL, OPT_FORCE},
	{"authority", required_argument, NULL, OPT_AUTHORITY},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"expires", required_argument, NULL, OPT_EXPIRES},
	{"out", required_argument, NULL, OPT_OUT},
	{"in", required_argument, NULL, OPT_IN},
	{"version", required_argument, NULL, OPT_VERSION},
	{"reason", required_argument, NULL, OPT_REASON},
	{"json", no_argument, NULL, OPT_JSON},
	{"authority-pub", required_argument, NULL, OPT_AUTHPUB},
	{"keep-revocations", required_argument, NULL, OPT_KEEPREV},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

/* Parses options; `allowed` lists the OPT_ values the command takes. */
/* Takes one option into the struct args (enl_cli_parse's `set`). */
static const char *
arg_set(void *ctx, int val, const char *arg)
{
	struct args *a = ctx;

	switch (val) {
	case OPT_ID: a->id = arg; break;
	case OPT_KIND: a->kind = arg; break;
	case OPT_COUNTRY: a->country = arg; break;
	case OPT_NAME: a->name = arg; break;
	case OPT_PASSFILE: a->pass.file = arg; break;
	case OPT_NOPASS: a->pass.none = true; break;
	case OPT_FORCE: a->pass.force = true; break;
	case OPT_AUTHORITY: a->authority = arg; break;
	case OPT_SERIAL: a->serial = arg; break;
	case OPT_EXPIRES: a->expires = arg; break;
	case OPT_OUT: a->out = arg; break;
	case OPT_IN: a->in = arg; break;
	case OPT_VERSION: a->version = arg; break;
	case OPT_REASON: a->reason = arg; break;
	case OPT_JSON: a->json = true; break;
	case OPT_AUTHPUB: a->authpub = arg; break;
	case OPT_KEEPREV: a->keeprev = arg; break;
	}
	return NULL;
}

int
parse_args(int argc, char **argv, const int *allowed, const char *usage, const char *help,
	   struct args *a)
{
	static const struct enl_cli_opts opts = {"enlace-keys", all_opts, OPT_HELP, arg_set};
	int ret;

	memset(a, 0, sizeof(*a));
	if ((ret = enl_cli_command(&opts, argc, argv, allowed, usage, help, a, &a->argc,
				   &a->argv)) >= 0)
		return ret;
	if (a->pass.file && a->pass.none)
		return enl_cli_usage_line(prog, "--passphrase-file and --no-passphrase exclude each other",
				 usage);
	return -1;
}

bool
parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* "90d", "12h", "30m", "45s" after now, or "YYYY-MM-DD" (UTC midnight). */
bool
parse_expiry(const char *s, int64_t now, int64_t *out)
{
	uint64_t n;
	char num[32];
	size_t len = strlen(s);
	struct tm tm;
	char *end;

	if (len >= 2 && len < sizeof(num)) {
		int64_t unit = 0;
		switch (s[len - 1]) {
		case 'd': unit = 86400; break;
		case 'h': unit = 3600; break;
		case 'm': unit = 60; break;
		case 's': unit = 1; break;
		}
		memcpy(num, s, len - 1);
		num[len - 1] = '\0';
		if (unit && parse_u64(num, &n) && n > 0 && n < (uint64_t)INT32_MAX) {
			*out = now + (int64_t)n * unit;
			return true;
		}
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

/* ---- authority init ---- */

int
new_identity(const struct args *a, const char *dir, const char *id,
	     struct enl_identity **out)
{
	uint32_t v;
	int rc;

	if (!enl_id_valid(id)) {
		fprintf(stderr, "%s: '%s' is not a valid id (PREFIX-NAME: 2-8 "
			"letters A-Z, '-', then A-Z 0-9 _ -, e.g. AR-UIF)\n", prog, id);
		return ENL_EXIT_USAGE;
	}
	if (make_dir(dir) != ENL_OK)
		return ENL_EXIT_FAIL;
	if (!a->pass.force) {
		char path[4096];
		struct stat st;
		join(path, sizeof(path), dir, "secret.key");
		if (stat(path, &st) == 0) {
			fprintf(stderr, "%s: %s: already exists (use --force to "
				"replace it)\n", prog, path);
			return ENL_EXIT_FAIL;
		}
	}
	if ((rc = enl_identity_new(id, out)) != ENL_OK ||
	    (rc = enl_identity_rotate(*out, &v)) != ENL_OK) {
		enl_identity_free(*out);
		*out = NULL;
		return enl_cli_fail(prog, "generating keys", rc);
	}
	return 0;
}

/* ---- directory build / revoke ---- */

int
load_authority(const char *dir, struct enl_identity **out)
{
	return load_identity(dir, NULL, out, NULL, NULL);
}

int
read_authority_pub(const char *path, uint8_t pk[32])
{
	int rc = enl_authority_pub_read(path, pk);

	if (rc != ENL_OK)
		enl_cli_fail(prog, path, rc);
	return rc;
}
