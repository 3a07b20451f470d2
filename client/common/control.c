#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "control.h"
#include "enlace/proto.h"

static int
address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

int
control_listen(const char *path, int *fd)
{
	struct sockaddr_un sun;
	mode_t old;
	int s, rc, e;

	if (address(path, &sun) != 0)
		return -1;
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	unlink(path);
	old = umask(077);	/* 0600 from the start: no moment open to others */
	rc = bind(s, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || chmod(path, 0600) != 0 || listen(s, 64) != 0) {
		e = errno;
		close(s);
		errno = e;
		return -1;
	}
	*fd = s;
	return 0;
}

void
control_timeouts(int fd, int read_ms, int write_ms)
{
	struct timeval r = {read_ms / 1000, (read_ms % 1000) * 1000};
	struct timeval w = {write_ms / 1000, (write_ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &w, sizeof(w));
}

int
control_dial(const char *path, int timeout_ms, int *fd)
{
	struct sockaddr_un sun;
	int s, e;

	if (address(path, &sun) != 0)
		return -1;
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	control_timeouts(s, timeout_ms, timeout_ms);
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		e = errno;
		close(s);
		errno = e;
		return -1;
	}
	*fd = s;
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ENL_E_IO;
		p += w;
		n -= (size_t)w;
	}
	return ENL_OK;
}

/* ENL_OK, ENL_E_IO (errno), or ENL_E_MALFORMED at an early end. */
static int
read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ENL_E_IO;
		if (r == 0)
			return ENL_E_MALFORMED;
		p += r;
		n -= (size_t)r;
	}
	return ENL_OK;
}

/* Packs into the socket: small pieces gather in `stage`, large ones go
 * out from where they are. */
struct sink {
	ProtobufCBuffer base;
	int fd, rc;
	size_t n;
	uint8_t stage[64 * 1024];
};

static void
sink_flush(struct sink *s)
{
	if (s->rc == ENL_OK && s->n > 0)
		s->rc = write_all(s->fd, s->stage, s->n);
	s->n = 0;
}

static void
sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct sink *s = (struct sink *)b;

	if (s->rc != ENL_OK)
		return;
	if (len > sizeof(s->stage) - s->n) {
		sink_flush(s);
		if (len >= sizeof(s->stage) / 2) {
			s->rc = write_all(s->fd, data, len);
			return;
		}
	}
	memcpy(s->stage + s->n, data, len);
	s->n += len;
}

int
control_write_message(int fd, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	struct sink *s;
	int rc;

	if (len > UINT32_MAX)
		return ENL_E_TOO_LARGE;
	if ((s = malloc(sizeof(*s))) == NULL)
		return ENL_E_NOMEM;
	s->base.append = sink_append;
	s->fd = fd;
	s->rc = ENL_OK;
	s->stage[0] = (uint8_t)(len >> 24);
	s->stage[1] = (uint8_t)(len >> 16);
	s->stage[2] = (uint8_t)(len >> 8);
	s->stage[3] = (uint8_t)len;
	s->n = 4;
	if (protobuf_c_message_pack_to_buffer(m, &s->base) != len && s->rc == ENL_OK)
		s->rc = ENL_E_MALFORMED;
	sink_flush(s);
	rc = s->rc;
	free(s);
	return rc;
}

#define LARGE ((size_t)1 << 20)

int
control_read(int fd, size_t max, uint8_t **out, size_t *len)
{
	uint8_t head[4];
	uint8_t *buf;
	size_t n;
	int rc;

	if ((rc = read_all(fd, head, sizeof(head))) != ENL_OK)
		return rc;
	n = (size_t)head[0] << 24 | (size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3];
	if (n > max)
		return ENL_E_TOO_LARGE;
	/* A large request (an attachment) is taken in whole MiB: once freed,
	 * the agent's frame of the message made from it fits where it was,
	 * instead of taking fresh memory (it is a few hundred bytes larger). */
	if ((buf = malloc(n < LARGE ? (n ? n : 1) : (n + LARGE - 1) / LARGE * LARGE)) == NULL)
		return ENL_E_NOMEM;
	if ((rc = read_all(fd, buf, n)) != ENL_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return ENL_OK;
}
