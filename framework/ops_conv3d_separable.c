/*
** ops_conv3d_separable.c: conv3d with a rank-one weight per channel pair,
** w[o,i,t,h,w] = w_time[o,i,t] * w_space[o,i,h,w], the hot path of the
** default retina core.
**
** Computed in two passes instead of one dense conv (about 10x fewer FLOPs
** for the default model):
**   spatial:  S_i[o, t] = w_space[o, i] (*) x[n, i, t]   for every input frame t
**             (per input channel a GEMM of O x kh*kw by the channel's
**             spatial im2col, frames in cache-sized blocks)
**   temporal: out[n, o, to] += sum_tau w_time[o, i, tau] * S_i[o, to*st - pt + tau*dt]
** Both run per sample and per input channel, so S_i (O x T x Ho x Wo) stays
** in cache and nothing batch-sized is kept.  The backward runs the same
** passes transposed: dS_i from dOut through the temporal pass, dw_time
** from <dOut, S_i> (S_i is recomputed rather than stored), dw_space and dx
** from the spatial GEMMs.  Weight gradients are summed in fixed partial
** sums over sample ranges, so results do not depend on the thread count.
*/
#include <stdio.h>
#include <string.h>

#include "conv_kernels.h"

typedef struct sep_aux {
	fv__conv_shape s; /* win: the whole kt x kh x kw window over all C channels */
} sep_aux;

typedef struct sep_job {
	const fv__conv_shape *s;
	fv__conv_window sp;           /* one channel, spatial only, every input frame */
	const fv_real *x, *wt, *ws, *gout;
	fv_real *out, *dx, *dwt_partials, *dws_partials;
	fv_real *scratch;
	int64_t slot_size;
	int64_t frames;               /* input frames per spatial column block */
	int64_t partials;
} sep_job;

/* The per-channel spatial conv as a window over all input frames. */
static fv__conv_window spatial_window(const fv__conv_window *w)
{
	fv__conv_window sp = *w;
	sp.c = 1;
	sp.kt = 1;
	sp.st = 1;
	sp.dt = 1;
	sp.pt = 0;
	sp.to = w->t;
	return sp;
}

/* ---- the two passes ------------------------------------------------------------- */

/* S (O, T, Ho*Wo) = w_space[:, i] (*) x[n, i]. */
static void spatial_pass(const sep_job *j, const fv_real *xi, int64_t i, fv_real *S,
                         fv_real *cols, int threads)
{
	const fv__conv_window *sp = &j->sp;
	int64_t k = sp->kh * sp->kw, plane = sp->ho * sp->wo, c = j->s->c;
	for (int64_t f0 = 0; f0 < sp->to; f0 += j->frames) {
		int64_t f1 = f0 + j->frames < sp->to ? f0 + j->frames : sp->to, ld;
		const fv_real *cb = fv__block_cols(sp, xi, f0, f1, cols, &ld);
		fv__gemm(false, false, j->s->o, (f1 - f0) * plane, k, 1, j->ws + i * k, c * k, cb, ld,
		         0, S + f0 * plane, sp->to * plane, threads);
	}
}

static inline void axpy(int64_t n, fv_real a, const fv_real *restrict x, fv_real *restrict y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] += a * x[i];
}

static inline fv_real dot(int64_t n, const fv_real *restrict x, const fv_real *restrict y)
{
	fv_real s = 0;
#pragma omp simd reduction(+ : s)
	for (int64_t i = 0; i < n; i++)
		s += x[i] * y[i];
	return s;
}

/* The input frame tap tau of output frame to reads, or -1 in the padding. */
static inline int64_t tap_frame(const fv__conv_window *w, int64_t to, int64_t tau)
{
	int64_t t = to * w->st - w->pt + tau * w->dt;
	return (t < 0 || t >= w->t) ? -1 : t;
}

