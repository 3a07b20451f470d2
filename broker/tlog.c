/*
 * The broker's audit log: its journal (a file, or the store's table),
 * appends and commits, and checkpoints signed for receipts. The tree is
 * enlace/tlog.h's; publishing the tiles is tlog_publish.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/note.h"
#include "tlog_int.h"

/* What a journal may hold: 2^40 entries. */
#define JOURNAL_MAX ((size_t)1 << 40)

const struct enl_tlog *
tlog_tree(const struct tlog *log)
{
	return log->t;
}

uint64_t
tlog_size(const struct tlog *log)
{
	return enl_tlog_size(log->t);
}

uint64_t
tlog_committed(const struct tlog *log)
{
	return enl_tlog_committed(log->t);
}

uint64_t
tlog_published(const struct tlog *log)
{
	return log->published;
}

int
tlog_append(struct tlog *log, const uint8_t *entry, size_t len, uint64_t *index)
{
	int rc = enl_tlog_add(log->t, entry, len);

	if (rc == ENL_OK)
		*index = enl_tlog_size(log->t) - 1;
	return rc;
}

/* The entries appended since the last commit: n of them, from pend at
 * *off, which holds *len bytes in all. */
static const uint8_t *
uncommitted(const struct tlog *log, uint64_t *n, size_t *off, size_t *len)
{
	uint64_t first;
	const uint8_t *pend = enl_tlog_pend(log->t, &first, len, off);

	*n = enl_tlog_size(log->t) - enl_tlog_committed(log->t);
	return pend;
}

/* Hands the new entries to an external journal, in its transaction. */
static int
journal_append_ext(struct tlog *log)
{
	uint64_t n;
	size_t off, len;
	const uint8_t *pend = uncommitted(log, &n, &off, &len);
	const uint8_t **ents = calloc(n, sizeof(*ents));
	size_t *lens = calloc(n, sizeof(*lens));
	int rc = ENL_E_NOMEM;

	if (ents != NULL && lens != NULL) {
		for (uint64_t i = 0; i < n; i++) {
			lens[i] = (size_t)pend[off] << 8 | pend[off + 1];
			ents[i] = pend + off + 2;
			off += 2 + lens[i];
		}
		rc = log->jops->append(log->jops->ctx, enl_tlog_committed(log->t), ents, lens, n);
	}
	free(ents);
	free(lens);
	return rc;
}

/* The records of the entries appended since the last commit: big-endian
 * u32 length, the entry, BLAKE2b-128 of the entry (finds a torn tail). */
static int
journal_append(struct tlog *log)
{
	uint64_t n, committed = enl_tlog_committed(log->t);
	size_t off, o = 0, len;
	const uint8_t *pend = uncommitted(log, &n, &off, &len);
	uint8_t *buf;
	int rc;

	if (n == 0)
		return ENL_OK;
	if (log->jops != NULL)
		return journal_append_ext(log);
	if ((rc = enl_vec_reserve(&log->joff, n)) != ENL_OK)
		return rc;
	if ((buf = malloc((len - off) + n * (2 + 16))) == NULL)
		return ENL_E_NOMEM;
	for (uint64_t i = 0; i < n; i++) {
		size_t elen = (size_t)pend[off] << 8 | pend[off + 1];
		log->joff.v[committed + i] = log->jend + o;
		buf[o++] = 0;
		buf[o++] = 0;
		buf[o++] = pend[off];
		buf[o++] = pend[off + 1];
		memcpy(buf + o, pend + off + 2, elen);
		crypto_generichash(buf + o + elen, 16, pend + off + 2, elen, NULL, 0);
		o += elen + 16;
		off += 2 + elen;
	}
	if (pwrite(log->jfd, buf, o, (off_t)log->jend) != (ssize_t)o || fdatasync(log->jfd) != 0) {
		int e = errno;
		free(buf);
		/* whatever reached the file past jend is overwritten by the next try */
		return e == ENOSPC || e == EDQUOT ? ENL_E_NO_SPACE : ENL_E_IO;
	}
	free(buf);
	log->joff.n = committed + n;
	log->jend += o;
	return ENL_OK;
}

