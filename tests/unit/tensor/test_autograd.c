/*
** test_autograd.c: the tape as the ops use it: accumulation, no-grad mode,
** gradients of context tensors, shared sub-expressions, fv_backward's
** errors, NULL propagation through chains of ops, a training-like loop
** that stops allocating once its arena has grown, and ops that set a
** gradient the tape hands them unset.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/tensor.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

static fv_tensor *param(int64_t n, const fv_real *v)
{
	fv_tensor *t = fv_tensor_new(1, (int64_t[]){n});
	memcpy(t->data, v, (size_t)n * sizeof *v);
	t->requires_grad = true;
	return t;
}

static void expect_grad(const fv_tensor *t, const double *want)
{
	cr_assert_not_null(t->grad, "no gradient");
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert(fabs(t->grad->data[i] - want[i]) <= TOL * (1 + fabs(want[i])),
		          "grad[%lld] = %.10g, expected %.10g", (long long)i,
		          (double)t->grad->data[i], want[i]);
}

/* L = sum(x * x) */
static fv_tensor *sum_squares(fv_ctx *ctx, fv_tensor *x)
{
	return fv_sum_all(ctx, fv_mul(ctx, x, x));
}

Test(autograd, gradients_accumulate_across_backward_calls)
{
	fv_tensor *x = param(3, (fv_real[]){1, -2, 3});
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *l = sum_squares(ctx, x);
	cr_assert_eq(fv_backward(ctx, l), FV_OK, "%s", fv_errmsg());
	expect_grad(x, (double[]){2, -4, 6});
	/* a second pass over the same tape adds again, as do passes in later steps */
	cr_assert_eq(fv_backward(ctx, l), FV_OK);
	expect_grad(x, (double[]){4, -8, 12});
	fv_ctx_reset(ctx);
	cr_assert_eq(fv_backward(ctx, sum_squares(ctx, x)), FV_OK);
	expect_grad(x, (double[]){6, -12, 18});
	fv_zero_grad(x);
	expect_grad(x, (double[]){0, 0, 0});
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

/* torch's detach: the same numbers, cut off the tape.  L = sum(x * d)
** with d = detach(x) is x . x, whose gradient through x alone is x. */
Test(autograd, detach_shares_data_and_stops_gradients)
{
	fv_tensor *x = param(3, (fv_real[]){1, -2, 3});
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *d = fv_detach(ctx, x);
	cr_assert_not_null(d, "%s", fv_errmsg());
	cr_assert_eq(d->data, x->data, "a view");
	cr_assert_eq(d->ndim, 1);
	cr_assert_eq(d->shape[0], 3);
	cr_assert(!d->requires_grad);
	fv_tensor *l = fv_sum_all(ctx, fv_mul(ctx, x, d));
	cr_assert(l->requires_grad, "x still does");
	cr_assert_eq(fv_backward(ctx, l), FV_OK, "%s", fv_errmsg());
	expect_grad(x, (double[]){1, -2, 3});
	fv_error(FV_ERR_IO, "first");
	cr_assert_null(fv_detach(ctx, NULL));
	cr_assert_str_eq(fv_errmsg(), "first", "NULL in, NULL out, the cause kept");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(autograd, no_grad_mode_records_nothing)
{
	fv_tensor *x = param(2, (fv_real[]){1, 2});
	fv_ctx *ctx = fv_ctx_new();
	cr_assert(fv_ctx_set_grad_enabled(ctx, false), "grad mode starts enabled");
	fv_tensor *y = sum_squares(ctx, fv_exp(ctx, x));
	cr_assert_not_null(y);
	cr_assert(!y->requires_grad);
	cr_assert_null(y->node);
	cr_assert(fabs(y->data[0] - (exp(2.0) + exp(4.0))) <= TOL * 100, "forward still runs");
	cr_assert_eq(fv_backward(ctx, y), FV_ERR_ARG);
	cr_assert(!fv_ctx_set_grad_enabled(ctx, true));
	cr_assert(fv_ctx_grad_enabled(ctx));
	fv_tensor *z = sum_squares(ctx, x);
	cr_assert(z->requires_grad && z->node != NULL, "recording resumes");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(autograd, gradient_of_a_context_tensor)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *stimulus = fv_ctx_from_data(ctx, 1, (int64_t[]){3}, (fv_real[]){0.5, -1, 2});
	stimulus->requires_grad = true; /* as an MEI optimisation does with its input */
	fv_tensor *w = fv_ctx_from_data(ctx, 1, (int64_t[]){3}, (fv_real[]){3, 4, 5});
	fv_tensor *l = fv_sum_all(ctx, fv_mul(ctx, fv_square(ctx, stimulus), w));
	cr_assert_eq(fv_backward(ctx, l), FV_OK, "%s", fv_errmsg());
	expect_grad(stimulus, (double[]){3, -8, 20});
	cr_assert_null(w->grad, "w does not require grad");
	fv_ctx_free(ctx);
}

Test(autograd, diamond_graph_sums_both_paths)
{
	/* L = sum(sin(x) * x^2): x reaches L along two paths */
	fv_tensor *x = param(3, (fv_real[]){0.3, -1.2, 2});
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *l = fv_sum_all(ctx, fv_mul(ctx, fv_sin(ctx, x), fv_square(ctx, x)));
	cr_assert_eq(fv_backward(ctx, l), FV_OK);
	double want[3];
	for (int i = 0; i < 3; i++) {
		double v = x->data[i];
		want[i] = cos(v) * v * v + sin(v) * 2 * v;
	}
	expect_grad(x, want);
	/* and x used twice by one op */
	fv_zero_grad(x);
	fv_ctx_reset(ctx);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_add(ctx, x, x))), FV_OK);
	expect_grad(x, (double[]){2, 2, 2});
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(autograd, backward_errors)
{
	fv_tensor *x = param(2, (fv_real[]){1, 2});
	fv_ctx *ctx = fv_ctx_new();
	cr_assert_eq(fv_backward(ctx, fv_exp(ctx, x)), FV_ERR_SHAPE);
	cr_assert_str_eq(fv_errmsg(), "fv_backward: the loss has shape (2); a scalar is needed");
	cr_assert_eq(fv_backward(ctx, NULL), FV_ERR_ARG);
	cr_assert_str_eq(fv_errmsg(), "fv_backward: no loss (an earlier op failed?)");
	fv_tensor *c = fv_ctx_full(ctx, 1, (int64_t[]){2}, 1);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_exp(ctx, c))), FV_ERR_ARG);
	cr_assert_str_eq(fv_errmsg(), "fv_backward: the output does not require grad (nothing it "
	                              "depends on requires grad, or grad mode was off)");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(autograd, null_propagates_and_keeps_the_first_message)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 3});
	fv_tensor *b = fv_ctx_zeros(ctx, 2, (int64_t[]){3, 2});
	/* the first failure is the mul; everything after it passes NULL on */
	fv_tensor *l = fv_mean_all(ctx, fv_relu(ctx, fv_matmul(ctx, fv_mul(ctx, a, b), b)));
	cr_assert_null(l);
	cr_assert_str_eq(fv_errmsg(),
	                 "fv_mul: shapes (2, 3) and (3, 2) do not broadcast (dim -2: 2 vs 3)");
	cr_assert_eq(fv_backward(ctx, l), FV_ERR_ARG);
	fv_ctx_free(ctx);
}

