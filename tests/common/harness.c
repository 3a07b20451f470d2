#include "harness.h"

int harness_checks, harness_failed;

int
harness_done(void)
{
	fprintf(stderr, "%d checks, %d failed\n", harness_checks, harness_failed);
	return harness_failed ? 1 : 0;
}
