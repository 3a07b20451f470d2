/*
 * The outbox: a message put in it durably, the sender that hands it to
 * the broker oldest first and keeps each receipt, and what a sender asks
 * of it (a refusal's reason, a receipt waited for).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

/* Why the broker refused message `hex` (failed/HEX.reason). */
void
refused_reason(struct agent *a, const char *hex, char *out, size_t cap)
{
	char path[2048];
	uint8_t *buf = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/failed/%s.reason", a->cfg.spool, hex);
	if (enl_file_read(path, 4096, &buf, &len) == ENL_OK) {
		snprintf(out, cap, "refused by the broker: %.*s", (int)strcspn((char *)buf, "\n"),
			 (const char *)buf);
		free(buf);
	} else {
		snprintf(out, cap, "refused by the broker");
	}
}

/* The outcome of message `hex`, told to whoever waits for it. */
static void
outcome_tell(struct agent *a, const char *hex, bool refused)
{
	pthread_mutex_lock(&a->mu);
	snprintf(a->outcomes[a->outcomes_next].hex, sizeof(a->outcomes[0].hex), "%.32s", hex);
	a->outcomes[a->outcomes_next].refused = refused;
	a->outcomes_next = (a->outcomes_next + 1) % (sizeof(a->outcomes) / sizeof(a->outcomes[0]));
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* Under mu: 0 receipted, 1 refused, -1 not told (yet). */
static int
outcome_of(const struct agent *a, const char *hex)
{
	for (size_t i = 0; i < sizeof(a->outcomes) / sizeof(a->outcomes[0]); i++)
		if (strcmp(a->outcomes[i].hex, hex) == 0)
			return a->outcomes[i].refused ? 1 : 0;
	return -1;
}

int
wait_receipt(struct agent *a, const char *hex, uint32_t timeout_ms)
{
	struct timespec until;
	int found;

	enl_deadline(&until, timeout_ms);
	pthread_mutex_lock(&a->mu);
	/* woken by the sender when an outcome is told (outcome_tell) */
	while ((found = outcome_of(a, hex)) < 0 && !a->stopping &&
	       pthread_cond_timedwait(&a->cv, &a->mu, &until) != ETIMEDOUT)
		;
	if (found < 0)
		found = outcome_of(a, hex);
	pthread_mutex_unlock(&a->mu);
	return found;
}

/*
 * Puts an envelope in the outbox (durably, never over another). Its
 * file's time orders the outbox (outbox_list): strictly after every one
 * before it, to the nanosecond, even within one tick of the file
 * system's clock, and even if the clock stepped back.
 */
int
outbox_put(struct agent *a, const char *hex, const uint8_t *env, size_t len)
{
	char path[2048];
	struct timespec at;

	clock_gettime(CLOCK_REALTIME, &at);
	pthread_mutex_lock(&a->mu);
	if (at.tv_sec < a->last_queued.tv_sec ||
	    (at.tv_sec == a->last_queued.tv_sec && at.tv_nsec <= a->last_queued.tv_nsec)) {
		at = a->last_queued;
		if (++at.tv_nsec == 1000000000L) {
			at.tv_sec++;
			at.tv_nsec = 0;
		}
	}
	a->last_queued = at;
	pthread_mutex_unlock(&a->mu);
	snprintf(path, sizeof(path), "%s/outbox/%s.env", a->cfg.spool, hex);
	return enl_file_write_at(path, env, len, 0600, false, &at);
}

/* Submits one outbox file. 0 done (sent or failed for good), -1 retry later. */
static int
submit_one(struct agent *a, const char *name)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__SubmitReq sr = ENLACE__SUBMIT_REQ__INIT;
	Enlace__Response *resp = NULL;
	struct enl_keyring kr = keyring(a);
	char path[2048], base[256], rpath[2048];
	uint8_t *env = NULL, *rbytes = NULL;
	size_t len = 0, rlen = 0;
	int rc, ret = -1;

	spool_path(a, path, sizeof(path), "outbox", name);
	pthread_mutex_lock(&a->mu);
	if (a->handed.env != NULL && strcmp(a->handed.name, name) == 0) {
		env = a->handed.env;	/* as written into that file just now */
		len = a->handed.len;
		a->handed.env = NULL;
	}
	pthread_mutex_unlock(&a->mu);
	if (env == NULL &&
	    (rc = enl_file_read(path, enl_envelope_max_size(&a->lim), &env, &len)) != ENL_OK) {
		alog("%s: %s", path, enl_strerror(rc));
		return -1;
	}
	sr.envelope.data = env;
	sr.envelope.len = len;
	req.body_case = ENLACE__REQUEST__BODY_SUBMIT;
	req.submit = &sr;
	pthread_mutex_lock(&a->out_mu);
	rc = conn_request(&a->out, &kr, &req, 60000, &resp);
	pthread_mutex_unlock(&a->out_mu);
	free(env);
	set_connected(a, &a->out, rc == ENL_OK);
	if (rc != ENL_OK)
		return -1;
	snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - 4), name);
	if (enl_err_transient(resp->status)) {
		/* the broker's own failure (a full disk, say): nothing of it was
		 * kept there, and the same envelope is sent again later */
		alog("message %s not stored by the broker (%s); it stays in the outbox and is "
		     "sent again", base, resp->reason);
		pthread_mutex_lock(&a->mu);
		snprintf(a->outbox_waiting, sizeof(a->outbox_waiting), "%s", resp->reason);
		pthread_mutex_unlock(&a->mu);
		goto out;
	}
	if (resp->status != ENL_OK) {
		char reason[512];
		int n = snprintf(reason, sizeof(reason), "%s\n", resp->reason);
		alog("message %s refused by the broker: %s", base, resp->reason);
		snprintf(rpath, sizeof(rpath), "%s/failed/%s.reason", a->cfg.spool, base);
		if (enl_file_write(rpath, (const uint8_t *)reason, (size_t)n, 0600, true) == ENL_OK &&
		    spool_move(a, "outbox", "failed", name) == ENL_OK) {
			outcome_tell(a, base, true);
			ret = 0;
		}
		goto out;
	}
	if (resp->receipt == NULL ||
	    enl_pb_pack(&resp->receipt->base, &rbytes, &rlen) != ENL_OK)
		goto out;
	snprintf(rpath, sizeof(rpath), "%s/sent/%s.receipt", a->cfg.spool, base);
	if (enl_file_write(rpath, rbytes, rlen, 0600, true) == ENL_OK &&
	    spool_move(a, "outbox", "sent", name) == ENL_OK) {
		alog("message %s receipted by the broker", base);
		outcome_tell(a, base, false);
		receipt_audit(a, resp->receipt, base);
		pthread_mutex_lock(&a->mu);
		a->outbox_waiting[0] = '\0';
		pthread_mutex_unlock(&a->mu);
		ret = 0;
	}
