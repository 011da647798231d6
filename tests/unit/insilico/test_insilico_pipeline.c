/*
** test_insilico_pipeline.c: the in-silico pipeline (fv_insilico_config_compose,
** fv_optimize_from_config) on a checkpoint of an untrained core + readout
** model: configs/example.yaml scaled down to two sessions of 3 and 4
** neurons, 1 x 6 x 5 pixels, 4 core channels with temporal kernels of 5
** frames.  The model needs no training for what is checked here: the
** config and its defaults, the files and the record of each kind of job,
** that the record's numbers agree with each other and with the model, and
** the errors of bad jobs.
*/
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "fovea/insilico.h"
#include "fovea/npy.h"
#include "fovea/trainer.h"
#include "plugin_testing.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

/* ---- the fixture: a scratch directory with the checkpoint --------------------------- */

static fv_registry *reg;
static char tmp[256];
static char ckpt[512];

static const char *in_tmp(const char *name)
{
	static char p[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
	return p[k];
}

/* What save_checkpoint writes: the model's own data_info, none at all, one
** listing no sessions (issue 12 items 2 and 3), one with stim_std 0, or
** the model with a NaN weight (item 9). */
typedef enum saved_info {
	INFO_MODEL, INFO_NONE, INFO_NO_SESSIONS, INFO_STD_0, NAN_WEIGHT
} saved_info;

static void save_checkpoint_with(const char *path, saved_info saved)
{
	char example[1024];
	snprintf(example, sizeof example, "%s/../configs/example.yaml", FOVEA_TEST_SRCDIR);
	const char *overrides[] = {
		"data_io.color_channels=1", "data_io.video_height=6", "data_io.video_width=5",
		"dataloader.train_chunk_size=20", "model.hidden_channels=[4]",
		"model.core.temporal_kernel_sizes=[5]",
	};
	fv_config *cfg = fv_config_compose(example, NULL, 6, overrides);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const char *sessions[] = {"session_0", "session_1"};
	const int64_t n_neurons[] = {3, 4};
	fv_tensor *mean[2] = {fv_tensor_new(1, (int64_t[]){3}), fv_tensor_new(1, (int64_t[]){4})};
	for (int s = 0; s < 2; s++)
		for (int64_t j = 0; j < mean[s]->numel; j++)
			mean[s]->data[j] = (fv_real)(0.5 + 0.25 * (double)j + (double)s);
	fv_data_info info = {.n_sessions = 2, .sessions = sessions, .n_neurons = n_neurons,
	                     .mean_activity = mean, .input_shape = {1, 6, 5}, .stim_mean = 0.5,
	                     .stim_std = 2.0};
	fv_module *model = fv_model_build(reg, cfg, &info, 3);
	cr_assert_not_null(model, "%s", fv_errmsg());
	char *yaml = fv_config_to_yaml(cfg);
	fv_data_info empty = info;
	empty.n_sessions = 0;
	if (saved == INFO_STD_0)
		info.stim_std = 0;
	if (saved == NAN_WEIGHT) {
		size_t n;
		fv_tensor **params = fv_module_params(model, &n);
		cr_assert(n > 0);
		params[0]->data[0] = NAN;
		free(params);
	}
	fv_checkpoint_content c = {.model = model, .config_yaml = yaml,
	                           .data_info = saved == INFO_NONE ? NULL
	                                        : saved == INFO_NO_SESSIONS ? &empty : &info};
	cr_assert_eq(fv_checkpoint_save(path, &c), FV_OK, "%s", fv_errmsg());
	free(yaml);
	fv_module_free(model);
	fv_tensor_free(mean[0]);
	fv_tensor_free(mean[1]);
	fv_config_free(cfg);
}

static void save_checkpoint(const char *path)
{
	save_checkpoint_with(path, INFO_MODEL);
}

static void setup(void)
{
	reg = PT_REGISTRY("cores", "readouts", "models", "losses", "objectives", "reducers",
	                  "regularizers", "stoppers");
	snprintf(tmp, sizeof tmp, "/tmp/fovea_test_insilico_XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", tmp);
	save_checkpoint(ckpt);
}

static void teardown(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
	fv_registry_free(reg);
}

TestSuite(pipeline, .init = setup, .fini = teardown);

/* ---- helpers --------------------------------------------------------------------------- */

static fv_config *compose(fv_insilico_kind kind, const char *file, int n, const char **overrides)
{
	fv_config *cfg = fv_insilico_config_compose(kind, file, n, overrides);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return cfg;
}

/* The optimisation config of the tests: 30 frames (26 after the core). */
static fv_config *short_config(fv_insilico_kind kind)
{
	const char *o[] = {"time_steps=30"};
	return compose(kind, NULL, 1, o);
}

static fv_status run_job(fv_config *cfg, const fv_insilico_job *job, const char *dir,
                         fv_insilico_result *res)
{
	fv_insilico_options o = {.out_dir = in_tmp(dir), .quiet = true};
	return fv_optimize_from_config(reg, cfg, job, &o, res);
}

static void run_ok(fv_config *cfg, const fv_insilico_job *job, const char *dir,
                   fv_insilico_result *res)
{
	cr_assert_eq(run_job(cfg, job, dir, res), FV_OK, "%s", fv_errmsg());
}

static json_t *load_record(const char *dir, const char *stem)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s.json", in_tmp(dir), stem);
	json_error_t e;
	json_t *r = json_load_file(path, 0, &e);
	cr_assert_not_null(r, "%s: %s (line %d)", path, e.text, e.line);
	return r;
}

