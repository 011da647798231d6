/*
** ops_conv3d_timefirst.c: the separable conv3d (see ops_conv3d_separable.c)
** with the temporal pass first, per sample and input channel i:
**   temporal: U_i[t', q, o] = sum_tau w_time[o, i, tau] * X_i[t'*st - pt + tau*dt, q]
**             for every output frame t' and every input pixel q the spatial
**             window reads, placed in the zero-padded hp x wp grid (the
**             padding of U_i is zero, as it is the temporal pass of zeros)
**   spatial:  out[t', p, o] += sum_k w_space[o, i, k] * U_i[t', base(p) + off(k), o]
** a depthwise spatial pass over the output channels o (the vector lanes).
** When the input frames are small against the padding the spatial window
** needs, or the temporal kernel shrinks the frames a lot, this takes fewer
** multiply-adds than spatial-first (the default model's second layer:
** about 25% fewer, forward and backward); fv__tf_chosen decides by the
** counts (see TF_AUTO: off for now).
**
** The backward, per sample and channel:
**   dU_i[t', q, o]     = sum_k w_space[o, i, k] * dOut at the pixels whose
**                        window has tap k on q (gathered from dOut spread
**                        into the frame of input_grad, see the tables)
**   dw_space[o, i, k]  = sum_{t', p} dOut[t', p, o] * U_i[t', base(p) + off(k), o]
**   dw_time[o, i, tau] = sum_{t', q} dU_i[t', q, o] * X_i[t'*st - pt + tau*dt, q]
**   dx_i[t, q]         = sum_o (the temporal pass of dU_i transposed)[t, q, o]
** The forward keeps the U_i when w_space needs a gradient.  Every sum runs
** in an order fixed by the shapes, as in the spatial-first order.
**
** The environment variable FV_SEPARABLE_ORDER=time or =space forces an
** order (for the tests, which compare the two).
*/
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/conv/conv_separable.h"

/* The time-first tables, on top of the shared geometry. */
typedef struct tf_geom {
	const sep_geom *g;
	int64_t hw;      /* input pixels of a frame */
	int64_t ext;     /* X_i's frames with the temporal padding the pass reads */
	int64_t grid;    /* hp * wp: U_i's pixels */
	int64_t ucol;    /* op * To: one pixel of U_i (To frames of columns) */
	int64_t nreal;   /* input pixels inside the grid */
	int64_t *t_src;  /* nreal * To items of the temporal pass: where they read X_i */
	int64_t *t_dst;  /* ... and where their column is in U_i */
	int64_t *t_off;  /* kt: where tap tau reads from an item's start */
	int64_t *real;   /* nreal: the grid pixel of the input pixels inside it, in order */
	int64_t *b_pt;   /* hw * To, (q, t') order: where (t', q) reads X_i with tap 0 */
	int64_t *u_off;  /* taps: where tap k is in U_i from a window's start */
	int64_t *d_off;  /* taps: where tap k reads in the spread dOut, from a pixel's origin */
} tf_geom;

static int64_t clamp_count(int64_t v, int64_t hi)
{
	return v < 0 ? 0 : v > hi ? hi : v;
}

static bool tf_tables(fv_ctx *ctx, tf_geom *t, const sep_geom *g)
{
	const fv__conv_window *w = &g->s->win;
	int64_t to = w->to, rows = clamp_count(g->hp - w->ph, w->h), cols = clamp_count(g->wp - w->pw, w->w);
	memset(t, 0, sizeof *t);
	t->g = g;
	t->hw = w->h * w->w;
	t->ext = fv__read_extent(to, w->st, w->kt, w->dt);
	t->grid = g->hp * g->wp;
	t->ucol = g->op * to;
	t->nreal = rows * cols;
	size_t ints = (size_t)(2 * t->nreal * to + w->kt + t->nreal + t->hw * to + 2 * g->taps);
	if ((t->t_src = fv_ctx_alloc(ctx, ints * sizeof(int64_t))) == NULL)
		return false;
	t->t_dst = t->t_src + t->nreal * to;
	t->t_off = t->t_dst + t->nreal * to;
	t->real = t->t_off + w->kt;
	t->b_pt = t->real + t->nreal;
	t->u_off = t->b_pt + t->hw * to;
	t->d_off = t->u_off + g->taps;
	for (int64_t tau = 0; tau < w->kt; tau++)
		t->t_off[tau] = tau * w->dt * t->hw;
	for (int64_t y = 0, r = 0; y < rows; y++)
		for (int64_t x = 0; x < cols; x++, r++) {
			t->real[r] = (y + w->ph) * g->wp + x + w->pw;
			for (int64_t f = 0; f < to; f++) {
				t->t_src[r * to + f] = f * w->st * t->hw + y * w->w + x;
				t->t_dst[r * to + f] = fv__col_index(g, to, f, t->real[r], 0);
			}
		}
	for (int64_t q = 0; q < t->hw; q++)
		for (int64_t f = 0; f < to; f++)
			t->b_pt[q * to + f] = f * w->st * t->hw + q;
	for (int64_t k = 0; k < g->taps; k++) {
		t->u_off[k] = g->off[k] * t->ucol;
		t->d_off[k] = g->back_off[k] * to;
	}
	return true;
}