Test(autograd, shape_errors_name_both_shapes)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 3, (int64_t[]){4, 2, 3});
	fv_tensor *b = fv_ctx_zeros(ctx, 2, (int64_t[]){5, 3});
	cr_assert_null(fv_add(ctx, a, b));
	cr_assert(strstr(fv_errmsg(), "(4, 2, 3)") && strstr(fv_errmsg(), "(5, 3)"), "%s",
	          fv_errmsg());
	cr_assert_null(fv_matmul(ctx, a, b));
	cr_assert(strstr(fv_errmsg(), "(4, 2, 3)") && strstr(fv_errmsg(), "(5, 3)"), "%s",
	          fv_errmsg());
	fv_ctx_free(ctx);
}

/* One step of a small regression: y = softplus(x W + bias), Poisson-like
** loss, plain SGD on W and bias.  The batch is copied into the context, as
** a data loader's would be. */
static double train_step(fv_ctx *ctx, const fv_tensor *data, fv_tensor *target, fv_tensor *w,
                         fv_tensor *bias)
{
	fv_zero_grad(w);
	fv_zero_grad(bias);
	fv_tensor *x = fv_ctx_from_data(ctx, data->ndim, data->shape, data->data);
	fv_tensor *y = fv_softplus(ctx, fv_add(ctx, fv_matmul(ctx, x, w), bias), 1, 20);
	fv_tensor *l = fv_mean_all(ctx, fv_sub(ctx, y, fv_mul(ctx, target, fv_log(ctx, y))));
	cr_assert_not_null(l, "%s", fv_errmsg());
	cr_assert_eq(fv_backward(ctx, l), FV_OK, "%s", fv_errmsg());
	double loss = l->data[0];
	fv_tensor *params[2] = {w, bias};
	for (int p = 0; p < 2; p++)
		for (int64_t i = 0; i < params[p]->numel; i++)
			params[p]->data[i] -= (fv_real)0.1 * params[p]->grad->data[i];
	fv_ctx_reset(ctx);
	return loss;
}

