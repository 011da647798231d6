/*
** data_batches.c: batches of (session, input, target), as openretina's
** LongCycler (training) and ShortCycler (validation, test) hand them to
** the model.
**
** Training, per epoch (LongCycler.__iter__ with shuffle=True): the sorted
** session names are shuffled with Python's random.shuffle; then one batch
** is taken from each session in that order, round and round, until every
** session has given as many batches as the longest one has.  Each session
** is a fresh DataLoader pass every epoch; a session that runs out starts
** another pass.  A pass of a training loader (MovieSampler.__iter__) draws,
** from numpy's global stream, a random shift for every chunk start (then
** clamps it to the movie, or to its clip when chunks may not cross clip
** boundaries) and a permutation of the chunks; the batches are consecutive
** runs of batch_size chunks, the last partial one dropped.  Draws happen
** when a pass begins, i.e. when its session's first batch is asked for, so
** the two streams advance exactly as openretina's do after
** seed_everything(seed).
*/
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "tensor/tensor_internal.h"
#include "base/base_internal.h"

/* One session's DataLoader inside an iterator. */
typedef struct loader {
	size_t session;
	const fv_movie_set *set;
	int64_t *order;    /* this pass's sample starts, in batch order */
	int64_t *scratch;  /* shifts, then the permutation, of a pass */
	int64_t *shifted;  /* the shifted starts before permuting */
	int64_t next;      /* the next batch of the pass */
	bool started;      /* a pass has begun in this epoch */
} loader;

struct fv_batch_iter {
	fv_data *d;
	bool train;
	size_t n_loaders;
	loader *loaders;
	int64_t len;       /* batches per epoch */
	int64_t epoch;     /* epochs begun */
	int64_t step;      /* batches taken in the current epoch */
	bool in_epoch;
	size_t current;    /* sequential: the loader being read */
	/* training */
	uint64_t seed;
	fv__mt19937 np_stream;
	fv__mt19937 py_stream;
	int64_t *keys;     /* loader order of this epoch */
	int64_t max_batches;
	/* the batch handed out, sized for the largest */
	fv_tensor *input;
	fv_tensor *target;
	const loader *last; /* the batch handed out: its loader and index */
	int64_t last_batch;
	int64_t input_cap;  /* elements */
	int64_t target_cap;
};

void fv_batch_iter_free(fv_batch_iter *it)
{
	if (it == NULL)
		return;
	for (size_t i = 0; i < it->n_loaders; i++) {
		free(it->loaders[i].order);
		free(it->loaders[i].scratch);
		free(it->loaders[i].shifted);
	}
	free(it->loaders);
	free(it->keys);
	fv_tensor_free(it->input);
	fv_tensor_free(it->target);
	free(it);
}

static fv_batch_iter *iter_new(fv_data *d, bool train, size_t n_loaders)
{
	fv_batch_iter *it = fv__calloc(1, sizeof *it);
	if (it != NULL) {
		it->d = d;
		it->train = train;
		it->loaders = fv__calloc(n_loaders ? n_loaders : 1, sizeof *it->loaders);
		it->keys = fv__calloc(n_loaders ? n_loaders : 1, sizeof *it->keys);
	}
	if (it == NULL || it->loaders == NULL || it->keys == NULL) {
		fv_batch_iter_free(it);
		fv_error(FV_ERR_NOMEM, "out of memory creating a batch iterator");
		return NULL;
	}
	return it;
}

static bool add_loader(fv_batch_iter *it, size_t session, const fv_movie_set *set)
{
	loader *l = &it->loaders[it->n_loaders++];
	l->session = session;
	l->set = set;
	size_t n = (size_t)(set->n_samples ? set->n_samples : 1);
	l->order = fv__malloc(n * sizeof *l->order);
	l->scratch = fv__malloc(n * sizeof *l->scratch);
	l->shifted = fv__malloc(n * sizeof *l->shifted);
	if (l->order == NULL || l->scratch == NULL || l->shifted == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory creating a batch iterator");
		return false;
	}
	memcpy(l->order, set->start_indices, (size_t)set->n_samples * sizeof *l->order);
	return true;
}

/* Room for the largest batch of any loader, so that fv_batch_next()
** never allocates and cannot fail. */
static bool reserve_buffers(fv_batch_iter *it)
{
	int64_t in = 1, tgt = 1;
	for (size_t i = 0; i < it->n_loaders; i++) {
		const fv_movie_set *set = it->loaders[i].set;
		const int64_t *m = set->movie->shape;
		int64_t b = set->batch_size, chunk = set->chunk_size;
		if (b * m[0] * chunk * m[2] * m[3] > in)
			in = b * m[0] * chunk * m[2] * m[3];
		if (b * chunk * set->responses->shape[1] > tgt)
			tgt = b * chunk * set->responses->shape[1];
	}
	it->input = fv_tensor_new(1, &in);
	it->target = fv_tensor_new(1, &tgt);
	it->input_cap = in;
	it->target_cap = tgt;
	return it->input != NULL && it->target != NULL;
}

