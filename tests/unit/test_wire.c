/*
 * The lending parse (enl_pb_unpack_lending) against the copying one: the
 * same verdict on every input, the same message, and large bytes values
 * left in the caller's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/wire.h"
#include "harness.h"

#define MAX (64u << 20)

static bool
lent(const ProtobufCBinaryData *v, const uint8_t *buf, size_t len)
{
	return v->data >= buf && v->data < buf + len;
}

/*
 * Parses `buf` both ways; they must agree, and a message both accept must
 * pack to the same bytes (the input). The lending parse's message, if
 * *keep, is handed back (free it with enl_pb_free_lent).
 */
static int
both(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, size_t min,
     ProtobufCMessage **keep)
{
	ProtobufCMessage *a = NULL, *b = NULL;
	int ra = enl_pb_unpack(d, buf, len, MAX, &a);
	int rb = enl_pb_unpack_lending(d, buf, len, MAX, min, &b);

	CHECK(ra == rb);
	if (ra == ENL_OK && rb == ENL_OK) {
		uint8_t *pa = NULL, *pb = NULL;
		size_t la = 0, lb = 0;
		CHECK_RC(enl_pb_pack(a, &pa, &la), ENL_OK);
		CHECK_RC(enl_pb_pack(b, &pb, &lb), ENL_OK);
		CHECK(la == len && lb == len && pa != NULL && pb != NULL &&
		      memcmp(pa, buf, len) == 0 && memcmp(pb, buf, len) == 0);
		free(pa);
		free(pb);
	}
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	if (keep != NULL && rb == ENL_OK)
		*keep = b;
	else
		enl_pb_free_lent(b, buf, len);
	return rb;
}

static uint8_t *
random_bytes(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	if (p != NULL)
		randombytes_buf(p, n);
	return p;
}

/* A payload with attachments of `sizes` (and a forwarded original of
 * `orig` bytes), packed into *out. */
static int
payload(const size_t *sizes, size_t n, size_t orig, uint8_t **out, size_t *len)
{
	Enlace__Payload p = ENLACE__PAYLOAD__INIT;
	Enlace__Attachment at[8], *ptrs[8];
	int rc;

	p.subject = "lent, not copied";
	p.body = "the body";
	for (size_t i = 0; i < n; i++) {
		enlace__attachment__init(&at[i]);
		at[i].name = "file.bin";
		at[i].media_type = "application/octet-stream";
		at[i].data.len = sizes[i];
		at[i].data.data = random_bytes(sizes[i]);
		ptrs[i] = &at[i];
	}
	p.n_attachments = n;
	p.attachments = ptrs;
	p.original.len = orig;
	p.original.data = orig ? random_bytes(orig) : NULL;
	rc = enl_pb_pack(&p.base, out, len);
	for (size_t i = 0; i < n; i++)
		free(at[i].data.data);
	free(p.original.data);
	return rc;
}

