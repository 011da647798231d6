/*
** gaussian_mask.c: GaussianMaskReadout (openretina.modules.readout.
** factorized_gaussian), the factorised readout of Hoefling et al. 2024 whose
** spatial mask is a normalised isotropic Gaussian per neuron.
**
** For an input x (N, c, t, w, h) and neuron n:
**
**   mask[n]  = normalise(exp(-0.5 * min(|grid - mu[n]*mean_scale|^2 /
**                                       (exp(clamp(logvar[n]*var_scale, ±20)) + 1e-8), 20)))
**   y[., t, n] = f(sum_c (sum_wh x[., c, t, w, h] * mask[n, w, h]) * features[c, n]
**                 * scale_param[n] + bias[n])
**
** `grid` is a fixed buffer: linspace(±w/max(w,h)) x linspace(±h/max(w,h)), so
** mask_mean[:, 0] moves along x's dim 3 and mask_mean[:, 1] along dim 4.
** With positive=True the forward clamps `features` to >= 0 in place before
** using it, as openretina does (the clamp is not differentiated).
** Disabled scale / bias become buffers (ones / zeros) as in openretina, so
** the state_dict keeps its entries.
**
** Beyond forward, it answers two questions without anyone reading its
** state: its output as an fv_linear_readout (the weight features x mask),
** which lets the multi-session container stack every session into one
** product, and where each neuron reads the feature map (mask_mean in
** pixels), for the readout-positions figure.
*/
#include <math.h>
#include <stddef.h>

#include "readout_common.h"

#define WHO "GaussianMaskReadout"

typedef struct gm_readout {
	/* the options */
	fv_int_list in_shape;
	int64_t outdims;
	const fv_config_node *mean_activity;
	double mean_scale, var_scale;
	bool positive;
	bool scale;
	bool bias;
	const char *nonlinearity_function;
	double mask_l1_reg, feature_l1_reg;
	/* what create() builds */
	int64_t c, w, h, n;
	ro_nonlin nonlin;
	fv_tensor *mask_mean;    /* (n, 2) */
	fv_tensor *mask_log_var; /* (n) */
	fv_tensor *grid;         /* (n, w, h, 2) buffer */
	fv_tensor *features;     /* (1, c, 1, n) */
	fv_tensor *scale_param;  /* (n), parameter or buffer of ones */
	fv_tensor *bias_param;   /* (n), parameter or buffer of zeros */
} gm_readout;