out:
	free(rbytes);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return ret;
}

struct queued {
	char *name;
	struct timespec at;	/* when it was written into the outbox */
};

static int
by_arrival(const void *x, const void *y)
{
	const struct queued *p = x, *q = y;

	if (p->at.tv_sec != q->at.tv_sec)
		return p->at.tv_sec < q->at.tv_sec ? -1 : 1;
	if (p->at.tv_nsec != q->at.tv_nsec)
		return p->at.tv_nsec < q->at.tv_nsec ? -1 : 1;
	return strcmp(p->name, q->name);
}

/*
 * Names of outbox envelopes, oldest first: in the order the analyst sent
 * them (the time each file was written), so that messages that waited
 * for the broker together reach it, and their recipients, in that order.
 * Their names (random message ids) say nothing of it.
 */
/* The messages an outbox listing takes at most (the rest, next round). */
#define OUTBOX_MAX 100000

size_t
outbox_list(const struct agent *a, char ***out)
{
	size_t n;
	char dir[1100], **names = NULL;
	ENL_VEC(struct queued) q = ENL_VEC_INIT(OUTBOX_MAX);
	struct dirent *e;
	struct stat st;
	DIR *d;

	*out = NULL;
	snprintf(dir, sizeof(dir), "%s/outbox", a->cfg.spool);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l != 2 * ENL_MSG_ID_LEN + 4 || strcmp(e->d_name + l - 4, ".env") != 0 ||
		    fstatat(dirfd(d), e->d_name, &st, 0) != 0)
			continue;
		struct queued *one = enl_vec_push(&q);
		if (one == NULL)
			break;	/* the rest on a later round */
		if ((one->name = strdup(e->d_name)) == NULL)
			q.n--;
		else
			one->at = st.st_mtim;
	}
	closedir(d);
	if (q.n > 0 && (names = malloc(q.n * sizeof(*names))) == NULL) {
		for (size_t i = 0; i < q.n; i++)
			free(q.v[i].name);
		q.n = 0;	/* tried again on the next round */
	}
	if (q.n > 1)
		qsort(q.v, q.n, sizeof(*q.v), by_arrival);
	for (size_t i = 0; i < q.n; i++)
		names[i] = q.v[i].name;
	n = q.n;
	enl_vec_free(&q);
	*out = names;
	return n;
}

void *
sender_main(void *arg)
{
	struct agent *a = arg;
	unsigned backoff = 0;

	time_t refreshed = time(NULL);
	struct timespec polled;

	if (directory_refresh(a) == ENL_OK)
		expiry_watch(a);
	log_poll(a);
	clock_gettime(CLOCK_MONOTONIC, &polled);
	while (!a->stopping) {
		char **names = NULL;
		struct timespec now;
		if (time(NULL) - refreshed >= 300) {	/* a newer directory, every 5 minutes */
			if (directory_refresh(a) == ENL_OK)
				expiry_watch(a);
			refreshed = time(NULL);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((uint64_t)((now.tv_sec - polled.tv_sec) * 1000 +
			       (now.tv_nsec - polled.tv_nsec) / 1000000) >= a->cfg.log_poll_ms) {
			log_poll(a);
			polled = now;
		}
		size_t n = outbox_list(a, &names);
		bool failed = false;
		for (size_t i = 0; i < n; i++) {
			if (!failed && !a->stopping && submit_one(a, names[i]) != 0)
				failed = true;
			free(names[i]);
		}
		free(names);
		if (failed) {
			/* exponential backoff with jitter, 100 ms to 10 s */
			unsigned ms = 100u << (backoff < 7 ? backoff : 7);
			ms = ms > 10000 ? 10000 : ms;
			ms = ms / 2 + randombytes_uniform(ms / 2 + 1);
			backoff++;
			usleep(ms * 1000);
			continue;
		}
		backoff = 0;
		pthread_mutex_lock(&a->mu);
		if (count_files(a, "outbox", ".env") == 0 && !a->stopping) {
			struct timespec until;
			uint64_t ms = a->cfg.log_poll_ms < 1000 ? a->cfg.log_poll_ms : 1000;
			enl_deadline(&until, ms);
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
		}
		pthread_mutex_unlock(&a->mu);
	}
	return NULL;
}
