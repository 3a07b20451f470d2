#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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

	/* up to 10 bytes: a negative int32 or int64 takes all ten */
	for (unsigned shift = 0; shift <= 63 && *off < len; shift += 7) {
		uint8_t b = p[(*off)++];
		if (shift == 63 && b > 1)
			return false;	/* past 64 bits */
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

static bool counts_ok(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
		      int depth);

int
enl_pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
	      size_t len, size_t max, ProtobufCMessage **out)
{
	struct compare_buffer cmp = {{compare_append}, buf, len, 0, false};
	ProtobufCMessage *msg;

	if (len > max)
		return ENL_E_TOO_LARGE;
	if (!counts_ok(desc, buf, len, 0))
		return ENL_E_MALFORMED;
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
 * One record of buf[*off, end) in its plain form: its key (field number and
 * wire type), and for a length-delimited one where its value starts
 * (*data) and its length (*n); *off moves past it. False if it is anything
 * but plain: a field number of 0 or beyond 2^29 - 1, a varint not in its
 * shortest form, a value past the end, a group.
 */
static bool
record_next(const uint8_t *buf, size_t end, size_t *off, uint64_t *key, size_t *data,
	    uint64_t *n)
{
	size_t rec = *off;

	if (!enl_varint_get(buf, end, off, key) || *off - rec > 5 || (*key >> 3) == 0 ||
	    (*key >> 3) > 0x1fffffff)
		return false;
	switch (*key & 7) {
	case 0:
		return enl_varint_get(buf, end, off, n);
	case 1:
	case 5:
		*n = (*key & 7) == 1 ? 8 : 4;
		break;
	case 2:
		if (!enl_varint_get(buf, end, off, n))
			return false;
		*data = *off;
		break;
	default:
		return false;
	}
	if (*n > end - *off)
		return false;
	*off += (size_t)*n;
	return true;
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
		size_t rec = off, at = 0;
		uint64_t key, n = 0;
		if (!record_next(buf, len, &off, &key, &at, &n))
			return false;
		if ((key >> 3) == field && ((key & 7) != 2 || found || later))
			return false;
		if ((key >> 3) < field && found)
			return false;
		later = later || (key >> 3) > field;
		if ((key >> 3) == field) {
			if (n == 0)	/* proto3 leaves an empty field out */
				return false;
			found = true;
			*start = rec;
			*data = at;
			*end = off;
		}
	}
	return found;
}

/*
 * How many elements a repeated field may have, checked on the bytes
 * before protobuf-c allocates anything for them: each element costs an
 * allocation or more, so a few MiB of small elements would cost hundreds.
 * The schema's own limits (docs/FORMATS.md); 1024 for any other.
 */
static size_t
repeated_max(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	static const struct {
		const ProtobufCMessageDescriptor *d;
		const char *field;
		size_t max;
	} limits[] = {
		{&enlace__card__descriptor, "keys", ENL_MAX_KEY_VERSIONS},
		{&enlace__directory__descriptor, "cards", 10000},
		{&enlace__directory__descriptor, "revocations", 100000},
		{&enlace__header__descriptor, "recipients", ENL_MAX_RECIPIENTS},
		{&enlace__envelope__descriptor, "wraps", ENL_MAX_RECIPIENTS},
		{&enlace__payload__descriptor, "attachments", ENL_MAX_ATTACHMENTS},
		{&enlace__ack_list__descriptor, "acks", 1024},
		{&enlace__receipt_body__descriptor, "recipients", ENL_MAX_RECIPIENTS},
		{&enlace__receipt_body__descriptor, "inclusion", 64},
		{&enlace__signed_receipt__descriptor, "batch_path", 64},
		{&enlace__response__descriptor, "envelopes", 10000},
		{&enlace__response__descriptor, "consistency", 128},
		{&enlace__ctl_send__descriptor, "to", ENL_MAX_RECIPIENTS},
		{&enlace__ctl_send__descriptor, "attachments", ENL_MAX_ATTACHMENTS},
		{&enlace__ctl_item__descriptor, "recipients", ENL_MAX_RECIPIENTS},
		{&enlace__ctl_response__descriptor, "items", (size_t)1 << 22},	/* the local agent's */
		{&enlace__evidence_entry__descriptor, "inclusion", 64},
		{&enlace__evidence_bundle__descriptor, "entries", (size_t)1 << 20},
	};

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		if (limits[i].d == d && strcmp(limits[i].field, f->name) == 0)
			return limits[i].max;
	return 1024;
}

#define NEST_MAX 16

/* The repeated fields of buf (a message of d), at every depth, within
 * repeated_max. False too for bytes that are not plain (see record_next):
 * the canonical parse refuses those anyway, after allocating. */
