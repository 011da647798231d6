/*
** ops_reduce.c: sum, mean, max and p-norm over a set of axes, and the
** sum-to-shape that turns the gradient of a broadcast output back into the
** gradient of its source.
**
** Every reduction runs the same way.  The source is walked with its kept
** axes outermost and its reduced axes innermost, so output element o is the
** segment [o * nred, (o + 1) * nred) of the walk.  Long segments are cut
** into chunks of a fixed length, short ones grouped into blocks of whole
** segments; these work items are reduced in parallel into one partial per
** (output, chunk), and the partials of each output are combined in chunk
** order.  Neither the work items nor that order depend on the number of
** threads, so results are reproducible bit for bit.  Sums accumulate in
** double.
*/
#include <math.h>
#include <string.h>

#include "tensor/tensor_internal.h"

#define CHUNK 16384             /* reduced elements per parallel work item */
#define PARALLEL_MIN 32768      /* smaller reductions run on one thread */

typedef enum reduce_kind { RED_SUM, RED_MEAN, RED_MAX, RED_NORM } reduce_kind;

typedef struct reduce_plan {
	fv__walk walk;   /* over the source, kept axes first */
	int64_t nout, nred;
	int64_t nchunk;  /* chunks per output */
	int64_t per_job; /* outputs per work item, when nchunk == 1 */
} reduce_plan;

/* A chunk's (or an output's) reduction so far. */
typedef struct partial {
	double v;
	int64_t at; /* RED_MAX: source offset of the first maximal element */
} partial;

static void plan_init(reduce_plan *plan, int ndim, const int64_t *shape, const bool *reduced)
{
	int64_t contiguous[FV_MAX_DIMS], walk_shape[FV_MAX_DIMS], strides[1][FV_MAX_DIMS];
	fv__strides(ndim, shape, contiguous);
	int n = 0;
	plan->nout = plan->nred = 1;
	for (int pass = 0; pass < 2; pass++) {
		for (int d = 0; d < ndim; d++) {
			if (reduced[d] != (pass == 1))
				continue;
			walk_shape[n] = shape[d];
			strides[0][n++] = contiguous[d];
			if (pass == 0)
				plan->nout *= shape[d];
			else
				plan->nred *= shape[d];
		}
	}
	fv__walk_init(&plan->walk, n, walk_shape, 1, strides);
	plan->nchunk = plan->nred > CHUNK ? (plan->nred + CHUNK - 1) / CHUNK : 1;
	plan->per_job = plan->nred > 0 && plan->nred < CHUNK ? CHUNK / plan->nred : 1;
}

/* Whether v replaces the maximum so far: strictly greater keeps the first
** of ties; NaN wins, as torch.max propagates it. */
static bool max_better(double v, double best)
{
	return v > best || (isnan(v) && !isnan(best));
}

/* One term of a sum: x, x^2, |x| or |x|^p (p = 0 means a plain sum). */
static FV__ALWAYS_INLINE double term(fv_real v, double p)
{
	if (p == 0)
		return v;
	if (p == 2)
		return (double)v * v;
	return p == 1 ? fabs((double)v) : pow(fabs((double)v), p);
}

/* Eight interleaved partial sums, added up in a fixed order: the loop
** vectorises without reassociation, and the result stays reproducible. */
static FV__ALWAYS_INLINE double sum_loop(const fv_real *x, int64_t step, int64_t n, double p)
{
	double lane[8] = {0}, s = 0;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += term(x[(i + k) * step], p);
	for (; i < n; i++)
		s += term(x[i * step], p);
	for (int k = 0; k < 8; k++)
		s += lane[k];
	return s;
}

/* Add n elements from x[at] on (stride `step`) into partial r.  The common
** cases get their own instantiation of the loop. */
static void accumulate(reduce_kind kind, double p, const fv_real *x, int64_t at, int64_t step,
                       int64_t n, partial *r)
{
	if (kind == RED_MAX) {
		for (int64_t i = 0; i < n; i++, at += step)
			if (r->at < 0 || max_better(x[at], r->v))
				*r = (partial){x[at], at};
	} else if (kind != RED_NORM) {
		r->v += step == 1 ? sum_loop(x + at, 1, n, 0) : sum_loop(x + at, step, n, 0);
	} else if (p == 2) {
		r->v += step == 1 ? sum_loop(x + at, 1, n, 2) : sum_loop(x + at, step, n, 2);
	} else {
		r->v += sum_loop(x + at, step, n, p);
	}
}

