/*
 * What the audit log says of one message: its entries (a trail), checked
 * against a directory, and evidence bundles that carry them with their
 * inclusion proofs, a signed checkpoint and the directory, to be checked
 * offline with nothing but the directory authority's public key.
 */
#ifndef ENLACE_EVIDENCE_H
#define ENLACE_EVIDENCE_H

#include <stdio.h>

#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/wire.h"

#define EVIDENCE_VERSION "enlace-evidence/v1"
#define EVIDENCE_MAX ((size_t)64 << 20)

struct trail_event {
	uint64_t index;
	uint8_t *bytes;			/* the entry as logged */
	size_t len;
	Enlace__AuditEntry *e;
	int ack;			/* ACKED: 1 verified, -1 does not, 0 not checked,
					 * -2 verified with a key revoked before it */
	int64_t revoked_at;		/* ... -2: when that key was revoked */
};

struct trail {
	uint8_t id[ENL_MSG_ID_LEN];
	struct trail_event *ev;	/* grown by trail_add, at most TRAIL_MAX */
	size_t n, cap;
	uint8_t (*forwards)[ENL_MSG_ID_LEN];	/* the forwards of the message */
	size_t n_forwards, cap_forwards;	/* ... at most TRAIL_MAX */
};

#define TRAIL_MAX ((size_t)1 << 24)

/*
 * True if entry `e` belongs to the message's trail: its own entries, the
 * entries naming it as their original (a forward's submission, its
 * consent), and every entry of those forwards (their delivery to the
 * third party). Entries must come in log order; a forward's submission
 * is remembered. ENL_E_NOMEM leaves *in false.
 */
int trail_wants(struct trail *t, const Enlace__AuditEntry *e, bool *in) ENL_WUR;

/* The name of an audit event ("SUBMITTED", "QUEUED", ...). */
const char *audit_event_name(int event);

/* Decodes one entry (canonical AuditEntry). ENL_E_MALFORMED. */
int audit_entry_decode(const uint8_t *buf, size_t len, Enlace__AuditEntry **out) ENL_WUR;

/* Adds an entry of the trail's message (copied). */
int trail_add(struct trail *t, uint64_t index, const uint8_t *entry, size_t len,
	      Enlace__AuditEntry *decoded) ENL_WUR;
void trail_free(struct trail *t);

/* Checks every ACKED entry's signature with the recipient's keys in the
 * directory. ENL_E_BAD_SIGNATURE if one fails (its event says which). */
int trail_check_acks(struct trail *t, const struct enl_directory *dir) ENL_WUR;

/*
 * The trail holds every entry about each message it names, up to the
 * last it holds: each entry's `previous` (and, naming an original,
 * `previous_original`) is the entry before it in the trail about that
 * message, or 0 for the first (docs/FORMATS.md, "Evidence bundle").
 * ENL_OK, or ENL_E_MALFORMED with why; ENL_E_NOMEM.
 */
int trail_check_chains(const struct trail *t, char *why, size_t cap) ENL_WUR;

void trail_print(const struct trail *t, FILE *out);
void trail_json(const struct trail *t, struct enl_json *j);

/*
 * Checks a bundle: canonical encoding; the directory signed by the
 * authority; the checkpoint signed by the directory's broker, and every
 * other signature line on it a valid cosignature by an agency of the
 * directory; every entry of the bundle's message and included under the
 * checkpoint; every acknowledgement signed by its recipient. On success
 * *t is the trail and *cosigners lists who cosigned (comma-separated, in
 * a buffer of cap bytes). On failure `why` says what is wrong.
 * authority_pk NULL trusts whatever authority the directory names: for
 * fuzzing only, never for evidence.
 */
int evidence_check(const uint8_t *buf, size_t len, const uint8_t authority_pk[32],
		   struct trail *t, uint64_t *checkpoint_size, char *cosigners, size_t cap,
		   char *why, size_t why_cap) ENL_WUR;

#endif