static bool exists(const char *dir, const char *stem, const char *ext)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s.%s", in_tmp(dir), stem, ext);
	return access(path, F_OK) == 0;
}

static double real_of(const json_t *r, const char *key)
{
	json_t *v = json_object_get(r, key);
	cr_assert(json_is_number(v), "record member %s is not a number", key);
	return json_number_value(v);
}

static size_t size_of(const json_t *r, const char *key)
{
	json_t *v = json_object_get(r, key);
	cr_assert(json_is_array(v), "record member %s is not an array", key);
	return json_array_size(v);
}

/* The mean of the record's response_trace over frames [start, start + 10):
** what SliceMeanReducer(axis 0, start, length 10) makes of it. */
static double slice_mean(const json_t *r, size_t start)
{
	json_t *trace = json_object_get(r, "response_trace");
	double sum = 0;
	for (size_t t = start; t < start + 10; t++)
		sum += json_number_value(json_array_get(trace, t));
	return sum / 10;
}

static const char *config_text(const json_t *r)
{
	return json_string_value(json_object_get(r, "config"));
}

static void expect_config_has(const json_t *r, const char *text)
{
	cr_expect(strstr(config_text(r), text) != NULL, "the recorded config lacks '%s':\n%s", text,
	          config_text(r));
}

/* ---- the config ---------------------------------------------------------------------------- */

static const fv_config_node *at(const fv_config *cfg, const char *path)
{
	const fv_config_node *n = fv_node_path(fv_config_root(cfg), path);
	cr_assert_not_null(n, "no %s", path);
	return n;
}

