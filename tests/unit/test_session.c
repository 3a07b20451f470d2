/* The agent-broker handshake and sealed frames. */
#include <stdlib.h>
#include <string.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "enlace/wire.h"
#include "harness.h"
#include "world.h"

#define NOW (WORLD_TIME + 100)

static struct world w;
static const char *const ids[] = {"OAS-BROKER", "AR-UIF", "BR-PF"};

static int
handshake(struct enl_identity *agent, int64_t agent_now, struct enl_session **client,
	  struct enl_session **server)
{
	return world_session(&w, agent, agent_now, NOW, client, server);
}

/* Frames are opened where they are: these open a copy (a replay test
 * needs the frame again) and hand back a copy of the plaintext. */
static uint8_t *
dup_frame(const uint8_t *f, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, f, len);
	return copy;
}

static int
opened(int rc, uint8_t *copy, size_t len, const uint8_t *plain, size_t pl, uint8_t **p)
{
	*p = NULL;
	if (rc == ENL_OK && plain != NULL) {
		CHECK(plain >= copy && plain + pl <= copy + len);	/* within the frame */
		*p = dup_frame(plain, pl);
	}
	free(copy);
	return rc;
}

static int
open_req(struct enl_session *s, const uint8_t *f, size_t len, size_t max, uint64_t *ctr,
	 uint8_t **p, size_t *pl)
{
	uint8_t *copy = dup_frame(f, len);
	const uint8_t *plain = NULL;

	int rc = enl_session_open_request(s, copy, len, max, ctr, &plain, pl);

	return opened(rc, copy, len, plain, *pl, p);
}

static int
open_rep(struct enl_session *c, const uint8_t *f, size_t len, size_t max, uint8_t **p,
	 size_t *pl)
{
	uint8_t *copy = dup_frame(f, len);
	const uint8_t *plain = NULL;

	int rc = enl_session_open_reply(c, copy, len, max, &plain, pl);

	return opened(rc, copy, len, plain, *pl, p);
}

static void
test_roundtrip(void)
{
	struct enl_session *c = NULL, *s = NULL;
	uint8_t *f1 = NULL, *f2 = NULL, *p = NULL, *r = NULL, *rp = NULL;
	size_t l1 = 0, l2 = 0, pl = 0, rl = 0, rpl = 0;
	uint64_t ctr = 0;

	REQUIRE_OK(handshake(w.agency[1], NOW, &c, &s));
	CHECK(strcmp(enl_session_peer(s), "AR-UIF") == 0);
	CHECK(strcmp(enl_session_peer(c), "OAS-BROKER") == 0);
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"one", 3, &f1, &l1));
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"two", 3, &f2, &l2));
	CHECK_RC(open_req(s, f1, l1, 1024, &ctr, &p, &pl), ENL_OK);
	CHECK(pl == 3 && memcmp(p, "one", 3) == 0 && ctr == 1);
	free(p);
	p = NULL;
	/* Replayed: refused. */
	CHECK_RC(open_req(s, f1, l1, 1024, &ctr, &p, &pl), ENL_E_INVAL);
	CHECK_RC(open_req(s, f2, l2, 1024, &ctr, &p, &pl), ENL_OK);
	free(p);
	p = NULL;
	/* The reply to request 2 opens; as a reply to 3 it does not. */
	REQUIRE_OK(enl_session_seal_reply(s, 2, (const uint8_t *)"ok", 2, &r, &rl));
	CHECK_RC(open_rep(c, r, rl, 1024, &rp, &rpl), ENL_OK);
	CHECK(rpl == 2 && memcmp(rp, "ok", 2) == 0);
	free(rp);
	rp = NULL;
	free(f1);
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"three", 5, &f1, &l1));
	CHECK_RC(open_rep(c, r, rl, 1024, &rp, &rpl), ENL_E_INVAL);
	/* A changed byte: refused. */
	f1[l1 - 1] ^= 1;
	CHECK_RC(open_req(s, f1, l1, 1024, &ctr, &p, &pl), ENL_E_TAMPERED);
	/* Over the size limit: refused before it is decrypted. */
	{
		uint8_t big[300] = {0}, *f3 = NULL;
		size_t l3 = 0;
		REQUIRE_OK(enl_session_seal_request(c, big, sizeof(big), &f3, &l3));
		CHECK_RC(open_req(s, f3, l3, 100, &ctr, &p, &pl),
			 ENL_E_TOO_LARGE);
		free(f3);
	}
	free(f1);
	free(f2);
	free(r);
	enl_session_free(c);
	enl_session_free(s);
}

