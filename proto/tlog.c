/*
 * The audit log in C2SP tlog-tiles. Every level's complete-subtree hashes
 * are kept in memory (32 bytes a leaf, and 1/256 of that a level up), so
 * tiles and proofs come from memory; the files are the durable copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/tlog.h"

void
enl_tile_path(int level, uint64_t index, unsigned width, char out[ENL_TILE_PATH_MAX])
{
	char n[64] = "", part[8];
	uint64_t groups[8];
	int g = 0;
	size_t o;

	do {
		groups[g++] = index % 1000;
		index /= 1000;
	} while (index > 0);
	o = 0;
	for (int i = g - 1; i >= 0; i--)
		o += (size_t)snprintf(n + o, sizeof(n) - o, i ? "x%03u/" : "%03u",
				      (unsigned)groups[i]);
	part[0] = '\0';
	if (width > 0 && width < ENL_TILE_WIDTH)
		snprintf(part, sizeof(part), ".p/%u", width);
	if (level < 0)
		snprintf(out, ENL_TILE_PATH_MAX, "tile/entries/%s%s", n, part);
	else
		snprintf(out, ENL_TILE_PATH_MAX, "tile/%d/%s%s", level, n, part);
}

/* Up to `digits` decimal digits at *p, then `end`: moves past both. */
static bool
tile_number(const char **p, size_t digits, char end, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < digits && (*p)[i] >= '0' && (*p)[i] <= '9'; i++)
		v = v * 10 + (uint64_t)((*p)[i] - '0');
	if (i == 0 || (*p)[i] != end)
		return false;
	*p += i + (end != '\0');
	*out = v;
	return true;
}

bool
enl_tile_path_parse(const char *rel, int *level, uint64_t *index, unsigned *width)
{
	char again[ENL_TILE_PATH_MAX];
	const char *p = rel;
	uint64_t l = 0, n = 0, g, w = 0;
	int groups = 0;

	if (strnlen(rel, ENL_TILE_PATH_MAX) >= ENL_TILE_PATH_MAX || strncmp(p, "tile/", 5) != 0)
		return false;
	p += 5;
	if (strncmp(p, "entries/", 8) == 0) {
		p += 8;
		l = UINT64_MAX;
	} else if (!tile_number(&p, 2, '/', &l) || l >= ENL_TILE_LEVELS) {
		return false;
	}
	for (;;) {	/* x001/x234/067: 7 groups hold any uint64 */
		bool more = *p == 'x';
		if (++groups > 7 || (more && *++p == '\0'))
			return false;
		if (!tile_number(&p, 3, more ? '/' : (strchr(p, '.') ? '.' : '\0'), &g))
			return false;
		if (n > (UINT64_MAX - g) / 1000)
			return false;
		n = n * 1000 + g;
		if (!more)
			break;
	}
	if (p[-1] == '.' && (strncmp(p, "p/", 2) != 0 || (p += 2, !tile_number(&p, 3, '\0', &w)) ||
			     w == 0 || w >= ENL_TILE_WIDTH))
		return false;
	enl_tile_path(l == UINT64_MAX ? -1 : (int)l, n, (unsigned)w, again);
	if (strcmp(again, rel) != 0)	/* the one spelling enl_tile_path writes */
		return false;
	*level = l == UINT64_MAX ? -1 : (int)l;
	*index = n;
	*width = (unsigned)w;
	return true;
}

/* ---- the right edge of the tree ---- */

void
enl_tlog_tree_init(struct enl_tlog_tree *t)
{
	memset(t, 0, sizeof(*t));
}

/*
 * Appends a leaf, merging the aligned subtrees it completes, smallest
 * first: a merge to height h is the root of the aligned 2^h leaves that
 * end with this one, and is told to merged() (if not NULL). A merged()
 * that fails stops the merging there; the edge is then half merged.
 */
static int
tree_append(struct enl_tlog_tree *t, const enl_mhash leaf,
	    int (*merged)(void *arg, unsigned h, const enl_mhash root), void *arg)
{
	int rc = ENL_OK;

	memcpy(t->stack[t->depth], leaf, ENL_MERKLE_HASH_LEN);
	t->height[t->depth++] = 0;
	while (rc == ENL_OK && t->depth >= 2 &&
	       t->height[t->depth - 1] == t->height[t->depth - 2]) {
		enl_merkle_node_hash(t->stack[t->depth - 2], t->stack[t->depth - 1],
				     t->stack[t->depth - 2]);
		t->height[t->depth - 2]++;
		t->depth--;
		if (merged != NULL)
			rc = merged(arg, t->height[t->depth - 1], t->stack[t->depth - 1]);
	}
	t->size++;
	return rc;
}

void
enl_tlog_tree_append(struct enl_tlog_tree *t, const enl_mhash leaf)
{
	(void)tree_append(t, leaf, NULL, NULL);
}