/* A job's progress: the walk position it has reached. */
typedef struct reduce_job {
	const reduce_plan *plan;
	const fv_real *x;
	reduce_kind kind;
	double p;
	int64_t pos;
	partial *part;
} reduce_job;

/* Position pos feeds the partial of its output and its chunk. */
static int64_t partial_of(const reduce_plan *plan, int64_t pos)
{
	return pos / plan->nred * plan->nchunk + pos % plan->nred / CHUNK;
}

/* A run may span several outputs' segments (short reductions merge into
** long runs); it is split where one segment ends. */
static void reduce_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	reduce_job *j = ud;
	int64_t at = off[0];
	while (n > 0) {
		int64_t m = j->plan->nred - j->pos % j->plan->nred;
		if (m > n)
			m = n;
		accumulate(j->kind, j->p, j->x, at, step[0], m, &j->part[partial_of(j->plan, j->pos)]);
		at += m * step[0];
		j->pos += m;
		n -= m;
	}
}

/* Work item j: one chunk of a long reduction, or a block of whole short
** ones; [*first, *first + *nparts) are the partials it fills. */
static void job_range(const reduce_plan *plan, int64_t j, int64_t *start, int64_t *count,
                      int64_t *first, int64_t *nparts)
{
	if (plan->nchunk > 1) {
		int64_t c = j % plan->nchunk;
		*start = j / plan->nchunk * plan->nred + c * CHUNK;
		*count = plan->nred - c * CHUNK < CHUNK ? plan->nred - c * CHUNK : CHUNK;
		*first = j;
		*nparts = 1;
		return;
	}
	*first = j * plan->per_job;
	*nparts = plan->nout - *first < plan->per_job ? plan->nout - *first : plan->per_job;
	*start = *first * plan->nred;
	*count = *nparts * plan->nred;
}

/* One partial per (output, chunk), in parallel over fixed work items. */
static partial *reduce_chunks(fv_ctx *ctx, const reduce_plan *plan, const fv_real *x,
                              reduce_kind kind, double p)
{
	int64_t nparts = plan->nout * plan->nchunk;
	int64_t njobs = plan->nchunk > 1 ? nparts : (plan->nout + plan->per_job - 1) / plan->per_job;
	partial *part = fv_ctx_alloc(ctx, (size_t)nparts * sizeof *part);
	if (part == NULL)
		return NULL;
#pragma omp parallel for schedule(static) if (plan->nout * plan->nred >= PARALLEL_MIN)
	for (int64_t j = 0; j < njobs; j++) {
		int64_t start, count, first, n;
		job_range(plan, j, &start, &count, &first, &n);
		for (int64_t i = first; i < first + n; i++)
			part[i] = (partial){0, -1};
		reduce_job job = {plan, x, kind, p, start, part};
		fv__walk_range(&plan->walk, start, count, reduce_run, &job);
	}
	return part;
}

static partial combine(const reduce_plan *plan, const partial *part, reduce_kind kind, int64_t o)
{
	const partial *pc = part + o * plan->nchunk;
	partial r = pc[0];
	for (int64_t c = 1; c < plan->nchunk; c++) {
		if (kind != RED_MAX)
			r.v += pc[c].v;
		else if (max_better(pc[c].v, r.v))
			r = pc[c];
	}
	return r;
}

fv_status fv__sum_to_shape(fv_ctx *ctx, fv_real *dst, int dst_ndim, const int64_t *dst_shape,
                           const fv_real *src, int ndim, const int64_t *shape)
{
	int64_t n = fv__numel(ndim, shape);
	if (fv__numel(dst_ndim, dst_shape) == n) { /* nothing was repeated */
		fv__broadcast_add(dst, 1, &n, src, 1, &n, 1);
		return FV_OK;
	}
	bool reduced[FV_MAX_DIMS];
	for (int d = 0; d < ndim; d++) {
		int dd = d - (ndim - dst_ndim);
		reduced[d] = dd < 0 || (dst_shape[dd] == 1 && shape[d] != 1);
	}
	reduce_plan plan;
	plan_init(&plan, ndim, shape, reduced);
	partial *part = reduce_chunks(ctx, &plan, src, RED_SUM, 0);
	if (part == NULL)
		return FV_ERR_NOMEM;
	for (int64_t o = 0; o < plan.nout; o++)
		dst[o] += (fv_real)combine(&plan, part, RED_SUM, o).v;
	return FV_OK;
}

