/*
** laplace.c: openretina's Laplace smoothness regularizers
** (openretina.modules.layers.regularizers, from neuralpredictors).
**
** Two filter modules and four penalties built on them:
**
**   Laplace              2-D Laplace filter (3x3, 5x5 or 7x7), buffer `filter`
**   Laplace1d            1-D [-1, 2, -1] filter, buffer `filter`
**   LaplaceL2norm        agg(laplace(w)^2) / (agg(w^2) + 1e-6) of a 2-D conv weight
**   FlatLaplaceL23dnorm  the same for (oc, ic, 1, kh, kw) 3-D weights
**   TimeLaplaceL23dnorm  the same with Laplace1d for (oc, ic, kt, 1, 1) weights
**   GaussianLaplaceL2    LaplaceL2norm with the Laplace output damped by
**                        1 - gaussian2d in the centre of the kernel
**
** agg is sum, or mean when fa->reduction is FV_REDUCE_MEAN (openretina's
** avg=True); DEFAULT means sum, as openretina's avg=False.  The penalties
** own their filter as the child module `laplace`, so their state_dict entry
** is `laplace.filter`, as in openretina.  The filters are applied with
** conv3d and a depth-1 kernel, so autograd gives the gradient.
*/
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/plugin.h>

/* Keeps the norm ratio finite for an all-zero weight. */
#define NORM_EPS 1e-6

#define MAX_PADDING 1e6

/* ---- the filters ------------------------------------------------------------ */

static const fv_real LAPLACE_1D[3] = {-1, 2, -1};

static const fv_real LAPLACE_3x3[9] = {
	0, -1, 0,
	-1, 4, -1,
	0, -1, 0,
};

static const fv_real LAPLACE_5x5[25] = {
	0, 0, 1, 0, 0,
	0, 1, 2, 1, 0,
	1, 2, -16, 2, 1,
	0, 1, 2, 1, 0,
	0, 0, 1, 0, 0,
};

static const fv_real LAPLACE_7x7[49] = {
	0, 0, 1, 1, 1, 0, 0,
	0, 1, 3, 3, 3, 1, 0,
	1, 3, 0, -7, 0, 3, 1,
	1, 3, -7, -24, -7, 3, 1,
	1, 3, 0, -7, 0, 3, 1,
	0, 1, 3, 3, 3, 1, 0,
	0, 0, 1, 1, 1, 0, 0,
};

typedef struct laplace_filter {
	int64_t padding;        /* FV_NONE_INT until create() resolves it: size // 2 */
	int64_t size;           /* kernel side: filter_size (Laplace), 3 (Laplace1d) */
	bool persistent_buffer;
	const char *what;       /* component name, for messages */
	int spatial_dims;       /* 2: Laplace, 1: Laplace1d */
	fv_tensor *filter;      /* (1, 1, k, k) or (1, 1, k) */
	bool owns_filter;       /* not persistent: not a module tensor, freed here */
} laplace_filter;

#define PERSISTENT_OPTION                                                            \
	FV_OPT("persistent_buffer", BOOL, laplace_filter, persistent_buffer, "true", \
	       "false: the filter is not a module tensor (not in the state_dict)")

static const fv_option laplace_options[] = {
	FV_OPT("padding", INT, laplace_filter, padding, "null",
	       "zero padding on each side; null: filter_size // 2 (same size)", .min = 0,
	       .max = MAX_PADDING, .flags = FV_OPT_NULLABLE),
	FV_OPT("filter_size", INT, laplace_filter, size, "3", "3, 5 or 7", .min = 3, .max = 7),
	PERSISTENT_OPTION,
	{0},
};

/* Laplace1d has no default padding in openretina: it must be given. */
static const fv_option laplace1d_options[] = {
	FV_OPT("padding", INT, laplace_filter, padding, NULL,
	       "zero padding on each side; null: 1 (same size)", .min = 0, .max = MAX_PADDING,
	       .flags = FV_OPT_NULLABLE | FV_OPT_REQUIRED),
	PERSISTENT_OPTION,
	{0},
};

