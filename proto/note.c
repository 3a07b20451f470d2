#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/note.h"
#include "enlace/proto.h"

static bool
name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > ENL_VKEY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '+')
			return false;
	return true;
}

/*
 * True if s[0..n) is only standard base64 characters. libsodium's decoder
 * compares only the low byte of sign-extended chars, so a byte with the
 * high bit set can decode as '/' or '+': such text must never reach it.
 */
static bool
b64_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '='))
			return false;
	}
	return true;
}

/* SHA-256(name || "\n" || type || pk)[:4]: 0x01 note signatures, 0x04
 * Ed25519 cosignatures. */
static void
key_id(const char *name, uint8_t type, const uint8_t pk[static 32], uint8_t id[static 4])
{
	crypto_hash_sha256_state st;
	uint8_t h[32];
	const uint8_t nl_type[2] = {0x0a, type};

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
	crypto_hash_sha256_update(&st, nl_type, sizeof(nl_type));
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	memcpy(id, h, 4);
}

void
enl_note_key_id(const char *name, const uint8_t pk[static 32], uint8_t id[static 4])
{
	key_id(name, 0x01, pk, id);
}

int
enl_vkey_format(const char *name, const uint8_t pk[static 32],
		char out[static ENL_VKEY_MAX])
{
	uint8_t raw[33], id[4];
	char b64[64], idhex[9];

	if (!name_ok(name))
		return ENL_E_INVAL;
	raw[0] = 0x01;
	memcpy(raw + 1, pk, 32);
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	enl_note_key_id(name, pk, id);
	enl_hex(id, 4, idhex);
	snprintf(out, ENL_VKEY_MAX, "%s+%s+%s", name, idhex, b64);
	return ENL_OK;
}

int
enl_vkey_parse(const char *text, char name[static ENL_VKEY_NAME_MAX + 1],
	       uint8_t pk[static 32])
{
	const char *p1, *p2, *end;
	uint8_t raw[33], id[4], want[4];
	size_t n, rawlen = 0;
	char b64[64];

	end = text + strlen(text);
	if (end > text && end[-1] == '\n')
		end--;
	if ((p1 = memchr(text, '+', (size_t)(end - text))) == NULL ||
	    (p2 = memchr(p1 + 1, '+', (size_t)(end - p1 - 1))) == NULL)
		return ENL_E_MALFORMED;
	n = (size_t)(p1 - text);
	if (n == 0 || n > ENL_VKEY_NAME_MAX || p2 - p1 != 9 ||
	    (size_t)(end - p2 - 1) >= sizeof(b64))
		return ENL_E_MALFORMED;
	memcpy(name, text, n);
	name[n] = '\0';
	if (!name_ok(name))
		return ENL_E_MALFORMED;
	{
		char idhex[9];
		memcpy(idhex, p1 + 1, 8);
		idhex[8] = '\0';
		if (!enl_unhex(idhex, id, 4))
			return ENL_E_MALFORMED;
	}
	memcpy(b64, p2 + 1, (size_t)(end - p2 - 1));
	b64[end - p2 - 1] = '\0';
	if (!b64_ok(b64, strlen(b64)))
		return ENL_E_MALFORMED;
	if (sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &rawlen,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return ENL_E_MALFORMED;
	if (rawlen < 1)
		return ENL_E_MALFORMED;
	if (raw[0] != 0x01 || rawlen != 33)
		return ENL_E_UNSUPPORTED;
	enl_note_key_id(name, raw + 1, want);
	if (sodium_memcmp(id, want, 4) != 0)
		return ENL_E_MALFORMED;
	memcpy(pk, raw + 1, 32);
	return ENL_OK;
}

/* ---- signed notes ---- */

static const char sig_prefix[] = "\xe2\x80\x94 ";	/* em dash, space */

static bool
text_ok(const char *t, size_t len)
{
	if (len == 0 || t[len - 1] != '\n')
		return false;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)t[i] < 0x20 && t[i] != '\n') || t[i] == 0x7f)
			return false;
	return true;
}

int
enl_note_sign(const struct enl_identity *ident, const char *name, const char *text,
	      char **out)
{
	uint8_t raw[4 + 64], sk_pk[32], enc[32];
	char b64[sizeof(raw) * 2], *buf;
	size_t tl = strlen(text), n;
	int rc;

	if (!name_ok(name) || !text_ok(text, tl) || strstr(text, "\n\n") != NULL)
		return ENL_E_INVAL;
	if ((rc = enl_identity_public(ident, enl_identity_current(ident), sk_pk, enc)) != ENL_OK)
		return rc;
	enl_note_key_id(name, sk_pk, raw);
	if ((rc = enl_identity_sign_raw(ident, (const uint8_t *)text, tl, raw + 4)) != ENL_OK)
		return rc;
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	n = tl + 1 + strlen(sig_prefix) + strlen(name) + 1 + strlen(b64) + 2;
	if ((buf = malloc(n)) == NULL)
		return ENL_E_NOMEM;
	snprintf(buf, n, "%s\n%s%s %s\n", text, sig_prefix, name, b64);
	*out = buf;
	return ENL_OK;
}

