/*
 * The store conformance suite: every operation of struct store_ops
 * (broker/broker.h), held to what the broker relies on, and the crash
 * safety of each: a transaction a process dies in before its commit
 * leaves nothing, one that committed survives whole. Written against the
 * interface, run on every backend in `backends` (today SQLite).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "harness.h"

struct backend {
	const char *name;
	int (*open)(const char *path, struct store *out);
};

static const struct backend backends[] = {
	{"sqlite", store_sqlite_open},
};

static const struct backend *be;
static char dir[256], path[300];

/* ---- helpers ---- */

static void
fresh(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0 || mkdir(dir, 0700) != 0)
		abort();
}

static struct store
store_open(void)
{
	struct store st = {0};

	if (be->open(path, &st) != ENL_OK) {
		fprintf(stderr, "%s: cannot open %s\n", be->name, path);
		abort();
	}
	return st;
}

static void
id_of(uint8_t id[ENL_MSG_ID_LEN], int n)
{
	memset(id, 0, ENL_MSG_ID_LEN);
	id[0] = (uint8_t)n;
	id[15] = 0xee;
}

static void
header(struct enl_header *h, int n, const char *sender, const char *r1, const char *r2)
{
	memset(h, 0, sizeof(*h));
	id_of(h->message_id, n);
	snprintf(h->sender, sizeof(h->sender), "%s", sender);
	h->sender_key_version = 1;
	snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s", r1);
	h->n_recipients = 1;
	if (r2 != NULL) {
		snprintf(h->recipients[1], sizeof(h->recipients[1]), "%s", r2);
		h->n_recipients = 2;
	}
	h->created_at = 1765000000;
	h->type = ENL_MSG_CASE_MESSAGE;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_CONSENT;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
}

/* Stores message n (envelope `len` bytes of n) to r1 (and r2), queued. */
static int
put(struct store *st, int n, const char *r1, const char *r2, size_t len, int64_t expires_at,
    const uint8_t *origin)
{
	struct enl_header h;
	struct delivery_init d[2] = {{DS_QUEUED, NULL}, {DS_QUEUED, NULL}};
	uint8_t hash[ENL_HASH_LEN], *env = malloc(len);
	int rc;

	if (env == NULL)
		return ENL_E_NOMEM;
	header(&h, n, "AR-UIF", r1, r2);
	h.expires_at = expires_at;
	memset(env, n, len);
	memset(hash, n, sizeof(hash));
	rc = st->ops->message_put(st->db, &h, hash, 1000 + n, env, len, (uint64_t)n, d, origin);
	free(env);
	return rc;
}

static int
in_tx(struct store *st, int (*fn)(struct store *st, void *arg), void *arg)
{
	int rc;

	if ((rc = st->ops->begin(st->db)) != ENL_OK)
		return rc;
	if ((rc = fn(st, arg)) != ENL_OK) {
		(void)st->ops->rollback(st->db);
		return rc;
	}
	return st->ops->commit(st->db);
}

struct taken {
	size_t n, bytes;
	int fds;
	int64_t expires[8];
	uint8_t ids[8][ENL_MSG_ID_LEN];
};

static int
take(void *arg, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t *env, size_t len, int *fd,
     int64_t expires_at)
{
	struct taken *t = arg;

	if (t->n == 8)
		return 1;
	if (env == NULL) {
		uint8_t first = 0;
		if (*fd < 0 || pread(*fd, &first, 1, 0) != 1 || first != id[0])
			return 1;
		t->fds++;
	} else if (len == 0 || env[0] != id[0]) {
		return 1;
	}
	memcpy(t->ids[t->n], id, ENL_MSG_ID_LEN);
	t->expires[t->n++] = expires_at;
	t->bytes += len;
	return 0;
}

struct states {
	size_t n;
	struct rcpt_state s[4];
};

static void
state(void *arg, const struct rcpt_state *s)
{
	struct states *ss = arg;

	if (ss->n < 4)
		ss->s[ss->n++] = *s;
}

/* ---- operations ---- */

static int
put_one(struct store *st, void *arg)
{
	return put(st, *(int *)arg, "BR-PF", "US-FINCEN", 100, 0, NULL);
}

