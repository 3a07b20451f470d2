/*
 * enlace-keys: identities, cards and the signed directory.
 *
 * Exit status: 0 success, 1 failure (a verification that fails, or an
 * operation that cannot be done), 2 usage error.
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

#include "enlace/config.h"
#include "enlace/keys.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char *prog = "enlace-keys";

static int
fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, enl_strerror(err));
	return EXIT_FAIL;
}

static int
usage_err(const char *msg, const char *usage)
{
	fprintf(stderr, "%s: %s\nusage: %s\n", prog, msg, usage);
	return EXIT_USAGE;
}

/* ---- options shared by the commands that write a key file ---- */

struct pass_opts {
	const char *file;
	bool none;
	bool force;
};

static int
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

static void
join(char *out, size_t cap, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
		fprintf(stderr, "%s: %s: path too long\n", prog, dir);
		exit(EXIT_USAGE);
	}
}

/* Loads DIR/secret.key, asking for the passphrase if it needs one. */
static int
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
		fail(pass_file, rc);	/* the key file is there: the other one failed */
	else
		fail(path, rc);
	return EXIT_FAIL;
}

static int
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
		return EXIT_FAIL;
	}
	return rc == ENL_OK ? 0 : fail(path, rc);
}

static int
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
		return EXIT_FAIL;
	}
	return rc == ENL_OK ? 0 : fail(path, rc);
}

/* ---- argument parsing ---- */

enum {
	OPT_ID = 256, OPT_KIND, OPT_COUNTRY, OPT_NAME, OPT_PASSFILE, OPT_NOPASS,
	OPT_FORCE, OPT_AUTHORITY, OPT_SERIAL, OPT_EXPIRES, OPT_OUT, OPT_IN,
	OPT_VERSION, OPT_REASON, OPT_JSON, OPT_AUTHPUB, OPT_HELP, OPT_KEEPREV,
};

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

struct args {
	const char *id, *kind, *country, *name, *authority, *serial, *expires;
	const char *out, *in, *version, *reason, *authpub, *keeprev;
	struct pass_opts pass;
	bool json, help;
	int argc;
	char **argv;		/* positional arguments */
};

/* Parses options; `allowed` lists the OPT_ values the command takes. */
static int
parse_args(int argc, char **argv, const int *allowed, const char *usage,
	   struct args *a)
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
		case OPT_ID: a->id = optarg; break;
		case OPT_KIND: a->kind = optarg; break;
		case OPT_COUNTRY: a->country = optarg; break;
		case OPT_NAME: a->name = optarg; break;
		case OPT_PASSFILE: a->pass.file = optarg; break;
		case OPT_NOPASS: a->pass.none = true; break;
		case OPT_FORCE: a->pass.force = true; break;
		case OPT_AUTHORITY: a->authority = optarg; break;
		case OPT_SERIAL: a->serial = optarg; break;
		case OPT_EXPIRES: a->expires = optarg; break;
		case OPT_OUT: a->out = optarg; break;
		case OPT_IN: a->in = optarg; break;
		case OPT_VERSION: a->version = optarg; break;
		case OPT_REASON: a->reason = optarg; break;
		case OPT_JSON: a->json = true; break;
		case OPT_AUTHPUB: a->authpub = optarg; break;
		case OPT_KEEPREV: a->keeprev = optarg; break;
		case OPT_HELP: a->help = true; break;
		}
	}
	if (a->pass.file && a->pass.none)
		return usage_err("--passphrase-file and --no-passphrase exclude each other",
				 usage);
	a->argc = argc - optind;
	a->argv = argv + optind;
	return 0;
}

static bool
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
static bool
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

static int
new_identity(const struct args *a, const char *dir, const char *id,
	     struct enl_identity **out)
{
	uint32_t v;
	int rc;

