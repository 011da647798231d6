/*
** fovea-bench.c: timings of the hot ops of the default retina model.
**
**   fovea-bench [--threads N] [--reps R] [--json] [--task conv,readout]
**
** conv:    the two convolutions of openretina's default core at batch 64,
**          layer 0  x (64, 2, 50, 18, 16), 16 channels, kernel 21x11x11
**          layer 1  x (64, 16, 30, 8, 6),  16 channels, kernel 11x5x5,
**                   padding (0, 2, 2)
**          each as a dense conv3d and through the separable path, forward
**          and backward (input and weight gradients).
** readout: the feature-times-mask product of a Gaussian-mask readout for
**          10 sessions of 100 neurons: per session a batched matmul
**          (64*30 frames, 16 channels, 8*6 pixels) x (8*6, 100).
**
** GFLOP/s counts 2 per multiply-add.  "useful" divides the FLOPs of the
** dense-equivalent convolution (what torch computes) by the time, "actual"
** the FLOPs this path really performs; for the dense path they agree.
** With --json each measurement is one JSON object per line.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fovea/tensor.h"

#define BATCH 64

typedef struct bench_opts {
	int threads;
	int reps;
	bool json;
	bool conv, readout;
} bench_opts;

typedef struct measurement {
	const char *workload, *task;
	int64_t batch, frames;
	double useful_flops, actual_flops;
	double min_ms, median_ms, max_ms;
} measurement;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const bench_opts *o, measurement *m, double *times)
{
	qsort(times, (size_t)o->reps, sizeof *times, cmp_double);
	m->min_ms = times[0];
	m->max_ms = times[o->reps - 1];
	m->median_ms = o->reps % 2 ? times[o->reps / 2]
	                           : 0.5 * (times[o->reps / 2 - 1] + times[o->reps / 2]);
	double useful = m->useful_flops / (m->median_ms * 1e6);
	double actual = m->actual_flops / (m->median_ms * 1e6);
	if (o->json)
		printf("{\"workload\": \"%s\", \"task\": \"%s\", \"threads\": %d, \"batch\": %lld, "
		       "\"frames\": %lld, \"min_ms\": %.3f, \"median_ms\": %.3f, \"max_ms\": %.3f, "
		       "\"reps\": %d, \"gflops\": %.2f, \"actual_gflops\": %.2f, "
		       "\"peak_rss_mib\": %.1f}\n",
		       m->workload, m->task, o->threads, (long long)m->batch, (long long)m->frames,
		       m->min_ms, m->median_ms, m->max_ms, o->reps, useful, actual, peak_rss_mib());
	else
		printf("%-30s %3d %9.2f %9.2f %9.2f %10.1f %10.1f\n", m->workload, o->threads,
		       m->min_ms, m->median_ms, m->max_ms, useful, actual);
	fflush(stdout);
}

static fv_tensor *random_tensor(int ndim, const int64_t *shape, uint64_t seed, double scale)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	if (t == NULL)
		return NULL;
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (int64_t i = 0; i < t->numel; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		t->data[i] = (fv_real)(scale * ((double)(s >> 11) * 0x1.0p-53 * 2 - 1));
	}
	return t;
}

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
	s.x = random_tensor(5, xs, 1, 1.0);
	if (separable) {
		s.wt = random_tensor(3, ts, 2, 0.3);
		s.ws = random_tensor(4, ss, 3, 0.1);
	} else {
		s.w = random_tensor(5, ws, 2, 0.03);
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
	                   separable ? spatial + temporal : dense, 0, 0, 0};
	/* backward: input and weight gradients; the separable path recomputes
	** the spatial pass, then runs both passes transposed */
	measurement bwd = {bwd_name, "conv", BATCH, l->t, 2 * dense,
	                   separable ? 3 * spatial + 2 * temporal : 2 * dense, 0, 0, 0};

	for (int r = -1; r < o->reps; r++) { /* r = -1 warms up */
		fv_ctx_reset(ctx);
		double t0 = now_ms();
		fv_tensor *out = conv_forward(ctx, &s);
		double t1 = now_ms();
		if (out == NULL)
			goto done;
		if (r >= 0)
			times[r] = t1 - t0;
	}
	report(o, &fwd, times);
	for (int r = -1; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		fv_tensor *out = conv_forward(ctx, &s);
		if (out == NULL)
			goto done;
		if (s.gout == NULL && (s.gout = random_tensor(out->ndim, out->shape, 4, 1.0)) == NULL)
			goto done;
		double t0 = now_ms();
		fv_status st = fv_backward_with(ctx, out, s.gout);
		double t1 = now_ms();
		if (st != FV_OK)
			goto done;
		if (r >= 0)
			times[r] = t1 - t0;
	}
	report(o, &bwd, times);
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
	fv_tensor *feat = random_tensor(3, fs, 5, 1.0), *mask[SESSIONS] = {0};
	fv_ctx *ctx = fv_ctx_new();
	int rc = 1;
	if (feat == NULL || ctx == NULL)
		goto done;
	for (int i = 0; i < SESSIONS; i++)
		if ((mask[i] = random_tensor(2, ms, 6 + (uint64_t)i, 0.1)) == NULL)
			goto done;
	double flops = SESSIONS * 2.0 * (double)(fs[0] * fs[1] * fs[2]) * NEURONS;
	measurement m = {"readout.matmul.forward", "readout", BATCH, 30, flops, flops, 0, 0, 0};
	for (int r = -1; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		double t0 = now_ms();
		for (int i = 0; i < SESSIONS; i++)
			if (fv_matmul(ctx, feat, mask[i]) == NULL)
				goto done;
		double t1 = now_ms();
		if (r >= 0)
			times[r] = t1 - t0;
	}
	report(o, &m, times);
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

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fovea-bench [--threads N] [--reps R] [--json] [--task conv,readout]\n");
}

