/*
 * Envelope rules: the text of other agencies, re-wrapped originals,
 * revoked and rotated keys, forwards carrying their original.
 */
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/wire.h"
#include "envelope_fixture.h"
#include "harness.h"
#include "proto_int.h"

/* What other agencies write: strict UTF-8; no control or bidirectional
 * character in a one-line field; none but tab and line breaks in a body
 * (docs/FORMATS.md, "Text"). Refused at sealing, and at opening from a
 * sender that did not seal with enlace. */
void
test_text_rules(void)
{
	static const struct {
		const char *subject, *body, *name;
	} bad[] = {
		{"\x1b[2J\x1b[Hsignature VERIFIED", "", "a"},	/* escape sequences */
		{"plain", "line\n\x1b[1A\x1b[2Ksignature VERIFIED", "a"},
		{"\xc0\xae\xc0\xae", "", "a"},			/* overlong */
		{"\xed\xa0\x80", "", "a"},			/* a surrogate */
		{"\xff", "", "a"},				/* not UTF-8 at all */
		{"caf\xc3", "", "a"},				/* cut short */
		{"\xc2\x9b" "31m", "", "a"},			/* C1 CSI */
		{"invoice \xe2\x80\xae" "fdp.exe", "", "a"},	/* RLO in a subject */
		{"two\nlines", "", "a"},
		{"plain", "", "evil\xe2\x80\xaeggp.exe"},		/* RLO in a file name */
		{"plain", "", "a\x1b"},
		{"plain", "del \x7f", "a"},
	};
	static const struct {
		const char *subject, *body;
	} good[] = {
		{"Transferencias estructuradas — São Paulo, Bogotá", "ligne 1\r\nligne 2\tà"},
		{"", "\xe2\x80\x8f" "RLM in a body is allowed, and shown escaped"},
	};
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1]};
	struct enl_message *m = NULL;
	struct enl_header h;
	uint8_t *env = NULL;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct enl_attachment at = {bad[i].name, "text/plain", (const uint8_t *)"x", 1};
		struct enl_payload p = {.subject = bad[i].subject, .body = bad[i].body,
					.attachments = &at, .n_attachments = 1};
		Enlace__Payload pl = ENLACE__PAYLOAD__INIT;
		Enlace__Attachment a = ENLACE__ATTACHMENT__INIT, *ap = &a;

		header_to(&h, to, 1);
		CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
			 ENL_E_INVAL);
		pl.subject = (char *)bad[i].subject;
		pl.body = (char *)bad[i].body;
		a.name = (char *)bad[i].name;
		a.media_type = "text/plain";
		pl.n_attachments = 1;
		pl.attachments = &ap;
		REQUIRE_OK(seal_raw_payload(ids[0], &pl, &env, &len));
		/* signed, it verifies; opened, its text is refused */
		CHECK_RC(enl_envelope_verify(env, len, &w.kr, &lim, NOW, &h, NULL), ENL_OK);
		int rc = enl_envelope_open(env, len, world_find(&w, ids[1]), &w.kr, &lim, NOW, &m);
		if (rc != ENL_E_MALFORMED)
			fprintf(stderr, "bad[%zu] opened: %s\n", i, enl_strerror(rc));
		CHECK_RC(rc, ENL_E_MALFORMED);
		if (rc == ENL_OK)
			enl_message_free(m);
		free(env);
		env = NULL;
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct enl_payload p = {.subject = good[i].subject, .body = good[i].body};
		header_to(&h, to, 1);
		REQUIRE_OK(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len));
		REQUIRE_OK(enl_envelope_open(env, len, world_find(&w, ids[1]), &w.kr, &lim, NOW, &m));
		CHECK(strcmp(m->payload.body, good[i].body) == 0);
		enl_message_free(m);
		free(env);
		env = NULL;
	}
}

/* A signed original put inside a message that is not a FORWARD naming it
 * (a re-wrapped original, with weaker handling) is refused: sealing it,
 * and opening it from a sender that sealed it by hand. */
