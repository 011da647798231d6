/*
** data_parallel.c: `mpirun -np N fovea train`: Lightning's DDP, arranged
** so that N processes compute what one process computes on the same
** global batch (up to float rounding).
**
** Every rank builds the model from the same seed and draws the same global
** batches (dataloader.batch_size stays the global batch); rank r keeps rows
** [r*n/N, (r+1)*n/N) of each, so uneven shares (n = 8 over 3: 3, 3, 2) are
** fine.  A batch of fewer rows than ranks runs whole on every rank, each
** weighing 1/N.  Each rank's backward runs on its share of the global
** objective, so that the allreduced sum of the gradients is the one-process
** gradient:
**   a loss that sums over the batch    counts whole on every rank,
**   a loss that averages over it       weighs n_r / n,
**   the regularizers (of the weights)  count on rank 0 alone.
** Which of the first two a loss is, is measured once, on the first batch:
** the loss of the batch twice over is twice (a sum) or the same (a mean).
** Lightning's DDP instead averages the gradients of equal shares (its
** DistributedSampler pads them), which for a summed loss such as
** openretina's default PoissonLoss3d scales the data term by 1/N against
** the regularizers: a different optimisation than one process's.
**
** Gradients are summed in buckets of BUCKET floats after the backward, at
** the end of each accumulation window.  Logged metrics are summed over the
** ranks once per pass.  With trainer.sync_batchnorm (default true) batch
** norm uses the global batch's statistics (fv_parallel_batch_norm3d);
** without it every rank normalises with its share's, and rank 0's running
** statistics are broadcast before validation, as DDP's broadcast_buffers.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fovea/parallel.h"
#include "train/trainer_internal.h"

/* floats per allreduce: 4 MiB, big enough that the latency is paid
** rarely, small enough to stay in cache */
#define BUCKET ((size_t)1 << 20)

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

fv_status fv__dp_open(fv__trainer *t, bool wanted)
{
	fv__dp *d = &t->dp;
	d->rank = fv_parallel_rank();
	d->size = fv_parallel_size();
	d->on = wanted && d->size > 1;
	d->loss_mean = d->eval_mean = -1;
	if (!d->on)
		return FV_OK;
	/* a null seed is the time, which the ranks may read differently */
	uint64_t seed = t->seed;
	fv_status rc = fv_parallel_broadcast(&seed, sizeof seed, 0);
	t->seed = seed;
	fv_parallel_set_sync_batchnorm(d->sync_bn);
	return rc;
}

void fv__dp_close(fv__trainer *t)
{
	if (t->dp.on)
		fv_parallel_set_sync_batchnorm(false);
	free(t->dp.bucket);
	t->dp.bucket = NULL;
}

/* Whether `loss` sums (1) or averages (0) over the batch: its value on the
** batch twice over against its value on the batch. */
static fv_status reduction_of(fv_ctx *ctx, fv_module *loss, fv_tensor *y, fv_tensor *target,
                              int *mean)
{
	bool was = fv_ctx_set_grad_enabled(ctx, false);
	fv_tensor *ys[2] = {y, y}, *ts[2] = {target, target};
	fv_tensor *once = fv_module_loss(loss, ctx, y, target);
	fv_tensor *twice = fv_module_loss(loss, ctx, fv_concat(ctx, 2, ys, 0),
	                                  fv_concat(ctx, 2, ts, 0));
	fv_ctx_set_grad_enabled(ctx, was);
	if (once == NULL || twice == NULL)
		return fv_errcode();
	double a = once->data[0], b = twice->data[0], r = b / a;
	if (once->numel == 1 && fabs(r - 2) < 1e-3)
		*mean = 0;
	else if (once->numel == 1 && (fabs(r - 1) < 1e-3 || (a == 0 && b == 0)))
		*mean = 1;
	else
		return fv_error(FV_ERR_CONFIG, "data-parallel training: the loss %s is neither a sum "
		                "nor a mean over the batch (%g on a batch, %g on it twice over), so "
		                "the ranks' shares cannot be combined; run it in one process",
		                fv_module_component(loss)->names[0], a, b);
	return FV_OK;
}

fv_status fv__dp_shard(fv__trainer *t, const fv_batch *in, fv__shard *sh)
{
	const fv__dp *d = &t->dp;
	int64_t n = in->input->shape[0];
	sh->b = *in;
	sh->n = (double)n;
	sh->share = 1;
	sh->replicated = d->on && n < d->size;
	sh->loss_coef = sh->eval_coef = sh->reg_coef = sh->replicated ? 1.0 / d->size : 1;
	if (!d->on || sh->replicated) {
		if (d->on)
			fv_parallel_set_sync_batchnorm(false); /* every rank holds the whole batch */
		sh->reg_coef = d->on ? sh->reg_coef : 1;
		return FV_OK;
	}
	fv_parallel_set_sync_batchnorm(d->sync_bn);
	int64_t lo = n * d->rank / d->size, hi = n * (d->rank + 1) / d->size;
	sh->b.input = fv_slice(t->ctx, in->input, 0, lo, hi, 1);
	sh->b.target = fv_slice(t->ctx, in->target, 0, lo, hi, 1);
	if (sh->b.input == NULL || sh->b.target == NULL)
		return fv_errcode();
	sh->share = (double)(hi - lo) / (double)n;
	sh->reg_coef = d->rank == 0 ? 1 : 0;
	return FV_OK;
}

