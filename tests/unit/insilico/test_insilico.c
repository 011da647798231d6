/*
** test_insilico.c: stimulus optimisation (framework/insilico*.c) and its
** plugins: reducers, stoppers, stimulus regularizers, objectives.
**
** Objectives run on a tiny model defined here, whose responses are easy to
** write by hand: its core doubles the stimulus (and announces that as the
** capture point "features.layer0.conv"), and neuron j of session "s1"
** answers w[j] * mean over (C, H, W) of the core output at each frame, with
** w = (1, 2, 3).  Every expected value below is computed by hand from that.
*/
#include <math.h>

#include "fovea/insilico.h"
#include "plugin_testing.h"

PT_SUITE(insilico, "reducers", "objectives", "stoppers", "regularizers");

/* ---- the test model ---------------------------------------------------------- */

static const char *last_data_key;

static fv_tensor *tm_core_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                  const fv_forward_args *fa)
{
	(void)fa;
	fv_tensor *h = fv_mul_scalar(ctx, x, 2);
	fv_module_capture(m, ctx, "features.layer0.conv", h);
	return h;
}

static fv_status tm_core_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)m, (void)opts, (void)args;
	return FV_OK;
}

static const char *const tm_core_names[] = {"InsilicoTestCore", NULL};
static const fv_component tm_core = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = tm_core_names,
	.doc = "doubles its input",
	.create = tm_core_create,
	.forward = tm_core_forward,
};

static fv_status tm_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	const int64_t n = 3;
	fv_tensor *w = fv_module_add_param(m, "w", 1, &n);
	if (w == NULL)
		return FV_ERR_NOMEM;
	for (int j = 0; j < 3; j++)
		w->data[j] = (fv_real)(j + 1);
	return fv_module_add_child(m, "core", fv_instantiate_component(&tm_core, NULL, args, "core"));
}

/* (N, C, T, H, W) -> (N, T, 3) */
static fv_tensor *tm_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	last_data_key = fa->data_key;
	if (fa->data_key != NULL && strcmp(fa->data_key, "s1") != 0) {
		fv_error(FV_ERR_NOTFOUND, "test model: unknown session '%s'", fa->data_key);
		return NULL;
	}
	fv_tensor *h = fv_module_forward(fv_module_child(m, "core"), ctx, x, fa);
	const int axes[3] = {1, 3, 4};
	fv_tensor *per_frame = fv_mean(ctx, h, 3, axes, false); /* (N, T) */
	if (per_frame == NULL)
		return NULL;
	int64_t shape[3] = {per_frame->shape[0], per_frame->shape[1], 1};
	return fv_mul(ctx, fv_reshape(ctx, per_frame, 3, shape), fv_module_tensor(m, "w"));
}

static const char *const tm_names[] = {"InsilicoTestModel", NULL};
static const fv_component tm_model = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = tm_names,
	.doc = "a model whose responses are easy to compute by hand",
	.create = tm_create,
	.forward = tm_forward,
};

static const fv_component *const tm_components[] = {&tm_model, &tm_core};
static const fv_plugin tm_plugin = {
	.abi_major = FV_ABI_MAJOR,
	.abi_minor = FV_ABI_MINOR,
	.name = "insilico-test-model",
	.n_components = 2,
	.components = tm_components,
};

static fv_module *make_model(void)
{
	if (fv_registry_find(reg, "InsilicoTestModel", NULL) == NULL)
		cr_assert_eq(fv_registry_add(reg, &tm_plugin, "test_insilico.c"), FV_OK, "%s",
		             fv_errmsg());
	return pt_build(reg, "_target_: InsilicoTestModel", 0);
}

/* A (1, C, T, H, W) stimulus with the given values. */
static fv_tensor *stimulus_of(int64_t C, int64_t T, int64_t H, int64_t W, const double *v)
{
	const int64_t shape[5] = {1, C, T, H, W};
	fv_tensor *s = fv_tensor_new(5, shape);
	cr_assert_not_null(s);
	for (int64_t i = 0; i < s->numel; i++)
		s->data[i] = (fv_real)v[i];
	return s;
}

static fv_tensor *vector_of(fv_ctx *ctx, int64_t n, const double *v)
{
	fv_tensor *t = fv_ctx_empty(ctx, 1, &n);
	for (int64_t i = 0; i < n; i++)
		t->data[i] = (fv_real)v[i];
	return t;
}

/* ---- reducers ------------------------------------------------------------------- */

static fv_tensor *reduce(fv_module *r, fv_ctx *ctx, fv_tensor *x)
{
	fv_tensor *y = fv_module_forward(r, ctx, x, NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	return y;
}

Test(insilico, reducers_are_registered_under_openretinas_names)
{
	const char *const names[] = {
		"MeanReducer",
		"SliceMeanReducer",
		"openretina.insilico.stimulus_optimization.objective.MeanReducer",
		"openretina.insilico.stimulus_optimization.objective.SliceMeanReducer",
		"openretina.insilico.SliceMeanReducer",
	};
	pt_expect_registered(reg, names, 5, FV_KIND_REDUCER);
}

Test(insilico, mean_reducer_averages_one_axis)
{
	fv_ctx *ctx = fv_ctx_new();
	const int64_t shape[2] = {3, 2};
	fv_tensor *x = fv_ctx_empty(ctx, 2, shape);
	for (int i = 0; i < 6; i++)
		x->data[i] = (fv_real)(i + 1); /* [[1,2],[3,4],[5,6]] */
	fv_module *r = pt_make(reg, "MeanReducer", NULL, "r");
	fv_tensor *y = reduce(r, ctx, x);
	cr_assert_eq(y->numel, 2);
	pt_expect_close(y->data[0], 3, 1e-6, "mean of column 0");
	pt_expect_close(y->data[1], 4, 1e-6, "mean of column 1");
	fv_module_free(r);
	r = pt_make(reg, "MeanReducer", "axis: -1", "r");
	y = reduce(r, ctx, x);
	cr_assert_eq(y->numel, 3);
	pt_expect_close(y->data[2], 5.5, 1e-6, "mean of row 2");
	fv_clear_error();
	const int64_t n = 4;
	fv_tensor *v = fv_ctx_zeros(ctx, 1, &n);
	fv_module_free(r);
	r = pt_make(reg, "MeanReducer", "axis: 1", "r");
	cr_assert_null(fv_module_forward(r, ctx, v, NULL));
	pt_expect_msg("MeanReducer: axis 1 does not exist in responses of shape (4)");
	fv_module_free(r);
	fv_ctx_free(ctx);
}

/* Responses 1, 2, 4, 8, 16 along time. */
static double slice_mean(const char *yaml)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = vector_of(ctx, 5, (const double[]){1, 2, 4, 8, 16});
	fv_module *r = pt_make(reg, "SliceMeanReducer", yaml, "r");
	fv_tensor *y = reduce(r, ctx, x);
	cr_assert_eq(y->numel, 1);
	double v = y->data[0];
	fv_module_free(r);
	fv_ctx_free(ctx);
	return v;
}

