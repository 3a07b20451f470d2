/*
 * FETCH (long poll), ACK, REJECT and RECEIPTS: what a recipient takes
 * and answers, and what a sender asks.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <sodium.h>

#include "server_int.h"

/* ---- FETCH (long poll) ---- */

static int
collect_env(void *arg, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t *env, size_t len,
	    int *fd, int64_t expires_at)
{
	struct work *w = arg;
	struct env_ref *f = enl_vec_push(&w->fetch.found);

	if (f == NULL)
		return 1;
	f->fd = -1;
	if (env == NULL) {	/* a large one: read into the answer when it is sent */
		f->fd = *fd;
		*fd = -1;
	} else if ((f->bytes = malloc(len ? len : 1)) != NULL) {
		memcpy(f->bytes, env, len);
	} else {
		w->fetch.found.n--;
		return 1;
	}
	memcpy(f->id, id, ENL_MSG_ID_LEN);
	f->len = len;
	f->expires_at = expires_at;
	return 0;
}

/* What a fetch holds, freed with its request. */
static void
fetch_drop(struct work *w)
{
	for (size_t i = 0; i < w->fetch.found.n; i++)
		env_ref_free(&w->fetch.found.v[i]);
	enl_vec_free(&w->fetch.found);
	memset(&w->fetch, 0, sizeof(w->fetch));
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
		return auditlog_add(srv, &a, at, NULL);
	}
	return rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND ? ENL_OK : rc;
}

static int
fetch_read(struct work *w, struct store *st)
{
	return st->ops->pending(st->db, w->agency, w->fetch.max_fetch, w->srv->frame_max - 4096,
				collect_env, w);
}

/* A delivery taken whose message expired meanwhile: EXPIRED (ENL_OK),
 * or ENL_E_EXISTS to go out (not expired, or fetched before). */
static int
mark_expired(struct server *srv, struct store *st, const struct env_ref *f,
	     const char *agency, int64_t now)
{
	if (f->expires_at == 0 || f->expires_at > now)
		return ENL_E_EXISTS;
	return housekeeping_expire(srv, st, f->id, agency, f->expires_at, now);
}

/* Marks what a fetch took as fetched (the envelopes stay undelivered
 * until acknowledged: a lost answer only means they are fetched again),
 * and leaves out what expired. */
static int
fetch_mark(struct work *w, struct store *st, int64_t now)
{
	size_t kept = 0;
	int rc = ENL_OK;

	for (size_t i = 0; i < w->fetch.found.n; i++) {
		struct env_ref *f = &w->fetch.found.v[i];
		if ((rc = mark_expired(w->srv, st, f, w->agency, now)) == ENL_OK) {
			env_ref_free(f);
			f->len = SIZE_MAX;	/* left out */
			continue;
		}
		if (rc != ENL_E_EXISTS ||
		    (rc = mark_fetched(w->srv, st, f->id, w->agency, now)) != ENL_OK)
			break;
	}
	for (size_t i = 0; i < w->fetch.found.n; i++)
		if (w->fetch.found.v[i].len != SIZE_MAX)
			w->fetch.found.v[kept++] = w->fetch.found.v[i];
	w->fetch.found.n = kept;
	return rc;
}

static int
fetch_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	int rc = fetch_read(w, st);

	return rc == ENL_OK ? fetch_mark(w, st, now) : rc;
}

/*
 * A fetch's answer is a Response with its envelopes alone (status 0 and
 * no reason, which proto3 leaves out): field 4, once for each, in order.
 * Written by hand so that a large envelope is read from its file straight
 * into the message that carries it, on the thread that sends it.
 */
#define FIELD_ENVELOPES 4

static int
fill_envelopes(void *arg, uint8_t *plain, size_t plen)
{
	struct work *w = arg;
	size_t at = 0;
	int rc = ENL_OK;

	for (size_t i = 0; i < w->fetch.found.n && rc == ENL_OK; i++) {
		const struct env_ref *f = &w->fetch.found.v[i];
		plain[at++] = FIELD_ENVELOPES << 3 | 2;
		at += enl_varint_put(plain + at, f->len);
		if (f->bytes != NULL)
			memcpy(plain + at, f->bytes, f->len);
		else
			rc = enl_file_read_into(f->fd, plain + at, f->len);
		at += f->len;
	}
	return rc == ENL_OK && at != plen ? ENL_E_MALFORMED : rc;
}

void
delivery_reply(struct work *w)
{
	uint8_t tmp[10];
	size_t plen = 0;
	int rc;

	for (size_t i = 0; i < w->fetch.found.n; i++)
		plen += 1 + enl_varint_put(tmp, w->fetch.found.v[i].len) + w->fetch.found.v[i].len;
	if ((rc = reply_filled(w, plen, fill_envelopes, w)) != ENL_OK) {
		blog("a fetch by %s could not be answered: %s", w->agency, enl_strerror(rc));
		reply_status(w, rc, "the broker could not read a stored envelope");
	}
}

