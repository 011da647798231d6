/*
** neuron_split.c: openretina's NeuronDataSplitHoefling and the
** get_movie_dataloader calls of natmov_dataloaders_v2 for one session.
** The validation responses are the validation clips found through the
** session's presentation order (argsort of its random_sequences column);
** the training responses the other frames in recorded order, which is the
** order of that sequence's training movie.  roi_coords come from the ROI
** mask (transform_roi_mask / roi2readout).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natmov.h"
#include "upsample.h"

/* The session recorded in the left eye but labelled so (openretina's fix). */
#define MISLABELLED_SESSION "session_2_ventral2_20200626"

static fv_status set_number(fv_dvalue *map, const char *key, double x)
{
	return fv_dvalue_set(map, key, fv_dvalue_number(x));
}

/* The columns of src (n, t) kept by `keep` (NULL: all) as the rows of dst (kept, n). */
static void columns_as_rows(const fv_real *src, int64_t n, int64_t t, const bool *keep,
                            fv_real *dst)
{
	for (int64_t j = 0, row = 0; j < t; j++) {
		if (keep != NULL && !keep[j])
			continue;
		for (int64_t i = 0; i < n; i++)
			dst[row * n + i] = src[i * t + j];
		row++;
	}
}

/* (neurons, T) as (T, neurons), the frames of `keep` only (NULL: all). */
static fv_tensor *time_first(const fv_tensor *r, const bool *keep, int64_t kept)
{
	fv_tensor *out = fv_tensor_new(2, (int64_t[]){kept, r->shape[0]});
	if (out != NULL)
		columns_as_rows(r->data, r->shape[0], r->shape[1], keep, out->data);
	return out;
}

/* np.argsort of a sequence of clip numbers (distinct: any sort agrees). */
static void argsort(const fv_tensor *rs, int64_t col, int64_t *order)
{
	int64_t n = rs->shape[0], k = rs->shape[1];
	for (int64_t i = 0; i < n; i++)
		order[i] = i;
	for (int64_t i = 1; i < n; i++) /* insertion sort: stable, n is about a hundred */
		for (int64_t j = i; j > 0 && rs->data[order[j - 1] * k + col] > rs->data[order[j] * k + col]; j--) {
			int64_t tmp = order[j];
			order[j] = order[j - 1];
			order[j - 1] = tmp;
		}
}

/* compute_validation_responses: validation (clips x L, N) and training. */
static fv_status split_responses(const natmov *nm, const char *name, const fv_tensor *train,
                                 int64_t seq, fv_tensor **tr, fv_tensor **val)
{
	int64_t L = nm->clip_length, t = train->shape[1], n = train->shape[0];
	int64_t clips = nm->random_sequences->shape[0];
	int64_t *order = malloc((size_t)clips * sizeof *order);
	bool *keep = malloc((size_t)(t > 0 ? t : 1));
	*val = fv_tensor_new(2, (int64_t[]){(int64_t)nm->n_val * L, n});
	fv_status rc = order && keep && *val ? FV_OK : fv_error(FV_ERR_NOMEM, "out of memory");
	if (rc == FV_OK) {
		argsort(nm->random_sequences, seq, order);
		memset(keep, 1, (size_t)t);
	}
	int64_t kept = t;
	for (size_t v = 0; rc == FV_OK && v < nm->n_val; v++) {
		int64_t grab = nm->val[v] < clips ? order[nm->val[v]] : -1;
		if (grab < 0 || (grab + 1) * L > t) {
			rc = fv_error(FV_ERR_SHAPE, "natmov_dataloaders_v2: session '%s': validation clip "
			              "%lld is not within its %lld response frames", name,
			              (long long)nm->val[v], (long long)t);
			break;
		}
		for (int64_t f = 0; f < L; f++) {
			for (int64_t i = 0; i < n; i++)
				(*val)->data[((int64_t)v * L + f) * n + i] = train->data[i * t + grab * L + f];
			kept -= keep[grab * L + f];
			keep[grab * L + f] = false;
		}
	}
	if (rc == FV_OK && (*tr = time_first(train, keep, kept)) == NULL)
		rc = fv_errcode();
	free(order);
	free(keep);
	return rc;
}

