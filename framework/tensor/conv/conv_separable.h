/*
** conv_separable.h: what the two orders of the separable conv3d share
** (ops_conv3d_separable.c: spatial pass first; ops_conv3d_timefirst.c:
** temporal pass first): the geometry and its tables, the column layout of
** the buffers, and the passes both orders run.
*/
#ifndef FOVEA_CONV_SEPARABLE_H
#define FOVEA_CONV_SEPARABLE_H

#include "tensor/conv/conv_kernels.h"

/* The AVX2 + FMA kernels are compiled for every x86 float build, with a
** function-level target, and chosen at run time when the processor has
** both (sep_geom.avx2): a build for the generic x86-64 baseline (as the
** sanitizer builds are) still runs them.  The plain loops serve other
** processors and the float64 build.  Buffers keep channels in groups of
** LANES either way. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(FV_REAL_DOUBLE)
#include <immintrin.h>
#define SEP_AVX2 1
#define AVX2_FN __attribute__((target("avx2,fma")))
/* GCC's predictive commoning keeps the loads a loop's next iterations
** share in registers: with 12 accumulators live that spills them. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_LOAD_REUSE __attribute__((optimize("no-predictive-commoning")))
#else
#define NO_LOAD_REUSE
#endif
#define LANES 8
#else
#define LANES 1
#endif

/* The geometry of one call and the tables every kernel shares.
**
** Column layout of a buffer of nt frames: element (t, p, o) at
**     ((p * vecs + o / LANES) * nt + t) * LANES + o % LANES
** i.e. column v = p * vecs + o / LANES holds LANES channels of pixel p for
** every frame.  S_i and dS_i have nt = T, the output and dOut nt = To. */
typedef struct sep_geom {
	const fv__conv_shape *s;
	fv__conv_window sp;       /* one channel, spatial window only, every input frame */
	int64_t op;               /* output channels rounded up to LANES */
	int64_t vecs;             /* op / LANES: vectors of channels per pixel */
	int64_t plane, taps;      /* ho*wo; kh*kw */
	int64_t hp, wp;           /* the padded frame */
	int64_t npix;             /* t * plane: the pixels of S_i */
	bool slide;               /* temporal stride and dilation 1: the sliding windows */
	bool avx2;                /* run the AVX2 kernels */
	bool avx512;              /* and the AVX-512 ones where there are (sep_avx512.c) */
	int64_t *base;            /* npix, (t, p) order: where pixel (t, p)'s window starts in P_i */
	int64_t *base_pt;         /* the same in (p, t) order */
	int64_t *s_col;           /* npix, (t, p) order: where pixel (t, p)'s column is in S_i */
	int64_t *off;             /* taps: where tap k sits from a window's start */
	int64_t *map_fwd;         /* to x kt: the input frame of (to, tau), or -1 */
	int64_t *map_bwd;         /* t x kt: the output frame that reads t with tap tau, or -1 */
	fv_real *ws_p;            /* (C, taps, op): w_space, channels innermost */
	fv_real *wt_p;            /* (C, kt, op): w_time, channels innermost */
	int64_t gpad, gcol;       /* dOut's columns: gpad zero frames either side, gcol in all */
	int64_t hq, wq;           /* the frame dS is spread into for dx (see input_grad) */
	int64_t *back_off;        /* taps: where tap k reads in it, from an input pixel's origin */
	int64_t *back_base;       /* h*w: where input pixel q's origin is in it */
	int64_t *spread;          /* plane: where output pixel p goes in it */
} sep_geom;

static inline int64_t fv__round_up(int64_t v, int64_t m)
{
	return (v + m - 1) / m * m;
}

/* The extent an axis of `out` outputs reads. */
static inline int64_t fv__read_extent(int64_t out, int64_t stride, int64_t k, int64_t dil)
{
	return (out - 1) * stride + (k - 1) * dil + 1;
}

/* Element (t, p, o) of a column-layout buffer of nt frames. */
static inline int64_t fv__col_index(const sep_geom *g, int64_t nt, int64_t t, int64_t p, int64_t o)
{
	return ((p * g->vecs + o / LANES) * nt + t) * LANES + o % LANES;
}

