/*
 * The fetcher: takes messages from the broker, verifies and opens each,
 * keeps it in the inbox, and acknowledges or refuses it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

/* ---- fetcher ---- */

/* An acknowledgement made, waiting to go with the others of its fetch. */
struct pending_ack {
	uint8_t id[ENL_MSG_ID_LEN], hash[ENL_HASH_LEN], sig[64];
	int64_t time;
};

static int
make_ack(struct agent *a, const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
	 struct pending_ack *out)
{
	uint8_t msg[ENL_ACK_MSG_LEN];

	out->time = (int64_t)time(NULL);
	memcpy(out->id, id, ENL_MSG_ID_LEN);
	memcpy(out->hash, hash, ENL_HASH_LEN);
	enl_ack_message(id, hash, out->time, msg);
	return enl_identity_sign(a->me, ENL_LABEL_ACK, msg, sizeof(msg), out->sig);
}

/* Sends the acknowledgements of one fetch in one request. */
static int
send_acks(struct agent *a, const struct enl_keyring *kr, const struct pending_ack *acks,
	  size_t n)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__AckList list = ENLACE__ACK_LIST__INIT;
	Enlace__AckReq *items, **ptrs;
	Enlace__Response *resp = NULL;
	int rc = ENL_E_NOMEM;

	if (n == 0)
		return ENL_OK;
	items = calloc(n, sizeof(*items));
	ptrs = calloc(n, sizeof(*ptrs));
	if (items == NULL || ptrs == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		enlace__ack_req__init(&items[i]);
		items[i].message_id.data = (uint8_t *)acks[i].id;
		items[i].message_id.len = ENL_MSG_ID_LEN;
		items[i].envelope_hash.data = (uint8_t *)acks[i].hash;
		items[i].envelope_hash.len = ENL_HASH_LEN;
		items[i].time = acks[i].time;
		items[i].signature.data = (uint8_t *)acks[i].sig;
		items[i].signature.len = 64;
		ptrs[i] = &items[i];
	}
	list.n_acks = n;
	list.acks = ptrs;
	req.body_case = ENLACE__REQUEST__BODY_ACKS;
	req.acks = &list;
	if ((rc = conn_request(&a->in, kr, &req, 30000, &resp)) != ENL_OK)
		goto out;
	rc = resp->status;
	if (rc != ENL_OK)
		alog("acknowledgements refused by the broker: %s", resp->reason);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	free(items);
	free(ptrs);
	return rc;
}

static int
send_reject(struct agent *a, const struct enl_keyring *kr, const uint8_t *id,
	    const uint8_t hash[ENL_HASH_LEN], const char *reason)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__RejectReq rj = ENLACE__REJECT_REQ__INIT;
	Enlace__Response *resp = NULL;
	int rc;

	rj.message_id.data = (uint8_t *)id;
	rj.message_id.len = id ? ENL_MSG_ID_LEN : 0;
	rj.envelope_hash.data = (uint8_t *)hash;
	rj.envelope_hash.len = ENL_HASH_LEN;
	rj.reason = (char *)reason;
	req.body_case = ENLACE__REQUEST__BODY_REJECT;
	req.reject = &rj;
	if ((rc = conn_request(&a->in, kr, &req, 30000, &resp)) != ENL_OK)
		return rc;
	rc = resp->status;
	if (rc != ENL_OK)
		alog("the broker did not record the refusal: %s", resp->reason);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

/* Handles one incoming envelope: verify and store durably, then make its
 * acknowledgement into *ack (*have_ack set) for the caller to send. */
/*
 * A forward must carry its original: signed by its originator, opened
 * with the key passed on, the one forward_of names, with a handling the
 * forward does not weaken and that allows forwarding at all.
 */
static bool
forward_verified(struct agent *a, const struct enl_keyring *kr, const struct enl_message *m,
		 char *why, size_t cap)
{
	const struct enl_handling *fh = &m->header.handling;
	struct enl_message *om = NULL;
	int rc;

	if (!m->header.has_forward_of || m->header.type != ENL_MSG_FORWARD ||
	    m->payload.original == NULL || m->payload.original_key == NULL) {
		snprintf(why, cap, "a forward without its original and key");
		return false;
	}
	rc = enl_envelope_open_with_key(m->payload.original, m->payload.original_len,
					m->payload.original_key, kr, &a->lim, 0, &om);
	if (rc != ENL_OK) {
		snprintf(why, cap, "the forwarded original does not verify: %s", enl_strerror(rc));
		return false;
	}
	if (memcmp(om->header.message_id, m->header.forward_of, ENL_MSG_ID_LEN) != 0)
		snprintf(why, cap, "the forwarded original is not the message forward_of names");
	else if (fh->tlp < om->header.handling.tlp || fh->onward < om->header.handling.onward ||
		 fh->evidential < om->header.handling.evidential)
		snprintf(why, cap, "the forward weakens the original's handling");
	else if (om->header.handling.tlp >= ENL_TLP_AMBER_STRICT ||
		 om->header.handling.onward == ENL_ONWARD_NEVER)
		snprintf(why, cap, "the original's handling forbids forwarding it");
	else
		why[0] = '\0';
	enl_message_free(om);
	return why[0] == '\0';
}

