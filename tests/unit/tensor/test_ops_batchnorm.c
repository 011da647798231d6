/*
** test_ops_batchnorm.c: fv_batch_norm3d in training and evaluation, the
** running-statistics update (worked out by hand from torch's documented
** rule: biased variance to normalise, unbiased variance in the running
** average), gradients through the batch statistics by finite differences,
** the fused fv_batch_norm3d_elu against the two ops it replaces, and error
** messages.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

static fv_tensor *vec(int64_t n, const fv_real *v)
{
	int64_t s[1] = {n};
	fv_tensor *t = fv_tensor_new(1, s);
	memcpy(t->data, v, (size_t)n * sizeof(fv_real));
	return t;
}

/* One channel [1, 2, 3, 4]: mean 2.5, biased variance 1.25, unbiased 5/3. */
Test(batchnorm, train_by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {1, 1, 4, 1, 1};
	fv_real xv[4] = {1, 2, 3, 4}, zero = 0, one = 1;
	fv_tensor *x = fv_ctx_from_data(ctx, 5, s, xv);
	fv_tensor *rm = vec(1, &zero), *rv = vec(1, &one), *nbt = vec(1, &zero);
	fv_tensor *y = fv_batch_norm3d(ctx, x, NULL, NULL, rm, rv, nbt, true, 0.1, 1e-5);
	cr_assert_not_null(y, "%s", fv_errmsg());
	for (int i = 0; i < 4; i++)
		cr_assert_float_eq(y->data[i], (xv[i] - 2.5) / sqrt(1.25 + 1e-5), 1e-5, "[%d]", i);
	cr_assert_float_eq(rm->data[0], 0.25, 1e-6);
	cr_assert_float_eq(rv->data[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
	cr_assert_float_eq(nbt->data[0], 1, 0);
	/* a second step moves the running stats again */
	y = fv_batch_norm3d(ctx, x, NULL, NULL, rm, rv, nbt, true, 0.1, 1e-5);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_float_eq(rm->data[0], 0.9 * 0.25 + 0.25, 1e-6);
	cr_assert_float_eq(nbt->data[0], 2, 0);
	fv_tensor_free(rm);
	fv_tensor_free(rv);
	fv_tensor_free(nbt);
	fv_ctx_free(ctx);
}

/* Two channels, affine, over a batch of 2: stats per channel across n. */
Test(batchnorm, channels_are_separate)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {2, 2, 1, 1, 2};
	/* channel 0: 1, 3, 5, 7 (mean 4, var 5); channel 1: 10, 10, 12, 12 (mean 11, var 1) */
	fv_real xv[8] = {1, 3, 10, 10, 5, 7, 12, 12};
	fv_real wv[2] = {2, 3}, bv[2] = {1, -1}, z[2] = {0, 0}, o[2] = {1, 1};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, s, xv), *w = vec(2, wv), *b = vec(2, bv);
	fv_tensor *rm = vec(2, z), *rv = vec(2, o);
	fv_tensor *y = fv_batch_norm3d(ctx, x, w, b, rm, rv, NULL, true, 0.5, 0);
	cr_assert_not_null(y, "%s", fv_errmsg());
	double want[8] = {2 * (1 - 4) / sqrt(5.0) + 1, 2 * (3 - 4) / sqrt(5.0) + 1, 3 * -1.0 - 1, 3 * -1.0 - 1,
	                  2 * (5 - 4) / sqrt(5.0) + 1, 2 * (7 - 4) / sqrt(5.0) + 1, 3 * 1.0 - 1, 3 * 1.0 - 1};
	for (int i = 0; i < 8; i++)
		cr_assert_float_eq(y->data[i], want[i], 1e-5, "[%d]", i);
	cr_assert_float_eq(rm->data[0], 2.0, 1e-6);
	cr_assert_float_eq(rm->data[1], 5.5, 1e-6);
	cr_assert_float_eq(rv->data[0], 0.5 + 0.5 * 20.0 / 3.0, 1e-5);
	cr_assert_float_eq(rv->data[1], 0.5 + 0.5 * 4.0 / 3.0, 1e-5);
	fv_tensor_free(w);
	fv_tensor_free(b);
	fv_tensor_free(rm);
	fv_tensor_free(rv);
	fv_ctx_free(ctx);
}

