/*
** data_sessions.c: opening a data directory in openretina's HDF5 layout.
**
** For every DIR/<session>.h5|.hdf5, as openretina's load_stimuli and
** load_responses do: the stimuli with responses are the `responses_<name>`
** keys in sorted order; each one's movie is the session's own
** `stimulus_<name>` if present, else DIR/stimuli/<name>.npy; names listed in
** test_names become test sets, the others are normalised and concatenated
** over time (movie and responses alike) into the session's training movie,
** which data_split.c then cuts into training and validation clips.
** Where openretina would fail with an assertion or a KeyError, fovea stops
** with a message naming the file, the session, the stimulus and the shapes.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "tensor/tensor_internal.h"
#include "fovea/npy.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

#define RESPONSES_PREFIX "responses_"
#define STIMULUS_PREFIX "stimulus_"
#define BY_TRIAL_PREFIX "by_trial_"
#define SESSION_INFO "session_info"

typedef struct reader {
	const fv_data_options *opt;
	fv_data *d; /* keeps the shared stimuli, normalised (fv__data_share) */
	const char *dir;
	char *stimulus_dir;
	/* The expected (channels, height, width); 0 until known. */
	int64_t size[3];
	char size_source[512];
	bool *test_name_found;
} reader;

#define SHARED_PREFIX "stimuli/"

/* ---- stimuli ------------------------------------------------------------------ */

static const char *chw_str(const int64_t *size)
{
	int64_t shape[3] = {size[0], size[1], size[2]};
	return fv_shape_str(3, shape);
}

/* openretina's _check_stimulus_size: 4-D, and channels, height and width as
** configured (or as the first stimulus read when not configured). */
static fv_status check_stimulus(reader *r, const fv_tensor *movie, const char *where)
{
	if (movie->ndim != 4)
		return fv_error(FV_ERR_SHAPE,
		                "%s: expected a stimulus of 4 dims (channels, time, height, width), got shape %s",
		                where, fv_shape_str(movie->ndim, movie->shape));
	const int64_t got[3] = {movie->shape[0], movie->shape[2], movie->shape[3]};
	for (int i = 0; i < 3; i++) {
		if (r->size[i] != 0 && r->size[i] != got[i])
			return fv_error(FV_ERR_SHAPE,
			                "%s: stimulus of shape %s has (channels, height, width) = %s, "
			                "expected %s %s",
			                where, fv_shape_str(4, movie->shape), chw_str(got), chw_str(r->size),
			                r->size_source);
	}
	bool learned = false;
	for (int i = 0; i < 3; i++) {
		if (r->size[i] == 0) {
			r->size[i] = got[i];
			learned = true;
		}
	}
	if (learned)
		snprintf(r->size_source, sizeof r->size_source, "(as %s)", where);
	return FV_OK;
}

/* Stimuli and responses must be finite: a NaN or inf would pass through
** training unnoticed until the loss or mean_activity turns non-finite,
** far from the file that holds it. */
static fv_status check_finite(const char *file, const char *dataset, const double *v,
                              const fv_real *t, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		double x = v != NULL ? v[i] : (double)t[i];
		if (!isfinite(x))
			return fv_error(FV_ERR_FORMAT,
			                "%s: dataset '%s' holds a non-finite value (%g at flat index %lld): "
			                "stimuli and responses must be finite",
			                file, dataset, x, (long long)i);
	}
	return FV_OK;
}

static fv_tensor *to_tensor(const double *v, int ndim, const int64_t *shape)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	if (t != NULL)
		for (int64_t i = 0; i < t->numel; i++)
			t->data[i] = (fv_real)v[i];
	return t;
}

/* Normalised in place as openretina's TrainTestStimuliProcessor does: in
** float32, (x - mean) / std.  In place: a movie is held once. */
static void normalise(const reader *r, fv_tensor *movie)
{
	float mean = (float)r->opt->norm_mean, std = (float)r->opt->norm_std;
	for (int64_t i = 0; i < movie->numel; i++)
		movie->data[i] = (fv_real)(((float)movie->data[i] - mean) / std);
}

/* A checked, normalised stimulus: takes `movie` (freed on failure). */
static fv_status checked_movie(reader *r, fv_tensor *movie, const char *file, const char *where,
                               const char *dataset)
{
	fv_status rc = check_stimulus(r, movie, where);
	if (rc == FV_OK)
		rc = check_finite(file, dataset, NULL, movie->data, movie->numel);
	if (rc == FV_OK)
		normalise(r, movie);
	else
		fv_tensor_free(movie);
	return rc;
}

