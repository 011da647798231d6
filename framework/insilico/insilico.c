/*
** insilico.c: fv_optimize_stimulus, openretina's optimize_stimulus loop,
** and the checked call of an objective.
**
** The iteration order is openretina's and matters for parity: the loss
** that reaches the stopper and the traces is the one computed before the
** optimizer step, while the stimulus handed to the postprocessors (and to
** the iteration callback) is the one after it.  Each iteration's
** activations and tape live in one context that is reset at the top of the
** next iteration, so a long optimisation does not grow.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/insilico.h"
#include "tensor/tensor_internal.h"

/* A slot exists when the plugin's struct is large enough to hold it and it
** is set (older plugins built with a shorter fv_component lack it). */
#define HAS_SLOT(c, slot)                                                        \
	((c)->struct_size >= offsetof(fv_component, slot) + sizeof((c)->slot) && \
	 (c)->slot != NULL)

static const char *component_name(const fv_module *m)
{
	return fv_module_component(m)->names[0];
}

static bool is_scalar(const fv_tensor *t)
{
	return t->numel == 1;
}

fv_tensor *fv_module_objective(fv_module *m, fv_ctx *ctx, fv_model *model, fv_tensor *stimulus)
{
	if (m == NULL) {
		fv_error(FV_ERR_ARG, "objective: no objective module given");
		return NULL;
	}
	const fv_component *c = fv_module_component(m);
	if (!HAS_SLOT(c, objective)) {
		fv_error(FV_ERR_ARG, "%s '%s' has no objective: expected an objective such as "
		                     "IncreaseObjective",
		         fv_kind_name(c->kind), c->names[0]);
		return NULL;
	}
	FV_CHECK_INPUT(stimulus);
	fv_tensor *y = c->objective(m, ctx, model, stimulus);
	if (y != NULL && !is_scalar(y)) {
		fv_error(FV_ERR_SHAPE, "objective '%s' returned a tensor of shape %s, expected a scalar",
		         c->names[0], fv_shape_str(y->ndim, y->shape));
		return NULL;
	}
	return y;
}

/* ---- argument checks ------------------------------------------------------------- */

static fv_status check_modules(const char *what, size_t n, fv_module *const *mods,
                               bool want_penalty)
{
	if (n > 0 && mods == NULL)
		return fv_error(FV_ERR_ARG, "optimize_stimulus: %zu %s given as a NULL array", n, what);
	for (size_t i = 0; i < n; i++) {
		if (mods[i] == NULL)
			return fv_error(FV_ERR_ARG, "optimize_stimulus: %s %zu is NULL", what, i);
		const fv_component *c = fv_module_component(mods[i]);
		bool ok = want_penalty ? HAS_SLOT(c, penalty) : HAS_SLOT(c, project);
		if (!ok)
			return fv_error(FV_ERR_ARG,
			                "optimize_stimulus: %s %zu ('%s') has no %s: expected a stimulus "
			                "regularizer such as %s",
			                what, i, c->names[0], want_penalty ? "penalty" : "projection",
			                want_penalty ? "RangeRegularizationLoss"
			                             : "ChangeNormJointlyClipRangeSeparately");
	}
	return FV_OK;
}

static fv_status check_args(const fv_tensor *stimulus, const fv_optimize_args *a)
{
	if (a == NULL || a->struct_size < sizeof(fv_optimize_args))
		return fv_error(FV_ERR_ARG, "optimize_stimulus: %s",
		                a == NULL ? "no arguments given"
		                          : "arguments struct too small (struct_size not set?)");
	if (stimulus == NULL || !stimulus->persistent)
		return fv_error(FV_ERR_ARG, "optimize_stimulus: %s",
		                stimulus == NULL ? "no stimulus given"
		                                 : "the stimulus must be a persistent tensor "
		                                   "(fv_tensor_new), not a context tensor");
	if (a->model == NULL || a->objective == NULL || a->stopper == NULL || a->optimizer == NULL)
		return fv_error(FV_ERR_ARG, "optimize_stimulus: no %s given",
		                a->model == NULL       ? "model"
		                : a->objective == NULL ? "objective"
		                : a->stopper == NULL   ? "stopper"
		                                       : "optimizer configuration");
	const fv_component *c = fv_module_component(a->objective);
	if (!HAS_SLOT(c, objective))
		return fv_error(FV_ERR_ARG, "optimize_stimulus: objective '%s' is a %s, not an objective",
		                c->names[0], fv_kind_name(c->kind));
	c = fv_module_component(a->stopper);
	/* a stopper that never answers would loop forever */
	if (!HAS_SLOT(c, should_stop))
		return fv_error(FV_ERR_ARG,
		                "optimize_stimulus: stopper '%s' (kind %s) has no should_stop: "
		                "expected a stopper such as OptimizationStopper",
		                c->names[0], fv_kind_name(c->kind));
	fv_status st = check_modules("penalty", a->n_penalties, a->penalties, true);
	if (st == FV_OK)
		st = check_modules("postprocessor", a->n_postprocessors, a->postprocessors, false);
	return st;
}

