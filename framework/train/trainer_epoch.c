/*
** trainer_epoch.c: one epoch of training and one validation pass, as
** Lightning runs openretina's training_step and validation_step, with the
** progress bar.
**
** Logged values are averaged over the epoch's batches weighted by batch
** size, which is how Lightning reduces a value logged with on_epoch=True.
** With accumulate_grad_batches k the gradients of k batches add up before
** one clip and optimizer step (train.h); trainer.max_steps ends the epoch
** after the step that reaches it.
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

/* A training step's values, weighted by the global batch's rows (by this
** rank's share of them under data parallelism: data_parallel.c). */
static void add_terms(running *r, const fv_step_terms *s, const fv__shard *sh)
{
	double loss = sh->loss_coef * value_of(s->loss), core = sh->reg_coef * value_of(s->reg_core);
	double readout = sh->reg_coef * value_of(s->reg_readout);
	bool whole = sh->loss_coef == 1 && sh->reg_coef == 1;
	double v[5] = {loss, whole ? value_of(s->total) : loss + core + readout, core, readout,
	               sh->eval_coef * value_of(s->eval_loss)};
	for (int i = 0; i < 5; i++)
		r->sum[M_TRAIN_LOSS + i] += sh->n * v[i];
	r->weight += sh->n * sh->reg_coef;
}

/* The pass's weighted sums over every rank, then their means into t->metrics. */
static fv_status pass_means(fv__trainer *t, running *r, int first, int last)
{
	fv_status rc = fv__dp_reduce_sums(t, r->sum + first, (size_t)(last - first + 1), &r->weight);
	for (int i = first; i <= last; i++)
		t->metrics[i] = r->weight > 0 ? r->sum[i] / r->weight : NAN;
	return rc;
}

/* ---- non-finite values ------------------------------------------------------------------- */

/* Lightning's EarlyStopping(check_finite=True) stops when the monitored
** metric is NaN or inf; fovea stops at the first non-finite term of any
** batch instead, before the optimizer step, so no checkpoint ever holds
** weights that a NaN has reached and the last good one stays on disk. */

static fv_status not_finite(const fv__trainer *t, const char *pass, int64_t batch, int64_t total,
                            const char *session, const char *what, double v)
{
	return fv_error(FV_ERR_ARG,
	                "epoch %lld/%lld, %s batch %lld/%lld, session '%s': %s is %g; training "
	                "stopped, the checkpoints of the last finished epoch are kept (look for "
	                "NaN/inf in the data, a regularizer weight or the learning rate)",
	                (long long)t->epochs_done + 1, (long long)t->max_epochs, pass,
	                (long long)batch + 1, (long long)total, session, what, v);
}

/* Whether every element of x is finite; *v gets the first that is not. */
static bool all_finite(const fv_tensor *x, double *v)
{
	for (int64_t i = 0; i < x->numel; i++)
		if (!isfinite(x->data[i])) {
			*v = (double)x->data[i];
			return false;
		}
	return true;
}

/* The first term of a step that is NaN or inf, or NULL. */
static const char *bad_term(const fv_step_terms *s, bool with_eval, double *v)
{
	static const char *const names[] = {"the loss", "the core regularizer",
	                                    "the readout regularizer", "the total loss",
	                                    "the evaluation loss"};
	const fv_tensor *terms[] = {s->loss, s->reg_core, s->reg_readout, s->total, s->eval_loss};
	for (int i = 0; i < (with_eval ? 5 : 4); i++) {
		*v = value_of(terms[i]);
		if (!isfinite(*v))
			return names[i];
	}
	return NULL;
}

typedef struct find_param {
	const fv_tensor *want;
	const char *name;
} find_param;

static int match_param(void *ud, const char *name, fv_tensor *p, bool is_param)
{
	(void)is_param;
	find_param *f = ud;
	if (p != f->want)
		return 0;
	f->name = name;
	return 1;
}

/* The first trainable parameter whose gradient (grads) or value is not
** finite, as "the gradient of core.features.layer0.conv.weight_spatial". */
static bool bad_param(const fv__trainer *t, bool grads, char *what, size_t size, double *v)
{
	for (size_t i = 0; i < t->n_params; i++) {
		const fv_tensor *p = t->params[i], *x = grads ? p->grad : p;
		if (x == NULL || all_finite(x, v))
			continue;
		find_param f = {p, NULL};
		fv_module_foreach_tensor(t->model, match_param, &f);
		snprintf(what, size, "%s %s", grads ? "the gradient of" : "after the optimizer step,",
		         f.name != NULL ? f.name : p->name != NULL ? p->name : "a parameter");
		return true;
	}
	return false;
}

/* ---- training ---------------------------------------------------------------------------- */