void
enl_tlog_tree_root(const struct enl_tlog_tree *t, enl_mhash out)
{
	if (t->depth == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	memcpy(out, t->stack[t->depth - 1], ENL_MERKLE_HASH_LEN);
	for (size_t i = t->depth - 1; i > 0; i--)
		enl_merkle_node_hash(t->stack[i - 1], out, out);
}

/* ---- hashes by level ---- */

struct level {
	enl_mhash *h;	/* level L: roots of aligned subtrees of 256^L leaves */
	uint64_t n, cap;
};

struct enl_tlog {
	char dir[1024];
	char origin[ENL_VKEY_NAME_MAX + 1];
	const struct enl_identity *signer;
	struct level lv[ENL_TILE_LEVELS];
	/* hh[h]: roots of the aligned subtrees of 2^h leaves, for h >= 4, so
	 * that a proof needs at most a few hashes of its own (4 bytes a leaf) */
	struct level hh[64];
	/* roots of other ranges, as proofs compute them (see range_root) */
	struct range_memo *memo;
	struct enl_tlog_tree tree, committed_tree;
	uint64_t committed;
	/* entries since the start of the oldest bundle not yet published whole */
	uint8_t *pend;
	size_t pend_len, pend_cap;
	uint64_t pend_first;	/* index of the first entry in pend */
	size_t pend_commit_off;	/* where the entries not yet journaled start */
	/* staged in an external journal's open transaction, not yet known
	 * committed (enl_tlog_stage) */
	bool staged;
	struct enl_tlog_tree staged_tree;
	size_t staged_pend_off;
	/* the journal: every entry, appended and synced at each commit */
	int jfd;
	uint64_t *joff;		/* offset of each entry's record */
	uint64_t joff_cap, jend;
	const struct enl_tlog_journal *jops;	/* or NULL: the journal file */
	uint64_t published;	/* size of the last checkpoint written to tiles */
	/* the sizes of the checkpoints signed since the last publication was
	 * handed over (receipts carry them): their partial tiles are written
	 * with it (C2SP tlog-tiles) */
	uint64_t *handed;
	size_t n_handed, cap_handed;
	int64_t published_at;
	char *cosigs;		/* cosignature lines for the checkpoint of cosig_size */
	uint64_t cosig_size;	/* ... both set under file_mu, read under it by
				 * the publisher (write_checkpoint) */
	char *note;		/* a loaded log: its checkpoint as read */
	/* With an external journal the tiles are written by a thread of
	 * their own, from a copy of what they need (enl_tlog_publish_due), so
	 * that the appender never waits for them. One job at a time. */
	struct pub_job *job;	/* handed over; done or not */
	pthread_t pub_thread;
	pthread_mutex_t pub_mu;
	pthread_cond_t pub_cv;
	bool pub_running, pub_stop;
	/* the checkpoint file, which both threads write */
	pthread_mutex_t file_mu;
	uint64_t on_disk;	/* the size of the checkpoint in it */
};

/*
 * What one publication writes: the entries [first, size) as pend holds
 * them, and at each level L the hashes h[L] of indexes [base[L], n[L]).
 */
struct pub_view {
	uint64_t first, size;
	const uint8_t *pend;
	const enl_mhash *h[ENL_TILE_LEVELS];
	uint64_t base[ENL_TILE_LEVELS], n[ENL_TILE_LEVELS];
};

/* A publication handed to the publisher thread: its own copies. */
struct pub_job {
	struct pub_view v;
	uint64_t old;		/* what was published before */
	uint64_t *sizes;	/* checkpoints handed out in (old, v.size) */
	size_t n_sizes;
	enl_mhash root;
	uint8_t *pend;
	enl_mhash *h[ENL_TILE_LEVELS];
	size_t keep;		/* where pend_trim cuts, once it is done */
	int rc;
	bool done;
};

static int
level_push(struct level *l, const enl_mhash h)
{
	if (l->n == l->cap) {
		uint64_t cap = l->cap ? 2 * l->cap : 1024;
		enl_mhash *nh = realloc(l->h, cap * sizeof(*nh));
		if (nh == NULL)
			return ENL_E_NOMEM;
		l->h = nh;
		l->cap = cap;
	}
	memcpy(l->h[l->n++], h, ENL_MERKLE_HASH_LEN);
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
static int
add_leaf(struct enl_tlog *log, const enl_mhash leaf)
{
	int rc = level_push(&log->lv[0], leaf);

	return rc != ENL_OK ? rc : tree_append(&log->tree, leaf, keep_subtree, log);
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
static void
range_root(const struct enl_tlog *log, uint64_t start, uint64_t count, enl_mhash out)
{
	struct range_memo *m = log->memo;
	enl_mhash l, r;
	size_t slot;
	uint64_t k;
	bool hit;

	if (count == 1) {
		memcpy(out, log->lv[0].h[start], ENL_MERKLE_HASH_LEN);
		return;
	}
	if ((count & (count - 1)) == 0 && count >= (1u << SUBTREE_MIN) && start % count == 0) {
		int h = __builtin_ctzll(count);
		memcpy(out, log->hh[h].h[start >> h], ENL_MERKLE_HASH_LEN);
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
	range_root(log, start, k, l);
	range_root(log, start + k, count - k, r);
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
		range_root(log, start + k, n - k, p[(*len)++]);
	} else {
		range_path(log, start + k, n - k, m - k, p, len);
		range_root(log, start, k, p[(*len)++]);
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
			range_root(log, start, n, p[(*len)++]);
		return;
	}
	for (k = 1; k << 1 < n; k <<= 1)
		;
	if (m <= k) {
		subproof(log, m, start, k, b, p, len);
		range_root(log, start + k, n - k, p[(*len)++]);
	} else {
		subproof(log, m - k, start + k, n - k, false, p, len);
		range_root(log, start, k, p[(*len)++]);
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
		range_root(log, 0, size, root);
	return ENL_OK;
}

int
enl_tlog_entry(const struct enl_tlog *log, uint64_t index, uint8_t **out, size_t *len)
{
	uint8_t hdr[4];
	size_t n;

	if (index >= log->committed)
		return ENL_E_INVAL;
	if (log->jops != NULL)
		return log->jops->get(log->jops->ctx, index, out, len);
	if (pread(log->jfd, hdr, 4, (off_t)log->joff[index]) != 4)
		return ENL_E_IO;
	n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (n > ENL_TLOG_ENTRY_MAX)
		return ENL_E_MALFORMED;
	if ((*out = malloc(n ? n : 1)) == NULL)
		return ENL_E_NOMEM;
	if (pread(log->jfd, *out, n, (off_t)log->joff[index] + 4) != (ssize_t)n) {
		free(*out);
		return ENL_E_IO;
	}
	*len = n;
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
	log->pend_len = log->pend_commit_off;
	log->staged = false;
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

uint64_t
enl_tlog_published(const struct enl_tlog *log)
{
	return log->published;
}

/* ---- files ---- */

static int
mkdirs(const char *dir, const char *rel)
{
	char path[2048], *p;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return ENL_E_IO;
		*p = '/';
	}
	return ENL_OK;
}

static int
write_tile_file(const struct enl_tlog *log, int level, uint64_t index, unsigned width,
		const uint8_t *buf, size_t len)
{
	char rel[ENL_TILE_PATH_MAX], path[2048];
	int rc;

	char tmp[2100];
	ssize_t n;
	int fd;

	enl_tile_path(level, index, width, rel);
	if ((rc = mkdirs(log->dir, rel)) != ENL_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", log->dir, rel);
	/* Not synced one by one: publish syncs them all at once before the
	 * checkpoint that names them. A tile's path is never rewritten with
	 * other bytes (a wider partial tile is a new path). */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return errno == ENOSPC ? ENL_E_NO_SPACE : ENL_E_IO;
	n = write(fd, buf, len);
	rc = n == (ssize_t)len ? ENL_OK : errno == ENOSPC ? ENL_E_NO_SPACE : ENL_E_IO;
	if (close(fd) != 0 && rc == ENL_OK)
		rc = ENL_E_IO;
	if (rc == ENL_OK && rename(tmp, path) != 0)
		rc = ENL_E_IO;
	if (rc != ENL_OK)
		unlink(tmp);
	return rc;
}

int
enl_tlog_append(struct enl_tlog *log, const uint8_t *entry, size_t len, uint64_t *index)
{
	enl_mhash leaf;
	int rc;

	if (len > ENL_TLOG_ENTRY_MAX)
		return ENL_E_TOO_LARGE;
	if (log->pend_len + len + 2 > log->pend_cap) {
		size_t cap = (log->pend_cap ? 2 * log->pend_cap : 65536) + len + 2;
		uint8_t *np = realloc(log->pend, cap);
		if (np == NULL)
			return ENL_E_NOMEM;
		log->pend = np;
		log->pend_cap = cap;
	}
	enl_merkle_leaf_hash(entry, len, leaf);
	if ((rc = add_leaf(log, leaf)) != ENL_OK)
		return rc;
	log->pend[log->pend_len++] = (uint8_t)(len >> 8);
	log->pend[log->pend_len++] = (uint8_t)len;
	memcpy(log->pend + log->pend_len, entry, len);
	log->pend_len += len;
	*index = log->tree.size - 1;
	return ENL_OK;
}

/* Writes the entry bundles that the view's entries touch; *keep is where
 * the entries of the bundle of `size` start (what pend keeps). */
static int
write_bundles(const struct enl_tlog *log, const struct pub_view *v, size_t *keep)
{
	uint64_t i = v->first;	/* always at a bundle boundary */
	size_t off = 0, start_off = 0;
	int rc;

	while (i < v->size) {
		uint64_t b = i / ENL_TILE_WIDTH;
		uint64_t end = (b + 1) * ENL_TILE_WIDTH;
		start_off = off;
		for (; i < end && i < v->size; i++)
			off += 2 + ((size_t)v->pend[off] << 8 | v->pend[off + 1]);
		rc = write_tile_file(log, -1, b, (unsigned)(i % ENL_TILE_WIDTH), v->pend + start_off,
				     off - start_off);
		if (rc != ENL_OK)
			return rc;
	}
	*keep = v->size % ENL_TILE_WIDTH == 0 ? off : start_off;
	return ENL_OK;
}

/* Once `to` is published: pend keeps only the entries from the start of
 * the bundle that holds `to` on (keep is their offset). */
static void
pend_trim(struct enl_tlog *log, uint64_t to, size_t keep)
{
	uint64_t first = to - to % ENL_TILE_WIDTH;

	if (first <= log->pend_first || keep == 0)
		return;
	memmove(log->pend, log->pend + keep, log->pend_len - keep);
	log->pend_len -= keep;
	log->pend_commit_off -= keep;
	log->pend_first = first;
}

/* Writes every hash tile that covers leaves from `from` on. */
static int
write_tiles(const struct enl_tlog *log, const struct pub_view *v, uint64_t from)
{
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L), n = v->n[L];
		uint64_t first = from / span / ENL_TILE_WIDTH;
		if (n == 0)
			break;
		uint64_t had = from / span;	/* hashes at this level before */
		for (uint64_t t = first; t * ENL_TILE_WIDTH < n; t++) {
			uint64_t w = n - t * ENL_TILE_WIDTH;
			int rc;
			if (w > ENL_TILE_WIDTH)
				w = ENL_TILE_WIDTH;
			if (from > 0 && t == first && had > t * ENL_TILE_WIDTH &&
			    had - t * ENL_TILE_WIDTH == w)
				continue;	/* unchanged: already published */
			rc = write_tile_file(log, L, t, (unsigned)w,
					     (const uint8_t *)v->h[L][t * ENL_TILE_WIDTH - v->base[L]],
					     (size_t)w * ENL_MERKLE_HASH_LEN);
			if (rc != ENL_OK)
				return rc;
		}
	}
	return ENL_OK;
}

/* Hands the new entries to an external journal, in its transaction. */
static int
journal_append_ext(struct enl_tlog *log, uint64_t n)
{
	const uint8_t **ents = calloc(n, sizeof(*ents));
	size_t *lens = calloc(n, sizeof(*lens)), off = log->pend_commit_off;
	int rc = ENL_E_NOMEM;

	if (ents != NULL && lens != NULL) {
		for (uint64_t i = 0; i < n; i++) {
			lens[i] = (size_t)log->pend[off] << 8 | log->pend[off + 1];
			ents[i] = log->pend + off + 2;
			off += 2 + lens[i];
		}
		rc = log->jops->append(log->jops->ctx, log->committed, ents, lens, n);
	}
	free(ents);
	free(lens);
	return rc;
}

/* The records of the entries appended since the last commit: big-endian
 * u32 length, the entry, BLAKE2b-128 of the entry (finds a torn tail). */
static int
journal_append(struct enl_tlog *log)
{
	size_t off = log->pend_commit_off, o = 0;
	uint64_t n = log->tree.size - log->committed;
	uint8_t *buf;

	if (n == 0)
		return ENL_OK;
	if (log->jops != NULL)
		return journal_append_ext(log, n);
	if (log->committed + n > log->joff_cap) {
		uint64_t cap = (log->joff_cap ? 2 * log->joff_cap : 4096) + n;
		uint64_t *nj = realloc(log->joff, cap * sizeof(*nj));
		if (nj == NULL)
			return ENL_E_NOMEM;
		log->joff = nj;
		log->joff_cap = cap;
	}
	if ((buf = malloc((log->pend_len - off) + n * (2 + 16))) == NULL)
		return ENL_E_NOMEM;
	for (uint64_t i = 0; i < n; i++) {
		size_t len = (size_t)log->pend[off] << 8 | log->pend[off + 1];
		log->joff[log->committed + i] = log->jend + o;
		buf[o++] = 0;
		buf[o++] = 0;
		buf[o++] = log->pend[off];
		buf[o++] = log->pend[off + 1];
		memcpy(buf + o, log->pend + off + 2, len);
		crypto_generichash(buf + o + len, 16, log->pend + off + 2, len, NULL, 0);
		o += len + 16;
		off += 2 + len;
	}
	if (pwrite(log->jfd, buf, o, (off_t)log->jend) != (ssize_t)o || fdatasync(log->jfd) != 0) {
		int e = errno;
		free(buf);
		/* whatever reached the file past jend is overwritten by the next try */
		return e == ENOSPC || e == EDQUOT ? ENL_E_NO_SPACE : ENL_E_IO;
	}
	free(buf);
	log->jend += o;
	return ENL_OK;
}

static int
sign_root(const struct enl_tlog *log, uint64_t size, const enl_mhash root, char **note)
{
	struct enl_checkpoint cp;
	char *body = NULL;
	int rc;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", log->origin);
	cp.size = size;
	memcpy(cp.root, root, ENL_MERKLE_HASH_LEN);
	if ((rc = enl_checkpoint_format(&cp, &body)) == ENL_OK)
		rc = enl_note_sign(log->signer, log->origin, body, note);
	free(body);
	return rc;
}

static int
sign_checkpoint(const struct enl_tlog *log, uint64_t size, char **note)
{
	enl_mhash root;
	int rc;

	if ((rc = enl_tlog_root(log, size, root)) != ENL_OK)
		return rc;
	return sign_root(log, size, root, note);
}

/* Writes `name` in the log's folder: the checkpoint of `size` and `root`
 * signed by the log, with the signature lines `lines` (may be NULL)
 * below. */
static int
write_note(const struct enl_tlog *log, const char *name, uint64_t size, const enl_mhash root,
	   const char *lines)
{
	char *note = NULL, path[2048];
	int rc;

	if ((rc = sign_root(log, size, root, &note)) != ENL_OK)
		return rc;
	if (lines != NULL) {
		struct enl_buf full = ENL_BUF_INIT(2 * ENL_NOTE_MAX);
		rc = enl_buf_puts(&full, note);
		if (rc == ENL_OK)
			rc = enl_buf_puts(&full, lines);
		free(note);
		note = rc == ENL_OK ? enl_buf_take(&full) : NULL;
		enl_buf_free(&full);
		if (note == NULL)
			return rc != ENL_OK ? rc : ENL_E_NOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", log->dir, name);
	rc = enl_file_write(path, (const uint8_t *)note, strlen(note), 0644, true);
	free(note);
	return rc;
}

/* The checkpoint file for `size`, with the cosignature lines held for it
 * now (not when its publication began: one that came meanwhile would be
 * dropped until the log grows); with `if_current`, only if the file is of
 * that size already. */
static int
write_checkpoint(struct enl_tlog *log, uint64_t size, const enl_mhash root, bool if_current)
{
	int rc = ENL_OK;

	pthread_mutex_lock(&log->file_mu);
	if (!if_current || (size == log->on_disk && size > 0)) {
		rc = write_note(log, "checkpoint", size, root,
				log->cosig_size == size ? log->cosigs : NULL);
		if (rc == ENL_OK)
			log->on_disk = size;
	}
	pthread_mutex_unlock(&log->file_mu);
	return rc;
}

int
enl_tlog_set_cosignatures(struct enl_tlog *log, uint64_t size, const char *lines)
{
	enl_mhash root;
	char *copy = NULL;
	int rc;

	if (size > log->committed)
		return ENL_E_INVAL;
	if ((rc = enl_tlog_root(log, size, root)) != ENL_OK)
		return rc;
	if (lines != NULL && lines[0] != '\0' && (copy = strdup(lines)) == NULL)
		return ENL_E_NOMEM;
	pthread_mutex_lock(&log->file_mu);
	free(log->cosigs);
	log->cosigs = copy;
	log->cosig_size = size;
	pthread_mutex_unlock(&log->file_mu);
	/* the newest cosigned checkpoint stays available while the log grows */
	if (copy != NULL && (rc = write_note(log, "cosigned-checkpoint", size, root, copy)) != ENL_OK)
		return rc;
	return write_checkpoint(log, size, root, true);
}

/* Sizes kept between two publications at most (a publication that keeps
 * failing must not make the list grow for ever): past it, the partials of
 * the sizes after go unwritten until the tiles are published again. */
#define HANDED_MAX 65536

/*
 * The partial tiles of the sizes handed out in (old, v->size) that the
 * tiles of v->size do not cover: within each level's last tile, which is
 * still partial, every narrower width a checkpoint named. (The entries a
 * bundle needs are in v->pend, from v->first, a bundle boundary.)
 */
static int
write_handed(const struct enl_tlog *log, const struct pub_view *v, uint64_t old,
	     const uint64_t *sizes, size_t n)
{
	uint64_t done[ENL_TILE_LEVELS] = {0};	/* the widths written, as sizes come in order */
	uint64_t last = v->size / ENL_TILE_WIDTH;	/* the last, partial bundle */
	uint64_t e = v->first;	/* one walk through pend serves every size */
	size_t off = 0, start = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t s = sizes[i];
		int rc;
		if (s <= old || s >= v->size)
			continue;
		/* the entry bundle of s, if it is the last, partial one */
		if (s % ENL_TILE_WIDTH != 0 && s / ENL_TILE_WIDTH == last) {
			for (; e < s; e++) {
				if (e == last * ENL_TILE_WIDTH)
					start = off;
				off += 2 + ((size_t)v->pend[off] << 8 | v->pend[off + 1]);
			}
			rc = write_tile_file(log, -1, last, (unsigned)(s % ENL_TILE_WIDTH),
					     v->pend + start, off - start);
			if (rc != ENL_OK)
				return rc;
		}
		for (int L = 0; L < ENL_TILE_LEVELS; L++) {
			uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L);
			uint64_t ns = s / span, nv = v->size / span, t = ns / ENL_TILE_WIDTH;
			if (ns == 0)
				break;
			if (ns % ENL_TILE_WIDTH == 0 || t != nv / ENL_TILE_WIDTH || ns == done[L])
				continue;	/* full, covered by the full tile, or written */
			done[L] = ns;
			rc = write_tile_file(log, L, t, (unsigned)(ns % ENL_TILE_WIDTH),
					     (const uint8_t *)v->h[L][t * ENL_TILE_WIDTH - v->base[L]],
					     (size_t)(ns % ENL_TILE_WIDTH) * ENL_MERKLE_HASH_LEN);
			if (rc != ENL_OK)
				return rc;
		}
	}
	return ENL_OK;
}

/*
 * Removes every partial tile of (level, index), the full tile being
 * published. Until then each stays: a checkpoint may name it (C2SP
 * tlog-tiles: partial tiles are served for every checkpointed size, and
 * may go once the full tile is available).
 */
static void
remove_partials(const struct enl_tlog *log, int level, uint64_t index)
{
	char rel[ENL_TILE_PATH_MAX], path[2048];
	struct dirent *e;
	DIR *d;

	enl_tile_path(level, index, 1, rel);
	*strrchr(rel, '/') = '\0';	/* tile/<L>/<N>.p */
	snprintf(path, sizeof(path), "%s/%s", log->dir, rel);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(path);
}

/* Writes the bundles, tiles and checkpoint of a view, `old` being the
 * size published before. On either thread. */
static int
publish_view(struct enl_tlog *log, const struct pub_view *v, uint64_t old, const enl_mhash root,
	     const uint64_t *sizes, size_t n_sizes, size_t *keep)
{
	uint64_t now = v->size;
	int rc;

	if ((rc = write_bundles(log, v, keep)) != ENL_OK || (rc = write_tiles(log, v, old)) != ENL_OK ||
	    (rc = write_handed(log, v, old, sizes, n_sizes)) != ENL_OK)
		return rc;
	/* every new tile on disk before the checkpoint that names them */
	{
		int dfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return ENL_E_IO;
		rc = syncfs(dfd) == 0 ? ENL_OK : ENL_E_IO;
		close(dfd);
		if (rc != ENL_OK)
			return rc;
	}
	if ((rc = write_checkpoint(log, now, root, false)) != ENL_OK)
		return rc;
	/* the partials of a tile that is now full (they are on disk no
	 * longer than the full tile is, so a reader always finds one) */
	if (old / ENL_TILE_WIDTH != now / ENL_TILE_WIDTH)
		remove_partials(log, -1, old / ENL_TILE_WIDTH);
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L), o = old / span, n = now / span;
		if (o / ENL_TILE_WIDTH != n / ENL_TILE_WIDTH)
			remove_partials(log, L, o / ENL_TILE_WIDTH);
	}
	return ENL_OK;
}

