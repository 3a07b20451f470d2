/* Names shared between the broker's files. */
#ifndef ENLACE_BROKER_H
#define ENLACE_BROKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "tlog.h"
#include "policy.h"

/* ---- configuration ---- */

struct broker_config {
	char listen[256];
	char log_listen[256];	/* http://HOST:PORT serving the audit log; optional */
	char data_dir[1024];
	char key_dir[1024];
	char passphrase_file[1024];
	char directory[1024];
	char authority_pub[1024];
	char policy[1024];	/* the routing policy file (docs/POLICY.md) */
	uint64_t consent_ttl_ms;	/* how long a consent request waits */
	size_t max_payload;
	uint64_t max_sessions;
	uint64_t max_sessions_per_agency;
	uint64_t max_handshakes;	/* connections without a session, in all */
	uint64_t max_handshakes_per_address;
	uint64_t handshake_timeout_ms;
	uint64_t contexts;
	uint64_t fetch_wait_max_ms;
	uint64_t fetch_batch;
	uint64_t batch_max;
};

/* `enlace-broker policy check|explain ...` (argv[0] is "policy"). */
int policy_main(int argc, char **argv);

/* Fills defaults, then reads `path`. 0, or -1 with err set. */
int config_load(const char *path, struct broker_config *cfg, char *err, size_t cap);

/* ---- the audit log over HTTP (read-only, to directory members) ---- */

struct logserver_params {
	const char *url;	/* http://HOST:PORT */
	const char *dir;	/* the log's folder */
	const char *origin;	/* the log's origin line, bound into each request */
	/* The Ed25519 key of (id, version) if it may read the log now:
	 * ENL_OK and pk, or an error. Called on nng's threads, under the
	 * logserver's lock; never after logserver_stop began. */
	int (*reader_key)(void *ctx, const char *id, uint32_t version, uint8_t pk[static 32]);
	void *ctx;
};

struct logserver;
/* Listens at p->url. ENL_OK, or ENL_E_IO (logged). */
int logserver_start(const struct logserver_params *p, struct logserver **out) ENL_WUR;
/* Stops within a few seconds: connections nng cannot close by then are
 * left to the process's exit (and ls with them). NULL is a no-op. */
void logserver_stop(struct logserver *ls);

/* Runs fn(arg) on a thread of its own and waits for it at most ms: true
 * if it returned, false if it is still running (left to run; whatever it
 * uses must then outlive the process's exit). */
bool bounded_run(void (*fn)(void *), void *arg, int ms) ENL_WUR;

/* ---- logging: one line to stderr with the time; never secrets ---- */

void blog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the store: one narrow interface, SQLite behind it ---- */

enum delivery_state {
	DS_QUEUED = 1,
	DS_FETCHED = 2,
	DS_ACKED = 3,
	DS_REJECTED = 4,
	DS_REFUSED = 5,
	DS_HELD = 6,		/* a forward waiting for the originator's consent */
	DS_EXPIRED = 7,		/* its expiry passed before the recipient fetched it */
};

struct rcpt_state {
	char recipient[ENL_ID_MAX + 1];
	enum delivery_state state;
	int64_t queued_at, fetched_at, acked_at, ack_time;
	uint8_t ack_sig[64];
	bool has_ack_sig;
	char reason[256];
};

struct stored_message {
	uint8_t hash[ENL_HASH_LEN];
	char sender[ENL_ID_MAX + 1];
	int64_t received_at;
	uint64_t log_index;	/* its SUBMITTED entry in the audit log */
};

/* A consent request: a held forward to one recipient, waiting for the
 * originator's signed decision. */
enum consent_state { CONSENT_PENDING = 0, CONSENT_GRANTED_S = 1, CONSENT_DENIED_S = 2,
		     CONSENT_EXPIRED_S = 3 };

struct consent {
	uint8_t request_id[ENL_MSG_ID_LEN];
	uint8_t forward_id[ENL_MSG_ID_LEN];
	uint8_t original_id[ENL_MSG_ID_LEN];
	uint8_t original_hash[ENL_HASH_LEN];
	char recipient[ENL_ID_MAX + 1];
	char originator[ENL_ID_MAX + 1];
	char forwarder[ENL_ID_MAX + 1];
	int64_t expires_at;
	int state;		/* enum consent_state */
};

/*
 * What a forward is checked against. A forward of a forward names the
 * message its forwarder received (`via`), but its originator is the
 * agency that signed the innermost original: consent is asked of it, for
 * that original, and the handling checks apply against that original's.
 */
