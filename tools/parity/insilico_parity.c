/*
** insilico_parity.c: the parity flows of the in-silico reference cases
** (tests/golden/insilico_*), called by parity.c for cases with a `model`
** or `stops_after_iterations` key.
**
**   target optimize_stimulus   build the model (model.target/kwargs, its
**                              param.*, eval, frozen) and every kwarg
**                              component, run fv_optimize_stimulus from
**                              input.stimulus; compare the final stimulus,
**                              the objective/loss/stimulus traces, the
**                              low-pass kernel and the model's in-place
**                              changed parameters.
**   target an objective        objective(input.stimulus) and its gradient
**                              w.r.t. the stimulus only.
**   target a stopper           input.losses fed one by one to one stopper:
**                              the flags and the first stopping index.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/insilico.h"
#include "fovea/optim.h"
#include "fovea/fovea.h"
#include "parity_case.h"

typedef struct isflow {
	fv_pcase *pc;
	fv_registry *reg;
	fv_ctx *ctx;
	fv_module *model_module;
	fv_model *model;
} isflow;

static const char *text_at(const fv_pcase *pc, const char *path)
{
	const fv_config_node *n = fv__pcase_get(pc, path);
	return n ? fv_node_text(n) : NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The component named at `target_key`, built from the map at `kwargs_key`. */
static fv_module *build_named(isflow *f, const char *target_key, const char *kwargs_key)
{
	const char *target = text_at(f->pc, target_key);
	const fv_component *c = target ? fv_registry_find(f->reg, target, NULL) : NULL;
	if (c == NULL) {
		fv__pcase_fail(f->pc, "%s: no component named '%s' is registered", target_key,
		               target ? target : "(missing)");
		return NULL;
	}
	fv_build_args args = {.struct_size = sizeof args, .registry = f->reg};
	fv_module *m = fv_instantiate_component(c, fv__pcase_get(f->pc, kwargs_key), &args, "");
	if (m == NULL)
		fv__pcase_fail(f->pc, "building %s: %s", target, fv_errmsg());
	return m;
}

static fv_module *build_spec(isflow *f, const fv_config_node *spec, const char *what)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = f->reg};
	fv_module *m = fv_instantiate(f->reg, spec, &args);
	if (m == NULL)
		fv__pcase_fail(f->pc, "building %s: %s", what, fv_errmsg());
	return m;
}

/* ---- the model -------------------------------------------------------------------- */

static bool build_model(isflow *f)
{
	f->model_module = build_named(f, "model.target", "model.kwargs");
	if (f->model_module == NULL)
		return false;
	fv__pcase_load_state(f->pc, f->model_module);
	f->model = fv_model_new(f->model_module);
	if (f->model == NULL)
		fv__pcase_fail(f->pc, "%s", fv_errmsg());
	return f->model != NULL;
}

/* output.param.NAME: the model's parameters as its forward left them. */
static int compare_param(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)is_param;
	char key[512];
	snprintf(key, sizeof key, "output.param.%s", name);
	fv__pcase_compare_if_present(ud, key, t);
	return 0;
}

/* ---- an objective and its gradient --------------------------------------------------- */

static void run_objective(isflow *f, fv_module *objective)
{
	fv_tensor *stimulus = fv__pcase_input(f->pc, f->ctx, "input.stimulus", true);
	if (stimulus == NULL)
		return;
	fv_tensor *obj = fv_module_objective(objective, f->ctx, f->model, stimulus);
	fv__pcase_compare(f->pc, "output.objective", obj);
	if (obj == NULL)
		return;
	if (fv_backward(f->ctx, obj) != FV_OK)
		fv__pcase_fail(f->pc, "backward: %s", fv_errmsg());
	fv__pcase_compare(f->pc, "grad.input.stimulus", stimulus->grad);
}

/* ---- optimize_stimulus ----------------------------------------------------------------- */

#define MAX_STAGE 16

typedef struct traces {
	size_t n, cap;
	int64_t stim_numel;
	fv_real *objective, *loss, *stimulus;
} traces;