static const fv_real *filter_values(int spatial_dims, int64_t size)
{
	if (spatial_dims == 1)
		return LAPLACE_1D;
	switch (size) {
	case 3: return LAPLACE_3x3;
	case 5: return LAPLACE_5x5;
	case 7: return LAPLACE_7x7;
	default: return NULL;
	}
}

static fv_status filter_create(fv_module *m, const char *what, int spatial_dims)
{
	laplace_filter *lf = fv_module_priv(m);
	const fv_real *values = filter_values(spatial_dims, lf->size);
	if (values == NULL)
		return fv_error(FV_ERR_CONFIG, "%s: filter_size %lld is not supported (expected 3, 5 or 7)",
		                what, (long long)lf->size);
	lf->what = what;
	lf->spatial_dims = spatial_dims;
	if (lf->padding == FV_NONE_INT)
		lf->padding = lf->size / 2;
	int64_t shape[4] = {1, 1, lf->size, lf->size};
	int ndim = 2 + spatial_dims;
	if (lf->persistent_buffer) {
		lf->filter = fv_module_add_buffer(m, "filter", ndim, shape);
	} else {
		lf->filter = fv_tensor_new(ndim, shape);
		lf->owns_filter = lf->filter != NULL;
	}
	if (lf->filter == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for its filter", what);
	memcpy(lf->filter->data, values, (size_t)lf->filter->numel * sizeof(fv_real));
	return FV_OK;
}

static fv_status laplace_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	return filter_create(m, "Laplace", 2);
}

static fv_status laplace1d_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	((laplace_filter *)fv_module_priv(m))->size = 3;
	return filter_create(m, "Laplace1d", 1);
}

/* A filter outside the state_dict is not a module tensor: it is freed here. */
static void filter_destroy(fv_module *m)
{
	laplace_filter *lf = fv_module_priv(m);
	if (lf->owns_filter)
		fv_tensor_free(lf->filter);
}

/* Cross-correlate x with the filter, as F.conv2d / F.conv1d with one input
** and one output channel.  x is (N, 1, *spatial) or, unbatched, (1, *spatial);
** it runs as a conv3d on (N, 1, 1, [1,] *spatial) with a depth-1 kernel. */
static fv_tensor *filter_apply(fv_ctx *ctx, const laplace_filter *lf, fv_tensor *x)
{
	if (x == NULL) {
		if (fv_errmsg()[0] == '\0')
			fv_error(FV_ERR_ARG, "%s: x is NULL", lf->what);
		return NULL;
	}
	int sd = lf->spatial_dims;
	bool batched = x->ndim == sd + 2;
	if ((!batched && x->ndim != sd + 1) || x->shape[batched ? 1 : 0] != 1) {
		fv_error(FV_ERR_SHAPE, "%s: x %s must be (N, 1, %s) or (1, %s): the filter has one "
		         "input channel", lf->what, fv_shape_str(x->ndim, x->shape),
		         sd == 2 ? "H, W" : "L", sd == 2 ? "H, W" : "L");
		return NULL;
	}
	int64_t n = batched ? x->shape[0] : 1;
	int64_t x5[5] = {n, 1, 1, 1, 1};
	int64_t w5[5] = {1, 1, 1, 1, 1};
	int64_t out_spatial[2];
	fv_conv3d_params p = {0};
	for (int i = 0; i < sd; i++) {
		int axis = 5 - sd + i;
		int64_t len = x->shape[x->ndim - sd + i];
		out_spatial[i] = len + 2 * lf->padding - lf->size + 1;
		if (out_spatial[i] < 1) {
			fv_error(FV_ERR_SHAPE, "%s: x %s is smaller than the %lld-wide filter with "
			         "padding %lld", lf->what, fv_shape_str(x->ndim, x->shape),
			         (long long)lf->size, (long long)lf->padding);
			return NULL;
		}
		x5[axis] = len;
		w5[axis] = lf->size;
		p.pad[axis - 2][0] = p.pad[axis - 2][1] = (int)lf->padding;
	}
	fv_tensor *w = fv_reshape(ctx, lf->filter, 5, w5);
	fv_tensor *y = fv_conv3d(ctx, fv_reshape(ctx, x, 5, x5), w, NULL, &p);
	int64_t out_shape[4];
	int k = 0;
	if (batched)
		out_shape[k++] = n;
	out_shape[k++] = 1;
	for (int i = 0; i < sd; i++)
		out_shape[k++] = out_spatial[i];
	return fv_reshape(ctx, y, k, out_shape);
}

