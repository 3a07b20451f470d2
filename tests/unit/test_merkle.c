/* RFC 6962 / 9162 Merkle hashing against the published test data, and
 * every proof of every small tree against a naive recomputation. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/merkle.h"
#include "enlace/session.h"
#include "enlace/wire.h"
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


/* The root and every path of a batch at once are those of the tree
 * computed one proof at a time, for every size up to N and a few larger. */
static void
test_batch_proofs(void)
{
	static const size_t big[] = {100, 255, 256, 257, 1000, 4096, 4097};
	struct enl_batch_proof *p = malloc(4097 * sizeof(*p));
	enl_mhash *many = malloc(4097 * sizeof(*many)), root, want, proof[ENL_MERKLE_MAX_PROOF];
	size_t len = 0, differ = 0, checked = 0;

	REQUIRE(p != NULL && many != NULL);
	randombytes_buf(many, 4097 * sizeof(*many));
	memcpy(many, leaves, sizeof(leaves));
	for (size_t k = 0; k < N + sizeof(big) / sizeof(big[0]); k++) {
		size_t n = k < N ? k + 1 : big[k - N];
		REQUIRE_OK(enl_merkle_batch((const enl_mhash *)many, n, root, p));
		enl_merkle_root((const enl_mhash *)many, n, want);
		CHECK(memcmp(root, want, 32) == 0);
		for (size_t i = 0; i < n; i++) {
			REQUIRE_OK(enl_merkle_inclusion_proof((const enl_mhash *)many, n, i, proof,
							      &len));
			if (p[i].size != n || p[i].index != i || p[i].n_path != len ||
			    memcmp(p[i].path, proof, len * 32) != 0)
				differ++;
			checked++;
		}
	}
	CHECK(differ == 0);
	CHECK(checked > 10000);
	CHECK_RC(enl_merkle_batch((const enl_mhash *)many, 0, root, p), ENL_E_INVAL);
	free(p);
	free(many);
}

/* A batch signature holds for each statement at its place, and for
 * nothing else: another statement, place, size, path, label or key. */
static void
test_batch_signature(void)
{
	static const char *const msgs[] = {"first", "second", "", "fourth, longer than the rest",
					   "fifth"};
	const uint8_t *m[5];
	size_t lens[5];
	struct enl_batch_proof p[5], q;
	struct enl_identity *id = NULL, *other = NULL;
	uint8_t pk[32], enc[32], opk[32], sig[64], bad[64];
	size_t refused = 0, tries = 0;

	uint32_t v = 0;

	REQUIRE_OK(enl_identity_new("AR-UIF", &id));
	REQUIRE_OK(enl_identity_new("BR-PF", &other));
	REQUIRE_OK(enl_identity_rotate(id, &v));
	REQUIRE_OK(enl_identity_rotate(other, &v));
	REQUIRE_OK(enl_identity_public(id, 1, pk, enc));
	REQUIRE_OK(enl_identity_public(other, 1, opk, enc));
	for (int i = 0; i < 5; i++) {
		m[i] = (const uint8_t *)msgs[i];
		lens[i] = strlen(msgs[i]);
	}
	REQUIRE_OK(enl_identity_sign_batch(id, "test/batch/v1", m, lens, 5, sig, p));
	for (int i = 0; i < 5; i++) {
		CHECK_RC(enl_verify_batched(pk, "test/batch/v1", m[i], lens[i], &p[i], sig), ENL_OK);
		/* each wrong in one way */
		for (int k = 0; k < 9; k++) {
			const uint8_t *msg = m[i];
			size_t len = lens[i];
			const char *label = "test/batch/v1";
			const uint8_t *key = pk;
			q = p[i];
			memcpy(bad, sig, 64);
			switch (k) {
			case 0: msg = m[(i + 1) % 5]; len = lens[(i + 1) % 5]; break;
			case 1: q.index = (q.index + 1) % 5; break;
			case 2: q.size = 6; break;
			case 3: q.size = 4; break;
			case 4: q.path[0][i % 32] ^= 1; break;
			case 5: q.n_path--; break;
			case 6: bad[i] ^= 0x80; break;
			case 7: label = "test/batch/v2"; break;
			case 8: key = opk; break;
			}
			tries++;
			refused += enl_verify_batched(key, label, msg, len, &q, bad) ==
				   ENL_E_BAD_SIGNATURE;
		}
	}
	CHECK(tries == 45 && refused == tries);
	q = p[0];
	q.n_path = ENL_MERKLE_BATCH_DEPTH + 1;
	CHECK_RC(enl_verify_batched(pk, "test/batch/v1", m[0], lens[0], &q, sig),
		 ENL_E_BAD_SIGNATURE);
	q.size = 0;
	CHECK_RC(enl_verify_batched(pk, "test/batch/v1", m[0], lens[0], &q, sig),
		 ENL_E_BAD_SIGNATURE);
	/* the signed bytes as the format says, computed here by hand: for
	 * 5 statements, root = node(node(node(l0, l1), node(l2, l3)), l4),
	 * each leaf SHA-256(0x00 || BLAKE2b-256(statement)) */
	{
		enl_mhash l[5], a, b, c, root;
		uint8_t signed_bytes[sizeof("test/batch/v1") + 4 + 32];
		for (int i = 0; i < 5; i++) {
			uint8_t d[32];
			crypto_generichash(d, 32, m[i], lens[i], NULL, 0);
			enl_merkle_leaf_hash(d, 32, l[i]);
		}
		enl_merkle_node_hash(l[0], l[1], a);
		enl_merkle_node_hash(l[2], l[3], b);
		enl_merkle_node_hash(a, b, c);
		enl_merkle_node_hash(c, l[4], root);
		memcpy(signed_bytes, "test/batch/v1", sizeof("test/batch/v1"));
		memcpy(signed_bytes + sizeof("test/batch/v1"), "\0\0\0\5", 4);
		memcpy(signed_bytes + sizeof("test/batch/v1") + 4, root, 32);
		CHECK(crypto_sign_verify_detached(sig, signed_bytes, sizeof(signed_bytes), pk) == 0);
		CHECK(p[4].n_path == 1 && memcmp(p[4].path[0], c, 32) == 0);
		CHECK(p[2].n_path == 3 && memcmp(p[2].path[0], l[3], 32) == 0 &&
		      memcmp(p[2].path[1], a, 32) == 0 && memcmp(p[2].path[2], l[4], 32) == 0);
	}
	/* a batch of one: no path, the root is the statement's leaf */
	REQUIRE_OK(enl_identity_sign_batch(id, "test/batch/v1", m, lens, 1, sig, p));
	CHECK(p[0].size == 1 && p[0].index == 0 && p[0].n_path == 0);
	CHECK_RC(enl_verify_batched(pk, "test/batch/v1", m[0], lens[0], &p[0], sig), ENL_OK);
	CHECK_RC(enl_verify_batched(pk, "test/batch/v1", m[1], lens[1], &p[0], sig),
		 ENL_E_BAD_SIGNATURE);
	enl_identity_free(id);
	enl_identity_free(other);
}

