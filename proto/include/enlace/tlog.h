/*
 * enlace tlog: the audit log as C2SP tlog-tiles on disk.
 *
 *   tile/entries/<N>[.p/<W>]   entry bundles: up to 256 entries, each a
 *                              big-endian u16 length and the entry bytes
 *   tile/<L>/<N>[.p/<W>]       hash tiles: up to 256 hashes of 32 bytes,
 *                              level L holding the roots of subtrees of
 *                              256^L leaves
 *   checkpoint                 the newest signed checkpoint (enlace/note.h)
 *   journal                    every entry, appended at each commit: the
 *                              durable copy from which the tiles are made
 *
 * <N> is written in groups of three digits, all but the last prefixed
 * with "x" (1234067 -> x001/x234/067); <W> is the width of a partial
 * tile. Leaves are RFC 6962 leaf hashes of the entries (enlace/merkle.h).
 */
#ifndef ENLACE_TLOG_H
#define ENLACE_TLOG_H

#include "enlace/merkle.h"
#include "enlace/note.h"

#define ENL_TILE_WIDTH 256
#define ENL_TILE_LEVELS 8		/* 256^8 = 2^64 leaves */
#define ENL_TLOG_ENTRY_MAX 65535
#define ENL_TILE_PATH_MAX 128

/* The path of a tile below the log's folder: level -1 is the entry
 * bundles; width 0 or 256 is a full tile. */
void enl_tile_path(int level, uint64_t index, unsigned width, char out[ENL_TILE_PATH_MAX]);

/* The inverse, strictly: true if `rel` is exactly what enl_tile_path
 * writes for some level below ENL_TILE_LEVELS (or -1), index and width
 * 1..255 (or 0, a full tile), which it stores; false for any other
 * string, however close (a leading zero, a "..", a trailing slash). */
bool enl_tile_path_parse(const char *rel, int *level, uint64_t *index, unsigned *width);

/* The right edge of a growing tree: the roots of its perfect subtrees,
 * largest first. Enough to append and to compute the root. */
struct enl_tlog_tree {
	uint64_t size;
	size_t depth;
	enl_mhash stack[64];
	uint8_t height[64];	/* log2 of each subtree's leaf count */
};

void enl_tlog_tree_init(struct enl_tlog_tree *t);
void enl_tlog_tree_append(struct enl_tlog_tree *t, const enl_mhash leaf);
void enl_tlog_tree_root(const struct enl_tlog_tree *t, enl_mhash out);

/*
 * A log's tree in memory: every entry's leaf hash, every level's
 * complete-subtree hashes, and the entries of the bundles not yet
 * published whole ("pend"). Built by the log's writer (broker/tlog.c,
 * which keeps the files) or read back by enl_tlog_load. One thread
 * appends; proofs over committed entries may be asked from others.
 */
struct enl_tlog;

/* An empty tree; NULL without memory. */
struct enl_tlog *enl_tlog_new(void);
void enl_tlog_free(struct enl_tlog *log);

/* Adds one entry (at most ENL_TLOG_ENTRY_MAX bytes): its leaf, and its
 * bytes at the end of pend. ENL_E_TOO_LARGE, ENL_E_NOMEM (then nothing
 * was added). */
int enl_tlog_add(struct enl_tlog *log, const uint8_t *entry, size_t len) ENL_WUR;
/* Adds a leaf hash only (pend is filled apart, enl_tlog_pend_add). A
 * failure leaves the tree half merged until enl_tlog_rollback. */
int enl_tlog_add_leaf(struct enl_tlog *log, const enl_mhash leaf) ENL_WUR;

/* pend: the entries from index *first on, *len bytes, of which the first
 * *committed_len are committed; each a big-endian u16 length and bytes. */
const uint8_t *enl_tlog_pend(const struct enl_tlog *log, uint64_t *first, size_t *len,
			     size_t *committed_len);
/* Empties pend, to be filled from entry `first` on with enl_tlog_pend_add. */
void enl_tlog_pend_reset(struct enl_tlog *log, uint64_t first);
int enl_tlog_pend_add(struct enl_tlog *log, const uint8_t *entry, size_t len) ENL_WUR;
/* Once the tiles of `to` are published: pend keeps only the entries from
 * the start of the bundle that holds `to` (`keep`: their offset). */
