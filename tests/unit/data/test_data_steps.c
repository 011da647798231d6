/*
** test_data_steps.c: the data-step plugin kind (<fovea/data_plugin.h>):
** values, openretina's split dataclasses, inside-out evaluation of nested
** `_target_` calls as Hydra does it, the errors for unknown steps, and the
** example reader plugin of docs/writing-a-plugin.md.
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

/* ---- steps defined here: a constant and a sum, logging their calls ---- */

static char call_log[256];

static void log_call(const char *what)
{
	strncat(call_log, what, sizeof call_log - strlen(call_log) - 1);
}

typedef struct constant {
	double value;
	const char *label;
} constant;

static const fv_option constant_options[] = {
	FV_OPT("value", FLOAT, constant, value, "0", "the number returned"),
	FV_OPT("label", STRING, constant, label, "c", "written to the call log"),
	{0},
};

static fv_status constant_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	(void)in;
	const constant *c = fv_module_priv(m);
	log_call(c->label);
	*out = fv_dvalue_number(c->value);
	return FV_OK;
}

typedef struct sum {
	const fv_config_node *a, *b;
	double scale;
} sum;

static const fv_option sum_options[] = {
	FV_OPT("a", NODE, sum, a, NULL, "a nested step", .flags = FV_OPT_REQUIRED),
	FV_OPT("b", NODE, sum, b, NULL, "a nested step or a number", .flags = FV_OPT_REQUIRED),
	FV_OPT("scale", FLOAT, sum, scale, "1", "multiplies the sum"),
	{0},
};

/* (a + b) * scale, where b is a nested step's value or a plain number. */
static fv_status sum_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const sum *s = fv_module_priv(m);
	log_call("+");
	double a = fv_dvalue_number_of(fv_data_input(in, "a"));
	const fv_dvalue *bv = fv_data_input(in, "b");
	double b = bv != NULL ? fv_dvalue_number_of(bv) : atof(fv_node_text(s->b));
	if (isnan(a))
		return fv_error_at(fv_data_input_spec(in), FV_ERR_CONFIG, "sum: 'a' is no number");
	*out = fv_dvalue_number((a + b) * s->scale);
	return FV_OK;
}

static fv_tensor *layer_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)m, (void)ctx, (void)fa;
	return x;
}

static const char *const constant_names[] = {"test.constant", NULL};
static const char *const sum_names[] = {"test.sum", "tests.steps.add_numbers", NULL};
static const char *const layer_names[] = {"test.layer", NULL};

static const fv_component constant_component = {
	.struct_size = sizeof(fv_component), .kind = FV_KIND_DATA, .names = constant_names,
	.doc = "a number", .options = constant_options, .priv_size = sizeof(constant),
	.data_step = constant_step,
};
static const fv_component sum_component = {
	.struct_size = sizeof(fv_component), .kind = FV_KIND_DATA, .names = sum_names,
	.doc = "a sum", .options = sum_options, .priv_size = sizeof(sum), .data_step = sum_step,
};
static const fv_component layer_component = {
	.struct_size = sizeof(fv_component), .kind = FV_KIND_LAYER, .names = layer_names,
	.doc = "identity", .forward = layer_forward,
};
static const fv_component *const test_components[] = {&constant_component, &sum_component,
                                                      &layer_component};
static const fv_plugin test_plugin = {
	.abi_major = FV_ABI_MAJOR, .abi_minor = FV_ABI_MINOR, .name = "test-steps",
	.n_components = 3, .components = test_components,
};

static fv_registry *reg;
static fv_config *cfg;

static void setup(void)
{
	reg = fv_registry_new();
	cr_assert_not_null(reg);
	cr_assert_eq(fv_registry_add(reg, &test_plugin, "test_data_steps.c"), FV_OK, "%s",
	             fv_errmsg());
	call_log[0] = '\0';
	cfg = NULL;
}

static void teardown(void)
{
	fv_config_free(cfg);
	fv_registry_free(reg);
}

/* The root of `yaml`, replacing the test's earlier config. */
static const fv_config_node *load_yaml(const char *yaml)
{
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "steps.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_config_root(cfg);
}