/* forward and penalty of the filter modules are the same: the filtered x. */
static fv_tensor *filter_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                 const fv_forward_args *fa)
{
	(void)fa;
	return filter_apply(ctx, fv_module_priv(m), x);
}

/* ---- the normalised penalties ------------------------------------------------- */

typedef struct laplace_norm {
	int64_t padding;
	bool persistent_buffer;  /* TimeLaplaceL23dnorm; the others' is always true */
	fv_int_list kernel;      /* GaussianLaplaceL2 */
	const char *what;
	fv_module *laplace;      /* child "laplace", owned by the module */
	fv_tensor *damping;      /* GaussianLaplaceL2: 1 - gaussian2d, (1, 1, k1, k2) */
} laplace_norm;

#define PADDING_OPTION                                                          \
	FV_OPT("padding", INT, laplace_norm, padding, "null",                   \
	       "zero padding of the Laplace conv; null: kernel // 2", .min = 0, \
	       .max = MAX_PADDING, .flags = FV_OPT_NULLABLE)

static const fv_option padding_options[] = {
	PADDING_OPTION,
	{0},
};

static const fv_option time_options[] = {
	PADDING_OPTION,
	FV_OPT("persistent_buffer", BOOL, laplace_norm, persistent_buffer, "true",
	       "false: laplace.filter is not a module tensor (not in the state_dict)"),
	{0},
};

static const fv_option gaussian_options[] = {
	FV_OPT("kernel", INT_LIST, laplace_norm, kernel, NULL,
	       "size of the regularised kernel: k or [k1, k2] (the Gaussian mask's size)", .min = 1,
	       .max = 1e6, .flags = FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST),
	PADDING_OPTION,
	{0},
};

/* Build the child `laplace` from its own component, as openretina's
** self.laplace = Laplace(padding=...) / Laplace1d(...). */
static fv_status add_laplace_child(fv_module *m, const char *what, const fv_component *filter,
                                   int64_t padding, bool persistent, const fv_build_args *args)
{
	char yaml[96];
	char pad[32];
	if (padding == FV_NONE_INT)
		snprintf(pad, sizeof pad, "null");
	else
		snprintf(pad, sizeof pad, "%lld", (long long)padding);
	snprintf(yaml, sizeof yaml, "padding: %s\npersistent_buffer: %s\n", pad,
	         persistent ? "true" : "false");
	fv_config *spec = fv_config_load_string(yaml, strlen(yaml), what);
	if (spec == NULL)
		return fv_error(FV_ERR_CONFIG, "%s: building its laplace filter: %s", what, fv_errmsg());
	fv_module *child = fv_instantiate_component(filter, fv_config_root(spec), args, "laplace");
	fv_config_free(spec);
	if (child == NULL) {
		fv_error_prefix("%s: building its laplace filter: ", what);
		return fv_errcode();
	}
	fv_status rc = fv_module_add_child(m, "laplace", child); /* adopts it, even on failure */
	if (rc == FV_OK) {
		laplace_norm *ln = fv_module_priv(m);
		ln->laplace = child;
	}
	return rc;
}

/* GaussianLaplaceL2's mask is not a module tensor: it is freed here. */
static void norm_destroy(fv_module *m)
{
	fv_tensor_free(((laplace_norm *)fv_module_priv(m))->damping);
}

static const fv_component laplace_component;
static const fv_component laplace1d_component;

static fv_status laplace_l2norm_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	laplace_norm *ln = fv_module_priv(m);
	ln->what = "LaplaceL2norm";
	return add_laplace_child(m, ln->what, &laplace_component, ln->padding, true, args);
}

static fv_status flat_laplace_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	laplace_norm *ln = fv_module_priv(m);
	ln->what = "FlatLaplaceL23dnorm";
	return add_laplace_child(m, ln->what, &laplace_component, ln->padding, true, args);
}