/* A receipt is checked as one of a batch, or (one kept from before
 * batches) as signed alone; the two never stand in for each other. */
static void
test_receipt_signature(void)
{
	Enlace__SignedReceipt r = ENLACE__SIGNED_RECEIPT__INIT;
	struct enl_identity *id = NULL;
	struct enl_batch_proof p[3];
	ProtobufCBinaryData path[ENL_MERKLE_BATCH_DEPTH + 1];
	const uint8_t *m[3] = {(const uint8_t *)"a", (const uint8_t *)"receipt body",
			       (const uint8_t *)"c"};
	size_t lens[3] = {1, 12, 1};
	uint8_t pk[32], enc[32], sig[64], alone[64], wide[33];

	uint32_t v = 0;

	REQUIRE_OK(enl_identity_new("OAS-BROKER", &id));
	REQUIRE_OK(enl_identity_rotate(id, &v));
	REQUIRE_OK(enl_identity_public(id, 1, pk, enc));
	REQUIRE_OK(enl_identity_sign_batch(id, ENL_LABEL_RECEIPT_BATCH, m, lens, 3, sig, p));
	REQUIRE_OK(enl_identity_sign(id, ENL_LABEL_RECEIPT, m[1], lens[1], alone));
	r.body.data = (uint8_t *)m[1];
	r.body.len = lens[1];
	r.signature.data = sig;
	r.signature.len = 64;
	r.batch_size = 3;
	r.batch_index = 1;
	r.n_batch_path = p[1].n_path;
	for (size_t i = 0; i < p[1].n_path; i++) {
		path[i].data = p[1].path[i];
		path[i].len = 32;
	}
	r.batch_path = path;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_OK);
	r.batch_index = 2;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	r.batch_index = 1;
	memcpy(wide, p[1].path[0], 32);
	path[0].data = wide;
	path[0].len = 33;	/* a path hash of the wrong length */
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	path[0].len = 32;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_OK);
	r.n_batch_path = ENL_MERKLE_BATCH_DEPTH + 1;
	for (size_t i = p[1].n_path; i < ENL_MERKLE_BATCH_DEPTH + 1; i++)
		path[i] = path[0];
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	r.n_batch_path = p[1].n_path;
	r.signature.len = 63;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	r.signature.len = 64;
	/* the batch signature is no signature of the body alone */
	r.batch_size = 0;
	r.batch_index = 0;
	r.n_batch_path = 0;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	r.signature.data = alone;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_OK);
	r.batch_index = 1;	/* signed alone, but claiming a place */
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	/* ...nor the other way round */
	r.batch_size = 1;
	r.batch_index = 0;
	CHECK_RC(enl_receipt_check_signature(&r, pk), ENL_E_BAD_SIGNATURE);
	enl_identity_free(id);
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
	RUN(test_batch_proofs);
	RUN(test_batch_signature);
	RUN(test_receipt_signature);
	return harness_done();
}
