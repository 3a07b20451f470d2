/*
 * enlace config: INI files (read with inih) checked against a keyword
 * table. An unknown section or key, a bad value or a missing required key
 * is an error that names the file, the line and the key.
 */
#ifndef ENLACE_CONFIG_H
#define ENLACE_CONFIG_H

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum enl_cfg_type {
	ENL_CFG_STRING,	/* char[size] */
	ENL_CFG_UINT,	/* uint64_t, decimal */
	ENL_CFG_BYTES,	/* size_t, decimal with an optional K, M or G suffix */
	ENL_CFG_MS,	/* uint64_t milliseconds: 250ms, 30s, 5m */
	ENL_CFG_ADDR,	/* char[size]: SCHEME://HOST:PORT, SCHEME one of `schemes` */
};

struct enl_cfg_key {
	const char *section, *name;
	enum enl_cfg_type type;
	size_t offset;		/* offsetof the field in the config struct */
	size_t size;		/* for strings: the buffer size */
	int required;
	uint64_t min, max;	/* for numbers */
	const char *schemes;	/* for addresses: the schemes allowed, space-separated */
};

/*
 * Parses `path` into `obj` by `keys` (terminated by a NULL name). Returns
 * 0, or -1 with a message in err ("FILE:LINE: key 'x': reason").
 */
int enl_config_parse(const char *path, const struct enl_cfg_key *keys, void *obj,
		     char *err, size_t err_cap);

/* One value of a number type (ENL_CFG_UINT, _BYTES, _MS) as the config
 * reads it (a duration: 250ms, 30s, 5m, 1h, 2d): 0, or -1 if it is not one. */
int enl_config_number(const char *v, enum enl_cfg_type type, uint64_t *out);

/* The same for text in memory; `name` stands for the file in messages. */
int enl_config_parse_text(const char *text, const char *name,
			  const struct enl_cfg_key *keys, void *obj, char *err,
			  size_t err_cap);

#endif