fv_status fv__schedule_step(fv__trainer *t, double metric)
{
	fv_clear_error(); /* a NaN below either comes with its message or gets one */
	/* after an OptimizerResetCallback reset the scheduler still drives the
	** old optimizer (openretina's quirk): its rate is sched_lr */
	double now = t->sched_detached ? t->sched_lr : fv_optimizer_lr(t->opt);
	double lr = fv_lr_scheduler_step(&t->sched, now, metric);
	if (isnan(lr) && fv_errcode() == FV_OK)
		fv_error(FV_ERR_ARG, "lr_scheduler: the learning rate became NaN after step %lld",
		         (long long)t->sched.last_epoch);
	if (isnan(lr))
		return fv_errcode();
	if (t->sched_detached) {
		t->sched_lr = lr;
		return FV_OK;
	}
	fv_optimizer_set_lr(t->opt, lr);
	if (!isnan(t->sched.momentum))
		fv_optimizer_set_momentum(t->opt, t->sched.momentum);
	return FV_OK;
}

/* Lightning's interval "step": after an optimizer step, every
** frequency-th batch of the epoch. */
static fv_status step_schedule(fv__trainer *t, int64_t i)
{
	if (!t->sched.per_step || (i + 1) % t->sched.frequency != 0)
		return FV_OK;
	return fv__schedule_step(t, 0);
}

/* The end of a window: clip the accumulated gradients, one optimizer step. */
static fv_status optimizer_step(fv__trainer *t, const fv_batch *b, int64_t i, int64_t n)
{
	char what[512];
	double v;
	fv_status rc = fv__dp_allreduce_grads(t);
	if (rc != FV_OK)
		return rc;
	if (bad_param(t, true, what, sizeof what, &v))
		return not_finite(t, "training", i, n, b->session, what, v);
	/* Lightning's clip_gradients: nothing for a value <= 0 (or null) */
	if (t->clip > 0 && t->clip_value)
		fv_clip_grad_value(t->n_params, t->params, t->clip);
	else if (t->clip > 0)
		fv_clip_grad_norm(t->n_params, t->params, t->clip);
	rc = fv_optimizer_step(t->opt);
	if (rc != FV_OK)
		return rc;
	fv_module_after_optimizer_step(t->model); /* e.g. a gain clamped >= 0 */
	if (bad_param(t, false, what, sizeof what, &v))
		return not_finite(t, "training", i, n, b->session, what, v);
	t->global_step++;
	return step_schedule(t, i);
}

/* One batch: the training step and the backward of total / k; the batch
** closing a window of k (or the epoch) also steps. */
static fv_status train_batch(fv__trainer *t, const fv_batch *b, int64_t i, int64_t n, running *r)
{
	fv_ctx_reset(t->ctx);
	if (fv_accumulation_opens(i, t->accumulate))
		fv_optimizer_zero_grad(t->opt);
	fv__shard sh;
	fv_step_terms s;
	fv_status rc = fv__dp_shard(t, b, &sh);
	if (rc == FV_OK)
		rc = fv_core_readout_step(t->ctx, t->model, t->loss, t->eval_loss, sh.b.input,
		                          sh.b.target, b->session, &s);
	double v;
	const char *bad = rc == FV_OK ? bad_term(&s, false, &v) : NULL;
	if (bad != NULL)
		return not_finite(t, "training", i, n, b->session, bad, v);
	fv_tensor *objective = rc == FV_OK ? fv__dp_objective(t, &sh, &s) : NULL;
	if (objective != NULL)
		rc = fv_accumulate_backward(t->ctx, objective, t->accumulate);
	else if (rc == FV_OK)
		rc = fv_errcode();
	if (rc != FV_OK) {
		fv_error_prefix("epoch %lld, session '%s': ", (long long)t->epochs_done, b->session);
		return rc;
	}
	add_terms(r, &s, &sh);
	return fv_accumulation_closes(i, n, t->accumulate) ? optimizer_step(t, b, i, n) : FV_OK;
}

