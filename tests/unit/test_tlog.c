/* The audit log in tiles: paths, the growing tree, write and read back,
 * proofs from tiles, and damage found and located. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tlog.h"
#include "harness.h"
#include "world.h"

static char dir[256];
static struct enl_identity *broker;
static struct enl_note_verifier v;

/* The test folder, emptied for the next log. */
static void
empty_dir(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", dir);
	REQUIRE(system(cmd) == 0);
}

static void
entry_of(uint64_t i, uint8_t *buf, size_t *len)
{
	*len = (size_t)snprintf((char *)buf, 64, "entry %llu", (unsigned long long)i);
}

/* Appends entry i; `leaf` gets its leaf hash, *idx where it went. */
static int
append_entry(struct tlog *log, uint64_t i, enl_mhash leaf, uint64_t *idx)
{
	uint8_t buf[64];
	size_t len;

	entry_of(i, buf, &len);
	enl_merkle_leaf_hash(buf, len, leaf);
	return tlog_append(log, buf, len, idx);
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

/* What the log listener serves: the paths enl_tile_path writes, parsed
 * back; any other spelling is refused. */
static void
test_paths_parsed(void)
{
	static const char *refused[] = {
		"tile/0/../000", "tile/00/000", "tile/0/0000", "tile/0/00", "tile/0/000/",
		"tile/0/x000/001", "tile/0/x001", "tile/0/x001/", "tile/0/000.p/0",
		"tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/", "tile/0/000.q/5",
		"tile/8/000", "tile/entries/-01", "tile//000", "/tile/0/000", "tile/0/+00",
		"tile/0/x999/x999/x999/x999/x999/x999/x999/000", "tile/0/%30%30%30", "checkpoint",
		"tile/0/000\\", "", "tile/entries/000.p/5/..",
	};
	uint64_t index;
	unsigned width;
	int level;

	CHECK(enl_tile_path_parse("tile/0/x001/x234/067", &level, &index, &width));
	CHECK(level == 0 && index == 1234067 && width == 0);
	CHECK(enl_tile_path_parse("tile/entries/005.p/7", &level, &index, &width));
	CHECK(level == -1 && index == 5 && width == 7);
	CHECK(enl_tile_path_parse("tile/7/x018/x446/x744/x073/x709/x551/615.p/255", &level, &index,
				  &width));
	CHECK(level == 7 && index == UINT64_MAX && width == 255);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		bool parsed = enl_tile_path_parse(refused[i], &level, &index, &width);
		if (parsed)
			fprintf(stderr, "parsed: %s\n", refused[i]);
		CHECK(!parsed);
	}
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
	struct tlog *log = NULL;
	char why[512];
	enl_mhash root, want, proof[ENL_MERKLE_MAX_PROOF], *leaves;
	uint64_t size = 0, idx = 0;
	size_t plen = 0;

	empty_dir();
	REQUIRE((leaves = calloc(n + 1, sizeof(*leaves))) != NULL);
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	for (uint64_t i = 0; i < n; i++) {
		CHECK_RC(append_entry(log, i, leaves[i], &idx), ENL_OK);
		CHECK(idx == i);
		if ((i + 1) % step == 0 || i + 1 == n)
			CHECK_RC(tlog_commit(log, NULL), ENL_OK);
	}
	/* proofs from the tiles, checked against the plain recomputation */
	enl_merkle_root(leaves, n, want);
	for (uint64_t i = 0; i < n; i += 1 + n / 17) {
		CHECK_RC(enl_tlog_inclusion(tlog_tree(log), i, n, proof, &plen), ENL_OK);
		CHECK_RC(enl_merkle_inclusion_verify(i, n, leaves[i], proof, plen, want), ENL_OK);
	}
	/* consistency proofs from the tiles: equal to the plain ones, and valid */
	for (uint64_t m = 0; m <= n; m += 1 + n / 13) {
		enl_mhash old, plain[ENL_MERKLE_MAX_PROOF];
		size_t qlen = 0;
		CHECK_RC(enl_tlog_consistency(tlog_tree(log), m, n, proof, &plen), ENL_OK);
		CHECK_RC(enl_tlog_root(tlog_tree(log), m, old), ENL_OK);
		if (m > 0) {
			enl_mhash direct;
			enl_merkle_root(leaves, m, direct);
			CHECK(memcmp(direct, old, 32) == 0);
			CHECK_RC(enl_merkle_consistency_proof(leaves, m, n, plain, &qlen), ENL_OK);
			CHECK(qlen == plen && memcmp(plain, proof, plen * 32) == 0);
			CHECK_RC(enl_merkle_consistency_verify(m, n, old, want, proof, plen), ENL_OK);
		}
	}
	CHECK_RC(enl_tlog_consistency(tlog_tree(log), n, n + 1, proof, &plen), ENL_E_INVAL);
	tlog_close(log);
	log = NULL;
	CHECK_RC(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == n && memcmp(root, want, 32) == 0);
	/* Reopen and go on appending where it stopped. */
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	CHECK(tlog_size(log) == n);
	CHECK_RC(append_entry(log, n, leaves[n], &idx), ENL_OK);
	CHECK_RC(tlog_commit(log, NULL), ENL_OK);
	tlog_close(log);
	enl_merkle_root(leaves, n + 1, want);
	CHECK_RC(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == n + 1 && memcmp(root, want, 32) == 0);
	free(leaves);
}

