/*
** data_from_values.c: a data set from what openretina's data_io steps
** return (the arguments of its dataloader functions): a dict of
** ResponsesTrainTestSplit per session and either one MoviesTrainTestSplit
** shared by every session or a dict of them per session.  The movies are
** taken as given (the reader normalised them); the responses are split,
** clipped and batched exactly as the generic HDF5 reader's are
** (fv__session_split), so every reader plugin gets openretina's
** multiple_movies_dataloaders behaviour without reimplementing it.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "data/data_internal.h"
#include "fovea/data_plugin.h"

/* The session's movies: the shared split, or its entry in the dict. */
static fv_status session_movies(const fv_dvalue *movies, const char *session,
                                const fv_dvalue **out)
{
	const char *cls = fv_dvalue_class(movies);
	if (cls != NULL && strcmp(cls, FV_DV_MOVIES_SPLIT) == 0) {
		*out = movies;
		return FV_OK;
	}
	*out = fv_dvalue_get(movies, session);
	if (*out == NULL)
		return fv_error(FV_ERR_NOTFOUND, "session '%s': the stimuli (data_io.stimuli) have no "
		                "movies for it", session);
	cls = fv_dvalue_class(*out);
	if (cls == NULL || strcmp(cls, FV_DV_MOVIES_SPLIT) != 0)
		return fv_error(FV_ERR_FORMAT, "session '%s': the stimuli give a %s, expected a "
		                FV_DV_MOVIES_SPLIT, session, cls != NULL ? cls
		                : fv_dvalue_kind_name(fv_dvalue_kind_of(*out)));
	return FV_OK;
}

static const fv_tensor *field_tensor(const fv_dvalue *split, const char *key)
{
	return fv_dvalue_tensor_of(fv_dvalue_get(split, key));
}

/* openretina's ResponsesTrainTestSplit.check_matching_stimulus. */
static fv_status check_matching(const char *session, const fv_dvalue *resp,
                                const fv_dvalue *mov)
{
	const fv_tensor *r = field_tensor(resp, "train"), *m = field_tensor(mov, "train");
	if (r->shape[1] != m->shape[1])
		return fv_error(FV_ERR_SHAPE, "session '%s': the train movie has %lld frames, the "
		                "train responses %lld", session, (long long)m->shape[1],
		                (long long)r->shape[1]);
	const fv_dvalue *rt = fv_dvalue_get(resp, "test_dict"), *mt = fv_dvalue_get(mov, "test_dict");
	if (fv_dvalue_size(rt) != fv_dvalue_size(mt))
		return fv_error(FV_ERR_SHAPE, "session '%s': %zu test responses but %zu test movies",
		                session, fv_dvalue_size(rt), fv_dvalue_size(mt));
	for (size_t i = 0; i < fv_dvalue_size(rt); i++) {
		const char *name = fv_dvalue_key_at(rt, i);
		const fv_tensor *tr = fv_dvalue_tensor_of(fv_dvalue_at(rt, i));
		const fv_tensor *tm = fv_dvalue_tensor_of(fv_dvalue_get(mt, name));
		if (tm == NULL)
			return fv_error(FV_ERR_NOTFOUND, "session '%s': test responses '%s' have no test "
			                "movie of that name", session, name);
		if (tm->shape[1] != tr->shape[1])
			return fv_error(FV_ERR_SHAPE, "session '%s': test movie '%s' has %lld frames, its "
			                "responses %lld", session, name, (long long)tm->shape[1],
			                (long long)tr->shape[1]);
	}
	return FV_OK;
}

/* A (rows, cols) tensor as doubles, checked finite. */
static double *as_doubles(const fv_tensor *t, const char *session, const char *what)
{
	double *v = fv__malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *v);
	if (v == NULL) {
		fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
		return NULL;
	}
	for (int64_t i = 0; i < t->numel; i++) {
		if (!isfinite(t->data[i])) {
			fv_error(FV_ERR_FORMAT, "session '%s': %s holds a non-finite value at %lld",
			         session, what, (long long)i);
			free(v);
			return NULL;
		}
		v[i] = t->data[i];
	}
	return v;
}

