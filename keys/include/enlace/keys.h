/*
 * enlace keys: key files at rest, agency cards, and the signed directory.
 *
 * Results are ENL_OK or a negative enum enl_err (enlace/proto.h). Nothing
 * here blocks on the network; file functions block on the disk. Distinct
 * objects may be used from distinct threads; a parsed directory is
 * read-only and may be shared between threads.
 */
#ifndef ENLACE_KEYS_H
#define ENLACE_KEYS_H

#include "enlace/note.h"
#include "enlace/proto.h"

/* ---- key files --------------------------------------------------------- */

/* Argon2id cost of a passphrase-protected key file. */
struct enl_kdf_cost {
	uint64_t opslimit;
	size_t memlimit;
};

/* libsodium's MODERATE cost: about 256 MiB and under a second here. */
struct enl_kdf_cost enl_kdf_cost_default(void);

#define ENL_KEYFILE_MAX ((size_t)64 << 10)

/*
 * Writes every version held by `ident` to `path`, created 0600, atomically.
 * With a passphrase (pass != NULL) the body is encrypted with
 * XChaCha20-Poly1305 under an Argon2id key of `cost`; with pass == NULL it
 * is written in the clear (for unattended daemons). Without `force` an
 * existing file is ENL_E_EXISTS and is left alone. Slow by design
 * (Argon2id). Errors: ENL_E_EXISTS, ENL_E_NO_SPACE, ENL_E_PERMISSION,
 * ENL_E_IO, ENL_E_NOMEM, ENL_E_CRYPTO.
 */
int enl_keyfile_write(const char *path, const struct enl_identity *ident,
		      const char *pass, size_t pass_len,
		      const struct enl_kdf_cost *cost, bool force) ENL_WUR;

/* True in *encrypted if the file at path needs a passphrase. */
int enl_keyfile_probe(const char *path, bool *encrypted) ENL_WUR;

/*
 * Reads a key file. `pass` is ignored for an unencrypted file. Refuses an
 * unencrypted file that group or others may read (ENL_E_INSECURE_FILE).
 * Errors: ENL_E_NOT_FOUND, ENL_E_PERMISSION, ENL_E_IO, ENL_E_MALFORMED,
 * ENL_E_UNSUPPORTED, ENL_E_BAD_PASSPHRASE (also when pass is NULL for an
 * encrypted file), ENL_E_INSECURE_FILE, ENL_E_NOMEM.
 */
int enl_keyfile_read(const char *path, const char *pass, size_t pass_len,
		     struct enl_identity **out) ENL_WUR;

/* Same, from bytes already in memory (for fuzzing and tests). */
int enl_keyfile_decode(const uint8_t *buf, size_t len, const char *pass,
		       size_t pass_len, struct enl_identity **out) ENL_WUR;

/*
 * Passphrases live in sodium_malloc'd memory; free them with
 * enl_passphrase_free, which wipes them.
 *
 * enl_passphrase_from_file: the first line of a file (without its line
 * end). ENL_E_MALFORMED if it is empty. File errors as enl_file_read.
 * enl_passphrase_prompt: asks on the controlling terminal with echo off;
 * with `confirm` it asks twice and refuses a mismatch (ENL_E_INVAL).
 * ENL_E_NOT_FOUND if there is no terminal. Blocks for the user.
 */
#define ENL_PASSPHRASE_MAX 1024
int enl_passphrase_from_file(const char *path, char **out, size_t *len) ENL_WUR;
int enl_passphrase_prompt(const char *prompt, bool confirm, char **out,
			  size_t *len) ENL_WUR;
void enl_passphrase_free(char *pass);

/*
 * Opens a key file the way a program run by a person does: if the file
 * is encrypted, the passphrase comes from `pass_file` when given, else
 * from the terminal. On success, and if `pass` is not NULL, the
 * passphrase used (NULL for an unencrypted file) is handed out for
 * writing the file back; free it with enl_passphrase_free. Errors: those
 * of enl_keyfile_read and enl_passphrase_from_file, and ENL_E_NOT_FOUND
 * with *no_terminal set when a passphrase was needed and no terminal
 * was there to ask.
 */
int enl_keyfile_unlock(const char *path, const char *pass_file,
		       struct enl_identity **out, char **pass, size_t *pass_len,
		       bool *no_terminal) ENL_WUR;

/* Reads a pinned authority key file (one verifier-key line, as written
 * by `enlace-keys authority init`). File errors as enl_file_read,
 * ENL_E_MALFORMED, ENL_E_UNSUPPORTED. */
int enl_authority_pub_read(const char *path, uint8_t pk[static 32]) ENL_WUR;

/*
 * Loads KEY_DIR/secret.key for a daemon or a command: as
 * enl_keyfile_unlock, with a message in `why` naming the file and the
 * reason, and `no_tty_hint` added when an encrypted key had no terminal
 * to ask on (how to give the passphrase instead).
 */
