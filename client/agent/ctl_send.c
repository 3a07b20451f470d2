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