	if (!enl_id_valid(id)) {
		fprintf(stderr, "%s: '%s' is not a valid id (PREFIX-NAME: 2-8 "
			"letters A-Z, '-', then A-Z 0-9 _ -, e.g. AR-UIF)\n", prog, id);
		return EXIT_USAGE;
	}
	if (make_dir(dir) != ENL_OK)
		return EXIT_FAIL;
	if (!a->pass.force) {
		char path[4096];
		struct stat st;
		join(path, sizeof(path), dir, "secret.key");
		if (stat(path, &st) == 0) {
			fprintf(stderr, "%s: %s: already exists (use --force to "
				"replace it)\n", prog, path);
			return EXIT_FAIL;
		}
	}
	if ((rc = enl_identity_new(id, out)) != ENL_OK ||
	    (rc = enl_identity_rotate(*out, &v)) != ENL_OK) {
		enl_identity_free(*out);
		*out = NULL;
		return fail("generating keys", rc);
	}
	return 0;
}

static const char usage_authority_init[] =
	"enlace-keys authority init [--id ID] [--passphrase-file F | --no-passphrase] [--force] DIR";

static int
cmd_authority_init(int argc, char **argv)
{
	static const int allowed[] = {OPT_ID, OPT_PASSFILE, OPT_NOPASS, OPT_FORCE, 0};
	struct enl_identity *ident = NULL;
	struct args a;
	char vkey[ENL_VKEY_MAX], line[ENL_VKEY_MAX + 2], fp[ENL_FINGERPRINT_LEN];
	char *pass = NULL;
	uint8_t pk[32], epk[32];
	size_t plen = 0;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_authority_init, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nCreates the directory authority's signing key: "
		       "DIR/secret.key (0600) and\nDIR/authority.pub, the public key "
		       "that every broker and agent pins.\n", usage_authority_init);
		return 0;
	}
	if (a.argc != 1)
		return usage_err("expected one folder", usage_authority_init);
	if ((ret = new_identity(&a, a.argv[0], a.id ? a.id : "ENLACE-AUTHORITY",
				&ident)) != 0)
		return ret;
	ret = EXIT_FAIL;
	if (get_passphrase(&a.pass, true, &pass, &plen) != ENL_OK)
		goto out;
	if (enl_identity_public(ident, 1, pk, epk) != ENL_OK ||
	    enl_vkey_format(enl_identity_id(ident), pk, vkey) != ENL_OK)
		goto out;
	snprintf(line, sizeof(line), "%s\n", vkey);
	if (write_keyfile(a.argv[0], ident, pass, plen, a.pass.force) != 0 ||
	    write_public(a.argv[0], "authority.pub", (const uint8_t *)line,
			 strlen(line), true) != 0)
		goto out;
	enl_fingerprint(pk, fp);
	printf("authority %s created in %s\nfingerprint %s\n", enl_identity_id(ident),
	       a.argv[0], fp);
	ret = 0;
out:
	enl_passphrase_free(pass);
	enl_identity_free(ident);
	return ret;
}

/* ---- agency / broker new ---- */

static int
create_party(const struct args *a, const char *usage, enum enl_agency_kind kind)
{
	struct enl_identity *ident = NULL;
	char country[9], *pass = NULL, fp[ENL_FINGERPRINT_LEN];
	uint8_t *card = NULL, pk[32], epk[32];
	size_t card_len = 0, plen = 0;
	int ret, rc;

	if (a->argc != 1)
		return usage_err("expected one folder", usage);
	if (a->id == NULL)
		return usage_err("--id is required", usage);
	if (a->country != NULL) {
		if (strlen(a->country) >= sizeof(country))
			return usage_err("--country: 2 to 8 letters A-Z", usage);
		memcpy(country, a->country, strlen(a->country) + 1);
	} else if (!enl_id_prefix(a->id, country)) {
		return usage_err("--id is not a valid id (e.g. AR-UIF)", usage);
	}
	if ((ret = new_identity(a, a->argv[0], a->id, &ident)) != 0)
		return ret;
	ret = EXIT_FAIL;
	rc = enl_card_make(ident, kind, country, a->name ? a->name : a->id, NULL,
			   (int64_t)time(NULL), &card, &card_len);
	if (rc == ENL_E_INVAL) {
		ret = usage_err("--country must be 2 to 8 letters A-Z and --name "
				"printable text of at most 200 bytes", usage);
		goto out;
	}
	if (rc != ENL_OK) {
		fail("making the card", rc);
		goto out;
	}
	if (get_passphrase(&a->pass, true, &pass, &plen) != ENL_OK)
		goto out;
	if (write_keyfile(a->argv[0], ident, pass, plen, a->pass.force) != 0 ||
	    write_public(a->argv[0], "card", card, card_len, true) != 0)
		goto out;
	if (enl_identity_public(ident, 1, pk, epk) != ENL_OK)
		goto out;
	enl_fingerprint(pk, fp);
	printf("%s %s (%s) created in %s\nkey version 1, fingerprint %s\n",
	       enl_kind_name(kind), a->id, country, a->argv[0], fp);
	ret = 0;
out:
	free(card);
	enl_passphrase_free(pass);
	enl_identity_free(ident);
	return ret;
}