static bool
counts_ok(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int depth)
{
	size_t counts[64] = {0}, limit[64], off = 0;

	if (depth > NEST_MAX || d->n_fields > 64)
		return depth <= NEST_MAX;	/* (no message of ours has 64 fields) */
	while (off < len) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n = 0;
		size_t at = 0;
		if (!record_next(buf, len, &off, &key, &at, &n))
			return false;
		if ((f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))) == NULL)
			continue;	/* unknown: refused by the canonical check */
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t i = (size_t)(f - d->fields);
			if (counts[i] == 0)	/* looked up once per field */
				limit[i] = repeated_max(d, f);
			if (++counts[i] > limit[i])
				return false;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && (key & 7) == 2 &&
		    !counts_ok(f->descriptor, buf + at, (size_t)n, depth + 1))
			return false;
	}
	return true;
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

/* ---- lending: every large bytes field left in the caller's bytes ---- */

/*
 * Visits every bytes value of a decoded message and of the messages in it,
 * in the order protobuf-c packs them (fields in the descriptor's order,
 * repeated values in theirs), skipping the members of a oneof that is set
 * to another. Stops at the first visit that returns false.
 */
typedef bool (*bytes_visit)(ProtobufCBinaryData *v, void *arg);

static bool
walk_bytes(ProtobufCMessage *m, bytes_visit visit, void *arg)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *base = (char *)m;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_BYTES)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			void *arr = *(void **)(base + f->offset);
			for (size_t j = 0; j < n; j++) {
				bool go = f->type == PROTOBUF_C_TYPE_BYTES
						  ? visit((ProtobufCBinaryData *)arr + j, arg)
						  : ((ProtobufCMessage **)arr)[j] == NULL ||
							    walk_bytes(((ProtobufCMessage **)arr)[j],
								       visit, arg);
				if (!go)
					return false;
			}
		} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
			if (!visit((ProtobufCBinaryData *)(base + f->offset), arg))
				return false;
		} else {
			ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
			if (sub != NULL && !walk_bytes(sub, visit, arg))
				return false;
		}
	}
	return true;
}

#define LEND_DEPTH 16		/* deeper than any message of the schema */
#define MARK_KEY 12		/* random bytes that name a placeholder... */
#define MARK_LEN (MARK_KEY + 4)	/* ...and its number */

struct hole {
	size_t off, len;	/* of the value, within the caller's bytes */
};

struct lend {
	const uint8_t *buf;
	size_t min;		/* bytes values this long or longer are lent */
	uint8_t mark[MARK_KEY];
	ENL_VEC(struct hole) holes;	/* found; each is a value of >= min bytes */
	size_t next;		/* the next placeholder written, or matched */
	bool nomem;
};

enum pass { SIZE, FIND, WRITE };

static size_t
varint_len(uint64_t v)
{
	uint8_t tmp[10];

	return enl_varint_put(tmp, v);
}

static bool
put(uint8_t *out, size_t *pos, const void *p, size_t n)
{
	if (out != NULL && n > 0)
		memcpy(out + *pos, p, n);
	*pos += n;
	return true;
}

/* A lent value's record in the shadow: its key, then a placeholder that
 * names it (FIND records where the value is). */
static bool
hole(struct lend *l, enum pass pass, size_t data, size_t n, uint8_t *out, size_t *pos,
     const uint8_t *key, size_t key_len)
{
	uint8_t ph[1 + MARK_LEN];
	uint32_t k = 0;

	if (pass == FIND) {
		struct hole *h = enl_vec_push(&l->holes);
		if (h == NULL) {
			l->nomem = true;
			return false;
		}
		*h = (struct hole){data, n};
	}
	if (pass == WRITE)
		k = (uint32_t)l->next++;
	ph[0] = MARK_LEN;
	memcpy(ph + 1, l->mark, MARK_KEY);
	for (int b = 0; b < 4; b++)
		ph[1 + MARK_KEY + b] = (uint8_t)(k >> (8 * b));
	put(out, pos, key, key_len);
	put(out, pos, ph, sizeof(ph));
	return true;
}

/*
 * The records [start, end) of a message of `d`, rewritten with every bytes
 * value of at least l->min bytes (at any depth) replaced by a placeholder
 * of MARK_LEN bytes, and the lengths of the messages around it made to
 * match: its size in *size (SIZE), the holes recorded as well (FIND), or
 * written at out (WRITE). False if the bytes are anything but plain (see
 * find_record): the copying parse then decides.
 */
static bool
shadow(struct lend *l, const ProtobufCMessageDescriptor *d, size_t start, size_t end,
       enum pass pass, uint8_t *out, size_t *size, int depth)
{
	const uint8_t *buf = l->buf;
	size_t off = start, pos = 0;

