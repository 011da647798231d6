/*
** ops_pool3d.c: average and max pooling over (T, H, W), as torch's
** avg_pool3d / max_pool3d with ceil_mode=False and dilation 1.
**
** Windows start at o * stride - pad and are clipped to the input; padding
** never wins a max and counts towards the average's divisor only with
** count_include_pad (torch's default).  Max pooling records the flat index
** of the winner in its window (the first maximum, or a NaN, exactly as
** torch scans) so that the backward sends each gradient to one element.
** Both run in parallel over (n, c) planes, each plane written by one
** thread, so results do not depend on the thread count.
*/
#include <math.h>
#include <string.h>

#include "tensor/tensor_internal.h"

/* Below this many elements of work a loop runs on one thread: waking the
** team costs more than it saves. */
#define PARALLEL_MIN_WORK 32768

typedef struct pool_geom {
	int64_t planes;      /* product of the leading dims (N * C) */
	int64_t in[3], out[3];
	int64_t k[3], s[3], p[3];
	bool count_include_pad;
} pool_geom;

typedef struct pool_aux {
	pool_geom g;
	int64_t *argmax;     /* max pool: flat index within the input plane, per output */
} pool_aux;

/* One window along one axis: [lo, hi) clipped to the input and the extent
** used for the divisor with padding counted. */
typedef struct span {
	int64_t lo, hi, padded;
} span;

static span window(const pool_geom *g, int d, int64_t o)
{
	int64_t start = o * g->s[d] - g->p[d];
	int64_t end = start + g->k[d];
	if (end > g->in[d] + g->p[d])
		end = g->in[d] + g->p[d];
	span sp = {start < 0 ? 0 : start, end < g->in[d] ? end : g->in[d], end - start};
	return sp;
}

static fv_status geom_init(pool_geom *g, const char *op, const fv_tensor *x,
                           const fv_pool3d_params *p)
{
	if (x->ndim != 4 && x->ndim != 5)
		return fv_error(FV_ERR_SHAPE, "%s: input x must be (N, C, T, H, W) or (C, T, H, W); got shape %s",
		                op, fv_shape_str(x->ndim, x->shape));
	if (p == NULL)
		return fv_error(FV_ERR_ARG, "%s: no parameters (kernel size) given", op);
	int lead = x->ndim - 3;
	g->planes = fv__numel(lead, x->shape);
	g->count_include_pad = p->count_include_pad;
	for (int d = 0; d < 3; d++) {
		g->in[d] = x->shape[lead + d];
		g->k[d] = p->kernel[d];
		g->s[d] = p->stride[d] == 0 ? p->kernel[d] : p->stride[d];
		g->p[d] = p->pad[d];
	}
	for (int d = 0; d < 3; d++) {
		if (g->k[d] < 1 || g->s[d] < 1 || g->p[d] < 0)
			return fv_error(FV_ERR_ARG,
			                "%s: kernel %s, stride %s and padding %s must be positive (padding may be 0)",
			                op, fv_shape_str(3, g->k), fv_shape_str(3, g->s), fv_shape_str(3, g->p));
		if (2 * g->p[d] > g->k[d])
			return fv_error(FV_ERR_ARG,
			                "%s: padding %s must be at most half of the kernel %s", op,
			                fv_shape_str(3, g->p), fv_shape_str(3, g->k));
	}
	for (int d = 0; d < 3; d++) {
		int64_t span_ = g->in[d] + 2 * g->p[d] - g->k[d];
		if (span_ < 0)
			return fv_error(FV_ERR_SHAPE,
			                "%s: kernel %s is larger than the padded input (T, H, W) of x %s (padding %s)",
			                op, fv_shape_str(3, g->k), fv_shape_str(x->ndim, x->shape),
			                fv_shape_str(3, g->p));
		g->out[d] = span_ / g->s[d] + 1;
	}
	return FV_OK;
}

