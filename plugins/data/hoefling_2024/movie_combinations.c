/*
** movie_combinations.c: openretina's get_all_movie_combinations and
** gen_start_indices (hoefling_2024/stimuli.py), built lazily: only the
** (eye, sequence) training movies some session uses are made.  A
** sequence's training movie is the clips of its column of
** random_sequences, validation clips left out, in that order; the left
** eye sees every movie mirrored (the last axis flipped).  The movies go
** into the DataLoaders' shared "movies" map, named "right/validation",
** "left/test", "right/train/3", ...
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natmov.h"

/* Clip `clip` of src (C, T, H, W) into slot `slot` of dst, mirrored when `flip`. */
static void copy_clip(fv_tensor *dst, int64_t slot, const fv_tensor *src, int64_t clip,
                      int64_t len, bool flip)
{
	int64_t h = src->shape[2], w = src->shape[3], hw = h * w;
	for (int64_t c = 0; c < src->shape[0]; c++)
		for (int64_t t = 0; t < len; t++) {
			const fv_real *in = src->data + (c * src->shape[1] + clip * len + t) * hw;
			fv_real *out = dst->data + (c * dst->shape[1] + slot * len + t) * hw;
			for (int64_t y = 0; y < h; y++)
				for (int64_t x = 0; x < w; x++)
					out[y * w + x] = in[y * w + (flip ? w - 1 - x : x)];
		}
}

static fv_tensor *movie_like(const fv_tensor *m, int64_t frames)
{
	return fv_tensor_new(4, (int64_t[]){m->shape[0], frames, m->shape[2], m->shape[3]});
}

static bool is_val_clip(const natmov *nm, int64_t clip)
{
	for (size_t i = 0; i < nm->n_val; i++)
		if (nm->val[i] == clip)
			return true;
	return false;
}

/* The reordered training movie of one sequence (apply_random_sequences). */
static fv_tensor *train_movie(const natmov *nm, int64_t seq, bool flip)
{
	const fv_tensor *rs = nm->random_sequences, *m = nm->train;
	fv_tensor *out = movie_like(m, nm->n_train_clips * nm->clip_length);
	int64_t k = 0;
	for (int64_t i = 0; out != NULL && i < rs->shape[0]; i++) {
		int64_t clip = (int64_t)rs->data[i * rs->shape[1] + seq];
		if (is_val_clip(nm, clip))
			continue;
		if (k >= nm->n_train_clips || clip < 0 || (clip + 1) * nm->clip_length > m->shape[1]) {
			fv_error(FV_ERR_SHAPE, "natmov_dataloaders_v2: random_sequences column %lld: clip "
			         "%lld %s", (long long)seq, (long long)clip,
			         k >= nm->n_train_clips ? "is one more than the training movie holds"
			                                : "is outside the training movie");
			fv_tensor_free(out);
			return NULL;
		}
		copy_clip(out, k++, m, clip, nm->clip_length, flip);
	}
	return out;
}

/* The validation clips in their order (generate_movie_splits), or the test movie. */
static fv_tensor *fold_movie(const natmov *nm, bool test, bool flip)
{
	const fv_tensor *m = test ? nm->test : nm->train;
	int64_t len = test ? m->shape[1] : nm->clip_length, n = test ? 1 : (int64_t)nm->n_val;
	fv_tensor *out = movie_like(m, n * len);
	for (int64_t i = 0; out != NULL && i < n; i++)
		copy_clip(out, i, m, test ? 0 : nm->val[i], len, flip);
	return out;
}

fv_status natmov_movie(natmov *nm, const char *eye, const char *fold, int64_t seq, char *name,
                       size_t size)
{
	bool flip = strcmp(eye, "left") == 0;
	if (strcmp(fold, "train") == 0)
		snprintf(name, size, "%s/train/%lld", eye, (long long)seq);
	else
		snprintf(name, size, "%s/%s", eye, fold);
	if (fv_dvalue_get(nm->movies, name) != NULL)
		return FV_OK;
	fv_tensor *t = strcmp(fold, "train") == 0 ? train_movie(nm, seq, flip)
	                                         : fold_movie(nm, strcmp(fold, "test") == 0, flip);
	if (t == NULL)
		return fv_errcode();
	return fv_dvalue_set(nm->movies, name, fv_dvalue_tensor(t));
}

/* gen_start_indices: train chunks every chunk size over the training clips
** (counting every validation index given), validation clips, test 0. */
fv_dvalue *natmov_starts(const natmov *nm, const char *fold)
{
	int64_t n, step;
	if (strcmp(fold, "train") == 0) {
		int64_t frames = nm->clip_length * (nm->num_clips - (int64_t)nm->n_val);
		step = nm->train_chunk_size;
		n = frames > 0 ? (frames + step - 1) / step : 0;
	} else if (strcmp(fold, "validation") == 0) {
		n = (int64_t)nm->n_val;
		step = nm->clip_length;
	} else {
		n = 1;
		step = 0;
	}
	fv_tensor *t = fv_tensor_new(1, (int64_t[]){n});
	for (int64_t i = 0; t != NULL && i < n; i++)
		t->data[i] = (fv_real)(i * step);
	return t != NULL ? fv_dvalue_tensor(t) : NULL;
}
