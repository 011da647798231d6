/*
** test_ops_binary.c: fv_add, fv_sub, fv_mul, fv_div and their broadcasting.
**
** Forward values are checked by hand on small cases and against a naive
** broadcast written here with explicit index arithmetic (including a size
** that takes the parallel path); gradients by hand where a broadcast sums
** them, and by finite differences (gradcheck.h) for every op and pattern.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

typedef fv_tensor *(*binary_fn)(fv_ctx *, fv_tensor *, fv_tensor *);

static fv_tensor *values(fv_ctx *ctx, int ndim, const int64_t *shape, const double *v)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	cr_assert_not_null(t, "%s", fv_errmsg());
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)v[i];
	return t;
}

static void expect_values(const fv_tensor *t, int ndim, const int64_t *shape, const double *want)
{
	cr_assert_not_null(t, "op failed: %s", fv_errmsg());
	cr_assert_eq(t->ndim, ndim, "ndim %d, expected %d", t->ndim, ndim);
	for (int d = 0; d < ndim; d++)
		cr_assert_eq(t->shape[d], shape[d], "dim %d is %lld, expected %lld", d,
		             (long long)t->shape[d], (long long)shape[d]);
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert(fabs(t->data[i] - want[i]) <= TOL * (1 + fabs(want[i])),
		          "[%lld] = %.9g, expected %.9g", (long long)i, (double)t->data[i], want[i]);
}

Test(binary, same_shape_by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[1] = {3};
	fv_tensor *a = values(ctx, 1, s, (double[]){1, 2, 3});
	fv_tensor *b = values(ctx, 1, s, (double[]){10, 20, 40});
	expect_values(fv_add(ctx, a, b), 1, s, (double[]){11, 22, 43});
	expect_values(fv_sub(ctx, a, b), 1, s, (double[]){-9, -18, -37});
	expect_values(fv_mul(ctx, a, b), 1, s, (double[]){10, 40, 120});
	expect_values(fv_div(ctx, a, b), 1, s, (double[]){0.1, 0.1, 0.075});
	fv_ctx_free(ctx);
}

Test(binary, broadcast_by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s23[2] = {2, 3}, s3[1] = {3}, s21[2] = {2, 1}, s31[2] = {3, 1}, s14[2] = {1, 4};
	fv_tensor *a = values(ctx, 2, s23, (double[]){1, 2, 3, 4, 5, 6});
	fv_tensor *row = values(ctx, 1, s3, (double[]){10, 20, 30});
	fv_tensor *col = values(ctx, 2, s21, (double[]){2, 4});
	expect_values(fv_add(ctx, a, row), 2, s23, (double[]){11, 22, 33, 14, 25, 36});
	expect_values(fv_sub(ctx, row, a), 2, s23, (double[]){9, 18, 27, 6, 15, 24});
	expect_values(fv_mul(ctx, col, a), 2, s23, (double[]){2, 4, 6, 16, 20, 24});
	expect_values(fv_div(ctx, a, col), 2, s23, (double[]){0.5, 1, 1.5, 1, 1.25, 1.5});
	/* both operands broadcast: an outer sum */
	fv_tensor *u = values(ctx, 2, s31, (double[]){0, 10, 20});
	fv_tensor *v = values(ctx, 2, s14, (double[]){1, 2, 3, 4});
	int64_t s34[2] = {3, 4};
	expect_values(fv_add(ctx, u, v), 2, s34,
	              (double[]){1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
	/* a 0-dim scalar against a matrix */
	fv_tensor *two = fv_ctx_scalar(ctx, 2);
	expect_values(fv_mul(ctx, a, two), 2, s23, (double[]){2, 4, 6, 8, 10, 12});
	fv_ctx_free(ctx);
}

/* ---- against a naive broadcast ------------------------------------------------ */

static double apply(int op, double a, double b)
{
	switch (op) {
	case 0: return a + b;
	case 1: return a - b;
	case 2: return a * b;
	default: return a / b;
	}
}

/* Offset of output position `i` in an operand of shape `s` (right-aligned,
** size-1 dims repeated), by explicit index arithmetic. */
static int64_t naive_offset(int64_t i, int ndim, const int64_t *out, int sdim, const int64_t *s)
{
	int64_t off = 0, mul = 1;
	for (int d = ndim - 1; d >= 0; d--) {
		int64_t idx = i % out[d];
		i /= out[d];
		int sd = d - (ndim - sdim);
		if (sd < 0)
			continue;
		off += (s[sd] == 1 ? 0 : idx) * mul;
		mul *= s[sd];
	}
	return off;
}

static void check_naive(int na, const int64_t *sa, int nb, const int64_t *sb, int nout,
                        const int64_t *sout)
{
	static const binary_fn ops[4] = {fv_add, fv_sub, fv_mul, fv_div};
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_empty(ctx, na, sa), *b = fv_ctx_empty(ctx, nb, sb);
	gc_fill_uniform(a, 1, -2, 2);
	gc_fill_uniform(b, 2, 0.5, 3);
	for (int op = 0; op < 4; op++) {
		fv_tensor *y = ops[op](ctx, a, b);
		cr_assert_not_null(y, "%s", fv_errmsg());
		cr_assert_eq(y->ndim, nout);
		for (int d = 0; d < nout; d++)
			cr_assert_eq(y->shape[d], sout[d]);
		for (int64_t i = 0; i < y->numel; i++) {
			double want = apply(op, a->data[naive_offset(i, nout, sout, na, sa)],
			                    b->data[naive_offset(i, nout, sout, nb, sb)]);
			cr_assert(fabs(y->data[i] - want) <= TOL * (1 + fabs(want)),
			          "op %d [%lld]: %.9g vs %.9g", op, (long long)i, (double)y->data[i], want);
		}
	}
	fv_ctx_free(ctx);
}

Test(binary, naive_reference)
{
	check_naive(4, (int64_t[]){2, 1, 3, 1}, 3, (int64_t[]){4, 1, 5}, 4,
	            (int64_t[]){2, 4, 3, 5});
	check_naive(3, (int64_t[]){3, 4, 5}, 3, (int64_t[]){3, 4, 5}, 3, (int64_t[]){3, 4, 5});
	check_naive(5, (int64_t[]){2, 3, 1, 4, 1}, 2, (int64_t[]){1, 6}, 5,
	            (int64_t[]){2, 3, 1, 4, 6});
	/* large enough for the parallel tiles, with a bias along a middle dim */
	check_naive(3, (int64_t[]){16, 40, 100}, 2, (int64_t[]){40, 1}, 3,
	            (int64_t[]){16, 40, 100});
}

Test(binary, empty_tensors)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 2, (int64_t[]){0, 3});
	fv_tensor *b = fv_ctx_full(ctx, 1, (int64_t[]){3}, 1);
	fv_tensor *y = fv_add(ctx, a, b);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_eq(y->numel, 0);
	cr_assert_eq(y->shape[0], 0);
	fv_ctx_free(ctx);
}

