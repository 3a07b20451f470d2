/*
 * A misbehaving client for the refusal tests: it speaks the broker's
 * protocol by hand and does what an honest agent never does. Each mode
 * prints the broker's answer and exits 0 if the broker refused as it
 * must, 1 if it accepted, 2 on a usage or setup error.
 *
 *   rawclient MODE URL KEYDIR DIRECTORY [OTHER_KEYDIR]
 *
 * MODE: hello (an honest handshake and DIRECTORY request: must succeed),
 * replay-hello, replay-frame, wrong-sender (OTHER_KEYDIR seals),
 * forged (a key not in the directory signs as KEYDIR's agency),
 * skewed (an honest handshake from a machine whose clock is an hour slow),
 * oversized, garbage-first, garbage-after, stranger (KEYDIR is not in
 * the directory: the handshake must be refused), bad-ciphertext (a
 * message to OTHER_KEYDIR's position taken as a recipient id: signed
 * properly by KEYDIR but with a ciphertext that will not decrypt; the
 * broker must accept it, the recipient must refuse it; prints its id),
 * forward ORIG_ID TO TLP ONWARD [no-link | as-case] (a FORWARD of
 * ORIG_ID to TO under that handling, built by hand so that no agent-side
 * check stops it; no-link: a FORWARD naming no original, its header
 * rewritten and re-signed after sealing; as-case: a CASE_MESSAGE that
 * names ORIG_ID as its original; may-use: evidential use MAY_USE. The
 * broker must refuse each),
 * decide REQ ORIG ORIG_HASH FWD RECIPIENT (a consent decision granting
 * request REQ, signed by KEYDIR's agency, naming those: the broker must
 * refuse it), expiring RECIPIENT SECONDS [BYTES] (an honest message to
 * RECIPIENT that expires SECONDS from now, which no agent sends, with an
 * attachment of BYTES random bytes if given: the broker must accept it;
 * prints its id), to-self (an honest message to KEYDIR's own
 * agency, which the agent refuses to send: the broker must refuse it),
 * burst RECIPIENT N (N sessions submit an honest message each at once:
 * exits 0 if every receipt verifies and some were signed as one batch),
 * flood N (opens an honest session over a raw TCP connection, then sends
 * N DIRECTORY requests and never reads an answer; prints its local port,
 * holds the connection a minute; the test watches the broker's side),
 * sessions N (opens N honest sessions and holds them; prints how many
 * the broker accepted, then waits for its standard input to close),
 * acks N (one ACK request listing N acknowledgements: the broker must
 * refuse it, without allocating for each),
 * cosign CHECKPOINT_FILE good|name|flip [NAME] (KEYDIR's agency cosigns
 * the published checkpoint: good, as an agent does, must be accepted;
 * name, under NAME, another agency's id, and flip, with one byte of the
 * signature changed, must be refused).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "rawlib.h"

/*
 * n sessions of `me` each submit an honest message to `to` at once, so
 * that the broker takes several in one writer round. Every receipt must
 * verify under a key of the broker's card; *largest gets the largest
 * batch seen. 0 if all verify, 1 if one does not, 2 on a setup error.
 */
