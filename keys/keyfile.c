#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "keys_int.h"

#define MAGIC "ENLACEK1"
#define MODE_CLEAR 0
#define MODE_ARGON2ID 1
#define SALT_LEN crypto_pwhash_SALTBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define RECORD_LEN (4 + 1 + 32 + 32)
#define MAX_OPSLIMIT 16
#define MAX_MEMLIMIT ((size_t)1 << 30)

struct enl_kdf_cost
enl_kdf_cost_default(void)
{
	struct enl_kdf_cost c = {crypto_pwhash_OPSLIMIT_MODERATE,
				 crypto_pwhash_MEMLIMIT_MODERATE};
	return c;
}

/* The secret body: id, then one record per version. In sodium memory. */
static int
body_encode(const struct enl_identity *ident, uint8_t **out, size_t *out_len)
{
	const char *id = enl_identity_id(ident);
	size_t n = enl_identity_count(ident), idlen = strlen(id);
	size_t len = 1 + idlen + 1 + n * RECORD_LEN;
	struct enl_key_secret ks;
	uint8_t *b, *p;

	if ((b = sodium_malloc(len)) == NULL)
		return ENL_E_NOMEM;
	p = b;
	*p++ = (uint8_t)idlen;
	memcpy(p, id, idlen);
	p += idlen;
	*p++ = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		if (enl_identity_secret_at(ident, i, &ks) != ENL_OK)
			abort();
		p = enl_put_u32(p, ks.version);
		*p++ = ks.retired ? 1 : 0;
		memcpy(p, ks.sign_seed, 32);
		memcpy(p + 32, ks.enc_sk, 32);
		p += 64;
	}
	sodium_memzero(&ks, sizeof(ks));
	*out = b;
	*out_len = len;
	return ENL_OK;
}

static int
body_decode(const uint8_t *b, size_t len, struct enl_identity **out)
{
	struct enl_identity *ident = NULL;
	struct enl_key_secret ks;
	char id[ENL_ID_MAX + 1];
	struct enl_reader r = {b, len};
	uint8_t idlen = 0, n = 0, flags = 0;
	const uint8_t *p;
	int rc = ENL_E_MALFORMED;

	if (!enl_rd_u8(&r, &idlen) || idlen > ENL_ID_MAX || (p = enl_rd_bytes(&r, idlen)) == NULL)
		return ENL_E_MALFORMED;
	memcpy(id, p, idlen);
	id[idlen] = '\0';
	if (!enl_rd_u8(&r, &n) || n == 0 || n > ENL_MAX_KEY_VERSIONS ||
	    r.len != (size_t)n * RECORD_LEN)
		return ENL_E_MALFORMED;
	if ((rc = enl_identity_new(id, &ident)) != ENL_OK)
		return rc == ENL_E_INVAL ? ENL_E_MALFORMED : rc;
	for (unsigned i = 0; i < n; i++) {
		memset(&ks, 0, sizeof(ks));
		if (!enl_rd_u32(&r, &ks.version) || !enl_rd_u8(&r, &flags) || flags > 1 ||
		    (p = enl_rd_bytes(&r, 64)) == NULL) {
			rc = ENL_E_MALFORMED;
			goto out;
		}
		ks.retired = flags == 1;
		memcpy(ks.sign_seed, p, 32);
		memcpy(ks.enc_sk, p + 32, 32);
		rc = enl_identity_add(ident, &ks);
		if (rc != ENL_OK) {
			rc = ENL_E_MALFORMED;
			goto out;
		}
	}
	*out = ident;
	ident = NULL;
	rc = ENL_OK;
out:
	sodium_memzero(&ks, sizeof(ks));
	enl_identity_free(ident);
	return rc;
}

