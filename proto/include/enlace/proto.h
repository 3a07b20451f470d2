/*
 * enlace proto: what both ends of an exchange must agree on.
 *
 * The in-memory identity (private keys), envelope seal/open, names of
 * the header's enumerations, hashing and signed-note keys. Errors, files,
 * text rules and JSON come from the base library (enlace/base.h). Byte
 * formats are specified in docs/FORMATS.md.
 *
 * Unless a function says otherwise: it does not block on the network, it is
 * safe to call from any thread on distinct objects, and an `int` result is
 * ENL_OK (0) or a negative enum enl_err. Call enl_init() once before
 * anything else.
 */
#ifndef ENLACE_PROTO_H
#define ENLACE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enlace/base.h"

/* Initializes libsodium. Returns ENL_E_CRYPTO if it cannot. */
int enl_init(void) ENL_WUR;

/* ---- identifiers -------------------------------------------------- */

#define ENL_ID_MAX 32		/* longest agency id, bytes */
#define ENL_NAME_MAX 200	/* longest agency display name, bytes */
#define ENL_CASE_REF_MAX 128
#define ENL_MAX_RECIPIENTS 256
#define ENL_MAX_KEY_VERSIONS 64
#define ENL_MSG_ID_LEN 16
#define ENL_HASH_LEN 32		/* BLAKE2b-256 */

/*
 * An agency id is PREFIX-NAME: PREFIX is 2 to 8 letters A-Z (an ISO 3166
 * alpha-2 country or an organization code), NAME is 1 to 23 of A-Z 0-9 _ -
 * starting with a letter or digit. True if `id` is one.
 */
bool enl_id_valid(const char *id);

/* The prefix of an id ("AR" of "AR-UIF") into out; false if id invalid. */
bool enl_id_prefix(const char *id, char out[static 9]);

/* ---- labelled signatures ------------------------------------------ */

/* Domain-separation labels; the NUL is part of the signed bytes. */
#define ENL_LABEL_CARD "enlace/card/v1"
#define ENL_LABEL_DIRECTORY "enlace/directory/v1"
#define ENL_LABEL_ENVELOPE "enlace/envelope/v1"

/* Verifies sig = Ed25519(label || 0x00 || msg) under pk. */
int enl_verify_labeled(const uint8_t pk[static 32], const char *label,
		       const uint8_t *msg, size_t len,
		       const uint8_t sig[static 64]) ENL_WUR;

/* ---- identity: an agency's private keys ---------------------------- */

/*
 * An identity holds the private keys of one agency, every version of them,
 * in sodium_malloc'd memory that is wiped when freed. Retired versions can
 * still open old messages but never sign. The newest non-retired version
 * is the current one.
 */
struct enl_identity;

struct enl_key_secret {
	uint32_t version;
	bool retired;
	uint8_t sign_seed[32];	/* Ed25519 seed */
	uint8_t enc_sk[32];	/* X25519 secret key */
};

int enl_identity_new(const char *id, struct enl_identity **out) ENL_WUR;
void enl_identity_free(struct enl_identity *ident);

/* Adds a version; ENL_E_EXISTS if that version is there already,
 * ENL_E_TOO_LARGE past ENL_MAX_KEY_VERSIONS. `ks` is not retained. */
int enl_identity_add(struct enl_identity *ident,
		     const struct enl_key_secret *ks) ENL_WUR;

/* Makes a fresh version (highest + 1, from randombytes), retires the
 * others, and stores the new version number in *version. */
int enl_identity_rotate(struct enl_identity *ident, uint32_t *version) ENL_WUR;

const char *enl_identity_id(const struct enl_identity *ident);

/* The current version, or 0 if every version is retired or none exists. */
uint32_t enl_identity_current(const struct enl_identity *ident);

size_t enl_identity_count(const struct enl_identity *ident);
/* The i-th version held (ascending), retired ones included; 0 past the end. */
uint32_t enl_identity_version_at(const struct enl_identity *ident, size_t i);

/* Copies the secrets of the i-th version (ascending) for a key-file
 * writer. The caller must sodium_memzero `out` after use. */
int enl_identity_secret_at(const struct enl_identity *ident, size_t i,
			   struct enl_key_secret *out) ENL_WUR;

