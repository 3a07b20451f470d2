#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "enlace/wire.h"
#include "keys_int.h"

#define FORMAT 1

struct enl_directory {
	uint64_t serial;
	int64_t issued_at, expires_at;
	uint8_t authority_pk[32];
	size_t n_cards;
	struct enl_card *cards;
	size_t n_revs;
	struct enl_revocation *revs;
	Enlace__SignedDirectory *wire;	/* kept whole, to re-sign on revoke */
	Enlace__Directory *body;
};

void
enl_directory_free(struct enl_directory *d)
{
	if (d == NULL)
		return;
	free(d->cards);
	free(d->revs);
	if (d->body != NULL)
		protobuf_c_message_free_unpacked(&d->body->base, NULL);
	if (d->wire != NULL)
		protobuf_c_message_free_unpacked(&d->wire->base, NULL);
	free(d);
}

uint64_t enl_directory_serial(const struct enl_directory *d) { return d->serial; }
int64_t enl_directory_issued_at(const struct enl_directory *d) { return d->issued_at; }
int64_t enl_directory_expires_at(const struct enl_directory *d) { return d->expires_at; }

bool
enl_directory_expiry_say(const struct enl_directory *d, int64_t now, char *out, size_t cap)
{
	char when[32];

	if (d->expires_at - now > 7 * 86400)
		return false;
	enl_time_format(d->expires_at, when);
	if (d->expires_at <= now)
		snprintf(out, cap, "serial %" PRIu64 " EXPIRED at %s", d->serial, when);
	else
		snprintf(out, cap, "serial %" PRIu64 " expires at %s, in %" PRId64 " h", d->serial,
			 when, (d->expires_at - now) / 3600);
	return true;
}
const uint8_t *enl_directory_authority_pk(const struct enl_directory *d) { return d->authority_pk; }
size_t enl_directory_card_count(const struct enl_directory *d) { return d->n_cards; }
size_t enl_directory_revocation_count(const struct enl_directory *d) { return d->n_revs; }

const struct enl_card *
enl_directory_card_at(const struct enl_directory *d, size_t i)
{
	return i < d->n_cards ? &d->cards[i] : NULL;
}

const struct enl_revocation *
enl_directory_revocation_at(const struct enl_directory *d, size_t i)
{
	return i < d->n_revs ? &d->revs[i] : NULL;
}

const struct enl_card *
enl_directory_find(const struct enl_directory *d, const char *id)
{
	for (size_t i = 0; i < d->n_cards; i++)
		if (strcmp(d->cards[i].id, id) == 0)
			return &d->cards[i];
	return NULL;
}

const struct enl_revocation *
enl_directory_revoked(const struct enl_directory *d, const char *id, uint32_t version)
{
	for (size_t i = 0; i < d->n_revs; i++)
		if (strcmp(d->revs[i].id, id) == 0 &&
		    (d->revs[i].version == 0 || d->revs[i].version == version))
			return &d->revs[i];
	return NULL;
}

void
enl_card_note_keys(const struct enl_directory *d, const struct enl_card *c, const char *name,
		   bool cosigner, struct enl_note_keys *out)
{
	out->n = 0;
	for (size_t i = 0; i < c->n_keys && i < ENL_MAX_KEY_VERSIONS; i++) {
		struct enl_note_verifier *v = &out->v[out->n];
		if (d != NULL && enl_directory_revoked(d, c->id, c->keys[i].version) != NULL)
			continue;
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", name);
		memcpy(v->pk, c->keys[i].sign_pk, 32);
		v->cosigner = cosigner;
		out->n++;
	}
}

static bool
reason_valid(const char *s)
{
	return enl_text_valid(s, sizeof(((struct enl_revocation *)0)->reason) - 1);
}

static int
fill_revocations(struct enl_directory *d)
{
	const Enlace__Directory *b = d->body;

	if (b->n_revocations > ENL_DIRECTORY_MAX_REVOCATIONS)
		return ENL_E_MALFORMED;
	if (b->n_revocations &&
	    (d->revs = calloc(b->n_revocations, sizeof(*d->revs))) == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < b->n_revocations; i++) {
		const Enlace__Revocation *r = b->revocations[i];
		if (!enl_id_valid(r->id) || !reason_valid(r->reason))
			return ENL_E_MALFORMED;
		memcpy(d->revs[i].id, r->id, strlen(r->id) + 1);
		d->revs[i].version = r->version;
		memcpy(d->revs[i].reason, r->reason, strlen(r->reason) + 1);
		d->revs[i].revoked_at = r->revoked_at;
	}
	d->n_revs = b->n_revocations;
	return ENL_OK;
}