static void expect_int(const fv_config *cfg, const char *path, int64_t want)
{
	int64_t v;
	cr_assert_eq(fv_node_to_int(at(cfg, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	cr_expect_eq(v, want, "%s: %lld, expected %lld", path, (long long)v, (long long)want);
}

static void expect_double(const fv_config *cfg, const char *path, double want)
{
	double v;
	cr_assert_eq(fv_node_to_double(at(cfg, path), &v), FV_OK, "%s: %s", path, fv_errmsg());
	cr_expect_eq(v, want, "%s: %g, expected %g", path, v, want);
}

static void expect_text(const fv_config *cfg, const char *path, const char *want)
{
	cr_expect_str_eq(fv_node_text(at(cfg, path)), want, "%s", path);
}

/* openretina's visualize_model_neurons: SGD(lr=100), OptimizationStopper(10),
** SliceMeanReducer(0, 10, 10), RangeRegularizationLoss(factor=0.1) and
** ChangeNormJointlyClipRangeSeparately with norm 5, randn * 0.1, 50 frames. */
Test(pipeline, defaults_are_visualize_model_neurons)
{
	fv_config *cfg = compose(FV_INSILICO_MEI, NULL, 0, NULL);
	expect_int(cfg, "time_steps", 50);
	expect_double(cfg, "init_std", 0.1);
	expect_double(cfg, "norm", 5.0);
	cr_expect(fv_node_is_null(at(cfg, "min_max_values")));
	expect_text(cfg, "optimizer._target_", "torch.optim.SGD");
	expect_double(cfg, "optimizer.lr", 100.0);
	expect_text(cfg, "stopper._target_", "OptimizationStopper");
	expect_int(cfg, "stopper.max_iterations", 10);
	expect_text(cfg, "objective._target_", "IncreaseObjective");
	expect_text(cfg, "objective.response_reducer._target_", "SliceMeanReducer");
	expect_int(cfg, "objective.response_reducer.axis", 0);
	expect_int(cfg, "objective.response_reducer.start", 10);
	expect_int(cfg, "objective.response_reducer.length", 10);
	expect_text(cfg, "regularizers.0._target_", "RangeRegularizationLoss");
	expect_double(cfg, "regularizers.0.factor", 0.1);
	expect_text(cfg, "postprocessors.0._target_", "ChangeNormJointlyClipRangeSeparately");
	fv_config_free(cfg);

	/* inner units: the reducer's start is the layer's, known from the model */
	cfg = compose(FV_INSILICO_INNER_MEI, NULL, 0, NULL);
	expect_text(cfg, "objective._target_", "InnerNeuronVisualizationObjective");
	cr_expect(fv_node_is_null(at(cfg, "objective.response_reducer.start")));
	fv_config_free(cfg);

	cfg = compose(FV_INSILICO_MDS, NULL, 0, NULL);
	expect_text(cfg, "objective._target_", "ContrastiveNeuronObjective");
	fv_config_free(cfg);
}

/* A key of the file replaces that whole default; the overrides come last
** and can reach into a default (stopper.max_iterations). */
Test(pipeline, file_replaces_keys_and_overrides_reach_defaults)
{
	const char *path = in_tmp("adam.yaml");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("optimizer: {_target_: torch.optim.Adam, lr: 0.05}\ntime_steps: 20\n", f);
	fclose(f);
	const char *o[] = {"stopper.max_iterations=3", "time_steps=25"};
	fv_config *cfg = compose(FV_INSILICO_MEI, path, 2, o);
	expect_text(cfg, "optimizer._target_", "torch.optim.Adam");
	expect_double(cfg, "optimizer.lr", 0.05);
	cr_expect_null(fv_node_get(at(cfg, "optimizer"), "momentum"), "the default leaked in");
	expect_text(cfg, "stopper._target_", "OptimizationStopper");
	expect_int(cfg, "stopper.max_iterations", 3);
	expect_int(cfg, "time_steps", 25);
	fv_config_free(cfg);

	const char *typo[] = {"stopper.max_iteration=3"};
	cr_expect_null(fv_insilico_config_compose(FV_INSILICO_MEI, NULL, 1, typo));
	pt_expect_msg("max_iterations");
	cr_expect_null(fv_insilico_config_compose(FV_INSILICO_MEI, in_tmp("none.yaml"), 0, NULL));
	pt_expect_msg("none.yaml");
	cr_expect_null(fv_insilico_config_compose((fv_insilico_kind)7, NULL, 0, NULL));
	pt_expect_msg("unknown kind 7");
}

/* ---- MEIs of neurons ----------------------------------------------------------------------- */

typedef struct seen {
	int n;
	int64_t units[16];
	double final_objective[16];
	size_t iterations[16];
	fv_tensor *stimulus; /* a copy of the first */
	fv_status answer;    /* what on_result returns */
} seen;

static fv_status note(void *ud, const fv_insilico_record *r)
{
	seen *s = ud;
	if (s->n == 0) {
		s->stimulus = fv_tensor_new(r->stimulus->ndim, r->stimulus->shape);
		memcpy(s->stimulus->data, r->stimulus->data,
		       (size_t)r->stimulus->numel * sizeof *r->stimulus->data);
	}
	s->units[s->n] = r->unit;
	s->final_objective[s->n] = r->final_objective;
	s->iterations[s->n] = r->iterations;
	s->n++;
	return s->answer == FV_OK ? FV_OK : fv_error(s->answer, "the caller stops here");
}

Test(pipeline, mei_of_a_neuron)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t n2 = 2;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1",
	                       .units = {1, &n2}};
	seen s = {0};
	fv_insilico_options o = {.out_dir = in_tmp("m"), .quiet = true, .on_result = note, .ud = &s};
	fv_insilico_result res;
	cr_assert_eq(fv_optimize_from_config(reg, cfg, &job, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.n_stimuli, 1);
	cr_expect_eq(res.iterations, 10);
	cr_expect_gt(res.seconds, 0);
	cr_expect(exists("m", "mei_session_1_2", "npy") && exists("m", "mei_session_1_2", "png"));

	json_t *r = load_record("m", "mei_session_1_2");
	cr_expect_str_eq(json_string_value(json_object_get(r, "command")), "mei");
	cr_expect_str_eq(json_string_value(json_object_get(r, "checkpoint")), ckpt);
	cr_expect_str_eq(json_string_value(json_object_get(r, "session")), "session_1");
	cr_expect_eq(json_integer_value(json_object_get(r, "neuron")), 2);
	cr_expect_eq(json_integer_value(json_object_get(r, "iterations")), 10);
	cr_expect_eq(size_of(r, "objective_trace"), 10);
	cr_expect_eq(size_of(r, "loss_trace"), 10);
	cr_expect_eq(size_of(r, "iteration_seconds"), 10);
	cr_expect_eq(size_of(r, "response_trace"), 26, "30 frames less the 4 of the kernel");
	json_t *shape = json_object_get(r, "stimulus_shape");
	cr_expect_eq(json_integer_value(json_array_get(shape, 1)), 30);
	cr_expect_eq(json_integer_value(json_array_get(shape, 2)), 6);
	/* the objective is the neuron's response averaged over frames 10..19 */
	double final = real_of(r, "final_objective");
	cr_expect_eq(real_of(r, "response"), final);
	cr_expect_float_eq(slice_mean(r, 10), final, 1e-5 * (1 + fabs(final)));
	/* the checkpoint's mean activity of session_1's neuron 2: 1 + 0.5 + 0.5 */
	cr_expect_float_eq(real_of(r, "mean_activity"), 2.0, 1e-6);
	cr_expect(json_is_null(json_object_get(r, "reference_mean_response")));
	cr_expect_lt(json_integer_value(json_object_get(r, "peak_row")), 6);
	cr_expect_lt(json_integer_value(json_object_get(r, "peak_col")), 5);
	/* the config says what ran: the unit, the session, one range per channel */
	expect_config_has(r, "neuron_indices: 2");
	expect_config_has(r, "data_key: 'session_1'");
	expect_config_has(r, "min_max_values:\n- [null, null]\n");

	/* the caller saw what the record holds, and the .npy is the stimulus */
	cr_assert_eq(s.n, 1);
	cr_expect_eq(s.units[0], 2);
	cr_expect_eq(s.iterations[0], 10);
	cr_expect_float_eq(s.final_objective[0], final, 1e-6 * (1 + fabs(final)));
	char path[600];
	snprintf(path, sizeof path, "%s/mei_session_1_2.npy", in_tmp("m"));
	fv_tensor *npy = fv_npy_load(path);
	cr_assert_not_null(npy, "%s", fv_errmsg());
	cr_expect_eq(npy->numel, s.stimulus->numel);
	cr_expect_eq(memcmp(npy->data, s.stimulus->data, (size_t)npy->numel * sizeof *npy->data), 0);
	fv_tensor_free(npy);
	fv_tensor_free(s.stimulus);
	json_decref(r);
	fv_config_free(cfg);
}

/* Every neuron (units.n == 0), in order; the seed decides the stimulus. */
Test(pipeline, every_neuron_and_the_seed)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1"};
	seen s = {0};
	fv_insilico_options o = {.out_dir = in_tmp("all"), .quiet = true, .on_result = note, .ud = &s};
	fv_insilico_result res;
	cr_assert_eq(fv_optimize_from_config(reg, cfg, &job, &o, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.n_stimuli, 4);
	cr_expect_eq(res.iterations, 40);
	cr_assert_eq(s.n, 4);
	for (int k = 0; k < 4; k++)
		cr_expect_eq(s.units[k], k);
	fv_tensor_free(s.stimulus);

	const int64_t n1 = 1;
	job.units = (fv_indices){1, &n1};
	run_ok(cfg, &job, "again", NULL);
	job.seed = 3;
	run_ok(cfg, &job, "seed3", NULL);
	char a[600], b[600], c[600];
	snprintf(a, sizeof a, "%s/mei_session_1_1.npy", in_tmp("all"));
	snprintf(b, sizeof b, "%s/mei_session_1_1.npy", in_tmp("again"));
	snprintf(c, sizeof c, "%s/mei_session_1_1.npy", in_tmp("seed3"));
	fv_tensor *ta = fv_npy_load(a), *tb = fv_npy_load(b), *tc = fv_npy_load(c);
	cr_assert(ta && tb && tc, "%s", fv_errmsg());
	size_t bytes = (size_t)ta->numel * sizeof *ta->data;
	cr_expect_eq(memcmp(ta->data, tb->data, bytes), 0, "the same seed gave another stimulus");
	cr_expect_neq(memcmp(ta->data, tc->data, bytes), 0, "seed 3 gave seed 0's stimulus");
	fv_tensor_free(ta);
	fv_tensor_free(tb);
	fv_tensor_free(tc);
	fv_config_free(cfg);
}

/* No config: the defaults, 50 frames. */
Test(pipeline, no_config_means_the_defaults)
{
	const int64_t n0 = 0;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_0",
	                       .units = {1, &n0}};
	run_ok(NULL, &job, "d", NULL);
	json_t *r = load_record("d", "mei_session_0_0");
	cr_expect_eq(json_integer_value(json_array_get(json_object_get(r, "stimulus_shape"), 1)), 50);
	expect_config_has(r, "lr: 100.0");
	json_decref(r);
}

/* The mean response to a reference movie is the model's, on the movie
** normalised as the data loader normalises it. */
Test(pipeline, reference_movie)
{
	const int64_t shape[4] = {1, 40, 6, 5};
	fv_tensor *movie = fv_tensor_new(4, shape);
	for (int64_t i = 0; i < movie->numel; i++)
		movie->data[i] = (fv_real)((i * 7919) % 13) / 6.0f;
	const char *path = in_tmp("movie.npy");
	cr_assert_eq(fv_npy_save(path, movie), FV_OK, "%s", fv_errmsg());

	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t n3 = 3;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1",
	                       .units = {1, &n3}, .reference = path};
	run_ok(cfg, &job, "ref", NULL);
	json_t *r = load_record("ref", "mei_session_1_3");
	double got = real_of(r, "reference_mean_response");

	fv_checkpoint *ck = fv_checkpoint_open(ckpt);
	fv_module *module = fv_model_load(reg, ck, NULL);
	fv_model *model = fv_model_new(module);
	cr_assert_not_null(model, "%s", fv_errmsg());
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_set_grad_enabled(ctx, false);
	const int64_t xs[5] = {1, 1, 40, 6, 5};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, xs, movie->data);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(((double)x->data[i] - 0.5) / 2.0);
	fv_tensor *y = fv_model_forward(model, ctx, x, "session_1");
	cr_assert_not_null(y, "%s", fv_errmsg());
	double want = 0;
	for (int64_t t = 0; t < y->shape[1]; t++)
		want += (double)y->data[t * 4 + 3] / (double)y->shape[1];
	cr_expect_float_eq(got, want, 1e-6 * (1 + fabs(want)));

	fv_ctx_free(ctx);
	fv_model_free(model);
	fv_module_free(module);
	fv_checkpoint_close(ck);
	json_decref(r);
	fv_tensor_free(movie);

	/* a movie of another size is refused by name */
	const int64_t bad_shape[4] = {1, 40, 5, 5};
	movie = fv_tensor_new(4, bad_shape);
	cr_assert_eq(fv_npy_save(path, movie), FV_OK);
	cr_expect_eq(run_job(cfg, &job, "ref2", NULL), FV_ERR_SHAPE);
	pt_expect_msg("reference movie: ");
	pt_expect_msg("movie.npy: shape (1, 40, 5, 5)");
	fv_tensor_free(movie);
	fv_config_free(cfg);
}

