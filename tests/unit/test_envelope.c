/*
 * Envelope seal and open: round trips, limits, refusals, tampering.
 */
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/wire.h"
#include "envelope_fixture.h"
#include "harness.h"
#include "proto_int.h"


struct world w;

char ids[WORLD_MAX][ENL_ID_MAX + 1];

const char *id_ptrs[WORLD_MAX];

void
header_to(struct enl_header *h, const char *const *to, size_t n)
{
	memset(h, 0, sizeof(*h));
	for (size_t i = 0; i < n; i++)
		snprintf(h->recipients[i], sizeof(h->recipients[i]), "%s", to[i]);
	h->n_recipients = n;
	h->type = ENL_MSG_CASE_MESSAGE;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_CONSENT;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
}

int
seal_simple(const char *from, const char *const *to, size_t n, const char *body,
	    uint8_t **env, size_t *len)
{
	struct enl_header h;
	struct enl_payload p = {.subject = "subject", .body = body};
	struct enl_limits lim = enl_limits_default();

	header_to(&h, to, n);
	return enl_envelope_seal(world_find(&w, from), &w.kr, &lim, &h, &p, NOW, env, len);
}

static void
roundtrip(size_t n_rcpt)
{
	struct enl_limits lim = enl_limits_default();
	struct enl_header h;
	struct enl_attachment att[2] = {
		{"ledger.csv", "text/csv", (const uint8_t *)"a,b\n1,2\n", 8},
		{"empty.bin", "", NULL, 0},
	};
	struct enl_payload p = {"Wire transfers", "Body text\nline 2", 2, att, NULL, 0, NULL};
	uint8_t *env = NULL;
	size_t len = 0;

	header_to(&h, id_ptrs + 1, n_rcpt);
	snprintf(h.case_ref, sizeof(h.case_ref), "CASE-2026-0042");
	h.reliability = ENL_REL_B;
	h.assessment = 2;
	h.priority = ENL_PRIO_IMMEDIATE;
	h.expires_at = NOW + 3600;
	h.reply_by = NOW + 1800;
	h.has_in_reply_to = true;
	memset(h.in_reply_to, 7, sizeof(h.in_reply_to));
	REQUIRE_OK(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len));
	CHECK(strcmp(h.sender, ids[0]) == 0);
	CHECK(h.sender_key_version == 1);
	CHECK(h.created_at == NOW);
	for (size_t i = 1; i <= n_rcpt; i++) {
		struct enl_message *m = NULL;
		uint8_t hash[ENL_HASH_LEN];
		CHECK_RC(enl_envelope_open(env, len, w.agency[i], &w.kr, &lim, NOW, &m), ENL_OK);
		if (m == NULL)
			continue;
		CHECK(memcmp(m->header.message_id, h.message_id, ENL_MSG_ID_LEN) == 0);
		CHECK(strcmp(m->header.sender, ids[0]) == 0);
		CHECK(m->header.n_recipients == n_rcpt);
		CHECK(strcmp(m->header.recipients[i - 1], ids[i]) == 0);
		CHECK(strcmp(m->header.case_ref, "CASE-2026-0042") == 0);
		CHECK(m->header.handling.tlp == ENL_TLP_AMBER);
		CHECK(m->header.handling.onward == ENL_ONWARD_CONSENT);
		CHECK(m->header.handling.evidential == ENL_EVID_INTELLIGENCE_ONLY);
		CHECK(m->header.reliability == ENL_REL_B && m->header.assessment == 2);
		CHECK(m->header.priority == ENL_PRIO_IMMEDIATE);
		CHECK(m->header.expires_at == NOW + 3600 && m->header.reply_by == NOW + 1800);
		CHECK(m->header.has_in_reply_to && m->header.in_reply_to[15] == 7);
		CHECK(!m->header.has_forward_of);
		CHECK(strcmp(m->payload.subject, "Wire transfers") == 0);
		CHECK(strcmp(m->payload.body, "Body text\nline 2") == 0);
		CHECK(m->payload.n_attachments == 2);
		CHECK(strcmp(m->payload.attachments[0].name, "ledger.csv") == 0);
		CHECK(strcmp(m->payload.attachments[0].media_type, "text/csv") == 0);
		CHECK(m->payload.attachments[0].len == 8 &&
		      memcmp(m->payload.attachments[0].data, "a,b\n1,2\n", 8) == 0);
		CHECK(m->payload.attachments[1].len == 0);
		enl_hash(env, len, hash);
		CHECK(memcmp(hash, m->hash, ENL_HASH_LEN) == 0);
		enl_message_free(m);
	}
	/* The header, read in place without the signature (peek), and what
	 * a header field longer than the envelope gets. */
	{
		struct enl_header ph;
		uint8_t *cut = malloc(len);
		REQUIRE_OK(enl_envelope_peek(env, len, &lim, &ph));
		CHECK(memcmp(ph.message_id, h.message_id, ENL_MSG_ID_LEN) == 0);
		CHECK(ph.expires_at == NOW + 3600 && strcmp(ph.sender, ids[0]) == 0);
		if (cut != NULL) {
			memcpy(cut, env, len);
			CHECK(cut[0] == 0x0a);	/* canonical: the header comes first */
			CHECK(enl_envelope_peek(cut, 8, &lim, &ph) != ENL_OK);
			free(cut);
		}
	}
	/* The sender is not a recipient of its own message. */
	{
		struct enl_message *m = NULL;
		CHECK_RC(enl_envelope_open(env, len, w.agency[0], &w.kr, &lim, NOW, &m),
			 ENL_E_NOT_RECIPIENT);
	}
	free(env);
}

