/*
** test_ops_reduce.c: fv_sum, fv_mean, fv_max, fv_norm, fv_sum_all,
** fv_mean_all.
**
** Values are checked by hand and against a naive reduction written here
** (odometer over the reduced axes, in double), also on sizes long enough to
** be split into parallel chunks, where the result must not change with the
** thread count.  Gradients by hand at ties and at a zero norm, and by
** finite differences.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 2e-6
#endif

enum { SUM, MEAN, MAX, NORM };

typedef struct red_case {
	int kind;
	double p;
	int naxes;
	int axes[FV_MAX_DIMS];
	bool keepdim;
} red_case;

static fv_tensor *reduce(fv_ctx *ctx, const red_case *c, fv_tensor *x)
{
	switch (c->kind) {
	case SUM: return fv_sum(ctx, x, c->naxes, c->axes, c->keepdim);
	case MEAN: return fv_mean(ctx, x, c->naxes, c->axes, c->keepdim);
	case MAX: return fv_max(ctx, x, c->naxes, c->axes, c->keepdim);
	default: return fv_norm(ctx, x, c->p, c->naxes, c->axes, c->keepdim);
	}
}

static fv_tensor *tensor_of(fv_ctx *ctx, int ndim, const int64_t *shape, const double *v)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)v[i];
	return t;
}

static void expect_tensor(const fv_tensor *t, int ndim, const int64_t *shape, const double *want)
{
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_eq(t->ndim, ndim, "ndim %d, expected %d", t->ndim, ndim);
	for (int d = 0; d < ndim; d++)
		cr_assert_eq(t->shape[d], shape[d], "dim %d: %lld vs %lld", d, (long long)t->shape[d],
		             (long long)shape[d]);
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert(fabs(t->data[i] - want[i]) <= TOL * (1 + fabs(want[i])),
		          "[%lld] = %.10g, expected %.10g", (long long)i, (double)t->data[i], want[i]);
}

/* x (2, 3): [[1, -2, 3], [4, 5, -6]] */
static const double X23[6] = {1, -2, 3, 4, 5, -6};

Test(reduce, by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3}, s21[2] = {2, 1}, s13[2] = {1, 3};
	fv_tensor *x = tensor_of(ctx, 2, s23, X23);
	expect_tensor(fv_sum(ctx, x, 1, (int[]){1}, false), 1, s2, (double[]){2, 3});
	expect_tensor(fv_sum(ctx, x, 1, (int[]){-1}, true), 2, s21, (double[]){2, 3});
	expect_tensor(fv_sum(ctx, x, 1, (int[]){0}, true), 2, s13, (double[]){5, 3, -3});
	expect_tensor(fv_mean(ctx, x, 1, (int[]){0}, false), 1, s3, (double[]){2.5, 1.5, -1.5});
	expect_tensor(fv_max(ctx, x, 1, (int[]){1}, false), 1, s2, (double[]){3, 5});
	expect_tensor(fv_max(ctx, x, 0, NULL, false), 0, NULL, (double[]){5});
	expect_tensor(fv_norm(ctx, x, 2, 1, (int[]){1}, false), 1, s2,
	              (double[]){sqrt(14), sqrt(77)});
	expect_tensor(fv_norm(ctx, x, 1, 0, NULL, false), 0, NULL, (double[]){21});
	expect_tensor(fv_norm(ctx, x, 3, 1, (int[]){0}, true), 2, s13,
	              (double[]){cbrt(65), cbrt(133), cbrt(243)});
	expect_tensor(fv_sum_all(ctx, x), 0, NULL, (double[]){5});
	expect_tensor(fv_mean_all(ctx, x), 0, NULL, (double[]){5.0 / 6});
	expect_tensor(fv_sum(ctx, x, 2, (int[]){1, 0}, true), 2, (int64_t[]){1, 1},
	              (double[]){5});
	fv_ctx_free(ctx);
}

Test(reduce, scalar_and_empty_inputs)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *s = fv_ctx_scalar(ctx, -4);
	expect_tensor(fv_sum_all(ctx, s), 0, NULL, (double[]){-4});
	expect_tensor(fv_max(ctx, s, 0, NULL, true), 0, NULL, (double[]){-4});
	fv_tensor *e = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 0});
	expect_tensor(fv_sum(ctx, e, 1, (int[]){1}, false), 1, (int64_t[]){2}, (double[]){0, 0});
	fv_tensor *m = fv_mean_all(ctx, e);
	cr_assert(m != NULL && isnan(m->data[0]), "the mean of nothing is NaN, as in torch");
	fv_ctx_free(ctx);
}

/* ---- against a naive reduction -------------------------------------------------- */

