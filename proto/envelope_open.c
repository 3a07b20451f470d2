/*
 * Verifying and opening an envelope: the signature checked before
 * anything is decrypted; a large ciphertext hashed on a second thread
 * while the rest is checked.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "enlace/wire.h"
#include "proto_int.h"

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
