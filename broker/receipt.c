/*
 * Receipts: what the broker signs for a message it stored, with each
 * recipient's state and acknowledgement, and the log entry that backs it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "server_int.h"

/* ---- receipts ---- */

/*
 * A receipt is made in two halves: what it says is gathered on the writer
 * (the store and the log are the writer's), and it is encoded, signed,
 * sealed and sent on one of nng's threads, so that the writer goes on
 * with the next batch.
 */
struct receipt_job {
	struct stored_message m;
	uint8_t id[ENL_MSG_ID_LEN];
	ENL_VEC(struct rcpt_state) raw;	/* one per recipient */
	bool short_of_memory;	/* a state could not be kept: no receipt */
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	size_t n_proof;
	uint8_t *entry;
	size_t entry_len;
	char *checkpoint;
};

void
receipt_job_free(struct receipt_job *rj)
{
	if (rj == NULL)
		return;
	enl_vec_free(&rj->raw);
	free(rj->entry);
	free(rj->checkpoint);
	free(rj);
}

static void
collect_state(void *arg, const struct rcpt_state *st)
{
	struct receipt_job *rj = arg;
	struct rcpt_state *slot = enl_vec_push(&rj->raw);

	if (slot == NULL)
		rj->short_of_memory = true;
	else
		*slot = *st;
}

/* The log's half: the SUBMITTED entry, the newest checkpoint and the
 * entry's inclusion proof under it. On the writer. */
int
receipt_gather_log(struct server *srv, struct receipt_job *rj)
{
#ifdef ENL_BENCH_WITHOUT_AUDIT_LOG
	(void)srv, (void)rj;
	return ENL_OK;
#endif
	if (srv->checkpoint == NULL)
		return ENL_E_IO;
	if ((rj->checkpoint = strdup(srv->checkpoint)) == NULL)
		return ENL_E_NOMEM;
	if (enl_tlog_inclusion(tlog_tree(srv->p.log), rj->m.log_index, srv->checkpoint_size, rj->proof,
			       &rj->n_proof) != ENL_OK)
		return ENL_E_IO;
	if (rj->entry != NULL)
		return ENL_OK;	/* kept from the submission */
	return tlog_entry(srv->p.log, rj->m.log_index, &rj->entry, &rj->entry_len);
}

/* Everything the receipt of message `id` says, from the store. On the
 * writer. */
static int
receipt_gather(struct server *srv, const uint8_t id[ENL_MSG_ID_LEN], struct receipt_job **out)
{
	struct receipt_job *rj = calloc(1, sizeof(*rj));
	int rc;

	if (rj == NULL)
		return ENL_E_NOMEM;
	rj->raw.max = ENL_MAX_RECIPIENTS;
	memcpy(rj->id, id, ENL_MSG_ID_LEN);
	if ((rc = srv->store->ops->message_get(srv->store->db, id, &rj->m)) == ENL_OK &&
	    (rc = srv->store->ops->states(srv->store->db, id, collect_state, rj)) == ENL_OK)
		rc = rj->short_of_memory ? ENL_E_NOMEM : receipt_gather_log(srv, rj);
	if (rc != ENL_OK) {
		receipt_job_free(rj);
		return rc;
	}
	*out = rj;
	return ENL_OK;
}

/* Encodes what the receipt says into *out (ReceiptBody bytes). On any
 * thread. */
static int
receipt_pack(struct server *srv, const struct receipt_job *rj, uint8_t **out, size_t *out_len)
{
	Enlace__ReceiptBody body = ENLACE__RECEIPT_BODY__INIT;
	Enlace__RecipientState *rs = calloc(rj->raw.n + 1, sizeof(*rs));
	Enlace__RecipientState **ptrs = calloc(rj->raw.n + 1, sizeof(*ptrs));
	ProtobufCBinaryData inc[ENL_MERKLE_MAX_PROOF];
	int rc = ENL_E_NOMEM;

	if (rs == NULL || ptrs == NULL)
		goto out;
	for (size_t i = 0; i < rj->raw.n; i++) {
		Enlace__RecipientState *r = &rs[i];
		enlace__recipient_state__init(r);
		r->recipient = rj->raw.v[i].recipient;
		r->state = (Enlace__DeliveryState)rj->raw.v[i].state;
		r->queued_at = rj->raw.v[i].queued_at;
		r->fetched_at = rj->raw.v[i].fetched_at;
		r->acked_at = rj->raw.v[i].acked_at;
		r->ack_time = rj->raw.v[i].ack_time;
		if (rj->raw.v[i].has_ack_sig) {
			r->ack_signature.data = (uint8_t *)rj->raw.v[i].ack_sig;
			r->ack_signature.len = 64;
		}
		r->reason = (char *)rj->raw.v[i].reason;
		ptrs[i] = r;
	}
	body.broker = (char *)enl_identity_id(srv->p.me);
	body.message_id.data = (uint8_t *)rj->id;
	body.message_id.len = ENL_MSG_ID_LEN;
	body.envelope_hash.data = (uint8_t *)rj->m.hash;
	body.envelope_hash.len = ENL_HASH_LEN;
	body.sender = (char *)rj->m.sender;
	body.received_at = rj->m.received_at;
	body.n_recipients = rj->raw.n;
	body.recipients = ptrs;
	if (rj->checkpoint != NULL) {
		for (size_t i = 0; i < rj->n_proof; i++) {
			inc[i].data = (uint8_t *)rj->proof[i];
			inc[i].len = ENL_MERKLE_HASH_LEN;
		}
		body.log_index = rj->m.log_index;
		body.checkpoint = rj->checkpoint;
		body.n_inclusion = rj->n_proof;
		body.inclusion = inc;
		body.entry.data = rj->entry;
		body.entry.len = rj->entry_len;
	}
	rc = enl_pb_pack(&body.base, out, out_len);
out:
	free(rs);
	free(ptrs);
	return rc;
}

