/*
 * Publishing the audit log: the entry bundles, hash tiles and partial
 * tiles of every handed-out checkpoint, synced, then the signed checkpoint
 * file; on the appender's thread or on a thread of the log's own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "enlace/note.h"
#include "tlog_int.h"

/*
 * What one publication writes: the entries [first, size) as pend holds
 * them, and at each level L the hashes h[L] of indexes [base[L], n[L]).
 */
struct pub_view {
	uint64_t first, size;
	const uint8_t *pend;
	const enl_mhash *h[ENL_TILE_LEVELS];
	uint64_t base[ENL_TILE_LEVELS], n[ENL_TILE_LEVELS];
};

/* A publication handed to the publisher thread: its own copies. */
struct pub_job {
	struct pub_view v;
	uint64_t old;		/* what was published before */
	uint64_t *sizes;	/* checkpoints handed out in (old, v.size) */
	size_t n_sizes;
	enl_mhash root;
	uint8_t *pend;
	enl_mhash *h[ENL_TILE_LEVELS];
	size_t keep;		/* where pend_trim cuts, once it is done */
	int rc;
	bool done;
};

static int
mkdirs(const char *dir, const char *rel)
{
	char path[2048], *p;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return ENL_E_IO;
		*p = '/';
	}
	return ENL_OK;
}

static int
write_tile_file(const struct tlog *log, int level, uint64_t index, unsigned width,
		const uint8_t *buf, size_t len)
{
	char rel[ENL_TILE_PATH_MAX], path[2048];
	int rc;

	char tmp[2100];
	ssize_t n;
	int fd;

	enl_tile_path(level, index, width, rel);
	if ((rc = mkdirs(log->dir, rel)) != ENL_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", log->dir, rel);
	/* Not synced one by one: publish syncs them all at once before the
	 * checkpoint that names them. A tile's path is never rewritten with
	 * other bytes (a wider partial tile is a new path). */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return errno == ENOSPC ? ENL_E_NO_SPACE : ENL_E_IO;
	n = write(fd, buf, len);
	rc = n == (ssize_t)len ? ENL_OK : errno == ENOSPC ? ENL_E_NO_SPACE : ENL_E_IO;
	if (close(fd) != 0 && rc == ENL_OK)
		rc = ENL_E_IO;
	if (rc == ENL_OK && rename(tmp, path) != 0)
		rc = ENL_E_IO;
	if (rc != ENL_OK)
		unlink(tmp);
	return rc;
}

/* Writes the entry bundles that the view's entries touch; *keep is where
 * the entries of the bundle of `size` start (what pend keeps). */
static int
write_bundles(const struct tlog *log, const struct pub_view *v, size_t *keep)
{
	uint64_t i = v->first;	/* always at a bundle boundary */
	size_t off = 0, start_off = 0;
	int rc;

	while (i < v->size) {
		uint64_t b = i / ENL_TILE_WIDTH;
		uint64_t end = (b + 1) * ENL_TILE_WIDTH;
		start_off = off;
		for (; i < end && i < v->size; i++)
			off += 2 + ((size_t)v->pend[off] << 8 | v->pend[off + 1]);
		rc = write_tile_file(log, -1, b, (unsigned)(i % ENL_TILE_WIDTH), v->pend + start_off,
				     off - start_off);
		if (rc != ENL_OK)
			return rc;
	}
	*keep = v->size % ENL_TILE_WIDTH == 0 ? off : start_off;
	return ENL_OK;
}

/* Writes every hash tile that covers leaves from `from` on. */
static int
write_tiles(const struct tlog *log, const struct pub_view *v, uint64_t from)
{
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L), n = v->n[L];
		uint64_t first = from / span / ENL_TILE_WIDTH;
		if (n == 0)
			break;
		uint64_t had = from / span;	/* hashes at this level before */
		for (uint64_t t = first; t * ENL_TILE_WIDTH < n; t++) {
			uint64_t w = n - t * ENL_TILE_WIDTH;
			int rc;
			if (w > ENL_TILE_WIDTH)
				w = ENL_TILE_WIDTH;
			if (from > 0 && t == first && had > t * ENL_TILE_WIDTH &&
			    had - t * ENL_TILE_WIDTH == w)
				continue;	/* unchanged: already published */
			rc = write_tile_file(log, L, t, (unsigned)w,
					     (const uint8_t *)v->h[L][t * ENL_TILE_WIDTH - v->base[L]],
					     (size_t)w * ENL_MERKLE_HASH_LEN);
			if (rc != ENL_OK)
				return rc;
		}
	}
	return ENL_OK;
}

