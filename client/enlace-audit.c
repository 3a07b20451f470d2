/*
 * enlace-audit: the auditor's tool. It needs nothing from the broker's
 * operator but the log (its files, a copy of them, or its read-only HTTP
 * address) and public keys: the broker's, or the directory and the
 * directory authority's.
 *
 *   enlace-audit verify (DIR | URL) --broker-pub FILE [--since-checkpoint FILE]
 *   enlace-audit trail MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE
 *   enlace-audit prove MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE --out FILE
 *   enlace-audit check-bundle FILE --authority-pub FILE
 *   enlace-audit report --log (DIR | URL) --broker-pub FILE --since T --until T
 *   enlace-audit merkle root|inclusion|consistency ...
 *
 * Exit status: 0 what was asked holds, 1 it does not (the first bad index
 * or file is named), 2 usage error.
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

#include "enlace/httpauth.h"
#include "enlace/keys.h"
#include "enlace/tlog.h"
#include "evidence.h"

#define EXIT_BAD 1
#define EXIT_USAGE 2

static const char usage[] =
	"usage: enlace-audit verify (DIR | URL) --broker-pub FILE [--since-checkpoint FILE]\n"
	"       enlace-audit trail MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE\n"
	"       enlace-audit prove MSG-ID --log (DIR | URL) --directory FILE --authority-pub FILE\n"
	"                          --out FILE\n"
	"       enlace-audit check-bundle FILE --authority-pub FILE\n"
	"       enlace-audit report --log (DIR | URL) --broker-pub FILE --since T --until T\n"
	"                          [--format csv|json]\n"
	"       enlace-audit merkle root|inclusion|consistency ... (see merkle --help)\n\n"
	"The log is a folder (the broker's data/log, or a copy) or the broker's log_listen\n"
	"address (http://HOST:PORT). --broker-pub is the broker's card from the signed\n"
	"directory, or its verifier key line; trail and prove take the broker from the\n"
	"directory. Over HTTP the log is read only by directory members: --key DIR (an\n"
	"auditor's, an agency's or the broker's key folder; --passphrase-file F if its\n"
	"key is encrypted and no terminal asks) signs each request.\n"
	"--json on every command. Exit 0: it holds; 1: it does not (NOT VALID,\n"
	"the first bad index or file named) or it cannot be checked (cannot check: no\n"
	"such folder, or the log does not answer; \"checked\": false in JSON); 2: usage.\n";

static int
usage_error(const char *msg)
{
	fprintf(stderr, "enlace-audit: %s\n%s", msg, usage);
	return EXIT_USAGE;
}

/* ---- options shared by the commands ---- */

struct opts {
	const char *broker_pub, *since_checkpoint, *log, *directory, *authority_pub, *out;
	const char *since, *until, *format, *key, *pass_file;
	bool json, quiet;
	int argc;
	char **argv;		/* positional arguments */
};

