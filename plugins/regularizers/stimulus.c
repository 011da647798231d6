/*
** stimulus.c: openretina's stimulus regularizers and postprocessors
** (openretina.insilico.stimulus_optimization.regularizer), used by
** fv_optimize_stimulus on a stimulus (N, C, T, H, W).
**
**   RangeRegularizationLoss(min_max_values, max_norm, factor)   penalty
**       factor * ( sum_c [ sum relu(min_c - x[:, c]) + sum relu(x[:, c] - max_c) ]
**                  + relu(||x||_2 - max_norm) )
**       a null bound (or max_norm) adds nothing.
**   ChangeNormJointlyClipRangeSeparately(min_max_values, norm)   projection
**       each batch element rescaled to L2 norm `norm` (null: kept), then
**       channel c clamped to [min_c, max_c].
**   TemporalGaussianLowPassFilterProcessor(sigma, kernel_size)   projection
**       every pixel's time course convolved with a normalised Gaussian of
**       kernel_size taps, padding 'same' (an even kernel pads one more at
**       the end, as torch).  The kernel is built in float as openretina
**       builds it in float32, and kept as the state tensor `kernel`.
**
** min_max_values is a list with one [min, max] pair per channel; either
** may be null.
*/
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/plugin.h>

/* ---- [min, max] pairs per channel ------------------------------------------------- */

typedef struct range {
	double lo, hi; /* -INFINITY / INFINITY when null */
	bool has_lo, has_hi;
} range;

typedef struct ranges {
	size_t n;
	range *v;
} ranges;

static fv_status read_bound(const fv_config_node *n, const char *who, double *v, bool *has)
{
	*has = n != NULL && !fv_node_is_null(n);
	if (!*has)
		return FV_OK;
	if (fv_node_to_double(n, v) != FV_OK || isnan(*v))
		return fv_error_at(n, FV_ERR_CONFIG, "%s: min_max_values: expected a number or null, "
		                   "got '%s'", who, fv_node_text(n) ? fv_node_text(n) : "?");
	return FV_OK;
}

static fv_status read_ranges(const fv_config_node *list, const char *who, ranges *out)
{
	out->n = 0;
	out->v = NULL;
	if (fv_node_kind(list) != FV_NODE_SEQ || fv_node_size(list) == 0)
		return fv_error_at(list, FV_ERR_CONFIG,
		                   "%s: min_max_values: expected a list of [min, max] pairs, one "
		                   "per channel", who);
	size_t n = fv_node_size(list);
	out->v = calloc(n, sizeof *out->v);
	if (out->v == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", who);
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		const fv_config_node *pair = fv_node_at(list, i);
		if (fv_node_kind(pair) != FV_NODE_SEQ || fv_node_size(pair) != 2)
			return fv_error_at(pair, FV_ERR_CONFIG,
			                   "%s: min_max_values[%zu]: expected a pair [min, max]", who, i);
		range *r = &out->v[i];
		fv_status st = read_bound(fv_node_at(pair, 0), who, &r->lo, &r->has_lo);
		if (st == FV_OK)
			st = read_bound(fv_node_at(pair, 1), who, &r->hi, &r->has_hi);
		if (st != FV_OK)
			return st;
		if (r->has_lo && r->has_hi && !(r->lo <= r->hi))
			return fv_error_at(pair, FV_ERR_CONFIG, "%s: min_max_values[%zu]: min %g is above "
			                   "max %g", who, i, r->lo, r->hi);
		if (!r->has_lo)
			r->lo = -INFINITY;
		if (!r->has_hi)
			r->hi = INFINITY;
	}
	return FV_OK;
}

/* ---- RangeRegularizationLoss ---------------------------------------------------------- */

#define RANGE_NAME "RangeRegularizationLoss"

typedef struct range_loss {
	const fv_config_node *min_max_values; /* during create(): read into r */
	double max_norm; /* NAN: none */
	double factor;
	ranges r;
} range_loss;

