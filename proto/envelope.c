#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "enlace/wire.h"
#include "proto_int.h"

#define HEADER_MAX ((size_t)16 << 10)
#define FORMAT 1
#define SEALED_KEY_LEN (crypto_box_SEALBYTES + 32)
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define ATTACH_NAME_MAX 255
#define MEDIA_TYPE_MAX 127
#define SUBJECT_MAX 1000

struct enl_limits
enl_limits_default(void)
{
	struct enl_limits lim = {.max_payload = ENL_DEFAULT_MAX_PAYLOAD};

	return lim;
}

size_t
enl_envelope_max_size(const struct enl_limits *lim)
{
	return lim->max_payload + TAG_LEN + ENL_ENVELOPE_OVERHEAD_MAX;
}

bool
enl_handling_consistent(const struct enl_handling *hd, char *why, size_t cap)
{
	if (hd->onward == ENL_ONWARD_FREE &&
	    (hd->tlp == ENL_TLP_RED || hd->tlp == ENL_TLP_AMBER_STRICT)) {
		if (why != NULL)
			snprintf(why, cap, "TLP:%s is never shared onward, so onward sharing "
				 "FREE contradicts it: use consent or never",
				 hd->tlp == ENL_TLP_RED ? "RED" : "AMBER+STRICT");
		return false;
	}
	return true;
}

/* The rules every header obeys, sealed or received. */
static int
header_check(const struct enl_header *h)
{
	if (!enl_id_valid(h->sender) || h->sender_key_version == 0)
		return ENL_E_INVAL;
	if (h->n_recipients == 0 || h->n_recipients > ENL_MAX_RECIPIENTS)
		return ENL_E_INVAL;
	for (size_t i = 0; i < h->n_recipients; i++) {
		if (!enl_id_valid(h->recipients[i]))
			return ENL_E_INVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(h->recipients[i], h->recipients[j]) == 0)
				return ENL_E_INVAL;
	}
	if (enl_msg_type_name(h->type) == NULL ||
	    enl_tlp_name(h->handling.tlp) == NULL ||
	    enl_onward_name(h->handling.onward) == NULL ||
	    enl_evidential_name(h->handling.evidential) == NULL ||
	    !enl_handling_consistent(&h->handling, NULL, 0))
		return ENL_E_INVAL;
	if ((h->reliability != 0 && enl_reliability_name(h->reliability) == NULL) ||
	    h->assessment > 4 ||
	    (h->priority != 0 && enl_priority_name(h->priority) == NULL))
		return ENL_E_INVAL;
	if (!enl_text_valid(h->case_ref, ENL_CASE_REF_MAX))
		return ENL_E_INVAL;
	if (h->created_at <= 0 || h->expires_at < 0 || h->reply_by < 0)
		return ENL_E_INVAL;
	if (h->type == ENL_MSG_FORWARD && !h->has_forward_of)
		return ENL_E_INVAL;
	return ENL_OK;
}

bool
enl_forward_to_third_parties(const struct enl_header *h, const char *forwarder,
			     const char *originator, char *why, size_t cap)
{
	for (size_t i = 0; i < h->n_recipients; i++) {
		const char *to = h->recipients[i];
		if (strcmp(to, forwarder) == 0) {
			snprintf(why, cap, "a forward goes to third parties: %s is the "
				 "forwarder itself", to);
			return false;
		}
		if (strcmp(to, originator) == 0) {
			snprintf(why, cap, "a forward goes to third parties: %s is the "
				 "originator, which has the message", to);
			return false;
		}
	}
	return true;
}

/* ---- header <-> wire ---- */

