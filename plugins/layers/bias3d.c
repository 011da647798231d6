/*
** bias3d.c: Bias3DLayer (openretina.modules.layers.scaling.Bias3DLayer),
** a learnt per-channel offset of a (N, C, T, H, W) input:
**
**     y = x + bias,   bias (1, C, 1, 1, 1) starting at `initial`.
*/
#include <stdint.h>

#include <fovea/plugin.h>

#define NAME "Bias3DLayer"

typedef struct bias3d {
	int64_t channels;
	double initial;
	fv_tensor *bias;
} bias3d;

static const fv_option bias3d_options[] = {
	FV_OPT("channels", INT, bias3d, channels, NULL, "channels of the input (dim 1)", .min = 1,
	       .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("initial", FLOAT, bias3d, initial, "0.0", "initial value of every channel's bias"),
	{0},
};

static fv_status bias3d_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	bias3d *b = fv_module_priv(m);
	const int64_t shape[5] = {1, b->channels, 1, 1, 1};
	b->bias = fv_module_add_param(m, "bias", 5, shape);
	if (b->bias == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(b->bias, (fv_real)b->initial);
	return FV_OK;
}

static fv_tensor *bias3d_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const bias3d *b = fv_module_priv(m);
	if (x == NULL || x->ndim != 5 || x->shape[1] != b->channels) {
		if (x != NULL || fv_errmsg()[0] == '\0')
			fv_error(FV_ERR_SHAPE, NAME ": forward: expected an input (N, %lld, T, H, W), got %s",
			         (long long)b->channels, x ? fv_shape_str(x->ndim, x->shape) : "none");
		return NULL;
	}
	return fv_add(ctx, x, b->bias);
}

static const char *const bias3d_names[] = {
	NAME,
	"openretina.modules.layers.scaling.Bias3DLayer",
	"openretina.modules.layers.Bias3DLayer",
	NULL,
};

static const fv_component bias3d_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LAYER,
	.names = bias3d_names,
	.doc = "learnt per-channel offset x + bias of a (N, C, T, H, W) input",
	.options = bias3d_options,
	.priv_size = sizeof(bias3d),
	.create = bias3d_create,
	.forward = bias3d_forward,
};

FV_PLUGIN_DEFINE("layers-bias3d", &bias3d_component);
