/*
 * The agent's spool on disk: paths, durable moves, counts, the log line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>

#include "agent.h"
#include "conn.h"
#include "control.h"
#include "enlace/cli.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/merkle.h"
#include "enlace/note.h"
#include "enlace/tlog.h"
#include "enlace/wire.h"

void
alog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enl_logv("enlace-agent", fmt, ap);
	va_end(ap);
}

void
spool_path(const struct agent *a, char *out, size_t cap, const char *sub, const char *name)
{
	snprintf(out, cap, "%s/%s/%s", a->cfg.spool, sub, name);
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Moves spool/from/name to spool/to/name durably. */
int
spool_move(const struct agent *a, const char *from, const char *to, const char *name)
{
	char src[2048], dst[2048], d1[1100], d2[1100];

	spool_path(a, src, sizeof(src), from, name);
	spool_path(a, dst, sizeof(dst), to, name);
	snprintf(d1, sizeof(d1), "%s/%s", a->cfg.spool, from);
	snprintf(d2, sizeof(d2), "%s/%s", a->cfg.spool, to);
	if (rename(src, dst) != 0 || fsync_dir(d2) != 0 || fsync_dir(d1) != 0)
		return ENL_E_IO;
	return ENL_OK;
}

size_t
count_files(const struct agent *a, const char *sub, const char *suffix)
{
	char dir[1100];
	struct dirent *e;
	size_t n = 0, sl = strlen(suffix);
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", a->cfg.spool, sub);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0 &&
		    strstr(e->d_name, ".tmp-") == NULL)
			n++;
	}
	closedir(d);
	return n;
}