static void test_sizes_small(void) { for (uint64_t n = 1; n <= 20; n++) write_and_verify(n, 3); }
static void test_size_bundles(void) { write_and_verify(255, 100); write_and_verify(256, 256); write_and_verify(257, 50); }
static void test_size_levels(void) { write_and_verify(256 * 256 + 3, 5000); }

/* As a broker's receipts ask: after each commit, the proof of each of the
 * newest entries under the new size, and of a few older ones. Proofs share
 * the roots of small and right-edge ranges (kept between calls). */
static void
test_proofs_of_newest(void)
{
	struct tlog *log = NULL;
	char why[512];
	enl_mhash want, proof[ENL_MERKLE_MAX_PROOF], leaves[700];
	uint64_t idx = 0;
	size_t plen = 0;

	empty_dir();
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	for (uint64_t n = 0; n < 700;) {
		for (uint64_t k = 0; k < 1 + n % 11 && n < 700; k++, n++)
			CHECK_RC(append_entry(log, n, leaves[n], &idx), ENL_OK);
		CHECK_RC(tlog_commit(log, NULL), ENL_OK);
		enl_merkle_root(leaves, n, want);
		for (uint64_t i = n > 24 ? n - 24 : 0; i < n; i++) {
			CHECK_RC(enl_tlog_inclusion(tlog_tree(log), i, n, proof, &plen), ENL_OK);
			CHECK_RC(enl_merkle_inclusion_verify(i, n, leaves[i], proof, plen, want),
				 ENL_OK);
		}
		for (uint64_t i = 0; i < n; i += 1 + n / 5) {
			CHECK_RC(enl_tlog_inclusion(tlog_tree(log), i, n, proof, &plen), ENL_OK);
			CHECK_RC(enl_merkle_inclusion_verify(i, n, leaves[i], proof, plen, want),
				 ENL_OK);
		}
	}
	tlog_close(log);
}

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
	CHECK(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)) != ENL_OK);
	CHECK(strstr(why, "tile/0/001") != NULL || strstr(why, "entry 2") != NULL);
	fprintf(stderr, "  damaged bundle: %s\n", why);
	flip("tile/entries/001", 30);
	CHECK_RC(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)), ENL_OK);
	flip("tile/0/002.p/89", 40);
	CHECK_RC(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)), ENL_E_MALFORMED);
	CHECK(strstr(why, "tile/0/002.p/89") != NULL && strstr(why, "513") != NULL);
	fprintf(stderr, "  damaged tile: %s\n", why);
	flip("tile/0/002.p/89", 40);
	flip("checkpoint", 2);
	CHECK(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)) != ENL_OK);
	CHECK(strstr(why, "checkpoint") != NULL);
	flip("checkpoint", 2);
	/* a truncated log: the last bundle is gone */
	{
		char path[600];
		snprintf(path, sizeof(path), "%s/tile/entries/002.p/89", dir);
		CHECK(unlink(path) == 0);
		CHECK(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)) != ENL_OK);
		CHECK(strstr(why, "entry bundle 2") != NULL);
	}
}

/* Cosignatures held for the published size appear in the checkpoint
 * file, which still verifies with the broker's key alone, and a loaded
 * log hands the note back with them. */