static void test_roundtrip_1(void) { roundtrip(1); }

static void test_roundtrip_2(void) { roundtrip(2); }

static void test_roundtrip_50(void) { roundtrip(50); }

static void
test_empty_payload(void)
{
	struct enl_limits lim = enl_limits_default();
	struct enl_header h;
	struct enl_payload p = {0};
	struct enl_message *m = NULL;
	uint8_t *env = NULL;
	size_t len = 0;

	header_to(&h, id_ptrs + 1, 1);
	REQUIRE_OK(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len));
	CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m), ENL_OK);
	if (m != NULL) {
		CHECK(m->payload.subject[0] == '\0' && m->payload.body[0] == '\0');
		CHECK(m->payload.n_attachments == 0 && m->payload.original == NULL);
	}
	enl_message_free(m);
	free(env);
}

/* A payload of exactly `limit` serialized bytes, one attachment. */
static void
limit_case(size_t limit)
{
	struct enl_limits lim = {limit};
	struct enl_header h;
	struct enl_attachment att = {"big.bin", "application/octet-stream", NULL, 0};
	struct enl_payload p = {"s", "b", 1, &att, NULL, 0, NULL};
	struct enl_message *m = NULL;
	uint8_t *data, *env = NULL;
	size_t len = 0, size;

	REQUIRE((data = malloc(limit)) != NULL);
	memset(data, 0xA5, limit);
	att.data = data;
	/* Grow the attachment until the serialized payload hits the limit:
	 * the varint length prefix makes the overhead depend on the size. */
	att.len = limit - 64;
	while ((size = enl_payload_size(&p)) < limit)
		att.len += limit - size;
	while (enl_payload_size(&p) > limit)
		att.len--;
	REQUIRE(enl_payload_size(&p) == limit);
	header_to(&h, id_ptrs + 1, 1);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len), ENL_OK);
	CHECK(env != NULL && len <= enl_envelope_max_size(&lim));
	if (env != NULL) {
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m), ENL_OK);
		CHECK(m != NULL && m->payload.attachments[0].len == att.len);
		/* the envelope hash (on a thread of its own when large) */
		uint8_t want[ENL_HASH_LEN], got[ENL_HASH_LEN];
		struct enl_header vh;
		enl_hash(env, len, want);
		CHECK(m != NULL && memcmp(m->hash, want, sizeof(want)) == 0);
		enl_message_free(m);
		m = NULL;
		CHECK_RC(enl_envelope_verify(env, len, &w.kr, &lim, NOW, &vh, got), ENL_OK);
		CHECK(memcmp(got, want, sizeof(want)) == 0);
		/* the last byte before the signature's field: the digest's end */
		env[len - 67] ^= 1;
		CHECK_RC(enl_envelope_verify(env, len, &w.kr, &lim, NOW, &vh, got),
			 ENL_E_BAD_SIGNATURE);
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
			 ENL_E_BAD_SIGNATURE);
		CHECK(m == NULL);
		env[len - 67] ^= 1;
		/* A receiver with a lower limit refuses it before decrypting. */
		struct enl_limits small = {limit - 1};
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &small, NOW, &m),
			 ENL_E_TOO_LARGE);
	}
	free(env);
	env = NULL;
	att.len++;
	CHECK(enl_payload_size(&p) == limit + 1);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_TOO_LARGE);
	CHECK(env == NULL);
	free(data);
}