/* ---- errors ------------------------------------------------------------------------ */

Test(binary, shape_mismatch_names_both_shapes)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 3});
	fv_tensor *b = fv_ctx_zeros(ctx, 1, (int64_t[]){4});
	cr_assert_null(fv_sub(ctx, a, b));
	cr_assert_str_eq(fv_errmsg(),
	                 "fv_sub: shapes (2, 3) and (4) do not broadcast (dim -1: 3 vs 4)");
	cr_assert_null(fv_div(ctx, b, a));
	cr_assert(strstr(fv_errmsg(), "fv_div: shapes (4) and (2, 3)") != NULL, "%s",
	          fv_errmsg());
	fv_ctx_free(ctx);
}

Test(binary, null_propagates)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 1, (int64_t[]){2});
	fv_error(FV_ERR_IO, "the first failure");
	cr_assert_null(fv_add(ctx, NULL, a));
	cr_assert_null(fv_mul(ctx, a, NULL));
	cr_assert_str_eq(fv_errmsg(), "the first failure");
	fv_ctx_free(ctx);
}

/* ---- gradients ---------------------------------------------------------------------- */

Test(binary, broadcast_gradient_by_hand)
{
	int64_t s23[2] = {2, 3}, s3[1] = {3};
	fv_tensor *a = fv_tensor_new(2, s23), *b = fv_tensor_new(1, s3);
	const fv_real av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {2, 4, 8};
	memcpy(a->data, av, sizeof av);
	memcpy(b->data, bv, sizeof bv);
	a->requires_grad = b->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	/* L = sum(a * b) + sum(a / b): dL/db = colsum(a) - colsum(a) / b^2 */
	fv_tensor *l = fv_add(ctx, fv_sum_all(ctx, fv_mul(ctx, a, b)),
	                      fv_sum_all(ctx, fv_div(ctx, a, b)));
	cr_assert_eq(fv_backward(ctx, l), FV_OK, "%s", fv_errmsg());
	double colsum[3] = {5, 7, 9};
	for (int j = 0; j < 3; j++) {
		double want = colsum[j] - colsum[j] / (bv[j] * bv[j]);
		cr_assert(fabs(b->grad->data[j] - want) <= TOL * 10, "db[%d] = %g, expected %g", j,
		          (double)b->grad->data[j], want);
	}
	for (int i = 0; i < 6; i++) {
		double want = bv[i % 3] + 1.0 / bv[i % 3];
		cr_assert(fabs(a->grad->data[i] - want) <= TOL * 10);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(a);
	fv_tensor_free(b);
}

typedef struct bin_case {
	binary_fn fn;
	const char *name;
} bin_case;

static fv_tensor *gc_binary(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return ((bin_case *)ud)->fn(ctx, in[0], in[1]);
}

static void gradcheck_shapes(int na, const int64_t *sa, int nb, const int64_t *sb)
{
	bin_case cases[4] = {{fv_add, "add"}, {fv_sub, "sub"}, {fv_mul, "mul"}, {fv_div, "div"}};
	for (int i = 0; i < 4; i++) {
		fv_tensor *in[2] = {gc_input(na, sa, 11, -1, 1), gc_input(nb, sb, 12, 0.5, 2)};
		gradcheck(cases[i].name, gc_binary, 2, in, &cases[i]);
		fv_tensor_free(in[0]);
		fv_tensor_free(in[1]);
	}
}

Test(binary, gradcheck_same_shape)
{
	gradcheck_shapes(2, (int64_t[]){3, 4}, 2, (int64_t[]){3, 4});
}

Test(binary, gradcheck_broadcast)
{
	gradcheck_shapes(3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){3, 1});
	gradcheck_shapes(2, (int64_t[]){3, 1}, 3, (int64_t[]){2, 1, 4});
	gradcheck_shapes(0, NULL, 2, (int64_t[]){2, 3});
}

Test(binary, gradcheck_one_side_only)
{
	fv_tensor *in[2] = {gc_input(2, (int64_t[]){2, 3}, 5, -1, 1),
	                    gc_input(1, (int64_t[]){3}, 6, 0.5, 2)};
	in[0]->requires_grad = false;
	bin_case c = {fv_div, "div wrt b"};
	gradcheck(c.name, gc_binary, 2, in, &c);
	cr_assert_null(in[0]->grad, "a does not require grad and must get none");
	fv_tensor_free(in[0]);
	fv_tensor_free(in[1]);
}
