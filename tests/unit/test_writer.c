/*
 * The broker's writer against a store whose commits the test holds back:
 * no job is done (answers) before the commit of its batch returns; the
 * jobs that arrive while a commit syncs are written together in the next
 * batch (group commit); a commit that fails fails every job of its batch
 * and the writer goes on; a commit whose sync failed stops the process
 * before any job of its batch is done; stopping writes what is queued.
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

/* ---- a store whose commits the test controls ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int commits_started, commits;
	bool commit_open;	/* false: commit waits */
	int commit_rc;
	int batch;		/* the number of the batch being written (from 1) */
} fs = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, true, ENL_OK, 1};

static int f_begin(void *db) { (void)db; return ENL_OK; }
static int f_rollback(void *db) { (void)db; return ENL_OK; }

static int
f_commit(void *db)
{
	int rc;

	(void)db;
	pthread_mutex_lock(&fs.mu);
	fs.commits_started++;
	pthread_cond_broadcast(&fs.cv);
	while (!fs.commit_open)
		pthread_cond_wait(&fs.cv, &fs.mu);
	rc = fs.commit_rc;
	if (rc == ENL_OK)
		fs.commits++;
	fs.batch++;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	return rc;
}

static const struct store_ops fake_ops = {
	.begin = f_begin, .commit = f_commit, .rollback = f_rollback,
};
static struct store fake = {&fake_ops, NULL};

/* ---- jobs ---- */

struct tjob {
	struct job job;		/* first */
	int id;
	bool wrote, done;
	int batch;		/* the batch it was written in */
	int commits_at_done;	/* commits returned when it was done */
	int rc;
};

static struct writer *W;
static int done_order[16], n_done;
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
	t->batch = fs.batch;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	return ENL_OK;
}

static void
t_done(struct job *j, int rc)
{
	struct tjob *t = (struct tjob *)j;

	if (done_pipe >= 0 && write(done_pipe, "D", 1) != 1)
		_exit(3);
	pthread_mutex_lock(&fs.mu);
	t->rc = rc;
	t->commits_at_done = fs.commits;
	t->done = true;
	done_order[n_done++] = t->id;
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
}

static void
job_init(struct tjob *t, int id)
{
	memset(t, 0, sizeof(*t));
	t->job.write = t_write;
	t->job.done = t_done;
	t->id = id;
}

/* Waits (up to 10 s) until *flag is true. */
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

/* Waits (up to 10 s) until *count reaches want. */
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

static bool
locked_flag(const bool *v)
{
	bool x;

	pthread_mutex_lock(&fs.mu);
	x = *v;
	pthread_mutex_unlock(&fs.mu);
	return x;
}

static void
reset(void)
{
	pthread_mutex_lock(&fs.mu);
	fs.commits_started = fs.commits = 0;
	fs.commit_open = true;
	fs.commit_rc = ENL_OK;
	fs.batch = 1;
	n_done = 0;
	pthread_mutex_unlock(&fs.mu);
}

/* ---- the tests ---- */

static void
test_done_after_commit_and_group_commit(void)
{
	struct tjob a, b, c;

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	set_open(&fs.commit_open, false);
	job_init(&a, 1);
	writer_submit(W, &a.job);
	REQUIRE(wait_count(&fs.commits_started, 1));
	/* a's commit is syncing: a is not done, and b and c queue */
	job_init(&b, 2);
	job_init(&c, 3);
	writer_submit(W, &b.job);
	writer_submit(W, &c.job);
	CHECK(!locked_flag(&a.done));
	CHECK(!locked_flag(&b.wrote) && !locked_flag(&c.wrote));
	set_open(&fs.commit_open, true);
	REQUIRE(wait_flag(&c.done));
	REQUIRE(wait_flag(&a.done));
	/* each was done only once its batch's commit had returned */
	CHECK(a.rc == ENL_OK && b.rc == ENL_OK && c.rc == ENL_OK);
	CHECK(a.commits_at_done == 1);
	CHECK(b.commits_at_done == 2 && c.commits_at_done == 2);
	/* b and c, which waited together, went in one batch after a's */
	CHECK(a.batch == 1 && b.batch == 2 && c.batch == 2);
	CHECK(n_done == 3 && done_order[0] == 1 && done_order[1] == 2 && done_order[2] == 3);
	writer_stop(W);
	writer_free(W);
	W = NULL;
}

static void
test_stop_writes_what_is_queued(void)
{
	struct tjob a, b;

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	set_open(&fs.commit_open, false);
	job_init(&a, 7);
	job_init(&b, 8);
	writer_submit(W, &a.job);
	REQUIRE(wait_count(&fs.commits_started, 1));
	writer_submit(W, &b.job);
	set_open(&fs.commit_open, true);
	writer_stop(W);
	/* stop returned: both were committed and done */
	CHECK(a.done && b.done && a.rc == ENL_OK && b.rc == ENL_OK);
	CHECK(fs.commits == 2);
	writer_free(W);
	W = NULL;
}

static void
test_failed_commit_fails_its_batch(void)
{
	struct tjob a, b;

	reset();
	REQUIRE_OK(writer_start(&fake, 64, &W));
	pthread_mutex_lock(&fs.mu);
	fs.commit_rc = ENL_E_NO_SPACE;
	pthread_mutex_unlock(&fs.mu);
	job_init(&a, 3);
	writer_submit(W, &a.job);
	REQUIRE(wait_flag(&a.done));
	CHECK(a.rc == ENL_E_NO_SPACE);
	/* the writer goes on: the next commit succeeds */
	pthread_mutex_lock(&fs.mu);
	fs.commit_rc = ENL_OK;
	pthread_mutex_unlock(&fs.mu);
	job_init(&b, 4);
	writer_submit(W, &b.job);
	REQUIRE(wait_flag(&b.done));
	CHECK(b.rc == ENL_OK);
	writer_stop(W);
	writer_free(W);
	W = NULL;
}

/* In a child process: the commit's sync fails, and the process ends with
 * EXIT_FAILURE before any job of the batch is done. */
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
		fs.commit_rc = STORE_E_UNSURE;
		if (writer_start(&fake, 64, &W) != ENL_OK)
			_exit(4);
		job_init(&a, 9);
		writer_submit(W, &a.job);
		for (;;)
			pause();	/* the writer ends the process */
	}
	close(fds[1]);
	while ((n = read(fds[0], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
		total += n;
	close(fds[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_FAILURE);
	CHECK(strcmp(got, "") == 0);	/* nothing was done, so nothing answered */
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	RUN(test_done_after_commit_and_group_commit);
	RUN(test_stop_writes_what_is_queued);
	RUN(test_failed_commit_fails_its_batch);
	RUN(test_failed_sync_stops_before_answering);
	return harness_done();
}
