#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/base.h"

static int
from_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return ENL_E_NOT_FOUND;
	case EEXIST:
		return ENL_E_EXISTS;
	case ENOSPC:
	case EDQUOT:
		return ENL_E_NO_SPACE;
	case EACCES:
	case EPERM:
	case EROFS:
		return ENL_E_PERMISSION;
	case ENOMEM:
		return ENL_E_NOMEM;
	default:
		return ENL_E_IO;
	}
}

/* Opens a regular file of at most `max` bytes; its size in *size. */
static int
open_regular(const char *path, size_t max, int *fd, size_t *size)
{
	struct stat st;
	int rc;

	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return from_errno(errno);
	if (fstat(*fd, &st) != 0)
		rc = from_errno(errno);
	else if (!S_ISREG(st.st_mode))
		rc = ENL_E_NOT_REGULAR;
	else if ((uint64_t)st.st_size > max)
		rc = ENL_E_TOO_LARGE;
	else {
		*size = (size_t)st.st_size;
		return ENL_OK;
	}
	close(*fd);
	*fd = -1;
	return rc;
}

/*
 * Files of DIRECT_MIN bytes or more (large envelopes: an outbox entry, a
 * broker's blob, an inbox entry) are written and read with O_DIRECT,
 * between the disk and memory of the process's own: they are written
 * once and read once or twice, and going through the page cache cost a
 * copy into pages the kernel had to find and fill (for 50 MiB on the
 * project's machines, 130 ms; the write with O_DIRECT takes 30). A file
 * system that does not take O_DIRECT (older tmpfs, say) gets ordinary
 * reads and writes.
 */
#define DIRECT_MIN ((size_t)1 << 20)
#define DIRECT_ALIGN ((size_t)4096)
#define DIRECT_CHUNK ((size_t)1 << 20)

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* Reads size bytes of fd into buf (DIRECT_ALIGN-aligned, with room for a
 * whole last block) with O_DIRECT; false if the file system refuses it,
 * and nothing read. */
static bool
read_direct(int fd, uint8_t *buf, size_t size, int *rc)
{
	int flags = fcntl(fd, F_GETFL);
	size_t got = 0;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) != 0)
		return false;
	*rc = ENL_OK;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, round_up(size - got, DIRECT_ALIGN), (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && got == 0) {
			fcntl(fd, F_SETFL, flags);
			return false;
		}
		if (n <= 0) {
			*rc = n < 0 ? from_errno(errno) : ENL_E_IO;
			break;
		}
		got += (size_t)n;
	}
	if (*rc == ENL_OK && got != size)
		*rc = ENL_E_IO;	/* it grew while read */
	return true;
}

int
enl_file_open(const char *path, size_t max, int *fd, size_t *size)
{
	return open_regular(path, max, fd, size);
}

/*
 * The first len bytes of fd into buf, which may be anywhere (a large
 * envelope straight into the message that carries it): with O_DIRECT
 * through an aligned buffer of DIRECT_CHUNK when len is DIRECT_MIN or
 * more, as enl_file_read reads, with ordinary reads otherwise or where
 * the file system refuses O_DIRECT.
 */
int
enl_file_read_into(int fd, uint8_t *buf, size_t len)
{
	int flags = fcntl(fd, F_GETFL);
	uint8_t *bounce = NULL;
	size_t got = 0;
	bool direct = false;
	int rc = ENL_OK;

	if (len >= DIRECT_MIN && flags >= 0 &&
	    posix_memalign((void **)&bounce, DIRECT_ALIGN, DIRECT_CHUNK) == 0)
		direct = fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
	while (got < len && rc == ENL_OK) {
		size_t want = len - got < DIRECT_CHUNK ? len - got : DIRECT_CHUNK;
		ssize_t n;
		if (direct) {
			n = pread(fd, bounce, round_up(want, DIRECT_ALIGN), (off_t)got);
			if (n < 0 && errno == EINVAL) {
				direct = false;	/* refused, or a short read left `got`
						 * unaligned: the ordinary way on */
				fcntl(fd, F_SETFL, flags);
				continue;
			}
			if (n > (ssize_t)want)
				n = (ssize_t)want;
			if (n > 0)
				memcpy(buf + got, bounce, (size_t)n);
		} else {
			n = pread(fd, buf + got, want, (off_t)got);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? from_errno(errno) : ENL_E_IO;	/* cut short */
		else
			got += (size_t)n;
	}
	if (direct)
		fcntl(fd, F_SETFL, flags);
	free(bounce);
	return rc;
}

int
enl_file_read(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	size_t got = 0, size = 0;
	int fd, rc;

	if ((rc = open_regular(path, max, &fd, &size)) != ENL_OK)
		return rc;
	if (size >= DIRECT_MIN) {
		void *p = NULL;
		if (posix_memalign(&p, DIRECT_ALIGN, round_up(size + 1, DIRECT_ALIGN)) != 0) {
			rc = ENL_E_NOMEM;
			goto out;
		}
		buf = p;
		if (read_direct(fd, buf, size, &rc)) {
			if (rc != ENL_OK)
				goto out;
			got = size;
		}
	} else if ((buf = malloc(size + 1)) == NULL) {
		rc = ENL_E_NOMEM;
		goto out;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? from_errno(errno) : ENL_E_IO;
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';	/* convenience for text files; not counted */
	*out = buf;
	*out_len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int
enl_file_map(const char *path, size_t max, const uint8_t **out, size_t *out_len)
{
	size_t size = 0;
	void *p;
	int fd, rc;

	if ((rc = open_regular(path, max, &fd, &size)) != ENL_OK)
		return rc;
	if (size == 0) {
		*out = (const uint8_t *)"";
		*out_len = 0;
	} else if ((p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) ==
		   MAP_FAILED) {
		rc = errno == ENOMEM ? ENL_E_NOMEM : ENL_E_IO;
	} else {
		*out = p;
		*out_len = size;
	}
	close(fd);
	return rc;
}

void
enl_file_unmap(const uint8_t *p, size_t len)
{
	if (p != NULL && len > 0)
		munmap((void *)(uintptr_t)p, len);
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return from_errno(errno);
		buf += n;
		len -= (size_t)n;
	}
	return ENL_OK;
}

/*
 * Writes buf with O_DIRECT, through an aligned bounce buffer (the last
 * block padded, then the file cut to len). False if the file system
 * refuses O_DIRECT before anything is written: the caller writes as
 * usual.
 */
static bool
write_direct(int fd, const uint8_t *buf, size_t len, int *rc)
{
	int flags = fcntl(fd, F_GETFL);
	uint8_t *bounce = NULL;
	void *p = NULL;
	size_t off = 0;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) != 0)
		return false;
	if (posix_memalign(&p, DIRECT_ALIGN, DIRECT_CHUNK) != 0) {
		fcntl(fd, F_SETFL, flags);
		return false;
	}
	bounce = p;
	*rc = ENL_OK;
	while (off < len) {
		size_t n = len - off < DIRECT_CHUNK ? len - off : DIRECT_CHUNK;
		size_t whole = round_up(n, DIRECT_ALIGN);
		ssize_t w;
		memcpy(bounce, buf + off, n);
		memset(bounce + n, 0, whole - n);
		do
			w = pwrite(fd, bounce, whole, (off_t)off);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno == EINVAL && off == 0) {
			free(bounce);
			fcntl(fd, F_SETFL, flags);
			return false;
		}
		if (w != (ssize_t)whole) {
			*rc = w < 0 ? from_errno(errno) : ENL_E_NO_SPACE;
			break;
		}
		off += n;
	}
	free(bounce);
	if (*rc == ENL_OK && ftruncate(fd, (off_t)len) != 0)
		*rc = from_errno(errno);
	return true;
}

