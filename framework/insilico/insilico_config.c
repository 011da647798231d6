/*
** insilico_config.c: the optimisation config of the in-silico pipeline:
** openretina's visualize_model_neurons choices as defaults, composition
** under a YAML file and overrides, and its completion for a loaded model.
**
** visualize_model_neurons uses SGD with lr 100, 10 iterations,
** SliceMeanReducer(axis 0, start 10, length 10), a norm/range projection
** and a 0.1 range penalty, written below as flow YAML per top-level key.
** For inner units it moves the reducer to the last 10 frames of the
** layer's output, which only the model knows: the default `start: null`
** stands for that.  The Hoefling et al. ranges it uses for 2-channel data
** describe one data set's normalisation, so min_max_values defaults to
** null, which becomes one unbounded [null, null] pair per channel of the
** model; its norm 5.0 is kept.
*/
#include <stdlib.h>
#include <string.h>

#include "insilico/insilico_internal.h"

#define REDUCER(start) \
	"response_reducer: {_target_: SliceMeanReducer, axis: 0, start: " start ", length: 10}}"

/* In this order, so that a recorded config lists the keys as before. */
static const struct {
	const char *key, *value;
} defaults[] = {
	{"min_max_values", "null"},
	{"time_steps", "50"},
	{"init_std", "0.1"},
	{"norm", "5.0"},
	{"optimizer", "{_target_: torch.optim.SGD, lr: 100.0}"},
	{"stopper", "{_target_: OptimizationStopper, max_iterations: 10}"},
	{"regularizers", "[{_target_: RangeRegularizationLoss, min_max_values: '${min_max_values}', "
	                 "max_norm: '${norm}', factor: 0.1}]"},
	{"postprocessors", "[{_target_: ChangeNormJointlyClipRangeSeparately, min_max_values: "
	                   "'${min_max_values}', norm: '${norm}'}]"},
};

static const char *const objective_defaults[] = {
	[FV_INSILICO_MEI] = "{_target_: IncreaseObjective, " REDUCER("10"),
	[FV_INSILICO_INNER_MEI] = "{_target_: InnerNeuronVisualizationObjective, " REDUCER("null"),
	[FV_INSILICO_MDS] = "{_target_: ContrastiveNeuronObjective, " REDUCER("10"),
};

