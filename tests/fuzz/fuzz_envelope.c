/* Envelope verification and opening, as a recipient in the test world. */
#include <stdint.h>
#include <stdlib.h>

#include "agree.h"
#include "enlace/keys.h"
#include "enlace/wire.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct world w;

/* The in-place parse of the ciphertext must accept what the copying
 * parse accepts, and nothing else. */
static void
parses_agree(const uint8_t *data, size_t size)
{
	ProtobufCMessage *a = NULL, *b = NULL;
	const uint8_t *ct;
	size_t ct_len;
	int ra = enl_pb_unpack(&enlace__envelope__descriptor, data, size, 1 << 21, &a);
	int rb = enl_pb_unpack_borrowing(&enlace__envelope__descriptor, data, size, 1 << 21, 4,
					 &b, &ct, &ct_len);

	if (ra != rb ||
	    (ra == ENL_OK && ct != NULL && ct_len != ((Enlace__Envelope *)a)->ciphertext.len))
		abort();
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	if (b != NULL)
		protobuf_c_message_free_unpacked(b, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"AR-UIF", "BR-PF"};
	static int ready;
	struct enl_limits lim = {1 << 20};
	struct enl_message *m = NULL;
	struct enl_header h;

	if (!ready) {
		if (enl_init() != ENL_OK || world_init(&w, ids, 2) != ENL_OK)
			abort();
		ready = 1;
	}
	parses_agree(data, size);
	lending_agrees(&enlace__payload__descriptor, data, size);
	if (enl_envelope_open(data, size, w.agency[1], &w.kr, &lim, WORLD_TIME + 61, &m) == ENL_OK)
		enl_message_free(m);
	if (enl_envelope_peek(data, size, &lim, &h) != ENL_OK)
		return 0;
	if (enl_envelope_verify(data, size, &w.kr, &lim, WORLD_TIME + 61, &h, NULL) != ENL_OK)
		return 0;
	return 0;
}