/* roi2readout of every ROI: the mean pixel of mask == -roi_id, mapped to [-1, 1]. */
static fv_tensor *roi_coords(const fv_tensor *mask, const fv_tensor *ids)
{
	int64_t h = mask->shape[0], w = mask->shape[1];
	fv_tensor *out = fv_tensor_new(2, (int64_t[]){ids->numel, 2});
	double *ys = out != NULL ? malloc((size_t)(h * w) * sizeof *ys) : NULL;
	double *xs = ys != NULL ? malloc((size_t)(h * w) * sizeof *xs) : NULL;
	for (int64_t r = 0; xs != NULL && r < ids->numel; r++) {
		int64_t k = 0;
		for (int64_t y = 0; y < h; y++)
			for (int64_t x = 0; x < w; x++)
				if (mask->data[y * w + x] == -ids->data[r]) {
					ys[k] = (double)y / 25.0 + 2.75; /* 50 um readout / 2 um mask pixels */
					xs[k++] = (double)x / 25.0 + 2.75;
				}
		double my = hoef_pairwise_sum(ys, k) / (double)k, mx = hoef_pairwise_sum(xs, k) / (double)k;
		out->data[r * 2] = (fv_real)(float)((my / 8 - 0.5) * 2);
		out->data[r * 2 + 1] = (fv_real)(float)((mx / 8 - 0.5) * 2);
	}
	if (out != NULL && xs == NULL) {
		fv_tensor_free(out);
		out = NULL;
		fv_error(FV_ERR_NOMEM, "out of memory");
	}
	free(ys);
	free(xs);
	return out;
}

static bool has_nan(const fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		if (isnan(t->data[i]))
			return true;
	return false;
}

/* One MovieDataLoader (get_movie_dataloader's arguments). */
static fv_status add_loader(natmov *nm, const char *name, const char *eye, const char *fold,
                            int64_t seq, fv_tensor *responses, fv_tensor *by_trial,
                            const fv_dvalue *kw, const fv_tensor *coords, fv_dvalue *fold_map)
{
	char movie[64];
	fv_dvalue *l = fv_dvalue_map(FV_DV_MOVIE_LOADER);
	fv_status rc = l != NULL ? FV_OK : fv_errcode();
	if (rc == FV_OK && has_nan(responses))
		rc = fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: session '%s': the %s responses "
		              "hold NaN (openretina skips the loader, which training cannot do without)",
		              name, fold);
	if (rc == FV_OK)
		rc = natmov_movie(nm, eye, fold, seq, movie, sizeof movie);
	bool test = strcmp(fold, "test") == 0, train = strcmp(fold, "train") == 0;
	int64_t chunk = train ? nm->train_chunk_size : test ? nm->test->shape[1] : nm->clip_length;
	if (rc == FV_OK)
		rc = fv_dvalue_set(l, "movie", fv_dvalue_text(movie));
	if (rc == FV_OK) {
		rc = fv_dvalue_set(l, "responses", fv_dvalue_tensor(responses));
		responses = NULL;
	}
	if (rc == FV_OK && by_trial != NULL) {
		rc = fv_dvalue_set(l, "responses_by_trial", fv_dvalue_tensor(by_trial));
		by_trial = NULL;
	}
	if (rc == FV_OK)
		rc = fv_dvalue_set(l, "start_indices", natmov_starts(nm, fold));
	if (rc == FV_OK)
		rc = set_number(l, "chunk_size", (double)chunk);
	if (rc == FV_OK)
		rc = set_number(l, "batch_size", (double)(test ? nm->test_batch_size : nm->batch_size));
	if (rc == FV_OK)
		rc = set_number(l, "scene_length", (double)nm->clip_length);
	if (rc == FV_OK)
		rc = set_number(l, "allow_over_boundaries", nm->allow_over_boundaries);
	static const char *const kept[] = {"roi_ids", "group_assignment"};
	for (size_t i = 0; rc == FV_OK && i < 2; i++)
		if (fv_dvalue_get(kw, kept[i]) != NULL)
			rc = fv_dvalue_set(l, kept[i], fv_dvalue_copy(fv_dvalue_get(kw, kept[i])));
	if (rc == FV_OK && coords != NULL)
		rc = fv_dvalue_set(l, "roi_coords", fv_dvalue_tensor(fv_tensor_clone(coords)));
	fv_tensor_free(responses);
	fv_tensor_free(by_trial);
	if (rc == FV_OK)
		return fv_dvalue_set(fold_map, name, l);
	fv_dvalue_free(l);
	return rc;
}

