/*
 * The SQLite store: messages (small ones in a row, large ones in a file
 * of their own), deliveries, and the chains of forwards.
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

int
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

int
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

int
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
			frc = cb(arg, sqlite3_column_blob(st, 0), NULL, len, &fd,
				 sqlite3_column_int64(st, 2));
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
		if (cb(arg, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1), len, NULL,
		       sqlite3_column_int64(st, 2)) != 0)
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

int
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

int
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

int
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

int
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

int
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

int
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