static fv_tensor *pool_output(fv_ctx *ctx, const fv_tensor *x, const pool_geom *g)
{
	int64_t shape[5];
	int lead = x->ndim - 3;
	for (int d = 0; d < lead; d++)
		shape[d] = x->shape[d];
	for (int d = 0; d < 3; d++)
		shape[lead + d] = g->out[d];
	return fv_ctx_empty(ctx, x->ndim, shape);
}

static int64_t in_plane(const pool_geom *g)
{
	return g->in[0] * g->in[1] * g->in[2];
}

static int64_t out_plane(const pool_geom *g)
{
	return g->out[0] * g->out[1] * g->out[2];
}

/* Elements visited: outputs times window volume. */
static int64_t pool_work(const pool_geom *g)
{
	return g->planes * out_plane(g) * g->k[0] * g->k[1] * g->k[2];
}

/* The divisor torch uses for one window. */
static fv_real avg_divisor(const pool_geom *g, span st, span sh, span sw)
{
	if (g->count_include_pad)
		return (fv_real)(st.padded * sh.padded * sw.padded);
	return (fv_real)((st.hi - st.lo) * (sh.hi - sh.lo) * (sw.hi - sw.lo));
}

/* ---- average ---------------------------------------------------------------- */

static fv_real window_sum(const pool_geom *g, const fv_real *x, span st, span sh, span sw)
{
	fv_real sum = 0;
	for (int64_t t = st.lo; t < st.hi; t++)
		for (int64_t h = sh.lo; h < sh.hi; h++)
			for (int64_t w = sw.lo; w < sw.hi; w++)
				sum += x[(t * g->in[1] + h) * g->in[2] + w];
	return sum;
}

static void avg_plane(const pool_geom *g, const fv_real *x, fv_real *y)
{
	for (int64_t ot = 0; ot < g->out[0]; ot++) {
		span st = window(g, 0, ot);
		for (int64_t oh = 0; oh < g->out[1]; oh++) {
			span sh = window(g, 1, oh);
			for (int64_t ow = 0; ow < g->out[2]; ow++) {
				span sw = window(g, 2, ow);
				fv_real div = avg_divisor(g, st, sh, sw);
				*y++ = div > 0 ? window_sum(g, x, st, sh, sw) / div : 0;
			}
		}
	}
}

static void window_add(const pool_geom *g, fv_real *dx, span st, span sh, span sw, fv_real v)
{
	for (int64_t t = st.lo; t < st.hi; t++)
		for (int64_t h = sh.lo; h < sh.hi; h++)
			for (int64_t w = sw.lo; w < sw.hi; w++)
				dx[(t * g->in[1] + h) * g->in[2] + w] += v;
}

static void avg_plane_backward(const pool_geom *g, const fv_real *gy, fv_real *dx)
{
	for (int64_t ot = 0; ot < g->out[0]; ot++) {
		span st = window(g, 0, ot);
		for (int64_t oh = 0; oh < g->out[1]; oh++) {
			span sh = window(g, 1, oh);
			for (int64_t ow = 0; ow < g->out[2]; ow++) {
				span sw = window(g, 2, ow);
				fv_real div = avg_divisor(g, st, sh, sw);
				fv_real v = *gy++;
				if (div > 0)
					window_add(g, dx, st, sh, sw, v / div);
			}
		}
	}
}

static fv_status avg_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                              fv_tensor *const *grads, const void *aux_)
{
	const pool_aux *aux = aux_;
	const pool_geom *g = &aux->g;
	(void)ctx;
	(void)srcs;
	if (grads[0] == NULL)
		return FV_OK;
#pragma omp parallel for schedule(static) if (pool_work(g) > PARALLEL_MIN_WORK)
	for (int64_t i = 0; i < g->planes; i++)
		avg_plane_backward(g, out->grad->data + i * out_plane(g), grads[0]->data + i * in_plane(g));
	return FV_OK;
}

static const fv_op_def avg_pool3d_def = {"avg_pool3d", avg_backward};

