/*
 * SUBMIT: a message checked against the directory and the policy, a
 * forward against its originator's consent, stored and logged in one
 * transaction, and receipted.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <sodium.h>

#include "rules.h"
#include "server_int.h"

/* ---- SUBMIT ---- */

/* Counts, per agency, the bytes the policy refused for every recipient
 * (not kept), and says so with the agency's total. Writer thread. */
static void
refused_tally(struct server *srv, const char *agency, size_t len)
{
	struct refused_tally *t = NULL;

	for (size_t i = 0; i < srv->refused.n && t == NULL; i++)
		if (strcmp(srv->refused.v[i].agency, agency) == 0)
			t = &srv->refused.v[i];
	if (t == NULL && (t = enl_vec_push(&srv->refused)) != NULL)
		snprintf(t->agency, sizeof(t->agency), "%s", agency);
	if (t != NULL) {
		t->messages++;
		t->bytes += len;
	}
	blog("message from %s refused for every recipient: its %zu bytes are not kept (%s: "
	     "%" PRIu64 " such messages, %" PRIu64 " bytes since the start)", agency, len, agency,
	     t ? t->messages : 0, t ? t->bytes : 0);
}

/*
 * A forward, checked against its original: the forwarder received it;
 * its handling allows forwarding and the forward keeps it (never
 * weaker). TLP:AMBER stays in the forwarder's country; with onward
 * sharing CONSENT the recipients the policy allows are held for the
 * originator's consent. ENL_E_PERMISSION with `why` refuses the whole
 * forward. On the writer.
 */
static int
forward_check(struct work *w, struct store *st, char *why, size_t cap)
{
	const struct enl_header *h = w->sub.hdr;
	struct original_info o;
	const struct enl_card *me;
	int rc;

	/* (called for a FORWARD or a header naming an original: after this,
	 * a FORWARD naming one) */
	if ((rc = rules_not_forward(h, why, cap)) != ENL_OK)
		return rc;
	memset(&o, 0, sizeof(o));
	rc = st->ops->original(st->db, h->forward_of, h->sender, &o);
	if (rc == ENL_E_NOT_FOUND) {
		snprintf(why, cap, "forward of a message this broker never relayed");
		return ENL_E_PERMISSION;
	}
	if (rc != ENL_OK)
		return rc;
	w->sub.orig = o;
	if ((rc = rules_forward(h, &o, why, cap)) != ENL_OK)
		return rc;
	if (o.handling.onward == ENL_ONWARD_CONSENT) {
		uint8_t pk[32];
		uint32_t v;
		if (w->dir->kr.encryption_key(w->dir->kr.ctx, o.sender, &v, pk) != ENL_OK)
			snprintf(why, cap, "the originator %s cannot be asked for consent: it has "
				 "no valid key in the directory", o.sender);
	}
	if (why[0] != '\0')
		return ENL_E_PERMISSION;
	if ((w->sub.held = calloc(h->n_recipients, sizeof(*w->sub.held))) == NULL)
		return ENL_E_NOMEM;
	me = enl_directory_find(w->dir->dir, h->sender);
	for (size_t i = 0; i < h->n_recipients; i++) {
		struct policy_decision *d = &w->sub.decisions[i];
		const struct enl_card *c = enl_directory_find(w->dir->dir, h->recipients[i]);
		if (!d->allow)
			continue;
		if (!rules_amber_stays_home(&o, me, c)) {
			d->allow = false;
			snprintf(d->rule, sizeof(d->rule), "tlp-amber-stays-home");
			continue;
		}
		w->sub.held[i] = o.handling.onward == ENL_ONWARD_CONSENT;
	}
	return ENL_OK;
}

/* Wakes the waiting fetches of one agency (writer thread). */
static void
wake_agency(struct server *srv, const char *agency)
{
	struct enl_header h;

	memset(&h, 0, sizeof(h));
	h.n_recipients = 1;
	snprintf(h.recipients[0], sizeof(h.recipients[0]), "%s", agency);
	delivery_wake(srv, &h);
}

