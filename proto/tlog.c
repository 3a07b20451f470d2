/*
 * The audit log's tree in memory. Every level's complete-subtree hashes
 * are kept (32 bytes a leaf, and 1/256 of that a level up), so tiles and
 * proofs come from memory; whoever writes the log keeps the files.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/tlog.h"
#include "proto_int.h"

static int
level_push(struct level *l, const enl_mhash h)
{
	uint8_t *slot = enl_vec_push(l);

	if (slot == NULL)
		return ENL_E_NOMEM;
	memcpy(slot, h, ENL_MERKLE_HASH_LEN);
	return ENL_OK;
}

#define SUBTREE_MIN 4

/* A subtree of 2^h leaves just completed: kept from 16 leaves up (hh),
 * and one of 256^L leaves is also a hash of level L's tiles. */
static int
keep_subtree(void *arg, unsigned h, const enl_mhash root)
{
	struct enl_tlog *log = arg;
	int rc = ENL_OK;

	if (h >= SUBTREE_MIN)
		rc = level_push(&log->hh[h], root);
	if (rc == ENL_OK && h % 8 == 0 && h / 8 < ENL_TILE_LEVELS)
		rc = level_push(&log->lv[h / 8], root);
	return rc;
}

/* Adds a leaf hash: each subtree it completes is hashed once, by the
 * right edge's merge. A failure leaves the edge half merged: the round
 * that appended rolls back (enl_tlog_rollback), which restores it. */
int
enl_tlog_add_leaf(struct enl_tlog *log, const enl_mhash leaf)
{
	int rc = level_push(&log->lv[0], leaf);

	return rc != ENL_OK ? rc : tlog_tree_append(&log->tree, leaf, keep_subtree, log);
}

/*
 * The roots of the ranges that are neither one leaf nor a kept subtree,
 * as proofs compute them. Proofs of neighbouring entries under one
 * checkpoint (a round's receipts) need the same small and right-edge
 * ranges again and again. A range's root never changes once its leaves
 * are committed, and proofs cover committed leaves only; a rollback
 * empties it all the same.
 */
#define MEMO_SLOTS 256

struct range_memo {
	pthread_mutex_t mu;
	struct {
		uint64_t start, count;	/* count 0: empty */
		enl_mhash root;
	} slot[MEMO_SLOTS];
};

static size_t
memo_slot(uint64_t start, uint64_t count)
{
	uint64_t x = (start * 0x9E3779B97F4A7C15ull) ^ (count * 0xC2B2AE3D27D4EB4Full);

	return (size_t)(x >> 56) % MEMO_SLOTS;
}

/* MTH of leaves [start, start + count), using whole tiles where it can. */
void
tlog_range_root(const struct enl_tlog *log, uint64_t start, uint64_t count, enl_mhash out)
{
	struct range_memo *m = log->memo;
	enl_mhash l, r;
	size_t slot;
	uint64_t k;
	bool hit;

	if (count == 1) {
		memcpy(out, log->lv[0].v[start], ENL_MERKLE_HASH_LEN);
		return;
	}
	if ((count & (count - 1)) == 0 && count >= (1u << SUBTREE_MIN) && start % count == 0) {
		int h = __builtin_ctzll(count);
		memcpy(out, log->hh[h].v[start >> h], ENL_MERKLE_HASH_LEN);
		return;
	}
	slot = memo_slot(start, count);
	if (m != NULL) {
		pthread_mutex_lock(&m->mu);
		hit = m->slot[slot].count == count && m->slot[slot].start == start;
		if (hit)
			memcpy(out, m->slot[slot].root, ENL_MERKLE_HASH_LEN);
		pthread_mutex_unlock(&m->mu);
		if (hit)
			return;
	}
	for (k = 1; k << 1 < count; k <<= 1)
		;
	tlog_range_root(log, start, k, l);
	tlog_range_root(log, start + k, count - k, r);
	enl_merkle_node_hash(l, r, out);
	if (m != NULL) {
		pthread_mutex_lock(&m->mu);
		m->slot[slot].start = start;
		m->slot[slot].count = count;
		memcpy(m->slot[slot].root, out, ENL_MERKLE_HASH_LEN);
		pthread_mutex_unlock(&m->mu);
	}
}

