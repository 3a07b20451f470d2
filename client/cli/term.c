/*
 * What other agencies wrote, on the terminal: escaped so that nothing in
 * it can pass for enlace's own output.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "enlace/config.h"
#include "enlace/keys.h"
#include "enlace/wire.h"

const char *
tline(struct tbuf *tb, const char *s)
{
	char *e, **slot;

	if (s == NULL)
		return "";
	if ((slot = enl_vec_push_(&tb->p, &tb->n, &tb->cap, TBUF_MAX, sizeof(*tb->p))) == NULL)
		return "(text not shown: out of memory)";
	if ((e = enl_term_escape(s, false)) == NULL) {
		tb->n--;
		return "(text not shown: out of memory)";
	}
	*slot = e;
	return e;
}

void
tbuf_free(struct tbuf *tb)
{
	for (size_t i = 0; i < tb->n; i++)
		free(tb->p[i]);
	free(tb->p);
	tb->p = NULL;
	tb->n = tb->cap = 0;
}

void
tbody(FILE *fp, const char *body)
{
	char *e = enl_term_escape(body != NULL ? body : "", true), *line, *nl;

	if (e == NULL) {
		fputs("  | (body not shown: out of memory)\n", fp);
		return;
	}
	for (line = e; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		fprintf(fp, "  | %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
		if (nl == NULL)
			break;
	}
	free(e);
}
