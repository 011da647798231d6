/*
** data_split.c: one session's training movie cut into training and
** validation sets, and its test sets, as openretina's
** multiple_movies_dataloaders, generate_movie_splits, NeuronDataSplit and
** get_movie_dataloader cut them.
**
**  - The training movie is n_clips = T / clip_length whole clips (frames
**    after the last whole clip are never sampled).
**  - Validation clips: the given indices, or the first num_val_clips of
**    numpy.random.RandomState(seed).permutation(n_clips) (what
**    RandomState.choice(n_clips, k, replace=False) returns), in that order.
**  - The validation movie is those clips concatenated in that order; the
**    training movie the remaining clips in ascending order.  The training
**    responses drop the validation clips' frames but keep the tail after
**    the last whole clip (NeuronDataSplit masks frames, not clips).
**  - Samples: training chunks start every train_chunk_size frames;
**    validation samples are the clips; a test sample is the whole test
**    movie when allow_over_boundaries, else each clip.
*/
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

static fv_status choose_validation_clips(fv__session *s, int64_t n_clips, int64_t frames,
                                         const fv_data_options *o)
{
	const int64_t *given = o->validation_clip_indices;
	size_t k = given != NULL ? o->n_validation_clip_indices : (size_t)o->num_val_clips;
	s->val_clips = fv__malloc((k ? k : 1) * sizeof *s->val_clips);
	int64_t *perm = given == NULL ? fv__malloc((size_t)(n_clips ? n_clips : 1) * sizeof *perm) : NULL;
	if (s->val_clips == NULL || (given == NULL && perm == NULL)) {
		free(perm);
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	}
	fv_status rc = FV_OK;
	if (given != NULL) {
		for (size_t i = 0; i < k && rc == FV_OK; i++) {
			if (given[i] < 0 || given[i] >= n_clips)
				rc = fv_error(FV_ERR_CONFIG,
				              "dataloader.val_clip_indices: clip %lld is out of range: session "
				              "'%s' has %lld clips of clip_length=%lld frames (%lld training "
				              "frames)",
				              (long long)given[i], s->name, (long long)n_clips,
				              (long long)o->clip_length, (long long)frames);
			else
				s->val_clips[i] = given[i];
		}
	} else if ((int64_t)k > n_clips) {
		rc = fv_error(FV_ERR_CONFIG,
		              "dataloader.num_val_clips=%lld, but session '%s' has only %lld clips of "
		              "clip_length=%lld frames (%lld training frames)",
		              (long long)k, s->name, (long long)n_clips, (long long)o->clip_length,
		              (long long)frames);
	} else {
		fv__mt19937 mt;
		fv__mt_seed_numpy(&mt, (uint32_t)o->seed);
		fv__np_permutation(&mt, n_clips, perm);
		memcpy(s->val_clips, perm, k * sizeof *perm);
	}
	free(perm);
	s->n_val_clips = k;
	return rc;
}

/* Frames [from, from + n) of responses (neurons, T) as rows of dst (t, N). */
static void copy_frames(fv_real *dst, const double *src, int64_t n_neurons, int64_t total,
                        int64_t from, int64_t n)
{
	for (int64_t t = 0; t < n; t++)
		for (int64_t i = 0; i < n_neurons; i++)
			dst[t * n_neurons + i] = (fv_real)src[i * total + from + t];
}

/* Clip `clip` of movie (C, T, H, W) into slot `slot` of dst (C, T', H, W). */
static void copy_clip(fv_tensor *dst, int64_t slot, const fv_tensor *movie, int64_t clip,
                      int64_t len)
{
	int64_t hw = movie->shape[2] * movie->shape[3];
	for (int64_t c = 0; c < movie->shape[0]; c++)
		memcpy(dst->data + (c * dst->shape[1] + slot * len) * hw,
		       movie->data + (c * movie->shape[1] + clip * len) * hw,
		       (size_t)(len * hw) * sizeof(fv_real));
}

