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
