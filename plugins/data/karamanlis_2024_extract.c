/*
** karamanlis_2024_extract.c: the stimuli of a session's .mat file, as
** load_stimuli_for_session extracts them when no cache exists: the test
** movie from frozenImages and frozenfixations ((frames, 3) in h5py's
** view), the training movie from runningImages and runningfixations
** ((trials, frames, 3)) trial after trial, every frame downsampled to
** (h, w).  Both are (1, frames, h, w) float32.
*/
#include <stdlib.h>

#include "karamanlis_2024.h"

/* The fixation movie of `images` for every row of `fix` (trial after
** trial for runningfixations, as openretina concatenates them). */
static fv_status movie(const kara_array *images, const kara_array *fix, int64_t h, int64_t w,
                       const char *path, const char *key, fv_tensor **out)
{
	int64_t stride = fix->shape[fix->ndim - 1];
	int64_t frames = fix->numel / stride;
	*out = NULL;
	if (stride < 3)
		return fv_error(FV_ERR_SHAPE, "%s: variable '%s' has %lld values per fixation; "
		                "expected 3 (image, x, y)", path, key, (long long)stride);
	fv_tensor *t = fv_tensor_new(4, (int64_t[]){1, frames, h, w});
	if (t == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for the %lld frames of '%s'", path,
		                (long long)frames, key);
	fv_status rc;
	if (sizeof(fv_real) == sizeof(float)) {
		rc = kara_fix_movie(images, fix, 0, frames, h, w, (float *)t->data, path, key);
	} else { /* a float64 build: the frames are float32 in openretina too */
		float *f = malloc((size_t)t->numel * sizeof *f);
		rc = f != NULL ? kara_fix_movie(images, fix, 0, frames, h, w, f, path, key)
		               : fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
		for (int64_t i = 0; rc == FV_OK && i < t->numel; i++)
			t->data[i] = (fv_real)f[i];
		free(f);
	}
	if (rc != FV_OK) {
		fv_tensor_free(t);
		return rc;
	}
	*out = t;
	return FV_OK;
}

fv_status kara_extract_stimuli(const char *path, int64_t h, int64_t w, fv_tensor **train,
                               fv_tensor **test)
{
	*train = *test = NULL;
	kara_mat *m = NULL;
	kara_array running = {0}, frozen = {0}, frozen_fix = {0}, running_fix = {0};
	fv_status rc = kara_mat_open(path, &m);
	/* the order openretina reads them in, so that the first missing one is named */
	if (rc == FV_OK)
		rc = kara_mat_read(m, "runningImages", 3, false, &running);
	if (rc == FV_OK)
		rc = kara_mat_read(m, "frozenImages", 3, false, &frozen);
	if (rc == FV_OK)
		rc = kara_mat_read(m, "frozenfixations", 2, false, &frozen_fix);
	if (rc == FV_OK)
		rc = kara_mat_read(m, "runningfixations", 3, false, &running_fix);
	if (rc == FV_OK)
		rc = movie(&frozen, &frozen_fix, h, w, path, "frozenfixations", test);
	if (rc == FV_OK)
		rc = movie(&running, &running_fix, h, w, path, "runningfixations", train);
	kara_array_free(&running);
	kara_array_free(&frozen);
	kara_array_free(&frozen_fix);
	kara_array_free(&running_fix);
	kara_mat_close(m); /* after the variables: matio's v7.3 ones hold the file's ids */
	if (rc != FV_OK) {
		fv_tensor_free(*test);
		*test = NULL;
	}
	return rc;
}
