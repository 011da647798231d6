/*
** spatial_contrast.c: SpatialContrastReadout
** (openretina.modules.readout.spatial_contrast_model_readout), the readout
** of the spatial-contrast models (Sridhar et al. 2025): per neuron a frozen
** temporal and spatial filter from its spike-triggered average and four
** learnt scalars w, a, b, c.
**
**   f[b, k, t, h, w] = sum_j temporal_filters[k, j] x[b, 0, t + j, h, w]     (valid)
**   imean   = sum_hw(f  spatial_filters[k]) / (sf_sums[k] + 1e-8)
**   mean_sq = sum_hw(f^2 spatial_filters[k]) / (sf_sums[k] + 1e-8)
**   lsc     = sqrt(clamp(mean_sq - imean^2, min 1e-6))
**   y[b, t, k] = nl_a softplus(nl_b (imean + w lsc) + nl_c)
**
** The local spatial contrast is the variance decomposition with a clamp, as
** this readout computes it (SingleCellSpatialContrast has the direct form).
** sf_sums is a buffer (the filters' sums at construction), used as stored.
** openretina processes neuron_chunk_size neurons at a time to bound GPU
** memory; the numbers do not depend on it, and fovea runs them at once.
** `bias` is a Parameter without gradient in openretina (the Readout base's
** interface; unused): a buffer here.  regularizer() is 0.
*/
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "readout_common.h"

#define WHO "SpatialContrastReadout"

typedef struct sc_readout {
	/* the options */
	fv_int_list in_shape;
	int64_t outdims;
	const fv_config_node *spatial_filters, *temporal_filters;
	double w_init, a_init, b_init, c_init;
	const fv_config_node *mean_activity;
	int64_t neuron_chunk_size;
	/* what create() builds */
	int64_t n, h, w, tf;
	fv_tensor *w_param, *nl_a, *nl_b, *nl_c, *bias;
	fv_tensor *spatial, *temporal, *sf_sums;
} sc_readout;

