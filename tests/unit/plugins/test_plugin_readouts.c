/*
** test_plugin_readouts.c: the readout plugins (plugins/readouts/) against
** naive references written here from openretina's formulas: Gaussian masks
** and the mask grid, bilinear sampling (align_corners both ways), the
** Klindt masks, constraints and Laplace penalty, the LNP inner products,
** and the multi-session containers (routing, sorted concatenation,
** regularizer reduction, mean activity, cloning).  Shapes and
** hyper-parameters differ from the golden cases; gradients are checked by
** finite differences through whole components; every error path is tested
** for its message.
*/
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "plugin_testing.h"

PT_SUITE(readouts, "readouts", "regularizers");

/* ---- helpers ------------------------------------------------------------------ */

static fv_module *build(const char *yaml)
{
	return pt_build(reg, yaml, 11);
}

static void expect_build_error(const char *yaml, const char *needle)
{
	pt_expect_build_error(reg, yaml, needle);
}

/* The component of `yaml` refuses a zero input of `shape` for session
** `key`, saying `needle`. */
static void expect_input_error(const char *yaml, const char *key, int ndim, const int64_t *shape,
                               const char *needle)
{
	fv_module *m = build(yaml);
	pt_expect_forward_error(m, key, ndim, shape, needle);
	fv_module_free(m);
}

/* initialize_bias() refuses a mean activity of n values, saying `needle`. */
static void expect_initialize_bias_error(fv_module *m, int64_t n, const char *needle)
{
	fv_tensor *wrong = fv_tensor_new(1, &n);
	cr_assert_eq(fv_module_initialize_bias(m, wrong), FV_ERR_SHAPE);
	pt_expect_msg(needle);
	fv_tensor_free(wrong);
}

/* Keep |v| >= margin, so finite differences do not straddle the kink of
** an L1 penalty at 0. */
static void away_from_zero(fv_tensor *t, double margin)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(t->data[i] < 0 ? t->data[i] - margin : t->data[i] + margin);
}

static double softplus(double x)
{
	return x > 20 ? x : log1p(exp(x));
}

/* L = [y..., regularizer] for gradcheck(): the output and the penalty. */
typedef struct gc_case {
	fv_module *m;
	const char *key;
	fv_reduction red;
} gc_case;

static fv_tensor *output_and_penalty(fv_ctx *ctx, fv_tensor *const *inputs, void *ud)
{
	gc_case *c = ud;
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = c->key;
	fa.sample = 0;
	fa.reduction = c->red;
	fv_tensor *y = fv_module_forward(c->m, ctx, inputs[0], &fa);
	fv_tensor *r = fv_module_regularizer(c->m, ctx, &fa);
	int64_t flat = -1, one = 1;
	fv_tensor *parts[2] = {fv_reshape(ctx, y, 1, &flat), fv_reshape(ctx, r, 1, &one)};
	return fv_concat(ctx, 2, parts, 0);
}

/* A readout's naive output y[b, t, n] for the input x (N, c, t, ...), in
** double from the module's tensors; `opt` holds the reference's settings. */
typedef double (*ref_fn)(const fv_module *m, const fv_tensor *x, int64_t b, int64_t t, int64_t n,
                         const void *opt);

/* y is (batch, time, n) for x and matches ref(m, x, ...) everywhere. */
static void expect_matches_ref(const fv_tensor *y, const fv_tensor *x, int64_t n, ref_fn ref,
                               const fv_module *m, const void *opt)
{
	int64_t batch = x->shape[0], time = x->shape[2];
	pt_expect_shape(y, 3, (int64_t[]){batch, time, n}, "y");
	for (int64_t b = 0; b < batch; b++)
		for (int64_t t = 0; t < time; t++)
			for (int64_t i = 0; i < n; i++)
				pt_expect_close(y->data[(b * time + t) * n + i], ref(m, x, b, t, i, opt),
				                1e-5, "y");
}

/* ---- GaussianMaskReadout ----------------------------------------------------- */

typedef struct gm_setting {
	double mean_scale, var_scale;
	bool positive;
} gm_setting;

/* openretina's get_mask and forward, in double, from the module's tensors. */
static double gm_reference(const fv_module *m, const fv_tensor *x, int64_t b, int64_t t,
                           int64_t n, const void *opt)
{
	const gm_setting *g = opt;
	double ms = g->mean_scale, vs = g->var_scale;
	const fv_tensor *mean = pt_tensor(m, "mask_mean"), *lv = pt_tensor(m, "mask_log_var");
	const fv_tensor *grid = pt_tensor(m, "grid"), *feat = pt_tensor(m, "features");
	const fv_tensor *scale = pt_tensor(m, "scale_param"), *bias = pt_tensor(m, "bias");
	int64_t C = x->shape[1], T = x->shape[2], W = x->shape[3], H = x->shape[4], N = mean->shape[0];
	double var = exp(fmin(fmax(lv->data[n] * vs, -20), 20));
	double norm = 0, mask[64 * 64];
	for (int64_t i = 0; i < W * H; i++) {
		double dx = grid->data[(n * W * H + i) * 2] - mean->data[n * 2] * ms;
		double dy = grid->data[(n * W * H + i) * 2 + 1] - mean->data[n * 2 + 1] * ms;
		mask[i] = exp(-0.5 * fmin((dx * dx + dy * dy) / (var + 1e-8), 20));
		norm += mask[i];
	}
	double y = 0;
	for (int64_t c = 0; c < C; c++) {
		double f = feat->data[c * N + n], s = 0;
		if (g->positive && f < 0)
			f = 0;
		for (int64_t i = 0; i < W * H; i++)
			s += x->data[((b * C + c) * T + t) * W * H + i] * mask[i] / norm;
		y += s * f;
	}
	return softplus(y * scale->data[n] + bias->data[n]);
}

#define GM_SPEC                                                                        \
	"_target_: openretina.modules.readout.factorized_gaussian.GaussianMaskReadout\n" \
	"in_shape: [3, 2, 4, 5]\noutdims: 2\ngaussian_mean_scale: 2.0\n"                 \
	"gaussian_var_scale: 0.5\nscale: true\nbias: true\nmask_l1_reg: 0.7\n"           \
	"feature_weights_l1_reg: 0.3\n"

Test(readouts, gaussian_mask_tensors_and_grid)
{
	fv_module *m = build(GM_SPEC "positive: true\n");
	const char *names[] = {"mask_mean", "mask_log_var", "grid", "features", "scale_param", "bias"};
	pt_expect_names(m, names, 6);
	pt_expect_shape(pt_tensor(m, "grid"), 4, (int64_t[]){2, 4, 5, 2}, "grid");
	pt_expect_shape(pt_tensor(m, "features"), 4, (int64_t[]){1, 3, 1, 2}, "features");
	cr_assert(pt_tensor(m, "mask_mean")->requires_grad);
	cr_assert(!pt_tensor(m, "grid")->requires_grad);
	/* make_mask_grid(2, w=4, h=5): linspace(+-4/5, 4) x linspace(+-1, 5). */
	const double gw[4] = {-0.8, -0.8 / 3, 0.8 / 3, 0.8}, gh[5] = {-1, -0.5, 0, 0.5, 1};
	const fv_tensor *g = pt_tensor(m, "grid");
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 5; j++) {
				pt_expect_close(g->data[((k * 4 + i) * 5 + j) * 2], gw[i], 1e-6, "grid x");
				pt_expect_close(g->data[((k * 4 + i) * 5 + j) * 2 + 1], gh[j], 1e-6, "grid y");
			}
	/* Constant inits: zeros for mask_mean, log var and bias. */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pt_tensor(m, "mask_mean")->data[i], 0);
	cr_assert_eq(pt_tensor(m, "bias")->data[1], 0);
	fv_module_free(m);
}

Test(readouts, gaussian_mask_disabled_scale_and_bias_are_buffers)
{
	fv_module *m = build("_target_: GaussianMaskReadout\nin_shape: [2, 1, 3, 3]\noutdims: 4\n"
	                     "bias: false\n");
	fv_tensor *s = pt_tensor(m, "scale_param"), *b = pt_tensor(m, "bias");
	cr_assert(!s->requires_grad && !b->requires_grad);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(s->data[i], 1);
		cr_assert_eq(b->data[i], 0);
	}
	fv_module_free(m);
}

Test(readouts, gaussian_mask_forward_positive_clamp_and_regularizer)
{
	fv_module *m = build(GM_SPEC "positive: true\n");
	fv_module_set_training(m, false);
	gc_fill_uniform(pt_tensor(m, "mask_mean"), 1, -0.3, 0.3);
	gc_fill_uniform(pt_tensor(m, "mask_log_var"), 2, -1, 0.5);
	gc_fill_uniform(pt_tensor(m, "features"), 3, -0.5, 1.0);
	gc_fill_uniform(pt_tensor(m, "scale_param"), 4, 0.5, 1.5);
	gc_fill_uniform(pt_tensor(m, "bias"), 5, -0.2, 0.2);
	fv_tensor *before = fv_tensor_clone(pt_tensor(m, "features"));
	int negatives = 0;
	for (int i = 0; i < before->numel; i++)
		negatives += before->data[i] < 0;
	cr_assert(negatives > 0, "the test needs a negative feature weight");
	fv_tensor *x = pt_input(5, (int64_t[]){2, 3, 2, 4, 5}, 6, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	expect_matches_ref(pt_forward(m, ctx, x, NULL, -1), x, 2, gm_reference, m,
	                   &(gm_setting){2.0, 0.5, true});
	const fv_tensor *f = pt_tensor(m, "features");
	for (int i = 0; i < f->numel; i++)
		cr_assert_eq(f->data[i], before->data[i] < 0 ? 0 : before->data[i],
		             "features are clamped in place");
	/* regularizer: exp(lv*vs) + (mean*ms)^2, |features|; sums or means. */
	const fv_tensor *lv = pt_tensor(m, "mask_log_var"), *mu = pt_tensor(m, "mask_mean");
	double var = 0, m2 = 0, l1 = 0;
	for (int i = 0; i < 2; i++)
		var += exp(0.5 * lv->data[i]);
	for (int i = 0; i < 4; i++)
		m2 += (2 * mu->data[i]) * (2 * mu->data[i]);
	for (int i = 0; i < 6; i++)
		l1 += fabs(f->data[i]);
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_SUM), 0.7 * (var + m2) + 0.3 * l1, 1e-5,
	                "sum");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT), 0.7 * (var + m2) + 0.3 * l1,
	                1e-5, "default (sum)");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_MEAN),
	                0.7 * (var / 2 + m2 / 4) + 0.3 * l1 / 6, 1e-5, "mean");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(before);
	fv_module_free(m);
}

