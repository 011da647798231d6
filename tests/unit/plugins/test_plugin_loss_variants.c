/*
** test_plugin_loss_variants.c: openretina's cell-type, L1, scaled and
** legacy losses (plugins/losses/) and their extra named inputs, against
** naive double-precision references written here from openretina's
** formulas on shapes other than the golden cases', with finite-difference
** gradients and every error path.
*/
#include "plugin_testing.h"

PT_SUITE(loss_variants, "losses");

#define B 3
#define T 7
#define LAG 2
#define N 4
#define GROUPS 3

static fv_module *make(const char *target, const char *yaml)
{
	return pt_make(reg, target, yaml, "loss");
}

typedef struct fixture {
	fv_tensor *o, *y, *ga, *gc, *pre_ca;
	fv_ctx *ctx;
	const char *names[3];
	fv_tensor *values[3];
	fv_loss_extras groups, l1;
} fixture;

/* Output in (0.2, 2), target in [0, 3), groups 1..3 with id 0 once (read
** as the last group, as Python's index -1), counts 2, 5, 3. */
static fixture *fixture_new(uint64_t seed)
{
	fixture *f = calloc(1, sizeof *f);
	int64_t so[3] = {B, T, N}, sy[3] = {B, T + LAG, N}, sg[2] = {B, N}, sc[1] = {GROUPS};
	f->o = gc_input(3, so, seed, 0.2, 2.0);
	f->y = gc_input(3, sy, seed + 1, 0.0, 3.0);
	f->pre_ca = gc_input(3, so, seed + 2, -1.0, 1.0);
	f->ga = fv_tensor_new(2, sg);
	f->gc = fv_tensor_new(1, sc);
	for (int64_t i = 0; i < f->ga->numel; i++)
		f->ga->data[i] = (fv_real)(1 + (i * 7 + 1) % GROUPS);
	f->ga->data[5] = 0;
	f->gc->data[0] = 2, f->gc->data[1] = 5, f->gc->data[2] = 3;
	f->names[0] = "group_assignment", f->names[1] = "group_counts", f->names[2] = "pre_ca";
	f->values[0] = f->ga, f->values[1] = f->gc, f->values[2] = f->pre_ca;
	f->groups = (fv_loss_extras){2, f->names, f->values};
	f->l1 = (fv_loss_extras){1, f->names + 2, f->values + 2};
	f->ctx = fv_ctx_new();
	return f;
}

static void fixture_free(fixture *f)
{
	fv_ctx_free(f->ctx);
	fv_tensor *ts[] = {f->o, f->y, f->ga, f->gc, f->pre_ca};
	for (size_t i = 0; i < 5; i++)
		fv_tensor_free(ts[i]);
	free(f);
}

static double out_at(const fv_tensor *o, int b, int t, int n)
{
	return o->data[(b * T + t) * N + n];
}

static double tgt_at(const fv_tensor *y, int b, int t, int n)
{
	return y->data[(b * (T + LAG) + t + LAG) * N + n];
}

/* sum(counts) / groups / counts[id - 1], id 0 meaning the last group. */
static double weight_at(const fixture *f, int b, int n)
{
	int id = (int)f->ga->data[b * N + n];
	int g = id == 0 ? GROUPS - 1 : id - 1;
	return (2.0 + 5 + 3) / GROUPS / f->gc->data[g];
}

/* The correlation over frames [t0, t1) of output and the lagged target. */
static double naive_corr(const fixture *f, int b, int n, int t0, int t1, double eps)
{
	double mo = 0, mt = 0, len = t1 - t0;
	for (int t = t0; t < t1; t++) {
		mo += out_at(f->o, b, t, n) / len;
		mt += tgt_at(f->y, b, t, n) / len;
	}
	double cov = 0, vo = 0, vt = 0;
	for (int t = t0; t < t1; t++) {
		double a = out_at(f->o, b, t, n) - mo, c = tgt_at(f->y, b, t, n) - mt;
		cov += a * c / len;
		vo += a * a / len;
		vt += c * c / len;
	}
	return cov / sqrt((vo + eps) * (vt + eps));
}