/*
 * A held forward to `recipient`: a CONSENT_REQUEST from the broker to the
 * originator (an envelope the broker signs, naming the original, the
 * forwarder and the new recipient, never the content), stored and
 * delivered like any message, and the request kept until it is decided
 * or expires. On the writer, inside the forward's transaction.
 */
static int
consent_request(struct work *w, struct store *st, int64_t now, const char *recipient)
{
	struct server *srv = w->srv;
	Enlace__ConsentRequest cr = ENLACE__CONSENT_REQUEST__INIT;
	struct enl_header *h = calloc(1, sizeof(*h));
	struct enl_limits lim = {1 << 20};
	struct enl_attachment att;
	struct enl_payload p;
	struct delivery_init d = {DS_QUEUED, NULL};
	struct consent c;
	char subject[256], body[700], req_hex[33], orig_hex[33], why[200], when[32];
	uint8_t *crb = NULL, *env = NULL, hash[ENL_HASH_LEN];
	size_t crl = 0, len = 0;
	uint64_t index = 0;
	int rc = ENL_E_NOMEM;

	if (h == NULL)
		return rc;
	memset(&c, 0, sizeof(c));
	randombytes_buf(c.request_id, sizeof(c.request_id));
	memcpy(c.forward_id, w->sub.hdr->message_id, ENL_MSG_ID_LEN);
	memcpy(c.original_id, w->sub.orig.id, ENL_MSG_ID_LEN);	/* the innermost */
	memcpy(c.original_hash, w->sub.orig.hash, ENL_HASH_LEN);
	snprintf(c.recipient, sizeof(c.recipient), "%s", recipient);
	snprintf(c.originator, sizeof(c.originator), "%s", w->sub.orig.sender);
	snprintf(c.forwarder, sizeof(c.forwarder), "%s", w->sub.hdr->sender);
	c.expires_at = now + (int64_t)(srv->p.cfg->consent_ttl_ms / 1000);
	c.state = CONSENT_PENDING;
	cr.request_id.data = c.request_id;
	cr.request_id.len = ENL_MSG_ID_LEN;
	cr.original_id.data = c.original_id;
	cr.original_id.len = ENL_MSG_ID_LEN;
	cr.original_hash.data = c.original_hash;
	cr.original_hash.len = ENL_HASH_LEN;
	cr.forward_id.data = c.forward_id;
	cr.forward_id.len = ENL_MSG_ID_LEN;
	cr.forwarder = c.forwarder;
	cr.recipient = c.recipient;
	cr.expires_at = c.expires_at;
	if ((rc = enl_pb_pack(&cr.base, &crb, &crl)) != ENL_OK)
		goto out;
	enl_hex(c.request_id, ENL_MSG_ID_LEN, req_hex);
	enl_hex(c.original_id, ENL_MSG_ID_LEN, orig_hex);
	enl_time_format(c.expires_at, when);
	snprintf(subject, sizeof(subject), "Consent requested: %s would forward your message "
		 "to %s", c.forwarder, c.recipient);
	snprintf(body, sizeof(body), "%s received your message %s and asks to forward it to "
		 "%s.\nIts onward sharing is CONSENT: it is held until you decide.\n\n"
		 "  enlace consent grant %s [--note TEXT]\n  enlace consent deny %s --reason "
		 "TEXT\n\nUnanswered, the request expires at %s and the forward is refused.\n",
		 c.forwarder, orig_hex, c.recipient, req_hex, req_hex, when);
	att = (struct enl_attachment){"consent-request.pb", "application/x-enlace-consent",
				      crb, crl};
	memset(&p, 0, sizeof(p));
	p.subject = subject;
	p.body = body;
	p.n_attachments = 1;
	p.attachments = &att;
	snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s", c.originator);
	h->n_recipients = 1;
	h->type = ENL_MSG_CONSENT_REQUEST;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_NEVER;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	snprintf(h->case_ref, sizeof(h->case_ref), "%s", w->sub.hdr->case_ref);
	rc = enl_envelope_seal(srv->p.me, &inforce_dir(srv)->kr, &lim, h, &p, now, &env, &len);
	if (rc != ENL_OK)
		goto out;
	enl_hash(env, len, hash);
	{
		struct audit a = {ENLACE__AUDIT_EVENT__SUBMITTED, h->message_id, hash, NULL,
				  enl_identity_id(srv->p.me), NULL, "consent request", 0, NULL, NULL,
				  c.original_id};
		if ((rc = auditlog_add(srv, &a, now, &index)) != ENL_OK)
			goto out;
		a.event = ENLACE__AUDIT_EVENT__AUDIT_QUEUED;
		a.recipient = c.originator;
		if ((rc = auditlog_add(srv, &a, now, NULL)) != ENL_OK)
			goto out;
		snprintf(why, sizeof(why), "request %s sent to %s, open until %s", req_hex,
			 c.originator, when);
		a.event = ENLACE__AUDIT_EVENT__CONSENT_REQUESTED;
		a.id = c.forward_id;
		a.hash = w->sub.hash;
		a.sender = c.forwarder;
		a.recipient = c.recipient;
		a.reason = why;
		if ((rc = auditlog_add(srv, &a, now, NULL)) != ENL_OK)
			goto out;
	}
	if ((rc = st->ops->message_put(st->db, h, hash, now, env, len, index, &d, NULL)) != ENL_OK ||
	    (rc = st->ops->consent_put(st->db, &c)) != ENL_OK)
		goto out;
	wake_agency(srv, c.originator);
	blog("forward held: consent request %s sent to %s", req_hex, c.originator);
out:
	free(crb);
	free(env);
	free(h);
	return rc;
}

