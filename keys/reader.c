#include <string.h>

#include "enlace/keys.h"
#include "keys_int.h"

const uint8_t *
rd_bytes(struct reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (n > r->len)
		return NULL;
	r->p += n;
	r->len -= n;
	return p;
}

bool
rd_u8(struct reader *r, uint8_t *v)
{
	const uint8_t *p = rd_bytes(r, 1);

	if (p != NULL)
		*v = p[0];
	return p != NULL;
}

bool
rd_u32(struct reader *r, uint32_t *v)
{
	const uint8_t *p = rd_bytes(r, 4);

	if (p == NULL)
		return false;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return true;
}

bool
rd_u64(struct reader *r, uint64_t *v)
{
	uint32_t hi, lo;
	struct reader save = *r;

	if (!rd_u32(r, &hi) || !rd_u32(r, &lo)) {
		*r = save;
		return false;
	}
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
	return put_u32(put_u32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

bool
enl_country_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}