static void
test_reordered(void)
{
	struct enl_session *c = NULL, *s = NULL;
	uint8_t *f1 = NULL, *f2 = NULL, *p = NULL;
	size_t l1 = 0, l2 = 0, pl = 0;
	uint64_t ctr = 0;

	REQUIRE_OK(handshake(w.agency[1], NOW, &c, &s));
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"a", 1, &f1, &l1));
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"b", 1, &f2, &l2));
	CHECK_RC(open_req(s, f2, l2, 64, &ctr, &p, &pl), ENL_OK);
	free(p);
	p = NULL;
	CHECK_RC(open_req(s, f1, l1, 64, &ctr, &p, &pl), ENL_E_INVAL);
	free(f1);
	free(f2);
	enl_session_free(c);
	enl_session_free(s);
}

static void
test_refused(void)
{
	struct enl_session *c = NULL, *s = NULL;
	struct enl_identity *stranger = NULL;
	struct enl_revocation rev = {"BR-PF", 1, "lost", 0};

	REQUIRE_OK(world_identity("XX-STRANGER", 1, &stranger));
	CHECK_RC(handshake(stranger, NOW, &c, &s), ENL_E_UNKNOWN_SENDER);
	enl_identity_free(stranger);
	CHECK_RC(handshake(w.agency[1], NOW - ENL_HELLO_SKEW - 1, &c, &s), ENL_E_EXPIRED);
	REQUIRE_OK(world_rebuild(&w, &rev, 1));
	CHECK_RC(handshake(w.agency[2], NOW, &c, &s), ENL_E_REVOKED_KEY);
	REQUIRE_OK(world_rebuild(&w, NULL, 0));
	/* A forged broker: the welcome does not verify under OAS-BROKER's key. */
	{
		struct enl_hello_state *st = NULL;
		struct enl_identity *fake = NULL;
		uint8_t *hello = NULL, *welcome = NULL, nonce[32];
		size_t hlen = 0, wlen = 0;
		REQUIRE_OK(world_identity("OAS-BROKER", 2, &fake));
		REQUIRE_OK(enl_session_hello(w.agency[1], NOW, 0, &st, &hello, &hlen));
		REQUIRE_OK(enl_session_accept(fake, &w.kr, hello, hlen, NOW, NULL, nonce, &s,
					      &welcome, &wlen));
		CHECK(enl_session_client_finish(st, welcome, wlen, &w.kr, "OAS-BROKER", NULL, &c,
						NULL, 0) != ENL_OK);
		enl_session_free(s);
		s = NULL;
		enl_identity_free(fake);
		free(hello);
		free(welcome);
	}
	/* A refusal frame reaches the client as its error and reason. */
	{
		struct enl_hello_state *st = NULL;
		uint8_t *hello = NULL, *ref = NULL;
		size_t hlen = 0, rlen = 0;
		char reason[64] = "";
		REQUIRE_OK(enl_session_hello(w.agency[1], NOW, 0, &st, &hello, &hlen));
		REQUIRE_OK(enl_session_refusal(ENL_E_REVOKED_KEY, "key revoked", &ref, &rlen));
		CHECK_RC(enl_session_client_finish(st, ref, rlen, &w.kr, "OAS-BROKER", NULL, &c,
						   reason, sizeof(reason)), ENL_E_REVOKED_KEY);
		CHECK(strcmp(reason, "key revoked") == 0);
		free(hello);
		free(ref);
	}
	CHECK(c == NULL);
}

/* A sealed frame is written by hand: it must be exactly protobuf-c's
 * Frame {counter, sealed}; the same frame written by protobuf-c opens the
 * same way, one with a field more takes protobuf-c's way and is refused,
 * one with a longer-than-needed varint is refused. */