static void
range_path(const struct enl_tlog *log, uint64_t start, uint64_t n, uint64_t m, enl_mhash *p,
	   size_t *len)
{
	uint64_t k;

	if (n <= 1)
		return;
	for (k = 1; k << 1 < n; k <<= 1)
		;
	if (m < k) {
		range_path(log, start, k, m, p, len);
		tlog_range_root(log, start + k, n - k, p[(*len)++]);
	} else {
		range_path(log, start + k, n - k, m - k, p, len);
		tlog_range_root(log, start, k, p[(*len)++]);
	}
}

int
enl_tlog_inclusion(const struct enl_tlog *log, uint64_t index, uint64_t size,
		   enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *len)
{
	if (index >= size || size > log->committed)
		return ENL_E_INVAL;
	*len = 0;
	range_path(log, 0, size, index, proof, len);
	return ENL_OK;
}

/* RFC 6962 SUBPROOF(m, D[start:start+n], b), with subtree roots from the
 * tiles. */
static void
subproof(const struct enl_tlog *log, uint64_t m, uint64_t start, uint64_t n, bool b,
	 enl_mhash *p, size_t *len)
{
	uint64_t k;

	if (m == n) {
		if (!b)
			tlog_range_root(log, start, n, p[(*len)++]);
		return;
	}
	for (k = 1; k << 1 < n; k <<= 1)
		;
	if (m <= k) {
		subproof(log, m, start, k, b, p, len);
		tlog_range_root(log, start + k, n - k, p[(*len)++]);
	} else {
		subproof(log, m - k, start + k, n - k, false, p, len);
		tlog_range_root(log, start, k, p[(*len)++]);
	}
}

int
enl_tlog_consistency(const struct enl_tlog *log, uint64_t first, uint64_t second,
		     enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *len)
{
	if (first > second || second > log->committed)
		return ENL_E_INVAL;
	*len = 0;
	if (first > 0 && first < second)
		subproof(log, first, 0, second, true, proof, len);
	return ENL_OK;
}

int
enl_tlog_root(const struct enl_tlog *log, uint64_t size, enl_mhash root)
{
	if (size > log->tree.size)
		return ENL_E_INVAL;
	if (size == 0)
		crypto_hash_sha256(root, NULL, 0);
	else if (size == log->tree.size)
		enl_tlog_tree_root(&log->tree, root);
	else
		tlog_range_root(log, 0, size, root);
	return ENL_OK;
}

void
enl_tlog_rollback(struct enl_tlog *log)
{
	uint64_t n = log->committed;

	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		log->lv[L].n = n;
		n /= ENL_TILE_WIDTH;
	}
	for (int h = SUBTREE_MIN; h < 64; h++)
		log->hh[h].n = log->committed >> h;
	log->tree = log->committed_tree;
	log->pend.n = log->pend_commit_off;
	if (log->memo != NULL) {
		pthread_mutex_lock(&log->memo->mu);
		for (size_t i = 0; i < MEMO_SLOTS; i++)
			log->memo->slot[i].count = 0;
		pthread_mutex_unlock(&log->memo->mu);
	}
}

uint64_t
enl_tlog_size(const struct enl_tlog *log)
{
	return log->tree.size;
}

uint64_t
enl_tlog_committed(const struct enl_tlog *log)
{
	return log->committed;
}

/* ---- a log built in memory ---- */

