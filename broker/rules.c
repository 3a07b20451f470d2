/* The sharing rules of forwards and consent decisions (rules.h). */
#include <stdio.h>
#include <string.h>

#include "rules.h"

int
rules_not_forward(const struct enl_header *h, char *why, size_t cap)
{
	if (h->type == ENL_MSG_FORWARD && !h->has_forward_of) {
		snprintf(why, cap, "a FORWARD must name its original (forward-of)");
		return ENL_E_PERMISSION;
	}
	if (h->type != ENL_MSG_FORWARD && h->has_forward_of) {
		snprintf(why, cap, "only a FORWARD may name an original (forward-of)");
		return ENL_E_PERMISSION;
	}
	return ENL_OK;
}

/* A forward's handling is at least its original's, each code. */
static bool
weakens(const struct enl_handling *fwd, const struct enl_handling *orig)
{
	return fwd->tlp < orig->tlp || fwd->onward < orig->onward ||
	       fwd->evidential < orig->evidential;
}

int
rules_forward(const struct enl_header *h, const struct original_info *o, char *why, size_t cap)
{
	why[0] = '\0';
	if (h->type != ENL_MSG_FORWARD || !h->has_forward_of) {
		snprintf(why, cap, h->type == ENL_MSG_FORWARD
				   ? "a FORWARD must name its original (forward-of)"
				   : "only a FORWARD may name an original (forward-of)");
		return ENL_E_PERMISSION;
	}
	if (o->forwarder_state == 0 || o->forwarder_state == DS_REJECTED ||
	    o->forwarder_state == DS_HELD)
		snprintf(why, cap, "%s never received the original, so cannot forward it", h->sender);
	else if (!enl_forward_to_third_parties(h, h->sender, o->sender, why, cap))
		;	/* why says it */
	else if (o->handling.tlp == ENL_TLP_RED)
		snprintf(why, cap, "the original is TLP:RED: it goes only to the recipients its "
			 "originator named, never further");
	else if (o->handling.tlp == ENL_TLP_AMBER_STRICT)
		snprintf(why, cap, "the original is TLP:AMBER+STRICT: it stays inside the "
			 "recipient agency");
	else if (o->handling.onward == ENL_ONWARD_NEVER)
		snprintf(why, cap, "the originator %s forbids onward sharing (NEVER)", o->sender);
	else if (weakens(&h->handling, &o->handling) || weakens(&h->handling, &o->via))
		snprintf(why, cap, "a forward can never weaken the original's handling");
	return why[0] == '\0' ? ENL_OK : ENL_E_PERMISSION;
}

bool
rules_amber_stays_home(const struct original_info *o, const struct enl_card *from,
		       const struct enl_card *to)
{
	if (o->handling.tlp != ENL_TLP_AMBER)
		return true;
	return from != NULL && to != NULL && strcmp(from->country, to->country) == 0;
}

int
rules_consent(const struct consent *c, const Enlace__ConsentDecision *d, const char *agency,
	      int64_t now, char *why, size_t cap)
{
	if (strcmp(c->originator, agency) != 0)
		snprintf(why, cap, "only the originator %s decides on its message, not %s",
			 c->originator, agency);
	else if (d->original_id.len != ENL_MSG_ID_LEN || d->original_hash.len != ENL_HASH_LEN ||
		 d->forward_id.len != ENL_MSG_ID_LEN ||
		 memcmp(c->original_id, d->original_id.data, ENL_MSG_ID_LEN) != 0 ||
		 memcmp(c->original_hash, d->original_hash.data, ENL_HASH_LEN) != 0 ||
		 memcmp(c->forward_id, d->forward_id.data, ENL_MSG_ID_LEN) != 0 ||
		 strcmp(c->recipient, d->recipient) != 0)
		snprintf(why, cap, "the decision does not match the request (original, forward "
			 "and recipient must be the request's)");
	else if (c->state == CONSENT_EXPIRED_S || now >= c->expires_at)
		snprintf(why, cap, "the consent request has expired");
	else if (c->state != CONSENT_PENDING)
		snprintf(why, cap, "this request was decided already: a decision is taken once");
	else
		return ENL_OK;
	return ENL_E_PERMISSION;
}
