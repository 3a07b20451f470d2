/*
 * enlace wire: the protobuf-c schema (enlace.pb-c.h, generated from
 * proto/enlace.proto) and the one way untrusted protobuf bytes are parsed.
 */
#ifndef ENLACE_WIRE_H
#define ENLACE_WIRE_H

#include <stdbool.h>
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

/*
 * Like enl_pb_unpack, but the top-level bytes field `field` is not copied
 * (it may be most of the message: a 50 MiB ciphertext): *borrowed and
 * *borrowed_len give it within `buf`, which must outlive their use, and
 * the unpacked message's own field is left empty. The same bytes are
 * accepted as by enl_pb_unpack, and the same message results. Where the
 * field is absent, or the bytes are anything but plain, it is copied as
 * enl_pb_unpack does (into the message's own field, *borrowed NULL).
 */
int enl_pb_unpack_borrowing(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
			    size_t len, size_t max, unsigned field, ProtobufCMessage **out,
			    const uint8_t **borrowed, size_t *borrowed_len) ENL_WUR;

/*
 * Like enl_pb_unpack, but every bytes value of at least `min` bytes, at any
 * depth (an attachment, an envelope inside a request), is lent from `buf`
 * instead of copied: the message points into buf, which must outlive it,
 * and is freed with enl_pb_free_lent and the same buf and len. The same
 * bytes are accepted as by enl_pb_unpack, and the same message results.
 * Bytes out of the ordinary (see enl_pb_unpack_borrowing) are copied as
 * enl_pb_unpack does; enl_pb_free_lent frees such a message as well.
 */
#define ENL_LEND_MIN (64u << 10)	/* what the programs lend: a copy costs more */
int enl_pb_unpack_lending(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
			  size_t len, size_t max, size_t min, ProtobufCMessage **out) ENL_WUR;
void enl_pb_free_lent(ProtobufCMessage *msg, const uint8_t *buf, size_t len);
/* Empties the values lent from buf (they read as absent), so that buf may
 * be freed before msg. */
void enl_pb_unlend(ProtobufCMessage *msg, const uint8_t *buf, size_t len);

/* Varints in protobuf's encoding; enl_varint_get accepts only the
 * shortest form (the only one enl_pb_unpack accepts). */
size_t enl_varint_put(uint8_t *p, uint64_t v);
bool enl_varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *v);

/*
 * The one converter between a header and its protobuf. enl_header_to_pb
 * fills *w (with *hd its handling and rcpt its recipients) pointing into
 * h, valid while h is. enl_header_from_pb copies a decoded header into
 * *h, checking every field and the header's rules (docs/FORMATS.md):
 * ENL_E_MALFORMED, or ENL_E_UNSUPPORTED for a format version not known.
 */
void enl_header_to_pb(const struct enl_header *h, Enlace__Header *w, Enlace__Handling *hd,
		      char *rcpt[ENL_MAX_RECIPIENTS]);
int enl_header_from_pb(const Enlace__Header *w, struct enl_header *h) ENL_WUR;

/* The digest an envelope's signature covers (docs/FORMATS.md,
 * "Envelope"): for tests and tools that build envelopes by hand. */
void enl_envelope_digest(const Enlace__Envelope *e, uint8_t out[32]);

/* Packs a message into a malloc'd buffer. ENL_E_NOMEM. */
int enl_pb_pack(const ProtobufCMessage *msg, uint8_t **out,
		size_t *out_len) ENL_WUR;

#endif
