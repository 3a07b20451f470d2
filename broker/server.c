/*
 * The broker's network side: one nng rep0 socket with many contexts, each
 * an aio state machine (receive, handle, send). Handshakes and envelope
 * verification run on nng's worker threads, in parallel; everything that
 * touches the store goes to the writer as a job, and the reply is made
 * once the batch is committed, durably.
 *
 * Sessions are bound to the nng pipe they were opened on and die with it.
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

#define BUSY_MAX 8		/* a session's requests unanswered at once (an agent has 1) */

#define HELLO_MAX 16384		/* the largest frame before a session */

#define CLOSE_DEADLINE_MS 5000	/* for nng to end every connection at the stop */

#define TRIM_MIN ((size_t)1 << 20)	/* a refused request this large gives its memory back */

/* The remote address of a pipe as 16 bytes (IPv4 mapped) and as text. */
static void
pipe_addr(nng_pipe pipe, uint8_t addr[16], char *text, size_t cap)
{
	nng_sockaddr sa;

	memset(addr, 0, 16);
	snprintf(text, cap, "an unknown address");
	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &sa.s_in.sa_addr, 4);
		inet_ntop(AF_INET, addr + 12, text, (socklen_t)cap);
	} else if (sa.s_family == NNG_AF_INET6) {
		memcpy(addr, sa.s_in6.sa_addr, 16);
		inet_ntop(AF_INET6, addr, text, (socklen_t)cap);
	}
}

static void
close_pipe(uint32_t id)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;

	p.id = id;
	nng_pipe_close(p);
}

/* A new connection: counted, or closed at once if over a handshake cap. */
static void
pipe_admit(struct server *srv, nng_pipe pipe)
{
	uint8_t addr[16];
	char text[64], why[200];

	pipe_addr(pipe, addr, text, sizeof(text));
	if (!peers_admit(srv->peers, (uint32_t)nng_pipe_id(pipe), addr, inforce_now_ms(), why,
			 sizeof(why))) {
		blog("refused a connection from %s: %s", text, why);
		nng_pipe_close(pipe);
	}
}

static void
pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct server *srv = arg;
	struct sess **pp, *s = NULL;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		pipe_admit(srv, pipe);
		return;
	}
	if (ev != NNG_PIPE_EV_REM_POST)
		return;
	peers_remove(srv->peers, id);
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
		inforce_sess_put(srv, s);
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

/*
 * Takes `msg`. It is decrypted where it is, and a large envelope in it is
 * lent to the request, not copied: the frame is the one copy held while
 * the envelope is checked and stored, and is freed with the request.
 */
/* A large request refused: the memory it took goes back to the system
 * (at most once a second: a trim walks the whole heap). */
