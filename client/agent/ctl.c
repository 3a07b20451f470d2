/*
 * The control socket (control.h): one request per connection, answered
 * by CTL_WORKERS threads, each request found through one table.
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

static void
ctl_dispatch(struct ctl *c, const Enlace__CtlRequest *req)
{
	c->serial = req->body_case != ENLACE__CTL_REQUEST__BODY_RECEIPTS;
	if (c->serial)
		pthread_mutex_lock(&c->a->ctl_mu);
	switch (req->body_case) {
	case ENLACE__CTL_REQUEST__BODY_SEND: ctl_send(c, req->send); break;
	case ENLACE__CTL_REQUEST__BODY_INBOX: ctl_inbox(c, NULL); break;
	case ENLACE__CTL_REQUEST__BODY_READ:
		if (req->read.len == ENL_MSG_ID_LEN)
			ctl_inbox(c, req->read.data);
		else
			ctl_error(c, ENL_E_INVAL, "a message id is 32 hex digits");
		break;
	case ENLACE__CTL_REQUEST__BODY_RECEIPTS:
		if (req->receipts.len == ENL_MSG_ID_LEN)
			ctl_receipts_of(c, req->receipts.data, false);
		else
			ctl_error(c, ENL_E_INVAL, "a message id is 32 hex digits");
		break;
	case ENLACE__CTL_REQUEST__BODY_STATUS: ctl_status(c); break;
	case ENLACE__CTL_REQUEST__BODY_CONSENTS: ctl_consents(c); break;
	case ENLACE__CTL_REQUEST__BODY_DECIDE: ctl_decide(c, req->decide); break;
	default: ctl_error(c, ENL_E_INVAL, "unknown control request"); break;
	}
	ctl_unserialize(c);
}

/* Answers the request on connection c->fd, then closes it. */
static void
ctl_serve(struct ctl *c)
{
	struct agent *a = c->a;
	int rc;

	/* a client that does not send its request (or read the answer) in
	 * time loses its connection, not a worker */
	control_timeouts(c->fd, 30000, 60000);
	c->req = NULL;
	c->buf = NULL;
	c->len = 0;
	rc = control_read(c->fd, enl_envelope_max_size(&a->lim) * 2, &c->buf, &c->len);
	/* an attachment stays where it was read, lent to the request */
	if (rc == ENL_OK)
		rc = enl_pb_unpack_lending(&enlace__ctl_request__descriptor, c->buf, c->len,
					   c->len, ENL_LEND_MIN, (ProtobufCMessage **)&c->req);
	if (rc == ENL_OK) {
		ctl_dispatch(c, c->req);
		/* released already, or lent still */
		enl_pb_free_lent(&c->req->base, c->buf, c->buf != NULL ? c->len : 0);
		c->req = NULL;
	}
	free(c->buf);
	c->buf = NULL;
	if (rc != ENL_OK && rc != ENL_E_IO) {
		ctl_error(c, rc, rc == ENL_E_TOO_LARGE ? "control request over the limit"
						       : "malformed control request");
	}
	close(c->fd);
}

/*
 * A connection the agent cannot take (out of descriptors or memory) stays
 * queued and keeps the listener readable: the worker pauses rather than
 * spin on it, and the log says so once a minute. It is taken once the
 * agent can again.
 */
static void
accept_failed(int err)
{
	static _Atomic int64_t last_logged;
	const struct timespec pause = {0, 100 * 1000 * 1000};
	int64_t now = (int64_t)time(NULL), last;

	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
		return;	/* another worker took it, or it went away */
	last = atomic_load(&last_logged);
	if (now - last >= 60 && atomic_compare_exchange_strong(&last_logged, &last, now))
		alog("control socket: cannot take a connection: %s", strerror(err));
	nanosleep(&pause, NULL);
}

static void *
ctl_main(void *arg)
{
	struct ctl *c = arg;
	struct agent *a = c->a;
	struct pollfd p = {.fd = a->ctl_fd, .events = POLLIN};

	while (!a->stopping) {
		if (poll(&p, 1, 250) <= 0)	/* 250 ms: to see `stopping` */
			continue;
		/* the listener is non-blocking: another worker may have taken it */
		if ((c->fd = accept4(a->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			accept_failed(errno);
			continue;
		}
		ctl_serve(c);
	}
	return NULL;
}

/* Serves the control socket until the agent stops: CTL_WORKERS requests
 * at once, this thread one of the workers. */
void
control_run(struct agent *a)
{
	struct ctl c[CTL_WORKERS];
	pthread_t t[CTL_WORKERS];
	size_t started = 1;

	for (size_t i = 0; i < CTL_WORKERS; i++)
		c[i] = (struct ctl){.a = a, .fd = -1};
	for (; started < CTL_WORKERS; started++) {
		if (pthread_create(&t[started], NULL, ctl_main, &c[started]) != 0)
			break;
		pthread_setname_np(t[started], "enl:control");
	}
	ctl_main(&c[0]);
	a->stopping = 1;
	for (size_t i = 1; i < started; i++)
		pthread_join(t[i], NULL);
}
