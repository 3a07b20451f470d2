/*
 * The SQLite store: its upgrade in place from the layouts of
 * earlier builds; the helpers every statement uses.
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

void
blob_path(const struct sq *s, const uint8_t id[ENL_MSG_ID_LEN], char *out, size_t cap)
{
	char hex[2 * ENL_MSG_ID_LEN + 1];

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	snprintf(out, cap, "%s/%s", s->blobs, hex);
}

int
sq_err(struct sq *s, const char *what)
{
	int code = sqlite3_extended_errcode(s->db);

	blog("store: %s: %s", what, sqlite3_errmsg(s->db));
	if (code == SQLITE_FULL || code == SQLITE_IOERR_WRITE || code == SQLITE_IOERR_FSYNC)
		return code == SQLITE_FULL ? ENL_E_NO_SPACE : ENL_E_IO;
	return ENL_E_IO;
}

int
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

bool
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
int
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
