/* The misbehaving client's means (rawclient.c): the broker's protocol
 * spoken by hand, over nng and over a raw TCP socket. */
#ifndef ENLACE_TEST_RAWLIB_H
#define ENLACE_TEST_RAWLIB_H

#include <nng/nng.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "enlace/wire.h"

/* the seconds added to this machine's clock in a handshake, and the
 * serial of the directory loaded (a hello names it) */
extern int64_t clock_offset;
extern uint64_t dir_serial;

/* rawlib.c */
nng_socket dial(const char *url);
uint8_t * ask(nng_socket s, const uint8_t *buf, size_t len, size_t *out_len);
bool refused(const uint8_t *frame, size_t len);
struct enl_identity * load_key(const char *dir);
struct enl_session * handshake(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	  uint8_t **hello_out, size_t *hello_len);
bool request(nng_socket s, struct enl_session *sess, const Enlace__Request *req,
	uint8_t **sent, size_t *sent_len);
uint8_t * seal_to_self_and(const struct enl_identity *from, const struct enl_keyring *kr,
		 const char *to, size_t payload, size_t max, size_t *len);
bool submit(nng_socket s, struct enl_session *sess, const uint8_t *env, size_t len);
int submit_named(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	     const uint8_t id[ENL_MSG_ID_LEN], const uint8_t *env, size_t len);
void case_header(struct enl_header *h, const char *to);
int submit_case(nng_socket s, const struct enl_identity *me, const struct enl_keyring *kr,
	    const char *to, int expires_in, size_t size);
int sp_send(int fd, uint32_t id, const uint8_t *body, size_t len);
uint8_t * sp_recv(int fd, size_t *len);
int sp_connect(const char *url);

#endif