static const char usage_agency_new[] =
	"enlace-keys agency new --id ID --kind KIND [--country CC] [--name NAME]\n"
	"       [--passphrase-file F | --no-passphrase] [--force] DIR";

static int
cmd_agency_new(int argc, char **argv)
{
	static const int allowed[] = {OPT_ID, OPT_KIND, OPT_COUNTRY, OPT_NAME,
				      OPT_PASSFILE, OPT_NOPASS, OPT_FORCE, 0};
	struct args a;
	int ret, kind;

	if ((ret = parse_args(argc, argv, allowed, usage_agency_new, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nCreates an agency's Ed25519 identity key and X25519 "
		       "encryption key (version 1)\nin DIR/secret.key (0600) and its "
		       "signed card in DIR/card.\nKIND: FIU, POLICE, PROSECUTOR, JUDICIAL, "
		       "CUSTOMS, CENTRAL_AUTHORITY,\nPOINT_OF_CONTACT, AUDITOR. The country "
		       "defaults to the id's prefix, the name\nto the id. The passphrase is "
		       "asked on the terminal unless a flag says otherwise.\n",
		       usage_agency_new);
		return 0;
	}
	if (a.kind == NULL)
		return usage_err("--kind is required", usage_agency_new);
	kind = enl_kind_parse(a.kind);
	if (kind == 0 || kind == ENL_KIND_BROKER)
		return usage_err("--kind must be FIU, POLICE, PROSECUTOR, JUDICIAL, "
				 "CUSTOMS, CENTRAL_AUTHORITY, POINT_OF_CONTACT or AUDITOR",
				 usage_agency_new);
	return create_party(&a, usage_agency_new, (enum enl_agency_kind)kind);
}

static const char usage_broker_new[] =
	"enlace-keys broker new --id ID [--country CC] [--name NAME]\n"
	"       [--passphrase-file F | --no-passphrase] [--force] DIR";

static int
cmd_broker_new(int argc, char **argv)
{
	static const int allowed[] = {OPT_ID, OPT_COUNTRY, OPT_NAME, OPT_PASSFILE,
				      OPT_NOPASS, OPT_FORCE, 0};
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_broker_new, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nCreates a broker's keys (DIR/secret.key, 0600) and "
		       "its card (DIR/card, kind BROKER).\n", usage_broker_new);
		return 0;
	}
	return create_party(&a, usage_broker_new, ENL_KIND_BROKER);
}

/* ---- agency rotate ---- */

static const char usage_agency_rotate[] =
	"enlace-keys agency rotate [--passphrase-file F] DIR";