Test(batchnorm, eval_uses_running_stats)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {1, 1, 3, 1, 1};
	fv_real xv[3] = {1, 3, 5}, m = 1, v = 4, wv = 2, bv = 0.5, zero = 0;
	fv_tensor *x = fv_ctx_from_data(ctx, 5, s, xv);
	fv_tensor *rm = vec(1, &m), *rv = vec(1, &v), *w = vec(1, &wv), *b = vec(1, &bv), *nbt = vec(1, &zero);
	fv_tensor *y = fv_batch_norm3d(ctx, x, w, b, rm, rv, nbt, false, 0.1, 0);
	cr_assert_not_null(y, "%s", fv_errmsg());
	for (int i = 0; i < 3; i++)
		cr_assert_float_eq(y->data[i], (xv[i] - 1) / 2 * 2 + 0.5, 1e-6, "[%d]", i);
	cr_assert_float_eq(rm->data[0], 1, 0);
	cr_assert_float_eq(rv->data[0], 4, 0);
	cr_assert_float_eq(nbt->data[0], 0, 0);
	/* without running stats even eval normalises with the batch */
	y = fv_batch_norm3d(ctx, x, NULL, NULL, NULL, NULL, NULL, false, 0.1, 0);
	cr_assert_float_eq(y->data[0], -2 / sqrt(8.0 / 3.0), 1e-5);
	fv_tensor_free(rm);
	fv_tensor_free(rv);
	fv_tensor_free(w);
	fv_tensor_free(b);
	fv_tensor_free(nbt);
	fv_ctx_free(ctx);
}

typedef struct bn_ud {
	bool training;
	fv_tensor *rm, *rv;
} bn_ud;

static fv_tensor *bn_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud_)
{
	bn_ud *ud = ud_;
	/* running stats are updated on every call; gradients do not depend on
	** them in training, and in eval they are left alone */
	return fv_batch_norm3d(ctx, in[0], in[1], in[2], ud->rm, ud->rv, NULL, ud->training, 0.1,
	                       1e-3);
}

/* Finite-difference checks of `fn` (x, weight, bias) in training and in
** evaluation, inputs drawn from seed on; then for x alone when `x_only`. */
static void bn_gradchecks(const char *name, gc_fn fn, uint64_t seed, bool x_only)
{
	int64_t xs[5] = {2, 3, 2, 2, 3}, cs[1] = {3};
	fv_tensor *in[3] = {gc_input(5, xs, seed, -2, 2), gc_input(1, cs, seed + 1, 0.5, 1.5),
	                    gc_input(1, cs, seed + 2, -1, 1)};
	fv_tensor *rm = gc_input(1, cs, seed + 3, -0.5, 0.5), *rv = gc_input(1, cs, seed + 4, 0.5, 2);
	rm->requires_grad = rv->requires_grad = false;
	bn_ud train = {true, rm, rv}, eval = {false, rm, rv};
	char what[96];
	snprintf(what, sizeof what, "%s train", name);
	gradcheck(what, fn, 3, in, &train);
	snprintf(what, sizeof what, "%s eval", name);
	gradcheck(what, fn, 3, in, &eval);
	if (x_only) {
		in[1]->requires_grad = in[2]->requires_grad = false;
		snprintf(what, sizeof what, "%s train, x only", name);
		gradcheck(what, fn, 3, in, &train);
	}
	for (int i = 0; i < 3; i++)
		fv_tensor_free(in[i]);
	fv_tensor_free(rm);
	fv_tensor_free(rv);
}

Test(batchnorm, gradcheck)
{
	bn_gradchecks("batch_norm3d", bn_fn, 1, true);
}

#ifdef FV_REAL_DOUBLE
static fv_tensor *bn_elu_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud_)
{
	bn_ud *ud = ud_;
	return fv_batch_norm3d_elu(ctx, in[0], in[1], in[2], ud->rm, ud->rv, NULL, ud->training,
	                           0.1, 1e-3, 0.7);
}

/* In float64 only: float32's 1e-2 step moves some of the normalised values
** across the ELU's kink, where differences are not derivatives (the float32
** build is checked against the composition instead, exactly). */
Test(batchnorm, fused_elu_gradcheck)
{
	bn_gradchecks("batch_norm3d_elu", bn_elu_fn, 11, false);
}
#endif

/* Output, every gradient and the running statistics of one pass, fused or
** composed; the loss weights the output with a fixed pattern. */
static void bn_elu_pass(bool fused, bool training, fv_real *out, fv_real *grads, fv_real *stats)
{
	int64_t xs[5] = {3, 4, 5, 3, 7}, cs[1] = {4};
	fv_tensor *x = gc_input(5, xs, 21, -3, 3), *w = gc_input(1, cs, 22, 0.5, 1.5);
	fv_tensor *b = gc_input(1, cs, 23, -1, 1), *rm = gc_input(1, cs, 24, -0.5, 0.5);
	fv_tensor *rv = gc_input(1, cs, 25, 0.5, 2), *nbt = vec(1, (fv_real[]){0});
	rm->requires_grad = rv->requires_grad = nbt->requires_grad = false;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = fused ? fv_batch_norm3d_elu(ctx, x, w, b, rm, rv, nbt, training, 0.1, 1e-5, 1.3)
	                     : fv_elu(ctx, fv_batch_norm3d(ctx, x, w, b, rm, rv, nbt, training, 0.1,
	                                                   1e-5), 1.3);
	cr_assert_not_null(y, "%s", fv_errmsg());
	fv_tensor *c = fv_ctx_empty(ctx, y->ndim, y->shape);
	for (int64_t i = 0; i < c->numel; i++)
		c->data[i] = (fv_real)cos(0.3 * (double)i);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_mul(ctx, y, c))), FV_OK, "%s", fv_errmsg());
	memcpy(out, y->data, (size_t)y->numel * sizeof *out);
	memcpy(grads, x->grad->data, (size_t)x->numel * sizeof *grads);
	memcpy(grads + x->numel, w->grad->data, 4 * sizeof *grads);
	memcpy(grads + x->numel + 4, b->grad->data, 4 * sizeof *grads);
	memcpy(stats, rm->data, 4 * sizeof *stats);
	memcpy(stats + 4, rv->data, 4 * sizeof *stats);
	stats[8] = nbt->data[0];
	fv_ctx_free(ctx);
	fv_tensor *all[6] = {x, w, b, rm, rv, nbt};
	for (int i = 0; i < 6; i++)
		fv_tensor_free(all[i]);
}

