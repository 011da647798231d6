/*
** test_hoefling.c: the hoefling_2024 data steps and the dataloader ABI on
** the files of tools/fixtures/hoefling_2024.py.  Every expected value is
** computed here from the fixture's planted truth (the formulas of its
** docstring), never from fovea's output: which neurons the filters keep,
** the upsampled and std-normalised responses, the clip order of each
** session's sequence and eye, the validation and test splits, the batches.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_step_testing.h"
#include "expect_error.h"
#include "fovea/data_plugin.h"

#define SEED 3
#define N_SESSIONS 3
#define N_NEURONS 12
#define H 4
#define W 6
#define N_SEQ 4
#define L 150
#define RECORDED (123 * L)
#define TRAIN_VAL (108 * L)

static const int64_t val_clips[] = {0, 4, 10, 11, 18, 30, 45, 62, 67, 77, 79, 80, 81, 83, 95};
#define N_VAL 15
static const char *const names[N_SESSIONS] = {
	"session_1_ventral1_20200101", "session_2_ventral2_20200626", "session_3_ventral3_20200301",
};

static char dir[256];
static fv_registry *reg;
static fv_config *cfg;

/* ---- the fixture ------------------------------------------------------------------ */

static void make_fixture(const char *corrupt)
{
	snprintf(dir, sizeof dir, "/tmp/fv_hoefling_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../tools/fixtures/hoefling_2024.py %s "
	         "--seed %d --sessions %d --neurons %d --height %d --width %d --sequences %d%s%s",
	         FOVEA_TEST_SRCDIR, dir, SEED, N_SESSIONS, N_NEURONS, H, W, N_SEQ,
	         corrupt != NULL ? " --corrupt " : "", corrupt != NULL ? corrupt : "");
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

static void setup(void)
{
	make_fixture(NULL);
	reg = dt_registry_with("data/data_hoefling_2024.so");
	char so[1024];
	snprintf(so, sizeof so, "%s/plugins/data/data_h5.so", getenv("FOVEA_BUILD_DIR"));
	cr_assert_eq(fv_registry_load_file(reg, so), FV_OK, "%s", fv_errmsg());
	cfg = NULL;
}

static void teardown(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

TestSuite(hoefling, .init = setup, .fini = teardown, .timeout = 120);

/* openretina's data_io and dataloader groups on the fixture; `loader` the dataloader. */
static const fv_config_node *load_config(const char *loader)
{
	char types[256] = "[1", yaml[4096];
	for (int t = 2; t <= 32; t++)
		snprintf(types + strlen(types), sizeof types - strlen(types), ", %d", t);
	snprintf(yaml, sizeof yaml,
	         "data_io:\n"
	         "  stimuli:\n"
	         "    _target_: openretina.data_io.hoefling_2024.stimuli.movies_from_pickle\n"
	         "    _convert_: object\n"
	         "    file_path: %s/movies.pkl\n"
	         "  responses:\n"
	         "    _target_: openretina.data_io.hoefling_2024.responses.make_final_responses\n"
	         "    response_type: natural\n"
	         "    data_dict:\n"
	         "      _target_: openretina.data_io.hoefling_2024.responses.filter_responses\n"
	         "      filter_cell_types: true\n"
	         "      cell_types_list: %s]\n"
	         "      chirp_qi: 0.35\n"
	         "      d_qi: 0.6\n"
	         "      qi_logic: or\n"
	         "      filter_counts: false\n"
	         "      classifier_confidence: 0.25\n"
	         "      all_responses:\n"
	         "        _target_: openretina.utils.h5_handling.load_h5_into_dict\n"
	         "        file_path: %s/responses.h5\n"
	         "dataloader:\n"
	         "  _target_: %s\n"
	         "  batch_size: 128\n"
	         "  train_chunk_size: 50\n"
	         "  clip_length: 150\n"
	         "  allow_over_boundaries: true\n"
	         "  validation_clip_indices: [0, 4, 10, 11, 18, 30, 45, 62, 67, 77, 79, 80, 81, 83, 95]\n",
	         dir, types, dir, loader);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "hoefling.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_config_root(cfg);
}

#define NATMOV "openretina.data_io.hoefling_2024.dataloaders.natmov_dataloaders_v2"

/* ---- the planted truth -------------------------------------------------------------- */

static bool kept(int k, int i)
{
	int group = 1 + (7 * i + k + SEED) % 46;
	double d_qi = i % 3 == 0 ? 0.75 : 0.25, chirp_qi = i % 4 == 0 ? 0.5 : 0.125;
	double confidence = i % 5 == 3 ? 0.125 : 0.5;
	return group <= 32 && (d_qi >= 0.6 || chirp_qi >= 0.35) && confidence >= 0.25;
}

/* The kept neurons of session k, in order. */
static int kept_neurons(int k, int *idx)
{
	int n = 0;
	for (int i = 0; i < N_NEURONS; i++)
		if (kept(k, i))
			idx[n++] = i;
	return n;
}

/* The stimulus time of recorded frame r: linspace(t, t + 4.9666667, 150) after trigger 1 + 5 j. */
static double frame_time(int64_t r)
{
	double start = 1.0 + 5.0 * (double)(r / L);
	int64_t i = r % L;
	return i == L - 1 ? start + 4.9666667 : start + (double)i * (4.9666667 / (L - 1));
}

static double raw_response(int k, int i, int64_t r)
{
	double a = (1 + (SEED + 3 * i + 5 * k) % 7) / 16.0, b = ((SEED + i + 2 * k) % 11) / 4.0;
	return a * frame_time(r) + b;
}

/* The std-normalised response of neuron i of session k at recorded frame r. */
static double response(int k, int i, int64_t r)
{
	double mean = 0, var = 0;
	for (int64_t f = 0; f < RECORDED; f++)
		mean += raw_response(k, i, f);
	mean /= RECORDED;
	for (int64_t f = 0; f < RECORDED; f++)
		var += (raw_response(k, i, f) - mean) * (raw_response(k, i, f) - mean);
	return raw_response(k, i, r) / sqrt(var / RECORDED);
}

/* Train-and-validation frame t (clips 5-58 and 64-117 of the recording). */
static int64_t recorded_frame(int64_t t)
{
	return t < 54 * L ? t + 5 * L : t + 10 * L;
}

static double movie_value(int64_t clip, int64_t f, int64_t y, int64_t x)
{
	return (double)(clip - 64) / 64.0 + (double)f / 16384.0 + (double)(y * W + x) / 8388608.0;
}

static int64_t sequence_entry(int seq, int64_t i)
{
	static const int64_t mult[] = {1, 5, 7, 11};
	return (i * mult[seq] + 5 * seq + SEED) % 108;
}

static bool is_val(int64_t clip)
{
	for (int v = 0; v < N_VAL; v++)
		if (val_clips[v] == clip)
			return true;
	return false;
}

static int session_seq(int k)
{
	return (k + 1) % N_SEQ;
}

/* k = 1 is openretina's mislabelled session: the right eye whatever the file says. */
static bool left_eye(int k)
{
	return k % 3 != 0 && k != 1;
}

#define CLOSE(got, want, what, ...)                                                           \
	cr_assert(fabs((double)(got) - (want)) <= 2e-5 * fmax(1.0, fabs(want)),                 \
	          what ": got %.9g, expected %.9g", __VA_ARGS__, (double)(got), (double)(want))

/* Movies are copied, never computed: every value is exactly the planted float32. */
#define SAME(got, want, what, ...)                                                            \
	cr_assert((got) == (fv_real)(float)(want), what ": got %.9g, expected %.9g", __VA_ARGS__, \
	          (double)(got), (double)(want))

/* ---- the steps one by one ------------------------------------------------------------ */

Test(hoefling, movies_from_pickle_reads_the_pickled_split)
{
	const fv_config_node *root = load_config(NATMOV);
	fv_dvalue *m = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_node_get(fv_node_get(root, "data_io"), "stimuli"), &m),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_class(m), FV_DV_MOVIES_SPLIT);
	const fv_tensor *train = fv_dvalue_tensor_of(fv_dvalue_get(m, "train"));
	const fv_tensor *test = fv_dvalue_tensor_of(fv_dvalue_get(fv_dvalue_get(m, "test_dict"), "test"));
	const fv_tensor *rs = fv_dvalue_tensor_of(fv_dvalue_get(m, "random_sequences"));
	cr_assert_eq(train->shape[0], 2);
	cr_assert_eq(train->shape[1], TRAIN_VAL);
	cr_assert_eq(train->shape[2], H);
	cr_assert_eq(train->shape[3], W);
	cr_assert_eq(test->shape[1], 5 * L);
	int64_t t = 37 * L + 11;
	SAME(train->data[(t * H + 2) * W + 5], movie_value(37, 11, 2, 5), "train frame %lld", (long long)t);
	SAME(train->data[((TRAIN_VAL + t) * H + 2) * W + 5], -movie_value(37, 11, 2, 5), "channel 1%s", "");
	SAME(test->data[((2 * L + 3) * H + 1) * W], movie_value(110, 3, 1, 0), "test frame%s", "");
	cr_assert_eq(rs->shape[0], 108);
	cr_assert_eq(rs->shape[1], N_SEQ);
	for (int64_t i = 0; i < 108; i++)
		for (int s = 0; s < N_SEQ; s++)
			cr_assert_eq((int64_t)rs->data[i * N_SEQ + s], sequence_entry(s, i));
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(m, "norm_mean")), 0.25, 1e-7);
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(m, "norm_std")), 2.0, 1e-7);
	fv_dvalue_free(m);
}

