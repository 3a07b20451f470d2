/* Names shared between the files of the proto library only. */
#ifndef ENLACE_PROTO_INT_H
#define ENLACE_PROTO_INT_H

#include <stdlib.h>

#include "enlace/proto.h"

/* Ed25519 secret key (64 bytes) of the current version, or NULL. */
const uint8_t *identity_current_sign_sk(const struct enl_identity *ident);

/* Opens a content key sealed to `version`'s X25519 key. */
int identity_unseal(const struct enl_identity *ident, uint32_t version,
		    const uint8_t *sealed, size_t len, uint8_t key[32]);

#endif
