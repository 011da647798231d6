/*
** test_autograd.c: the tape as the ops use it: accumulation, no-grad mode,
** gradients of context tensors, shared sub-expressions, fv_backward's
** errors, NULL propagation through chains of ops, and a training-like loop
** that stops allocating once its arena has grown.
*/
#include <criterion/criterion.h>
#include <math.h>
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
