/*
 * The broker's store in SQLite: WAL mode, one connection owned by the
 * writer thread.
 *
 * A commit is durable when it returns: SQLite runs with
 * synchronous=FULL, which syncs the WAL at every commit (and the WAL's
 * folder when it makes the file), and syncs the WAL and the database
 * around each checkpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static void
blob_path(const struct sq *s, const uint8_t id[ENL_MSG_ID_LEN], char *out, size_t cap)
{
	char hex[2 * ENL_MSG_ID_LEN + 1];

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	snprintf(out, cap, "%s/%s", s->blobs, hex);
}

static const char schema[] =
	/* Rows are appended in arrival order (seq); only the index on id is
	 * written at random places. The envelope stays in its row's page
	 * (a WITHOUT ROWID row that large would spill into overflow pages). */
	"CREATE TABLE IF NOT EXISTS messages ("
	"  seq INTEGER PRIMARY KEY,"
	"  id BLOB NOT NULL UNIQUE, hash BLOB NOT NULL, sender TEXT NOT NULL,"
	"  received_at INTEGER NOT NULL, envelope BLOB NOT NULL,"
	"  log_index INTEGER NOT NULL,"
	/* its handling, for the forwards of it */
	"  tlp INTEGER NOT NULL, onward INTEGER NOT NULL, evidential INTEGER NOT NULL,"
	/* a forward's innermost original (NULL: not a forward) */
	"  origin BLOB);"
	/* One row per recipient of a message (msg is its seq, pos its place
	 * in the header's list): appended in arrival order as well. */
	"CREATE TABLE IF NOT EXISTS deliveries ("
	"  msg INTEGER NOT NULL, recipient TEXT NOT NULL, pos INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  queued_at INTEGER, fetched_at INTEGER, acked_at INTEGER, ack_time INTEGER,"
	"  ack_sig BLOB, reason TEXT,"
	/* the message's expiry (0: none), for the deliveries nobody fetches */
	"  expires_at INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (msg, recipient)) WITHOUT ROWID;"
	/* Only undelivered rows, in arrival order: a fetch reads its first rows. */
	"CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (recipient, msg) "
	"  WHERE state IN (1, 2);"
	/* the audit log's journal: committed with the store, tiles made from it */
"CREATE TABLE IF NOT EXISTS audit (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);"
	/* each agency's newest cosignature of a checkpoint */
	"CREATE TABLE IF NOT EXISTS cosignatures ("
	"  agency TEXT PRIMARY KEY, size INTEGER NOT NULL, line TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	/* the last log entry about each message (1 + its index) */
	"CREATE TABLE IF NOT EXISTS chains (id BLOB PRIMARY KEY, last INTEGER NOT NULL) "
	"WITHOUT ROWID;"
	/* consent requests for held forwards */
	"CREATE TABLE IF NOT EXISTS consents (request_id BLOB PRIMARY KEY,"
	"  forward_id BLOB NOT NULL, original_id BLOB NOT NULL, original_hash BLOB NOT NULL,"
	"  recipient TEXT NOT NULL, originator TEXT NOT NULL, forwarder TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL, state INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS consents_pending ON consents (state, expires_at);";

static int
sq_err(struct sq *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);

	blog("store: %s: %s", what, sqlite3_errmsg(s->db));
	if (code == SQLITE_FULL || code == SQLITE_IOERR_WRITE || code == SQLITE_IOERR_FSYNC)
		return code == SQLITE_FULL ? ENL_E_NO_SPACE : ENL_E_IO;
	return ENL_E_IO;
}

static int
step_done(struct sq *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return ENL_OK;
	if (rc == SQLITE_FULL)
		return ENL_E_NO_SPACE;
	return sq_err(s, what);
}

/*
 * A checkpointer beside a writer that never pauses never catches up, and
 * SQLite starts the WAL over only once all of it is in the database: the
 * WAL would grow for as long as the load lasts (and every commit would
 * extend the file). So when the checkpointer has copied nearly all of a
 * long WAL, the writer copies the few frames left before its next
 * transaction, which then writes the WAL from its start again.
 */
#define WAL_RESTART_FRAMES 4096	/* 16 MiB of 4 KiB pages */
#define WAL_FINISH_FRAMES 1024	/* what the writer may have to copy */

/*
 * While the store is being written, the checkpointer copies often: each
 * copy and the database's sync after it are then small, and the WAL's
 * own syncs (which every answer waits for) never queue long behind them
 * on the disk. At 2,000 msg/s the p99 of a receipt was about a quarter
 * higher with a copy every 200 ms, twice as high every 900 ms. While
 * nothing is written it looks seldom.
 */
#define CKPT_BUSY_MS 20
#define CKPT_IDLE_MS 200

static int
sq_begin(void *db)
{
	struct sq *s = db;

	if (atomic_exchange(&s->ckpt_finish, false) &&
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
		    SQLITE_OK &&
	    sqlite3_errcode(s->db) != SQLITE_BUSY)
		blog("store: checkpoint: %s", sqlite3_errmsg(s->db));
	return step_done(s, s->begin, "begin");
}
/* COMMIT, synced. A failed sync is told apart: the store's state on disk
 * is then unknown (STORE_E_UNSURE). */