void
test_rewrapped_original(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1]};
	uint8_t *orig = NULL, *env = NULL, okey[32] = {7};
	size_t olen = 0, len = 0;
	struct enl_message *m = NULL;
	struct enl_header h;
	struct enl_payload p = {.subject = "fresh news", .body = "nothing to see"};
	Enlace__Payload pl = ENLACE__PAYLOAD__INIT;

	REQUIRE_OK(seal_simple(ids[2], to, 1, "the originator's", &orig, &olen));
	p.original = orig;
	p.original_len = olen;
	p.original_key = okey;
	header_to(&h, to, 1);	/* a CASE_MESSAGE */
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_INVAL);
	pl.subject = "fresh news";
	pl.body = "nothing to see";
	pl.original.data = orig;
	pl.original.len = olen;
	pl.original_key.data = okey;
	pl.original_key.len = sizeof(okey);
	REQUIRE_OK(seal_raw_payload(ids[0], &pl, &env, &len));
	CHECK_RC(enl_envelope_open(env, len, world_find(&w, ids[1]), &w.kr, &lim, NOW, &m),
		 ENL_E_MALFORMED);
	if (m != NULL)
		enl_message_free(m);
	free(env);
	free(orig);
}

/* What a terminal or a JSON reader is shown of hostile text. */
void
test_text_escaped(void)
{
	char *e = enl_term_escape("a\x1b[2Jb\xc2\x9b\xe2\x80\xae\xff\x7f\nc\td", false);
	FILE *fp;
	char *buf = NULL;
	size_t n = 0;

	REQUIRE(e != NULL);
	CHECK(strcmp(e, "a\\x1b[2Jb\\u009b\\u202e\\xff\\x7f\\x0ac\\x09d") == 0);
	free(e);
	e = enl_term_escape("one\ntwo\tthree\x1b", true);
	REQUIRE(e != NULL);
	CHECK(strcmp(e, "one\ntwo\tthree\\x1b") == 0);
	free(e);
	fp = open_memstream(&buf, &n);
	REQUIRE(fp != NULL);
	enl_json_put_string(fp, "\"q\" \xff\xc0\xae \x1b \xc2\x85 \xe2\x80\xae \xe2\x80\xa8 \xc3\xa9");
	fclose(fp);
	CHECK(strcmp(buf, "\"\\\"q\\\" \\ufffd\\ufffd\\ufffd \\u001b \\u0085 \\u202e \\u2028 \xc3\xa9\"") ==
	      0);
	CHECK(enl_utf8_valid(buf, n));
	free(buf);
}

void
test_revoked(void)
{
	struct enl_limits lim = enl_limits_default();
	struct enl_revocation rev = {.version = 1, .reason = "compromised"};
	const char *to[] = {ids[1]};
	const char *to_revoked[] = {ids[3]};
	struct enl_message *m = NULL;
	struct enl_payload p = {0};
	struct enl_header h;
	uint8_t *env = NULL;
	size_t len = 0;

	snprintf(rev.id, sizeof(rev.id), "%s", ids[3]);
	/* Sealed while the key was good... */
	header_to(&h, to, 1);
	REQUIRE_OK(enl_envelope_seal(w.agency[3], &w.kr, &lim, &h, &p, NOW, &env, &len));
	REQUIRE_OK(world_rebuild(&w, &rev, 1));
	/* ...refused once the directory revokes it. */
	CHECK_RC(enl_envelope_open(env, len, w.agency[1], &w.kr, &lim, NOW, &m),
		 ENL_E_REVOKED_KEY);
	free(env);
	env = NULL;
	/* And nobody can seal to a revoked key. */
	header_to(&h, to_revoked, 1);
	CHECK_RC(enl_envelope_seal(w.agency[0], &w.kr, &lim, &h, &p, NOW, &env, &len),
		 ENL_E_REVOKED_KEY);
	REQUIRE_OK(world_rebuild(&w, NULL, 0));
}

static uint32_t
wrap_version(const uint8_t *env, size_t len)
{
	Enlace__Envelope *e = (Enlace__Envelope *)protobuf_c_message_unpack(
		&enlace__envelope__descriptor, NULL, len, env);
	uint32_t v = e ? e->wraps[0]->key_version : 0;

	if (e)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	return v;
}

