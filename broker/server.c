/*
 * The broker's network side: one nng rep0 socket with many contexts, each
 * an aio state machine (receive, handle, send). Handshakes and envelope
 * verification run on nng's worker threads, in parallel; everything that
 * touches the store goes to the writer as a job, and the reply is sent
 * from the writer thread once the batch is durable.
 *
 * Sessions are bound to the nng pipe they were opened on and die with it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <sodium.h>

#include "broker.h"
#include "enlace/wire.h"

#define REPLAY_SLOTS 16384

struct dir_state;

struct sess {
	uint32_t pipe;
	struct enl_session *s;
	const struct dir_state *opened;	/* the directory its handshake was checked against */
	int refs;
	bool dead;
	struct sess *next;
};

enum op { OP_NONE, OP_SUBMIT, OP_FETCH, OP_ACK, OP_REJECT, OP_RECEIPTS, OP_CHECKPOINT };

struct env_ref {
	uint8_t *bytes;
	size_t len;
	uint8_t id[ENL_MSG_ID_LEN];
};

struct receipt_job;
static void receipt_job_free(struct receipt_job *rj);

/* A directory in force. A newer one replaces it whole; the ones before
 * stay until the server stops (a request may still be using one). */
struct dir_state {
	const struct enl_directory *dir;
	const uint8_t *bytes;
	size_t len;
	struct enl_keyring kr;
	struct enl_directory *owned;	/* NULL for the first, which is main's */
	uint8_t *owned_bytes;
	struct dir_state *before;
};

struct work {
	struct job job;		/* first: the writer hands it back */
	struct server *srv;
	nng_aio *aio;
	nng_ctx ctx;
	bool sending;
	/* the batch an answer made on the writer speaks of (deferred to an
	 * nng thread, which encodes, signs and seals it meanwhile), and the
	 * sealed answer held until that batch is durable */
	uint64_t durable_seq;
	struct writer_hold hold;
	nng_msg *held_msg;
	struct sess *sess;
	const struct dir_state *dir;	/* the directory the request is checked against */
	uint64_t counter;
	enum op op;
	char agency[ENL_ID_MAX + 1];
	/* the request being handled */
	Enlace__Request *req;
	struct enl_header *hdr;
	uint8_t hash[ENL_HASH_LEN];
	const uint8_t *env;	/* points into req */
	size_t env_len;
	bool idempotent;
	int64_t deadline;	/* fetch: reply empty after this (ms) */
	size_t max_fetch;
	struct env_ref *found;
	size_t n_found, cap_found;
	bool parked, dirty;
	struct work *next_parked;
	/* a refused submission, recorded in the log before the answer */
	int refused_rc;
	char refused_why[256];
	bool hdr_ok;
	/* a cosignature received: the lines for its size, after the commit */
	char *cosigs;
	/* a receipt gathered on the writer, to be signed and sent by nng */
	struct receipt_job *rj;
	enum { REPLY_NONE, REPLY_RECEIPT, REPLY_FETCH } replying;
	/* the policy's decision for each recipient of a submission */
	struct policy_decision *decisions;
	bool *held;		/* a forward: recipients waiting for consent */
	struct original_info orig;	/* a forward: its original */
	Enlace__ConsentDecision *decision;	/* a consent decision, opened */
	/* a policy to put in force once its POLICY_LOADED entry is durable */
	struct policy_ref *new_policy;
	char policy_note[300];
	/* a new submission: its SUBMITTED entry and when it was stored */
	uint8_t *submitted;
	size_t submitted_len;
	uint64_t submitted_index;
	int64_t submitted_at;
};

struct server {
	struct server_params p;
	struct enl_limits lim;
	size_t frame_max;
	nng_socket sock;
	struct work *works;
	size_t n_works;
	pthread_mutex_t mu;
	struct sess *sessions;
	size_t n_sessions;
	struct {
		uint8_t nonce[32];
		int64_t time;
	} *replay;
	size_t replay_next;
	struct work *parked;	/* writer thread only */
	struct work *ready;	/* writer thread only: answered after the commit */
	char *checkpoint;	/* writer thread only: the newest signed checkpoint */
	uint64_t checkpoint_size;
	char *cosigs;		/* writer thread only: cosignatures of cosig_size */
	uint64_t cosig_size;
	struct store *store;	/* writer thread only */
	struct policy_ref *policy;	/* under mu */
	struct dir_state *dir;	/* under mu */
	int64_t consents_swept;	/* writer thread only */
	int64_t deliveries_swept;	/* writer thread only */
	int64_t expiry_said;	/* writer thread only: when the directory's expiry was last said */
	bool publish_failing;	/* writer thread only: said once until it works, */
	uint64_t publish_failed_at;	/* ... which is when the log is published past this */
};

/* A policy in force, shared by the messages being decided with it. */
struct policy_ref {
	struct policy *p;
	int refs;
};

static struct policy_ref *
policy_get(struct server *srv)
{
	struct policy_ref *r;

	pthread_mutex_lock(&srv->mu);
	r = srv->policy;
	r->refs++;
	pthread_mutex_unlock(&srv->mu);
	return r;
}

/* Drops one reference (sessions and policies count theirs under mu);
 * true for the last, whose holder frees the thing. */
static bool
unref(struct server *srv, int *refs)
{
	bool last;

	pthread_mutex_lock(&srv->mu);
	last = --*refs == 0;
	pthread_mutex_unlock(&srv->mu);
	return last;
}

static void
policy_put(struct server *srv, struct policy_ref *r)
{
	if (unref(srv, &r->refs)) {
		policy_free(r->p);
		free(r);
	}
}

static void work_recv(struct work *w);

static const struct dir_state *
dir_now(struct server *srv)
{
	const struct dir_state *d;

	pthread_mutex_lock(&srv->mu);
	d = srv->dir;
	pthread_mutex_unlock(&srv->mu);
	return d;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sessions ---- */

static void
sess_put(struct server *srv, struct sess *s)
{
	if (unref(srv, &s->refs)) {
		enl_session_free(s->s);
		free(s);
	}
}

/* Takes a reference to the live session of a pipe, or NULL. */
static struct sess *
sess_get(struct server *srv, uint32_t pipe)
{
	struct sess *s;

	pthread_mutex_lock(&srv->mu);
	for (s = srv->sessions; s != NULL; s = s->next)
		if (s->pipe == pipe && !s->dead) {
			s->refs++;
			break;
		}
	pthread_mutex_unlock(&srv->mu);
	return s;
}

static void
pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct server *srv = arg;
	struct sess **pp, *s = NULL;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);

	if (ev != NNG_PIPE_EV_REM_POST)
		return;
	pthread_mutex_lock(&srv->mu);
	for (pp = &srv->sessions; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->pipe == id) {
			s = *pp;
			*pp = s->next;
			s->dead = true;
			srv->n_sessions--;
			break;
		}
	pthread_mutex_unlock(&srv->mu);
	if (s != NULL) {
		blog("session %s closed", enl_session_peer(s->s));
		sess_put(srv, s);
	}
}

/* True if the nonce was seen (a replayed Hello); remembers it if not. */
static bool
replayed(struct server *srv, const uint8_t nonce[32], int64_t now)
{
	bool seen = false;

	pthread_mutex_lock(&srv->mu);
	for (size_t i = 0; i < REPLAY_SLOTS && !seen; i++)
		seen = srv->replay[i].time > now - 2 * ENL_HELLO_SKEW &&
		       memcmp(srv->replay[i].nonce, nonce, 32) == 0;
	if (!seen) {
		memcpy(srv->replay[srv->replay_next].nonce, nonce, 32);
		srv->replay[srv->replay_next].time = now;
		srv->replay_next = (srv->replay_next + 1) % REPLAY_SLOTS;
	}
	pthread_mutex_unlock(&srv->mu);
	return seen;
}

/* ---- replies ---- */

/* The writer's sync covers what this answer says: out it goes. */
static void
hold_release(struct writer_hold *h)
{
	struct work *w = (struct work *)((char *)h - offsetof(struct work, hold));
	nng_msg *msg = w->held_msg;

	w->held_msg = NULL;
	nng_aio_set_msg(w->aio, msg);
	w->sending = true;
	nng_ctx_send(w->ctx, w->aio);
}

/* Sends the frame, once what it says is durable (on the writer, the batch
 * just committed; elsewhere, the batch it was deferred from). */
static void
send_msg(struct work *w, nng_msg *msg)
{
	uint64_t seq = writer_seq(w->srv->p.writer);

	if (w->durable_seq > seq)
		seq = w->durable_seq;
	w->durable_seq = 0;
	if (msg == NULL) {
		work_recv(w);	/* abandon the request; the client retries */
		return;
	}
	w->held_msg = msg;
	w->hold.release = hold_release;
	if (!writer_hold(w->srv->p.writer, seq, &w->hold))
		hold_release(&w->hold);
}

static void
send_bytes(struct work *w, uint8_t *frame, size_t len)
{
	nng_msg *msg = NULL;

	if (frame != NULL && nng_msg_alloc(&msg, len) == 0)
		memcpy(nng_msg_body(msg), frame, len);
	free(frame);
	send_msg(w, msg);
}

static void
refuse(struct work *w, int err, const char *reason)
{
	uint8_t *frame = NULL;
	size_t len = 0;

	if (enl_session_refusal(err, reason, &frame, &len) != ENL_OK)
		frame = NULL;
	send_bytes(w, frame, len);
}

static void
work_reset(struct work *w)
{
	if (w->req != NULL)
		protobuf_c_message_free_unpacked(&w->req->base, NULL);
	w->req = NULL;
	free(w->hdr);
	w->hdr = NULL;
	for (size_t i = 0; i < w->n_found; i++)
		free(w->found[i].bytes);
	free(w->found);
	w->found = NULL;
	w->n_found = w->cap_found = 0;
	if (w->sess != NULL)
		sess_put(w->srv, w->sess);
	w->sess = NULL;
	w->op = OP_NONE;
	w->idempotent = w->parked = w->dirty = w->hdr_ok = false;
	free(w->cosigs);
	w->cosigs = NULL;
	free(w->submitted);
	w->submitted = NULL;
	free(w->decisions);
	w->decisions = NULL;
	free(w->held);
	w->held = NULL;
	if (w->decision != NULL)
		protobuf_c_message_free_unpacked(&w->decision->base, NULL);
	w->decision = NULL;
	w->replying = REPLY_NONE;
	receipt_job_free(w->rj);
	w->rj = NULL;
}

/* Seals a Response for the request being handled, and sends it: packed
 * into the message that goes out and sealed there (a fetch's answer may
 * carry 50 MiB). */
static void
respond(struct work *w, Enlace__Response *resp)
{
	size_t plen = protobuf_c_message_get_packed_size(&resp->base), off;
	size_t flen = enl_session_reply_layout(w->counter, plen, &off);
	nng_msg *msg = NULL;

	if (nng_msg_alloc(&msg, flen) == 0) {
		uint8_t *frame = nng_msg_body(msg);
		if (protobuf_c_message_pack(&resp->base, frame + off) == plen) {
			enl_session_seal_reply_at(w->sess->s, w->counter, frame, plen);
		} else {
			nng_msg_free(msg);
			msg = NULL;
		}
	}
	work_reset(w);
	send_msg(w, msg);
}