static int
sq_commit(void *db)
{
	struct sq *s = db;
	int rc = sqlite3_step(s->commit), code = sqlite3_extended_errcode(s->db);

	sqlite3_reset(s->commit);
	if (rc == SQLITE_DONE)
		return ENL_OK;
	if (code == SQLITE_IOERR_FSYNC || code == SQLITE_IOERR_DIR_FSYNC) {
		blog("store: commit: %s", sqlite3_errmsg(s->db));
		return STORE_E_UNSURE;
	}
	return rc == SQLITE_FULL ? ENL_E_NO_SPACE : sq_err(s, "commit");
}

static int
sq_rollback(void *db)
{
	struct sq *s = db;

	/* SQLite rolls back itself on some errors (a full disk) */
	if (sqlite3_get_autocommit(s->db))
		return ENL_OK;
	return step_done(s, s->rollback, "rollback");
}

static int
sq_message_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], struct stored_message *out)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->msg_get;
	int rc;

	sqlite3_bind_blob(st, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == ENL_HASH_LEN) {
		memcpy(out->hash, sqlite3_column_blob(st, 0), ENL_HASH_LEN);
		snprintf(out->sender, sizeof(out->sender), "%s",
			 (const char *)sqlite3_column_text(st, 1));
		out->received_at = sqlite3_column_int64(st, 2);
		out->log_index = (uint64_t)sqlite3_column_int64(st, 3);
		rc = ENL_OK;
	} else {
		rc = rc == SQLITE_DONE ? ENL_E_NOT_FOUND : sq_err(s, "message_get");
	}
	sqlite3_reset(st);
	return rc;
}

static int
sq_message_put(void *db, const struct enl_header *h, const uint8_t hash[ENL_HASH_LEN],
	       int64_t now, const uint8_t *env, size_t len, uint64_t log_index,
	       const struct delivery_init *d, const uint8_t *origin)
{
	struct sq *s = db;
	sqlite3_int64 seq;
	int rc;

	sqlite3_bind_blob(s->msg_put, 1, h->message_id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s->msg_put, 2, hash, ENL_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s->msg_put, 3, h->sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->msg_put, 4, now);
	if (env == NULL) {	/* not kept (refused for every recipient) */
		sqlite3_bind_zeroblob(s->msg_put, 5, 0);
	} else if (len >= BLOB_MIN) {
		char path[1200];
		blob_path(s, h->message_id, path, sizeof(path));
		if ((rc = enl_file_write(path, env, len, 0600, true)) != ENL_OK)
			return rc == ENL_E_NO_SPACE ? rc : ENL_E_IO;
		sqlite3_bind_zeroblob(s->msg_put, 5, 0);
	} else {
		sqlite3_bind_blob64(s->msg_put, 5, env, len, SQLITE_STATIC);
	}
	sqlite3_bind_int64(s->msg_put, 6, (sqlite3_int64)log_index);
	sqlite3_bind_int(s->msg_put, 7, h->handling.tlp);
	sqlite3_bind_int(s->msg_put, 8, h->handling.onward);
	sqlite3_bind_int(s->msg_put, 9, h->handling.evidential);
	if (origin != NULL)
		sqlite3_bind_blob(s->msg_put, 10, origin, ENL_MSG_ID_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->msg_put, 10);
	if ((rc = step_done(s, s->msg_put, "message_put")) != ENL_OK)
		return rc;
	seq = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < h->n_recipients; i++) {
		sqlite3_bind_int64(s->dlv_put, 1, seq);
		sqlite3_bind_text(s->dlv_put, 2, h->recipients[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(s->dlv_put, 3, (sqlite3_int64)i);
		sqlite3_bind_int(s->dlv_put, 4, d[i].state);
		sqlite3_bind_int64(s->dlv_put, 5, now);
		sqlite3_bind_int64(s->dlv_put, 7, h->expires_at);
		if (d[i].reason != NULL)
			sqlite3_bind_text(s->dlv_put, 6, d[i].reason, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s->dlv_put, 6);
		if ((rc = step_done(s, s->dlv_put, "delivery_put")) != ENL_OK)
			return rc;
	}
	return ENL_OK;
}

static int
sq_pending(void *db, const char *recipient, size_t max_count, size_t max_bytes,
	   store_envelope_cb cb, void *arg)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->pending;
	size_t bytes = 0, n = 0;
	int rc;

	sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max_count);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (sqlite3_column_bytes(st, 0) != ENL_MSG_ID_LEN)
			continue;
		if (len == 0) {	/* kept in its own file: read by whoever sends it */
			char path[1200];
			int fd = -1, frc;
			blob_path(s, sqlite3_column_blob(st, 0), path, sizeof(path));
			if (enl_file_open(path, SIZE_MAX, &fd, &len) != ENL_OK) {
				rc = SQLITE_IOERR;
				break;
			}
			if (n > 0 && bytes + len > max_bytes) {
				close(fd);
				break;
			}
			frc = cb(arg, sqlite3_column_blob(st, 0), NULL, len, &fd);
			if (fd >= 0)
				close(fd);
			if (frc != 0)
				break;
			bytes += len;
			n++;
			continue;
		}
		if (n > 0 && bytes + len > max_bytes)
			break;	/* the first always goes, whatever its size */
		if (cb(arg, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1), len, NULL) != 0)
			break;
		bytes += len;
		n++;
	}
	rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? ENL_OK
	     : rc == SQLITE_IOERR ? ENL_E_IO : sq_err(s, "pending");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