static int
header_pack(const struct enl_header *h, uint8_t **out, size_t *out_len)
{
	Enlace__Header w = ENLACE__HEADER__INIT;
	Enlace__Handling hd = ENLACE__HANDLING__INIT;
	char *rcpt[ENL_MAX_RECIPIENTS];

	for (size_t i = 0; i < h->n_recipients; i++)
		rcpt[i] = (char *)h->recipients[i];
	hd.tlp = (Enlace__Tlp)h->handling.tlp;
	hd.onward = (Enlace__Onward)h->handling.onward;
	hd.evidential = (Enlace__Evidential)h->handling.evidential;
	w.format = FORMAT;
	w.message_id.data = (uint8_t *)h->message_id;
	w.message_id.len = ENL_MSG_ID_LEN;
	w.sender = (char *)h->sender;
	w.sender_key_version = h->sender_key_version;
	w.n_recipients = h->n_recipients;
	w.recipients = rcpt;
	w.created_at = h->created_at;
	w.type = (Enlace__MessageType)h->type;
	w.handling = &hd;
	w.reliability = (Enlace__Reliability)h->reliability;
	w.assessment = h->assessment;
	w.case_ref = (char *)h->case_ref;
	if (h->has_in_reply_to) {
		w.in_reply_to.data = (uint8_t *)h->in_reply_to;
		w.in_reply_to.len = ENL_MSG_ID_LEN;
	}
	if (h->has_forward_of) {
		w.forward_of.data = (uint8_t *)h->forward_of;
		w.forward_of.len = ENL_MSG_ID_LEN;
	}
	w.expires_at = h->expires_at;
	w.priority = (Enlace__Priority)h->priority;
	w.reply_by = h->reply_by;
	if (protobuf_c_message_get_packed_size(&w.base) > HEADER_MAX)
		return ENL_E_TOO_LARGE;
	return enl_pb_pack(&w.base, out, out_len);
}