static int
receive_one(struct agent *a, const struct enl_keyring *kr, const uint8_t *env, size_t len,
	    struct pending_ack *ack, bool *have_ack)
{
	struct enl_message *m = NULL;
	struct enl_header h;
	char hex[2 * ENL_HASH_LEN + 1], name[80], path[2048];
	uint8_t hash[ENL_HASH_LEN];
	struct stat st;
	int rc;

	char reason[300];
	struct enl_keyring k = *kr, now;

	rc = enl_envelope_open(env, len, a->me, &k, &a->lim, (int64_t)time(NULL), &m);
	if (rc == ENL_E_UNKNOWN_SENDER || rc == ENL_E_UNKNOWN_KEY_VERSION) {
		/* The broker checked the sender against its directory: this
		 * agent's may be older (a new agency, a new key). Before it is
		 * refused for good, the newest directory is asked for, unless
		 * a newer one came in since `kr` was taken (with the welcome
		 * of the session this envelope came on, say). A keyring's ctx
		 * is its directory. */
		now = keyring(a);
		if (now.ctx == k.ctx) {
			if (directory_refresh(a) != ENL_OK)
				return ENL_E_IO;	/* it stays at the broker; asked again later */
			now = keyring(a);
		}
		if (now.ctx != k.ctx) {
			k = now;
			rc = enl_envelope_open(env, len, a->me, &k, &a->lim, (int64_t)time(NULL),
					       &m);
		}
	}
	if (rc == ENL_E_NOMEM)
		return rc;	/* this agent's failure, not the envelope's */
	if (rc == ENL_E_UNKNOWN_KEY_VERSION &&
	    enl_envelope_verify(env, len, &k, &a->lim, (int64_t)time(NULL), &h, NULL) == ENL_OK) {
		/* Signed by a sender the directory holds, but sealed to a key
		 * version of this agency that this agent has not loaded (a key
		 * rotated since it started): not the message's fault. It waits
		 * at the broker, unacknowledged, for a restart with that key. */
		enl_hex(h.message_id, ENL_MSG_ID_LEN, hex);
		pthread_mutex_lock(&a->mu);
		bool again = strcmp(a->waiting_said, hex) == 0;
		snprintf(a->waiting_said, sizeof(a->waiting_said), "%s", hex);
		pthread_mutex_unlock(&a->mu);
		if (!again)	/* said once, not at every fetch */
			alog("message %s from %s is sealed to a key of %s that this agent has not "
			     "loaded (rotated since it started?); it waits at the broker until the "
			     "agent is restarted with that key", hex, h.sender,
			     enl_identity_id(a->me));
		return ENL_E_UNKNOWN_KEY_VERSION;
	}
	if (rc == ENL_OK && (m->header.has_forward_of || m->header.type == ENL_MSG_FORWARD ||
			     m->payload.original != NULL) &&
	    !forward_verified(a, &k, m, reason, sizeof(reason))) {
		enl_message_free(m);
		m = NULL;
		rc = ENL_E_TAMPERED;
	} else if (rc == ENL_E_EXPIRED) {	/* it verified, but came too late */
		snprintf(reason, sizeof(reason), "the message had expired when it arrived");
	} else {
		snprintf(reason, sizeof(reason), "did not verify: %s", enl_strerror(rc));
	}
	if (rc != ENL_OK) {
		char line[310];
		int n;
		enl_hash(env, len, hash);
		enl_hex(hash, ENL_HASH_LEN, hex);
		alog("REFUSED an incoming envelope %.16s…: %s", hex, reason);
		snprintf(path, sizeof(path), "%s/refused/%s.env", a->cfg.spool, hex);
		if (enl_file_write(path, env, len, 0600, true) != ENL_OK)
			return ENL_E_IO;
		n = snprintf(line, sizeof(line), "%s\n", reason);
		snprintf(path, sizeof(path), "%s/refused/%s.reason", a->cfg.spool, hex);
		if (enl_file_write(path, (const uint8_t *)line, (size_t)n, 0600, true) != ENL_OK)
			return ENL_E_IO;
		/* Name the message by its id, if the header parses at all (unverified:
		 * the broker checks that this agency is one of its recipients). */
		if (enl_envelope_peek(env, len, &a->lim, &h) == ENL_OK)
			return send_reject(a, kr, h.message_id, hash, reason);
		alog("the refused envelope does not even name itself; it stays at the broker");
		return ENL_OK;
	}
	enl_hex(m->header.message_id, ENL_MSG_ID_LEN, hex);
	snprintf(name, sizeof(name), "%s.env", hex);
	spool_path(a, path, sizeof(path), "inbox", name);
	/* Already here (an ack that was lost): acknowledge again, store once. */
	if (stat(path, &st) != 0) {
		if ((rc = enl_file_write(path, env, len, 0600, false)) != ENL_OK &&
		    rc != ENL_E_EXISTS) {
			char t[32];
			alog("%s: %s", path, enl_strerror(rc));
			enl_time_format((int64_t)time(NULL), t);
			pthread_mutex_lock(&a->mu);
			snprintf(a->inbox_blocked, sizeof(a->inbox_blocked), "cannot keep incoming "
				 "messages: %s (since %s); they wait at the broker", enl_strerror(rc),
				 a->inbox_blocked[0] ? "earlier" : t);
			pthread_mutex_unlock(&a->mu);
			enl_message_free(m);
			return rc;
		}
		alog("received message %s from %s", hex, m->header.sender);
		inbox_seen_add(a, name, m);
	}
	pthread_mutex_lock(&a->mu);
	a->inbox_blocked[0] = '\0';	/* kept: the inbox takes messages again */
	pthread_mutex_unlock(&a->mu);
	rc = make_ack(a, m->header.message_id, m->hash, ack);
	*have_ack = rc == ENL_OK;
	enl_message_free(m);
	return rc;
}

