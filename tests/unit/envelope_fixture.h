/* What the envelope tests share: a world of 52 agencies and the helpers
 * that seal in it (test_envelope.c, test_envelope_rules.c). */
#ifndef ENLACE_TEST_ENVELOPE_FIXTURE_H
#define ENLACE_TEST_ENVELOPE_FIXTURE_H

#include "enlace/keys.h"
#include "enlace/wire.h"
#include "world.h"

#define NOW (WORLD_TIME + 100)

extern struct world w;
extern char ids[WORLD_MAX][ENL_ID_MAX + 1];
extern const char *id_ptrs[WORLD_MAX];

/* test_envelope.c */
void header_to(struct enl_header *h, const char *const *to, size_t n);
int seal_simple(const char *from, const char *const *to, size_t n, const char *body,
	    uint8_t **env, size_t *len);
int seal_raw_payload(const char *from, Enlace__Payload *pl, uint8_t **out, size_t *out_len);

/* test_envelope_rules.c */
void test_text_rules(void);
void test_rewrapped_original(void);
void test_text_escaped(void);
void test_revoked(void);
void test_rotation(void);
void test_forward_carries_original(void);

#endif
