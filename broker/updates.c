/*
 * A newer directory or policy: on the record first (its entry in the
 * audit log, durable), then in force.
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

#include "server_int.h"

/* ---- a new policy: on the record first, then in force ---- */

struct policy_job {
	struct job job;
	struct server *srv;
	struct policy_ref *ref;
	uint8_t hash[32];
	char reason[300];
};

static int
policy_job_write(struct job *j, struct store *st, int64_t now)
{
	struct policy_job *pj = (struct policy_job *)j;
	struct audit a = {ENLACE__AUDIT_EVENT__POLICY_LOADED, NULL, pj->hash, NULL,
			  enl_identity_id(pj->srv->p.me), NULL, pj->reason, 0, NULL, NULL, NULL};

	(void)st;
	return auditlog_add(pj->srv, &a, now, NULL);
}

static void
policy_job_done(struct job *j, int rc)
{
	struct policy_job *pj = (struct policy_job *)j;
	struct server *srv = pj->srv;
	struct policy_ref *old;

	if (rc != ENL_OK) {
		blog("policy not put in force: its POLICY_LOADED entry could not be stored: %s",
		     enl_strerror(rc));
		inforce_policy_put(srv, pj->ref);
		free(pj);
		return;
	}
	pthread_mutex_lock(&srv->mu);
	old = srv->policy;
	srv->policy = pj->ref;
	pthread_mutex_unlock(&srv->mu);
	inforce_policy_put(srv, old);
	blog("policy in force: %s", pj->reason);
	free(pj);
}

void
server_set_policy(struct server *srv, struct policy *p, const uint8_t hash[32],
		  const char *path)
{
	struct policy_job *pj = calloc(1, sizeof(*pj));
	char hex[65];

	if (pj == NULL || (pj->ref = calloc(1, sizeof(*pj->ref))) == NULL) {
		blog("policy %s: out of memory; the policy in force stays", path);
		free(pj);
		policy_free(p);
		return;
	}
	pj->srv = srv;
	pj->ref->p = p;
	pj->ref->refs = 1;
	memcpy(pj->hash, hash, 32);
	enl_hex(hash, 32, hex);
	snprintf(pj->reason, sizeof(pj->reason), "%s (%zu rules), sha256 %s", path,
		 policy_rule_count(p), hex);
	pj->job.write = policy_job_write;
	pj->job.done = policy_job_done;
	writer_submit(srv->p.writer, &pj->job);
}

/* ---- a newer directory ---- */

/* The highest directory serial put in force, kept in the store's meta. */
static int
directory_serial_put(struct store *st, uint64_t serial)
{
	uint64_t held = 0;
	uint8_t be[8];

	if (directory_serial_held(st, &held) != ENL_OK || serial <= held)
		return ENL_OK;
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(serial >> (56 - 8 * i));
	return st->ops->meta_put(st->db, "directory_serial", be, sizeof(be));
}

int
directory_serial_held(struct store *st, uint64_t *serial)
{
	uint8_t be[8];
	size_t len = 0;
	int rc = st->ops->meta_get(st->db, "directory_serial", be, sizeof(be), &len);

	*serial = 0;
	if (rc == ENL_E_NOT_FOUND)
		return ENL_OK;
	if (rc != ENL_OK)
		return rc;
	if (len != sizeof(be))
		return ENL_E_MALFORMED;
	for (int i = 0; i < 8; i++)
		*serial = *serial << 8 | be[i];
	return ENL_OK;
}

int
audit_directory(struct store *st, struct tlog *log, const struct enl_identity *me,
		const struct enl_directory *dir, const uint8_t *bytes, size_t len, int64_t now)
{
	Enlace__AuditEntry e = ENLACE__AUDIT_ENTRY__INIT;
	uint8_t hash[ENL_HASH_LEN], seen[ENL_HASH_LEN], *entry = NULL;
	char reason[64];
	size_t elen = 0, slen = 0;
	uint64_t index;
	int rc;

	crypto_generichash(hash, sizeof(hash), bytes, len, NULL, 0);
	rc = st->ops->meta_get(st->db, "directory_hash", seen, sizeof(seen), &slen);
	if (rc == ENL_OK && slen == sizeof(seen) && sodium_memcmp(seen, hash, sizeof(hash)) == 0)
		return directory_serial_put(st, enl_directory_serial(dir));	/* a store of an
										 * earlier build */
	if (rc != ENL_OK && rc != ENL_E_NOT_FOUND)
		return rc;
	snprintf(reason, sizeof(reason), "directory serial %" PRIu64, enl_directory_serial(dir));
	e.time = now;
	e.event = ENLACE__AUDIT_EVENT__DIRECTORY_UPDATED;
	e.sender = (char *)enl_identity_id(me);
	e.directory_serial = enl_directory_serial(dir);
	e.envelope_hash.data = hash;
	e.envelope_hash.len = sizeof(hash);
	e.reason = reason;
	if ((rc = enl_pb_pack(&e.base, &entry, &elen)) != ENL_OK)
		return rc;
	rc = tlog_append(log, entry, elen, &index);
	free(entry);
	if (rc == ENL_OK)
		rc = st->ops->meta_put(st->db, "directory_hash", hash, sizeof(hash));
	if (rc == ENL_OK)
		rc = directory_serial_put(st, enl_directory_serial(dir));
	if (rc == ENL_OK)
		blog("audit log: directory serial %" PRIu64 " recorded", enl_directory_serial(dir));
	return rc == ENL_E_TOO_LARGE ? ENL_E_IO : rc;
}

