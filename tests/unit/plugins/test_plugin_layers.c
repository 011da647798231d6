/*
** test_plugin_layers.c: the layer plugins (plugins/layers/):
** ParametrizedSoftplus, ParametrizedELU, Bias3DLayer and
** WeightedChannelSumLayer against naive references written here from
** openretina's formulas, on shapes and values other than the golden
** cases', their state_dict names, finite-difference gradients of inputs and
** parameters, and every error path.
*/
#include "plugin_testing.h"

PT_SUITE(layers, "layers");

static fv_module *make(const char *target, const char *yaml)
{
	return pt_make(reg, target, yaml, "layer");
}

static double softplus(double x)
{
	return x > 20 ? x : log1p(exp(x));
}

/* The module's forward of x as the function gradcheck differentiates:
** in[0] is x, the others are the module's parameters. */
static fv_tensor *forward_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	return fv_module_forward(ud, ctx, in[0], &fa);
}

/* d/dx and d/d every named parameter against central differences. */
static void gradcheck_layer(fv_module *m, fv_tensor *x, const char *const *params, int n)
{
	fv_tensor *in[8] = {x};
	for (int i = 0; i < n; i++)
		in[1 + i] = pt_tensor(m, params[i]);
	x->requires_grad = true;
	gradcheck(fv_module_component(m)->names[0], forward_fn, 1 + n, in, m);
}

/* ---- ParametrizedSoftplus --------------------------------------------------------- */

Test(layers, softplus_is_w_softplus_of_ax_plus_b)
{
	int64_t shape[2] = {3, 4};
	fv_tensor *x = pt_input(2, shape, 1, -3, 3);
	x->data[0] = 25; /* past torch's threshold (a x + b > 20): linear */
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("ParametrizedSoftplus", "{a: 0.9, b: -0.5, w: 2.0}");
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	for (int64_t i = 0; i < x->numel; i++)
		pt_expect_close(y->data[i], 2.0 * softplus(0.9 * x->data[i] - 0.5), 1e-5, "y");
	pt_expect_close(y->data[0], 2.0 * (0.9 * 25 - 0.5), 1e-6, "linear above 20");
	pt_release(m, x, ctx);
}

Test(layers, softplus_learns_a_only_with_learn_a)
{
	fv_module *m = make("openretina.modules.nonlinearities.ParametrizedSoftplus", NULL);
	const char *fixed[] = {"b", "w"};
	pt_expect_names(m, fixed, 2);
	cr_assert_eq(pt_tensor(m, "w")->data[0], 1); /* defaults a=1, b=0, w=1 */
	cr_assert_eq(pt_tensor(m, "b")->data[0], 0);
	fv_module_free(m);
	m = make("ParametrizedSoftplus", "{learn_a: true, a: 0.5}");
	const char *learnt[] = {"a", "b", "w"};
	pt_expect_names(m, learnt, 3);
	cr_assert_eq(pt_tensor(m, "a")->data[0], 0.5f);
	fv_module_free(m);
}

Test(layers, softplus_gradients_match_finite_differences)
{
	int64_t shape[3] = {2, 3, 2};
	fv_tensor *x = pt_input(3, shape, 2, -2, 2);
	fv_module *m = make("ParametrizedSoftplus", "{learn_a: true, a: 0.7, b: 0.3, w: 1.4}");
	const char *params[] = {"a", "b", "w"};
	gradcheck_layer(m, x, params, 3);
	fv_module_free(m);
	m = make("ParametrizedSoftplus", "{a: 1.3, b: -0.2}");
	gradcheck_layer(m, x, params + 1, 2);
	fv_module_free(m);
	fv_tensor_free(x);
}

/* ---- ParametrizedELU ---------------------------------------------------------------- */

Test(layers, elu_is_linear_above_zero_and_exponential_below)
{
	int64_t shape[1] = {9};
	fv_tensor *x = pt_input(1, shape, 3, -2, 2);
	x->data[4] = 0; /* the exponential branch: a (exp(0) - 1) = 0 */
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("ParametrizedELU", "{a: 0.6, b: 2.0, c: 1.7, device: cpu}");
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	for (int64_t i = 0; i < x->numel; i++) {
		double v = x->data[i];
		pt_expect_close(y->data[i], v > 0 ? 1.7 * v : 0.6 * (exp(v / 2.0) - 1), 1e-6, "y");
	}
	const char *names[] = {"a", "b", "c"};
	pt_expect_names(m, names, 3);
	pt_release(m, x, ctx);
}

Test(layers, elu_at_zero_has_slope_a_over_b)
{
	int64_t shape[1] = {1};
	fv_tensor *x = fv_tensor_new(1, shape);
	x->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("ParametrizedELU", "{a: 3.0, b: 2.0, c: 5.0}");
	cr_assert_eq(fv_backward(ctx, pt_forward(m, ctx, x, NULL, -1)), FV_OK, "%s", fv_errmsg());
	pt_expect_close(x->grad->data[0], 1.5, 1e-6, "dy/dx at 0");
	pt_expect_close(pt_tensor(m, "c")->grad->data[0], 0, 1e-9, "dy/dc at 0");
	pt_release(m, x, ctx);
}