Test(batchnorm, fused_elu_is_the_composition_exactly)
{
	enum { N = 3 * 4 * 5 * 3 * 7 };
	static fv_real out[2][N], grads[2][N + 8], stats[2][9];
	for (int training = 0; training < 2; training++) {
		for (int fused = 0; fused < 2; fused++)
			bn_elu_pass(fused, training, out[fused], grads[fused], stats[fused]);
		int negative = 0;
		for (int i = 0; i < N; i++) {
			cr_assert_eq(out[1][i], out[0][i], "output[%d]: %g against %g", i,
			             (double)out[1][i], (double)out[0][i]);
			negative += out[0][i] < 0;
		}
		cr_assert_gt(negative, N / 5, "both branches of the ELU are used");
		for (int i = 0; i < N + 8; i++)
			cr_assert_eq(grads[1][i], grads[0][i], "gradient %d: %g against %g", i,
			             (double)grads[1][i], (double)grads[0][i]);
		for (int i = 0; i < 9; i++)
			cr_assert_eq(stats[1][i], stats[0][i], "running statistic %d", i);
	}
}

static fv_tensor *bn_plain(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	(void)ud;
	return fv_batch_norm3d(ctx, in[0], NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-3);
}

Test(batchnorm, gradcheck_without_affine)
{
	int64_t xs[5] = {3, 2, 2, 1, 2};
	fv_tensor *x = gc_input(5, xs, 9, -2, 2);
	gradcheck("batch_norm3d (affine=False)", bn_plain, 1, &x, NULL);
	fv_tensor_free(x);
}

static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(batchnorm, errors)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s5[5] = {2, 3, 2, 2, 2}, s4[4] = {3, 2, 2, 2}, c2[1] = {2}, c3[1] = {3}, one[5] = {1, 3, 1, 1, 1};
	fv_tensor *x = fv_ctx_zeros(ctx, 5, s5), *w2 = fv_ctx_zeros(ctx, 1, c2), *r3 = fv_ctx_zeros(ctx, 1, c3);
	expect_error(fv_batch_norm3d(ctx, fv_ctx_zeros(ctx, 4, s4), NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
	             "fv_batch_norm3d: x must be (N, C, T, H, W); got shape (3, 2, 2, 2)");
	expect_error(fv_batch_norm3d(ctx, x, w2, NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
	             "weight must be (3) for x (2, 3, 2, 2, 2); got shape (2)");
	expect_error(fv_batch_norm3d(ctx, x, NULL, w2, NULL, NULL, NULL, true, 0.1, 1e-5), "bias must be (3)");
	expect_error(fv_batch_norm3d(ctx, x, NULL, NULL, w2, r3, NULL, true, 0.1, 1e-5), "running_mean must be (3)");
	expect_error(fv_batch_norm3d(ctx, x, NULL, NULL, r3, NULL, NULL, false, 0.1, 1e-5),
	             "running_mean and running_var must be given together");
	expect_error(fv_batch_norm3d(ctx, fv_ctx_zeros(ctx, 5, one), NULL, NULL, r3, r3, NULL, true, 0.1, 1e-5),
	             "expected more than 1 value per channel when training, got x of shape (1, 3, 1, 1, 1)");
	/* a single value per channel is fine in eval with running stats */
	cr_assert_not_null(fv_batch_norm3d(ctx, fv_ctx_zeros(ctx, 5, one), NULL, NULL, r3, fv_ctx_full(ctx, 1, c3, 1),
	                                   NULL, false, 0.1, 1e-5), "%s", fv_errmsg());
	expect_error(fv_batch_norm3d_elu(ctx, x, NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, 0),
	             "fv_batch_norm3d_elu: alpha must be > 0 (got 0)");
	fv_ctx_free(ctx);
}
