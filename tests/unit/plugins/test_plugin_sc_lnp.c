/*
** test_plugin_sc_lnp.c: SingleCellSeparatedLNP (plugins/models/
** single_cell_lnp.c) against naive references written here from
** openretina's formulas: the crop around rf_location (rows and columns
** worked out by hand), the space then time cross-correlations, every
** selectable nonlinearity, the in-place kernel normalisation, and the
** regularizer (Laplace ratios, Gaussian-damped Laplace, L1 means).
** Shapes, ranks and hyper-parameters differ from the golden cases;
** gradients are checked by finite differences through the whole model;
** every error path is tested for its message.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "gradcheck.h"

static fv_registry *reg;

static void load_plugins(void)
{
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	reg = fv_registry_new();
	cr_assert_not_null(reg);
	const char *kinds[] = {"models", "regularizers", "losses"};
	for (int i = 0; i < 3; i++) {
		char dir[1024];
		snprintf(dir, sizeof dir, "%s/plugins/%s", build, kinds[i]);
		cr_assert_eq(fv_registry_load_dir(reg, dir), FV_OK, "%s", fv_errmsg());
	}
}

static void unload(void)
{
	fv_registry_free(reg);
}

TestSuite(sc_lnp, .init = load_plugins, .fini = unload);

/* ---- helpers ------------------------------------------------------------------ */

#define TARGET "_target_: openretina.models.linear_nonlinear.SingleCellSeparatedLNP\n"

static fv_module *try_build(const char *yaml)
{
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "spec.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_build_args a = {.struct_size = sizeof a, .registry = reg, .seed = 5};
	a.spec = fv_config_root(cfg);
	fv_module *m = fv_instantiate(reg, a.spec, &a);
	fv_config_free(cfg);
	return m;
}

static fv_module *build(const char *yaml)
{
	fv_module *m = try_build(yaml);
	cr_assert_not_null(m, "%s\n--- for:\n%s", fv_errmsg(), yaml);
	return m;
}

static void expect_build_error(const char *yaml, const char *needle)
{
	fv_clear_error();
	fv_module *m = try_build(yaml);
	cr_assert_null(m, "accepted:\n%s", yaml);
	cr_assert(strstr(fv_errmsg(), needle) != NULL, "message '%s' lacks '%s'", fv_errmsg(),
	          needle);
}

static fv_tensor *tensor(const fv_module *m, const char *name)
{
	fv_tensor *t = fv_module_tensor(m, name);
	cr_assert_not_null(t, "no tensor '%s'", name);
	return t;
}

static void expect_shape(const fv_tensor *t, int ndim, const int64_t *shape, const char *what)
{
	cr_assert_eq(t->ndim, ndim, "%s: ndim %d, expected %d", what, t->ndim, ndim);
	for (int i = 0; i < ndim; i++)
		cr_assert_eq(t->shape[i], shape[i], "%s: shape %s", what, fv_shape_str(t->ndim, t->shape));
}

static void expect_close(double got, double want, double tol, const char *what)
{
	cr_assert(fabs(got - want) <= tol + tol * fabs(want), "%s: got %.9g, expected %.9g", what, got,
	          want);
}

typedef struct name_list {
	const char *const *want;
	int n_want, seen;
} name_list;

static int check_name(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)t;
	name_list *l = ud;
	for (int i = 0; i < l->n_want; i++)
		if (strcmp(l->want[i], name) == 0) {
			l->seen++;
			return 0;
		}
	cr_assert_fail("unexpected tensor '%s' (%s)", name, is_param ? "param" : "buffer");
	return 1;
}

static void expect_names(const fv_module *m, const char *const *want, int n)
{
	name_list l = {.want = want, .n_want = n};
	fv_module_foreach_tensor(m, check_name, &l);
	cr_assert_eq(l.seen, n, "found %d of the %d expected tensors", l.seen, n);
}

static fv_tensor *input(int ndim, const int64_t *shape, uint64_t seed, double lo, double hi)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	cr_assert_not_null(t);
	gc_fill_uniform(t, seed, lo, hi);
	return t;
}

