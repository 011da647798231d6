/*
** test_plugin_spatial_contrast.c: SpatialContrastReadout and
** MultiSpatialContrastReadout (plugins/readouts/spatial_contrast.c, multi.c)
** against a naive double-precision reference written here from
** openretina's formulas, on shapes other than the golden cases', with
** finite-difference gradients and the error paths.
*/
#include "plugin_testing.h"

PT_SUITE(spatial_contrast, "readouts");

#define N 3  /* neurons */
#define TF 3 /* temporal filter length */
#define H 4
#define W 5
#define T 6

/* Filters as YAML: neuron 2's are all zero (a non-finite STA). */
static double sf_at(int k, int p)
{
	return k == 2 ? 0 : 0.2 + 0.1 * ((p * 7 + k * 3) % 5);
}

static double tf_at(int k, int j)
{
	return k == 2 ? 0 : ((j + k) % 3 - 1) * 0.5 + 0.1 * j;
}

static void filters_yaml(char *buf, size_t size, int n)
{
	size_t len = (size_t)snprintf(buf, size, "spatial_filters: [");
	for (int k = 0; k < n; k++) {
		len += (size_t)snprintf(buf + len, size - len, "%s[", k ? ", " : "");
		for (int y = 0; y < H; y++) {
			len += (size_t)snprintf(buf + len, size - len, "%s[", y ? ", " : "");
			for (int x = 0; x < W; x++)
				len += (size_t)snprintf(buf + len, size - len, "%s%.3f", x ? ", " : "",
				                        sf_at(k, y * W + x));
			len += (size_t)snprintf(buf + len, size - len, "]");
		}
		len += (size_t)snprintf(buf + len, size - len, "]");
	}
	len += (size_t)snprintf(buf + len, size - len, "]\ntemporal_filters: [");
	for (int k = 0; k < n; k++) {
		len += (size_t)snprintf(buf + len, size - len, "%s[", k ? ", " : "");
		for (int j = 0; j < TF; j++)
			len += (size_t)snprintf(buf + len, size - len, "%s%.3f", j ? ", " : "", tf_at(k, j));
		len += (size_t)snprintf(buf + len, size - len, "]");
	}
	snprintf(buf + len, size - len, "]\n");
}

static fv_module *make_readout(const char *extra)
{
	char yaml[4096];
	int len = snprintf(yaml, sizeof yaml, "in_shape: [1, %d, %d, %d]\noutdims: %d\n%s", T, H, W,
	                   N, extra);
	filters_yaml(yaml + len, sizeof yaml - (size_t)len, N);
	return pt_make(reg, "SpatialContrastReadout", yaml, "readout");
}

static double softplus(double x)
{
	return x > 20 ? x : log1p(exp(x));
}

/* y[b, t, k] from openretina's formula, with the module's parameters. */
static double naive_y(fv_module *m, const fv_tensor *x, int b, int t, int k)
{
	double f[H * W], sum_sf = 0, imean = 0, mean_sq = 0;
	for (int p = 0; p < H * W; p++) {
		f[p] = 0;
		for (int j = 0; j < TF; j++)
			f[p] += tf_at(k, j) * x->data[(b * T + t + j) * H * W + p];
		sum_sf += sf_at(k, p);
	}
	for (int p = 0; p < H * W; p++) {
		imean += f[p] * sf_at(k, p) / (sum_sf + 1e-8);
		mean_sq += f[p] * f[p] * sf_at(k, p) / (sum_sf + 1e-8);
	}
	double lsc = sqrt(fmax(mean_sq - imean * imean, 1e-6));
	double w = pt_tensor(m, "w")->data[k], a = pt_tensor(m, "nl_a")->data[k];
	double bb = pt_tensor(m, "nl_b")->data[k], c = pt_tensor(m, "nl_c")->data[k];
	return a * softplus(bb * (imean + w * lsc) + c);
}

Test(spatial_contrast, readout_matches_the_formula)
{
	fv_module *m = make_readout("w_init: 0.7\na_init: 2.0\nb_init: 1.5\nc_init: -0.5\n");
	const char *names[] = {"w", "nl_a", "nl_b", "nl_c", "bias", "spatial_filters",
	                       "temporal_filters", "sf_sums"};
	pt_expect_names(m, names, 8);
	int n_params;
	pt_n_tensors(m, &n_params);
	cr_assert_eq(n_params, 4, "bias and the filters are not trained");
	pt_tensor(m, "w")->data[1] = -0.3f; /* per-neuron values */
	pt_expect_close(pt_tensor(m, "sf_sums")->data[2], 0, 0, "zero filter sum");
	int64_t shape[5] = {2, 1, T, H, W};
	fv_tensor *x = pt_input(5, shape, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	const int64_t yshape[3] = {2, T - TF + 1, N};
	pt_expect_shape(y, 3, yshape, "y");
	for (int b = 0; b < 2; b++)
		for (int t = 0; t < T - TF + 1; t++)
			for (int k = 0; k < N; k++)
				pt_expect_close(y->data[(b * (T - TF + 1) + t) * N + k], naive_y(m, x, b, t, k),
				                1e-5, "y");
	cr_assert_eq(pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT), 0);
	pt_release(m, x, ctx);
}

static fv_tensor *forward_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	return fv_module_forward(ud, ctx, in[0], &fa);
}

Test(spatial_contrast, gradients_match_finite_differences)
{
	fv_module *m = make_readout("w_init: 0.4\na_init: 1.0\nc_init: 0.2\n");
	int64_t shape[5] = {1, 1, T, H, W};
	fv_tensor *in[5] = {gc_input(5, shape, 4, -1, 1), pt_tensor(m, "w"), pt_tensor(m, "nl_a"),
	                    pt_tensor(m, "nl_b"), pt_tensor(m, "nl_c")};
	gradcheck("SpatialContrastReadout", forward_fn, 5, in, m);
	fv_tensor_free(in[0]);
	fv_module_free(m);
}

