/*
** inner_neuron.c: InnerNeuronVisualizationObjective, the stimulus an inner
** unit of the model likes (openretina.insilico.stimulus_optimization.
** objective.InnerNeuronVisualizationObjective).
**
**   out       = the output of `layer` (captured during model(stimulus)),
**               channel `channel`: (N, T, H, W)
**   trace     = out[..., H // 2, W // 2].mean(0)      the central unit
**   objective = response_reducer(trace)
**
** openretina hooks every submodule and selects one with
** set_layer_channel(layer, channel); here both are options.  Layer names
** are module paths below the model, dotted ("core.features.layer1.conv")
** or as openretina's hook keys ("core_features_layer1_conv"); which names
** a model produces is up to its plugins (see fv_module_capture()).
*/
#include <stddef.h>

#include "objective_common.h"

#define NAME "InnerNeuronVisualizationObjective"

typedef struct inner {
	const char *data_key;                   /* NULL: none */
	const fv_config_node *response_reducer; /* its spec, during create() */
	const char *layer;                      /* NULL: unset */
	int64_t channel;                        /* < 0: unset */
	fv_module *reducer;                     /* child "response_reducer" */
} inner;

static const fv_option inner_options[] = {
	FV_OPT("data_key", STRING, inner, data_key, NULL,
	       "the session whose readout the forward goes through (null: the default)",
	       .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	FV_OPT("response_reducer", NODE, inner, response_reducer, NULL,
	       "a reducer spec (e.g. SliceMeanReducer) turning the unit's trace into a score",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("layer", STRING, inner, layer, "null",
	       "the intermediate output, e.g. core.features.layer1.conv (set_layer_channel)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("channel", INT, inner, channel, "-1",
	       "the channel of that output (set_layer_channel; -1: unset)"),
	{0},
};

static fv_status inner_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	inner *o = fv_module_priv(m);
	return obj_build_reducer(m, NAME, o->response_reducer, args, &o->reducer);
}

/* out[:, channel][..., H // 2, W // 2].mean(0) */
static fv_tensor *central_trace(fv_ctx *ctx, const inner *o, fv_tensor *out)
{
	if (out->ndim < 4) {
		fv_error(FV_ERR_SHAPE, NAME ": layer '%s' output %s has no (batch, channel, ..., height, "
		                       "width) dims",
		         o->layer, fv_shape_str(out->ndim, out->shape));
		return NULL;
	}
	if (o->channel >= out->shape[1]) {
		fv_error(FV_ERR_ARG, NAME ": channel %lld is out of range: layer '%s' has %lld channels",
		         (long long)o->channel, o->layer, (long long)out->shape[1]);
		return NULL;
	}
	int nd = out->ndim;
	int64_t y = out->shape[nd - 2] / 2, x = out->shape[nd - 1] / 2;
	fv_tensor *t = fv_slice(ctx, out, 1, o->channel, o->channel + 1, 1);
	t = fv_slice(ctx, t, nd - 2, y, y + 1, 1);
	t = fv_slice(ctx, t, nd - 1, x, x + 1, 1);
	int64_t shape[FV_MAX_DIMS];
	shape[0] = out->shape[0];
	for (int d = 2; d < nd - 2; d++)
		shape[d - 1] = out->shape[d];
	const int batch_axis = 0;
	return fv_mean(ctx, fv_reshape(ctx, t, nd - 3, shape), 1, &batch_axis, false);
}

static fv_tensor *inner_objective(fv_module *m, fv_ctx *ctx, fv_model *model, fv_tensor *stimulus)
{
	const inner *o = fv_module_priv(m);
	if (o->layer == NULL || o->layer[0] == '\0' || o->channel < 0) {
		fv_error(FV_ERR_ARG, NAME ": layer and channel are not set: give both options (openretina's "
		                     "set_layer_channel)");
		return NULL;
	}
	if (model == NULL) {
		fv_error(FV_ERR_ARG, NAME ": no model given");
		return NULL;
	}
	fv_tensor *out = NULL;
	if (fv_model_forward_capture(model, ctx, stimulus, o->data_key, o->layer, &out) == NULL) {
		fv_error_prefix(NAME ": ");
		return NULL;
	}
	return obj_reduce(ctx, NAME, o->reducer, central_trace(ctx, o, out));
}

static const char *const inner_names[] = {
	NAME,
	"openretina.insilico.stimulus_optimization.objective.InnerNeuronVisualizationObjective",
	NULL,
};

static const fv_component inner_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_OBJECTIVE,
	.names = inner_names,
	.doc = "increase the reduced response of the central unit of one channel of an inner layer",
	.options = inner_options,
	.priv_size = sizeof(inner),
	.create = inner_create,
	.objective = inner_objective,
};

FV_PLUGIN_DEFINE("objectives-inner-neuron", &inner_component);