TestSuite(data_steps, .init = setup, .fini = teardown);

Test(data_steps, nested_steps_run_inside_out)
{
	const fv_config_node *root = load_yaml(
		"out:\n"
		"  _target_: test.sum\n"
		"  scale: 2\n"
		"  a:\n"
		"    _target_: tests.steps.add_numbers\n"
		"    a: {_target_: test.constant, value: 1.5, label: x}\n"
		"    b: {_target_: test.constant, value: 2, label: y}\n"
		"  b: 10\n");
	fv_dvalue *v = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_kind_of(v), FV_DV_NUMBER);
	cr_assert_float_eq(fv_dvalue_number_of(v), ((1.5 + 2) + 10) * 2, 1e-12);
	/* Hydra's order: each nested call before the one that takes its value,
	** nested keys in the order the map lists them. */
	cr_assert_str_eq(call_log, "xy++");
	fv_dvalue_free(v);
}

Test(data_steps, plain_values_are_converted_item_by_item)
{
	const fv_config_node *root = load_yaml(
		"out:\n"
		"  name: natural\n"
		"  rate: 30\n"
		"  none: null\n"
		"  items: [1, {_target_: test.constant, value: 4}, text]\n");
	fv_dvalue *v = NULL;
	cr_assert_eq(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_dvalue_kind_of(v), FV_DV_MAP);
	cr_assert_null(fv_dvalue_class(v));
	cr_assert_str_eq(fv_dvalue_key_at(v, 0), "name");
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(v, "name")), "natural");
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(v, "rate")), 30, 0);
	cr_assert_eq(fv_dvalue_kind_of(fv_dvalue_get(v, "none")), FV_DV_NULL);
	const fv_dvalue *items = fv_dvalue_get(v, "items");
	cr_assert_eq(fv_dvalue_kind_of(items), FV_DV_LIST);
	cr_assert_eq(fv_dvalue_size(items), 3);
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_at(items, 1)), 4, 0);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_at(items, 2)), "text");
	fv_dvalue_free(v);
}

Test(data_steps, an_unknown_step_names_itself_and_the_closest)
{
	const fv_config_node *root = load_yaml("out:\n  a:\n    _target_: test.sun\n");
	fv_dvalue *v = NULL;
	EXPECT_ERROR(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_ERR_NOTFOUND,
	             "steps.yaml:3", "out.a._target_", "no data step 'test.sun'",
	             "did you mean 'test.sum'?");
	cr_assert_null(v);
}

Test(data_steps, a_component_of_another_kind_is_refused)
{
	const fv_config_node *root = load_yaml("out: {_target_: test.layer}\n");
	fv_dvalue *v = NULL;
	EXPECT_ERROR(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_ERR_CONFIG,
	             "'test.layer' is a layer, not a data step");
}

Test(data_steps, option_errors_name_the_step_and_key)
{
	const fv_config_node *root = load_yaml(
		"out:\n  _target_: test.sum\n  a: {_target_: test.constant}\n  b: 1\n  scal: 3\n");
	fv_dvalue *v = NULL;
	EXPECT_ERROR(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_ERR_CONFIG, "scal",
	             "scale");
	cr_assert_null(v);
	/* The inner step ran before the outer one's options were read. */
	cr_assert_str_eq(call_log, "c");
}

Test(data_steps, a_failing_step_stops_the_evaluation)
{
	const fv_config_node *root = load_yaml(
		"out:\n  _target_: test.sum\n  a: {_target_: test.sum, a: [1], b: 2}\n  b: 1\n");
	fv_dvalue *v = NULL;
	EXPECT_ERROR(fv_data_eval(reg, fv_node_get(root, "out"), &v), FV_ERR_CONFIG,
	             "steps.yaml", "sum: 'a' is no number");
	cr_assert_str_eq(call_log, "+");
}

Test(data_steps, null_arguments_are_refused)
{
	cr_assert_eq(fv_data_eval(reg, NULL, &(fv_dvalue *){NULL}), FV_ERR_ARG);
}

/* ---- values ---------------------------------------------------------------------- */

