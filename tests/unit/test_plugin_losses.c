/*
** test_plugin_losses.c: the loss plugins (plugins/losses/) against naive
** double-precision references written here from openretina's formulas, on
** shapes and options other than the golden cases', plus finite-difference
** gradient checks through the whole component and every error path.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "gradcheck.h"

static fv_registry *reg;

static void load_losses(void)
{
	char dir[1024];
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	snprintf(dir, sizeof dir, "%s/plugins/losses", build);
	reg = fv_registry_new();
	cr_assert_not_null(reg);
	cr_assert_eq(fv_registry_load_dir(reg, dir), FV_OK, "%s", fv_errmsg());
}

static void unload(void)
{
	fv_registry_free(reg);
}

TestSuite(losses, .init = load_losses, .fini = unload);

static fv_module *make(const char *target, const char *yaml)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = reg};
	fv_module *m = fv_instantiate_named(reg, target, yaml, &args, "loss");
	cr_assert_not_null(m, "%s (%s): %s", target, yaml, fv_errmsg());
	return m;
}

/* (B, T, n) output in (0.2, 2) and (B, T + lag, n) target in [0, 3). */
#define B 2
#define T 5
#define LAG 3
#define N 4

static fv_tensor *make_output(uint64_t seed)
{
	int64_t shape[3] = {B, T, N};
	return gc_input(3, shape, seed, 0.2, 2.0);
}

static fv_tensor *make_target(uint64_t seed)
{
	int64_t shape[3] = {B, T + LAG, N};
	return gc_input(3, shape, seed, 0.0, 3.0);
}

static double out_at(const fv_tensor *o, int b, int t, int n)
{
	return o->data[(b * T + t) * N + n];
}

/* The target frame aligned with output frame t: the last T frames. */
static double tgt_at(const fv_tensor *y, int b, int t, int n)
{
	return y->data[(b * (T + LAG) + t + LAG) * N + n];
}

static fv_tensor *call_loss(fv_module *m, fv_ctx *ctx, fv_tensor *o, fv_tensor *y)
{
	fv_tensor *l = fv_module_loss(m, ctx, o, y);
	cr_assert_not_null(l, "%s", fv_errmsg());
	return l;
}

static void expect_close(double got, double want, const char *what)
{
	cr_assert(fabs(got - want) <= 1e-5 + 1e-5 * fabs(want), "%s: got %.9g, expected %.9g", what,
	          got, want);
}

/* ---- PoissonLoss3d ------------------------------------------------------------ */

static double poisson_term(double o, double t, double bias)
{
	return o - t * log(o + bias);
}