/* Values in +-[margin, margin + 1): finite differences then never straddle
** the kink of the L1 penalty at 0. */
static void fill_away_from_zero(fv_tensor *t, uint64_t seed, double margin)
{
	gc_fill_uniform(t, seed, -1, 1);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(t->data[i] < 0 ? t->data[i] - margin : t->data[i] + margin);
}

static fv_tensor *forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, bool crop)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.crop_input = crop;
	fv_tensor *y = fv_module_forward(m, ctx, x, &fa);
	cr_assert_not_null(y, "forward: %s", fv_errmsg());
	return y;
}

static double regularizer(fv_module *m, fv_ctx *ctx)
{
	fv_tensor *r = fv_module_regularizer(m, ctx, NULL);
	cr_assert_not_null(r, "regularizer: %s", fv_errmsg());
	cr_assert_eq(r->numel, 1);
	return r->data[0];
}

/* ---- naive references ----------------------------------------------------------- */

/* The linear stage on the patch x[:, :, :, r0:r0+kh, c0:c0+kw]:
** z[b, t] = sum_{r,tau} time_w[0, r, tau] *
**           sum_{c,i,j} space_w[r, c, 0, i, j] * x[b, c, t + tau, r0 + i, c0 + j]. */
static void naive_linear(const fv_tensor *x, const fv_tensor *space_w, const fv_tensor *time_w,
                         int64_t r0, int64_t c0, double *z)
{
	int64_t B = x->shape[0], C = x->shape[1], T = x->shape[2], H = x->shape[3], W = x->shape[4];
	int64_t R = space_w->shape[0], kh = space_w->shape[3], kw = space_w->shape[4];
	int64_t kt = time_w->shape[2], To = T - kt + 1;
	for (int64_t b = 0; b < B; b++)
		for (int64_t t = 0; t < To; t++) {
			double acc = 0;
			for (int64_t r = 0; r < R; r++)
				for (int64_t tau = 0; tau < kt; tau++) {
					double s = 0;
					for (int64_t c = 0; c < C; c++)
						for (int64_t i = 0; i < kh; i++)
							for (int64_t j = 0; j < kw; j++)
								s += space_w->data[((r * C + c) * kh + i) * kw + j] *
								     x->data[(((b * C + c) * T + t + tau) * H + r0 + i) * W +
								             c0 + j];
					acc += time_w->data[r * kt + tau] * s;
				}
			z[b * To + t] = acc;
		}
}

static double softplus(double x)
{
	return x > 20 ? x : log1p(exp(x));
}

static double nonlinearity(const char *name, double x)
{
	if (strcmp(name, "softplus") == 0)
		return softplus(x);
	if (strcmp(name, "relu") == 0)
		return x > 0 ? x : 0;
	if (strcmp(name, "elu") == 0)
		return x > 0 ? x : expm1(x);
	if (strcmp(name, "selu") == 0)
		return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * expm1(x));
	if (strcmp(name, "sigmoid") == 0)
		return 1 / (1 + exp(-x));
	if (strcmp(name, "tanh") == 0)
		return tanh(x);
	if (strcmp(name, "silu") == 0)
		return x / (1 + exp(-x));
	if (strcmp(name, "leaky_relu") == 0)
		return x > 0 ? x : 0.01 * x;
	if (strcmp(name, "logsigmoid") == 0)
		return -softplus(-x);
	if (strcmp(name, "softsign") == 0)
		return x / (1 + fabs(x));
	cr_assert_fail("no reference for %s", name);
	return 0;
}

/* sum over planes of conv2d(plane, filter k x k, zero padding pad)^2. */
static double laplace2d_sq_sum(const fv_real *x, int64_t planes, int64_t h, int64_t w, int64_t pad,
                               const double *damp /* (h, w) or NULL */)
{
	static const double L[3][3] = {{0, -1, 0}, {-1, 4, -1}, {0, -1, 0}};
	double s = 0;
	for (int64_t p = 0; p < planes; p++)
		for (int64_t i = 0; i < h + 2 * pad - 2; i++)
			for (int64_t j = 0; j < w + 2 * pad - 2; j++) {
				double v = 0;
				for (int a = 0; a < 3; a++)
					for (int b = 0; b < 3; b++) {
						int64_t y = i + a - pad, z = j + b - pad;
						if (y >= 0 && y < h && z >= 0 && z < w)
							v += L[a][b] * x[(p * h + y) * w + z];
					}
				if (damp != NULL)
					v *= damp[i * w + j];
				s += v * v;
			}
	return s;
}

