/*
 * Every connection (nng pipe) of the broker's socket, from its first event
 * to its last: where it comes from, whether it has opened a session, and
 * how many of its requests are still unanswered. What lets one slow or
 * hostile peer cost only itself: a peer that has not opened its session
 * gets one request at a time, a small first frame and a deadline, and
 * there are only so many of those per address and in all; a peer with a
 * session gets a bounded number of requests unanswered at once.
 */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define BUCKETS 4096
/* A doomed pipe's last answer is handed to nng before it reaches the
 * kernel; closed this long after, the peer has it (and nng is not in the
 * middle of a send, where a close can hang its reaper). */
#define DOOM_GRACE_MS 1000

struct peer {
	uint32_t pipe;
	uint8_t addr[16];
	int64_t since_ms;
	size_t busy;		/* requests taken, not yet answered */
	bool authed;		/* a session was opened on it */
	bool doomed;		/* to be closed once its answers are out, */
	int64_t doomed_at;	/* ... from then on (ms), */
	bool closing;		/* ... which the sweep has done */
	bool gone;		/* closed long ago, not counted any more */
	struct peer *next;
};

struct peers {
	struct peer_limits lim;
	pthread_mutex_t mu;
	struct peer *bucket[BUCKETS];
	size_t handshaking;	/* peers without a session */
};

int
peers_new(const struct peer_limits *lim, struct peers **out)
{
	struct peers *ps = calloc(1, sizeof(*ps));

	if (ps == NULL)
		return ENL_E_NOMEM;
	ps->lim = *lim;
	pthread_mutex_init(&ps->mu, NULL);
	*out = ps;
	return ENL_OK;
}

void
peers_free(struct peers *ps)
{
	if (ps == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct peer *p = ps->bucket[i], *next; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

/* The peer of a pipe, or NULL; under mu. */
static struct peer **
slot(struct peers *ps, uint32_t pipe)
{
	struct peer **pp = &ps->bucket[pipe % BUCKETS];

	while (*pp != NULL && (*pp)->pipe != pipe)
		pp = &(*pp)->next;
	return pp;
}

bool
peers_admit(struct peers *ps, uint32_t pipe, const uint8_t addr[static 16], int64_t now_ms,
	    char *why, size_t cap)
{
	struct peer *p;
	size_t same = 0;
	bool ok;

	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < BUCKETS && ps->handshaking >= ps->lim.handshakes_per_addr; i++)
		for (p = ps->bucket[i]; p != NULL; p = p->next)
			same += !p->authed && !p->gone && memcmp(p->addr, addr, 16) == 0;
	ok = ps->handshaking < ps->lim.handshakes && same < ps->lim.handshakes_per_addr;
	if (!ok)
		snprintf(why, cap, "%zu connections without a session already (%zu from this "
			 "address); at most %zu, %zu from one address", ps->handshaking, same,
			 ps->lim.handshakes, ps->lim.handshakes_per_addr);
	if (ok && (p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(why, cap, "out of memory");
		ok = false;
	}
	if (ok) {
		p->pipe = pipe;
		memcpy(p->addr, addr, 16);
		p->since_ms = now_ms;
		p->next = ps->bucket[pipe % BUCKETS];
		ps->bucket[pipe % BUCKETS] = p;
		ps->handshaking++;
	}
	pthread_mutex_unlock(&ps->mu);
	return ok;
}

void
peers_remove(struct peers *ps, uint32_t pipe)
{
	struct peer **pp, *p;

	pthread_mutex_lock(&ps->mu);
	if ((p = *(pp = slot(ps, pipe))) != NULL) {
		*pp = p->next;
		ps->handshaking -= !p->authed && !p->gone;
		free(p);
	}
	pthread_mutex_unlock(&ps->mu);
}

int
peers_take(struct peers *ps, uint32_t pipe, size_t len, int64_t now_ms, char *why, size_t cap)
{
	struct peer *p;
	int rc = ENL_OK;

	pthread_mutex_lock(&ps->mu);
	if ((p = *slot(ps, pipe)) == NULL || p->doomed) {
		rc = ENL_E_NOT_FOUND;	/* gone already, or going */
	} else if (!p->authed && (p->busy > 0 || len > ps->lim.hello_max)) {
		snprintf(why, cap, p->busy > 0 ? "a second frame before its handshake was answered"
			 : "a first frame of %zu bytes, over the %zu a handshake may have", len,
			 ps->lim.hello_max);
		rc = ENL_E_TOO_LARGE;
	} else if (p->busy >= ps->lim.busy_max) {
		snprintf(why, cap, "%zu requests unanswered (it does not read its answers); at most "
			 "%zu", p->busy, ps->lim.busy_max);
		rc = ENL_E_TOO_LARGE;
	} else {
		p->busy++;
	}
	if (rc == ENL_E_TOO_LARGE) {
		p->doomed = true;
		p->doomed_at = now_ms;
	}
	pthread_mutex_unlock(&ps->mu);
	return rc;
}

void
peers_done(struct peers *ps, uint32_t pipe)
{
	struct peer *p;

	pthread_mutex_lock(&ps->mu);
	if ((p = *slot(ps, pipe)) != NULL)
		p->busy -= p->busy > 0;
	pthread_mutex_unlock(&ps->mu);
}

void
peers_authed(struct peers *ps, uint32_t pipe)
{
	struct peer *p;

	pthread_mutex_lock(&ps->mu);
	if ((p = *slot(ps, pipe)) != NULL && !p->authed) {
		p->authed = true;
		ps->handshaking -= !p->gone;
	}
	pthread_mutex_unlock(&ps->mu);
}

void
peers_doom(struct peers *ps, uint32_t pipe, int64_t now_ms)
{
	struct peer *p;

	pthread_mutex_lock(&ps->mu);
	if ((p = *slot(ps, pipe)) != NULL && !p->doomed) {
		p->doomed = true;
		p->doomed_at = now_ms;
	}
	pthread_mutex_unlock(&ps->mu);
}

size_t
peers_overdue(struct peers *ps, int64_t now_ms, uint32_t *out, size_t cap)
{
	size_t n = 0;

	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < BUCKETS && n < cap; i++) {
		for (struct peer *p = ps->bucket[i]; p != NULL && n < cap; p = p->next) {
			if (p->closing) {
				if (!p->authed && !p->gone &&
				    now_ms - p->since_ms > 3 * ps->lim.handshake_ms) {
					/* closed, but nng has not said so yet (its
					 * reaper can lag): no longer held against
					 * its address */
					p->gone = true;
					ps->handshaking--;
				}
			} else if (!p->doomed && !p->authed &&
				   now_ms - p->since_ms > ps->lim.handshake_ms) {
				/* it never asked anything: nothing is on its way */
				if (p->busy == 0) {
					p->closing = p->doomed = true;
					out[n++] = p->pipe;
				} else {
					p->doomed = true;
					p->doomed_at = now_ms;
				}
			} else if (p->doomed && p->busy == 0 && now_ms - p->doomed_at >= DOOM_GRACE_MS) {
				p->closing = true;
				out[n++] = p->pipe;
			}
		}
	}
	pthread_mutex_unlock(&ps->mu);
	return n;
}
