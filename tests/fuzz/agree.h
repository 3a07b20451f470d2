/*
 * The lending parse must accept what the copying parse accepts, and
 * nothing else, and give the same message: aborts where they differ.
 * A small `min` lends nearly every bytes value, so that the rewriting
 * of lengths around them is tried on every input.
 */
#ifndef ENLACE_FUZZ_AGREE_H
#define ENLACE_FUZZ_AGREE_H

#include <stdlib.h>
#include <string.h>

#include "enlace/wire.h"
#include "touch.h"

static inline void
lending_agrees(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *a = NULL, *b = NULL;
	int ra = enl_pb_unpack(d, data, size, 1 << 21, &a);
	int rb = enl_pb_unpack_lending(d, data, size, 1 << 21, 17, &b);

	if (ra != rb)
		abort();
	if (ra == ENL_OK) {
		uint8_t *pb = NULL;
		size_t lb = 0;
		if (enl_pb_pack(b, &pb, &lb) != ENL_OK || lb != size ||
		    memcmp(pb, data, size) != 0)
			abort();
		free(pb);
		protobuf_c_message_free_unpacked(a, NULL);
		enl_pb_free_lent(b, data, size);
	}
}

#endif
