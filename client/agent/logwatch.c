/*
 * The broker's audit log as this agency sees it: the held checkpoint,
 * consistency with each newer one, cosigning, and the alarm on a fork.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

/* ---- the broker's audit log: held checkpoint, consistency, cosigning ---- */

static void alarm_raise(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records that the broker's log failed a check: a log line, `enlace
 * status`, a non-zero `enlace receipts`, and spool/ALARM (kept). */
static void
alarm_raise(struct agent *a, const char *fmt, ...)
{
	char msg[512], path[1100], line[600];
	va_list ap;
	int fd, n;

	bool again;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&a->mu);
	again = strcmp(a->alarm_said, msg) == 0;
	snprintf(a->alarm_said, sizeof(a->alarm_said), "%s", msg);
	if (a->alarm[0] == '\0')
		snprintf(a->alarm, sizeof(a->alarm), "%s", msg);
	pthread_mutex_unlock(&a->mu);
	if (again)
		return;	/* said and kept already: the same finding at every poll */
	alog("ALARM: %s", msg);
	snprintf(path, sizeof(path), "%s/ALARM", a->cfg.spool);
	n = snprintf(line, sizeof(line), "%lld %s\n", (long long)time(NULL), msg);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) >= 0) {
		if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
			alog("%s: cannot record the alarm", path);
		close(fd);
	}
}

/* The broker's note keys, from the directory: every version not revoked,
 * as checkpoints signed before a rotation stay valid. Called with a->mu
 * held. */
static bool
broker_verifier(struct agent *a, struct enl_note_keys *k)
{
	const struct enl_card *bc = enl_directory_find(a->dir, a->cfg.broker_id);
	char name[ENL_VKEY_NAME_MAX + 1];

	k->n = 0;
	if (bc == NULL)
		return false;
	snprintf(name, sizeof(name), "enlace/%s", a->cfg.broker_id);
	enl_card_note_keys(a->dir, bc, name, false, k);
	return k->n > 0;
}

/* Opens a checkpoint note signed by the broker. */
static int
checkpoint_open(struct agent *a, const char *note, struct enl_checkpoint *cp)
{
	struct enl_note_keys k;
	size_t tl = 0;
	bool ok;
	int rc;

	pthread_mutex_lock(&a->mu);
	ok = broker_verifier(a, &k);
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		return ENL_E_UNKNOWN_SENDER;
	if ((rc = enl_note_open(note, strlen(note), k.v, k.n, &tl, NULL)) != ENL_OK ||
	    (rc = enl_checkpoint_parse(note, tl, cp)) != ENL_OK)
		return rc;
	return strcmp(cp->origin, k.v[0].name) == 0 ? ENL_OK : ENL_E_MALFORMED;
}

/* Keeps `note` (a checkpoint already checked) as the newest held. */
static void
checkpoint_hold(struct agent *a, const char *note, const struct enl_checkpoint *cp)
{
	char path[1100];

	snprintf(path, sizeof(path), "%s/checkpoint", a->cfg.spool);
	if (enl_file_write(path, (const uint8_t *)note, strlen(note), 0600, true) != ENL_OK) {
		alog("%s: cannot keep the checkpoint", path);
		return;
	}
	a->held = *cp;
	pthread_mutex_lock(&a->mu);
	a->shown_held = cp->size;
	pthread_mutex_unlock(&a->mu);
}

/* One CHECKPOINT request: the newest checkpoint and the consistency proof
 * from `first` to `second` (0: the newest); with a cosignature. */
static int
checkpoint_request(struct agent *a, uint64_t first, uint64_t second, const char *cosig,
		   uint64_t cosigned, Enlace__Response **resp)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__CheckpointReq cr = ENLACE__CHECKPOINT_REQ__INIT;
	struct enl_keyring kr = keyring(a);
	int rc;

	cr.first = first;
	cr.second = second;
	cr.cosignature = (char *)(cosig ? cosig : "");
	cr.cosigned_size = cosigned;
	req.body_case = ENLACE__REQUEST__BODY_CHECKPOINT;
	req.checkpoint = &cr;
	if (broker_away(a) || !out_take(a, 5000))
		return ENL_E_IO;
	rc = conn_request(&a->out, &kr, &req, 10000, resp);
	pthread_mutex_unlock(&a->out_mu);
	return rc;
}

static bool
proof_of(const Enlace__Response *r, enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *n)
{
	if (r->n_consistency > ENL_MERKLE_MAX_PROOF)
		return false;
	for (size_t i = 0; i < r->n_consistency; i++) {
		if (r->consistency[i].len != ENL_MERKLE_HASH_LEN)
			return false;
		memcpy(proof[i], r->consistency[i].data, ENL_MERKLE_HASH_LEN);
	}
	*n = r->n_consistency;
	return true;
}

/*
 * Checks a checkpoint the broker signed against the one held: the same
 * size must have the same root (else the broker shows two histories, a
 * fork), and the smaller tree must be a prefix of the larger (checked
 * with a consistency proof from the broker). The newer one is then held.
 * ENL_E_IO if the broker could not be asked (try again later). Called
 * with log_mu held.
 */
int
checkpoint_check(struct agent *a, const char *note)
{
	struct enl_checkpoint cp, lo, hi;
	Enlace__Response *resp = NULL;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	size_t n = 0;
	int rc;

	if ((rc = checkpoint_open(a, note, &cp)) != ENL_OK) {
		alarm_raise(a, "a checkpoint from the broker is not signed by it: %s",
			    enl_strerror(rc));
		return rc;
	}
	if (a->held.size == 0) {
		checkpoint_hold(a, note, &cp);
		return ENL_OK;
	}
	if (cp.size == a->held.size) {
		if (sodium_memcmp(cp.root, a->held.root, 32) != 0) {
			alarm_raise(a, "FORK: the broker signed two different logs of %" PRIu64
				    " entries", cp.size);
			return ENL_E_BAD_SIGNATURE;
		}
		return ENL_OK;
	}
	lo = cp.size < a->held.size ? cp : a->held;
	hi = cp.size < a->held.size ? a->held : cp;
	if ((rc = checkpoint_request(a, lo.size, hi.size, NULL, 0, &resp)) != ENL_OK)
		return ENL_E_IO;
	if (resp->status != ENL_OK && resp->status != ENL_E_INVAL) {
		/* a broker that cannot answer now (its disk full, say) proves
		 * nothing: only a proof that fails, or a size it no longer has
		 * (ENL_E_INVAL), raises the alarm */
		alog("the broker could not prove its log of %" PRIu64 " entries extends the one of "
		     "%" PRIu64 " now (%s); asked again later", hi.size, lo.size, resp->reason);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return ENL_E_IO;
	}
	if (resp->status != ENL_OK || !proof_of(resp, proof, &n) ||
	    enl_merkle_consistency_verify(lo.size, hi.size, lo.root, hi.root,
					  (const enl_mhash *)proof, n) != ENL_OK) {
		alarm_raise(a, "the broker's log of %" PRIu64 " entries does not extend the one "
			    "of %" PRIu64 " it signed before (%s)", hi.size, lo.size,
			    resp->status != ENL_OK ? resp->reason : "the consistency proof fails");
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return ENL_E_BAD_SIGNATURE;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (cp.size > a->held.size)
		checkpoint_hold(a, note, &cp);
	return ENL_OK;
}

/* Asks for the newest checkpoint (with the proof that it extends the held
 * one), checks it, and cosigns what it now holds. */
void
log_poll(struct agent *a)
{
	Enlace__Response *resp = NULL;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	struct enl_checkpoint cp;
	char *body = NULL, *line = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&a->log_mu);
	if (checkpoint_request(a, a->held.size, 0, NULL, 0, &resp) != ENL_OK)
		goto out;
	if (resp->status != ENL_OK) {
		if (resp->status == ENL_E_INVAL)
			alarm_raise(a, "the broker no longer has the log of %" PRIu64
				    " entries it signed (%s)", a->held.size, resp->reason);
		goto out;
	}
	if (resp->checkpoint == NULL || checkpoint_open(a, resp->checkpoint, &cp) != ENL_OK) {
		alarm_raise(a, "the broker's newest checkpoint is not signed by it");
		goto out;
	}
	if (a->held.size == 0 || cp.size == a->held.size) {
		if (checkpoint_check(a, resp->checkpoint) != ENL_OK)
			goto out;
	} else if (cp.size < a->held.size || !proof_of(resp, proof, &n) ||
		   enl_merkle_consistency_verify(a->held.size, cp.size, a->held.root, cp.root,
						 (const enl_mhash *)proof, n) != ENL_OK) {
		alarm_raise(a, "the broker's log of %" PRIu64 " entries does not extend the one "
			    "of %" PRIu64 " it signed before", cp.size, a->held.size);
		goto out;
	} else {
		checkpoint_hold(a, resp->checkpoint, &cp);
	}
	/* cosign it: "as of now, the largest consistent log I have seen" */
	if (a->held.size == 0 || a->held.size == a->cosigned)
		goto out;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	resp = NULL;
	if ((rc = enl_checkpoint_format(&a->held, &body)) != ENL_OK ||
	    (rc = enl_cosign(a->me, enl_identity_id(a->me), body, (uint64_t)time(NULL),
			     &line)) != ENL_OK) {
		alog("cannot cosign the checkpoint: %s", enl_strerror(rc));
		goto out;
	}
	if (checkpoint_request(a, 0, 0, line, a->held.size, &resp) != ENL_OK)
		goto out;
	if (resp->status == ENL_OK) {
		a->cosigned = a->held.size;
		alog("cosigned the broker's checkpoint of %" PRIu64 " entries", a->cosigned);
	} else {
		alog("the broker refused this agency's cosignature: %s", resp->reason);
	}
out:
	pthread_mutex_lock(&a->mu);
	a->shown_held = a->held.size;
	a->shown_cosigned = a->cosigned;
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->log_mu);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(body);
	free(line);
}

/* The checkpoint held from an earlier run, and any standing alarm. */
void
log_state_load(struct agent *a)
{
	char path[1100];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct enl_checkpoint cp;

	snprintf(path, sizeof(path), "%s/checkpoint", a->cfg.spool);
	if (enl_file_read(path, ENL_NOTE_MAX, &buf, &len) == ENL_OK) {
		char *note = NULL;
		if (enl_text_take(buf, len, &note) == ENL_OK && checkpoint_open(a, note, &cp) == ENL_OK)
			a->held = cp;
		else
			alog("%s: not a checkpoint signed by the broker; ignored", path);
		free(note);
	}
	buf = NULL;
	snprintf(path, sizeof(path), "%s/ALARM", a->cfg.spool);
	if (enl_file_read(path, 1 << 20, &buf, &len) == ENL_OK && len > 0) {
		size_t l = strcspn((const char *)buf, "\n");
		const char *msg = memchr(buf, ' ', l);
		snprintf(a->alarm, sizeof(a->alarm), "%.*s",
			 msg ? (int)(l - (size_t)(msg + 1 - (const char *)buf)) : (int)l,
			 msg ? msg + 1 : (const char *)buf);
		alog("ALARM (standing, see %s): %s", path, a->alarm);
	}
	free(buf);
}

/* Every receipt's SUBMITTED entry must be in the broker's log, under a
 * checkpoint consistent with the ones held. */
void
receipt_audit(struct agent *a, const Enlace__SignedReceipt *sg, const char *what)
{
	Enlace__ReceiptBody *b = NULL;
	uint64_t size = 0;
	bool in;

	if (enl_pb_unpack(&enlace__receipt_body__descriptor, sg->body.data, sg->body.len,
			  1 << 20, (ProtobufCMessage **)&b) != ENL_OK) {
		alarm_raise(a, "the receipt of %s does not parse", what);
		return;
	}
	pthread_mutex_lock(&a->mu);
	in = receipt_in_log(a, b, &size);
	pthread_mutex_unlock(&a->mu);
	if (!in) {
		alarm_raise(a, "the receipt of %s is not backed by the broker's audit log", what);
	} else {
		pthread_mutex_lock(&a->log_mu);
		if (checkpoint_check(a, b->checkpoint) == ENL_E_IO)
			alog("the checkpoint of the receipt of %s is checked later", what);
		pthread_mutex_unlock(&a->log_mu);
	}
	protobuf_c_message_free_unpacked(&b->base, NULL);
}

/*
 * Checks that a receipt's message is in the broker's audit log: the
 * checkpoint is signed by the broker, the entry is the message's SUBMITTED
 * record, and its inclusion proof leads to the checkpoint's root.
 * Called with a->mu held.
 */
bool
receipt_in_log(struct agent *a, const Enlace__ReceiptBody *b, uint64_t *size)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	Enlace__AuditEntry *e = NULL;
	enl_mhash leaf, proof[ENL_MERKLE_MAX_PROOF];
	size_t tl = 0;
	bool ok;

	if (strcmp(b->broker, a->cfg.broker_id) != 0 || !broker_verifier(a, &k) ||
	    b->n_inclusion > ENL_MERKLE_MAX_PROOF)
		return false;
	if (enl_note_open(b->checkpoint, strlen(b->checkpoint), k.v, k.n, &tl, NULL) != ENL_OK ||
	    enl_checkpoint_parse(b->checkpoint, tl, &cp) != ENL_OK ||
	    strcmp(cp.origin, k.v[0].name) != 0)
		return false;
	for (size_t i = 0; i < b->n_inclusion; i++) {
		if (b->inclusion[i].len != ENL_MERKLE_HASH_LEN)
			return false;
		memcpy(proof[i], b->inclusion[i].data, ENL_MERKLE_HASH_LEN);
	}
	if (enl_pb_unpack(&enlace__audit_entry__descriptor, b->entry.data, b->entry.len,
			  ENL_TLOG_ENTRY_MAX, (ProtobufCMessage **)&e) != ENL_OK)
		return false;
	ok = e->event == ENLACE__AUDIT_EVENT__SUBMITTED &&
	     e->message_id.len == ENL_MSG_ID_LEN && b->message_id.len == ENL_MSG_ID_LEN &&
	     memcmp(e->message_id.data, b->message_id.data, ENL_MSG_ID_LEN) == 0 &&
	     e->envelope_hash.len == ENL_HASH_LEN && b->envelope_hash.len == ENL_HASH_LEN &&
	     memcmp(e->envelope_hash.data, b->envelope_hash.data, ENL_HASH_LEN) == 0;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	enl_merkle_leaf_hash(b->entry.data, b->entry.len, leaf);
	ok = ok && enl_merkle_inclusion_verify(b->log_index, cp.size, leaf,
					       (const enl_mhash *)proof, b->n_inclusion,
					       cp.root) == ENL_OK;
	*size = cp.size;
	return ok;
}
