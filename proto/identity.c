#include <string.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "proto_int.h"

struct key_version {
	uint32_t version;
	bool retired;
	uint8_t sign_seed[32];
	uint8_t sign_sk[64];
	uint8_t sign_pk[32];
	uint8_t enc_sk[32];
	uint8_t enc_pk[32];
};

/* Lives whole in one sodium_malloc region: guarded and wiped on free. */
struct enl_identity {
	char id[ENL_ID_MAX + 1];
	size_t n;
	struct key_version v[ENL_MAX_KEY_VERSIONS];	/* ascending version */
};

int
enl_identity_new(const char *id, struct enl_identity **out)
{
	struct enl_identity *ident;

	if (!enl_id_valid(id))
		return ENL_E_INVAL;
	if ((ident = sodium_malloc(sizeof(*ident))) == NULL)
		return ENL_E_NOMEM;
	sodium_memzero(ident, sizeof(*ident));
	memcpy(ident->id, id, strlen(id) + 1);
	*out = ident;
	return ENL_OK;
}

void
enl_identity_free(struct enl_identity *ident)
{
	sodium_free(ident);	/* zeroes before unmapping */
}

const char *
enl_identity_id(const struct enl_identity *ident)
{
	return ident->id;
}

size_t
enl_identity_count(const struct enl_identity *ident)
{
	return ident->n;
}

uint32_t
enl_identity_version_at(const struct enl_identity *ident, size_t i)
{
	return i < ident->n ? ident->v[i].version : 0;
}

static const struct key_version *
find(const struct enl_identity *ident, uint32_t version)
{
	for (size_t i = 0; i < ident->n; i++)
		if (ident->v[i].version == version)
			return &ident->v[i];
	return NULL;
}

static const struct key_version *
current(const struct enl_identity *ident)
{
	for (size_t i = ident->n; i > 0; i--)
		if (!ident->v[i - 1].retired)
			return &ident->v[i - 1];
	return NULL;
}

uint32_t
enl_identity_current(const struct enl_identity *ident)
{
	const struct key_version *kv = current(ident);

	return kv ? kv->version : 0;
}

int
enl_identity_add(struct enl_identity *ident, const struct enl_key_secret *ks)
{
	struct key_version *kv;
	size_t pos;

	if (ks->version == 0)
		return ENL_E_INVAL;
	if (find(ident, ks->version) != NULL)
		return ENL_E_EXISTS;
	if (ident->n == ENL_MAX_KEY_VERSIONS)
		return ENL_E_TOO_LARGE;
	for (pos = ident->n; pos > 0 && ident->v[pos - 1].version > ks->version; pos--)
		;
	memmove(&ident->v[pos + 1], &ident->v[pos],
		(ident->n - pos) * sizeof(ident->v[0]));
	kv = &ident->v[pos];
	kv->version = ks->version;
	kv->retired = ks->retired;
	memcpy(kv->sign_seed, ks->sign_seed, 32);
	memcpy(kv->enc_sk, ks->enc_sk, 32);
	if (crypto_sign_seed_keypair(kv->sign_pk, kv->sign_sk, kv->sign_seed) != 0 ||
	    crypto_scalarmult_base(kv->enc_pk, kv->enc_sk) != 0) {
		memmove(&ident->v[pos], &ident->v[pos + 1],
			(ident->n - pos) * sizeof(ident->v[0]));
		sodium_memzero(&ident->v[ident->n], sizeof(ident->v[0]));
		return ENL_E_CRYPTO;
	}
	ident->n++;
	return ENL_OK;
}

int
enl_identity_rotate(struct enl_identity *ident, uint32_t *version)
{
	struct enl_key_secret ks;
	int rc;

	memset(&ks, 0, sizeof(ks));
	ks.version = ident->n ? ident->v[ident->n - 1].version + 1 : 1;
	randombytes_buf(ks.sign_seed, sizeof(ks.sign_seed));
	randombytes_buf(ks.enc_sk, sizeof(ks.enc_sk));
	rc = enl_identity_add(ident, &ks);
	sodium_memzero(&ks, sizeof(ks));
	if (rc != ENL_OK)
		return rc;
	for (size_t i = 0; i + 1 < ident->n; i++)
		ident->v[i].retired = true;
	*version = ident->v[ident->n - 1].version;
	return ENL_OK;
}

int
enl_identity_secret_at(const struct enl_identity *ident, size_t i,
		       struct enl_key_secret *out)
{
	if (i >= ident->n)
		return ENL_E_INVAL;
	out->version = ident->v[i].version;
	out->retired = ident->v[i].retired;
	memcpy(out->sign_seed, ident->v[i].sign_seed, 32);
	memcpy(out->enc_sk, ident->v[i].enc_sk, 32);
	return ENL_OK;
}

int
enl_identity_public(const struct enl_identity *ident, uint32_t version,
		    uint8_t sign_pk[static 32], uint8_t enc_pk[static 32])
{
	const struct key_version *kv = find(ident, version);

	if (kv == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	memcpy(sign_pk, kv->sign_pk, 32);
	memcpy(enc_pk, kv->enc_pk, 32);
	return ENL_OK;
}

const uint8_t *
identity_current_sign_sk(const struct enl_identity *ident)
{
	const struct key_version *kv = current(ident);

	return kv ? kv->sign_sk : NULL;
}

int
enl_identity_sign(const struct enl_identity *ident, const char *label,
		  const uint8_t *msg, size_t len, uint8_t sig[static 64])
{
	const uint8_t *sk = identity_current_sign_sk(ident);
	size_t ll = strlen(label) + 1;
	uint8_t *buf;
	int rc = ENL_OK;

	if (sk == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	if ((buf = malloc(ll + len)) == NULL)
		return ENL_E_NOMEM;
	memcpy(buf, label, ll);
	if (len)
		memcpy(buf + ll, msg, len);
	if (crypto_sign_detached(sig, NULL, buf, ll + len, sk) != 0)
		rc = ENL_E_CRYPTO;
	free(buf);
	return rc;
}

int
identity_unseal(const struct enl_identity *ident, uint32_t version,
		const uint8_t *sealed, size_t len, uint8_t key[32])
{
	const struct key_version *kv = find(ident, version);

	if (kv == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	if (len != crypto_box_SEALBYTES + 32)
		return ENL_E_MALFORMED;
	if (crypto_box_seal_open(key, sealed, len, kv->enc_pk, kv->enc_sk) != 0)
		return ENL_E_TAMPERED;
	return ENL_OK;
}

int
enl_identity_sign_raw(const struct enl_identity *ident, const uint8_t *msg, size_t len,
		      uint8_t sig[static 64])
{
	const uint8_t *sk = identity_current_sign_sk(ident);

	if (sk == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	return crypto_sign_detached(sig, NULL, msg, len, sk) == 0 ? ENL_OK : ENL_E_CRYPTO;
}
