/*
** conv_kernels.h: what the dense and the separable conv3d share.
**
**  - fv__conv_window: the geometry of one sample's convolution (after
**    groups are split off), normalised from fv_conv3d_params.
**  - vol2col / col2vol over a block of output frames: the column matrix
**    of a whole sample can be hundreds of megabytes, so callers work on a
**    few frames at a time and the block stays in cache while GEMM uses it.
**  - fv__gemm: row-major GEMM on BLIS in the build's precision, with an
**    explicit thread count so that a GEMM inside a parallel task runs on
**    one thread.
**  - fv__plan_tasks / fv__run_tasks: spread independent tasks over the
**    OpenMP threads.  A task computes the same numbers whichever thread
**    runs it, so results do not depend on the thread count.
*/
#ifndef FOVEA_CONV_KERNELS_H
#define FOVEA_CONV_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/tensor_internal.h"

/* Hand-vectorised kernels for the float build on AVX2 + FMA machines; the
** plain C versions serve everything else (and the float64 test build). */
#if defined(__AVX2__) && defined(__FMA__) && !defined(FV_REAL_DOUBLE)
#include <immintrin.h>
#define FV_CONV_AVX2 1
#endif

/* One sample's convolution: c input channels of t x h x w, a kt x kh x kw
** kernel, an output of to x ho x wo frames/pixels.  Only the padding
** before each axis is needed; the padding after is implied by the output
** size. */
typedef struct fv__conv_window {
	int64_t c, t, h, w;
	int64_t kt, kh, kw;
	int64_t to, ho, wo;
	int64_t st, sh, sw; /* stride */
	int64_t dt, dh, dw; /* dilation */
	int64_t pt, ph, pw; /* padding before */
} fv__conv_window;

/* A whole conv3d call: batch, channels, groups and the per-group window. */
typedef struct fv__conv_shape {
	int64_t n, c, o, groups;
	fv__conv_window win; /* win.c = c / groups */
} fv__conv_shape;

/* Validate x (N, C, T, H, W) against a weight of `o` output channels,
** `c_per_group` input channels per group and `kernel` (t, h, w), and fill
** `s`.  `op` and `wdesc` ("weight (16, 2, 21, 11, 11)") name the call in
** messages.  p may be NULL (stride 1, no padding). */
fv_status fv__conv_shape_init(fv__conv_shape *s, const char *op, const fv_tensor *x, int64_t o,
                              int64_t c_per_group, const int64_t kernel[3],
                              const fv_conv3d_params *p, bool groups_allowed, const char *wdesc);

/* Rows of the column matrix: c * kt * kh * kw. */
static inline int64_t fv__window_rows(const fv__conv_window *w)
{
	return w->c * w->kt * w->kh * w->kw;
}

/* Whether the column matrix is the input itself (1x1x1 kernel, stride 1,
** no padding). */
bool fv__window_is_pointwise(const fv__conv_window *w);

/* How many output frames to put in one column block so that it stays in
** cache (at least one, at most all). */
int64_t fv__frames_per_block(const fv__conv_window *w);

/*
** Column matrices are built from a zero-padded copy of the input frames a
** block reads ("padded frames"): that keeps the tap loops free of bounds
** checks, which matters because the frames are tiny (a row is 6 pixels in
** the default model).  Padded frame tp holds input frame tp - pt; its
** plane is hp x wp, just the extent the window reads.  Buffers for padded
** frames and column blocks need FV_CONV_SLACK spare elements at their end:
** rows are copied in whole vector chunks that may run past them.
*/
#define FV_CONV_SLACK 16

/* Padded frames [*tp0, *tp1) read by output frames [t0, t1). */
void fv__padded_frames(const fv__conv_window *w, int64_t t0, int64_t t1, int64_t *tp0,
                       int64_t *tp1);
/* Elements of one padded plane, hp * wp. */
int64_t fv__padded_plane(const fv__conv_window *w);
/* Elements of the padded frames of output frames [t0, t1), slack included. */
int64_t fv__padded_size(const fv__conv_window *w, int64_t t0, int64_t t1);

/* P (c, tp1 - tp0, hp, wp) = padded frames [tp0, tp1) of one sample x (c, t, h, w). */
void fv__pad_frames(const fv__conv_window *w, const fv_real *x, int64_t tp0, int64_t tp1,
                    fv_real *P);
/* dx += the input part of dP (the adjoint of fv__pad_frames). */
void fv__unpad_add(const fv__conv_window *w, const fv_real *dP, int64_t tp0, int64_t tp1,
                   fv_real *dx);

/* Columns of output frames [t0, t1) from padded frames P = [tp0, tp1):
** cols[r][(to - t0) * ho * wo + ho_i * wo + wo_i] with
** r = ((c * kt + a) * kh + b) * kw + d.  cols needs FV_CONV_SLACK spare. */
void fv__vol2col(const fv__conv_window *w, const fv_real *P, int64_t tp0, int64_t tp1,
                 int64_t t0, int64_t t1, fv_real *cols);
/* The adjoint: dP += the taps of `cols` scattered back. */
void fv__col2vol(const fv__conv_window *w, const fv_real *cols, int64_t t0, int64_t t1,
                 fv_real *dP, int64_t tp0, int64_t tp1);

/* C = alpha * op(A) * op(B) + beta * C, all row-major with leading
** dimensions; op(A) is m x k, op(B) is k x n.  threads: BLIS threads. */
void fv__gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, fv_real alpha,
              const fv_real *a, int64_t lda, const fv_real *b, int64_t ldb, fv_real beta,
              fv_real *c, int64_t ldc, int threads);

/* How a call's tasks use the threads: `tasks` threads run tasks in
** parallel (each with its own scratch slot, so a call needs `tasks` slots),
** each task using `inner` threads for its GEMMs and loops.  With enough
** tasks they run in parallel, one thread each; with fewer, one after
** another with all threads inside; work too small to be worth waking the
** threads (fewer than FV_PARALLEL_MIN_MACS multiply-adds) runs on one. */
typedef struct fv__task_plan {
	int tasks, inner;
} fv__task_plan;

#define FV_PARALLEL_MIN_MACS 1000000.0

fv__task_plan fv__plan_tasks(int64_t ntasks, double macs);

/* fn(ud, task, slot, inner_threads) for every task in [0, ntasks). */
typedef void (*fv__task_fn)(void *ud, int64_t task, int slot, int inner_threads);
void fv__run_tasks(const fv__task_plan *plan, int64_t ntasks, fv__task_fn fn, void *ud);

/* Multiply-adds of a dense conv3d of shape s (its forward). */
static inline double fv__dense_conv_macs(const fv__conv_shape *s)
{
	const fv__conv_window *w = &s->win;
	return (double)s->n * (double)s->o * (double)(w->to * w->ho * w->wo) *
	       (double)fv__window_rows(w);
}

/* Weight gradients are summed over the batch in this many fixed partial
** sums (by contiguous ranges of samples), whatever the thread count, so
** that the result does not depend on it. */
#define FV_CONV_MAX_PARTIALS 16

/* dw += the `count` partial sums of `size` elements, in their fixed order. */
void fv__add_partials(fv_real *dw, const fv_real *partials, int64_t count, int64_t size);

#endif /* FOVEA_CONV_KERNELS_H */