sq_mark(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *recipient,
	enum delivery_state state, int64_t now, const uint8_t *ack_sig, int64_t ack_time,
	const char *reason)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->state_of;
	int cur, rc;

	sqlite3_bind_blob(st, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	cur = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? ENL_E_NOT_FOUND : sq_err(s, "state_of");
	if (cur == DS_ACKED || cur == DS_REFUSED || cur == DS_REJECTED || cur == DS_EXPIRED)
		return ENL_E_EXISTS;
	if (state == DS_EXPIRED && cur != DS_QUEUED)
		return ENL_E_EXISTS;	/* fetched once: the recipient may hold it already */
	if (cur == DS_HELD && state != DS_QUEUED && state != DS_REJECTED)
		return ENL_E_NOT_FOUND;	/* not delivered: only a consent decision moves it */
	if (state == DS_FETCHED && cur == DS_FETCHED)
		return ENL_E_EXISTS;	/* fetched again after a lost reply: keep the first */
	st = s->mark;
	sqlite3_bind_int(st, 1, (int)state);
	sqlite3_bind_int64(st, 2, now);
	if (ack_sig != NULL)
		sqlite3_bind_blob(st, 3, ack_sig, 64, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, ack_time);
	if (reason != NULL)
		sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, recipient, -1, SQLITE_STATIC);
	return step_done(s, st, "mark");
}

static int
sq_states(void *db, const uint8_t id[ENL_MSG_ID_LEN], store_state_cb cb, void *arg)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->states;
	struct rcpt_state rs;
	int rc;

	sqlite3_bind_blob(st, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&rs, 0, sizeof(rs));
		snprintf(rs.recipient, sizeof(rs.recipient), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		rs.state = (enum delivery_state)sqlite3_column_int(st, 1);
		rs.queued_at = sqlite3_column_int64(st, 2);
		rs.fetched_at = sqlite3_column_int64(st, 3);
		rs.acked_at = sqlite3_column_int64(st, 4);
		rs.ack_time = sqlite3_column_int64(st, 5);
		if (sqlite3_column_bytes(st, 6) == 64) {
			memcpy(rs.ack_sig, sqlite3_column_blob(st, 6), 64);
			rs.has_ack_sig = true;
		}
		if (sqlite3_column_text(st, 7) != NULL)
			snprintf(rs.reason, sizeof(rs.reason), "%s",
				 (const char *)sqlite3_column_text(st, 7));
		cb(arg, &rs);
	}
	rc = rc == SQLITE_DONE ? ENL_OK : sq_err(s, "states");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static void *
checkpointer(void *arg)
{
	struct sq *s = arg;
	long wait_ms = CKPT_IDLE_MS;
	int last_log = -1;
	bool failing = false;	/* said once, until it works again */

	pthread_mutex_lock(&s->ckpt_mu);
	while (!s->ckpt_stop) {
		struct timespec until;
		int log = 0, done = 0;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += wait_ms * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &until);
		if (s->ckpt_stop)
			break;
		pthread_mutex_unlock(&s->ckpt_mu);
		if (sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
					      &done) != SQLITE_OK) {
			if (sqlite3_errcode(s->ckpt_db) != SQLITE_BUSY && !failing) {
				/* the WAL keeps what it holds, and grows */
				blog("store: cannot copy the WAL into the database: %s (tried again "
				     "and again; said once)", sqlite3_errmsg(s->ckpt_db));
				failing = true;
			}
			wait_ms = CKPT_IDLE_MS;
			pthread_mutex_lock(&s->ckpt_mu);
			continue;
		}
		if (failing)
			blog("store: the WAL is copied into the database again");
		failing = false;
		if (log >= WAL_RESTART_FRAMES && log - done <= WAL_FINISH_FRAMES)
			atomic_store(&s->ckpt_finish, true);
		/* busy: the WAL changed since the last look, or is not all copied */
		wait_ms = log != last_log || done < log ? CKPT_BUSY_MS : CKPT_IDLE_MS;
		last_log = log;
		pthread_mutex_lock(&s->ckpt_mu);
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	return NULL;
}

