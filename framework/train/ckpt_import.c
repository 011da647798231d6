/*
** ckpt_import.c: an openretina Lightning checkpoint (.ckpt) turned into the
** bytes of a fovea checkpoint (see checkpoint.h), so that every consumer of
** fovea checkpoints takes a .ckpt as it is.
**
** The .ckpt is read by the safe pickle reader (ckpt.h): nothing in it is
** executed.  What fovea needs comes from three places of the file:
**   - hyper_parameters: the model's constructor arguments, whose names are
**     fovea's option names, so they become the `model` key of the config
**     as they are (minus what is not the model: data_info, the losses, the
**     optimizer and scheduler, which hold interpolations into the training
**     config that fovea never resolves against the environment);
**   - state_dict: the tensors, under the names fovea's modules use;
**   - hyper_parameters.data_info: sessions, neuron counts, mean activity,
**     input shape and the stimulus statistics.
** openretina's SingleCellSeparatedLNP saves no hyper_parameters: its
** arguments then come from a YAML file (a `_target_` map), and its data
** info from those arguments (its one session is "single_cell").
** Whether fovea can build the model is found when the model is built
** (fv_model_load): an unknown core or readout fails there, naming it, and
** nothing is returned.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/ckpt.h"
#include "trainer_internal.h"

/* openretina's label of the one cell a SingleCellSeparatedLNP models. */
#define LNP_SESSION "single_cell"

/* Keys of hyper_parameters that are not the model's: data_info is an
** argument fovea passes beside the config, the rest is training. */
static const char *const not_model_keys[] = {"data_info", "loss", "evaluation_loss",
                                             "optimizer", "lr_scheduler"};

typedef struct import_state {
	const char *path;
	fv_ckpt *ck;
	fv_config *model;          /* the model's spec is its root */
	const fv_config_node *spec;
	fv_st_writer *w;
	/* the data info being assembled */
	fv_data_info info;
	const char **sessions;
	int64_t *n_neurons;
	fv_tensor **means;
} import_state;

static void import_free(import_state *s)
{
	for (size_t i = 0; s->means != NULL && i < s->info.n_sessions; i++)
		fv_tensor_free(s->means[i]);
	free(s->sessions);
	free(s->n_neurons);
	free(s->means);
	fv_st_writer_free(s->w);
	fv_config_free(s->model);
	fv_ckpt_close(s->ck);
}

/* ---- the model's spec --------------------------------------------------------------- */

static fv_status spec_from_hparams(import_state *s, const fv_pyval *hp)
{
	char name[4200];
	snprintf(name, sizeof name, "%s:hyper_parameters", s->path);
	if ((s->model = fv_pyval_to_config(hp, name)) == NULL)
		return fv_errcode();
	for (size_t i = 0; i < sizeof not_model_keys / sizeof *not_model_keys; i++) {
		if (fv_node_get(fv_config_root(s->model), not_model_keys[i]) == NULL)
			continue;
		char arg[64];
		snprintf(arg, sizeof arg, "~%s", not_model_keys[i]);
		if (fv_config_override(s->model, arg) != FV_OK)
			return fv_errcode();
	}
	s->spec = fv_config_root(s->model);
	return FV_OK;
}

/* A YAML file holding the model as a `_target_` map, or a config whose
** `model` key is one. */
static fv_status spec_from_yaml(import_state *s, const char *yaml)
{
	if ((s->model = fv_config_load_file(yaml)) == NULL)
		return fv_errcode();
	const fv_config_node *root = fv_config_root(s->model);
	const fv_config_node *m = fv_node_get(root, "model");
	s->spec = m != NULL && fv_node_kind(m) == FV_NODE_MAP ? m : root;
	if (fv_node_kind(s->spec) != FV_NODE_MAP || fv_node_get(s->spec, "_target_") == NULL)
		return fv_error_at(s->spec, FV_ERR_CONFIG, "the model must be a map with a _target_ "
		                   "and openretina's constructor arguments");
	return FV_OK;
}

/* The config fovea stores: the spec under `model`. */
static char *config_yaml(const fv_config_node *spec)
{
	char *body = fv_node_to_yaml(spec);
	if (body == NULL)
		return NULL;
	fv__text t = {0};
	fv__text_printf(&t, "model:\n");
	for (const char *line = body; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
		fv__text_printf(&t, "  %.*s\n", (int)n, line);
		line += n + (end != NULL);
	}
	free(body);
	return fv__text_take(&t, "the imported config");
}