Test(hoefling, make_final_responses_upsamples_filters_and_splits)
{
	const fv_config_node *root = load_config(NATMOV);
	fv_dvalue *r = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_node_get(fv_node_get(root, "data_io"), "responses"), &r),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_size(r), N_SESSIONS);
	for (int k = 0; k < N_SESSIONS; k++) {
		int idx[N_NEURONS], n = kept_neurons(k, idx);
		const fv_dvalue *s = fv_dvalue_get(r, names[k]);
		cr_assert_not_null(s, "session %s", names[k]);
		cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(s, "stim_id")), "natural");
		const fv_tensor *train = fv_dvalue_tensor_of(fv_dvalue_get(s, "train"));
		const fv_tensor *test = fv_dvalue_tensor_of(fv_dvalue_get(fv_dvalue_get(s, "test_dict"), "test"));
		const fv_tensor *trials = fv_dvalue_tensor_of(
			fv_dvalue_get(fv_dvalue_get(s, "test_by_trial_dict"), "test"));
		cr_assert_eq(train->shape[0], n, "session %d keeps %d neurons", k, n);
		cr_assert_eq(train->shape[1], TRAIN_VAL);
		cr_assert_eq(test->shape[1], 5 * L);
		cr_assert_eq(trials->shape[0], 3);
		const fv_tensor *ids = fv_dvalue_tensor_of(
			fv_dvalue_get(fv_dvalue_get(s, "session_kwargs"), "roi_ids"));
		for (int j = 0; j < n; j++) {
			cr_assert_eq((int)ids->data[j], idx[j] + 1, "the kept ROIs");
			for (int64_t t = 0; t < TRAIN_VAL; t += 997)
				CLOSE(train->data[j * TRAIN_VAL + t], response(k, idx[j], recorded_frame(t)),
				      "session %d neuron %d frame %lld", k, idx[j], (long long)t);
			int64_t f = 321;
			double reps[3] = {response(k, idx[j], f), response(k, idx[j], 59 * L + f),
			                  response(k, idx[j], 118 * L + f)};
			CLOSE(test->data[j * 5 * L + f], (reps[0] + reps[1] + reps[2]) / 3, "test avg%s", "");
			CLOSE(trials->data[(2 * n + j) * 5 * L + f], reps[2], "third repeat%s", "");
		}
		const fv_dvalue *kw = fv_dvalue_get(s, "session_kwargs");
		cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(kw, "eye")), k % 3 == 0 ? "right" : "left");
		cr_assert_eq(fv_dvalue_number_of(fv_dvalue_get(kw, "scan_sequence_idx")), session_seq(k));
	}
	fv_dvalue_free(r);
}

