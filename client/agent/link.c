/*
 * The link to the broker: connected or away, and the one outgoing
 * connection's turn.
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

/* `c` is the connection that just succeeded or failed (its owner calls). */
void
set_connected(struct agent *a, const struct conn *c, bool up)
{
	pthread_mutex_lock(&a->mu);
	a->connected = up;
	if (!up)
		snprintf(a->last_error, sizeof(a->last_error), "%s", c->last_error);
	pthread_mutex_unlock(&a->mu);
}

/*
 * The broker is known to be away: the last request to it failed and none
 * has succeeded since (the fetch loop keeps trying, and says when one
 * does). A request made for a command someone waits on is then not sent:
 * it would only wait out its timeout.
 */
bool
broker_away(struct agent *a)
{
	bool away;

	pthread_mutex_lock(&a->mu);
	away = !a->connected;
	pthread_mutex_unlock(&a->mu);
	return away;
}

/*
 * Asks the broker for a newer directory, and takes it if it verifies.
 * ENL_OK once the broker answered (with a newer one or not).
 */
/*
 * Takes the `out` connection, waiting at most `ms`: a SUBMIT holds it for
 * up to a minute (a large message, or a broker that does not answer), and
 * what waits here for an analyst must not wait that long. False if not
 * taken.
 */
bool
out_take(struct agent *a, int ms)
{
	struct timespec until;

	enl_deadline(&until, (uint64_t)ms);
	return pthread_mutex_timedlock(&a->out_mu, &until) == 0;
}