static void
trim_after_refusal(struct server *srv)
{
	int64_t now = inforce_now_ms(), then = __atomic_load_n(&srv->trimmed_at, __ATOMIC_RELAXED);

	if (now - then >= 1000 &&
	    __atomic_compare_exchange_n(&srv->trimmed_at, &then, now, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		malloc_trim(0);
}

static void
handle_request(struct work *w, nng_msg *msg)
{
	const uint8_t *plain = NULL;
	size_t plen = 0;
	unsigned which;
	int rc;

	rc = enl_session_open_request(w->sess->s, nng_msg_body(msg), nng_msg_len(msg),
				      w->srv->frame_max, &w->counter, &plain, &plen);
	if (rc != ENL_OK) {
		const char *why = rc == ENL_E_INVAL ? "replayed or reordered frame"
						    : enl_strerror(rc);
		nng_msg_free(msg);
		blog("refused a frame from %s: %s", w->agency, why);
		work_reset(w);
		reply_refuse(w, rc, why);
		return;
	}
	/* the directory changed since the session opened: is its key still in it? */
	if (w->dir != w->sess->opened) {
		uint8_t pk[32];
		rc = w->dir->kr.signing_key(w->dir->kr.ctx, w->agency,
					    enl_session_peer_version(w->sess->s), pk);
		if (rc != ENL_OK) {
			char why[200];
			nng_msg_free(msg);
			snprintf(why, sizeof(why), "the directory in force (serial %" PRIu64
				 ") does not admit this session's key: %s",
				 enl_directory_serial(w->dir->dir), enl_strerror(rc));
			reply_status(w, rc, why);
			return;
		}
	}
	w->frame = msg;
	rc = enl_pb_unpack_lending(&enlace__request__descriptor, plain, plen, w->srv->frame_max,
				   ENL_LEND_MIN, (ProtobufCMessage **)&w->req);
	which = rc == ENL_OK ? (unsigned)w->req->body_case : 0;
	if (which == 0 || which >= sizeof(handlers) / sizeof(handlers[0]) ||
	    handlers[which].fn == NULL) {
		reply_status(w, ENL_E_MALFORMED, "malformed request");
		if (plen >= TRIM_MIN)
			trim_after_refusal(w->srv);
		return;
	}
	w->op = handlers[which].op;
	rc = handlers[which].fn(w);
	if (rc < 0) {
		blog("refused %s from %s: %s", handlers[which].name, w->agency,
		     enl_strerror(rc));
		reply_status(w, rc, NULL);
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
	if (rc != ENL_OK)	/* the refusal is its last answer */
		peers_doom(srv->peers, pipe, inforce_now_ms());
	if (rc == ENL_OK && replayed(srv, nonce, now)) {
		rc = ENL_E_INVAL;
		blog("refused a session: replayed handshake");
		enl_session_free(s);
		free(welcome);
		reply_refuse(w, rc, "replayed handshake");
		return;
	}
	if (rc == ENL_E_EXPIRED) {
		/* the one check of a handshake that fails on an honest agent:
		 * its machine's clock */
		char why[160];
		snprintf(why, sizeof(why), "the handshake's time is more than %d s from the "
			 "broker's clock: check the clock of the agent's machine", ENL_HELLO_SKEW);
		blog("refused a session: %s", why);
		reply_refuse(w, rc, why);
		return;
	}
	if (rc != ENL_OK && enl_frame_is_sealed(frame, len)) {
		/* not malformed: an honest agent's session from before a
		 * restart (it opens a new one when told) */
		static const char why[] = "a request of a session this broker does not have "
					  "(opened before it restarted, or on a connection that "
					  "closed)";
		blog("refused %s; its agent opens a new session", why);
		reply_refuse(w, rc, why);
		return;
	}
	if (rc != ENL_OK) {
		blog("refused a session: %s", enl_strerror(rc));
		reply_refuse(w, rc, NULL);
		return;
	}
	if ((ss = calloc(1, sizeof(*ss))) == NULL) {
		enl_session_free(s);
		free(welcome);
		reply_refuse(w, ENL_E_NOMEM, NULL);
		return;
	}
	ss->pipe = pipe;
	ss->s = s;
	ss->refs = 1;
	ss->opened = w->dir;
	pthread_mutex_lock(&srv->mu);
	size_t mine = 0;
	for (struct sess *o = srv->sessions; o != NULL; o = o->next)
		mine += !o->dead && strcmp(enl_session_peer(o->s), enl_session_peer(s)) == 0;
	if (srv->n_sessions >= srv->p.cfg->max_sessions ||
	    mine >= srv->p.cfg->max_sessions_per_agency) {
		bool all = srv->n_sessions >= srv->p.cfg->max_sessions;
		pthread_mutex_unlock(&srv->mu);
		blog("refused a session from %s: %s", enl_session_peer(s),
		     all ? "max_sessions reached" : "max_sessions_per_agency reached");
		enl_session_free(s);
		free(ss);
		free(welcome);
		peers_doom(srv->peers, pipe, inforce_now_ms());
		reply_refuse(w, ENL_E_TOO_LARGE, all ? "the broker has too many sessions"
					       : "this agency has too many sessions open");
		return;
	}
	ss->next = srv->sessions;
	srv->sessions = ss;
	srv->n_sessions++;
	pthread_mutex_unlock(&srv->mu);
	peers_authed(srv->peers, pipe);
	blog("session %s v%u opened", enl_session_peer(s), enl_session_peer_version(s));
	reply_bytes(w, welcome, wlen);
}

/* Counts a request against its pipe's limits: true, or false with the
 * message dropped (and the pipe doomed, closed by the sweep, if it broke
 * a limit). */
static bool
take(struct work *w, uint32_t pipe, nng_msg *msg)
{
	char why[200];
	int rc = peers_take(w->srv->peers, pipe, nng_msg_len(msg), inforce_now_ms(), why, sizeof(why));

	if (rc == ENL_OK) {
		w->pipe = pipe;
		return true;
	}
	nng_msg_free(msg);
	if (rc == ENL_E_TOO_LARGE) {
		struct sess *s = inforce_sess_get(w->srv, pipe);
		blog("closed the connection of %s: %s",
		     s != NULL ? enl_session_peer(s->s) : "a peer without a session", why);
		if (s != NULL)
			inforce_sess_put(w->srv, s);
	}
	work_recv(w);
	return false;
}

void
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
			receipts_drop(w);
			return;
		}
		if (kind == REPLY_RECEIPT_BATCH)
			receipt_batch_send(w);
		else if (kind == REPLY_RECEIPT)
			receipt_send(w);
		else
			delivery_reply(w);
		return;
	}
	if (w->sending) {
		w->sending = false;
		if (res != 0 && (msg = nng_aio_get_msg(w->aio)) != NULL)
			nng_msg_free(msg);
		if (res == NNG_ECLOSED)
			return;
		if (res == NNG_ETIMEDOUT && w->pipe != 0) {
			blog("closed the connection of %s: it has not read an answer in %d s",
			     w->agency[0] ? w->agency : "a peer without a session",
			     SEND_TIMEOUT_MS / 1000);
			peers_doom(w->srv->peers, w->pipe, inforce_now_ms());	/* closed by the sweep */
		}
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
	if (!take(w, pipe, msg))
		return;
	w->dir = inforce_dir(w->srv);
	w->sess = inforce_sess_get(w->srv, pipe);
	if (w->sess == NULL) {
		handle_hello(w, pipe, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
	} else {
		snprintf(w->agency, sizeof(w->agency), "%s", enl_session_peer(w->sess->s));
		handle_request(w, msg);
	}
}

/* Closes, every second, the connections that opened no session in time
 * and those refused whose last answer is out (peers_overdue). */
static void
sweep_cb(void *arg)
{
	struct server *srv = arg;
	uint32_t late[64];
	size_t n;

	if (nng_aio_result(srv->sweep) != 0 && nng_aio_result(srv->sweep) != NNG_ETIMEDOUT)
		return;	/* stopped */
	n = peers_overdue(srv->peers, inforce_now_ms(), late, 64);
	for (size_t i = 0; i < n; i++)
		close_pipe(late[i]);
	/* said once a minute: an agent's idle connection, redialled after
	 * each close, would say it at every deadline */
	srv->late_closed += n;
	if (srv->late_closed > 0 && inforce_now_ms() - srv->late_said >= 60000) {
		blog("closed %" PRIu64 " connection(s) since: refused, or without a session "
		     "after %" PRIu64 " ms", srv->late_closed, srv->p.cfg->handshake_timeout_ms);
		srv->late_closed = 0;
		srv->late_said = inforce_now_ms();
	}
	nng_sleep_aio(1000, srv->sweep);
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
	srv->refused.max = 100000;
	if ((srv->policy = calloc(1, sizeof(*srv->policy))) == NULL) {
		policy_free(p->policy);
		free(srv);
		return ENL_E_NOMEM;
	}
	srv->policy->p = p->policy;
	srv->policy->refs = 1;
	if ((srv->dir = calloc(1, sizeof(*srv->dir))) == NULL) {
		inforce_policy_put(srv, srv->policy);
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
	struct peer_limits pl = {BUSY_MAX, p->cfg->max_handshakes,
				 p->cfg->max_handshakes_per_address,
				 (int64_t)p->cfg->handshake_timeout_ms, HELLO_MAX};
	if (peers_new(&pl, &srv->peers) != ENL_OK ||
	    nng_aio_alloc(&srv->sweep, sweep_cb, srv) != 0) {
		rc = ENL_E_NOMEM;
		goto fail;
	}
	srv->n_works = p->cfg->contexts;
	srv->works = calloc(srv->n_works, sizeof(*srv->works));
	if (srv->replay == NULL || srv->works == NULL) {
		rc = ENL_E_NOMEM;
		goto fail;
	}
	if ((rc = nng_rep0_open(&srv->sock)) != 0 ||
	    (rc = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
				      srv->frame_max + ENL_FRAME_OVERHEAD)) != 0 ||
	    (rc = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, srv)) != 0 ||
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
	round_install(srv);
	for (size_t i = 0; i < srv->n_works; i++)
		work_recv(&srv->works[i]);
	nng_sleep_aio(1000, srv->sweep);
	*out = srv;
	return ENL_OK;
fail:
	server_stop(srv);
	return rc;
}

/* Closes the socket: every pending operation ends. The writer may still
 * complete jobs afterwards; their sends fail at once. */
static void
close_socket(void *arg)
{
	nng_close(*(nng_socket *)arg);
}

bool
server_close(struct server *srv)
{
	if (srv == NULL)
		return true;
	if (srv->sweep != NULL)
		nng_aio_stop(srv->sweep);
	return bounded_run(close_socket, &srv->sock, CLOSE_DEADLINE_MS);
}

void
server_stop(struct server *srv)
{
	struct sess *s, *next;

	if (srv == NULL)
		return;
	if (srv->sweep != NULL)
		nng_aio_stop(srv->sweep);
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
	enl_vec_free(&srv->refused);
	nng_aio_free(srv->sweep);
	peers_free(srv->peers);
	free(srv->checkpoint);
	free(srv->cosigs);
	if (srv->policy != NULL)
		inforce_policy_put(srv, srv->policy);
	while (srv->dir != NULL) {
		struct dir_state *d = srv->dir;
		srv->dir = d->before;
		inforce_dir_free(d);
	}
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
