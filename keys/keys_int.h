/* Names shared between the files of the keys library only. */
#ifndef ENLACE_KEYS_INT_H
#define ENLACE_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bounds-checked reader over untrusted bytes: every read either takes
 * what it asks for or fails and leaves the reader where it was. */
struct reader {
	const uint8_t *p;
	size_t len;
};

const uint8_t *rd_bytes(struct reader *r, size_t n);
bool rd_u8(struct reader *r, uint8_t *v);
bool rd_u32(struct reader *r, uint32_t *v);	/* big-endian */
bool rd_u64(struct reader *r, uint64_t *v);	/* big-endian */

uint8_t *put_u32(uint8_t *p, uint32_t v);
uint8_t *put_u64(uint8_t *p, uint64_t v);

/* Country or organization code: 2 to 8 letters A-Z. */

struct enl_card;
struct Enlace__SignedCard;

/* Decodes and checks a SignedCard already parsed from the wire. */
int card_from_wire(const struct Enlace__SignedCard *sc, struct enl_card *c);

#endif
