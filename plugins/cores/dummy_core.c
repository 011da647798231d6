/*
** dummy_core.c: DummyCore (openretina.modules.core.base_core.DummyCore),
** the pass-through core of readout-only models such as the LNP model.
** Its forward is x[:, :, cut_first_n_frames:] (no cut when null) and its
** regularizer is 0.
*/
#include <stdint.h>
#include <string.h>

#include <fovea/plugin.h>

#define NAME "DummyCore"

typedef struct dummy_core {
	int64_t cut; /* cut_first_n_frames; 0 when null: x[:, :, 0:] is x */
	const fv_config_node *n_neurons_dict, *channels;
} dummy_core;

static const fv_option dummy_options[] = {
	FV_OPT("cut_first_n_frames", INT, dummy_core, cut, "null",
	       "frames dropped from the start, as x[:, :, n:] (null: none)", .flags = FV_OPT_NULLABLE),
	FV_OPT("n_neurons_dict", NODE, dummy_core, n_neurons_dict, "null",
	       "accepted for compatibility with openretina's model configs; unused",
	       .flags = FV_OPT_NULLABLE),
	/* UnifiedCoreReadout sets core.channels whenever hidden_channels is
	** given; openretina's DummyCore swallows it in **kwargs */
	FV_OPT("channels", NODE, dummy_core, channels, "null",
	       "set by UnifiedCoreReadout from in_shape and hidden_channels; unused",
	       .flags = FV_OPT_NULLABLE),
	{0},
};

static fv_status dummy_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	dummy_core *d = fv_module_priv(m);
	if (d->cut == FV_NONE_INT)
		d->cut = 0;
	return FV_OK;
}

static fv_tensor *dummy_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const dummy_core *d = fv_module_priv(m);
	if (x == NULL || x->ndim < 3) {
		fv_error(FV_ERR_SHAPE, NAME ": forward: expected an input (N, C, T, ...), got %s",
		         x ? fv_shape_str(x->ndim, x->shape) : "none");
		return NULL;
	}
	return d->cut == 0 ? x : fv_slice(ctx, x, 2, d->cut, INT64_MAX, 1);
}

static fv_tensor *dummy_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)m;
	(void)fa;
	return fv_ctx_scalar(ctx, 0);
}

static fv_status dummy_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape,
                                    int *out_ndim, int64_t *out_shape)
{
	const dummy_core *d = fv_module_priv(m);
	if (in_ndim < 2 || in_ndim > FV_MAX_DIMS - 1)
		return fv_error(FV_ERR_SHAPE,
		                NAME ": output_shape needs an input shape (C, T, ...), got %s",
		                fv_shape_str(in_ndim, in_shape));
	memcpy(out_shape, in_shape, (size_t)in_ndim * sizeof *in_shape);
	int64_t T = in_shape[1], cut = d->cut;
	/* The length of range(T)[cut:] in Python. */
	out_shape[1] = cut >= 0 ? (cut >= T ? 0 : T - cut) : (-cut >= T ? T : -cut);
	*out_ndim = in_ndim;
	return FV_OK;
}

static const char *const dummy_names[] = {
	NAME,
	"openretina.modules.core.base_core.DummyCore",
	NULL,
};

static const fv_component dummy_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = dummy_names,
	.doc = "pass-through core that only drops the first frames (readout-only models)",
	.options = dummy_options,
	.priv_size = sizeof(dummy_core),
	.create = dummy_create,
	.forward = dummy_forward,
	.regularizer = dummy_regularizer,
	.output_shape = dummy_output_shape,
};

FV_PLUGIN_DEFINE("cores-dummy", &dummy_component);