static int
fill_cards(struct enl_directory *d)
{
	const Enlace__Directory *b = d->body;
	int rc;

	if (b->n_cards > ENL_DIRECTORY_MAX_CARDS)
		return ENL_E_MALFORMED;
	if (b->n_cards && (d->cards = calloc(b->n_cards, sizeof(*d->cards))) == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < b->n_cards; i++) {
		if ((rc = card_from_wire(b->cards[i], &d->cards[i])) != ENL_OK)
			return rc == ENL_E_NOMEM ? rc : ENL_E_BAD_CARD;
		if (enl_directory_find(d, d->cards[i].id) != NULL)
			return ENL_E_MALFORMED;	/* duplicate id */
		d->n_cards = i + 1;	/* find() searches the first n_cards */
	}
	d->n_cards = b->n_cards;
	return ENL_OK;
}

int
enl_directory_parse(const uint8_t *buf, size_t len, const struct enl_dir_check *chk,
		    struct enl_directory **out)
{
	struct enl_directory *d;
	const Enlace__Directory *b;
	int rc;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ENL_E_NOMEM;
	rc = enl_pb_unpack(&enlace__signed_directory__descriptor, buf, len,
			   ENL_DIRECTORY_MAX, (ProtobufCMessage **)&d->wire);
	if (rc != ENL_OK)
		goto out;
	rc = enl_pb_unpack(&enlace__directory__descriptor, d->wire->directory.data,
			   d->wire->directory.len, ENL_DIRECTORY_MAX,
			   (ProtobufCMessage **)&d->body);
	if (rc != ENL_OK)
		goto out;
	b = d->body;
	rc = ENL_E_MALFORMED;
	if (b->format != FORMAT) {
		rc = b->format == 0 ? ENL_E_MALFORMED : ENL_E_UNSUPPORTED;
		goto out;
	}
	if (b->authority_pk.len != 32 || d->wire->signature.len != 64)
		goto out;
	memcpy(d->authority_pk, b->authority_pk.data, 32);
	if (chk->authority_pk != NULL &&
	    sodium_memcmp(chk->authority_pk, d->authority_pk, 32) != 0) {
		rc = ENL_E_DIR_AUTHORITY;
		goto out;
	}
	rc = enl_verify_labeled(d->authority_pk, ENL_LABEL_DIRECTORY,
				d->wire->directory.data, d->wire->directory.len,
				d->wire->signature.data);
	if (rc != ENL_OK)
		goto out;
	d->serial = b->serial;
	d->issued_at = b->issued_at;
	d->expires_at = b->expires_at;
	if (d->serial <= chk->held_serial) {
		rc = ENL_E_DIR_OLD_SERIAL;
		goto out;
	}
	if (chk->now != 0 && chk->now >= d->expires_at) {
		rc = ENL_E_DIR_EXPIRED;
		goto out;
	}
	if ((rc = fill_cards(d)) != ENL_OK || (rc = fill_revocations(d)) != ENL_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	enl_directory_free(d);
	return rc;
}

int
enl_directory_load(const char *path, const struct enl_dir_check *chk,
		   struct enl_directory **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, ENL_DIRECTORY_MAX, &buf, &len);

	if (rc != ENL_OK)
		return rc;
	rc = enl_directory_parse(buf, len, chk, out);
	free(buf);
	return rc;
}

/* ---- keyring ---- */