static const fv_option sc_options[] = {
	FV_OPT("in_shape", INT_LIST, sc_readout, in_shape, "null",
	       "input (1, time, height, width); null: from the model's core",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("outdims", INT, sc_readout, outdims, "null",
	       "number of neurons; null: from the session's data", .min = 1, .max = 1e12,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("spatial_filters", NODE, sc_readout, spatial_filters, NULL,
	       "frozen spatial filter of each neuron, (neurons, height, width) as nested lists",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("temporal_filters", NODE, sc_readout, temporal_filters, NULL,
	       "frozen temporal filter of each neuron, (neurons, frames) as nested lists; index -1 "
	       "weighs the newest frame", .flags = FV_OPT_REQUIRED),
	FV_OPT("w_init", FLOAT, sc_readout, w_init, "0.0", "initial contrast weight w"),
	FV_OPT("a_init", FLOAT, sc_readout, a_init, "4.0", "initial output scale nl_a"),
	FV_OPT("b_init", FLOAT, sc_readout, b_init, "1.0", "initial input gain nl_b"),
	FV_OPT("c_init", FLOAT, sc_readout, c_init, "-5.0", "initial offset nl_c"),
	FV_OPT("mean_activity", NODE, sc_readout, mean_activity, "null",
	       "per-neuron mean response the (unused) bias starts from", .flags = FV_OPT_NULLABLE),
	FV_OPT("neuron_chunk_size", INT, sc_readout, neuron_chunk_size, "32",
	       "neurons per chunk in openretina (GPU memory); no effect on the numbers", .min = 1,
	       .max = 1e12),
	{0},
};

/* ---- construction ------------------------------------------------------------- */

/* A buffer holding the nested list `node`, which must have `ndim` dims of
** which the first is n (and, for the spatial filters, the next two h, w). */
static fv_tensor *filter_buffer(fv_module *m, sc_readout *r, const char *key,
                                const fv_config_node *node, int ndim, const char *what)
{
	ro_array a;
	if (ro_array_from_node(WHO, key, node, &a) != FV_OK)
		return NULL;
	bool ok = a.ndim == ndim && a.shape[0] == r->n &&
	          (ndim == 2 || (a.shape[1] == r->h && a.shape[2] == r->w));
	fv_tensor *t = NULL;
	if (!ok)
		fv_error_at(node, FV_ERR_CONFIG, WHO ": %s: expected %s, got %s", key, what,
		            fv_shape_str(a.ndim, a.shape));
	else if ((t = ro_buffer(m, WHO, key, a.ndim, a.shape)) != NULL)
		for (int64_t i = 0; i < a.numel; i++)
			t->data[i] = (fv_real)a.v[i];
	ro_array_free(&a);
	return t;
}

static fv_tensor *filled_param(fv_module *m, const char *name, int64_t n, double v)
{
	fv_tensor *t = ro_param(m, WHO, name, 1, &n);
	if (t != NULL)
		fv_tensor_fill(t, (fv_real)v);
	return t;
}

static fv_status make_filters(fv_module *m, sc_readout *r)
{
	char what[96];
	snprintf(what, sizeof what, "(%lld, %lld, %lld): (neurons, height, width)",
	         (long long)r->n, (long long)r->h, (long long)r->w);
	r->spatial = filter_buffer(m, r, "spatial_filters", r->spatial_filters, 3, what);
	snprintf(what, sizeof what, "(%lld, frames)", (long long)r->n);
	r->temporal = r->spatial ? filter_buffer(m, r, "temporal_filters", r->temporal_filters, 2,
	                                         what)
	                         : NULL;
	r->sf_sums = r->temporal ? ro_buffer(m, WHO, "sf_sums", 1, &r->n) : NULL;
	if (r->sf_sums == NULL)
		return fv_errcode();
	r->tf = r->temporal->shape[1];
	int64_t hw = r->h * r->w;
	for (int64_t k = 0; k < r->n; k++) {
		double s = 0;
		for (int64_t p = 0; p < hw; p++)
			s += (double)r->spatial->data[k * hw + p];
		r->sf_sums->data[k] = (fv_real)s;
	}
	return FV_OK;
}

static fv_status sc_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	sc_readout *r = fv_module_priv(m);
	int64_t shape[4];
	fv_status st = ro_dims(WHO, &r->in_shape, r->outdims, args, shape, &r->n);
	if (st != FV_OK)
		return st;
	if (shape[0] != 1)
		return fv_error(FV_ERR_CONFIG, WHO ": in_shape: expected one channel, got %lld "
		                "(average the channels first)", (long long)shape[0]);
	r->h = shape[2];
	r->w = shape[3];
	st = make_filters(m, r);
	if (st != FV_OK)
		return st;
	r->w_param = filled_param(m, "w", r->n, r->w_init);
	r->nl_a = filled_param(m, "nl_a", r->n, r->a_init);
	r->nl_b = filled_param(m, "nl_b", r->n, r->b_init);
	r->nl_c = filled_param(m, "nl_c", r->n, r->c_init);
	r->bias = ro_buffer(m, WHO, "bias", 1, &r->n);
	if (!r->w_param || !r->nl_a || !r->nl_b || !r->nl_c || !r->bias)
		return fv_errcode();
	return ro_init_bias(WHO, r->bias, r->n, r->mean_activity, args, true);
}

/* ---- forward ------------------------------------------------------------------- */

static bool check_input(const sc_readout *r, const fv_tensor *x)
{
	if (x->ndim == 5 && x->shape[1] == 1 && x->shape[3] == r->h && x->shape[4] == r->w &&
	    x->shape[2] >= r->tf)
		return true;
	fv_error(FV_ERR_SHAPE, WHO ": forward: expected an input (N, 1, T, %lld, %lld) with T >= "
	         "%lld (the temporal filters' length), got %s", (long long)r->h, (long long)r->w,
	         (long long)r->tf, fv_shape_str(x->ndim, x->shape));
	return false;
}

/* v (n) viewed as (1, n, 1) against (B, n, T). */
static fv_tensor *per_neuron(fv_ctx *ctx, const sc_readout *r, fv_tensor *v)
{
	const int64_t shape[3] = {1, r->n, 1};
	return fv_reshape(ctx, v, 3, shape);
}

/* sum_hw(f sf) / (sf_sums + 1e-8): (B, n, T, h, w) -> (B, n, T). */
static fv_tensor *spatial_mean(fv_ctx *ctx, const sc_readout *r, fv_tensor *f,
                               fv_tensor *denominator)
{
	const int64_t sf_shape[5] = {1, r->n, 1, r->h, r->w};
	const int space[2] = {3, 4};
	fv_tensor *sf = fv_reshape(ctx, r->spatial, 5, sf_shape);
	return fv_div(ctx, fv_sum(ctx, fv_mul(ctx, f, sf), 2, space, false), denominator);
}

static fv_tensor *sc_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const sc_readout *r = fv_module_priv(m);
	if (!check_input(r, x))
		return NULL;
	/* Every pixel's time series through every neuron's temporal filter:
	** a conv3d with one (tf, 1, 1) kernel per neuron. */
	const int64_t kernel[5] = {r->n, 1, r->tf, 1, 1};
	const fv_conv3d_params valid = {0};
	fv_tensor *f = fv_conv3d(ctx, x, fv_reshape(ctx, r->temporal, 5, kernel), NULL, &valid);
	fv_tensor *denominator = per_neuron(ctx, r, fv_add_scalar(ctx, r->sf_sums, 1e-8));
	fv_tensor *imean = spatial_mean(ctx, r, f, denominator);
	fv_tensor *mean_sq = spatial_mean(ctx, r, fv_square(ctx, f), denominator);
	fv_tensor *variance = fv_sub(ctx, mean_sq, fv_square(ctx, imean));
	fv_tensor *lsc = fv_sqrt(ctx, fv_clamp(ctx, variance, 1e-6, INFINITY));
	fv_tensor *combined = fv_add(ctx, imean, fv_mul(ctx, per_neuron(ctx, r, r->w_param), lsc));
	fv_tensor *drive = fv_add(ctx, fv_mul(ctx, per_neuron(ctx, r, r->nl_b), combined),
	                          per_neuron(ctx, r, r->nl_c));
	fv_tensor *y = fv_mul(ctx, per_neuron(ctx, r, r->nl_a), fv_softplus(ctx, drive, 1.0, 20.0));
	static const int to_time_major[3] = {0, 2, 1};
	return fv_permute(ctx, y, to_time_major); /* (B, n, T) -> (B, T, n) */
}

static fv_tensor *sc_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)m;
	(void)fa;
	return fv_ctx_scalar(ctx, 0);
}

static fv_status sc_initialize_bias(fv_module *m, const fv_tensor *mean)
{
	const sc_readout *r = fv_module_priv(m);
	return ro_initialize_bias(WHO, r->bias, mean);
}

static const char *const sc_names[] = {
	WHO,
	"openretina.modules.readout.spatial_contrast_model_readout.SpatialContrastReadout",
	NULL,
};

static const fv_component sc_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = sc_names,
	.doc = "spatial-contrast readout: frozen STA filters per neuron, "
	       "y = a softplus(b (imean + w lsc) + c); input (N, 1, T, h, w)",
	.options = sc_options,
	.priv_size = sizeof(sc_readout),
	.create = sc_create,
	.forward = sc_forward,
	.regularizer = sc_regularizer,
	.initialize_bias = sc_initialize_bias,
};

FV_PLUGIN_DEFINE("readouts-spatial-contrast", &sc_component);