int
tlog_entry(const struct tlog *log, uint64_t index, uint8_t **out, size_t *len)
{
	uint8_t hdr[4];
	size_t n;

	if (index >= enl_tlog_committed(log->t))
		return ENL_E_INVAL;
	if (log->jops != NULL)
		return log->jops->get(log->jops->ctx, index, out, len);
	if (pread(log->jfd, hdr, 4, (off_t)log->joff.v[index]) != 4)
		return ENL_E_IO;
	n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (n > ENL_TLOG_ENTRY_MAX)
		return ENL_E_MALFORMED;
	if ((*out = malloc(n ? n : 1)) == NULL)
		return ENL_E_NOMEM;
	if (pread(log->jfd, *out, n, (off_t)log->joff.v[index] + 4) != (ssize_t)n) {
		free(*out);
		return ENL_E_IO;
	}
	*len = n;
	return ENL_OK;
}

int
tlog_commit(struct tlog *log, char **checkpoint)
{
	struct enl_tlog_mark m;
	int rc;

	if ((rc = journal_append(log)) != ENL_OK)
		return rc;
	enl_tlog_mark(log->t, &m);
	enl_tlog_commit_to(log->t, &m);
	/* Tiles are rewritten at most once a second: the journal is what
	 * makes entries durable, and opening publishes what is missing. An
	 * external journal is durable only once its owner commits, so then
	 * the owner publishes (tlog_publish_due). */
	if (log->jops == NULL && (int64_t)time(NULL) > log->published_at &&
	    (rc = tlog_publish(log)) != ENL_OK)
		return rc;
	if (checkpoint != NULL)
		return tlog_checkpoint(log, checkpoint);
	return ENL_OK;
}

int
tlog_stage(struct tlog *log)
{
	int rc;

	if (log->jops == NULL)
		return ENL_E_INVAL;
	if ((rc = journal_append(log)) != ENL_OK)
		return rc;
	log->staged = true;
	enl_tlog_mark(log->t, &log->staged_mark);
	return ENL_OK;
}

void
tlog_stage_done(struct tlog *log)
{
	if (!log->staged)
		return;
	enl_tlog_commit_to(log->t, &log->staged_mark);
	log->staged = false;
}

void
tlog_rollback(struct tlog *log)
{
	enl_tlog_rollback(log->t);
	log->staged = false;
}

int
tlog_checkpoint(struct tlog *log, char **checkpoint)
{
	uint64_t committed = enl_tlog_committed(log->t), *slot;
	enl_mhash root;
	int rc;

	if ((rc = enl_tlog_root(log->t, committed, root)) != ENL_OK ||
	    (rc = tlog_sign(log, committed, root, checkpoint)) != ENL_OK)
		return rc;
	/* handed out: its partial tiles are published with the next tiles
	 * (if the list is full, they go unpublished, and say so in no
	 * receipt's failure: the checkpoint itself is sound) */
	if (committed % ENL_TILE_WIDTH != 0 && committed > log->published &&
	    (log->handed.n == 0 || log->handed.v[log->handed.n - 1] != committed) &&
	    (slot = enl_vec_push(&log->handed)) != NULL)
		*slot = committed;
	return ENL_OK;
}

/* ---- opening: the journal read back, the checkpoint checked ---- */

/* Reads the journal: every whole record becomes a leaf; a torn or damaged
 * tail (a crash in the middle of an append) is cut off. */
