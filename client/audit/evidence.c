/* Trails and evidence bundles: see evidence.h. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/session.h"
#include "enlace/tlog.h"
#include "evidence.h"

const char *
audit_event_name(int event)
{
	static const char *const names[] = {
		[ENLACE__AUDIT_EVENT__SUBMITTED] = "SUBMITTED",
		[ENLACE__AUDIT_EVENT__AUDIT_QUEUED] = "QUEUED",
		[ENLACE__AUDIT_EVENT__HELD_FOR_CONSENT] = "HELD_FOR_CONSENT",
		[ENLACE__AUDIT_EVENT__CONSENT_GRANTED] = "CONSENT_GRANTED",
		[ENLACE__AUDIT_EVENT__CONSENT_DENIED] = "CONSENT_DENIED",
		[ENLACE__AUDIT_EVENT__AUDIT_REJECTED] = "REJECTED",
		[ENLACE__AUDIT_EVENT__AUDIT_FETCHED] = "FETCHED",
		[ENLACE__AUDIT_EVENT__AUDIT_ACKED] = "ACKED",
		[ENLACE__AUDIT_EVENT__EXPIRED] = "EXPIRED",
		[ENLACE__AUDIT_EVENT__DIRECTORY_UPDATED] = "DIRECTORY_UPDATED",
		[ENLACE__AUDIT_EVENT__POLICY_LOADED] = "POLICY_LOADED",
		[ENLACE__AUDIT_EVENT__BROKER_STARTED] = "BROKER_STARTED",
		[ENLACE__AUDIT_EVENT__REFUSED_BY_RECIPIENT] = "REFUSED_BY_RECIPIENT",
		[ENLACE__AUDIT_EVENT__CONSENT_REQUESTED] = "CONSENT_REQUESTED",
		[ENLACE__AUDIT_EVENT__CONSENT_EXPIRED] = "CONSENT_EXPIRED",
	};

	if (event <= 0 || (size_t)event >= sizeof(names) / sizeof(names[0]) ||
	    names[event] == NULL)
		return "UNKNOWN";
	return names[event];
}

int
audit_entry_decode(const uint8_t *buf, size_t len, Enlace__AuditEntry **out)
{
	Enlace__AuditEntry *e = NULL;
	int rc = enl_pb_unpack(&enlace__audit_entry__descriptor, buf, len, ENL_TLOG_ENTRY_MAX,
			       (ProtobufCMessage **)&e);

	if (rc != ENL_OK)
		return rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
	/* the fields an entry may hold, each of its size */
	if (strcmp(audit_event_name(e->event), "UNKNOWN") == 0 ||
	    (e->message_id.len != 0 && e->message_id.len != ENL_MSG_ID_LEN) ||
	    (e->envelope_hash.len != 0 && e->envelope_hash.len != ENL_HASH_LEN) ||
	    (e->ack_signature.len != 0 && e->ack_signature.len != 64) ||
	    (e->original_id.len != 0 && e->original_id.len != ENL_MSG_ID_LEN) ||
	    !enl_text_valid(e->sender, ENL_ID_MAX) || !enl_text_valid(e->recipient, ENL_ID_MAX) ||
	    !enl_text_valid(e->reason, 1024)) {
		protobuf_c_message_free_unpacked(&e->base, NULL);
		return ENL_E_MALFORMED;
	}
	*out = e;
	return ENL_OK;
}

int
trail_add(struct trail *t, uint64_t index, const uint8_t *entry, size_t len,
	  Enlace__AuditEntry *decoded)
{
	struct trail_event *ev;

	if ((ev = enl_vec_push_(&t->ev, &t->n, &t->cap, TRAIL_MAX, sizeof(*t->ev))) == NULL)
		return ENL_E_NOMEM;
	t->n--;	/* counted once it holds its bytes */
	if ((ev->bytes = malloc(len ? len : 1)) == NULL)
		return ENL_E_NOMEM;
	memcpy(ev->bytes, entry, len);
	ev->len = len;
	ev->index = index;
	ev->e = decoded;
	t->n++;
	return ENL_OK;
}