static fv_status record(void *ud, const fv_iteration *it)
{
	traces *tr = ud;
	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? 2 * tr->cap : 32;
		fv_real *o = realloc(tr->objective, cap * sizeof *o);
		if (o != NULL)
			tr->objective = o;
		fv_real *l = o ? realloc(tr->loss, cap * sizeof *l) : NULL;
		if (l != NULL)
			tr->loss = l;
		fv_real *s = l ? realloc(tr->stimulus, cap * (size_t)tr->stim_numel * sizeof *s) : NULL;
		if (s == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory recording traces");
		tr->stimulus = s;
		tr->cap = cap;
	}
	tr->objective[tr->n] = (fv_real)it->objective;
	tr->loss[tr->n] = (fv_real)it->loss;
	memcpy(tr->stimulus + tr->n * (size_t)tr->stim_numel, it->stimulus->data,
	       (size_t)tr->stim_numel * sizeof(fv_real));
	tr->n++;
	return FV_OK;
}

/* A kwarg that openretina's convert_to_list accepts: null, one spec, a list. */
static size_t build_stage(isflow *f, const char *key, fv_module **mods)
{
	const fv_config_node *n = fv__pcase_get(f->pc, key);
	if (n == NULL || fv_node_is_null(n))
		return 0;
	size_t count = fv_node_kind(n) == FV_NODE_SEQ ? fv_node_size(n) : 1;
	if (count > MAX_STAGE) {
		fv__pcase_fail(f->pc, "%s: at most %d components", key, MAX_STAGE);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		mods[i] = build_spec(f, fv_node_kind(n) == FV_NODE_SEQ ? fv_node_at(n, i) : n, key);
		if (mods[i] == NULL)
			return i;
	}
	return count;
}

static void compare_traces(isflow *f, const traces *tr, const fv_tensor *stimulus)
{
	int64_t n = (int64_t)tr->n;
	int64_t shape[FV_MAX_DIMS] = {n};
	memcpy(shape + 1, stimulus->shape, (size_t)stimulus->ndim * sizeof *shape);
	int ndim = stimulus->ndim + 1 <= FV_MAX_DIMS ? stimulus->ndim + 1 : 0;
	fv__pcase_compare(f->pc, "output.objective_trace", fv_ctx_from_data(f->ctx, 1, &n, tr->objective));
	fv__pcase_compare(f->pc, "output.loss_trace", fv_ctx_from_data(f->ctx, 1, &n, tr->loss));
	fv__pcase_compare(f->pc, "output.stimulus_trace",
	                  ndim ? fv_ctx_from_data(f->ctx, ndim, shape, tr->stimulus) : NULL);
	fv__pcase_compare(f->pc, "output.stimulus", stimulus);
}

static void compare_kernels(isflow *f, size_t n, fv_module *const *post)
{
	for (size_t i = 0; i < n; i++) {
		fv_tensor *k = fv_module_tensor(post[i], "kernel");
		if (k != NULL)
			fv__pcase_compare_if_present(f->pc, "const.lowpass_kernel", k);
	}
}

static void optimize(isflow *f, fv_module *objective, fv_module *stopper, size_t n_pen,
                     fv_module *const *pen, size_t n_post, fv_module *const *post)
{
	fv_optim_config oc;
	const fv_config_node *spec = fv__pcase_get(f->pc, "kwargs.optimizer_init_fn");
	if (spec == NULL || fv_optim_config_parse(spec, &oc) != FV_OK) {
		fv__pcase_fail(f->pc, "kwargs.optimizer_init_fn: %s", spec ? fv_errmsg() : "missing");
		return;
	}
	fv_tensor *input = fv__pcase_input(f->pc, f->ctx, "input.stimulus", false);
	fv_tensor *stimulus = input ? fv_tensor_clone(input) : NULL;
	traces tr = {.stim_numel = input ? input->numel : 0};
	fv_optimize_args args = {.struct_size = sizeof args,
	                         .model = f->model,
	                         .objective = objective,
	                         .stopper = stopper,
	                         .optimizer = &oc,
	                         .n_penalties = n_pen,
	                         .penalties = pen,
	                         .n_postprocessors = n_post,
	                         .postprocessors = post,
	                         .on_iteration = record,
	                         .ud = &tr};
	if (stimulus == NULL)
		fv__pcase_fail(f->pc, "input.stimulus: %s", fv_errmsg());
	else if (fv_optimize_stimulus(stimulus, &args, NULL) != FV_OK)
		fv__pcase_fail(f->pc, "%s", fv_errmsg());
	else
		compare_traces(f, &tr, stimulus);
	compare_kernels(f, n_post, post);
	free(tr.objective);
	free(tr.loss);
	free(tr.stimulus);
	fv_tensor_free(stimulus);
}