/* The coefficients of the losses, once the step's output is known. */
static fv_status weigh(fv__trainer *t, fv__shard *sh, const fv_step_terms *s)
{
	fv__dp *d = &t->dp;
	fv_status rc = FV_OK;
	if (d->loss_mean < 0)
		rc = reduction_of(t->ctx, t->loss, s->output, sh->b.target, &d->loss_mean);
	if (rc == FV_OK && d->eval_mean < 0 && t->eval_loss != NULL)
		rc = reduction_of(t->ctx, t->eval_loss, s->output, sh->b.target, &d->eval_mean);
	if (rc != FV_OK || sh->replicated)
		return rc;
	sh->loss_coef = d->loss_mean == 1 ? sh->share : 1;
	sh->eval_coef = d->eval_mean == 1 ? sh->share : 1;
	return FV_OK;
}

fv_tensor *fv__dp_objective(fv__trainer *t, fv__shard *sh, const fv_step_terms *s)
{
	if (!t->dp.on)
		return s->total;
	if (weigh(t, sh, s) != FV_OK)
		return NULL;
	fv_tensor *reg = fv_add(t->ctx, s->reg_core, s->reg_readout);
	return fv_add(t->ctx, fv_mul_scalar(t->ctx, s->loss, sh->loss_coef),
	              fv_mul_scalar(t->ctx, reg, sh->reg_coef));
}

fv_status fv__dp_validation_weights(fv__trainer *t, fv__shard *sh, const fv_step_terms *s)
{
	return t->dp.on ? weigh(t, sh, s) : FV_OK;
}

fv_status fv__dp_reduce_sums(const fv__trainer *t, double *sum, size_t n, double *weight)
{
	if (!t->dp.on)
		return FV_OK;
	double v[N_METRICS + 1];
	memcpy(v, sum, n * sizeof *v);
	v[n] = *weight;
	fv_status rc = fv_parallel_allreduce_sum(v, n + 1);
	memcpy(sum, v, n * sizeof *v);
	*weight = v[n];
	return rc;
}

/* Copy `count` floats of the gradients, flattened in parameter order, from
** position `at` into the bucket (in) or back out of it. */
static void copy_range(fv__trainer *t, size_t at, size_t count, bool in)
{
	size_t pos = 0, done = 0;
	for (size_t i = 0; i < t->n_params && done < count; i++) {
		fv_tensor *g = t->params[i]->grad;
		size_t len = g != NULL ? (size_t)g->numel : 0;
		if (pos + len <= at) {
			pos += len;
			continue;
		}
		size_t from = at + done - pos, k = len - from < count - done ? len - from : count - done;
		for (size_t e = 0; e < k; e++) {
			if (in)
				t->dp.bucket[done + e] = (float)g->data[from + e];
			else
				g->data[from + e] = (fv_real)t->dp.bucket[done + e];
		}
		done += k;
		pos += len;
	}
}

fv_status fv__dp_allreduce_grads(fv__trainer *t)
{
	fv__dp *d = &t->dp;
	if (!d->on)
		return FV_OK;
	if (d->bucket == NULL && (d->bucket = malloc(BUCKET * sizeof *d->bucket)) == NULL)
		return fv_error(FV_ERR_NOMEM, "data-parallel training: out of memory for a bucket");
	/* every rank ran the same graph, so the same parameters have gradients */
	size_t total = 0;
	for (size_t i = 0; i < t->n_params; i++)
		total += t->params[i]->grad != NULL ? (size_t)t->params[i]->grad->numel : 0;
	fv_status rc = FV_OK;
	double start = seconds_now();
	for (size_t at = 0; rc == FV_OK && at < total; at += BUCKET) {
		size_t n = total - at < BUCKET ? total - at : BUCKET;
		copy_range(t, at, n, true);
		rc = fv_parallel_allreduce_sum_float(d->bucket, n);
		copy_range(t, at, n, false);
	}
	d->allreduce_seconds += seconds_now() - start;
	d->allreduce_bytes += total * sizeof(float);
	d->allreduce_steps++;
	return rc;
}

static int broadcast_buffer(void *ud, const char *name, fv_tensor *x, bool is_param)
{
	(void)name;
	fv_status *rc = ud;
	if (!is_param && *rc == FV_OK)
		*rc = fv_parallel_broadcast(x->data, (size_t)x->numel * sizeof *x->data, 0);
	return *rc != FV_OK;
}

fv_status fv__dp_sync_buffers(fv__trainer *t)
{
	fv_status rc = FV_OK;
	if (t->dp.on && !t->dp.sync_bn)
		fv_module_foreach_tensor(t->model, broadcast_buffer, &rc);
	return rc;
}
