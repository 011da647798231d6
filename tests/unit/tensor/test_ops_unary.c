/*
** test_ops_unary.c: the elementwise functions of one tensor, and the scalar
** add / mul / pow.
**
** Values are checked against hand-computed constants (e^1, log 2, ...);
** derivatives at the kinks against torch's conventions (relu'(0) = 0,
** abs'(0) = 0, clamp' = 1 at the bounds, elu'(0) = alpha); every op's
** gradient by finite differences on inputs kept away from its kinks.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 2e-6
#endif

/* One op with its parameters, so that a table can drive the tests. */
typedef struct unary_case {
	const char *name;
	int kind;
	double p, q;
} unary_case;

enum {
	NEG, EXP, LOG, SOFTPLUS, ELU, RELU, SIGMOID, TANH, ABS, SQRT, SQUARE, SIN, COS, CLAMP,
	ADD_S, MUL_S, POW_S
};

static fv_tensor *run(fv_ctx *ctx, const unary_case *c, fv_tensor *x)
{
	switch (c->kind) {
	case NEG: return fv_neg(ctx, x);
	case EXP: return fv_exp(ctx, x);
	case LOG: return fv_log(ctx, x);
	case SOFTPLUS: return fv_softplus(ctx, x, c->p, c->q);
	case ELU: return fv_elu(ctx, x, c->p);
	case RELU: return fv_relu(ctx, x);
	case SIGMOID: return fv_sigmoid(ctx, x);
	case TANH: return fv_tanh(ctx, x);
	case ABS: return fv_abs(ctx, x);
	case SQRT: return fv_sqrt(ctx, x);
	case SQUARE: return fv_square(ctx, x);
	case SIN: return fv_sin(ctx, x);
	case COS: return fv_cos(ctx, x);
	case CLAMP: return fv_clamp(ctx, x, c->p, c->q);
	case ADD_S: return fv_add_scalar(ctx, x, c->p);
	case MUL_S: return fv_mul_scalar(ctx, x, c->p);
	default: return fv_pow_scalar(ctx, x, c->p);
	}
}

/* y = op(x) and dy/dx at n points, through fv_backward of sum(op(x)). */
static void eval(const unary_case *c, int n, const double *x, double *y, double *dy)
{
	int64_t shape[1] = {n};
	fv_tensor *t = fv_tensor_new(1, shape);
	for (int i = 0; i < n; i++)
		t->data[i] = (fv_real)x[i];
	t->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *out = run(ctx, c, t);
	cr_assert_not_null(out, "%s: %s", c->name, fv_errmsg());
	cr_assert_eq(out->ndim, 1);
	cr_assert_eq(out->shape[0], n);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, out)), FV_OK, "%s", fv_errmsg());
	for (int i = 0; i < n; i++) {
		y[i] = out->data[i];
		dy[i] = t->grad->data[i];
	}
	fv_ctx_free(ctx);
	fv_tensor_free(t);
}

static void expect(const unary_case *c, int n, const double *x, const double *y_want,
                   const double *dy_want)
{
	double y[8], dy[8];
	eval(c, n, x, y, dy);
	for (int i = 0; i < n; i++) {
		cr_assert(fabs(y[i] - y_want[i]) <= TOL * (1 + fabs(y_want[i])),
		          "%s(%g) = %.12g, expected %.12g", c->name, x[i], y[i], y_want[i]);
		cr_assert(fabs(dy[i] - dy_want[i]) <= TOL * (1 + fabs(dy_want[i])),
		          "%s'(%g) = %.12g, expected %.12g", c->name, x[i], dy[i], dy_want[i]);
	}
}

#define OP(name, kind, p, q) (&(unary_case){name, kind, p, q})

#define E 2.718281828459045
#define LN2 0.6931471805599453

Test(unary, exp_log_sqrt_square_neg)
{
	expect(OP("exp", EXP, 0, 0), 3, (double[]){0, 1, -1}, (double[]){1, E, 1 / E},
	       (double[]){1, E, 1 / E});
	expect(OP("log", LOG, 0, 0), 3, (double[]){1, 2, E}, (double[]){0, LN2, 1},
	       (double[]){1, 0.5, 1 / E});
	expect(OP("sqrt", SQRT, 0, 0), 3, (double[]){4, 9, 0.25}, (double[]){2, 3, 0.5},
	       (double[]){0.25, 1.0 / 6, 1});
	expect(OP("square", SQUARE, 0, 0), 3, (double[]){-3, 0, 0.5},
	       (double[]){9, 0, 0.25}, (double[]){-6, 0, 1});
	expect(OP("neg", NEG, 0, 0), 2, (double[]){-3, 2}, (double[]){3, -2},
	       (double[]){-1, -1});
}

