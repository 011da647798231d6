/*
** sync_batchnorm.c: torch.nn.SyncBatchNorm for BatchNorm3d: in training,
** each channel is normalised with the mean and variance of the global
** batch, every rank holding a share of it, so that N ranks compute what one
** process computes on the whole batch (up to float rounding).
**
** Forward: two allreduces per layer, the per-channel sums (mean) then the
** per-channel squared deviations (biased variance; the running variance
** takes the unbiased one over the global count), as the one-process op
** forms them in two passes.  Backward: one allreduce of the per-channel
** sums of dy and dy * xhat, which the input gradient needs globally; the
** weight and bias gradients stay local sums, because the trainer's gradient
** allreduce adds them up like every other parameter's.
**
** The collectives run only while the trainer has switched syncing on
** (fv_parallel_set_sync_batchnorm) in a job of more than one process, and
** only in training; otherwise this is fv_batch_norm3d(_elu) itself.
*/
#include <math.h>
#include <string.h>

#include "fovea/parallel.h"
#include "fovea/tensor.h"
#include "tensor/tensor_internal.h"

static bool sync_on;

void fv_parallel_set_sync_batchnorm(bool on) { sync_on = on; }

typedef struct sbn_aux {
	int64_t n, c, inner; /* x viewed as (n, c, inner) */
	double count;        /* elements per channel over every rank */
	fv_real *mean, *invstd;
} sbn_aux;

static const fv_real *row_of(const fv_real *base, const sbn_aux *a, int64_t n, int64_t c)
{
	return base + (n * a->c + c) * a->inner;
}

/* Per channel: the sum of x (sq false) or of (x - mean)^2, into out[c]. */
static void channel_sums(const fv_real *x, const sbn_aux *a, const double *mean, double *out)
{
	for (int64_t c = 0; c < a->c; c++) {
		double s = 0;
		for (int64_t n = 0; n < a->n; n++) {
			const fv_real *r = row_of(x, a, n, c);
			for (int64_t i = 0; i < a->inner; i++) {
				double d = mean != NULL ? r[i] - mean[c] : r[i];
				s += mean != NULL ? d * d : d;
			}
		}
		out[c] = s;
	}
}

/* The global mean and biased variance per channel (2C doubles of scratch
** after the C of each result). */
static fv_status global_stats(const fv_real *x, sbn_aux *a, double *mean, double *var)
{
	channel_sums(x, a, NULL, mean);
	fv_status rc = fv_parallel_allreduce_sum(mean, (size_t)a->c);
	for (int64_t c = 0; c < a->c; c++)
		mean[c] /= a->count;
	if (rc == FV_OK) {
		channel_sums(x, a, mean, var);
		rc = fv_parallel_allreduce_sum(var, (size_t)a->c);
	}
	for (int64_t c = 0; c < a->c; c++)
		var[c] /= a->count;
	return rc;
}

static fv_status sbn_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                              fv_tensor *const *grads, const void *aux_)
{
	const sbn_aux *a = aux_;
	const fv_real *x = srcs[0]->data, *g = out->grad->data;
	double *sum = fv_ctx_alloc(ctx, 2 * (size_t)a->c * sizeof *sum);
	if (sum == NULL)
		return fv_error(FV_ERR_NOMEM, "SyncBatchNorm backward: out of memory");
	double *dot = sum + a->c;
	for (int64_t c = 0; c < a->c; c++) {
		double s = 0, d = 0;
		for (int64_t n = 0; n < a->n; n++) {
			const fv_real *xr = row_of(x, a, n, c), *gr = row_of(g, a, n, c);
			for (int64_t i = 0; i < a->inner; i++) {
				s += gr[i];
				d += gr[i] * ((xr[i] - a->mean[c]) * a->invstd[c]);
			}
		}
		sum[c] = s;
		dot[c] = d;
		if (grads[1] != NULL)
			grads[1]->data[c] += (fv_real)d;
		if (grads[2] != NULL)
			grads[2]->data[c] += (fv_real)s;
	}
	if (grads[0] == NULL) /* still a collective: every rank takes part */
		return fv_parallel_allreduce_sum(sum, 2 * (size_t)a->c);
	fv_status rc = fv_parallel_allreduce_sum(sum, 2 * (size_t)a->c);
	for (int64_t c = 0; rc == FV_OK && c < a->c; c++) {
		fv_real w = srcs[1] != NULL ? srcs[1]->data[c] : 1;
		fv_real s = (fv_real)(a->invstd[c] * w), gm = (fv_real)(sum[c] / a->count);
		fv_real k = (fv_real)(dot[c] / a->count), mu = a->mean[c], is = a->invstd[c];
		for (int64_t n = 0; n < a->n; n++) {
			const fv_real *xr = row_of(x, a, n, c), *gr = row_of(g, a, n, c);
			fv_real *dr = grads[0]->data + (n * a->c + c) * a->inner;
			for (int64_t i = 0; i < a->inner; i++)
				dr[i] += (gr[i] - gm - (xr[i] - mu) * is * k) * s;
		}
	}
	return rc;
}

