#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/wire.h"

size_t
enl_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

bool
enl_varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	uint64_t r = 0;
	size_t start = *off;
	uint8_t tmp[10];

	for (unsigned shift = 0; shift < 63 && *off < len; shift += 7) {
		uint8_t b = p[(*off)++];
		r |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = r;
			return enl_varint_put(tmp, r) == *off - start;
		}
	}
	return false;
}

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

/* protobuf-c keeps the fields it does not know, and packs them again
 * after the others: the canonical check alone lets them through. */
static bool
has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	if (m->n_unknown_fields != 0)
		return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;	/* another member of the oneof is set */
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v =
				*(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++)
				if (v[j] != NULL && has_unknown(v[j]))
					return true;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(base + f->offset);
			if (sub != NULL && has_unknown(sub))
				return true;
		}
	}
	return false;
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
	    cmp.differs || cmp.pos != len || has_unknown(msg)) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return ENL_E_MALFORMED;
	}
	*out = msg;
	return ENL_OK;
}

/*
 * Finds the one record of top-level field `field` (length-delimited, not
 * empty) where the canonical encoding puts it: every record before it of
 * a lower field number, every one after of a higher. False if it is not
 * there so, or if anything in the bytes is out of the ordinary (a field
 * number beyond 2^29 - 1, a varint not in its shortest form, a group):
 * such bytes are left to the copying parse, whose verdict then stands.
 */
static bool
find_record(const uint8_t *buf, size_t len, unsigned field, size_t *start, size_t *end,
	    size_t *data)
{
	size_t off = 0;
	bool found = false, later = false;

	while (off < len) {
		size_t rec = off;
		uint64_t key, n;
		if (!enl_varint_get(buf, len, &off, &key) || off - rec > 5 || (key >> 3) == 0 ||
		    (key >> 3) > 0x1fffffff)
			return false;
		if ((key >> 3) == field && ((key & 7) != 2 || found || later))
			return false;
		if ((key >> 3) < field && found)
			return false;
		later = later || (key >> 3) > field;
		switch (key & 7) {
		case 0:
			if (!enl_varint_get(buf, len, &off, &n))
				return false;
			break;
		case 1:
		case 5:
			n = (key & 7) == 1 ? 8 : 4;
			if (n > len - off)
				return false;
			off += (size_t)n;
			break;
		case 2:
			if (!enl_varint_get(buf, len, &off, &n) || n > len - off)
				return false;
			if ((key >> 3) == field) {
				if (n == 0)	/* proto3 leaves an empty field out */
					return false;
				found = true;
				*start = rec;
				*data = off;
				*end = off + (size_t)n;
			}
			off += (size_t)n;
			break;
		default:
			return false;
		}
	}
	return found;
}

int
enl_pb_unpack_borrowing(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
			size_t len, size_t max, unsigned field, ProtobufCMessage **out,
			const uint8_t **borrowed, size_t *borrowed_len)
{
	size_t start = 0, end = 0, data = 0;
	uint8_t *rest;
	int rc;

	*borrowed = NULL;
	*borrowed_len = 0;
	if (len > max)
		return ENL_E_TOO_LARGE;
	/* Records are independent: without that one record, the rest parses
	 * to the same message, and is canonical if and only if the whole is. */
	if (!find_record(buf, len, field, &start, &end, &data))
		return enl_pb_unpack(desc, buf, len, max, out);
	if ((rest = malloc(len - (end - start) + 1)) == NULL)
		return ENL_E_NOMEM;
	memcpy(rest, buf, start);
	memcpy(rest + start, buf + end, len - end);
	rc = enl_pb_unpack(desc, rest, len - (end - start), max, out);
	free(rest);
	if (rc == ENL_OK) {
		*borrowed = buf + data;
		*borrowed_len = end - data;
	}
	return rc;
}
