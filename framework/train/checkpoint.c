/*
** checkpoint.c: saving and loading trained models (see checkpoint.h).
**
** The file is a plain safetensors file, so any safetensors reader (Python's
** included) sees the state_dict under openretina's names; what fovea needs
** to rebuild the model (the config, the data info) rides in __metadata__.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/checkpoint.h"
#include "fovea/zoo.h"
#include "base/base_internal.h"
#include "io/json.h"
#include "trainer_internal.h"

#define OPTIM_PREFIX "optimizer."

/* Optimizer buffers in the names torch's state_dict gives them. */
static const char *const optim_buffers[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

/* ---- data info as JSON ------------------------------------------------------------ */

char *fv_data_info_to_json(const fv_data_info *info)
{
	json_t *sessions = json_array(), *neurons = json_object(), *means = json_object();
	/* every call below takes its value even when it fails, so a failure
	** only needs noting */
	bool ok = true;
	for (size_t i = 0; i < info->n_sessions; i++) {
		const char *name = info->sessions[i];
		ok &= json_array_append_new(sessions, json_string(name)) == 0;
		ok &= json_object_set_new(neurons, name, json_integer(info->n_neurons[i])) == 0;
		const fv_tensor *m = info->mean_activity != NULL ? info->mean_activity[i] : NULL;
		if (m == NULL)
			continue;
		json_t *values = json_array();
		for (int64_t j = 0; j < m->numel; j++)
			ok &= json_array_append_new(values, fv__json_number(m->data[j])) == 0;
		ok &= json_object_set_new(means, name, values) == 0;
	}
	json_t *root = json_pack("{s:o, s:o, s:o, s:[I, I, I], s:o, s:o}", "sessions", sessions,
	                         "n_neurons_dict", neurons, "mean_activity_dict", means,
	                         "input_shape", (json_int_t)info->input_shape[0],
	                         (json_int_t)info->input_shape[1], (json_int_t)info->input_shape[2],
	                         "stim_mean", fv__json_number(info->stim_mean),
	                         "stim_std", fv__json_number(info->stim_std));
	if (!ok) {
		json_decref(root);
		root = NULL;
	}
	char *text = fv__json_dump(root, 0, "data_info", NULL);
	json_decref(root);
	return text;
}

/* ---- saving -------------------------------------------------------------------------- */

typedef struct save_state {
	fv_st_writer *w;
	fv_status rc;
} save_state;

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* torch keeps BatchNorm's batch counter as int64; so does the file. */
static fv_status add_counter(fv_st_writer *w, const char *name, const fv_tensor *t)
{
	int64_t *v = fv__malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
	if (v == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory saving '%s'", name);
	for (int64_t i = 0; i < t->numel; i++)
		v[i] = (int64_t)t->data[i];
	fv_status rc = fv_st_writer_add(w, name, FV_DTYPE_I64, t->ndim, t->shape, v);
	free(v);
	return rc;
}

static int save_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)is_param;
	save_state *s = ud;
	s->rc = ends_with(name, "num_batches_tracked") ? add_counter(s->w, name, t)
	                                               : fv_st_writer_add_tensor(s->w, name, t);
	return s->rc != FV_OK;
}