static int
journal_load(struct tlog *log, char *why, size_t why_cap, uint8_t **data, size_t *data_len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0, off = 0;

	if (fstat(log->jfd, &st) != 0)
		return ENL_E_IO;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return ENL_E_NOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(log->jfd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0) {
			free(buf);
			return ENL_E_IO;
		}
		got += (size_t)n;
	}
	for (;;) {
		size_t n;
		uint8_t h[16];
		enl_mhash leaf;
		uint64_t *slot;
		int rc;
		if (got - off < 4)
			break;
		n = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 |
		    buf[off + 3];
		if (n > ENL_TLOG_ENTRY_MAX || got - off - 4 < n + 16)
			break;
		crypto_generichash(h, 16, buf + off + 4, n, NULL, 0);
		if (sodium_memcmp(h, buf + off + 4 + n, 16) != 0)
			break;
		enl_merkle_leaf_hash(buf + off + 4, n, leaf);
		if ((slot = enl_vec_push(&log->joff)) == NULL ||
		    (rc = enl_tlog_add_leaf(log->t, leaf)) != ENL_OK) {
			free(buf);
			return slot == NULL ? ENL_E_NOMEM : rc;
		}
		*slot = off;
		off += 4 + n + 16;
	}
	if (off < got) {
		snprintf(why, why_cap, "dropped a torn last write of %zu bytes",
			 got - off);
		if (ftruncate(log->jfd, (off_t)off) != 0 || fdatasync(log->jfd) != 0) {
			free(buf);
			return ENL_E_IO;
		}
	}
	log->jend = off;
	*data = buf;
	*data_len = off;
	return ENL_OK;
}

/* The entries of the bundles not yet published whole, back into pend:
 * from the journal file's bytes `j`, or from an external journal. */
static int
pend_fill(struct tlog *log, const uint8_t *j)
{
	uint64_t first = log->published - log->published % ENL_TILE_WIDTH;
	struct enl_tlog_mark m;
	int rc = ENL_OK;

	enl_tlog_pend_reset(log->t, first);
	for (uint64_t i = first; rc == ENL_OK && i < enl_tlog_size(log->t); i++) {
		uint8_t *e = NULL;
		size_t n = 0;
		if (j != NULL) {
			n = (size_t)j[log->joff.v[i] + 2] << 8 | j[log->joff.v[i] + 3];
			rc = enl_tlog_pend_add(log->t, j + log->joff.v[i] + 4, n);
		} else if ((rc = log->jops->get(log->jops->ctx, i, &e, &n)) == ENL_OK) {
			rc = enl_tlog_pend_add(log->t, e, n);
			free(e);
		}
	}
	enl_tlog_mark(log->t, &m);
	enl_tlog_commit_to(log->t, &m);
	return rc;
}

static int
ext_leaf(void *arg, const uint8_t *entry, size_t len)
{
	enl_mhash leaf;

	enl_merkle_leaf_hash(entry, len, leaf);
	return enl_tlog_add_leaf(arg, leaf);
}

/* A log with nothing in it yet. */
static struct tlog *
log_alloc(void)
{
	struct tlog *log = calloc(1, sizeof(*log));

	if (log == NULL)
		return NULL;
	if ((log->t = enl_tlog_new()) == NULL) {
		free(log);
		return NULL;
	}
	log->jfd = -1;
	log->joff.max = JOURNAL_MAX;
	log->handed.max = HANDED_MAX;
	pthread_mutex_init(&log->pub_mu, NULL);
	pthread_cond_init(&log->pub_cv, NULL);
	pthread_mutex_init(&log->file_mu, NULL);
	return log;
}

int
tlog_open(const char *dir, const char *origin, const struct enl_identity *signer,
	  struct tlog **out, char *why, size_t why_cap)
{
	return tlog_open_with(dir, origin, signer, NULL, out, why, why_cap);
}