/* ---- the depthwise passes ------------------------------------------------------------
** dst[r] (= when `fresh`, += otherwise) sum_k w[k * op] * src[off[k] + r]
** for the nt frames r of one column (of LANES channels): the spatial pass
** (src: U_i at a window's start) and dU (src: the spread dOut at an input
** pixel's origin).  Blocks of 12 or 8 frames in registers, the rest one by
** one. */

#ifdef SEP_AVX2
#define TF_FOR8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define TF_FOR12(M) TF_FOR8(M) M(8) M(9) M(10) M(11)
#define TF_FOR1(M) M(0)
#define DW_BLOCK(name, FOR_N)                                                               \
	AVX2_FN                                                                             \
	static void name(const float *src, const int64_t *off, int64_t taps, const float *w, \
	                 int64_t ldw, bool fresh, float *d)                                  \
	{                                                                                   \
		FOR_N(DW_ACC)                                                               \
		for (int64_t k = 0; k < taps; k++, w += ldw) {                              \
			__m256 wv = _mm256_loadu_ps(w);                                     \
			const float *s = src + off[k];                                      \
			FOR_N(DW_FMA)                                                       \
		}                                                                           \
		FOR_N(DW_STORE)                                                             \
	}
#define DW_ACC(j) __m256 a##j = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(d + 8 * (j));
#define DW_FMA(j) a##j = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 8 * (j)), a##j);
#define DW_STORE(j) _mm256_storeu_ps(d + 8 * (j), a##j);
DW_BLOCK(dw_block_12, TF_FOR12)
DW_BLOCK(dw_block_8, TF_FOR8)
DW_BLOCK(dw_block_1, TF_FOR1)
#undef DW_ACC
#undef DW_FMA
#undef DW_STORE

/* d[j * dstep] (= when `fresh`, += otherwise) sum_{a < kh, b < kw}
** w[a * kw * op + b * wstep] * src[row[a] + (j + b) * step] for n <= 6
** items j, consecutive pixels along a row: the tap b + 1 of item j is the
** tap b of item j + 1, so the window slides along the row in registers (one
** load a tap instead of six).  Loads past the items' last pixel are zero. */
AVX2_FN
static void slide_row(const float *src, const int64_t *row, int64_t kh, int64_t kw, int64_t step,
                      const float *w, int64_t op, int64_t wstep, bool fresh, float *d,
                      int64_t dstep, int n)
{
	const int64_t last = n - 1 + kw - 1; /* the last pixel read */
#define SR_ACC(j) \
	__m256 a##j = fresh || (j) >= n ? _mm256_setzero_ps() : _mm256_loadu_ps(d + (j) * dstep);
	SR_ACC(0) SR_ACC(1) SR_ACC(2) SR_ACC(3) SR_ACC(4) SR_ACC(5)
#undef SR_ACC
	for (int64_t a = 0; a < kh; a++) {
		const float *s = src + row[a], *wa = w + a * kw * op;
#define SR_SRC(j) __m256 s##j = (j) <= last ? _mm256_loadu_ps(s + (j) * step) : _mm256_setzero_ps();
		SR_SRC(0) SR_SRC(1) SR_SRC(2) SR_SRC(3) SR_SRC(4) SR_SRC(5)
#undef SR_SRC
		for (int64_t b = 0; b < kw; b++) {
			__m256 wv = _mm256_loadu_ps(wa + b * wstep);
#define SR_FMA(j) a##j = _mm256_fmadd_ps(wv, s##j, a##j);
			SR_FMA(0) SR_FMA(1) SR_FMA(2) SR_FMA(3) SR_FMA(4) SR_FMA(5)
#undef SR_FMA
			s0 = s1; s1 = s2; s2 = s3; s3 = s4; s4 = s5;
			s5 = 6 + b <= last ? _mm256_loadu_ps(s + (6 + b) * step) : _mm256_setzero_ps();
		}
	}
#define SR_STORE(j) if ((j) < n) _mm256_storeu_ps(d + (j) * dstep, a##j);
	SR_STORE(0) SR_STORE(1) SR_STORE(2) SR_STORE(3) SR_STORE(4) SR_STORE(5)
#undef SR_STORE
}

