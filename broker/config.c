#include <stddef.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "enlace/cli.h"
#include "enlace/config.h"

#define S(name, field, req) \
	{"broker", name, ENL_CFG_STRING, offsetof(struct broker_config, field), \
	 sizeof(((struct broker_config *)0)->field), req, 0, 0, NULL}
#define N(name, field, type, lo, hi) \
	{"broker", name, type, offsetof(struct broker_config, field), 0, 0, lo, hi, NULL}

#define A(name, field, req, schemes) \
	{"broker", name, ENL_CFG_ADDR, offsetof(struct broker_config, field), \
	 sizeof(((struct broker_config *)0)->field), req, 0, 0, schemes}

static const struct enl_cfg_key keys[] = {
	A("listen", listen, 1, "tcp tcp4 tcp6 tls+tcp"),
	A("log_listen", log_listen, 0, "http"),
	S("data_dir", data_dir, 1),
	S("key", key_dir, 1),
	S("passphrase_file", passphrase_file, 0),
	S("directory", directory, 1),
	S("authority_pub", authority_pub, 1),
	S("policy", policy, 1),
	N("max_payload", max_payload, ENL_CFG_BYTES, 1, (uint64_t)1 << 31),
	N("max_sessions", max_sessions, ENL_CFG_UINT, 1, 100000),
	N("max_sessions_per_agency", max_sessions_per_agency, ENL_CFG_UINT, 1, 100000),
	N("max_handshakes", max_handshakes, ENL_CFG_UINT, 1, 100000),
	N("max_handshakes_per_address", max_handshakes_per_address, ENL_CFG_UINT, 1, 100000),
	N("handshake_timeout", handshake_timeout_ms, ENL_CFG_MS, 100, 600000),
	N("contexts", contexts, ENL_CFG_UINT, 4, 100000),
	N("fetch_wait_max", fetch_wait_max_ms, ENL_CFG_MS, 0, 600000),
	N("fetch_batch", fetch_batch, ENL_CFG_UINT, 1, 10000),
	N("batch_max", batch_max, ENL_CFG_UINT, 1, 4096),
	N("consent_ttl", consent_ttl_ms, ENL_CFG_MS, 1000, (uint64_t)365 * 86400 * 1000),
	{NULL, NULL, 0, 0, 0, 0, 0, 0, NULL},
};

int
config_load(const char *path, struct broker_config *cfg, char *err, size_t cap)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_payload = ENL_DEFAULT_MAX_PAYLOAD;
	cfg->max_sessions = 1024;
	cfg->max_sessions_per_agency = 16;
	cfg->max_handshakes = 256;
	cfg->max_handshakes_per_address = 64;
	cfg->handshake_timeout_ms = 10000;
	cfg->contexts = 0;	/* 0: max_sessions + 16 */
	cfg->fetch_wait_max_ms = 30000;
	cfg->fetch_batch = 64;
	cfg->batch_max = 256;
	cfg->consent_ttl_ms = (uint64_t)7 * 86400 * 1000;
	if (enl_config_parse(path, keys, cfg, err, cap) != 0)
		return -1;
	if (cfg->contexts == 0)
		cfg->contexts = cfg->max_sessions + 16;
	return 0;
}

void
blog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	enl_logv("enlace-broker", fmt, ap);
	va_end(ap);
}