/* Lays `count` parts of sizes[i] elements out from p (when parts is not
** NULL), each rounded up to 16 elements so that every part stays 64-byte
** aligned; returns the elements they take. */
static inline int64_t fv__sep_parts(fv_real *p, const int64_t *sizes, int count, fv_real **parts)
{
	int64_t total = 0;
	for (int i = 0; i < count; i++) {
		if (parts != NULL)
			parts[i] = p + total;
		total += fv__round_up(sizes[i], 16);
	}
	return total;
}

/* The scratch slot of the calling thread of a team of `threads` started by
** the task with slot `slot`. */
int fv__sep_thread_slot(int slot, int threads);

/* Task `task`'s weight gradient partial sums (C, kt, op) and (C, taps, op)
** in all_dwt / all_dws (NULL: not wanted), cleared. */
void fv__sep_task_partials(const sep_geom *g, int64_t task, fv_real *all_dwt, fv_real *all_dws,
                           fv_real **dwt, fv_real **dws);

/* Room for `count` such partial sums of each wanted gradient (NULL when
** not wanted); false when out of memory. */
bool fv__sep_alloc_partials(fv_ctx *ctx, const sep_geom *g, int64_t count, bool dwt, bool dws,
                            fv_real **all_dwt, fv_real **all_dws);

/* The geometry of `s` and its tables, the weights repacked, in the arena. */
bool fv__sep_geom(fv_ctx *ctx, sep_geom *g, const fv__conv_shape *s, const fv_real *wt,
                  const fv_real *ws);

/* A pass that broadcasts one channel's input values over the output
** channels: for every item q,
**     dst[dst_at[q] + lane(o)] = sum_k P[src_at[q] + off[k]] * w[k * op + o]
** (lane(o): o's place in a column of nt frames).  The spatial pass of the
** space-first order, the temporal pass of the time-first one. */
typedef struct sep_bcast {
	const int64_t *src_at, *dst_at, *off;
	int64_t items, taps, nt;
} sep_bcast;

void fv__sep_bcast_pass(const sep_geom *g, const sep_bcast *b, const fv_real *P, const fv_real *w,
                        fv_real *dst);

/* ---- the AVX-512 kernels (sep_avx512.c) ---- */

/* Whether the processor has AVX-512 F and VL and FV_CONV_AVX512 is not 0. */
bool fv__sep_avx512_wanted(void);

#ifdef SEP_AVX2
/* fv__sep_bcast_pass for op a multiple of 16, bit for bit. */
void fv__sep_bcast_pass_avx512(const sep_geom *g, const sep_bcast *b, const float *P,
                               const float *w, float *dst);
#endif

/* dw (taps, op) += sum_{p < pixels, t < n} dS[col(nt, fr0 + t, p, o)] *
** P[base_pt[p * n + t] + off[k]]: the weight gradient of a broadcast pass
** (dS in columns of nt frames). */
typedef struct sep_tap_grad {
	const int64_t *off, *base_pt;
	int64_t taps, n, pixels, nt, fr0;
} sep_tap_grad;

void fv__sep_tap_grad(const sep_geom *g, const sep_tap_grad *tg, const fv_real *dS,
                      const fv_real *P, fv_real *dw);

/* The vector kernels of fv__sep_tap_grad sum this many terms at most in a
** register, then add them to a partial sum: float sums of a few hundred
** terms, as accurate as one pixel's, for little overhead.  Both kernels
** group the same way, so their results are equal bit for bit. */
#define SEP_TAP_GRAD_TERMS 256

#ifdef SEP_AVX2
/* fv__sep_tap_grad for op a multiple of 16, bit for bit (sep_avx512.c). */
void fv__sep_tap_grad_avx512(const sep_geom *g, const sep_tap_grad *tg, const float *dS,
                             const float *P, float *dw);
#endif

#ifdef SEP_AVX2
/* The rows of the next AVX-512 row block of a temporal pass out of `left`
** (even, 8 to 24), or 0: too few for one. */
int fv__sep_rows_avx512_items(int64_t left);

