/*
** sep_avx512.c: the AVX-512 kernels of the separable conv3d, chosen at run
** time (sep_geom.avx512) like the AVX2 ones, with a function-level target so
** that the library needs no AVX-512 to build or to run elsewhere.
**
** The broadcast pass (the spatial pass of the space-first order) with 16
** output channels a vector: one 512-bit weight row per tap and the input
** value broadcast by the FMA itself, SEP512_ITEMS pixels a block, the 32
** registers holding the sums.  Each channel's sum runs over the taps in the
** same order with the same fused multiply-adds as the AVX2 kernel, so the
** results are equal bit for bit.
**
** FV_CONV_AVX512=0 in the environment keeps the AVX2 kernels (the tests
** compare the two; read for every call).
*/
#include <stdlib.h>
#include <string.h>

#include "tensor/conv/conv_separable.h"

#ifdef SEP_AVX2
#define AVX512_FN __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define SEP512_ITEMS 8

bool fv__sep_avx512_wanted(void)
{
	const char *env = getenv("FV_CONV_AVX512");
	if (env != NULL && strcmp(env, "0") == 0)
		return false;
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

/* d[j] (16 channels: 8 at d[j], 8 at d[j] + half) = sum_k p[j][off[k]] *
** w[k * ldw]. */
/* x[0] in every lane, read by the broadcast instruction itself, as the AVX2
** kernels' _mm256_broadcast_ss does: x may lack a float's alignment (a
** caller's array viewed at any byte offset). */
AVX512_FN
static inline __m512 bcast(const float *x)
{
	return _mm512_broadcastss_ps(_mm_broadcast_ss(x));
}

AVX512_FN
static void spatial_block(const float *const *p, const int64_t *off, int64_t taps,
                          const float *w, int64_t ldw, float *const *d, int64_t half)
{
	__m512 a[SEP512_ITEMS];
	const float *q[SEP512_ITEMS];
#pragma GCC unroll 16
	for (int j = 0; j < SEP512_ITEMS; j++) {
		a[j] = _mm512_setzero_ps();
		q[j] = p[j];
	}
	for (int64_t k = 0; k < taps; k++, w += ldw) {
		__m512 wv = _mm512_loadu_ps(w);
		int64_t o = off[k];
#pragma GCC unroll 16
		for (int j = 0; j < SEP512_ITEMS; j++) /* a caller's array may be misaligned: */
			a[j] = _mm512_fmadd_ps(bcast(q[j] + o), wv, a[j]); /* no float deref */
	}
#pragma GCC unroll 16
	for (int j = 0; j < SEP512_ITEMS; j++) {
		__m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[j]), 1));
		_mm256_storeu_ps(d[j], _mm512_castps512_ps256(a[j]));
		_mm256_storeu_ps(d[j] + half, hi);
	}
}

void fv__sep_bcast_pass_avx512(const sep_geom *g, const sep_bcast *bc, const float *P,
                               const float *w, float *S)
{
	const int64_t op = g->op, n = bc->items;
	for (int64_t q = 0; q < n; q += SEP512_ITEMS) {
		const float *p[SEP512_ITEMS];
		float *d[SEP512_ITEMS];
		/* a short last block repeats its last item: stored twice, the same */
		for (int j = 0; j < SEP512_ITEMS; j++) {
			int64_t qj = q + j < n ? q + j : n - 1;
			p[j] = P + bc->src_at[qj];
			d[j] = S + bc->dst_at[qj];
		}
		for (int64_t ov = 0; ov < op; ov += 16) {
			spatial_block(p, bc->off, bc->taps, w + ov, op, d, 8 * bc->nt);
			for (int j = 0; j < SEP512_ITEMS; j++)
				d[j] += 16 * bc->nt;
		}
	}
}
#else
bool fv__sep_avx512_wanted(void)
{
	return false;
}
#endif