static fv_status time_laplace_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	laplace_norm *ln = fv_module_priv(m);
	ln->what = "TimeLaplaceL23dnorm";
	return add_laplace_child(m, ln->what, &laplace1d_component, ln->padding,
	                         ln->persistent_buffer, args);
}

/* openretina's gaussian2d(size=(k1, k2), sigma) with theta 0, centre (0, 0),
** min-max normalised, computed in double and rounded to float32 as numpy's
** astype does; stored as 1 - mask, the factor the forward uses. */
static fv_status make_damping(laplace_norm *ln, int64_t k1, int64_t k2)
{
	double sigma = (double)(k1 < k2 ? k1 : k2) / 4;
	int64_t n = k1 * k2;
	double *g = malloc((size_t)n * sizeof *g);
	int64_t shape[4] = {1, 1, k1, k2};
	ln->damping = fv_tensor_new(4, shape);
	if (g == NULL || ln->damping == NULL) {
		free(g);
		return fv_error(FV_ERR_NOMEM, "GaussianLaplaceL2: out of memory for its mask");
	}
	double lo = INFINITY, hi = -INFINITY;
	for (int64_t i = 0; i < k1; i++) {
		for (int64_t j = 0; j < k2; j++) {
			double x = (double)i - (double)(k1 - 1) / 2;
			double y = (double)j - (double)(k2 - 1) / 2;
			double v = exp(-0.5 * (x * x / (sigma * sigma) + y * y / (sigma * sigma)));
			g[i * k2 + j] = v;
			lo = fmin(lo, v);
		}
	}
	for (int64_t i = 0; i < n; i++)
		hi = fmax(hi, g[i] - lo);
	for (int64_t i = 0; i < n; i++) {
		float mask = (float)((g[i] - lo) / hi);
		ln->damping->data[i] = (fv_real)(1.0f - mask);
	}
	free(g);
	return FV_OK;
}

static fv_status gaussian_laplace_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	laplace_norm *o = fv_module_priv(m);
	const char *what = o->what = "GaussianLaplaceL2";
	if (o->kernel.n != 1 && o->kernel.n != 2)
		return fv_error(FV_ERR_CONFIG, "%s: kernel has %zu sizes (expected k or [k1, k2])",
		                what, o->kernel.n);
	int64_t k1 = o->kernel.v[0], k2 = o->kernel.v[o->kernel.n - 1];
	if (k1 < 1 || k2 < 1)
		return fv_error(FV_ERR_CONFIG, "%s: kernel (%lld, %lld) must be positive", what,
		                (long long)k1, (long long)k2);
	if (k1 == 1 && k2 == 1)
		return fv_error(FV_ERR_CONFIG, "%s: kernel (1, 1) makes a constant Gaussian mask "
		                "(openretina's min-max normalisation divides 0 by 0)", what);
	fv_status rc = make_damping(o, k1, k2);
	if (rc == FV_OK)
		rc = add_laplace_child(m, what, &laplace_component, o->padding, true, args);
	return rc;
}

static fv_tensor *aggregate(fv_ctx *ctx, fv_tensor *x, fv_reduction reduction)
{
	return reduction == FV_REDUCE_MEAN ? fv_mean_all(ctx, x) : fv_sum_all(ctx, x);
}

/* agg((laplace(flat) [* damping])^2) / (agg(flat^2) + 1e-6).  fa may be
** NULL: the defaults (sum). */
static fv_tensor *normalised_penalty(fv_ctx *ctx, const laplace_norm *ln, fv_tensor *flat,
                                     fv_tensor *damping, const fv_forward_args *fa)
{
	fv_reduction reduction = fa != NULL ? fa->reduction : FV_REDUCE_DEFAULT;
	if (reduction == FV_REDUCE_NONE) {
		fv_error(FV_ERR_ARG, "%s: reduction None is not supported (expected sum or mean, "
		         "openretina's avg=False/True)", ln->what);
		return NULL;
	}
	fv_forward_args child = FV_FORWARD_ARGS_INIT;
	fv_tensor *lap = fv_module_forward(ln->laplace, ctx, flat, &child);
	if (damping != NULL)
		lap = fv_mul(ctx, lap, damping);
	fv_tensor *num = aggregate(ctx, fv_square(ctx, lap), reduction);
	fv_tensor *den = aggregate(ctx, fv_square(ctx, flat), reduction);
	return fv_div(ctx, num, fv_add_scalar(ctx, den, NORM_EPS));
}

