/*
** test_plugin_regularizers.c: the Laplace regularizer plugin
** (plugins/regularizers/laplace.c) against naive references written here:
** the filters typed in from openretina's source, a direct zero-padded
** cross-correlation, the normalised penalties and the Gaussian mask, on
** shapes, paddings and kernels other than the golden cases'; gradient
** checks by finite differences through whole components; every error path.
*/
#include "plugin_testing.h"

PT_SUITE(regularizers, "regularizers");

static fv_module *make(const char *target, const char *yaml)
{
	return pt_make(reg, target, yaml, "reg");
}

static void expect_close(double got, double want, const char *what)
{
	pt_expect_close(got, want, 1e-5, what);
}

/* ---- the filters, typed in from openretina/modules/layers/regularizers.py ---- */

static const double L5[25] = {
	0, 0, 1, 0, 0, 0, 1, 2, 1, 0, 1, 2, -16, 2, 1, 0, 1, 2, 1, 0, 0, 0, 1, 0, 0,
};
static const double L7[49] = {
	0, 0, 1, 1, 1, 0, 0, 0, 1, 3, 3, 3, 1, 0, 1, 3, 0, -7, 0, 3, 1, 1, 3, -7, -24,
	-7, 3, 1, 1, 3, 0, -7, 0, 3, 1, 0, 1, 3, 3, 3, 1, 0, 0, 0, 1, 1, 1, 0, 0,
};
static const double L1D[3] = {-1, 2, -1};

static const double *filter_of(int k)
{
	return k == 3 ? pt_laplace3() : k == 5 ? L5 : L7;
}

static double naive_conv1d_at(const fv_real *x, int len, int pad, int i)
{
	double s = 0;
	for (int a = 0; a < 3; a++) {
		int r = i + a - pad;
		if (r >= 0 && r < len)
			s += L1D[a] * x[r];
	}
	return s;
}

/* The number of the module's tensors, every one a buffer. */
static int n_tensors(const fv_module *m)
{
	int n_params;
	int n = pt_n_tensors(m, &n_params);
	cr_assert_eq(n_params, 0, "a regularizer's tensors are buffers");
	return n;
}

/* ---- Laplace ---------------------------------------------------------------------- */

Test(regularizers, laplace_filters_are_openretinas_buffers)
{
	int sizes[3] = {3, 5, 7};
	for (int i = 0; i < 3; i++) {
		char yaml[64];
		snprintf(yaml, sizeof yaml, "filter_size: %d", sizes[i]);
		fv_module *m = make("Laplace", yaml);
		fv_tensor *f = fv_module_tensor(m, "filter");
		cr_assert_not_null(f, "filter_size %d: no 'filter' buffer", sizes[i]);
		cr_assert_eq(n_tensors(m), 1);
		cr_assert_eq(f->ndim, 4);
		cr_assert(f->shape[0] == 1 && f->shape[1] == 1 && f->shape[2] == sizes[i] &&
		          f->shape[3] == sizes[i]);
		cr_assert(!f->requires_grad);
		for (int j = 0; j < sizes[i] * sizes[i]; j++)
			cr_assert_eq(f->data[j], filter_of(sizes[i])[j], "size %d [%d]", sizes[i], j);
		fv_module_free(m);
	}
	fv_module *m = make("openretina.modules.layers.regularizers.Laplace1d", "padding: null");
	fv_tensor *f = fv_module_tensor(m, "filter");
	cr_assert_not_null(f);
	cr_assert(f->ndim == 3 && f->shape[2] == 3);
	for (int j = 0; j < 3; j++)
		cr_assert_eq(f->data[j], L1D[j]);
	fv_module_free(m);
}

