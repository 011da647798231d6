/*
** test_data_published.c: the maheswaranathan_2023 and goldin_2022 readers
** (plugins/data/) on files written by the generators of tools/fixtures in each data
** set's layout.  Expectations are computed here from the planted truth the
** generators save beside the data (float32-exact values): the division by
** fr_normalization in float64, the z-scoring with the train movie's mean
** and unbiased std, the repeats stacked per cell, and the splits of the
** dataloader; validation clips are checked against numpy's own
** RandomState.choice.  Bad files (missing keys, wrong shapes, NaN,
** truncation) must stop with a message naming the file and the key.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_step_testing.h"
#include "fovea/data_plugin.h"
#include "fovea/npy.h"

static fv_registry *reg;
static fv_config *cfg;
static char dir[] = "/tmp/fovea_published_XXXXXX";

static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* Run a fixture generator of tools/fixtures into DIR/d, its truth in DIR/t. */
static void fixture(const char *name, const char *args)
{
	sh("/usr/bin/python3 %s/../tools/fixtures/%s.py %s/d --truth %s/t %s", FOVEA_TEST_SRCDIR, name,
	   dir, dir, args);
}

static void setup_with(const char *plugin)
{
	reg = dt_registry_with(plugin);
	strcpy(dir, "/tmp/fovea_published_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cfg = NULL;
}

static void mahe_setup(void)
{
	setup_with("data/data_maheswaranathan_2023.so");
}

static void goldin_setup(void)
{
	setup_with("data/data_goldin_2022.so");
}

static void teardown(void)
{
	sh("rm -rf %s", dir);
	fv_config_free(cfg);
	fv_registry_free(reg);
	unsetenv("OPENRETINA_CACHE_DIRECTORY");
}

/* Evaluate key `key` of a YAML text (printf-style, DIR available as %1$s). */
static fv_status eval(const char *key, fv_dvalue **out, const char *yaml)
{
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "published.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_data_eval(reg, fv_node_get(fv_config_root(cfg), key), out);
}

static fv_tensor *truth(const char *session, const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/t/%s/%s.npy", dir, session, name);
	fv_tensor *t = fv_npy_load(path);
	cr_assert_not_null(t, "%s: %s", path, fv_errmsg());
	return t;
}

static const fv_tensor *field(const fv_dvalue *split, const char *key, const char *item)
{
	const fv_dvalue *v = fv_dvalue_get(split, key);
	if (item != NULL)
		v = fv_dvalue_get(v, item);
	const fv_tensor *t = fv_dvalue_tensor_of(v);
	cr_assert_not_null(t, "no tensor %s.%s", key, item ? item : "");
	return t;
}

/* got == truth / fr item by item, the division in float64 as numpy's. */
static void expect_divided(const fv_tensor *got, const fv_tensor *want, double fr)
{
	cr_assert_eq(got->numel, want->numel);
	for (int64_t i = 0; i < got->numel; i++)
		cr_assert_eq(got->data[i], (float)((double)want->data[i] / fr), "item %lld: %g vs %g",
		             (long long)i, got->data[i], want->data[i] / fr);
}

/* normalize_train_test_movies computed here: mean and unbiased std of the
** train frames, (x - mean) / std in float32. */
static void movie_stats(const fv_tensor *train, float *mean, float *std)
{
	double s = 0, ss = 0;
	for (int64_t i = 0; i < train->numel; i++)
		s += train->data[i];
	double m = s / (double)train->numel;
	for (int64_t i = 0; i < train->numel; i++)
		ss += ((double)train->data[i] - m) * ((double)train->data[i] - m);
	*mean = (float)m;
	*std = (float)sqrt(ss / (double)(train->numel - 1));
}

static void expect_movie(const fv_tensor *got, const fv_tensor *want, float mean, float std)
{
	cr_assert_eq(got->ndim, 4);
	cr_assert_eq(got->shape[0], 1);
	for (int d = 0; d < 3; d++)
		cr_assert_eq(got->shape[d + 1], want->shape[d]);
	for (int64_t i = 0; i < got->numel; i++)
		cr_assert_eq(got->data[i], (want->data[i] - mean) / std, "item %lld", (long long)i);
}

/* A session's stimuli split against the truth of `folder`. */
static void expect_stimuli(const fv_dvalue *split, const char *folder, const char *stim_id)
{
	cr_assert_str_eq(fv_dvalue_class(split), FV_DV_MOVIES_SPLIT);
	fv_tensor *train = truth(folder, "stimulus_train"), *test = truth(folder, "stimulus_test");
	float mean, std;
	movie_stats(train, &mean, &std);
	expect_movie(field(split, "train", NULL), train, mean, std);
	expect_movie(field(split, "test_dict", "test"), test, mean, std);
	cr_assert_eq(fv_dvalue_number_of(fv_dvalue_get(split, "norm_mean")), (double)mean);
	cr_assert_eq(fv_dvalue_number_of(fv_dvalue_get(split, "norm_std")), (double)std);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(split, "stim_id")), stim_id);
	fv_tensor_free(train);
	fv_tensor_free(test);
}