static const fv_option range_options[] = {
	FV_OPT("min_max_values", NODE, range_loss, min_max_values, NULL,
	       "[min, max] per channel (null: unbounded); values outside are penalised",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("max_norm", FLOAT, range_loss, max_norm, NULL,
	       "the stimulus' L2 norm above this is penalised (null: no norm penalty)",
	       .min = 0, .max = 1e300, .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	FV_OPT("factor", FLOAT, range_loss, factor, "1.0", "weight of the whole penalty"),
	{0},
};

/* The channel ranges, which the plugin allocated. */
static void range_destroy(fv_module *m)
{
	free(((range_loss *)fv_module_priv(m))->r.v);
}

static fv_status range_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	range_loss *p = fv_module_priv(m);
	return read_ranges(p->min_max_values, RANGE_NAME, &p->r);
}

static fv_tensor *accumulate(fv_ctx *ctx, fv_tensor *total, fv_tensor *term)
{
	return total == NULL ? term : fv_add(ctx, total, term);
}

static fv_tensor *range_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const range_loss *p = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	if (x->ndim < 2 || (size_t)x->shape[1] < p->r.n) {
		fv_error(FV_ERR_SHAPE, RANGE_NAME ": %zu channel ranges need a stimulus with at least "
		                       "%zu channels in dim 1, got %s",
		         p->r.n, p->r.n, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	fv_tensor *loss = NULL;
	for (size_t c = 0; c < p->r.n; c++) {
		const range *r = &p->r.v[c];
		fv_tensor *xc = fv_slice(ctx, x, 1, (int64_t)c, (int64_t)c + 1, 1);
		if (r->has_lo)
			loss = accumulate(ctx, loss,
			                  fv_sum_all(ctx, fv_relu(ctx, fv_add_scalar(ctx, fv_neg(ctx, xc),
			                                                             r->lo))));
		if (r->has_hi)
			loss = accumulate(ctx, loss,
			                  fv_sum_all(ctx, fv_relu(ctx, fv_add_scalar(ctx, xc, -r->hi))));
	}
	if (!isnan(p->max_norm)) {
		fv_tensor *norm = fv_norm(ctx, x, 2, 0, NULL, false);
		loss = accumulate(ctx, loss, fv_relu(ctx, fv_add_scalar(ctx, norm, -p->max_norm)));
	}
	if (loss == NULL) /* nothing bounded: openretina's 0.0 */
		return fv_ctx_scalar(ctx, 0);
	return fv_mul_scalar(ctx, loss, p->factor);
}

/* ---- ChangeNormJointlyClipRangeSeparately ---------------------------------------------- */

#define CLIP_NAME "ChangeNormJointlyClipRangeSeparately"

typedef struct clip {
	const fv_config_node *min_max_values; /* during create(): read into r */
	double norm; /* NAN: none */
	ranges r;
} clip;

static const fv_option clip_options[] = {
	FV_OPT("min_max_values", NODE, clip, min_max_values, NULL,
	       "[min, max] per channel (null: unbounded) that values are clamped to",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("norm", FLOAT, clip, norm, NULL,
	       "L2 norm each batch element is rescaled to before clamping (null: no rescaling)",
	       .min = 1e-300, .max = 1e300, .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	{0},
};

/* The same for the clip. */
static void clip_destroy(fv_module *m)
{
	free(((clip *)fv_module_priv(m))->r.v);
}

static fv_status clip_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	clip *p = fv_module_priv(m);
	return read_ranges(p->min_max_values, CLIP_NAME, &p->r);
}

static fv_status rescale(const clip *p, fv_tensor *x)
{
	int64_t per = x->numel / x->shape[0];
	for (int64_t b = 0; b < x->shape[0]; b++) {
		fv_real *v = x->data + b * per;
		double ss = 0;
		for (int64_t i = 0; i < per; i++)
			ss += (double)v[i] * v[i];
		if (!isfinite(ss))
			return fv_error(FV_ERR_ARG, CLIP_NAME ": batch element %lld holds non-finite "
			                            "values (NaN weights, or a diverging optimisation?)",
			                (long long)b);
		if (!(ss > 0))
			return fv_error(FV_ERR_ARG, CLIP_NAME ": batch element %lld has norm 0; it cannot "
			                            "be rescaled to norm %g",
			                (long long)b, p->norm);
		double scale = p->norm / sqrt(ss);
		for (int64_t i = 0; i < per; i++)
			v[i] = (fv_real)(v[i] * scale);
	}
	return FV_OK;
}

static fv_status clip_project(fv_module *m, fv_tensor *x)
{
	const clip *p = fv_module_priv(m);
	if (x == NULL || x->ndim < 2 || x->numel == 0 || (size_t)x->shape[1] != p->r.n)
		return fv_error(FV_ERR_SHAPE, CLIP_NAME ": expected %zu channels in dim 1, got %s",
		                p->r.n, x ? fv_shape_str(x->ndim, x->shape) : "no stimulus");
	if (!isnan(p->norm)) {
		fv_status st = rescale(p, x);
		if (st != FV_OK)
			return st;
	}
	int64_t C = x->shape[1], inner = x->numel / (x->shape[0] * C);
	for (int64_t b = 0; b < x->shape[0]; b++)
		for (int64_t c = 0; c < C; c++) {
			fv_real *v = x->data + (b * C + c) * inner;
			const range *r = &p->r.v[c];
			for (int64_t i = 0; i < inner; i++)
				v[i] = (fv_real)fmin(fmax(v[i], r->lo), r->hi);
		}
	return FV_OK;
}

/* ---- TemporalGaussianLowPassFilterProcessor ---------------------------------------------- */

#define LOWPASS_NAME "TemporalGaussianLowPassFilterProcessor"

typedef struct lowpass {
	double sigma;
	int64_t kernel_size;
	const char *device;
	fv_tensor *kernel; /* state "kernel" (kernel_size), owned by the module */
	fv_real *column;   /* scratch: one pixel's time course */
	int64_t column_len;
} lowpass;

static const fv_option lowpass_options[] = {
	FV_OPT("sigma", FLOAT, lowpass, sigma, NULL,
	       "standard deviation of the Gaussian, in frames (> 0)", .flags = FV_OPT_REQUIRED),
	FV_OPT("kernel_size", INT, lowpass, kernel_size, NULL, "number of taps of the kernel",
	       .min = 1, .max = 1e6, .flags = FV_OPT_REQUIRED),
	FV_OPT("device", STRING, lowpass, device, "cpu",
	       "accepted for openretina compatibility; fovea runs on the CPU"),
	{0},
};

static void lowpass_destroy(fv_module *m)
{
	free(((lowpass *)fv_module_priv(m))->column);
}

/* openretina's _gaussian_1d_kernel, in float as torch computes it. */
static void gaussian_kernel(fv_real *k, int64_t size, double sigma)
{
	float two_var = (float)(2 * sigma * sigma), sum = 0;
	for (int64_t i = 0; i < size; i++) {
		float x = (float)(i - size / 2), g = expf(-(x * x) / two_var);
		k[i] = (fv_real)g;
		sum += g;
	}
	for (int64_t i = 0; i < size; i++)
		k[i] = (fv_real)((float)k[i] / sum);
}

static fv_status lowpass_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	lowpass *p = fv_module_priv(m);
	if (!(p->sigma > 0))
		return fv_error(FV_ERR_CONFIG, LOWPASS_NAME ": sigma must be > 0, got %g", p->sigma);
	p->kernel = fv_module_set_state(m, "kernel", 1, &p->kernel_size);
	if (p->kernel == NULL)
		return FV_ERR_NOMEM;
	gaussian_kernel(p->kernel->data, p->kernel_size, p->sigma);
	return FV_OK;
}

/* out[t] = sum_j k[j] * in[t + j - left], zero outside [0, T). */
static void filter_column(const fv_real *k, int64_t K, const fv_real *in, fv_real *out,
                          int64_t T, int64_t stride)
{
	int64_t left = (K - 1) / 2;
	for (int64_t t = 0; t < T; t++) {
		double acc = 0;
		for (int64_t j = 0; j < K; j++) {
			int64_t s = t + j - left;
			if (s >= 0 && s < T)
				acc += (double)k[j] * in[s];
		}
		out[t * stride] = (fv_real)acc;
	}
}

static fv_status lowpass_project(fv_module *m, fv_tensor *x)
{
	lowpass *p = fv_module_priv(m);
	if (x == NULL || x->ndim != 5)
		return fv_error(FV_ERR_SHAPE, LOWPASS_NAME ": expected a stimulus (N, C, T, H, W), got %s",
		                x ? fv_shape_str(x->ndim, x->shape) : "none");
	int64_t T = x->shape[2], HW = x->shape[3] * x->shape[4], NC = x->shape[0] * x->shape[1];
	if (T > p->column_len) {
		fv_real *col = realloc(p->column, (size_t)T * sizeof *col);
		if (col == NULL)
			return fv_error(FV_ERR_NOMEM, LOWPASS_NAME ": out of memory");
		p->column = col;
		p->column_len = T;
	}
	for (int64_t nc = 0; nc < NC; nc++)
		for (int64_t px = 0; px < HW; px++) {
			fv_real *v = x->data + nc * T * HW + px;
			for (int64_t t = 0; t < T; t++)
				p->column[t] = v[t * HW];
			filter_column(p->kernel->data, p->kernel->numel, p->column, v, T, HW);
		}
	return FV_OK;
}

/* ---- descriptors ------------------------------------------------------------------------- */

#define PREFIX "openretina.insilico.stimulus_optimization.regularizer."

static const char *const range_names[] = {RANGE_NAME, PREFIX RANGE_NAME, NULL};
static const char *const clip_names[] = {CLIP_NAME, PREFIX CLIP_NAME, NULL};
static const char *const lowpass_names[] = {LOWPASS_NAME, PREFIX LOWPASS_NAME, NULL};

static const fv_component range_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = range_names,
	.doc = "stimulus penalty: values outside per-channel ranges and norm above max_norm",
	.options = range_options,
	.priv_size = sizeof(range_loss),
	.create = range_create,
	.destroy = range_destroy,
	.penalty = range_penalty,
};

static const fv_component clip_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = clip_names,
	.doc = "stimulus postprocessor: rescale each batch element to a norm, clamp each channel",
	.options = clip_options,
	.priv_size = sizeof(clip),
	.create = clip_create,
	.destroy = clip_destroy,
	.project = clip_project,
};

static const fv_component lowpass_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = lowpass_names,
	.doc = "stimulus postprocessor: Gaussian low-pass filter along time",
	.options = lowpass_options,
	.priv_size = sizeof(lowpass),
	.create = lowpass_create,
	.destroy = lowpass_destroy,
	.project = lowpass_project,
};

FV_PLUGIN_DEFINE("regularizers-stimulus", &range_component, &clip_component, &lowpass_component);