static bool
copy_id(char dst[static ENL_ID_MAX + 1], const char *src)
{
	size_t n = strlen(src);

	if (n > ENL_ID_MAX)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

static bool
copy_msg_id(uint8_t dst[ENL_MSG_ID_LEN], bool *has, ProtobufCBinaryData b)
{
	if (b.len == 0)
		return true;
	if (b.len != ENL_MSG_ID_LEN)
		return false;
	memcpy(dst, b.data, ENL_MSG_ID_LEN);
	if (has != NULL)
		*has = true;
	return true;
}

static int
header_unpack(const uint8_t *buf, size_t len, struct enl_header *h)
{
	Enlace__Header *w = NULL;
	int rc;

	rc = enl_pb_unpack(&enlace__header__descriptor, buf, len, HEADER_MAX,
			   (ProtobufCMessage **)&w);
	if (rc != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	memset(h, 0, sizeof(*h));
	rc = ENL_E_MALFORMED;
	if (w->format != FORMAT) {
		rc = w->format == 0 ? ENL_E_MALFORMED : ENL_E_UNSUPPORTED;
		goto out;
	}
	if (w->message_id.len != ENL_MSG_ID_LEN || w->handling == NULL ||
	    w->n_recipients > ENL_MAX_RECIPIENTS ||
	    strlen(w->case_ref) > ENL_CASE_REF_MAX || !copy_id(h->sender, w->sender))
		goto out;
	memcpy(h->message_id, w->message_id.data, ENL_MSG_ID_LEN);
	h->sender_key_version = w->sender_key_version;
	h->n_recipients = w->n_recipients;
	for (size_t i = 0; i < w->n_recipients; i++)
		if (!copy_id(h->recipients[i], w->recipients[i]))
			goto out;
	h->created_at = w->created_at;
	h->type = (enum enl_msg_type)w->type;
	h->handling.tlp = (enum enl_tlp)w->handling->tlp;
	h->handling.onward = (enum enl_onward)w->handling->onward;
	h->handling.evidential = (enum enl_evidential)w->handling->evidential;
	h->reliability = (enum enl_reliability)w->reliability;
	h->assessment = w->assessment;
	memcpy(h->case_ref, w->case_ref, strlen(w->case_ref) + 1);
	if (!copy_msg_id(h->in_reply_to, &h->has_in_reply_to, w->in_reply_to) ||
	    !copy_msg_id(h->forward_of, &h->has_forward_of, w->forward_of))
		goto out;
	h->expires_at = w->expires_at;
	h->priority = (enum enl_priority)w->priority;
	h->reply_by = w->reply_by;
	rc = header_check(h) == ENL_OK ? ENL_OK : ENL_E_MALFORMED;
out:
	protobuf_c_message_free_unpacked(&w->base, NULL);
	return rc;
}

/* ---- the signed digest ---- */

static void
put_len(crypto_generichash_state *st, uint64_t n)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(n >> (56 - 8 * i));
	crypto_generichash_update(st, b, 8);
}

static void
put_bytes(crypto_generichash_state *st, const uint8_t *p, size_t n)
{
	put_len(st, n);
	if (n)
		crypto_generichash_update(st, p, n);
}

/* BLAKE2b-256 over every field but the signature (docs/FORMATS.md). */
void
enl_envelope_digest(const Enlace__Envelope *e, uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	put_bytes(&st, e->header.data, e->header.len);
	put_len(&st, e->n_wraps);
	for (size_t i = 0; i < e->n_wraps; i++) {
		const Enlace__Wrap *w = e->wraps[i];
		put_bytes(&st, (const uint8_t *)w->recipient, strlen(w->recipient));
		put_len(&st, w->key_version);
		put_bytes(&st, w->sealed_key.data, w->sealed_key.len);
	}
	put_bytes(&st, e->nonce.data, e->nonce.len);
	put_bytes(&st, e->ciphertext.data, e->ciphertext.len);
	crypto_generichash_final(&st, out, 32);
}

/* ---- payload ---- */

/* A message that carries a signed original is a forward, whatever else it
 * says: only a FORWARD naming its original (forward_of) may carry one, so
 * that a re-wrapped original can never pass for a new message. */
static bool
carries_original_rightly(const struct enl_header *h, bool carries)
{
	return !carries || (h->type == ENL_MSG_FORWARD && h->has_forward_of);
}

/* Packs the payload at `before` bytes into a buffer with TAG_LEN + after
 * bytes to spare after it, or only measures it when out is NULL. */
static int
payload_pack(const struct enl_payload *p, const struct enl_limits *lim, size_t before,
	     size_t after, uint8_t **out, size_t *out_len)
{
	Enlace__Payload w = ENLACE__PAYLOAD__INIT;
	Enlace__Attachment *atts = NULL, **ptrs = NULL;
	size_t size;
	int rc = ENL_E_NOMEM;

	if (p->n_attachments > ENL_MAX_ATTACHMENTS)
		return ENL_E_TOO_LARGE;
	if (p->n_attachments) {
		atts = calloc(p->n_attachments, sizeof(*atts));
		ptrs = calloc(p->n_attachments, sizeof(*ptrs));
		if (atts == NULL || ptrs == NULL)
			goto out;
	}
	for (size_t i = 0; i < p->n_attachments; i++) {
		const struct enl_attachment *a = &p->attachments[i];
		rc = ENL_E_INVAL;
		if (a->name == NULL || !enl_text_valid(a->name, ATTACH_NAME_MAX) ||
		    a->name[0] == '\0' ||
		    (a->media_type && !enl_text_valid(a->media_type, MEDIA_TYPE_MAX)))
			goto out;
		enlace__attachment__init(&atts[i]);
		atts[i].name = (char *)a->name;
		atts[i].media_type = (char *)(a->media_type ? a->media_type : "");
		atts[i].data.data = (uint8_t *)a->data;
		atts[i].data.len = a->len;
		ptrs[i] = &atts[i];
	}
	rc = ENL_E_INVAL;
	if (!enl_text_valid(p->subject ? p->subject : "", SUBJECT_MAX) ||
	    !enl_body_valid(p->body ? p->body : "", SIZE_MAX))
		goto out;
	w.subject = (char *)(p->subject ? p->subject : "");
	w.body = (char *)(p->body ? p->body : "");
	w.n_attachments = p->n_attachments;
	w.attachments = ptrs;
	w.original.data = (uint8_t *)p->original;
	w.original.len = p->original ? p->original_len : 0;
	w.original_key.data = (uint8_t *)p->original_key;
	w.original_key.len = p->original_key ? 32 : 0;
	size = protobuf_c_message_get_packed_size(&w.base);
	if (out == NULL) {
		*out_len = size;
		rc = ENL_OK;
		goto out;
	}
	if (size > lim->max_payload) {
		rc = ENL_E_TOO_LARGE;
		goto out;
	}
	/* room for the tag after it: the payload is encrypted where it is */
	rc = ENL_E_NOMEM;
	if ((*out = malloc(before + size + TAG_LEN + after)) == NULL)
		goto out;
	rc = ENL_OK;
	if (protobuf_c_message_pack(&w.base, *out + before) != size) {
		free(*out);
		*out = NULL;
		rc = ENL_E_MALFORMED;
		goto out;
	}
	*out_len = size;
out:
	free(atts);
	free(ptrs);
	return rc;
}

size_t
enl_payload_size(const struct enl_payload *payload)
{
	struct enl_limits lim = {SIZE_MAX};
	size_t n = 0;

	return payload_pack(payload, &lim, 0, 0, NULL, &n) == ENL_OK ? n : SIZE_MAX;
}

/* ---- seal ---- */

static void
wipe_free(uint8_t *p, size_t n)
{
	if (p != NULL)
		sodium_memzero(p, n);
	free(p);
}

/*
 * The envelope is built where it ends: the payload is packed into the
 * envelope's own buffer, after the records that come before the
 * ciphertext, and encrypted there; the signature record follows. The
 * bytes are those protobuf-c packs (the records in field order), without
 * a second buffer the size of the message.
 */
int
enl_envelope_seal(const struct enl_identity *me, const struct enl_keyring *kr,
		  const struct enl_limits *lim, struct enl_header *hdr,
		  const struct enl_payload *payload, int64_t now, uint8_t **out,
		  size_t *out_len)
{
	Enlace__Envelope env = ENLACE__ENVELOPE__INIT;
	Enlace__Wrap *wraps = NULL, **wptr = NULL;
	uint8_t (*sealed)[SEALED_KEY_LEN] = NULL;
	uint8_t key[32], nonce[NONCE_LEN], digest[32], hh[32];
	uint8_t *hbuf = NULL, *buf = NULL, *ct;
	size_t hlen = 0, plen = 0, size = 0, pre = 0, at;
	unsigned long long ctlen = 0;
	int rc;

	randombytes_buf(key, sizeof(key));
	if (!copy_id(hdr->sender, enl_identity_id(me)))
		return ENL_E_INVAL;
	hdr->sender_key_version = enl_identity_current(me);
	randombytes_buf(hdr->message_id, sizeof(hdr->message_id));
	if (hdr->created_at == 0)
		hdr->created_at = now;
	if ((rc = header_check(hdr)) != ENL_OK)
		goto out;
	rc = ENL_E_INVAL;
	if (!carries_original_rightly(hdr, payload->original != NULL))
		goto out;
	if ((rc = payload_pack(payload, lim, 0, 0, NULL, &size)) != ENL_OK)
		goto out;
	if (size > lim->max_payload) {
		rc = ENL_E_TOO_LARGE;
		goto out;
	}
	rc = ENL_E_NOMEM;
	wraps = calloc(hdr->n_recipients, sizeof(*wraps));
	wptr = calloc(hdr->n_recipients, sizeof(*wptr));
	sealed = calloc(hdr->n_recipients, sizeof(*sealed));
	if (wraps == NULL || wptr == NULL || sealed == NULL)
		goto out;
	for (size_t i = 0; i < hdr->n_recipients; i++) {
		uint8_t pk[32];
		uint32_t version = 0;
		rc = kr->encryption_key(kr->ctx, hdr->recipients[i], &version, pk);
		if (rc != ENL_OK)
			goto out;
		if (crypto_box_seal(sealed[i], key, 32, pk) != 0) {
			rc = ENL_E_CRYPTO;
			goto out;
		}
		enlace__wrap__init(&wraps[i]);
		wraps[i].recipient = hdr->recipients[i];
		wraps[i].key_version = version;
		wraps[i].sealed_key.data = sealed[i];
		wraps[i].sealed_key.len = SEALED_KEY_LEN;
		wptr[i] = &wraps[i];
	}
	if ((rc = header_pack(hdr, &hbuf, &hlen)) != ENL_OK)
		goto out;
	randombytes_buf(nonce, sizeof(nonce));
	env.header.data = hbuf;
	env.header.len = hlen;
	env.n_wraps = hdr->n_recipients;
	env.wraps = wptr;
	env.nonce.data = nonce;
	env.nonce.len = sizeof(nonce);
	/* fields 1 to 3, then the ciphertext's key and length */
	{
		uint8_t tmp[10];
		pre = protobuf_c_message_get_packed_size(&env.base) + 1 +
		      enl_varint_put(tmp, size + TAG_LEN);
	}
	if ((rc = payload_pack(payload, lim, pre, 2 + 64, &buf, &plen)) != ENL_OK)
		goto out;
	ct = buf + pre;
	enl_hash(hbuf, hlen, hh);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, ct, plen, hh, sizeof(hh), NULL,
						   nonce, key);
	at = protobuf_c_message_pack(&env.base, buf);
	buf[at++] = 0x22;	/* field 4, length-delimited */
	at += enl_varint_put(buf + at, ctlen);
	if (at != pre) {	/* cannot happen: measured above */
		rc = ENL_E_MALFORMED;
		goto out;
	}
	env.ciphertext.data = ct;
	env.ciphertext.len = (size_t)ctlen;
	enl_envelope_digest(&env, digest);
	at += (size_t)ctlen;
	buf[at++] = 0x2a;	/* field 5, length-delimited */
	buf[at++] = 64;
	rc = enl_identity_sign(me, ENL_LABEL_ENVELOPE, digest, sizeof(digest), buf + at);
	if (rc != ENL_OK)
		goto out;
	*out = buf;
	*out_len = at + 64;
	buf = NULL;
out:
	sodium_memzero(key, sizeof(key));
	if (buf != NULL)	/* encrypted, but wiped all the same */
		wipe_free(buf, pre + plen);
	free(hbuf);
	free(wraps);
	free(wptr);
	free(sealed);
	return rc;
}