static int
cmd_agency_rotate(int argc, char **argv)
{
	static const int allowed[] = {OPT_PASSFILE, 0};
	struct enl_identity *ident = NULL;
	struct enl_card old;
	struct args a;
	char path[4096], *pass = NULL, fp[ENL_FINGERPRINT_LEN];
	uint8_t *buf = NULL, *card = NULL, pk[32], epk[32];
	size_t len = 0, card_len = 0, plen = 0;
	uint32_t v = 0;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_agency_rotate, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nMakes version N+1 of both keys, keeps the older "
		       "private keys (retired: they\nstill open older messages, never "
		       "sign) and writes a new card listing every\nversion. Put the new "
		       "card in the next directory. DIR may also be the\nbroker's key "
		       "folder: restart the broker with the new directory, and\nits "
		       "agents take that directory with its first welcome.\n",
		       usage_agency_rotate);
		return 0;
	}
	if (a.argc != 1)
		return usage_err("expected one folder", usage_agency_rotate);
	join(path, sizeof(path), a.argv[0], "card");
	if ((rc = enl_file_read(path, ENL_CARD_MAX, &buf, &len)) != ENL_OK ||
	    (rc = enl_card_parse(buf, len, &old)) != ENL_OK) {
		free(buf);
		return fail(path, rc);
	}
	free(buf);
	if ((ret = load_identity(a.argv[0], a.pass.file, &ident, &pass, &plen)) != 0)
		return ret;
	ret = EXIT_FAIL;
	if (strcmp(old.id, enl_identity_id(ident)) != 0) {
		fprintf(stderr, "%s: %s: card is for %s but the key for %s\n", prog,
			path, old.id, enl_identity_id(ident));
		goto out;
	}
	if ((rc = enl_identity_rotate(ident, &v)) != ENL_OK ||
	    (rc = enl_card_make(ident, old.kind, old.country, old.name, &old,
				(int64_t)time(NULL), &card, &card_len)) != ENL_OK) {
		fail("rotating", rc);
		goto out;
	}
	/* The secret first: a card without its key would be worse than a
	 * key whose card has not been written yet. */
	if (write_keyfile(a.argv[0], ident, pass, plen, true) != 0 ||
	    write_public(a.argv[0], "card", card, card_len, true) != 0)
		goto out;
	if (enl_identity_public(ident, v, pk, epk) != ENL_OK)
		goto out;
	enl_fingerprint(pk, fp);
	printf("%s rotated to key version %" PRIu32 ", fingerprint %s\n",
	       enl_identity_id(ident), v, fp);
	ret = 0;
out:
	free(card);
	enl_passphrase_free(pass);
	enl_identity_free(ident);
	return ret;
}

/* ---- directory build / revoke ---- */

static int
load_authority(const char *dir, struct enl_identity **out)
{
	return load_identity(dir, NULL, out, NULL, NULL);
}

static int
read_authority_pub(const char *path, uint8_t pk[32])
{
	int rc = enl_authority_pub_read(path, pk);

	if (rc != ENL_OK)
		fail(path, rc);
	return rc;
}

static const char usage_dir_build[] =
	"enlace-keys directory build --authority DIR --serial N --expires WHEN\n"
	"       --out FILE [--keep-revocations OLDFILE] CARD...";

static int
cmd_directory_build(int argc, char **argv)
{
	static const int allowed[] = {OPT_AUTHORITY, OPT_SERIAL, OPT_EXPIRES,
				      OPT_OUT, OPT_KEEPREV, 0};
	struct enl_identity *auth = NULL;
	struct enl_directory *prev = NULL;
	struct args a;
	uint8_t **cards = NULL, *out = NULL, pk[32], epk[32];
	size_t *lens = NULL, out_len = 0, n_revs = 0;
	struct enl_revocation *revs = NULL;
	uint64_t serial;
	int64_t now = (int64_t)time(NULL), expires;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_build, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nBuilds and signs a directory of the given cards. "
		       "WHEN is a duration from now\n(90d, 12h, 30m) or a date "
		       "(YYYY-MM-DD, UTC). --keep-revocations carries\nthe revocations "
		       "of an older directory (checked against the authority) over.\n",
		       usage_dir_build);
		return 0;
	}
	if (a.authority == NULL || a.serial == NULL || a.expires == NULL || a.out == NULL)
		return usage_err("--authority, --serial, --expires and --out are required",
				 usage_dir_build);
	if (!parse_u64(a.serial, &serial) || serial == 0)
		return usage_err("--serial must be a positive whole number", usage_dir_build);
	if (!parse_expiry(a.expires, now, &expires) || expires <= now)
		return usage_err("--expires must be a duration such as 90d or a future "
				 "date YYYY-MM-DD", usage_dir_build);
	if ((ret = load_authority(a.authority, &auth)) != 0)
		return ret;
	ret = EXIT_FAIL;
	if (a.keeprev != NULL) {
		struct enl_dir_check chk = {NULL, 0, 0};
		if (enl_identity_public(auth, enl_identity_current(auth), pk, epk) != ENL_OK)
			goto out;
		chk.authority_pk = pk;
		if ((rc = enl_directory_load(a.keeprev, &chk, &prev)) != ENL_OK) {
			fail(a.keeprev, rc);
			goto out;
		}
		n_revs = enl_directory_revocation_count(prev);
		if (n_revs && (revs = calloc(n_revs, sizeof(*revs))) == NULL)
			goto out;
		for (size_t i = 0; i < n_revs; i++)
			revs[i] = *enl_directory_revocation_at(prev, i);
	}
	cards = calloc((size_t)a.argc + 1, sizeof(*cards));
	lens = calloc((size_t)a.argc + 1, sizeof(*lens));
	if (cards == NULL || lens == NULL)
		goto out;
	for (int i = 0; i < a.argc; i++) {
		struct enl_card c;
		rc = enl_file_read(a.argv[i], ENL_CARD_MAX, &cards[i], &lens[i]);
		if (rc == ENL_OK)
			rc = enl_card_parse(cards[i], lens[i], &c);
		if (rc != ENL_OK) {
			fail(a.argv[i], rc);
			goto out;
		}
	}
	rc = enl_directory_build(auth, serial, now, expires,
				 (const uint8_t *const *)cards, lens, (size_t)a.argc,
				 revs, n_revs, &out, &out_len);
	if (rc == ENL_E_EXISTS) {
		fprintf(stderr, "%s: two cards have the same id\n", prog);
		goto out;
	}
	if (rc != ENL_OK) {
		fail("building the directory", rc);
		goto out;
	}
	if ((rc = enl_file_write(a.out, out, out_len, 0644, true)) != ENL_OK) {
		fail(a.out, rc);
		goto out;
	}
	{
		char when[32];
		enl_time_format(expires, when);
		printf("directory serial %" PRIu64 " with %d card(s) and %zu "
		       "revocation(s), expires %s, written to %s\n",
		       serial, a.argc, n_revs, when, a.out);
	}
	ret = 0;