static fv_tensor *filled(int ndim, const int64_t *shape, float start)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	cr_assert_not_null(t);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = start + (float)i;
	return t;
}

Test(data_values, maps_keep_order_replace_take_and_copy)
{
	fv_dvalue *m = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(m, "b", fv_dvalue_number(1)), FV_OK);
	cr_assert_eq(fv_dvalue_set(m, "a", fv_dvalue_text("x")), FV_OK);
	cr_assert_eq(fv_dvalue_set(m, "b", fv_dvalue_number(2)), FV_OK);
	cr_assert_eq(fv_dvalue_set(m, "t", fv_dvalue_tensor(filled(1, (int64_t[]){3}, 5))),
	             FV_OK);
	cr_assert_eq(fv_dvalue_size(m), 3);
	cr_assert_str_eq(fv_dvalue_key_at(m, 0), "b");
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(m, "b")), 2, 0);

	fv_dvalue *c = fv_dvalue_copy(m);
	fv_dvalue *t = fv_dvalue_take(m, "t");
	cr_assert_eq(fv_dvalue_size(m), 2);
	cr_assert_null(fv_dvalue_get(m, "t"));
	cr_assert_eq(fv_dvalue_tensor_of(t)->data[2], 7.0f);
	const fv_tensor *ct = fv_dvalue_tensor_of(fv_dvalue_get(c, "t"));
	cr_assert_neq(ct, fv_dvalue_tensor_of(t), "a copy shares no tensor");
	cr_assert_eq(ct->data[2], 7.0f);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(c, "a")), "x");
	/* Wrong kinds read as nothing rather than crash. */
	cr_assert(isnan(fv_dvalue_number_of(fv_dvalue_get(c, "a"))));
	cr_assert_null(fv_dvalue_text_of(fv_dvalue_get(c, "b")));
	cr_assert_eq(fv_dvalue_append(c, fv_dvalue_null()), FV_ERR_ARG);
	fv_dvalue_free(t);
	fv_dvalue_free(c);
	fv_dvalue_free(m);
}

static fv_dvalue *one_test(const char *name, fv_tensor *t)
{
	fv_dvalue *d = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(d, name, fv_dvalue_tensor(t)), FV_OK);
	return d;
}

Test(data_values, movies_split_holds_the_dataclass_fields)
{
	fv_tensor *train = filled(4, (int64_t[]){2, 5, 3, 4}, 0);
	fv_dvalue *s = fv_dvalue_movies_split(train, one_test("test", filled(4, (int64_t[]){2, 3, 3, 4}, 0)),
	                                      NULL, 0.5, NAN, "natural");
	cr_assert_not_null(s, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_class(s), FV_DV_MOVIES_SPLIT);
	cr_assert_eq(fv_dvalue_tensor_of(fv_dvalue_get(s, "train")), train);
	cr_assert_eq(fv_dvalue_size(fv_dvalue_get(s, "test_dict")), 1);
	cr_assert_eq(fv_dvalue_kind_of(fv_dvalue_get(s, "random_sequences")), FV_DV_NULL);
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(s, "norm_mean")), 0.5, 0);
	cr_assert_eq(fv_dvalue_kind_of(fv_dvalue_get(s, "norm_std")), FV_DV_NULL);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(s, "stim_id")), "natural");
	fv_dvalue_free(s);
}

Test(data_values, movies_split_checks_as_post_init_does)
{
	EXPECT_ERROR(fv_dvalue_movies_split(filled(3, (int64_t[]){2, 5, 3}, 0),
	                                    one_test("test", filled(4, (int64_t[]){2, 3, 3, 4}, 0)),
	                                    NULL, NAN, NAN, NULL) == NULL ? fv_errcode() : FV_OK,
	             FV_ERR_SHAPE, "train movie should have 4 dimensions", "(2, 5, 3)");
	EXPECT_ERROR(fv_dvalue_movies_split(filled(4, (int64_t[]){2, 5, 3, 4}, 0),
	                                    one_test("noise", filled(4, (int64_t[]){1, 3, 3, 4}, 0)),
	                                    NULL, NAN, NAN, NULL) == NULL ? fv_errcode() : FV_OK,
	             FV_ERR_SHAPE, "test movie 'noise'", "channels and spatial size");
	EXPECT_ERROR(fv_dvalue_movies_split(filled(4, (int64_t[]){2, 5, 3, 4}, 0),
	                                    fv_dvalue_map(NULL), NULL, NAN, NAN, NULL) == NULL
	                     ? fv_errcode() : FV_OK,
	             FV_ERR_ARG, "no test stimuli present");
}