static void
respond_status(struct work *w, int status, const char *reason)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;

	r.status = status;
	r.reason = (char *)(reason ? reason : (status ? enl_strerror(status) : ""));
	if (status != ENL_OK)
		blog("refused %s request from %s: %s", w->op == OP_SUBMIT ? "SUBMIT" : "a",
		     w->agency, r.reason);
	respond(w, &r);
}

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
	struct rcpt_state *raw;
	size_t n, cap;
	bool short_of_memory;	/* a state could not be kept: no receipt */
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	size_t n_proof;
	uint8_t *entry;
	size_t entry_len;
	char *checkpoint;
};

static void
receipt_job_free(struct receipt_job *rj)
{
	if (rj == NULL)
		return;
	free(rj->raw);
	free(rj->entry);
	free(rj->checkpoint);
	free(rj);
}

static void
collect_state(void *arg, const struct rcpt_state *st)
{
	struct receipt_job *rj = arg;

	if (rj->n == rj->cap) {
		size_t cap = rj->cap ? 2 * rj->cap : 8;
		struct rcpt_state *raw = realloc(rj->raw, cap * sizeof(*raw));
		if (raw == NULL) {
			rj->short_of_memory = true;
			return;
		}
		rj->raw = raw;
		rj->cap = cap;
	}
	rj->raw[rj->n++] = *st;
}

/* The log's half: the SUBMITTED entry, the newest checkpoint and the
 * entry's inclusion proof under it. On the writer. */
static int
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
	if (enl_tlog_inclusion(srv->p.log, rj->m.log_index, srv->checkpoint_size, rj->proof,
			       &rj->n_proof) != ENL_OK)
		return ENL_E_IO;
	if (rj->entry != NULL)
		return ENL_OK;	/* kept from the submission */
	return enl_tlog_entry(srv->p.log, rj->m.log_index, &rj->entry, &rj->entry_len);
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

/* Encodes and signs the receipt into *out. On any thread. */
static int
receipt_sign(struct server *srv, const struct receipt_job *rj, Enlace__Signed **out)
{
	Enlace__ReceiptBody body = ENLACE__RECEIPT_BODY__INIT;
	Enlace__RecipientState *rs = calloc(rj->n + 1, sizeof(*rs));
	Enlace__RecipientState **ptrs = calloc(rj->n + 1, sizeof(*ptrs));
	ProtobufCBinaryData inc[ENL_MERKLE_MAX_PROOF];
	Enlace__Signed *sg = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	int rc = ENL_E_NOMEM;

	if (rs == NULL || ptrs == NULL)
		goto out;
	for (size_t i = 0; i < rj->n; i++) {
		Enlace__RecipientState *r = &rs[i];
		enlace__recipient_state__init(r);
		r->recipient = rj->raw[i].recipient;
		r->state = (Enlace__DeliveryState)rj->raw[i].state;
		r->queued_at = rj->raw[i].queued_at;
		r->fetched_at = rj->raw[i].fetched_at;
		r->acked_at = rj->raw[i].acked_at;
		r->ack_time = rj->raw[i].ack_time;
		if (rj->raw[i].has_ack_sig) {
			r->ack_signature.data = (uint8_t *)rj->raw[i].ack_sig;
			r->ack_signature.len = 64;
		}
		r->reason = (char *)rj->raw[i].reason;
		ptrs[i] = r;
	}
	body.broker = (char *)enl_identity_id(srv->p.me);
	body.message_id.data = (uint8_t *)rj->id;
	body.message_id.len = ENL_MSG_ID_LEN;
	body.envelope_hash.data = (uint8_t *)rj->m.hash;
	body.envelope_hash.len = ENL_HASH_LEN;
	body.sender = (char *)rj->m.sender;
	body.received_at = rj->m.received_at;
	body.n_recipients = rj->n;
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
	if ((rc = enl_pb_pack(&body.base, &bytes, &len)) != ENL_OK)
		goto out;
	rc = ENL_E_NOMEM;
	if ((sg = malloc(sizeof(*sg))) == NULL)
		goto out;
	enlace__signed__init(sg);
	if ((sg->signature.data = malloc(64)) == NULL)
		goto out;
	sg->signature.len = 64;
	rc = enl_identity_sign(srv->p.me, ENL_LABEL_RECEIPT, bytes, len, sg->signature.data);
	if (rc != ENL_OK)
		goto out;
	sg->body.data = bytes;
	sg->body.len = len;
	bytes = NULL;
	*out = sg;
	sg = NULL;
out:
	if (sg != NULL) {
		free(sg->signature.data);
		free(sg);
	}
	free(bytes);
	free(rs);
	free(ptrs);
	return rc;
}

static void
signed_free(Enlace__Signed *sg)
{
	if (sg != NULL) {
		free(sg->body.data);
		free(sg->signature.data);
		free(sg);
	}
}

/* On an nng thread: signs the gathered receipt and answers with it. */
static void
receipt_send(struct work *w)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;
	struct receipt_job *rj = w->rj;
	Enlace__Signed *sg = NULL;
	int rc;

	w->rj = NULL;
	rc = receipt_sign(w->srv, rj, &sg);
	receipt_job_free(rj);
	if (rc != ENL_OK) {
		respond_status(w, rc, NULL);
		return;
	}
	r.receipt = sg;
	respond(w, &r);
	signed_free(sg);
}

/*
 * On the writer: the answer is made (encoded, signed, sealed) and sent by
 * one of nng's task threads, and the writer goes on with the next batch.
 */
static void
defer_reply(struct work *w, int kind)
{
	w->replying = kind;
	w->durable_seq = writer_seq(w->srv->p.writer);
	/* completes at once: work_cb runs on nng's task threads */
	if (nng_aio_begin(w->aio)) {
		nng_aio_finish(w->aio, 0);
	} else {	/* stopped: the broker is going down */
		w->replying = REPLY_NONE;
		receipt_job_free(w->rj);
		w->rj = NULL;
	}
}

static void
respond_receipt_job(struct work *w, struct receipt_job *rj)
{
	w->rj = rj;
	defer_reply(w, REPLY_RECEIPT);
}

static void
respond_receipt(struct work *w, const uint8_t id[ENL_MSG_ID_LEN])
{
	struct receipt_job *rj = NULL;
	int rc = receipt_gather(w->srv, id, &rj);

	if (rc != ENL_OK) {
		respond_status(w, rc, NULL);
		return;
	}
	respond_receipt_job(w, rj);
}

/* ---- the audit log (writer thread only) ---- */

struct audit {
	Enlace__AuditEvent event;
	const uint8_t *id, *hash, *ack_sig;
	const char *sender, *recipient, *reason;
	int64_t ack_time;
	uint8_t **keep;		/* if not NULL: the entry's bytes (malloc'd) */
	size_t *keep_len;
	const uint8_t *original;	/* a forward's original, or NULL */
};

/* Appends one entry; *index (if not NULL) is where it went. */
static int
audit(struct server *srv, const struct audit *a, int64_t now, uint64_t *index)
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
	e.directory_serial = enl_directory_serial(dir_now(srv)->dir);
	if (a->original != NULL) {
		e.original_id.data = (uint8_t *)a->original;
		e.original_id.len = ENL_MSG_ID_LEN;
	}
	if ((rc = enl_pb_pack(&e.base, &bytes, &len)) != ENL_OK)
		return rc;
	rc = enl_tlog_append(srv->p.log, bytes, len, index ? index : &at);
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
static int
log_commit(void *arg)
{
	struct server *srv = arg;
	int rc;

	if (enl_tlog_size(srv->p.log) == enl_tlog_committed(srv->p.log))
		return ENL_OK;	/* nothing new */
	/* committed for the log only once the store's commit is (log_sign) */
	if ((rc = enl_tlog_stage(srv->p.log)) != ENL_OK) {
		blog("audit log: cannot commit: %s", enl_strerror(rc));
		return rc == ENL_E_NO_SPACE ? rc : ENL_E_IO;
	}
	return ENL_OK;
}

/* After the commit, while the syncer makes it durable: the checkpoint the
 * round's receipts carry (they leave only once it is durable). */
static void
log_sign(void *arg)
{
	struct server *srv = arg;
	char *note = NULL;
	int rc;

	enl_tlog_stage_done(srv->p.log);	/* the store committed what log_commit staged */
	if (enl_tlog_committed(srv->p.log) == srv->checkpoint_size && srv->checkpoint)
		return;	/* nothing new: the last checkpoint stands */
	if ((rc = enl_tlog_checkpoint(srv->p.log, &note)) != ENL_OK) {
		/* receipts of the round fail (the client asks again) */
		blog("audit log: cannot sign a checkpoint: %s", enl_strerror(rc));
		return;
	}
	free(srv->checkpoint);
	srv->checkpoint = note;
	srv->checkpoint_size = enl_tlog_committed(srv->p.log);
}

static void
log_abort(void *arg)
{
	struct server *srv = arg;

	enl_tlog_rollback(srv->p.log);
}

/* ---- SUBMIT ---- */

/*
 * A forward, checked against its original: the forwarder received it;
 * its handling allows forwarding and the forward keeps it (never
 * weaker). TLP:AMBER stays in the forwarder's country; with onward
 * sharing CONSENT the recipients the policy allows are held for the
 * originator's consent. ENL_E_PERMISSION with `why` refuses the whole
 * forward. On the writer.
 */