static const fv_option gm_options[] = {
	FV_OPT("in_shape", INT_LIST, gm_readout, in_shape, "null",
	       "input (channels, time, width, height); null: from the model's core",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("outdims", INT, gm_readout, outdims, "null",
	       "number of neurons; null: from the session's data", .min = 1, .max = 1e12,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("mean_activity", NODE, gm_readout, mean_activity, "null",
	       "per-neuron mean response the bias starts from (list); null: 0",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("gaussian_mean_scale", FLOAT, gm_readout, mean_scale, "1.0",
	       "factor applied to mask_mean (the RF centre) in the mask and its penalty"),
	FV_OPT("gaussian_var_scale", FLOAT, gm_readout, var_scale, "1.0",
	       "factor applied to mask_log_var in the mask and its penalty"),
	FV_OPT("positive", BOOL, gm_readout, positive, "false",
	       "clamp the feature weights to >= 0 (in place) at every forward"),
	FV_OPT("scale", BOOL, gm_readout, scale, "false",
	       "learn a per-neuron output scale (else a buffer of ones)"),
	FV_OPT("bias", BOOL, gm_readout, bias, "true",
	       "learn a per-neuron bias (else a buffer of zeros)"),
	FV_OPT("nonlinearity_function", STRING, gm_readout, nonlinearity_function, "softplus",
	       "output nonlinearity (torch.nn.functional name)"),
	FV_OPT("mask_l1_reg", FLOAT, gm_readout, mask_l1_reg, "1.0",
	       "weight of the mask penalty exp(log_var*var_scale) + (mean*mean_scale)^2",
	       .min = 0, .max = 1e30),
	FV_OPT("feature_weights_l1_reg", FLOAT, gm_readout, feature_l1_reg, "1.0",
	       "weight of the L1 penalty on the feature weights", .min = 0, .max = 1e30),
	{0},
};

/* torch.linspace in float: the first half counts up from start, the second
** half down from end, so the ends are exact and the grid is symmetric. */
static fv_real linspace_at(float start, float end, int64_t steps, int64_t i)
{
	if (steps == 1)
		return start;
	float step = (end - start) / (float)(steps - 1);
	if (i < steps / 2)
		return start + step * (float)i;
	return end - step * (float)(steps - 1 - i);
}

/* openretina's make_mask_grid(outdims, w, h), repeated for every neuron. */
static void fill_mask_grid(fv_tensor *grid, int64_t n, int64_t w, int64_t h)
{
	double m = (double)(w > h ? w : h);
	float wmax = (float)((double)w / m), hmax = (float)((double)h / m);
	fv_real *g = grid->data;
	for (int64_t k = 0; k < n; k++)
		for (int64_t i = 0; i < w; i++)
			for (int64_t j = 0; j < h; j++) {
				*g++ = linspace_at(-wmax, wmax, w, i);
				*g++ = linspace_at(-hmax, hmax, h, j);
			}
}

static fv_status gm_tensors(fv_module *m, gm_readout *r, fv_ctx *rng)
{
	int64_t n2[2] = {r->n, 2}, n1[1] = {r->n}, grid[4] = {r->n, r->w, r->h, 2};
	int64_t feat[4] = {1, r->c, 1, r->n};
	r->mask_mean = ro_param(m, WHO, "mask_mean", 2, n2);
	r->mask_log_var = ro_param(m, WHO, "mask_log_var", 1, n1);
	r->grid = ro_buffer(m, WHO, "grid", 4, grid);
	r->features = ro_param(m, WHO, "features", 4, feat);
	r->scale_param = r->scale ? ro_param(m, WHO, "scale_param", 1, n1)
	                          : ro_buffer(m, WHO, "scale_param", 1, n1);
	r->bias_param = r->bias ? ro_param(m, WHO, "bias", 1, n1) : ro_buffer(m, WHO, "bias", 1, n1);
	if (!r->mask_mean || !r->mask_log_var || !r->grid || !r->features || !r->scale_param ||
	    !r->bias_param)
		return FV_ERR_NOMEM;
	fill_mask_grid(r->grid, r->n, r->w, r->h);
	ro_fill_normal(rng, r->features, 1.0 / (double)r->c, 0.01);
	if (r->scale)
		ro_fill_normal(rng, r->scale_param, 1.0, 0.01);
	else
		fv_tensor_fill(r->scale_param, 1);
	return FV_OK;
}

static fv_status gm_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	gm_readout *r = fv_module_priv(m);
	int64_t shape[4], n;
	fv_status st = ro_dims(WHO, &r->in_shape, r->outdims, args, shape, &n);
	if (st != FV_OK)
		return st;
	r->c = shape[0];
	r->w = shape[2];
	r->h = shape[3];
	r->n = n;
	st = ro_nonlin_parse(args->spec, WHO, "nonlinearity_function", r->nonlinearity_function,
	                     &r->nonlin);
	if (st != FV_OK)
		return st;
	fv_ctx *rng = ro_rng_new(WHO, args->seed);
	if (rng == NULL)
		return FV_ERR_NOMEM;
	st = gm_tensors(m, r, rng);
	fv_ctx_free(rng);
	if (st != FV_OK)
		return st;
	return ro_init_bias(WHO, r->bias_param, n, r->mean_activity, args, true);
}

/* ---- forward ----------------------------------------------------------------------- */

/* The normalised Gaussian masks (n, w, h) as openretina's get_mask(). */
static fv_tensor *gm_masks(fv_ctx *ctx, const gm_readout *r)
{
	int64_t var_shape[3] = {r->n, 1, 1}, mean_shape[4] = {r->n, 1, 1, 2};
	int last = -1, wh[2] = {1, 2};
	fv_tensor *scaled_log_var = fv_mul_scalar(ctx, r->mask_log_var, r->var_scale);
	fv_tensor *var = fv_exp(ctx, fv_clamp(ctx, scaled_log_var, -20, 20));
	var = fv_reshape(ctx, var, 3, var_shape);
	fv_tensor *mu = fv_mul_scalar(ctx, r->mask_mean, r->mean_scale);
	fv_tensor *d = fv_sub(ctx, r->grid, fv_reshape(ctx, mu, 4, mean_shape));
	fv_tensor *d2 = fv_sum(ctx, fv_square(ctx, d), 1, &last, false);
	fv_tensor *pdf = fv_div(ctx, d2, fv_add_scalar(ctx, var, 1e-8));
	pdf = fv_exp(ctx, fv_mul_scalar(ctx, fv_clamp(ctx, pdf, -INFINITY, 20), -0.5));
	/* The clamp keeps every pdf value >= exp(-10), so the normaliser is
	** positive and openretina's nan_to_num never has a NaN to replace. */
	return fv_div(ctx, pdf, fv_sum(ctx, pdf, 2, wh, true));
}

static void clamp_nonnegative(fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		if (t->data[i] < 0)
			t->data[i] = 0;
}

/* einsum("nctwh,whd->nctd") then the weighted sum over channels is one
** product with w[d, c, wh] = features[c, d] * mask[d, wh], which is small:
** no (n, c, t, d) product is ever formed.  With `positive` the features
** are clamped to >= 0 in place first, as openretina's forward does. */
static fv_tensor *gm_weight(fv_ctx *ctx, gm_readout *r)
{
	int64_t wh = r->w * r->h;
	int64_t mask3[3] = {r->n, 1, wh}, feat3[3] = {r->n, r->c, 1}, feat2[2] = {r->c, r->n};
	int64_t flat_w[2] = {r->n, r->c * wh};
	const int to_dc[2] = {1, 0};
	if (r->positive)
		clamp_nonnegative(r->features);
	fv_tensor *mask = fv_reshape(ctx, gm_masks(ctx, r), 3, mask3);
	fv_tensor *feat = fv_reshape(ctx, fv_permute(ctx, fv_reshape(ctx, r->features, 2, feat2),
	                                             to_dc), 3, feat3);
	return fv_reshape(ctx, fv_mul(ctx, feat, mask), 2, flat_w);
}

/* y = f(rows(x) w^T * scale_param + bias), the whole readout. */
static fv_status gm_linear_readout(fv_module *m, fv_ctx *ctx, const fv_tensor *x,
                                   fv_linear_readout *out)
{
	gm_readout *r = fv_module_priv(m);
	if (x->ndim != 5 || x->shape[1] != r->c || x->shape[3] != r->w || x->shape[4] != r->h)
		return fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, %lld, time, "
		                "%lld, %lld)",
		                WHO, fv_shape_str(x->ndim, x->shape), (long long)r->c, (long long)r->w,
		                (long long)r->h);
	*out = (fv_linear_readout){.weight = gm_weight(ctx, r), .scale = r->scale_param,
	                           .bias = r->bias_param, .activation = ro_nonlin_fn(r->nonlin)};
	return out->weight != NULL ? FV_OK : FV_ERR_NOMEM;
}

static fv_tensor *gm_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	fv_linear_readout lin;
	if (x == NULL || gm_linear_readout(m, ctx, x, &lin) != FV_OK)
		return NULL;
	return ro_linear_output(ctx, x, &lin);
}