/*
 * A consent decision, checked against its request: it must come from the
 * original's originator, name exactly the original, the forward and the
 * recipient the request names, and be the first decision, in time.
 * ENL_E_PERMISSION with `why` refuses it. On the writer.
 */
static int
consent_check(struct work *w, struct store *st, int64_t now, struct consent *c, char *why,
	      size_t cap)
{
	const Enlace__ConsentDecision *d = w->sub.decision;
	int rc = st->ops->consent_get(st->db, d->request_id.data, c);

	if (rc == ENL_E_NOT_FOUND) {
		snprintf(why, cap, "no such consent request");
		return ENL_E_PERMISSION;
	}
	if (rc != ENL_OK)
		return rc;
	return rules_consent(c, d, w->agency, now, why, cap);
}

/* Applies a decision checked by consent_check: the held forward goes to
 * its recipient, or is refused with the originator's reason. */
static int
consent_apply(struct work *w, struct store *st, int64_t now, const struct consent *c)
{
	const Enlace__ConsentDecision *d = w->sub.decision;
	char why[400], logged[100];
	int rc;
	/* the log, which every member reads, has the decision and its hash
	 * (the entry's envelope hash), never its free text: that goes only
	 * to the forwarder, in its receipt */
	struct audit a = {d->grant ? ENLACE__AUDIT_EVENT__CONSENT_GRANTED
				   : ENLACE__AUDIT_EVENT__CONSENT_DENIED,
			  c->forward_id, w->sub.hash, NULL, c->originator, c->recipient, logged, 0,
			  NULL, NULL, c->original_id};

	snprintf(why, sizeof(why), "%s by %s%s%s", d->grant ? "consent granted" : "consent denied",
		 c->originator, d->note[0] ? ": " : "", d->note);
	snprintf(logged, sizeof(logged), "%s by %s", d->grant ? "consent granted" : "consent denied",
		 c->originator);
	if ((rc = st->ops->consent_set(st->db, c->request_id, d->grant ? CONSENT_GRANTED_S
									: CONSENT_DENIED_S)) != ENL_OK)
		return rc;
	rc = st->ops->mark(st->db, c->forward_id, c->recipient, d->grant ? DS_QUEUED : DS_REJECTED,
			   now, NULL, 0, d->grant ? NULL : why);
	if (rc != ENL_OK)
		return rc;
	if ((rc = auditlog_add(w->srv, &a, now, NULL)) != ENL_OK)
		return rc;
	if (d->grant) {
		a.event = ENLACE__AUDIT_EVENT__AUDIT_QUEUED;
		a.reason = "released by the originator's consent";
		if ((rc = auditlog_add(w->srv, &a, now, NULL)) != ENL_OK)
			return rc;
		wake_agency(w->srv, c->recipient);
	}
	blog("consent %s by %s for the forward to %s", d->grant ? "granted" : "denied",
	     c->originator, c->recipient);
	return ENL_OK;
}