Test(insilico, slice_mean_reducer_windows_cuts_and_falls_back_as_openretina)
{
	pt_expect_close(slice_mean("{axis: 0, start: 1, length: 2}"), 3, 1e-6, "[1:3]");
	/* cut short at the end: [3:5] */
	pt_expect_close(slice_mean("{axis: 0, start: 3, length: 5}"), 12, 1e-6, "[3:8] cut");
	/* start beyond the end: from 0 instead */
	pt_expect_close(slice_mean("{axis: 0, start: 7, length: 2}"), 1.5, 1e-6, "[0:2]");
	pt_expect_close(slice_mean("{axis: 0, start: 9, length: 10}"), 6.2, 1e-6, "[0:5]");
}

Test(insilico, slice_mean_reducer_gradient_spreads_over_the_window)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = vector_of(ctx, 5, (const double[]){1, 2, 4, 8, 16});
	x->requires_grad = true;
	fv_module *r = pt_make(reg, "SliceMeanReducer", "{axis: 0, start: 1, length: 3}", "r");
	cr_assert_eq(fv_backward(ctx, reduce(r, ctx, x)), FV_OK, "%s", fv_errmsg());
	const double want[5] = {0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0};
	for (int i = 0; i < 5; i++)
		pt_expect_close(x->grad->data[i], want[i], 1e-6, "d mean / d x");
	fv_module_free(r);
	fv_ctx_free(ctx);
}

Test(insilico, reducer_options_are_checked)
{
	pt_expect_make_error(reg, "SliceMeanReducer", "{axis: 0, length: 2}",
	                     "missing required option 'start'");
	pt_expect_make_error(reg, "SliceMeanReducer", "{axis: 0, start: 0, length: 0}",
	                     "out of range");
	pt_expect_make_error(reg, "SliceMeanReducer", "{axis: 0, start: -1, length: 2}",
	                     "out of range");
	pt_expect_make_error(reg, "MeanReducer", "{axes: 0}", "did you mean 'axis'?");
}

/* ---- stoppers -------------------------------------------------------------------------- */

Test(insilico, stoppers_are_registered_under_openretinas_names)
{
	const char *const names[] = {
		"OptimizationStopper",
		"EarlyStopper",
		"openretina.insilico.stimulus_optimization.optimization_stopper.OptimizationStopper",
		"openretina.insilico.stimulus_optimization.optimization_stopper.EarlyStopper",
		"openretina.insilico.OptimizationStopper",
	};
	pt_expect_registered(reg, names, 5, FV_KIND_STOPPER);
}

Test(insilico, optimization_stopper_counts_iterations)
{
	fv_module *s = pt_make(reg, "OptimizationStopper", "max_iterations: 3", "s");
	cr_assert(!fv_module_should_stop(s, 1.0));
	cr_assert(!fv_module_should_stop(s, 1.0));
	cr_assert(fv_module_should_stop(s, 1.0));
	fv_module_free(s);
	s = pt_make(reg, "OptimizationStopper", "max_iterations: null", "s");
	for (int i = 0; i < 1000; i++)
		cr_assert(!fv_module_should_stop(s, -i), "stopped at call %d without a limit", i);
	fv_module_free(s);
}

Test(insilico, early_stopper_counts_as_openretina)
{
	fv_module *s = pt_make(reg, "EarlyStopper", "{patience: 2, min_delta: 0.5}", "s");
	/* 5 best; 4 best; 4.4 within delta: nothing; 4.6 above 4.5: counter 1;
	** 3 best, reset; 3.6: 1; 3.7: 2 -> stop; 3.8: 3 -> stop; 2 best, reset;
	** 2 equal: nothing. */
	const double losses[10] = {5, 4, 4.4, 4.6, 3, 3.6, 3.7, 3.8, 2, 2};
	const bool want[10] = {false, false, false, false, false, false, true, true, false, false};
	for (int i = 0; i < 10; i++)
		cr_assert_eq(fv_module_should_stop(s, losses[i]), want[i], "loss %d (%g)", i,
		             losses[i]);
	fv_module_free(s);
}

Test(insilico, early_stopper_defaults_and_max_iterations)
{
	/* patience 1, min_delta 0: the first increase stops */
	fv_module *s = pt_make(reg, "EarlyStopper", NULL, "s");
	cr_assert(!fv_module_should_stop(s, 2));
	cr_assert(!fv_module_should_stop(s, 2));
	cr_assert(fv_module_should_stop(s, 2.001));
	fv_module_free(s);
	s = pt_make(reg, "EarlyStopper", "max_iterations: 2", "s");
	cr_assert(!fv_module_should_stop(s, 2));
	cr_assert(fv_module_should_stop(s, 1), "improving, but the limit is reached");
	fv_module_free(s);
}

Test(insilico, stopper_options_are_checked)
{
	pt_expect_make_error(reg, "OptimizationStopper", NULL,
	                     "missing required option 'max_iterations'");
	pt_expect_make_error(reg, "OptimizationStopper", "max_iterations: 0", "out of range");
	pt_expect_make_error(reg, "EarlyStopper", "patience: -1", "out of range");
	pt_expect_make_error(reg, "EarlyStopper", "min_delta: abc", "min_delta");
}

/* ---- stimulus regularizers ------------------------------------------------------------- */

Test(insilico, stimulus_regularizers_are_registered_under_openretinas_names)
{
	const char *const names[] = {
		"RangeRegularizationLoss",
		"ChangeNormJointlyClipRangeSeparately",
		"TemporalGaussianLowPassFilterProcessor",
		"openretina.insilico.stimulus_optimization.regularizer.RangeRegularizationLoss",
		"openretina.insilico.stimulus_optimization.regularizer."
		"ChangeNormJointlyClipRangeSeparately",
		"openretina.insilico.stimulus_optimization.regularizer."
		"TemporalGaussianLowPassFilterProcessor",
	};
	pt_expect_registered(reg, names, 6, FV_KIND_REGULARIZER);
}

static fv_tensor *penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fv_tensor *p = fv_module_penalty(m, ctx, x, &fa);
	cr_assert_not_null(p, "%s", fv_errmsg());
	cr_assert_eq(p->numel, 1);
	return p;
}

