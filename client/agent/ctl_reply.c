/*
 * A control request's answer, and the request's turn given back.
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

/* The request's attachments are no longer needed (they are sealed): their
 * bytes go now, not after the answer, when the message's frame is made. */
void
ctl_release(struct ctl *c)
{
	enl_pb_unlend(&c->req->base, c->buf, c->len);
	free(c->buf);
	c->buf = NULL;
}

void
ctl_reply(struct ctl *c, Enlace__CtlResponse *r)
{
	if (control_write_message(c->fd, &r->base) != ENL_OK)
		alog("control: reply not sent: %s", strerror(errno));
}

void
ctl_error(struct ctl *c, int status, const char *reason)
{
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;

	r.status = status;
	r.reason = (char *)reason;
	ctl_reply(c, &r);
}

/* The request in hand lets the others run while it waits (on the broker,
 * or for a receipt): from here on it touches only what the agent's locks
 * guard. */
void
ctl_unserialize(struct ctl *c)
{
	if (c->serial) {
		c->serial = false;
		pthread_mutex_unlock(&c->a->ctl_mu);
	}
}