/* ---- verify and open ---- */

/*
 * The envelope hash is a second pass over every byte, beside the
 * signature's digest. For a large envelope it runs on a thread of its own
 * while the caller checks, decrypts and decodes: on two cores a 50 MiB
 * envelope is ready in about two thirds of the time. The bytes must stay
 * as they are until hash_finish.
 */
#define HASH_THREAD_MIN ((size_t)1 << 20)

struct bg_hash {
	const uint8_t *buf;
	size_t len;
	uint8_t out[ENL_HASH_LEN];
	pthread_t thread;
	bool threaded;
};

static void *
hash_main(void *arg)
{
	struct bg_hash *b = arg;

	enl_hash(b->buf, b->len, b->out);
	return NULL;
}

static void
hash_start(struct bg_hash *b, const uint8_t *buf, size_t len)
{
	b->buf = buf;
	b->len = len;
	/* without a thread, hash_finish hashes in line */
	b->threaded = len >= HASH_THREAD_MIN && pthread_create(&b->thread, NULL, hash_main, b) == 0;
}

/* Waits for the hash; `out` NULL when it is not wanted after all. */
static void
hash_finish(struct bg_hash *b, uint8_t out[ENL_HASH_LEN])
{
	if (b->threaded)
		pthread_join(b->thread, NULL);
	else if (out != NULL)
		enl_hash(b->buf, b->len, b->out);
	if (out != NULL)
		memcpy(out, b->out, ENL_HASH_LEN);
}