static int
forward_check(struct work *w, struct store *st, char *why, size_t cap)
{
	const struct enl_header *h = w->hdr;
	struct original_info o;
	const struct enl_card *me;
	int rc;

	if (h->type == ENL_MSG_FORWARD && !h->has_forward_of) {
		snprintf(why, cap, "a FORWARD must name its original (forward-of)");
		return ENL_E_PERMISSION;
	}
	if (h->type != ENL_MSG_FORWARD) {
		snprintf(why, cap, "only a FORWARD may name an original (forward-of)");
		return ENL_E_PERMISSION;
	}
	memset(&o, 0, sizeof(o));
	rc = st->ops->original(st->db, h->forward_of, h->sender, &o);
	if (rc == ENL_E_NOT_FOUND) {
		snprintf(why, cap, "forward of a message this broker never relayed");
		return ENL_E_PERMISSION;
	}
	if (rc != ENL_OK)
		return rc;
	w->orig = o;
	if (o.forwarder_state == 0 || o.forwarder_state == DS_REJECTED ||
	    o.forwarder_state == DS_HELD)
		snprintf(why, cap, "%s never received the original, so cannot forward it", h->sender);
	else if (!enl_forward_to_third_parties(h, h->sender, o.sender, why, cap))
		;	/* why says it */
	else if (o.handling.tlp == ENL_TLP_RED)
		snprintf(why, cap, "the original is TLP:RED: it goes only to the recipients its "
			 "originator named, never further");
	else if (o.handling.tlp == ENL_TLP_AMBER_STRICT)
		snprintf(why, cap, "the original is TLP:AMBER+STRICT: it stays inside the "
			 "recipient agency");
	else if (o.handling.onward == ENL_ONWARD_NEVER)
		snprintf(why, cap, "the originator %s forbids onward sharing (NEVER)", o.sender);
	else if (h->handling.tlp < o.handling.tlp || h->handling.onward < o.handling.onward ||
		 h->handling.evidential < o.handling.evidential)
		snprintf(why, cap, "a forward can never weaken the original's handling");
	else
		why[0] = '\0';
	if (why[0] == '\0' && o.handling.onward == ENL_ONWARD_CONSENT) {
		uint8_t pk[32];
		uint32_t v;
		if (w->dir->kr.encryption_key(w->dir->kr.ctx, o.sender, &v, pk) != ENL_OK)
			snprintf(why, cap, "the originator %s cannot be asked for consent: it has "
				 "no valid key in the directory", o.sender);
	}
	if (why[0] != '\0')
		return ENL_E_PERMISSION;
	if ((w->held = calloc(h->n_recipients, sizeof(*w->held))) == NULL)
		return ENL_E_NOMEM;
	me = enl_directory_find(w->dir->dir, h->sender);
	for (size_t i = 0; i < h->n_recipients; i++) {
		struct policy_decision *d = &w->decisions[i];
		const struct enl_card *c = enl_directory_find(w->dir->dir, h->recipients[i]);
		if (!d->allow)
			continue;
		if (o.handling.tlp == ENL_TLP_AMBER &&
		    (me == NULL || c == NULL || strcmp(me->country, c->country) != 0)) {
			d->allow = false;
			snprintf(d->rule, sizeof(d->rule), "tlp-amber-stays-home");
			continue;
		}
		w->held[i] = o.handling.onward == ENL_ONWARD_CONSENT;
	}
	return ENL_OK;
}

static void mark_parked_dirty(struct server *srv, const struct enl_header *h);

/* Wakes the waiting fetches of one agency (writer thread). */
static void
wake_agency(struct server *srv, const char *agency)
{
	struct enl_header h;

	memset(&h, 0, sizeof(h));
	h.n_recipients = 1;
	snprintf(h.recipients[0], sizeof(h.recipients[0]), "%s", agency);
	mark_parked_dirty(srv, &h);
}

/*
 * A held forward to `recipient`: a CONSENT_REQUEST from the broker to the
 * originator (an envelope the broker signs, naming the original, the
 * forwarder and the new recipient, never the content), stored and
 * delivered like any message, and the request kept until it is decided
 * or expires. On the writer, inside the forward's transaction.
 */
static int
consent_request(struct work *w, struct store *st, int64_t now, const char *recipient)
{
	struct server *srv = w->srv;
	Enlace__ConsentRequest cr = ENLACE__CONSENT_REQUEST__INIT;
	struct enl_header *h = calloc(1, sizeof(*h));
	struct enl_limits lim = {1 << 20};
	struct enl_attachment att;
	struct enl_payload p;
	struct delivery_init d = {DS_QUEUED, NULL};
	struct consent c;
	char subject[256], body[700], req_hex[33], orig_hex[33], why[200], when[32];
	uint8_t *crb = NULL, *env = NULL, hash[ENL_HASH_LEN];
	size_t crl = 0, len = 0;
	uint64_t index = 0;
	int rc = ENL_E_NOMEM;

	if (h == NULL)
		return rc;
	memset(&c, 0, sizeof(c));
	randombytes_buf(c.request_id, sizeof(c.request_id));
	memcpy(c.forward_id, w->hdr->message_id, ENL_MSG_ID_LEN);
	memcpy(c.original_id, w->hdr->forward_of, ENL_MSG_ID_LEN);
	memcpy(c.original_hash, w->orig.hash, ENL_HASH_LEN);
	snprintf(c.recipient, sizeof(c.recipient), "%s", recipient);
	snprintf(c.originator, sizeof(c.originator), "%s", w->orig.sender);
	snprintf(c.forwarder, sizeof(c.forwarder), "%s", w->hdr->sender);
	c.expires_at = now + (int64_t)(srv->p.cfg->consent_ttl_ms / 1000);
	c.state = CONSENT_PENDING;
	cr.request_id.data = c.request_id;
	cr.request_id.len = ENL_MSG_ID_LEN;
	cr.original_id.data = c.original_id;
	cr.original_id.len = ENL_MSG_ID_LEN;
	cr.original_hash.data = c.original_hash;
	cr.original_hash.len = ENL_HASH_LEN;
	cr.forward_id.data = c.forward_id;
	cr.forward_id.len = ENL_MSG_ID_LEN;
	cr.forwarder = c.forwarder;
	cr.recipient = c.recipient;
	cr.expires_at = c.expires_at;
	if ((rc = enl_pb_pack(&cr.base, &crb, &crl)) != ENL_OK)
		goto out;
	enl_hex(c.request_id, ENL_MSG_ID_LEN, req_hex);
	enl_hex(c.original_id, ENL_MSG_ID_LEN, orig_hex);
	enl_time_format(c.expires_at, when);
	snprintf(subject, sizeof(subject), "Consent requested: %s would forward your message "
		 "to %s", c.forwarder, c.recipient);
	snprintf(body, sizeof(body), "%s received your message %s and asks to forward it to "
		 "%s.\nIts onward sharing is CONSENT: it is held until you decide.\n\n"
		 "  enlace consent grant %s [--note TEXT]\n  enlace consent deny %s --reason "
		 "TEXT\n\nUnanswered, the request expires at %s and the forward is refused.\n",
		 c.forwarder, orig_hex, c.recipient, req_hex, req_hex, when);
	att = (struct enl_attachment){"consent-request.pb", "application/x-enlace-consent",
				      crb, crl};
	memset(&p, 0, sizeof(p));
	p.subject = subject;
	p.body = body;
	p.n_attachments = 1;
	p.attachments = &att;
	snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s", c.originator);
	h->n_recipients = 1;
	h->type = ENL_MSG_CONSENT_REQUEST;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_NEVER;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	snprintf(h->case_ref, sizeof(h->case_ref), "%s", w->hdr->case_ref);
	rc = enl_envelope_seal(srv->p.me, &dir_now(srv)->kr, &lim, h, &p, now, &env, &len);
	if (rc != ENL_OK)
		goto out;
	enl_hash(env, len, hash);
	{
		struct audit a = {ENLACE__AUDIT_EVENT__SUBMITTED, h->message_id, hash, NULL,
				  enl_identity_id(srv->p.me), NULL, "consent request", 0, NULL, NULL,
				  c.original_id};
		if ((rc = audit(srv, &a, now, &index)) != ENL_OK)
			goto out;
		a.event = ENLACE__AUDIT_EVENT__AUDIT_QUEUED;
		a.recipient = c.originator;
		if ((rc = audit(srv, &a, now, NULL)) != ENL_OK)
			goto out;
		snprintf(why, sizeof(why), "request %s sent to %s, open until %s", req_hex,
			 c.originator, when);
		a.event = ENLACE__AUDIT_EVENT__CONSENT_REQUESTED;
		a.id = c.forward_id;
		a.hash = w->hash;
		a.sender = c.forwarder;
		a.recipient = c.recipient;
		a.reason = why;
		if ((rc = audit(srv, &a, now, NULL)) != ENL_OK)
			goto out;
	}
	if ((rc = st->ops->message_put(st->db, h, hash, now, env, len, index, &d)) != ENL_OK ||
	    (rc = st->ops->consent_put(st->db, &c)) != ENL_OK)
		goto out;
	wake_agency(srv, c.originator);
	blog("forward held: consent request %s sent to %s", req_hex, c.originator);
out:
	free(crb);
	free(env);
	free(h);
	return rc;
}

/*
 * A consent decision, checked against its request: it must come from the
 * original's originator, name exactly the original, the forward and the
 * recipient the request names, and be the first decision, in time.
 * ENL_E_PERMISSION with `why` refuses it. On the writer.
 */
static int
consent_check(struct work *w, struct store *st, int64_t now, struct consent *c, char *why,
	      size_t cap)
{
	const Enlace__ConsentDecision *d = w->decision;
	int rc = st->ops->consent_get(st->db, d->request_id.data, c);

	if (rc == ENL_E_NOT_FOUND) {
		snprintf(why, cap, "no such consent request");
		return ENL_E_PERMISSION;
	}
	if (rc != ENL_OK)
		return rc;
	if (strcmp(c->originator, w->agency) != 0)
		snprintf(why, cap, "only the originator %s decides on its message, not %s",
			 c->originator, w->agency);
	else if (memcmp(c->original_id, d->original_id.data, ENL_MSG_ID_LEN) != 0 ||
		 memcmp(c->original_hash, d->original_hash.data, ENL_HASH_LEN) != 0 ||
		 memcmp(c->forward_id, d->forward_id.data, ENL_MSG_ID_LEN) != 0 ||
		 strcmp(c->recipient, d->recipient) != 0)
		snprintf(why, cap, "the decision does not match the request (original, forward "
			 "and recipient must be the request's)");
	else if (c->state == CONSENT_EXPIRED_S || now >= c->expires_at)
		snprintf(why, cap, "the consent request has expired");
	else if (c->state != CONSENT_PENDING)
		snprintf(why, cap, "this request was decided already: a decision is taken once");
	else
		return ENL_OK;
	return ENL_E_PERMISSION;
}

/* Applies a decision checked by consent_check: the held forward goes to
 * its recipient, or is refused with the originator's reason. */
static int
consent_apply(struct work *w, struct store *st, int64_t now, const struct consent *c)
{
	const Enlace__ConsentDecision *d = w->decision;
	char why[400];
	int rc;
	struct audit a = {d->grant ? ENLACE__AUDIT_EVENT__CONSENT_GRANTED
				   : ENLACE__AUDIT_EVENT__CONSENT_DENIED,
			  c->forward_id, w->hash, NULL, c->originator, c->recipient, why, 0, NULL,
			  NULL, c->original_id};

	snprintf(why, sizeof(why), "%s by %s%s%s", d->grant ? "consent granted" : "consent denied",
		 c->originator, d->note[0] ? ": " : "", d->note);
	if ((rc = st->ops->consent_set(st->db, c->request_id, d->grant ? CONSENT_GRANTED_S
									: CONSENT_DENIED_S)) != ENL_OK)
		return rc;
	rc = st->ops->mark(st->db, c->forward_id, c->recipient, d->grant ? DS_QUEUED : DS_REJECTED,
			   now, NULL, 0, d->grant ? NULL : why);
	if (rc != ENL_OK)
		return rc;
	if ((rc = audit(w->srv, &a, now, NULL)) != ENL_OK)
		return rc;
	if (d->grant) {
		a.event = ENLACE__AUDIT_EVENT__AUDIT_QUEUED;
		a.reason = "released by the originator's consent";
		if ((rc = audit(w->srv, &a, now, NULL)) != ENL_OK)
			return rc;
		wake_agency(w->srv, c->recipient);
	}
	blog("consent %s by %s for the forward to %s", d->grant ? "granted" : "denied",
	     c->originator, c->recipient);
	return ENL_OK;
}

