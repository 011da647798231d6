/*
** tensor_internal.h: what the tensor area's files (tensor, arena, autograd,
** ops, conv) share and plugins never see: the tape node, the context
** layout, shape helpers and the strided walks of the elementwise ops.
*/
#ifndef FOVEA_TENSOR_INTERNAL_H
#define FOVEA_TENSOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/fovea.h"
#include "fovea/tensor.h"

/* One recorded op: the output it produced and how to send gradient back. */
struct fv_node {
	const fv_op_def *def;
	fv_tensor *out;
	int n_srcs;
	fv_tensor *srcs[FV_MAX_OP_SRCS];
	void *aux;
	bool assigns_fresh; /* see fv__op_assigns_fresh_grads */
	fv_node *prev; /* the tape is a list, newest first, living in the arena */
};

typedef struct fv_arena_chunk fv_arena_chunk;

struct fv_ctx {
	fv_arena_chunk *chunks; /* newest first */
	size_t used_total;      /* bytes handed out since the last reset */
	size_t malloc_count;    /* chunk allocations, for the steady-state test */
	fv_node *tape;          /* newest op */
	unsigned fresh_grads;   /* bit i: source i's gradient is new and unset, for the running backward */
	bool grad_enabled;
	uint64_t rng[4];        /* xoshiro256** state */
	bool have_spare_normal;
	double spare_normal;
};

/* Row-major strides of a shape, in elements. */
void fv__strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t fv__numel(int ndim, const int64_t *shape);
/* Normalise a possibly negative axis; -1 when out of range. */
int fv__axis(int axis, int ndim);
/* A context tensor struct sharing `data` (for reshape-like views). */
fv_tensor *fv__ctx_view(fv_ctx *ctx, fv_tensor *src, int ndim, const int64_t *shape);
/* The gradient buffer of `t`, created zero-filled on first use (arena for
** context tensors, heap for persistent ones). */
fv_tensor *fv__grad_of(fv_ctx *ctx, fv_tensor *t);
/* Declares that the backward of the op just recorded for `out` sets a
** source gradient that fv__grad_fresh reports, rather than adding to it:
** the tape then hands it over unset instead of zero-filling it first
** (a pass over every activation-sized gradient saved). */
void fv__op_assigns_fresh_grads(fv_tensor *out);
/* Inside such a backward: whether source `i`'s gradient is unset. */
static inline bool fv__grad_fresh(const fv_ctx *ctx, int i)
{
	return (ctx->fresh_grads >> i) & 1u;
}

/* Whether the library chose BLIS's AVX-512 kernels for this processor at
** load time (blis_arch.c), when the user left BLIS_ARCH_TYPE unset. */
bool fv__blis_arch_wanted(void);

/* ---- per-op timers (profile.c, fovea/profile.h) ----------------------
** Every hook is behind fv__profiling, so that ops pay one flag test. */
extern bool fv__profiling;
/* The running op (the forward about to be recorded, or the backward
** running) performs `flops` FLOPs, `dense_flops` in a dense equivalent,
** and moves `extra_bytes` besides its operands (saved buffers). */
void fv__profile_note(double flops, double dense_flops, double extra_bytes);
/* Forgets what the running op noted (it was not recorded). */
void fv__profile_discard(void);
/* `def` produced `out` from srcs and was recorded. */
void fv__profile_forward(const fv_op_def *def, const fv_tensor *out, int n_srcs,
                         fv_tensor *const *srcs);
/* Around node n's backward; begin sets the start times (wall, CPU) to pass
** to end. */
void fv__profile_backward_begin(double t0[2]);
void fv__profile_backward_end(const fv_node *n, fv_tensor *const *src_grads, const double t0[2]);

