/*
 * enlace-audit: the auditor's tool. It needs nothing from the broker's
 * operator but the log's files (or a copy of them) and the broker's
 * public key, taken from the directory.
 *
 *   enlace-audit verify DIR --broker-pub FILE [--json]
 *   enlace-audit merkle root|inclusion|consistency ...
 *
 * FILE is the broker's card (from the signed directory) or its signed-note
 * verifier key. Exit status: 0 the log holds, 1 it does not (the first bad
 * index or file is named), 2 usage error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/keys.h"
#include "enlace/tlog.h"

static const char usage[] =
	"usage: enlace-audit verify DIR --broker-pub FILE [--json]\n"
	"       enlace-audit merkle root|inclusion|consistency ... (see merkle --help)\n\n"
	"Rebuilds the whole tree from the log's entry bundles in DIR, compares every\n"
	"hash tile byte for byte, and checks the checkpoint's signature with the\n"
	"broker's key (FILE: the broker's card, or its verifier key line).\n";

/* The broker's note key from its card ("enlace/<id>") or a vkey line. */
static int
broker_key(const char *path, struct enl_note_verifier *v)
{
	struct enl_card card;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, ENL_CARD_MAX, &buf, &len);

	if (rc != ENL_OK)
		return rc;
	if (enl_card_parse(buf, len, &card) == ENL_OK) {
		snprintf(v->name, sizeof(v->name), "enlace/%s", card.id);
		memcpy(v->pk, enl_card_key(&card, card.current_version)->sign_pk, 32);
	} else {
		rc = memchr(buf, '\0', len) ? ENL_E_MALFORMED
					     : enl_vkey_parse((const char *)buf, v->name, v->pk);
	}
	free(buf);
	return rc;
}

static int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"broker-pub", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct enl_note_verifier v = {0};
	const char *pub = NULL;
	char why[600], hex[65];
	enl_mhash root;
	uint64_t size = 0;
	bool json = false;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': pub = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fprintf(stderr, "enlace-audit: unknown option '%s'\n%s", argv[optind - 1], usage); return 2;
		}
	}
	if (pub == NULL || optind + 1 != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if ((rc = broker_key(pub, &v)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", pub, enl_strerror(rc));
		return 1;
	}
	rc = enl_tlog_verify(argv[optind], &v, &size, root, why, sizeof(why));
	if (json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		enl_json_str(&j, "origin", v.name);
		if (rc == ENL_OK) {
			enl_json_int(&j, "size", (int64_t)size);
			enl_hex(root, 32, hex);
			enl_json_str(&j, "root", hex);
		} else {
			enl_json_str(&j, "error", why[0] ? why : enl_strerror(rc));
		}
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		enl_hex(root, 32, hex);
		printf("%s: log %s holds: %" PRIu64 " entries, every tile rebuilt and equal, "
		       "checkpoint signed by the broker, root %s\n", argv[optind], v.name, size, hex);
	} else {
		fprintf(stderr, "enlace-audit: %s: NOT VALID: %s\n", argv[optind],
			why[0] ? why : enl_strerror(rc));
	}
	return rc == ENL_OK ? 0 : 1;
}

/* ---- merkle: RFC 6962 over files, to compare with other implementations ---- */

static const char usage_merkle[] =
	"usage: enlace-audit merkle root FILE...\n"
	"       enlace-audit merkle inclusion INDEX FILE...\n"
	"       enlace-audit merkle consistency FIRST FILE...\n\n"
	"Each FILE is one leaf (its bytes are the entry). Prints the RFC 6962 tree\n"
	"head of all the files, or the inclusion proof of leaf INDEX, or the\n"
	"consistency proof from the tree of the first FIRST leaves, in hex.\n";

static bool
parse_index(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*v = strtoull(s, &end, 10);
	return *end == '\0';
}

static int
cmd_merkle(int argc, char **argv)
{
	enl_mhash *leaves, root, proof[ENL_MERKLE_MAX_PROOF];
	const char *what;
	char hex[65];
	uint64_t arg = 0, n;
	size_t len = 0;
	int first, rc = ENL_OK;

	if (argc < 3 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_merkle, argc < 3 ? stderr : stdout);
		return argc < 3 ? 2 : 0;
	}
	what = argv[1];
	first = 2;
	if (strcmp(what, "inclusion") == 0 || strcmp(what, "consistency") == 0) {
		if (!parse_index(argv[2], &arg) || argc < 4) {
			fputs(usage_merkle, stderr);
			return 2;
		}
		first = 3;
	} else if (strcmp(what, "root") != 0) {
		fputs(usage_merkle, stderr);
		return 2;
	}
	n = (uint64_t)(argc - first);
	if ((leaves = calloc(n, sizeof(*leaves))) == NULL)
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t blen = 0;
		if ((rc = enl_file_read(argv[first + i], (size_t)1 << 30, &buf, &blen)) != ENL_OK) {
			fprintf(stderr, "enlace-audit: %s: %s\n", argv[first + i], enl_strerror(rc));
			free(leaves);
			return 1;
		}
		enl_merkle_leaf_hash(buf, blen, leaves[i]);
		free(buf);
	}
	enl_merkle_root(leaves, n, root);
	enl_hex(root, 32, hex);
	if (strcmp(what, "root") == 0) {
		printf("size %" PRIu64 "\nroot %s\n", n, hex);
	} else {
		rc = strcmp(what, "inclusion") == 0
			     ? enl_merkle_inclusion_proof(leaves, n, arg, proof, &len)
			     : enl_merkle_consistency_proof(leaves, arg, n, proof, &len);
		if (rc != ENL_OK) {
			fprintf(stderr, "enlace-audit: %s %" PRIu64 " is not possible in a tree of %"
				PRIu64 " leaves\n", what, arg, n);
		} else {
			printf("size %" PRIu64 "\nroot %s\n", n, hex);
			for (size_t i = 0; i < len; i++) {
				enl_hex(proof[i], 32, hex);
				printf("proof %s\n", hex);
			}
		}
	}
	free(leaves);
	return rc == ENL_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (enl_init() != ENL_OK)
		return 1;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "merkle") == 0)
		return cmd_merkle(argc - 1, argv + 1);
	fputs(usage, stderr);
	return 2;
}