int enl_keydir_load(const char *key_dir, const char *pass_file, const char *no_tty_hint,
		    struct enl_identity **out, char *why, size_t why_cap) ENL_WUR;

/* ---- cards --------------------------------------------------------------- */

enum enl_agency_kind {
	ENL_KIND_FIU = 1,
	ENL_KIND_POLICE = 2,
	ENL_KIND_PROSECUTOR = 3,
	ENL_KIND_JUDICIAL = 4,
	ENL_KIND_CUSTOMS = 5,
	ENL_KIND_CENTRAL_AUTHORITY = 6,
	ENL_KIND_POINT_OF_CONTACT = 7,
	ENL_KIND_BROKER = 8,
	ENL_KIND_AUDITOR = 9,
};

/* True if cc is a country code as cards carry them: 2 to 8 letters A-Z. */
bool enl_country_valid(const char *cc);

/* "FIU", "POLICE", ...; NULL out of range. Parse is case-insensitive and
 * returns 0 for an unknown name. */
const char *enl_kind_name(int kind);
int enl_kind_parse(const char *s);

struct enl_card_key {
	uint32_t version;
	uint8_t sign_pk[32];
	uint8_t enc_pk[32];
	int64_t created_at;
};

/* A card, decoded and its self-signature checked. */
struct enl_card {
	char id[ENL_ID_MAX + 1];
	enum enl_agency_kind kind;
	char country[9];
	char name[ENL_NAME_MAX + 1];
	uint32_t current_version;
	size_t n_keys;
	struct enl_card_key keys[ENL_MAX_KEY_VERSIONS];	/* ascending */
	int64_t created_at;
};

#define ENL_CARD_MAX ((size_t)16 << 10)

/*
 * Makes the signed card of `ident` (every version it holds, signed with
 * the current one). Key creation times are taken from `prev` (the card
 * this one replaces, may be NULL) for the versions it lists, `now`
 * otherwise. `country` is 2 to 8 letters A-Z; `name` printable UTF-8 up
 * to ENL_NAME_MAX. Errors: ENL_E_INVAL, ENL_E_NOMEM, ENL_E_CRYPTO.
 */
int enl_card_make(const struct enl_identity *ident, enum enl_agency_kind kind,
		  const char *country, const char *name,
		  const struct enl_card *prev, int64_t now, uint8_t **out,
		  size_t *out_len) ENL_WUR;

/* Decodes a SignedCard and checks its self-signature. ENL_E_TOO_LARGE,
 * ENL_E_MALFORMED, ENL_E_UNSUPPORTED, ENL_E_BAD_CARD, ENL_E_NOMEM. */
int enl_card_parse(const uint8_t *buf, size_t len, struct enl_card *out) ENL_WUR;

/* The card's key of `version`, or NULL. */
const struct enl_card_key *enl_card_key(const struct enl_card *c, uint32_t version);

/* ---- fingerprints --------------------------------------------------------- */

#define ENL_FINGERPRINT_LEN 40	/* "XXXX XXXX ... XXXX" (8 groups) + NUL */

/* A short human-comparable fingerprint of an Ed25519 public key: the
 * first 16 bytes of BLAKE2b-256("enlace/fingerprint/v1" 0x00 || pk) as 8
 * groups of 4 upper-case hex digits. */
void enl_fingerprint(const uint8_t pk[static 32], char out[static ENL_FINGERPRINT_LEN]);

/* ---- the directory ---------------------------------------------------------- */

struct enl_revocation {
	char id[ENL_ID_MAX + 1];
	uint32_t version;	/* 0 = every version of that agency */
	char reason[256];
	int64_t revoked_at;
};

#define ENL_DIRECTORY_MAX ((size_t)16 << 20)
#define ENL_DIRECTORY_MAX_CARDS 10000
#define ENL_DIRECTORY_MAX_REVOCATIONS 100000

/* A directory that has been parsed and checked. Read-only once made. */
struct enl_directory;

/* What enl_directory_parse checks beyond the format and the cards. */
struct enl_dir_check {
	const uint8_t *authority_pk;	/* pinned key (32 bytes); NULL: any */
	uint64_t held_serial;		/* the serial must be above it */
	int64_t now;			/* refuse if expired at now; 0: skip */
};

/*
 * Parses a SignedDirectory. With authority_pk the directory must name and
 * be signed by that key; without, it must be signed by the key it names
 * (for display only: that proves nothing). Every card's self-signature
 * must verify and ids must be unique. Errors, in the order checked:
 * ENL_E_TOO_LARGE, ENL_E_MALFORMED, ENL_E_UNSUPPORTED, ENL_E_DIR_AUTHORITY,
 * ENL_E_BAD_SIGNATURE, ENL_E_DIR_OLD_SERIAL, ENL_E_DIR_EXPIRED,
 * ENL_E_BAD_CARD, ENL_E_NOMEM.
 */