static void
test_frame_form(void)
{
	struct enl_session *c = NULL, *s = NULL;
	Enlace__Frame *f = NULL;
	uint8_t *fr = NULL, *p = NULL, *pb = NULL, big[70000];
	size_t fl = 0, pl = 0, pbl = 0;
	uint64_t ctr = 0;

	REQUIRE_OK(handshake(w.agency[1], NOW, &c, &s));
	memset(big, 0x5a, sizeof(big));
	/* counters and lengths of one, two and three varint bytes */
	for (size_t n = 0; n < 4; n++) {
		size_t len = n == 0 ? 1 : n == 1 ? 200 : n == 2 ? 20000 : sizeof(big);
		REQUIRE_OK(enl_session_seal_request(c, big, len, &fr, &fl));
		REQUIRE_OK(enl_pb_unpack(&enlace__frame__descriptor, fr, fl, fl,
					 (ProtobufCMessage **)&f));
		CHECK(f->counter == n + 1 && f->sealed.len == len + 16 && f->error == 0 &&
		      f->hello == NULL && f->welcome == NULL);
		/* protobuf-c's own writing of it */
		REQUIRE_OK(enl_pb_pack(&f->base, &pb, &pbl));
		CHECK(pbl == fl && memcmp(pb, fr, fl) == 0);
		CHECK_RC(open_req(s, pb, pbl, sizeof(big), &ctr, &p, &pl), ENL_OK);
		CHECK(ctr == n + 1 && pl == len && memcmp(p, big, len) == 0);
		free(p);
		p = NULL;
		free(pb);
		pb = NULL;
		protobuf_c_message_free_unpacked(&f->base, NULL);
		f = NULL;
		free(fr);
		fr = NULL;
	}
	/* a field more (an error code) after a valid sealed frame */
	REQUIRE_OK(enl_session_seal_request(c, (const uint8_t *)"x", 1, &fr, &fl));
	{
		uint8_t more[128];
		REQUIRE(fl + 2 <= sizeof(more));
		memcpy(more, fr, fl);
		more[fl] = 0x28;	/* field 5, varint */
		more[fl + 1] = 0x01;
		CHECK_RC(open_req(s, more, fl + 2, 64, &ctr, &p, &pl), ENL_E_INVAL);
		CHECK(p == NULL);
		/* the counter as a two-byte varint of a one-byte value */
		more[0] = fr[0];
		more[1] = (uint8_t)(fr[1] | 0x80);
		more[2] = 0x00;
		memcpy(more + 3, fr + 2, fl - 2);
		CHECK_RC(open_req(s, more, fl + 1, 64, &ctr, &p, &pl), ENL_E_MALFORMED);
		CHECK(p == NULL);
	}
	CHECK_RC(open_req(s, fr, fl, 64, &ctr, &p, &pl), ENL_OK);
	free(p);
	free(fr);
	enl_session_free(c);
	enl_session_free(s);
}

/* ---- a directory with the welcome ---- */

static struct enl_identity *rotated;	/* OAS-BROKER, a version w.kr does not know */

/* w.kr, plus the broker's rotated key: the keyring of a newer directory */
static int
newer_signing_key(void *ctx, const char *id, uint32_t version, uint8_t pk[static 32])
{
	uint8_t epk[32];

	(void)ctx;
	if (strcmp(id, "OAS-BROKER") == 0 && version == enl_identity_current(rotated))
		return enl_identity_public(rotated, version, pk, epk);
	return w.kr.signing_key(w.kr.ctx, id, version, pk);
}

struct taken {
	size_t calls, len;
	uint8_t first;
	bool switch_ring;
};

static void
take(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr)
{
	struct taken *t = arg;

	t->calls++;
	t->len = len;
	t->first = dir[0];
	if (t->switch_ring) {
		kr->ctx = NULL;
		kr->signing_key = newer_signing_key;
	}
}

/* One handshake with the rotated broker: the hello names `serial`, the
 * broker holds directory serial 5. */
static int
rotated_handshake(uint64_t serial, struct taken *t, size_t max, bool with_offered)
{
	static const uint8_t dir[300] = {0xd1};
	const struct enl_broker_directory bd = {dir, sizeof(dir), 5};
	const struct enl_offered_directory od = {take, t, max};
	struct enl_hello_state *st = NULL;
	struct enl_session *c = NULL, *s = NULL;
	uint8_t *hello = NULL, *welcome = NULL, nonce[32];
	size_t hlen = 0, wlen = 0;
	int rc;

	if ((rc = enl_session_hello(w.agency[1], NOW, serial, &st, &hello, &hlen)) != ENL_OK)
		return rc;
	rc = enl_session_accept(rotated, &w.kr, hello, hlen, NOW, &bd, nonce, &s, &welcome, &wlen);
	free(hello);
	if (rc != ENL_OK) {
		enl_hello_state_free(st);
		return rc;
	}
	rc = enl_session_client_finish(st, welcome, wlen, &w.kr, "OAS-BROKER",
				       with_offered ? &od : NULL, &c, NULL, 0);
	CHECK((rc == ENL_OK) == (c != NULL));
	enl_session_free(c);
	enl_session_free(s);
	free(welcome);
	return rc;
}