/* All outputs in one pass over x: each element goes to the output named by
** its kept coordinates. */
static void naive(const red_case *c, const fv_tensor *x, int64_t nout, double *acc)
{
	bool red[FV_MAX_DIMS] = {false};
	for (int i = 0; i < c->naxes; i++)
		red[(c->axes[i] + x->ndim) % x->ndim] = true;
	if (c->naxes == 0)
		for (int d = 0; d < x->ndim; d++)
			red[d] = true;
	for (int64_t o = 0; o < nout; o++)
		acc[o] = c->kind == MAX ? -INFINITY : 0;
	for (int64_t i = 0; i < x->numel; i++) {
		int64_t rem = i, o = 0, mul = 1;
		for (int d = x->ndim - 1; d >= 0; d--) {
			int64_t idx = rem % x->shape[d];
			rem /= x->shape[d];
			if (!red[d]) {
				o += idx * mul;
				mul *= x->shape[d];
			}
		}
		double v = x->data[i];
		if (c->kind == MAX)
			acc[o] = v > acc[o] ? v : acc[o];
		else if (c->kind == NORM)
			acc[o] += pow(fabs(v), c->p);
		else
			acc[o] += v;
	}
	for (int64_t o = 0; o < nout; o++) {
		if (c->kind == MEAN)
			acc[o] /= (double)(x->numel / nout);
		else if (c->kind == NORM)
			acc[o] = pow(acc[o], 1 / c->p);
	}
}

static void check_naive(const red_case *c, int ndim, const int64_t *shape, double tol)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_empty(ctx, ndim, shape);
	gc_fill_uniform(x, 3, -1, 1);
	fv_tensor *y = reduce(ctx, c, x);
	cr_assert_not_null(y, "%s", fv_errmsg());
	double *want = fv_ctx_alloc(ctx, (size_t)y->numel * sizeof *want);
	naive(c, x, y->numel, want);
	for (int64_t o = 0; o < y->numel; o++)
		cr_assert(fabs(y->data[o] - want[o]) <= tol * (1 + fabs(want[o])),
		          "kind %d [%lld]: %.10g vs %.10g", c->kind, (long long)o, (double)y->data[o],
		          want[o]);
	fv_ctx_free(ctx);
}

Test(reduce, naive_reference)
{
	int64_t s[4] = {3, 4, 5, 6};
	for (int kind = SUM; kind <= NORM; kind++) {
		check_naive(&(red_case){kind, 2, 2, {0, 2}, false}, 4, s, TOL);
		check_naive(&(red_case){kind, 3, 1, {-1}, true}, 4, s, TOL);
		check_naive(&(red_case){kind, 1.5, 3, {3, 1, 0}, false}, 4, s, TOL);
		check_naive(&(red_case){kind, 2, 0, {0}, false}, 4, s, TOL);
	}
}

Test(reduce, long_reductions_are_chunked_and_exact)
{
	/* 3 x 50000: rows longer than a chunk, columns short; float32 sums
	** are accumulated in double, so they stay within float rounding */
	int64_t s[2] = {3, 50000}, t[2] = {40000, 7};
	for (int kind = SUM; kind <= NORM; kind++) {
		check_naive(&(red_case){kind, 2, 1, {1}, false}, 2, s, TOL);
		check_naive(&(red_case){kind, 2, 1, {0}, false}, 2, s, TOL);
		check_naive(&(red_case){kind, 2, 0, {0}, false}, 2, s, TOL);
		/* many short rows: one contiguous run per work item, split per row */
		check_naive(&(red_case){kind, 3, 1, {1}, true}, 2, t, TOL);
	}
}

Test(reduce, independent_of_thread_count)
{
	/* long rows (chunked) and short ones (grouped), summed and normed */
	int64_t s[2] = {7, 40000};
	static fv_real first[2][40000];
	for (int threads = 1; threads <= 2; threads++) {
		fv_set_num_threads(threads);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *x = fv_ctx_empty(ctx, 2, s);
		gc_fill_uniform(x, 8, -1, 1);
		fv_tensor *y[2] = {fv_sum(ctx, x, 1, (int[]){1}, false),
		                   fv_norm(ctx, x, 2, 1, (int[]){0}, false)};
		for (int k = 0; k < 2; k++) {
			size_t bytes = (size_t)y[k]->numel * sizeof(fv_real);
			if (threads == 1)
				memcpy(first[k], y[k]->data, bytes);
			else
				cr_assert(memcmp(first[k], y[k]->data, bytes) == 0,
				          "reduction %d differs between 1 and 2 threads", k);
		}
		fv_ctx_free(ctx);
	}
	fv_set_num_threads(0);
}

/* ---- gradients by hand -------------------------------------------------------------- */

