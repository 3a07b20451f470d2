/*
 * The signed HTTP request of enlace/httpauth.h: made by enlace-audit,
 * checked by the broker's log listener before it looks at the path.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "enlace/httpauth.h"

#define SIG_B64_LEN 86	/* 64 bytes, base64url without padding */

/* A decimal without sign or leading zero, at most `max`, ending at `end`:
 * the characters read, or 0 if there is none such. */
static size_t
read_decimal(const char *s, char end, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (s[0] == '0' && s[1] != end)
		return 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || s[i] != end)
		return 0;
	*out = v;
	return i;
}

/* "name=" at *p: moves past it. */
static bool
expect(const char **p, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(*p, name, n) != 0)
		return false;
	*p += n;
	return true;
}

int
enl_http_auth_parse(const char *value, struct enl_http_auth *out)
{
	const char *p = value, *comma;
	uint64_t v;
	size_t n, bin_len;

	memset(out, 0, sizeof(*out));
	if (strnlen(value, ENL_HTTP_AUTH_MAX + 1) > ENL_HTTP_AUTH_MAX ||
	    !expect(&p, ENL_HTTP_AUTH_SCHEME " id="))
		return ENL_E_MALFORMED;
	if ((comma = strchr(p, ',')) == NULL || (size_t)(comma - p) > ENL_ID_MAX)
		return ENL_E_MALFORMED;
	memcpy(out->id, p, (size_t)(comma - p));
	if (!enl_id_valid(out->id))
		return ENL_E_MALFORMED;
	p = comma + 1;
	if (!expect(&p, "v=") || (n = read_decimal(p, ',', UINT32_MAX, &v)) == 0 || v == 0)
		return ENL_E_MALFORMED;
	out->version = (uint32_t)v;
	p += n + 1;
	if (!expect(&p, "t=") || (n = read_decimal(p, ',', INT64_MAX, &v)) == 0)
		return ENL_E_MALFORMED;
	out->time = (int64_t)v;
	p += n + 1;
	if (!expect(&p, "sig=") || strlen(p) != SIG_B64_LEN ||
	    sodium_base642bin(out->sig, sizeof(out->sig), p, SIG_B64_LEN, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    bin_len != sizeof(out->sig))
		return ENL_E_MALFORMED;
	return ENL_OK;
}

/* The signed text: origin, method, target and time, one a line. */
static int
signed_text(const char *origin, const char *method, const char *target, size_t target_len,
	    int64_t t, char *out, size_t cap, size_t *len)
{
	int head;

	if (target_len > ENL_HTTP_TARGET_MAX || memchr(target, '\n', target_len) != NULL)
		return ENL_E_TOO_LARGE;
	head = snprintf(out, cap, "%s\n%s\n", origin, method);
	if (head < 0 || (size_t)head + target_len + 24 > cap)
		return ENL_E_TOO_LARGE;
	memcpy(out + head, target, target_len);
	*len = (size_t)head + target_len;
	*len += (size_t)snprintf(out + *len, cap - *len, "\n%" PRId64, t);
	return ENL_OK;
}

int
enl_http_auth_check(const struct enl_http_auth *a, const uint8_t pk[static 32],
		    const char *origin, const char *method, const char *target,
		    size_t target_len, int64_t now)
{
	char text[ENL_HTTP_TARGET_MAX + 400];
	size_t len;
	int rc, skew_ok;

	if (strlen(origin) > 200 || strlen(method) > 16)
		return ENL_E_TOO_LARGE;
	if ((rc = signed_text(origin, method, target, target_len, a->time, text, sizeof(text),
			      &len)) != ENL_OK)
		return rc;
	/* the signature first, whatever the time: one answer takes as long
	 * as another */
	rc = enl_verify_labeled(pk, ENL_LABEL_HTTP, (const uint8_t *)text, len, a->sig);
	skew_ok = a->time >= now - ENL_HTTP_SKEW && a->time <= now + ENL_HTTP_SKEW;
	if (rc == ENL_OK && !skew_ok)
		rc = ENL_E_EXPIRED;
	return rc;
}

int
enl_http_auth_make(const struct enl_identity *ident, const char *origin, const char *method,
		   const char *target, size_t target_len, int64_t now,
		   char out[static ENL_HTTP_AUTH_MAX + 1])
{
	char text[ENL_HTTP_TARGET_MAX + 400], b64[SIG_B64_LEN + 1];
	uint8_t sig[64];
	uint32_t version = enl_identity_current(ident);
	size_t len;
	int rc, n;

	if (version == 0)
		return ENL_E_INVAL;
	if (strlen(origin) > 200 || strlen(method) > 16)
		return ENL_E_TOO_LARGE;
	if ((rc = signed_text(origin, method, target, target_len, now, text, sizeof(text),
			      &len)) != ENL_OK ||
	    (rc = enl_identity_sign(ident, ENL_LABEL_HTTP, (const uint8_t *)text, len, sig)) !=
		    ENL_OK)
		return rc;
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = snprintf(out, ENL_HTTP_AUTH_MAX + 1, ENL_HTTP_AUTH_SCHEME " id=%s,v=%" PRIu32
		     ",t=%" PRId64 ",sig=%s", enl_identity_id(ident), version, now, b64);
	return n > 0 && n <= ENL_HTTP_AUTH_MAX ? ENL_OK : ENL_E_TOO_LARGE;
}
