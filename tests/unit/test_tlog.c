/* The audit log in tiles: paths, the growing tree, write and read back,
 * proofs from tiles, and damage found and located. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "enlace/tlog.h"
#include "harness.h"
#include "world.h"

static char dir[256];
static struct enl_identity *broker;
static struct enl_note_verifier v;

static void
entry_of(uint64_t i, uint8_t *buf, size_t *len)
{
	*len = (size_t)snprintf((char *)buf, 64, "entry %llu", (unsigned long long)i);
}

static void
test_paths(void)
{
	char p[ENL_TILE_PATH_MAX];

	enl_tile_path(0, 1234067, 0, p);
	CHECK(strcmp(p, "tile/0/x001/x234/067") == 0);
	enl_tile_path(-1, 5, 7, p);
	CHECK(strcmp(p, "tile/entries/005.p/7") == 0);
	enl_tile_path(2, 0, 256, p);
	CHECK(strcmp(p, "tile/2/000") == 0);
}

static void
test_tree_matches_rfc(void)
{
	enl_mhash leaves[300], a, b;
	struct enl_tlog_tree t;

	enl_tlog_tree_init(&t);
	for (int i = 0; i < 300; i++) {
		uint8_t buf[64];
		size_t len;
		entry_of((uint64_t)i, buf, &len);
		enl_merkle_leaf_hash(buf, len, leaves[i]);
		enl_tlog_tree_append(&t, leaves[i]);
		enl_tlog_tree_root(&t, a);
		enl_merkle_root(leaves, (uint64_t)i + 1, b);
		CHECK(memcmp(a, b, 32) == 0);
	}
}

/* Appends n entries in commits of `step`, then reads everything back. */
static void
write_and_verify(uint64_t n, uint64_t step)
{
	struct enl_tlog *log = NULL;
	char why[512], cmd[600];
	enl_mhash root, want, proof[ENL_MERKLE_MAX_PROOF], *leaves;
	uint64_t size = 0, idx = 0;
	size_t plen = 0;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", dir);
	REQUIRE(system(cmd) == 0);
	REQUIRE((leaves = calloc(n + 1, sizeof(*leaves))) != NULL);
	REQUIRE_OK(enl_tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	for (uint64_t i = 0; i < n; i++) {
		uint8_t buf[64];
		size_t len;
		entry_of(i, buf, &len);
		enl_merkle_leaf_hash(buf, len, leaves[i]);
		CHECK_RC(enl_tlog_append(log, buf, len, &idx), ENL_OK);
		CHECK(idx == i);
		if ((i + 1) % step == 0 || i + 1 == n)
			CHECK_RC(enl_tlog_commit(log, NULL), ENL_OK);
	}
	/* proofs from the tiles, checked against the plain recomputation */
	enl_merkle_root(leaves, n, want);
	for (uint64_t i = 0; i < n; i += 1 + n / 17) {
		CHECK_RC(enl_tlog_inclusion(log, i, n, proof, &plen), ENL_OK);
		CHECK_RC(enl_merkle_inclusion_verify(i, n, leaves[i], proof, plen, want), ENL_OK);
	}
	/* consistency proofs from the tiles: equal to the plain ones, and valid */
	for (uint64_t m = 0; m <= n; m += 1 + n / 13) {
		enl_mhash old, plain[ENL_MERKLE_MAX_PROOF];
		size_t qlen = 0;
		CHECK_RC(enl_tlog_consistency(log, m, n, proof, &plen), ENL_OK);
		CHECK_RC(enl_tlog_root(log, m, old), ENL_OK);
		if (m > 0) {
			enl_mhash direct;
			enl_merkle_root(leaves, m, direct);
			CHECK(memcmp(direct, old, 32) == 0);
			CHECK_RC(enl_merkle_consistency_proof(leaves, m, n, plain, &qlen), ENL_OK);
			CHECK(qlen == plen && memcmp(plain, proof, plen * 32) == 0);
			CHECK_RC(enl_merkle_consistency_verify(m, n, old, want, proof, plen), ENL_OK);
		}
	}
	CHECK_RC(enl_tlog_consistency(log, n, n + 1, proof, &plen), ENL_E_INVAL);
	enl_tlog_close(log);
	log = NULL;
	CHECK_RC(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == n && memcmp(root, want, 32) == 0);
	/* Reopen and go on appending where it stopped. */
	REQUIRE_OK(enl_tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	CHECK(enl_tlog_size(log) == n);
	{
		uint8_t buf[64];
		size_t len;
		entry_of(n, buf, &len);
		enl_merkle_leaf_hash(buf, len, leaves[n]);
		CHECK_RC(enl_tlog_append(log, buf, len, &idx), ENL_OK);
		CHECK_RC(enl_tlog_commit(log, NULL), ENL_OK);
	}
	enl_tlog_close(log);
	enl_merkle_root(leaves, n + 1, want);
	CHECK_RC(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == n + 1 && memcmp(root, want, 32) == 0);
	free(leaves);
}

static void test_sizes_small(void) { for (uint64_t n = 1; n <= 20; n++) write_and_verify(n, 3); }
static void test_size_bundles(void) { write_and_verify(255, 100); write_and_verify(256, 256); write_and_verify(257, 50); }
static void test_size_levels(void) { write_and_verify(256 * 256 + 3, 5000); }

static void
flip(const char *rel, long at)
{
	char path[600];
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	REQUIRE((f = fopen(path, "r+b")) != NULL);
	fseek(f, at, SEEK_SET);
	c = fgetc(f);
	fseek(f, at, SEEK_SET);
	fputc(c ^ 1, f);
	fclose(f);
}

static void
test_damage_located(void)
{
	char why[512];
	enl_mhash root;
	uint64_t size;

	write_and_verify(600, 200);	/* 601 entries: bundles 0, 1 full, 2 partial */
	flip("tile/entries/001", 30);
	CHECK(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)) != ENL_OK);
	CHECK(strstr(why, "tile/0/001") != NULL || strstr(why, "entry 2") != NULL);
	fprintf(stderr, "  damaged bundle: %s\n", why);
	flip("tile/entries/001", 30);
	CHECK_RC(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)), ENL_OK);
	flip("tile/0/002.p/89", 40);
	CHECK_RC(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)), ENL_E_MALFORMED);
	CHECK(strstr(why, "tile/0/002.p/89") != NULL && strstr(why, "513") != NULL);
	fprintf(stderr, "  damaged tile: %s\n", why);
	flip("tile/0/002.p/89", 40);
	flip("checkpoint", 2);
	CHECK(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)) != ENL_OK);
	CHECK(strstr(why, "checkpoint") != NULL);
	flip("checkpoint", 2);
	/* a truncated log: the last bundle is gone */
	{
		char path[600];
		snprintf(path, sizeof(path), "%s/tile/entries/002.p/89", dir);
		CHECK(unlink(path) == 0);
		CHECK(enl_tlog_verify(dir, &v, &size, root, why, sizeof(why)) != ENL_OK);
		CHECK(strstr(why, "entry bundle 2") != NULL);
	}
}

