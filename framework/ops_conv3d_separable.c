/*
** ops_conv3d_separable.c: conv3d with a rank-one weight per channel pair,
** w[o,i,t,h,w] = w_time[o,i,t] * w_space[o,i,h,w], the hot path of the
** default retina core.
**
** Computed in two passes instead of one dense conv (about 10x fewer FLOPs
** for the default model):
**   spatial:  S_i[o, t] = w_space[o, i] (*) x[n, i, t]   for every input frame t
**             (per input channel a GEMM of O x kh*kw by the channel's
**             spatial im2col, frames in cache-sized blocks)
**   temporal: out[n, o, to] += sum_tau w_time[o, i, tau] * S_i[o, to*st - pt + tau*dt]
** Both run per sample and per input channel, so S_i (O x T x Ho x Wo) stays
** in cache and nothing batch-sized is kept.  The backward runs the same
** passes transposed: dS_i from dOut through the temporal pass, dw_time
** from <dOut, S_i> (S_i is recomputed rather than stored), dw_space and dx
** from the spatial GEMMs.  Weight gradients are summed in fixed partial
** sums over sample ranges, so results do not depend on the thread count.
*/
#include <stdio.h>
#include <string.h>

#include "conv_kernels.h"

/* One temporal pass of one (o, i) pair: `rows` destination frames, taps
** through `map` (rows x kt source frames, -1 in the padding).  When the
** stride and dilation are 1, also as a slide: the source of (r, q) is
** r + off + q, of nsrc frames, weight wt[q] or, reversed (the transpose),
** wt[kt - 1 - q]. */
typedef struct temporal_pass {
	int64_t rows, kt;
	const int64_t *map;
	bool slide, reversed;
	int64_t off, nsrc;
} temporal_pass;

typedef struct sep_aux {
	fv__conv_shape s; /* win: the whole kt x kh x kw window over all C channels */
} sep_aux;

typedef struct sep_job {
	const fv__conv_shape *s;
	fv__conv_window sp;           /* one channel, spatial only, every input frame */
	const fv_real *x, *wt, *ws, *gout;
	fv_real *out, *dx, *dwt_partials, *dws_partials;
	fv_real *scratch;
	int64_t slot_size;
	int64_t frames;               /* input frames per spatial column block */
	int64_t partials;
	int64_t *map_fwd, *map_bwd;   /* see temporal_maps() */
	temporal_pass fwd, bwd;       /* out from S_i; dS_i from dOut */
	fv_real *zeros;               /* one frame of zeros (wgrad_taps) */
} sep_job;

/* The per-channel spatial conv as a window over all input frames. */
static fv__conv_window spatial_window(const fv__conv_window *w)
{
	fv__conv_window sp = *w;
	sp.c = 1;
	sp.kt = 1;
	sp.st = 1;
	sp.dt = 1;
	sp.pt = 0;
	sp.to = w->t;
	return sp;
}

/* ---- the two passes ------------------------------------------------------------- */

/* Scratch of one task: channel i's padded frames P and their gradient dP,
** S_i and dS_i (O, T, Ho*Wo), a column block and its gradient. */
typedef struct sep_slot {
	fv_real *P, *dP, *S, *dS, *cols, *dcols;
} sep_slot;

static int64_t slot_part_sizes(const sep_job *j, int64_t sizes[6])
{
	const fv__conv_window *sp = &j->sp;
	int64_t plane = sp->ho * sp->wo;
	sizes[0] = sizes[1] = fv__padded_size(sp, 0, sp->to);
	sizes[2] = sizes[3] = j->s->o * sp->to * plane;
	sizes[4] = sizes[5] = sp->kh * sp->kw * j->frames * plane + FV_CONV_SLACK;
	int64_t total = 0;
	for (int i = 0; i < 6; i++)
		total += sizes[i];
	return total;
}

