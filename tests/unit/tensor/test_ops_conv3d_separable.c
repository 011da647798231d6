/*
** test_ops_conv3d_separable.c: fv_conv3d_separable must equal the dense
** conv3d with the outer-product weight w[o,i,t,h,w] = w_time[o,i,t] *
** w_space[o,i,h,w], forward and backward (the chain rule through the
** product gives the expected weight gradients), on shapes with padding,
** stride and dilation on every axis.  The dense op is itself checked
** against direct loops in test_ops_conv3d.c; a hand-computed case and
** finite differences check this op independently.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-10
#else
#define TOL 3e-5
#endif

typedef struct sep_case {
	int64_t n, c, t, h, w, o, kt, kh, kw;
	fv_conv3d_params p;
} sep_case;

static void assert_close(const char *what, const fv_real *got, const fv_real *want, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		cr_assert(fabs((double)got[i] - (double)want[i]) <= TOL * (1 + fabs((double)want[i])),
		          "%s[%lld]: got %.9g, want %.9g", what, (long long)i, (double)got[i],
		          (double)want[i]);
}

static void check_case(const sep_case *sc, uint64_t seed)
{
	int64_t xs[5] = {sc->n, sc->c, sc->t, sc->h, sc->w};
	int64_t ts[3] = {sc->o, sc->c, sc->kt}, ss[4] = {sc->o, sc->c, sc->kh, sc->kw};
	int64_t ds[5] = {sc->o, sc->c, sc->kt, sc->kh, sc->kw};
	fv_tensor *x = fv_tensor_new(5, xs), *wt = fv_tensor_new(3, ts), *ws = fv_tensor_new(4, ss);
	fv_tensor *wd = fv_tensor_new(5, ds);
	gc_fill_uniform(x, seed, -1, 1);
	gc_fill_uniform(wt, seed + 1, -1, 1);
	gc_fill_uniform(ws, seed + 2, -1, 1);
	int64_t kt = sc->kt, ksp = sc->kh * sc->kw;
	for (int64_t oi = 0; oi < sc->o * sc->c; oi++)
		for (int64_t a = 0; a < kt; a++)
			for (int64_t k = 0; k < ksp; k++)
				wd->data[(oi * kt + a) * ksp + k] = wt->data[oi * kt + a] * ws->data[oi * ksp + k];
	x->requires_grad = wt->requires_grad = ws->requires_grad = wd->requires_grad = true;

	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *got = fv_conv3d_separable(ctx, x, wt, ws, &sc->p);
	cr_assert_not_null(got, "%s", fv_errmsg());
	fv_tensor *want = fv_conv3d(ctx, x, wd, NULL, &sc->p);
	cr_assert_not_null(want, "%s", fv_errmsg());
	cr_assert(fv_same_shape(got, want), "shape %s vs %s", fv_shape_str(got->ndim, got->shape),
	          fv_shape_str(want->ndim, want->shape));
	assert_close("out", got->data, want->data, got->numel);

	fv_tensor *g = fv_tensor_new(got->ndim, got->shape);
	gc_fill_uniform(g, seed + 3, -1, 1);
	cr_assert_eq(fv_backward_with(ctx, got, g), FV_OK, "%s", fv_errmsg());
	fv_tensor *dx_sep = fv_tensor_clone(x->grad);
	fv_zero_grad(x);
	cr_assert_eq(fv_backward_with(ctx, want, g), FV_OK, "%s", fv_errmsg());
	assert_close("dx", dx_sep->data, x->grad->data, x->numel);

	/* dL/dw_time = sum_hw dL/dw * w_space, dL/dw_space = sum_t dL/dw * w_time */
	fv_real *dwt = calloc((size_t)wt->numel, sizeof(fv_real));
	fv_real *dws = calloc((size_t)ws->numel, sizeof(fv_real));
	for (int64_t oi = 0; oi < sc->o * sc->c; oi++)
		for (int64_t a = 0; a < kt; a++)
			for (int64_t k = 0; k < ksp; k++) {
				double gd = wd->grad->data[(oi * kt + a) * ksp + k];
				dwt[oi * kt + a] += (fv_real)(gd * ws->data[oi * ksp + k]);
				dws[oi * ksp + k] += (fv_real)(gd * wt->data[oi * kt + a]);
			}
	assert_close("dw_time", wt->grad->data, dwt, wt->numel);
	assert_close("dw_space", ws->grad->data, dws, ws->numel);
	free(dwt);
	free(dws);
	fv_tensor_free(dx_sep);
	fv_tensor_free(g);
	fv_tensor_free(x);
	fv_tensor_free(wt);
	fv_tensor_free(ws);
	fv_tensor_free(wd);
	fv_ctx_free(ctx);
}

