/*
** test_data_karamanlis.c: the karamanlis_2024 data steps (plugins/data/)
** on sessions written by tools/fixtures/karamanlis_2024.py from a planted
** truth.  The generator also writes what the readers must give, computed
** independently with numpy (the fixation movie by openretina's numpy port,
** the resize as a resampling matrix): stimuli, responses, splits and
** batches are checked against it.  Damaged files are made here.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_step_testing.h"
#include "expect_error.h"
#include "fovea/data_plugin.h"
#include "fovea/npy.h"

static fv_registry *reg;
static fv_config *cfg;
static char dir[] = "/tmp/fovea_kara_XXXXXX";

#define S0 "20220101_mouse_s0"
#define S1 "20220102_mouse_s1"

static void setup(void)
{
	reg = dt_registry_with("data/data_karamanlis_2024.so");
	strcpy(dir, "/tmp/fovea_kara_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cfg = NULL;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

TestSuite(data_karamanlis, .init = setup, .fini = teardown);

/* Run the generator into dir with extra arguments. */
static void generate(const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../tools/fixtures/karamanlis_2024.py %s "
	         "--frames 16 --test-frames 8 --image-size 300 420 %s", FOVEA_TEST_SRCDIR, dir, args);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Run /usr/bin/python3 -c on a script given the folder as argv[1]. */
static void python(const char *script)
{
	char path[256];
	snprintf(path, sizeof path, "%s/edit.py", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", path, dir);
	cr_assert_eq(system(cmd), 0, "%s", script);
}

/* Evaluate the step `target` (stimuli or responses) on dir/sessions. */
static fv_status eval_step(const char *target, const char *extra, fv_dvalue **out)
{
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
	         "step:\n"
	         "  _target_: openretina.data_io.karamanlis_2024.%s\n"
	         "  _convert_: object\n"
	         "  base_data_path: %s/sessions\n"
	         "  stim_type: fixationmovie\n"
	         "%s", target, dir, extra);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "karamanlis.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_data_eval(reg, fv_node_get(fv_config_root(cfg), "step"), out);
}

static fv_dvalue *stimuli(bool normalize)
{
	fv_dvalue *v = NULL;
	fv_status rc = eval_step("stimuli.load_all_stimuli",
	                         normalize ? "  downsampled_size: [30, 40]\n"
	                                   : "  downsampled_size: [30, 40]\n"
	                                     "  normalize_stimuli: false\n", &v);
	cr_assert_eq(rc, FV_OK, "%s", fv_errmsg());
	return v;
}

static fv_dvalue *responses(double fr)
{
	char extra[64];
	snprintf(extra, sizeof extra, "  fr_normalization: %g\n", fr);
	fv_dvalue *v = NULL;
	cr_assert_eq(eval_step("responses.load_all_responses", extra, &v), FV_OK, "%s", fv_errmsg());
	return v;
}

static fv_tensor *expected(const char *session, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/expected/%s/%s.npy", dir, session, name);
	fv_tensor *t = fv_npy_load(path);
	cr_assert_not_null(t, "%s", fv_errmsg());
	return t;
}

/* got == want * scale + shift within tol, shapes equal. */
static void assert_close(const fv_tensor *got, const fv_tensor *want, double scale, double shift,
                         double tol, const char *what)
{
	cr_assert_not_null(got, "%s: no tensor", what);
	cr_assert_eq(got->ndim, want->ndim, "%s: %d dims, want %d", what, got->ndim, want->ndim);
	for (int i = 0; i < got->ndim; i++)
		cr_assert_eq(got->shape[i], want->shape[i], "%s: dim %d is %lld, want %lld", what, i,
		             (long long)got->shape[i], (long long)want->shape[i]);
	for (int64_t i = 0; i < got->numel; i++) {
		double w = want->data[i] * scale + shift;
		cr_assert(fabs(got->data[i] - w) <= tol, "%s[%lld] = %.7g, want %.7g", what,
		          (long long)i, (double)got->data[i], w);
	}
}

static const fv_tensor *tensor_at(const fv_dvalue *v, const char *k1, const char *k2,
                                  const char *k3)
{
	v = fv_dvalue_get(v, k1);
	cr_assert_not_null(v, "no '%s'", k1);
	v = fv_dvalue_get(v, k2);
	cr_assert_not_null(v, "no '%s'", k2);
	if (k3 != NULL)
		v = fv_dvalue_get(v, k3);
	cr_assert_not_null(v);
	return fv_dvalue_tensor_of(v);
}

