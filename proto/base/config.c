#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>

#include "enlace/config.h"
#include "enlace/base.h"

#define MAX_KEYS 64

struct parse {
	const struct enl_cfg_key *keys;
	void *obj;
	const char *path;
	int line;		/* the line inih reads now */
	int err_line;		/* the line of err, the first key that is wrong */
	char err[512];
	unsigned char seen[MAX_KEYS];
	FILE *f;		/* the source: a file, or text from pos */
	const char *text;
	size_t pos;
};

/*
 * inih's reader, one line per call: counting them here gives the line of
 * each key, since inih reports only the first bad line and goes on past
 * it (a later error must not take the first one's place).
 */
static char *
read_line(char *buf, int cap, void *arg)
{
	struct parse *p = arg;
	size_t n = 0;

	if (cap < 2)
		return NULL;
	if (p->f != NULL) {
		if (fgets(buf, cap, p->f) == NULL)
			return NULL;
	} else {
		if (p->text[p->pos] == '\0')
			return NULL;
		while (n < (size_t)cap - 1 && p->text[p->pos] != '\0') {
			buf[n++] = p->text[p->pos++];
			if (buf[n - 1] == '\n')
				break;
		}
		buf[n] = '\0';
	}
	p->line++;
	return buf;
}

static void fault(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records what is wrong with the current key, unless something was before. */
static void
fault(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->err_line = p->line;
}

int
enl_config_number(const char *v, enum enl_cfg_type type, uint64_t *out)
{
	char *end;
	unsigned long long n;
	uint64_t mult = 1;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (type == ENL_CFG_BYTES) {
		if (strcmp(end, "K") == 0) mult = 1ull << 10;
		else if (strcmp(end, "M") == 0) mult = 1ull << 20;
		else if (strcmp(end, "G") == 0) mult = 1ull << 30;
		else if (*end != '\0') return -1;
	} else if (type == ENL_CFG_MS) {
		if (strcmp(end, "ms") == 0) mult = 1;
		else if (strcmp(end, "s") == 0) mult = 1000;
		else if (strcmp(end, "m") == 0) mult = 60000;
		else if (strcmp(end, "h") == 0) mult = 3600000;
		else if (strcmp(end, "d") == 0) mult = 86400000;
		else return -1;
	} else if (*end != '\0') {
		return -1;
	}
	if (n > UINT64_MAX / mult)
		return -1;
	*out = n * mult;
	return 0;
}

/* True if `v` is SCHEME://HOST:PORT, SCHEME one of the space-separated
 * `schemes`, HOST a name, an IPv4 address, [an IPv6 one] or empty (every
 * address, when listening), PORT 1 to 65535. */
static bool
addr_valid(const char *v, const char *schemes)
{
	const char *sep = strstr(v, "://"), *host, *colon;
	bool known = false;
	unsigned long port;
	char *end;

	if (sep == NULL)
		return false;
	for (const char *s = schemes; *s != '\0' && !known; s += strspn(s, " ")) {
		size_t n = strcspn(s, " ");
		known = n == (size_t)(sep - v) && strncmp(s, v, n) == 0;
		s += n;
	}
	host = sep + 3;
	if (!known)
		return false;
	if (*host == '[') {
		colon = strchr(host, ']');
		if (colon == NULL || colon == host + 1 || *++colon != ':')
			return false;
	} else {
		if ((colon = strrchr(host, ':')) == NULL)
			return false;
		for (const char *c = host; c < colon; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
				return false;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return false;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct enl_cfg_key *k;
	size_t i;
	uint64_t n;

	for (i = 0; p->keys[i].name != NULL; i++)
		if (strcmp(p->keys[i].section, section) == 0 &&
		    strcmp(p->keys[i].name, name) == 0)
			break;
	k = &p->keys[i];
	if (k->name == NULL) {
		fault(p, "unknown key '%s' in section [%s]", name, section);
		return 0;
	}
	if (p->seen[i]) {
		fault(p, "key '%s' given twice", name);
		return 0;
	}
	p->seen[i] = 1;
	if (k->type == ENL_CFG_STRING || k->type == ENL_CFG_ADDR) {
		if (strlen(value) >= k->size || value[0] == '\0') {
			fault(p, "key '%s': empty or longer than %zu bytes", name, k->size - 1);
			return 0;
		}
		if (k->type == ENL_CFG_ADDR && !addr_valid(value, k->schemes)) {
			fault(p, "key '%s': '%s' is not an address SCHEME://HOST:PORT (SCHEME one of: %s)",
			      name, value, k->schemes);
			return 0;
		}
		memcpy((char *)p->obj + k->offset, value, strlen(value) + 1);
		return 1;
	}
	if (enl_config_number(value, k->type, &n) != 0 || n < k->min || n > k->max) {
		fault(p, "key '%s': '%s' is not %s from %llu to %llu", name, value,
			 k->type == ENL_CFG_BYTES ? "a size (bytes, or with K, M, G)"
			 : k->type == ENL_CFG_MS ? "a duration (ms, s, m, h or d)"
						 : "a whole number",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		return 0;
	}
	if (k->type == ENL_CFG_BYTES)
		*(size_t *)(void *)((char *)p->obj + k->offset) = (size_t)n;
	else
		*(uint64_t *)(void *)((char *)p->obj + k->offset) = n;
	return 1;
}

static int
finish(struct parse *p, int line, const char *path, char *err, size_t err_cap)
{
	if (line == -1) {
		snprintf(err, err_cap, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (line == -2) {
		snprintf(err, err_cap, "%s: out of memory", path);
		return -1;
	}
	if (line > 0) {
		snprintf(err, err_cap, "%s:%d: %s", path, line, p->err_line == line
			 ? p->err : "not a 'key = value' line or a [section]");
		return -1;
	}
	for (size_t i = 0; p->keys[i].name != NULL; i++)
		if (p->keys[i].required && !p->seen[i]) {
			snprintf(err, err_cap, "%s: key '%s' in section [%s] is required", path,
				 p->keys[i].name, p->keys[i].section);
			return -1;
		}
	return 0;
}

int
enl_config_parse(const char *path, const struct enl_cfg_key *keys, void *obj, char *err,
		 size_t err_cap)
{
	struct parse p;
	int line;

	memset(&p, 0, sizeof(p));
	p.keys = keys;
	p.obj = obj;
	p.path = path;
	if ((p.f = fopen(path, "r")) == NULL)
		return finish(&p, -1, path, err, err_cap);
	line = ini_parse_stream(read_line, &p, handler, &p);
	fclose(p.f);
	return finish(&p, line, path, err, err_cap);
}

int
enl_config_parse_text(const char *text, const char *name, const struct enl_cfg_key *keys,
		      void *obj, char *err, size_t err_cap)
{
	struct parse p;

	memset(&p, 0, sizeof(p));
	p.keys = keys;
	p.obj = obj;
	p.path = name;
	p.text = text;
	return finish(&p, ini_parse_stream(read_line, &p, handler, &p), name, err, err_cap);
}
