/* Signed notes and checkpoint bodies, as a verifier of the log reads them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enl_note_verifier v[2];
	static int ready;
	struct enl_checkpoint cp;
	size_t tl = 0;

	if (!ready) {
		if (enl_init() != ENL_OK ||
		    enl_vkey_parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
				   v[0].name, v[0].pk) != ENL_OK)
			abort();
		v[1] = v[0];	/* the same key as a cosigner (type 0x04) */
		v[1].cosigner = true;
		ready = 1;
	}
	bool oks[2];

	if (enl_note_open((const char *)data, size, v, 2, &tl, oks) == ENL_OK &&
	    enl_checkpoint_parse((const char *)data, tl, &cp) == ENL_OK)
		cp.size = 0;
	if (enl_checkpoint_parse((const char *)data, size, &cp) == ENL_OK)
		cp.size = 0;
	return 0;
}