/* x = [1, 2, 3, 4] in time, one pixel 2x1 wide: frames (1, 10), (2, 20), ...
** w_space = [1, -1] (a horizontal difference), w_time = [1, 2]:
** S = [-9, -18, -27, -36], out[t] = S[t] + 2 S[t+1] = [-45, -72, -99]. */
Test(conv3d_separable, by_hand)
{
	int64_t xs[5] = {1, 1, 4, 1, 2}, ts[3] = {1, 1, 2}, ss[4] = {1, 1, 1, 2};
	fv_real xv[8] = {1, 10, 2, 20, 3, 30, 4, 40}, tv[2] = {1, 2}, sv[2] = {1, -1};
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *out = fv_conv3d_separable(ctx, fv_ctx_from_data(ctx, 5, xs, xv),
	                                     fv_ctx_from_data(ctx, 3, ts, tv),
	                                     fv_ctx_from_data(ctx, 4, ss, sv), NULL);
	cr_assert_not_null(out, "%s", fv_errmsg());
	cr_assert_eq(out->numel, 3);
	cr_assert_float_eq(out->data[0], -45, 1e-5);
	cr_assert_float_eq(out->data[1], -72, 1e-5);
	cr_assert_float_eq(out->data[2], -99, 1e-5);
	fv_ctx_free(ctx);
}

static const sep_case dense_cases[] = {
		{2, 2, 8, 9, 8, 3, 3, 3, 3, {.groups = 1}},
		{2, 3, 9, 8, 7, 2, 2, 4, 4, {.pad = {{0, 1}, {1, 2}, {1, 2}}}}, /* 'same', even */
		{1, 2, 10, 9, 9, 3, 3, 3, 2,
		 {.stride = {2, 2, 1}, .dilation = {2, 1, 2}, .pad = {{2, 1}, {1, 0}, {0, 3}}}},
		{2, 2, 6, 5, 5, 2, 2, 1, 1, {.stride = {1, 2, 2}}},              /* temporal only */
		{2, 3, 7, 4, 5, 3, 3, 1, 1, {.pad = {{1, 1}, {0, 0}, {0, 0}}}},  /* 1x1 space: x is the im2col */
		{2, 3, 5, 6, 6, 4, 1, 3, 3, {.pad = {{0, 0}, {1, 1}, {1, 1}}}}, /* spatial only */
		{3, 2, 14, 10, 9, 4, 5, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}}, /* layer-1-like */
		{2, 2, 9, 6, 5, 3, 4, 3, 2, {.pad = {{2, 3}, {1, 1}, {0, 1}}}},   /* time padding */
		{1, 2, 24, 9, 8, 2, 7, 3, 3, {.pad = {{6, 0}, {0, 0}, {0, 0}}}},  /* causal */
	/* 16 channels and enough frames for the 12- and 8-row blocks of the
	** temporal passes and the 16-channel input-gradient rows: the
	** default model's second layer, then one with time padding */
		{2, 3, 30, 8, 6, 16, 11, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}},
		{1, 2, 40, 7, 6, 16, 9, 3, 3, {.pad = {{4, 3}, {1, 1}, {1, 1}}}},
		/* wide rows and strides for the sliding rows of the time-first order */
		{2, 2, 12, 9, 15, 8, 3, 3, 3, {.pad = {{1, 1}, {1, 1}, {1, 1}}}},
		{1, 2, 12, 11, 17, 16, 4, 3, 4, {.stride = {2, 2, 3}, .pad = {{1, 0}, {2, 2}, {1, 2}}}},
};

Test(conv3d_separable, equals_dense_outer_product)
{
	for (size_t i = 0; i < sizeof dense_cases / sizeof dense_cases[0]; i++)
		check_case(&dense_cases[i], 10 * i + 1);
}

