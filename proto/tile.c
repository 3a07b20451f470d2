/*
 * Tile paths of C2SP tlog-tiles, and the right edge of a growing tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "enlace/tlog.h"
#include "proto_int.h"

void
enl_tile_path(int level, uint64_t index, unsigned width, char out[ENL_TILE_PATH_MAX])
{
	char n[64] = "", part[8];
	uint64_t groups[8];
	int g = 0;
	size_t o;

	do {
		groups[g++] = index % 1000;
		index /= 1000;
	} while (index > 0);
	o = 0;
	for (int i = g - 1; i >= 0; i--)
		o += (size_t)snprintf(n + o, sizeof(n) - o, i ? "x%03u/" : "%03u",
				      (unsigned)groups[i]);
	part[0] = '\0';
	if (width > 0 && width < ENL_TILE_WIDTH)
		snprintf(part, sizeof(part), ".p/%u", width);
	if (level < 0)
		snprintf(out, ENL_TILE_PATH_MAX, "tile/entries/%s%s", n, part);
	else
		snprintf(out, ENL_TILE_PATH_MAX, "tile/%d/%s%s", level, n, part);
}

/* Up to `digits` decimal digits at *p, then `end`: moves past both. */
static bool
tile_number(const char **p, size_t digits, char end, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < digits && (*p)[i] >= '0' && (*p)[i] <= '9'; i++)
		v = v * 10 + (uint64_t)((*p)[i] - '0');
	if (i == 0 || (*p)[i] != end)
		return false;
	*p += i + (end != '\0');
	*out = v;
	return true;
}

bool
enl_tile_path_parse(const char *rel, int *level, uint64_t *index, unsigned *width)
{
	char again[ENL_TILE_PATH_MAX];
	const char *p = rel;
	uint64_t l = 0, n = 0, g, w = 0;
	int groups = 0;

	if (strnlen(rel, ENL_TILE_PATH_MAX) >= ENL_TILE_PATH_MAX || strncmp(p, "tile/", 5) != 0)
		return false;
	p += 5;
	if (strncmp(p, "entries/", 8) == 0) {
		p += 8;
		l = UINT64_MAX;
	} else if (!tile_number(&p, 2, '/', &l) || l >= ENL_TILE_LEVELS) {
		return false;
	}
	for (;;) {	/* x001/x234/067: 7 groups hold any uint64 */
		bool more = *p == 'x';
		if (++groups > 7 || (more && *++p == '\0'))
			return false;
		if (!tile_number(&p, 3, more ? '/' : (strchr(p, '.') ? '.' : '\0'), &g))
			return false;
		if (n > (UINT64_MAX - g) / 1000)
			return false;
		n = n * 1000 + g;
		if (!more)
			break;
	}
	if (p[-1] == '.' && (strncmp(p, "p/", 2) != 0 || (p += 2, !tile_number(&p, 3, '\0', &w)) ||
			     w == 0 || w >= ENL_TILE_WIDTH))
		return false;
	enl_tile_path(l == UINT64_MAX ? -1 : (int)l, n, (unsigned)w, again);
	if (strcmp(again, rel) != 0)	/* the one spelling enl_tile_path writes */
		return false;
	*level = l == UINT64_MAX ? -1 : (int)l;
	*index = n;
	*width = (unsigned)w;
	return true;
}

/* ---- the right edge of the tree ---- */

void
enl_tlog_tree_init(struct enl_tlog_tree *t)
{
	memset(t, 0, sizeof(*t));
}

/*
 * Appends a leaf, merging the aligned subtrees it completes, smallest
 * first: a merge to height h is the root of the aligned 2^h leaves that
 * end with this one, and is told to merged() (if not NULL). A merged()
 * that fails stops the merging there; the edge is then half merged.
 */
int
tlog_tree_append(struct enl_tlog_tree *t, const enl_mhash leaf,
	    int (*merged)(void *arg, unsigned h, const enl_mhash root), void *arg)
{
	int rc = ENL_OK;

	memcpy(t->stack[t->depth], leaf, ENL_MERKLE_HASH_LEN);
	t->height[t->depth++] = 0;
	while (rc == ENL_OK && t->depth >= 2 &&
	       t->height[t->depth - 1] == t->height[t->depth - 2]) {
		enl_merkle_node_hash(t->stack[t->depth - 2], t->stack[t->depth - 1],
				     t->stack[t->depth - 2]);
		t->height[t->depth - 2]++;
		t->depth--;
		if (merged != NULL)
			rc = merged(arg, t->height[t->depth - 1], t->stack[t->depth - 1]);
	}
	t->size++;
	return rc;
}

void
enl_tlog_tree_append(struct enl_tlog_tree *t, const enl_mhash leaf)
{
	(void)tlog_tree_append(t, leaf, NULL, NULL);
}

void
enl_tlog_tree_root(const struct enl_tlog_tree *t, enl_mhash out)
{
	if (t->depth == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	memcpy(out, t->stack[t->depth - 1], ENL_MERKLE_HASH_LEN);
	for (size_t i = t->depth - 1; i > 0; i--)
		enl_merkle_node_hash(t->stack[i - 1], out, out);
}
