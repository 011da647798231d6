/*
** ops_batchnorm.c: torch.nn.BatchNorm3d as a function (F.batch_norm on
** (N, C, T, H, W)).
**
** Training normalises each channel with the batch mean and the biased
** batch variance, and updates the running statistics in place with the
** unbiased variance:  r = (1 - momentum) * r + momentum * batch_stat.
** Evaluation uses the running statistics; without them (torch's
** track_running_stats=False) the batch statistics are used in both modes.
** Statistics are accumulated in double, in a fixed order per channel, with
** the channels spread over threads.  The output is formed as torch's CPU
** kernel does: y = x * alpha + beta with alpha = invstd * weight and
** beta = bias - mean * alpha.
**
** fv_batch_norm3d_elu applies ELU to each row of the output while it is in
** cache, and its backward forms dL/d(BN output) a row at a time from the
** ELU's output (z > 0 exactly where elu(z) > 0), with the ELU kernels of
** ops_unary.c: the numbers of fv_elu(fv_batch_norm3d(...)) without writing
** and reading the intermediate activations and their gradient.
*/
#include <math.h>
#include <string.h>

#include "tensor/tensor_internal.h"

/* Below this many elements of work a loop runs on one thread: waking the
** team costs more than it saves. */
#define PARALLEL_MIN_WORK 32768

typedef struct bn_aux {
	int64_t n, c, inner;  /* x viewed as (n, c, inner) */
	bool batch_stats;     /* normalised with the batch statistics */
	fv_real *mean, *invstd;
	bool elu;             /* fv_batch_norm3d_elu: the output is elu(BN(x)) */
	fv_real alpha;        /* ... with this alpha */
} bn_aux;

static const fv_real *channel_ptr(const fv_real *base, const bn_aux *a, int64_t n, int64_t c)
{
	return base + (n * a->c + c) * a->inner;
}

/* Sums in double are formed in LANES independent partial sums, added at
** the end in a fixed order: the additions pipeline (and vectorise), and the
** result still does not depend on the thread count. */
#define LANES 8

static double lanes_total(const double *acc)
{
	double total = 0;
	for (int l = 0; l < LANES; l++)
		total += acc[l];
	return total;
}

/* Mean and biased variance of channel c, two passes in double. */
static void channel_stats(const fv_real *x, const bn_aux *a, int64_t c, double *mean, double *var)
{
	double sum[LANES] = {0}, sq[LANES] = {0}, m = (double)(a->n * a->inner);
	int64_t whole = a->inner / LANES * LANES;
	for (int64_t n = 0; n < a->n; n++) {
		const fv_real *row = channel_ptr(x, a, n, c);
		for (int64_t i = 0; i < whole; i += LANES)
			for (int l = 0; l < LANES; l++)
				sum[l] += row[i + l];
		for (int64_t i = whole; i < a->inner; i++)
			sum[i - whole] += row[i];
	}
	double mu = lanes_total(sum) / m;
	for (int64_t n = 0; n < a->n; n++) {
		const fv_real *row = channel_ptr(x, a, n, c);
		for (int64_t i = 0; i < whole; i += LANES)
			for (int l = 0; l < LANES; l++) {
				double d = row[i + l] - mu;
				sq[l] += d * d;
			}
		for (int64_t i = whole; i < a->inner; i++) {
			double d = row[i] - mu;
			sq[i - whole] += d * d;
		}
	}
	*mean = mu;
	*var = lanes_total(sq) / m;
}

/* ---- backward ------------------------------------------------------------------ */

/* Row n of channel c of dL/d(BN output): dOut's own, or under the fused
** ELU, gy * elu'(z) worked out into `row` from the op's output y. */
typedef struct bn_grad_src {
	const fv_real *gy, *y;
	fv_real *rows; /* a row per channel for the fused ELU */
} bn_grad_src;

static const fv_real *dy_row(const bn_grad_src *src, const bn_aux *a, int64_t n, int64_t c)
{
	const fv_real *gy = channel_ptr(src->gy, a, n, c);
	if (!a->elu)
		return gy;
	fv_real *row = src->rows + c * a->inner;
	fv__elu_grad_rows(a->inner, channel_ptr(src->y, a, n, c), gy, row, a->alpha);
	return row;
}

/* Sums of dy and of (x - mean) * dy over channel c. */
static void channel_grad_sums(const fv_real *x, const bn_grad_src *src, const bn_aux *a, int64_t c,
                              double *sum_dy, double *dot)
{
	double s[LANES] = {0}, d[LANES] = {0}, mean = a->mean[c];
	int64_t whole = a->inner / LANES * LANES;
	for (int64_t n = 0; n < a->n; n++) {
		const fv_real *xr = channel_ptr(x, a, n, c), *gr = dy_row(src, a, n, c);
		for (int64_t i = 0; i < whole; i += LANES)
			for (int l = 0; l < LANES; l++) {
				s[l] += gr[i + l];
				d[l] += (xr[i + l] - mean) * gr[i + l];
			}
		for (int64_t i = whole; i < a->inner; i++) {
			s[i - whole] += gr[i];
			d[i - whole] += (xr[i] - mean) * gr[i];
		}
	}
	*sum_dy = lanes_total(s);
	*dot = lanes_total(d);
}