Test(hoefling, filter_responses_counts_and_thresholds)
{
	const char *yaml_fmt =
		"_target_: filter_responses\n"
		"filter_counts: true\n"
		"count_threshold: %d\n"
		"qi_logic: and\n"
		"classifier_confidence: null\n"
		"all_responses: {_target_: load_h5_into_dict, file_path: %s/responses.h5}\n";
	char yaml[512];
	snprintf(yaml, sizeof yaml, yaml_fmt, 0, dir);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "filter.yaml");
	fv_dvalue *v = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_config_root(cfg), &v), FV_OK, "%s", fv_errmsg());
	/* "and": d_qi >= 0.6 and chirp_qi >= 0.35: i % 12 == 0, two neurons of 12 */
	for (int k = 0; k < N_SESSIONS; k++) {
		const fv_tensor *g = fv_dvalue_tensor_of(
			fv_dvalue_get(fv_dvalue_get(v, names[k]), "group_assignment"));
		cr_assert_eq(g->numel, 1, "session %d", k);
		cr_assert_eq((int)g->data[0], 1 + (k + SEED) % 46);
	}
	fv_dvalue_free(v);
	snprintf(yaml, sizeof yaml, yaml_fmt, 1, dir); /* more than one neuron needed: none left */
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "filter.yaml");
	cr_assert_eq(fv_data_eval(reg, fv_config_root(cfg), &v), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_size(v), 0);
	fv_dvalue_free(v);
}

