/*
** ops_shape.c: reshape, permute, slice, pad, concat, index_select, expand.
**
** reshape is a view: the output shares its source's data.  The others copy,
** and each copy is described as a move: an index space (the part that
** moves) and where it sits in the source and in the output, as an offset
** and strides in each.  A permute is a move whose source strides are
** permuted, a slice one whose source strides are scaled by the step, a pad
** one whose output offset skips the border.  The forward copies the move
** from source to output; the backward copies it from the output's gradient
** back to the source's, accumulating.  Only expand, whose source elements
** are repeated, needs a different backward: a sum over the repeats.
*/
#include <string.h>

#include "tensor/tensor_internal.h"

/* Where an index space sits in a contiguous tensor. */
typedef struct region {
	int64_t offset;
	int64_t strides[FV_MAX_DIMS];
} region;

typedef struct move {
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	region in_x, in_out;
} move;

static region dense_region(int ndim, const int64_t *shape, int64_t offset)
{
	region r = {.offset = offset};
	fv__strides(ndim, shape, r.strides);
	return r;
}

static void move_forward(const move *m, const fv_tensor *x, fv_tensor *out)
{
	fv__strided_copy(m->ndim, m->shape, out->data + m->in_out.offset, m->in_out.strides,
	                 x->data + m->in_x.offset, m->in_x.strides, 1, false);
}

/* gx's moved part += gout's; an unset gx (`fresh`) is set instead where
** the move covers all of it, else cleared first. */
static void move_grad(const move *m, fv_tensor *gx, const fv_tensor *gout, bool fresh)
{
	bool covers = fv__numel(m->ndim, m->shape) == gx->numel;
	if (fresh && !covers)
		memset(gx->data, 0, (size_t)gx->numel * sizeof(fv_real));
	fv__strided_copy(m->ndim, m->shape, gx->data + m->in_x.offset, m->in_x.strides,
	                 gout->data + m->in_out.offset, m->in_out.strides, 1, !(fresh && covers));
}

/* The backward of every op whose aux is its move. */
static fv_status move_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                               fv_tensor *const *src_grads, const void *aux)
{
	(void)srcs;
	move_grad(aux, src_grads[0], out->grad, fv__grad_fresh(ctx, 0));
	return FV_OK;
}

static const fv_op_def PERMUTE_DEF = {"permute", move_backward};
static const fv_op_def SLICE_DEF = {"slice", move_backward};
static const fv_op_def PAD_DEF = {"pad", move_backward};