static const fv_op_def sbn_def = {"sync_batch_norm3d", sbn_backward};

static void update_running(const sbn_aux *a, const double *mean, const double *var,
                           fv_tensor *rm, fv_tensor *rv, double momentum)
{
	for (int64_t c = 0; rm != NULL && rv != NULL && c < a->c; c++) {
		double unbiased = var[c] * a->count / (a->count - 1);
		rm->data[c] = (fv_real)(momentum * mean[c] + (1 - momentum) * rm->data[c]);
		rv->data[c] = (fv_real)(momentum * unbiased + (1 - momentum) * rv->data[c]);
	}
}

static fv_tensor *sync_forward(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight, fv_tensor *bias,
                               fv_tensor *rm, fv_tensor *rv, fv_tensor *nbt, double momentum,
                               double eps)
{
	sbn_aux a = {.n = x->shape[0], .c = x->shape[1]};
	a.inner = x->numel / (a.n * a.c > 0 ? a.n * a.c : 1);
	a.count = (double)(a.n * a.inner);
	double *stats = fv_ctx_alloc(ctx, 2 * (size_t)a.c * sizeof *stats);
	a.mean = fv_ctx_alloc(ctx, 2 * (size_t)a.c * sizeof *a.mean);
	fv_tensor *y = fv_ctx_empty(ctx, x->ndim, x->shape);
	if (stats == NULL || a.mean == NULL || y == NULL)
		return NULL;
	a.invstd = a.mean + a.c;
	if (fv_parallel_allreduce_sum(&a.count, 1) != FV_OK ||
	    global_stats(x->data, &a, stats, stats + a.c) != FV_OK)
		return NULL;
	for (int64_t c = 0; c < a.c; c++) {
		a.mean[c] = (fv_real)stats[c];
		a.invstd[c] = (fv_real)(1 / sqrt(stats[a.c + c] + eps));
	}
	update_running(&a, stats, stats + a.c, rm, rv, momentum);
	fv__batch_norm_apply(x, y, weight, bias, a.mean, a.invstd, false, 0);
	if (nbt != NULL && nbt->numel > 0)
		nbt->data[0] += 1;
	fv_tensor *srcs[3] = {x, weight, bias};
	return fv_op_record(ctx, y, &sbn_def, 3, srcs, &a, sizeof a) == FV_OK ? y : NULL;
}

fv_tensor *fv_parallel_batch_norm3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight,
                                    fv_tensor *bias, fv_tensor *running_mean,
                                    fv_tensor *running_var, fv_tensor *num_batches_tracked,
                                    bool training, double momentum, double eps, double alpha)
{
	if (!sync_on || !training || fv_parallel_size() == 1 || x == NULL || x->ndim != 5) {
		if (alpha > 0)
			return fv_batch_norm3d_elu(ctx, x, weight, bias, running_mean, running_var,
			                           num_batches_tracked, training, momentum, eps, alpha);
		return fv_batch_norm3d(ctx, x, weight, bias, running_mean, running_var,
		                       num_batches_tracked, training, momentum, eps);
	}
	fv_tensor *y = sync_forward(ctx, x, weight, bias, running_mean, running_var,
	                            num_batches_tracked, momentum, eps);
	return y != NULL && alpha > 0 ? fv_elu(ctx, y, alpha) : y;
}
