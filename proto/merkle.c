/* RFC 9162 section 2.1, recursively over an array of leaf hashes. */
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
enl_merkle_inclusion_verify(uint64_t index, uint64_t size, const enl_mhash leaf,
			    const enl_mhash *proof, size_t proof_len, const enl_mhash root)
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
	return sn == 0 && sodium_memcmp(r, root, ENL_MERKLE_HASH_LEN) == 0
		       ? ENL_OK : ENL_E_BAD_SIGNATURE;
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