Test(insilico, range_regularization_loss_value_and_gradient)
{
	fv_ctx *ctx = fv_ctx_new();
	/* channel 0: -2, 0.5 in [-1, 1]; channel 1: 3, -1 below 2 */
	fv_tensor *s = stimulus_of(2, 1, 1, 2, (const double[]){-2, 0.5, 3, -1});
	s->requires_grad = true;
	fv_module *r = pt_make(reg, "RangeRegularizationLoss",
	                       "{min_max_values: [[-1, 1], [null, 2]], max_norm: 3, factor: 0.5}",
	                       "r");
	fv_tensor *p = penalty(r, ctx, s);
	double norm = sqrt(4 + 0.25 + 9 + 1);
	/* below -1 by 1, above 2 by 1, norm above 3 */
	pt_expect_close(p->data[0], 0.5 * (1 + 1 + norm - 3), 1e-6, "penalty");
	cr_assert_eq(fv_backward(ctx, p), FV_OK, "%s", fv_errmsg());
	const double x[4] = {-2, 0.5, 3, -1};
	const double range_grad[4] = {-1, 0, 1, 0};
	for (int i = 0; i < 4; i++)
		pt_expect_close(s->grad->data[i], 0.5 * (range_grad[i] + x[i] / norm), 1e-6,
		                "d penalty / d x");
	fv_module_free(r);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, range_regularization_loss_without_bounds_is_zero)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 1, 1, 2, (const double[]){-20, 30});
	fv_module *r = pt_make(reg, "RangeRegularizationLoss",
	                       "{min_max_values: [[null, null]], max_norm: null}", "r");
	cr_assert_eq(penalty(r, ctx, s)->data[0], 0);
	fv_module_free(r);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, range_regularization_loss_errors)
{
	pt_expect_make_error(reg, "RangeRegularizationLoss", "{min_max_values: [[0, 1, 2]], max_norm: 1}",
	                     "min_max_values[0]: expected a pair [min, max]");
	pt_expect_make_error(reg, "RangeRegularizationLoss", "{min_max_values: [[a, 1]], max_norm: 1}",
	                     "min_max_values: expected a number or null, got 'a'");
	pt_expect_make_error(reg, "RangeRegularizationLoss", "{min_max_values: [], max_norm: 1}",
	                     "expected a list of [min, max] pairs");
	pt_expect_make_error(reg, "RangeRegularizationLoss", "{min_max_values: [[0, 1]]}",
	                     "missing required option 'max_norm'");
	fv_module *r = pt_make(reg, "RangeRegularizationLoss",
	                       "{min_max_values: [[0, 1], [0, 1]], max_norm: null}", "r");
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 1, 1, 1, (const double[]){0});
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fv_clear_error();
	cr_assert_null(fv_module_penalty(r, ctx, s, &fa));
	pt_expect_msg("RangeRegularizationLoss: 2 channel ranges need a stimulus with at least 2 "
	              "channels in dim 1, got (1, 1, 1, 1, 1)");
	cr_assert_eq(fv_module_project(r, s), FV_ERR_ARG, "a penalty is no postprocessor");
	pt_expect_msg("has no projection");
	fv_tensor_free(s);
	fv_ctx_free(ctx);
	fv_module_free(r);
}

Test(insilico, change_norm_then_clip_each_channel)
{
	/* batch 0: (3, 0 | 0, 4) has norm 5 -> x2; batch 1: (0, 1 | 0, 0) has norm 1 -> x10 */
	const int64_t shape[5] = {2, 2, 1, 1, 2};
	fv_tensor *s = fv_tensor_new(5, shape);
	const double v[8] = {3, 0, 0, 4, 0, 1, 0, 0};
	for (int i = 0; i < 8; i++)
		s->data[i] = (fv_real)v[i];
	fv_module *c = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	                       "{min_max_values: [[-1, 5], [null, null]], norm: 10}", "c");
	cr_assert_eq(fv_module_project(c, s), FV_OK, "%s", fv_errmsg());
	const double want[8] = {5, 0, 0, 8, 0, 5, 0, 0};
	for (int i = 0; i < 8; i++)
		pt_expect_close(s->data[i], want[i], 1e-6, "rescaled and clipped");
	fv_module_free(c);
	/* norm null: clip only */
	c = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	            "{min_max_values: [[0, 1], [-2, null]], norm: null}", "c");
	const double v2[8] = {-3, 0.5, -3, 7, 2, 1, -1, 9};
	for (int i = 0; i < 8; i++)
		s->data[i] = (fv_real)v2[i];
	cr_assert_eq(fv_module_project(c, s), FV_OK, "%s", fv_errmsg());
	const double want2[8] = {0, 0.5, -2, 7, 1, 1, -1, 9};
	for (int i = 0; i < 8; i++)
		pt_expect_close(s->data[i], want2[i], 1e-6, "clipped");
	fv_module_free(c);
	fv_tensor_free(s);
}

Test(insilico, change_norm_errors)
{
	fv_module *c = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	                       "{min_max_values: [[-1, 1], [-1, 1]], norm: 2}", "c");
	fv_tensor *s = stimulus_of(1, 1, 1, 2, (const double[]){1, 2});
	cr_assert_eq(fv_module_project(c, s), FV_ERR_SHAPE);
	pt_expect_msg("ChangeNormJointlyClipRangeSeparately: expected 2 channels in dim 1, got (1, "
	              "1, 1, 1, 2)");
	fv_tensor_free(s);
	s = stimulus_of(2, 1, 1, 1, (const double[]){0, 0});
	cr_assert_eq(fv_module_project(c, s), FV_ERR_ARG);
	pt_expect_msg("batch element 0 has norm 0; it cannot be rescaled to norm 2");
	fv_tensor_free(s);
	fv_module_free(c);
	pt_expect_make_error(reg, "ChangeNormJointlyClipRangeSeparately", "{min_max_values: [[0, 1]]}",
	                     "missing required option 'norm'");
}

/* Issue 12 item 10: a norm that is negative, zero or NaN, and a [min, max]
** pair upside down or NaN, are refused naming the key. */
Test(insilico, stimulus_option_ranges)
{
	const char *clip = "ChangeNormJointlyClipRangeSeparately", *range = "RangeRegularizationLoss";
	pt_expect_make_error(reg, clip, "{min_max_values: [[-1, 1]], norm: -1}", "norm");
	pt_expect_make_error(reg, clip, "{min_max_values: [[-1, 1]], norm: .nan}", "norm");
	pt_expect_make_error(reg, clip, "{min_max_values: [[-1, 1]], norm: 0}", "norm");
	pt_expect_make_error(reg, clip, "{min_max_values: [[1, -1]], norm: 1}",
	                     "min_max_values[0]: min 1 is above max -1");
	pt_expect_make_error(reg, clip, "{min_max_values: [[.nan, 1]], norm: 1}",
	                     "min_max_values: expected a number or null");
	pt_expect_make_error(reg, range, "{min_max_values: [[0, 1], [2, 1]], max_norm: null}",
	                     "min_max_values[1]: min 2 is above max 1");
	pt_expect_make_error(reg, range, "{min_max_values: [[0, 1]], max_norm: -3}", "max_norm");
	fv_module_free(pt_make(reg, clip, "{min_max_values: [[null, 1]], norm: null}", "c"));
}