/* A submission the writer refuses (its consent or its forward): on the
 * record, with why. */
static int
submit_rejected(struct work *w, int64_t now)
{
	struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->sub.hdr->message_id, w->sub.hash,
			  NULL, w->agency, NULL, w->sub.refused_why, 0, NULL, NULL, NULL};
	int rc = auditlog_add(w->srv, &a, now, NULL);

	return rc != ENL_OK ? rc : ENL_E_PERMISSION;
}

static int
submit_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	struct stored_message m;
	int rc = st->ops->message_get(st->db, w->sub.hdr->message_id, &m);

	if (rc == ENL_OK) {
		/* A retry of the same envelope gets the first receipt. */
		if (sodium_memcmp(m.hash, w->sub.hash, ENL_HASH_LEN) != 0) {
			struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->sub.hdr->message_id,
					  w->sub.hash, NULL, w->agency, NULL,
					  "message id already used for another envelope", 0, NULL, NULL, NULL};
			return (rc = auditlog_add(w->srv, &a, now, NULL)) != ENL_OK ? rc : ENL_E_EXISTS;
		}
		w->sub.idempotent = true;
		return ENL_OK;
	}
	if (rc != ENL_E_NOT_FOUND)
		return rc;
	struct consent cons;
	if (w->sub.decision != NULL) {
		rc = consent_check(w, st, now, &cons, w->sub.refused_why, sizeof(w->sub.refused_why));
		if (rc == ENL_E_PERMISSION)
			return submit_rejected(w, now);
		if (rc != ENL_OK)
			return rc;
	}
	if (w->sub.hdr->type == ENL_MSG_FORWARD || w->sub.hdr->has_forward_of) {
		rc = forward_check(w, st, w->sub.refused_why, sizeof(w->sub.refused_why));
		if (rc == ENL_E_PERMISSION)
			return submit_rejected(w, now);
		if (rc != ENL_OK)
			return rc;
	}
	{
		struct audit a = {ENLACE__AUDIT_EVENT__SUBMITTED, w->sub.hdr->message_id, w->sub.hash, NULL,
				  w->sub.hdr->sender, NULL, NULL, 0, &w->sub.submitted, &w->sub.submitted_len,
				  /* a forward's entries name its innermost original, so
				   * that the original's trail shows every hop */
				  w->sub.hdr->has_forward_of ? w->sub.orig.id : NULL};
		uint64_t index = 0;
		if ((rc = auditlog_add(w->srv, &a, now, &index)) != ENL_OK)
			return rc;
		w->sub.submitted_index = index;
		w->sub.submitted_at = now;
		a.keep = NULL;
		struct delivery_init *d = calloc(w->sub.hdr->n_recipients, sizeof(*d));
		char (*why)[POLICY_NAME_MAX + 80] = calloc(w->sub.hdr->n_recipients, sizeof(*why));
		rc = d == NULL || why == NULL ? ENL_E_NOMEM : ENL_OK;
		/* each recipient as the policy decided, the rule on the record */
		for (size_t i = 0; rc == ENL_OK && i < w->sub.hdr->n_recipients; i++) {
			const struct policy_decision *pd = &w->sub.decisions[i];
			bool held = w->sub.held != NULL && w->sub.held[i];
			if (held)
				snprintf(why[i], sizeof(why[i]), "held for the originator's consent "
					 "(policy rule %s allows)", pd->rule);
			else
				snprintf(why[i], sizeof(why[i]), "%s by policy rule %s",
					 pd->allow ? "allowed" : "denied", pd->rule);
			a.event = held ? ENLACE__AUDIT_EVENT__HELD_FOR_CONSENT
				  : pd->allow ? ENLACE__AUDIT_EVENT__AUDIT_QUEUED
					      : ENLACE__AUDIT_EVENT__AUDIT_REJECTED;
			a.recipient = w->sub.hdr->recipients[i];
			a.reason = why[i];
			d[i].state = held ? DS_HELD : pd->allow ? DS_QUEUED : DS_REJECTED;
			d[i].reason = pd->allow && !held ? NULL : why[i];
			if (w->sub.decision != NULL && pd->allow)
				d[i].state = DS_ACKED;	/* the broker took it in itself */
			rc = auditlog_add(w->srv, &a, now, NULL);
		}
		/* refused for every recipient: its bytes are never needed (a
		 * retry is answered from the log), so they are not kept, and
		 * one agency cannot fill the broker's disk with them */
		bool deliverable = false;
		for (size_t i = 0; rc == ENL_OK && i < w->sub.hdr->n_recipients; i++)
			deliverable |= d[i].state != DS_REJECTED;
		if (rc == ENL_OK && !deliverable)
			refused_tally(w->srv, w->sub.hdr->sender, w->sub.env_len);
		if (rc == ENL_OK)
			rc = st->ops->message_put(st->db, w->sub.hdr, w->sub.hash, now,
						  deliverable ? w->sub.env : NULL,
						  deliverable ? w->sub.env_len : 0, index, d,
						  w->sub.hdr->has_forward_of ? w->sub.orig.id : NULL);
		/* the recipients' waiting fetches take it in this same round
		 * (after the jobs, in its transaction), answered after its commit */
		if (rc == ENL_OK)
			delivery_wake(w->srv, w->sub.hdr);
		for (size_t i = 0; rc == ENL_OK && w->sub.held != NULL && i < w->sub.hdr->n_recipients; i++)
			if (w->sub.held[i])
				rc = consent_request(w, st, now, w->sub.hdr->recipients[i]);
		if (rc == ENL_OK && w->sub.decision != NULL)
			rc = consent_apply(w, st, now, &cons);
		free(d);
		free(why);
		/* half a submission must never commit: any failure once writing
		 * began fails the whole round, which rolls back */
		return rc == ENL_OK || enl_err_transient(rc) ? rc : ENL_E_IO;
	}
}

