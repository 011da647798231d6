/*
** ops_conv3d_separable.c: conv3d with a rank-one weight per channel pair,
** w[o,i,t,h,w] = w_time[o,i,t] * w_space[o,i,h,w], the hot path of the
** default retina core.
**
** Computed in two passes instead of one dense conv (about 10x fewer FLOPs
** for the default model), per sample and input channel i:
**   spatial:  S_i[t, p, o] = sum_k w_space[o, i, k] * P_i[t, base(p) + off(k)]
**             over the taps k of the (kh, kw) window, for every input frame
**             t and output pixel p; P_i is channel i's zero-padded frames
**   temporal: out[to, p, o] += sum_tau w_time[o, i, tau] * S_i[to*st - pt + tau*dt, p, o]
** The frames of retina models are a few pixels wide (6 in the default
** model), too narrow to vectorise along, while 8 or 16 output channels fill
** a vector exactly.  So the channels o are the vector lanes (their count
** rounded up, the extra lanes multiplying zero weights) and S_i, like the
** other per-channel buffers, is stored in columns: a column is one pixel's
** one vector of channels over all frames, contiguous, so that the temporal
** passes slide along it (see the sliding windows below).  No column matrix
** is built.
**
** The backward runs the same passes transposed, per sample and channel:
**   dw_time[o, i, tau] = sum <dOut[to, ., o], S_i[to*st - pt + tau*dt, ., o]>
**   dS_i               = the temporal pass transposed, from dOut
**   dw_space[o, i, k]  = sum_{t,p} dS_i[t, p, o] * P_i[t, base(p) + off(k)]
**   dx_i[t, y, x]      = sum_{o,k} w_space[o, i, k] * dS_i at the pixels whose
**                        window has tap k on (y, x), gathered (input_grad)
** When w_time needs a gradient the forward keeps every S_i (the default
** model's second layer: 94 MB at batch 64, in the step arena) so the
** backward does not compute the spatial pass again.  Weight gradients are
** summed in a fixed number of partial sums over sample ranges, and every
** sum runs in an order fixed by the shapes, so results do not depend on
** the thread count.
**
** The other order of the passes, temporal first, is in
** ops_conv3d_timefirst.c; fv_conv3d_separable picks one per call
** (fv__tf_chosen) and records it for the backward.
*/
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/conv/conv_separable.h"

/* Items of a sliding-window block (see the sliding windows). */
#define SLIDE_ITEMS 6

typedef struct sep_aux {
	fv__conv_shape s; /* win: the whole kt x kh x kw window over all C channels */
	fv_real *saved_s;  /* every S_i of the forward (N, C, columns), or NULL */
	fv_real *saved_u;  /* time-first: every U_i of the forward, or NULL */
	bool time_first;   /* the order of the passes (fv__tf_chosen) */
} sep_aux;

/* The input frame tap tau of output frame to reads, or -1 in the padding. */
static int64_t tap_frame(const fv__conv_window *w, int64_t to, int64_t tau)
{
	int64_t t = to * w->st - w->pt + tau * w->dt;
	return (t < 0 || t >= w->t) ? -1 : t;
}

/* The output frame whose tap tau reads input frame t, or -1. */
static int64_t tap_output(const fv__conv_window *w, int64_t t, int64_t tau)
{
	int64_t num = t + w->pt - tau * w->dt;
	if (num < 0 || num % w->st != 0 || num / w->st >= w->to)
		return -1;
	return num / w->st;
}

static void geom_shape(sep_geom *g, const fv__conv_shape *s)
{
	const fv__conv_window *w = &s->win;
	memset(g, 0, sizeof *g);
	g->s = s;
	g->sp = *w;
	g->sp.c = 1;
	g->sp.kt = g->sp.st = g->sp.dt = 1;
	g->sp.pt = 0;
	g->sp.to = w->t;
	g->op = fv__round_up(s->o, LANES);
	g->vecs = g->op / LANES;
	g->plane = w->ho * w->wo;
	g->taps = w->kh * w->kw;
	g->hp = fv__read_extent(w->ho, w->sh, w->kh, w->dh);
	g->wp = fv__read_extent(w->wo, w->sw, w->kw, w->dw);
	g->npix = w->t * g->plane;
	g->slide = w->st == 1 && w->dt == 1;
	/* the transposed temporal pass reads up to kt-1 frames before and after
	** dOut's: zeros there let every row block read straight from memory */
	g->gpad = w->kt - 1;
	g->gcol = w->to + 2 * g->gpad;
#ifdef SEP_AVX2
	g->avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	g->avx512 = g->avx2 && fv__sep_avx512_wanted();
#endif
	/* dx reads dS at (y + ph - a*dh, x + pw - b*dw) / stride: spread, with
	** (kh-1)*dh zero rows and (kw-1)*dw zero columns before */
	int64_t u0 = (w->kh - 1) * w->dh, v0 = (w->kw - 1) * w->dw;
	g->hq = u0 + (w->ho - 1) * w->sh + 1;
	if (g->hq < w->h + w->ph + u0)
		g->hq = w->h + w->ph + u0;
	g->wq = v0 + (w->wo - 1) * w->sw + 1;
	if (g->wq < w->w + w->pw + v0)
		g->wq = w->w + w->pw + v0;
}

static void fill_tables(sep_geom *g)
{
	const fv__conv_window *w = &g->s->win;
	int64_t kt = w->kt;
	for (int64_t t = 0, q = 0; t < w->t; t++)
		for (int64_t p = 0; p < g->plane; p++, q++) {
			int64_t y = p / w->wo, x = p % w->wo;
			g->base[q] = (t * g->hp + y * w->sh) * g->wp + x * w->sw;
			g->base_pt[p * w->t + t] = g->base[q];
			g->s_col[q] = fv__col_index(g, w->t, t, p, 0);
		}
	for (int64_t a = 0; a < w->kh; a++)
		for (int64_t b = 0; b < w->kw; b++) {
			g->off[a * w->kw + b] = a * w->dh * g->wp + b * w->dw;
			g->back_off[a * w->kw + b] = -(a * w->dh * g->wq + b * w->dw) * g->op;
		}
	int64_t origin = (w->ph + (w->kh - 1) * w->dh) * g->wq + w->pw + (w->kw - 1) * w->dw;
	for (int64_t y = 0, q = 0; y < w->h; y++)
		for (int64_t x = 0; x < w->w; x++, q++)
			g->back_base[q] = (origin + y * g->wq + x) * g->op;
	for (int64_t p = 0; p < g->plane; p++) {
		int64_t row = (w->kh - 1) * w->dh + p / w->wo * w->sh;
		int64_t col = (w->kw - 1) * w->dw + p % w->wo * w->sw;
		g->spread[p] = (row * g->wq + col) * g->op;
	}
	for (int64_t to = 0; to < w->to; to++)
		for (int64_t tau = 0; tau < kt; tau++)
			g->map_fwd[to * kt + tau] = tap_frame(w, to, tau);
	for (int64_t t = 0; t < w->t; t++)
		for (int64_t tau = 0; tau < kt; tau++)
			g->map_bwd[t * kt + tau] = tap_output(w, t, tau);
}

static bool geom_tables(fv_ctx *ctx, sep_geom *g, const fv_real *wt, const fv_real *ws)
{
	const fv__conv_window *w = &g->s->win;
	int64_t c = g->s->c, o = g->s->o, kt = w->kt;
	size_t ints = (size_t)(3 * g->npix + 2 * g->taps + w->h * w->w + g->plane +
	                       (w->to + w->t) * kt);
	size_t reals = (size_t)(c * (g->taps + kt) * g->op);
	g->base = fv_ctx_alloc(ctx, ints * sizeof(int64_t));
	g->ws_p = fv_ctx_alloc(ctx, reals * sizeof(fv_real));
	if (g->base == NULL || g->ws_p == NULL)
		return false;
	g->base_pt = g->base + g->npix;
	g->s_col = g->base_pt + g->npix;
	g->off = g->s_col + g->npix;
	g->back_off = g->off + g->taps;
	g->back_base = g->back_off + g->taps;
	g->spread = g->back_base + w->h * w->w;
	g->map_fwd = g->spread + g->plane;
	g->map_bwd = g->map_fwd + w->to * kt;
	g->wt_p = g->ws_p + c * g->taps * g->op;
	fill_tables(g);
	memset(g->ws_p, 0, reals * sizeof(fv_real));
	for (int64_t oc = 0; oc < o; oc++)
		for (int64_t i = 0; i < c; i++) {
			for (int64_t k = 0; k < g->taps; k++)
				g->ws_p[(i * g->taps + k) * g->op + oc] = ws[(oc * c + i) * g->taps + k];
			for (int64_t tau = 0; tau < kt; tau++)
				g->wt_p[(i * kt + tau) * g->op + oc] = wt[(oc * c + i) * kt + tau];
		}
	return true;
}

bool fv__sep_geom(fv_ctx *ctx, sep_geom *g, const fv__conv_shape *s, const fv_real *wt,
                  const fv_real *ws)
{
	geom_shape(g, s);
	return geom_tables(ctx, g, wt, ws);
}

/* ---- AVX2 kernels ------------------------------------------------------------------
** Register blocks of 12 or 8 vector accumulators: 6 items x 16 channels
** when the rounded channel count is a multiple of 16, else 8 items x 8
** channels; an item is a pixel or a tap.  The item pointers of a block are
** passed as arrays, so that a partial block (the last one) can repeat its
** last item: the repeated results are stored to the same place twice.
** Without AVX2 (and in the float64 build) plain loops do the same sums. */