static fv_tensor *movie_of(const fv_tensor *like, int64_t frames)
{
	int64_t shape[4] = {like->shape[0], frames, like->shape[2], like->shape[3]};
	return fv_tensor_new(4, shape);
}

static fv_tensor *responses_of(int64_t frames, int64_t n_neurons)
{
	int64_t shape[2] = {frames, n_neurons};
	return fv_tensor_new(2, shape);
}

/* Sample starts every `step` frames below `frames`, and the counts. */
static fv_status set_samples(fv__movie_set *set, const char *session, int64_t frames,
                             int64_t chunk, int64_t step, int64_t batch_size, bool drop_last)
{
	int64_t n = step > 0 ? (frames + step - 1) / step : 0;
	set->starts = fv__malloc((size_t)(n ? n : 1) * sizeof *set->starts);
	if (set->starts == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", session);
	for (int64_t i = 0; i < n; i++)
		set->starts[i] = i * step;
	fv_movie_set *p = &set->pub;
	p->session = session;
	p->stimulus = set->stimulus;
	p->movie = set->movie;
	p->responses = set->responses;
	p->responses_by_trial = set->by_trial;
	p->chunk_size = chunk;
	p->n_samples = n;
	p->start_indices = set->starts;
	p->batch_size = batch_size;
	p->n_batches = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
	return FV_OK;
}

/* The movie of a set: borrowed from the same set of raw->movies_from (an
** earlier session cut from the same movie with the same clips), else a new
** one of `frames` frames to copy clips into. */
static fv_tensor *set_movie(fv__movie_set *set, const fv__movie_set *same, const fv__session_raw *raw,
                            int64_t frames)
{
	set->movie_borrowed = raw->movies_from != NULL;
	return set->movie_borrowed ? same->movie : movie_of(raw->train_movie, frames);
}

static fv_status build_validation(fv__session *s, const fv__session_raw *raw, int64_t len)
{
	int64_t k = (int64_t)s->n_val_clips, n = s->n_neurons, total = raw->n_train_frames;
	fv__movie_set *v = &s->validation;
	const fv__session *from = raw->movies_from;
	v->movie = set_movie(v, from ? &from->validation : NULL, raw, k * len);
	v->responses = responses_of(k * len, n);
	if (v->movie == NULL || v->responses == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	for (int64_t i = 0; i < k; i++) {
		if (from == NULL)
			copy_clip(v->movie, i, raw->train_movie, s->val_clips[i], len);
		copy_frames(v->responses->data + i * len * n, raw->train_responses, n, total,
		            s->val_clips[i] * len, len);
	}
	return FV_OK;
}

static fv_status build_train(fv__session *s, const fv__session_raw *raw, int64_t len,
                             int64_t n_clips, const bool *is_val)
{
	int64_t n = s->n_neurons, total = raw->n_train_frames, kept_clips = 0;
	for (int64_t c = 0; c < n_clips; c++)
		kept_clips += !is_val[c];
	if (kept_clips == 0)
		return fv_error(FV_ERR_CONFIG,
		                "session '%s': every one of its %lld clips is a validation clip: no "
		                "training data left",
		                s->name, (long long)n_clips);
	int64_t kept_frames = total - (n_clips - kept_clips) * len;
	fv__movie_set *t = &s->train;
	const fv__session *from = raw->movies_from;
	t->movie = set_movie(t, from ? &from->train : NULL, raw, kept_clips * len);
	t->responses = responses_of(kept_frames, n);
	if (t->movie == NULL || t->responses == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	int64_t slot = 0;
	for (int64_t c = 0; c < n_clips && from == NULL; c++)
		if (!is_val[c])
			copy_clip(t->movie, slot++, raw->train_movie, c, len);
	int64_t row = 0;
	for (int64_t f = 0; f < total; f++) {
		int64_t clip = f / len;
		if (clip < n_clips && is_val[clip])
			continue;
		copy_frames(t->responses->data + row * n, raw->train_responses, n, total, f, 1);
		row++;
	}
	return FV_OK;
}

/* openretina's _compute_test_batch_size: about the memory of a training batch. */
static int64_t test_batch_size(int64_t batch, int64_t train_chunk, int64_t test_chunk)
{
	if (test_chunk <= train_chunk)
		return batch;
	int64_t b = batch * train_chunk / test_chunk;
	return b > 1 ? b : 1;
}

static fv_status build_tests(fv__session *s, fv__session_raw *raw, const fv_data_options *o)
{
	s->tests = fv__calloc(raw->n_test ? raw->n_test : 1, sizeof *s->tests);
	if (s->tests == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	for (size_t i = 0; i < raw->n_test; i++) {
		fv__movie_set *t = &s->tests[s->n_test++];
		int64_t frames = raw->test_frames[i];
		t->stimulus = raw->test_names[i];
		t->movie = raw->test_movies[i];
		t->by_trial = raw->test_by_trial[i];
		raw->test_names[i] = NULL;
		raw->test_movies[i] = NULL;
		raw->test_by_trial[i] = NULL;
		if ((t->responses = responses_of(frames, s->n_neurons)) == NULL)
			return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
		copy_frames(t->responses->data, raw->test_responses[i], s->n_neurons, frames, 0, frames);
		/* Only whole clips are samples: a shorter last one could not be
		** batched with the others. */
		int64_t chunk = o->allow_over_boundaries ? frames : o->clip_length;
		int64_t usable = chunk > 0 ? frames / chunk * chunk : 0;
		fv_status rc = set_samples(t, s->name, usable, chunk, chunk,
		                           test_batch_size(o->batch_size, o->train_chunk_size, chunk),
		                           false);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

fv_status fv__session_split(fv__session *s, fv__session_raw *raw, const fv_data_options *o)
{
	int64_t len = o->clip_length, total = raw->n_train_frames, n_clips = total / len;
	fv_status rc = choose_validation_clips(s, n_clips, total, o);
	if (rc != FV_OK)
		return rc;
	bool *is_val = fv__calloc((size_t)(n_clips ? n_clips : 1), sizeof *is_val);
	if (is_val == NULL)
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	for (size_t i = 0; i < s->n_val_clips; i++)
		is_val[s->val_clips[i]] = true;
	rc = build_validation(s, raw, len);
	if (rc == FV_OK)
		rc = build_train(s, raw, len, n_clips, is_val);
	free(is_val);
	if (rc == FV_OK)
		rc = set_samples(&s->validation, s->name, s->validation.movie->shape[1], len, len,
		                 o->batch_size, false);
	if (rc == FV_OK)
		rc = set_samples(&s->train, s->name, s->train.movie->shape[1], o->train_chunk_size,
		                 o->train_chunk_size, o->batch_size, true);
	/* openretina clamps a shifted chunk start to frames - chunk_size: with a
	** chunk longer than the movie that start is negative, and numpy slicing
	** then wraps around into a shorter chunk; fovea would read before the
	** movie.  Neither is training, so the chunk must fit the movie. */
	if (rc == FV_OK && o->train_chunk_size > s->train.movie->shape[1])
		rc = fv_error(FV_ERR_CONFIG,
		              "session '%s': dataloader.train_chunk_size=%lld is longer than its "
		              "training movie (%lld frames after taking %zu validation clips of %lld "
		              "frames)",
		              s->name, (long long)o->train_chunk_size,
		              (long long)s->train.movie->shape[1], s->n_val_clips, (long long)len);
	if (rc == FV_OK && s->train.pub.n_batches == 0)
		rc = fv_error(FV_ERR_CONFIG,
		              "session '%s': its training movie (%lld frames) gives %lld chunks of "
		              "train_chunk_size=%lld frames, fewer than batch_size=%lld: no training batch",
		              s->name, (long long)s->train.movie->shape[1],
		              (long long)s->train.pub.n_samples, (long long)o->train_chunk_size,
		              (long long)o->batch_size);
	if (rc == FV_OK)
		rc = build_tests(s, raw, o);
	return rc;
}
