/* The SQLite store (store_ops): what its files share. */
#ifndef ENLACE_BROKER_STORE_SQLITE_INT_H
#define ENLACE_BROKER_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <sqlite3.h>

#include "broker.h"

struct sq {
	sqlite3 *db;
	/* Checkpoints run on their own connection and thread, so that copying
	 * the WAL into the database never delays a commit or its receipt. */
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	bool ckpt_running, ckpt_stop;
	/* set when the WAL is long and the checkpointer has copied nearly
	 * all of it: the writer copies the rest, and its next transaction
	 * starts the WAL over */
	atomic_bool ckpt_finish;
	sqlite3_stmt *begin, *commit, *rollback, *msg_get, *msg_put, *dlv_put;
	sqlite3_stmt *pending, *mark, *states, *state_of;
	sqlite3_stmt *audit_put, *audit_all, *audit_get;
	sqlite3_stmt *cosig_put, *cosig_list, *meta_get, *meta_put, *msg_exists;
	sqlite3_stmt *chain_get, *chain_put;
	sqlite3_stmt *original, *cons_put, *cons_get, *cons_set, *cons_exp, *dlv_exp;
	char blobs[1100];	/* large envelopes, one file each */
};

/*
 * Envelopes of BLOB_MIN bytes or more are kept as files in blobs/ (named
 * by the message id in hex), written and synced before the transaction
 * that names them commits; their row holds an empty envelope. SQLite
 * writes a large blob page by page into its WAL and copies it again at
 * checkpoint: a file is written once. A file without its row (the commit
 * never happened) is removed at the next open.
 */
#define BLOB_MIN ((size_t)1 << 20)

/* store_sqlite_db.c */
void blob_path(const struct sq *s, const uint8_t id[ENL_MSG_ID_LEN], char *out, size_t cap);
int sq_err(struct sq *s, const char *what);
int step_done(struct sq *s, sqlite3_stmt *st, const char *what);
bool layout_current(sqlite3 *db);
int upgrade(struct sq *s, const char *path);

/* store_sqlite_log.c */
int sq_audit_append(void *db, uint64_t first, const uint8_t *const *entries, const size_t *lens,
		size_t n);
int sq_audit_load(void *db, int (*cb)(void *arg, const uint8_t *entry, size_t len), void *arg);
int sq_audit_get(void *db, uint64_t index, uint8_t **out, size_t *len);
int sq_cosig_put(void *db, const char *agency, uint64_t size, const char *line);
int sq_cosigs(void *db, uint64_t size, void (*cb)(void *arg, const char *line), void *arg);
int sq_meta_get(void *db, const char *key, uint8_t *out, size_t cap, size_t *len);
int sq_meta_put(void *db, const char *key, const uint8_t *value, size_t len);
int sq_consent_put(void *db, const struct consent *c);
int sq_consent_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], struct consent *c);
int sq_consent_set(void *db, const uint8_t id[ENL_MSG_ID_LEN], int state);
int sq_consents_expired(void *db, int64_t now, struct consent *out, size_t max, size_t *n);

/* store_sqlite_msg.c */
int sq_message_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], struct stored_message *out);
int sq_message_put(void *db, const struct enl_header *h, const uint8_t hash[ENL_HASH_LEN],
	       int64_t now, const uint8_t *env, size_t len, uint64_t log_index,
	       const struct delivery_init *d, const uint8_t *origin);
int sq_pending(void *db, const char *recipient, size_t max_count, size_t max_bytes,
	   store_envelope_cb cb, void *arg);
int sq_mark(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *recipient,
	enum delivery_state state, int64_t now, const uint8_t *ack_sig, int64_t ack_time,
	const char *reason);
int sq_states(void *db, const uint8_t id[ENL_MSG_ID_LEN], store_state_cb cb, void *arg);
int sq_chain_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t *last);
int sq_chain_put(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t last);
int sq_original(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *forwarder,
	    struct original_info *out);
int sq_deliveries_expired(void *db, int64_t now, struct expired_delivery *out, size_t max,
		      size_t *n);

#endif