/* out_o (To, plane) += sum_tau wt[tau] * S_o[t(to, tau)]. */
static void temporal_channel(const fv__conv_window *w, const fv_real *wt, const fv_real *S_o,
                             fv_real *out_o)
{
	int64_t plane = w->ho * w->wo;
	for (int64_t to = 0; to < w->to; to++)
		for (int64_t tau = 0; tau < w->kt; tau++) {
			int64_t t = tap_frame(w, to, tau);
			if (t >= 0)
				axpy(plane, wt[tau], S_o + t * plane, out_o + to * plane);
		}
}

/* The transpose: dS_o (T, plane) += sum over (to, tau) reading t of wt[tau] * g_o[to]. */
static void temporal_channel_t(const fv__conv_window *w, const fv_real *wt, const fv_real *g_o,
                               fv_real *dS_o)
{
	int64_t plane = w->ho * w->wo;
	for (int64_t to = 0; to < w->to; to++)
		for (int64_t tau = 0; tau < w->kt; tau++) {
			int64_t t = tap_frame(w, to, tau);
			if (t >= 0)
				axpy(plane, wt[tau], g_o + to * plane, dS_o + t * plane);
		}
}

/* dwt[tau] += sum_to <g_o[to], S_o[t(to, tau)]>. */
static void temporal_weight_grad(const fv__conv_window *w, const fv_real *g_o,
                                 const fv_real *S_o, fv_real *dwt)
{
	int64_t plane = w->ho * w->wo;
	for (int64_t tau = 0; tau < w->kt; tau++) {
		double acc = 0;
		for (int64_t to = 0; to < w->to; to++) {
			int64_t t = tap_frame(w, to, tau);
			if (t >= 0)
				acc += dot(plane, g_o + to * plane, S_o + t * plane);
		}
		dwt[tau] += (fv_real)acc;
	}
}

/* ---- forward ------------------------------------------------------------------------ */

static void forward_task(void *ud, int64_t n, int slot, int threads)
{
	const sep_job *j = ud;
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t plane = w->ho * w->wo, c = s->c, vol = w->t * w->h * w->w;
	fv_real *S = j->scratch + slot * j->slot_size, *cols = S + s->o * w->t * plane;
	fv_real *out = j->out + n * s->o * w->to * plane;
	memset(out, 0, (size_t)(s->o * w->to * plane) * sizeof(fv_real));
	for (int64_t i = 0; i < c; i++) {
		spatial_pass(j, j->x + (n * c + i) * vol, i, S, cols, threads);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t o = 0; o < s->o; o++)
			temporal_channel(w, j->wt + (o * c + i) * w->kt, S + o * w->t * plane,
			                 out + o * w->to * plane);
	}
}

/* ---- backward ------------------------------------------------------------------------ */

/* dS = temporal transpose of dOut for input channel i, then dw_space and dx
** through the spatial GEMMs, block by block. */
static void spatial_backward(const sep_job *j, int64_t n, int64_t i, const fv_real *dS,
                             fv_real *dws, fv_real *cols, fv_real *dcols, int threads)
{
	const fv__conv_window *sp = &j->sp;
	int64_t k = sp->kh * sp->kw, plane = sp->ho * sp->wo, c = j->s->c, o = j->s->o;
	int64_t vol = sp->t * sp->h * sp->w;
	const fv_real *xi = j->x + (n * c + i) * vol;
	fv_real *dxi = j->dx ? j->dx + (n * c + i) * vol : NULL;
	for (int64_t f0 = 0; f0 < sp->to; f0 += j->frames) {
		int64_t f1 = f0 + j->frames < sp->to ? f0 + j->frames : sp->to, lb = (f1 - f0) * plane;
		const fv_real *dSb = dS + f0 * plane;
		if (dws != NULL) {
			int64_t ld;
			const fv_real *cb = fv__block_cols(sp, xi, f0, f1, cols, &ld);
			fv__gemm(false, true, o, k, lb, 1, dSb, sp->to * plane, cb, ld, 1, dws + i * k,
			         c * k, threads);
		}
		if (dxi == NULL)
			continue;
		if (fv__window_is_pointwise(sp)) {
			fv__gemm(true, false, 1, lb, o, 1, j->ws + i * k, c * k, dSb, sp->to * plane, 1,
			         dxi + f0 * sp->h * sp->w, lb, threads);
		} else {
			fv__gemm(true, false, k, lb, o, 1, j->ws + i * k, c * k, dSb, sp->to * plane, 0,
			         dcols, lb, threads);
			fv__col2vol(sp, dcols, f0, f1, dxi);
		}
	}
}