static int
derive(uint8_t key[32], const char *pass, size_t pass_len, const uint8_t *salt,
       uint64_t ops, size_t mem)
{
	if (crypto_pwhash(key, 32, pass, pass_len, salt, ops, mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return ENL_E_NOMEM;	/* libsodium fails here only for memory */
	return ENL_OK;
}

int
enl_keyfile_write(const char *path, const struct enl_identity *ident,
		  const char *pass, size_t pass_len, const struct enl_kdf_cost *cost,
		  bool force)
{
	uint8_t hdr[8 + 1 + 1 + SALT_LEN + 8 + 8 + NONCE_LEN + 4];
	uint8_t key[32], *body = NULL, *file = NULL, *p = hdr;
	size_t body_len = 0, hdr_len, file_len = 0;
	unsigned long long ctlen = 0;
	int rc;

	if ((rc = body_encode(ident, &body, &body_len)) != ENL_OK)
		return rc;
	memcpy(p, MAGIC, 8);
	p += 8;
	if (pass == NULL) {
		*p++ = MODE_CLEAR;
		p = enl_put_u32(p, (uint32_t)body_len);
	} else {
		uint8_t *salt, *nonce;
		*p++ = MODE_ARGON2ID;
		*p++ = crypto_pwhash_ALG_ARGON2ID13;
		salt = p;
		randombytes_buf(salt, SALT_LEN);
		p = enl_put_u64(p + SALT_LEN, cost->opslimit);
		p = enl_put_u64(p, cost->memlimit);
		nonce = p;
		randombytes_buf(nonce, NONCE_LEN);
		p = enl_put_u32(p + NONCE_LEN, (uint32_t)(body_len + TAG_LEN));
		if ((rc = derive(key, pass, pass_len, salt, cost->opslimit,
				 cost->memlimit)) != ENL_OK)
			goto out;
	}
	hdr_len = (size_t)(p - hdr);
	file_len = hdr_len + body_len + (pass ? TAG_LEN : 0);
	if ((file = sodium_malloc(file_len)) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	memcpy(file, hdr, hdr_len);
	if (pass == NULL)
		memcpy(file + hdr_len, body, body_len);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			file + hdr_len, &ctlen, body, body_len, hdr, hdr_len, NULL,
			hdr + hdr_len - 4 - NONCE_LEN, key);
	rc = enl_file_write(path, file, file_len, 0600, force);
out:
	sodium_memzero(key, sizeof(key));
	sodium_free(body);
	sodium_free(file);
	return rc;
}

int
enl_keyfile_decode(const uint8_t *buf, size_t len, const char *pass,
		   size_t pass_len, struct enl_identity **out)
{
	struct enl_reader r = {buf, len};
	const uint8_t *p, *salt = NULL, *nonce = NULL;
	uint8_t mode = 0, alg = 0, key[32];
	uint64_t ops = 0, mem = 0;
	uint32_t blen = 0;
	uint8_t *plain = NULL;
	int rc;

	if (len > ENL_KEYFILE_MAX)
		return ENL_E_TOO_LARGE;
	if ((p = enl_rd_bytes(&r, 8)) == NULL || memcmp(p, MAGIC, 8) != 0 || !enl_rd_u8(&r, &mode))
		return ENL_E_MALFORMED;
	if (mode == MODE_CLEAR) {
		if (!enl_rd_u32(&r, &blen) || r.len != blen)
			return ENL_E_MALFORMED;
		return body_decode(r.p, r.len, out);
	}
	if (mode != MODE_ARGON2ID)
		return ENL_E_UNSUPPORTED;
	if (!enl_rd_u8(&r, &alg) || (salt = enl_rd_bytes(&r, SALT_LEN)) == NULL ||
	    !enl_rd_u64(&r, &ops) || !enl_rd_u64(&r, &mem) ||
	    (nonce = enl_rd_bytes(&r, NONCE_LEN)) == NULL || !enl_rd_u32(&r, &blen) ||
	    r.len != blen || blen < TAG_LEN)
		return ENL_E_MALFORMED;
	if (alg != crypto_pwhash_ALG_ARGON2ID13)
		return ENL_E_UNSUPPORTED;
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > MAX_OPSLIMIT ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > MAX_MEMLIMIT)
		return ENL_E_MALFORMED;
	if (pass == NULL)
		return ENL_E_BAD_PASSPHRASE;
	if ((rc = derive(key, pass, pass_len, salt, ops, (size_t)mem)) != ENL_OK)
		return rc;
	if ((plain = sodium_malloc(blen)) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, r.p, blen,
						       buf, len - blen, nonce,
						       key) != 0) {
		rc = ENL_E_BAD_PASSPHRASE;
		goto out;
	}
	rc = body_decode(plain, blen - TAG_LEN, out);
out:
	sodium_memzero(key, sizeof(key));
	sodium_free(plain);
	return rc;
}

static int
read_secret(const char *path, uint8_t **buf, size_t *len, struct stat *st)
{
	int rc = enl_file_read(path, ENL_KEYFILE_MAX, buf, len);

	if (rc != ENL_OK)
		return rc;
	if (stat(path, st) != 0) {
		sodium_memzero(*buf, *len);
		free(*buf);
		return ENL_E_IO;
	}
	return ENL_OK;
}

int
enl_keyfile_probe(const char *path, bool *encrypted)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	int rc = read_secret(path, &buf, &len, &st);

	if (rc != ENL_OK)
		return rc;
	if (len < 9 || memcmp(buf, MAGIC, 8) != 0)
		rc = ENL_E_MALFORMED;
	else
		*encrypted = buf[8] != MODE_CLEAR;
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}

int
enl_keyfile_read(const char *path, const char *pass, size_t pass_len,
		 struct enl_identity **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	int rc = read_secret(path, &buf, &len, &st);

	if (rc != ENL_OK)
		return rc;
	if (len >= 9 && buf[8] == MODE_CLEAR && (st.st_mode & 077) != 0)
		rc = ENL_E_INSECURE_FILE;
	else
		rc = enl_keyfile_decode(buf, len, pass, pass_len, out);
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}
