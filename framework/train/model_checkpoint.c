/*
** model_checkpoint.c: Lightning's ModelCheckpoint callback.  After each
** epoch's validation (every_n_epochs), the monitored metric decides
** whether DIRPATH/FILENAME.safetensors joins the best save_top_k files (the
** worst one is then deleted); save_last keeps DIRPATH/last.safetensors.
** FILENAME is Lightning's pattern: "{epoch:02d}_{val_evaluation_loss:.3f}"
** becomes "epoch=03_val_evaluation_loss=0.412" (auto_insert_metric_name),
** with Python's format specifications.
**
** fovea's own RUN/best.safetensors and RUN/last.safetensors are written
** as before; these are the callback's files, for scripts that expect them.
** The ranking travels in the checkpoints' trainer state, as Lightning keeps
** best_k_models in its .ckpt: resume=true goes on ranking against the files
** of the first part of the run, unless dirpath has changed (then Lightning
** starts afresh, and so does fovea, saying so).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "train/trainer_internal.h"

typedef struct mc_opts {
	const char *dirpath, *filename, *monitor, *mode;
	bool verbose, save_weights_only, auto_insert_metric_name, enable_version_counter;
	const fv_config_node *save_last, *every_n_train_steps, *train_time_interval,
	    *save_on_train_epoch_end;
	int64_t save_top_k, every_n_epochs;
} mc_opts;

#define OFF(f) offsetof(mc_opts, f)
const fv_option fv__model_checkpoint_options[] = {
	{"dirpath", FV_OPT_STRING, OFF(dirpath), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "the directory of the files (null: OUTPUT_DIR/checkpoints)"},
	{"filename", FV_OPT_STRING, OFF(filename), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "Lightning's pattern, e.g. {epoch:02d}_{val_evaluation_loss:.3f} (null: {epoch}-{step})"},
	{"monitor", FV_OPT_STRING, OFF(monitor), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "the metric ranking the files (null: the latest epoch is the best)"},
	{"mode", FV_OPT_ENUM, OFF(mode), "null", 0, 0, FV_OPT_NULLABLE, "min|max",
	 "whether the monitored metric is better low or high"},
	{"verbose", FV_OPT_BOOL, OFF(verbose), "false", 0, 0, 0, NULL, "say each file saved"},
	{"save_last", FV_OPT_NODE, OFF(save_last), "null", 0, 0, FV_OPT_NULLABLE, NULL,
	 "true or \"link\": also keep DIRPATH/last.safetensors"},
	{"save_top_k", FV_OPT_INT, OFF(save_top_k), "1", -1, 1e9, 0, NULL,
	 "files kept, the best by the monitor (-1: all; 0: none)"},
	{"save_weights_only", FV_OPT_BOOL, OFF(save_weights_only), "false", 0, 0, 0, NULL,
	 "leave the optimizer and trainer state out of the files"},
	{"auto_insert_metric_name", FV_OPT_BOOL, OFF(auto_insert_metric_name), "true", 0, 0, 0, NULL,
	 "{epoch} in the filename becomes epoch={epoch}"},
	{"every_n_train_steps", FV_OPT_NODE, OFF(every_n_train_steps), "null", 0, 0, FV_OPT_NULLABLE,
	 NULL, "only null or 0: fovea saves at epoch ends"},
	{"train_time_interval", FV_OPT_NODE, OFF(train_time_interval), "null", 0, 0, FV_OPT_NULLABLE,
	 NULL, "only null: fovea saves at epoch ends"},
	{"every_n_epochs", FV_OPT_INT, OFF(every_n_epochs), "null", 0, 1e9, FV_OPT_NULLABLE, NULL,
	 "save after every n-th epoch (null: 1; 0: never)"},
	{"save_on_train_epoch_end", FV_OPT_NODE, OFF(save_on_train_epoch_end), "null", 0, 0,
	 FV_OPT_NULLABLE, NULL, "null or false: save after validation, as fovea validates every epoch"},
	{"enable_version_counter", FV_OPT_BOOL, OFF(enable_version_counter), "true", 0, 0, 0, NULL,
	 "a name already taken by an earlier run gets -v1, -v2, ..."},
	{0},
};
#undef OFF

static const char *const hydra_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

static fv_status file_name(const fv__trainer *t, char *out, size_t size);
static fv_status keep(fv__model_ckpt *m, const char *path, double value);

static bool node_set(const fv_config_node *n)
{
	int64_t v;
	if (n == NULL || fv_node_is_null(n))
		return false;
	return !(fv_node_to_int(n, &v) == FV_OK && v == 0) &&
	       !(fv_node_text(n) != NULL && strcmp(fv_node_text(n), "false") == 0);
}

static void forget(fv__model_ckpt *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->paths[i]);
	m->n = 0;
}

/* Lightning's load_state_dict: the ranking only for the same dirpath. */
static void keep_restored(fv__model_ckpt *m)
{
	if (m->restored_dir == NULL || strcmp(m->restored_dir, m->dir) == 0)
		return;
	if (m->n > 0)
		fprintf(stderr, "fovea: ModelCheckpoint: dirpath changed from %s to %s: the ranking "
		        "of the resumed run starts afresh\n", m->restored_dir, m->dir);
	forget(m);
}

