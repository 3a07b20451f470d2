/*
 * enlace proto: what both ends of an exchange must agree on.
 *
 * Errors, the in-memory identity (private keys), envelope seal/open, and
 * the small file and JSON helpers every program uses. Byte formats are
 * specified in docs/FORMATS.md.
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

#define ENL_WUR __attribute__((warn_unused_result))

enum enl_err {
	ENL_OK = 0,
	ENL_E_NOMEM = -1,
	ENL_E_INVAL = -2,		/* an argument is out of its range */
	ENL_E_MALFORMED = -3,		/* bytes do not parse or break a rule */
	ENL_E_TOO_LARGE = -4,		/* over a configured or format limit */
	ENL_E_BAD_SIGNATURE = -5,
	ENL_E_UNKNOWN_SENDER = -6,
	ENL_E_REVOKED_KEY = -7,
	ENL_E_NOT_RECIPIENT = -8,
	ENL_E_TAMPERED = -9,		/* authenticated decryption failed */
	ENL_E_EXPIRED = -10,		/* the message's expiry has passed */
	ENL_E_UNKNOWN_RECIPIENT = -11,
	ENL_E_UNKNOWN_KEY_VERSION = -12,
	ENL_E_IO = -13,
	ENL_E_NOT_FOUND = -14,
	ENL_E_EXISTS = -15,
	ENL_E_NO_SPACE = -16,
	ENL_E_PERMISSION = -17,
	ENL_E_BAD_PASSPHRASE = -18,
	ENL_E_DIR_EXPIRED = -19,	/* the directory's expiry has passed */
	ENL_E_DIR_OLD_SERIAL = -20,	/* not newer than the one held */
	ENL_E_DIR_AUTHORITY = -21,	/* not signed by the pinned authority */
	ENL_E_BAD_CARD = -22,		/* a card's self-signature fails */
	ENL_E_UNSUPPORTED = -23,	/* unknown format version */
	ENL_E_CRYPTO = -24,		/* libsodium refused an operation */
	ENL_E_INSECURE_FILE = -25,	/* secret file readable by others */
	ENL_E_NOT_REGULAR = -26,	/* a folder or device where a file was named */
};

/* A static, human-readable text for an enl_err; never NULL. */
const char *enl_strerror(int err);

/* A failure of the machine that did the work (I/O, a full disk, out of
 * memory), not of the request: the same request may succeed later. */
bool enl_err_transient(int err);

/* Initializes libsodium. Returns ENL_E_CRYPTO if it cannot. */
int enl_init(void) ENL_WUR;
/*
 * For the programs that carry whole messages (broker, agent, enlace): the
 * buffers of a large message (up to 2 x the payload limit, several alive
 * at once) come from one heap and are reused, rather than mapped fresh for
 * each copy and faulted in page by page. Call before any thread starts.
 * Freed memory is kept for reuse up to 512 MiB before it is returned.
 */
void enl_tune_malloc(void);
/* Returns the heap's free memory to the system now (what enl_tune_malloc
 * keeps for reuse): after a large request that was refused. */
void enl_trim_malloc(void);

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

/*
 * Text from other agencies (docs/FORMATS.md, "Text"). Every protobuf
 * string is strict UTF-8: no overlong form, no surrogate, nothing past
 * U+10FFFF. A one-line field (a subject, a case reference, a name, a file
 * name) has no control character (C0 U+0000-U+001F, DEL U+007F, C1
 * U+0080-U+009F) and no bidirectional formatting character (U+061C,
 * U+200E, U+200F, U+202A-U+202E, U+2066-U+2069). A body may also hold
 * tab, line feed and carriage return, and bidirectional formatting.
 */
/* The code point at s (len bytes left) and its length in bytes; 0 if the
 * bytes there are not strict UTF-8. */
size_t enl_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);
bool enl_utf8_valid(const char *s, size_t len);
bool enl_cp_control(uint32_t cp);	/* C0, DEL, C1 */
bool enl_cp_bidi(uint32_t cp);		/* bidirectional formatting */
/* A one-line field of at most max bytes. */
bool enl_text_valid(const char *s, size_t max);
/* A body of at most max bytes. */
bool enl_body_valid(const char *s, size_t max);
/* The text as a terminal may show it (malloc'd; NULL without memory):
 * each byte that is not UTF-8, control character and bidirectional
 * formatting character as a visible escape (\x1b, \x9b is \u009b,
 * \u202e); with multiline, line feeds and tabs as they are. */
char *enl_term_escape(const char *s, bool multiline);
/* s as a JSON string on fp: always valid UTF-8 (a byte that is not is
 * U+FFFD), controls and bidirectional formatting as \u and four hex
 * digits. */
