/*
 * Reading a tile log back: every entry re-hashed, every tile rebuilt and
 * compared, the checkpoint's signature and root checked. For auditors
 * (enl_tlog_load, enl_tlog_verify) and for the log's own writer when it
 * opens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/tlog.h"
#include "proto_int.h"

struct reader_state {
	const struct enl_tlog_source *src;
	char *why;
	size_t why_cap;
};

int
enl_tlog_read_dir(void *ctx, const char *rel, size_t max, uint8_t **out, size_t *len)
{
	char path[2048];

	snprintf(path, sizeof(path), "%s/%s", (const char *)ctx, rel);
	return enl_file_read(path, max, out, len);
}

static int
src_read(const struct reader_state *r, const char *rel, size_t max, uint8_t **out,
	 size_t *len)
{
	return r->src->read(r->src->ctx, rel, max, out, len);
}

/* Sets the reason, naming an index or number, and gives rc. */
#define fail_why(r, rc, fmt, n) \
	(snprintf((r)->why, (r)->why_cap, fmt, (unsigned long long)(n)), (rc))

static int
fail_msg(struct reader_state *r, int rc, const char *msg)
{
	snprintf(r->why, r->why_cap, "%s", msg);
	return rc;
}

/*
 * The partial tiles still served for older checkpoint sizes (every width
 * below the last tile's, at each level, and the last entry bundle's) must
 * be prefixes of what the entries give: a forged older partial would
 * otherwise mislead a client that holds an older checkpoint.
 */
static int
check_partials(const struct enl_tlog *log, struct reader_state *r, uint64_t size)
{
	char rel[ENL_TILE_PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	for (int L = -1; L < ENL_TILE_LEVELS; L++) {
		uint64_t n = L < 0 ? size : log->lv[L].n, t = n / ENL_TILE_WIDTH;
		unsigned w = (unsigned)(n % ENL_TILE_WIDTH);
		if (n == 0)
			break;
		for (unsigned ow = 1; ow < w; ow++) {
			const uint8_t *want;
			size_t want_len;
			enl_tile_path(L, t, ow, rel);
			rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX), &buf,
				      &len);
			if (rc == ENL_E_NOT_FOUND)
				continue;	/* gone, or never handed out */
			if (rc != ENL_OK) {
				snprintf(r->why, r->why_cap, "%s: cannot be read", rel);
				return rc;
			}
			if (L >= 0) {
				want = (const uint8_t *)log->lv[L].v[t * ENL_TILE_WIDTH];
				want_len = (size_t)ow * ENL_MERKLE_HASH_LEN;
			} else {	/* the first ow entries of the last bundle (pend) */
				size_t off = 0;
				for (unsigned i = 0; i < ow && off + 2 <= log->pend.n; i++)
					off += 2 + ((size_t)log->pend.v[off] << 8 | log->pend.v[off + 1]);
				want = log->pend.v;
				want_len = off;
			}
			bool same = len == want_len && memcmp(buf, want, len) == 0;
			free(buf);
			buf = NULL;
			if (!same) {
				snprintf(r->why, r->why_cap, "%s: an older partial tile that does not "
					 "match the entries", rel);
				return ENL_E_MALFORMED;
			}
		}
	}
	return ENL_OK;
}

/* Reads the entries of [0, size) into `log` (leaf hashes, levels, tree),
 * then checks every stored tile against what the entries give. */
