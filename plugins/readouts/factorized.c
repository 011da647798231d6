/*
** factorized.c: FactorizedReadout (openretina.modules.readout.factorized,
** the "Klindt" readout of Klindt et al. 2017; alias KlindtReadoutWrapper3D).
**
** Each neuron has a free spatial mask and a vector of feature weights:
**
**   y[b, t, n] = softplus(sum_c (sum_p x[b, c, t, p] * mask_weights[p, n])
**                         * feature_weights[c, n] + bias[n])
**
** over the h*w pixels p of x (B, c, t, h, w).  The constraints (mask "abs";
** weights "abs", "norm": w / sqrt(sum_c w^2 + 1e-5) per neuron, "absnorm")
** are applied in place to the parameters at the start of every forward and
** are not differentiated, as in openretina.
**
** regularizer(reduction):
**   mask_l1_reg * mean_n(sum_p |mask|) + weights_l1_reg * mean_n(sum_c |w|)
**   + laplace_mask_reg * FlatLaplaceL23dnorm(padding=0)(masks as (n,1,1,h,w))
** where only the Laplace term is divided by 3 with reduction "mean".  The
** Laplace regularizer is the registered FlatLaplaceL23dnorm component, built
** as the child `_input_weights_regularizer_spatial` so its filter buffer is
** named as in openretina's state_dict.
*/
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "readout_common.h"

#define WHO "FactorizedReadout"

typedef enum fa_constraint { FA_NONE, FA_ABS, FA_NORM, FA_ABSNORM } fa_constraint;

typedef struct fa_readout {
	/* the options */
	fv_int_list in_shape;
	int64_t outdims;
	double mask_l1_reg;
	double weights_l1_reg;
	double laplace_mask_reg;
	fv_int_list mask_size;
	bool readout_bias;
	const char *weights_constraint_name;
	const char *mask_constraint;
	const fv_config_node *init_mask;
	const fv_config_node *init_weights;
	const fv_config_node *init_scales;
	const fv_config_node *mean_activity;
	/* what create() builds */
	int64_t c, h, w, n;
	fa_constraint weights_constraint;
	bool mask_abs;
	fv_tensor *mask_weights;    /* (h*w, n) */
	fv_tensor *feature_weights; /* (c, n) */
	fv_tensor *bias;            /* (n), parameter or buffer of zeros */
	fv_module *laplace;         /* FlatLaplaceL23dnorm(padding=0) */
} fa_readout;

