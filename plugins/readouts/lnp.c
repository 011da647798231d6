/*
** lnp.c: LNPReadout (openretina.modules.readout.linear_nonlinear_poison), the
** linear-nonlinear-Poisson readout: one full spatial kernel per neuron.
**
** openretina holds the kernels in a Conv3d `inner_product_kernel` with
** kernel (1, h, w) the size of the whole input frame, so each neuron's
** output is an inner product per time step:
**
**   y[b, t, n] = f(sum_{c,i,j} x[b, c, t, i, j] * weight[n, c, 0, i, j] + bias[n])
**
** computed here as one GEMM over every (b, t).  The input must be exactly
** (B, c, t, h, w) of in_shape, as openretina's rearrange demands.
**
** regularizer() (reduction is ignored, as in openretina):
**   smooth_weight * smooth_regularizer(weight[:, :, 0]) + sparse_weight * mean|weight|
** where smooth_regularizer names a registered regularizer (LaplaceL2norm,
** GaussianLaplaceL2, ...) built as the child `_smooth_reg_fn`, evaluated with
** sums (avg=False).
*/
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "readout_common.h"

#define WHO "LNPReadout"

typedef struct lnp_readout {
	/* the options */
	fv_int_list in_shape;
	int64_t outdims;
	const fv_config_node *mean_activity;
	double smooth_weight;
	double sparse_weight;
	const char *smooth_regularizer;
	int64_t laplace_padding;
	const char *nonlinearity;
	bool use_bias;
	/* what create() builds */
	int64_t c, h, w, n;
	ro_nonlin nonlin;
	fv_tensor *weight; /* inner_product_kernel.weight (n, c, 1, h, w) */
	fv_tensor *bias;   /* inner_product_kernel.bias (n) or NULL */
	fv_module *smooth; /* _smooth_reg_fn */
} lnp_readout;

static const fv_option lnp_options[] = {
	FV_OPT("in_shape", INT_LIST, lnp_readout, in_shape, "null",
	       "input (channels, time, height, width); null: from the model's core",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("outdims", INT, lnp_readout, outdims, "null",
	       "number of neurons; null: from the session's data", .min = 1, .max = 1e12,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("mean_activity", NODE, lnp_readout, mean_activity, "null",
	       "per-neuron mean response the bias starts from (list)", .flags = FV_OPT_NULLABLE),
	FV_OPT("smooth_weight", FLOAT, lnp_readout, smooth_weight, "0.0",
	       "weight of the smoothness penalty on the kernels", .min = 0, .max = 1e30),
	FV_OPT("sparse_weight", FLOAT, lnp_readout, sparse_weight, "0.0",
	       "weight of the mean |kernel| penalty", .min = 0, .max = 1e30),
	FV_OPT("smooth_regularizer", STRING, lnp_readout, smooth_regularizer, "LaplaceL2norm",
	       "regularizer class of openretina.modules.layers.regularizers (e.g. GaussianLaplaceL2)"),
	FV_OPT("laplace_padding", INT, lnp_readout, laplace_padding, "null",
	       "the smoothness regularizer's padding; null: kernel size // 2", .min = 0, .max = 1e6,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("nonlinearity", STRING, lnp_readout, nonlinearity, "exp",
	       "output nonlinearity: exp or a torch.nn.functional name (softplus, relu, ...)"),
	FV_OPT("bias", BOOL, lnp_readout, use_bias, "false", "learn a per-neuron bias"),
	{0},
};

/* The smoothness regularizer as openretina builds it: GaussianLaplaceL2
** also gets the kernel size. */
static fv_module *make_smooth_reg(fv_module *m, const lnp_readout *r, const fv_build_args *args)
{
	char yaml[160], padding[32] = "null";
	if (r->laplace_padding != FV_NONE_INT)
		snprintf(padding, sizeof padding, "%lld", (long long)r->laplace_padding);
	if (strcmp(r->smooth_regularizer, "GaussianLaplaceL2") == 0)
		snprintf(yaml, sizeof yaml, "{padding: %s, kernel: [%lld, %lld]}", padding,
		         (long long)r->h, (long long)r->w);
	else
		snprintf(yaml, sizeof yaml, "{padding: %s}", padding);
	return ro_child(m, args, WHO, r->smooth_regularizer, yaml, "_smooth_reg_fn");
}

/* xavier_normal_ on the weight; Conv3d's default uniform bias init. */
static fv_status lnp_init(lnp_readout *r, const fv_build_args *args)
{
	fv_ctx *rng = ro_rng_new(WHO, args->seed);
	if (rng == NULL)
		return fv_errcode();
	double field = (double)(r->h * r->w);
	double fan_in = (double)r->c * field, fan_out = (double)r->n * field;
	ro_fill_normal(rng, r->weight, 0, sqrt(2.0 / (fan_in + fan_out)));
	if (r->bias != NULL)
		ro_fill_uniform(rng, r->bias, -1 / sqrt(fan_in), 1 / sqrt(fan_in));
	fv_ctx_free(rng);
	return ro_init_bias(WHO, r->bias, r->n, r->mean_activity, args, false);
}

static fv_status lnp_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	lnp_readout *r = fv_module_priv(m);
	int64_t shape[4], n;
	fv_status st = ro_dims(WHO, &r->in_shape, r->outdims, args, shape, &n);
	if (st != FV_OK)
		return st;
	r->c = shape[0];
	r->h = shape[2];
	r->w = shape[3];
	r->n = n;
	st = ro_nonlin_parse(args->spec, WHO, "nonlinearity", r->nonlinearity, &r->nonlin);
	if (st != FV_OK)
		return st;
	int64_t ws[5] = {n, r->c, 1, r->h, r->w};
	r->weight = ro_param(m, WHO, "inner_product_kernel.weight", 5, ws);
	if (r->weight == NULL)
		return fv_errcode();
	if (r->use_bias && (r->bias = ro_param(m, WHO, "inner_product_kernel.bias", 1, &n)) == NULL)
		return fv_errcode();
	r->smooth = make_smooth_reg(m, r, args);
	if (r->smooth == NULL)
		return fv_errcode();
	return lnp_init(r, args);
}

static fv_tensor *lnp_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	lnp_readout *r = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	if (x->ndim != 5 || x->shape[1] != r->c || x->shape[3] != r->h || x->shape[4] != r->w) {
		fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, %lld, time, %lld, %lld) "
		         "(the kernel covers the whole frame)",
		         WHO, fv_shape_str(x->ndim, x->shape), (long long)r->c, (long long)r->h,
		         (long long)r->w);
		return NULL;
	}
	int64_t b = x->shape[0], t = x->shape[2], k = r->c * r->h * r->w;
	int64_t rows[3] = {b, t, k}, kernels[2] = {r->n, k};
	int btchw[5] = {0, 2, 1, 3, 4};
	fv_tensor *xt = fv_reshape(ctx, fv_permute(ctx, x, btchw), 3, rows);
	fv_tensor *y = fv_matmul_ex(ctx, xt, fv_reshape(ctx, r->weight, 2, kernels), false, true);
	if (r->bias != NULL)
		y = fv_add(ctx, y, r->bias);
	return ro_nonlin_apply(ctx, r->nonlin, y);
}

