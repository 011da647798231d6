/*
** natmov_dataloaders.c: openretina.data_io.hoefling_2024.dataloaders.
** natmov_dataloaders_v2 as a dataloader step: called with
** neuron_data_dictionary (make_final_responses' sessions) and
** movies_dictionary (movies_from_pickle's split), it returns
** FV_DV_DATALOADERS with a train, validation and "test" loader per
** session, each on its eye's (and, for training, its sequence's) movie.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "natmov.h"

typedef struct natmov_opts {
	fv_int_list validation_clip_indices;
	int64_t train_chunk_size, batch_size, num_clips, clip_length;
	bool allow_over_boundaries;
} natmov_opts;

static const fv_option natmov_options[] = {
	FV_OPT("validation_clip_indices", INT_LIST, natmov_opts, validation_clip_indices, NULL,
	       "the clips held out for validation", .flags = FV_OPT_REQUIRED),
	FV_OPT("train_chunk_size", INT, natmov_opts, train_chunk_size, "50", "frames per "
	       "training sample", .min = 1, .max = 1e9),
	FV_OPT("batch_size", INT, natmov_opts, batch_size, "32", "samples per batch", .min = 1,
	       .max = 1e9),
	FV_OPT("num_clips", INT, natmov_opts, num_clips, "108", "clips of the training movie",
	       .min = 1, .max = 1e9),
	FV_OPT("clip_length", INT, natmov_opts, clip_length, "150", "frames per clip", .min = 1,
	       .max = 1e9),
	FV_OPT("allow_over_boundaries", BOOL, natmov_opts, allow_over_boundaries, "true",
	       "training chunks may cross clip boundaries"),
	{0},
};

/* _compute_test_batch_size */
static int64_t test_batch_size(int64_t batch, int64_t train_chunk, int64_t test_chunk)
{
	if (test_chunk <= train_chunk)
		return batch;
	int64_t b = batch * train_chunk / test_chunk;
	return b > 1 ? b : 1;
}

static fv_status check_inputs(const fv_dvalue *resp, const fv_dvalue *movies)
{
	const char *cls = fv_dvalue_class(movies);
	if (cls == NULL || strcmp(cls, FV_DV_MOVIES_SPLIT) != 0)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: movies_dictionary should be one "
		                FV_DV_MOVIES_SPLIT " (data_io.stimuli: movies_from_pickle)");
	if (fv_dvalue_size(fv_dvalue_get(movies, "test_dict")) != 1)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: the movies hold %zu test "
		                "stimuli, expected one", fv_dvalue_size(fv_dvalue_get(movies, "test_dict")));
	if (fv_dvalue_kind_of(resp) != FV_DV_MAP || fv_dvalue_class(resp) != NULL ||
	    fv_dvalue_size(resp) == 0)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: neuron_data_dictionary should "
		                "be a non-empty dict of " FV_DV_RESPONSES_SPLIT);
	for (size_t i = 0; i < fv_dvalue_size(resp); i++) {
		const char *stim = fv_dvalue_text_of(fv_dvalue_get(fv_dvalue_at(resp, i), "stim_id"));
		if (stim == NULL || strcmp(stim, "natural") != 0)
			return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: session '%s': stim_id '%s'; "
			                "only natural movie stimuli are supported",
			                fv_dvalue_key_at(resp, i), stim != NULL ? stim : "None");
	}
	return FV_OK;
}

/* random_sequences, or one column 0 .. T / clip_length - 1 when None. */
static fv_status sequences(natmov *nm, const fv_dvalue *movies)
{
	const fv_tensor *rs = fv_dvalue_tensor_of(fv_dvalue_get(movies, "random_sequences"));
	int64_t n = nm->train->shape[1] / nm->clip_length;
	nm->random_sequences = rs != NULL ? fv_tensor_clone(rs) : fv_tensor_new(2, (int64_t[]){n, 1});
	if (nm->random_sequences == NULL)
		return fv_errcode();
	for (int64_t i = 0; rs == NULL && i < n; i++)
		nm->random_sequences->data[i] = (fv_real)i;
	for (int64_t i = 0; rs != NULL && i < rs->numel; i++)
		if (!(rs->data[i] >= 0 && rs->data[i] < 1e9) || rs->data[i] != floorf(rs->data[i]))
			return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: random_sequences holds %g, "
			                "not a clip number", (double)rs->data[i]);
	/* With one sequence gen_start_indices gives a plain list, which
	** natmov_dataloaders_v2 then indexes by scan_sequence_idx: a single
	** start, no loader. */
	if (nm->random_sequences->shape[1] == 1)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: the movies have %s; with a "
		                "single sequence openretina's loader indexes its start list by "
		                "scan_sequence_idx and fails", rs == NULL ? "no random_sequences"
		                : "random_sequences of one column");
	return FV_OK;
}