int
trail_wants(struct trail *t, const Enlace__AuditEntry *e, bool *in)
{
	bool own = e->message_id.len == ENL_MSG_ID_LEN &&
		   memcmp(e->message_id.data, t->id, ENL_MSG_ID_LEN) == 0;
	bool child = e->original_id.len == ENL_MSG_ID_LEN &&
		     memcmp(e->original_id.data, t->id, ENL_MSG_ID_LEN) == 0;

	*in = own || child;
	for (size_t i = 0; !*in && e->message_id.len == ENL_MSG_ID_LEN && i < t->n_forwards; i++)
		*in = memcmp(e->message_id.data, t->forwards[i], ENL_MSG_ID_LEN) == 0;
	if (child && e->event == ENLACE__AUDIT_EVENT__SUBMITTED &&
	    e->message_id.len == ENL_MSG_ID_LEN) {
		uint8_t *id = enl_vec_push_(&t->forwards, &t->n_forwards, &t->cap_forwards,
					    TRAIL_MAX, sizeof(*t->forwards));
		if (id == NULL) {
			*in = false;
			return ENL_E_NOMEM;
		}
		memcpy(id, e->message_id.data, ENL_MSG_ID_LEN);
	}
	return ENL_OK;
}

void
trail_free(struct trail *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->ev[i].bytes);
		if (t->ev[i].e != NULL)
			protobuf_c_message_free_unpacked(&t->ev[i].e->base, NULL);
	}
	free(t->ev);
	free(t->forwards);
	memset(t, 0, sizeof(*t));
}

/* The last entry seen of each message (1 + its index). */
struct seen {
	uint8_t id[ENL_MSG_ID_LEN];
	uint64_t last;
};

static uint64_t *
seen_of(struct seen *s, size_t *n, const uint8_t id[ENL_MSG_ID_LEN])
{
	for (size_t i = 0; i < *n; i++)
		if (memcmp(s[i].id, id, ENL_MSG_ID_LEN) == 0)
			return &s[i].last;
	memcpy(s[*n].id, id, ENL_MSG_ID_LEN);
	s[*n].last = 0;
	return &s[(*n)++].last;
}

/* The messages whose every entry the trail holds: its own, and its
 * forwards'. */
static bool
in_scope(const struct trail *t, const uint8_t id[ENL_MSG_ID_LEN])
{
	if (memcmp(id, t->id, ENL_MSG_ID_LEN) == 0)
		return true;
	for (size_t i = 0; i < t->n_forwards; i++)
		if (memcmp(id, t->forwards[i], ENL_MSG_ID_LEN) == 0)
			return true;
	return false;
}

int
trail_check_chains(const struct trail *t, char *why, size_t cap)
{
	struct seen *s = calloc(2 * t->n + 1, sizeof(*s));
	size_t n = 0;
	char hex[2 * ENL_MSG_ID_LEN + 1];
	int rc = ENL_OK;

	if (s == NULL)
		return ENL_E_NOMEM;
	for (size_t i = 0; i < t->n && rc == ENL_OK; i++) {
		const Enlace__AuditEntry *e = t->ev[i].e;
		const ProtobufCBinaryData *ids[2] = {&e->message_id, &e->original_id};
		const uint64_t got[2] = {e->previous, e->previous_original};
		if (i > 0 && t->ev[i].index <= t->ev[i - 1].index) {
			snprintf(why, cap, "the entries are not in log order (entry %llu after %llu)",
				 (unsigned long long)t->ev[i].index,
				 (unsigned long long)t->ev[i - 1].index);
			rc = ENL_E_MALFORMED;
			break;
		}
		for (int k = 0; k < 2 && rc == ENL_OK; k++) {
			uint64_t *last;
			if (ids[k]->len != ENL_MSG_ID_LEN || !in_scope(t, ids[k]->data))
				continue;
			last = seen_of(s, &n, ids[k]->data);
			if (got[k] != *last) {
				enl_hex(ids[k]->data, ENL_MSG_ID_LEN, hex);
				if (got[k] > *last)
					snprintf(why, cap, "incomplete: entry %llu says the entry before it "
						 "about message %s is %llu, which the bundle does not hold",
						 (unsigned long long)t->ev[i].index, hex,
						 (unsigned long long)(got[k] - 1));
				else
					snprintf(why, cap, "entry %llu does not name the entry before it "
						 "about message %s (it names %llu): the log does not "
						 "chain them", (unsigned long long)t->ev[i].index, hex,
						 (unsigned long long)got[k]);
				rc = ENL_E_MALFORMED;
			}
			*last = t->ev[i].index + 1;
		}
	}
	free(s);
	return rc;
}