/* The directory expires: said in the log a week before, every hour, and
 * once it has. The broker goes on with it (refusing every agency for a
 * late authority would stop all exchange); the operator puts a newer one
 * in force with SIGHUP. On the writer. */
static void
expiry_watch(struct server *srv, int64_t now)
{
	char what[160];

	if (now < srv->expiry_said + 3600 ||
	    !enl_directory_expiry_say(dir_now(srv)->dir, now, what, sizeof(what)))
		return;
	srv->expiry_said = now;
	blog("directory %s: put the authority's newer one in force (SIGHUP)", what);
}

/* Requests nobody answered in time: their forwards are refused. */
static int
consents_sweep(struct server *srv, struct store *st, int64_t now)
{
	struct consent c[32];
	size_t n = 0;
	int rc;

	if (now < srv->consents_swept + 1)
		return ENL_OK;
	srv->consents_swept = now;
	if ((rc = st->ops->consents_expired(st->db, now, c, 32, &n)) != ENL_OK)
		return rc;
	for (size_t i = 0; rc == ENL_OK && i < n; i++) {
		const char *why = "consent request expired unanswered";
		struct audit a = {ENLACE__AUDIT_EVENT__CONSENT_EXPIRED, c[i].forward_id, NULL,
				  NULL, c[i].originator, c[i].recipient, why, 0, NULL, NULL,
				  c[i].original_id};
		if ((rc = st->ops->consent_set(st->db, c[i].request_id, CONSENT_EXPIRED_S)) != ENL_OK)
			break;
		rc = st->ops->mark(st->db, c[i].forward_id, c[i].recipient, DS_REJECTED, now,
				   NULL, 0, why);
		if (rc == ENL_OK || rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND)
			rc = audit(srv, &a, now, NULL);
		if (rc == ENL_OK)
			blog("consent request of %s expired: the forward to %s is refused",
			     c[i].originator, c[i].recipient);
	}
	return rc;
}

static int
submit_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	struct stored_message m;
	int rc = st->ops->message_get(st->db, w->hdr->message_id, &m);

	if (rc == ENL_OK) {
		/* A retry of the same envelope gets the first receipt. */
		if (sodium_memcmp(m.hash, w->hash, ENL_HASH_LEN) != 0) {
			struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->hdr->message_id,
					  w->hash, NULL, w->agency, NULL,
					  "message id already used for another envelope", 0, NULL, NULL, NULL};
			return (rc = audit(w->srv, &a, now, NULL)) != ENL_OK ? rc : ENL_E_EXISTS;
		}
		w->idempotent = true;
		return ENL_OK;
	}
	if (rc != ENL_E_NOT_FOUND)
		return rc;
	struct consent cons;
	if (w->decision != NULL) {
		rc = consent_check(w, st, now, &cons, w->refused_why, sizeof(w->refused_why));
		if (rc == ENL_E_PERMISSION) {
			struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->hdr->message_id,
					  w->hash, NULL, w->agency, NULL, w->refused_why, 0,
					  NULL, NULL, NULL};
			return (rc = audit(w->srv, &a, now, NULL)) != ENL_OK ? rc : ENL_E_PERMISSION;
		}
		if (rc != ENL_OK)
			return rc;
	}
	if (w->hdr->type == ENL_MSG_FORWARD || w->hdr->has_forward_of) {
		rc = forward_check(w, st, w->refused_why, sizeof(w->refused_why));
		if (rc == ENL_E_PERMISSION) {
			struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->hdr->message_id,
					  w->hash, NULL, w->agency, NULL, w->refused_why, 0,
					  NULL, NULL, NULL};
			return (rc = audit(w->srv, &a, now, NULL)) != ENL_OK ? rc : ENL_E_PERMISSION;
		}
		if (rc != ENL_OK)
			return rc;
	}
	{
		struct audit a = {ENLACE__AUDIT_EVENT__SUBMITTED, w->hdr->message_id, w->hash, NULL,
				  w->hdr->sender, NULL, NULL, 0, &w->submitted, &w->submitted_len,
				  w->hdr->has_forward_of ? w->hdr->forward_of : NULL};
		uint64_t index = 0;
		if ((rc = audit(w->srv, &a, now, &index)) != ENL_OK)
			return rc;
		w->submitted_index = index;
		w->submitted_at = now;
		a.keep = NULL;
		struct delivery_init *d = calloc(w->hdr->n_recipients, sizeof(*d));
		char (*why)[POLICY_NAME_MAX + 80] = calloc(w->hdr->n_recipients, sizeof(*why));
		rc = d == NULL || why == NULL ? ENL_E_NOMEM : ENL_OK;
		/* each recipient as the policy decided, the rule on the record */
		for (size_t i = 0; rc == ENL_OK && i < w->hdr->n_recipients; i++) {
			const struct policy_decision *pd = &w->decisions[i];
			bool held = w->held != NULL && w->held[i];
			if (held)
				snprintf(why[i], sizeof(why[i]), "held for the originator's consent "
					 "(policy rule %s allows)", pd->rule);
			else
				snprintf(why[i], sizeof(why[i]), "%s by policy rule %s",
					 pd->allow ? "allowed" : "denied", pd->rule);
			a.event = held ? ENLACE__AUDIT_EVENT__HELD_FOR_CONSENT
				  : pd->allow ? ENLACE__AUDIT_EVENT__AUDIT_QUEUED
					      : ENLACE__AUDIT_EVENT__AUDIT_REJECTED;
			a.recipient = w->hdr->recipients[i];
			a.reason = why[i];
			d[i].state = held ? DS_HELD : pd->allow ? DS_QUEUED : DS_REJECTED;
			d[i].reason = pd->allow && !held ? NULL : why[i];
			if (w->decision != NULL && pd->allow)
				d[i].state = DS_ACKED;	/* the broker took it in itself */
			rc = audit(w->srv, &a, now, NULL);
		}
		if (rc == ENL_OK)
			rc = st->ops->message_put(st->db, w->hdr, w->hash, now, w->env, w->env_len,
						  index, d);
		/* the recipients' waiting fetches take it in this same round
		 * (after the jobs, in its transaction), answered after its commit */
		if (rc == ENL_OK)
			mark_parked_dirty(w->srv, w->hdr);
		for (size_t i = 0; rc == ENL_OK && w->held != NULL && i < w->hdr->n_recipients; i++)
			if (w->held[i])
				rc = consent_request(w, st, now, w->hdr->recipients[i]);
		if (rc == ENL_OK && w->decision != NULL)
			rc = consent_apply(w, st, now, &cons);
		free(d);
		free(why);
		/* half a submission must never commit: any failure once writing
		 * began fails the whole round, which rolls back */
		return rc == ENL_OK || enl_err_transient(rc) ? rc : ENL_E_IO;
	}
}

/* The receipt of a message just stored: what it says is known without
 * reading it back (every recipient QUEUED now). */
static void
respond_fresh_receipt(struct work *w)
{
	struct receipt_job *rj = calloc(1, sizeof(*rj));
	int rc = ENL_E_NOMEM;

	if (rj == NULL || (rj->raw = calloc(w->hdr->n_recipients, sizeof(*rj->raw))) == NULL)
		goto fail;
	memcpy(rj->id, w->hdr->message_id, ENL_MSG_ID_LEN);
	memcpy(rj->m.hash, w->hash, ENL_HASH_LEN);
	snprintf(rj->m.sender, sizeof(rj->m.sender), "%s", w->hdr->sender);
	rj->m.received_at = w->submitted_at;
	rj->m.log_index = w->submitted_index;
	for (size_t i = 0; i < w->hdr->n_recipients; i++) {
		snprintf(rj->raw[i].recipient, sizeof(rj->raw[i].recipient), "%s",
			 w->hdr->recipients[i]);
		bool held = w->held != NULL && w->held[i];
		rj->raw[i].state = held ? DS_HELD : w->decisions[i].allow ? DS_QUEUED : DS_REJECTED;
		if (w->decision != NULL && w->decisions[i].allow)
			rj->raw[i].state = DS_ACKED;
		rj->raw[i].queued_at = w->submitted_at;
		if (held)
			snprintf(rj->raw[i].reason, sizeof(rj->raw[i].reason),
				 "held for the originator's consent");
		else if (!w->decisions[i].allow)
			snprintf(rj->raw[i].reason, sizeof(rj->raw[i].reason),
				 "denied by policy rule %s", w->decisions[i].rule);
	}
	rj->n = rj->cap = w->hdr->n_recipients;
	rj->entry = w->submitted;
	rj->entry_len = w->submitted_len;
	w->submitted = NULL;
	if ((rc = receipt_gather_log(w->srv, rj)) != ENL_OK)
		goto fail;
	respond_receipt_job(w, rj);
	return;
fail:
	receipt_job_free(rj);
	respond_status(w, rc, NULL);
}

static void
submit_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;
	uint8_t id[ENL_MSG_ID_LEN];

	if (rc == ENL_E_EXISTS) {
		respond_status(w, rc, "this message id was already used for another envelope");
		return;
	}
	if (rc == ENL_E_PERMISSION) {
		respond_status(w, rc, w->refused_why);
		return;
	}
	if (rc != ENL_OK) {
		char why[160];
		snprintf(why, sizeof(why), "the broker could not store the message: %s",
			 enl_strerror(rc));
		respond_status(w, rc, why);
		return;
	}
	if (!w->idempotent) {
		respond_fresh_receipt(w);
		return;
	}
	memcpy(id, w->hdr->message_id, sizeof(id));
	respond_receipt(w, id);
}

/* A refused submission is an entry of the log (REJECTED, with the
 * reason) before the sender hears of it. */
static int
rejected_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->hdr_ok ? w->hdr->message_id : NULL,
			  w->hash, NULL, w->agency, NULL, w->refused_why, 0, NULL, NULL, NULL};

	(void)st;
	return audit(w->srv, &a, now, NULL);
}

static void
rejected_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc != ENL_OK)
		blog("audit log: a refusal of %s could not be recorded: %s", w->agency,
		     enl_strerror(rc));
	respond_status(w, w->refused_rc, w->refused_why);
}