Test(unary, trig_and_squashing)
{
	const double pi = 3.141592653589793;
	expect(OP("sin", SIN, 0, 0), 3, (double[]){0, pi / 6, pi / 2},
	       (double[]){0, 0.5, 1}, (double[]){1, sqrt(3) / 2, 0});
	expect(OP("cos", COS, 0, 0), 3, (double[]){0, pi / 3, pi / 2},
	       (double[]){1, 0.5, 0}, (double[]){0, -sqrt(3) / 2, -1});
	/* sigmoid(log 3) = 3/4, tanh(log 2) = 3/5 */
	expect(OP("sigmoid", SIGMOID, 0, 0), 3, (double[]){0, log(3), -log(3)},
	       (double[]){0.5, 0.75, 0.25}, (double[]){0.25, 0.1875, 0.1875});
	expect(OP("tanh", TANH, 0, 0), 3, (double[]){0, LN2, -LN2},
	       (double[]){0, 0.6, -0.6}, (double[]){1, 0.64, 0.64});
}

Test(unary, kinks_follow_torch)
{
	expect(OP("relu", RELU, 0, 0), 3, (double[]){-1, 0, 2}, (double[]){0, 0, 2},
	       (double[]){0, 0, 1});
	expect(OP("abs", ABS, 0, 0), 3, (double[]){-1.5, 0, 2}, (double[]){1.5, 0, 2},
	       (double[]){-1, 0, 1});
	/* clamp's gradient is 1 on the closed interval, bounds included */
	expect(OP("clamp", CLAMP, -1, 2), 5, (double[]){-3, -1, 0.5, 2, 7},
	       (double[]){-1, -1, 0.5, 2, 2}, (double[]){0, 1, 1, 1, 0});
	expect(OP("clamp lo only", CLAMP, 0, INFINITY), 2, (double[]){-1, 1e30},
	       (double[]){0, 1e30}, (double[]){0, 1});
	/* elu(x) = alpha (e^x - 1) for x <= 0; elu'(0) = alpha */
	expect(OP("elu", ELU, 0.5, 0), 3, (double[]){-1, 0, 2},
	       (double[]){0.5 * (1 / E - 1), 0, 2}, (double[]){0.5 / E, 0.5, 1});
}

Test(unary, softplus_beta_and_threshold)
{
	/* softplus(0) = log 2 / beta; softplus'(0) = 1/2; above the threshold
	** (beta x > 20) it is x itself with gradient 1 */
	expect(OP("softplus", SOFTPLUS, 1, 20), 3, (double[]){0, 1, 30},
	       (double[]){LN2, log(1 + E), 30}, (double[]){0.5, E / (1 + E), 1});
	expect(OP("softplus beta 2", SOFTPLUS, 2, 20), 3, (double[]){0, 0.5, 10.5},
	       (double[]){LN2 / 2, log(1 + E) / 2, 10.5}, (double[]){0.5, E / (1 + E), 1});
	/* a low threshold switches to linear early */
	expect(OP("softplus threshold 1", SOFTPLUS, 1, 1), 2, (double[]){0.5, 1.5},
	       (double[]){log(1 + exp(0.5)), 1.5}, (double[]){exp(0.5) / (1 + exp(0.5)), 1});
}

Test(unary, scalar_ops)
{
	expect(OP("add_scalar", ADD_S, 2.5, 0), 2, (double[]){1, -1},
	       (double[]){3.5, 1.5}, (double[]){1, 1});
	expect(OP("mul_scalar", MUL_S, -3, 0), 2, (double[]){1, 0.5},
	       (double[]){-3, -1.5}, (double[]){-3, -3});
	expect(OP("pow 3", POW_S, 3, 0), 3, (double[]){2, -1, 0}, (double[]){8, -1, 0},
	       (double[]){12, 3, 0});
	expect(OP("pow 0.5", POW_S, 0.5, 0), 2, (double[]){4, 0.25},
	       (double[]){2, 0.5}, (double[]){0.25, 1});
	/* torch: d x^0 / dx is exactly 0, even at x = 0 */
	expect(OP("pow 0", POW_S, 0, 0), 2, (double[]){0, 3}, (double[]){1, 1},
	       (double[]){0, 0});
}