int
trail_check_acks(struct trail *t, const struct enl_directory *dir)
{
	int rc = ENL_OK;

	for (size_t i = 0; i < t->n; i++) {
		const Enlace__AuditEntry *e = t->ev[i].e;
		if (e->event != ENLACE__AUDIT_EVENT__AUDIT_ACKED)
			continue;
		t->ev[i].ack = -1;
		/* not revoked when the broker logged it */
		if (e->ack_signature.len == 64 && e->envelope_hash.len == ENL_HASH_LEN &&
		    e->message_id.len == ENL_MSG_ID_LEN) {
			int r = enl_directory_ack_check(dir, e->recipient, e->message_id.data,
							e->envelope_hash.data, e->ack_time,
							e->ack_signature.data, e->time,
							&t->ev[i].revoked_at);
			t->ev[i].ack = r == ENL_OK ? 1 : r == ENL_E_REVOKED_KEY ? -2 : -1;
		}
		if (t->ev[i].ack < 0)
			rc = t->ev[i].ack == -2 ? ENL_E_REVOKED_KEY : ENL_E_BAD_SIGNATURE;
	}
	return rc;
}

/* Who did it, or to whom it happened, in words. */
static void
event_who(const Enlace__AuditEntry *e, char *out, size_t cap)
{
	switch (e->event) {
	case ENLACE__AUDIT_EVENT__SUBMITTED:
		snprintf(out, cap, "by %s", e->sender);
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_QUEUED:
		snprintf(out, cap, "for %s%s%s", e->recipient, e->reason[0] ? ", " : "", e->reason);
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_REJECTED:
		if (e->recipient[0])	/* one recipient, by the policy */
			snprintf(out, cap, "for %s: %s", e->recipient, e->reason);
		else			/* the whole submission */
			snprintf(out, cap, "from %s: %s", e->sender, e->reason);
		break;
	case ENLACE__AUDIT_EVENT__REFUSED_BY_RECIPIENT:
		snprintf(out, cap, "by %s: %s", e->recipient, e->reason);
		break;
	case ENLACE__AUDIT_EVENT__HELD_FOR_CONSENT:
	case ENLACE__AUDIT_EVENT__CONSENT_REQUESTED:
	case ENLACE__AUDIT_EVENT__CONSENT_GRANTED:
	case ENLACE__AUDIT_EVENT__CONSENT_DENIED:
	case ENLACE__AUDIT_EVENT__CONSENT_EXPIRED:
	case ENLACE__AUDIT_EVENT__EXPIRED:
		snprintf(out, cap, "for %s: %s", e->recipient, e->reason);
		break;
	default:
		snprintf(out, cap, "%s%s%s%s", e->recipient[0] ? "by " : "", e->recipient,
			 e->recipient[0] && e->reason[0] ? ": " : "", e->reason);
	}
}

void
trail_print(const struct trail *t, FILE *out)
{
	char hex[65], when[32], who[1200];

	enl_hex(t->id, ENL_MSG_ID_LEN, hex);
	fprintf(out, "message %s: %zu entries in the audit log\n", hex, t->n);
	for (size_t i = 0; i < t->n; i++) {
		const Enlace__AuditEntry *e = t->ev[i].e;
		enl_time_format(e->time, when);
		event_who(e, who, sizeof(who));
		fprintf(out, "  #%-8llu %s  %-20s %s", (unsigned long long)t->ev[i].index, when,
			audit_event_name(e->event), who);
		if (e->message_id.len == ENL_MSG_ID_LEN &&
		    memcmp(e->message_id.data, t->id, ENL_MSG_ID_LEN) != 0) {
			enl_hex(e->message_id.data, ENL_MSG_ID_LEN, hex);
			fprintf(out, " [message %.8s]", hex);
		}
		if (e->event == ENLACE__AUDIT_EVENT__SUBMITTED && e->envelope_hash.len) {
			enl_hex(e->envelope_hash.data, ENL_HASH_LEN, hex);
			fprintf(out, " (envelope %.16s...)", hex);
		}
		if (e->event == ENLACE__AUDIT_EVENT__AUDIT_ACKED) {
			enl_time_format(e->ack_time, when);
			fprintf(out, ", signed at %s: %s", when,
				t->ev[i].ack > 0 ? "signature VERIFIED"
				: t->ev[i].ack == -2 ? "signature by a key REVOKED before it, at"
				: t->ev[i].ack < 0 ? "signature DOES NOT VERIFY" : "signature not checked");
			if (t->ev[i].ack == -2) {
				enl_time_format(t->ev[i].revoked_at, when);
				fprintf(out, " %s: do not rely on it", when);
			}
		}
		fputc('\n', out);
	}
}

