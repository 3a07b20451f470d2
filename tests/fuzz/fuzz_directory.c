/* Directory parsing, pinned to the test world's authority and not. */
#include <stdint.h>
#include <stdlib.h>

#include "enlace/keys.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct enl_identity *auth;
	static uint8_t pk[32];
	struct enl_dir_check pinned = {pk, 0, WORLD_TIME + 1}, any = {NULL, 0, 0};
	struct enl_directory *d = NULL;

	if (auth == NULL) {
		uint8_t epk[32];
		if (enl_init() != ENL_OK || world_identity("ENLACE-AUTHORITY", 1, &auth) != ENL_OK ||
		    enl_identity_public(auth, 1, pk, epk) != ENL_OK)
			abort();
	}
	if (enl_directory_parse(data, size, &pinned, &d) == ENL_OK) {
		struct enl_keyring kr = enl_directory_keyring(d);
		uint8_t key[32];
		uint32_t v;
		if (kr.signing_key(kr.ctx, "AR-UIF", 1, key) == ENL_OK &&
		    kr.encryption_key(kr.ctx, "BR-PF", &v, key) == ENL_OK)
			key[0] = 0;
		enl_directory_free(d);
	}
	d = NULL;
	if (enl_directory_parse(data, size, &any, &d) == ENL_OK)
		enl_directory_free(d);
	return 0;
}