static void
job_free(struct pub_job *j)
{
	if (j == NULL)
		return;
	free(j->pend);
	free(j->sizes);
	for (int L = 0; L < ENL_TILE_LEVELS; L++)
		free(j->h[L]);
	free(j);
}

/* A copy of what publishing everything committed needs. */
static struct pub_job *
job_make(struct enl_tlog *log)
{
	uint64_t old = log->published, now = log->committed;
	struct pub_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->old = old;
	j->v.first = log->pend_first;
	j->v.size = now;
	/* pend holds the entries from pend_first on; the committed ones first */
	if ((j->pend = malloc(log->pend_commit_off + 1)) == NULL)
		goto fail;
	if (log->pend_commit_off > 0)
		memcpy(j->pend, log->pend, log->pend_commit_off);
	j->v.pend = j->pend;
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t n = now >> (8 * L);
		uint64_t base = (old >> (8 * L)) / ENL_TILE_WIDTH * ENL_TILE_WIDTH;
		if (n == 0)
			break;
		if ((j->h[L] = malloc((size_t)(n - base) * sizeof(enl_mhash) + 1)) == NULL)
			goto fail;
		memcpy(j->h[L], log->lv[L].h[base], (size_t)(n - base) * sizeof(enl_mhash));
		j->v.h[L] = (const enl_mhash *)j->h[L];
		j->v.base[L] = base;
		j->v.n[L] = n;
	}
	if (enl_tlog_root(log, now, j->root) != ENL_OK)
		goto fail;
	/* the handed-out sizes between: the job takes them (a size in the
	 * tile that now fills up needs none: the full tile serves it) */
	j->sizes = log->handed;
	j->n_sizes = log->n_handed;
	log->handed = NULL;
	log->n_handed = log->cap_handed = 0;
	return j;
