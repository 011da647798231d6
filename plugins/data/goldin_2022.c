/*
** goldin_2022.c: openretina.data_io.goldin_2022's stimuli.load_all_stimuli
** and responses.load_all_responses as data steps.  Every entry of
** base_data_path (through get_local_file_path) whose name contains
** `specie` ("mouse", "axolotl") is one session's HDF5 file, named by its
** file name without ".h5", in os.scandir order: /train/stimulus and
** /test/stimulus (images, height, width) are the movies, one image a
** frame; /train/response/<response_type> and /test/response/<...>
** (neurons, images) divided by fr_normalization the responses.  The test
** repeats (load_test_repeats_for_session) are the datasets
** test/repeats/cell<k> (repeats, images), stacked in the order of k and
** divided; their mean over repeats must equal the test responses
** (openretina asserts np.allclose).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "published_h5.h"

typedef struct goldin_opts {
	const char *base_data_path;
	const char *stim_type;
	const char *response_type;
	const char *specie;
	bool normalize_stimuli;
	double fr_normalization;
} goldin_opts;

#define COMMON_OPTS                                                                        \
	FV_OPT("base_data_path", STRING, goldin_opts, base_data_path, NULL,                \
	       "the folder of the session files, or its Hugging Face address",            \
	       .flags = FV_OPT_REQUIRED),                                                  \
	FV_OPT("stim_type", STRING, goldin_opts, stim_type, "naturalscene",                 \
	       "the stimulus id recorded in the splits"),                                  \
	FV_OPT("specie", STRING, goldin_opts, specie, "mouse",                              \
	       "the sessions read: files whose name contains it (mouse, axolotl)")

static const fv_option stimuli_options[] = {
	COMMON_OPTS,
	FV_OPT("normalize_stimuli", BOOL, goldin_opts, normalize_stimuli, "true",
	       "z-score both image sets with the train images' mean and std"),
	{0},
};

static const fv_option responses_options[] = {
	COMMON_OPTS,
	FV_OPT("response_type", STRING, goldin_opts, response_type, "binned",
	       "the responses read: /train/response/<response_type>"),
	FV_OPT("fr_normalization", FLOAT, goldin_opts, fr_normalization, "0.3",
	       "the responses are divided by it (spikes over 300 ms)"),
	{0},
};

/* str(session).removesuffix(".h5") */
static char *session_name(const char *file)
{
	char *s = strdup(file);
	size_t n = s != NULL ? strlen(s) : 0;
	if (n >= 3 && strcmp(s + n - 3, ".h5") == 0)
		s[n - 3] = '\0';
	if (s == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory");
	return s;
}

static fv_status each_session(const goldin_opts *o, fv_data_inputs *in, pub_read_fn read,
                              fv_dvalue **out)
{
	char *base = NULL, **files = NULL;
	size_t n = 0;
	fv_status rc = pub_base_path(in, o->base_data_path, &base);
	if (rc == FV_OK)
		rc = pub_scandir(base, false, &files, &n);
	*out = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (rc == FV_OK && *out == NULL)
		rc = fv_errcode();
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		if (strstr(files[i], o->specie) == NULL)
			continue;
		char *path = pub_join(base, files[i]), *name = session_name(files[i]);
		rc = path != NULL && name != NULL ? pub_read_file(path, name, read, o, *out)
		                                  : fv_errcode();
		free(path);
		free(name);
	}
	pub_free_names(files, n);
	free(base);
	if (rc != FV_OK) {
		fv_dvalue_free(*out);
		*out = NULL;
	}
	return rc;
}

static fv_status read_stimuli(const void *opts, const pub_file *f, fv_dvalue **out)
{
	const goldin_opts *o = opts;
	return pub_movies(f, o->normalize_stimuli, o->stim_type, out);
}

/* assert np.allclose(test, test_by_trial.mean(axis=0)) */
static fv_status check_mean(const pub_file *f, const pub_array *by_trial, const fv_tensor *test)
{
	int64_t k = by_trial->shape[0], m = test->numel;
	for (int64_t i = 0; i < m; i++) {
		double sum = 0;
		for (int64_t r = 0; r < k; r++)
			sum += by_trial->data[r * m + i];
		double mean = sum / (double)k, x = test->data[i];
		if (!(fabs(x - mean) <= 1e-8 + 1e-5 * fabs(mean)))
			return fv_error(FV_ERR_FORMAT, "%s: the mean of the repeats under 'test/repeats' "
			                "is %g at neuron %lld, frame %lld, the test responses %g: they "
			                "should agree (np.allclose)", f->path, mean,
			                (long long)(i / test->shape[1]), (long long)(i % test->shape[1]),
			                x);
	}
	return FV_OK;
}

/* load_test_repeats_for_session: NULL without test/repeats cells. */
static fv_status read_repeats(const void *opts, const pub_file *f, const fv_tensor *test,
                              fv_tensor **out)
{
	const goldin_opts *o = opts;
	*out = NULL;
	if (!pub_is_group(f, "test") || !pub_is_group(f, "test/repeats"))
		return FV_OK;
	pub_array a;
	fv_status rc = pub_cell_repeats(f, "test/repeats", o->fr_normalization, true, &a);
	if (rc != FV_OK || a.data == NULL)
		return rc;
	if ((*out = pub_tensor_of(&a)) == NULL)
		rc = fv_errcode();
	if (rc == FV_OK)
		rc = pub_check_repeats(f, "test/repeats", *out, test);
	if (rc == FV_OK)
		rc = check_mean(f, &a, test);
	pub_array_free(&a);
	if (rc != FV_OK) {
		fv_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}

static fv_status read_responses(const void *opts, const pub_file *f, fv_dvalue **out)
{
	const goldin_opts *o = opts;
	return pub_session_responses(f, o->response_type, o->fr_normalization, o->stim_type,
	                             read_repeats, o, out);
}

static fv_status stimuli_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	return each_session(fv_module_priv(m), in, read_stimuli, out);
}

static fv_status responses_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	return each_session(fv_module_priv(m), in, read_responses, out);
}

static const char *const stimuli_names[] = {
	"goldin_2022.load_all_stimuli", "openretina.data_io.goldin_2022.stimuli.load_all_stimuli",
	NULL,
};

static const char *const responses_names[] = {
	"goldin_2022.load_all_responses",
	"openretina.data_io.goldin_2022.responses.load_all_responses", NULL,
};

static const fv_component stimuli_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = stimuli_names,
	.doc = "Goldin et al. 2022: the images of every session, one image a frame",
	.options = stimuli_options,
	.priv_size = sizeof(goldin_opts),
	.data_step = stimuli_step,
};

static const fv_component responses_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = responses_names,
	.doc = "Goldin et al. 2022: the binned responses and test repeats of every session",
	.options = responses_options,
	.priv_size = sizeof(goldin_opts),
	.data_step = responses_step,
};

FV_PLUGIN_DEFINE("data-goldin-2022", &stimuli_component, &responses_component);