int
tlog_sign(const struct tlog *log, uint64_t size, const enl_mhash root, char **note)
{
	struct enl_checkpoint cp;
	char *body = NULL;
	int rc;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", log->origin);
	cp.size = size;
	memcpy(cp.root, root, ENL_MERKLE_HASH_LEN);
	if ((rc = enl_checkpoint_format(&cp, &body)) == ENL_OK)
		rc = enl_note_sign(log->signer, log->origin, body, note);
	free(body);
	return rc;
}

/* Writes `name` in the log's folder: the checkpoint of `size` and `root`
 * signed by the log, with the signature lines `lines` (may be NULL)
 * below. */
static int
write_note(const struct tlog *log, const char *name, uint64_t size, const enl_mhash root,
	   const char *lines)
{
	char *note = NULL, path[2048];
	int rc;

	if ((rc = tlog_sign(log, size, root, &note)) != ENL_OK)
		return rc;
	if (lines != NULL) {
		struct enl_buf full = ENL_BUF_INIT(2 * ENL_NOTE_MAX);
		rc = enl_buf_puts(&full, note);
		if (rc == ENL_OK)
			rc = enl_buf_puts(&full, lines);
		free(note);
		note = rc == ENL_OK ? enl_buf_take(&full) : NULL;
		enl_buf_free(&full);
		if (note == NULL)
			return rc != ENL_OK ? rc : ENL_E_NOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", log->dir, name);
	rc = enl_file_write(path, (const uint8_t *)note, strlen(note), 0644, true);
	free(note);
	return rc;
}

/* The checkpoint file for `size`, with the cosignature lines held for it
 * now (not when its publication began: one that came meanwhile would be
 * dropped until the log grows); with `if_current`, only if the file is of
 * that size already. */
static int
write_checkpoint(struct tlog *log, uint64_t size, const enl_mhash root, bool if_current)
{
	int rc = ENL_OK;

	pthread_mutex_lock(&log->file_mu);
	if (!if_current || (size == log->on_disk && size > 0)) {
		rc = write_note(log, "checkpoint", size, root,
				log->cosig_size == size ? log->cosigs : NULL);
		if (rc == ENL_OK)
			log->on_disk = size;
	}
	pthread_mutex_unlock(&log->file_mu);
	return rc;
}

int
tlog_set_cosignatures(struct tlog *log, uint64_t size, const char *lines)
{
	enl_mhash root;
	char *copy = NULL;
	int rc;

	if (size > enl_tlog_committed(log->t))
		return ENL_E_INVAL;
	if ((rc = enl_tlog_root(log->t, size, root)) != ENL_OK)
		return rc;
	if (lines != NULL && lines[0] != '\0' && (copy = strdup(lines)) == NULL)
		return ENL_E_NOMEM;
	pthread_mutex_lock(&log->file_mu);
	free(log->cosigs);
	log->cosigs = copy;
	log->cosig_size = size;
	pthread_mutex_unlock(&log->file_mu);
	/* the newest cosigned checkpoint stays available while the log grows */
	if (copy != NULL && (rc = write_note(log, "cosigned-checkpoint", size, root, copy)) != ENL_OK)
		return rc;
	return write_checkpoint(log, size, root, true);
}

/*
 * The partial tiles of the sizes handed out in (old, v->size) that the
 * tiles of v->size do not cover: within each level's last tile, which is
 * still partial, every narrower width a checkpoint named. (The entries a
 * bundle needs are in v->pend, from v->first, a bundle boundary.)
 */
static int
write_handed(const struct tlog *log, const struct pub_view *v, uint64_t old,
	     const uint64_t *sizes, size_t n)
{
	uint64_t done[ENL_TILE_LEVELS] = {0};	/* the widths written, as sizes come in order */
	uint64_t last = v->size / ENL_TILE_WIDTH;	/* the last, partial bundle */
	uint64_t e = v->first;	/* one walk through pend serves every size */
	size_t off = 0, start = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t s = sizes[i];
		int rc;
		if (s <= old || s >= v->size)
			continue;
		/* the entry bundle of s, if it is the last, partial one */
		if (s % ENL_TILE_WIDTH != 0 && s / ENL_TILE_WIDTH == last) {
			for (; e < s; e++) {
				if (e == last * ENL_TILE_WIDTH)
					start = off;
				off += 2 + ((size_t)v->pend[off] << 8 | v->pend[off + 1]);
			}
			rc = write_tile_file(log, -1, last, (unsigned)(s % ENL_TILE_WIDTH),
					     v->pend + start, off - start);
			if (rc != ENL_OK)
				return rc;
		}
		for (int L = 0; L < ENL_TILE_LEVELS; L++) {
			uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L);
			uint64_t ns = s / span, nv = v->size / span, t = ns / ENL_TILE_WIDTH;
			if (ns == 0)
				break;
			if (ns % ENL_TILE_WIDTH == 0 || t != nv / ENL_TILE_WIDTH || ns == done[L])
				continue;	/* full, covered by the full tile, or written */
			done[L] = ns;
			rc = write_tile_file(log, L, t, (unsigned)(ns % ENL_TILE_WIDTH),
					     (const uint8_t *)v->h[L][t * ENL_TILE_WIDTH - v->base[L]],
					     (size_t)(ns % ENL_TILE_WIDTH) * ENL_MERKLE_HASH_LEN);
			if (rc != ENL_OK)
				return rc;
		}
	}
	return ENL_OK;
}

