#include <string.h>

#include <sodium.h>

#include "enlace/merkle.h"
#include "enlace/session.h"
#include "enlace/wire.h"

#define FORMAT 1
#define SIGNED_MAX 4096
#define KEY_LABEL "enlace/session/v1"

struct enl_session {
	uint8_t tx[32], rx[32];
	uint64_t counter;	/* client: last sent; broker: last received */
	bool client;
	char peer[ENL_ID_MAX + 1];
	uint32_t peer_version;
};

struct enl_hello_state {
	uint8_t eph_pk[32], eph_sk[32];
	uint8_t hello_hash[32];
	uint8_t *signed_hello;	/* the Signed bytes, for the transcript */
	size_t signed_hello_len;
};

void
enl_session_free(struct enl_session *s)
{
	sodium_free(s);
}

void
enl_hello_state_free(struct enl_hello_state *st)
{
	if (st == NULL)
		return;
	free(st->signed_hello);
	sodium_free(st);
}

const char *enl_session_peer(const struct enl_session *s) { return s->peer; }
uint32_t enl_session_peer_version(const struct enl_session *s) { return s->peer_version; }

/* Packs `body` signed with `label` into *out (Signed bytes). */
static int
sign_into(const struct enl_identity *me, const char *label, const ProtobufCMessage *body,
	  uint8_t **out, size_t *out_len)
{
	Enlace__Signed sg = ENLACE__SIGNED__INIT;
	uint8_t *bytes = NULL, sig[64];
	size_t len = 0;
	int rc;

	if ((rc = enl_pb_pack(body, &bytes, &len)) != ENL_OK)
		return rc;
	rc = enl_identity_sign(me, label, bytes, len, sig);
	if (rc == ENL_OK) {
		sg.body.data = bytes;
		sg.body.len = len;
		sg.signature.data = sig;
		sg.signature.len = 64;
		rc = enl_pb_pack(&sg.base, out, out_len);
	}
	free(bytes);
	return rc;
}

/* A Frame holding one Signed, given as its bytes (and a directory, for a
 * welcome, if not NULL). */
static int
frame_with_signed(const uint8_t *sbytes, size_t slen, bool hello,
		  const struct enl_broker_directory *dir, uint8_t **out, size_t *out_len)
{
	Enlace__Frame f = ENLACE__FRAME__INIT;
	Enlace__Signed *sg = NULL;
	int rc;

	rc = enl_pb_unpack(&enlace__signed__descriptor, sbytes, slen, SIGNED_MAX,
			   (ProtobufCMessage **)&sg);
	if (rc != ENL_OK)
		return rc;
	if (hello)
		f.hello = sg;
	else
		f.welcome = sg;
	if (dir != NULL) {
		f.directory.data = (uint8_t *)dir->bytes;
		f.directory.len = dir->len;
	}
	rc = enl_pb_pack(&f.base, out, out_len);
	protobuf_c_message_free_unpacked(&sg->base, NULL);
	return rc;
}

static int
signed_bytes(const Enlace__Signed *sg, uint8_t **out, size_t *out_len)
{
	return enl_pb_pack(&sg->base, out, out_len);
}

int
enl_session_refusal(int err, const char *reason, uint8_t **frame, size_t *len)
{
	Enlace__Frame f = ENLACE__FRAME__INIT;

	f.error = err < 0 ? err : ENL_E_INVAL;
	f.reason = (char *)(reason ? reason : enl_strerror(err));
	return enl_pb_pack(&f.base, frame, len);
}

int
enl_session_hello(const struct enl_identity *me, int64_t now, uint64_t dir_serial,
		  struct enl_hello_state **state, uint8_t **frame, size_t *frame_len)
{
	Enlace__Hello h = ENLACE__HELLO__INIT;
	struct enl_hello_state *st;
	uint8_t nonce[32];
	int rc;