/* Public keys of a version; ENL_E_UNKNOWN_KEY_VERSION if absent. */
int enl_identity_public(const struct enl_identity *ident, uint32_t version,
			uint8_t sign_pk[static 32],
			uint8_t enc_pk[static 32]) ENL_WUR;

/* sig = Ed25519(label || 0x00 || msg) with the current version's key. */
int enl_identity_sign(const struct enl_identity *ident, const char *label,
		      const uint8_t *msg, size_t len,
		      uint8_t sig[static 64]) ENL_WUR;

/* sig = Ed25519(msg), no label: only for formats that define their own
 * signed bytes (C2SP signed notes, enlace/note.h). */
int enl_identity_sign_raw(const struct enl_identity *ident, const uint8_t *msg,
			  size_t len, uint8_t sig[static 64]) ENL_WUR;

/* ---- keyring: where seal and open look up other agencies' keys ------ */

/*
 * A keyring answers for agencies other than oneself. proto does not know
 * where the answers come from (the keys library backs it with the signed
 * directory).
 *
 * signing_key: the Ed25519 key of `id` at `version`: ENL_OK,
 *   ENL_E_UNKNOWN_SENDER (no such agency), ENL_E_UNKNOWN_KEY_VERSION,
 *   or ENL_E_REVOKED_KEY.
 * encryption_key: the current X25519 key of `id` and its version: ENL_OK,
 *   ENL_E_UNKNOWN_RECIPIENT or ENL_E_REVOKED_KEY.
 */
struct enl_keyring {
	void *ctx;
	int (*signing_key)(void *ctx, const char *id, uint32_t version,
			   uint8_t pk[static 32]);
	int (*encryption_key)(void *ctx, const char *id, uint32_t *version,
			      uint8_t pk[static 32]);
};

/* ---- envelopes ------------------------------------------------------ */

enum enl_msg_type {
	ENL_MSG_CASE_MESSAGE = 1,
	ENL_MSG_FIU_REPORT = 2,
	ENL_MSG_REQUEST = 3,
	ENL_MSG_REPLY = 4,
	ENL_MSG_FORWARD = 5,
	ENL_MSG_CONSENT_REQUEST = 6,
	ENL_MSG_CONSENT_DECISION = 7,
};

enum enl_tlp {
	ENL_TLP_CLEAR = 1,
	ENL_TLP_GREEN = 2,
	ENL_TLP_AMBER = 3,
	ENL_TLP_AMBER_STRICT = 4,
	ENL_TLP_RED = 5,
};

enum enl_onward { ENL_ONWARD_FREE = 1, ENL_ONWARD_CONSENT = 2, ENL_ONWARD_NEVER = 3 };

enum enl_evidential {
	ENL_EVID_MAY_USE = 1,
	ENL_EVID_CONSENT = 2,
	ENL_EVID_INTELLIGENCE_ONLY = 3,
};

/* Source reliability (0 = not graded) and priority (0 = not set). */
enum enl_reliability { ENL_REL_A = 1, ENL_REL_B = 2, ENL_REL_C = 3, ENL_REL_X = 4 };
enum enl_priority {
	ENL_PRIO_ROUTINE = 1,
	ENL_PRIO_PRIORITY = 2,
	ENL_PRIO_IMMEDIATE = 3,
	ENL_PRIO_FLASH = 4,
};

struct enl_handling {
	enum enl_tlp tlp;
	enum enl_onward onward;
	enum enl_evidential evidential;
};

/* The header, decoded. Zero-initialize before filling it for seal. */
struct enl_header {
	uint8_t message_id[ENL_MSG_ID_LEN];
	char sender[ENL_ID_MAX + 1];
	uint32_t sender_key_version;
	size_t n_recipients;
	char recipients[ENL_MAX_RECIPIENTS][ENL_ID_MAX + 1];
	int64_t created_at;		/* Unix seconds */
	enum enl_msg_type type;
	struct enl_handling handling;
	enum enl_reliability reliability; /* 0 = not graded */
	uint32_t assessment;		/* 1..4, 0 = not graded */
	char case_ref[ENL_CASE_REF_MAX + 1];
	bool has_in_reply_to;
	uint8_t in_reply_to[ENL_MSG_ID_LEN];
	bool has_forward_of;
	uint8_t forward_of[ENL_MSG_ID_LEN];
	int64_t expires_at;		/* 0 = never */
	enum enl_priority priority;	/* 0 = not set */
	int64_t reply_by;		/* 0 = none */
};