Test(readouts, gaussian_mask_gradients)
{
	fv_module *m = build(GM_SPEC "positive: false\n");
	gc_fill_uniform(pt_tensor(m, "mask_mean"), 1, -0.3, 0.3);
	gc_fill_uniform(pt_tensor(m, "mask_log_var"), 2, -0.5, 0.5);
	gc_fill_uniform(pt_tensor(m, "features"), 3, -0.5, 1.0);
	away_from_zero(pt_tensor(m, "features"), 0.05);
	gc_fill_uniform(pt_tensor(m, "scale_param"), 4, 0.5, 1.5);
	fv_tensor *x = gc_input(5, (int64_t[]){2, 3, 2, 4, 5}, 6, -1, 1);
	fv_tensor *in[] = {x, pt_tensor(m, "mask_mean"), pt_tensor(m, "mask_log_var"),
	                   pt_tensor(m, "features"), pt_tensor(m, "scale_param"), pt_tensor(m, "bias")};
	gc_case c = {.m = m, .red = FV_REDUCE_MEAN};
	gradcheck("GaussianMaskReadout", output_and_penalty, 6, in, &c);
	fv_tensor_free(x);
	fv_module_free(m);
}

/* Its own suite: the warning goes to stderr, redirected before loading. */
static void redirect_and_load(void)
{
	cr_redirect_stderr();
	readouts_load();
}

Test(readouts_warning, gaussian_mask_warns_once_without_mean_activity, .init = redirect_and_load,
     .fini = readouts_unload)
{
	const char *spec = "_target_: GaussianMaskReadout\nin_shape: [2, 1, 3, 3]\noutdims: 4\n";
	fv_module *a = build(spec), *b = build(spec);
	fflush(stderr);
	cr_assert_stderr_eq_str("UserWarning: Readout is NOT initialized with mean activity but "
	                        "with 0!\n");
	fv_module_free(a);
	fv_module_free(b);
}

Test(readouts, gaussian_mask_mean_activity_sets_bias)
{
	fv_module *m = build("_target_: GaussianMaskReadout\nin_shape: [2, 1, 3, 3]\noutdims: 3\n"
	                     "mean_activity: [0.5, 1.5, 2.5]\n");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pt_tensor(m, "bias")->data[i], (fv_real)(0.5 + i));
	fv_tensor *mean = fv_tensor_new(1, (int64_t[]){3});
	fv_tensor_fill(mean, 4);
	cr_assert_eq(fv_module_initialize_bias(m, mean), FV_OK);
	cr_assert_eq(pt_tensor(m, "bias")->data[2], 4);
	expect_initialize_bias_error(m, 2, "GaussianMaskReadout: initialize_bias");
	fv_tensor_free(mean);
	fv_module_free(m);
}

#define GM_SMALL "_target_: GaussianMaskReadout\nin_shape: [2, 1, 3, 3]\n"

Test(readouts, gaussian_mask_errors)
{
	const pt_bad_spec bad[] = {
		{"_target_: GaussianMaskReadout\nin_shape: [2, 3, 3]\noutdims: 3\n",
		 "spec.yaml:1:1: GaussianMaskReadout: in_shape: expected 4 sizes"},
		{"_target_: GaussianMaskReadout\noutdims: 3\n", "in_shape: required"},
		{GM_SMALL, "outdims: expected a positive number of neurons"},
		{GM_SMALL "outdims: 3\nmean_activity: [1, 2]\n",
		 "spec.yaml:4:1: GaussianMaskReadout: mean_activity: expected 3 values"},
		{GM_SMALL "outdims: 3\nnonlinearity_function: torch.nn.functional.gelu\n",
		 "unknown nonlinearity 'torch.nn.functional.gelu'"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
	expect_input_error(GM_SMALL "outdims: 3\n", NULL, 5, (int64_t[]){1, 2, 1, 3, 4},
	                   "GaussianMaskReadout: input has shape (1, 2, 1, 3, 4); "
	                   "expected (batch, 2, time, 3, 3)");
}

/* Where each neuron reads, for the readout-positions figure: the mask
** centre mask_mean * gaussian_mean_scale on the grid linspace(-s/m, s/m, s)
** of each axis (m the larger side), in pixels. */
Test(readouts, gaussian_mask_neuron_positions_in_pixels)
{
	fv_module *m = build("_target_: GaussianMaskReadout\nin_shape: [1, 2, 5, 4]\noutdims: 3\n"
	                     "gaussian_mean_scale: 2\n");
	const fv_real mu[6] = {0, 0, 0.5f, -0.4f, -0.25f, 0.2f};
	memcpy(pt_tensor(m, "mask_mean")->data, mu, sizeof mu);
	double rc[6];
	int64_t hw[2];
	cr_assert_eq(fv_module_neuron_positions(m, NULL, 3, rc, hw), FV_OK, "%s", fv_errmsg());
	cr_assert(hw[0] == 5 && hw[1] == 4, "the feature map (%lld, %lld)", (long long)hw[0],
	          (long long)hw[1]);
	/* rows: half 5/5, (p + 1) * 4 / 2; columns: half 4/5, (p + 0.8) * 3 / 1.6 */
	const double want[6] = {2, 1.5, 4, 0, 1, 2.25};
	for (int i = 0; i < 6; i++)
		pt_expect_close(rc[i], want[i], 1e-6, "position");
	cr_assert_eq(fv_module_neuron_positions(m, NULL, 2, rc, hw), FV_ERR_SHAPE);
	pt_expect_msg("GaussianMaskReadout: neuron positions: asked for 2 neurons, the readout has 3");
	fv_module_free(m);
}

/* The readout as an fv_linear_readout: softplus(rows(x) W^T * scale + bias)
** computed here from it is the forward, positive clamp included. */
Test(readouts, gaussian_mask_linear_readout_is_its_forward)
{
	fv_module *m = build("_target_: GaussianMaskReadout\nin_shape: [2, 3, 4, 3]\noutdims: 2\n"
	                     "scale: true\npositive: true\n");
	gc_fill_uniform(pt_tensor(m, "features"), 5, -1, 1);
	gc_fill_uniform(pt_tensor(m, "bias"), 6, -0.5, 0.5);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 3}, 7, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_linear_readout lin;
	cr_assert_eq(fv_module_linear_readout(m, ctx, x, &lin), FV_OK, "%s", fv_errmsg());
	cr_assert_not_null(lin.activation, "softplus");
	pt_expect_shape(lin.weight, 2, (int64_t[]){2, 24}, "weight (n, c*w*h)");
	cr_assert(lin.scale == pt_tensor(m, "scale_param") && lin.bias == pt_tensor(m, "bias"));
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	for (int64_t b = 0; b < 2; b++)
		for (int64_t t = 0; t < 3; t++)
			for (int64_t n = 0; n < 2; n++) {
				double v = 0;
				for (int64_t c = 0; c < 2; c++)
					for (int64_t p = 0; p < 12; p++)
						v += (double)x->data[((b * 2 + c) * 3 + t) * 12 + p] *
						     lin.weight->data[n * 24 + c * 12 + p];
				v = softplus(v * lin.scale->data[n] + lin.bias->data[n]);
				pt_expect_close(y->data[(b * 3 + t) * 2 + n], v, 1e-5, "y");
			}
	const gm_setting g = {1.0, 1.0, true};
	expect_matches_ref(y, x, 2, gm_reference, m, &g);
	fv_tensor *bad = fv_ctx_zeros(ctx, 5, (int64_t[]){1, 2, 3, 3, 4});
	cr_assert_eq(fv_module_linear_readout(m, ctx, bad, &lin), FV_ERR_SHAPE);
	pt_expect_msg("GaussianMaskReadout: input has shape (1, 2, 3, 3, 4); expected (batch, 2, "
	              "time, 4, 3)");
	pt_release(m, x, ctx);
}

Test(readouts, gaussian_mask_exp_nonlinearity_from_dotted_name)
{
	fv_module *m = build("_target_: GaussianMaskReadout\nin_shape: [1, 1, 2, 2]\noutdims: 1\n"
	                     "nonlinearity_function: torch.exp\n");
	fv_tensor_fill(pt_tensor(m, "features"), 1);
	fv_tensor *x = pt_input(5, (int64_t[]){1, 1, 1, 2, 2}, 1, 0, 1);
	fv_tensor_fill(x, 0.25);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	pt_expect_close(y->data[0], exp(0.25), 1e-6, "exp(mask-weighted mean)");
	pt_release(m, x, ctx);
}

/* ---- PointGaussianReadout ---------------------------------------------------- */

/* torch grid_sample, bilinear, zero padding, on one (H, W) plane. */
static double bilinear(const fv_real *img, int64_t H, int64_t W, double gx, double gy, bool align)
{
	double ix = align ? (gx + 1) / 2 * (double)(W - 1) : ((gx + 1) * (double)W - 1) / 2;
	double iy = align ? (gy + 1) / 2 * (double)(H - 1) : ((gy + 1) * (double)H - 1) / 2;
	double x0 = floor(ix), y0 = floor(iy), v = 0;
	for (int dy = 0; dy < 2; dy++)
		for (int dx = 0; dx < 2; dx++) {
			int64_t xi = (int64_t)x0 + dx, yi = (int64_t)y0 + dy;
			double w = (dx ? ix - x0 : 1 - (ix - x0)) * (dy ? iy - y0 : 1 - (iy - y0));
			if (xi >= 0 && xi < W && yi >= 0 && yi < H)
				v += w * img[yi * W + xi];
		}
	return v;
}

static double clamp1(double v)
{
	return v < -1 ? -1 : v > 1 ? 1 : v;
}

/* y[b, n] at mu (already clamped) for a 4-D x (N, c, w, h). */
static double pg_reference(const fv_tensor *x, const double *mu, const fv_real *feat,
                           const fv_real *bias, int64_t nn, int64_t b, int64_t n, bool align)
{
	int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
	double y = bias != NULL ? bias[n] : 0;
	for (int64_t c = 0; c < C; c++)
		y += feat[c * nn + n] *
		     bilinear(x->data + (b * C + c) * H * W, H, W, mu[2 * n], mu[2 * n + 1], align);
	return y;
}

#define PG_SPEC(gauss, align, extra)                                                    \
	"_target_: openretina.modules.readout.gaussian.PointGaussianReadout\n"           \
	"in_shape: [2, 9, 5, 7]\noutdims: 4\nbias: true\ninit_mu_range: 0.3\n"           \
	"init_sigma_range: 0.2\ngauss_type: " gauss "\nalign_corners: " align "\n"        \
	"gamma_readout: 0.6\n" extra

static void pg_eval_case(const char *yaml, bool align)
{
	fv_module *m = build(yaml);
	fv_module_set_training(m, false);
	fv_tensor *mu = pt_tensor(m, "_mu");
	const double mu0[8] = {0.13, -0.41, 1.35, 0.22, -0.67, -1.2, 0.58, 0.71};
	for (int i = 0; i < 8; i++)
		mu->data[i] = (fv_real)mu0[i];
	gc_fill_uniform(pt_tensor(m, "_features"), 2, -1, 1);
	gc_fill_uniform(pt_tensor(m, "bias"), 3, -0.5, 0.5);
	fv_tensor *x = pt_input(4, (int64_t[]){3, 2, 5, 7}, 4, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1); /* eval: the mean position */
	pt_expect_shape(y, 2, (int64_t[]){3, 4}, "y");
	double clamped[8];
	for (int i = 0; i < 8; i++) {
		clamped[i] = clamp1((fv_real)mu0[i]);
		cr_assert_eq(mu->data[i], (fv_real)clamped[i], "mu is clamped in place");
	}
	for (int b = 0; b < 3; b++)
		for (int n = 0; n < 4; n++)
			pt_expect_close(y->data[b * 4 + n],
			                pg_reference(x, clamped, pt_tensor(m, "_features")->data,
			                             pt_tensor(m, "bias")->data, 4, b, n, align),
			                1e-5, "y");
	/* gamma_readout * |features|: sum (default), mean, unreduced. */
	double l1 = 0;
	for (int i = 0; i < 8; i++)
		l1 += fabs(pt_tensor(m, "_features")->data[i]);
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT), 0.6 * l1, 1e-5, "sum");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_MEAN), 0.6 * l1 / 8, 1e-5, "mean");
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.reduction = FV_REDUCE_NONE;
	fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
	cr_assert_not_null(r);
	pt_expect_shape(r, 4, (int64_t[]){1, 2, 1, 4}, "unreduced penalty");
	pt_expect_close(r->data[5], 0.6 * fabs(pt_tensor(m, "_features")->data[5]), 1e-6, "unreduced");
	pt_release(m, x, ctx);
}

