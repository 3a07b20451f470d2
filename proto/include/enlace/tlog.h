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
 * An appender of entries to a log folder. One thread at a time. Entries
 * are kept in memory until enl_tlog_commit writes the changed bundles and
 * tiles and a new signed checkpoint, each file atomically and durably.
 */
struct enl_tlog;

/*
 * Where the journal lives, if not in the log's own `journal` file: a
 * store that makes appends durable in its own transaction (the broker's
 * SQLite store, so that the log and the store commit together).
 * append: entries [first, first + n), in order, not yet durable.
 * load: calls cb for every entry from 0 in order.
 * get: one entry's bytes (malloc'd).
 */
struct enl_tlog_journal {
	void *ctx;
	int (*append)(void *ctx, uint64_t first, const uint8_t *const *entries,
		      const size_t *lens, size_t n);
	int (*load)(void *ctx, int (*cb)(void *arg, const uint8_t *entry, size_t len),
		    void *arg);
	int (*get)(void *ctx, uint64_t index, uint8_t **out, size_t *len);
};

/* As enl_tlog_open, with the journal in `journal`. Commits then make
 * nothing durable by themselves: the caller commits its store, makes it
 * durable, and then calls enl_tlog_publish_due. */
int enl_tlog_open_with(const char *dir, const char *origin,
		       const struct enl_identity *signer,
		       const struct enl_tlog_journal *journal, struct enl_tlog **out,
		       char *why, size_t why_cap) ENL_WUR;

/* For logs opened with an external journal: if a second has passed since
 * the last time, hands a copy of what the tiles and the checkpoint file of
 * everything committed need to a thread of the log's own, which writes
 * them while the caller goes on (one publication at a time; none is
 * started while one is at work). Returns the outcome of the publication
 * before, if it failed (its entries are written again with the next). */
int enl_tlog_publish_due(struct enl_tlog *log) ENL_WUR;
/* Whether enl_tlog_publish_due would start a publication now (a second
 * has passed and there is something new): the caller makes its store
 * durable first. */
bool enl_tlog_publish_wanted(const struct enl_tlog *log);

/* Opens (or creates) the log in `dir`: re-hashes every journal entry
 * (cutting a torn last write, reported in `why`), checks that the
 * published checkpoint (signed under `origin` by any version of `signer`'s
 * key: it may have rotated since) is a state of
 * that tree, and publishes what is missing. Errors: ENL_E_IO,
 * ENL_E_MALFORMED (the message in `why` names what), ENL_E_NOMEM. */
int enl_tlog_open(const char *dir, const char *origin, const struct enl_identity *signer,
		  struct enl_tlog **out, char *why, size_t why_cap) ENL_WUR;
void enl_tlog_close(struct enl_tlog *log);

/* Appends one entry (at most ENL_TLOG_ENTRY_MAX bytes); *index is its
 * position. Not durable until enl_tlog_commit. */
int enl_tlog_append(struct enl_tlog *log, const uint8_t *entry, size_t len,
		    uint64_t *index) ENL_WUR;

/*
 * Makes what was appended durable: appends it to the journal (one
 * fdatasync), and, at most once a second, publishes the bundles, tiles and
 * checkpoint file. *checkpoint (malloc'd, if not NULL) gets a checkpoint
 * of the new size signed now. Opening the log again publishes anything a
 * stop left in the journal only.
 */
int enl_tlog_commit(struct enl_tlog *log, char **checkpoint) ENL_WUR;

/*
 * With an external journal (enl_tlog_open_with), the commit in two steps,
 * as the journal's owner commits: enl_tlog_stage hands what was appended
 * to the journal, in the owner's open transaction; once that transaction
 * has committed, enl_tlog_stage_done makes it the log's committed state.
 * If the transaction fails instead, enl_tlog_rollback forgets it, and the
 * log stays what the journal holds. (enl_tlog_commit counts it committed
 * at once, which is right only if the owner's commit cannot fail.)
 */
int enl_tlog_stage(struct enl_tlog *log) ENL_WUR;
void enl_tlog_stage_done(struct enl_tlog *log);

/* *checkpoint (malloc'd): a checkpoint of everything committed, signed
 * now. Any thread that owns the log. */
int enl_tlog_checkpoint(struct enl_tlog *log, char **checkpoint) ENL_WUR;

/* Publishes the tiles and checkpoint of everything committed now, on
 * this thread (after waiting for a publication at work). */
int enl_tlog_flush(struct enl_tlog *log) ENL_WUR;

/* The bytes of committed entry `index` into *out (malloc'd), from memory
 * or its bundle on disk. ENL_E_INVAL past the committed size. */
int enl_tlog_entry(const struct enl_tlog *log, uint64_t index, uint8_t **out,
		   size_t *len) ENL_WUR;

/* Forgets what was appended since the last commit (after a failed
 * commit, or when the store it goes with could not commit). */
void enl_tlog_rollback(struct enl_tlog *log);

/* Entries appended, entries committed, and entries whose tiles and
 * checkpoint are published. */
uint64_t enl_tlog_size(const struct enl_tlog *log);
uint64_t enl_tlog_committed(const struct enl_tlog *log);
uint64_t enl_tlog_published(const struct enl_tlog *log);

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
 * Cosignature lines (enlace/note.h, enl_cosign) for the checkpoint of
 * `size`: the published checkpoint file carries them below the log's own
 * signature for as long as it is of that size (rewritten now if it is),
 * and `cosigned-checkpoint` keeps that checkpoint with them while the log
 * grows. NULL or "" drops them from `checkpoint`.
 */
int enl_tlog_set_cosignatures(struct enl_tlog *log, uint64_t size, const char *lines) ENL_WUR;

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
 * it. *cp is its checkpoint. Close it with enl_tlog_close.
 */
int enl_tlog_load(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
		  size_t n_v, struct enl_tlog **out, struct enl_checkpoint *cp, char *why,
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