fail:
	job_free(j);
	return NULL;
}

/* What a finished publication leaves: pend without what it published
 * whole, the published size. Frees the job. */
static int
job_apply(struct enl_tlog *log, struct pub_job *j)
{
	int rc = j->rc;

	if (rc == ENL_OK) {
		pend_trim(log, j->v.size, j->keep);
		log->published = j->v.size;
	}
	job_free(j);
	return rc;
}

/* Writes the bundles, tiles and checkpoint of everything committed, now,
 * on the appender's thread. */
static int
publish(struct enl_tlog *log)
{
	struct pub_job *j;
	int rc;

	if (log->committed == log->published && log->committed > 0)
		return ENL_OK;
	if ((j = job_make(log)) == NULL)
		return ENL_E_NOMEM;
	j->rc = publish_view(log, &j->v, j->old, j->root, j->sizes, j->n_sizes, &j->keep);
	if ((rc = job_apply(log, j)) == ENL_OK)
		log->published_at = (int64_t)time(NULL);
	return rc;
}

int
enl_tlog_commit(struct enl_tlog *log, char **checkpoint)
{
	int rc;

	if ((rc = journal_append(log)) != ENL_OK)
		return rc;
	log->committed = log->tree.size;
	log->committed_tree = log->tree;
	log->pend_commit_off = log->pend_len;
	/* Tiles are rewritten at most once a second: the journal is what
	 * makes entries durable, and opening publishes what is missing. An
	 * external journal is durable only once its owner commits, so then
	 * the owner publishes (enl_tlog_publish_due). */
	if (log->jops == NULL && (int64_t)time(NULL) > log->published_at &&
	    (rc = publish(log)) != ENL_OK)
		return rc;
	if (checkpoint != NULL)
		return enl_tlog_checkpoint(log, checkpoint);
	return ENL_OK;
}

