/*
 * The misbehaving client's means: the broker's protocol spoken by hand,
 * over nng (dial, handshake, sealed requests, submissions) and over a raw
 * TCP socket (the SP handshake and frames, for what nng would not send).
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

nng_socket
dial(const char *url)
{
	nng_socket s;

	if (nng_req0_open(&s) != 0)
		exit(2);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 256 << 20);
	if (nng_dial(s, url, NULL, 0) != 0) {
		fprintf(stderr, "cannot dial %s\n", url);
		exit(2);
	}
	return s;
}

/* Sends bytes, returns the answer (malloc'd) or NULL if none came. */
uint8_t *
ask(nng_socket s, const uint8_t *buf, size_t len, size_t *out_len)
{
	void *r = NULL;
	size_t rl = 0;
	uint8_t *copy;

	if (nng_send(s, (void *)buf, len, 0) != 0 || nng_recv(s, &r, &rl, NNG_FLAG_ALLOC) != 0)
		return NULL;
	copy = malloc(rl ? rl : 1);
	memcpy(copy, r, rl);
	nng_free(r, rl);
	*out_len = rl;
	return copy;
}

/* Prints the refusal a frame carries; true if it is one. */
bool
refused(const uint8_t *frame, size_t len)
{
	Enlace__Frame *f = NULL;
	bool is = false;

	if (frame == NULL) {
		printf("no answer (connection dropped)\n");
		return true;
	}
	if (enl_pb_unpack(&enlace__frame__descriptor, frame, len, 1 << 20,
			  (ProtobufCMessage **)&f) == ENL_OK && f->error != 0) {
		printf("refused: %s\n", f->reason);
		is = true;
	}
	if (f != NULL)
		protobuf_c_message_free_unpacked(&f->base, NULL);
	return is;
}

struct enl_identity *
load_key(const char *dir)
{
	struct enl_identity *id = NULL;
	char path[1024];

	snprintf(path, sizeof(path), "%s/secret.key", dir);
	if (enl_keyfile_read(path, NULL, 0, &id) != ENL_OK) {
		fprintf(stderr, "%s: cannot read\n", path);
		exit(2);
	}
	return id;
}

int64_t clock_offset;	/* seconds added to this machine's clock */

uint64_t dir_serial;	/* of the directory loaded: the hello names it */

struct enl_session *
handshake(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	  uint8_t **hello_out, size_t *hello_len)
{
	struct enl_hello_state *st = NULL;
	struct enl_session *sess = NULL;
	uint8_t *hello = NULL, *w;
	size_t hl = 0, wl = 0;
	char reason[200] = "";
	int rc;

	if (enl_session_hello(me, (int64_t)time(NULL) + clock_offset, dir_serial, &st, &hello, &hl) != ENL_OK)
		exit(2);
	w = ask(s, hello, hl, &wl);
	rc = w ? enl_session_client_finish(st, w, wl, kr, "OAS-BROKER", NULL, &sess, reason,
					   sizeof(reason))
	       : ENL_E_IO;
	if (w == NULL)
		enl_hello_state_free(st);
	free(w);
	if (rc != ENL_OK) {
		printf("handshake refused: %s\n", reason[0] ? reason : enl_strerror(rc));
		free(hello);
		return NULL;
	}
	if (hello_out != NULL) {
		*hello_out = hello;
		*hello_len = hl;
	} else {
		free(hello);
	}
	return sess;
}

/* Sends one sealed request; prints the status; true if refused. */
bool
request(nng_socket s, struct enl_session *sess, const Enlace__Request *req,
	uint8_t **sent, size_t *sent_len)
{
	uint8_t *plain = NULL, *frame = NULL, *ans;
	const uint8_t *rp = NULL;
	size_t pl = 0, fl = 0, al = 0, rpl = 0;
	Enlace__Response *r = NULL;
	bool is = true;

	if (enl_pb_pack(&req->base, &plain, &pl) != ENL_OK ||
	    enl_session_seal_request(sess, plain, pl, &frame, &fl) != ENL_OK)
		exit(2);
	free(plain);
	ans = ask(s, frame, fl, &al);
	if (refused(ans, al))
		goto out;
	if (enl_session_open_reply(sess, ans, al, 1 << 28, &rp, &rpl) != ENL_OK ||
	    enl_pb_unpack(&enlace__response__descriptor, rp, rpl, 1 << 28,
			  (ProtobufCMessage **)&r) != ENL_OK) {
		printf("unreadable answer\n");
		goto out;
	}
	if (r->status != 0)
		printf("refused: %s\n", r->reason);
	else
		printf("accepted\n");
	is = r->status != 0;
	protobuf_c_message_free_unpacked(&r->base, NULL);
out:
	free(ans);
	if (sent != NULL) {
		*sent = frame;
		*sent_len = fl;
	} else {
		free(frame);
	}
	return is;
}