void
test_rotation(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1]};
	const char *back[] = {ids[0]};
	struct enl_message *m = NULL;
	uint8_t *old = NULL, *new_env = NULL, *reply = NULL;
	size_t old_len = 0, new_len = 0, reply_len = 0;
	uint32_t v = 0;

	REQUIRE_OK(seal_simple(ids[0], to, 1, "to version 1", &old, &old_len));
	CHECK(wrap_version(old, old_len) == 1);
	/* ids[1] rotates; the directory publishes its new card. */
	REQUIRE_OK(enl_identity_rotate(w.agency[1], &v));
	CHECK(v == 2);
	REQUIRE_OK(world_rebuild(&w, NULL, 0));
	CHECK_RC(enl_envelope_open(old, old_len, w.agency[1], &w.kr, &lim, NOW, &m), ENL_OK);
	CHECK(m != NULL && strcmp(m->payload.body, "to version 1") == 0);
	enl_message_free(m);
	m = NULL;
	REQUIRE_OK(seal_simple(ids[0], to, 1, "to version 2", &new_env, &new_len));
	CHECK(wrap_version(new_env, new_len) == 2);
	CHECK_RC(enl_envelope_open(new_env, new_len, w.agency[1], &w.kr, &lim, NOW, &m), ENL_OK);
	enl_message_free(m);
	m = NULL;
	/* The rotated agency signs with version 2 now. */
	REQUIRE_OK(seal_simple(ids[1], back, 1, "reply", &reply, &reply_len));
	CHECK_RC(enl_envelope_open(reply, reply_len, w.agency[0], &w.kr, &lim, NOW, &m), ENL_OK);
	CHECK(m != NULL && m->header.sender_key_version == 2);
	enl_message_free(m);
	m = NULL;
	/* An identity holding only version 2 cannot open the old message. */
	{
		struct enl_identity *only2 = NULL;
		struct enl_key_secret ks;
		REQUIRE_OK(enl_identity_new(ids[1], &only2));
		REQUIRE_OK(enl_identity_secret_at(w.agency[1], 1, &ks));
		REQUIRE_OK(enl_identity_add(only2, &ks));
		sodium_memzero(&ks, sizeof(ks));
		CHECK_RC(enl_envelope_open(old, old_len, only2, &w.kr, &lim, NOW, &m),
			 ENL_E_UNKNOWN_KEY_VERSION);
		enl_identity_free(only2);
	}
	free(old);
	free(new_env);
	free(reply);
}

void
test_forward_carries_original(void)
{
	struct enl_limits lim = enl_limits_default();
	const char *to[] = {ids[1]};
	const char *third[] = {ids[2]};
	struct enl_message *m = NULL, *fm = NULL;
	struct enl_header h, orig_h;
	uint8_t *orig = NULL, *fwd = NULL;
	size_t orig_len = 0, fwd_len = 0;

	REQUIRE_OK(seal_simple(ids[0], to, 1, "original", &orig, &orig_len));
	REQUIRE_OK(enl_envelope_open(orig, orig_len, w.agency[1], &w.kr, &lim, NOW, &m));
	header_to(&h, third, 1);
	h.type = ENL_MSG_FORWARD;
	h.has_forward_of = true;
	memcpy(h.forward_of, m->header.message_id, ENL_MSG_ID_LEN);
	{
		struct enl_payload p = {"fwd", "see attached original", 0, NULL, orig, orig_len,
					m->content_key};
		REQUIRE_OK(enl_envelope_seal(w.agency[1], &w.kr, &lim, &h, &p, NOW, &fwd, &fwd_len));
	}
	CHECK_RC(enl_envelope_open(fwd, fwd_len, w.agency[2], &w.kr, &lim, NOW, &fm), ENL_OK);
	if (fm != NULL) {
		CHECK(fm->header.has_forward_of);
		CHECK(fm->payload.original_len == orig_len);
		/* The third party checks the originator's signature itself. */
		CHECK_RC(enl_envelope_verify(fm->payload.original, fm->payload.original_len,
					     &w.kr, &lim, NOW, &orig_h, NULL), ENL_OK);
		CHECK(strcmp(orig_h.sender, ids[0]) == 0);
		/* ... and reads it with the key the forwarder passed on */
		REQUIRE(fm->payload.original_key != NULL);
		{
			struct enl_message *om = NULL;
			uint8_t wrong[32];
			CHECK_RC(enl_envelope_open_with_key(fm->payload.original,
							    fm->payload.original_len,
							    fm->payload.original_key, &w.kr, &lim,
							    NOW, &om), ENL_OK);
			CHECK(om != NULL && strcmp(om->payload.body, "original") == 0);
			enl_message_free(om);
			om = NULL;
			memcpy(wrong, fm->payload.original_key, 32);
			wrong[0] ^= 1;
			CHECK_RC(enl_envelope_open_with_key(fm->payload.original,
							    fm->payload.original_len, wrong,
							    &w.kr, &lim, NOW, &om), ENL_E_TAMPERED);
			CHECK(om == NULL);
		}
	}
	enl_message_free(m);
	enl_message_free(fm);
	free(orig);
	free(fwd);
}
