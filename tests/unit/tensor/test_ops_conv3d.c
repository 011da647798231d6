/*
** test_ops_conv3d.c: fv_conv3d and fv_conv3d_same_padding.
**
** Forward values are checked by hand on tiny inputs and against a direct
** 7-nested-loop convolution (in double) written here, on shapes that use
** stride, dilation, groups and asymmetric padding; the backward against the
** same loops' adjoint and against finite differences (gradcheck.h).
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
#define TOL 2e-5
#endif

typedef struct conv_case {
	int64_t n, c, t, h, w; /* input */
	int64_t o, kt, kh, kw; /* weight (o, c/groups, kt, kh, kw) */
	fv_conv3d_params p;
	bool bias;
} conv_case;

static int one(int v)
{
	return v == 0 ? 1 : v;
}

static int64_t out_size(int64_t in, int64_t k, int stride, int dil, const int pad[2])
{
	return (in + pad[0] + pad[1] - one(dil) * (k - 1) - 1) / one(stride) + 1;
}

static void out_shape(const conv_case *cc, int64_t s[5])
{
	int64_t in[3] = {cc->t, cc->h, cc->w}, k[3] = {cc->kt, cc->kh, cc->kw};
	s[0] = cc->n;
	s[1] = cc->o;
	for (int d = 0; d < 3; d++)
		s[2 + d] = out_size(in[d], k[d], cc->p.stride[d], cc->p.dilation[d], cc->p.pad[d]);
}

/* Calls fn(ud, flat x index, flat w index, flat out index) for every tap
** of the convolution that reads a real (non-padding) input element. */
typedef void (*tap_fn)(void *ud, int64_t xi, int64_t wi, int64_t oi, int64_t o);

static void for_each_tap(const conv_case *cc, tap_fn fn, void *ud)
{
	int64_t os[5];
	out_shape(cc, os);
	int g = one(cc->p.groups);
	int64_t cg = cc->c / g, og = cc->o / g;
	for (int64_t n = 0; n < cc->n; n++)
		for (int64_t o = 0; o < cc->o; o++)
			for (int64_t ot = 0; ot < os[2]; ot++)
				for (int64_t oh = 0; oh < os[3]; oh++)
					for (int64_t ow = 0; ow < os[4]; ow++)
						for (int64_t ci = 0; ci < cg; ci++)
							for (int64_t a = 0; a < cc->kt; a++)
								for (int64_t b = 0; b < cc->kh; b++)
									for (int64_t d = 0; d < cc->kw; d++) {
										int64_t c = o / og * cg + ci;
										int64_t it = ot * one(cc->p.stride[0]) - cc->p.pad[0][0] + a * one(cc->p.dilation[0]);
										int64_t ih = oh * one(cc->p.stride[1]) - cc->p.pad[1][0] + b * one(cc->p.dilation[1]);
										int64_t iw = ow * one(cc->p.stride[2]) - cc->p.pad[2][0] + d * one(cc->p.dilation[2]);
										if (it < 0 || it >= cc->t || ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w)
											continue;
										int64_t xi = (((n * cc->c + c) * cc->t + it) * cc->h + ih) * cc->w + iw;
										int64_t wi = (((o * cg + ci) * cc->kt + a) * cc->kh + b) * cc->kw + d;
										int64_t oi = (((n * cc->o + o) * os[2] + ot) * os[3] + oh) * os[4] + ow;
										fn(ud, xi, wi, oi, o);
									}
}

typedef struct ref_state {
	const fv_real *x, *w, *g;
	double *out, *dx, *dw;
} ref_state;

static void tap_forward(void *ud, int64_t xi, int64_t wi, int64_t oi, int64_t o)
{
	ref_state *r = ud;
	(void)o;
	r->out[oi] += (double)r->x[xi] * (double)r->w[wi];
}

static void tap_backward(void *ud, int64_t xi, int64_t wi, int64_t oi, int64_t o)
{
	ref_state *r = ud;
	(void)o;
	r->dx[xi] += (double)r->w[wi] * (double)r->g[oi];
	r->dw[wi] += (double)r->x[xi] * (double)r->g[oi];
}

static void fill(fv_tensor *t, uint64_t seed)
{
	gc_fill_uniform(t, seed, -1.0, 1.0);
}

