#include <stdio.h>
#include <string.h>
#include <time.h>

#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "conn.h"

void
conn_init(struct conn *c, const char *url, const char *broker_id,
	  const struct enl_identity *me, size_t max_payload)
{
	struct enl_limits lim = {max_payload};

	memset(c, 0, sizeof(*c));
	snprintf(c->url, sizeof(c->url), "%s", url);
	snprintf(c->broker_id, sizeof(c->broker_id), "%s", broker_id);
	c->me = me;
	/* a fetch answer may carry several envelopes; a directory answer (or
	 * welcome) the largest directory */
	c->frame_max = enl_envelope_max_size(&lim) * 2 + 4096;
	if (c->frame_max < ENL_DIRECTORY_MAX + 65536)
		c->frame_max = ENL_DIRECTORY_MAX + 65536;
}

void
conn_set_directory(struct conn *c, uint64_t (*serial)(void *arg),
		   void (*take)(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr),
		   void *arg)
{
	c->dir_serial = serial;
	c->offered.take = take;
	c->offered.arg = arg;
	c->offered.max = ENL_DIRECTORY_MAX;
}

void
conn_close(struct conn *c)
{
	if (c->open)
		nng_close(c->sock);
	c->open = false;
	enl_session_free(c->s);
	c->s = NULL;
}

static int
fail(struct conn *c, int rc, const char *what, const char *detail)
{
	snprintf(c->last_error, sizeof(c->last_error), "%.60s: %.180s", what, detail);
	conn_close(c);
	return rc;
}

/* One exchange: sends msg (taken), then receives with a deadline. */
static int
exchange(struct conn *c, nng_msg *msg, int timeout_ms, nng_msg **reply)
{
	int rc;

	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	if ((rc = nng_sendmsg(c->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		return fail(c, ENL_E_IO, "send", nng_strerror(rc));
	}
	if ((rc = nng_recvmsg(c->sock, reply, 0)) != 0)
		return fail(c, ENL_E_IO, "receive", nng_strerror(rc));
	return ENL_OK;
}

static int
connect_session(struct conn *c, const struct enl_keyring *kr)
{
	struct enl_hello_state *st = NULL;
	uint8_t *hello = NULL;
	size_t hlen = 0;
	nng_msg *msg, *reply = NULL;
	char reason[200] = "";
	int rc;

	if ((rc = nng_req0_open(&c->sock)) != 0)
		return fail(c, ENL_E_IO, "socket", nng_strerror(rc));
	c->open = true;
	/* Retries are ours (idempotent by message id), never nng's. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, c->frame_max);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 2000);
	if ((rc = nng_dial(c->sock, c->url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		return fail(c, ENL_E_IO, c->url, nng_strerror(rc));
	rc = enl_session_hello(c->me, (int64_t)time(NULL),
			       c->dir_serial != NULL ? c->dir_serial(c->offered.arg) : 0, &st, &hello,
			       &hlen);
	if (rc != ENL_OK)
		return fail(c, rc, "hello", enl_strerror(rc));
	if ((rc = nng_msg_alloc(&msg, hlen)) == 0)
		memcpy(nng_msg_body(msg), hello, hlen);
	free(hello);
	rc = rc != 0 ? fail(c, ENL_E_NOMEM, "message", nng_strerror(rc))
		     : exchange(c, msg, 5000, &reply);
	if (rc != ENL_OK) {
		enl_hello_state_free(st);
		return rc;
	}
	rc = enl_session_client_finish(st, nng_msg_body(reply), nng_msg_len(reply), kr,
				       c->broker_id, c->offered.take != NULL ? &c->offered : NULL,
				       &c->s, reason, sizeof(reason));
	nng_msg_free(reply);
	if (rc != ENL_OK)
		return fail(c, rc, "session refused",
			    reason[0] ? reason : enl_strerror(rc));
	c->last_error[0] = '\0';
	return ENL_OK;
}

int
conn_open(struct conn *c, const struct enl_keyring *kr)
{
	return c->s != NULL ? ENL_OK : connect_session(c, kr);
}

/* One request on the session there is, or on a new one. *stale: the
 * broker refused the frame of a session it no longer has. */
static int
request_once(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
	     int timeout_ms, bool lend, Enlace__Response **resp, bool *stale)
{
	const uint8_t *plain = NULL;
	size_t plen, off;
	nng_msg *msg, *reply = NULL;
	int rc;

	if ((rc = conn_open(c, kr)) != ENL_OK)
		return rc;
	/* packed into the message that goes out and sealed there: a
	 * submission may carry 50 MiB */
	plen = protobuf_c_message_get_packed_size(&req->base);
	if ((rc = nng_msg_alloc(&msg, enl_session_request_layout(c->s, plen, &off))) != 0)
		return fail(c, ENL_E_NOMEM, "message", nng_strerror(rc));
	if (protobuf_c_message_pack(&req->base, (uint8_t *)nng_msg_body(msg) + off) != plen) {
		nng_msg_free(msg);
		return fail(c, ENL_E_MALFORMED, "request", enl_strerror(ENL_E_MALFORMED));
	}
	enl_session_seal_request_at(c->s, nng_msg_body(msg), plen);
	if ((rc = exchange(c, msg, timeout_ms, &reply)) != ENL_OK)
		return rc;
	rc = enl_session_open_reply(c->s, nng_msg_body(reply), nng_msg_len(reply),
				    c->frame_max, &plain, &plen);
	if (rc != ENL_OK) {
		nng_msg_free(reply);
		*stale = true;
		return fail(c, ENL_E_IO, "reply refused", enl_strerror(rc));
	}
	if (lend) {
		rc = enl_pb_unpack_lending(&enlace__response__descriptor, plain, plen,
					   c->frame_max, ENL_LEND_MIN, (ProtobufCMessage **)resp);
		if (rc == ENL_OK)
			c->lender = reply;
		else
			nng_msg_free(reply);
	} else {
		rc = enl_pb_unpack(&enlace__response__descriptor, plain, plen, c->frame_max,
				   (ProtobufCMessage **)resp);
		nng_msg_free(reply);
	}
	if (rc != ENL_OK)
		return fail(c, ENL_E_IO, "reply", enl_strerror(rc));
	return ENL_OK;
}

static int
request(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
	int timeout_ms, bool lend, Enlace__Response **resp)
{
	bool had_session = c->s != NULL, stale = false;
	int rc = request_once(c, kr, req, timeout_ms, lend, resp, &stale);

	/* The broker restarted since the session opened: it answers the
	 * session's frames with a refusal. Once more, on a new session (every
	 * request is safe to repeat: SUBMIT by its message id). */
	if (rc != ENL_OK && had_session && stale) {
		stale = false;
		rc = request_once(c, kr, req, timeout_ms, lend, resp, &stale);
	}
	return rc;
}

int
conn_request(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
	     int timeout_ms, Enlace__Response **resp)
{
	return request(c, kr, req, timeout_ms, false, resp);
}

int
conn_request_lent(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
		  int timeout_ms, Enlace__Response **resp)
{
	return request(c, kr, req, timeout_ms, true, resp);
}

void
conn_response_free(struct conn *c, Enlace__Response *resp)
{
	if (c->lender != NULL) {
		enl_pb_free_lent(&resp->base, nng_msg_body(c->lender), nng_msg_len(c->lender));
		nng_msg_free(c->lender);
		c->lender = NULL;
	} else if (resp != NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
}