static int
submit_refuse(struct work *w, int rc, const char *why)
{
	const Enlace__SubmitReq *s = w->req->submit;

	if (!w->hdr_ok)
		crypto_generichash(w->hash, ENL_HASH_LEN, s->envelope.data, s->envelope.len,
				   NULL, 0);
	w->refused_rc = rc;
	snprintf(w->refused_why, sizeof(w->refused_why), "%s", why ? why : enl_strerror(rc));
	w->job.write = rejected_write;
	w->job.done = rejected_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* The policy's decision for every recipient, all by the same policy. */
static int
decide(struct work *w)
{
	const struct enl_header *h = w->hdr;
	struct policy_query q;
	struct policy_ref *pr;

	if ((w->decisions = calloc(h->n_recipients, sizeof(*w->decisions))) == NULL)
		return ENL_E_NOMEM;
	memset(&q, 0, sizeof(q));
	policy_query_from(&q, enl_directory_find(w->dir->dir, h->sender));
	q.type = (int)h->type;
	q.tlp = (int)h->handling.tlp;
	q.size = w->req->submit->envelope.len;
	q.forward = h->has_forward_of;
	pr = policy_get(w->srv);
	for (size_t i = 0; i < h->n_recipients; i++) {
		if (strcmp(h->recipients[i], enl_identity_id(w->srv->p.me)) == 0) {
			/* the broker itself: a consent decision, nothing else */
			w->decisions[i].allow = h->type == ENL_MSG_CONSENT_DECISION;
			snprintf(w->decisions[i].rule, sizeof(w->decisions[i].rule),
				 "consent-decision-to-the-broker");
			continue;
		}
		policy_query_to(&q, enl_directory_find(w->dir->dir, h->recipients[i]));
		policy_decide(pr->p, &q, &w->decisions[i]);
	}
	policy_put(w->srv, pr);
	return ENL_OK;
}

/*
 * A consent decision is addressed to the broker alone: the broker opens
 * it (on nng's thread) and keeps what it decides, for the writer to check
 * against the request.
 */
static int
decision_open(struct work *w, char *why, size_t cap)
{
	const Enlace__SubmitReq *s = w->req->submit;
	struct enl_limits lim = {1 << 20};
	struct enl_message *m = NULL;
	const struct enl_attachment *att = NULL;
	Enlace__ConsentDecision *d = NULL;
	int rc;

	if (w->hdr->n_recipients != 1 ||
	    strcmp(w->hdr->recipients[0], enl_identity_id(w->srv->p.me)) != 0) {
		snprintf(why, cap, "a consent decision goes to the broker, and to it alone");
		return ENL_E_PERMISSION;
	}
	rc = enl_envelope_open(s->envelope.data, s->envelope.len, w->srv->p.me, &w->dir->kr,
			       &lim, (int64_t)time(NULL), &m);
	if (rc != ENL_OK) {
		snprintf(why, cap, "the consent decision does not open: %s", enl_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < m->payload.n_attachments && att == NULL; i++)
		if (strcmp(m->payload.attachments[i].name, "consent-decision.pb") == 0)
			att = &m->payload.attachments[i];
	rc = att == NULL ? ENL_E_MALFORMED
			 : enl_pb_unpack(&enlace__consent_decision__descriptor, att->data, att->len,
					 4096, (ProtobufCMessage **)&d);
	enl_message_free(m);
	if (rc == ENL_OK && (d->request_id.len != ENL_MSG_ID_LEN ||
			     d->original_id.len != ENL_MSG_ID_LEN ||
			     d->original_hash.len != ENL_HASH_LEN ||
			     d->forward_id.len != ENL_MSG_ID_LEN || !enl_id_valid(d->recipient) ||
			     !enl_text_valid(d->note, 1000))) {
		protobuf_c_message_free_unpacked(&d->base, NULL);
		rc = ENL_E_MALFORMED;
	}
	if (rc != ENL_OK) {
		snprintf(why, cap, "not a consent decision: %s", enl_strerror(rc));
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	}
	w->decision = d;
	return ENL_OK;
}

static int
handle_submit(struct work *w)
{
	const Enlace__SubmitReq *s = w->req->submit;
	struct enl_header *h;
	char why[256];
	int rc;

	if ((h = malloc(sizeof(*h))) == NULL)
		return ENL_E_NOMEM;
	w->hdr = h;
	rc = enl_envelope_verify(s->envelope.data, s->envelope.len, &w->dir->kr,
				 &w->srv->lim, (int64_t)time(NULL), h, w->hash);
	if (rc == ENL_E_NOMEM)
		return rc;
	if (rc != ENL_OK)
		return submit_refuse(w, rc, NULL);
	w->hdr_ok = true;
	if (strcmp(h->sender, w->agency) != 0) {
		blog("refused SUBMIT from %s: envelope claims sender %s", w->agency, h->sender);
		return submit_refuse(w, ENL_E_INVAL,
				     "the envelope's sender is not this session's agency");
	}
	for (size_t i = 0; i < h->n_recipients; i++)
		if (enl_directory_find(w->dir->dir, h->recipients[i]) == NULL) {
			snprintf(why, sizeof(why), "unknown recipient %s", h->recipients[i]);
			return submit_refuse(w, ENL_E_UNKNOWN_RECIPIENT, why);
		}
	if (h->type == ENL_MSG_CONSENT_REQUEST)
		return submit_refuse(w, ENL_E_PERMISSION, "only the broker makes consent requests");
	if (h->type == ENL_MSG_CONSENT_DECISION && (rc = decision_open(w, why, sizeof(why))) != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : submit_refuse(w, rc, why);
	if ((rc = decide(w)) != ENL_OK)
		return rc;
	w->env = s->envelope.data;
	w->env_len = s->envelope.len;
	w->job.write = submit_write;
	w->job.done = submit_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* ---- FETCH (long poll) ---- */

static int
collect_env(void *arg, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t *env, size_t len,
	    uint8_t **own)
{
	struct work *w = arg;

	if (w->n_found == w->cap_found) {
		size_t cap = w->cap_found ? 2 * w->cap_found : 8;
		struct env_ref *f = realloc(w->found, cap * sizeof(*f));
		if (f == NULL)
			return 1;
		w->found = f;
		w->cap_found = cap;
	}
	if (own != NULL) {	/* a large one, read from its file: no copy */
		w->found[w->n_found].bytes = *own;
		*own = NULL;
	} else if ((w->found[w->n_found].bytes = malloc(len ? len : 1)) != NULL) {
		memcpy(w->found[w->n_found].bytes, env, len);
	} else {
		return 1;
	}
	memcpy(w->found[w->n_found].id, id, ENL_MSG_ID_LEN);
	w->found[w->n_found++].len = len;
	return 0;
}

/* The first fetch of a delivery is recorded, in the store and the log. */
static int
mark_fetched(struct server *srv, struct store *st, const uint8_t id[ENL_MSG_ID_LEN],
	     const char *agency, int64_t at)
{
	int rc = st->ops->mark(st->db, id, agency, DS_FETCHED, at, NULL, 0, NULL);

	if (rc == ENL_OK) {
		struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_FETCHED, id, NULL, NULL, NULL,
				  agency, NULL, 0, NULL, NULL, NULL};
		return audit(srv, &a, at, NULL);
	}
	return rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND ? ENL_OK : rc;
}

static int
fetch_read(struct work *w, struct store *st)
{
	return st->ops->pending(st->db, w->agency, w->max_fetch, w->srv->frame_max - 4096,
				collect_env, w);
}

/*
 * A message whose expiry has passed before its recipient fetched it is
 * not handed over: the delivery is EXPIRED, in the store and the log, and
 * the sender's receipt says so. ENL_E_EXISTS if it was fetched before (the
 * recipient may hold it: it goes again, and the recipient decides).
 */
static int
expire_delivery(struct server *srv, struct store *st, const uint8_t id[ENL_MSG_ID_LEN],
		const char *agency, int64_t expires_at, int64_t now)
{
	char why[120], t[32];
	int rc;

	enl_time_format(expires_at, t);
	snprintf(why, sizeof(why), "the message expired at %s, before %s fetched it", t, agency);
	if ((rc = st->ops->mark(st->db, id, agency, DS_EXPIRED, now, NULL, 0, why)) != ENL_OK)
		return rc;
	struct audit a = {ENLACE__AUDIT_EVENT__EXPIRED, id, NULL, NULL, NULL, agency, why,
			  0, NULL, NULL, NULL};
	return audit(srv, &a, now, NULL);
}

static int
mark_expired(struct server *srv, struct store *st, const struct env_ref *f,
	     const char *agency, int64_t now)
{
	struct enl_limits lim = {.max_payload = srv->p.cfg->max_payload};
	struct enl_header h;

	/* the stored bytes verified at SUBMIT: their header can be read */
	if (enl_envelope_peek(f->bytes, f->len, &lim, &h) != ENL_OK || h.expires_at == 0 ||
	    h.expires_at > now)
		return ENL_E_EXISTS;
	return expire_delivery(srv, st, f->id, agency, h.expires_at, now);
}

/*
 * Deliveries nobody fetched before their message expired, found once a
 * second: EXPIRED without waiting for a fetch that may never come (the
 * recipient's agent away, or the agency gone), so the sender's receipt
 * and the audit log say so at the time.
 */
static int
deliveries_sweep(struct server *srv, struct store *st, int64_t now)
{
	struct expired_delivery e[64];
	size_t n = 0;
	int rc;

	if (now < srv->deliveries_swept + 1)
		return ENL_OK;
	srv->deliveries_swept = now;
	if ((rc = st->ops->deliveries_expired(st->db, now, e, 64, &n)) != ENL_OK)
		return rc;
	for (size_t i = 0; rc == ENL_OK && i < n; i++) {
		rc = expire_delivery(srv, st, e[i].id, e[i].recipient, e[i].expires_at, now);
		if (rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND)
			rc = ENL_OK;	/* moved on in this same batch */
	}
	if (n == 64)
		srv->deliveries_swept = 0;	/* more: again at the next round */
	return rc;
}

/* Marks what a fetch took as fetched (the envelopes stay undelivered
 * until acknowledged: a lost answer only means they are fetched again),
 * and leaves out what expired. */
static int
fetch_mark(struct work *w, struct store *st, int64_t now)
{
	size_t kept = 0;
	int rc = ENL_OK;

	for (size_t i = 0; i < w->n_found; i++) {
		struct env_ref *f = &w->found[i];
		if ((rc = mark_expired(w->srv, st, f, w->agency, now)) == ENL_OK) {
			free(f->bytes);
			f->bytes = NULL;
			continue;
		}
		if (rc != ENL_E_EXISTS ||
		    (rc = mark_fetched(w->srv, st, f->id, w->agency, now)) != ENL_OK)
			break;
	}
	for (size_t i = 0; i < w->n_found; i++)
		if (w->found[i].bytes != NULL)
			w->found[kept++] = w->found[i];
	w->n_found = kept;
	return rc;
}

static int
fetch_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	int rc = fetch_read(w, st);

	return rc == ENL_OK ? fetch_mark(w, st, now) : rc;
}

static void
fetch_reply(struct work *w)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;
	ProtobufCBinaryData *envs = calloc(w->n_found + 1, sizeof(*envs));

	if (envs == NULL) {
		respond_status(w, ENL_E_NOMEM, NULL);
		return;
	}
	for (size_t i = 0; i < w->n_found; i++) {
		envs[i].data = w->found[i].bytes;
		envs[i].len = w->found[i].len;
	}
	r.n_envelopes = w->n_found;
	r.envelopes = envs;
	respond(w, &r);
	free(envs);
}

static void
fetch_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc != ENL_OK) {
		respond_status(w, rc, NULL);
		return;
	}
	if (w->n_found == 0 && now_ms() < w->deadline) {
		w->parked = true;
		w->next_parked = w->srv->parked;
		w->srv->parked = w;
		return;
	}
	defer_reply(w, REPLY_FETCH);
}