Test(data_values, responses_split_checks_neurons_and_trials)
{
	fv_dvalue *s = fv_dvalue_responses_split(filled(2, (int64_t[]){3, 10}, 0),
	                                         one_test("test", filled(2, (int64_t[]){3, 4}, 0)),
	                                         one_test("test", filled(3, (int64_t[]){2, 3, 4}, 0)),
	                                         NULL, NULL);
	cr_assert_not_null(s, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_class(s), FV_DV_RESPONSES_SPLIT);
	cr_assert_eq(fv_dvalue_size(fv_dvalue_get(s, "session_kwargs")), 0);
	cr_assert_eq(fv_dvalue_kind_of(fv_dvalue_get(s, "stim_id")), FV_DV_NULL);
	fv_dvalue_free(s);

	EXPECT_ERROR(fv_dvalue_responses_split(filled(2, (int64_t[]){3, 10}, 0),
	                                       one_test("test", filled(2, (int64_t[]){4, 4}, 0)),
	                                       NULL, NULL, NULL) == NULL ? fv_errcode() : FV_OK,
	             FV_ERR_SHAPE, "test responses 'test' have 4 neurons, the train responses 3");
	EXPECT_ERROR(fv_dvalue_responses_split(filled(2, (int64_t[]){3, 10}, 0),
	                                       one_test("test", filled(2, (int64_t[]){3, 4}, 0)),
	                                       one_test("other", filled(3, (int64_t[]){2, 3, 4}, 0)),
	                                       NULL, NULL) == NULL ? fv_errcode() : FV_OK,
	             FV_ERR_ARG, "key 'other' without matching test stimuli");
}

/* ---- the example reader plugin ---------------------------------------------------- */