out:
	for (int i = 0; cards != NULL && i < a.argc; i++)
		free(cards[i]);
	free(cards);
	free(lens);
	free(out);
	free(revs);
	enl_directory_free(prev);
	enl_identity_free(auth);
	return ret;
}

static const char usage_dir_revoke[] =
	"enlace-keys directory revoke --authority DIR --in FILE --id ID\n"
	"       [--version N] --reason TEXT --out FILE";

static int
cmd_directory_revoke(int argc, char **argv)
{
	static const int allowed[] = {OPT_AUTHORITY, OPT_IN, OPT_ID, OPT_VERSION,
				      OPT_REASON, OPT_OUT, 0};
	struct enl_identity *auth = NULL;
	struct enl_directory *d = NULL;
	struct enl_revocation rev;
	struct enl_dir_check chk = {NULL, 0, 0};
	struct args a;
	uint8_t *out = NULL, pk[32], epk[32];
	size_t out_len = 0;
	uint64_t v = 0;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_revoke, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nWrites a copy of the directory with one more "
		       "revocation and the serial raised\nby one, signed again. Without "
		       "--version every key version of ID is revoked.\n",
		       usage_dir_revoke);
		return 0;
	}
	if (a.authority == NULL || a.in == NULL || a.id == NULL || a.reason == NULL ||
	    a.out == NULL)
		return usage_err("--authority, --in, --id, --reason and --out are required",
				 usage_dir_revoke);
	if (a.version != NULL && (!parse_u64(a.version, &v) || v == 0 || v > UINT32_MAX))
		return usage_err("--version must be a positive whole number", usage_dir_revoke);
	memset(&rev, 0, sizeof(rev));
	if (!enl_id_valid(a.id) || strlen(a.reason) >= sizeof(rev.reason))
		return usage_err("--id must be a valid id and --reason under 256 bytes",
				 usage_dir_revoke);
	memcpy(rev.id, a.id, strlen(a.id) + 1);
	memcpy(rev.reason, a.reason, strlen(a.reason) + 1);
	rev.version = (uint32_t)v;
	if ((ret = load_authority(a.authority, &auth)) != 0)
		return ret;
	ret = EXIT_FAIL;
	if (enl_identity_public(auth, enl_identity_current(auth), pk, epk) != ENL_OK)
		goto out;
	chk.authority_pk = pk;
	if ((rc = enl_directory_load(a.in, &chk, &d)) != ENL_OK) {
		fail(a.in, rc);
		goto out;
	}
	rc = enl_directory_revoke(auth, d, &rev, (int64_t)time(NULL), &out, &out_len);
	if (rc == ENL_E_UNKNOWN_SENDER)
		fprintf(stderr, "%s: %s: no agency %s in it\n", prog, a.in, a.id);
	else if (rc == ENL_E_UNKNOWN_KEY_VERSION)
		fprintf(stderr, "%s: %s: %s has no key version %" PRIu64 "\n", prog,
			a.in, a.id, v);
	else if (rc == ENL_E_EXISTS)
		fprintf(stderr, "%s: %s: that key is revoked already\n", prog, a.in);
	else if (rc != ENL_OK)
		fail("revoking", rc);
	if (rc != ENL_OK)
		goto out;
	if ((rc = enl_file_write(a.out, out, out_len, 0644, true)) != ENL_OK) {
		fail(a.out, rc);
		goto out;
	}
	printf("revoked %s %s%s; directory serial %" PRIu64 " written to %s\n", a.id,
	       v ? "version " : "every version", v ? a.version : "",
	       enl_directory_serial(d) + 1, a.out);
	ret = 0;
