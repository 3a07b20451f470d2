/*
 * Load generator for a real broker on loopback (run by bench_broker.sh).
 *
 *   loadgen --url URL --directory FILE --sender KEYDIR... --recipient KEYDIR...
 *           --count N [--rate MSG_PER_S] [--broker-pid PID] [--ceiling-dir DIR]
 *           [--phased] [--open]
 *
 * Each sender is a session (opened before the clock starts) submitting
 * 1 KiB envelopes (sealed before it too) to one recipient, round robin,
 * one at a time, on nng's threads (see struct sender); each recipient is a
 * session that fetches and acknowledges. Like the envelopes, the
 * recipients' signed acknowledgements are made before the clock starts
 * (the broker verifies each one in full); a recipient checks that every
 * envelope it fetches is, byte for byte, one addressed to it. With
 * --open each recipient instead verifies, decrypts and signs as an
 * agent does, on the clock: the load generator shares the machine's
 * cores with the broker, and that work is the agents', not the
 * broker's. It prints sustained messages/s
 * (submit to receipt, and submit to acknowledgement), latency
 * percentiles, the broker's CPU time and peak RSS, and the machine's
 * ceiling for the broker's work measured in the same run: two threads
 * doing Ed25519 verify + SHA-256 leaf hash + group-committed durable
 * append, with no network.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conn.h"
#include "loadgen.h"

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct enl_identity *
load(const char *dir)
{
	struct enl_identity *id = NULL;
	char path[1024];

	snprintf(path, sizeof(path), "%s/secret.key", dir);
	if (enl_keyfile_read(path, NULL, 0, &id) != ENL_OK) {
		fprintf(stderr, "%s: cannot read the key\n", path);
		exit(2);
	}
	return id;
}

static struct msg **by_id;	/* sorted by message id (cmp_id) */

static struct msg **by_hash;	/* sorted by envelope hash (cmp_hash) */

static int
cmp_id(const void *a, const void *b)
{
	return memcmp((*(struct msg *const *)a)->id, (*(struct msg *const *)b)->id,
		      ENL_MSG_ID_LEN);
}

static int
cmp_hash(const void *a, const void *b)
{
	return memcmp((*(struct msg *const *)a)->hash, (*(struct msg *const *)b)->hash,
		      ENL_HASH_LEN);
}

/* Every message, sorted by `cmp` for find(); NULL when out of memory. */
static struct msg **
make_index(struct shared *sh, int (*cmp)(const void *, const void *))
{
	struct msg **index = malloc(sh->count * sizeof(*index));

	if (index == NULL)
		return NULL;
	for (size_t i = 0; i < sh->count; i++)
		index[i] = &sh->msgs[i];
	qsort(index, sh->count, sizeof(*index), cmp);
	return index;
}

/* The message like `key` in an index sorted by `cmp`, or NULL. */
static struct msg *
find(struct shared *sh, struct msg **index, int (*cmp)(const void *, const void *),
     struct msg *key)
{
	struct msg **hit = bsearch(&key, index, sh->count, sizeof(*index), cmp);

	return hit ? *hit : NULL;
}

/* The hello names the directory held: the broker attaches none. */
static uint64_t
held_serial(void *arg)
{
	return enl_directory_serial(((struct shared *)arg)->dir);
}

/*
 * A sender session submits its messages one after the other, each once
 * the receipt of the one before is in. It runs on nng's own threads
 * (each step is an aio callback that starts the next): with a thread of
 * its own, blocked in nng_sendmsg and nng_recvmsg, every request would
 * cost the machine two more thread wake-ups that the broker then lacks.
 */
struct sender {
	struct party p;
	struct conn c;
	nng_aio *aio;
	size_t i;	/* the message in flight */
	enum { SENDING, RECEIVING } stage;
	bool failed;	/* the session broke: the rest of its messages are errors */
	bool waiting;	/* for the pacer: its message is not due yet (under sh->mu) */
};

static void
sender_error(struct shared *sh, size_t n)
{
	pthread_mutex_lock(&sh->mu);
	sh->errors += (int)n;
	pthread_mutex_unlock(&sh->mu);
}

/* This sender has no more to send. */
static void
sender_done(struct sender *s)
{
	struct shared *sh = s->p.sh;

	pthread_mutex_lock(&sh->mu);
	sh->senders_done++;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
}