/* ---- one iteration ---------------------------------------------------------------- */

/* loss = -objective + sum of penalties, in openretina's order. */
static fv_tensor *loss_of(fv_ctx *ctx, const fv_optimize_args *a, fv_tensor *stimulus,
                          fv_tensor **objective)
{
	*objective = fv_module_objective(a->objective, ctx, a->model, stimulus);
	if (*objective == NULL) {
		fv_error_prefix("objective '%s': ", component_name(a->objective));
		return NULL;
	}
	fv_tensor *loss = fv_neg(ctx, *objective);
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	for (size_t i = 0; i < a->n_penalties && loss != NULL; i++) {
		fv_tensor *p = fv_module_penalty(a->penalties[i], ctx, stimulus, &fa);
		if (p == NULL) {
			fv_error_prefix("penalty '%s': ", component_name(a->penalties[i]));
			return NULL;
		}
		if (!is_scalar(p)) {
			fv_error(FV_ERR_SHAPE, "penalty '%s' returned a tensor of shape %s, expected a "
			                       "scalar",
			         component_name(a->penalties[i]), fv_shape_str(p->ndim, p->shape));
			return NULL;
		}
		loss = fv_add(ctx, loss, fv_reshape(ctx, p, loss->ndim, loss->shape));
	}
	return loss;
}

static fv_status postprocess(const fv_optimize_args *a, fv_tensor *stimulus)
{
	for (size_t i = 0; i < a->n_postprocessors; i++) {
		fv_status st = fv_module_project(a->postprocessors[i], stimulus);
		if (st != FV_OK) {
			fv_error_prefix("postprocessor '%s': ", component_name(a->postprocessors[i]));
			return st;
		}
	}
	return FV_OK;
}

static fv_status iterate(fv_ctx *ctx, fv_optimizer *opt, fv_tensor *stimulus,
                         const fv_optimize_args *a, int64_t index, bool *stop)
{
	fv_ctx_reset(ctx);
	fv_tensor *objective = NULL;
	fv_tensor *loss = loss_of(ctx, a, stimulus, &objective);
	if (loss == NULL)
		return FV_ERR_ARG;
	fv_iteration it = {.index = index,
	                   .objective = objective->data[0],
	                   .loss = loss->data[0],
	                   .stimulus = stimulus};
	fv_optimizer_zero_grad(opt);
	fv_status st = fv_backward(ctx, loss);
	if (st == FV_OK)
		st = fv_optimizer_step(opt);
	if (st == FV_OK)
		st = postprocess(a, stimulus);
	if (st == FV_OK && a->on_iteration != NULL)
		st = a->on_iteration(a->ud, &it);
	if (st == FV_OK)
		*stop = fv_module_should_stop(a->stopper, it.loss);
	return st;
}

fv_status fv_optimize_stimulus(fv_tensor *stimulus, const fv_optimize_args *args,
                               int64_t *n_iterations)
{
	if (n_iterations != NULL)
		*n_iterations = 0;
	fv_status st = check_args(stimulus, args);
	if (st != FV_OK)
		return st;
	fv_ctx *ctx = fv_ctx_new();
	fv_optimizer *opt = ctx != NULL ? fv_optimizer_new(args->optimizer, 1, &stimulus) : NULL;
	if (opt == NULL) {
		fv_error_prefix("optimize_stimulus: ");
		fv_ctx_free(ctx);
		return FV_ERR_NOMEM;
	}
	bool had_grad = stimulus->requires_grad;
	stimulus->requires_grad = true;
	int64_t i = 0;
	for (bool stop = false; !stop; i++) {
		st = iterate(ctx, opt, stimulus, args, i, &stop);
		if (st != FV_OK) {
			fv_error_prefix("optimize_stimulus, iteration %lld: ", (long long)i);
			break;
		}
	}
	/* openretina ends with stimulus.detach_() */
	fv_zero_grad_to_none(stimulus);
	stimulus->requires_grad = had_grad;
	fv_optimizer_free(opt);
	fv_ctx_free(ctx);
	if (n_iterations != NULL)
		*n_iterations = i;
	return st;
}
