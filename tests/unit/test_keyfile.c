/* Key files at rest, identities, verifier keys and fingerprints. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "harness.h"
#include "world.h"

static char tmpdir[256];

static void
path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static bool
same_keys(const struct enl_identity *a, const struct enl_identity *b)
{
	struct enl_key_secret x, y;
	bool same = enl_identity_count(a) == enl_identity_count(b) &&
		    strcmp(enl_identity_id(a), enl_identity_id(b)) == 0;

	for (size_t i = 0; same && i < enl_identity_count(a); i++) {
		if (enl_identity_secret_at(a, i, &x) != ENL_OK ||
		    enl_identity_secret_at(b, i, &y) != ENL_OK)
			return false;
		same = x.version == y.version && x.retired == y.retired &&
		       sodium_memcmp(x.sign_seed, y.sign_seed, 32) == 0 &&
		       sodium_memcmp(x.enc_sk, y.enc_sk, 32) == 0;
	}
	sodium_memzero(&x, sizeof(x));
	sodium_memzero(&y, sizeof(y));
	return same;
}

/* Cheap Argon2id for the tests; the tool uses the default cost. */
static const struct enl_kdf_cost fast = {crypto_pwhash_OPSLIMIT_MIN,
					 crypto_pwhash_MEMLIMIT_MIN};

static void
test_encrypted(void)
{
	struct enl_identity *id = NULL, *back = NULL;
	char path[512];
	struct stat st;
	bool enc = false;

	path_of(path, sizeof(path), "enc.key");
	REQUIRE_OK(world_identity("AR-UIF", 3, &id));
	REQUIRE_OK(enl_keyfile_write(path, id, "correct horse", 13, &fast, false));
	REQUIRE(stat(path, &st) == 0);
	CHECK((st.st_mode & 0777) == 0600);
	CHECK_RC(enl_keyfile_probe(path, &enc), ENL_OK);
	CHECK(enc);
	CHECK_RC(enl_keyfile_read(path, "correct horse", 13, &back), ENL_OK);
	CHECK(back != NULL && same_keys(id, back));
	CHECK(back != NULL && enl_identity_current(back) == 3);
	enl_identity_free(back);
	back = NULL;
	CHECK_RC(enl_keyfile_read(path, "wrong horse", 11, &back), ENL_E_BAD_PASSPHRASE);
	CHECK_RC(enl_keyfile_read(path, "correct hors", 12, &back), ENL_E_BAD_PASSPHRASE);
	CHECK_RC(enl_keyfile_read(path, NULL, 0, &back), ENL_E_BAD_PASSPHRASE);
	/* Never replaced without force. */
	CHECK_RC(enl_keyfile_write(path, id, "other", 5, &fast, false), ENL_E_EXISTS);
	CHECK_RC(enl_keyfile_read(path, "correct horse", 13, &back), ENL_OK);
	enl_identity_free(back);
	back = NULL;
	CHECK_RC(enl_keyfile_write(path, id, "other", 5, &fast, true), ENL_OK);
	CHECK_RC(enl_keyfile_read(path, "other", 5, &back), ENL_OK);
	CHECK(back == NULL || same_keys(id, back));
	enl_identity_free(back);
	enl_identity_free(id);
}

static void
test_plain(void)
{
	struct enl_identity *id = NULL, *back = NULL;
	char path[512];
	struct stat st;
	bool enc = true;

	path_of(path, sizeof(path), "plain.key");
	REQUIRE_OK(world_identity("BR-PF", 1, &id));
	REQUIRE_OK(enl_keyfile_write(path, id, NULL, 0, NULL, false));
	REQUIRE(stat(path, &st) == 0);
	CHECK((st.st_mode & 0777) == 0600);
	CHECK_RC(enl_keyfile_probe(path, &enc), ENL_OK);
	CHECK(!enc);
	CHECK_RC(enl_keyfile_read(path, NULL, 0, &back), ENL_OK);
	CHECK(back != NULL && same_keys(id, back));
	enl_identity_free(back);
	back = NULL;
	/* Readable by others: refused. */
	REQUIRE(chmod(path, 0644) == 0);
	CHECK_RC(enl_keyfile_read(path, NULL, 0, &back), ENL_E_INSECURE_FILE);
	enl_identity_free(id);
}