/* Several spatial column blocks per channel; more samples than partial sums. */
Test(conv3d_separable, blocks_and_partials)
{
	sep_case wide = {1, 2, 4, 58, 58, 2, 2, 11, 11, {.groups = 1}};
	check_case(&wide, 3);
	sep_case batch = {19, 2, 5, 4, 4, 3, 2, 2, 2, {.pad = {{1, 0}, {0, 1}, {0, 0}}}};
	check_case(&batch, 4);
}

/* The output and the three gradients (for a uniform dOut) of one call. */
static void run_conv(fv_tensor *const *in, const fv_conv3d_params *p, fv_tensor *r[4])
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *out = fv_conv3d_separable(ctx, in[0], in[1], in[2], p);
	cr_assert_not_null(out, "%s", fv_errmsg());
	fv_tensor *g = fv_ctx_empty(ctx, out->ndim, out->shape);
	gc_fill_uniform(g, 9, -1, 1);
	for (int i = 0; i < 3; i++)
		fv_zero_grad(in[i]);
	cr_assert_eq(fv_backward_with(ctx, out, g), FV_OK, "%s", fv_errmsg());
	r[0] = fv_tensor_clone(out);
	for (int i = 0; i < 3; i++)
		r[i + 1] = fv_tensor_clone(in[i]->grad);
	fv_ctx_free(ctx);
}

/* Big enough to be split over threads: by samples, and (one sample) inside
** the GEMMs and temporal loops. */
static void check_thread_invariance(int64_t n)
{
	/* 2.7 M multiply-adds per sample: above the threshold for threads */
	int64_t xs[5] = {n, 3, 20, 16, 16}, ts[3] = {6, 3, 5}, ss[4] = {6, 3, 5, 5};
	fv_tensor *in[3] = {gc_input(5, xs, 1, -1, 1), gc_input(3, ts, 2, -1, 1),
	                    gc_input(4, ss, 3, -1, 1)};
	fv_conv3d_params p = {.pad = {{0, 0}, {2, 2}, {2, 2}}};
	fv_tensor *r[2][4];
	for (int k = 0; k < 2; k++) {
		fv_set_num_threads(k + 1);
		run_conv(in, &p, r[k]);
	}
	fv_set_num_threads(0);
	for (int i = 0; i < 4; i++) {
		cr_assert(memcmp(r[0][i]->data, r[1][i]->data, (size_t)r[0][i]->numel * sizeof(fv_real)) == 0,
		          "batch %lld: result %d differs between 1 and 2 threads", (long long)n, i);
		fv_tensor_free(r[0][i]);
		fv_tensor_free(r[1][i]);
	}
	for (int i = 0; i < 3; i++)
		fv_tensor_free(in[i]);
}

Test(conv3d_separable, same_result_for_any_thread_count)
{
	check_thread_invariance(6);
	check_thread_invariance(1);
}

static fv_tensor *sep_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_conv3d_separable(ctx, in[0], in[1], in[2], ud);
}

static void gradcheck_all(void)
{
	int64_t xs[5] = {2, 2, 6, 4, 5}, ts[3] = {2, 2, 3}, ss[4] = {2, 2, 2, 3};
	fv_tensor *in[3] = {gc_input(5, xs, 1, -1, 1), gc_input(3, ts, 2, -1, 1),
	                    gc_input(4, ss, 3, -1, 1)};
	fv_conv3d_params p = {.stride = {2, 1, 1}, .dilation = {1, 2, 1}, .pad = {{1, 1}, {1, 0}, {0, 1}}};
	gradcheck("conv3d_separable", sep_fn, 3, in, &p);
	/* only some inputs requiring grad takes the other backward branches */
	in[0]->requires_grad = false;
	gradcheck("conv3d_separable (weights only)", sep_fn, 3, in, &p);
	in[0]->requires_grad = true;
	in[1]->requires_grad = in[2]->requires_grad = false;
	gradcheck("conv3d_separable (input only)", sep_fn, 3, in, &p);
	for (int i = 0; i < 3; i++)
		fv_tensor_free(in[i]);
}

Test(conv3d_separable, gradcheck)
{
	gradcheck_all();
}

