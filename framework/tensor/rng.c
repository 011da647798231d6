/*
** rng.c: the context's random stream, xoshiro256** seeded by splitmix64.
** Seeded runs are repeatable; nothing here tries to reproduce torch's
** generator (parity tests load parameters instead of drawing them).
*/
#include <math.h>

#include "tensor/tensor_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void fv_ctx_seed(fv_ctx *ctx, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		ctx->rng[i] = splitmix64(&seed);
	ctx->have_spare_normal = false;
}

uint64_t fv_ctx_random_u64(fv_ctx *ctx)
{
	uint64_t *s = ctx->rng;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double fv_ctx_random_uniform(fv_ctx *ctx)
{
	return (double)(fv_ctx_random_u64(ctx) >> 11) * 0x1.0p-53;
}

/* Box-Muller; the second variate is kept for the next call. */
double fv_ctx_random_normal(fv_ctx *ctx)
{
	if (ctx->have_spare_normal) {
		ctx->have_spare_normal = false;
		return ctx->spare_normal;
	}
	double u1, u2;
	do
		u1 = fv_ctx_random_uniform(ctx);
	while (u1 <= 0.0);
	u2 = fv_ctx_random_uniform(ctx);
	double r = sqrt(-2.0 * log(u1));
	ctx->spare_normal = r * sin(2.0 * M_PI * u2);
	ctx->have_spare_normal = true;
	return r * cos(2.0 * M_PI * u2);
}
