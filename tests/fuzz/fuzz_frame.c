/*
 * The broker's parsing of what arrives on the wire: a frame as a
 * handshake, as a sealed request on an open session, and the bytes of a
 * decrypted request; and a receipt, as an agent checks it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/session.h"
#include "agree.h"
#include "enlace/wire.h"
#include "touch.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct world w;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"OAS-BROKER", "AR-UIF"};
	static struct enl_session *client, *server;
	struct enl_session *s = NULL;
	Enlace__Request *req = NULL;
	uint8_t *welcome = NULL, *frame, nonce[32];
	const uint8_t *plain = NULL;
	size_t wlen = 0, plen = 0;
	uint64_t counter = 0;

	if (client == NULL && (enl_init() != ENL_OK || world_init(&w, ids, 2) != ENL_OK ||
			       world_session(&w, w.agency[1], WORLD_TIME, WORLD_TIME, &client,
					     &server) != ENL_OK))
		abort();
	if (enl_session_accept(w.agency[0], &w.kr, data, size, WORLD_TIME, NULL, nonce, &s,
			       &welcome, &wlen) == ENL_OK) {
		enl_session_free(s);
		free(welcome);
	}
	/* opened where it is, as the broker opens an nng message's body */
	if ((frame = malloc(size ? size : 1)) == NULL)
		abort();
	if (size)
		memcpy(frame, data, size);
	if (enl_session_open_request(server, frame, size, 1 << 20, &counter, &plain, &plen) ==
	    ENL_OK)
		touch(plain, plen);	/* every byte of it lies within the frame */
	free(frame);
	if (enl_pb_unpack(&enlace__request__descriptor, data, size, 1 << 20,
			  (ProtobufCMessage **)&req) == ENL_OK)
		protobuf_c_message_free_unpacked(&req->base, NULL);
	/* as the broker parses a request and an agent a response */
	lending_agrees(&enlace__request__descriptor, data, size);
	lending_agrees(&enlace__response__descriptor, data, size);
	/* a receipt, as the agent checks one it got or kept: its place in a
	 * batch and its signature, under the broker's key */
	{
		Enlace__SignedReceipt *r = NULL;
		uint8_t pk[32], enc[32];
		if (enl_pb_unpack(&enlace__signed_receipt__descriptor, data, size, 1 << 20,
				  (ProtobufCMessage **)&r) == ENL_OK) {
			if (enl_identity_public(w.agency[0], 1, pk, enc) != ENL_OK ||
			    enl_receipt_check_signature(r, pk) == ENL_OK)
				abort();	/* no input forges the broker's signature */
			protobuf_c_message_free_unpacked(&r->base, NULL);
		}
	}
	return 0;
}