static fv_status save_optimizer(fv_st_writer *w, const fv_checkpoint_content *c)
{
	for (size_t i = 0; i < c->n_optim_params; i++) {
		const char *pname = c->optim_params[i]->name;
		if (pname == NULL)
			return fv_error(FV_ERR_ARG, "saving the optimizer state: parameter %zu has no name",
			                i);
		int64_t steps = fv_optimizer_param_steps(c->optimizer, i);
		if (steps == 0)
			continue; /* torch has no state for it either */
		char name[1024];
		snprintf(name, sizeof name, OPTIM_PREFIX "%s.step", pname);
		fv_status rc = fv_st_writer_add(w, name, FV_DTYPE_I64, 0, NULL, &steps);
		bool sgd = fv_optimizer_config(c->optimizer)->kind == FV_OPTIM_SGD;
		for (size_t b = 0; rc == FV_OK && b < sizeof optim_buffers / sizeof *optim_buffers; b++) {
			fv_tensor *buf = fv_optimizer_state(c->optimizer, i, optim_buffers[b]);
			if (buf == NULL)
				continue;
			snprintf(name, sizeof name, OPTIM_PREFIX "%s.%s", pname,
			         sgd ? "momentum_buffer" : optim_buffers[b]);
			rc = fv_st_writer_add_tensor(w, name, buf);
		}
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

static fv_status save_metadata(fv_st_writer *w, const fv_checkpoint_content *c)
{
	fv_status rc = fv_st_writer_meta(w, "format", FV_CHECKPOINT_FORMAT);
	if (rc == FV_OK)
		rc = fv_st_writer_meta(w, "fovea_version", FV_VERSION_STRING);
	if (rc == FV_OK && c->config_yaml != NULL)
		rc = fv_st_writer_meta(w, "config", c->config_yaml);
	if (rc == FV_OK && c->model_config_yaml != NULL)
		rc = fv_st_writer_meta(w, "model_config", c->model_config_yaml);
	if (rc == FV_OK && c->trainer_state != NULL)
		rc = fv_st_writer_meta(w, "trainer_state", c->trainer_state);
	if (rc == FV_OK && c->data_info != NULL) {
		char *json = fv_data_info_to_json(c->data_info);
		rc = json != NULL ? fv_st_writer_meta(w, "data_info", json) : FV_ERR_NOMEM;
		free(json);
	}
	return rc;
}

fv_status fv_checkpoint_save(const char *path, const fv_checkpoint_content *c)
{
	if (c == NULL || c->model == NULL)
		return fv_error(FV_ERR_ARG, "%s: no model to save", path);
	if (c->optimizer != NULL && c->n_optim_params > 0 && c->optim_params == NULL)
		return fv_error(FV_ERR_ARG, "%s: the optimizer state needs its parameter list", path);
	save_state s = {.w = fv_st_writer_new(), .rc = FV_OK};
	if (s.w == NULL)
		return FV_ERR_NOMEM;
	fv_module_foreach_tensor(c->model, save_tensor, &s);
	if (s.rc == FV_OK && c->optimizer != NULL)
		s.rc = save_optimizer(s.w, c);
	if (s.rc == FV_OK)
		s.rc = save_metadata(s.w, c);
	if (s.rc == FV_OK)
		s.rc = fv_st_writer_save(s.w, path);
	if (s.rc != FV_OK)
		fv_error_prefix("saving checkpoint %s: ", path);
	fv_st_writer_free(s.w);
	return s.rc;
}

/* ---- opening -------------------------------------------------------------------------- */

struct fv_checkpoint {
	char *path;
	fv_safetensors *st;
	/* an imported .ckpt: the fovea checkpoint's bytes, for fv_checkpoint_write */
	void *bytes;
	size_t n_bytes;
	bool have_info;
	fv_data_info info;
	/* what `info` points to */
	char **sessions;
	int64_t *n_neurons;
	fv_tensor **mean_activity;
	size_t *n_session_info;
};

void fv_checkpoint_close(fv_checkpoint *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->info.n_sessions; i++) {
		if (c->sessions != NULL)
			free(c->sessions[i]);
		if (c->mean_activity != NULL)
			fv_tensor_free(c->mean_activity[i]);
	}
	free(c->sessions);
	free(c->n_neurons);
	free(c->mean_activity);
	free(c->n_session_info);
	fv_safetensors_close(c->st);
	free(c->bytes);
	free(c->path);
	free(c);
}

static fv_status info_error(const fv_checkpoint *c, const char *what)
{
	return fv_error(FV_ERR_FORMAT, "%s: metadata data_info: %s", c->path, what);
}

static fv_status parse_session_lists(fv_checkpoint *c, const json_t *root)
{
	const json_t *sessions = json_object_get(root, "sessions");
	const json_t *neurons = json_object_get(root, "n_neurons_dict");
	if (!json_is_array(sessions))
		return info_error(c, "'sessions' is missing or not a list");
	if (!json_is_object(neurons))
		return info_error(c, "'n_neurons_dict' is missing or not a map");
	size_t n = json_array_size(sessions), alloc = n ? n : 1;
	c->sessions = fv__calloc(alloc, sizeof *c->sessions);
	c->n_neurons = fv__calloc(alloc, sizeof *c->n_neurons);
	c->mean_activity = fv__calloc(alloc, sizeof *c->mean_activity);
	c->n_session_info = fv__calloc(alloc, sizeof *c->n_session_info);
	if (!c->sessions || !c->n_neurons || !c->mean_activity || !c->n_session_info)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", c->path);
	c->info.n_sessions = n;
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_array_get(sessions, i));
		if (name == NULL)
			return info_error(c, "a session name is not a string");
		if ((c->sessions[i] = fv__strdup(name)) == NULL)
			return fv_error(FV_ERR_NOMEM, "%s: out of memory", c->path);
		const json_t *k = json_object_get(neurons, name);
		if (!json_is_integer(k) || json_integer_value(k) <= 0) {
			char msg[512];
			snprintf(msg, sizeof msg, "n_neurons_dict['%s'] is missing or not a positive integer",
			         name);
			return info_error(c, msg);
		}
		c->n_neurons[i] = json_integer_value(k);
	}
	return FV_OK;
}

