/*
** parity.c: running a reference case the way openretina computed it.
**
** The flow is chosen by what the case stores, not by its name, so new
** cases of the same kinds need no code:
**   output.loss         a loss: loss(input.output, input.target) with any
**                       other input.* as its extra named inputs
**   output.regularizer  without output.y, for a REGULARIZER component:
**                       penalty(input.x, avg)
**   otherwise           a module: forward per data key (forward_kwargs
**                       data_key may be a list: multi-session), then
**                       regularizer, then backward of
**                       L = sum_k sum(y_k * upstream_k) + regularizer_k.
**   key `trainer`       a core + readout training step (train.h), norm
**                       clipping and one optimizer step; with micro-batches
**                       (input.x.mb0, ...) accumulated as Lightning's
**                       accumulate_grad_batches does.
** Scheduler cases (output.lr) run in lr_parity.c.
** In-silico cases (keys `model`, `stops_after_iterations`) have their own
** flows in insilico_parity.c: an optimize_stimulus run, an objective and
** its stimulus gradient, or a stopper replaying losses.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/optim.h"
#include "fovea/trainer.h"
#include "fovea/fovea.h"
#include "parity_case.h"

#define MAX_KEYS 16

typedef struct flow {
	fv_pcase *pc;
	fv_registry *reg;
	fv_module *m;
	fv_ctx *ctx;
	fv_forward_args fa;
	fv_tensor *loss;          /* L, accumulated */
	fv_tensor *y;             /* the last forward's output (train_total_loss) */
} flow;

static const char *text_at(const fv_pcase *pc, const char *path)
{
	const fv_config_node *n = fv__pcase_get(pc, path);
	return n ? fv_node_text(n) : NULL;
}

static bool flag_at(const fv_pcase *pc, const char *path, bool dflt)
{
	const fv_config_node *n = fv__pcase_get(pc, path);
	bool v = dflt;
	if (n != NULL && !fv_node_is_null(n))
		fv_node_to_bool(n, &v);
	return v;
}

static fv_reduction reduction_of(const fv_pcase *pc)
{
	const fv_config_node *n = fv__pcase_get(pc, "regularizer_kwargs.reduction");
	if (n == NULL)
		return FV_REDUCE_DEFAULT;
	if (fv_node_is_null(n))
		return FV_REDUCE_NONE;
	return strcmp(fv_node_text(n), "mean") == 0 ? FV_REDUCE_MEAN : FV_REDUCE_SUM;
}

static void add_to_loss(flow *f, fv_tensor *term)
{
	f->loss = f->loss ? fv_add(f->ctx, f->loss, term) : term;
}

static fv_tensor *weighted_sum(flow *f, fv_tensor *y, const char *upstream_name)
{
	fv_tensor *up = fv__pcase_input(f->pc, f->ctx, upstream_name, false);
	if (up == NULL)
		return NULL;
	return fv_sum_all(f->ctx, fv_mul(f->ctx, y, up));
}

static fv_module *build(flow *f)
{
	const char *target = text_at(f->pc, "target");
	if (target == NULL) {
		fv__pcase_fail(f->pc, "%s: no 'target'", f->pc->yaml_path);
		return NULL;
	}
	const fv_component *c = fv_registry_find(f->reg, target, NULL);
	if (c == NULL) {
		const char *near = fv_registry_closest(f->reg, target);
		fv__pcase_fail(f->pc, "no component named '%s' is registered%s%s%s", target,
		               near ? " (closest: '" : "", near ? near : "", near ? "')" : "");
		return NULL;
	}
	fv_build_args args = {.struct_size = sizeof args, .registry = f->reg};
	fv_config *derived;
	const fv_config_node *kwargs = fv__pcase_kwargs(f->pc, &derived);
	if (kwargs == NULL && derived == NULL && f->pc->n_failed > 0)
		return NULL;
	fv_module *m = fv_instantiate_component(c, kwargs, &args, "");
	if (m == NULL)
		fv__pcase_fail(f->pc, "building %s: %s", target, fv_errmsg());
	fv_config_free(derived);
	return m;
}

