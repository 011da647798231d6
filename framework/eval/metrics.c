/*
** metrics.c: openretina's evaluation metrics (eval/metrics.py and
** eval/oracles.py), per neuron, in double precision (see metrics.h).
**
** Everything is a loop over columns of row-major arrays; the sums run in
** double, where numpy would use the arrays' own float32 in places, so
** values agree with openretina's to float32 rounding, not bit for bit.
*/
#include <math.h>
#include <stdlib.h>

#include "fovea/metrics.h"
#include "base/base_internal.h"

#define CORR_EPS 1e-8     /* correlation_numpy's eps */
#define VAR_EPS 1e-9      /* explainable_vs_total_var's eps */
#define POISSON_BIAS 1e-16 /* PoissonLoss3d's bias */

/* Mean and population std of column j of a (rows, n) array. */
static void column_moments(int64_t rows, int64_t n, const double *a, int64_t j, double *mean,
                           double *std)
{
	double s = 0;
	for (int64_t i = 0; i < rows; i++)
		s += a[i * n + j];
	double m = s / (double)rows, ss = 0;
	for (int64_t i = 0; i < rows; i++) {
		double d = a[i * n + j] - m;
		ss += d * d;
	}
	*mean = m;
	*std = sqrt(ss / (double)rows);
}

void fv_metric_correlation(int64_t t, int64_t n, const double *a, const double *b, double *out)
{
	for (int64_t j = 0; j < n; j++) {
		double ma, sa, mb, sb, s = 0;
		column_moments(t, n, a, j, &ma, &sa);
		column_moments(t, n, b, j, &mb, &sb);
		for (int64_t i = 0; i < t; i++)
			s += (a[i * n + j] - ma) / (sa + CORR_EPS) * ((b[i * n + j] - mb) / (sb + CORR_EPS));
		out[j] = s / (double)t;
	}
}

void fv_metric_mse(int64_t t, int64_t n, const double *a, const double *b, double *out)
{
	for (int64_t j = 0; j < n; j++) {
		double s = 0;
		for (int64_t i = 0; i < t; i++) {
			double d = a[i * n + j] - b[i * n + j];
			s += d * d;
		}
		out[j] = s / (double)t;
	}
}

void fv_metric_poisson(int64_t t, int64_t n, const double *target, const double *pred,
                       double *out)
{
	for (int64_t j = 0; j < n; j++) {
		double s = 0;
		for (int64_t i = 0; i < t; i++)
			s += pred[i * n + j] - target[i * n + j] * log(pred[i * n + j] + POISSON_BIAS);
		out[j] = s / (double)t;
	}
}

/* Total variance over (trials, time) and the mean over time of the
** variance over trials, both with ddof = 1, for neuron j. */
static void trial_variances(int64_t r, int64_t t, int64_t n, const double *x, int64_t j,
                            double *total, double *noise)
{
	double mean = 0;
	for (int64_t k = 0; k < r * t; k++)
		mean += x[k * n + j];
	mean /= (double)(r * t);
	double ss = 0, noise_sum = 0;
	for (int64_t k = 0; k < r * t; k++) {
		double d = x[k * n + j] - mean;
		ss += d * d;
	}
	for (int64_t i = 0; i < t; i++) {
		double m = 0, v = 0;
		for (int64_t k = 0; k < r; k++)
			m += x[(k * t + i) * n + j];
		m /= (double)r;
		for (int64_t k = 0; k < r; k++) {
			double d = x[(k * t + i) * n + j] - m;
			v += d * d;
		}
		noise_sum += v / (double)(r - 1);
	}
	*total = ss / (double)(r * t - 1);
	*noise = noise_sum / (double)t;
}

void fv_metric_explainable_var(int64_t r, int64_t t, int64_t n, const double *trials,
                               double *var_ratio, double *explainable_var, double *noise_var)
{
	for (int64_t j = 0; j < n; j++) {
		double total, noise;
		trial_variances(r, t, n, trials, j, &total, &noise);
		/* noise can exceed the total in bad cases: clip, as openretina */
		double ev = fmax(total - noise, VAR_EPS);
		if (var_ratio != NULL)
			var_ratio[j] = ev / (total + VAR_EPS);
		if (explainable_var != NULL)
			explainable_var[j] = ev;
		if (noise_var != NULL)
			noise_var[j] = noise;
	}
}

