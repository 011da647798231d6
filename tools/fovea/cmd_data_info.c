/*
** cmd_data_info.c: `fovea data-info CONFIG [key=value ...] [--dump DIR]`:
** what `fovea train` would read, without training.  The config is composed
** and the data opened exactly as fv_train() does (fv_data_open_config), so
** the sessions, splits and batches printed are the ones training sees.
**
** --dump DIR writes what the readers produced, for comparing with
** openretina's loaders array by array:
**   DIR/<session>/stimulus_<split>.npy   (C, T, H, W) float32, normalised
**   DIR/<session>/responses_<split>.npy  (N, T) float32
**   DIR/<session>/responses_<test>_by_trial.npy  (trials, N, T), when kept
** for the splits train and validation (after the validation clips are taken
** out, as multiple_movies_dataloaders cuts them) and test (the stimulus
** "test") or test_<name> (every other test stimulus);
**   DIR/data_info.json   openretina's compute_data_info;
**   DIR/batches.json     the first training epoch's batches, in order.
*/
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fovea/data_plugin.h"
#include "fovea/figure.h"
#include "fovea/npy.h"

typedef struct info_args {
	cli_config_args cfg;
	const char *dump;
} info_args;

static int parse_args(int argc, char **argv, info_args *a)
{
	const cli_cmd *self = &cli_cmd_data_info;
	for (int i = 1; i < argc; i++) {
		int rc = cli_config_arg(self, argc, argv, &i, &a->cfg);
		if (rc >= 0 && rc != CLI_OK)
			return rc;
		if (rc == CLI_OK)
			continue;
		if (strcmp(argv[i], "--dump") != 0)
			return cli_usage_error(self, "unknown option '%s'", argv[i]);
		if (i + 1 >= argc)
			return cli_usage_error(self, "--dump needs a value");
		a->dump = argv[++i];
	}
	return cli_config_finish(self, &a->cfg);
}

