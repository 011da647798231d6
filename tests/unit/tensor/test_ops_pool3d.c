/*
** test_ops_pool3d.c: fv_avg_pool3d and fv_max_pool3d against hand-computed
** values and a direct loop written here (torch's ceil_mode=False windows),
** their gradients by finite differences, and their error messages.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

static fv_tensor *make(fv_ctx *ctx, int ndim, const int64_t *shape, const fv_real *v)
{
	fv_tensor *t = fv_ctx_from_data(ctx, ndim, shape, v);
	cr_assert_not_null(t);
	return t;
}

Test(pool3d, box_by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {1, 1, 2, 2, 2};
	fv_real v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	fv_tensor *x = make(ctx, 5, s, v);
	fv_pool3d_params p = {.kernel = {2, 2, 2}, .count_include_pad = true};
	fv_tensor *a = fv_avg_pool3d(ctx, x, &p), *m = fv_max_pool3d(ctx, x, &p);
	cr_assert_not_null(a, "%s", fv_errmsg());
	cr_assert_not_null(m, "%s", fv_errmsg());
	cr_assert_eq(a->numel, 1);
	cr_assert_float_eq(a->data[0], 4.5, 1e-6);
	cr_assert_float_eq(m->data[0], 8, 1e-6);
	fv_ctx_free(ctx);
}

/* [1, 2, 3], kernel 2, stride 2 (the default), padding 1: windows
** {pad, 1} and {2, 3}.  Including padding the first averages to 0.5,
** excluding it to 1. */
Test(pool3d, avg_padding_divisor)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {1, 1, 1, 1, 3};
	fv_real v[3] = {1, 2, 3};
	fv_tensor *x = make(ctx, 5, s, v);
	fv_pool3d_params p = {.kernel = {1, 1, 2}, .pad = {0, 0, 1}, .count_include_pad = true};
	fv_tensor *a = fv_avg_pool3d(ctx, x, &p);
	cr_assert_not_null(a, "%s", fv_errmsg());
	cr_assert_eq(a->shape[4], 2);
	cr_assert_float_eq(a->data[0], 0.5, 1e-6);
	cr_assert_float_eq(a->data[1], 2.5, 1e-6);
	p.count_include_pad = false;
	a = fv_avg_pool3d(ctx, x, &p);
	cr_assert_float_eq(a->data[0], 1.0, 1e-6);
	cr_assert_float_eq(a->data[1], 2.5, 1e-6);
	fv_ctx_free(ctx);
}

/* Padding never wins a max: [-1, -2, -3] padded by one gives -1, not 0.
** Ties send the gradient to the first maximum. */
Test(pool3d, max_padding_and_ties)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {1, 1, 1, 1, 3};
	fv_real v[3] = {-1, -2, -3};
	fv_tensor *x = make(ctx, 5, s, v);
	fv_pool3d_params p = {.kernel = {1, 1, 2}, .pad = {0, 0, 1}};
	fv_tensor *m = fv_max_pool3d(ctx, x, &p);
	cr_assert_not_null(m, "%s", fv_errmsg());
	cr_assert_float_eq(m->data[0], -1, 1e-6);
	cr_assert_float_eq(m->data[1], -2, 1e-6);

	int64_t s2[5] = {1, 1, 1, 1, 4};
	fv_real tie[4] = {2, 2, 5, 5};
	fv_tensor *xt = make(ctx, 5, s2, tie);
	xt->requires_grad = true;
	fv_pool3d_params p2 = {.kernel = {1, 1, 2}};
	fv_tensor *mt = fv_max_pool3d(ctx, xt, &p2);
	int64_t gs[5] = {1, 1, 1, 1, 2};
	fv_real gv[2] = {10, 20};
	cr_assert_eq(fv_backward_with(ctx, mt, make(ctx, 5, gs, gv)), FV_OK, "%s", fv_errmsg());
	fv_real want[4] = {10, 0, 20, 0};
	for (int i = 0; i < 4; i++)
		cr_assert_float_eq(xt->grad->data[i], want[i], 1e-6, "[%d]", i);

	/* a NaN in the window wins, as in torch */
	fv_real nan_in[4] = {1, NAN, 3, 4};
	fv_tensor *mn = fv_max_pool3d(ctx, make(ctx, 5, s2, nan_in), &p2);
	cr_assert(isnan(mn->data[0]));
	cr_assert_float_eq(mn->data[1], 4, 1e-6);
	fv_ctx_free(ctx);
}

/* ---- direct loops ------------------------------------------------------------ */

typedef struct pool_case {
	int64_t shape[5];
	fv_pool3d_params p;
} pool_case;

static void reference(const pool_case *pc, const fv_real *x, bool max, double *y, int64_t *os)
{
	int64_t k[3], s[3], pd[3];
	for (int d = 0; d < 3; d++) {
		k[d] = pc->p.kernel[d];
		s[d] = pc->p.stride[d] ? pc->p.stride[d] : k[d];
		pd[d] = pc->p.pad[d];
		os[d] = (pc->shape[2 + d] + 2 * pd[d] - k[d]) / s[d] + 1;
	}
	int64_t T = pc->shape[2], H = pc->shape[3], W = pc->shape[4], i = 0;
	for (int64_t pl = 0; pl < pc->shape[0] * pc->shape[1]; pl++)
		for (int64_t a = 0; a < os[0]; a++)
			for (int64_t b = 0; b < os[1]; b++)
				for (int64_t c = 0; c < os[2]; c++) {
					double acc = max ? -INFINITY : 0;
					int64_t real = 0;
					for (int64_t u = 0; u < k[0]; u++)
						for (int64_t v = 0; v < k[1]; v++)
							for (int64_t w = 0; w < k[2]; w++) {
								int64_t t = a * s[0] - pd[0] + u, h = b * s[1] - pd[1] + v,
								        ww = c * s[2] - pd[2] + w;
								if (t < 0 || t >= T || h < 0 || h >= H || ww < 0 || ww >= W)
									continue;
								double val = x[((pl * T + t) * H + h) * W + ww];
								real++;
								acc = max ? fmax(acc, val) : acc + val;
							}
					if (!max)
						acc /= pc->p.count_include_pad ? (double)(k[0] * k[1] * k[2]) : (double)real;
					y[i++] = acc;
				}
}