void *
fetcher_main(void *arg)
{
	struct agent *a = arg;
	unsigned backoff = 0;

	while (!a->stopping) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__FetchReq fr = ENLACE__FETCH_REQ__INIT;
		Enlace__Response *resp = NULL;
		struct enl_keyring kr = keyring(a);
		int rc;

		fr.wait_ms = (uint32_t)a->cfg.fetch_wait_ms;
		req.body_case = ENLACE__REQUEST__BODY_FETCH;
		req.fetch = &fr;
		rc = conn_request_lent(&a->in, &kr, &req, (int)a->cfg.fetch_wait_ms + 15000,
				       &resp);
		set_connected(a, &a->in, rc == ENL_OK);
		if (rc == ENL_OK && resp->status != ENL_OK) {
			/* refused (the broker's disk full, say): not again at once */
			alog("the broker refused a fetch: %s", resp->reason);
			rc = resp->status;
		}
		if (rc == ENL_OK && resp->status == ENL_OK && resp->n_envelopes > 0) {
			struct pending_ack *acks = calloc(resp->n_envelopes, sizeof(*acks));
			size_t n = 0;
			bool waits = false;
			rc = acks == NULL ? ENL_E_NOMEM : ENL_OK;
			for (size_t i = 0; i < resp->n_envelopes && rc == ENL_OK; i++) {
				bool have = false;
				rc = receive_one(a, &kr, resp->envelopes[i].data,
						 resp->envelopes[i].len, &acks[n], &have);
				n += have;
				if (rc == ENL_E_UNKNOWN_KEY_VERSION) {
					/* it waits at the broker; the others come in */
					waits = true;
					rc = ENL_OK;
				}
			}
			if (rc == ENL_OK && waits)
				rc = ENL_E_UNKNOWN_KEY_VERSION;	/* fetched again after a pause */
			else if (rc == ENL_OK)
				backoff = 0;
			/* what is durably in the inbox is acknowledged, even after a failure */
			if (n > 0) {
				int arc = send_acks(a, &kr, acks, n);
				rc = rc == ENL_OK ? arc : rc;
			}
			free(acks);
		}
		if (resp != NULL)
			conn_response_free(&a->in, resp);
		if (rc != ENL_OK && !a->stopping) {
			unsigned ms = 100u << (backoff < 7 ? backoff : 7);
			/* a message waiting for a key holds up the others: 2 s at most */
			unsigned cap = rc == ENL_E_UNKNOWN_KEY_VERSION ? 2000 : 10000;
			ms = ms > cap ? cap : ms;
			usleep((ms / 2 + randombytes_uniform(ms / 2 + 1)) * 1000);
			backoff++;
		}
	}
	return NULL;
}
