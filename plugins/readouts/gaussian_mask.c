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
*/
#include <math.h>
#include <stddef.h>

#include "readout_common.h"

#define WHO "GaussianMaskReadout"

/* The state: what the multi-session container reads first (see
** readout_common.h), then the options that are not part of it. */
typedef struct gm_readout {
	ro_gaussian_mask g;
	fv_int_list in_shape;
	int64_t outdims;
	const fv_config_node *mean_activity;
	bool scale;
	bool bias;
	const char *nonlinearity_function;
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
	FV_OPT("gaussian_mean_scale", FLOAT, gm_readout, g.mean_scale, "1.0",
	       "factor applied to mask_mean (the RF centre) in the mask and its penalty"),
	FV_OPT("gaussian_var_scale", FLOAT, gm_readout, g.var_scale, "1.0",
	       "factor applied to mask_log_var in the mask and its penalty"),
	FV_OPT("positive", BOOL, gm_readout, g.positive, "false",
	       "clamp the feature weights to >= 0 (in place) at every forward"),
	FV_OPT("scale", BOOL, gm_readout, scale, "false",
	       "learn a per-neuron output scale (else a buffer of ones)"),
	FV_OPT("bias", BOOL, gm_readout, bias, "true",
	       "learn a per-neuron bias (else a buffer of zeros)"),
	FV_OPT("nonlinearity_function", STRING, gm_readout, nonlinearity_function, "softplus",
	       "output nonlinearity (torch.nn.functional name)"),
	FV_OPT("mask_l1_reg", FLOAT, gm_readout, g.mask_l1_reg, "1.0",
	       "weight of the mask penalty exp(log_var*var_scale) + (mean*mean_scale)^2"),
	FV_OPT("feature_weights_l1_reg", FLOAT, gm_readout, g.feature_l1_reg, "1.0",
	       "weight of the L1 penalty on the feature weights"),
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

static fv_status gm_tensors(fv_module *m, ro_gaussian_mask *r, const gm_readout *o, fv_ctx *rng)
{
	int64_t n2[2] = {r->n, 2}, n1[1] = {r->n}, grid[4] = {r->n, r->w, r->h, 2};
	int64_t feat[4] = {1, r->c, 1, r->n};
	r->mask_mean = ro_param(m, WHO, "mask_mean", 2, n2);
	r->mask_log_var = ro_param(m, WHO, "mask_log_var", 1, n1);
	r->grid = ro_buffer(m, WHO, "grid", 4, grid);
	r->features = ro_param(m, WHO, "features", 4, feat);
	r->scale_param = o->scale ? ro_param(m, WHO, "scale_param", 1, n1)
	                          : ro_buffer(m, WHO, "scale_param", 1, n1);
	r->bias = o->bias ? ro_param(m, WHO, "bias", 1, n1) : ro_buffer(m, WHO, "bias", 1, n1);
	if (!r->mask_mean || !r->mask_log_var || !r->grid || !r->features || !r->scale_param ||
	    !r->bias)
		return FV_ERR_NOMEM;
	fill_mask_grid(r->grid, r->n, r->w, r->h);
	ro_fill_normal(rng, r->features, 1.0 / (double)r->c, 0.01);
	if (o->scale)
		ro_fill_normal(rng, r->scale_param, 1.0, 0.01);
	else
		fv_tensor_fill(r->scale_param, 1);
	return FV_OK;
}

static fv_status gm_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	gm_readout *o = fv_module_priv(m);
	ro_gaussian_mask *r = &o->g;
	int64_t shape[4], n;
	fv_status st = ro_in_shape(WHO, &o->in_shape, args, shape);
	if (st == FV_OK)
		st = ro_outdims(WHO, o->outdims, args, &n);
	if (st != FV_OK)
		return st;
	r->c = shape[0];
	r->w = shape[2];
	r->h = shape[3];
	r->n = n;
	st = ro_nonlin_parse(args->spec, WHO, "nonlinearity_function", o->nonlinearity_function,
	                     &r->nonlin);
	if (st != FV_OK)
		return st;
	fv_ctx *rng = ro_rng_new(WHO, args->seed);
	if (rng == NULL)
		return FV_ERR_NOMEM;
	st = gm_tensors(m, r, o, rng);
	fv_ctx_free(rng);
	if (st != FV_OK)
		return st;
	return ro_init_bias(WHO, r->bias, n, o->mean_activity, args, true);
}

static fv_tensor *gm_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	ro_gaussian_mask *r = fv_module_priv(m);
	if (x == NULL || !ro_gm_input_ok(WHO, r, x))
		return NULL;
	return ro_gm_output(ctx, x, ro_gm_weight(ctx, r), r->scale_param, r->bias, r->nonlin);
}

/* mask_l1 * mask_l1_reg + feature_l1 * feature_weights_l1_reg, with means
** instead of sums when reduction is "mean" (openretina's average flag). */
static fv_tensor *gm_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const ro_gaussian_mask *r = fv_module_priv(m);
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
	ro_gaussian_mask *r = fv_module_priv(m);
	return ro_initialize_bias(WHO, r->bias, mean_activity);
}

static const char *const gm_names[] = {
	RO_GAUSSIAN_MASK,
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
};

FV_PLUGIN_DEFINE("readouts-gaussian-mask", &gm_component);