/* The signing key of (id, version); a revoked one too with `ever`. */
static int
signing_key(const struct enl_directory *d, const char *id, uint32_t version, bool ever,
	    uint8_t pk[static 32])
{
	const struct enl_card *c = enl_directory_find(d, id);
	const struct enl_card_key *k;

	if (c == NULL)
		return ENL_E_UNKNOWN_SENDER;
	if ((k = enl_card_key(c, version)) == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	if (!ever && enl_directory_revoked(d, id, version) != NULL)
		return ENL_E_REVOKED_KEY;
	memcpy(pk, k->sign_pk, 32);
	return ENL_OK;
}

static int
kr_signing_key(void *ctx, const char *id, uint32_t version, uint8_t pk[static 32])
{
	return signing_key(ctx, id, version, false, pk);
}

static int
kr_encryption_key(void *ctx, const char *id, uint32_t *version, uint8_t pk[static 32])
{
	const struct enl_directory *d = ctx;
	const struct enl_card *c = enl_directory_find(d, id);

	if (c == NULL)
		return ENL_E_UNKNOWN_RECIPIENT;
	if (enl_directory_revoked(d, id, c->current_version) != NULL)
		return ENL_E_REVOKED_KEY;
	memcpy(pk, enl_card_key(c, c->current_version)->enc_pk, 32);
	*version = c->current_version;
	return ENL_OK;
}

struct enl_keyring
enl_directory_keyring(const struct enl_directory *d)
{
	struct enl_keyring kr = {(void *)d, kr_signing_key, kr_encryption_key};

	return kr;
}

static int
kr_signing_key_ever(void *ctx, const char *id, uint32_t version, uint8_t pk[static 32])
{
	return signing_key(ctx, id, version, true, pk);
}

struct enl_keyring
enl_directory_keyring_ever(const struct enl_directory *d)
{
	struct enl_keyring kr = {(void *)d, kr_signing_key_ever, kr_encryption_key};

	return kr;
}

int
enl_directory_ack_check(const struct enl_directory *d, const char *recipient,
			const uint8_t id[static ENL_MSG_ID_LEN],
			const uint8_t hash[static ENL_HASH_LEN], int64_t ack_time,
			const uint8_t sig[static 64], int64_t logged_at, int64_t *revoked_at)
{
	const struct enl_card *c = enl_directory_find(d, recipient);
	uint8_t msg[ENL_ACK_MSG_LEN];

	if (c == NULL)
		return ENL_E_UNKNOWN_SENDER;
	enl_ack_message(id, hash, ack_time, msg);
	for (size_t k = 0; k < c->n_keys; k++) {
		const struct enl_revocation *rv;
		if (enl_verify_labeled(c->keys[k].sign_pk, ENL_LABEL_ACK, msg, sizeof(msg), sig) !=
		    ENL_OK)
			continue;
		rv = enl_directory_revoked(d, recipient, c->keys[k].version);
		if (rv != NULL && rv->revoked_at <= logged_at) {
			*revoked_at = rv->revoked_at;
			return ENL_E_REVOKED_KEY;
		}
		return ENL_OK;
	}
	return ENL_E_BAD_SIGNATURE;
}

/* ---- building ---- */

static int
sign_body(const struct enl_identity *authority, Enlace__Directory *body,
	  uint8_t **out, size_t *out_len)
{
	Enlace__SignedDirectory sd = ENLACE__SIGNED_DIRECTORY__INIT;
	uint8_t *bytes = NULL, sig[64];
	size_t len = 0;
	int rc;

	if ((rc = enl_pb_pack(&body->base, &bytes, &len)) != ENL_OK)
		return rc;
	if (len > ENL_DIRECTORY_MAX - 1024) {
		rc = ENL_E_TOO_LARGE;
		goto out;
	}
	rc = enl_identity_sign(authority, ENL_LABEL_DIRECTORY, bytes, len, sig);
	if (rc != ENL_OK)
		goto out;
	sd.directory.data = bytes;
	sd.directory.len = len;
	sd.signature.data = sig;
	sd.signature.len = sizeof(sig);
	rc = enl_pb_pack(&sd.base, out, out_len);
out:
	free(bytes);
	return rc;
}

struct dir_parts {
	Enlace__SignedCard **cards;
	Enlace__Revocation *revs;
	Enlace__Revocation **revp;
};

static void
dir_parts_free(struct dir_parts *p, size_t n_cards)
{
	for (size_t i = 0; p->cards != NULL && i < n_cards; i++)
		if (p->cards[i] != NULL)
			protobuf_c_message_free_unpacked(&p->cards[i]->base, NULL);
	free(p->cards);
	free(p->revs);
	free(p->revp);
}

static int
revocations_to_wire(const struct enl_revocation *revs, size_t n, struct dir_parts *p)
{
	if (n > ENL_DIRECTORY_MAX_REVOCATIONS)
		return ENL_E_TOO_LARGE;
	if (n == 0)
		return ENL_OK;
	p->revs = calloc(n, sizeof(*p->revs));
	p->revp = calloc(n, sizeof(*p->revp));
	if (p->revs == NULL || p->revp == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!enl_id_valid(revs[i].id) || !reason_valid(revs[i].reason))
			return ENL_E_INVAL;
		enlace__revocation__init(&p->revs[i]);
		p->revs[i].id = (char *)revs[i].id;
		p->revs[i].version = revs[i].version;
		p->revs[i].reason = (char *)revs[i].reason;
		p->revs[i].revoked_at = revs[i].revoked_at;
		p->revp[i] = &p->revs[i];
	}
	return ENL_OK;
}