static int
sq_audit_append(void *db, uint64_t first, const uint8_t *const *entries, const size_t *lens,
		size_t n)
{
	struct sq *s = db;
	int rc = ENL_OK;

	for (size_t i = 0; rc == ENL_OK && i < n; i++) {
		sqlite3_bind_int64(s->audit_put, 1, (sqlite3_int64)(first + i));
		sqlite3_bind_blob(s->audit_put, 2, entries[i], (int)lens[i], SQLITE_STATIC);
		rc = step_done(s, s->audit_put, "audit_put");
	}
	return rc;
}

static int
sq_audit_load(void *db, int (*cb)(void *arg, const uint8_t *entry, size_t len), void *arg)
{
	struct sq *s = db;
	sqlite3_int64 expect = 0;
	int rc, crc = ENL_OK;

	while ((rc = sqlite3_step(s->audit_all)) == SQLITE_ROW && crc == ENL_OK) {
		if (sqlite3_column_int64(s->audit_all, 0) != expect++) {
			crc = ENL_E_MALFORMED;	/* a gap: the journal is damaged */
			break;
		}
		crc = cb(arg, sqlite3_column_blob(s->audit_all, 1),
			 (size_t)sqlite3_column_bytes(s->audit_all, 1));
	}
	sqlite3_reset(s->audit_all);
	if (crc != ENL_OK)
		return crc;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? ENL_OK : sq_err(s, "audit_load");
}

static int
sq_audit_get(void *db, uint64_t index, uint8_t **out, size_t *len)
{
	struct sq *s = db;
	int rc;

	sqlite3_bind_int64(s->audit_get, 1, (sqlite3_int64)index);
	rc = sqlite3_step(s->audit_get);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s->audit_get, 0);
		if ((*out = malloc(n ? n : 1)) == NULL) {
			rc = ENL_E_NOMEM;
		} else {
			memcpy(*out, sqlite3_column_blob(s->audit_get, 0), n);
			*len = n;
			rc = ENL_OK;
		}
	} else {
		rc = rc == SQLITE_DONE ? ENL_E_NOT_FOUND : sq_err(s, "audit_get");
	}
	sqlite3_reset(s->audit_get);
	return rc;
}

static int
sq_cosig_put(void *db, const char *agency, uint64_t size, const char *line)
{
	struct sq *s = db;

	sqlite3_bind_text(s->cosig_put, 1, agency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->cosig_put, 2, (sqlite3_int64)size);
	sqlite3_bind_text(s->cosig_put, 3, line, -1, SQLITE_STATIC);
	return step_done(s, s->cosig_put, "cosig_put");
}

static int
sq_cosigs(void *db, uint64_t size, void (*cb)(void *arg, const char *line), void *arg)
{
	struct sq *s = db;
	int rc;

	sqlite3_bind_int64(s->cosig_list, 1, (sqlite3_int64)size);
	while ((rc = sqlite3_step(s->cosig_list)) == SQLITE_ROW)
		cb(arg, (const char *)sqlite3_column_text(s->cosig_list, 0));
	sqlite3_reset(s->cosig_list);
	return rc == SQLITE_DONE ? ENL_OK : sq_err(s, "cosigs");
}

static int
sq_meta_get(void *db, const char *key, uint8_t *out, size_t cap, size_t *len)
{
	struct sq *s = db;
	int rc;

	sqlite3_bind_text(s->meta_get, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->meta_get);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s->meta_get, 0);
		*len = n;
		if (n <= cap)
			memcpy(out, sqlite3_column_blob(s->meta_get, 0), n);
		rc = n <= cap ? ENL_OK : ENL_E_TOO_LARGE;
	} else {
		rc = rc == SQLITE_DONE ? ENL_E_NOT_FOUND : sq_err(s, "meta_get");
	}
	sqlite3_reset(s->meta_get);
	return rc;
}

static int
sq_meta_put(void *db, const char *key, const uint8_t *value, size_t len)
{
	struct sq *s = db;

	sqlite3_bind_text(s->meta_put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->meta_put, 2, value, (int)len, SQLITE_STATIC);
	return step_done(s, s->meta_put, "meta_put");
}

static int
sq_chain_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t *last)
{
	struct sq *s = db;
	int rc;

	sqlite3_bind_blob(s->chain_get, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s->chain_get);
	*last = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s->chain_get, 0) : 0;
	sqlite3_reset(s->chain_get);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENL_OK : sq_err(s, "chain_get");
}

static int
sq_chain_put(void *db, const uint8_t id[ENL_MSG_ID_LEN], uint64_t last)
{
	struct sq *s = db;

	sqlite3_bind_blob(s->chain_put, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s->chain_put, 2, (sqlite3_int64)last);
	return step_done(s, s->chain_put, "chain_put");
}

/* One row of the original statement: the message `id`, and the state of
 * its delivery to `forwarder` (may be NULL); its origin (zeros if none). */
static int
original_row(struct sq *s, const uint8_t id[ENL_MSG_ID_LEN], const char *forwarder,
	     struct original_info *out, uint8_t origin[ENL_MSG_ID_LEN], bool *has_origin)
{
	sqlite3_stmt *st = s->original;
	int rc;