Test(unary, nan_passes_through_relu_and_clamp)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_scalar(ctx, NAN);
	cr_assert(isnan(fv_relu(ctx, x)->data[0]));
	cr_assert(isnan(fv_clamp(ctx, x, -1, 1)->data[0]));
	fv_ctx_free(ctx);
}

Test(unary, large_tensor_matches_libm)
{
	/* big enough for the parallel tiles; shape (3, 40000) */
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_empty(ctx, 2, (int64_t[]){3, 40000});
	gc_fill_uniform(x, 9, -3, 3);
	fv_tensor *y = fv_elu(ctx, x, 1.0);
	cr_assert_not_null(y);
	for (int64_t i = 0; i < x->numel; i++) {
		double xi = x->data[i], want = xi > 0 ? xi : expm1(xi);
		cr_assert(fabs(y->data[i] - want) <= TOL * 4, "[%lld]", (long long)i);
	}
	fv_ctx_free(ctx);
}

/* ---- errors ---------------------------------------------------------------------- */

Test(unary, softplus_beta_zero_is_an_error)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = fv_ctx_scalar(ctx, 1);
	cr_assert_null(fv_softplus(ctx, x, 0, 20));
	cr_assert_str_eq(fv_errmsg(), "fv_softplus: beta must not be 0");
	fv_ctx_free(ctx);
}

Test(unary, null_propagates)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_error(FV_ERR_SHAPE, "an earlier op failed");
	cr_assert_null(fv_exp(ctx, NULL));
	cr_assert_null(fv_softplus(ctx, NULL, 0, 20)); /* no beta complaint either */
	cr_assert_null(fv_clamp(ctx, fv_relu(ctx, NULL), 0, 1));
	cr_assert_str_eq(fv_errmsg(), "an earlier op failed");
	fv_ctx_free(ctx);
}

/* ---- finite differences ------------------------------------------------------------ */

static fv_tensor *gc_unary(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return run(ctx, ud, in[0]);
}

/* Inputs with |x| in [lo, hi] and alternating sign (or all positive), so
** that no point sits within a finite-difference step of a kink. */
static fv_tensor *kink_free_input(double lo, double hi, bool both_signs)
{
	fv_tensor *x = gc_input(2, (int64_t[]){3, 5}, 77, lo, hi);
	for (int64_t i = 0; both_signs && i < x->numel; i += 2)
		x->data[i] = -x->data[i];
	return x;
}

Test(unary, gradcheck_every_op)
{
	static const struct {
		unary_case c;
		double lo, hi;
		bool both_signs;
	} cases[] = {
		{{"neg", NEG, 0, 0}, 0.1, 2, true},
		{{"exp", EXP, 0, 0}, 0.1, 2, true},
		{{"log", LOG, 0, 0}, 0.5, 3, false},
		{{"softplus", SOFTPLUS, 1, 20}, 0.1, 3, true},
		{{"softplus beta 3 threshold 2", SOFTPLUS, 3, 2}, 0.1, 0.5, true},
		{{"elu", ELU, 1.3, 0}, 0.1, 2, true},
		{{"relu", RELU, 0, 0}, 0.1, 2, true},
		{{"sigmoid", SIGMOID, 0, 0}, 0.1, 3, true},
		{{"tanh", TANH, 0, 0}, 0.1, 2, true},
		{{"abs", ABS, 0, 0}, 0.1, 2, true},
		{{"sqrt", SQRT, 0, 0}, 0.5, 3, false},
		{{"square", SQUARE, 0, 0}, 0.1, 2, true},
		{{"sin", SIN, 0, 0}, 0.1, 3, true},
		{{"cos", COS, 0, 0}, 0.1, 3, true},
		{{"clamp", CLAMP, -0.05, 0.05}, 0.1, 2, true},
		{{"clamp inside", CLAMP, -5, 5}, 0.1, 2, true},
		{{"add_scalar", ADD_S, 1.5, 0}, 0.1, 2, true},
		{{"mul_scalar", MUL_S, -0.7, 0}, 0.1, 2, true},
		{{"pow 3", POW_S, 3, 0}, 0.1, 2, true},
		{{"pow -1.5", POW_S, -1.5, 0}, 0.5, 2, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fv_tensor *x = kink_free_input(cases[i].lo, cases[i].hi, cases[i].both_signs);
		gradcheck(cases[i].c.name, gc_unary, 1, &x, (void *)&cases[i].c);
		fv_tensor_free(x);
	}
}
