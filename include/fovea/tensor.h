/*
** tensor.h: tensors, the per-step context (arena + tape) and reverse-mode
** autograd, plus every differentiable op the documented components need.
**
** Model:
**  - A tensor is dense, row-major and contiguous, up to FV_MAX_DIMS dims,
**    of element type fv_real (float; double when FV_REAL_DOUBLE is defined,
**    which only the gradient-check tests do).
**  - Persistent tensors (parameters, buffers, data) are made with
**    fv_tensor_new() and freed with fv_tensor_free().
**  - Everything an op produces lives in an fv_ctx: an arena plus the tape of
**    recorded ops.  fv_ctx_reset() drops it all at once; after the first
**    step a context reuses its memory, so steady-state steps do not malloc.
**  - Ops run eagerly (define by run, as in PyTorch).  An op records itself
**    on the tape when grad mode is on and one of its inputs requires grad.
**    fv_backward() walks the tape backwards and accumulates into ->grad of
**    every tensor that requires grad: parameters and inputs alike.
**  - Every op returns NULL on failure (bad shapes, no memory) and sets
**    fv_errmsg().  An op given a NULL input returns NULL and keeps the
**    first message, so a chain of ops can be checked once at its end.
*/
#ifndef FOVEA_TENSOR_H
#define FOVEA_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "fovea.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FV_MAX_DIMS 6

#ifdef FV_REAL_DOUBLE
typedef double fv_real;
#else
typedef float fv_real;
#endif

typedef struct fv_ctx fv_ctx;
typedef struct fv_tensor fv_tensor;
typedef struct fv_node fv_node; /* a recorded op; private to the framework */

struct fv_tensor {
	fv_real *data;
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	int64_t numel;
	fv_tensor *grad;    /* dL/dthis, same shape; NULL until backward reaches it */
	bool requires_grad; /* leaves: set by the owner; op outputs: derived */
	bool persistent;    /* made by fv_tensor_new(); otherwise lives in a ctx */
	char *name;         /* parameter name (persistent tensors only), or NULL */
	fv_node *node;      /* the op that produced it, NULL for leaves */
	fv_tensor *spare_grad; /* a gradient buffer kept for reuse after
	                          fv_zero_grad_to_none(); private */
};

/* Threads used by BLIS and the op loops (OpenMP); results do not depend on
** it beyond float rounding.  n <= 0 means all cores. */
FV_API void fv_set_num_threads(int n);
FV_API int fv_get_num_threads(void);

/* ---- persistent tensors ------------------------------------------------ */

/* A zero-filled tensor owned by the caller. */
FV_API fv_tensor *fv_tensor_new(int ndim, const int64_t *shape);
FV_API fv_tensor *fv_tensor_clone(const fv_tensor *t);  /* persistent copy, no grad */
FV_API void fv_tensor_free(fv_tensor *t);               /* frees its grad too */
FV_API fv_status fv_tensor_set_name(fv_tensor *t, const char *name);
FV_API void fv_tensor_fill(fv_tensor *t, fv_real v);
/* Copy values from `src` (same numel) into `dst`. */
FV_API fv_status fv_tensor_copy(fv_tensor *dst, const fv_tensor *src);
/* Zero the gradient (if any), as optimizer.zero_grad(set_to_none=False). */
FV_API void fv_zero_grad(fv_tensor *t);
/* Drop the gradient (grad = NULL, as torch's default zero_grad()) but keep
** its memory for the next backward, so steady-state steps do not allocate.
** Optimizers skip parameters whose grad is NULL, as torch's do. */
FV_API void fv_zero_grad_to_none(fv_tensor *t);
FV_API bool fv_same_shape(const fv_tensor *a, const fv_tensor *b);
/* "(64, 2, 50, 18, 16)": for messages.  Uses a small static ring buffer. */
FV_API const char *fv_shape_str(int ndim, const int64_t *shape);

/* ---- the per-step context ---------------------------------------------- */

