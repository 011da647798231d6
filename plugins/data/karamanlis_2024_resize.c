/*
** karamanlis_2024_resize.c: torchvision's Resize((h, w)) of a float frame.
**
** openretina downsamples the 600 x 800 fixation movie with
** torchvision.transforms.Resize; in the torchvision it pins (0.28) a
** tensor is resized bilinearly with antialias=True, i.e. torch's
** _upsample_bilinear2d_aa: separable, PIL's scheme.  Per axis, with
** scale = in / out, output i is centred at scale * (i + 0.5) and takes the
** inputs within support = max(scale, 1) of it, weighted by the triangle
** filter at (j - centre + 0.5) / max(scale, 1) and normalised to sum 1.
** torch runs the last (contiguous) axis first, in float.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "karamanlis_2024.h"

static float triangle(float x)
{
	x = fabsf(x);
	return x < 1.0f ? 1.0f - x : 0.0f;
}

fv_status kara_axis_init(kara_axis *a, int64_t in, int64_t out)
{
	memset(a, 0, sizeof *a);
	float scale = (float)in / (float)out;
	float support = scale >= 1.0f ? scale : 1.0f;
	float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
	a->in = in;
	a->out = out;
	a->taps = (int64_t)ceilf(support) * 2 + 1;
	a->first = malloc((size_t)out * sizeof *a->first);
	a->count = malloc((size_t)out * sizeof *a->count);
	a->weights = calloc((size_t)(out * a->taps), sizeof *a->weights);
	if (a->first == NULL || a->count == NULL || a->weights == NULL) {
		kara_axis_free(a);
		return fv_error(FV_ERR_NOMEM, "out of memory for the resampling weights");
	}
	for (int64_t i = 0; i < out; i++) {
		float center = scale * ((float)i + 0.5f);
		int64_t lo = (int64_t)(center - support + 0.5f);
		int64_t hi = (int64_t)(center + support + 0.5f);
		lo = lo < 0 ? 0 : lo;
		hi = hi > in ? in : hi;
		int64_t n = hi - lo < a->taps ? hi - lo : a->taps;
		float *w = a->weights + i * a->taps, total = 0.0f;
		for (int64_t j = 0; j < n; j++) {
			w[j] = triangle(((float)(j + lo) - center + 0.5f) * invscale);
			total += w[j];
		}
		for (int64_t j = 0; j < n && total != 0.0f; j++)
			w[j] /= total;
		a->first[i] = lo;
		a->count[i] = n;
	}
	return FV_OK;
}

void kara_axis_free(kara_axis *a)
{
	free(a->first);
	free(a->count);
	free(a->weights);
	memset(a, 0, sizeof *a);
}

/* dst[i * dst_stride] = sum_j w_ij src[(first_i + j) * src_stride] */
static void resample_line(const kara_axis *a, const float *src, int64_t src_stride, float *dst,
                          int64_t dst_stride)
{
	for (int64_t i = 0; i < a->out; i++) {
		const float *w = a->weights + i * a->taps;
		const float *s = src + a->first[i] * src_stride;
		float t = 0.0f;
		for (int64_t j = 0; j < a->count[i]; j++)
			t += s[j * src_stride] * w[j];
		dst[i * dst_stride] = t;
	}
}

void kara_resize_frame(const kara_axis *ay, const kara_axis *ax, const float *src, float *tmp,
                       float *dst)
{
	/* an axis of unchanged size is left alone, as torchvision returns the
	** image itself when nothing changes */
	const float *rows = src;
	if (ax->in != ax->out) {
		for (int64_t r = 0; r < ay->in; r++)
			resample_line(ax, src + r * ax->in, 1, tmp + r * ax->out, 1);
		rows = tmp;
	}
	if (ay->in == ay->out) {
		memcpy(dst, rows, (size_t)(ay->out * ax->out) * sizeof *dst);
		return;
	}
	for (int64_t c = 0; c < ax->out; c++)
		resample_line(ay, rows + c, ax->out, dst + c, ax->out);
}
