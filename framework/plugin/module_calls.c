/*
** module_calls.c: calling a module through its component's callbacks.
** Each call checks that the component has the slot, so a configuration that
** puts, say, a loss where a regularizer belongs gets a message, not a crash.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "fovea/fovea.h"
#include "plugin/plugin_internal.h"

static fv_status missing_slot(const fv_module *m, const char *slot)
{
	const fv_component *c = fv_module_component(m);
	return fv_error(FV_ERR_ARG, "%s '%s' (%s) has no %s", fv_kind_name(c->kind), c->names[0],
	                fv_module_name(m), slot);
}

fv_tensor *fv_module_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	const fv_component *c = fv_module_component(m);
	if (!FV__HAS_SLOT(c, penalty)) {
		missing_slot(m, "penalty");
		return NULL;
	}
	return c->penalty(m, ctx, x, fa);
}

fv_tensor *fv_module_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	const fv_component *c = fv_module_component(m);
	if (!FV__HAS_SLOT(c, loss)) {
		missing_slot(m, "loss");
		return NULL;
	}
	return c->loss(m, ctx, output, target);
}

fv_tensor *fv_module_loss_with(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target,
                               const fv_loss_extras *extras)
{
	const fv_component *c = fv_module_component(m);
	if (FV__HAS_SLOT(c, loss_with))
		return c->loss_with(m, ctx, output, target, extras);
	if (extras != NULL && extras->n > 0) {
		fv_error(FV_ERR_ARG, "%s '%s' (%s) takes only output and target, not '%s'",
		         fv_kind_name(c->kind), c->names[0], fv_module_name(m), extras->names[0]);
		return NULL;
	}
	return fv_module_loss(m, ctx, output, target);
}

void fv_module_after_optimizer_step(fv_module *m)
{
	const fv_component *c = fv_module_component(m);
	if (FV__HAS_SLOT(c, after_optimizer_step))
		c->after_optimizer_step(m);
}

fv_status fv_module_project(fv_module *m, fv_tensor *x)
{
	const fv_component *c = fv_module_component(m);
	return FV__HAS_SLOT(c, project) ? c->project(m, x) : missing_slot(m, "projection");
}

fv_status fv_module_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	const fv_component *c = fv_module_component(m);
	return FV__HAS_SLOT(c, initialize_bias) ? c->initialize_bias(m, mean_activity)
	                                    : missing_slot(m, "initialize_bias");
}

fv_status fv_module_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape, int *out_ndim,
                                 int64_t *out_shape)
{
	const fv_component *c = fv_module_component(m);
	return FV__HAS_SLOT(c, output_shape) ? c->output_shape(m, in_ndim, in_shape, out_ndim, out_shape)
	                                 : missing_slot(m, "output_shape");
}

bool fv_module_should_stop(fv_module *m, double loss)
{
	const fv_component *c = fv_module_component(m);
	return FV__HAS_SLOT(c, should_stop) ? c->should_stop(m, loss) : false;
}

/* The optional callbacks fail with FV_ERR_NOTFOUND: a caller such as a
** figure skips what the model cannot give. */
static fv_status missing_optional(const fv_module *m, const char *slot)
{
	const fv_component *c = fv_module_component(m);
	return fv_error(FV_ERR_NOTFOUND, "%s '%s' (%s) has no %s", fv_kind_name(c->kind),
	                c->names[0], fv_module_name(m), slot);
}

fv_status fv_module_neuron_positions(const fv_module *m, const char *session, int64_t n,
                                     double *row_col, int64_t map_hw[2])
{
	const fv_component *c = fv_module_component(m);
	return FV__HAS_SLOT(c, neuron_positions) ? c->neuron_positions(m, session, n, row_col, map_hw)
	                                         : missing_optional(m, "neuron_positions");
}

fv_status fv_module_first_layer_filters(const fv_module *m, fv_tensor **out)
{
	const fv_component *c = fv_module_component(m);
	*out = NULL;
	return FV__HAS_SLOT(c, first_layer_filters) ? c->first_layer_filters(m, out)
	                                            : missing_optional(m, "first_layer_filters");
}

fv_status fv_module_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out)
{
	const fv_component *c = fv_module_component(m);
	*out = NULL;
	if (FV__HAS_SLOT(c, layer_filters))
		return c->layer_filters(m, layer, out);
	if (layer == 0)
		return fv_module_first_layer_filters(m, out);
	return missing_optional(m, "layer_filters");
}

fv_status fv_module_linear_readout(fv_module *m, fv_ctx *ctx, const fv_tensor *x,
                                   fv_linear_readout *out)
{
	const fv_component *c = fv_module_component(m);
	*out = (fv_linear_readout){0};
	return FV__HAS_SLOT(c, linear_readout) ? c->linear_readout(m, ctx, x, out)
	                                       : missing_optional(m, "linear_readout");
}

fv_module *fv_instantiate_named(fv_registry *reg, const char *target, const char *yaml,
                                const fv_build_args *args, const char *instance_name)
{
	const fv_component *c = fv_registry_find(reg, target, NULL);
	if (c == NULL) {
		fv_error(FV_ERR_NOTFOUND, "component '%s' is not registered (needed by '%s')", target,
		         instance_name);
		return NULL;
	}
	fv_config *cfg = NULL;
	const fv_config_node *spec = NULL;
	if (yaml != NULL && yaml[0] != '\0') {
		cfg = fv_config_load_derived(yaml, strlen(yaml), NULL);
		if (cfg == NULL)
			return NULL;
		spec = fv_config_root(cfg);
	}
	fv_module *m = fv_instantiate_component(c, spec, args, instance_name);
	fv_config_free(cfg);
	return m;
}
