/* Audit log entries, as enlace-audit decodes and shows them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	Enlace__AuditEntry *e = NULL;
	struct trail t = {0};

	if (sink == NULL && (enl_init() != ENL_OK || (sink = fopen("/dev/null", "w")) == NULL))
		abort();
	if (audit_entry_decode(data, size, &e) != ENL_OK)
		return 0;
	if (trail_add(&t, 0, data, size, e) != ENL_OK) {
		protobuf_c_message_free_unpacked(&e->base, NULL);
		return 0;
	}
	trail_print(&t, sink);
	{
		struct enl_json j;
		enl_json_init(&j, sink);
		enl_json_obj_begin(&j, NULL);
		trail_json(&t, &j);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	}
	trail_free(&t);
	return 0;
}