int
enl_tlog_stage(struct enl_tlog *log)
{
	int rc;

	if (log->jops == NULL)
		return ENL_E_INVAL;
	if ((rc = journal_append(log)) != ENL_OK)
		return rc;
	log->staged = true;
	log->staged_tree = log->tree;
	log->staged_pend_off = log->pend_len;
	return ENL_OK;
}

void
enl_tlog_stage_done(struct enl_tlog *log)
{
	if (!log->staged)
		return;
	log->committed = log->staged_tree.size;
	log->committed_tree = log->staged_tree;
	log->pend_commit_off = log->staged_pend_off;
	log->staged = false;
}

int
enl_tlog_checkpoint(struct enl_tlog *log, char **checkpoint)
{
	int rc = sign_checkpoint(log, log->committed, checkpoint);

	/* handed out: its partial tiles are published with the next tiles
	 * (if the list cannot grow, they go unpublished, and say so in no
	 * receipt's failure: the checkpoint itself is sound) */
	if (rc == ENL_OK && log->committed % ENL_TILE_WIDTH != 0 && log->committed > log->published &&
	    (log->n_handed == 0 || log->handed[log->n_handed - 1] != log->committed)) {
		if (log->n_handed == log->cap_handed && log->cap_handed < HANDED_MAX) {
			size_t cap = log->cap_handed ? 2 * log->cap_handed : 64;
			uint64_t *h = realloc(log->handed, cap * sizeof(*h));
			if (h != NULL) {
				log->handed = h;
				log->cap_handed = cap;
			}
		}
		if (log->n_handed < log->cap_handed)
			log->handed[log->n_handed++] = log->committed;
	}
	return rc;
}

/* ---- the publisher thread ---- */

static void *
publisher(void *arg)
{
	struct enl_tlog *log = arg;

	pthread_mutex_lock(&log->pub_mu);
	for (;;) {
		struct pub_job *j = log->job;
		if (j != NULL && !j->done) {
			pthread_mutex_unlock(&log->pub_mu);
			j->rc = publish_view(log, &j->v, j->old, j->root, j->sizes, j->n_sizes, &j->keep);
			pthread_mutex_lock(&log->pub_mu);
			j->done = true;
			pthread_cond_broadcast(&log->pub_cv);
		} else if (log->pub_stop) {
			break;
		} else {
			pthread_cond_wait(&log->pub_cv, &log->pub_mu);
		}
	}
	pthread_mutex_unlock(&log->pub_mu);
	return NULL;
}

/* Takes in the publisher's finished job (waiting for it if `wait`):
 * what it published leaves pend. *busy: it is still at work. */
static int
job_collect(struct enl_tlog *log, bool wait, bool *busy)
{
	struct pub_job *j;

	*busy = false;
	pthread_mutex_lock(&log->pub_mu);
	while (wait && log->job != NULL && !log->job->done)
		pthread_cond_wait(&log->pub_cv, &log->pub_mu);
	j = log->job;
	if (j != NULL && !j->done) {
		pthread_mutex_unlock(&log->pub_mu);
		*busy = true;
		return ENL_OK;
	}
	log->job = NULL;
	pthread_mutex_unlock(&log->pub_mu);
	return j == NULL ? ENL_OK : job_apply(log, j);
}

int
enl_tlog_flush(struct enl_tlog *log)
{
	bool busy;
	int rc = job_collect(log, true, &busy);

	return rc != ENL_OK ? rc : publish(log);
}

bool
enl_tlog_publish_wanted(const struct enl_tlog *log)
{
	return (int64_t)time(NULL) > log->published_at && log->committed != log->published;
}

int
enl_tlog_publish_due(struct enl_tlog *log)
{
	struct pub_job *j;
	bool busy;
	int rc = job_collect(log, false, &busy);

	if (busy || !enl_tlog_publish_wanted(log))
		return rc;
	log->published_at = (int64_t)time(NULL);
	if (!log->pub_running) {
		if (pthread_create(&log->pub_thread, NULL, publisher, log) != 0)
			return publish(log);	/* no thread: on this one */
		pthread_setname_np(log->pub_thread, "enl:tiles");
		log->pub_running = true;
	}
	if ((j = job_make(log)) == NULL)
		return ENL_E_NOMEM;
	pthread_mutex_lock(&log->pub_mu);
	log->job = j;
	pthread_cond_broadcast(&log->pub_cv);
	pthread_mutex_unlock(&log->pub_mu);
	return rc;
}

/* ---- reading a log back: shared by open and verify ---- */

struct reader_state {
	const struct enl_tlog_source *src;
	char *why;
	size_t why_cap;
};

int
enl_tlog_read_dir(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	char path[2048];

	snprintf(path, sizeof(path), "%s/%s", (const char *)ctx, rel);
	return enl_file_read(path, max, out, len);
}

static int
src_read(const struct reader_state *r, const char *rel, size_t max, uint8_t **out,
	 size_t *len)
{
	return r->src->read(r->src->ctx, rel, max, out, len);
}

/* Sets the reason, naming an index or number, and gives rc. */
#define fail_why(r, rc, fmt, n) \
	(snprintf((r)->why, (r)->why_cap, fmt, (unsigned long long)(n)), (rc))