/* ---- cosignatures (C2SP tlog-cosignature, Ed25519) ---- */

static const char cosig_header[] = "cosignature/v1\n";

/* "cosignature/v1\ntime <t>\n" || text into *out (malloc'd). */
static int
cosig_message(uint64_t t, const char *text, size_t text_len, uint8_t **out, size_t *len)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%stime %llu\n", cosig_header,
			 (unsigned long long)t);
	uint8_t *m = malloc((size_t)n + text_len);

	if (m == NULL)
		return ENL_E_NOMEM;
	memcpy(m, head, (size_t)n);
	memcpy(m + n, text, text_len);
	*out = m;
	*len = (size_t)n + text_len;
	return ENL_OK;
}

/* raw: big-endian u64 timestamp || signature. */
static int
cosig_check(const uint8_t *raw, const char *text, size_t text_len, const uint8_t pk[32])
{
	uint64_t t = 0;
	uint8_t *m = NULL;
	size_t len = 0;
	int rc;

	for (int i = 0; i < 8; i++)
		t = t << 8 | raw[i];
	if (t > (uint64_t)INT64_MAX)
		return ENL_E_BAD_SIGNATURE;
	if ((rc = cosig_message(t, text, text_len, &m, &len)) != ENL_OK)
		return rc;
	rc = crypto_sign_verify_detached(raw + 8, m, len, pk) == 0 ? ENL_OK
								     : ENL_E_BAD_SIGNATURE;
	free(m);
	return rc;
}

int
enl_cosign(const struct enl_identity *ident, const char *name, const char *text,
	   uint64_t t, char **line)
{
	uint8_t raw[4 + 8 + 64], pk[32], enc[32], *m = NULL;
	char b64[sizeof(raw) * 2], *buf;
	size_t tl = strlen(text), len = 0, n;
	int rc;

	if (!name_ok(name) || !text_ok(text, tl) || strstr(text, "\n\n") != NULL ||
	    t > (uint64_t)INT64_MAX)
		return ENL_E_INVAL;
	if ((rc = enl_identity_public(ident, enl_identity_current(ident), pk, enc)) != ENL_OK)
		return rc;
	key_id(name, 0x04, pk, raw);
	for (int i = 0; i < 8; i++)
		raw[4 + i] = (uint8_t)(t >> (56 - 8 * i));
	if ((rc = cosig_message(t, text, tl, &m, &len)) != ENL_OK)
		return rc;
	rc = enl_identity_sign_raw(ident, m, len, raw + 12);
	free(m);
	if (rc != ENL_OK)
		return rc;
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	n = strlen(sig_prefix) + strlen(name) + 1 + strlen(b64) + 2;
	if ((buf = malloc(n)) == NULL)
		return ENL_E_NOMEM;
	snprintf(buf, n, "%s%s %s\n", sig_prefix, name, b64);
	*line = buf;
	return ENL_OK;
}

/* Checks one signature line against the verifiers. */
static int
check_line(const char *line, size_t len, const char *text, size_t text_len,
	   const struct enl_note_verifier *v, size_t nv, bool *verified, size_t *n_ok)
{
	size_t pl = strlen(sig_prefix), name_len;
	const char *sp;
	char b64[512], name[ENL_VKEY_NAME_MAX + 1];
	uint8_t raw[300], id[4];
	size_t raw_len = 0;

	if (len < pl || memcmp(line, sig_prefix, pl) != 0)
		return ENL_E_MALFORMED;
	line += pl;
	len -= pl;
	if ((sp = memchr(line, ' ', len)) == NULL)
		return ENL_E_MALFORMED;
	name_len = (size_t)(sp - line);
	if (name_len == 0 || name_len > ENL_VKEY_NAME_MAX || len - name_len - 1 >= sizeof(b64))
		return ENL_E_MALFORMED;
	memcpy(name, line, name_len);
	name[name_len] = '\0';
	memcpy(b64, sp + 1, len - name_len - 1);
	b64[len - name_len - 1] = '\0';
	if (!name_ok(name) || !b64_ok(b64, strlen(b64)) ||
	    sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &raw_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || raw_len < 5)
		return ENL_E_MALFORMED;
	for (size_t i = 0; i < nv; i++) {
		if (strcmp(v[i].name, name) != 0)
			continue;
		key_id(name, v[i].cosigner ? 0x04 : 0x01, v[i].pk, id);
		if (memcmp(id, raw, 4) != 0)
			continue;
		if (v[i].cosigner) {
			if (raw_len != 4 + 8 + 64 ||
			    cosig_check(raw + 4, text, text_len, v[i].pk) != ENL_OK)
				return ENL_E_BAD_SIGNATURE;
		} else if (raw_len != 4 + 64 || crypto_sign_verify_detached(raw + 4,
				(const uint8_t *)text, text_len, v[i].pk) != 0) {
			return ENL_E_BAD_SIGNATURE;
		}
		if (verified != NULL && !verified[i]) {
			verified[i] = true;
			(*n_ok)++;
		} else if (verified == NULL) {
			(*n_ok)++;
		}
	}
	return ENL_OK;
}

