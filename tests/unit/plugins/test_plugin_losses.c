/*
** test_plugin_losses.c: the loss plugins (plugins/losses/) against naive
** double-precision references written here from openretina's formulas, on
** shapes and options other than the golden cases', plus finite-difference
** gradient checks through the whole component and every error path.
*/
#include "plugin_testing.h"

PT_SUITE(losses, "losses");

static fv_module *make(const char *target, const char *yaml)
{
	return pt_make(reg, target, yaml, "loss");
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
	pt_expect_close(got, want, 1e-5, what);
}

/* An output, its target and a context: what most tests start from. */
typedef struct fixture {
	fv_tensor *o, *y;
	fv_ctx *ctx;
} fixture;

static fixture fixture_new(uint64_t seed)
{
	return (fixture){make_output(seed), make_target(seed + 1), fv_ctx_new()};
}

static void fixture_free(fixture *f)
{
	fv_ctx_free(f->ctx);
	fv_tensor_free(f->o);
	fv_tensor_free(f->y);
}

static fv_tensor *loss_of(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_module_loss(ud, ctx, in[0], in[1]);
}

/* The gradients of `target` with each set of options in `variants`. */
static void gradcheck_variants(const char *target, uint64_t seed, const char *const *variants,
                               size_t n)
{
	fixture f = fixture_new(seed);
	fv_tensor *in[2] = {f.o, f.y};
	for (size_t i = 0; i < n; i++) {
		fv_module *m = make(target, variants[i]);
		gradcheck(variants[i], loss_of, 2, in, m);
		fv_module_free(m);
	}
	fixture_free(&f);
}

/* ---- PoissonLoss3d ------------------------------------------------------------ */

static double poisson_term(double o, double t, double bias)
{
	return o - t * log(o + bias);
}

/* A loss summed ("sum"), averaged ("avg") and per neuron (averaged over
** batch and time) against the naive total and per-neuron values; frees
** the three modules. */
static void expect_reductions(fixture *f, fv_module *sum, fv_module *avg, fv_module *pn,
                              double total, const double per[N])
{
	fv_tensor *ls = call_loss(sum, f->ctx, f->o, f->y);
	fv_tensor *la = call_loss(avg, f->ctx, f->o, f->y);
	fv_tensor *lp = call_loss(pn, f->ctx, f->o, f->y);
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
}

Test(losses, poisson_sum_avg_and_per_neuron_match_the_formula)
{
	fixture f = fixture_new(1);
	double bias = 0.25; /* large enough to matter */
	double total = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double l = poisson_term(out_at(f.o, b, t, n), tgt_at(f.y, b, t, n), bias);
				total += l;
				per[n] += l / (B * T);
			}
	expect_reductions(&f, make("PoissonLoss3d", "bias: 0.25"),
	                  make("openretina.modules.losses.poisson.PoissonLoss3d",
	                       "{bias: 0.25, avg: true}"),
	                  make("PoissonLoss3d", "{bias: 0.25, per_neuron: true, avg: true}"), total,
	                  per);
	fixture_free(&f);
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

Test(losses, poisson_gradients_match_finite_differences)
{
	const char *variants[] = {"{}", "avg: true", "per_neuron: true", "bias: 0.5"};
	gradcheck_variants("PoissonLoss3d", 3, variants, sizeof variants / sizeof *variants);
}

Test(losses, poisson_gradient_is_one_minus_target_over_rate)
{
	fixture f = fixture_new(5);
	fv_module *m = make("PoissonLoss3d", NULL);
	cr_assert_eq(fv_backward(f.ctx, call_loss(m, f.ctx, f.o, f.y)), FV_OK, "%s", fv_errmsg());
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double want = 1 - tgt_at(f.y, b, t, n) / out_at(f.o, b, t, n);
				expect_close(f.o->grad->data[(b * T + t) * N + n], want, "dL/doutput");
			}
	/* The first LAG target frames are not compared: zero gradient. */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < LAG; t++)
			for (int n = 0; n < N; n++)
				cr_assert_eq(f.y->grad->data[(b * (T + LAG) + t) * N + n], 0);
	fv_module_free(m);
	fixture_free(&f);
}