static fv_tensor *loss_with(fv_module *m, fixture *f, const fv_loss_extras *ex)
{
	fv_tensor *l = fv_module_loss_with(m, f->ctx, f->o, f->y, ex);
	cr_assert_not_null(l, "%s", fv_errmsg());
	return l;
}

/* The per-neuron correlations the module kept after its forward. */
static void expect_kept(fv_module *m, const double want[N], const char *what)
{
	fv_tensor *kept = pt_tensor(m, "_per_neuron_correlations");
	cr_assert_eq(kept->numel, N);
	for (int n = 0; n < N; n++)
		pt_expect_close(kept->data[n], want[n], 1e-5, what);
}

/* ---- cell-type weights ------------------------------------------------------------ */

Test(loss_variants, celltype_poisson_weights_each_neuron_by_its_group)
{
	fixture *f = fixture_new(1);
	double total = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			for (int n = 0; n < N; n++) {
				double o = out_at(f->o, b, t, n), y = tgt_at(f->y, b, t, n);
				double l = (o - y * log(o + 0.1)) * weight_at(f, b, n);
				total += l;
				per[n] += l / (B * T);
			}
	fv_module *sum = make("CelltypePoissonLoss3d", "bias: 0.1");
	fv_module *avg = make("openretina.modules.losses.poisson.CelltypePoissonLoss3d",
	                      "{bias: 0.1, avg: true}");
	fv_module *pn = make("CelltypePoissonLoss3d", "{bias: 0.1, per_neuron: true}");
	pt_expect_close(loss_with(sum, f, &f->groups)->data[0], total, 1e-4, "sum");
	pt_expect_close(loss_with(avg, f, &f->groups)->data[0], total / (B * T * N), 1e-5, "avg");
	fv_tensor *l = loss_with(pn, f, &f->groups);
	for (int n = 0; n < N; n++)
		pt_expect_close(l->data[n], per[n], 1e-5, "per_neuron");
	fv_module_free(sum);
	fv_module_free(avg);
	fv_module_free(pn);
	fixture_free(f);
}

Test(loss_variants, celltype_correlation_keeps_the_negated_weighted_means)
{
	fixture *f = fixture_new(2);
	double total = 0, kept[N] = {0};
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			double c = naive_corr(f, b, n, 0, T, 1e-16) * weight_at(f, b, n);
			total += c;
			kept[n] -= c / B;
		}
	fv_module *m = make("CelltypeCorrelationLoss3d", "negate: false");
	pt_expect_close(loss_with(m, f, &f->groups)->data[0], total, 1e-5, "sum, not negated");
	expect_kept(m, kept, "negated whatever negate");
	fv_module_free(m);
	m = make("CelltypeCorrelationLoss3d", "avg: true");
	pt_expect_close(loss_with(m, f, &f->groups)->data[0], -total / (B * N), 1e-5, "avg");
	fv_module_free(m);
	fixture_free(f);
}

Test(loss_variants, standard_poisson_ignores_the_groups)
{
	fixture *f = fixture_new(3);
	fv_module *plain = make("PoissonLoss3d", "avg: true");
	fv_module *standard = make("openretina.modules.measures.StandardPoissonLoss3d", "avg: true");
	double want = fv_module_loss(plain, f->ctx, f->o, f->y)->data[0];
	pt_expect_close(loss_with(standard, f, &f->groups)->data[0], want, 1e-7, "with groups");
	pt_expect_close(loss_with(standard, f, NULL)->data[0], want, 1e-7, "without");
	fv_module_free(plain);
	fv_module_free(standard);
	fixture_free(f);
}

/* ---- L1CorrelationLoss3d ---------------------------------------------------------- */