/* A (rows, cols) float32 .npy written byte by byte as numpy writes it, so
** the reader is checked against the format, not against fovea's writer. */
static void write_npy(const char *path, int64_t rows, int64_t cols, const float *v)
{
	char header[128];
	int n = snprintf(header, sizeof header,
	                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
	                 (long long)rows, (long long)cols);
	int total = 10 + n + 1;
	int pad = (64 - total % 64) % 64;
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	unsigned short len = (unsigned short)(n + pad + 1);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(len & 0xff, f);
	fputc(len >> 8, f);
	fwrite(header, 1, (size_t)n, f);
	for (int i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
	fwrite(v, sizeof *v, (size_t)(rows * cols), f);
	fclose(f);
}

Test(example_reader, load_and_split_as_the_docs_show)
{
	char dir[] = "/tmp/fovea_steps_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[64], yaml[512];
	snprintf(path, sizeof path, "%s/session_1.npy", dir);
	float v[2 * 6];
	for (int i = 0; i < 12; i++)
		v[i] = (float)(i * i) * 0.5f;
	write_npy(path, 2, 6, v);
	snprintf(yaml, sizeof yaml,
	         "responses:\n"
	         "  _target_: fovea.examples.split_responses\n"
	         "  test_frames: 2\n"
	         "  responses:\n"
	         "    _target_: fovea.examples.load_npy\n"
	         "    file_path: %s\n", path);
	fv_registry *r = dt_registry_with("examples/example_npy_reader.so");
	fv_config *c = fv_config_load_string(yaml, strlen(yaml), "example.yaml");
	fv_dvalue *s = NULL;
	cr_assert_eq(fv_data_eval(r, fv_node_get(fv_config_root(c), "responses"), &s), FV_OK, "%s",
	             fv_errmsg());
	cr_assert_str_eq(fv_dvalue_class(s), FV_DV_RESPONSES_SPLIT);
	const fv_tensor *train = fv_dvalue_tensor_of(fv_dvalue_get(s, "train"));
	const fv_tensor *test =
		fv_dvalue_tensor_of(fv_dvalue_get(fv_dvalue_get(s, "test_dict"), "test"));
	cr_assert_eq(train->shape[0], 2);
	cr_assert_eq(train->shape[1], 4);
	cr_assert_eq(test->shape[1], 2);
	/* neuron 1, train frame 3 is v[1 * 6 + 3]; test frame 0 is v[1 * 6 + 4] */
	cr_assert_float_eq(train->data[1 * 4 + 3], 81 * 0.5, 0);
	cr_assert_float_eq(test->data[1 * 2 + 0], 100 * 0.5, 0);
	cr_assert_float_eq(test->data[0 * 2 + 1], 25 * 0.5, 0);
	fv_dvalue_free(s);

	/* Too few frames: the step's message names what it needs. */
	cr_assert_eq(fv_config_override(c, "responses.test_frames=6"), FV_OK, "%s", fv_errmsg());
	EXPECT_ERROR(fv_data_eval(r, fv_node_get(fv_config_root(c), "responses"), &s), FV_ERR_SHAPE,
	             "example.yaml", "more than test_frames = 6 frames");
	/* A missing file: the reader's message names it. */
	unlink(path);
	cr_assert_eq(fv_config_override(c, "responses.test_frames=2"), FV_OK);
	EXPECT_ERROR(fv_data_eval(r, fv_node_get(fv_config_root(c), "responses"), &s), FV_ERR_IO,
	             "session_1.npy");
	rmdir(dir);
	fv_config_free(c);
	fv_registry_free(r);
}

/* ---- a data set from split values (fv_data_open_values) --------------------------- */

/* Movie frame t of every pixel holds `base + t`; responses of neuron n at
** frame t hold n * 1000 + t: every value says where it came from. */
static fv_tensor *movie_of(int64_t frames, float base)
{
	fv_tensor *t = fv_tensor_new(4, (int64_t[]){1, frames, 2, 2});
	for (int64_t f = 0; f < frames; f++)
		for (int p = 0; p < 4; p++)
			t->data[f * 4 + p] = base + (float)f;
	return t;
}

static fv_tensor *responses_of(int64_t neurons, int64_t frames)
{
	fv_tensor *t = fv_tensor_new(2, (int64_t[]){neurons, frames});
	for (int64_t n = 0; n < neurons; n++)
		for (int64_t f = 0; f < frames; f++)
			t->data[n * frames + f] = (float)(n * 1000 + f);
	return t;
}

static fv_dvalue *responses_split(int64_t neurons, int64_t frames)
{
	return fv_dvalue_responses_split(responses_of(neurons, frames),
	                                 one_test("natural", responses_of(neurons, 10)), NULL, NULL,
	                                 NULL);
}

static void values_options(fv_data_options *o)
{
	static const int64_t val[] = {3, 1};
	fv_data_options_default(o);
	o->clip_length = 10;
	o->validation_clip_indices = val;
	o->n_validation_clip_indices = 2;
	o->train_chunk_size = 5;
	o->batch_size = 2;
}

Test(data_values, a_shared_movie_and_two_sessions_are_split_like_the_hdf5_layout)
{
	fv_dvalue *movies = fv_dvalue_movies_split(movie_of(40, 0),
	                                           one_test("natural", movie_of(10, 500)), NULL,
	                                           0.25, 2.0, NULL);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "s1", responses_split(2, 40)), FV_OK);
	cr_assert_eq(fv_dvalue_set(responses, "s0", responses_split(3, 40)), FV_OK);
	fv_data_options o;
	values_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, movies, responses, &d), FV_OK, "%s", fv_errmsg());

	cr_assert_eq(fv_data_n_sessions(d), 2);
	cr_assert_str_eq(fv_data_session_name(d, 0), "s0", "sessions are sorted");
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_eq(info->n_neurons[0], 3);
	cr_assert_eq(info->n_neurons[1], 2);
	cr_assert_eq(info->input_shape[0], 1);
	cr_assert_eq(info->input_shape[1], 2);
	cr_assert_float_eq(info->stim_mean, 0.25, 0, "the split's normalisation is recorded");
	cr_assert_float_eq(info->stim_std, 2.0, 0);
	/* mean over the 40 non-test frames: n * 1000 + 19.5 */
	cr_assert_float_eq(info->mean_activity[1]->data[1], 1019.5, 1e-3);

	/* Validation: clips 3 then 1 (frames 30..39, 10..19); train: clips 0, 2. */
	const fv_movie_set *val = fv_data_validation(d, 1);
	cr_assert_eq(val->movie->shape[1], 20);
	cr_assert_float_eq(val->movie->data[0], 30, 0);
	cr_assert_float_eq(val->movie->data[10 * 4], 10, 0);
	cr_assert_float_eq(val->responses->data[0 * 2 + 1], 1030, 0);
	const fv_movie_set *train = fv_data_train(d, 1);
	cr_assert_eq(train->movie->shape[1], 20);
	cr_assert_float_eq(train->movie->data[12 * 4], 22, 0);
	cr_assert_float_eq(train->responses->data[12 * 2 + 1], 1022, 0);
	cr_assert_eq(train->n_samples, 4, "20 frames in chunks of 5");
	cr_assert_eq(train->n_batches, 2);

	const fv_movie_set *test = fv_data_test_named(d, 1, "natural");
	cr_assert_not_null(test);
	cr_assert_eq(test->movie->shape[1], 10);
	cr_assert_float_eq(test->movie->data[3 * 4], 503, 0);
	cr_assert_float_eq(test->responses->data[3 * 2 + 1], 1003, 0);
	fv_data_close(d);
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