/* (trials, neurons, time) as (trials, time, neurons), the layout of fv_data. */
static fv_tensor *trials_time_first(const fv_tensor *a)
{
	int64_t k = a->shape[0], n = a->shape[1], t = a->shape[2];
	fv_tensor *out = fv_tensor_new(3, (int64_t[]){k, t, n});
	for (int64_t r = 0; out != NULL && r < k; r++)
		for (int64_t i = 0; i < n; i++)
			for (int64_t j = 0; j < t; j++)
				out->data[(r * t + j) * n + i] = a->data[(r * n + i) * t + j];
	return out;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key naming a value's tensor: sessions given the same tensor share it. */
static void tensor_key(char *key, size_t size, const char *what, const fv_tensor *t)
{
	snprintf(key, size, "%s@%p", what, (const void *)t);
}

/* The test movie `t` as the data set keeps it: copied once, however many
** sessions show it (the values stay the caller's). */
static fv_tensor *kept_movie(fv_data *d, const fv_tensor *t)
{
	char key[64];
	tensor_key(key, sizeof key, "test", t);
	fv_tensor *kept = fv__data_shared(d, key);
	if (kept == NULL && (kept = fv_tensor_clone(t)) != NULL && fv__data_share(d, key, kept) != FV_OK)
		kept = NULL;
	return kept;
}

/* The test stimuli of a session, in sorted name order as fv_data keeps them. */
static fv_status raw_tests(fv_data *d, const char *session, const fv_dvalue *resp,
                           const fv_dvalue *mov, fv__session_raw *raw)
{
	const fv_dvalue *rt = fv_dvalue_get(resp, "test_dict");
	const fv_dvalue *trials = fv_dvalue_get(resp, "test_by_trial_dict");
	const fv_dvalue *mt = fv_dvalue_get(mov, "test_dict");
	size_t n = fv_dvalue_size(rt), k = n > 0 ? n : 1;
	raw->test_names = fv__calloc(k, sizeof *raw->test_names);
	raw->test_movies = fv__calloc(k, sizeof *raw->test_movies);
	raw->test_responses = fv__calloc(k, sizeof *raw->test_responses);
	raw->test_frames = fv__calloc(k, sizeof *raw->test_frames);
	raw->test_by_trial = fv__calloc(k, sizeof *raw->test_by_trial);
	if (raw->test_names == NULL || raw->test_movies == NULL || raw->test_responses == NULL ||
	    raw->test_frames == NULL || raw->test_by_trial == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	const char **names = fv__calloc(k, sizeof *names);
	if (names == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	for (size_t i = 0; i < n; i++)
		names[i] = fv_dvalue_key_at(rt, i);
	qsort(names, n, sizeof *names, compare_keys);
	fv_status rc = FV_OK;
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		const fv_tensor *r = fv_dvalue_tensor_of(fv_dvalue_get(rt, names[i]));
		const fv_tensor *by_trial = fv_dvalue_tensor_of(fv_dvalue_get(trials, names[i]));
		raw->n_test = i + 1;
		raw->test_names[i] = fv__data_strdup(names[i]);
		raw->test_movies[i] = kept_movie(d, fv_dvalue_tensor_of(fv_dvalue_get(mt, names[i])));
		raw->test_responses[i] = as_doubles(r, session, "test responses");
		raw->test_frames[i] = r->shape[1];
		raw->test_by_trial[i] = by_trial != NULL ? trials_time_first(by_trial) : NULL;
		if (raw->test_responses[i] == NULL)
			rc = fv_errcode();
		else if (raw->test_names[i] == NULL || raw->test_movies[i] == NULL ||
		         (by_trial != NULL && raw->test_by_trial[i] == NULL))
			rc = fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	}
	free(names);
	return rc;
}

/* session_kwargs: its arrays become the session's info (numbers as one value). */
static fv_status session_info(fv__session *s, const fv_dvalue *kwargs)
{
	size_t n = fv_dvalue_size(kwargs);
	s->info_names = fv__calloc(n ? n : 1, sizeof *s->info_names);
	s->info = fv__calloc(n ? n : 1, sizeof *s->info);
	if (s->info_names == NULL || s->info == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	for (size_t i = 0; i < n; i++) {
		const fv_dvalue *v = fv_dvalue_at(kwargs, i);
		fv_tensor *t = NULL;
		if (fv_dvalue_kind_of(v) == FV_DV_TENSOR) {
			t = fv_tensor_clone(fv_dvalue_tensor_of(v));
		} else if (fv_dvalue_kind_of(v) == FV_DV_NUMBER) {
			t = fv_tensor_new(1, (int64_t[]){1});
			if (t != NULL)
				t->data[0] = (fv_real)fv_dvalue_number_of(v);
		} else {
			continue; /* strings and the like: not numeric session info */
		}
		char *name = fv__data_strdup(fv_dvalue_key_at(kwargs, i));
		if (t == NULL || name == NULL) {
			fv_tensor_free(t);
			free(name);
			return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
		}
		s->info_names[s->n_info] = name;
		s->info[s->n_info++] = t;
	}
	return FV_OK;
}

/* The reader's "filter_counts" map ({filter: neurons removed}), if any. */
static fv_status filter_counts(fv__session *s, const fv_dvalue *counts)
{
	if (counts == NULL)
		return FV_OK;
	size_t n = fv_dvalue_size(counts);
	if (fv_dvalue_kind_of(counts) != FV_DV_MAP)
		return fv_error(FV_ERR_FORMAT, "session '%s': the responses' filter_counts is a %s, "
		                "expected a dict {filter: neurons removed}", s->name,
		                fv_dvalue_kind_name(fv_dvalue_kind_of(counts)));
	s->filter_names = fv__calloc(n ? n : 1, sizeof *s->filter_names);
	s->filter_removed = fv__calloc(n ? n : 1, sizeof *s->filter_removed);
	if (s->filter_names == NULL || s->filter_removed == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	for (size_t i = 0; i < n; i++) {
		double v = fv_dvalue_number_of(fv_dvalue_at(counts, i));
		if (!(v >= 0 && v == floor(v)))
			return fv_error(FV_ERR_FORMAT, "session '%s': filter_counts['%s'] should be a "
			                "count of neurons, got %s", s->name, fv_dvalue_key_at(counts, i),
			                fv_dvalue_kind_name(fv_dvalue_kind_of(fv_dvalue_at(counts, i))));
		if ((s->filter_names[i] = fv__data_strdup(fv_dvalue_key_at(counts, i))) == NULL)
			return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
		s->filter_removed[i] = (int64_t)v;
		s->n_filters = i + 1;
	}
	return FV_OK;
}

static fv_status open_session(const fv_data_options *o, const char *name, const fv_dvalue *resp,
                              const fv_dvalue *movies, fv_data *d, size_t i, int64_t size[3])
{
	fv__session *s = &d->sessions[i];
	const char *cls = fv_dvalue_class(resp);
	if (cls == NULL || strcmp(cls, FV_DV_RESPONSES_SPLIT) != 0)
		return fv_error(FV_ERR_FORMAT, "session '%s': the responses give a %s, expected a "
		                FV_DV_RESPONSES_SPLIT, name, cls != NULL ? cls
		                : fv_dvalue_kind_name(fv_dvalue_kind_of(resp)));
	const fv_dvalue *mov;
	fv_status rc = session_movies(movies, name, &mov);
	if (rc == FV_OK)
		rc = check_matching(name, resp, mov);
	if (rc != FV_OK)
		return rc;
	const fv_tensor *train = field_tensor(mov, "train"), *r = field_tensor(resp, "train");
	int64_t movie_size[3] = {train->shape[0], train->shape[2], train->shape[3]};
	if (size[0] == 0)
		memcpy(size, movie_size, sizeof movie_size);
	else if (memcmp(size, movie_size, sizeof movie_size) != 0)
		return fv_error(FV_ERR_SHAPE, "session '%s': its movie frames are %s, another "
		                "session's %s", name, fv_shape_str(3, movie_size), fv_shape_str(3, size));
	char key[64];
	tensor_key(key, sizeof key, "train", train);
	s->name = fv__data_strdup(name);
	s->path = fv__data_strdup(name);
	s->movie_key = fv__data_strdup(key);
	if (s->name == NULL || s->path == NULL || s->movie_key == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", name);
	s->n_neurons = r->shape[0];
	/* The split only reads the training movie: it is borrowed, not copied
	** (and forgotten before raw is freed). */
	fv__session_raw raw = {
		.train_movie = (fv_tensor *)train,
		.train_responses = as_doubles(r, name, "train responses"),
		.train_responses_f32 = sizeof(fv_real) == sizeof(float),
		.n_train_frames = r->shape[1],
	};
	if (raw.train_responses == NULL)
		rc = fv_errcode();
	if (rc == FV_OK)
		rc = raw_tests(d, name, resp, mov, &raw);
	if (rc == FV_OK)
		rc = session_info(s, fv_dvalue_get(resp, "session_kwargs"));
	if (rc == FV_OK)
		rc = filter_counts(s, fv_dvalue_get(resp, "filter_counts"));
	if (rc == FV_OK)
		rc = fv__session_mean_activity(s, &raw);
	if (rc == FV_OK) {
		raw.movies_from = fv__session_same_movie(d, i, raw.n_train_frames);
		rc = fv__session_split(s, &raw, o);
	}
	raw.train_movie = NULL;
	fv__session_forget_shared(d, s, &raw);
	fv__session_raw_free(&raw);
	return rc;
}

/* The normalisation a shared or first movie split records, else the options'. */
static void movie_stats(const fv_dvalue *movies, fv_data_options *o)
{
	const fv_dvalue *split = movies;
	if (fv_dvalue_class(split) == NULL)
		split = fv_dvalue_at(movies, 0);
	double mean = fv_dvalue_number_of(fv_dvalue_get(split, "norm_mean"));
	double std = fv_dvalue_number_of(fv_dvalue_get(split, "norm_std"));
	if (!isnan(mean) && !isnan(std)) {
		o->norm_mean = mean;
		o->norm_std = std;
	}
}

fv_status fv_data_open_values(const fv_data_options *o, const fv_dvalue *movies,
                              const fv_dvalue *responses, fv_data **out)
{
	*out = NULL;
	if (fv_dvalue_kind_of(responses) != FV_DV_MAP || fv_dvalue_class(responses) != NULL ||
	    fv_dvalue_size(responses) == 0)
		return fv_error(FV_ERR_FORMAT, "the responses (data_io.responses) should be a dict of "
		                FV_DV_RESPONSES_SPLIT " per session, got %s",
		                fv_dvalue_size(responses) == 0 && fv_dvalue_kind_of(responses) == FV_DV_MAP
		                        ? "an empty one" : "another value");
	if (fv_dvalue_kind_of(movies) != FV_DV_MAP)
		return fv_error(FV_ERR_FORMAT, "the stimuli (data_io.stimuli) should be a "
		                FV_DV_MOVIES_SPLIT " or a dict of them per session");
	fv_data_options opt = *o;
	movie_stats(movies, &opt);
	fv_status rc = fv__data_check_options(&opt);
	if (rc != FV_OK)
		return rc;
	size_t n = fv_dvalue_size(responses);
	fv_data *d = fv__calloc(1, sizeof *d);
	if (d == NULL || (d->sessions = fv__calloc(n, sizeof *d->sessions)) == NULL ||
	    (d->dir = fv__data_strdup("")) == NULL) {
		fv_data_close(d);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	fv__data_keep_options(d, &opt);
	int64_t size[3] = {0, 0, 0};
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		d->n_sessions++;
		rc = open_session(&opt, fv_dvalue_key_at(responses, i), fv_dvalue_at(responses, i),
		                  movies, d, i, size);
	}
	if (rc == FV_OK)
		rc = fv__data_finish(d, size);
	if (rc != FV_OK) {
		fv_data_close(d);
		return rc;
	}
	*out = d;
	return FV_OK;
}
