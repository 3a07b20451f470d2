/*
 * The writer round's hooks, owned here: what each round does inside its
 * transaction (housekeeping, the parked fetches), at its commit (the
 * audit log staged with the store), and after it (receipts signed
 * together, fetches answered, the tiles published).
 */
#include <stdio.h>

#include "server_int.h"

static int
round_prepare(void *arg, struct store *st, int64_t now)
{
	struct server *srv = arg;

	return delivery_prepare(srv, st, now, housekeeping_run(srv, st, now));
}

/* The tiles may follow (at most once a second), from the round's durable
 * state: nothing is published that a crash could take back. */
static void
publish_due(struct server *srv)
{
	int rc;
	uint64_t published;

	if (!tlog_publish_wanted(srv->p.log))
		return;
	rc = tlog_publish_due(srv->p.log);
	published = tlog_published(srv->p.log);
	if (rc != ENL_OK && !srv->publish_failing) {
		blog("audit log: cannot publish the tiles: %s (the journal has the entries; "
		     "tried again each second; said once)", enl_strerror(rc));
		srv->publish_failing = true;
		srv->publish_failed_at = published;
	} else if (rc == ENL_OK && srv->publish_failing && published > srv->publish_failed_at) {
		blog("audit log: the tiles are published again");
		srv->publish_failing = false;
	}
}

/* The end of a writer round: its receipts go to be signed together, and
 * its waiting fetches are answered. */
static void
round_complete(void *arg, int rc)
{
	struct server *srv = arg;

	receipts_flush(srv);
	if (rc == ENL_OK)
		publish_due(srv);
	delivery_complete(srv, rc);
}

void
round_install(struct server *srv)
{
	struct writer_tick t = {round_prepare, auditlog_commit, auditlog_abort, auditlog_sign,
				round_complete, srv};

	writer_set_tick(srv->p.writer, &t);
}