static void
test_cosignatures_published(void)
{
	struct tlog *log = NULL;
	struct enl_tlog *back = NULL;
	struct enl_identity *agency = NULL;
	struct enl_checkpoint cp;
	const struct enl_tlog_source src = {dir, enl_tlog_read_dir, NULL, NULL};
	char why[512], *body = NULL, *line = NULL;
	uint8_t buf[64];
	size_t len;
	uint64_t idx;

	write_and_verify(10, 10);	/* 11 entries */
	REQUIRE_OK(world_identity("AR-UIF", 1, &agency));
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	REQUIRE_OK(enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why)));
	CHECK(cp.size == 11);
	REQUIRE_OK(enl_checkpoint_format(&cp, &body));
	REQUIRE_OK(enl_cosign(agency, "AR-UIF", body, 1700000000, &line));
	enl_tlog_free(back);
	CHECK_RC(tlog_set_cosignatures(log, 12, line), ENL_E_INVAL);
	CHECK_RC(tlog_set_cosignatures(log, 11, line), ENL_OK);
	REQUIRE_OK(enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why)));
	CHECK(strstr(enl_tlog_note(back), line) != NULL);
	enl_tlog_free(back);
	/* a bigger checkpoint does not carry them */
	entry_of(11, buf, &len);
	REQUIRE_OK(tlog_append(log, buf, len, &idx));
	REQUIRE_OK(tlog_commit(log, NULL));
	REQUIRE_OK(tlog_flush(log));
	REQUIRE_OK(enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why)));
	CHECK(cp.size == 12 && strstr(enl_tlog_note(back), line) == NULL);
	enl_tlog_free(back);
	tlog_close(log);
	enl_identity_free(agency);
	free(body);
	free(line);
}

/* An external journal in memory, as the broker's store is one. */
struct memjournal {
	uint8_t **e;
	size_t *len, n, cap;
};

static int
mj_append(void *ctx, uint64_t first, const uint8_t *const *entries, const size_t *lens, size_t n)
{
	struct memjournal *j = ctx;

	if (first != j->n || j->n + n > j->cap)
		return ENL_E_IO;
	for (size_t i = 0; i < n; i++) {
		if ((j->e[j->n] = malloc(lens[i] + 1)) == NULL)
			return ENL_E_NOMEM;
		memcpy(j->e[j->n], entries[i], lens[i]);
		j->len[j->n++] = lens[i];
	}
	return ENL_OK;
}

static int
mj_load(void *ctx, int (*cb)(void *arg, const uint8_t *entry, size_t len), void *arg)
{
	struct memjournal *j = ctx;
	int rc = ENL_OK;

	for (size_t i = 0; rc == ENL_OK && i < j->n; i++)
		rc = cb(arg, j->e[i], j->len[i]);
	return rc;
}

static int
mj_get(void *ctx, uint64_t index, uint8_t **out, size_t *len)
{
	struct memjournal *j = ctx;

	if (index >= j->n || (*out = malloc(j->len[index] + 1)) == NULL)
		return ENL_E_NOT_FOUND;
	memcpy(*out, j->e[index], j->len[index]);
	*len = j->len[index];
	return ENL_OK;
}

/* An empty journal with room for `cap` entries. */
static void
mj_init(struct memjournal *mj, size_t cap)
{
	memset(mj, 0, sizeof(*mj));
	mj->cap = cap;
	REQUIRE((mj->e = calloc(cap, sizeof(*mj->e))) != NULL);
	REQUIRE((mj->len = calloc(cap, sizeof(*mj->len))) != NULL);
}

static void
mj_free(struct memjournal *mj)
{
	for (size_t k = 0; k < mj->n; k++)
		free(mj->e[k]);
	free(mj->e);
	free(mj->len);
}

/*
 * The journal's owner commits the staged entries, or fails to (its disk
 * full): then the log forgets them, the next entries take their places,
 * and the log stays exactly what the journal holds; it opens again on it.
 */
