#include <inttypes.h>
#include <stdio.h>

#include "enlace/base.h"

void
enl_json_init(struct enl_json *j, void *fp)
{
	j->fp = fp;
	j->depth = 0;
	j->need_comma[0] = false;
}

static void
quoted(FILE *fp, const char *s)
{
	enl_json_put_string(fp, s);
}

static void
key(struct enl_json *j, const char *k)
{
	FILE *fp = j->fp;

	if (j->need_comma[j->depth])
		fputc(',', fp);
	j->need_comma[j->depth] = true;
	if (k != NULL) {
		quoted(fp, k);
		fputc(':', fp);
	}
}

static void
open_(struct enl_json *j, const char *k, char c)
{
	key(j, k);
	fputc(c, (FILE *)j->fp);
	if (j->depth + 1 < (int)(sizeof(j->need_comma) / sizeof(j->need_comma[0])))
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void
close_(struct enl_json *j, char c)
{
	fputc(c, (FILE *)j->fp);
	if (j->depth > 0)
		j->depth--;
}

void enl_json_obj_begin(struct enl_json *j, const char *k) { open_(j, k, '{'); }
void enl_json_obj_end(struct enl_json *j) { close_(j, '}'); }
void enl_json_arr_begin(struct enl_json *j, const char *k) { open_(j, k, '['); }
void enl_json_arr_end(struct enl_json *j) { close_(j, ']'); }

void
enl_json_str(struct enl_json *j, const char *k, const char *v)
{
	key(j, k);
	quoted(j->fp, v);
}

void
enl_json_int(struct enl_json *j, const char *k, int64_t v)
{
	key(j, k);
	fprintf(j->fp, "%" PRId64, v);
}

void
enl_json_bool(struct enl_json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->fp);
}

void
enl_json_end(struct enl_json *j)
{
	fputc('\n', (FILE *)j->fp);
	fflush(j->fp);
}
