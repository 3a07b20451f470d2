/*
 * Seal and open rates for 1 KiB and 1 MiB payloads to 1 and 10
 * recipients, beside the raw libsodium Ed25519 sign and verify rates and
 * the X25519 scalar multiplication that opening a sealed key costs, so
 * that the overhead of the format over its primitives reads as a ratio.
 *
 *   bench_envelope [SECONDS_PER_FIGURE]   (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "enlace/keys.h"
#include "world.h"
#include "clock.h"

static double seconds = 1.0;

/* Runs fn until `seconds` pass; returns operations per second. */
static double
rate(int (*fn)(void *), void *arg)
{
	double start = now_s(), t;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++)
			if (fn(arg) != 0) {
				fprintf(stderr, "operation failed\n");
				exit(1);
			}
		n += 16;
		t = now_s() - start;
	} while (t < seconds);
	return (double)n / t;
}

static uint8_t sign_pk[32], sign_sk[64], msg[32], sig[64];
static uint8_t x_sk[32], x_pk[32], x_out[32];

static int raw_sign(void *a) { (void)a; return crypto_sign_detached(sig, NULL, msg, 32, sign_sk); }
static int raw_verify(void *a) { (void)a; return crypto_sign_verify_detached(sig, msg, 32, sign_pk); }
static int raw_x25519(void *a) { (void)a; return crypto_scalarmult(x_out, x_sk, x_pk); }

struct job {
	struct world *w;
	size_t n_rcpt, size;
	struct enl_payload p;
	struct enl_attachment att;
	uint8_t *env;
	size_t env_len;
};

static int
do_seal(void *arg)
{
	struct job *j = arg;
	struct enl_limits lim = enl_limits_default();
	struct enl_header h;
	uint8_t *env = NULL;
	size_t len = 0;
	int rc;

	memset(&h, 0, sizeof(h));
	for (size_t i = 0; i < j->n_rcpt; i++)
		memcpy(h.recipients[i], enl_identity_id(j->w->agency[i + 1]),
		       strlen(enl_identity_id(j->w->agency[i + 1])) + 1);
	h.n_recipients = j->n_rcpt;
	h.type = ENL_MSG_CASE_MESSAGE;
	h.handling.tlp = ENL_TLP_AMBER;
	h.handling.onward = ENL_ONWARD_CONSENT;
	h.handling.evidential = ENL_EVID_INTELLIGENCE_ONLY;
	rc = enl_envelope_seal(j->w->agency[0], &j->w->kr, &lim, &h, &j->p, WORLD_TIME, &env, &len);
	if (j->env == NULL) {
		j->env = env;
		j->env_len = len;
	} else {
		free(env);
	}
	return rc;
}

static int
do_open(void *arg)
{
	struct job *j = arg;
	struct enl_limits lim = enl_limits_default();
	struct enl_message *m = NULL;
	int rc = enl_envelope_open(j->env, j->env_len, j->w->agency[1], &j->w->kr, &lim,
				   WORLD_TIME, &m);

	enl_message_free(m);
	return rc;
}

static int
do_verify(void *arg)
{
	struct job *j = arg;
	struct enl_limits lim = enl_limits_default();
	struct enl_header h;

	return enl_envelope_verify(j->env, j->env_len, &j->w->kr, &lim, WORLD_TIME, &h, NULL);
}

int
main(int argc, char **argv)
{
	static const char *ids[11];
	static char names[11][16];
	struct world w;
	double r_sign, r_verify, r_x;
	uint8_t *data;

	if (argc > 1)
		seconds = strtod(argv[1], NULL);
	if (enl_init() != ENL_OK)
		return 1;
	for (int i = 0; i < 11; i++) {
		snprintf(names[i], sizeof(names[i]), "AR-BENCH%02d", i);
		ids[i] = names[i];
	}
	if (world_init(&w, ids, 11) != ENL_OK)
		return 1;
	crypto_sign_keypair(sign_pk, sign_sk);
	randombytes_buf(msg, sizeof(msg));
	crypto_sign_detached(sig, NULL, msg, 32, sign_sk);
	crypto_box_keypair(x_pk, x_sk);
	r_sign = rate(raw_sign, NULL);
	r_verify = rate(raw_verify, NULL);
	r_x = rate(raw_x25519, NULL);
	printf("libsodium %s, %.1f s per figure\n", sodium_version_string(), seconds);
	printf("raw Ed25519 sign           %10.0f ops/s\n", r_sign);
	printf("raw Ed25519 verify         %10.0f ops/s\n", r_verify);
	printf("raw X25519 scalarmult      %10.0f ops/s\n\n", r_x);
	printf("%-8s %-6s %12s %12s %12s %9s %9s\n", "payload", "rcpts", "seal ops/s",
	       "open ops/s", "verify ops/s", "open/ver", "seal/sign");
	if ((data = malloc(1 << 20)) == NULL)
		return 1;
	randombytes_buf(data, 1 << 20);
	for (int s = 0; s < 2; s++) {
		for (int r = 0; r < 2; r++) {
			struct job j = {&w, r ? 10 : 1, s ? (size_t)1 << 20 : 1024, {0}, {0}, NULL, 0};
			double rs, ro, rv;
			j.att.name = "data.bin";
			j.att.data = data;
			j.att.len = j.size;
			j.p.subject = "bench";
			j.p.body = "";
			j.p.n_attachments = 1;
			j.p.attachments = &j.att;
			rs = rate(do_seal, &j);
			ro = rate(do_open, &j);
			rv = rate(do_verify, &j);
			printf("%-8s %-6zu %12.0f %12.0f %12.0f %8.0f%% %8.0f%%\n",
			       s ? "1 MiB" : "1 KiB", j.n_rcpt, rs, ro, rv,
			       100.0 * ro / r_verify, 100.0 * rs / r_sign);
			free(j.env);
		}
	}
	printf("\nopen/ver: open rate as a share of the raw verify rate (goal >= 80%% for\n"
	       "1 KiB, 1 recipient). Opening costs one Ed25519 verify plus one X25519\n"
	       "(the sealed content key) plus symmetric work.\n");
	free(data);
	world_fini(&w);
	return 0;
}