static void assert_sessions(const fv_dvalue *v, const char *first, const char *second)
{
	cr_assert_eq(fv_dvalue_size(v), 2, "sessions: %zu", fv_dvalue_size(v));
	cr_assert_str_eq(fv_dvalue_key_at(v, 0), first);
	cr_assert_str_eq(fv_dvalue_key_at(v, 1), second);
}

Test(data_karamanlis, stimuli_are_the_planted_fixation_movies)
{
	generate("--seed 3");
	fv_dvalue *v = stimuli(false);
	/* the marmoset session, the other stimulus type and the plain file are no sessions */
	assert_sessions(v, S0, S1);
	const char *sessions[2] = {S0, S1};
	for (int s = 0; s < 2; s++) {
		const fv_dvalue *split = fv_dvalue_get(v, sessions[s]);
		cr_assert_str_eq(fv_dvalue_class(split), FV_DV_MOVIES_SPLIT);
		cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(split, "stim_id")), "fixationmovie");
		cr_assert(isnan(fv_dvalue_number_of(fv_dvalue_get(split, "norm_mean"))));
		fv_tensor *train = expected(sessions[s], "stimulus_train");
		fv_tensor *test = expected(sessions[s], "stimulus_test");
		/* uint8 images: float32 resampling against numpy's float64 */
		assert_close(tensor_at(v, sessions[s], "train", NULL), train, 1, 0, 2e-3, "train");
		assert_close(tensor_at(v, sessions[s], "test_dict", "test"), test, 1, 0, 2e-3, "test");
		fv_tensor_free(train);
		fv_tensor_free(test);
	}
	/* the cache is written beside the .mat and read back the next time */
	char npz[512];
	snprintf(npz, sizeof npz, "%s/sessions/%s/%s_fixationmovie_data_extracted_stimuli_30_40.npz",
	         dir, S1, S1);
	struct stat st;
	cr_assert_eq(stat(npz, &st), 0, "no cache %s", npz);
	fv_dvalue *again = stimuli(false);
	for (int s = 0; s < 2; s++) {
		const fv_tensor *a = tensor_at(v, sessions[s], "train", NULL);
		const fv_tensor *b = tensor_at(again, sessions[s], "train", NULL);
		cr_assert_eq(memcmp(a->data, b->data, (size_t)a->numel * sizeof *a->data), 0);
	}
	fv_dvalue_free(again);
	fv_dvalue_free(v);
}

/* The cache as numpy reads it: what np.load gives is what fovea gave. */
Test(data_karamanlis, cache_is_an_npz_numpy_reads)
{
	generate("--seed 4 --sessions 1 --no-expected --format v5");
	fv_dvalue *v = stimuli(false);
	char out[512];
	snprintf(out, sizeof out, "%s/train.npy", dir);
	cr_assert_eq(fv_npy_save(out, tensor_at(v, S0, "train", NULL)), FV_OK);
	python("import numpy as np, sys, glob\n"
	       "d = sys.argv[1]\n"
	       "z = np.load(glob.glob(d + '/sessions/*/*_extracted_stimuli_30_40.npz')[0])\n"
	       "assert sorted(z.files) == ['test_data', 'train_data'], z.files\n"
	       "assert z['train_data'].dtype == np.float32\n"
	       "assert z['test_data'].shape == (1, 8, 30, 40), z['test_data'].shape\n"
	       "assert (z['train_data'] == np.load(d + '/train.npy')).all()\n");
	fv_dvalue_free(v);
}

