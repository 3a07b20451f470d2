/* Names shared between the files of the proto library only. */
#ifndef ENLACE_PROTO_INT_H
#define ENLACE_PROTO_INT_H

#include <stdlib.h>

#include "enlace/proto.h"

/* Ed25519 secret key (64 bytes) of the current version, or NULL. */
const uint8_t *identity_current_sign_sk(const struct enl_identity *ident);

/* Opens a content key sealed to `version`'s X25519 key. */
int identity_unseal(const struct enl_identity *ident, uint32_t version,
		    const uint8_t *sealed, size_t len, uint8_t key[32]);

#define HEADER_MAX ((size_t)16 << 10)

#define FORMAT 1

#define SEALED_KEY_LEN (crypto_box_SEALBYTES + 32)

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

#define ATTACH_NAME_MAX 255

#define MEDIA_TYPE_MAX 127

#define SUBJECT_MAX 1000

/* header.c */
int header_check(const struct enl_header *h);
int header_pack(const struct enl_header *h, uint8_t **out, size_t *out_len);
bool copy_id(char dst[static ENL_ID_MAX + 1], const char *src);
int header_unpack(const uint8_t *buf, size_t len, struct enl_header *h);
bool carries_original_rightly(const struct enl_header *h, bool carries);

/* ---- the log's tree in memory (tile.c, tlog.c, tlog_read.c) ---- */

#include "enlace/tlog.h"

/*
 * Appends a leaf to the right edge, merging the aligned subtrees it
 * completes, smallest first: a merge to height h is the root of the
 * aligned 2^h leaves that end with this one, and is told to merged() (if
 * not NULL). A merged() that fails stops the merging there; the edge is
 * then half merged.
 */
int tlog_tree_append(struct enl_tlog_tree *t, const enl_mhash leaf,
		     int (*merged)(void *arg, unsigned h, const enl_mhash root), void *arg);

/* Level L: the roots of the aligned subtrees of 256^L leaves (an
 * ENL_VEC of enl_mhash: enl_vec_push works on it). */
struct level {
	enl_mhash *v;
	size_t n, cap, max;
};
#define LEVEL_MAX ((size_t)1 << 40)	/* leaves a log may hold */
/* pend holds at most the bundles not yet published whole: a few of 256
 * entries of at most 64 KiB each, however long publishing fails */
#define PEND_MAX ((size_t)1 << 36)

struct enl_tlog {
	struct level lv[ENL_TILE_LEVELS];
	/* hh[h]: roots of the aligned subtrees of 2^h leaves, for h >= 4, so
	 * that a proof needs at most a few hashes of its own (4 bytes a leaf) */
	struct level hh[64];
	/* roots of other ranges, as proofs compute them (see range_root) */
	struct range_memo *memo;
	struct enl_tlog_tree tree, committed_tree;
	uint64_t committed;
	/* entries since the start of the oldest bundle not yet published whole */
	ENL_VEC(uint8_t) pend;
	uint64_t pend_first;	/* index of the first entry in pend */
	size_t pend_commit_off;	/* where the entries not yet committed start */
	char *note;		/* a loaded log: its checkpoint as read */
};

/* The roots of [start, start + count). */
void tlog_range_root(const struct enl_tlog *log, uint64_t start, uint64_t count, enl_mhash out);

#endif