#ifdef SEP_AVX2
#define FOR6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define FOR8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define ZERO_16(j) __m256 a##j = _mm256_setzero_ps(), b##j = _mm256_setzero_ps();
#define ZERO_8(j) __m256 a##j = _mm256_setzero_ps();
#define ITEM(j) const float *p##j = p[j];
/* the second 8 channels of item j are `half` elements after its first */
#define STORE_16(j)                           \
	_mm256_storeu_ps(d[j], a##j);         \
	_mm256_storeu_ps(d[j] + half, b##j);
#define STORE_8(j) _mm256_storeu_ps(d[j], a##j);
#define ADD_16(j)                                                                \
	_mm256_storeu_ps(d[j], _mm256_add_ps(_mm256_loadu_ps(d[j]), a##j));           \
	_mm256_storeu_ps(d[j] + 8, _mm256_add_ps(_mm256_loadu_ps(d[j] + 8), b##j));
#define ADD_8(j) _mm256_storeu_ps(d[j], _mm256_add_ps(_mm256_loadu_ps(d[j]), a##j));
/* Keep two vectors in registers: left to itself GCC folds their loads into
** each FMA, which makes the blocks of 12 accumulators load-bound. */
#define IN_REGISTERS(u, v) __asm__("" : "+x"(u), "+x"(v))

AVX2_FN
static float hsum256(__m256 v)
{
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* d[j] = sum_k p[j][off[k]] * w[k * ldw]: the spatial pass of a block of
** pixels (p[j]: where pixel j's window starts), one weight row per tap. */
AVX2_FN
static void spatial_block_16(const float *const *p, const int64_t *off, int64_t taps,
                             const float *w, int64_t ldw, float *const *d, int64_t half)
{
	FOR6(ITEM)
	FOR6(ZERO_16)
	for (int64_t k = 0; k < taps; k++, w += ldw) {
		__m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
		IN_REGISTERS(w0, w1);
		int64_t o = off[k];
#define TAP(j)                                                \
	{                                                     \
		__m256 x = _mm256_broadcast_ss(p##j + o);     \
		a##j = _mm256_fmadd_ps(x, w0, a##j);          \
		b##j = _mm256_fmadd_ps(x, w1, b##j);          \
	}
		FOR6(TAP)
#undef TAP
	}
	FOR6(STORE_16)
}

AVX2_FN
static void spatial_block_8(const float *const *p, const int64_t *off, int64_t taps,
                            const float *w, int64_t ldw, float *const *d)
{
	FOR8(ITEM)
	FOR8(ZERO_8)
	for (int64_t k = 0; k < taps; k++, w += ldw) {
		__m256 w0 = _mm256_loadu_ps(w);
		int64_t o = off[k];
#define TAP(j) a##j = _mm256_fmadd_ps(_mm256_broadcast_ss(p##j + o), w0, a##j);
		FOR8(TAP)
#undef TAP
	}
	FOR8(STORE_8)
}

/* d[j] += sum_{p < pixels, t < n} P[base[p * n + t] + o[j]] * dS[p * stride + 8 * t]:
** the spatial weight gradient of a block of taps (o[j]: tap j's offset in
** the window) over the columns of dS of a frame's pixels, `stride` apart
** (the second 8 channels `half` elements on).  The sums stay in registers
** from the first pixel to the last. */
#define TAP_GRAD_16(name, FOR_N)                                                         \
	AVX2_FN                                                                              \
	static void name(const int64_t *o, const float *P, const int64_t *base,              \
	                 const float *dS, int64_t half, int64_t n, int64_t pixels,           \
	                 int64_t stride, float *const *d)                                    \
	{                                                                                    \
		FOR_N(OFF)                                                                   \
		FOR_N(ZERO_16)                                                               \
		for (int64_t p = 0; p < pixels; p++, dS += stride - 8 * n)                   \
			for (int64_t t = 0; t < n; t++, dS += 8) {                           \
				__m256 d0 = _mm256_loadu_ps(dS);                             \
				__m256 d1 = _mm256_loadu_ps(dS + half);                      \
				IN_REGISTERS(d0, d1);                                        \
				const float *pq = P + *base++;                               \
				FOR_N(TAP_GRAD_TAP)                                          \
			}                                                                    \
		FOR_N(ADD_16)                                                                \
	}
#define OFF(j) const int64_t o##j = o[j];
#define TAP_GRAD_TAP(j)                                       \
	{                                                     \
		__m256 x = _mm256_broadcast_ss(pq + o##j);    \
		a##j = _mm256_fmadd_ps(x, d0, a##j);          \
		b##j = _mm256_fmadd_ps(x, d1, b##j);          \
	}
#define FOR5(M) M(0) M(1) M(2) M(3) M(4)
/* 6 taps a block, or 5 when that divides the taps and 6 does not (5 x 5
** kernels): the FMAs of a partial block are wasted */
TAP_GRAD_16(tap_grad_block_16, FOR6)
TAP_GRAD_16(tap_grad_block_16_5, FOR5)
#undef TAP_GRAD_TAP

AVX2_FN
static void tap_grad_block_8(const int64_t *o, const float *P, const int64_t *base,
                             const float *dS, int64_t n, int64_t pixels, int64_t stride,
                             float *const *d)
{
	FOR8(OFF)
#undef OFF
	FOR8(ZERO_8)
	for (int64_t p = 0; p < pixels; p++, dS += stride - 8 * n)
		for (int64_t t = 0; t < n; t++, dS += 8) {
			__m256 d0 = _mm256_loadu_ps(dS);
			const float *pq = P + *base++;
#define TAP(j) a##j = _mm256_fmadd_ps(_mm256_broadcast_ss(pq + o##j), d0, a##j);
			FOR8(TAP)
#undef TAP
		}
	FOR8(ADD_8)
}

/* *d[j] += sum over channels of sum_k p[j][off[k]] * w[k * ldw]: the input
** gradient of a block of input pixels, gathered from the taps that read
** them (p[j]: pixel j's origin in the spread dS frame). */
AVX2_FN
static void gather_block_16(const float *const *p, const int64_t *off, int64_t taps,
                            const float *w, int64_t ldw, float *const *d)
{
	FOR6(ITEM)
	FOR6(ZERO_16)
	for (int64_t k = 0; k < taps; k++, w += ldw) {
		__m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
		IN_REGISTERS(w0, w1);
		int64_t o = off[k];
#define TAP(j)                                                                    \
	a##j = _mm256_fmadd_ps(_mm256_loadu_ps(p##j + o), w0, a##j);              \
	b##j = _mm256_fmadd_ps(_mm256_loadu_ps(p##j + o + 8), w1, b##j);
		FOR6(TAP)
#undef TAP
	}
#define SUM(j) *d[j] += hsum256(_mm256_add_ps(a##j, b##j));
	FOR6(SUM)
#undef SUM
}

AVX2_FN
static void gather_block_8(const float *const *p, const int64_t *off, int64_t taps,
                           const float *w, int64_t ldw, float *const *d)
{
	FOR8(ITEM)
	FOR8(ZERO_8)
	for (int64_t k = 0; k < taps; k++, w += ldw) {
		__m256 w0 = _mm256_loadu_ps(w);
		int64_t o = off[k];
#define TAP(j) a##j = _mm256_fmadd_ps(_mm256_loadu_ps(p##j + o), w0, a##j);
		FOR8(TAP)
#undef TAP
	}
#define SUM(j) *d[j] += hsum256(a##j);
	FOR8(SUM)
#undef SUM
}

/* ---- sliding windows ----
** Along a column (stride and dilation 1), the next tap moves every item of
** a block of 6 consecutive rows one frame on, so the block keeps the 6
** source vectors of the current tap in registers and loads one new one per
** tap, plus the tap's weight: a third of the loads of a plain block.
** Frames outside the column [0, nsrc) are zero (the padding): the tap loop
** is split where the new frame enters or leaves the column, so that no
** iteration tests it. */
#define FOR_SLIDE(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define SLIDE_FMA(j) a##j = _mm256_fmadd_ps(wv, s##j, a##j);
/* the window moves to the next frame (items j read base + j + tau) or the
** previous one (base + j - tau) */
#define SLIDE_UP s0 = s1; s1 = s2; s2 = s3; s3 = s4; s4 = s5;
#define SLIDE_DOWN s5 = s4; s4 = s3; s3 = s2; s2 = s1; s1 = s0;
#define SLIDE_FRAME(u) \
	((u) >= 0 && (u) < nsrc ? _mm256_loadu_ps(col + 8 * (u)) : _mm256_setzero_ps())
#define SLIDE_SRC(j) __m256 s##j = SLIDE_FRAME(base + (j) + dir * k0);

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* dst[j] (= when `fresh`, += otherwise) sum_{k0 <= tau < k1} w[tau * ldw] *
** col[base + j + DIR * tau] for 6 items j (rows of a temporal pass; col and
** dst are columns of 8-float frames, col has nsrc). */
#define SLIDE_PASS(name, DIR, SHIFT, NEXT)                                                 \
	AVX2_FN                                                                                \
	static void name(const float *col, int64_t nsrc, int64_t base, int64_t k0, int64_t k1, \
	                 const float *w, int64_t ldw, bool fresh, float *dst, int n)           \
	{                                                                                      \
		const int64_t dir = DIR;                                                       \
		FOR_SLIDE(SLIDE_ACC)                                                           \
		FOR_SLIDE(SLIDE_SRC)                                                           \
		/* the new frame at tap tau is base + 6 + tau (up) or base - 1 - tau */        \
		int64_t lo = dir > 0 ? -base - 6 : base - nsrc, hi = dir > 0 ? nsrc - base - 6 : base; \
		lo = clamp64(lo, k0, k1);                                                      \
		hi = clamp64(hi, lo, k1);                                                      \
		int64_t tau = k0;                                                              \
		for (; tau < lo; tau++) {                                                      \
			__m256 wv = _mm256_loadu_ps(w + tau * ldw);                            \
			FOR_SLIDE(SLIDE_FMA)                                                   \
			SHIFT                                                                  \
			NEXT = _mm256_setzero_ps();                                            \
		}                                                                              \
		for (; tau < hi; tau++) {                                                      \
			__m256 wv = _mm256_loadu_ps(w + tau * ldw);                            \
			FOR_SLIDE(SLIDE_FMA)                                                   \
			SHIFT                                                                  \
			NEXT = _mm256_loadu_ps(col + 8 * (dir > 0 ? base + 6 + tau : base - 1 - tau)); \
		}                                                                              \
		for (; tau < k1; tau++) {                                                      \
			__m256 wv = _mm256_loadu_ps(w + tau * ldw);                            \
			FOR_SLIDE(SLIDE_FMA)                                                   \
			SHIFT                                                                  \
			NEXT = _mm256_setzero_ps();                                            \
		}                                                                              \
		FOR_SLIDE(SLIDE_STORE)                                                         \
	}
#define SLIDE_ACC(j)                                                                     \
	__m256 a##j = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(dst + 8 * ((j) < n ? (j) : 0));
#define SLIDE_STORE(j) if ((j) < n) _mm256_storeu_ps(dst + 8 * (j), a##j);
SLIDE_PASS(slide_pass_up, 1, SLIDE_UP, s5)
SLIDE_PASS(slide_pass_down, -1, SLIDE_DOWN, s0)
#undef SLIDE_ACC
#undef SLIDE_STORE

/* d[j * ld] += sum_{r < rows} g[r] * col[base + j + r] for 6 items j (taps
** of the temporal weight gradient; g and col columns of 8-float frames,
** col has nsrc). */
AVX2_FN
static void slide_correlate(const float *col, int64_t nsrc, int64_t base, const float *g,
                            int64_t rows, float *d, int64_t ld, int n)
{
	const int64_t dir = 1, k0 = 0;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
	FOR_SLIDE(SLIDE_SRC)
	int64_t lo = clamp64(-base - 6, 0, rows), hi = clamp64(nsrc - base - 6, lo, rows), r = 0;
	for (; r < lo; r++) {
		__m256 wv = _mm256_loadu_ps(g + 8 * r);
		FOR_SLIDE(SLIDE_FMA)
		SLIDE_UP
		s5 = _mm256_setzero_ps();
	}
	for (; r < hi; r++) {
		__m256 wv = _mm256_loadu_ps(g + 8 * r);
		FOR_SLIDE(SLIDE_FMA)
		SLIDE_UP
		s5 = _mm256_loadu_ps(col + 8 * (base + 6 + r));
	}
	for (; r < rows; r++) {
		__m256 wv = _mm256_loadu_ps(g + 8 * r);
		FOR_SLIDE(SLIDE_FMA)
		SLIDE_UP
		s5 = _mm256_setzero_ps();
	}
#define SLIDE_ADD(j) \
	if ((j) < n) _mm256_storeu_ps(d + (j) * ld, _mm256_add_ps(_mm256_loadu_ps(d + (j) * ld), a##j));
	FOR_SLIDE(SLIDE_ADD)
#undef SLIDE_ADD
}
#undef SLIDE_SRC
#undef SLIDE_FRAME

/* d[j * ld] (= when `fresh`, += otherwise) sum_{i < k} w[i * ldw] *
** src[8 * (j + step * i)] for N items j: rows of a temporal pass (step
** +-1) or taps of the temporal weight gradient (step 1, w = dOut's column),
** whose reads the caller keeps inside the source column.  Every source
** vector is loaded (no sliding): with 8 or 12 accumulators the FMAs are
** not waiting on each other, as they are in the 6-item sliding blocks. */
#define ROW_BLOCK(name, FOR_N)                                                                \
	AVX2_FN NO_LOAD_REUSE                                                                 \
	static void name(const float *src, int64_t step, const float *w, int64_t ldw, int64_t k, \
	                 bool fresh, float *d, int64_t ld)                                   \
	{                                                                                     \
		FOR_N(RB_ACC)                                                                 \
		for (int64_t i = 0; i < k; i++, w += ldw, src += 8 * step) {                  \
			__m256 wv = _mm256_loadu_ps(w);                                       \
			FOR_N(RB_FMA)                                                         \
		}                                                                             \
		FOR_N(RB_STORE)                                                               \
	}
#define RB_ACC(j) __m256 a##j = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(d + (j) * ld);
#define RB_FMA(j) a##j = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + 8 * (j)), a##j);
#define RB_STORE(j) _mm256_storeu_ps(d + (j) * ld, a##j);
#define FOR12(M) FOR8(M) M(8) M(9) M(10) M(11)
ROW_BLOCK(row_block_12, FOR12)
ROW_BLOCK(row_block_8, FOR8)
#undef RB_ACC
#undef RB_FMA
#undef RB_STORE

/* The items of the next row block out of `left`: 12 or 8 for row_block,
** else at most SLIDE_ITEMS for the sliding blocks. */
static int row_block_items(int64_t left)
{
	return left >= 12 ? 12 : left >= 8 ? 8 : left < SLIDE_ITEMS ? (int)left : SLIDE_ITEMS;
}

static void row_block(int n, const float *src, int64_t step, const float *w, int64_t ldw,
                      int64_t k, bool fresh, float *d, int64_t ld)
{
	if (n == 12)
		row_block_12(src, step, w, ldw, k, fresh, d, ld);
	else
		row_block_8(src, step, w, ldw, k, fresh, d, ld);
}

/* dx[j] += sum over the window's rows a in [a0, a1), columns b in [b0, b1)
** and the channel vectors of w[a][b] * D[row_a][x0 + j - b]: the input
** gradient of 6 consecutive pixels of one input row, from the spread dS
** frame D (see input_grad); row a's taps of pixel x0 start at
** origin - a * rowstep. */
AVX2_FN
static void slide_gather(const float *origin, int64_t rowstep, int64_t a0, int64_t a1,
                         int64_t b0, int64_t b1, int64_t kw, int64_t op, const float *w,
                         float *dx, int n)
{
	__m256 a0v = _mm256_setzero_ps(), a1v = a0v, a2v = a0v, a3v = a0v, a4v = a0v, a5v = a0v;
	for (int64_t a = a0; a < a1; a++)
		for (int64_t ov = 0; ov < op; ov += 8) {
			const float *src = origin - a * rowstep + ov;
#define SLIDE_SRC(j) __m256 s##j = _mm256_loadu_ps(src + ((j) - b0) * op);
			FOR_SLIDE(SLIDE_SRC)
#undef SLIDE_SRC
			int64_t b = b0;
			/* two taps a step, their products summed before the add:
			** a sum waits on one add per two taps, not on two FMAs */
			for (; b + 1 < b1; b += 2) {
				const float *wb = w + (a * kw + b) * op + ov;
				__m256 w0 = _mm256_loadu_ps(wb), w1 = _mm256_loadu_ps(wb + op);
				__m256 n0 = _mm256_loadu_ps(src - (b + 1) * op);
#define PAIR_TAP(j, next) \
	a##j##v = _mm256_add_ps(a##j##v, _mm256_fmadd_ps(w1, next, _mm256_mul_ps(w0, s##j)));
				PAIR_TAP(5, s4) PAIR_TAP(4, s3) PAIR_TAP(3, s2)
				PAIR_TAP(2, s1) PAIR_TAP(1, s0) PAIR_TAP(0, n0)
#undef PAIR_TAP
				s5 = s3; s4 = s2; s3 = s1; s2 = s0; s1 = n0;
				s0 = _mm256_loadu_ps(src - (b + 2) * op);
			}
			if (b < b1) {
				__m256 wv = _mm256_loadu_ps(w + (a * kw + b) * op + ov);
#define GATHER_FMA(j) a##j##v = _mm256_fmadd_ps(wv, s##j, a##j##v);
				FOR_SLIDE(GATHER_FMA)
#undef GATHER_FMA
			}
		}
#define SLIDE_SUM(j) if ((j) < n) dx[j] += hsum256(a##j##v);
	FOR_SLIDE(SLIDE_SUM)
#undef SLIDE_SUM
}

/* Items of a block: 6 with 16 lanes, else 8. */
static int block_items(int64_t lanes)
{
	return lanes % 16 == 0 ? 6 : 8;
}
#endif /* SEP_AVX2 */

/* ---- the passes ---------------------------------------------------------------------- */

#ifdef SEP_AVX2
static void bcast_pass_avx2(const sep_geom *g, const sep_bcast *bc, const float *P, const float *w,
                            float *S)
{
	const int64_t op = g->op, n = bc->items;
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	for (int64_t q = 0; q < n; q += items) {
		const float *p[8];
		float *d[8];
		for (int j = 0; j < items; j++) {
			int64_t qj = q + j < n ? q + j : n - 1;
			p[j] = P + bc->src_at[qj];
			d[j] = S + bc->dst_at[qj];
		}
		for (int64_t ov = 0; ov < op; ov += lanes) {
			if (lanes == 16)
				spatial_block_16(p, bc->off, bc->taps, w + ov, op, d, 8 * bc->nt);
			else
				spatial_block_8(p, bc->off, bc->taps, w + ov, op, d);
			for (int j = 0; j < items; j++)
				d[j] += lanes * bc->nt;
		}
	}
}
#endif

void fv__sep_bcast_pass(const sep_geom *g, const sep_bcast *bc, const fv_real *P, const fv_real *w,
                        fv_real *S)
{
	const int64_t op = g->op;
#ifdef SEP_AVX2
	if (g->avx512 && op % 16 == 0) {
		fv__sep_bcast_pass_avx512(g, bc, P, w, S);
		return;
	}
	if (g->avx2) {
		bcast_pass_avx2(g, bc, P, w, S);
		return;
	}
#endif
	for (int64_t q = 0; q < bc->items; q++)
		for (int64_t l = 0; l < op; l++) {
			double acc = 0; /* long sums in double in the plain loops */
			for (int64_t k = 0; k < bc->taps; k++)
				acc += P[bc->src_at[q] + bc->off[k]] * w[k * op + l];
			S[bc->dst_at[q] + fv__col_index(g, bc->nt, 0, 0, l)] = (fv_real)acc;
		}
}

/* S (columns of T frames) = the spatial pass of one channel's padded frames
** P with its weights w (taps, op). */
static void spatial_pass(const sep_geom *g, const fv_real *P, const fv_real *w, fv_real *S)
{
	sep_bcast bc = {g->base, g->s_col, g->off, g->npix, g->taps, g->sp.t};
	fv__sep_bcast_pass(g, &bc, P, w, S);
}

/* One temporal pass, as its direction, frame counts and tap map:
**   forward:   rows = output frames, row r tap tau reads frame r - pt + tau
**   transpose: rows = input frames,  row t tap tau reads frame t + pt - tau
** (with stride and dilation 1; `map` in general). */
typedef struct temporal_dir {
	int dir;
	int64_t shift, nsrc, ndst;
	int64_t stride, pad; /* a source column's frames; its zero frames either side */
	const int64_t *map;
} temporal_dir;

static temporal_dir forward_dir(const sep_geom *g)
{
	const fv__conv_window *w = &g->s->win;
	return (temporal_dir){1, -w->pt, w->t, w->to, w->t, 0, g->map_fwd};
}

static temporal_dir transpose_dir(const sep_geom *g)
{
	const fv__conv_window *w = &g->s->win;
	return (temporal_dir){-1, w->pt, w->to, w->t, g->gcol, g->gpad, g->map_bwd};
}

#ifdef SEP_AVX2
/* [k0, k1): the taps at which some of the n rows from `base` read a frame. */
static void tap_range(const temporal_dir *td, int64_t kt, int64_t base, int64_t n, int64_t *k0,
                      int64_t *k1)
{
	if (td->dir > 0) {
		*k0 = -base - n + 1;
		*k1 = td->nsrc - base;
	} else {
		*k0 = base - td->nsrc + 1;
		*k1 = base + n;
	}
	*k0 = *k0 > 0 ? *k0 : 0;
	*k1 = *k1 < kt ? *k1 : kt;
}

/* The rows of the next block of a temporal pass out of `left`: an AVX-512
** block when there are enough, else an AVX2 one. */
static int temporal_items(const sep_geom *g, int64_t left)
{
	int n = g->avx512 ? fv__sep_rows_avx512_items(left) : 0;
	return n > 0 ? n : row_block_items(left);
}

/* Whether those rows read only the column and its zero frames. */
static bool rows_inside(const temporal_dir *td, int64_t base, int64_t n, int64_t k0, int64_t k1)
{
	int64_t lo = td->dir > 0 ? base + k0 : base - (k1 - 1);
	int64_t hi = td->dir > 0 ? base + n - 1 + k1 - 1 : base + n - 1 - k0;
	return lo >= -td->pad && hi < td->nsrc + td->pad;
}

/* Rows [r, r + n) of one column of a temporal pass; returns n, which it
** lowers to SLIDE_ITEMS where a row block would read outside the column. */
static int temporal_rows(const sep_geom *g, const temporal_dir *td, const float *col,
                         const float *wv, int64_t r, int n, bool fresh, float *d)
{
	const int64_t kt = g->s->win.kt, base = r + td->shift;
	int64_t k0, k1;
	tap_range(td, kt, base, n, &k0, &k1);
	if (n > SLIDE_ITEMS && rows_inside(td, base, n, k0, k1)) {
		const float *src = col + 8 * (base + td->dir * k0);
		if (g->avx512)
			fv__sep_rows_avx512(n, src, td->dir, wv + k0 * g->op, g->op, k1 - k0, fresh, d, 8);
		else
			row_block(n, src, td->dir, wv + k0 * g->op, g->op, k1 - k0, fresh, d, 8);
		return n;
	}
	n = n < SLIDE_ITEMS ? n : SLIDE_ITEMS;
	tap_range(td, kt, base, n, &k0, &k1);
	if (td->dir > 0)
		slide_pass_up(col, td->nsrc, base, k0, k1, wv, g->op, fresh, d, n);
	else
		slide_pass_down(col, td->nsrc, base, k0, k1, wv, g->op, fresh, d, n);
	return n;
}
#endif

/* dst columns [v0, v1) (= when `fresh`, += otherwise) the temporal pass of
** src with channel-wise weights w (kt, op); both in columns. */
static void temporal_pass(const sep_geom *g, const temporal_dir *td, int64_t v0, int64_t v1,
                          const fv_real *w, const fv_real *src, bool fresh, fv_real *dst)
{
	const int64_t kt = g->s->win.kt, op = g->op, rows = td->ndst;
#ifdef SEP_AVX2
	if (g->avx2 && g->slide) {
		for (int64_t v = v0; v < v1; v++) {
			const float *col = src + (v * td->stride + td->pad) * 8;
			const float *wv = w + v % g->vecs * 8;
			for (int64_t r = 0; r < rows;)
				r += temporal_rows(g, td, col, wv, r, temporal_items(g, rows - r), fresh,
				                   dst + (v * rows + r) * 8);
		}
		return;
	}
#endif
	for (int64_t v = v0; v < v1; v++) {
		const fv_real *s = src + (v * td->stride + td->pad) * LANES;
		const fv_real *wv = w + v % g->vecs * LANES;
		for (int64_t r = 0; r < rows; r++) {
			fv_real *d = dst + (v * rows + r) * LANES;
			for (int64_t l = 0; l < LANES; l++) {
				double acc = fresh ? 0 : d[l];
				for (int64_t tau = 0; tau < kt; tau++) {
					int64_t u = td->map[r * kt + tau];
					if (u >= 0)
						acc += wv[tau * op + l] * s[u * LANES + l];
				}
				d[l] = (fv_real)acc;
			}
		}
	}
}

/* d[j * ld] += the temporal weight gradient's taps j < n (< 12) of one
** column, as a 12-tap block: a short block's sums wait on each other, a
** full one's do not.  The dropped taps read on into the next column. */
#ifdef SEP_AVX2
AVX2_FN
static void last_taps(bool avx512, const float *src, const float *g, int64_t rows, int n, float *d,
                      int64_t ld)
{
	float sums[12 * 8];
	if (avx512)
		fv__sep_rows_avx512(12, src, 1, g, 8, rows, true, sums, 8);
	else
		row_block_12(src, 1, g, 8, rows, true, sums, 8);
	for (int j = 0; j < n; j++)
		_mm256_storeu_ps(d + j * ld, _mm256_add_ps(_mm256_loadu_ps(d + j * ld),
		                                           _mm256_loadu_ps(sums + 8 * j)));
}
#endif

void fv__sep_temporal_back(const sep_geom *g, int64_t v0, int64_t v1, const fv_real *w,
                           const fv_real *src, fv_real *dst)
{
	temporal_dir td = transpose_dir(g);
	temporal_pass(g, &td, v0, v1, w, src, true, dst);
}

/* dwt (kt, op) += sum_{r, p} gout[r, p] * S[map[r][tau], p], channel-wise:
** the temporal weight gradient of one channel and sample (gout and S in
** columns). */
static void temporal_weight_grad(const sep_geom *g, const fv_real *gout, const fv_real *S,
                                 fv_real *dwt)
{
	const fv__conv_window *w = &g->s->win;
	const int64_t op = g->op, kt = w->kt, cols = g->plane * g->vecs;
#ifdef SEP_AVX2
	if (g->avx2 && g->slide) {
		for (int64_t v = 0; v < cols; v++) {
			const float *col = S + v * w->t * 8, *gv = gout + (v * g->gcol + g->gpad) * 8;
			for (int64_t tau0 = 0; tau0 < kt;) {
				int n = row_block_items(kt - tau0);
				int64_t base = tau0 - w->pt;
				float *d = dwt + tau0 * op + v % g->vecs * 8;
				if (kt - tau0 < 12 && base >= 0 && base + kt - tau0 - 1 + w->to - 1 < w->t &&
				    v + 1 < cols && base + 11 + w->to - 1 < 2 * w->t) {
					last_taps(g->avx512, col + 8 * base, gv, w->to, (int)(kt - tau0), d, op);
					break;
				}
				if (n > SLIDE_ITEMS && base >= 0 && base + n - 1 + w->to - 1 < w->t) {
					if (g->avx512) /* n is 12 or 8 */
						fv__sep_rows_avx512(n, col + 8 * base, 1, gv, 8, w->to, false, d, op);
					else
						row_block(n, col + 8 * base, 1, gv, 8, w->to, false, d, op);
				} else {
					n = n < SLIDE_ITEMS ? n : SLIDE_ITEMS;
					slide_correlate(col, w->t, base, gv, w->to, d, op, n);
				}
				tau0 += n;
			}
		}
		return;
	}
#endif
	for (int64_t v = 0; v < cols; v++) {
		const fv_real *s = S + v * w->t * LANES, *gv = gout + (v * g->gcol + g->gpad) * LANES;
		for (int64_t tau = 0; tau < kt; tau++)
			for (int64_t l = 0; l < LANES; l++) {
				double acc = 0;
				for (int64_t r = 0; r < w->to; r++) {
					int64_t u = g->map_fwd[r * kt + tau];
					if (u >= 0)
						acc += gv[r * LANES + l] * s[u * LANES + l];
				}
				dwt[tau * op + v % g->vecs * LANES + l] += (fv_real)acc;
			}
	}
}

#ifdef SEP_AVX2
static void tap_grad_avx2(const sep_geom *g, const sep_tap_grad *tg, const float *dS,
                          const float *P, float *dw)
{
	const int64_t op = g->op, taps = tg->taps, n = tg->n, nt = tg->nt;
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	if (lanes == 16 && taps % 6 != 0 && taps % 5 == 0)
		items = 5;
	for (int64_t k0 = 0; k0 < taps; k0 += items) {
		int64_t o[8];
		float *d[8];
		for (int j = 0; j < items; j++)
			o[j] = tg->off[k0 + j < taps ? k0 + j : taps - 1];
		for (int64_t ov = 0; ov < op; ov += lanes) {
			/* the sums over the sample's pixels go to `part`, then to dw */
			float part[8][16] = {{0}};
			for (int j = 0; j < items; j++)
				d[j] = part[j];
			/* a few pixels a call (SEP_TAP_GRAD_TERMS) */
			int64_t group = n < SEP_TAP_GRAD_TERMS ? SEP_TAP_GRAD_TERMS / n : 1;
			int64_t stride = g->vecs * nt * 8;
			for (int64_t p = 0; p < tg->pixels; p += group) {
				const float *col = dS + fv__col_index(g, nt, tg->fr0, p, ov);
				const int64_t *base = tg->base_pt + p * n;
				int64_t px = tg->pixels - p < group ? tg->pixels - p : group;
				if (items == 5)
					tap_grad_block_16_5(o, P, base, col, 8 * nt, n, px, stride, d);
				else if (lanes == 16)
					tap_grad_block_16(o, P, base, col, 8 * nt, n, px, stride, d);
				else
					tap_grad_block_8(o, P, base, col, n, px, stride, d);
			}
			for (int j = 0; j < items && k0 + j < taps; j++)
				for (int l = 0; l < lanes; l++)
					dw[(k0 + j) * op + ov + l] += part[j][l];
		}
	}
}
#endif

void fv__sep_tap_grad(const sep_geom *g, const sep_tap_grad *tg, const fv_real *dS,
                      const fv_real *P, fv_real *dw)
{
	const int64_t op = g->op, n = tg->n;
#ifdef SEP_AVX2
	if (g->avx512 && op % 16 == 0) {
		fv__sep_tap_grad_avx512(g, tg, dS, P, dw);
		return;
	}
	if (g->avx2) {
		tap_grad_avx2(g, tg, dS, P, dw);
		return;
	}
#endif
	for (int64_t k = 0; k < tg->taps; k++)
		for (int64_t l = 0; l < op; l++) {
			double acc = 0;
			for (int64_t p = 0; p < tg->pixels; p++)
				for (int64_t t = 0; t < n; t++)
					acc += dS[fv__col_index(g, tg->nt, tg->fr0 + t, p, l)] *
					       P[tg->base_pt[p * n + t] + tg->off[k]];
			dw[k * op + l] += (fv_real)acc;
		}
}

/* dws (taps, op) += sum_{t, p} dS[t, p] * P[base(t, p) + off(k)]: the
** spatial weight gradient of one channel and sample (dS in columns). */
static void spatial_weight_grad(const sep_geom *g, const fv_real *dS, const fv_real *P,
                                fv_real *dws)
{
	sep_tap_grad tg = {g->off, g->base_pt, g->taps, g->sp.t, g->plane, g->sp.t, 0};
	fv__sep_tap_grad(g, &tg, dS, P, dws);
}

/* dS's frame t spread into D (hq, wq, op): output pixel (py, px) at row
** (kh-1)*dh + py*sh, column (kw-1)*dw + px*sw.  The other positions are
** zero: D is cleared once per backward call and they are never written. */
static void spread_frame(const sep_geom *g, const fv_real *dS, int64_t t, fv_real *D)
{
	/* column p * vecs + v holds frame t at (column * nt + t) * LANES */
	const int64_t step = g->sp.t * LANES;
	const fv_real *src = dS + t * LANES;
	for (int64_t p = 0; p < g->plane; p++) {
		fv_real *dst = D + g->spread[p];
		for (int64_t v = 0; v < g->vecs; v++, src += step)
			memcpy(dst + v * LANES, src, LANES * sizeof(fv_real));
	}
}

/* A run of input_grad's sliding gathers: n (<= SLIDE_ITEMS) consecutive
** pixels of a row from q, and the window rows [a0, a1) and columns [b0, b1)
** that land on output pixels for some pixel of the run (for a large kernel
** over a small output, a valid conv, most do not).  The same for every
** frame, channel and sample: worked out once per backward call. */
typedef struct gather_run {
	int64_t q, a0, a1, b0, b1;
	int n;
} gather_run;

#ifdef SEP_AVX2
/* Whether input_grad slides along the rows: the window columns contiguous
** and rows wide enough. */
static bool gather_slides(const sep_geom *g)
{
	return g->sp.dw == 1 && g->sp.w >= 4;
}

/* A frame's runs, in the arena (at most one a pixel); NULL when out of memory. */
static gather_run *gather_runs(fv_ctx *ctx, const sep_geom *g, int64_t *count)
{
	const fv__conv_window *w = &g->sp;
	gather_run *runs = fv_ctx_alloc(ctx, (size_t)(w->h * w->w) * sizeof *runs);
	*count = 0;
	for (int64_t q = 0; runs != NULL && q < w->h * w->w; ++*count) {
		int64_t y = q / w->w, x = q % w->w;
		int n = w->w - x < SLIDE_ITEMS ? (int)(w->w - x) : SLIDE_ITEMS;
		int64_t a0 = y + w->ph - (w->ho - 1) * w->sh, a1 = (y + w->ph) / w->dh + 1;
		int64_t b0 = x + w->pw - (w->wo - 1) * w->sw, b1 = x + n + w->pw;
		a0 = a0 > 0 ? (a0 + w->dh - 1) / w->dh : 0;
		runs[*count] = (gather_run){q, a0, a1 < w->kh ? a1 : w->kh, b0 > 0 ? b0 : 0,
		                            b1 < w->kw ? b1 : w->kw, n};
		q += n;
	}
	return runs;
}

static void slide_gather_runs(const sep_geom *g, const gather_run *runs, int64_t count,
                              const float *D, const float *ws, float *dx)
{
	int64_t rowstep = g->sp.dh * g->wq * g->op;
	bool wide = g->avx512 && g->op % 16 == 0;
	for (const gather_run *r = runs; r < runs + count; r++)
		(wide ? fv__sep_slide_gather_avx512 : slide_gather)(
			D + g->back_base[r->q], rowstep, r->a0, r->a1, r->b0, r->b1, g->sp.kw, g->op, ws,
			dx + r->q, r->n);
}

/* One frame of input_grad: sliding windows along the rows (the frame's
** runs, given when gather_slides), else blocks of pixels. */
static void input_grad_frame_avx2(const sep_geom *g, const gather_run *runs, int64_t count,
                                  const float *D, const float *ws, float *dx)
{
	const int64_t op = g->op, taps = g->taps, hw = g->sp.h * g->sp.w;
	if (runs != NULL) {
		slide_gather_runs(g, runs, count, D, ws, dx);
		return;
	}
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	for (int64_t q = 0; q < hw; q += items) {
		const float *p[8];
		float *d[8], sink[8];
		for (int j = 0; j < items; j++) {
			int64_t qj = q + j < hw ? q + j : hw - 1;
			p[j] = D + g->back_base[qj];
			d[j] = q + j < hw ? dx + qj : &sink[j];
		}
		for (int64_t ov = 0; ov < op; ov += lanes) {
			if (lanes == 16)
				gather_block_16(p, g->back_off, taps, ws + ov, op, d);
			else
				gather_block_8(p, g->back_off, taps, ws + ov, op, d);
			for (int j = 0; j < items; j++)
				p[j] += lanes;
		}
	}
}
#endif

/* dx_i += the input gradient of one channel, frame by frame:
**     dx[t, y, x] = sum_{a, b, o} w_space[o, i, a, b] * dS[t, (y + ph - a*dh) / sh,
**                                                        (x + pw - b*dw) / sw, o]
** over the taps that land on an output pixel, read from dS's frame spread
** into D so that every tap is a fixed offset (back_off) and the taps
** that land between or outside the output pixels read zeros.  Each input
** pixel's sum is gathered in registers: nothing is written twice. */
static void input_grad(const sep_geom *g, const gather_run *runs, int64_t nruns,
                       const fv_real *dS, const fv_real *ws, fv_real *D, fv_real *dx)
{
	const fv__conv_window *w = &g->sp;
	const int64_t op = g->op, taps = g->taps, hw = w->h * w->w;
	(void)runs, (void)nruns; /* the AVX2 gathers' only */
	for (int64_t t = 0; t < w->t; t++, dx += hw) {
		spread_frame(g, dS, t, D);
#ifdef SEP_AVX2
		if (g->avx2) {
			input_grad_frame_avx2(g, runs, nruns, D, ws, dx);
			continue;
		}
#endif
		for (int64_t q = 0; q < hw; q++) {
			const fv_real *pq = D + g->back_base[q];
			double acc = 0;
			for (int64_t k = 0; k < taps; k++)
				for (int64_t l = 0; l < op; l++)
					acc += pq[g->back_off[k] + l] * ws[k * op + l];
			dx[q] += (fv_real)acc;
		}
	}
}

/* ---- per-sample work --------------------------------------------------------------- */

typedef struct sep_job {
	const sep_geom *g;
	const fv_real *x, *gout;
	fv_real *out, *dx, *dwt_partials, *dws_partials;
	fv_real *saved_s;  /* (N, C, columns), or NULL */
	fv_real *scratch;  /* slots of slot_size */
	fv_real *s_all;    /* one sample's S_i of every channel when tasks run with
	                      inner threads and nothing is saved, else NULL */
	int64_t slot_size;
	int64_t partials;
	const gather_run *runs; /* input_grad's runs of a frame when it slides, else NULL */
	int64_t nruns;
	bool need_dwt, need_dws;
	bool dx_fresh; /* dx is unset: each channel's part is cleared just before it is summed into */
} sep_job;

/* One thread's scratch: channel i's padded frames P, S_i and dS_i, one
** sample's dOut or output in columns (acc: the sample's, shared by inner
** threads), a frame of dS spread out for dx (D). */
typedef struct sep_slot {
	fv_real *P, *S, *dS, *acc, *D;
} sep_slot;

#define SLOT_PARTS 5

static int64_t slot_part_sizes(const sep_geom *g, int64_t sizes[SLOT_PARTS])
{
	const fv__conv_window *w = &g->s->win;
	sizes[0] = w->t * g->hp * g->wp + FV_CONV_SLACK;
	sizes[1] = sizes[2] = g->npix * g->op;
	sizes[3] = g->gcol * g->plane * g->op; /* >= the output's columns */
	sizes[4] = (g->hq * g->wq + SLIDE_ITEMS) * g->op; /* slide_gather reads past a row */
	return fv__sep_parts(NULL, sizes, SLOT_PARTS, NULL);
}

static sep_slot slot_at(const sep_job *j, int slot)
{
	int64_t sizes[SLOT_PARTS];
	slot_part_sizes(j->g, sizes);
	fv_real *parts[SLOT_PARTS];
	fv__sep_parts(j->scratch + slot * j->slot_size, sizes, SLOT_PARTS, parts);
	return (sep_slot){parts[0], parts[1], parts[2], parts[3], parts[4]};
}

int fv__sep_thread_slot(int slot, int threads)
{
#ifdef _OPENMP
	if (threads > 1)
		return slot + omp_get_thread_num();
#endif
	(void)threads;
	return slot;
}

static const fv_real *x_channel(const sep_job *j, int64_t n, int64_t i)
{
	const fv__conv_window *w = &j->g->s->win;
	return j->x + (n * j->g->s->c + i) * w->t * w->h * w->w;
}

/* Channel i's S_i of sample n: kept for the backward, a sample-wide buffer,
** or the slot's own. */
static fv_real *s_of(const sep_job *j, const sep_slot *b, int64_t n, int64_t i)
{
	int64_t size = j->g->npix * j->g->op;
	if (j->saved_s != NULL)
		return j->saved_s + (n * j->g->s->c + i) * size;
	return j->s_all != NULL ? j->s_all + i * size : b->S;
}

/* Channel i's frames as the spatial windows read them: x itself when the
** window reads exactly the unpadded frame (no padding, nothing left over),
** else a zero-padded copy in the slot (whose padding alloc_scratch cleared). */
static const fv_real *padded_input(const sep_job *j, const sep_slot *b, int64_t n, int64_t i)
{
	const sep_geom *g = j->g;
	const fv__conv_window *w = &g->sp;
	const fv_real *x = x_channel(j, n, i);
	if (w->ph == 0 && w->pw == 0 && g->hp == w->h && g->wp == w->w)
		return x;
	int64_t rows = w->h < g->hp - w->ph ? w->h : g->hp - w->ph;
	int64_t cols = w->w < g->wp - w->pw ? w->w : g->wp - w->pw;
	for (int64_t t = 0; t < w->t; t++)
		for (int64_t y = 0; y < rows; y++) {
			const fv_real *src = x + (t * w->h + y) * w->w;
			fv_real *dst = b->P + (t * g->hp + y + w->ph) * g->wp + w->pw;
			for (int64_t c = 0; c < cols; c++)
				dst[c] = src[c];
		}
	return b->P;
}

static void spatial_of(const sep_job *j, const sep_slot *b, int64_t n, int64_t i, fv_real *S)
{
	spatial_pass(j->g, padded_input(j, b, n, i), j->g->ws_p + i * j->g->taps * j->g->op, S);
}

/* dst = S_i kept for the backward, which reads it much later: streamed to
** memory past the caches, so that it neither evicts what the forward is
** using nor has its lines read in first. */
#ifdef SEP_AVX2
AVX2_FN
static void stream_copy(float *dst, const float *src, int64_t n)
{
	for (int64_t e = 0; e < n; e += 8)
		_mm256_stream_ps(dst + e, _mm256_loadu_ps(src + e));
}
#endif

void fv__sep_save(const sep_geom *g, fv_real *dst, const fv_real *S, int64_t n)
{
#ifdef SEP_AVX2
	if (g->avx2 && (uintptr_t)dst % 32 == 0 && n % 8 == 0) {
		stream_copy(dst, S, n);
		return;
	}
#endif
	(void)g;
	memcpy(dst, S, (size_t)n * sizeof(fv_real));
}

/* acc columns [v0, v1) += channel i's temporal pass; the first channel sets them. */
static void temporal_of(const sep_job *j, int64_t i, const fv_real *S, fv_real *acc, int64_t v0,
                        int64_t v1)
{
	const fv__conv_window *w = &j->g->s->win;
	temporal_dir td = forward_dir(j->g);
	temporal_pass(j->g, &td, v0, v1, j->g->wt_p + i * w->kt * j->g->op, S, i == 0, acc);
}

/* ---- between columns and (O, To, plane) --------------------------------------------
** The output and dOut are (O, To, plane) per sample, the passes' buffers
** columns of channel vectors: 8 pixels x 8 channels at a time go from one
** to the other through a transpose in registers, the pixels left over one
** by one.  (Only data moves: results are the same either way.) */

/* Where element (o, r, p) is in the columns (nt frames, frame r at fr0 +
** r) and in the planes (O, To, plane). */
static int64_t at_col(const sep_geom *g, int64_t nt, int64_t fr0, int64_t o, int64_t r, int64_t p)
{
	return fv__col_index(g, nt, fr0 + r, p, o);
}

static int64_t at_plane(const sep_geom *g, int64_t o, int64_t r, int64_t p)
{
	return (o * g->s->win.to + r) * g->plane + p;
}

#ifdef SEP_AVX2
AVX2_FN
static void transpose8(__m256 v[8])
{
	__m256 t[8], u[8];
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
		u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	for (int i = 0; i < 4; i++) {
		v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
		v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
	}
}

/* Frame r of pixels [p0, p0 + 8) and channels [8v, 8v + 8) from src to
** dst: columns to planes when `to_planes`, else planes to columns (the
** absent channels 0). */
AVX2_FN
static void move_block(const sep_geom *g, int64_t nt, int64_t fr0, int64_t v, int64_t r,
                       int64_t p0, const float *src, float *dst, bool to_planes)
{
	int64_t col[8], plane[8], live = g->s->o - v * 8;
	__m256 x[8];
	for (int k = 0; k < 8; k++) {
		col[k] = at_col(g, nt, fr0, v * 8, r, p0 + k);
		plane[k] = at_plane(g, v * 8 + k, r, p0);
	}
	for (int k = 0; k < 8; k++)
		x[k] = to_planes ? _mm256_loadu_ps(src + col[k])
		       : k < live ? _mm256_loadu_ps(src + plane[k])
		                  : _mm256_setzero_ps();
	transpose8(x);
	for (int k = 0; k < 8; k++)
		if (!to_planes)
			_mm256_storeu_ps(dst + col[k], x[k]);
		else if (k < live)
			_mm256_storeu_ps(dst + plane[k], x[k]);
}
#endif

void fv__sep_move_frames(const sep_geom *g, int64_t nt, int64_t fr0, const fv_real *src,
                        fv_real *dst, bool to_planes)
{
	int64_t to = g->s->win.to, o_n = g->s->o, p_vec = 0;
#ifdef SEP_AVX2
	if (g->avx2) {
		p_vec = g->plane / 8 * 8;
		for (int64_t v = 0; v < g->vecs; v++)
			for (int64_t r = 0; r < to; r++)
				for (int64_t p0 = 0; p0 < p_vec; p0 += 8)
					move_block(g, nt, fr0, v, r, p0, src, dst, to_planes);
	}
#endif
	for (int64_t o = 0; o < g->op; o++)
		for (int64_t r = 0; r < to; r++)
			for (int64_t p = p_vec; p < g->plane; p++) {
				int64_t c = at_col(g, nt, fr0, o, r, p);
				if (to_planes && o < o_n)
					dst[at_plane(g, o, r, p)] = src[c];
				else if (!to_planes)
					dst[c] = o < o_n ? src[at_plane(g, o, r, p)] : 0;
			}
}

/* out[n] (O, To, plane) = acc (columns of To frames) without the padding lanes. */
static void store_output(const sep_job *j, int64_t n, const fv_real *acc)
{
	const sep_geom *g = j->g;
	int64_t to = g->s->win.to;
	fv__sep_move_frames(g, to, 0, acc, j->out + n * g->s->o * to * g->plane, true);
}

/* With one thread: channel by channel, so S_i stays in cache between the
** passes.  With several: spatial passes by channel, then temporal passes by
** column; every output sums the channels in the same order. */
static void forward_task(void *ud, int64_t n, int slot, int threads)
{
	const sep_job *j = ud;
	const sep_geom *g = j->g;
	int64_t c = g->s->c, cols = g->plane * g->vecs;
	sep_slot b = slot_at(j, slot);
	if (c == 0)
		memset(b.acc, 0, (size_t)(g->s->win.to * g->plane * g->op) * sizeof(fv_real));
	if (threads <= 1) {
		for (int64_t i = 0; i < c; i++) {
			spatial_of(j, &b, n, i, b.S);
			temporal_of(j, i, b.S, b.acc, 0, cols);
			if (j->saved_s != NULL)
				fv__sep_save(g, s_of(j, &b, n, i), b.S, g->npix * g->op);
		}
		store_output(j, n, b.acc);
		return;
	}
#pragma omp parallel for num_threads(threads) schedule(static)
	for (int64_t i = 0; i < c; i++) {
		sep_slot mine = slot_at(j, fv__sep_thread_slot(slot, threads));
		spatial_of(j, &mine, n, i, s_of(j, &b, n, i));
	}
#pragma omp parallel num_threads(threads)
	{
		/* each thread's share of the columns, through every channel */
		int t = 0, team = 1;
#ifdef _OPENMP
		t = omp_get_thread_num();
		team = omp_get_num_threads();
#endif
		int64_t v0 = t * cols / team, v1 = (t + 1) * cols / team;
		for (int64_t i = 0; i < c; i++)
			temporal_of(j, i, s_of(j, &b, n, i), b.acc, v0, v1);
	}
	store_output(j, n, b.acc);
}

/* ---- backward ------------------------------------------------------------------------ */

/* gout_t (columns of gcol frames, dOut's To after gpad) = dOut[n], padding
** lanes 0; the padding frames, never written, were cleared with the slot. */
static void load_gout(const sep_job *j, int64_t n, fv_real *gout_t)
{
	const sep_geom *g = j->g;
	int64_t to = g->s->win.to;
	fv__sep_move_frames(g, g->gcol, g->gpad, j->gout + n * g->s->o * to * g->plane, gout_t, false);
}

/* The saved S_i come from memory: while channel i is worked on, the next
** channel's are fetched into the outer cache, in order. */
static void prefetch_next_s(const sep_job *j, int64_t n, int64_t i)
{
#ifdef SEP_AVX2
	int64_t next = n * j->g->s->c + i + 1, size = j->g->npix * j->g->op;
	if (j->saved_s == NULL || !j->need_dwt || next >= j->g->s->n * j->g->s->c)
		return;
	for (int64_t e = 0; e < size; e += 16)
		_mm_prefetch((const char *)(j->saved_s + next * size + e), _MM_HINT_T1);
#else
	(void)j, (void)n, (void)i;
#endif
}

/* Every gradient of channel i of sample n. */
static void backward_channel(const sep_job *j, int64_t n, int64_t i, const fv_real *gout_t,
                             fv_real *dwt, fv_real *dws, const sep_slot *b)
{
	const sep_geom *g = j->g;
	const fv__conv_window *w = &g->s->win;
	int64_t kt = w->kt, op = g->op;
	const fv_real *P = NULL;
	prefetch_next_s(j, n, i);
	if (j->need_dwt) {
		const fv_real *S = b->S;
		if (j->saved_s != NULL) {
			S = s_of(j, b, n, i);
		} else {
			P = padded_input(j, b, n, i);
			spatial_pass(g, P, g->ws_p + i * g->taps * op, b->S);
		}
		temporal_weight_grad(g, gout_t, S, dwt + i * kt * op);
	}
	if (!j->need_dws && j->dx == NULL)
		return;
	temporal_dir td = transpose_dir(g);
	temporal_pass(g, &td, 0, g->plane * g->vecs, g->wt_p + i * kt * op, gout_t, true, b->dS);
	if (j->need_dws) {
		if (P == NULL)
			P = padded_input(j, b, n, i);
		spatial_weight_grad(g, b->dS, P, dws + i * g->taps * op);
	}
	if (j->dx != NULL) {
		int64_t size = w->t * w->h * w->w;
		fv_real *dx = j->dx + (n * g->s->c + i) * size;
		if (j->dx_fresh)
			memset(dx, 0, (size_t)size * sizeof(fv_real));
		input_grad(g, j->runs, j->nruns, b->dS, g->ws_p + i * g->taps * op, b->D, dx);
	}
}

void fv__sep_task_partials(const sep_geom *g, int64_t task, fv_real *all_dwt, fv_real *all_dws,
                           fv_real **dwt, fv_real **dws)
{
	int64_t wt_size = g->s->c * g->s->win.kt * g->op, ws_size = g->s->c * g->taps * g->op;
	*dwt = all_dwt ? all_dwt + task * wt_size : NULL;
	*dws = all_dws ? all_dws + task * ws_size : NULL;
	if (*dwt != NULL)
		memset(*dwt, 0, (size_t)wt_size * sizeof(fv_real));
	if (*dws != NULL)
		memset(*dws, 0, (size_t)ws_size * sizeof(fv_real));
}

bool fv__sep_alloc_partials(fv_ctx *ctx, const sep_geom *g, int64_t count, bool dwt, bool dws,
                            fv_real **all_dwt, fv_real **all_dws)
{
	int64_t wt_size = g->s->c * g->s->win.kt * g->op, ws_size = g->s->c * g->taps * g->op;
	*all_dwt = dwt ? fv_ctx_alloc(ctx, (size_t)(count * wt_size) * sizeof(fv_real)) : NULL;
	*all_dws = dws ? fv_ctx_alloc(ctx, (size_t)(count * ws_size) * sizeof(fv_real)) : NULL;
	return (!dwt || *all_dwt != NULL) && (!dws || *all_dws != NULL);
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const sep_job *j = ud;
	const sep_geom *g = j->g;
	const fv__conv_shape *s = g->s;
	int64_t n0 = task * s->n / j->partials, n1 = (task + 1) * s->n / j->partials;
	fv_real *dwt, *dws;
	fv__sep_task_partials(g, task, j->dwt_partials, j->dws_partials, &dwt, &dws);
	sep_slot b = slot_at(j, slot);
	for (int64_t n = n0; n < n1; n++) {
		load_gout(j, n, b.acc);
		const fv_real *gout_t = b.acc;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t i = 0; i < s->c; i++) {
			sep_slot mine = slot_at(j, fv__sep_thread_slot(slot, threads));
			backward_channel(j, n, i, gout_t, dwt, dws, &mine);
		}
	}
}

bool fv__sep_add_weight_grad(fv_ctx *ctx, const sep_geom *g, fv_real *grad,
                             const fv_real *partials, int64_t count, int64_t k)
{
	int64_t c = g->s->c, o_n = g->s->o, size = c * k * g->op;
	fv_real *sum = fv_ctx_alloc(ctx, (size_t)size * sizeof(fv_real));
	if (sum == NULL)
		return false;
	memset(sum, 0, (size_t)size * sizeof(fv_real));
	fv__add_partials(sum, partials, count, size);
	for (int64_t o = 0; o < o_n; o++)
		for (int64_t i = 0; i < c; i++)
			for (int64_t a = 0; a < k; a++)
				grad[(o * c + i) * k + a] += sum[(i * k + a) * g->op + o];
	return true;
}

/* Multiply-adds of the forward: spatial plus temporal pass. */
static double separable_macs(const fv__conv_shape *s)
{
	const fv__conv_window *w = &s->win;
	double nco = (double)s->n * (double)s->c * (double)s->o, plane = (double)(w->ho * w->wo);
	return nco * plane * ((double)(w->t * w->kh * w->kw) + (double)(w->to * w->kt));
}

/* Scratch for `plan`: a slot per thread, and with inner threads and
** nothing saved, room for one sample's S_i of every channel. */
static bool alloc_scratch(fv_ctx *ctx, sep_job *j, const fv__task_plan *plan)
{
	int64_t sizes[SLOT_PARTS], slots = (int64_t)plan->tasks * plan->inner;
	j->slot_size = slot_part_sizes(j->g, sizes);
	int64_t all = plan->inner > 1 && j->saved_s == NULL ? j->g->s->c * j->g->npix * j->g->op : 0;
	j->scratch = fv_ctx_alloc(ctx, (size_t)(slots * j->slot_size + all) * sizeof(fv_real));
	if (j->scratch == NULL)
		return false;
	j->s_all = all > 0 ? j->scratch + slots * j->slot_size : NULL;
	/* padded_input writes the same positions of P for every channel: the
	** padding is cleared here, once */
	for (int64_t slot = 0; slot < slots; slot++)
		memset(slot_at(j, (int)slot).P, 0, (size_t)sizes[0] * sizeof(fv_real));
	return true;
}

/* For the profile: what a call performs (backward: every gradient) and a
** dense conv3d of its shape would (backward: the input and weight
** gradients, twice the forward), and the bytes of the buffers it saves. */
static void note_flops(const sep_geom *g, bool time_first, bool backward)
{
	double space[2], time[2], saved;
	fv__sep_order_macs(g->s, space, time);
	saved = (double)g->s->n * (double)g->s->c * (double)sizeof(fv_real) *
	        (double)(time_first ? fv__tf_saved_size(g) : g->npix * g->op);
	double dense = 2 * fv__dense_conv_macs(g->s) * (backward ? 2 : 1);
	fv__profile_note(2 * (time_first ? time : space)[backward], dense, saved);
}

static fv_status separable_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *grads, const void *aux_)
{
	const sep_aux *aux = aux_;
	const fv__conv_shape *s = &aux->s;
	sep_geom g;
	if (!fv__sep_geom(ctx, &g, s, srcs[1]->data, srcs[2]->data))
		return FV_ERR_NOMEM;
	if (fv__profiling)
		note_flops(&g, aux->time_first, true);
	/* the weight gradients are added to (they are small); dx too in
	** time-first order, else each channel's part is cleared as it comes */
	for (int i = aux->time_first ? 0 : 1; i < 3; i++)
		if (grads[i] != NULL && fv__grad_fresh(ctx, i))
			memset(grads[i]->data, 0, (size_t)grads[i]->numel * sizeof(fv_real));
	if (aux->time_first)
		return fv__tf_backward(ctx, &g, srcs[0]->data, out->grad->data, aux->saved_u,
		                       grads[0] ? grads[0]->data : NULL, grads[1] ? grads[1]->data : NULL,
		                       grads[2] ? grads[2]->data : NULL);
	sep_job j = {.g = &g, .x = srcs[0]->data, .gout = out->grad->data,
	             .dx = grads[0] ? grads[0]->data : NULL,
	             .need_dwt = grads[1] != NULL, .need_dws = grads[2] != NULL,
	             .dx_fresh = fv__grad_fresh(ctx, 0)};
	j.saved_s = j.need_dwt ? aux->saved_s : NULL;
	bool weights = j.need_dwt || j.need_dws;
	j.partials = s->n;
	if (weights && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	fv__task_plan plan = fv__plan_tasks(j.partials, 3 * separable_macs(s));
	if (!alloc_scratch(ctx, &j, &plan))
		return FV_ERR_NOMEM;
	/* input_grad writes the same positions of D for every frame, load_gout
	** those of acc for every sample: the others are cleared here, once */
	for (int slot = 0; slot < plan.tasks * plan.inner; slot++) {
		sep_slot b = slot_at(&j, slot);
		memset(b.acc, 0, (size_t)(g.gcol * g.plane * g.op) * sizeof(fv_real));
		if (j.dx != NULL)
			memset(b.D, 0, (size_t)(g.hq * g.wq * g.op) * sizeof(fv_real));
	}
	if (!fv__sep_alloc_partials(ctx, &g, j.partials, j.need_dwt, j.need_dws, &j.dwt_partials,
	                            &j.dws_partials))
		return FV_ERR_NOMEM;
#ifdef SEP_AVX2
	if (j.dx != NULL && g.avx2 && gather_slides(&g) &&
	    (j.runs = gather_runs(ctx, &g, &j.nruns)) == NULL)
		return FV_ERR_NOMEM;
#endif
	fv__run_tasks(&plan, j.partials, backward_task, &j);
	if (j.need_dwt &&
	    !fv__sep_add_weight_grad(ctx, &g, grads[1]->data, j.dwt_partials, j.partials, s->win.kt))
		return FV_ERR_NOMEM;
	if (j.need_dws &&
	    !fv__sep_add_weight_grad(ctx, &g, grads[2]->data, j.dws_partials, j.partials, g.taps))
		return FV_ERR_NOMEM;
	return FV_OK;
}

/* out = the conv of x, spatial pass first; every S_i kept in aux when `keep`
** (only the temporal weight gradient reads them). */
static bool space_first_forward(fv_ctx *ctx, const sep_geom *g, const fv_tensor *x, fv_tensor *out,
                                bool keep, sep_aux *aux)
{
	const fv__conv_shape *s = g->s;
	sep_job j = {.g = g, .x = x->data, .out = out->data};
	if (keep) {
		size_t bytes = (size_t)(s->n * s->c * g->npix * g->op) * sizeof(fv_real);
		if ((j.saved_s = aux->saved_s = fv_ctx_alloc(ctx, bytes)) == NULL)
			return false;
	}
	fv__task_plan plan = fv__plan_tasks(s->n, separable_macs(s));
	if (!alloc_scratch(ctx, &j, &plan))
		return false;
	fv__run_tasks(&plan, s->n, forward_task, &j);
#ifdef SEP_AVX2
	_mm_sfence(); /* the streamed S_i (fv__sep_save) are visible before anything reads them */
#endif
	return true;
}

/* The same, temporal pass first; every U_i kept when `keep` (only the
** spatial weight gradient reads them). */
static bool time_first_forward(fv_ctx *ctx, const sep_geom *g, const fv_tensor *x, fv_tensor *out,
                               bool keep, sep_aux *aux)
{
	const fv__conv_shape *s = g->s;
	if (keep) {
		size_t bytes = (size_t)(s->n * s->c * fv__tf_saved_size(g)) * sizeof(fv_real);
		if ((aux->saved_u = fv_ctx_alloc(ctx, bytes)) == NULL)
			return false;
	}
	return fv__tf_forward(ctx, g, x->data, out->data, aux->saved_u) == FV_OK;
}

static const fv_op_def separable_def = {"conv3d_separable", separable_backward};

static fv_status check_weights(const fv_tensor *wt, const fv_tensor *ws, const char *wdesc)
{
	if (wt->ndim != 3)
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: w_time must be (O, C, kt); got shape %s",
		                fv_shape_str(wt->ndim, wt->shape));
	if (ws->ndim != 4)
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: w_space must be (O, C, kh, kw); got shape %s",
		                fv_shape_str(ws->ndim, ws->shape));
	if (wt->shape[0] != ws->shape[0] || wt->shape[1] != ws->shape[1])
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: %s disagree on the channels (O, C)", wdesc);
	return FV_OK;
}

fv_tensor *fv_conv3d_separable(fv_ctx *ctx, fv_tensor *x, fv_tensor *w_time,
                               fv_tensor *w_space, const fv_conv3d_params *p)
{
	FV_CHECK_INPUT(x);
	FV_CHECK_INPUT(w_time);
	FV_CHECK_INPUT(w_space);
	char wdesc[200];
	snprintf(wdesc, sizeof wdesc, "w_time %s and w_space %s",
	         fv_shape_str(w_time->ndim, w_time->shape), fv_shape_str(w_space->ndim, w_space->shape));
	if (check_weights(w_time, w_space, wdesc) != FV_OK)
		return NULL;
	sep_aux aux = {0};
	fv__conv_shape *s = &aux.s;
	int64_t kernel[3] = {w_time->shape[2], w_space->shape[2], w_space->shape[3]};
	if (fv__conv_shape_init(s, "fv_conv3d_separable", x, w_time->shape[0], w_time->shape[1],
	                        kernel, p, false, wdesc) != FV_OK)
		return NULL;
	const fv__conv_window *w = &s->win;
	int64_t shape[5] = {s->n, s->o, w->to, w->ho, w->wo};
	fv_tensor *out = fv_ctx_empty(ctx, 5, shape);
	if (out == NULL)
		return NULL;
	sep_geom g;
	if (!fv__sep_geom(ctx, &g, s, w_time->data, w_space->data))
		return NULL;
	fv_tensor *srcs[3] = {x, w_time, w_space};
	bool grads = fv_op_needs_grad(ctx, 3, srcs);
	/* the one choice of order: the backward follows aux.time_first */
	aux.time_first = fv__tf_chosen(s);
	if (aux.time_first ? !time_first_forward(ctx, &g, x, out, grads && w_space->requires_grad, &aux)
	                   : !space_first_forward(ctx, &g, x, out, grads && w_time->requires_grad, &aux))
		return NULL;
	if (fv__profiling)
		note_flops(&g, aux.time_first, false);
	if (fv_op_record(ctx, out, &separable_def, 3, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}