static bool max_steps_reached(const fv__trainer *t)
{
	return t->max_steps >= 0 && t->global_step >= t->max_steps;
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
	int64_t total = t->train_batches, done = 0;
	t->epoch_lr = fv_optimizer_lr(t->opt);
	t->epoch_sched_lr = t->sched_lr;
	fv_batch b;
	while (done < total && !max_steps_reached(t) && fv_batch_next(t->train_it, &b)) {
		if (fv__trainer_interrupted(t))
			return FV_OK; /* the epoch is dropped: nothing of it is written */
		fv_status rc = train_batch(t, &b, done, total, &r);
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
	/* limit_train_batches: Lightning drops the loader's iterator, drawing
	** nothing more of this epoch */
	fv_batch_iter_end_epoch(t->train_it);
	if (t->bar)
		clear_bar(t);
	fv_status rc = pass_means(t, &r, M_TRAIN_LOSS, M_TRAIN_EVAL);
	t->epoch_seconds = now_seconds() - start;
	return rc;
}

/* ---- validation ---------------------------------------------------------------------------- */

static fv_status validate_batch(fv__trainer *t, const fv_batch *b, int64_t i, int64_t n,
                                running *r)
{
	fv_ctx_reset(t->ctx);
	fv__shard sh;
	fv_step_terms s;
	fv_status rc = fv__dp_shard(t, b, &sh);
	if (rc == FV_OK)
		rc = fv_core_readout_step(t->ctx, t->model, t->loss, t->eval_loss, sh.b.input,
		                          sh.b.target, b->session, &s);
	if (rc == FV_OK)
		rc = fv__dp_validation_weights(t, &sh, &s);
	if (rc != FV_OK) {
		fv_error_prefix("validation, session '%s': ", b->session);
		return rc;
	}
	double bad_value;
	const char *bad = bad_term(&s, true, &bad_value);
	if (bad != NULL)
		return not_finite(t, "validation", i, n, b->session, bad, bad_value);
	/* openretina's validation_step divides the loss by sum(output.shape),
	** of the global batch */
	double dims = sh.n - (double)s.output->shape[0];
	for (int d = 0; d < s.output->ndim; d++)
		dims += (double)s.output->shape[d];
	double loss = sh.loss_coef * value_of(s.loss) / dims;
	double core = sh.reg_coef * value_of(s.reg_core);
	double readout = sh.reg_coef * value_of(s.reg_readout);
	double v[5] = {loss, core, readout, loss + core + readout,
	               sh.eval_coef * value_of(s.eval_loss)};
	for (int i = 0; i < 5; i++)
		r->sum[M_VAL_LOSS + i] += sh.n * v[i];
	r->weight += sh.n * sh.reg_coef;
	return FV_OK;
}

/* One pass over the first `limit` validation batches into t->metrics. */
static fv_status validate_batches(fv__trainer *t, int64_t limit)
{
	double start = now_seconds();
	fv_status rc = fv__dp_sync_buffers(t);
	fv_module_set_training(t->model, false);
	bool was = fv_ctx_set_grad_enabled(t->ctx, false);
	running r = {0};
	fv_batch b;
	int64_t done = 0;
	while (done < limit && fv_batch_next(t->val_it, &b)) {
		/* once interrupted the pass runs out unused: the epoch is dropped */
		if (rc == FV_OK && !fv__trainer_interrupted(t))
			rc = validate_batch(t, &b, done, limit, &r);
		done++; /* on to the end of the pass after a failure: the iterator stays aligned */
	}
	fv_batch_iter_end_epoch(t->val_it);
	fv_ctx_set_grad_enabled(t->ctx, was);
	fv_module_set_training(t->model, true);
	fv_status reduced = pass_means(t, &r, M_VAL_LOSS, M_VAL_EVAL);
	t->epoch_seconds += now_seconds() - start;
	return rc != FV_OK ? rc : reduced;
}

fv_status fv__validate(fv__trainer *t)
{
	return validate_batches(t, t->val_batches);
}

fv_status fv__sanity_check(fv__trainer *t)
{
	int64_t n = t->sanity_steps < t->val_batches ? t->sanity_steps : t->val_batches;
	if (n == 0)
		return FV_OK;
	double kept[N_METRICS];
	memcpy(kept, t->metrics, sizeof kept);
	fv_status rc = validate_batches(t, n);
	if (rc != FV_OK)
		fv_error_prefix("sanity check (trainer.num_sanity_val_steps=%lld): ",
		                t->sanity_steps == INT64_MAX ? -1LL : (long long)t->sanity_steps);
	memcpy(t->metrics, kept, sizeof kept); /* Lightning resets the logged metrics */
	t->epoch_seconds = 0;
	return rc;
}

fv_status fv__seek_train(fv__trainer *t, int64_t epochs)
{
	if (t->train_batches == fv_batch_iter_len(t->train_it))
		return fv_batch_iter_seek(t->train_it, epochs, 0);
	/* limited epochs draw less than whole ones: replay them batch by batch */
	fv_status rc = fv_batch_iter_seek(t->train_it, 0, 0);
	fv_batch b;
	for (int64_t e = 0; rc == FV_OK && e < epochs; e++) {
		for (int64_t i = 0; i < t->train_batches && fv_batch_next(t->train_it, &b); i++)
			;
		fv_batch_iter_end_epoch(t->train_it);
	}
	return rc;
}
