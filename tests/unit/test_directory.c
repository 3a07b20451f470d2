/* The signed directory: checks, refusals, tampering, revocation. */
#include <string.h>

#include "enlace/keys.h"
#include "harness.h"
#include "world.h"

#define NOW (WORLD_TIME + 100)

static struct world w;
static const char *const ids[] = {"AR-UIF", "BR-PF", "US-FINCEN", "CO-FGN"};

static struct enl_dir_check
pinned(uint64_t held, int64_t now)
{
	struct enl_dir_check chk = {enl_directory_authority_pk(w.d), held, now};

	return chk;
}

static void
test_parse_and_lookup(void)
{
	struct enl_dir_check chk = pinned(0, NOW);
	struct enl_directory *d = NULL;
	const struct enl_card *c;
	uint8_t pk[32];

	REQUIRE_OK(enl_directory_parse(w.dir, w.dir_len, &chk, &d));
	CHECK(enl_directory_serial(d) == w.serial);
	CHECK(enl_directory_card_count(d) == 4);
	c = enl_directory_find(d, "US-FINCEN");
	REQUIRE(c != NULL);
	CHECK(c->kind == ENL_KIND_FIU && strcmp(c->country, "US") == 0);
	CHECK(c->current_version == 1 && c->n_keys == 1);
	CHECK(enl_directory_find(d, "XX-NONE") == NULL);
	{
		struct enl_keyring kr = enl_directory_keyring(d);
		uint32_t v = 0;
		CHECK_RC(kr.signing_key(kr.ctx, "AR-UIF", 1, pk), ENL_OK);
		CHECK_RC(kr.signing_key(kr.ctx, "AR-UIF", 2, pk), ENL_E_UNKNOWN_KEY_VERSION);
		CHECK_RC(kr.signing_key(kr.ctx, "XX-NONE", 1, pk), ENL_E_UNKNOWN_SENDER);
		CHECK_RC(kr.encryption_key(kr.ctx, "BR-PF", &v, pk), ENL_OK);
		CHECK(v == 1);
		CHECK_RC(kr.encryption_key(kr.ctx, "XX-NONE", &v, pk), ENL_E_UNKNOWN_RECIPIENT);
	}
	enl_directory_free(d);
}

static void
test_refusals(void)
{
	struct enl_dir_check chk;
	struct enl_directory *d = NULL;
	struct enl_identity *other = NULL;
	uint8_t pk[32], epk[32];

	/* Lower or equal serial than the one held. */
	chk = pinned(w.serial, NOW);
	CHECK_RC(enl_directory_parse(w.dir, w.dir_len, &chk, &d), ENL_E_DIR_OLD_SERIAL);
	chk = pinned(w.serial + 5, NOW);
	CHECK_RC(enl_directory_parse(w.dir, w.dir_len, &chk, &d), ENL_E_DIR_OLD_SERIAL);
	/* Expired. */
	chk = pinned(0, WORLD_TIME + 86400 * 365);
	CHECK_RC(enl_directory_parse(w.dir, w.dir_len, &chk, &d), ENL_E_DIR_EXPIRED);
	/* Another authority pinned. */
	REQUIRE_OK(world_identity("XX-OTHER", 1, &other));
	REQUIRE_OK(enl_identity_public(other, 1, pk, epk));
	chk = pinned(0, NOW);
	chk.authority_pk = pk;
	CHECK_RC(enl_directory_parse(w.dir, w.dir_len, &chk, &d), ENL_E_DIR_AUTHORITY);
	/* A well-formed directory signed by another authority. */
	{
		uint8_t *forged = NULL;
		size_t len = 0;
		CHECK_RC(enl_directory_build(other, 9, WORLD_TIME, WORLD_TIME + 1000,
					     (const uint8_t *const *)w.card, w.card_len,
					     w.n, NULL, 0, &forged, &len), ENL_OK);
		chk = pinned(0, NOW);
		CHECK_RC(enl_directory_parse(forged, len, &chk, &d), ENL_E_DIR_AUTHORITY);
		free(forged);
	}
	/* Garbage. */
	chk = pinned(0, NOW);
	CHECK_RC(enl_directory_parse((const uint8_t *)"xyz", 3, &chk, &d), ENL_E_MALFORMED);
	CHECK(d == NULL);
	enl_identity_free(other);
}

static void
test_tamper_matrix(void)
{
	struct enl_dir_check chk = pinned(0, NOW);
	struct enl_directory *d = NULL;
	size_t accepted = 0;

	for (size_t i = 0; i < w.dir_len; i++) {
		w.dir[i] ^= 0x01;
		if (enl_directory_parse(w.dir, w.dir_len, &chk, &d) == ENL_OK) {
			fprintf(stderr, "byte %zu flipped still parses\n", i);
			accepted++;
			enl_directory_free(d);
			d = NULL;
		}
		w.dir[i] ^= 0x01;
		w.dir[i] ^= 0xff;
		if (enl_directory_parse(w.dir, w.dir_len, &chk, &d) == ENL_OK) {
			accepted++;
			enl_directory_free(d);
			d = NULL;
		}
		w.dir[i] ^= 0xff;
	}
	CHECK(accepted == 0);
	for (size_t n = 0; n < w.dir_len; n++)
		CHECK(enl_directory_parse(w.dir, n, &chk, &d) != ENL_OK);
	CHECK_RC(enl_directory_parse(w.dir, w.dir_len, &chk, &d), ENL_OK);
	enl_directory_free(d);
}

