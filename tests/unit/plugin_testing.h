/*
** plugin_testing.h: what the tests of the build's plugins share.
**
**   - a registry holding the plugins of some kinds (the directories of
**     $FOVEA_BUILD_DIR/plugins/), as the suites' fixtures load it;
**   - components built from YAML text (a spec with _target_, or a target
**     name and its options), and the checks that a bad one is refused;
**   - lookups and calls that fail the test with a message instead of
**     returning NULL: a named tensor, forward, regularizer;
**   - message checks and comparisons with naive references.
**
** Every helper asserts through Criterion, so a test reads as the sequence of
** what it checks.  Functions are static inline: each test program uses a few.
*/
#ifndef FOVEA_TEST_PLUGIN_TESTING_H
#define FOVEA_TEST_PLUGIN_TESTING_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "gradcheck.h"

/* ---- the registry ------------------------------------------------------------- */

/* A new registry with the build's plugins of each kind in `kinds`
** (NULL-terminated): PT_REGISTRY("readouts", "regularizers"). */
static inline fv_registry *pt_registry(const char *const *kinds)
{
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	fv_registry *reg = fv_registry_new();
	cr_assert_not_null(reg);
	for (; *kinds != NULL; kinds++) {
		char dir[1024];
		snprintf(dir, sizeof dir, "%s/plugins/%s", build, *kinds);
		cr_assert_eq(fv_registry_load_dir(reg, dir), FV_OK, "%s", fv_errmsg());
	}
	return reg;
}

#define PT_REGISTRY(...) pt_registry((const char *const[]){__VA_ARGS__, NULL})

/* The Criterion suite `suite` whose tests share `reg`, a registry of the
** build's plugins of the kinds given, loaded by suite_load() before each
** test and freed by suite_unload() after it:
** PT_SUITE(readouts, "readouts", "regularizers"); */
#define PT_SUITE(suite, ...)                                \
	static fv_registry *reg;                            \
	static void suite##_load(void)                      \
	{                                                   \
		reg = PT_REGISTRY(__VA_ARGS__);             \
	}                                                   \
	static void suite##_unload(void)                    \
	{                                                   \
		fv_registry_free(reg);                      \
	}                                                   \
	TestSuite(suite, .init = suite##_load, .fini = suite##_unload)

/* Every name in `names` finds a component of `kind`. */
static inline void pt_expect_registered(const fv_registry *reg, const char *const *names,
                                        size_t n, fv_kind kind)
{
	for (size_t i = 0; i < n; i++) {
		const fv_component *c = fv_registry_find(reg, names[i], NULL);
		cr_assert_not_null(c, "%s", names[i]);
		cr_assert_eq(c->kind, kind, "%s", names[i]);
	}
}

/* ---- messages ---------------------------------------------------------------------- */

/* The message of the last failure contains `needle`. */
static inline void pt_expect_msg(const char *needle)
{
	cr_assert(strstr(fv_errmsg(), needle) != NULL, "message '%s' lacks '%s'", fv_errmsg(),
	          needle);
}

/* ---- building components -------------------------------------------------------------- */

/* The component `yaml` names with _target_, built with `seed`; NULL (and
** the message) when it is refused. */
static inline fv_module *pt_try_build(fv_registry *reg, const char *yaml, uint64_t seed)
{
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "spec.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_build_args a = {.struct_size = sizeof a, .registry = reg, .seed = seed};
	fv_module *m = fv_instantiate(reg, fv_config_root(cfg), &a);
	fv_config_free(cfg);
	return m;
}

static inline fv_module *pt_build(fv_registry *reg, const char *yaml, uint64_t seed)
{
	fv_module *m = pt_try_build(reg, yaml, seed);
	cr_assert_not_null(m, "%s\n--- for:\n%s", fv_errmsg(), yaml);
	return m;
}

/* `yaml` is refused with a message containing `needle`. */
static inline void pt_expect_build_error(fv_registry *reg, const char *yaml, const char *needle)
{
	fv_clear_error();
	fv_module *m = pt_try_build(reg, yaml, 0);
	cr_assert_null(m, "accepted:\n%s", yaml);
	pt_expect_msg(needle);
}

/* A spec and what its refusal must say, for tables of bad specs. */
typedef struct pt_bad_spec {
	const char *yaml, *needle;
} pt_bad_spec;

static inline void pt_expect_build_errors(fv_registry *reg, const pt_bad_spec *bad, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pt_expect_build_error(reg, bad[i].yaml, bad[i].needle);
}

#define PT_EXPECT_BUILD_ERRORS(reg, table) \
	pt_expect_build_errors((reg), (table), sizeof(table) / sizeof(table)[0])

/* The registered component `target` with its options as YAML text (may be
** NULL: the defaults), as the module `name`. */
static inline fv_module *pt_try_make(fv_registry *reg, const char *target, const char *yaml,
                                     const char *name)
{
	fv_build_args args = {.struct_size = sizeof args, .registry = reg};
	return fv_instantiate_named(reg, target, yaml, &args, name);
}

static inline fv_module *pt_make(fv_registry *reg, const char *target, const char *yaml,
                                 const char *name)
{
	fv_module *m = pt_try_make(reg, target, yaml, name);
	cr_assert_not_null(m, "%s (%s): %s", target, yaml ? yaml : "", fv_errmsg());
	return m;
}

static inline void pt_expect_make_error(fv_registry *reg, const char *target, const char *yaml,
                                        const char *needle)
{
	fv_clear_error();
	fv_module *m = pt_try_make(reg, target, yaml, "m");
	cr_assert_null(m, "%s (%s) was accepted", target, yaml ? yaml : "");
	pt_expect_msg(needle);
}

/* ---- tensors and calls ------------------------------------------------------------------- */

static inline fv_tensor *pt_tensor(const fv_module *m, const char *name)
{
	fv_tensor *t = fv_module_tensor(m, name);
	cr_assert_not_null(t, "no tensor '%s'", name);
	return t;
}

static inline void pt_expect_shape(const fv_tensor *t, int ndim, const int64_t *shape,
                                   const char *what)
{
	cr_assert_eq(t->ndim, ndim, "%s: ndim %d, expected %d", what, t->ndim, ndim);
	for (int i = 0; i < ndim; i++)
		cr_assert_eq(t->shape[i], shape[i], "%s: shape %s", what, fv_shape_str(t->ndim, t->shape));
}

/* Deterministic values in [lo, hi), not requiring grad. */
static inline fv_tensor *pt_input(int ndim, const int64_t *shape, uint64_t seed, double lo,
                                  double hi)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	cr_assert_not_null(t);
	gc_fill_uniform(t, seed, lo, hi);
	return t;
}