/* ---- regularizer, bias, positions ---------------------------------------------------- */

/* mask_l1 * mask_l1_reg + feature_l1 * feature_weights_l1_reg, with means
** instead of sums when reduction is "mean" (openretina's average flag). */
static fv_tensor *gm_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const gm_readout *r = fv_module_priv(m);
	bool avg = fa != NULL && fa->reduction == FV_REDUCE_MEAN;
	/* openretina's penalty uses the variance without get_mask's clamp. */
	fv_tensor *var = fv_exp(ctx, fv_mul_scalar(ctx, r->mask_log_var, r->var_scale));
	fv_tensor *mu2 = fv_square(ctx, fv_mul_scalar(ctx, r->mask_mean, r->mean_scale));
	fv_tensor *mask_l1 = fv_add(ctx, ro_reduce_all(ctx, var, avg), ro_reduce_all(ctx, mu2, avg));
	fv_tensor *feature_l1 = ro_reduce_all(ctx, fv_abs(ctx, r->features), avg);
	return fv_add(ctx, fv_mul_scalar(ctx, mask_l1, r->mask_l1_reg),
	              fv_mul_scalar(ctx, feature_l1, r->feature_l1_reg));
}

static fv_status gm_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	gm_readout *r = fv_module_priv(m);
	return ro_initialize_bias(WHO, r->bias_param, mean_activity);
}

/* The grid runs linspace(-s/m, s/m, s) along an axis of s feature-map
** pixels (m the larger side): position p is pixel (p + s/m) (s - 1) / (2 s/m). */
static double grid_to_pixel(double p, int64_t size, int64_t larger)
{
	double half = (double)size / (double)larger;
	return size > 1 ? (p + half) * (double)(size - 1) / (2 * half) : 0.0;
}

/* Each neuron's mask centre, mask_mean * gaussian_mean_scale, in pixels:
** mask_mean[:, 0] runs along the input's dim 3 (rows), [:, 1] along dim 4. */
static fv_status gm_neuron_positions(const fv_module *m, const char *session, int64_t n,
                                     double *row_col, int64_t map_hw[2])
{
	(void)session; /* one readout, one session */
	const gm_readout *r = fv_module_priv(m);
	if (n != r->n)
		return fv_error(FV_ERR_SHAPE, "%s: neuron positions: asked for %lld neurons, the "
		                "readout has %lld",
		                WHO, (long long)n, (long long)r->n);
	int64_t larger = r->w > r->h ? r->w : r->h;
	map_hw[0] = r->w;
	map_hw[1] = r->h;
	for (int64_t k = 0; k < n; k++) {
		double mu_row = r->mask_mean->data[2 * k], mu_col = r->mask_mean->data[2 * k + 1];
		row_col[2 * k] = grid_to_pixel(mu_row * r->mean_scale, r->w, larger);
		row_col[2 * k + 1] = grid_to_pixel(mu_col * r->mean_scale, r->h, larger);
	}
	return FV_OK;
}

static const char *const gm_names[] = {
	WHO,
	"openretina.modules.readout.factorized_gaussian.GaussianMaskReadout",
	NULL,
};

static const fv_component gm_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = gm_names,
	.doc = "factorised readout with a normalised Gaussian spatial mask per neuron "
	       "(Hoefling et al. 2024); input (N, c, t, w, h), output (N, t, neurons)",
	.options = gm_options,
	.priv_size = sizeof(gm_readout),
	.create = gm_create,
	.forward = gm_forward,
	.regularizer = gm_regularizer,
	.initialize_bias = gm_initialize_bias,
	.neuron_positions = gm_neuron_positions,
	.linear_readout = gm_linear_readout,
};

FV_PLUGIN_DEFINE("readouts-gaussian-mask", &gm_component);