/* ---- the flows -------------------------------------------------------------- */

/* A loss's inputs beyond output, target and the upstream: openretina's
** extra forward arguments (group_assignment, pre_ca), by name. */
typedef struct loss_inputs {
	size_t n;
	const char *names[MAX_KEYS];
	fv_tensor *values[MAX_KEYS];
} loss_inputs;

static bool is_extra_input(const char *name)
{
	return strncmp(name, "input.", 6) == 0 && strcmp(name, "input.output") != 0 &&
	       strcmp(name, "input.target") != 0 && strncmp(name, "input.upstream", 14) != 0;
}

static void load_loss_inputs(flow *f, loss_inputs *li)
{
	size_t n = fv_safetensors_count(f->pc->st);
	li->n = 0;
	for (size_t i = 0; i < n && li->n < MAX_KEYS; i++) {
		const char *name = fv_safetensors_at(f->pc->st, i)->name;
		if (!is_extra_input(name))
			continue;
		char grad[300];
		snprintf(grad, sizeof grad, "grad.%s", name);
		li->names[li->n] = name + 6;
		li->values[li->n] = fv__pcase_input(f->pc, f->ctx, name, fv__pcase_has(f->pc, grad));
		li->n++;
	}
}

static void compare_loss_input_grads(flow *f, const loss_inputs *li)
{
	for (size_t i = 0; i < li->n; i++) {
		char grad[300];
		snprintf(grad, sizeof grad, "grad.input.%s", li->names[i]);
		if (li->values[i] != NULL)
			fv__pcase_compare_if_present(f->pc, grad, li->values[i]->grad);
	}
}

static void run_loss(flow *f)
{
	fv_tensor *out = fv__pcase_input(f->pc, f->ctx, "input.output", true);
	fv_tensor *target = fv__pcase_input(f->pc, f->ctx, "input.target", true);
	if (out == NULL || target == NULL)
		return;
	loss_inputs li;
	load_loss_inputs(f, &li);
	const fv_loss_extras extras = {li.n, li.names, li.values};
	fv_tensor *loss = fv_module_loss_with(f->m, f->ctx, out, target, &extras);
	fv__pcase_compare(f->pc, "output.loss", loss);
	if (loss == NULL)
		return;
	f->loss = loss->numel == 1 && !fv__pcase_has(f->pc, "input.upstream")
	                  ? loss
	                  : weighted_sum(f, loss, "input.upstream");
	if (fv_backward(f->ctx, f->loss) != FV_OK) {
		fv__pcase_fail(f->pc, "backward: %s", fv_errmsg());
		return;
	}
	fv__pcase_compare_if_present(f->pc, "grad.input.output", out->grad);
	fv__pcase_compare_if_present(f->pc, "grad.input.target", target->grad);
	compare_loss_input_grads(f, &li);
}

static void run_penalty(flow *f)
{
	fv_tensor *x = fv__pcase_input(f->pc, f->ctx, "input.x", true);
	if (x == NULL)
		return;
	const fv_config_node *avg = fv__pcase_get(f->pc, "forward_kwargs.avg");
	if (avg != NULL)
		f->fa.reduction = flag_at(f->pc, "forward_kwargs.avg", false) ? FV_REDUCE_MEAN
		                                                               : FV_REDUCE_SUM;
	fv_tensor *r = fv_module_penalty(f->m, f->ctx, x, &f->fa);
	fv__pcase_compare(f->pc, "output.regularizer", r);
	if (r == NULL)
		return;
	if (fv_backward(f->ctx, r) != FV_OK) {
		fv__pcase_fail(f->pc, "backward: %s", fv_errmsg());
		return;
	}
	fv__pcase_compare_if_present(f->pc, "grad.input.x", x->grad);
}

