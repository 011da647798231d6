/*
** ops_binary.c: add, sub, mul and div with NumPy broadcasting, and the
** strided walk that every elementwise, shape and matmul loop is built on.
**
** A walk maps a row-major position in an index space to the element offset
** of each operand, which is all broadcasting, permutes, slices and pads
** need: a broadcast operand has stride 0 along the dims it is repeated on,
** a permuted one has its strides permuted, a slice has them scaled.  The
** walk merges dims so that the common cases (same shapes, a bias along the
** last dims) become long unit-stride runs that the compiler vectorises.
**
** Parallel loops split the walk into tiles of a fixed size, never into
** one piece per thread, and each position is written by exactly one tile,
** so results do not depend on the number of threads.
*/
#include <stdio.h>
#include <string.h>

#include "tensor/tensor_internal.h"

#define WALK_TILE 8192           /* positions per parallel work item */
#define WALK_PARALLEL_MIN 32768  /* smaller walks run on one thread */

/* ---- the strided walk ----------------------------------------------------- */

static bool mergeable(const fv__walk *w, int outer, int64_t inner_size, int inner)
{
	for (int i = 0; i < w->nops; i++)
		if (w->stride[i][outer] != w->stride[i][inner] * inner_size)
			return false;
	return true;
}

void fv__walk_init(fv__walk *w, int ndim, const int64_t *shape, int nops,
                   const int64_t (*strides)[FV_MAX_DIMS])
{
	memset(w, 0, sizeof *w);
	w->nops = nops;
	w->numel = fv__numel(ndim, shape);
	int n = 0;
	for (int d = 0; d < ndim; d++) {
		if (shape[d] == 1)
			continue; /* contributes no offset */
		w->shape[n] = shape[d];
		for (int i = 0; i < nops; i++)
			w->stride[i][n] = strides[i][d];
		if (n > 0 && mergeable(w, n - 1, shape[d], n)) {
			w->shape[n - 1] *= shape[d];
			for (int i = 0; i < nops; i++)
				w->stride[i][n - 1] = strides[i][d];
			continue;
		}
		n++;
	}
	if (n == 0) { /* a scalar, or only size-1 dims */
		w->shape[0] = 1;
		n = 1;
	}
	w->ndim = n;
}

void fv__walk_range(const fv__walk *w, int64_t start, int64_t count, fv__run_fn fn, void *ud)
{
	if (count <= 0 || w->numel == 0)
		return;
	int last = w->ndim - 1;
	int64_t idx[FV_MAX_DIMS], off[FV_WALK_MAX_OPS], step[FV_WALK_MAX_OPS];
	int64_t rem = start;
	for (int d = last; d >= 0; d--) {
		idx[d] = rem % w->shape[d];
		rem /= w->shape[d];
	}
	for (int i = 0; i < w->nops; i++) {
		off[i] = 0;
		for (int d = 0; d <= last; d++)
			off[i] += idx[d] * w->stride[i][d];
		step[i] = w->stride[i][last];
	}
	for (;;) {
		int64_t n = w->shape[last] - idx[last];
		if (n > count)
			n = count;
		fn(ud, n, off, step);
		count -= n;
		if (count == 0)
			return;
		/* n reached the end of the innermost dim: carry outwards */
		for (int i = 0; i < w->nops; i++)
			off[i] += n * step[i];
		idx[last] += n;
		for (int d = last; d > 0 && idx[d] == w->shape[d]; d--) {
			idx[d] = 0;
			idx[d - 1]++;
			for (int i = 0; i < w->nops; i++)
				off[i] += w->stride[i][d - 1] - w->shape[d] * w->stride[i][d];
		}
	}
}

void fv__walk_all(const fv__walk *w, fv__run_fn fn, void *ud)
{
	int64_t ntiles = (w->numel + WALK_TILE - 1) / WALK_TILE;
#pragma omp parallel for schedule(static) if (w->numel >= WALK_PARALLEL_MIN)
	for (int64_t t = 0; t < ntiles; t++) {
		int64_t start = t * WALK_TILE;
		int64_t count = w->numel - start < WALK_TILE ? w->numel - start : WALK_TILE;
		fv__walk_range(w, start, count, fn, ud);
	}
}