static int
burst(const char *url, const struct enl_identity *me, const struct enl_keyring *kr,
      const struct enl_directory *d, const char *to, size_t n, uint32_t *largest)
{
	const struct enl_card *bc = enl_directory_find(d, "OAS-BROKER");
	nng_socket *socks = calloc(n, sizeof(*socks));
	struct enl_session **sess = calloc(n, sizeof(*sess));
	uint8_t **frames = calloc(n, sizeof(*frames));
	size_t *fl = calloc(n, sizeof(*fl)), good = 0;
	int ret = 2;

	if (bc == NULL || socks == NULL || sess == NULL || frames == NULL || fl == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__SubmitReq sr = ENLACE__SUBMIT_REQ__INIT;
		struct enl_header h;
		struct enl_limits lim = {1 << 20};
		struct enl_payload p = {"s", "one of a burst", 0, NULL, NULL, 0, NULL};
		uint8_t *env = NULL, *plain = NULL;
		size_t len = 0, pl = 0;
		socks[i] = dial(url);
		if ((sess[i] = handshake(socks[i], me, kr, NULL, NULL)) == NULL)
			goto out;
		case_header(&h, to);
		if (enl_envelope_seal(me, kr, &lim, &h, &p, (int64_t)time(NULL), &env, &len) != ENL_OK)
			goto out;
		sr.envelope.data = env;
		sr.envelope.len = len;
		req.body_case = ENLACE__REQUEST__BODY_SUBMIT;
		req.submit = &sr;
		if (enl_pb_pack(&req.base, &plain, &pl) != ENL_OK ||
		    enl_session_seal_request(sess[i], plain, pl, &frames[i], &fl[i]) != ENL_OK)
			goto out;
		free(plain);
		free(env);
	}
	for (size_t i = 0; i < n; i++)
		if (nng_send(socks[i], frames[i], fl[i], 0) != 0)
			goto out;
	ret = 1;
	for (size_t i = 0; i < n; i++) {
		Enlace__Response *r = NULL;
		const uint8_t *rp = NULL;
		size_t rl = 0, rpl = 0;
		void *ans = NULL;
		bool ok = false;
		if (nng_recv(socks[i], &ans, &rl, NNG_FLAG_ALLOC) != 0)
			continue;
		if (enl_session_open_reply(sess[i], ans, rl, 1 << 20, &rp, &rpl) == ENL_OK &&
		    enl_pb_unpack(&enlace__response__descriptor, rp, rpl, 1 << 20,
				  (ProtobufCMessage **)&r) == ENL_OK &&
		    r->status == 0 && r->receipt != NULL) {
			for (size_t k = 0; k < bc->n_keys && !ok; k++) {
				uint8_t pk[32];
				ok = kr->signing_key(kr->ctx, "OAS-BROKER", bc->keys[k].version,
						     pk) == ENL_OK &&
				     enl_receipt_check_signature(r->receipt, pk) == ENL_OK;
			}
			if (ok && r->receipt->batch_size > *largest)
				*largest = r->receipt->batch_size;
		}
		good += ok;
		if (r != NULL)
			protobuf_c_message_free_unpacked(&r->base, NULL);
		nng_free(ans, rl);
	}
	printf("%zu of %zu receipts verify; the largest batch signed together: %u\n", good, n,
	       *largest);
	ret = good == n ? 0 : 1;
out:
	for (size_t i = 0; sess != NULL && i < n; i++) {
		enl_session_free(sess[i]);
		free(frames[i]);
		if (socks != NULL && nng_socket_id(socks[i]) > 0)
			nng_close(socks[i]);
	}
	free(socks);
	free(sess);
	free(frames);
	free(fl);
	return ret;
}

static int
flood(const char *url, const struct enl_identity *me, const struct enl_keyring *kr, long n)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__DirectoryReq dr = ENLACE__DIRECTORY_REQ__INIT;
	struct enl_hello_state *st = NULL;
	struct enl_session *sess = NULL;
	uint8_t *hello = NULL, *w, *plain = NULL, *frame = NULL;
	size_t hl = 0, wl = 0, pl = 0, fl = 0;
	char reason[200] = "";
	int fd = sp_connect(url);
	long sent = 0;
	struct pollfd pf = {fd, POLLRDHUP, 0};

	if (enl_session_hello(me, (int64_t)time(NULL), dir_serial, &st, &hello, &hl) != ENL_OK ||
	    sp_send(fd, 1, hello, hl) != 0 || (w = sp_recv(fd, &wl)) == NULL ||
	    enl_session_client_finish(st, w, wl, kr, "OAS-BROKER", NULL, &sess, reason,
				      sizeof(reason)) != ENL_OK) {
		printf("handshake failed: %s\n", reason);
		return 2;
	}
	free(w);
	free(hello);
	req.body_case = ENLACE__REQUEST__BODY_DIRECTORY;
	req.directory = &dr;
	if (enl_pb_pack(&req.base, &plain, &pl) != ENL_OK)
		return 2;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (long i = 0; i < n; i++) {
		if (enl_session_seal_request(sess, plain, pl, &frame, &fl) != ENL_OK)
			return 2;
		int rc = sp_send(fd, (uint32_t)(i + 2), frame, fl);
		free(frame);
		if (rc != 0)	/* would block, or closed: the broker stopped reading us */
			break;
		sent++;
	}
	free(plain);
	/* the broker closes it, or not: the test looks at the broker's side
	 * (a peer that does not read never sees the end of the stream) */
	struct sockaddr_in me_addr;
	socklen_t sl = sizeof(me_addr);
	getsockname(fd, (struct sockaddr *)&me_addr, &sl);
	printf("sent %ld requests without reading an answer from port %u\n", sent,
	       (unsigned)ntohs(me_addr.sin_port));
	fflush(stdout);
	(void)poll(&pf, 1, 60000);	/* held until killed, or a minute */
	enl_session_free(sess);
	close(fd);
	return 0;
}

