/*
 * enlace-keys fingerprint: a key's fingerprint, to compare by voice.
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

/* ---- fingerprint ---- */

static const char usage_fingerprint[] = "enlace-keys fingerprint [--json] FILE";
static const char help_fingerprint[] =
	"Prints the fingerprint of a public key file "
	"(authority.pub), a card (the\ncurrent identity key) or a "
	"directory (its authority key): 8 groups of 4\nhex digits, to be "
	"compared aloud.\n";

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

int
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

	if ((ret = parse_args(argc, argv, allowed, usage_fingerprint, help_fingerprint, &a)) >= 0)
		return ret;
	if (a.argc != 1)
		return enl_cli_usage_line(prog, "expected one file", usage_fingerprint);
	if ((rc = enl_file_read(a.argv[0], ENL_DIRECTORY_MAX, &buf, &len)) != ENL_OK)
		return enl_cli_fail(prog, a.argv[0], rc);
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
		ret = ENL_EXIT_FAIL;
	}
	free(buf);
	return ret;
}