Test(insilico, temporal_low_pass_kernel_and_same_padding)
{
	/* kernel_size 3, sigma 1: exp(-x^2/2) at x = -1, 0, 1, normalised */
	fv_module *lp = pt_make(reg, "TemporalGaussianLowPassFilterProcessor",
	                        "{sigma: 1.0, kernel_size: 3}", "lp");
	double e = exp(-0.5), sum = 1 + 2 * e, k[3] = {e / sum, 1 / sum, e / sum};
	fv_tensor *kernel = pt_tensor(lp, "kernel");
	cr_assert_eq(kernel->numel, 3);
	for (int i = 0; i < 3; i++)
		pt_expect_close(kernel->data[i], k[i], 1e-6, "kernel");
	/* two channels, two pixels, four frames: (1, 2, 4, 1, 2) */
	const double v[16] = {1, 0, 0, 0, 0, 0, 0, 1, /* channel 0: pixel 0 impulse at t=0 */
	                      2, 0, 2, 0, 2, 0, 2, 0}; /* channel 1: pixel 0 constant 2 */
	fv_tensor *s = stimulus_of(2, 4, 1, 2, v);
	cr_assert_eq(fv_module_project(lp, s), FV_OK, "%s", fv_errmsg());
	/* index: ((c * 4 + t) * 2 + pixel) */
	pt_expect_close(s->data[0], k[1], 1e-6, "c0 t0 p0");
	pt_expect_close(s->data[2], k[0], 1e-6, "c0 t1 p0");
	pt_expect_close(s->data[4], 0, 1e-6, "c0 t2 p0");
	pt_expect_close(s->data[7], k[1], 1e-6, "c0 t3 p1: impulse at the last frame");
	pt_expect_close(s->data[5], k[0], 1e-6, "c0 t2 p1");
	pt_expect_close(s->data[8], 2 * (k[1] + k[2]), 1e-6, "c1 t0: zero padding before");
	pt_expect_close(s->data[10], 2, 1e-6, "c1 t1: inside");
	pt_expect_close(s->data[9], 0, 1e-6, "c1 t0 p1 stays 0");
	fv_module_free(lp);
	fv_tensor_free(s);
}

Test(insilico, temporal_low_pass_even_kernel_pads_one_more_after)
{
	/* kernel_size 2: taps at x = -1, 0; 'same' pads 0 before, 1 after */
	fv_module *lp = pt_make(reg, "TemporalGaussianLowPassFilterProcessor",
	                        "{sigma: 1.0, kernel_size: 2}", "lp");
	double e = exp(-0.5), k0 = e / (1 + e), k1 = 1 / (1 + e);
	fv_tensor *s = stimulus_of(1, 3, 1, 1, (const double[]){1, 2, 3});
	cr_assert_eq(fv_module_project(lp, s), FV_OK, "%s", fv_errmsg());
	pt_expect_close(s->data[0], k0 * 1 + k1 * 2, 1e-6, "t0");
	pt_expect_close(s->data[1], k0 * 2 + k1 * 3, 1e-6, "t1");
	pt_expect_close(s->data[2], k0 * 3, 1e-6, "t2");
	fv_module_free(lp);
	fv_tensor_free(s);
}

Test(insilico, temporal_low_pass_errors)
{
	pt_expect_make_error(reg, "TemporalGaussianLowPassFilterProcessor",
	                     "{sigma: 0, kernel_size: 3}", "sigma must be > 0, got 0");
	pt_expect_make_error(reg, "TemporalGaussianLowPassFilterProcessor",
	                     "{sigma: 1, kernel_size: 0}", "out of range");
	fv_module *lp = pt_make(reg, "TemporalGaussianLowPassFilterProcessor",
	                        "{sigma: 1.0, kernel_size: 3, device: cpu}", "lp");
	const int64_t shape[4] = {1, 1, 3, 3};
	fv_tensor *s = fv_tensor_new(4, shape);
	cr_assert_eq(fv_module_project(lp, s), FV_ERR_SHAPE);
	pt_expect_msg("expected a stimulus (N, C, T, H, W), got (1, 1, 3, 3)");
	fv_tensor_free(s);
	fv_module_free(lp);
}

/* ---- objectives ------------------------------------------------------------------------ */

static double objective_of(fv_module *obj, fv_model *model, fv_ctx *ctx, fv_tensor *s)
{
	fv_tensor *y = fv_module_objective(obj, ctx, model, s);
	cr_assert_not_null(y, "%s", fv_errmsg());
	return y->data[0];
}

Test(insilico, objectives_are_registered_under_openretinas_names)
{
	const char *const names[] = {
		"IncreaseObjective",
		"InnerNeuronVisualizationObjective",
		"ContrastiveNeuronObjective",
		"openretina.insilico.stimulus_optimization.objective.IncreaseObjective",
		"openretina.insilico.stimulus_optimization.objective.InnerNeuronVisualizationObjective",
		"openretina.insilico.stimulus_optimization.objective.ContrastiveNeuronObjective",
		"openretina.insilico.IncreaseObjective",
	};
	pt_expect_registered(reg, names, 7, FV_KIND_OBJECTIVE);
}

