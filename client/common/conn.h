/*
 * A connection from an agency to its broker: an nng req0 socket and the
 * session opened on it. One request at a time (callers serialize); any
 * transport failure or refusal tears the socket down, and the next
 * request dials again and opens a new session.
 */
#ifndef ENLACE_CONN_H
#define ENLACE_CONN_H

#include <nng/nng.h>

#include "enlace/keys.h"
#include "enlace/session.h"
#include "enlace/wire.h"

struct conn {
	char url[256];
	char broker_id[ENL_ID_MAX + 1];
	const struct enl_identity *me;
	size_t frame_max;
	nng_socket sock;
	bool open;
	struct enl_session *s;
	char last_error[256];
	/* the directory held: its serial goes in the hello, and `offered`
	 * (if its take is set) takes a newer one the broker attaches to the
	 * welcome. Both called with offered.arg. */
	uint64_t (*dir_serial)(void *arg);
	struct enl_offered_directory offered;
	nng_msg *lender;	/* the reply conn_request_lent's answer points into */
};

void conn_init(struct conn *c, const char *url, const char *broker_id,
	       const struct enl_identity *me, size_t max_payload);

/* What connect names and takes as the directory (see struct conn). */
void conn_set_directory(struct conn *c, uint64_t (*serial)(void *arg),
			void (*take)(void *arg, const uint8_t *dir, size_t len,
				     struct enl_keyring *kr),
			void *arg);

/*
 * Sends one request and waits up to timeout_ms for the answer. Opens the
 * session first if there is none (checked against `kr`). ENL_E_IO when
 * the broker cannot be reached or the connection failed (try again
 * later); otherwise the answer's own status is the caller's to read. A
 * session the broker refuses (it restarted since) is opened anew and the
 * request sent once more.
 */
int conn_request(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
		 int timeout_ms, Enlace__Response **resp) ENL_WUR;

/*
 * conn_request whose answer's large values (fetched envelopes) stay in the
 * reply they came in, not copied. One such answer at a time on `c` (other
 * requests may go meanwhile); free it with conn_response_free.
 */
int conn_request_lent(struct conn *c, const struct enl_keyring *kr, const Enlace__Request *req,
		      int timeout_ms, Enlace__Response **resp) ENL_WUR;
void conn_response_free(struct conn *c, Enlace__Response *resp);

/* Opens the session now if there is none (what conn_request does first). */
int conn_open(struct conn *c, const struct enl_keyring *kr) ENL_WUR;

/* Drops the socket and session. */
void conn_close(struct conn *c);

#endif