static bool weight_missing(const char *what, const fv_tensor *x)
{
	if (x != NULL)
		return false;
	if (fv_errmsg()[0] == '\0')
		fv_error(FV_ERR_ARG, "%s: the weight x is NULL", what);
	return true;
}

/* x (oc, ic, k1, k2) viewed as (oc*ic, 1, k1, k2). */
static fv_tensor *flatten_2d(fv_ctx *ctx, const char *what, fv_tensor *x)
{
	if (x->ndim != 4) {
		fv_error(FV_ERR_SHAPE, "%s: weight %s must be (out, in, k1, k2)", what,
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t shape[4] = {x->shape[0] * x->shape[1], 1, x->shape[2], x->shape[3]};
	return fv_reshape(ctx, x, 4, shape);
}

static fv_tensor *laplace_l2norm_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                         const fv_forward_args *fa)
{
	const laplace_norm *ln = fv_module_priv(m);
	if (weight_missing(ln->what, x))
		return NULL;
	fv_tensor *flat = flatten_2d(ctx, ln->what, x);
	return flat ? normalised_penalty(ctx, ln, flat, NULL, fa) : NULL;
}

static fv_tensor *flat_laplace_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                       const fv_forward_args *fa)
{
	const laplace_norm *ln = fv_module_priv(m);
	if (weight_missing(ln->what, x))
		return NULL;
	if (x->ndim != 5 || x->shape[2] != 1) {
		fv_error(FV_ERR_SHAPE, "%s: weight %s must be (out, in, 1, kh, kw): time dimension "
		         "must be one", ln->what, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t shape[4] = {x->shape[0] * x->shape[1], 1, x->shape[3], x->shape[4]};
	return normalised_penalty(ctx, ln, fv_reshape(ctx, x, 4, shape), NULL, fa);
}

static fv_tensor *time_laplace_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                       const fv_forward_args *fa)
{
	const laplace_norm *ln = fv_module_priv(m);
	if (weight_missing(ln->what, x))
		return NULL;
	if (x->ndim != 5 || x->shape[3] != 1 || x->shape[4] != 1) {
		fv_error(FV_ERR_SHAPE, "%s: weight %s must be (out, in, kt, 1, 1): space dimensions "
		         "must be one", ln->what, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t shape[3] = {x->shape[0] * x->shape[1], 1, x->shape[2]};
	return normalised_penalty(ctx, ln, fv_reshape(ctx, x, 3, shape), NULL, fa);
}

/* Sizes a and b broadcast (equal, or one of them 1). */
static bool broadcasts(int64_t a, int64_t b)
{
	return a == b || a == 1 || b == 1;
}

static fv_tensor *gaussian_laplace_penalty(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                           const fv_forward_args *fa)
{
	const laplace_norm *ln = fv_module_priv(m);
	if (weight_missing(ln->what, x))
		return NULL;
	fv_tensor *flat = flatten_2d(ctx, ln->what, x);
	if (flat == NULL)
		return NULL;
	/* openretina expands the (K1, K2) mask to x's (k1, k2), then multiplies
	** it with the Laplace output, whose size depends on the padding. */
	const fv_tensor *d = ln->damping;
	const laplace_filter *lf = fv_module_priv(ln->laplace);
	int64_t k1 = x->shape[2], k2 = x->shape[3];
	int64_t h = k1 + 2 * lf->padding - lf->size + 1, w = k2 + 2 * lf->padding - lf->size + 1;
	bool fits = (d->shape[2] == k1 || d->shape[2] == 1) && (d->shape[3] == k2 || d->shape[3] == 1) &&
	            broadcasts(h, k1) && broadcasts(w, k2);
	if (!fits) {
		fv_error(FV_ERR_SHAPE, "%s: weight %s does not fit the Gaussian mask %s with padding "
		         "%lld (the Laplace output is (%lld, %lld); padding 0 cannot be used)",
		         ln->what, fv_shape_str(x->ndim, x->shape), fv_shape_str(2, d->shape + 2),
		         (long long)lf->padding, (long long)h, (long long)w);
		return NULL;
	}
	int64_t shape[4] = {1, 1, k1, k2};
	fv_tensor *damping = fv_expand(ctx, ln->damping, 4, shape);
	return normalised_penalty(ctx, ln, flat, damping, fa);
}

/* ---- descriptors ---------------------------------------------------------------- */

#define REGULARIZERS "openretina.modules.layers.regularizers."

static const char *const laplace_names[] = {
	"Laplace", REGULARIZERS "Laplace", "openretina.modules.layers.Laplace", NULL,
};
static const char *const laplace1d_names[] = {"Laplace1d", REGULARIZERS "Laplace1d", NULL};
static const char *const laplace_l2norm_names[] = {
	"LaplaceL2norm", REGULARIZERS "LaplaceL2norm", NULL,
};
static const char *const flat_laplace_names[] = {
	"FlatLaplaceL23dnorm", REGULARIZERS "FlatLaplaceL23dnorm",
	"openretina.modules.layers.FlatLaplaceL23dnorm", NULL,
};
static const char *const time_laplace_names[] = {
	"TimeLaplaceL23dnorm", REGULARIZERS "TimeLaplaceL23dnorm", NULL,
};
static const char *const gaussian_laplace_names[] = {
	"GaussianLaplaceL2", REGULARIZERS "GaussianLaplaceL2", NULL,
};

static const fv_component laplace_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = laplace_names,
	.doc = "2-D Laplace filter (3x3, 5x5, 7x7) of a one-channel stack (N, 1, H, W)",
	.options = laplace_options,
	.priv_size = sizeof(laplace_filter),
	.create = laplace_create,
	.destroy = filter_destroy,
	.forward = filter_forward,
	.penalty = filter_forward,
};

static const fv_component laplace1d_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = laplace1d_names,
	.doc = "1-D Laplace filter [-1, 2, -1] of one-channel sequences (N, 1, L)",
	.options = laplace1d_options,
	.priv_size = sizeof(laplace_filter),
	.create = laplace1d_create,
	.destroy = filter_destroy,
	.forward = filter_forward,
	.penalty = filter_forward,
};

static const fv_component laplace_l2norm_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = laplace_l2norm_names,
	.doc = "agg(laplace(w)^2) / (agg(w^2) + 1e-6) of a 2-D conv weight (out, in, k1, k2)",
	.options = padding_options,
	.priv_size = sizeof(laplace_norm),
	.create = laplace_l2norm_create,
	.destroy = norm_destroy,
	.penalty = laplace_l2norm_penalty,
};