static void
mark_parked_dirty(struct server *srv, const struct enl_header *h)
{
	bool any = false;

	for (struct work *p = srv->parked; p != NULL; p = p->next_parked)
		for (size_t i = 0; i < h->n_recipients && !p->dirty; i++)
			any |= p->dirty = strcmp(p->agency, h->recipients[i]) == 0;
	if (any)
		writer_kick(srv->p.writer);	/* in case the round is over already */
}

/*
 * On the writer, inside each round's transaction: parked fetches that have
 * new envelopes take them (marked fetched in the same commit), those whose
 * wait is over get an empty answer, those whose session died are dropped.
 */
static int
fetch_prepare(void *arg, struct store *st, int64_t now)
{
	struct server *srv = arg;
	struct work *list = srv->parked, *keep = NULL, *w;
	int64_t ms = now_ms();
	int rc = ENL_OK;

	srv->parked = NULL;
	expiry_watch(srv, now);
	rc = consents_sweep(srv, st, now);
	if (rc == ENL_OK)
		rc = deliveries_sweep(srv, st, now);
	while ((w = list) != NULL) {
		bool dead;
		list = w->next_parked;
		pthread_mutex_lock(&srv->mu);
		dead = w->sess->dead;
		pthread_mutex_unlock(&srv->mu);
		if (dead) {
			w->parked = false;
			work_reset(w);
			work_recv(w);
			continue;
		}
		if (w->dirty && rc == ENL_OK) {
			w->dirty = false;
			if ((rc = fetch_read(w, st)) == ENL_OK && w->n_found > 0) {
				/* marked fetched in this round's commit, which
				 * the answer waits for */
				rc = fetch_mark(w, st, now);
			}
		}
		if (w->n_found == 0 && ms < w->deadline) {
			w->next_parked = keep;
			keep = w;
			continue;
		}
		w->next_parked = srv->ready;
		srv->ready = w;
	}
	srv->parked = keep;
	return rc;
}

static void
fetch_complete(void *arg, int rc)
{
	struct server *srv = arg;
	struct work *w;

	/* the tiles may follow (at most once a second), once the round is
	 * durable: nothing is published that a crash could take back */
	if (rc == ENL_OK && enl_tlog_publish_wanted(srv->p.log)) {
		writer_wait_durable(srv->p.writer);
		int prc = enl_tlog_publish_due(srv->p.log);
		uint64_t published = enl_tlog_published(srv->p.log);
		if (prc != ENL_OK && !srv->publish_failing) {
			blog("audit log: cannot publish the tiles: %s (the journal has the entries; "
			     "tried again each second; said once)", enl_strerror(prc));
			srv->publish_failing = true;
			srv->publish_failed_at = published;
		} else if (prc == ENL_OK && srv->publish_failing &&
			   published > srv->publish_failed_at) {
			blog("audit log: the tiles are published again");
			srv->publish_failing = false;
		}
	}

	while ((w = srv->ready) != NULL) {
		srv->ready = w->next_parked;
		w->parked = false;
		if (rc != ENL_OK)
			respond_status(w, rc, NULL);
		else
			defer_reply(w, REPLY_FETCH);
	}
}

static int
handle_fetch(struct work *w)
{
	const Enlace__FetchReq *f = w->req->fetch;
	uint64_t wait = f->wait_ms;

	if (wait > w->srv->p.cfg->fetch_wait_max_ms)
		wait = w->srv->p.cfg->fetch_wait_max_ms;
	w->deadline = now_ms() + (int64_t)wait;
	w->max_fetch = f->max && f->max < w->srv->p.cfg->fetch_batch ? f->max
								      : w->srv->p.cfg->fetch_batch;
	w->job.write = fetch_write;
	w->job.done = fetch_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* ---- ACK and REJECT (by the recipient) ---- */

static int
ack_one(struct work *w, struct store *st, const Enlace__AckReq *a, int64_t now)
{
	struct stored_message m;
	int rc;

	if ((rc = st->ops->message_get(st->db, a->message_id.data, &m)) != ENL_OK)
		return rc;
	if (sodium_memcmp(m.hash, a->envelope_hash.data, ENL_HASH_LEN) != 0)
		return ENL_E_BAD_SIGNATURE;
	rc = st->ops->mark(st->db, a->message_id.data, w->agency, DS_ACKED, now,
			   a->signature.data, a->time, NULL);
	if (rc == ENL_OK) {
		struct audit e = {ENLACE__AUDIT_EVENT__AUDIT_ACKED, a->message_id.data,
				  a->envelope_hash.data, a->signature.data, m.sender, w->agency,
				  NULL, a->time, NULL, NULL, NULL};
		rc = audit(w->srv, &e, now, NULL);
	}
	return rc == ENL_E_EXISTS ? ENL_OK : rc;	/* a repeated ack is fine */
}

static int
ack_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	int rc = ENL_OK;

	if (w->op == OP_ACK && w->req->body_case == ENLACE__REQUEST__BODY_ACK)
		return ack_one(w, st, w->req->ack, now);
	if (w->op == OP_ACK) {
		/* every ack of the list is tried; the first failure is reported */
		for (size_t i = 0; i < w->req->acks->n_acks; i++) {
			int one = ack_one(w, st, w->req->acks->acks[i], now);
			if (enl_err_transient(one))
				return one;
			if (rc == ENL_OK)
				rc = one;
		}
		return rc;
	}
	rc = st->ops->mark(st->db, w->req->reject->message_id.data, w->agency, DS_REFUSED,
			   now, NULL, 0, w->req->reject->reason);
	if (rc == ENL_OK) {
		struct audit e = {ENLACE__AUDIT_EVENT__REFUSED_BY_RECIPIENT, w->req->reject->message_id.data, NULL,
				  NULL, NULL, w->agency, w->req->reject->reason, 0, NULL, NULL, NULL};
		rc = audit(w->srv, &e, now, NULL);
	}
	return rc == ENL_E_EXISTS ? ENL_OK : rc;
}

static void
ack_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc == ENL_E_NOT_FOUND)
		respond_status(w, rc, "no such message for this agency");
	else
		respond_status(w, rc, NULL);
}

/* Checks a recipient's signature over (message id, envelope hash, time). */
static int
ack_check(struct work *w, const Enlace__AckReq *a)
{
	uint8_t msg[ENL_ACK_MSG_LEN], pk[32];
	int rc;

	if (a->message_id.len != ENL_MSG_ID_LEN || a->envelope_hash.len != ENL_HASH_LEN ||
	    a->signature.len != 64)
		return ENL_E_MALFORMED;
	enl_ack_message(a->message_id.data, a->envelope_hash.data, a->time, msg);
	rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
				    enl_session_peer_version(w->sess->s), pk);
	if (rc == ENL_OK)
		rc = enl_verify_labeled(pk, ENL_LABEL_ACK, msg, sizeof(msg), a->signature.data);
	return rc;
}

static int
handle_ack(struct work *w)
{
	int rc;

	if (w->req->body_case == ENLACE__REQUEST__BODY_ACK) {
		rc = ack_check(w, w->req->ack);
	} else {
		rc = w->req->acks->n_acks == 0 || w->req->acks->n_acks > 1024
			     ? ENL_E_MALFORMED : ENL_OK;
		for (size_t i = 0; rc == ENL_OK && i < w->req->acks->n_acks; i++)
			rc = ack_check(w, w->req->acks->acks[i]);
	}
	if (rc != ENL_OK)
		return rc;
	w->job.write = ack_write;
	w->job.done = ack_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

static int
handle_reject(struct work *w)
{
	const Enlace__RejectReq *r = w->req->reject;

	if (r->message_id.len != ENL_MSG_ID_LEN || !enl_text_valid(r->reason, 255))
		return ENL_E_MALFORMED;
	blog("%s refused a message it received: %s", w->agency, r->reason);
	w->job.write = ack_write;
	w->job.done = ack_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* ---- RECEIPTS ---- */

static int
receipts_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	struct stored_message m;
	int rc = st->ops->message_get(st->db, w->req->receipts->message_id.data, &m);

	(void)now;
	if (rc == ENL_OK && strcmp(m.sender, w->agency) != 0)
		rc = ENL_E_NOT_FOUND;	/* only the sender sees its receipts */
	return rc;
}

static void
receipts_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;
	uint8_t id[ENL_MSG_ID_LEN];

	if (rc != ENL_OK) {
		respond_status(w, rc, rc == ENL_E_NOT_FOUND ? "no such message from this agency"
							     : NULL);
		return;
	}
	memcpy(id, w->req->receipts->message_id.data, sizeof(id));
	respond_receipt(w, id);
}

static int
handle_receipts(struct work *w)
{
	if (w->req->receipts->message_id.len != ENL_MSG_ID_LEN)
		return ENL_E_MALFORMED;
	w->job.write = receipts_write;
	w->job.done = receipts_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* ---- DIRECTORY ---- */

static int
handle_directory(struct work *w)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;

	if (w->req->directory->have_serial < enl_directory_serial(w->dir->dir)) {
		r.directory.data = (uint8_t *)w->dir->bytes;
		r.directory.len = w->dir->len;
	}
	respond(w, &r);
	return 0;
}

/* ---- CHECKPOINT: consistency proofs and cosignatures ---- */

static void
add_cosig(void *arg, const char *line)
{
	char **all = arg, *n;
	size_t have = *all ? strlen(*all) : 0;

	if ((n = realloc(*all, have + strlen(line) + 1)) == NULL)
		return;
	strcpy(n + have, line);
	*all = n;
}

/* Checks an agency's cosignature line of the checkpoint of `size`. */
static int
cosig_check(struct work *w, uint64_t size, const char *line)
{
	struct enl_checkpoint cp;
	struct enl_note_verifier v = {0};
	char *body = NULL, *note = NULL, prefix[ENL_ID_MAX + 8];
	size_t len = strlen(line), tl = 0;
	bool ok = false;
	int rc;

	/* exactly one line, this agency's */
	snprintf(prefix, sizeof(prefix), "\xe2\x80\x94 %s ", w->agency);
	if (len < strlen(prefix) + 2 || len > 512 || strncmp(line, prefix, strlen(prefix)) != 0 ||
	    strchr(line, '\n') != line + len - 1)
		return ENL_E_MALFORMED;
	if (size == 0 || size > enl_tlog_committed(w->srv->p.log))
		return ENL_E_INVAL;
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "enlace/%s", enl_identity_id(w->srv->p.me));
	cp.size = size;
	snprintf(v.name, sizeof(v.name), "%s", w->agency);
	v.cosigner = true;
	if ((rc = enl_tlog_root(w->srv->p.log, size, cp.root)) != ENL_OK ||
	    (rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
					 enl_session_peer_version(w->sess->s), v.pk)) != ENL_OK ||
	    (rc = enl_checkpoint_format(&cp, &body)) != ENL_OK)
		goto out;
	rc = ENL_E_NOMEM;
	if ((note = malloc(strlen(body) + 1 + len + 1)) == NULL)
		goto out;
	sprintf(note, "%s\n%s", body, line);
	rc = enl_note_open(note, strlen(note), &v, 1, &tl, &ok);
	if (rc == ENL_OK && !ok)
		rc = ENL_E_BAD_SIGNATURE;