Test(readouts, point_gaussian_eval_uncorrelated_align_corners_false)
{
	pg_eval_case(PG_SPEC("uncorrelated", "false", ""), false);
}

Test(readouts, point_gaussian_eval_full_align_corners_true)
{
	pg_eval_case(PG_SPEC("full", "true", ""), true);
}

Test(readouts, point_gaussian_tensors)
{
	fv_module *m = build(PG_SPEC("full", "true", ""));
	const char *names[] = {"_mu", "sigma", "_features", "bias"};
	pt_expect_names(m, names, 4);
	pt_expect_shape(pt_tensor(m, "sigma"), 4, (int64_t[]){1, 4, 2, 2}, "full sigma");
	for (int i = 0; i < 8; i++) {
		cr_assert(fabs(pt_tensor(m, "_mu")->data[i]) <= 0.3, "mu within init_mu_range");
		pt_expect_close(pt_tensor(m, "_features")->data[i], 0.5, 1e-7, "features = 1/c");
	}
	for (int i = 0; i < 16; i++)
		cr_assert(fabs(pt_tensor(m, "sigma")->data[i]) <= 0.2, "sigma within init_sigma_range");
	fv_module_free(m);
	m = build("_target_: PointGaussianReadout\nin_shape: [2, 9, 5, 7]\noutdims: 4\n"
	          "bias: false\ninit_sigma_range: 0.2\ngauss_type: isotropic\n");
	const char *iso[] = {"_mu", "sigma", "_features"};
	pt_expect_names(m, iso, 3);
	pt_expect_shape(pt_tensor(m, "sigma"), 4, (int64_t[]){1, 4, 1, 1}, "isotropic sigma");
	pt_expect_close(pt_tensor(m, "sigma")->data[3], 0.2, 1e-7, "sigma = init_sigma_range");
	fv_module_free(m);
}

Test(readouts, point_gaussian_gradients_at_the_mean)
{
	fv_module *m = build(PG_SPEC("uncorrelated", "false", ""));
	fv_module_set_training(m, false);
	fv_tensor *mu = pt_tensor(m, "_mu");
	/* Away from pixel centres (bilinear kinks) and the border. */
	const double mu0[8] = {0.11, -0.47, 0.63, 0.26, -0.69, -0.1, 0.42, 0.79};
	for (int i = 0; i < 8; i++)
		mu->data[i] = (fv_real)mu0[i];
	gc_fill_uniform(pt_tensor(m, "_features"), 2, -1, 1);
	away_from_zero(pt_tensor(m, "_features"), 0.05);
	fv_tensor *x = gc_input(4, (int64_t[]){2, 2, 5, 7}, 4, -1, 1);
	fv_tensor *in[] = {x, mu, pt_tensor(m, "_features"), pt_tensor(m, "bias")};
	gc_case c = {.m = m, .red = FV_REDUCE_SUM};
	gradcheck("PointGaussianReadout", output_and_penalty, 4, in, &c);
	/* sigma is in the graph (0 * sigma) and gets exactly zero gradient. */
	fv_tensor *sigma = pt_tensor(m, "sigma");
	cr_assert_not_null(sigma->grad);
	for (int i = 0; i < sigma->numel; i++)
		cr_assert_eq(sigma->grad->data[i], 0);
	fv_tensor_free(x);
	fv_module_free(m);
}

/* With x a ramp along one axis, the readout returns the sampled coordinate
** (affinely), so sampled positions can be measured. */
static void ramp_input(fv_tensor *x)
{
	int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
	for (int64_t b = 0; b < N; b++)
		for (int64_t i = 0; i < H; i++)
			for (int64_t j = 0; j < W; j++) {
				x->data[((b * 2 + 0) * H + i) * W + j] = (fv_real)j; /* x: last dim */
				x->data[((b * 2 + 1) * H + i) * W + j] = (fv_real)i;
			}
}

static void variance_of_positions(const fv_tensor *y, int64_t batch, double var[2])
{
	for (int k = 0; k < 2; k++) {
		double s = 0, s2 = 0;
		for (int64_t b = 0; b < batch; b++) {
			double v = y->data[b * 2 + k];
			s += v;
			s2 += v * v;
		}
		var[k] = s2 / (double)batch - (s / (double)batch) * (s / (double)batch);
	}
}

Test(readouts, point_gaussian_full_covariance_sampling)
{
	fv_module *m = build("_target_: PointGaussianReadout\nin_shape: [2, 1, 5, 7]\noutdims: 2\n"
	                     "bias: false\ngauss_type: full\n");
	fv_tensor_fill(pt_tensor(m, "_mu"), 0);
	/* neuron 0 reads channel 0 (the x ramp), neuron 1 channel 1 (the y ramp). */
	fv_tensor *f = pt_tensor(m, "_features");
	const fv_real feat[4] = {1, 0, 0, 1};
	memcpy(f->data, feat, sizeof feat);
	/* sigma[n] = [[0.1, 0.2], [0.0, 0.05]]: var(gx) = 0.05, var(gy) = 0.0025. */
	const fv_real s[4] = {0.1f, 0.2f, 0.0f, 0.05f};
	memcpy(pt_tensor(m, "sigma")->data, s, sizeof s);
	memcpy(pt_tensor(m, "sigma")->data + 4, s, sizeof s);
	int64_t batch = 4000;
	fv_tensor *x = pt_input(4, (int64_t[]){batch, 2, 5, 7}, 1, 0, 1);
	ramp_input(x);
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_seed(ctx, 99);
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1); /* modules start in training: sample */
	double var[2];
	variance_of_positions(y, batch, var);
	/* align_corners: pixel = (g + 1) / 2 * (size - 1). */
	pt_expect_close(var[0], 0.05 * 9, 0.08, "var of sampled x (pixels^2)");
	pt_expect_close(var[1], 0.0025 * 4, 0.08, "var of sampled y (pixels^2)");
	/* sample=0 overrides training: every row reads the centre. */
	y = pt_forward(m, ctx, x, NULL, 0);
	for (int64_t b = 0; b < batch; b++) {
		pt_expect_close(y->data[b * 2], 3, 1e-5, "x at mu");
		pt_expect_close(y->data[b * 2 + 1], 2, 1e-5, "y at mu");
	}
	pt_release(m, x, ctx);
}