static fv_status parse_mean_activity(fv_checkpoint *c, const json_t *root)
{
	const json_t *means = json_object_get(root, "mean_activity_dict");
	if (means == NULL)
		return FV_OK;
	if (!json_is_object(means))
		return info_error(c, "'mean_activity_dict' is not a map");
	for (size_t i = 0; i < c->info.n_sessions; i++) {
		const json_t *m = json_object_get(means, c->sessions[i]);
		if (m == NULL)
			continue;
		char msg[512];
		if (!json_is_array(m) || (int64_t)json_array_size(m) != c->n_neurons[i]) {
			snprintf(msg, sizeof msg, "mean_activity_dict['%s'] is not a list of %lld numbers",
			         c->sessions[i], (long long)c->n_neurons[i]);
			return info_error(c, msg);
		}
		int64_t shape[1] = {(int64_t)json_array_size(m)};
		if ((c->mean_activity[i] = fv_tensor_new(1, shape)) == NULL)
			return FV_ERR_NOMEM;
		for (size_t j = 0; j < json_array_size(m); j++) {
			const json_t *v = json_array_get(m, j);
			if (!json_is_number(v) && !json_is_null(v)) {
				snprintf(msg, sizeof msg, "mean_activity_dict['%s'][%zu] is not a number",
				         c->sessions[i], j);
				return info_error(c, msg);
			}
			/* the writer's null for a value that was not finite */
			c->mean_activity[i]->data[j] = json_is_null(v) ? NAN : (fv_real)json_number_value(v);
		}
	}
	return FV_OK;
}

static fv_status parse_shape(fv_checkpoint *c, const json_t *root)
{
	const json_t *shape = json_object_get(root, "input_shape");
	if (!json_is_array(shape) || json_array_size(shape) != 3)
		return info_error(c, "'input_shape' is missing or not [channels, height, width]");
	for (size_t i = 0; i < 3; i++) {
		const json_t *size = json_array_get(shape, i);
		if (!json_is_integer(size) || json_integer_value(size) <= 0)
			return info_error(c, "'input_shape' holds a size that is not a positive integer");
		c->info.input_shape[i] = json_integer_value(size);
	}
	const json_t *mean = json_object_get(root, "stim_mean");
	const json_t *std = json_object_get(root, "stim_std");
	c->info.stim_mean = json_is_number(mean) ? json_number_value(mean) : 0.0;
	c->info.stim_std = json_is_number(std) ? json_number_value(std) : 1.0;
	return FV_OK;
}

static fv_status parse_info(fv_checkpoint *c, const char *json)
{
	char what[1024];
	snprintf(what, sizeof what, "%s: metadata data_info", c->path);
	json_t *root = NULL;
	fv_status rc = fv__json_load(json, strlen(json), what, &root);
	if (rc != FV_OK)
		return rc;
	if (!json_is_object(root))
		rc = info_error(c, "expected a JSON object");
	if (rc == FV_OK)
		rc = parse_session_lists(c, root);
	if (rc == FV_OK)
		rc = parse_mean_activity(c, root);
	if (rc == FV_OK)
		rc = parse_shape(c, root);
	json_decref(root);
	if (rc != FV_OK)
		return rc;
	c->info.sessions = (const char *const *)c->sessions;
	c->info.n_neurons = c->n_neurons;
	c->info.mean_activity = c->mean_activity;
	c->info.n_session_info = c->n_session_info;
	c->have_info = true;
	return FV_OK;
}