static double laplace1d_sq_sum(const fv_real *x, int64_t rows, int64_t n, int64_t pad)
{
	double s = 0;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t i = 0; i < n + 2 * pad - 2; i++) {
			double v = 0;
			for (int a = 0; a < 3; a++) {
				int64_t y = i + a - pad;
				if (y >= 0 && y < n)
					v += (a == 1 ? 2.0 : -1.0) * x[r * n + y];
			}
			s += v * v;
		}
	return s;
}

static double sum_sq(const fv_tensor *t)
{
	double s = 0;
	for (int64_t i = 0; i < t->numel; i++)
		s += (double)t->data[i] * t->data[i];
	return s;
}

static double mean_abs(const fv_tensor *t)
{
	double s = 0;
	for (int64_t i = 0; i < t->numel; i++)
		s += fabs((double)t->data[i]);
	return s / (double)t->numel;
}

/* 1 - gaussian2d(size=(h, w), sigma=min(h, w)/4), normalised to [0, 1]:
** openretina's meshgrid puts the (h-1)/2-centred coordinate along rows. */
static void gaussian_damping(int64_t h, int64_t w, double *out)
{
	double sigma = (double)(h < w ? h : w) / 4, lo = INFINITY, hi = -INFINITY;
	for (int64_t i = 0; i < h; i++)
		for (int64_t j = 0; j < w; j++) {
			double x = (double)i - (double)(h - 1) / 2, y = (double)j - (double)(w - 1) / 2;
			double g = exp(-0.5 * (x * x + y * y) / (sigma * sigma));
			out[i * w + j] = g;
			lo = fmin(lo, g);
			hi = fmax(hi, g);
		}
	for (int64_t i = 0; i < h * w; i++)
		out[i] = 1 - (out[i] - lo) / (hi - lo);
}

/* ---- construction ----------------------------------------------------------------- */

#define SPEC_A                                                                   \
	TARGET "in_shape: [3, 4, 9, 11]\nspat_kernel_size: [3, 4]\nrf_location: [2, 9]\n" \
	       "rank: 3\nnormalize_weights: false\n"

Test(sc_lnp, names_kind_and_state_dict)
{
	const fv_component *a = fv_registry_find(reg, "SingleCellSeparatedLNP", NULL);
	const fv_component *b =
	        fv_registry_find(reg, "openretina.models.linear_nonlinear.SingleCellSeparatedLNP", NULL);
	cr_assert_not_null(a);
	cr_assert_eq(a, b);
	cr_assert_eq(a->kind, FV_KIND_MODEL);

	fv_module *m = build(SPEC_A);
	const char *want[] = {
	        "nonlinearity.b", "nonlinearity.w", "space_conv.weight", "time_conv.weight",
	        "_smooth_reg_fn_spat.laplace.filter", "_smooth_reg_fn_temp.laplace.filter",
	};
	expect_names(m, want, 6);
	expect_shape(tensor(m, "space_conv.weight"), 5, (int64_t[]){3, 3, 1, 3, 4}, "space");
	expect_shape(tensor(m, "time_conv.weight"), 5, (int64_t[]){1, 3, 4, 1, 1}, "time");
	expect_shape(tensor(m, "nonlinearity.b"), 0, NULL, "b");
	cr_assert_eq(tensor(m, "nonlinearity.b")->data[0], 0);
	cr_assert_eq(tensor(m, "nonlinearity.w")->data[0], 1);
	cr_assert(tensor(m, "space_conv.weight")->requires_grad);
	cr_assert(!tensor(m, "_smooth_reg_fn_spat.laplace.filter")->requires_grad);
	const fv_real lap3[9] = {0, -1, 0, -1, 4, -1, 0, -1, 0};
	fv_tensor *f = tensor(m, "_smooth_reg_fn_spat.laplace.filter");
	expect_shape(f, 4, (int64_t[]){1, 1, 3, 3}, "laplace");
	for (int i = 0; i < 9; i++)
		cr_assert_eq(f->data[i], lap3[i]);
	fv_tensor *f1 = tensor(m, "_smooth_reg_fn_temp.laplace.filter");
	expect_shape(f1, 3, (int64_t[]){1, 1, 3}, "laplace1d");
	cr_assert(f1->data[0] == -1 && f1->data[1] == 2 && f1->data[2] == -1);
	fv_module_free(m);

	/* A torch.nn.functional nonlinearity has no parameters. */
	m = build(SPEC_A "nonlinearity: softplus\n");
	const char *plain[] = {"space_conv.weight", "time_conv.weight",
	                       "_smooth_reg_fn_spat.laplace.filter",
	                       "_smooth_reg_fn_temp.laplace.filter"};
	expect_names(m, plain, 4);
	fv_module_free(m);
}