static sep_slot slot_at(const sep_job *j, int slot)
{
	int64_t sizes[6];
	slot_part_sizes(j, sizes);
	fv_real *p = j->scratch + slot * j->slot_size, *parts[6];
	for (int i = 0; i < 6; i++) {
		parts[i] = p;
		p += sizes[i];
	}
	/* col2vol reads into the slack of dcols (and ignores what it finds) */
	memset(parts[5] + sizes[5] - FV_CONV_SLACK, 0, FV_CONV_SLACK * sizeof(fv_real));
	return (sep_slot){parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]};
}

/* S (O, T, Ho*Wo) = w_space[:, i] (*) x[n, i], frames in column blocks.
** Leaves channel i's padded frames in b->P. */
static void spatial_pass(const sep_job *j, const fv_real *xi, int64_t i, const sep_slot *b,
                         int threads)
{
	const fv__conv_window *sp = &j->sp;
	int64_t k = sp->kh * sp->kw, plane = sp->ho * sp->wo, c = j->s->c;
	bool pointwise = fv__window_is_pointwise(sp);
	if (!pointwise)
		fv__pad_frames(sp, xi, 0, sp->to, b->P);
	for (int64_t f0 = 0; f0 < sp->to; f0 += j->frames) {
		int64_t f1 = f0 + j->frames < sp->to ? f0 + j->frames : sp->to;
		const fv_real *cols = xi + f0 * plane;
		int64_t ld = sp->t * plane;
		if (!pointwise) {
			fv__vol2col(sp, b->P, 0, sp->to, f0, f1, b->cols);
			cols = b->cols;
			ld = (f1 - f0) * plane;
		}
		fv__gemm(false, false, j->s->o, (f1 - f0) * plane, k, 1, j->ws + i * k, c * k, cols, ld,
		         0, b->S + f0 * plane, sp->to * plane, threads);
	}
}

/* The input frame tap tau of output frame to reads, or -1 in the padding. */
static inline int64_t tap_frame(const fv__conv_window *w, int64_t to, int64_t tau)
{
	int64_t t = to * w->st - w->pt + tau * w->dt;
	return (t < 0 || t >= w->t) ? -1 : t;
}

/* The output frame whose tap tau reads input frame t, or -1. */
static inline int64_t tap_output(const fv__conv_window *w, int64_t t, int64_t tau)
{
	int64_t num = t + w->pt - tau * w->dt;
	if (num < 0 || num % w->st != 0 || num / w->st >= w->to)
		return -1;
	return num / w->st;
}

/*
** Both temporal passes are gathers over frames of `plane` pixels:
**     dst[r] += sum_tau wt[tau] * src[map[r][tau]]      (map < 0: padding)
** forward:   r = output frame, map = tap_frame     (src S_i, dst out)
** transpose: r = input frame,  map = tap_output    (src dOut, dst dS_i)
** The kernel keeps a block of GATHER_ROWS frames x GATHER_PIXELS pixels in
** registers across all taps: eight independent vector accumulators hide
** the FMA latency, and dst is loaded and stored once per block.
*/
#define GATHER_ROWS 4
#define GATHER_PIXELS 16

#ifdef FV_CONV_AVX2
/* Plain C keeps the accumulators in memory and, in ISO C mode, does not
** fuse the multiply-adds; the intrinsics do both. */
#define ROW_LOAD(b) \
	__m256 a##b##0 = _mm256_loadu_ps(dst + (b) * plane), a##b##1 = _mm256_loadu_ps(dst + (b) * plane + 8)
#define ROW_FMA(b)                                                                   \
	do {                                                                         \
		int64_t r = map[(b) * kt + tau];                                     \
		if (r >= 0) {                                                        \
			a##b##0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + r * plane), a##b##0);     \
			a##b##1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + r * plane + 8), a##b##1); \
		}                                                                    \
	} while (0)
