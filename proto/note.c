#include <stdio.h>
#include <string.h>

#include <sodium.h>

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

void
enl_note_key_id(const char *name, const uint8_t pk[static 32], uint8_t id[static 4])
{
	crypto_hash_sha256_state st;
	uint8_t h[32];
	const uint8_t nl_type[2] = {0x0a, 0x01};

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
	crypto_hash_sha256_update(&st, nl_type, sizeof(nl_type));
	crypto_hash_sha256_update(&st, pk, 32);
	crypto_hash_sha256_final(&st, h);
	memcpy(id, h, 4);
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
