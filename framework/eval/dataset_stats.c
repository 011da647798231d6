/*
** dataset_stats.c: openretina's DatasetStatistics as
** utils/frame_fingerprints.py computes it: the unique frames and
** consecutive-frame transitions of the batches each split's dataloaders
** yield (see metrics.h).
**
** A frame is known by a fingerprint of five numbers, as openretina's
** tuples; identical frames give identical fingerprints, which is all a
** count of unique ones needs.  Fingerprints go into an open-addressing hash
** set keyed by their bytes (-0.0 is stored as 0.0: Python's tuples compare
** them equal).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/metrics.h"
#include "base/base_internal.h"

#define FP 5 /* numbers in a frame's fingerprint */

typedef struct fp_set {
	size_t width;   /* doubles per key: FP (frames) or 2 * FP (transitions) */
	size_t n, cap;  /* cap is a power of two, or 0 */
	double *keys;   /* cap * width */
	bool *used;
} fp_set;

static uint64_t hash_key(const double *k, size_t width)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over the bytes */
	const unsigned char *b = (const unsigned char *)k;
	for (size_t i = 0; i < width * sizeof *k; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static bool set_grow(fp_set *s)
{
	size_t cap = s->cap ? 2 * s->cap : 1024;
	fp_set bigger = {.width = s->width, .cap = cap};
	bigger.keys = fv__malloc(cap * s->width * sizeof(double));
	bigger.used = fv__calloc(cap, sizeof(bool));
	if (bigger.keys == NULL || bigger.used == NULL) {
		free(bigger.keys);
		free(bigger.used);
		return false;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->used[i]) {
			size_t j = hash_key(s->keys + i * s->width, s->width) & (cap - 1);
			while (bigger.used[j])
				j = (j + 1) & (cap - 1);
			bigger.used[j] = true;
			memcpy(bigger.keys + j * s->width, s->keys + i * s->width,
			       s->width * sizeof(double));
		}
	bigger.n = s->n;
	free(s->keys);
	free(s->used);
	*s = bigger;
	return true;
}

static bool set_add(fp_set *s, const double *key)
{
	if (2 * (s->n + 1) > s->cap && !set_grow(s))
		return false;
	size_t j = hash_key(key, s->width) & (s->cap - 1);
	while (s->used[j]) {
		if (memcmp(s->keys + j * s->width, key, s->width * sizeof *key) == 0)
			return true;
		j = (j + 1) & (s->cap - 1);
	}
	s->used[j] = true;
	memcpy(s->keys + j * s->width, key, s->width * sizeof *key);
	s->n++;
	return true;
}

static void set_free(fp_set *s)
{
	free(s->keys);
	free(s->used);
	s->keys = NULL;
	s->used = NULL;
	s->n = s->cap = 0;
}

/* The fingerprint of frame t of clip b of an input (B, C, T, H, W). */
static void fingerprint(const fv_tensor *x, int64_t b, int64_t t, double *fp)
{
	int64_t c = x->shape[1], nt = x->shape[2], h = x->shape[3], w = x->shape[4], hw = h * w;
	int64_t m = c * hw;
	const float *clip = x->data + b * c * nt * hw;
	double sum = 0, ss = 0;
	for (int64_t ch = 0; ch < c; ch++)
		for (int64_t i = 0; i < hw; i++)
			sum += clip[(ch * nt + t) * hw + i];
	double mean = sum / (double)m;
	for (int64_t ch = 0; ch < c; ch++)
		for (int64_t i = 0; i < hw; i++) {
			double d = clip[(ch * nt + t) * hw + i] - mean;
			ss += d * d;
		}
	fp[0] = mean;
	fp[1] = m > 1 ? sqrt(ss / (double)(m - 1)) : NAN; /* torch's std: ddof 1 */
	fp[2] = clip[t * hw];
	fp[3] = clip[((c - 1) * nt + t) * hw + hw - 1];
	fp[4] = clip[t * hw + (h / 2) * w + w / 3];
	for (int i = 0; i < FP; i++)
		fp[i] += 0.0; /* -0.0 becomes 0.0 */
}

typedef struct counts {
	fp_set frames, transitions;
} counts;

/* Add every frame and transition of a batch. */
static bool add_batch(counts *k, const fv_tensor *x)
{
	double pair[2 * FP];
	for (int64_t b = 0; b < x->shape[0]; b++)
		for (int64_t t = 0; t < x->shape[2]; t++) {
			memcpy(pair, pair + FP, sizeof(double) * FP);
			fingerprint(x, b, t, pair + FP);
			if (!set_add(&k->frames, pair + FP) || (t > 0 && !set_add(&k->transitions, pair)))
				return false;
		}
	return true;
}

/* `passes` epochs of an iterator into `k` (sets of widths FP and 2 FP). */
static fv_status count_batches(fv_batch_iter *it, int passes, counts *k)
{
	if (it == NULL)
		return fv_errcode() != FV_OK ? fv_errcode()
		                             : fv_error(FV_ERR_NOMEM, "dataset statistics: out of memory");
	fv_batch b;
	fv_status rc = FV_OK;
	for (int p = 0; p < passes && rc == FV_OK; p++)
		while (rc == FV_OK && fv_batch_next(it, &b))
			if (!add_batch(k, b.input))
				rc = fv_error(FV_ERR_NOMEM, "dataset statistics: out of memory");
	fv_batch_iter_free(it);
	return rc;
}

static void counts_init(counts *k)
{
	*k = (counts){.frames = {.width = FP}, .transitions = {.width = 2 * FP}};
}

static void counts_free(counts *k)
{
	set_free(&k->frames);
	set_free(&k->transitions);
}

/* The test stimulus names over all sessions, sorted and unique. */
static fv_status test_names(fv_data *d, fv_dataset_stats *out)
{
	size_t cap = 0;
	for (size_t s = 0; s < fv_data_n_sessions(d); s++)
		cap += fv_data_n_test(d, s);
	out->test_names = fv__calloc(cap + 1, sizeof *out->test_names);
	out->unique_test_frames = fv__calloc(cap + 1, sizeof(int64_t));
	out->unique_test_transitions = fv__calloc(cap + 1, sizeof(int64_t));
	if (!out->test_names || !out->unique_test_frames || !out->unique_test_transitions)
		return fv_error(FV_ERR_NOMEM, "dataset statistics: out of memory");
	for (size_t s = 0; s < fv_data_n_sessions(d); s++)
		for (size_t i = 0; i < fv_data_n_test(d, s); i++) {
			const char *name = fv_data_test(d, s, i)->stimulus;
			size_t k = 0;
			while (k < out->n_test && strcmp(out->test_names[k], name) < 0)
				k++;
			if (k < out->n_test && strcmp(out->test_names[k], name) == 0)
				continue;
			char *copy = fv__strdup(name);
			if (copy == NULL)
				return fv_error(FV_ERR_NOMEM, "dataset statistics: out of memory");
			memmove(out->test_names + k + 1, out->test_names + k,
			        (out->n_test - k) * sizeof *out->test_names);
			out->test_names[k] = copy;
			out->n_test++;
		}
	return FV_OK;
}

/* Train and validation, and their union of frames. */
static fv_status fit_counts(fv_data *d, uint64_t seed, int train_passes, fv_dataset_stats *out)
{
	counts train, val;
	counts_init(&train);
	counts_init(&val);
	fv_status rc = count_batches(fv_data_train_batches(d, seed), train_passes, &train);
	if (rc == FV_OK)
		rc = count_batches(fv_data_validation_batches(d), 1, &val);
	if (rc == FV_OK) {
		out->unique_train_frames = (int64_t)train.frames.n;
		out->unique_train_transitions = (int64_t)train.transitions.n;
		out->unique_val_frames = (int64_t)val.frames.n;
		out->unique_val_transitions = (int64_t)val.transitions.n;
		/* the union: the training frames plus the validation ones */
		for (size_t i = 0; rc == FV_OK && i < val.frames.cap; i++)
			if (val.frames.used[i] && !set_add(&train.frames, val.frames.keys + i * FP))
				rc = fv_error(FV_ERR_NOMEM, "dataset statistics: out of memory");
		out->unique_train_val_frames = (int64_t)train.frames.n;
	}
	counts_free(&train);
	counts_free(&val);
	return rc;
}

fv_status fv_dataset_statistics(fv_data *d, uint64_t seed, int train_passes,
                                fv_dataset_stats *out)
{
	memset(out, 0, sizeof *out);
	out->n_sessions = (int64_t)fv_data_n_sessions(d);
	fv_status rc = fit_counts(d, seed, train_passes, out);
	if (rc == FV_OK)
		rc = test_names(d, out);
	for (size_t i = 0; rc == FV_OK && i < out->n_test; i++) {
		counts k;
		counts_init(&k);
		rc = count_batches(fv_data_test_batches(d, out->test_names[i]), 1, &k);
		out->unique_test_frames[i] = (int64_t)k.frames.n;
		out->unique_test_transitions[i] = (int64_t)k.transitions.n;
		counts_free(&k);
	}
	if (rc != FV_OK)
		fv_dataset_stats_free(out);
	return rc;
}

void fv_dataset_stats_free(fv_dataset_stats *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_test; i++)
		free(s->test_names[i]);
	free(s->test_names);
	free(s->unique_test_frames);
	free(s->unique_test_transitions);
	memset(s, 0, sizeof *s);
}