Test(losses, poisson_sum_avg_and_per_neuron_match_the_formula)
{
	fv_tensor *o = make_output(1), *y = make_target(2);
	double bias = 0.25; /* large enough to matter */
	double total = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double l = poisson_term(out_at(o, b, t, n), tgt_at(y, b, t, n), bias);
				total += l;
				per[n] += l / (B * T);
			}
	fv_ctx *ctx = fv_ctx_new();
	fv_module *sum = make("PoissonLoss3d", "bias: 0.25");
	fv_module *avg = make("openretina.modules.losses.poisson.PoissonLoss3d",
	                      "{bias: 0.25, avg: true}");
	fv_module *pn = make("PoissonLoss3d", "{bias: 0.25, per_neuron: true, avg: true}");
	fv_tensor *ls = call_loss(sum, ctx, o, y);
	fv_tensor *la = call_loss(avg, ctx, o, y);
	fv_tensor *lp = call_loss(pn, ctx, o, y);
	cr_assert_eq(ls->numel, 1);
	expect_close(ls->data[0], total, "sum");
	expect_close(la->data[0], total / (B * T * N), "avg");
	cr_assert_eq(lp->ndim, 1);
	cr_assert_eq(lp->shape[0], N);
	for (int n = 0; n < N; n++)
		expect_close(lp->data[n], per[n], "per_neuron");
	fv_module_free(sum);
	fv_module_free(avg);
	fv_module_free(pn);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, poisson_default_bias_is_1e_16)
{
	int64_t shape[3] = {1, 1, 1};
	fv_tensor *o = fv_tensor_new(3, shape), *y = fv_tensor_new(3, shape);
	o->data[0] = 0; /* log(0 + 1e-16) */
	y->data[0] = 1;
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("PoissonLoss3d", NULL);
	fv_tensor *l = call_loss(m, ctx, o, y);
	cr_assert(fabs(l->data[0] - 16 * log(10.0)) < 1e-3, "got %g", (double)l->data[0]);
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

static fv_tensor *loss_of(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_module_loss(ud, ctx, in[0], in[1]);
}

Test(losses, poisson_gradients_match_finite_differences)
{
	fv_tensor *o = make_output(3), *y = make_target(4);
	fv_tensor *in[2] = {o, y};
	const char *variants[] = {"{}", "avg: true", "per_neuron: true", "bias: 0.5"};
	for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
		fv_module *m = make("PoissonLoss3d", variants[i]);
		gradcheck(variants[i], loss_of, 2, in, m);
		fv_module_free(m);
	}
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, poisson_gradient_is_one_minus_target_over_rate)
{
	fv_tensor *o = make_output(5), *y = make_target(6);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("PoissonLoss3d", NULL);
	cr_assert_eq(fv_backward(ctx, call_loss(m, ctx, o, y)), FV_OK, "%s", fv_errmsg());
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double want = 1 - tgt_at(y, b, t, n) / out_at(o, b, t, n);
				expect_close(o->grad->data[(b * T + t) * N + n], want, "dL/doutput");
			}
	/* The first LAG target frames are not compared: zero gradient. */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < LAG; t++)
			for (int n = 0; n < N; n++)
				cr_assert_eq(y->grad->data[(b * (T + LAG) + t) * N + n], 0);
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, l1_poisson_adds_the_weighted_l1_of_the_output)
{
	fv_tensor *o = make_output(7), *y = make_target(8);
	double poisson = 0, l1 = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double l = poisson_term(out_at(o, b, t, n), tgt_at(y, b, t, n), 1e-16);
				double a = fabs(out_at(o, b, t, n));
				poisson += l;
				l1 += a;
				per[n] += (l + 0.3 * a) / (B * T);
			}
	fv_ctx *ctx = fv_ctx_new();
	fv_module *sum = make("L1PoissonLoss3d", "gamma_l1: 0.3");
	fv_module *avg = make("openretina.modules.losses.poisson.L1PoissonLoss3d",
	                      "{gamma_l1: 0.3, avg: true}");
	fv_module *pn = make("L1PoissonLoss3d", "{gamma_l1: 0.3, per_neuron: true}");
	expect_close(call_loss(sum, ctx, o, y)->data[0], poisson + 0.3 * l1, "sum");
	expect_close(call_loss(avg, ctx, o, y)->data[0], (poisson + 0.3 * l1) / (B * T * N), "avg");
	fv_tensor *lp = call_loss(pn, ctx, o, y);
	for (int n = 0; n < N; n++)
		expect_close(lp->data[n], per[n], "per_neuron");
	fv_tensor *in[2] = {o, y};
	gradcheck("L1PoissonLoss3d", loss_of, 2, in, avg);
	fv_module_free(sum);
	fv_module_free(avg);
	fv_module_free(pn);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

/* ---- CorrelationLoss3d -------------------------------------------------------- */

/* corr[b][n] over time, openretina's formula with eps inside the sqrt. */
static void naive_corr(const fv_tensor *o, const fv_tensor *y, double eps, double corr[B][N])
{
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			double mo = 0, mt = 0;
			for (int t = 0; t < T; t++) {
				mo += out_at(o, b, t, n) / T;
				mt += tgt_at(y, b, t, n) / T;
			}
			double cov = 0, vo = 0, vt = 0;
			for (int t = 0; t < T; t++) {
				double a = out_at(o, b, t, n) - mo, c = tgt_at(y, b, t, n) - mt;
				cov += a * c / T;
				vo += a * a / T;
				vt += c * c / T;
			}
			corr[b][n] = cov / sqrt((vo + eps) * (vt + eps));
		}
}