struct enl_tlog *
enl_tlog_new(void)
{
	struct enl_tlog *log = calloc(1, sizeof(*log));

	if (log == NULL)
		return NULL;
	/* without it (no memory) proofs are only slower */
	if ((log->memo = calloc(1, sizeof(*log->memo))) != NULL)
		pthread_mutex_init(&log->memo->mu, NULL);
	log->pend.max = PEND_MAX;
	for (int L = 0; L < ENL_TILE_LEVELS; L++)
		log->lv[L].max = LEVEL_MAX;
	for (int h = 0; h < 64; h++)
		log->hh[h].max = LEVEL_MAX;
	enl_tlog_tree_init(&log->tree);
	enl_tlog_tree_init(&log->committed_tree);
	return log;
}

void
enl_tlog_free(struct enl_tlog *log)
{
	if (log == NULL)
		return;
	for (int L = 0; L < ENL_TILE_LEVELS; L++)
		free(log->lv[L].v);
	for (int h = 0; h < 64; h++)
		free(log->hh[h].v);
	enl_vec_free(&log->pend);
	free(log->note);
	if (log->memo != NULL) {
		pthread_mutex_destroy(&log->memo->mu);
		free(log->memo);
	}
	free(log);
}

/* Room in pend for one more entry of `len` bytes. */
static int
pend_room(struct enl_tlog *log, size_t len)
{
	if (len > ENL_TLOG_ENTRY_MAX)
		return ENL_E_TOO_LARGE;
	return enl_vec_reserve(&log->pend, len + 2);
}

/* An entry at the end of pend, as a bundle holds it (u16 length, bytes). */
static void
pend_put(struct enl_tlog *log, const uint8_t *entry, size_t len)
{
	log->pend.v[log->pend.n++] = (uint8_t)(len >> 8);
	log->pend.v[log->pend.n++] = (uint8_t)len;
	memcpy(log->pend.v + log->pend.n, entry, len);
	log->pend.n += len;
}

int
enl_tlog_pend_add(struct enl_tlog *log, const uint8_t *entry, size_t len)
{
	int rc = pend_room(log, len);

	if (rc == ENL_OK)
		pend_put(log, entry, len);
	return rc;
}

int
enl_tlog_add(struct enl_tlog *log, const uint8_t *entry, size_t len)
{
	enl_mhash leaf;
	int rc;

	/* room first: a leaf added is never without its entry */
	if ((rc = pend_room(log, len)) != ENL_OK)
		return rc;
	enl_merkle_leaf_hash(entry, len, leaf);
	if ((rc = enl_tlog_add_leaf(log, leaf)) != ENL_OK)
		return rc;
	pend_put(log, entry, len);
	return ENL_OK;
}

void
enl_tlog_pend_reset(struct enl_tlog *log, uint64_t first)
{
	log->pend_first = first;
	log->pend.n = log->pend_commit_off = 0;
}

const uint8_t *
enl_tlog_pend(const struct enl_tlog *log, uint64_t *first, size_t *len, size_t *committed_len)
{
	*first = log->pend_first;
	*len = log->pend.n;
	*committed_len = log->pend_commit_off;
	return log->pend.v;
}

void
enl_tlog_pend_trim(struct enl_tlog *log, uint64_t to, size_t keep)
{
	uint64_t first = to - to % ENL_TILE_WIDTH;

	if (first <= log->pend_first || keep == 0)
		return;
	memmove(log->pend.v, log->pend.v + keep, log->pend.n - keep);
	log->pend.n -= keep;
	log->pend_commit_off -= keep;
	log->pend_first = first;
}

const enl_mhash *
enl_tlog_level(const struct enl_tlog *log, int level, uint64_t *n)
{
	*n = log->lv[level].n;
	return (const enl_mhash *)log->lv[level].v;
}

void
enl_tlog_mark(const struct enl_tlog *log, struct enl_tlog_mark *m)
{
	m->tree = log->tree;
	m->pend_off = log->pend.n;
}

void
enl_tlog_commit_to(struct enl_tlog *log, const struct enl_tlog_mark *m)
{
	log->committed = m->tree.size;
	log->committed_tree = m->tree;
	log->pend_commit_off = m->pend_off;
}