uint8_t *
seal_to_self_and(const struct enl_identity *from, const struct enl_keyring *kr,
		 const char *to, size_t payload, size_t max, size_t *len)
{
	struct enl_header h;
	struct enl_limits lim = {max};
	struct enl_attachment att = {"x.bin", "", NULL, payload};
	struct enl_payload p = {"s", "b", 1, &att, NULL, 0, NULL};
	uint8_t *env = NULL, *data = calloc(1, payload + 1);

	att.data = data;
	memset(&h, 0, sizeof(h));
	snprintf(h.recipients[0], sizeof(h.recipients[0]), "%s", to);
	h.n_recipients = 1;
	h.type = ENL_MSG_CASE_MESSAGE;
	h.handling.tlp = ENL_TLP_AMBER;
	h.handling.onward = ENL_ONWARD_CONSENT;
	h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	if (enl_envelope_seal(from, kr, &lim, &h, &p, (int64_t)time(NULL), &env, len) != ENL_OK)
		exit(2);
	free(data);
	return env;
}

bool
submit(nng_socket s, struct enl_session *sess, const uint8_t *env, size_t len)
{
	Enlace__Request req = ENLACE__REQUEST__INIT;
	Enlace__SubmitReq sr = ENLACE__SUBMIT_REQ__INIT;

	sr.envelope.data = (uint8_t *)env;
	sr.envelope.len = len;
	req.body_case = ENLACE__REQUEST__BODY_SUBMIT;
	req.submit = &sr;
	return request(s, sess, &req, NULL, NULL);
}

/* Submits env on a new session and prints its message id: 0 if the
 * broker took it, 1 if it refused, 2 if no session could be made. */
int
submit_named(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	     const uint8_t id[ENL_MSG_ID_LEN], const uint8_t *env, size_t len)
{
	struct enl_session *sess = handshake(s, me, kr, NULL, NULL);
	char hex[2 * ENL_MSG_ID_LEN + 1];
	bool refused;

	if (sess == NULL)
		return 2;
	refused = submit(s, sess, env, len);
	enl_hex(id, ENL_MSG_ID_LEN, hex);
	printf("%s\n", hex);
	enl_session_free(sess);
	return refused ? 1 : 0;
}

/* An honest CASE_MESSAGE header to one recipient. */
void
case_header(struct enl_header *h, const char *to)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->recipients[0], sizeof(h->recipients[0]), "%s", to);
	h->n_recipients = 1;
	h->type = ENL_MSG_CASE_MESSAGE;
	h->handling.tlp = ENL_TLP_AMBER;
	h->handling.onward = ENL_ONWARD_CONSENT;
	h->handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
}

/* Seals an honest CASE_MESSAGE to `to` (expiring `expires_in` seconds
 * from now, if not 0; with an attachment of `size` random bytes, if not
 * 0) and submits it: submit_named's answer. */
int
submit_case(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	    const char *to, int expires_in, size_t size)
{
	struct enl_header h;
	struct enl_limits lim = {(1 << 20) + size};
	struct enl_attachment att = {"random.bin", "", NULL, size};
	struct enl_payload p = {"s", "by hand", size ? 1 : 0, &att, NULL, 0, NULL};
	int64_t now = (int64_t)time(NULL);
	uint8_t *env = NULL, *data = malloc(size ? size : 1);
	size_t len = 0;
	int rc = 2;

	if (data == NULL)
		return 2;
	randombytes_buf(data, size);
	att.data = data;
	case_header(&h, to);
	if (expires_in != 0)
		h.expires_at = now + expires_in;
	if (enl_envelope_seal(me, kr, &lim, &h, &p, now, &env, &len) == ENL_OK)
		rc = submit_named(s, me, kr, h.message_id, env, len);
	free(env);
	free(data);
	return rc;
}

/* ---- SP over TCP by hand (nng's wire format), for a peer that never reads ---- */

static int
write_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One req0 message: 8-byte length, the request id, the body. */
int
sp_send(int fd, uint32_t id, const uint8_t *body, size_t len)
{
	uint8_t head[12];
	uint64_t n = len + 4;

	for (int i = 0; i < 8; i++)
		head[i] = (uint8_t)(n >> (56 - 8 * i));
	id |= 0x80000000u;
	for (int i = 0; i < 4; i++)
		head[8 + i] = (uint8_t)(id >> (24 - 8 * i));
	return write_all(fd, head, 12) == 0 && write_all(fd, body, len) == 0 ? 0 : -1;
}

uint8_t *
sp_recv(int fd, size_t *len)
{
	uint8_t head[12], *b;
	uint64_t n = 0;

	if (read_all(fd, head, 12) != 0)
		return NULL;
	for (int i = 0; i < 8; i++)
		n = n << 8 | head[i];
	if (n < 4 || n > (1u << 28) || (b = malloc(n)) == NULL || read_all(fd, b, n - 4) != 0)
		return NULL;
	*len = n - 4;
	return b;
}

int
sp_connect(const char *url)
{
	static const uint8_t hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};	/* req0 */
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *port = strrchr(url, ':');
	uint8_t peer[8];
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;

	sa.sin_port = htons((uint16_t)strtoul(port + 1, NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write_all(fd, hdr, 8) != 0 ||
	    read_all(fd, peer, 8) != 0) {
		fprintf(stderr, "cannot connect to %s\n", url);
		exit(2);
	}
	return fd;
}