	if ((st = sodium_malloc(sizeof(*st))) == NULL)
		return ENL_E_NOMEM;
	memset(st, 0, sizeof(*st));
	crypto_kx_keypair(st->eph_pk, st->eph_sk);
	randombytes_buf(nonce, sizeof(nonce));
	h.format = FORMAT;
	h.agency = (char *)enl_identity_id(me);
	h.key_version = enl_identity_current(me);
	h.eph_pk.data = st->eph_pk;
	h.eph_pk.len = 32;
	h.nonce.data = nonce;
	h.nonce.len = 32;
	h.time = now;
	h.directory_serial = dir_serial;
	rc = sign_into(me, ENL_LABEL_HELLO, &h.base, &st->signed_hello, &st->signed_hello_len);
	if (rc == ENL_OK)
		rc = frame_with_signed(st->signed_hello, st->signed_hello_len, true, NULL, frame,
				       frame_len);
	if (rc != ENL_OK) {
		enl_hello_state_free(st);
		return rc;
	}
	enl_hash(st->signed_hello, st->signed_hello_len, st->hello_hash);
	*state = st;
	return ENL_OK;
}

/* Per-direction keys bound to the transcript: BLAKE2b keyed by the kx key. */
static void
bind_keys(struct enl_session *s, const uint8_t transcript[32])
{
	uint8_t in[sizeof(KEY_LABEL) + 32];

	memcpy(in, KEY_LABEL, sizeof(KEY_LABEL));
	memcpy(in + sizeof(KEY_LABEL), transcript, 32);
	crypto_generichash(s->tx, 32, in, sizeof(in), s->tx, 32);
	crypto_generichash(s->rx, 32, in, sizeof(in), s->rx, 32);
}

static void
transcript(const uint8_t *hello, size_t hlen, const uint8_t *welcome, size_t wlen,
	   uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, hello, hlen);
	crypto_generichash_update(&st, welcome, wlen);
	crypto_generichash_final(&st, out, 32);
}

static int
frame_unpack(const uint8_t *buf, size_t len, size_t max, Enlace__Frame **out)
{
	int rc = enl_pb_unpack(&enlace__frame__descriptor, buf, len, max,
			       (ProtobufCMessage **)out);

	return rc == ENL_E_TOO_LARGE ? rc : (rc != ENL_OK ? ENL_E_MALFORMED : ENL_OK);
}

bool
enl_frame_is_sealed(const uint8_t *frame, size_t len)
{
	Enlace__Frame *f = NULL;
	bool sealed;

	if (frame_unpack(frame, len, len, &f) != ENL_OK)
		return false;
	sealed = f->hello == NULL && f->sealed.len > 0;
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return sealed;
}

/* A refusal frame's code, mapped into our errors; ENL_OK if it is none. */
static int
refusal_of(const Enlace__Frame *f, char *reason, size_t cap)
{
	if (f->error == 0)
		return ENL_OK;
	if (reason != NULL && cap > 0)
		snprintf(reason, cap, "%s", f->reason);
	return f->error < 0 && f->error > -100 ? f->error : ENL_E_INVAL;
}

