/*
 * Known-answer vectors: with a deterministic random source and fixed
 * times, the library must produce exactly the bytes checked in here.
 *
 *   vectors gen DIR    writes the vectors into DIR
 *   vectors check DIR  regenerates them in memory and compares with DIR,
 *                      then reads DIR's files back with the library
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "tlog.h"
#include "enlace/wire.h"
#include "evidence.h"
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
       F_DIRECTORY, F_ENVELOPE, F_ENTRY0, F_ENTRY1, F_ENTRY2, F_CHECKPOINT, F_TILE,
       F_BUNDLE, F_COSIG, F_RECEIPT, F_BROKER_DIR, F_EVIDENCE, N_FILES };

static struct file files[N_FILES] = {
	{"authority.pub", NULL, 0}, {"authority.key", NULL, 0},
	{"ar-uif.key", NULL, 0},    {"br-pf.key", NULL, 0},
	{"ar-uif.card", NULL, 0},   {"br-pf.card", NULL, 0},
	{"directory.bin", NULL, 0}, {"envelope.bin", NULL, 0},
	{"log-entry-0.bin", NULL, 0}, {"log-entry-1.bin", NULL, 0},
	{"log-entry-2.bin", NULL, 0}, {"log-checkpoint.txt", NULL, 0},
	{"log-tile-0-000.p-3.bin", NULL, 0}, {"log-entries-000.p-3.bin", NULL, 0},
	{"cosignature.txt", NULL, 0}, {"receipt.bin", NULL, 0},
	{"directory-2.bin", NULL, 0}, {"evidence.bundle", NULL, 0},
};

#define BROKER "OAS-BROKER"

/* Three audit entries about the envelope, as the broker writes them. */
static int
make_entries(const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
	     const struct enl_identity *br)
{
	static const Enlace__AuditEvent ev[3] = {ENLACE__AUDIT_EVENT__SUBMITTED,
						 ENLACE__AUDIT_EVENT__AUDIT_QUEUED,
						 ENLACE__AUDIT_EVENT__AUDIT_ACKED};
	uint8_t ack[ENL_ACK_MSG_LEN], sig[64];
	int rc;

	enl_ack_message(id, hash, WORLD_TIME + 62, ack);
	if ((rc = enl_identity_sign(br, ENL_LABEL_ACK, ack, sizeof(ack), sig)) != ENL_OK)
		return rc;
	for (int i = 0; i < 3; i++) {
		Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
		e.time = WORLD_TIME + 60 + i;
		e.event = ev[i];
		e.message_id = (ProtobufCBinaryData){ENL_MSG_ID_LEN, (uint8_t *)id};
		e.envelope_hash = (ProtobufCBinaryData){ENL_HASH_LEN, (uint8_t *)hash};
		e.sender = "AR-UIF";
		e.recipient = i == 0 ? "" : "BR-PF";
		e.reason = i == 1 ? "allowed by policy rule fiu-network" : "";
		e.directory_serial = 1;
		e.previous = (uint64_t)i;	/* 1 + the index of the one before; 0 first */
		if (i == 2) {
			e.ack_signature = (ProtobufCBinaryData){64, sig};
			e.ack_time = WORLD_TIME + 62;
		}
		if ((rc = enl_pb_pack(&e.base, &files[F_ENTRY0 + i].buf,
				      &files[F_ENTRY0 + i].len)) != ENL_OK)
			return rc;
	}
	return ENL_OK;
}

/* The three entries in a C2SP log of the broker's: its checkpoint and
 * tiles, BR-PF's cosignature of it, and a receipt of the envelope. */