static void
sender_send(struct sender *s)
{
	struct shared *sh = s->p.sh;
	struct msg *m = &sh->msgs[s->i];
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__SubmitReq sr = ENLACE__SUBMIT_REQ__INIT;
	nng_msg *msg;
	size_t plen, off;

	sr.envelope.data = m->env;
	sr.envelope.len = m->len;
	req.body_case = ENLACE__REQUEST__BODY_SUBMIT;
	req.submit = &sr;
	plen = protobuf_c_message_get_packed_size(&req.base);
	if (nng_msg_alloc(&msg, enl_session_request_layout(s->c.s, plen, &off)) != 0) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(2);
	}
	protobuf_c_message_pack(&req.base, (uint8_t *)nng_msg_body(msg) + off);
	enl_session_seal_request_at(s->c.s, nng_msg_body(msg), plen);
	s->stage = SENDING;
	m->submit_ns = now_ns();
	nng_aio_set_msg(s->aio, msg);
	nng_send_aio(s->c.sock, s->aio);
}

/* The next message of this sender, when it is due; or the end. */
static void
sender_next(struct sender *s, bool first)
{
	struct shared *sh = s->p.sh;

	if (!first)
		s->i += s->p.n_parties;
	if (s->i >= sh->count) {
		sender_done(s);
		return;
	}
	if (s->failed) {
		sender_error(sh, (sh->count - s->i + s->p.n_parties - 1) / s->p.n_parties);
		sender_done(s);
		return;
	}
	if (sh->rate > 0) {
		/* not yet due: the pacer sends it when it is */
		pthread_mutex_lock(&sh->mu);
		s->waiting = s->i >= sh->paced;
		pthread_mutex_unlock(&sh->mu);
		if (s->waiting)
			return;
	}
	sender_send(s);
}

/*
 * With an offered rate: message i is due at start + i / rate. The pacer
 * sends each when it is due if its sender is waiting for it; a sender
 * still busy with the one before sends it as soon as it can.
 */
static void *
pacer(void *arg)
{
	struct sender *snd = arg;
	struct shared *sh = snd[0].p.sh;
	size_t ns = snd[0].p.n_parties;

	for (size_t i = 0; i < sh->count; i++) {
		int64_t due = sh->start_ns + (int64_t)(1e9 * (double)i / sh->rate);
		struct timespec ts = {due / 1000000000, due % 1000000000};
		struct sender *s = &snd[i % ns];
		bool send;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
			;
		pthread_mutex_lock(&sh->mu);
		sh->paced = i + 1;
		send = s->waiting && s->i == i;
		if (send)
			s->waiting = false;
		pthread_mutex_unlock(&sh->mu);
		if (send)
			sender_send(s);
	}
	return NULL;
}

static void
sender_cb(void *arg)
{
	struct sender *s = arg;
	struct shared *sh = s->p.sh;
	int rv = nng_aio_result(s->aio);
	Enlace__Response *resp = NULL;
	const uint8_t *plain;
	size_t plen;
	nng_msg *reply;

	switch (s->stage) {
	case SENDING:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			break;
		}
		s->stage = RECEIVING;
		nng_recv_aio(s->c.sock, s->aio);
		return;
	case RECEIVING:
		if (rv != 0)
			break;
		reply = nng_aio_get_msg(s->aio);
		rv = enl_session_open_reply(s->c.s, nng_msg_body(reply), nng_msg_len(reply),
					    s->c.frame_max, &plain, &plen);
		if (rv == ENL_OK)
			rv = enl_pb_unpack(&enlace__response__descriptor, plain, plen,
					   s->c.frame_max, (ProtobufCMessage **)&resp);
		nng_msg_free(reply);
		if (rv != ENL_OK)
			break;
		if (resp->status == ENL_OK)
			sh->msgs[s->i].receipt_ns = now_ns();
		else
			sender_error(sh, 1);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		sender_next(s, false);
		return;
	}
	/* the session broke: its frames are out of step from here on */
	fprintf(stderr, "loadgen: sender %zu: %s\n", s->p.index,
		    rv > 0 && rv < 100 ? nng_strerror(rv) : enl_strerror(rv));
	s->failed = true;
	sender_error(sh, 1);
	sender_next(s, false);
}

