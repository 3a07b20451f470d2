/*
 * enlace wire: the protobuf-c schema (enlace.pb-c.h, generated from
 * proto/enlace.proto) and the one way untrusted protobuf bytes are parsed.
 */
#ifndef ENLACE_WIRE_H
#define ENLACE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "enlace.pb-c.h"
#include "enlace/proto.h"

/*
 * Parses `len` bytes as a message of `desc`, strictly: len must be at most
 * `max` (checked before anything is allocated), the bytes must decode, and
 * they must be the canonical encoding (re-encoding the decoded message
 * gives the same bytes; so no unknown fields, no duplicates, fields in
 * order). ENL_E_TOO_LARGE, ENL_E_MALFORMED, ENL_E_NOMEM. On success *out
 * is freed with protobuf_c_message_free_unpacked(*out, NULL).
 */
int enl_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
		  size_t len, size_t max, ProtobufCMessage **out) ENL_WUR;

/* Packs a message into a malloc'd buffer. ENL_E_NOMEM. */
int enl_pb_pack(const ProtobufCMessage *msg, uint8_t **out,
		size_t *out_len) ENL_WUR;

#endif
