/*
 * STATUS: the agent's connection, queues and the log it holds.
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

void
ctl_status(struct ctl *c)
{
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	Enlace__CtlStatus s = ENLACE__CTL_STATUS__INIT;
	char last_error[256], alarm[512], waiting[300], blocked[300];

	pthread_mutex_lock(&a->mu);
	s.connected = a->connected;
	snprintf(waiting, sizeof(waiting), "%s", a->outbox_waiting);
	snprintf(blocked, sizeof(blocked), "%s", a->inbox_blocked);
	s.directory_serial = enl_directory_serial(a->dir);
	s.directory_expires_at = enl_directory_expires_at(a->dir);
	snprintf(last_error, sizeof(last_error), "%s", a->last_error);
	snprintf(alarm, sizeof(alarm), "%s", a->alarm);
	s.checkpoint_size = a->shown_held;
	s.cosigned_size = a->shown_cosigned;
	pthread_mutex_unlock(&a->mu);
	s.log_alarm = alarm;
	s.broker = a->cfg.broker_id;
	s.broker_url = a->cfg.broker;
	s.agency = (char *)enl_identity_id(a->me);
	s.outbox = (uint32_t)count_files(a, "outbox", ".env");
	s.sent = (uint32_t)count_files(a, "sent", ".env");
	s.inbox = (uint32_t)count_files(a, "inbox", ".env");
	s.refused = (uint32_t)count_files(a, "refused", ".env");
	s.failed = (uint32_t)count_files(a, "failed", ".env");
	s.last_error = last_error;
	s.outbox_waiting = waiting;
	s.inbox_blocked = blocked;
	r.agent = &s;
	ctl_reply(c, &r);
}