/* Opens the sender's session (before the clock starts). */
static int
sender_init(struct sender *s)
{
	struct shared *sh = s->p.sh;
	int rc;

	conn_init(&s->c, sh->url, "OAS-BROKER", s->p.me, 1 << 20);
	conn_set_directory(&s->c, held_serial, NULL, sh);
	if ((rc = conn_open(&s->c, &sh->kr)) != ENL_OK) {
		fprintf(stderr, "loadgen: sender %zu: %s\n", s->p.index, s->c.last_error);
		return rc;
	}
	if (nng_aio_alloc(&s->aio, sender_cb, s) != 0)
		return ENL_E_NOMEM;
	nng_aio_set_timeout(s->aio, 30000);
	s->i = s->p.index;
	return ENL_OK;
}

struct ack_item {
	Enlace__AckReq req;
	uint8_t id[ENL_MSG_ID_LEN], hash[ENL_HASH_LEN], sig[64];
};

static void
sign_ack(const struct enl_identity *me, const uint8_t id[ENL_MSG_ID_LEN],
	 const uint8_t hash[ENL_HASH_LEN], int64_t t, uint8_t sig[64])
{
	uint8_t buf[ENL_ACK_MSG_LEN];

	enl_ack_message(id, hash, t, buf);
	if (enl_identity_sign(me, ENL_LABEL_ACK, buf, sizeof(buf), sig) != ENL_OK)
		abort();
}

/*
 * The acknowledgement of one fetched envelope: with --open the agent's
 * work (verify, decrypt, sign); otherwise the envelope must be one of
 * ours for this recipient, byte for byte, and its ack is the one made
 * before the clock.
 */
static int
prepare_ack(struct shared *sh, const struct party *p, const uint8_t *env, size_t len,
	    struct ack_item *it)
{
	int64_t t = (int64_t)time(NULL);
	int rc;

	if (sh->open) {
		struct enl_message *m = NULL;
		struct enl_limits lim = {1 << 20};
		if ((rc = enl_envelope_open(env, len, p->me, &sh->kr, &lim, t, &m)) != ENL_OK)
			return rc;
		memcpy(it->id, m->header.message_id, ENL_MSG_ID_LEN);
		memcpy(it->hash, m->hash, ENL_HASH_LEN);
		enl_message_free(m);
		sign_ack(p->me, it->id, it->hash, t, it->sig);
	} else {
		struct msg key, *m;
		enl_hash(env, len, key.hash);
		memcpy(it->hash, key.hash, ENL_HASH_LEN);
		if ((m = find(sh, by_hash, cmp_hash, &key)) == NULL || m->recipient != p->index ||
		    m->len != len || memcmp(m->env, env, len) != 0)
			return ENL_E_BAD_SIGNATURE;
		memcpy(it->id, m->id, ENL_MSG_ID_LEN);
		memcpy(it->sig, m->ack_sig, 64);
		t = m->ack_time;
	}
	enlace__ack_req__init(&it->req);
	it->req.message_id.data = it->id;
	it->req.message_id.len = ENL_MSG_ID_LEN;
	it->req.envelope_hash.data = it->hash;
	it->req.envelope_hash.len = ENL_HASH_LEN;
	it->req.time = t;
	it->req.signature.data = it->sig;
	it->req.signature.len = 64;
	return ENL_OK;
}

