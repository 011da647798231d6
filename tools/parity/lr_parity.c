/*
** lr_parity.c: the parity flow of the learning-rate scheduler cases
** (tests/golden/lr_*), called by parity.c for cases storing output.lr.
**
** As the case's notes describe: p = input.p0 under the case's optimizer
** (AdamW, lr = learning_rate), the scheduler built from kwargs; for each
** row i of input.targets the rate (and beta1) in use is recorded, the loss
** 0.5 * ||p - targets[i]||^2 is minimised by one optimizer step, then the
** scheduler steps (ReduceLROnPlateau with input.metrics[i]).  OneCycleLR
** without total_steps gets the number of rows, as the case's stand-in
** trainer reports it as estimated_stepping_batches.  Besides the float32
** tensors, the rates are checked against the exact python floats of
** lr_float64 (and beta1_float64) to 1e-12 relative.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/optim.h"
#include "fovea/trainer.h"
#include "fovea/fovea.h"
#include "parity_case.h"

typedef struct lrflow {
	fv_pcase *pc;
	fv_ctx *ctx;
	fv_lr_scheduler sched;
	fv_optimizer *opt;
	fv_tensor *p, *targets, *metrics;
	int64_t n;            /* trajectory steps */
	double *lr, *beta1;   /* n + 1 each, in double */
	fv_tensor *out_lr, *out_beta1, *params, *losses, *best, *bad, *cooldown;
} lrflow;

static fv_tensor *vector(int64_t n)
{
	return fv_tensor_new(1, &n);
}