enum { O_BROKER = 1, O_SINCE_CP, O_LOG, O_DIR, O_AUTH, O_OUT, O_SINCE, O_UNTIL, O_FORMAT,
       O_JSON, O_QUIET, O_HELP, O_KEY, O_PASS };

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option all[] = {
		{"broker-pub", required_argument, NULL, O_BROKER},
		{"since-checkpoint", required_argument, NULL, O_SINCE_CP},
		{"log", required_argument, NULL, O_LOG},
		{"directory", required_argument, NULL, O_DIR},
		{"authority-pub", required_argument, NULL, O_AUTH},
		{"out", required_argument, NULL, O_OUT},
		{"since", required_argument, NULL, O_SINCE},
		{"until", required_argument, NULL, O_UNTIL},
		{"format", required_argument, NULL, O_FORMAT},
		{"key", required_argument, NULL, O_KEY},
		{"passphrase-file", required_argument, NULL, O_PASS},
		{"json", no_argument, NULL, O_JSON},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
		switch (c) {
		case O_BROKER: o->broker_pub = optarg; break;
		case O_SINCE_CP: o->since_checkpoint = optarg; break;
		case O_LOG: o->log = optarg; break;
		case O_DIR: o->directory = optarg; break;
		case O_AUTH: o->authority_pub = optarg; break;
		case O_OUT: o->out = optarg; break;
		case O_SINCE: o->since = optarg; break;
		case O_UNTIL: o->until = optarg; break;
		case O_FORMAT: o->format = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_PASS: o->pass_file = optarg; break;
		case O_JSON: o->json = true; break;
		case O_QUIET: o->quiet = true; break;
		case O_HELP: fputs(usage, stdout); return 0;
		default:
			fprintf(stderr, "enlace-audit: unknown option or missing value: '%s'\n%s",
				argv[optind - 1], usage);
			return EXIT_USAGE;
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return -1;
}

/* The broker's note keys from its card (every version) or a vkey line;
 * ENL_E_INVAL, said on stderr, for the card of an agency. */
static int
broker_key(const char *path, struct enl_note_keys *k)
{
	struct enl_note_verifier *v = &k->v[0];
	char name[ENL_VKEY_NAME_MAX + 1];
	struct enl_card card;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = enl_file_read(path, ENL_CARD_MAX, &buf, &len);

	memset(k, 0, sizeof(*k));
	if (rc != ENL_OK)
		return rc;
	if (enl_card_parse(buf, len, &card) == ENL_OK) {
		if (card.kind != ENL_KIND_BROKER) {
			/* an auditor who names the wrong card must not read that
			 * the broker's log is NOT VALID */
			fprintf(stderr, "enlace-audit: %s: the card of %s, which is not a broker: "
				"--broker-pub takes the broker's card\n", path, card.id);
			free(buf);
			return ENL_E_INVAL;
		}
		snprintf(name, sizeof(name), "enlace/%s", card.id);
		enl_card_note_keys(NULL, &card, name, false, k);
	} else {
		char *text = realloc(buf, len + 1);
		if (text == NULL) {
			free(buf);
			return ENL_E_NOMEM;
		}
		buf = (uint8_t *)text;
		text[len] = '\0';
		rc = memchr(buf, '\0', len) ? ENL_E_MALFORMED
					    : enl_vkey_parse(text, v->name, v->pk);
		k->n = rc == ENL_OK;
	}
	free(buf);
	return rc;
}

/* The directory, checked against the authority's key (expiry is not held
 * against an auditor: the log's own times say what was valid when). */
static int
load_directory(const struct opts *o, struct enl_directory **dir, uint8_t **bytes, size_t *len)
{
	uint8_t apk[32];
	struct enl_dir_check chk = {apk, 0, 0};
	int rc;

	if ((rc = enl_authority_pub_read(o->authority_pub, apk)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o->authority_pub, enl_strerror(rc));
		return rc;
	}
	if ((rc = enl_file_read(o->directory, ENL_DIRECTORY_MAX, bytes, len)) != ENL_OK ||
	    (rc = enl_directory_parse(*bytes, *len, &chk, dir)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o->directory, enl_strerror(rc));
		free(*bytes);
		*bytes = NULL;
		return rc;
	}
	return ENL_OK;
}

/* The broker of a directory: its only BROKER card. */
static int
directory_broker(const struct enl_directory *dir, struct enl_note_keys *k, char *id)
{
	const struct enl_card *found = NULL;
	char name[ENL_VKEY_NAME_MAX + 1];

	for (size_t i = 0; i < enl_directory_card_count(dir); i++) {
		const struct enl_card *c = enl_directory_card_at(dir, i);
		if (c->kind != ENL_KIND_BROKER)
			continue;
		if (found != NULL) {
			fprintf(stderr, "enlace-audit: the directory has several brokers; "
				"name one with --broker-pub\n");
			return ENL_E_INVAL;
		}
		found = c;
	}
	if (found == NULL) {
		fprintf(stderr, "enlace-audit: the directory has no broker\n");
		return ENL_E_NOT_FOUND;
	}
	snprintf(name, sizeof(name), "enlace/%s", found->id);
	enl_card_note_keys(dir, found, name, false, k);
	if (k->n == 0) {
		fprintf(stderr, "enlace-audit: every key of the broker %s is revoked\n", found->id);
		return ENL_E_REVOKED_KEY;
	}
	snprintf(id, ENL_ID_MAX + 1, "%s", found->id);
	return ENL_OK;
}

/* ---- where the log comes from: a folder, or HTTP ---- */

struct source {
	struct enl_tlog_source s;
	const char *where;
	/* http */
	char base[1024];
	nng_http_client *client;
	nng_url *url;
	struct enl_identity *reader;	/* signs each request */
	char origin[ENL_VKEY_NAME_MAX + 1];
	int unreachable;	/* the nng error of a request that got no answer */
	int refused;		/* the log refused our reader's signature */
	/* progress */
	bool quiet;
	time_t shown;
	/* what the command collects from each entry */
	int (*on_entry)(void *arg, uint64_t index, const uint8_t *e, size_t len,
			Enlace__AuditEntry *decoded);
	void *arg;
};

static int
http_read(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	struct source *src = ctx;
	char url[1200];
	nng_url *u = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	void *body;
	size_t n;
	int rc = ENL_E_IO;

	snprintf(url, sizeof(url), "%s/%s", src->base, rel);
	if (nng_url_parse(&u, url) != 0 || nng_http_req_alloc(&req, u) != 0 ||
	    nng_http_res_alloc(&res) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0)
		goto out;
	const char *target = nng_http_req_get_uri(req);
	char auth[ENL_HTTP_AUTH_MAX + 1];
	if (enl_http_auth_make(src->reader, src->origin, "GET", target, strlen(target),
			       (int64_t)time(NULL), auth) != ENL_OK ||
	    nng_http_req_set_header(req, "Authorization", auth) != 0)
		goto out;
	nng_aio_set_timeout(aio, 60000);
	nng_http_client_transact(src->client, req, res, aio);
	nng_aio_wait(aio);
	if ((src->unreachable = nng_aio_result(aio)) != 0)
		goto out;
	if (nng_http_res_get_status(res) == NNG_HTTP_STATUS_NOT_FOUND) {
		rc = ENL_E_NOT_FOUND;
		goto out;
	}
	if (nng_http_res_get_status(res) == NNG_HTTP_STATUS_UNAUTHORIZED) {
		rc = src->refused = ENL_E_PERMISSION;
		goto out;
	}
	if (nng_http_res_get_status(res) != NNG_HTTP_STATUS_OK)
		goto out;
	nng_http_res_get_data(res, &body, &n);
	rc = ENL_E_TOO_LARGE;
	if (n > max)
		goto out;
	rc = ENL_E_NOMEM;
	if ((*out = malloc(n ? n : 1)) == NULL)
		goto out;
	memcpy(*out, body, n);
	*len = n;
	rc = ENL_OK;
out:
	nng_aio_free(aio);
	if (res != NULL)
		nng_http_res_free(res);
	if (req != NULL)
		nng_http_req_free(req);
	nng_url_free(u);
	return rc;
}

static int
source_entry(void *ctx, uint64_t index, const uint8_t *entry, size_t len)
{
	struct source *src = ctx;
	Enlace__AuditEntry *e = NULL;

	if (audit_entry_decode(entry, len, &e) != ENL_OK)
		return 1;
	if (src->on_entry != NULL)
		return src->on_entry(src->arg, index, entry, len, e);	/* takes e */
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return 0;
}

static void
source_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct source *src = ctx;
	time_t now = time(NULL);

	if (src->quiet || total < 65536 || (now == src->shown && done < total))
		return;
	src->shown = now;
	fprintf(stderr, "enlace-audit: %" PRIu64 " of %" PRIu64 " entries read and hashed (%d%%)\n",
		done, total, (int)(done * 100 / total));
}

