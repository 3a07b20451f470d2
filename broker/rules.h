/*
 * The sharing rules the broker enforces on forwards and consent
 * decisions (docs/POLICY.md, "Handling, enforced"), as pure functions of
 * what they are checked against: no store, no session. Each returns
 * ENL_OK, or ENL_E_PERMISSION with `why` (a sentence for the sender's
 * receipt and the audit log).
 */
#ifndef ENLACE_BROKER_RULES_H
#define ENLACE_BROKER_RULES_H

#include "broker.h"
#include "enlace/wire.h"

/*
 * A FORWARD with header h, by its sender, of a message whose original
 * (the innermost, and the one forwarded: o->via) the store describes:
 * it names an original; its sender received the message; the original's
 * handling allows forwarding (not TLP:RED or AMBER+STRICT, onward sharing
 * not NEVER); and the forward weakens neither handling.
 */
int rules_forward(const struct enl_header *h, const struct original_info *o, char *why,
		  size_t cap) ENL_WUR;

/* A header that is not a FORWARD must not name an original. */
int rules_not_forward(const struct enl_header *h, char *why, size_t cap) ENL_WUR;

/* TLP:AMBER stays in its country: whether a forward of an original of
 * that handling may go from the agency of card `from` to that of `to`
 * (either NULL: not in the directory, so no). */
bool rules_amber_stays_home(const struct original_info *o, const struct enl_card *from,
			    const struct enl_card *to);

/*
 * A consent decision d, sent by `agency` at `now`, against the request
 * c it answers: only the originator decides, on exactly the request's
 * original, forward and recipient, once, and before the request expires.
 */
int rules_consent(const struct consent *c, const Enlace__ConsentDecision *d,
		  const char *agency, int64_t now, char *why, size_t cap) ENL_WUR;

#endif