	sqlite3_bind_blob(st, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	if (forwarder != NULL)
		sqlite3_bind_text(st, 2, forwarder, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memcpy(out->id, id, ENL_MSG_ID_LEN);
		snprintf(out->sender, sizeof(out->sender), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		out->handling.tlp = (enum enl_tlp)sqlite3_column_int(st, 1);
		out->handling.onward = (enum enl_onward)sqlite3_column_int(st, 2);
		out->handling.evidential = (enum enl_evidential)sqlite3_column_int(st, 3);
		out->forwarder_state = sqlite3_column_int(st, 4);
		if (sqlite3_column_bytes(st, 5) == ENL_HASH_LEN)
			memcpy(out->hash, sqlite3_column_blob(st, 5), ENL_HASH_LEN);
		*has_origin = sqlite3_column_bytes(st, 6) == ENL_MSG_ID_LEN;
		if (*has_origin)
			memcpy(origin, sqlite3_column_blob(st, 6), ENL_MSG_ID_LEN);
		rc = ENL_OK;
	} else {
		rc = rc == SQLITE_DONE ? ENL_E_NOT_FOUND : sq_err(s, "original");
	}
	sqlite3_reset(st);
	return rc;
}

static int
sq_original(void *db, const uint8_t id[ENL_MSG_ID_LEN], const char *forwarder,
	    struct original_info *out)
{
	struct sq *s = db;
	struct original_info inner;
	uint8_t origin[ENL_MSG_ID_LEN], deeper[ENL_MSG_ID_LEN];
	bool has_origin = false, again = false;
	int rc;

	if ((rc = original_row(s, id, forwarder, out, origin, &has_origin)) != ENL_OK)
		return rc;
	out->via = out->handling;
	if (!has_origin)
		return ENL_OK;	/* `id` is the original itself */
	/* a forward: its origin was resolved when it was stored */
	if ((rc = original_row(s, origin, NULL, &inner, deeper, &again)) != ENL_OK)
		return rc == ENL_E_NOT_FOUND ? ENL_E_IO : rc;	/* the store lost it */
	memcpy(out->id, inner.id, ENL_MSG_ID_LEN);
	memcpy(out->hash, inner.hash, ENL_HASH_LEN);
	memcpy(out->sender, inner.sender, sizeof(out->sender));
	out->handling = inner.handling;
	return ENL_OK;
}

static int
sq_consent_put(void *db, const struct consent *c)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->cons_put;

	sqlite3_bind_blob(st, 1, c->request_id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, c->forward_id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, c->original_id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, c->original_hash, ENL_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->recipient, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, c->originator, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, c->forwarder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, c->expires_at);
	sqlite3_bind_int(st, 9, c->state);
	return step_done(s, st, "consent_put");
}

static void
consent_row(sqlite3_stmt *st, struct consent *c)
{
	memset(c, 0, sizeof(*c));
	if (sqlite3_column_bytes(st, 0) == ENL_MSG_ID_LEN)
		memcpy(c->request_id, sqlite3_column_blob(st, 0), ENL_MSG_ID_LEN);
	if (sqlite3_column_bytes(st, 1) == ENL_MSG_ID_LEN)
		memcpy(c->forward_id, sqlite3_column_blob(st, 1), ENL_MSG_ID_LEN);
	if (sqlite3_column_bytes(st, 2) == ENL_MSG_ID_LEN)
		memcpy(c->original_id, sqlite3_column_blob(st, 2), ENL_MSG_ID_LEN);
	if (sqlite3_column_bytes(st, 3) == ENL_HASH_LEN)
		memcpy(c->original_hash, sqlite3_column_blob(st, 3), ENL_HASH_LEN);
	snprintf(c->recipient, sizeof(c->recipient), "%s", (const char *)sqlite3_column_text(st, 4));
	snprintf(c->originator, sizeof(c->originator), "%s", (const char *)sqlite3_column_text(st, 5));
	snprintf(c->forwarder, sizeof(c->forwarder), "%s", (const char *)sqlite3_column_text(st, 6));
	c->expires_at = sqlite3_column_int64(st, 7);
	c->state = sqlite3_column_int(st, 8);
}

static int
sq_consent_get(void *db, const uint8_t id[ENL_MSG_ID_LEN], struct consent *c)
{
	struct sq *s = db;
	int rc;

	sqlite3_bind_blob(s->cons_get, 1, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s->cons_get);
	if (rc == SQLITE_ROW)
		consent_row(s->cons_get, c);
	sqlite3_reset(s->cons_get);
	return rc == SQLITE_ROW ? ENL_OK : rc == SQLITE_DONE ? ENL_E_NOT_FOUND
							     : sq_err(s, "consent_get");
}

static int
sq_consent_set(void *db, const uint8_t id[ENL_MSG_ID_LEN], int state)
{
	struct sq *s = db;

	sqlite3_bind_int(s->cons_set, 1, state);
	sqlite3_bind_blob(s->cons_set, 2, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	return step_done(s, s->cons_set, "consent_set");
}

static int
sq_consents_expired(void *db, int64_t now, struct consent *out, size_t max, size_t *n)
{
	struct sq *s = db;
	int rc;

	*n = 0;
	sqlite3_bind_int64(s->cons_exp, 1, now);
	sqlite3_bind_int64(s->cons_exp, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s->cons_exp)) == SQLITE_ROW)
		consent_row(s->cons_exp, &out[(*n)++]);
	sqlite3_reset(s->cons_exp);
	return rc == SQLITE_DONE ? ENL_OK : sq_err(s, "consents_expired");
}