int
enl_directory_build(const struct enl_identity *authority, uint64_t serial,
		    int64_t now, int64_t expires_at, const uint8_t *const *cards,
		    const size_t *card_lens, size_t n_cards,
		    const struct enl_revocation *revs, size_t n_revs, uint8_t **out,
		    size_t *out_len)
{
	Enlace__Directory body = ENLACE__DIRECTORY__INIT;
	struct dir_parts p = {0};
	struct enl_card *seen = NULL;
	uint8_t apk[32], aenc[32];
	int rc;

	if (expires_at <= now || serial == 0 || n_cards > ENL_DIRECTORY_MAX_CARDS)
		return ENL_E_INVAL;
	rc = enl_identity_public(authority, enl_identity_current(authority), apk, aenc);
	if (rc != ENL_OK)
		return rc;
	rc = ENL_E_NOMEM;
	if (n_cards && ((p.cards = calloc(n_cards, sizeof(*p.cards))) == NULL ||
			(seen = calloc(n_cards, sizeof(*seen))) == NULL))
		goto out;
	for (size_t i = 0; i < n_cards; i++) {
		rc = enl_pb_unpack(&enlace__signed_card__descriptor, cards[i],
				   card_lens[i], ENL_CARD_MAX,
				   (ProtobufCMessage **)&p.cards[i]);
		if (rc != ENL_OK)
			goto out;
		if ((rc = card_from_wire(p.cards[i], &seen[i])) != ENL_OK)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(seen[j].id, seen[i].id) == 0) {
				rc = ENL_E_EXISTS;
				goto out;
			}
	}
	if ((rc = revocations_to_wire(revs, n_revs, &p)) != ENL_OK)
		goto out;
	body.format = FORMAT;
	body.serial = serial;
	body.issued_at = now;
	body.expires_at = expires_at;
	body.authority_pk.data = apk;
	body.authority_pk.len = 32;
	body.n_cards = n_cards;
	body.cards = p.cards;
	body.n_revocations = n_revs;
	body.revocations = p.revp;
	rc = sign_body(authority, &body, out, out_len);
out:
	dir_parts_free(&p, n_cards);
	free(seen);
	return rc;
}

int
enl_directory_revoke(const struct enl_identity *authority,
		     const struct enl_directory *d, const struct enl_revocation *rev,
		     int64_t now, uint8_t **out, size_t *out_len)
{
	Enlace__Directory body = *d->body;
	struct dir_parts p = {0};
	struct enl_revocation *all;
	const struct enl_card *c = enl_directory_find(d, rev->id);
	uint8_t apk[32], aenc[32];
	int rc;

	if (c == NULL)
		return ENL_E_UNKNOWN_SENDER;
	if (rev->version != 0 && enl_card_key(c, rev->version) == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	for (size_t i = 0; i < d->n_revs; i++)
		if (strcmp(d->revs[i].id, rev->id) == 0 &&
		    (d->revs[i].version == 0 || d->revs[i].version == rev->version))
			return ENL_E_EXISTS;
	rc = enl_identity_public(authority, enl_identity_current(authority), apk, aenc);
	if (rc != ENL_OK)
		return rc;
	if ((all = calloc(d->n_revs + 1, sizeof(*all))) == NULL)
		return ENL_E_NOMEM;
	if (d->n_revs)
		memcpy(all, d->revs, d->n_revs * sizeof(*all));
	all[d->n_revs] = *rev;
	all[d->n_revs].revoked_at = now;
	if ((rc = revocations_to_wire(all, d->n_revs + 1, &p)) != ENL_OK)
		goto out;
	body.serial = d->serial + 1;
	body.issued_at = now;
	body.authority_pk.data = apk;
	body.authority_pk.len = 32;
	body.n_revocations = d->n_revs + 1;
	body.revocations = p.revp;
	rc = sign_body(authority, &body, out, out_len);
out:
	dir_parts_free(&p, 0);
	free(all);
	return rc;
}

int
enl_authority_pub_read(const char *path, uint8_t pk[static 32])
{
	char name[ENL_VKEY_NAME_MAX + 1];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, 4096, &buf, &len);

	if (rc == ENL_OK)
		rc = memchr(buf, '\0', len) ? ENL_E_MALFORMED
					    : enl_vkey_parse((const char *)buf, name, pk);
	free(buf);
	return rc;
}