Test(pool3d, matches_direct_loops)
{
	pool_case cases[] = {
		{{2, 3, 5, 6, 7}, {.kernel = {2, 3, 2}, .count_include_pad = true}},
		{{1, 2, 6, 7, 8}, {.kernel = {3, 3, 3}, .stride = {1, 2, 2}, .pad = {1, 1, 0}, .count_include_pad = true}},
		{{1, 2, 6, 7, 8}, {.kernel = {3, 2, 4}, .stride = {2, 1, 3}, .pad = {1, 1, 2}}},
		{{2, 1, 4, 5, 5}, {.kernel = {1, 2, 2}, .stride = {1, 1, 1}, .pad = {0, 1, 1}, .count_include_pad = true}},
	};
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		const pool_case *pc = &cases[ci];
		fv_tensor *x = fv_tensor_new(5, pc->shape);
		gc_fill_uniform(x, 10 + ci, -2, 2);
		fv_ctx *ctx = fv_ctx_new();
		for (int mx = 0; mx < 2; mx++) {
			fv_tensor *y = mx ? fv_max_pool3d(ctx, x, &pc->p) : fv_avg_pool3d(ctx, x, &pc->p);
			cr_assert_not_null(y, "%s", fv_errmsg());
			double *ref = calloc((size_t)y->numel, sizeof(double));
			int64_t os[3];
			reference(pc, x->data, mx, ref, os);
			for (int d = 0; d < 3; d++)
				cr_assert_eq(y->shape[2 + d], os[d], "case %zu dim %d", ci, d);
			for (int64_t i = 0; i < y->numel; i++)
				cr_assert(fabs(y->data[i] - ref[i]) < 1e-5, "case %zu %s [%lld]: %g vs %g", ci,
				          mx ? "max" : "avg", (long long)i, (double)y->data[i], ref[i]);
			free(ref);
		}
		fv_ctx_free(ctx);
		fv_tensor_free(x);
	}
}

/* ---- gradients -------------------------------------------------------------------- */

static fv_tensor *avg_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_avg_pool3d(ctx, in[0], ud);
}

static fv_tensor *max_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_max_pool3d(ctx, in[0], ud);
}

Test(pool3d, gradcheck)
{
	int64_t s[5] = {2, 2, 4, 5, 5};
	fv_tensor *x = gc_input(5, s, 3, -1, 1);
	fv_pool3d_params p = {.kernel = {2, 3, 3}, .stride = {1, 2, 1}, .pad = {1, 1, 1}, .count_include_pad = true};
	gradcheck("avg_pool3d", avg_fn, 1, &x, &p);
	p.count_include_pad = false;
	gradcheck("avg_pool3d (exclude pad)", avg_fn, 1, &x, &p);
	/* distinct values 0.1 apart, so a finite-difference step never changes
	** the winner */
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(0.1 * (double)((i * 37) % x->numel));
	gradcheck("max_pool3d", max_fn, 1, &x, &p);
	fv_tensor_free(x);
}

Test(pool3d, unbatched_input)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[4] = {2, 2, 2, 2};
	fv_tensor *x = fv_ctx_full(ctx, 4, s, 3);
	fv_pool3d_params p = {.kernel = {2, 2, 2}};
	fv_tensor *y = fv_avg_pool3d(ctx, x, &p);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_eq(y->ndim, 4);
	cr_assert_eq(y->shape[0], 2);
	cr_assert_float_eq(y->data[1], 3, 1e-6);
	fv_ctx_free(ctx);
}

static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(pool3d, errors)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s3[3] = {4, 4, 4}, s5[5] = {1, 2, 3, 4, 4};
	fv_tensor *x3 = fv_ctx_zeros(ctx, 3, s3), *x = fv_ctx_zeros(ctx, 5, s5);
	fv_pool3d_params p = {.kernel = {2, 2, 2}};
	expect_error(fv_avg_pool3d(ctx, x3, &p), "fv_avg_pool3d: input x must be (N, C, T, H, W) or (C, T, H, W); got shape (4, 4, 4)");
	expect_error(fv_max_pool3d(ctx, x, NULL), "fv_max_pool3d: no parameters");
	fv_pool3d_params zero = {.kernel = {0, 2, 2}};
	expect_error(fv_max_pool3d(ctx, x, &zero), "kernel (0, 2, 2)");
	fv_pool3d_params bigpad = {.kernel = {2, 2, 2}, .pad = {0, 2, 0}};
	expect_error(fv_avg_pool3d(ctx, x, &bigpad), "padding (0, 2, 0) must be at most half of the kernel (2, 2, 2)");
	fv_pool3d_params big = {.kernel = {4, 2, 2}};
	expect_error(fv_max_pool3d(ctx, x, &big), "kernel (4, 2, 2) is larger than the padded input");
	cr_assert_not_null(strstr(fv_errmsg(), "(1, 2, 3, 4, 4)"), "%s", fv_errmsg());
	fv_error(FV_ERR_ARG, "earlier");
	cr_assert_null(fv_avg_pool3d(ctx, NULL, &p));
	cr_assert_str_eq(fv_errmsg(), "earlier");
	fv_ctx_free(ctx);
}