static int
dir_read(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	const struct source *src = ctx;

	return enl_tlog_read_dir((void *)src->where, rel, max, out, len);
}

/* Opens the log at `where` (a folder, or a URL read with o->key) whose
 * checkpoints are signed by k. */
static int
source_open(struct source *src, const char *where, const struct opts *o,
	    const struct enl_note_keys *k)
{
	char why[600];

	memset(src, 0, sizeof(*src));
	src->where = where;
	src->quiet = o->quiet || o->json;
	snprintf(src->origin, sizeof(src->origin), "%s", k->v[0].name);
	src->s.ctx = src;
	src->s.entry = source_entry;
	src->s.progress = source_progress;
	if (strncmp(where, "http://", 7) == 0 || strncmp(where, "https://", 8) == 0) {
		size_t n = strlen(where);
		while (n > 0 && where[n - 1] == '/')
			n--;
		snprintf(src->base, sizeof(src->base), "%.*s", (int)n, where);
		if (o->key == NULL) {
			fprintf(stderr, "enlace-audit: %s: reading the log over HTTP needs --key DIR "
				"(the key folder of a directory member: an auditor, an agency or "
				"the broker)\n", where);
			return ENL_E_INVAL;
		}
		if (enl_keydir_load(o->key, o->pass_file, "give --passphrase-file F", &src->reader,
				    why, sizeof(why)) != ENL_OK) {
			fprintf(stderr, "enlace-audit: --key %s: %s\n", o->key, why);
			return ENL_E_INVAL;
		}
		if (nng_url_parse(&src->url, src->base) != 0 ||
		    nng_http_client_alloc(&src->client, src->url) != 0) {
			fprintf(stderr, "enlace-audit: %s: not a usable address\n", where);
			return ENL_E_INVAL;
		}
		src->s.read = http_read;
	} else {
		src->s.read = dir_read;
	}
	return ENL_OK;
}

static void
source_close(struct source *src)
{
	if (src->client != NULL)
		nng_http_client_free(src->client);
	nng_url_free(src->url);
	enl_identity_free(src->reader);
}

/* Reads and verifies the whole log; on failure says why on stderr. */
static int
source_load(struct source *src, const struct enl_note_keys *k, struct enl_tlog **log,
	    struct enl_checkpoint *cp, bool json)
{
	/* what cannot be read is not called NOT VALID: an auditor must tell a
	 * wrong path, or a broker away, from a log that fails a check */
	bool checked = false;
	char why[700] = "";
	struct stat st;
	int rc;

	if (src->client == NULL && (stat(src->where, &st) != 0 || !S_ISDIR(st.st_mode))) {
		snprintf(why, sizeof(why), "no such folder");
		rc = ENL_E_NOT_FOUND;
	} else if ((rc = enl_tlog_load(&src->s, k->v, k->n, log, cp, why, sizeof(why))) != ENL_OK &&
		   src->refused != 0) {
		snprintf(why, sizeof(why), "the log refused the signature of --key (not a current "
			 "key of the broker's directory, or this machine's clock is off)");
	} else if (rc != ENL_OK && src->unreachable != 0) {
		snprintf(why, sizeof(why), "the log cannot be reached (%s)",
			 nng_strerror(src->unreachable));
	} else if (rc != ENL_OK) {
		checked = true;
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s", enl_strerror(rc));
	}
	if (rc != ENL_OK && !json)
		fprintf(stderr, "enlace-audit: %s: %s: %s\n", src->where,
			checked ? "NOT VALID" : "cannot check", why);
	if (rc != ENL_OK && json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", false);
		enl_json_bool(&j, "checked", checked);
		enl_json_str(&j, "log", src->where);
		enl_json_str(&j, "error", why);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	}
	return rc;
}

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
struct serials {
	struct { uint64_t index, serial; } *v;
	size_t n, cap;
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
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		void *v = realloc(s->v, cap * sizeof(*s->v));
		if (v == NULL)
			s->nomem = true;
		else
			s->v = v, s->cap = cap;
	}
	if (s->n < s->cap) {
		s->v[s->n].index = index;
		s->v[s->n++].serial = decoded->directory_serial;
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
	qsort(s->v, s->n, sizeof(*s->v), by_index);
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].serial < max) {
			snprintf(why, cap, "entry %" PRIu64 " names directory serial %" PRIu64
				 ", older than serial %" PRIu64 " of entry %" PRIu64 ": the broker "
				 "went back to an older directory", s->v[i].index, s->v[i].serial,
				 max, max_index);
			return true;
		}
		if (s->v[i].serial > max)
			max = s->v[i].serial, max_index = s->v[i].index;
	}
	return false;
}