/* The published checkpoint must be a state of the journal's tree. */
static int
checkpoint_matches(struct tlog *log, const struct enl_note_verifier *v, size_t n_v, char *why,
		   size_t why_cap)
{
	const struct enl_tlog_source src = {log->dir, enl_tlog_read_dir, NULL, NULL};
	struct enl_checkpoint cp;
	enl_mhash root;
	bool exists = false;
	int rc;

	memset(&cp, 0, sizeof(cp));
	if ((rc = enl_tlog_read_checkpoint(&src, v, n_v, &cp, &exists, why, why_cap)) != ENL_OK ||
	    !exists)
		return rc;
	if (cp.size > enl_tlog_size(log->t)) {
		snprintf(why, why_cap, "the checkpoint names %llu entries, more than the journal "
			 "holds", (unsigned long long)cp.size);
		return ENL_E_MALFORMED;
	}
	if ((rc = enl_tlog_root(log->t, cp.size, root)) != ENL_OK)
		return rc;
	if (sodium_memcmp(root, cp.root, ENL_MERKLE_HASH_LEN) != 0) {
		snprintf(why, why_cap, "the checkpoint of size %llu does not match the journal",
			 (unsigned long long)cp.size);
		return ENL_E_MALFORMED;
	}
	log->published = log->on_disk = cp.size;
	return ENL_OK;
}

int
tlog_open_with(const char *dir, const char *origin, const struct enl_identity *signer,
	       const struct tlog_journal *jops, struct tlog **out, char *why, size_t why_cap)
{
	struct enl_note_verifier v[ENL_MAX_KEY_VERSIONS];
	struct tlog *log;
	char path[2048];
	uint8_t epk[32], *journal = NULL;
	size_t jlen = 0, n_v = 0;
	int rc;

	if ((log = log_alloc()) == NULL)
		return ENL_E_NOMEM;
	log->jops = jops;
	snprintf(log->dir, sizeof(log->dir), "%s", dir);
	snprintf(log->origin, sizeof(log->origin), "%s", origin);
	log->signer = signer;
	why[0] = '\0';
	rc = ENL_E_IO;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		snprintf(why, why_cap, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	/* the checkpoint may have been signed by a version since retired */
	memset(v, 0, sizeof(v));
	for (; n_v < enl_identity_count(signer) && n_v < ENL_MAX_KEY_VERSIONS; n_v++) {
		snprintf(v[n_v].name, sizeof(v[n_v].name), "%s", origin);
		rc = enl_identity_public(signer, enl_identity_version_at(signer, n_v), v[n_v].pk, epk);
		if (rc != ENL_OK)
			goto fail;
	}
	if (jops != NULL) {
		if ((rc = jops->load(jops->ctx, ext_leaf, log->t)) != ENL_OK) {
			snprintf(why, why_cap, "the journal in the store cannot be read");
			goto fail;
		}
	} else {
		rc = ENL_E_IO;
		snprintf(path, sizeof(path), "%s/journal", dir);
		if ((log->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			snprintf(why, why_cap, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if ((rc = journal_load(log, why, why_cap, &journal, &jlen)) != ENL_OK)
			goto fail;
	}
	if ((rc = checkpoint_matches(log, v, n_v, why, why_cap)) != ENL_OK ||
	    (rc = pend_fill(log, journal)) != ENL_OK || (rc = tlog_publish(log)) != ENL_OK)
		goto fail;
	free(journal);
	*out = log;
	return ENL_OK;
fail:
	free(journal);
	tlog_close(log);
	return rc;
}

void
tlog_close(struct tlog *log)
{
	if (log == NULL)
		return;
	tlog_publish_stop(log);
	/* a clean stop leaves the tiles current (best effort: the journal
	 * has everything, and the next open publishes it anyway) */
	if ((log->jfd >= 0 || log->jops != NULL) && enl_tlog_committed(log->t) > log->published) {
		int rc = tlog_publish(log);
		(void)rc;
	}
	if (log->jfd >= 0)
		close(log->jfd);
	enl_vec_free(&log->joff);
	enl_vec_free(&log->handed);
	free(log->cosigs);
	enl_tlog_free(log->t);
	pthread_mutex_destroy(&log->pub_mu);
	pthread_cond_destroy(&log->pub_cv);
	pthread_mutex_destroy(&log->file_mu);
	free(log);
}