/* N sessions of one agency, held until stdin closes. */
static int
hold_sessions(const char *url, const struct enl_identity *me, const struct enl_keyring *kr,
	      long n)
{
	nng_socket socks[256];
	long opened = 0;
	char buf[16];

	for (long i = 0; i < n && i < 256; i++) {
		struct enl_session *sess;
		socks[i] = dial(url);
		if ((sess = handshake(socks[i], me, kr, NULL, NULL)) != NULL)
			opened++;
		enl_session_free(sess);
	}
	printf("%ld sessions opened\n", opened);
	fflush(stdout);
	while (fread(buf, 1, sizeof(buf), stdin) > 0)
		;
	for (long i = 0; i < n && i < 256; i++)
		nng_close(socks[i]);
	return 0;
}

/* Sends a cosignature of the checkpoint in `path`, made as `how` says;
 * true if the broker refused it. */
static bool
cosign(nng_socket s, struct enl_identity *me, struct enl_keyring *kr, const char *path,
       const char *how, const char *name)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__CheckpointReq cr = ENLACE__CHECKPOINT_REQ__INIT;
	struct enl_checkpoint cp;
	struct enl_session *sess;
	char note[4096], *body = NULL, *line = NULL, *sig;
	size_t n;
	bool refused_it;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		exit(2);
	n = fread(note, 1, sizeof(note) - 1, f);
	fclose(f);
	note[n] = '\0';
	if (strstr(note, "\n\n") == NULL ||
	    enl_checkpoint_parse(note, (size_t)(strstr(note, "\n\n") - note) + 1, &cp) != ENL_OK ||
	    enl_checkpoint_format(&cp, &body) != ENL_OK ||
	    enl_cosign(me, strcmp(how, "name") == 0 && name != NULL ? name : enl_identity_id(me),
		       body, (uint64_t)time(NULL), &line) != ENL_OK)
		exit(2);
	if (strcmp(how, "flip") == 0) {
		/* one base64 character of the signature, near its end */
		sig = strrchr(line, ' ') + 1;
		n = strlen(sig) - 6;
		sig[n] = sig[n] == 'A' ? 'B' : 'A';
	}
	if ((sess = handshake(s, me, kr, NULL, NULL)) == NULL)
		exit(2);
	cr.cosignature = line;
	cr.cosigned_size = cp.size;
	req.body_case = ENLACE__REQUEST__BODY_CHECKPOINT;
	req.checkpoint = &cr;
	refused_it = request(s, sess, &req, NULL, NULL);
	enl_session_free(sess);
	free(body);
	free(line);
	return refused_it;
}