static void
test_messages(void)
{
	struct store st;
	struct stored_message m;
	uint8_t id[ENL_MSG_ID_LEN];
	int n = 1;

	fresh();
	st = store_open();
	id_of(id, 1);
	CHECK_RC(st.ops->message_get(st.db, id, &m), ENL_E_NOT_FOUND);
	CHECK_RC(in_tx(&st, put_one, &n), ENL_OK);
	REQUIRE_OK(st.ops->message_get(st.db, id, &m));
	CHECK(strcmp(m.sender, "AR-UIF") == 0 && m.received_at == 1001 && m.log_index == 1);
	CHECK(m.hash[0] == 1 && m.hash[ENL_HASH_LEN - 1] == 1);
	/* the same id twice: refused, the first kept */
	CHECK(in_tx(&st, put_one, &n) != ENL_OK);
	REQUIRE_OK(st.ops->message_get(st.db, id, &m));
	CHECK(m.received_at == 1001);
	st.ops->close(st.db);
}

static int
put_two_sizes(struct store *st, void *arg)
{
	int rc;

	(void)arg;
	if ((rc = put(st, 1, "BR-PF", NULL, 100, 0, NULL)) != ENL_OK ||
	    (rc = put(st, 2, "BR-PF", NULL, (size_t)1 << 20, 5000, NULL)) != ENL_OK)
		return rc;
	return put(st, 3, "US-FINCEN", NULL, 200, 0, NULL);
}

static void
test_pending_and_marks(void)
{
	struct store st;
	struct taken t = {0};
	struct states ss = {0};
	uint8_t id[ENL_MSG_ID_LEN], sig[64];

	fresh();
	st = store_open();
	REQUIRE_OK(in_tx(&st, put_two_sizes, NULL));
	/* oldest first, only the recipient's; a large one through its file */
	REQUIRE_OK(st.ops->pending(st.db, "BR-PF", 10, SIZE_MAX, take, &t));
	CHECK(t.n == 2 && t.ids[0][0] == 1 && t.ids[1][0] == 2 && t.fds == 1);
	CHECK(t.expires[0] == 0 && t.expires[1] == 5000);	/* the header's expiry, kept */
	/* max_count, and max_bytes (the first goes whatever its size) */
	memset(&t, 0, sizeof(t));
	REQUIRE_OK(st.ops->pending(st.db, "BR-PF", 1, SIZE_MAX, take, &t));
	CHECK(t.n == 1);
	memset(&t, 0, sizeof(t));
	REQUIRE_OK(st.ops->pending(st.db, "BR-PF", 10, 150, take, &t));
	CHECK(t.n == 1 && t.ids[0][0] == 1);
	/* states, in the header's order */
	id_of(id, 1);
	REQUIRE_OK(st.ops->states(st.db, id, state, &ss));
	CHECK(ss.n == 1 && strcmp(ss.s[0].recipient, "BR-PF") == 0 && ss.s[0].state == DS_QUEUED);
	CHECK(ss.s[0].queued_at == 1001);
	/* fetched, fetched again (the first kept), acked, acked again */
	REQUIRE_OK(st.ops->begin(st.db));
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_FETCHED, 2000, NULL, 0, NULL), ENL_OK);
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_FETCHED, 2500, NULL, 0, NULL), ENL_E_EXISTS);
	memset(sig, 0x5a, sizeof(sig));
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_ACKED, 3000, sig, 2999, NULL), ENL_OK);
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_ACKED, 3100, sig, 3099, NULL), ENL_E_EXISTS);
	CHECK_RC(st.ops->mark(st.db, id, "XX-NONE", DS_ACKED, 3000, sig, 2999, NULL),
		 ENL_E_NOT_FOUND);
	REQUIRE_OK(st.ops->commit(st.db));
	memset(&ss, 0, sizeof(ss));
	REQUIRE_OK(st.ops->states(st.db, id, state, &ss));
	CHECK(ss.n == 1 && ss.s[0].state == DS_ACKED && ss.s[0].fetched_at == 2000 &&
	      ss.s[0].acked_at == 3000 && ss.s[0].ack_time == 2999 && ss.s[0].has_ack_sig &&
	      ss.s[0].ack_sig[63] == 0x5a);
	/* acknowledged: no longer pending */
	memset(&t, 0, sizeof(t));
	REQUIRE_OK(st.ops->pending(st.db, "BR-PF", 10, SIZE_MAX, take, &t));
	CHECK(t.n == 1 && t.ids[0][0] == 2);
	st.ops->close(st.db);
}

