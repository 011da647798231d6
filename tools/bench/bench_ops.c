/*
** bench_ops.c: the op tasks of fovea-bench (see bench_main.c).
**
** Op tasks (their shapes are the hoefling model's; no workload needed):
**   conv     the two convolutions of the default core at batch 64,
**            layer 0  x (64, 2, 50, 18, 16), 16 channels, kernel 21x11x11
**            layer 1  x (64, 16, 30, 8, 6),  16 channels, kernel 11x5x5,
**                     padding (0, 2, 2)
**            each as a dense conv3d and through the separable path, forward
**            and backward (input and weight gradients).
**   readout  the feature-times-mask product of a Gaussian-mask readout for
**            10 sessions of 100 neurons: per session a batched matmul
**            (64*30 frames, 16 channels, 8*6 pixels) x (8*6, 100).
*/
#include <stdio.h>

#include "bench.h"

#define BATCH 64

/* ---- convolutions ------------------------------------------------------------ */

typedef struct conv_layer {
	const char *name;
	int64_t c, t, h, w, o, kt, kh, kw;
	fv_conv3d_params p;
} conv_layer;

typedef struct conv_setup {
	const conv_layer *l;
	bool separable;
	fv_tensor *x, *w, *wt, *ws, *gout;
} conv_setup;

static fv_tensor *conv_forward(fv_ctx *ctx, conv_setup *s)
{
	if (s->separable)
		return fv_conv3d_separable(ctx, s->x, s->wt, s->ws, &s->l->p);
	return fv_conv3d(ctx, s->x, s->w, NULL, &s->l->p);
}

static int64_t out_len(int64_t in, int64_t k, const int pad[2])
{
	return in + pad[0] + pad[1] - k + 1;
}

/* Forward FLOPs: dense-equivalent and those of the separable passes. */
static void conv_flops(const conv_layer *l, double *dense, double *spatial, double *temporal)
{
	double to = (double)out_len(l->t, l->kt, l->p.pad[0]);
	double plane = (double)(out_len(l->h, l->kh, l->p.pad[1]) * out_len(l->w, l->kw, l->p.pad[2]));
	double n = BATCH, c = (double)l->c, o = (double)l->o;
	*dense = 2 * n * o * to * plane * c * (double)(l->kt * l->kh * l->kw);
	*spatial = 2 * n * c * o * (double)l->t * plane * (double)(l->kh * l->kw);
	*temporal = 2 * n * o * c * to * plane * (double)l->kt;
}