/* d[j * ld] (= when `fresh`, += otherwise) sum_{i < k} w[i * ldw] *
** src[8 * (j + step * i)] for n rows j (columns of 8-float frames; n from
** fv__sep_rows_avx512_items): the AVX2 row blocks' sums bit for bit. */
void fv__sep_rows_avx512(int n, const float *src, int64_t step, const float *w, int64_t ldw,
                         int64_t k, bool fresh, float *d, int64_t ld);
#endif

#ifdef SEP_AVX2
/* dx[j] += sum over the window rows a in [a0, a1), columns b in [b0, b1)
** and the op channels (a multiple of 16) of w[a][b] * D[row a][x0 + j - b]
** for the n (<= 6) pixels of a run of the input gradient, row a's taps of
** pixel x0 starting at origin - a * rowstep: the AVX2 slide_gather's sums
** in another order. */
void fv__sep_slide_gather_avx512(const float *origin, int64_t rowstep, int64_t a0, int64_t a1,
                                 int64_t b0, int64_t b1, int64_t kw, int64_t op, const float *w,
                                 float *dx, int n);
#endif

#ifdef SEP_AVX2
/* d[j * dstep + 8 * f] (= when `fresh`, += otherwise) sum_{a < kh, b < kw}
** w[a * kw * op + b * wstep] * src[row[a] + (j + b) * step + 8 * f] for 6
** pixels j and 4 consecutive frames f of 8 channels: the time-first
** order's slide_row6x2 on two frame pairs, bit for bit. */
void fv__sep_slide_row6x4_avx512(const float *src, const int64_t *row, int64_t kh, int64_t kw,
                                 int64_t step, const float *w, int64_t op, int64_t wstep,
                                 bool fresh, float *d, int64_t dstep);
#endif

/* dst columns [v0, v1) = the transposed temporal pass (from To frames in
** columns of gcol with gpad zero frames either side, to T frames) with
** channel-wise weights w (kt, op). */
void fv__sep_temporal_back(const sep_geom *g, int64_t v0, int64_t v1, const fv_real *w,
                           const fv_real *src, fv_real *dst);

/* Columns (nt frames, output frame r at frame fr0 + r) to planes (O, To,
** plane) when `to_planes`, else back, the padding lanes 0. */
void fv__sep_move_frames(const sep_geom *g, int64_t nt, int64_t fr0, const fv_real *src,
                         fv_real *dst, bool to_planes);

/* dst = n elements of src, streamed past the caches when possible. */
void fv__sep_save(const sep_geom *g, fv_real *dst, const fv_real *src, int64_t n);

/* grad (O, C, k) += the `count` partial sums (C, k, op), in their fixed order. */
bool fv__sep_add_weight_grad(fv_ctx *ctx, const sep_geom *g, fv_real *grad,
                             const fv_real *partials, int64_t count, int64_t k);

/* ---- the time-first order (ops_conv3d_timefirst.c) ---- */

/* Multiply-adds of the forward and of the backward (every gradient), in
** the space-first order and in the time-first one. */
void fv__sep_order_macs(const fv__conv_shape *s, double space[2], double time[2]);

/* Whether a call of shape s runs time-first. */
bool fv__tf_chosen(const fv__conv_shape *s);

/* Elements of the U_i kept for the backward, per sample and channel. */
int64_t fv__tf_saved_size(const sep_geom *g);

/* out (N, O, To, ho, wo) = the conv of x; every U_i kept in `saved` when
** not NULL. */
fv_status fv__tf_forward(fv_ctx *ctx, const sep_geom *g, const fv_real *x, fv_real *out,
                         fv_real *saved);

/* The gradients (NULL: not wanted) from dOut gout, with the U_i kept by
** the forward (or NULL: computed again). */
fv_status fv__tf_backward(fv_ctx *ctx, const sep_geom *g, const fv_real *x, const fv_real *gout,
                          const fv_real *saved, fv_real *dx, fv_real *dwt, fv_real *dws);

#endif /* FOVEA_CONV_SEPARABLE_H */