fv_tensor *fv_avg_pool3d(fv_ctx *ctx, fv_tensor *x, const fv_pool3d_params *p)
{
	FV_CHECK_INPUT(x);
	pool_aux aux = {0};
	if (geom_init(&aux.g, "fv_avg_pool3d", x, p) != FV_OK)
		return NULL;
	const pool_geom *g = &aux.g;
	fv_tensor *y = pool_output(ctx, x, g);
	if (y == NULL)
		return NULL;
#pragma omp parallel for schedule(static) if (pool_work(g) > PARALLEL_MIN_WORK)
	for (int64_t i = 0; i < g->planes; i++)
		avg_plane(g, x->data + i * in_plane(g), y->data + i * out_plane(g));
	if (fv_op_record(ctx, y, &avg_pool3d_def, 1, &x, &aux, sizeof aux) != FV_OK)
		return NULL;
	return y;
}

/* ---- max ------------------------------------------------------------------------- */

/* The winner of one window, as torch scans it: start at the window's first
** element with -inf; a larger value or any NaN takes over. */
static int64_t window_argmax(const pool_geom *g, const fv_real *x, span st, span sh, span sw)
{
	int64_t H = g->in[1], W = g->in[2], best = (st.lo * H + sh.lo) * W + sw.lo;
	fv_real m = -INFINITY;
	for (int64_t t = st.lo; t < st.hi; t++)
		for (int64_t h = sh.lo; h < sh.hi; h++)
			for (int64_t w = sw.lo; w < sw.hi; w++) {
				int64_t idx = (t * H + h) * W + w;
				if (x[idx] > m || isnan(x[idx])) {
					m = x[idx];
					best = idx;
				}
			}
	return best;
}

static void max_plane(const pool_geom *g, const fv_real *x, fv_real *y, int64_t *arg)
{
	for (int64_t ot = 0; ot < g->out[0]; ot++) {
		span st = window(g, 0, ot);
		for (int64_t oh = 0; oh < g->out[1]; oh++) {
			span sh = window(g, 1, oh);
			for (int64_t ow = 0; ow < g->out[2]; ow++) {
				span sw = window(g, 2, ow);
				*arg = window_argmax(g, x, st, sh, sw);
				*y++ = x[*arg++];
			}
		}
	}
}

static fv_status max_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                              fv_tensor *const *grads, const void *aux_)
{
	const pool_aux *aux = aux_;
	const pool_geom *g = &aux->g;
	(void)ctx;
	(void)srcs;
	if (grads[0] == NULL)
		return FV_OK;
	int64_t op = out_plane(g), ip = in_plane(g);
#pragma omp parallel for schedule(static) if (pool_work(g) > PARALLEL_MIN_WORK)
	for (int64_t i = 0; i < g->planes; i++) {
		const fv_real *gy = out->grad->data + i * op;
		const int64_t *arg = aux->argmax + i * op;
		fv_real *dx = grads[0]->data + i * ip;
		for (int64_t j = 0; j < op; j++)
			dx[arg[j]] += gy[j];
	}
	return FV_OK;
}

static const fv_op_def max_pool3d_def = {"max_pool3d", max_backward};

fv_tensor *fv_max_pool3d(fv_ctx *ctx, fv_tensor *x, const fv_pool3d_params *p)
{
	FV_CHECK_INPUT(x);
	pool_aux aux = {0};
	if (geom_init(&aux.g, "fv_max_pool3d", x, p) != FV_OK)
		return NULL;
	const pool_geom *g = &aux.g;
	fv_tensor *y = pool_output(ctx, x, g);
	if (y == NULL)
		return NULL;
	aux.argmax = fv_ctx_alloc(ctx, (size_t)y->numel * sizeof(int64_t));
	if (aux.argmax == NULL)
		return NULL;
	int64_t op = out_plane(g), ip = in_plane(g);
#pragma omp parallel for schedule(static) if (pool_work(g) > PARALLEL_MIN_WORK)
	for (int64_t i = 0; i < g->planes; i++)
		max_plane(g, x->data + i * ip, y->data + i * op, aux.argmax + i * op);
	if (fv_op_record(ctx, y, &max_pool3d_def, 1, &x, &aux, sizeof aux) != FV_OK)
		return NULL;
	return y;
}
