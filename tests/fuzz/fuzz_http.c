/* What the log listener parses before it opens a file: the Authorization
 * header and the request's path. Whatever the bytes, a path that parses
 * must be one of the tile paths enl_tile_path writes, and a header that
 * parses must name a valid id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/httpauth.h"
#include "enlace/tlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pk[32] = {1};
	struct enl_http_auth a;
	char s[1024], again[ENL_TILE_PATH_MAX];
	uint64_t index;
	unsigned width;
	int level;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (enl_tile_path_parse(s, &level, &index, &width)) {
		enl_tile_path(level, index, width, again);
		if (strcmp(again, s) != 0 || strstr(s, "..") != NULL || width >= ENL_TILE_WIDTH)
			abort();
	}
	if (enl_http_auth_parse(s, &a) == ENL_OK) {
		if (!enl_id_valid(a.id) || a.version == 0)
			abort();
		/* a parsed header is checked against any request without harm */
		if (enl_http_auth_check(&a, pk, "enlace/OAS-BROKER", "GET", s, size, a.time) == ENL_OK)
			abort();	/* no one holds the secret key of pk */
	}
	return 0;
}
