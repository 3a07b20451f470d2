/*
 * enlace-audit verify: every tile rebuilt from the entries, the
 * checkpoint's signature, and consistency with a checkpoint held before.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "audit.h"
#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"

/* ---- verify ---- */

/* An older checkpoint must be a state of the verified log. */
static int
check_since(const struct opts *o, const struct enl_note_keys *k, struct enl_tlog *log,
	    const struct enl_checkpoint *cp, char *why, size_t cap)
{
	struct enl_checkpoint old;
	enl_mhash root, proof[ENL_MERKLE_MAX_PROOF];
	uint8_t *buf = NULL;
	size_t len = 0, tl = 0, n = 0;
	int rc = enl_file_read(o->since_checkpoint, ENL_NOTE_MAX, &buf, &len);

	if (rc == ENL_OK)
		rc = enl_note_open((const char *)buf, len, k->v, k->n, &tl, NULL);
	if (rc == ENL_OK)
		rc = enl_checkpoint_parse((const char *)buf, tl, &old);
	free(buf);
	if (rc == ENL_OK && strcmp(old.origin, k->v[0].name) != 0)
		rc = ENL_E_MALFORMED;
	if (rc != ENL_OK) {
		snprintf(why, cap, "%s: not a checkpoint signed by the broker: %s",
			 o->since_checkpoint, enl_strerror(rc));
		return rc;
	}
	if (old.size > cp->size) {
		snprintf(why, cap, "the log has %" PRIu64 " entries, fewer than the %" PRIu64
			 " of the older checkpoint: it was cut back", cp->size, old.size);
		return ENL_E_MALFORMED;
	}
	if (enl_tlog_root(log, old.size, root) != ENL_OK ||
	    sodium_memcmp(root, old.root, ENL_MERKLE_HASH_LEN) != 0) {
		if (old.size == cp->size)
			snprintf(why, cap, "fork: the older checkpoint has the same size (%" PRIu64
				 ") and another root: the broker signed two histories", old.size);
		else
			snprintf(why, cap, "the log does not extend the older checkpoint of %" PRIu64
				 " entries: its first %" PRIu64 " entries have another root "
				 "(history rewritten)", old.size, old.size);
		return ENL_E_MALFORMED;
	}
	/* the same, as a client would check it: by a consistency proof */
	if (enl_tlog_consistency(log, old.size, cp->size, proof, &n) != ENL_OK ||
	    (old.size > 0 && enl_merkle_consistency_verify(old.size, cp->size, old.root, cp->root,
							    (const enl_mhash *)proof, n) != ENL_OK)) {
		snprintf(why, cap, "the consistency proof from %" PRIu64 " entries fails", old.size);
		return ENL_E_MALFORMED;
	}
	return ENL_OK;
}

/* The directory serials the broker puts in force (its DIRECTORY_UPDATED
 * and BROKER_STARTED entries) never go down: a broker that went back to
 * an older directory could have revived a revoked key. The entries come
 * in any order; they are checked by index at the end. */
struct serial_at {
	uint64_t index, serial;
};

struct serials {
	ENL_VEC(struct serial_at) at;	/* at most one per entry of the log */
	bool nomem;
};

static int
serial_entry(void *arg, uint64_t index, const uint8_t *e, size_t len,
	     Enlace__AuditEntry *decoded)
{
	struct serials *s = arg;

	(void)e;
	(void)len;
	/* the serials the broker put in force: a request checked against the
	 * one before may be logged just after a DIRECTORY_UPDATED */
	if (decoded->event != ENLACE__AUDIT_EVENT__DIRECTORY_UPDATED &&
	    decoded->event != ENLACE__AUDIT_EVENT__BROKER_STARTED) {
		protobuf_c_message_free_unpacked(&decoded->base, NULL);
		return 0;
	}
	struct serial_at *at = enl_vec_push(&s->at);
	if (at == NULL) {
		s->nomem = true;
	} else {
		at->index = index;
		at->serial = decoded->directory_serial;
	}
	protobuf_c_message_free_unpacked(&decoded->base, NULL);
	return 0;
}

static int
by_index(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

/* The first entry whose serial is below one before it: true and why. */
static bool
serial_went_back(struct serials *s, char *why, size_t cap)
{
	uint64_t max = 0, max_index = 0;

	if (s->nomem) {
		snprintf(why, cap, "out of memory checking the directory serials");
		return true;
	}
	qsort(s->at.v, s->at.n, sizeof(*s->at.v), by_index);
	for (size_t i = 0; i < s->at.n; i++) {
		if (s->at.v[i].serial < max) {
			snprintf(why, cap, "entry %" PRIu64 " names directory serial %" PRIu64
				 ", older than serial %" PRIu64 " of entry %" PRIu64 ": the broker "
				 "went back to an older directory", s->at.v[i].index, s->at.v[i].serial,
				 max, max_index);
			return true;
		}
		if (s->at.v[i].serial > max)
			max = s->at.v[i].serial, max_index = s->at.v[i].index;
	}
	return false;
}

int
cmd_verify(int argc, char **argv)
{
	struct serials ser = {ENL_VEC_INIT(1u << 30), false};
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	struct source src;
	struct opts o;
	char why[700] = "", hex[65];
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (o.broker_pub == NULL || o.argc != 1)
		return usage_error("verify takes one log (DIR or URL) and --broker-pub");
	if ((rc = broker_key(o.broker_pub, &k)) != ENL_OK) {
		if (rc != ENL_E_INVAL)	/* that one is said */
			fprintf(stderr, "enlace-audit: %s: %s\n", o.broker_pub, enl_strerror(rc));
		return ENL_EXIT_USAGE;
	}
	if (source_open(&src, o.argv[0], &o, &k) != ENL_OK)
		return EXIT_BAD;
	src.on_entry = serial_entry;
	src.arg = &ser;
	if ((rc = source_load(&src, &k, &log, &cp, o.json)) != ENL_OK) {
		enl_vec_free(&ser.at);
		source_close(&src);
		return EXIT_BAD;
	}
	if (o.since_checkpoint != NULL)
		rc = check_since(&o, &k, log, &cp, why, sizeof(why));
	if (rc == ENL_OK && serial_went_back(&ser, why, sizeof(why)))
		rc = ENL_E_MALFORMED;
	enl_vec_free(&ser.at);
	enl_hex(cp.root, 32, hex);
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		enl_json_str(&j, "log", o.argv[0]);
		enl_json_str(&j, "origin", k.v[0].name);
		enl_json_int(&j, "size", (int64_t)cp.size);
		enl_json_str(&j, "root", hex);
		if (rc != ENL_OK)
			enl_json_str(&j, "error", why);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		printf("%s: log %s holds: %" PRIu64 " entries, every tile rebuilt and equal, "
		       "checkpoint signed by the broker, root %s%s\n", o.argv[0], k.v[0].name, cp.size,
		       hex, o.since_checkpoint ? "; it extends the older checkpoint" : "");
	} else {
		fprintf(stderr, "enlace-audit: %s: NOT VALID: %s\n", o.argv[0], why);
	}
	enl_tlog_free(log);
	source_close(&src);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}
