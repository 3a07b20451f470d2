/*
 * The transport's own cost on this machine: the broker's nng pattern with
 * nothing else in it. A child process answers on a rep0 socket with aio
 * contexts (as the broker does); N threads in the parent each keep one
 * req0 session and send a request of the size of a sealed 1 KiB
 * submission, waiting for a reply of the size of a receipt before sending
 * again (as loadgen's senders do). No crypto, no store.
 *
 *   bench_transport [--sessions N] [--count N] [--request BYTES] [--reply BYTES]
 *
 * It prints requests/s, the mean round trip and the CPU time per request
 * of each side: what any broker built on nng's req/rep pays before doing
 * its own work.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"

#define MAX_SESSIONS 1024

static size_t reply_len = 1100;

struct ctx {
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
};

static void
die(const char *what, int rc)
{
	fprintf(stderr, "bench_transport: %s: %s\n", what, nng_strerror(rc));
	exit(1);
}

/* A context's callback: a request in, the reply of reply_len bytes out. */
static void
ctx_cb(void *arg)
{
	struct ctx *c = arg;
	nng_msg *msg;
	int rc = nng_aio_result(c->aio);

	if (rc != 0) {
		if (c->sending && (msg = nng_aio_get_msg(c->aio)) != NULL)
			nng_msg_free(msg);
		if (rc == NNG_ECLOSED)
			return;
		c->sending = false;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (c->sending) {
		c->sending = false;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	msg = nng_aio_get_msg(c->aio);
	nng_msg_clear(msg);
	if (nng_msg_realloc(msg, reply_len) != 0) {
		nng_msg_free(msg);
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	nng_aio_set_msg(c->aio, msg);
	c->sending = true;
	nng_ctx_send(c->ctx, c->aio);
}

/* The child: tells its port, answers until its parent closes the pipe it
 * waits on, then tells the CPU time it used. */
static void
serve(size_t n_ctx, int ready_fd, int stop_fd)
{
	nng_socket sock;
	nng_listener l;
	int port = 0;
	struct ctx *cs = calloc(n_ctx, sizeof(*cs));
	struct rusage ru;
	char c = 1;
	int rc;

	if (cs == NULL)
		exit(1);
	if ((rc = nng_rep0_open(&sock)) != 0)
		die("rep0", rc);
	nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 1 << 20);
	if ((rc = nng_listen(sock, "tcp://127.0.0.1:0", &l, 0)) != 0 ||
	    (rc = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0)
		die("listen on 127.0.0.1", rc);
	for (size_t i = 0; i < n_ctx; i++) {
		if ((rc = nng_ctx_open(&cs[i].ctx, sock)) != 0 ||
		    (rc = nng_aio_alloc(&cs[i].aio, ctx_cb, &cs[i])) != 0)
			die("context", rc);
		nng_ctx_recv(cs[i].ctx, cs[i].aio);
	}
	if (write(ready_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
		exit(1);
	while (read(stop_fd, &c, 1) > 0)
		;
	getrusage(RUSAGE_SELF, &ru);
	/* the CPU time so far goes to the parent through the pipe */
	{
		double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		if (write(ready_fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			exit(1);
	}
	_exit(0);
}

struct client {
	const char *url;
	size_t count, request_len;
	pthread_barrier_t *start;
	int errors;
};

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	nng_socket sock;
	int rc;

	if ((rc = nng_req0_open(&sock)) != 0)
		die("req0", rc);
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 30000);
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 30000);
	if ((rc = nng_dial(sock, cl->url, NULL, 0)) != 0)
		die(cl->url, rc);
	pthread_barrier_wait(cl->start);
	for (size_t i = 0; i < cl->count; i++) {
		nng_msg *msg;
		if (nng_msg_alloc(&msg, cl->request_len) != 0) {
			cl->errors++;
			continue;
		}
		memset(nng_msg_body(msg), (int)i, cl->request_len);
		if (nng_sendmsg(sock, msg, 0) != 0) {
			nng_msg_free(msg);
			cl->errors++;
			continue;
		}
		if (nng_recvmsg(sock, &msg, 0) != 0) {
			cl->errors++;
			continue;
		}
		nng_msg_free(msg);
	}
	nng_close(sock);
	return NULL;
}

static double
self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: bench_transport [--sessions N] [--count N] [--request BYTES] "
		   "[--reply BYTES]\n"
		   "  nng req/rep on loopback with no work behind it: requests/s and CPU\n"
		   "  per request of each side (defaults: 64 sessions, 60000 requests,\n"
		   "  1400-byte requests, 1100-byte replies)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sessions", required_argument, NULL, 's'}, {"count", required_argument, NULL, 'c'},
		{"request", required_argument, NULL, 'q'},  {"reply", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0}};
	size_t sessions = 64, count = 60000, request_len = 1400;
	int ready[2], stop[2], ch, errors = 0, port;
	char url[64];
	pthread_barrier_t start;
	struct client *cls;
	pthread_t *th;
	double t0, t1, cpu0, cpu1, server_cpu = 0;
	pid_t pid;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': sessions = strtoul(optarg, NULL, 10); break;
		case 'c': count = strtoul(optarg, NULL, 10); break;
		case 'q': request_len = strtoul(optarg, NULL, 10); break;
		case 'r': reply_len = strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (sessions == 0 || sessions > MAX_SESSIONS || count < sessions || request_len == 0 ||
	    request_len > (1 << 20) || reply_len > (1 << 20)) {
		fprintf(stderr, "bench_transport: sessions must be 1..%d, count at least the "
				"sessions, sizes 1..1048576\n", MAX_SESSIONS);
		return 2;
	}
	if (pipe(ready) != 0 || pipe(stop) != 0)
		return 1;
	if ((pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		close(ready[0]);
		close(stop[1]);
		serve(sessions + 16, ready[1], stop[0]);
	}
	close(ready[1]);
	close(stop[0]);
	/* nng is not used here before the fork: the child picks the port */
	if (read(ready[0], &port, sizeof(port)) != (ssize_t)sizeof(port)) {
		fprintf(stderr, "bench_transport: the answering process did not start\n");
		return 1;
	}
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	cls = calloc(sessions, sizeof(*cls));
	th = calloc(sessions, sizeof(*th));
	if (cls == NULL || th == NULL)
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)sessions + 1);
	for (size_t i = 0; i < sessions; i++) {
		cls[i] = (struct client){url, count / sessions + (i < count % sessions), request_len,
					 &start, 0};
		pthread_create(&th[i], NULL, client_main, &cls[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	cpu0 = self_cpu_s();
	for (size_t i = 0; i < sessions; i++) {
		pthread_join(th[i], NULL);
		errors += cls[i].errors;
	}
	t1 = now_s();
	cpu1 = self_cpu_s();
	close(stop[1]);
	if (read(ready[0], &server_cpu, sizeof(server_cpu)) != (ssize_t)sizeof(server_cpu))
		server_cpu = -1;
	waitpid(pid, NULL, 0);
	printf("nng req/rep on loopback, %zu sessions, %zu requests of %zu bytes, replies of "
	       "%zu bytes, no work behind them\n", sessions, count, request_len, reply_len);
	printf("requests/s %.0f\n", (double)count / (t1 - t0));
	printf("mean round trip %.3f ms\n", (t1 - t0) * 1e3 * (double)sessions / (double)count);
	printf("answering side CPU per request %.1f us (its whole life, connecting included)\n",
	       server_cpu * 1e6 / (double)count);
	printf("requesting side CPU per request %.1f us\n", (cpu1 - cpu0) * 1e6 / (double)count);
	printf("errors %d\n", errors);
	free(cls);
	free(th);
	pthread_barrier_destroy(&start);
	return errors != 0;
}