Test(data_values, mismatched_movies_and_responses_name_the_session)
{
	fv_dvalue *movies = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(movies, "s1",
	                           fv_dvalue_movies_split(movie_of(40, 0),
	                                                  one_test("natural", movie_of(10, 0)),
	                                                  NULL, NAN, NAN, NULL)), FV_OK);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "s1", responses_split(2, 39)), FV_OK);
	fv_data_options o;
	values_options(&o);
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_open_values(&o, movies, responses, &d), FV_ERR_SHAPE,
	             "session 's1': the train movie has 40 frames, the train responses 39");
	cr_assert_eq(fv_dvalue_set(responses, "s2", responses_split(2, 40)), FV_OK);
	cr_assert_eq(fv_dvalue_set(responses, "s1", responses_split(2, 40)), FV_OK);
	EXPECT_ERROR(fv_data_open_values(&o, movies, responses, &d), FV_ERR_NOTFOUND,
	             "session 's2'", "have no movies for it");
	cr_assert_null(d);
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

/* ---- a training config's data_io through the registry (fv_data_open_config) ------- */

typedef struct frames_opt {
	int64_t frames;
} frames_opt;

static const fv_option frames_options[] = {
	FV_OPT("frames", INT, frames_opt, frames, "40", "training frames", .min = 1, .max = 1e6),
	{0},
};

static fv_status movies_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	(void)in;
	const frames_opt *o = fv_module_priv(m);
	*out = fv_dvalue_movies_split(movie_of(o->frames, 0), one_test("natural", movie_of(10, 0)),
	                              NULL, NAN, NAN, NULL);
	return *out != NULL ? FV_OK : fv_errcode();
}

static fv_status responses_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	(void)in;
	const frames_opt *o = fv_module_priv(m);
	*out = fv_dvalue_map(NULL);
	return fv_dvalue_set(*out, "session_a", responses_split(4, o->frames));
}

