/*
 * The broker's writer against a store whose sync the test holds back:
 * nothing a job answers gets out before the sync that covers its batch
 * returns; the next batch is written while that sync is at work; answers
 * leave in the order they were held; stopping lets out what was held; a
 * sync that fails stops the process before anything held gets out.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "harness.h"

/* ---- a store whose commits and syncs the test controls ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int commits, syncs_started, syncs_done;
	bool sync_open;		/* false: sync waits */
	int commit_rc, sync_rc;
} fs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, true, ENL_OK, ENL_OK};

static int f_begin(void *db) { (void)db; return ENL_OK; }
static int f_rollback(void *db) { (void)db; return ENL_OK; }

static int
f_commit_nosync(void *db)
{
	int rc;

	(void)db;
	pthread_mutex_lock(&fs.mu);
	rc = fs.commit_rc;
	if (rc == ENL_OK)
		fs.commits++;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	return rc;
}

static int
f_sync(void *db)
{
	int rc;

	(void)db;
	pthread_mutex_lock(&fs.mu);
	fs.syncs_started++;
	pthread_cond_broadcast(&fs.cv);
	while (!fs.sync_open)
		pthread_cond_wait(&fs.cv, &fs.mu);
	rc = fs.sync_rc;
	fs.syncs_done++;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	return rc;
}

static const struct store_ops fake_ops = {
	.begin = f_begin, .commit_nosync = f_commit_nosync,
	.sync = f_sync, .rollback = f_rollback,
};
static struct store fake = {&fake_ops, NULL};

/* ---- jobs that answer through writer_hold ---- */

struct tjob {
	struct job job;		/* first */
	struct writer_hold hold;
	int id;
	bool write_gate;	/* write waits until write_open */
	bool wrote, done, held;
	int rc;
	uint64_t seq;		/* the batch its answer speaks of */
};

static struct writer *W;
static bool write_open = true;
static int released[16], n_released;
static int done_pipe = -1;	/* the failing-sync child reports here */

static void
set_open(bool *what, bool open)
{
	pthread_mutex_lock(&fs.mu);
	*what = open;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
}

static int
t_write(struct job *j, struct store *st, int64_t now)
{
	struct tjob *t = (struct tjob *)j;

	(void)st, (void)now;
	pthread_mutex_lock(&fs.mu);
	t->wrote = true;
	pthread_cond_broadcast(&fs.cv);
	while (t->write_gate && !write_open)
		pthread_cond_wait(&fs.cv, &fs.mu);
	pthread_mutex_unlock(&fs.mu);
	return ENL_OK;
}

static void
t_release(struct writer_hold *h)
{
	struct tjob *t = (struct tjob *)((char *)h - offsetof(struct tjob, hold));

	if (done_pipe >= 0 && write(done_pipe, "R", 1) != 1)
		_exit(3);
	pthread_mutex_lock(&fs.mu);
	released[n_released++] = t->id;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
}

static void
t_done(struct job *j, int rc)
{
	struct tjob *t = (struct tjob *)j;
	bool held;

	t->hold.release = t_release;
	t->seq = writer_seq(W);
	held = writer_hold(W, t->seq, &t->hold);
	if (done_pipe >= 0 && write(done_pipe, "D", 1) != 1)
		_exit(3);
	pthread_mutex_lock(&fs.mu);
	t->rc = rc;
	t->held = held;
	t->done = true;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	if (!held)
		t_release(&t->hold);
}

static void
job_init(struct tjob *t, int id)
{
	memset(t, 0, sizeof(*t));
	t->job.write = t_write;
	t->job.done = t_done;
	t->id = id;
}

/* Wait (up to 10 s) until *flag is true, or until *count reaches want. */
static bool
wait_flag(const bool *flag)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&fs.mu);
	while (!*flag && pthread_cond_timedwait(&fs.cv, &fs.mu, &until) != ETIMEDOUT)
		;
	ok = *flag;
	pthread_mutex_unlock(&fs.mu);
	return ok;
}

static bool
wait_count(const int *count, int want)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&fs.mu);
	while (*count < want && pthread_cond_timedwait(&fs.cv, &fs.mu, &until) != ETIMEDOUT)
		;
	ok = *count >= want;
	pthread_mutex_unlock(&fs.mu);
	return ok;
}

static int
locked_int(const int *v)
{
	int x;

	pthread_mutex_lock(&fs.mu);
	x = *v;
	pthread_mutex_unlock(&fs.mu);
	return x;
}

static void
reset(void)
{
	pthread_mutex_lock(&fs.mu);
	fs.commits = fs.syncs_started = fs.syncs_done = 0;
	fs.sync_open = true;
	fs.commit_rc = fs.sync_rc = ENL_OK;
	write_open = true;
	n_released = 0;
	pthread_mutex_unlock(&fs.mu);
}