static size_t data_keys(const fv_pcase *pc, const char **keys)
{
	const fv_config_node *n = fv__pcase_get(pc, "forward_kwargs.data_key");
	if (n == NULL || fv_node_is_null(n))
		return 0;
	if (fv_node_kind(n) == FV_NODE_SCALAR) {
		keys[0] = fv_node_text(n);
		return 1;
	}
	size_t k = fv_node_size(n);
	if (k > MAX_KEYS)
		k = MAX_KEYS;
	for (size_t i = 0; i < k; i++)
		keys[i] = fv_node_text(fv_node_at(n, i));
	return k;
}

typedef struct compare_state {
	fv_pcase *pc;
	const char *prefix; /* "output.param." or "output.buffer." or "grad.param." */
	bool grads;
} compare_state;

static int compare_module_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	compare_state *cs = ud;
	char key[512];
	snprintf(key, sizeof key, "%s%s", cs->prefix, name);
	if (!cs->grads) {
		fv__pcase_compare_if_present(cs->pc, key, t);
		return 0;
	}
	if (!is_param || !fv__pcase_has(cs->pc, key))
		return 0;
	if (t->grad != NULL) {
		fv__pcase_compare(cs->pc, key, t->grad);
	} else { /* not in the graph: openretina stores zeros */
		fv_tensor *zero = fv_tensor_new(t->ndim, t->shape);
		fv__pcase_compare(cs->pc, key, zero);
		fv_tensor_free(zero);
	}
	return 0;
}

static void compare_module(flow *f, const char *prefix, bool grads)
{
	compare_state cs = {f->pc, prefix, grads};
	fv_module_foreach_tensor(f->m, compare_module_tensor, &cs);
}

/* "output.y" for a single key, "output.y.session_1" for one of several. */
static const char *keyed(char *buf, size_t size, const char *base, const char *key, bool multi)
{
	if (multi)
		snprintf(buf, size, "%s.%s", base, key);
	else
		snprintf(buf, size, "%s", base);
	return buf;
}

static void forward_one(flow *f, fv_tensor *x, const char *key, bool multi)
{
	char yname[300], upname[300];
	f->fa.data_key = key;
	fv_tensor *y = fv_module_forward(f->m, f->ctx, x, &f->fa);
	f->y = y;
	fv__pcase_compare(f->pc, keyed(yname, sizeof yname, "output.y", key, multi), y);
	keyed(upname, sizeof upname, "input.upstream", key, multi);
	if (y != NULL && fv__pcase_has(f->pc, upname))
		add_to_loss(f, weighted_sum(f, y, upname));
}

static void regularize_one(flow *f, const char *key, bool multi)
{
	char regname[300];
	f->fa.data_key = key;
	f->fa.reduction = reduction_of(f->pc);
	fv_tensor *r = fv_module_regularizer(f->m, f->ctx, &f->fa);
	fv__pcase_compare(f->pc, keyed(regname, sizeof regname, "output.regularizer", key, multi), r);
	if (r != NULL && flag_at(f->pc, "regularizer_in_loss", false))
		add_to_loss(f, fv_sum_all(f->ctx, r));
}

/* ---- output.train_total_loss (SingleCellSeparatedLNP cases) -----------------
** The total openretina's training_step logs: loss_fn(y, input.target) +
** regularizer(), loss_fn being the case's `loss` kwarg or PoissonLoss3d.
** Evaluated without grad on the flow's forward output: not part of L. */
static void compare_train_total_loss(flow *f)
{
	if (!fv__pcase_has(f->pc, "output.train_total_loss"))
		return;
	fv_tensor *target = fv__pcase_input(f->pc, f->ctx, "input.target", false);
	fv_module *loss_fn = fv_default_loss(f->reg, fv__pcase_get(f->pc, "kwargs"));
	fv_tensor *total = NULL;
	if (f->y != NULL && target != NULL && loss_fn != NULL) {
		bool was = fv_ctx_set_grad_enabled(f->ctx, false);
		total = fv_add(f->ctx, fv_module_loss(loss_fn, f->ctx, f->y, target),
		               fv_module_regularizer(f->m, f->ctx, &f->fa));
		fv_ctx_set_grad_enabled(f->ctx, was);
	}
	fv__pcase_compare(f->pc, "output.train_total_loss", total);
	fv_module_free(loss_fn);
}
/* ---- end of output.train_total_loss ----------------------------------------- */