Test(sc_lnp, xavier_normal_init)
{
	/* fan_in = 3*15*15 = 675, fan_out = 4*15*15 = 900: std sqrt(2/1575). */
	fv_module *m = build(TARGET "in_shape: [3, 6, 20, 20]\nrank: 4\n");
	fv_tensor *w = tensor(m, "space_conv.weight");
	expect_shape(w, 5, (int64_t[]){4, 3, 1, 15, 15}, "default spat_kernel_size");
	double mean = 0, var = 0;
	for (int64_t i = 0; i < w->numel; i++)
		mean += w->data[i];
	mean /= (double)w->numel;
	for (int64_t i = 0; i < w->numel; i++)
		var += (w->data[i] - mean) * (w->data[i] - mean);
	double sd = sqrt(var / (double)w->numel), want = sqrt(2.0 / 1575);
	cr_assert(fabs(mean) < 0.1 * want, "mean %g", mean);
	cr_assert(fabs(sd - want) < 0.1 * want, "std %g, expected %g", sd, want);
	fv_module_free(m);
}

Test(sc_lnp, accepts_openretina_config_keys)
{
	/* openretina's configs/model/single_cell_lnp.yaml, with in_shape filled in. */
	fv_module *m = build(TARGET "_convert_: all\nin_shape: [1, 5, 20, 20]\n"
	                            "spat_kernel_size: [15, 15]\nrf_location: null\n"
	                            "learning_rate: 0.005\nnonlinearity: softplus\nrank: 1\n"
	                            "smooth_weight_spat: 1.0\nsmooth_weight_temp: 1.0\n"
	                            "sparse_weight: 1.0\nsmooth_regularizer_spat: LaplaceL2norm\n"
	                            "smooth_regularizer_temp: TimeLaplaceL23dnorm\n"
	                            "laplace_padding: null\nfit_gaussian: false\n"
	                            "normalize_weights: false\nn_neurons_dict: {s1: 1}\n");
	fv_module_free(m);
}

/* ---- forward ------------------------------------------------------------------------ */

/* x (2, 3, 9, 9, 11) for SPEC_A; weights away from zero. */
static fv_tensor *input_a(void)
{
	return input(5, (int64_t[]){2, 3, 9, 9, 11}, 77, -1, 1);
}

static void randomise_weights(fv_module *m, uint64_t seed)
{
	fill_away_from_zero(tensor(m, "space_conv.weight"), seed, 0.1);
	fill_away_from_zero(tensor(m, "time_conv.weight"), seed + 1, 0.1);
	fv_tensor *b = fv_module_tensor(m, "nonlinearity.b");
	fv_tensor *w = fv_module_tensor(m, "nonlinearity.w");
	if (b != NULL) {
		b->data[0] = (fv_real)0.3;
		w->data[0] = (fv_real)-1.7;
	}
}

