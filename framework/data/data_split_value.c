/*
** data_split_value.c: openretina's two split dataclasses as data values
** (MoviesTrainTestSplit and ResponsesTrainTestSplit of data_io/base.py),
** checked as their __post_init__ checks them, so that a reader plugin's
** mistake stops where it is made rather than in the dataloader.
*/
#include <math.h>

#include "fovea/data_plugin.h"

/* The item of a map of tensors that is not an array of `ndim` dims. */
static fv_status check_tensor_map(const fv_dvalue *map, const char *what, int ndim)
{
	if (fv_dvalue_kind_of(map) != FV_DV_MAP || fv_dvalue_class(map) != NULL)
		return fv_error(FV_ERR_ARG, "%s: expected a dict of arrays, got a %s", what,
		                fv_dvalue_kind_name(fv_dvalue_kind_of(map)));
	for (size_t i = 0; i < fv_dvalue_size(map); i++) {
		const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_at(map, i));
		if (t == NULL)
			return fv_error(FV_ERR_ARG, "%s['%s']: expected an array, got a %s", what,
			                fv_dvalue_key_at(map, i),
			                fv_dvalue_kind_name(fv_dvalue_kind_of(fv_dvalue_at(map, i))));
		if (t->ndim != ndim)
			return fv_error(FV_ERR_SHAPE, "%s['%s'] is not %d-dimensional: %s", what,
			                fv_dvalue_key_at(map, i), ndim, fv_shape_str(t->ndim, t->shape));
	}
	return FV_OK;
}

static fv_status check_movies(const fv_tensor *train, const fv_dvalue *test_dict)
{
	if (train->ndim != 4)
		return fv_error(FV_ERR_SHAPE, "MoviesTrainTestSplit: the train movie should have 4 "
		                "dimensions (channels, time, height, width), got %s",
		                fv_shape_str(train->ndim, train->shape));
	fv_status st = check_tensor_map(test_dict, "MoviesTrainTestSplit.test_dict", 4);
	if (st == FV_OK && fv_dvalue_size(test_dict) == 0)
		st = fv_error(FV_ERR_ARG, "MoviesTrainTestSplit: no test stimuli present");
	for (size_t i = 0; st == FV_OK && i < fv_dvalue_size(test_dict); i++) {
		const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_at(test_dict, i));
		if (t->shape[0] != train->shape[0] || t->shape[2] != train->shape[2] ||
		    t->shape[3] != train->shape[3])
			st = fv_error(FV_ERR_SHAPE, "MoviesTrainTestSplit: test movie '%s' %s does not "
			              "match the train movie %s in channels and spatial size",
			              fv_dvalue_key_at(test_dict, i), fv_shape_str(t->ndim, t->shape),
			              fv_shape_str(train->ndim, train->shape));
	}
	return st;
}

/* Set key to a number, or to None for NAN. */
static fv_status set_number(fv_dvalue *map, const char *key, double x)
{
	return fv_dvalue_set(map, key, isnan(x) ? fv_dvalue_null() : fv_dvalue_number(x));
}

static fv_status set_text(fv_dvalue *map, const char *key, const char *s)
{
	return fv_dvalue_set(map, key, s == NULL ? fv_dvalue_null() : fv_dvalue_text(s));
}

fv_dvalue *fv_dvalue_movies_split(fv_tensor *train, fv_dvalue *test_dict,
                                  fv_tensor *random_sequences, double norm_mean, double norm_std,
                                  const char *stim_id)
{
	fv_dvalue *split = NULL;
	fv_status st = train == NULL || test_dict == NULL
	                       ? fv_error(FV_ERR_ARG, "MoviesTrainTestSplit: no train or test movies")
	                       : check_movies(train, test_dict);
	if (st == FV_OK)
		split = fv_dvalue_map(FV_DV_MOVIES_SPLIT);
	if (split == NULL) {
		fv_tensor_free(train);
		fv_dvalue_free(test_dict);
		fv_tensor_free(random_sequences);
		return NULL;
	}
	st = fv_dvalue_set(split, "train", fv_dvalue_tensor(train));
	if (st == FV_OK)
		st = fv_dvalue_set(split, "test_dict", test_dict);
	else
		fv_dvalue_free(test_dict);
	test_dict = NULL;
	fv_dvalue *rs = random_sequences != NULL ? fv_dvalue_tensor(random_sequences)
	                                         : fv_dvalue_null();
	if (st == FV_OK)
		st = fv_dvalue_set(split, "random_sequences", rs);
	else
		fv_dvalue_free(rs);
	if (st == FV_OK)
		st = set_text(split, "stim_id", stim_id);
	if (st == FV_OK)
		st = set_number(split, "norm_mean", norm_mean);
	if (st == FV_OK)
		st = set_number(split, "norm_std", norm_std);
	if (st != FV_OK) {
		fv_dvalue_free(split);
		return NULL;
	}
	return split;
}

