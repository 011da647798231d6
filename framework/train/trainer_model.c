/*
** trainer_model.c: building the model for a data set, and rebuilding a
** checkpoint's model (see trainer.h), plus the data info of a fine-tuning
** run, which joins a checkpoint's sessions with the data's new ones.
**
** The model is instantiated the way openretina's train.py does it: the
** `model` map of the config, with n_neurons_dict set from the data and
** data_info (whose mean_activity_dict initialises the readout biases)
** passed along.  Both are added to a copy of the spec, as YAML flow text,
** so the model plugin receives exactly the keyword arguments Hydra gives
** UnifiedCoreReadout.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/trainer.h"
#include "base/base_internal.h"
#include "train/trainer_internal.h"

/* A session name as a YAML flow scalar: single-quoted, quotes doubled. */
static void put_name(fv__text *t, const char *s)
{
	fv__text_printf(t, "'");
	for (; *s; s++)
		fv__text_printf(t, *s == '\'' ? "''" : "%c", *s);
	fv__text_printf(t, "'");
}

static char *neurons_flow(const fv_data_info *info)
{
	fv__text t = {0};
	fv__text_printf(&t, "{");
	for (size_t i = 0; i < info->n_sessions; i++) {
		fv__text_printf(&t, i ? ", " : "");
		put_name(&t, info->sessions[i]);
		fv__text_printf(&t, ": %lld", (long long)info->n_neurons[i]);
	}
	fv__text_printf(&t, "}");
	return fv__text_take(&t, "n_neurons_dict");
}

static char *data_info_flow(const fv_data_info *info, const char *neurons)
{
	fv__text t = {0};
	fv__text_printf(&t, "{n_neurons_dict: %s, mean_activity_dict: {", neurons);
	bool first = true;
	for (size_t i = 0; info->mean_activity != NULL && i < info->n_sessions; i++) {
		const fv_tensor *m = info->mean_activity[i];
		if (m == NULL)
			continue;
		fv__text_printf(&t, first ? "" : ", ");
		put_name(&t, info->sessions[i]);
		fv__text_printf(&t, ": [");
		for (int64_t j = 0; j < m->numel; j++) /* %.9g: the same float32 back */
			fv__text_printf(&t, j ? ", %.9g" : "%.9g", (double)m->data[j]);
		fv__text_printf(&t, "]");
		first = false;
	}
	fv__text_printf(&t, "}, input_shape: [%lld, %lld, %lld]}", (long long)info->input_shape[0],
	                (long long)info->input_shape[1], (long long)info->input_shape[2]);
	return fv__text_take(&t, "data_info");
}