/*
 * The ciphertext, field 4 of Envelope, is most of a large envelope: it is
 * borrowed from the caller's bytes, not copied (50 MiB less to allocate,
 * copy and compare at each end), unless the bytes are out of the ordinary
 * (see enl_pb_unpack_borrowing). An envelope so parsed lives no longer
 * than those bytes, and is freed with envelope_free and the same bytes.
 */
#define FIELD_CIPHERTEXT 4

static int
envelope_parse(const uint8_t *buf, size_t len, const struct enl_limits *lim,
	       Enlace__Envelope **out)
{
	const uint8_t *ct = NULL;
	size_t ct_len = 0;
	int rc;

	rc = enl_pb_unpack_borrowing(&enlace__envelope__descriptor, buf, len,
				     enl_envelope_max_size(lim), FIELD_CIPHERTEXT,
				     (ProtobufCMessage **)out, &ct, &ct_len);
	if (rc == ENL_OK && ct != NULL) {
		(*out)->ciphertext.data = (uint8_t *)ct;
		(*out)->ciphertext.len = ct_len;
	}
	return rc;
}

static void
envelope_free(Enlace__Envelope *e, const uint8_t *buf, size_t len)
{
	uintptr_t ct, b = (uintptr_t)buf;

	if (e == NULL)
		return;
	ct = (uintptr_t)e->ciphertext.data;
	if (ct >= b && ct < b + len) {	/* borrowed, not the message's own */
		e->ciphertext.data = NULL;
		e->ciphertext.len = 0;
	}
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

/* Parses, checks the structure and the signature. *envp on success. */
static int
envelope_check(const uint8_t *buf, size_t len, const struct enl_keyring *kr,
	       const struct enl_limits *lim, int64_t now,
	       struct enl_header *hdr, Enlace__Envelope **envp)
{
	Enlace__Envelope *e = NULL;
	uint8_t pk[32], digest[32];
	int rc;

	rc = envelope_parse(buf, len, lim, &e);
	if (rc != ENL_OK)
		return rc;
	if ((rc = header_unpack(e->header.data, e->header.len, hdr)) != ENL_OK)
		goto out;
	rc = ENL_E_MALFORMED;
	if (e->n_wraps != hdr->n_recipients || e->nonce.len != NONCE_LEN ||
	    e->ciphertext.len < TAG_LEN || e->signature.len != 64)
		goto out;
	for (size_t i = 0; i < e->n_wraps; i++)
		if (strcmp(e->wraps[i]->recipient, hdr->recipients[i]) != 0 ||
		    e->wraps[i]->key_version == 0 ||
		    e->wraps[i]->sealed_key.len != SEALED_KEY_LEN)
			goto out;
	if (e->ciphertext.len - TAG_LEN > lim->max_payload) {
		rc = ENL_E_TOO_LARGE;
		goto out;
	}
	rc = kr->signing_key(kr->ctx, hdr->sender, hdr->sender_key_version, pk);
	if (rc != ENL_OK)
		goto out;
	enl_envelope_digest(e, digest);
	rc = enl_verify_labeled(pk, ENL_LABEL_ENVELOPE, digest, sizeof(digest),
				e->signature.data);
	if (rc != ENL_OK)
		goto out;
	if (hdr->expires_at != 0 && now >= hdr->expires_at) {
		rc = ENL_E_EXPIRED;
		goto out;
	}
	*envp = e;
	e = NULL;
out:
	envelope_free(e, buf, len);
	return rc;
}

int
enl_envelope_verify(const uint8_t *buf, size_t len, const struct enl_keyring *kr,
		    const struct enl_limits *lim, int64_t now,
		    struct enl_header *hdr, uint8_t hash[ENL_HASH_LEN])
{
	Enlace__Envelope *e = NULL;
	struct bg_hash bh;
	int rc;

	if (hash != NULL)
		hash_start(&bh, buf, len);
	rc = envelope_check(buf, len, kr, lim, now, hdr, &e);
	if (hash != NULL)
		hash_finish(&bh, rc == ENL_OK ? hash : NULL);
	if (rc != ENL_OK)
		return rc;
	envelope_free(e, buf, len);
	return ENL_OK;
}

int
enl_envelope_peek(const uint8_t *buf, size_t len, const struct enl_limits *lim,
		  struct enl_header *hdr)
{
	Enlace__Envelope *e = NULL;
	uint64_t n = 0;
	size_t off = 1;
	int rc;

	if (len > enl_envelope_max_size(lim))
		return ENL_E_TOO_LARGE;
	/* An envelope in its canonical encoding (the only one enl_pb_unpack
	 * accepts, so every one stored or sent) begins with its header,
	 * field 1: read in place, rather than copying a ciphertext of up to
	 * the payload limit to get at it. */
	for (unsigned shift = 0; len > 1 && buf[0] == 0x0a && off < len && off <= 10; shift += 7) {
		n |= (uint64_t)(buf[off] & 0x7f) << shift;
		if ((buf[off++] & 0x80) == 0) {
			if (n <= len - off)
				return header_unpack(buf + off, (size_t)n, hdr);
			break;
		}
	}
	if ((rc = envelope_parse(buf, len, lim, &e)) != ENL_OK)
		return rc;
	rc = header_unpack(e->header.data, e->header.len, hdr);
	envelope_free(e, buf, len);
	return rc;
}

int
enl_envelope_peek_file(int fd, size_t size, const struct enl_limits *lim,
		       struct enl_header *hdr)
{
	size_t n = size < ((size_t)64 << 10) ? size : (size_t)64 << 10;
	uint8_t *head = malloc(n ? n : 1);
	int rc;

	if (head == NULL)
		return ENL_E_NOMEM;
	rc = pread(fd, head, n, 0) == (ssize_t)n ? enl_envelope_peek(head, n, lim, hdr) : ENL_E_IO;
	free(head);
	return rc;
}

struct opened {
	Enlace__Payload *pl;
	struct enl_attachment *atts;
	uint8_t *plain;		/* the decrypted payload: large attachments are lent */
	size_t plain_len;	/* from it (ENL_LEND_MIN), so it lives as long as m */
};

static int
payload_unpack(struct enl_message *m, struct opened *o, const struct enl_limits *lim)
{
	int rc;

	rc = enl_pb_unpack_lending(&enlace__payload__descriptor, o->plain, o->plain_len,
				   lim->max_payload, ENL_LEND_MIN, (ProtobufCMessage **)&o->pl);
	if (rc != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	if (o->pl->n_attachments > ENL_MAX_ATTACHMENTS ||
	    !enl_text_valid(o->pl->subject, SUBJECT_MAX) || !enl_body_valid(o->pl->body, SIZE_MAX))
		return ENL_E_MALFORMED;
	if (o->pl->n_attachments &&
	    (o->atts = calloc(o->pl->n_attachments, sizeof(*o->atts))) == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < o->pl->n_attachments; i++) {
		const Enlace__Attachment *a = o->pl->attachments[i];
		if (!enl_text_valid(a->name, ATTACH_NAME_MAX) || a->name[0] == '\0' ||
		    !enl_text_valid(a->media_type, MEDIA_TYPE_MAX))
			return ENL_E_MALFORMED;
		o->atts[i].name = a->name;
		o->atts[i].media_type = a->media_type;
		o->atts[i].data = a->data.data;
		o->atts[i].len = a->data.len;
	}
	m->payload.subject = o->pl->subject;
	m->payload.body = o->pl->body;
	m->payload.n_attachments = o->pl->n_attachments;
	m->payload.attachments = o->atts;
	if (o->pl->original_key.len != 0 &&
	    (o->pl->original_key.len != 32 || o->pl->original.len == 0))
		return ENL_E_MALFORMED;
	if (!carries_original_rightly(&m->header, o->pl->original.len != 0))
		return ENL_E_MALFORMED;
	if (o->pl->original.len) {
		m->payload.original = o->pl->original.data;
		m->payload.original_len = o->pl->original.len;
		m->payload.original_key = o->pl->original_key.len ? o->pl->original_key.data : NULL;
	}
	return ENL_OK;
}

/* Decrypts the payload with its content key (the ciphertext is the
 * caller's: the plaintext gets memory of its own). */
static int
decrypt_with(const Enlace__Envelope *e, const uint8_t key[32], struct opened *o)
{
	uint8_t hh[32], *pt;
	unsigned long long n = 0;

	if ((pt = malloc(e->ciphertext.len)) == NULL)
		return ENL_E_NOMEM;
	enl_hash(e->header.data, e->header.len, hh);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    pt, &n, NULL, e->ciphertext.data, e->ciphertext.len,
		    hh, sizeof(hh), e->nonce.data, key) != 0) {
		free(pt);	/* libsodium leaves nothing in it */
		return ENL_E_TAMPERED;
	}
	o->plain = pt;
	o->plain_len = (size_t)n;
	return ENL_OK;
}