Test(data_karamanlis, normalize_stimuli_zscores_with_the_training_movie)
{
	generate("--seed 5 --sessions 1");
	fv_dvalue *v = stimuli(true);
	fv_tensor *train = expected(S0, "stimulus_train");
	fv_tensor *test = expected(S0, "stimulus_test");
	double sum = 0, sq = 0;
	for (int64_t i = 0; i < train->numel; i++)
		sum += train->data[i];
	double mean = sum / (double)train->numel;
	for (int64_t i = 0; i < train->numel; i++)
		sq += (train->data[i] - mean) * (train->data[i] - mean);
	double std = sqrt(sq / (double)(train->numel - 1)); /* torch's std is unbiased */
	const fv_dvalue *split = fv_dvalue_get(v, S0);
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(split, "norm_mean")), mean, 1e-3);
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(split, "norm_std")), std, 1e-3);
	assert_close(tensor_at(v, S0, "train", NULL), train, 1 / std, -mean / std, 1e-4, "train");
	assert_close(tensor_at(v, S0, "test_dict", "test"), test, 1 / std, -mean / std, 1e-4, "test");
	fv_tensor_free(train);
	fv_tensor_free(test);
	fv_dvalue_free(v);
}

Test(data_karamanlis, responses_are_the_planted_rates)
{
	generate("--seed 6 --format v5 --neurons 4 --repeats 2");
	fv_dvalue *v = responses(2.5);
	assert_sessions(v, S0, S1);
	const char *sessions[2] = {S0, S1};
	for (int s = 0; s < 2; s++) {
		const fv_dvalue *split = fv_dvalue_get(v, sessions[s]);
		cr_assert_str_eq(fv_dvalue_class(split), FV_DV_RESPONSES_SPLIT);
		fv_tensor *train = expected(sessions[s], "responses_train");
		fv_tensor *test = expected(sessions[s], "responses_test");
		fv_tensor *trials = expected(sessions[s], "responses_test_by_trial");
		assert_close(tensor_at(v, sessions[s], "train", NULL), train, 1 / 2.5, 0, 1e-6, "train");
		assert_close(tensor_at(v, sessions[s], "test_dict", "test"), test, 1 / 2.5, 0, 1e-6,
		             "test");
		assert_close(tensor_at(v, sessions[s], "test_by_trial_dict", "test"), trials, 1 / 2.5,
		             0, 1e-6, "test_by_trial");
		fv_tensor_free(train);
		fv_tensor_free(test);
		fv_tensor_free(trials);
	}
	fv_dvalue_free(v);
}

/* A zipped session is unpacked where it lies; openretina keys it by the
** archive's name. */
Test(data_karamanlis, zip_sessions_are_unpacked)
{
	generate("--seed 7 --zip --no-expected");
	fv_dvalue *v = stimuli(false);
	assert_sessions(v, S0 ".zip", S1);
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/sessions/%s.zip", dir, S0);
	cr_assert_neq(stat(path, &st), 0, "the archive was not removed");
	snprintf(path, sizeof path, "%s/sessions/%s/%s_fixationmovie_data.mat", dir, S0, S0);
	cr_assert_eq(stat(path, &st), 0, "not unpacked to %s", path);
	fv_dvalue_free(v);
	v = responses(1.0); /* now a folder, as openretina's second listing sees it */
	assert_sessions(v, S0, S1);
	fv_dvalue_free(v);
}

