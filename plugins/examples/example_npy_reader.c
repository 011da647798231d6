/*
** example_npy_reader.c: the smallest data-reading plugin, as a template.
**
** Two data steps, composed in a config the way openretina composes its
** data_io functions (the inner one runs first, see <fovea/data_plugin.h>):
**
**     responses:
**       _target_: fovea.examples.split_responses
**       test_frames: 100
**       responses:
**         _target_: fovea.examples.load_npy
**         file_path: /data/session_1.npy      # neurons x time
**
** load_npy reads one array; split_responses takes the value of its nested
** step (`responses`) and cuts it into a ResponsesTrainTestSplit: the last
** test_frames frames are the test responses, the others the training
** responses.  Like every plugin it includes only fovea's public headers.
*/
#include <string.h>

#include <fovea/data_plugin.h>
#include <fovea/npy.h>

/* ---- load_npy ------------------------------------------------------------------ */

typedef struct load_npy {
	const char *file_path;
} load_npy;

static const fv_option load_npy_options[] = {
	FV_OPT("file_path", STRING, load_npy, file_path, NULL, "the .npy file to read",
	       .flags = FV_OPT_REQUIRED),
	{0},
};

static fv_status load_npy_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	(void)in; /* no nested steps */
	const load_npy *s = fv_module_priv(m);
	fv_tensor *t = fv_npy_load(s->file_path); /* its errors name the file */
	if (t == NULL)
		return fv_errcode();
	*out = fv_dvalue_tensor(t);
	return *out != NULL ? FV_OK : fv_errcode();
}

static const char *const load_npy_names[] = {"ExampleLoadNpy", "fovea.examples.load_npy", NULL};

static const fv_component load_npy_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = load_npy_names,
	.doc = "read one .npy array (example data step)",
	.options = load_npy_options,
	.priv_size = sizeof(load_npy),
	.data_step = load_npy_step,
};

/* ---- split_responses ------------------------------------------------------------- */

typedef struct split_responses {
	const fv_config_node *responses; /* a nested step: its value is an input */
	int64_t test_frames;
} split_responses;

static const fv_option split_options[] = {
	FV_OPT("responses", NODE, split_responses, responses, NULL,
	       "a data step giving the (neurons, time) responses", .flags = FV_OPT_REQUIRED),
	FV_OPT("test_frames", INT, split_responses, test_frames, "100",
	       "frames at the end kept for testing", .min = 1, .max = 1e9),
	{0},
};

/* Columns [from, from + n) of a (rows, cols) array. */
static fv_tensor *columns(const fv_tensor *a, int64_t from, int64_t n)
{
	const int64_t shape[2] = {a->shape[0], n};
	fv_tensor *t = fv_tensor_new(2, shape);
	for (int64_t r = 0; t != NULL && r < a->shape[0]; r++)
		memcpy(t->data + r * n, a->data + r * a->shape[1] + from, (size_t)n * sizeof *t->data);
	return t;
}

static fv_status split_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const split_responses *s = fv_module_priv(m);
	const fv_tensor *all = fv_dvalue_tensor_of(fv_data_input(in, "responses"));
	if (all == NULL || all->ndim != 2 || all->shape[1] <= s->test_frames)
		return fv_error_at(fv_data_input_spec(in), FV_ERR_SHAPE,
		                   "split_responses: 'responses' must give a (neurons, time) array "
		                   "with more than test_frames = %lld frames",
		                   (long long)s->test_frames);
	int64_t n_train = all->shape[1] - s->test_frames;
	fv_dvalue *test = fv_dvalue_map(NULL);
	fv_tensor *test_part = columns(all, n_train, s->test_frames);
	fv_status st = test != NULL && test_part != NULL
	                       ? fv_dvalue_set(test, "test", fv_dvalue_tensor(test_part))
	                       : FV_ERR_NOMEM;
	if (st != FV_OK) {
		if (test == NULL)
			fv_tensor_free(test_part);
		fv_dvalue_free(test);
		return fv_error(st, "split_responses: out of memory");
	}
	*out = fv_dvalue_responses_split(columns(all, 0, n_train), test, NULL, NULL, NULL);
	return *out != NULL ? FV_OK : fv_errcode();
}

static const char *const split_names[] = {"ExampleSplitResponses",
                                          "fovea.examples.split_responses", NULL};

static const fv_component split_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = split_names,
	.doc = "cut (neurons, time) responses into train and test (example data step)",
	.options = split_options,
	.priv_size = sizeof(split_responses),
	.data_step = split_step,
};

FV_PLUGIN_DEFINE("examples-npy-reader", &load_npy_component, &split_component);