/* torch's checkpoints are zip files; safetensors files start with their
** header's length, whose high bytes are never "PK". */
static bool is_zip(const char *path)
{
	unsigned char magic[4] = {0};
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return false;
	bool zip = fread(magic, 1, 4, f) == 4 && memcmp(magic, "PK\3\4", 4) == 0;
	fclose(f);
	return zip;
}

/* Open the checkpoint from `model_yaml`/`path`: read the file, or import it. */
static fv_checkpoint *open_checkpoint(const char *path, bool import, const char *model_yaml)
{
	fv_checkpoint *c = fv__calloc(1, sizeof *c);
	if (c == NULL || (c->path = fv__strdup(path)) == NULL) {
		free(c);
		fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
		return NULL;
	}
	if (!import)
		c->st = fv_safetensors_open(path);
	else if (fv__ckpt_import(path, model_yaml, &c->bytes, &c->n_bytes) == FV_OK)
		c->st = fv_safetensors_from_memory(c->bytes, c->n_bytes, path);
	if (c->st == NULL) {
		fv_checkpoint_close(c);
		return NULL;
	}
	const char *format = fv_safetensors_meta(c->st, "format");
	fv_status rc = FV_OK;
	if (format == NULL || strcmp(format, FV_CHECKPOINT_FORMAT) != 0)
		rc = fv_error(FV_ERR_FORMAT,
		              "%s: not a fovea checkpoint (its __metadata__ has no format: \"%s\")",
		              path, FV_CHECKPOINT_FORMAT);
	const char *info = fv_safetensors_meta(c->st, "data_info");
	if (rc == FV_OK && info != NULL)
		rc = parse_info(c, info);
	if (rc != FV_OK) {
		fv_checkpoint_close(c);
		return NULL;
	}
	return c;
}

/* `path` may also name one of openretina's published models (zoo.h): its
** file in openretina's cache, downloaded first if absent. */
static fv_checkpoint *open_named(const char *path, bool import, const char *model_yaml)
{
	char *local = NULL;
	if (path == NULL) {
		fv_error(FV_ERR_ARG, "fv_checkpoint_open: the path is NULL");
		return NULL;
	}
	if (fv_zoo_resolve(path, NULL, &local) != FV_OK)
		return NULL;
	const char *file = local != NULL ? local : path;
	/* a .ckpt that is no zip (a legacy torch.save file) gets the torch
	** reader's message, not the safetensors reader's */
	fv_checkpoint *c = open_checkpoint(file, import || is_zip(file) || ends_with(file, ".ckpt"),
	                                   model_yaml);
	free(local);
	return c;
}

fv_checkpoint *fv_checkpoint_open(const char *path)
{
	return open_named(path, false, NULL);
}

fv_checkpoint *fv_checkpoint_import(const char *path, const char *model_yaml)
{
	return open_named(path, true, model_yaml);
}

fv_status fv_checkpoint_write(const fv_checkpoint *c, const char *path)
{
	if (c == NULL || path == NULL)
		return fv_error(FV_ERR_ARG, "fv_checkpoint_write: %s is NULL", c ? "path" : "checkpoint");
	if (c->bytes == NULL)
		return fv_error(FV_ERR_ARG, "%s: only an imported checkpoint is written again",
		                c->path);
	const void *parts[1] = {c->bytes};
	size_t sizes[1] = {c->n_bytes};
	return fv__atomic_write(path, 1, parts, sizes);
}

const char *fv_checkpoint_path(const fv_checkpoint *c)
{
	return c->path;
}

const char *fv_checkpoint_config_yaml(const fv_checkpoint *c)
{
	return fv_safetensors_meta(c->st, "config");
}

const char *fv_checkpoint_model_config_yaml(const fv_checkpoint *c)
{
	const char *m = fv_safetensors_meta(c->st, "model_config");
	return m != NULL ? m : fv_safetensors_meta(c->st, "config");
}

const char *fv_checkpoint_version(const fv_checkpoint *c)
{
	return fv_safetensors_meta(c->st, "fovea_version");
}

const char *fv_checkpoint_trainer_state(const fv_checkpoint *c)
{
	return fv_safetensors_meta(c->st, "trainer_state");
}

const fv_data_info *fv_checkpoint_data_info(const fv_checkpoint *c)
{
	return c->have_info ? &c->info : NULL;
}

const fv_safetensors *fv_checkpoint_tensors(const fv_checkpoint *c)
{
	return c->st;
}