void enl_tlog_pend_trim(struct enl_tlog *log, uint64_t to, size_t keep);

/* The hashes of level `level` (0: the leaves), *n of them. */
const enl_mhash *enl_tlog_level(const struct enl_tlog *log, int level, uint64_t *n);

/* A state of the tree, to commit later (after a journal that commits in
 * two steps has). */
struct enl_tlog_mark {
	struct enl_tlog_tree tree;
	size_t pend_off;
};
void enl_tlog_mark(const struct enl_tlog *log, struct enl_tlog_mark *m);
/* Makes the marked state the committed one: proofs may cover it. */
void enl_tlog_commit_to(struct enl_tlog *log, const struct enl_tlog_mark *m);

/* Forgets what was appended since the last commit (after a failed
 * commit, or when the store it goes with could not commit). */
void enl_tlog_rollback(struct enl_tlog *log);

/* Entries added, and entries committed. */
uint64_t enl_tlog_size(const struct enl_tlog *log);
uint64_t enl_tlog_committed(const struct enl_tlog *log);

/* Inclusion proof of `index` in the tree of `size` leaves (size <= the
 * committed size), from the tiles in memory. */
int enl_tlog_inclusion(const struct enl_tlog *log, uint64_t index, uint64_t size,
		       enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *len) ENL_WUR;

/* The consistency proof from the tree of `first` leaves to that of
 * `second` (first <= second <= the committed size; empty when equal or
 * first is 0). ENL_E_INVAL otherwise. */
int enl_tlog_consistency(const struct enl_tlog *log, uint64_t first, uint64_t second,
			 enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *len) ENL_WUR;

/* The root of the tree of the first `size` leaves. */
int enl_tlog_root(const struct enl_tlog *log, uint64_t size, enl_mhash root) ENL_WUR;

/*
 * Where a reader gets a log's files: read(ctx, "tile/0/000", max, ...)
 * gives a file's bytes (malloc'd), ENL_E_NOT_FOUND if there is none.
 * Optional: entry is called for every entry in order (non-zero: the entry
 * is not valid, and reading stops); progress after every bundle.
 */
struct enl_tlog_source {
	void *ctx;
	int (*read)(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len);
	int (*entry)(void *ctx, uint64_t index, const uint8_t *entry, size_t len);
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
};

/* A source's read for a folder: ctx is the folder's path. */
int enl_tlog_read_dir(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len);

/*
 * Readers take the log's note keys as `v[0..n_v)`: one per version of the
 * log's signing key (after a rotation the checkpoint is signed by the new
 * one), all under the log's origin as key name.
 *
 * Reads and verifies a whole log from `src` (see enl_tlog_verify), and
 * gives it as a read-only log: proofs, roots and enl_tlog_note work on
 * it. *cp is its checkpoint. Free it with enl_tlog_free.
 */
int enl_tlog_load(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
		  size_t n_v, struct enl_tlog **out, struct enl_checkpoint *cp, char *why,
		  size_t why_cap) ENL_WUR;

/* Reads and checks the checkpoint of `src` (signed by one of v[0..n_v)
 * under v[0]'s name): *exists false if there is none. */
int enl_tlog_read_checkpoint(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
			     size_t n_v, struct enl_checkpoint *cp, bool *exists, char *why,
			     size_t why_cap) ENL_WUR;

/* A loaded log's checkpoint note as read, cosignatures included. */
const char *enl_tlog_note(const struct enl_tlog *log);

/*
 * Verifies a log folder with nothing but the folder and the verifier keys:
 * re-hashes every entry, rebuilds every tile and compares it byte for
 * byte, and checks the checkpoint's signature and root. On failure `why`
 * names the first bad index or file and what is wrong. *size gets the
 * checkpoint's size.
 */
int enl_tlog_verify(const char *dir, const struct enl_note_verifier *v, size_t n_v,
		    uint64_t *size,
		    enl_mhash root, char *why, size_t why_cap) ENL_WUR;

#endif