/* ---- the ops ------------------------------------------------------------------ */

typedef struct reduce_aux {
	reduce_kind kind;
	double p;
	int64_t nred;
	bool reduced[FV_MAX_DIMS];
	const int64_t *argmax; /* RED_MAX: source offset per output element */
} reduce_aux;

static fv_status reduce_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux);

static const fv_op_def REDUCE_DEFS[] = {
	[RED_SUM] = {"sum", reduce_backward},
	[RED_MEAN] = {"mean", reduce_backward},
	[RED_MAX] = {"max", reduce_backward},
	[RED_NORM] = {"norm", reduce_backward},
};

/* x's shape with the reduced axes set to 1: how out broadcasts back to x. */
static void keepdim_shape(const fv_tensor *x, const bool *reduced, int64_t *shape)
{
	for (int d = 0; d < x->ndim; d++)
		shape[d] = reduced[d] ? 1 : x->shape[d];
}

typedef struct norm_job {
	fv_real *gx;
	const fv_real *x, *gout, *out;
	double p;
} norm_job;

/* d|x|_p / dx = sign(x) |x|^(p-1) / |x|_p^(p-1), and 0 where the norm is 0
** (torch's subgradient choice). */
static void norm_grad_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	const norm_job *j = ud;
	fv_real *gx = j->gx + off[0];
	const fv_real *x = j->x + off[1], *g = j->gout + off[2], *nrm = j->out + off[3];
	for (int64_t i = 0; i < n; i++) { /* gx and x are contiguous: step 1 */
		double xi = x[i], norm = nrm[i * step[3]], gi = g[i * step[2]];
		if (norm == 0 || xi == 0)
			continue;
		double d = j->p == 2 ? xi / norm
		                     : copysign(pow(fabs(xi) / norm, j->p - 1), xi);
		gx[i] += (fv_real)(gi * d);
	}
}

static void norm_backward(fv_tensor *gx, const fv_tensor *x, const fv_tensor *out,
                          const reduce_aux *a)
{
	int64_t keep[FV_MAX_DIMS], strides[4][FV_MAX_DIMS];
	keepdim_shape(x, a->reduced, keep);
	fv__strides(x->ndim, x->shape, strides[0]);
	fv__strides(x->ndim, x->shape, strides[1]);
	fv__broadcast_strides(x->ndim, x->shape, x->ndim, keep, strides[2]);
	fv__broadcast_strides(x->ndim, x->shape, x->ndim, keep, strides[3]);
	fv__walk w;
	fv__walk_init(&w, x->ndim, x->shape, 4, strides);
	norm_job job = {gx->data, x->data, out->grad->data, out->data, a->p};
	fv__walk_all(&w, norm_grad_run, &job);
}

static fv_status reduce_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux)
{
	const reduce_aux *a = aux;
	const fv_tensor *x = srcs[0];
	fv_tensor *gx = src_grads[0];
	bool fresh = fv__grad_fresh(ctx, 0);
	int64_t keep[FV_MAX_DIMS], x_strides[FV_MAX_DIMS], out_strides[FV_MAX_DIMS];
	if (fresh && a->kind != RED_SUM && a->kind != RED_MEAN)
		memset(gx->data, 0, (size_t)gx->numel * sizeof(fv_real));
	switch (a->kind) {
	case RED_SUM:
	case RED_MEAN: /* out's gradient spread back over every element of x */
		keepdim_shape(x, a->reduced, keep);
		fv__strides(x->ndim, x->shape, x_strides);
		fv__broadcast_strides(x->ndim, x->shape, x->ndim, keep, out_strides);
		fv__strided_copy(x->ndim, x->shape, gx->data, x_strides, out->grad->data, out_strides,
		                 a->kind == RED_MEAN ? (fv_real)(1.0 / (double)a->nred) : 1, !fresh);
		break;
	case RED_MAX:
		for (int64_t o = 0; o < out->numel; o++)
			gx->data[a->argmax[o]] += out->grad->data[o];
		break;
	case RED_NORM:
		norm_backward(gx, x, out, a);
		break;
	}
	return FV_OK;
}