static int
fail_msg(struct reader_state *r, int rc, const char *msg)
{
	snprintf(r->why, r->why_cap, "%s", msg);
	return rc;
}

/*
 * The partial tiles still served for older checkpoint sizes (every width
 * below the last tile's, at each level, and the last entry bundle's) must
 * be prefixes of what the entries give: a forged older partial would
 * otherwise mislead a client that holds an older checkpoint.
 */
static int
check_partials(const struct enl_tlog *log, struct reader_state *r, uint64_t size)
{
	char rel[ENL_TILE_PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	for (int L = -1; L < ENL_TILE_LEVELS; L++) {
		uint64_t n = L < 0 ? size : log->lv[L].n, t = n / ENL_TILE_WIDTH;
		unsigned w = (unsigned)(n % ENL_TILE_WIDTH);
		if (n == 0)
			break;
		for (unsigned ow = 1; ow < w; ow++) {
			const uint8_t *want;
			size_t want_len;
			enl_tile_path(L, t, ow, rel);
			rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX), &buf,
				      &len);
			if (rc == ENL_E_NOT_FOUND)
				continue;	/* gone, or never handed out */
			if (rc != ENL_OK) {
				snprintf(r->why, r->why_cap, "%s: cannot be read", rel);
				return rc;
			}
			if (L >= 0) {
				want = (const uint8_t *)log->lv[L].h[t * ENL_TILE_WIDTH];
				want_len = (size_t)ow * ENL_MERKLE_HASH_LEN;
			} else {	/* the first ow entries of the last bundle (pend) */
				size_t off = 0;
				for (unsigned i = 0; i < ow && off + 2 <= log->pend_len; i++)
					off += 2 + ((size_t)log->pend[off] << 8 | log->pend[off + 1]);
				want = log->pend;
				want_len = off;
			}
			bool same = len == want_len && memcmp(buf, want, len) == 0;
			free(buf);
			buf = NULL;
			if (!same) {
				snprintf(r->why, r->why_cap, "%s: an older partial tile that does not "
					 "match the entries", rel);
				return ENL_E_MALFORMED;
			}
		}
	}
	return ENL_OK;
}

/* Reads the entries of [0, size) into `log` (leaf hashes, levels, tree),
 * then checks every stored tile against what the entries give. */
static int
read_back(struct enl_tlog *log, struct reader_state *r, uint64_t size)
{
	char rel[ENL_TILE_PATH_MAX];
	int rc;

	for (uint64_t b = 0; b * ENL_TILE_WIDTH < size; b++) {
		uint64_t want = size - b * ENL_TILE_WIDTH;
		uint8_t *buf = NULL;
		size_t len = 0, off = 0;
		if (want > ENL_TILE_WIDTH)
			want = ENL_TILE_WIDTH;
		/* the full bundle if there is one, else the partial of that width
		 * (a full bundle may have been completed after the checkpoint
		 * was read: its first `want` entries are the ones asked for) */
		bool whole = true;
		enl_tile_path(-1, b, 0, rel);
		rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX), &buf, &len);
		if (rc == ENL_E_NOT_FOUND && want < ENL_TILE_WIDTH) {
			whole = false;
			enl_tile_path(-1, b, (unsigned)want, rel);
			rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX),
				      &buf, &len);
		}
		if (rc != ENL_OK)
			return fail_why(r, rc, "entry bundle %llu cannot be read",
					(unsigned long long)b);
		for (uint64_t i = 0; i < want; i++) {
			size_t n;
			enl_mhash leaf;
			if (len - off < 2 || (n = (size_t)buf[off] << 8 | buf[off + 1]) > len - off - 2) {
				free(buf);
				return fail_why(r, ENL_E_MALFORMED,
						"entry %llu: the bundle is truncated or damaged",
						(unsigned long long)(b * ENL_TILE_WIDTH + i));
			}
			enl_merkle_leaf_hash(buf + off + 2, n, leaf);
			if ((rc = add_leaf(log, leaf)) != ENL_OK) {
				free(buf);
				return rc;
			}
			if (r->src->entry != NULL &&
			    r->src->entry(r->src->ctx, b * ENL_TILE_WIDTH + i, buf + off + 2, n) != 0) {
				free(buf);
				return fail_why(r, ENL_E_MALFORMED, "entry %llu: not a valid entry",
						(unsigned long long)(b * ENL_TILE_WIDTH + i));
			}
			off += 2 + n;
		}
		if (off != len && !(whole && want < ENL_TILE_WIDTH)) {
			free(buf);
			return fail_why(r, ENL_E_MALFORMED,
					"entry bundle %llu has bytes after its last entry",
					(unsigned long long)b);
		}
		if (r->src->progress != NULL)
			r->src->progress(r->src->ctx, b * ENL_TILE_WIDTH + want, size);
		/* a partial last bundle's entries are written again with the next */
		if (want < ENL_TILE_WIDTH && log->pend_cap == 0) {
			log->pend = malloc(off + 65536);
			if (log->pend == NULL) {
				free(buf);
				return ENL_E_NOMEM;
			}
			memcpy(log->pend, buf, off);
			log->pend_len = off;
			log->pend_cap = off + 65536;
			log->pend_first = b * ENL_TILE_WIDTH;
		}
		free(buf);
	}
	if (size % ENL_TILE_WIDTH == 0)
		log->pend_first = size;
	/* every tile must be what the entries say */
	for (int L = 0; L < ENL_TILE_LEVELS && log->lv[L].n > 0; L++) {
		const struct level *l = &log->lv[L];
		for (uint64_t t = 0; t * ENL_TILE_WIDTH < l->n; t++) {
			uint64_t w = l->n - t * ENL_TILE_WIDTH;
			uint8_t *buf = NULL;
			size_t len = 0;
			uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L);
			if (w > ENL_TILE_WIDTH)
				w = ENL_TILE_WIDTH;
			enl_tile_path(L, t, (unsigned)w, rel);
			rc = src_read(r, rel, ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN, &buf, &len);
			if (rc == ENL_E_NOT_FOUND && w < ENL_TILE_WIDTH) {
				/* the log grew past the checkpoint read, and the
				 * tile is full now: its first w hashes are these */
				enl_tile_path(L, t, 0, rel);
				rc = src_read(r, rel, ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN, &buf,
					      &len);
				if (rc == ENL_OK && len == ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN)
					len = w * ENL_MERKLE_HASH_LEN;
			}
			if (rc != ENL_OK || len != w * ENL_MERKLE_HASH_LEN ||
			    memcmp(buf, l->h[t * ENL_TILE_WIDTH], len) != 0) {
				/* locate the first differing hash, for the message */
				uint64_t bad = t * ENL_TILE_WIDTH;
				for (uint64_t i = 0; rc == ENL_OK && len == w * ENL_MERKLE_HASH_LEN &&
						     i < w; i++)
					if (memcmp(buf + i * ENL_MERKLE_HASH_LEN, l->h[bad + i],
						   ENL_MERKLE_HASH_LEN) != 0) {
						bad += i;
						break;
					}
				free(buf);
				snprintf(r->why, r->why_cap,
					 "%s: %s (first leaf it covers: %llu)", rel,
					 rc != ENL_OK ? "cannot be read"
						      : "does not match the entries",
					 (unsigned long long)(bad * span));
				return rc != ENL_OK ? rc : ENL_E_MALFORMED;
			}
			free(buf);
		}
	}
	return check_partials(log, r, size);
}

