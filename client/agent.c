/*
 * enlace-agent: one agency's daemon.
 *
 * Three threads: the sender submits what waits in outbox/ (one session),
 * the fetcher long-polls the broker for incoming envelopes (a second
 * session), and the control thread answers the `enlace` command line on
 * a local socket. Every file is written durably (new file, fsync, rename,
 * fsync of the folder) before anything is acknowledged:
 *
 *   spool/outbox/ID.env    accepted from the analyst, not yet receipted
 *   spool/sent/ID.env      ... and its signed receipt in ID.receipt
 *   spool/failed/ID.env    refused by the broker, reason in ID.reason
 *   spool/inbox/ID.env     received, verified, acknowledged
 *   spool/refused/HASH.env received but did not verify; reason beside it
 *   spool/checkpoint       the newest checkpoint of the broker's audit log
 *                          seen, consistent with every one seen before
 *   spool/ALARM            why the broker's log is not to be trusted (kept
 *                          until an operator has looked into it and removes it)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"

struct agent_config {
	char broker[256];
	char broker_id[ENL_ID_MAX + 1];
	char key_dir[1024];
	char passphrase_file[1024];
	char directory[1024];
	char authority_pub[1024];
	char spool[1024];
	char control[1024];
	size_t max_payload;
	uint64_t fetch_wait_ms;
	uint64_t log_poll_ms;
};

#define S(name, field, req) \
	{"agent", name, ENL_CFG_STRING, offsetof(struct agent_config, field), \
	 sizeof(((struct agent_config *)0)->field), req, 0, 0, NULL}

static const struct enl_cfg_key config_keys[] = {
	{"agent", "broker", ENL_CFG_ADDR, offsetof(struct agent_config, broker),
	 sizeof(((struct agent_config *)0)->broker), 1, 0, 0, "tcp tcp4 tcp6 tls+tcp"},
	S("broker_id", broker_id, 1),
	S("key", key_dir, 1),
	S("passphrase_file", passphrase_file, 0),
	S("directory", directory, 1),
	S("authority_pub", authority_pub, 1),
	S("spool", spool, 1),
	S("control", control, 1),
	{"agent", "max_payload", ENL_CFG_BYTES, offsetof(struct agent_config, max_payload), 0,
	 0, 1, (uint64_t)1 << 31, NULL},
	{"agent", "fetch_wait", ENL_CFG_MS, offsetof(struct agent_config, fetch_wait_ms), 0, 0,
	 100, 600000, NULL},
	{"agent", "log_poll", ENL_CFG_MS, offsetof(struct agent_config, log_poll_ms), 0, 0,
	 100, 3600000, NULL},
	{NULL, NULL, 0, 0, 0, 0, 0, 0, NULL},
};

struct agent {
	struct agent_config cfg;
	struct enl_identity *me;
	struct enl_limits lim;
	uint8_t authority_pk[32];
	pthread_mutex_t mu;		/* directory, status */
	pthread_mutex_t out_mu;		/* the `out` connection: one request at a time */
	pthread_mutex_t dir_mu;		/* taking a newer directory: one at a time */
	pthread_mutex_t ctl_mu;		/* control requests: one at a time (but see ctl_serial) */
	pthread_cond_t cv;		/* outbox changed, or a receipt arrived */
	struct enl_directory *dir;
	struct enl_directory **old_dirs;	/* superseded: readers may hold them */
	size_t n_old, cap_old;
	struct conn out;		/* SUBMIT, RECEIPTS, DIRECTORY */
	struct conn in;			/* FETCH, ACK, REJECT */
	bool connected;
	char last_error[256];
	char outbox_waiting[300];	/* under mu: why the last try left the outbox as it was */
	struct timespec last_queued;	/* under mu: the newest outbox file's time */
	/* the broker's audit log, as this agency has seen it (log_mu) */
	pthread_mutex_t log_mu;
	struct enl_checkpoint held;	/* size 0: none yet */
	uint64_t cosigned;		/* the size this agency last cosigned */
	char alarm[512];		/* under mu: the first, kept */
	char alarm_said[512];		/* under mu: the last one logged */
	int64_t expiry_said;		/* sender thread: the directory's expiry last said */
	char waiting_said[2 * ENL_HASH_LEN + 1];	/* under mu: the last message logged
							 * as waiting for a key */
	uint64_t shown_held, shown_cosigned;	/* copies for status, under mu */
	volatile sig_atomic_t stopping;
	int ctl_fd;			/* the control socket's listener (control.h) */
};

/*
 * One control worker and the request it answers, on the connection it
 * accepted (control.h: one request per connection). Requests run one at a time (ctl_mu), except that
 * RECEIPTS, and a SEND or a consent decision waiting for its receipt, let
 * the others go on: a broker that is slow or away must not stop `enlace
 * status` or `inbox`.
 */
struct ctl {
	struct agent *a;
	int fd;		/* the connection of the request in hand */
	bool serial;	/* holds a->ctl_mu */
};

#define CTL_WORKERS 8

/* The spool's folders. */
static const char *const spool_subs[] = {"", "/outbox", "/sent", "/inbox", "/refused",
					 "/failed", "/consent"};

static void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
alog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enl_logv("enlace-agent", fmt, ap);
	va_end(ap);
}

static void
spool_path(const struct agent *a, char *out, size_t cap, const char *sub, const char *name)
{
	snprintf(out, cap, "%s/%s/%s", a->cfg.spool, sub, name);
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Moves spool/from/name to spool/to/name durably. */
static int
spool_move(const struct agent *a, const char *from, const char *to, const char *name)
{
	char src[2048], dst[2048], d1[1100], d2[1100];

	spool_path(a, src, sizeof(src), from, name);
	spool_path(a, dst, sizeof(dst), to, name);
	snprintf(d1, sizeof(d1), "%s/%s", a->cfg.spool, from);
	snprintf(d2, sizeof(d2), "%s/%s", a->cfg.spool, to);
	if (rename(src, dst) != 0 || fsync_dir(d2) != 0 || fsync_dir(d1) != 0)
		return ENL_E_IO;
	return ENL_OK;
}

static struct enl_keyring
keyring_of(struct agent *a, bool ever)
{
	struct enl_keyring kr;

	pthread_mutex_lock(&a->mu);
	kr = ever ? enl_directory_keyring_ever(a->dir) : enl_directory_keyring(a->dir);
	pthread_mutex_unlock(&a->mu);
	return kr;
}

static struct enl_keyring
keyring(struct agent *a)
{
	return keyring_of(a, false);
}

/* For what is in the inbox: verified on arrival, and checked again with
 * the key it was signed with, even if that key was revoked since (the
 * analyst is told so: item_fill). */
static struct enl_keyring
keyring_ever(struct agent *a)
{
	return keyring_of(a, true);
}

static size_t
count_files(const struct agent *a, const char *sub, const char *suffix)
{
	char dir[1100];
	struct dirent *e;
	size_t n = 0, sl = strlen(suffix);
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", a->cfg.spool, sub);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0 &&
		    strstr(e->d_name, ".tmp-") == NULL)
			n++;
	}
	closedir(d);
	return n;
}