/* The summary line, and the progress line when asked for. */
Test(pipeline, progress_and_summary_lines)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t n0 = 0;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_0",
	                       .units = {1, &n0}};
	for (int progress = 0; progress <= 1; progress++) {
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);
		fv_insilico_options o = {.out_dir = in_tmp("p"), .progress = progress, .out = out};
		cr_assert_eq(fv_optimize_from_config(reg, cfg, &job, &o, NULL), FV_OK, "%s",
		             fv_errmsg());
		fclose(out);
		cr_expect(strstr(text, "mei_session_0_0: 10 iterations, objective ") != NULL, "%s", text);
		char wrote[600];
		snprintf(wrote, sizeof wrote, "wrote %s/mei_session_0_0.{npy,png,json}\n", in_tmp("p"));
		cr_expect(strstr(text, wrote) != NULL, "%s", text);
		bool live = strstr(text, "\rmei_session_0_0: iteration 10/10  objective") != NULL;
		cr_expect_eq(live, progress == 1, "%s", text);
		free(text);
	}
	fv_config_free(cfg);
}

/* ---- MEIs of inner units --------------------------------------------------------------------- */

/* The central unit of a channel of core.features.layer0 (26 frames of 30):
** the reducer averages its last 10, the session is the model's first. */
Test(pipeline, mei_of_an_inner_unit)
{
	fv_config *cfg = short_config(FV_INSILICO_INNER_MEI);
	const int64_t c1 = 1;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_INNER_MEI,
	                       .layer = "core.features.layer0", .units = {1, &c1}};
	run_ok(cfg, &job, "i", NULL);
	expect_int(cfg, "objective.response_reducer.start", 16);
	expect_text(cfg, "objective.layer", "core.features.layer0");
	expect_int(cfg, "objective.channel", 1);
	expect_text(cfg, "objective.data_key", "session_0");

	cr_expect(exists("i", "mei_core.features.layer0_1", "png"));
	json_t *r = load_record("i", "mei_core.features.layer0_1");
	cr_expect_str_eq(json_string_value(json_object_get(r, "session")), "session_0");
	cr_expect_str_eq(json_string_value(json_object_get(r, "layer")), "core.features.layer0");
	cr_expect_eq(json_integer_value(json_object_get(r, "channel")), 1);
	cr_expect_null(json_object_get(r, "neuron"));
	cr_expect_null(json_object_get(r, "mean_activity"), "an inner unit has no recorded mean");
	cr_expect_eq(size_of(r, "response_trace"), 26);
	/* the trace is the unit the objective reads */
	double final = real_of(r, "final_objective");
	cr_expect_float_eq(slice_mean(r, 16), final, 1e-5 * (1 + fabs(final)));
	json_decref(r);
	fv_config_free(cfg);
}

