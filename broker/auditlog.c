/*
 * The audit log's entries, appended by the writer thread in the same
 * transaction as the store's change they record, and its checkpoint.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "server_int.h"

/* ---- the audit log (writer thread only) ---- */

/* Appends one entry; *index (if not NULL) is where it went. */
int
auditlog_add(struct server *srv, const struct audit *a, int64_t now, uint64_t *index)
{
#ifdef ENL_BENCH_WITHOUT_AUDIT_LOG
	(void)srv, (void)a, (void)now;
	if (index != NULL)
		*index = 0;
	return ENL_OK;
#endif
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	uint8_t *bytes = NULL;
	size_t len = 0;
	uint64_t at;
	int rc;

	e.time = now;
	e.event = a->event;
	if (a->id != NULL) {
		e.message_id.data = (uint8_t *)a->id;
		e.message_id.len = ENL_MSG_ID_LEN;
	}
	if (a->hash != NULL) {
		e.envelope_hash.data = (uint8_t *)a->hash;
		e.envelope_hash.len = ENL_HASH_LEN;
	}
	if (a->ack_sig != NULL) {
		e.ack_signature.data = (uint8_t *)a->ack_sig;
		e.ack_signature.len = 64;
		e.ack_time = a->ack_time;
	}
	e.sender = (char *)(a->sender ? a->sender : "");
	e.recipient = (char *)(a->recipient ? a->recipient : "");
	e.reason = (char *)(a->reason ? a->reason : "");
	e.directory_serial = enl_directory_serial(inforce_dir(srv)->dir);
	if (a->original != NULL) {
		e.original_id.data = (uint8_t *)a->original;
		e.original_id.len = ENL_MSG_ID_LEN;
	}
	/* each entry about a message names the one before it, so that a
	 * bundle of them cannot leave one out unseen */
	if (a->id != NULL && (rc = srv->store->ops->chain_get(srv->store->db, a->id,
							      &e.previous)) != ENL_OK)
		return rc;
	if (a->original != NULL &&
	    (rc = srv->store->ops->chain_get(srv->store->db, a->original,
					     &e.previous_original)) != ENL_OK)
		return rc;
	if ((rc = enl_pb_pack(&e.base, &bytes, &len)) != ENL_OK)
		return rc;
	rc = tlog_append(srv->p.log, bytes, len, index ? index : &at);
	if (rc == ENL_OK && a->id != NULL)
		rc = srv->store->ops->chain_put(srv->store->db, a->id, (index ? *index : at) + 1);
	if (rc == ENL_OK && a->original != NULL)
		rc = srv->store->ops->chain_put(srv->store->db, a->original,
						(index ? *index : at) + 1);
	if (rc == ENL_OK && a->keep != NULL) {
		free(*a->keep);
		*a->keep = bytes;
		*a->keep_len = len;
		bytes = NULL;
	}
	free(bytes);
	return rc == ENL_E_TOO_LARGE ? ENL_E_IO : rc;
}

/* Before the store's commit: the log's entries go into the same
 * transaction. */
int
auditlog_commit(void *arg)
{
	struct server *srv = arg;
	int rc;

	if (tlog_size(srv->p.log) == tlog_committed(srv->p.log))
		return ENL_OK;	/* nothing new */
	/* committed for the log only once the store's commit is (log_sign) */
	if ((rc = tlog_stage(srv->p.log)) != ENL_OK) {
		blog("audit log: cannot commit: %s", enl_strerror(rc));
		return rc == ENL_E_NO_SPACE ? rc : ENL_E_IO;
	}
	return ENL_OK;
}

/* After the round's durable commit: the checkpoint its receipts carry. */
void
auditlog_sign(void *arg)
{
	struct server *srv = arg;
	char *note = NULL;
	int rc;

	tlog_stage_done(srv->p.log);	/* the store committed what auditlog_commit staged */
	if (tlog_committed(srv->p.log) == srv->checkpoint_size && srv->checkpoint)
		return;	/* nothing new: the last checkpoint stands */
	if ((rc = tlog_checkpoint(srv->p.log, &note)) != ENL_OK) {
		/* receipts of the round fail (the client asks again) */
		blog("audit log: cannot sign a checkpoint: %s", enl_strerror(rc));
		return;
	}
	free(srv->checkpoint);
	srv->checkpoint = note;
	srv->checkpoint_size = tlog_committed(srv->p.log);
}

void
auditlog_abort(void *arg)
{
	struct server *srv = arg;

	tlog_rollback(srv->p.log);
}
