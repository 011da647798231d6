/*
** increase.c: IncreaseObjective, the most-exciting-input objective
** (openretina.insilico.stimulus_optimization.objective.IncreaseObjective).
**
**   responses = model(stimulus, data_key).squeeze(0)      (time, neurons)
**   objective = response_reducer(responses[:, neuron_indices].mean(-1))
**
** With a batch of one stimulus the squeeze leaves (time, neurons), and the
** selection is over neurons.  Like openretina, a larger batch is not
** squeezed and the selection then applies to axis 1 of (batch, time,
** neurons).
*/
#include <stddef.h>

#include "objective_common.h"

#define NAME "IncreaseObjective"

typedef struct increase {
	fv_int_list neuron_indices;
	const char *data_key;                   /* NULL: none */
	const fv_config_node *response_reducer; /* its spec, during create() */
	fv_module *reducer;                     /* child "response_reducer" */
} increase;

static const fv_option increase_options[] = {
	FV_OPT("neuron_indices", INT_LIST, increase, neuron_indices, NULL,
	       "the neuron (or neurons, averaged) whose response is increased",
	       .flags = FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("data_key", STRING, increase, data_key, NULL,
	       "the session the neurons belong to (null: the model's default output)",
	       .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	FV_OPT("response_reducer", NODE, increase, response_reducer, NULL,
	       "a reducer spec (e.g. SliceMeanReducer) turning the response trace into a score",
	       .flags = FV_OPT_REQUIRED),
	{0},
};

static fv_status increase_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	increase *o = fv_module_priv(m);
	if (o->neuron_indices.n == 0)
		return fv_error(FV_ERR_CONFIG, NAME ": neuron_indices: the list is empty");
	return obj_build_reducer(m, NAME, o->response_reducer, args, &o->reducer);
}

static fv_tensor *increase_objective(fv_module *m, fv_ctx *ctx, fv_model *model,
                                     fv_tensor *stimulus)
{
	const increase *o = fv_module_priv(m);
	fv_tensor *responses = obj_model_forward(ctx, NAME, model, stimulus, o->data_key);
	if (responses != NULL && responses->ndim < 2) {
		fv_error(FV_ERR_SHAPE, NAME ": expected responses (time, neurons), got %s",
		         fv_shape_str(responses->ndim, responses->shape));
		return NULL;
	}
	const int last = -1;
	fv_tensor *selected = obj_select(ctx, NAME, "neuron", responses, 1, o->neuron_indices.n,
	                                 o->neuron_indices.v);
	return obj_reduce(ctx, NAME, o->reducer, fv_mean(ctx, selected, 1, &last, false));
}

static const char *const increase_names[] = {
	NAME,
	"openretina.insilico.stimulus_optimization.objective.IncreaseObjective",
	"openretina.insilico.IncreaseObjective",
	NULL,
};

static const fv_component increase_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_OBJECTIVE,
	.names = increase_names,
	.doc = "increase the reduced mean response of some neurons (most exciting input)",
	.options = increase_options,
	.priv_size = sizeof(increase),
	.create = increase_create,
	.objective = increase_objective,
};

FV_PLUGIN_DEFINE("objectives-increase", &increase_component);