static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(conv3d_separable, errors_name_the_shapes)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t xs[5] = {2, 3, 6, 5, 5}, ts[3] = {4, 3, 3}, ss[4] = {4, 3, 3, 3};
	int64_t t_bad[3] = {4, 2, 3}, s3[3] = {4, 3, 3}, big[4] = {4, 3, 7, 3}, t_big[3] = {4, 3, 7};
	fv_tensor *x = fv_ctx_zeros(ctx, 5, xs), *wt = fv_ctx_zeros(ctx, 3, ts);
	fv_tensor *ws = fv_ctx_zeros(ctx, 4, ss);
	cr_assert_not_null(fv_conv3d_separable(ctx, x, wt, ws, NULL), "%s", fv_errmsg());

	expect_error(fv_conv3d_separable(ctx, x, ws, ws, NULL), "w_time must be (O, C, kt); got shape (4, 3, 3, 3)");
	expect_error(fv_conv3d_separable(ctx, x, wt, fv_ctx_zeros(ctx, 3, s3), NULL),
	             "w_space must be (O, C, kh, kw); got shape (4, 3, 3)");
	expect_error(fv_conv3d_separable(ctx, x, fv_ctx_zeros(ctx, 3, t_bad), ws, NULL),
	             "w_time (4, 2, 3) and w_space (4, 3, 3, 3) disagree");
	int64_t xs2[5] = {2, 2, 6, 5, 5}, x4[4] = {2, 3, 5, 5};
	expect_error(fv_conv3d_separable(ctx, fv_ctx_zeros(ctx, 5, xs2), wt, ws, NULL),
	             "expects 3 input channels");
	cr_assert_not_null(strstr(fv_errmsg(), "x (2, 2, 6, 5, 5) has 2"), "%s", fv_errmsg());
	expect_error(fv_conv3d_separable(ctx, fv_ctx_zeros(ctx, 4, x4), wt, ws, NULL),
	             "input x must be (N, C, T, H, W); got shape (2, 3, 5, 5)");
	expect_error(fv_conv3d_separable(ctx, x, wt, fv_ctx_zeros(ctx, 4, big), NULL),
	             "kernel (3, 7, 3)");
	cr_assert_not_null(strstr(fv_errmsg(), "padded input (6, 5, 5)"), "%s", fv_errmsg());
	expect_error(fv_conv3d_separable(ctx, x, fv_ctx_zeros(ctx, 3, t_big), ws, NULL),
	             "kernel (7, 3, 3)");
	fv_conv3d_params g = {.groups = 3};
	expect_error(fv_conv3d_separable(ctx, x, wt, ws, &g), "groups=3; only groups=1");
	fv_conv3d_params neg = {.dilation = {-1, 1, 1}};
	expect_error(fv_conv3d_separable(ctx, x, wt, ws, &neg), "dilation (-1, 1, 1)");
	fv_ctx_free(ctx);
}

/* ---- the time-first order (FV_SEPARABLE_ORDER forces it; Criterion runs
** every test in its own process) ---- */

Test(conv3d_separable, time_first_equals_dense)
{
	setenv("FV_SEPARABLE_ORDER", "time", 1);
	for (size_t i = 0; i < sizeof dense_cases / sizeof dense_cases[0]; i++)
		check_case(&dense_cases[i], 10 * i + 5);
	sep_case batch = {19, 2, 5, 4, 4, 3, 2, 2, 2, {.pad = {{1, 0}, {0, 1}, {0, 0}}}};
	check_case(&batch, 4);
}

Test(conv3d_separable, time_first_gradcheck_and_threads)
{
	setenv("FV_SEPARABLE_ORDER", "time", 1);
	gradcheck_all();
	check_thread_invariance(6);
	check_thread_invariance(1);
}

/* got == want within float rounding of long sums that cancel: relative to
** the largest element of want. */
static void assert_close_scaled(const char *what, const fv_real *got, const fv_real *want, int64_t n)
{
	double scale = 0;
	for (int64_t i = 0; i < n; i++)
		scale = fmax(scale, fabs((double)want[i]));
	for (int64_t i = 0; i < n; i++)
		cr_assert(fabs((double)got[i] - (double)want[i]) <= TOL * scale,
		          "%s[%lld]: got %.9g, want %.9g (largest %.9g)", what, (long long)i,
		          (double)got[i], (double)want[i], scale);
}