static int
make_log(const char *tmp, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
	 const struct enl_identity *authority, const struct enl_identity *br)
{
	struct enl_identity *broker = NULL;
	struct tlog *log = NULL;
	char dir[512], path[600], why[300], *note = NULL, *line = NULL, *body = NULL;
	enl_mhash proofs[3][ENL_MERKLE_MAX_PROOF];
	size_t n_proof[3] = {0, 0, 0};
	uint64_t index;
	int rc;

	snprintf(dir, sizeof(dir), "%s/log", tmp);
	if ((rc = world_identity(BROKER, 1, &broker)) != ENL_OK ||
	    (rc = make_entries(id, hash, br)) != ENL_OK ||
	    (rc = tlog_open(dir, "enlace/" BROKER, broker, &log, why, sizeof(why))) != ENL_OK)
		goto out;
	for (int i = 0; i < 3 && rc == ENL_OK; i++)
		rc = tlog_append(log, files[F_ENTRY0 + i].buf, files[F_ENTRY0 + i].len, &index);
	if (rc != ENL_OK || (rc = tlog_commit(log, &note)) != ENL_OK)
		goto out;
	for (int i = 0; i < 3 && rc == ENL_OK; i++)
		rc = enl_tlog_inclusion(tlog_tree(log), (uint64_t)i, 3, proofs[i], &n_proof[i]);
	if (rc != ENL_OK)
		goto out;
	tlog_close(log);
	log = NULL;
	snprintf(path, sizeof(path), "%s/checkpoint", dir);
	if ((rc = enl_file_read(path, ENL_NOTE_MAX, &files[F_CHECKPOINT].buf,
				&files[F_CHECKPOINT].len)) != ENL_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/tile/0/000.p/3", dir);
	if ((rc = enl_file_read(path, 1 << 16, &files[F_TILE].buf, &files[F_TILE].len)) != ENL_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/tile/entries/000.p/3", dir);
	if ((rc = enl_file_read(path, 1 << 16, &files[F_BUNDLE].buf, &files[F_BUNDLE].len)) !=
	    ENL_OK)
		goto out;
	/* the cosignature covers the checkpoint's text: up to its blank line */
	{
		const char *text = (const char *)files[F_CHECKPOINT].buf;
		const char *end = strstr(text, "\n\n");
		if (end == NULL || (body = strndup(text, (size_t)(end - text) + 1)) == NULL) {
			rc = ENL_E_MALFORMED;
			goto out;
		}
	}
	if ((rc = enl_cosign(br, "BR-PF", body, WORLD_TIME + 120, &line)) != ENL_OK)
		goto out;
	files[F_COSIG].buf = (uint8_t *)line;
	files[F_COSIG].len = strlen(line);
	line = NULL;
	/* a receipt: the body, signed as a batch of one */
	{
		Enlace__ReceiptBody rb = ENLACE__RECEIPT_BODY__INIT;
		Enlace__SignedReceipt sr = ENLACE__SIGNED_RECEIPT__INIT;
		struct enl_batch_proof proof[2];
		const uint8_t *msgs[2];
		size_t lens[2];
		uint8_t *rbody = NULL, *other = NULL, sig[64];
		size_t rlen = 0, olen = 0;
		ProtobufCBinaryData bpath[ENL_MERKLE_BATCH_DEPTH];
		rb.broker = BROKER;
		rb.message_id = (ProtobufCBinaryData){ENL_MSG_ID_LEN, (uint8_t *)id};
		rb.envelope_hash = (ProtobufCBinaryData){ENL_HASH_LEN, (uint8_t *)hash};
		rb.sender = "AR-UIF";
		rb.received_at = WORLD_TIME + 60;
		rb.log_index = 0;
		rb.checkpoint = (char *)files[F_CHECKPOINT].buf;
		rb.entry = (ProtobufCBinaryData){files[F_ENTRY0].len, files[F_ENTRY0].buf};
		if ((rc = enl_pb_pack(&rb.base, &rbody, &rlen)) != ENL_OK)
			goto out;
		/* the round's other receipt: the same, received a second later */
		rb.received_at++;
		if ((rc = enl_pb_pack(&rb.base, &other, &olen)) != ENL_OK) {
			free(rbody);
			goto out;
		}
		msgs[0] = rbody;
		lens[0] = rlen;
		msgs[1] = other;
		lens[1] = olen;
		rc = enl_identity_sign_batch(broker, ENL_LABEL_RECEIPT_BATCH, msgs, lens, 2, sig,
					     proof);
		sr.body = (ProtobufCBinaryData){rlen, rbody};
		sr.signature = (ProtobufCBinaryData){64, sig};
		sr.batch_size = proof[0].size;
		sr.batch_index = proof[0].index;
		for (uint8_t k = 0; k < proof[0].n_path; k++)
			bpath[k] = (ProtobufCBinaryData){ENL_MERKLE_HASH_LEN, proof[0].path[k]};
		sr.n_batch_path = proof[0].n_path;
		sr.batch_path = bpath;
		if (rc == ENL_OK)
			rc = enl_pb_pack(&sr.base, &files[F_RECEIPT].buf, &files[F_RECEIPT].len);
		free(rbody);
		free(other);
		if (rc != ENL_OK)
			goto out;
	}
	/* evidence: a directory with the broker's card (serial 2), and the
	 * bundle of the envelope's three entries under the cosigned checkpoint */
	{
		uint8_t *cards[3] = {files[F_AR_CARD].buf, files[F_BR_CARD].buf, NULL};
		size_t lens[3] = {files[F_AR_CARD].len, files[F_BR_CARD].len, 0};
		Enlace__EvidenceBundle eb = ENLACE__EVIDENCE_BUNDLE__INIT;
		Enlace__EvidenceEntry ee[3], *eptr[3];
		ProtobufCBinaryData inc[3][ENL_MERKLE_MAX_PROOF];
		char *cosigned = NULL;
		if ((rc = enl_card_make(broker, ENL_KIND_BROKER, "OAS", "enlace broker", NULL,
					WORLD_TIME, &cards[2], &lens[2])) != ENL_OK)
			goto out;
		rc = enl_directory_build(authority, 2, WORLD_TIME, WORLD_TIME + 90 * 86400,
					 (const uint8_t *const *)cards, lens, 3, NULL, 0,
					 &files[F_BROKER_DIR].buf, &files[F_BROKER_DIR].len);
		free(cards[2]);
		if (rc != ENL_OK)
			goto out;
		if ((cosigned = malloc(files[F_CHECKPOINT].len + files[F_COSIG].len + 1)) == NULL) {
			rc = ENL_E_NOMEM;
			goto out;
		}
		memcpy(cosigned, files[F_CHECKPOINT].buf, files[F_CHECKPOINT].len);
		memcpy(cosigned + files[F_CHECKPOINT].len, files[F_COSIG].buf, files[F_COSIG].len);
		cosigned[files[F_CHECKPOINT].len + files[F_COSIG].len] = '\0';
		for (int i = 0; i < 3; i++) {
			enlace__evidence_entry__init(&ee[i]);
			ee[i].index = (uint64_t)i;
			ee[i].entry = (ProtobufCBinaryData){files[F_ENTRY0 + i].len,
							    files[F_ENTRY0 + i].buf};
			for (size_t k = 0; k < n_proof[i]; k++)
				inc[i][k] = (ProtobufCBinaryData){ENL_MERKLE_HASH_LEN, proofs[i][k]};
			ee[i].n_inclusion = n_proof[i];
			ee[i].inclusion = inc[i];
			eptr[i] = &ee[i];
		}
		eb.version = "enlace-evidence/v1";
		eb.broker = BROKER;
		eb.message_id = (ProtobufCBinaryData){ENL_MSG_ID_LEN, (uint8_t *)id};
		eb.checkpoint = cosigned;
		eb.n_entries = 3;
		eb.entries = eptr;
		eb.directory = (ProtobufCBinaryData){files[F_BROKER_DIR].len, files[F_BROKER_DIR].buf};
		rc = enl_pb_pack(&eb.base, &files[F_EVIDENCE].buf, &files[F_EVIDENCE].len);
		free(cosigned);
	}
out:
	free(note);
	free(line);
	free(body);
	tlog_close(log);
	enl_identity_free(broker);
	return rc;
}

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
	{
		uint8_t hash[ENL_HASH_LEN];
		enl_hash(files[F_ENVELOPE].buf, files[F_ENVELOPE].len, hash);
		rc = make_log(tmp, h.message_id, hash, w.authority, w.agency[1]);
	}
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

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* The log's vectors, read back: the checkpoint and the cosignature verify,
 * the tiles are the entries' hashes, the receipt verifies as a batch. */
static void
read_back_log(void)
{
	struct enl_identity *broker = NULL, *br = NULL;
	struct enl_note_verifier v[2];
	struct enl_checkpoint cp;
	uint8_t pk[32], epk[32];
	Enlace__SignedReceipt *sr = NULL;
	struct enl_batch_proof proof = {0};
	char *note = NULL;
	size_t tl = 0, clen = files[F_CHECKPOINT].len;
	bool ok[2] = {false, false};

	REQUIRE_OK(world_identity(BROKER, 1, &broker));
	REQUIRE_OK(world_identity("BR-PF", 1, &br));
	REQUIRE_OK(enl_identity_public(broker, 1, pk, epk));
	snprintf(v[0].name, sizeof(v[0].name), "enlace/" BROKER);
	memcpy(v[0].pk, pk, 32);
	v[0].cosigner = false;
	REQUIRE_OK(enl_identity_public(br, 1, pk, epk));
	snprintf(v[1].name, sizeof(v[1].name), "BR-PF");
	memcpy(v[1].pk, pk, 32);
	v[1].cosigner = true;
	/* the checkpoint with the cosignature added below its signature */
	REQUIRE((note = malloc(clen + files[F_COSIG].len + 1)) != NULL);
	memcpy(note, files[F_CHECKPOINT].buf, clen);
	memcpy(note + clen, files[F_COSIG].buf, files[F_COSIG].len);
	note[clen + files[F_COSIG].len] = '\0';
	CHECK_RC(enl_note_open(note, strlen(note), v, 2, &tl, ok), ENL_OK);
	CHECK(ok[0] && ok[1]);
	CHECK_RC(enl_checkpoint_parse(note, tl, &cp), ENL_OK);
	CHECK(cp.size == 3);
	/* tile/0: the three leaf hashes; the bundle: the entries, u16-framed */
	CHECK(files[F_TILE].len == 3 * ENL_MERKLE_HASH_LEN);
	for (int i = 0; i < 3 && files[F_TILE].len == 3 * ENL_MERKLE_HASH_LEN; i++) {
		enl_mhash leaf;
		enl_merkle_leaf_hash(files[F_ENTRY0 + i].buf, files[F_ENTRY0 + i].len, leaf);
		CHECK(memcmp(files[F_TILE].buf + i * ENL_MERKLE_HASH_LEN, leaf, 32) == 0);
	}
	CHECK(files[F_BUNDLE].len == 6 + files[F_ENTRY0].len + files[F_ENTRY1].len +
				      files[F_ENTRY2].len);
	REQUIRE_OK(enl_pb_unpack(&enlace__signed_receipt__descriptor, files[F_RECEIPT].buf,
				 files[F_RECEIPT].len, 1 << 20, (ProtobufCMessage **)&sr));
	REQUIRE_OK(enl_identity_public(broker, 1, pk, epk));
	proof.size = sr->batch_size;
	proof.index = sr->batch_index;
	CHECK(sr->batch_size == 2 && sr->n_batch_path == 1);
	proof.n_path = (uint8_t)sr->n_batch_path;
	for (size_t k = 0; k < sr->n_batch_path && k < ENL_MERKLE_BATCH_DEPTH; k++)
		if (sr->batch_path[k].len == ENL_MERKLE_HASH_LEN)
			memcpy(proof.path[k], sr->batch_path[k].data, ENL_MERKLE_HASH_LEN);
	CHECK(sr->signature.len == 64);
	if (sr->signature.len == 64)
		CHECK_RC(enl_verify_batched(pk, ENL_LABEL_RECEIPT_BATCH, sr->body.data, sr->body.len,
					    &proof, sr->signature.data), ENL_OK);
	protobuf_c_message_free_unpacked(&sr->base, NULL);
	/* the bundle checks with the authority's key alone */
	{
		struct trail t;
		uint64_t size = 0;
		char cosigners[256] = "", bwhy[600] = "";
		uint8_t apk[32];
		char aname[ENL_VKEY_NAME_MAX + 1];
		memset(&t, 0, sizeof(t));
		REQUIRE_OK(enl_vkey_parse((const char *)files[F_AUTH_PUB].buf, aname, apk));
		int brc = evidence_check(files[F_EVIDENCE].buf, files[F_EVIDENCE].len, apk, &t,
					 &size, cosigners, sizeof(cosigners), bwhy, sizeof(bwhy));
		if (brc != ENL_OK)
			fprintf(stderr, "evidence.bundle: %s\n", bwhy);
		CHECK_RC(brc, ENL_OK);
		CHECK(size == 3 && t.n == 3 && strcmp(cosigners, "BR-PF") == 0);
		if (brc == ENL_OK)
			trail_free(&t);
	}
	free(note);
	enl_identity_free(broker);
	enl_identity_free(br);
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
		nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
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
	if (strcmp(argv[1], "check") == 0) {
		read_back(argv[2]);
		read_back_log();
	}
	for (int i = 0; i < N_FILES; i++)
		free(files[i].buf);
	return strcmp(argv[1], "gen") == 0 ? 0 : harness_done();
}