static int
cmd_verify(int argc, char **argv)
{
	struct serials ser = {NULL, 0, 0, false};
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
		return EXIT_USAGE;
	}
	if (source_open(&src, o.argv[0], &o, &k) != ENL_OK)
		return EXIT_BAD;
	src.on_entry = serial_entry;
	src.arg = &ser;
	if ((rc = source_load(&src, &k, &log, &cp, o.json)) != ENL_OK) {
		free(ser.v);
		source_close(&src);
		return EXIT_BAD;
	}
	if (o.since_checkpoint != NULL)
		rc = check_since(&o, &k, log, &cp, why, sizeof(why));
	if (rc == ENL_OK && serial_went_back(&ser, why, sizeof(why)))
		rc = ENL_E_MALFORMED;
	free(ser.v);
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
	enl_tlog_close(log);
	source_close(&src);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}

/* ---- trail and prove: the entries of one message ---- */

static int
collect_trail(void *arg, uint64_t index, const uint8_t *e, size_t len, Enlace__AuditEntry *d)
{
	struct trail *t = arg;

	bool in = false;

	/* the message's own entries, and those of its forwards and their consent */
	if (trail_wants(t, d, &in) != ENL_OK) {
		protobuf_c_message_free_unpacked(&d->base, NULL);
		return 1;
	}
	if (in) {
		if (trail_add(t, index, e, len, d) != ENL_OK) {
			protobuf_c_message_free_unpacked(&d->base, NULL);
			return 1;
		}
		return 0;
	}
	protobuf_c_message_free_unpacked(&d->base, NULL);
	return 0;
}

struct message_log {
	struct enl_directory *dir;
	uint8_t *dir_bytes;
	size_t dir_len;
	char broker[ENL_ID_MAX + 1];
	struct source src;
	struct enl_tlog *log;
	struct enl_checkpoint cp;
	struct trail t;
};

static void
message_log_free(struct message_log *m)
{
	trail_free(&m->t);
	enl_tlog_close(m->log);
	source_close(&m->src);
	enl_directory_free(m->dir);
	free(m->dir_bytes);
}

/* The log read and verified, and the trail of MSG-ID from it. */
static int
message_log_load(const struct opts *o, struct message_log *m)
{
	struct enl_note_keys k;

	memset(m, 0, sizeof(*m));
	if (o->argc != 1 || !enl_unhex(o->argv[0], m->t.id, ENL_MSG_ID_LEN))
		return usage_error("expected one message id (32 hex digits)");
	if (o->log == NULL || o->directory == NULL || o->authority_pub == NULL)
		return usage_error("--log, --directory and --authority-pub are needed");
	if (load_directory(o, &m->dir, &m->dir_bytes, &m->dir_len) != ENL_OK ||
	    directory_broker(m->dir, &k, m->broker) != ENL_OK)
		return EXIT_BAD;
	if (source_open(&m->src, o->log, o, &k) != ENL_OK)
		return EXIT_BAD;
	m->src.on_entry = collect_trail;
	m->src.arg = &m->t;
	if (source_load(&m->src, &k, &m->log, &m->cp, o->json) != ENL_OK)
		return EXIT_BAD;
	if (m->t.n == 0) {
		fprintf(stderr, "enlace-audit: message %s is not in the log\n", o->argv[0]);
		return EXIT_BAD;
	}
	return 0;
}

static int
cmd_trail(int argc, char **argv)
{
	struct message_log m;
	struct opts o;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if ((rc = message_log_load(&o, &m)) != 0) {
		message_log_free(&m);
		return rc;
	}
	rc = trail_check_acks(&m.t, m.dir);
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		enl_json_int(&j, "checkpoint_size", (int64_t)m.cp.size);
		trail_json(&m.t, &j);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		trail_print(&m.t, stdout);
		printf("log verified: %" PRIu64 " entries under the broker's checkpoint\n", m.cp.size);
		if (rc != ENL_OK)
			fprintf(stderr, "enlace-audit: an acknowledgement in the log is NOT signed by "
				"its recipient\n");
	}
	message_log_free(&m);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}

/*
 * The broker keeps its newest cosigned checkpoint in `cosigned-checkpoint`.
 * If it is signed by the broker, states a tree this log holds (same root)
 * and covers every entry of the trail, the bundle takes it: *note
 * (malloc'd) and *size; else the published checkpoint (*note NULL).
 */
