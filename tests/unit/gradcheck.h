/*
** gradcheck.h: finite-difference gradient checks for the op tests.
**
** An op is checked through a scalar L = sum(f(inputs) * c) with a fixed
** random cotangent c: the analytic dL/dinput from fv_backward_with() must
** match central differences (L(x+h) - L(x-h)) / 2h element by element.
** Built in float64 (FV_REAL_DOUBLE, the *_f64 test programs) the check is
** tight: truncation error is O(h^2) ~ 1e-12 and rounding ~ 1e-16/h ~ 1e-10,
** so 1e-6 relative leaves four orders of margin.  Built in float32, the
** rounding of L is ~1e-7*|L|/h, so h = 1e-2 and a 2e-2 tolerance are used;
** the f32 runs guard against precision-specific bugs, the f64 runs against
** wrong formulas.
*/
#ifndef FOVEA_TEST_GRADCHECK_H
#define FOVEA_TEST_GRADCHECK_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fovea/tensor.h"

#ifdef FV_REAL_DOUBLE
#define GC_STEP 1e-6
#define GC_RTOL 1e-6
#define GC_ATOL 1e-7
#else
#define GC_STEP 1e-2
#define GC_RTOL 2e-2
#define GC_ATOL 2e-3
#endif

typedef fv_tensor *(*gc_fn)(fv_ctx *ctx, fv_tensor *const *inputs, void *ud);

/* Deterministic values in [lo, hi) for test inputs. */
static inline void gc_fill_uniform(fv_tensor *t, uint64_t seed, double lo, double hi)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (int64_t i = 0; i < t->numel; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		double u = (double)(s >> 11) * 0x1.0p-53;
		t->data[i] = (fv_real)(lo + (hi - lo) * u);
	}
}

static inline fv_tensor *gc_input(int ndim, const int64_t *shape, uint64_t seed, double lo,
                                  double hi)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	cr_assert_not_null(t, "%s", fv_errmsg());
	gc_fill_uniform(t, seed, lo, hi);
	t->requires_grad = true;
	return t;
}

static inline double gc_eval(gc_fn f, fv_tensor *const *inputs, void *ud, const fv_tensor *c)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_ctx_set_grad_enabled(ctx, false);
	fv_tensor *out = f(ctx, inputs, ud);
	cr_assert_not_null(out, "forward failed: %s", fv_errmsg());
	double l = 0;
	for (int64_t i = 0; i < out->numel; i++)
		l += (double)out->data[i] * (double)c->data[i];
	fv_ctx_free(ctx);
	return l;
}

/* Check d/d inputs[i] for every i with requires_grad.  `skip` may mark
** elements (by flat index of input i) where f is not differentiable. */
static inline void gradcheck(const char *what, gc_fn f, int n, fv_tensor *const *inputs, void *ud)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *out = f(ctx, inputs, ud);
	cr_assert_not_null(out, "%s: forward failed: %s", what, fv_errmsg());
	fv_tensor *c = fv_tensor_new(out->ndim, out->shape);
	gc_fill_uniform(c, 4242, -1.0, 1.0);
	for (int i = 0; i < n; i++)
		if (inputs[i]->requires_grad)
			fv_zero_grad(inputs[i]);
	cr_assert_eq(fv_backward_with(ctx, out, c), FV_OK, "%s: backward: %s", what, fv_errmsg());
	for (int i = 0; i < n; i++) {
		fv_tensor *x = inputs[i];
		if (!x->requires_grad)
			continue;
		cr_assert_not_null(x->grad, "%s: input %d got no gradient", what, i);
		for (int64_t j = 0; j < x->numel; j++) {
			fv_real keep = x->data[j];
			x->data[j] = (fv_real)(keep + GC_STEP);
			double lp = gc_eval(f, inputs, ud, c);
			x->data[j] = (fv_real)(keep - GC_STEP);
			double lm = gc_eval(f, inputs, ud, c);
			x->data[j] = keep;
			double numeric = (lp - lm) / (2 * GC_STEP);
			double analytic = x->grad->data[j];
			cr_assert(fabs(analytic - numeric) <= GC_ATOL + GC_RTOL * fabs(numeric),
			          "%s: d/d input %d [%lld]: analytic %.9g vs numeric %.9g", what, i,
			          (long long)j, analytic, numeric);
		}
	}
	fv_tensor_free(c);
	fv_ctx_free(ctx);
}

#endif