/* The dataloader over the steps' values: the validation clips and a
** training batch hold the planted frames and rates. */
Test(data_karamanlis, splits_and_batches_hold_the_planted_data)
{
	generate("--seed 8 --sessions 1 --frames 30 --neurons 3");
	fv_dvalue *mv = stimuli(false), *rv = responses(1.0);
	fv_data_options o;
	fv_data_options_default(&o);
	o.clip_length = 10;
	o.num_val_clips = 2;
	o.train_chunk_size = 5;
	o.batch_size = 2;
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, mv, rv, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_n_sessions(d), 1);
	fv_tensor *movie = expected(S0, "stimulus_train");
	fv_tensor *resp = expected(S0, "responses_train"); /* (N, T) */
	int64_t hw = 30 * 40, frames = resp->shape[1], n = resp->shape[0];
	size_t nclips = 0;
	const int64_t *clips = fv_data_validation_clips(d, 0, &nclips);
	cr_assert_eq(nclips, 2);
	const fv_movie_set *val = fv_data_validation(d, 0);
	for (size_t c = 0; c < nclips; c++)
		for (int64_t t = 0; t < 10; t++) {
			int64_t f = clips[c] * 10 + t, at = (int64_t)c * 10 + t;
			cr_assert(fabs(val->movie->data[at * hw + 7] - movie->data[f * hw + 7]) < 2e-3,
			          "validation clip %lld frame %lld", (long long)clips[c], (long long)t);
			for (int64_t k = 0; k < n; k++)
				cr_assert_float_eq(val->responses->data[at * n + k], resp->data[k * frames + f],
				                   1e-6);
		}
	/* each training sample: its frames are a window of the movie, its
	** targets the rates of the window's last frames */
	fv_batch_iter *it = fv_data_train_batches(d, 42);
	fv_batch b;
	cr_assert(fv_batch_next(it, &b));
	const fv_movie_set *train = fv_data_train(d, 0);
	int64_t chunk = b.input->shape[2], tt = b.target->shape[1];
	for (int64_t s = 0; s < b.input->shape[0]; s++) {
		const fv_real *x = b.input->data + s * chunk * hw;
		int64_t start = -1;
		for (int64_t f = 0; f + chunk <= train->movie->shape[1] && start < 0; f++)
			if (memcmp(train->movie->data + f * hw, x, (size_t)(chunk * hw) * sizeof *x) == 0)
				start = f;
		cr_assert_geq(start, 0, "sample %lld is no window of the training movie", (long long)s);
		for (int64_t t = 0; t < tt; t++)
			for (int64_t k = 0; k < n; k++)
				cr_assert_float_eq(b.target->data[(s * tt + t) * n + k],
				                   train->responses->data[(start + chunk - tt + t) * n + k], 1e-6);
	}
	fv_batch_iter_free(it);
	fv_data_close(d);
	fv_tensor_free(movie);
	fv_tensor_free(resp);
	fv_dvalue_free(mv);
	fv_dvalue_free(rv);
}

/* ---- damaged files ------------------------------------------------------------- */

/* Replace session S0's .mat by one written by `script` (h5py, v7.3 header). */
static void rewrite_mat(const char *body)
{
	char script[4096];
	snprintf(script, sizeof script,
	         "import sys, h5py, numpy as np\n"
	         "p = sys.argv[1] + '/sessions/" S0 "/" S0 "_fixationmovie_data.mat'\n"
	         "old = {k: v[()] for k, v in h5py.File(p, 'r').items()}\n"
	         "%s\n"
	         "with h5py.File(p, 'w', userblock_size=512) as f:\n"
	         "    for k, v in old.items():\n"
	         "        d = f.create_dataset(k, data=v)\n"
	         "        t = h5py.h5t.C_S1.copy()\n"
	         "        t.set_size(7)\n"
	         "        d.attrs.create('MATLAB_class', np.array(b'double', 'S7'), dtype=h5py.Datatype(t))\n"
	         "with open(p, 'r+b') as f:\n"
	         "    f.write(b'MATLAB 7.3 MAT-file'.ljust(116) + bytes(8) + b'\\x00\\x02IM')\n",
	         body);
	python(script);
}

static void expect_step_error(const char *target, const char *extra, const char *want1,
                              const char *want2)
{
	fv_dvalue *v = NULL;
	cr_assert_neq(eval_step(target, extra, &v), FV_OK, "no error");
	cr_assert_null(v);
	cr_assert_not_null(strstr(fv_errmsg(), want1), "'%s' not in: %s", want1, fv_errmsg());
	cr_assert_not_null(strstr(fv_errmsg(), want2), "'%s' not in: %s", want2, fv_errmsg());
}

#define STIMULI "stimuli.load_all_stimuli", "  downsampled_size: [30, 40]\n"
#define RESPONSES "responses.load_all_responses", ""
#define MAT S0 "_fixationmovie_data.mat"

Test(data_karamanlis, missing_variable_names_file_and_key)
{
	generate("--seed 9 --sessions 1 --format v73 --no-expected");
	rewrite_mat("del old['runningbin']; del old['frozenImages']");
	expect_step_error(RESPONSES, MAT, "variable 'runningbin' not found");
	expect_step_error(STIMULI, MAT, "variable 'frozenImages' not found");
}

Test(data_karamanlis, wrong_shape_names_file_and_key)
{
	generate("--seed 10 --sessions 1 --format v73 --no-expected");
	rewrite_mat("old['frozenbin'] = old['frozenbin'][0]\n"
	            "old['frozenfixations'] = old['frozenfixations'][:, :2]");
	expect_step_error(RESPONSES, MAT, "variable 'frozenbin' has shape (8, 5) as h5py reads it; "
	                                  "expected 3 dimensions");
	expect_step_error(STIMULI, MAT, "'frozenfixations' has 2 values per fixation; expected 3");
}

