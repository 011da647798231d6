/*
** karamanlis_2024_responses.c: openretina's
** data_io.karamanlis_2024.responses.load_all_responses as a data step: a
** dict of ResponsesTrainTestSplit per session, keyed by the entry's
** basename (".zip" included when it was an archive).
**
** A session folder holds exactly one <...><stim_type>_data.mat (none: the
** session is skipped with openretina's warning; more: an error).  In
** h5py's view frozenbin is (trials, time, neurons) and runningbin
** (blocks, time, neurons); divided by fr_normalization, the test responses
** by trial are (trials, neurons, time), their mean over trials the test
** responses, and the blocks joined in time the training responses
** (neurons, blocks * time).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "karamanlis_2024.h"

typedef struct kara_responses {
	const fv_config_node *base_data_path;
	const char *stim_type;
	const char *specie;
	double fr_normalization;
} kara_responses;

static const fv_option kara_responses_options[] = {
	FV_OPT("base_data_path", NODE, kara_responses, base_data_path, NULL,
	       "the folder of the sessions (local, or a GIN / Hugging Face path)",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("stim_type", STRING, kara_responses, stim_type, "fixationmovie",
	       "the stimulus: files end in <stim_type>_data.mat"),
	FV_OPT("specie", STRING, kara_responses, specie, "mouse",
	       "sessions are the folders and .zip files whose name contains it"),
	FV_OPT("fr_normalization", FLOAT, kara_responses, fr_normalization, "1.0",
	       "the firing rates are divided by it"),
	{0},
};

/* (trials, time, neurons) -> (trials, neurons, time) / fr */
static fv_tensor *by_trial(const kara_array *a, double fr)
{
	int64_t trials = a->shape[0], time = a->shape[1], neurons = a->shape[2];
	fv_tensor *t = fv_tensor_new(3, (int64_t[]){trials, neurons, time});
	for (int64_t k = 0; t != NULL && k < trials; k++)
		for (int64_t s = 0; s < time; s++)
			for (int64_t n = 0; n < neurons; n++)
				t->data[(k * neurons + n) * time + s] =
					(fv_real)(kara_at(a, (k * time + s) * neurons + n) / fr);
	return t;
}

/* np.mean(axis=0) of (trials, neurons, time), in double as numpy takes it. */
static fv_tensor *trial_mean(const kara_array *a, double fr)
{
	int64_t trials = a->shape[0], time = a->shape[1], neurons = a->shape[2];
	fv_tensor *t = fv_tensor_new(2, (int64_t[]){neurons, time});
	for (int64_t n = 0; t != NULL && n < neurons; n++)
		for (int64_t s = 0; s < time; s++) {
			double sum = 0.0;
			for (int64_t k = 0; k < trials; k++)
				sum += kara_at(a, (k * time + s) * neurons + n) / fr;
			t->data[n * time + s] = (fv_real)(sum / (double)trials);
		}
	return t;
}

/* (blocks, time, neurons) -> (neurons, blocks * time) / fr */
static fv_tensor *joined(const kara_array *a, double fr)
{
	int64_t frames = a->shape[0] * a->shape[1], neurons = a->shape[2];
	fv_tensor *t = fv_tensor_new(2, (int64_t[]){neurons, frames});
	for (int64_t f = 0; t != NULL && f < frames; f++)
		for (int64_t n = 0; n < neurons; n++)
			t->data[n * frames + f] = (fv_real)(kara_at(a, f * neurons + n) / fr);
	return t;
}

