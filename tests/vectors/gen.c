/*
 * Known-answer vectors: with a deterministic random source and fixed
 * times, the library must produce exactly the bytes checked in here.
 *
 *   vectors gen DIR    writes the vectors into DIR
 *   vectors check DIR  regenerates them in memory and compares with DIR,
 *                      then reads DIR's files back with the library
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "harness.h"
#include "world.h"

#define PASSPHRASE "enlace test vector"
#define SEED "enlace/vectors/v1"

/* ---- a deterministic randombytes: BLAKE2b(SEED || counter) streams ---- */

static uint64_t counter;

static void
det_buf(void *const buf, const size_t size)
{
	uint8_t seed[randombytes_SEEDBYTES], in[sizeof(SEED) + 8];

	memcpy(in, SEED, sizeof(SEED));
	for (int i = 0; i < 8; i++)
		in[sizeof(SEED) + i] = (uint8_t)(counter >> (8 * i));
	counter++;
	crypto_generichash(seed, sizeof(seed), in, sizeof(in), NULL, 0);
	randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t
det_random(void)
{
	uint32_t v;

	det_buf(&v, sizeof(v));
	return v;
}

static const char *det_name(void) { return "enlace-vectors"; }
static void det_stir(void) {}

static struct randombytes_implementation det_impl = {
	.implementation_name = det_name,
	.random = det_random,
	.stir = det_stir,
	.uniform = NULL,
	.buf = det_buf,
	.close = NULL,
};

/* ---- the vectors ---- */

struct file {
	const char *name;
	uint8_t *buf;
	size_t len;
};

enum { F_AUTH_PUB, F_AUTH_KEY, F_AR_KEY, F_BR_KEY, F_AR_CARD, F_BR_CARD,
       F_DIRECTORY, F_ENVELOPE, N_FILES };

static struct file files[N_FILES] = {
	{"authority.pub", NULL, 0}, {"authority.key", NULL, 0},
	{"ar-uif.key", NULL, 0},    {"br-pf.key", NULL, 0},
	{"ar-uif.card", NULL, 0},   {"br-pf.card", NULL, 0},
	{"directory.bin", NULL, 0}, {"envelope.bin", NULL, 0},
};

static const struct enl_kdf_cost min_cost = {crypto_pwhash_OPSLIMIT_MIN,
					     crypto_pwhash_MEMLIMIT_MIN};

/* Key files go through the disk (the library writes only files). */
static int
keyfile_bytes(const char *tmp, const struct enl_identity *id, const char *pass,
	      struct file *f)
{
	char path[512];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", tmp, f->name);
	rc = enl_keyfile_write(path, id, pass, pass ? strlen(pass) : 0, &min_cost, true);
	if (rc == ENL_OK)
		rc = enl_file_read(path, ENL_KEYFILE_MAX, &f->buf, &f->len);
	remove(path);
	return rc;
}

static int
make_vectors(const char *tmp)
{
	static const char *const ids[] = {"AR-UIF", "BR-PF"};
	struct world w;
	struct enl_directory *d = NULL;
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_limits lim = enl_limits_default();
	struct enl_header h;
	struct enl_attachment att = {"transfers.csv", "text/csv",
				     (const uint8_t *)"date,amount\n2026-09-01,9900\n", 28};
	struct enl_payload p = {"Structured deposits", "Three deposits below the threshold.",
				1, &att, NULL, 0, NULL};
	char vkey[ENL_VKEY_MAX];
	uint8_t pk[32], epk[32], *cards[2];
	size_t lens[2];
	int rc;

	if ((rc = world_init(&w, ids, 2)) != ENL_OK)
		return rc;
	/* Cards with real kinds and names rather than the world's defaults. */
	if ((rc = enl_card_make(w.agency[0], ENL_KIND_FIU, "AR",
				"Unidad de Información Financiera", NULL, WORLD_TIME,
				&files[F_AR_CARD].buf, &files[F_AR_CARD].len)) != ENL_OK ||
	    (rc = enl_card_make(w.agency[1], ENL_KIND_POLICE, "BR", "Polícia Federal",
				NULL, WORLD_TIME, &files[F_BR_CARD].buf,
				&files[F_BR_CARD].len)) != ENL_OK)
		goto out;
	cards[0] = files[F_AR_CARD].buf;
	cards[1] = files[F_BR_CARD].buf;
	lens[0] = files[F_AR_CARD].len;
	lens[1] = files[F_BR_CARD].len;
	if ((rc = enl_directory_build(w.authority, 1, WORLD_TIME, WORLD_TIME + 90 * 86400,
				      (const uint8_t *const *)cards, lens, 2, NULL, 0,
				      &files[F_DIRECTORY].buf,
				      &files[F_DIRECTORY].len)) != ENL_OK ||
	    (rc = enl_directory_parse(files[F_DIRECTORY].buf, files[F_DIRECTORY].len,
				      &chk, &d)) != ENL_OK)
		goto out;
	{
		struct enl_keyring kr = enl_directory_keyring(d);
		memset(&h, 0, sizeof(h));
		h.n_recipients = 1;
		snprintf(h.recipients[0], sizeof(h.recipients[0]), "BR-PF");
		h.type = ENL_MSG_CASE_MESSAGE;
		h.handling.tlp = ENL_TLP_AMBER;
		h.handling.onward = ENL_ONWARD_CONSENT;
		h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
		h.reliability = ENL_REL_B;
		h.assessment = 2;
		h.priority = ENL_PRIO_PRIORITY;
		snprintf(h.case_ref, sizeof(h.case_ref), "CASE-2026-0042");
		rc = enl_envelope_seal(w.agency[0], &kr, &lim, &h, &p, WORLD_TIME + 60,
				       &files[F_ENVELOPE].buf, &files[F_ENVELOPE].len);
		if (rc != ENL_OK)
			goto out;
	}
	if ((rc = enl_identity_public(w.authority, 1, pk, epk)) != ENL_OK ||
	    (rc = enl_vkey_format("ENLACE-AUTHORITY", pk, vkey)) != ENL_OK)
		goto out;
	files[F_AUTH_PUB].len = strlen(vkey) + 1;
	if ((files[F_AUTH_PUB].buf = malloc(files[F_AUTH_PUB].len + 1)) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	snprintf((char *)files[F_AUTH_PUB].buf, files[F_AUTH_PUB].len + 1, "%s\n", vkey);
	if ((rc = keyfile_bytes(tmp, w.authority, NULL, &files[F_AUTH_KEY])) != ENL_OK ||
	    (rc = keyfile_bytes(tmp, w.agency[0], PASSPHRASE, &files[F_AR_KEY])) != ENL_OK ||
	    (rc = keyfile_bytes(tmp, w.agency[1], NULL, &files[F_BR_KEY])) != ENL_OK)
		goto out;
out:
	enl_directory_free(d);
	world_fini(&w);
	return rc;
}

/* Reads the checked-in files back with the library, as another program
 * would: the key files open, the directory verifies, the envelope opens. */
static void
read_back(const char *dir)
{
	char path[512], name[ENL_VKEY_NAME_MAX + 1];
	struct enl_identity *br = NULL, *ar = NULL;
	struct enl_directory *d = NULL;
	struct enl_message *m = NULL;
	struct enl_limits lim = enl_limits_default();
	uint8_t pk[32];
	struct enl_dir_check chk = {pk, 0, WORLD_TIME + 1};
	struct enl_keyring kr;

	CHECK_RC(enl_vkey_parse((const char *)files[F_AUTH_PUB].buf, name, pk), ENL_OK);
	snprintf(path, sizeof(path), "%s/directory.bin", dir);
	REQUIRE_OK(enl_directory_load(path, &chk, &d));
	kr = enl_directory_keyring(d);
	CHECK(enl_directory_find(d, "AR-UIF") != NULL);
	CHECK(strcmp(enl_directory_find(d, "BR-PF")->name, "Polícia Federal") == 0);
	CHECK_RC(enl_keyfile_decode(files[F_BR_KEY].buf, files[F_BR_KEY].len, NULL, 0, &br),
		 ENL_OK);
	CHECK_RC(enl_keyfile_decode(files[F_AR_KEY].buf, files[F_AR_KEY].len, PASSPHRASE,
				    strlen(PASSPHRASE), &ar), ENL_OK);
	if (br != NULL) {
		CHECK_RC(enl_envelope_open(files[F_ENVELOPE].buf, files[F_ENVELOPE].len, br,
					   &kr, &lim, WORLD_TIME + 61, &m), ENL_OK);
		if (m != NULL) {
			CHECK(strcmp(m->header.sender, "AR-UIF") == 0);
			CHECK(m->header.created_at == WORLD_TIME + 60);
			CHECK(strcmp(m->payload.subject, "Structured deposits") == 0);
			CHECK(m->payload.n_attachments == 1 &&
			      m->payload.attachments[0].len == 28);
		}
	}
	enl_message_free(m);
	enl_identity_free(ar);
	enl_identity_free(br);
	enl_directory_free(d);
}

int
main(int argc, char **argv)
{
	int rc;

	if (argc != 3 || (strcmp(argv[1], "gen") != 0 && strcmp(argv[1], "check") != 0)) {
		fprintf(stderr, "usage: vectors gen|check DIR\n");
		return 2;
	}
	randombytes_set_implementation(&det_impl);
	if (enl_init() != ENL_OK)
		return 1;
	{
		char tmp[] = "/tmp/enlace-vectors-XXXXXX";
		if (mkdtemp(tmp) == NULL)
			return 1;
		rc = make_vectors(tmp);
		rmdir(tmp);
		if (rc != ENL_OK) {
			fprintf(stderr, "making the vectors: %s\n", enl_strerror(rc));
			return 1;
		}
	}
	for (int i = 0; i < N_FILES; i++) {
		char path[512];
		uint8_t *want = NULL;
		size_t want_len = 0;
		snprintf(path, sizeof(path), "%s/%s", argv[2], files[i].name);
		if (strcmp(argv[1], "gen") == 0) {
			rc = enl_file_write(path, files[i].buf, files[i].len, 0644, true);
			if (rc != ENL_OK)
				fprintf(stderr, "%s: %s\n", path, enl_strerror(rc));
			continue;
		}
		CHECK_RC(enl_file_read(path, 1 << 20, &want, &want_len), ENL_OK);
		CHECK(want_len == files[i].len &&
		      memcmp(want, files[i].buf, want_len) == 0);
		if (want_len != files[i].len || memcmp(want, files[i].buf, want_len) != 0)
			fprintf(stderr, "%s differs from what the library makes\n", path);
		free(want);
	}
	if (strcmp(argv[1], "check") == 0)
		read_back(argv[2]);
	for (int i = 0; i < N_FILES; i++)
		free(files[i].buf);
	return strcmp(argv[1], "gen") == 0 ? 0 : harness_done();
}
