/* C2SP signed notes and checkpoints: the published example, tampering,
 * unknown keys, and strict checkpoint parsing. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "enlace/note.h"
#include "harness.h"

static const char text[] = "If you think cryptography is the answer to your problem,\n"
			   "then you don't know what your problem is.\n";
static const char signed_note[] =
	"If you think cryptography is the answer to your problem,\n"
	"then you don't know what your problem is.\n"
	"\n"
	"\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

static struct enl_identity *peter;
static struct enl_note_verifier pv;

static void
setup(void)
{
	static const char skey_b64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	struct enl_key_secret ks = {.version = 1};
	uint8_t raw[33];
	size_t n = 0;

	if (sodium_base642bin(raw, sizeof(raw), skey_b64, strlen(skey_b64), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != 33 || raw[0] != 1)
		abort();
	memcpy(ks.sign_seed, raw + 1, 32);
	if (enl_identity_new("XX-PETER", &peter) != ENL_OK ||
	    enl_identity_add(peter, &ks) != ENL_OK ||
	    enl_vkey_parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
			   pv.name, pv.pk) != ENL_OK)
		abort();
}

static void
test_published_example(void)
{
	char *note = NULL;
	size_t tl = 0;
	bool ok = false;

	REQUIRE_OK(enl_note_sign(peter, "PeterNeumann", text, &note));
	CHECK(strcmp(note, signed_note) == 0);
	CHECK_RC(enl_note_open(signed_note, strlen(signed_note), &pv, 1, &tl, &ok), ENL_OK);
	CHECK(ok && tl == strlen(text));
	free(note);
}

static void
test_refusals(void)
{
	char buf[sizeof(signed_note)];
	struct enl_note_verifier other = pv;
	size_t tl = 0, n = strlen(signed_note);

	memcpy(buf, signed_note, sizeof(buf));
	buf[3] ^= 1;	/* the text */
	CHECK_RC(enl_note_open(buf, n, &pv, 1, &tl, NULL), ENL_E_BAD_SIGNATURE);
	memcpy(buf, signed_note, sizeof(buf));
	buf[n - 10] = buf[n - 10] == 'A' ? 'B' : 'A';	/* the signature */
	CHECK(enl_note_open(buf, n, &pv, 1, &tl, NULL) != ENL_OK);
	/* '/' with its high bit set: libsodium alone would read it as '/' */
	{
		char *slash;
		memcpy(buf, signed_note, sizeof(buf));
		REQUIRE((slash = strchr(strstr(buf, "PeterNeumann "), '/')) != NULL);
		*slash = (char)('/' | 0x80);
		CHECK_RC(enl_note_open(buf, n, &pv, 1, &tl, NULL), ENL_E_MALFORMED);
	}
	/* A note signed by nobody we know. */
	snprintf(other.name, sizeof(other.name), "SomeoneElse");
	CHECK_RC(enl_note_open(signed_note, n, &other, 1, &tl, NULL), ENL_E_UNKNOWN_SENDER);
	/* No signatures, no blank line, no final newline. */
	CHECK_RC(enl_note_open(text, strlen(text), &pv, 1, &tl, NULL), ENL_E_MALFORMED);
	CHECK_RC(enl_note_open(signed_note, n - 1, &pv, 1, &tl, NULL), ENL_E_MALFORMED);
	CHECK_RC(enl_note_open("\n\n", 2, &pv, 1, &tl, NULL), ENL_E_MALFORMED);
	/* Signing refuses a text without its final newline or with a blank line. */
	{
		char *out = NULL;
		CHECK_RC(enl_note_sign(peter, "PeterNeumann", "no newline", &out), ENL_E_INVAL);
		CHECK_RC(enl_note_sign(peter, "PeterNeumann", "a\n\nb\n", &out), ENL_E_INVAL);
		CHECK_RC(enl_note_sign(peter, "bad name", "x\n", &out), ENL_E_INVAL);
		CHECK(out == NULL);
	}
}

