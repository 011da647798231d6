/*
** scaling.c: Scale2DLayer and Scale3DLayer (openretina.modules.layers.
** scaling), a learned per-channel factor y = x * scale with scale of shape
** (1, C, 1, 1) for (B, C, H, W) inputs or (1, C, 1, 1, 1) for
** (B, C, T, H, W) inputs.  ConvGRUCore uses the 3-D one after a BatchNorm
** without affine parameters (bias false, batch_norm_scale true).
**
** They are registered as cores: a module with a forward and no
** regularizer-worthy parameters, usable on its own as openretina's are.
*/
#include <stdint.h>

#include <fovea/plugin.h>

typedef struct scale_layer {
	int64_t num_channels;
	double initial;
	int ndim;          /* of the input: 4 (2-D layer) or 5 (3-D layer) */
	fv_tensor *scale;  /* (1, C, 1, 1[, 1]) */
} scale_layer;

static const fv_option scale_options[] = {
	FV_OPT("num_channels", INT, scale_layer, num_channels, NULL, "channels C of the input",
	       .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("initial", FLOAT, scale_layer, initial, "1.0", "initial value of every factor"),
	{0},
};

static fv_status scale_create(fv_module *m, int ndim)
{
	scale_layer *s = fv_module_priv(m);
	int64_t shape[5] = {1, s->num_channels, 1, 1, 1};
	s->ndim = ndim;
	s->scale = fv_module_add_param(m, "scale", ndim, shape);
	if (s->scale == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(s->scale, (fv_real)s->initial);
	return FV_OK;
}

static fv_status scale2d_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	return scale_create(m, 4);
}

static fv_status scale3d_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	return scale_create(m, 5);
}

static fv_tensor *scale_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const scale_layer *s = fv_module_priv(m);
	const char *name = fv_module_component(m)->names[0];
	if (x == NULL || x->ndim != s->ndim || x->shape[1] != s->num_channels) {
		fv_error(FV_ERR_SHAPE, "%s: forward: expected an input (B, %lld, %s), got %s", name,
		         (long long)s->num_channels, s->ndim == 4 ? "H, W" : "T, H, W",
		         x ? fv_shape_str(x->ndim, x->shape) : "none");
		return NULL;
	}
	return fv_mul(ctx, x, s->scale);
}

static fv_tensor *scale_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)m;
	(void)fa;
	return fv_ctx_scalar(ctx, 0);
}

static fv_status scale_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape,
                                    int *out_ndim, int64_t *out_shape)
{
	const scale_layer *s = fv_module_priv(m);
	if (in_ndim != s->ndim - 1 || in_shape[0] != s->num_channels)
		return fv_error(FV_ERR_SHAPE, "%s: output_shape: expected (%lld, %s), got %s",
		                fv_module_component(m)->names[0], (long long)s->num_channels,
		                s->ndim == 4 ? "H, W" : "T, H, W", fv_shape_str(in_ndim, in_shape));
	for (int d = 0; d < in_ndim; d++)
		out_shape[d] = in_shape[d];
	*out_ndim = in_ndim;
	return FV_OK;
}

static const char *const scale2d_names[] = {
	"Scale2DLayer",
	"openretina.modules.layers.scaling.Scale2DLayer",
	"openretina.modules.layers.Scale2DLayer",
	NULL,
};

static const char *const scale3d_names[] = {
	"Scale3DLayer",
	"openretina.modules.layers.scaling.Scale3DLayer",
	"openretina.modules.layers.Scale3DLayer",
	NULL,
};

static const fv_component scale2d_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = scale2d_names,
	.doc = "per-channel learned factor of a (B, C, H, W) input, y = x * scale",
	.options = scale_options,
	.priv_size = sizeof(scale_layer),
	.create = scale2d_create,
	.forward = scale_forward,
	.regularizer = scale_regularizer,
	.output_shape = scale_output_shape,
};

static const fv_component scale3d_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = scale3d_names,
	.doc = "per-channel learned factor of a (B, C, T, H, W) input, y = x * scale",
	.options = scale_options,
	.priv_size = sizeof(scale_layer),
	.create = scale3d_create,
	.forward = scale_forward,
	.regularizer = scale_regularizer,
	.output_shape = scale_output_shape,
};

FV_PLUGIN_DEFINE("cores-scaling", &scale2d_component, &scale3d_component);