static void assert_close(const char *what, const fv_real *got, const double *want, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		cr_assert(fabs(got[i] - want[i]) <= TOL * (1 + fabs(want[i])),
		          "%s[%lld]: got %.9g, want %.9g", what, (long long)i, (double)got[i], want[i]);
}

/* Forward and backward of one case against the direct loops. */
static void check_case(const conv_case *cc, uint64_t seed)
{
	int g = one(cc->p.groups);
	int64_t xs[5] = {cc->n, cc->c, cc->t, cc->h, cc->w};
	int64_t ws[5] = {cc->o, cc->c / g, cc->kt, cc->kh, cc->kw}, bs[1] = {cc->o}, os[5];
	out_shape(cc, os);
	fv_tensor *x = fv_tensor_new(5, xs), *w = fv_tensor_new(5, ws), *b = fv_tensor_new(1, bs);
	fill(x, seed);
	fill(w, seed + 1);
	fill(b, seed + 2);
	x->requires_grad = w->requires_grad = b->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *out = fv_conv3d(ctx, x, w, cc->bias ? b : NULL, &cc->p);
	cr_assert_not_null(out, "%s", fv_errmsg());
	for (int d = 0; d < 5; d++)
		cr_assert_eq(out->shape[d], os[d], "output dim %d: %lld vs %lld", d,
		             (long long)out->shape[d], (long long)os[d]);
	int64_t on = out->numel;
	double *ref = calloc((size_t)on, sizeof(double));
	double *dx = calloc((size_t)x->numel, sizeof(double));
	double *dw = calloc((size_t)w->numel, sizeof(double));
	double *db = calloc((size_t)cc->o, sizeof(double));
	fv_tensor *gout = fv_tensor_new(5, os);
	fill(gout, seed + 3);
	ref_state r = {.x = x->data, .w = w->data, .g = gout->data, .out = ref, .dx = dx, .dw = dw};
	for_each_tap(cc, tap_forward, &r);
	for_each_tap(cc, tap_backward, &r);
	int64_t plane = os[2] * os[3] * os[4];
	for (int64_t i = 0; i < on; i++) {
		int64_t o = i / plane % cc->o;
		if (cc->bias) {
			ref[i] += b->data[o];
			db[o] += gout->data[i];
		}
	}
	assert_close("out", out->data, ref, on);
	cr_assert_eq(fv_backward_with(ctx, out, gout), FV_OK, "%s", fv_errmsg());
	assert_close("dx", x->grad->data, dx, x->numel);
	assert_close("dw", w->grad->data, dw, w->numel);
	if (cc->bias)
		assert_close("db", b->grad->data, db, cc->o);
	free(ref);
	free(dx);
	free(dw);
	free(db);
	fv_tensor_free(gout);
	fv_tensor_free(x);
	fv_tensor_free(w);
	fv_tensor_free(b);
	fv_ctx_free(ctx);
}

/* ---- hand-computed values ------------------------------------------------ */

Test(conv3d, box_kernel_and_bias)
{
	int64_t xs[5] = {1, 1, 2, 2, 2}, ws[5] = {1, 1, 2, 2, 2}, bs[1] = {1};
	fv_ctx *ctx = fv_ctx_new();
	fv_real xv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, wv[8] = {1, 1, 1, 1, 1, 1, 1, 1}, bv[1] = {0.5};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, xs, xv), *w = fv_ctx_from_data(ctx, 5, ws, wv);
	fv_tensor *b = fv_ctx_from_data(ctx, 1, bs, bv);
	fv_tensor *out = fv_conv3d(ctx, x, w, b, NULL);
	cr_assert_not_null(out, "%s", fv_errmsg());
	cr_assert_eq(out->numel, 1);
	cr_assert_float_eq(out->data[0], 36.5, 1e-6); /* 1+...+8 + 0.5 */
	fv_ctx_free(ctx);
}

