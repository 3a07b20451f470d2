/* The agent's control socket: a frame as control_read takes it off the
 * connection, then the CtlRequest in it, as ctl_serve parses them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agree.h"
#include "control.h"
#include "enlace/proto.h"
#include "enlace/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Enlace__CtlRequest *req = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int sv[2];

	if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (size > 0 && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	if (control_read(sv[1], (size_t)1 << 20, &buf, &len) == ENL_OK) {
		if (enl_pb_unpack(&enlace__ctl_request__descriptor, buf, len, len,
				  (ProtobufCMessage **)&req) == ENL_OK)
			protobuf_c_message_free_unpacked(&req->base, NULL);
		lending_agrees(&enlace__ctl_request__descriptor, buf, len);
		free(buf);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