static int
read_back(struct enl_tlog *log, struct reader_state *r, uint64_t size)
{
	char rel[ENL_TILE_PATH_MAX];
	int rc;

	for (uint64_t b = 0; b * ENL_TILE_WIDTH < size; b++) {
		uint64_t want = size - b * ENL_TILE_WIDTH;
		uint8_t *buf = NULL;
		size_t len = 0, off = 0;
		if (want > ENL_TILE_WIDTH)
			want = ENL_TILE_WIDTH;
		/* the full bundle if there is one, else the partial of that width
		 * (a full bundle may have been completed after the checkpoint
		 * was read: its first `want` entries are the ones asked for) */
		bool whole = true;
		enl_tile_path(-1, b, 0, rel);
		rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX), &buf, &len);
		if (rc == ENL_E_NOT_FOUND && want < ENL_TILE_WIDTH) {
			whole = false;
			enl_tile_path(-1, b, (unsigned)want, rel);
			rc = src_read(r, rel, (size_t)ENL_TILE_WIDTH * (2 + ENL_TLOG_ENTRY_MAX),
				      &buf, &len);
		}
		if (rc != ENL_OK)
			return fail_why(r, rc, "entry bundle %llu cannot be read",
					(unsigned long long)b);
		for (uint64_t i = 0; i < want; i++) {
			size_t n;
			enl_mhash leaf;
			if (len - off < 2 || (n = (size_t)buf[off] << 8 | buf[off + 1]) > len - off - 2) {
				free(buf);
				return fail_why(r, ENL_E_MALFORMED,
						"entry %llu: the bundle is truncated or damaged",
						(unsigned long long)(b * ENL_TILE_WIDTH + i));
			}
			enl_merkle_leaf_hash(buf + off + 2, n, leaf);
			if ((rc = enl_tlog_add_leaf(log, leaf)) != ENL_OK) {
				free(buf);
				return rc;
			}
			if (r->src->entry != NULL &&
			    r->src->entry(r->src->ctx, b * ENL_TILE_WIDTH + i, buf + off + 2, n) != 0) {
				free(buf);
				return fail_why(r, ENL_E_MALFORMED, "entry %llu: not a valid entry",
						(unsigned long long)(b * ENL_TILE_WIDTH + i));
			}
			off += 2 + n;
		}
		if (off != len && !(whole && want < ENL_TILE_WIDTH)) {
			free(buf);
			return fail_why(r, ENL_E_MALFORMED,
					"entry bundle %llu has bytes after its last entry",
					(unsigned long long)b);
		}
		if (r->src->progress != NULL)
			r->src->progress(r->src->ctx, b * ENL_TILE_WIDTH + want, size);
		/* a partial last bundle's entries are written again with the next */
		if (want < ENL_TILE_WIDTH && log->pend.n == 0) {
			if (enl_vec_reserve(&log->pend, off + 65536) != ENL_OK) {
				free(buf);
				return ENL_E_NOMEM;
			}
			memcpy(log->pend.v, buf, off);
			log->pend.n = off;
			log->pend_first = b * ENL_TILE_WIDTH;
		}
		free(buf);
	}
	if (size % ENL_TILE_WIDTH == 0)
		log->pend_first = size;
	/* every tile must be what the entries say */
	for (int L = 0; L < ENL_TILE_LEVELS && log->lv[L].n > 0; L++) {
		const struct level *l = &log->lv[L];
		for (uint64_t t = 0; t * ENL_TILE_WIDTH < l->n; t++) {
			uint64_t w = l->n - t * ENL_TILE_WIDTH;
			uint8_t *buf = NULL;
			size_t len = 0;
			uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L);
			if (w > ENL_TILE_WIDTH)
				w = ENL_TILE_WIDTH;
			enl_tile_path(L, t, (unsigned)w, rel);
			rc = src_read(r, rel, ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN, &buf, &len);
			if (rc == ENL_E_NOT_FOUND && w < ENL_TILE_WIDTH) {
				/* the log grew past the checkpoint read, and the
				 * tile is full now: its first w hashes are these */
				enl_tile_path(L, t, 0, rel);
				rc = src_read(r, rel, ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN, &buf,
					      &len);
				if (rc == ENL_OK && len == ENL_TILE_WIDTH * ENL_MERKLE_HASH_LEN)
					len = w * ENL_MERKLE_HASH_LEN;
			}
			if (rc != ENL_OK || len != w * ENL_MERKLE_HASH_LEN ||
			    memcmp(buf, l->v[t * ENL_TILE_WIDTH], len) != 0) {
				/* locate the first differing hash, for the message */
				uint64_t bad = t * ENL_TILE_WIDTH;
				for (uint64_t i = 0; rc == ENL_OK && len == w * ENL_MERKLE_HASH_LEN &&
						     i < w; i++)
					if (memcmp(buf + i * ENL_MERKLE_HASH_LEN, l->v[bad + i],
						   ENL_MERKLE_HASH_LEN) != 0) {
						bad += i;
						break;
					}
				free(buf);
				snprintf(r->why, r->why_cap,
					 "%s: %s (first leaf it covers: %llu)", rel,
					 rc != ENL_OK ? "cannot be read"
						      : "does not match the entries",
					 (unsigned long long)(bad * span));
				return rc != ENL_OK ? rc : ENL_E_MALFORMED;
			}
			free(buf);
		}
	}
	return check_partials(log, r, size);
}

