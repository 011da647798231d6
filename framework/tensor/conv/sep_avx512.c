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

/* ---- the weight gradient of a broadcast pass (fv__sep_tap_grad) ----
** A block of up to TG512_MAX taps (one zmm of sums each, 16 channels)
** against one 16-channel vector of dS per pixel and frame: twice the taps
** of the AVX2 kernel's 12 ymm sums for the same loads of dS, and the
** broadcasts of P each feed 16 lanes.  Each channel's sum runs over the
** pixels and frames in the same order, in the same groups of pixels, with
** the same fused multiply-adds: equal bit for bit to the AVX2 kernel. */
#define TG512_MAX 12

/* The 16 channels of dS at d: 8 at d, 8 at d + half. */
AVX512_FN
static inline __m512 load_halves(const float *d, int64_t half)
{
	__m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(d)));
	return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(d + half)), 1));
}

/* sums[j] (16 channels) += sum_{p < pixels, t < n} P[base[p * n + t] + o[j]]
** * dS(p, t) for the N taps j; dS(p, t) at dS + p * stride + 8 * t. */
AVX512_FN __attribute__((always_inline))
static inline void tap_grad_n(int N, const int64_t *o, const float *P, const int64_t *base,
                              const float *dS, int64_t half, int64_t n, int64_t pixels,
                              int64_t stride, float *sums)
{
	__m512 a[TG512_MAX];
	int64_t oj[TG512_MAX];
#pragma GCC unroll 16
	for (int j = 0; j < N; j++) {
		a[j] = _mm512_setzero_ps();
		oj[j] = o[j];
	}
	for (int64_t p = 0; p < pixels; p++, dS += stride - 8 * n)
		for (int64_t t = 0; t < n; t++, dS += 8) {
			__m512 dv = load_halves(dS, half);
			const float *pq = P + *base++;
#pragma GCC unroll 16
			for (int j = 0; j < N; j++)
				a[j] = _mm512_fmadd_ps(bcast(pq + oj[j]), dv, a[j]);
		}
#pragma GCC unroll 16
	for (int j = 0; j < N; j++)
		_mm512_storeu_ps(sums + 16 * j, _mm512_add_ps(_mm512_loadu_ps(sums + 16 * j), a[j]));
}

#define TAP_GRAD_KERNEL(N)                                                                  \
	AVX512_FN static void tap_grad_##N(const int64_t *o, const float *P, const int64_t *base, \
	                                   const float *dS, int64_t half, int64_t n,            \
	                                   int64_t pixels, int64_t stride, float *sums)          \
	{                                                                                         \
		tap_grad_n(N, o, P, base, dS, half, n, pixels, stride, sums);                     \
	}
TAP_GRAD_KERNEL(8)
TAP_GRAD_KERNEL(9)
TAP_GRAD_KERNEL(10)
TAP_GRAD_KERNEL(11)
TAP_GRAD_KERNEL(12)

typedef void tap_grad_fn(const int64_t *, const float *, const int64_t *, const float *, int64_t,
                         int64_t, int64_t, int64_t, float *);

/* The kernel for blocks of `items` taps (8 to 12). */
static tap_grad_fn *tap_grad_kernel(int items)
{
	static tap_grad_fn *const kernels[] = {tap_grad_8, tap_grad_9, tap_grad_10, tap_grad_11,
	                                       tap_grad_12};
	return kernels[items - 8];
}

/* Taps a block: the fewest blocks of at most TG512_MAX, evened out (25
** taps: 3 of 9; 121: 11 of 11), at least 8 (a short block repeats its
** last tap). */
static int tap_grad_items(int64_t taps)
{
	int64_t blocks = (taps + TG512_MAX - 1) / TG512_MAX;
	int64_t items = (taps + blocks - 1) / blocks;
	return items < 8 ? 8 : (int)items;
}

