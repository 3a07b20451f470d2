/* Routing policy files, as the broker and `policy check` read them; a
 * policy that parses is also linted and asked to decide. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	struct policy *p = NULL;
	struct policy_decision d;
	struct policy_query q = {"AR-UIF", "AR", 1, "BR-PF", "BR", 2, 1, 3, 1024, false};
	char err[512];

	if (sink == NULL && (enl_init() != ENL_OK || (sink = fopen("/dev/null", "w")) == NULL))
		abort();
	if (policy_parse((const char *)data, size, &p, err, sizeof(err)) != ENL_OK)
		return 0;
	policy_decide(p, &q, &d);
	policy_explain(p, &q, sink);
	(void)policy_lint(p, NULL, sink);
	policy_free(p);
	return 0;
}