/* Apply the override "KEY=VALUE" (VALUE: flow text). */
static fv_status set_key(fv_config *cfg, const char *key, const char *value)
{
	size_t len = strlen(key) + strlen(value) + 2;
	char *arg = fv__malloc(len);
	if (arg == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	snprintf(arg, len, "%s=%s", key, value);
	fv_status rc = fv_config_override(cfg, arg);
	free(arg);
	return rc;
}

fv_module *fv_model_build(fv_registry *reg, fv_config *cfg, const fv_data_info *info,
                          uint64_t seed)
{
	const fv_config_node *spec = fv_node_get(fv_config_root(cfg), "model");
	if (spec == NULL || fv_node_kind(spec) != FV_NODE_MAP) {
		fv_error_at(spec, FV_ERR_CONFIG, "model: expected a map (the model's spec)%s",
		            spec ? "" : "; the configuration has no model key");
		return NULL;
	}
	char *neurons = neurons_flow(info);
	char *data_info = neurons != NULL ? data_info_flow(info, neurons) : NULL;
	fv_status rc = data_info != NULL ? FV_OK : FV_ERR_NOMEM;
	if (rc == FV_OK)
		rc = set_key(cfg, "++model.n_neurons_dict", neurons);
	if (rc == FV_OK)
		rc = set_key(cfg, "++model.data_info", data_info);
	free(neurons);
	free(data_info);
	if (rc != FV_OK)
		return NULL;
	spec = fv_node_get(fv_config_root(cfg), "model");
	fv_build_args args = {.struct_size = sizeof args, .registry = reg, .seed = seed};
	fv_module *model = NULL;
	if (fv_node_get(spec, "_target_") != NULL) {
		model = fv_instantiate(reg, spec, &args);
	} else {
		/* openretina's train.py: no _target_ means UnifiedCoreReadout */
		const fv_component *c = fv_registry_find(reg, "UnifiedCoreReadout", NULL);
		if (c == NULL)
			fv_error(FV_ERR_NOTFOUND, "the model spec names no _target_ and the "
			         "UnifiedCoreReadout plugin is not loaded");
		else
			model = fv_instantiate_component(c, spec, &args, "model");
	}
	if (model == NULL)
		fv_error_prefix("building the model: ");
	/* data_info was an argument, not configuration (openretina passes it
	** beside cfg.model); n_neurons_dict stays, as train.py leaves it */
	if (fv_config_override(cfg, "~model.data_info") != FV_OK && model != NULL) {
		fv_module_free(model);
		model = NULL;
	}
	return model;
}

fv_module *fv_model_load(fv_registry *reg, const fv_checkpoint *c, fv_config **cfg_out)
{
	if (cfg_out != NULL)
		*cfg_out = NULL;
	const char *yaml = fv_checkpoint_model_config_yaml(c);
	const fv_data_info *info = fv_checkpoint_data_info(c);
	if (yaml == NULL || info == NULL) {
		fv_error(FV_ERR_FORMAT, "%s: the checkpoint has no %s to rebuild the model from",
		         fv_checkpoint_path(c), yaml == NULL ? "config" : "data_info");
		return NULL;
	}
	char name[4200];
	snprintf(name, sizeof name, "%s: metadata config", fv_checkpoint_path(c));
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), name);
	if (cfg == NULL)
		return NULL;
	int64_t seed = 0;
	const fv_config_node *seed_node = fv_node_get(fv_config_root(cfg), "seed");
	if (seed_node != NULL && !fv_node_is_null(seed_node) &&
	    fv_node_to_int(seed_node, &seed) != FV_OK)
		seed = 0;
	fv_module *model = fv_model_build(reg, cfg, info, (uint64_t)seed);
	if (model != NULL && fv_checkpoint_load_model(c, model, false) != FV_OK) {
		fv_module_free(model);
		model = NULL;
	}
	if (model != NULL)
		fv_module_set_training(model, false);
	if (model != NULL && cfg_out != NULL)
		*cfg_out = cfg;
	else
		fv_config_free(cfg);
	return model;
}

/* ---- fine-tuning: the checkpoint's sessions joined with the data's ----------------------- */

struct fv__merged_info {
	fv_data_info info;
	const char **sessions;
	int64_t *n_neurons;
	fv_tensor **mean_activity;
	size_t *n_session_info;
	const char *const **session_info_names;
	fv_tensor *const **session_info;
};

void fv__merged_info_free(fv__merged_info *m)
{
	if (m == NULL)
		return;
	free(m->sessions);
	free(m->n_neurons);
	free(m->mean_activity);
	free(m->n_session_info);
	free(m->session_info_names);
	free(m->session_info);
	free(m);
}

static fv_status merged_alloc(fv__merged_info *m, size_t n)
{
	size_t a = n ? n : 1;
	m->sessions = fv__calloc(a, sizeof *m->sessions);
	m->n_neurons = fv__calloc(a, sizeof *m->n_neurons);
	m->mean_activity = fv__calloc(a, sizeof *m->mean_activity);
	m->n_session_info = fv__calloc(a, sizeof *m->n_session_info);
	m->session_info_names = fv__calloc(a, sizeof *m->session_info_names);
	m->session_info = fv__calloc(a, sizeof *m->session_info);
	if (!m->sessions || !m->n_neurons || !m->mean_activity || !m->n_session_info ||
	    !m->session_info_names || !m->session_info)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	return FV_OK;
}

