/*
 * SEND: seals a message (or a FORWARD) into the outbox; --wait waits
 * for its receipt.
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

/*
 * A FORWARD's original, from the inbox: opened (so that its handling and
 * its content key are known), and its handling and case reference set in
 * the request's header `w` (hd is w's handling), which the forward takes.
 */
static int
forward_open(struct ctl *c, Enlace__Header *w, Enlace__Handling *hd, uint8_t **orig,
	     size_t *orig_len, struct enl_message **om)
{
	struct agent *a = c->a;
	struct enl_keyring kr = keyring(a);
	const struct enl_header *oh;
	char hex[2 * ENL_MSG_ID_LEN + 1], path[2048], reason[300];
	int rc;

	if (w->forward_of.len != ENL_MSG_ID_LEN) {
		ctl_error(c, ENL_E_INVAL, "bad request: forward_of");
		return ENL_E_INVAL;
	}
	enl_hex(w->forward_of.data, ENL_MSG_ID_LEN, hex);
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
	if (memcmp(oh->message_id, w->forward_of.data, ENL_MSG_ID_LEN) != 0) {
		ctl_error(c, ENL_E_MALFORMED, "the inbox file is not the message its name says");
		return ENL_E_MALFORMED;
	}
	hd->tlp = (Enlace__Tlp)oh->handling.tlp;
	hd->onward = (Enlace__Onward)oh->handling.onward;
	hd->evidential = (Enlace__Evidential)oh->handling.evidential;
	if (w->case_ref == NULL || w->case_ref[0] == '\0')
		w->case_ref = (char *)oh->case_ref;
	return ENL_OK;
}

/* Whether this agency may forward `om` to h's recipients (the handling
 * rules an honest agent keeps; the broker checks the originator's
 * consent); if so, the forward's payload carries the original. */
static int
forward_allowed(struct ctl *c, const struct enl_header *h, struct enl_message *om,
		const uint8_t *orig, size_t orig_len, struct enl_payload *p)
{
	struct agent *a = c->a;
	const struct enl_header *oh = &om->header;
	const struct enl_card *me, *to;
	char reason[300];

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
	p->original = orig;
	p->original_len = orig_len;
	p->original_key = om->content_key;
	return ENL_OK;
}

/*
 * The header of a SEND: the request's, with what the agent sets itself
 * (id, sender, key version, time), checked once, whole
 * (enl_header_from_pb). A forward takes its original's handling first.
 */
static int
send_header(struct ctl *c, const Enlace__CtlSend *s, struct enl_header *h, uint8_t **orig,
	    size_t *orig_len, struct enl_message **om)
{
	struct agent *a = c->a;
	static const uint8_t unset_id[ENL_MSG_ID_LEN];	/* seal makes the id */
	Enlace__Header w;
	Enlace__Handling hd;
	char reason[200];
	int rc;

	if (s->header == NULL || s->header->handling == NULL) {
		ctl_error(c, ENL_E_INVAL, "bad request: no header");
		return ENL_E_INVAL;
	}
	w = *s->header;
	hd = *s->header->handling;
	w.handling = &hd;
	w.message_id.data = (uint8_t *)unset_id;
	w.message_id.len = ENL_MSG_ID_LEN;
	w.sender = (char *)enl_identity_id(a->me);
	w.sender_key_version = enl_identity_current(a->me);
	w.created_at = (int64_t)time(NULL);
	if (w.type == ENLACE__MESSAGE_TYPE__FORWARD) {
		if ((rc = forward_open(c, &w, &hd, orig, orig_len, om)) != ENL_OK)
			return rc;
	} else if (w.type < ENLACE__MESSAGE_TYPE__CASE_MESSAGE ||
		   w.type > ENLACE__MESSAGE_TYPE__REPLY || w.forward_of.len != 0) {
		/* consent requests and decisions are made here, not sent */
		ctl_error(c, ENL_E_INVAL, "the message type must be case_message, "
			  "fiu_report, request or reply");
		return ENL_E_INVAL;
	}
	if ((rc = enl_header_from_pb(&w, h)) != ENL_OK) {
		struct enl_handling eh = {(enum enl_tlp)hd.tlp, (enum enl_onward)hd.onward,
					  (enum enl_evidential)hd.evidential};
		if (enl_handling_consistent(&eh, reason, sizeof(reason)))
			snprintf(reason, sizeof(reason), "bad request: the header does not hold "
				 "(its recipients, handling, case reference or times)");
		ctl_error(c, ENL_E_INVAL, reason);
		return ENL_E_INVAL;
	}
	return ENL_OK;
}

