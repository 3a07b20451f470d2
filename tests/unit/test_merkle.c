/* RFC 6962 / 9162 Merkle hashing against the published test data, and
 * every proof of every small tree against a naive recomputation. */
#include <string.h>

#include <sodium.h>

#include "enlace/merkle.h"
#include "harness.h"

static const char *const inputs[] = {"", "00", "10", "2021", "3031", "40414243",
				     "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
static const char *const roots[] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static enl_mhash ct[8];

static void
hx(const char *s, uint8_t *out)
{
	if (!enl_unhex(s, out, strlen(s) / 2))
		abort();
}

static void
test_reference_roots(void)
{
	enl_mhash r, want;

	for (uint64_t n = 0; n <= 8; n++) {
		enl_merkle_root(ct, n, r);
		hx(roots[n], want);
		CHECK(memcmp(r, want, 32) == 0);
	}
}

struct vec {
	uint64_t a, b;
	size_t n;
	const char *p[3];
};

static void
test_reference_proofs(void)
{
	static const struct vec incl[] = {
		{0, 8, 3, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			   "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			   "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{5, 8, 3, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
			   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	};
	static const struct vec cons[] = {
		{2, 8, 2, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			   "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, 3, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
			   "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
			   "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	};
	enl_mhash proof[ENL_MERKLE_MAX_PROOF], want, ra, rb;
	size_t len = 0;

	for (size_t v = 0; v < sizeof(incl) / sizeof(incl[0]); v++) {
		REQUIRE_OK(enl_merkle_inclusion_proof(ct, incl[v].b, incl[v].a, proof, &len));
		CHECK(len == incl[v].n);
		for (size_t i = 0; i < len && i < incl[v].n; i++) {
			hx(incl[v].p[i], want);
			CHECK(memcmp(proof[i], want, 32) == 0);
		}
		hx(roots[incl[v].b], rb);
		CHECK_RC(enl_merkle_inclusion_verify(incl[v].a, incl[v].b, ct[incl[v].a], proof,
						     len, rb), ENL_OK);
	}
	for (size_t v = 0; v < sizeof(cons) / sizeof(cons[0]); v++) {
		REQUIRE_OK(enl_merkle_consistency_proof(ct, cons[v].a, cons[v].b, proof, &len));
		CHECK(len == cons[v].n);
		for (size_t i = 0; i < len && i < cons[v].n; i++) {
			hx(cons[v].p[i], want);
			CHECK(memcmp(proof[i], want, 32) == 0);
		}
		hx(roots[cons[v].a], ra);
		hx(roots[cons[v].b], rb);
		CHECK_RC(enl_merkle_consistency_verify(cons[v].a, cons[v].b, ra, rb, proof, len),
			 ENL_OK);
	}
}

#define N 64
static enl_mhash leaves[N], naive_roots[N + 1];

/* The root by the RFC's definition, computed the slow, obvious way. */
static void
naive_root(const enl_mhash *l, uint64_t n, enl_mhash out)
{
	enl_mhash level[N];
	uint64_t m = n;

	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	/* Pair from the left; an odd last node moves up unchanged. This is
	 * the same tree as the recursive split for every n. */
	memcpy(level, l, n * sizeof(enl_mhash));
	while (m > 1) {
		uint64_t o = 0;
		for (uint64_t i = 0; i + 1 < m; i += 2)
			enl_merkle_node_hash(level[i], level[i + 1], level[o++]);
		if (m % 2)
			memcpy(level[o++], level[m - 1], 32);
		m = o;
	}
	memcpy(out, level[0], 32);
}

static void
test_every_small_tree(void)
{
	enl_mhash proof[ENL_MERKLE_MAX_PROOF], r, bad[ENL_MERKLE_MAX_PROOF + 1];
	size_t len = 0, checked = 0, refused = 0, mangled = 0;

	for (uint64_t n = 0; n <= N; n++) {
		naive_root(leaves, n, naive_roots[n]);
		enl_merkle_root(leaves, n, r);
		CHECK(memcmp(r, naive_roots[n], 32) == 0);
	}
	for (uint64_t n = 1; n <= N; n++)
		for (uint64_t i = 0; i < n; i++) {
			REQUIRE_OK(enl_merkle_inclusion_proof(leaves, n, i, proof, &len));
			checked += enl_merkle_inclusion_verify(i, n, leaves[i], proof, len,
							       naive_roots[n]) == ENL_OK;
			/* another leaf, a changed hash, one hash short, one too many (a
			 * size that does not go with the root is the checkpoint's to bind) */
			refused += enl_merkle_inclusion_verify(i, n, leaves[(i + 1) % N], proof,
							       len, naive_roots[n]) != ENL_OK;
			mangled++;
			if (len > 0) {
				memcpy(bad, proof, len * 32);
				bad[len - 1][7] ^= 1;
				refused += enl_merkle_inclusion_verify(i, n, leaves[i], bad, len,
								       naive_roots[n]) != ENL_OK;
				refused += enl_merkle_inclusion_verify(i, n, leaves[i], proof,
								       len - 1, naive_roots[n]) != ENL_OK;
				mangled += 2;
			}
			memcpy(bad, proof, len * 32);
			memset(bad[len], 0xab, 32);
			refused += enl_merkle_inclusion_verify(i, n, leaves[i], bad, len + 1,
							       naive_roots[n]) != ENL_OK;
			mangled++;
		}
	CHECK(checked == N * (N + 1) / 2);
	CHECK(refused == mangled);
	checked = refused = mangled = 0;
	for (uint64_t b = 0; b <= N; b++)
		for (uint64_t a = 0; a <= b; a++) {
			REQUIRE_OK(enl_merkle_consistency_proof(leaves, a, b, proof, &len));
			checked += enl_merkle_consistency_verify(a, b, naive_roots[a],
								 naive_roots[b], proof,
								 len) == ENL_OK;
			if (a == b || a == 0)
				continue;	/* nothing to prove: any root extends the empty tree */
			/* a fork: the same size with another root */
			refused += enl_merkle_consistency_verify(a, b, naive_roots[a],
								 naive_roots[b - 1], proof,
								 len) != ENL_OK;
			mangled++;
			if (len > 0) {
				memcpy(bad, proof, len * 32);
				bad[0][3] ^= 0x80;
				refused += enl_merkle_consistency_verify(a, b, naive_roots[a],
									 naive_roots[b], bad,
									 len) != ENL_OK;
				refused += enl_merkle_consistency_verify(a, b, naive_roots[a],
									 naive_roots[b], proof,
									 len - 1) != ENL_OK;
				mangled += 2;
			}
		}
	CHECK(checked == (N + 1) * (N + 2) / 2);
	CHECK(refused == mangled);
	/* Two trees of one size with different roots: a fork, never consistent. */
	CHECK_RC(enl_merkle_consistency_verify(7, 7, naive_roots[7], naive_roots[7], proof, 0),
		 ENL_OK);
	CHECK_RC(enl_merkle_consistency_verify(7, 7, naive_roots[7], naive_roots[8], proof, 0),
		 ENL_E_BAD_SIGNATURE);
	CHECK_RC(enl_merkle_inclusion_proof(leaves, 4, 4, proof, &len), ENL_E_INVAL);
	CHECK_RC(enl_merkle_consistency_proof(leaves, 5, 4, proof, &len), ENL_E_INVAL);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	for (size_t i = 0; i < 8; i++) {
		uint8_t raw[16];
		size_t n = strlen(inputs[i]) / 2;
		hx(inputs[i], raw);
		enl_merkle_leaf_hash(raw, n, ct[i]);
	}
	for (int i = 0; i < N; i++) {
		uint8_t d[2] = {(uint8_t)i, (uint8_t)(i * 7)};
		enl_merkle_leaf_hash(d, 2, leaves[i]);
	}
	RUN(test_reference_roots);
	RUN(test_reference_proofs);
	RUN(test_every_small_tree);
	return harness_done();
}
