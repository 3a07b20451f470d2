/* INI configuration files, parsed against a table with every key type. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cfg {
	char name[64], addr[64];
	uint64_t count, wait_ms;
	size_t bytes;
};

static const struct enl_cfg_key keys[] = {
	{"s", "name", ENL_CFG_STRING, offsetof(struct cfg, name), 64, 1, 0, 0, NULL},
	{"s", "count", ENL_CFG_UINT, offsetof(struct cfg, count), 0, 0, 1, 1000, NULL},
	{"s", "bytes", ENL_CFG_BYTES, offsetof(struct cfg, bytes), 0, 0, 0, (uint64_t)1 << 40, NULL},
	{"t", "addr", ENL_CFG_ADDR, offsetof(struct cfg, addr), 64, 0, 0, 0, "tcp tls+tcp"},
	{"t", "wait", ENL_CFG_MS, offsetof(struct cfg, wait_ms), 0, 0, 0, 600000, NULL},
	{NULL, NULL, 0, 0, 0, 0, 0, 0, NULL},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c;
	char err[512], *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&c, 0, sizeof(c));
	if (enl_config_parse_text(text, "fuzz.conf", keys, &c, err, sizeof(err)) == 0)
		c.name[0] = '\0';
	free(text);
	return 0;
}
