/*
 * Evidence bundles, as `enlace-audit check-bundle` reads them. The
 * authority is the one the directory names (NULL), so that the seed
 * bundle's own directory verifies and the fuzzer reaches the checkpoint,
 * the entries and their proofs.
 */
#include <stdint.h>
#include <stdlib.h>

#include "evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct trail t;
	char why[600], cosigners[2048];
	uint64_t cp_size = 0;

	if (!ready) {
		if (enl_init() != ENL_OK)
			abort();
		ready = 1;
	}
	if (evidence_check(data, size, NULL, &t, &cp_size, cosigners, sizeof(cosigners), why,
			   sizeof(why)) == ENL_OK)
		trail_free(&t);
	return 0;
}
