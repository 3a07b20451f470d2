/* A log read from an untrusted source (a folder or a URL), as enlace-audit
 * verify reads it: the fuzz input is served as the entry bundle and as
 * the hash tile of a log whose checkpoint (signed here) says 3 entries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/tlog.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *data;
	size_t size;
};

static char *note;

static int
serve(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	const struct input *in = ctx;
	const uint8_t *src;
	size_t n;

	if (strcmp(rel, "checkpoint") == 0) {
		src = (const uint8_t *)note;
		n = strlen(note);
	} else if (strcmp(rel, "tile/entries/000.p/3") == 0 || strcmp(rel, "tile/0/000.p/3") == 0) {
		src = in->data;
		n = in->size;
	} else {
		return ENL_E_NOT_FOUND;
	}
	if (n > max)
		return ENL_E_TOO_LARGE;
	if ((*out = malloc(n ? n : 1)) == NULL)
		return ENL_E_NOMEM;
	memcpy(*out, src, n);
	*len = n;
	return ENL_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enl_note_verifier v;
	struct input in = {data, size};
	struct enl_tlog_source src = {&in, serve, NULL, NULL};
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	char why[600];

	if (note == NULL) {
		struct enl_identity *broker = NULL;
		struct enl_checkpoint c = {.size = 3};
		uint8_t enc[32];
		char *body = NULL;
		snprintf(c.origin, sizeof(c.origin), "enlace/OAS-BROKER");
		memset(c.root, 0x11, sizeof(c.root));
		if (enl_init() != ENL_OK || world_identity("OAS-BROKER", 1, &broker) != ENL_OK ||
		    enl_identity_public(broker, 1, v.pk, enc) != ENL_OK ||
		    enl_checkpoint_format(&c, &body) != ENL_OK ||
		    enl_note_sign(broker, c.origin, body, &note) != ENL_OK)
			abort();
		snprintf(v.name, sizeof(v.name), "%s", c.origin);
		free(body);
		enl_identity_free(broker);
	}
	if (enl_tlog_load(&src, &v, 1, &log, &cp, why, sizeof(why)) == ENL_OK)
		enl_tlog_free(log);
	return 0;
}