Test(layers, elu_gradients_match_finite_differences)
{
	int64_t shape[2] = {4, 5};
	fv_tensor *x = pt_input(2, shape, 4, -2, 2);
	fv_module *m = make("ParametrizedELU", "{a: 1.2, b: 0.7, c: 0.9}");
	const char *params[] = {"a", "b", "c"};
	gradcheck_layer(m, x, params, 3);
	pt_release(m, x, NULL);
}

/* ---- Bias3DLayer ---------------------------------------------------------------------- */

Test(layers, bias3d_adds_a_per_channel_offset)
{
	int64_t shape[5] = {2, 3, 2, 2, 3};
	fv_tensor *x = pt_input(5, shape, 5, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("openretina.modules.layers.scaling.Bias3DLayer",
	                    "{channels: 3, initial: 0.25}");
	fv_tensor *bias = pt_tensor(m, "bias");
	const int64_t bshape[5] = {1, 3, 1, 1, 1};
	pt_expect_shape(bias, 5, bshape, "bias");
	bias->data[1] = -2;
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	for (int64_t i = 0; i < x->numel; i++) {
		int64_t c = i / 12 % 3;
		pt_expect_close(y->data[i], x->data[i] + (c == 1 ? -2 : 0.25), 1e-6, "y");
	}
	const char *params[] = {"bias"};
	gradcheck_layer(m, x, params, 1);
	pt_release(m, x, ctx);
}

Test(layers, bias3d_refuses_other_inputs)
{
	fv_module *m = make("Bias3DLayer", "channels: 3");
	int64_t four[5] = {2, 4, 2, 2, 2}, flat[4] = {2, 3, 2, 2};
	pt_expect_forward_error(m, NULL, 5, four, "expected an input (N, 3, T, H, W), got (2, 4");
	pt_expect_forward_error(m, NULL, 4, flat, "expected an input (N, 3, T, H, W)");
	fv_module_free(m);
	pt_expect_make_error(reg, "Bias3DLayer", NULL, "channels");
	pt_expect_make_error(reg, "Bias3DLayer", "channels: 0", "channels");
}

/* ---- WeightedChannelSumLayer ------------------------------------------------------------ */

Test(layers, channel_sum_weights_and_sums_the_channels)
{
	int64_t shape[5] = {2, 2, 3, 2, 2};
	fv_tensor *x = pt_input(5, shape, 6, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("WeightedChannelSumLayer", "{init_channel_weights: [0.3, -1.5], "
	                                               "trainable: true}");
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	const int64_t yshape[5] = {2, 1, 3, 2, 2};
	pt_expect_shape(y, 5, yshape, "y");
	for (int64_t b = 0; b < 2; b++)
		for (int64_t p = 0; p < 12; p++) {
			double want = 0.3 * x->data[b * 24 + p] - 1.5 * x->data[b * 24 + 12 + p];
			pt_expect_close(y->data[b * 12 + p], want, 1e-6, "y");
		}
	const char *params[] = {"channel_weights"};
	gradcheck_layer(m, x, params, 1);
	pt_release(m, x, ctx);
}

Test(layers, channel_sum_passes_one_channel_unchanged_and_trains_only_when_asked)
{
	int64_t shape[5] = {1, 1, 2, 2, 2};
	fv_tensor *x = pt_input(5, shape, 7, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("WeightedChannelSumLayer", "init_channel_weights: [0.2, 0.3, 0.5]");
	cr_assert_eq(pt_forward(m, ctx, x, NULL, -1), x, "one channel: the input itself");
	int n_params;
	cr_assert_eq(pt_n_tensors(m, &n_params), 1);
	cr_assert_eq(n_params, 0, "trainable false: not a parameter");
	int64_t two[5] = {1, 2, 2, 2, 2}, flat[3] = {1, 3, 2};
	pt_expect_forward_error(m, NULL, 5, two, "has 2 channels for 3 weights");
	pt_expect_forward_error(m, NULL, 3, flat, "expected an input (N, C, T, H, W)");
	pt_release(m, x, ctx);
	pt_expect_make_error(reg, "WeightedChannelSumLayer", "init_channel_weights: []",
	                     "at least one weight");
	pt_expect_make_error(reg, "WeightedChannelSumLayer", NULL, "init_channel_weights");
}

/* fv_module_forward passes a NULL input on as NULL; a direct call says so. */
Test(layers, a_missing_input_is_an_error_not_a_crash)
{
	const char *targets[] = {"ParametrizedSoftplus", "ParametrizedELU"};
	fv_ctx *ctx = fv_ctx_new();
	for (size_t i = 0; i < 2; i++) {
		fv_module *m = make(targets[i], NULL);
		fv_forward_args fa = FV_FORWARD_ARGS_INIT;
		fv_clear_error();
		cr_assert_null(fv_module_component(m)->forward(m, ctx, NULL, &fa));
		pt_expect_msg("no input");
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
}

Test(layers, every_name_is_registered)
{
	const char *names[] = {
		"ParametrizedSoftplus", "openretina.modules.nonlinearities.ParametrizedSoftplus",
		"ParametrizedELU", "openretina.modules.nonlinearities.ParametrizedELU",
		"Bias3DLayer", "openretina.modules.layers.Bias3DLayer", "WeightedChannelSumLayer",
		"openretina.modules.layers.reducers.WeightedChannelSumLayer",
	};
	pt_expect_registered(reg, names, sizeof names / sizeof *names, FV_KIND_LAYER);
}
