/*
** test_ops_grid_sample.c: fv_grid_sample (bilinear, zero padding) against
** hand-computed values and an independent formulation: bilinear sampling
** with zero padding is the sum over all pixels of value times the tent
** weights max(0, 1 - |ix - x|) * max(0, 1 - |iy - y|).  Gradients by
** finite differences, on grid points kept away from pixel boundaries
** (where the sampling is not differentiable) but including points half
** and wholly outside the input.
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

/* input [[1, 2], [3, 4]] is the plane f(x, y) = 1 + x + 2y. */
Test(grid_sample, by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t is[4] = {1, 1, 2, 2}, gs[4] = {1, 1, 4, 2};
	fv_real iv[4] = {1, 2, 3, 4};
	fv_real gv[8] = {0, 0, -1, -1, 1, 1, 0.5, -0.5};
	fv_tensor *in = make(ctx, 4, is, iv), *grid = make(ctx, 4, gs, gv);
	fv_tensor *a = fv_grid_sample(ctx, in, grid, true);
	cr_assert_not_null(a, "%s", fv_errmsg());
	cr_assert_eq(a->shape[2], 1);
	cr_assert_eq(a->shape[3], 4);
	/* align_corners: -1 and 1 are the corner pixel centres */
	cr_assert_float_eq(a->data[0], 2.5, 1e-6);
	cr_assert_float_eq(a->data[1], 1.0, 1e-6);
	cr_assert_float_eq(a->data[2], 4.0, 1e-6);
	cr_assert_float_eq(a->data[3], 2.25, 1e-6); /* x = 0.75, y = 0.25 */
	fv_tensor *b = fv_grid_sample(ctx, in, grid, false);
	cr_assert_not_null(b, "%s", fv_errmsg());
	/* without: -1 is the outer edge, half a pixel beyond the first centre,
	** so a quarter of pixel (0, 0) and three quarters of zero padding */
	cr_assert_float_eq(b->data[0], 2.5, 1e-6);
	cr_assert_float_eq(b->data[1], 0.25, 1e-6);
	cr_assert_float_eq(b->data[2], 1.0, 1e-6); /* 4 / 4 */
	/* x = ((1.5 * 2) - 1) / 2 = 1, y = (0.5 * 2 - 1) / 2 = 0: pixel (0, 1) */
	cr_assert_float_eq(b->data[3], 2.0, 1e-6);
	fv_ctx_free(ctx);
}

static double unnorm(double c, int64_t size, bool align)
{
	return align ? (c + 1) / 2 * (double)(size - 1) : ((c + 1) * (double)size - 1) / 2;
}

static double tent(double d)
{
	return fmax(0.0, 1.0 - fabs(d));
}

Test(grid_sample, matches_tent_sum)
{
	int64_t N = 2, C = 3, H = 5, W = 7, Ho = 4, Wo = 6;
	int64_t is[4] = {N, C, H, W}, gs[4] = {N, Ho, Wo, 2};
	fv_tensor *in = fv_tensor_new(4, is), *grid = fv_tensor_new(4, gs);
	gc_fill_uniform(in, 1, -1, 1);
	gc_fill_uniform(grid, 2, -1.3, 1.3); /* some points outside */
	for (int align = 0; align < 2; align++) {
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *out = fv_grid_sample(ctx, in, grid, align);
		cr_assert_not_null(out, "%s", fv_errmsg());
		for (int64_t n = 0; n < N; n++)
			for (int64_t p = 0; p < Ho * Wo; p++) {
				double ix = unnorm(grid->data[(n * Ho * Wo + p) * 2], W, align);
				double iy = unnorm(grid->data[(n * Ho * Wo + p) * 2 + 1], H, align);
				for (int64_t c = 0; c < C; c++) {
					double want = 0;
					for (int64_t y = 0; y < H; y++)
						for (int64_t x = 0; x < W; x++)
							want += in->data[((n * C + c) * H + y) * W + x] * tent(ix - (double)x) *
							        tent(iy - (double)y);
					double got = out->data[(n * C + c) * Ho * Wo + p];
					cr_assert(fabs(got - want) < 1e-5, "align %d n %lld c %lld p %lld: %g vs %g",
					          align, (long long)n, (long long)c, (long long)p, got, want);
				}
			}
		fv_ctx_free(ctx);
	}
	fv_tensor_free(in);
	fv_tensor_free(grid);
}

typedef struct gs_ud {
	bool align;
} gs_ud;

static fv_tensor *gs_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_grid_sample(ctx, in[0], in[1], ((gs_ud *)ud)->align);
}

/* Grid coordinates whose pixel positions are k + f with f in [0.25, 0.75],
** k from -2 (wholly outside) to size (partly outside on the far side). */
static void fill_safe_grid(fv_tensor *grid, int64_t H, int64_t W, bool align)
{
	uint64_t s = 77;
	for (int64_t i = 0; i < grid->numel; i++) {
		int64_t size = i % 2 ? H : W;
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		int64_t k = (int64_t)((s >> 33) % (uint64_t)(size + 3)) - 2;
		double f = 0.25 + 0.5 * (double)((s >> 11) & 0xffff) / 65536.0;
		double pix = (double)k + f;
		grid->data[i] = (fv_real)(align ? pix / (double)(size - 1) * 2 - 1
		                                 : (2 * pix + 1) / (double)size - 1);
	}
}

Test(grid_sample, gradcheck)
{
	int64_t H = 4, W = 5;
	int64_t is[4] = {2, 2, H, W}, gs[4] = {2, 3, 4, 2};
	for (int align = 0; align < 2; align++) {
		fv_tensor *in[2] = {gc_input(4, is, 5, -1, 1), gc_input(4, gs, 6, -1, 1)};
		fill_safe_grid(in[1], H, W, align);
		gs_ud ud = {align};
		gradcheck(align ? "grid_sample (align_corners)" : "grid_sample", gs_fn, 2, in, &ud);
		fv_tensor_free(in[0]);
		fv_tensor_free(in[1]);
	}
}

static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(grid_sample, errors)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t is[4] = {2, 3, 4, 5}, i3[3] = {3, 4, 5}, g_ok[4] = {2, 6, 6, 2}, g3[4] = {2, 6, 6, 3},
	        g_n[4] = {1, 6, 6, 2};
	fv_tensor *in = fv_ctx_zeros(ctx, 4, is);
	cr_assert_not_null(fv_grid_sample(ctx, in, fv_ctx_zeros(ctx, 4, g_ok), false), "%s", fv_errmsg());
	expect_error(fv_grid_sample(ctx, fv_ctx_zeros(ctx, 3, i3), fv_ctx_zeros(ctx, 4, g_ok), false),
	             "fv_grid_sample: input must be (N, C, H, W); got shape (3, 4, 5)");
	expect_error(fv_grid_sample(ctx, in, fv_ctx_zeros(ctx, 4, g3), false),
	             "grid must be (N, Ho, Wo, 2); got shape (2, 6, 6, 3)");
	expect_error(fv_grid_sample(ctx, in, fv_ctx_zeros(ctx, 4, g_n), true),
	             "grid (1, 6, 6, 2) and input (2, 3, 4, 5) differ in batch size");
	fv_ctx_free(ctx);
}