/* The broker attaches its directory to the welcome when the hello names
 * an older serial; the agent's take() puts it in force, and the welcome,
 * signed by a broker key only the newer directory knows, then checks. */
static void
test_offered_directory(void)
{
	struct taken t = {0, 0, 0, true};

	REQUIRE_OK(world_identity("OAS-BROKER", 2, &rotated));
	CHECK_RC(rotated_handshake(4, &t, 1000, true), ENL_OK);
	CHECK(t.calls == 1 && t.len == 300 && t.first == 0xd1);
	/* an agent with serial 5 gets none, and cannot check the new key */
	t = (struct taken){0, 0, 0, true};
	CHECK_RC(rotated_handshake(5, &t, 1000, true), ENL_E_UNKNOWN_KEY_VERSION);
	CHECK(t.calls == 0);
	/* a directory that is not taken changes nothing */
	t = (struct taken){0, 0, 0, false};
	CHECK_RC(rotated_handshake(4, &t, 1000, true), ENL_E_UNKNOWN_KEY_VERSION);
	CHECK(t.calls == 1);
	/* a hello that names no serial (an agent that may not know the
	 * field) gets none: the welcome is not malformed to it, only unknown */
	t = (struct taken){0, 0, 0, true};
	CHECK_RC(rotated_handshake(0, &t, 1000, false), ENL_E_UNKNOWN_KEY_VERSION);
	CHECK_RC(rotated_handshake(0, &t, 1000, true), ENL_E_UNKNOWN_KEY_VERSION);
	CHECK(t.calls == 0);
	/* one above the agent's limit, or to an agent that takes none: malformed */
	t = (struct taken){0, 0, 0, true};
	CHECK_RC(rotated_handshake(4, &t, 299, true), ENL_E_MALFORMED);
	CHECK_RC(rotated_handshake(4, &t, 1000, false), ENL_E_MALFORMED);
	CHECK(t.calls == 0);
	enl_identity_free(rotated);
}

/* Sealing where the plaintext is makes the same frame as sealing a copy. */
static void
test_seal_in_place(void)
{
	struct enl_session *c = NULL, *s = NULL;
	uint8_t big[20000], *f = NULL, *g;
	size_t fl = 0, gl, off, pl = 0;
	const uint8_t *plain = NULL;
	uint64_t ctr = 0;

	REQUIRE_OK(handshake(w.agency[1], NOW, &c, &s));
	memset(big, 0x3c, sizeof(big));
	/* a reply: the counter is the caller's */
	REQUIRE_OK(enl_session_seal_reply(s, 7, big, sizeof(big), &f, &fl));
	gl = enl_session_reply_layout(7, sizeof(big), &off);
	REQUIRE(gl == fl && (g = malloc(gl)) != NULL);
	memcpy(g + off, big, sizeof(big));
	enl_session_seal_reply_at(s, 7, g, sizeof(big));
	CHECK(memcmp(f, g, fl) == 0);
	free(f);
	free(g);
	/* a request: the layout is the next one's */
	gl = enl_session_request_layout(c, sizeof(big), &off);
	REQUIRE((g = malloc(gl)) != NULL);
	memcpy(g + off, big, sizeof(big));
	enl_session_seal_request_at(c, g, sizeof(big));
	CHECK_RC(enl_session_open_request(s, g, gl, sizeof(big), &ctr, &plain, &pl), ENL_OK);
	CHECK(ctr == 1 && pl == sizeof(big) && plain == g + off && memcmp(plain, big, pl) == 0);
	free(g);
	enl_session_free(c);
	enl_session_free(s);
}

int
main(void)
{
	if (enl_init() != ENL_OK || world_init(&w, ids, 3) != ENL_OK)
		return 1;
	RUN(test_roundtrip);
	RUN(test_reordered);
	RUN(test_refused);
	RUN(test_frame_form);
	RUN(test_seal_in_place);
	RUN(test_offered_directory);
	world_fini(&w);
	return harness_done();
}