/* Unwraps the content key for `me` into key_out, then decrypts. */
static int
decrypt(const Enlace__Envelope *e, const struct enl_identity *me,
	struct opened *o, uint8_t key_out[32])
{
	const Enlace__Wrap *w = NULL;
	uint8_t key[32];
	int rc;

	for (size_t i = 0; i < e->n_wraps && w == NULL; i++)
		if (strcmp(e->wraps[i]->recipient, enl_identity_id(me)) == 0)
			w = e->wraps[i];
	if (w == NULL)
		return ENL_E_NOT_RECIPIENT;
	rc = identity_unseal(me, w->key_version, w->sealed_key.data,
			     w->sealed_key.len, key);
	if (rc != ENL_OK)
		return rc;
	rc = decrypt_with(e, key, o);
	if (rc == ENL_OK)
		memcpy(key_out, key, 32);
	sodium_memzero(key, sizeof(key));
	return rc;
}

void
enl_message_free(struct enl_message *m)
{
	struct opened *o;

	if (m == NULL)
		return;
	o = m->priv;
	if (o != NULL) {
		if (o->pl != NULL) {
			for (size_t i = 0; i < o->pl->n_attachments; i++) {
				ProtobufCBinaryData *d = &o->pl->attachments[i]->data;
				uintptr_t at = (uintptr_t)d->data, pt = (uintptr_t)o->plain;
				bool lent = at >= pt && at < pt + o->plain_len;
				if (d->len && !lent)	/* a lent one goes with the plaintext */
					sodium_memzero(d->data, d->len);
			}
			if (o->pl->body[0] != '\0')
				sodium_memzero(o->pl->body, strlen(o->pl->body));
			enl_pb_free_lent(&o->pl->base, o->plain, o->plain_len);
		}
		if (o->plain != NULL)
			sodium_memzero(o->plain, o->plain_len);
		free(o->plain);
		free(o->atts);
		free(o);
	}
	sodium_memzero(m->content_key, sizeof(m->content_key));
	free(m);
}