/* Drops what a receipt holds (sent, or not: the broker is going down). */
static void
receipt_drop(struct work *w)
{
	receipt_job_free(w->rcpt.rj);
	free(w->rcpt.rbody);
	memset(&w->rcpt, 0, sizeof(w->rcpt));
}

/* On an nng thread: answers with the receipt signed in its batch, or
 * with why it could not be made. */
void
receipt_send(struct work *w)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;
	Enlace__SignedReceipt sr = ENLACE__SIGNED_RECEIPT__INIT;
	ProtobufCBinaryData path[ENL_MERKLE_BATCH_DEPTH];

	if (w->rcpt.rrc != ENL_OK) {
		reply_status(w, w->rcpt.rrc, NULL);	/* the reset drops the part */
		return;
	}
	for (size_t i = 0; i < w->rcpt.rproof.n_path; i++) {
		path[i].data = w->rcpt.rproof.path[i];
		path[i].len = ENL_MERKLE_HASH_LEN;
	}
	sr.body.data = w->rcpt.rbody;
	sr.body.len = w->rcpt.rbody_len;
	sr.signature.data = w->rcpt.rsig;
	sr.signature.len = sizeof(w->rcpt.rsig);
	sr.batch_size = w->rcpt.rproof.size;
	sr.batch_index = w->rcpt.rproof.index;
	sr.n_batch_path = w->rcpt.rproof.n_path;
	sr.batch_path = path;
	r.receipt = &sr;
	reply_send(w, &r);	/* its reset drops the part */
}

/*
 * Encodes the n receipts linked from `first` and signs them as one batch;
 * each work's rrc says whether its receipt (rbody, rsig, rproof) is made.
 */
static void
receipts_sign(struct server *srv, struct work *first, size_t n)
{
	struct work **ws = calloc(n, sizeof(*ws));
	const uint8_t **bodies = calloc(n, sizeof(*bodies));
	size_t *lens = calloc(n, sizeof(*lens)), m = 0;
	struct enl_batch_proof *proofs = calloc(n, sizeof(*proofs));
	bool room = ws != NULL && bodies != NULL && lens != NULL && proofs != NULL;
	uint8_t sig[64];
	int rc = ENL_E_NOMEM;

	for (struct work *w = first; w != NULL; w = w->rcpt.next_receipt) {
		w->rcpt.rrc = room ? receipt_pack(srv, w->rcpt.rj, &w->rcpt.rbody, &w->rcpt.rbody_len) : ENL_E_NOMEM;
		receipt_job_free(w->rcpt.rj);
		w->rcpt.rj = NULL;
		if (w->rcpt.rrc == ENL_OK) {
			ws[m] = w;
			bodies[m] = w->rcpt.rbody;
			lens[m++] = w->rcpt.rbody_len;
		}
	}
	if (m > 0)
		rc = enl_identity_sign_batch(srv->p.me, ENL_LABEL_RECEIPT_BATCH, bodies, lens, m, sig,
					     proofs);
	for (size_t i = 0; i < m; i++) {
		ws[i]->rcpt.rrc = rc;
		if (rc == ENL_OK) {
			memcpy(ws[i]->rcpt.rsig, sig, sizeof(sig));
			ws[i]->rcpt.rproof = proofs[i];
		}
	}
	free(ws);
	free(bodies);
	free(lens);
	free(proofs);
}

/*
 * On an nng thread, for the first of a writer round's receipts (linked by
 * next_receipt): signs them all with one signature (receipts_sign) and
 * has each answered on its own work's thread.
 */