/* output.y.member<i>: an ensemble's member i (the child members.<i>) on
** the same input, outside L. */
static void compare_members(flow *f, fv_tensor *x, const char *key)
{
	bool was = fv_ctx_set_grad_enabled(f->ctx, false);
	for (int i = 0;; i++) {
		char out[64], child[64];
		snprintf(out, sizeof out, "output.y.member%d", i);
		snprintf(child, sizeof child, "members.%d", i);
		if (!fv__pcase_has(f->pc, out))
			break;
		fv_module *member = fv_module_child(f->m, child);
		f->fa.data_key = key;
		fv__pcase_compare(f->pc, out,
		                  member ? fv_module_forward(member, f->ctx, x, &f->fa) : NULL);
	}
	fv_ctx_set_grad_enabled(f->ctx, was);
}

static void run_module(flow *f)
{
	const char *keys[MAX_KEYS];
	size_t n_keys = data_keys(f->pc, keys);
	bool multi = n_keys > 1;
	const char *single = n_keys == 1 ? keys[0] : NULL;
	fv_tensor *x = fv__pcase_input(f->pc, f->ctx, "input.x", true);
	if (x == NULL)
		return;
	const fv_config_node *sample = fv__pcase_get(f->pc, "forward_kwargs.sample");
	if (sample != NULL && !fv_node_is_null(sample))
		f->fa.sample = flag_at(f->pc, "forward_kwargs.sample", false);
	f->fa.crop_input = flag_at(f->pc, "crop_input_before_forward", false);
	if (fv__pcase_has(f->pc, "input.conditioning")) /* ConditionedGRUCore */
		f->fa.conditioning = fv__pcase_input(f->pc, f->ctx, "input.conditioning", true);
	for (size_t k = 0; k < (multi ? n_keys : 1); k++)
		forward_one(f, x, multi ? keys[k] : single, multi);
	compare_members(f, x, multi ? NULL : single);
	compare_module(f, "output.param.", false);
	compare_module(f, "output.buffer.", false);
	/* a multi-session readout has a regularizer per key; a core one for all */
	if (multi && !fv__pcase_has(f->pc, "output.regularizer"))
		for (size_t k = 0; k < n_keys; k++)
			regularize_one(f, keys[k], true);
	else if (fv__pcase_has(f->pc, "output.regularizer"))
		regularize_one(f, single, false);
	compare_train_total_loss(f);
	if (f->loss != NULL) {
		if (fv_backward(f->ctx, f->loss) != FV_OK)
			fv__pcase_fail(f->pc, "backward: %s", fv_errmsg());
		compare_module(f, "grad.param.", true);
		fv__pcase_compare_if_present(f->pc, "grad.input.x", x->grad);
		if (f->fa.conditioning != NULL)
			fv__pcase_compare_if_present(f->pc, "grad.input.conditioning",
			                             f->fa.conditioning->grad);
	}
	/* output.y_all: every session; output.y_default: a core without data_key */
	const char *no_key_outputs[2] = {"output.y_all", "output.y_default"};
	for (int i = 0; i < 2; i++) {
		if (!fv__pcase_has(f->pc, no_key_outputs[i]))
			continue;
		bool was = fv_ctx_set_grad_enabled(f->ctx, false);
		f->fa.data_key = NULL;
		fv__pcase_compare(f->pc, no_key_outputs[i], fv_module_forward(f->m, f->ctx, x, &f->fa));
		fv_ctx_set_grad_enabled(f->ctx, was);
	}
}
/* Any other output.X is module state after the forward, e.g.
** CorrelationLoss3d's _per_neuron_correlations (stored without the
** underscore of openretina's private attribute). */
static void compare_module_state(flow *f)
{
	size_t n = fv_safetensors_count(f->pc->st);
	for (size_t i = 0; i < n; i++) {
		const char *name = fv_safetensors_at(f->pc->st, i)->name;
		if (f->pc->checked[i] || strncmp(name, "output.", 7) != 0)
			continue;
		char priv[300];
		snprintf(priv, sizeof priv, "_%s", name + 7);
		fv_tensor *t = fv_module_tensor(f->m, name + 7);
		if (t == NULL)
			t = fv_module_tensor(f->m, priv);
		if (t != NULL)
			fv__pcase_compare(f->pc, name, t);
	}
}