struct enl_attachment {
	const char *name;
	const char *media_type;
	const uint8_t *data;
	size_t len;
};

struct enl_payload {
	const char *subject;
	const char *body;
	size_t n_attachments;
	const struct enl_attachment *attachments;
	const uint8_t *original;	/* a forwarded envelope, or NULL */
	size_t original_len;
	const uint8_t *original_key;	/* its content key (32 bytes), or NULL */
};

#define ENL_DEFAULT_MAX_PAYLOAD ((size_t)50 << 20)
#define ENL_MAX_ATTACHMENTS 1000
#define ENL_ENVELOPE_OVERHEAD_MAX ((size_t)64 << 10)

/* max_payload bounds the serialized plaintext payload (docs/FORMATS.md). */
struct enl_limits {
	size_t max_payload;
};

/* The default limits (50 MiB payload). */
struct enl_limits enl_limits_default(void);

/* The serialized size of a payload: what max_payload limits. */
size_t enl_payload_size(const struct enl_payload *payload);

/*
 * A forward goes to third parties: none of h's recipients may be the
 * forwarder itself or the original's sender, which has the message. True
 * if none is; otherwise false, with the reason in `why`.
 */
bool enl_forward_to_third_parties(const struct enl_header *h, const char *forwarder,
				  const char *originator, char *why, size_t cap);

/*
 * Whether a handling means what it says: TLP:RED and TLP:AMBER+STRICT are
 * never shared onward, so onward sharing FREE contradicts them. True if it
 * is consistent; otherwise false, with the reason in `why` (if not NULL).
 * Every header is held to it, sealed or received.
 */
bool enl_handling_consistent(const struct enl_handling *hd, char *why, size_t cap);

/* The largest envelope, in bytes, that open accepts under `lim`. */
size_t enl_envelope_max_size(const struct enl_limits *lim);

/*
 * Seals an envelope from `me` to hdr->recipients.
 *
 * The caller fills in hdr: recipients, type, handling and the optional
 * fields; seal sets sender and sender_key_version from `me`, a fresh
 * random message_id, and created_at = now when it is 0, and writes them
 * back into *hdr. Each recipient's current encryption key comes from `kr`.
 *
 * On success *out is a malloc'd buffer the caller frees. Errors:
 * ENL_E_INVAL (a header field out of range, no recipients, a duplicate),
 * ENL_E_UNKNOWN_RECIPIENT, ENL_E_REVOKED_KEY, ENL_E_TOO_LARGE (payload
 * over lim->max_payload), ENL_E_NOMEM, ENL_E_CRYPTO.
 */
int enl_envelope_seal(const struct enl_identity *me,
		      const struct enl_keyring *kr,
		      const struct enl_limits *lim, struct enl_header *hdr,
		      const struct enl_payload *payload, int64_t now,
		      uint8_t **out, size_t *out_len) ENL_WUR;

/*
 * Checks an envelope without opening it (what a broker can do): size,
 * canonical encoding, header rules, sender key, signature, expiry.
 * Fills *hdr and, if `hash` is not NULL, the BLAKE2b-256 of the exact
 * bytes. Errors: ENL_E_TOO_LARGE, ENL_E_MALFORMED, ENL_E_UNSUPPORTED,
 * ENL_E_UNKNOWN_SENDER, ENL_E_UNKNOWN_KEY_VERSION, ENL_E_REVOKED_KEY,
 * ENL_E_BAD_SIGNATURE, ENL_E_EXPIRED, ENL_E_NOMEM.
 */
int enl_envelope_verify(const uint8_t *buf, size_t len,
			const struct enl_keyring *kr,
			const struct enl_limits *lim, int64_t now,
			struct enl_header *hdr,
			uint8_t hash[ENL_HASH_LEN]) ENL_WUR;

/*
 * Decodes an envelope's header WITHOUT checking the signature or the
 * rest of the envelope: for naming a message one refuses (its id), or for
 * reading the header of one verified before; never for trusting it. The
 * header of a canonical envelope is read in place (no copy of its
 * ciphertext). ENL_E_TOO_LARGE, ENL_E_MALFORMED, ENL_E_UNSUPPORTED,
 * ENL_E_NOMEM.
 */