static void test_limit_small(void) { limit_case(4096); }

static void test_limit_default(void) { limit_case(ENL_DEFAULT_MAX_PAYLOAD); }

static void
test_tamper_matrix(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1], ids[2]};
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	struct enl_message *m = NULL;
	uint8_t *env = NULL;
	size_t len = 0, opened = 0;

	REQUIRE_OK(seal_simple(ids[0], to, 2, "tamper me", &env, &len));
	REQUIRE_OK(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m));
	enl_message_free(m);
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof(masks); k++) {
			m = NULL;
			env[i] ^= masks[k];
			if (enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m) == ENL_OK) {
				opened++;
				fprintf(stderr, "byte %zu ^ 0x%02x still opens\n", i, masks[k]);
				enl_message_free(m);
			}
			env[i] ^= masks[k];
		}
	}
	CHECK(opened == 0);
	/* Truncation at every length fails too. */
	for (size_t n = 0; n < len; n++) {
		m = NULL;
		if (enl_envelope_open(env, n, w.agency[1], &w.kr, &lim, NOW, &m) == ENL_OK) {
			opened++;
			enl_message_free(m);
		}
	}
	CHECK(opened == 0);
	free(env);
}

/*
 * A large envelope: sealed in one buffer, opened with its attachment lent
 * from the plaintext (the same bytes), and its header read from the first
 * 64 KiB alone, as the broker reads a large stored one.
 */
static void
test_large_envelope(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1]};
	struct enl_header h, ph;
	struct enl_attachment att = {"scan.bin", "application/octet-stream", NULL, 3u << 20};
	struct enl_payload p = {"large", "body", 1, &att, NULL, 0, NULL};
	struct enl_message *m = NULL;
	uint8_t *data = malloc(att.len), *env = NULL;
	size_t len = 0;

	REQUIRE(data != NULL);
	randombytes_buf(data, att.len);
	att.data = data;
	header_to(&h, to, 1);
	h.expires_at = NOW + 60;
	REQUIRE_OK(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len));
	CHECK(len > att.len);
	CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m), ENL_OK);
	if (m != NULL) {
		CHECK(m->payload.n_attachments == 1 && m->payload.attachments[0].len == att.len &&
		      memcmp(m->payload.attachments[0].data, data, att.len) == 0);
		CHECK(strcmp(m->payload.body, "body") == 0);
		enl_message_free(m);
	}
	CHECK_RC(enl_envelope_peek(env, 64u << 10, &lim, &ph), ENL_OK);
	CHECK(memcmp(ph.message_id, h.message_id, ENL_MSG_ID_LEN) == 0 &&
	      ph.expires_at == NOW + 60);
	/* ... the same from its file */
	{
		char path[] = "/tmp/enlace-peek-XXXXXX";
		int fd = mkstemp(path);
		REQUIRE(fd >= 0);
		unlink(path);
		CHECK(write(fd, env, len) == (ssize_t)len);
		memset(&ph, 0, sizeof(ph));
		CHECK_RC(enl_envelope_peek_file(fd, len, &lim, &ph), ENL_OK);
		CHECK(memcmp(ph.message_id, h.message_id, ENL_MSG_ID_LEN) == 0 &&
		      ph.expires_at == NOW + 60);
		CHECK(ftruncate(fd, 100) == 0);	/* shorter than it is said to be */
		CHECK_RC(enl_envelope_peek_file(fd, len, &lim, &ph), ENL_E_IO);
		close(fd);
	}
	free(env);
	free(data);
}