static fv_status setup(lrflow *f)
{
	fv_pcase *pc = f->pc;
	const fv_config_node *lr_node = fv__pcase_get(pc, "learning_rate");
	double lr = 0;
	fv_optim_config oc;
	if (lr_node == NULL || fv_node_to_double(lr_node, &lr) != FV_OK)
		return fv_error(FV_ERR_FORMAT, "the case has no learning_rate");
	fv_status rc = fv_optim_config_parse(fv__pcase_get(pc, "optimizer"), &oc);
	if (rc == FV_OK)
		rc = fv_lr_scheduler_parse(fv__pcase_get(pc, "kwargs"), lr, &f->sched);
	if (rc != FV_OK)
		return rc;
	if (f->sched.kind == FV_SCHED_ONE_CYCLE && f->sched.total_steps == 0)
		f->sched.total_steps = f->n;
	oc.lr = fv_lr_scheduler_start(&f->sched, oc.lr);
	if (isnan(oc.lr))
		return fv_errcode();
	if (!isnan(f->sched.momentum))
		oc.beta1 = f->sched.momentum;
	int64_t shape[2] = {f->n, f->p->numel};
	f->opt = fv_optimizer_new(&oc, 1, &f->p);
	f->lr = calloc((size_t)f->n + 1, sizeof *f->lr);
	f->beta1 = calloc((size_t)f->n + 1, sizeof *f->beta1);
	f->out_lr = vector(f->n + 1);
	f->out_beta1 = vector(f->n + 1);
	f->params = fv_tensor_new(2, shape);
	f->losses = vector(f->n);
	f->best = vector(f->n);
	f->bad = vector(f->n);
	f->cooldown = vector(f->n);
	if (f->opt == NULL || f->lr == NULL || f->beta1 == NULL || f->out_lr == NULL ||
	    f->out_beta1 == NULL || f->params == NULL || f->losses == NULL || f->best == NULL ||
	    f->bad == NULL || f->cooldown == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	return FV_OK;
}

/* Step i: the rate in use, one optimizer step on loss_i, one scheduler step. */
static fv_status one_step(lrflow *f, int64_t i)
{
	const fv_optim_config *oc = fv_optimizer_config(f->opt);
	int64_t d = f->p->numel;
	f->lr[i] = oc->lr;
	f->beta1[i] = oc->beta1;
	fv_ctx_reset(f->ctx);
	fv_tensor *t = fv_ctx_from_data(f->ctx, 1, &d, f->targets->data + i * d);
	fv_tensor *loss = fv_mul_scalar(f->ctx, fv_sum_all(f->ctx, fv_square(f->ctx,
	                                fv_sub(f->ctx, f->p, t))), 0.5);
	if (loss == NULL)
		return fv_errcode();
	f->losses->data[i] = loss->data[0];
	fv_optimizer_zero_grad(f->opt);
	fv_status rc = fv_backward(f->ctx, loss);
	if (rc == FV_OK)
		rc = fv_optimizer_step(f->opt);
	if (rc != FV_OK)
		return rc;
	memcpy(f->params->data + i * d, f->p->data, (size_t)d * sizeof *f->p->data);
	double metric = f->metrics != NULL ? f->metrics->data[i] : 0;
	double lr = fv_lr_scheduler_step(&f->sched, oc->lr, metric);
	if (isnan(lr))
		return fv_errcode();
	fv_optimizer_set_lr(f->opt, lr);
	if (!isnan(f->sched.momentum))
		fv_optimizer_set_momentum(f->opt, f->sched.momentum);
	f->best->data[i] = (fv_real)f->sched.best;
	f->bad->data[i] = (fv_real)f->sched.num_bad_epochs;
	f->cooldown->data[i] = (fv_real)f->sched.cooldown_counter;
	return FV_OK;
}

/* The exact python floats of `key` against `v`. */
static void compare_exact(fv_pcase *pc, const char *key, const double *v, int64_t n)
{
	const fv_config_node *list = fv__pcase_get(pc, key);
	if (list == NULL)
		return;
	if ((int64_t)fv_node_size(list) != n) {
		fv__pcase_fail(pc, "%s has %zu values, fovea computed %lld", key, fv_node_size(list),
		               (long long)n);
		return;
	}
	double max_rel = 0;
	int64_t bad = -1;
	for (int64_t i = 0; i < n; i++) {
		double g = 0;
		fv_node_to_double(fv_node_at(list, (size_t)i), &g);
		double rel = fabs(v[i] - g) / fmax(fabs(g), 1e-300);
		if (rel > max_rel || isnan(rel))
			max_rel = rel;
		if (!(rel <= 1e-12) && bad < 0)
			bad = i;
	}
	if (pc->out)
		fprintf(pc->out, "  %-56s max_rel %-10.3g %s\n", key, max_rel, bad < 0 ? "PASS" : "FAIL");
	if (bad >= 0) {
		double g = 0;
		fv_node_to_double(fv_node_at(list, (size_t)bad), &g);
		fv__pcase_fail(pc, "%s[%lld] = %.17g, fovea %.17g (rtol 1e-12)", key, (long long)bad, g,
		               v[bad]);
	}
}

static void compare_all(lrflow *f)
{
	fv_pcase *pc = f->pc;
	for (int64_t i = 0; i <= f->n; i++) {
		f->out_lr->data[i] = (fv_real)f->lr[i];
		f->out_beta1->data[i] = (fv_real)f->beta1[i];
	}
	fv__pcase_compare(pc, "output.lr", f->out_lr);
	fv__pcase_compare_if_present(pc, "output.beta1", f->out_beta1);
	fv__pcase_compare(pc, "output.param_trajectory", f->params);
	fv__pcase_compare(pc, "output.loss_trajectory", f->losses);
	fv__pcase_compare_if_present(pc, "output.best", f->best);
	fv__pcase_compare_if_present(pc, "output.num_bad_epochs", f->bad);
	fv__pcase_compare_if_present(pc, "output.cooldown_counter", f->cooldown);
	compare_exact(pc, "lr_float64", f->lr, f->n + 1);
	compare_exact(pc, "beta1_float64", f->beta1, f->n + 1);
}

static fv_tensor *persistent_input(fv_pcase *pc, fv_ctx *ctx, const char *name)
{
	fv_tensor *t = fv__pcase_input(pc, ctx, name, false);
	return t != NULL ? fv_tensor_clone(t) : NULL;
}

static void run(lrflow *f)
{
	fv_pcase *pc = f->pc;
	f->p = persistent_input(pc, f->ctx, "input.p0");
	f->targets = persistent_input(pc, f->ctx, "input.targets");
	if (fv__pcase_has(pc, "input.metrics"))
		f->metrics = persistent_input(pc, f->ctx, "input.metrics");
	if (f->p == NULL || f->targets == NULL || f->targets->ndim != 2 ||
	    f->targets->shape[1] != f->p->numel) {
		fv__pcase_fail(pc, "input.p0 and input.targets (steps, %lld) are needed",
		               f->p != NULL ? (long long)f->p->numel : 0LL);
		return;
	}
	f->p->requires_grad = true;
	f->n = f->targets->shape[0];
	fv_status rc = setup(f);
	for (int64_t i = 0; rc == FV_OK && i < f->n; i++)
		rc = one_step(f, i);
	if (rc != FV_OK) {
		fv__pcase_fail(pc, "%s", fv_errmsg());
		return;
	}
	f->lr[f->n] = fv_optimizer_lr(f->opt);
	f->beta1[f->n] = fv_optimizer_config(f->opt)->beta1;
	compare_all(f);
}

void fv__parity_lr_schedule(fv_pcase *pc)
{
	lrflow f = {.pc = pc, .ctx = fv_ctx_new()};
	if (f.ctx == NULL)
		fv__pcase_fail(pc, "%s", fv_errmsg());
	else
		run(&f);
	fv_tensor *tensors[] = {f.p, f.targets, f.metrics, f.out_lr, f.out_beta1, f.params,
	                        f.losses, f.best, f.bad, f.cooldown};
	for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
		fv_tensor_free(tensors[i]);
	fv_optimizer_free(f.opt);
	free(f.lr);
	free(f.beta1);
	fv_ctx_free(f.ctx);
	fv__pcase_check_all_compared(pc);
}