static void run_optimize(isflow *f)
{
	fv_module *pen[MAX_STAGE] = {0}, *post[MAX_STAGE] = {0};
	fv_module *objective = NULL, *stopper = NULL;
	const fv_config_node *o = fv__pcase_get(f->pc, "kwargs.objective");
	const fv_config_node *s = fv__pcase_get(f->pc, "kwargs.optimization_stopper");
	if (o == NULL || s == NULL)
		fv__pcase_fail(f->pc, "kwargs: objective and optimization_stopper are needed");
	else
		objective = build_spec(f, o, "kwargs.objective");
	if (objective != NULL)
		stopper = build_spec(f, s, "kwargs.optimization_stopper");
	size_t n_pen = stopper ? build_stage(f, "kwargs.stimulus_regularization_loss", pen) : 0;
	size_t n_post = stopper ? build_stage(f, "kwargs.stimulus_postprocessor", post) : 0;
	if (f->pc->n_failed == 0)
		optimize(f, objective, stopper, n_pen, pen, n_post, post);
	for (size_t i = 0; i < MAX_STAGE; i++) {
		fv_module_free(pen[i]);
		fv_module_free(post[i]);
	}
	fv_module_free(objective);
	fv_module_free(stopper);
}

/* ---- a stopper replaying losses --------------------------------------------------------- */

static void run_stopper(isflow *f, fv_module *stopper)
{
	fv_tensor *losses = fv__pcase_input(f->pc, f->ctx, "input.losses", false);
	if (losses == NULL)
		return;
	fv_tensor *flags = fv_ctx_zeros(f->ctx, 1, &losses->numel);
	int64_t first = -1;
	for (int64_t i = 0; flags != NULL && i < losses->numel; i++) {
		bool stop = fv_module_should_stop(stopper, losses->data[i]);
		flags->data[i] = stop ? 1 : 0;
		if (stop && first < 0)
			first = i;
	}
	fv__pcase_compare(f->pc, "output.early_stop_flags", flags);
	fv__pcase_compare(f->pc, "output.stop_iteration", fv_ctx_scalar(f->ctx, (fv_real)first));
	/* optimize_stimulus would run first + 1 iterations */
	const fv_config_node *n = fv__pcase_get(f->pc, "stops_after_iterations");
	int64_t after = 0;
	if (n != NULL && (fv_node_to_int(n, &after) != FV_OK || after != first + 1))
		fv__pcase_fail(f->pc, "stops_after_iterations is %lld, fovea's stopper stops after %lld",
		               (long long)after, (long long)first + 1);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void run(isflow *f)
{
	const char *target = text_at(f->pc, "target");
	if (target == NULL) {
		fv__pcase_fail(f->pc, "%s: no 'target'", f->pc->yaml_path);
		return;
	}
	const fv_component *c = fv_registry_find(f->reg, target, NULL);
	if (c != NULL && c->kind == FV_KIND_STOPPER) {
		fv_module *stopper = build_named(f, "target", "kwargs");
		if (stopper != NULL)
			run_stopper(f, stopper);
		fv_module_free(stopper);
		return;
	}
	if (!build_model(f))
		return;
	if (ends_with(target, "optimize_stimulus")) {
		run_optimize(f);
	} else if (c != NULL && c->kind == FV_KIND_OBJECTIVE) {
		fv_module *objective = build_named(f, "target", "kwargs");
		if (objective != NULL)
			run_objective(f, objective);
		fv_module_free(objective);
	} else {
		fv__pcase_fail(f->pc, "in-silico case with target '%s': expected optimize_stimulus, an "
		                      "objective or a stopper",
		               target);
		return;
	}
	fv_module_foreach_tensor(f->model_module, compare_param, f->pc);
}

void fv__parity_insilico(struct fv_pcase *pc, fv_registry *reg)
{
	isflow f = {.pc = pc, .reg = reg, .ctx = fv_ctx_new()};
	if (f.ctx == NULL)
		fv__pcase_fail(pc, "%s", fv_errmsg());
	else
		run(&f);
	fv_model_free(f.model);
	fv_module_free(f.model_module);
	fv_ctx_free(f.ctx);
	fv__pcase_check_all_compared(pc);
}