void
trail_json(const struct trail *t, struct enl_json *j)
{
	char hex[129], when[32];

	enl_hex(t->id, ENL_MSG_ID_LEN, hex);
	enl_json_str(j, "message_id", hex);
	enl_json_arr_begin(j, "entries");
	for (size_t i = 0; i < t->n; i++) {
		const Enlace__AuditEntry *e = t->ev[i].e;
		enl_json_obj_begin(j, NULL);
		enl_json_int(j, "index", (int64_t)t->ev[i].index);
		enl_time_format(e->time, when);
		enl_json_str(j, "time", when);
		enl_json_str(j, "event", audit_event_name(e->event));
		if (e->message_id.len == ENL_MSG_ID_LEN &&
		    memcmp(e->message_id.data, t->id, ENL_MSG_ID_LEN) != 0) {
			enl_hex(e->message_id.data, ENL_MSG_ID_LEN, hex);
			enl_json_str(j, "message_id", hex);
		}
		if (e->sender[0])
			enl_json_str(j, "sender", e->sender);
		if (e->recipient[0])
			enl_json_str(j, "recipient", e->recipient);
		if (e->reason[0])
			enl_json_str(j, "reason", e->reason);
		if (e->envelope_hash.len) {
			enl_hex(e->envelope_hash.data, e->envelope_hash.len, hex);
			enl_json_str(j, "envelope_hash", hex);
		}
		if (e->event == ENLACE__AUDIT_EVENT__AUDIT_ACKED) {
			enl_time_format(e->ack_time, when);
			enl_json_str(j, "ack_time", when);
			if (t->ev[i].ack != 0)
				enl_json_bool(j, "ack_signature_valid", t->ev[i].ack > 0);
			if (t->ev[i].ack == -2) {
				enl_time_format(t->ev[i].revoked_at, when);
				enl_json_str(j, "ack_key_revoked_at", when);
			}
		}
		enl_json_obj_end(j);
	}
	enl_json_arr_end(j);
}

/* ---- bundles ---- */

#define fail(...) snprintf(why, why_cap, __VA_ARGS__)

/* Verifiers for the checkpoint: the broker's note keys (the first
 * *n_broker: every version not revoked, as it may have rotated since),
 * and every key version of every card as a cosigner. */
static int
checkpoint_verifiers(const struct enl_directory *dir, const struct enl_card *broker,
		     struct enl_note_verifier **out, size_t *n, size_t *n_broker)
{
	size_t cards = enl_directory_card_count(dir), total = ENL_MAX_KEY_VERSIONS, k = 0;
	struct enl_note_keys *keys = malloc(sizeof(*keys));
	struct enl_note_verifier *v = NULL;
	char name[ENL_VKEY_NAME_MAX + 1];

	for (size_t i = 0; i < cards; i++)
		total += enl_directory_card_at(dir, i)->n_keys;
	if (keys == NULL || (v = calloc(total, sizeof(*v))) == NULL) {
		free(keys);
		return ENL_E_NOMEM;
	}
	snprintf(name, sizeof(name), "enlace/%s", broker->id);
	enl_card_note_keys(dir, broker, name, false, keys);
	memcpy(v, keys->v, keys->n * sizeof(*v));
	k = *n_broker = keys->n;
	for (size_t i = 0; i < cards; i++) {
		const struct enl_card *c = enl_directory_card_at(dir, i);
		enl_card_note_keys(NULL, c, c->id, true, keys);
		memcpy(v + k, keys->v, keys->n * sizeof(*v));
		k += keys->n;
	}
	free(keys);
	*out = v;
	*n = k;
	return ENL_OK;
}

