/*
 * enlace-keys directory build, revoke, show, verify.
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

static const char usage_dir_build[] =
	"enlace-keys directory build --authority DIR --serial N --expires WHEN\n"
	"       --out FILE [--keep-revocations OLDFILE] CARD...";
static const char help_dir_build[] =
	"Builds and signs a directory of the given cards. "
	"WHEN is a duration from now\n(90d, 12h, 30m) or a date "
	"(YYYY-MM-DD, UTC). --keep-revocations carries\nthe revocations "
	"of an older directory (checked against the authority) over.\n";

int
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

	if ((ret = parse_args(argc, argv, allowed, usage_dir_build, help_dir_build, &a)) >= 0)
		return ret;
	if (a.authority == NULL || a.serial == NULL || a.expires == NULL || a.out == NULL)
		return enl_cli_usage_line(prog, "--authority, --serial, --expires and --out are required",
				 usage_dir_build);
	if (!parse_u64(a.serial, &serial) || serial == 0)
		return enl_cli_usage_line(prog, "--serial must be a positive whole number", usage_dir_build);
	if (!parse_expiry(a.expires, now, &expires) || expires <= now)
		return enl_cli_usage_line(prog, "--expires must be a duration such as 90d or a future "
				 "date YYYY-MM-DD", usage_dir_build);
	if ((ret = load_authority(a.authority, &auth)) != 0)
		return ret;
	ret = ENL_EXIT_FAIL;
	if (a.keeprev != NULL) {
		struct enl_dir_check chk = {NULL, 0, 0};
		if (enl_identity_public(auth, enl_identity_current(auth), pk, epk) != ENL_OK)
			goto out;
		chk.authority_pk = pk;
		if ((rc = enl_directory_load(a.keeprev, &chk, &prev)) != ENL_OK) {
			enl_cli_fail(prog, a.keeprev, rc);
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
			enl_cli_fail(prog, a.argv[i], rc);
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
		enl_cli_fail(prog, "building the directory", rc);
		goto out;
	}
	if ((rc = enl_file_write(a.out, out, out_len, 0644, true)) != ENL_OK) {
		enl_cli_fail(prog, a.out, rc);
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
static const char help_dir_revoke[] =
	"Writes a copy of the directory with one more "
	"revocation and the serial raised\nby one, signed again. Without "
	"--version every key version of ID is revoked.\n";

int
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

	if ((ret = parse_args(argc, argv, allowed, usage_dir_revoke, help_dir_revoke, &a)) >= 0)
		return ret;
	if (a.authority == NULL || a.in == NULL || a.id == NULL || a.reason == NULL ||
	    a.out == NULL)
		return enl_cli_usage_line(prog, "--authority, --in, --id, --reason and --out are required",
				 usage_dir_revoke);
	if (a.version != NULL && (!parse_u64(a.version, &v) || v == 0 || v > UINT32_MAX))
		return enl_cli_usage_line(prog, "--version must be a positive whole number", usage_dir_revoke);
	memset(&rev, 0, sizeof(rev));
	if (!enl_id_valid(a.id) || strlen(a.reason) >= sizeof(rev.reason))
		return enl_cli_usage_line(prog, "--id must be a valid id and --reason under 256 bytes",
				 usage_dir_revoke);
	memcpy(rev.id, a.id, strlen(a.id) + 1);
	memcpy(rev.reason, a.reason, strlen(a.reason) + 1);
	rev.version = (uint32_t)v;
	if ((ret = load_authority(a.authority, &auth)) != 0)
		return ret;
	ret = ENL_EXIT_FAIL;
	if (enl_identity_public(auth, enl_identity_current(auth), pk, epk) != ENL_OK)
		goto out;
	chk.authority_pk = pk;
	if ((rc = enl_directory_load(a.in, &chk, &d)) != ENL_OK) {
		enl_cli_fail(prog, a.in, rc);
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
		enl_cli_fail(prog, "revoking", rc);
	if (rc != ENL_OK)
		goto out;
	if ((rc = enl_file_write(a.out, out, out_len, 0644, true)) != ENL_OK) {
		enl_cli_fail(prog, a.out, rc);
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
static const char help_dir_show[] =
	"Prints a directory's agencies, keys and revocations. "
	"It checks the signatures\nbut not who signed: use `directory "
	"verify` with the pinned authority key.\n";

int
cmd_directory_show(int argc, char **argv)
{
	static const int allowed[] = {OPT_JSON, 0};
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_directory *d = NULL;
	struct args a;
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_show, help_dir_show, &a)) >= 0)
		return ret;
	if (a.argc != 1)
		return enl_cli_usage_line(prog, "expected one directory file", usage_dir_show);
	if ((rc = enl_directory_load(a.argv[0], &chk, &d)) != ENL_OK)
		return enl_cli_fail(prog, a.argv[0], rc);
	if (a.json)
		show_json(d, false);
	else
		show_human(d, false);
	enl_directory_free(d);
	return 0;
}

static const char usage_dir_verify[] =
	"enlace-keys directory verify --authority-pub PUBFILE [--json] FILE";
static const char help_dir_verify[] =
	"Checks that FILE is a directory signed by the pinned "
	"authority key, not\nexpired, and that every card's signature "
	"holds. Exit 0 if so, 1 if not.\n";

int
cmd_directory_verify(int argc, char **argv)
{
	static const int allowed[] = {OPT_AUTHPUB, OPT_JSON, 0};
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_directory *d = NULL;
	struct args a;
	uint8_t pk[32];
	int ret, rc;

	if ((ret = parse_args(argc, argv, allowed, usage_dir_verify, help_dir_verify, &a)) >= 0)
		return ret;
	if (a.argc != 1 || a.authpub == NULL)
		return enl_cli_usage_line(prog, "expected --authority-pub and one directory file",
				 usage_dir_verify);
	if (read_authority_pub(a.authpub, pk) != ENL_OK)
		return ENL_EXIT_FAIL;
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
	return rc == ENL_OK ? 0 : ENL_EXIT_FAIL;
}
