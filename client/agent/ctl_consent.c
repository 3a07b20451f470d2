/*
 * CONSENTS and DECIDE: requests to forward this agency's messages, and
 * the originator's answer.
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

/* ---- consent requests (the broker asks this agency, as originator) ---- */

struct consent_item {
	Enlace__ConsentRequest *req;
	int64_t requested_at;
	char decided[16];
};

/* The consent requests in the inbox listed at most. */
#define CONSENTS_MAX 100000

/* The consent requests in the inbox (only `only`, if not NULL). */
static size_t
consents_find(struct agent *a, const uint8_t *only, struct consent_item **out)
{
	struct enl_keyring kr = keyring(a);
	ENL_VEC(struct consent_item) items = ENL_VEC_INIT(CONSENTS_MAX);
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
			struct consent_item *it = enl_vec_push(&items);
			if (it == NULL) {
				protobuf_c_message_free_unpacked(&cr->base, NULL);
			} else {
				char hex[33], dpath[2048];
				uint8_t *db = NULL;
				size_t dl = 0;
				it->req = cr;
				it->requested_at = m->header.created_at;
				enl_hex(cr->request_id.data, ENL_MSG_ID_LEN, hex);
				snprintf(dpath, sizeof(dpath), "%s/consent/%s", a->cfg.spool, hex);
				if (enl_file_read(dpath, 64, &db, &dl) == ENL_OK) {
					snprintf(it->decided, sizeof(it->decided), "%.*s",
						 (int)strcspn((char *)db, "\n"), (const char *)db);
					free(db);
				}
			}
		}
		enl_message_free(m);
		free(buf);
	}
	closedir(d);
	*out = items.v;
	return items.n;
}

static void
consents_free(struct consent_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&items[i].req->base, NULL);
	free(items);
}

void
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
void
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
	wr = wait_receipt(a, hex, 60000);
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