static void check_forward(const char *name, int64_t r0, int64_t c0, const char *spec)
{
	fv_module *m = build(spec);
	randomise_weights(m, 3);
	fv_tensor *x = input_a();
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x, true);
	expect_shape(y, 3, (int64_t[]){2, 6, 1}, name);
	double z[12];
	naive_linear(x, tensor(m, "space_conv.weight"), tensor(m, "time_conv.weight"), r0, c0, z);
	for (int i = 0; i < 12; i++) {
		double want = strcmp(name, "parametrized_softplus") == 0 ? -1.7 * softplus(z[i] + 0.3)
		                                                         : nonlinearity(name, z[i]);
		expect_close(y->data[i], want, 1e-5, name);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(sc_lnp, forward_crops_around_rf_location_each_nonlinearity)
{
	/* rows: 2 - min(1, 2) = 1 .. 2 + min(2, 9 - 2) = 4; columns: 9 - min(2, 9) = 7 ..
	** 9 + min(2, 11 - 9) = 11 (the right edge). */
	const char *names[] = {"parametrized_softplus", "softplus", "relu",       "elu",
	                       "selu",                  "sigmoid",  "tanh",       "silu",
	                       "leaky_relu",            "logsigmoid", "softsign"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char spec[512];
		snprintf(spec, sizeof spec, SPEC_A "nonlinearity: %s\n", names[i]);
		check_forward(names[i], 1, 7, spec);
	}
}

Test(sc_lnp, forward_crops_around_the_centre_without_rf_location)
{
	/* centre (4, 5): rows 4 - 1 .. 4 + 2 = [3, 6), columns 5 - 2 .. 5 + 2 = [3, 7). */
	check_forward("tanh", 3, 3,
	              TARGET "in_shape: [3, 4, 9, 11]\nspat_kernel_size: [3, 4]\nrank: 3\n"
	                     "normalize_weights: false\nnonlinearity: tanh\n");
}

Test(sc_lnp, x_cropped_state_and_uncropped_forward_agree)
{
	fv_module *m = build(SPEC_A);
	randomise_weights(m, 9);
	fv_tensor *x = input_a();
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x, true);
	fv_tensor *kept = tensor(m, "x_cropped");
	expect_shape(kept, 5, (int64_t[]){2, 3, 9, 3, 4}, "x_cropped");
	for (int64_t p = 0; p < 2 * 3 * 9; p++)
		for (int64_t i = 0; i < 3; i++)
			for (int64_t j = 0; j < 4; j++)
				cr_assert_eq(kept->data[(p * 3 + i) * 4 + j],
				             x->data[(p * 9 + 1 + i) * 11 + 7 + j]);
	/* x_cropped is state, not part of the state_dict. */
	const char *want[] = {
	        "nonlinearity.b", "nonlinearity.w", "space_conv.weight", "time_conv.weight",
	        "_smooth_reg_fn_spat.laplace.filter", "_smooth_reg_fn_temp.laplace.filter",
	};
	expect_names(m, want, 6);
	/* forward itself does not crop: given the patch it computes the same. */
	fv_tensor *patch = fv_tensor_clone(kept);
	fv_tensor *y2 = forward(m, ctx, patch, false);
	for (int i = 0; i < 12; i++)
		cr_assert_eq(y->data[i], y2->data[i]);
	fv_tensor_free(patch);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(sc_lnp, no_crop_when_the_kernel_covers_in_shape)
{
	/* in_shape's frame equals spat_kernel_size: training_step does not crop,
	** whatever rf_location says; x_cropped is the input itself. */
	fv_module *m = build(TARGET "in_shape: [2, 3, 4, 5]\nspat_kernel_size: [4, 5]\n"
	                            "rf_location: [0, 0]\nnormalize_weights: false\n"
	                            "nonlinearity: softplus\nrank: 2\n");
	randomise_weights(m, 21);
	fv_tensor *x = input(5, (int64_t[]){3, 2, 7, 4, 5}, 8, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x, true);
	expect_shape(y, 3, (int64_t[]){3, 5, 1}, "y");
	fv_tensor *kept = tensor(m, "x_cropped");
	cr_assert(fv_same_shape(kept, x));
	cr_assert_eq(memcmp(kept->data, x->data, (size_t)x->numel * sizeof(fv_real)), 0);
	double z[15];
	naive_linear(x, tensor(m, "space_conv.weight"), tensor(m, "time_conv.weight"), 0, 0, z);
	for (int i = 0; i < 15; i++)
		expect_close(y->data[i], softplus(z[i]), 1e-5, "y");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(sc_lnp, normalize_weights_in_place_at_every_forward)
{
	fv_module *m = build(TARGET "in_shape: [3, 4, 9, 11]\nspat_kernel_size: [3, 4]\n"
	                            "rf_location: [2, 9]\nrank: 3\nnonlinearity: sigmoid\n");
	randomise_weights(m, 13);
	fv_tensor *ws = tensor(m, "space_conv.weight"), *wt = tensor(m, "time_conv.weight");
	fv_tensor *ws0 = fv_tensor_clone(ws), *wt0 = fv_tensor_clone(wt);
	double ns = sqrt(sum_sq(ws0)), nt = sqrt(sum_sq(wt0));
	fv_tensor *x = input_a();
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x, true);
	for (int64_t i = 0; i < ws->numel; i++)
		expect_close(ws->data[i], ws0->data[i] / ns, 1e-6, "space_conv.weight / norm");
	for (int64_t i = 0; i < wt->numel; i++)
		expect_close(wt->data[i], wt0->data[i] / nt, 1e-6, "time_conv.weight / norm");
	/* The output uses the normalised kernels: the linear stage scales by 1/(ns*nt). */
	double z[12];
	naive_linear(x, ws0, wt0, 1, 7, z);
	for (int i = 0; i < 12; i++)
		expect_close(y->data[i], 1 / (1 + exp(-z[i] / (ns * nt))), 1e-5, "y");
	/* Scaling the kernels again is undone by the next forward. */
	for (int64_t i = 0; i < ws->numel; i++)
		ws->data[i] *= 5;
	fv_tensor *y2 = forward(m, ctx, x, true);
	for (int i = 0; i < 12; i++)
		expect_close(y2->data[i], y->data[i], 1e-5, "y after rescaling");
	/* A zero kernel stays zero instead of becoming NaN. */
	fv_tensor_fill(wt, 0);
	fv_tensor *y3 = forward(m, ctx, x, true);
	cr_assert_eq(wt->data[0], 0);
	expect_close(y3->data[0], 0.5, 1e-6, "sigmoid(0)");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(ws0);
	fv_tensor_free(wt0);
	fv_module_free(m);
}

/* ---- regularizer ---------------------------------------------------------------------- */

Test(sc_lnp, regularizer_laplace_ratios_and_l1)
{
	/* padding null -> 1 for both Laplace filters; then padding 0. */
	const char *pads[] = {"null", "0"};
	const int64_t padv[] = {1, 0};
	for (int k = 0; k < 2; k++) {
		char spec[512];
		snprintf(spec, sizeof spec,
		         TARGET "in_shape: [2, 5, 8, 8]\nspat_kernel_size: [4, 5]\nrank: 2\n"
		                "smooth_weight_spat: 0.7\nsmooth_weight_temp: 1.3\nsparse_weight: 0.2\n"
		                "laplace_padding: %s\n",
		         pads[k]);
		fv_module *m = build(spec);
		randomise_weights(m, 40 + (uint64_t)k);
		fv_tensor *ws = tensor(m, "space_conv.weight"), *wt = tensor(m, "time_conv.weight");
		double spat = laplace2d_sq_sum(ws->data, 4, 4, 5, padv[k], NULL) / (sum_sq(ws) + 1e-6);
		double temp = laplace1d_sq_sum(wt->data, 2, 5, padv[k]) / (sum_sq(wt) + 1e-6);
		double want = 0.7 * spat + 1.3 * temp + 0.2 * (mean_abs(ws) + mean_abs(wt));
		fv_ctx *ctx = fv_ctx_new();
		expect_close(regularizer(m, ctx), want, 1e-5, pads[k]);
		fv_ctx_free(ctx);
		fv_module_free(m);
	}
}

Test(sc_lnp, regularizer_gaussian_laplace_gets_the_kernel_size)
{
	fv_module *m = build(TARGET "in_shape: [1, 3, 10, 10]\nspat_kernel_size: [5, 7]\nrank: 2\n"
	                            "smooth_weight_spat: 2.0\nsparse_weight: 0.5\n"
	                            "smooth_regularizer_spat: GaussianLaplaceL2\n");
	randomise_weights(m, 50);
	fv_tensor *ws = tensor(m, "space_conv.weight"), *wt = tensor(m, "time_conv.weight");
	double damp[35];
	gaussian_damping(5, 7, damp);
	double spat = laplace2d_sq_sum(ws->data, 2, 5, 7, 1, damp) / (sum_sq(ws) + 1e-6);
	double want = 2.0 * spat + 0.5 * (mean_abs(ws) + mean_abs(wt));
	fv_ctx *ctx = fv_ctx_new();
	expect_close(regularizer(m, ctx), want, 1e-5, "GaussianLaplaceL2");
	fv_ctx_free(ctx);
	fv_module_free(m);
}

/* ---- gradients -------------------------------------------------------------------------- */

typedef struct gc_model {
	fv_module *m;
	bool crop;
} gc_model;

/* [y..., regularizer]: every parameter reaches L through one or both. */
static fv_tensor *output_and_penalty(fv_ctx *ctx, fv_tensor *const *inputs, void *ud)
{
	gc_model *g = ud;
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.crop_input = g->crop;
	fv_tensor *y = fv_module_forward(g->m, ctx, inputs[0], &fa);
	fv_tensor *r = fv_module_regularizer(g->m, ctx, &fa);
	int64_t flat = -1, one = 1;
	fv_tensor *parts[2] = {fv_reshape(ctx, y, 1, &flat), fv_reshape(ctx, r, 1, &one)};
	return fv_concat(ctx, 2, parts, 0);
}

static void check_gradients(const char *spec, const int64_t *x_shape, bool crop)
{
	fv_module *m = build(spec);
	randomise_weights(m, 60);
	fv_tensor *x = input(5, x_shape, 61, -1, 1);
	x->requires_grad = true;
	fv_tensor *inputs[5] = {x, tensor(m, "space_conv.weight"), tensor(m, "time_conv.weight")};
	int n = 3;
	if (fv_module_tensor(m, "nonlinearity.b") != NULL) {
		inputs[n++] = tensor(m, "nonlinearity.b");
		inputs[n++] = tensor(m, "nonlinearity.w");
	}
	gc_model g = {m, crop};
	gradcheck(spec, output_and_penalty, n, inputs, &g);
	fv_tensor_free(x);
	fv_module_free(m);
}

Test(sc_lnp, gradients_rank3_parametrized_softplus_cropped)
{
	check_gradients(TARGET "in_shape: [2, 3, 6, 7]\nspat_kernel_size: [3, 2]\n"
	                       "rf_location: [4, 1]\nrank: 3\nnormalize_weights: false\n"
	                       "smooth_weight_spat: 0.4\nsmooth_weight_temp: 0.6\n"
	                       "sparse_weight: 0.3\n",
	                (int64_t[]){2, 2, 5, 6, 7}, true);
}

Test(sc_lnp, gradients_rank2_tanh_gaussian_laplace_centre)
{
	check_gradients(TARGET "in_shape: [1, 4, 5, 5]\nspat_kernel_size: [3, 3]\nrank: 2\n"
	                       "normalize_weights: false\nnonlinearity: tanh\n"
	                       "smooth_weight_spat: 0.5\nsmooth_weight_temp: 0.5\n"
	                       "sparse_weight: 0.1\nsmooth_regularizer_spat: GaussianLaplaceL2\n",
	                (int64_t[]){2, 1, 6, 5, 5}, true);
}

Test(sc_lnp, gradients_rank1_softsign_uncropped_patch)
{
	check_gradients(TARGET "in_shape: [2, 3, 3, 4]\nspat_kernel_size: [3, 4]\nrank: 1\n"
	                       "normalize_weights: false\nnonlinearity: softsign\n"
	                       "smooth_weight_spat: 1.0\nsmooth_weight_temp: 1.0\n"
	                       "sparse_weight: 1.0\nlaplace_padding: 0\n",
	                (int64_t[]){3, 2, 5, 3, 4}, false);
}

/* ---- errors ---------------------------------------------------------------------------- */

Test(sc_lnp, construction_errors)
{
	expect_build_error(TARGET "in_shape: [3, 4, 9]\n",
	                   "spec.yaml:1:1: SingleCellSeparatedLNP: in_shape: expected 4 sizes");
	expect_build_error(TARGET "spat_kernel_size: [3, 3]\n", "in_shape");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3]\n",
	                   "spat_kernel_size: expected 2 sizes");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 10]\n",
	                   "spat_kernel_size (3, 10) is larger than the (9, 9) frame");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "rf_location: [1, 2, 3]\n",
	                   "rf_location: expected (y, x)");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "rf_location: [4, 9]\n",
	                   "rf_location (4, 9) lies outside the (9, 9) frame");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\nrank: 0\n",
	                   "rank");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "nonlinearity: softpuls\n",
	                   "nonlinearity");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "smooth_regularizer_spat: LaplaceL3norm\n",
	                   "smooth_regularizer_spat");
	cr_assert(strstr(fv_errmsg(), "LaplaceL3norm") != NULL, "%s", fv_errmsg());
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "smooth_regularizer_temp: PoissonLoss3d\n",
	                   "spec.yaml:1:1: SingleCellSeparatedLNP: smooth_regularizer_temp: "
	                   "'PoissonLoss3d' is a loss, not a regularizer");
	expect_build_error(TARGET "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n"
	                          "learning_rat: 0.1\n",
	                   "learning_rat");
}