Test(insilico, increase_objective_value_gradient_and_frozen_model)
{
	fv_module *mm = make_model();
	fv_tensor *w = pt_tensor(mm, "w");
	fv_model *model = fv_model_new(mm);
	cr_assert_not_null(model, "%s", fv_errmsg());
	cr_assert_eq(fv_model_module(model), mm, "the model wraps the module");
	cr_assert_null(fv_model_module(NULL));
	cr_assert(!w->requires_grad, "fv_model freezes the parameters");
	cr_assert(!fv_module_training(mm), "fv_model puts the module in eval mode");
	fv_module *obj = pt_build(reg,
	                          "_target_: IncreaseObjective\n"
	                          "neuron_indices: [0, 2]\n"
	                          "data_key: s1\n"
	                          "response_reducer: {_target_: SliceMeanReducer, axis: 0, start: 1, "
	                          "length: 2}\n",
	                          0);
	fv_ctx *ctx = fv_ctx_new();
	/* responses 2 x_t w_j; neurons 0 and 2 average w to 2: 4 x_t = 4, 8, 12, 16 */
	fv_tensor *s = stimulus_of(1, 4, 1, 1, (const double[]){1, 2, 3, 4});
	s->requires_grad = true;
	fv_tensor *y = fv_module_objective(obj, ctx, model, s);
	cr_assert_not_null(y, "%s", fv_errmsg());
	pt_expect_close(y->data[0], 10, 1e-6, "mean of 8 and 12");
	cr_assert_str_eq(last_data_key, "s1");
	cr_assert_eq(fv_backward(ctx, y), FV_OK, "%s", fv_errmsg());
	const double want[4] = {0, 2, 2, 0};
	for (int t = 0; t < 4; t++)
		pt_expect_close(s->grad->data[t], want[t], 1e-6, "d objective / d stimulus");
	cr_assert_null(w->grad, "a frozen parameter gets no gradient");
	fv_model_free(model);
	cr_assert(w->requires_grad, "fv_model_free thaws the parameters");
	cr_assert(fv_module_training(mm), "and restores the mode");
	fv_module_free(obj);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, increase_objective_single_and_negative_index)
{
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	/* neuron -1 is neuron 2, w = 3: 6 x_t = 6, 12, 18, 24 */
	fv_module *obj = pt_build(reg,
	                          "{_target_: IncreaseObjective, neuron_indices: -1, data_key: null, "
	                          "response_reducer: {_target_: SliceMeanReducer, axis: 0, start: 1, "
	                          "length: 2}}",
	                          0);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 4, 1, 1, (const double[]){1, 2, 3, 4});
	pt_expect_close(objective_of(obj, model, ctx, s), 15, 1e-6, "mean of 12 and 18");
	cr_assert_null(last_data_key, "data_key null: the model's default");
	fv_model_free(model);
	fv_module_free(obj);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, increase_objective_errors)
{
	const pt_bad_spec bad[] = {
		{"{_target_: IncreaseObjective, neuron_indices: 0, data_key: s1}",
		 "missing required option 'response_reducer'"},
		{"{_target_: IncreaseObjective, neuron_indices: 0, data_key: s1, response_reducer: 3}",
		 "response_reducer: expected a map with a _target_"},
		{"{_target_: IncreaseObjective, neuron_indices: 0, data_key: s1, "
		 "response_reducer: {_target_: OptimizationStopper, max_iterations: 1}}",
		 "spec.yaml:1:64: IncreaseObjective: response_reducer: 'OptimizationStopper' is a stopper, "
		 "expected a reducer"},
		{"{_target_: IncreaseObjective, neuron_indices: 0, data_key: s1, "
		 "response_reducer: {_target_: SliceMeanReduce, axis: 0}}",
		 "did you mean 'SliceMeanReducer'?"},
		{"{_target_: IncreaseObjective, neuron_indices: [], data_key: s1, "
		 "response_reducer: {_target_: MeanReducer}}",
		 "neuron_indices: the list is empty"},
		{"{_target_: IncreaseObjective, neuron_indices: 0, "
		 "response_reducer: {_target_: MeanReducer}}",
		 "missing required option 'data_key'"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 2, 1, 1, (const double[]){1, 2});
	fv_module *obj = pt_build(reg,
	                          "{_target_: IncreaseObjective, neuron_indices: [0, 5], data_key: s1, "
	                          "response_reducer: {_target_: MeanReducer}}",
	                          0);
	fv_clear_error();
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("IncreaseObjective: neuron index 5 is out of range for 3 neurons");
	fv_module_free(obj);
	obj = pt_build(reg,
	               "{_target_: IncreaseObjective, neuron_indices: 0, data_key: s9, "
	               "response_reducer: {_target_: MeanReducer}}",
	               0);
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("IncreaseObjective: model: test model: unknown session 's9'");
	cr_assert_null(fv_module_objective(obj, ctx, NULL, s));
	pt_expect_msg("IncreaseObjective: no model given");
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, objective_must_be_a_scalar)
{
	/* A batch of two is not squeezed (as openretina): responses (2, T, 3),
	** and the "neuron" selection picks frames, leaving a vector. */
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_module *obj = pt_build(reg,
	                          "{_target_: IncreaseObjective, neuron_indices: [0, 1], data_key: s1, "
	                          "response_reducer: {_target_: MeanReducer}}",
	                          0);
	const int64_t shape[5] = {2, 1, 2, 1, 1};
	fv_tensor *s = fv_tensor_new(5, shape);
	fv_ctx *ctx = fv_ctx_new();
	fv_clear_error();
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("objective 'IncreaseObjective' returned a tensor of shape (2), expected a "
	              "scalar");
	fv_module *stopper = pt_make(reg, "OptimizationStopper", "max_iterations: 1", "s");
	cr_assert_null(fv_module_objective(stopper, ctx, model, s));
	pt_expect_msg("stopper 'OptimizationStopper' has no objective");
	fv_module_free(stopper);
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

static const char INNER[] = "_target_: InnerNeuronVisualizationObjective\n"
                            "data_key: s1\n"
                            "response_reducer: {_target_: MeanReducer, axis: 0}\n";

static fv_module *inner_objective(const char *layer, int channel)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml, "%slayer: %s\nchannel: %d\n", INNER, layer, channel);
	return pt_build(reg, yaml, 0);
}

/* (1, 2, 2, 3, 3): channel 1's centre pixel is 1 then 2; everything else 7 */
static fv_tensor *inner_stimulus(void)
{
	double v[36];
	for (int i = 0; i < 36; i++)
		v[i] = 7;
	v[((1 * 2 + 0) * 3 + 1) * 3 + 1] = 1;
	v[((1 * 2 + 1) * 3 + 1) * 3 + 1] = 2;
	return stimulus_of(2, 2, 3, 3, v);
}