int enl_envelope_peek(const uint8_t *buf, size_t len, const struct enl_limits *lim,
		      struct enl_header *hdr) ENL_WUR;

/* enl_envelope_peek of a canonical envelope of `size` bytes in the file fd,
 * from its first 64 KiB alone (its header comes first): a large stored
 * envelope's header without reading it all. ENL_E_IO besides. */
int enl_envelope_peek_file(int fd, size_t size, const struct enl_limits *lim,
			   struct enl_header *hdr) ENL_WUR;

/* An opened message; free with enl_message_free (wipes the plaintext). */
struct enl_message {
	struct enl_header header;
	struct enl_payload payload;	/* points into the message */
	uint8_t hash[ENL_HASH_LEN];	/* BLAKE2b-256 of the envelope bytes */
	uint8_t content_key[32];	/* secret: to forward it; wiped on free */
	void *priv;
};

/*
 * Verifies (as enl_envelope_verify) and then decrypts an envelope for
 * `me`. Nothing is decrypted unless the signature verifies. Errors: those
 * of enl_envelope_verify, and ENL_E_NOT_RECIPIENT, ENL_E_UNKNOWN_KEY_VERSION
 * (addressed to a version `me` does not hold), ENL_E_TAMPERED.
 */
int enl_envelope_open(const uint8_t *buf, size_t len,
		      const struct enl_identity *me,
		      const struct enl_keyring *kr,
		      const struct enl_limits *lim, int64_t now,
		      struct enl_message **out) ENL_WUR;

/*
 * Verifies an envelope as enl_envelope_open does and decrypts it with its
 * content key `key` (given by whoever forwarded it, inside a FORWARD):
 * the original's own signature still decides. ENL_E_TAMPERED if the key
 * is not the envelope's.
 */
int enl_envelope_open_with_key(const uint8_t *buf, size_t len, const uint8_t key[32],
			       const struct enl_keyring *kr, const struct enl_limits *lim,
			       int64_t now, struct enl_message **out) ENL_WUR;

void enl_message_free(struct enl_message *msg);

/* Names for enum values as used on command lines and in JSON
 * ("case_message", "amber+strict", ...); NULL for values out of range. */
const char *enl_msg_type_name(int type);
const char *enl_tlp_name(int tlp);
const char *enl_onward_name(int onward);
const char *enl_evidential_name(int evid);
const char *enl_reliability_name(int rel);
const char *enl_priority_name(int prio);
/* The reverse, case-insensitive; 0 when unknown. */
int enl_msg_type_parse(const char *s);
int enl_tlp_parse(const char *s);
int enl_onward_parse(const char *s);
int enl_evidential_parse(const char *s);
int enl_reliability_parse(const char *s);
int enl_priority_parse(const char *s);

/* ---- hashing and encoding ------------------------------------------ */

void enl_hash(const uint8_t *buf, size_t len, uint8_t out[ENL_HASH_LEN]);

/* ---- signed-note verifier keys (C2SP signed-note) ----------------- */

/*
 * The text form of an Ed25519 public key: "<name>+<key id>+<base64>",
 * key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || pk) in hex,
 * base64 of 0x01 || pk. `name` must be printable ASCII without '+' or
 * spaces, at most ENL_VKEY_NAME_MAX bytes.
 */
#define ENL_VKEY_NAME_MAX 128
#define ENL_VKEY_MAX (ENL_VKEY_NAME_MAX + 64)

int enl_vkey_format(const char *name, const uint8_t pk[static 32],
		    char out[static ENL_VKEY_MAX]) ENL_WUR;

/* Parses one such line (a trailing newline is allowed); checks the key id.
 * ENL_E_MALFORMED or ENL_E_UNSUPPORTED (not an Ed25519 key). */
int enl_vkey_parse(const char *text, char name[static ENL_VKEY_NAME_MAX + 1],
		   uint8_t pk[static 32]) ENL_WUR;

/* The 4-byte signed-note key id of an Ed25519 key. */
void enl_note_key_id(const char *name, const uint8_t pk[static 32],
		     uint8_t id[static 4]);

#endif