static void
test_damaged(void)
{
	struct enl_identity *id = NULL, *back = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[512];

	path_of(path, sizeof(path), "damaged.key");
	REQUIRE_OK(world_identity("US-FINCEN", 2, &id));
	REQUIRE_OK(enl_keyfile_write(path, id, "pw", 2, &fast, false));
	REQUIRE_OK(enl_file_read(path, ENL_KEYFILE_MAX, &buf, &len));
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x10;
		CHECK(enl_keyfile_decode(buf, len, "pw", 2, &back) != ENL_OK);
		buf[i] ^= 0x10;
	}
	CHECK_RC(enl_keyfile_decode(buf, len - 1, "pw", 2, &back), ENL_E_MALFORMED);
	CHECK_RC(enl_keyfile_decode(buf, 5, "pw", 2, &back), ENL_E_MALFORMED);
	CHECK_RC(enl_keyfile_read("/nonexistent/x.key", "pw", 2, &back), ENL_E_NOT_FOUND);
	CHECK(back == NULL);
	free(buf);
	enl_identity_free(id);
}

static void
test_identity_rules(void)
{
	struct enl_identity *id = NULL;
	struct enl_key_secret ks = {.version = 1};
	uint32_t v = 0;

	CHECK_RC(enl_identity_new("bad id", &id), ENL_E_INVAL);
	CHECK_RC(enl_identity_new("A-X", &id), ENL_E_INVAL);
	CHECK(enl_id_valid("OAS-BROKER") && enl_id_valid("US-FINCEN") && enl_id_valid("AR-UIF"));
	CHECK(!enl_id_valid("ar-uif") && !enl_id_valid("AR-") && !enl_id_valid("ARGENTINA-X"));
	CHECK(!enl_id_valid("AR-ABCDEFGHIJKLMNOPQRSTUVWX"));
	CHECK(enl_id_valid("AR-ABCDEFGHIJKLMNOPQRSTUVW"));
	REQUIRE_OK(enl_identity_new("AR-UIF", &id));
	CHECK(enl_identity_current(id) == 0);
	CHECK_RC(enl_identity_add(id, &ks), ENL_OK);
	CHECK_RC(enl_identity_add(id, &ks), ENL_E_EXISTS);
	CHECK_RC(enl_identity_rotate(id, &v), ENL_OK);
	CHECK(v == 2 && enl_identity_current(id) == 2 && enl_identity_count(id) == 2);
	enl_identity_free(id);
}

static void
test_vkey(void)
{
	/* Published C2SP signed-note examples: the key ids must check. */
	static const char *const known[] = {
		"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	};
	char name[ENL_VKEY_NAME_MAX + 1], text[ENL_VKEY_MAX];
	uint8_t pk[32], pk2[32];

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		CHECK_RC(enl_vkey_parse(known[i], name, pk), ENL_OK);
		CHECK_RC(enl_vkey_format(name, pk, text), ENL_OK);
		CHECK(strcmp(text, known[i]) == 0);
	}
	CHECK_RC(enl_vkey_parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
				name, pk2), ENL_E_MALFORMED);
	CHECK_RC(enl_vkey_parse("no-plus-here", name, pk2), ENL_E_MALFORMED);
	CHECK_RC(enl_vkey_parse("a+530d903a+", name, pk2), ENL_E_MALFORMED);
	CHECK_RC(enl_vkey_format("bad name", pk, text), ENL_E_INVAL);
}

/* A mapped file is the file, byte for byte; the limits and refusals are
 * enl_file_read's. */
static void
test_file_map(void)
{
	char path[300], dirp[300];
	uint8_t data[70000];
	const uint8_t *m = NULL;
	size_t len = 0;

	randombytes_buf(data, sizeof(data));
	path_of(path, sizeof(path), "mapped.bin");
	REQUIRE_OK(enl_file_write(path, data, sizeof(data), 0600, true));
	REQUIRE_OK(enl_file_map(path, sizeof(data), &m, &len));
	CHECK(len == sizeof(data) && memcmp(m, data, len) == 0);
	enl_file_unmap(m, len);
	CHECK_RC(enl_file_map(path, sizeof(data) - 1, &m, &len), ENL_E_TOO_LARGE);
	path_of(dirp, sizeof(dirp), "");
	CHECK_RC(enl_file_map(dirp, sizeof(data), &m, &len), ENL_E_NOT_REGULAR);
	path_of(path, sizeof(path), "no-such-file");
	CHECK_RC(enl_file_map(path, sizeof(data), &m, &len), ENL_E_NOT_FOUND);
	path_of(path, sizeof(path), "empty.bin");
	REQUIRE_OK(enl_file_write(path, data, 0, 0600, true));
	REQUIRE_OK(enl_file_map(path, sizeof(data), &m, &len));
	CHECK(len == 0 && m != NULL);
	enl_file_unmap(m, len);
}