void enl_json_put_string(void *fp, const char *s);

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

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void enl_hex(const uint8_t *buf, size_t len, char *out);

/* Parses exactly 2 * len hex digits; false if s is not that. */
bool enl_unhex(const char *s, uint8_t *out, size_t len);

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

/* ---- files ---------------------------------------------------------- */

/*
 * Reads a whole file of at most `max` bytes into a malloc'd buffer.
 * ENL_E_NOT_FOUND, ENL_E_PERMISSION, ENL_E_NOT_REGULAR, ENL_E_TOO_LARGE,
 * ENL_E_IO.
 */
int enl_file_read(const char *path, size_t max, uint8_t **out,
		  size_t *out_len) ENL_WUR;

/*
 * Opens a regular file of at most `max` bytes for reading: *fd and its
 * *size. The errors of enl_file_read.
 */
int enl_file_open(const char *path, size_t max, int *fd, size_t *size) ENL_WUR;

/* Reads the first len bytes of fd into buf, which may be anywhere (large
 * reads bypass the page cache as enl_file_read's do). ENL_E_IO if the
 * file is shorter. */
int enl_file_read_into(int fd, uint8_t *buf, size_t len) ENL_WUR;

/*
 * Maps a whole file of at most `max` bytes, read-only, its pages read in
 * at once; the same errors as enl_file_read. No fresh memory is taken (a
 * short-lived process pays for every fresh page it touches). A file cut
 * short while mapped makes reading past its new end raise SIGBUS: give
 * the bytes to the kernel (send, write), which fails with EFAULT instead,
 * or read the file with enl_file_read. An empty file maps to "" with
 * length 0. enl_file_unmap releases it.
 */
int enl_file_map(const char *path, size_t max, const uint8_t **out,
		 size_t *out_len) ENL_WUR;
void enl_file_unmap(const uint8_t *p, size_t len);

/*
 * Writes a file atomically and durably: a temporary file in the same
 * folder with `mode`, fsync, rename over `path` (or link without
 * replacing when `replace` is false: ENL_E_EXISTS if path exists), fsync
 * of the folder. Nothing is left behind on failure. ENL_E_NO_SPACE on a
 * full disk, ENL_E_PERMISSION, ENL_E_IO.
 */
int enl_file_write(const char *path, const uint8_t *buf, size_t len,
		   unsigned mode, bool replace) ENL_WUR;
/* The same, the file's modification time set to *mtime (to the
 * nanosecond) before it is synced. */
struct timespec;
int enl_file_write_at(const char *path, const uint8_t *buf, size_t len, unsigned mode,
		      bool replace, const struct timespec *mtime) ENL_WUR;

/* Syncs the folder `path` is in, so that a name made in it is durable. */
int enl_file_sync_parent(const char *path) ENL_WUR;

/*
 * Takes the folder `dir` for this process alone: an exclusive lock on
 * dir/lock (made 0600, this process's pid written in it), held while *fd
 * is open, and let go when the process ends however it ends. ENL_E_EXISTS
 * if another process holds it (*holder gets that process's pid, or 0 if
 * it cannot be read); ENL_E_NOT_FOUND, ENL_E_PERMISSION, ENL_E_IO.
 */
int enl_dir_lock(const char *dir, int *fd, long *holder) ENL_WUR;

/*
 * Removes what writes cut short (a crash) left in `dir`: the temporary
 * files of enl_file_write, "<name>.tmp-" and 16 hex digits. Only for a
 * folder this process holds alone (enl_dir_lock). *removed (if not NULL)
 * counts them. ENL_E_NOT_FOUND, ENL_E_IO.
 */
int enl_dir_sweep(const char *dir, size_t *removed) ENL_WUR;

/* ---- JSON output ----------------------------------------------------- */

/* A tiny JSON writer to a stdio stream, for --json output. */
struct enl_json {
	void *fp;		/* FILE * */
	int depth;
	bool need_comma[32];
};

void enl_json_init(struct enl_json *j, void *fp);
void enl_json_obj_begin(struct enl_json *j, const char *key);
void enl_json_obj_end(struct enl_json *j);
void enl_json_arr_begin(struct enl_json *j, const char *key);
void enl_json_arr_end(struct enl_json *j);
/* key is NULL inside arrays. */
void enl_json_str(struct enl_json *j, const char *key, const char *val);
void enl_json_int(struct enl_json *j, const char *key, int64_t val);
void enl_json_bool(struct enl_json *j, const char *key, bool val);
/* Ends the document with a newline. */
void enl_json_end(struct enl_json *j);

/* "YYYY-MM-DDTHH:MM:SSZ" of a Unix time into out. */
void enl_time_format(int64_t t, char out[static 32]);

#endif