static void
test_expiry(void)
{
	struct store st;
	struct expired_delivery e[4];
	uint8_t id[ENL_MSG_ID_LEN];
	size_t n = 0;

	fresh();
	st = store_open();
	REQUIRE_OK(in_tx(&st, put_two_sizes, NULL));
	REQUIRE_OK(st.ops->deliveries_expired(st.db, 4999, e, 4, &n));
	CHECK(n == 0);
	REQUIRE_OK(st.ops->deliveries_expired(st.db, 5000, e, 4, &n));
	CHECK(n == 1 && e[0].id[0] == 2 && strcmp(e[0].recipient, "BR-PF") == 0 &&
	      e[0].expires_at == 5000);
	/* fetched once, it is no longer the store's to expire */
	id_of(id, 2);
	REQUIRE_OK(st.ops->begin(st.db));
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_FETCHED, 4000, NULL, 0, NULL), ENL_OK);
	CHECK_RC(st.ops->mark(st.db, id, "BR-PF", DS_EXPIRED, 5001, NULL, 0, "late"), ENL_E_EXISTS);
	REQUIRE_OK(st.ops->commit(st.db));
	REQUIRE_OK(st.ops->deliveries_expired(st.db, 6000, e, 4, &n));
	CHECK(n == 0);
	st.ops->close(st.db);
}

static int
put_chain(struct store *st, void *arg)
{
	uint8_t orig[ENL_MSG_ID_LEN];
	int rc;

	(void)arg;
	id_of(orig, 1);
	if ((rc = put(st, 1, "BR-PF", NULL, 100, 0, NULL)) != ENL_OK ||
	    (rc = put(st, 2, "US-FINCEN", NULL, 100, 0, orig)) != ENL_OK)	/* 2 forwards 1 */
		return rc;
	return put(st, 3, "CL-UAF", NULL, 100, 0, orig);	/* 3 forwards 2: origin 1 */
}

static void
test_original(void)
{
	struct store st;
	struct original_info o;
	uint8_t id[ENL_MSG_ID_LEN];

	fresh();
	st = store_open();
	REQUIRE_OK(in_tx(&st, put_chain, NULL));
	id_of(id, 1);
	REQUIRE_OK(st.ops->original(st.db, id, "BR-PF", &o));
	CHECK(o.id[0] == 1 && strcmp(o.sender, "AR-UIF") == 0 && o.hash[0] == 1);
	CHECK(o.handling.tlp == ENL_TLP_AMBER && o.forwarder_state == DS_QUEUED);
	REQUIRE_OK(st.ops->original(st.db, id, "XX-NONE", &o));
	CHECK(o.forwarder_state == 0);	/* not a recipient */
	/* a forward resolves to its innermost original */
	id_of(id, 3);
	REQUIRE_OK(st.ops->original(st.db, id, "CL-UAF", &o));
	CHECK(o.id[0] == 1 && o.forwarder_state == DS_QUEUED);
	id_of(id, 9);
	CHECK_RC(st.ops->original(st.db, id, "BR-PF", &o), ENL_E_NOT_FOUND);
	st.ops->close(st.db);
}

static int
journal(struct store *st, void *arg)
{
	const uint8_t *e[3] = {(const uint8_t *)"zero", (const uint8_t *)"one",
			       (const uint8_t *)"two"};
	size_t lens[3] = {4, 3, 3};

	(void)arg;
	return st->ops->audit_append(st->db, 0, e, lens, 3);
}

static int
count_entry(void *arg, const uint8_t *entry, size_t len)
{
	size_t *n = arg;

	(*n)++;
	return len > 0 && entry != NULL ? 0 : 1;
}

static void
cosig(void *arg, const char *line)
{
	size_t *n = arg;

	*n += strlen(line);
}

