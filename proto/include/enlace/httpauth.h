/*
 * enlace httpauth: who may read the audit log over HTTP.
 *
 * Every HTTP request to the broker's log listener carries one header
 *
 *   Authorization: Enlace-Sig id=AR-UIF,v=3,t=1765000000,sig=BASE64URL
 *
 * where sig is Ed25519, by version v of the key of directory member `id`,
 * over "enlace/http-request/v1" 0x00 followed by
 *
 *   LOG-ORIGIN "\n" METHOD "\n" REQUEST-TARGET "\n" T
 *
 * (LOG-ORIGIN the log's checkpoint origin line, "enlace/OAS-BROKER"; the
 * request target exactly as sent on the request line; T decimal seconds).
 * The format is strict: these four fields in this order, no spaces, v and
 * t decimal without leading zeros, sig 86 characters of unpadded
 * base64url. docs/PROTOCOL.md specifies it.
 */
#ifndef ENLACE_HTTPAUTH_H
#define ENLACE_HTTPAUTH_H

#include "enlace/proto.h"

#define ENL_LABEL_HTTP "enlace/http-request/v1"
#define ENL_HTTP_AUTH_SCHEME "Enlace-Sig"
#define ENL_HTTP_AUTH_MAX 200		/* longest header value accepted */
#define ENL_HTTP_TARGET_MAX 512		/* longest request target signed */
#define ENL_HTTP_SKEW 300		/* seconds a signature's time may be off */

struct enl_http_auth {
	char id[ENL_ID_MAX + 1];
	uint32_t version;
	int64_t time;
	uint8_t sig[64];
};

/* Parses an Authorization header value. ENL_OK or ENL_E_MALFORMED. */
int enl_http_auth_parse(const char *value, struct enl_http_auth *out) ENL_WUR;

/*
 * Checks a parsed header against the request (origin, method, target)
 * with `pk`, the signer's key of a->version, at `now`: ENL_OK,
 * ENL_E_EXPIRED (time off by more than ENL_HTTP_SKEW), ENL_E_TOO_LARGE
 * (a target over ENL_HTTP_TARGET_MAX), ENL_E_BAD_SIGNATURE.
 */
int enl_http_auth_check(const struct enl_http_auth *a, const uint8_t pk[static 32],
			const char *origin, const char *method, const char *target,
			size_t target_len, int64_t now) ENL_WUR;

/*
 * Makes the header value for a request signed by `ident`'s current key at
 * `now` into out (at least ENL_HTTP_AUTH_MAX + 1 bytes). ENL_OK,
 * ENL_E_TOO_LARGE, ENL_E_INVAL (no current key), ENL_E_CRYPTO.
 */
struct enl_identity;
int enl_http_auth_make(const struct enl_identity *ident, const char *origin,
		       const char *method, const char *target, size_t target_len,
		       int64_t now, char out[static ENL_HTTP_AUTH_MAX + 1]) ENL_WUR;

#endif