/*
 * Large files are written and read with O_DIRECT, through whole aligned
 * blocks: every size around the block and chunk edges comes back byte for
 * byte, with its mode, and a read gets the NUL after the bytes. Run once
 * more with ENLACE_NODIRECT and the diskfull module, where the file
 * system refuses O_DIRECT and the ordinary path must serve.
 */
static void
test_large_files(void)
{
	static const size_t sizes[] = {
		((size_t)1 << 20) - 1, (size_t)1 << 20, ((size_t)1 << 20) + 1,
		((size_t)1 << 20) + 4095, ((size_t)1 << 20) + 4096, 3 * ((size_t)1 << 20) + 17,
		2 * ((size_t)1 << 20),
	};
	size_t max = 4 * ((size_t)1 << 20);
	uint8_t *data = malloc(max);
	char path[300];

	REQUIRE(data != NULL);
	randombytes_buf(data, max);
	path_of(path, sizeof(path), "large.bin");
	if (getenv("ENLACE_NODIRECT") != NULL) {	/* the module is in place */
		int fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0600);
		CHECK(fd < 0 && errno == EINVAL);
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *back = NULL;
		size_t len = 0;
		struct stat st;
		data[0] = (uint8_t)i;	/* each round's file differs */
		REQUIRE_OK(enl_file_write(path, data, sizes[i], 0640, true));
		CHECK(stat(path, &st) == 0 && (size_t)st.st_size == sizes[i] &&
		      (st.st_mode & 0777) == 0640);
		CHECK_RC(enl_file_read(path, max, &back, &len), ENL_OK);
		CHECK(back != NULL && len == sizes[i] && memcmp(back, data, len) == 0 &&
		      back[len] == '\0');
		free(back);
		CHECK_RC(enl_file_read(path, sizes[i] - 1, &back, &len), ENL_E_TOO_LARGE);
		/* into memory anywhere (odd addresses too), through the same file */
		{
			int fd = -1;
			uint8_t *into = malloc(sizes[i] + 3);
			REQUIRE(into != NULL);
			CHECK_RC(enl_file_open(path, max, &fd, &len), ENL_OK);
			CHECK(len == sizes[i]);
			if (fd >= 0) {
				CHECK_RC(enl_file_read_into(fd, into + 3, len), ENL_OK);
				CHECK(memcmp(into + 3, data, len) == 0);
				CHECK_RC(enl_file_read_into(fd, into + 1, len - 1), ENL_OK);
				CHECK(memcmp(into + 1, data, len - 1) == 0);
				/* the descriptor is as it was: ordinary reads work */
				CHECK(pread(fd, into, 7, 1) == 7 && memcmp(into, data + 1, 7) == 0);
				CHECK_RC(enl_file_read_into(fd, into, len + 1), ENL_E_IO);
				close(fd);
			}
			free(into);
		}
	}
	/* not replacing: the one there stays */
	CHECK_RC(enl_file_write(path, data + 1, sizes[0], 0600, false), ENL_E_EXISTS);
	{
		uint8_t *back = NULL;
		size_t len = 0;
		CHECK_RC(enl_file_read(path, max, &back, &len), ENL_OK);
		CHECK(len == sizes[6] && back != NULL && memcmp(back, data, len) == 0);
		free(back);
	}
	free(data);
}

static void
test_fingerprint(void)
{
	uint8_t pk[32] = {0};
	char a[ENL_FINGERPRINT_LEN], b[ENL_FINGERPRINT_LEN];

	enl_fingerprint(pk, a);
	CHECK(strlen(a) == 39 && a[4] == ' ' && a[34] == ' ');
	pk[31] = 1;
	enl_fingerprint(pk, b);
	CHECK(strcmp(a, b) != 0);
}

int
main(void)
{
	int rc;

	if (enl_init() != ENL_OK)
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/enlace-test-keyfile-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	RUN(test_encrypted);
	RUN(test_plain);
	RUN(test_damaged);
	RUN(test_identity_rules);
	RUN(test_vkey);
	RUN(test_fingerprint);
	RUN(test_file_map);
	RUN(test_large_files);
	rc = harness_done();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return rc;
}