/* x = [1, 2, 3] along w, kernel [1, 10].  Padding (1, 0): [10, 21, 32];
** torch's 'same' for an even kernel pads (0, 1): [21, 32, 3]. */
Test(conv3d, asymmetric_and_same_padding)
{
	int64_t xs[5] = {1, 1, 1, 1, 3}, ws[5] = {1, 1, 1, 1, 2};
	fv_ctx *ctx = fv_ctx_new();
	fv_real xv[3] = {1, 2, 3}, wv[2] = {1, 10};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, xs, xv), *w = fv_ctx_from_data(ctx, 5, ws, wv);
	fv_conv3d_params p = {.groups = 1};
	p.pad[2][0] = 1;
	fv_tensor *out = fv_conv3d(ctx, x, w, NULL, &p);
	cr_assert_not_null(out, "%s", fv_errmsg());
	cr_assert_eq(out->shape[4], 3);
	cr_assert_float_eq(out->data[0], 10, 1e-6);
	cr_assert_float_eq(out->data[1], 21, 1e-6);
	cr_assert_float_eq(out->data[2], 32, 1e-6);
	fv_conv3d_params same = {.groups = 1};
	int kernel[3] = {1, 1, 2};
	fv_conv3d_same_padding(kernel, NULL, same.pad);
	cr_assert_eq(same.pad[2][0], 0);
	cr_assert_eq(same.pad[2][1], 1);
	out = fv_conv3d(ctx, x, w, NULL, &same);
	cr_assert_not_null(out, "%s", fv_errmsg());
	cr_assert_eq(out->shape[4], 3);
	cr_assert_float_eq(out->data[0], 21, 1e-6);
	cr_assert_float_eq(out->data[1], 32, 1e-6);
	cr_assert_float_eq(out->data[2], 3, 1e-6);
	fv_ctx_free(ctx);
}

Test(conv3d, same_padding_values)
{
	int kernel[3] = {4, 3, 2}, dil[3] = {1, 2, 3}, pad[3][2];
	fv_conv3d_same_padding(kernel, dil, pad);
	/* totals 3, 4, 3: the odd extra goes after */
	cr_assert_eq(pad[0][0], 1);
	cr_assert_eq(pad[0][1], 2);
	cr_assert_eq(pad[1][0], 2);
	cr_assert_eq(pad[1][1], 2);
	cr_assert_eq(pad[2][0], 1);
	cr_assert_eq(pad[2][1], 2);
	int zero_dil[3] = {0, 0, 0};
	fv_conv3d_same_padding(kernel, zero_dil, pad);
	cr_assert_eq(pad[0][0], 1);
	cr_assert_eq(pad[0][1], 2);
	cr_assert_eq(pad[2][0], 0);
	cr_assert_eq(pad[2][1], 1);
}

/* Stride 2 in time picks frames 0 and 2; groups=2 keeps channels apart. */
Test(conv3d, stride_and_groups_by_hand)
{
	int64_t xs[5] = {1, 2, 3, 1, 1}, ws[5] = {2, 1, 1, 1, 1};
	fv_ctx *ctx = fv_ctx_new();
	fv_real xv[6] = {1, 2, 3, 10, 20, 30}, wv[2] = {2, -1};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, xs, xv), *w = fv_ctx_from_data(ctx, 5, ws, wv);
	fv_conv3d_params p = {.stride = {2, 1, 1}, .groups = 2};
	fv_tensor *out = fv_conv3d(ctx, x, w, NULL, &p);
	cr_assert_not_null(out, "%s", fv_errmsg());
	cr_assert_eq(out->shape[1], 2);
	cr_assert_eq(out->shape[2], 2);
	fv_real want[4] = {2, 6, -10, -30};
	for (int i = 0; i < 4; i++)
		cr_assert_float_eq(out->data[i], want[i], 1e-6, "[%d]", i);
	fv_ctx_free(ctx);
}

/* ---- against the direct loops ----------------------------------------------- */

