/*
** stimuli.c: openretina.data_io.hoefling_2024.stimuli.movies_from_pickle
** (MoviesTrainTestSplit.from_pickle) as a data step: the pickled dict of
** the stimulus file read by fovea's safe unpickler (numpy arrays and plain
** containers only; any other class stops the load), its "train" and
** "test" movies (channels, frames, height, width) as stored (the file is
** normalised already), the optional "random_sequences" (clips x
** sequences) and movie_stats["dichromatic"]["mean" / "sd"].
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <fovea/ckpt.h>

#include "hoefling.h"

typedef struct movies {
	const fv_config_node *file_path;
} movies;

static const fv_option movies_options[] = {
	FV_OPT("file_path", NODE, movies, file_path, NULL,
	       "the pickle: a path, or a data step giving one (get_local_file_path)",
	       .flags = FV_OPT_REQUIRED),
	{0},
};

/* A 4-D (movies) or 2-D (random_sequences) array of the pickle's dict. */
static fv_tensor *array_of(const fv_pyval *root, const char *path, const char *key, int ndim,
                           bool optional)
{
	const fv_pyval *v = fv_pyval_get(root, key);
	if (v == NULL || (optional && fv_pyval_kind_of(v) == FV_PY_NONE)) {
		if (!optional)
			fv_error(FV_ERR_FORMAT, "%s: the pickled dict has no '%s'", path, key);
		return NULL;
	}
	const fv_ckpt_array *a = fv_pyval_array(v);
	if (a == NULL || a->ndim != ndim) {
		fv_error(FV_ERR_SHAPE, "%s: '%s' should be a %d-D numpy array%s, got %s", path, key,
		         ndim, ndim == 4 ? " (channels, frames, height, width)" : " (clips, sequences)",
		         a != NULL ? fv_shape_str(a->ndim, a->shape) : fv_pyval_type_name(v));
		return NULL;
	}
	return fv_pyval_tensor(v, NULL);
}

/* movie_stats["dichromatic"][key].item(), NAN (None) when absent. */
static fv_status stat_of(const fv_pyval *root, const char *path, const char *key, double *out)
{
	char dotted[64];
	snprintf(dotted, sizeof dotted, "movie_stats.dichromatic.%s", key);
	const fv_pyval *v = fv_pyval_path(root, dotted);
	*out = NAN;
	if (v == NULL)
		return FV_OK;
	const fv_ckpt_array *a = fv_pyval_array(v);
	if (a != NULL && a->numel == 1) {
		*out = a->f32 != NULL ? (double)a->f32[0] : (double)a->i64[0];
		return FV_OK;
	}
	if (a == NULL && fv_pyval_to_double(v, out) == FV_OK)
		return FV_OK;
	return fv_error(FV_ERR_FORMAT, "%s: '%s' should hold one number (numpy's .item())", path,
	                dotted);
}

static fv_status read_movies(const char *path, fv_dvalue **out)
{
	fv_ckpt *c = fv_pickle_open(path, NULL);
	if (c == NULL)
		return fv_errcode();
	const fv_pyval *root = fv_ckpt_root(c);
	fv_status rc = FV_OK;
	if (fv_pyval_kind_of(root) != FV_PY_DICT)
		rc = fv_error(FV_ERR_FORMAT, "%s: expected a pickled dict of movies, got %s", path,
		              fv_pyval_type_name(root));
	fv_tensor *train = rc == FV_OK ? array_of(root, path, "train", 4, false) : NULL;
	fv_tensor *test = train != NULL ? array_of(root, path, "test", 4, false) : NULL;
	fv_tensor *rs = test != NULL ? array_of(root, path, "random_sequences", 2, true) : NULL;
	double mean = NAN, sd = NAN;
	if (rc == FV_OK && (train == NULL || test == NULL ||
	                    (rs == NULL && fv_pyval_get(root, "random_sequences") != NULL &&
	                     fv_pyval_kind_of(fv_pyval_get(root, "random_sequences")) != FV_PY_NONE)))
		rc = fv_errcode();
	if (rc == FV_OK)
		rc = stat_of(root, path, "mean", &mean);
	if (rc == FV_OK)
		rc = stat_of(root, path, "sd", &sd);
	fv_ckpt_close(c);
	fv_dvalue *tests = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (tests != NULL) {
		rc = fv_dvalue_set(tests, "test", fv_dvalue_tensor(test));
		test = NULL;
	}
	if (rc != FV_OK || tests == NULL) {
		fv_tensor_free(train);
		fv_tensor_free(test);
		fv_tensor_free(rs);
		fv_dvalue_free(tests);
		return rc != FV_OK ? rc : fv_errcode();
	}
	*out = fv_dvalue_movies_split(train, tests, rs, mean, sd, NULL);
	if (*out == NULL) {
		char why[512];
		snprintf(why, sizeof why, "%s", fv_errmsg());
		return fv_error(fv_errcode(), "%s: %s", path, why);
	}
	return FV_OK;
}

static fv_status movies_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const movies *o = fv_module_priv(m);
	const fv_dvalue *v = fv_data_input(in, "file_path");
	const char *path = v != NULL ? fv_dvalue_text_of(v) : fv_node_text(o->file_path);
	if (path == NULL)
		return fv_error_at(fv_data_input_spec(in), FV_ERR_CONFIG, "%s.file_path: expected a "
		                   "path", fv_node_keypath(fv_data_input_spec(in)));
	return read_movies(path, out);
}

static const char *const movies_names[] = {
	"movies_from_pickle", "openretina.data_io.hoefling_2024.stimuli.movies_from_pickle", NULL,
};

const fv_component hoef_movies_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = movies_names,
	.doc = "the Hoefling 2024 movie stimuli of a pickle (MoviesTrainTestSplit.from_pickle)",
	.options = movies_options,
	.priv_size = sizeof(movies),
	.data_step = movies_step,
};
