/*
 * The audit log's figures: builds a log of N entries (default 1,000,000,
 * each an AuditEntry of the size the broker writes) in a temporary
 * folder, then times
 *   - appending and committing them (batches of 256, one fsync each),
 *   - `enlace-audit verify` of the whole log (the real program),
 *   - inclusion and consistency proofs for random entries, from the tiles.
 *
 *   bench_tlog ENLACE_AUDIT [N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <sodium.h>

#include "tlog.h"
#include "enlace/wire.h"
#include "world.h"
#include "clock.h"

/* An entry like the broker's: QUEUED, with id, hash, names and time. */
static int
entry_of(uint64_t i, uint8_t **out, size_t *len)
{
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	uint8_t id[16], hash[32];

	randombytes_buf(id, sizeof(id));
	randombytes_buf(hash, sizeof(hash));
	e.time = 1795000000 + (int64_t)(i / 100);
	e.event = i % 4 == 0 ? ENLACE__AUDIT_EVENT__SUBMITTED : ENLACE__AUDIT_EVENT__AUDIT_QUEUED;
	e.message_id.data = id;
	e.message_id.len = sizeof(id);
	e.envelope_hash.data = hash;
	e.envelope_hash.len = sizeof(hash);
	e.sender = (char *)"AR-UIF";
	e.recipient = (char *)"BR-PF";
	e.reason = (char *)"";
	e.directory_serial = 7;
	return enl_pb_pack(&e.base, out, len);
}

int
main(int argc, char **argv)
{
	struct enl_identity *broker = NULL;
	struct tlog *log = NULL;
	char dir[] = "/tmp/enlace-bench-tlog-XXXXXX", why[600], vkey[ENL_VKEY_MAX], path[600];
	char cmd[2048];
	uint8_t pk[32], enc[32];
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000, idx;
	double t0, t1, worst = 0, total = 0;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	size_t plen;
	FILE *f;
	int rc;

	if (argc < 2 || n == 0) {
		fprintf(stderr, "usage: bench_tlog ENLACE_AUDIT [N]\n");
		return 2;
	}
	if (enl_init() != ENL_OK || world_identity("OAS-BROKER", 1, &broker) != ENL_OK ||
	    mkdtemp(dir) == NULL || enl_identity_public(broker, 1, pk, enc) != ENL_OK ||
	    enl_vkey_format("enlace/OAS-BROKER", pk, vkey) != ENL_OK)
		return 1;
	snprintf(path, sizeof(path), "%s.vkey", dir);
	if ((f = fopen(path, "w")) == NULL)
		return 1;
	fprintf(f, "%s\n", vkey);
	fclose(f);
	if (tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)) != ENL_OK) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *e = NULL;
		size_t len = 0;
		if (entry_of(i, &e, &len) != ENL_OK || tlog_append(log, e, len, &idx) != ENL_OK)
			return 1;
		free(e);
		if ((i + 1) % 256 == 0 || i + 1 == n)
			if ((rc = tlog_commit(log, NULL)) != ENL_OK) {
				fprintf(stderr, "commit: %s\n", enl_strerror(rc));
				return 1;
			}
	}
	if (tlog_flush(log) != ENL_OK)
		return 1;
	t1 = now_s();
	printf("append+commit   %" PRIu64 " entries in %.2f s (%.0f entries/s, a signed "
	       "checkpoint and an fsync per 256)\n", n, t1 - t0, (double)n / (t1 - t0));

	/* proofs, from the tiles in memory */
	for (int k = 0; k < 10000; k++) {
		uint64_t i = randombytes_uniform((uint32_t)(n < UINT32_MAX ? n : UINT32_MAX));
		double a = now_s(), d;
		if (enl_tlog_inclusion(tlog_tree(log), i, n, proof, &plen) != ENL_OK)
			return 1;
		d = now_s() - a;
		total += d;
		worst = d > worst ? d : worst;
	}
	printf("inclusion proof 10000 random entries of %" PRIu64 ": mean %.1f us, max %.1f us\n",
	       n, total / 10000 * 1e6, worst * 1e6);
	total = worst = 0;
	for (int k = 0; k < 10000; k++) {
		uint64_t m = 1 + randombytes_uniform((uint32_t)(n - 1 ? n - 1 : 1));
		double a = now_s(), d;
		if (enl_tlog_consistency(tlog_tree(log), m, n, proof, &plen) != ENL_OK)
			return 1;
		d = now_s() - a;
		total += d;
		worst = d > worst ? d : worst;
	}
	printf("consistency     10000 random sizes to %" PRIu64 ": mean %.1f us, max %.1f us\n", n,
	       total / 10000 * 1e6, worst * 1e6);
	tlog_close(log);

	snprintf(cmd, sizeof(cmd), "'%s' verify '%s' --broker-pub '%s' --quiet", argv[1], dir, path);
	t0 = now_s();
	rc = system(cmd);
	t1 = now_s();
	printf("enlace-audit verify of %" PRIu64 " entries: %.2f s (exit %d)\n", n, t1 - t0,
	       WEXITSTATUS(rc));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	enl_identity_free(broker);
	return 0;
}