int
main(int argc, char **argv)
{
	struct enl_directory *d = NULL;
	struct enl_dir_check chk = {NULL, 0, 0};
	struct enl_identity *me, *other = NULL;
	struct enl_session *sess;
	struct enl_keyring kr;
	const char *mode;
	nng_socket s;
	bool ok = false;
	int rc;

	if (argc < 5 || enl_init() != ENL_OK)
		return 2;
	mode = argv[1];
	if (enl_directory_load(argv[4], &chk, &d) != ENL_OK)
		return 2;
	kr = enl_directory_keyring(d);
	dir_serial = enl_directory_serial(d);
	me = load_key(argv[3]);
	if (argc > 5 && strcmp(mode, "bad-ciphertext") != 0 && strcmp(mode, "forward") != 0 &&
	    strcmp(mode, "decide") != 0 && strcmp(mode, "expiring") != 0 &&
	    strcmp(mode, "burst") != 0 && strcmp(mode, "flood") != 0 &&
	    strcmp(mode, "sessions") != 0 && strcmp(mode, "acks") != 0 &&
	    strcmp(mode, "cosign") != 0)
		other = load_key(argv[5]);
	if (strcmp(mode, "flood") == 0 || strcmp(mode, "sessions") == 0) {
		long n = argc > 5 ? strtol(argv[5], NULL, 10) : 1000;
		rc = mode[0] == 'f' ? flood(argv[2], me, &kr, n) : hold_sessions(argv[2], me, &kr, n);
		enl_identity_free(me);
		enl_directory_free(d);
		return rc;
	}
	s = dial(argv[2]);
	if (strcmp(mode, "acks") == 0) {
		static uint8_t id[16], hash[32], sig[64];
		long n = argc > 5 ? strtol(argv[5], NULL, 10) : 1025;
		Enlace__AckReq *acks = calloc((size_t)n, sizeof(*acks));
		Enlace__AckReq **ptrs = calloc((size_t)n, sizeof(*ptrs));
		Enlace__AckList list = ENLACE__ACK_LIST__INIT;
		Enlace__Request req = ENLACE__REQUEST__INIT;
		if (acks == NULL || ptrs == NULL || (sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		for (long i = 0; i < n; i++) {
			enlace__ack_req__init(&acks[i]);
			acks[i].message_id = (ProtobufCBinaryData){sizeof(id), id};
			acks[i].envelope_hash = (ProtobufCBinaryData){sizeof(hash), hash};
			acks[i].signature = (ProtobufCBinaryData){sizeof(sig), sig};
			ptrs[i] = &acks[i];
		}
		list.n_acks = (size_t)n;
		list.acks = ptrs;
		req.body_case = ENLACE__REQUEST__BODY_ACKS;
		req.acks = &list;
		ok = request(s, sess, &req, NULL, NULL);
		enl_session_free(sess);
		free(acks);
		free(ptrs);
		nng_close(s);
		enl_identity_free(me);
		enl_directory_free(d);
		return ok ? 0 : 1;
	}
	if (strcmp(mode, "skewed") == 0) {
		clock_offset = -3600;
		sess = handshake(s, me, &kr, NULL, NULL);
		ok = sess == NULL;
		enl_session_free(sess);
	} else if (strcmp(mode, "hello") == 0 || strcmp(mode, "stranger") == 0) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__DirectoryReq dr = ENLACE__DIRECTORY_REQ__INIT;
		sess = handshake(s, me, &kr, NULL, NULL);
		req.body_case = ENLACE__REQUEST__BODY_DIRECTORY;
		req.directory = &dr;
		if (sess != NULL && !request(s, sess, &req, NULL, NULL))
			ok = strcmp(mode, "hello") == 0;
		else
			ok = strcmp(mode, "stranger") == 0;
		enl_session_free(sess);
	} else if (strcmp(mode, "replay-hello") == 0) {
		uint8_t *hello = NULL, *ans;
		size_t hl = 0, al = 0;
		nng_socket s2;
		sess = handshake(s, me, &kr, &hello, &hl);
		if (sess == NULL)
			return 2;
		s2 = dial(argv[2]);
		ans = ask(s2, hello, hl, &al);
		ok = refused(ans, al);
		free(ans);
		free(hello);
		enl_session_free(sess);
		nng_close(s2);
	} else if (strcmp(mode, "replay-frame") == 0) {
		Enlace__Request req = ENLACE__REQUEST__INIT;
		Enlace__DirectoryReq dr = ENLACE__DIRECTORY_REQ__INIT;
		uint8_t *frame = NULL, *ans;
		size_t fl = 0, al = 0;
		if ((sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		req.body_case = ENLACE__REQUEST__BODY_DIRECTORY;
		req.directory = &dr;
		if (request(s, sess, &req, &frame, &fl))
			return 2;
		ans = ask(s, frame, fl, &al);
		ok = refused(ans, al);
		free(ans);
		free(frame);
		enl_session_free(sess);
	} else if (strcmp(mode, "wrong-sender") == 0 || strcmp(mode, "forged") == 0 ||
		   strcmp(mode, "oversized") == 0 || strcmp(mode, "oversized-frame") == 0) {
		struct enl_identity *signer = other;
		uint8_t *env;
		size_t len = 0, size = strcmp(mode, "oversized") == 0 ? 70000
					   : strcmp(mode, "oversized-frame") == 0 ? 400000 : 10;
		if (strcmp(mode, "forged") == 0) {
			struct enl_key_secret ks = {.version = 1};
			randombytes_buf(ks.sign_seed, 32);
			randombytes_buf(ks.enc_sk, 32);
			if (enl_identity_new(enl_identity_id(me), &signer) != ENL_OK ||
			    enl_identity_add(signer, &ks) != ENL_OK)
				return 2;
		}
		if (strncmp(mode, "oversized", 9) == 0)
			signer = me;
		if (signer == NULL || (sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		env = seal_to_self_and(signer, &kr, "OAS-BROKER", size, 1 << 20, &len);
		ok = submit(s, sess, env, len);
		free(env);
		if (strcmp(mode, "forged") == 0)
			enl_identity_free(signer);
		enl_session_free(sess);
	} else if (strcmp(mode, "bad-ciphertext") == 0 && argc > 5) {
		struct enl_header h;
		struct enl_limits lim = {1 << 20};
		struct enl_payload p = {"s", "will not decrypt", 0, NULL, NULL, 0, NULL};
		Enlace__Envelope *e;
		uint8_t *env = NULL, digest[32];
		size_t len = 0;
		case_header(&h, argv[5]);
		if (enl_envelope_seal(me, &kr, &lim, &h, &p, (int64_t)time(NULL), &env, &len) !=
		    ENL_OK)
			return 2;
		e = (Enlace__Envelope *)protobuf_c_message_unpack(&enlace__envelope__descriptor,
								  NULL, len, env);
		e->ciphertext.data[0] ^= 1;
		enl_envelope_digest(e, digest);
		if (enl_identity_sign(me, ENL_LABEL_ENVELOPE, digest, 32, e->signature.data) !=
		    ENL_OK)
			return 2;
		free(env);
		if (enl_pb_pack(&e->base, &env, &len) != ENL_OK)
			return 2;
		protobuf_c_message_free_unpacked(&e->base, NULL);
		if ((rc = submit_named(s, me, &kr, h.message_id, env, len)) == 2)
			return 2;
		ok = rc == 0;
		free(env);
	} else if (strcmp(mode, "expiring") == 0 && argc > 6) {
		size_t size = argc > 7 ? (size_t)strtoul(argv[7], NULL, 10) : 0;
		if ((rc = submit_case(s, me, &kr, argv[5], (int)strtol(argv[6], NULL, 10), size)) == 2)
			return 2;
		ok = rc == 0;
	} else if (strcmp(mode, "burst") == 0 && argc > 6) {
		/* until a burst shares a batch (the first round may take one
		 * message alone), at most 5 bursts */
		uint32_t largest = 0;
		for (int round = 0; round < 5 && largest < 2; round++)
			if ((rc = burst(argv[2], me, &kr, d, argv[5], (size_t)strtoul(argv[6], NULL, 10),
					&largest)) != 0)
				return rc;
		ok = largest >= 2;
	} else if (strcmp(mode, "to-self") == 0) {
		if ((rc = submit_case(s, me, &kr, enl_identity_id(me), 0, 0)) == 2)
			return 2;
		ok = rc == 1;
	} else if (strcmp(mode, "forward") == 0 && argc >= 9) {
		struct enl_header h;
		struct enl_limits lim = {1 << 20};
		struct enl_payload p = {"Fwd", "by hand", 0, NULL, NULL, 0, NULL};
		uint8_t *env = NULL;
		size_t len = 0;
		memset(&h, 0, sizeof(h));
		snprintf(h.recipients[0], sizeof(h.recipients[0]), "%s", argv[6]);
		h.n_recipients = 1;
		h.type = ENL_MSG_FORWARD;
		h.handling.tlp = (enum enl_tlp)enl_tlp_parse(argv[7]);
		h.handling.onward = (enum enl_onward)enl_onward_parse(argv[8]);
		h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
		const char *how = argc >= 10 ? argv[9] : "";
		h.has_forward_of = enl_unhex(argv[5], h.forward_of, sizeof(h.forward_of));
		if (!h.has_forward_of)
			return 2;
		if (strcmp(how, "as-case") == 0)
			h.type = ENL_MSG_CASE_MESSAGE;
		if (strcmp(how, "may-use") == 0)	/* evidential use relaxed */
			h.handling.evidential = ENL_EVID_MAY_USE;
		if (enl_envelope_seal(me, &kr, &lim, &h, &p, (int64_t)time(NULL), &env, &len) !=
		    ENL_OK)
			return 2;
		if (strcmp(how, "no-link") == 0) {
			/* what seal refuses to make: the link cut, the rest re-signed */
			Enlace__Envelope *e = (Enlace__Envelope *)protobuf_c_message_unpack(
				&enlace__envelope__descriptor, NULL, len, env);
			Enlace__Header *hw = (Enlace__Header *)protobuf_c_message_unpack(
				&enlace__header__descriptor, NULL, e->header.len, e->header.data);
			uint8_t *hb = NULL, digest[32], *old = e->header.data;
			size_t hl = 0, old_len = e->header.len;
			hw->forward_of.len = 0;
			if (enl_pb_pack(&hw->base, &hb, &hl) != ENL_OK)
				return 2;
			e->header.data = hb;
			e->header.len = hl;
			enl_envelope_digest(e, digest);
			if (enl_identity_sign(me, ENL_LABEL_ENVELOPE, digest, 32,
					      e->signature.data) != ENL_OK)
				return 2;
			free(env);
			if (enl_pb_pack(&e->base, &env, &len) != ENL_OK)
				return 2;
			free(hb);
			protobuf_c_message_free_unpacked(&hw->base, NULL);
			e->header.data = old;
			e->header.len = old_len;
			protobuf_c_message_free_unpacked(&e->base, NULL);
		}
		if ((sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		ok = submit(s, sess, env, len);
		free(env);
		enl_session_free(sess);
	} else if (strcmp(mode, "decide") == 0 && argc >= 10) {
		Enlace__ConsentDecision cd = ENLACE__CONSENT_DECISION__INIT;
		uint8_t req[16], orig[16], ohash[32], fwd[16], *db = NULL, *env = NULL;
		size_t dl = 0, len = 0;
		struct enl_header h;
		struct enl_limits lim = {1 << 20};
		struct enl_attachment att;
		struct enl_payload p = {"decision", "", 1, &att, NULL, 0, NULL};
		if (!enl_unhex(argv[5], req, 16) || !enl_unhex(argv[6], orig, 16) ||
		    !enl_unhex(argv[7], ohash, 32) || !enl_unhex(argv[8], fwd, 16))
			return 2;
		cd.request_id = (ProtobufCBinaryData){16, req};
		cd.original_id = (ProtobufCBinaryData){16, orig};
		cd.original_hash = (ProtobufCBinaryData){32, ohash};
		cd.forward_id = (ProtobufCBinaryData){16, fwd};
		cd.recipient = argv[9];
		cd.grant = true;
		cd.note = "";
		if (enl_pb_pack(&cd.base, &db, &dl) != ENL_OK)
			return 2;
		att = (struct enl_attachment){"consent-decision.pb", "", db, dl};
		memset(&h, 0, sizeof(h));
		snprintf(h.recipients[0], sizeof(h.recipients[0]), "OAS-BROKER");
		h.n_recipients = 1;
		h.type = ENL_MSG_CONSENT_DECISION;
		h.handling.tlp = ENL_TLP_AMBER;
		h.handling.onward = ENL_ONWARD_NEVER;
		h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
		if (enl_envelope_seal(me, &kr, &lim, &h, &p, (int64_t)time(NULL), &env, &len) !=
		    ENL_OK)
			return 2;
		if ((sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		ok = submit(s, sess, env, len);
		free(env);
		free(db);
		enl_session_free(sess);
	} else if (strcmp(mode, "cosign") == 0 && argc >= 7) {
		ok = cosign(s, me, &kr, argv[5], argv[6], argc > 7 ? argv[7] : NULL);
		if (strcmp(argv[6], "good") == 0)
			ok = !ok;
	} else if (strcmp(mode, "garbage-first") == 0) {
		uint8_t junk[64], *ans;
		size_t al = 0;
		randombytes_buf(junk, sizeof(junk));
		ans = ask(s, junk, sizeof(junk), &al);
		ok = refused(ans, al);
		free(ans);
	} else if (strcmp(mode, "garbage-after") == 0) {
		uint8_t junk[64], *ans;
		size_t al = 0;
		if ((sess = handshake(s, me, &kr, NULL, NULL)) == NULL)
			return 2;
		randombytes_buf(junk, sizeof(junk));
		ans = ask(s, junk, sizeof(junk), &al);
		ok = refused(ans, al);
		free(ans);
		enl_session_free(sess);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	nng_close(s);
	enl_identity_free(me);
	enl_identity_free(other);
	enl_directory_free(d);
	return ok ? 0 : 1;
}
