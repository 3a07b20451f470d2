/*
 * The single writer: takes every queued job (up to batch_max), runs them
 * in one transaction, commits once, and completes them. A batch that
 * cannot commit fails all its jobs and leaves the store as it was.
 *
 * The commit is made durable by a second thread, the syncer, while the
 * writer goes on with the next batch: one sync covers every batch
 * committed before it. What the jobs answer (writer_hold) waits for the
 * sync that covers their batch (writer_seq), so nothing is answered
 * before it is on disk. A sync that fails leaves the store's state on
 * disk unknown: the broker stops at once, answering nothing more, and a
 * restart recovers what is durable.
 */
#include <errno.h>
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
	/* the syncer: under mu */
	pthread_t syncer;
	pthread_cond_t sync_cv;		/* the syncer waits for a commit */
	pthread_cond_t durable_cv;	/* writer_wait_durable waits for a sync */
	uint64_t committed, synced;	/* batches */
	struct writer_hold *held;	/* newest first */
	bool sync_stop;
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
	if (rc == ENL_OK)
		rc = w->st->ops->commit_nosync(w->st->db);
	if (rc == ENL_OK) {
		pthread_mutex_lock(&w->mu);
		w->committed++;
		pthread_cond_signal(&w->sync_cv);
		pthread_mutex_unlock(&w->mu);
		if (w->tick.committed != NULL)
			w->tick.committed(w->tick.arg);
	}
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

/*
 * Syncs whatever the writer committed since the last sync, then lets
 * out the answers that waited for it, oldest first.
 */
static void *
syncer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct writer_hold *out, *h;
		uint64_t target;
		if (w->synced == w->committed && !w->sync_stop) {
			pthread_cond_wait(&w->sync_cv, &w->mu);
			continue;
		}
		if (w->synced == w->committed)
			break;	/* stopping, and everything is durable */
		target = w->committed;
		pthread_mutex_unlock(&w->mu);
		if (w->st->ops->sync(w->st->db) != ENL_OK) {
			blog("writer: the store cannot be made durable; stopping now, without "
			     "answering what it holds (a restart recovers what is on disk)");
			_exit(EXIT_FAILURE);
		}
		pthread_mutex_lock(&w->mu);
		w->synced = target;
		pthread_cond_broadcast(&w->durable_cv);
		/* what the sync covers leaves the queue */
		out = NULL;
		for (struct writer_hold **pp = &w->held; (h = *pp) != NULL;) {
			if (h->seq <= target) {	/* newest first: out is oldest first */
				*pp = h->next;
				h->next = out;
				out = h;
			} else {
				pp = &h->next;
			}
		}
		pthread_mutex_unlock(&w->mu);
		while ((h = out) != NULL) {
			out = h->next;
			h->release(h);
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

uint64_t
writer_seq(struct writer *w)
{
	uint64_t seq;

	if (w == NULL || !pthread_equal(pthread_self(), w->thread))
		return 0;
	pthread_mutex_lock(&w->mu);
	seq = w->committed;
	pthread_mutex_unlock(&w->mu);
	return seq;
}

bool
writer_hold(struct writer *w, uint64_t seq, struct writer_hold *h)
{
	bool held = false;

	if (w == NULL || seq == 0)
		return false;
	pthread_mutex_lock(&w->mu);
	if (seq > w->synced) {
		h->seq = seq;
		h->next = w->held;
		w->held = h;
		held = true;
	}
	pthread_mutex_unlock(&w->mu);
	return held;
}

void
writer_wait_durable(struct writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->synced < w->committed)
		pthread_cond_wait(&w->durable_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
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
		/* One batch is written while the one before is synced; no more
		 * than that, so that requests gather into the next batch instead
		 * of each taking a transaction of its own. */
		while (w->committed - w->synced >= 2)
			pthread_cond_wait(&w->durable_cv, &w->mu);
		if (w->head == NULL && !w->stopping && !w->kicked) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
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
	pthread_cond_destroy(&w->sync_cv);
	pthread_cond_destroy(&w->durable_cv);
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
	pthread_cond_init(&w->sync_cv, NULL);
	pthread_cond_init(&w->durable_cv, NULL);
	/* the writer is made first: writer_seq compares threads with it */
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		writer_free(w);
		return ENL_E_NOMEM;
	}
	if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
		writer_join(w);
		writer_free(w);
		return ENL_E_NOMEM;
	}
	pthread_setname_np(w->thread, "enl:writer");	/* as top -H and ps show it */
	pthread_setname_np(w->syncer, "enl:syncer");
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
	/* the syncer makes the last batches durable and lets their answers out */
	pthread_mutex_lock(&w->mu);
	w->sync_stop = true;
	pthread_cond_signal(&w->sync_cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->syncer, NULL);
	if (w->batches > 0)
		blog("writer: %" PRIu64 " requests stored in %" PRIu64 " transactions (%.1f each)",
		     w->jobs, w->batches, (double)w->jobs / (double)w->batches);
}