/* Reads and checks the checkpoint; *note (if not NULL) keeps its bytes. */
static int
read_checkpoint(struct reader_state *r, const struct enl_note_verifier *v, size_t n_v,
		struct enl_checkpoint *cp, bool *exists, char **note)
{
	uint8_t *buf = NULL;
	size_t len = 0, tl = 0;
	int rc;

	rc = src_read(r, "checkpoint", ENL_NOTE_MAX, &buf, &len);
	*exists = rc != ENL_E_NOT_FOUND;
	if (rc == ENL_E_NOT_FOUND)
		return ENL_OK;
	if (rc != ENL_OK)
		return fail_msg(r, rc, "checkpoint cannot be read");
	rc = n_v == 0 ? ENL_E_UNKNOWN_SENDER : enl_note_open((const char *)buf, len, v, n_v, &tl, NULL);
	if (rc == ENL_OK)
		rc = enl_checkpoint_parse((const char *)buf, tl, cp);
	if (rc == ENL_OK && strcmp(cp->origin, v[0].name) != 0)
		rc = ENL_E_MALFORMED;
	if (rc != ENL_OK) {
		free(buf);
		return fail_msg(r, rc, "checkpoint: signature or format is not valid");
	}
	if (note != NULL)
		return enl_text_take(buf, len, note);
	free(buf);
	return ENL_OK;
}

int
enl_tlog_read_checkpoint(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
			 size_t n_v, struct enl_checkpoint *cp, bool *exists, char *why,
			 size_t why_cap)
{
	struct reader_state r = {src, why, why_cap};

	return read_checkpoint(&r, v, n_v, cp, exists, NULL);
}

static int
load(struct enl_tlog *log, const struct enl_note_verifier *v, size_t n_v,
     struct reader_state *r, struct enl_checkpoint *cp)
{
	enl_mhash root;
	bool exists = false;
	int rc;

	memset(cp, 0, sizeof(*cp));
	if ((rc = read_checkpoint(r, v, n_v, cp, &exists, &log->note)) != ENL_OK)
		return rc;
	if (!exists)
		return fail_msg(r, ENL_E_NOT_FOUND, "no checkpoint");
	if ((rc = read_back(log, r, cp->size)) != ENL_OK)
		return rc;
	enl_tlog_tree_root(&log->tree, root);
	if (sodium_memcmp(root, cp->root, ENL_MERKLE_HASH_LEN) != 0)
		return fail_why(r, ENL_E_MALFORMED,
				"checkpoint root does not match the %llu entries",
				(unsigned long long)cp->size);
	log->committed = cp->size;
	log->committed_tree = log->tree;
	return ENL_OK;
}

int
enl_tlog_load(const struct enl_tlog_source *src, const struct enl_note_verifier *v,
	      size_t n_v, struct enl_tlog **out, struct enl_checkpoint *cp, char *why, size_t why_cap)
{
	struct reader_state r = {src, why, why_cap};
	struct enl_tlog *log = enl_tlog_new();
	int rc;

	why[0] = '\0';
	if (log == NULL)
		return ENL_E_NOMEM;
	if (n_v == 0) {
		enl_tlog_free(log);
		snprintf(why, why_cap, "no key to check the checkpoint with");
		return ENL_E_INVAL;
	}
	if ((rc = load(log, v, n_v, &r, cp)) != ENL_OK) {
		enl_tlog_free(log);
		return rc;
	}
	*out = log;
	return ENL_OK;
}

const char *
enl_tlog_note(const struct enl_tlog *log)
{
	return log->note;
}

int
enl_tlog_verify(const char *dir, const struct enl_note_verifier *v, size_t n_v,
		uint64_t *size, enl_mhash root, char *why, size_t why_cap)
{
	const struct enl_tlog_source src = {(void *)dir, enl_tlog_read_dir, NULL, NULL};
	struct enl_checkpoint cp;
	struct enl_tlog *log = NULL;
	int rc = enl_tlog_load(&src, v, n_v, &log, &cp, why, why_cap);

	if (rc == ENL_OK) {
		*size = cp.size;
		memcpy(root, cp.root, ENL_MERKLE_HASH_LEN);
	}
	enl_tlog_free(log);
	return rc;
}