static void
test_journal_cosigs_meta_chains(void)
{
	struct store st;
	uint8_t *e = NULL, buf[16], id[ENL_MSG_ID_LEN];
	size_t len = 0, n = 0;
	uint64_t last = 99;

	fresh();
	st = store_open();
	REQUIRE_OK(in_tx(&st, journal, NULL));
	REQUIRE_OK(st.ops->audit_load(st.db, count_entry, &n));
	CHECK(n == 3);
	REQUIRE_OK(st.ops->audit_get(st.db, 1, &e, &len));
	CHECK(len == 3 && memcmp(e, "one", 3) == 0);
	free(e);
	e = NULL;
	CHECK(st.ops->audit_get(st.db, 3, &e, &len) != ENL_OK);
	free(e);
	/* the newest cosignature of each agency, listed by size */
	REQUIRE_OK(st.ops->begin(st.db));
	REQUIRE_OK(st.ops->cosig_put(st.db, "AR-UIF", 3, "— AR-UIF a\n"));
	REQUIRE_OK(st.ops->cosig_put(st.db, "BR-PF", 3, "— BR-PF bb\n"));
	REQUIRE_OK(st.ops->cosig_put(st.db, "AR-UIF", 4, "— AR-UIF ccc\n"));	/* replaces */
	REQUIRE_OK(st.ops->meta_put(st.db, "k", (const uint8_t *)"value", 5));
	id_of(id, 7);
	REQUIRE_OK(st.ops->chain_put(st.db, id, 12));
	REQUIRE_OK(st.ops->commit(st.db));
	n = 0;
	REQUIRE_OK(st.ops->cosigs(st.db, 3, cosig, &n));
	CHECK(n == strlen("— BR-PF bb\n"));
	n = 0;
	REQUIRE_OK(st.ops->cosigs(st.db, 4, cosig, &n));
	CHECK(n == strlen("— AR-UIF ccc\n"));
	REQUIRE_OK(st.ops->meta_get(st.db, "k", buf, sizeof(buf), &len));
	CHECK(len == 5 && memcmp(buf, "value", 5) == 0);
	CHECK_RC(st.ops->meta_get(st.db, "none", buf, sizeof(buf), &len), ENL_E_NOT_FOUND);
	REQUIRE_OK(st.ops->chain_get(st.db, id, &last));
	CHECK(last == 12);
	id_of(id, 8);
	REQUIRE_OK(st.ops->chain_get(st.db, id, &last));
	CHECK(last == 0);
	st.ops->close(st.db);
}

static struct consent
consent_of(int n, int64_t expires_at)
{
	struct consent c;

	memset(&c, 0, sizeof(c));
	id_of(c.request_id, n);
	id_of(c.forward_id, n + 1);
	id_of(c.original_id, n + 2);
	memset(c.original_hash, n, sizeof(c.original_hash));
	snprintf(c.recipient, sizeof(c.recipient), "US-FINCEN");
	snprintf(c.originator, sizeof(c.originator), "AR-UIF");
	snprintf(c.forwarder, sizeof(c.forwarder), "BR-PF");
	c.expires_at = expires_at;
	c.state = CONSENT_PENDING;
	return c;
}

static void
test_consents(void)
{
	struct store st;
	struct consent a = consent_of(10, 100), b = consent_of(20, 200), got, out[4];
	size_t n = 0;

	fresh();
	st = store_open();
	REQUIRE_OK(st.ops->begin(st.db));
	REQUIRE_OK(st.ops->consent_put(st.db, &a));
	REQUIRE_OK(st.ops->consent_put(st.db, &b));
	REQUIRE_OK(st.ops->commit(st.db));
	REQUIRE_OK(st.ops->consent_get(st.db, a.request_id, &got));
	CHECK(memcmp(&got.forward_id, a.forward_id, ENL_MSG_ID_LEN) == 0 &&
	      strcmp(got.forwarder, "BR-PF") == 0 && got.expires_at == 100 &&
	      got.state == CONSENT_PENDING && got.original_hash[0] == 10);
	REQUIRE_OK(st.ops->consents_expired(st.db, 150, out, 4, &n));
	CHECK(n == 1 && out[0].request_id[0] == 10);
	REQUIRE_OK(st.ops->begin(st.db));
	REQUIRE_OK(st.ops->consent_set(st.db, a.request_id, CONSENT_GRANTED_S));
	REQUIRE_OK(st.ops->commit(st.db));
	REQUIRE_OK(st.ops->consents_expired(st.db, 1000, out, 4, &n));
	CHECK(n == 1 && out[0].request_id[0] == 20);	/* decided: not pending */
	id_of(got.request_id, 99);
	CHECK_RC(st.ops->consent_get(st.db, got.request_id, &got), ENL_E_NOT_FOUND);
	st.ops->close(st.db);
}