static void
submit_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;
	uint8_t id[ENL_MSG_ID_LEN];

	if (rc == ENL_E_EXISTS) {
		reply_status(w, rc, "this message id was already used for another envelope");
		return;
	}
	if (rc == ENL_E_PERMISSION) {
		reply_status(w, rc, w->sub.refused_why);
		return;
	}
	if (rc != ENL_OK) {
		char why[160];
		snprintf(why, sizeof(why), "the broker could not store the message: %s",
			 enl_strerror(rc));
		reply_status(w, rc, why);
		return;
	}
	if (!w->sub.idempotent) {
		receipt_respond_fresh(w);
		return;
	}
	memcpy(id, w->sub.hdr->message_id, sizeof(id));
	receipt_respond(w, id);
}

/* A refused submission is an entry of the log (REJECTED, with the
 * reason) before the sender hears of it. */
static int
rejected_write(struct job *j, struct store *st, int64_t now)
{
	struct work *w = (struct work *)j;
	struct audit a = {ENLACE__AUDIT_EVENT__AUDIT_REJECTED, w->sub.hdr_ok ? w->sub.hdr->message_id : NULL,
			  w->sub.hash, NULL, w->agency, NULL, w->sub.refused_why, 0, NULL, NULL, NULL};

	(void)st;
	return auditlog_add(w->srv, &a, now, NULL);
}

static void
rejected_done(struct job *j, int rc)
{
	struct work *w = (struct work *)j;

	if (rc != ENL_OK)
		blog("audit log: a refusal of %s could not be recorded: %s", w->agency,
		     enl_strerror(rc));
	reply_status(w, w->sub.refused_rc, w->sub.refused_why);
}