/* ---- broadcasting and strided copies ------------------------------------- */

void fv__broadcast_strides(int ndim, const int64_t *shape, int src_ndim, const int64_t *src_shape,
                           int64_t *strides)
{
	int64_t s = 1;
	for (int d = ndim - 1; d >= 0; d--) {
		int sd = d - (ndim - src_ndim);
		if (sd < 0 || (src_shape[sd] == 1 && shape[d] != 1)) {
			strides[d] = 0;
		} else {
			strides[d] = s;
			s *= src_shape[sd];
		}
	}
}

fv_status fv__broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                              const int64_t *sb, int *ndim, int64_t *shape)
{
	int n = na > nb ? na : nb;
	for (int d = 0; d < n; d++) {
		int da = d - (n - na), db = d - (n - nb);
		int64_t ea = da >= 0 ? sa[da] : 1;
		int64_t eb = db >= 0 ? sb[db] : 1;
		if (ea != eb && ea != 1 && eb != 1)
			return fv_error(FV_ERR_SHAPE,
			                "%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", op,
			                fv_shape_str(na, sa), fv_shape_str(nb, sb), d - n, (long long)ea,
			                (long long)eb);
		shape[d] = ea == 1 ? eb : ea;
	}
	*ndim = n;
	return FV_OK;
}

typedef struct copy_job {
	fv_real *dst;
	const fv_real *src;
	fv_real scale;
	bool accumulate;
} copy_job;

static FV__ALWAYS_INLINE void copy_loop(const copy_job *j, int64_t n, fv_real *d, int64_t sd,
                                    const fv_real *s, int64_t ss)
{
	fv_real k = j->scale;
	if (j->accumulate)
		for (int64_t i = 0; i < n; i++)
			d[i * sd] += k * s[i * ss];
	else
		for (int64_t i = 0; i < n; i++)
			d[i * sd] = k * s[i * ss];
}

static void copy_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	const copy_job *j = ud;
	fv_real *d = j->dst + off[0];
	const fv_real *s = j->src + off[1];
	if (step[0] == 1 && step[1] == 1)
		copy_loop(j, n, d, 1, s, 1);
	else if (step[0] == 1 && step[1] == 0)
		copy_loop(j, n, d, 1, s, 0);
	else
		copy_loop(j, n, d, step[0], s, step[1]);
}

void fv__strided_copy(int ndim, const int64_t *shape, fv_real *dst, const int64_t *dst_strides,
                      const fv_real *src, const int64_t *src_strides, fv_real scale,
                      bool accumulate)
{
	int64_t strides[2][FV_MAX_DIMS];
	memcpy(strides[0], dst_strides, (size_t)ndim * sizeof(int64_t));
	memcpy(strides[1], src_strides, (size_t)ndim * sizeof(int64_t));
	fv__walk w;
	fv__walk_init(&w, ndim, shape, 2, strides);
	copy_job job = {dst, src, scale, accumulate};
	fv__walk_all(&w, copy_run, &job);
}

void fv__broadcast_add(fv_real *dst, int ndim, const int64_t *shape, const fv_real *src,
                       int src_ndim, const int64_t *src_shape, fv_real scale)
{
	int64_t dst_strides[FV_MAX_DIMS], src_strides[FV_MAX_DIMS];
	fv__strides(ndim, shape, dst_strides);
	fv__broadcast_strides(ndim, shape, src_ndim, src_shape, src_strides);
	fv__strided_copy(ndim, shape, dst, dst_strides, src, src_strides, scale, true);
}

/* ---- add, sub, mul, div --------------------------------------------------- */

typedef enum binary_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } binary_kind;

static fv_status binary_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux);

static const fv_op_def BINARY_DEFS[] = {
	[BIN_ADD] = {"add", binary_backward},
	[BIN_SUB] = {"sub", binary_backward},
	[BIN_MUL] = {"mul", binary_backward},
	[BIN_DIV] = {"div", binary_backward},
};