Test(insilico, inner_neuron_objective_reads_the_captured_layer)
{
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = inner_stimulus();
	s->requires_grad = true;
	/* the layer doubles: central trace 2, 4; mean 3 */
	const char *names[2] = {"core.features.layer0.conv", "core_features_layer0_conv"};
	for (int i = 0; i < 2; i++) {
		fv_module *obj = inner_objective(names[i], 1);
		fv_ctx_reset(ctx);
		fv_zero_grad_to_none(s);
		fv_tensor *y = fv_module_objective(obj, ctx, model, s);
		cr_assert_not_null(y, "%s: %s", names[i], fv_errmsg());
		pt_expect_close(y->data[0], 3, 1e-6, names[i]);
		cr_assert_eq(fv_backward(ctx, y), FV_OK, "%s", fv_errmsg());
		for (int k = 0; k < 36; k++) {
			bool centre_of_1 = k == ((1 * 2 + 0) * 3 + 1) * 3 + 1 ||
			                   k == ((1 * 2 + 1) * 3 + 1) * 3 + 1;
			pt_expect_close(s->grad->data[k], centre_of_1 ? 1 : 0, 1e-6, "gradient");
		}
		fv_module_free(obj);
	}
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, inner_neuron_objective_errors)
{
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = inner_stimulus();
	fv_module *obj = pt_build(reg, INNER, 0);
	fv_clear_error();
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("layer and channel are not set");
	fv_module_free(obj);
	obj = inner_objective("core.features.layer9.conv", 0);
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("layer 'core.features.layer9.conv' is not an output the model's forward "
	              "produced (it produced: core.features.layer0.conv)");
	fv_module_free(obj);
	obj = inner_objective("core.features.layer0.conv", 2);
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("channel 2 is out of range: layer 'core.features.layer0.conv' has 2 channels");
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, captures_cost_nothing_outside_a_capture)
{
	fv_module *mm = make_model();
	cr_assert(!fv_module_capturing(mm));
	fv_model *model = fv_model_new(mm);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = inner_stimulus();
	fv_tensor *captured = (fv_tensor *)1;
	cr_assert_null(fv_model_forward_capture(model, ctx, s, "s1", "", &captured));
	pt_expect_msg("layer '': expected a module name below the model");
	cr_assert_null(captured);
	fv_tensor *y = fv_model_forward_capture(model, ctx, s, "s1", "core.features.layer0.conv",
	                                        &captured);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_not_null(captured);
	cr_assert_eq(captured->numel, 36);
	pt_expect_close(captured->data[0], 14, 1e-6, "2 x 7");
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

/* Two frames, one pixel, values x0 and x1: scores are w_j (x0 + x1). */
Test(insilico, contrastive_objective_value_and_gradient)
{
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_module *obj = pt_build(reg,
	                          "{_target_: ContrastiveNeuronObjective, on_cluster_idc: [0, 1], "
	                          "off_cluster_idc_list: [[2]], data_key: s1, temperature: 2.0, "
	                          "response_reducer: {_target_: MeanReducer, axis: 0}}",
	                          0);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 2, 1, 1, (const double[]){1, 3});
	s->requires_grad = true;
	/* S = 4: on = 1.5 S = 6, off = 3 S = 12, t = 2 */
	double t = 2, on = 6, off = 12;
	double lse = log(exp(on / t) + exp(off / t));
	fv_tensor *y = fv_module_objective(obj, ctx, model, s);
	cr_assert_not_null(y, "%s", fv_errmsg());
	pt_expect_close(y->data[0], on / t - lse + log(2), 1e-6, "objective");
	cr_assert_eq(fv_backward(ctx, y), FV_OK, "%s", fv_errmsg());
	double p_on = exp(on / t - lse), p_off = exp(off / t - lse);
	double d_ds = 1.5 / t - (p_on * 1.5 + p_off * 3) / t;
	pt_expect_close(s->grad->data[0], d_ds, 1e-6, "d objective / d x0");
	pt_expect_close(s->grad->data[1], d_ds, 1e-6, "d objective / d x1");
	fv_module_free(obj);
	/* equal clusters: log(1/2) + log 2 = 0 */
	obj = pt_build(reg,
	               "{_target_: ContrastiveNeuronObjective, on_cluster_idc: 1, "
	               "off_cluster_idc_list: [[1]], data_key: s1, "
	               "response_reducer: {_target_: MeanReducer, axis: 0}}",
	               0);
	pt_expect_close(objective_of(obj, model, ctx, s), 0, 1e-6, "equal clusters");
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

Test(insilico, contrastive_objective_errors)
{
	const pt_bad_spec bad[] = {
		{"{_target_: ContrastiveNeuronObjective, on_cluster_idc: [0], off_cluster_idc_list: "
		 "[[1]], data_key: s1, temperature: 0, response_reducer: {_target_: MeanReducer}}",
		 "temperature must be > 0, got 0"},
		{"{_target_: ContrastiveNeuronObjective, on_cluster_idc: [0], off_cluster_idc_list: "
		 "[], data_key: s1, response_reducer: {_target_: MeanReducer}}",
		 "spec.yaml:1:61: ContrastiveNeuronObjective: off_cluster_idc_list: expected a non-empty "
		 "list of index lists"},
		{"{_target_: ContrastiveNeuronObjective, on_cluster_idc: [0], off_cluster_idc_list: "
		 "[[]], data_key: s1, response_reducer: {_target_: MeanReducer}}",
		 "spec.yaml:1:84: ContrastiveNeuronObjective: off_cluster_idc_list: the list of neuron "
		 "indices is empty"},
		{"{_target_: ContrastiveNeuronObjective, on_cluster_idc: [x], off_cluster_idc_list: "
		 "[[1]], data_key: s1, response_reducer: {_target_: MeanReducer}}",
		 "spec.yaml:1:57: ContrastiveNeuronObjective: on_cluster_idc: expected an integer index"},
		{"{_target_: ContrastiveNeuronObjective, on_cluster_idc: {a: 1}, off_cluster_idc_list: "
		 "[[1]], data_key: s1, response_reducer: {_target_: MeanReducer}}",
		 "spec.yaml:1:40: ContrastiveNeuronObjective: on_cluster_idc: expected a list of neuron "
		 "indices"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
	fv_module *mm = make_model();
	fv_model *model = fv_model_new(mm);
	fv_module *obj = pt_build(reg,
	                          "{_target_: ContrastiveNeuronObjective, on_cluster_idc: [0], "
	                          "off_cluster_idc_list: [[3]], data_key: s1, "
	                          "response_reducer: {_target_: MeanReducer, axis: 0}}",
	                          0);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = stimulus_of(1, 2, 1, 1, (const double[]){1, 3});
	fv_clear_error();
	cr_assert_null(fv_module_objective(obj, ctx, model, s));
	pt_expect_msg("ContrastiveNeuronObjective: neuron index 3 is out of range for 3 neurons");
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
}

/* ---- fv_optimize_stimulus ---------------------------------------------------------------- */

typedef struct run {
	fv_module *mm, *objective, *stopper;
	fv_model *model;
	fv_module *pen[2], *post[2];
	size_t n_pen, n_post;
	fv_optim_config opt;
	fv_tensor *stimulus;
	double objective_trace[16], loss_trace[16], first_trace[16];
	int n_trace;
	int fail_at; /* the callback fails at this iteration (-1: never) */
} run;

static fv_status record(void *ud, const fv_iteration *it)
{
	run *r = ud;
	cr_assert_eq(it->index, r->n_trace, "iterations are numbered in order");
	if (it->index == r->fail_at)
		return fv_error(FV_ERR_IO, "the callback says stop");
	if (r->n_trace < 16) {
		r->objective_trace[r->n_trace] = it->objective;
		r->loss_trace[r->n_trace] = it->loss;
		r->first_trace[r->n_trace] = it->stimulus->data[0];
		r->n_trace++;
	}
	return FV_OK;
}

/* IncreaseObjective of neuron 0 (w = 1) averaged over two frames: the
** objective is x0 + x1 of a (1, 1, 2, 1, 1) stimulus starting at `x`. */
static void run_init(run *r, double x, const char *stopper)
{
	memset(r, 0, sizeof *r);
	r->fail_at = -1;
	r->mm = make_model();
	r->model = fv_model_new(r->mm);
	r->objective = pt_build(reg,
	                        "{_target_: IncreaseObjective, neuron_indices: 0, data_key: s1, "
	                        "response_reducer: {_target_: MeanReducer, axis: 0}}",
	                        0);
	r->stopper = pt_build(reg, stopper, 0);
	r->opt = fv_optim_defaults(FV_OPTIM_SGD);
	r->opt.lr = 0.5;
	r->stimulus = stimulus_of(1, 2, 1, 1, (const double[]){x, x});
}

static fv_status run_go(run *r, int64_t *n_iter)
{
	fv_optimize_args args = {.struct_size = sizeof args,
	                         .model = r->model,
	                         .objective = r->objective,
	                         .stopper = r->stopper,
	                         .optimizer = &r->opt,
	                         .n_penalties = r->n_pen,
	                         .penalties = r->pen,
	                         .n_postprocessors = r->n_post,
	                         .postprocessors = r->post,
	                         .on_iteration = record,
	                         .ud = r};
	return fv_optimize_stimulus(r->stimulus, &args, n_iter);
}

static void run_free(run *r)
{
	for (size_t i = 0; i < 2; i++) {
		fv_module_free(r->pen[i]);
		fv_module_free(r->post[i]);
	}
	fv_module_free(r->objective);
	fv_module_free(r->stopper);
	fv_model_free(r->model);
	fv_module_free(r->mm);
	fv_tensor_free(r->stimulus);
}

Test(insilico, optimize_sgd_steps_the_stimulus_up_the_objective)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 3}");
	int64_t n = -1;
	cr_assert_eq(run_go(&r, &n), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(n, 3);
	/* d objective / d x = 1 each: SGD adds lr = 0.5 per iteration */
	const double obj[3] = {2, 3, 4};
	for (int i = 0; i < 3; i++) {
		pt_expect_close(r.objective_trace[i], obj[i], 1e-6, "objective before step i");
		pt_expect_close(r.loss_trace[i], -obj[i], 1e-6, "loss = -objective");
		pt_expect_close(r.first_trace[i], 1.5 + 0.5 * i, 1e-6, "stimulus after step i");
	}
	pt_expect_close(r.stimulus->data[0], 2.5, 1e-6, "final");
	pt_expect_close(r.stimulus->data[1], 2.5, 1e-6, "final");
	cr_assert(!r.stimulus->requires_grad, "the stimulus is detached at the end");
	cr_assert_null(r.stimulus->grad);
	cr_assert_null(pt_tensor(r.mm, "w")->grad, "the model is frozen");
	run_free(&r);
}

Test(insilico, optimize_adds_penalties_to_the_loss)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 3}");
	r.pen[0] = pt_make(reg, "RangeRegularizationLoss",
	                   "{min_max_values: [[null, 1.25]], max_norm: null}", "p");
	r.n_pen = 1;
	cr_assert_eq(run_go(&r, NULL), FV_OK, "%s", fv_errmsg());
	/* x = 1: loss -2, gradient -1 -> 1.5; then 0.25 above the bound on both
	** frames: loss -3 + 0.5, gradient -1 + 1 = 0: the stimulus stays */
	const double loss[3] = {-2, -2.5, -2.5}, obj[3] = {2, 3, 3};
	cr_assert_eq(r.n_trace, 3);
	for (int i = 0; i < 3; i++) {
		pt_expect_close(r.loss_trace[i], loss[i], 1e-6, "loss");
		pt_expect_close(r.objective_trace[i], obj[i], 1e-6, "objective");
	}
	pt_expect_close(r.stimulus->data[0], 1.5, 1e-6, "final");
	run_free(&r);
}

