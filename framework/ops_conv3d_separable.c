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
** The output channels o are the innermost axis of S_i (rounded up to a
** multiple of the vector width, the extra lanes multiplying zero weights),
** so every kernel is a short loop of vector FMAs over o with a weight
** vector or a broadcast input value: the frames of retina models are a few
** pixels wide (6 in the default model), too narrow to vectorise along,
** while 8 or 16 channels fill a vector exactly.  No column matrix is built.
**
** The backward runs the same passes transposed, per sample and channel:
**   dw_time[o, i, tau] = sum <dOut[to, ., o], S_i[to*st - pt + tau*dt, ., o]>
**   dS_i               = the temporal pass transposed, from dOut
**   dw_space[o, i, k]  = sum_{t,p} dS_i[t, p, o] * P_i[t, base(p) + off(k)]
**   dx_i               = sum_o w_space[o, i, k] * dS_i[t, p, o] scattered
**                        back to the padded frame positions base(p) + off(k)
** When w_time needs a gradient the forward keeps every S_i (the default
** model's second layer: 94 MB at batch 64, in the step arena) so the
** backward does not compute the spatial pass again.  Weight gradients are
** summed in a fixed number of partial sums over sample ranges, and every
** sum runs in an order fixed by the shapes, so results do not depend on
** the thread count.
*/
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "conv_kernels.h"

#ifdef FV_CONV_AVX2
#define LANES 8
#else
#define LANES 1
#endif

/* Long sums (weight gradients) are added up in chunks of about SUM_CHUNK
** terms, then the chunks, which keeps their float rounding error near that
** of a blocked GEMM. */
#define SUM_CHUNK 256

typedef struct sep_aux {
	fv__conv_shape s; /* win: the whole kt x kh x kw window over all C channels */
	fv_real *saved_s;  /* every S_i of the forward (N, C, T, plane, op), or NULL */
} sep_aux;

/* The taps of each row of a temporal pass, padding left out: row r reads
** n[r] frames, its k-th at element offset src[r * kt + k] with the weights
** at offset w[r * kt + k], in increasing tap order. */
typedef struct tap_list {
	int64_t kt;
	int64_t *n, *src, *w;
} tap_list;

/* The geometry of one call and the tables every kernel shares. */
typedef struct sep_geom {
	const fv__conv_shape *s;
	fv__conv_window sp;       /* one channel, spatial window only, every input frame */
	int64_t op;               /* output channels rounded up to LANES */
	int64_t plane, taps;      /* ho*wo; kh*kw */
	int64_t hp, wp;           /* the padded frame */
	int64_t frame;            /* plane * op: one frame of S_i, dS_i, dOut, out */
	int64_t npix;             /* t * plane: the pixels of S_i */
	int64_t *base;            /* npix: where pixel q's window starts in P_i */
	int64_t *off;             /* taps: where tap k sits from a window's start */
	int64_t *map_fwd;         /* to x kt: the input frame of (to, tau), or -1 */
	int64_t *map_bwd;         /* t x kt: the output frame that reads t with tap tau, or -1 */
	tap_list fwd, bwd;        /* map_fwd and map_bwd as tap lists */
	fv_real *ws_p;            /* (C, taps, op): w_space, channels innermost */
	fv_real *wt_p;            /* (C, kt, op): w_time, channels innermost */
	int64_t hq, wq;           /* the frame dS is spread into for dx (see input_grad) */
	int64_t *back_off;        /* taps: where tap k reads in it, from an input pixel's origin */
	int64_t *back_base;       /* h*w: where input pixel q's origin is in it */
	fv_real *zeros;           /* a frame of zeros */
} sep_geom;

static int64_t round_up(int64_t v, int64_t m)
{
	return (v + m - 1) / m * m;
}

static int64_t read_extent(int64_t out, int64_t stride, int64_t k, int64_t dil)
{
	return (out - 1) * stride + (k - 1) * dil + 1;
}

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
	g->op = round_up(s->o, LANES);
	g->plane = w->ho * w->wo;
	g->taps = w->kh * w->kw;
	/* dx reads dS at (y + ph - a*dh, x + pw - b*dw) / stride: spread, with
	** (kh-1)*dh zero rows and (kw-1)*dw zero columns before */
	int64_t u0 = (w->kh - 1) * w->dh, v0 = (w->kw - 1) * w->dw;
	g->hq = u0 + (w->ho - 1) * w->sh + 1;
	if (g->hq < w->h + w->ph + u0)
		g->hq = w->h + w->ph + u0;
	g->wq = v0 + (w->wo - 1) * w->sw + 1;
	if (g->wq < w->w + w->pw + v0)
		g->wq = w->w + w->pw + v0;
	g->hp = read_extent(w->ho, w->sh, w->kh, w->dh);
	g->wp = read_extent(w->wo, w->sw, w->kw, w->dw);
	g->frame = g->plane * g->op;
	g->npix = w->t * g->plane;
}