static const fv_component flat_laplace_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = flat_laplace_names,
	.doc = "normalised spatial Laplace penalty of a (out, in, 1, kh, kw) 3-D conv weight",
	.options = padding_options,
	.priv_size = sizeof(laplace_norm),
	.create = flat_laplace_create,
	.destroy = norm_destroy,
	.penalty = flat_laplace_penalty,
};

static const fv_component time_laplace_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = time_laplace_names,
	.doc = "normalised temporal Laplace penalty of a (out, in, kt, 1, 1) 3-D conv weight",
	.options = time_options,
	.priv_size = sizeof(laplace_norm),
	.create = time_laplace_create,
	.destroy = norm_destroy,
	.penalty = time_laplace_penalty,
};

static const fv_component gaussian_laplace_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REGULARIZER,
	.names = gaussian_laplace_names,
	.doc = "LaplaceL2norm with the Laplace output damped by 1 - gaussian2d(kernel)",
	.options = gaussian_options,
	.priv_size = sizeof(laplace_norm),
	.create = gaussian_laplace_create,
	.destroy = norm_destroy,
	.penalty = gaussian_laplace_penalty,
};

FV_PLUGIN_DEFINE("regularizers-laplace", &laplace_component, &laplace1d_component,
                 &laplace_l2norm_component, &flat_laplace_component, &time_laplace_component,
                 &gaussian_laplace_component);