/* The neuron count every test array shares with the train responses. */
static fv_status check_responses(const fv_tensor *train, const fv_dvalue *test_dict,
                                 const fv_dvalue *by_trial)
{
	if (train->ndim != 2)
		return fv_error(FV_ERR_SHAPE, "ResponsesTrainTestSplit: the train responses should "
		                "have 2 dimensions (neurons, time), got %s",
		                fv_shape_str(train->ndim, train->shape));
	fv_status st = check_tensor_map(test_dict, "ResponsesTrainTestSplit.test_dict", 2);
	if (st == FV_OK && fv_dvalue_size(test_dict) == 0)
		st = fv_error(FV_ERR_ARG, "ResponsesTrainTestSplit: no test responses present");
	for (size_t i = 0; st == FV_OK && i < fv_dvalue_size(test_dict); i++) {
		const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_at(test_dict, i));
		if (t->shape[0] != train->shape[0])
			st = fv_error(FV_ERR_SHAPE, "ResponsesTrainTestSplit: test responses '%s' have "
			              "%lld neurons, the train responses %lld",
			              fv_dvalue_key_at(test_dict, i), (long long)t->shape[0],
			              (long long)train->shape[0]);
	}
	if (st == FV_OK && by_trial != NULL)
		st = check_tensor_map(by_trial, "ResponsesTrainTestSplit.test_by_trial_dict", 3);
	for (size_t i = 0; st == FV_OK && i < fv_dvalue_size(by_trial); i++)
		if (fv_dvalue_get(test_dict, fv_dvalue_key_at(by_trial, i)) == NULL)
			st = fv_error(FV_ERR_ARG, "ResponsesTrainTestSplit: test_by_trial_dict contains "
			              "key '%s' without matching test stimuli",
			              fv_dvalue_key_at(by_trial, i));
	return st;
}

/* An empty dict for a NULL map argument. */
static fv_dvalue *or_empty(fv_dvalue *map)
{
	return map != NULL ? map : fv_dvalue_map(NULL);
}

fv_dvalue *fv_dvalue_responses_split(fv_tensor *train, fv_dvalue *test_dict,
                                     fv_dvalue *test_by_trial_dict, const char *stim_id,
                                     fv_dvalue *session_kwargs)
{
	fv_dvalue *split = NULL;
	fv_status st = train == NULL || test_dict == NULL
	                       ? fv_error(FV_ERR_ARG, "ResponsesTrainTestSplit: no train or test "
	                                  "responses")
	                       : check_responses(train, test_dict, test_by_trial_dict);
	if (st == FV_OK && session_kwargs != NULL && fv_dvalue_kind_of(session_kwargs) != FV_DV_MAP)
		st = fv_error(FV_ERR_ARG, "ResponsesTrainTestSplit: session_kwargs should be a dict");
	if (st == FV_OK)
		split = fv_dvalue_map(FV_DV_RESPONSES_SPLIT);
	if (split == NULL) {
		fv_tensor_free(train);
		fv_dvalue_free(test_dict);
		fv_dvalue_free(test_by_trial_dict);
		fv_dvalue_free(session_kwargs);
		return NULL;
	}
	/* fv_dvalue_set frees what it is given when it fails, so every item is
	** handed over exactly once, whatever went before. */
	st = fv_dvalue_set(split, "train", fv_dvalue_tensor(train));
	fv_dvalue *items[3] = {test_dict, or_empty(test_by_trial_dict), or_empty(session_kwargs)};
	static const char *const keys[3] = {"test_dict", "test_by_trial_dict", "session_kwargs"};
	for (size_t i = 0; i < 3; i++) {
		if (st == FV_OK)
			st = items[i] != NULL ? fv_dvalue_set(split, keys[i], items[i]) : FV_ERR_NOMEM;
		else
			fv_dvalue_free(items[i]);
	}
	if (st == FV_OK)
		st = set_text(split, "stim_id", stim_id);
	if (st != FV_OK) {
		fv_dvalue_free(split);
		return NULL;
	}
	return split;
}