out:
	free(out);
	enl_directory_free(d);
	enl_identity_free(auth);
	return ret;
}

/* ---- directory show / verify ---- */

static void
show_human(const struct enl_directory *d, bool authority_checked)
{
	char t1[32], t2[32], fp[ENL_FINGERPRINT_LEN];

	enl_time_format(enl_directory_issued_at(d), t1);
	enl_time_format(enl_directory_expires_at(d), t2);
	enl_fingerprint(enl_directory_authority_pk(d), fp);
	printf("directory serial %" PRIu64 "\n  issued  %s\n  expires %s\n",
	       enl_directory_serial(d), t1, t2);
	printf("  authority %s (%s)\n", fp,
	       authority_checked ? "pinned key, signature valid"
				 : "signature valid; key NOT checked against a pinned one");
	printf("agencies (%zu):\n", enl_directory_card_count(d));
	for (size_t i = 0; i < enl_directory_card_count(d); i++) {
		const struct enl_card *c = enl_directory_card_at(d, i);
		printf("  %-20s %-18s %-4s %s\n", c->id, enl_kind_name(c->kind),
		       c->country, c->name);
		for (size_t k = 0; k < c->n_keys; k++) {
			const struct enl_card_key *key = &c->keys[k];
			const struct enl_revocation *r =
				enl_directory_revoked(d, c->id, key->version);
			enl_fingerprint(key->sign_pk, fp);
			printf("      key v%-3" PRIu32 " %s  %s\n", key->version, fp,
			       r ? "REVOKED"
				 : key->version == c->current_version ? "current"
								     : "retired");
		}
	}
	printf("revocations (%zu):\n", enl_directory_revocation_count(d));
	for (size_t i = 0; i < enl_directory_revocation_count(d); i++) {
		const struct enl_revocation *r = enl_directory_revocation_at(d, i);
		enl_time_format(r->revoked_at, t1);
		if (r->version)
			printf("  %s v%" PRIu32 "  %s  %s\n", r->id, r->version, t1, r->reason);
		else
			printf("  %s (all versions)  %s  %s\n", r->id, t1, r->reason);
	}
}

