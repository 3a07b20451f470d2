/*
 * Replies, in one place: a request's answer sealed to its session and
 * handed to nng, a refusal of a frame, and the request's state freed
 * before the context takes the next one.
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

/* ---- replies ---- */

/* Sends the frame (what it speaks of is on disk: the writer answers only
 * after a durable commit). */
static void
send_msg(struct work *w, nng_msg *msg)
{
	if (msg == NULL) {
		work_recv(w);	/* abandon the request; the client retries */
		return;
	}
	nng_aio_set_msg(w->aio, msg);
	w->sending = true;
	/* a peer that does not read its answers loses its connection, not
	 * this context */
	nng_aio_set_timeout(w->aio, SEND_TIMEOUT_MS);
	nng_ctx_send(w->ctx, w->aio);
}

void
reply_bytes(struct work *w, uint8_t *frame, size_t len)
{
	nng_msg *msg = NULL;

	if (frame != NULL && nng_msg_alloc(&msg, len) == 0)
		memcpy(nng_msg_body(msg), frame, len);
	free(frame);
	send_msg(w, msg);
}

void
reply_refuse(struct work *w, int err, const char *reason)
{
	uint8_t *frame = NULL;
	size_t len = 0;

	if (enl_session_refusal(err, reason, &frame, &len) != ENL_OK)
		frame = NULL;
	reply_bytes(w, frame, len);
}

/* Frees one part of a request's state, if a module took it. */
static void
part_drop(struct work *w, void (**drop)(struct work *w))
{
	void (*d)(struct work *w) = *drop;

	*drop = NULL;
	if (d != NULL)
		d(w);
}

void
work_reset(struct work *w)
{
	if (w->req != NULL)
		enl_pb_free_lent(&w->req->base, nng_msg_body(w->frame), nng_msg_len(w->frame));
	w->req = NULL;
	if (w->frame != NULL)
		nng_msg_free(w->frame);
	w->frame = NULL;
	if (w->sess != NULL)
		inforce_sess_put(w->srv, w->sess);
	w->sess = NULL;
	w->op = OP_NONE;
	w->replying = REPLY_NONE;
	part_drop(w, &w->sub.drop);
	part_drop(w, &w->fetch.drop);
	part_drop(w, &w->rcpt.drop);
	part_drop(w, &w->ckpt.drop);
}

void
env_ref_free(struct env_ref *f)
{
	free(f->bytes);
	f->bytes = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* Seals an answer of plen bytes, which fill writes in place, and sends it:
 * a fetch's answer may carry 50 MiB. ENL_OK, or fill's error (nothing
 * sent). */
int
reply_filled(struct work *w, size_t plen, int (*fill)(void *arg, uint8_t *plain, size_t plen),
	       void *arg)
{
	size_t off, flen = enl_session_reply_layout(w->counter, plen, &off);
	nng_msg *msg = NULL;
	int rc = ENL_E_NOMEM;

	if (nng_msg_alloc(&msg, flen) == 0) {
		uint8_t *frame = nng_msg_body(msg);
		if ((rc = fill(arg, frame + off, plen)) == ENL_OK) {
			enl_session_seal_reply_at(w->sess->s, w->counter, frame, plen);
		} else {
			nng_msg_free(msg);
			return rc;
		}
	}
	work_reset(w);
	send_msg(w, msg);	/* NULL (out of memory): the session ends */
	return ENL_OK;
}

static int
pack_into(void *arg, uint8_t *plain, size_t plen)
{
	const Enlace__Response *resp = arg;

	return protobuf_c_message_pack(&resp->base, plain) == plen ? ENL_OK : ENL_E_MALFORMED;
}

/* Seals a Response for the request being handled, and sends it. */
void
reply_send(struct work *w, Enlace__Response *resp)
{
	if (reply_filled(w, protobuf_c_message_get_packed_size(&resp->base), pack_into,
			   resp) != ENL_OK) {
		work_reset(w);
		send_msg(w, NULL);
	}
}

void
reply_status(struct work *w, int status, const char *reason)
{
	Enlace__Response r = ENLACE__RESPONSE__INIT;

	r.status = status;
	r.reason = (char *)(reason ? reason : (status ? enl_strerror(status) : ""));
	if (status != ENL_OK)
		blog("refused %s request from %s: %s", w->op == OP_SUBMIT ? "SUBMIT" : "a",
		     w->agency, r.reason);
	reply_send(w, &r);
}

void
work_recv(struct work *w)
{
	if (w->pipe != 0)
		peers_done(w->srv->peers, w->pipe);
	w->pipe = 0;
	w->sending = false;
	w->agency[0] = '\0';
	nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(w->ctx, w->aio);
}
