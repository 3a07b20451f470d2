/*
 * An envelope's header: its rules, the handling codes' consistency, and
 * the one converter between struct enl_header and its protobuf.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/proto.h"
#include "enlace/wire.h"
#include "proto_int.h"

struct enl_limits
enl_limits_default(void)
{
	struct enl_limits lim = {.max_payload = ENL_DEFAULT_MAX_PAYLOAD};

	return lim;
}

size_t
enl_envelope_max_size(const struct enl_limits *lim)
{
	return lim->max_payload + TAG_LEN + ENL_ENVELOPE_OVERHEAD_MAX;
}

bool
enl_handling_consistent(const struct enl_handling *hd, char *why, size_t cap)
{
	if (hd->onward == ENL_ONWARD_FREE &&
	    (hd->tlp == ENL_TLP_RED || hd->tlp == ENL_TLP_AMBER_STRICT)) {
		if (why != NULL)
			snprintf(why, cap, "TLP:%s is never shared onward, so onward sharing "
				 "FREE contradicts it: use consent or never",
				 hd->tlp == ENL_TLP_RED ? "RED" : "AMBER+STRICT");
		return false;
	}
	return true;
}

/* The rules every header obeys, sealed or received. */
int
header_check(const struct enl_header *h)
{
	if (!enl_id_valid(h->sender) || h->sender_key_version == 0)
		return ENL_E_INVAL;
	if (h->n_recipients == 0 || h->n_recipients > ENL_MAX_RECIPIENTS)
		return ENL_E_INVAL;
	for (size_t i = 0; i < h->n_recipients; i++) {
		if (!enl_id_valid(h->recipients[i]))
			return ENL_E_INVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(h->recipients[i], h->recipients[j]) == 0)
				return ENL_E_INVAL;
	}
	if (enl_msg_type_name(h->type) == NULL ||
	    enl_tlp_name(h->handling.tlp) == NULL ||
	    enl_onward_name(h->handling.onward) == NULL ||
	    enl_evidential_name(h->handling.evidential) == NULL ||
	    !enl_handling_consistent(&h->handling, NULL, 0))
		return ENL_E_INVAL;
	if ((h->reliability != 0 && enl_reliability_name(h->reliability) == NULL) ||
	    h->assessment > 4 ||
	    (h->priority != 0 && enl_priority_name(h->priority) == NULL))
		return ENL_E_INVAL;
	if (!enl_text_valid(h->case_ref, ENL_CASE_REF_MAX))
		return ENL_E_INVAL;
	if (h->created_at <= 0 || h->expires_at < 0 || h->reply_by < 0)
		return ENL_E_INVAL;
	if (h->type == ENL_MSG_FORWARD && !h->has_forward_of)
		return ENL_E_INVAL;
	return ENL_OK;
}

bool
enl_forward_to_third_parties(const struct enl_header *h, const char *forwarder,
			     const char *originator, char *why, size_t cap)
{
	for (size_t i = 0; i < h->n_recipients; i++) {
		const char *to = h->recipients[i];
		if (strcmp(to, forwarder) == 0) {
			snprintf(why, cap, "a forward goes to third parties: %s is the "
				 "forwarder itself", to);
			return false;
		}
		if (strcmp(to, originator) == 0) {
			snprintf(why, cap, "a forward goes to third parties: %s is the "
				 "originator, which has the message", to);
			return false;
		}
	}
	return true;
}

/* ---- header <-> wire ---- */

void
enl_header_to_pb(const struct enl_header *h, Enlace__Header *w, Enlace__Handling *hd,
		 char *rcpt[ENL_MAX_RECIPIENTS])
{
	enlace__header__init(w);
	enlace__handling__init(hd);
	for (size_t i = 0; i < h->n_recipients; i++)
		rcpt[i] = (char *)h->recipients[i];
	hd->tlp = (Enlace__Tlp)h->handling.tlp;
	hd->onward = (Enlace__Onward)h->handling.onward;
	hd->evidential = (Enlace__Evidential)h->handling.evidential;
	w->format = FORMAT;
	w->message_id.data = (uint8_t *)h->message_id;
	w->message_id.len = ENL_MSG_ID_LEN;
	w->sender = (char *)h->sender;
	w->sender_key_version = h->sender_key_version;
	w->n_recipients = h->n_recipients;
	w->recipients = rcpt;
	w->created_at = h->created_at;
	w->type = (Enlace__MessageType)h->type;
	w->handling = hd;
	w->reliability = (Enlace__Reliability)h->reliability;
	w->assessment = h->assessment;
	w->case_ref = (char *)h->case_ref;
	if (h->has_in_reply_to) {
		w->in_reply_to.data = (uint8_t *)h->in_reply_to;
		w->in_reply_to.len = ENL_MSG_ID_LEN;
	}
	if (h->has_forward_of) {
		w->forward_of.data = (uint8_t *)h->forward_of;
		w->forward_of.len = ENL_MSG_ID_LEN;
	}
	w->expires_at = h->expires_at;
	w->priority = (Enlace__Priority)h->priority;
	w->reply_by = h->reply_by;
}