/* Each recipient another agency whose key this agent has (asking the
 * broker for a newer directory once, for an agency newer than its own). */
static int
recipients_known(struct ctl *c, const struct enl_header *h, struct enl_keyring *kr)
{
	struct agent *a = c->a;
	bool refreshed = false;
	char reason[256];
	int rc;

	for (size_t i = 0; i < h->n_recipients; i++) {
		uint8_t pk[32];
		uint32_t v;
		if (h->type != ENL_MSG_FORWARD && strcmp(h->recipients[i], enl_identity_id(a->me)) == 0) {
			snprintf(reason, sizeof(reason), "%s is this agency: a message goes to "
				 "other agencies", h->recipients[i]);
			ctl_error(c, ENL_E_INVAL, reason);
			return ENL_E_INVAL;
		}
		rc = kr->encryption_key(kr->ctx, h->recipients[i], &v, pk);
		if (rc == ENL_E_UNKNOWN_RECIPIENT && !refreshed) {
			refreshed = true;
			if (directory_refresh(a) == ENL_OK) {
				*kr = keyring(a);
				rc = kr->encryption_key(kr->ctx, h->recipients[i], &v, pk);
			}
		}
		if (rc != ENL_OK) {
			snprintf(reason, sizeof(reason), "%s: %s", h->recipients[i], enl_strerror(rc));
			ctl_error(c, rc, reason);
			return rc;
		}
	}
	return ENL_OK;
}

/* Waits for the broker's receipt of a message put in the outbox, and
 * answers with it (or with why there is none). */
static void
send_wait(struct ctl *c, const struct enl_header *h, const char *hex, uint32_t wait_ms)
{
	struct agent *a = c->a;
	Enlace__CtlResponse r = ENLACE__CTL_RESPONSE__INIT;
	char reason[256];
	int wr;

	/* the id now: a wait cut short (the agent stopped) must not leave the
	 * analyst without it */
	r.message_id.data = (uint8_t *)h->message_id;
	r.message_id.len = ENL_MSG_ID_LEN;
	r.queued = true;
	ctl_reply(c, &r);
	ctl_unserialize(c);
	wr = wait_receipt(a, hex, wait_ms);
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
			 "within %.1f s; it will be sent when the broker answers%s%s",
			 wait_ms / 1000.0, waiting[0] ? "; the broker said: " : "", waiting);
		ctl_error(c, ENL_E_IO, why);
	}
}

void
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
	int rc;

	if (h == NULL || (s->n_attachments &&
			  (atts = calloc(s->n_attachments, sizeof(*atts))) == NULL)) {
		ctl_error(c, ENL_E_NOMEM, "out of memory");
		goto out;
	}
	if (send_header(c, s, h, &orig, &orig_len, &om) != ENL_OK)
		goto out;
	if (om == NULL && s->subject[0] == '\0' && s->body[0] == '\0' && s->n_attachments == 0) {
		ctl_error(c, ENL_E_INVAL, "nothing to send: no subject, no text, no attachment");
		goto out;
	}
	if (recipients_known(c, h, &kr) != ENL_OK ||
	    (om != NULL && forward_allowed(c, h, om, orig, orig_len, &p) != ENL_OK))
		goto out;
	for (size_t i = 0; i < s->n_attachments; i++) {
		atts[i].name = s->attachments[i]->name;
		atts[i].media_type = s->attachments[i]->media_type;
		atts[i].data = s->attachments[i]->data.data;
		atts[i].len = s->attachments[i]->data.len;
	}
	if (om != NULL)
		snprintf(fwd_subject, sizeof(fwd_subject), "Fwd: %s", om->payload.subject);
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
		/* 1 s to 1 h; 0 (an older enlace): 60 s */
		uint32_t ms = s->wait_ms == 0 ? 60000 : s->wait_ms < 1000 ? 1000
			      : s->wait_ms > 3600000 ? 3600000 : s->wait_ms;
		send_wait(c, h, hex, ms);
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