/* Apply "++KEY=VALUE". */
static fv_status force_set(fv_config *cfg, const char *key, const char *value)
{
	size_t n = strlen(key) + strlen(value) + 4;
	char *arg = fv__malloc(n);
	if (arg == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory setting %s", key);
	snprintf(arg, n, "++%s=%s", key, value);
	fv_status st = fv_config_override(cfg, arg);
	free(arg);
	return st;
}

static fv_status set_default(fv_config *cfg, const char *key, const char *value)
{
	if (fv_node_get(fv_config_root(cfg), key) != NULL)
		return FV_OK;
	return force_set(cfg, key, value);
}

fv_status fv__ins_config_set(fv_config *cfg, const char *key, json_t *value)
{
	/* JSON is YAML flow syntax: a string comes out double-quoted and
	** escaped, so a session or layer name is never read as anything else */
	char *text = value ? json_dumps(value, JSON_ENCODE_ANY) : NULL;
	json_decref(value);
	if (text == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory setting %s", key);
	fv_status st = force_set(cfg, key, text);
	free(text);
	return st;
}

static bool kind_ok(fv_insilico_kind kind)
{
	return kind == FV_INSILICO_MEI || kind == FV_INSILICO_INNER_MEI || kind == FV_INSILICO_MDS;
}

fv_status fv__ins_config_defaults(fv_config *cfg, fv_insilico_kind kind)
{
	if (!kind_ok(kind))
		return fv_error(FV_ERR_ARG, "in silico: unknown kind %d (expected FV_INSILICO_MEI, "
		                "FV_INSILICO_INNER_MEI or FV_INSILICO_MDS)", (int)kind);
	fv_status st = FV_OK;
	for (size_t k = 0; st == FV_OK && k < sizeof defaults / sizeof *defaults; k++)
		st = set_default(cfg, defaults[k].key, defaults[k].value);
	return st == FV_OK ? set_default(cfg, "objective", objective_defaults[kind]) : st;
}

fv_config *fv_insilico_config_compose(fv_insilico_kind kind, const char *path, int n_overrides,
                                      const char *const *overrides)
{
	if (n_overrides > 0 && overrides == NULL) {
		fv_error(FV_ERR_ARG, "fv_insilico_config_compose: %d overrides given as NULL",
		         n_overrides);
		return NULL;
	}
	static const char empty[] = "{}";
	fv_config *cfg = path != NULL ? fv_config_compose(path, NULL, 0, NULL)
	                              : fv_config_load_string(empty, sizeof empty - 1, "<defaults>");
	fv_status st = cfg != NULL ? fv__ins_config_defaults(cfg, kind) : FV_ERR_CONFIG;
	for (int i = 0; st == FV_OK && i < n_overrides; i++)
		st = fv_config_override(cfg, overrides[i]);
	if (st != FV_OK) {
		fv_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* ---- completion for the model ----------------------------------------------------- */

static const char *text_of(const fv_config_node *n)
{
	return n != NULL && fv_node_text(n) != NULL ? fv_node_text(n) : "?";
}

static fv_status read_int(const fv_config *cfg, const char *key, int64_t lo, int64_t *out)
{
	const fv_config_node *n = fv_node_path(fv_config_root(cfg), key);
	if (fv_node_to_int(n, out) != FV_OK || *out < lo)
		return fv_error(FV_ERR_CONFIG, "%s: expected an integer >= %lld, got '%s'", key,
		                (long long)lo, text_of(n));
	return FV_OK;
}

static fv_status read_double(const fv_config *cfg, const char *key, double *out)
{
	const fv_config_node *n = fv_node_path(fv_config_root(cfg), key);
	if (fv_node_to_double(n, out) != FV_OK || !(*out >= 0))
		return fv_error(FV_ERR_CONFIG, "%s: expected a number >= 0, got '%s'", key, text_of(n));
	return FV_OK;
}

/* [[null, null], ...], one pair per channel. */
static json_t *unbounded_ranges(int64_t channels)
{
	json_t *a = json_array();
	for (int64_t c = 0; a != NULL && c < channels; c++)
		if (json_array_append_new(a, json_pack("[nn]")) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

fv_status fv__ins_config_complete(fv__ins *s)
{
	fv_status st = FV_OK;
	if (fv_node_is_null(fv_node_get(fv_config_root(s->cfg), "min_max_values")))
		st = fv__ins_config_set(s->cfg, "min_max_values",
		                        unbounded_ranges(s->info->input_shape[0]));
	if (st == FV_OK)
		st = fv_config_resolve(s->cfg);
	if (st == FV_OK)
		st = read_int(s->cfg, "time_steps", 1, &s->time_steps);
	if (st == FV_OK)
		st = read_double(s->cfg, "init_std", &s->init_std);
	if (st != FV_OK)
		return st;
	/* only for the progress line: a stopper without a bound shows none */
	const fv_config_node *mi = fv_node_path(fv_config_root(s->cfg), "stopper.max_iterations");
	if (mi == NULL || fv_node_to_int(mi, &s->max_iterations) != FV_OK) {
		s->max_iterations = 0;
		fv_clear_error();
	}
	return FV_OK;
}

fv_status fv__ins_config_inner_start(fv__ins *s)
{
	const fv_config_node *start =
		fv_node_path(fv_config_root(s->cfg), "objective.response_reducer.start");
	if (start == NULL || fv_node_kind(start) != FV_NODE_NULL)
		return FV_OK;
	int64_t length;
	fv_status st = read_int(s->cfg, "objective.response_reducer.length", 1, &length);
	if (st != FV_OK)
		return st;
	int64_t first = s->layer_frames > length ? s->layer_frames - length : 0;
	return fv__ins_config_set(s->cfg, "objective.response_reducer.start", json_integer(first));
}