/* (trials, N, T) as the loader keeps them: (trials, T, N). */
static fv_tensor *trials_time_first(const fv_tensor *a)
{
	if (a == NULL || a->ndim != 3)
		return NULL;
	int64_t k = a->shape[0], n = a->shape[1], t = a->shape[2];
	fv_tensor *out = fv_tensor_new(3, (int64_t[]){k, t, n});
	for (int64_t r = 0; out != NULL && r < k; r++)
		columns_as_rows(a->data + r * n * t, n, t, NULL, out->data + r * t * n);
	return out;
}

static fv_status session_eye(const char *name, const fv_dvalue *kw, const char **eye, int64_t *seq,
                             int64_t n_seq)
{
	const fv_dvalue *e = fv_dvalue_get(kw, "eye");
	*eye = fv_dvalue_text_of(e) != NULL ? fv_dvalue_text_of(e) : "right";
	if (strcmp(name, MISLABELLED_SESSION) == 0)
		*eye = "right";
	if (strcmp(*eye, "left") != 0 && strcmp(*eye, "right") != 0)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: session '%s': eye '%s', expected "
		                "left or right", name, *eye);
	double s = fv_dvalue_number_of(fv_dvalue_get(kw, "scan_sequence_idx"));
	if (isnan(s) || s != floor(s) || s < 0 || s >= (double)n_seq)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: session '%s': scan_sequence_idx "
		                "should be a sequence number below %lld (random_sequences' columns)",
		                name, (long long)n_seq);
	*seq = (int64_t)s;
	return FV_OK;
}

fv_status natmov_session(natmov *nm, const char *name, const fv_dvalue *split,
                         fv_dvalue *loaders[3])
{
	const fv_dvalue *kw = fv_dvalue_get(split, "session_kwargs");
	const fv_tensor *train = fv_dvalue_tensor_of(fv_dvalue_get(split, "train"));
	const fv_tensor *test = fv_dvalue_tensor_of(fv_dvalue_at(fv_dvalue_get(split, "test_dict"), 0));
	const fv_tensor *trials = fv_dvalue_tensor_of(
		fv_dvalue_get(fv_dvalue_get(split, "test_by_trial_dict"), "test"));
	const fv_tensor *mask = fv_dvalue_tensor_of(fv_dvalue_get(kw, "roi_mask"));
	const fv_tensor *ids = fv_dvalue_tensor_of(fv_dvalue_get(kw, "roi_ids"));
	const char *eye;
	int64_t seq = 0;
	fv_status rc = session_eye(name, kw, &eye, &seq, nm->random_sequences->shape[1]);
	if (rc != FV_OK)
		return rc;
	if (train == NULL || test == NULL || fv_dvalue_size(fv_dvalue_get(split, "test_dict")) != 1)
		return fv_error(FV_ERR_FORMAT, "natmov_dataloaders_v2: session '%s': expected train "
		                "responses and one test stimulus", name);
	fv_tensor *coords = mask != NULL && ids != NULL && mask->ndim == 2 ? roi_coords(mask, ids) : NULL;
	if (mask != NULL && ids != NULL && mask->ndim == 2 && coords == NULL)
		return fv_errcode();
	fv_tensor *tr = NULL, *val = NULL;
	rc = split_responses(nm, name, train, seq, &tr, &val);
	fv_tensor *avg = rc == FV_OK ? time_first(test, NULL, test->shape[1]) : NULL;
	fv_tensor *by_trial = rc == FV_OK ? trials_time_first(trials) : NULL;
	if (rc == FV_OK && avg == NULL)
		rc = fv_errcode();
	if (rc == FV_OK) {
		rc = add_loader(nm, name, eye, "train", seq, tr, NULL, kw, coords, loaders[0]);
		tr = NULL;
	}
	if (rc == FV_OK) {
		rc = add_loader(nm, name, eye, "validation", seq, val, NULL, kw, coords, loaders[1]);
		val = NULL;
	}
	if (rc == FV_OK) {
		rc = add_loader(nm, name, eye, "test", seq, avg, by_trial, kw, coords, loaders[2]);
		avg = by_trial = NULL;
	}
	fv_tensor_free(tr);
	fv_tensor_free(val);
	fv_tensor_free(avg);
	fv_tensor_free(by_trial);
	fv_tensor_free(coords);
	return rc;
}