static void
test_stage_with_the_owner(void)
{
	struct memjournal mj = {0};
	const struct tlog_journal jops = {&mj, mj_append, mj_load, mj_get};
	struct tlog *log = NULL;
	enl_mhash leaf, *leaves, want, got;
	char why[512];
	uint64_t idx, n = 0;

	empty_dir();
	mj_init(&mj, 64);
	REQUIRE((leaves = calloc(mj.cap, sizeof(*leaves))) != NULL);
	REQUIRE_OK(tlog_open_with(dir, "enlace/OAS-BROKER", broker, &jops, &log, why,
				      sizeof(why)));
	/* 5 entries, committed by the owner */
	for (; n < 5; n++)
		CHECK_RC(append_entry(log, n, leaves[n], &idx), ENL_OK);
	CHECK_RC(tlog_stage(log), ENL_OK);
	CHECK(tlog_committed(log) == 0);	/* not before the owner's commit */
	tlog_stage_done(log);
	CHECK(tlog_committed(log) == 5);
	/* 3 more staged, and the owner's commit fails: its journal drops them */
	for (uint64_t i = 100; i < 103; i++)
		CHECK_RC(append_entry(log, i, leaf, &idx), ENL_OK);
	CHECK_RC(tlog_stage(log), ENL_OK);
	CHECK(mj.n == 8);
	for (size_t i = 5; i < mj.n; i++)
		free(mj.e[i]);
	mj.n = 5;
	tlog_rollback(log);
	CHECK(tlog_size(log) == 5 && tlog_committed(log) == 5);
	/* the next entries take their places */
	for (; n < 9; n++) {
		CHECK_RC(append_entry(log, n, leaves[n], &idx), ENL_OK);
		CHECK(idx == n);
	}
	CHECK_RC(tlog_stage(log), ENL_OK);	/* mj_append checks `first` */
	tlog_stage_done(log);
	CHECK(tlog_committed(log) == 9 && mj.n == 9);
	CHECK_RC(enl_tlog_root(tlog_tree(log), 9, got), ENL_OK);
	enl_merkle_root(leaves, 9, want);
	CHECK(memcmp(got, want, 32) == 0);
	CHECK_RC(tlog_flush(log), ENL_OK);
	tlog_close(log);
	/* it opens again on what the journal holds */
	log = NULL;
	CHECK_RC(tlog_open_with(dir, "enlace/OAS-BROKER", broker, &jops, &log, why,
				    sizeof(why)), ENL_OK);
	CHECK(log != NULL && tlog_committed(log) == 9);
	tlog_close(log);
	mj_free(&mj);
	free(leaves);
}

/*
 * A cosignature that comes while a publication of its size is at work on
 * the log's own thread is in the checkpoint that publication writes (it
 * used to write the cosignatures of when it began, and the new one was
 * lost until the log grew).
 */
static void
test_cosignature_during_publication(void)
{
	const struct enl_tlog_source src = {dir, enl_tlog_read_dir, NULL, NULL};
	struct enl_identity *agency = NULL;

	enum { N = 3000 };	/* enough tiles that the publication takes a while */

	REQUIRE_OK(world_identity("AR-UIF", 1, &agency));
	for (int round = 0; round < 3; round++) {
		struct memjournal mj = {0};
		const struct tlog_journal jops = {&mj, mj_append, mj_load, mj_get};
		struct enl_checkpoint cp = {.origin = "enlace/OAS-BROKER", .size = N};
		struct tlog *log = NULL;
	struct enl_tlog *back = NULL;
		char why[512], *body = NULL, *line = NULL;
		enl_mhash leaf;
		uint64_t idx;
		time_t until = time(NULL) + 5;

		empty_dir();
		mj_init(&mj, N);
		REQUIRE_OK(tlog_open_with(dir, "enlace/OAS-BROKER", broker, &jops, &log, why,
					      sizeof(why)));
		for (uint64_t i = 0; i < N; i++)
			CHECK_RC(append_entry(log, i, leaf, &idx), ENL_OK);
		CHECK_RC(tlog_stage(log), ENL_OK);
		tlog_stage_done(log);
		REQUIRE_OK(enl_tlog_root(tlog_tree(log), N, cp.root));
		REQUIRE_OK(enl_checkpoint_format(&cp, &body));
		REQUIRE_OK(enl_cosign(agency, "AR-UIF", body, 1700000000, &line));
		while (!tlog_publish_wanted(log) && time(NULL) < until)
			nanosleep(&(struct timespec){0, 10000000}, NULL);	/* at most a second:
			 * publications are a second apart */
		CHECK_RC(tlog_publish_due(log), ENL_OK);	/* at work, on its thread */
		CHECK_RC(tlog_set_cosignatures(log, N, line), ENL_OK);
		CHECK_RC(tlog_flush(log), ENL_OK);	/* waits for that publication */
		REQUIRE_OK(enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why)));
		CHECK(cp.size == N && strstr(enl_tlog_note(back), line) != NULL);
		enl_tlog_free(back);
		tlog_close(log);
		mj_free(&mj);
		free(body);
		free(line);
	}
	enl_identity_free(agency);
}