fv_batch_iter *fv_data_train_batches(fv_data *d, uint64_t seed)
{
	if (seed > 0xffffffffULL) {
		fv_error(FV_ERR_ARG, "training seed %llu: must be between 0 and 2**32 - 1 (as numpy's)",
		         (unsigned long long)seed);
		return NULL;
	}
	fv_batch_iter *it = iter_new(d, true, d->n_sessions);
	if (it == NULL)
		return NULL;
	for (size_t i = 0; i < d->n_sessions; i++) {
		const fv_movie_set *set = fv_data_train(d, i);
		if (!add_loader(it, i, set)) {
			fv_batch_iter_free(it);
			return NULL;
		}
		if (set->n_batches > it->max_batches)
			it->max_batches = set->n_batches;
	}
	if (!reserve_buffers(it)) {
		fv_batch_iter_free(it);
		return NULL;
	}
	it->seed = seed;
	it->len = (int64_t)d->n_sessions * it->max_batches;
	fv__mt_seed_numpy(&it->np_stream, (uint32_t)seed);
	fv__mt_seed_python(&it->py_stream, seed);
	return it;
}

static fv_batch_iter *sequential(fv_data *d, const char *stimulus)
{
	fv_batch_iter *it = iter_new(d, false, d->n_sessions);
	if (it == NULL)
		return NULL;
	for (size_t i = 0; i < d->n_sessions; i++) {
		const fv_movie_set *set =
		        stimulus != NULL ? fv_data_test_named(d, i, stimulus) : fv_data_validation(d, i);
		if (set == NULL)
			continue;
		if (!add_loader(it, i, set)) {
			fv_batch_iter_free(it);
			return NULL;
		}
		it->len += set->n_batches;
	}
	if (!reserve_buffers(it)) {
		fv_batch_iter_free(it);
		return NULL;
	}
	return it;
}

fv_batch_iter *fv_data_validation_batches(fv_data *d)
{
	return sequential(d, NULL);
}

fv_batch_iter *fv_data_test_batches(fv_data *d, const char *stimulus)
{
	fv_batch_iter *it = sequential(d, stimulus);
	if (it != NULL && it->n_loaders == 0) {
		fv_error(FV_ERR_NOTFOUND, "%s: no session has responses to test stimulus '%s'", d->dir,
		         stimulus);
		fv_batch_iter_free(it);
		return NULL;
	}
	return it;
}

int64_t fv_batch_iter_len(const fv_batch_iter *it)
{
	return it->len;
}

int64_t fv_batch_iter_epoch(const fv_batch_iter *it)
{
	return it->epoch;
}

/* ---- one pass of a training loader (MovieSampler.__iter__) -------------------- */

/* gen_shifts_with_boundaries: shift each start by up to chunk/2 frames
** while its chunk stays inside its clip. */
static void shifts_within_clips(fv_batch_iter *it, loader *l, int64_t frames, int64_t clip)
{
	const fv_movie_set *set = l->set;
	int64_t n = set->n_samples, chunk = set->chunk_size;
	int64_t last_bound = frames / clip * clip; /* np.arange(0, frames + 1, clip)[-1] */
	fv__np_randint(&it->np_stream, 0, chunk / 2, n, l->scratch);
	for (int64_t i = 0; i < n; i++) {
		int64_t start = set->start_indices[i];
		/* bisect_right over the bounds, clamped to the last one */
		int64_t next_bound = (start / clip + 1) * clip;
		if (next_bound > last_bound)
			next_bound = last_bound;
		int64_t shifted = start;
		if (start + l->scratch[i] + chunk < next_bound)
			shifted = start + l->scratch[i];
		else if (start + chunk > next_bound)
			shifted = next_bound - chunk;
		l->order[i] = shifted;
	}
	if (n > 0 && l->order[n - 1] + chunk > last_bound)
		l->order[n - 1] = last_bound - chunk;
}

static void begin_pass(fv_batch_iter *it, loader *l)
{
	const fv_movie_set *set = l->set;
	const fv_data_options *o = &it->d->opt;
	int64_t n = set->n_samples, chunk = set->chunk_size, frames = set->movie->shape[1];
	l->started = true;
	l->next = 0;
	if (chunk == o->clip_length) {
		memcpy(l->order, set->start_indices, (size_t)n * sizeof *l->order);
		return;
	}
	if (o->allow_over_boundaries) {
		fv__np_randint(&it->np_stream, 0, chunk, n, l->scratch);
		for (int64_t i = 0; i < n; i++) {
			int64_t s = set->start_indices[i] + l->scratch[i];
			l->order[i] = s < frames - chunk ? s : frames - chunk;
		}
	} else {
		shifts_within_clips(it, l, frames, o->clip_length);
	}
	/* np.array(shifted)[np.random.permutation(n)] */
	memcpy(l->shifted, l->order, (size_t)n * sizeof *l->shifted);
	fv__np_permutation(&it->np_stream, n, l->scratch);
	for (int64_t i = 0; i < n; i++)
		l->order[i] = l->shifted[l->scratch[i]];
}