/* Every channel of a layer named as openretina's hooks name it; a start
** the config sets stays. */
Test(pipeline, every_channel_of_a_layer)
{
	const char *o[] = {"time_steps=30", "objective.response_reducer.start=2"};
	fv_config *cfg = compose(FV_INSILICO_INNER_MEI, NULL, 2, o);
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_INNER_MEI,
	                       .layer = "core_features_layer0_conv", .session = "session_1"};
	fv_insilico_result res;
	run_ok(cfg, &job, "ch", &res);
	cr_expect_eq(res.n_stimuli, 4, "the core has 4 channels");
	cr_expect(exists("ch", "mei_core_features_layer0_conv_3", "json"));
	expect_int(cfg, "objective.response_reducer.start", 2);
	json_t *r = load_record("ch", "mei_core_features_layer0_conv_3");
	cr_expect_str_eq(json_string_value(json_object_get(r, "session")), "session_1");
	double final = real_of(r, "final_objective");
	cr_expect_float_eq(slice_mean(r, 2), final, 1e-5 * (1 + fabs(final)));
	json_decref(r);
	fv_config_free(cfg);
}

/* ---- the MDS ------------------------------------------------------------------------------- */

Test(pipeline, mds_of_clusters)
{
	const char *o[] = {"time_steps=30", "+objective.temperature=2"};
	fv_config *cfg = compose(FV_INSILICO_MDS, NULL, 2, o);
	const int64_t on[] = {0, 1}, off0[] = {2}, off1[] = {3};
	const fv_indices off[] = {{1, off0}, {1, off1}};
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MDS, .session = "session_1",
	                       .on = {2, on}, .n_off = 2, .off = off};
	fv_insilico_result res;
	run_ok(cfg, &job, "mds", &res);
	cr_expect_eq(res.n_stimuli, 1);
	json_t *r = load_record("mds", "mds_session_1_0-1");
	cr_expect_str_eq(json_string_value(json_object_get(r, "command")), "mds");
	char *clusters = json_dumps(json_object_get(r, "off_clusters"), 0);
	cr_expect_str_eq(clusters, "[[2], [3]]");
	free(clusters);
	cr_expect_eq(size_of(r, "on_cluster"), 2);
	cr_expect_null(json_object_get(r, "response"), "an MDS has no single unit");
	expect_config_has(r, "temperature: 2");
	expect_config_has(r, "on_cluster_idc: [0, 1]");
	json_decref(r);
	fv_config_free(cfg);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_failure(fv_config *cfg, const fv_insilico_job *job, const char *msg)
{
	cr_expect_neq(run_job(cfg, job, "err", NULL), FV_OK, "expected '%s'", msg);
	pt_expect_msg(msg);
}

