/* Names shared between the files of the keys library only. */
#ifndef ENLACE_KEYS_INT_H
#define ENLACE_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Country or organization code: 2 to 8 letters A-Z. */

struct enl_card;
struct Enlace__SignedCard;

/* Decodes and checks a SignedCard already parsed from the wire. */
int card_from_wire(const struct Enlace__SignedCard *sc, struct enl_card *c);

#endif