static void fill_tap_list(tap_list *tl, const int64_t *map, int64_t rows, int64_t frame,
                          int64_t op)
{
	for (int64_t r = 0; r < rows; r++) {
		int64_t n = 0;
		for (int64_t tau = 0; tau < tl->kt; tau++)
			if (map[r * tl->kt + tau] >= 0) {
				tl->src[r * tl->kt + n] = map[r * tl->kt + tau] * frame;
				tl->w[r * tl->kt + n++] = tau * op;
			}
		tl->n[r] = n;
	}
}

/* The tables and the repacked weights, in the arena. */
static bool geom_tables(fv_ctx *ctx, sep_geom *g, const fv_real *wt, const fv_real *ws)
{
	const fv__conv_window *w = &g->s->win;
	int64_t c = g->s->c, o = g->s->o, kt = w->kt;
	size_t ints = (size_t)(g->npix + 2 * g->taps + w->h * w->w + (w->to + w->t) * (3 * kt + 1));
	size_t reals = (size_t)(c * (g->taps + kt) * g->op + g->frame);
	g->base = fv_ctx_alloc(ctx, ints * sizeof(int64_t));
	g->ws_p = fv_ctx_alloc(ctx, reals * sizeof(fv_real));
	if (g->base == NULL || g->ws_p == NULL)
		return false;
	g->off = g->base + g->npix;
	g->back_off = g->off + g->taps;
	g->back_base = g->back_off + g->taps;
	g->map_fwd = g->back_base + w->h * w->w;
	g->map_bwd = g->map_fwd + w->to * kt;
	g->fwd = (tap_list){kt, g->map_bwd + w->t * kt, NULL, NULL};
	g->fwd.src = g->fwd.n + w->to;
	g->fwd.w = g->fwd.src + w->to * kt;
	g->bwd = (tap_list){kt, g->fwd.w + w->to * kt, NULL, NULL};
	g->bwd.src = g->bwd.n + w->t;
	g->bwd.w = g->bwd.src + w->t * kt;
	g->wt_p = g->ws_p + c * g->taps * g->op;
	g->zeros = g->wt_p + c * kt * g->op;
	memset(g->ws_p, 0, reals * sizeof(fv_real));

	for (int64_t t = 0, q = 0; t < w->t; t++)
		for (int64_t y = 0; y < w->ho; y++)
			for (int64_t x = 0; x < w->wo; x++, q++)
				g->base[q] = (t * g->hp + y * w->sh) * g->wp + x * w->sw;
	for (int64_t a = 0; a < w->kh; a++)
		for (int64_t b = 0; b < w->kw; b++) {
			g->off[a * w->kw + b] = a * w->dh * g->wp + b * w->dw;
			g->back_off[a * w->kw + b] = -(a * w->dh * g->wq + b * w->dw) * g->op;
		}
	int64_t origin = (w->ph + (w->kh - 1) * w->dh) * g->wq + w->pw + (w->kw - 1) * w->dw;
	for (int64_t y = 0, q = 0; y < w->h; y++)
		for (int64_t x = 0; x < w->w; x++, q++)
			g->back_base[q] = (origin + y * g->wq + x) * g->op;
	for (int64_t to = 0; to < w->to; to++)
		for (int64_t tau = 0; tau < kt; tau++)
			g->map_fwd[to * kt + tau] = tap_frame(w, to, tau);
	for (int64_t t = 0; t < w->t; t++)
		for (int64_t tau = 0; tau < kt; tau++)
			g->map_bwd[t * kt + tau] = tap_output(w, t, tau);
	fill_tap_list(&g->fwd, g->map_fwd, w->to, g->frame, g->op);
	fill_tap_list(&g->bwd, g->map_bwd, w->t, g->frame, g->op);

	for (int64_t oc = 0; oc < o; oc++)
		for (int64_t i = 0; i < c; i++) {
			for (int64_t k = 0; k < g->taps; k++)
				g->ws_p[(i * g->taps + k) * g->op + oc] = ws[(oc * c + i) * g->taps + k];
			for (int64_t tau = 0; tau < kt; tau++)
				g->wt_p[(i * kt + tau) * g->op + oc] = wt[(oc * c + i) * kt + tau];
		}
	return true;
}

/* ---- kernels ---------------------------------------------------------------------------
** Each kernel has a plain C version (the float64 build, machines without
** AVX2) and an AVX2 one.  The AVX2 ones work on register blocks of 12 or 8
** vector accumulators: 6 items x 16 channels when the rounded channel count
** is a multiple of 16, else 8 items x 8 channels; an item is a pixel, a tap
** or a frame depending on the kernel.  The item pointers of a block are
** passed as arrays, so that a partial block (the last one) can repeat its
** last item: the repeated results are stored to the same place twice. */

