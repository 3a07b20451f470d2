/*
 * The broker's network side, shared between its files: the state of a
 * request (struct work), of a session and of the server, and the helpers
 * the request handlers have in common. server.c is the nng side; one file
 * per group of requests.
 */
#ifndef ENLACE_BROKER_SERVER_INT_H
#define ENLACE_BROKER_SERVER_INT_H

#include <nng/nng.h>

#include "broker.h"
#include "enlace/merkle.h"
#include "enlace/wire.h"

struct work;

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

/* An envelope a fetch takes: its bytes, or (a large one) its file, read
 * straight into the answer by the thread that sends it. */
struct env_ref {
	uint8_t *bytes;
	int fd;			/* when bytes is NULL */
	size_t len;
	uint8_t id[ENL_MSG_ID_LEN];
	int64_t expires_at;	/* its message's (0: none), as the store keeps it */
};

struct receipt_job;

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

/*
 * A request's own state, in parts: each part is taken by the module that
 * handles it, which sets the part's `drop` to free it; work_reset calls
 * each drop set, so a request frees itself whatever path it took.
 */
struct submit_state {		/* submit.c (receipt.c reads what a receipt names) */
	void (*drop)(struct work *w);
	struct enl_header *hdr;
	uint8_t hash[ENL_HASH_LEN];
	const uint8_t *env;	/* points into req */
	size_t env_len;
	bool idempotent, hdr_ok;
	/* a refused submission, recorded in the log before the answer */
	int refused_rc;
	char refused_why[256];
	/* the policy's decision for each recipient of a submission */
	struct policy_decision *decisions;
	bool *held;		/* a forward: recipients waiting for consent */
	struct original_info orig;	/* a forward: its original */
	Enlace__ConsentDecision *decision;	/* a consent decision, opened */
	struct enl_message *opened;	/* a consent decision to the broker, opened
					 * (so verified) once, by submit_verify */
	/* a new submission: its SUBMITTED entry and when it was stored */
	uint8_t *submitted;
	size_t submitted_len;
	uint64_t submitted_index;
	int64_t submitted_at;
};

struct fetch_state {		/* delivery.c */
	void (*drop)(struct work *w);
	int64_t deadline;	/* reply empty after this (ms) */
	size_t max_fetch;
	ENL_VEC(struct env_ref) found;
	bool parked, dirty;
	struct work *next_parked;
};

struct receipt_state {		/* receipt.c */
	void (*drop)(struct work *w);
	/* a receipt gathered on the writer, to be signed with its round's
	 * others (next_receipt) and sent by nng */
	struct receipt_job *rj;
	struct work *next_receipt;
	uint8_t *rbody;		/* ReceiptBody bytes, signed in the batch... */
	size_t rbody_len;
	uint8_t rsig[64];	/* ...with this signature, */
	struct enl_batch_proof rproof;	/* ... at this place */
	int rrc;		/* or why there is no receipt */
};

struct checkpoint_state {	/* checkpoint.c */
	void (*drop)(struct work *w);
	char *cosigs;		/* a cosignature received: the lines for its size */
};

struct work {
	/* the head, common to every request */
	struct job job;		/* first: the writer hands it back */
	struct server *srv;
	nng_aio *aio;
	nng_ctx ctx;
	bool sending;
	uint32_t pipe;		/* the pipe of the request taken, 0 if none */
	struct sess *sess;
	const struct dir_state *dir;	/* the directory the request is checked against */
	uint64_t counter;
	enum op op;
	char agency[ENL_ID_MAX + 1];
	Enlace__Request *req;	/* its large values lent from frame (enl_pb_unpack_lending) */
	nng_msg *frame;
	enum { REPLY_NONE, REPLY_RECEIPT, REPLY_RECEIPT_BATCH, REPLY_FETCH } replying;
	/* the parts */
	struct submit_state sub;
	struct fetch_state fetch;
	struct receipt_state rcpt;
	struct checkpoint_state ckpt;
};

