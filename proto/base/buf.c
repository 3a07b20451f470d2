#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/base.h"

int
enl_vec_room_(void *vp, size_t n, size_t *cap, size_t max, size_t size, size_t k)
{
	size_t ncap;
	char *v;

	if (max == 0 || size == 0)
		abort();	/* every array gets its cap when it is made */
	if (k > max || n > max - k)
		return ENL_E_TOO_LARGE;
	if (n + k <= *cap)
		return ENL_OK;
	for (ncap = *cap ? *cap : 8; ncap < n + k; ncap = ncap > max / 2 ? max : 2 * ncap)
		;
	if (ncap > max)
		ncap = max;
	memcpy(&v, vp, sizeof(v));
	if (ncap > SIZE_MAX / size || (v = realloc(v, ncap * size)) == NULL)
		return ENL_E_NOMEM;
	memcpy(vp, &v, sizeof(v));
	*cap = ncap;
	return ENL_OK;
}

void *
enl_vec_push_(void *vp, size_t *n, size_t *cap, size_t max, size_t size)
{
	char *v;

	if (enl_vec_room_(vp, *n, cap, max, size, 1) != ENL_OK)
		return NULL;
	memcpy(&v, vp, sizeof(v));
	memset(v + *n * size, 0, size);
	return v + (*n)++ * size;
}

int
enl_buf_add(struct enl_buf *b, const void *p, size_t n)
{
	size_t ncap;
	char *np;

	if (b->max == 0)
		abort();
	if (n > b->max || b->len > b->max - n)
		return ENL_E_TOO_LARGE;
	if (b->p == NULL || b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 64;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		if ((np = realloc(b->p, ncap)) == NULL)
			return ENL_E_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return ENL_OK;
}

int
enl_buf_puts(struct enl_buf *b, const char *s)
{
	return enl_buf_add(b, s, strlen(s));
}

int
enl_buf_printf(struct enl_buf *b, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return ENL_E_INVAL;
	if ((size_t)n < sizeof(small))
		return enl_buf_add(b, small, (size_t)n);
	if ((size_t)n > b->max - b->len || b->len > b->max)
		return ENL_E_TOO_LARGE;
	if ((big = malloc((size_t)n + 1)) == NULL)
		return ENL_E_NOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = enl_buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

char *
enl_buf_take(struct enl_buf *b)
{
	char *p = b->p != NULL ? b->p : strdup("");

	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void
enl_buf_free(struct enl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