/* Run a single-source move op: out is already shaped (and, for pad, filled). */
static fv_tensor *run_move(fv_ctx *ctx, const fv_op_def *def, const move *m, fv_tensor *x,
                           fv_tensor *out)
{
	if (out == NULL)
		return NULL;
	move_forward(m, x, out);
	fv_tensor *srcs[1] = {x};
	if (fv_op_record(ctx, out, def, 1, srcs, m, sizeof *m) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

/* ---- reshape ------------------------------------------------------------------- */

static fv_status reshape_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                  fv_tensor *const *src_grads, const void *aux)
{
	(void)srcs;
	(void)aux;
	int64_t n = out->numel, unit = 1;
	fv__strided_copy(1, &n, src_grads[0]->data, &unit, out->grad->data, &unit, 1,
	                 !fv__grad_fresh(ctx, 0));
	return FV_OK;
}

static const fv_op_def RESHAPE_DEF = {"reshape", reshape_backward};

static fv_status infer_shape(const fv_tensor *x, int ndim, const int64_t *shape, int64_t *to)
{
	if (ndim < 0 || ndim > FV_MAX_DIMS || (ndim > 0 && shape == NULL))
		return fv_error(FV_ERR_ARG, "fv_reshape: %d dims given (with %s shape); 0 to %d needed",
		                ndim, shape ? "a" : "no", FV_MAX_DIMS);
	int infer = -1;
	int64_t known = 1;
	for (int d = 0; d < ndim; d++) {
		to[d] = shape[d];
		if (shape[d] >= 0)
			known *= shape[d];
		else if (shape[d] != -1 || infer >= 0)
			return fv_error(FV_ERR_ARG, "fv_reshape: bad target shape %s for %s (one -1 at "
			                "most, other sizes >= 0)", fv_shape_str(ndim, shape),
			                fv_shape_str(x->ndim, x->shape));
		else
			infer = d;
	}
	if (infer >= 0 && known != 0 && x->numel % known == 0)
		to[infer] = x->numel / known;
	if (fv__numel(ndim, to) != x->numel || (infer >= 0 && known == 0))
		return fv_error(FV_ERR_SHAPE, "fv_reshape: cannot reshape %s (%lld elements) to %s",
		                fv_shape_str(x->ndim, x->shape), (long long)x->numel,
		                fv_shape_str(ndim, shape));
	return FV_OK;
}

fv_tensor *fv_reshape(fv_ctx *ctx, fv_tensor *x, int ndim, const int64_t *shape)
{
	FV_CHECK_INPUT(x);
	int64_t to[FV_MAX_DIMS];
	if (infer_shape(x, ndim, shape, to) != FV_OK)
		return NULL;
	fv_tensor *out = fv__ctx_view(ctx, x, ndim, to);
	fv_tensor *srcs[1] = {x};
	if (out == NULL || fv_op_record(ctx, out, &RESHAPE_DEF, 1, srcs, NULL, 0) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

/* ---- permute -------------------------------------------------------------------- */

fv_tensor *fv_permute(fv_ctx *ctx, fv_tensor *x, const int *perm)
{
	FV_CHECK_INPUT(x);
	if (perm == NULL && x->ndim > 0) {
		fv_error(FV_ERR_ARG, "fv_permute: no permutation given for a tensor of shape %s",
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t xs[FV_MAX_DIMS];
	bool used[FV_MAX_DIMS] = {false};
	move m = {.ndim = x->ndim};
	fv__strides(x->ndim, x->shape, xs);
	for (int i = 0; i < x->ndim; i++) {
		int d = fv__axis(perm[i], x->ndim);
		if (d < 0 || used[d]) {
			fv_error(FV_ERR_ARG, "fv_permute: entry %d (%d) of the permutation is %s for a "
			         "tensor of shape %s", i, perm[i], d < 0 ? "out of range" : "repeated",
			         fv_shape_str(x->ndim, x->shape));
			return NULL;
		}
		used[d] = true;
		m.shape[i] = x->shape[d];
		m.in_x.strides[i] = xs[d];
	}
	m.in_out = dense_region(m.ndim, m.shape, 0);
	return run_move(ctx, &PERMUTE_DEF, &m, x, fv_ctx_empty(ctx, m.ndim, m.shape));
}

/* ---- slice ------------------------------------------------------------------------ */

/* Python's slice.indices(): clip start and stop to the valid range for the
** direction of `step`, and count the elements. */
static int64_t slice_indices(int64_t size, int64_t *start, int64_t *stop, int64_t step)
{
	int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? size : size - 1;
	int64_t *ends[2] = {start, stop};
	for (int i = 0; i < 2; i++) {
		int64_t v = *ends[i];
		if (v < 0)
			v = v < -size ? lo : v + size; /* no overflow for very negative v */
		*ends[i] = v < lo ? lo : v > hi ? hi : v;
	}
	if (step > 0)
		return *stop > *start ? (*stop - *start - 1) / step + 1 : 0;
	return *start > *stop ? (*start - *stop - 1) / -step + 1 : 0;
}

fv_tensor *fv_slice(fv_ctx *ctx, fv_tensor *x, int axis, int64_t start, int64_t stop,
                    int64_t step)
{
	FV_CHECK_INPUT(x);
	int d = fv__axis(axis, x->ndim);
	if (d < 0 || step == 0 || step == INT64_MIN) {
		fv_error(FV_ERR_ARG, "fv_slice: %s (axis %d, step %lld) for a tensor of shape %s",
		         d < 0 ? "axis out of range" : "bad step", axis, (long long)step,
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	move m = {.ndim = x->ndim};
	memcpy(m.shape, x->shape, sizeof m.shape);
	m.shape[d] = slice_indices(x->shape[d], &start, &stop, step);
	m.in_x = dense_region(x->ndim, x->shape, 0);
	m.in_x.offset = m.shape[d] > 0 ? start * m.in_x.strides[d] : 0;
	m.in_x.strides[d] *= step;
	m.in_out = dense_region(m.ndim, m.shape, 0);
	return run_move(ctx, &SLICE_DEF, &m, x, fv_ctx_empty(ctx, m.ndim, m.shape));
}

/* ---- pad ---------------------------------------------------------------------------- */

/* Negative pads crop, as in torch.nn.functional.pad. */
fv_tensor *fv_pad(fv_ctx *ctx, fv_tensor *x, const int64_t (*pads)[2], double value)
{
	FV_CHECK_INPUT(x);
	if (pads == NULL && x->ndim > 0) {
		fv_error(FV_ERR_ARG, "fv_pad: no pads given for a tensor of shape %s",
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t out_shape[FV_MAX_DIMS], crop[FV_MAX_DIMS], lead[FV_MAX_DIMS];
	move m = {.ndim = x->ndim};
	for (int d = 0; d < x->ndim; d++) {
		int64_t before = pads[d][0], after = pads[d][1];
		out_shape[d] = x->shape[d] + before + after;
		if (out_shape[d] < 0) {
			fv_error(FV_ERR_SHAPE, "fv_pad: pads (%lld, %lld) leave axis %d of %s with "
			         "size %lld", (long long)before, (long long)after, d,
			         fv_shape_str(x->ndim, x->shape), (long long)out_shape[d]);
			return NULL;
		}
		crop[d] = before < 0 ? -before : 0;
		lead[d] = before > 0 ? before : 0;
		m.shape[d] = x->shape[d] - crop[d] - (after < 0 ? -after : 0);
		if (m.shape[d] < 0)
			m.shape[d] = 0;
	}
	m.in_x = dense_region(x->ndim, x->shape, 0);
	m.in_out = dense_region(x->ndim, out_shape, 0);
	for (int d = 0; d < x->ndim; d++) {
		m.in_x.offset += crop[d] * m.in_x.strides[d];
		m.in_out.offset += lead[d] * m.in_out.strides[d];
	}
	fv_tensor *out = fv_ctx_full(ctx, x->ndim, out_shape, (fv_real)value);
	return run_move(ctx, &PAD_DEF, &m, x, out);
}

/* ---- concat ------------------------------------------------------------------------- */

/* Where xs[i] lands in out: at `offset` along `axis`. */
static move concat_move(const fv_tensor *out, const fv_tensor *xi, int axis, int64_t offset)
{
	move m = {.ndim = xi->ndim};
	memcpy(m.shape, xi->shape, sizeof m.shape);
	m.in_x = dense_region(xi->ndim, xi->shape, 0);
	m.in_out = dense_region(out->ndim, out->shape, 0);
	m.in_out.offset = offset * m.in_out.strides[axis];
	return m;
}

static fv_status concat_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux)
{
	(void)ctx;
	int axis = *(const int *)aux, n = out->node->n_srcs;
	int64_t offset = 0;
	for (int i = 0; i < n; i++) {
		move m = concat_move(out, srcs[i], axis, offset);
		if (src_grads[i] != NULL)
			move_grad(&m, src_grads[i], out->grad, false);
		offset += srcs[i]->shape[axis];
	}
	return FV_OK;
}

static const fv_op_def CONCAT_DEF = {"concat", concat_backward};

static fv_status concat_check(int n, fv_tensor *const *xs, int axis, int *d, int64_t *shape)
{
	if (n <= 0 || xs == NULL)
		return fv_error(FV_ERR_ARG, "fv_concat: no tensors to concatenate (n = %d)", n);
	const fv_tensor *x0 = xs[0];
	*d = fv__axis(axis, x0->ndim);
	if (*d < 0)
		return fv_error(FV_ERR_ARG, "fv_concat: axis %d is out of range for tensor 0 of "
		                "shape %s", axis, fv_shape_str(x0->ndim, x0->shape));
	memcpy(shape, x0->shape, sizeof x0->shape);
	shape[*d] = 0;
	for (int i = 0; i < n; i++) {
		const fv_tensor *xi = xs[i];
		bool fits = xi->ndim == x0->ndim;
		for (int k = 0; fits && k < x0->ndim; k++)
			fits = k == *d || xi->shape[k] == x0->shape[k];
		if (!fits)
			return fv_error(FV_ERR_SHAPE, "fv_concat: tensor %d has shape %s, tensor 0 %s; "
			                "they may differ only along axis %d", i,
			                fv_shape_str(xi->ndim, xi->shape), fv_shape_str(x0->ndim, x0->shape),
			                axis);
		shape[*d] += xi->shape[*d];
	}
	return FV_OK;
}

fv_tensor *fv_concat(fv_ctx *ctx, int n, fv_tensor *const *xs, int axis)
{
	for (int i = 0; xs != NULL && i < n; i++)
		FV_CHECK_INPUT(xs[i]);
	if (n > FV_MAX_OP_SRCS && xs != NULL) { /* more sources than a tape node holds: in halves */
		fv_tensor *halves[2] = {fv_concat(ctx, n / 2, xs, axis),
		                        fv_concat(ctx, n - n / 2, xs + n / 2, axis)};
		return halves[0] && halves[1] ? fv_concat(ctx, 2, halves, axis) : NULL;
	}
	int d;
	int64_t shape[FV_MAX_DIMS];
	if (concat_check(n, xs, axis, &d, shape) != FV_OK)
		return NULL;
	fv_tensor *out = fv_ctx_empty(ctx, xs[0]->ndim, shape);
	if (out == NULL)
		return NULL;
	int64_t offset = 0;
	for (int i = 0; i < n; i++) {
		move m = concat_move(out, xs[i], d, offset);
		move_forward(&m, xs[i], out);
		offset += xs[i]->shape[d];
	}
	if (fv_op_record(ctx, out, &CONCAT_DEF, n, xs, &d, sizeof d) != FV_OK)
		return NULL;
	return out;
}

/* ---- index_select -------------------------------------------------------------------- */

typedef struct index_aux {
	int axis;
	int64_t n;
	const int64_t *index; /* the context's copy */
} index_aux;

/* The slab x[..., index[j], ...] and its place out[..., j, ...]. */
static move index_move(const fv_tensor *x, const fv_tensor *out, int axis, int64_t at, int64_t j)
{
	move m = {.ndim = x->ndim};
	memcpy(m.shape, x->shape, sizeof m.shape);
	m.shape[axis] = 1;
	m.in_x = dense_region(x->ndim, x->shape, 0);
	m.in_x.offset = at * m.in_x.strides[axis];
	m.in_out = dense_region(out->ndim, out->shape, 0);
	m.in_out.offset = j * m.in_out.strides[axis];
	return m;
}

/* Slabs go back in index order, so repeated indices accumulate
** deterministically. */
static fv_status index_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                fv_tensor *const *src_grads, const void *aux)
{
	(void)ctx;
	const index_aux *a = aux;
	for (int64_t j = 0; j < a->n; j++) {
		move m = index_move(srcs[0], out, a->axis, a->index[j], j);
		move_grad(&m, src_grads[0], out->grad, false);
	}
	return FV_OK;
}

static const fv_op_def INDEX_SELECT_DEF = {"index_select", index_backward};

static fv_status index_check(const fv_tensor *x, int axis, int64_t n, const int64_t *index)
{
	if (fv__axis(axis, x->ndim) < 0)
		return fv_error(FV_ERR_ARG, "fv_index_select: axis %d is out of range for a tensor "
		                "of shape %s", axis, fv_shape_str(x->ndim, x->shape));
	axis = fv__axis(axis, x->ndim);
	if (n < 0 || (n > 0 && index == NULL))
		return fv_error(FV_ERR_ARG, "fv_index_select: %lld indices given (with %s list)",
		                (long long)n, index ? "a" : "no");
	for (int64_t j = 0; j < n; j++)
		if (index[j] < 0 || index[j] >= x->shape[axis])
			return fv_error(FV_ERR_ARG, "fv_index_select: index %lld (entry %lld) is out of "
			                "range for axis %d of a tensor of shape %s", (long long)index[j],
			                (long long)j, axis, fv_shape_str(x->ndim, x->shape));
	return FV_OK;
}

fv_tensor *fv_index_select(fv_ctx *ctx, fv_tensor *x, int axis, int64_t n, const int64_t *index)
{
	FV_CHECK_INPUT(x);
	if (index_check(x, axis, n, index) != FV_OK)
		return NULL;
	int d = fv__axis(axis, x->ndim);
	int64_t shape[FV_MAX_DIMS];
	memcpy(shape, x->shape, sizeof shape);
	shape[d] = n;
	fv_tensor *out = fv_ctx_empty(ctx, x->ndim, shape);
	int64_t *copy = fv_ctx_alloc(ctx, (size_t)n * sizeof *copy);
	if (out == NULL || copy == NULL)
		return NULL;
	if (n > 0) /* index may be NULL when there is nothing to select */
		memcpy(copy, index, (size_t)n * sizeof *copy);
	for (int64_t j = 0; j < n; j++) {
		move m = index_move(x, out, d, index[j], j);
		move_forward(&m, x, out);
	}
	index_aux a = {d, n, copy};
	fv_tensor *srcs[1] = {x};
	if (fv_op_record(ctx, out, &INDEX_SELECT_DEF, 1, srcs, &a, sizeof a) != FV_OK)
		return NULL;
	return out;
}

/* ---- expand ------------------------------------------------------------------------------ */

static fv_status expand_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux)
{
	(void)aux;
	return fv__sum_to_shape(ctx, src_grads[0]->data, srcs[0]->ndim, srcs[0]->shape,
	                        out->grad->data, out->ndim, out->shape);
}

static const fv_op_def EXPAND_DEF = {"expand", expand_backward};

/* torch.expand's rules: -1 keeps a size, size-1 dims repeat, new dims lead. */
static fv_status expand_shape(const fv_tensor *x, int ndim, const int64_t *shape, int64_t *to)
{
	if (ndim < x->ndim || ndim > FV_MAX_DIMS || (ndim > 0 && shape == NULL))
		return fv_error(FV_ERR_SHAPE, "fv_expand: cannot expand %s to %d dims",
		                fv_shape_str(x->ndim, x->shape), ndim);
	for (int d = 0; d < ndim; d++) {
		int xd = d - (ndim - x->ndim);
		int64_t from = xd >= 0 ? x->shape[xd] : 1;
		to[d] = shape[d] == -1 && xd >= 0 ? from : shape[d];
		if (to[d] < 0 || (from != 1 && from != to[d]))
			return fv_error(FV_ERR_SHAPE, "fv_expand: cannot expand %s to %s (dim %d)",
			                fv_shape_str(x->ndim, x->shape), fv_shape_str(ndim, shape), d);
	}
	return FV_OK;
}

fv_tensor *fv_expand(fv_ctx *ctx, fv_tensor *x, int ndim, const int64_t *shape)
{
	FV_CHECK_INPUT(x);
	int64_t to[FV_MAX_DIMS];
	if (expand_shape(x, ndim, shape, to) != FV_OK)
		return NULL;
	fv_tensor *out = fv_ctx_empty(ctx, ndim, to);
	if (out == NULL)
		return NULL;
	move m = {.ndim = ndim};
	memcpy(m.shape, to, sizeof to);
	fv__broadcast_strides(ndim, to, x->ndim, x->shape, m.in_x.strides);
	m.in_out = dense_region(ndim, to, 0);
	move_forward(&m, x, out);
	fv_tensor *srcs[1] = {x};
	if (fv_op_record(ctx, out, &EXPAND_DEF, 1, srcs, NULL, 0) != FV_OK)
		return NULL;
	return out;
}