static fv_status split_of(const kara_array *test, const kara_array *train, const char *path,
                          const kara_responses *o, fv_dvalue **out)
{
	if (test->shape[2] != train->shape[2])
		return fv_error(FV_ERR_SHAPE, "%s: variable 'frozenbin' has %lld neurons, "
		                "'runningbin' %lld", path, (long long)test->shape[2],
		                (long long)train->shape[2]);
	fv_tensor *trials = by_trial(test, o->fr_normalization);
	fv_tensor *mean = trial_mean(test, o->fr_normalization);
	fv_tensor *all = joined(train, o->fr_normalization);
	fv_dvalue *tests = fv_dvalue_map(NULL), *by = fv_dvalue_map(NULL);
	fv_status rc = trials != NULL && mean != NULL && all != NULL && tests != NULL && by != NULL
	                       ? FV_OK : fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	if (rc == FV_OK) {
		rc = fv_dvalue_set(tests, "test", fv_dvalue_tensor(mean));
		mean = NULL;
	}
	if (rc == FV_OK) {
		rc = fv_dvalue_set(by, "test", fv_dvalue_tensor(trials));
		trials = NULL;
	}
	if (rc == FV_OK) {
		*out = fv_dvalue_responses_split(all, tests, by, o->stim_type, NULL);
		all = NULL;
		tests = by = NULL;
		rc = *out != NULL ? FV_OK : fv_errcode();
	}
	fv_tensor_free(trials);
	fv_tensor_free(mean);
	fv_tensor_free(all);
	fv_dvalue_free(tests);
	fv_dvalue_free(by);
	return rc;
}

static fv_status read_file(const char *path, const kara_responses *o, fv_dvalue **out)
{
	fprintf(stderr, "Loading responses from %s\n", path);
	kara_mat *m = NULL;
	kara_array test = {0}, train = {0};
	fv_status rc = kara_mat_open(path, &m);
	if (rc == FV_OK)
		rc = kara_mat_read(m, "frozenbin", 3, true, &test);
	if (rc == FV_OK)
		rc = kara_mat_read(m, "runningbin", 3, true, &train);
	if (rc == FV_OK)
		rc = split_of(&test, &train, path, o, out);
	kara_array_free(&test);
	kara_array_free(&train);
	kara_mat_close(m); /* after the variables: matio's v7.3 ones hold the file's ids */
	return rc;
}

/* One session's split into *out, or NULL (skipped) when it has no file. */
static fv_status load_session(const char *dir, const void *opt, fv_dvalue **out)
{
	const kara_responses *o = opt;
	char suffix[512];
	char **names = NULL;
	size_t n = 0;
	*out = NULL;
	snprintf(suffix, sizeof suffix, "%s_data.mat", o->stim_type);
	fv_status rc = kara_find(dir, suffix, &names, &n);
	if (rc == FV_OK && n == 0)
		fprintf(stderr, "UserWarning: No file with postfix %s found in folder %s\n", suffix,
		        dir);
	else if (rc == FV_OK && n > 1)
		rc = fv_error(FV_ERR_FORMAT, "Multiple files with postfix %s found in folder %s: "
		              "'%s', '%s'%s", suffix, dir, names[0], names[1], n > 2 ? ", ..." : "");
	char *path = rc == FV_OK && n == 1 ? fv_data_join(dir, names[0]) : NULL;
	if (path != NULL)
		rc = read_file(path, o, out);
	free(path);
	kara_names_free(names, n);
	return rc;
}

static fv_status kara_responses_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const kara_responses *o = fv_module_priv(m);
	const fv_config_node *spec = fv_data_input_spec(in);
	*out = NULL;
	if (o->fr_normalization == 0.0 || !isfinite(o->fr_normalization))
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.fr_normalization: expected a finite, "
		                   "non-zero number, got %g", fv_node_keypath(spec),
		                   o->fr_normalization);
	return kara_load_sessions(fv_node_text(o->base_data_path), o->specie, in, load_session, o,
	                          out);
}

static const char *const kara_responses_names[] = {
	"openretina.data_io.karamanlis_2024.responses.load_all_responses", NULL,
};

const fv_component kara_responses_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = kara_responses_names,
	.doc = "Karamanlis 2024: the binned spike rates of every session, from the MATLAB files",
	.options = kara_responses_options,
	.priv_size = sizeof(kara_responses),
	.data_step = kara_responses_step,
};