Test(conv3d, matches_direct_loops)
{
	conv_case cases[] = {
		{2, 3, 5, 6, 7, 4, 2, 3, 3, {.groups = 1}, true},
		{1, 4, 6, 7, 5, 6, 3, 2, 3, {.stride = {2, 1, 2}, .groups = 2}, true},
		{3, 2, 7, 8, 6, 3, 3, 3, 2, {.dilation = {2, 1, 2}, .pad = {{1, 2}, {0, 1}, {2, 0}}}, false},
		{2, 6, 4, 5, 5, 3, 1, 2, 2, {.stride = {1, 2, 1}, .pad = {{0, 0}, {1, 1}, {0, 1}}, .groups = 3}, false},
		{1, 3, 4, 6, 6, 2, 1, 1, 1, {.groups = 1}, true},                          /* pointwise */
		{2, 2, 3, 4, 4, 2, 1, 1, 1, {.stride = {1, 2, 2}}, false},       /* strided 1x1 */
		{2, 2, 6, 5, 5, 2, 2, 4, 4, {.pad = {{0, 1}, {1, 2}, {1, 2}}}, false}, /* 'same', even */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(&cases[i], 100 + i);
}

/* Shapes big enough for several column blocks per sample and more samples
** than weight-gradient partial sums. */
Test(conv3d, blocks_and_partials)
{
	conv_case wide = {2, 8, 5, 26, 26, 4, 3, 5, 5, {.pad = {{1, 1}, {1, 1}, {1, 1}}}, true};
	check_case(&wide, 7);
	conv_case batch = {20, 2, 3, 4, 4, 3, 2, 2, 2, {.groups = 1}, true};
	check_case(&batch, 8);
}

/* Big enough to be split over threads: by samples, and (one sample) inside
** the GEMMs. */
static void check_thread_invariance(int64_t n)
{
	/* 1.9 M multiply-adds per sample: above the threshold for threads */
	int64_t xs[5] = {n, 4, 10, 16, 16}, ws[5] = {8, 4, 3, 3, 3};
	fv_tensor *x = fv_tensor_new(5, xs), *w = fv_tensor_new(5, ws);
	fill(x, 1);
	fill(w, 2);
	w->requires_grad = x->requires_grad = true;
	fv_conv3d_params p = {.pad = {{1, 0}, {0, 1}, {1, 1}}};
	fv_tensor *r[2][3];
	for (int k = 0; k < 2; k++) {
		fv_set_num_threads(k + 1);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *out = fv_conv3d(ctx, x, w, NULL, &p);
		cr_assert_not_null(out, "%s", fv_errmsg());
		fv_zero_grad(x);
		fv_zero_grad(w);
		fv_tensor *g = fv_ctx_empty(ctx, out->ndim, out->shape);
		fill(g, 3);
		cr_assert_eq(fv_backward_with(ctx, out, g), FV_OK, "%s", fv_errmsg());
		r[k][0] = fv_tensor_clone(out);
		r[k][1] = fv_tensor_clone(x->grad);
		r[k][2] = fv_tensor_clone(w->grad);
		fv_ctx_free(ctx);
	}
	fv_set_num_threads(0);
	for (int i = 0; i < 3; i++) {
		cr_assert(memcmp(r[0][i]->data, r[1][i]->data, (size_t)r[0][i]->numel * sizeof(fv_real)) == 0,
		          "batch %lld: result %d differs between 1 and 2 threads", (long long)n, i);
		fv_tensor_free(r[0][i]);
		fv_tensor_free(r[1][i]);
	}
	fv_tensor_free(x);
	fv_tensor_free(w);
}

Test(conv3d, same_result_for_any_thread_count)
{
	check_thread_invariance(4);
	check_thread_invariance(1);
}

/* ---- finite differences --------------------------------------------------------- */

static fv_tensor *conv_fn(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	return fv_conv3d(ctx, in[0], in[1], in[2], ud);
}

Test(conv3d, gradcheck)
{
	int64_t xs[5] = {2, 4, 4, 4, 3}, ws[5] = {2, 2, 2, 2, 2}, bs[1] = {2};
	fv_tensor *in[3] = {gc_input(5, xs, 1, -1, 1), gc_input(5, ws, 2, -1, 1), gc_input(1, bs, 3, -1, 1)};
	fv_conv3d_params p = {.stride = {1, 2, 1}, .dilation = {2, 1, 1}, .pad = {{0, 1}, {1, 0}, {1, 1}},
	                      .groups = 2};
	gradcheck("conv3d", conv_fn, 3, in, &p);
	/* only some inputs requiring grad takes the other backward branches */
	in[1]->requires_grad = in[2]->requires_grad = false;
	gradcheck("conv3d (input only)", conv_fn, 3, in, &p);
	in[0]->requires_grad = false;
	in[1]->requires_grad = true;
	gradcheck("conv3d (weight only)", conv_fn, 3, in, &p);
	for (int i = 0; i < 3; i++)
		fv_tensor_free(in[i]);
}

/* ---- errors ----------------------------------------------------------------------- */

/* Ops report failure by NULL; the message says what was wrong. */
static void expect_error(fv_tensor *out, const char *needle)
{
	cr_assert_null(out);
	cr_assert_not_null(strstr(fv_errmsg(), needle), "message \"%s\" lacks \"%s\"", fv_errmsg(),
	                   needle);
}

Test(conv3d, errors_name_the_shapes)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t xs[5] = {2, 4, 5, 6, 6}, x4[4] = {4, 5, 6, 6};
	fv_tensor *x = fv_ctx_zeros(ctx, 5, xs), *xbad = fv_ctx_zeros(ctx, 4, x4);
	int64_t w_ok[5] = {6, 4, 3, 3, 3}, w_mis[5] = {6, 3, 3, 3, 3}, w_big[5] = {6, 4, 6, 3, 3};
	int64_t w_g[5] = {6, 2, 1, 1, 1}, b3[1] = {3};
	fv_tensor *w = fv_ctx_zeros(ctx, 5, w_ok);

	expect_error(fv_conv3d(ctx, xbad, w, NULL, NULL), "(4, 5, 6, 6)");
	cr_assert_not_null(strstr(fv_errmsg(), "fv_conv3d"));
	expect_error(fv_conv3d(ctx, x, xbad, NULL, NULL), "weight must be");

	expect_error(fv_conv3d(ctx, x, fv_ctx_zeros(ctx, 5, w_mis), NULL, NULL),
	             "weight (6, 3, 3, 3, 3) expects 3 input channels");
	cr_assert_not_null(strstr(fv_errmsg(), "x (2, 4, 5, 6, 6) has 4"), "%s", fv_errmsg());

	expect_error(fv_conv3d(ctx, x, fv_ctx_zeros(ctx, 5, w_big), NULL, NULL),
	             "kernel (6, 3, 3)");
	cr_assert_not_null(strstr(fv_errmsg(), "larger than the padded input (5, 6, 6)"), "%s",
	                   fv_errmsg());
	/* padding makes it fit */
	fv_conv3d_params pad = {.pad = {{1, 0}, {0, 0}, {0, 0}}};
	cr_assert_not_null(fv_conv3d(ctx, x, fv_ctx_zeros(ctx, 5, w_big), NULL, &pad), "%s",
	                   fv_errmsg());
	/* dilation makes it not */
	fv_conv3d_params dil = {.dilation = {1, 3, 1}};
	expect_error(fv_conv3d(ctx, x, w, NULL, &dil), "dilated: (3, 7, 3)");

	fv_conv3d_params g3 = {.groups = 3};
	expect_error(fv_conv3d(ctx, x, fv_ctx_zeros(ctx, 5, w_g), NULL, &g3),
	             "groups=3 does not divide the 4 input channels of x (2, 4, 5, 6, 6)");
	int64_t w_o[5] = {5, 2, 1, 1, 1};
	fv_conv3d_params g2 = {.groups = 2};
	expect_error(fv_conv3d(ctx, x, fv_ctx_zeros(ctx, 5, w_o), NULL, &g2),
	             "groups=2 does not divide the 5 output channels of weight (5, 2, 1, 1, 1)");

	expect_error(fv_conv3d(ctx, x, w, fv_ctx_zeros(ctx, 1, b3), NULL),
	             "bias must be (6) for weight (6, 4, 3, 3, 3); got shape (3)");

	fv_conv3d_params neg = {.stride = {1, -1, 1}};
	expect_error(fv_conv3d(ctx, x, w, NULL, &neg), "stride (1, -1, 1)");
	fv_conv3d_params negpad = {.pad = {{0, 0}, {0, -2}, {0, 0}}};
	expect_error(fv_conv3d(ctx, x, w, NULL, &negpad), "must not be negative");

	/* a failed op upstream propagates silently, keeping the first message */
	fv_error(FV_ERR_ARG, "first failure");
	cr_assert_null(fv_conv3d(ctx, NULL, w, NULL, NULL));
	cr_assert_str_eq(fv_errmsg(), "first failure");
	fv_ctx_free(ctx);
}