/* DIR/stimuli/<name>.npy normalised, read once and kept in the data set
** for every session, or NULL with *missing set when there is none. */
static fv_status shared_stimulus_get(reader *r, const char *name, fv_tensor **out,
                                     bool *missing)
{
	*missing = false;
	char key[600];
	snprintf(key, sizeof key, SHARED_PREFIX "%s", name);
	if ((*out = fv__data_shared(r->d, key)) != NULL)
		return FV_OK;
	size_t n = strlen(r->stimulus_dir) + strlen(name) + 6;
	char *path = fv__malloc(n);
	if (path == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	snprintf(path, n, "%s/%s.npy", r->stimulus_dir, name);
	struct stat st;
	if (stat(path, &st) != 0) {
		free(path);
		*missing = true;
		return FV_OK;
	}
	fv_tensor *movie = fv_npy_load(path);
	fv_status rc = movie != NULL ? checked_movie(r, movie, path, path, name) : fv_errcode();
	free(path);
	if (rc == FV_OK && (rc = fv__data_share(r->d, key, movie)) == FV_OK)
		*out = movie;
	return rc;
}

/* The normalised movie of one stimulus for one session: its own
** stimulus_<name> (then *own is set: the caller frees it) or the shared one
** (*own NULL: the data set keeps it). */
static fv_status session_movie(reader *r, fv__h5_id file, const char *path, const char *session,
                               const char *name, fv_tensor **out, bool *own)
{
	*out = NULL;
	*own = false;
	char key[512];
	snprintf(key, sizeof key, STIMULUS_PREFIX "%s", name);
	if (fv__h5_is_dataset(file, key)) {
		fv__h5_array a;
		fv_status rc = fv__h5_read(file, path, key, &a);
		if (rc != FV_OK)
			return rc;
		fv_tensor *movie = to_tensor(a.data, a.ndim, a.shape);
		fv__h5_array_free(&a);
		if (movie == NULL)
			return fv_error(FV_ERR_NOMEM, "%s: out of memory reading '%s'", path, key);
		char where[1024];
		snprintf(where, sizeof where, "%s/%s", path, key);
		if ((rc = checked_movie(r, movie, path, where, key)) == FV_OK) {
			*out = movie;
			*own = true;
		}
		return rc;
	}
	bool missing;
	fv_status rc = shared_stimulus_get(r, name, out, &missing);
	if (rc == FV_OK && missing)
		rc = fv_error(FV_ERR_NOTFOUND,
		              "session '%s': responses_%s has no stimulus: neither %s/%s.npy nor %s/%s "
		              "exists",
		              session, name, r->stimulus_dir, name, path, key);
	return rc;
}

/* ---- responses ------------------------------------------------------------------ */

/* responses_<name> as (neurons, time); a trials axis in front is averaged
** over and handed back in *trials (trials, neurons, time). */
static fv_status read_responses(fv__h5_id file, const char *path, const char *session,
                                const char *name, fv__h5_array *avg, fv__h5_array *trials)
{
	char key[512];
	snprintf(key, sizeof key, RESPONSES_PREFIX "%s", name);
	memset(trials, 0, sizeof *trials);
	fv_status rc = fv__h5_read(file, path, key, avg);
	if (rc == FV_OK && (rc = check_finite(path, key, avg->data, NULL,
	                                      fv__numel(avg->ndim, avg->shape))) != FV_OK)
		fv__h5_array_free(avg);
	if (rc != FV_OK)
		return rc;
	if (avg->ndim == 2)
		return FV_OK;
	if (avg->ndim != 3) {
		fv_status e = fv_error(FV_ERR_SHAPE,
		                       "%s: session '%s': %s has shape %s, expected (neurons, time) or "
		                       "(trials, neurons, time)",
		                       path, session, key, fv_shape_str(avg->ndim, avg->shape));
		fv__h5_array_free(avg);
		return e;
	}
	*trials = *avg;
	int64_t n_trials = trials->shape[0], per = trials->shape[1] * trials->shape[2];
	avg->ndim = 2;
	avg->shape[0] = trials->shape[1];
	avg->shape[1] = trials->shape[2];
	avg->is_float32 = false;
	avg->data = fv__calloc((size_t)(per ? per : 1), sizeof(double));
	if (avg->data == NULL) {
		fv__h5_array_free(trials);
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	}
	for (int64_t k = 0; k < n_trials; k++)
		for (int64_t i = 0; i < per; i++)
			avg->data[i] += trials->data[k * per + i];
	for (int64_t i = 0; i < per; i++)
		avg->data[i] /= (double)(n_trials ? n_trials : 1);
	return FV_OK;
}

/* (trials, neurons, time) doubles as a (trials, time, neurons) tensor. */
static fv_tensor *trials_tensor(const fv__h5_array *a)
{
	int64_t k = a->shape[0], n = a->shape[1], t = a->shape[2];
	int64_t shape[3] = {k, t, n};
	fv_tensor *out = fv_tensor_new(3, shape);
	if (out != NULL)
		for (int64_t r = 0; r < k; r++)
			for (int64_t i = 0; i < n; i++)
				for (int64_t j = 0; j < t; j++)
					out->data[(r * t + j) * n + i] = (fv_real)a->data[(r * n + i) * t + j];
	return out;
}

/* The trials of a test stimulus: from a 3-D responses_<name>, or from a
** by_trial_<name> dataset beside a 2-D one. */
static fv_status test_trials(fv__h5_id file, const char *path, const char *session,
                             const char *name, const fv__h5_array *avg, fv__h5_array *trials,
                             fv_tensor **out)
{
	*out = NULL;
	fv__h5_array own = {0};
	if (trials->data == NULL) {
		char key[512];
		snprintf(key, sizeof key, BY_TRIAL_PREFIX "%s", name);
		if (!fv__h5_is_dataset(file, key))
			return FV_OK;
		fv_status rc = fv__h5_read(file, path, key, &own);
		if (rc == FV_OK && (rc = check_finite(path, key, own.data, NULL,
		                                      fv__numel(own.ndim, own.shape))) != FV_OK)
			fv__h5_array_free(&own);
		if (rc != FV_OK)
			return rc;
		if (own.ndim != 3 || own.shape[1] != avg->shape[0] || own.shape[2] != avg->shape[1]) {
			rc = fv_error(FV_ERR_SHAPE,
			              "%s: session '%s': %s has shape %s, expected (trials, %lld, %lld) "
			              "as responses_%s %s",
			              path, session, key, fv_shape_str(own.ndim, own.shape),
			              (long long)avg->shape[0], (long long)avg->shape[1], name,
			              fv_shape_str(2, avg->shape));
			fv__h5_array_free(&own);
			return rc;
		}
		trials = &own;
	}
	*out = trials_tensor(trials);
	fv__h5_array_free(&own);
	return *out != NULL ? FV_OK : fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
}

/* ---- one session ------------------------------------------------------------------ */

static bool is_test_name(reader *r, const char *name)
{
	for (size_t i = 0; i < r->opt->n_test_names; i++) {
		if (strcmp(r->opt->test_names[i], name) == 0) {
			r->test_name_found[i] = true;
			return true;
		}
	}
	return false;
}

/* Parts of the training movie, concatenated once all are read.  A movie
** part is the session's own (freed here) or a shared stimulus. */
typedef struct train_parts {
	size_t n;
	fv_tensor **movies;
	bool *own;
	fv__h5_array *responses;
	/* the names of the parts when all are shared stimuli: the movie_key */
	bool any_own;
	char key[4096];
} train_parts;

static void train_parts_free(train_parts *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->own[i])
			fv_tensor_free(p->movies[i]);
		fv__h5_array_free(&p->responses[i]);
	}
	free(p->movies);
	free(p->own);
	free(p->responses);
}

