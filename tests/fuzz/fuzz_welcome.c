/*
 * The agent's parsing of what the broker sends back: a frame as the
 * answer to its hello (a welcome, perhaps with a directory attached, or a
 * refusal), as a sealed reply on an open session, and the bytes of a
 * decrypted response.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/session.h"
#include "enlace/wire.h"
#include "touch.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct world w;

/* An agent that takes no directory: the keyring stays. */
static void
take(void *arg, const uint8_t *dir, size_t len, struct enl_keyring *kr)
{
	(void)arg;
	(void)dir;
	(void)len;
	(void)kr;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"OAS-BROKER", "AR-UIF"};
	static const struct enl_offered_directory od = {take, NULL, 1 << 20};
	static struct enl_session *client, *server;
	struct enl_hello_state *st = NULL;
	struct enl_session *c = NULL;
	Enlace__Response *resp = NULL;
	uint8_t *hello = NULL, *frame;
	const uint8_t *plain = NULL;
	size_t hlen = 0, plen = 0;
	char reason[200];

	if (client == NULL && (enl_init() != ENL_OK || world_init(&w, ids, 2) != ENL_OK ||
			       world_session(&w, w.agency[1], WORLD_TIME, WORLD_TIME, &client,
					     &server) != ENL_OK))
		abort();
	if (enl_session_hello(w.agency[1], WORLD_TIME, 1, &st, &hello, &hlen) != ENL_OK)
		abort();
	free(hello);
	if (enl_session_client_finish(st, data, size, &w.kr, "OAS-BROKER", &od, &c, reason,
				      sizeof(reason)) == ENL_OK)
		enl_session_free(c);
	if ((frame = malloc(size ? size : 1)) == NULL)
		abort();
	if (size)
		memcpy(frame, data, size);
	if (enl_session_open_reply(client, frame, size, 1 << 20, &plain, &plen) == ENL_OK)
		touch(plain, plen);	/* every byte of it lies within the frame */
	free(frame);
	if (enl_pb_unpack(&enlace__response__descriptor, data, size, 1 << 20,
			  (ProtobufCMessage **)&resp) == ENL_OK)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}