Test(autograd, steady_state_does_not_allocate)
{
	/* a batch of 1 MB or more: the first step has to grow the arena */
	int64_t sx[2] = {256, 1024}, sw[2] = {1024, 40}, sb[1] = {40}, sy[2] = {256, 40};
	fv_tensor *x = fv_tensor_new(2, sx), *target = fv_tensor_new(2, sy);
	fv_tensor *w = fv_tensor_new(2, sw), *bias = fv_tensor_new(1, sb);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)sin((double)i);
	for (int64_t i = 0; i < target->numel; i++)
		target->data[i] = (fv_real)(i % 3);
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(0.01 * cos((double)i));
	w->requires_grad = bias->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	double first = train_step(ctx, x, target, w, bias);
	cr_assert_gt(fv_ctx_malloc_count(ctx), 1, "the first step did not grow the arena");
	train_step(ctx, x, target, w, bias);
	size_t count = fv_ctx_malloc_count(ctx);
	double last = 0;
	for (int it = 0; it < 8; it++)
		last = train_step(ctx, x, target, w, bias);
	cr_assert_eq(fv_ctx_malloc_count(ctx), count, "steps 3..10 allocated %zu more chunks",
	             fv_ctx_malloc_count(ctx) - count);
	cr_assert(last < first, "the loss went down: %g -> %g", first, last);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(target);
	fv_tensor_free(w);
	fv_tensor_free(bias);
}

/* ---- gradients handed over unset ------------------------------------------------- */

#define FRESH_LEAVES 9

/* Values for a leaf: a fixed pattern, the same in every run. */
static fv_tensor *fresh_leaf(fv_ctx *ctx, int ndim, const int64_t *shape, double scale, int salt)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(scale * sin(0.7 * (double)i + salt));
	t->requires_grad = true;
	return t;
}