/* Re-signs an envelope after `edit` changed it, as a malicious sender. */
static int
resign(uint8_t **env, size_t *len, const struct enl_identity *signer,
       void (*edit)(Enlace__Envelope *))
{
	Enlace__Envelope *e = (Enlace__Envelope *)protobuf_c_message_unpack(
		&enlace__envelope__descriptor, NULL, *len, *env);
	uint8_t digest[32];
	int rc;

	if (e == NULL)
		return ENL_E_MALFORMED;
	edit(e);
	enl_envelope_digest(e, digest);
	rc = enl_identity_sign(signer, ENL_LABEL_ENVELOPE, digest, 32, e->signature.data);
	free(*env);
	*env = NULL;
	if (rc == ENL_OK)
		rc = enl_pb_pack(&e->base, env, len);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return rc;
}

static void flip_ciphertext(Enlace__Envelope *e) { e->ciphertext.data[0] ^= 1; }

static void flip_sealed_key(Enlace__Envelope *e) { e->wraps[0]->sealed_key.data[40] ^= 1; }

static void
test_refusals(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to1[] = {ids[1]};
	struct enl_message *m = NULL;
	struct enl_header h;
	uint8_t *env = NULL;
	size_t len = 0;

	/* Malformed bytes. */
	CHECK_RC(enl_envelope_open((const uint8_t *)"garbage", 7, w.agency[1], &w.kr,
				   &lim, NOW, &m), ENL_E_MALFORMED);
	CHECK_RC(enl_envelope_open((const uint8_t *)"", 0, w.agency[1], &w.kr, &lim, NOW,
				   &m), ENL_E_MALFORMED);
	/* Oversized before parsing: the bytes need not even be valid. */
	{
		struct enl_limits tiny = {16};
		uint8_t big[ENL_ENVELOPE_OVERHEAD_MAX + 64] = {0};
		CHECK_RC(enl_envelope_open(big, sizeof(big), w.agency[1], &w.kr, &tiny, NOW, &m),
			 ENL_E_TOO_LARGE);
	}
	/* A sender not in the directory. */
	{
		struct enl_identity *stranger = NULL;
		struct enl_payload p = {0};
		REQUIRE_OK(world_identity("XX-STRANGER", 1, &stranger));
		header_to(&h, to1, 1);
		CHECK_RC(enl_envelope_seal(stranger, &w.kr, &lim, &h, &p, NOW, &env, &len), ENL_OK);
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
			 ENL_E_UNKNOWN_SENDER);
		free(env);
		env = NULL;
		enl_identity_free(stranger);
	}
	/* Forged: someone else's key claiming to be ids[0]. */
	{
		struct enl_identity *forger = NULL;
		struct enl_key_secret ks = {.version = 1};
		struct enl_payload p = {0};
		randombytes_buf(ks.sign_seed, 32);
		randombytes_buf(ks.enc_sk, 32);
		REQUIRE_OK(enl_identity_new(ids[0], &forger));
		REQUIRE_OK(enl_identity_add(forger, &ks));
		header_to(&h, to1, 1);
		CHECK_RC(enl_envelope_seal(forger, &w.kr, &lim, &h, &p, NOW, &env, &len), ENL_OK);
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
			 ENL_E_BAD_SIGNATURE);
		CHECK_RC(enl_envelope_verify(env, len, &w.kr, &lim, NOW, &h, NULL),
			 ENL_E_BAD_SIGNATURE);
		free(env);
		env = NULL;
		enl_identity_free(forger);
	}
	/* Not a recipient. */
	REQUIRE_OK(seal_simple(ids[0], to1, 1, "x", &env, &len));
	CHECK_RC(enl_envelope_open(env, len, w.agency[2], &w.kr, &lim, NOW, &m),
		 ENL_E_NOT_RECIPIENT);
	/* Ciphertext or wrap changed and re-signed by the sender: the signature
	 * holds, so authenticated decryption is what catches it. */
	REQUIRE_OK(resign(&env, &len, w.agency[0], flip_ciphertext));
	CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
		 ENL_E_TAMPERED);
	free(env);
	REQUIRE_OK(seal_simple(ids[0], to1, 1, "x", &env, &len));
	REQUIRE_OK(resign(&env, &len, w.agency[0], flip_sealed_key));
	CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
		 ENL_E_TAMPERED);
	free(env);
	env = NULL;
	/* Expired. */
	{
		struct enl_payload p = {0};
		header_to(&h, to1, 1);
		h.expires_at = NOW + 10;
		REQUIRE_OK(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len));
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW + 9, &m), ENL_OK);
		enl_message_free(m);
		m = NULL;
		CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW + 10, &m),
			 ENL_E_EXPIRED);
		free(env);
		env = NULL;
	}
	CHECK(m == NULL);
}