struct original_info {
	uint8_t id[ENL_MSG_ID_LEN];	/* the innermost original */
	uint8_t hash[ENL_HASH_LEN];	/* its hash */
	char sender[ENL_ID_MAX + 1];	/* its sender: the originator */
	struct enl_handling handling;	/* its handling */
	struct enl_handling via;	/* the handling of the message forwarded */
	int forwarder_state;	/* the forwarder's delivery of the message forwarded,
				 * enum delivery_state, or 0: not a recipient */
};

/* A queued delivery whose message expired before it was fetched. */
struct expired_delivery {
	uint8_t id[ENL_MSG_ID_LEN];
	char recipient[ENL_ID_MAX + 1];
	int64_t expires_at;
};

/* A delivery as the policy decided it: QUEUED, or REJECTED with why. */
struct delivery_init {
	enum delivery_state state;
	const char *reason;
};

/* An envelope of len bytes: at env, or, when env is NULL (a large one, kept
 * in a file of its own), to be read from the descriptor *fd, which the
 * callback may keep (setting *fd to -1); the store closes it otherwise.
 * expires_at: its message's expiry as the header says (0: none). */
typedef int (*store_envelope_cb)(void *arg, const uint8_t id[ENL_MSG_ID_LEN],
				 const uint8_t *env, size_t len, int *fd, int64_t expires_at);
typedef void (*store_state_cb)(void *arg, const struct rcpt_state *st);

struct store_ops {
	int (*begin)(void *db);
	/* Commits durably: ENL_OK once the transaction is on disk. Another
	 * error: nothing of it is committed (roll back). STORE_E_UNSURE: the
	 * sync failed, and what is on disk is unknown. */
	int (*commit)(void *db);
	int (*rollback)(void *db);
	/* ENL_E_NOT_FOUND if absent. */
	int (*message_get)(void *db, const uint8_t id[ENL_MSG_ID_LEN],
			   struct stored_message *out);
	/* The message and one delivery per recipient, in d[i]'s state;
	 * origin: a forward's innermost original (original_info.id), NULL
	 * for any other message. env NULL: its bytes are not kept (refused
	 * for every recipient). */
	int (*message_put)(void *db, const struct enl_header *h,
			   const uint8_t hash[ENL_HASH_LEN], int64_t now,
			   const uint8_t *env, size_t len, uint64_t log_index,
			   const struct delivery_init *d, const uint8_t *origin);
	/* Undelivered (queued or fetched, not acked) for recipient, oldest first. */
	int (*pending)(void *db, const char *recipient, size_t max_count,
		       size_t max_bytes, store_envelope_cb cb, void *arg);
	/* Moves (id, recipient) to `state`; ENL_E_NOT_FOUND if no such
	 * delivery, ENL_E_EXISTS if it is already acknowledged. */
	int (*mark)(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *recipient,
		    enum delivery_state state, int64_t now, const uint8_t *ack_sig,
		    int64_t ack_time, const char *reason);
	int (*states)(void *db, const uint8_t id[ENL_MSG_ID_LEN], store_state_cb cb,
		      void *arg);
	/* The audit log's journal (struct tlog_journal). */
	int (*audit_append)(void *db, uint64_t first, const uint8_t *const *entries,
			    const size_t *lens, size_t n);
	int (*audit_load)(void *db, int (*cb)(void *arg, const uint8_t *entry, size_t len),
			  void *arg);
	int (*audit_get)(void *db, uint64_t index, uint8_t **out, size_t *len);
	/* Each agency's newest cosignature line, and the lines for one size. */
	int (*cosig_put)(void *db, const char *agency, uint64_t size, const char *line);
	int (*cosigs)(void *db, uint64_t size, void (*cb)(void *arg, const char *line),
		      void *arg);
	/* What a forward of message `id` by `forwarder` is checked against
	 * (struct original_info), the chain of forwards followed to the
	 * innermost original. ENL_E_NOT_FOUND if `id` is not stored. */
	int (*original)(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *forwarder,
			struct original_info *out);
	/* Consent requests. get: ENL_E_NOT_FOUND if absent; expired: up to
	 * max pending requests whose time is over (not changed). */
	int (*consent_put)(void *db, const struct consent *c);
	int (*consent_get)(void *db, const uint8_t id[ENL_MSG_ID_LEN], struct consent *c);
	int (*consent_set)(void *db, const uint8_t id[ENL_MSG_ID_LEN], int state);
	int (*consents_expired)(void *db, int64_t now, struct consent *out, size_t max,
				size_t *n);
	/* Up to max deliveries nobody fetched whose message's expiry has
	 * passed (not changed). */
	int (*deliveries_expired)(void *db, int64_t now, struct expired_delivery *out,
				  size_t max, size_t *n);
	/* The chain of log entries about a message: 1 + the index of the
	 * last entry about `id` (0 if none), and its new value. */
	int (*chain_get)(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t *last);
	int (*chain_put)(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t last);
	/* Small named values. meta_get: ENL_E_NOT_FOUND if absent. */
	int (*meta_get)(void *db, const char *key, uint8_t *out, size_t cap, size_t *len);
	int (*meta_put)(void *db, const char *key, const uint8_t *value, size_t len);
	void (*close)(void *db);
};