#define ROW_STORE(b)                                         \
	do {                                                 \
		_mm256_storeu_ps(dst + (b) * plane, a##b##0);     \
		_mm256_storeu_ps(dst + (b) * plane + 8, a##b##1); \
	} while (0)

static void gather_block(int64_t kt, const int64_t *map, const fv_real *wt,
                         const fv_real *restrict src, fv_real *restrict dst, int64_t plane)
{
	ROW_LOAD(0);
	ROW_LOAD(1);
	ROW_LOAD(2);
	ROW_LOAD(3);
	for (int64_t tau = 0; tau < kt; tau++) {
		__m256 wv = _mm256_broadcast_ss(wt + tau);
		ROW_FMA(0);
		ROW_FMA(1);
		ROW_FMA(2);
		ROW_FMA(3);
	}
	ROW_STORE(0);
	ROW_STORE(1);
	ROW_STORE(2);
	ROW_STORE(3);
}

/* With temporal stride and dilation 1, frame r reads source frames r + off
** + q, so neighbouring frames share them: each source frame is loaded once
** per block and feeds up to four accumulators (weight w[q] of frame r0 + b
** is wbase[q * wstep]), which halves the loads of gather_block. */
#define ROW_SLIDE(b)                                                             \
	do {                                                                     \
		int64_t q = u - r0 - off - (b);                                  \
		if (q >= 0 && q < kt) {                                          \
			__m256 wv = _mm256_broadcast_ss(wbase + q * wstep);      \
			a##b##0 = _mm256_fmadd_ps(wv, s0, a##b##0);              \
			a##b##1 = _mm256_fmadd_ps(wv, s1, a##b##1);              \
		}                                                                \
	} while (0)

static void slide_block(int64_t kt, int64_t off, int64_t nsrc, const float *wbase, int64_t wstep,
                        const float *restrict src, float *restrict dst, int64_t plane, int64_t r0)
{
	ROW_LOAD(0);
	ROW_LOAD(1);
	ROW_LOAD(2);
	ROW_LOAD(3);
	int64_t u0 = r0 + off, u1 = r0 + off + GATHER_ROWS - 1 + kt;
	if (u0 < 0)
		u0 = 0;
	if (u1 > nsrc)
		u1 = nsrc;
	for (int64_t u = u0; u < u1; u++) {
		__m256 s0 = _mm256_loadu_ps(src + u * plane), s1 = _mm256_loadu_ps(src + u * plane + 8);
		ROW_SLIDE(0);
		ROW_SLIDE(1);
		ROW_SLIDE(2);
		ROW_SLIDE(3);
	}
	ROW_STORE(0);
	ROW_STORE(1);
	ROW_STORE(2);
	ROW_STORE(3);
}
#else
static void gather_block(int64_t kt, const int64_t *map, const fv_real *wt,
                         const fv_real *restrict src, fv_real *restrict dst, int64_t plane)
{
	fv_real acc[GATHER_ROWS][GATHER_PIXELS];
	for (int b = 0; b < GATHER_ROWS; b++)
		for (int q = 0; q < GATHER_PIXELS; q++)
			acc[b][q] = dst[b * plane + q];
	for (int64_t tau = 0; tau < kt; tau++) {
		fv_real wv = wt[tau];
		for (int b = 0; b < GATHER_ROWS; b++) {
			int64_t r = map[b * kt + tau];
			if (r < 0)
				continue;
			const fv_real *s = src + r * plane;
			for (int q = 0; q < GATHER_PIXELS; q++)
				acc[b][q] += wv * s[q];
		}
	}
	for (int b = 0; b < GATHER_ROWS; b++)
		for (int q = 0; q < GATHER_PIXELS; q++)
			dst[b * plane + q] = acc[b][q];
}
#endif

/* One frame's pixels [p0, plane), when they do not fill a block. */
static void gather_rest(int64_t kt, const int64_t *map_r, const fv_real *wt,
                        const fv_real *restrict src, fv_real *restrict dst_r, int64_t p0,
                        int64_t plane)
{
	for (int64_t tau = 0; tau < kt; tau++) {
		if (map_r[tau] < 0)
			continue;
		const fv_real *s = src + map_r[tau] * plane;
		for (int64_t q = p0; q < plane; q++)
			dst_r[q] += wt[tau] * s[q];
	}
}

static void block_of(const temporal_pass *tp, const fv_real *wt, const fv_real *src,
                     fv_real *dst, int64_t plane, int64_t r0, int64_t p)
{
#ifdef FV_CONV_AVX2
	if (tp->slide) {
		slide_block(tp->kt, tp->off, tp->nsrc, tp->reversed ? wt + tp->kt - 1 : wt,
		            tp->reversed ? -1 : 1, src + p, dst + r0 * plane + p, plane, r0);
		return;
	}
#endif
	gather_block(tp->kt, tp->map + r0 * tp->kt, wt, src + p, dst + r0 * plane + p, plane);
}

static void temporal_gather(const temporal_pass *tp, const fv_real *wt, const fv_real *src,
                            fv_real *dst, int64_t plane)
{
	int64_t r = 0, kt = tp->kt, pblocks = plane / GATHER_PIXELS * GATHER_PIXELS;
	const int64_t *map = tp->map;
	for (; r + GATHER_ROWS <= tp->rows; r += GATHER_ROWS) {
		for (int64_t p = 0; p < pblocks; p += GATHER_PIXELS)
			block_of(tp, wt, src, dst, plane, r, p);
		for (int b = 0; b < GATHER_ROWS && pblocks < plane; b++)
			gather_rest(kt, map + (r + b) * kt, wt, src, dst + (r + b) * plane, pblocks, plane);
	}
	for (; r < tp->rows; r++)
		gather_rest(kt, map + r * kt, wt, src, dst + r * plane, 0, plane);
}

/* The frame maps of both passes: forward (to x kt) then transpose (t x kt). */
static void temporal_maps(const fv__conv_window *w, int64_t *fwd, int64_t *bwd)
{
	for (int64_t to = 0; to < w->to; to++)
		for (int64_t tau = 0; tau < w->kt; tau++)
			fwd[to * w->kt + tau] = tap_frame(w, to, tau);
	for (int64_t t = 0; t < w->t; t++)
		for (int64_t tau = 0; tau < w->kt; tau++)
			bwd[t * w->kt + tau] = tap_output(w, t, tau);
}

/*
** dwt[tau] += sum_to <g_o[to], S_o[map[to][tau]]>: the correlation of dOut
** with S_i.  Taps are taken in groups of WGRAD_TAPS, one vector
** accumulator per tap, so every dOut chunk is loaded once per group and
** the horizontal sums happen once per tap.
*/
#define WGRAD_TAPS 8

#ifdef FV_CONV_AVX2
static float hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

#define WGRAD_FMA(q) acc[q] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(sp[q] + p), acc[q])

/* Row r's part when every tap of the group reads a frame (the usual case;
** slots past the group read a frame of zeros): no test in the pixel loop. */
static void wgrad_row_full(const float *gr, const float *const *sp, int64_t pv, __m256 *acc)
{
	for (int64_t p = 0; p < pv; p += 8) {
		__m256 gv = _mm256_loadu_ps(gr + p);
		WGRAD_FMA(0);
		WGRAD_FMA(1);
		WGRAD_FMA(2);
		WGRAD_FMA(3);
		WGRAD_FMA(4);
		WGRAD_FMA(5);
		WGRAD_FMA(6);
		WGRAD_FMA(7);
	}
}

static void wgrad_row_some(const float *gr, const float *const *sp, unsigned valid, int64_t pv,
                           __m256 *acc)
{
	for (int64_t p = 0; p < pv; p += 8) {
		__m256 gv = _mm256_loadu_ps(gr + p);
		for (int q = 0; q < WGRAD_TAPS; q++)
			if (valid >> q & 1)
				WGRAD_FMA(q);
	}
}

static void wgrad_taps(int64_t rows, int64_t kt, const int64_t *map, int64_t tau0, int64_t ntaps,
                       const float *g, const float *S, const float *zeros, int64_t plane,
                       float *dwt)
{
	__m256 acc[WGRAD_TAPS];
	float tail[WGRAD_TAPS] = {0};
	for (int q = 0; q < WGRAD_TAPS; q++)
		acc[q] = _mm256_setzero_ps();
	int64_t pv = plane / 8 * 8;
	for (int64_t r = 0; r < rows; r++) {
		const float *gr = g + r * plane, *sp[WGRAD_TAPS];
		const int64_t *m = map + r * kt + tau0;
		unsigned valid = 0;
		for (int q = 0; q < WGRAD_TAPS; q++) {
			bool ok = q < ntaps && m[q] >= 0;
			sp[q] = ok ? S + m[q] * plane : zeros;
			valid |= (unsigned)ok << q;
		}
		/* taps past ntaps read zeros into accumulators nobody reads */
		if (valid == (1u << ntaps) - 1)
			wgrad_row_full(gr, sp, pv, acc);
		else
			wgrad_row_some(gr, sp, valid, pv, acc);
		for (int q = 0; q < ntaps; q++)
			if (valid >> q & 1)
				for (int64_t p = pv; p < plane; p++)
					tail[q] += gr[p] * sp[q][p];
	}
	for (int q = 0; q < ntaps; q++)
		dwt[tau0 + q] += hsum256(acc[q]) + tail[q];
}
#else
static void wgrad_taps(int64_t rows, int64_t kt, const int64_t *map, int64_t tau0, int64_t ntaps,
                       const fv_real *g, const fv_real *S, const fv_real *zeros, int64_t plane,
                       fv_real *dwt)
{
	(void)zeros;
	for (int64_t q = 0; q < ntaps; q++) {
		fv_real acc = 0;
		for (int64_t r = 0; r < rows; r++) {
			int64_t t = map[r * kt + tau0 + q];
			if (t < 0)
				continue;
			const fv_real *gr = g + r * plane, *sr = S + t * plane;
			for (int64_t p = 0; p < plane; p++)
				acc += gr[p] * sr[p];
		}
		dwt[tau0 + q] += acc;
	}
}
#endif

static void temporal_weight_grad(const fv__conv_window *w, const int64_t *map,
                                 const fv_real *zeros, const fv_real *g_o, const fv_real *S_o,
                                 fv_real *dwt)
{
	int64_t plane = w->ho * w->wo;
	for (int64_t tau0 = 0; tau0 < w->kt; tau0 += WGRAD_TAPS) {
		int64_t n = w->kt - tau0 < WGRAD_TAPS ? w->kt - tau0 : WGRAD_TAPS;
		wgrad_taps(w->to, w->kt, map, tau0, n, g_o, S_o, zeros, plane, dwt);
	}
}

/* Multiply-adds of the forward: spatial plus temporal pass. */
static double separable_macs(const fv__conv_shape *s)
{
	const fv__conv_window *w = &s->win;
	double nco = (double)s->n * (double)s->c * (double)s->o, plane = (double)(w->ho * w->wo);
	return nco * plane * ((double)(w->t * w->kh * w->kw) + (double)(w->to * w->kt));
}

/* The two temporal passes of a call, with their frame maps (and a frame of
** zeros) in the arena. */
static bool plan_temporal(fv_ctx *ctx, sep_job *j)
{
	const fv__conv_window *w = &j->s->win;
	j->map_fwd = fv_ctx_alloc(ctx, (size_t)((w->to + w->t) * w->kt) * sizeof(int64_t));
	if (j->map_fwd == NULL)
		return false;
	j->map_bwd = j->map_fwd + w->to * w->kt;
	temporal_maps(w, j->map_fwd, j->map_bwd);
	int64_t plane = w->ho * w->wo;
	j->zeros = fv_ctx_alloc(ctx, (size_t)plane * sizeof(fv_real));
	if (j->zeros == NULL)
		return false;
	memset(j->zeros, 0, (size_t)plane * sizeof(fv_real));
	bool slide = w->st == 1 && w->dt == 1;
	/* forward: out[to] reads S[to - pt + tau]; transpose: dS[t] reads
	** dOut[t + pt - tau] = dOut[t + pt - (kt - 1) + q] with q = kt - 1 - tau */
	j->fwd = (temporal_pass){w->to, w->kt, j->map_fwd, slide, false, -w->pt, w->t};
	j->bwd = (temporal_pass){w->t, w->kt, j->map_bwd, slide, true, w->pt - (w->kt - 1), w->to};
	return true;
}

/* ---- forward ------------------------------------------------------------------------ */

static void forward_task(void *ud, int64_t n, int slot, int threads)
{
	const sep_job *j = ud;
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t plane = w->ho * w->wo, c = s->c, vol = w->t * w->h * w->w;
	sep_slot b = slot_at(j, slot);
	fv_real *out = j->out + n * s->o * w->to * plane;
	memset(out, 0, (size_t)(s->o * w->to * plane) * sizeof(fv_real));
	for (int64_t i = 0; i < c; i++) {
		spatial_pass(j, j->x + (n * c + i) * vol, i, &b, threads);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t o = 0; o < s->o; o++)
			temporal_gather(&j->fwd, j->wt + (o * c + i) * w->kt,
			                b.S + o * w->t * plane, out + o * w->to * plane, plane);
	}
}

/* ---- backward ------------------------------------------------------------------------ */

/* dw_space and dx of input channel i from dS_i, through the spatial GEMMs
** block by block.  Needs channel i's padded frames in b->P; when the
** spatial pass just ran with a single block, b->cols is still valid
** (cols_ready). */
static void spatial_backward(const sep_job *j, int64_t n, int64_t i, fv_real *dws,
                             const sep_slot *b, bool cols_ready, int threads)
{
	const fv__conv_window *sp = &j->sp;
	int64_t k = sp->kh * sp->kw, plane = sp->ho * sp->wo, c = j->s->c, o = j->s->o;
	int64_t vol = sp->t * sp->h * sp->w, ldS = sp->to * plane;
	const fv_real *xi = j->x + (n * c + i) * vol, *wsi = j->ws + i * k;
	fv_real *dxi = j->dx ? j->dx + (n * c + i) * vol : NULL;
	bool pointwise = fv__window_is_pointwise(sp);
	if (!pointwise && dxi != NULL)
		memset(b->dP, 0, (size_t)fv__padded_size(sp, 0, sp->to) * sizeof(fv_real));
	for (int64_t f0 = 0; f0 < sp->to; f0 += j->frames) {
		int64_t f1 = f0 + j->frames < sp->to ? f0 + j->frames : sp->to, lb = (f1 - f0) * plane;
		const fv_real *dSb = b->dS + f0 * plane;
		if (pointwise) {
			if (dws != NULL)
				fv__gemm(false, true, o, k, lb, 1, dSb, ldS, xi + f0 * plane, vol, 1, dws + i * k,
				         c * k, threads);
			if (dxi != NULL)
				fv__gemm(true, false, k, lb, o, 1, wsi, c * k, dSb, ldS, 1, dxi + f0 * plane,
				         vol, threads);
			continue;
		}
		if (dws != NULL) {
			if (!cols_ready)
				fv__vol2col(sp, b->P, 0, sp->to, f0, f1, b->cols);
			fv__gemm(false, true, o, k, lb, 1, dSb, ldS, b->cols, lb, 1, dws + i * k, c * k,
			         threads);
		}
		if (dxi != NULL) {
			fv__gemm(true, false, k, lb, o, 1, wsi, c * k, dSb, ldS, 0, b->dcols, lb, threads);
			fv__col2vol(sp, b->dcols, f0, f1, b->dP, 0, sp->to);
		}
	}
	if (!pointwise && dxi != NULL)
		fv__unpad_add(sp, b->dP, 0, sp->to, dxi);
}

static void backward_sample(const sep_job *j, int64_t n, fv_real *dwt, fv_real *dws,
                            const sep_slot *b, int threads)
{
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t plane = w->ho * w->wo, c = s->c, vol = w->t * w->h * w->w;
	const fv_real *g = j->gout + n * s->o * w->to * plane;
	for (int64_t i = 0; i < c; i++) {
		const fv_real *xi = j->x + (n * c + i) * vol;
		if (dwt != NULL) {
			spatial_pass(j, xi, i, b, threads);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
			for (int64_t o = 0; o < s->o; o++)
				temporal_weight_grad(w, j->map_fwd, j->zeros, g + o * w->to * plane,
				                     b->S + o * w->t * plane, dwt + (o * c + i) * w->kt);
		} else if (dws != NULL && !fv__window_is_pointwise(&j->sp)) {
			fv__pad_frames(&j->sp, xi, 0, w->t, b->P);
		}
		if (dws == NULL && j->dx == NULL)
			continue;
		memset(b->dS, 0, (size_t)(s->o * w->t * plane) * sizeof(fv_real));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t o = 0; o < s->o; o++)
			temporal_gather(&j->bwd, j->wt + (o * c + i) * w->kt,
			                g + o * w->to * plane, b->dS + o * w->t * plane, plane);
		spatial_backward(j, n, i, dws, b, dwt != NULL && j->frames >= w->t, threads);
	}
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const sep_job *j = ud;
	const fv__conv_shape *s = j->s;
	int64_t n0 = task * s->n / j->partials, n1 = (task + 1) * s->n / j->partials;
	int64_t wt_size = s->o * s->c * s->win.kt, ws_size = s->o * s->c * s->win.kh * s->win.kw;
	fv_real *dwt = j->dwt_partials ? j->dwt_partials + task * wt_size : NULL;
	fv_real *dws = j->dws_partials ? j->dws_partials + task * ws_size : NULL;
	if (dwt != NULL)
		memset(dwt, 0, (size_t)wt_size * sizeof(fv_real));
	if (dws != NULL)
		memset(dws, 0, (size_t)ws_size * sizeof(fv_real));
	sep_slot b = slot_at(j, slot);
	for (int64_t n = n0; n < n1; n++)
		backward_sample(j, n, dwt, dws, &b, threads);
}

