/*
 * enlace-keys authority init, agency new, broker new, agency rotate:
 * keys and the cards that publish them.
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

static const char usage_authority_init[] =
	"enlace-keys authority init [--id ID] [--passphrase-file F | --no-passphrase] [--force] DIR";
static const char help_authority_init[] =
	"Creates the directory authority's signing key: "
	"DIR/secret.key (0600) and\nDIR/authority.pub, the public key "
	"that every broker and agent pins.\n";

int
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

	if ((ret = parse_args(argc, argv, allowed, usage_authority_init, help_authority_init, &a)) >= 0)
		return ret;
	if (a.argc != 1)
		return enl_cli_usage_line(prog, "expected one folder", usage_authority_init);
	if ((ret = new_identity(&a, a.argv[0], a.id ? a.id : "ENLACE-AUTHORITY",
				&ident)) != 0)
		return ret;
	ret = ENL_EXIT_FAIL;
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
		return enl_cli_usage_line(prog, "expected one folder", usage);
	if (a->id == NULL)
		return enl_cli_usage_line(prog, "--id is required", usage);
	if (a->country != NULL) {
		if (strlen(a->country) >= sizeof(country))
			return enl_cli_usage_line(prog, "--country: 2 to 8 letters A-Z", usage);
		memcpy(country, a->country, strlen(a->country) + 1);
	} else if (!enl_id_prefix(a->id, country)) {
		return enl_cli_usage_line(prog, "--id is not a valid id (e.g. AR-UIF)", usage);
	}
	if ((ret = new_identity(a, a->argv[0], a->id, &ident)) != 0)
		return ret;
	ret = ENL_EXIT_FAIL;
	rc = enl_card_make(ident, kind, country, a->name ? a->name : a->id, NULL,
			   (int64_t)time(NULL), &card, &card_len);
	if (rc == ENL_E_INVAL) {
		ret = enl_cli_usage_line(prog, "--country must be 2 to 8 letters A-Z and --name "
				"printable text of at most 200 bytes", usage);
		goto out;
	}
	if (rc != ENL_OK) {
		enl_cli_fail(prog, "making the card", rc);
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
static const char help_agency_new[] =
	"Creates an agency's Ed25519 identity key and X25519 "
	"encryption key (version 1)\nin DIR/secret.key (0600) and its "
	"signed card in DIR/card.\nKIND: FIU, POLICE, PROSECUTOR, JUDICIAL, "
	"CUSTOMS, CENTRAL_AUTHORITY,\nPOINT_OF_CONTACT, AUDITOR. The country "
	"defaults to the id's prefix, the name\nto the id. The passphrase is "
	"asked on the terminal unless a flag says otherwise.\n";

int
cmd_agency_new(int argc, char **argv)
{
	static const int allowed[] = {OPT_ID, OPT_KIND, OPT_COUNTRY, OPT_NAME,
				      OPT_PASSFILE, OPT_NOPASS, OPT_FORCE, 0};
	struct args a;
	int ret, kind;

	if ((ret = parse_args(argc, argv, allowed, usage_agency_new, help_agency_new, &a)) >= 0)
		return ret;
	if (a.kind == NULL)
		return enl_cli_usage_line(prog, "--kind is required", usage_agency_new);
	kind = enl_kind_parse(a.kind);
	if (kind == 0 || kind == ENL_KIND_BROKER)
		return enl_cli_usage_line(prog, "--kind must be FIU, POLICE, PROSECUTOR, JUDICIAL, "
				 "CUSTOMS, CENTRAL_AUTHORITY, POINT_OF_CONTACT or AUDITOR",
				 usage_agency_new);
	return create_party(&a, usage_agency_new, (enum enl_agency_kind)kind);
}

static const char usage_broker_new[] =
	"enlace-keys broker new --id ID [--country CC] [--name NAME]\n"
	"       [--passphrase-file F | --no-passphrase] [--force] DIR";
static const char help_broker_new[] =
	"Creates a broker's keys (DIR/secret.key, 0600) and "
	"its card (DIR/card, kind BROKER).\n";

int
cmd_broker_new(int argc, char **argv)
{
	static const int allowed[] = {OPT_ID, OPT_COUNTRY, OPT_NAME, OPT_PASSFILE,
				      OPT_NOPASS, OPT_FORCE, 0};
	struct args a;
	int ret;

	if ((ret = parse_args(argc, argv, allowed, usage_broker_new, help_broker_new, &a)) >= 0)
		return ret;
	return create_party(&a, usage_broker_new, ENL_KIND_BROKER);
}

/* ---- agency rotate ---- */

static const char usage_agency_rotate[] =
	"enlace-keys agency rotate [--passphrase-file F] DIR";
static const char help_agency_rotate[] =
	"Makes version N+1 of both keys, keeps the older "
	"private keys (retired: they\nstill open older messages, never "
	"sign) and writes a new card listing every\nversion. Put the new "
	"card in the next directory. DIR may also be the\nbroker's key "
	"folder: restart the broker with the new directory, and\nits "
	"agents take that directory with its first welcome.\n";

int
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

	if ((ret = parse_args(argc, argv, allowed, usage_agency_rotate, help_agency_rotate, &a)) >= 0)
		return ret;
	if (a.argc != 1)
		return enl_cli_usage_line(prog, "expected one folder", usage_agency_rotate);
	join(path, sizeof(path), a.argv[0], "card");
	if ((rc = enl_file_read(path, ENL_CARD_MAX, &buf, &len)) != ENL_OK ||
	    (rc = enl_card_parse(buf, len, &old)) != ENL_OK) {
		free(buf);
		return enl_cli_fail(prog, path, rc);
	}
	free(buf);
	if ((ret = load_identity(a.argv[0], a.pass.file, &ident, &pass, &plen)) != 0)
		return ret;
	ret = ENL_EXIT_FAIL;
	if (strcmp(old.id, enl_identity_id(ident)) != 0) {
		fprintf(stderr, "%s: %s: card is for %s but the key for %s\n", prog,
			path, old.id, enl_identity_id(ident));
		goto out;
	}
	if ((rc = enl_identity_rotate(ident, &v)) != ENL_OK ||
	    (rc = enl_card_make(ident, old.kind, old.country, old.name, &old,
				(int64_t)time(NULL), &card, &card_len)) != ENL_OK) {
		enl_cli_fail(prog, "rotating", rc);
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