/* ---- the dataloader and the data set --------------------------------------------------- */

static void check_train(const fv_data *d, int k, const int *idx, int n)
{
	const fv_movie_set *t = fv_data_train(d, (size_t)k);
	int seq = session_seq(k);
	cr_assert_eq(t->movie->shape[1], 93 * L);
	cr_assert_eq(t->responses->shape[0], 93 * L);
	cr_assert_eq(t->responses->shape[1], n);
	cr_assert_eq(t->n_samples, 279, "chunks of 50 frames every 50");
	cr_assert_eq(t->n_batches, 2, "279 samples in batches of 128, the last dropped");
	int64_t slot = 0;
	for (int64_t i = 0; i < 108; i++) {
		int64_t clip = sequence_entry(seq, i);
		if (is_val(clip))
			continue;
		int64_t f = (slot * 37) % L, y = 1, x = 4;
		int64_t xs = left_eye(k) ? W - 1 - x : x;
		SAME(t->movie->data[((slot * L + f) * H + y) * W + x], movie_value(clip, f, y, xs),
		      "session %d train slot %lld (clip %lld)", k, (long long)slot, (long long)clip);
		for (int j = 0; j < n; j += 3)
			CLOSE(t->responses->data[(slot * L + f) * n + j],
			      response(k, idx[j], recorded_frame(i * L + f)),
			      "session %d train responses slot %lld", k, (long long)slot);
		slot++;
	}
	cr_assert_eq(slot, 93);
}

static void check_validation_and_test(const fv_data *d, int k, const int *idx, int n)
{
	const fv_movie_set *v = fv_data_validation(d, (size_t)k);
	int seq = session_seq(k);
	cr_assert_eq(v->movie->shape[1], N_VAL * L);
	cr_assert_eq(v->n_samples, N_VAL);
	for (int c = 0; c < N_VAL; c++) {
		int64_t grab = 0;
		while (sequence_entry(seq, grab) != val_clips[c])
			grab++;
		int64_t f = 100, x = left_eye(k) ? W - 1 : 0;
		SAME(v->movie->data[((c * L + f) * H) * W], movie_value(val_clips[c], f, 0, x),
		      "session %d validation clip %d", k, c);
		CLOSE(v->responses->data[(c * L + f) * n], response(k, idx[0], recorded_frame(grab * L + f)),
		      "session %d validation responses clip %d", k, c);
		cr_assert_eq(v->start_indices[c], c * L);
	}
	cr_assert_eq(fv_data_n_test(d, (size_t)k), 1);
	const fv_movie_set *t = fv_data_test(d, (size_t)k, 0);
	cr_assert_str_eq(t->stimulus, "test");
	cr_assert_eq(t->chunk_size, 5 * L);
	cr_assert_eq(t->batch_size, 8, "_compute_test_batch_size(128, 50, 750)");
	cr_assert_eq(t->n_samples, 1);
	int64_t x = left_eye(k) ? 0 : W - 1;
	SAME(t->movie->data[((4 * L + 2) * H + 3) * W + W - 1], movie_value(112, 2, 3, x),
	      "session %d test movie", k);
	CLOSE(t->responses_by_trial->data[((1 * 5 * L) + 7) * n + n - 1],
	      response(k, idx[n - 1], 59 * L + 7), "second repeat%s", "");
}

