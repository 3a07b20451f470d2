/*
 * A deterministic little world for tests, fuzzers and vectors: an
 * authority and agencies whose keys derive from their ids, their cards,
 * and a signed directory of them.
 */
#ifndef ENLACE_TEST_WORLD_H
#define ENLACE_TEST_WORLD_H

#include "enlace/keys.h"

#define WORLD_MAX 64
#define WORLD_TIME ((int64_t)1790000000)	/* 2026-09-21 */

struct world {
	struct enl_identity *authority;
	size_t n;
	struct enl_identity *agency[WORLD_MAX];
	uint8_t *card[WORLD_MAX];
	size_t card_len[WORLD_MAX];
	uint8_t *dir;
	size_t dir_len;
	uint64_t serial;
	struct enl_directory *d;
	struct enl_keyring kr;
};

/* An identity for id whose version v keys derive from (id, v). */
int world_identity(const char *id, uint32_t versions, struct enl_identity **out);

/* Agencies (kind FIU, country = prefix) for ids, directory serial 1. */
int world_init(struct world *w, const char *const *ids, size_t n);

/* Re-signs the directory from the current identities (serial + 1),
 * with `revs` revoked. */
int world_rebuild(struct world *w, const struct enl_revocation *revs, size_t n_revs);

/* The identity of id, or NULL. */
struct enl_identity *world_find(struct world *w, const char *id);

/* A session between `agent` (its clock at agent_now) and agency[0], the
 * broker (at broker_now), checked against the world's directory. */
struct enl_session;
int world_session(struct world *w, const struct enl_identity *agent, int64_t agent_now,
		  int64_t broker_now, struct enl_session **client, struct enl_session **server);

void world_fini(struct world *w);

#endif