/* Bad indices are refused before anything is written. */
Test(pipeline, bad_jobs)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t n4 = 4, n1 = 1;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "sesion_1",
	                       .units = {1, &n4}};
	expect_failure(cfg, &job, "no session 'sesion_1'; did you mean 'session_1'?");
	job.session = "session_1";
	expect_failure(cfg, &job, "neuron 4 is out of range: session 'session_1' has 4 neurons (0..3)");
	cr_expect_neq(access(in_tmp("err"), F_OK), 0, "the output directory was made");
	job.session = NULL;
	expect_failure(cfg, &job, "an MEI needs a session");
	job.session = "session_1";
	job.units = (fv_indices){1, NULL};
	expect_failure(cfg, &job, "1 units given as NULL");
	job.units = (fv_indices){1, &n1};
	job.checkpoint = in_tmp("none.safetensors");
	expect_failure(cfg, &job, "none.safetensors");
	job.checkpoint = NULL;
	expect_failure(cfg, &job, "no checkpoint given");
	job.checkpoint = ckpt;
	cr_expect_eq(fv_optimize_from_config(NULL, cfg, &job, NULL, NULL), FV_ERR_ARG);
	pt_expect_msg("no registry");
	cr_expect_eq(fv_optimize_from_config(reg, cfg, NULL, NULL, NULL), FV_ERR_ARG);
	pt_expect_msg("no job");
	fv_config_free(cfg);

	cfg = short_config(FV_INSILICO_INNER_MEI);
	fv_insilico_job inner = {.checkpoint = ckpt, .kind = FV_INSILICO_INNER_MEI,
	                         .layer = "core.features.layer0", .units = {1, &n4}};
	expect_failure(cfg, &inner, "channel 4 is out of range: layer 'core.features.layer0' has 4 "
	                            "channels (0..3)");
	inner.layer = "core.features.layer3";
	expect_failure(cfg, &inner, "layer 'core.features.layer3' is not an output the model's "
	                            "forward produced (it produced: core.features.layer0.conv");
	inner.layer = NULL;
	expect_failure(cfg, &inner, "an MEI needs a layer");
	fv_config_free(cfg);

	cfg = short_config(FV_INSILICO_MDS);
	const int64_t on[] = {0, 9};
	fv_insilico_job mds = {.checkpoint = ckpt, .kind = FV_INSILICO_MDS, .session = "session_1",
	                       .on = {2, on}};
	expect_failure(cfg, &mds, "an MDS needs an OFF cluster");
	const fv_indices off = {1, &n1};
	mds.n_off = 1;
	mds.off = &off;
	expect_failure(cfg, &mds, "cluster neuron 9 is out of range: session 'session_1' has 4");
	/* issue 12 item 10: the same neuron ON and OFF cancels the objective */
	const int64_t on1[] = {0, 1};
	mds.on = (fv_indices){2, on1};
	expect_failure(cfg, &mds, "neuron 1 is in both the ON cluster and OFF cluster 0");
	mds.on = (fv_indices){2, on};
	mds.reference = "movie.npy";
	expect_failure(cfg, &mds, "a reference movie is for the MEIs of units");
	fv_config_free(cfg);
}

