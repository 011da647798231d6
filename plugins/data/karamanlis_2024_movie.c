/*
** karamanlis_2024_movie.c: openretina's return_fix_movie_torch, the
** fixation movie of natural images, frame by frame, each frame downsampled
** at once (Resize acts on every frame alone, so the 600 x 800 movie is
** never held whole).
**
** Fixation f = (image k, x, y), cast to int as numpy's astype(int) does
** (towards zero).  get_ranges puts screen column c over image column
** x - 400 + c for the c in [max(400 - x, 1) - 1, min(Nx + 400 - x, 800) - 1]
** (rows likewise with 300 and y); the rest of the screen stays 0.  The
** first column of that range is image column -1 whenever 400 - x >= 1, and
** torch's indexing wraps it to the image's last column: the port keeps
** that off-by-one, and so does fovea.  Image k - 1 wraps the same way.
*/
#include <stdlib.h>
#include <string.h>

#include "karamanlis_2024.h"

/* One axis of get_ranges: the screen indices [*lo, *hi] (0-based,
** inclusive) and the image index of screen index 0 (*offset); false when
** the range is empty (openretina fails on it with an IndexError). */
static bool screen_range(int64_t tr, int64_t screen, int64_t image, int64_t *lo, int64_t *hi,
                         int64_t *offset)
{
	int64_t min = screen / 2 - tr, max = image + screen / 2 - tr;
	min = min < 0 ? 0 : min;
	max = max > screen ? screen : max;
	*lo = (min < 1 ? 1 : min) - 1;
	*hi = max - 1;
	*offset = tr - screen / 2;
	return *lo <= *hi;
}

/* astype(int) of a fixation value; false when it is no integer numpy casts. */
static bool as_int(double x, int64_t *out)
{
	if (!(x > -1e15 && x < 1e15))
		return false;
	*out = (int64_t)x;
	return true;
}

static fv_status draw(const kara_array *images, const kara_array *fixations, int64_t f,
                      float *screen, const char *file, const char *key)
{
	int64_t stride = fixations->shape[fixations->ndim - 1];
	double fix[3] = {kara_at(fixations, f * stride), kara_at(fixations, f * stride + 1),
	                 kara_at(fixations, f * stride + 2)};
	int64_t n = images->shape[0], nx = images->shape[1], ny = images->shape[2];
	int64_t k, x, y, c0, c1, r0, r1, ox, oy;
	if (!as_int(fix[0], &k) || !as_int(fix[1], &x) || !as_int(fix[2], &y))
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s', fixation %lld is no integer",
		                file, key, (long long)f);
	k -= 1;
	if (k < -n || k >= n)
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s', fixation %lld names image %lld "
		                "of %lld", file, key, (long long)f, (long long)(k + 1), (long long)n);
	if (!screen_range(x, KARA_SCREEN_W, nx, &c0, &c1, &ox) ||
	    !screen_range(y, KARA_SCREEN_H, ny, &r0, &r1, &oy))
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s', fixation %lld at (x %lld, y %lld) "
		                "puts no pixel of its %lld x %lld image on the %d x %d screen", file,
		                key, (long long)f, (long long)x, (long long)y, (long long)ny,
		                (long long)nx, KARA_SCREEN_H, KARA_SCREEN_W);
	k = k < 0 ? k + n : k;
	memset(screen, 0, (size_t)KARA_SCREEN_H * KARA_SCREEN_W * sizeof *screen);
	int64_t img = k * nx * ny; /* [x][y] */
	for (int64_t r = r0; r <= r1; r++) {
		int64_t iy = oy + r < 0 ? oy + r + ny : oy + r;
		float *line = screen + r * KARA_SCREEN_W;
		for (int64_t c = c0; c <= c1; c++) {
			int64_t ix = ox + c < 0 ? ox + c + nx : ox + c;
			line[c] = (float)kara_at(images, img + ix * ny + iy);
		}
	}
	return FV_OK;
}

fv_status kara_fix_movie(const kara_array *images, const kara_array *fix, int64_t first,
                         int64_t frames, int64_t h, int64_t w, float *dst, const char *file,
                         const char *key)
{
	kara_axis ay, ax;
	fv_status rc = kara_axis_init(&ay, KARA_SCREEN_H, h);
	if (rc != FV_OK)
		return rc;
	rc = kara_axis_init(&ax, KARA_SCREEN_W, w);
	float *screen = malloc((size_t)KARA_SCREEN_H * KARA_SCREEN_W * sizeof *screen);
	float *tmp = malloc((size_t)(KARA_SCREEN_H * w) * sizeof *tmp);
	if (rc == FV_OK && (screen == NULL || tmp == NULL))
		rc = fv_error(FV_ERR_NOMEM, "%s: out of memory composing the fixation movie", file);
	for (int64_t f = 0; rc == FV_OK && f < frames; f++) {
		rc = draw(images, fix, first + f, screen, file, key);
		if (rc == FV_OK)
			kara_resize_frame(&ay, &ax, screen, tmp, dst + f * h * w);
	}
	free(screen);
	free(tmp);
	kara_axis_free(&ax);
	kara_axis_free(&ay);
	return rc;
}