struct peers;

struct refused_tally {
	char agency[ENL_ID_MAX + 1];
	uint64_t messages, bytes;
};

struct server {
	struct server_params p;
	struct peers *peers;
	nng_aio *sweep;		/* closes connections past their handshake deadline */
	int64_t trimmed_at;	/* when the heap was last given back (ms; atomic) */
	uint64_t late_closed;	/* sweep only: closed since it last said so, */
	int64_t late_said;	/* ... which was then (ms) */
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
	struct work *receipts;	/* writer thread only: the round's receipts so far */
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
	/* writer thread only: per agency, what the policy refused for every
	 * recipient (one per agency of the directory, at most) */
	ENL_VEC(struct refused_tally) refused;
	bool publish_failing;	/* writer thread only: said once until it works, */
	uint64_t publish_failed_at;	/* ... which is when the log is published past this */
};

/* A policy in force, shared by the messages being decided with it. */
struct policy_ref {
	struct policy *p;
	int refs;
};

/* peers.c: every pipe of the socket, under a lock of its own */
struct peer_limits {
	size_t busy_max;		/* a session's requests unanswered at once */
	size_t handshakes;		/* pipes without a session, in all */
	size_t handshakes_per_addr;	/* ... from one address */
	int64_t handshake_ms;		/* a pipe's time to open its session */
	size_t hello_max;		/* the largest frame before a session */
};

int peers_new(const struct peer_limits *lim, struct peers **out);
void peers_free(struct peers *ps);
/* A new pipe from addr (IPv6, or IPv4 mapped): true and counted, or false
 * with why (over a handshake cap: the caller closes it). */
bool peers_admit(struct peers *ps, uint32_t pipe, const uint8_t addr[static 16], int64_t now_ms,
		 char *why, size_t cap);
void peers_remove(struct peers *ps, uint32_t pipe);
/*
 * A pipe that breaks a limit is doomed: its frames are dropped from then
 * on, and the sweep closes it a second after its last answer went to nng
 * (so that the peer gets that answer, and nng 1.5.2, which can hang for
 * ever in its reaper on a pipe closed while a reply is handed to it, is
 * not in the middle of one).
 */
/* A request of len bytes arrived on pipe: ENL_OK (counted until
 * peers_done), ENL_E_NOT_FOUND (the pipe is gone or doomed: drop it),
 * ENL_E_TOO_LARGE with why (over a limit: the pipe is doomed). */
int peers_take(struct peers *ps, uint32_t pipe, size_t len, int64_t now_ms, char *why,
	       size_t cap);
/* The answer to one request of pipe was handed to nng, or dropped. */
void peers_done(struct peers *ps, uint32_t pipe);
void peers_authed(struct peers *ps, uint32_t pipe);
/* To be closed once its answers are out (the refusal of its handshake). */
void peers_doom(struct peers *ps, uint32_t pipe, int64_t now_ms);
/* Up to cap pipes to close now: those without a session past their
 * deadline that asked nothing, and the doomed whose answers are out. */
size_t peers_overdue(struct peers *ps, int64_t now_ms, uint32_t *out, size_t cap);

/* an answer queued behind one the peer does not read (an honest agent has
 * one request at a time) */
/* An answer queued behind one the peer does not read (an honest agent has
 * one request at a time) closes the connection after this. */
#define SEND_TIMEOUT_MS 5000

/*
 * The broker's modules, each using only those listed before it:
 *
 *   inforce.c       what is in force (directory, policy, sessions), the clock
 *   auditlog.c      one entry of the audit log; the log's part of a commit
 *   reply.c         a request's answer, and its state freed
 *   receipt.c       receipts, gathered and signed a round at a time
 *   updates.c       a newer directory or policy, on the record then in force
 *   housekeeping.c  the once-a-second sweeps of a writer round
 *   delivery.c      FETCH, ACK, REJECT, RECEIPTS
 *   submit.c        SUBMIT (and the consent of forwards)
 *   checkpoint.c    CHECKPOINT, DIRECTORY
 *   round.c         the writer round's hooks
 *   server.c        the nng side: connections, sessions, the dispatch table
 */

