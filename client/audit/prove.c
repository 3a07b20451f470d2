/*
 * enlace-audit prove and check-bundle: the evidence bundle of one
 * message, written, and checked with nothing but the authority's key.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "audit.h"
#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"

/*
 * The broker keeps its newest cosigned checkpoint in `cosigned-checkpoint`.
 * If it is signed by the broker, states a tree this log holds (same root)
 * and covers every entry of the trail, the bundle takes it: *note
 * (malloc'd) and *size; else the published checkpoint (*note NULL).
 */
static void
cosigned_checkpoint(struct message_log *m, uint64_t *size, char **note)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	enl_mhash root;
	uint8_t *buf = NULL;
	size_t len = 0, tl = 0;
	char broker_id[ENL_ID_MAX + 1];

	*size = m->cp.size;
	*note = NULL;
	if (directory_broker(m->dir, &k, broker_id) != ENL_OK ||
	    m->src.s.read(m->src.s.ctx, "cosigned-checkpoint", ENL_NOTE_MAX, &buf, &len) != ENL_OK)
		return;
	if (memchr(buf, '\0', len) == NULL && enl_note_open((char *)buf, len, k.v, k.n, &tl, NULL) == ENL_OK &&
	    enl_checkpoint_parse((char *)buf, tl, &cp) == ENL_OK && strcmp(cp.origin, k.v[0].name) == 0 &&
	    cp.size <= m->cp.size && cp.size > m->t.ev[m->t.n - 1].index &&
	    enl_tlog_root(m->log, cp.size, root) == ENL_OK &&
	    sodium_memcmp(root, cp.root, ENL_MERKLE_HASH_LEN) == 0) {
		if (enl_text_take(buf, len, note) == ENL_OK)
			*size = cp.size;
		return;
	}
	free(buf);
}

int
cmd_prove(int argc, char **argv)
{
	Enlace__EvidenceBundle b = ENLACE__EVIDENCE_BUNDLE__INIT;
	Enlace__EvidenceEntry *ee = NULL, **eep = NULL;
	ProtobufCBinaryData *inc = NULL;
	enl_mhash *proofs = NULL;
	struct message_log m;
	struct opts o;
	uint8_t *bytes = NULL;
	uint64_t proof_size = 0;
	char *note = NULL;
	size_t len = 0;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (o.out == NULL)
		return usage_error("prove writes its bundle to --out FILE");
	if ((rc = message_log_load(&o, &m)) != 0) {
		message_log_free(&m);
		return rc;
	}
	/* a checkpoint with cosignatures, if one covers every entry */
	cosigned_checkpoint(&m, &proof_size, &note);
	rc = ENL_E_NOMEM;
	ee = calloc(m.t.n, sizeof(*ee));
	eep = calloc(m.t.n, sizeof(*eep));
	inc = calloc(m.t.n * ENL_MERKLE_MAX_PROOF, sizeof(*inc));
	proofs = calloc(m.t.n * ENL_MERKLE_MAX_PROOF, sizeof(*proofs));
	if (ee == NULL || eep == NULL || inc == NULL || proofs == NULL)
		goto out;
	for (size_t i = 0; i < m.t.n; i++) {
		enl_mhash *p = proofs + i * ENL_MERKLE_MAX_PROOF;
		size_t n = 0;
		enlace__evidence_entry__init(&ee[i]);
		if ((rc = enl_tlog_inclusion(m.log, m.t.ev[i].index, proof_size, p, &n)) != ENL_OK)
			goto out;
		ee[i].index = m.t.ev[i].index;
		ee[i].entry.data = m.t.ev[i].bytes;
		ee[i].entry.len = m.t.ev[i].len;
		ee[i].n_inclusion = n;
		ee[i].inclusion = inc + i * ENL_MERKLE_MAX_PROOF;
		for (size_t k = 0; k < n; k++) {
			ee[i].inclusion[k].data = p[k];
			ee[i].inclusion[k].len = ENL_MERKLE_HASH_LEN;
		}
		eep[i] = &ee[i];
	}
	b.version = (char *)EVIDENCE_VERSION;
	b.broker = m.broker;
	b.message_id.data = m.t.id;
	b.message_id.len = ENL_MSG_ID_LEN;
	b.checkpoint = note != NULL ? note : (char *)enl_tlog_note(m.log);
	b.n_entries = m.t.n;
	b.entries = eep;
	b.directory.data = m.dir_bytes;
	b.directory.len = m.dir_len;
	if ((rc = enl_pb_pack(&b.base, &bytes, &len)) != ENL_OK ||
	    (rc = enl_file_write(o.out, bytes, len, 0600, false)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s%s\n", o.out, enl_strerror(rc),
			rc == ENL_E_EXISTS ? " (it is never overwritten)" : "");
		goto out;
	}
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "bundle", o.out);
		enl_json_int(&j, "entries", (int64_t)m.t.n);
		enl_json_int(&j, "checkpoint_size", (int64_t)proof_size);
		enl_json_bool(&j, "cosigned", note != NULL);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		printf("%s: %zu entries of message %s with their inclusion proofs under the "
		       "%scheckpoint of %" PRIu64 " entries, and directory serial %" PRIu64 "\n",
		       o.out, m.t.n, o.argv[0], note != NULL ? "cosigned " : "", proof_size,
		       enl_directory_serial(m.dir));
	}
out:
	free(bytes);
	free(ee);
	free(eep);
	free(inc);
	free(proofs);
	free(note);
	message_log_free(&m);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}

int
cmd_check_bundle(int argc, char **argv)
{
	struct trail t;
	struct opts o;
	uint8_t apk[32], *buf = NULL;
	char why[600], cosigners[2048];
	uint64_t size = 0;
	size_t len = 0;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (o.argc != 1 || o.authority_pub == NULL)
		return usage_error("check-bundle takes one FILE and --authority-pub");
	if ((rc = enl_authority_pub_read(o.authority_pub, apk)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o.authority_pub, enl_strerror(rc));
		return EXIT_BAD;
	}
	if ((rc = enl_file_read(o.argv[0], EVIDENCE_MAX, &buf, &len)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o.argv[0], enl_strerror(rc));
		return EXIT_BAD;
	}
	rc = evidence_check(buf, len, apk, &t, &size, cosigners, sizeof(cosigners), why,
			    sizeof(why));
	free(buf);
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		if (rc == ENL_OK) {
			enl_json_int(&j, "checkpoint_size", (int64_t)size);
			enl_json_str(&j, "cosigned_by", cosigners);
			trail_json(&t, &j);
		} else {
			enl_json_str(&j, "error", why);
		}
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		trail_print(&t, stdout);
		printf("bundle VALID: directory signed by the authority; checkpoint of %" PRIu64
		       " entries signed by the broker%s%s; every entry included; every "
		       "acknowledgement signed by its recipient\n", size,
		       cosigners[0] ? " and cosigned by " : "", cosigners);
	} else {
		fprintf(stderr, "enlace-audit: %s: NOT VALID: %s\n", o.argv[0], why);
	}
	if (rc == ENL_OK)
		trail_free(&t);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}
