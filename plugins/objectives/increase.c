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
#include <stdlib.h>
#include <string.h>

#include "objective_common.h"

#define NAME "IncreaseObjective"

typedef struct increase_opts {
	fv_int_list neuron_indices;
	const char *data_key;
	const fv_config_node *response_reducer;
} increase_opts;

#define OPT(field) offsetof(increase_opts, field)

static const fv_option increase_options[] = {
	{"neuron_indices", FV_OPT_INT_LIST, OPT(neuron_indices), NULL, 0, 0,
	 FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST, NULL,
	 "the neuron (or neurons, averaged) whose response is increased"},
	{"data_key", FV_OPT_STRING, OPT(data_key), NULL, 0, 0, FV_OPT_REQUIRED | FV_OPT_NULLABLE,
	 NULL, "the session the neurons belong to (null: the model's default output)"},
	{"response_reducer", FV_OPT_NODE, OPT(response_reducer), NULL, 0, 0, FV_OPT_REQUIRED, NULL,
	 "a reducer spec (e.g. SliceMeanReducer) turning the response trace into a score"},
	{NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

typedef struct increase {
	size_t n_neurons;
	int64_t *neurons;
	char *data_key;      /* NULL: none */
	fv_module *reducer;  /* child "response_reducer" */
} increase;

static void increase_destroy(fv_module *m)
{
	increase *o = fv_module_priv(m);
	if (o == NULL)
		return;
	free(o->neurons);
	free(o->data_key);
	free(o);
	fv_module_set_priv(m, NULL);
}

static fv_status increase_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	const increase_opts *io = opts;
	if (io->neuron_indices.n == 0)
		return fv_error(FV_ERR_CONFIG, NAME ": neuron_indices: the list is empty");
	increase *o = calloc(1, sizeof *o);
	if (o == NULL)
		return fv_error(FV_ERR_NOMEM, NAME ": out of memory");
	fv_module_set_priv(m, o);
	o->n_neurons = io->neuron_indices.n;
	o->neurons = malloc(o->n_neurons * sizeof *o->neurons);
	o->data_key = io->data_key != NULL ? strdup(io->data_key) : NULL;
	if (o->neurons == NULL || (io->data_key != NULL && o->data_key == NULL))
		return fv_error(FV_ERR_NOMEM, NAME ": out of memory");
	memcpy(o->neurons, io->neuron_indices.v, o->n_neurons * sizeof *o->neurons);
	return obj_build_reducer(m, NAME, io->response_reducer, args, &o->reducer);
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
	fv_tensor *selected = obj_select(ctx, NAME, "neuron", responses, 1, o->n_neurons, o->neurons);
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
	.options_size = sizeof(increase_opts),
	.create = increase_create,
	.destroy = increase_destroy,
	.objective = increase_objective,
};

FV_PLUGIN_DEFINE("objectives-increase", &increase_component);
