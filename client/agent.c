/*
 * enlace-agent: one agency's daemon.
 *
 * Its threads: the sender submits what waits in outbox/ (one session),
 * the fetcher long-polls the broker for incoming envelopes (a second
 * session), and the control workers (agent_ctl.c) answer the `enlace`
 * command line on a local socket. Every file is written durably (new file, fsync, rename,
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
#include <malloc.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"

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


/* The spool's folders. */
static const char *const spool_subs[] = {"", "/outbox", "/sent", "/inbox", "/refused",
					 "/failed", "/consent"};


void
alog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enl_logv("enlace-agent", fmt, ap);
	va_end(ap);
}

void
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

size_t
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
bool
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
	if (broker_away(a) || !out_take(a, 5000))
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
int
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
	if (resp->status != ENL_OK && resp->status != ENL_E_INVAL) {
		/* a broker that cannot answer now (its disk full, say) proves
		 * nothing: only a proof that fails, or a size it no longer has
		 * (ENL_E_INVAL), raises the alarm */
		alog("the broker could not prove its log of %" PRIu64 " entries extends the one of "
		     "%" PRIu64 " now (%s); asked again later", hi.size, lo.size, resp->reason);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return ENL_E_IO;
	}
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


/* Every receipt's SUBMITTED entry must be in the broker's log, under a
 * checkpoint consistent with the ones held. */
static void
receipt_audit(struct agent *a, const Enlace__SignedReceipt *sg, const char *what)
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
	if (rc == ENL_OK && (m->header.has_forward_of || m->header.type == ENL_MSG_FORWARD ||
			     m->payload.original != NULL) &&
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
			char t[32];
			alog("%s: %s", path, enl_strerror(rc));
			enl_time_format((int64_t)time(NULL), t);
			pthread_mutex_lock(&a->mu);
			snprintf(a->inbox_blocked, sizeof(a->inbox_blocked), "cannot keep incoming "
				 "messages: %s (since %s); they wait at the broker", enl_strerror(rc),
				 a->inbox_blocked[0] ? "earlier" : t);
			pthread_mutex_unlock(&a->mu);
			enl_message_free(m);
			return rc;
		}
		alog("received message %s from %s", hex, m->header.sender);
	}
	pthread_mutex_lock(&a->mu);
	a->inbox_blocked[0] = '\0';	/* kept: the inbox takes messages again */
	pthread_mutex_unlock(&a->mu);
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
		rc = conn_request_lent(&a->in, &kr, &req, (int)a->cfg.fetch_wait_ms + 15000,
				       &resp);
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
			conn_response_free(&a->in, resp);
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

/*
 * Checks that a receipt's message is in the broker's audit log: the
 * checkpoint is signed by the broker, the entry is the message's SUBMITTED
 * record, and its inclusion proof leads to the checkpoint's root.
 * Called with a->mu held.
 */
bool
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
	inbox_cache_free(a->inbox_cache);
	free(a->handed.env);
}

/* The buffers of a large message (up to 2 x the payload limit, several
 * alive at once) come from one heap and are reused, rather than mapped
 * fresh for each copy and faulted in page by page; freed memory is kept
 * up to 512 MiB. Before any thread starts. */
static void
tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	mallopt(M_ARENA_MAX, 1);
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
	tune_malloc();
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
