/* Signed notes and checkpoint bodies, as a verifier of the log reads them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enl_note_verifier v;
	static int ready;
	struct enl_checkpoint cp;
	size_t tl = 0;
	bool ok;

	if (!ready) {
		if (enl_init() != ENL_OK ||
		    enl_vkey_parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
				   v.name, v.pk) != ENL_OK)
			abort();
		ready = 1;
	}
	if (enl_note_open((const char *)data, size, &v, 1, &tl, &ok) == ENL_OK &&
	    enl_checkpoint_parse((const char *)data, tl, &cp) == ENL_OK)
		cp.size = 0;
	if (enl_checkpoint_parse((const char *)data, size, &cp) == ENL_OK)
		cp.size = 0;
	return 0;
}
