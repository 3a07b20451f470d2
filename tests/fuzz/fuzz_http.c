/* What the log listener parses before it opens a file (the Authorization
 * header and the request's path), and what a partner's text goes through
 * (proto/text.c). Whatever the bytes: a path that parses is one
 * enl_tile_path writes, a header that parses names a valid id, the
 * terminal escape holds no control byte and is UTF-8, and so is JSON. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/httpauth.h"
#include "enlace/tlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
text_invariants(const char *s)
{
	char *e = enl_term_escape(s, false), *json = NULL;
	size_t n = 0;
	FILE *fp;

	if (e != NULL) {
		for (const char *p = e; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (!enl_utf8_valid(e, strlen(e)) || !enl_text_valid(e, strlen(e)))
			abort();
		free(e);
	}
	if (enl_text_valid(s, 1024) && !enl_body_valid(s, 1024))
		abort();	/* a line is a body too */
	if ((fp = open_memstream(&json, &n)) != NULL) {
		enl_json_put_string(fp, s);
		fclose(fp);
		if (!enl_utf8_valid(json, n))
			abort();
		free(json);
	}
}

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
	text_invariants(s);
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