Test(readouts, point_gaussian_uncorrelated_sampling_and_batch_sample)
{
	fv_module *m = build("_target_: PointGaussianReadout\nin_shape: [2, 1, 5, 7]\noutdims: 2\n"
	                     "bias: false\ngauss_type: uncorrelated\nbatch_sample: false\n");
	fv_tensor_fill(pt_tensor(m, "_mu"), 0);
	const fv_real feat[4] = {1, 0, 0, 1};
	memcpy(pt_tensor(m, "_features")->data, feat, sizeof feat);
	fv_tensor_fill(pt_tensor(m, "sigma"), 0.1f);
	fv_tensor *x = pt_input(4, (int64_t[]){8, 2, 5, 7}, 1, 0, 1);
	ramp_input(x);
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_seed(ctx, 5);
	fv_tensor *y = pt_forward(m, ctx, x, NULL, 1);
	/* One position for the whole batch: every row equal, not the centre. */
	for (int b = 1; b < 8; b++)
		for (int k = 0; k < 2; k++)
			cr_assert_eq(y->data[b * 2 + k], y->data[k]);
	cr_assert(fabs(y->data[0] - 3) > 1e-6, "a sampled position differs from mu");
	fv_module_set_training(m, false);
	y = pt_forward(m, ctx, x, NULL, -1); /* eval: at mu */
	pt_expect_close(y->data[0], 3, 1e-5, "eval reads at mu");
	pt_release(m, x, ctx);
}

Test(readouts, point_gaussian_shared_grid_and_features)
{
	fv_module *m = build("_target_: PointGaussianReadout\nin_shape: [2, 1, 5, 7]\noutdims: 3\n"
	                     "bias: false\ngauss_type: isotropic\n"
	                     "shared_grid: {match_ids: [5, 2, 5], shared_grid: null}\n"
	                     "shared_features: {match_ids: [1, 1, 0]}\n");
	const char *names[] = {"_mu", "sigma", "_features", "scales", "grid_sharing_index",
	                       "feature_sharing_index"};
	pt_expect_names(m, names, 6);
	pt_expect_shape(pt_tensor(m, "_mu"), 4, (int64_t[]){1, 2, 1, 2}, "shared _mu");
	pt_expect_shape(pt_tensor(m, "_features"), 4, (int64_t[]){1, 2, 1, 2}, "shared _features");
	pt_expect_shape(pt_tensor(m, "scales"), 4, (int64_t[]){1, 1, 1, 3}, "scales");
	const fv_real gi[3] = {1, 0, 1}, fi[3] = {1, 1, 0};
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(pt_tensor(m, "grid_sharing_index")->data[i], gi[i]);
		cr_assert_eq(pt_tensor(m, "feature_sharing_index")->data[i], fi[i]);
		cr_assert_eq(pt_tensor(m, "scales")->data[i], 1);
	}
	fv_module_set_training(m, false);
	/* ids 2 -> row 0, 5 -> row 1 (sorted unique). */
	const fv_real mu[4] = {0.2f, -0.3f, -0.55f, 0.45f}, f[4] = {0.5f, -1.0f, 2.0f, 0.25f};
	memcpy(pt_tensor(m, "_mu")->data, mu, sizeof mu);
	memcpy(pt_tensor(m, "_features")->data, f, sizeof f);
	const fv_real sc[3] = {1.5f, -0.5f, 2.0f};
	memcpy(pt_tensor(m, "scales")->data, sc, sizeof sc);
	fv_tensor *x = pt_input(4, (int64_t[]){2, 2, 5, 7}, 8, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	double pos[6];
	fv_real feat[6]; /* (c=2, n=3): scales[n] * _features[c, fi[n]] */
	for (int n = 0; n < 3; n++) {
		pos[2 * n] = mu[2 * (int)gi[n]];
		pos[2 * n + 1] = mu[2 * (int)gi[n] + 1];
		for (int c = 0; c < 2; c++)
			feat[c * 3 + n] = sc[n] * f[c * 2 + (int)fi[n]];
	}
	for (int b = 0; b < 2; b++)
		for (int n = 0; n < 3; n++)
			pt_expect_close(y->data[b * 3 + n], pg_reference(x, pos, feat, NULL, 3, b, n, true),
			                1e-5, "shared y");
	double l1 = 0;
	for (int i = 0; i < 6; i++)
		l1 += fabs(feat[i]);
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_SUM), l1, 1e-5,
	                "l1 of the shared features");
	pt_release(m, x, ctx);
}

Test(readouts, point_gaussian_grid_mean_predictor)
{
	fv_module *m = build("_target_: PointGaussianReadout\nin_shape: [1, 1, 5, 7]\noutdims: 3\n"
	                     "bias: false\ngauss_type: isotropic\n"
	                     "grid_mean_predictor: {hidden_layers: 1, hidden_features: 3, "
	                     "final_tanh: true}\n"
	                     "source_grid: [[0, 0], [1, 0], [0, 2]]\n");
	const char *names[] = {"sigma", "_features", "mu_transform.0.weight", "mu_transform.0.bias",
	                       "mu_transform.2.weight", "mu_transform.2.bias", "source_grid"};
	pt_expect_names(m, names, 7);
	pt_expect_shape(pt_tensor(m, "mu_transform.0.weight"), 2, (int64_t[]){3, 2}, "layer 0");
	pt_expect_shape(pt_tensor(m, "mu_transform.2.weight"), 2, (int64_t[]){2, 3}, "layer 2");
	/* centred columns (1/3, 2/3), divided by the largest |value| 4/3 */
	const double sg[6] = {-0.25, -0.5, 0.5, -0.5, -0.25, 1};
	for (int i = 0; i < 6; i++)
		pt_expect_close(pt_tensor(m, "source_grid")->data[i], sg[i], 1e-6, "source_grid");
	fv_module_set_training(m, false);
	fv_tensor *x = pt_input(4, (int64_t[]){1, 1, 5, 7}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	const fv_real *w0 = pt_tensor(m, "mu_transform.0.weight")->data;
	const fv_real *b0 = pt_tensor(m, "mu_transform.0.bias")->data;
	const fv_real *w2 = pt_tensor(m, "mu_transform.2.weight")->data;
	const fv_real *b2 = pt_tensor(m, "mu_transform.2.bias")->data;
	double pos[6];
	for (int n = 0; n < 3; n++) {
		double h[3];
		for (int j = 0; j < 3; j++) {
			double a = b0[j] + w0[j * 2] * sg[2 * n] + w0[j * 2 + 1] * sg[2 * n + 1];
			h[j] = a > 0 ? a : exp(a) - 1; /* ELU */
		}
		for (int k = 0; k < 2; k++)
			pos[2 * n + k] = tanh(b2[k] + w2[k * 3] * h[0] + w2[k * 3 + 1] * h[1] +
			                      w2[k * 3 + 2] * h[2]);
	}
	for (int n = 0; n < 3; n++)
		pt_expect_close(y->data[n],
		                pg_reference(x, pos, pt_tensor(m, "_features")->data, NULL, 3, 0, n, true),
		                1e-5, "predicted-grid y");
	pt_release(m, x, ctx);
}

#define PG_BASE "_target_: PointGaussianReadout\nin_shape: [1, 1, 5, 7]\noutdims: 3\nbias: true\n"

#define RANGE_ERROR \
	"either init_mu_range doesn't belong to [0.0, 1.0] or init_sigma_range is non-positive"

Test(readouts, point_gaussian_errors)
{
	const pt_bad_spec bad[] = {
		{PG_BASE "init_mu_range: 1.5\n", RANGE_ERROR},
		{PG_BASE "init_mu_range: 0\n", RANGE_ERROR},
		{PG_BASE "init_sigma_range: -0.1\n", RANGE_ERROR},
		{PG_BASE "grid_mean_predictor: {hidden_layers: 0}\n",
		 "grid_mean_predictor needs source_grid"},
		{PG_BASE "grid_mean_predictor: {hidden_layerz: 0}\n"
		         "source_grid: [[0, 1], [1, 0], [2, 2]]\n",
		 "grid_mean_predictor: unknown key 'hidden_layerz'"},
		{PG_BASE "grid_mean_predictor: {}\nsource_grid: [[1, 1], [1, 1], [1, 1]]\n",
		 "source_grid: every row is the same"},
		{PG_BASE "grid_mean_predictor: {}\nsource_grid: [[0, 1], [1, 0]]\n",
		 "source_grid: expected 3 rows"},
		{PG_BASE "grid_mean_predictor: {}\nshared_grid: {match_ids: [1, 2, 3]}\n",
		 "Shared grid_mean_predictor and shared_grid_mean cannot both be set"},
		{PG_BASE "shared_grid: {shared_grid: null}\n", "match_ids must be set for sharing grid"},
		{PG_BASE "shared_grid: {match_ids: [1, 2]}\n",
		 "there must be one match ID per output dimension"},
		{PG_BASE "shared_features: {match_ids: [1, 2, 3], shared_features: 3}\n",
		 "shared_features.shared_features: must be null"},
		{PG_BASE "init_grid: [[0, 0], [0.1, 0.2]]\n", "init_grid: expected 3 (x, y) pairs"},
		{"_target_: PointGaussianReadout\nin_shape: [1, 1, 5, 7]\noutdims: 3\n", "bias"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
	expect_input_error("_target_: PointGaussianReadout\nin_shape: [2, 1, 5, 7]\noutdims: 3\n"
	                   "bias: true\n",
	                   NULL, 5, (int64_t[]){1, 2, 1, 5, 7},
	                   "PointGaussianReadout: input has shape (1, 2, 1, 5, 7); "
	                   "expected (batch, 2, width, height)");
}

Test(readouts, point_gaussian_init_grid)
{
	fv_module *m = build("_target_: FullGaussian2d\nin_shape: [1, 1, 5, 7]\noutdims: 2\n"
	                     "bias: false\ninit_grid: [[0.25, -0.5], [0.75, 0.125]]\n");
	const double want[4] = {0.25, -0.5, 0.75, 0.125};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pt_tensor(m, "_mu")->data[i], (fv_real)want[i]);
	fv_module_free(m);
}

/* ---- FactorizedReadout --------------------------------------------------------- */

#define FA_SPEC(extra)                                                            \
	"_target_: openretina.modules.readout.factorized.FactorizedReadout\n"      \
	"in_shape: [2, 3, 4, 5]\noutdims: 3\nmask_l1_reg: 0.4\nweights_l1_reg: 0.3\n" \
	"laplace_mask_reg: 0.8\nmask_size: [4, 5]\ninit_scales: [[0.0, 0.1], [0.0, 0.5]]\n" extra

#define FA_SMALL(in_shape)                                                                 \
	"_target_: FactorizedReadout\nin_shape: " in_shape "\noutdims: 2\nmask_l1_reg: 0\n" \
	"weights_l1_reg: 0\nlaplace_mask_reg: 0\n"

/* opt: a bool, whether the bias is added. */
static double fa_reference(const fv_module *m, const fv_tensor *x, int64_t b, int64_t t, int64_t n,
                           const void *opt)
{
	bool bias = *(const bool *)opt;
	const fv_tensor *mask = pt_tensor(m, "mask_weights"), *w = pt_tensor(m, "feature_weights");
	int64_t C = x->shape[1], T = x->shape[2], P = x->shape[3] * x->shape[4], N = mask->shape[1];
	double y = bias ? pt_tensor(m, "bias")->data[n] : 0;
	for (int64_t c = 0; c < C; c++) {
		double s = 0;
		for (int64_t p = 0; p < P; p++)
			s += x->data[((b * C + c) * T + t) * P + p] * mask->data[p * N + n];
		y += s * w->data[c * N + n];
	}
	return softplus(y);
}

static double fa_reg_reference(const fv_module *m, bool mean)
{
	const fv_tensor *mask = pt_tensor(m, "mask_weights"), *w = pt_tensor(m, "feature_weights");
	int64_t P = mask->shape[0], N = mask->shape[1], C = w->shape[0];
	double l1m = 0, l1w = 0, sq = 0;
	fv_real planes[3 * 20];
	for (int64_t p = 0; p < P; p++)
		for (int64_t n = 0; n < N; n++) {
			double v = mask->data[p * N + n];
			l1m += fabs(v);
			sq += v * v;
			planes[n * P + p] = v;
		}
	for (int64_t i = 0; i < C * N; i++)
		l1w += fabs(w->data[i]);
	double lap = pt_filter_sq_sum(planes, (int)N, 4, 5, pt_laplace3(), 3, 0, NULL) / (sq + 1e-6);
	return 0.4 * l1m / (double)N + 0.3 * l1w / (double)N + 0.8 * lap / (mean ? 3 : 1);
}

Test(readouts, factorized_tensors_forward_and_regularizer)
{
	fv_module *m = build(FA_SPEC("readout_bias: true\n"));
	const char *names[] = {"mask_weights", "feature_weights", "bias",
	                       "_input_weights_regularizer_spatial.laplace.filter"};
	pt_expect_names(m, names, 4);
	pt_expect_shape(pt_tensor(m, "mask_weights"), 2, (int64_t[]){20, 3}, "mask_weights");
	pt_expect_shape(pt_tensor(m, "feature_weights"), 2, (int64_t[]){2, 3}, "feature_weights");
	gc_fill_uniform(pt_tensor(m, "bias"), 9, -0.5, 0.5);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 5}, 1, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	expect_matches_ref(pt_forward(m, ctx, x, NULL, -1), x, 3, fa_reference, m, &(bool){true});
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_NONE), fa_reg_reference(m, false), 1e-5,
	                "reduction None");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_SUM), fa_reg_reference(m, false), 1e-5,
	                "reduction sum");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_MEAN), fa_reg_reference(m, true), 1e-5,
	                "reduction mean: Laplace term / 3");
	pt_release(m, x, ctx);
}

