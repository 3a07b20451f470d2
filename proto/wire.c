#include <stdlib.h>
#include <string.h>

#include "enlace/wire.h"

int
enl_pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);

	if (buf == NULL)
		return ENL_E_NOMEM;
	if (protobuf_c_message_pack(msg, buf) != n) {
		free(buf);
		return ENL_E_MALFORMED;
	}
	*out = buf;
	*out_len = n;
	return ENL_OK;
}

int
enl_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
	      size_t len, size_t max, ProtobufCMessage **out)
{
	ProtobufCMessage *msg = NULL;
	uint8_t *again = NULL;
	size_t again_len = 0;
	int rc;

	if (len > max)
		return ENL_E_TOO_LARGE;
	msg = protobuf_c_message_unpack(desc, NULL, len, buf);
	if (msg == NULL)
		return ENL_E_MALFORMED;
	/* The packed size is cheap; compare bytes only when it matches. */
	if (protobuf_c_message_get_packed_size(msg) != len) {
		rc = ENL_E_MALFORMED;
		goto out;
	}
	if ((rc = enl_pb_pack(msg, &again, &again_len)) != ENL_OK)
		goto out;
	if (again_len != len || (len > 0 && memcmp(again, buf, len) != 0)) {
		rc = ENL_E_MALFORMED;
		goto out;
	}
	*out = msg;
	msg = NULL;
out:
	free(again);
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
	return rc;
}
