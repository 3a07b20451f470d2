/*
 * bundle_flip BUNDLE AUTHORITY_PUB: the bundle must check, and every copy
 * of it with one byte changed (each bit pattern 0x01, 0x80, 0xff in turn)
 * must not. Prints how many changed copies were refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"

int
main(int argc, char **argv)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	uint8_t apk[32], *buf = NULL;
	char why[600], cosigners[2048];
	struct trail t;
	uint64_t size;
	size_t len = 0, refused = 0, tried = 0;

	if (argc != 3 || enl_init() != ENL_OK || enl_authority_pub_read(argv[2], apk) != ENL_OK ||
	    enl_file_read(argv[1], EVIDENCE_MAX, &buf, &len) != ENL_OK) {
		fprintf(stderr, "usage: bundle_flip BUNDLE AUTHORITY_PUB\n");
		return 2;
	}
	if (evidence_check(buf, len, apk, &t, &size, cosigners, sizeof(cosigners), why,
			   sizeof(why)) != ENL_OK) {
		fprintf(stderr, "the bundle itself does not check: %s\n", why);
		free(buf);
		return 1;
	}
	trail_free(&t);
	for (size_t i = 0; i < len; i++)
		for (size_t m = 0; m < sizeof(masks); m++) {
			buf[i] ^= masks[m];
			tried++;
			if (evidence_check(buf, len, apk, &t, &size, cosigners, sizeof(cosigners), why,
					   sizeof(why)) != ENL_OK)
				refused++;
			else {
				fprintf(stderr, "byte %zu ^ 0x%02x: still checks\n", i, masks[m]);
				trail_free(&t);
			}
			buf[i] ^= masks[m];
		}
	printf("%zu of %zu changed bundles refused (%zu bytes)\n", refused, tried, len);
	free(buf);
	return refused == tried ? 0 : 1;
}