Test(readouts, factorized_constraints_in_place)
{
	fv_module *m = build(FA_SPEC("weights_constraint: absnorm\nmask_constraint: abs\n"));
	cr_assert(!pt_tensor(m, "bias")->requires_grad, "no readout_bias: bias is a buffer");
	fv_tensor *w0 = fv_tensor_clone(pt_tensor(m, "feature_weights"));
	fv_tensor *m0 = fv_tensor_clone(pt_tensor(m, "mask_weights"));
	fv_tensor *x = pt_input(5, (int64_t[]){1, 2, 3, 4, 5}, 1, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	for (int i = 0; i < 20 * 3; i++)
		cr_assert_eq(pt_tensor(m, "mask_weights")->data[i], fabsf(m0->data[i]));
	for (int n = 0; n < 3; n++) {
		double norm = sqrt(w0->data[n] * w0->data[n] + w0->data[3 + n] * w0->data[3 + n] + 1e-5);
		for (int c = 0; c < 2; c++)
			pt_expect_close(pt_tensor(m, "feature_weights")->data[c * 3 + n],
			                fabs(w0->data[c * 3 + n]) / norm, 1e-6, "absnorm");
	}
	/* The output uses the constrained values. */
	pt_expect_close(y->data[4], fa_reference(m, x, 0, 1, 1, &(bool){false}), 1e-5,
	                "y after constraints");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(w0);
	fv_tensor_free(m0);
	fv_module_free(m);
}

Test(readouts, factorized_norm_constraint_keeps_signs)
{
	fv_module *m = build(FA_SPEC("weights_constraint: norm\n"));
	fv_tensor *w = pt_tensor(m, "feature_weights");
	const fv_real w0[6] = {-3, 1, 0.5f, 4, -1, 0.5f};
	memcpy(w->data, w0, sizeof w0);
	fv_tensor *x = pt_input(5, (int64_t[]){1, 2, 3, 4, 5}, 1, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	pt_forward(m, ctx, x, NULL, -1);
	pt_expect_close(w->data[0], -3 / sqrt(25 + 1e-5), 1e-6, "w[0,0]");
	pt_expect_close(w->data[4], -1 / sqrt(2 + 1e-5), 1e-6, "w[1,1]");
	pt_release(m, x, ctx);
}

Test(readouts, factorized_gradients)
{
	fv_module *m = build(FA_SPEC("readout_bias: true\n"));
	away_from_zero(pt_tensor(m, "mask_weights"), 0.05);
	away_from_zero(pt_tensor(m, "feature_weights"), 0.05);
	fv_tensor *x = gc_input(5, (int64_t[]){2, 2, 3, 4, 5}, 1, -1, 1);
	fv_tensor *in[] = {x, pt_tensor(m, "mask_weights"), pt_tensor(m, "feature_weights"),
	                   pt_tensor(m, "bias")};
	gc_case c = {.m = m, .red = FV_REDUCE_MEAN};
	gradcheck("FactorizedReadout", output_and_penalty, 4, in, &c);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(readouts, factorized_init_mask_init_weights_and_square_mask)
{
	/* init_mask (2, 1, 5, 6) cropped to the centred 3 x 4: rows 1..3, cols 1..4. */
	char yaml[2048] = "_target_: KlindtReadoutWrapper3D\nin_shape: [1, 1, 3, 4]\noutdims: 2\n"
	                  "mask_l1_reg: 0\nweights_l1_reg: 0\nlaplace_mask_reg: 0\n"
	                  "mask_size: [3, 4]\ninit_weights: [[0.5, -0.25]]\ninit_mask: [";
	for (int k = 0; k < 2; k++) {
		strcat(yaml, k ? ", [[" : "[[");
		for (int i = 0; i < 5; i++) {
			strcat(yaml, i ? ", [" : "[");
			for (int j = 0; j < 6; j++) {
				char v[32];
				snprintf(v, sizeof v, "%s%d", j ? ", " : "", 100 * k + 10 * i + j);
				strcat(yaml, v);
			}
			strcat(yaml, "]");
		}
		strcat(yaml, "]]");
	}
	strcat(yaml, "]\n");
	fv_module *m = build(yaml);
	const fv_tensor *mw = pt_tensor(m, "mask_weights");
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 4; j++)
				cr_assert_eq(mw->data[(i * 4 + j) * 2 + k], 100 * k + 10 * (i + 1) + (j + 1));
	cr_assert_eq(pt_tensor(m, "feature_weights")->data[1], -0.25f);
	fv_module_free(m);
	m = build(FA_SMALL("[1, 1, 3, 3]") "mask_size: 3\ninit_scales: [[0, 1], [0, 1]]\n");
	pt_expect_shape(pt_tensor(m, "mask_weights"), 2, (int64_t[]){9, 2}, "square mask");
	fv_module_free(m);
}

Test(readouts, factorized_errors)
{
	const pt_bad_spec bad[] = {
		{FA_SMALL("[1, 1, 3, 3]") "mask_size: 3\n",
		 "Either init_mask or init_scales must be provided"},
		{FA_SMALL("[1, 1, 3, 3]") "mask_size: 3\ninit_scales: [[0, 1]]\n",
		 "init_scales: expected [[mask mean, mask std], [weights mean, weights std]]"},
		{FA_SMALL("[1, 1, 3, 3]") "mask_size: 3\ninit_scales: [[0, 1], [0, 1]]\n"
		                          "init_mask: [[[[1]]], [[[2]]]]\n",
		 "init_mask: expected (2, 1, >=3, >=3)"},
		{FA_SMALL("[2, 1, 3, 3]") "mask_size: 3\ninit_scales: [[0, 1], [0, 1]]\n"
		                          "init_weights: [[1, 2, 3]]\n",
		 "init_weights: expected (2, 2)"},
		{FA_SMALL("[2, 1, 3, 3]") "mask_size: [1, 2, 3]\ninit_scales: [[0, 1], [0, 1]]\n",
		 "mask_size: expected a size or (height, width)"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
	expect_input_error(FA_SPEC(""), NULL, 5, (int64_t[]){1, 2, 3, 5, 4},
	                   "FactorizedReadout: input has shape (1, 2, 3, 5, 4); expected "
	                   "(batch, 2, time, 4, 5)");
}

/* ---- LNPReadout ------------------------------------------------------------------------- */

#define LNP_SPEC(extra)                                                                  \
	"_target_: openretina.modules.readout.linear_nonlinear_poison.LNPReadout\n"       \
	"in_shape: [2, 3, 4, 5]\noutdims: 3\nsmooth_weight: 0.5\nsparse_weight: 0.25\n" extra

typedef struct lnp_setting {
	bool bias;
	double (*f)(double);
} lnp_setting;

static double lnp_reference(const fv_module *m, const fv_tensor *x, int64_t b, int64_t t,
                            int64_t n, const void *opt)
{
	const lnp_setting *l = opt;
	bool bias = l->bias;
	const fv_tensor *w = pt_tensor(m, "inner_product_kernel.weight");
	int64_t C = x->shape[1], T = x->shape[2], P = x->shape[3] * x->shape[4];
	double y = bias ? pt_tensor(m, "inner_product_kernel.bias")->data[n] : 0;
	for (int64_t c = 0; c < C; c++)
		for (int64_t p = 0; p < P; p++)
			y += x->data[((b * C + c) * T + t) * P + p] * w->data[(n * C + c) * P + p];
	return l->f(y);
}

/* LNP_SPEC's penalty: 0.5 * the Laplace (padded by `pad`) of the (n*c)
** kernels over their squares, plus 0.25 * mean |w|. */
static double lnp_reg_reference(const fv_module *m, int pad)
{
	const fv_tensor *w = pt_tensor(m, "inner_product_kernel.weight");
	double sq = 0, l1 = 0;
	cr_assert_eq(w->numel, 120);
	for (int i = 0; i < 120; i++) {
		sq += (double)w->data[i] * w->data[i];
		l1 += fabs(w->data[i]);
	}
	double lap = pt_filter_sq_sum(w->data, 6, 4, 5, pt_laplace3(), 3, pad, NULL);
	return 0.5 * lap / (sq + 1e-6) + 0.25 * l1 / 120;
}

Test(readouts, lnp_forward_and_regularizer)
{
	fv_module *m = build(LNP_SPEC("bias: true\nnonlinearity: softplus\n"));
	const char *names[] = {"inner_product_kernel.weight", "inner_product_kernel.bias",
	                       "_smooth_reg_fn.laplace.filter"};
	pt_expect_names(m, names, 3);
	pt_expect_shape(pt_tensor(m, "inner_product_kernel.weight"), 5, (int64_t[]){3, 2, 1, 4, 5},
	                "w");
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 5}, 2, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	expect_matches_ref(pt_forward(m, ctx, x, NULL, -1), x, 3, lnp_reference, m,
	                   &(lnp_setting){true, softplus});
	/* LaplaceL2norm(padding=None -> 1) */
	double want = lnp_reg_reference(m, 1);
	/* reduction is ignored, as openretina's regularizer(**kwargs) */
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_MEAN), want, 1e-5, "regularizer");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_SUM), want, 1e-5, "regularizer");
	pt_release(m, x, ctx);
}