/* Operands of a binary walk, in walk operand order. */
enum { OP_DST, OP_A, OP_B, OP_GOUT, BINARY_NOPS };

typedef struct binary_job {
	binary_kind kind;
	bool backward;
	int which;          /* backward: the source (0 = a, 1 = b) being differentiated */
	fv_real *dst;
	const fv_real *a, *b, *gout;
} binary_job;

static FV__ALWAYS_INLINE void binary_forward_loop(binary_kind kind, int64_t n, fv_real *y,
                                              const fv_real *a, int64_t sa, const fv_real *b,
                                              int64_t sb)
{
	switch (kind) {
	case BIN_ADD: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb]; break;
	case BIN_SUB: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb]; break;
	case BIN_MUL: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb]; break;
	case BIN_DIV: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb]; break;
	}
}

/* gx += dL/d(source `which`) at each output position. */
static FV__ALWAYS_INLINE void binary_backward_loop(binary_kind kind, int which, int64_t n,
                                               fv_real *gx, const fv_real *g, const fv_real *a,
                                               int64_t sa, const fv_real *b, int64_t sb)
{
	fv_real sign = which == 0 ? 1 : -1;
	switch (kind) {
	case BIN_ADD: for (int64_t i = 0; i < n; i++) gx[i] += g[i]; break;
	case BIN_SUB: for (int64_t i = 0; i < n; i++) gx[i] += sign * g[i]; break;
	case BIN_MUL:
		if (which == 0)
			for (int64_t i = 0; i < n; i++) gx[i] += g[i] * b[i * sb];
		else
			for (int64_t i = 0; i < n; i++) gx[i] += g[i] * a[i * sa];
		break;
	case BIN_DIV:
		if (which == 0)
			for (int64_t i = 0; i < n; i++) gx[i] += g[i] / b[i * sb];
		else
			for (int64_t i = 0; i < n; i++)
				gx[i] += -g[i] * a[i * sa] / (b[i * sb] * b[i * sb]);
		break;
	}
}

static FV__ALWAYS_INLINE void binary_loop(const binary_job *j, int64_t n, const int64_t *off,
                                      int64_t sa, int64_t sb)
{
	const fv_real *a = j->a + off[OP_A], *b = j->b + off[OP_B];
	if (j->backward)
		binary_backward_loop(j->kind, j->which, n, j->dst + off[OP_DST],
		                     j->gout + off[OP_GOUT], a, sa, b, sb);
	else
		binary_forward_loop(j->kind, n, j->dst + off[OP_DST], a, sa, b, sb);
}

/* The common stride patterns get loops of their own, so that they
** vectorise: both operands contiguous, or one a repeated scalar. */
static void binary_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	const binary_job *j = ud;
	int64_t sa = step[OP_A], sb = step[OP_B];
	if (sa == 1 && sb == 1)
		binary_loop(j, n, off, 1, 1);
	else if (sa == 1 && sb == 0)
		binary_loop(j, n, off, 1, 0);
	else if (sa == 0 && sb == 1)
		binary_loop(j, n, off, 0, 1);
	else
		binary_loop(j, n, off, sa, sb);
}

/* The walk over `out` with a and b broadcast; dst and gout are contiguous
** in out's shape. */
static void binary_walk(fv__walk *w, const fv_tensor *out, const fv_tensor *a, const fv_tensor *b)
{
	int64_t strides[FV_WALK_MAX_OPS][FV_MAX_DIMS];
	fv__strides(out->ndim, out->shape, strides[OP_DST]);
	fv__broadcast_strides(out->ndim, out->shape, a->ndim, a->shape, strides[OP_A]);
	fv__broadcast_strides(out->ndim, out->shape, b->ndim, b->shape, strides[OP_B]);
	memcpy(strides[OP_GOUT], strides[OP_DST], sizeof strides[OP_DST]);
	fv__walk_init(w, out->ndim, out->shape, BINARY_NOPS, strides);
}

