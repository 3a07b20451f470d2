/*
 * The directory the agent holds: the broker may hand out a newer one;
 * the agent checks it against the pinned authority before taking it.
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

static struct enl_keyring
keyring_of(struct agent *a, bool ever)
{
	struct enl_keyring kr;

	pthread_mutex_lock(&a->mu);
	kr = ever ? enl_directory_keyring_ever(a->dir) : enl_directory_keyring(a->dir);
	pthread_mutex_unlock(&a->mu);
	return kr;
}

struct enl_keyring
keyring(struct agent *a)
{
	return keyring_of(a, false);
}

/* For what is in the inbox: verified on arrival, and checked again with
 * the key it was signed with, even if that key was revoked since (the
 * analyst is told so: item_fill). */
struct enl_keyring
keyring_ever(struct agent *a)
{
	return keyring_of(a, true);
}

/* ---- the directory: the broker may hand out a newer one ---- */

/*
 * Puts a directory the broker offered in force if it verifies against the
 * pinned authority, is not expired and its serial is above the one held:
 * saved to the agent's directory file first. `how` says where it came
 * from, for the log. ENL_OK if it was taken.
 */
static int
directory_take(struct agent *a, const uint8_t *bytes, size_t len, const char *how)
{
	struct enl_dir_check chk = {a->authority_pk, 0, (int64_t)time(NULL)};
	struct enl_directory *nd = NULL;
	uint64_t serial;
	bool taken = false;
	int rc, wrc;

	pthread_mutex_lock(&a->mu);
	chk.held_serial = enl_directory_serial(a->dir);
	pthread_mutex_unlock(&a->mu);
	rc = enl_directory_parse(bytes, len, &chk, &nd);
	if (rc == ENL_E_DIR_OLD_SERIAL)
		return rc;	/* the other connection took it first */
	if (rc != ENL_OK) {
		alog("ALARM: the broker offered a directory that does not verify: %s",
		     enl_strerror(rc));
		return rc;
	}
	serial = enl_directory_serial(nd);
	/* one writer of the file and a->dir at a time, the newest winning */
	pthread_mutex_lock(&a->dir_mu);
	pthread_mutex_lock(&a->mu);
	rc = serial > enl_directory_serial(a->dir) ? ENL_OK : ENL_E_DIR_OLD_SERIAL;
	pthread_mutex_unlock(&a->mu);
	/* not saved, it is still sound: in force until the agent stops, and
	 * offered again after a restart */
	if (rc == ENL_OK && (wrc = enl_file_write(a->cfg.directory, bytes, len, 0644, true)) != ENL_OK)
		alog("%s: cannot save directory serial %" PRIu64 " (%s); it is in force until "
		     "the agent stops", a->cfg.directory, serial, enl_strerror(wrc));
	if (rc == ENL_OK) {
		pthread_mutex_lock(&a->mu);
		struct enl_directory **old = enl_vec_push(&a->old_dirs);
		if (old != NULL) {
			*old = a->dir;
			a->dir = nd;
			taken = true;
		}
		pthread_mutex_unlock(&a->mu);
		rc = taken ? ENL_OK : ENL_E_NOMEM;
	}
	pthread_mutex_unlock(&a->dir_mu);
	if (taken)
		alog("directory serial %" PRIu64 " from the broker%s, verified", serial, how);
	else if (rc == ENL_E_NOMEM)
		alog("directory serial %" PRIu64 ": out of memory; the one held stays", serial);
	if (!taken)
		enl_directory_free(nd);
	return rc;
}

/* The directory held expires: said in the log a week before, every hour,
 * and once it has (the broker hands out a newer one as soon as it has it). */
void
expiry_watch(struct agent *a)
{
	int64_t now = (int64_t)time(NULL);
	char what[160];
	bool say;

	if (now < a->expiry_said + 3600)
		return;
	pthread_mutex_lock(&a->mu);
	say = enl_directory_expiry_say(a->dir, now, what, sizeof(what));
	pthread_mutex_unlock(&a->mu);
	if (!say)
		return;
	a->expiry_said = now;
	alog("directory %s; the broker has no newer one yet", what);
}

/* The serial a hello names. */
uint64_t
held_serial(void *arg)
{
	struct agent *a = arg;
	uint64_t serial;

	pthread_mutex_lock(&a->mu);
	serial = enl_directory_serial(a->dir);
	pthread_mutex_unlock(&a->mu);
	return serial;
}

/* A newer directory with the broker's welcome: how an agent learns the
 * broker's rotated key, which it needs to check that welcome. */
void
welcome_directory(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr)
{
	struct agent *a = arg;

	(void)directory_take(a, dir, len, " (with its welcome)");
	*kr = keyring(a);
}

int
directory_refresh(struct agent *a)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__DirectoryReq dr = ENLACE__DIRECTORY_REQ__INIT;
	Enlace__Response *resp = NULL;
	struct enl_keyring kr = keyring(a);
	int rc;

	dr.have_serial = held_serial(a);
	req.body_case = ENLACE__REQUEST__BODY_DIRECTORY;
	req.directory = &dr;
	if (!out_take(a, 5000))
		return ENL_E_IO;
	rc = conn_request(&a->out, &kr, &req, 10000, &resp);
	pthread_mutex_unlock(&a->out_mu);
	if (rc != ENL_OK)
		return rc;
	set_connected(a, &a->out, true);
	if (resp->directory.len > 0)
		(void)directory_take(a, resp->directory.data, resp->directory.len, "");
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ENL_OK;
}