void fv__sep_tap_grad_avx512(const sep_geom *g, const sep_tap_grad *tg, const float *dS,
                             const float *P, float *dw)
{
	const int64_t op = g->op, taps = tg->taps, n = tg->n, nt = tg->nt;
	const int items = tap_grad_items(taps);
	tap_grad_fn *kernel = tap_grad_kernel(items);
	/* a few pixels a call, as the AVX2 kernel groups them */
	const int64_t group = n < SEP_TAP_GRAD_TERMS ? SEP_TAP_GRAD_TERMS / n : 1;
	const int64_t stride = g->vecs * nt * 8;
	for (int64_t k0 = 0; k0 < taps; k0 += items) {
		int64_t o[TG512_MAX];
		for (int j = 0; j < items; j++)
			o[j] = tg->off[k0 + j < taps ? k0 + j : taps - 1];
		for (int64_t ov = 0; ov < op; ov += 16) {
			float part[TG512_MAX * 16] = {0};
			for (int64_t p = 0; p < tg->pixels; p += group) {
				const float *col = dS + fv__col_index(g, nt, tg->fr0, p, ov);
				int64_t px = tg->pixels - p < group ? tg->pixels - p : group;
				kernel(o, P, tg->base_pt + p * n, col, 8 * nt, n, px, stride, part);
			}
			for (int j = 0; j < items && k0 + j < taps; j++)
				for (int l = 0; l < 16; l++)
					dw[(k0 + j) * op + ov + l] += part[16 * j + l];
		}
	}
}

/* ---- the row blocks of the temporal passes ----
** Along a column (8 channels a frame), two consecutive rows read two
** consecutive frames at every tap: one zmm holds both, so a block of N
** rows is N/2 zmm sums (up to 24 rows in 12), the tap's 8 weights
** broadcast to both halves.  Each row's sum runs over the taps in the same
** order with the same fused multiply-adds as the AVX2 row blocks: equal
** bit for bit. */
#define ROWS512_MAX 24

/* d[j * ld] (= when `fresh`, += otherwise) sum_{i < k} w[i * ldw] *
** src[8 * (j + step * i)] for N rows j (N even). */
AVX512_FN __attribute__((always_inline))
static inline void rows_n(int N, const float *src, int64_t step, const float *w, int64_t ldw,
                          int64_t k, bool fresh, float *d, int64_t ld)
{
	__m512 a[ROWS512_MAX / 2];
#pragma GCC unroll 16
	for (int m = 0; m < N / 2; m++)
		a[m] = fresh ? _mm512_setzero_ps() : load_halves(d + 2 * m * ld, ld);
	for (int64_t i = 0; i < k; i++, w += ldw, src += 8 * step) {
		__m256d w8 = _mm256_castps_pd(_mm256_loadu_ps(w));
		__m512 wv = _mm512_castpd_ps(_mm512_broadcast_f64x4(w8));
#pragma GCC unroll 16
		for (int m = 0; m < N / 2; m++)
			a[m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(src + 16 * m), a[m]);
	}
#pragma GCC unroll 16
	for (int m = 0; m < N / 2; m++) {
		__m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[m]), 1));
		_mm256_storeu_ps(d + 2 * m * ld, _mm512_castps512_ps256(a[m]));
		_mm256_storeu_ps(d + (2 * m + 1) * ld, hi);
	}
}

#define ROWS_KERNEL(N)                                                                       \
	AVX512_FN static void rows_##N(const float *src, int64_t step, const float *w,          \
	                               int64_t ldw, int64_t k, bool fresh, float *d, int64_t ld) \
	{                                                                                        \
		rows_n(N, src, step, w, ldw, k, fresh, d, ld);                                   \
	}
ROWS_KERNEL(8)
ROWS_KERNEL(10)
ROWS_KERNEL(12)
ROWS_KERNEL(14)
ROWS_KERNEL(16)
ROWS_KERNEL(18)
ROWS_KERNEL(20)
ROWS_KERNEL(22)
ROWS_KERNEL(24)

int fv__sep_rows_avx512_items(int64_t left)
{
	if (left >= 32)
		return ROWS512_MAX;
	if (left > ROWS512_MAX) /* two blocks of about half */
		return (int)((left / 2 + 1) & ~(int64_t)1);
	return left >= 8 ? (int)(left & ~(int64_t)1) : 0;
}

void fv__sep_rows_avx512(int n, const float *src, int64_t step, const float *w, int64_t ldw,
                         int64_t k, bool fresh, float *d, int64_t ld)
{
	typedef void rows_fn(const float *, int64_t, const float *, int64_t, int64_t, bool, float *,
	                     int64_t);
	static rows_fn *const kernels[] = {rows_8,  rows_10, rows_12, rows_14, rows_16,
	                                   rows_18, rows_20, rows_22, rows_24};
	kernels[(n - 8) / 2](src, step, w, ldw, k, fresh, d, ld);
}

