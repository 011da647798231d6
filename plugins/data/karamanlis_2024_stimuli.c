/*
** karamanlis_2024_stimuli.c: openretina's
** data_io.karamanlis_2024.stimuli.load_all_stimuli as a data step: a dict
** of MoviesTrainTestSplit per session (keyed by the entry's name, ".zip"
** included, as openretina keys it), stim_id the stimulus type.
**
** In a session folder the cached <...><stim_type>_data_extracted_stimuli_
** <h>_<w>.npz wins; else the last <...><stim_type>_data.mat is extracted
** (karamanlis_2024_extract.c) and the cache written beside it; a session
** with neither is skipped with openretina's warning.  normalize_stimuli
** z-scores both movies with the training movie's mean and (unbiased)
** standard deviation, float32 as torch computes them.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "karamanlis_2024.h"

typedef struct kara_stimuli {
	const fv_config_node *base_data_path;
	const char *stim_type;
	bool normalize_stimuli;
	const char *specie;
	fv_int_list downsampled_size;
} kara_stimuli;

static const fv_option kara_stimuli_options[] = {
	FV_OPT("base_data_path", NODE, kara_stimuli, base_data_path, NULL,
	       "the folder of the sessions (local, or a GIN / Hugging Face path)",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("stim_type", STRING, kara_stimuli, stim_type, "fixationmovie",
	       "the stimulus: files end in <stim_type>_data.mat"),
	FV_OPT("normalize_stimuli", BOOL, kara_stimuli, normalize_stimuli, "true",
	       "z-score both movies with the training movie's mean and std"),
	FV_OPT("specie", STRING, kara_stimuli, specie, "mouse",
	       "sessions are the folders and .zip files whose name contains it"),
	FV_OPT("downsampled_size", INT_LIST, kara_stimuli, downsampled_size, "[60, 80]",
	       "(height, width) the 600 x 800 frames are resized to", .min = 1, .max = 1e6),
	{0},
};

/* normalize_train_test_movies, in place; the statistics as float32. */
static void normalize(fv_tensor *train, fv_tensor *test, double *mean, double *std)
{
	double sum = 0.0, sq = 0.0;
	for (int64_t i = 0; i < train->numel; i++)
		sum += train->data[i];
	double m = sum / (double)train->numel;
	for (int64_t i = 0; i < train->numel; i++)
		sq += (train->data[i] - m) * (train->data[i] - m);
	float mf = (float)m, sf = (float)sqrt(sq / (double)(train->numel - 1));
	fv_tensor *movies[2] = {train, test};
	for (int k = 0; k < 2; k++)
		for (int64_t i = 0; i < movies[k]->numel; i++)
			movies[k]->data[i] = (fv_real)(((float)movies[k]->data[i] - mf) / sf);
	*mean = mf;
	*std = sf;
}

/* The cached .npz and the .mat of a session folder (either may be NULL). */
static fv_status session_files(const char *dir, const kara_stimuli *o, char **npz, char **mat)
{
	char suffix[512], mat_suffix[512];
	char **names = NULL;
	size_t n = 0;
	*npz = *mat = NULL;
	fv_status rc = kara_find(dir, "", &names, &n);
	snprintf(suffix, sizeof suffix, "%s_data_extracted_stimuli_%lld_%lld.npz", o->stim_type,
	         (long long)o->downsampled_size.v[0], (long long)o->downsampled_size.v[1]);
	snprintf(mat_suffix, sizeof mat_suffix, "%s_data.mat", o->stim_type);
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		if (kara_ends_with(names[i], suffix)) {
			free(*mat); /* the cache is preferred */
			*mat = NULL;
			*npz = fv_data_join(dir, names[i]);
			break;
		}
		if (kara_ends_with(names[i], mat_suffix)) {
			free(*mat);
			*mat = fv_data_join(dir, names[i]);
		}
	}
	kara_names_free(names, n);
	return rc;
}

/* The cache's name: the .mat path without ".mat", + _extracted_stimuli_h_w.npz. */
static char *cache_name(const char *mat, const kara_stimuli *o)
{
	size_t n = strlen(mat) - 4;
	char *p = malloc(n + 64);
	if (p != NULL)
		snprintf(p, n + 64, "%.*s_extracted_stimuli_%lld_%lld.npz", (int)n, mat,
		         (long long)o->downsampled_size.v[0], (long long)o->downsampled_size.v[1]);
	return p;
}

static fv_status read_movies(const char *npz, const char *mat, const kara_stimuli *o,
                             fv_tensor **train, fv_tensor **test)
{
	if (npz != NULL) {
		fprintf(stderr, "Loading stimuli from cached %s\n", npz);
		return kara_npz_read(npz, train, test);
	}
	fprintf(stderr, "Loading stimuli from %s\n", mat);
	fv_status rc = kara_extract_stimuli(mat, o->downsampled_size.v[0],
	                                    o->downsampled_size.v[1], train, test);
	char *cache = rc == FV_OK ? cache_name(mat, o) : NULL;
	if (rc == FV_OK)
		rc = cache != NULL ? kara_npz_write(cache, *train, *test)
		                   : fv_error(FV_ERR_NOMEM, "out of memory");
	free(cache);
	return rc;
}

/* One session's split into *out, or NULL (skipped) when it has no file. */
static fv_status load_session(const char *dir, const void *opt, fv_dvalue **out)
{
	const kara_stimuli *o = opt;
	char *npz = NULL, *mat = NULL;
	fv_tensor *train = NULL, *test = NULL;
	*out = NULL;
	fv_status rc = session_files(dir, o, &npz, &mat);
	if (rc == FV_OK && npz == NULL && mat == NULL) {
		fprintf(stderr, "UserWarning: No file with postfix %s_data.mat (or preprocessed "
		        "version) found in folder %s\n", o->stim_type, dir);
		return FV_OK;
	}
	if (rc == FV_OK)
		rc = read_movies(npz, mat, o, &train, &test);
	free(npz);
	free(mat);
	double mean = NAN, std = NAN;
	if (rc == FV_OK && o->normalize_stimuli)
		normalize(train, test, &mean, &std);
	fv_dvalue *tests = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (tests != NULL) {
		rc = fv_dvalue_set(tests, "test", fv_dvalue_tensor(test));
		test = NULL;
	}
	if (rc == FV_OK) {
		*out = fv_dvalue_movies_split(train, tests, NULL, mean, std, o->stim_type);
		train = NULL;
		tests = NULL;
		rc = *out != NULL ? FV_OK : fv_errcode();
	}
	fv_tensor_free(train);
	fv_tensor_free(test);
	fv_dvalue_free(tests);
	return rc;
}

static fv_status kara_stimuli_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const kara_stimuli *o = fv_module_priv(m);
	const fv_config_node *spec = fv_data_input_spec(in);
	*out = NULL;
	if (o->downsampled_size.n != 2)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.downsampled_size: expected [height, "
		                   "width], got %zu values", fv_node_keypath(spec),
		                   o->downsampled_size.n);
	return kara_load_sessions(fv_node_text(o->base_data_path), o->specie, in, load_session, o,
	                          out);
}

static const char *const kara_stimuli_names[] = {
	"openretina.data_io.karamanlis_2024.stimuli.load_all_stimuli", NULL,
};

const fv_component kara_stimuli_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = kara_stimuli_names,
	.doc = "Karamanlis 2024: the fixation movies of every session, from the MATLAB files",
	.options = kara_stimuli_options,
	.priv_size = sizeof(kara_stimuli),
	.data_step = kara_stimuli_step,
};