json_t *fv__model_checkpoint_state(const fv__model_ckpt *m)
{
	json_t *paths = json_array(), *values = json_array();
	for (size_t i = 0; paths != NULL && values != NULL && i < m->n; i++)
		if (json_array_append_new(paths, json_string(m->paths[i])) != 0 ||
		    json_array_append_new(values, fv__json_number(m->values[i])) != 0)
			break;
	json_t *state = json_pack("{s:s?, s:o?, s:o?}", "dirpath", m->dir, "paths", paths,
	                          "values", values);
	if (state == NULL || json_array_size(paths) != m->n)
		fv_error(FV_ERR_NOMEM, "out of memory writing the ModelCheckpoint state");
	if (state != NULL && json_array_size(paths) != m->n) {
		json_decref(state);
		return NULL;
	}
	return state;
}

fv_status fv__model_checkpoint_restore(fv__model_ckpt *m, const json_t *state, const char *path)
{
	const json_t *dir = json_object_get(state, "dirpath");
	const json_t *paths = json_object_get(state, "paths"), *values = json_object_get(state, "values");
	if (!json_is_object(state) || !json_is_array(paths) || !json_is_array(values) ||
	    json_array_size(paths) != json_array_size(values) || (dir != NULL && !json_is_null(dir) &&
	                                                          !json_is_string(dir)))
		return fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: model_checkpoint: expected "
		                "{dirpath: string, paths: [strings], values: [numbers]} of one length",
		                path);
	forget(m);
	free(m->restored_dir);
	m->restored_dir = json_is_string(dir) ? fv__strdup(json_string_value(dir)) : NULL;
	for (size_t i = 0; i < json_array_size(paths); i++) {
		const json_t *p = json_array_get(paths, i), *v = json_array_get(values, i);
		if (!json_is_string(p) || !(json_is_number(v) || json_is_null(v)))
			return fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: model_checkpoint: "
			                "entry %zu is not a path and a number", path, i);
		/* null: an infinite value (json.h); NaN files are never kept better */
		fv_status rc = keep(m, json_string_value(p), json_is_null(v) ? (m->max ? -INFINITY : INFINITY)
		                                                             : json_number_value(v));
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

