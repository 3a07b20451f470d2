/*
 * enlace merkle: RFC 6962 / RFC 9162 Merkle tree hashing (SHA-256, leaf
 * prefix 0x00, node prefix 0x01), inclusion and consistency proofs.
 *
 * Proof generation works over an array of leaf hashes in memory; proof
 * verification needs nothing but the proof. Verifiers return ENL_OK or
 * ENL_E_BAD_SIGNATURE when a proof does not hold, ENL_E_INVAL for
 * impossible indices or sizes.
 */
#ifndef ENLACE_MERKLE_H
#define ENLACE_MERKLE_H

#include "enlace/proto.h"

#define ENL_MERKLE_HASH_LEN 32
#define ENL_MERKLE_MAX_PROOF 64	/* a proof in a tree of up to 2^64 leaves */

typedef uint8_t enl_mhash[ENL_MERKLE_HASH_LEN];

/* SHA-256(0x00 || data) */
void enl_merkle_leaf_hash(const uint8_t *data, size_t len, enl_mhash out);
/* SHA-256(0x01 || left || right) */
void enl_merkle_node_hash(const enl_mhash left, const enl_mhash right, enl_mhash out);

/* MTH of the first n leaf hashes (SHA-256 of nothing when n is 0). */
void enl_merkle_root(const enl_mhash *leaves, uint64_t n, enl_mhash out);

/* The audit path of leaf `index` in the tree of the first `size` leaves.
 * ENL_E_INVAL unless index < size. */
int enl_merkle_inclusion_proof(const enl_mhash *leaves, uint64_t size, uint64_t index,
			       enl_mhash proof[ENL_MERKLE_MAX_PROOF],
			       size_t *proof_len) ENL_WUR;

int enl_merkle_inclusion_verify(uint64_t index, uint64_t size, const enl_mhash leaf,
				const enl_mhash *proof, size_t proof_len,
				const enl_mhash root) ENL_WUR;

/* The root that leaf `index` of a tree of `size` leaves and its audit path
 * lead to, into `root`; ENL_E_BAD_SIGNATURE if the path cannot be one for
 * that index and size. */
int enl_merkle_root_from_path(uint64_t index, uint64_t size, const enl_mhash leaf,
			      const enl_mhash *proof, size_t proof_len,
			      enl_mhash root) ENL_WUR;

/* ---- batch signatures ------------------------------------------------
 *
 * One Ed25519 signature for n statements: each statement's BLAKE2b-256
 * digest is an RFC 6962 leaf, and the signer signs
 * label || 0x00 || n (4 bytes, big-endian) || the root.
 * A statement and its place in the batch (struct enl_batch_proof) are
 * then checked on their own, without the others.
 */
#define ENL_MERKLE_BATCH_DEPTH 16
#define ENL_MERKLE_BATCH_MAX (1u << ENL_MERKLE_BATCH_DEPTH)

struct enl_batch_proof {
	uint32_t size, index;
	uint8_t n_path;
	enl_mhash path[ENL_MERKLE_BATCH_DEPTH];
};

/* The root of n leaf hashes (1 <= n <= ENL_MERKLE_BATCH_MAX) and every
 * leaf's audit path, in n - 1 node hashes: proofs[i] for leaf i. */
int enl_merkle_batch(const enl_mhash *leaves, size_t n, enl_mhash root,
		     struct enl_batch_proof *proofs) ENL_WUR;

struct enl_identity;
/* Signs msgs[0..n) as one batch with the identity's current key; proofs
 * (n of them) receive each statement's place. */
int enl_identity_sign_batch(const struct enl_identity *ident, const char *label,
			    const uint8_t *const *msgs, const size_t *lens, size_t n,
			    uint8_t sig[static 64], struct enl_batch_proof *proofs) ENL_WUR;

/* ENL_OK if msg, at its place p, is covered by sig under pk;
 * ENL_E_BAD_SIGNATURE otherwise. */
int enl_verify_batched(const uint8_t pk[static 32], const char *label, const uint8_t *msg,
		       size_t len, const struct enl_batch_proof *p,
		       const uint8_t sig[static 64]) ENL_WUR;

/* The proof that the tree of size `first` is a prefix of the tree of size
 * `second`. ENL_E_INVAL unless first <= second. Empty when first is 0 or
 * first == second. */
int enl_merkle_consistency_proof(const enl_mhash *leaves, uint64_t first, uint64_t second,
				 enl_mhash proof[ENL_MERKLE_MAX_PROOF],
				 size_t *proof_len) ENL_WUR;

int enl_merkle_consistency_verify(uint64_t first, uint64_t second,
				  const enl_mhash first_root, const enl_mhash second_root,
				  const enl_mhash *proof, size_t proof_len) ENL_WUR;

#endif