static void backward_sample(const sep_job *j, int64_t n, fv_real *dwt, fv_real *dws,
                            fv_real *scratch, int threads)
{
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t plane = w->ho * w->wo, c = s->c, vol = w->t * w->h * w->w;
	int64_t sbuf = s->o * w->t * plane, cbuf = w->kh * w->kw * j->frames * plane;
	fv_real *S = scratch, *dS = S + sbuf, *cols = dS + sbuf, *dcols = cols + cbuf;
	const fv_real *g = j->gout + n * s->o * w->to * plane;
	for (int64_t i = 0; i < c; i++) {
		if (dwt != NULL) {
			spatial_pass(j, j->x + (n * c + i) * vol, i, S, cols, threads);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
			for (int64_t o = 0; o < s->o; o++)
				temporal_weight_grad(w, g + o * w->to * plane, S + o * w->t * plane,
				                     dwt + (o * c + i) * w->kt);
		}
		if (dws == NULL && j->dx == NULL)
			continue;
		memset(dS, 0, (size_t)sbuf * sizeof(fv_real));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
		for (int64_t o = 0; o < s->o; o++)
			temporal_channel_t(w, j->wt + (o * c + i) * w->kt, g + o * w->to * plane,
			                   dS + o * w->t * plane);
		spatial_backward(j, n, i, dS, dws, cols, dcols, threads);
	}
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const sep_job *j = ud;
	const fv__conv_shape *s = j->s;
	int64_t n0 = task * s->n / j->partials, n1 = (task + 1) * s->n / j->partials;
	int64_t wt_size = s->o * s->c * s->win.kt, ws_size = s->o * s->c * s->win.kh * s->win.kw;
	fv_real *dwt = j->dwt_partials ? j->dwt_partials + task * wt_size : NULL;
	fv_real *dws = j->dws_partials ? j->dws_partials + task * ws_size : NULL;
	if (dwt != NULL)
		memset(dwt, 0, (size_t)wt_size * sizeof(fv_real));
	if (dws != NULL)
		memset(dws, 0, (size_t)ws_size * sizeof(fv_real));
	for (int64_t n = n0; n < n1; n++)
		backward_sample(j, n, dwt, dws, j->scratch + slot * j->slot_size, threads);
}

/* dw += the partial sums, in their fixed order. */
static void add_partials(fv_real *dw, const fv_real *partials, int64_t count, int64_t size)
{
	for (int64_t i = 0; i < size; i++) {
		fv_real acc = 0;
		for (int64_t p = 0; p < count; p++)
			acc += partials[p * size + i];
		dw[i] += acc;
	}
}