/* The run's seed as fv_train() reads it; *given false for a null or
** missing seed (training then takes one from the clock). */
static int read_seed(const fv_config_node *root, uint64_t *seed, bool *given)
{
	const fv_config_node *n = fv_node_get(root, "seed");
	int64_t v = 0;
	*given = n != NULL && !fv_node_is_null(n);
	if (*given && fv_node_to_int(n, &v) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (v < 0 || v > 0xffffffffLL)
		return cli_fail("%s: seed: expected 0 .. 2**32 - 1 (numpy's), got %lld",
		                fv_node_file(n) ? fv_node_file(n) : "config", (long long)v);
	*seed = (uint64_t)v;
	return CLI_OK;
}

/* ---- the summary ------------------------------------------------------------------ */

static void print_test_name(const fv_movie_set *t)
{
	printf("      test '%s': %lld frames", t->stimulus, (long long)t->movie->shape[1]);
	if (t->responses_by_trial != NULL)
		printf(" x %lld trials", (long long)t->responses_by_trial->shape[0]);
	printf(", %lld samples of %lld frames, %lld batches\n", (long long)t->n_samples,
	       (long long)t->chunk_size, (long long)t->n_batches);
}

static void print_session(const fv_data *d, size_t s)
{
	const fv_movie_set *tr = fv_data_train(d, s), *va = fv_data_validation(d, s);
	int64_t neurons = fv_data_get_info(d)->n_neurons[s];
	printf("  %s: %lld neurons\n", fv_data_session_name(d, s), (long long)neurons);
	for (size_t i = 0; i < fv_data_n_filters(d, s); i++) {
		int64_t removed;
		const char *name = fv_data_filter(d, s, i, &removed);
		printf("      filter '%s' removed %lld neurons\n", name, (long long)removed);
	}
	printf("      train: %lld frames (%lld clips), responses %lld frames; %lld chunks of %lld "
	       "frames, %lld batches\n",
	       (long long)tr->movie->shape[1], (long long)(tr->movie->shape[1] / va->chunk_size),
	       (long long)tr->responses->shape[0], (long long)tr->n_samples,
	       (long long)tr->chunk_size, (long long)tr->n_batches);
	size_t n_val;
	const int64_t *clips = fv_data_validation_clips(d, s, &n_val);
	printf("      validation: %lld frames (%zu clips of %lld frames:", (long long)va->movie->shape[1],
	       n_val, (long long)va->chunk_size);
	for (size_t i = 0; i < n_val; i++)
		printf(" %lld", (long long)clips[i]);
	printf("), %lld batches\n", (long long)va->n_batches);
	for (size_t i = 0; i < fv_data_n_test(d, s); i++)
		print_test_name(fv_data_test(d, s, i));
}

/* data_io.data_info's scalars (rates, pixel size, ...) as the config has them. */
static void print_data_info_keys(const fv_config_node *root)
{
	const fv_config_node *di = fv_node_path(root, "data_io.data_info");
	for (size_t i = 0; di != NULL && i < fv_node_size(di); i++) {
		const char *text = fv_node_text(fv_node_at(di, i));
		printf("  %s: %s\n", fv_node_key_at(di, i), text != NULL ? text : "(not a scalar)");
	}
}

static int print_summary(fv_data *d, const fv_config_node *root, uint64_t seed)
{
	const fv_data_info *info = fv_data_get_info(d);
	size_t n = fv_data_n_sessions(d);
	printf("sessions: %zu\n", n);
	for (size_t s = 0; s < n; s++)
		print_session(d, s);
	printf("stimulus: %lld channels x %lld x %lld pixels (channels, height, width); "
	       "norm_mean %g, norm_std %g\n",
	       (long long)info->input_shape[0], (long long)info->input_shape[1],
	       (long long)info->input_shape[2], info->stim_mean, info->stim_std);
	if (fv_node_path(root, "data_io.data_info") != NULL) {
		printf("data_info:\n");
		print_data_info_keys(root);
	}
	fv_batch_iter *train = fv_data_train_batches(d, seed);
	fv_batch_iter *val = train != NULL ? fv_data_validation_batches(d) : NULL;
	if (val == NULL) {
		fv_batch_iter_free(train);
		return cli_fail("%s", fv_errmsg());
	}
	printf("epoch: %lld training batches (LongCycler: %zu sessions x the most batches of one), "
	       "%lld validation batches\n",
	       (long long)fv_batch_iter_len(train), n, (long long)fv_batch_iter_len(val));
	fv_batch_iter_free(val);
	fv_batch_iter_free(train);
	return CLI_OK;
}

/* ---- --dump ----------------------------------------------------------------------- */

static int make_dir(const char *path)
{
	if (mkdir(path, 0777) != 0 && errno != EEXIST)
		return cli_fail("--dump: cannot create directory '%s': %s", path, strerror(errno));
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return cli_fail("--dump: '%s' exists and is not a directory", path);
	return CLI_OK;
}

/* (rows, cols) -> (cols, rows), or (k, rows, cols) -> (k, cols, rows). */
static fv_tensor *swap_last_two(const fv_tensor *t)
{
	int nd = t->ndim;
	int64_t k = nd == 3 ? t->shape[0] : 1, rows = t->shape[nd - 2], cols = t->shape[nd - 1];
	int64_t shape[3] = {k, cols, rows};
	fv_tensor *out = fv_tensor_new(nd, nd == 3 ? shape : shape + 1);
	for (int64_t b = 0; out != NULL && b < k; b++)
		for (int64_t r = 0; r < rows; r++)
			for (int64_t c = 0; c < cols; c++)
				out->data[(b * cols + c) * rows + r] = t->data[(b * rows + r) * cols + c];
	return out;
}

static int save(const char *dir, const char *what, const char *split, const char *suffix,
                const fv_tensor *t, bool time_first)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/%s_%s%s.npy", dir, what, split, suffix);
	fv_tensor *own = time_first ? swap_last_two(t) : NULL;
	if (time_first && own == NULL)
		return cli_fail("--dump: out of memory writing %s", path);
	fv_status rc = fv_npy_save(path, own != NULL ? own : t);
	fv_tensor_free(own);
	return rc == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
}

static int save_set(const char *dir, const char *split, const fv_movie_set *set)
{
	int rc = save(dir, "stimulus", split, "", set->movie, false);
	if (rc == CLI_OK)
		rc = save(dir, "responses", split, "", set->responses, true);
	if (rc == CLI_OK && set->responses_by_trial != NULL)
		rc = save(dir, "responses", split, "_by_trial", set->responses_by_trial, true);
	return rc;
}