static void
show_json(const struct enl_directory *d, bool authority_checked)
{
	struct enl_json j;
	char t[32], fp[ENL_FINGERPRINT_LEN], hex[65];

	enl_json_init(&j, stdout);
	enl_json_obj_begin(&j, NULL);
	enl_json_int(&j, "serial", (int64_t)enl_directory_serial(d));
	enl_time_format(enl_directory_issued_at(d), t);
	enl_json_str(&j, "issued_at", t);
	enl_time_format(enl_directory_expires_at(d), t);
	enl_json_str(&j, "expires_at", t);
	enl_hex(enl_directory_authority_pk(d), 32, hex);
	enl_json_str(&j, "authority_key", hex);
	enl_fingerprint(enl_directory_authority_pk(d), fp);
	enl_json_str(&j, "authority_fingerprint", fp);
	enl_json_bool(&j, "authority_pinned", authority_checked);
	enl_json_arr_begin(&j, "agencies");
	for (size_t i = 0; i < enl_directory_card_count(d); i++) {
		const struct enl_card *c = enl_directory_card_at(d, i);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "id", c->id);
		enl_json_str(&j, "kind", enl_kind_name(c->kind));
		enl_json_str(&j, "country", c->country);
		enl_json_str(&j, "name", c->name);
		enl_json_int(&j, "current_version", c->current_version);
		enl_json_arr_begin(&j, "keys");
		for (size_t k = 0; k < c->n_keys; k++) {
			const struct enl_card_key *key = &c->keys[k];
			enl_json_obj_begin(&j, NULL);
			enl_json_int(&j, "version", key->version);
			enl_hex(key->sign_pk, 32, hex);
			enl_json_str(&j, "sign_pk", hex);
			enl_hex(key->enc_pk, 32, hex);
			enl_json_str(&j, "enc_pk", hex);
			enl_fingerprint(key->sign_pk, fp);
			enl_json_str(&j, "fingerprint", fp);
			enl_json_bool(&j, "revoked",
				      enl_directory_revoked(d, c->id, key->version) != NULL);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_obj_end(&j);
	}
	enl_json_arr_end(&j);
	enl_json_arr_begin(&j, "revocations");
	for (size_t i = 0; i < enl_directory_revocation_count(d); i++) {
		const struct enl_revocation *r = enl_directory_revocation_at(d, i);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "id", r->id);
		enl_json_int(&j, "version", r->version);
		enl_json_str(&j, "reason", r->reason);
		enl_time_format(r->revoked_at, t);
		enl_json_str(&j, "revoked_at", t);
		enl_json_obj_end(&j);
	}
	enl_json_arr_end(&j);
	enl_json_obj_end(&j);
	enl_json_end(&j);
}

static const char usage_dir_show[] = "enlace-keys directory show [--json] FILE";

static int
cmd_directory_show(int argc, char **argv)
{
	static const int allowed[] = {OPT_JSON, 0};
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_directory *d = NULL;
	struct args a;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_show, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nPrints a directory's agencies, keys and revocations. "
		       "It checks the signatures\nbut not who signed: use `directory "
		       "verify` with the pinned authority key.\n", usage_dir_show);
		return 0;
	}
	if (a.argc != 1)
		return usage_err("expected one directory file", usage_dir_show);
	if ((rc = enl_directory_load(a.argv[0], &chk, &d)) != ENL_OK)
		return fail(a.argv[0], rc);
	if (a.json)
		show_json(d, false);
	else
		show_human(d, false);
	enl_directory_free(d);
	return 0;
}

static const char usage_dir_verify[] =
	"enlace-keys directory verify --authority-pub PUBFILE [--json] FILE";

static int
cmd_directory_verify(int argc, char **argv)
{
	static const int allowed[] = {OPT_AUTHPUB, OPT_JSON, 0};
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_directory *d = NULL;
	struct args a;
	uint8_t pk[32];
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_verify, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nChecks that FILE is a directory signed by the pinned "
		       "authority key, not\nexpired, and that every card's signature "
		       "holds. Exit 0 if so, 1 if not.\n", usage_dir_verify);
		return 0;
	}
	if (a.argc != 1 || a.authpub == NULL)
		return usage_err("expected --authority-pub and one directory file",
				 usage_dir_verify);
	if (read_authority_pub(a.authpub, pk) != ENL_OK)
		return EXIT_FAIL;
	chk.authority_pk = pk;
	chk.now = (int64_t)time(NULL);
	rc = enl_directory_load(a.argv[0], &chk, &d);
	if (a.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "file", a.argv[0]);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		if (rc != ENL_OK)
			enl_json_str(&j, "error", enl_strerror(rc));
		else
			enl_json_int(&j, "serial", (int64_t)enl_directory_serial(d));
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		char t[32];
		enl_time_format(enl_directory_expires_at(d), t);
		printf("%s: valid: serial %" PRIu64 ", %zu agencies, %zu revocations, "
		       "expires %s\n", a.argv[0], enl_directory_serial(d),
		       enl_directory_card_count(d), enl_directory_revocation_count(d), t);
	} else {
		fprintf(stderr, "%s: %s: NOT VALID: %s\n", prog, a.argv[0], enl_strerror(rc));
	}
	enl_directory_free(d);
	return rc == ENL_OK ? 0 : EXIT_FAIL;
}