/* slide_row for a full run of 6 pixels on two frames at once (the second
** at fstep from the first): 12 sums in registers, one weight load for 12
** FMAs that read their pixel straight from memory.  The same sums in the
** same order as slide_row, without its edge tests. */
AVX2_FN
static void slide_row6x2(const float *src, const int64_t *row, int64_t kh, int64_t kw,
                         int64_t step, int64_t fstep, const float *w, int64_t op, int64_t wstep,
                         bool fresh, float *d, int64_t dstep, int64_t dfstep)
{
#define S2_ACC(j)                                                                         \
	__m256 a##j = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(d + (j) * dstep);       \
	__m256 b##j = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(d + (j) * dstep + dfstep);
	S2_ACC(0) S2_ACC(1) S2_ACC(2) S2_ACC(3) S2_ACC(4) S2_ACC(5)
#undef S2_ACC
	for (int64_t a = 0; a < kh; a++) {
		const float *s = src + row[a], *wa = w + a * kw * op;
		for (int64_t b = 0; b < kw; b++, s += step) {
			__m256 wv = _mm256_loadu_ps(wa + b * wstep);
#define S2_FMA(j)                                                            \
	a##j = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + (j) * step), a##j);      \
	b##j = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + (j) * step + fstep), b##j);
			S2_FMA(0) S2_FMA(1) S2_FMA(2) S2_FMA(3) S2_FMA(4) S2_FMA(5)
#undef S2_FMA
		}
	}
#define S2_STORE(j)                                    \
	_mm256_storeu_ps(d + (j) * dstep, a##j);       \
	_mm256_storeu_ps(d + (j) * dstep + dfstep, b##j);
	S2_STORE(0) S2_STORE(1) S2_STORE(2) S2_STORE(3) S2_STORE(4) S2_STORE(5)
#undef S2_STORE
}
#endif

static void dw_column(const sep_geom *g, const fv_real *src, const int64_t *off, const fv_real *w,
                      bool fresh, fv_real *dst, int64_t nt)
{
#ifdef SEP_AVX2
	if (g->avx2) {
		for (int64_t r = 0; r < nt;) {
			int64_t n = nt - r >= 12 ? 12 : nt - r >= 8 ? 8 : 1;
			const float *s = src + 8 * r;
			if (n == 12)
				dw_block_12(s, off, g->taps, w, g->op, fresh, dst + 8 * r);
			else if (n == 8)
				dw_block_8(s, off, g->taps, w, g->op, fresh, dst + 8 * r);
			else
				dw_block_1(s, off, g->taps, w, g->op, fresh, dst + 8 * r);
			r += n;
		}
		return;
	}
#endif
	for (int64_t r = 0; r < nt; r++)
		for (int64_t l = 0; l < LANES; l++) {
			fv_real *d = dst + r * LANES + l;
			double acc = fresh ? 0 : *d;
			for (int64_t k = 0; k < g->taps; k++)
				acc += w[k * g->op + l] * src[off[k] + r * LANES + l];
			*d = (fv_real)acc;
		}
}

/* d[j * op] += sum_{p < px, t < nt} G[p * gstep + t] * U[ubase[p] + o[j] + t],
** channel-wise, for N taps j: the spatial weight gradient. */
#ifdef SEP_AVX2
#define DOT_BLOCK(name, FOR_N)                                                                  \
	AVX2_FN                                                                                 \
	static void name(const float *G, int64_t gstep, const float *U, const int64_t *ubase,   \
	                 int64_t px, int64_t nt, const int64_t *o, float *d, int64_t ld)         \
	{                                                                                       \
		FOR_N(DOT_OFF)                                                                  \
		FOR_N(DOT_ZERO)                                                                 \
		for (int64_t p = 0; p < px; p++, G += gstep) {                                  \
			const float *u = U + ubase[p];                                          \
			for (int64_t t = 0; t < 8 * nt; t += 8) {                               \
				__m256 gv = _mm256_loadu_ps(G + t);                             \
				FOR_N(DOT_FMA)                                                  \
			}                                                                       \
		}                                                                               \
		FOR_N(DOT_ADD)                                                                  \
	}
#define DOT_OFF(j) const int64_t o##j = o[j];
#define DOT_ZERO(j) __m256 a##j = _mm256_setzero_ps();
#define DOT_FMA(j) a##j = _mm256_fmadd_ps(gv, _mm256_loadu_ps(u + o##j + t), a##j);
#define DOT_ADD(j) _mm256_storeu_ps(d + (j) * ld, _mm256_add_ps(_mm256_loadu_ps(d + (j) * ld), a##j));
#define TF_FOR5(M) M(0) M(1) M(2) M(3) M(4)
DOT_BLOCK(dot_block_12, TF_FOR12)
DOT_BLOCK(dot_block_8, TF_FOR8)
DOT_BLOCK(dot_block_5, TF_FOR5)
#undef DOT_OFF
#undef DOT_ZERO
#undef DOT_FMA
#undef DOT_ADD

/* Taps a dot block: the one of 12, 8 and 5 that wastes the fewest FMAs on
** a partial last block (the larger on a tie). */
static int dot_items(int64_t taps)
{
	static const int sizes[3] = {12, 8, 5};
	int best = 12;
	for (int s = 0; s < 3; s++)
		if ((taps + sizes[s] - 1) / sizes[s] * sizes[s] < (taps + best - 1) / best * best)
			best = sizes[s];
	return best;
}

#define DOT_TERMS 256 /* at most, in a register sum */

static void spatial_weight_grad_avx2(const tf_geom *tg, const float *gout, const float *U,
                                     float *dws)
{
	const sep_geom *g = tg->g;
	const int64_t taps = g->taps, to = g->s->win.to, gstep = g->vecs * g->gcol * 8;
	int items = dot_items(taps);
	int64_t group = to < DOT_TERMS ? DOT_TERMS / to : 1, ubase[DOT_TERMS];
	for (int64_t v = 0; v < g->vecs; v++)
		for (int64_t k0 = 0; k0 < taps; k0 += items) {
			int64_t o[12];
			float part[12][8];
			memset(part, 0, sizeof part);
			for (int j = 0; j < items; j++)
				o[j] = tg->u_off[k0 + j < taps ? k0 + j : taps - 1];
			for (int64_t p = 0; p < g->plane; p += group) {
				int64_t px = g->plane - p < group ? g->plane - p : group;
				for (int64_t e = 0; e < px; e++)
					ubase[e] = fv__col_index(g, to, 0, g->base[p + e], v * 8);
				const float *G = gout + fv__col_index(g, g->gcol, g->gpad, p, v * 8);
				if (items == 12)
					dot_block_12(G, gstep, U, ubase, px, to, o, part[0], 8);
				else if (items == 8)
					dot_block_8(G, gstep, U, ubase, px, to, o, part[0], 8);
				else
					dot_block_5(G, gstep, U, ubase, px, to, o, part[0], 8);
			}
			for (int j = 0; j < items && k0 + j < taps; j++)
				for (int l = 0; l < 8; l++)
					dws[(k0 + j) * g->op + v * 8 + l] += part[j][l];
		}
}
#endif

/* dws (taps, op) += the spatial weight gradient of one channel and sample
** (gout: dOut in columns of gcol frames; U: U_i). */
static void spatial_weight_grad(const tf_geom *tg, const fv_real *gout, const fv_real *U,
                                fv_real *dws)
{
	const sep_geom *g = tg->g;
	const int64_t to = g->s->win.to;
#ifdef SEP_AVX2
	if (g->avx2) {
		spatial_weight_grad_avx2(tg, gout, U, dws);
		return;
	}
#endif
	for (int64_t k = 0; k < g->taps; k++)
		for (int64_t o = 0; o < g->op; o++) {
			double acc = 0;
			for (int64_t p = 0; p < g->plane; p++)
				for (int64_t t = 0; t < to; t++)
					acc += gout[fv__col_index(g, g->gcol, g->gpad + t, p, o)] *
					       U[fv__col_index(g, to, t, g->base[p], o) + tg->u_off[k]];
			dws[k * g->op + o] += (fv_real)acc;
		}
}

/* dx[t, q] += sum over the channels o of V[t, q, o] (V in columns of T
** frames over the input pixels). */
static void sum_lanes(const tf_geom *tg, const fv_real *V, fv_real *dx)
{
	const sep_geom *g = tg->g;
	const int64_t nt = g->s->win.t;
	for (int64_t q = 0; q < tg->hw; q++)
		for (int64_t t = 0; t < nt; t++) {
			fv_real lane[LANES] = {0};
			for (int64_t v = 0; v < g->vecs; v++) {
				const fv_real *src = V + fv__col_index(g, nt, t, q, v * LANES);
				for (int l = 0; l < LANES; l++)
					lane[l] += src[l];
			}
			fv_real sum = 0;
			for (int l = 0; l < LANES; l++)
				sum += lane[l];
			dx[t * tg->hw + q] += sum;
		}
}

/* ---- per-sample work --------------------------------------------------------------- */

typedef struct tf_job {
	const tf_geom *t;
	const fv_real *x, *gout;
	fv_real *out, *dx, *dwt_partials, *dws_partials;
	fv_real *saved;    /* (N, C, nreal, ucol), or NULL */
	const fv_real *kept; /* the same, read by the backward */
	fv_real *scratch;  /* slots of slot_size */
	fv_real *u_all;    /* one sample's U_i of every channel with inner threads */
	int64_t slot_size, partials;
	bool need_dwt, need_dws;
} tf_job;

/* One thread's scratch: X_i with its temporal padding (X), U_i, dU_i in
** columns of gcol frames (gpad zero frames either side), the transposed
** temporal pass of dU_i (V), one sample's output or dOut in columns (acc)
** and dOut spread for the gathers (D). */
typedef struct tf_slot {
	fv_real *X, *U, *dU, *V, *acc, *D;
} tf_slot;

#define TF_PARTS 6

static int64_t slot_part_sizes(const tf_geom *t, int64_t sizes[TF_PARTS])
{
	const sep_geom *g = t->g;
	sizes[0] = t->ext * t->hw + FV_CONV_SLACK;
	sizes[1] = t->grid * t->ucol;
	sizes[2] = t->hw * g->op * g->gcol;
	sizes[3] = t->hw * g->op * g->s->win.t;
	sizes[4] = g->gcol * g->plane * g->op;
	sizes[5] = g->hq * g->wq * t->ucol;
	return fv__sep_parts(NULL, sizes, TF_PARTS, NULL);
}

static tf_slot slot_at(const tf_job *j, int slot)
{
	int64_t sizes[TF_PARTS];
	slot_part_sizes(j->t, sizes);
	fv_real *parts[TF_PARTS];
	fv__sep_parts(j->scratch + slot * j->slot_size, sizes, TF_PARTS, parts);
	return (tf_slot){parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]};
}

/* Channel i of sample n as the temporal pass reads it: x itself when
** nothing is padded, else a copy with its zero frames. */
static const fv_real *padded_time(const tf_job *j, const tf_slot *b, int64_t n, int64_t i)
{
	const tf_geom *t = j->t;
	const fv__conv_window *w = &t->g->s->win;
	const fv_real *x = j->x + (n * t->g->s->c + i) * w->t * t->hw;
	if (w->pt == 0 && t->ext <= w->t)
		return x;
	for (int64_t f = 0; f < t->ext; f++) {
		fv_real *dst = b->X + f * t->hw;
		int64_t src = f - w->pt;
		if (src >= 0 && src < w->t)
			memcpy(dst, x + src * t->hw, (size_t)t->hw * sizeof(fv_real));
		else
			memset(dst, 0, (size_t)t->hw * sizeof(fv_real));
	}
	return b->X;
}

/* U (its padding zero already) = U_i of sample n. */
static void temporal_of(const tf_job *j, const tf_slot *b, int64_t n, int64_t i, fv_real *U)
{
	const tf_geom *t = j->t;
	const sep_geom *g = t->g;
	int64_t to = g->s->win.to;
	sep_bcast bc = {t->t_src, t->t_dst, t->t_off, t->nreal * to, g->s->win.kt, to};
	fv__sep_bcast_pass(g, &bc, padded_time(j, b, n, i), g->wt_p + i * g->s->win.kt * g->op, U);
}

/* Between U_i (the grid) and its kept copy (the input pixels only). */
static void keep_u(const tf_job *j, int64_t n, int64_t i, fv_real *U, bool save)
{
	const tf_geom *t = j->t;
	int64_t at = (n * t->g->s->c + i) * t->nreal * t->ucol;
	for (int64_t r = 0; r < t->nreal; r++) {
		fv_real *u = U + t->real[r] * t->ucol;
		if (save)
			fv__sep_save(t->g, j->saved + at + r * t->ucol, u, t->ucol);
		else
			memcpy(u, j->kept + at + r * t->ucol, (size_t)t->ucol * sizeof(fv_real));
	}
}

/* The sliding rows (slide_row) of a depthwise pass: runs of up to 6
** consecutive pixels along a row, from pixel p of a row of `width`, over
** every channel vector and frame.  For run r the caller gives where row
** a's taps start (pixel units: add `row0` plus a times `row_step`). */
typedef struct tf_slide {
	const fv_real *src;  /* U_i or the spread dOut */
	int64_t row_step;    /* pixels from one window row to the next */
	const fv_real *w;    /* the tap (a, b = 0) weights of lane 0, and */
	int64_t wstep;       /* how far apart the b taps are */
	fv_real *dst;
	int64_t dnt, dfr0;   /* dst's frames per column, the first written */
	bool fresh;
} tf_slide;

#ifdef SEP_AVX2
/* A run: n pixels from `first` (in src, pixel units) to dst pixels from dp. */
typedef struct tf_run {
	int64_t first, dp;
	int n;
} tf_run;

#define TF_RUNS 64 /* runs handed to slide_runs at a time */

/* The runs, frame pair by frame pair: one pair of every pixel's column is
** one cache line, so a pair's window rows stay in L1 from run to run. */
static void slide_runs(const tf_geom *t, const tf_slide *sl, const tf_run *runs, int64_t count)
{
	const sep_geom *g = t->g;
	const fv__conv_window *w = &g->s->win;
	int64_t row[64], dstep = g->vecs * sl->dnt * 8;
	for (int64_t v = 0; v < g->vecs; v++) {
		const float *src = sl->src + v * w->to * 8, *wv = sl->w + v * 8;
		/* frames 4 at a time with AVX-512, else 2 */
		for (int64_t f = 0, span; f < w->to; f += span) {
			span = g->avx512 && w->to - f >= 4 ? 4 : w->to - f >= 2 ? 2 : 1;
			for (const tf_run *r = runs; r < runs + count; r++) {
				float *d = sl->dst + fv__col_index(g, sl->dnt, sl->dfr0 + f, r->dp, v * 8);
				for (int64_t a = 0; a < w->kh; a++)
					row[a] = (r->first + a * sl->row_step) * t->ucol;
				if (span == 4 && r->n == 6) {
					fv__sep_slide_row6x4_avx512(src + f * 8, row, w->kh, w->kw, t->ucol, wv,
					                            g->op, sl->wstep, sl->fresh, d, dstep);
					continue;
				}
				if (span == 2 && r->n == 6) {
					slide_row6x2(src + f * 8, row, w->kh, w->kw, t->ucol, 8, wv, g->op,
					             sl->wstep, sl->fresh, d, dstep, 8);
					continue;
				}
				for (int64_t e = f; e < f + span; e++)
					slide_row(src + e * 8, row, w->kh, w->kw, t->ucol, wv, g->op,
					          sl->wstep, sl->fresh, d + (e - f) * 8, dstep, r->n);
			}
		}
	}
}

/* Whether the depthwise passes slide: AVX2, dilation 1 along the rows and
** the window rows fit the table; the forward's also needs stride 1. */
static bool tf_slides(const sep_geom *g, bool forward)
{
	const fv__conv_window *w = &g->s->win;
	return g->avx2 && w->dw == 1 && w->kh <= 64 && (!forward || w->sw == 1);
}
#endif

/* acc's output pixels [p0, p1) += channel i's spatial pass of U; the first
** channel sets them. */
static void spatial_of(const tf_job *j, int64_t i, const fv_real *U, fv_real *acc, int64_t p0,
                       int64_t p1)
{
	const sep_geom *g = j->t->g;
	const fv__conv_window *w = &g->s->win;
	int64_t to = w->to;
	const fv_real *wsi = g->ws_p + i * g->taps * g->op;
#ifdef SEP_AVX2
	if (tf_slides(g, true)) {
		tf_slide sl = {U, w->dh * g->wp, wsi, g->op, acc, to, 0, i == 0};
		tf_run runs[TF_RUNS];
		int64_t count = 0;
		for (int64_t p = p0; p < p1;) {
			int64_t y = p / w->wo, x = p % w->wo, n = w->wo - x;
			n = n < 6 ? n : 6;
			n = n < p1 - p ? n : p1 - p;
			runs[count++] = (tf_run){y * w->sh * g->wp + x, p, (int)n};
			p += n;
			if (count == TF_RUNS || p == p1) {
				slide_runs(j->t, &sl, runs, count);
				count = 0;
			}
		}
		return;
	}
#endif
	for (int64_t p = p0; p < p1; p++)
		for (int64_t v = 0; v < g->vecs; v++)
			dw_column(g, U + fv__col_index(g, to, 0, g->base[p], v * LANES), j->t->u_off,
			          wsi + v * LANES, i == 0, acc + fv__col_index(g, to, 0, p, v * LANES), to);
}

/* dU (columns of gcol frames) = the spatial pass of channel i transposed,
** gathered from dOut spread into D. */
static void spatial_back(const tf_job *j, int64_t i, const fv_real *D, fv_real *dU)
{
	const tf_geom *t = j->t;
	const sep_geom *g = t->g;
	const fv__conv_window *w = &g->s->win;
	const fv_real *wsi = g->ws_p + i * g->taps * g->op;
#ifdef SEP_AVX2
	if (tf_slides(g, false)) {
		/* tap b reads origin - b: the taps run backwards along the row */
		tf_slide sl = {D, -w->dh * g->wq, wsi + (w->kw - 1) * g->op, -g->op, dU, g->gcol,
		               g->gpad, true};
		tf_run runs[TF_RUNS];
		int64_t count = 0;
		for (int64_t q = 0; q < t->hw;) {
			int64_t x = q % w->w, n = w->w - x < 6 ? w->w - x : 6;
			runs[count++] = (tf_run){g->back_base[q] / g->op - (w->kw - 1), q, (int)n};
			q += n;
			if (count == TF_RUNS || q == t->hw) {
				slide_runs(t, &sl, runs, count);
				count = 0;
			}
		}
		return;
	}
#endif
	for (int64_t q = 0; q < t->hw; q++)
		for (int64_t v = 0; v < g->vecs; v++)
			dw_column(g, D + g->back_base[q] * w->to + v * LANES * w->to, t->d_off,
			          wsi + v * LANES, true, dU + fv__col_index(g, g->gcol, g->gpad, q, v * LANES),
			          w->to);
}

/* With one thread: channel by channel, so U_i stays in cache between the
** passes.  With several: temporal passes by channel, then spatial passes
** by output pixel; every output sums the channels in the same order. */
static void forward_task(void *ud, int64_t n, int slot, int threads)
{
	const tf_job *j = ud;
	const sep_geom *g = j->t->g;
	int64_t c = g->s->c, to = g->s->win.to;
	tf_slot b = slot_at(j, slot);
	if (c == 0)
		memset(b.acc, 0, (size_t)(to * g->plane * g->op) * sizeof(fv_real));
	if (threads <= 1) {
		for (int64_t i = 0; i < c; i++) {
			temporal_of(j, &b, n, i, b.U);
			if (j->saved != NULL)
				keep_u(j, n, i, b.U, true);
			spatial_of(j, i, b.U, b.acc, 0, g->plane);
		}
	} else {
		int64_t size = j->t->grid * j->t->ucol;
#pragma omp parallel for num_threads(threads) schedule(static)
		for (int64_t i = 0; i < c; i++) {
			tf_slot mine = slot_at(j, fv__sep_thread_slot(slot, threads));
			temporal_of(j, &mine, n, i, j->u_all + i * size);
			if (j->saved != NULL)
				keep_u(j, n, i, j->u_all + i * size, true);
		}
#pragma omp parallel num_threads(threads)
		{
			int t = 0, team = 1;
#ifdef _OPENMP
			t = omp_get_thread_num();
			team = omp_get_num_threads();
#endif
			int64_t p0 = t * g->plane / team, p1 = (t + 1) * g->plane / team;
			for (int64_t i = 0; i < c; i++)
				spatial_of(j, i, j->u_all + i * size, b.acc, p0, p1);
		}
	}
	fv__sep_move_frames(g, to, 0, b.acc, j->out + n * g->s->o * to * g->plane, true);
}

/* Every gradient of channel i of sample n (gout: dOut in columns, D: spread). */
static void backward_channel(const tf_job *j, int64_t n, int64_t i, const tf_slot *shared,
                             fv_real *dwt, fv_real *dws, const tf_slot *b)
{
	const tf_geom *t = j->t;
	const sep_geom *g = t->g;
	const fv__conv_window *w = &g->s->win;
	const fv_real *wti = g->wt_p + i * w->kt * g->op;
	if (j->need_dws) {
		if (j->kept != NULL)
			keep_u(j, n, i, b->U, false);
		else
			temporal_of(j, b, n, i, b->U);
		spatial_weight_grad(t, shared->acc, b->U, dws + i * g->taps * g->op);
	}
	if (!j->need_dwt && j->dx == NULL)
		return;
	spatial_back(j, i, shared->D, b->dU);
	if (j->need_dwt) {
		sep_tap_grad tg = {t->t_off, t->b_pt, w->kt, w->to, t->hw, g->gcol, g->gpad};
		fv__sep_tap_grad(g, &tg, b->dU, padded_time(j, b, n, i), dwt + i * w->kt * g->op);
	}
	if (j->dx != NULL) {
		fv__sep_temporal_back(g, 0, t->hw * g->vecs, wti, b->dU, b->V);
		sum_lanes(t, b->V, j->dx + (n * g->s->c + i) * w->t * t->hw);
	}
}

/* dOut of sample n in columns (acc), and spread out (D); the padding
** frames of acc were cleared with the scratch and are never written. */
static void load_gout(const tf_job *j, int64_t n, const tf_slot *b)
{
	const sep_geom *g = j->t->g;
	int64_t to = g->s->win.to;
	fv__sep_move_frames(g, g->gcol, g->gpad, j->gout + n * g->s->o * to * g->plane, b->acc, false);
	for (int64_t p = 0; p < g->plane; p++)
		for (int64_t v = 0; v < g->vecs; v++)
			memcpy(b->D + g->spread[p] * to + v * LANES * to,
			       b->acc + fv__col_index(g, g->gcol, g->gpad, p, v * LANES),
			       (size_t)(to * LANES) * sizeof(fv_real));
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const tf_job *j = ud;
	const sep_geom *g = j->t->g;
	const fv__conv_shape *s = g->s;
	int64_t n0 = task * s->n / j->partials, n1 = (task + 1) * s->n / j->partials;
	fv_real *dwt, *dws;
	fv__sep_task_partials(g, task, j->dwt_partials, j->dws_partials, &dwt, &dws);
	tf_slot b = slot_at(j, slot);
	for (int64_t n = n0; n < n1; n++) {
		load_gout(j, n, &b);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t i = 0; i < s->c; i++) {
			tf_slot mine = slot_at(j, fv__sep_thread_slot(slot, threads));
			backward_channel(j, n, i, &b, dwt, dws, &mine);
		}
	}
}

