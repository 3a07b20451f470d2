/*
 * The single writer: takes every queued job (up to batch_max), runs them
 * in one transaction, commits once, and completes them. The commit is
 * durable when it returns (the store syncs its WAL inside it: SQLite's
 * synchronous=FULL), so whatever the jobs answer speaks of what is on
 * disk. Requests that arrive while a commit syncs wait together for the
 * next one: that is the group commit. A batch that cannot commit fails
 * all its jobs and leaves the store as it was. A commit whose sync failed
 * leaves the store's state on disk unknown: the broker stops at once,
 * answering nothing more, and a restart recovers what is durable.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

struct writer {
	struct store *st;
	size_t batch_max;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	bool stopping;
	uint64_t batches, jobs;
	bool kicked;
	struct writer_tick tick;
};

/*
 * One transaction: the batch's jobs, then the tick's own writes (parked
 * fetches), one commit; then every job and the tick learn the outcome.
 */
static void
run_batch(struct writer *w, struct job *batch, int64_t now)
{
	struct job *j, *next;
	int rcs[4096];
	size_t n = 0;
	int rc;

	rc = w->st->ops->begin(w->st->db);
	for (j = batch; j != NULL; j = j->next, n++) {
		rcs[n] = rc == ENL_OK ? j->write(j, w->st, now) : rc;
		if (enl_err_transient(rcs[n]))
			rc = rcs[n];
	}
	if (rc == ENL_OK && w->tick.prepare != NULL) {
		int trc = w->tick.prepare(w->tick.arg, w->st, now);
		if (enl_err_transient(trc))
			rc = trc;
	}
	/* The audit log first: a receipt must never name an entry that a
	 * crash could lose. */
	if (rc == ENL_OK && w->tick.before_commit != NULL)
		rc = w->tick.before_commit(w->tick.arg);
	if (rc == ENL_OK && (rc = w->st->ops->commit(w->st->db)) == STORE_E_UNSURE) {
		blog("writer: the store cannot be made durable; stopping now, without "
		     "answering what it holds (a restart recovers what is on disk)");
		_exit(EXIT_FAILURE);
	}
	if (rc == ENL_OK && w->tick.committed != NULL)
		w->tick.committed(w->tick.arg);
	if (rc != ENL_OK && w->tick.abort != NULL)
		w->tick.abort(w->tick.arg);
	if (rc != ENL_OK) {
		if (w->st->ops->rollback(w->st->db) != ENL_OK)
			blog("writer: rollback failed");
		blog("writer: batch of %zu not stored: %s", n, enl_strerror(rc));
	}
	if (batch != NULL && rc == ENL_OK) {
		w->batches++;
		w->jobs += n;
	}
	n = 0;
	for (j = batch; j != NULL; j = next, n++) {
		next = j->next;
		j->done(j, rc == ENL_OK ? rcs[n] : rc);
	}
	if (w->tick.complete != NULL)
		w->tick.complete(w->tick.arg, rc);
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	for (;;) {
		struct job *batch, *last;
		struct timespec until;
		bool idle;
		size_t n;

		pthread_mutex_lock(&w->mu);
		if (w->head == NULL && !w->stopping && !w->kicked) {
			enl_deadline(&until, 100);
			pthread_cond_timedwait(&w->cv, &w->mu, &until);
		}
		if (w->head == NULL && w->stopping) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		batch = w->head;
		for (n = 1, last = batch; last && last->next && n < w->batch_max; n++)
			last = last->next;
		if (last != NULL) {
			w->head = last->next;
			if (w->head == NULL)
				w->tail = NULL;
			last->next = NULL;
		}
		w->kicked = false;
		idle = batch == NULL && w->tick.prepare == NULL && w->tick.before_commit == NULL;
		pthread_mutex_unlock(&w->mu);
		if (!idle)	/* a round with nothing to write commits nothing */
			run_batch(w, batch, (int64_t)time(NULL));
	}
	return NULL;
}

/* Ends the writer thread once the queue is empty. */
static void
writer_join(struct writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
}

void
writer_free(struct writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

int
writer_start(struct store *st, size_t batch_max, struct writer **out)
{
	struct writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return ENL_E_NOMEM;
	w->st = st;
	w->batch_max = batch_max < 1 ? 1 : batch_max > 4096 ? 4096 : batch_max;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		writer_free(w);
		return ENL_E_NOMEM;
	}
	pthread_setname_np(w->thread, "enl:writer");	/* as top -H and ps show it */
	*out = w;
	return ENL_OK;
}

void
writer_set_tick(struct writer *w, const struct writer_tick *tick)
{
	pthread_mutex_lock(&w->mu);
	w->tick = *tick;
	pthread_mutex_unlock(&w->mu);
}

void
writer_kick(struct writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->kicked = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
writer_submit(struct writer *w, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
writer_stop(struct writer *w)
{
	if (w == NULL)
		return;
	writer_join(w);
	if (w->batches > 0)
		blog("writer: %" PRIu64 " requests stored in %" PRIu64 " transactions (%.1f each)",
		     w->jobs, w->batches, (double)w->jobs / (double)w->batches);
}
