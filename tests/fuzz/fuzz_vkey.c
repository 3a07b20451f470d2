/* Verifier-key text (authority.pub). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char name[ENL_VKEY_NAME_MAX + 1], *text;
	uint8_t pk[32];

	if (!ready && enl_init() != ENL_OK)
		abort();
	ready = 1;
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (enl_vkey_parse(text, name, pk) == ENL_OK)
		name[0] = '\0';
	free(text);
	return 0;
}