static void
test_seal_refusals(void)
{
	struct enl_limits lim = enl_limits_default();
	struct enl_payload p = {0};
	struct enl_header h;
	uint8_t *env = NULL;
	size_t len = 0;
	const char *dup[] = {ids[1], ids[1]};
	const char *unknown[] = {"ZZ-NOBODY"};
	const char *bad[] = {"not an id"};

	header_to(&h, dup, 0);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	header_to(&h, dup, 2);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	header_to(&h, unknown, 1);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_UNKNOWN_RECIPIENT);
	header_to(&h, bad, 1);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	header_to(&h, dup, 1);
	h.handling.tlp = 0;
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	/* RED and AMBER+STRICT are never shared onward: FREE contradicts them */
	header_to(&h, dup, 1);
	h.handling.tlp = ENL_TLP_RED;
	h.handling.onward = ENL_ONWARD_FREE;
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	h.handling.tlp = ENL_TLP_AMBER_STRICT;
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	{
		char why[160] = "";
		CHECK(!enl_handling_consistent(&h.handling, why, sizeof(why)));
		CHECK(strstr(why, "AMBER+STRICT") != NULL);
		h.handling.onward = ENL_ONWARD_NEVER;
		CHECK(enl_handling_consistent(&h.handling, why, sizeof(why)));
		h.handling.tlp = ENL_TLP_GREEN;
		h.handling.onward = ENL_ONWARD_FREE;
		CHECK(enl_handling_consistent(&h.handling, why, sizeof(why)));
	}
	header_to(&h, dup, 1);
	h.type = ENL_MSG_FORWARD;	/* a forward must name its original */
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	CHECK(env == NULL);
}

/*
 * An envelope whose payload is `pl`, exactly, as a sender that does not
 * run enl_envelope_seal could make it: sealed with `from`'s honest
 * envelope for ids[1], its payload replaced, encrypted and signed again.
 */