int
header_pack(const struct enl_header *h, uint8_t **out, size_t *out_len)
{
	Enlace__Header w;
	Enlace__Handling hd;
	char *rcpt[ENL_MAX_RECIPIENTS];

	enl_header_to_pb(h, &w, &hd, rcpt);
	if (protobuf_c_message_get_packed_size(&w.base) > HEADER_MAX)
		return ENL_E_TOO_LARGE;
	return enl_pb_pack(&w.base, out, out_len);
}

bool
copy_id(char dst[static ENL_ID_MAX + 1], const char *src)
{
	size_t n = strlen(src);

	if (n > ENL_ID_MAX)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

static bool
copy_msg_id(uint8_t dst[ENL_MSG_ID_LEN], bool *has, ProtobufCBinaryData b)
{
	if (b.len == 0)
		return true;
	if (b.len != ENL_MSG_ID_LEN)
		return false;
	memcpy(dst, b.data, ENL_MSG_ID_LEN);
	if (has != NULL)
		*has = true;
	return true;
}

int
enl_header_from_pb(const Enlace__Header *w, struct enl_header *h)
{
	memset(h, 0, sizeof(*h));
	if (w->format != FORMAT)
		return w->format == 0 ? ENL_E_MALFORMED : ENL_E_UNSUPPORTED;
	if (w->message_id.len != ENL_MSG_ID_LEN || w->handling == NULL ||
	    w->n_recipients > ENL_MAX_RECIPIENTS ||
	    strlen(w->case_ref) > ENL_CASE_REF_MAX || !copy_id(h->sender, w->sender))
		return ENL_E_MALFORMED;
	memcpy(h->message_id, w->message_id.data, ENL_MSG_ID_LEN);
	h->sender_key_version = w->sender_key_version;
	h->n_recipients = w->n_recipients;
	for (size_t i = 0; i < w->n_recipients; i++)
		if (!copy_id(h->recipients[i], w->recipients[i]))
			return ENL_E_MALFORMED;
	h->created_at = w->created_at;
	h->type = (enum enl_msg_type)w->type;
	h->handling.tlp = (enum enl_tlp)w->handling->tlp;
	h->handling.onward = (enum enl_onward)w->handling->onward;
	h->handling.evidential = (enum enl_evidential)w->handling->evidential;
	h->reliability = (enum enl_reliability)w->reliability;
	h->assessment = w->assessment;
	memcpy(h->case_ref, w->case_ref, strlen(w->case_ref) + 1);
	if (!copy_msg_id(h->in_reply_to, &h->has_in_reply_to, w->in_reply_to) ||
	    !copy_msg_id(h->forward_of, &h->has_forward_of, w->forward_of))
		return ENL_E_MALFORMED;
	h->expires_at = w->expires_at;
	h->priority = (enum enl_priority)w->priority;
	h->reply_by = w->reply_by;
	return header_check(h) == ENL_OK ? ENL_OK : ENL_E_MALFORMED;
}

int
header_unpack(const uint8_t *buf, size_t len, struct enl_header *h)
{
	Enlace__Header *w = NULL;
	int rc;

	rc = enl_pb_unpack(&enlace__header__descriptor, buf, len, HEADER_MAX,
			   (ProtobufCMessage **)&w);
	if (rc != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	rc = enl_header_from_pb(w, h);
	protobuf_c_message_free_unpacked(&w->base, NULL);
	return rc;
}

/* ---- payload ---- */

/* A message that carries a signed original is a forward, whatever else it
 * says: only a FORWARD naming its original (forward_of) may carry one, so
 * that a re-wrapped original can never pass for a new message. */
bool
carries_original_rightly(const struct enl_header *h, bool carries)
{
	return !carries || (h->type == ENL_MSG_FORWARD && h->has_forward_of);
}