static const char *const movies_names[] = {"tests.readers.movies", NULL};
static const char *const responses_names[] = {"tests.readers.responses", NULL};
static const fv_component movies_component = {
	.struct_size = sizeof(fv_component), .kind = FV_KIND_DATA, .names = movies_names,
	.doc = "movies", .options = frames_options, .priv_size = sizeof(frames_opt),
	.data_step = movies_step,
};
static const fv_component responses_component = {
	.struct_size = sizeof(fv_component), .kind = FV_KIND_DATA, .names = responses_names,
	.doc = "responses", .options = frames_options, .priv_size = sizeof(frames_opt),
	.data_step = responses_step,
};
static const fv_component *const reader_components[] = {&movies_component, &responses_component};
static const fv_plugin reader_plugin = {
	.abi_major = FV_ABI_MAJOR, .abi_minor = FV_ABI_MINOR, .name = "test-readers",
	.n_components = 2, .components = reader_components,
};

Test(data_steps, a_config_data_io_runs_its_steps_and_the_dataloader_options)
{
	cr_assert_eq(fv_registry_add(reg, &reader_plugin, "test_data_steps.c"), FV_OK);
	const fv_config_node *root = load_yaml(
		"data_io:\n"
		"  stimuli: {_target_: tests.readers.movies, frames: 30}\n"
		"  responses: {_target_: tests.readers.responses, frames: 30}\n"
		"  data_info: {stimulus_rate_hz: 30}\n"
		"dataloader:\n"
		"  _target_: openretina.data_io.base_dataloader.multiple_movies_dataloaders\n"
		"  batch_size: 1\n"
		"  train_chunk_size: 10\n"
		"  clip_length: 10\n"
		"  validation_clip_indices: [2]\n");
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_config(reg, root, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_n_sessions(d), 1);
	cr_assert_str_eq(fv_data_session_name(d, 0), "session_a");
	cr_assert_eq(fv_data_get_info(d)->n_neurons[0], 4);
	cr_assert_eq(fv_data_train(d, 0)->movie->shape[1], 20, "30 frames less one clip");
	cr_assert_float_eq(fv_data_validation(d, 0)->movie->data[0], 20, 0);
	cr_assert_eq(fv_data_train(d, 0)->n_batches, 2);
	fv_data_close(d);
}

Test(data_steps, a_config_naming_an_unknown_reader_is_refused_with_the_closest)
{
	cr_assert_eq(fv_registry_add(reg, &reader_plugin, "test_data_steps.c"), FV_OK);
	const fv_config_node *root = load_yaml(
		"data_io:\n"
		"  stimuli: {_target_: tests.readers.movie}\n"
		"  responses: {_target_: tests.readers.responses}\n");
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_open_config(reg, root, &d), FV_ERR_NOTFOUND, "steps.yaml:2",
	             "data_io.stimuli._target_", "no data step 'tests.readers.movie'",
	             "did you mean 'tests.readers.movies'?");
	cr_assert_null(d);
	root = load_yaml("data_io:\n  stimuli: {_target_: tests.readers.movies}\n");
	EXPECT_ERROR(fv_data_open_config(reg, root, &d), FV_ERR_CONFIG, "data_io.responses: missing");
}

Test(data_steps, the_generic_reader_does_not_mix_with_data_step_plugins)
{
	cr_assert_eq(fv_registry_add(reg, &reader_plugin, "test_data_steps.c"), FV_OK);
	const fv_config_node *root = load_yaml(
		"data_io:\n"
		"  stimuli: {_target_: openretina.data_io.h5_dataset_reader.load_stimuli}\n"
		"  responses: {_target_: tests.readers.responses}\n");
	fv_data *d = NULL;
	EXPECT_ERROR(fv_data_open_config(reg, root, &d), FV_ERR_CONFIG, "data_io.stimuli._target_",
	             "a step of the generic HDF5 reader", "does not mix with data-step plugins");
	/* A misspelt generic step is named, with its right spelling, before
	** anything runs. */
	root = load_yaml(
		"data_io:\n"
		"  stimuli: {_target_: openretina.data_io.h5_dataset_reader.load_stimuli}\n"
		"  responses: {_target_: openretina.data_io.h5_dataset_reader.load_respons}\n");
	EXPECT_ERROR(fv_data_open_config(reg, root, &d), FV_ERR_NOTFOUND,
	             "data_io.responses._target_",
	             "did you mean 'openretina.data_io.h5_dataset_reader.load_responses'?");
	cr_assert_null(d);
}