static int
sq_deliveries_expired(void *db, int64_t now, struct expired_delivery *out, size_t max,
		      size_t *n)
{
	struct sq *s = db;
	sqlite3_stmt *st = s->dlv_exp;
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct expired_delivery *e = &out[*n];
		if (sqlite3_column_bytes(st, 0) != ENL_MSG_ID_LEN)
			continue;
		memcpy(e->id, sqlite3_column_blob(st, 0), ENL_MSG_ID_LEN);
		snprintf(e->recipient, sizeof(e->recipient), "%s",
			 (const char *)sqlite3_column_text(st, 1));
		e->expires_at = sqlite3_column_int64(st, 2);
		(*n)++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? ENL_OK : sq_err(s, "deliveries_expired");
}

static void
sq_close(void *db)
{
	struct sq *s = db;
	sqlite3_stmt **all[] = {&s->begin, &s->commit, &s->rollback, &s->msg_get,
				&s->msg_put, &s->dlv_put, &s->pending, &s->mark,
				&s->states, &s->state_of, &s->audit_put, &s->audit_all,
				&s->audit_get, &s->cosig_put, &s->cosig_list,
				&s->meta_get, &s->meta_put, &s->msg_exists,
				&s->original, &s->cons_put, &s->cons_get,
				&s->cons_set, &s->cons_exp, &s->dlv_exp, &s->chain_get,
				&s->chain_put};

	if (s == NULL)
		return;
	if (s->ckpt_running) {
		pthread_mutex_lock(&s->ckpt_mu);
		s->ckpt_stop = true;
		pthread_cond_signal(&s->ckpt_cv);
		pthread_mutex_unlock(&s->ckpt_mu);
		pthread_join(s->ckpt_thread, NULL);
	}
	sqlite3_close(s->ckpt_db);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(*all[i]);
	sqlite3_close(s->db);
	free(s);
}

static const struct store_ops sq_ops = {
	sq_begin, sq_commit, sq_rollback, sq_message_get, sq_message_put,
	sq_pending, sq_mark, sq_states, sq_audit_append, sq_audit_load, sq_audit_get,
	sq_cosig_put, sq_cosigs, sq_original, sq_consent_put, sq_consent_get,
	sq_consent_set, sq_consents_expired, sq_deliveries_expired, sq_chain_get, sq_chain_put,
	sq_meta_get, sq_meta_put, sq_close,
};

/* The blobs folder's name: beside the database. */
static void
blobs_dir(struct sq *s, const char *db_path)
{
	const char *slash = strrchr(db_path, '/');

	snprintf(s->blobs, sizeof(s->blobs), "%.*s/blobs",
		 slash ? (int)(slash - db_path) : 1, slash ? db_path : ".");
}

/* The blobs folder (blobs_dir), made if need be; files no row names are
 * removed. */
static int
blobs_open(struct sq *s)
{
	struct dirent *e;
	DIR *d;

	if (mkdir(s->blobs, 0700) != 0 && errno != EEXIST) {
		blog("store: %s: %s", s->blobs, strerror(errno));
		return ENL_E_IO;
	}
	if ((d = opendir(s->blobs)) == NULL)
		return ENL_E_IO;
	while ((e = readdir(d)) != NULL) {
		uint8_t id[ENL_MSG_ID_LEN];
		char path[1400];
		bool keep = false;
		if (e->d_name[0] == '.')
			continue;
		if (strlen(e->d_name) == 2 * ENL_MSG_ID_LEN && enl_unhex(e->d_name, id, sizeof(id))) {
			sqlite3_bind_blob(s->msg_exists, 1, id, sizeof(id), SQLITE_STATIC);
			keep = sqlite3_step(s->msg_exists) == SQLITE_ROW;
			sqlite3_reset(s->msg_exists);
		}
		if (!keep) {	/* a write whose commit never happened */
			snprintf(path, sizeof(path), "%s/%s", s->blobs, e->d_name);
			if (unlink(path) == 0)
				blog("store: removed %s, which no stored message names", path);
		}
	}
	closedir(d);
	return ENL_OK;
}

/*
 * Tables that existed before the schema above are kept as they were: a
 * store made by an earlier build (deliveries keyed by message id) is
 * recognised and refused by name rather than failing on a missing column.
 */
/* Whether the tables have what `sql` names (it compiles). */
static bool
compiles(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	bool ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;

	sqlite3_finalize(st);
	return ok;
}