static fv_tensor *lnp_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)fa;
	const lnp_readout *r = fv_module_priv(m);
	int64_t k4[4] = {r->n, r->c, r->h, r->w};
	fv_forward_args sum = FV_FORWARD_ARGS_INIT;
	sum.reduction = FV_REDUCE_SUM; /* openretina calls it with avg=False */
	fv_tensor *w4 = fv_reshape(ctx, r->weight, 4, k4);
	fv_tensor *smooth = w4 != NULL ? fv_module_penalty(r->smooth, ctx, w4, &sum) : NULL;
	fv_tensor *sparse = fv_mean_all(ctx, fv_abs(ctx, r->weight));
	return fv_add(ctx, fv_mul_scalar(ctx, smooth, r->smooth_weight),
	              fv_mul_scalar(ctx, sparse, r->sparse_weight));
}

/* openretina's initialize(mean_activity): copies into the bias when there
** is both a bias and a mean; nothing otherwise. */
static fv_status lnp_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	lnp_readout *r = fv_module_priv(m);
	if (r->bias == NULL || mean_activity == NULL)
		return FV_OK;
	return ro_initialize_bias(WHO, r->bias, mean_activity);
}

static const char *const lnp_names[] = {
	"LNPReadout",
	"openretina.modules.readout.linear_nonlinear_poison.LNPReadout",
	NULL,
};

static const fv_component lnp_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = lnp_names,
	.doc = "linear-nonlinear-Poisson readout: a full-frame spatial kernel per neuron; input "
	       "(N, c, t, h, w), output (N, t, neurons)",
	.options = lnp_options,
	.priv_size = sizeof(lnp_readout),
	.create = lnp_create,
	.forward = lnp_forward,
	.regularizer = lnp_regularizer,
	.initialize_bias = lnp_initialize_bias,
};

FV_PLUGIN_DEFINE("readouts-lnp", &lnp_component);