Test(losses, l1_poisson_adds_the_weighted_l1_of_the_output)
{
	fixture f = fixture_new(7);
	double total = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double l = poisson_term(out_at(f.o, b, t, n), tgt_at(f.y, b, t, n), 1e-16);
				double penalty = 0.3 * fabs(out_at(f.o, b, t, n));
				total += l + penalty;
				per[n] += (l + penalty) / (B * T);
			}
	fv_module *avg = make("openretina.modules.losses.poisson.L1PoissonLoss3d",
	                      "{gamma_l1: 0.3, avg: true}");
	fv_tensor *in[2] = {f.o, f.y};
	gradcheck("L1PoissonLoss3d", loss_of, 2, in, avg);
	expect_reductions(&f, make("L1PoissonLoss3d", "gamma_l1: 0.3"), avg,
	                  make("L1PoissonLoss3d", "{gamma_l1: 0.3, per_neuron: true}"), total, per);
	fixture_free(&f);
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
	fixture f = fixture_new(11);
	double corr[B][N], total = 0, per[N] = {0};
	naive_corr(f.o, f.y, 0.01, corr);
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			total += corr[b][n];
			per[n] += corr[b][n] / B;
		}
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
		fv_tensor *l = call_loss(m, f.ctx, f.o, f.y);
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
	fixture_free(&f);
}

Test(losses, correlation_of_a_scaled_copy_is_one)
{
	int64_t shape[3] = {1, 6, 2};
	fixture f = {fv_tensor_new(3, shape), fv_tensor_new(3, shape), fv_ctx_new()};
	gc_fill_uniform(f.o, 21, -1, 1);
	for (int64_t i = 0; i < f.o->numel; i++)
		f.y->data[i] = 3 * f.o->data[i] + 1; /* lag 0: same length */
	fv_module *m = make("CorrelationLoss3d", "{avg: true, negate: false}");
	expect_close(call_loss(m, f.ctx, f.o, f.y)->data[0], 1.0, "corr(x, 3x+1)");
	fv_module_free(m);
	fixture_free(&f);
}

Test(losses, correlation_gradients_match_finite_differences)
{
	const char *variants[] = {"{}", "{avg: true, bias: 0.001}", "per_neuron: true",
	                          "{negate: false, per_neuron: true}"};
	gradcheck_variants("CorrelationLoss3d", 13, variants, sizeof variants / sizeof *variants);
}

/* ---- MSE3d -------------------------------------------------------------------------- */

Test(losses, mse_is_the_summed_squared_error_on_the_lagged_target)
{
	fixture f = fixture_new(31);
	double want = 0;
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double d = out_at(f.o, b, t, n) - tgt_at(f.y, b, t, n);
				want += d * d;
			}
	fv_module *m = make("openretina.modules.losses.mse.MSE3d", NULL);
	expect_close(call_loss(m, f.ctx, f.o, f.y)->data[0], want, "MSE3d");
	fv_tensor *in[2] = {f.o, f.y};
	gradcheck("MSE3d", loss_of, 2, in, m);
	fv_module_free(m);
	fixture_free(&f);
}

Test(losses, mse_takes_no_options)
{
	pt_expect_make_error(reg, "MSE3d", "avg: true", "avg");
}

/* ---- errors ------------------------------------------------------------------------- */

static void expect_shape_error(const char *target, int64_t ndo, const int64_t *so, int64_t ndy,
                               const int64_t *sy, const char *needle)
{
	fixture f = {fv_tensor_new((int)ndo, so), fv_tensor_new((int)ndy, sy), fv_ctx_new()};
	fv_module *m = make(target, NULL);
	fv_clear_error();
	cr_assert_null(fv_module_loss(m, f.ctx, f.o, f.y), "%s accepted a bad pair", target);
	pt_expect_msg(target);
	pt_expect_msg(needle);
	fv_module_free(m);
	fixture_free(&f);
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
		pt_expect_msg("target is NULL");
		fv_clear_error();
		cr_assert_null(fv_module_loss(m, ctx, NULL, o));
		pt_expect_msg("output is NULL");
		fv_module_free(m);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(o);
}

Test(losses, options_are_typed)
{
	pt_expect_make_error(reg, "PoissonLoss3d", "avg: maybe", "avg");
	pt_expect_make_error(reg, "CorrelationLoss3d", "negat: false", "negate"); /* closest name */
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
	pt_expect_registered(reg, names, sizeof names / sizeof *names, FV_KIND_LOSS);
}

/* openretina's losses have an empty state_dict (the correlation buffer is
** not persistent), so fovea's have no tensors. */
Test(losses, losses_have_no_tensors)
{
	const char *targets[] = {"PoissonLoss3d", "L1PoissonLoss3d", "CorrelationLoss3d", "MSE3d"};
	for (size_t i = 0; i < 4; i++) {
		fv_module *m = make(targets[i], NULL);
		int n = pt_n_tensors(m, NULL);
		cr_assert_eq(n, 0, "%s has %d tensors", targets[i], n);
		fv_module_free(m);
	}
}