/* One optimisation step of openretina's Lightning loop: training_step,
** backward of the total, clip_grad_norm_ (trainer.gradient_clip_val), the
** optimizer's step. */
static void clip_and_step(flow *f)
{
	size_t n = 0;
	fv_tensor **params = fv_module_params(f->m, &n);
	double clip = 0;
	const fv_config_node *c = fv__pcase_get(f->pc, "trainer.gradient_clip_val");
	if (c != NULL && !fv_node_is_null(c))
		fv_node_to_double(c, &clip);
	const char *algorithm = text_at(f->pc, "trainer.gradient_clip_algorithm");
	if (clip > 0 && algorithm != NULL && strcmp(algorithm, "value") == 0) {
		fv_clip_grad_value(n, params, clip);
		compare_module(f, "clipped_grad.param.", true);
	} else if (clip > 0) {
		fv_tensor *norm = fv_ctx_scalar(f->ctx, (fv_real)fv_clip_grad_norm(n, params, clip));
		fv__pcase_compare_if_present(f->pc, "output.grad_norm_before_clip", norm);
		compare_module(f, "clipped_grad.param.", true);
	}
	/* as the trainer: AdamW at the model's learning_rate unless an optimizer is given */
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	const fv_config_node *lr = fv__pcase_get(f->pc, "kwargs.learning_rate");
	if (lr != NULL)
		fv_node_to_double(lr, &oc.lr);
	const fv_config_node *spec = fv__pcase_get(f->pc, "kwargs.optimizer");
	fv_optimizer *opt = NULL;
	if ((spec != NULL && !fv_node_is_null(spec) && fv_optim_config_parse(spec, &oc) != FV_OK) ||
	    (opt = fv_optimizer_new(&oc, n, params)) == NULL || fv_optimizer_step(opt) != FV_OK) {
		fv__pcase_fail(f->pc, "optimizer: %s", fv_errmsg());
	} else {
		fv_module_after_optimizer_step(f->m);
		compare_module(f, "step1.param.", false);
	}
	fv_optimizer_free(opt);
	free(params);
}

/* The case's kwargs with the model's `_target_`, so that the losses default
** as the model declares them (fv_default_loss). */
static fv_config *model_spec(const fv_pcase *pc)
{
	const fv_config_node *kw = fv__pcase_get(pc, "kwargs");
	char *yaml = kw ? fv_node_to_yaml(kw) : NULL;
	const char *target = text_at(pc, "target");
	size_t len = yaml ? strlen(yaml) + strlen(target ? target : "") + 32 : 0;
	char *text = len ? malloc(len) : NULL;
	fv_config *cfg = NULL;
	if (text != NULL) {
		bool named = fv_node_get(kw, "_target_") != NULL || target == NULL;
		snprintf(text, len, "%s%s%s%s", named ? "" : "_target_: '", named ? "" : target,
		         named ? "" : "'\n", yaml);
		cfg = fv_config_load_derived(text, strlen(text), kw);
	}
	free(text);
	free(yaml);
	return cfg;
}