/* x, w_time and w_space of a case, uniform in [-1, 1) from seeds seed.. */
static void case_inputs(const sep_case *sc, uint64_t seed, fv_tensor *in[3])
{
	int64_t xs[5] = {sc->n, sc->c, sc->t, sc->h, sc->w};
	int64_t ts[3] = {sc->o, sc->c, sc->kt}, ss[4] = {sc->o, sc->c, sc->kh, sc->kw};
	in[0] = gc_input(5, xs, seed, -1, 1);
	in[1] = gc_input(3, ts, seed + 1, -1, 1);
	in[2] = gc_input(4, ss, seed + 2, -1, 1);
}

Test(conv3d_separable, time_first_equals_space_first)
{
	static const sep_case cases[] = {
		{4, 16, 30, 8, 6, 16, 11, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}}, /* layer 1 */
		{2, 3, 13, 9, 10, 8, 3, 3, 3, {.dilation = {2, 2, 1}, .pad = {{2, 2}, {2, 2}, {1, 1}}}},
		{3, 2, 11, 10, 9, 5, 4, 2, 2, {.stride = {2, 1, 2}, .pad = {{1, 2}, {0, 1}, {0, 1}}}},
	};
	static const char *names[4] = {"out", "dx", "dw_time", "dw_space"};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const sep_case *sc = &cases[c];
		fv_tensor *in[3];
		case_inputs(sc, 11, in);
		fv_tensor *space[4], *time[4];
		setenv("FV_SEPARABLE_ORDER", "space", 1);
		run_conv(in, &sc->p, space);
		setenv("FV_SEPARABLE_ORDER", "time", 1);
		run_conv(in, &sc->p, time);
		for (int i = 0; i < 4; i++) {
			assert_close_scaled(names[i], time[i]->data, space[i]->data, space[i]->numel);
			fv_tensor_free(space[i]);
			fv_tensor_free(time[i]);
		}
		for (int i = 0; i < 3; i++)
			fv_tensor_free(in[i]);
	}
}

/* ---- the AVX-512 kernels (FV_CONV_AVX512=0 keeps the AVX2 ones): the
** output and the weight gradients are the same sums in the same order, so
** equal bit for bit, in both orders (the time-first one runs its temporal
** pass through the same broadcast kernel); the input gradient's gathers
** sum 16 channels a vector in two interleaved chains, so dx is equal
** within rounding (TOL of its largest value).  Channel counts 16 and 32
** take the 16-channel kernels, 12 (rounded up to 16 lanes) too, with zero
** lanes; pixel counts that leave a short last block. */
Test(conv3d_separable, avx512_equals_avx2)
{
	static const sep_case cases[] = {
		{3, 16, 30, 8, 6, 16, 11, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}}, /* layer 2 */
		{2, 2, 26, 18, 16, 16, 21, 11, 11, {.groups = 1}},                  /* layer 1 */
		{2, 3, 13, 9, 7, 32, 3, 3, 3, {.dilation = {2, 2, 1}, .pad = {{2, 2}, {2, 2}, {1, 1}}}},
		{3, 2, 11, 10, 9, 12, 4, 2, 2, {.stride = {2, 1, 2}, .pad = {{1, 2}, {0, 1}, {0, 1}}}},
	};
	static const char *names[4] = {"out", "dx", "dw_time", "dw_space"};
	static const char *orders[2] = {"space", "time"};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
		for (int order = 0; order < 2; order++) {
			const sep_case *sc = &cases[c];
			fv_tensor *in[3];
			case_inputs(sc, 21, in);
			fv_tensor *avx2[4], *avx512[4];
			setenv("FV_SEPARABLE_ORDER", orders[order], 1);
			setenv("FV_CONV_AVX512", "0", 1);
			run_conv(in, &sc->p, avx2);
			unsetenv("FV_CONV_AVX512");
			run_conv(in, &sc->p, avx512);
			for (int i = 0; i < 4; i++) {
				if (i == 1) /* dx */
					assert_close_scaled(names[i], avx512[i]->data, avx2[i]->data,
					                    avx2[i]->numel);
				else
					cr_assert(memcmp(avx2[i]->data, avx512[i]->data,
					                 (size_t)avx2[i]->numel * sizeof(fv_real)) == 0,
					          "case %zu, %s first: %s differs with AVX-512", c,
					          orders[order], names[i]);
				fv_tensor_free(avx2[i]);
				fv_tensor_free(avx512[i]);
			}
			for (int i = 0; i < 3; i++)
				fv_tensor_free(in[i]);
		}
	unsetenv("FV_SEPARABLE_ORDER");
}
