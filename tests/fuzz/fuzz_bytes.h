/*
** fuzz_bytes.h: how the fuzz targets that describe their input (rather
** than parse it) read the fuzz bytes: header bytes taken modulo a range,
** a missing byte reading 0, and values of one byte each, (b - 120) / 16
** below 0xf0, else a special value (NaN, infinities, 0, +-1e30, ...);
** when the input is used up, a fixed varying sequence, so that a short
** input still describes a usable file.
*/
#ifndef FOVEA_FUZZ_BYTES_H
#define FOVEA_FUZZ_BYTES_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cursor {
	const uint8_t *p;
	size_t n, used;
	uint64_t fallback;
} cursor;

static inline unsigned byte(cursor *c)
{
	return c->used < c->n ? c->p[c->used++] : 0;
}

static inline int64_t pick(cursor *c, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(byte(c) % (unsigned)(hi - lo + 1));
}

static inline double value(cursor *c)
{
	static const double special[16] = {NAN, INFINITY, -INFINITY, 0, 1e30, -1e30, 1e-30, 3.5,
	                                   -0.0, 65504, 1e38, 1, 2, 0.5, 4, 8};
	if (c->used >= c->n)
		return (double)(c->fallback++ * 37 % 11) / 4.0;
	unsigned b = c->p[c->used++];
	return b < 0xf0 ? ((double)b - 120.0) / 16.0 : special[b & 15];
}

#endif /* FOVEA_FUZZ_BYTES_H */
