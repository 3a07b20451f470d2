/*
 * INBOX and READ: the messages received, listed from a cache of what
 * was verified.
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
	size_t n, cap;
};

/* Rows the fetcher kept since the last listing, at most. */
#define FRESH_MAX 100000

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

void
inbox_seen_add(struct agent *a, const char *name, const struct enl_message *m)
{
	struct inbox_seen s, *slot = NULL;
	struct inbox_cache *f;
	uint64_t serial;

	if (!inbox_stat(a, name, &s) || inbox_row_take(&s.row, m) != ENL_OK)
		return;	/* the next listing opens it, as any other */
	pthread_mutex_lock(&a->mu);
	serial = enl_directory_serial(a->dir);
	if ((f = a->inbox_fresh) == NULL)
		f = a->inbox_fresh = calloc(1, sizeof(*f));
	if (f != NULL && f->serial != serial) {
		seen_free(f->v, f->n);
		f->v = NULL;
		f->n = f->cap = 0;
		f->serial = serial;
	}
	if (f != NULL)
		slot = enl_vec_push_(&f->v, &f->n, &f->cap, FRESH_MAX, sizeof(*f->v));
	if (slot != NULL)
		*slot = s;
	pthread_mutex_unlock(&a->mu);
	if (slot == NULL)
		free(s.row.subject);
}

/* The messages an inbox listing shows at most. */
#define INBOX_MAX 1000000

void
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
	ENL_VEC(struct inbox_seen) seen = ENL_VEC_INIT(INBOX_MAX);
	struct inbox_cache *fresh = NULL;
	size_t n = 0;
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
	fresh = a->inbox_fresh;	/* verified by the fetcher as they came */
	a->inbox_fresh = NULL;
	pthread_mutex_unlock(&a->mu);
	if (fresh != NULL)
		qsort(fresh->v, fresh->n, sizeof(*fresh->v), seen_cmp);
	while ((e = readdir(d)) != NULL) {
		struct enl_message *m = NULL;
		uint8_t id[ENL_MSG_ID_LEN];
		if (!parse_hex_name(e->d_name, id) ||
		    (only != NULL && memcmp(id, only, ENL_MSG_ID_LEN) != 0))
			continue;
		struct inbox_seen *row = enl_vec_push(&seen);
		if (row == NULL) {
			nomem = true;
			break;
		}
		if (!inbox_stat(a, e->d_name, row)) {
			seen.n--;
			continue;
		}
		if (only == NULL && (inbox_cached(a->inbox_cache, serial, row) ||
				     inbox_cached(fresh, serial, row)))
			continue;
		if (inbox_open(a, e->d_name, &m) != ENL_OK) {
			seen.n--;
			continue;
		}
		if (inbox_row_take(&row->row, m) != ENL_OK) {
			seen.n--;
			enl_message_free(m);
			nomem = true;
			break;
		}
		if (only != NULL)
			one = m;
		else
			enl_message_free(m);
	}
	rows = seen.v;
	n = seen.n;
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
	inbox_cache_free(fresh);
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
