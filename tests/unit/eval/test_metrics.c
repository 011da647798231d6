/*
** test_metrics.c: openretina's evaluation metrics (framework/metrics.c)
** against values worked out by hand from the formulas of
** openretina/eval/metrics.py and oracles.py; the arithmetic is in the
** comments.
*/
#include <criterion/criterion.h>
#include <math.h>

#include "fovea/metrics.h"

/* a = 1 2 3 4, b = 1 3 2 4: both mean 2.5, deviations (-1.5 -.5 .5 1.5) and
** (-1.5 .5 -.5 1.5), sum of products 4, population variances 1.25:
** r = (4 / 4) / 1.25 = 0.8.  Second column: b = -a, r = -1. */
Test(metrics, correlation_per_column)
{
	double a[8] = {1, 1, 2, 2, 3, 3, 4, 4};
	double b[8] = {1, -1, 3, -2, 2, -3, 4, -4};
	double r[2];
	fv_metric_correlation(4, 2, a, b, r);
	cr_expect_float_eq(r[0], 0.8, 1e-7);
	cr_expect_float_eq(r[1], -1.0, 1e-7);
}

/* correlation_numpy adds eps to each std: a constant column gives 0, not NaN. */
Test(metrics, correlation_of_a_constant_is_zero)
{
	double a[3] = {2, 2, 2}, b[3] = {1, 2, 4}, r;
	fv_metric_correlation(3, 1, a, b, &r);
	cr_expect_eq(r, 0.0);
}

/* mse: ((1-2)^2 + (2-4)^2) / 2 = 2.5.  Poisson: mean of pred - target *
** log(pred + 1e-16) over (target 1, pred 1) and (target 0, pred e):
** (1 - 0 + e - 0) / 2. */
Test(metrics, mse_and_poisson)
{
	double a[2] = {1, 2}, b[2] = {2, 4}, m;
	fv_metric_mse(2, 1, a, b, &m);
	cr_expect_float_eq(m, 2.5, 1e-12);
	double target[2] = {1, 0}, pred[2] = {1, M_E}, p;
	fv_metric_poisson(2, 1, target, pred, &p);
	cr_expect_float_eq(p, (1 + M_E) / 2, 1e-12);
}

/* Two trials (R, T) = (2, 2): trial 0 = 1 3, trial 1 = 3 5.  All values
** 1 3 3 5: mean 3, total variance (4 + 0 + 0 + 4) / 3 = 8/3.  Per frame
** the two trials differ by 2: variance 2 each, noise 2.  Explainable
** 8/3 - 2 = 2/3, ratio (2/3) / (8/3) = 0.25. */
static const double trials[4] = {1, 3, 3, 5}; /* (R=2, T=2, N=1) */

Test(metrics, explainable_variance)
{
	double ratio, ev, noise;
	fv_metric_explainable_var(2, 2, 1, trials, &ratio, &ev, &noise);
	cr_expect_float_eq(ratio, 0.25, 1e-9);
	cr_expect_float_eq(ev, 2.0 / 3, 1e-12);
	cr_expect_float_eq(noise, 2.0, 1e-12);
}

/* FEVE with prediction 0.5 4: residuals (1-.5, 3-4, 3-.5, 5-4) = (.5, -1,
** 2.5, 1), mse = (.25 + 1 + 6.25 + 1) / 4 = 2.125; noise 2, explainable
** 2/3: 1 - (2.125 - 2) / (2/3) = 0.8125.  The trial mean (2 4) has
** mse 1 < noise: FEVE 1.  A bad prediction (0 0): mse (1 + 9 + 9 + 25) / 4
** = 11, 1 - 9 * 1.5 < 0: clipped to 0. */
Test(metrics, feve)
{
	double good[2] = {0.5, 4}, mean[2] = {2, 4}, bad[2] = {0, 0}, f;
	fv_metric_feve(2, 2, 1, trials, good, &f);
	cr_expect_float_eq(f, 0.8125, 1e-8);
	fv_metric_feve(2, 2, 1, trials, mean, &f);
	cr_expect_float_eq(f, 1.0, 1e-12);
	fv_metric_feve(2, 2, 1, trials, bad, &f);
	cr_expect_eq(f, 0.0);
}