Test(hoefling, natmov_dataloaders_v2_through_the_config)
{
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_config(reg, load_config(NATMOV), &d), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_n_sessions(d), N_SESSIONS);
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_float_eq(info->stim_mean, 0.25, 1e-7);
	cr_assert_float_eq(info->stim_std, 2.0, 1e-7);
	cr_assert_eq(info->input_shape[0], 2);
	cr_assert_eq(info->input_shape[1], H);
	cr_assert_eq(info->input_shape[2], W);
	for (int k = 0; k < N_SESSIONS; k++) {
		int idx[N_NEURONS], n = kept_neurons(k, idx);
		cr_assert_str_eq(fv_data_session_name(d, (size_t)k), names[k]);
		cr_assert_eq(info->n_neurons[k], n);
		double mean = 0;
		for (int64_t t = 0; t < TRAIN_VAL; t++)
			mean += response(k, idx[0], recorded_frame(t));
		CLOSE(info->mean_activity[k]->data[0], mean / TRAIN_VAL, "session %d mean activity", k);
		check_train(d, k, idx, n);
		check_validation_and_test(d, k, idx, n);
	}
	fv_data_close(d);
}

Test(hoefling, the_dataloader_step_returns_movie_loaders_with_roi_coords)
{
	const fv_config_node *root = load_config(NATMOV);
	const fv_config_node *io = fv_node_get(root, "data_io");
	fv_dvalue *movies = NULL, *responses = NULL, *loaders = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_node_get(io, "stimuli"), &movies), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_eval(reg, fv_node_get(io, "responses"), &responses), FV_OK, "%s",
	             fv_errmsg());
	static const char *const keys[] = {"neuron_data_dictionary", "movies_dictionary"};
	const fv_dvalue *values[] = {responses, movies};
	cr_assert_eq(fv_data_eval_with(reg, fv_node_get(root, "dataloader"), 2, keys, values, &loaders),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_class(loaders), FV_DV_DATALOADERS);
	const fv_dvalue *l = fv_dvalue_get(fv_dvalue_get(loaders, "train"), names[2]);
	cr_assert_str_eq(fv_dvalue_class(l), FV_DV_MOVIE_LOADER);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(l, "movie")), "left/train/3");
	l = fv_dvalue_get(fv_dvalue_get(loaders, "train"), names[1]);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(l, "movie")), "right/train/2",
	                 "openretina's mislabelled session is the right eye");
	int idx[N_NEURONS], n = kept_neurons(1, idx);
	const fv_tensor *coords = fv_dvalue_tensor_of(fv_dvalue_get(l, "roi_coords"));
	cr_assert_eq(coords->shape[0], n);
	for (int j = 0; j < n; j++) {
		double y = (4 * (idx[j] / 16) + 0.5) / 25.0 + 2.75, x = (4 * (idx[j] % 16) + 0.5) / 25.0 + 2.75;
		CLOSE(coords->data[2 * j], (y / 8 - 0.5) * 2, "roi %d y", idx[j]);
		CLOSE(coords->data[2 * j + 1], (x / 8 - 0.5) * 2, "roi %d x", idx[j]);
	}
	fv_data *d = NULL;
	cr_assert_eq(fv_data_from_loaders(loaders, responses, movies, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_n_sessions(d), N_SESSIONS);
	fv_data_close(d);
	fv_dvalue_free(movies);
	fv_dvalue_free(responses);
}