static int
submit_refuse(struct work *w, int rc, const char *why)
{
	const Enlace__SubmitReq *s = w->req->submit;

	if (!w->sub.hdr_ok)
		crypto_generichash(w->sub.hash, ENL_HASH_LEN, s->envelope.data, s->envelope.len,
				   NULL, 0);
	w->sub.refused_rc = rc;
	snprintf(w->sub.refused_why, sizeof(w->sub.refused_why), "%s", why ? why : enl_strerror(rc));
	w->job.write = rejected_write;
	w->job.done = rejected_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}

/* The policy's decision for every recipient, all by the same policy. */
static int
decide(struct work *w)
{
	const struct enl_header *h = w->sub.hdr;
	struct policy_query q;
	struct policy_ref *pr;

	if ((w->sub.decisions = calloc(h->n_recipients, sizeof(*w->sub.decisions))) == NULL)
		return ENL_E_NOMEM;
	memset(&q, 0, sizeof(q));
	policy_query_from(&q, enl_directory_find(w->dir->dir, h->sender));
	q.type = (int)h->type;
	q.tlp = (int)h->handling.tlp;
	q.size = w->req->submit->envelope.len;
	q.forward = h->has_forward_of;
	pr = inforce_policy_get(w->srv);
	for (size_t i = 0; i < h->n_recipients; i++) {
		if (strcmp(h->recipients[i], enl_identity_id(w->srv->p.me)) == 0) {
			/* the broker itself: a consent decision, nothing else */
			w->sub.decisions[i].allow = h->type == ENL_MSG_CONSENT_DECISION;
			snprintf(w->sub.decisions[i].rule, sizeof(w->sub.decisions[i].rule),
				 "consent-decision-to-the-broker");
			continue;
		}
		policy_query_to(&q, enl_directory_find(w->dir->dir, h->recipients[i]));
		policy_decide(pr->p, &q, &w->sub.decisions[i]);
	}
	inforce_policy_put(w->srv, pr);
	return ENL_OK;
}

/*
 * A consent decision is addressed to the broker alone: the broker opens
 * it (on nng's thread) and keeps what it decides, for the writer to check
 * against the request.
 */
static int
decision_open(struct work *w, char *why, size_t cap)
{
	const Enlace__SubmitReq *s = w->req->submit;
	struct enl_limits lim = {1 << 20};
	struct enl_message *m = NULL;
	const struct enl_attachment *att = NULL;
	Enlace__ConsentDecision *d = NULL;
	int rc = ENL_OK;

	if (w->sub.hdr->n_recipients != 1 ||
	    strcmp(w->sub.hdr->recipients[0], enl_identity_id(w->srv->p.me)) != 0) {
		snprintf(why, cap, "a consent decision goes to the broker, and to it alone");
		return ENL_E_PERMISSION;
	}
	if ((m = w->sub.opened) != NULL)
		w->sub.opened = NULL;	/* opened once, by submit_verify */
	else
		rc = enl_envelope_open(s->envelope.data, s->envelope.len, w->srv->p.me,
				       &w->dir->kr, &lim, (int64_t)time(NULL), &m);
	if (rc != ENL_OK) {
		snprintf(why, cap, "the consent decision does not open: %s", enl_strerror(rc));
		return rc;
	}
	for (size_t i = 0; i < m->payload.n_attachments && att == NULL; i++)
		if (strcmp(m->payload.attachments[i].name, "consent-decision.pb") == 0)
			att = &m->payload.attachments[i];
	rc = att == NULL ? ENL_E_MALFORMED
			 : enl_pb_unpack(&enlace__consent_decision__descriptor, att->data, att->len,
					 4096, (ProtobufCMessage **)&d);
	enl_message_free(m);
	if (rc == ENL_OK && (d->request_id.len != ENL_MSG_ID_LEN ||
			     d->original_id.len != ENL_MSG_ID_LEN ||
			     d->original_hash.len != ENL_HASH_LEN ||
			     d->forward_id.len != ENL_MSG_ID_LEN || !enl_id_valid(d->recipient) ||
			     !enl_text_valid(d->note, 1000))) {
		protobuf_c_message_free_unpacked(&d->base, NULL);
		rc = ENL_E_MALFORMED;
	}
	if (rc != ENL_OK) {
		snprintf(why, cap, "not a consent decision: %s", enl_strerror(rc));
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	}
	w->sub.decision = d;
	return ENL_OK;
}