/* A source that reads the folder, but gives the checkpoint it was made
 * with: an auditor that read the checkpoint before the log grew. */
struct old_view {
	const char *note;
};

static int
old_view_read(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	const struct old_view *o = ctx;
	size_t n = strlen(o->note);

	if (strcmp(rel, "checkpoint") != 0)
		return enl_tlog_read_dir(dir, rel, max, out, len);
	if ((*out = malloc(n + 1)) == NULL)
		return ENL_E_NOMEM;
	memcpy(*out, o->note, n);
	*len = n;
	return ENL_OK;
}

/* Appends entries [from, to) in one commit and publishes them. */
static void
grow(struct tlog *log, uint64_t from, uint64_t to)
{
	enl_mhash leaf;
	uint64_t idx;

	for (uint64_t i = from; i < to; i++)
		CHECK_RC(append_entry(log, i, leaf, &idx), ENL_OK);
	CHECK_RC(tlog_commit(log, NULL), ENL_OK);
	CHECK_RC(tlog_flush(log), ENL_OK);
}

/* The published checkpoint, as a string in *out. */
static void
checkpoint_now(char **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	REQUIRE_OK(enl_tlog_read_dir(dir, "checkpoint", 4096, &buf, &len));
	REQUIRE((*out = malloc(len + 1)) != NULL);
	memcpy(*out, buf, len);
	(*out)[len] = '\0';
	free(buf);
}

static bool
exists(const char *rel)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return access(path, F_OK) == 0;
}

/* Loads the log as an auditor who read `note` as the checkpoint. */
static void
load_with(const char *note, uint64_t want_size)
{
	struct old_view o = {note};
	const struct enl_tlog_source src = {&o, old_view_read, NULL, NULL};
	struct enl_tlog *back = NULL;
	struct enl_checkpoint cp;
	char why[512] = "";

	CHECK_RC(enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why)), ENL_OK);
	if (why[0])
		fprintf(stderr, "  %s\n", why);
	CHECK(back == NULL || cp.size == want_size);
	enl_tlog_free(back);
}

/*
 * Every partial tile a checkpoint names stays readable while the log
 * grows (C2SP tlog-tiles): a wider partial does not replace it; the full
 * tile does, and a reader of the old checkpoint then reads the full one.
 */
static void
test_old_checkpoint_readable(void)
{
	struct tlog *log = NULL;
	char why[512], *at10 = NULL, *at30 = NULL, *at300 = NULL;

	empty_dir();
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	grow(log, 0, 10);
	checkpoint_now(&at10);
	grow(log, 10, 30);
	checkpoint_now(&at30);
	CHECK(exists("tile/0/000.p/10") && exists("tile/entries/000.p/10"));
	CHECK(exists("tile/0/000.p/30"));
	load_with(at10, 10);
	load_with(at30, 30);
	/* past the first full tile: its partials go, the full one serves */
	grow(log, 30, 300);
	checkpoint_now(&at300);
	CHECK(exists("tile/0/000") && !exists("tile/0/000.p") && !exists("tile/entries/000.p"));
	CHECK(exists("tile/0/001.p/44") && exists("tile/1/000.p/1"));
	load_with(at10, 10);
	load_with(at30, 30);
	load_with(at300, 300);
	tlog_close(log);
	free(at10);
	free(at30);
	free(at300);
}

/* The signer rotates its key: the log opens on the checkpoint its older
 * key signed and goes on under the new one; readers need both keys, and
 * another signer's key opens nothing. */
