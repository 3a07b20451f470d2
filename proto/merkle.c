/* RFC 9162 section 2.1, recursively over an array of leaf hashes. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/merkle.h"

void
enl_merkle_leaf_hash(const uint8_t *data, size_t len, enl_mhash out)
{
	crypto_hash_sha256_state st;
	const uint8_t prefix = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	if (len)
		crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, out);
}

void
enl_merkle_node_hash(const enl_mhash left, const enl_mhash right, enl_mhash out)
{
	uint8_t buf[1 + 2 * ENL_MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, ENL_MERKLE_HASH_LEN);
	memcpy(buf + 1 + ENL_MERKLE_HASH_LEN, right, ENL_MERKLE_HASH_LEN);
	crypto_hash_sha256(out, buf, sizeof(buf));
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t
split(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

void
enl_merkle_root(const enl_mhash *leaves, uint64_t n, enl_mhash out)
{
	enl_mhash l, r;
	uint64_t k;

	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], ENL_MERKLE_HASH_LEN);
		return;
	}
	k = split(n);
	enl_merkle_root(leaves, k, l);
	enl_merkle_root(leaves + k, n - k, r);
	enl_merkle_node_hash(l, r, out);
}

static void
path(const enl_mhash *leaves, uint64_t n, uint64_t m, enl_mhash *proof, size_t *len)
{
	uint64_t k;

	if (n <= 1)
		return;
	k = split(n);
	if (m < k) {
		path(leaves, k, m, proof, len);
		enl_merkle_root(leaves + k, n - k, proof[(*len)++]);
	} else {
		path(leaves + k, n - k, m - k, proof, len);
		enl_merkle_root(leaves, k, proof[(*len)++]);
	}
}

int
enl_merkle_inclusion_proof(const enl_mhash *leaves, uint64_t size, uint64_t index,
			   enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *proof_len)
{
	if (index >= size)
		return ENL_E_INVAL;
	*proof_len = 0;
	path(leaves, size, index, proof, proof_len);
	return ENL_OK;
}

int
enl_merkle_root_from_path(uint64_t index, uint64_t size, const enl_mhash leaf,
			  const enl_mhash *proof, size_t proof_len, enl_mhash root)
{
	uint64_t fn = index, sn;
	enl_mhash r;

	if (index >= size || proof_len > ENL_MERKLE_MAX_PROOF)
		return ENL_E_INVAL;
	sn = size - 1;
	memcpy(r, leaf, ENL_MERKLE_HASH_LEN);
	for (size_t i = 0; i < proof_len; i++) {
		if (sn == 0)
			return ENL_E_BAD_SIGNATURE;
		if ((fn & 1) || fn == sn) {
			enl_merkle_node_hash(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			enl_merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return ENL_E_BAD_SIGNATURE;
	memcpy(root, r, ENL_MERKLE_HASH_LEN);
	return ENL_OK;
}

int
enl_merkle_inclusion_verify(uint64_t index, uint64_t size, const enl_mhash leaf,
			    const enl_mhash *proof, size_t proof_len, const enl_mhash root)
{
	enl_mhash r;
	int rc = enl_merkle_root_from_path(index, size, leaf, proof, proof_len, r);

	if (rc != ENL_OK)
		return rc;
	return sodium_memcmp(r, root, ENL_MERKLE_HASH_LEN) == 0 ? ENL_OK : ENL_E_BAD_SIGNATURE;
}

/*
 * Level by level: pairs are hashed, and an odd last node moves up as it
 * is. That is the tree of enl_merkle_root (its left subtrees are the
 * largest powers of two), and a leaf's sibling at each level where it has
 * one is the next hash of its audit path, bottom up.
 */
int
enl_merkle_batch(const enl_mhash *leaves, size_t n, enl_mhash root,
		 struct enl_batch_proof *proofs)
{
	enl_mhash *level;
	size_t width = n;

	if (n == 0 || n > ENL_MERKLE_BATCH_MAX)
		return ENL_E_INVAL;
	if ((level = malloc(n * sizeof(*level))) == NULL)
		return ENL_E_NOMEM;
	memcpy(level, leaves, n * sizeof(*level));
	for (size_t i = 0; i < n; i++) {
		proofs[i].size = (uint32_t)n;
		proofs[i].index = (uint32_t)i;
		proofs[i].n_path = 0;
	}
	for (unsigned depth = 0; width > 1; depth++) {
		for (size_t i = 0; i < n; i++) {
			size_t sib = (i >> depth) ^ 1;
			if (sib < width)
				memcpy(proofs[i].path[proofs[i].n_path++], level[sib],
				       ENL_MERKLE_HASH_LEN);
		}
		for (size_t j = 0; j + 1 < width; j += 2)
			enl_merkle_node_hash(level[j], level[j + 1], level[j / 2]);
		if (width & 1)
			memmove(level[width / 2], level[width - 1], ENL_MERKLE_HASH_LEN);
		width = (width + 1) / 2;
	}
	memcpy(root, level[0], ENL_MERKLE_HASH_LEN);
	free(level);
	return ENL_OK;
}

/* A statement's leaf: its BLAKE2b-256 digest as an RFC 6962 leaf (a
 * statement of a kilobyte is hashed at BLAKE2b's speed, not SHA-256's). */
static void
statement_leaf(const uint8_t *msg, size_t len, enl_mhash leaf)
{
	uint8_t d[32];

	crypto_generichash(d, sizeof(d), msg, len, NULL, 0);
	enl_merkle_leaf_hash(d, sizeof(d), leaf);
}