/* dx = (dy - mean(dy) - (x - mean) * dot * invstd^2 / M) * invstd * w in
** training (through the batch statistics); dy * invstd * w otherwise. */
static void channel_input_grad(const fv_real *x, const bn_grad_src *src, const bn_aux *a,
                               int64_t c, fv_real w, double sum_dy, double dot, fv_real *dx,
                               bool fresh)
{
	double m = (double)(a->n * a->inner), invstd = a->invstd[c];
	double k = dot * invstd * invstd / m, scale = invstd * w;
	/* the per-element work in the tensor's precision (it vectorises); the
	** coefficients come from the double sums */
	fv_real mean = a->mean[c], grad_mean = (fv_real)(sum_dy / m), s = (fv_real)scale;
	fv_real ks = (fv_real)(k * scale);
	for (int64_t n = 0; n < a->n; n++) {
		const fv_real *restrict xr = channel_ptr(x, a, n, c), *restrict gr = dy_row(src, a, n, c);
		fv_real *restrict dr = dx + (n * a->c + c) * a->inner;
		if (fresh)
			memset(dr, 0, (size_t)a->inner * sizeof *dr); /* in cache for the sum below */
		if (a->batch_stats)
			for (int64_t i = 0; i < a->inner; i++)
				dr[i] += (gr[i] - grad_mean) * s - (xr[i] - mean) * ks;
		else
			for (int64_t i = 0; i < a->inner; i++)
				dr[i] += gr[i] * s;
	}
}

static void add_or_set(fv_real *g, double v, bool fresh)
{
	*g = (fresh ? 0 : *g) + (fv_real)v;
}

static fv_status batchnorm_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *grads, const void *aux_)
{
	const bn_aux *a = aux_;
	const fv_real *x = srcs[0]->data;
	const fv_real *w = srcs[1] ? srcs[1]->data : NULL;
	bool fresh = fv__grad_fresh(ctx, 0);
	bn_grad_src src = {out->grad->data, out->data, NULL};
	if (a->elu && (src.rows = fv_ctx_alloc(ctx, (size_t)(a->c * a->inner) * sizeof(fv_real))) == NULL)
		return FV_ERR_NOMEM;
#pragma omp parallel for schedule(static) if (out->numel > PARALLEL_MIN_WORK)
	for (int64_t c = 0; c < a->c; c++) {
		double sum_dy, dot;
		channel_grad_sums(x, &src, a, c, &sum_dy, &dot);
		if (grads[0] != NULL)
			channel_input_grad(x, &src, a, c, w ? w[c] : 1, sum_dy, dot, grads[0]->data, fresh);
		if (grads[1] != NULL)
			add_or_set(grads[1]->data + c, dot * a->invstd[c], fv__grad_fresh(ctx, 1));
		if (grads[2] != NULL)
			add_or_set(grads[2]->data + c, sum_dy, fv__grad_fresh(ctx, 2));
	}
	return FV_OK;
}

static const fv_op_def batchnorm_def = {"batch_norm3d", batchnorm_backward};
static const fv_op_def batchnorm_elu_def = {"batch_norm3d_elu", batchnorm_backward};

/* ---- forward ------------------------------------------------------------------- */

static fv_status check_vector(const char *name, const fv_tensor *t, int64_t c, const fv_tensor *x)
{
	if (t != NULL && (t->ndim != 1 || t->shape[0] != c))
		return fv_error(FV_ERR_SHAPE, "fv_batch_norm3d: %s must be (%lld) for x %s; got shape %s",
		                name, (long long)c, fv_shape_str(x->ndim, x->shape),
		                fv_shape_str(t->ndim, t->shape));
	return FV_OK;
}

static fv_status check_args(const fv_tensor *x, const fv_tensor *weight, const fv_tensor *bias,
                            const fv_tensor *rm, const fv_tensor *rv, bool training)
{
	if (x->ndim != 5)
		return fv_error(FV_ERR_SHAPE, "fv_batch_norm3d: x must be (N, C, T, H, W); got shape %s",
		                fv_shape_str(x->ndim, x->shape));
	int64_t c = x->shape[1];
	fv_status rc;
	if ((rc = check_vector("weight", weight, c, x)) != FV_OK ||
	    (rc = check_vector("bias", bias, c, x)) != FV_OK ||
	    (rc = check_vector("running_mean", rm, c, x)) != FV_OK ||
	    (rc = check_vector("running_var", rv, c, x)) != FV_OK)
		return rc;
	if ((rm == NULL) != (rv == NULL))
		return fv_error(FV_ERR_ARG,
		                "fv_batch_norm3d: running_mean and running_var must be given together");
	if ((training || rm == NULL) && x->numel / (c > 0 ? c : 1) <= 1)
		return fv_error(FV_ERR_SHAPE,
		                "fv_batch_norm3d: expected more than 1 value per channel when training, "
		                "got x of shape %s",
		                fv_shape_str(x->ndim, x->shape));
	return FV_OK;
}