Test(losses, correlation_variants_match_the_formula)
{
	fv_tensor *o = make_output(11), *y = make_target(12);
	double corr[B][N], total = 0, per[N] = {0};
	naive_corr(o, y, 0.01, corr);
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			total += corr[b][n];
			per[n] += corr[b][n] / B;
		}
	fv_ctx *ctx = fv_ctx_new();
	struct {
		const char *yaml;
		double scalar; /* NAN: per neuron */
		double sign;
	} cases[] = {
		{"bias: 0.01", -total, -1},
		{"{bias: 0.01, avg: true}", -total / (B * N), -1},
		{"{bias: 0.01, avg: true, negate: false}", total / (B * N), 1},
		{"{bias: 0.01, negate: false}", total, 1},
		{"{bias: 0.01, per_neuron: true}", NAN, -1},
		{"{bias: 0.01, per_neuron: true, negate: false}", NAN, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fv_module *m = make("CorrelationLoss3d", cases[i].yaml);
		fv_tensor *l = call_loss(m, ctx, o, y);
		if (isnan(cases[i].scalar)) {
			cr_assert_eq(l->numel, N, "%s", cases[i].yaml);
			for (int n = 0; n < N; n++)
				expect_close(l->data[n], cases[i].sign * per[n], cases[i].yaml);
		} else {
			cr_assert_eq(l->numel, 1, "%s", cases[i].yaml);
			expect_close(l->data[0], cases[i].scalar, cases[i].yaml);
		}
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, correlation_of_a_scaled_copy_is_one)
{
	int64_t so[3] = {1, 6, 2}, sy[3] = {1, 6, 2};
	fv_tensor *o = fv_tensor_new(3, so), *y = fv_tensor_new(3, sy);
	gc_fill_uniform(o, 21, -1, 1);
	for (int64_t i = 0; i < o->numel; i++)
		y->data[i] = 3 * o->data[i] + 1; /* lag 0: same length */
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("CorrelationLoss3d", "{avg: true, negate: false}");
	expect_close(call_loss(m, ctx, o, y)->data[0], 1.0, "corr(x, 3x+1)");
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, correlation_gradients_match_finite_differences)
{
	fv_tensor *o = make_output(13), *y = make_target(14);
	fv_tensor *in[2] = {o, y};
	const char *variants[] = {"{}", "{avg: true, bias: 0.001}", "per_neuron: true",
	                          "{negate: false, per_neuron: true}"};
	for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
		fv_module *m = make("CorrelationLoss3d", variants[i]);
		gradcheck(variants[i], loss_of, 2, in, m);
		fv_module_free(m);
	}
	fv_tensor_free(o);
	fv_tensor_free(y);
}

/* ---- MSE3d -------------------------------------------------------------------------- */

Test(losses, mse_is_the_summed_squared_error_on_the_lagged_target)
{
	fv_tensor *o = make_output(31), *y = make_target(32);
	double want = 0;
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double d = out_at(o, b, t, n) - tgt_at(y, b, t, n);
				want += d * d;
			}
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make("openretina.modules.losses.mse.MSE3d", NULL);
	expect_close(call_loss(m, ctx, o, y)->data[0], want, "MSE3d");
	fv_tensor *in[2] = {o, y};
	gradcheck("MSE3d", loss_of, 2, in, m);
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, mse_takes_no_options)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = reg};
	fv_module *m = fv_instantiate_named(reg, "MSE3d", "avg: true", &args, "loss");
	cr_assert_null(m);
	cr_assert(strstr(fv_errmsg(), "avg") != NULL, "%s", fv_errmsg());
}

/* ---- errors ------------------------------------------------------------------------- */

static void expect_shape_error(const char *target, int64_t ndo, const int64_t *so, int64_t ndy,
                               const int64_t *sy, const char *needle)
{
	fv_tensor *o = fv_tensor_new((int)ndo, so), *y = fv_tensor_new((int)ndy, sy);
	fv_ctx *ctx = fv_ctx_new();
	fv_module *m = make(target, NULL);
	fv_clear_error();
	cr_assert_null(fv_module_loss(m, ctx, o, y), "%s accepted a bad pair", target);
	cr_assert(strstr(fv_errmsg(), target) != NULL, "%s", fv_errmsg());
	cr_assert(strstr(fv_errmsg(), needle) != NULL, "%s", fv_errmsg());
	fv_module_free(m);
	fv_ctx_free(ctx);
	fv_tensor_free(o);
	fv_tensor_free(y);
}