/* Jackknife with trials 1 4 and 2 6: each value paired with the other
** trial's: (1,2) (4,6) (2,1) (6,4).  Both sides mean 3.25, deviations
** (-2.25 .75 -1.25 2.75) and (-1.25 2.75 -2.25 .75): products sum to 9.75,
** squares to 14.75 on each side: r = 9.75 / 14.75. */
Test(metrics, jackknife_oracle)
{
	double t[4] = {1, 4, 2, 6}, r;
	fv_metric_jackknife(2, 2, 1, t, &r);
	cr_expect_float_eq(r, 9.75 / 14.75, 1e-8);
}

/* Ceiling: explainable 2/3, noise 2 over 2 trials: sqrt((2/3) / (2/3 + 1)). */
Test(metrics, correlation_ceiling)
{
	double c;
	fv_metric_corr_ceiling(2, 2, 1, trials, &c);
	cr_expect_float_eq(c, sqrt(0.4), 1e-9);
}

/* Noise larger than the total: explainable variance clipped to 1e-9. */
Test(metrics, explainable_variance_is_clipped)
{
	/* frames identical across time on average, trials disagree: trial 0 =
	** 0 2, trial 1 = 2 0: total var 4/3, noise 2 */
	double t[4] = {0, 2, 2, 0}, ratio, ev;
	fv_metric_explainable_var(2, 2, 1, t, &ratio, &ev, NULL);
	cr_expect_eq(ev, 1e-9);
	cr_expect_float_eq(ratio, 1e-9 / (4.0 / 3), 1e-15);
}

/* Layout: two neurons interleaved in (R, T, N) give each neuron's own
** result. */
Test(metrics, neurons_are_independent_columns)
{
	double t2[8] = {1, 1, 3, 4, 3, 2, 5, 6}; /* neuron 0: 1 3 / 3 5; neuron 1: 1 4 / 2 6 */
	double ratio[2], jack[2];
	fv_metric_explainable_var(2, 2, 2, t2, ratio, NULL, NULL);
	fv_metric_jackknife(2, 2, 2, t2, jack);
	cr_expect_float_eq(ratio[0], 0.25, 1e-9);
	cr_expect_float_eq(jack[1], 9.75 / 14.75, 1e-8);
}

/* numpy's maximum keeps a NaN where C's fmax drops it: a NaN prediction
** has a NaN FEVe (issue 12 item 9; fmax made it a perfect 1). */
Test(metrics, feve_of_a_nan_prediction_is_nan)
{
	double trials[4] = {1, 3, 2, 4}, pred[2] = {NAN, 2}, f;
	fv_metric_feve(2, 2, 1, trials, pred, &f);
	cr_expect(isnan(f), "feve %g", f);
}

/* global_mean_oracle, one trial: neuron 0 = 1 2 3, neuron 1 = 3 2 7, their
** mean 2 2 5 (deviations -1 -1 2, population std sqrt 2).  Neuron 0:
** deviations -1 0 1, cov (1 + 0 + 2) / 3 = 1, std sqrt(2/3): r =
** 1 / sqrt(4/3) = sqrt(3)/2.  Neuron 1: deviations -1 -2 3, cov 3, std
** sqrt(14/3): r = 3 / sqrt(28/3). */
Test(metrics, global_mean_oracle_one_trial)
{
	double x[6] = {1, 3, 2, 2, 3, 7}, r[2];
	fv_metric_global_mean_oracle(1, 3, 2, x, r);
	cr_expect_float_eq(r[0], sqrt(3.0) / 2, 1e-7);
	cr_expect_float_eq(r[1], 3 / sqrt(28.0 / 3), 1e-7);
}

/* Two trials of two frames and three neurons, openretina's (frames,
** repeats, neurons) [[[1,5,2],[0,4,4]],[[3,1,1],[2,2,6]]] given here trials
** first; the expected values are numpy's correlation_numpy of the
** rearranged arrays, as oracles.py computes them. */
Test(metrics, global_mean_oracle_trials)
{
	double x[12] = {1, 5, 2, 3, 1, 1, 0, 4, 4, 2, 2, 6}, r[3];
	fv_metric_global_mean_oracle(2, 2, 3, x, r);
	cr_expect_float_eq(r[0], -0.43835699, 1e-7);
	cr_expect_float_eq(r[1], 0.35424595, 1e-7);
	cr_expect_float_eq(r[2], 0.89327458, 1e-7);
}