/* ---- maheswaranathan_2023 ---------------------------------------------------------- */

TestSuite(maheswaranathan_2023, .init = mahe_setup, .fini = teardown);

#define MAHE_STIMULI                                                                      \
	"stimuli:\n"                                                                          \
	"  _target_: openretina.data_io.maheswaranathan_2023.stimuli.load_all_stimuli\n"      \
	"  _convert_: object\n"
#define MAHE_RESPONSES                                                                    \
	"responses:\n"                                                                        \
	"  _target_: openretina.data_io.maheswaranathan_2023.responses.load_all_responses\n"  \
	"  _convert_: object\n"

static fv_status mahe_stimuli(const char *base, const char *stim_type, fv_dvalue **out)
{
	char yaml[1024];
	snprintf(yaml, sizeof yaml, MAHE_STIMULI "  base_data_path: %s\n  stim_type: %s\n", base,
	         stim_type);
	return eval("stimuli", out, yaml);
}

static fv_status mahe_responses(const char *response_type, double fr, fv_dvalue **out)
{
	char yaml[1024];
	snprintf(yaml, sizeof yaml, MAHE_RESPONSES "  base_data_path: %s/d/neural_code_data\n"
	         "  response_type: %s\n  fr_normalization: %g\n", dir, response_type, fr);
	return eval("responses", out, yaml);
}

Test(maheswaranathan_2023, stimuli_of_every_session_normalised)
{
	fixture("maheswaranathan_2023", "--seed 3 --sessions 2");
	char base[512];
	snprintf(base, sizeof base, "%s/d/neural_code_data", dir);
	const char *types[] = {"naturalscene", "whitenoise"};
	for (int k = 0; k < 2; k++) {
		fv_dvalue *v = NULL;
		cr_assert_eq(mahe_stimuli(base, types[k], &v), FV_OK, "%s", fv_errmsg());
		cr_assert_eq(fv_dvalue_size(v), 2);
		const char *sessions[] = {"15-10-07", "15-10-08"};
		for (int s = 0; s < 2; s++) {
			char folder[64];
			snprintf(folder, sizeof folder, "%s/%s", sessions[s], types[k]);
			const fv_dvalue *split = fv_dvalue_get(v, sessions[s]);
			cr_assert_not_null(split, "no session %s", sessions[s]);
			expect_stimuli(split, folder, types[k]);
		}
		fv_dvalue_free(v);
	}
}

/* Repeats by cell: openretina stacks the cells (the only repeats stored)
** whatever response_type is read, and divides them. */
Test(maheswaranathan_2023, responses_divided_and_repeats_by_cell)
{
	fixture("maheswaranathan_2023", "--seed 4 --sessions 1 --neurons 4 --repeats 5");
	fv_dvalue *v = NULL;
	cr_assert_eq(mahe_responses("firing_rate_10ms", 2.5, &v), FV_OK, "%s", fv_errmsg());
	const fv_dvalue *split = fv_dvalue_get(v, "15-10-07");
	cr_assert_str_eq(fv_dvalue_class(split), FV_DV_RESPONSES_SPLIT);
	fv_tensor *train = truth("15-10-07/naturalscene", "responses_train_firing_rate_10ms");
	fv_tensor *test = truth("15-10-07/naturalscene", "responses_test_firing_rate_10ms");
	fv_tensor *reps = truth("15-10-07/naturalscene", "repeats_firing_rate_20ms");
	expect_divided(field(split, "train", NULL), train, 2.5);
	expect_divided(field(split, "test_dict", "test"), test, 2.5);
	const fv_tensor *by_trial = field(split, "test_by_trial_dict", "test");
	cr_assert_eq(by_trial->shape[0], 5);
	cr_assert_eq(by_trial->shape[1], 4);
	expect_divided(by_trial, reps, 2.5);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(split, "stim_id")), "naturalscene");
	fv_tensor_free(train);
	fv_tensor_free(test);
	fv_tensor_free(reps);
	fv_dvalue_free(v);
}