/* Issue 12 items 2 and 3: a checkpoint without data_info, or whose
** data_info lists no sessions, is refused naming the file (it was a NULL
** dereference and a read before the sessions array). */
Test(pipeline, checkpoint_without_sessions)
{
	const int64_t n0 = 0, n1 = 1;
	fv_insilico_kind kinds[2] = {FV_INSILICO_MEI, FV_INSILICO_MDS};
	const fv_indices off = {1, &n0};
	for (int k = 0; k < 2; k++) {
		fv_config *cfg = short_config(kinds[k]);
		fv_insilico_job job = {.kind = kinds[k], .units = {1, &n1}, .on = {1, &n1},
		                       .n_off = kinds[k] == FV_INSILICO_MDS, .off = &off};
		if (kinds[k] == FV_INSILICO_MDS)
			job.units = (fv_indices){0, NULL};
		const char *noinfo = in_tmp("noinfo.safetensors"), *nosess = in_tmp("nosess.safetensors");
		save_checkpoint_with(noinfo, INFO_NONE);
		save_checkpoint_with(nosess, INFO_NO_SESSIONS);
		job.checkpoint = noinfo;
		job.session = "session_1";
		expect_failure(cfg, &job, "noinfo.safetensors: the checkpoint's metadata has no data_info");
		job.checkpoint = nosess;
		expect_failure(cfg, &job, "nosess.safetensors: the model has no sessions");
		fv_config_free(cfg);
	}
}

/* Issue 12 item 9: a checkpoint whose stim_std cannot normalise, or whose
** weights give a NaN stimulus, is refused; no NaN file is written. */
Test(pipeline, non_finite_inputs_and_outputs_are_refused)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t n1 = 1;
	const char *std0 = in_tmp("std0.safetensors"), *nanw = in_tmp("nanw.safetensors");
	save_checkpoint_with(std0, INFO_STD_0);
	save_checkpoint_with(nanw, NAN_WEIGHT);
	fv_insilico_job job = {.checkpoint = std0, .kind = FV_INSILICO_MEI, .session = "session_1",
	                       .units = {1, &n1}};
	expect_failure(cfg, &job, "std0.safetensors: data_info stim_mean 0.5 and stim_std 0 cannot "
	                          "normalise a stimulus");
	job.checkpoint = nanw;
	expect_failure(cfg, &job, "batch element 0 holds non-finite values");
	fv_config_free(cfg);
	/* without the projection that notices, the record refuses to write */
	const char *plain[] = {"time_steps=30", "postprocessors=null"};
	cfg = compose(FV_INSILICO_MEI, NULL, 2, plain);
	expect_failure(cfg, &job, "nanw.safetensors: mei_session_1_1: ");
	pt_expect_msg("stimulus values are not finite");
	cr_expect_not(exists("err", "mei_session_1_1", "npy"), "a NaN stimulus was written");
	fv_config_free(cfg);
}

