/* The consent messages an agent and the broker decode from an envelope's
 * attachment (ConsentRequest, ConsentDecision). */
#include <stdint.h>
#include <stdlib.h>

#include "enlace/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Enlace__ConsentRequest *r = NULL;
	Enlace__ConsentDecision *d = NULL;

	if (enl_pb_unpack(&enlace__consent_request__descriptor, data, size, 4096,
			  (ProtobufCMessage **)&r) == ENL_OK)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	if (enl_pb_unpack(&enlace__consent_decision__descriptor, data, size, 4096,
			  (ProtobufCMessage **)&d) == ENL_OK) {
		/* what the broker requires of a decision before it looks further */
		volatile bool ok = d->request_id.len == 16 && d->original_hash.len == 32 &&
				   enl_id_valid(d->recipient) && enl_text_valid(d->note, 1000);
		(void)ok;
		protobuf_c_message_free_unpacked(&d->base, NULL);
	}
	return 0;
}
