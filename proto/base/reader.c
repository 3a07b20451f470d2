#include <string.h>

#include "enlace/base.h"

const uint8_t *
enl_rd_bytes(struct enl_reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (n > r->len)
		return NULL;
	r->p += n;
	r->len -= n;
	return p;
}

bool
enl_rd_u8(struct enl_reader *r, uint8_t *v)
{
	const uint8_t *p = enl_rd_bytes(r, 1);

	if (p != NULL)
		*v = p[0];
	return p != NULL;
}

bool
enl_rd_u32(struct enl_reader *r, uint32_t *v)
{
	const uint8_t *p = enl_rd_bytes(r, 4);

	if (p == NULL)
		return false;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return true;
}

bool
enl_rd_u64(struct enl_reader *r, uint64_t *v)
{
	uint32_t hi, lo;
	struct enl_reader save = *r;

	if (!enl_rd_u32(r, &hi) || !enl_rd_u32(r, &lo)) {
		*r = save;
		return false;
	}
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

uint8_t *
enl_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

uint8_t *
enl_put_u64(uint8_t *p, uint64_t v)
{
	return enl_put_u32(enl_put_u32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}