/* ---- stepping ------------------------------------------------------------------------- */

static void begin_epoch(fv_batch_iter *it)
{
	it->epoch++;
	it->step = 0;
	it->current = 0;
	it->in_epoch = true;
	for (size_t i = 0; i < it->n_loaders; i++) {
		it->loaders[i].started = false;
		it->loaders[i].next = 0;
	}
	if (it->train) {
		for (size_t i = 0; i < it->n_loaders; i++)
			it->keys[i] = (int64_t)i;
		fv__py_shuffle(&it->py_stream, it->keys, (int64_t)it->n_loaders);
	}
}

/* Advance by one batch: the loader and the batch index in its pass, or
** false at the end of the epoch. */
static bool advance(fv_batch_iter *it, loader **which, int64_t *batch)
{
	if (!it->in_epoch)
		begin_epoch(it);
	if (it->step >= it->len) {
		it->in_epoch = false;
		return false;
	}
	loader *l;
	if (it->train) {
		l = &it->loaders[it->keys[it->step % (int64_t)it->n_loaders]];
		if (!l->started || l->next >= l->set->n_batches)
			begin_pass(it, l);
	} else {
		while (it->loaders[it->current].next >= it->loaders[it->current].set->n_batches)
			it->current++;
		l = &it->loaders[it->current];
	}
	*which = l;
	*batch = l->next++;
	it->step++;
	return true;
}

/* Give a buffer tensor the shape of this batch (reserve_buffers made it
** large enough for any). */
static void shape_buffer(fv_tensor *t, int ndim, const int64_t *shape)
{
	t->ndim = ndim;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->numel = fv__numel(ndim, shape);
}

static void fill_batch(fv_batch_iter *it, const loader *l, int64_t batch, fv_batch *b)
{
	const fv_movie_set *set = l->set;
	const fv_tensor *movie = set->movie, *resp = set->responses;
	int64_t first = batch * set->batch_size;
	int64_t count = set->n_samples - first < set->batch_size ? set->n_samples - first
	                                                          : set->batch_size;
	int64_t c = movie->shape[0], t = movie->shape[1], hw = movie->shape[2] * movie->shape[3];
	int64_t chunk = set->chunk_size, n = resp->shape[1];
	int64_t in_shape[5] = {count, c, chunk, movie->shape[2], movie->shape[3]};
	int64_t tgt_shape[3] = {count, chunk, n};
	shape_buffer(it->input, 5, in_shape);
	shape_buffer(it->target, 3, tgt_shape);
	for (int64_t i = 0; i < count; i++) {
		int64_t s = l->order[first + i];
		for (int64_t ch = 0; ch < c; ch++)
			memcpy(it->input->data + ((i * c + ch) * chunk) * hw,
			       movie->data + (ch * t + s) * hw, (size_t)(chunk * hw) * sizeof(fv_real));
		memcpy(it->target->data + i * chunk * n, resp->data + s * n,
		       (size_t)(chunk * n) * sizeof(fv_real));
	}
	it->last = l;
	it->last_batch = batch;
	b->session = set->session;
	b->session_index = l->session;
	b->input = it->input;
	b->target = it->target;
}

bool fv_batch_next(fv_batch_iter *it, fv_batch *b)
{
	loader *l;
	int64_t batch;
	if (!advance(it, &l, &batch))
		return false;
	fill_batch(it, l, batch, b);
	return true;
}

const int64_t *fv_batch_iter_starts(const fv_batch_iter *it, int64_t *n)
{
	*n = 0;
	if (it->last == NULL)
		return NULL;
	const fv_movie_set *set = it->last->set;
	int64_t first = it->last_batch * set->batch_size;
	*n = set->n_samples - first < set->batch_size ? set->n_samples - first : set->batch_size;
	return it->last->order + first;
}

void fv_batch_iter_end_epoch(fv_batch_iter *it)
{
	it->in_epoch = false;
}

fv_status fv_batch_iter_seek(fv_batch_iter *it, int64_t epoch, int64_t batch)
{
	if (epoch < 0 || batch < 0 || batch > it->len)
		return fv_error(FV_ERR_ARG,
		                "batch iterator seek: epoch %lld, batch %lld: expected epoch >= 0 and "
		                "0 <= batch <= %lld",
		                (long long)epoch, (long long)batch, (long long)it->len);
	it->epoch = 0;
	it->step = 0;
	it->in_epoch = false;
	if (it->train) {
		fv__mt_seed_numpy(&it->np_stream, (uint32_t)it->seed);
		fv__mt_seed_python(&it->py_stream, it->seed);
	}
	loader *l;
	int64_t k;
	for (int64_t e = 0; e < epoch; e++)
		while (advance(it, &l, &k))
			;
	for (int64_t i = 0; i < batch; i++)
		advance(it, &l, &k);
	return FV_OK;
}