Test(insilico, optimize_postprocesses_after_the_step_in_order)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 2}");
	/* clamp to 1.2, then rescale to norm 2 (x = sqrt 2 each): the order shows */
	r.post[0] = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	                    "{min_max_values: [[null, 1.2]], norm: null}", "c");
	r.post[1] = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	                    "{min_max_values: [[null, null]], norm: 2}", "n");
	r.n_post = 2;
	cr_assert_eq(run_go(&r, NULL), FV_OK, "%s", fv_errmsg());
	pt_expect_close(r.first_trace[0], sqrt(2), 1e-6, "clamped then rescaled");
	pt_expect_close(r.objective_trace[1], 2 * sqrt(2), 1e-6, "the next objective sees it");
	pt_expect_close(r.stimulus->data[1], sqrt(2), 1e-6, "final");
	run_free(&r);
}

Test(insilico, optimize_early_stopper_ends_the_loop)
{
	run r;
	run_init(&r, 1.25, "{_target_: EarlyStopper, max_iterations: 10, patience: 1}");
	r.pen[0] = pt_make(reg, "RangeRegularizationLoss",
	                   "{min_max_values: [[null, 1.0]], max_norm: null, factor: 3}", "p");
	r.n_pen = 1;
	int64_t n = 0;
	cr_assert_eq(run_go(&r, &n), FV_OK, "%s", fv_errmsg());
	/* x = 1.25: loss -2.5 + 3 * 0.5 = -1, gradient -1 + 3 = 2 -> 0.25;
	** x = 0.25: loss -0.5 > -1: the first increase stops (patience 1) */
	cr_assert_eq(n, 2);
	pt_expect_close(r.loss_trace[0], -1, 1e-6, "loss 0");
	pt_expect_close(r.loss_trace[1], -0.5, 1e-6, "loss 1");
	pt_expect_close(r.stimulus->data[0], 0.75, 1e-6, "the last step is taken");
	run_free(&r);
}

Test(insilico, optimize_with_adam_takes_torchs_first_step)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 1}");
	const char *spec = "{_target_: torch.optim.Adam, lr: 0.1, _partial_: true}";
	fv_config *cfg = fv_config_load_string(spec, strlen(spec), "opt.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	cr_assert_eq(fv_optim_config_parse(fv_config_root(cfg), &r.opt), FV_OK, "%s", fv_errmsg());
	fv_config_free(cfg);
	cr_assert_eq(run_go(&r, NULL), FV_OK, "%s", fv_errmsg());
	/* Adam's first step is lr * g / (|g| + eps) against the gradient -1 */
	pt_expect_close(r.stimulus->data[0], 1 + 0.1 / (1 + 1e-8), 1e-6, "one Adam step");
	run_free(&r);
}