/* What a submission holds, freed with its request. */
static void
submit_drop(struct work *w)
{
	struct submit_state *s = &w->sub;

	free(s->hdr);
	free(s->submitted);
	free(s->decisions);
	free(s->held);
	enl_message_free(s->opened);
	if (s->decision != NULL)
		protobuf_c_message_free_unpacked(&s->decision->base, NULL);
	memset(s, 0, sizeof(*s));
}

/*
 * A consent decision addressed to the broker is opened (verified and
 * decrypted) once, here, and kept for decision_open; any other envelope,
 * or a decision that does not open (decision_open says why), is
 * verified only.
 */
static int
submit_verify(struct work *w, const Enlace__SubmitReq *s, struct enl_header *h)
{
	struct enl_limits lim = {1 << 20};
	struct enl_header peek;
	struct enl_message *m = NULL;
	int64_t now = (int64_t)time(NULL);

	if (enl_envelope_peek(s->envelope.data, s->envelope.len, &w->srv->lim, &peek) == ENL_OK &&
	    peek.type == ENL_MSG_CONSENT_DECISION && peek.n_recipients == 1 &&
	    strcmp(peek.recipients[0], enl_identity_id(w->srv->p.me)) == 0 &&
	    enl_envelope_open(s->envelope.data, s->envelope.len, w->srv->p.me, &w->dir->kr, &lim,
			      now, &m) == ENL_OK) {
		*h = m->header;
		memcpy(w->sub.hash, m->hash, ENL_HASH_LEN);
		w->sub.opened = m;
		return ENL_OK;
	}
	return enl_envelope_verify(s->envelope.data, s->envelope.len, &w->dir->kr, &w->srv->lim,
				   now, h, w->sub.hash);
}

int
handle_submit(struct work *w)
{
	const Enlace__SubmitReq *s = w->req->submit;
	struct enl_header *h;
	char why[256];
	int rc;

	w->sub.drop = submit_drop;
	if ((h = malloc(sizeof(*h))) == NULL)
		return ENL_E_NOMEM;
	w->sub.hdr = h;
	rc = submit_verify(w, s, h);
	if (rc == ENL_E_NOMEM)
		return rc;
	if (rc != ENL_OK)
		return submit_refuse(w, rc, NULL);
	w->sub.hdr_ok = true;
	if (strcmp(h->sender, w->agency) != 0) {
		blog("refused SUBMIT from %s: envelope claims sender %s", w->agency, h->sender);
		return submit_refuse(w, ENL_E_INVAL,
				     "the envelope's sender is not this session's agency");
	}
	for (size_t i = 0; i < h->n_recipients; i++) {
		if (enl_directory_find(w->dir->dir, h->recipients[i]) == NULL) {
			snprintf(why, sizeof(why), "unknown recipient %s", h->recipients[i]);
			return submit_refuse(w, ENL_E_UNKNOWN_RECIPIENT, why);
		}
		/* (a forward's own check says more: the forwarder itself) */
		if (h->type != ENL_MSG_FORWARD && strcmp(h->recipients[i], h->sender) == 0)
			return submit_refuse(w, ENL_E_INVAL, "the sender is one of the recipients: "
				"a message goes to other agencies");
	}
	if (h->type == ENL_MSG_CONSENT_REQUEST)
		return submit_refuse(w, ENL_E_PERMISSION, "only the broker makes consent requests");
	if (h->type == ENL_MSG_CONSENT_DECISION && (rc = decision_open(w, why, sizeof(why))) != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : submit_refuse(w, rc, why);
	if ((rc = decide(w)) != ENL_OK)
		return rc;
	w->sub.env = s->envelope.data;
	w->sub.env_len = s->envelope.len;
	w->job.write = submit_write;
	w->job.done = submit_done;
	writer_submit(w->srv->p.writer, &w->job);
	return 0;
}
