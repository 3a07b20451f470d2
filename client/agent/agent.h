/*
 * enlace-agent's parts (docs/ARCHITECTURE.md): the daemon's threads (the
 * sender, outbox.c; the fetcher, inbox.c; the log watch, logwatch.c) and
 * the control socket's workers (ctl*.c), over the spool, the directory
 * and the link to the broker. Not a library: one program's internal
 * header. The modules are listed in the order they use each other: each
 * uses only those above it.
 */
#ifndef ENLACE_AGENT_H
#define ENLACE_AGENT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conn.h"
#include "enlace/note.h"
#include "enlace/proto.h"

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
	/* superseded: readers may hold them (a directory a day for years) */
	ENL_VEC(struct enl_directory *) old_dirs;
	struct conn out;		/* SUBMIT, RECEIPTS, DIRECTORY */
	struct conn in;			/* FETCH, ACK, REJECT */
	bool connected;
	char last_error[256];
	char outbox_waiting[300];	/* under mu: why the last try left the outbox as it was */
	char inbox_blocked[300];	/* under mu: why the last message received could not be
					 * kept ("" once one is) */
	struct timespec last_queued;	/* under mu: the newest outbox file's time */
	/* under mu: the envelope just put in the outbox, as written, handed to
	 * the sender so that it is not read back from the file (one at a time) */
	struct {
		char name[2 * ENL_MSG_ID_LEN + 5];	/* its outbox file's name */
		uint8_t *env;
		size_t len;
	} handed;
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
	/* under mu: the newest outcomes of the outbox (receipted, or refused
	 * by the broker), which a SEND --wait waits for on cv */
	struct {
		char hex[2 * ENL_MSG_ID_LEN + 1];
		bool refused;
	} outcomes[64];
	size_t outcomes_next;
	volatile sig_atomic_t stopping;
	int ctl_fd;			/* the control socket's listener (control.h) */
	struct inbox_cache *inbox_cache;	/* under ctl_mu (ctl_inbox.c) */
	struct inbox_cache *inbox_fresh;	/* under mu: rows the fetcher verified */
};

/* ---- agent.c, for the control side ---- */

/* ---- spool.c ---- */

/* One log line to stderr, with the time; never secrets. */
void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* spool/sub/name into out. */
void spool_path(const struct agent *a, char *out, size_t cap, const char *sub, const char *name);
/* Moves spool/from/name to spool/to/name durably (the folders synced). */
int spool_move(const struct agent *a, const char *from, const char *to, const char *name);
/* Files of spool/sub ending in suffix, temporary ones left out. */
size_t count_files(const struct agent *a, const char *sub, const char *suffix);

/* ---- link.c: the connections to the broker ---- */

void set_connected(struct agent *a, const struct conn *c, bool up);
bool broker_away(struct agent *a);
/* Takes out_mu, waiting at most ms; false if not taken. */
bool out_take(struct agent *a, int ms);

/* ---- directory.c ---- */

/* The directory's keyring (under mu); _ever also gives revoked signing
 * keys, for what was verified before the revocation. */
struct enl_keyring keyring(struct agent *a);
struct enl_keyring keyring_ever(struct agent *a);
/* Asks the broker for a newer directory (DIRECTORY) and takes it. */
int directory_refresh(struct agent *a);
/* Says in the log, at most hourly, that the directory expires soon. */
void expiry_watch(struct agent *a);
/* The session's hooks (conn.h): the serial held, and a newer directory
 * handed over in the broker's Welcome. */
uint64_t held_serial(void *arg);
void welcome_directory(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr);

/* ---- logwatch.c: the broker's audit log as this agency sees it ---- */

/* Loads the held checkpoint at start; polls the broker's newest one,
 * checks it extends the held one (else: the alarm), and cosigns it. */
void log_state_load(struct agent *a);
void log_poll(struct agent *a);
/* Checks a broker checkpoint against the held one; call with log_mu. */
int checkpoint_check(struct agent *a, const char *note);
/* A receipt's SUBMITTED entry is in the log under its checkpoint; call
 * with mu. */
bool receipt_in_log(struct agent *a, const Enlace__ReceiptBody *b, uint64_t *size);
/* Checks a receipt just received against the log; logs what fails. */
void receipt_audit(struct agent *a, const Enlace__SignedReceipt *sg, const char *what);

/* ---- outbox.c: the sender thread, and what a sender asks of it ---- */

void *sender_main(void *arg);
/* The outbox's messages, oldest first (*out: malloc'd names). */
size_t outbox_list(const struct agent *a, char ***out);
/* Puts a sealed envelope in the outbox, durably, as hex.env. */
int outbox_put(struct agent *a, const char *hex, const uint8_t *env, size_t len);
/* Waits (woken by the sender) at most timeout_ms for the outcome of hex:
 * 0 receipted, 1 refused by the broker, -1 none yet. */
int wait_receipt(struct agent *a, const char *hex, uint32_t timeout_ms);
/* The broker's reason for refusing hex, as kept in failed/. */
void refused_reason(struct agent *a, const char *hex, char *out, size_t cap);

/* ---- inbox.c: the fetcher thread ---- */

void *fetcher_main(void *arg);

/* ---- the control socket ---- */

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
	Enlace__CtlRequest *req;	/* the request in hand, */
	uint8_t *buf;	/* its bytes, which lend it its attachments */
	size_t len;
};

#define CTL_WORKERS 8

/* ctl_reply.c: a request's answer; ctl_release lets the attachments go,
 * ctl_unserialize lets the other requests run (a wait for the broker) */
void ctl_release(struct ctl *c);
void ctl_reply(struct ctl *c, Enlace__CtlResponse *r);
void ctl_error(struct ctl *c, int status, const char *reason);
void ctl_unserialize(struct ctl *c);

/* ctl_inbox.c */
void ctl_inbox(struct ctl *c, const uint8_t *only);
/* What the last inbox listing kept (a->inbox_cache); NULL is none. */
void inbox_cache_free(struct inbox_cache *ic);
/* On the fetcher: message m, verified and just kept as inbox/name, is
 * listed from this row until its file changes (verified once). */
void inbox_seen_add(struct agent *a, const char *name, const struct enl_message *m);

/* ctl_receipts.c: with local_only, from what the agent keeps */
void ctl_receipts_of(struct ctl *c, const uint8_t *id, bool local_only);

/* ctl_send.c, ctl_consent.c, ctl_status.c */
void ctl_send(struct ctl *c, const Enlace__CtlSend *s);
void ctl_consents(struct ctl *c);
void ctl_decide(struct ctl *c, const Enlace__CtlDecide *dc);
void ctl_status(struct ctl *c);

/* ctl.c: serves the control socket (a->ctl_fd) until a->stopping; the
 * calling thread is one of its workers */
void control_run(struct agent *a);

#endif