FV_API fv_ctx *fv_ctx_new(void);
FV_API void fv_ctx_free(fv_ctx *ctx);
/* Drop every tensor, gradient and tape entry made in this context. */
FV_API void fv_ctx_reset(fv_ctx *ctx);
/* Turn recording on/off (torch.no_grad()); returns the previous state. */
FV_API bool fv_ctx_set_grad_enabled(fv_ctx *ctx, bool enabled);
FV_API bool fv_ctx_grad_enabled(const fv_ctx *ctx);
/* Seed the context's random stream (dropout, sampling). */
FV_API void fv_ctx_seed(fv_ctx *ctx, uint64_t seed);
FV_API uint64_t fv_ctx_random_u64(fv_ctx *ctx);
FV_API double fv_ctx_random_uniform(fv_ctx *ctx); /* [0, 1) */
FV_API double fv_ctx_random_normal(fv_ctx *ctx);  /* N(0, 1) */
/* Bytes the arena holds (for benchmarks and the no-malloc test). */
FV_API size_t fv_ctx_arena_capacity(const fv_ctx *ctx);
FV_API size_t fv_ctx_malloc_count(const fv_ctx *ctx);

/* Arena memory for op implementations, 64-byte aligned, not zeroed. */
FV_API void *fv_ctx_alloc(fv_ctx *ctx, size_t bytes);
/* Tensors in the context: uninitialised / zero-filled / a copy. */
FV_API fv_tensor *fv_ctx_empty(fv_ctx *ctx, int ndim, const int64_t *shape);
FV_API fv_tensor *fv_ctx_zeros(fv_ctx *ctx, int ndim, const int64_t *shape);
FV_API fv_tensor *fv_ctx_full(fv_ctx *ctx, int ndim, const int64_t *shape, fv_real v);
FV_API fv_tensor *fv_ctx_from_data(fv_ctx *ctx, int ndim, const int64_t *shape, const fv_real *data);
FV_API fv_tensor *fv_ctx_scalar(fv_ctx *ctx, fv_real v);

/* ---- autograd ------------------------------------------------------------ */

/* Backpropagate from a scalar `loss` (seed 1). */
FV_API fv_status fv_backward(fv_ctx *ctx, fv_tensor *loss);
/* Backpropagate from any tensor with a given cotangent of its shape. */
FV_API fv_status fv_backward_with(fv_ctx *ctx, fv_tensor *out, const fv_tensor *cotangent);
/* A view of `t` that does not require grad (shares data). */
FV_API fv_tensor *fv_detach(fv_ctx *ctx, fv_tensor *t);

/*
** Custom ops.  An op computes its output eagerly into a context tensor, then
** records itself with fv_op_record().  On backward, `backward` receives the
** output (its ->grad holds dL/dout), the sources, and for each source either
** NULL (no grad needed) or a zero-initialised-or-accumulating gradient buffer
** into which it must ADD dL/dsrc.  `aux` is the op's copy of the bytes given
** at record time (parameters, pointers to saved arena tensors).
*/
typedef fv_status (*fv_backward_fn)(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *src_grads, const void *aux);
typedef struct fv_op_def {
	const char *name;
	fv_backward_fn backward;
} fv_op_def;

#define FV_MAX_OP_SRCS 8
/* Record `out` = def(srcs...) if grad mode is on and a source requires grad
** (then out->requires_grad becomes true). */
FV_API fv_status fv_op_record(fv_ctx *ctx, fv_tensor *out, const fv_op_def *def, int n_srcs,
                              fv_tensor *const *srcs, const void *aux, size_t aux_size);
/* Whether an op with these sources would be recorded. */
FV_API bool fv_op_needs_grad(const fv_ctx *ctx, int n_srcs, fv_tensor *const *srcs);