struct dir_job {
	struct job job;
	struct server *srv;
	struct dir_state *state;
};

static int
dir_job_write(struct job *j, struct store *st, int64_t now)
{
	struct dir_job *dj = (struct dir_job *)j;

	return audit_directory(st, dj->srv->p.log, dj->srv->p.me, dj->state->dir,
			       dj->state->bytes, dj->state->len, now);
}

/* On the writer, once the DIRECTORY_UPDATED entry is stored: the new
 * directory in force, and the sessions it no longer admits closed. */
static void
dir_job_done(struct job *j, int rc)
{
	struct dir_job *dj = (struct dir_job *)j;
	struct server *srv = dj->srv;
	struct dir_state *d = dj->state;
	uint32_t *drop = NULL;
	size_t n_drop = 0;

	free(dj);
	if (rc != ENL_OK) {
		blog("directory serial %" PRIu64 " not put in force: its DIRECTORY_UPDATED entry "
		     "could not be stored: %s", enl_directory_serial(d->dir), enl_strerror(rc));
		inforce_dir_free(d);
		return;
	}
	pthread_mutex_lock(&srv->mu);
	d->before = srv->dir;
	srv->dir = d;
	if (srv->n_sessions > 0 && (drop = calloc(srv->n_sessions, sizeof(*drop))) == NULL)
		blog("out of memory: the sessions of keys no longer in the directory stay open "
		     "(each request of theirs is refused)");
	for (struct sess *s = srv->sessions; s != NULL && drop != NULL; s = s->next) {
		uint8_t pk[32];
		if (!s->dead && d->kr.signing_key(d->kr.ctx, enl_session_peer(s->s),
						  enl_session_peer_version(s->s), pk) != ENL_OK) {
			blog("session %s v%u closed: directory serial %" PRIu64 " no longer holds "
			     "its key", enl_session_peer(s->s), enl_session_peer_version(s->s),
			     enl_directory_serial(d->dir));
			drop[n_drop++] = s->pipe;
		}
	}
	pthread_mutex_unlock(&srv->mu);
	blog("directory serial %" PRIu64 " in force", enl_directory_serial(d->dir));
	for (size_t i = 0; i < n_drop; i++) {
		nng_pipe p = NNG_PIPE_INITIALIZER;
		p.id = drop[i];
		nng_pipe_close(p);	/* the session ends with its pipe */
	}
	free(drop);
}

uint64_t
server_directory_serial(struct server *srv)
{
	return enl_directory_serial(inforce_dir(srv)->dir);
}

int
server_reader_key(void *arg, const char *id, uint32_t version, uint8_t pk[static 32])
{
	const struct enl_directory *d = inforce_dir(arg)->dir;
	const struct enl_card *c = enl_directory_find(d, id);
	const struct enl_card_key *k;

	if (c == NULL)
		return ENL_E_UNKNOWN_SENDER;
	if (version != c->current_version || (k = enl_card_key(c, version)) == NULL)
		return ENL_E_UNKNOWN_KEY_VERSION;
	if (enl_directory_revoked(d, id, version) != NULL)
		return ENL_E_REVOKED_KEY;
	memcpy(pk, k->sign_pk, 32);
	return ENL_OK;
}

void
server_set_directory(struct server *srv, struct enl_directory *dir, uint8_t *bytes, size_t len)
{
	struct dir_job *dj = calloc(1, sizeof(*dj));
	struct dir_state *d = calloc(1, sizeof(*d));

	if (dj == NULL || d == NULL) {
		blog("directory serial %" PRIu64 ": out of memory; the directory in force stays",
		     enl_directory_serial(dir));
		free(dj);
		free(d);
		enl_directory_free(dir);
		free(bytes);
		return;
	}
	d->dir = d->owned = dir;
	d->bytes = d->owned_bytes = bytes;
	d->len = len;
	d->kr = enl_directory_keyring(dir);
	dj->srv = srv;
	dj->state = d;
	dj->job.write = dir_job_write;
	dj->job.done = dir_job_done;
	writer_submit(srv->p.writer, &dj->job);
}