/* Repeats stored per response type are taken as stored: not divided. */
Test(maheswaranathan_2023, repeats_by_type_as_stored)
{
	fixture("maheswaranathan_2023", "--seed 5 --sessions 1 --repeats-by-type");
	fv_dvalue *v = NULL;
	cr_assert_eq(mahe_responses("firing_rate_5ms", 4.0, &v), FV_OK, "%s", fv_errmsg());
	const fv_dvalue *split = fv_dvalue_get(v, "15-10-07");
	fv_tensor *reps = truth("15-10-07/naturalscene", "repeats_firing_rate_5ms");
	expect_divided(field(split, "test_by_trial_dict", "test"), reps, 1.0);
	fv_tensor_free(reps);
	fv_dvalue_free(v);
}

/* The Hugging Face address resolves to the zip in the cache directory,
** unpacked there as openretina's get_local_file_path unpacks it. */
Test(maheswaranathan_2023, huggingface_zip_from_the_cache)
{
	fixture("maheswaranathan_2023", "--seed 6 --sessions 1 --zip");
	char cache[512];
	snprintf(cache, sizeof cache, "%s/d", dir);
	setenv("OPENRETINA_CACHE_DIRECTORY", cache, 1);
	fv_dvalue *v = NULL;
	cr_assert_eq(mahe_stimuli("https://huggingface.co/datasets/open-retina/open-retina/"
	                          "resolve/main/baccus_lab/maheswaranathan_2023/neural_code_data.zip",
	                          "naturalscene", &v), FV_OK, "%s", fv_errmsg());
	expect_stimuli(fv_dvalue_get(v, "15-10-07"), "15-10-07/naturalscene", "naturalscene");
	fv_dvalue_free(v);
	char unpacked[600];
	snprintf(unpacked, sizeof unpacked, "%s/baccus_lab/maheswaranathan_2023/neural_code_data",
	         cache);
	cr_assert_eq(access(unpacked, R_OK), 0, "%s was not unpacked", unpacked);
}

/* The validation clips numpy's RandomState(seed).choice draws. */
static void numpy_choice(int64_t n, int64_t k, int seed, int64_t *out)
{
	char cmd[1024], path[600];
	snprintf(path, sizeof path, "%s/choice.txt", dir);
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import numpy as np; print(*np.random."
	         "RandomState(%d).choice(%lld, %lld, replace=False))' > %s", seed, (long long)n,
	         (long long)k, path);
	cr_assert_eq(system(cmd), 0);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	for (int64_t i = 0; i < k; i++) {
		long long x;
		cr_assert_eq(fscanf(f, "%lld", &x), 1);
		out[i] = x;
	}
	fclose(f);
}

/* The data set the readers' values give, with the dataloader `loader`. */
static fv_data *open_data(const char *io, const char *loader)
{
	char yaml[4096];
	snprintf(yaml, sizeof yaml, "data_io:\n%s\ndataloader:\n%s\n", io, loader);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "published.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_config(reg, fv_config_root(cfg), &d), FV_OK, "%s", fv_errmsg());
	return d;
}