#ifdef FV_CONV_AVX2
#define FOR6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define FOR8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define ZERO_16(j) __m256 a##j = _mm256_setzero_ps(), b##j = _mm256_setzero_ps();
#define ZERO_8(j) __m256 a##j = _mm256_setzero_ps();
#define ITEM(j) const float *p##j = p[j];
#define STORE_16(j)                           \
	_mm256_storeu_ps(d[j], a##j);         \
	_mm256_storeu_ps(d[j] + 8, b##j);
#define STORE_8(j) _mm256_storeu_ps(d[j], a##j);
#define ADD_16(j)                                                          \
	_mm256_storeu_ps(d[j], _mm256_add_ps(_mm256_loadu_ps(d[j]), a##j));     \
	_mm256_storeu_ps(d[j] + 8, _mm256_add_ps(_mm256_loadu_ps(d[j] + 8), b##j));
#define ADD_8(j) _mm256_storeu_ps(d[j], _mm256_add_ps(_mm256_loadu_ps(d[j]), a##j));
/* Keep two vectors in registers: left to itself GCC folds their loads into
** each FMA, which makes the blocks of 12 accumulators load-bound. */
#define IN_REGISTERS(u, v) __asm__("" : "+x"(u), "+x"(v))

/* d[j] = sum_k p[j][off[k]] * w[k * ldw]: the spatial pass of a block of
** pixels (p[j]: where pixel j's window starts), one weight row per tap. */
static void spatial_block_16(const float *const *p, const int64_t *off, int64_t taps,
                             const float *w, int64_t ldw, float *const *d)
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

/* d[j] += sum_{i < n} g[i * ld] * p[j][i * ld]: the correlation of one
** frame range with each of a block of frames (the temporal weight
** gradient; p[j]: tap j's source frame). */
static void correlate_block_16(const float *const *p, const float *g, int64_t n, int64_t ld,
                               float *const *d)
{
	FOR6(ITEM)
	FOR6(ZERO_16)
	for (int64_t i = 0; i < n * ld; i += ld) {
		__m256 g0 = _mm256_loadu_ps(g + i), g1 = _mm256_loadu_ps(g + i + 8);
		IN_REGISTERS(g0, g1);
#define TAP(j)                                                                 \
	a##j = _mm256_fmadd_ps(g0, _mm256_loadu_ps(p##j + i), a##j);           \
	b##j = _mm256_fmadd_ps(g1, _mm256_loadu_ps(p##j + i + 8), b##j);
		FOR6(TAP)
#undef TAP
	}
	FOR6(ADD_16)
}

static void correlate_block_8(const float *const *p, const float *g, int64_t n, int64_t ld,
                              float *const *d)
{
	FOR8(ITEM)
	FOR8(ZERO_8)
	for (int64_t i = 0; i < n * ld; i += ld) {
		__m256 g0 = _mm256_loadu_ps(g + i);
#define TAP(j) a##j = _mm256_fmadd_ps(g0, _mm256_loadu_ps(p##j + i), a##j);
		FOR8(TAP)
#undef TAP
	}
	FOR8(ADD_8)
}

/* d[j] += sum_{q < n} P[base[q] + o[j]] * dS[q * ld]: the spatial weight
** gradient of a block of taps (o[j]: tap j's offset in the window). */
static void tap_grad_block_16(const int64_t *o, const float *P, const int64_t *base,
                              const float *dS, int64_t n, int64_t ld, float *const *d)
{
#define OFF(j) const int64_t o##j = o[j];
	FOR6(OFF)
	FOR6(ZERO_16)
	for (int64_t q = 0; q < n; q++, dS += ld) {
		__m256 d0 = _mm256_loadu_ps(dS), d1 = _mm256_loadu_ps(dS + 8);
		IN_REGISTERS(d0, d1);
		const float *pq = P + base[q];
#define TAP(j)                                                \
	{                                                     \
		__m256 x = _mm256_broadcast_ss(pq + o##j);    \
		a##j = _mm256_fmadd_ps(x, d0, a##j);          \
		b##j = _mm256_fmadd_ps(x, d1, b##j);          \
	}
		FOR6(TAP)
#undef TAP
	}
	FOR6(ADD_16)
}

static void tap_grad_block_8(const int64_t *o, const float *P, const int64_t *base,
                             const float *dS, int64_t n, int64_t ld, float *const *d)
{
	FOR8(OFF)
#undef OFF
	FOR8(ZERO_8)
	for (int64_t q = 0; q < n; q++, dS += ld) {
		__m256 d0 = _mm256_loadu_ps(dS);
		const float *pq = P + base[q];
#define TAP(j) a##j = _mm256_fmadd_ps(_mm256_broadcast_ss(pq + o##j), d0, a##j);
		FOR8(TAP)
#undef TAP
	}
	FOR8(ADD_8)
}

/* The temporal pass over a block of a frame's vectors: dst[v] += sum over
** the taps k of w[woff[k]][lane(v)] * src[soff[k] + v] for NV vectors (12, 4 or 1),
** held in registers across all taps.  `lanes` is the rounded channel count,
** 8 or 16: the weight vector repeats every 1 or 2 vectors, and blocks start
** on an even vector. */
#define TEMPORAL_BLOCK(NV, FOR_V)                                                          \
	static void temporal_block_##NV(int64_t n_taps, const float *src, const int64_t *soff, \
	                                const float *w, const int64_t *woff, int lanes,    \
	                                float *dst)                                        \
	{                                                                                  \
		FOR_V(T_LOAD)                                                              \
		for (int64_t k = 0; k < n_taps; k++) {                                     \
			const float *s = src + soff[k];                                    \
			__m256 w0 = _mm256_loadu_ps(w + woff[k]);                          \
			__m256 w1 = lanes == 16 ? _mm256_loadu_ps(w + woff[k] + 8) : w0;   \
			IN_REGISTERS(w0, w1);                                              \
			FOR_V(T_TAP)                                                       \
		}                                                                          \
		FOR_V(T_STORE)                                                             \
	}
#define T_LOAD(j) __m256 a##j = _mm256_loadu_ps(dst + 8 * (j));
#define T_TAP(j) a##j = _mm256_fmadd_ps((j) % 2 ? w1 : w0, _mm256_loadu_ps(s + 8 * (j)), a##j);
#define T_STORE(j) _mm256_storeu_ps(dst + 8 * (j), a##j);
#define FOR12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define FOR4(M) M(0) M(1) M(2) M(3)
#define FOR1(M) M(0)
TEMPORAL_BLOCK(12, FOR12)
TEMPORAL_BLOCK(4, FOR4)
TEMPORAL_BLOCK(1, FOR1)

static float hsum256(__m256 v)
{
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* d[j] += sum over channels of sum_k p[j][off[k]] * w[k * ldw]: the input
** gradient of a block of input pixels, gathered from the taps that read
** them (p[j]: pixel j's origin in the spread dS frame). */
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

/* Items of a block: 6 with 16 lanes, else 8. */
static int block_items(int64_t lanes)
{
	return lanes % 16 == 0 ? 6 : 8;
}
#endif /* FV_CONV_AVX2 */

/* S (npix, op) = the spatial pass of one channel's padded frames P with
** its weights w (taps, op). */
static void spatial_pass(const sep_geom *g, const fv_real *P, const fv_real *w, fv_real *S)
{
	const int64_t op = g->op, taps = g->taps, npix = g->npix, *base = g->base, *off = g->off;
#ifdef FV_CONV_AVX2
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	for (int64_t q = 0; q < npix; q += items) {
		const float *p[8];
		float *d[8];
		for (int j = 0; j < items; j++) {
			int64_t qj = q + j < npix ? q + j : npix - 1;
			p[j] = P + base[qj];
			d[j] = S + qj * op;
		}
		for (int64_t ov = 0; ov < op; ov += lanes) {
			if (lanes == 16)
				spatial_block_16(p, off, taps, w + ov, op, d);
			else
				spatial_block_8(p, off, taps, w + ov, op, d);
			for (int j = 0; j < items; j++)
				d[j] += lanes;
		}
	}
#else
	for (int64_t q = 0; q < npix; q++)
		for (int64_t l = 0; l < op; l++) {
			fv_real acc = 0;
			for (int64_t k = 0; k < taps; k++)
				acc += P[base[q] + off[k]] * w[k * op + l];
			S[q * op + l] = acc;
		}
#endif
}

#ifdef FV_CONV_AVX2
/* One block of nv vectors at vector v of every row (see tap_lists()). */
static void temporal_rows(const sep_geom *g, int64_t r0, int64_t r1, const tap_list *tl,
                          const float *w, const float *src, float *dst, int64_t v, int nv)
{
	/* the weight vector of vector v: lanes (v mod op/8) * 8 ... */
	const float *wl = w + (v % (g->op / 8)) * 8, *sv = src + v * 8;
	for (int64_t r = r0; r < r1; r++) {
		const int64_t *soff = tl->src + r * tl->kt, *woff = tl->w + r * tl->kt;
		float *d = dst + r * g->frame + v * 8;
		if (nv == 12)
			temporal_block_12(tl->n[r], sv, soff, wl, woff, (int)g->op, d);
		else if (nv == 4)
			temporal_block_4(tl->n[r], sv, soff, wl, woff, (int)g->op, d);
		else
			temporal_block_1(tl->n[r], sv, soff, wl, woff, (int)g->op, d);
	}
}
#endif

/* dst[r] += sum_tau w[tau] * src[map[r][tau]] for rows [r0, r1), frames of
** (plane, op), channel-wise weights w (kt, op).  The forward temporal pass
** (rows: output frames) and its transpose (rows: input frames).  Block by
** block of the frame, all rows, so that the frames' block stays in cache
** while the rows reuse it. */
static void temporal_pass(const sep_geom *g, int64_t r0, int64_t r1, const tap_list *tl,
                          const fv_real *w, const fv_real *src, fv_real *dst)
{
	const int64_t op = g->op, frame = g->frame;
#ifdef FV_CONV_AVX2
	if (op == 8 || op == 16) {
		int64_t v = 0, vectors = frame / 8;
		for (; v + 12 <= vectors; v += 12)
			temporal_rows(g, r0, r1, tl, w, src, dst, v, 12);
		for (; v + 4 <= vectors; v += 4)
			temporal_rows(g, r0, r1, tl, w, src, dst, v, 4);
		for (; v < vectors; v++)
			temporal_rows(g, r0, r1, tl, w, src, dst, v, 1);
		return;
	}
#endif
	for (int64_t r = r0; r < r1; r++) {
		fv_real *d = dst + r * frame;
		for (int64_t k = 0; k < tl->n[r]; k++) {
			const fv_real *s = src + tl->src[r * tl->kt + k];
			const fv_real *wk = w + tl->w[r * tl->kt + k];
			for (int64_t e = 0; e < frame; e++)
				d[e] += wk[e % op] * s[e];
		}
	}
}

/* dwt (kt, op) += sum_{r, p} gout[r, p] * S[map[r][tau], p], channel-wise:
** the temporal weight gradient of one channel and sample.  Taps in blocks;
** padding taps read a frame of zeros. */
static void temporal_weight_grad(const sep_geom *g, const fv_real *gout, const fv_real *S,
                                 fv_real *dwt)
{
	const fv__conv_window *w = &g->s->win;
	const int64_t op = g->op, plane = g->plane, frame = g->frame, kt = w->kt;
	const int64_t *map = g->map_fwd;
#ifdef FV_CONV_AVX2
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	for (int64_t tau0 = 0; tau0 < kt; tau0 += items)
		for (int64_t ov = 0; ov < op; ov += lanes) {
			/* each row's sum is added to `part`, then `part` to dwt */
			float part[8][16] = {{0}};
			float *pd[8];
			for (int j = 0; j < items; j++)
				pd[j] = part[j];
			for (int64_t r = 0; r < w->to; r++) {
				const float *p[8];
				for (int j = 0; j < items; j++) {
					int64_t t = tau0 + j < kt ? map[r * kt + tau0 + j] : -1;
					p[j] = (t >= 0 ? S + t * frame : g->zeros) + ov;
				}
				if (lanes == 16)
					correlate_block_16(p, gout + r * frame + ov, plane, op, pd);
				else
					correlate_block_8(p, gout + r * frame + ov, plane, op, pd);
			}
			for (int j = 0; j < items && tau0 + j < kt; j++)
				for (int l = 0; l < lanes; l++)
					dwt[(tau0 + j) * op + ov + l] += part[j][l];
		}
#else
	for (int64_t tau = 0; tau < kt; tau++)
		for (int64_t l = 0; l < op; l++) {
			fv_real acc = 0;
			for (int64_t r = 0; r < w->to; r++) {
				int64_t t = map[r * kt + tau];
				if (t < 0)
					continue;
				for (int64_t p = 0; p < plane; p++)
					acc += gout[r * frame + p * op + l] * S[t * frame + p * op + l];
			}
			dwt[tau * op + l] += acc;
		}
#endif
}

/* dws (taps, op) += sum_q dS[q] * P[base(q) + off(k)]: the spatial weight
** gradient of one channel and sample. */
static void spatial_weight_grad(const sep_geom *g, const fv_real *dS, const fv_real *P,
                                fv_real *dws)
{
	const int64_t op = g->op, taps = g->taps, npix = g->npix, *base = g->base, *off = g->off;
#ifdef FV_CONV_AVX2
	int items = block_items(op), lanes = items == 6 ? 16 : 8;
	for (int64_t k0 = 0; k0 < taps; k0 += items) {
		int64_t o[8];
		for (int j = 0; j < items; j++)
			o[j] = off[k0 + j < taps ? k0 + j : taps - 1];
		for (int64_t ov = 0; ov < op; ov += lanes)
			for (int64_t q0 = 0; q0 < npix; q0 += SUM_CHUNK) {
				int64_t n = npix - q0 < SUM_CHUNK ? npix - q0 : SUM_CHUNK;
				float part[8][16] = {{0}};
				float *pd[8];
				for (int j = 0; j < items; j++)
					pd[j] = part[j];
				if (lanes == 16)
					tap_grad_block_16(o, P, base + q0, dS + q0 * op + ov, n, op, pd);
				else
					tap_grad_block_8(o, P, base + q0, dS + q0 * op + ov, n, op, pd);
				for (int j = 0; j < items && k0 + j < taps; j++)
					for (int l = 0; l < lanes; l++)
						dws[(k0 + j) * op + ov + l] += part[j][l];
			}
	}
#else
	for (int64_t k = 0; k < taps; k++)
		for (int64_t l = 0; l < op; l++) {
			fv_real acc = 0;
			for (int64_t q = 0; q < npix; q++)
				acc += dS[q * op + l] * P[base[q] + off[k]];
			dws[k * op + l] += acc;
		}
#endif
}

/* dS's frame t spread into D (hq, wq, op): pixel (py, px) at row
** (kh-1)*dh + py*sh, column (kw-1)*dw + px*sw.  The other positions are
** zero: D is cleared once per channel and they are never written. */
static void spread_frame(const sep_geom *g, const fv_real *dS_t, fv_real *D)
{
	const fv__conv_window *w = &g->sp;
	int64_t op = g->op, row_len = w->wo * op;
	fv_real *d = D + ((w->kh - 1) * w->dh * g->wq + (w->kw - 1) * w->dw) * op;
	for (int64_t py = 0; py < w->ho; py++, d += w->sh * g->wq * op, dS_t += row_len) {
		if (w->sw == 1) {
			memcpy(d, dS_t, (size_t)row_len * sizeof(fv_real));
			continue;
		}
		for (int64_t px = 0; px < w->wo; px++)
			memcpy(d + px * w->sw * op, dS_t + px * op, (size_t)op * sizeof(fv_real));
	}
}

/* dx_i += the input gradient of one channel, frame by frame:
**     dx[t, y, x] = sum_{a, b, o} w_space[o, i, a, b] * dS[t, (y + ph - a*dh) / sh,
**                                                        (x + pw - b*dw) / sw, o]
** over the taps that land on an output pixel, read from dS's frame spread
** into D so that every tap is a fixed offset (back_off) and the taps
** that land between or outside the output pixels read zeros.  Each input
** pixel's sum is gathered in registers: nothing is written twice. */
static void input_grad(const sep_geom *g, const fv_real *dS, const fv_real *ws, fv_real *D,
                       fv_real *dx)
{
	const fv__conv_window *w = &g->sp;
	const int64_t op = g->op, taps = g->taps, hw = w->h * w->w;
	for (int64_t t = 0; t < w->t; t++, dx += hw) {
		spread_frame(g, dS + t * g->frame, D);
#ifdef FV_CONV_AVX2
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
#else
		for (int64_t q = 0; q < hw; q++) {
			const fv_real *pq = D + g->back_base[q];
			fv_real acc = 0;
			for (int64_t k = 0; k < taps; k++)
				for (int64_t l = 0; l < op; l++)
					acc += pq[g->back_off[k] + l] * ws[k * op + l];
			dx[q] += acc;
		}
#endif
	}
}

/* ---- per-sample work --------------------------------------------------------------- */

typedef struct sep_job {
	const sep_geom *g;
	const fv_real *x, *gout;
	fv_real *out, *dx, *dwt_partials, *dws_partials;
	fv_real *saved_s;  /* (N, C, npix, op), or NULL */
	fv_real *scratch;  /* slots of slot_size */
	fv_real *s_all;    /* one sample's S_i of every channel when tasks run with
	                      inner threads and nothing is saved, else NULL */
	int64_t slot_size;
	int64_t partials;
	bool need_dwt, need_dws;
} sep_job;

/* One thread's scratch: channel i's padded frames P, S_i and dS_i, one
** sample's dOut or output with channels innermost (acc: the sample's,
** shared by inner threads), a frame of dS spread out for dx (D). */
typedef struct sep_slot {
	fv_real *P, *S, *dS, *acc, *D;
} sep_slot;

#define SLOT_PARTS 5

static int64_t slot_part_sizes(const sep_geom *g, int64_t sizes[SLOT_PARTS])
{
	sizes[0] = g->s->win.t * g->hp * g->wp + FV_CONV_SLACK;
	sizes[1] = sizes[2] = g->npix * g->op;
	sizes[3] = g->s->win.to * g->frame;
	sizes[4] = g->hq * g->wq * g->op;
	int64_t total = 0;
	for (int i = 0; i < SLOT_PARTS; i++)
		total += round_up(sizes[i], 16); /* keeps each part 64-byte aligned */
	return total;
}

static sep_slot slot_at(const sep_job *j, int slot)
{
	int64_t sizes[SLOT_PARTS];
	slot_part_sizes(j->g, sizes);
	fv_real *p = j->scratch + slot * j->slot_size, *parts[SLOT_PARTS];
	for (int i = 0; i < SLOT_PARTS; i++) {
		parts[i] = p;
		p += round_up(sizes[i], 16);
	}
	return (sep_slot){parts[0], parts[1], parts[2], parts[3], parts[4]};
}

static int thread_slot(int slot, int threads)
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

static void spatial_of(const sep_job *j, const sep_slot *b, int64_t n, int64_t i, fv_real *S)
{
	fv__pad_frames(&j->g->sp, x_channel(j, n, i), 0, j->g->s->win.t, b->P);
	spatial_pass(j->g, b->P, j->g->ws_p + i * j->g->taps * j->g->op, S);
}

static void temporal_of(const sep_job *j, int64_t i, const fv_real *S, fv_real *acc, int64_t r0,
                        int64_t r1)
{
	const fv__conv_window *w = &j->g->s->win;
	temporal_pass(j->g, r0, r1, &j->g->fwd, j->g->wt_p + i * w->kt * j->g->op, S, acc);
}

/* out[n] (O, To, plane) = acc (To, plane, op) without the padding lanes. */
static void store_output(const sep_job *j, int64_t n, const fv_real *acc)
{
	const sep_geom *g = j->g;
	int64_t to = g->s->win.to, o_n = g->s->o;
	fv_real *out = j->out + n * o_n * to * g->plane;
	for (int64_t o = 0; o < o_n; o++)
		for (int64_t q = 0; q < to * g->plane; q++)
			out[o * to * g->plane + q] = acc[q * g->op + o];
}

/* With one thread: channel by channel, so S_i stays in cache between the
** passes.  With several: spatial passes by channel, then temporal passes by
** output frame; every output sums the channels in the same order. */
static void forward_task(void *ud, int64_t n, int slot, int threads)
{
	const sep_job *j = ud;
	const fv__conv_window *w = &j->g->s->win;
	int64_t c = j->g->s->c;
	sep_slot b = slot_at(j, slot);
	memset(b.acc, 0, (size_t)(w->to * j->g->frame) * sizeof(fv_real));
	if (threads <= 1) {
		for (int64_t i = 0; i < c; i++) {
			fv_real *S = s_of(j, &b, n, i);
			spatial_of(j, &b, n, i, S);
			temporal_of(j, i, S, b.acc, 0, w->to);
		}
		store_output(j, n, b.acc);
		return;
	}
#pragma omp parallel for num_threads(threads) schedule(static)
	for (int64_t i = 0; i < c; i++) {
		sep_slot mine = slot_at(j, thread_slot(slot, threads));
		spatial_of(j, &mine, n, i, s_of(j, &b, n, i));
	}
#pragma omp parallel for num_threads(threads) schedule(static)
	for (int64_t r = 0; r < w->to; r++)
		for (int64_t i = 0; i < c; i++)
			temporal_of(j, i, s_of(j, &b, n, i), b.acc, r, r + 1);
	store_output(j, n, b.acc);
}

/* ---- backward ------------------------------------------------------------------------ */

/* gout_t (To, plane, op) = dOut[n] with channels innermost, padding lanes 0. */
static void load_gout(const sep_job *j, int64_t n, fv_real *gout_t)
{
	const sep_geom *g = j->g;
	int64_t to = g->s->win.to, o_n = g->s->o;
	const fv_real *gn = j->gout + n * o_n * to * g->plane;
	memset(gout_t, 0, (size_t)(to * g->frame) * sizeof(fv_real));
	for (int64_t o = 0; o < o_n; o++)
		for (int64_t q = 0; q < to * g->plane; q++)
			gout_t[q * g->op + o] = gn[o * to * g->plane + q];
}

/* Every gradient of channel i of sample n. */
static void backward_channel(const sep_job *j, int64_t n, int64_t i, const fv_real *gout_t,
                             fv_real *dwt, fv_real *dws, const sep_slot *b)
{
	const sep_geom *g = j->g;
	const fv__conv_window *w = &g->s->win;
	int64_t kt = w->kt, op = g->op;
	bool padded = false;
	if (j->need_dwt) {
		const fv_real *S = b->S;
		if (j->saved_s != NULL) {
			S = s_of(j, b, n, i);
		} else {
			spatial_of(j, b, n, i, b->S);
			padded = true;
		}
		temporal_weight_grad(g, gout_t, S, dwt + i * kt * op);
	}
	if (!j->need_dws && j->dx == NULL)
		return;
	memset(b->dS, 0, (size_t)(g->npix * op) * sizeof(fv_real));
	temporal_pass(g, 0, w->t, &g->bwd, g->wt_p + i * kt * op, gout_t, b->dS);
	if (j->need_dws) {
		if (!padded)
			fv__pad_frames(&g->sp, x_channel(j, n, i), 0, w->t, b->P);
		spatial_weight_grad(g, b->dS, b->P, dws + i * g->taps * op);
	}
	if (j->dx != NULL) {
		memset(b->D, 0, (size_t)(g->hq * g->wq * op) * sizeof(fv_real));
		input_grad(g, b->dS, g->ws_p + i * g->taps * op, b->D,
		           j->dx + (n * g->s->c + i) * w->t * w->h * w->w);
	}
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const sep_job *j = ud;
	const sep_geom *g = j->g;
	const fv__conv_shape *s = g->s;
	int64_t n0 = task * s->n / j->partials, n1 = (task + 1) * s->n / j->partials;
	int64_t wt_size = s->c * s->win.kt * g->op, ws_size = s->c * g->taps * g->op;
	fv_real *dwt = j->dwt_partials ? j->dwt_partials + task * wt_size : NULL;
	fv_real *dws = j->dws_partials ? j->dws_partials + task * ws_size : NULL;
	if (dwt != NULL)
		memset(dwt, 0, (size_t)wt_size * sizeof(fv_real));
	if (dws != NULL)
		memset(dws, 0, (size_t)ws_size * sizeof(fv_real));
	sep_slot b = slot_at(j, slot);
	for (int64_t n = n0; n < n1; n++) {
		load_gout(j, n, b.acc);
		const fv_real *gout_t = b.acc;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t i = 0; i < s->c; i++) {
			sep_slot mine = slot_at(j, thread_slot(slot, threads));
			backward_channel(j, n, i, gout_t, dwt, dws, &mine);
		}
	}
}

/* grad (O, C, k) += the partial sums (C, k, op), added in their fixed order. */
static bool add_weight_grad(fv_ctx *ctx, const sep_geom *g, fv_real *grad, const fv_real *partials,
                            int64_t count, int64_t k)
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
	j->s_all = all > 0 && j->scratch != NULL ? j->scratch + slots * j->slot_size : NULL;
	return j->scratch != NULL;
}

static fv_status separable_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *grads, const void *aux_)
{
	const sep_aux *aux = aux_;
	const fv__conv_shape *s = &aux->s;
	sep_geom g;
	geom_shape(&g, s);
	if (!geom_tables(ctx, &g, srcs[1]->data, srcs[2]->data))
		return FV_ERR_NOMEM;
	sep_job j = {.g = &g, .x = srcs[0]->data, .gout = out->grad->data,
	             .dx = grads[0] ? grads[0]->data : NULL, .saved_s = aux->saved_s,
	             .need_dwt = grads[1] != NULL, .need_dws = grads[2] != NULL};
	bool weights = j.need_dwt || j.need_dws;
	j.partials = s->n;
	if (weights && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	int64_t wt_size = s->c * s->win.kt * g.op, ws_size = s->c * g.taps * g.op;
	fv__task_plan plan = fv__plan_tasks(j.partials, 3 * separable_macs(s));
	j.saved_s = j.need_dwt ? aux->saved_s : NULL;
	if (!alloc_scratch(ctx, &j, &plan))
		return FV_ERR_NOMEM;
	if (j.need_dwt &&
	    !(j.dwt_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * wt_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	if (j.need_dws &&
	    !(j.dws_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * ws_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	fv__run_tasks(&plan, j.partials, backward_task, &j);
	if (j.need_dwt &&
	    !add_weight_grad(ctx, &g, grads[1]->data, j.dwt_partials, j.partials, s->win.kt))
		return FV_ERR_NOMEM;
	if (j.need_dws &&
	    !add_weight_grad(ctx, &g, grads[2]->data, j.dws_partials, j.partials, g.taps))
		return FV_ERR_NOMEM;
	return FV_OK;
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
	geom_shape(&g, s);
	if (!geom_tables(ctx, &g, w_time->data, w_space->data))
		return NULL;
	fv_tensor *srcs[3] = {x, w_time, w_space};
	sep_job j = {.g = &g, .x = x->data, .out = out->data};
	/* only the temporal weight gradient reads S_i */
	if (fv_op_needs_grad(ctx, 3, srcs) && w_time->requires_grad) {
		size_t bytes = (size_t)(s->n * s->c * g.npix * g.op) * sizeof(fv_real);
		if ((j.saved_s = aux.saved_s = fv_ctx_alloc(ctx, bytes)) == NULL)
			return NULL;
	}
	fv__task_plan plan = fv__plan_tasks(s->n, separable_macs(s));
	if (!alloc_scratch(ctx, &j, &plan))
		return NULL;
	fv__run_tasks(&plan, s->n, forward_task, &j);
	if (fv_op_record(ctx, out, &separable_def, 3, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	return out;
}
