/*
 * A full disk, for the integration tests (LD_PRELOAD): while the file
 * named by ENLACE_DISKFULL_FLAG exists, every write to a file under the
 * folder ENLACE_DISKFULL_DIR fails with ENOSPC, as on a full file system.
 * Writes elsewhere (the process's log, sockets) go through. The process
 * under test is not changed: it meets the error where a full disk would
 * give it.
 *
 * While the file named by ENLACE_SLOWSYNC_FLAG exists, fsync and fdatasync
 * of a file under that folder take ENLACE_SLOWSYNC_MS longer (the wait
 * comes first), as on a slow disk: an answer that waits for its sync
 * comes that much later, one that does not comes at once.
 *
 * Likewise, while the file named by ENLACE_NOFDS_FLAG exists, accept and
 * accept4 fail with EMFILE, as in a process out of file descriptors; and
 * while ENLACE_NODIRECT is set, asking for O_DIRECT (open, fcntl) fails
 * with EINVAL, as on a file system without direct I/O.
 */
#undef _FILE_OFFSET_BITS	/* pwrite and pwrite64 are both defined here */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* fd is a regular file under ENLACE_DISKFULL_DIR, while the file named
 * by the environment variable `flag_var` exists */
static bool
under(int fd, const char *flag_var)
{
	const char *flag = getenv(flag_var);
	const char *dir = getenv("ENLACE_DISKFULL_DIR");
	char link[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;
	size_t dl;

	if (flag == NULL || dir == NULL || access(flag, F_OK) != 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) < 0)
		return false;
	path[n] = '\0';
	dl = strlen(dir);
	return strncmp(path, dir, dl) == 0 && (path[dl] == '/' || path[dl] == '\0');
}

static bool
full(int fd)
{
	return under(fd, "ENLACE_DISKFULL_FLAG");
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))
/* A write call's answer on a full disk: -1 with ENOSPC. */
#define FULL_FAILS(fd)                   \
	do {                             \
		if (full(fd)) {          \
			errno = ENOSPC;  \
			return -1;       \
		}                        \
	} while (0)

ssize_t
write(int fd, const void *buf, size_t len)
{
	FULL_FAILS(fd);
	return NEXT(write)(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	FULL_FAILS(fd);
	return NEXT(pwrite)(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	FULL_FAILS(fd);
	return NEXT(pwrite64)(fd, buf, len, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	FULL_FAILS(fd);
	return NEXT(writev)(fd, iov, n);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	FULL_FAILS(fd);
	return NEXT(fallocate)(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	FULL_FAILS(fd);
	return NEXT(fallocate64)(fd, mode, off, len);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
	if (full(fd))
		return ENOSPC;
	return NEXT(posix_fallocate)(fd, off, len);
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	if (full(fd))
		return ENOSPC;
	return NEXT(posix_fallocate64)(fd, off, len);
}

static bool
no_fds(void)
{
	const char *flag = getenv("ENLACE_NOFDS_FLAG");

	return flag != NULL && access(flag, F_OK) == 0;
}

int
accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (no_fds()) {
		errno = EMFILE;
		return -1;
	}
	return NEXT(accept)(fd, addr, len);
}

int
accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (no_fds()) {
		errno = EMFILE;
		return -1;
	}
	return NEXT(accept4)(fd, addr, len, flags);
}

static bool
no_direct(int flags)
{
	return (flags & O_DIRECT) != 0 && getenv("ENLACE_NODIRECT") != NULL;
}

/* open and open64: the mode is there only with O_CREAT or O_TMPFILE */
#define OPEN(name)                                                                  \
	int name(const char *path, int flags, ...)                                  \
	{                                                                           \
		mode_t mode = 0;                                                    \
		if (flags & O_CREAT || (flags & O_TMPFILE) == O_TMPFILE) {          \
			va_list ap;                                                 \
			va_start(ap, flags);                                        \
			mode = va_arg(ap, mode_t);                                  \
			va_end(ap);                                                 \
		}                                                                   \
		if (no_direct(flags)) {                                             \
			errno = EINVAL;                                             \
			return -1;                                                  \
		}                                                                   \
		return NEXT(name)(path, flags, mode);                               \
	}
OPEN(open)
OPEN(open64)

/* fcntl's third argument is an int or a pointer: passed on as it came */
#define FCNTL(name)                                                         \
	int name(int fd, int cmd, ...)                                      \
	{                                                                   \
		va_list ap;                                                 \
		void *arg;                                                  \
		va_start(ap, cmd);                                          \
		arg = va_arg(ap, void *);                                   \
		va_end(ap);                                                 \
		if (cmd == F_SETFL && no_direct((int)(intptr_t)arg)) {      \
			errno = EINVAL;                                     \
			return -1;                                          \
		}                                                           \
		return NEXT(name)(fd, cmd, arg);                            \
	}
FCNTL(fcntl)
FCNTL(fcntl64)

static void
slow_sync(int fd)
{
	const char *ms = getenv("ENLACE_SLOWSYNC_MS");

	if (ms != NULL && under(fd, "ENLACE_SLOWSYNC_FLAG"))
		usleep((useconds_t)strtoul(ms, NULL, 10) * 1000);
}

int
fsync(int fd)
{
	slow_sync(fd);
	return NEXT(fsync)(fd);
}

int
fdatasync(int fd)
{
	slow_sync(fd);
	return NEXT(fdatasync)(fd);
}