static void
test_signer_rotated(void)
{
	struct enl_identity *b2 = NULL, *other = NULL;
	struct tlog *log = NULL;
	struct enl_note_verifier both[2];
	uint8_t epk[32];
	uint64_t size = 0;
	enl_mhash root;
	char why[512];

	empty_dir();
	REQUIRE_OK(world_identity("OAS-BROKER", 2, &b2));	/* version 1 is `broker` */
	REQUIRE_OK(world_identity("XX-OTHER", 1, &other));
	REQUIRE_OK(tlog_open(dir, "enlace/OAS-BROKER", broker, &log, why, sizeof(why)));
	grow(log, 0, 10);
	tlog_close(log);
	log = NULL;
	CHECK_RC(tlog_open(dir, "enlace/OAS-BROKER", b2, &log, why, sizeof(why)), ENL_OK);
	if (log != NULL) {
		CHECK(tlog_size(log) == 10);
		grow(log, 10, 20);
		tlog_close(log);
		log = NULL;
	}
	both[0] = v;
	both[1] = v;
	REQUIRE_OK(enl_identity_public(b2, 2, both[1].pk, epk));
	CHECK_RC(enl_tlog_verify(dir, both, 2, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == 20);
	CHECK(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)) != ENL_OK);
	CHECK(enl_tlog_verify(dir, &both[1], 1, &size, root, why, sizeof(why)) == ENL_OK);
	CHECK_RC(tlog_open(dir, "enlace/OAS-BROKER", other, &log, why, sizeof(why)),
		 ENL_E_UNKNOWN_SENDER);
	CHECK(log == NULL);
	tlog_close(log);
	enl_identity_free(b2);
	enl_identity_free(other);
}

/* With an external journal the tiles are written by the log's own
 * thread while entries go on being appended and committed: what lands on
 * disk is always a whole, verifiable log of some committed size, and
 * closing the log leaves it complete. */
static void
test_publish_in_background(void)
{
	struct memjournal mj = {0};
	const struct tlog_journal jops = {&mj, mj_append, mj_load, mj_get};
	const struct enl_tlog_source src = {dir, enl_tlog_read_dir, NULL, NULL};
	struct tlog *log = NULL;
	enl_mhash *leaves, root, want;
	char why[512];
	uint64_t i = 0, idx, size = 0, seen = 0;
	time_t deadline = time(NULL) + 20;
	int published = 0;

	empty_dir();
	mj_init(&mj, 200000);
	REQUIRE((leaves = calloc(mj.cap, sizeof(*leaves))) != NULL);
	REQUIRE_OK(tlog_open_with(dir, "enlace/OAS-BROKER", broker, &jops, &log, why,
				      sizeof(why)));
	/* commits of 7 entries, about 7,000 a second, until two
	 * publications were seen on disk (each at most once a second) */
	while (published < 2 && time(NULL) < deadline && i + 7 <= mj.cap) {
		const struct timespec ms = {0, 1000000};
		for (int k = 0; k < 7; k++, i++)
			CHECK_RC(append_entry(log, i, leaves[i], &idx), ENL_OK);
		CHECK_RC(tlog_commit(log, NULL), ENL_OK);
		CHECK_RC(tlog_publish_due(log), ENL_OK);
		nanosleep(&ms, NULL);	/* the pace of the appender, not a wait */
		/* what is on disk now: a whole log of a committed size */
		if (i % 700 == 0) {
			struct enl_tlog *back = NULL;
			struct enl_checkpoint cp;
			/* racing the publisher: every tile the checkpoint it
			 * read names is still there, or its full tile is */
			int lrc = enl_tlog_load(&src, &v, 1, &back, &cp, why, sizeof(why));
			if (lrc == ENL_OK) {
				enl_merkle_root(leaves, cp.size, want);
				CHECK(cp.size <= i && memcmp(cp.root, want, 32) == 0);
				if (cp.size > seen) {
					published++;
					seen = cp.size;
				}
				enl_tlog_free(back);
			} else {
				CHECK(0 && "the published log does not load");
				fprintf(stderr, "%s\n", why);
			}
		}
	}
	CHECK(published >= 2);
	tlog_close(log);
	enl_merkle_root(leaves, i, want);
	CHECK_RC(enl_tlog_verify(dir, &v, 1, &size, root, why, sizeof(why)), ENL_OK);
	CHECK(size == i && memcmp(root, want, 32) == 0);
	mj_free(&mj);
	free(leaves);
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
	RUN(test_paths_parsed);
	RUN(test_tree_matches_rfc);
	RUN(test_sizes_small);
	RUN(test_size_bundles);
	RUN(test_size_levels);
	RUN(test_proofs_of_newest);
	RUN(test_damage_located);
	RUN(test_cosignatures_published);
	RUN(test_cosignature_during_publication);
	RUN(test_old_checkpoint_readable);
	RUN(test_signer_rotated);
	RUN(test_stage_with_the_owner);
	RUN(test_publish_in_background);
	rc = harness_done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	enl_identity_free(broker);
	return rc;
}