/* ---- the calls ------------------------------------------------------------------------ */

void fv__sep_order_macs(const fv__conv_shape *s, double space[2], double time[2])
{
	const fv__conv_window *w = &s->win;
	double nco = (double)s->n * (double)s->c * (double)s->o;
	double plane = (double)(w->ho * w->wo), hw = (double)(w->h * w->w);
	double taps = (double)(w->kh * w->kw), kt = (double)w->kt, t = (double)w->t, to = (double)w->to;
	int64_t hp = fv__read_extent(w->ho, w->sh, w->kh, w->dh);
	int64_t wp = fv__read_extent(w->wo, w->sw, w->kw, w->dw);
	double real = (double)(clamp_count(hp - w->ph, w->h) * clamp_count(wp - w->pw, w->w));
	space[0] = nco * plane * (t * taps + to * kt);
	space[1] = nco * plane * 2 * (to * kt + t * taps);
	time[0] = nco * to * (real * kt + plane * taps);
	time[1] = nco * (to * hw * (taps + kt) + t * hw * kt + to * plane * taps);
}

/* Whether the counts choose the order (else it is always space-first).
** Off for now: on the default model's second layer time-first takes about
** 25% fewer multiply-adds, but its kernels run further from the FMA peak
** than the space-first ones, and a training step came out slower
** (fovea-bench hoefling train, 1 thread: 146.6 against 141.2 ms median;
** the forward with 2 inner threads 28.6 against 22.0 ms).  With the
** spatial pass two frames at a time (slide_row6x2) still no faster: 140.7
** against 138.7 ms best of 8 at 1 thread, 75.9 against 74.7 at 2; layer 1's
** backward is the slower part (65 against 61 ms, fovea-bench --task conv).
** With the AVX-512 kernels (four frames a call, fv__sep_slide_row6x4_avx512)
** that layer alone, b64, 1 thread, CPU ms: forward 16.5 against 22.1,
** backward 40.0 against 38.5; fovea-bench hoefling with time-first there:
** eval forward 28.0 against 33.3, training step 107.5 against 107.9, stim
** 1.73 against 1.62.  So time-first pays for forwards without gradients
** on AVX-512 processors: the next step, once measured on 2 threads. */
#ifndef TF_AUTO /* -DTF_AUTO=1 turns it on, to measure */
#define TF_AUTO 0
#endif