Test(sc_lnp, construction_needs_the_registry)
{
	const char *yaml = "in_shape: [1, 4, 9, 9]\nspat_kernel_size: [3, 3]\n";
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "spec.yaml");
	fv_build_args a = {.struct_size = sizeof a};
	fv_clear_error();
	fv_module *m = fv_instantiate_component(fv_registry_find(reg, "SingleCellSeparatedLNP", NULL),
	                                        fv_config_root(cfg), &a, "");
	fv_config_free(cfg);
	cr_assert_null(m);
	cr_assert(strstr(fv_errmsg(), "needs the registry to build 'LaplaceL2norm'") != NULL, "%s",
	          fv_errmsg());
}

static void expect_forward_error(fv_module *m, const int64_t *shape, bool crop, const char *needle)
{
	fv_tensor *x = input(5, shape, 1, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.crop_input = crop;
	fv_clear_error();
	cr_assert_null(fv_module_forward(m, ctx, x, &fa), "accepted %s", fv_shape_str(5, shape));
	cr_assert(strstr(fv_errmsg(), needle) != NULL, "message '%s' lacks '%s'", fv_errmsg(),
	          needle);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(sc_lnp, forward_errors)
{
	fv_module *m = build(SPEC_A);
	expect_forward_error(m, (int64_t[]){2, 2, 9, 9, 11}, true,
	                     "input has shape (2, 2, 9, 9, 11); expected (batch, 3, time >= 4");
	expect_forward_error(m, (int64_t[]){2, 3, 3, 9, 11}, true, "time >= 4");
	expect_forward_error(m, (int64_t[]){2, 3, 9, 9, 11}, false,
	                     "input frames are (9, 11) but the forward needs patches of "
	                     "spat_kernel_size (3, 4)");
	/* rf_location (2, 9) in a narrower frame: columns [7, 10) are too few. */
	expect_forward_error(m, (int64_t[]){2, 3, 9, 9, 10}, true,
	                     "columns [7, 10), smaller than spat_kernel_size (3, 4)");
	fv_module_free(m);

	/* The rf at the top edge: rows [0, 2) of a 3-row kernel. */
	m = build(TARGET "in_shape: [1, 2, 9, 9]\nspat_kernel_size: [3, 3]\nrf_location: [0, 4]\n");
	expect_forward_error(m, (int64_t[]){1, 1, 2, 9, 9}, true,
	                     "rows [0, 2) and columns [3, 6), smaller than spat_kernel_size (3, 3): "
	                     "the receptive field is too close to the frame's edge");
	fv_module_free(m);
}

Test(sc_lnp, regularizer_errors_name_the_option)
{
	/* GaussianLaplaceL2 with padding 0 shrinks the Laplace output below the
	** mask, which openretina cannot apply either. */
	fv_module *m = build(TARGET "in_shape: [1, 2, 9, 9]\nspat_kernel_size: [5, 5]\n"
	                            "smooth_regularizer_spat: GaussianLaplaceL2\nlaplace_padding: 0\n");
	fv_ctx *ctx = fv_ctx_new();
	fv_clear_error();
	cr_assert_null(fv_module_regularizer(m, ctx, NULL));
	cr_assert(strstr(fv_errmsg(), "SingleCellSeparatedLNP: smooth_regularizer_spat: ") != NULL,
	          "%s", fv_errmsg());
	cr_assert(strstr(fv_errmsg(), "Gaussian mask") != NULL, "%s", fv_errmsg());
	fv_ctx_free(ctx);
	fv_module_free(m);
}