Test(readouts, lnp_default_exp_padding_zero_and_gradients)
{
	fv_module *m = build(LNP_SPEC("laplace_padding: 0\n"));
	away_from_zero(pt_tensor(m, "inner_product_kernel.weight"), 0.05);
	const char *names[] = {"inner_product_kernel.weight", "_smooth_reg_fn.laplace.filter"};
	pt_expect_names(m, names, 2);
	fv_tensor *x = gc_input(5, (int64_t[]){2, 2, 3, 4, 5}, 2, -0.3, 0.3);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	pt_expect_close(y->data[7], lnp_reference(m, x, 0, 2, 1, &(lnp_setting){false, exp}), 1e-5,
	                "exp output");
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT), lnp_reg_reference(m, 0),
	                1e-5, "valid Laplace");
	fv_ctx_free(ctx);
	fv_tensor *in[] = {x, pt_tensor(m, "inner_product_kernel.weight")};
	gc_case c = {.m = m};
	gradcheck("LNPReadout", output_and_penalty, 2, in, &c);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(readouts, lnp_gaussian_laplace_child_and_mean_activity)
{
	fv_module *m = build(LNP_SPEC("bias: true\nsmooth_regularizer: GaussianLaplaceL2\n"
	                              "mean_activity: [1, 2, 3]\n"));
	cr_assert_not_null(fv_module_child(m, "_smooth_reg_fn"));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pt_tensor(m, "inner_product_kernel.bias")->data[i], i + 1);
	fv_module_free(m);
}

Test(readouts, lnp_errors)
{
	expect_build_error(LNP_SPEC("nonlinearity: bogus\n"), "unknown nonlinearity 'bogus'");
	expect_build_error(LNP_SPEC("smooth_regularizer: NoSuchRegularizer\n"),
	                   "component 'NoSuchRegularizer' is not registered");
	expect_input_error(LNP_SPEC(""), NULL, 5, (int64_t[]){1, 2, 3, 4, 6},
	                   "LNPReadout: input has shape (1, 2, 3, 4, 6); expected "
	                   "(batch, 2, time, 4, 5)");
}

/* ---- multi-session readouts -------------------------------------------------------------- */

#define MGM_SPEC(extra)                                                                   \
	"_target_: openretina.modules.readout.multi_readout.MultiGaussianMaskReadout\n"    \
	"in_shape: [2, 3, 4, 3]\nn_neurons_dict: {zeta: 2, alpha: 3}\nscale: true\n"      \
	"bias: true\ngaussian_mean_scale: 1.5\ngaussian_var_scale: 2.0\npositive: false\n" \
	"mask_l1_reg: 0.2\nfeature_weights_l1_reg: 0.9\n" extra

Test(readouts, multi_gaussian_mask_sessions_routing_and_concat)
{
	fv_module *m = build(MGM_SPEC("readout_reg_avg: true\n"));
	const char *names[] = {"zeta.mask_mean", "zeta.mask_log_var", "zeta.grid", "zeta.features",
	                       "zeta.scale_param", "zeta.bias", "alpha.mask_mean",
	                       "alpha.mask_log_var", "alpha.grid", "alpha.features",
	                       "alpha.scale_param", "alpha.bias"};
	pt_expect_names(m, names, 12);
	pt_expect_shape(pt_tensor(m, "alpha.mask_mean"), 2, (int64_t[]){3, 2}, "alpha.mask_mean");
	fv_module *zeta = fv_module_child(m, "zeta"), *alpha = fv_module_child(m, "alpha");
	cr_assert_not_null(zeta);
	cr_assert_not_null(alpha);
	gc_fill_uniform(pt_tensor(m, "zeta.mask_mean"), 1, -0.3, 0.3);
	gc_fill_uniform(pt_tensor(m, "alpha.mask_mean"), 2, -0.3, 0.3);
	gc_fill_uniform(pt_tensor(m, "alpha.bias"), 3, -0.3, 0.3);
	fv_module_set_training(m, false);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 3}, 4, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	const gm_setting mgm = {1.5, 2.0, false};
	expect_matches_ref(pt_forward(m, ctx, x, "zeta", -1), x, 2, gm_reference, zeta, &mgm);
	fv_tensor *all = pt_forward(m, ctx, x, NULL, -1);
	pt_expect_shape(all, 3, (int64_t[]){2, 3, 5}, "all sessions");
	/* sorted keys: alpha (3 neurons) first, then zeta (2). */
	for (int b = 0; b < 2; b++)
		for (int t = 0; t < 3; t++)
			for (int n = 0; n < 5; n++) {
				double want = n < 3 ? gm_reference(alpha, x, b, t, n, &mgm)
				                    : gm_reference(zeta, x, b, t, n - 3, &mgm);
				pt_expect_close(all->data[(b * 3 + t) * 5 + n], want, 1e-5, "concatenated y");
			}
	/* readout_reg_avg: the session's regularizer with means. */
	double mean_reg = pt_regularizer(alpha, ctx, NULL, FV_REDUCE_MEAN);
	double sum_reg = pt_regularizer(alpha, ctx, NULL, FV_REDUCE_SUM);
	cr_assert(fabs(mean_reg - sum_reg) > 1e-4);
	pt_expect_close(pt_regularizer(m, ctx, "alpha", FV_REDUCE_DEFAULT), mean_reg, 1e-6, "reg_avg");
	pt_expect_close(pt_regularizer(m, ctx, "alpha", FV_REDUCE_SUM), sum_reg, 1e-6, "explicit sum");
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	cr_assert_null(fv_module_regularizer(m, ctx, &fa));
	pt_expect_msg("data_key is required when there are multiple sessions");
	fv_ctx_free(ctx);
	pt_expect_forward_error(m, "beta", x->ndim, x->shape,
	                        "MultiGaussianMaskReadout: no session 'beta' (sessions: alpha, zeta)");
	fv_tensor_free(x);
	fv_module_free(m);
}

/* Positions are asked per session and answered by its readout; a
** readout that cannot tell says so (the figure is then skipped). */
Test(readouts, multi_neuron_positions_by_session)
{
	fv_module *m = build(MGM_SPEC(""));
	gc_fill_uniform(pt_tensor(m, "alpha.mask_mean"), 2, -0.3, 0.3);
	double got[6], want[6];
	int64_t hw[2], child_hw[2];
	cr_assert_eq(fv_module_neuron_positions(m, "alpha", 3, got, hw), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_module_neuron_positions(fv_module_child(m, "alpha"), NULL, 3, want,
	                                        child_hw),
	             FV_OK);
	cr_assert_arr_eq(got, want, sizeof got);
	cr_assert(hw[0] == 4 && hw[1] == 3);
	cr_assert_eq(fv_module_neuron_positions(m, "beta", 3, got, hw), FV_ERR_NOTFOUND);
	pt_expect_msg("no session 'beta'");
	cr_assert_eq(fv_module_neuron_positions(m, NULL, 3, got, hw), FV_ERR_ARG);
	pt_expect_msg("a session is needed when there are several");
	fv_module_free(m);

	m = build("_target_: MultiReadoutBase\nin_shape: [2, 3, 4, 5]\nn_neurons_dict: {a: 2}\n"
	          "base_readout: LNPReadout\n");
	cr_assert_eq(fv_module_neuron_positions(m, "a", 2, got, hw), FV_ERR_NOTFOUND);
	pt_expect_msg("readout 'LNPReadout' (a) has no neuron_positions");
	cr_assert_eq(fv_module_neuron_positions(m, NULL, 2, got, hw), FV_ERR_NOTFOUND,
	             "one session needs no key");
	fv_module_free(m);
}