static void
cosigned_checkpoint(struct message_log *m, uint64_t *size, char **note)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	enl_mhash root;
	uint8_t *buf = NULL;
	size_t len = 0, tl = 0;
	char broker_id[ENL_ID_MAX + 1];

	*size = m->cp.size;
	*note = NULL;
	if (directory_broker(m->dir, &k, broker_id) != ENL_OK ||
	    m->src.s.read(m->src.s.ctx, "cosigned-checkpoint", ENL_NOTE_MAX, &buf, &len) != ENL_OK)
		return;
	if (memchr(buf, '\0', len) == NULL && enl_note_open((char *)buf, len, k.v, k.n, &tl, NULL) == ENL_OK &&
	    enl_checkpoint_parse((char *)buf, tl, &cp) == ENL_OK && strcmp(cp.origin, k.v[0].name) == 0 &&
	    cp.size <= m->cp.size && cp.size > m->t.ev[m->t.n - 1].index &&
	    enl_tlog_root(m->log, cp.size, root) == ENL_OK &&
	    sodium_memcmp(root, cp.root, ENL_MERKLE_HASH_LEN) == 0) {
		char *t = realloc(buf, len + 1);
		if (t != NULL) {
			t[len] = '\0';
			*note = t;
			*size = cp.size;
			return;
		}
	}
	free(buf);
}

static int
cmd_prove(int argc, char **argv)
{
	Enlace__EvidenceBundle b = ENLACE__EVIDENCE_BUNDLE__INIT;
	Enlace__EvidenceEntry *ee = NULL, **eep = NULL;
	ProtobufCBinaryData *inc = NULL;
	enl_mhash *proofs = NULL;
	struct message_log m;
	struct opts o;
	uint8_t *bytes = NULL;
	uint64_t proof_size = 0;
	char *note = NULL;
	size_t len = 0;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (o.out == NULL)
		return usage_error("prove writes its bundle to --out FILE");
	if ((rc = message_log_load(&o, &m)) != 0) {
		message_log_free(&m);
		return rc;
	}
	/* a checkpoint with cosignatures, if one covers every entry */
	cosigned_checkpoint(&m, &proof_size, &note);
	rc = ENL_E_NOMEM;
	ee = calloc(m.t.n, sizeof(*ee));
	eep = calloc(m.t.n, sizeof(*eep));
	inc = calloc(m.t.n * ENL_MERKLE_MAX_PROOF, sizeof(*inc));
	proofs = calloc(m.t.n * ENL_MERKLE_MAX_PROOF, sizeof(*proofs));
	if (ee == NULL || eep == NULL || inc == NULL || proofs == NULL)
		goto out;
	for (size_t i = 0; i < m.t.n; i++) {
		enl_mhash *p = proofs + i * ENL_MERKLE_MAX_PROOF;
		size_t n = 0;
		enlace__evidence_entry__init(&ee[i]);
		if ((rc = enl_tlog_inclusion(m.log, m.t.ev[i].index, proof_size, p, &n)) != ENL_OK)
			goto out;
		ee[i].index = m.t.ev[i].index;
		ee[i].entry.data = m.t.ev[i].bytes;
		ee[i].entry.len = m.t.ev[i].len;
		ee[i].n_inclusion = n;
		ee[i].inclusion = inc + i * ENL_MERKLE_MAX_PROOF;
		for (size_t k = 0; k < n; k++) {
			ee[i].inclusion[k].data = p[k];
			ee[i].inclusion[k].len = ENL_MERKLE_HASH_LEN;
		}
		eep[i] = &ee[i];
	}
	b.version = (char *)EVIDENCE_VERSION;
	b.broker = m.broker;
	b.message_id.data = m.t.id;
	b.message_id.len = ENL_MSG_ID_LEN;
	b.checkpoint = note != NULL ? note : (char *)enl_tlog_note(m.log);
	b.n_entries = m.t.n;
	b.entries = eep;
	b.directory.data = m.dir_bytes;
	b.directory.len = m.dir_len;
	if ((rc = enl_pb_pack(&b.base, &bytes, &len)) != ENL_OK ||
	    (rc = enl_file_write(o.out, bytes, len, 0600, false)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s%s\n", o.out, enl_strerror(rc),
			rc == ENL_E_EXISTS ? " (it is never overwritten)" : "");
		goto out;
	}
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_str(&j, "bundle", o.out);
		enl_json_int(&j, "entries", (int64_t)m.t.n);
		enl_json_int(&j, "checkpoint_size", (int64_t)proof_size);
		enl_json_bool(&j, "cosigned", note != NULL);
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else {
		printf("%s: %zu entries of message %s with their inclusion proofs under the "
		       "%scheckpoint of %" PRIu64 " entries, and directory serial %" PRIu64 "\n",
		       o.out, m.t.n, o.argv[0], note != NULL ? "cosigned " : "", proof_size,
		       enl_directory_serial(m.dir));
	}
out:
	free(bytes);
	free(ee);
	free(eep);
	free(inc);
	free(proofs);
	free(note);
	message_log_free(&m);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}