Test(insilico, optimize_argument_errors)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 1}");
	fv_module *ok_stopper = r.stopper, *ok_objective = r.objective;
	/* not a persistent stimulus */
	fv_ctx *ctx = fv_ctx_new();
	const int64_t shape[5] = {1, 1, 2, 1, 1};
	fv_tensor *tmp = fv_ctx_zeros(ctx, 5, shape), *keep = r.stimulus;
	r.stimulus = tmp;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("the stimulus must be a persistent tensor");
	r.stimulus = keep;
	/* components in the wrong places */
	r.stopper = NULL;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("optimize_stimulus: no stopper given");
	r.stopper = ok_objective;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("stopper 'IncreaseObjective' (kind objective) has no should_stop");
	r.stopper = ok_stopper;
	r.objective = ok_stopper;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("objective 'OptimizationStopper' is a stopper, not an objective");
	r.objective = ok_objective;
	r.pen[0] = pt_make(reg, "ChangeNormJointlyClipRangeSeparately",
	                   "{min_max_values: [[null, null]], norm: 1}", "c");
	r.n_pen = 1;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("penalty 0 ('ChangeNormJointlyClipRangeSeparately') has no penalty");
	r.n_pen = 0;
	r.post[0] = pt_make(reg, "RangeRegularizationLoss",
	                    "{min_max_values: [[null, null]], max_norm: 1}", "p");
	r.n_post = 1;
	cr_assert_eq(run_go(&r, NULL), FV_ERR_ARG);
	pt_expect_msg("postprocessor 0 ('RangeRegularizationLoss') has no projection");
	cr_assert_eq(fv_optimize_stimulus(r.stimulus, NULL, NULL), FV_ERR_ARG);
	pt_expect_msg("optimize_stimulus: no arguments given");
	fv_ctx_free(ctx);
	run_free(&r);
}

Test(insilico, optimize_stops_on_a_failing_iteration)
{
	run r;
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 5}");
	r.fail_at = 2;
	int64_t n = -1;
	cr_assert_eq(run_go(&r, &n), FV_ERR_IO);
	pt_expect_msg("optimize_stimulus, iteration 2: the callback says stop");
	cr_assert_eq(n, 2, "two iterations completed");
	run_free(&r);
	run_init(&r, 1, "{_target_: OptimizationStopper, max_iterations: 5}");
	fv_module_free(r.objective);
	r.objective = pt_build(reg,
	                       "{_target_: IncreaseObjective, neuron_indices: 4, data_key: s1, "
	                       "response_reducer: {_target_: MeanReducer, axis: 0}}",
	                       0);
	cr_assert_eq(run_go(&r, &n), FV_ERR_ARG);
	pt_expect_msg("optimize_stimulus, iteration 0: objective 'IncreaseObjective': "
	              "IncreaseObjective: neuron index 4 is out of range for 3 neurons");
	cr_assert_eq(n, 0);
	cr_assert(!r.stimulus->requires_grad, "restored after a failure too");
	run_free(&r);
}

/* ---- captures in the real core (plugins/cores/simple_core.c) ------------------------------ */

/* The golden cases' UnifiedCoreReadout (random weights are enough here). */
static fv_module *golden_model(fv_registry *r)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/golden/insilico_optimize_adam.yaml", FOVEA_TEST_SRCDIR);
	fv_config *cfg = fv_config_load_file(path);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_component *c = fv_registry_find(r, "UnifiedCoreReadout", NULL);
	cr_assert_not_null(c);
	fv_build_args a = {.struct_size = sizeof a, .registry = r, .seed = 3};
	fv_module *m = fv_instantiate_component(c, fv_node_path(fv_config_root(cfg), "model.kwargs"),
	                                        &a, "");
	cr_assert_not_null(m, "%s", fv_errmsg());
	fv_config_free(cfg);
	return m;
}

static fv_tensor *capture(fv_model *model, fv_ctx *ctx, fv_tensor *s, const char *layer)
{
	fv_tensor *out = NULL;
	cr_assert_not_null(fv_model_forward_capture(model, ctx, s, "session_1", layer, &out),
	                   "%s: %s", layer, fv_errmsg());
	return out;
}

Test(insilico_core, simple_core_announces_openretinas_module_names)
{
	fv_registry *r =
	        PT_REGISTRY("cores", "readouts", "models", "regularizers", "reducers", "objectives");
	fv_module *mm = golden_model(r);
	fv_model *model = fv_model_new(mm);
	fv_ctx *ctx = fv_ctx_new();
	const int64_t shape[5] = {1, 2, 24, 11, 10};
	fv_tensor *s = pt_input(5, shape, 11, -1, 1);
	/* ELU(bias output) is the nonlin output, which is the layer's output */
	fv_tensor *bias = capture(model, ctx, s, "core.features.layer1.bias");
	fv_tensor *nonlin = capture(model, ctx, s, "core.features.layer1.nonlin");
	fv_tensor *layer = capture(model, ctx, s, "core_features_layer1");
	fv_tensor *features = capture(model, ctx, s, "core.features");
	cr_assert_eq(bias->numel, nonlin->numel);
	for (int64_t i = 0; i < bias->numel; i++) {
		double b = bias->data[i], want = b > 0 ? b : expm1(b);
		pt_expect_close(nonlin->data[i], want, 1e-5, "elu");
		cr_assert_eq(layer->data[i], nonlin->data[i]);
		cr_assert_eq(features->data[i], nonlin->data[i]);
	}
	/* the objective reads channel 3's centre of the conv output, mean over time */
	fv_tensor *conv = capture(model, ctx, s, "core_features_layer1_conv");
	cr_assert_eq(conv->ndim, 5);
	int64_t T = conv->shape[2], H = conv->shape[3], W = conv->shape[4];
	double want = 0;
	for (int64_t t = 0; t < T; t++)
		want += conv->data[((3 * T + t) * H + H / 2) * W + W / 2] / (double)T;
	fv_tensor *none = NULL;
	cr_assert_null(fv_model_forward_capture(model, ctx, s, "session_1", "core.features.layer1.norm",
	                                        &none));
	pt_expect_msg("core.features.layer0.conv, core.features.layer0.bias, "
	              "core.features.layer0.nonlin, core.features.layer0, core.features.layer1.conv");
	fv_module *obj = pt_build(r,
	                          "{_target_: InnerNeuronVisualizationObjective, data_key: session_1, "
	                          "layer: core_features_layer1_conv, channel: 3, "
	                          "response_reducer: {_target_: MeanReducer, axis: 0}}",
	                          0);
	fv_tensor *y = fv_module_objective(obj, ctx, model, s);
	cr_assert_not_null(y, "%s", fv_errmsg());
	pt_expect_close(y->data[0], want, 1e-5, "InnerNeuronVisualizationObjective");
	fv_module_free(obj);
	fv_model_free(model);
	fv_module_free(mm);
	fv_tensor_free(s);
	fv_ctx_free(ctx);
	fv_registry_free(r);
}