/* A core layer's chain and a readout on context tensors only, so that
** every gradient the ops receive is new in the pass: separable conv, batch
** norm with a computed shift, broadcast add, sub and mul, ELU, exp, mean,
** max, norm, permute, reshape, slice and matmul. */
static fv_tensor *fresh_graph(fv_ctx *ctx, fv_tensor *leaves[FRESH_LEAVES])
{
	int64_t sx[5] = {2, 3, 6, 7, 7}, swt[3] = {4, 3, 3}, sws[4] = {4, 3, 3, 3};
	int64_t sc[1] = {4}, sb[5] = {1, 4, 1, 1, 1}, sm[2] = {4, 3}, flat[2] = {-1, 4};
	leaves[0] = fresh_leaf(ctx, 5, sx, 1.0, 0);
	leaves[1] = fresh_leaf(ctx, 3, swt, 0.5, 1);
	leaves[2] = fresh_leaf(ctx, 4, sws, 0.5, 2);
	leaves[3] = fresh_leaf(ctx, 1, sc, 0.3, 3); /* norm weight - 1 */
	leaves[4] = fresh_leaf(ctx, 1, sc, 0.2, 4); /* norm bias */
	leaves[5] = fresh_leaf(ctx, 1, sc, 0.4, 5); /* shift added to the bias */
	leaves[6] = fresh_leaf(ctx, 5, sb, 0.3, 6); /* broadcast bias */
	leaves[7] = fresh_leaf(ctx, 5, sb, 0.5, 7); /* broadcast scale */
	leaves[8] = fresh_leaf(ctx, 2, sm, 0.6, 8); /* readout weights */
	fv_conv3d_params p = {.pad = {{1, 1}, {1, 1}, {0, 0}}};
	fv_tensor *y = fv_conv3d_separable(ctx, leaves[0], leaves[1], leaves[2], &p);
	fv_tensor *w = fv_add_scalar(ctx, leaves[3], 1);
	y = fv_batch_norm3d(ctx, y, w, fv_add(ctx, leaves[4], leaves[5]), NULL, NULL, NULL, true,
	                    0.1, 1e-5);
	y = fv_elu(ctx, fv_sub(ctx, y, leaves[6]), 1.0);
	y = fv_add(ctx, fv_mul(ctx, y, leaves[7]), fv_exp(ctx, fv_mul_scalar(ctx, y, 0.1)));
	/* each op below is the first, in the backward, to reach its source */
	fv_tensor *terms[4] = {
		fv_sum_all(ctx, fv_mean(ctx, fv_mul_scalar(ctx, y, 0.5), 1, (int[]){2}, false)),
		fv_sum_all(ctx, fv_max(ctx, fv_mul_scalar(ctx, y, 0.7), 1, (int[]){3}, false)),
		fv_sum_all(ctx, fv_norm(ctx, fv_mul_scalar(ctx, y, 0.9), 2, 1, (int[]){4}, false)),
	};
	fv_tensor *f = fv_reshape(ctx, fv_permute(ctx, y, (int[]){0, 2, 3, 4, 1}), 2, flat);
	fv_tensor *r = fv_matmul(ctx, fv_slice(ctx, f, 0, 1, -1, 1), leaves[8]);
	terms[3] = fv_sum_all(ctx, fv_mul(ctx, r, fv_sin(ctx, r)));
	fv_tensor *loss = terms[0];
	for (int i = 1; i < 4; i++)
		loss = fv_add(ctx, loss, terms[i]);
	return loss;
}

/* The leaves' gradients after a pass in an arena first filled with `fill`. */
static fv_real *fresh_grads(fv_ctx *ctx, fv_real fill, int64_t *count)
{
	fv_ctx_reset(ctx);
	size_t n = (fv_ctx_arena_capacity(ctx) - 4096) / sizeof(fv_real);
	fv_real *junk = fv_ctx_alloc(ctx, n * sizeof(fv_real));
	cr_assert_not_null(junk);
	for (size_t i = 0; i < n; i++)
		junk[i] = fill;
	fv_ctx_reset(ctx);
	fv_tensor *leaves[FRESH_LEAVES];
	fv_tensor *loss = fresh_graph(ctx, leaves);
	cr_assert_eq(fv_backward(ctx, loss), FV_OK, "%s", fv_errmsg());
	*count = 0;
	for (int l = 0; l < FRESH_LEAVES; l++)
		*count += leaves[l]->numel;
	fv_real *all = malloc((size_t)*count * sizeof *all), *at = all;
	for (int l = 0; l < FRESH_LEAVES; l++) {
		cr_assert_not_null(leaves[l]->grad, "leaf %d got no gradient", l);
		memcpy(at, leaves[l]->grad->data, (size_t)leaves[l]->numel * sizeof *at);
		at += leaves[l]->numel;
	}
	return all;
}

Test(autograd, unset_gradients_are_set_not_added_to)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *leaves[FRESH_LEAVES];
	cr_assert_not_null(fresh_graph(ctx, leaves), "%s", fv_errmsg()); /* grows the arena */
	int64_t n, m;
	fv_real *with_nan = fresh_grads(ctx, (fv_real)NAN, &n);
	fv_real *with_junk = fresh_grads(ctx, (fv_real)1e3, &m);
	cr_assert_eq(n, m);
	int64_t nonzero = 0;
	for (int64_t i = 0; i < n; i++) {
		cr_assert(isfinite(with_nan[i]), "gradient element %lld read the arena's old NaN",
		          (long long)i);
		cr_assert_eq(with_nan[i], with_junk[i], "gradient element %lld: %g against %g",
		             (long long)i, (double)with_nan[i], (double)with_junk[i]);
		nonzero += with_nan[i] != 0;
	}
	cr_assert_gt(nonzero, n / 2, "the graph reaches the leaves");
	free(with_nan);
	free(with_junk);
	fv_ctx_free(ctx);
}
