/*
 * The SQLite store: the audit log's journal, cosignatures, meta values
 * and consent requests.
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

int
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

int
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

int
sq_cosig_put(void *db, const char *agency, uint64_t size, const char *line)
{
	struct sq *s = db;

	sqlite3_bind_text(s->cosig_put, 1, agency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->cosig_put, 2, (sqlite3_int64)size);
	sqlite3_bind_text(s->cosig_put, 3, line, -1, SQLITE_STATIC);
	return step_done(s, s->cosig_put, "cosig_put");
}

int
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

int
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

int
sq_meta_put(void *db, const char *key, const uint8_t *value, size_t len)
{
	struct sq *s = db;

	sqlite3_bind_text(s->meta_put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->meta_put, 2, value, (int)len, SQLITE_STATIC);
	return step_done(s, s->meta_put, "meta_put");
}

int
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

int
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

int
sq_consent_set(void *db, const uint8_t id[ENL_MSG_ID_LEN], int state)
{
	struct sq *s = db;

	sqlite3_bind_int(s->cons_set, 1, state);
	sqlite3_bind_blob(s->cons_set, 2, id, ENL_MSG_ID_LEN, SQLITE_STATIC);
	return step_done(s, s->cons_set, "consent_set");
}

int
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