/* A session name becomes a directory: no path separators, no dot names. */
static int check_session_name(const char *name)
{
	if (name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return cli_fail("--dump: session '%s' cannot be a directory name", name);
	return CLI_OK;
}

static int dump_session(const char *dir, const fv_data *d, size_t s)
{
	const char *name = fv_data_session_name(d, s);
	char sdir[4200];
	snprintf(sdir, sizeof sdir, "%s/%s", dir, name);
	int rc = check_session_name(name);
	if (rc == CLI_OK)
		rc = make_dir(sdir);
	if (rc == CLI_OK)
		rc = save_set(sdir, "train", fv_data_train(d, s));
	if (rc == CLI_OK)
		rc = save_set(sdir, "validation", fv_data_validation(d, s));
	for (size_t i = 0; rc == CLI_OK && i < fv_data_n_test(d, s); i++) {
		const fv_movie_set *t = fv_data_test(d, s, i);
		char split[1100];
		snprintf(split, sizeof split, strcmp(t->stimulus, "test") == 0 ? "test" : "test_%s",
		         t->stimulus);
		rc = save_set(sdir, split, t);
	}
	return rc;
}

/* A number as json: integers as integers (numpy's int arrays), else reals. */
static json_t *json_num(double v)
{
	if (v == floor(v) && fabs(v) < 9e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* A tensor as nested lists of its shape (a 0-d one as a number). */
static json_t *json_tensor(const fv_tensor *t, int dim, int64_t *at, bool as_real)
{
	if (dim == t->ndim) {
		double v = t->data[(*at)++];
		return as_real ? json_real(v) : json_num(v);
	}
	json_t *list = json_array();
	for (int64_t i = 0; list != NULL && i < t->shape[dim]; i++)
		json_array_append_new(list, json_tensor(t, dim + 1, at, as_real));
	return list;
}

static json_t *tensor_json(const fv_tensor *t, bool as_real)
{
	int64_t at = 0;
	return json_tensor(t, 0, &at, as_real);
}

/* A config value as json (data_io.data_info, merged in as openretina does). */
static json_t *node_json(const fv_config_node *n)
{
	fv_node_type kind = fv_node_kind(n);
	if (kind == FV_NODE_MAP || kind == FV_NODE_SEQ) {
		json_t *v = kind == FV_NODE_MAP ? json_object() : json_array();
		for (size_t i = 0; i < fv_node_size(n); i++) {
			json_t *item = node_json(fv_node_at(n, i));
			if (kind == FV_NODE_MAP)
				json_object_set_new(v, fv_node_key_at(n, i), item);
			else
				json_array_append_new(v, item);
		}
		return v;
	}
	const char *text = fv_node_text(n);
	if (text == NULL || fv_node_is_null(n))
		return json_null();
	if (!fv_node_quoted(n)) {
		char *end;
		double x = strtod(text, &end);
		if (end != text && *end == '\0')
			return strchr(text, '.') || strchr(text, 'e') ? json_real(x) : json_num(x);
		if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
			return json_boolean(text[0] == 't');
	}
	return json_string(text);
}

static json_t *session_kwargs_json(const fv_data_info *info, size_t s)
{
	json_t *kw = json_object();
	for (size_t k = 0; k < info->n_session_info[s]; k++)
		json_object_set_new(kw, info->session_info_names[s][k],
		                    tensor_json(info->session_info[s][k], false));
	return kw;
}

static json_t *data_info_json(const fv_data_info *info, const fv_config_node *root)
{
	json_t *neurons = json_object(), *means = json_object(), *kwargs = json_object();
	for (size_t s = 0; s < info->n_sessions; s++) {
		const char *name = info->sessions[s];
		json_object_set_new(neurons, name, json_integer(info->n_neurons[s]));
		json_object_set_new(means, name, tensor_json(info->mean_activity[s], true));
		json_object_set_new(kwargs, name, session_kwargs_json(info, s));
	}
	json_t *root_json = json_pack("{s:o, s:o, s:[I, I, I], s:o, s:f, s:f}", "n_neurons_dict",
	                              neurons, "mean_activity_dict", means, "input_shape",
	                              (json_int_t)info->input_shape[0],
	                              (json_int_t)info->input_shape[1],
	                              (json_int_t)info->input_shape[2], "sessions_kwargs", kwargs,
	                              "stim_mean", info->stim_mean, "stim_std", info->stim_std);
	const fv_config_node *partial = fv_node_path(root, "data_io.data_info");
	for (size_t i = 0; root_json != NULL && partial != NULL && i < fv_node_size(partial); i++)
		json_object_set_new(root_json, fv_node_key_at(partial, i),
		                    node_json(fv_node_at(partial, i)));
	return root_json;
}

static int write_json(const char *dir, const char *file, json_t *j)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	char *text = j != NULL ? json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(j);
	if (text == NULL)
		return cli_fail("--dump: out of memory writing %s", path);
	int rc = fv_write_file_atomic(path, text, strlen(text)) == FV_OK ? CLI_OK
	                                                                : cli_fail("%s", fv_errmsg());
	free(text);
	return rc;
}

/* The first training epoch's batches, drawn as fv_train() draws them. */
static json_t *batches_json(fv_data *d, uint64_t seed)
{
	fv_batch_iter *it = fv_data_train_batches(d, seed);
	if (it == NULL)
		return NULL;
	json_t *list = json_array();
	fv_batch b;
	while (list != NULL && fv_batch_next(it, &b)) {
		int64_t n;
		const int64_t *starts = fv_batch_iter_starts(it, &n);
		json_t *st = json_array();
		for (int64_t i = 0; i < n; i++)
			json_array_append_new(st, json_integer(starts[i]));
		json_array_append_new(list, json_pack("{s:s, s:o, s:I}", "session", b.session, "starts",
		                                      st, "length", (json_int_t)b.input->shape[2]));
	}
	fv_batch_iter_free(it);
	return json_pack("{s:I, s:o}", "seed", (json_int_t)seed, "batches", list);
}

static int dump(const char *dir, fv_data *d, const fv_config_node *root, uint64_t seed)
{
	int rc = make_dir(dir);
	for (size_t s = 0; rc == CLI_OK && s < fv_data_n_sessions(d); s++)
		rc = dump_session(dir, d, s);
	if (rc == CLI_OK)
		rc = write_json(dir, "data_info.json", data_info_json(fv_data_get_info(d), root));
	if (rc == CLI_OK) {
		json_t *b = batches_json(d, seed);
		rc = b != NULL ? write_json(dir, "batches.json", b) : cli_fail("%s", fv_errmsg());
	}
	if (rc == CLI_OK)
		printf("wrote %s: %zu session directories, data_info.json, batches.json\n", dir,
		       fv_data_n_sessions(d));
	return rc;
}

static int run_data_info(int argc, char **argv)
{
	info_args a = {0};
	a.cfg.overrides = calloc((size_t)argc, sizeof *a.cfg.overrides);
	if (a.cfg.overrides == NULL)
		return cli_fail("out of memory");
	int rc = parse_args(argc, argv, &a);
	fv_config *cfg = rc == CLI_OK ? fv_config_compose(a.cfg.config, a.cfg.config_dir,
	                                                   a.cfg.n_overrides, a.cfg.overrides)
	                              : NULL;
	free(a.cfg.overrides);
	if (rc != CLI_OK)
		return rc;
	if (cfg == NULL)
		return cli_fail("%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(cfg);
	uint64_t seed = 0;
	bool seeded = false;
	fv_registry *reg = NULL;
	fv_data *d = NULL;
	rc = read_seed(root, &seed, &seeded);
	if (rc == CLI_OK && (reg = cli_load_registry()) == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK && fv_data_open_config(reg, root, &d) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && !seeded)
		printf("seed: null (training draws one from the clock); batches here use seed 0\n");
	if (rc == CLI_OK)
		rc = print_summary(d, root, seed);
	if (rc == CLI_OK && a.dump != NULL)
		rc = dump(a.dump, d, root, seed);
	fv_data_close(d);
	fv_registry_free(reg);
	fv_config_free(cfg);
	return rc;
}

const cli_cmd cli_cmd_data_info = {
	.name = "data-info",
	.summary = "what a training config would read: sessions, splits, batches",
	.usage = "fovea data-info CONFIG.yaml [key=value ...] [--dump DIR]\n"
	         "       fovea data-info --config-dir DIR --config-name NAME [key=value ...] [...]\n"
	         "\n"
	         "Compose the config as `fovea train` does, open its data (data_io, dataloader)\n"
	         "and print what training would read, without training: the sessions, their\n"
	         "neurons (and how many each of the reader's filters removed), the training,\n"
	         "validation and test splits with their clips, chunks and batches, the\n"
	         "stimulus size and normalisation, data_io.data_info (rates, pixel size), and\n"
	         "the batches per epoch.\n"
	         "\n"
	         CLI_CONFIG_DIR_USAGE
	         "  --dump DIR      also write, per session, DIR/<session>/stimulus_<split>.npy\n"
	         "                  (C, T, H, W) and responses_<split>.npy (N, T) for the splits\n"
	         "                  train, validation, test or test_<name> (float32, normalised,\n"
	         "                  after filtering), responses_<test>_by_trial.npy (trials, N, T)\n"
	         "                  where trials are kept; DIR/data_info.json (openretina's\n"
	         "                  compute_data_info) and DIR/batches.json (the first training\n"
	         "                  epoch's batches in order: session, chunk start frames within\n"
	         "                  its training movie, chunk length; with the config's seed)\n",
	.run = run_data_info,
};