/* Every validation clip is the clip numpy draws, the training movie the
** other clips in order; the responses follow, divided by fr. */
static void expect_splits(const fv_data *d, size_t s, const char *folder, int64_t len,
                          int64_t n_val, double fr, int seed)
{
	fv_tensor *movie = truth(folder, "stimulus_train");
	char name[128];
	snprintf(name, sizeof name, "responses_train%s", strchr(folder, '/') ? "_firing_rate_10ms" : "");
	fv_tensor *resp = truth(folder, name);
	float mean, std;
	movie_stats(movie, &mean, &std);
	int64_t frames = movie->shape[0], hw = movie->shape[1] * movie->shape[2],
	        n = resp->shape[0], n_clips = frames / len;
	size_t k;
	const int64_t *clips = fv_data_validation_clips(d, s, &k);
	cr_assert_eq((int64_t)k, n_val);
	int64_t *want = malloc((size_t)n_val * sizeof *want);
	numpy_choice(n_clips, n_val, seed, want);
	bool *is_val = calloc((size_t)n_clips, sizeof *is_val);
	for (int64_t i = 0; i < n_val; i++) {
		cr_assert_eq(clips[i], want[i], "validation clip %lld", (long long)i);
		is_val[want[i]] = true;
	}
	const fv_movie_set *val = fv_data_validation(d, s), *train = fv_data_train(d, s);
	int64_t slot = 0;
	for (int64_t c = 0; c < n_clips; c++) {
		const fv_movie_set *set = is_val[c] ? val : train;
		int64_t at = is_val[c] ? 0 : slot++;
		for (int64_t i = 0; is_val[c] && i < n_val; i++)
			if (want[i] == c)
				at = i;
		for (int64_t t = 0; t < len; t++) {
			int64_t src = c * len + t, dst = at * len + t;
			for (int64_t p = 0; p < hw; p += hw / 3 + 1)
				cr_assert_eq(set->movie->data[dst * hw + p],
				             (movie->data[src * hw + p] - mean) / std);
			for (int64_t i = 0; i < n; i++)
				cr_assert_eq(set->responses->data[dst * n + i],
				             (float)((double)resp->data[i * frames + src] / fr));
		}
	}
	cr_assert_eq(train->movie->shape[1], (n_clips - n_val) * len);
	free(want);
	free(is_val);
	fv_tensor_free(movie);
	fv_tensor_free(resp);
}

Test(maheswaranathan_2023, dataloader_splits)
{
	fixture("maheswaranathan_2023", "--seed 7 --sessions 2 --train-frames 430");
	char io[1024];
	snprintf(io, sizeof io,
	         "  stimuli:\n    _target_: openretina.data_io.maheswaranathan_2023.stimuli."
	         "load_all_stimuli\n    base_data_path: %s/d/neural_code_data\n"
	         "  responses:\n    _target_: openretina.data_io.maheswaranathan_2023.responses."
	         "load_all_responses\n    base_data_path: %s/d/neural_code_data\n"
	         "    response_type: firing_rate_10ms\n    fr_normalization: 1.0\n", dir, dir);
	fv_data *d = open_data(io, "  _target_: openretina.data_io.base_dataloader."
	                           "multiple_movies_dataloaders\n  batch_size: 2\n"
	                           "  train_chunk_size: 10\n  clip_length: 20\n  num_val_clips: 5\n"
	                           "  allow_over_boundaries: true\n");
	cr_assert_eq(fv_data_n_sessions(d), 2);
	cr_assert_str_eq(fv_data_session_name(d, 0), "15-10-07");
	cr_assert_str_eq(fv_data_session_name(d, 1), "15-10-08");
	expect_splits(d, 0, "15-10-07/naturalscene", 20, 5, 1.0, 42);
	expect_splits(d, 1, "15-10-08/naturalscene", 20, 5, 1.0, 42);
	/* 16 training clips of 20 frames in chunks of 10: 32 samples */
	cr_assert_eq(fv_data_train(d, 0)->n_samples, 32);
	cr_assert_eq(fv_data_train(d, 0)->n_batches, 16);
	const fv_movie_set *test = fv_data_test_named(d, 0, "test");
	cr_assert_not_null(test);
	cr_assert_eq(test->chunk_size, 60); /* the whole test movie */
	cr_assert_not_null(test->responses_by_trial);
	fv_data_close(d);
}

/* ---- goldin_2022 ----------------------------------------------------------------------- */

TestSuite(goldin_2022, .init = goldin_setup, .fini = teardown);

#define GOLDIN_IO                                                                         \
	"  stimuli:\n"                                                                        \
	"    _target_: openretina.data_io.goldin_2022.stimuli.load_all_stimuli\n"             \
	"    base_data_path: %s/d\n"                                                          \
	"    specie: %s\n"                                                                    \
	"  responses:\n"                                                                      \
	"    _target_: openretina.data_io.goldin_2022.responses.load_all_responses\n"         \
	"    base_data_path: %s/d\n"                                                          \
	"    specie: %s\n"                                                                    \
	"    fr_normalization: 0.3\n"

static fv_status goldin_eval(const char *key, const char *specie, fv_dvalue **out)
{
	char yaml[2048], io[1024];
	snprintf(io, sizeof io, GOLDIN_IO, dir, specie, dir, specie);
	snprintf(yaml, sizeof yaml, "data_io:\n%s", io);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "published.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *n = fv_node_get(fv_node_get(fv_config_root(cfg), "data_io"), key);
	return fv_data_eval(reg, n, out);
}