Test(loss_variants, l1_correlation_adds_0_0002_times_the_l1_of_pre_ca)
{
	fixture *f = fixture_new(4);
	double total = 0, l1 = 0, kept[N] = {0};
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			double c = naive_corr(f, b, n, 0, T, 1e-16);
			total += c;
			kept[n] -= c / B;
		}
	for (int64_t i = 0; i < f->pre_ca->numel; i++)
		l1 += fabs(f->pre_ca->data[i]);
	fv_module *m = make("L1CorrelationLoss3d", NULL);
	pt_expect_close(loss_with(m, f, &f->l1)->data[0], -total + 0.0002 * l1, 1e-5, "sum");
	expect_kept(m, kept, "kept");
	fv_module_free(m);
	m = make("L1CorrelationLoss3d", "{avg: true, negate: false}");
	double want = total / (B * N) + 0.0002 * l1 / (double)f->pre_ca->numel;
	pt_expect_close(loss_with(m, f, &f->l1)->data[0], want, 1e-5, "avg");
	expect_kept(m, kept, "kept, negated whatever negate");
	fv_module_free(m);
	fixture_free(f);
}

/* ---- ScaledCorrelationLoss3d -------------------------------------------------------- */

Test(loss_variants, scaled_correlation_averages_whole_windows_only)
{
	fixture *f = fixture_new(5);
	/* T = 7, scale 3: windows [0, 3) and [3, 6); frame 6 is left out. */
	double total = 0, per[N] = {0};
	for (int b = 0; b < B; b++)
		for (int n = 0; n < N; n++) {
			double c = (naive_corr(f, b, n, 0, 3, 0.01) + naive_corr(f, b, n, 3, 6, 0.01)) / 2;
			total += c;
			per[n] += c / B;
		}
	fv_module *m = make("ScaledCorrelationLoss3d", "{scale: 3, bias: 0.01}");
	pt_expect_close(fv_module_loss(m, f->ctx, f->o, f->y)->data[0], -total, 1e-5, "sum");
	double kept[N];
	for (int n = 0; n < N; n++)
		kept[n] = -per[n];
	expect_kept(m, kept, "kept");
	fv_module_free(m);
	m = make("ScaledCorrelationLoss3d", "{scale: 3, bias: 0.01, per_neuron: true}");
	fv_tensor *l = loss_with(m, f, &f->groups); /* **kwargs: ignored */
	for (int n = 0; n < N; n++)
		pt_expect_close(l->data[n], -per[n], 1e-5, "per_neuron");
	fv_module_free(m);
	fixture_free(f);
}

/* ---- gradients --------------------------------------------------------------------- */

typedef struct grad_case {
	fv_module *m;
	fixture *f;
	const fv_loss_extras *ex;
} grad_case;

static fv_tensor *loss_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	grad_case *g = ud;
	fv_tensor *values[3] = {g->f->ga, g->f->gc, in[2]};
	fv_loss_extras ex = {g->ex->n, g->ex->names, g->ex == &g->f->l1 ? values + 2 : values};
	return fv_module_loss_with(g->m, ctx, in[0], in[1], &ex);
}

static void gradcheck_loss(const char *target, const char *yaml, int extras)
{
	fixture *f = fixture_new(6);
	grad_case g = {make(target, yaml), f, extras == 1 ? &f->groups : &f->l1};
	f->pre_ca->requires_grad = extras == 2; /* only L1CorrelationLoss3d reads it */
	fv_tensor *in[3] = {f->o, f->y, f->pre_ca};
	gradcheck(target, loss_fn, 3, in, &g);
	fv_module_free(g.m);
	fixture_free(f);
}

Test(loss_variants, gradients_match_finite_differences)
{
	gradcheck_loss("CelltypePoissonLoss3d", "per_neuron: true", 1);
	gradcheck_loss("CelltypeCorrelationLoss3d", "avg: true", 1);
	gradcheck_loss("L1CorrelationLoss3d", "{}", 2);
	gradcheck_loss("ScaledCorrelationLoss3d", "scale: 2", 1);
}

/* ---- errors ------------------------------------------------------------------------- */

