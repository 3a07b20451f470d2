/*
 * Key-file decoding. No passphrase is given, so encrypted files stop
 * before Argon2id (whose cost the input would choose); unencrypted files
 * reach the secret-body parser.
 */
#include <stdint.h>
#include <stdlib.h>

#include "enlace/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct enl_identity *id = NULL;

	if (!ready && enl_init() != ENL_OK)
		abort();
	ready = 1;
	if (enl_keyfile_decode(data, size, NULL, 0, &id) == ENL_OK)
		enl_identity_free(id);
	return 0;
}