/* inforce.c */
int64_t inforce_now_ms(void);
const struct dir_state *inforce_dir(struct server *srv);
void inforce_dir_free(struct dir_state *d);
struct policy_ref *inforce_policy_get(struct server *srv);
void inforce_policy_put(struct server *srv, struct policy_ref *r);
/* Takes a reference to the live session of a pipe, or NULL. */
struct sess *inforce_sess_get(struct server *srv, uint32_t pipe);
void inforce_sess_put(struct server *srv, struct sess *s);

/* auditlog.c: one entry of the audit log (the writer thread only) */
struct audit {
	Enlace__AuditEvent event;
	const uint8_t *id, *hash, *ack_sig;
	const char *sender, *recipient, *reason;
	int64_t ack_time;
	uint8_t **keep;		/* if not NULL: the entry's bytes (malloc'd) */
	size_t *keep_len;
	const uint8_t *original;	/* a forward's original, or NULL */
};

int auditlog_add(struct server *srv, const struct audit *a, int64_t now, uint64_t *index);
int auditlog_commit(void *arg);
void auditlog_abort(void *arg);
void auditlog_sign(void *arg);

/* reply.c: every answer goes out here, sealed to the request's session
 * (after a durable commit where the request wrote); work_reset frees the
 * request's state (each part through its own hook) */
void reply_send(struct work *w, Enlace__Response *resp);
int reply_filled(struct work *w, size_t plen,
		   int (*fill)(void *arg, uint8_t *plain, size_t plen), void *arg);
void reply_status(struct work *w, int status, const char *reason);
/* An unsealed answer: a refusal of a frame or handshake, or a Welcome. */
void reply_refuse(struct work *w, int err, const char *reason);
void reply_bytes(struct work *w, uint8_t *frame, size_t len);
void env_ref_free(struct env_ref *f);
void work_reset(struct work *w);
void work_recv(struct work *w);

/* receipt.c */
int receipt_gather_log(struct server *srv, struct receipt_job *rj);
void receipt_defer(struct work *w, int kind);
void receipt_batch_send(struct work *first);
void receipt_job_free(struct receipt_job *rj);
void receipt_send(struct work *w);
void receipts_drop(struct work *first);
void receipts_flush(struct server *srv);
void receipt_respond_fresh(struct work *w);
void receipt_respond(struct work *w, const uint8_t id[ENL_MSG_ID_LEN]);
void receipt_respond_job(struct work *w, struct receipt_job *rj);

/* housekeeping.c: the sweeps, at most once a second each (writer thread) */
int housekeeping_run(struct server *srv, struct store *st, int64_t now);
/* A delivery whose message expired before it was fetched: EXPIRED, in
 * the store and the log. ENL_E_EXISTS if it was fetched before. */
int housekeeping_expire(struct server *srv, struct store *st, const uint8_t id[ENL_MSG_ID_LEN],
		    const char *agency, int64_t expires_at, int64_t now);

/* delivery.c */
int handle_ack(struct work *w);
int handle_fetch(struct work *w);
int handle_receipts(struct work *w);
int handle_reject(struct work *w);
/* The parked fetches, inside a round's transaction; rc is the error of
 * what the round did before (then they are answered with it). */
int delivery_prepare(struct server *srv, struct store *st, int64_t now, int rc);
void delivery_complete(struct server *srv, int rc);
void delivery_reply(struct work *w);
/* New envelopes for the recipients of h: their parked fetches look again. */
void delivery_wake(struct server *srv, const struct enl_header *h);

/* submit.c */
int handle_submit(struct work *w);

/* checkpoint.c */
int handle_checkpoint(struct work *w);
int handle_directory(struct work *w);

/* round.c */
void round_install(struct server *srv);

/* server.c */
void work_cb(void *arg);

#endif
