/*
 * enlace note: C2SP signed notes with Ed25519 signatures (type 0x01), and
 * C2SP tlog-checkpoint bodies. Verifier keys are in enlace/proto.h.
 *
 * A note's text is what is signed, byte for byte: non-empty UTF-8 ending
 * in a newline, without NUL or other control characters but newlines.
 * (No enlace labelled signature can be a note's text: labels end in NUL.)
 */
#ifndef ENLACE_NOTE_H
#define ENLACE_NOTE_H

#include "enlace/proto.h"

#define ENL_NOTE_MAX ((size_t)1 << 20)
#define ENL_NOTE_MAX_SIGS 100

/* Signs `text` with the current key of `ident` under the key name `name`:
 * *out (malloc'd, NUL-terminated) is text, a blank line and the signature
 * line. ENL_E_INVAL for a text or name that breaks the rules. */
int enl_note_sign(const struct enl_identity *ident, const char *name, const char *text,
		  char **out) ENL_WUR;

/* A key that may sign a note: a note signer (type 0x01), or, with
 * `cosigner`, a C2SP tlog-cosignature Ed25519 cosigner (type 0x04). */
struct enl_note_verifier {
	char name[ENL_VKEY_NAME_MAX + 1];
	uint8_t pk[32];
	bool cosigner;
};

/*
 * A C2SP tlog-cosignature (Ed25519, type 0x04) by the current key of
 * `ident` under `name`, over the note text `text` (a checkpoint body) at
 * POSIX time `t`: *line (malloc'd) is the signature line, newline
 * included, to be added below the note's other signatures.
 */
int enl_cosign(const struct enl_identity *ident, const char *name, const char *text,
	       uint64_t t, char **line) ENL_WUR;

/*
 * Opens a signed note: splits text from signatures (at the last blank
 * line), and checks every signature line whose name and key id match one
 * of `verifiers`. A matching line whose signature fails rejects the whole
 * note (ENL_E_BAD_SIGNATURE); lines of unknown keys are ignored. With no
 * verified signature at all: ENL_E_UNKNOWN_SENDER. On success *text_len is
 * the length of the text (which starts at `note`), and `verified[i]` (if
 * not NULL) tells which verifiers signed. ENL_E_MALFORMED, ENL_E_TOO_LARGE.
 */
int enl_note_open(const char *note, size_t len, const struct enl_note_verifier *verifiers,
		  size_t n_verifiers, size_t *text_len, bool *verified) ENL_WUR;

/* A C2SP tlog-checkpoint body: origin, tree size, root hash. */
struct enl_checkpoint {
	char origin[ENL_VKEY_NAME_MAX + 1];
	uint64_t size;
	uint8_t root[32];
};

/* The body text of a checkpoint into *out (malloc'd). ENL_E_INVAL. */
int enl_checkpoint_format(const struct enl_checkpoint *cp, char **out) ENL_WUR;

/* Parses a checkpoint body (the text of a note). Extension lines after
 * the root are allowed and ignored. ENL_E_MALFORMED. */
int enl_checkpoint_parse(const char *text, size_t len, struct enl_checkpoint *cp) ENL_WUR;

#endif
