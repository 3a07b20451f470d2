/*
 * What the load generator measures beside the broker: percentiles, a
 * process's CPU and memory from /proc, and the machine's ceiling for the
 * broker's work (verify, leaf hash, group-committed durable append) with
 * no network.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conn.h"
#include "loadgen.h"

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void
percentiles(const char *what, int64_t *v, size_t n)
{
	if (n == 0) {
		printf("%-28s no samples\n", what);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("%-28s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", what,
	       (double)v[n / 2] / 1e6, (double)v[n * 9 / 10] / 1e6,
	       (double)v[n * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
}

double
proc_cpu_s(long pid)
{
	char path[64], buf[2048];
	unsigned long ut = 0, st = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The number after `key` on its line of /proc/PID/FILE, or -1. */
double
proc_value(long pid, const char *file, const char *key)
{
	char path[64], line[256];
	double v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0) {
			v = strtod(line + strlen(key), NULL);
			break;
		}
	fclose(f);
	return v;
}

/* ---- the ceiling: verify + leaf hash on two threads, group-committed append ---- */

struct ceiling {
	uint8_t pk[32], sig[64], digest[32], record[1024];
	size_t per_thread;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t produced, written, syncs;
	bool done;
	int64_t fsync_ns;
};

static void *
ceiling_worker(void *arg)
{
	struct ceiling *c = arg;
	uint8_t leaf[32];

	for (size_t i = 0; i < c->per_thread; i++) {
		if (crypto_sign_verify_detached(c->sig, c->digest, 32, c->pk) != 0)
			abort();
		crypto_hash_sha256(leaf, c->record, 200);
		pthread_mutex_lock(&c->mu);
		c->produced++;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return NULL;
}

static void *
ceiling_writer(void *arg)
{
	struct ceiling *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->done || c->written < c->produced) {
		size_t n;
		while (c->written == c->produced && !c->done)
			pthread_cond_wait(&c->cv, &c->mu);
		n = c->produced - c->written;
		pthread_mutex_unlock(&c->mu);
		for (size_t i = 0; i < n; i++)
			if (write(c->fd, c->record, 256) != 256)
				abort();
		if (n > 0 && fdatasync(c->fd) != 0)
			abort();
		pthread_mutex_lock(&c->mu);
		c->written += n;
		c->syncs += n > 0;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

double
median3(const double v[3])
{
	double lo = v[0] < v[1] ? v[0] : v[1], hi = v[0] < v[1] ? v[1] : v[0];

	return v[2] < lo ? lo : v[2] > hi ? hi : v[2];
}

double
measure_ceiling(const char *dir, size_t total, double *fsync_ms, double *verify_ms)
{
	struct ceiling c;
	pthread_t w[2], wr;
	char path[1024];
	uint8_t sk[64];
	int64_t t0, t1;

	memset(&c, 0, sizeof(c));
	crypto_sign_keypair(c.pk, sk);
	randombytes_buf(c.digest, 32);
	crypto_sign_detached(c.sig, NULL, c.digest, 32, sk);
	snprintf(path, sizeof(path), "%s/ceiling.log", dir);
	if ((c.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return 0;
	/* one fdatasync of a small append, alone: the latency floor */
	t0 = now_ns();
	for (int i = 0; i < 50; i++)
		if (write(c.fd, c.record, 256) != 256 || fdatasync(c.fd) != 0)
			abort();
	*fsync_ms = (double)(now_ns() - t0) / 50 / 1e6;
	/* one signature check, alone: the broker's other fixed cost per message */
	t0 = now_ns();
	for (int i = 0; i < 2000; i++)
		if (crypto_sign_verify_detached(c.sig, c.digest, 32, c.pk) != 0)
			abort();
	*verify_ms = (double)(now_ns() - t0) / 2000 / 1e6;
	c.per_thread = total / 2;
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	t0 = now_ns();
	pthread_create(&wr, NULL, ceiling_writer, &c);
	pthread_create(&w[0], NULL, ceiling_worker, &c);
	pthread_create(&w[1], NULL, ceiling_worker, &c);
	pthread_join(w[0], NULL);
	pthread_join(w[1], NULL);
	pthread_mutex_lock(&c.mu);
	c.done = true;
	pthread_cond_signal(&c.cv);
	pthread_mutex_unlock(&c.mu);
	pthread_join(wr, NULL);
	t1 = now_ns();
	close(c.fd);
	unlink(path);
	printf("ceiling: %zu records in %zu group commits\n", c.written, c.syncs);
	return (double)c.written / ((double)(t1 - t0) / 1e9);
}