out:
	free(body);
	free(note);
	return rc == ENL_E_UNKNOWN_SENDER ? ENL_E_BAD_SIGNATURE : rc;
}

static int
checkpoint_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	const Enlace__CheckpointReq *c = w->req->checkpoint;
	int rc;

	(void)now;
	if (c->cosignature == NULL || c->cosignature[0] == '\0')
		return ENL_OK;
	if ((rc = cosig_check(w, c->cosigned_size, c->cosignature)) != ENL_OK)
		return rc;
	if ((rc = st->ops->cosig_put(st->db, w->agency, c->cosigned_size, c->cosignature)) != ENL_OK)
		return rc;
	return st->ops->cosigs(st->db, c->cosigned_size, add_cosig, &w->cosigs);
}

static void
checkpoint_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;
	struct server *srv = w->srv;
	const Enlace__CheckpointReq *c = w->req->checkpoint;
	Enlace__Response r = ENLACE__RESPONSE__INIT;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	ProtobufCBinaryData pb[ENL_MERKLE_MAX_PROOF];
	uint64_t second = c->second ? c->second : srv->checkpoint_size;
	char *note = NULL;
	size_t n = 0;

	if (rc != ENL_OK) {
		respond_status(w, rc, rc == ENL_E_BAD_SIGNATURE ? "the cosignature does not verify"
				      : rc == ENL_E_MALFORMED ? "not a cosignature line of this agency"
				      : NULL);
		return;
	}
	if (w->cosigs != NULL && c->cosigned_size >= srv->cosig_size) {
		if (enl_tlog_set_cosignatures(srv->p.log, c->cosigned_size, w->cosigs) != ENL_OK)
			blog("audit log: cannot publish the cosignatures");
		free(srv->cosigs);
		srv->cosigs = w->cosigs;
		srv->cosig_size = c->cosigned_size;
		w->cosigs = NULL;
		blog("checkpoint %" PRIu64 " cosigned by %s", srv->cosig_size, w->agency);
	}
	if (srv->checkpoint == NULL || c->first > second || second > srv->checkpoint_size ||
	    enl_tlog_consistency(srv->p.log, c->first, second, proof, &n) != ENL_OK) {
		respond_status(w, ENL_E_INVAL, "no such tree size in this log");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pb[i].data = proof[i];
		pb[i].len = ENL_MERKLE_HASH_LEN;
	}
	r.checkpoint = srv->checkpoint;
	if (srv->cosigs != NULL && srv->cosig_size == srv->checkpoint_size &&
	    (note = malloc(strlen(srv->checkpoint) + strlen(srv->cosigs) + 1)) != NULL) {
		sprintf(note, "%s%s", srv->checkpoint, srv->cosigs);
		r.checkpoint = note;
	}
	r.n_consistency = n;
	r.consistency = pb;
	respond(w, &r);
	free(note);
}

static int
handle_checkpoint(struct work *w)
{
	const Enlace__CheckpointReq *c = w->req->checkpoint;

	if (c->cosignature != NULL && strlen(c->cosignature) > 512)
		return ENL_E_MALFORMED;	/* the line itself is checked on the writer */
	w->job.write = checkpoint_write;
	w->job.done = checkpoint_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* ---- a new policy: on the record first, then in force ---- */

struct policy_job {
	struct job job;
	struct server *srv;
	struct policy_ref *ref;
	uint8_t hash[32];
	char reason[300];
};

static int
policy_job_write(struct job *j, struct store *st, int64_t now)
{
	struct policy_job *pj = (struct policy_job *)j;
	struct audit a = {ENLACE__AUDIT_EVENT__POLICY_LOADED, NULL, pj->hash, NULL,
			  enl_identity_id(pj->srv->p.me), NULL, pj->reason, 0, NULL, NULL, NULL};

	(void)st;
	return audit(pj->srv, &a, now, NULL);
}

static void
policy_job_done(struct job *j, int rc)
{
	struct policy_job *pj = (struct policy_job *)j;
	struct server *srv = pj->srv;
	struct policy_ref *old;

	if (rc != ENL_OK) {
		blog("policy not put in force: its POLICY_LOADED entry could not be stored: %s",
		     enl_strerror(rc));
		policy_put(srv, pj->ref);
		free(pj);
		return;
	}
	pthread_mutex_lock(&srv->mu);
	old = srv->policy;
	srv->policy = pj->ref;
	pthread_mutex_unlock(&srv->mu);
	policy_put(srv, old);
	blog("policy in force: %s", pj->reason);
	free(pj);
}

void
server_set_policy(struct server *srv, struct policy *p, const uint8_t hash[32],
		  const char *path)
{
	struct policy_job *pj = calloc(1, sizeof(*pj));
	char hex[65];

	if (pj == NULL || (pj->ref = calloc(1, sizeof(*pj->ref))) == NULL) {
		blog("policy %s: out of memory; the policy in force stays", path);
		free(pj);
		policy_free(p);
		return;
	}
	pj->srv = srv;
	pj->ref->p = p;
	pj->ref->refs = 1;
	memcpy(pj->hash, hash, 32);
	enl_hex(hash, 32, hex);
	snprintf(pj->reason, sizeof(pj->reason), "%s (%zu rules), sha256 %s", path,
		 policy_rule_count(p), hex);
	pj->job.write = policy_job_write;
	pj->job.done = policy_job_done;
	writer_submit(srv->p.writer, &pj->job);
}

/* ---- a newer directory ---- */

int
audit_directory(struct store *st, struct enl_tlog *log, const struct enl_identity *me,
		const struct enl_directory *dir, const uint8_t *bytes, size_t len, int64_t now)
{
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	uint8_t hash[ENL_HASH_LEN], seen[ENL_HASH_LEN], *entry = NULL;
	char reason[64];
	size_t elen = 0, slen = 0;
	uint64_t index;
	int rc;

	crypto_generichash(hash, sizeof(hash), bytes, len, NULL, 0);
	rc = st->ops->meta_get(st->db, "directory_hash", seen, sizeof(seen), &slen);
	if (rc == ENL_OK && slen == sizeof(seen) && sodium_memcmp(seen, hash, sizeof(hash)) == 0)
		return ENL_OK;
	if (rc != ENL_OK && rc != ENL_E_NOT_FOUND)
		return rc;
	snprintf(reason, sizeof(reason), "directory serial %" PRIu64, enl_directory_serial(dir));
	e.time = now;
	e.event = ENLACE__AUDIT_EVENT__DIRECTORY_UPDATED;
	e.sender = (char *)enl_identity_id(me);
	e.directory_serial = enl_directory_serial(dir);
	e.envelope_hash.data = hash;
	e.envelope_hash.len = sizeof(hash);
	e.reason = reason;
	if ((rc = enl_pb_pack(&e.base, &entry, &elen)) != ENL_OK)
		return rc;
	rc = enl_tlog_append(log, entry, elen, &index);
	free(entry);
	if (rc == ENL_OK)
		rc = st->ops->meta_put(st->db, "directory_hash", hash, sizeof(hash));
	if (rc == ENL_OK)
		blog("audit log: directory serial %" PRIu64 " recorded", enl_directory_serial(dir));
	return rc == ENL_E_TOO_LARGE ? ENL_E_IO : rc;
}

struct dir_job {
	struct job job;
	struct server *srv;
	struct dir_state *state;
};

static int
dir_job_write(struct job *j, struct store *st, int64_t now)
{
	struct dir_job *dj = (struct dir_job *)j;

	return audit_directory(st, dj->srv->p.log, dj->srv->p.me, dj->state->dir,
			       dj->state->bytes, dj->state->len, now);
}

static void
dir_state_free(struct dir_state *d)
{
	enl_directory_free(d->owned);
	free(d->owned_bytes);
	free(d);
}

/* On the writer, once the DIRECTORY_UPDATED entry is stored: the new
 * directory in force, and the sessions it no longer admits closed. */
static void
dir_job_done(struct job *j, int rc)
{
	struct dir_job *dj = (struct dir_job *)j;
	struct server *srv = dj->srv;
	struct dir_state *d = dj->state;
	uint32_t *drop = NULL;
	size_t n_drop = 0;

	free(dj);
	if (rc != ENL_OK) {
		blog("directory serial %" PRIu64 " not put in force: its DIRECTORY_UPDATED entry "
		     "could not be stored: %s", enl_directory_serial(d->dir), enl_strerror(rc));
		dir_state_free(d);
		return;
	}
	pthread_mutex_lock(&srv->mu);
	d->before = srv->dir;
	srv->dir = d;
	if (srv->n_sessions > 0 && (drop = calloc(srv->n_sessions, sizeof(*drop))) == NULL)
		blog("out of memory: the sessions of keys no longer in the directory stay open "
		     "(each request of theirs is refused)");
	for (struct sess *s = srv->sessions; s != NULL && drop != NULL; s = s->next) {
		uint8_t pk[32];
		if (!s->dead && d->kr.signing_key(d->kr.ctx, enl_session_peer(s->s),
						  enl_session_peer_version(s->s), pk) != ENL_OK) {
			blog("session %s v%u closed: directory serial %" PRIu64 " no longer holds "
			     "its key", enl_session_peer(s->s), enl_session_peer_version(s->s),
			     enl_directory_serial(d->dir));
			drop[n_drop++] = s->pipe;
		}
	}
	pthread_mutex_unlock(&srv->mu);
	blog("directory serial %" PRIu64 " in force", enl_directory_serial(d->dir));
	for (size_t i = 0; i < n_drop; i++) {
		nng_pipe p = NNG_PIPE_INITIALIZER;
		p.id = drop[i];
		nng_pipe_close(p);	/* the session ends with its pipe */
	}
	free(drop);
}

uint64_t
server_directory_serial(struct server *srv)
{
	return enl_directory_serial(dir_now(srv)->dir);
}

void
server_set_directory(struct server *srv, struct enl_directory *dir, uint8_t *bytes, size_t len)
{
	struct dir_job *dj = calloc(1, sizeof(*dj));
	struct dir_state *d = calloc(1, sizeof(*d));

	if (dj == NULL || d == NULL) {
		blog("directory serial %" PRIu64 ": out of memory; the directory in force stays",
		     enl_directory_serial(dir));
		free(dj);
		free(d);
		enl_directory_free(dir);
		free(bytes);
		return;
	}
	d->dir = d->owned = dir;
	d->bytes = d->owned_bytes = bytes;
	d->len = len;
	d->kr = enl_directory_keyring(dir);
	dj->srv = srv;
	dj->state = d;
	dj->job.write = dir_job_write;
	dj->job.done = dir_job_done;
	writer_submit(srv->p.writer, &dj->job);
}

/* ---- dispatch ---- */

static const struct {
	enum op op;
	const char *name;
	int (*fn)(struct work *w);
} handlers[] = {
	[ENLACE__REQUEST__BODY_SUBMIT] = {OP_SUBMIT, "SUBMIT", handle_submit},
	[ENLACE__REQUEST__BODY_FETCH] = {OP_FETCH, "FETCH", handle_fetch},
	[ENLACE__REQUEST__BODY_ACK] = {OP_ACK, "ACK", handle_ack},
	[ENLACE__REQUEST__BODY_RECEIPTS] = {OP_RECEIPTS, "RECEIPTS", handle_receipts},
	[ENLACE__REQUEST__BODY_DIRECTORY] = {OP_NONE, "DIRECTORY", handle_directory},
	[ENLACE__REQUEST__BODY_REJECT] = {OP_REJECT, "REJECT", handle_reject},
	[ENLACE__REQUEST__BODY_ACKS] = {OP_ACK, "ACK", handle_ack},
	[ENLACE__REQUEST__BODY_CHECKPOINT] = {OP_CHECKPOINT, "CHECKPOINT", handle_checkpoint},
};

static void
handle_request(struct work *w, uint8_t *frame, size_t len)
{
	const uint8_t *plain = NULL;
	size_t plen = 0;
	unsigned which;
	int rc;

	rc = enl_session_open_request(w->sess->s, frame, len, w->srv->frame_max,
				      &w->counter, &plain, &plen);
	if (rc != ENL_OK) {
		const char *why = rc == ENL_E_INVAL ? "replayed or reordered frame"
						    : enl_strerror(rc);
		blog("refused a frame from %s: %s", w->agency, why);
		work_reset(w);
		refuse(w, rc, why);
		return;
	}
	/* the directory changed since the session opened: is its key still in it? */
	if (w->dir != w->sess->opened) {
		uint8_t pk[32];
		rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
					    enl_session_peer_version(w->sess->s), pk);
		if (rc != ENL_OK) {
			char why[200];
			snprintf(why, sizeof(why), "the directory in force (serial %" PRIu64
				 ") does not admit this session's key: %s",
				 enl_directory_serial(w->dir->dir), enl_strerror(rc));
			respond_status(w, rc, why);
			return;
		}
	}
	rc = enl_pb_unpack(&enlace__request__descriptor, plain, plen, w->srv->frame_max,
			   (ProtobufCMessage **)&w->req);
	which = rc == ENL_OK ? (unsigned)w->req->body_case : 0;
	if (which == 0 || which >= sizeof(handlers) / sizeof(handlers[0]) ||
	    handlers[which].fn == NULL) {
		respond_status(w, ENL_E_MALFORMED, "malformed request");
		return;
	}
	w->op = handlers[which].op;
	rc = handlers[which].fn(w);
	if (rc < 0) {
		blog("refused %s from %s: %s", handlers[which].name, w->agency,
		     enl_strerror(rc));
		respond_status(w, rc, NULL);
	}
}

