/*
** test_ops_dropout.c: fv_dropout and fv_dropout3d: identity out of
** training, every output either 0 or x / (1 - p), the kept fraction near
** 1 - p, whole channels for Dropout3d, seeded repeatability, the backward
** using the forward's mask, and the error messages.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

Test(dropout, identity_out_of_training)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[2] = {3, 4};
	fv_tensor *x = fv_ctx_full(ctx, 2, s, 2);
	cr_assert_eq(fv_dropout(ctx, x, 0.5, false), x);
	cr_assert_eq(fv_dropout(ctx, x, 0.0, true), x);
	int64_t s5[5] = {1, 2, 1, 1, 1};
	fv_tensor *x5 = fv_ctx_full(ctx, 5, s5, 2);
	cr_assert_eq(fv_dropout3d(ctx, x5, 0.5, false), x5);
	fv_ctx_free(ctx);
}

Test(dropout, elements_scaled_or_zero)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_seed(ctx, 123);
	int64_t s[1] = {100000};
	fv_tensor *x = fv_ctx_full(ctx, 1, s, 3);
	double p = 0.3;
	fv_tensor *y = fv_dropout(ctx, x, p, true);
	cr_assert_not_null(y, "%s", fv_errmsg());
	int64_t kept = 0;
	for (int64_t i = 0; i < y->numel; i++) {
		if (y->data[i] != 0) {
			cr_assert_float_eq(y->data[i], 3 / (1 - p), 1e-5);
			kept++;
		}
	}
	/* binomial: sd = sqrt(n p (1-p)) ~ 145 elements, allow 5 sd */
	cr_assert(fabs((double)kept - 70000) < 725, "kept %lld of 100000", (long long)kept);
	fv_ctx_free(ctx);
}

Test(dropout, seeded_repeatability)
{
	int64_t s[1] = {64};
	fv_ctx *a = fv_ctx_new(), *b = fv_ctx_new();
	fv_ctx_seed(a, 7);
	fv_ctx_seed(b, 7);
	fv_tensor *ya = fv_dropout(a, fv_ctx_full(a, 1, s, 1), 0.5, true);
	fv_tensor *yb = fv_dropout(b, fv_ctx_full(b, 1, s, 1), 0.5, true);
	cr_assert(memcmp(ya->data, yb->data, 64 * sizeof(fv_real)) == 0);
	fv_ctx_seed(b, 8);
	yb = fv_dropout(b, fv_ctx_full(b, 1, s, 1), 0.5, true);
	cr_assert(memcmp(ya->data, yb->data, 64 * sizeof(fv_real)) != 0);
	fv_ctx_free(a);
	fv_ctx_free(b);
}

Test(dropout, backward_uses_the_mask)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[1] = {1000};
	fv_tensor *x = fv_tensor_new(1, s);
	gc_fill_uniform(x, 3, 1, 2); /* never zero */
	x->requires_grad = true;
	fv_tensor *y = fv_dropout(ctx, x, 0.25, true);
	fv_tensor *g = fv_ctx_empty(ctx, 1, s);
	gc_fill_uniform(g, 4, -1, 1);
	cr_assert_eq(fv_backward_with(ctx, y, g), FV_OK, "%s", fv_errmsg());
	for (int64_t i = 0; i < 1000; i++) {
		double want = y->data[i] == 0 ? 0 : g->data[i] / 0.75;
		cr_assert_float_eq(x->grad->data[i], want, 1e-5, "[%lld]", (long long)i);
	}
	fv_tensor_free(x);
	fv_ctx_free(ctx);
}

Test(dropout, p_one_zeroes_everything)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[1] = {50};
	fv_tensor *y = fv_dropout(ctx, fv_ctx_full(ctx, 1, s, 5), 1.0, true);
	cr_assert_not_null(y, "%s", fv_errmsg());
	for (int64_t i = 0; i < 50; i++)
		cr_assert_eq(y->data[i], 0);
	fv_ctx_free(ctx);
}

Test(dropout, dropout3d_whole_channels)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_seed(ctx, 5);
	int64_t s[5] = {20, 30, 2, 3, 4};
	fv_tensor *x = fv_ctx_full(ctx, 5, s, 1);
	fv_tensor *y = fv_dropout3d(ctx, x, 0.5, true);
	cr_assert_not_null(y, "%s", fv_errmsg());
	int64_t vol = 24, dropped = 0;
	for (int64_t ch = 0; ch < 600; ch++) {
		fv_real first = y->data[ch * vol];
		cr_assert(first == 0 || fabs(first - 2) < 1e-6, "channel %lld: %g", (long long)ch, (double)first);
		for (int64_t i = 1; i < vol; i++)
			cr_assert_eq(y->data[ch * vol + i], first, "channel %lld is not uniform", (long long)ch);
		dropped += first == 0;
	}
	cr_assert(dropped > 240 && dropped < 360, "dropped %lld of 600 channels", (long long)dropped);
	/* unbatched (C, T, H, W): channels are the first dim */
	int64_t s4[4] = {40, 2, 2, 2};
	fv_tensor *y4 = fv_dropout3d(ctx, fv_ctx_full(ctx, 4, s4, 1), 0.5, true);
	cr_assert_not_null(y4, "%s", fv_errmsg());
	for (int64_t ch = 0; ch < 40; ch++)
		for (int64_t i = 1; i < 8; i++)
			cr_assert_eq(y4->data[ch * 8 + i], y4->data[ch * 8]);
	fv_ctx_free(ctx);
}

static fv_tensor *drop_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	/* every fresh context starts from the same seed: the same mask */
	return *(int *)ud ? fv_dropout3d(ctx, in[0], 0.4, true) : fv_dropout(ctx, in[0], 0.4, true);
}

Test(dropout, gradcheck)
{
	int64_t s[5] = {2, 3, 2, 2, 2};
	fv_tensor *x = gc_input(5, s, 1, -1, 1);
	int three_d = 0;
	gradcheck("dropout", drop_fn, 1, &x, &three_d);
	three_d = 1;
	gradcheck("dropout3d", drop_fn, 1, &x, &three_d);
	fv_tensor_free(x);
}

static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(dropout, errors)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[3] = {2, 2, 2};
	fv_tensor *x = fv_ctx_zeros(ctx, 3, s);
	expect_error(fv_dropout(ctx, x, 1.5, true),
	             "fv_dropout: dropout probability has to be between 0 and 1, but got 1.5");
	expect_error(fv_dropout(ctx, x, -0.1, false), "but got -0.1");
	expect_error(fv_dropout(ctx, x, NAN, true), "but got nan");
	expect_error(fv_dropout3d(ctx, x, 0.5, true),
	             "fv_dropout3d: x must be (N, C, T, H, W) or (C, T, H, W); got shape (2, 2, 2)");
	fv_ctx_free(ctx);
}