static int
cmd_check_bundle(int argc, char **argv)
{
	struct trail t;
	struct opts o;
	uint8_t apk[32], *buf = NULL;
	char why[600], cosigners[2048];
	uint64_t size = 0;
	size_t len = 0;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	if (o.argc != 1 || o.authority_pub == NULL)
		return usage_error("check-bundle takes one FILE and --authority-pub");
	if ((rc = enl_authority_pub_read(o.authority_pub, apk)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o.authority_pub, enl_strerror(rc));
		return EXIT_BAD;
	}
	if ((rc = enl_file_read(o.argv[0], EVIDENCE_MAX, &buf, &len)) != ENL_OK) {
		fprintf(stderr, "enlace-audit: %s: %s\n", o.argv[0], enl_strerror(rc));
		return EXIT_BAD;
	}
	rc = evidence_check(buf, len, apk, &t, &size, cosigners, sizeof(cosigners), why,
			    sizeof(why));
	free(buf);
	if (o.json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_bool(&j, "valid", rc == ENL_OK);
		if (rc == ENL_OK) {
			enl_json_int(&j, "checkpoint_size", (int64_t)size);
			enl_json_str(&j, "cosigned_by", cosigners);
			trail_json(&t, &j);
		} else {
			enl_json_str(&j, "error", why);
		}
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		trail_print(&t, stdout);
		printf("bundle VALID: directory signed by the authority; checkpoint of %" PRIu64
		       " entries signed by the broker%s%s; every entry included; every "
		       "acknowledgement signed by its recipient\n", size,
		       cosigners[0] ? " and cosigned by " : "", cosigners);
	} else {
		fprintf(stderr, "enlace-audit: %s: NOT VALID: %s\n", o.argv[0], why);
	}
	if (rc == ENL_OK)
		trail_free(&t);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}
/* ---- merkle: RFC 6962 over files, to compare with other implementations ---- */

static const char usage_merkle[] =
	"usage: enlace-audit merkle root FILE... [--json]\n"
	"       enlace-audit merkle inclusion INDEX FILE...\n"
	"       enlace-audit merkle consistency FIRST FILE...\n\n"
	"Each FILE is one leaf (its bytes are the entry). Prints the RFC 6962 tree\n"
	"head of all the files, or the inclusion proof of leaf INDEX, or the\n"
	"consistency proof from the tree of the first FIRST leaves, in hex (--json:\n"
	"an object with size, root and proof).\n";

static bool
parse_index(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*v = strtoull(s, &end, 10);
	return *end == '\0';
}

static int
cmd_merkle(int argc, char **argv)
{
	enl_mhash *leaves, root, proof[ENL_MERKLE_MAX_PROOF];
	const char *what;
	char hex[65];
	uint64_t arg = 0, n;
	size_t len = 0;
	int first, rc = ENL_OK, kept = 0;
	bool json = false;

	/* --json anywhere; every other argument in order */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--json") == 0)
			json = true;
		else
			argv[kept++] = argv[i];
	}
	argc = kept;
	if (argc < 3 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_merkle, argc < 3 ? stderr : stdout);
		return argc < 3 ? 2 : 0;
	}
	what = argv[1];
	first = 2;
	if (strcmp(what, "inclusion") == 0 || strcmp(what, "consistency") == 0) {
		if (!parse_index(argv[2], &arg) || argc < 4) {
			fputs(usage_merkle, stderr);
			return 2;
		}
		first = 3;
	} else if (strcmp(what, "root") != 0) {
		fputs(usage_merkle, stderr);
		return 2;
	}
	n = (uint64_t)(argc - first);
	if ((leaves = calloc(n, sizeof(*leaves))) == NULL)
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t blen = 0;
		if ((rc = enl_file_read(argv[first + i], (size_t)1 << 30, &buf, &blen)) != ENL_OK) {
			fprintf(stderr, "enlace-audit: %s: %s\n", argv[first + i], enl_strerror(rc));
			free(leaves);
			return 1;
		}
		enl_merkle_leaf_hash(buf, blen, leaves[i]);
		free(buf);
	}
	enl_merkle_root(leaves, n, root);
	enl_hex(root, 32, hex);
	if (strcmp(what, "root") != 0) {
		rc = strcmp(what, "inclusion") == 0
			     ? enl_merkle_inclusion_proof(leaves, n, arg, proof, &len)
			     : enl_merkle_consistency_proof(leaves, arg, n, proof, &len);
		if (rc != ENL_OK)
			fprintf(stderr, "enlace-audit: %s %" PRIu64 " is not possible in a tree of %"
				PRIu64 " leaves\n", what, arg, n);
	}
	if (rc == ENL_OK && json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_obj_begin(&j, NULL);
		enl_json_int(&j, "size", (int64_t)n);
		enl_json_str(&j, "root", hex);
		if (strcmp(what, "root") != 0) {
			enl_json_arr_begin(&j, "proof");
			for (size_t i = 0; i < len; i++) {
				enl_hex(proof[i], 32, hex);
				enl_json_str(&j, NULL, hex);
			}
			enl_json_arr_end(&j);
		}
		enl_json_obj_end(&j);
		enl_json_end(&j);
	} else if (rc == ENL_OK) {
		printf("size %" PRIu64 "\nroot %s\n", n, hex);
		for (size_t i = 0; i < len; i++) {
			enl_hex(proof[i], 32, hex);
			printf("proof %s\n", hex);
		}
	}
	free(leaves);
	return rc == ENL_OK ? 0 : 1;
}