static int parse_tasks(bench_opts *o, const char *list)
{
	o->conv = o->readout = false;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "conv") == 0)
			o->conv = true;
		else if (strcmp(t, "readout") == 0)
			o->readout = true;
		else {
			fprintf(stderr, "fovea-bench: --task: unknown task '%s' (known: conv, readout)\n", t);
			return 1;
		}
	}
	return 0;
}

static int parse_int(const char *opt, const char *s, int lo, int *out)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	if (s == NULL || *s == '\0' || *end != '\0' || v < lo || v > 1 << 20) {
		fprintf(stderr, "fovea-bench: %s needs an integer >= %d; got '%s'\n", opt, lo,
		        s ? s : "");
		return 1;
	}
	*out = (int)v;
	return 0;
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
	*o = (bench_opts){.threads = 0, .reps = 5, .conv = true, .readout = true};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--threads") == 0) {
			if (parse_int(a, v, 0, &o->threads))
				return 1;
			i++;
		} else if (strcmp(a, "--reps") == 0) {
			if (parse_int(a, v, 1, &o->reps))
				return 1;
			i++;
		} else if (strcmp(a, "--task") == 0) {
			if (v == NULL || parse_tasks(o, v))
				return 1;
			i++;
		} else if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "fovea-bench: unknown option '%s'\n", a);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	bench_opts o;
	if (parse_args(&o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	fv_set_num_threads(o.threads);
	o.threads = fv_get_num_threads();
	double *times = malloc((size_t)o.reps * sizeof *times);
	if (times == NULL)
		return 1;
	if (!o.json)
		printf("%-30s %3s %9s %9s %9s %10s %10s\n", "workload", "thr", "min_ms", "median_ms",
		       "max_ms", "useful_GF/s", "actual_GF/s");
	int rc = 0;
	for (size_t i = 0; o.conv && i < sizeof layers / sizeof layers[0]; i++) {
		rc |= bench_conv(&o, &layers[i], false, times);
		rc |= bench_conv(&o, &layers[i], true, times);
	}
	if (o.readout)
		rc |= bench_readout(&o, times);
	free(times);
	return rc;
}
