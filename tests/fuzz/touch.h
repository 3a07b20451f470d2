/*
 * Reads every byte of p[0..n): under ASan, a pointer that the parser
 * hands back outside the buffer it was given is caught here.
 */
#ifndef ENLACE_FUZZ_TOUCH_H
#define ENLACE_FUZZ_TOUCH_H

#include <stddef.h>
#include <stdint.h>

static inline void
touch(const uint8_t *p, size_t n)
{
	volatile uint8_t x = 0;

	for (size_t i = 0; i < n; i++)
		x ^= p[i];
	(void)x;
}

#endif