static fv_status add_part(train_parts *p, const char *name, fv_tensor *movie, bool own,
                          fv__h5_array *avg)
{
	fv_tensor **m = fv__realloc(p->movies, (p->n + 1) * sizeof *m);
	if (m != NULL)
		p->movies = m;
	bool *o = fv__realloc(p->own, (p->n + 1) * sizeof *o);
	if (o != NULL)
		p->own = o;
	fv__h5_array *a = fv__realloc(p->responses, (p->n + 1) * sizeof *a);
	if (a != NULL)
		p->responses = a;
	if (m == NULL || o == NULL || a == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	m[p->n] = movie;
	o[p->n] = own;
	a[p->n] = *avg;
	avg->data = NULL;
	p->n++;
	size_t at = strlen(p->key);
	p->any_own = p->any_own || own ||
	             (size_t)snprintf(p->key + at, sizeof p->key - at, "%s\n", name) >=
	                     sizeof p->key - at;
	return FV_OK;
}

/* A single part is used as it is (the split only reads it); several are
** concatenated over time, each owned part freed once copied; the movie not
** at all when the split borrows an earlier session's (raw->movies_from). */
static fv_status concat_train(const char *session, train_parts *p, fv__session_raw *raw)
{
	if (p->n == 0)
		return fv_error(FV_ERR_CONFIG,
		                "session '%s': no training stimuli: every stimulus with responses is a test "
		                "stimulus (data_io.test_names)",
		                session);
	raw->train_responses_f32 = true;
	for (size_t i = 0; i < p->n; i++)
		raw->train_responses_f32 = raw->train_responses_f32 && p->responses[i].is_float32;
	if (p->n == 1) {
		raw->train_movie = p->movies[0];
		raw->train_responses = p->responses[0].data;
		raw->n_train_frames = p->movies[0]->shape[1];
		p->responses[0].data = NULL;
		p->n = 0; /* raw has the movie; a shared one is forgotten before raw is freed */
		return FV_OK;
	}
	const fv_tensor *first = p->movies[0];
	int64_t c = first->shape[0], hw = first->shape[2] * first->shape[3], n = p->responses[0].shape[0];
	int64_t total = 0;
	for (size_t i = 0; i < p->n; i++)
		total += p->movies[i]->shape[1];
	int64_t shape[4] = {c, total, first->shape[2], first->shape[3]};
	if (raw->movies_from == NULL && (raw->train_movie = fv_tensor_new(4, shape)) == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	raw->train_responses = fv__malloc((size_t)(n * total > 0 ? n * total : 1) * sizeof(double));
	if (raw->train_responses == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	int64_t at = 0;
	for (size_t i = 0; i < p->n; i++) {
		int64_t t = p->movies[i]->shape[1];
		for (int64_t ch = 0; ch < c && raw->train_movie != NULL; ch++)
			memcpy(raw->train_movie->data + (ch * total + at) * hw,
			       p->movies[i]->data + ch * t * hw, (size_t)(t * hw) * sizeof(fv_real));
		for (int64_t k = 0; k < n; k++)
			memcpy(raw->train_responses + k * total + at, p->responses[i].data + k * t,
			       (size_t)t * sizeof(double));
		at += t;
		if (p->own[i]) {
			fv_tensor_free(p->movies[i]);
			p->own[i] = false;
		}
		fv__h5_array_free(&p->responses[i]);
	}
	raw->n_train_frames = total;
	return FV_OK;
}

static fv_status add_test(fv__session_raw *raw, const char *name, fv_tensor *movie,
                          fv__h5_array *avg, fv_tensor *by_trial)
{
	size_t k = raw->n_test;
	char **names = fv__realloc(raw->test_names, (k + 1) * sizeof *names);
	if (names != NULL)
		raw->test_names = names;
	fv_tensor **movies = fv__realloc(raw->test_movies, (k + 1) * sizeof *movies);
	if (movies != NULL)
		raw->test_movies = movies;
	double **resp = fv__realloc(raw->test_responses, (k + 1) * sizeof *resp);
	if (resp != NULL)
		raw->test_responses = resp;
	int64_t *frames = fv__realloc(raw->test_frames, (k + 1) * sizeof *frames);
	if (frames != NULL)
		raw->test_frames = frames;
	fv_tensor **trials = fv__realloc(raw->test_by_trial, (k + 1) * sizeof *trials);
	if (trials != NULL)
		raw->test_by_trial = trials;
	char *copy = fv__data_strdup(name);
	if (names == NULL || movies == NULL || resp == NULL || frames == NULL || trials == NULL ||
	    copy == NULL) {
		free(copy);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	names[k] = copy;
	movies[k] = movie;
	resp[k] = avg->data;
	frames[k] = avg->shape[1];
	trials[k] = by_trial;
	avg->data = NULL;
	raw->n_test++;
	return FV_OK;
}

/* One stimulus with responses: its movie and responses, checked against
** each other and against the session's neuron count. */
static fv_status read_stimulus(reader *r, fv__h5_id file, const char *path, fv__session *s,
                               fv__session_raw *raw, train_parts *parts, const char *name)
{
	fv__h5_array avg, trials;
	fv_status rc = read_responses(file, path, s->name, name, &avg, &trials);
	if (rc != FV_OK)
		return rc;
	fv_tensor *movie = NULL, *by_trial = NULL;
	bool own = false;
	if (s->n_neurons >= 0 && avg.shape[0] != s->n_neurons)
		rc = fv_error(FV_ERR_SHAPE,
		              "%s: session '%s': responses_%s has %lld neurons, the session's other "
		              "responses have %lld",
		              path, s->name, name, (long long)avg.shape[0], (long long)s->n_neurons);
	if (rc == FV_OK)
		rc = session_movie(r, file, path, s->name, name, &movie, &own);
	if (rc == FV_OK && movie->shape[1] != avg.shape[1])
		rc = fv_error(FV_ERR_SHAPE,
		              "session '%s', stimulus '%s': responses of shape %s (neurons, time) do not "
		              "match the stimulus of shape %s (channels, time, height, width): %lld != %lld "
		              "frames",
		              s->name, name, fv_shape_str(2, avg.shape), fv_shape_str(4, movie->shape),
		              (long long)avg.shape[1], (long long)movie->shape[1]);
	if (rc == FV_OK) {
		s->n_neurons = avg.shape[0];
		if (is_test_name(r, name)) {
			rc = test_trials(file, path, s->name, name, &avg, &trials, &by_trial);
			if (rc == FV_OK && (rc = add_test(raw, name, movie, &avg, by_trial)) == FV_OK)
				movie = by_trial = NULL;
		} else if ((rc = add_part(parts, name, movie, own, &avg)) == FV_OK) {
			movie = NULL;
		}
	}
	if (own)
		fv_tensor_free(movie);
	fv_tensor_free(by_trial);
	fv__h5_array_free(&avg);
	fv__h5_array_free(&trials);
	return rc;
}

/* session_info/<key>: openretina's session_kwargs.  Numeric datasets only. */
static fv_status read_session_info(fv__h5_id file, const char *path, fv__session *s)
{
	if (!fv__h5_is_group(file, SESSION_INFO))
		return FV_OK;
	char **keys;
	size_t n;
	fv_status rc = fv__h5_list(file, path, SESSION_INFO, &keys, &n);
	if (rc != FV_OK)
		return rc;
	s->info_names = fv__calloc(n ? n : 1, sizeof *s->info_names);
	s->info = fv__calloc(n ? n : 1, sizeof *s->info);
	if (s->info_names == NULL || s->info == NULL)
		rc = fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		char key[1024];
		snprintf(key, sizeof key, SESSION_INFO "/%s", keys[i]);
		if (!fv__h5_is_numeric(file, key))
			continue;
		fv__h5_array a;
		if ((rc = fv__h5_read(file, path, key, &a)) != FV_OK)
			break;
		fv_tensor *t = to_tensor(a.data, a.ndim, a.shape);
		fv__h5_array_free(&a);
		s->info_names[s->n_info] = fv__data_strdup(keys[i]);
		s->info[s->n_info] = t;
		if (t == NULL || s->info_names[s->n_info] == NULL) {
			rc = fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
			free(s->info_names[s->n_info]);
			fv_tensor_free(t);
			break;
		}
		s->n_info++;
	}
	fv__data_free_names(keys, n);
	return rc;
}

static fv_status read_session_file(reader *r, fv__h5_id file, const char *path, fv__session *s,
                                   fv__session_raw *raw)
{
	char **keys;
	size_t n_keys;
	fv_status rc = fv__h5_list(file, path, "/", &keys, &n_keys);
	if (rc != FV_OK)
		return rc;
	size_t prefix = strlen(RESPONSES_PREFIX), n_stimuli = 0;
	train_parts parts = {0};
	s->n_neurons = -1;
	for (size_t i = 0; rc == FV_OK && i < n_keys; i++) {
		if (strncmp(keys[i], RESPONSES_PREFIX, prefix) != 0)
			continue;
		n_stimuli++;
		rc = read_stimulus(r, file, path, s, raw, &parts, keys[i] + prefix);
	}
	if (rc == FV_OK && n_stimuli == 0) {
		char listing[512] = "";
		for (size_t i = 0, at = 0; i < n_keys && at < sizeof listing - 1; i++)
			at += (size_t)snprintf(listing + at, sizeof listing - at, "%s%s", i ? ", " : "",
			                       keys[i]);
		rc = fv_error(FV_ERR_FORMAT,
		              "%s: session '%s' has no responses_<stimulus> datasets (keys: %s)", path,
		              s->name, n_keys ? listing : "none");
	}
	fv__data_free_names(keys, n_keys);
	if (rc == FV_OK && !parts.any_own && (s->movie_key = fv__data_strdup(parts.key)) == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	int64_t frames = 0;
	for (size_t i = 0; i < parts.n; i++)
		frames += parts.movies[i]->shape[1];
	if (rc == FV_OK)
		raw->movies_from = fv__session_same_movie(r->d, (size_t)(s - r->d->sessions), frames);
	if (rc == FV_OK)
		rc = concat_train(s->name, &parts, raw);
	train_parts_free(&parts);
	if (rc == FV_OK)
		rc = read_session_info(file, path, s);
	return rc;
}

/* The session name: the file name without its last suffix (Path.stem). */
static char *session_name(const char *file_name)
{
	char *name = fv__data_strdup(file_name);
	if (name != NULL) {
		char *dot = strrchr(name, '.');
		if (dot != NULL && dot != name)
			*dot = '\0';
	}
	return name;
}

static fv_status open_session(reader *r, const char *file_name, size_t i)
{
	fv__session *s = &r->d->sessions[i];
	s->name = session_name(file_name);
	s->path = fv__data_path_join(r->dir, file_name);
	if (s->name == NULL || s->path == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv__h5_id file;
	fv_status rc = fv__h5_open(s->path, &file);
	if (rc != FV_OK)
		return rc;
	fv__session_raw raw = {0};
	rc = read_session_file(r, file, s->path, s, &raw);
	fv__h5_close(file);
	if (rc == FV_OK)
		rc = fv__session_mean_activity(s, &raw);
	if (rc == FV_OK)
		rc = fv__session_split(s, &raw, r->opt);
	fv__session_forget_shared(r->d, s, &raw);
	fv__session_raw_free(&raw);
	return rc;
}

/* ---- sharing movies between sessions ------------------------------------------------ */

fv_tensor *fv__data_shared(const fv_data *d, const char *key)
{
	for (size_t i = 0; i < d->n_shared; i++)
		if (strcmp(d->shared_keys[i], key) == 0)
			return d->shared[i];
	return NULL;
}

static bool is_shared(const fv_data *d, const fv_tensor *t)
{
	for (size_t i = 0; t != NULL && i < d->n_shared; i++)
		if (d->shared[i] == t)
			return true;
	return false;
}

fv_status fv__data_share(fv_data *d, const char *key, fv_tensor *t)
{
	char **keys = fv__realloc(d->shared_keys, (d->n_shared + 1) * sizeof *keys);
	if (keys != NULL)
		d->shared_keys = keys;
	fv_tensor **ts = fv__realloc(d->shared, (d->n_shared + 1) * sizeof *ts);
	if (ts != NULL)
		d->shared = ts;
	char *copy = fv__data_strdup(key);
	if (keys == NULL || ts == NULL || copy == NULL) {
		free(copy);
		fv_tensor_free(t);
		return fv_error(FV_ERR_NOMEM, "out of memory keeping movie '%s'", key);
	}
	keys[d->n_shared] = copy;
	ts[d->n_shared++] = t;
	return FV_OK;
}

void fv__session_forget_shared(const fv_data *d, fv__session *s, fv__session_raw *raw)
{
	if (is_shared(d, raw->train_movie))
		raw->train_movie = NULL;
	for (size_t i = 0; i < raw->n_test; i++)
		if (is_shared(d, raw->test_movies[i]))
			raw->test_movies[i] = NULL;
	for (size_t i = 0; i < s->n_test; i++)
		s->tests[i].movie_borrowed = is_shared(d, s->tests[i].movie);
}

const fv__session *fv__session_same_movie(const fv_data *d, size_t i, int64_t frames)
{
	const fv__session *s = &d->sessions[i];
	for (size_t j = 0; s->movie_key != NULL && j < i; j++) {
		const fv__session *o = &d->sessions[j];
		/* its training frames: those kept, and the validation clips' */
		int64_t o_frames = o->train.responses->shape[0] +
		                   (int64_t)o->n_val_clips * d->opt.clip_length;
		if (o->movie_key != NULL && strcmp(o->movie_key, s->movie_key) == 0 &&
		    o_frames == frames)
			return o;
	}
	return NULL;
}

/* The shared stimuli no test set shows: only the training movies, which
** the sessions' splits have copied. */
static void drop_unshown(fv_data *d)
{
	size_t kept = 0;
	for (size_t k = 0; k < d->n_shared; k++) {
		bool shown = false;
		for (size_t i = 0; i < d->n_sessions && !shown; i++)
			for (size_t t = 0; t < d->sessions[i].n_test && !shown; t++)
				shown = d->sessions[i].tests[t].movie == d->shared[k];
		if (shown) {
			d->shared_keys[kept] = d->shared_keys[k];
			d->shared[kept++] = d->shared[k];
		} else {
			free(d->shared_keys[k]);
			fv_tensor_free(d->shared[k]);
		}
	}
	d->n_shared = kept;
}

void fv__session_raw_free(fv__session_raw *raw)
{
	fv_tensor_free(raw->train_movie);
	free(raw->train_responses);
	for (size_t i = 0; i < raw->n_test; i++) {
		free(raw->test_names[i]);
		fv_tensor_free(raw->test_movies[i]);
		free(raw->test_responses[i]);
		fv_tensor_free(raw->test_by_trial[i]);
	}
	free(raw->test_names);
	free(raw->test_movies);
	free(raw->test_responses);
	free(raw->test_frames);
	free(raw->test_by_trial);
	memset(raw, 0, sizeof *raw);
}

/* ---- the directory ------------------------------------------------------------------ */

static fv_status check_options(const fv_data_options *o)
{
	if (o->data_dir == NULL || o->data_dir[0] == '\0')
		return fv_error(FV_ERR_CONFIG, "no data directory given (paths.data_dir)");
	return fv__data_check_options(o);
}

fv_status fv__data_check_options(const fv_data_options *o)
{
	if (o->clip_length <= 0)
		return fv_error(FV_ERR_CONFIG, "dataloader.clip_length must be positive, got %lld",
		                (long long)o->clip_length);
	if (o->train_chunk_size <= 0)
		return fv_error(FV_ERR_CONFIG, "dataloader.train_chunk_size must be positive, got %lld",
		                (long long)o->train_chunk_size);
	if (o->batch_size <= 0)
		return fv_error(FV_ERR_CONFIG, "dataloader.batch_size must be positive, got %lld",
		                (long long)o->batch_size);
	if (o->num_val_clips < 0)
		return fv_error(FV_ERR_CONFIG, "dataloader.num_val_clips must not be negative, got %lld",
		                (long long)o->num_val_clips);
	if (o->seed > 0xffffffffULL)
		return fv_error(FV_ERR_CONFIG,
		                "dataloader.seed must be between 0 and 2**32 - 1 (as numpy's), got %llu",
		                (unsigned long long)o->seed);
	if (!(o->norm_std != 0.0 && isfinite(o->norm_std) && isfinite(o->norm_mean)))
		return fv_error(FV_ERR_CONFIG,
		                "data_io.stimuli.norm_std must be finite and non-zero and norm_mean finite, "
		                "got norm_mean=%g, norm_std=%g",
		                o->norm_mean, o->norm_std);
	if (!o->allow_over_boundaries && o->train_chunk_size > o->clip_length)
		return fv_error(FV_ERR_CONFIG,
		                "dataloader.train_chunk_size (%lld) must not exceed clip_length (%lld) when "
		                "allow_over_boundaries is false",
		                (long long)o->train_chunk_size, (long long)o->clip_length);
	if (!o->allow_over_boundaries && o->train_chunk_size < 2 && o->train_chunk_size != o->clip_length)
		return fv_error(FV_ERR_CONFIG,
		                "dataloader.train_chunk_size must be at least 2 when allow_over_boundaries "
		                "is false (chunks are shifted by up to train_chunk_size / 2)");
	for (size_t i = 0; i < o->n_test_names; i++)
		if (o->test_names[i] == NULL)
			return fv_error(FV_ERR_CONFIG, "data_io.test_names[%zu] is null", i);
	return FV_OK;
}

static fv_status check_directory(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return fv_error(errno == ENOENT ? FV_ERR_NOTFOUND : FV_ERR_IO,
		                "data directory '%s' cannot be read: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fv_error(FV_ERR_IO, "data directory '%s' is not a directory", dir);
	return FV_OK;
}

/* Test names that no session has: harmless one by one (openretina skips
** them), but when none is found the data has no test set at all, which is
** nearly always a misnamed stimulus. */
static fv_status check_test_names(const reader *r)
{
	if (r->opt->n_test_names == 0)
		return FV_OK;
	for (size_t i = 0; i < r->opt->n_test_names; i++)
		if (r->test_name_found[i])
			return FV_OK;
	char names[512] = "";
	for (size_t i = 0, at = 0; i < r->opt->n_test_names && at < sizeof names - 1; i++)
		at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "",
		                       r->opt->test_names[i]);
	return fv_error(FV_ERR_NOTFOUND,
	                "%s: none of the test stimuli (data_io.test_names: %s) has responses in any "
	                "session",
	                r->dir, names);
}

/* a.h5 and a.hdf5 would both be session 'a'. */
static fv_status check_duplicate_sessions(const char *dir, char *const *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t stem_i = (size_t)(strrchr(files[i], '.') - files[i]);
		for (size_t j = i + 1; j < n; j++) {
			size_t stem_j = (size_t)(strrchr(files[j], '.') - files[j]);
			if (stem_i == stem_j && strncmp(files[i], files[j], stem_i) == 0)
				return fv_error(FV_ERR_FORMAT, "%s: %s and %s: two files for session '%.*s'",
				                dir, files[i], files[j], (int)stem_i, files[i]);
		}
	}
	return FV_OK;
}

static int compare_sessions(const void *a, const void *b)
{
	return strcmp(((const fv__session *)a)->name, ((const fv__session *)b)->name);
}

static fv_status read_directory(fv_data *d, reader *r)
{
	char **files;
	size_t n_files;
	fv_status rc = fv__data_list_dir(d->dir, ".h5", ".hdf5", &files, &n_files);
	if (rc != FV_OK)
		return rc;
	if (n_files == 0)
		rc = fv_error(FV_ERR_NOTFOUND, "%s: no session files (*.h5 or *.hdf5)", d->dir);
	if (rc == FV_OK)
		rc = check_duplicate_sessions(d->dir, files, n_files);
	if (rc == FV_OK && (d->sessions = fv__calloc(n_files, sizeof *d->sessions)) == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == FV_OK && i < n_files; i++) {
		d->n_sessions++;
		rc = open_session(r, files[i], i);
	}
	fv__data_free_names(files, n_files);
	if (rc != FV_OK)
		return rc;
	drop_unshown(d);
	if ((rc = check_test_names(r)) != FV_OK)
		return rc;
	return fv__data_finish(d, r->size);
}

fv_status fv__data_finish(fv_data *d, const int64_t input_shape[3])
{
	qsort(d->sessions, d->n_sessions, sizeof *d->sessions, compare_sessions);
	for (int i = 0; i < 3; i++)
		d->info.input_shape[i] = input_shape[i];
	return fv__data_build_info(d);
}

void fv__data_keep_options(fv_data *d, const fv_data_options *o)
{
	d->opt = *o;
	d->opt.data_dir = NULL;
	d->opt.test_names = NULL;
	d->opt.n_test_names = 0;
	d->opt.validation_clip_indices = NULL;
	d->opt.n_validation_clip_indices = 0;
	memset(d->opt.test_names_storage_, 0, sizeof d->opt.test_names_storage_);
}

fv_status fv_data_open(const fv_data_options *o, fv_data **out)
{
	*out = NULL;
	fv_status rc = check_options(o);
	if (rc != FV_OK || (rc = check_directory(o->data_dir)) != FV_OK)
		return rc;
	fv_data *d = fv__calloc(1, sizeof *d);
	reader r = {.opt = o, .d = d, .dir = o->data_dir};
	r.size[0] = o->color_channels > 0 ? o->color_channels : 0;
	r.size[1] = o->video_height > 0 ? o->video_height : 0;
	r.size[2] = o->video_width > 0 ? o->video_width : 0;
	snprintf(r.size_source, sizeof r.size_source,
	         "(data_io.color_channels, video_height, video_width)");
	r.stimulus_dir = fv__data_path_join(o->data_dir, "stimuli");
	r.test_name_found = fv__calloc(o->n_test_names ? o->n_test_names : 1, sizeof(bool));
	if (d == NULL || r.stimulus_dir == NULL || r.test_name_found == NULL ||
	    (d->dir = fv__data_strdup(o->data_dir)) == NULL) {
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	} else {
		fv__data_keep_options(d, o);
		fv__h5_quiet_begin();
		rc = read_directory(d, &r);
		fv__h5_quiet_end();
	}
	free(r.stimulus_dir);
	free(r.test_name_found);
	if (rc != FV_OK) {
		fv_data_close(d);
		return rc;
	}
	*out = d;
	return FV_OK;
}

void fv__movie_set_free(fv__movie_set *s)
{
	free(s->stimulus);
	if (!s->movie_borrowed)
		fv_tensor_free(s->movie);
	fv_tensor_free(s->responses);
	fv_tensor_free(s->by_trial);
	free(s->starts);
	memset(s, 0, sizeof *s);
}

static void session_free(fv__session *s)
{
	free(s->name);
	free(s->path);
	fv__movie_set_free(&s->train);
	fv__movie_set_free(&s->validation);
	for (size_t i = 0; i < s->n_test; i++)
		fv__movie_set_free(&s->tests[i]);
	free(s->tests);
	free(s->val_clips);
	fv_tensor_free(s->mean_activity);
	for (size_t i = 0; i < s->n_info; i++) {
		free(s->info_names[i]);
		fv_tensor_free(s->info[i]);
	}
	free(s->info_names);
	free(s->info);
	free(s->movie_key);
	fv__data_free_names(s->filter_names, s->n_filters);
	free(s->filter_removed);
}

void fv_data_close(fv_data *d)
{
	if (d == NULL)
		return;
	fv__data_free_info(d);
	for (size_t i = 0; i < d->n_sessions; i++)
		session_free(&d->sessions[i]);
	free(d->sessions);
	fv__data_free_names(d->shared_keys, d->n_shared);
	for (size_t i = 0; i < d->n_shared; i++)
		fv_tensor_free(d->shared[i]);
	free(d->shared);
	free(d->dir);
	free(d);
}

/* ---- accessors ------------------------------------------------------------------ */

size_t fv_data_n_sessions(const fv_data *d)
{
	return d->n_sessions;
}

const char *fv_data_session_name(const fv_data *d, size_t session)
{
	return session < d->n_sessions ? d->sessions[session].name : NULL;
}

int64_t fv_data_find_session(const fv_data *d, const char *name)
{
	for (size_t i = 0; i < d->n_sessions; i++)
		if (strcmp(d->sessions[i].name, name) == 0)
			return (int64_t)i;
	return -1;
}

const fv_movie_set *fv_data_train(const fv_data *d, size_t session)
{
	return session < d->n_sessions ? &d->sessions[session].train.pub : NULL;
}

const fv_movie_set *fv_data_validation(const fv_data *d, size_t session)
{
	return session < d->n_sessions ? &d->sessions[session].validation.pub : NULL;
}

size_t fv_data_n_test(const fv_data *d, size_t session)
{
	return session < d->n_sessions ? d->sessions[session].n_test : 0;
}

const fv_movie_set *fv_data_test(const fv_data *d, size_t session, size_t i)
{
	if (session >= d->n_sessions || i >= d->sessions[session].n_test)
		return NULL;
	return &d->sessions[session].tests[i].pub;
}

const fv_movie_set *fv_data_test_named(const fv_data *d, size_t session, const char *stimulus)
{
	for (size_t i = 0; i < fv_data_n_test(d, session); i++)
		if (strcmp(d->sessions[session].tests[i].stimulus, stimulus) == 0)
			return &d->sessions[session].tests[i].pub;
	return NULL;
}

size_t fv_data_n_filters(const fv_data *d, size_t session)
{
	return session < d->n_sessions ? d->sessions[session].n_filters : 0;
}

const char *fv_data_filter(const fv_data *d, size_t session, size_t i, int64_t *removed)
{
	*removed = 0;
	if (i >= fv_data_n_filters(d, session))
		return NULL;
	*removed = d->sessions[session].filter_removed[i];
	return d->sessions[session].filter_names[i];
}

const int64_t *fv_data_validation_clips(const fv_data *d, size_t session, size_t *n)
{
	if (session >= d->n_sessions) {
		*n = 0;
		return NULL;
	}
	*n = d->sessions[session].n_val_clips;
	return d->sessions[session].val_clips;
}