/* Verifies, then decrypts with the key unwrapped for `me`, or with `key`. */
static int
envelope_open_any(const uint8_t *buf, size_t len, const struct enl_identity *me,
		  const uint8_t *key, const struct enl_keyring *kr,
		  const struct enl_limits *lim, int64_t now, struct enl_message **out)
{
	Enlace__Envelope *e = NULL;
	struct enl_message *m;
	struct bg_hash bh;
	int rc;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return ENL_E_NOMEM;
	hash_start(&bh, buf, len);
	if ((m->priv = calloc(1, sizeof(struct opened))) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	rc = envelope_check(buf, len, kr, lim, now, &m->header, &e);
	if (rc != ENL_OK)
		goto out;
	if (key != NULL) {
		if ((rc = decrypt_with(e, key, m->priv)) != ENL_OK)
			goto out;
		memcpy(m->content_key, key, 32);
	} else if ((rc = decrypt(e, me, m->priv, m->content_key)) != ENL_OK) {
		goto out;
	}
	rc = payload_unpack(m, m->priv, lim);
out:
	hash_finish(&bh, rc == ENL_OK ? m->hash : NULL);
	if (rc == ENL_OK) {
		*out = m;
		m = NULL;
	}
	envelope_free(e, buf, len);
	enl_message_free(m);
	return rc;
}

int
enl_envelope_open(const uint8_t *buf, size_t len, const struct enl_identity *me,
		  const struct enl_keyring *kr, const struct enl_limits *lim,
		  int64_t now, struct enl_message **out)
{
	return envelope_open_any(buf, len, me, NULL, kr, lim, now, out);
}

int
enl_envelope_open_with_key(const uint8_t *buf, size_t len, const uint8_t key[32],
			   const struct enl_keyring *kr, const struct enl_limits *lim,
			   int64_t now, struct enl_message **out)
{
	return envelope_open_any(buf, len, NULL, key, kr, lim, now, out);
}