static void
handle_hello(struct work *w, uint32_t pipe, const uint8_t *frame, size_t len)
{
	struct server *srv = w->srv;
	struct enl_session *s = NULL;
	struct sess *ss;
	uint8_t *welcome = NULL, nonce[32];
	size_t wlen = 0;
	int64_t now = (int64_t)time(NULL);
	const struct enl_broker_directory bd = {w->dir->bytes, w->dir->len,
						 enl_directory_serial(w->dir->dir)};
	int rc;

	rc = enl_session_accept(srv->p.me, &w->dir->kr, frame, len, now, &bd, nonce, &s,
				&welcome, &wlen);
	if (rc == ENL_OK && replayed(srv, nonce, now)) {
		rc = ENL_E_INVAL;
		blog("refused a session: replayed handshake");
		enl_session_free(s);
		free(welcome);
		refuse(w, rc, "replayed handshake");
		return;
	}
	if (rc == ENL_E_EXPIRED) {
		/* the one check of a handshake that fails on an honest agent:
		 * its machine's clock */
		char why[160];
		snprintf(why, sizeof(why), "the handshake's time is more than %d s from the "
			 "broker's clock: check the clock of the agent's machine", ENL_HELLO_SKEW);
		blog("refused a session: %s", why);
		refuse(w, rc, why);
		return;
	}
	if (rc != ENL_OK) {
		blog("refused a session: %s", enl_strerror(rc));
		refuse(w, rc, NULL);
		return;
	}
	if ((ss = calloc(1, sizeof(*ss))) == NULL) {
		enl_session_free(s);
		free(welcome);
		refuse(w, ENL_E_NOMEM, NULL);
		return;
	}
	ss->pipe = pipe;
	ss->s = s;
	ss->refs = 1;
	ss->opened = w->dir;
	pthread_mutex_lock(&srv->mu);
	if (srv->n_sessions >= srv->p.cfg->max_sessions) {
		pthread_mutex_unlock(&srv->mu);
		blog("refused a session from %s: max_sessions reached", enl_session_peer(s));
		enl_session_free(s);
		free(ss);
		free(welcome);
		refuse(w, ENL_E_TOO_LARGE, "the broker has too many sessions");
		return;
	}
	ss->next = srv->sessions;
	srv->sessions = ss;
	srv->n_sessions++;
	pthread_mutex_unlock(&srv->mu);
	blog("session %s v%u opened", enl_session_peer(s), enl_session_peer_version(s));
	send_bytes(w, welcome, wlen);
}

static void
work_cb(void *arg)
{
	struct work *w = arg;
	nng_msg *msg;
	uint32_t pipe;
	int res = nng_aio_result(w->aio);

	if (w->replying != REPLY_NONE) {
		int kind = w->replying;
		w->replying = REPLY_NONE;
		if (res == NNG_ECLOSED || res == NNG_ECANCELED) {
			receipt_job_free(w->rj);
			w->rj = NULL;
			return;
		}
		if (kind == REPLY_RECEIPT)
			receipt_send(w);
		else
			fetch_reply(w);
		return;
	}
	if (w->sending) {
		w->sending = false;
		if (res != 0 && (msg = nng_aio_get_msg(w->aio)) != NULL)
			nng_msg_free(msg);
		if (res == NNG_ECLOSED)
			return;
		work_recv(w);
		return;
	}
	if (res == NNG_ECLOSED || res == NNG_ECANCELED)
		return;
	if (res != 0) {
		work_recv(w);
		return;
	}
	msg = nng_aio_get_msg(w->aio);
	pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
	w->dir = dir_now(w->srv);
	w->sess = sess_get(w->srv, pipe);
	if (w->sess == NULL) {
		handle_hello(w, pipe, nng_msg_body(msg), nng_msg_len(msg));
	} else {
		snprintf(w->agency, sizeof(w->agency), "%s", enl_session_peer(w->sess->s));
		handle_request(w, nng_msg_body(msg), nng_msg_len(msg));
	}
	nng_msg_free(msg);
}

static void
work_recv(struct work *w)
{
	w->sending = false;
	nng_ctx_recv(w->ctx, w->aio);
}

int
server_start(const struct server_params *p, struct server **out)
{
	struct server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (srv == NULL)
		return ENL_E_NOMEM;
	srv->p = *p;
	srv->store = p->store;
	if ((srv->policy = calloc(1, sizeof(*srv->policy))) == NULL) {
		policy_free(p->policy);
		free(srv);
		return ENL_E_NOMEM;
	}
	srv->policy->p = p->policy;
	srv->policy->refs = 1;
	if ((srv->dir = calloc(1, sizeof(*srv->dir))) == NULL) {
		policy_put(srv, srv->policy);
		free(srv);
		return ENL_E_NOMEM;
	}
	srv->dir->dir = p->dir;
	srv->dir->bytes = p->dir_bytes;
	srv->dir->len = p->dir_len;
	srv->dir->kr = enl_directory_keyring(p->dir);
	srv->lim.max_payload = p->cfg->max_payload;
	srv->frame_max = enl_envelope_max_size(&srv->lim) + 4096;
	pthread_mutex_init(&srv->mu, NULL);
	srv->replay = calloc(REPLAY_SLOTS, sizeof(*srv->replay));
	srv->n_works = p->cfg->contexts;
	srv->works = calloc(srv->n_works, sizeof(*srv->works));
	if (srv->replay == NULL || srv->works == NULL) {
		rc = ENL_E_NOMEM;
		goto fail;
	}
	if ((rc = nng_rep0_open(&srv->sock)) != 0 ||
	    (rc = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
				      srv->frame_max + ENL_FRAME_OVERHEAD)) != 0 ||
	    (rc = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pipe_event, srv)) != 0) {
		blog("nng: %s", nng_strerror(rc));
		rc = ENL_E_IO;
		goto fail;
	}
	for (size_t i = 0; i < srv->n_works; i++) {
		struct work *w = &srv->works[i];
		w->srv = srv;
		if (nng_aio_alloc(&w->aio, work_cb, w) != 0 || nng_ctx_open(&w->ctx, srv->sock) != 0) {
			rc = ENL_E_NOMEM;
			goto fail;
		}
	}
	if ((rc = nng_listen(srv->sock, p->cfg->listen, NULL, 0)) != 0) {
		blog("cannot listen on %s: %s", p->cfg->listen, nng_strerror(rc));
		rc = ENL_E_IO;
		goto fail;
	}
	{
		struct writer_tick t = {fetch_prepare, log_commit, log_abort, log_sign,
					fetch_complete, srv};
		writer_set_tick(p->writer, &t);
	}
	for (size_t i = 0; i < srv->n_works; i++)
		work_recv(&srv->works[i]);
	*out = srv;
	return ENL_OK;
fail:
	server_stop(srv);
	return rc;
}

/* Closes the socket: every pending operation ends. The writer may still
 * complete jobs afterwards; their sends fail at once. */
void
server_close(struct server *srv)
{
	if (srv != NULL)
		nng_close(srv->sock);
}

void
server_stop(struct server *srv)
{
	struct sess *s, *next;

	if (srv == NULL)
		return;
	nng_close(srv->sock);
	for (size_t i = 0; srv->works && i < srv->n_works; i++)
		if (srv->works[i].aio != NULL)
			nng_aio_stop(srv->works[i].aio);
	for (size_t i = 0; srv->works && i < srv->n_works; i++) {
		work_reset(&srv->works[i]);
		nng_aio_free(srv->works[i].aio);
	}
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		enl_session_free(s->s);
		free(s);
	}
	free(srv->works);
	free(srv->replay);
	free(srv->checkpoint);
	free(srv->cosigs);
	if (srv->policy != NULL)
		policy_put(srv, srv->policy);
	while (srv->dir != NULL) {
		struct dir_state *d = srv->dir;
		srv->dir = d->before;
		dir_state_free(d);
	}
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

