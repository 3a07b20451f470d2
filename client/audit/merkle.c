/*
 * enlace-audit merkle: RFC 6962 over files, to compare with other
 * implementations.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "audit.h"
#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"

/* ---- merkle: RFC 6962 over files, to compare with other implementations ---- */

static const char usage_merkle[] =
	"usage: enlace-audit merkle root FILE... [--json]\n"
	"       enlace-audit merkle inclusion INDEX FILE...\n"
	"       enlace-audit merkle consistency FIRST FILE...\n\n"
	"Each FILE is one leaf (its bytes are the entry). Prints the RFC 6962 tree\n"
	"head of all the files, or the inclusion proof of leaf INDEX, or the\n"
	"consistency proof from the tree of the first FIRST leaves, in hex (--json:\n"
	"an object with size, root and proof).\n";

static bool
parse_index(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*v = strtoull(s, &end, 10);
	return *end == '\0';
}

int
cmd_merkle(int argc, char **argv)
{
	enl_mhash *leaves, root, proof[ENL_MERKLE_MAX_PROOF];
	const char *what;
	char hex[65];
	uint64_t arg = 0, n;
	size_t len = 0;
	int first, rc = ENL_OK, kept = 0;
	bool json = false;

	/* --json anywhere; every other argument in order */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--json") == 0)
			json = true;
		else
			argv[kept++] = argv[i];
	}
	argc = kept;
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
	if (strcmp(what, "root") != 0) {
		rc = strcmp(what, "inclusion") == 0
			     ? enl_merkle_inclusion_proof(leaves, n, arg, proof, &len)
			     : enl_merkle_consistency_proof(leaves, arg, n, proof, &len);
		if (rc != ENL_OK)
			fprintf(stderr, "enlace-audit: %s %" PRIu64 " is not possible in a tree of %"
				PRIu64 " leaves\n", what, arg, n);
	}
	if (rc == ENL_OK && json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_int(&j, "size", (int64_t)n);
		enl_json_str(&j, "root", hex);
		if (strcmp(what, "root") != 0) {
			enl_json_arr_begin(&j, "proof");
			for (size_t i = 0; i < len; i++) {
				enl_hex(proof[i], 32, hex);
				enl_json_str(&j, NULL, hex);
			}
			enl_json_arr_end(&j);
		}
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		printf("size %" PRIu64 "\nroot %s\n", n, hex);
		for (size_t i = 0; i < len; i++) {
			enl_hex(proof[i], 32, hex);
			printf("proof %s\n", hex);
		}
	}
	free(leaves);
	return rc == ENL_OK ? 0 : 1;
}