/* Every shape the space-first order takes (groups are not supported by
** either) runs time-first too; the choice is only about speed. */
bool fv__tf_chosen(const fv__conv_shape *s)
{
	const char *force = getenv("FV_SEPARABLE_ORDER");
	if (force != NULL && strcmp(force, "time") == 0)
		return true;
	if (force != NULL && strcmp(force, "space") == 0)
		return false;
	double space[2], time[2];
	fv__sep_order_macs(s, space, time);
	return TF_AUTO && time[0] < space[0] && time[1] < space[1];
}

int64_t fv__tf_saved_size(const sep_geom *g)
{
	const fv__conv_window *w = &g->s->win;
	int64_t hp = g->hp, wp = g->wp;
	return clamp_count(hp - w->ph, w->h) * clamp_count(wp - w->pw, w->w) * g->op * w->to;
}

/* Scratch for `plan`, all zero (the padding parts are never written);
** with `u_all`, room for one sample's U_i of every channel too. */
static bool alloc_scratch(fv_ctx *ctx, tf_job *j, const fv__task_plan *plan, bool u_all)
{
	int64_t sizes[TF_PARTS], slots = (int64_t)plan->tasks * plan->inner;
	j->slot_size = slot_part_sizes(j->t, sizes);
	int64_t all = u_all && plan->inner > 1 ? j->t->g->s->c * j->t->grid * j->t->ucol : 0;
	size_t bytes = (size_t)(slots * j->slot_size + all) * sizeof(fv_real);
	if ((j->scratch = fv_ctx_alloc(ctx, bytes)) == NULL)
		return false;
	memset(j->scratch, 0, bytes);
	j->u_all = all > 0 ? j->scratch + slots * j->slot_size : NULL;
	return true;
}