static int
send_acks(struct conn *c, struct shared *sh, struct ack_item *items, size_t n)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__AckList list = ENLACE__ACK_LIST__INIT;
	Enlace__AckReq *ptrs[64];
	Enlace__Response *resp = NULL;
	int64_t t;
	int rc;

	for (size_t i = 0; i < n; i++)
		ptrs[i] = &items[i].req;
	list.n_acks = n;
	list.acks = ptrs;
	req.body_case = ENLACE__REQUEST__BODY_ACKS;
	req.acks = &list;
	rc = conn_request(c, &sh->kr, &req, 30000, &resp);
	t = now_ns();
	if (rc == ENL_OK && resp->status == ENL_OK) {
		pthread_mutex_lock(&sh->mu);
		for (size_t i = 0; i < n; i++) {
			struct msg key, *mine;
			memcpy(key.id, items[i].id, ENL_MSG_ID_LEN);
			mine = find(sh, by_id, cmp_id, &key);
			if (mine != NULL && mine->ack_ns == 0) {
				mine->ack_ns = t;
				sh->acked++;
			}
		}
		pthread_mutex_unlock(&sh->mu);
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static void *
recipient(void *arg)
{
	struct party *p = arg;
	struct shared *sh = p->sh;
	struct conn c;
	int64_t deadline = 0;

	conn_init(&c, sh->url, "OAS-BROKER", p->me, 1 << 20);
	conn_set_directory(&c, held_serial, NULL, sh);
	for (;;) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__FetchReq fr = ENLACE__FETCH_REQ__INIT;
		Enlace__Response *resp = NULL;
		size_t done;
		pthread_mutex_lock(&sh->mu);
		done = sh->acked;
		pthread_mutex_unlock(&sh->mu);
		if (done + (size_t)sh->errors >= sh->count)
			break;
		if (deadline == 0 && done > 0)
			deadline = now_ns() + (int64_t)120 * 1000000000;
		if (deadline && now_ns() > deadline)
			break;
		fr.wait_ms = 500;
		fr.max = 64;
		req.body_case = ENLACE__REQUEST__BODY_FETCH;
		req.fetch = &fr;
		if (conn_request(&c, &sh->kr, &req, 10000, &resp) == ENL_OK) {
			struct ack_item items[64];
			size_t n = 0;
			for (size_t i = 0; i < resp->n_envelopes && n < 64; i++)
				if (prepare_ack(sh, p, resp->envelopes[i].data,
						resp->envelopes[i].len, &items[n]) == ENL_OK)
					n++;
				else
					fprintf(stderr, "a fetched envelope is not as sent\n");
			if (n > 0 && send_acks(&c, sh, items, n) != ENL_OK)
				fprintf(stderr, "acks not accepted\n");
		}
		if (resp != NULL)
			protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	conn_close(&c);
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"directory", required_argument, NULL, 'd'},
		{"sender", required_argument, NULL, 's'},
		{"recipient", required_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'n'},
		{"rate", required_argument, NULL, 'R'},
		{"broker-pid", required_argument, NULL, 'p'},
		{"ceiling-dir", required_argument, NULL, 'c'},
		{"phased", no_argument, NULL, 'P'},
		{"open", no_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct shared sh;
	struct party senders[MAX_PARTIES], rcpts[MAX_PARTIES];
	pthread_t rt[MAX_PARTIES], pt;
	struct sender *snd;
	struct enl_dir_check chk = {NULL, 0, 0};
	size_t ns = 0, nr = 0, n_rec = 0, n_ack = 0;
	const char *dir_file = NULL, *ceiling_dir = NULL;
	long broker_pid = 0;
	bool phased = false;	/* recipients start once every submit is done */
	double cpu0 = 0, cpu1 = 0, wr0 = -1, wr1 = -1, ceiling = 0, fsync_ms = 0, own0, own1;
	int64_t t_end, *lat_r, *lat_a;
	int c;

	memset(&sh, 0, sizeof(sh));
	sh.count = 10000;
	if (enl_init() != ENL_OK)
		return 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': sh.url = optarg; break;
		case 'd': dir_file = optarg; break;
		case 's':
		case 'r':
			if ((c == 's' ? ns : nr) == MAX_PARTIES) {
				fprintf(stderr, "at most %d senders and %d recipients\n", MAX_PARTIES,
					MAX_PARTIES);
				return 2;
			}
			if (c == 's')
				senders[ns++].me = load(optarg);
			else
				rcpts[nr++].me = load(optarg);
			break;
		case 'n': sh.count = strtoul(optarg, NULL, 10); break;
		case 'R': sh.rate = strtod(optarg, NULL); break;
		case 'p': broker_pid = strtol(optarg, NULL, 10); break;
		case 'c': ceiling_dir = optarg; break;
		case 'P': phased = true; break;
		case 'o': sh.open = true; break;
		default: return 2;
		}
	}
	if (sh.url == NULL || dir_file == NULL || ns == 0 || nr == 0 || sh.count == 0 ||
	    enl_directory_load(dir_file, &chk, &sh.dir) != ENL_OK) {
		fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
		return 2;
	}
	sh.kr = enl_directory_keyring(sh.dir);
	pthread_mutex_init(&sh.mu, NULL);
	pthread_cond_init(&sh.cv, NULL);
	sh.msgs = calloc(sh.count, sizeof(*sh.msgs));
	lat_r = calloc(sh.count, sizeof(*lat_r));
	lat_a = calloc(sh.count, sizeof(*lat_a));
	if (sh.msgs == NULL || lat_r == NULL || lat_a == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	{
		uint8_t body[1024];
		struct enl_limits lim = {1 << 20};
		struct enl_attachment att = {"report.bin", "", body, sizeof(body)};
		struct enl_payload pl = {"bench", "", 1, &att, NULL, 0, NULL};
		struct enl_header *h = malloc(sizeof(*h));
		if (h == NULL) {
			fprintf(stderr, "loadgen: out of memory\n");
			return 1;
		}
		randombytes_buf(body, sizeof(body));
		for (size_t i = 0; i < sh.count; i++) {
			memset(h, 0, sizeof(*h));
			snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s",
				 enl_identity_id(rcpts[i % nr].me));
			h->n_recipients = 1;
			h->type = ENL_MSG_FIU_REPORT;
			h->handling.tlp = ENL_TLP_AMBER;
			h->handling.onward = ENL_ONWARD_CONSENT;
			h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
			if (enl_envelope_seal(senders[i % ns].me, &sh.kr, &lim, h, &pl,
					      (int64_t)time(NULL), &sh.msgs[i].env,
					      &sh.msgs[i].len) != ENL_OK)
				return 2;
			memcpy(sh.msgs[i].id, h->message_id, ENL_MSG_ID_LEN);
			enl_hash(sh.msgs[i].env, sh.msgs[i].len, sh.msgs[i].hash);
			sh.msgs[i].recipient = i % nr;
			sh.msgs[i].ack_time = (int64_t)time(NULL);
			if (!sh.open)
				sign_ack(rcpts[i % nr].me, sh.msgs[i].id, sh.msgs[i].hash,
					 sh.msgs[i].ack_time, sh.msgs[i].ack_sig);
		}
		free(h);
	}
	if ((by_id = make_index(&sh, cmp_id)) == NULL || (by_hash = make_index(&sh, cmp_hash)) == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	printf("%zu senders, %zu recipients, %zu messages of 1 KiB, offered rate %s%s\n", ns, nr,
	       sh.count, sh.rate > 0 ? "paced" : "as fast as possible",
	       phased ? "; recipients fetch after every submit is receipted" : "");
	printf("recipients %s\n", sh.open ? "verify, decrypt and sign each envelope (--open)"
				       : "check each envelope's bytes and send acks signed "
					 "before the clock (the broker verifies them)");
	if (sh.rate > 0)
		printf("offered %.0f msg/s\n", sh.rate);
	if (broker_pid) {
		cpu0 = proc_cpu_s(broker_pid);
		wr0 = proc_value(broker_pid, "io", "wchar:");
	}
	/* the senders' sessions are opened before the clock starts */
	if ((snd = calloc(ns, sizeof(*snd))) == NULL) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < ns; i++) {
		snd[i].p = (struct party){&sh, senders[i].me, i, ns};
		if (sender_init(&snd[i]) != ENL_OK)
			return 2;
	}
	own0 = proc_cpu_s(getpid());
	sh.start_ns = now_ns();
	for (size_t i = 0; i < nr && !phased; i++) {
		rcpts[i] = (struct party){&sh, rcpts[i].me, i, nr};
		pthread_create(&rt[i], NULL, recipient, &rcpts[i]);
	}
	if (sh.rate > 0)
		pthread_create(&pt, NULL, pacer, snd);
	for (size_t i = 0; i < ns; i++)
		sender_next(&snd[i], true);
	if (sh.rate > 0)
		pthread_join(pt, NULL);
	pthread_mutex_lock(&sh.mu);
	while (sh.senders_done < ns)
		pthread_cond_wait(&sh.cv, &sh.mu);
	pthread_mutex_unlock(&sh.mu);
	t_end = now_ns();
	own1 = proc_cpu_s(getpid());
	if (broker_pid) {
		cpu1 = proc_cpu_s(broker_pid);
		wr1 = proc_value(broker_pid, "io", "wchar:");
	}
	for (size_t i = 0; i < nr && phased; i++) {
		rcpts[i] = (struct party){&sh, rcpts[i].me, i, nr};
		pthread_create(&rt[i], NULL, recipient, &rcpts[i]);
	}
	for (size_t i = 0; i < nr; i++)
		pthread_join(rt[i], NULL);
	{
		int64_t last_ack = 0;
		for (size_t i = 0; i < sh.count; i++) {
			if (sh.msgs[i].receipt_ns)
				lat_r[n_rec++] = sh.msgs[i].receipt_ns - sh.msgs[i].submit_ns;
			if (sh.msgs[i].ack_ns) {
				lat_a[n_ack++] = sh.msgs[i].ack_ns - sh.msgs[i].submit_ns;
				if (sh.msgs[i].ack_ns > last_ack)
					last_ack = sh.msgs[i].ack_ns;
			}
		}
		printf("receipted %zu, acknowledged %zu, errors %d\n", n_rec, n_ack, sh.errors);
		printf("throughput submit->receipt   %8.0f msg/s\n",
		       (double)n_rec / ((double)(t_end - sh.start_ns) / 1e9));
		if (last_ack)
			printf("throughput submit->ack       %8.0f msg/s\n",
			       (double)n_ack / ((double)(last_ack - sh.start_ns) / 1e9));
		percentiles("latency submit->receipt", lat_r, n_rec);
		percentiles("latency submit->ack", lat_a, n_ack);
	}
	if (broker_pid)
		printf("broker CPU %.2f s over the submit phase (%.0f%% of one core), peak RSS %.0f KiB\n",
		       cpu1 - cpu0, 100 * (cpu1 - cpu0) / ((double)(t_end - sh.start_ns) / 1e9),
		       proc_value(broker_pid, "status", "VmHWM:"));
	/* the two share the machine's cores: what the rig itself took */
	printf("load generator CPU %.2f s over the submit phase (%.0f%% of one core)\n",
	       own1 - own0, 100 * (own1 - own0) / ((double)(t_end - sh.start_ns) / 1e9));
	if (broker_pid && wr0 >= 0 && wr1 >= 0 && n_rec > 0)
		printf("broker wrote %.1f KiB per message over the submit phase (store, log)\n",
		       (wr1 - wr0) / 1024.0 / (double)n_rec);
	if (ceiling_dir != NULL) {
		double thr = (double)n_rec / ((double)(t_end - sh.start_ns) / 1e9);
		double verify_ms = 0;
		/* Three measurements, and their median: on two cores the third
		 * thread (the appender) takes its share at moments that vary from
		 * run to run, and one measurement alone has swung by half. */
		double c3[3], f3[3], v3[3];
		for (int k = 0; k < 3; k++)
			c3[k] = measure_ceiling(ceiling_dir, 100000, &f3[k], &v3[k]);
		ceiling = median3(c3);
		fsync_ms = median3(f3);
		verify_ms = median3(v3);
		printf("one fdatasync (alone)        %8.3f ms\n", fsync_ms);
		printf("one Ed25519 verify (alone)   %8.3f ms\n", verify_ms);
		printf("ceiling, three measurements  %8.0f %8.0f %8.0f msg/s\n", c3[0], c3[1], c3[2]);
		printf("ceiling (2x verify+hash, group-committed append) %8.0f msg/s (their median)\n",
		       ceiling);
		printf("broker / ceiling             %8.2f\n", thr / ceiling);
		/* A derived figure, not a measured rate: the broker's CPU per
		 * message against the ceiling's (two busy cores over its rate).
		 * Their ratio is what the broker would reach with the machine to
		 * itself, if its work alone bounded it (the load generator and
		 * the kernel's loopback work share the cores in the run). */
		if (broker_pid && n_rec > 0)
			printf("broker CPU per message %.1f us, the ceiling's %.1f us: "
			       "CPU-bound, alone, the broker would reach %.2f of it\n",
			       1e6 * (cpu1 - cpu0) / (double)n_rec, 2e6 / ceiling,
			       (2e6 / ceiling) / (1e6 * (cpu1 - cpu0) / (double)n_rec));
	}
	for (size_t i = 0; i < sh.count; i++)
		free(sh.msgs[i].env);
	free(sh.msgs);
	free(by_id);
	free(by_hash);
	free(lat_r);
	free(lat_a);
	for (size_t i = 0; i < ns; i++) {
		nng_aio_free(snd[i].aio);
		conn_close(&snd[i].c);
		enl_identity_free(senders[i].me);
	}
	free(snd);
	for (size_t i = 0; i < nr; i++)
		enl_identity_free(rcpts[i].me);
	enl_directory_free(sh.dir);
	return sh.errors ? 1 : 0;
}
