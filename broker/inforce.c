/*
 * What is in force, shared by every thread under the server's lock: the
 * directory, the policy, the sessions, and the clock.
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

struct policy_ref *
inforce_policy_get(struct server *srv)
{
	struct policy_ref *r;

	pthread_mutex_lock(&srv->mu);
	r = srv->policy;
	r->refs++;
	pthread_mutex_unlock(&srv->mu);
	return r;
}

/* Drops one reference (sessions and policies count theirs under mu);
 * true for the last, whose holder frees the thing. */
static bool
unref(struct server *srv, int *refs)
{
	bool last;

	pthread_mutex_lock(&srv->mu);
	last = --*refs == 0;
	pthread_mutex_unlock(&srv->mu);
	return last;
}

void
inforce_policy_put(struct server *srv, struct policy_ref *r)
{
	if (unref(srv, &r->refs)) {
		policy_free(r->p);
		free(r);
	}
}

const struct dir_state *
inforce_dir(struct server *srv)
{
	const struct dir_state *d;

	pthread_mutex_lock(&srv->mu);
	d = srv->dir;
	pthread_mutex_unlock(&srv->mu);
	return d;
}

int64_t
inforce_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sessions ---- */

void
inforce_sess_put(struct server *srv, struct sess *s)
{
	if (unref(srv, &s->refs)) {
		enl_session_free(s->s);
		free(s);
	}
}

/* Takes a reference to the live session of a pipe, or NULL. */
struct sess *
inforce_sess_get(struct server *srv, uint32_t pipe)
{
	struct sess *s;

	pthread_mutex_lock(&srv->mu);
	for (s = srv->sessions; s != NULL; s = s->next)
		if (s->pipe == pipe && !s->dead) {
			s->refs++;
			break;
		}
	pthread_mutex_unlock(&srv->mu);
	return s;
}

void
inforce_dir_free(struct dir_state *d)
{
	enl_directory_free(d->owned);
	free(d->owned_bytes);
	free(d);
}
