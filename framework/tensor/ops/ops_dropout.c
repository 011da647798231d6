/*
** ops_dropout.c: inverted dropout, as torch.nn.Dropout and Dropout3d.
**
** In training each element (Dropout) or each whole (n, c) channel
** (Dropout3d) is kept with probability 1 - p and scaled by 1 / (1 - p), or
** zeroed; the draws come from the context's random stream, in order, so a
** seeded context repeats them.  The mask (scale or 0 per element or
** channel) lives in the arena and the backward multiplies by the same
** mask.  Out of training, or with p == 0, the op is the identity and
** returns x itself (as torch does).
*/
#include "tensor/tensor_internal.h"

typedef struct dropout_aux {
	const fv_real *mask;  /* one factor per group of `group` elements */
	int64_t group;        /* 1 for Dropout, the channel volume for Dropout3d */
} dropout_aux;

static void apply_mask(const fv_real *x, const dropout_aux *a, int64_t n, fv_real *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] * a->mask[i / a->group];
}

static fv_status dropout_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                  fv_tensor *const *grads, const void *aux_)
{
	const dropout_aux *a = aux_;
	(void)ctx;
	(void)srcs;
	if (grads[0] == NULL)
		return FV_OK;
	const fv_real *g = out->grad->data;
	fv_real *dx = grads[0]->data;
	for (int64_t i = 0; i < out->numel; i++)
		dx[i] += g[i] * a->mask[i / a->group];
	return FV_OK;
}

static const fv_op_def dropout_def = {"dropout", dropout_backward};

static fv_status check_p(const char *op, double p)
{
	if (!(p >= 0 && p <= 1))
		return fv_error(FV_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g",
		                op, p);
	return FV_OK;
}

/* Draw one factor per group and apply them. */
static fv_tensor *drop(fv_ctx *ctx, fv_tensor *x, double p, int64_t group)
{
	int64_t groups = group > 0 ? x->numel / group : 0;
	fv_real *mask = fv_ctx_alloc(ctx, (size_t)groups * sizeof(fv_real));
	fv_tensor *y = fv_ctx_empty(ctx, x->ndim, x->shape);
	if (mask == NULL || y == NULL)
		return NULL;
	/* p == 1 zeroes everything (x * 0, as torch) */
	fv_real keep_scale = p < 1 ? (fv_real)(1 / (1 - p)) : 0;
	for (int64_t i = 0; i < groups; i++)
		mask[i] = fv_ctx_random_uniform(ctx) < 1 - p ? keep_scale : 0;
	dropout_aux a = {mask, group};
	apply_mask(x->data, &a, x->numel, y->data);
	if (fv_op_record(ctx, y, &dropout_def, 1, &x, &a, sizeof a) != FV_OK)
		return NULL;
	return y;
}

fv_tensor *fv_dropout(fv_ctx *ctx, fv_tensor *x, double p, bool training)
{
	FV_CHECK_INPUT(x);
	if (check_p("fv_dropout", p) != FV_OK)
		return NULL;
	if (!training || p == 0 || x->numel == 0)
		return x;
	return drop(ctx, x, p, 1);
}

fv_tensor *fv_dropout3d(fv_ctx *ctx, fv_tensor *x, double p, bool training)
{
	FV_CHECK_INPUT(x);
	if (check_p("fv_dropout3d", p) != FV_OK)
		return NULL;
	if (x->ndim != 4 && x->ndim != 5) {
		fv_error(FV_ERR_SHAPE,
		         "fv_dropout3d: x must be (N, C, T, H, W) or (C, T, H, W); got shape %s",
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	if (!training || p == 0 || x->numel == 0)
		return x;
	int lead = x->ndim - 3;
	return drop(ctx, x, p, fv__numel(3, x->shape + lead));
}