Test(reduce, max_gradient_goes_to_first_maximum)
{
	/* ties within a row, and across parallel chunks of a long row */
	int64_t s[2] = {2, 40000};
	fv_tensor *x = fv_tensor_new(2, s);
	x->requires_grad = true;
	x->data[5] = x->data[9] = 3;               /* row 0: first max at 5 */
	x->data[40000 + 30000] = 2;                /* row 1: first max at 30000 ... */
	x->data[40000 + 39999] = 2;                /* ... tied at 39999, another chunk */
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *m = fv_max(ctx, x, 1, (int[]){1}, false);
	cr_assert_eq(m->data[0], 3);
	cr_assert_eq(m->data[1], 2);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_mul_scalar(ctx, m, 7))), FV_OK);
	for (int64_t i = 0; i < x->numel; i++) {
		fv_real want = (i == 5 || i == 40000 + 30000) ? 7 : 0;
		cr_assert_eq(x->grad->data[i], want, "grad[%lld] = %g", (long long)i,
		             (double)x->grad->data[i]);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(reduce, norm_gradient_is_zero_at_zero)
{
	fv_tensor *x = fv_tensor_new(2, (int64_t[]){2, 2});
	x->requires_grad = true;
	x->data[2] = 3;
	x->data[3] = -4; /* row 0 is all zero, row 1 has norm 5 */
	for (int k = 0; k < 2; k++) {
		double p = k == 0 ? 2 : 3;
		fv_zero_grad(x);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *n = fv_norm(ctx, x, p, 1, (int[]){1}, false);
		cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, n)), FV_OK);
		double nrm = pow(pow(3, p) + pow(4, p), 1 / p);
		double want[4] = {0, 0, pow(3 / nrm, p - 1), -pow(4 / nrm, p - 1)};
		for (int i = 0; i < 4; i++)
			cr_assert(fabs(x->grad->data[i] - want[i]) <= TOL * 10, "p %g [%d]: %g vs %g",
			          p, i, (double)x->grad->data[i], want[i]);
		fv_ctx_free(ctx);
	}
	fv_tensor_free(x);
}

Test(reduce, mean_gradient_by_hand)
{
	fv_tensor *x = fv_tensor_new(2, (int64_t[]){2, 4});
	x->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *m = fv_mean(ctx, x, 1, (int[]){0}, false); /* (4): each is a mean of 2 */
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, m)), FV_OK);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(x->grad->data[i], 0.5);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

/* ---- errors -------------------------------------------------------------------------- */

Test(reduce, errors_name_the_op_and_shape)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 3});
	cr_assert_null(fv_sum(ctx, x, 1, (int[]){2}, false));
	cr_assert_str_eq(fv_errmsg(), "fv_sum: axis 2 is out of range for a tensor of shape (2, 3)");
	cr_assert_null(fv_mean(ctx, x, 2, (int[]){1, -1}, false));
	cr_assert_str_eq(fv_errmsg(), "fv_mean: axis -1 is given twice (tensor of shape (2, 3))");
	cr_assert_null(fv_max(ctx, x, 1, NULL, false));
	cr_assert_str_eq(fv_errmsg(), "fv_max: 1 axes given (with no list)");
	cr_assert_null(fv_norm(ctx, x, 0, 0, NULL, false));
	cr_assert_str_eq(fv_errmsg(),
	                 "fv_norm: p = 0 is not supported (a finite p > 0 is needed)");
	cr_assert_null(fv_norm(ctx, x, INFINITY, 0, NULL, false));
	cr_assert(strstr(fv_errmsg(), "p = inf") != NULL, "%s", fv_errmsg());
	fv_tensor *e = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 0});
	cr_assert_null(fv_max(ctx, e, 1, (int[]){1}, false));
	cr_assert_str_eq(fv_errmsg(), "fv_max: cannot take the max over an empty axis of (2, 0)");
	fv_ctx_free(ctx);
}

Test(reduce, null_propagates)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_error(FV_ERR_IO, "first");
	cr_assert_null(fv_sum_all(ctx, NULL));
	cr_assert_null(fv_norm(ctx, NULL, -1, 0, NULL, false));
	cr_assert_null(fv_max(ctx, NULL, 0, NULL, false));
	cr_assert_str_eq(fv_errmsg(), "first");
	fv_ctx_free(ctx);
}

/* ---- finite differences ---------------------------------------------------------------- */

static fv_tensor *gc_reduce(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return reduce(ctx, ud, in[0]);
}

Test(reduce, gradcheck)
{
	static const red_case cases[] = {
		{SUM, 0, 1, {1}, false}, {SUM, 0, 2, {0, 2}, true}, {SUM, 0, 0, {0}, false},
		{MEAN, 0, 1, {-1}, true}, {MEAN, 0, 2, {2, 0}, false}, {MEAN, 0, 0, {0}, false},
		{MAX, 0, 1, {1}, false}, {MAX, 0, 2, {0, 1}, true}, {MAX, 0, 0, {0}, false},
		{NORM, 2, 1, {2}, false}, {NORM, 2, 0, {0}, false}, {NORM, 3, 2, {0, 1}, true},
		{NORM, 1, 1, {1}, false}, {NORM, 1.5, 1, {0}, false},
	};
	int64_t s[3] = {2, 3, 4};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fv_tensor *x = gc_input(3, s, 21 + i, 0.1, 1);
		/* distinct values at least 0.05 apart (max), signs mixed (norm),
		** none near 0 (the kink of |x|) */
		for (int64_t j = 0; j < x->numel; j++)
			x->data[j] = (fv_real)((j * 7 % 24 + 2) * 0.05 * (j % 3 == 0 ? -1 : 1));
		char what[32];
		snprintf(what, sizeof what, "case %zu", i);
		gradcheck(what, gc_reduce, 1, &x, (void *)&cases[i]);
		fv_tensor_free(x);
	}
}