/* ---- the data info ------------------------------------------------------------------ */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static fv_status alloc_sessions(import_state *s, size_t n)
{
	size_t alloc = n ? n : 1;
	s->sessions = fv__calloc(alloc, sizeof *s->sessions);
	s->n_neurons = fv__calloc(alloc, sizeof *s->n_neurons);
	s->means = fv__calloc(alloc, sizeof *s->means);
	if (!s->sessions || !s->n_neurons || !s->means)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", s->path);
	s->info.n_sessions = n;
	return FV_OK;
}

static fv_status info_error(const import_state *s, const char *what)
{
	return fv_error(FV_ERR_FORMAT, "%s: hyper_parameters.data_info: %s", s->path, what);
}

/* (C, H, W) from openretina's in_shape (C, T, H, W) in the model's spec. */
static fv_status shape_from_spec(import_state *s)
{
	const fv_config_node *in = fv_node_get(s->spec, "in_shape");
	if (fv_node_kind(in) != FV_NODE_SEQ || fv_node_size(in) != 4)
		return fv_error_at(in != NULL ? in : s->spec, FV_ERR_CONFIG,
		                   "in_shape: expected (channels, time, height, width)");
	static const size_t dims[3] = {0, 2, 3};
	for (int i = 0; i < 3; i++)
		if (fv_node_to_int(fv_node_at(in, dims[i]), &s->info.input_shape[i]) != FV_OK)
			return fv_errcode();
	return FV_OK;
}

static fv_status info_from_pyval(import_state *s, const fv_pyval *di)
{
	const fv_pyval *neurons = fv_pyval_get(di, "n_neurons_dict");
	if (fv_pyval_kind_of(neurons) != FV_PY_DICT || fv_pyval_len(neurons) == 0)
		return info_error(s, "no n_neurons_dict");
	if (alloc_sessions(s, fv_pyval_len(neurons)) != FV_OK)
		return fv_errcode();
	for (size_t i = 0; i < s->info.n_sessions; i++)
		if ((s->sessions[i] = fv_pyval_str(fv_pyval_key(neurons, i), NULL)) == NULL)
			return info_error(s, "a session name is not a string");
	/* fovea keeps sessions sorted (fv_data_info) */
	qsort(s->sessions, s->info.n_sessions, sizeof *s->sessions, compare_names);
	const fv_pyval *means = fv_pyval_get(di, "mean_activity_dict");
	for (size_t i = 0; i < s->info.n_sessions; i++) {
		if (fv_pyval_to_int(fv_pyval_get(neurons, s->sessions[i]), &s->n_neurons[i]) != FV_OK ||
		    s->n_neurons[i] <= 0)
			return info_error(s, "a neuron count is not a positive integer");
		const fv_pyval *m = fv_pyval_get(means, s->sessions[i]);
		const fv_ckpt_array *a = fv_pyval_array(m);
		if (a == NULL)
			continue;
		if (a->numel != s->n_neurons[i])
			return info_error(s, "a mean activity does not have one value per neuron");
		int64_t shape[1] = {a->numel};
		if ((s->means[i] = fv_tensor_new(1, shape)) == NULL)
			return fv_errcode();
		for (int64_t j = 0; j < a->numel; j++)
			s->means[i]->data[j] = a->f32 != NULL ? (fv_real)a->f32[j] : (fv_real)a->i64[j];
	}
	const fv_pyval *shape = fv_pyval_get(di, "input_shape");
	if (shape == NULL)
		return shape_from_spec(s);
	if (fv_pyval_len(shape) != 3)
		return info_error(s, "input_shape is not (channels, height, width)");
	for (size_t i = 0; i < 3; i++)
		if (fv_pyval_to_int(fv_pyval_item(shape, i), &s->info.input_shape[i]) != FV_OK)
			return fv_errcode();
	s->info.stim_mean = 0.0;
	s->info.stim_std = 1.0;
	const fv_pyval *mean = fv_pyval_get(di, "stim_mean"), *std = fv_pyval_get(di, "stim_std");
	if (mean != NULL && fv_pyval_to_double(mean, &s->info.stim_mean) != FV_OK)
		return fv_errcode();
	if (std != NULL && fv_pyval_to_double(std, &s->info.stim_std) != FV_OK)
		return fv_errcode();
	return FV_OK;
}

