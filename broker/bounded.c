/*
 * A wait with a deadline around a call that may not return: nng's stops
 * (a socket's close, an HTTP server's stop) wait for every connection,
 * and a connection nng cannot finish must not keep the broker from
 * stopping.
 */
#include <stdlib.h>
#include <time.h>

#include "broker.h"

struct bounded {
	void (*fn)(void *);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
};

static void
bounded_free(struct bounded *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}

static void *
bounded_main(void *arg)
{
	struct bounded *b = arg;
	bool abandoned;

	b->fn(b->arg);
	pthread_mutex_lock(&b->mu);
	b->done = true;
	abandoned = b->abandoned;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (abandoned)
		bounded_free(b);
	return NULL;
}

bool
bounded_run(void (*fn)(void *), void *arg, int ms)
{
	struct bounded *b = calloc(1, sizeof(*b));
	struct timespec until;
	pthread_t t;
	bool done;

	if (b == NULL)
		return false;
	b->fn = fn;
	b->arg = arg;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (pthread_create(&t, NULL, bounded_main, b) != 0) {
		bounded_free(b);
		return false;
	}
	enl_deadline(&until, (uint64_t)ms);
	pthread_mutex_lock(&b->mu);
	while (!b->done && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
		;
	done = b->done;
	b->abandoned = !done;
	pthread_mutex_unlock(&b->mu);
	if (done) {
		pthread_join(t, NULL);
		bounded_free(b);
	} else {
		pthread_detach(t);
	}
	return done;
}
