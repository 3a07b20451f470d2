/*
 * enlace base: the plumbing every program of enlace uses, with no
 * knowledge of any format: errors, hex and time, files written durably,
 * the text rules for what other agencies write, JSON output, a
 * bounds-checked reader over untrusted bytes, and capped growable
 * buffers. Config files and the command-line kit are in enlace/config.h.
 *
 * Unless a function says otherwise: it does not block on the network, it is
 * safe to call from any thread on distinct objects, and an `int` result is
 * ENL_OK (0) or a negative enum enl_err. Nothing here starts a thread or
 * changes a process-wide setting.
 */
#ifndef ENLACE_BASE_H
#define ENLACE_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

/* ---- hex and time ------------------------------------------------- */

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void enl_hex(const uint8_t *buf, size_t len, char *out);

/* Parses exactly 2 * len hex digits; false if s is not that. */
bool enl_unhex(const char *s, uint8_t *out, size_t len);

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
/* Takes buf (malloc'd, len bytes) as text: *text is it NUL-terminated
 * (grown by a byte). ENL_E_MALFORMED if it holds a NUL byte, ENL_E_NOMEM;
 * on failure buf is freed. */
int enl_text_take(uint8_t *buf, size_t len, char **text) ENL_WUR;
/* The text as a terminal may show it (malloc'd; NULL without memory):
 * each byte that is not UTF-8, control character and bidirectional
 * formatting character as a visible escape (\x1b, \x9b is \u009b,
 * \u202e); with multiline, line feeds and tabs as they are. */
char *enl_term_escape(const char *s, bool multiline);
/* s as a JSON string on fp: always valid UTF-8 (a byte that is not is
 * U+FFFD), controls and bidirectional formatting as \u and four hex
 * digits. */
void enl_json_put_string(void *fp, const char *s);

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

/* The CLOCK_REALTIME instant `ms` from now, for pthread's timed waits. */
void enl_deadline(struct timespec *until, uint64_t ms);

/* "YYYY-MM-DDTHH:MM:SSZ" of a Unix time into out. */
void enl_time_format(int64_t t, char out[static 32]);

/* ---- a bounds-checked reader over untrusted bytes ------------------ */

/* Every read either takes what it asks for or fails and leaves the
 * reader where it was. */
struct enl_reader {
	const uint8_t *p;
	size_t len;		/* bytes left */
};

const uint8_t *enl_rd_bytes(struct enl_reader *r, size_t n);
bool enl_rd_u8(struct enl_reader *r, uint8_t *v);
bool enl_rd_u32(struct enl_reader *r, uint32_t *v);	/* big-endian */
bool enl_rd_u64(struct enl_reader *r, uint64_t *v);	/* big-endian */
/* Big-endian writes; each returns p past what it wrote. */
uint8_t *enl_put_u32(uint8_t *p, uint32_t v);
uint8_t *enl_put_u64(uint8_t *p, uint64_t v);

/* ---- capped growable arrays and text buffers ----------------------- */

/*
 * An array that grows by doubling up to a cap given when it is made:
 *
 *	ENL_VEC(struct row) rows = ENL_VEC_INIT(1000);
 *	struct row *r = enl_vec_push(&rows);	(NULL: cap reached or no memory)
 *	... rows.v[i] for i < rows.n ...
 *	enl_vec_free(&rows);
 *
 * A cap of 0 is a bug in the caller (it aborts). The elements are owned
 * by the vector until the caller takes `v` and zeroes the vector.
 */
#define ENL_VEC(T) struct { T *v; size_t n, cap, max; }
#define ENL_VEC_INIT(max) {NULL, 0, 0, (max)}

/* A new zeroed element at the end, or NULL (the cap, or out of memory). */
#define enl_vec_push(vec) \
	enl_vec_push_(&(vec)->v, &(vec)->n, &(vec)->cap, (vec)->max, sizeof(*(vec)->v))
/* Room for `k` more elements without moving (not counted in n):
 * ENL_OK, ENL_E_TOO_LARGE past the cap, ENL_E_NOMEM. */
#define enl_vec_reserve(vec, k) \
	enl_vec_room_(&(vec)->v, (vec)->n, &(vec)->cap, (vec)->max, sizeof(*(vec)->v), (k))
#define enl_vec_free(vec) \
	do { free((vec)->v); (vec)->v = NULL; (vec)->n = (vec)->cap = 0; } while (0)

/* The engines of the macros above; `vp` points to the array's pointer. */
int enl_vec_room_(void *vp, size_t n, size_t *cap, size_t max, size_t size, size_t k) ENL_WUR;
void *enl_vec_push_(void *vp, size_t *n, size_t *cap, size_t max, size_t size);

/* Text that grows up to `max` bytes (the NUL not counted), always
 * NUL-terminated once anything is added. */
struct enl_buf {
	char *p;
	size_t len, cap, max;
};
#define ENL_BUF_INIT(max) {NULL, 0, 0, (max)}

/* ENL_OK, ENL_E_TOO_LARGE past the cap (nothing added), ENL_E_NOMEM. */
int enl_buf_add(struct enl_buf *b, const void *p, size_t n) ENL_WUR;
int enl_buf_puts(struct enl_buf *b, const char *s) ENL_WUR;
int enl_buf_printf(struct enl_buf *b, const char *fmt, ...) ENL_WUR
	__attribute__((format(printf, 2, 3)));
/* Hands out the text (malloc'd, "" if nothing was added; NULL without
 * memory) and empties the buffer. */
char *enl_buf_take(struct enl_buf *b);
void enl_buf_free(struct enl_buf *b);

#endif
