/*
** data_from_loaders.c: a data set from what a dataloader step returns
** (FV_DV_DATALOADERS): per fold and session, get_movie_dataloader's
** arguments.  The loaders' tensors move into the data set (no copy); a
** movie several sessions share (the DataLoaders' "movies" map) is owned by
** the first movie set that uses it and only pointed at by the others.
** data_info is openretina's compute_data_info of the steps' values: the
** neurons and mean activity of each ResponsesTrainTestSplit's train
** responses, its session_kwargs, the stimuli's normalisation.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "data/data_internal.h"
#include "fovea/data_plugin.h"

/* The shared movies, taken one by one as loaders name them. */
typedef struct movie_pool {
	fv_dvalue *movies;     /* name -> tensor (NULL when the loaders share none) */
	size_t n;
	char **names;          /* taken so far, and where their tensor went */
	fv_tensor **tensors;
} movie_pool;

typedef struct where {
	const char *fold, *session;
} where;

static fv_status field_error(const where *w, fv_status code, const char *field,
                             const char *what)
{
	return fv_error(code, "dataloader: fold '%s', session '%s': %s %s", w->fold, w->session,
	                field, what);
}

static fv_status number_field(const where *w, const fv_dvalue *l, const char *key, double dflt,
                              bool required, int64_t *out)
{
	const fv_dvalue *v = fv_dvalue_get(l, key);
	if (v == NULL || fv_dvalue_kind_of(v) == FV_DV_NULL) {
		if (required)
			return field_error(w, FV_ERR_FORMAT, key, "is missing");
		*out = (int64_t)dflt;
		return FV_OK;
	}
	double x = fv_dvalue_number_of(v);
	if (isnan(x) || x != floor(x) || fabs(x) > 9e15)
		return field_error(w, FV_ERR_FORMAT, key, "should be an integer");
	*out = (int64_t)x;
	return FV_OK;
}

/* A tensor field of `ndim` dims handed over (NULL, FV_OK when optional and absent). */
static fv_status take_tensor(const where *w, fv_dvalue *l, const char *key, int ndim,
                             bool required, fv_tensor **out)
{
	*out = NULL;
	fv_dvalue *v = (fv_dvalue *)fv_dvalue_get(l, key);
	if (v == NULL || fv_dvalue_kind_of(v) == FV_DV_NULL)
		return required ? field_error(w, FV_ERR_FORMAT, key, "is missing") : FV_OK;
	const fv_tensor *t = fv_dvalue_tensor_of(v);
	if (t == NULL || t->ndim != ndim) {
		char msg[96];
		snprintf(msg, sizeof msg, "should be a %d-D array, got %s", ndim,
		         t != NULL ? fv_shape_str(t->ndim, t->shape)
		                   : fv_dvalue_kind_name(fv_dvalue_kind_of(v)));
		return field_error(w, FV_ERR_SHAPE, key, msg);
	}
	*out = fv_dvalue_take_tensor(v);
	return FV_OK;
}

