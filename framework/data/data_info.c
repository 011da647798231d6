/*
** data_info.c: openretina's compute_data_info for an opened data set:
** neurons per session, mean activity per neuron (used to initialise readout
** biases), input shape, the normalisation, and the session_info arrays.
**
** openretina computes the mean activity with numpy,
** responses.train.mean(axis=1), then makes a float32 tensor of it.  numpy
** sums a row pairwise (blocks of eight partial sums, halves above 128
** elements) in the array's own float type: float64, or float32 when every
** response dataset of the session is float32.  The same summation here
** gives the same float32 values, not merely close ones.
*/
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

#define PAIRWISE_BLOCK 128

/* numpy's pairwise_sum, instantiated for double and float accumulators. */
#define DEFINE_PAIRWISE_SUM(name, type)                                                     \
	static type name(const type *a, int64_t n)                                            \
	{                                                                                     \
		if (n < 8) {                                                                  \
			type res = 0;                                                         \
			for (int64_t i = 0; i < n; i++)                                       \
				res += a[i];                                                  \
			return res;                                                           \
		}                                                                             \
		if (n <= PAIRWISE_BLOCK) {                                                    \
			type r[8];                                                            \
			for (int j = 0; j < 8; j++)                                           \
				r[j] = a[j];                                                  \
			int64_t i = 8;                                                        \
			for (; i < n - (n % 8); i += 8)                                       \
				for (int j = 0; j < 8; j++)                                   \
					r[j] += a[i + j];                                     \
			type res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])); \
			for (; i < n; i++)                                                    \
				res += a[i];                                                  \
			return res;                                                           \
		}                                                                             \
		int64_t half = n / 2;                                                         \
		half -= half % 8;                                                             \
		return name(a, half) + name(a + half, n - half);                              \
	}

DEFINE_PAIRWISE_SUM(pairwise_sum_f64, double)
DEFINE_PAIRWISE_SUM(pairwise_sum_f32, float)

fv_status fv__session_mean_activity(fv__session *s, const fv__session_raw *raw)
{
	int64_t n = s->n_neurons, t = raw->n_train_frames;
	s->mean_activity = fv_tensor_new(1, &n);
	float *row = raw->train_responses_f32 ? fv__malloc((size_t)(t ? t : 1) * sizeof *row) : NULL;
	if (s->mean_activity == NULL || (raw->train_responses_f32 && row == NULL)) {
		free(row);
		return fv_error(FV_ERR_NOMEM, "session '%s': out of memory", s->name);
	}
	for (int64_t i = 0; i < n; i++) {
		const double *r = raw->train_responses + i * t;
		float mean;
		if (row != NULL) {
			for (int64_t j = 0; j < t; j++)
				row[j] = (float)r[j];
			mean = pairwise_sum_f32(row, t) / (float)t;
		} else {
			mean = (float)(pairwise_sum_f64(r, t) / (double)t);
		}
		s->mean_activity->data[i] = (fv_real)mean;
	}
	free(row);
	return FV_OK;
}

fv_status fv__data_build_info(fv_data *d)
{
	size_t n = d->n_sessions ? d->n_sessions : 1;
	d->info_sessions = fv__calloc(n, sizeof *d->info_sessions);
	d->info_n_neurons = fv__calloc(n, sizeof *d->info_n_neurons);
	d->info_mean = fv__calloc(n, sizeof *d->info_mean);
	d->info_n_extra = fv__calloc(n, sizeof *d->info_n_extra);
	d->info_extra_names = fv__calloc(n, sizeof *d->info_extra_names);
	d->info_extra = fv__calloc(n, sizeof *d->info_extra);
	if (d->info_sessions == NULL || d->info_n_neurons == NULL || d->info_mean == NULL ||
	    d->info_n_extra == NULL || d->info_extra_names == NULL || d->info_extra == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < d->n_sessions; i++) {
		const fv__session *s = &d->sessions[i];
		d->info_sessions[i] = s->name;
		d->info_n_neurons[i] = s->n_neurons;
		d->info_mean[i] = s->mean_activity;
		d->info_n_extra[i] = s->n_info;
		d->info_extra_names[i] = (const char *const *)s->info_names;
		d->info_extra[i] = s->info;
	}
	fv_data_info *info = &d->info;
	info->n_sessions = d->n_sessions;
	info->sessions = d->info_sessions;
	info->n_neurons = d->info_n_neurons;
	info->mean_activity = d->info_mean;
	info->stim_mean = d->opt.norm_mean;
	info->stim_std = d->opt.norm_std;
	info->n_session_info = d->info_n_extra;
	info->session_info_names = d->info_extra_names;
	info->session_info = d->info_extra;
	return FV_OK;
}

void fv__data_free_info(fv_data *d)
{
	free(d->info_sessions);
	free(d->info_n_neurons);
	free(d->info_mean);
	free(d->info_n_extra);
	free((void *)d->info_extra_names);
	free((void *)d->info_extra);
}

const fv_data_info *fv_data_get_info(const fv_data *d)
{
	return &d->info;
}