static bool
layout_current(sqlite3 *db)
{
	return compiles(db, "SELECT m.seq, d.msg, d.pos FROM messages m, deliveries d LIMIT 0");
}

/* The expiry a stored envelope's header names (0: none, or unreadable):
 * its header is at its start, in its row or its file. */
static int64_t
stored_expiry(const struct sq *s, const uint8_t *id, const uint8_t *env, size_t len)
{
	struct enl_limits lim = {(size_t)1 << 40};	/* verified when stored */
	struct enl_header h;
	int rc;

	if (len == 0) {	/* kept in its own file */
		char path[1200];
		size_t size = 0;
		int fd = -1;
		blob_path(s, id, path, sizeof(path));
		if (enl_file_open(path, SIZE_MAX, &fd, &size) != ENL_OK)
			return 0;
		rc = enl_envelope_peek_file(fd, size, &lim, &h);
		close(fd);
	} else {
		rc = enl_envelope_peek(env, len, &lim, &h);
	}
	return rc == ENL_OK ? h.expires_at : 0;
}

/* The expiry of every delivery nobody fetched yet, from its message's
 * header: for deliveries stored before the column (in upgrade's
 * transaction). */
static int
backfill_expiry(struct sq *s)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(s->db, "SELECT m.seq, m.id, m.envelope FROM messages m "
					    "WHERE EXISTS (SELECT 1 FROM deliveries d WHERE "
					    "d.msg = m.seq AND d.state = 1)", -1, &sel, NULL)) !=
		    SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "UPDATE deliveries SET expires_at = ?1 "
					    "WHERE msg = ?2 AND state = 1", -1, &upd, NULL)) !=
		    SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t at;
		if (sqlite3_column_bytes(sel, 1) != ENL_MSG_ID_LEN)
			continue;
		at = stored_expiry(s, sqlite3_column_blob(sel, 1), sqlite3_column_blob(sel, 2),
				   (size_t)sqlite3_column_bytes(sel, 2));
		if (at <= 0)
			continue;
		sqlite3_bind_int64(upd, 1, at);
		sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 0));
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		if (rc != SQLITE_DONE)
			break;
	}
	rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

/*
 * What later builds added to a table, made in place in a store of an
 * earlier one: deliveries.expires_at, filled in from the headers of the
 * messages not yet fetched, so that the sweep sees them as it sees new
 * ones.
 */
static int
upgrade(struct sq *s, const char *path)
{
	sqlite3 *db = s->db;
	int rc;

	if (!compiles(db, "SELECT expires_at FROM deliveries LIMIT 0")) {
		/* the column and what it holds, or neither */
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE; ALTER TABLE deliveries ADD COLUMN "
				      "expires_at INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = backfill_expiry(s);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		blog("store: %s: deliveries now keep their message's expiry", path);
	}
	if (!compiles(db, "SELECT origin FROM messages LIMIT 0")) {
		/* forwards stored before it count as originals of their own */
		if ((rc = sqlite3_exec(db, "ALTER TABLE messages ADD COLUMN origin BLOB", NULL, NULL,
				       NULL)) != SQLITE_OK)
			return rc;
		blog("store: %s: forwards now keep their innermost original", path);
	}
	/* only deliveries nobody fetched yet, of messages that expire */
	return sqlite3_exec(db, "CREATE INDEX IF NOT EXISTS deliveries_expiring ON deliveries "
				"(expires_at) WHERE state = 1 AND expires_at > 0", NULL, NULL, NULL);
}