int
enl_session_client_finish(struct enl_hello_state *st, const uint8_t *frame, size_t len,
			  const struct enl_keyring *kr, const char *broker_id,
			  const struct enl_offered_directory *offered, struct enl_session **out,
			  char *reason, size_t reason_cap)
{
	Enlace__Frame *f = NULL;
	Enlace__Welcome *w = NULL;
	struct enl_session *s = NULL;
	struct enl_keyring ring = *kr;
	uint8_t pk[32], t[32], *wbytes = NULL;
	size_t wlen = 0, dmax = offered != NULL ? offered->max : 0;
	int rc;

	if ((rc = frame_unpack(frame, len, SIGNED_MAX + 64 + dmax + 8, &f)) != ENL_OK)
		goto out;
	if ((rc = refusal_of(f, reason, reason_cap)) != ENL_OK)
		goto out;
	rc = ENL_E_MALFORMED;
	if (f->welcome == NULL || f->welcome->signature.len != 64 || f->directory.len > dmax)
		goto out;
	if (f->directory.len > 0)
		offered->take(offered->arg, f->directory.data, f->directory.len, &ring);
	if (enl_pb_unpack(&enlace__welcome__descriptor, f->welcome->body.data,
			  f->welcome->body.len, SIGNED_MAX, (ProtobufCMessage **)&w) != ENL_OK)
		goto out;
	if (w->format != FORMAT || strcmp(w->broker, broker_id) != 0 ||
	    w->eph_pk.len != 32 || w->nonce.len != 32 || w->hello_hash.len != 32 ||
	    sodium_memcmp(w->hello_hash.data, st->hello_hash, 32) != 0)
		goto out;
	if ((rc = ring.signing_key(ring.ctx, w->broker, w->key_version, pk)) != ENL_OK)
		goto out;
	rc = enl_verify_labeled(pk, ENL_LABEL_WELCOME, f->welcome->body.data,
				f->welcome->body.len, f->welcome->signature.data);
	if (rc != ENL_OK)
		goto out;
	if ((rc = signed_bytes(f->welcome, &wbytes, &wlen)) != ENL_OK)
		goto out;
	if ((s = sodium_malloc(sizeof(*s))) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	memset(s, 0, sizeof(*s));
	if (crypto_kx_client_session_keys(s->rx, s->tx, st->eph_pk, st->eph_sk,
					  w->eph_pk.data) != 0) {
		rc = ENL_E_CRYPTO;
		goto out;
	}
	transcript(st->signed_hello, st->signed_hello_len, wbytes, wlen, t);
	bind_keys(s, t);
	s->client = true;
	snprintf(s->peer, sizeof(s->peer), "%s", w->broker);
	s->peer_version = w->key_version;
	*out = s;
	s = NULL;
	rc = ENL_OK;
out:
	enl_session_free(s);
	free(wbytes);
	if (w != NULL)
		protobuf_c_message_free_unpacked(&w->base, NULL);
	if (f != NULL)
		protobuf_c_message_free_unpacked(&f->base, NULL);
	enl_hello_state_free(st);
	return rc;
}

static int
check_hello(const Enlace__Frame *f, const struct enl_keyring *kr, int64_t now,
	    Enlace__Hello **hp)
{
	Enlace__Hello *h = NULL;
	uint8_t pk[32];
	int rc = ENL_E_MALFORMED;

	if (f->hello == NULL || f->hello->signature.len != 64)
		return rc;
	if (enl_pb_unpack(&enlace__hello__descriptor, f->hello->body.data,
			  f->hello->body.len, SIGNED_MAX, (ProtobufCMessage **)&h) != ENL_OK)
		return rc;
	if (h->format != FORMAT || !enl_id_valid(h->agency) || h->eph_pk.len != 32 ||
	    h->nonce.len != 32)
		goto out;
	if ((rc = kr->signing_key(kr->ctx, h->agency, h->key_version, pk)) != ENL_OK)
		goto out;
	rc = enl_verify_labeled(pk, ENL_LABEL_HELLO, f->hello->body.data,
				f->hello->body.len, f->hello->signature.data);
	if (rc != ENL_OK)
		goto out;
	if (h->time > now + ENL_HELLO_SKEW || h->time < now - ENL_HELLO_SKEW) {
		rc = ENL_E_EXPIRED;
		goto out;
	}
	*hp = h;
	h = NULL;
out:
	if (h != NULL)
		protobuf_c_message_free_unpacked(&h->base, NULL);
	return rc;
}

int
enl_session_accept(const struct enl_identity *broker, const struct enl_keyring *kr,
		   const uint8_t *frame, size_t len, int64_t now,
		   const struct enl_broker_directory *dir, uint8_t hello_nonce[32],
		   struct enl_session **out, uint8_t **welcome, size_t *welcome_len)
{
	Enlace__Welcome w = ENLACE__WELCOME__INIT;
	Enlace__Frame *f = NULL;
	Enlace__Hello *h = NULL;
	struct enl_session *s = NULL;
	uint8_t eph_pk[32], eph_sk[32], nonce[32], hh[32], t[32];
	uint8_t *hbytes = NULL, *wbytes = NULL;
	size_t hlen = 0, wlen = 0;
	int rc;

	crypto_kx_keypair(eph_pk, eph_sk);
	if ((rc = frame_unpack(frame, len, SIGNED_MAX + 64, &f)) != ENL_OK)
		goto out;
	if ((rc = check_hello(f, kr, now, &h)) != ENL_OK)
		goto out;
	memcpy(hello_nonce, h->nonce.data, 32);
	if ((rc = signed_bytes(f->hello, &hbytes, &hlen)) != ENL_OK)
		goto out;
	enl_hash(hbytes, hlen, hh);
	randombytes_buf(nonce, sizeof(nonce));
	w.format = FORMAT;
	w.broker = (char *)enl_identity_id(broker);
	w.key_version = enl_identity_current(broker);
	w.eph_pk.data = eph_pk;
	w.eph_pk.len = 32;
	w.nonce.data = nonce;
	w.nonce.len = 32;
	w.hello_hash.data = hh;
	w.hello_hash.len = 32;
	w.time = now;
	if ((rc = sign_into(broker, ENL_LABEL_WELCOME, &w.base, &wbytes, &wlen)) != ENL_OK)
		goto out;
	if ((s = sodium_malloc(sizeof(*s))) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	memset(s, 0, sizeof(*s));
	if (crypto_kx_server_session_keys(s->rx, s->tx, eph_pk, eph_sk, h->eph_pk.data) != 0) {
		rc = ENL_E_CRYPTO;
		goto out;
	}
	transcript(hbytes, hlen, wbytes, wlen, t);
	bind_keys(s, t);
	snprintf(s->peer, sizeof(s->peer), "%s", h->agency);
	s->peer_version = h->key_version;
	/* an agent with an older directory gets the newer one with the welcome;
	 * one that names none (0: no directory has that serial) may not know
	 * the field, and gets none */
	if (dir != NULL && (h->directory_serial == 0 || dir->serial <= h->directory_serial))
		dir = NULL;
	if ((rc = frame_with_signed(wbytes, wlen, false, dir, welcome, welcome_len)) != ENL_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	sodium_memzero(eph_sk, sizeof(eph_sk));
	enl_session_free(s);
	free(hbytes);
	free(wbytes);
	if (h != NULL)
		protobuf_c_message_free_unpacked(&h->base, NULL);
	if (f != NULL)
		protobuf_c_message_free_unpacked(&f->base, NULL);
	return rc;
}

/* ---- sealed frames ---- */

static void
nonce_of(uint64_t counter, uint8_t nonce[12])
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

/*
 * A sealed frame is the protobuf Frame with only counter (field 3) and
 * sealed (field 4) set. It is written by hand, byte for byte what
 * protobuf-c writes, so that the ciphertext goes straight into the frame;
 * and a frame in exactly that form is read without copying the
 * ciphertext out first (anything else takes protobuf-c's way). For a
 * 50 MiB envelope that is two passes over it fewer at each end.
 */
#define TAG_COUNTER 0x18	/* field 3, varint */
#define TAG_SEALED 0x22		/* field 4, length-delimited */

/* The counter and ciphertext of a frame in the hand-written form. */
static bool
frame_plain_form(const uint8_t *buf, size_t len, uint64_t *counter, const uint8_t **ct,
		 size_t *ct_len)
{
	size_t off = 0;
	uint64_t c, n;

	if (len < 4 || buf[off++] != TAG_COUNTER || !enl_varint_get(buf, len, &off, &c) || c == 0 ||
	    off >= len || buf[off++] != TAG_SEALED || !enl_varint_get(buf, len, &off, &n) ||
	    n == 0 || n != len - off)
		return false;
	*counter = c;
	*ct = buf + off;
	*ct_len = (size_t)n;
	return true;
}

/* The frame's fields before its ciphertext; their length. */
static size_t
frame_prefix(uint64_t counter, size_t len, uint8_t out[2 + 2 * 10])
{
	size_t h = 0;

	out[h++] = TAG_COUNTER;
	h += enl_varint_put(out + h, counter);
	out[h++] = TAG_SEALED;
	h += enl_varint_put(out + h, len + crypto_aead_chacha20poly1305_ietf_ABYTES);
	return h;
}

static size_t
layout(uint64_t counter, size_t len, size_t *offset)
{
	uint8_t hdr[2 + 2 * 10];

	*offset = frame_prefix(counter, len, hdr);
	return *offset + len + crypto_aead_chacha20poly1305_ietf_ABYTES;
}

/* Seals the plaintext of `len` bytes at frame + prefix where it is. */
static void
seal_at(const uint8_t key[32], uint64_t counter, uint8_t *frame, size_t len)
{
	uint8_t nonce[12], hdr[2 + 2 * 10];
	size_t h = frame_prefix(counter, len, hdr);

	memcpy(frame, hdr, h);
	nonce_of(counter, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(frame + h, frame + h + len, NULL,
							   frame + h, len, nonce, 12, NULL,
							   nonce, key);
}

static int
seal(const uint8_t key[32], uint64_t counter, const uint8_t *plain, size_t len,
     uint8_t **frame, size_t *frame_len)
{
	size_t off, n = layout(counter, len, &off);
	uint8_t *out = malloc(n);

	if (out == NULL)
		return ENL_E_NOMEM;
	memcpy(out + off, plain, len);
	seal_at(key, counter, out, len);
	*frame = out;
	*frame_len = n;
	return ENL_OK;
}

/* Opens a sealed frame where it is; *counter gets its counter. */
static int
open_frame(const uint8_t key[32], uint8_t *buf, size_t len, size_t max,
	   uint64_t *counter, const uint8_t **plain, size_t *plain_len)
{
	Enlace__Frame *f = NULL;
	const uint8_t *ct;
	uint8_t nonce[12], *pt;
	unsigned long long n = 0;
	uint64_t c = 0;
	size_t ct_len = 0;
	int rc;

	if (len > max + ENL_FRAME_OVERHEAD)
		return ENL_E_TOO_LARGE;
	if (frame_plain_form(buf, len, &c, &ct, &ct_len)) {
		pt = (uint8_t *)ct;	/* in place: within buf */
	} else {
		if ((rc = frame_unpack(buf, len, max + ENL_FRAME_OVERHEAD, &f)) != ENL_OK)
			return rc;
		if ((rc = refusal_of(f, NULL, 0)) != ENL_OK)
			goto out;
		c = f->counter;
		ct = f->sealed.data;
		ct_len = f->sealed.len;
		pt = buf;	/* the sealed bytes were within buf: they fit */
	}
	rc = ENL_E_MALFORMED;
	if (c == 0 || ct_len < crypto_aead_chacha20poly1305_ietf_ABYTES)
		goto out;
	nonce_of(c, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &n, NULL, ct, ct_len, nonce, 12, nonce,
						      key) != 0) {
		rc = ENL_E_TAMPERED;
		goto out;
	}
	*counter = c;
	*plain = pt;
	*plain_len = (size_t)n;
	rc = ENL_OK;
out:
	if (f != NULL)
		protobuf_c_message_free_unpacked(&f->base, NULL);
	return rc;
}

size_t
enl_session_request_layout(const struct enl_session *s, size_t len, size_t *offset)
{
	return layout(s->counter + 1, len, offset);
}

void
enl_session_seal_request_at(struct enl_session *s, uint8_t *frame, size_t len)
{
	if (!s->client)
		abort();
	seal_at(s->tx, ++s->counter, frame, len);
}

int
enl_session_seal_request(struct enl_session *s, const uint8_t *plain, size_t len,
			 uint8_t **frame, size_t *frame_len)
{
	if (!s->client)
		abort();
	return seal(s->tx, ++s->counter, plain, len, frame, frame_len);
}

int
enl_session_open_reply(struct enl_session *s, uint8_t *frame, size_t len, size_t max,
		       const uint8_t **plain, size_t *plain_len)
{
	uint64_t counter = 0;
	int rc = open_frame(s->rx, frame, len, max, &counter, plain, plain_len);

	if (rc == ENL_OK && counter != s->counter) {
		*plain = NULL;
		return ENL_E_INVAL;
	}
	return rc;
}

int
enl_session_open_request(struct enl_session *s, uint8_t *frame, size_t len, size_t max,
			 uint64_t *counter, const uint8_t **plain, size_t *plain_len)
{
	int rc = open_frame(s->rx, frame, len, max, counter, plain, plain_len);

	if (rc != ENL_OK)
		return rc;
	if (*counter <= s->counter) {
		*plain = NULL;
		return ENL_E_INVAL;	/* replayed or reordered */
	}
	s->counter = *counter;
	return ENL_OK;
}

size_t
enl_session_reply_layout(uint64_t counter, size_t len, size_t *offset)
{
	return layout(counter, len, offset);
}

void
enl_session_seal_reply_at(struct enl_session *s, uint64_t counter, uint8_t *frame, size_t len)
{
	if (s->client)
		abort();
	seal_at(s->tx, counter, frame, len);
}

int
enl_session_seal_reply(struct enl_session *s, uint64_t counter, const uint8_t *plain,
		       size_t len, uint8_t **frame, size_t *frame_len)
{
	if (s->client)
		abort();
	return seal(s->tx, counter, plain, len, frame, frame_len);
}

void
enl_ack_message(const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
		int64_t time, uint8_t out[ENL_ACK_MSG_LEN])
{
	memcpy(out, id, ENL_MSG_ID_LEN);
	memcpy(out + ENL_MSG_ID_LEN, hash, ENL_HASH_LEN);
	for (int i = 0; i < 8; i++)
		out[ENL_MSG_ID_LEN + ENL_HASH_LEN + i] = (uint8_t)((uint64_t)time >> (56 - 8 * i));
}

int
enl_receipt_check_signature(const Enlace__SignedReceipt *r, const uint8_t pk[static 32])
{
	struct enl_batch_proof p;

	if (r->signature.len != 64)
		return ENL_E_BAD_SIGNATURE;
	if (r->batch_size == 0)	/* signed alone, before batches */
		return r->n_batch_path == 0 && r->batch_index == 0
			       ? enl_verify_labeled(pk, ENL_LABEL_RECEIPT, r->body.data,
						    r->body.len, r->signature.data)
			       : ENL_E_BAD_SIGNATURE;
	if (r->n_batch_path > ENL_MERKLE_BATCH_DEPTH)
		return ENL_E_BAD_SIGNATURE;
	p.size = r->batch_size;
	p.index = r->batch_index;
	p.n_path = (uint8_t)r->n_batch_path;
	for (size_t i = 0; i < r->n_batch_path; i++) {
		if (r->batch_path[i].len != ENL_MERKLE_HASH_LEN)
			return ENL_E_BAD_SIGNATURE;
		memcpy(p.path[i], r->batch_path[i].data, ENL_MERKLE_HASH_LEN);
	}
	return enl_verify_batched(pk, ENL_LABEL_RECEIPT_BATCH, r->body.data, r->body.len, &p,
				  r->signature.data);
}