static void
test_checkpoint(void)
{
	struct enl_checkpoint cp = {.size = 1234567}, back;
	char *body = NULL, *note = NULL;
	size_t tl = 0;
	static const char *const bad[] = {
		"", "origin\n", "o\n12\n", "o\n012\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"o\n1\nAAAA\n", "o\n99999999999999999999999\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
		"with space\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	};

	snprintf(cp.origin, sizeof(cp.origin), "enlace/OAS-BROKER");
	memset(cp.root, 0x5a, 32);
	REQUIRE_OK(enl_checkpoint_format(&cp, &body));
	CHECK(strncmp(body, "enlace/OAS-BROKER\n1234567\n", 26) == 0);
	CHECK_RC(enl_checkpoint_parse(body, strlen(body), &back), ENL_OK);
	CHECK(back.size == cp.size && memcmp(back.root, cp.root, 32) == 0 &&
	      strcmp(back.origin, cp.origin) == 0);
	REQUIRE_OK(enl_note_sign(peter, "PeterNeumann", body, &note));
	CHECK_RC(enl_note_open(note, strlen(note), &pv, 1, &tl, NULL), ENL_OK);
	CHECK(tl == strlen(body));
	{
		static const char ext[] = "o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n";
		CHECK_RC(enl_checkpoint_parse(ext, strlen(ext), &back), ENL_OK);
		CHECK(back.size == 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_RC(enl_checkpoint_parse(bad[i], strlen(bad[i]), &back), ENL_E_MALFORMED);
	free(body);
	free(note);
}

/* A broker's checkpoint cosigned by an agency (C2SP tlog-cosignature):
 * the line verifies with a type 0x04 verifier only, over that exact body,
 * and any change to its time or signature is refused. */
static void
test_cosignature(void)
{
	struct enl_checkpoint cp = {.size = 20852163};
	struct enl_note_verifier both[2];
	struct enl_identity *witness = NULL;
	struct enl_key_secret ks = {.version = 1};
	char *body = NULL, *note = NULL, *line = NULL, *full = NULL;
	uint8_t pk[32], enc[32];
	size_t tl = 0;
	bool ok[2];

	snprintf(cp.origin, sizeof(cp.origin), "example.com/behind-the-sofa");
	memset(cp.root, 7, 32);
	randombytes_buf(ks.sign_seed, 32);
	randombytes_buf(ks.enc_sk, 32);
	REQUIRE_OK(enl_identity_new("XX-WITNESS", &witness));
	REQUIRE_OK(enl_identity_add(witness, &ks));
	REQUIRE_OK(enl_identity_public(witness, 1, pk, enc));
	REQUIRE_OK(enl_checkpoint_format(&cp, &body));
	REQUIRE_OK(enl_note_sign(peter, "PeterNeumann", body, &note));
	REQUIRE_OK(enl_cosign(witness, "witness.example.com/w1", body, 1679315147, &line));
	REQUIRE(asprintf(&full, "%s%s", note, line) > 0);
	/* 4-byte key id, then the time 1679315147 big-endian: as in the spec */
	CHECK(strlen(strrchr(line, ' ') + 1) == 104 + 1);

	both[0] = pv;
	memset(&both[1], 0, sizeof(both[1]));
	snprintf(both[1].name, sizeof(both[1].name), "witness.example.com/w1");
	memcpy(both[1].pk, pk, 32);
	both[1].cosigner = true;
	CHECK_RC(enl_note_open(full, strlen(full), both, 2, &tl, ok), ENL_OK);
	CHECK(ok[0] && ok[1] && tl == strlen(body));
	/* the same key as a note signer (type 0x01) does not match the line */
	both[1].cosigner = false;
	CHECK_RC(enl_note_open(full, strlen(full), both, 2, &tl, ok), ENL_OK);
	CHECK(ok[0] && !ok[1]);
	both[1].cosigner = true;
	/* every changed base64 character of the cosignature is refused (but
	 * the last one before the padding, whose low bits are unused) */
	{
		size_t start = strlen(note) + strlen(line) - 105, n = 0;
		for (size_t i = start; i < strlen(full) - 4; i++) {
			char save = full[i];
			full[i] = save == 'A' ? 'B' : 'A';
			/* refused, or (a changed key id) not this cosigner's line */
			n += enl_note_open(full, strlen(full), both, 2, &tl, ok) != ENL_OK ||
			     !ok[1];
			full[i] = save;
		}
		CHECK(n == strlen(full) - 4 - start);
	}
	/* over another body, it does not verify */
	{
		char *other = NULL, *onote = NULL, *ofull = NULL;
		cp.size++;
		REQUIRE_OK(enl_checkpoint_format(&cp, &other));
		REQUIRE_OK(enl_note_sign(peter, "PeterNeumann", other, &onote));
		REQUIRE(asprintf(&ofull, "%s%s", onote, line) > 0);
		CHECK_RC(enl_note_open(ofull, strlen(ofull), both, 2, &tl, ok),
			 ENL_E_BAD_SIGNATURE);
		free(other);
		free(onote);
		free(ofull);
	}
	free(body);
	free(note);
	free(line);
	free(full);
	enl_identity_free(witness);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	setup();
	RUN(test_published_example);
	RUN(test_refusals);
	RUN(test_checkpoint);
	RUN(test_cosignature);
	enl_identity_free(peter);
	return harness_done();
}
