#include <stdbool.h>
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

/* A ProtobufCBuffer that compares what is packed into it with the input,
 * so the canonical check needs no second copy of a large message. */
struct compare_buffer {
	ProtobufCBuffer base;
	const uint8_t *want;
	size_t len, pos;
	bool differs;
};

static void
compare_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct compare_buffer *c = (struct compare_buffer *)b;

	if (c->differs || len > c->len - c->pos ||
	    (len > 0 && memcmp(c->want + c->pos, data, len) != 0)) {
		c->differs = true;
		return;
	}
	c->pos += len;
}

int
enl_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
	      size_t len, size_t max, ProtobufCMessage **out)
{
	struct compare_buffer cmp = {{compare_append}, buf, len, 0, false};
	ProtobufCMessage *msg;

	if (len > max)
		return ENL_E_TOO_LARGE;
	msg = protobuf_c_message_unpack(desc, NULL, len, buf);
	if (msg == NULL)
		return ENL_E_MALFORMED;
	if (protobuf_c_message_get_packed_size(msg) != len ||
	    protobuf_c_message_pack_to_buffer(msg, &cmp.base) != len ||
	    cmp.differs || cmp.pos != len) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return ENL_E_MALFORMED;
	}
	*out = msg;
	return ENL_OK;
}
