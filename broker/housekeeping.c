/*
 * Housekeeping, once a second at the start of a writer round: the
 * directory's expiry said, consent requests nobody answered refused, and
 * deliveries whose message expired before its fetch marked EXPIRED.
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

/* The directory expires: said in the log a week before, every hour, and
 * once it has. The broker goes on with it (refusing every agency for a
 * late authority would stop all exchange); the operator puts a newer one
 * in force with SIGHUP. On the writer. */
static void
expiry_watch(struct server *srv, int64_t now)
{
	char what[160];

	if (now < srv->expiry_said + 3600 ||
	    !enl_directory_expiry_say(inforce_dir(srv)->dir, now, what, sizeof(what)))
		return;
	srv->expiry_said = now;
	blog("directory %s: put the authority's newer one in force (SIGHUP)", what);
}

/* Requests nobody answered in time: their forwards are refused. */
static int
consents_sweep(struct server *srv, struct store *st, int64_t now)
{
	struct consent c[32];
	size_t n = 0;
	int rc;

	if (now < srv->consents_swept + 1)
		return ENL_OK;
	srv->consents_swept = now;
	if ((rc = st->ops->consents_expired(st->db, now, c, 32, &n)) != ENL_OK)
		return rc;
	for (size_t i = 0; rc == ENL_OK && i < n; i++) {
		const char *why = "consent request expired unanswered";
		struct audit a = {ENLACE__AUDIT_EVENT__CONSENT_EXPIRED, c[i].forward_id, NULL,
				  NULL, c[i].originator, c[i].recipient, why, 0, NULL, NULL,
				  c[i].original_id};
		if ((rc = st->ops->consent_set(st->db, c[i].request_id, CONSENT_EXPIRED_S)) != ENL_OK)
			break;
		rc = st->ops->mark(st->db, c[i].forward_id, c[i].recipient, DS_REJECTED, now,
				   NULL, 0, why);
		if (rc == ENL_OK || rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND)
			rc = auditlog_add(srv, &a, now, NULL);
		if (rc == ENL_OK)
			blog("consent request of %s expired: the forward to %s is refused",
			     c[i].originator, c[i].recipient);
	}
	return rc;
}

/*
 * A message whose expiry has passed before its recipient fetched it is
 * not handed over: the delivery is EXPIRED, in the store and the log, and
 * the sender's receipt says so. ENL_E_EXISTS if it was fetched before (the
 * recipient may hold it: it goes again, and the recipient decides).
 */
int
housekeeping_expire(struct server *srv, struct store *st, const uint8_t id[ENL_MSG_ID_LEN],
		const char *agency, int64_t expires_at, int64_t now)
{
	char why[120], t[32];
	int rc;

	enl_time_format(expires_at, t);
	snprintf(why, sizeof(why), "the message expired at %s, before %s fetched it", t, agency);
	if ((rc = st->ops->mark(st->db, id, agency, DS_EXPIRED, now, NULL, 0, why)) != ENL_OK)
		return rc;
	struct audit a = {ENLACE__AUDIT_EVENT__EXPIRED, id, NULL, NULL, NULL, agency, why,
			  0, NULL, NULL, NULL};
	return auditlog_add(srv, &a, now, NULL);
}

/*
 * Deliveries nobody fetched before their message expired, found once a
 * second: EXPIRED without waiting for a fetch that may never come (the
 * recipient's agent away, or the agency gone), so the sender's receipt
 * and the audit log say so at the time.
 */
static int
deliveries_sweep(struct server *srv, struct store *st, int64_t now)
{
	struct expired_delivery e[64];
	size_t n = 0;
	int rc;

	if (now < srv->deliveries_swept + 1)
		return ENL_OK;
	srv->deliveries_swept = now;
	if ((rc = st->ops->deliveries_expired(st->db, now, e, 64, &n)) != ENL_OK)
		return rc;
	for (size_t i = 0; rc == ENL_OK && i < n; i++) {
		rc = housekeeping_expire(srv, st, e[i].id, e[i].recipient, e[i].expires_at, now);
		if (rc == ENL_E_EXISTS || rc == ENL_E_NOT_FOUND)
			rc = ENL_OK;	/* moved on in this same batch */
	}
	if (n == 64)
		srv->deliveries_swept = 0;	/* more: again at the next round */
	return rc;
}

int
housekeeping_run(struct server *srv, struct store *st, int64_t now)
{
	int rc;

	expiry_watch(srv, now);
	rc = consents_sweep(srv, st, now);
	return rc != ENL_OK ? rc : deliveries_sweep(srv, st, now);
}