Test(spatial_contrast, readout_refuses_bad_filters_and_inputs)
{
	fv_module *m = make_readout("");
	int64_t two_channels[5] = {1, 2, T, H, W}, short_movie[5] = {1, 1, TF - 1, H, W};
	int64_t other_frame[5] = {1, 1, T, H, W + 1};
	pt_expect_forward_error(m, NULL, 5, two_channels, "expected an input (N, 1, T, 4, 5)");
	pt_expect_forward_error(m, NULL, 5, short_movie, "with T >= 3");
	pt_expect_forward_error(m, NULL, 5, other_frame, "got (1, 1, 6, 4, 6)");
	fv_module_free(m);
	char filters[4096], yaml[4200];
	filters_yaml(filters, sizeof filters, N);
	snprintf(yaml, sizeof yaml, "in_shape: [1, %d, %d, %d]\noutdims: 2\n%s", T, H, W, filters);
	pt_expect_make_error(reg, "SpatialContrastReadout", yaml,
	                     "spatial_filters: expected (2, 4, 5): (neurons, height, width), "
	                     "got (3, 4, 5)");
	snprintf(yaml, sizeof yaml, "in_shape: [2, %d, %d, %d]\noutdims: 3\n%s", T, H, W, filters);
	pt_expect_make_error(reg, "SpatialContrastReadout", yaml, "expected one channel, got 2");
	snprintf(yaml, sizeof yaml, "in_shape: [1, %d, %d, %d]\noutdims: 3\n", T, H, W);
	pt_expect_make_error(reg, "SpatialContrastReadout", yaml, "spatial_filters");
}

/* ---- MultiSpatialContrastReadout -------------------------------------------------- */

static fv_module *make_multi(void)
{
	/* session b gets a's filters of neurons 1.. (2 neurons), a all three */
	char all[4096], yaml[9000];
	filters_yaml(all, sizeof all, N);
	const char *sf = strstr(all, "spatial_filters: ") + 17;
	const char *tf = strstr(all, "temporal_filters: ") + 18;
	int sf_len = (int)(strstr(all, "\ntemporal") - sf);
	int tf_len = (int)(strlen(tf) - 1);
	snprintf(yaml, sizeof yaml,
	         "in_shape: [1, %d, %d, %d]\nn_neurons_dict: {b: 3, a: 3}\nw_init: 0.5\n"
	         "spatial_filters_dict: {a: %.*s, b: %.*s}\n"
	         "temporal_filters_dict: {a: %.*s, b: %.*s}\n"
	         "mean_activity_dict: {a: [1, 2, 3], b: [4, 5, 6]}\n",
	         T, H, W, sf_len, sf, sf_len, sf, tf_len, tf, tf_len, tf);
	return pt_make(reg, "MultiSpatialContrastReadout", yaml, "readout");
}

Test(spatial_contrast, multi_gives_each_session_its_filters)
{
	fv_module *m = make_multi();
	fv_module *one = make_readout("w_init: 0.5\n");
	cr_assert_float_eq(pt_tensor(m, "b.bias")->data[2], 6, 1e-6, "mean activity per session");
	int64_t shape[5] = {2, 1, T, H, W};
	fv_tensor *x = pt_input(5, shape, 5, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *ya = pt_forward(m, ctx, x, "a", -1), *y1 = pt_forward(one, ctx, x, NULL, -1);
	for (int64_t i = 0; i < y1->numel; i++)
		cr_assert_float_eq(ya->data[i], y1->data[i], 1e-6);
	fv_tensor *all = pt_forward(m, ctx, x, NULL, -1); /* sorted keys: a then b */
	cr_assert_eq(all->shape[2], 6);
	const char *names[] = {"a.spatial_filters", "b.temporal_filters", "b.sf_sums", "a.nl_c"};
	for (int i = 0; i < 4; i++)
		pt_tensor(m, names[i]);
	cr_assert_eq(pt_regularizer(m, ctx, "b", FV_REDUCE_DEFAULT), 0);
	fv_module_free(one);
	pt_release(m, x, ctx);
}

Test(spatial_contrast, multi_refuses_a_session_without_filters)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml,
	         "in_shape: [1, %d, 1, 1]\nn_neurons_dict: {a: 1, b: 1}\n"
	         "spatial_filters_dict: {a: [[[1]]]}\ntemporal_filters_dict: {a: [[1]], b: [[1]]}\n",
	         T);
	pt_expect_make_error(reg, "MultiSpatialContrastReadout", yaml, "session 'b'");
	pt_expect_msg("spatial_filters");
	snprintf(yaml, sizeof yaml,
	         "in_shape: [1, %d, 1, 1]\nn_neurons_dict: {a: 1, b: 1}\n"
	         "spatial_filters_dict: {a: [[[1]]], b: [[[2]]]}\ntemporal_filters_dict: {b: [[1]]}\n",
	         T);
	pt_expect_make_error(reg, "MultiSpatialContrastReadout", yaml, "session 'a'");
	pt_expect_msg("temporal_filters");
}

Test(spatial_contrast, every_name_is_registered)
{
	const char *names[] = {
		"SpatialContrastReadout",
		"openretina.modules.readout.spatial_contrast_model_readout.SpatialContrastReadout",
		"MultiSpatialContrastReadout",
		"openretina.modules.readout.spatial_contrast_model_readout.MultiSpatialContrastReadout",
	};
	pt_expect_registered(reg, names, sizeof names / sizeof *names, FV_KIND_READOUT);
}