static fv_status separable_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                    fv_tensor *const *grads, const void *aux_)
{
	const sep_aux *aux = aux_;
	const fv__conv_shape *s = &aux->s;
	const fv__conv_window *w = &s->win;
	sep_job j = {.s = s, .sp = spatial_window(w), .x = srcs[0]->data, .wt = srcs[1]->data,
	             .ws = srcs[2]->data, .gout = out->grad->data};
	j.dx = grads[0] ? grads[0]->data : NULL;
	j.frames = fv__frames_per_block(&j.sp);
	bool weights = grads[1] != NULL || grads[2] != NULL;
	j.partials = s->n;
	if (weights && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	int64_t plane = w->ho * w->wo, k = w->kh * w->kw;
	int64_t wt_size = s->o * s->c * w->kt, ws_size = s->o * s->c * k;
	j.slot_size = 2 * s->o * w->t * plane + 2 * k * j.frames * plane;
	int slots = fv__task_slots(j.partials);
	j.scratch = fv_ctx_alloc(ctx, (size_t)(slots * j.slot_size) * sizeof(fv_real));
	if (j.scratch == NULL)
		return FV_ERR_NOMEM;
	if (grads[1] != NULL &&
	    !(j.dwt_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * wt_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	if (grads[2] != NULL &&
	    !(j.dws_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * ws_size) * sizeof(fv_real))))
		return FV_ERR_NOMEM;
	fv__run_tasks(j.partials, backward_task, &j);
	if (grads[1] != NULL)
		add_partials(grads[1]->data, j.dwt_partials, j.partials, wt_size);
	if (grads[2] != NULL)
		add_partials(grads[2]->data, j.dws_partials, j.partials, ws_size);
	return FV_OK;
}

static const fv_op_def separable_def = {"conv3d_separable", separable_backward};

static fv_status check_weights(const fv_tensor *wt, const fv_tensor *ws, const char *wdesc)
{
	if (wt->ndim != 3)
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: w_time must be (O, C, kt); got shape %s",
		                fv_shape_str(wt->ndim, wt->shape));
	if (ws->ndim != 4)
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: w_space must be (O, C, kh, kw); got shape %s",
		                fv_shape_str(ws->ndim, ws->shape));
	if (wt->shape[0] != ws->shape[0] || wt->shape[1] != ws->shape[1])
		return fv_error(FV_ERR_SHAPE,
		                "fv_conv3d_separable: %s disagree on the channels (O, C)", wdesc);
	return FV_OK;
}

fv_tensor *fv_conv3d_separable(fv_ctx *ctx, fv_tensor *x, fv_tensor *w_time,
                               fv_tensor *w_space, const fv_conv3d_params *p)
{
	FV_CHECK_INPUT(x);
	FV_CHECK_INPUT(w_time);
	FV_CHECK_INPUT(w_space);
	char wdesc[200];
	snprintf(wdesc, sizeof wdesc, "w_time %s and w_space %s",
	         fv_shape_str(w_time->ndim, w_time->shape), fv_shape_str(w_space->ndim, w_space->shape));
	if (check_weights(w_time, w_space, wdesc) != FV_OK)
		return NULL;
	sep_aux aux;
	fv__conv_shape *s = &aux.s;
	int64_t kernel[3] = {w_time->shape[2], w_space->shape[2], w_space->shape[3]};
	if (fv__conv_shape_init(s, "fv_conv3d_separable", x, w_time->shape[0], w_time->shape[1],
	                        kernel, p, 0, wdesc) != FV_OK)
		return NULL;
	const fv__conv_window *w = &s->win;
	int64_t shape[5] = {s->n, s->o, w->to, w->ho, w->wo};
	fv_tensor *out = fv_ctx_empty(ctx, 5, shape);
	if (out == NULL)
		return NULL;
	sep_job j = {.s = s, .sp = spatial_window(w), .x = x->data, .wt = w_time->data,
	             .ws = w_space->data, .out = out->data};
	j.frames = fv__frames_per_block(&j.sp);
	int64_t plane = w->ho * w->wo;
	j.slot_size = s->o * w->t * plane + w->kh * w->kw * j.frames * plane;
	j.scratch = fv_ctx_alloc(ctx, (size_t)(fv__task_slots(s->n) * j.slot_size) * sizeof(fv_real));
	if (j.scratch == NULL)
		return NULL;
	fv__run_tasks(s->n, forward_task, &j);
	fv_tensor *srcs[3] = {x, w_time, w_space};
	if (fv_op_record(ctx, out, &separable_def, 3, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	return out;
}