/*
 * Removes every partial tile of (level, index), the full tile being
 * published. Until then each stays: a checkpoint may name it (C2SP
 * tlog-tiles: partial tiles are served for every checkpointed size, and
 * may go once the full tile is available).
 */
static void
remove_partials(const struct tlog *log, int level, uint64_t index)
{
	char rel[ENL_TILE_PATH_MAX], path[2048];
	struct dirent *e;
	DIR *d;

	enl_tile_path(level, index, 1, rel);
	*strrchr(rel, '/') = '\0';	/* tile/<L>/<N>.p */
	snprintf(path, sizeof(path), "%s/%s", log->dir, rel);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(path);
}

/* Writes the bundles, tiles and checkpoint of a view, `old` being the
 * size published before. On either thread. */
static int
publish_view(struct tlog *log, const struct pub_view *v, uint64_t old, const enl_mhash root,
	     const uint64_t *sizes, size_t n_sizes, size_t *keep)
{
	uint64_t now = v->size;
	int rc;

	if ((rc = write_bundles(log, v, keep)) != ENL_OK || (rc = write_tiles(log, v, old)) != ENL_OK ||
	    (rc = write_handed(log, v, old, sizes, n_sizes)) != ENL_OK)
		return rc;
	/* every new tile on disk before the checkpoint that names them */
	{
		int dfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return ENL_E_IO;
		rc = syncfs(dfd) == 0 ? ENL_OK : ENL_E_IO;
		close(dfd);
		if (rc != ENL_OK)
			return rc;
	}
	if ((rc = write_checkpoint(log, now, root, false)) != ENL_OK)
		return rc;
	/* the partials of a tile that is now full (they are on disk no
	 * longer than the full tile is, so a reader always finds one) */
	if (old / ENL_TILE_WIDTH != now / ENL_TILE_WIDTH)
		remove_partials(log, -1, old / ENL_TILE_WIDTH);
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t span = L == 0 ? 1 : (uint64_t)1 << (8 * L), o = old / span, n = now / span;
		if (o / ENL_TILE_WIDTH != n / ENL_TILE_WIDTH)
			remove_partials(log, L, o / ENL_TILE_WIDTH);
	}
	return ENL_OK;
}

static void
job_free(struct pub_job *j)
{
	if (j == NULL)
		return;
	free(j->pend);
	free(j->sizes);
	for (int L = 0; L < ENL_TILE_LEVELS; L++)
		free(j->h[L]);
	free(j);
}

/* A copy of what publishing everything committed needs. */
static struct pub_job *
job_make(struct tlog *log)
{
	uint64_t old = log->published, now = enl_tlog_committed(log->t), first;
	size_t len, committed_len;
	const uint8_t *pend = enl_tlog_pend(log->t, &first, &len, &committed_len);
	struct pub_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->old = old;
	j->v.first = first;
	j->v.size = now;
	/* pend holds the entries from its first on; the committed ones first */
	if ((j->pend = malloc(committed_len + 1)) == NULL)
		goto fail;
	if (committed_len > 0)
		memcpy(j->pend, pend, committed_len);
	j->v.pend = j->pend;
	for (int L = 0; L < ENL_TILE_LEVELS; L++) {
		uint64_t n = now >> (8 * L), have;
		uint64_t base = (old >> (8 * L)) / ENL_TILE_WIDTH * ENL_TILE_WIDTH;
		const enl_mhash *h = enl_tlog_level(log->t, L, &have);
		if (n == 0)
			break;
		if ((j->h[L] = malloc((size_t)(n - base) * sizeof(enl_mhash) + 1)) == NULL)
			goto fail;
		memcpy(j->h[L], h[base], (size_t)(n - base) * sizeof(enl_mhash));
		j->v.h[L] = (const enl_mhash *)j->h[L];
		j->v.base[L] = base;
		j->v.n[L] = n;
	}
	if (enl_tlog_root(log->t, now, j->root) != ENL_OK)
		goto fail;
	/* the handed-out sizes between: the job takes them (a size in the
	 * tile that now fills up needs none: the full tile serves it) */
	j->sizes = log->handed.v;
	j->n_sizes = log->handed.n;
	log->handed.v = NULL;
	log->handed.n = log->handed.cap = 0;
	return j;
fail:
	job_free(j);
	return NULL;
}