/* ---- the tests ---- */

static void
test_answer_waits_for_its_sync(void)
{
	struct tjob a, b;

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	set_open(&fs.sync_open, false);
	job_init(&a, 1);
	a.write_gate = true;
	set_open(&write_open, false);
	writer_submit(W, &a.job);
	REQUIRE(wait_flag(&a.wrote));
	/* b queues while a's batch is being written: it is the next batch */
	job_init(&b, 2);
	writer_submit(W, &b.job);
	set_open(&write_open, true);
	REQUIRE(wait_flag(&a.done));
	REQUIRE(wait_flag(&b.done));
	/* b's batch was committed while the sync of a's was held back */
	CHECK(locked_int(&fs.commits) >= 2);
	CHECK(locked_int(&fs.syncs_done) == 0);
	CHECK(wait_count(&fs.syncs_started, 1));
	CHECK(a.held && b.held);
	CHECK(a.rc == ENL_OK && b.rc == ENL_OK);
	CHECK(locked_int(&n_released) == 0);
	/* another thread has no batch of its own; with a batch's number from
	 * the writer it waits for that batch just the same */
	CHECK(writer_seq(W) == 0);
	{
		struct tjob c;
		job_init(&c, 3);
		c.hold.release = t_release;
		CHECK(writer_hold(W, b.seq, &c.hold));
		CHECK(!writer_hold(W, 0, &c.hold));
		set_open(&fs.sync_open, true);
		REQUIRE(wait_count(&n_released, 3));
		/* let out oldest first */
		CHECK(released[0] == 1 && released[1] == 2 && released[2] == 3);
		/* durable now: nothing waits */
		CHECK(!writer_hold(W, b.seq, &c.hold));
	}
	writer_stop(W);
	writer_free(W);
	W = NULL;
}

struct stopper {
	pthread_t t;
	bool returned;
};

static void *
stop_thread(void *arg)
{
	struct stopper *s = arg;

	writer_stop(W);
	pthread_mutex_lock(&fs.mu);
	s->returned = true;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	return NULL;
}

static void
test_stop_lets_out_what_it_held(void)
{
	struct tjob a;
	struct stopper s = {0};

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	set_open(&fs.sync_open, false);
	job_init(&a, 7);
	writer_submit(W, &a.job);
	REQUIRE(wait_flag(&a.done));
	CHECK(a.held);
	REQUIRE(pthread_create(&s.t, NULL, stop_thread, &s) == 0);
	/* stopping waits for the sync, and answers nothing before it */
	REQUIRE(wait_count(&fs.syncs_started, 1));
	CHECK(locked_int(&n_released) == 0);
	set_open(&fs.sync_open, true);
	pthread_join(s.t, NULL);
	CHECK(s.returned);
	CHECK(n_released == 1 && released[0] == 7);
	writer_free(W);
	W = NULL;
}

static void
test_failed_commit_answers_at_once(void)
{
	struct tjob a;

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	pthread_mutex_lock(&fs.mu);
	fs.commit_rc = ENL_E_NO_SPACE;
	pthread_mutex_unlock(&fs.mu);
	job_init(&a, 3);
	writer_submit(W, &a.job);
	REQUIRE(wait_flag(&a.done));
	CHECK(a.rc == ENL_E_NO_SPACE);
	CHECK(!a.held);		/* nothing it says waits for a sync */
	CHECK(wait_count(&n_released, 1));
	writer_stop(W);
	writer_free(W);
	W = NULL;
}

/* In a child process: the sync fails, and the process ends with
 * EXIT_FAILURE before the held answer gets out. */
static void
test_failed_sync_stops_before_answering(void)
{
	int fds[2];
	pid_t pid;
	int status = 0;
	char got[8] = {0};
	ssize_t n, total = 0;

	reset();
	REQUIRE(pipe(fds) == 0);
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct tjob a;
		close(fds[0]);
		done_pipe = fds[1];
		fs.sync_rc = ENL_E_IO;
		if (writer_start(&fake, 64, &W) != ENL_OK)
			_exit(4);
		job_init(&a, 9);
		writer_submit(W, &a.job);
		for (;;)
			pause();	/* the syncer ends the process */
	}
	close(fds[1]);
	while ((n = read(fds[0], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
		total += n;
	close(fds[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_FAILURE);
	/* done may or may not have run before the process ended; the answer
	 * never left */
	CHECK(strcmp(got, "") == 0 || strcmp(got, "D") == 0);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	RUN(test_answer_waits_for_its_sync);
	RUN(test_stop_lets_out_what_it_held);
	RUN(test_failed_commit_answers_at_once);
	RUN(test_failed_sync_stops_before_answering);
	return harness_done();
}
