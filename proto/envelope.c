/*
 * Sealing an envelope (docs/FORMATS.md, "Envelope"): the payload
 * encrypted once, its key sealed to each recipient's current key, the
 * whole signed by the sender.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "enlace/wire.h"
#include "proto_int.h"

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