/* Batch statistics per channel; updates the running ones when given. */
static void batch_statistics(const fv_real *x, bn_aux *a, fv_tensor *rm, fv_tensor *rv,
                             double momentum, double eps)
{
	double m = (double)(a->n * a->inner);
#pragma omp parallel for schedule(static) if (a->n * a->c * a->inner > PARALLEL_MIN_WORK)
	for (int64_t c = 0; c < a->c; c++) {
		double mean, var;
		channel_stats(x, a, c, &mean, &var);
		a->mean[c] = (fv_real)mean;
		a->invstd[c] = (fv_real)(1 / sqrt(var + eps));
		if (rm != NULL) {
			double unbiased = var * m / (m - 1);
			rm->data[c] = (fv_real)(momentum * mean + (1 - momentum) * rm->data[c]);
			rv->data[c] = (fv_real)(momentum * unbiased + (1 - momentum) * rv->data[c]);
		}
	}
}

void fv__batch_norm_apply(const fv_tensor *x, fv_tensor *y, const fv_tensor *weight,
                          const fv_tensor *bias, const fv_real *mean, const fv_real *invstd,
                          bool elu, fv_real alpha)
{
	int64_t n = x->shape[0], nch = x->shape[1], inner = x->numel / (n * nch > 0 ? n * nch : 1);
#pragma omp parallel for schedule(static) if (x->numel > PARALLEL_MIN_WORK)
	for (int64_t nc = 0; nc < n * nch; nc++) {
		int64_t c = nc % nch;
		fv_real scale = invstd[c] * (weight ? weight->data[c] : 1);
		fv_real shift = (bias ? bias->data[c] : 0) - mean[c] * scale;
		const fv_real *xr = x->data + nc * inner;
		fv_real *yr = y->data + nc * inner;
		for (int64_t i = 0; i < inner; i++)
			yr[i] = xr[i] * scale + shift;
		if (elu) /* while the row is in cache */
			fv__elu_rows(inner, yr, yr, alpha);
	}
}

/* fv_batch_norm3d, then ELU when a.elu. */
static fv_tensor *batch_norm(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight, fv_tensor *bias,
                             fv_tensor *running_mean, fv_tensor *running_var,
                             fv_tensor *num_batches_tracked, bool training, double momentum,
                             double eps, bn_aux a)
{
	FV_CHECK_INPUT(x);
	if (check_args(x, weight, bias, running_mean, running_var, training) != FV_OK)
		return NULL;
	a.n = x->shape[0];
	a.c = x->shape[1];
	a.inner = x->shape[2] * x->shape[3] * x->shape[4];
	a.batch_stats = training || running_mean == NULL;
	a.mean = fv_ctx_alloc(ctx, 2 * (size_t)a.c * sizeof(fv_real));
	fv_tensor *y = fv_ctx_empty(ctx, x->ndim, x->shape);
	if (a.mean == NULL || y == NULL)
		return NULL;
	a.invstd = a.mean + a.c;
	if (a.batch_stats) {
		bool update = training && running_mean != NULL;
		batch_statistics(x->data, &a, update ? running_mean : NULL, update ? running_var : NULL,
		                 momentum, eps);
	} else {
		for (int64_t c = 0; c < a.c; c++) {
			a.mean[c] = running_mean->data[c];
			a.invstd[c] = (fv_real)(1 / sqrt((double)running_var->data[c] + eps));
		}
	}
	fv__batch_norm_apply(x, y, weight, bias, a.mean, a.invstd, a.elu, a.alpha);
	if (training && num_batches_tracked != NULL && num_batches_tracked->numel > 0)
		num_batches_tracked->data[0] += 1;
	fv_tensor *srcs[3] = {x, weight, bias};
	const fv_op_def *def = a.elu ? &batchnorm_elu_def : &batchnorm_def;
	if (fv_op_record(ctx, y, def, 3, srcs, &a, sizeof a) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(y);
	return y;
}

fv_tensor *fv_batch_norm3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight, fv_tensor *bias,
                           fv_tensor *running_mean, fv_tensor *running_var,
                           fv_tensor *num_batches_tracked, bool training, double momentum,
                           double eps)
{
	return batch_norm(ctx, x, weight, bias, running_mean, running_var, num_batches_tracked,
	                  training, momentum, eps, (bn_aux){.elu = false});
}

fv_tensor *fv_batch_norm3d_elu(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight, fv_tensor *bias,
                               fv_tensor *running_mean, fv_tensor *running_var,
                               fv_tensor *num_batches_tracked, bool training, double momentum,
                               double eps, double alpha)
{
	if (!(alpha > 0)) {
		fv_error(FV_ERR_ARG, "fv_batch_norm3d_elu: alpha must be > 0 (got %g); use "
		                     "fv_elu(fv_batch_norm3d(...)) for others", alpha);
		return NULL;
	}
	return batch_norm(ctx, x, weight, bias, running_mean, running_var, num_batches_tracked,
	                  training, momentum, eps, (bn_aux){.elu = true, .alpha = (fv_real)alpha});
}