Test(regularizers, laplace_forward_is_a_zero_padded_cross_correlation)
{
	const int h = 7, w = 8, n = 2;
	int64_t shape[4] = {n, 1, h, w};
	fv_tensor *x = gc_input(4, shape, 5, -1, 1);
	struct {
		int k;
		const char *yaml;
		int pad;
	} cases[] = {
		{3, "padding: null", 1}, {3, "padding: 0", 0},  {3, "padding: 2", 2},
		{5, "{filter_size: 5}", 2}, {5, "{filter_size: 5, padding: 1}", 1},
		{7, "{filter_size: 7, padding: null}", 3}, {7, "{filter_size: 7, padding: 0}", 0},
	};
	fv_ctx *ctx = fv_ctx_new();
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		int k = cases[c].k, p = cases[c].pad;
		fv_module *m = make("Laplace", cases[c].yaml);
		fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
		cr_assert_not_null(y, "%s: %s", cases[c].yaml, fv_errmsg());
		int ho = h + 2 * p - k + 1, wo = w + 2 * p - k + 1;
		cr_assert(y->ndim == 4 && y->shape[0] == n && y->shape[1] == 1 && y->shape[2] == ho &&
		          y->shape[3] == wo, "%s: shape %s", cases[c].yaml,
		          fv_shape_str(y->ndim, y->shape));
		for (int b = 0; b < n; b++)
			for (int i = 0; i < ho; i++)
				for (int j = 0; j < wo; j++)
					expect_close(y->data[(b * ho + i) * wo + j],
					             pt_conv2d_at(x->data + b * h * w, h, w, filter_of(k), k, p,
					                          i, j),
					             cases[c].yaml);
		/* penalty() of a filter module is the same filtering. */
		fv_tensor *z = fv_module_penalty(m, ctx, x, NULL);
		cr_assert_not_null(z, "%s", fv_errmsg());
		for (int64_t i = 0; i < y->numel; i++)
			cr_assert_eq(z->data[i], y->data[i]);
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(regularizers, laplace_accepts_an_unbatched_plane)
{
	int64_t shape[3] = {1, 4, 5};
	fv_tensor *x = gc_input(3, shape, 6, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("Laplace", NULL);
	fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert(y->ndim == 3 && y->shape[0] == 1 && y->shape[1] == 4 && y->shape[2] == 5);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 5; j++)
			expect_close(y->data[i * 5 + j],
			             pt_conv2d_at(x->data, 4, 5, pt_laplace3(), 3, 1, i, j), "unbatched");
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(regularizers, laplace1d_forward_is_a_zero_padded_cross_correlation)
{
	const int len = 9, n = 3;
	int64_t shape[3] = {n, 1, len};
	fv_tensor *x = gc_input(3, shape, 7, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	int pads[3] = {1, 0, 3};
	const char *yamls[3] = {"padding: null", "padding: 0", "padding: 3"};
	for (int c = 0; c < 3; c++) {
		fv_module *m = make("Laplace1d", yamls[c]);
		fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
		cr_assert_not_null(y, "%s", fv_errmsg());
		int lo = len + 2 * pads[c] - 2;
		cr_assert(y->ndim == 3 && y->shape[0] == n && y->shape[1] == 1 && y->shape[2] == lo,
		          "%s: %s", yamls[c], fv_shape_str(y->ndim, y->shape));
		for (int b = 0; b < n; b++)
			for (int i = 0; i < lo; i++)
				expect_close(y->data[b * lo + i], naive_conv1d_at(x->data + b * len, len,
				                                                  pads[c], i),
				             yamls[c]);
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

static fv_tensor *forward_of(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_module_forward(ud, ctx, in[0], NULL);
}

Test(regularizers, filter_gradients_match_finite_differences)
{
	int64_t s2[4] = {2, 1, 5, 6}, s1[3] = {2, 1, 7};
	fv_tensor *x2 = gc_input(4, s2, 8, -1, 1), *x1 = gc_input(3, s1, 9, -1, 1);
	fv_module *m5 = make("Laplace", "{filter_size: 5, padding: 1}");
	fv_module *m1 = make("Laplace1d", "padding: 2");
	gradcheck("Laplace 5", forward_of, 1, &x2, m5);
	gradcheck("Laplace1d", forward_of, 1, &x1, m1);
	fv_module_free(m5);
	fv_module_free(m1);
	fv_tensor_free(x2);
	fv_tensor_free(x1);
}

Test(regularizers, non_persistent_filters_are_not_module_tensors)
{
	fv_module *m = make("Laplace", "persistent_buffer: false");
	cr_assert_eq(n_tensors(m), 0);
	int64_t shape[4] = {1, 1, 3, 3};
	fv_tensor *x = fv_tensor_new(4, shape);
	x->data[4] = 1; /* a unit impulse returns the (flipped = same) filter */
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = fv_module_forward(m, ctx, x, NULL);
	cr_assert_not_null(y, "%s", fv_errmsg());
	for (int i = 0; i < 9; i++)
		cr_assert_eq(y->data[i], pt_laplace3()[i]);
	fv_module *t = make("TimeLaplaceL23dnorm", "{padding: 0, persistent_buffer: false}");
	cr_assert_eq(n_tensors(t), 0);
	fv_module_free(t);
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(regularizers, filter_errors)
{
	pt_expect_make_error(reg, "Laplace", "filter_size: 4",
	                     "Laplace: filter_size 4 is not supported (expected 3, 5 or 7)");
	pt_expect_make_error(reg, "Laplace", "filter_size: 9", "filter_size");
	pt_expect_make_error(reg, "Laplace1d", NULL, "padding");
	pt_expect_make_error(reg, "Laplace", "padding: -1", "padding");

	struct {
		const char *target, *yaml;
		int ndim;
		int64_t shape[4];
		const char *needle;
	} bad_inputs[] = {
		{"Laplace", NULL, 4, {2, 2, 5, 5},
		 "Laplace: x (2, 2, 5, 5) must be (N, 1, H, W) or (1, H, W)"},
		{"Laplace", NULL, 2, {5, 5}, "must be (N, 1, H, W)"},
		{"Laplace", "{filter_size: 7, padding: 0}", 4, {1, 1, 5, 9},
		 "smaller than the 7-wide filter with padding 0"},
		{"Laplace1d", "padding: 0", 3, {2, 1, 2}, "Laplace1d: x (2, 1, 2) is smaller"},
	};
	for (size_t i = 0; i < sizeof bad_inputs / sizeof *bad_inputs; i++) {
		fv_module *m = make(bad_inputs[i].target, bad_inputs[i].yaml);
		pt_expect_forward_error(m, NULL, bad_inputs[i].ndim, bad_inputs[i].shape,
		                        bad_inputs[i].needle);
		fv_module_free(m);
	}
}

/* ---- the normalised penalties ------------------------------------------------------ */

/* num / (den + 1e-6) with den = Σ x²; as means when `mean` (num has n_out
** terms). */
static double normalised(double num, double n_out, const fv_tensor *x, bool mean)
{
	double den = 0;
	for (int64_t i = 0; i < x->numel; i++)
		den += (double)x->data[i] * x->data[i];
	if (mean) {
		num /= n_out;
		den /= (double)x->numel;
	}
	return num / (den + 1e-6);
}

/* agg(laplace(plane)^2 * damp^2) / (agg(x^2) + 1e-6) over n planes (h, w),
** with damp (hd, wd) broadcast to the output (NULL: 1). */
static double naive_norm2d(const fv_tensor *x, int planes, int h, int w, int k, int pad,
                           const double *damp, bool mean)
{
	int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
	double num = pt_filter_sq_sum(x->data, planes, h, w, filter_of(k), k, pad, damp);
	return normalised(num, (double)planes * ho * wo, x, mean);
}

static double naive_norm1d(const fv_tensor *x, int rows, int len, int pad, bool mean)
{
	int lo = len + 2 * pad - 2;
	double num = 0;
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < lo; i++) {
			double v = naive_conv1d_at(x->data + r * len, len, pad, i);
			num += v * v;
		}
	return normalised(num, (double)rows * lo, x, mean);
}

static fv_tensor *penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x, fv_reduction r)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.reduction = r;
	fv_tensor *v = fv_module_penalty(m, ctx, x, &fa);
	cr_assert_not_null(v, "%s", fv_errmsg());
	cr_assert_eq(v->numel, 1);
	return v;
}

/* A normalised penalty: the component, its options, the reduction asked
** for, and the value of the naive formula. */
typedef struct penalty_case {
	const char *target, *yaml;
	fv_reduction red;
	double want;
} penalty_case;

/* Each case's penalty of x.  Every one of these modules holds its filter
** as its only tensor, the buffer laplace.filter (gaussian2d is not a
** state_dict entry). */
static void expect_penalties(fv_tensor *x, const penalty_case *cases, size_t n)
{
	fv_ctx *ctx = fv_ctx_new();
	for (size_t i = 0; i < n; i++) {
		const penalty_case *c = &cases[i];
		char what[160];
		snprintf(what, sizeof what, "%s (%s), reduction %d", c->target,
		         c->yaml != NULL ? c->yaml : "defaults", (int)c->red);
		fv_module *m = make(c->target, c->yaml);
		cr_assert_not_null(fv_module_tensor(m, "laplace.filter"), "%s: no laplace.filter", what);
		cr_assert_eq(n_tensors(m), 1, "%s", what);
		expect_close(penalty(m, ctx, x, c->red)->data[0], c->want, what);
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
}

Test(regularizers, laplace_l2norm_matches_the_formula)
{
	int64_t shape[4] = {2, 3, 6, 5};
	fv_tensor *x = gc_input(4, shape, 11, -1, 1);
	const char *yamls[3] = {"padding: 0", "padding: null", "padding: 2"}; /* pads 0, 1, 2 */
	for (int pad = 0; pad < 3; pad++) {
		penalty_case cases[] = {
			{"LaplaceL2norm", yamls[pad], FV_REDUCE_SUM,
			 naive_norm2d(x, 6, 6, 5, 3, pad, NULL, false)},
			{"LaplaceL2norm", yamls[pad], FV_REDUCE_DEFAULT,
			 naive_norm2d(x, 6, 6, 5, 3, pad, NULL, false)},
			{"LaplaceL2norm", yamls[pad], FV_REDUCE_MEAN,
			 naive_norm2d(x, 6, 6, 5, 3, pad, NULL, true)},
		};
		expect_penalties(x, cases, 3);
	}
	fv_tensor_free(x);
}

Test(regularizers, flat_laplace_matches_the_formula)
{
	int64_t shape[5] = {3, 2, 1, 5, 7};
	fv_tensor *x = gc_input(5, shape, 12, -1, 1);
	penalty_case cases[] = {
		{"openretina.modules.layers.FlatLaplaceL23dnorm", "padding: 0", FV_REDUCE_SUM,
		 naive_norm2d(x, 6, 5, 7, 3, 0, NULL, false)},
		{"openretina.modules.layers.FlatLaplaceL23dnorm", "padding: 0", FV_REDUCE_MEAN,
		 naive_norm2d(x, 6, 5, 7, 3, 0, NULL, true)},
		{"FlatLaplaceL23dnorm", NULL, FV_REDUCE_SUM, naive_norm2d(x, 6, 5, 7, 3, 1, NULL, false)},
	};
	expect_penalties(x, cases, 3);
	fv_tensor_free(x);
}

Test(regularizers, time_laplace_matches_the_formula)
{
	int64_t shape[5] = {2, 4, 8, 1, 1};
	fv_tensor *x = gc_input(5, shape, 13, -1, 1);
	penalty_case cases[] = {
		{"TimeLaplaceL23dnorm", "padding: 0", FV_REDUCE_SUM, naive_norm1d(x, 8, 8, 0, false)},
		{"TimeLaplaceL23dnorm", "padding: 0", FV_REDUCE_MEAN, naive_norm1d(x, 8, 8, 0, true)},
		{"TimeLaplaceL23dnorm", NULL, FV_REDUCE_MEAN, naive_norm1d(x, 8, 8, 1, true)},
	};
	expect_penalties(x, cases, 3);
	fv_module *m = make("TimeLaplaceL23dnorm", "padding: 0");
	cr_assert_eq(fv_module_tensor(m, "laplace.filter")->ndim, 3);
	fv_module_free(m);
	fv_tensor_free(x);
}

Test(regularizers, an_all_zero_weight_gives_zero_not_nan)
{
	int64_t shape[4] = {1, 1, 4, 4};
	fv_tensor *x = fv_tensor_new(4, shape);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("LaplaceL2norm", NULL);
	cr_assert_eq(penalty(m, ctx, x, FV_REDUCE_SUM)->data[0], 0);
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

/* openretina's gaussian2d(size=(k1, k2), sigma=min(k)/4), min-max
** normalised, as a (k1, k2) array of 1 - mask. */
static void naive_damping(int k1, int k2, double *out)
{
	double sigma = (k1 < k2 ? k1 : k2) / 4.0, lo = 1e300, hi = -1e300;
	for (int i = 0; i < k1; i++)
		for (int j = 0; j < k2; j++) {
			double x = i - (k1 - 1) / 2.0, y = j - (k2 - 1) / 2.0;
			out[i * k2 + j] = exp(-(x * x + y * y) / (2 * sigma * sigma));
		}
	for (int i = 0; i < k1 * k2; i++)
		lo = fmin(lo, out[i]);
	for (int i = 0; i < k1 * k2; i++)
		hi = fmax(hi, out[i]);
	for (int i = 0; i < k1 * k2; i++)
		out[i] = 1 - (out[i] - lo) / (hi - lo);
}

Test(regularizers, gaussian_mask_by_hand)
{
	/* 3x3, sigma 0.75: centre 1, edges e^(-1/1.125), corners e^(-2/1.125);
	** normalised, the damping is 0 at the centre and 1 at the corners. */
	double d[9];
	naive_damping(3, 3, d);
	double corner = exp(-2 / 1.125), edge = exp(-1 / 1.125);
	expect_close(d[4], 0, "centre");
	expect_close(d[0], 1, "corner");
	expect_close(d[1], 1 - (edge - corner) / (1 - corner), "edge");
}

Test(regularizers, gaussian_laplace_matches_the_formula)
{
	struct {
		const char *yaml;
		int k1, k2;
	} kernels[] = {{"kernel: [5, 7]", 5, 7}, {"kernel: 4", 4, 4}, {"kernel: [6, 3]", 6, 3}};
	for (int c = 0; c < 3; c++) {
		int k1 = kernels[c].k1, k2 = kernels[c].k2;
		int64_t shape[4] = {3, 2, k1, k2};
		fv_tensor *x = gc_input(4, shape, 14 + (uint64_t)c, -1, 1);
		double *damp = malloc(sizeof(double) * (size_t)(k1 * k2));
		naive_damping(k1, k2, damp);
		penalty_case cases[] = {
			{"GaussianLaplaceL2", kernels[c].yaml, FV_REDUCE_SUM,
			 naive_norm2d(x, 6, k1, k2, 3, 1, damp, false)},
			{"GaussianLaplaceL2", kernels[c].yaml, FV_REDUCE_MEAN,
			 naive_norm2d(x, 6, k1, k2, 3, 1, damp, true)},
		};
		expect_penalties(x, cases, 2);
		free(damp);
		fv_tensor_free(x);
	}
}

static fv_tensor *penalty_of(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.reduction = FV_REDUCE_MEAN;
	return fv_module_penalty(ud, ctx, in[0], &fa);
}

static fv_tensor *penalty_sum_of(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_module_penalty(ud, ctx, in[0], NULL);
}

Test(regularizers, penalty_gradients_match_finite_differences)
{
	struct {
		const char *what, *target, *yaml;
		gc_fn fn;
		int ndim;
		int64_t shape[5];
		uint64_t seed;
	} cases[] = {
		{"LaplaceL2norm mean", "LaplaceL2norm", "padding: 1", penalty_of, 4, {2, 2, 5, 4}, 21},
		{"LaplaceL2norm sum", "LaplaceL2norm", "padding: 1", penalty_sum_of, 4, {2, 2, 5, 4}, 21},
		{"FlatLaplaceL23dnorm", "FlatLaplaceL23dnorm", "padding: 0", penalty_of, 5,
		 {2, 1, 1, 4, 5}, 22},
		{"TimeLaplaceL23dnorm", "TimeLaplaceL23dnorm", NULL, penalty_sum_of, 5, {2, 2, 6, 1, 1},
		 23},
		{"GaussianLaplaceL2", "GaussianLaplaceL2", "kernel: 5", penalty_of, 4, {1, 2, 5, 5}, 24},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fv_tensor *x = gc_input(cases[i].ndim, cases[i].shape, cases[i].seed, -1, 1);
		fv_module *m = make(cases[i].target, cases[i].yaml);
		gradcheck(cases[i].what, cases[i].fn, 1, &x, m);
		fv_module_free(m);
		fv_tensor_free(x);
	}
}

Test(regularizers, penalty_shape_errors)
{
	struct {
		const char *target, *yaml;
		int ndim;
		int64_t shape[5];
		fv_reduction red;
		const char *needle;
	} cases[] = {
		{"LaplaceL2norm", NULL, 5, {2, 2, 1, 5, 5}, FV_REDUCE_SUM,
		 "LaplaceL2norm: weight (2, 2, 1, 5, 5) must be (out, in, k1, k2)"},
		{"LaplaceL2norm", NULL, 4, {2, 2, 5, 5}, FV_REDUCE_NONE,
		 "LaplaceL2norm: reduction None is not supported"},
		{"FlatLaplaceL23dnorm", NULL, 5, {2, 2, 3, 5, 5}, FV_REDUCE_SUM,
		 "FlatLaplaceL23dnorm: weight (2, 2, 3, 5, 5) must be (out, in, 1, kh, kw): time "
		 "dimension must be one"},
		{"FlatLaplaceL23dnorm", NULL, 4, {2, 2, 5, 5}, FV_REDUCE_SUM,
		 "must be (out, in, 1, kh, kw)"},
		{"TimeLaplaceL23dnorm", NULL, 5, {2, 2, 3, 5, 5}, FV_REDUCE_SUM,
		 "TimeLaplaceL23dnorm: weight (2, 2, 3, 5, 5) must be (out, in, kt, 1, 1): space "
		 "dimensions must be one"},
		/* openretina: padding 0 cannot be used (valid output smaller than the mask). */
		{"GaussianLaplaceL2", "{kernel: 5, padding: 0}", 4, {1, 1, 5, 5}, FV_REDUCE_SUM,
		 "GaussianLaplaceL2: weight (1, 1, 5, 5) does not fit the Gaussian mask (5, 5) with "
		 "padding 0"},
		{"GaussianLaplaceL2", "kernel: [5, 7]", 4, {1, 1, 5, 5}, FV_REDUCE_SUM,
		 "does not fit the Gaussian mask (5, 7)"},
		{"GaussianLaplaceL2", "kernel: [5, 7]", 5, {2, 2, 1, 5, 5}, FV_REDUCE_SUM,
		 "must be (out, in, k1, k2)"},
	};
	fv_ctx *ctx = fv_ctx_new();
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fv_module *m = make(cases[i].target, cases[i].yaml);
		fv_tensor *x = fv_tensor_new(cases[i].ndim, cases[i].shape);
		fv_forward_args fa = FV_FORWARD_ARGS_INIT;
		fa.reduction = cases[i].red;
		fv_clear_error();
		cr_assert_null(fv_module_penalty(m, ctx, x, &fa), "accepted %s",
		               fv_shape_str(x->ndim, x->shape));
		pt_expect_msg(cases[i].needle);
		fv_tensor_free(x);
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
}

Test(regularizers, gaussian_kernel_errors)
{
	pt_expect_make_error(reg, "GaussianLaplaceL2", NULL, "kernel");
	pt_expect_make_error(reg, "GaussianLaplaceL2", "kernel: [3, 4, 5]",
	                     "GaussianLaplaceL2: kernel has 3 sizes (expected k or [k1, k2])");
	pt_expect_make_error(reg, "GaussianLaplaceL2", "kernel: 1",
	                     "GaussianLaplaceL2: kernel (1, 1) makes a constant Gaussian mask");
	pt_expect_make_error(reg, "GaussianLaplaceL2", "kernel: [0, 3]", "kernel");
}

Test(regularizers, a_null_weight_is_an_error_not_a_crash)
{
	const char *targets[] = {"LaplaceL2norm", "FlatLaplaceL23dnorm", "TimeLaplaceL23dnorm",
	                         "Laplace"};
	const char *needles[] = {"the weight x is NULL", "the weight x is NULL",
	                         "the weight x is NULL", "Laplace: x is NULL"};
	fv_ctx *ctx = fv_ctx_new();
	for (int i = 0; i < 4; i++) {
		fv_module *m = make(targets[i], NULL);
		fv_clear_error();
		cr_assert_null(fv_module_penalty(m, ctx, NULL, NULL));
		pt_expect_msg(needles[i]);
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
}

Test(regularizers, every_name_is_registered)
{
	const char *names[] = {
		"Laplace", "openretina.modules.layers.regularizers.Laplace",
		"openretina.modules.layers.Laplace", "Laplace1d",
		"openretina.modules.layers.regularizers.Laplace1d", "LaplaceL2norm",
		"openretina.modules.layers.regularizers.LaplaceL2norm", "FlatLaplaceL23dnorm",
		"openretina.modules.layers.regularizers.FlatLaplaceL23dnorm",
		"openretina.modules.layers.FlatLaplaceL23dnorm", "TimeLaplaceL23dnorm",
		"openretina.modules.layers.regularizers.TimeLaplaceL23dnorm", "GaussianLaplaceL2",
		"openretina.modules.layers.regularizers.GaussianLaplaceL2",
	};
	pt_expect_registered(reg, names, sizeof names / sizeof *names, FV_KIND_REGULARIZER);
}