/* The module's tensor names are exactly `want`, in any order. */
typedef struct pt_name_list {
	const char *const *want;
	int n_want, seen;
} pt_name_list;

static inline int pt_check_name(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)t;
	pt_name_list *l = ud;
	for (int i = 0; i < l->n_want; i++)
		if (strcmp(l->want[i], name) == 0) {
			l->seen++;
			return 0;
		}
	cr_assert_fail("unexpected tensor '%s' (%s)", name, is_param ? "param" : "buffer");
	return 1;
}

static inline void pt_expect_names(const fv_module *m, const char *const *want, int n)
{
	pt_name_list l = {.want = want, .n_want = n};
	fv_module_foreach_tensor(m, pt_check_name, &l);
	cr_assert_eq(l.seen, n, "found %d of the %d expected tensors", l.seen, n);
}

static inline int pt_count_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	(void)t;
	int *counts = ud;
	counts[0]++;
	counts[1] += is_param;
	return 0;
}

/* The number of the module's tensors; *n_params (may be NULL) gets how
** many of them are parameters. */
static inline int pt_n_tensors(const fv_module *m, int *n_params)
{
	int counts[2] = {0, 0};
	fv_module_foreach_tensor(m, pt_count_tensor, counts);
	if (n_params != NULL)
		*n_params = counts[1];
	return counts[0];
}

/* forward() for the session `key` (NULL: the module's only one or all),
** `sample` as fv_forward_args.sample. */
static inline fv_tensor *pt_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const char *key,
                                    int sample)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = key;
	fa.sample = sample;
	fv_tensor *y = fv_module_forward(m, ctx, x, &fa);
	cr_assert_not_null(y, "forward: %s", fv_errmsg());
	return y;
}

/* The scalar regularizer() of session `key` with reduction `red`. */
static inline double pt_regularizer(fv_module *m, fv_ctx *ctx, const char *key, fv_reduction red)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = key;
	fa.reduction = red;
	fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
	cr_assert_not_null(r, "regularizer: %s", fv_errmsg());
	cr_assert_eq(r->numel, 1);
	return r->data[0];
}

/* forward() of session `key` refuses a zero input of `shape` with a
** message containing `needle`. */
static inline void pt_expect_forward_error(fv_module *m, const char *key, int ndim,
                                           const int64_t *shape, const char *needle)
{
	fv_tensor *x = fv_tensor_new(ndim, shape);
	fv_ctx *ctx = fv_ctx_new();
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = key;
	fv_clear_error();
	cr_assert_null(fv_module_forward(m, ctx, x, &fa), "accepted an input %s",
	               fv_shape_str(ndim, shape));
	pt_expect_msg(needle);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

/* The end of most tests: free the context, the input and the module. */
static inline void pt_release(fv_module *m, fv_tensor *x, fv_ctx *ctx)
{
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(m);
}

/* ---- comparisons ------------------------------------------------------------------------- */

/* |got - want| <= tol * (1 + |want|). */
static inline void pt_expect_close(double got, double want, double tol, const char *what)
{
	cr_assert(fabs(got - want) <= tol + tol * fabs(want), "%s: got %.9g, expected %.9g", what, got,
	          want);
}

/* ---- naive references ---------------------------------------------------------------- */

/* openretina's 3x3 Laplace filter (modules/layers/regularizers.py), row-major. */
static inline const double *pt_laplace3(void)
{
	static const double L[9] = {0, -1, 0, -1, 4, -1, 0, -1, 0};
	return L;
}

/* The k x k `filter` cross-correlated with the (h, w) plane x, zero-padded
** by `pad`, at output position (i, j). */
static inline double pt_conv2d_at(const fv_real *x, int h, int w, const double *filter, int k,
                                  int pad, int i, int j)
{
	double s = 0;
	for (int a = 0; a < k; a++)
		for (int b = 0; b < k; b++) {
			int r = i + a - pad, c = j + b - pad;
			if (r >= 0 && r < h && c >= 0 && c < w)
				s += filter[a * k + b] * x[r * w + c];
		}
	return s;
}

/* Σ over `planes` stacked (h, w) planes of the squared filtered values,
** each multiplied by damp[i, j] first (damp has the output's shape; NULL
** for none). */
static inline double pt_filter_sq_sum(const fv_real *x, int planes, int h, int w,
                                      const double *filter, int k, int pad, const double *damp)
{
	int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
	double s = 0;
	for (int p = 0; p < planes; p++)
		for (int i = 0; i < ho; i++)
			for (int j = 0; j < wo; j++) {
				double v = pt_conv2d_at(x + p * h * w, h, w, filter, k, pad, i, j);
				if (damp != NULL)
					v *= damp[i * wo + j];
				s += v * v;
			}
	return s;
}

#endif /* FOVEA_TEST_PLUGIN_TESTING_H */