/* ---- fingerprint ---- */

static const char usage_fingerprint[] = "enlace-keys fingerprint [--json] FILE";

static void
print_fp(bool json, const char *what, const char *id, uint32_t version,
	 const uint8_t pk[32])
{
	char fp[ENL_FINGERPRINT_LEN];

	enl_fingerprint(pk, fp);
	if (json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "type", what);
		enl_json_str(&j, "id", id);
		if (version)
			enl_json_int(&j, "version", version);
		enl_json_str(&j, "fingerprint", fp);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (version) {
		printf("%s  %s %s v%" PRIu32 "\n", fp, what, id, version);
	} else {
		printf("%s  %s %s\n", fp, what, id);
	}
}

static int
cmd_fingerprint(int argc, char **argv)
{
	static const int allowed[] = {OPT_JSON, 0};
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_directory *d = NULL;
	struct enl_card card;
	char name[ENL_VKEY_NAME_MAX + 1];
	uint8_t *buf = NULL, pk[32];
	size_t len = 0;
	struct args a;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_fingerprint, &a)) != 0)
		return ret;
	if (a.help) {
		printf("usage: %s\n\nPrints the fingerprint of a public key file "
		       "(authority.pub), a card (the\ncurrent identity key) or a "
		       "directory (its authority key): 8 groups of 4\nhex digits, to be "
		       "compared aloud.\n", usage_fingerprint);
		return 0;
	}
	if (a.argc != 1)
		return usage_err("expected one file", usage_fingerprint);
	if ((rc = enl_file_read(a.argv[0], ENL_DIRECTORY_MAX, &buf, &len)) != ENL_OK)
		return fail(a.argv[0], rc);
	ret = 0;
	if (memchr(buf, '+', len) && enl_vkey_parse((const char *)buf, name, pk) == ENL_OK) {
		print_fp(a.json, "key", name, 0, pk);
	} else if (enl_card_parse(buf, len, &card) == ENL_OK) {
		print_fp(a.json, "card", card.id, card.current_version,
			 enl_card_key(&card, card.current_version)->sign_pk);
	} else if (enl_directory_parse(buf, len, &chk, &d) == ENL_OK) {
		print_fp(a.json, "directory", "authority key", 0,
			 enl_directory_authority_pk(d));
		enl_directory_free(d);
	} else {
		fprintf(stderr, "%s: %s: not a public key, card or directory (or its "
			"signature does not verify)\n", prog, a.argv[0]);
		ret = EXIT_FAIL;
	}
	free(buf);
	return ret;
}

/* ---- the command table ---- */

struct command {
	const char *group, *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"authority", "init", cmd_authority_init, "create the directory authority's key"},
	{"agency", "new", cmd_agency_new, "create an agency's keys and card"},
	{"agency", "rotate", cmd_agency_rotate, "make the next key version"},
	{"broker", "new", cmd_broker_new, "create a broker's keys and card"},
	{"directory", "build", cmd_directory_build, "sign a directory of cards"},
	{"directory", "revoke", cmd_directory_revoke, "revoke a key in a directory"},
	{"directory", "show", cmd_directory_show, "print a directory"},
	{"directory", "verify", cmd_directory_verify, "check a directory against the pinned key"},
	{"fingerprint", NULL, cmd_fingerprint, "print a key's fingerprint"},
};

static void
help(FILE *fp)
{
	fprintf(fp, "usage: enlace-keys COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s %s", commands[i].group,
			 commands[i].name ? commands[i].name : "");
		fprintf(fp, "  %-22s %s\n", name, commands[i].summary);
	}
	fprintf(fp, "\n`enlace-keys COMMAND --help` tells more. Exit status: 0 success, "
		    "1 failure\n(a verification that fails included), 2 usage error.\n");
}

int
main(int argc, char **argv)
{
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
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		if (strcmp(argv[1], c->group) != 0)
			continue;
		if (c->name == NULL)
			return c->fn(argc - 1, argv + 1);
		if (argc >= 3 && strcmp(argv[2], c->name) == 0)
			return c->fn(argc - 2, argv + 2);
	}
	fprintf(stderr, "%s: unknown command '%s%s%s'\n", prog, argv[1],
		argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "");
	help(stderr);
	return EXIT_USAGE;
}