static fv_status separable_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *grads, const void *aux_)
{
	const sep_aux *aux = aux_;
	const fv__conv_shape *s = &aux->s;
	const fv__conv_window *w = &s->win;
	sep_job j = {.s = s, .sp = spatial_window(w), .x = srcs[0]->data, .wt = srcs[1]->data,
	             .ws = srcs[2]->data, .gout = out->grad->data};
	j.dx = grads[0] ? grads[0]->data : NULL;
	j.frames = fv__frames_per_block(&j.sp);
	bool weights = grads[1] != NULL || grads[2] != NULL;
	j.partials = s->n;
	if (weights && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	int64_t sizes[6], wt_size = s->o * s->c * w->kt, ws_size = s->o * s->c * w->kh * w->kw;
	j.slot_size = slot_part_sizes(&j, sizes);
	fv__task_plan plan = fv__plan_tasks(j.partials, 3 * separable_macs(s));
	j.scratch = fv_ctx_alloc(ctx, (size_t)(plan.tasks * j.slot_size) * sizeof(fv_real));
	if (j.scratch == NULL || !plan_temporal(ctx, &j))
		return FV_ERR_NOMEM;
	if (grads[1] != NULL &&
	    !(j.dwt_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * wt_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	if (grads[2] != NULL &&
	    !(j.dws_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * ws_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	fv__run_tasks(&plan, j.partials, backward_task, &j);
	if (grads[1] != NULL)
		fv__add_partials(grads[1]->data, j.dwt_partials, j.partials, wt_size);
	if (grads[2] != NULL)
		fv__add_partials(grads[2]->data, j.dws_partials, j.partials, ws_size);
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
	sep_aux aux;
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
	sep_job j = {.s = s, .sp = spatial_window(w), .x = x->data, .wt = w_time->data,
	             .ws = w_space->data, .out = out->data};
	j.frames = fv__frames_per_block(&j.sp);
	int64_t sizes[6];
	j.slot_size = slot_part_sizes(&j, sizes);
	fv__task_plan plan = fv__plan_tasks(s->n, separable_macs(s));
	j.scratch = fv_ctx_alloc(ctx, (size_t)(plan.tasks * j.slot_size) * sizeof(fv_real));
	if (j.scratch == NULL || !plan_temporal(ctx, &j))
		return NULL;
	fv__run_tasks(&plan, s->n, forward_task, &j);
	fv_tensor *srcs[3] = {x, w_time, w_space};
	if (fv_op_record(ctx, out, &separable_def, 3, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	return out;
}