static void run_train_step(flow *f)
{
	fv_tensor *x = fv__pcase_input(f->pc, f->ctx, "input.x", true);
	fv_tensor *target = fv__pcase_input(f->pc, f->ctx, "input.target", false);
	fv_config *spec = model_spec(f->pc);
	const fv_config_node *kw = spec ? fv_config_root(spec) : NULL;
	fv_module *loss_fn = kw ? fv_default_loss(f->reg, kw) : NULL;
	fv_module *eval_fn = kw ? fv_default_evaluation_loss(f->reg, kw) : NULL;
	fv_config_free(spec);
	fv_step_terms st;
	if (x == NULL || target == NULL || loss_fn == NULL || eval_fn == NULL ||
	    fv_core_readout_step(f->ctx, f->m, loss_fn, eval_fn, x, target,
	                         text_at(f->pc, "forward_kwargs.data_key"), &st) != FV_OK) {
		fv__pcase_fail(f->pc, "training step: %s", fv_errmsg());
	} else {
		fv__pcase_compare(f->pc, "output.y", st.output);
		/* a model with its own training_step (SingleCellSpatialContrast)
		** logs train_loss and train_correlation and has no regularizers */
		bool own = fv__pcase_has(f->pc, "output.train_loss");
		fv__pcase_compare(f->pc, own ? "output.train_loss" : "output.loss", st.loss);
		if (!own) {
			fv__pcase_compare(f->pc, "output.regularizer_core", st.reg_core);
			fv__pcase_compare(f->pc, "output.regularizer_readout", st.reg_readout);
			fv__pcase_compare(f->pc, "output.total_loss", st.total);
		}
		fv__pcase_compare_if_present(f->pc, own ? "output.train_correlation"
		                                        : "output.evaluation_loss", st.eval_loss);
		compare_module(f, "output.param.", false);
		compare_module(f, "output.buffer.", false);
		if (fv_backward(f->ctx, st.total) != FV_OK)
			fv__pcase_fail(f->pc, "backward: %s", fv_errmsg());
		compare_module(f, "grad.param.", true);
		fv__pcase_compare_if_present(f->pc, "grad.input.x", x->grad);
		clip_and_step(f);
	}
	fv_module_free(loss_fn);
	fv_module_free(eval_fn);
}

/* ---- accumulated micro-batches (model_accumulate_grad_batches) ---------------
** Lightning's accumulate_grad_batches = k: each micro-batch j (input.x.mb<j>,
** input.target.mb<j>, session micro_batch_data_keys[j]) runs the training
** step and the backward of total / k; the gradients add up, then one clip
** and one optimizer step. */
static void compare_micro_batch(flow *f, const fv_step_terms *st, int j)
{
	static const char *const names[] = {"output.y", "output.loss", "output.regularizer_core",
	                                    "output.regularizer_readout", "output.total_loss"};
	const fv_tensor *terms[] = {st->output, st->loss, st->reg_core, st->reg_readout, st->total};
	for (int i = 0; i < 5; i++) {
		char key[128];
		snprintf(key, sizeof key, "%s.mb%d", names[i], j);
		fv__pcase_compare(f->pc, key, terms[i]);
	}
}

static bool micro_batch(flow *f, fv_module *loss_fn, int64_t k, int j, const char *session)
{
	char xname[64], tname[64];
	snprintf(xname, sizeof xname, "input.x.mb%d", j);
	snprintf(tname, sizeof tname, "input.target.mb%d", j);
	fv_ctx_reset(f->ctx);
	fv_tensor *x = fv__pcase_input(f->pc, f->ctx, xname, false);
	fv_tensor *target = fv__pcase_input(f->pc, f->ctx, tname, false);
	fv_step_terms st;
	if (x == NULL || target == NULL ||
	    fv_core_readout_step(f->ctx, f->m, loss_fn, NULL, x, target, session, &st) != FV_OK ||
	    fv_accumulate_backward(f->ctx, st.total, k) != FV_OK) {
		fv__pcase_fail(f->pc, "micro-batch %d: %s", j, fv_errmsg());
		return false;
	}
	compare_micro_batch(f, &st, j);
	return true;
}