/* What a batch signature covers after its label: the batch's size (4
 * bytes, big-endian) and its root. */
static void
batch_statement(uint32_t size, const enl_mhash root, uint8_t out[4 + ENL_MERKLE_HASH_LEN])
{
	out[0] = (uint8_t)(size >> 24);
	out[1] = (uint8_t)(size >> 16);
	out[2] = (uint8_t)(size >> 8);
	out[3] = (uint8_t)size;
	memcpy(out + 4, root, ENL_MERKLE_HASH_LEN);
}

int
enl_identity_sign_batch(const struct enl_identity *ident, const char *label,
			const uint8_t *const *msgs, const size_t *lens, size_t n,
			uint8_t sig[static 64], struct enl_batch_proof *proofs)
{
	enl_mhash *leaves, root;
	uint8_t st[4 + ENL_MERKLE_HASH_LEN];
	int rc;

	if (n == 0 || n > ENL_MERKLE_BATCH_MAX)
		return ENL_E_INVAL;
	if ((leaves = malloc(n * sizeof(*leaves))) == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		statement_leaf(msgs[i], lens[i], leaves[i]);
	rc = enl_merkle_batch(leaves, n, root, proofs);
	free(leaves);
	if (rc != ENL_OK)
		return rc;
	batch_statement((uint32_t)n, root, st);
	return enl_identity_sign(ident, label, st, sizeof(st), sig);
}

int
enl_verify_batched(const uint8_t pk[static 32], const char *label, const uint8_t *msg,
		   size_t len, const struct enl_batch_proof *p, const uint8_t sig[static 64])
{
	enl_mhash leaf, root;
	uint8_t st[4 + ENL_MERKLE_HASH_LEN];

	if (p->size == 0 || p->size > ENL_MERKLE_BATCH_MAX || p->n_path > ENL_MERKLE_BATCH_DEPTH)
		return ENL_E_BAD_SIGNATURE;
	statement_leaf(msg, len, leaf);
	if (enl_merkle_root_from_path(p->index, p->size, leaf, (const enl_mhash *)p->path,
				      p->n_path, root) != ENL_OK)
		return ENL_E_BAD_SIGNATURE;
	batch_statement(p->size, root, st);
	return enl_verify_labeled(pk, label, st, sizeof(st), sig);
}

static void
subproof(const enl_mhash *leaves, uint64_t n, uint64_t m, bool whole, enl_mhash *proof,
	 size_t *len)
{
	uint64_t k;

	if (m == n) {
		if (!whole)
			enl_merkle_root(leaves, n, proof[(*len)++]);
		return;
	}
	k = split(n);
	if (m <= k) {
		subproof(leaves, k, m, whole, proof, len);
		enl_merkle_root(leaves + k, n - k, proof[(*len)++]);
	} else {
		subproof(leaves + k, n - k, m - k, false, proof, len);
		enl_merkle_root(leaves, k, proof[(*len)++]);
	}
}

int
enl_merkle_consistency_proof(const enl_mhash *leaves, uint64_t first, uint64_t second,
			     enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *proof_len)
{
	if (first > second)
		return ENL_E_INVAL;
	*proof_len = 0;
	if (first > 0 && first < second)
		subproof(leaves, second, first, true, proof, proof_len);
	return ENL_OK;
}

int
enl_merkle_consistency_verify(uint64_t first, uint64_t second, const enl_mhash first_root,
			      const enl_mhash second_root, const enl_mhash *proof,
			      size_t proof_len)
{
	const enl_mhash *p = proof;
	size_t n = proof_len;
	uint64_t fn, sn;
	enl_mhash fr, sr, empty;

	if (first > second || proof_len > ENL_MERKLE_MAX_PROOF)
		return ENL_E_INVAL;
	if (first == second)
		return proof_len == 0 &&
			       sodium_memcmp(first_root, second_root, ENL_MERKLE_HASH_LEN) == 0
		       ? ENL_OK : ENL_E_BAD_SIGNATURE;
	if (first == 0) {
		/* Every tree extends the empty one, whose root is fixed. */
		crypto_hash_sha256(empty, NULL, 0);
		return proof_len == 0 && sodium_memcmp(first_root, empty, ENL_MERKLE_HASH_LEN) == 0
			       ? ENL_OK : ENL_E_BAD_SIGNATURE;
	}
	if (proof_len == 0)
		return ENL_E_BAD_SIGNATURE;
	fn = first - 1;
	sn = second - 1;
	/* With first a power of two, the proof starts at first's root itself. */
	if ((first & (first - 1)) == 0) {
		memcpy(fr, first_root, ENL_MERKLE_HASH_LEN);
	} else {
		memcpy(fr, p[0], ENL_MERKLE_HASH_LEN);
		p++;
		n--;
	}
	memcpy(sr, fr, ENL_MERKLE_HASH_LEN);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)
			return ENL_E_BAD_SIGNATURE;
		if ((fn & 1) || fn == sn) {
			enl_merkle_node_hash(p[i], fr, fr);
			enl_merkle_node_hash(p[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			enl_merkle_node_hash(sr, p[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(fr, first_root, ENL_MERKLE_HASH_LEN) == 0 &&
			       sodium_memcmp(sr, second_root, ENL_MERKLE_HASH_LEN) == 0
		       ? ENL_OK : ENL_E_BAD_SIGNATURE;
}