/* The number of signature lines of a note whose text is tl bytes. */
static size_t
signature_lines(const char *note, size_t tl)
{
	size_t n = 0;

	for (const char *p = note + tl + 1; *p; p++)
		n += *p == '\n';
	return n;
}

/* When a checkpoint does not open: the cosigner (v[nb..nv)) whose line
 * fails while the broker's own signature (v[0..nb)) holds, or NULL. */
static const char *
bad_cosigner(const char *note, const struct enl_note_verifier *v, size_t nv, size_t nb)
{
	struct enl_note_verifier two[ENL_MAX_KEY_VERSIONS + 1];
	size_t tl;
	bool ok[ENL_MAX_KEY_VERSIONS + 1];

	if (nb > ENL_MAX_KEY_VERSIONS || enl_note_open(note, strlen(note), v, nb, &tl, ok) != ENL_OK)
		return NULL;	/* the broker's signature is what fails */
	memcpy(two, v, nb * sizeof(*v));
	for (size_t i = nb; i < nv; i++) {
		two[nb] = v[i];
		if (enl_note_open(note, strlen(note), two, nb + 1, &tl, ok) != ENL_OK)
			return v[i].name;
	}
	return NULL;
}

int
evidence_check(const uint8_t *buf, size_t len, const uint8_t authority_pk[32],
	       struct trail *t, uint64_t *checkpoint_size, char *cosigners, size_t cap,
	       char *why, size_t why_cap)
{
	Enlace__EvidenceBundle *b = NULL;
	struct enl_directory *dir = NULL;
	struct enl_note_verifier *v = NULL;
	const struct enl_card *broker;
	struct enl_checkpoint cp;
	bool *ok = NULL;
	size_t nv = 0, nb = 0, tl = 0, n_ok = 0;
	bool by_broker = false;
	int64_t first_time = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	cosigners[0] = '\0';
	why[0] = '\0';
	rc = enl_pb_unpack(&enlace__evidence_bundle__descriptor, buf, len, EVIDENCE_MAX,
			   (ProtobufCMessage **)&b);
	if (rc != ENL_OK) {
		rc = rc == ENL_E_NOMEM ? rc : ENL_E_MALFORMED;
		fail("not an evidence bundle (or not in its canonical encoding)");
		return rc;
	}
	rc = ENL_E_MALFORMED;
	if (strcmp(b->version, EVIDENCE_VERSION) != 0 || b->message_id.len != ENL_MSG_ID_LEN ||
	    b->n_entries == 0) {
		fail("not an %s bundle of one message", EVIDENCE_VERSION);
		goto out;
	}
	memcpy(t->id, b->message_id.data, ENL_MSG_ID_LEN);
	/* the entries first: their times tell when the directory must hold */
	for (size_t i = 0; i < b->n_entries; i++) {
		const Enlace__EvidenceEntry *ee = b->entries[i];
		Enlace__AuditEntry *e = NULL;
		if ((rc = audit_entry_decode(ee->entry.data, ee->entry.len, &e)) != ENL_OK) {
			fail("entry %llu is not a valid audit entry", (unsigned long long)ee->index);
			goto out;
		}
		if ((rc = trail_add(t, ee->index, ee->entry.data, ee->entry.len, e)) != ENL_OK) {
			protobuf_c_message_free_unpacked(&e->base, NULL);
			goto out;
		}
		{
			bool in = false;
			if ((rc = trail_wants(t, e, &in)) != ENL_OK)
				goto out;
			rc = in ? ENL_OK : ENL_E_MALFORMED;
		}
		if (rc != ENL_OK) {
			fail("entry %llu is about another message", (unsigned long long)ee->index);
			goto out;
		}
		if (i > 0 && ee->index <= b->entries[i - 1]->index) {
			rc = ENL_E_MALFORMED;
			fail("entries out of log order at %llu", (unsigned long long)ee->index);
			goto out;
		}
		if (i == 0)
			first_time = e->time;
	}
	{
		struct enl_dir_check chk = {authority_pk, 0, first_time};
		if ((rc = enl_directory_parse(b->directory.data, b->directory.len, &chk, &dir)) !=
		    ENL_OK) {
			fail("the directory does not verify under the authority's key "
			     "(or had expired at the first entry): %s", enl_strerror(rc));
			goto out;
		}
	}
	rc = ENL_E_MALFORMED;
	broker = enl_directory_find(dir, b->broker);
	if (broker == NULL || broker->kind != ENL_KIND_BROKER) {
		fail("the directory has no broker %s", b->broker);
		goto out;
	}
	if ((rc = checkpoint_verifiers(dir, broker, &v, &nv, &nb)) != ENL_OK ||
	    (ok = calloc(nv, sizeof(*ok))) == NULL) {
		rc = rc != ENL_OK ? rc : ENL_E_NOMEM;
		goto out;
	}
	rc = enl_note_open(b->checkpoint, strlen(b->checkpoint), v, nv, &tl, ok);
	for (size_t i = 0; i < nb; i++)
		by_broker = by_broker || ok[i];
	if (rc == ENL_OK && !by_broker)
		rc = ENL_E_BAD_SIGNATURE;
	if (rc == ENL_OK)
		rc = enl_checkpoint_parse(b->checkpoint, tl, &cp);
	if (rc == ENL_OK && strcmp(cp.origin, v[0].name) != 0)
		rc = ENL_E_MALFORMED;
	if (rc != ENL_OK) {
		const char *who = bad_cosigner(b->checkpoint, v, nv, nb);
		if (who != NULL)
			fail("the cosignature of %s on the checkpoint does not verify (the broker's "
			     "own signature does)", who);
		else
			fail("the checkpoint is not signed by broker %s: %s", b->broker,
			     enl_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < nv; i++)
		if (ok[i]) {
			n_ok++;
			if (i >= nb) {
				size_t used = strlen(cosigners);
				snprintf(cosigners + used, cap - used, "%s%s", used ? "," : "",
					 v[i].name);
			}
		}
	rc = ENL_E_BAD_SIGNATURE;
	if (n_ok != signature_lines(b->checkpoint, tl)) {
		fail("the checkpoint carries a signature that is neither the broker's nor a "
		     "cosignature by an agency of the directory");
		goto out;
	}
	*checkpoint_size = cp.size;
	for (size_t i = 0; i < b->n_entries; i++) {
		const Enlace__EvidenceEntry *ee = b->entries[i];
		enl_mhash leaf, proof[ENL_MERKLE_MAX_PROOF];
		rc = ENL_E_MALFORMED;
		if (ee->n_inclusion > ENL_MERKLE_MAX_PROOF) {
			fail("entry %llu: proof too long", (unsigned long long)ee->index);
			goto out;
		}
		for (size_t k = 0; k < ee->n_inclusion; k++) {
			if (ee->inclusion[k].len != ENL_MERKLE_HASH_LEN) {
				fail("entry %llu: malformed proof", (unsigned long long)ee->index);
				goto out;
			}
			memcpy(proof[k], ee->inclusion[k].data, ENL_MERKLE_HASH_LEN);
		}
		enl_merkle_leaf_hash(ee->entry.data, ee->entry.len, leaf);
		rc = enl_merkle_inclusion_verify(ee->index, cp.size, leaf, (const enl_mhash *)proof,
						 ee->n_inclusion, cp.root);
		if (rc != ENL_OK) {
			rc = ENL_E_BAD_SIGNATURE;
			fail("entry %llu is not included in the checkpoint of %llu entries",
			     (unsigned long long)ee->index, (unsigned long long)cp.size);
			goto out;
		}
	}
	{
		char chain_why[300];
		if ((rc = trail_check_chains(t, chain_why, sizeof(chain_why))) != ENL_OK) {
			fail("%s", chain_why);
			goto out;
		}
	}
	if ((rc = trail_check_acks(t, dir)) != ENL_OK) {
		fail(rc == ENL_E_REVOKED_KEY ? "an acknowledgement is signed by a key revoked "
		     "before the broker logged it" : "an acknowledgement is not signed by its "
		     "recipient");
		goto out;
	}
	rc = ENL_OK;
out:
	if (rc != ENL_OK)
		trail_free(t);
	free(v);
	free(ok);
	enl_directory_free(dir);
	protobuf_c_message_free_unpacked(&b->base, NULL);
	return rc;
}