int
enl_note_open(const char *note, size_t len, const struct enl_note_verifier *v, size_t nv,
	      size_t *text_len, bool *verified)
{
	const char *split = NULL, *p, *end = note + len;
	size_t n_ok = 0, lines = 0;
	int rc;

	if (len > ENL_NOTE_MAX)
		return ENL_E_TOO_LARGE;
	if (len < 2 || memchr(note, '\0', len) != NULL || note[len - 1] != '\n')
		return ENL_E_MALFORMED;
	for (p = note; p + 1 < end; p++)
		if (p[0] == '\n' && p[1] == '\n')
			split = p;
	if (split == NULL || !text_ok(note, (size_t)(split - note) + 1))
		return ENL_E_MALFORMED;
	if (verified != NULL)
		memset(verified, 0, nv * sizeof(*verified));
	for (p = split + 2; p < end; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (lines == ENL_NOTE_MAX_SIGS)
			return ENL_E_MALFORMED;
		rc = check_line(p, (size_t)(nl - p), note, (size_t)(split - note) + 1, v, nv,
				verified, &n_ok);
		if (rc != ENL_OK)
			return rc;
		p = nl + 1;
	}
	if (lines == 0)
		return ENL_E_MALFORMED;
	if (n_ok == 0)
		return ENL_E_UNKNOWN_SENDER;
	*text_len = (size_t)(split - note) + 1;
	return ENL_OK;
}

/* ---- checkpoints ---- */

int
enl_checkpoint_format(const struct enl_checkpoint *cp, char **out)
{
	char b64[64], *buf;
	size_t n;

	if (!name_ok(cp->origin))
		return ENL_E_INVAL;
	sodium_bin2base64(b64, sizeof(b64), cp->root, 32, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(cp->origin) + 24 + strlen(b64) + 4;
	if ((buf = malloc(n)) == NULL)
		return ENL_E_NOMEM;
	snprintf(buf, n, "%s\n%llu\n%s\n", cp->origin, (unsigned long long)cp->size, b64);
	*out = buf;
	return ENL_OK;
}

int
enl_checkpoint_parse(const char *text, size_t len, struct enl_checkpoint *cp)
{
	const char *end = text + len, *l1, *l2, *l3;
	char b64[64];
	size_t raw_len = 0;
	uint64_t size = 0;

	if (len == 0 || memchr(text, '\0', len) != NULL || text[len - 1] != '\n')
		return ENL_E_MALFORMED;
	l1 = memchr(text, '\n', len);
	l2 = l1 ? memchr(l1 + 1, '\n', (size_t)(end - l1 - 1)) : NULL;
	l3 = l2 ? memchr(l2 + 1, '\n', (size_t)(end - l2 - 1)) : NULL;
	if (l3 == NULL || l1 == text || (size_t)(l1 - text) > ENL_VKEY_NAME_MAX)
		return ENL_E_MALFORMED;
	memcpy(cp->origin, text, (size_t)(l1 - text));
	cp->origin[l1 - text] = '\0';
	if (!name_ok(cp->origin))
		return ENL_E_MALFORMED;
	/* size: decimal, no sign, no leading zero but for 0 itself */
	if (l2 == l1 + 1 || (l1[1] == '0' && l2 != l1 + 2) || l2 - l1 - 1 > 20)
		return ENL_E_MALFORMED;
	for (const char *p = l1 + 1; p < l2; p++) {
		if (*p < '0' || *p > '9' || size > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return ENL_E_MALFORMED;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (l3 - l2 - 1 != 44)
		return ENL_E_MALFORMED;
	memcpy(b64, l2 + 1, 44);
	b64[44] = '\0';
	if (!b64_ok(b64, 44))
		return ENL_E_MALFORMED;
	if (sodium_base642bin(cp->root, 32, b64, 44, NULL, &raw_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || raw_len != 32)
		return ENL_E_MALFORMED;
	cp->size = size;
	/* extension lines: each non-empty */
	for (const char *p = l3 + 1; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == p)
			return ENL_E_MALFORMED;
		p = nl + 1;
	}
	return ENL_OK;
}