fv_status fv__model_checkpoint_open(fv__trainer *t)
{
	const fv_config_node *spec = fv__trainer_callback(fv_config_root(t->cfg), "ModelCheckpoint");
	fv__model_ckpt *m = &t->mc;
	if (spec == NULL)
		return FV_OK;
	mc_opts o = {0};
	fv_status rc = fv_options_parse(fv__model_checkpoint_options, spec, &o,
	                                fv_node_keypath(spec), hydra_keys);
	if (rc == FV_OK && (node_set(o.every_n_train_steps) || node_set(o.train_time_interval) ||
	                    node_set(o.save_on_train_epoch_end)))
		rc = fv_error_at(spec, FV_ERR_CONFIG, "ModelCheckpoint: every_n_train_steps, "
		                 "train_time_interval and save_on_train_epoch_end are not supported: "
		                 "fovea saves after each epoch's validation (every_n_epochs)");
	if (rc == FV_OK && o.monitor == NULL && o.save_top_k > 1)
		rc = fv_error_at(spec, FV_ERR_CONFIG, "ModelCheckpoint: save_top_k %lld needs a monitor "
		                 "(without one only -1, 0 or 1 make sense)", (long long)o.save_top_k);
	if (rc == FV_OK && o.monitor != NULL && fv__metric_index(o.monitor) < 0)
		rc = fv_error_at(spec, FV_ERR_CONFIG, "ModelCheckpoint: unknown monitor '%s'", o.monitor);
	if (rc == FV_OK) {
		m->on = true;
		m->metric = o.monitor ? fv__metric_index(o.monitor) : -1;
		m->max = o.mode != NULL && strcmp(o.mode, "max") == 0;
		m->top_k = o.save_top_k;
		m->every = o.every_n_epochs == FV_NONE_INT ? 1 : o.every_n_epochs;
		m->verbose = o.verbose;
		m->weights_only = o.save_weights_only;
		m->auto_names = o.auto_insert_metric_name;
		m->save_last = node_set(o.save_last);
		m->dir = fv__strdup(o.dirpath ? o.dirpath : "");
		m->pattern = fv__strdup(o.filename ? o.filename : "{epoch}-{step}");
		if (m->dir == NULL || m->pattern == NULL)
			rc = fv_error(FV_ERR_NOMEM, "out of memory reading ModelCheckpoint");
	}
	char name[1024];
	if (rc == FV_OK) /* a bad pattern is refused now, not after the first epoch */
		rc = file_name(t, name, sizeof name);
	if (rc == FV_OK && m->dir[0] == '\0') {
		free(m->dir);
		m->dir = fv__malloc(strlen(t->dir) + 16);
		if (m->dir != NULL)
			sprintf(m->dir, "%s/checkpoints", t->dir);
		else
			rc = fv_error(FV_ERR_NOMEM, "out of memory reading ModelCheckpoint");
	}
	if (rc == FV_OK)
		keep_restored(m);
	fv_options_free(fv__model_checkpoint_options, &o);
	return rc;
}

void fv__model_checkpoint_free(fv__model_ckpt *m)
{
	free(m->restored_dir);
	for (size_t i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->values);
	free(m->dir);
	free(m->pattern);
}

/* ---- file names ------------------------------------------------------------------------- */

/* A name's value when the epoch ends: epoch, step or a logged metric
** (Lightning puts 0 for a name it does not know). */
static double name_value(const fv__trainer *t, const char *name, bool *is_int)
{
	*is_int = true;
	if (strcmp(name, "epoch") == 0)
		return (double)(t->epochs_done - 1);
	if (strcmp(name, "step") == 0)
		return (double)t->global_step;
	int m = fv__metric_index(name);
	if (m < 0)
		return 0;
	*is_int = false;
	return t->metrics[m];
}

/* One value with a Python format specification: [0][width][.precision][d|f|e|g]. */
static fv_status format_field(char *out, size_t size, double v, bool is_int, const char *spec)
{
	const char *p = spec;
	bool zero = *p == '0';
	p += zero;
	int width = 0, prec = -1;
	while (*p >= '0' && *p <= '9')
		width = width * 10 + (*p++ - '0');
	if (*p == '.') {
		prec = 0;
		for (p++; *p >= '0' && *p <= '9';)
			prec = prec * 10 + (*p++ - '0');
	}
	char type = *p != '\0' ? *p++ : (is_int ? 'd' : 'r');
	if (*p != '\0' || strchr("dfeg r", type) == NULL || width > 64 || prec > 32)
		return fv_error(FV_ERR_CONFIG, "ModelCheckpoint: filename: format '%s' is not "
		                "supported (expected [0][width][.precision][d|f|e|g])", spec);
	if (type == 'd')
		snprintf(out, size, zero ? "%0*lld" : "%*lld", width, (long long)llround(v));
	else if (type == 'r') /* Python's str of a float: the shortest that reads back */
		for (int d = 1; d <= 17; d++) {
			snprintf(out, size, "%.*g", d, v);
			if (strtod(out, NULL) == v || isnan(v))
				break;
		}
	else {
		char fmt[16];
		snprintf(fmt, sizeof fmt, "%%%s*.*%c", zero ? "0" : "", type);
		snprintf(out, size, fmt, width, prec < 0 ? 6 : prec, v);
	}
	return FV_OK;
}