void fv_metric_feve(int64_t r, int64_t t, int64_t n, const double *trials, const double *pred,
                    double *out)
{
	for (int64_t j = 0; j < n; j++) {
		double total, noise;
		trial_variances(r, t, n, trials, j, &total, &noise);
		double ev = fmax(total - noise, VAR_EPS);
		double ratio = ev / (total + VAR_EPS);
		/* openretina recovers the noise from the ratio, eps included */
		double noise_back = ev / ratio - ev;
		double mse = 0;
		for (int64_t k = 0; k < r; k++)
			for (int64_t i = 0; i < t; i++) {
				double d = trials[(k * t + i) * n + j] - pred[i * n + j];
				mse += d * d;
			}
		mse /= (double)(r * t);
		double f = 1 - fmax(mse - noise_back, 0) / ev;
		/* fmax drops a NaN where numpy's maximum keeps it: a NaN
		** prediction has no FEVe, not a perfect one */
		out[j] = isnan(mse) ? NAN : fmax(f, 0);
	}
}

void fv_metric_jackknife(int64_t r, int64_t t, int64_t n, const double *trials, double *out)
{
	for (int64_t j = 0; j < n; j++) {
		/* correlation over the (t, r) pairs of response and leave-one-out mean */
		double sx = 0, so = 0;
		int64_t m = r * t;
		for (int64_t i = 0; i < t; i++) {
			double sum = 0;
			for (int64_t k = 0; k < r; k++)
				sum += trials[(k * t + i) * n + j];
			for (int64_t k = 0; k < r; k++) {
				double x = trials[(k * t + i) * n + j];
				sx += x;
				so += (sum - x) / (double)(r - 1);
			}
		}
		double mx = sx / (double)m, mo = so / (double)m, vx = 0, vo = 0, cov = 0;
		for (int64_t i = 0; i < t; i++) {
			double sum = 0;
			for (int64_t k = 0; k < r; k++)
				sum += trials[(k * t + i) * n + j];
			for (int64_t k = 0; k < r; k++) {
				double x = trials[(k * t + i) * n + j] - mx;
				double o = (sum - trials[(k * t + i) * n + j]) / (double)(r - 1) - mo;
				vx += x * x;
				vo += o * o;
				cov += x * o;
			}
		}
		double stdx = sqrt(vx / (double)m), stdo = sqrt(vo / (double)m);
		out[j] = cov / (double)m / ((stdx + CORR_EPS) * (stdo + CORR_EPS));
	}
}

void fv_metric_corr_ceiling(int64_t r, int64_t t, int64_t n, const double *trials, double *out)
{
	for (int64_t j = 0; j < n; j++) {
		double total, noise;
		trial_variances(r, t, n, trials, j, &total, &noise);
		double ev = fmax(total - noise, VAR_EPS);
		out[j] = sqrt(ev / (ev + noise / (double)r));
	}
}

/* global_mean_oracle: each neuron against the mean over neurons at the same
** (frame, trial), as one series of r * t pairs.  The pairs' order does not
** change a correlation, so the (R, T, N) layout is used as it is. */
void fv_metric_global_mean_oracle(int64_t r, int64_t t, int64_t n, const double *trials,
                                  double *out)
{
	int64_t m = r * t;
	double *mean = fv__malloc((size_t)m * sizeof *mean + 1);
	if (mean == NULL) {
		for (int64_t j = 0; j < n; j++)
			out[j] = NAN;
		return;
	}
	for (int64_t k = 0; k < m; k++) {
		double s = 0;
		for (int64_t j = 0; j < n; j++)
			s += trials[k * n + j];
		mean[k] = s / (double)n;
	}
	for (int64_t j = 0; j < n; j++) {
		double mx, sx, mo, so, cov = 0;
		column_moments(m, n, trials, j, &mx, &sx);
		column_moments(m, 1, mean, 0, &mo, &so);
		for (int64_t k = 0; k < m; k++)
			cov += (trials[k * n + j] - mx) / (sx + CORR_EPS) * ((mean[k] - mo) / (so + CORR_EPS));
		out[j] = cov / (double)m;
	}
	free(mean);
}