/* ---- loading into a model and an optimizer ------------------------------------------ */

typedef struct load_state {
	const fv_checkpoint *c;
	bool allow_missing;
	fv_status rc;
} load_state;

static fv_status read_entry(const fv_checkpoint *c, const fv_st_entry *e, fv_tensor *t)
{
	bool same = e->ndim == t->ndim && e->numel == t->numel;
	for (int d = 0; same && d < t->ndim; d++)
		same = e->shape[d] == t->shape[d];
	if (!same) {
		char file_shape[128];
		snprintf(file_shape, sizeof file_shape, "%s", fv_shape_str(e->ndim, e->shape));
		return fv_error(FV_ERR_SHAPE, "%s: tensor '%s' has shape %s, the model expects %s",
		                c->path, e->name, file_shape, fv_shape_str(t->ndim, t->shape));
	}
	return fv_safetensors_read(c->st, e->name, t->data, t->numel);
}

static int load_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)is_param;
	load_state *s = ud;
	const fv_st_entry *e = fv_safetensors_find(s->c->st, name);
	if (e == NULL) {
		if (s->allow_missing)
			return 0;
		s->rc = fv_error(FV_ERR_NOTFOUND, "%s: the model's tensor '%s' is not in the checkpoint",
		                 s->c->path, name);
		return 1;
	}
	s->rc = read_entry(s->c, e, t);
	return s->rc != FV_OK;
}

fv_status fv_checkpoint_load_model(const fv_checkpoint *c, fv_module *model, bool allow_missing)
{
	for (size_t i = 0; i < fv_safetensors_count(c->st); i++) {
		const char *name = fv_safetensors_at(c->st, i)->name;
		if (strncmp(name, OPTIM_PREFIX, strlen(OPTIM_PREFIX)) == 0)
			continue;
		if (fv_module_tensor(model, name) == NULL)
			return fv_error(FV_ERR_NOTFOUND,
			                "%s: tensor '%s' of the checkpoint is not in the model (%s)", c->path,
			                name, fv_module_component(model)->names[0]);
	}
	load_state s = {.c = c, .allow_missing = allow_missing, .rc = FV_OK};
	fv_module_foreach_tensor(model, load_tensor, &s);
	return s.rc;
}

static fv_status load_param_state(const fv_checkpoint *c, fv_optimizer *opt, size_t i,
                                  const char *pname)
{
	char name[1024];
	snprintf(name, sizeof name, OPTIM_PREFIX "%s.step", pname);
	const fv_st_entry *step = fv_safetensors_find(c->st, name);
	if (step == NULL)
		return FV_OK;
	int64_t steps = 0;
	if (step->dtype != FV_DTYPE_I64 || step->numel != 1)
		return fv_error(FV_ERR_FORMAT, "%s: '%s' is not an int64 scalar", c->path, name);
	memcpy(&steps, step->data, sizeof steps);
	fv_status rc = fv_optimizer_set_param_steps(opt, i, steps);
	bool sgd = fv_optimizer_config(opt)->kind == FV_OPTIM_SGD;
	for (size_t b = 0; rc == FV_OK && b < sizeof optim_buffers / sizeof *optim_buffers; b++) {
		fv_tensor *buf = fv_optimizer_state(opt, i, optim_buffers[b]);
		if (buf == NULL)
			continue;
		snprintf(name, sizeof name, OPTIM_PREFIX "%s.%s", pname,
		         sgd ? "momentum_buffer" : optim_buffers[b]);
		const fv_st_entry *e = fv_safetensors_find(c->st, name);
		if (e == NULL)
			return fv_error(FV_ERR_NOTFOUND,
			                "%s: '%s' is missing (the optimizer keeps it after %lld steps; "
			                "was the checkpoint written with another optimizer?)",
			                c->path, name, (long long)steps);
		rc = read_entry(c, e, buf);
	}
	return rc;
}

fv_status fv_checkpoint_load_optimizer(const fv_checkpoint *c, fv_optimizer *opt,
                                       size_t n_params, fv_tensor *const *params)
{
	for (size_t i = 0; i < n_params; i++) {
		if (params[i]->name == NULL)
			return fv_error(FV_ERR_ARG, "loading the optimizer state: parameter %zu has no name",
			                i);
		fv_status rc = load_param_state(c, opt, i, params[i]->name);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}
