#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/session.h"
#include "world.h"

static void
derive(const char *id, uint32_t v, const char *what, uint8_t out[32])
{
	char in[128];

	snprintf(in, sizeof(in), "enlace-test/%s/%u/%s", id, v, what);
	crypto_generichash(out, 32, (const uint8_t *)in, strlen(in), NULL, 0);
}

int
world_identity(const char *id, uint32_t versions, struct enl_identity **out)
{
	struct enl_key_secret ks;
	int rc;

	if ((rc = enl_identity_new(id, out)) != ENL_OK)
		return rc;
	for (uint32_t v = 1; v <= versions; v++) {
		memset(&ks, 0, sizeof(ks));
		ks.version = v;
		ks.retired = v < versions;
		derive(id, v, "sign", ks.sign_seed);
		derive(id, v, "enc", ks.enc_sk);
		if ((rc = enl_identity_add(*out, &ks)) != ENL_OK) {
			enl_identity_free(*out);
			*out = NULL;
			return rc;
		}
	}
	return ENL_OK;
}

struct enl_identity *
world_find(struct world *w, const char *id)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(enl_identity_id(w->agency[i]), id) == 0)
			return w->agency[i];
	return NULL;
}

int
world_rebuild(struct world *w, const struct enl_revocation *revs, size_t n_revs)
{
	struct enl_dir_check chk = {NULL, 0, 0};
	int rc;

	for (size_t i = 0; i < w->n; i++) {
		char cc[9];
		free(w->card[i]);
		w->card[i] = NULL;
		if (!enl_id_prefix(enl_identity_id(w->agency[i]), cc))
			return ENL_E_INVAL;
		rc = enl_card_make(w->agency[i], ENL_KIND_FIU, cc,
				   enl_identity_id(w->agency[i]), NULL, WORLD_TIME,
				   &w->card[i], &w->card_len[i]);
		if (rc != ENL_OK)
			return rc;
	}
	free(w->dir);
	w->dir = NULL;
	enl_directory_free(w->d);
	w->d = NULL;
	w->serial++;
	rc = enl_directory_build(w->authority, w->serial, WORLD_TIME,
				 WORLD_TIME + 86400 * 365,
				 (const uint8_t *const *)w->card, w->card_len, w->n,
				 revs, n_revs, &w->dir, &w->dir_len);
	if (rc != ENL_OK)
		return rc;
	if ((rc = enl_directory_parse(w->dir, w->dir_len, &chk, &w->d)) != ENL_OK)
		return rc;
	w->kr = enl_directory_keyring(w->d);
	return ENL_OK;
}

int
world_init(struct world *w, const char *const *ids, size_t n)
{
	int rc;

	memset(w, 0, sizeof(*w));
	if (n > WORLD_MAX)
		return ENL_E_INVAL;
	if ((rc = world_identity("ENLACE-AUTHORITY", 1, &w->authority)) != ENL_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = world_identity(ids[i], 1, &w->agency[i])) != ENL_OK)
			return rc;
		w->n = i + 1;
	}
	return world_rebuild(w, NULL, 0);
}

void
world_fini(struct world *w)
{
	for (size_t i = 0; i < w->n; i++) {
		enl_identity_free(w->agency[i]);
		free(w->card[i]);
	}
	enl_identity_free(w->authority);
	free(w->dir);
	enl_directory_free(w->d);
	memset(w, 0, sizeof(*w));
}

int
world_session(struct world *w, const struct enl_identity *agent, int64_t agent_now,
	      int64_t broker_now, struct enl_session **client, struct enl_session **server)
{
	struct enl_hello_state *st = NULL;
	uint8_t *hello = NULL, *welcome = NULL, nonce[32];
	size_t hlen = 0, wlen = 0;
	int rc;

	if ((rc = enl_session_hello(agent, agent_now, w->serial, &st, &hello, &hlen)) != ENL_OK)
		return rc;
	rc = enl_session_accept(w->agency[0], &w->kr, hello, hlen, broker_now, NULL, nonce,
				server, &welcome, &wlen);
	if (rc != ENL_OK) {
		enl_hello_state_free(st);
	} else if ((rc = enl_session_client_finish(st, welcome, wlen, &w->kr,
						   enl_identity_id(w->agency[0]), NULL, client,
						   NULL, 0)) != ENL_OK) {
		enl_session_free(*server);
		*server = NULL;
	}
	free(hello);
	free(welcome);
	return rc;
}