/* Sessions without an fv_linear_readout run one by one; the result is the
** same concatenation in sorted key order. */
Test(readouts, multi_without_linear_readouts_concatenates_sessions)
{
	fv_module *m = build("_target_: MultiReadoutBase\nin_shape: [2, 3, 4, 5]\n"
	                     "n_neurons_dict: {b: 2, a: 3}\nbase_readout: LNPReadout\n"
	                     "nonlinearity: softplus\n");
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 5}, 8, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *all = pt_forward(m, ctx, x, NULL, -1);
	fv_tensor *a = pt_forward(m, ctx, x, "a", -1), *b = pt_forward(m, ctx, x, "b", -1);
	pt_expect_shape(all, 3, (int64_t[]){2, 3, 5}, "all sessions");
	for (int64_t bt = 0; bt < 6; bt++)
		for (int64_t n = 0; n < 5; n++)
			cr_assert_eq(all->data[bt * 5 + n], n < 3 ? a->data[bt * 3 + n]
			                                          : b->data[bt * 2 + n - 3]);
	pt_release(m, x, ctx);
}

Test(readouts, multi_gaussian_mask_gradients_per_session)
{
	fv_module *m = build(MGM_SPEC(""));
	away_from_zero(pt_tensor(m, "zeta.features"), 0.05);
	fv_tensor *x = gc_input(5, (int64_t[]){1, 2, 2, 4, 3}, 4, -1, 1);
	fv_tensor *in[] = {x, pt_tensor(m, "zeta.mask_mean"), pt_tensor(m, "zeta.features"),
	                   pt_tensor(m, "alpha.features")};
	in[3]->requires_grad = false; /* not in zeta's graph: leave it out of the check */
	gc_case c = {.m = m, .key = "zeta"};
	gradcheck("MultiGaussianMaskReadout[zeta]", output_and_penalty, 3, in, &c);
	fv_tensor_free(x);
	fv_module_free(m);
}

static fv_tensor *all_sessions(fv_ctx *ctx, fv_tensor *const *inputs, void *ud)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT; /* no data key */
	return fv_module_forward(ud, ctx, inputs[0], &fa);
}

