/* The signed HTTP request of enlace/httpauth.h: made, parsed, checked. */
#include <string.h>

#include "enlace/httpauth.h"
#include "harness.h"
#include "world.h"

#define ORIGIN "enlace/OAS-BROKER"
#define NOW 1765000000

static struct enl_identity *me;
static uint8_t pk[32];

static void
test_round_trip(void)
{
	char h[ENL_HTTP_AUTH_MAX + 1];
	struct enl_http_auth a;

	REQUIRE_OK(enl_http_auth_make(me, ORIGIN, "GET", "/checkpoint", 11, NOW, h));
	REQUIRE_OK(enl_http_auth_parse(h, &a));
	CHECK(strcmp(a.id, "AR-UIF") == 0 && a.version == 2 && a.time == NOW);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint", 11, NOW), ENL_OK);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint", 11, NOW + 300), ENL_OK);
	/* bound to each of its parts */
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "HEAD", "/checkpoint", 11, NOW),
		 ENL_E_BAD_SIGNATURE);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/tile/0/000", 11, NOW),
		 ENL_E_BAD_SIGNATURE);
	CHECK_RC(enl_http_auth_check(&a, pk, "enlace/XX-OTHER", "GET", "/checkpoint", 11, NOW),
		 ENL_E_BAD_SIGNATURE);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint\0x", 13, NOW),
		 ENL_E_BAD_SIGNATURE);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint", 11, NOW + 301),
		 ENL_E_EXPIRED);
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint", 11, NOW - 301),
		 ENL_E_EXPIRED);
	a.sig[0] ^= 1;
	CHECK_RC(enl_http_auth_check(&a, pk, ORIGIN, "GET", "/checkpoint", 11, NOW),
		 ENL_E_BAD_SIGNATURE);
}

static void
test_strict_parse(void)
{
	static const char *bad[] = {
		"Enlace-Sig id=AR-UIF,v=2,t=1765000000",
		"Enlace-Sig id=AR-UIF,v=02,t=1765000000,sig=",
		"Enlace-Sig id=ar-uif,v=2,t=1765000000,sig=",
		"Enlace-Sig  id=AR-UIF,v=2,t=1765000000,sig=",
		"enlace-sig id=AR-UIF,v=2,t=1765000000,sig=",
		"Enlace-Sig v=2,id=AR-UIF,t=1765000000,sig=",
		"Enlace-Sig id=AR-UIF,v=0,t=1765000000,sig=",
		"Enlace-Sig id=AR-UIF,v=4294967296,t=1765000000,sig=",
		"Enlace-Sig id=AR-UIF,v=2,t=-1,sig=",
		"Enlace-Sig id=AR-UIF,v=2,t=99999999999999999999,sig=",
	};
	char h[ENL_HTTP_AUTH_MAX + 1], more[ENL_HTTP_AUTH_MAX + 8];
	struct enl_http_auth a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(more, sizeof(more), "%s%s", bad[i],
			 strstr(bad[i], "sig=") ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : "");
		CHECK_RC(enl_http_auth_parse(more, &a), ENL_E_MALFORMED);
	}
	REQUIRE_OK(enl_http_auth_make(me, ORIGIN, "GET", "/", 1, NOW, h));
	snprintf(more, sizeof(more), "%s=", h);	/* padding */
	CHECK_RC(enl_http_auth_parse(more, &a), ENL_E_MALFORMED);
	snprintf(more, sizeof(more), "%s ", h);
	CHECK_RC(enl_http_auth_parse(more, &a), ENL_E_MALFORMED);
	h[strlen(h) - 1] = '\0';
	CHECK_RC(enl_http_auth_parse(h, &a), ENL_E_MALFORMED);
}

int
main(void)
{
	uint8_t enc[32];

	if (enl_init() != ENL_OK || world_identity("AR-UIF", 2, &me) != ENL_OK ||
	    enl_identity_public(me, 2, pk, enc) != ENL_OK)
		return 1;
	RUN(test_round_trip);
	RUN(test_strict_parse);
	enl_identity_free(me);
	return harness_done();
}