static void expect_refused(fv_module *m, fixture *f, const fv_loss_extras *ex, const char *needle)
{
	fv_clear_error();
	cr_assert_null(fv_module_loss_with(m, f->ctx, f->o, f->y, ex), "accepted: %s", needle);
	pt_expect_msg(needle);
}

Test(loss_variants, missing_or_bad_groups_are_refused)
{
	fixture *f = fixture_new(7);
	fv_module *m = make("CelltypePoissonLoss3d", NULL);
	expect_refused(m, f, NULL, "needs the inputs group_assignment");
	fv_clear_error();
	cr_assert_null(fv_module_loss(m, f->ctx, f->o, f->y));
	pt_expect_msg("CelltypePoissonLoss3d: needs the inputs group_assignment");
	f->ga->data[3] = 4;
	expect_refused(m, f, &f->groups, "group_assignment holds 4; expected a group id in 1..3");
	f->ga->data[3] = 1.5f;
	expect_refused(m, f, &f->groups, "holds 1.5");
	f->ga->data[3] = -3;
	expect_refused(m, f, &f->groups, "holds -3");
	int64_t wrong[2] = {N, B};
	fv_tensor *ga = fv_tensor_new(2, wrong);
	fv_tensor *values[2] = {ga, f->gc};
	fv_loss_extras ex = {2, f->names, values};
	expect_refused(m, f, &ex, "group_assignment (4, 3) must be (batch, neurons)");
	fv_tensor_free(ga);
	fv_module_free(m);
	fixture_free(f);
}

Test(loss_variants, l1_correlation_needs_pre_ca_and_refuses_per_neuron)
{
	fixture *f = fixture_new(8);
	fv_module *m = make("L1CorrelationLoss3d", NULL);
	expect_refused(m, f, &f->groups, "needs the input pre_ca");
	fv_module_free(m);
	m = make("L1CorrelationLoss3d", "per_neuron: true");
	expect_refused(m, f, &f->l1, "per_neuron: true is not supported");
	fv_module_free(m);
	fixture_free(f);
}

Test(loss_variants, scaled_correlation_needs_a_whole_window)
{
	fixture *f = fixture_new(9);
	fv_module *m = make("ScaledCorrelationLoss3d", NULL); /* scale 30 > T */
	expect_refused(m, f, NULL, "fewer frames than scale 30");
	fv_module_free(m);
	pt_expect_make_error(reg, "ScaledCorrelationLoss3d", "scale: 30.0", "scale");
	pt_expect_make_error(reg, "ScaledCorrelationLoss3d", "scale: 0", "scale");
	fixture_free(f);
}

Test(loss_variants, a_loss_without_extras_refuses_them)
{
	fixture *f = fixture_new(10);
	fv_module *m = make("PoissonLoss3d", NULL);
	expect_refused(m, f, &f->groups, "takes only output and target, not 'group_assignment'");
	cr_assert_not_null(fv_module_loss_with(m, f->ctx, f->o, f->y, NULL), "%s", fv_errmsg());
	fv_module_free(m);
	fixture_free(f);
}

Test(loss_variants, every_name_is_registered)
{
	const char *names[] = {
		"CelltypePoissonLoss3d", "openretina.modules.losses.poisson.CelltypePoissonLoss3d",
		"openretina.modules.measures.CelltypePoissonLoss3d", "StandardPoissonLoss3d",
		"openretina.modules.measures.StandardPoissonLoss3d", "CelltypeCorrelationLoss3d",
		"openretina.modules.losses.correlation.CelltypeCorrelationLoss3d",
		"L1CorrelationLoss3d", "openretina.modules.losses.correlation.L1CorrelationLoss3d",
		"ScaledCorrelationLoss3d",
		"openretina.modules.losses.correlation.ScaledCorrelationLoss3d",
		"openretina.modules.losses.poisson.L1PoissonLoss3d",
	};
	pt_expect_registered(reg, names, sizeof names / sizeof *names, FV_KIND_LOSS);
}