fv_status fv__tf_forward(fv_ctx *ctx, const sep_geom *g, const fv_real *x, fv_real *out,
                         fv_real *saved)
{
	tf_geom t;
	if (!tf_tables(ctx, &t, g))
		return FV_ERR_NOMEM;
	tf_job j = {.t = &t, .x = x, .out = out, .saved = saved};
	double space[2], time[2];
	fv__sep_order_macs(g->s, space, time);
	fv__task_plan plan = fv__plan_tasks(g->s->n, time[0]);
	if (!alloc_scratch(ctx, &j, &plan, true))
		return FV_ERR_NOMEM;
	fv__run_tasks(&plan, g->s->n, forward_task, &j);
#ifdef SEP_AVX2
	_mm_sfence(); /* the streamed U_i are visible before anything reads them */
#endif
	return FV_OK;
}

fv_status fv__tf_backward(fv_ctx *ctx, const sep_geom *g, const fv_real *x, const fv_real *gout,
                          const fv_real *saved, fv_real *dx, fv_real *dwt, fv_real *dws)
{
	const fv__conv_shape *s = g->s;
	tf_geom t;
	if (!tf_tables(ctx, &t, g))
		return FV_ERR_NOMEM;
	tf_job j = {.t = &t, .x = x, .gout = gout, .dx = dx, .kept = saved,
	            .need_dwt = dwt != NULL, .need_dws = dws != NULL};
	j.partials = s->n;
	if ((dwt != NULL || dws != NULL) && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	double space[2], time[2];
	fv__sep_order_macs(s, space, time);
	fv__task_plan plan = fv__plan_tasks(j.partials, time[1]);
	if (!alloc_scratch(ctx, &j, &plan, false))
		return FV_ERR_NOMEM;
	if (!fv__sep_alloc_partials(ctx, g, j.partials, dwt != NULL, dws != NULL, &j.dwt_partials,
	                            &j.dws_partials))
		return FV_ERR_NOMEM;
	fv__run_tasks(&plan, j.partials, backward_task, &j);
	if (dwt != NULL && !fv__sep_add_weight_grad(ctx, g, dwt, j.dwt_partials, j.partials, s->win.kt))
		return FV_ERR_NOMEM;
	if (dws != NULL && !fv__sep_add_weight_grad(ctx, g, dws, j.dws_partials, j.partials, g->taps))
		return FV_ERR_NOMEM;
	return FV_OK;
}