/* `c` is the connection that just succeeded or failed (its owner calls). */
static void
set_connected(struct agent *a, const struct conn *c, bool up)
{
	pthread_mutex_lock(&a->mu);
	a->connected = up;
	if (!up)
		snprintf(a->last_error, sizeof(a->last_error), "%s", c->last_error);
	pthread_mutex_unlock(&a->mu);
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
		if (a->n_old == a->cap_old) {
			size_t cap = a->cap_old ? 2 * a->cap_old : 8;
			struct enl_directory **od = realloc(a->old_dirs, cap * sizeof(*od));
			if (od != NULL) {
				a->old_dirs = od;
				a->cap_old = cap;
			}
		}
		if (a->n_old < a->cap_old) {
			a->old_dirs[a->n_old++] = a->dir;
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
static void
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
static uint64_t
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
static void
welcome_directory(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr)
{
	struct agent *a = arg;

	(void)directory_take(a, dir, len, " (with its welcome)");
	*kr = keyring(a);
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
static bool
out_take(struct agent *a, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return pthread_mutex_timedlock(&a->out_mu, &until) == 0;
}

static int
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

/* ---- the broker's audit log: held checkpoint, consistency, cosigning ---- */

static void alarm_raise(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records that the broker's log failed a check: a log line, `enlace
 * status`, a non-zero `enlace receipts`, and spool/ALARM (kept). */
static void
alarm_raise(struct agent *a, const char *fmt, ...)
{
	char msg[512], path[1100], line[600];
	va_list ap;
	int fd, n;

	bool again;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&a->mu);
	again = strcmp(a->alarm_said, msg) == 0;
	snprintf(a->alarm_said, sizeof(a->alarm_said), "%s", msg);
	if (a->alarm[0] == '\0')
		snprintf(a->alarm, sizeof(a->alarm), "%s", msg);
	pthread_mutex_unlock(&a->mu);
	if (again)
		return;	/* said and kept already: the same finding at every poll */
	alog("ALARM: %s", msg);
	snprintf(path, sizeof(path), "%s/ALARM", a->cfg.spool);
	n = snprintf(line, sizeof(line), "%lld %s\n", (long long)time(NULL), msg);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) >= 0) {
		if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
			alog("%s: cannot record the alarm", path);
		close(fd);
	}
}

/* The broker's note keys, from the directory: every version not revoked,
 * as checkpoints signed before a rotation stay valid. Called with a->mu
 * held. */
static bool
broker_verifier(struct agent *a, struct enl_note_keys *k)
{
	const struct enl_card *bc = enl_directory_find(a->dir, a->cfg.broker_id);
	char name[ENL_VKEY_NAME_MAX + 1];

	k->n = 0;
	if (bc == NULL)
		return false;
	snprintf(name, sizeof(name), "enlace/%s", a->cfg.broker_id);
	enl_card_note_keys(a->dir, bc, name, false, k);
	return k->n > 0;
}

/* Opens a checkpoint note signed by the broker. */
static int
checkpoint_open(struct agent *a, const char *note, struct enl_checkpoint *cp)
{
	struct enl_note_keys k;
	size_t tl = 0;
	bool ok;
	int rc;

	pthread_mutex_lock(&a->mu);
	ok = broker_verifier(a, &k);
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		return ENL_E_UNKNOWN_SENDER;
	if ((rc = enl_note_open(note, strlen(note), k.v, k.n, &tl, NULL)) != ENL_OK ||
	    (rc = enl_checkpoint_parse(note, tl, cp)) != ENL_OK)
		return rc;
	return strcmp(cp->origin, k.v[0].name) == 0 ? ENL_OK : ENL_E_MALFORMED;
}

/* Keeps `note` (a checkpoint already checked) as the newest held. */
static void
checkpoint_hold(struct agent *a, const char *note, const struct enl_checkpoint *cp)
{
	char path[1100];

	snprintf(path, sizeof(path), "%s/checkpoint", a->cfg.spool);
	if (enl_file_write(path, (const uint8_t *)note, strlen(note), 0600, true) != ENL_OK) {
		alog("%s: cannot keep the checkpoint", path);
		return;
	}
	a->held = *cp;
	pthread_mutex_lock(&a->mu);
	a->shown_held = cp->size;
	pthread_mutex_unlock(&a->mu);
}

/* One CHECKPOINT request: the newest checkpoint and the consistency proof
 * from `first` to `second` (0: the newest); with a cosignature. */
static int
checkpoint_request(struct agent *a, uint64_t first, uint64_t second, const char *cosig,
		   uint64_t cosigned, Enlace__Response **resp)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__CheckpointReq cr = ENLACE__CHECKPOINT_REQ__INIT;
	struct enl_keyring kr = keyring(a);
	int rc;

	cr.first = first;
	cr.second = second;
	cr.cosignature = (char *)(cosig ? cosig : "");
	cr.cosigned_size = cosigned;
	req.body_case = ENLACE__REQUEST__BODY_CHECKPOINT;
	req.checkpoint = &cr;
	if (!out_take(a, 5000))
		return ENL_E_IO;
	rc = conn_request(&a->out, &kr, &req, 10000, resp);
	pthread_mutex_unlock(&a->out_mu);
	return rc;
}

static bool
proof_of(const Enlace__Response *r, enl_mhash proof[ENL_MERKLE_MAX_PROOF], size_t *n)
{
	if (r->n_consistency > ENL_MERKLE_MAX_PROOF)
		return false;
	for (size_t i = 0; i < r->n_consistency; i++) {
		if (r->consistency[i].len != ENL_MERKLE_HASH_LEN)
			return false;
		memcpy(proof[i], r->consistency[i].data, ENL_MERKLE_HASH_LEN);
	}
	*n = r->n_consistency;
	return true;
}

/*
 * Checks a checkpoint the broker signed against the one held: the same
 * size must have the same root (else the broker shows two histories, a
 * fork), and the smaller tree must be a prefix of the larger (checked
 * with a consistency proof from the broker). The newer one is then held.
 * ENL_E_IO if the broker could not be asked (try again later). Called
 * with log_mu held.
 */
static int
checkpoint_check(struct agent *a, const char *note)
{
	struct enl_checkpoint cp, lo, hi;
	Enlace__Response *resp = NULL;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	size_t n = 0;
	int rc;

	if ((rc = checkpoint_open(a, note, &cp)) != ENL_OK) {
		alarm_raise(a, "a checkpoint from the broker is not signed by it: %s",
			    enl_strerror(rc));
		return rc;
	}
	if (a->held.size == 0) {
		checkpoint_hold(a, note, &cp);
		return ENL_OK;
	}
	if (cp.size == a->held.size) {
		if (sodium_memcmp(cp.root, a->held.root, 32) != 0) {
			alarm_raise(a, "FORK: the broker signed two different logs of %" PRIu64
				    " entries", cp.size);
			return ENL_E_BAD_SIGNATURE;
		}
		return ENL_OK;
	}
	lo = cp.size < a->held.size ? cp : a->held;
	hi = cp.size < a->held.size ? a->held : cp;
	if ((rc = checkpoint_request(a, lo.size, hi.size, NULL, 0, &resp)) != ENL_OK)
		return ENL_E_IO;
	if (resp->status != ENL_OK || !proof_of(resp, proof, &n) ||
	    enl_merkle_consistency_verify(lo.size, hi.size, lo.root, hi.root,
					  (const enl_mhash *)proof, n) != ENL_OK) {
		alarm_raise(a, "the broker's log of %" PRIu64 " entries does not extend the one "
			    "of %" PRIu64 " it signed before (%s)", hi.size, lo.size,
			    resp->status != ENL_OK ? resp->reason : "the consistency proof fails");
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return ENL_E_BAD_SIGNATURE;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (cp.size > a->held.size)
		checkpoint_hold(a, note, &cp);
	return ENL_OK;
}

/* Asks for the newest checkpoint (with the proof that it extends the held
 * one), checks it, and cosigns what it now holds. */
static void
log_poll(struct agent *a)
{
	Enlace__Response *resp = NULL;
	enl_mhash proof[ENL_MERKLE_MAX_PROOF];
	struct enl_checkpoint cp;
	char *body = NULL, *line = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&a->log_mu);
	if (checkpoint_request(a, a->held.size, 0, NULL, 0, &resp) != ENL_OK)
		goto out;
	if (resp->status != ENL_OK) {
		if (resp->status == ENL_E_INVAL)
			alarm_raise(a, "the broker no longer has the log of %" PRIu64
				    " entries it signed (%s)", a->held.size, resp->reason);
		goto out;
	}
	if (resp->checkpoint == NULL || checkpoint_open(a, resp->checkpoint, &cp) != ENL_OK) {
		alarm_raise(a, "the broker's newest checkpoint is not signed by it");
		goto out;
	}
	if (a->held.size == 0 || cp.size == a->held.size) {
		if (checkpoint_check(a, resp->checkpoint) != ENL_OK)
			goto out;
	} else if (cp.size < a->held.size || !proof_of(resp, proof, &n) ||
		   enl_merkle_consistency_verify(a->held.size, cp.size, a->held.root, cp.root,
						 (const enl_mhash *)proof, n) != ENL_OK) {
		alarm_raise(a, "the broker's log of %" PRIu64 " entries does not extend the one "
			    "of %" PRIu64 " it signed before", cp.size, a->held.size);
		goto out;
	} else {
		checkpoint_hold(a, resp->checkpoint, &cp);
	}
	/* cosign it: "as of now, the largest consistent log I have seen" */
	if (a->held.size == 0 || a->held.size == a->cosigned)
		goto out;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	resp = NULL;
	if ((rc = enl_checkpoint_format(&a->held, &body)) != ENL_OK ||
	    (rc = enl_cosign(a->me, enl_identity_id(a->me), body, (uint64_t)time(NULL),
			     &line)) != ENL_OK) {
		alog("cannot cosign the checkpoint: %s", enl_strerror(rc));
		goto out;
	}
	if (checkpoint_request(a, 0, 0, line, a->held.size, &resp) != ENL_OK)
		goto out;
	if (resp->status == ENL_OK) {
		a->cosigned = a->held.size;
		alog("cosigned the broker's checkpoint of %" PRIu64 " entries", a->cosigned);
	} else {
		alog("the broker refused this agency's cosignature: %s", resp->reason);
	}
out:
	pthread_mutex_lock(&a->mu);
	a->shown_held = a->held.size;
	a->shown_cosigned = a->cosigned;
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->log_mu);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	free(body);
	free(line);
}

/* The checkpoint held from an earlier run, and any standing alarm. */
static void
log_state_load(struct agent *a)
{
	char path[1100];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct enl_checkpoint cp;

	snprintf(path, sizeof(path), "%s/checkpoint", a->cfg.spool);
	if (enl_file_read(path, ENL_NOTE_MAX, &buf, &len) == ENL_OK) {
		char *note = realloc(buf, len + 1);
		if (note != NULL) {
			buf = (uint8_t *)note;
			note[len] = '\0';
			if (checkpoint_open(a, note, &cp) == ENL_OK)
				a->held = cp;
			else
				alog("%s: not a checkpoint signed by the broker; ignored", path);
		}
	}
	free(buf);
	buf = NULL;
	snprintf(path, sizeof(path), "%s/ALARM", a->cfg.spool);
	if (enl_file_read(path, 1 << 20, &buf, &len) == ENL_OK && len > 0) {
		size_t l = strcspn((const char *)buf, "\n");
		const char *msg = memchr(buf, ' ', l);
		snprintf(a->alarm, sizeof(a->alarm), "%.*s",
			 msg ? (int)(l - (size_t)(msg + 1 - (const char *)buf)) : (int)l,
			 msg ? msg + 1 : (const char *)buf);
		alog("ALARM (standing, see %s): %s", path, a->alarm);
	}
	free(buf);
}

static bool receipt_in_log(struct agent *a, const Enlace__ReceiptBody *b, uint64_t *size);

/* Every receipt's SUBMITTED entry must be in the broker's log, under a
 * checkpoint consistent with the ones held. */
static void
receipt_audit(struct agent *a, const Enlace__Signed *sg, const char *what)
{
	Enlace__ReceiptBody *b = NULL;
	uint64_t size = 0;
	bool in;

	if (enl_pb_unpack(&enlace__receipt_body__descriptor, sg->body.data, sg->body.len,
			  1 << 20, (ProtobufCMessage **)&b) != ENL_OK) {
		alarm_raise(a, "the receipt of %s does not parse", what);
		return;
	}
	pthread_mutex_lock(&a->mu);
	in = receipt_in_log(a, b, &size);
	pthread_mutex_unlock(&a->mu);
	if (!in) {
		alarm_raise(a, "the receipt of %s is not backed by the broker's audit log", what);
	} else {
		pthread_mutex_lock(&a->log_mu);
		if (checkpoint_check(a, b->checkpoint) == ENL_E_IO)
			alog("the checkpoint of the receipt of %s is checked later", what);
		pthread_mutex_unlock(&a->log_mu);
	}
	protobuf_c_message_free_unpacked(&b->base, NULL);
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
	if ((rc = enl_file_read(path, enl_envelope_max_size(&a->lim), &env, &len)) != ENL_OK) {
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
		    spool_move(a, "outbox", "failed", name) == ENL_OK)
			ret = 0;
		goto out;
	}
	if (resp->receipt == NULL ||
	    enl_pb_pack(&resp->receipt->base, &rbytes, &rlen) != ENL_OK)
		goto out;
	snprintf(rpath, sizeof(rpath), "%s/sent/%s.receipt", a->cfg.spool, base);
	if (enl_file_write(rpath, rbytes, rlen, 0600, true) == ENL_OK &&
	    spool_move(a, "outbox", "sent", name) == ENL_OK) {
		alog("message %s receipted by the broker", base);
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
static size_t
outbox_list(const struct agent *a, char ***out)
{
	char dir[1100], **names = NULL;
	struct queued *q = NULL;
	size_t n = 0, cap = 0;
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
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct queued *nq = realloc(q, ncap * sizeof(*nq));
			if (nq == NULL)
				break;
			q = nq;
			cap = ncap;
		}
		if ((q[n].name = strdup(e->d_name)) != NULL) {
			q[n].at = st.st_mtim;
			n++;
		}
	}
	closedir(d);
	if (n > 0 && (names = malloc(n * sizeof(*names))) == NULL) {
		for (size_t i = 0; i < n; i++)
			free(q[i].name);
		n = 0;	/* tried again on the next round */
	}
	if (n > 1)
		qsort(q, n, sizeof(*q), by_arrival);
	for (size_t i = 0; i < n; i++)
		names[i] = q[i].name;
	free(q);
	*out = names;
	return n;
}

static void *
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
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += (long)(ms % 1000) * 1000000L;
			until.tv_sec += (time_t)(ms / 1000) + until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
		}
		pthread_mutex_unlock(&a->mu);
	}
	return NULL;
}

/* ---- fetcher ---- */

/* An acknowledgement made, waiting to go with the others of its fetch. */
struct pending_ack {
	uint8_t id[ENL_MSG_ID_LEN], hash[ENL_HASH_LEN], sig[64];
	int64_t time;
};

static int
make_ack(struct agent *a, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
	 struct pending_ack *out)
{
	uint8_t msg[ENL_ACK_MSG_LEN];

	out->time = (int64_t)time(NULL);
	memcpy(out->id, id, ENL_MSG_ID_LEN);
	memcpy(out->hash, hash, ENL_HASH_LEN);
	enl_ack_message(id, hash, out->time, msg);
	return enl_identity_sign(a->me, ENL_LABEL_ACK, msg, sizeof(msg), out->sig);
}

/* Sends the acknowledgements of one fetch in one request. */
static int
send_acks(struct agent *a, const struct enl_keyring *kr, const struct pending_ack *acks,
	  size_t n)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__AckList list = ENLACE__ACK_LIST__INIT;
	Enlace__AckReq *items, **ptrs;
	Enlace__Response *resp = NULL;
	int rc = ENL_E_NOMEM;

	if (n == 0)
		return ENL_OK;
	items = calloc(n, sizeof(*items));
	ptrs = calloc(n, sizeof(*ptrs));
	if (items == NULL || ptrs == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		enlace__ack_req__init(&items[i]);
		items[i].message_id.data = (uint8_t *)acks[i].id;
		items[i].message_id.len = ENL_MSG_ID_LEN;
		items[i].envelope_hash.data = (uint8_t *)acks[i].hash;
		items[i].envelope_hash.len = ENL_HASH_LEN;
		items[i].time = acks[i].time;
		items[i].signature.data = (uint8_t *)acks[i].sig;
		items[i].signature.len = 64;
		ptrs[i] = &items[i];
	}
	list.n_acks = n;
	list.acks = ptrs;
	req.body_case = ENLACE__REQUEST__BODY_ACKS;
	req.acks = &list;
	if ((rc = conn_request(&a->in, kr, &req, 30000, &resp)) != ENL_OK)
		goto out;
	rc = resp->status;
	if (rc != ENL_OK)
		alog("acknowledgements refused by the broker: %s", resp->reason);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(items);
	free(ptrs);
	return rc;
}

static int
send_reject(struct agent *a, const struct enl_keyring *kr, const uint8_t *id,
	    const uint8_t hash[ENL_HASH_LEN], const char *reason)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__RejectReq rj = ENLACE__REJECT_REQ__INIT;
	Enlace__Response *resp = NULL;
	int rc;

	rj.message_id.data = (uint8_t *)id;
	rj.message_id.len = id ? ENL_MSG_ID_LEN : 0;
	rj.envelope_hash.data = (uint8_t *)hash;
	rj.envelope_hash.len = ENL_HASH_LEN;
	rj.reason = (char *)reason;
	req.body_case = ENLACE__REQUEST__BODY_REJECT;
	req.reject = &rj;
	if ((rc = conn_request(&a->in, kr, &req, 30000, &resp)) != ENL_OK)
		return rc;
	rc = resp->status;
	if (rc != ENL_OK)
		alog("the broker did not record the refusal: %s", resp->reason);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* Handles one incoming envelope: verify and store durably, then make its
 * acknowledgement into *ack (*have_ack set) for the caller to send. */
/*
 * A forward must carry its original: signed by its originator, opened
 * with the key passed on, the one forward_of names, with a handling the
 * forward does not weaken and that allows forwarding at all.
 */
static bool
forward_verified(struct agent *a, const struct enl_keyring *kr, const struct enl_message *m,
		 char *why, size_t cap)
{
	const struct enl_handling *fh = &m->header.handling;
	struct enl_message *om = NULL;
	int rc;

	if (!m->header.has_forward_of || m->header.type != ENL_MSG_FORWARD ||
	    m->payload.original == NULL || m->payload.original_key == NULL) {
		snprintf(why, cap, "a forward without its original and key");
		return false;
	}
	rc = enl_envelope_open_with_key(m->payload.original, m->payload.original_len,
					m->payload.original_key, kr, &a->lim, 0, &om);
	if (rc != ENL_OK) {
		snprintf(why, cap, "the forwarded original does not verify: %s", enl_strerror(rc));
		return false;
	}
	if (memcmp(om->header.message_id, m->header.forward_of, ENL_MSG_ID_LEN) != 0)
		snprintf(why, cap, "the forwarded original is not the message forward_of names");
	else if (fh->tlp < om->header.handling.tlp || fh->onward < om->header.handling.onward ||
		 fh->evidential < om->header.handling.evidential)
		snprintf(why, cap, "the forward weakens the original's handling");
	else if (om->header.handling.tlp >= ENL_TLP_AMBER_STRICT ||
		 om->header.handling.onward == ENL_ONWARD_NEVER)
		snprintf(why, cap, "the original's handling forbids forwarding it");
	else
		why[0] = '\0';
	enl_message_free(om);
	return why[0] == '\0';
}

static int
receive_one(struct agent *a, const struct enl_keyring *kr, const uint8_t *env, size_t len,
	    struct pending_ack *ack, bool *have_ack)
{
	struct enl_message *m = NULL;
	struct enl_header h;
	char hex[2 * ENL_HASH_LEN + 1], name[80], path[2048];
	uint8_t hash[ENL_HASH_LEN];
	struct stat st;
	int rc;

	char reason[300];
	struct enl_keyring k = *kr, now;

	rc = enl_envelope_open(env, len, a->me, &k, &a->lim, (int64_t)time(NULL), &m);
	if (rc == ENL_E_UNKNOWN_SENDER || rc == ENL_E_UNKNOWN_KEY_VERSION) {
		/* The broker checked the sender against its directory: this
		 * agent's may be older (a new agency, a new key). Before it is
		 * refused for good, the newest directory is asked for, unless
		 * a newer one came in since `kr` was taken (with the welcome
		 * of the session this envelope came on, say). A keyring's ctx
		 * is its directory. */
		now = keyring(a);
		if (now.ctx == k.ctx) {
			if (directory_refresh(a) != ENL_OK)
				return ENL_E_IO;	/* it stays at the broker; asked again later */
			now = keyring(a);
		}
		if (now.ctx != k.ctx) {
			k = now;
			rc = enl_envelope_open(env, len, a->me, &k, &a->lim, (int64_t)time(NULL),
					       &m);
		}
	}
	if (rc == ENL_E_NOMEM)
		return rc;	/* this agent's failure, not the envelope's */
	if (rc == ENL_E_UNKNOWN_KEY_VERSION &&
	    enl_envelope_verify(env, len, &k, &a->lim, (int64_t)time(NULL), &h, NULL) == ENL_OK) {
		/* Signed by a sender the directory holds, but sealed to a key
		 * version of this agency that this agent has not loaded (a key
		 * rotated since it started): not the message's fault. It waits
		 * at the broker, unacknowledged, for a restart with that key. */
		enl_hex(h.message_id, ENL_MSG_ID_LEN, hex);
		pthread_mutex_lock(&a->mu);
		bool again = strcmp(a->waiting_said, hex) == 0;
		snprintf(a->waiting_said, sizeof(a->waiting_said), "%s", hex);
		pthread_mutex_unlock(&a->mu);
		if (!again)	/* said once, not at every fetch */
			alog("message %s from %s is sealed to a key of %s that this agent has not "
			     "loaded (rotated since it started?); it waits at the broker until the "
			     "agent is restarted with that key", hex, h.sender,
			     enl_identity_id(a->me));
		return ENL_E_UNKNOWN_KEY_VERSION;
	}
	if (rc == ENL_OK && (m->header.has_forward_of || m->header.type == ENL_MSG_FORWARD) &&
	    !forward_verified(a, &k, m, reason, sizeof(reason))) {
		enl_message_free(m);
		m = NULL;
		rc = ENL_E_TAMPERED;
	} else if (rc == ENL_E_EXPIRED) {	/* it verified, but came too late */
		snprintf(reason, sizeof(reason), "the message had expired when it arrived");
	} else {
		snprintf(reason, sizeof(reason), "did not verify: %s", enl_strerror(rc));
	}
	if (rc != ENL_OK) {
		char line[310];
		int n;
		enl_hash(env, len, hash);
		enl_hex(hash, ENL_HASH_LEN, hex);
		alog("REFUSED an incoming envelope %.16s…: %s", hex, reason);
		snprintf(path, sizeof(path), "%s/refused/%s.env", a->cfg.spool, hex);
		if (enl_file_write(path, env, len, 0600, true) != ENL_OK)
			return ENL_E_IO;
		n = snprintf(line, sizeof(line), "%s\n", reason);
		snprintf(path, sizeof(path), "%s/refused/%s.reason", a->cfg.spool, hex);
		if (enl_file_write(path, (const uint8_t *)line, (size_t)n, 0600, true) != ENL_OK)
			return ENL_E_IO;
		/* Name the message by its id, if the header parses at all (unverified:
		 * the broker checks that this agency is one of its recipients). */
		if (enl_envelope_peek(env, len, &a->lim, &h) == ENL_OK)
			return send_reject(a, kr, h.message_id, hash, reason);
		alog("the refused envelope does not even name itself; it stays at the broker");
		return ENL_OK;
	}
	enl_hex(m->header.message_id, ENL_MSG_ID_LEN, hex);
	snprintf(name, sizeof(name), "%s.env", hex);
	spool_path(a, path, sizeof(path), "inbox", name);
	/* Already here (an ack that was lost): acknowledge again, store once. */
	if (stat(path, &st) != 0) {
		if ((rc = enl_file_write(path, env, len, 0600, false)) != ENL_OK &&
		    rc != ENL_E_EXISTS) {
			alog("%s: %s", path, enl_strerror(rc));
			enl_message_free(m);
			return rc;
		}
		alog("received message %s from %s", hex, m->header.sender);
	}
	rc = make_ack(a, m->header.message_id, m->hash, ack);
	*have_ack = rc == ENL_OK;
	enl_message_free(m);
	return rc;
}

static void *
fetcher_main(void *arg)
{
	struct agent *a = arg;
	unsigned backoff = 0;

	while (!a->stopping) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__FetchReq fr = ENLACE__FETCH_REQ__INIT;
		Enlace__Response *resp = NULL;
		struct enl_keyring kr = keyring(a);
		int rc;

		fr.wait_ms = (uint32_t)a->cfg.fetch_wait_ms;
		req.body_case = ENLACE__REQUEST__BODY_FETCH;
		req.fetch = &fr;
		rc = conn_request(&a->in, &kr, &req, (int)a->cfg.fetch_wait_ms + 15000, &resp);
		set_connected(a, &a->in, rc == ENL_OK);
		if (rc == ENL_OK && resp->status != ENL_OK) {
			/* refused (the broker's disk full, say): not again at once */
			alog("the broker refused a fetch: %s", resp->reason);
			rc = resp->status;
		}
		if (rc == ENL_OK && resp->status == ENL_OK && resp->n_envelopes > 0) {
			struct pending_ack *acks = calloc(resp->n_envelopes, sizeof(*acks));
			size_t n = 0;
			bool waits = false;
			rc = acks == NULL ? ENL_E_NOMEM : ENL_OK;
			for (size_t i = 0; i < resp->n_envelopes && rc == ENL_OK; i++) {
				bool have = false;
				rc = receive_one(a, &kr, resp->envelopes[i].data,
						 resp->envelopes[i].len, &acks[n], &have);
				n += have;
				if (rc == ENL_E_UNKNOWN_KEY_VERSION) {
					/* it waits at the broker; the others come in */
					waits = true;
					rc = ENL_OK;
				}
			}
			if (rc == ENL_OK && waits)
				rc = ENL_E_UNKNOWN_KEY_VERSION;	/* fetched again after a pause */
			else if (rc == ENL_OK)
				backoff = 0;
			/* what is durably in the inbox is acknowledged, even after a failure */
			if (n > 0) {
				int arc = send_acks(a, &kr, acks, n);
				rc = rc == ENL_OK ? arc : rc;
			}
			free(acks);
		}
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (rc != ENL_OK && !a->stopping) {
			unsigned ms = 100u << (backoff < 7 ? backoff : 7);
			/* a message waiting for a key holds up the others: 2 s at most */
			unsigned cap = rc == ENL_E_UNKNOWN_KEY_VERSION ? 2000 : 10000;
			ms = ms > cap ? cap : ms;
			usleep((ms / 2 + randombytes_uniform(ms / 2 + 1)) * 1000);
			backoff++;
		}
	}
	return NULL;
}

/* ---- control: the local socket for `enlace` ---- */

static void
ctl_reply(struct ctl *c, Enlace__CtlResponse *r)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (enl_pb_pack(&r->base, &buf, &len) != ENL_OK ||
	    control_write(c->fd, buf, len) != ENL_OK)
		alog("control: reply not sent: %s", strerror(errno));
	free(buf);
}

static void
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
static void
ctl_unserialize(struct ctl *c)
{
	if (c->serial) {
		c->serial = false;
		pthread_mutex_unlock(&c->a->ctl_mu);
	}
}

/* Why the broker refused message `hex` (failed/HEX.reason). */
static void
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

static int
wait_receipt(struct agent *a, const char *hex, int timeout_s)
{
	char path[2048];
	struct stat st;
	time_t end = time(NULL) + timeout_s;
	int found = 0;

	char failed[2048];

	snprintf(path, sizeof(path), "%s/sent/%s.receipt", a->cfg.spool, hex);
	snprintf(failed, sizeof(failed), "%s/failed/%s.env", a->cfg.spool, hex);
	pthread_mutex_lock(&a->mu);
	while (!(found = stat(path, &st) == 0) && time(NULL) < end && !a->stopping) {
		if (stat(failed, &st) == 0) {
			pthread_mutex_unlock(&a->mu);
			return 1;	/* refused by the broker */
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&a->cv, &a->mu, &until);
	}
	pthread_mutex_unlock(&a->mu);
	return found ? 0 : -1;
}

static void ctl_receipts_of(struct ctl *c, const uint8_t *id, bool local_only);

/*
 * A forward of a message of the inbox: the original signed envelope and
 * its content key go with it, under the original's handling exactly (a
 * forward never weakens it). What the broker would refuse is refused here
 * first, with the reason. On failure the agent has answered.
 */
static int
forward_prepare(struct ctl *c, const Enlace__CtlSend *s, struct enl_header *h,
		struct enl_payload *p, uint8_t **orig, size_t *orig_len,
		struct enl_message **om, char *subject, size_t subject_cap)
{
	struct agent *a = c->a;
	struct enl_keyring kr = keyring(a);
	const struct enl_card *me, *to;
	const struct enl_header *oh;
	char hex[2 * ENL_MSG_ID_LEN + 1], path[2048], reason[300];
	int rc;

	if (s->forward_of.len != ENL_MSG_ID_LEN) {
		ctl_error(c, ENL_E_INVAL, "bad request: forward_of");
		return ENL_E_INVAL;
	}
	enl_hex(s->forward_of.data, ENL_MSG_ID_LEN, hex);
	snprintf(path, sizeof(path), "%s/inbox/%s.env", a->cfg.spool, hex);
	if ((rc = enl_file_read(path, enl_envelope_max_size(&a->lim), orig, orig_len)) != ENL_OK) {
		ctl_error(c, ENL_E_NOT_FOUND, rc == ENL_E_NOT_FOUND
			  ? "no such message in the inbox: only a message received can be forwarded"
			  : enl_strerror(rc));
		return ENL_E_NOT_FOUND;
	}
	rc = enl_envelope_open(*orig, *orig_len, a->me, &kr, &a->lim, (int64_t)time(NULL), om);
	if (rc != ENL_OK) {
		snprintf(reason, sizeof(reason), "the original does not open: %s", enl_strerror(rc));
		ctl_error(c, rc, reason);
		return rc;
	}
	oh = &(*om)->header;
	reason[0] = '\0';
	if (!enl_forward_to_third_parties(h, enl_identity_id(a->me), oh->sender, reason,
					  sizeof(reason)))
		;	/* reason says it */
	else if (oh->handling.tlp == ENL_TLP_RED)
		snprintf(reason, sizeof(reason), "TLP:RED is for its named recipients only: it is "
			 "never forwarded");
	else if (oh->handling.tlp == ENL_TLP_AMBER_STRICT)
		snprintf(reason, sizeof(reason), "TLP:AMBER+STRICT stays inside the recipient "
			 "agency: it is never forwarded");
	else if (oh->handling.onward == ENL_ONWARD_NEVER)
		snprintf(reason, sizeof(reason), "the originator forbids onward sharing (NEVER)");
	pthread_mutex_lock(&a->mu);
	me = enl_directory_find(a->dir, enl_identity_id(a->me));
	for (size_t i = 0; reason[0] == '\0' && oh->handling.tlp == ENL_TLP_AMBER &&
			   i < h->n_recipients; i++) {
		to = enl_directory_find(a->dir, h->recipients[i]);
		if (me == NULL || to == NULL || strcmp(to->country, me->country) != 0)
			snprintf(reason, sizeof(reason), "TLP:AMBER goes only to this agency's own "
				 "country: %s is not of %s", h->recipients[i],
				 me ? me->country : "?");
	}
	pthread_mutex_unlock(&a->mu);
	if (reason[0] != '\0') {
		ctl_error(c, ENL_E_PERMISSION, reason);
		return ENL_E_PERMISSION;
	}
	h->type = ENL_MSG_FORWARD;
	h->has_forward_of = true;
	memcpy(h->forward_of, oh->message_id, ENL_MSG_ID_LEN);
	h->handling = oh->handling;
	if (h->case_ref[0] == '\0')
		snprintf(h->case_ref, sizeof(h->case_ref), "%s", oh->case_ref);
	snprintf(subject, subject_cap, "Fwd: %s", (*om)->payload.subject);
	p->original = *orig;
	p->original_len = *orig_len;
	p->original_key = (*om)->content_key;
	return ENL_OK;
}

/*
 * Puts an envelope in the outbox (durably, never over another). Its
 * file's time orders the outbox (outbox_list): strictly after every one
 * before it, to the nanosecond, even within one tick of the file
 * system's clock, and even if the clock stepped back.
 */
static int
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

static void
ctl_send(struct ctl *c, const Enlace__CtlSend *s)
{
	struct agent *a = c->a;
	struct enl_header *h = calloc(1, sizeof(*h));
	struct enl_attachment *atts = NULL;
	struct enl_payload p = {0};
	struct enl_keyring kr = keyring(a);
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	struct enl_message *om = NULL;
	uint8_t *env = NULL, *orig = NULL;
	size_t len = 0, orig_len = 0;
	char hex[2 * ENL_MSG_ID_LEN + 1], reason[256], fwd_subject[300];
	bool refreshed = false;
	int rc = ENL_E_INVAL;

	if (h == NULL || (s->n_attachments &&
			  (atts = calloc(s->n_attachments, sizeof(*atts))) == NULL)) {
		ctl_error(c, ENL_E_NOMEM, "out of memory");
		goto out;
	}
	if (s->n_to == 0 || s->n_to > ENL_MAX_RECIPIENTS || s->handling == NULL ||
	    strlen(s->case_ref) > ENL_CASE_REF_MAX) {
		ctl_error(c, ENL_E_INVAL, "bad request: recipients, handling or case");
		goto out;
	}
	if (s->forward_of.len == 0 && (s->type < ENLACE__MESSAGE_TYPE__CASE_MESSAGE ||
				       s->type > ENLACE__MESSAGE_TYPE__REPLY)) {
		/* forwards, consent requests and decisions are made here, not sent */
		ctl_error(c, ENL_E_INVAL, "the message type must be case_message, "
			  "fiu_report, request or reply");
		goto out;
	}
	for (size_t i = 0; i < s->n_to; i++) {
		uint8_t pk[32];
		uint32_t v;
		if (!enl_id_valid(s->to[i])) {
			ctl_error(c, ENL_E_INVAL, "a recipient is not a valid agency id");
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->to[j], s->to[i]) == 0) {
				snprintf(reason, sizeof(reason), "%s is named twice", s->to[i]);
				ctl_error(c, ENL_E_INVAL, reason);
				goto out;
			}
		rc = kr.encryption_key(kr.ctx, s->to[i], &v, pk);
		if (rc == ENL_E_UNKNOWN_RECIPIENT && !refreshed) {
			/* an agency newer than this agent's directory, perhaps */
			refreshed = true;
			if (directory_refresh(a) == ENL_OK) {
				kr = keyring(a);
				rc = kr.encryption_key(kr.ctx, s->to[i], &v, pk);
			}
		}
		if (rc != ENL_OK) {
			snprintf(reason, sizeof(reason), "%s: %s", s->to[i], enl_strerror(rc));
			ctl_error(c, rc, reason);
			goto out;
		}
		snprintf(h->recipients[i], sizeof(h->recipients[i]), "%s", s->to[i]);
	}
	h->n_recipients = s->n_to;
	h->type = (enum enl_msg_type)s->type;
	h->handling.tlp = (enum enl_tlp)s->handling->tlp;
	h->handling.onward = (enum enl_onward)s->handling->onward;
	h->handling.evidential = (enum enl_evidential)s->handling->evidential;
	h->reliability = (enum enl_reliability)s->reliability;
	h->assessment = s->assessment;
	h->priority = (enum enl_priority)s->priority;
	snprintf(h->case_ref, sizeof(h->case_ref), "%s", s->case_ref);
	h->expires_at = s->expires_at;
	h->reply_by = s->reply_by;
	if (s->in_reply_to.len == ENL_MSG_ID_LEN) {
		h->has_in_reply_to = true;
		memcpy(h->in_reply_to, s->in_reply_to.data, ENL_MSG_ID_LEN);
	}
	if (s->forward_of.len != 0 &&
	    (rc = forward_prepare(c, s, h, &p, &orig, &orig_len, &om, fwd_subject,
				  sizeof(fwd_subject))) != ENL_OK)
		goto out;
	for (size_t i = 0; i < s->n_attachments; i++) {
		atts[i].name = s->attachments[i]->name;
		atts[i].media_type = s->attachments[i]->media_type;
		atts[i].data = s->attachments[i]->data.data;
		atts[i].len = s->attachments[i]->data.len;
	}
	p.subject = om != NULL && s->subject[0] == '\0' ? fwd_subject : s->subject;
	p.body = s->body;
	p.n_attachments = s->n_attachments;
	p.attachments = atts;
	rc = enl_envelope_seal(a->me, &kr, &a->lim, h, &p, (int64_t)time(NULL), &env, &len);
	if (rc != ENL_OK) {
		if (rc == ENL_E_TOO_LARGE)
			snprintf(reason, sizeof(reason), "the message is %zu bytes, over the "
				 "payload limit of %zu bytes", enl_payload_size(&p),
				 a->lim.max_payload);
		else
			snprintf(reason, sizeof(reason), "cannot seal: %s", enl_strerror(rc));
		ctl_error(c, rc, reason);
		goto out;
	}
	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	if ((rc = outbox_put(a, hex, env, len)) != ENL_OK) {
		snprintf(reason, sizeof(reason), "outbox: %s", enl_strerror(rc));
		ctl_error(c, rc, reason);
		goto out;
	}
	alog("message %s to %zu recipient(s) in the outbox", hex, h->n_recipients);
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (s->wait) {
		int wr;
		ctl_unserialize(c);
		wr = wait_receipt(a, hex, 60);
		if (wr == 0) {
			ctl_receipts_of(c, h->message_id, true);
		} else if (wr == 1) {
			refused_reason(a, hex, reason, sizeof(reason));
			ctl_error(c, ENL_E_PERMISSION, reason);
		} else {
			char waiting[300], why[500];
			pthread_mutex_lock(&a->mu);
			snprintf(waiting, sizeof(waiting), "%s", a->outbox_waiting);
			pthread_mutex_unlock(&a->mu);
			snprintf(why, sizeof(why), "in the outbox, but no receipt from the broker "
				 "within 60 s; it will be sent when the broker answers%s%s",
				 waiting[0] ? "; the broker said: " : "", waiting);
			ctl_error(c, ENL_E_IO, why);
		}
		goto out;
	}
	r.message_id.data = h->message_id;
	r.message_id.len = ENL_MSG_ID_LEN;
	ctl_reply(c, &r);
out:
	free(env);
	free(atts);
	free(h);
	free(orig);
	enl_message_free(om);
}

static bool
parse_hex_name(const char *name, uint8_t id[ENL_MSG_ID_LEN])
{
	char hex[2 * ENL_MSG_ID_LEN + 1];

	if (strlen(name) != 2 * ENL_MSG_ID_LEN + 4 || strcmp(name + 2 * ENL_MSG_ID_LEN, ".env"))
		return false;
	memcpy(hex, name, 2 * ENL_MSG_ID_LEN);
	hex[2 * ENL_MSG_ID_LEN] = '\0';
	return enl_unhex(hex, id, ENL_MSG_ID_LEN);
}

/*
 * What a line of the inbox needs of a message: listing the inbox holds
 * these, not the messages (each up to the payload limit), while it reads
 * the rest.
 */
struct inbox_row {
	struct enl_header header;
	uint8_t hash[ENL_HASH_LEN];
	char *subject;
	size_t n_attachments;
	int64_t received;
};

static int
inbox_row_take(struct inbox_row *row, const struct enl_message *m)
{
	row->header = m->header;
	memcpy(row->hash, m->hash, ENL_HASH_LEN);
	row->n_attachments = m->payload.n_attachments;
	row->subject = strdup(m->payload.subject);
	return row->subject != NULL ? ENL_OK : ENL_E_NOMEM;
}

/* Fills a CtlItem from a row; strings point into it. */
static void
item_fill(Enlace__CtlItem *it, Enlace__Handling *hd, const struct inbox_row *m,
	  const struct enl_directory *dir, char fp[ENL_FINGERPRINT_LEN], int64_t received)
{
	const struct enl_header *h = &m->header;
	const struct enl_card *card = enl_directory_find(dir, h->sender);
	const struct enl_revocation *rv = enl_directory_revoked(dir, h->sender,
								h->sender_key_version);

	enlace__ctl_item__init(it);
	enlace__handling__init(hd);
	it->message_id.data = (uint8_t *)h->message_id;
	it->message_id.len = ENL_MSG_ID_LEN;
	it->sender = (char *)h->sender;
	it->type = (Enlace__MessageType)h->type;
	hd->tlp = (Enlace__Tlp)h->handling.tlp;
	hd->onward = (Enlace__Onward)h->handling.onward;
	hd->evidential = (Enlace__Evidential)h->handling.evidential;
	it->handling = hd;
	it->case_ref = (char *)h->case_ref;
	it->created_at = h->created_at;
	it->received_at = received;
	it->subject = m->subject;
	it->attachments = (uint32_t)m->n_attachments;
	it->sender_name = card ? (char *)card->name : "";
	if (card != NULL && enl_card_key(card, h->sender_key_version) != NULL)
		enl_fingerprint(enl_card_key(card, h->sender_key_version)->sign_pk, fp);
	else
		fp[0] = '\0';
	it->sender_fingerprint = fp;
	it->sender_key_version = h->sender_key_version;
	it->reliability = (Enlace__Reliability)h->reliability;
	it->assessment = h->assessment;
	it->priority = (Enlace__Priority)h->priority;
	it->expires_at = h->expires_at;
	it->reply_by = h->reply_by;
	it->envelope_hash.data = (uint8_t *)m->hash;
	it->envelope_hash.len = ENL_HASH_LEN;
	if (rv != NULL) {
		it->sender_key_revoked_at = rv->revoked_at;
		it->sender_key_revocation = (char *)rv->reason;
	}
}

/* Opens inbox/name; *m on success. The inbox holds only what verified. */
static int
inbox_open(struct agent *a, const char *name, struct enl_message **m, int64_t *received)
{
	char path[2048];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	struct enl_keyring kr = keyring_ever(a);
	int rc;

	spool_path(a, path, sizeof(path), "inbox", name);
	if ((rc = enl_file_read(path, enl_envelope_max_size(&a->lim), &buf, &len)) != ENL_OK)
		return rc;
	*received = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
	/* Expiry was checked on arrival; reading later is allowed. */
	rc = enl_envelope_open(buf, len, a->me, &kr, &a->lim, 1, m);
	free(buf);
	return rc;
}

static void
ctl_inbox(struct ctl *c, const uint8_t *only)
{
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	struct enl_message *one = NULL;	/* `only`, whole */
	struct inbox_row *rows = NULL, orig_row = {0};
	Enlace__CtlItem *items = NULL, **ptrs = NULL;
	Enlace__Handling *hds = NULL;
	Enlace__Payload pl = ENLACE__PAYLOAD__INIT;
	Enlace__Attachment *atts = NULL, **aptrs = NULL;
	Enlace__CtlItem orig_item;
	Enlace__Handling orig_hd;
	Enlace__Payload orig_pl = ENLACE__PAYLOAD__INIT;
	struct enl_message *orig = NULL;
	struct enl_keyring kr = keyring_ever(a);
	char (*fps)[ENL_FINGERPRINT_LEN] = NULL, dir[1100], **rcpts = NULL;
	char orig_fp[ENL_FINGERPRINT_LEN];
	size_t n = 0, cap = 0;
	bool nomem = false;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/inbox", a->cfg.spool);
	if ((d = opendir(dir)) == NULL) {
		ctl_error(c, ENL_E_IO, "inbox folder missing");
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct enl_message *m = NULL;
		uint8_t id[ENL_MSG_ID_LEN];
		int64_t received = 0;
		if (!parse_hex_name(e->d_name, id) ||
		    (only != NULL && memcmp(id, only, ENL_MSG_ID_LEN) != 0))
			continue;
		if (n == cap) {
			struct inbox_row *more = realloc(rows, (cap ? 2 * cap : 16) * sizeof(*rows));
			if (more == NULL) {
				nomem = true;
				break;
			}
			rows = more;
			cap = cap ? 2 * cap : 16;
		}
		if (inbox_open(a, e->d_name, &m, &received) != ENL_OK)
			continue;
		if (inbox_row_take(&rows[n], m) != ENL_OK) {
			enl_message_free(m);
			nomem = true;
			break;
		}
		rows[n++].received = received;
		if (only != NULL)
			one = m;
		else
			enl_message_free(m);
	}
	closedir(d);
	/* the items point into rows: filled once rows no longer move */
	if (!nomem && n > 0 && ((items = calloc(n, sizeof(*items))) == NULL ||
				(ptrs = calloc(n, sizeof(*ptrs))) == NULL ||
				(hds = calloc(n, sizeof(*hds))) == NULL ||
				(fps = calloc(n, sizeof(*fps))) == NULL))
		nomem = true;
	pthread_mutex_lock(&a->mu);	/* the directory stays put while we read it */
	for (size_t i = 0; !nomem && i < n; i++) {
		item_fill(&items[i], &hds[i], &rows[i], a->dir, fps[i], rows[i].received);
		ptrs[i] = &items[i];
	}
	if (nomem) {
		pthread_mutex_unlock(&a->mu);
		ctl_error(c, ENL_E_NOMEM, "out of memory");
		goto out;
	}
	if (only != NULL && n == 0) {
		pthread_mutex_unlock(&a->mu);
		ctl_error(c, ENL_E_NOT_FOUND, "no such message in the inbox");
		goto out;
	}
	if (one != NULL) {
		const struct enl_payload *p = &one->payload;
		atts = calloc(p->n_attachments + 1, sizeof(*atts));
		aptrs = calloc(p->n_attachments + 1, sizeof(*aptrs));
		for (size_t i = 0; atts && aptrs && i < p->n_attachments; i++) {
			enlace__attachment__init(&atts[i]);
			atts[i].name = (char *)p->attachments[i].name;
			atts[i].media_type = (char *)p->attachments[i].media_type;
			atts[i].data.data = (uint8_t *)p->attachments[i].data;
			atts[i].data.len = p->attachments[i].len;
			aptrs[i] = &atts[i];
		}
		pl.subject = (char *)p->subject;
		pl.body = (char *)p->body;
		pl.n_attachments = atts && aptrs ? p->n_attachments : 0;
		pl.attachments = aptrs;
		items[0].payload = &pl;
		rcpts = calloc(one->header.n_recipients + 1, sizeof(*rcpts));
		for (size_t i = 0; rcpts && i < one->header.n_recipients; i++)
			rcpts[i] = one->header.recipients[i];
		items[0].n_recipients = rcpts ? one->header.n_recipients : 0;
		items[0].recipients = rcpts;
		if (one->header.has_forward_of) {
			items[0].forward_of.data = one->header.forward_of;
			items[0].forward_of.len = ENL_MSG_ID_LEN;
		}
		/* a forward: the chain of custody, the original checked again */
		if (one->payload.original != NULL && one->payload.original_key != NULL &&
		    enl_envelope_open_with_key(one->payload.original, one->payload.original_len,
					       one->payload.original_key, &kr, &a->lim, 0,
					       &orig) == ENL_OK) {
			if (inbox_row_take(&orig_row, orig) == ENL_OK)
				item_fill(&orig_item, &orig_hd, &orig_row, a->dir, orig_fp, 0);
			orig_pl.subject = (char *)orig->payload.subject;
			orig_pl.body = (char *)orig->payload.body;
			orig_item.payload = &orig_pl;
			if (orig_row.subject != NULL)
				items[0].original = &orig_item;
		}
	}
	pthread_mutex_unlock(&a->mu);
	r.n_items = n;
	r.items = ptrs;
	ctl_reply(c, &r);
out:
	for (size_t i = 0; i < n; i++)
		free(rows[i].subject);
	free(rows);
	free(orig_row.subject);
	enl_message_free(one);
	free(items);
	free(ptrs);
	free(hds);
	free(fps);
	free(atts);
	free(aptrs);
	free(rcpts);
	enl_message_free(orig);
}

/*
 * Checks that a receipt's message is in the broker's audit log: the
 * checkpoint is signed by the broker, the entry is the message's SUBMITTED
 * record, and its inclusion proof leads to the checkpoint's root.
 * Called with a->mu held.
 */
static bool
receipt_in_log(struct agent *a, const Enlace__ReceiptBody *b, uint64_t *size)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	Enlace__AuditEntry *e = NULL;
	enl_mhash leaf, proof[ENL_MERKLE_MAX_PROOF];
	size_t tl = 0;
	bool ok;

	if (strcmp(b->broker, a->cfg.broker_id) != 0 || !broker_verifier(a, &k) ||
	    b->n_inclusion > ENL_MERKLE_MAX_PROOF)
		return false;
	if (enl_note_open(b->checkpoint, strlen(b->checkpoint), k.v, k.n, &tl, NULL) != ENL_OK ||
	    enl_checkpoint_parse(b->checkpoint, tl, &cp) != ENL_OK ||
	    strcmp(cp.origin, k.v[0].name) != 0)
		return false;
	for (size_t i = 0; i < b->n_inclusion; i++) {
		if (b->inclusion[i].len != ENL_MERKLE_HASH_LEN)
			return false;
		memcpy(proof[i], b->inclusion[i].data, ENL_MERKLE_HASH_LEN);
	}
	if (enl_pb_unpack(&enlace__audit_entry__descriptor, b->entry.data, b->entry.len,
			  ENL_TLOG_ENTRY_MAX, (ProtobufCMessage **)&e) != ENL_OK)
		return false;
	ok = e->event == ENLACE__AUDIT_EVENT__SUBMITTED &&
	     e->message_id.len == ENL_MSG_ID_LEN && b->message_id.len == ENL_MSG_ID_LEN &&
	     memcmp(e->message_id.data, b->message_id.data, ENL_MSG_ID_LEN) == 0 &&
	     e->envelope_hash.len == ENL_HASH_LEN && b->envelope_hash.len == ENL_HASH_LEN &&
	     memcmp(e->envelope_hash.data, b->envelope_hash.data, ENL_HASH_LEN) == 0;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	enl_merkle_leaf_hash(b->entry.data, b->entry.len, leaf);
	ok = ok && enl_merkle_inclusion_verify(b->log_index, cp.size, leaf,
					       (const enl_mhash *)proof, b->n_inclusion,
					       cp.root) == ENL_OK;
	*size = cp.size;
	return ok;
}

/* Checks a receipt's broker signature and each ack signature, and answers
 * with the recipients' states. */
static void
reply_receipt(struct ctl *c, const Enlace__Signed *sg, const char *note)
{
	char why[200] = "";
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	Enlace__ReceiptBody *b = NULL;
	struct enl_keyring kr = keyring(a);
	const struct enl_card *bc;
	char alarm[512];
	uint8_t pk[32];
	bool ok;

	if (enl_pb_unpack(&enlace__receipt_body__descriptor, sg->body.data, sg->body.len,
			  1 << 20, (ProtobufCMessage **)&b) != ENL_OK) {
		ctl_error(c, ENL_E_MALFORMED, "the broker's receipt does not parse");
		return;
	}
	pthread_mutex_lock(&a->mu);
	/* signed by a version of the broker's key: a receipt kept from before
	 * the broker rotated its key is signed by the older one */
	ok = false;
	if (sg->signature.len == 64 && strcmp(b->broker, a->cfg.broker_id) == 0 &&
	    (bc = enl_directory_find(a->dir, b->broker)) != NULL)
		for (size_t k = 0; k < bc->n_keys && !ok; k++)
			ok = kr.signing_key(kr.ctx, b->broker, bc->keys[k].version, pk) == ENL_OK &&
			     enl_verify_labeled(pk, ENL_LABEL_RECEIPT, sg->body.data, sg->body.len,
						sg->signature.data) == ENL_OK;
	for (size_t i = 0; ok && i < b->n_recipients; i++) {
		const Enlace__RecipientState *rs = b->recipients[i];
		const struct enl_card *card = enl_directory_find(a->dir, rs->recipient);
		uint8_t msg[ENL_ACK_MSG_LEN];
		/* a message to the broker itself (a consent decision): the
		 * broker's signature on the receipt says it took it in */
		if (rs->state != ENLACE__DELIVERY_STATE__ACKED || strcmp(rs->recipient, b->broker) == 0)
			continue;
		ok = card != NULL && rs->ack_signature.len == 64 && b->message_id.len == ENL_MSG_ID_LEN &&
		     b->envelope_hash.len == ENL_HASH_LEN;
		if (!ok)
			break;
		enl_ack_message(b->message_id.data, b->envelope_hash.data, rs->ack_time, msg);
		/* the ack was made with a version of the recipient's key, not
		 * revoked when the broker took it */
		bool any = false;
		for (size_t k = 0; ok && k < card->n_keys && !any; k++) {
			const struct enl_revocation *rv;
			if (enl_verify_labeled(card->keys[k].sign_pk, ENL_LABEL_ACK, msg, sizeof(msg),
					       rs->ack_signature.data) != ENL_OK)
				continue;
			any = true;
			rv = enl_directory_revoked(a->dir, rs->recipient, card->keys[k].version);
			if (rv != NULL && rv->revoked_at <= rs->acked_at) {
				char t[32];
				enl_time_format(rv->revoked_at, t);
				snprintf(why, sizeof(why), "the acknowledgement of %s is signed by a "
					 "key revoked at %s, before it", rs->recipient, t);
				ok = false;
			}
		}
		ok = ok && any;
	}
	if (why[0] != '\0' && (note == NULL || note[0] == '\0'))
		note = why;
	r.log_verified = ok && receipt_in_log(a, b, &r.checkpoint_size);
	pthread_mutex_unlock(&a->mu);
	if (r.log_verified) {
		pthread_mutex_lock(&a->log_mu);
		if (checkpoint_check(a, b->checkpoint) == ENL_E_BAD_SIGNATURE)
			r.log_verified = false;
		pthread_mutex_unlock(&a->log_mu);
	}
	pthread_mutex_lock(&a->mu);
	snprintf(alarm, sizeof(alarm), "%s", a->alarm);
	pthread_mutex_unlock(&a->mu);
	r.log_alarm = alarm;
	if (!ok)
		alog("ALARM: a receipt from the broker does not verify");
	else if (!r.log_verified)
		alog("ALARM: the broker's receipt is not backed by its audit log");
	r.receipt_verified = ok;
	r.log_index = b->log_index;
	r.n_recipients = b->n_recipients;
	r.recipients = b->recipients;
	r.message_id = b->message_id;
	r.envelope_hash = b->envelope_hash;
	r.received_at = b->received_at;
	r.note = (char *)note;
	ctl_reply(c, &r);
	protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void
ctl_receipts_of(struct ctl *c, const uint8_t *id, bool local_only)
{
	struct agent *a = c->a;
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__ReceiptsReq rr = ENLACE__RECEIPTS_REQ__INIT;
	Enlace__Response *resp = NULL;
	Enlace__Signed *sg = NULL;
	struct enl_keyring kr = keyring(a);
	char hex[2 * ENL_MSG_ID_LEN + 1], kept[2048], where[2048], note[300] = "";
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	snprintf(kept, sizeof(kept), "%s/sent/%s.receipt", a->cfg.spool, hex);
	snprintf(where, sizeof(where), "%s/outbox/%s.env", a->cfg.spool, hex);
	if (access(kept, F_OK) != 0 && access(where, F_OK) == 0) {
		ctl_error(c, ENL_E_NOT_FOUND, "still in the outbox: the broker has not "
			  "receipted it yet");
		return;
	}
	snprintf(where, sizeof(where), "%s/failed/%s.env", a->cfg.spool, hex);
	if (access(kept, F_OK) != 0 && access(where, F_OK) == 0) {
		refused_reason(a, hex, note, sizeof(note));	/* the broker's answer, kept */
		ctl_error(c, ENL_E_PERMISSION, note);
		return;
	}
	if (!local_only) {
		rr.message_id.data = (uint8_t *)id;
		rr.message_id.len = ENL_MSG_ID_LEN;
		req.body_case = ENLACE__REQUEST__BODY_RECEIPTS;
		req.receipts = &rr;
		if (out_take(a, 5000)) {
			rc = conn_request(&a->out, &kr, &req, 10000, &resp);
			pthread_mutex_unlock(&a->out_mu);
		} else {
			rc = ENL_E_IO;
			snprintf(note, sizeof(note), "the connection to the broker is busy "
				 "(a large message, or a broker that does not answer)");
		}
		if (rc == ENL_OK && resp->status != ENL_OK) {
			ctl_error(c, resp->status, resp->reason);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return;
		}
		if (rc == ENL_OK && resp->receipt != NULL) {
			reply_receipt(c, resp->receipt, "");
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return;
		}
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (note[0] == '\0' && rc == ENL_E_IO)
			snprintf(note, sizeof(note), "the broker did not answer");
		else if (note[0] == '\0')
			snprintf(note, sizeof(note), "the broker did not answer (%s)",
				 enl_strerror(rc));
	}
	/* the receipt kept at sending time */
	if (enl_file_read(kept, 1 << 20, &buf, &len) == ENL_OK &&
	    enl_pb_unpack(&enlace__signed__descriptor, buf, len, 1 << 20,
			  (ProtobufCMessage **)&sg) == ENL_OK) {
		if (note[0] != '\0')
			snprintf(note + strlen(note), sizeof(note) - strlen(note),
				 ": this is the receipt kept when the message was sent");
		reply_receipt(c, sg, note);
		protobuf_c_message_free_unpacked(&sg->base, NULL);
	} else if (note[0] != '\0') {
		ctl_error(c, ENL_E_IO, note);
	} else {
		ctl_error(c, ENL_E_NOT_FOUND, "no such message sent by this agency");
	}
	free(buf);
}

/* ---- consent requests (the broker asks this agency, as originator) ---- */

struct consent_item {
	Enlace__ConsentRequest *req;
	int64_t requested_at;
	char decided[16];
};

/* The consent requests in the inbox (only `only`, if not NULL). */
static size_t
consents_find(struct agent *a, const uint8_t *only, struct consent_item **out)
{
	struct enl_keyring kr = keyring(a);
	struct consent_item *items = NULL;
	size_t n = 0;
	char dir[1100];
	struct dirent *e;
	DIR *d;

	*out = NULL;
	snprintf(dir, sizeof(dir), "%s/inbox", a->cfg.spool);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct enl_message *m = NULL;
		uint8_t *buf = NULL;
		size_t len = 0;
		char path[2048];
		Enlace__ConsentRequest *cr = NULL;
		if (strlen(e->d_name) != 2 * ENL_MSG_ID_LEN + 4)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (enl_file_read(path, enl_envelope_max_size(&a->lim), &buf, &len) != ENL_OK)
			continue;
		if (enl_envelope_open(buf, len, a->me, &kr, &a->lim, 0, &m) == ENL_OK &&
		    m->header.type == ENL_MSG_CONSENT_REQUEST &&
		    strcmp(m->header.sender, a->cfg.broker_id) == 0) {
			for (size_t i = 0; i < m->payload.n_attachments && cr == NULL; i++)
				if (strcmp(m->payload.attachments[i].name, "consent-request.pb") == 0 &&
				    enl_pb_unpack(&enlace__consent_request__descriptor,
						  m->payload.attachments[i].data,
						  m->payload.attachments[i].len, 4096,
						  (ProtobufCMessage **)&cr) != ENL_OK)
					cr = NULL;
		}
		if (cr != NULL && (cr->request_id.len != ENL_MSG_ID_LEN ||
				   (only != NULL && memcmp(cr->request_id.data, only,
							   ENL_MSG_ID_LEN) != 0))) {
			protobuf_c_message_free_unpacked(&cr->base, NULL);
			cr = NULL;
		}
		if (cr != NULL) {
			struct consent_item *ni = realloc(items, (n + 1) * sizeof(*ni));
			if (ni == NULL) {
				protobuf_c_message_free_unpacked(&cr->base, NULL);
			} else {
				char hex[33], dpath[2048];
				uint8_t *db = NULL;
				size_t dl = 0;
				items = ni;
				items[n].req = cr;
				items[n].requested_at = m->header.created_at;
				items[n].decided[0] = '\0';
				enl_hex(cr->request_id.data, ENL_MSG_ID_LEN, hex);
				snprintf(dpath, sizeof(dpath), "%s/consent/%s", a->cfg.spool, hex);
				if (enl_file_read(dpath, 64, &db, &dl) == ENL_OK) {
					snprintf(items[n].decided, sizeof(items[n].decided), "%.*s",
						 (int)strcspn((char *)db, "\n"), (const char *)db);
					free(db);
				}
				n++;
			}
		}
		enl_message_free(m);
		free(buf);
	}
	closedir(d);
	*out = items;
	return n;
}

static void
consents_free(struct consent_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&items[i].req->base, NULL);
	free(items);
}

static void
ctl_consents(struct ctl *c)
{
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	struct consent_item *items = NULL;
	size_t n = consents_find(a, NULL, &items);
	Enlace__CtlConsent *cs = calloc(n + 1, sizeof(*cs));
	Enlace__CtlConsent **ptrs = calloc(n + 1, sizeof(*ptrs));

	if (cs == NULL || ptrs == NULL) {
		ctl_error(c, ENL_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const Enlace__ConsentRequest *q = items[i].req;
		enlace__ctl_consent__init(&cs[i]);
		cs[i].request_id = q->request_id;
		cs[i].original_id = q->original_id;
		cs[i].original_hash = q->original_hash;
		cs[i].forward_id = q->forward_id;
		cs[i].forwarder = q->forwarder;
		cs[i].recipient = q->recipient;
		cs[i].expires_at = q->expires_at;
		cs[i].decided = items[i].decided;
		cs[i].requested_at = items[i].requested_at;
		ptrs[i] = &cs[i];
	}
	r.n_consents = n;
	r.consents = ptrs;
	ctl_reply(c, &r);
out:
	free(cs);
	free(ptrs);
	consents_free(items, n);
}

/* The originator's decision: an envelope it signs to the broker, bound to
 * the original (id and hash), the forward and the recipient. */
static void
ctl_decide(struct ctl *c, const Enlace__CtlDecide *dc)
{
	struct agent *a = c->a;
	Enlace__ConsentDecision d = ENLACE__CONSENT_DECISION__INIT;
	struct consent_item *items = NULL;
	struct enl_header *h = calloc(1, sizeof(*h));
	struct enl_keyring kr = keyring(a);
	struct enl_attachment att;
	struct enl_payload p;
	uint8_t *db = NULL, *env = NULL;
	size_t n = 0, dl = 0, len = 0;
	char hex[33], rhex[33], path[2048], reason[400], subject[200];
	int rc, wr;

	if (h == NULL || dc->request_id.len != ENL_MSG_ID_LEN ||
	    !enl_text_valid(dc->note, 1000)) {
		ctl_error(c, ENL_E_INVAL, "bad request: a request id is 32 hex digits");
		goto out;
	}
	if ((n = consents_find(a, dc->request_id.data, &items)) == 0) {
		ctl_error(c, ENL_E_NOT_FOUND, "no such consent request in the inbox");
		goto out;
	}
	if (items[0].decided[0] != '\0') {
		snprintf(reason, sizeof(reason), "this request was decided already (%s)",
			 items[0].decided);
		ctl_error(c, ENL_E_EXISTS, reason);
		goto out;
	}
	d.request_id = items[0].req->request_id;
	d.original_id = items[0].req->original_id;
	d.original_hash = items[0].req->original_hash;
	d.forward_id = items[0].req->forward_id;
	d.recipient = items[0].req->recipient;
	d.grant = dc->grant;
	d.note = dc->note;
	if ((rc = enl_pb_pack(&d.base, &db, &dl)) != ENL_OK) {
		ctl_error(c, rc, enl_strerror(rc));
		goto out;
	}
	att = (struct enl_attachment){"consent-decision.pb", "application/x-enlace-consent", db, dl};
	snprintf(subject, sizeof(subject), "Consent %s: forward to %s", dc->grant ? "granted" : "denied",
		 items[0].req->recipient);
	memset(&p, 0, sizeof(p));
	p.subject = subject;
	p.body = dc->note;
	p.n_attachments = 1;
	p.attachments = &att;
	snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s", a->cfg.broker_id);
	h->n_recipients = 1;
	h->type = ENL_MSG_CONSENT_DECISION;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_NEVER;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	rc = enl_envelope_seal(a->me, &kr, &a->lim, h, &p, (int64_t)time(NULL), &env, &len);
	if (rc != ENL_OK) {
		snprintf(reason, sizeof(reason), "cannot seal the decision: %s", enl_strerror(rc));
		ctl_error(c, rc, reason);
		goto out;
	}
	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	if ((rc = outbox_put(a, hex, env, len)) != ENL_OK) {
		ctl_error(c, rc, "outbox: cannot write the decision");
		goto out;
	}
	alog("consent decision %s (%s) in the outbox", hex, dc->grant ? "grant" : "deny");
	/* Decided once it is in the outbox, which sends it however long the
	 * broker takes: a second decision on the request is refused from now
	 * on, and the others may go on while this one waits. */
	enl_hex(dc->request_id.data, ENL_MSG_ID_LEN, rhex);
	snprintf(path, sizeof(path), "%s/consent/%s", a->cfg.spool, rhex);
	snprintf(reason, sizeof(reason), "%s\n", dc->grant ? "granted" : "denied");
	if (enl_file_write(path, (const uint8_t *)reason, strlen(reason), 0600, true) != ENL_OK)
		alog("%s: cannot record the decision", path);
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	ctl_unserialize(c);
	wr = wait_receipt(a, hex, 60);
	if (wr == 1) {	/* the broker did not take it (expired, say): not decided here */
		if (unlink(path) != 0)
			alog("%s: cannot remove the decision the broker refused", path);
		refused_reason(a, hex, reason, sizeof(reason));
		ctl_error(c, ENL_E_PERMISSION, reason);
		goto out;
	}
	if (wr != 0) {
		ctl_error(c, ENL_E_IO, "in the outbox, but no receipt from the broker within 60 s; "
			  "it will be sent when the broker answers");
		goto out;
	}
	ctl_receipts_of(c, h->message_id, true);
out:
	free(db);
	free(env);
	free(h);
	consents_free(items, n);
}

static void
ctl_status(struct ctl *c)
{
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	Enlace__CtlStatus s = ENLACE__CTL_STATUS__INIT;
	char last_error[256], alarm[512], waiting[300];

	pthread_mutex_lock(&a->mu);
	s.connected = a->connected;
	snprintf(waiting, sizeof(waiting), "%s", a->outbox_waiting);
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
	r.agent = &s;
	ctl_reply(c, &r);
}

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
	Enlace__CtlRequest *req = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	/* a client that does not send its request (or read the answer) in
	 * time loses its connection, not a worker */
	control_timeouts(c->fd, 30000, 60000);
	rc = control_read(c->fd, enl_envelope_max_size(&a->lim) * 2, &buf, &len);
	if (rc == ENL_OK)
		rc = enl_pb_unpack(&enlace__ctl_request__descriptor, buf, len, len,
				   (ProtobufCMessage **)&req);
	free(buf);
	if (rc == ENL_OK) {
		ctl_dispatch(c, req);
		protobuf_c_message_free_unpacked(&req->base, NULL);
	} else if (rc != ENL_E_IO) {
		ctl_error(c, rc, rc == ENL_E_TOO_LARGE ? "control request over the limit"
						       : "malformed control request");
	}
	close(c->fd);
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
		if ((c->fd = accept4(a->ctl_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		ctl_serve(c);
	}
	return NULL;
}

/* Serves the control socket until the agent stops: CTL_WORKERS requests
 * at once, this thread one of the workers. */
static void
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

/* ---- start and stop ---- */

/* True if a process listens on the control socket `path`: taking it over
 * would send one agency's analysts to another agency's agent. */
static bool
control_in_use(const char *path)
{
	int fd;

	if (control_dial(path, 1000, &fd) != 0)
		return false;	/* nothing there, or a file a stopped agent left */
	close(fd);
	return true;
}

static struct agent *the_agent;	/* for the signal handler only */

static void
on_signal(int sig)
{
	(void)sig;
	if (the_agent != NULL)
		the_agent->stopping = 1;
}

static int
agent_load(struct agent *a, const char *config)
{
	char err[1200], path[1100];
	struct enl_dir_check chk = {a->authority_pk, 0, (int64_t)time(NULL)};
	const struct enl_card *broker;
	struct stat st;
	int rc;

	a->cfg.max_payload = ENL_DEFAULT_MAX_PAYLOAD;
	a->cfg.fetch_wait_ms = 25000;
	a->cfg.log_poll_ms = 10000;
	if (enl_config_parse(config, config_keys, &a->cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "enlace-agent: %s\n", err);
		return -1;
	}
	a->lim.max_payload = a->cfg.max_payload;
	if ((rc = enl_authority_pub_read(a->cfg.authority_pub, a->authority_pk)) != ENL_OK) {
		alog("%s: %s", a->cfg.authority_pub, enl_strerror(rc));
		return -1;
	}
	if ((rc = enl_directory_load(a->cfg.directory, &chk, &a->dir)) != ENL_OK) {
		alog("%s: %s", a->cfg.directory, enl_strerror(rc));
		return -1;
	}
	rc = enl_keydir_load(a->cfg.key_dir, a->cfg.passphrase_file,
			     "(set passphrase_file for an encrypted key)", &a->me, err, sizeof(err));
	if (rc != ENL_OK) {
		alog("%s", err);
		return -1;
	}
	if (enl_directory_find(a->dir, enl_identity_id(a->me)) == NULL) {
		alog("%s is not in the directory %s", enl_identity_id(a->me), a->cfg.directory);
		return -1;
	}
	if ((broker = enl_directory_find(a->dir, a->cfg.broker_id)) == NULL ||
	    broker->kind != ENL_KIND_BROKER) {
		alog("broker_id %s: the directory %s has no BROKER card of that id",
		     a->cfg.broker_id, a->cfg.directory);
		return -1;
	}
	snprintf(path, sizeof(path), "%s", a->cfg.control);
	if (stat(dirname(path), &st) != 0 || !S_ISDIR(st.st_mode)) {
		alog("control %s: its folder %s does not exist", a->cfg.control, path);
		return -1;
	}
	for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", a->cfg.spool, spool_subs[i]);
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			alog("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	/* the outbox's order goes on after its newest file */
	{
		char **names = NULL;
		size_t n = outbox_list(a, &names);
		if (n > 0) {
			snprintf(path, sizeof(path), "%s/outbox/%s", a->cfg.spool, names[n - 1]);
			if (stat(path, &st) == 0)
				a->last_queued = st.st_mtim;
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return 0;
}

static void
agent_fini(struct agent *a)
{
	conn_close(&a->out);
	conn_close(&a->in);
	enl_identity_free(a->me);
	enl_directory_free(a->dir);
	for (size_t i = 0; i < a->n_old; i++)
		enl_directory_free(a->old_dirs[i]);
	free(a->old_dirs);
}

int
main(int argc, char **argv)
{
	static const char usage[] =
		"usage: enlace-agent --config FILE [--check-config]\n\n"
		"Runs one agency's daemon (see examples/agent.conf).\n";
	static struct agent a;
	const char *config = NULL;
	bool check = false;
	pthread_t sender, fetcher;
	struct sigaction sa;
	int rc, ret, lock_fd = -1;
	long holder = 0;

	if ((ret = enl_daemon_args(argc, argv, "enlace-agent", usage, &config, &check)) >= 0)
		return ret;
	ret = 1;
	enl_tune_malloc();
	if (enl_init() != ENL_OK)
		return 1;
	pthread_mutex_init(&a.mu, NULL);
	pthread_mutex_init(&a.out_mu, NULL);
	pthread_mutex_init(&a.ctl_mu, NULL);
	a.ctl_fd = -1;
	pthread_mutex_init(&a.dir_mu, NULL);
	pthread_mutex_init(&a.log_mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	if (agent_load(&a, config) != 0)
		goto out;
	if (check) {
		printf("%s: valid; agency %s, directory serial %" PRIu64 "\n", config,
		       enl_identity_id(a.me), enl_directory_serial(a.dir));
		ret = 0;
		goto out;
	}
	if ((rc = enl_dir_lock(a.cfg.spool, &lock_fd, &holder)) != ENL_OK) {
		if (rc == ENL_E_EXISTS)
			alog("%s: in use by another enlace-agent (pid %ld); one agent per spool",
			     a.cfg.spool, holder);
		else
			alog("%s/lock: %s", a.cfg.spool, enl_strerror(rc));
		goto out;
	}
	/* held alone now: what a crash left half written goes */
	for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++) {
		char sub[1100];
		size_t n = 0;
		snprintf(sub, sizeof(sub), "%s%s", a.cfg.spool, spool_subs[i]);
		if (enl_dir_sweep(sub, &n) == ENL_OK && n > 0)
			alog("%s: removed %zu temporary file(s) a stop left half written", sub, n);
	}
	log_state_load(&a);
	a.shown_held = a.held.size;
	conn_init(&a.out, a.cfg.broker, a.cfg.broker_id, a.me, a.cfg.max_payload);
	conn_init(&a.in, a.cfg.broker, a.cfg.broker_id, a.me, a.cfg.max_payload);
	conn_set_directory(&a.out, held_serial, welcome_directory, &a);
	conn_set_directory(&a.in, held_serial, welcome_directory, &a);
	the_agent = &a;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (control_in_use(a.cfg.control)) {
		alog("control %s: another agent answers on it; give each agent its own",
		     a.cfg.control);
		goto out;
	}
	if (control_listen(a.cfg.control, &a.ctl_fd) != 0) {
		alog("control socket %s: %s", a.cfg.control, strerror(errno));
		goto out;
	}
	if (pthread_create(&sender, NULL, sender_main, &a) != 0 ||
	    pthread_create(&fetcher, NULL, fetcher_main, &a) != 0) {
		alog("cannot start threads");
		goto out;
	}
	pthread_setname_np(sender, "enl:sender");
	pthread_setname_np(fetcher, "enl:fetcher");
	alog("agent %s ready; broker %s at %s; control %s", enl_identity_id(a.me),
	     a.cfg.broker_id, a.cfg.broker, a.cfg.control);
	control_run(&a);
	a.stopping = 1;
	pthread_mutex_lock(&a.mu);
	pthread_cond_broadcast(&a.cv);
	pthread_mutex_unlock(&a.mu);
	close(a.ctl_fd);
	unlink(a.cfg.control);	/* `enlace` then says the agent is not running */
	a.ctl_fd = -1;
	/* A long poll may be waiting: closing its socket ends it. */
	if (a.in.open)
		nng_close(a.in.sock);
	pthread_join(sender, NULL);
	pthread_join(fetcher, NULL);
	alog("stopped");
	ret = 0;
out:
	if (a.ctl_fd >= 0)
		close(a.ctl_fd);
	agent_fini(&a);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}