void
receipt_batch_send(struct work *first)
{
	struct work *w, *next;
	size_t n = 0;

	for (w = first; w != NULL; w = w->rcpt.next_receipt)
		n++;
	receipts_sign(first->srv, first, n);
	for (w = first->rcpt.next_receipt; w != NULL; w = next) {
		next = w->rcpt.next_receipt;	/* w is another thread's once deferred */
		w->rcpt.next_receipt = NULL;
		receipt_defer(w, REPLY_RECEIPT);
	}
	first->rcpt.next_receipt = NULL;
	receipt_send(first);
}

/*
 * On the writer: the answer is made (encoded, signed, sealed) and sent by
 * one of nng's task threads, and the writer goes on with the next batch.
 */
void
receipt_defer(struct work *w, int kind)
{
	w->replying = kind;
	/* completes at once: work_cb runs on nng's task threads */
	if (nng_aio_begin(w->aio)) {
		nng_aio_finish(w->aio, 0);
		return;
	}
	/* stopped: the broker is going down */
	w->replying = REPLY_NONE;
	receipts_drop(w);
}

/* Drops the receipt of `first` and of the rest of its round linked from
 * it (none when it is not a round's first), none sent. */
void
receipts_drop(struct work *first)
{
	struct work *w, *next;

	for (w = first; w != NULL; w = next) {
		next = w->rcpt.next_receipt;
		w->rcpt.next_receipt = NULL;
		receipt_drop(w);
	}
}

/* On the writer: the receipt waits for the end of the round, to be signed
 * with the round's others (receipts_flush). */
void
receipt_respond_job(struct work *w, struct receipt_job *rj)
{
	w->rcpt.drop = receipt_drop;
	w->rcpt.rj = rj;
	w->rcpt.next_receipt = w->srv->receipts;
	w->srv->receipts = w;
}

/* On the writer, once a round's jobs are done: its receipts go to be
 * signed together. */
void
receipts_flush(struct server *srv)
{
	struct work *first = srv->receipts;

	srv->receipts = NULL;
	if (first != NULL)
		receipt_defer(first, REPLY_RECEIPT_BATCH);
}

void
receipt_respond(struct work *w, const uint8_t id[ENL_MSG_ID_LEN])
{
	struct receipt_job *rj = NULL;
	int rc = receipt_gather(w->srv, id, &rj);

	if (rc != ENL_OK) {
		reply_status(w, rc, NULL);
		return;
	}
	receipt_respond_job(w, rj);
}

/* The receipt of a message just stored: what it says is known without
 * reading it back (every recipient QUEUED now). */
void
receipt_respond_fresh(struct work *w)
{
	struct receipt_job *rj = calloc(1, sizeof(*rj));
	int rc = ENL_E_NOMEM;

	if (rj == NULL)
		goto fail;
	rj->raw.max = ENL_MAX_RECIPIENTS;
	memcpy(rj->id, w->sub.hdr->message_id, ENL_MSG_ID_LEN);
	memcpy(rj->m.hash, w->sub.hash, ENL_HASH_LEN);
	snprintf(rj->m.sender, sizeof(rj->m.sender), "%s", w->sub.hdr->sender);
	rj->m.received_at = w->sub.submitted_at;
	rj->m.log_index = w->sub.submitted_index;
	for (size_t i = 0; i < w->sub.hdr->n_recipients; i++) {
		struct rcpt_state *st = enl_vec_push(&rj->raw);	/* zeroed */
		bool held = w->sub.held != NULL && w->sub.held[i];
		if (st == NULL)
			goto fail;
		snprintf(st->recipient, sizeof(st->recipient), "%s", w->sub.hdr->recipients[i]);
		st->state = held ? DS_HELD : w->sub.decisions[i].allow ? DS_QUEUED : DS_REJECTED;
		if (w->sub.decision != NULL && w->sub.decisions[i].allow)
			st->state = DS_ACKED;
		st->queued_at = w->sub.submitted_at;
		if (held)
			snprintf(st->reason, sizeof(st->reason), "held for the originator's consent");
		else if (!w->sub.decisions[i].allow)
			snprintf(st->reason, sizeof(st->reason), "denied by policy rule %s",
				 w->sub.decisions[i].rule);
	}
	rj->entry = w->sub.submitted;
	rj->entry_len = w->sub.submitted_len;
	w->sub.submitted = NULL;
	if ((rc = receipt_gather_log(w->srv, rj)) != ENL_OK)
		goto fail;
	receipt_respond_job(w, rj);
	return;
fail:
	receipt_job_free(rj);
	reply_status(w, rc, NULL);
}