static void
test_payload_lent(void)
{
	const size_t sizes[] = {5, 100000, 0, 70000, 65536, 65535};
	Enlace__Payload *p = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	REQUIRE_OK(payload(sizes, 6, 80000, &buf, &len));
	CHECK_RC(both(&enlace__payload__descriptor, buf, len, 65536, (ProtobufCMessage **)&p),
		 ENL_OK);
	REQUIRE(p != NULL && p->n_attachments == 6);
	for (size_t i = 0; i < 6; i++) {
		CHECK(p->attachments[i]->data.len == sizes[i]);
		CHECK(lent(&p->attachments[i]->data, buf, len) == (sizes[i] >= 65536));
	}
	CHECK(p->original.len == 80000 && lent(&p->original, buf, len));
	CHECK(strcmp(p->subject, "lent, not copied") == 0);
	enl_pb_free_lent(&p->base, buf, len);
	/* nothing large enough: parsed as enl_pb_unpack does, freed the same way */
	p = NULL;
	CHECK_RC(both(&enlace__payload__descriptor, buf, len, 1u << 20,
		      (ProtobufCMessage **)&p), ENL_OK);
	REQUIRE(p != NULL);
	for (size_t i = 0; i < 6; i++)
		CHECK(!lent(&p->attachments[i]->data, buf, len));
	enl_pb_free_lent(&p->base, buf, len);
	/* its bytes freed first: the lent values are emptied, the rest stays */
	{
		uint8_t *copy = malloc(len);
		p = NULL;
		REQUIRE(copy != NULL);
		memcpy(copy, buf, len);
		CHECK_RC(enl_pb_unpack_lending(&enlace__payload__descriptor, copy, len, MAX, 65536,
					       (ProtobufCMessage **)&p), ENL_OK);
		REQUIRE(p != NULL);
		enl_pb_unlend(&p->base, copy, len);
		free(copy);
		CHECK(p->attachments[1]->data.data == NULL && p->attachments[1]->data.len == 0);
		CHECK(p->attachments[0]->data.len == 5 && p->original.len == 0);
		CHECK(strcmp(p->subject, "lent, not copied") == 0);
		protobuf_c_message_free_unpacked(&p->base, NULL);
	}
	/* too large for `max`: refused before anything is parsed */
	{
		ProtobufCMessage *m = NULL;
		CHECK_RC(enl_pb_unpack_lending(&enlace__payload__descriptor, buf, len, len - 1,
					       65536, &m), ENL_E_TOO_LARGE);
		CHECK(m == NULL);
	}
	free(buf);
}

/* An envelope inside a request inside the oneof; envelopes, a receipt
 * and a directory inside a response. */
static void
test_nested_lent(void)
{
	Enlace__Request r = ENLACE__REQUEST__INIT;
	Enlace__SubmitReq s = ENLACE__SUBMIT_REQ__INIT;
	Enlace__Response resp = ENLACE__RESPONSE__INIT;
	Enlace__SignedReceipt sg = ENLACE__SIGNED_RECEIPT__INIT;
	ProtobufCBinaryData envs[3];
	Enlace__Request *rq = NULL;
	Enlace__Response *rs = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	s.envelope.len = 300000;
	REQUIRE((s.envelope.data = random_bytes(s.envelope.len)) != NULL);
	r.body_case = ENLACE__REQUEST__BODY_SUBMIT;
	r.submit = &s;
	REQUIRE_OK(enl_pb_pack(&r.base, &buf, &len));
	CHECK_RC(both(&enlace__request__descriptor, buf, len, 4096, (ProtobufCMessage **)&rq),
		 ENL_OK);
	REQUIRE(rq != NULL && rq->submit != NULL);
	CHECK(lent(&rq->submit->envelope, buf, len));
	CHECK(memcmp(rq->submit->envelope.data, s.envelope.data, s.envelope.len) == 0);
	enl_pb_free_lent(&rq->base, buf, len);
	free(buf);
	free(s.envelope.data);

	envs[0].len = 5000;
	envs[1].len = 100;
	envs[2].len = 20000;
	for (int i = 0; i < 3; i++)
		REQUIRE((envs[i].data = random_bytes(envs[i].len)) != NULL);
	sg.body.len = 8000;
	REQUIRE((sg.body.data = random_bytes(sg.body.len)) != NULL);
	sg.signature.len = 64;
	REQUIRE((sg.signature.data = random_bytes(64)) != NULL);
	resp.reason = "ok";
	resp.receipt = &sg;
	resp.n_envelopes = 3;
	resp.envelopes = envs;
	resp.directory = envs[2];
	REQUIRE_OK(enl_pb_pack(&resp.base, &buf, &len));
	CHECK_RC(both(&enlace__response__descriptor, buf, len, 4096,
		      (ProtobufCMessage **)&rs), ENL_OK);
	REQUIRE(rs != NULL && rs->n_envelopes == 3 && rs->receipt != NULL);
	CHECK(lent(&rs->envelopes[0], buf, len) && !lent(&rs->envelopes[1], buf, len) &&
	      lent(&rs->envelopes[2], buf, len));
	CHECK(lent(&rs->receipt->body, buf, len) && !lent(&rs->receipt->signature, buf, len));
	CHECK(lent(&rs->directory, buf, len));
	for (int i = 0; i < 3; i++)
		CHECK(rs->envelopes[i].len == envs[i].len &&
		      memcmp(rs->envelopes[i].data, envs[i].data, envs[i].len) == 0);
	enl_pb_free_lent(&rs->base, buf, len);
	free(buf);
	for (int i = 0; i < 3; i++)
		free(envs[i].data);
	free(sg.body.data);
	free(sg.signature.data);
}