/* A bad setting names its key, and which optimisation it stopped. */
Test(pipeline, bad_configs)
{
	const int64_t n1 = 1;
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1",
	                       .units = {1, &n1}};
	const char *zero[] = {"time_steps=0"};
	fv_config *cfg = compose(FV_INSILICO_MEI, NULL, 1, zero);
	expect_failure(cfg, &job, "time_steps: expected an integer >= 1, got '0'");
	fv_config_free(cfg);

	const char *foo[] = {"time_steps=30", "optimizer._target_=torch.optim.Foo"};
	cfg = compose(FV_INSILICO_MEI, NULL, 2, foo);
	expect_failure(cfg, &job, "mei_session_1_1: optimizer: ");
	pt_expect_msg("torch.optim.Foo");
	fv_config_free(cfg);

	const char *nostop[] = {"time_steps=30", "stopper=null"};
	cfg = compose(FV_INSILICO_MEI, NULL, 2, nostop);
	expect_failure(cfg, &job, "mei_session_1_1: stopper: missing");
	fv_config_free(cfg);
}

/* The caller's on_result can end a run; the files of that optimisation
** are written by then. */
Test(pipeline, on_result_ends_the_run)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1"};
	seen s = {.answer = FV_ERR_ARG};
	fv_insilico_options o = {.out_dir = in_tmp("stop"), .quiet = true, .on_result = note,
	                         .ud = &s};
	fv_insilico_result res;
	cr_expect_eq(fv_optimize_from_config(reg, cfg, &job, &o, &res), FV_ERR_ARG);
	pt_expect_msg("mei_session_1_0: the caller stops here");
	cr_expect_eq(s.n, 1);
	cr_expect_eq(res.n_stimuli, 0);
	cr_expect(exists("stop", "mei_session_1_0", "json"));
	cr_expect_not(exists("stop", "mei_session_1_1", "json"));
	fv_tensor_free(s.stimulus);
	fv_config_free(cfg);
}

/* A shard (mpirun fovea mei) optimises the k-th unit of the job when
** k % shard_count == shard_index, each as the whole job would. */
Test(pipeline, shards_split_the_units)
{
	fv_config *cfg = short_config(FV_INSILICO_MEI);
	const int64_t list[3] = {3, 0, 2};
	fv_insilico_job job = {.checkpoint = ckpt, .kind = FV_INSILICO_MEI, .session = "session_1",
	                       .units = {3, list}};
	seen whole = {0}, part[2] = {{0}};
	fv_insilico_options o = {.out_dir = in_tmp("shards"), .quiet = true, .on_result = note,
	                         .ud = &whole};
	cr_assert_eq(fv_optimize_from_config(reg, cfg, &job, &o, NULL), FV_OK, "%s", fv_errmsg());
	for (int k = 0; k < 2; k++) {
		o.ud = &part[k];
		o.shard_index = k;
		o.shard_count = 2;
		cr_assert_eq(fv_optimize_from_config(reg, cfg, &job, &o, NULL), FV_OK, "%s",
		             fv_errmsg());
	}
	cr_assert(part[0].n == 2 && part[1].n == 1);
	cr_expect(part[0].units[0] == 3 && part[0].units[1] == 2 && part[1].units[0] == 0);
	cr_expect_eq(part[0].final_objective[0], whole.final_objective[0]);
	cr_expect_eq(part[0].final_objective[1], whole.final_objective[2]);
	cr_expect_eq(part[1].final_objective[0], whole.final_objective[1]);
	o.shard_index = 2;
	cr_expect_eq(fv_optimize_from_config(reg, cfg, &job, &o, NULL), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "shard 2 of 2") != NULL, "%s", fv_errmsg());
	fv_tensor_free(whole.stimulus);
	fv_tensor_free(part[0].stimulus);
	fv_tensor_free(part[1].stimulus);
	fv_config_free(cfg);
}