/* Reads and checks the checkpoint; *note (if not NULL) keeps its bytes. */
static int
read_checkpoint(struct reader_state *r, const struct enl_note_verifier *v, size_t n_v,
		struct enl_checkpoint *cp, bool *exists, char **note)
{
	uint8_t *buf = NULL;
	size_t len = 0, tl = 0;
	int rc;

	rc = src_read(r, "checkpoint", ENL_NOTE_MAX, &buf, &len);
	*exists = rc != ENL_E_NOT_FOUND;
	if (rc == ENL_E_NOT_FOUND)
		return ENL_OK;
	if (rc != ENL_OK)
		return fail_msg(r, rc, "checkpoint cannot be read");
	rc = n_v == 0 ? ENL_E_UNKNOWN_SENDER : enl_note_open((const char *)buf, len, v, n_v, &tl, NULL);
	if (rc == ENL_OK)
		rc = enl_checkpoint_parse((const char *)buf, tl, cp);
	if (rc == ENL_OK && strcmp(cp->origin, v[0].name) != 0)
		rc = ENL_E_MALFORMED;
	if (rc != ENL_OK) {
		free(buf);
		return fail_msg(r, rc, "checkpoint: signature or format is not valid");
	}
	if (note != NULL) {
		char *t = realloc(buf, len + 1);
		if (t == NULL) {
			free(buf);
			return ENL_E_NOMEM;
		}
		t[len] = '\0';
		*note = t;
	} else {
		free(buf);
	}
	return ENL_OK;
}

static void
tlog_free_levels(struct enl_tlog *log)
{
	for (int L = 0; L < ENL_TILE_LEVELS; L++)
		free(log->lv[L].h);
	for (int h = 0; h < 64; h++)
		free(log->hh[h].h);
	free(log->pend);
	if (log->memo != NULL) {
		pthread_mutex_destroy(&log->memo->mu);
		free(log->memo);
		log->memo = NULL;
	}
}

static int
load(struct enl_tlog *log, const struct enl_note_verifier *v, size_t n_v,
     struct reader_state *r, struct enl_checkpoint *cp)
{
	enl_mhash root;
	bool exists = false;
	int rc;

	memset(cp, 0, sizeof(*cp));
	if ((rc = read_checkpoint(r, v, n_v, cp, &exists, &log->note)) != ENL_OK)
		return rc;
	if (!exists)
		return fail_msg(r, ENL_E_NOT_FOUND, "no checkpoint");
	if ((rc = read_back(log, r, cp->size)) != ENL_OK)
		return rc;
	enl_tlog_tree_root(&log->tree, root);
	if (sodium_memcmp(root, cp->root, ENL_MERKLE_HASH_LEN) != 0)
		return fail_why(r, ENL_E_MALFORMED,
				"checkpoint root does not match the %llu entries",
				(unsigned long long)cp->size);
	log->committed = cp->size;
	log->committed_tree = log->tree;
	return ENL_OK;
}

/* Reads the journal: every whole record becomes a leaf; a torn or damaged
 * tail (a crash in the middle of an append) is cut off. */
static int
journal_load(struct enl_tlog *log, struct reader_state *r, uint8_t **data, size_t *data_len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0, off = 0;

	if (fstat(log->jfd, &st) != 0)
		return ENL_E_IO;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return ENL_E_NOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(log->jfd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0) {
			free(buf);
			return ENL_E_IO;
		}
		got += (size_t)n;
	}
	for (;;) {
		size_t n;
		uint8_t h[16];
		enl_mhash leaf;
		int rc;
		if (got - off < 4)
			break;
		n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 |
		    buf[off + 3];
		if (n > ENL_TLOG_ENTRY_MAX || got - off - 4 < n + 16)
			break;
		crypto_generichash(h, 16, buf + off + 4, n, NULL, 0);
		if (sodium_memcmp(h, buf + off + 4 + n, 16) != 0)
			break;
		if (log->tree.size == log->joff_cap) {
			uint64_t cap = log->joff_cap ? 2 * log->joff_cap : 4096;
			uint64_t *nj = realloc(log->joff, cap * sizeof(*nj));
			if (nj == NULL) {
				free(buf);
				return ENL_E_NOMEM;
			}
			log->joff = nj;
			log->joff_cap = cap;
		}
		log->joff[log->tree.size] = off;
		enl_merkle_leaf_hash(buf + off + 4, n, leaf);
		if ((rc = add_leaf(log, leaf)) != ENL_OK) {
			free(buf);
			return rc;
		}
		off += 4 + n + 16;
	}
	if (off < got) {
		snprintf(r->why, r->why_cap, "dropped a torn last write of %zu bytes",
			 got - off);
		if (ftruncate(log->jfd, (off_t)off) != 0 || fdatasync(log->jfd) != 0) {
			free(buf);
			return ENL_E_IO;
		}
	}
	log->jend = off;
	*data = buf;
	*data_len = off;
	return ENL_OK;
}

/* The entries of the bundles not yet published whole, back into pend. */
static int
pend_fill(struct enl_tlog *log, const uint8_t *j)
{
	uint64_t first = log->published - log->published % ENL_TILE_WIDTH;
	size_t o = 0;

	log->pend_first = first;
	for (uint64_t i = first; i < log->tree.size; i++) {
		size_t n = (size_t)j[log->joff[i] + 2] << 8 | j[log->joff[i] + 3];
		if (o + 2 + n > log->pend_cap) {
			size_t cap = 2 * (o + 2 + n) + 65536;
			uint8_t *np = realloc(log->pend, cap);
			if (np == NULL)
				return ENL_E_NOMEM;
			log->pend = np;
			log->pend_cap = cap;
		}
		log->pend[o] = (uint8_t)(n >> 8);
		log->pend[o + 1] = (uint8_t)n;
		memcpy(log->pend + o + 2, j + log->joff[i] + 4, n);
		o += 2 + n;
	}
	log->pend_len = log->pend_commit_off = o;
	return ENL_OK;
}

static int
ext_leaf(void *arg, const uint8_t *entry, size_t len)
{
	enl_mhash leaf;

	enl_merkle_leaf_hash(entry, len, leaf);
	return add_leaf(arg, leaf);
}

/* pend_fill for an external journal: the entries come from its get. */
static int
pend_fill_ext(struct enl_tlog *log)
{
	uint64_t first = log->published - log->published % ENL_TILE_WIDTH;
	size_t o = 0;

	log->pend_first = first;
	for (uint64_t i = first; i < log->tree.size; i++) {
		uint8_t *e = NULL;
		size_t n = 0;
		int rc = log->jops->get(log->jops->ctx, i, &e, &n);
		if (rc != ENL_OK)
			return rc;
		if (o + 2 + n > log->pend_cap) {
			size_t cap = 2 * (o + 2 + n) + 65536;
			uint8_t *np = realloc(log->pend, cap);
			if (np == NULL) {
				free(e);
				return ENL_E_NOMEM;
			}
			log->pend = np;
			log->pend_cap = cap;
		}
		log->pend[o] = (uint8_t)(n >> 8);
		log->pend[o + 1] = (uint8_t)n;
		memcpy(log->pend + o + 2, e, n);
		free(e);
		o += 2 + n;
	}
	log->pend_len = log->pend_commit_off = o;
	return ENL_OK;
}