/* What a finished publication leaves: pend without what it published
 * whole, the published size. Frees the job. */
static int
job_apply(struct tlog *log, struct pub_job *j)
{
	int rc = j->rc;

	if (rc == ENL_OK) {
		enl_tlog_pend_trim(log->t, j->v.size, j->keep);
		log->published = j->v.size;
	}
	job_free(j);
	return rc;
}

/* Writes the bundles, tiles and checkpoint of everything committed, now,
 * on the appender's thread. */
int
tlog_publish(struct tlog *log)
{
	struct pub_job *j;
	int rc;

	if (enl_tlog_committed(log->t) == log->published && log->published > 0)
		return ENL_OK;
	if ((j = job_make(log)) == NULL)
		return ENL_E_NOMEM;
	j->rc = publish_view(log, &j->v, j->old, j->root, j->sizes, j->n_sizes, &j->keep);
	if ((rc = job_apply(log, j)) == ENL_OK)
		log->published_at = (int64_t)time(NULL);
	return rc;
}

/* ---- the publisher thread ---- */

static void *
publisher(void *arg)
{
	struct tlog *log = arg;

	pthread_mutex_lock(&log->pub_mu);
	for (;;) {
		struct pub_job *j = log->job;
		if (j != NULL && !j->done) {
			pthread_mutex_unlock(&log->pub_mu);
			j->rc = publish_view(log, &j->v, j->old, j->root, j->sizes, j->n_sizes, &j->keep);
			pthread_mutex_lock(&log->pub_mu);
			j->done = true;
			pthread_cond_broadcast(&log->pub_cv);
		} else if (log->pub_stop) {
			break;
		} else {
			pthread_cond_wait(&log->pub_cv, &log->pub_mu);
		}
	}
	pthread_mutex_unlock(&log->pub_mu);
	return NULL;
}

/* Takes in the publisher's finished job (waiting for it if `wait`):
 * what it published leaves pend. *busy: it is still at work. */
static int
job_collect(struct tlog *log, bool wait, bool *busy)
{
	struct pub_job *j;

	*busy = false;
	pthread_mutex_lock(&log->pub_mu);
	while (wait && log->job != NULL && !log->job->done)
		pthread_cond_wait(&log->pub_cv, &log->pub_mu);
	j = log->job;
	if (j != NULL && !j->done) {
		pthread_mutex_unlock(&log->pub_mu);
		*busy = true;
		return ENL_OK;
	}
	log->job = NULL;
	pthread_mutex_unlock(&log->pub_mu);
	return j == NULL ? ENL_OK : job_apply(log, j);
}

int
tlog_flush(struct tlog *log)
{
	bool busy;
	int rc = job_collect(log, true, &busy);

	return rc != ENL_OK ? rc : tlog_publish(log);
}

bool
tlog_publish_wanted(const struct tlog *log)
{
	return (int64_t)time(NULL) > log->published_at && enl_tlog_committed(log->t) != log->published;
}

int
tlog_publish_due(struct tlog *log)
{
	struct pub_job *j;
	bool busy;
	int rc = job_collect(log, false, &busy);

	if (busy || !tlog_publish_wanted(log))
		return rc;
	log->published_at = (int64_t)time(NULL);
	if (!log->pub_running) {
		if (pthread_create(&log->pub_thread, NULL, publisher, log) != 0)
			return tlog_publish(log);	/* no thread: on this one */
		pthread_setname_np(log->pub_thread, "enl:tiles");
		log->pub_running = true;
	}
	if ((j = job_make(log)) == NULL)
		return ENL_E_NOMEM;
	pthread_mutex_lock(&log->pub_mu);
	log->job = j;
	pthread_cond_broadcast(&log->pub_cv);
	pthread_mutex_unlock(&log->pub_mu);
	return rc;
}

void
tlog_publish_stop(struct tlog *log)
{
	bool busy;
	int rc;

	if (log->pub_running) {
		pthread_mutex_lock(&log->pub_mu);
		log->pub_stop = true;
		pthread_cond_broadcast(&log->pub_cv);
		pthread_mutex_unlock(&log->pub_mu);
		pthread_join(log->pub_thread, NULL);
		log->pub_running = false;
	}
	/* a last job that failed is written again by the caller */
	rc = job_collect(log, true, &busy);
	(void)rc;
}