/*
 * Bytes that are almost right: each must get the copying parse's verdict.
 * Small values and a small `min`, so that every prefix and thousands of
 * changes are quick to try.
 */
static void
test_lending_agrees(void)
{
	const size_t sizes[] = {40, 3, 33, 0};
	uint8_t *buf = NULL, *x;
	size_t len = 0, ok = 0, bad = 0, min = 20;

	REQUIRE_OK(payload(sizes, 4, 25, &buf, &len));
	CHECK_RC(both(&enlace__payload__descriptor, buf, len, min, NULL), ENL_OK);
	REQUIRE((x = malloc(len + 16)) != NULL);
	for (size_t n = 0; n < len; n++)
		(void)both(&enlace__payload__descriptor, buf, n, min, NULL);
	for (int i = 0; i < 20000; i++) {
		memcpy(x, buf, len);
		x[randombytes_uniform((uint32_t)len)] = (uint8_t)randombytes_uniform(256);
		if (both(&enlace__payload__descriptor, x, len, min, NULL) == ENL_OK)
			ok++;
		else
			bad++;
	}
	CHECK(ok > 0 && bad > 0);	/* both outcomes were compared */
	/* a byte inserted or removed anywhere */
	for (size_t at = 0; at <= len; at++) {
		memcpy(x, buf, at);
		x[at] = (uint8_t)randombytes_uniform(256);
		memcpy(x + at + 1, buf + at, len - at);
		(void)both(&enlace__payload__descriptor, x, len + 1, min, NULL);
		if (at < len) {
			memcpy(x, buf, at);
			memcpy(x + at, buf + at + 1, len - at - 1);
			(void)both(&enlace__payload__descriptor, x, len - 1, min, NULL);
		}
	}
	free(x);
	free(buf);
}

/* Hand-made: each case names what is wrong with it. */
static void
test_lending_odd(void)
{
	/* Attachment {data: 24 bytes} inside Payload, field 3 */
	uint8_t att[2 + 24], rec[2 + sizeof(att)], x[64];
	size_t n;

	att[0] = 0x1a;	/* Attachment.data, length-delimited */
	att[1] = 24;
	memset(att + 2, 0xab, 24);
	rec[0] = 0x1a;	/* Payload.attachments */
	rec[1] = sizeof(att);
	memcpy(rec + 2, att, sizeof(att));
	CHECK_RC(both(&enlace__payload__descriptor, rec, sizeof(rec), 20, NULL), ENL_OK);
	/* the attachment's length in two bytes where one will do */
	x[0] = 0x1a;
	x[1] = (uint8_t)(sizeof(att) | 0x80);
	x[2] = 0;
	memcpy(x + 3, att, sizeof(att));
	CHECK_RC(both(&enlace__payload__descriptor, x, 3 + sizeof(att), 20, NULL),
		 ENL_E_MALFORMED);
	/* the data's length so, inside the attachment */
	x[0] = 0x1a;
	x[1] = sizeof(att) + 1;
	x[2] = 0x1a;
	x[3] = 24 | 0x80;
	x[4] = 0;
	memset(x + 5, 0xab, 24);
	CHECK_RC(both(&enlace__payload__descriptor, x, 5 + 24, 20, NULL), ENL_E_MALFORMED);
	/* a field the schema does not have, inside the attachment */
	memcpy(x, rec, sizeof(rec));
	x[1] = sizeof(att) + 2;
	x[2 + sizeof(att)] = 0x48;	/* field 9, varint */
	x[3 + sizeof(att)] = 1;
	CHECK_RC(both(&enlace__payload__descriptor, x, sizeof(rec) + 2, 20, NULL),
		 ENL_E_MALFORMED);
	/* the data twice in one attachment (the last would win) */
	x[0] = 0x1a;
	x[1] = 2 * sizeof(att);
	memcpy(x + 2, att, sizeof(att));
	memcpy(x + 2 + sizeof(att), att, sizeof(att));
	CHECK_RC(both(&enlace__payload__descriptor, x, 2 + 2 * sizeof(att), 20, NULL),
		 ENL_E_MALFORMED);
	/* the attachment as a group */
	x[0] = 0x1b;
	memcpy(x + 1, att, sizeof(att));
	x[1 + sizeof(att)] = 0x1c;
	CHECK_RC(both(&enlace__payload__descriptor, x, 2 + sizeof(att), 20, NULL),
		 ENL_E_MALFORMED);
	/* the attachments field as a varint */
	x[0] = 0x18;
	x[1] = 5;
	CHECK_RC(both(&enlace__payload__descriptor, x, 2, 20, NULL), ENL_E_MALFORMED);
	/* a long value as a string, not bytes (subject): copied, not lent */
	n = 0;
	x[n++] = 0x0a;
	x[n++] = 30;
	memset(x + n, 'a', 30);
	n += 30;
	{
		Enlace__Payload *p = NULL;
		CHECK_RC(both(&enlace__payload__descriptor, x, n, 20, (ProtobufCMessage **)&p),
			 ENL_OK);
		if (p != NULL) {
			CHECK(strlen(p->subject) == 30 && !((uint8_t *)p->subject >= x &&
							    (uint8_t *)p->subject < x + n));
			enl_pb_free_lent(&p->base, x, n);
		}
	}
}