/* ---- transactions and crashes ---- */

static void
test_rollback(void)
{
	struct store st;
	struct stored_message m;
	uint8_t id[ENL_MSG_ID_LEN];
	int n = 4;

	fresh();
	st = store_open();
	REQUIRE_OK(st.ops->begin(st.db));
	REQUIRE_OK(put_one(&st, &n));
	REQUIRE_OK(st.ops->rollback(st.db));
	id_of(id, 4);
	CHECK_RC(st.ops->message_get(st.db, id, &m), ENL_E_NOT_FOUND);
	st.ops->close(st.db);
}

/* Every kind of write, in one transaction. */
static int
write_all(struct store *st, void *arg)
{
	struct consent c = consent_of(40, 100);
	uint8_t id[ENL_MSG_ID_LEN];
	int rc, n = 30;

	(void)arg;
	id_of(id, 30);
	if ((rc = put_one(st, &n)) != ENL_OK || (rc = journal(st, NULL)) != ENL_OK ||
	    (rc = st->ops->cosig_put(st->db, "AR-UIF", 3, "— AR-UIF a\n")) != ENL_OK ||
	    (rc = st->ops->meta_put(st->db, "k", (const uint8_t *)"v", 1)) != ENL_OK ||
	    (rc = st->ops->chain_put(st->db, id, 5)) != ENL_OK ||
	    (rc = st->ops->consent_put(st->db, &c)) != ENL_OK)
		return rc;
	return st->ops->mark(st->db, id, "BR-PF", DS_FETCHED, 2000, NULL, 0, NULL);
}

/* How much of write_all is in the store: 0 (nothing) or 7 (all). */
static int
written(struct store *st)
{
	struct stored_message m;
	struct consent c = consent_of(40, 100);
	struct states ss = {0};
	uint8_t id[ENL_MSG_ID_LEN], buf[4];
	uint64_t last = 0;
	size_t n = 0, len = 0;
	int have = 0;

	id_of(id, 30);
	have += st->ops->message_get(st->db, id, &m) == ENL_OK;
	have += st->ops->audit_load(st->db, count_entry, &n) == ENL_OK && n == 3;
	n = 0;
	have += st->ops->cosigs(st->db, 3, cosig, &n) == ENL_OK && n > 0;
	have += st->ops->meta_get(st->db, "k", buf, sizeof(buf), &len) == ENL_OK;
	have += st->ops->chain_get(st->db, id, &last) == ENL_OK && last == 5;
	have += st->ops->consent_get(st->db, c.request_id, &c) == ENL_OK;
	have += st->ops->states(st->db, id, state, &ss) == ENL_OK && ss.n == 2 &&
		ss.s[0].state == DS_FETCHED;
	return have;
}

/* A child writes it all, then dies (SIGKILL, no close) before or after its
 * commit; the store opened again holds none of it, or all of it. */
static int
after_crash(bool commit)
{
	struct store st;
	pid_t pid;
	int status, have;

	fresh();
	if ((pid = fork()) == 0) {
		st = store_open();
		if (st.ops->begin(st.db) != ENL_OK || write_all(&st, NULL) != ENL_OK)
			_exit(3);
		if (commit && st.ops->commit(st.db) != ENL_OK)
			_exit(4);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
		return -1;
	st = store_open();
	have = written(&st);
	st.ops->close(st.db);
	return have;
}

static void
test_crash_safety(void)
{
	CHECK(after_crash(false) == 0);
	CHECK(after_crash(true) == 7);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/enlace-store-test-%ld", (long)getpid());
	snprintf(path, sizeof(path), "%s/store.sqlite", dir);
	if (enl_init() != ENL_OK)
		return 1;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		be = &backends[i];
		fprintf(stderr, "# store backend: %s\n", be->name);
		RUN(test_messages);
		RUN(test_pending_and_marks);
		RUN(test_expiry);
		RUN(test_original);
		RUN(test_journal_cosigs_meta_chains);
		RUN(test_consents);
		RUN(test_rollback);
		RUN(test_crash_safety);
	}
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return harness_done();
}
