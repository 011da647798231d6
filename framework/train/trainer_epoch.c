/*
** trainer_epoch.c: one epoch of training and one validation pass, as
** Lightning runs openretina's training_step and validation_step, with the
** progress bar.
**
** Logged values are averaged over the epoch's batches weighted by batch
** size, which is how Lightning reduces a value logged with on_epoch=True.
** Every batch runs in the per-step context, reset first, so after the first
** batches the loop allocates nothing.
*/
#include <math.h>
#include <string.h>
#include <time.h>

#include "train/trainer_internal.h"

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double value_of(const fv_tensor *t)
{
	return t != NULL && t->numel > 0 ? (double)t->data[0] : NAN;
}

/* ---- the progress bar ------------------------------------------------------------- */

#define BAR_WIDTH 24

static void draw_bar(const fv__trainer *t, int64_t done, int64_t total, double loss, double corr)
{
	int filled = total > 0 ? (int)(BAR_WIDTH * done / total) : BAR_WIDTH;
	char bar[BAR_WIDTH + 1];
	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	fprintf(t->out, "\repoch %lld/%lld [%s] %lld/%lld loss %.4g corr %.3f ",
	        (long long)t->epochs_done + 1, (long long)t->max_epochs, bar, (long long)done,
	        (long long)total, loss, corr);
	fflush(t->out);
}

static void clear_bar(const fv__trainer *t)
{
	fprintf(t->out, "\r%*s\r", 100, "");
}

/* ---- training ---------------------------------------------------------------------------- */

typedef struct running {
	double sum[N_METRICS];
	double weight;
} running;

static void add_terms(running *r, const fv_step_terms *s, double batch, int first)
{
	double v[5] = {value_of(s->loss), value_of(s->total), value_of(s->reg_core),
	               value_of(s->reg_readout), value_of(s->eval_loss)};
	for (int i = 0; i < 5; i++)
		r->sum[first + i] += batch * v[i];
	r->weight += batch;
}

static fv_status train_batch(fv__trainer *t, const fv_batch *b, running *r)
{
	fv_ctx_reset(t->ctx);
	fv_optimizer_zero_grad(t->opt);
	fv_step_terms s;
	fv_status rc = fv_core_readout_step(t->ctx, t->model, t->loss, t->eval_loss, b->input,
	                                    b->target, b->session, &s);
	if (rc == FV_OK)
		rc = fv_backward(t->ctx, s.total);
	if (rc != FV_OK) {
		fv_error_prefix("epoch %lld, session '%s': ", (long long)t->epochs_done, b->session);
		return rc;
	}
	if (!isnan(t->clip))
		fv_clip_grad_norm(t->n_params, t->params, t->clip);
	rc = fv_optimizer_step(t->opt);
	if (rc != FV_OK)
		return rc;
	add_terms(r, &s, (double)b->input->shape[0], M_TRAIN_LOSS);
	t->global_step++;
	return FV_OK;
}

/* The seed of epoch e's random stream (dropout, sampled readout
** positions): a fixed function of the run's seed, so a resumed run draws
** what an uninterrupted one draws. */
static uint64_t epoch_seed(uint64_t seed, int64_t epoch)
{
	uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	return x ^ (x >> 29);
}

fv_status fv__train_epoch(fv__trainer *t)
{
	double start = now_seconds(), last_draw = 0;
	fv_module_set_training(t->model, true);
	fv_ctx_seed(t->ctx, epoch_seed(t->seed, t->epochs_done));
	running r = {0};
	int64_t total = fv_batch_iter_len(t->train_it), done = 0;
	fv_batch b;
	while (fv_batch_next(t->train_it, &b)) {
		fv_status rc = train_batch(t, &b, &r);
		if (rc != FV_OK)
			return rc;
		done++;
		double now = now_seconds();
		if (t->bar && (now - last_draw > 0.1 || done == total)) {
			draw_bar(t, done, total, r.sum[M_TRAIN_LOSS] / r.weight,
			         r.sum[M_TRAIN_EVAL] / r.weight);
			last_draw = now;
		}
	}
	if (t->bar)
		clear_bar(t);
	for (int i = M_TRAIN_LOSS; i <= M_TRAIN_EVAL; i++)
		t->metrics[i] = r.weight > 0 ? r.sum[i] / r.weight : NAN;
	t->epoch_seconds = now_seconds() - start;
	return FV_OK;
}

/* ---- validation ---------------------------------------------------------------------------- */

static fv_status validate_batch(fv__trainer *t, const fv_batch *b, running *r)
{
	fv_ctx_reset(t->ctx);
	fv_step_terms s;
	fv_status rc = fv_core_readout_step(t->ctx, t->model, t->loss, t->eval_loss, b->input,
	                                    b->target, b->session, &s);
	if (rc != FV_OK) {
		fv_error_prefix("validation, session '%s': ", b->session);
		return rc;
	}
	/* openretina's validation_step divides the loss by sum(output.shape) */
	double dims = 0;
	for (int d = 0; d < s.output->ndim; d++)
		dims += (double)s.output->shape[d];
	double loss = value_of(s.loss) / dims;
	double core = value_of(s.reg_core), readout = value_of(s.reg_readout);
	double v[5] = {loss, core, readout, loss + core + readout, value_of(s.eval_loss)};
	double batch = (double)b->input->shape[0];
	for (int i = 0; i < 5; i++)
		r->sum[M_VAL_LOSS + i] += batch * v[i];
	r->weight += batch;
	return FV_OK;
}

fv_status fv__validate(fv__trainer *t)
{
	double start = now_seconds();
	fv_module_set_training(t->model, false);
	bool was = fv_ctx_set_grad_enabled(t->ctx, false);
	running r = {0};
	fv_batch b;
	fv_status rc = FV_OK;
	while (fv_batch_next(t->val_it, &b))
		if (rc == FV_OK)
			rc = validate_batch(t, &b, &r); /* finish the pass to keep the iterator aligned */
	fv_ctx_set_grad_enabled(t->ctx, was);
	fv_module_set_training(t->model, true);
	for (int i = M_VAL_LOSS; i <= M_VAL_EVAL; i++)
		t->metrics[i] = r.weight > 0 ? r.sum[i] / r.weight : NAN;
	t->epoch_seconds += now_seconds() - start;
	return rc;
}