/* ---- elementwise ---------------------------------------------------------- */
/* Binary ops broadcast as NumPy/PyTorch do. */
FV_API fv_tensor *fv_add(fv_ctx *ctx, fv_tensor *a, fv_tensor *b);
FV_API fv_tensor *fv_sub(fv_ctx *ctx, fv_tensor *a, fv_tensor *b);
FV_API fv_tensor *fv_mul(fv_ctx *ctx, fv_tensor *a, fv_tensor *b);
FV_API fv_tensor *fv_div(fv_ctx *ctx, fv_tensor *a, fv_tensor *b);
FV_API fv_tensor *fv_add_scalar(fv_ctx *ctx, fv_tensor *x, double s);
FV_API fv_tensor *fv_mul_scalar(fv_ctx *ctx, fv_tensor *x, double s);
FV_API fv_tensor *fv_pow_scalar(fv_ctx *ctx, fv_tensor *x, double p);

FV_API fv_tensor *fv_neg(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_exp(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_log(fv_ctx *ctx, fv_tensor *x);
/* torch.nn.functional.softplus(x, beta, threshold): linear above threshold. */
FV_API fv_tensor *fv_softplus(fv_ctx *ctx, fv_tensor *x, double beta, double threshold);
FV_API fv_tensor *fv_elu(fv_ctx *ctx, fv_tensor *x, double alpha);
FV_API fv_tensor *fv_relu(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_sigmoid(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_tanh(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_abs(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_sqrt(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_square(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_sin(fv_ctx *ctx, fv_tensor *x);
FV_API fv_tensor *fv_cos(fv_ctx *ctx, fv_tensor *x);
/* torch.clamp: pass -INFINITY / INFINITY for a missing bound.  The gradient
** is 1 where lo <= x <= hi, as torch's. */
FV_API fv_tensor *fv_clamp(fv_ctx *ctx, fv_tensor *x, double lo, double hi);

/* ---- reductions ---------------------------------------------------------- */
/* `axes` may be negative (counted from the end); naxes == 0 means all axes. */
FV_API fv_tensor *fv_sum(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim);
FV_API fv_tensor *fv_mean(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim);
/* Max over axes; the gradient goes to the first maximal element (as torch's
** max(dim) does for ties). */
FV_API fv_tensor *fv_max(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim);
/* p-norm over axes (torch.norm); p = 2 gives the Frobenius/L2 norm. */
FV_API fv_tensor *fv_norm(fv_ctx *ctx, fv_tensor *x, double p, int naxes, const int *axes,
                          bool keepdim);
FV_API fv_tensor *fv_sum_all(fv_ctx *ctx, fv_tensor *x);  /* shape [] */
FV_API fv_tensor *fv_mean_all(fv_ctx *ctx, fv_tensor *x); /* shape [] */

/* ---- linear algebra (BLIS) --------------------------------------------- */
/* (..., m, k) x (..., k, n) -> (..., m, n).  Batch dims broadcast; a 2-D
** operand is shared by every batch.  trans_a/trans_b transpose the last two
** dims of a/b. */
FV_API fv_tensor *fv_matmul_ex(fv_ctx *ctx, fv_tensor *a, fv_tensor *b, bool trans_a,
                               bool trans_b);
FV_API fv_tensor *fv_matmul(fv_ctx *ctx, fv_tensor *a, fv_tensor *b);

/* ---- convolution and pooling --------------------------------------------- */
typedef struct fv_conv3d_params {
	int stride[3];      /* t, h, w; 0 means 1 */
	int pad[3][2];      /* per axis: before, after */
	int dilation[3];    /* 0 means 1 */
	int groups;         /* 0 means 1 */
} fv_conv3d_params;

/* PyTorch's padding="same" for a kernel: total = dilation*(k-1), the extra
** one of an even total goes after. */
FV_API void fv_conv3d_same_padding(const int kernel[3], const int dilation[3], int pad[3][2]);

/* Cross-correlation as torch.nn.functional.conv3d.
** x (N, C, T, H, W), w (O, C/groups, kt, kh, kw), bias (O) or NULL. */
FV_API fv_tensor *fv_conv3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *w, fv_tensor *bias,
                            const fv_conv3d_params *p);
/* The same convolution with the rank-one weight
** w[o,i,t,h,w] = w_time[o,i,t] * w_space[o,i,h,w], computed as a spatial
** pass then a temporal pass (groups must be 1).  w_time (O, C, kt),
** w_space (O, C, kh, kw). */
FV_API fv_tensor *fv_conv3d_separable(fv_ctx *ctx, fv_tensor *x, fv_tensor *w_time,
                                      fv_tensor *w_space, const fv_conv3d_params *p);

typedef struct fv_pool3d_params {
	int kernel[3];
	int stride[3];      /* 0 means kernel (torch's default) */
	int pad[3];
	bool count_include_pad; /* avg pool only; torch's default is true */
} fv_pool3d_params;
FV_API fv_tensor *fv_avg_pool3d(fv_ctx *ctx, fv_tensor *x, const fv_pool3d_params *p);
FV_API fv_tensor *fv_max_pool3d(fv_ctx *ctx, fv_tensor *x, const fv_pool3d_params *p);

/* Bilinear torch.nn.functional.grid_sample with zero padding.
** input (N, C, H, W), grid (N, Ho, Wo, 2) with grid[...,0] = x (indexes W)
** and grid[...,1] = y (indexes H), in [-1, 1].  Differentiable in both. */
FV_API fv_tensor *fv_grid_sample(fv_ctx *ctx, fv_tensor *input, fv_tensor *grid,
                                 bool align_corners);

/* torch.nn.BatchNorm3d on (N, C, T, H, W).  In training it normalises with
** the biased batch variance and, when running stats are given, updates
** them in place with the unbiased one (momentum as torch) and increments
** *num_batches_tracked if given.  In eval it uses the running stats.
** weight/bias (C) may be NULL (affine=False). */
FV_API fv_tensor *fv_batch_norm3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight, fv_tensor *bias,
                                  fv_tensor *running_mean, fv_tensor *running_var,
                                  fv_tensor *num_batches_tracked, bool training,
                                  double momentum, double eps);
/* fv_elu(fv_batch_norm3d(...), alpha) in one op (alpha > 0): the same
** numbers with two passes over the activations fewer, forward and
** backward. */
FV_API fv_tensor *fv_batch_norm3d_elu(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight,
                                      fv_tensor *bias, fv_tensor *running_mean,
                                      fv_tensor *running_var, fv_tensor *num_batches_tracked,
                                      bool training, double momentum, double eps, double alpha);

/* Inverted dropout (torch.nn.Dropout): zero with probability p, scale the
** rest by 1/(1-p).  Identity when !training or p == 0. */
FV_API fv_tensor *fv_dropout(fv_ctx *ctx, fv_tensor *x, double p, bool training);
/* torch.nn.Dropout3d: whole (n, c) channels are dropped together. */
FV_API fv_tensor *fv_dropout3d(fv_ctx *ctx, fv_tensor *x, double p, bool training);

/* ---- shape ------------------------------------------------------------------ */
/* One entry of `shape` may be -1 (inferred). */
FV_API fv_tensor *fv_reshape(fv_ctx *ctx, fv_tensor *x, int ndim, const int64_t *shape);
FV_API fv_tensor *fv_permute(fv_ctx *ctx, fv_tensor *x, const int *perm);
/* x[..., start:stop:step, ...] along `axis`; negative start/stop count from
** the end as in Python; stop is clipped to the size. */
FV_API fv_tensor *fv_slice(fv_ctx *ctx, fv_tensor *x, int axis, int64_t start, int64_t stop,
                           int64_t step);
/* Constant padding: pads[d][0] before and pads[d][1] after axis d, for
** every axis of x. */
FV_API fv_tensor *fv_pad(fv_ctx *ctx, fv_tensor *x, const int64_t (*pads)[2], double value);
FV_API fv_tensor *fv_concat(fv_ctx *ctx, int n, fv_tensor *const *xs, int axis);
FV_API fv_tensor *fv_index_select(fv_ctx *ctx, fv_tensor *x, int axis, int64_t n,
                                  const int64_t *index);
/* Broadcast to a larger shape (torch.expand, materialised). */
FV_API fv_tensor *fv_expand(fv_ctx *ctx, fv_tensor *x, int ndim, const int64_t *shape);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_TENSOR_H */