Test(data_karamanlis, nan_responses_name_file_and_key)
{
	generate("--seed 11 --sessions 1 --format v73 --no-expected");
	rewrite_mat("old['runningbin'][1, 2, 3] = np.nan");
	expect_step_error(RESPONSES, MAT, "variable 'runningbin' holds NaN");
}

Test(data_karamanlis, fixation_off_the_screen_names_file_and_key)
{
	generate("--seed 12 --sessions 1 --format v73 --no-expected");
	rewrite_mat("old['frozenfixations'][3] = [1, 5000, 300]");
	expect_step_error(STIMULI, MAT, "variable 'frozenfixations', fixation 3 at (x 5000, y 300)");
}

Test(data_karamanlis, truncated_mat_names_the_file)
{
	generate("--seed 13 --sessions 1 --format v5 --no-expected");
	char path[512];
	snprintf(path, sizeof path, "%s/sessions/%s/%s", dir, S0, MAT);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(truncate(path, st.st_size / 2), 0);
	fv_dvalue *v = NULL;
	cr_assert_neq(eval_step(RESPONSES, &v), FV_OK);
	cr_assert_not_null(strstr(fv_errmsg(), MAT), "%s", fv_errmsg());
	cr_assert_not_null(strstr(fv_errmsg(), "bin"), "%s", fv_errmsg());
	snprintf(path, sizeof path, "%s/sessions/%s/%s", dir, S0, MAT);
	cr_assert_eq(truncate(path, 100), 0); /* not even a header */
	expect_step_error(STIMULI, MAT, "not a readable MATLAB file");
}

Test(data_karamanlis, corrupt_zip_names_the_archive)
{
	generate("--seed 14 --sessions 1 --zip --no-expected");
	char path[512];
	snprintf(path, sizeof path, "%s/sessions/%s.zip", dir, S0);
	FILE *f = fopen(path, "r+b");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, size - 30, SEEK_SET);
	fputs("garbage garbage garbage garbage", f); /* the central directory */
	fclose(f);
	expect_step_error(STIMULI, S0 ".zip", "zip");
}

Test(data_karamanlis, corrupt_cache_names_the_file_and_key)
{
	generate("--seed 15 --sessions 1 --no-expected");
	python("import sys, numpy as np\n"
	       "p = sys.argv[1] + '/sessions/" S0 "/" S0 "_fixationmovie_data_extracted_stimuli_30_40.npz'\n"
	       "np.savez_compressed(p, train_data=np.zeros((1, 4, 30, 40), np.float32))\n");
	expect_step_error(STIMULI, "extracted_stimuli_30_40.npz", "test_data.npy");
}

Test(data_karamanlis, several_mat_files_and_no_session_are_errors)
{
	generate("--seed 16 --sessions 1 --no-expected");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cp %s/sessions/%s/%s %s/sessions/%s/copy_%s", dir, S0, MAT, dir,
	         S0, MAT);
	cr_assert_eq(system(cmd), 0);
	expect_step_error(RESPONSES, "Multiple files with postfix fixationmovie_data.mat", S0);
	fv_dvalue *v = NULL;
	cr_assert_neq(eval_step("responses.load_all_responses", "  specie: rat\n", &v), FV_OK);
	cr_assert_not_null(strstr(fv_errmsg(), "No data directories found"), "%s", fv_errmsg());
}

/* h5py's own string attribute (null-padded, no terminator) is no class libmatio reads */
Test(data_karamanlis, unreadable_matlab_class_is_named)
{
	generate("--seed 17 --sessions 1 --format v73 --no-expected");
	python("import sys, h5py, numpy as np\n"
	       "p = sys.argv[1] + '/sessions/" S0 "/" S0 "_fixationmovie_data.mat'\n"
	       "with h5py.File(p, 'r+') as f:\n"
	       "    del f['frozenbin'].attrs['MATLAB_class']\n"
	       "    f['frozenbin'].attrs['MATLAB_class'] = np.bytes_('double')\n");
	expect_step_error(RESPONSES, MAT ": variable 'frozenbin' is no real numeric array",
	                  "MATLAB_class attribute");
}