/* Lightning's _format_checkpoint_name. */
static fv_status file_name(const fv__trainer *t, char *out, size_t size)
{
	const char *p = t->mc.pattern;
	size_t n = 0;
	out[0] = '\0';
	while (*p != '\0' && n + 1 < size) {
		if (*p != '{') {
			out[n++] = *p++;
			out[n] = '\0';
			continue;
		}
		const char *close = strchr(p, '}');
		if (close == NULL)
			return fv_error(FV_ERR_CONFIG, "ModelCheckpoint: filename '%s': a '{' without "
			                "'}'", t->mc.pattern);
		char field[128] = "", *spec;
		snprintf(field, sizeof field, "%.*s", (int)(close - p - 1), p + 1);
		spec = strchr(field, ':');
		if (spec != NULL)
			*spec++ = '\0';
		bool is_int;
		double v = name_value(t, field, &is_int);
		char text[96];
		fv_status rc = format_field(text, sizeof text, v, is_int, spec ? spec : "");
		if (rc != FV_OK)
			return rc;
		n += (size_t)snprintf(out + n, size - n, "%s%s%s", t->mc.auto_names ? field : "",
		                      t->mc.auto_names ? "=" : "", text);
		if (n >= size)
			return fv_error(FV_ERR_ARG, "ModelCheckpoint: file name too long");
		p = close + 1;
	}
	return FV_OK;
}

/* ---- the ranking ------------------------------------------------------------------------- */

/* Torch's strict comparison; NaN is never better (Lightning maps it to the
** worst value). */
static bool better(const fv__model_ckpt *m, double a, double b)
{
	if (isnan(a))
		return false;
	return m->max ? a > b : a < b;
}

/* The index of the worst file kept. */
static size_t worst(const fv__model_ckpt *m)
{
	size_t w = 0;
	for (size_t i = 1; i < m->n; i++)
		if (better(m, m->values[w], m->values[i]) || isnan(m->values[i]))
			w = i;
	return w;
}

static fv_status keep(fv__model_ckpt *m, const char *path, double value)
{
	char **paths = fv__realloc(m->paths, (m->n + 1) * sizeof *paths);
	if (paths != NULL)
		m->paths = paths;
	double *values = paths ? fv__realloc(m->values, (m->n + 1) * sizeof *values) : NULL;
	if (values != NULL)
		m->values = values;
	char *copy = values ? fv__strdup(path) : NULL;
	if (copy == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory ranking checkpoints");
	m->paths[m->n] = copy;
	m->values[m->n++] = value;
	return FV_OK;
}

static void drop(fv__model_ckpt *m, size_t i)
{
	if (unlink(m->paths[i]) != 0)
		fprintf(stderr, "fovea: warning: could not remove %s\n", m->paths[i]);
	free(m->paths[i]);
	m->paths[i] = m->paths[--m->n];
	m->values[i] = m->values[m->n];
}

static fv_status save_ranked(fv__trainer *t)
{
	fv__model_ckpt *m = &t->mc;
	double value = m->metric >= 0 ? t->metrics[m->metric] : (double)t->epochs_done;
	bool monitorless = m->metric < 0;
	if (m->top_k == 0)
		return FV_OK;
	bool room = m->top_k < 0 || (int64_t)m->n < m->top_k;
	if (!room && !monitorless && !better(m, value, m->values[worst(m)]))
		return FV_OK;
	char name[1024], path[4096 + 1100];
	fv_status rc = file_name(t, name, sizeof name);
	if (rc != FV_OK)
		return rc;
	snprintf(path, sizeof path, "%s/%s.safetensors", m->dir, name);
	rc = fv__save_checkpoint_path(t, path, m->weights_only);
	if (rc != FV_OK)
		return rc;
	for (size_t i = 0; i < m->n; i++) /* the same name again: replaced, not added */
		if (strcmp(m->paths[i], path) == 0) {
			m->values[i] = value;
			return FV_OK;
		}
	if (!room)
		drop(m, monitorless ? 0 : worst(m));
	if (m->verbose)
		fprintf(stderr, "fovea: epoch %lld, step %lld: saved %s\n", (long long)t->epochs_done - 1,
		        (long long)t->global_step, path);
	return keep(m, path, value);
}

fv_status fv__model_checkpoint_epoch(fv__trainer *t)
{
	fv__model_ckpt *m = &t->mc;
	if (!m->on || m->every == 0 || t->epochs_done % m->every != 0)
		return FV_OK;
	fv_status rc = fv__make_dirs(m->dir);
	if (rc == FV_OK)
		rc = save_ranked(t);
	if (rc == FV_OK && m->save_last) {
		char path[4096 + 32];
		snprintf(path, sizeof path, "%s/last.safetensors", m->dir);
		rc = fv__save_checkpoint_path(t, path, m->weights_only);
	}
	return rc;
}