/* The movie: a tensor of its own, or a name in the pool. */
static fv_status loader_movie(const where *w, fv_dvalue *l, movie_pool *pool, fv__movie_set *set)
{
	const char *name = fv_dvalue_text_of(fv_dvalue_get(l, "movie"));
	if (name == NULL) {
		fv_status rc = take_tensor(w, l, "movie", 4, true, &set->movie);
		set->pub.movie = set->movie;
		return rc;
	}
	for (size_t i = 0; i < pool->n; i++)
		if (strcmp(pool->names[i], name) == 0) {
			set->pub.movie = pool->tensors[i];
			return FV_OK;
		}
	fv_dvalue *v = (fv_dvalue *)fv_dvalue_get(pool->movies, name);
	const fv_tensor *t = fv_dvalue_tensor_of(v);
	if (t == NULL || t->ndim != 4)
		return field_error(w, FV_ERR_NOTFOUND, "movie", "names no 4-D movie of the "
		                   "DataLoaders' \"movies\"");
	size_t cap = fv_dvalue_size(pool->movies);
	if (pool->names == NULL) {
		pool->names = fv__calloc(cap, sizeof *pool->names);
		pool->tensors = fv__calloc(cap, sizeof *pool->tensors);
		if (pool->names == NULL || pool->tensors == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	pool->names[pool->n] = fv__data_strdup(name);
	if (pool->names[pool->n] == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	set->movie = fv_dvalue_take_tensor(v);
	set->pub.movie = pool->tensors[pool->n++] = set->movie;
	return FV_OK;
}

/* get_movie_dataloader's start indices when none are given. */
static int64_t default_step(const where *w, int64_t chunk, int64_t scene, int64_t frames,
                            bool over)
{
	if (strcmp(w->fold, "train") == 0)
		return chunk;
	if (strcmp(w->fold, "validation") == 0)
		return scene;
	return over ? frames : scene;
}

static fv_status loader_starts(const where *w, const fv_dvalue *l, int64_t chunk, int64_t scene,
                               bool over, fv__movie_set *set)
{
	const fv_dvalue *v = fv_dvalue_get(l, "start_indices");
	int64_t frames = set->pub.movie->shape[1], n;
	const fv_tensor *t = fv_dvalue_tensor_of(v);
	bool given = v != NULL && fv_dvalue_kind_of(v) != FV_DV_NULL;
	int64_t step = default_step(w, chunk, scene, frames, over);
	if (given && t == NULL && fv_dvalue_kind_of(v) != FV_DV_LIST)
		return field_error(w, FV_ERR_FORMAT, "start_indices", "should be a list or an array");
	n = given ? (t != NULL ? t->numel : (int64_t)fv_dvalue_size(v))
	          : (step > 0 ? (frames + step - 1) / step : 0);
	set->starts = fv__malloc((size_t)(n > 0 ? n : 1) * sizeof *set->starts);
	if (set->starts == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	bool train = strcmp(w->fold, "train") == 0;
	for (int64_t i = 0; i < n; i++) {
		double x = !given ? (double)(i * step)
		           : t != NULL ? (double)t->data[i] : fv_dvalue_number_of(fv_dvalue_at(v, (size_t)i));
		/* A training chunk is clamped into the movie when shifted; the
		** others are read as they start. */
		int64_t last = train ? frames - 1 : frames - chunk;
		if (isnan(x) || x != floor(x) || x < 0 || x > (double)last) {
			char msg[160];
			snprintf(msg, sizeof msg, "entry %lld (%g) is outside the movie: %lld frames, "
			         "chunk_size %lld", (long long)i, x, (long long)frames, (long long)chunk);
			return field_error(w, FV_ERR_SHAPE, "start_indices", msg);
		}
		set->starts[i] = (int64_t)x;
	}
	set->pub.n_samples = n;
	set->pub.start_indices = set->starts;
	return FV_OK;
}

typedef struct sampler {
	int64_t scene;
	bool over;
	bool known;
} sampler;

/* One loader into `set`; the scene length and allow_over_boundaries must
** agree with every other loader's (fovea's batches use one setting). */
static fv_status read_loader(const where *w, fv_dvalue *l, movie_pool *pool, sampler *smp,
                             fv__movie_set *set)
{
	const char *cls = fv_dvalue_class(l);
	if (cls == NULL || strcmp(cls, FV_DV_MOVIE_LOADER) != 0)
		return field_error(w, FV_ERR_FORMAT, "the loader", "should be a " FV_DV_MOVIE_LOADER);
	int64_t chunk = 0, batch = 0, scene = 0, over = 1, drop = 1;
	fv_status rc = number_field(w, l, "chunk_size", 0, true, &chunk);
	if (rc == FV_OK)
		rc = number_field(w, l, "batch_size", 0, true, &batch);
	if (rc == FV_OK)
		rc = number_field(w, l, "scene_length", 0, true, &scene);
	if (rc == FV_OK)
		rc = number_field(w, l, "allow_over_boundaries", 1, false, &over);
	if (rc == FV_OK)
		rc = number_field(w, l, "drop_last", 1, false, &drop);
	if (rc == FV_OK && (chunk < 1 || batch < 1 || scene < 1))
		rc = field_error(w, FV_ERR_FORMAT, "chunk_size, batch_size and scene_length",
		                 "should be positive");
	if (rc == FV_OK && smp->known && (smp->scene != scene || smp->over != (over != 0)))
		rc = field_error(w, FV_ERR_FORMAT, "scene_length / allow_over_boundaries",
		                 "differ from another loader's");
	if (rc != FV_OK)
		return rc;
	smp->known = true;
	smp->scene = scene;
	smp->over = over != 0;
	rc = loader_movie(w, l, pool, set);
	if (rc == FV_OK)
		rc = take_tensor(w, l, "responses", 2, true, &set->responses);
	if (rc == FV_OK)
		rc = take_tensor(w, l, "responses_by_trial", 3, false, &set->by_trial);
	if (rc != FV_OK)
		return rc;
	const fv_tensor *m = set->pub.movie;
	if (chunk > m->shape[1] || set->responses->shape[0] < m->shape[1])
		return field_error(w, FV_ERR_SHAPE, "responses / chunk_size", "do not fit the movie: "
		                   "need chunk_size <= movie frames <= response frames");
	rc = loader_starts(w, l, chunk, scene, over != 0, set);
	if (rc != FV_OK)
		return rc;
	bool drops = strcmp(w->fold, "train") == 0 && drop != 0;
	fv_movie_set *p = &set->pub;
	p->movie = m;
	p->responses = set->responses;
	p->responses_by_trial = set->by_trial;
	p->chunk_size = chunk;
	p->batch_size = batch;
	p->n_batches = drops ? p->n_samples / batch : (p->n_samples + batch - 1) / batch;
	return FV_OK;
}

/* ---- data_info: compute_data_info of the steps' values ---------------------------- */

static fv_status session_mean(fv__session *s, const fv_dvalue *resp)
{
	const fv_tensor *r = fv_dvalue_tensor_of(fv_dvalue_get(resp, "train"));
	if (r == NULL || r->ndim != 2 || r->shape[0] != s->n_neurons)
		return fv_error(FV_ERR_SHAPE, "session '%s': data_io.responses gives no (%lld, T) "
		                "train responses, as its loaders have %lld neurons", s->name,
		                (long long)s->n_neurons, (long long)s->n_neurons);
	fv__session_raw raw = {.train_responses = fv__malloc((size_t)(r->numel ? r->numel : 1) *
	                                                     sizeof(double)),
	                       /* numpy's float64 mean (compute_data_info of the
	                       ** readers' float64 arrays), of the float32 values held */
	                       .train_responses_f32 = false,
	                       .n_train_frames = r->shape[1]};
	if (raw.train_responses == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (int64_t i = 0; i < r->numel; i++)
		raw.train_responses[i] = r->data[i];
	fv_status rc = fv__session_mean_activity(s, &raw);
	free(raw.train_responses);
	return rc;
}

/* The numeric session_kwargs (strings such as the eye are not arrays). */
static fv_status session_kwargs(fv__session *s, const fv_dvalue *kw)
{
	size_t n = fv_dvalue_size(kw);
	s->info_names = fv__calloc(n ? n : 1, sizeof *s->info_names);
	s->info = fv__calloc(n ? n : 1, sizeof *s->info);
	if (s->info_names == NULL || s->info == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const fv_dvalue *v = fv_dvalue_at(kw, i);
		fv_tensor *t = NULL;
		if (fv_dvalue_tensor_of(v) != NULL) {
			t = fv_tensor_clone(fv_dvalue_tensor_of(v));
		} else if (fv_dvalue_kind_of(v) == FV_DV_NUMBER) {
			if ((t = fv_tensor_new(1, (int64_t[]){1})) != NULL)
				t->data[0] = (fv_real)fv_dvalue_number_of(v);
		} else {
			continue;
		}
		char *name = fv__data_strdup(fv_dvalue_key_at(kw, i));
		if (t == NULL || name == NULL) {
			fv_tensor_free(t);
			free(name);
			return fv_error(FV_ERR_NOMEM, "out of memory");
		}
		s->info_names[s->n_info] = name;
		s->info[s->n_info++] = t;
	}
	return FV_OK;
}

/* compute_data_info's stim_mean / stim_std: the shared split's, or the
** first per-session split recording them; else 0 and 1. */
static void stim_stats(const fv_dvalue *movies, fv_data_options *o)
{
	bool one = fv_dvalue_class(movies) != NULL;
	size_t n = one ? 1 : fv_dvalue_size(movies);
	for (size_t i = 0; i < n; i++) {
		const fv_dvalue *m = one ? movies : fv_dvalue_at(movies, i);
		double mean = fv_dvalue_number_of(fv_dvalue_get(m, "norm_mean"));
		double std = fv_dvalue_number_of(fv_dvalue_get(m, "norm_std"));
		if (!isnan(mean) && !isnan(std)) {
			o->norm_mean = mean;
			o->norm_std = std;
			return;
		}
	}
}

/* ---- sessions ---------------------------------------------------------------------- */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_test_fold(const char *name)
{
	return strcmp(name, "train") != 0 && strcmp(name, "validation") != 0 &&
	       strcmp(name, "movies") != 0;
}

static fv_status session_tests(fv__session *s, fv_dvalue *loaders, movie_pool *pool,
                               sampler *smp)
{
	size_t n = 0, k = fv_dvalue_size(loaders);
	const char **folds = fv__calloc(k ? k : 1, sizeof *folds);
	s->tests = fv__calloc(k ? k : 1, sizeof *s->tests);
	if (folds == NULL || s->tests == NULL) {
		free(folds);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < k; i++)
		if (is_test_fold(fv_dvalue_key_at(loaders, i)) &&
		    fv_dvalue_get(fv_dvalue_at(loaders, i), s->name) != NULL)
			folds[n++] = fv_dvalue_key_at(loaders, i);
	qsort(folds, n, sizeof *folds, compare_names);
	fv_status rc = FV_OK;
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		fv__movie_set *t = &s->tests[s->n_test++];
		where w = {folds[i], s->name};
		t->stimulus = fv__data_strdup(folds[i]);
		t->pub.session = s->name;
		t->pub.stimulus = t->stimulus;
		fv_dvalue *l = (fv_dvalue *)fv_dvalue_get(fv_dvalue_get(loaders, folds[i]), s->name);
		rc = t->stimulus == NULL ? fv_error(FV_ERR_NOMEM, "out of memory")
		                         : read_loader(&w, l, pool, smp, t);
		if (rc == FV_OK && t->responses->shape[1] != s->n_neurons)
			rc = field_error(&w, FV_ERR_SHAPE, "responses", "have another number of neurons "
			                 "than the train fold's");
	}
	free(folds);
	return rc;
}

static fv_status open_session(fv_dvalue *loaders, const char *name, const fv_dvalue *responses,
                              movie_pool *pool, sampler *smp, fv__session *s, int64_t size[3])
{
	if ((s->name = fv__data_strdup(name)) == NULL || (s->path = fv__data_strdup(name)) == NULL ||
	    (s->val_clips = fv__malloc(sizeof *s->val_clips)) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	where wt = {"train", s->name}, wv = {"validation", s->name};
	fv_dvalue *val = (fv_dvalue *)fv_dvalue_get(fv_dvalue_get(loaders, "validation"), name);
	if (val == NULL)
		return field_error(&wv, FV_ERR_NOTFOUND, "the loader", "is missing");
	s->train.pub.session = s->validation.pub.session = s->name;
	fv_status rc = read_loader(&wt, (fv_dvalue *)fv_dvalue_get(fv_dvalue_get(loaders, "train"), name),
	                           pool, smp, &s->train);
	if (rc == FV_OK)
		rc = read_loader(&wv, val, pool, smp, &s->validation);
	if (rc != FV_OK)
		return rc;
	s->n_neurons = s->train.responses->shape[1];
	const int64_t *m = s->train.pub.movie->shape;
	int64_t here[3] = {m[0], m[2], m[3]};
	if (size[0] == 0)
		memcpy(size, here, sizeof here);
	if (memcmp(size, here, sizeof here) != 0 ||
	    memcmp(s->validation.pub.movie->shape + 2, m + 2, 2 * sizeof *m) != 0 ||
	    s->validation.pub.movie->shape[0] != m[0])
		return field_error(&wt, FV_ERR_SHAPE, "movie", "frames differ from another movie's "
		                   "(channels, height and width are one input shape)");
	if (s->validation.responses->shape[1] != s->n_neurons)
		return field_error(&wv, FV_ERR_SHAPE, "responses", "have another number of neurons "
		                   "than the train fold's");
	rc = session_tests(s, loaders, pool, smp);
	const fv_dvalue *resp = fv_dvalue_get(responses, name);
	if (rc == FV_OK && resp == NULL)
		rc = fv_error(FV_ERR_NOTFOUND, "session '%s' has loaders but no responses in "
		              "data_io.responses", name);
	if (rc == FV_OK)
		rc = session_mean(s, resp);
	if (rc == FV_OK)
		rc = session_kwargs(s, fv_dvalue_get(resp, "session_kwargs"));
	return rc;
}

static fv_status check_loaders(const fv_dvalue *loaders)
{
	const char *cls = fv_dvalue_class(loaders);
	if (cls == NULL || strcmp(cls, FV_DV_DATALOADERS) != 0)
		return fv_error(FV_ERR_FORMAT, "dataloader: the step returned %s, expected "
		                FV_DV_DATALOADERS, cls != NULL ? cls
		                : fv_dvalue_kind_name(fv_dvalue_kind_of(loaders)));
	const fv_dvalue *train = fv_dvalue_get(loaders, "train");
	if (fv_dvalue_size(train) == 0)
		return fv_error(FV_ERR_FORMAT, "dataloader: no session has a train loader");
	if (fv_dvalue_get(loaders, "validation") == NULL)
		return fv_error(FV_ERR_FORMAT, "dataloader: no validation fold");
	return FV_OK;
}

static void pool_free(movie_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->tensors);
	fv_dvalue_free(p->movies);
}

fv_status fv_data_from_loaders(fv_dvalue *loaders, const fv_dvalue *responses,
                               const fv_dvalue *movies, fv_data **out)
{
	*out = NULL;
	fv_status rc = check_loaders(loaders);
	fv_data *d = rc == FV_OK ? fv__calloc(1, sizeof *d) : NULL;
	movie_pool pool = {.movies = fv_dvalue_take(loaders, "movies")};
	const fv_dvalue *train = fv_dvalue_get(loaders, "train");
	size_t n = fv_dvalue_size(train);
	if (rc == FV_OK && (d == NULL || (d->sessions = fv__calloc(n, sizeof *d->sessions)) == NULL ||
	                    (d->dir = fv__data_strdup("")) == NULL))
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	sampler smp = {0};
	int64_t size[3] = {0, 0, 0};
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		d->n_sessions++;
		rc = open_session(loaders, fv_dvalue_key_at(train, i), responses, &pool, &smp,
		                  &d->sessions[i], size);
	}
	if (rc == FV_OK) {
		fv_data_options o;
		fv_data_options_default(&o);
		o.clip_length = smp.scene;
		o.allow_over_boundaries = smp.over;
		o.train_chunk_size = d->sessions[0].train.pub.chunk_size;
		o.batch_size = d->sessions[0].train.pub.batch_size;
		stim_stats(movies, &o);
		fv__data_keep_options(d, &o);
		rc = fv__data_finish(d, size);
	}
	pool_free(&pool);
	fv_dvalue_free(loaders);
	if (rc != FV_OK) {
		fv_data_close(d);
		return rc;
	}
	*out = d;
	return FV_OK;
}