/* ---- report: counts per agency and day ---- */

/* "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ" into *t. */
static bool
parse_time(const char *s, int64_t *t)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
			return false;
	}
	*t = (int64_t)timegm(&tm);
	return true;
}

struct reason_count {
	char reason[128];
	uint64_t n;
};

struct row {
	char day[11];
	char agency[ENL_ID_MAX + 1];
	uint64_t sent, delivered, acked, rejected, pending;
	struct reason_count *reasons;
	size_t n_reasons;
};

/* A delivery queued in the period, until it is acknowledged or refused. */
struct open_delivery {
	uint8_t key[16];	/* BLAKE2b(message id || recipient) */
	size_t row;
	bool used, closed;
};

struct report {
	int64_t since, until;
	struct row *rows;
	size_t n_rows, cap_rows;
	struct open_delivery *open;
	size_t open_cap, open_n;
	bool failed;
};

static struct row *
row_of(struct report *r, int64_t t, const char *agency)
{
	char day[32];

	enl_time_format(t, day);
	day[10] = '\0';
	for (size_t i = 0; i < r->n_rows; i++)
		if (strcmp(r->rows[i].day, day) == 0 && strcmp(r->rows[i].agency, agency) == 0)
			return &r->rows[i];
	if (r->n_rows == r->cap_rows) {
		size_t cap = r->cap_rows ? 2 * r->cap_rows : 32;
		struct row *n = realloc(r->rows, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		r->rows = n;
		r->cap_rows = cap;
	}
	memset(&r->rows[r->n_rows], 0, sizeof(struct row));
	memcpy(r->rows[r->n_rows].day, day, sizeof(r->rows[0].day));
	snprintf(r->rows[r->n_rows].agency, sizeof(r->rows[0].agency), "%s", agency);
	return &r->rows[r->n_rows++];
}

static void
delivery_key(const Enlace__AuditEntry *e, uint8_t key[16])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, e->message_id.data, e->message_id.len);
	crypto_generichash_update(&st, (const uint8_t *)e->recipient, strlen(e->recipient));
	crypto_generichash_final(&st, key, 16);
}

/* The slot of a delivery in the open-addressing table (free or its own). */
static struct open_delivery *
delivery_slot(struct report *r, const uint8_t key[16])
{
	size_t i = ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16 |
		    (size_t)key[3] << 24) & (r->open_cap - 1);

	while (r->open[i].used && memcmp(r->open[i].key, key, 16) != 0)
		i = (i + 1) & (r->open_cap - 1);
	return &r->open[i];
}

static int
delivery_grow(struct report *r)
{
	struct open_delivery *old = r->open;
	size_t old_cap = r->open_cap;

	r->open_cap = old_cap ? 2 * old_cap : 1024;
	if ((r->open = calloc(r->open_cap, sizeof(*r->open))) == NULL) {
		r->open = old;
		r->open_cap = old_cap;
		return ENL_E_NOMEM;
	}
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			*delivery_slot(r, old[i].key) = old[i];
	free(old);
	return ENL_OK;
}

static void
count_reason(struct row *w, const char *reason)
{
	struct reason_count *n;

	for (size_t i = 0; i < w->n_reasons; i++)
		if (strncmp(w->reasons[i].reason, reason, sizeof(w->reasons[i].reason) - 1) == 0) {
			w->reasons[i].n++;
			return;
		}
	if ((n = realloc(w->reasons, (w->n_reasons + 1) * sizeof(*n))) == NULL)
		return;
	w->reasons = n;
	snprintf(n[w->n_reasons].reason, sizeof(n[0].reason), "%s", reason);
	n[w->n_reasons++].n = 1;
}

static int
report_entry(void *arg, uint64_t index, const uint8_t *bytes, size_t len,
	     Enlace__AuditEntry *e)
{
	struct report *r = arg;
	struct row *w = NULL;
	uint8_t key[16];
	bool in = e->time >= r->since && e->time < r->until;

	(void)index;
	(void)bytes;
	(void)len;
	switch (in ? e->event : 0) {
	case ENLACE__AUDIT_EVENT__SUBMITTED:
		if ((w = row_of(r, e->time, e->sender)) != NULL)
			w->sent++;
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_QUEUED:
		if ((w = row_of(r, e->time, e->recipient)) == NULL)
			break;
		w->pending++;
		if (e->message_id.len == 0)
			break;
		if ((r->open_n + 1) * 2 > r->open_cap && delivery_grow(r) != ENL_OK) {
			r->failed = true;
			break;
		}
		delivery_key(e, key);
		{
			struct open_delivery *d = delivery_slot(r, key);
			if (!d->used) {
				memcpy(d->key, key, 16);
				d->used = true;
				d->row = (size_t)(w - r->rows);
				r->open_n++;
			}
		}
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_FETCHED:
		if ((w = row_of(r, e->time, e->recipient)) != NULL)
			w->delivered++;
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_ACKED:
	case ENLACE__AUDIT_EVENT__REFUSED_BY_RECIPIENT:
	case ENLACE__AUDIT_EVENT__EXPIRED:
		if (e->event == ENLACE__AUDIT_EVENT__AUDIT_ACKED &&
		    (w = row_of(r, e->time, e->recipient)) != NULL)
			w->acked++;
		if (r->open_cap == 0 || e->message_id.len == 0)
			break;
		delivery_key(e, key);
		{
			struct open_delivery *d = delivery_slot(r, key);
			if (d->used && !d->closed) {
				d->closed = true;
				r->rows[d->row].pending--;
			}
		}
		break;
	case ENLACE__AUDIT_EVENT__AUDIT_REJECTED:
		if ((w = row_of(r, e->time, e->sender[0] ? e->sender : "-")) != NULL) {
			w->rejected++;
			count_reason(w, e->reason[0] ? e->reason : "unspecified");
		}
		break;
	default:
		break;
	}
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return 0;
}