/* Cosignatures held for the published size appear in the checkpoint
 * file, which still verifies with the broker's key alone, and a loaded
 * log hands the note back with them. */
static void
test_cosignatures_published(void)
{
	struct enl_tlog *log = NULL, *back = NULL;
	struct enl_identity *agency = NULL;
	struct enl_checkpoint cp;
	const struct enl_tlog_source src = {dir, enl_tlog_read_dir, NULL, NULL};
	char why[512], *body = NULL, *line = NULL;
	uint8_t buf[64];
	size_t len;
	uint64_t idx;

	write_and_verify(10, 10);	/* 11 entries */
	REQUIRE_OK(world_identity("AR-UIF", 1, &agency));
	REQUIRE_OK(enl_tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	REQUIRE_OK(enl_tlog_load(&src, &v, &back, &cp, why, sizeof(why)));
	CHECK(cp.size == 11);
	REQUIRE_OK(enl_checkpoint_format(&cp, &body));
	REQUIRE_OK(enl_cosign(agency, "AR-UIF", body, 1700000000, &line));
	enl_tlog_close(back);
	CHECK_RC(enl_tlog_set_cosignatures(log, 12, line), ENL_E_INVAL);
	CHECK_RC(enl_tlog_set_cosignatures(log, 11, line), ENL_OK);
	REQUIRE_OK(enl_tlog_load(&src, &v, &back, &cp, why, sizeof(why)));
	CHECK(strstr(enl_tlog_note(back), line) != NULL);
	enl_tlog_close(back);
	/* a bigger checkpoint does not carry them */
	entry_of(11, buf, &len);
	REQUIRE_OK(enl_tlog_append(log, buf, len, &idx));
	REQUIRE_OK(enl_tlog_commit(log, NULL));
	REQUIRE_OK(enl_tlog_flush(log));
	REQUIRE_OK(enl_tlog_load(&src, &v, &back, &cp, why, sizeof(why)));
	CHECK(cp.size == 12 && strstr(enl_tlog_note(back), line) == NULL);
	enl_tlog_close(back);
	enl_tlog_close(log);
	enl_identity_free(agency);
	free(body);
	free(line);
}

int
main(void)
{
	int rc;
	uint8_t epk[32];
	char cmd[300];

	if (enl_init() != ENL_OK || world_identity("OAS-BROKER", 1, &broker) != ENL_OK)
		return 1;
	snprintf(v.name, sizeof(v.name), "enlace/OAS-BROKER");
	if (enl_identity_public(broker, 1, v.pk, epk) != ENL_OK)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/enlace-test-tlog-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(test_paths);
	RUN(test_tree_matches_rfc);
	RUN(test_sizes_small);
	RUN(test_size_bundles);
	RUN(test_size_levels);
	RUN(test_damage_located);
	RUN(test_cosignatures_published);
	rc = harness_done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	enl_identity_free(broker);
	return rc;
}