int
enl_file_sync_parent(const char *path)
{
	char copy[4096];
	int fd, rc = ENL_OK;

	if (strlen(path) >= sizeof(copy))
		return ENL_E_INVAL;
	memcpy(copy, path, strlen(path) + 1);
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return from_errno(errno);
	if (fsync(fd) != 0)
		rc = from_errno(errno);
	close(fd);
	return rc;
}

int
enl_dir_lock(const char *dir, int *fd, long *holder)
{
	char path[4096], pid[32];
	int f, n;

	*holder = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/lock", dir) >= sizeof(path))
		return ENL_E_INVAL;
	if ((f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return from_errno(errno);
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t got = e == EWOULDBLOCK ? pread(f, pid, sizeof(pid) - 1, 0) : -1;
		if (got > 0) {
			pid[got] = '\0';
			*holder = strtol(pid, NULL, 10);
		}
		close(f);
		return e == EWOULDBLOCK ? ENL_E_EXISTS : from_errno(e);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
		int e = errno;
		close(f);
		return from_errno(e);
	}
	*fd = f;
	return ENL_OK;
}

/* Whether `name` is a temporary file of enl_file_write_at. */
static bool
is_tmp_name(const char *name)
{
	const char *t = strstr(name, ".tmp-");
	uint8_t raw[8];

	return t != NULL && t != name && strlen(t + 5) == 16 && enl_unhex(t + 5, raw, sizeof(raw));
}

int
enl_dir_sweep(const char *dir, size_t *removed)
{
	char path[4096];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return from_errno(errno);
	while ((e = readdir(d)) != NULL)
		if (is_tmp_name(e->d_name) &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path) &&
		    unlink(path) == 0)
			n++;
	closedir(d);
	if (removed != NULL)
		*removed = n;
	return ENL_OK;
}

int
enl_file_write(const char *path, const uint8_t *buf, size_t len, unsigned mode,
	       bool replace)
{
	return enl_file_write_at(path, buf, len, mode, replace, NULL);
}

int
enl_file_write_at(const char *path, const uint8_t *buf, size_t len, unsigned mode,
		  bool replace, const struct timespec *mtime)
{
	char tmp[4096];
	uint8_t rnd[8];
	char hex[17];
	int fd, rc;

	randombytes_buf(rnd, sizeof(rnd));
	enl_hex(rnd, sizeof(rnd), hex);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, hex) >= sizeof(tmp))
		return ENL_E_INVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return from_errno(errno);
	/* The umask must not widen nor narrow what was asked for. */
	rc = ENL_OK;
	if (len < DIRECT_MIN || !write_direct(fd, buf, len, &rc))
		rc = write_all(fd, buf, len);
	if (rc != ENL_OK) {
		close(fd);
		goto fail;
	}
	if (fchmod(fd, (mode_t)mode) != 0 ||
	    (mtime != NULL &&
	     futimens(fd, (const struct timespec[2]){{0, UTIME_OMIT}, *mtime}) != 0) ||
	    fsync(fd) != 0) {
		rc = from_errno(errno);
		close(fd);
		goto fail;
	}
	if (close(fd) != 0) {
		rc = from_errno(errno);
		goto fail;
	}
	if (replace) {
		if (rename(tmp, path) != 0) {
			rc = from_errno(errno);
			goto fail;
		}
	} else {
		/* link() refuses to replace: no window where both exist unseen. */
		if (link(tmp, path) != 0) {
			rc = from_errno(errno);
			goto fail;
		}
		unlink(tmp);
	}
	return enl_file_sync_parent(path);
fail:
	unlink(tmp);
	return rc;
}