Test(losses, a_target_shorter_than_the_output_is_refused)
{
	int64_t so[3] = {2, 6, 3}, sy[3] = {2, 4, 3};
	const char *targets[] = {"PoissonLoss3d", "L1PoissonLoss3d", "CorrelationLoss3d", "MSE3d"};
	for (size_t i = 0; i < 4; i++)
		expect_shape_error(targets[i], 3, so, 3, sy, "fewer frames than output (2, 6, 3)");
}

Test(losses, mismatched_batch_or_neurons_are_refused)
{
	int64_t so[3] = {2, 6, 3}, sy[3] = {2, 8, 4};
	expect_shape_error("PoissonLoss3d", 3, so, 3, sy, "differ in dim 2");
	int64_t sy2[3] = {1, 8, 3};
	expect_shape_error("CorrelationLoss3d", 3, so, 3, sy2, "differ in dim 0");
}

Test(losses, mismatched_ranks_are_refused)
{
	int64_t so[3] = {2, 6, 3}, sy[2] = {2, 6};
	expect_shape_error("MSE3d", 3, so, 2, sy, "must both be (batch, time, ..., neurons)");
	int64_t s1[1] = {6};
	expect_shape_error("PoissonLoss3d", 1, s1, 1, s1, "must both be");
}

Test(losses, a_null_argument_is_an_error_not_a_crash)
{
	int64_t so[3] = {2, 6, 3};
	fv_tensor *o = fv_tensor_new(3, so);
	fv_ctx *ctx = fv_ctx_new();
	const char *targets[] = {"PoissonLoss3d", "CorrelationLoss3d", "MSE3d"};
	for (size_t i = 0; i < 3; i++) {
		fv_module *m = make(targets[i], NULL);
		fv_clear_error();
		cr_assert_null(fv_module_loss(m, ctx, o, NULL));
		cr_assert(strstr(fv_errmsg(), "target is NULL") != NULL, "%s", fv_errmsg());
		fv_clear_error();
		cr_assert_null(fv_module_loss(m, ctx, NULL, o));
		cr_assert(strstr(fv_errmsg(), "output is NULL") != NULL, "%s", fv_errmsg());
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(o);
}

Test(losses, options_are_typed)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = reg};
	cr_assert_null(fv_instantiate_named(reg, "PoissonLoss3d", "avg: maybe", &args, "loss"));
	cr_assert(strstr(fv_errmsg(), "avg") != NULL, "%s", fv_errmsg());
	cr_assert_null(fv_instantiate_named(reg, "CorrelationLoss3d", "negat: false", &args, "l"));
	cr_assert(strstr(fv_errmsg(), "negate") != NULL, "closest name: %s", fv_errmsg());
}

Test(losses, every_name_is_registered)
{
	const char *names[] = {
		"PoissonLoss3d", "openretina.modules.losses.PoissonLoss3d",
		"openretina.modules.measures.PoissonLoss3d", "L1PoissonLoss3d",
		"CorrelationLoss3d", "openretina.modules.losses.correlation.CorrelationLoss3d",
		"openretina.modules.losses.CorrelationLoss3d", "MSE3d",
		"openretina.modules.losses.MSE3d",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		const fv_component *c = fv_registry_find(reg, names[i], NULL);
		cr_assert_not_null(c, "%s", names[i]);
		cr_assert_eq(c->kind, FV_KIND_LOSS, "%s", names[i]);
	}
}

static int count_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	(void)t;
	(void)is_param;
	++*(int *)ud;
	return 0;
}

/* openretina's losses have an empty state_dict (the correlation buffer is
** not persistent), so fovea's have no tensors. */
Test(losses, losses_have_no_tensors)
{
	const char *targets[] = {"PoissonLoss3d", "L1PoissonLoss3d", "CorrelationLoss3d", "MSE3d"};
	for (size_t i = 0; i < 4; i++) {
		fv_module *m = make(targets[i], NULL);
		int n = 0;
		fv_module_foreach_tensor(m, count_tensor, &n);
		cr_assert_eq(n, 0, "%s has %d tensors", targets[i], n);
		fv_module_free(m);
	}
}