int enl_directory_parse(const uint8_t *buf, size_t len,
			const struct enl_dir_check *chk,
			struct enl_directory **out) ENL_WUR;

/* Reads and parses a directory file; file errors as enl_file_read. */
int enl_directory_load(const char *path, const struct enl_dir_check *chk,
		       struct enl_directory **out) ENL_WUR;

void enl_directory_free(struct enl_directory *d);

uint64_t enl_directory_serial(const struct enl_directory *d);
int64_t enl_directory_issued_at(const struct enl_directory *d);
int64_t enl_directory_expires_at(const struct enl_directory *d);
/* In the directory's last week (or past its expiry) at `now`: writes
 * "serial N expires at T, in H h" (or "serial N EXPIRED at T") to `out`
 * and returns true, for a warning; false otherwise. */
bool enl_directory_expiry_say(const struct enl_directory *d, int64_t now, char *out,
			      size_t cap);
const uint8_t *enl_directory_authority_pk(const struct enl_directory *d);
size_t enl_directory_card_count(const struct enl_directory *d);
const struct enl_card *enl_directory_card_at(const struct enl_directory *d, size_t i);
const struct enl_card *enl_directory_find(const struct enl_directory *d, const char *id);
size_t enl_directory_revocation_count(const struct enl_directory *d);
const struct enl_revocation *enl_directory_revocation_at(const struct enl_directory *d,
							  size_t i);
/* The revocation covering (id, version), or NULL. */
const struct enl_revocation *enl_directory_revoked(const struct enl_directory *d,
						   const char *id, uint32_t version);

/* A signer's note keys: one per version of its signing key, under one
 * key name (a log's checkpoints stay verifiable after it rotates). */
struct enl_note_keys {
	size_t n;
	struct enl_note_verifier v[ENL_MAX_KEY_VERSIONS];
};

/* The note keys of every version of card `c` that `d` (may be NULL) does
 * not revoke, under the key name `name`, as note signers or (with
 * `cosigner`) as cosigners. out->n is 0 if every version is revoked. */
void enl_card_note_keys(const struct enl_directory *d, const struct enl_card *c,
			const char *name, bool cosigner, struct enl_note_keys *out);

/* A keyring backed by the directory, valid while `d` lives. Revoked
 * versions are ENL_E_REVOKED_KEY; retired ones still verify. */
struct enl_keyring enl_directory_keyring(const struct enl_directory *d);

/* The same, except that a revoked version still gives its signing key:
 * only to check again what was verified and kept before the revocation
 * (the caller says that the key is revoked, enl_directory_revoked). */
struct enl_keyring enl_directory_keyring_ever(const struct enl_directory *d);

/*
 * Checks `recipient`'s acknowledgement of message (id, hash) made at
 * ack_time: signed by a version of its key that `d` does not revoke at or
 * before logged_at (when the broker took it). ENL_OK;
 * ENL_E_REVOKED_KEY with *revoked_at; ENL_E_BAD_SIGNATURE;
 * ENL_E_UNKNOWN_SENDER (no card).
 */
int enl_directory_ack_check(const struct enl_directory *d, const char *recipient,
			    const uint8_t id[static ENL_MSG_ID_LEN],
			    const uint8_t hash[static ENL_HASH_LEN], int64_t ack_time,
			    const uint8_t sig[static 64], int64_t logged_at, int64_t *revoked_at);

/*
 * Builds and signs a directory with the authority's current key. Cards
 * are SignedCard bytes; each is checked, and ids must be unique.
 * `expires_at` must be after `now`. Errors: ENL_E_INVAL, ENL_E_BAD_CARD,
 * ENL_E_MALFORMED, ENL_E_NOMEM, ENL_E_CRYPTO.
 */
int enl_directory_build(const struct enl_identity *authority, uint64_t serial,
			int64_t now, int64_t expires_at,
			const uint8_t *const *cards, const size_t *card_lens,
			size_t n_cards, const struct enl_revocation *revs,
			size_t n_revs, uint8_t **out, size_t *out_len) ENL_WUR;

/*
 * A new directory: `d` with one more revocation and serial + 1, same
 * cards and expiry, signed by `authority`. ENL_E_UNKNOWN_SENDER if the
 * id is not in `d`, ENL_E_UNKNOWN_KEY_VERSION if the version is not on
 * its card, ENL_E_EXISTS if it is revoked already.
 */
int enl_directory_revoke(const struct enl_identity *authority,
			 const struct enl_directory *d,
			 const struct enl_revocation *rev, int64_t now,
			 uint8_t **out, size_t *out_len) ENL_WUR;

#endif