static void
fetch_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc != ENL_OK) {
		reply_status(w, rc, NULL);
		return;
	}
	if (w->fetch.found.n == 0 && inforce_now_ms() < w->fetch.deadline) {
		w->fetch.parked = true;
		w->fetch.next_parked = w->srv->parked;
		w->srv->parked = w;
		return;
	}
	receipt_defer(w, REPLY_FETCH);
}

void
delivery_wake(struct server *srv, const struct enl_header *h)
{
	bool any = false;

	for (struct work *p = srv->parked; p != NULL; p = p->fetch.next_parked)
		for (size_t i = 0; i < h->n_recipients && !p->fetch.dirty; i++)
			any |= p->fetch.dirty = strcmp(p->agency, h->recipients[i]) == 0;
	if (any)
		writer_kick(srv->p.writer);	/* in case the round is over already */
}

/*
 * On the writer, inside each round's transaction (after housekeeping,
 * whose error is `rc`): parked fetches that have
 * new envelopes take them (marked fetched in the same commit), those whose
 * wait is over get an empty answer, those whose session died are dropped.
 */
int
delivery_prepare(struct server *srv, struct store *st, int64_t now, int rc)
{
	struct work *list = srv->parked, *keep = NULL, *w;
	int64_t ms = inforce_now_ms();

	srv->parked = NULL;
	while ((w = list) != NULL) {
		bool dead;
		list = w->fetch.next_parked;
		pthread_mutex_lock(&srv->mu);
		dead = w->sess->dead;
		pthread_mutex_unlock(&srv->mu);
		if (dead) {
			w->fetch.parked = false;
			work_reset(w);
			work_recv(w);
			continue;
		}
		if (w->fetch.dirty && rc == ENL_OK) {
			w->fetch.dirty = false;
			if ((rc = fetch_read(w, st)) == ENL_OK && w->fetch.found.n > 0) {
				/* marked fetched in this round's commit, which
				 * the answer waits for */
				rc = fetch_mark(w, st, now);
			}
		}
		if (w->fetch.found.n == 0 && ms < w->fetch.deadline) {
			w->fetch.next_parked = keep;
			keep = w;
			continue;
		}
		w->fetch.next_parked = srv->ready;
		srv->ready = w;
	}
	srv->parked = keep;
	return rc;
}

void
delivery_complete(struct server *srv, int rc)
{
	struct work *w;

	while ((w = srv->ready) != NULL) {
		srv->ready = w->fetch.next_parked;
		w->fetch.parked = false;
		if (rc != ENL_OK)
			reply_status(w, rc, NULL);
		else
			receipt_defer(w, REPLY_FETCH);
	}
}

int
handle_fetch(struct work *w)
{
	const Enlace__FetchReq *f = w->req->fetch;
	uint64_t wait = f->wait_ms;

	if (wait > w->srv->p.cfg->fetch_wait_max_ms)
		wait = w->srv->p.cfg->fetch_wait_max_ms;
	w->fetch.deadline = inforce_now_ms() + (int64_t)wait;
	w->fetch.max_fetch = f->max && f->max < w->srv->p.cfg->fetch_batch ? f->max
								      : w->srv->p.cfg->fetch_batch;
	w->fetch.drop = fetch_drop;
	w->fetch.found.max = w->fetch.max_fetch > 0 ? w->fetch.max_fetch : 1;
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
		rc = auditlog_add(w->srv, &e, now, NULL);
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
		rc = auditlog_add(w->srv, &e, now, NULL);
	}
	return rc == ENL_E_EXISTS ? ENL_OK : rc;
}

static void
ack_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc == ENL_E_NOT_FOUND)
		reply_status(w, rc, "no such message for this agency");
	else
		reply_status(w, rc, NULL);
}

/* Checks a recipient's signature over (message id, envelope hash, time). */
static int
ack_check(struct work *w, const Enlace__AckReq *a)
{
	uint8_t msg[ENL_ACK_MSG_LEN], pk[32];
	int rc;

	if (a->message_id.len != ENL_MSG_ID_LEN || a->envelope_hash.len != ENL_HASH_LEN ||
	    a->signature.len != 64 || a->time <= 0)	/* times are never negative */
		return ENL_E_MALFORMED;
	enl_ack_message(a->message_id.data, a->envelope_hash.data, a->time, msg);
	rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
				    enl_session_peer_version(w->sess->s), pk);
	if (rc == ENL_OK)
		rc = enl_verify_labeled(pk, ENL_LABEL_ACK, msg, sizeof(msg), a->signature.data);
	return rc;
}

int
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

int
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
		reply_status(w, rc, rc == ENL_E_NOT_FOUND ? "no such message from this agency"
							     : NULL);
		return;
	}
	memcpy(id, w->req->receipts->message_id.data, sizeof(id));
	receipt_respond(w, id);
}

int
handle_receipts(struct work *w)
{
	if (w->req->receipts->message_id.len != ENL_MSG_ID_LEN)
		return ENL_E_MALFORMED;
	w->job.write = receipts_write;
	w->job.done = receipts_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}
