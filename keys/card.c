#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/wire.h"
#include "keys_int.h"

#define FORMAT 1

static const char *const kinds[] = {NULL, "FIU", "POLICE", "PROSECUTOR",
				    "JUDICIAL", "CUSTOMS", "CENTRAL_AUTHORITY",
				    "POINT_OF_CONTACT", "BROKER", "AUDITOR"};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *
enl_kind_name(int kind)
{
	return kind > 0 && (size_t)kind < N_KINDS ? kinds[kind] : NULL;
}

int
enl_kind_parse(const char *s)
{
	for (size_t i = 1; i < N_KINDS; i++)
		if (strcasecmp(kinds[i], s) == 0)
			return (int)i;
	return 0;
}

static bool
name_valid(const char *s)
{
	return s[0] != '\0' && enl_text_valid(s, ENL_NAME_MAX);
}

void
enl_fingerprint(const uint8_t pk[static 32], char out[static ENL_FINGERPRINT_LEN])
{
	static const char label[] = "enlace/fingerprint/v1";
	crypto_generichash_state st;
	uint8_t h[32];
	char *o = out;
	static const char hex[] = "0123456789ABCDEF";

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_final(&st, h, 32);
	for (int i = 0; i < 16; i++) {
		*o++ = hex[h[i] >> 4];
		*o++ = hex[h[i] & 15];
		if (i % 2 == 1 && i != 15)
			*o++ = ' ';
	}
	*o = '\0';
}

const struct enl_card_key *
enl_card_key(const struct enl_card *c, uint32_t version)
{
	for (size_t i = 0; i < c->n_keys; i++)
		if (c->keys[i].version == version)
			return &c->keys[i];
	return NULL;
}

int
enl_card_make(const struct enl_identity *ident, enum enl_agency_kind kind,
	      const char *country, const char *name, const struct enl_card *prev,
	      int64_t now, uint8_t **out, size_t *out_len)
{
	Enlace__Card card = ENLACE__CARD__INIT;
	Enlace__SignedCard sc = ENLACE__SIGNED_CARD__INIT;
	Enlace__PublicKeyVersion kv[ENL_MAX_KEY_VERSIONS], *kvp[ENL_MAX_KEY_VERSIONS];
	uint8_t pks[ENL_MAX_KEY_VERSIONS][2][32], sig[64];
	uint8_t *body = NULL;
	size_t n = enl_identity_count(ident), body_len = 0;
	int rc;

	if (enl_kind_name(kind) == NULL || !enl_country_valid(country) ||
	    !name_valid(name) || enl_identity_current(ident) == 0)
		return ENL_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		struct enl_key_secret ks;
		const struct enl_card_key *old;
		if ((rc = enl_identity_secret_at(ident, i, &ks)) != ENL_OK)
			return rc;
		rc = enl_identity_public(ident, ks.version, pks[i][0], pks[i][1]);
		enlace__public_key_version__init(&kv[i]);
		kv[i].version = ks.version;
		sodium_memzero(&ks, sizeof(ks));
		if (rc != ENL_OK)
			return rc;
		kv[i].sign_pk.data = pks[i][0];
		kv[i].sign_pk.len = 32;
		kv[i].enc_pk.data = pks[i][1];
		kv[i].enc_pk.len = 32;
		old = prev ? enl_card_key(prev, kv[i].version) : NULL;
		kv[i].created_at = old ? old->created_at : now;
		kvp[i] = &kv[i];
	}
	card.format = FORMAT;
	card.id = (char *)enl_identity_id(ident);
	card.kind = (Enlace__AgencyKind)kind;
	card.country = (char *)country;
	card.name = (char *)name;
	card.current_version = enl_identity_current(ident);
	card.n_keys = n;
	card.keys = kvp;
	card.created_at = prev ? prev->created_at : now;
	if ((rc = enl_pb_pack(&card.base, &body, &body_len)) != ENL_OK)
		return rc;
	rc = enl_identity_sign(ident, ENL_LABEL_CARD, body, body_len, sig);
	if (rc == ENL_OK) {
		sc.card.data = body;
		sc.card.len = body_len;
		sc.signature.data = sig;
		sc.signature.len = sizeof(sig);
		rc = enl_pb_pack(&sc.base, out, out_len);
	}
	free(body);
	return rc;
}

static int
card_fill(const Enlace__Card *w, struct enl_card *c)
{
	uint32_t last = 0;

	memset(c, 0, sizeof(*c));
	if (w->format != FORMAT)
		return w->format == 0 ? ENL_E_MALFORMED : ENL_E_UNSUPPORTED;
	if (!enl_id_valid(w->id) || enl_kind_name(w->kind) == NULL ||
	    !enl_country_valid(w->country) || !name_valid(w->name) || w->n_keys == 0 ||
	    w->n_keys > ENL_MAX_KEY_VERSIONS)
		return ENL_E_MALFORMED;
	memcpy(c->id, w->id, strlen(w->id) + 1);
	c->kind = (enum enl_agency_kind)w->kind;
	memcpy(c->country, w->country, strlen(w->country) + 1);
	memcpy(c->name, w->name, strlen(w->name) + 1);
	c->current_version = w->current_version;
	c->created_at = w->created_at;
	c->n_keys = w->n_keys;
	for (size_t i = 0; i < w->n_keys; i++) {
		const Enlace__PublicKeyVersion *k = w->keys[i];
		if (k->version <= last || k->sign_pk.len != 32 || k->enc_pk.len != 32)
			return ENL_E_MALFORMED;
		last = k->version;
		c->keys[i].version = k->version;
		memcpy(c->keys[i].sign_pk, k->sign_pk.data, 32);
		memcpy(c->keys[i].enc_pk, k->enc_pk.data, 32);
		c->keys[i].created_at = k->created_at;
	}
	return enl_card_key(c, c->current_version) ? ENL_OK : ENL_E_MALFORMED;
}

int
card_from_wire(const Enlace__SignedCard *sc, struct enl_card *c)
{
	Enlace__Card *w = NULL;
	int rc;

	if (sc->signature.len != 64)
		return ENL_E_MALFORMED;
	rc = enl_pb_unpack(&enlace__card__descriptor, sc->card.data, sc->card.len,
			   ENL_CARD_MAX, (ProtobufCMessage **)&w);
	if (rc != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	rc = card_fill(w, c);
	protobuf_c_message_free_unpacked(&w->base, NULL);
	if (rc != ENL_OK)
		return rc;
	rc = enl_verify_labeled(enl_card_key(c, c->current_version)->sign_pk,
				ENL_LABEL_CARD, sc->card.data, sc->card.len,
				sc->signature.data);
	return rc == ENL_E_BAD_SIGNATURE ? ENL_E_BAD_CARD : rc;
}

int
enl_card_parse(const uint8_t *buf, size_t len, struct enl_card *out)
{
	Enlace__SignedCard *sc = NULL;
	int rc;

	rc = enl_pb_unpack(&enlace__signed_card__descriptor, buf, len, ENL_CARD_MAX,
			   (ProtobufCMessage **)&sc);
	if (rc != ENL_OK)
		return rc;
	rc = card_from_wire(sc, out);
	protobuf_c_message_free_unpacked(&sc->base, NULL);
	return rc;
}

bool
enl_country_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}