/* ---- errors --------------------------------------------------------------------------- */

Test(hoefling, an_unknown_dataloader_is_named_with_the_closest)
{
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_open_config(reg, load_config("openretina.data_io.hoefling_2024."
	                                                  "dataloaders.natmov_dataloaders_v3"), &d),
	             FV_ERR_NOTFOUND, "dataloader._target_",
	             "no data step 'openretina.data_io.hoefling_2024.dataloaders.natmov_dataloaders_v3'",
	             "did you mean '" NATMOV "'?");
	cr_assert_null(d);
}

static void expect_corrupt(const char *corrupt, fv_status code, const char *a, const char *b)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	make_fixture(corrupt);
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_open_config(reg, load_config(NATMOV), &d), code, a, b);
	cr_assert_null(d);
}

Test(hoefling, nan_responses_are_refused_naming_session_and_key)
{
	expect_corrupt("nan", FV_ERR_FORMAT, "/responses.h5: make_final_responses: session "
	               "'session_1_ventral1_20200101'",
	               "'natural_inferred_spikes' holds NaN (neuron 0, sample 100)");
}

Test(hoefling, a_missing_key_is_named)
{
	expect_corrupt("missing-key", FV_ERR_FORMAT, "/responses.h5: quality filter: session "
	               "'session_1_ventral1_20200101'", "no array 'd_qi'");
}

Test(hoefling, a_movie_of_the_wrong_shape_is_named_with_its_file)
{
	expect_corrupt("shape", FV_ERR_SHAPE, "movies.pkl: 'train' should be a 4-D numpy array",
	               "16200");
}

Test(hoefling, a_pickle_with_an_unexpected_class_is_refused)
{
	expect_corrupt("class", FV_ERR_FORMAT, "movies.pkl", "fractions");
}

/* ---- DataLoaders checked field by field (fv_data_from_loaders) ---------------------------- */

static fv_dvalue *tiny_loader(int64_t frames, double start)
{
	fv_dvalue *l = fv_dvalue_map(FV_DV_MOVIE_LOADER);
	fv_tensor *m = fv_tensor_new(4, (int64_t[]){1, frames, 2, 2});
	fv_tensor *r = fv_tensor_new(2, (int64_t[]){frames, 3});
	fv_dvalue *starts = fv_dvalue_list();
	cr_assert_eq(fv_dvalue_append(starts, fv_dvalue_number(start)), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "movie", fv_dvalue_tensor(m)), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "responses", fv_dvalue_tensor(r)), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "start_indices", starts), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "chunk_size", fv_dvalue_number(5)), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "batch_size", fv_dvalue_number(1)), FV_OK);
	cr_assert_eq(fv_dvalue_set(l, "scene_length", fv_dvalue_number(5)), FV_OK);
	return l;
}

static fv_dvalue *tiny_loaders(double val_start, bool with_validation)
{
	fv_dvalue *d = fv_dvalue_map(FV_DV_DATALOADERS), *train = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(train, "s", tiny_loader(20, 0)), FV_OK);
	cr_assert_eq(fv_dvalue_set(d, "train", train), FV_OK);
	if (with_validation) {
		fv_dvalue *val = fv_dvalue_map(NULL);
		cr_assert_eq(fv_dvalue_set(val, "s", tiny_loader(10, val_start)), FV_OK);
		cr_assert_eq(fv_dvalue_set(d, "validation", val), FV_OK);
	}
	return d;
}

Test(hoefling, loaders_are_checked_naming_fold_session_and_field)
{
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_from_loaders(tiny_loaders(0, false), NULL, NULL, &d), FV_ERR_FORMAT,
	             "dataloader: no validation fold");
	EXPECT_ERROR(fv_data_from_loaders(tiny_loaders(6, true), NULL, NULL, &d), FV_ERR_SHAPE,
	             "fold 'validation', session 's': start_indices", "outside the movie");
	EXPECT_ERROR(fv_data_from_loaders(tiny_loaders(5, true), NULL, NULL, &d), FV_ERR_NOTFOUND,
	             "session 's' has loaders but no responses in data_io.responses");
	cr_assert_null(d);
}
