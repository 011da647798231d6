/*
** test_profile.c: the per-op timers (fovea/profile.h): what they count
** forward and backward, that they count nothing when off, the FLOPs the
** matmul and separable conv3d declare against the formulas, and the BLIS
** kernels chosen at load time (blis_arch.c).
*/
#include <blis.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/profile.h"
#include "fovea/tensor.h"
#include "tensor/tensor_internal.h"

static fv_tensor *param(int ndim, const int64_t *shape, double scale)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(scale * (double)((i * 7) % 11 - 5));
	t->requires_grad = true;
	return t;
}

static const fv_profile_entry *find(const char *op, bool backward)
{
	size_t n;
	const fv_profile_entry *e = fv_profile_entries(&n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].op, op) == 0 && e[i].backward == backward)
			return &e[i];
	return NULL;
}

Test(profile, counts_calls_bytes_and_order)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = param(2, (int64_t[]){3, 4}, 0.1);
	fv_profile_start();
	fv_profile_mark();
	fv_tensor *y = fv_mul(ctx, x, x);
	fv_tensor *z = fv_mul(ctx, y, x);
	fv_tensor *l = fv_sum_all(ctx, z);
	cr_assert_eq(fv_backward(ctx, l), FV_OK);
	fv_profile_stop();
	size_t n;
	const fv_profile_entry *e = fv_profile_entries(&n);
	/* forward mul (3,4) twice, sum; backward sum, mul */
	cr_assert_eq(n, 4, "%zu entries", n);
	cr_assert_str_eq(e[0].op, "mul");
	cr_assert(!e[0].backward);
	cr_assert_eq(e[0].calls, 2);
	cr_assert_eq(e[0].ndim, 2);
	cr_assert(e[0].shape[0] == 3 && e[0].shape[1] == 4);
	/* each forward mul: two (3,4) sources and a (3,4) output */
	cr_assert_float_eq(e[0].bytes, 2 * 3 * 12.0 * sizeof(fv_real), 1e-9);
	cr_assert_str_eq(e[1].op, "sum");
	cr_assert(!e[1].backward && e[1].ndim == 0);
	cr_assert_str_eq(e[2].op, "sum");
	cr_assert(e[2].backward);
	cr_assert_str_eq(e[3].op, "mul");
	cr_assert(e[3].backward && e[3].calls == 2);
	for (size_t i = 0; i < n; i++) {
		cr_assert(e[i].ms >= 0 && e[i].cpu_ms >= 0);
		cr_assert_eq(e[i].flops, 0, "%s declares no FLOPs", e[i].op);
	}
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(profile, off_counts_nothing)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = param(1, (int64_t[]){5}, 0.2);
	fv_profile_start();
	fv_profile_stop();
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_mul(ctx, x, x))), FV_OK);
	size_t n;
	fv_profile_entries(&n);
	cr_assert_eq(n, 0);
	/* and a new start forgets what an earlier run counted */
	fv_profile_start();
	fv_sum_all(ctx, fv_mul(ctx, x, x));
	fv_profile_start();
	fv_profile_stop();
	fv_profile_entries(&n);
	cr_assert_eq(n, 0);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(profile, matmul_flops)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = param(2, (int64_t[]){5, 3}, 0.1), *b = param(2, (int64_t[]){3, 4}, 0.2);
	fv_profile_start();
	fv_tensor *c = fv_matmul(ctx, a, b);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, c)), FV_OK);
	fv_profile_stop();
	const fv_profile_entry *f = find("matmul", false), *g = find("matmul", true);
	cr_assert(f != NULL && g != NULL);
	cr_assert_float_eq(f->flops, 2.0 * 5 * 4 * 3, 1e-9);
	cr_assert_float_eq(f->dense_flops, f->flops, 1e-9);
	/* both gradients: two products of the same size */
	cr_assert_float_eq(g->flops, 2 * 2.0 * 5 * 4 * 3, 1e-9);
	fv_ctx_free(ctx);
	fv_tensor_free(a);
	fv_tensor_free(b);
}

/* Space-first order (the default): the spatial pass on every input frame,
** the temporal one on every output frame, per (sample, in, out) channel;
** the dense conv3d does c * kt * kh * kw per output element. */
Test(profile, separable_conv_flops)
{
	unsetenv("FV_SEPARABLE_ORDER");
	int64_t n = 2, c = 3, o = 4, t = 9, h = 7, w = 6, kt = 3, kh = 3, kw = 2;
	int64_t to = t - kt + 1, ho = h - kh + 1, wo = w - kw + 1;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = param(5, (int64_t[]){n, c, t, h, w}, 0.1);
	fv_tensor *wt = param(3, (int64_t[]){o, c, kt}, 0.05);
	fv_tensor *ws = param(4, (int64_t[]){o, c, kh, kw}, 0.05);
	fv_profile_start();
	fv_tensor *y = fv_conv3d_separable(ctx, x, wt, ws, NULL);
	cr_assert_not_null(y);
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, y)), FV_OK);
	fv_profile_stop();
	const fv_profile_entry *f = find("conv3d_separable", false);
	const fv_profile_entry *g = find("conv3d_separable", true);
	cr_assert(f != NULL && g != NULL);
	double macs = (double)(n * c * o * ho * wo * (t * kh * kw + to * kt));
	double dense = (double)(n * o * to * ho * wo * c * kt * kh * kw);
	cr_assert_float_eq(f->flops, 2 * macs, 1e-6);
	cr_assert_float_eq(f->dense_flops, 2 * dense, 1e-6);
	cr_assert_float_eq(g->flops, 4 * macs, 1e-6);
	cr_assert_float_eq(g->dense_flops, 4 * dense, 1e-6);
	/* operands (x, both weights, the output) and the kept spatial results */
	cr_assert(f->bytes > (double)((n * c * t * h * w + n * o * to * ho * wo) * sizeof(fv_real)));
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(wt);
	fv_tensor_free(ws);
}

/* Where the processor has the Skylake-X kernels' AVX-512 subsets, BLIS
** runs them rather than its generic C kernels. */
Test(profile, blis_kernels_for_avx512)
{
	if (!fv__blis_arch_wanted())
		cr_skip_test("the processor lacks AVX-512 F/DQ/BW/VL");
	cr_assert_not_null(getenv("BLIS_ARCH_TYPE"));
	bli_init(); /* the architecture is looked up in its tables */
	cr_assert_neq(bli_arch_query_id(), BLIS_ARCH_GENERIC, "BLIS runs its generic kernels");
}
