/*
** upsample.c: openretina's upsample_traces: each trigger opens a stimulus
** presentation; numpy.linspace gives one time per stimulus frame, and
** numpy.interp reads every trace there.  Computed in double as numpy does,
** with its rounding: linspace is i * step + start with the last value set
** to the stop, interp takes a sample exactly when the time hits it, and
** the std is numpy's (pairwise sums, ddof 0).
*/
#include <math.h>
#include <stdlib.h>

#include "upsample.h"

/* numpy's pairwise summation of contiguous doubles. */
double hoef_pairwise_sum(const double *a, int64_t n)
{
	if (n < 8) {
		double s = 0.0;
		for (int64_t i = 0; i < n; i++)
			s += a[i];
		return s;
	}
	if (n > 128) {
		int64_t half = n / 2 - (n / 2) % 8;
		return hoef_pairwise_sum(a, half) + hoef_pairwise_sum(a + half, n - half);
	}
	double r[8];
	for (int k = 0; k < 8; k++)
		r[k] = a[k];
	int64_t i = 8;
	for (; i < n - n % 8; i += 8)
		for (int k = 0; k < 8; k++)
			r[k] += a[i + k];
	double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
	for (; i < n; i++)
		s += a[i];
	return s;
}

/* The stimulus frames after each trigger (stim_id 1 chirp: every other
** trigger, 2 moving bar, 5 natural movie). */
static int stim_timing(int stim_id, double *dur, int64_t *frames, int64_t *every)
{
	*every = 1;
	switch (stim_id) {
	case 1: *dur = 32.98999999; *frames = (int64_t)round(33.0 * 30); *every = 2; return 0;
	case 2: *dur = 4.054001; *frames = (int64_t)round(4.1 * 30); return 0;
	case 5: *dur = 4.9666667; *frames = (int64_t)round(5.0 * 30); return 0;
	default: return -1;
	}
}

double *hoef_upsampled_times(int stim_id, const fv_real *triggers, int64_t n_triggers,
                             int64_t *n_out)
{
	double dur;
	int64_t frames, every;
	if (stim_timing(stim_id, &dur, &frames, &every) != 0)
		return NULL;
	int64_t used = (n_triggers + every - 1) / every;
	double *x = malloc((size_t)(used * frames > 0 ? used * frames : 1) * sizeof *x);
	if (x == NULL)
		return NULL;
	for (int64_t k = 0; k < used; k++) {
		double start = triggers[k * every], stop = start + dur;
		double step = (stop - start) / (double)(frames - 1);
		for (int64_t i = 0; i < frames; i++)
			x[k * frames + i] = (double)i * step + start;
		x[k * frames + frames - 1] = stop;
	}
	*n_out = used * frames;
	return x;
}

/* numpy's binary_search_with_guess, as a plain bisection: the j with
** xp[j] <= x < xp[j + 1]; -1 left of xp, n right of it, n - 1 at its end. */
static int64_t find_interval(double x, const double *xp, int64_t n)
{
	if (x < xp[0])
		return -1;
	if (x > xp[n - 1])
		return n;
	if (x == xp[n - 1])
		return n - 1;
	int64_t lo = 0, hi = n - 1;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (x < xp[mid])
			hi = mid;
		else
			lo = mid;
	}
	return lo;
}

void hoef_interp(const double *x, int64_t n, const double *xp, const double *fp, int64_t m,
                 double *out)
{
	for (int64_t i = 0; i < n; i++) {
		int64_t j = find_interval(x[i], xp, m);
		if (isnan(x[i]))
			out[i] = x[i];
		else if (j < 0)
			out[i] = fp[0];
		else if (j >= m - 1)
			out[i] = fp[m - 1];
		else if (xp[j] == x[i])
			out[i] = fp[j];
		else {
			double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
			out[i] = slope * (x[i] - xp[j]) + fp[j];
			if (isnan(out[i])) {
				out[i] = slope * (x[i] - xp[j + 1]) + fp[j + 1];
				if (isnan(out[i]) && fp[j] == fp[j + 1])
					out[i] = fp[j];
			}
		}
	}
}

double hoef_std(const double *a, int64_t n, double *scratch)
{
	double mean = hoef_pairwise_sum(a, n) / (double)n;
	for (int64_t i = 0; i < n; i++)
		scratch[i] = (a[i] - mean) * (a[i] - mean);
	return sqrt(hoef_pairwise_sum(scratch, n) / (double)n);
}