static void run_accumulate(flow *f)
{
	const fv_config_node *keys = fv__pcase_get(f->pc, "micro_batch_data_keys");
	const fv_config_node *kn = fv__pcase_get(f->pc, "trainer.accumulate_grad_batches");
	int64_t k = 0;
	if (keys == NULL || kn == NULL || fv_node_to_int(kn, &k) != FV_OK || k < 1) {
		fv__pcase_fail(f->pc, "the case needs micro_batch_data_keys and "
		               "trainer.accumulate_grad_batches");
		return;
	}
	fv_module *loss_fn = fv_default_loss(f->reg, fv__pcase_get(f->pc, "kwargs"));
	bool ok = loss_fn != NULL;
	for (size_t j = 0; ok && j < fv_node_size(keys); j++)
		ok = micro_batch(f, loss_fn, k, (int)j, fv_node_text(fv_node_at(keys, j)));
	if (ok) {
		compare_module(f, "output.param.", false);
		compare_module(f, "output.buffer.", false);
		compare_module(f, "grad.param.", true);
		clip_and_step(f);
	} else if (loss_fn == NULL) {
		fv__pcase_fail(f->pc, "loss: %s", fv_errmsg());
	}
	fv_module_free(loss_fn);
}

/* ---- in-silico cases (insilico_parity.c) ------------------------------------ */
static bool is_insilico(const fv_pcase *pc)
{
	return fv__pcase_get(pc, "model") != NULL || fv__pcase_get(pc, "stops_after_iterations") != NULL;
}
/* ---- end of in-silico cases -------------------------------------------------- */

static void run_case(flow *f)
{
	if (fv__pcase_has(f->pc, "output.lr")) {
		fv__parity_lr_schedule(f->pc);
		return;
	}
	if (is_insilico(f->pc)) {
		fv__parity_insilico(f->pc, f->reg);
		return;
	}
	f->m = build(f);
	if (f->m == NULL)
		return;
	fv__pcase_load_state(f->pc, f->m);
	fv_module_set_training(f->m, text_at(f->pc, "mode") != NULL &&
	                                     strcmp(text_at(f->pc, "mode"), "train") == 0);
	const fv_component *c = fv_module_component(f->m);
	if (fv__pcase_get(f->pc, "trainer") != NULL && fv__pcase_has(f->pc, "input.x.mb0"))
		run_accumulate(f);
	else if (fv__pcase_get(f->pc, "trainer") != NULL)
		run_train_step(f);
	else if (fv__pcase_has(f->pc, "output.loss"))
		run_loss(f);
	else if (c->kind == FV_KIND_REGULARIZER && !fv__pcase_has(f->pc, "output.y"))
		run_penalty(f);
	else
		run_module(f);
	compare_module_state(f);
	fv__pcase_check_all_compared(f->pc);
}

fv_status fv_parity_run(fv_registry *reg, const char *path, FILE *out)
{
	fv_pcase pc;
	fv_status rc = fv__pcase_open(&pc, path, out);
	if (rc != FV_OK) {
		char why[512];
		snprintf(why, sizeof why, "%s", fv_errmsg());
		if (out)
			fprintf(out, "FAIL %s: %s\n", pc.name, why);
		fv__pcase_close(&pc);
		return fv_error(rc, "%s", why);
	}
	if (out)
		fprintf(out, "%s (%s)\n", pc.name, text_at(&pc, "target") ? text_at(&pc, "target") : "?");
	flow f = {.pc = &pc, .reg = reg, .fa = FV_FORWARD_ARGS_INIT};
	f.ctx = fv_ctx_new();
	if (f.ctx != NULL)
		run_case(&f);
	else
		fv__pcase_fail(&pc, "%s", fv_errmsg());
	fv_module_free(f.m);
	fv_ctx_free(f.ctx);
	rc = pc.n_failed ? FV_ERR_ARG : FV_OK;
	if (out) {
		if (rc == FV_OK)
			fprintf(out, "PASS %s\n", pc.name);
		else
			fprintf(out, "FAIL %s: %s\n", pc.name, pc.why);
	}
	if (rc != FV_OK)
		fv_error(rc, "%s: %s", pc.name, pc.why);
	fv__pcase_close(&pc);
	return rc;
}