static int64_t find_session(const fv_data_info *info, const char *name)
{
	for (size_t i = 0; i < info->n_sessions; i++)
		if (strcmp(info->sessions[i], name) == 0)
			return (int64_t)i;
	return -1;
}

/* Put entry `from` of `src` at position `at` of the merged info. */
static void take(fv__merged_info *m, size_t at, const fv_data_info *src, size_t from)
{
	m->sessions[at] = src->sessions[from];
	m->n_neurons[at] = src->n_neurons[from];
	m->mean_activity[at] = src->mean_activity ? src->mean_activity[from] : NULL;
	if (src->n_session_info != NULL) {
		m->n_session_info[at] = src->n_session_info[from];
		m->session_info_names[at] = src->session_info_names ? src->session_info_names[from] : NULL;
		m->session_info[at] = src->session_info ? src->session_info[from] : NULL;
		if (m->session_info_names[at] == NULL || m->session_info[at] == NULL)
			m->n_session_info[at] = 0;
	}
}

static fv_status check_compatible(const fv_data_info *old, const fv_data_info *data,
                                  const char *ckpt)
{
	for (int d = 0; d < 3; d++)
		if (old->input_shape[d] != data->input_shape[d]) {
			char a[64];
			snprintf(a, sizeof a, "%s", fv_shape_str(3, old->input_shape));
			return fv_error(FV_ERR_SHAPE, "%s: the model was trained on stimuli of shape %s "
			                "(channels, height, width), the data has %s",
			                ckpt, a, fv_shape_str(3, data->input_shape));
		}
	for (size_t i = 0; i < data->n_sessions; i++) {
		int64_t k = find_session(old, data->sessions[i]);
		if (k >= 0 && old->n_neurons[k] != data->n_neurons[i])
			return fv_error(FV_ERR_SHAPE, "%s: session '%s' has %lld neurons in the "
			                "checkpoint and %lld in the data", ckpt, data->sessions[i],
			                (long long)old->n_neurons[k], (long long)data->n_neurons[i]);
	}
	return FV_OK;
}

fv__merged_info *fv__merged_info_new(const fv_data_info *old, const fv_data_info *data,
                                     const char *ckpt, size_t *n_new)
{
	fv__merged_info *m = fv__calloc(1, sizeof *m);
	if (m == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory");
		return NULL;
	}
	*n_new = 0;
	for (size_t i = 0; i < data->n_sessions; i++)
		*n_new += find_session(old, data->sessions[i]) < 0;
	size_t n = old->n_sessions + *n_new;
	if (check_compatible(old, data, ckpt) != FV_OK || merged_alloc(m, n) != FV_OK) {
		fv__merged_info_free(m);
		return NULL;
	}
	/* merge the two sorted lists; sessions in both come from the checkpoint */
	size_t i = 0, j = 0, at = 0;
	while (i < old->n_sessions || j < data->n_sessions) {
		if (j < data->n_sessions && find_session(old, data->sessions[j]) >= 0) {
			j++;
			continue;
		}
		bool from_old = j >= data->n_sessions ||
		                (i < old->n_sessions && strcmp(old->sessions[i], data->sessions[j]) < 0);
		if (from_old)
			take(m, at++, old, i++);
		else
			take(m, at++, data, j++);
	}
	m->info = *data;
	m->info.n_sessions = n;
	m->info.sessions = m->sessions;
	m->info.n_neurons = m->n_neurons;
	m->info.mean_activity = m->mean_activity;
	m->info.n_session_info = m->n_session_info;
	m->info.session_info_names = m->session_info_names;
	m->info.session_info = m->session_info;
	return m;
}

const fv_data_info *fv__merged_info_get(const fv__merged_info *m)
{
	return &m->info;
}
