/*
 * The broker's store on SQLite (store_ops): transactions made durable
 * before they are acknowledged, checkpoints of the WAL on a thread of
 * their own, and opening (with the upgrade of an older layout).
 *
 * WAL mode, one connection owned by the writer thread. A commit is
 * durable when it returns: SQLite runs with synchronous=FULL, which syncs
 * the WAL at every commit (and the WAL's folder when it makes the file),
 * and syncs the WAL and the database around each checkpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_sqlite_int.h"

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
		enl_deadline(&until, (uint64_t)wait_ms);
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
		"SELECT m.id, m.envelope, d.expires_at FROM deliveries d JOIN messages m "
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
