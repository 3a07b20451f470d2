/*
 * The broker's audit log on disk, as C2SP tlog-tiles (enlace/tlog.h has
 * the layout): a journal of every entry, the tiles and entry bundles
 * published from it at most once a second by a thread of the log's own,
 * and the signed checkpoint file. The tree itself, and its proofs, are
 * enlace/tlog.h's struct enl_tlog (tlog_tree).
 *
 *   journal                    every entry, appended at each commit: the
 *                              durable copy from which the tiles are made
 *                              (or the store's table: tlog_open_with)
 *
 * One thread appends and commits (the broker's writer); proofs over
 * committed entries may be asked from the others.
 */
#ifndef ENLACE_BROKER_TLOG_H
#define ENLACE_BROKER_TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enlace/tlog.h"

struct tlog;

/*
 * Where the journal lives, if not in the log's own `journal` file: a
 * store that makes appends durable in its own transaction (the broker's
 * SQLite store, so that the log and the store commit together).
 * append: entries [first, first + n), in order, not yet durable.
 * load: calls cb for every entry from 0 in order.
 * get: one entry's bytes (malloc'd).
 */
struct tlog_journal {
	void *ctx;
	int (*append)(void *ctx, uint64_t first, const uint8_t *const *entries,
		      const size_t *lens, size_t n);
	int (*load)(void *ctx, int (*cb)(void *arg, const uint8_t *entry, size_t len),
		    void *arg);
	int (*get)(void *ctx, uint64_t index, uint8_t **out, size_t *len);
};

/* Opens (or creates) the log in `dir`: re-hashes every journal entry
 * (cutting a torn last write, reported in `why`), checks that the
 * published checkpoint (signed under `origin` by any version of `signer`'s
 * key: it may have rotated since) is a state of that tree, and publishes
 * what is missing. Errors: ENL_E_IO, ENL_E_MALFORMED (the message in
 * `why` names what), ENL_E_NOMEM. */
int tlog_open(const char *dir, const char *origin, const struct enl_identity *signer,
	      struct tlog **out, char *why, size_t why_cap) ENL_WUR;
/* As tlog_open, with the journal in `journal`. Commits then make nothing
 * durable by themselves: the caller commits its store, makes it durable,
 * and then calls tlog_publish_due. */
int tlog_open_with(const char *dir, const char *origin, const struct enl_identity *signer,
		   const struct tlog_journal *journal, struct tlog **out, char *why,
		   size_t why_cap) ENL_WUR;
/* Stops the publisher (waits for it) and publishes what is committed. */
void tlog_close(struct tlog *log);

/* The tree: proofs and roots of committed sizes (enlace/tlog.h). */
const struct enl_tlog *tlog_tree(const struct tlog *log);

/* Appends one entry (at most ENL_TLOG_ENTRY_MAX bytes); *index is its
 * position. Not durable until tlog_commit. */
int tlog_append(struct tlog *log, const uint8_t *entry, size_t len, uint64_t *index) ENL_WUR;

/*
 * Makes what was appended durable: appends it to the journal (one
 * fdatasync), and, at most once a second, publishes the bundles, tiles and
 * checkpoint file. *checkpoint (malloc'd, if not NULL) gets a checkpoint
 * of the new size signed now. Opening the log again publishes anything a
 * stop left in the journal only.
 */
int tlog_commit(struct tlog *log, char **checkpoint) ENL_WUR;

/*
 * With an external journal (tlog_open_with), the commit in two steps, as
 * the journal's owner commits: tlog_stage hands what was appended to the
 * journal, in the owner's open transaction; once that transaction has
 * committed, tlog_stage_done makes it the log's committed state. If the
 * transaction fails instead, tlog_rollback forgets it, and the log stays
 * what the journal holds. (tlog_commit counts it committed at once, which
 * is right only if the owner's commit cannot fail.)
 */
int tlog_stage(struct tlog *log) ENL_WUR;
void tlog_stage_done(struct tlog *log);
/* Forgets what was appended since the last commit. */
void tlog_rollback(struct tlog *log);

/* *checkpoint (malloc'd): a checkpoint of everything committed, signed
 * now; its partial tiles are published with the next tiles. */
int tlog_checkpoint(struct tlog *log, char **checkpoint) ENL_WUR;

/* The bytes of committed entry `index` into *out (malloc'd), from the
 * journal. ENL_E_INVAL past the committed size. */
int tlog_entry(const struct tlog *log, uint64_t index, uint8_t **out, size_t *len) ENL_WUR;

/* Entries appended, committed, and whose tiles and checkpoint are
 * published. */
uint64_t tlog_size(const struct tlog *log);
uint64_t tlog_committed(const struct tlog *log);
uint64_t tlog_published(const struct tlog *log);

/* ---- publishing (tlog_publish.c) ---- */

/* Publishes the tiles and checkpoint of everything committed now, on
 * this thread (after waiting for a publication at work). */
int tlog_flush(struct tlog *log) ENL_WUR;

/* For logs opened with an external journal: if a second has passed since
 * the last time, hands a copy of what the tiles and the checkpoint file of
 * everything committed need to a thread of the log's own, which writes
 * them while the caller goes on (one publication at a time; none is
 * started while one is at work). Returns the outcome of the publication
 * before, if it failed (its entries are written again with the next). */
int tlog_publish_due(struct tlog *log) ENL_WUR;
/* Whether tlog_publish_due would start a publication now (a second has
 * passed and there is something new): the caller makes its store durable
 * first. */
bool tlog_publish_wanted(const struct tlog *log);

/*
 * Cosignature lines (enlace/note.h, enl_cosign) for the checkpoint of
 * `size`: the published checkpoint file carries them below the log's own
 * signature for as long as it is of that size (rewritten now if it is),
 * and `cosigned-checkpoint` keeps that checkpoint with them while the log
 * grows. NULL or "" drops them from `checkpoint`.
 */
int tlog_set_cosignatures(struct tlog *log, uint64_t size, const char *lines) ENL_WUR;

#endif