static int bench_conv(const bench_opts *o, const conv_layer *l, bool separable, double *times)
{
	int64_t xs[5] = {BATCH, l->c, l->t, l->h, l->w};
	int64_t ws[5] = {l->o, l->c, l->kt, l->kh, l->kw};
	int64_t ts[3] = {l->o, l->c, l->kt}, ss[4] = {l->o, l->c, l->kh, l->kw};
	conv_setup s = {.l = l, .separable = separable};
	const char *path = separable ? "separable" : "dense";
	s.x = bench_random_tensor(5, xs, 1, 1.0);
	if (separable) {
		s.wt = bench_random_tensor(3, ts, 2, 0.3);
		s.ws = bench_random_tensor(4, ss, 3, 0.1);
	} else {
		s.w = bench_random_tensor(5, ws, 2, 0.03);
	}
	fv_ctx *ctx = fv_ctx_new();
	int rc = 1;
	if (s.x == NULL || ctx == NULL || (separable ? !s.wt || !s.ws : !s.w))
		goto done;
	fv_tensor *params[3] = {s.x, separable ? s.wt : s.w, s.ws};
	for (int i = 0; i < 3; i++)
		if (params[i] != NULL)
			params[i]->requires_grad = true;

	double dense, spatial, temporal;
	conv_flops(l, &dense, &spatial, &temporal);
	char fwd_name[64], bwd_name[64];
	snprintf(fwd_name, sizeof fwd_name, "%s.%s.forward", l->name, path);
	snprintf(bwd_name, sizeof bwd_name, "%s.%s.backward", l->name, path);
	measurement fwd = {fwd_name, "conv", BATCH, l->t, dense,
	                   separable ? spatial + temporal : dense, 0, 0, 0, NULL};
	/* backward: input and weight gradients; the separable path keeps the
	** spatial pass of the forward and runs both passes transposed */
	measurement bwd = {bwd_name, "conv", BATCH, l->t, 2 * dense,
	                   separable ? 2 * spatial + 2 * temporal : 2 * dense, 0, 0, 0, NULL};

	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = bench_now();
		fv_tensor *out = conv_forward(ctx, &s);
		clock_pair t1 = bench_now();
		if (out == NULL)
			goto done;
		bench_record(o, times, r, t0, t1);
	}
	bench_report(o, &fwd, times);
	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		fv_tensor *out = conv_forward(ctx, &s);
		if (out == NULL)
			goto done;
		if (s.gout == NULL && (s.gout = bench_random_tensor(out->ndim, out->shape, 4, 1.0)) == NULL)
			goto done;
		clock_pair t0 = bench_now();
		fv_status st = fv_backward_with(ctx, out, s.gout);
		clock_pair t1 = bench_now();
		if (st != FV_OK)
			goto done;
		bench_record(o, times, r, t0, t1);
	}
	bench_report(o, &bwd, times);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "fovea-bench: %s %s: %s\n", l->name, path, fv_errmsg());
	fv_ctx_free(ctx);
	fv_tensor_free(s.x);
	fv_tensor_free(s.w);
	fv_tensor_free(s.wt);
	fv_tensor_free(s.ws);
	fv_tensor_free(s.gout);
	return rc;
}

static const conv_layer layers[] = {
	{"layer0", 2, 50, 18, 16, 16, 21, 11, 11, {.groups = 1}},
	{"layer1", 16, 30, 8, 6, 16, 11, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}},
};

/* ---- readout ---------------------------------------------------------------------- */

#define SESSIONS 10
#define NEURONS 100

static int bench_readout(const bench_opts *o, double *times)
{
	int64_t fs[3] = {BATCH * 30, 16, 8 * 6}, ms[2] = {8 * 6, NEURONS};
	fv_tensor *feat = bench_random_tensor(3, fs, 5, 1.0), *mask[SESSIONS] = {0};
	fv_ctx *ctx = fv_ctx_new();
	int rc = 1;
	if (feat == NULL || ctx == NULL)
		goto done;
	for (int i = 0; i < SESSIONS; i++)
		if ((mask[i] = bench_random_tensor(2, ms, 6 + (uint64_t)i, 0.1)) == NULL)
			goto done;
	double flops = SESSIONS * 2.0 * (double)(fs[0] * fs[1] * fs[2]) * NEURONS;
	measurement m = {"readout.matmul.forward", "readout", BATCH, 30, flops, flops, 0, 0, 0, NULL};
	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = bench_now();
		for (int i = 0; i < SESSIONS; i++)
			if (fv_matmul(ctx, feat, mask[i]) == NULL)
				goto done;
		clock_pair t1 = bench_now();
		bench_record(o, times, r, t0, t1);
	}
	bench_report(o, &m, times);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "fovea-bench: readout: %s\n", fv_errmsg());
	fv_ctx_free(ctx);
	fv_tensor_free(feat);
	for (int i = 0; i < SESSIONS; i++)
		fv_tensor_free(mask[i]);
	return rc;
}

int bench_run_ops(const bench_opts *o, double *times)
{
	int rc = 0;
	for (size_t i = 0; o->conv && i < sizeof layers / sizeof layers[0]; i++) {
		rc |= bench_conv(o, &layers[i], false, times);
		rc |= bench_conv(o, &layers[i], true, times);
	}
	if (o->readout)
		rc |= bench_readout(o, times);
	return rc;
}