static int
by_day_agency(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = strcmp(a->day, b->day);

	return c ? c : strcmp(a->agency, b->agency);
}

static void
report_print(const struct report *r, bool json)
{
	if (json) {
		struct enl_json j;
		enl_json_init(&j, stdout);
		enl_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < r->n_rows; i++) {
			const struct row *w = &r->rows[i];
			enl_json_obj_begin(&j, NULL);
			enl_json_str(&j, "day", w->day);
			enl_json_str(&j, "agency", w->agency);
			enl_json_int(&j, "sent", (int64_t)w->sent);
			enl_json_int(&j, "delivered", (int64_t)w->delivered);
			enl_json_int(&j, "acknowledged", (int64_t)w->acked);
			enl_json_int(&j, "rejected", (int64_t)w->rejected);
			enl_json_obj_begin(&j, "rejected_by_reason");
			for (size_t k = 0; k < w->n_reasons; k++)
				enl_json_int(&j, w->reasons[k].reason, (int64_t)w->reasons[k].n);
			enl_json_obj_end(&j);
			enl_json_int(&j, "pending", (int64_t)w->pending);
			enl_json_obj_end(&j);
		}
		enl_json_arr_end(&j);
		enl_json_end(&j);
		return;
	}
	printf("day,agency,sent,delivered,acknowledged,rejected,pending,rejected_by_reason\n");
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct row *w = &r->rows[i];
		printf("%s,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",\"",
		       w->day, w->agency, w->sent, w->delivered, w->acked, w->rejected, w->pending);
		for (size_t k = 0; k < w->n_reasons; k++) {
			/* CSV: a quote inside a quoted field is doubled */
			printf("%s", k ? "; " : "");
			for (const char *c = w->reasons[k].reason; *c; c++)
				printf(*c == '"' ? "\"\"" : "%c", *c);
			printf(": %" PRIu64, w->reasons[k].n);
		}
		printf("\"\n");
	}
}

static int
cmd_report(int argc, char **argv)
{
	struct enl_note_keys k;
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	struct report r;
	struct source src;
	struct opts o;
	bool json;
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		return rc;
	memset(&r, 0, sizeof(r));
	if (o.log == NULL || o.broker_pub == NULL || o.since == NULL || o.until == NULL ||
	    o.argc != 0)
		return usage_error("report needs --log, --broker-pub, --since and --until");
	if (!parse_time(o.since, &r.since) || !parse_time(o.until, &r.until) ||
	    r.until <= r.since)
		return usage_error("--since and --until: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, "
				   "since before until");
	if (o.format != NULL && strcmp(o.format, "csv") != 0 && strcmp(o.format, "json") != 0)
		return usage_error("--format is csv or json");
	json = o.json || (o.format != NULL && strcmp(o.format, "json") == 0);
	if ((rc = broker_key(o.broker_pub, &k)) != ENL_OK) {
		if (rc != ENL_E_INVAL)	/* that one is said */
			fprintf(stderr, "enlace-audit: %s: %s\n", o.broker_pub, enl_strerror(rc));
		return EXIT_USAGE;
	}
	if (source_open(&src, o.log, &o, &k) != ENL_OK)
		return EXIT_BAD;
	src.on_entry = report_entry;
	src.arg = &r;
	rc = source_load(&src, &k, &log, &cp, json);
	if (rc == ENL_OK && r.failed)
		rc = ENL_E_NOMEM;
	if (rc == ENL_OK) {
		qsort(r.rows, r.n_rows, sizeof(*r.rows), by_day_agency);
		report_print(&r, json);
	}
	for (size_t i = 0; i < r.n_rows; i++)
		free(r.rows[i].reasons);
	free(r.rows);
	free(r.open);
	enl_tlog_close(log);
	source_close(&src);
	return rc == ENL_OK ? 0 : EXIT_BAD;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{"verify", cmd_verify}, {"trail", cmd_trail}, {"prove", cmd_prove},
		{"check-bundle", cmd_check_bundle}, {"report", cmd_report},
		{"merkle", cmd_merkle},
	};

	if (enl_init() != ENL_OK)
		return 1;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fputs(usage, stderr);
	return EXIT_USAGE;
}