static fv_status parse_axes(const char *op, const fv_tensor *x, int naxes, const int *axes,
                            bool *reduced)
{
	if (naxes < 0 || (naxes > 0 && axes == NULL))
		return fv_error(FV_ERR_ARG, "%s: %d axes given (with %s list)", op, naxes,
		                axes ? "an" : "no");
	for (int d = 0; d < x->ndim; d++)
		reduced[d] = naxes == 0;
	for (int i = 0; i < naxes; i++) {
		int d = fv__axis(axes[i], x->ndim);
		if (d < 0)
			return fv_error(FV_ERR_ARG, "%s: axis %d is out of range for a tensor of shape %s",
			                op, axes[i], fv_shape_str(x->ndim, x->shape));
		if (reduced[d])
			return fv_error(FV_ERR_ARG, "%s: axis %d is given twice (tensor of shape %s)", op,
			                axes[i], fv_shape_str(x->ndim, x->shape));
		reduced[d] = true;
	}
	return FV_OK;
}

static fv_real finish(reduce_kind kind, double v, double p, int64_t nred)
{
	switch (kind) {
	case RED_MEAN: return (fv_real)(v / (double)nred);
	case RED_NORM: return (fv_real)(p == 2 ? sqrt(v) : p == 1 ? v : pow(v, 1 / p));
	default: return (fv_real)v;
	}
}

static fv_tensor *reduce(fv_ctx *ctx, reduce_kind kind, fv_tensor *x, double p, int naxes,
                         const int *axes, bool keepdim)
{
	FV_CHECK_INPUT(x);
	const char *op = kind == RED_SUM ? "fv_sum" : kind == RED_MEAN ? "fv_mean"
	                 : kind == RED_MAX ? "fv_max" : "fv_norm";
	reduce_aux a = {.kind = kind, .p = p};
	if (parse_axes(op, x, naxes, axes, a.reduced) != FV_OK)
		return NULL;
	int ndim = 0;
	int64_t shape[FV_MAX_DIMS];
	for (int d = 0; d < x->ndim; d++)
		if (keepdim || !a.reduced[d])
			shape[ndim++] = a.reduced[d] ? 1 : x->shape[d];
	reduce_plan plan;
	plan_init(&plan, x->ndim, x->shape, a.reduced);
	a.nred = plan.nred;
	if (kind == RED_MAX && plan.nred == 0 && plan.nout > 0) {
		fv_error(FV_ERR_SHAPE, "fv_max: cannot take the max over an empty axis of %s",
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	fv_tensor *out = fv_ctx_empty(ctx, ndim, shape);
	partial *part = out ? reduce_chunks(ctx, &plan, x->data, kind, p) : NULL;
	int64_t *argmax = NULL;
	if (kind == RED_MAX && part != NULL)
		argmax = fv_ctx_alloc(ctx, (size_t)plan.nout * sizeof *argmax);
	if (part == NULL || (kind == RED_MAX && argmax == NULL))
		return NULL;
	for (int64_t o = 0; o < plan.nout; o++) {
		partial r = combine(&plan, part, kind, o);
		out->data[o] = finish(kind, r.v, p, plan.nred);
		if (argmax)
			argmax[o] = r.at;
	}
	a.argmax = argmax;
	fv_tensor *srcs[1] = {x};
	if (fv_op_record(ctx, out, &REDUCE_DEFS[kind], 1, srcs, &a, sizeof a) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

fv_tensor *fv_sum(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim)
{
	return reduce(ctx, RED_SUM, x, 0, naxes, axes, keepdim);
}

fv_tensor *fv_mean(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim)
{
	return reduce(ctx, RED_MEAN, x, 0, naxes, axes, keepdim);
}

fv_tensor *fv_max(fv_ctx *ctx, fv_tensor *x, int naxes, const int *axes, bool keepdim)
{
	return reduce(ctx, RED_MAX, x, 0, naxes, axes, keepdim);
}

fv_tensor *fv_norm(fv_ctx *ctx, fv_tensor *x, double p, int naxes, const int *axes, bool keepdim)
{
	if (x != NULL && !(p > 0 && isfinite(p))) {
		fv_error(FV_ERR_ARG, "fv_norm: p = %g is not supported (a finite p > 0 is needed)", p);
		return NULL;
	}
	return reduce(ctx, RED_NORM, x, p, naxes, axes, keepdim);
}

fv_tensor *fv_sum_all(fv_ctx *ctx, fv_tensor *x)
{
	return reduce(ctx, RED_SUM, x, 0, 0, NULL, false);
}

fv_tensor *fv_mean_all(fv_ctx *ctx, fv_tensor *x)
{
	return reduce(ctx, RED_MEAN, x, 0, 0, NULL, false);
}