/* A model given by its arguments alone: its n_neurons_dict when it has
** one, else openretina's single cell. */
static fv_status info_from_spec(import_state *s)
{
	const fv_config_node *neurons = fv_node_get(s->spec, "n_neurons_dict");
	bool have = fv_node_kind(neurons) == FV_NODE_MAP && fv_node_size(neurons) > 0;
	if (alloc_sessions(s, have ? fv_node_size(neurons) : 1) != FV_OK)
		return fv_errcode();
	for (size_t i = 0; i < s->info.n_sessions; i++) {
		s->sessions[i] = have ? fv_node_key_at(neurons, i) : LNP_SESSION;
		s->n_neurons[i] = 1;
		if (have && fv_node_to_int(fv_node_at(neurons, i), &s->n_neurons[i]) != FV_OK)
			return fv_errcode();
	}
	s->info.stim_mean = 0.0;
	s->info.stim_std = 1.0;
	return shape_from_spec(s);
}

/* ---- the tensors -------------------------------------------------------------------- */

static fv_status add_tensors(import_state *s, const fv_pyval *sd)
{
	for (size_t i = 0; i < fv_pyval_len(sd); i++) {
		const char *name = fv_pyval_str(fv_pyval_key(sd, i), NULL);
		const fv_ckpt_array *a = fv_pyval_array(fv_pyval_item(sd, i));
		if (name == NULL || a == NULL)
			return fv_error(FV_ERR_FORMAT, "%s: state_dict entry %zu is not a named tensor",
			                s->path, i);
		if (a->ndim > FV_ST_MAX_DIMS)
			return fv_error(FV_ERR_SHAPE, "%s: state_dict '%s' has %d dimensions", s->path,
			                name, a->ndim);
		bool ints = a->i64 != NULL;
		const void *data = ints ? (const void *)a->i64 : (const void *)a->f32;
		static const float none = 0;
		if (fv_st_writer_add(s->w, name, ints ? FV_DTYPE_I64 : FV_DTYPE_F32, a->ndim, a->shape,
		                     data != NULL ? data : &none) != FV_OK)
			return fv_errcode();
	}
	return FV_OK;
}

static fv_status add_metadata(import_state *s, const fv_pyval *data_info)
{
	s->info.sessions = s->sessions;
	s->info.n_neurons = s->n_neurons;
	s->info.mean_activity = s->means;
	char *cfg = config_yaml(s->spec);
	char *info = cfg != NULL ? fv_data_info_to_json(&s->info) : NULL;
	fv_status rc = info != NULL ? FV_OK : fv_error(FV_ERR_NOMEM, "%s: out of memory", s->path);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(s->w, "format", FV_CHECKPOINT_FORMAT);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(s->w, "fovea_version", FV_VERSION_STRING);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(s->w, "config", cfg);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(s->w, "data_info", info);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(s->w, "imported_from", s->path);
	char *perf = NULL;
	if (rc == FV_OK)
		rc = fv__ckpt_performance(data_info, s->path, &perf);
	if (rc == FV_OK && perf != NULL)
		rc = fv_st_writer_meta(s->w, "pretrained_performance", perf);
	free(perf);
	free(cfg);
	free(info);
	return rc;
}

fv_status fv__ckpt_import(const char *path, const char *model_yaml, void **buf, size_t *len)
{
	import_state s = {.path = path};
	fv_status rc = FV_OK;
	if ((s.ck = fv_ckpt_open(path, NULL)) == NULL)
		return fv_errcode();
	const fv_pyval *sd = fv_ckpt_state_dict(s.ck);
	const fv_pyval *hp = fv_pyval_kind_of(fv_ckpt_root(s.ck)) == FV_PY_DICT
	                     ? fv_pyval_get(fv_ckpt_root(s.ck), "hyper_parameters") : NULL;
	if (sd == NULL)
		rc = fv_error(FV_ERR_FORMAT, "%s: no state_dict", path);
	else if (model_yaml != NULL)
		rc = spec_from_yaml(&s, model_yaml);
	else if (hp == NULL)
		rc = fv_error(FV_ERR_CONFIG, "%s: the checkpoint has no hyper_parameters (openretina's "
		              "SingleCellSeparatedLNP saves none): give the model's constructor "
		              "arguments with --model MODEL.yaml", path);
	else
		rc = spec_from_hparams(&s, hp);
	const fv_pyval *di = fv_pyval_get(hp, "data_info");
	if (rc == FV_OK)
		rc = di != NULL ? info_from_pyval(&s, di) : info_from_spec(&s);
	if (rc == FV_OK && (s.w = fv_st_writer_new()) == NULL)
		rc = fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	if (rc == FV_OK)
		rc = add_tensors(&s, sd);
	if (rc == FV_OK)
		rc = add_metadata(&s, di);
	if (rc == FV_OK)
		rc = fv_st_writer_to_memory(s.w, buf, len);
	import_free(&s);
	return rc;
}