int
seal_raw_payload(const char *from, Enlace__Payload *pl, uint8_t **out, size_t *out_len)
{
	const char *to[] = {ids[1]};
	Enlace__Envelope *e = NULL;
	uint8_t *env = NULL, *plain = NULL, *ct = NULL, key[32], hh[32], nonce[24], digest[32];
	uint8_t sig[64];
	size_t len = 0, plen;
	unsigned long long ctlen = 0;
	int rc;

	if ((rc = seal_simple(from, to, 1, "honest", &env, &len)) != ENL_OK)
		return rc;
	rc = enl_pb_unpack(&enlace__envelope__descriptor, env, len, len, (ProtobufCMessage **)&e);
	free(env);
	if (rc != ENL_OK)
		return rc;
	rc = identity_unseal(world_find(&w, ids[1]), e->wraps[0]->key_version,
			     e->wraps[0]->sealed_key.data, e->wraps[0]->sealed_key.len, key);
	plen = protobuf_c_message_get_packed_size(&pl->base);
	if (rc == ENL_OK && ((plain = malloc(plen + 1)) == NULL ||
			     (ct = malloc(plen + crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL))
		rc = ENL_E_NOMEM;
	ProtobufCBinaryData keep_nonce = e->nonce, keep_ct = e->ciphertext, keep_sig = e->signature;
	if (rc == ENL_OK) {
		protobuf_c_message_pack(&pl->base, plain);
		randombytes_buf(nonce, sizeof(nonce));
		enl_hash(e->header.data, e->header.len, hh);
		crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, plain, plen, hh, sizeof(hh),
							   NULL, nonce, key);
		e->nonce.data = nonce;
		e->ciphertext.data = ct;
		e->ciphertext.len = (size_t)ctlen;
		enl_envelope_digest(e, digest);
		rc = enl_identity_sign(world_find(&w, from), ENL_LABEL_ENVELOPE, digest,
				       sizeof(digest), sig);
	}
	if (rc == ENL_OK) {
		e->signature.data = sig;
		rc = enl_pb_pack(&e->base, out, out_len);
	}
	e->nonce = keep_nonce;	/* the unpacked message's own, freed with it */
	e->ciphertext = keep_ct;
	e->signature = keep_sig;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	free(plain);
	free(ct);
	sodium_memzero(key, sizeof(key));
	return rc;
}

/*
 * The envelope's ciphertext is parsed in place (enl_pb_unpack_borrowing):
 * it must accept exactly what the copying parse accepts, and give the
 * same message. Returns the common result.
 */
static int
parse_both(const uint8_t *buf, size_t len, bool *borrowed)
{
	const size_t max = (size_t)1 << 20;
	Enlace__Envelope *a = NULL, *b = NULL;
	const uint8_t *ct = NULL;
	size_t ct_len = 0;
	int ra, rb;

	ra = enl_pb_unpack(&enlace__envelope__descriptor, buf, len, max,
			   (ProtobufCMessage **)&a);
	rb = enl_pb_unpack_borrowing(&enlace__envelope__descriptor, buf, len, max, 4,
				     (ProtobufCMessage **)&b, &ct, &ct_len);
	CHECK_RC(rb, ra);
	*borrowed = ct != NULL;
	if (ra == ENL_OK && rb == ENL_OK) {
		uint8_t *again = NULL;
		size_t n = 0;
		if (ct != NULL) {	/* borrowed: the message's own field empty */
			CHECK(b->ciphertext.len == 0);
			CHECK(ct_len == a->ciphertext.len);
			CHECK(ct > buf && ct + ct_len <= buf + len &&
			      memcmp(ct, a->ciphertext.data, ct_len) == 0);
			b->ciphertext.data = (uint8_t *)ct;
			b->ciphertext.len = ct_len;
		} else {		/* copied, as enl_pb_unpack does */
			CHECK(ct_len == 0 && b->ciphertext.len == a->ciphertext.len);
		}
		CHECK_RC(enl_pb_pack(&b->base, &again, &n), ENL_OK);
		CHECK(n == len && again != NULL && memcmp(again, buf, len) == 0);
		free(again);
		if (ct != NULL) {
			b->ciphertext.data = NULL;
			b->ciphertext.len = 0;
		}
	}
	if (a != NULL)
		protobuf_c_message_free_unpacked(&a->base, NULL);
	if (b != NULL)
		protobuf_c_message_free_unpacked(&b->base, NULL);
	return ra;
}

static void
test_borrowing_parse(void)
{
	const char *const to[] = {ids[1], ids[2]};
	uint8_t *env = NULL, *x;
	size_t len = 0, start, end, ok = 0, bad = 0;
	bool borrowed;

	REQUIRE_OK(seal_simple(ids[0], to, 2, "borrowed, not copied", &env, &len));
	CHECK_RC(parse_both(env, len, &borrowed), ENL_OK);
	CHECK(borrowed);
	/* where the ciphertext record is: its key 0x22, then its length */
	{
		Enlace__Envelope *e = (Enlace__Envelope *)protobuf_c_message_unpack(
			&enlace__envelope__descriptor, NULL, len, env);
		uint8_t pre[12];
		REQUIRE(e != NULL);
		start = 0;
		for (size_t i = 0; i + 1 < len; i++)
			if (env[i] == 0x22 && i + 1 + enl_varint_put(pre, e->ciphertext.len) +
						  e->ciphertext.len < len &&
			    memcmp(env + i + 1 + enl_varint_put(pre, e->ciphertext.len),
				   e->ciphertext.data, e->ciphertext.len) == 0) {
				start = i;
				break;
			}
		end = start + 1 + enl_varint_put(pre, e->ciphertext.len) + e->ciphertext.len;
		protobuf_c_message_free_unpacked(&e->base, NULL);
		REQUIRE(start > 0 && end < len);
	}
	REQUIRE((x = malloc(2 * len)) != NULL);
	/* a second ciphertext record, after the signature */
	memcpy(x, env, len);
	memcpy(x + len, env + start, end - start);
	CHECK_RC(parse_both(x, len + (end - start), &borrowed), ENL_E_MALFORMED);
	/* the signature before the ciphertext */
	memcpy(x, env, start);
	memcpy(x + start, env + end, len - end);
	memcpy(x + start + (len - end), env + start, end - start);
	CHECK_RC(parse_both(x, len, &borrowed), ENL_E_MALFORMED);
	/* an empty ciphertext record (proto3 leaves it out) */
	memcpy(x, env, start);
	x[start] = 0x22;
	x[start + 1] = 0;
	memcpy(x + start + 2, env + end, len - end);
	CHECK_RC(parse_both(x, start + 2 + (len - end), &borrowed), ENL_E_MALFORMED);
	/* no ciphertext at all: parses; the check after refuses it */
	memcpy(x, env, start);
	memcpy(x + start, env + end, len - end);
	CHECK_RC(parse_both(x, start + (len - end), &borrowed), ENL_OK);
	CHECK(!borrowed);
	/* fields the schema does not have, at the end and within a wrap:
	 * protobuf-c keeps and re-encodes them, enl_pb_unpack refuses them */
	memcpy(x, env, len);
	x[len] = 0x32;		/* field 6, length-delimited */
	x[len + 1] = 1;
	x[len + 2] = 0;
	CHECK_RC(parse_both(x, len + 3, &borrowed), ENL_E_MALFORMED);
	{
		Enlace__Envelope *e = (Enlace__Envelope *)protobuf_c_message_unpack(
			&enlace__envelope__descriptor, NULL, len, env);
		ProtobufCMessageUnknownField u = {9, PROTOBUF_C_WIRE_TYPE_VARINT, 1,
						  (uint8_t *)"\x05"};
		uint8_t *odd = NULL;
		size_t n = 0;
		REQUIRE(e != NULL && e->n_wraps == 2);
		e->wraps[1]->base.n_unknown_fields = 1;
		e->wraps[1]->base.unknown_fields = &u;
		CHECK_RC(enl_pb_pack(&e->base, &odd, &n), ENL_OK);
		e->wraps[1]->base.n_unknown_fields = 0;
		e->wraps[1]->base.unknown_fields = NULL;
		protobuf_c_message_free_unpacked(&e->base, NULL);
		CHECK(n == len + 2);
		if (odd != NULL)
			CHECK_RC(parse_both(odd, n, &borrowed), ENL_E_MALFORMED);
		free(odd);
	}
	/* every prefix (some end between records, and parse), and random
	 * single-byte changes: parse_both compares the two parses */
	for (size_t n = 0; n < len; n++)
		(void)parse_both(env, n, &borrowed);
	for (int i = 0; i < 20000; i++) {
		memcpy(x, env, len);
		x[randombytes_uniform((uint32_t)len)] = (uint8_t)randombytes_uniform(256);
		if (parse_both(x, len, &borrowed) == ENL_OK)
			ok++;
		else
			bad++;
	}
	CHECK(ok > 0 && bad > 0);	/* both outcomes were compared */
	free(x);
	free(env);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	for (int i = 0; i < 52; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s-AG%02d", i % 2 ? "BR" : "AR", i);
		id_ptrs[i] = ids[i];
	}
	if (world_init(&w, id_ptrs, 52) != ENL_OK) {
		fprintf(stderr, "world_init failed\n");
		return 1;
	}
	RUN(test_roundtrip_1);
	RUN(test_roundtrip_2);
	RUN(test_roundtrip_50);
	RUN(test_empty_payload);
	RUN(test_limit_small);
	RUN(test_limit_default);
	RUN(test_tamper_matrix);
	RUN(test_refusals);
	RUN(test_seal_refusals);
	RUN(test_text_rules);
	RUN(test_text_escaped);
	RUN(test_rewrapped_original);
	RUN(test_revoked);
	RUN(test_rotation);
	RUN(test_forward_carries_original);
	RUN(test_borrowing_parse);
	RUN(test_large_envelope);
	world_fini(&w);
	return harness_done();
}
