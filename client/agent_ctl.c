/*
 * enlace-agent's control side: the requests of `enlace` on the local
 * socket (control.h), answered by CTL_WORKERS threads.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "control.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

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

/* The request's attachments are no longer needed (they are sealed): their
 * bytes go now, not after the answer, when the message's frame is made. */
static void
ctl_release(struct ctl *c)
{
	enl_pb_unlend(&c->req->base, c->buf, c->len);
	free(c->buf);
	c->buf = NULL;
}

#define CTL_WORKERS 8

static void
ctl_reply(struct ctl *c, Enlace__CtlResponse *r)
{
	if (control_write_message(c->fd, &r->base) != ENL_OK)
		alog("control: reply not sent: %s", strerror(errno));
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
	if (s->forward_of.len == 0 && s->subject[0] == '\0' && s->body[0] == '\0' &&
	    s->n_attachments == 0) {
		ctl_error(c, ENL_E_INVAL, "nothing to send: no subject, no text, no attachment");
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
		if (s->forward_of.len == 0 && strcmp(s->to[i], enl_identity_id(a->me)) == 0) {
			snprintf(reason, sizeof(reason), "%s is this agency: a message goes to "
				 "other agencies", s->to[i]);
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
	if (!enl_handling_consistent(&h->handling, reason, sizeof(reason))) {
		ctl_error(c, ENL_E_INVAL, reason);
		goto out;
	}
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
	ctl_release(c);
	enl_hex(h->message_id, ENL_MSG_ID_LEN, hex);
	if ((rc = outbox_put(a, hex, env, len)) != ENL_OK) {
		snprintf(reason, sizeof(reason), "outbox: %s", enl_strerror(rc));
		ctl_error(c, rc, reason);
		goto out;
	}
	alog("message %s to %zu recipient(s) in the outbox", hex, h->n_recipients);
	pthread_mutex_lock(&a->mu);
	if (a->handed.env == NULL) {	/* the bytes of the file, durable now */
		snprintf(a->handed.name, sizeof(a->handed.name), "%s.env", hex);
		a->handed.env = env;
		a->handed.len = len;
		env = NULL;
	}
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (s->wait) {
		int wr;
		/* the id now: a wait cut short (the agent stopped) must not
		 * leave the analyst without it */
		r.message_id.data = h->message_id;
		r.message_id.len = ENL_MSG_ID_LEN;
		r.queued = true;
		ctl_reply(c, &r);
		r.queued = false;
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
 * the rest. Its header's fields but the recipients (room for 256).
 */
struct inbox_row {
	uint8_t id[ENL_MSG_ID_LEN];
	char sender[ENL_ID_MAX + 1];
	uint32_t sender_key_version;
	enum enl_msg_type type;
	struct enl_handling handling;
	enum enl_reliability reliability;
	uint32_t assessment;
	enum enl_priority priority;
	char case_ref[ENL_CASE_REF_MAX + 1];
	int64_t created_at, expires_at, reply_by;
	uint8_t hash[ENL_HASH_LEN];
	char *subject;
	size_t n_attachments;
};

static int
inbox_row_take(struct inbox_row *row, const struct enl_message *m)
{
	const struct enl_header *h = &m->header;

	memcpy(row->id, h->message_id, ENL_MSG_ID_LEN);
	memcpy(row->sender, h->sender, sizeof(row->sender));
	row->sender_key_version = h->sender_key_version;
	row->type = h->type;
	row->handling = h->handling;
	row->reliability = h->reliability;
	row->assessment = h->assessment;
	row->priority = h->priority;
	memcpy(row->case_ref, h->case_ref, sizeof(row->case_ref));
	row->created_at = h->created_at;
	row->expires_at = h->expires_at;
	row->reply_by = h->reply_by;
	memcpy(row->hash, m->hash, ENL_HASH_LEN);
	row->n_attachments = m->payload.n_attachments;
	row->subject = strdup(m->payload.subject);
	return row->subject != NULL ? ENL_OK : ENL_E_NOMEM;
}

/*
 * The inbox as last listed, so that a listing opens (verifies, decrypts:
 * about 100 ms for 50 MiB) only what came since: a row holds while its
 * file is the same one (device, inode, size, modification time) and the
 * directory is the one it was checked with. Under ctl_mu.
 */
struct inbox_seen {
	char name[2 * ENL_MSG_ID_LEN + 5];	/* ID.env */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	struct inbox_row row;
};

struct inbox_cache {
	uint64_t serial;	/* of the directory the rows were checked with */
	struct inbox_seen *v;	/* sorted by name */
	size_t n;
};

static void
seen_free(struct inbox_seen *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].row.subject);
	free(v);
}

void
inbox_cache_free(struct inbox_cache *ic)
{
	if (ic != NULL) {
		seen_free(ic->v, ic->n);
		free(ic);
	}
}

static int
seen_cmp(const void *x, const void *y)
{
	return strcmp(((const struct inbox_seen *)x)->name, ((const struct inbox_seen *)y)->name);
}

/* The cached row of the file `s` describes, taken (true), or false. */
static bool
inbox_cached(struct inbox_cache *ic, uint64_t serial, struct inbox_seen *s)
{
	struct inbox_seen *hit;

	if (ic == NULL || ic->serial != serial)
		return false;
	hit = bsearch(s, ic->v, ic->n, sizeof(*ic->v), seen_cmp);
	if (hit == NULL || hit->row.subject == NULL || hit->dev != s->dev ||
	    hit->ino != s->ino || hit->size != s->size || hit->mtime_ns != s->mtime_ns)
		return false;
	s->row = hit->row;
	hit->row.subject = NULL;	/* moved */
	return true;
}

/* What listed now is what the next listing starts from. */
static void
inbox_cache_keep(struct agent *a, uint64_t serial, struct inbox_seen *v, size_t n)
{
	struct inbox_cache *ic = calloc(1, sizeof(*ic));

	inbox_cache_free(a->inbox_cache);
	a->inbox_cache = ic;
	if (ic == NULL) {
		seen_free(v, n);
		return;
	}
	ic->serial = serial;
	ic->v = v;
	ic->n = n;
}

/* Fills a CtlItem from a row; strings point into it. */
static void
item_fill(Enlace__CtlItem *it, Enlace__Handling *hd, const struct inbox_row *m,
	  const struct enl_directory *dir, char fp[ENL_FINGERPRINT_LEN], int64_t received)
{
	const struct inbox_row *h = m;
	const struct enl_card *card = enl_directory_find(dir, h->sender);
	const struct enl_revocation *rv = enl_directory_revoked(dir, h->sender,
								h->sender_key_version);

	enlace__ctl_item__init(it);
	enlace__handling__init(hd);
	it->message_id.data = (uint8_t *)h->id;
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

/* inbox/NAME as it is now, in *s (its row not yet filled); false if gone. */
static bool
inbox_stat(struct agent *a, const char *name, struct inbox_seen *s)
{
	char path[2048];
	struct stat st;

	spool_path(a, path, sizeof(path), "inbox", name);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return true;
}

/* Opens inbox/name; *m on success. The inbox holds only what verified. */
static int
inbox_open(struct agent *a, const char *name, struct enl_message **m)
{
	char path[2048];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct enl_keyring kr = keyring_ever(a);
	int rc;

	spool_path(a, path, sizeof(path), "inbox", name);
	if ((rc = enl_file_read(path, enl_envelope_max_size(&a->lim), &buf, &len)) != ENL_OK)
		return rc;
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
	struct inbox_seen *rows = NULL;
	struct inbox_row orig_row = {0};
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
	uint64_t serial;
	bool nomem = false;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/inbox", a->cfg.spool);
	if ((d = opendir(dir)) == NULL) {
		ctl_error(c, ENL_E_IO, "inbox folder missing");
		return;
	}
	pthread_mutex_lock(&a->mu);
	serial = enl_directory_serial(a->dir);
	pthread_mutex_unlock(&a->mu);
	while ((e = readdir(d)) != NULL) {
		struct enl_message *m = NULL;
		uint8_t id[ENL_MSG_ID_LEN];
		if (!parse_hex_name(e->d_name, id) ||
		    (only != NULL && memcmp(id, only, ENL_MSG_ID_LEN) != 0))
			continue;
		if (n == cap) {
			struct inbox_seen *more = realloc(rows, (cap ? 2 * cap : 16) * sizeof(*rows));
			if (more == NULL) {
				nomem = true;
				break;
			}
			rows = more;
			cap = cap ? 2 * cap : 16;
		}
		if (!inbox_stat(a, e->d_name, &rows[n]))
			continue;
		if (only == NULL && inbox_cached(a->inbox_cache, serial, &rows[n])) {
			n++;
			continue;
		}
		if (inbox_open(a, e->d_name, &m) != ENL_OK)
			continue;
		if (inbox_row_take(&rows[n].row, m) != ENL_OK) {
			enl_message_free(m);
			nomem = true;
			break;
		}
		n++;
		if (only != NULL)
			one = m;
		else
			enl_message_free(m);
	}
	closedir(d);
	if (!nomem)
		qsort(rows, n, sizeof(*rows), seen_cmp);	/* the cache's order */
	/* the items point into rows: filled once rows no longer move */
	if (!nomem && n > 0 && ((items = calloc(n, sizeof(*items))) == NULL ||
				(ptrs = calloc(n, sizeof(*ptrs))) == NULL ||
				(hds = calloc(n, sizeof(*hds))) == NULL ||
				(fps = calloc(n, sizeof(*fps))) == NULL))
		nomem = true;
	pthread_mutex_lock(&a->mu);	/* the directory stays put while we read it */
	for (size_t i = 0; !nomem && i < n; i++) {
		item_fill(&items[i], &hds[i], &rows[i].row, a->dir, fps[i],
			  rows[i].mtime_ns / 1000000000);
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
	if (only == NULL && !nomem)
		inbox_cache_keep(a, serial, rows, n);
	else
		seen_free(rows, n);
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


/* Checks a receipt's broker signature and each ack signature, and answers
 * with the recipients' states. */
static void
reply_receipt(struct ctl *c, const Enlace__SignedReceipt *sg, const char *note)
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
	if (strcmp(b->broker, a->cfg.broker_id) == 0 &&
	    (bc = enl_directory_find(a->dir, b->broker)) != NULL)
		for (size_t k = 0; k < bc->n_keys && !ok; k++)
			ok = kr.signing_key(kr.ctx, b->broker, bc->keys[k].version, pk) == ENL_OK &&
			     enl_receipt_check_signature(sg, pk) == ENL_OK;
	for (size_t i = 0; ok && i < b->n_recipients; i++) {
		const Enlace__RecipientState *rs = b->recipients[i];
		int64_t revoked_at = 0;
		int rc;
		/* a message to the broker itself (a consent decision): the
		 * broker's signature on the receipt says it took it in */
		if (rs->state != ENLACE__DELIVERY_STATE__ACKED || strcmp(rs->recipient, b->broker) == 0)
			continue;
		ok = rs->ack_signature.len == 64 && b->message_id.len == ENL_MSG_ID_LEN &&
		     b->envelope_hash.len == ENL_HASH_LEN;
		if (!ok)
			break;
		/* not revoked when the broker took it */
		rc = enl_directory_ack_check(a->dir, rs->recipient, b->message_id.data,
					     b->envelope_hash.data, rs->ack_time,
					     rs->ack_signature.data, rs->acked_at, &revoked_at);
		if (rc == ENL_E_REVOKED_KEY) {
			char t[32];
			enl_time_format(revoked_at, t);
			snprintf(why, sizeof(why), "the acknowledgement of %s is signed by a key "
				 "revoked at %s, before it", rs->recipient, t);
		}
		ok = rc == ENL_OK;
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
	Enlace__SignedReceipt *sg = NULL;
	struct enl_keyring kr = keyring(a);
	char hex[2 * ENL_MSG_ID_LEN + 1], kept[2048], where[2048], note[300] = "";
	bool receipted;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	enl_hex(id, ENL_MSG_ID_LEN, hex);
	snprintf(kept, sizeof(kept), "%s/sent/%s.receipt", a->cfg.spool, hex);
	snprintf(where, sizeof(where), "%s/outbox/%s.env", a->cfg.spool, hex);
	receipted = access(kept, F_OK) == 0;
	if (!receipted && access(where, F_OK) == 0) {
		ctl_error(c, ENL_E_NOT_FOUND, "still in the outbox: the broker has not "
			  "receipted it yet");
		return;
	}
	snprintf(where, sizeof(where), "%s/failed/%s.env", a->cfg.spool, hex);
	if (!receipted && access(where, F_OK) == 0) {
		refused_reason(a, hex, note, sizeof(note));	/* the broker's answer, kept */
		ctl_error(c, ENL_E_PERMISSION, note);
		return;
	}
	if (!local_only && broker_away(a)) {
		pthread_mutex_lock(&a->mu);
		if (a->last_error[0] != '\0')
			snprintf(note, sizeof(note), "the broker is not connected (%s)",
				 a->last_error);
		else
			snprintf(note, sizeof(note), "the broker is not connected yet");
		pthread_mutex_unlock(&a->mu);
	} else if (!local_only) {
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
	    enl_pb_unpack(&enlace__signed_receipt__descriptor, buf, len, 1 << 20,
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

