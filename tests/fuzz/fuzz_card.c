/* Card parsing and its self-signature check. */
#include <stdint.h>
#include <stdlib.h>

#include "enlace/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct enl_card c;

	if (!ready && enl_init() != ENL_OK)
		abort();
	ready = 1;
	if (enl_card_parse(data, size, &c) != ENL_OK)
		return 0;
	return 0;
}
