/*
** train_step.c: openretina's BaseCoreReadout.training_step (see train.h),
** and the small helpers around it.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/trainer.h"
#include "base/base_internal.h"

static fv_tensor *regularizer_of(fv_module *model, const char *child, fv_ctx *ctx,
                                 const char *session)
{
	fv_module *m = fv_module_child(model, child);
	if (m == NULL) {
		fv_error(FV_ERR_ARG, "model '%s' has no '%s' child: a core + readout model is needed",
		         fv_module_component(model)->names[0], child);
		return NULL;
	}
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = session;
	return fv_sum_all(ctx, fv_module_regularizer(m, ctx, &fa));
}

fv_status fv_core_readout_step(fv_ctx *ctx, fv_module *model, fv_module *loss_fn,
                               fv_module *eval_loss_fn, fv_tensor *x, fv_tensor *target,
                               const char *session, fv_step_terms *out)
{
	memset(out, 0, sizeof *out);
	const fv_component *c = fv_module_component(model);
	if (c->training_step != NULL) /* the registry's copy is full-size */
		return c->training_step(model, ctx, loss_fn, eval_loss_fn, x, target, session, out);
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = session;
	out->output = fv_module_forward(model, ctx, x, &fa);
	if (out->output == NULL)
		return fv_errcode();
	out->loss = fv_module_loss(loss_fn, ctx, out->output, target);
	out->reg_core = regularizer_of(model, "core", ctx, session);
	out->reg_readout = regularizer_of(model, "readout", ctx, session);
	out->total = fv_add(ctx, fv_add(ctx, out->loss, out->reg_core), out->reg_readout);
	if (out->total == NULL)
		return fv_errcode();
	return fv_step_evaluate(ctx, eval_loss_fn, target, out);
}

fv_status fv_step_evaluate(fv_ctx *ctx, fv_module *eval_loss_fn, fv_tensor *target,
                           fv_step_terms *out)
{
	if (eval_loss_fn == NULL)
		return FV_OK;
	bool was = fv_ctx_set_grad_enabled(ctx, false);
	out->eval_loss = fv_module_loss(eval_loss_fn, ctx, out->output, target);
	fv_ctx_set_grad_enabled(ctx, was);
	return out->eval_loss != NULL ? FV_OK : fv_errcode();
}

/* The default the model's own option table gives `key` (a `_target_` map
** such as SpatialContrastCoreReadout's PoissonLoss3d(avg=True)), or NULL. */
static const char *model_default(fv_registry *reg, const fv_config_node *model_spec,
                                 const char *key)
{
	const fv_config_node *t = model_spec ? fv_node_get(model_spec, "_target_") : NULL;
	const fv_component *c = t ? fv_registry_find(reg, fv_node_text(t), NULL) : NULL;
	for (const fv_option *o = c ? c->options : NULL; o != NULL && o->name != NULL; o++)
		if (strcmp(o->name, key) == 0 && o->type == FV_OPT_NODE && o->def != NULL &&
		    strcmp(o->def, "null") != 0)
			return o->def;
	return NULL;
}

/* Lightning's ClosureResult normalises the training step's loss by
** accumulate_grad_batches before the backward. */
fv_status fv_accumulate_backward(fv_ctx *ctx, fv_tensor *total, int64_t accumulate)
{
	if (accumulate < 1)
		return fv_error(FV_ERR_ARG, "accumulate_grad_batches %lld: 1 or more",
		                (long long)accumulate);
	if (accumulate > 1)
		total = fv_mul_scalar(ctx, total, 1.0 / (double)accumulate);
	return fv_backward(ctx, total);
}

/* Lightning's _should_accumulate, with the batch counted from 0 within
** the epoch: a window of k batches ends at every k-th batch and at the
** epoch's last. */
bool fv_accumulation_opens(int64_t i, int64_t accumulate)
{
	return i % accumulate == 0;
}

bool fv_accumulation_closes(int64_t i, int64_t n, int64_t accumulate)
{
	return (i + 1) % accumulate == 0 || i + 1 == n;
}

static fv_module *loss_module(fv_registry *reg, const fv_config_node *model_spec, const char *key,
                              const char *target, const char *yaml)
{
	const fv_config_node *spec = model_spec ? fv_node_get(model_spec, key) : NULL;
	fv_build_args args = {.struct_size = sizeof args, .registry = reg};
	if (spec != NULL && !fv_node_is_null(spec))
		return fv_instantiate(reg, spec, &args);
	const char *def = spec == NULL ? model_default(reg, model_spec, key) : NULL;
	if (def == NULL)
		return fv_instantiate_named(reg, target, yaml, &args, key);
	fv_config *cfg = fv_config_load_string(def, strlen(def), key);
	fv_module *m = cfg ? fv_instantiate(reg, fv_config_root(cfg), &args) : NULL;
	fv_config_free(cfg);
	return m;
}

fv_module *fv_default_loss(fv_registry *reg, const fv_config_node *model_spec)
{
	return loss_module(reg, model_spec, "loss", "PoissonLoss3d", NULL);
}

fv_module *fv_default_evaluation_loss(fv_registry *reg, const fv_config_node *model_spec)
{
	return loss_module(reg, model_spec, "evaluation_loss", "CorrelationLoss3d",
	                   "avg: true\nnegate: false\n");
}

typedef struct param_list {
	fv_tensor **items;
	size_t n, cap;
	bool failed;
} param_list;

static int collect_param(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	param_list *l = ud;
	if (!is_param || !t->requires_grad)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		fv_tensor **grown = fv__realloc(l->items, cap * sizeof *grown);
		if (grown == NULL) {
			l->failed = true;
			return 1;
		}
		l->items = grown;
		l->cap = cap;
	}
	l->items[l->n++] = t;
	return 0;
}

fv_tensor **fv_module_params(const fv_module *m, size_t *n)
{
	param_list l = {0};
	fv_module_foreach_tensor(m, collect_param, &l);
	/* an empty array, not NULL, so that NULL always means a failure */
	if (!l.failed && l.items == NULL)
		l.failed = (l.items = fv__malloc(sizeof *l.items)) == NULL;
	if (l.failed) {
		free(l.items);
		fv_error(FV_ERR_NOMEM, "out of memory listing parameters");
		*n = 0;
		return NULL;
	}
	*n = l.n;
	return l.items;
}
