/*
 * The agent's control socket framing (client/common/control.h): a frame
 * round trip over a real socket, a length over the reader's limit refused
 * before anything is allocated, a peer that closes mid-frame, and a
 * timeout on a peer that says nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "enlace/wire.h"
#include "harness.h"

static void
pair(int fd[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) != 0)
		abort();
	control_timeouts(fd[0], 2000, 2000);
	control_timeouts(fd[1], 2000, 2000);
}

static void
test_round_trip(void)
{
	Enlace__CtlRequest req = ENLACE__CTL_REQUEST__INIT, *back = NULL;
	uint8_t id[ENL_MSG_ID_LEN] = {1, 2, 3}, *buf = NULL;
	size_t len = 0;
	int fd[2];

	pair(fd);
	req.body_case = ENLACE__CTL_REQUEST__BODY_READ;
	req.read.data = id;
	req.read.len = sizeof(id);
	REQUIRE_OK(control_write_message(fd[0], &req.base));
	REQUIRE_OK(control_read(fd[1], 4096, &buf, &len));
	CHECK(len == protobuf_c_message_get_packed_size(&req.base));
	REQUIRE_OK(enl_pb_unpack(&enlace__ctl_request__descriptor, buf, len, 4096,
				 (ProtobufCMessage **)&back));
	CHECK(back->body_case == ENLACE__CTL_REQUEST__BODY_READ && back->read.len == sizeof(id) &&
	      memcmp(back->read.data, id, sizeof(id)) == 0);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(buf);
	close(fd[0]);
	close(fd[1]);
}

static void
test_over_the_limit(void)
{
	/* a length of 1 GiB, and nothing behind it: refused from the length */
	static const uint8_t hdr[4] = {0x40, 0, 0, 0};
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd[2];

	pair(fd);
	REQUIRE(write(fd[0], hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
	CHECK_RC(control_read(fd[1], 1 << 20, &buf, &len), ENL_E_TOO_LARGE);
	CHECK(buf == NULL);
	close(fd[0]);
	close(fd[1]);
}

static void
test_closed_within_the_frame(void)
{
	static const uint8_t part[6] = {0, 0, 0, 10, 'a', 'b'};
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd[2];

	pair(fd);
	REQUIRE(write(fd[0], part, sizeof(part)) == (ssize_t)sizeof(part));
	close(fd[0]);
	CHECK_RC(control_read(fd[1], 4096, &buf, &len), ENL_E_MALFORMED);
	CHECK(buf == NULL);
	close(fd[1]);
}

static void
test_silent_peer_times_out(void)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd[2];

	pair(fd);
	control_timeouts(fd[1], 100, 100);
	errno = 0;
	CHECK_RC(control_read(fd[1], 4096, &buf, &len), ENL_E_IO);
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	close(fd[0]);
	close(fd[1]);
}

int
main(void)
{
	if (enl_init() != ENL_OK)
		return 1;
	RUN(test_round_trip);
	RUN(test_over_the_limit);
	RUN(test_closed_within_the_frame);
	RUN(test_silent_peer_times_out);
	return harness_done();
}