static fv_status check_clips(natmov *nm)
{
	if (nm->num_clips * nm->clip_length > nm->train->shape[1])
		return fv_error(FV_ERR_SHAPE, "natmov_dataloaders_v2: num_clips=%lld clips of "
		                "clip_length=%lld frames, but the training movie has %lld frames",
		                (long long)nm->num_clips, (long long)nm->clip_length,
		                (long long)nm->train->shape[1]);
	int64_t distinct = 0;
	for (size_t i = 0; i < nm->n_val; i++) {
		if (nm->val[i] < 0 || nm->val[i] >= nm->num_clips)
			return fv_error(FV_ERR_CONFIG, "dataloader.validation_clip_indices: clip %lld is not "
			                "below num_clips=%lld", (long long)nm->val[i],
			                (long long)nm->num_clips);
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= nm->val[k] == nm->val[i];
		distinct += !seen;
	}
	nm->n_train_clips = nm->num_clips - distinct;
	return FV_OK;
}

static fv_status build(natmov *nm, const fv_dvalue *resp, fv_dvalue *out)
{
	static const char *const folds[3] = {"train", "validation", "test"};
	fv_dvalue *maps[3] = {NULL, NULL, NULL};
	fv_status rc = FV_OK;
	for (int i = 0; i < 3; i++) {
		maps[i] = fv_dvalue_map(NULL);
		if (rc == FV_OK)
			rc = fv_dvalue_set(out, folds[i], maps[i]);
		else
			fv_dvalue_free(maps[i]);
	}
	for (size_t i = 0; rc == FV_OK && i < fv_dvalue_size(resp); i++)
		rc = natmov_session(nm, fv_dvalue_key_at(resp, i), fv_dvalue_at(resp, i), maps);
	if (rc == FV_OK) {
		rc = fv_dvalue_set(out, "movies", nm->movies);
		nm->movies = NULL;
	}
	return rc;
}

static fv_status natmov_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const natmov_opts *o = fv_module_priv(m);
	const fv_dvalue *resp = fv_data_input(in, "neuron_data_dictionary");
	const fv_dvalue *movies = fv_data_input(in, "movies_dictionary");
	fv_status rc = check_inputs(resp, movies);
	if (rc != FV_OK)
		return rc;
	const fv_dvalue *tests = fv_dvalue_get(movies, "test_dict");
	natmov nm = {
		.train = fv_dvalue_tensor_of(fv_dvalue_get(movies, "train")),
		.test = fv_dvalue_tensor_of(fv_dvalue_at(tests, 0)),
		.val = o->validation_clip_indices.v,
		.n_val = o->validation_clip_indices.n,
		.num_clips = o->num_clips,
		.clip_length = o->clip_length,
		.train_chunk_size = o->train_chunk_size,
		.batch_size = o->batch_size,
		.allow_over_boundaries = o->allow_over_boundaries,
		.movies = fv_dvalue_map(NULL),
	};
	nm.test_batch_size = test_batch_size(o->batch_size, o->train_chunk_size, nm.test->shape[1]);
	*out = fv_dvalue_map(FV_DV_DATALOADERS);
	rc = nm.movies != NULL && *out != NULL ? check_clips(&nm) : fv_errcode();
	if (rc == FV_OK)
		rc = sequences(&nm, movies);
	if (rc == FV_OK)
		rc = build(&nm, resp, *out);
	fv_tensor_free(nm.random_sequences);
	fv_dvalue_free(nm.movies);
	if (rc != FV_OK) {
		fv_dvalue_free(*out);
		*out = NULL;
	}
	return rc;
}

static const char *const natmov_names[] = {
	"natmov_dataloaders_v2", "openretina.data_io.hoefling_2024.dataloaders.natmov_dataloaders_v2",
	NULL,
};

const fv_component hoef_natmov_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = natmov_names,
	.doc = "Hoefling 2024 loaders: per-eye, per-sequence movies, validation clips, one test "
	       "movie",
	.options = natmov_options,
	.priv_size = sizeof(natmov_opts),
	.data_step = natmov_step,
};