/* y = elu(x) of n elements (x == y allowed), as fv_elu computes it; and
** gz = gy * elu'(z) from y = elu(z) (alpha > 0), as fv_elu's backward. */
void fv__elu_rows(int64_t n, const fv_real *x, fv_real *y, fv_real alpha);
/* y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] over a (N, C, ...)
** tensor (weight, bias NULL: 1, 0), then ELU when `elu`: batch norm's
** output once its statistics are known, local or synced across ranks. */
void fv__batch_norm_apply(const fv_tensor *x, fv_tensor *y, const fv_tensor *weight,
                          const fv_tensor *bias, const fv_real *mean, const fv_real *invstd,
                          bool elu, fv_real alpha);
void fv__elu_grad_rows(int64_t n, const fv_real *y, const fv_real *gy, fv_real *gz, fv_real alpha);

/* Shared argument checks of every op: NULL inputs propagate silently. */
#define FV_CHECK_INPUT(t)            \
	do {                          \
		if ((t) == NULL)      \
			return NULL;  \
	} while (0)

/* ---- strided walks, broadcasting, reductions ---------------------------
** (ops_binary.c, ops_reduce.c) shared by the elementwise, reduction, shape
** and matmul ops, so that index arithmetic lives in one place. */

#define FV_WALK_MAX_OPS 5

/* For the small loop kernels that must be specialised per stride pattern. */
#define FV__ALWAYS_INLINE inline __attribute__((always_inline))

/* A row-major walk over the index space `shape`, carrying the element
** offset of up to FV_WALK_MAX_OPS operands, each with its own strides (0
** along a broadcast dim).  Size-1 dims are dropped and dims contiguous for
** every operand merged, so the common cases become one long run. */
typedef struct fv__walk {
	int ndim; /* after merging; at least 1 */
	int nops;
	int64_t numel;
	int64_t shape[FV_MAX_DIMS];
	int64_t stride[FV_WALK_MAX_OPS][FV_MAX_DIMS];
} fv__walk;

/* A run of `n` consecutive positions along the innermost dim: off[i] is
** operand i's offset at the first, step[i] its stride along the run (1 for
** an operand laid out contiguously in the walk's shape). */
typedef void (*fv__run_fn)(void *ud, int64_t n, const int64_t *off, const int64_t *step);

void fv__walk_init(fv__walk *w, int ndim, const int64_t *shape, int nops,
                   const int64_t (*strides)[FV_MAX_DIMS]);
/* Visit positions [start, start + count) in order. */
void fv__walk_range(const fv__walk *w, int64_t start, int64_t count, fv__run_fn fn, void *ud);
/* Visit every position, in parallel fixed-size tiles when the walk is
** large; `fn` must write a distinct element at each position. */
void fv__walk_all(const fv__walk *w, fv__run_fn fn, void *ud);

/* Strides that read `src_shape` as if broadcast to the trailing-aligned
** `shape`: 0 along its size-1 dims and its missing leading dims. */
void fv__broadcast_strides(int ndim, const int64_t *shape, int src_ndim, const int64_t *src_shape,
                           int64_t *strides);
/* The NumPy broadcast of two shapes; the message names `op` and both. */
fv_status fv__broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                              const int64_t *sb, int *ndim, int64_t *shape);
/* Over the index space `shape`: dst = scale * src, or dst += scale * src
** when `accumulate`, each side addressed through its own strides. */
void fv__strided_copy(int ndim, const int64_t *shape, fv_real *dst, const int64_t *dst_strides,
                      const fv_real *src, const int64_t *src_strides, fv_real scale,
                      bool accumulate);
/* dst (contiguous `shape`) += scale * src broadcast from `src_shape`. */
void fv__broadcast_add(fv_real *dst, int ndim, const int64_t *shape, const fv_real *src,
                       int src_ndim, const int64_t *src_shape, fv_real scale);
/* dst (contiguous `dst_shape`) += src summed over the dims along which
** dst_shape broadcasts to `shape`: the gradient of a broadcast. */
fv_status fv__sum_to_shape(fv_ctx *ctx, fv_real *dst, int dst_ndim, const int64_t *dst_shape,
                           const fv_real *src, int ndim, const int64_t *shape);

#endif /* FOVEA_TENSOR_INTERNAL_H */