/* Repeated fields are counted on the bytes, before protobuf-c allocates:
 * an AckList of 1024 parses, of 1025 is refused, and so is one nested
 * deeper (a Request holding the list). */
static void
test_repeated_counted(void)
{
	static uint8_t id[16], hash[32], sig[64];
	Enlace__AckReq *acks = calloc(1025, sizeof(*acks)), **ptrs = calloc(1025, sizeof(*ptrs));
	Enlace__AckList list = ENLACE__ACK_LIST__INIT;
	Enlace__Request req = ENLACE__REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	REQUIRE(acks != NULL && ptrs != NULL);
	for (size_t i = 0; i < 1025; i++) {
		enlace__ack_req__init(&acks[i]);
		acks[i].message_id = (ProtobufCBinaryData){sizeof(id), id};
		acks[i].envelope_hash = (ProtobufCBinaryData){sizeof(hash), hash};
		acks[i].signature = (ProtobufCBinaryData){sizeof(sig), sig};
		acks[i].time = 1765000000;
		ptrs[i] = &acks[i];
	}
	list.acks = ptrs;
	req.body_case = ENLACE__REQUEST__BODY_ACKS;
	req.acks = &list;
	for (size_t n = 1024; n <= 1025; n++) {
		list.n_acks = n;
		REQUIRE_OK(enl_pb_pack(&list.base, &buf, &len));
		CHECK_RC(enl_pb_unpack(&enlace__ack_list__descriptor, buf, len, len, &out),
			 n == 1024 ? ENL_OK : ENL_E_MALFORMED);
		if (out != NULL)
			protobuf_c_message_free_unpacked(out, NULL);
		out = NULL;
		free(buf);
		REQUIRE_OK(enl_pb_pack(&req.base, &buf, &len));
		CHECK_RC(enl_pb_unpack_lending(&enlace__request__descriptor, buf, len, len,
					       ENL_LEND_MIN, &out),
			 n == 1024 ? ENL_OK : ENL_E_MALFORMED);
		if (out != NULL)
			enl_pb_free_lent(out, buf, len);
		out = NULL;
		free(buf);
	}
	free(acks);
	free(ptrs);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_payload_lent);
	RUN(test_nested_lent);
	RUN(test_lending_agrees);
	RUN(test_lending_odd);
	RUN(test_repeated_counted);
	return harness_done();
}