/* ---- the input gradient's sliding gathers ----
** As the AVX2 slide_gather: the 6 pixels of a run keep their current
** source vectors in registers and the window's next column moves each on
** by one pixel, so a tap loads one new vector.  Here a vector is 16
** channels, and the taps alternate between two sets of sums (even and odd
** columns) so that 12 chains of fused multiply-adds are in flight.  The
** sums run in another order than the AVX2 kernel's: equal within rounding,
** not bit for bit (test avx512_equals_avx2). */
#define GATHER512_ITEMS 6 /* a run's pixels at most (SLIDE_ITEMS) */

AVX512_FN
void fv__sep_slide_gather_avx512(const float *origin, int64_t rowstep, int64_t a0, int64_t a1,
                                 int64_t b0, int64_t b1, int64_t kw, int64_t op, const float *w,
                                 float *dx, int n)
{
	__m512 e[GATHER512_ITEMS], o[GATHER512_ITEMS], x[GATHER512_ITEMS];
#pragma GCC unroll 8
	for (int j = 0; j < GATHER512_ITEMS; j++)
		e[j] = o[j] = _mm512_setzero_ps();
	for (int64_t a = a0; a < a1; a++)
		for (int64_t ov = 0; ov < op; ov += 16) {
			const float *src = origin - a * rowstep + ov;
			const float *wa = w + a * kw * op + ov;
#pragma GCC unroll 8
			for (int j = 0; j < GATHER512_ITEMS; j++)
				x[j] = _mm512_loadu_ps(src + (j - b0) * op);
			int64_t b = b0;
			for (; b + 1 < b1; b += 2) {
				/* column b reads x[j]; column b + 1 reads x[j - 1], and
				** pixel 0 the next vector in */
				__m512 w0 = _mm512_loadu_ps(wa + b * op), w1 = _mm512_loadu_ps(wa + (b + 1) * op);
				__m512 in1 = _mm512_loadu_ps(src - (b + 1) * op);
#pragma GCC unroll 8
				for (int j = 0; j < GATHER512_ITEMS; j++)
					e[j] = _mm512_fmadd_ps(w0, x[j], e[j]);
				o[0] = _mm512_fmadd_ps(w1, in1, o[0]);
#pragma GCC unroll 8
				for (int j = 1; j < GATHER512_ITEMS; j++)
					o[j] = _mm512_fmadd_ps(w1, x[j - 1], o[j]);
#pragma GCC unroll 8
				for (int j = GATHER512_ITEMS - 1; j >= 2; j--)
					x[j] = x[j - 2];
				x[1] = in1;
				x[0] = _mm512_loadu_ps(src - (b + 2) * op);
			}
			if (b < b1) {
				__m512 wv = _mm512_loadu_ps(wa + b * op);
#pragma GCC unroll 8
				for (int j = 0; j < GATHER512_ITEMS; j++)
					e[j] = _mm512_fmadd_ps(wv, x[j], e[j]);
			}
		}
	for (int j = 0; j < n; j++)
		dx[j] += _mm512_reduce_add_ps(_mm512_add_ps(e[j], o[j]));
}

/* ---- the time-first order's sliding rows ----
** slide_row6x2 of ops_conv3d_timefirst.c on four consecutive frames: a
** zmm holds two frames of a pixel's column, so 6 pixels x 4 frames are 12
** sums, one weight load (broadcast to both halves) for 12 FMAs.  Each
** (pixel, frame) sum runs over the taps in the same order with the same
** fused multiply-adds: equal bit for bit. */
AVX512_FN
void fv__sep_slide_row6x4_avx512(const float *src, const int64_t *row, int64_t kh, int64_t kw,
                                 int64_t step, const float *w, int64_t op, int64_t wstep,
                                 bool fresh, float *d, int64_t dstep)
{
	__m512 a[6], b[6];
#pragma GCC unroll 8
	for (int j = 0; j < 6; j++) {
		a[j] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(d + j * dstep);
		b[j] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(d + j * dstep + 16);
	}
	for (int64_t r = 0; r < kh; r++) {
		const float *x = src + row[r], *wr = w + r * kw * op;
		for (int64_t c = 0; c < kw; c++, x += step) {
			__m256d w8 = _mm256_castps_pd(_mm256_loadu_ps(wr + c * wstep));
			__m512 wv = _mm512_castpd_ps(_mm512_broadcast_f64x4(w8));
#pragma GCC unroll 8
			for (int j = 0; j < 6; j++) {
				a[j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * step), a[j]);
				b[j] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * step + 16), b[j]);
			}
		}
	}
#pragma GCC unroll 8
	for (int j = 0; j < 6; j++) {
		_mm512_storeu_ps(d + j * dstep, a[j]);
		_mm512_storeu_ps(d + j * dstep + 16, b[j]);
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