struct store {
	const struct store_ops *ops;
	void *db;
};

/*
 * A commit whose sync failed: the kernel may have dropped pages it could
 * not write, so the store's state on disk is unknown (a transaction
 * reported failed could come back at the next open). Nothing may be
 * answered after it.
 */
#define STORE_E_UNSURE (-1000)

int store_sqlite_open(const char *path, struct store *out);

/* ---- the writer: one thread owns the store; group commit ---- */

struct job;
typedef int (*job_write_fn)(struct job *j, struct store *st, int64_t now);
typedef void (*job_done_fn)(struct job *j, int rc);

/*
 * A unit of store work. `write` runs inside the batch transaction on the
 * writer thread; `done` runs after the batch is committed, durably (or
 * failed), also on the writer thread, and owns the job from then on.
 */
struct job {
	job_write_fn write;
	job_done_fn done;
	struct job *next;
};

struct writer;

int writer_start(struct store *st, size_t batch_max, struct writer **out);
void writer_submit(struct writer *w, struct job *j);
/* Writes what is queued, then ends the writer thread. */
void writer_stop(struct writer *w);
void writer_free(struct writer *w);
/*
 * Work the writer does every round (after each batch, and at least every
 * 100 ms): prepare runs inside the round's transaction, complete after
 * its commit with the outcome. Both on the writer thread.
 */
struct writer_tick {
	int (*prepare)(void *arg, struct store *st, int64_t now);
	int (*before_commit)(void *arg);	/* e.g. the audit log's own commit */
	void (*abort)(void *arg);		/* the round will not commit */
	void (*committed)(void *arg);	/* it did (durably), before the jobs are done */
	void (*complete)(void *arg, int rc);
	void *arg;
};
void writer_set_tick(struct writer *w, const struct writer_tick *tick);

/* Asks for another round without waiting (callable from any thread). */
void writer_kick(struct writer *w);

/* ---- the server ---- */

struct server;

struct server_params {
	const struct broker_config *cfg;
	const struct enl_identity *me;
	const struct enl_directory *dir;
	const uint8_t *dir_bytes;
	size_t dir_len;
	struct writer *writer;
	struct store *store;	/* used on the writer thread only */
	struct tlog *log;	/* the audit log; writer thread only */
	struct policy *policy;	/* the routing policy; the server owns it */
};

int server_start(const struct server_params *p, struct server **out);
/*
 * Puts a newer directory in force (the server owns dir and bytes from then
 * on): its DIRECTORY_UPDATED entry is committed first; then every new
 * request is checked against it, and the sessions whose key it no longer
 * holds (revoked, or gone) are closed.
 */
void server_set_directory(struct server *s, struct enl_directory *dir, uint8_t *bytes,
			  size_t len);
/* The serial of the directory in force. */
uint64_t server_directory_serial(struct server *s);
/* The signing key of a member of the directory in force at its current,
 * unrevoked version: who may read the audit log (logserver_params).
 * ENL_OK, ENL_E_UNKNOWN_SENDER, ENL_E_UNKNOWN_KEY_VERSION (not the
 * current version), ENL_E_REVOKED_KEY. Any thread. */
int server_reader_key(void *srv, const char *id, uint32_t version, uint8_t pk[static 32]);
/*
 * A directory the log has not seen yet (by its hash) gets a
 * DIRECTORY_UPDATED entry: serial and BLAKE2b-256 of the signed file, so
 * that an auditor can tell which keys were valid from then on. In the
 * transaction the caller has open.
 */
/* The highest directory serial this broker has put in force (0: none
 * yet), from its store: a lower one is never put in force again. */
int directory_serial_held(struct store *st, uint64_t *serial) ENL_WUR;
int audit_directory(struct store *st, struct tlog *log, const struct enl_identity *me,
		    const struct enl_directory *dir, const uint8_t *bytes, size_t len,
		    int64_t now);
/*
 * Puts a newly loaded policy in force (the server owns it from then on):
 * a POLICY_LOADED entry with the file's hash is committed first, then
 * every message is decided by the new policy, whole; one being decided
 * keeps the policy it started with.
 */
void server_set_policy(struct server *s, struct policy *p, const uint8_t hash[32],
		       const char *path);
/* Closes the socket; jobs still in the writer then fail to send. False
 * if nng did not finish the close within a few seconds (a connection it
 * cannot end): the server must then not be stopped, only left. */
bool server_close(struct server *s) ENL_WUR;
/* Waits for every context, frees everything. */
void server_stop(struct server *s);

#endif