int
store_sqlite_open(const char *path, struct store *out)
{
	struct stmt_def {
		sqlite3_stmt **st;
		const char *sql;
	} stmts[26];
	struct sq *s = calloc(1, sizeof(*s));
	size_t n = 0;

	if (s == NULL)
		return ENL_E_NOMEM;
	stmts[n++] = (struct stmt_def){&s->begin, "BEGIN IMMEDIATE"};
	stmts[n++] = (struct stmt_def){&s->commit, "COMMIT"};
	stmts[n++] = (struct stmt_def){&s->rollback, "ROLLBACK"};
	stmts[n++] = (struct stmt_def){&s->msg_get,
		"SELECT hash, sender, received_at, log_index FROM messages WHERE id = ?"};
	stmts[n++] = (struct stmt_def){&s->msg_put,
		"INSERT INTO messages (id, hash, sender, received_at, envelope, log_index, tlp, "
		"onward, evidential, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"};
	stmts[n++] = (struct stmt_def){&s->dlv_put,
		"INSERT INTO deliveries (msg, recipient, pos, state, queued_at, reason, "
		"expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)"};
	stmts[n++] = (struct stmt_def){&s->pending,
		"SELECT m.id, m.envelope FROM deliveries d JOIN messages m "
		"ON m.seq = d.msg WHERE d.recipient = ? AND d.state IN (1, 2) "
		"ORDER BY d.msg LIMIT ?"};
	stmts[n++] = (struct stmt_def){&s->mark,
		"UPDATE deliveries SET state = ?1, "
		"fetched_at = CASE WHEN ?1 = 2 THEN ?2 ELSE fetched_at END, "
		"acked_at = CASE WHEN ?1 = 3 THEN ?2 ELSE acked_at END, "
		"ack_sig = coalesce(?3, ack_sig), ack_time = CASE WHEN ?1 = 3 THEN ?4 "
		"ELSE ack_time END, reason = coalesce(?5, reason) "
		"WHERE msg = (SELECT seq FROM messages WHERE id = ?6) AND recipient = ?7"};
	stmts[n++] = (struct stmt_def){&s->states,
		"SELECT recipient, state, queued_at, fetched_at, acked_at, ack_time, "
		"ack_sig, reason FROM deliveries "
		"WHERE msg = (SELECT seq FROM messages WHERE id = ?) ORDER BY pos"};
	stmts[n++] = (struct stmt_def){&s->audit_put, "INSERT INTO audit (idx, entry) VALUES (?, ?)"};
	stmts[n++] = (struct stmt_def){&s->audit_all, "SELECT idx, entry FROM audit ORDER BY idx"};
	stmts[n++] = (struct stmt_def){&s->audit_get, "SELECT entry FROM audit WHERE idx = ?"};
	stmts[n++] = (struct stmt_def){&s->cosig_put,
		"INSERT OR REPLACE INTO cosignatures (agency, size, line) VALUES (?, ?, ?)"};
	stmts[n++] = (struct stmt_def){&s->cosig_list,
		"SELECT line FROM cosignatures WHERE size = ? ORDER BY agency"};
	stmts[n++] = (struct stmt_def){&s->meta_get, "SELECT value FROM meta WHERE key = ?"};
	stmts[n++] = (struct stmt_def){&s->meta_put,
		"INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"};
	stmts[n++] = (struct stmt_def){&s->msg_exists, "SELECT 1 FROM messages WHERE id = ?"};
	stmts[n++] = (struct stmt_def){&s->chain_get, "SELECT last FROM chains WHERE id = ?"};
	stmts[n++] = (struct stmt_def){&s->chain_put,
		"INSERT OR REPLACE INTO chains (id, last) VALUES (?, ?)"};
#define CONSENT_COLS "request_id, forward_id, original_id, original_hash, recipient, " \
	"originator, forwarder, expires_at, state"
	stmts[n++] = (struct stmt_def){&s->cons_put,
		"INSERT INTO consents (" CONSENT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"};
	stmts[n++] = (struct stmt_def){&s->cons_get,
		"SELECT " CONSENT_COLS " FROM consents WHERE request_id = ?"};
	stmts[n++] = (struct stmt_def){&s->cons_set,
		"UPDATE consents SET state = ? WHERE request_id = ?"};
	stmts[n++] = (struct stmt_def){&s->cons_exp,
		"SELECT " CONSENT_COLS " FROM consents WHERE state = 0 AND expires_at <= ? LIMIT ?"};
	stmts[n++] = (struct stmt_def){&s->dlv_exp,
		"SELECT m.id, d.recipient, d.expires_at FROM deliveries d JOIN messages m "
		"ON m.seq = d.msg WHERE d.state = 1 AND d.expires_at > 0 AND d.expires_at <= ? "
		"LIMIT ?"};
	stmts[n++] = (struct stmt_def){&s->original,
		"SELECT m.sender, m.tlp, m.onward, m.evidential, coalesce((SELECT d.state "
		"FROM deliveries d WHERE d.msg = m.seq AND d.recipient = ?2), 0), m.hash, "
		"m.origin FROM messages m WHERE m.id = ?1"};
	stmts[n++] = (struct stmt_def){&s->state_of,
		"SELECT state FROM deliveries "
		"WHERE msg = (SELECT seq FROM messages WHERE id = ?) AND recipient = ?"};
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
				"PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384; "
				"PRAGMA wal_autocheckpoint=0; "
				/* a WAL started over is cut back to this */
				"PRAGMA journal_size_limit=33554432;",
			 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* an index of the schema may fail on an earlier layout's table */
	if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK && layout_current(s->db))
		goto fail;
	if (!layout_current(s->db)) {
		blog("store: %s was written by an earlier build of enlace-broker, whose tables have "
		     "another layout; this build cannot use it", path);
		sq_close(s);
		return ENL_E_UNSUPPORTED;
	}
	blobs_dir(s, path);
	if (upgrade(s, path) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (sqlite3_prepare_v2(s->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK)
			goto fail;
	if (sqlite3_open_v2(path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(s->ckpt_db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (blobs_open(s) != ENL_OK)
		goto fail;
	pthread_mutex_init(&s->ckpt_mu, NULL);
	pthread_cond_init(&s->ckpt_cv, NULL);
	if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0)
		goto fail;
	pthread_setname_np(s->ckpt_thread, "enl:checkpoint");	/* as top -H and ps show it */
	s->ckpt_running = true;
	out->ops = &sq_ops;
	out->db = s;
	return ENL_OK;
fail:
	blog("store: %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
	sq_close(s);
	return ENL_E_IO;
}
