/*
 * enlace session: the two-message handshake between an agent and its
 * broker, and the sealed frames that follow (docs/PROTOCOL.md).
 *
 * A session object belongs to one thread at a time. Frames are strictly
 * ordered: request counters go 1, 2, 3, ... and the reply to a request
 * carries that request's counter; anything else is refused.
 */
#ifndef ENLACE_SESSION_H
#define ENLACE_SESSION_H

#include "enlace/proto.h"

#define ENL_LABEL_HELLO "enlace/hello/v1"
#define ENL_LABEL_WELCOME "enlace/welcome/v1"
#define ENL_LABEL_ACK "enlace/ack/v1"
#define ENL_LABEL_RECEIPT "enlace/receipt/v1"	/* a receipt signed alone */
#define ENL_LABEL_RECEIPT_BATCH "enlace/receipt-batch/v1"

/* How far a Hello's time may be from the broker's clock. */
#define ENL_HELLO_SKEW 300
#define ENL_FRAME_OVERHEAD 64

struct enl_session;
struct Enlace__SignedReceipt;

/*
 * Whether a receipt is signed under pk: as one of a batch (batch_size
 * above 0; enlace/merkle.h, batch signatures) or alone. ENL_OK, or
 * ENL_E_BAD_SIGNATURE for a signature, path or place that does not hold.
 */
int enl_receipt_check_signature(const struct Enlace__SignedReceipt *r,
				const uint8_t pk[static 32]) ENL_WUR;
struct enl_hello_state;	/* the client's ephemeral secret between the two */

/*
 * Client: makes a Frame carrying a signed Hello. *state keeps the
 * ephemeral secret for enl_session_client_finish (free it with
 * enl_hello_state_free if the handshake is abandoned).
 */
int enl_session_hello(const struct enl_identity *me, int64_t now, uint64_t dir_serial,
		      struct enl_hello_state **state, uint8_t **frame,
		      size_t *frame_len) ENL_WUR;
void enl_hello_state_free(struct enl_hello_state *st);

/*
 * Client: what to do with a directory the broker attaches to its welcome
 * (newer than the serial the hello named). take() is called with its
 * bytes before the welcome is checked; it verifies the directory against
 * the pinned authority and, if it takes it, sets *kr to the keyring of
 * the directory now in force (else leaves it). Directories above `max`
 * bytes make the welcome malformed.
 */
struct enl_offered_directory {
	void (*take)(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr);
	void *arg;
	size_t max;
};

/*
 * Client: checks the broker's Welcome frame (signed by `broker_id`'s key
 * in `kr`, or in the directory `offered` took; answering our Hello) and
 * derives the session. `offered` may be NULL. Consumes state.
 * A refusal frame from the broker comes back as its error code, with its
 * reason copied into reason (if not NULL). ENL_E_MALFORMED,
 * ENL_E_BAD_SIGNATURE, ENL_E_UNKNOWN_SENDER, ENL_E_REVOKED_KEY.
 */
int enl_session_client_finish(struct enl_hello_state *state,
			      const uint8_t *frame, size_t len,
			      const struct enl_keyring *kr, const char *broker_id,
			      const struct enl_offered_directory *offered,
			      struct enl_session **out, char *reason,
			      size_t reason_cap) ENL_WUR;

/*
 * Broker: checks a Hello (agency in the directory with that key version,
 * unrevoked, signature, time within ENL_HELLO_SKEW of now) and answers.
 * `hello_nonce` receives the Hello's 32-byte nonce, for the caller's
 * replay cache; the caller must refuse a nonce it has seen. Errors:
 * ENL_E_MALFORMED, ENL_E_UNKNOWN_SENDER, ENL_E_UNKNOWN_KEY_VERSION,
 * ENL_E_REVOKED_KEY, ENL_E_BAD_SIGNATURE, ENL_E_EXPIRED (clock skew).
 * `dir` (may be NULL) is the broker's signed directory: attached to the
 * welcome when its serial is above the one the hello names (if it names
 * one: not 0).
 */
struct enl_broker_directory {
	const uint8_t *bytes;
	size_t len;
	uint64_t serial;
};

/* True if frame parses as a sealed request (of a session, not a hello):
 * what a peer sends on a connection whose session the broker does not
 * have (it restarted since, or the handshake's connection was lost). */
bool enl_frame_is_sealed(const uint8_t *frame, size_t len);

int enl_session_accept(const struct enl_identity *broker,
		       const struct enl_keyring *kr, const uint8_t *frame,
		       size_t len, int64_t now, const struct enl_broker_directory *dir,
		       uint8_t hello_nonce[32],
		       struct enl_session **out, uint8_t **welcome,
		       size_t *welcome_len) ENL_WUR;

/* A plaintext refusal frame (before or instead of a session). */
int enl_session_refusal(int err, const char *reason, uint8_t **frame,
			size_t *len) ENL_WUR;

/* The peer's agency id and key version. */
const char *enl_session_peer(const struct enl_session *s);
uint32_t enl_session_peer_version(const struct enl_session *s);

/*
 * Client: seals a request with the next counter, and opens its reply
 * (which must carry the same counter). Broker: opens a request (its
 * counter must be above every one seen) and seals the reply to it.
 * Errors: ENL_E_MALFORMED, ENL_E_TAMPERED (AEAD), ENL_E_INVAL (a replayed
 * or reordered counter, or a reply to another request), ENL_E_TOO_LARGE.
 * A refusal frame from the broker comes back as its error code.
 *
 * A frame is opened where it is: its bytes are overwritten, and *plain
 * points into them (nothing to free; valid while the frame is).
 */
int enl_session_seal_request(struct enl_session *s, const uint8_t *plain,
			     size_t len, uint8_t **frame, size_t *frame_len) ENL_WUR;
int enl_session_open_reply(struct enl_session *s, uint8_t *frame,
			   size_t len, size_t max, const uint8_t **plain,
			   size_t *plain_len) ENL_WUR;
int enl_session_open_request(struct enl_session *s, uint8_t *frame,
			     size_t len, size_t max, uint64_t *counter,
			     const uint8_t **plain, size_t *plain_len) ENL_WUR;
int enl_session_seal_reply(struct enl_session *s, uint64_t counter,
			   const uint8_t *plain, size_t len, uint8_t **frame,
			   size_t *frame_len) ENL_WUR;

/*
 * Sealing where the plaintext is, for large messages: *_layout gives the
 * frame's length for a plaintext of `len` bytes and the offset at which
 * the caller writes that plaintext into a frame buffer of that length;
 * *_seal_*_at then fills in the rest. A request's layout is that of the
 * session's next request, which the seal that follows must be.
 */
size_t enl_session_request_layout(const struct enl_session *s, size_t len, size_t *offset);
void enl_session_seal_request_at(struct enl_session *s, uint8_t *frame, size_t len);
size_t enl_session_reply_layout(uint64_t counter, size_t len, size_t *offset);
void enl_session_seal_reply_at(struct enl_session *s, uint64_t counter, uint8_t *frame,
			       size_t len);

void enl_session_free(struct enl_session *s);

/* What a recipient signs (label ENL_LABEL_ACK) to acknowledge a message:
 * message id || envelope hash || time as u64 big-endian. */
#define ENL_ACK_MSG_LEN (ENL_MSG_ID_LEN + ENL_HASH_LEN + 8)
void enl_ack_message(const uint8_t id[ENL_MSG_ID_LEN], const uint8_t hash[ENL_HASH_LEN],
		     int64_t time, uint8_t out[ENL_ACK_MSG_LEN]);

#endif