static const fv_option fa_options[] = {
	FV_OPT("in_shape", INT_LIST, fa_readout, in_shape, "null",
	       "input (channels, time, height, width); null: from the model's core",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("outdims", INT, fa_readout, outdims, "null",
	       "number of neurons; null: from the session's data", .min = 1, .max = 1e12,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("mask_l1_reg", FLOAT, fa_readout, mask_l1_reg, NULL,
	       "weight of the L1 penalty on the spatial masks",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("weights_l1_reg", FLOAT, fa_readout, weights_l1_reg, NULL,
	       "weight of the L1 penalty on the feature weights",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("laplace_mask_reg", FLOAT, fa_readout, laplace_mask_reg, NULL,
	       "weight of the normalised Laplace smoothness penalty on the masks",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("mask_size", INT_LIST, fa_readout, mask_size, NULL,
	       "mask (height, width), or one size for a square mask; must match the input", .min = 1,
	       .max = 1e9, .flags = FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("readout_bias", BOOL, fa_readout, readout_bias, "false",
	       "learn a per-neuron bias (else a buffer of zeros)"),
	FV_OPT("weights_constraint", ENUM, fa_readout, weights_constraint_name, "null",
	       "applied in place to the feature weights each forward", .flags = FV_OPT_NULLABLE,
	       .choices = "abs|norm|absnorm"),
	FV_OPT("mask_constraint", ENUM, fa_readout, mask_constraint, "null",
	       "applied in place to the masks each forward", .flags = FV_OPT_NULLABLE,
	       .choices = "abs"),
	FV_OPT("init_mask", NODE, fa_readout, init_mask, "null",
	       "initial masks (neurons, 1, H, W), centre-cropped to mask_size",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("init_weights", NODE, fa_readout, init_weights, "null",
	       "initial feature weights (channels, neurons)", .flags = FV_OPT_NULLABLE),
	FV_OPT("init_scales", NODE, fa_readout, init_scales, "null",
	       "[[mask mean, mask std], [weights mean, weights std]] of the normal init",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("mean_activity", NODE, fa_readout, mean_activity, "null",
	       "per-neuron mean response the bias starts from (list)", .flags = FV_OPT_NULLABLE),
	{0},
};

static fa_constraint parse_constraint(const char *s)
{
	if (s == NULL)
		return FA_NONE;
	return strcmp(s, "abs") == 0 ? FA_ABS : strcmp(s, "norm") == 0 ? FA_NORM : FA_ABSNORM;
}

/* init_scales[k] = (mean, std). */
static fv_status read_scales(const fv_config_node *node, double scales[2][2])
{
	ro_array a;
	fv_status st = ro_array_from_node(WHO, "init_scales", node, &a);
	if (st != FV_OK)
		return st;
	if (a.ndim != 2 || a.shape[0] != 2 || a.shape[1] != 2)
		st = fv_error_at(node, FV_ERR_CONFIG, "%s: init_scales: expected [[mask mean, mask std], "
		                 "[weights mean, weights std]], got shape %s", WHO,
		                 fv_shape_str(a.ndim, a.shape));
	else
		for (int i = 0; i < 4; i++)
			scales[i / 2][i % 2] = a.v[i];
	ro_array_free(&a);
	return st;
}

/* init_mask (n, 1, H, W): the centred h x w crop, as (h*w, n). */
static fv_status load_init_mask(fa_readout *r, const fv_config_node *node)
{
	ro_array a;
	fv_status st = ro_array_from_node(WHO, "init_mask", node, &a);
	if (st != FV_OK)
		return st;
	if (a.ndim != 4 || a.shape[0] != r->n || a.shape[1] != 1 || a.shape[2] < r->h ||
	    a.shape[3] < r->w) {
		st = fv_error_at(node, FV_ERR_CONFIG, "%s: init_mask: expected (%lld, 1, >=%lld, >=%lld) "
		                 "(neurons, 1, height, width), got %s", WHO, (long long)r->n,
		                 (long long)r->h, (long long)r->w, fv_shape_str(a.ndim, a.shape));
		ro_array_free(&a);
		return st;
	}
	int64_t H = a.shape[2], W = a.shape[3], h0 = (H - r->h) / 2, w0 = (W - r->w) / 2;
	for (int64_t k = 0; k < r->n; k++)
		for (int64_t i = 0; i < r->h; i++)
			for (int64_t j = 0; j < r->w; j++)
				r->mask_weights->data[(i * r->w + j) * r->n + k] =
					(fv_real)a.v[(k * H + h0 + i) * W + w0 + j];
	ro_array_free(&a);
	return FV_OK;
}

static fv_status load_init_weights(fa_readout *r, const fv_config_node *node)
{
	ro_array a;
	fv_status st = ro_array_from_node(WHO, "init_weights", node, &a);
	if (st != FV_OK)
		return st;
	if (a.ndim != 2 || a.shape[0] != r->c || a.shape[1] != r->n)
		st = fv_error_at(node, FV_ERR_CONFIG, "%s: init_weights: expected (%lld, %lld) (channels, "
		                 "neurons), got %s", WHO, (long long)r->c, (long long)r->n,
		                 fv_shape_str(a.ndim, a.shape));
	else
		for (int64_t i = 0; i < a.numel; i++)
			r->feature_weights->data[i] = (fv_real)a.v[i];
	ro_array_free(&a);
	return st;
}

static bool given(const fv_config_node *n)
{
	return n != NULL && !fv_node_is_null(n);
}

/* The masks and weights from init_mask / init_weights, or normal draws with
** init_scales, with openretina's checks. */
static fv_status fa_init(fa_readout *r, const fv_build_args *args)
{
	double scales[2][2];
	fv_status st = FV_OK;
	if (given(r->init_scales))
		st = read_scales(r->init_scales, scales);
	else if (!given(r->init_mask))
		st = fv_error_at(args->spec, FV_ERR_CONFIG,
		                 "%s: Either init_mask or init_scales must be provided", WHO);
	else if (!given(r->init_weights))
		st = fv_error_at(args->spec, FV_ERR_CONFIG,
		                 "%s: init_weights not given, so init_scales must be provided", WHO);
	if (st != FV_OK)
		return st;
	fv_ctx *rng = ro_rng_new(WHO, args->seed);
	if (rng == NULL)
		return fv_errcode();
	if (given(r->init_mask))
		st = load_init_mask(r, r->init_mask);
	else
		ro_fill_normal(rng, r->mask_weights, scales[0][0], scales[0][1]);
	if (st == FV_OK && given(r->init_weights))
		st = load_init_weights(r, r->init_weights);
	else if (st == FV_OK)
		ro_fill_normal(rng, r->feature_weights, scales[1][0], scales[1][1]);
	fv_ctx_free(rng);
	return st;
}

static fv_status fa_tensors(fv_module *m, fa_readout *r, const fv_build_args *args)
{
	int64_t ms[2] = {r->h * r->w, r->n}, ws[2] = {r->c, r->n}, ns[1] = {r->n};
	r->mask_weights = ro_param(m, WHO, "mask_weights", 2, ms);
	r->feature_weights = ro_param(m, WHO, "feature_weights", 2, ws);
	r->bias = r->readout_bias ? ro_param(m, WHO, "bias", 1, ns) : ro_buffer(m, WHO, "bias", 1, ns);
	if (r->mask_weights == NULL || r->feature_weights == NULL || r->bias == NULL)
		return fv_errcode();
	r->laplace = ro_child(m, args, WHO, "FlatLaplaceL23dnorm", "padding: 0",
	                      "_input_weights_regularizer_spatial");
	if (r->laplace == NULL)
		return fv_errcode();
	fv_status st = fa_init(r, args);
	if (st != FV_OK)
		return st;
	/* openretina's initialize(): the bias only moves when a mean is given. */
	return ro_init_bias(WHO, r->bias, r->n, r->mean_activity, args, false);
}

static fv_status fa_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	fa_readout *r = fv_module_priv(m);
	int64_t shape[4], n;
	fv_status st = ro_dims(WHO, &r->in_shape, r->outdims, args, shape, &n);
	if (st == FV_OK && r->mask_size.n != 1 && r->mask_size.n != 2)
		st = fv_error_at(args->spec, FV_ERR_CONFIG,
		                 "%s: mask_size: expected a size or (height, width), got %zu values", WHO,
		                 r->mask_size.n);
	if (st != FV_OK)
		return st;
	r->c = shape[0];
	r->n = n;
	r->h = r->mask_size.v[0];
	r->w = r->mask_size.v[r->mask_size.n - 1];
	r->weights_constraint = parse_constraint(r->weights_constraint_name);
	r->mask_abs = r->mask_constraint != NULL;
	return fa_tensors(m, r, args);
}

/* ---- forward and regularizer ------------------------------------------------------ */

static void abs_in_place(fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)fabs((double)t->data[i]);
}

/* w[:, n] /= sqrt(sum_c w[c, n]^2 + 1e-5), computed in float as torch. */
static void normalise_columns(fv_tensor *w)
{
	int64_t rows = w->shape[0], cols = w->shape[1];
	for (int64_t j = 0; j < cols; j++) {
		fv_real ss = 0;
		for (int64_t i = 0; i < rows; i++)
			ss += w->data[i * cols + j] * w->data[i * cols + j];
		fv_real norm = (fv_real)sqrt((double)(ss + (fv_real)1e-5));
		for (int64_t i = 0; i < rows; i++)
			w->data[i * cols + j] /= norm;
	}
}

static void apply_constraints(fa_readout *r)
{
	if (r->mask_abs)
		abs_in_place(r->mask_weights);
	if (r->weights_constraint == FA_ABS || r->weights_constraint == FA_ABSNORM)
		abs_in_place(r->feature_weights);
	if (r->weights_constraint == FA_NORM || r->weights_constraint == FA_ABSNORM)
		normalise_columns(r->feature_weights);
}

static fv_tensor *fa_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	fa_readout *r = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	if (x->ndim != 5 || x->shape[1] != r->c || x->shape[3] != r->h || x->shape[4] != r->w) {
		fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, %lld, time, %lld, %lld) "
		         "(the mask is %lld x %lld)",
		         WHO, fv_shape_str(x->ndim, x->shape), (long long)r->c, (long long)r->h,
		         (long long)r->w, (long long)r->h, (long long)r->w);
		return NULL;
	}
	apply_constraints(r);
	int64_t b = x->shape[0], t = x->shape[2];
	int64_t flat[4] = {b, r->c, t, r->h * r->w}, wshape[4] = {1, r->c, 1, r->n};
	int channels = 1;
	/* (B, C, T, hw) @ (hw, n), weighted by feature_weights and summed over C. */
	fv_tensor *masked = fv_matmul(ctx, fv_reshape(ctx, x, 4, flat), r->mask_weights);
	fv_tensor *w = fv_reshape(ctx, r->feature_weights, 4, wshape);
	fv_tensor *out = fv_sum(ctx, fv_mul(ctx, masked, w), 1, &channels, false);
	if (r->readout_bias)
		out = fv_add(ctx, out, r->bias);
	return fv_softplus(ctx, out, 1.0, 20.0);
}

/* mean over neurons of the per-neuron L1 norm (a column sum of |w|). */
static fv_tensor *mean_column_l1(fv_ctx *ctx, fv_tensor *w)
{
	int rows = 0;
	return fv_mean_all(ctx, fv_sum(ctx, fv_abs(ctx, w), 1, &rows, false));
}

static fv_tensor *fa_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const fa_readout *r = fv_module_priv(m);
	fv_tensor *mask_r = fv_mul_scalar(ctx, mean_column_l1(ctx, r->mask_weights), r->mask_l1_reg);
	fv_tensor *wt_r = fv_mul_scalar(ctx, mean_column_l1(ctx, r->feature_weights), r->weights_l1_reg);
	int perm[2] = {1, 0};
	int64_t masks[5] = {r->n, 1, 1, r->h, r->w};
	fv_tensor *m5 = fv_reshape(ctx, fv_permute(ctx, r->mask_weights, perm), 5, masks);
	fv_forward_args sum = FV_FORWARD_ARGS_INIT;
	sum.reduction = FV_REDUCE_SUM; /* openretina calls it with avg=False */
	fv_tensor *lap = m5 != NULL ? fv_module_penalty(r->laplace, ctx, m5, &sum) : NULL;
	double lap_scale = r->laplace_mask_reg;
	if (fa != NULL && fa->reduction == FV_REDUCE_MEAN)
		lap_scale /= 3;
	return fv_add(ctx, fv_add(ctx, mask_r, wt_r), fv_mul_scalar(ctx, lap, lap_scale));
}

/* openretina's initialize(mean_activity): the bias moves only when a mean
** is given (no warning otherwise). */
static fv_status fa_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	fa_readout *r = fv_module_priv(m);
	return mean_activity != NULL ? ro_initialize_bias(WHO, r->bias, mean_activity) : FV_OK;
}

static const char *const fa_names[] = {
	"FactorizedReadout",
	"openretina.modules.readout.factorized.FactorizedReadout",
	"KlindtReadoutWrapper3D",
	"openretina.modules.readout.factorized.KlindtReadoutWrapper3D",
	NULL,
};

static const fv_component fa_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = fa_names,
	.doc = "free spatial mask x feature weights per neuron (Klindt et al. 2017); input "
	       "(N, c, t, h, w), output (N, t, neurons), softplus",
	.options = fa_options,
	.priv_size = sizeof(fa_readout),
	.create = fa_create,
	.forward = fa_forward,
	.regularizer = fa_regularizer,
	.initialize_bias = fa_initialize_bias,
};

FV_PLUGIN_DEFINE("readouts-factorized", &fa_component);