	if (depth > LEND_DEPTH)
		return false;
	while (off < end) {
		size_t rec = off, data = 0;
		uint64_t key, n = 0;
		const ProtobufCFieldDescriptor *f;
		if (!record_next(buf, end, &off, &key, &data, &n))
			return false;
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
		if (f == NULL)
			return false;	/* unknown: the copying parse refuses it */
		if ((key & 7) == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE) {
			size_t sub = 0;
			uint8_t pre[10];
			if (!shadow(l, f->descriptor, data, off, pass == FIND ? FIND : SIZE, NULL,
				    &sub, depth + 1))
				return false;
			put(out, &pos, buf + rec, data - rec - varint_len(n));
			put(out, &pos, pre, enl_varint_put(pre, sub));
			if (pass == WRITE) {
				size_t w = 0;
				shadow(l, f->descriptor, data, off, WRITE, out + pos, &w, depth + 1);
			}
			pos += sub;
		} else if ((key & 7) == 2 && f->type == PROTOBUF_C_TYPE_BYTES && n >= l->min) {
			if (!hole(l, pass, data, (size_t)n, out, &pos, buf + rec,
				  data - rec - varint_len(n)))
				return false;
		} else {
			put(out, &pos, buf + rec, off - rec);
		}
	}
	*size = pos;
	return true;
}

/* A placeholder, replaced by the value it stands for, in its place. */
static bool
lend_back(ProtobufCBinaryData *v, void *arg)
{
	struct lend *l = arg;
	uint32_t k = 0;

	if (v->len != MARK_LEN || memcmp(v->data, l->mark, MARK_KEY) != 0)
		return true;
	for (int b = 0; b < 4; b++)
		k |= (uint32_t)v->data[MARK_KEY + b] << (8 * b);
	if (k != l->next || k >= l->holes.n)
		return false;
	free(v->data);
	v->data = (uint8_t *)l->buf + l->holes.v[k].off;
	v->len = l->holes.v[k].len;
	l->next++;
	return true;
}

struct range {
	uintptr_t start, end;
};

static bool
unlend(ProtobufCBinaryData *v, void *arg)
{
	const struct range *r = arg;
	uintptr_t p = (uintptr_t)v->data;

	if (p >= r->start && p < r->end) {
		v->data = NULL;
		v->len = 0;
	}
	return true;
}

void
enl_pb_unlend(ProtobufCMessage *msg, const uint8_t *buf, size_t len)
{
	struct range r = {(uintptr_t)buf, (uintptr_t)buf + len};

	if (msg != NULL)
		walk_bytes(msg, unlend, &r);
}

void
enl_pb_free_lent(ProtobufCMessage *msg, const uint8_t *buf, size_t len)
{
	if (msg == NULL)
		return;
	enl_pb_unlend(msg, buf, len);
	protobuf_c_message_free_unpacked(msg, NULL);
}

int
enl_pb_unpack_lending(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
		      size_t len, size_t max, size_t min, ProtobufCMessage **out)
{
	/* each hole is a value of >= MARK_LEN + 1 bytes: len bounds their number */
	struct lend l = {.buf = buf, .min = min < MARK_LEN + 1 ? MARK_LEN + 1 : min,
			 .holes = ENL_VEC_INIT(len / (MARK_LEN + 1) + 1)};
	uint8_t *sh = NULL;
	size_t shlen = 0, w = 0;
	int rc;

	if (len > max)
		return ENL_E_TOO_LARGE;
	randombytes_buf(l.mark, sizeof(l.mark));
	if (!shadow(&l, desc, 0, len, FIND, NULL, &shlen, 0) || l.holes.n == 0) {
		enl_vec_free(&l.holes);
		return l.nomem ? ENL_E_NOMEM : enl_pb_unpack(desc, buf, len, max, out);
	}
	if ((sh = malloc(shlen + 1)) == NULL) {
		enl_vec_free(&l.holes);
		return ENL_E_NOMEM;
	}
	if (!shadow(&l, desc, 0, len, WRITE, sh, &w, 0) || w != shlen) {
		free(sh);	/* cannot happen: the same walk as FIND's */
		enl_vec_free(&l.holes);
		return enl_pb_unpack(desc, buf, len, max, out);
	}
	/* The placeholders change no record's kind, and every length around
	 * them is written in its shortest form as the input's were: the
	 * shadow is canonical if and only if the input is. */
	rc = enl_pb_unpack(desc, sh, shlen, max, out);
	free(sh);
	if (rc == ENL_OK) {
		l.next = 0;
		if (!walk_bytes(*out, lend_back, &l) || l.next != l.holes.n) {
			/* cannot happen unless the walk and the parse disagree on
			 * the order: the copying parse decides */
			enl_pb_free_lent(*out, buf, len);
			*out = NULL;
			rc = enl_pb_unpack(desc, buf, len, max, out);
		}
	}
	enl_vec_free(&l.holes);
	return rc;
}