Test(goldin_2022, sessions_of_the_specie)
{
	fixture("goldin_2022", "--seed 1 --mouse 2 --axolotl 1 --no-repeats mouse_2");
	fv_dvalue *v = NULL;
	cr_assert_eq(goldin_eval("stimuli", "mouse", &v), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_size(v), 2);
	expect_stimuli(fv_dvalue_get(v, "mouse_1"), "mouse_1", "naturalscene");
	expect_stimuli(fv_dvalue_get(v, "mouse_2"), "mouse_2", "naturalscene");
	fv_dvalue_free(v);
	cr_assert_eq(goldin_eval("stimuli", "axolotl", &v), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_size(v), 1);
	expect_stimuli(fv_dvalue_get(v, "axolotl_1"), "axolotl_1", "naturalscene");
	fv_dvalue_free(v);
}

/* normalize_stimuli false: the images as stored, norm_mean/std None. */
Test(goldin_2022, stimuli_as_stored)
{
	fixture("goldin_2022", "--seed 8 --mouse 1 --axolotl 0");
	char yaml[1024];
	snprintf(yaml, sizeof yaml,
	         "stimuli:\n  _target_: openretina.data_io.goldin_2022.stimuli.load_all_stimuli\n"
	         "  base_data_path: %s/d\n  normalize_stimuli: false\n  stim_type: images\n", dir);
	fv_dvalue *v = NULL;
	cr_assert_eq(eval("stimuli", &v, yaml), FV_OK, "%s", fv_errmsg());
	const fv_dvalue *split = fv_dvalue_get(v, "mouse_1");
	fv_tensor *train = truth("mouse_1", "stimulus_train");
	expect_movie(field(split, "train", NULL), train, 0.0f, 1.0f);
	cr_assert(isnan(fv_dvalue_number_of(fv_dvalue_get(split, "norm_mean"))));
	cr_assert_eq(fv_dvalue_kind_of(fv_dvalue_get(split, "norm_std")), FV_DV_NULL);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(split, "stim_id")), "images");
	fv_tensor_free(train);
	fv_dvalue_free(v);
}

Test(goldin_2022, responses_and_repeats_divided)
{
	fixture("goldin_2022", "--seed 2 --mouse 2 --axolotl 0 --no-repeats mouse_2");
	fv_dvalue *v = NULL;
	cr_assert_eq(goldin_eval("responses", "mouse", &v), FV_OK, "%s", fv_errmsg());
	const char *sessions[] = {"mouse_1", "mouse_2"};
	for (int s = 0; s < 2; s++) {
		const fv_dvalue *split = fv_dvalue_get(v, sessions[s]);
		fv_tensor *train = truth(sessions[s], "responses_train");
		fv_tensor *test = truth(sessions[s], "responses_test");
		expect_divided(field(split, "train", NULL), train, 0.3);
		expect_divided(field(split, "test_dict", "test"), test, 0.3);
		const fv_dvalue *trials = fv_dvalue_get(split, "test_by_trial_dict");
		if (s == 0) {
			fv_tensor *reps = truth(sessions[s], "repeats");
			expect_divided(field(split, "test_by_trial_dict", "test"), reps, 0.3);
			fv_tensor_free(reps);
		} else {
			cr_assert_eq(fv_dvalue_size(trials), 0, "mouse_2 has no repeats");
		}
		fv_tensor_free(train);
		fv_tensor_free(test);
	}
	fv_dvalue_free(v);
}

