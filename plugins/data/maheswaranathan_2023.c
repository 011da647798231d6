/*
** maheswaranathan_2023.c: openretina.data_io.maheswaranathan_2023's
** stimuli.load_all_stimuli and responses.load_all_responses as data
** steps.  base_data_path (through get_local_file_path: the Hugging Face
** neural_code_data.zip is unpacked in the cache directory) holds
** ganglion_cell_data/<session>/...<stim_type>.h5; every such file of every
** session folder, in os.scandir / os.listdir order, gives the session's
** MoviesTrainTestSplit (/train/stimulus, /test/stimulus) and
** ResponsesTrainTestSplit (/train/response/<response_type>,
** /test/response/<response_type>, divided by fr_normalization).  A later
** file of a session replaces an earlier one, as the dict assignment does.
**
** The test repeats (load_test_repeats_for_session) are
** test/repeats/<response_type> as stored, (repeats, neurons, time), not
** divided by fr_normalization (openretina divides only the other form),
** or else test/repeats/cell<k> (repeats, time) per cell, stacked in the
** order of k and divided.
*/
#include <stdlib.h>
#include <string.h>

#include "published_h5.h"

typedef struct mahe_opts {
	const char *base_data_path;
	const char *stim_type;
	const char *response_type;
	bool normalize_stimuli;
	double fr_normalization;
} mahe_opts;

#define BASE_PATH_OPT                                                                      \
	FV_OPT("base_data_path", STRING, mahe_opts, base_data_path, NULL,                  \
	       "the neural_code_data folder, or its Hugging Face zip", .flags = FV_OPT_REQUIRED)
#define STIM_TYPE_OPT                                                                      \
	FV_OPT("stim_type", STRING, mahe_opts, stim_type, "naturalscene",                   \
	       "the recordings read: files ending in <stim_type>.h5 (naturalscene, whitenoise)")

static const fv_option stimuli_options[] = {
	BASE_PATH_OPT,
	STIM_TYPE_OPT,
	FV_OPT("normalize_stimuli", BOOL, mahe_opts, normalize_stimuli, "true",
	       "z-score both movies with the train movie's mean and std"),
	{0},
};

static const fv_option responses_options[] = {
	BASE_PATH_OPT,
	STIM_TYPE_OPT,
	FV_OPT("response_type", STRING, mahe_opts, response_type, "firing_rate_20ms",
	       "the responses read: firing_rate_5ms, firing_rate_10ms or firing_rate_20ms"),
	FV_OPT("fr_normalization", FLOAT, mahe_opts, fr_normalization, "1",
	       "the responses are divided by it"),
	{0},
};

static bool ends_with(const char *s, const char *a, const char *b)
{
	size_t n = strlen(s), na = strlen(a), nb = strlen(b);
	return n >= na + nb && strncmp(s + n - na - nb, a, na) == 0 && strcmp(s + n - nb, b) == 0;
}

static fv_status read_session(const mahe_opts *o, const char *dir, const char *session,
                              pub_read_fn read, fv_dvalue *all)
{
	char **files = NULL;
	size_t n = 0;
	char *path = pub_join(dir, session);
	fv_status rc = path != NULL ? pub_scandir(path, false, &files, &n) : fv_errcode();
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		if (!ends_with(files[i], o->stim_type, ".h5"))
			continue;
		char *file = pub_join(path, files[i]);
		rc = file != NULL ? pub_read_file(file, session, read, o, all) : fv_errcode();
		free(file);
	}
	pub_free_names(files, n);
	free(path);
	return rc;
}

/* Every session folder of base_data_path/ganglion_cell_data. */
static fv_status each_session(const mahe_opts *o, fv_data_inputs *in, pub_read_fn read,
                              fv_dvalue **out)
{
	char *base = NULL, *dir = NULL, **sessions = NULL;
	size_t n = 0;
	fv_status rc = pub_base_path(in, o->base_data_path, &base);
	if (rc == FV_OK)
		rc = (dir = pub_join(base, "ganglion_cell_data")) != NULL ? FV_OK : fv_errcode();
	if (rc == FV_OK)
		rc = pub_scandir(dir, true, &sessions, &n);
	*out = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (rc == FV_OK && *out == NULL)
		rc = fv_errcode();
	for (size_t i = 0; rc == FV_OK && i < n; i++)
		rc = read_session(o, dir, sessions[i], read, *out);
	pub_free_names(sessions, n);
	free(dir);
	free(base);
	if (rc != FV_OK) {
		fv_dvalue_free(*out);
		*out = NULL;
	}
	return rc;
}

static fv_status read_stimuli(const void *opts, const pub_file *f, fv_dvalue **out)
{
	const mahe_opts *o = opts;
	return pub_movies(f, o->normalize_stimuli, o->stim_type, out);
}

/* load_test_repeats_for_session. */
static fv_status read_repeats(const void *opts, const pub_file *f, const fv_tensor *test,
                             fv_tensor **out)
{
	const mahe_opts *o = opts;
	*out = NULL;
	if (!pub_is_group(f, "test/repeats"))
		return fv_error(FV_ERR_NOTFOUND, "%s: group 'test/repeats' not found in the file",
		                f->path);
	char *key = pub_join("test/repeats", o->response_type);
	if (key == NULL)
		return fv_errcode();
	fv_status rc = FV_OK;
	if (pub_is_group(f, key) || pub_is_dataset(f, key)) {
		pub_array a;
		rc = pub_read(f, key, 3, "repeats, neurons, time", &a);
		if (rc == FV_OK)
			rc = pub_divided(f, key, &a, 1.0, out);
		pub_array_free(&a);
	} else {
		pub_array a;
		rc = pub_cell_repeats(f, "test/repeats", o->fr_normalization, false, &a);
		if (rc == FV_OK && a.data == NULL) /* np.stack of nothing */
			rc = fv_error(FV_ERR_NOTFOUND, "%s: group 'test/repeats' holds neither '%s' nor "
			              "cell<k> datasets", f->path, o->response_type);
		if (rc == FV_OK && (*out = pub_tensor_of(&a)) == NULL)
			rc = fv_errcode();
		pub_array_free(&a);
	}
	free(key);
	if (rc == FV_OK)
		rc = pub_check_repeats(f, "test/repeats", *out, test);
	if (rc != FV_OK) {
		fv_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}

static fv_status read_responses(const void *opts, const pub_file *f, fv_dvalue **out)
{
	const mahe_opts *o = opts;
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
	"maheswaranathan_2023.load_all_stimuli",
	"openretina.data_io.maheswaranathan_2023.stimuli.load_all_stimuli", NULL,
};

static const char *const responses_names[] = {
	"maheswaranathan_2023.load_all_responses",
	"openretina.data_io.maheswaranathan_2023.responses.load_all_responses", NULL,
};

static const fv_component stimuli_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = stimuli_names,
	.doc = "Maheswaranathan et al. 2023: the movies of every session",
	.options = stimuli_options,
	.priv_size = sizeof(mahe_opts),
	.data_step = stimuli_step,
};

static const fv_component responses_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = responses_names,
	.doc = "Maheswaranathan et al. 2023: the responses and test repeats of every session",
	.options = responses_options,
	.priv_size = sizeof(mahe_opts),
	.data_step = responses_step,
};

FV_PLUGIN_DEFINE("data-maheswaranathan-2023", &stimuli_component, &responses_component);