/* dL/d(source) of an add or a subtraction is the output's gradient, signed:
** added in (or, unsigned, summed over the broadcast axes) without a pass
** through a full-size buffer. */
static fv_status pass_through_grad(fv_ctx *ctx, const fv_tensor *out, fv_tensor *gx, fv_real sign,
                                   bool fresh)
{
	if (gx->numel == out->numel) {
		int64_t n = out->numel, unit = 1;
		fv__strided_copy(1, &n, gx->data, &unit, out->grad->data, &unit, sign, !fresh);
		return FV_OK;
	}
	if (fresh)
		memset(gx->data, 0, (size_t)gx->numel * sizeof(fv_real));
	return fv__sum_to_shape(ctx, gx->data, gx->ndim, gx->shape, out->grad->data, out->ndim,
	                        out->shape);
}

static fv_status binary_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux)
{
	binary_job job = {.kind = *(const binary_kind *)aux, .backward = true, .a = srcs[0]->data,
	                  .b = srcs[1]->data, .gout = out->grad->data};
	fv__walk w;
	binary_walk(&w, out, srcs[0], srcs[1]);
	for (int i = 0; i < 2; i++) {
		fv_tensor *gx = src_grads[i];
		if (gx == NULL)
			continue;
		bool fresh = fv__grad_fresh(ctx, i);
		fv_real sign = job.kind == BIN_SUB && i == 1 ? -1 : 1;
		if ((job.kind == BIN_ADD || job.kind == BIN_SUB) &&
		    (gx->numel == out->numel || sign == 1)) {
			fv_status rc = pass_through_grad(ctx, out, gx, sign, fresh);
			if (rc != FV_OK)
				return rc;
			continue;
		}
		if (fresh)
			memset(gx->data, 0, (size_t)gx->numel * sizeof(fv_real));
		job.which = i;
		if (gx->numel == out->numel) { /* not broadcast: straight into the grad */
			job.dst = gx->data;
			fv__walk_all(&w, binary_run, &job);
			continue;
		}
		fv_tensor *full = fv_ctx_zeros(ctx, out->ndim, out->shape);
		if (full == NULL)
			return FV_ERR_NOMEM;
		job.dst = full->data;
		fv__walk_all(&w, binary_run, &job);
		fv_status rc = fv__sum_to_shape(ctx, gx->data, gx->ndim, gx->shape, full->data,
		                                out->ndim, out->shape);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

static fv_tensor *binary(fv_ctx *ctx, binary_kind kind, fv_tensor *a, fv_tensor *b)
{
	FV_CHECK_INPUT(a);
	FV_CHECK_INPUT(b);
	char op[16];
	snprintf(op, sizeof op, "fv_%s", BINARY_DEFS[kind].name);
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	if (fv__broadcast_shape(op, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape) != FV_OK)
		return NULL;
	fv_tensor *out = fv_ctx_empty(ctx, ndim, shape);
	if (out == NULL)
		return NULL;
	fv__walk w;
	binary_walk(&w, out, a, b);
	binary_job job = {.kind = kind, .dst = out->data, .a = a->data, .b = b->data};
	fv__walk_all(&w, binary_run, &job);
	fv_tensor *srcs[2] = {a, b};
	if (fv_op_record(ctx, out, &BINARY_DEFS[kind], 2, srcs, &kind, sizeof kind) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

fv_tensor *fv_add(fv_ctx *ctx, fv_tensor *a, fv_tensor *b)
{
	return binary(ctx, BIN_ADD, a, b);
}

fv_tensor *fv_sub(fv_ctx *ctx, fv_tensor *a, fv_tensor *b)
{
	return binary(ctx, BIN_SUB, a, b);
}

fv_tensor *fv_mul(fv_ctx *ctx, fv_tensor *a, fv_tensor *b)
{
	return binary(ctx, BIN_MUL, a, b);
}

fv_tensor *fv_div(fv_ctx *ctx, fv_tensor *a, fv_tensor *b)
{
	return binary(ctx, BIN_DIV, a, b);
}