/* openretina's goldin loader: clip_length 1, train_chunk_size 1,
** num_val_clips 640, allow_over_boundaries false. */
Test(goldin_2022, dataloader_of_single_images)
{
	fixture("goldin_2022", "--seed 3 --mouse 1 --axolotl 1 --train-images 700 --test-images 20");
	char io[1024];
	snprintf(io, sizeof io, GOLDIN_IO, dir, "mouse", dir, "mouse");
	fv_data *d = open_data(io, "  _target_: openretina.data_io.base_dataloader."
	                           "multiple_movies_dataloaders\n  batch_size: 16\n"
	                           "  train_chunk_size: 1\n  clip_length: 1\n  num_val_clips: 640\n"
	                           "  allow_over_boundaries: false\n");
	cr_assert_eq(fv_data_n_sessions(d), 1);
	expect_splits(d, 0, "mouse_1", 1, 640, 0.3, 42);
	const fv_movie_set *train = fv_data_train(d, 0), *val = fv_data_validation(d, 0);
	cr_assert_eq(train->n_samples, 60);
	cr_assert_eq(train->n_batches, 3);
	cr_assert_eq(val->n_samples, 640);
	cr_assert_eq(val->n_batches, 40);
	const fv_movie_set *test = fv_data_test_named(d, 0, "test");
	cr_assert_eq(test->chunk_size, 1);
	cr_assert_eq(test->n_samples, 20);
	cr_assert_eq(test->batch_size, 16);
	/* chunks of a whole clip are neither shifted nor shuffled */
	fv_batch_iter *it = fv_data_train_batches(d, 42);
	fv_batch b;
	cr_assert(fv_batch_next(it, &b));
	for (int64_t i = 0; i < 16; i++)
		cr_assert_eq(b.input->data[i * b.input->numel / 16],
		             train->movie->data[i * train->movie->shape[2] * train->movie->shape[3]]);
	fv_batch_iter_free(it);
	fv_data_close(d);
}

/* ---- bad files ------------------------------------------------------------------------- */

/* Change the fixture's mouse_1.h5 with an h5py statement on `f`. */
static void edit(const char *statement)
{
	sh("/usr/bin/python3 -c 'import h5py, numpy as np; f = h5py.File(\"%s/d/mouse_1.h5\", \"a\"); "
	   "%s; f.close()'", dir, statement);
}

static void expect_failure(const char *key, const char *what)
{
	fv_dvalue *v = NULL;
	cr_assert_neq(goldin_eval(key, "mouse", &v), FV_OK);
	cr_assert_null(v);
	char path[512];
	snprintf(path, sizeof path, "%s/d/mouse_1.h5", dir);
	cr_assert_not_null(strstr(fv_errmsg(), path), "no file in: %s", fv_errmsg());
	cr_assert_not_null(strstr(fv_errmsg(), what), "no '%s' in: %s", what, fv_errmsg());
}

Test(goldin_2022, missing_key)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("del f[\"train/stimulus\"]");
	expect_failure("stimuli", "dataset '/train/stimulus' not found");
}

Test(goldin_2022, wrong_shape)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("del f[\"test/stimulus\"]; f[\"test/stimulus\"] = np.zeros((2, 3, 12, 12))");
	expect_failure("stimuli", "'/test/stimulus' has 4 dimensions, expected 3");
}

Test(goldin_2022, other_neurons_in_test)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("del f[\"test/response/binned\"]; f[\"test/response/binned\"] = np.zeros((3, 20))");
	expect_failure("responses", "'/test/response/binned' 3");
}

Test(goldin_2022, nan_responses)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("f[\"train/response/binned\"][1, 5] = np.nan");
	expect_failure("responses", "dataset '/train/response/binned' holds NaN");
}

Test(goldin_2022, repeats_disagree_with_test)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("f[\"test/repeats/cell2\"][0, 3] += 5");
	expect_failure("responses", "np.allclose");
}

Test(goldin_2022, cell_without_number)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	edit("f[\"test/repeats/cell_x\"] = np.zeros((4, 20))");
	expect_failure("responses", "test/repeats/cell_x");
}

Test(goldin_2022, truncated_file)
{
	fixture("goldin_2022", "--mouse 1 --axolotl 0");
	char path[512];
	snprintf(path, sizeof path, "%s/d/mouse_1.h5", dir);
	cr_assert_eq(truncate(path, 3000), 0);
	fv_dvalue *v = NULL;
	cr_assert_neq(goldin_eval("stimuli", "mouse", &v), FV_OK);
	cr_assert_not_null(strstr(fv_errmsg(), path), "%s", fv_errmsg());
}

Test(maheswaranathan_2023, missing_repeats_group)
{
	fixture("maheswaranathan_2023", "--sessions 1");
	sh("/usr/bin/python3 -c 'import h5py; f = h5py.File(\"%s/d/neural_code_data/ganglion_cell_data/"
	   "15-10-07/naturalscene.h5\", \"a\"); del f[\"test/repeats\"]'", dir);
	fv_dvalue *v = NULL;
	cr_assert_neq(mahe_responses("firing_rate_20ms", 1.0, &v), FV_OK);
	cr_assert_not_null(strstr(fv_errmsg(), "naturalscene.h5: group 'test/repeats' not found"),
	                   "%s", fv_errmsg());
}