static void
test_build_refuses(void)
{
	uint8_t *out = NULL, *cards[2];
	size_t len = 0, lens[2];

	/* Duplicate ids. */
	cards[0] = cards[1] = w.card[0];
	lens[0] = lens[1] = w.card_len[0];
	CHECK_RC(enl_directory_build(w.authority, 2, NOW, NOW + 10,
				     (const uint8_t *const *)cards, lens, 2, NULL, 0,
				     &out, &len), ENL_E_EXISTS);
	/* A card whose self-signature fails. */
	{
		uint8_t *bad = malloc(w.card_len[1]);
		REQUIRE(bad != NULL);
		memcpy(bad, w.card[1], w.card_len[1]);
		bad[w.card_len[1] - 1] ^= 1;	/* in the signature */
		cards[0] = bad;
		lens[0] = w.card_len[1];
		CHECK_RC(enl_directory_build(w.authority, 2, NOW, NOW + 10,
					     (const uint8_t *const *)cards, lens, 1,
					     NULL, 0, &out, &len), ENL_E_BAD_CARD);
		free(bad);
	}
	/* Expiry not after issue. */
	CHECK_RC(enl_directory_build(w.authority, 2, NOW, NOW,
				     (const uint8_t *const *)w.card, w.card_len, 1, NULL,
				     0, &out, &len), ENL_E_INVAL);
	CHECK(out == NULL);
}

static void
test_revoke(void)
{
	struct enl_dir_check chk = pinned(0, NOW);
	struct enl_directory *d = NULL, *d2 = NULL;
	struct enl_revocation rev = {"BR-PF", 1, "device seized", 0};
	uint8_t *out = NULL, pk[32];
	size_t len = 0;

	REQUIRE_OK(enl_directory_parse(w.dir, w.dir_len, &chk, &d));
	REQUIRE_OK(enl_directory_revoke(w.authority, d, &rev, NOW, &out, &len));
	chk = pinned(enl_directory_serial(d), NOW);
	CHECK_RC(enl_directory_parse(out, len, &chk, &d2), ENL_OK);
	if (d2 != NULL) {
		struct enl_keyring kr = enl_directory_keyring(d2);
		uint32_t v;
		CHECK(enl_directory_serial(d2) == enl_directory_serial(d) + 1);
		CHECK(enl_directory_revocation_count(d2) == 1);
		CHECK(enl_directory_revoked(d2, "BR-PF", 1) != NULL);
		CHECK(strcmp(enl_directory_revocation_at(d2, 0)->reason, "device seized") == 0);
		CHECK(enl_directory_revocation_at(d2, 0)->revoked_at == NOW);
		CHECK_RC(kr.signing_key(kr.ctx, "BR-PF", 1, pk), ENL_E_REVOKED_KEY);
		CHECK_RC(kr.encryption_key(kr.ctx, "BR-PF", &v, pk), ENL_E_REVOKED_KEY);
		CHECK_RC(kr.signing_key(kr.ctx, "AR-UIF", 1, pk), ENL_OK);
		/* Revoking it again, an unknown id or version: refused. */
		uint8_t *again = NULL;
		size_t alen = 0;
		CHECK_RC(enl_directory_revoke(w.authority, d2, &rev, NOW, &again, &alen),
			 ENL_E_EXISTS);
		struct enl_revocation r2 = {"XX-NONE", 1, "x", 0};
		CHECK_RC(enl_directory_revoke(w.authority, d2, &r2, NOW, &again, &alen),
			 ENL_E_UNKNOWN_SENDER);
		struct enl_revocation r3 = {"AR-UIF", 7, "x", 0};
		CHECK_RC(enl_directory_revoke(w.authority, d2, &r3, NOW, &again, &alen),
			 ENL_E_UNKNOWN_KEY_VERSION);
		/* Version 0 covers every version. */
		struct enl_revocation r4 = {"AR-UIF", 0, "agency dissolved", 0};
		CHECK_RC(enl_directory_revoke(w.authority, d2, &r4, NOW, &again, &alen), ENL_OK);
		free(again);
	}
	enl_directory_free(d);
	enl_directory_free(d2);
	free(out);
}

static void
test_card_parse(void)
{
	struct enl_card c;

	CHECK_RC(enl_card_parse(w.card[0], w.card_len[0], &c), ENL_OK);
	CHECK(strcmp(c.id, "AR-UIF") == 0 && c.n_keys == 1);
	for (size_t i = 0; i < w.card_len[0]; i++) {
		w.card[0][i] ^= 0x04;
		CHECK(enl_card_parse(w.card[0], w.card_len[0], &c) != ENL_OK);
		w.card[0][i] ^= 0x04;
	}
}

int
main(void)
{
	if (enl_init() != ENL_OK || world_init(&w, ids, 4) != ENL_OK)
		return 1;
	RUN(test_parse_and_lookup);
	RUN(test_refusals);
	RUN(test_tamper_matrix);
	RUN(test_build_refuses);
	RUN(test_revoke);
	RUN(test_card_parse);
	world_fini(&w);
	return harness_done();
}