/* A log with nothing in it yet. */
static struct enl_tlog *
log_alloc(void)
{
	struct enl_tlog *log = calloc(1, sizeof(*log));

	if (log == NULL)
		return NULL;
	log->jfd = -1;
	/* without it (no memory) proofs are only slower */
	if ((log->memo = calloc(1, sizeof(*log->memo))) != NULL)
		pthread_mutex_init(&log->memo->mu, NULL);
	enl_tlog_tree_init(&log->tree);
	pthread_mutex_init(&log->pub_mu, NULL);
	pthread_cond_init(&log->pub_cv, NULL);
	pthread_mutex_init(&log->file_mu, NULL);
	return log;
}

int
enl_tlog_open(const char *dir, const char *origin, const struct enl_identity *signer,
	      struct enl_tlog **out, char *why, size_t why_cap)
{
	return enl_tlog_open_with(dir, origin, signer, NULL, out, why, why_cap);
}

int
enl_tlog_open_with(const char *dir, const char *origin, const struct enl_identity *signer,
		   const struct enl_tlog_journal *jops, struct enl_tlog **out, char *why,
		   size_t why_cap)
{
	const struct enl_tlog_source src = {(void *)dir, enl_tlog_read_dir, NULL, NULL};
	struct reader_state r = {&src, why, why_cap};
	struct enl_note_verifier v[ENL_MAX_KEY_VERSIONS];
	struct enl_checkpoint cp;
	struct enl_tlog *log;
	char path[2048];
	uint8_t epk[32], *journal = NULL;
	size_t jlen = 0, n_v = 0;
	bool exists = false;
	int rc;

	if ((log = log_alloc()) == NULL)
		return ENL_E_NOMEM;
	log->jops = jops;
	snprintf(log->dir, sizeof(log->dir), "%s", dir);
	snprintf(log->origin, sizeof(log->origin), "%s", origin);
	log->signer = signer;
	enl_tlog_tree_init(&log->tree);
	why[0] = '\0';
	rc = ENL_E_IO;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(why, why_cap, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	/* the checkpoint may have been signed by a version since retired */
	memset(v, 0, sizeof(v));
	for (; n_v < enl_identity_count(signer) && n_v < ENL_MAX_KEY_VERSIONS; n_v++) {
		snprintf(v[n_v].name, sizeof(v[n_v].name), "%s", origin);
		rc = enl_identity_public(signer, enl_identity_version_at(signer, n_v), v[n_v].pk, epk);
		if (rc != ENL_OK)
			goto fail;
	}
	if (jops != NULL) {
		if ((rc = jops->load(jops->ctx, ext_leaf, log)) != ENL_OK) {
			snprintf(why, why_cap, "the journal in the store cannot be read");
			goto fail;
		}
	} else {
		rc = ENL_E_IO;
		snprintf(path, sizeof(path), "%s/journal", dir);
		if ((log->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			snprintf(why, why_cap, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if ((rc = journal_load(log, &r, &journal, &jlen)) != ENL_OK)
			goto fail;
	}
	/* The published checkpoint must be a state of the journal's tree. */
	memset(&cp, 0, sizeof(cp));
	if ((rc = read_checkpoint(&r, v, n_v, &cp, &exists, NULL)) != ENL_OK)
		goto fail;
	if (exists) {
		enl_mhash root;
		if (cp.size > log->tree.size) {
			rc = fail_why(&r, ENL_E_MALFORMED, "the checkpoint names %llu entries, "
				      "more than the journal holds", cp.size);
			goto fail;
		}
		if (cp.size == 0)
			crypto_hash_sha256(root, NULL, 0);
		else
			range_root(log, 0, cp.size, root);
		if (sodium_memcmp(root, cp.root, ENL_MERKLE_HASH_LEN) != 0) {
			rc = fail_why(&r, ENL_E_MALFORMED, "the checkpoint of size %llu does not "
				      "match the journal", cp.size);
			goto fail;
		}
		log->published = log->on_disk = cp.size;
	}
	log->committed = log->tree.size;
	log->committed_tree = log->tree;
	rc = jops != NULL ? pend_fill_ext(log) : pend_fill(log, journal);
	if (rc != ENL_OK || (rc = publish(log)) != ENL_OK)
		goto fail;
	free(journal);
	*out = log;
	return ENL_OK;
fail:
	free(journal);
	enl_tlog_close(log);
	return rc;
}

void
enl_tlog_close(struct enl_tlog *log)
{
	bool busy;

	if (log == NULL)
		return;
	if (log->pub_running) {
		pthread_mutex_lock(&log->pub_mu);
		log->pub_stop = true;
		pthread_cond_broadcast(&log->pub_cv);
		pthread_mutex_unlock(&log->pub_mu);
		pthread_join(log->pub_thread, NULL);
	}
	{
		/* a last job that failed is written again below */
		int rc = job_collect(log, true, &busy);
		(void)rc;
	}
	/* a clean stop leaves the tiles current (best effort: the journal
	 * has everything, and the next open publishes it anyway) */
	if ((log->jfd >= 0 || log->jops != NULL) && log->committed > log->published) {
		int rc = publish(log);
		(void)rc;
	}
	if (log->jfd >= 0)
		close(log->jfd);
	free(log->joff);
	free(log->handed);
	free(log->cosigs);
	free(log->note);
	tlog_free_levels(log);
	pthread_mutex_destroy(&log->pub_mu);
	pthread_cond_destroy(&log->pub_cv);
	pthread_mutex_destroy(&log->file_mu);
	free(log);
}

int
enl_tlog_load(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
	      size_t n_v, struct enl_tlog **out, struct enl_checkpoint *cp, char *why, size_t why_cap)
{
	struct reader_state r = {src, why, why_cap};
	struct enl_tlog *log = log_alloc();
	int rc;

	why[0] = '\0';
	if (log == NULL)
		return ENL_E_NOMEM;
	if (n_v == 0) {
		enl_tlog_close(log);
		snprintf(why, why_cap, "no key to check the checkpoint with");
		return ENL_E_INVAL;
	}
	snprintf(log->origin, sizeof(log->origin), "%s", v[0].name);
	if ((rc = load(log, v, n_v, &r, cp)) != ENL_OK) {
		enl_tlog_close(log);
		return rc;
	}
	*out = log;
	return ENL_OK;
}

const char *
enl_tlog_note(const struct enl_tlog *log)
{
	return log->note;
}

int
enl_tlog_verify(const char *dir, const struct enl_note_verifier *v, size_t n_v,
		uint64_t *size, enl_mhash root, char *why, size_t why_cap)
{
	const struct enl_tlog_source src = {(void *)dir, enl_tlog_read_dir, NULL, NULL};
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	int rc = enl_tlog_load(&src, v, n_v, &log, &cp, why, why_cap);

	if (rc == ENL_OK) {
		*size = cp.size;
		memcpy(root, cp.root, ENL_MERKLE_HASH_LEN);
	}
	enl_tlog_close(log);
	return rc;
}