/* Without a data key every session runs in one product (multi.c): its
** gradients reach the input and both sessions' tensors. */
Test(readouts, multi_gaussian_mask_gradients_all_sessions)
{
	fv_module *m = build(MGM_SPEC(""));
	away_from_zero(pt_tensor(m, "zeta.features"), 0.05);
	away_from_zero(pt_tensor(m, "alpha.features"), 0.05);
	fv_tensor *x = gc_input(5, (int64_t[]){1, 2, 2, 4, 3}, 4, -1, 1);
	fv_tensor *in[] = {x,
	                   pt_tensor(m, "zeta.mask_mean"),
	                   pt_tensor(m, "zeta.features"),
	                   pt_tensor(m, "alpha.mask_log_var"),
	                   pt_tensor(m, "alpha.features"),
	                   pt_tensor(m, "alpha.scale_param"),
	                   pt_tensor(m, "zeta.bias")};
	gradcheck("MultiGaussianMaskReadout, all sessions", all_sessions, 7, in, m);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(readouts, multi_mean_activity_dict_and_initialize_bias)
{
	fv_module *m = build(MGM_SPEC("mean_activity_dict: {zeta: [1, 2], alpha: [3, 4, 5]}\n"));
	cr_assert_eq(pt_tensor(m, "zeta.bias")->data[1], 2);
	cr_assert_eq(pt_tensor(m, "alpha.bias")->data[0], 3);
	/* initialize_bias: sessions concatenated in sorted key order. */
	fv_tensor *mean = fv_tensor_new(1, (int64_t[]){5});
	for (int i = 0; i < 5; i++)
		mean->data[i] = (fv_real)(10 + i);
	cr_assert_eq(fv_module_initialize_bias(m, mean), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(pt_tensor(m, "alpha.bias")->data[2], 12);
	cr_assert_eq(pt_tensor(m, "zeta.bias")->data[0], 13);
	expect_initialize_bias_error(m, 4, "the sessions have 5 neurons in all");
	fv_tensor_free(mean);
	fv_module_free(m);
}

/* A MultiGaussianMaskReadout of the sessions `dict`. */
#define MGM_SESSIONS(dict)                                                                \
	"_target_: MultiGaussianMaskReadout\nin_shape: [2, 3, 4, 3]\nn_neurons_dict: " dict \
	"\nscale: true\nbias: true\ngaussian_mean_scale: 1\ngaussian_var_scale: 1\n"         \
	"positive: false\n"
#define MSG_BASE                                                                       \
	"_target_: MultiSampledGaussianReadout\nin_shape: [2, 3, 4, 3]\nn_neurons_dict: {a: 2}\n" \
	"bias: true\ninit_sigma_range: 0.1\n"

Test(readouts, multi_errors)
{
	const pt_bad_spec bad[] = {
		{MGM_SPEC("mean_activity_dict: {zeta: [1, 2]}\n"),
		 "mean_activity_dict: no entry for session 'alpha'"},
		{MGM_SPEC("mean_activity_dict: {zeta: [1, 2], alpha: [3]}\n"),
		 "mean_activity: expected 3 values"},
		{MGM_SESSIONS("{a.b: 2}"), "spec.yaml:3:18: MultiGaussianMaskReadout: n_neurons_dict: "
		 "session name 'a.b' cannot name a module"},
		{MGM_SESSIONS("{}"), "spec.yaml:3:1: MultiGaussianMaskReadout: n_neurons_dict: expected a "
		 "non-empty map"},
		{MGM_SESSIONS("{a: 0}"), "spec.yaml:3:18: MultiGaussianMaskReadout: n_neurons_dict.a: "
		 "expected a positive number of neurons, got 0"},
		{MSG_BASE "init_mu_range: 2\n", "either init_mu_range doesn't belong to [0.0, 1.0]"},
		{MSG_BASE "init_mu_range: 0.2\ngrid_mean_predictor: {hidden_layers: 0}\n",
		 "grid_mean_predictor needs source_grid"},
		{"_target_: MultiReadoutBase\nin_shape: [2, 3, 4, 3]\nn_neurons_dict: {a: 2}\n"
		 "base_readout: NoSuchReadout\n",
		 "component 'NoSuchReadout' is not registered"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
}

Test(readouts, multi_single_session_regularizer_needs_no_key)
{
	fv_module *m = build("_target_: MultiGaussianMaskReadout\nin_shape: [2, 3, 4, 3]\n"
	                     "n_neurons_dict: {only: 2}\nscale: false\nbias: true\n"
	                     "gaussian_mean_scale: 1\ngaussian_var_scale: 1\npositive: false\n");
	fv_ctx *ctx = fv_ctx_new();
	pt_expect_close(pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT),
	                pt_regularizer(fv_module_child(m, "only"), ctx, NULL, FV_REDUCE_SUM), 1e-7,
	                "the only session, summed");
	fv_ctx_free(ctx);
	fv_module_free(m);
}

Test(readouts, multi_sampled_gaussian_frames_and_softplus)
{
	fv_module *m = build("_target_: openretina.modules.readout.multi_readout."
	                     "MultiSampledGaussianReadout\nin_shape: [2, 3, 4, 5]\n"
	                     "n_neurons_dict: {s1: 2, s0: 1}\nbias: true\ninit_mu_range: 0.5\n"
	                     "init_sigma_range: 0.1\ngauss_type: uncorrelated\ngamma: 0.4\n"
	                     "reg_avg: false\n");
	const char *names[] = {"s1._mu", "s1.sigma", "s1._features", "s1.bias",
	                       "s0._mu", "s0.sigma", "s0._features", "s0.bias"};
	pt_expect_names(m, names, 8);
	gc_fill_uniform(pt_tensor(m, "s1._features"), 1, -1, 1);
	gc_fill_uniform(pt_tensor(m, "s1.bias"), 2, -1, 1);
	fv_module_set_training(m, false);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 3, 4, 5}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, "s1", -1);
	pt_expect_shape(y, 3, (int64_t[]){2, 3, 2}, "y");
	const fv_tensor *mu = pt_tensor(m, "s1._mu");
	double pos[4] = {mu->data[0], mu->data[1], mu->data[2], mu->data[3]};
	fv_tensor *frame = fv_tensor_new(4, (int64_t[]){1, 2, 4, 5});
	for (int b = 0; b < 2; b++)
		for (int t = 0; t < 3; t++) {
			for (int c = 0; c < 2; c++)
				memcpy(frame->data + c * 20, x->data + ((b * 2 + c) * 3 + t) * 20,
				       20 * sizeof(fv_real));
			for (int n = 0; n < 2; n++) {
				double lin = pg_reference(frame, pos, pt_tensor(m, "s1._features")->data,
				                          pt_tensor(m, "s1.bias")->data, 2, 0, n, true);
				pt_expect_close(y->data[(b * 3 + t) * 2 + n], softplus(lin), 1e-5, "frame y");
			}
		}
	fv_tensor *all = pt_forward(m, ctx, x, NULL, -1);
	pt_expect_shape(all, 3, (int64_t[]){2, 3, 3}, "s0 then s1");
	pt_expect_close(all->data[2], y->data[1], 1e-6, "s1 after s0");
	double l1 = 0;
	for (int i = 0; i < 4; i++)
		l1 += fabs(pt_tensor(m, "s1._features")->data[i]);
	pt_expect_close(pt_regularizer(m, ctx, "s1", FV_REDUCE_DEFAULT), 0.4 * l1, 1e-5, "gamma * sum");
	fv_ctx_free(ctx);
	fv_tensor_free(frame);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(readouts, multi_factorized_mask_size_from_input)
{
	fv_module *m = build("_target_: MultiFactorizedReadout\nin_shape: [2, 3, 4, 5]\n"
	                     "n_neurons_dict: {a: 2, b: 3}\nmask_l1_reg: 0.1\nweights_l1_reg: 0.2\n"
	                     "laplace_mask_reg: 0.3\nweights_constraint: abs\n"
	                     "init_scales: [[0, 0.1], [0, 0.5]]\n");
	pt_expect_shape(pt_tensor(m, "b.mask_weights"), 2, (int64_t[]){20, 3}, "b.mask_weights");
	cr_assert_not_null(fv_module_tensor(m, "a._input_weights_regularizer_spatial.laplace.filter"));
	fv_tensor *x = pt_input(5, (int64_t[]){1, 2, 3, 4, 5}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	pt_forward(m, ctx, x, "a", -1);
	const fv_tensor *w = pt_tensor(m, "a.feature_weights");
	for (int i = 0; i < w->numel; i++)
		cr_assert(w->data[i] >= 0, "abs constraint passed on to the session");
	pt_release(m, x, ctx);
}

Test(readouts, multiple_lnp_clone_readout)
{
	fv_module *m = build("_target_: MultipleLNPReadout\nin_shape: [2, 3, 4, 5]\n"
	                     "n_neurons_dict: {a: 2, b: 2}\nclone_readout: true\nbias: true\n"
	                     "nonlinearity: softplus\n");
	const char *names[] = {"a.inner_product_kernel.weight", "a.inner_product_kernel.bias",
	                       "a._smooth_reg_fn.laplace.filter", "b.alpha", "b.beta"};
	pt_expect_names(m, names, 5);
	const fv_real alpha[2] = {2, -0.5f}, beta[2] = {0.25f, 1};
	memcpy(pt_tensor(m, "b.alpha")->data, alpha, sizeof alpha);
	memcpy(pt_tensor(m, "b.beta")->data, beta, sizeof beta);
	fv_tensor *x = pt_input(5, (int64_t[]){1, 2, 3, 4, 5}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *ya = pt_forward(m, ctx, x, "a", -1);
	fv_tensor *yb = pt_forward(m, ctx, x, "b", -1);
	for (int i = 0; i < 6; i++)
		pt_expect_close(yb->data[i], ya->data[i] * alpha[i % 2] + beta[i % 2], 1e-6, "clone");
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = "b";
	cr_assert_null(fv_module_regularizer(m, ctx, &fa));
	pt_expect_msg("regularizer is not implemented for ClonedReadout");
	pt_release(m, x, ctx);
}

Test(readouts, multi_readout_base_with_any_readout)
{
	fv_module *m = build("_target_: MultiReadoutBase\nin_shape: [2, 3, 4, 5]\n"
	                     "n_neurons_dict: {a: 2}\nbase_readout: LNPReadout\n"
	                     "smooth_weight: 0.5\nnonlinearity: relu\n");
	pt_expect_shape(pt_tensor(m, "a.inner_product_kernel.weight"), 5,
	                (int64_t[]){2, 2, 1, 4, 5}, "w");
	fv_tensor *x = pt_input(5, (int64_t[]){1, 2, 3, 4, 5}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, "a", -1);
	for (int i = 0; i < y->numel; i++)
		cr_assert(y->data[i] >= 0, "relu passed on");
	pt_release(m, x, ctx);
	/* An option the base readout does not take is its error. */
	expect_build_error("_target_: MultiReadoutBase\nin_shape: [2, 3, 4, 5]\n"
	                   "n_neurons_dict: {a: 2}\nbase_readout: LNPReadout\npositive: true\n",
	                   "positive");
}

Test(readouts, in_shape_and_outdims_from_the_model)
{
	fv_config *cfg = fv_config_load_string("{_target_: GaussianMaskReadout}", 31, "m.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_build_args a = {.struct_size = sizeof a, .registry = reg, .in_ndim = 4,
	                   .in_shape = {3, 2, 6, 4}, .n_neurons = 7, .spec = fv_config_root(cfg)};
	fv_module *m = fv_instantiate(reg, a.spec, &a);
	cr_assert_not_null(m, "%s", fv_errmsg());
	pt_expect_shape(pt_tensor(m, "grid"), 4, (int64_t[]){7, 6, 4, 2}, "grid from args");
	pt_expect_shape(pt_tensor(m, "features"), 4, (int64_t[]){1, 3, 1, 7}, "features from args");
	fv_module_free(m);
	fv_config_free(cfg);
}

/* The readout sections of openretina's configs/model/ files as written
** there, with what UnifiedCoreReadout adds (in_shape, n_neurons_dict,
** mean_activity_dict). */
Test(readouts, openretina_config_readout_sections)
{
	const char *specs[] = {
		/* base_core_readout.yaml */
		"_target_: openretina.modules.readout.multi_readout.MultiGaussianMaskReadout\n"
		"_convert_: object\nin_shape: [16, 20, 8, 6]\nscale: true\nbias: true\n"
		"gaussian_mean_scale: 6.0\ngaussian_var_scale: 4.0\npositive: true\n"
		"mask_l1_reg: 1.0\nfeature_weights_l1_reg: 1.0\nreadout_reg_avg: false\n"
		"n_neurons_dict: {session_a: 3, session_b: 2}\nmean_activity_dict: null\n",
		/* core_gaussian_readout.yaml */
		"_target_: openretina.modules.readout.multi_readout.MultiSampledGaussianReadout\n"
		"_convert_: object\nin_shape: [16, 20, 8, 6]\nbias: true\ngamma: 0.4\n"
		"init_mu_range: 0.1\ninit_sigma_range: 0.15\nreg_avg: False\nbatch_sample: True\n"
		"align_corners: True\ngauss_type: \"full\"\ngrid_mean_predictor: null\n"
		"shared_features: null\ninit_grid: null\nshared_grid: null\n"
		"n_neurons_dict: {session_a: 3, session_b: 2}\n",
		/* core_klindt_readout.yaml */
		"_target_: openretina.modules.readout.multi_readout.MultiFactorizedReadout\n"
		"_convert_: object\nin_shape: [16, 20, 8, 6]\nmask_l1_reg: 5.0\n"
		"weights_l1_reg: 5.0\nlaplace_mask_reg: 1.0\nreadout_bias: true\n"
		"weights_constraint: null\nmask_constraint: null\ninit_mask: null\n"
		"init_weights: null\ninit_scales: [[0.0, 0.15], [0.0, 0.15]]\n"
		"n_neurons_dict: {session_a: 3, session_b: 2}\n",
		/* linear_nonlinear_poisson.yaml */
		"_target_: openretina.modules.readout.multi_readout.MultipleLNPReadout\n"
		"_convert_: object\nin_shape: [16, 20, 8, 6]\nnonlinearity: \"softplus\"\n"
		"smooth_weight: 1.0\nsparse_weight: 1.0\nbias: True\n"
		"n_neurons_dict: {session_a: 3, session_b: 2}\n",
	};
	fv_tensor *x = pt_input(5, (int64_t[]){2, 16, 4, 8, 6}, 1, -1, 1);
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		fv_module *m = build(specs[i]);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *y = pt_forward(m, ctx, x, "session_b", -1);
		pt_expect_shape(y, 3, (int64_t[]){2, 4, 2}, specs[i]);
		cr_assert(isfinite(pt_regularizer(m, ctx, "session_a", FV_REDUCE_DEFAULT)));
		fv_ctx_free(ctx);
		fv_module_free(m);
	}
	fv_tensor_free(x);
}

Test(readouts, malformed_nested_options)
{
	const pt_bad_spec bad[] = {
		{PG_BASE "grid_mean_predictor: {hidden_features: 0}\n"
		         "source_grid: [[0, 1], [1, 0], [2, 2]]\n",
		 "grid_mean_predictor: need hidden_features >= 1"},
		{PG_BASE "grid_mean_predictor: 3\n", "grid_mean_predictor: expected a map"},
		{PG_BASE "shared_grid: [1, 2, 3]\n", "shared_grid: expected a map"},
		{PG_BASE "shared_grid: {match_ids: [1, 2, 3], match: 1}\n",
		 "shared_grid: unknown key 'match'"},
		{PG_BASE "grid_mean_predictor: {}\nsource_grid: [[0, 1], [1], [2, 2]]\n",
		 "source_grid: ragged nested list"},
		{PG_BASE "mean_activity: []\n", "mean_activity: empty list"},
		{PG_BASE "mean_activity: [1, [2], 3]\n",
		 "mean_activity: expected a number at nesting depth 1"},
		{PG_BASE "mean_activity: [1, abc, 3]\n", "abc"},
		{MGM_SPEC("mean_activity_dict: [1, 2]\n"), "mean_activity_dict: expected a map"},
		{"_target_: MultipleLNPReadout\nin_shape: [2, 3, 4, 5]\nn_neurons_dict: {a: many}\n",
		 "many"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
}

Test(readouts, composites_need_the_registry)
{
	fv_build_args a = {.struct_size = sizeof a};
	fv_clear_error();
	cr_assert_null(fv_instantiate_named(reg, "FactorizedReadout",
	                                    "{in_shape: [1, 1, 3, 3], outdims: 2, mask_l1_reg: 0, "
	                                    "weights_l1_reg: 0, laplace_mask_reg: 0, mask_size: 3, "
	                                    "init_scales: [[0, 1], [0, 1]]}",
	                                    &a, "r"));
	pt_expect_msg("FactorizedReadout: needs the registry to build its "
	              "_input_weights_regularizer_spatial (FlatLaplaceL23dnorm)");
	cr_assert_null(fv_instantiate_named(reg, "MultipleLNPReadout",
	                                    "{in_shape: [1, 1, 3, 3], n_neurons_dict: {a: 1}}", &a,
	                                    "r"));
	pt_expect_msg("MultipleLNPReadout: needs the registry to build its session readouts");
}

Test(readouts, multi_sampled_gaussian_needs_5d_input)
{
	expect_input_error("_target_: MultiSampledGaussianReadout\nin_shape: [2, 3, 4, 5]\n"
	                   "n_neurons_dict: {s: 2}\nbias: false\ninit_mu_range: 0.5\n"
	                   "init_sigma_range: 0.1\n",
	                   "s", 4, (int64_t[]){2, 2, 4, 5},
	                   "MultiSampledGaussianReadout: input has shape (2, 2, 4, 5); "
	                   "expected (batch, channels, time, width, height)");
}
