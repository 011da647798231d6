/*
** channel_sum.c: WeightedChannelSumLayer
** (openretina.modules.layers.reducers.WeightedChannelSumLayer), which turns
** a multi-channel (N, C, T, H, W) input into one channel, e.g. colour into
** grey:
**
**     y[:, 0] = sum_c channel_weights[c] * x[:, c]     (keepdim)
**
** A one-channel input is returned unchanged, whatever the weights.  The
** weights are a parameter with trainable, else a buffer: openretina keeps
** them as a Parameter without grad, under the same state_dict name.
*/
#include <stdint.h>

#include <fovea/plugin.h>

#define NAME "WeightedChannelSumLayer"

typedef struct channel_sum {
	fv_float_list init_channel_weights;
	bool trainable;
	fv_tensor *weights;
} channel_sum;

static const fv_option channel_sum_options[] = {
	FV_OPT("init_channel_weights", FLOAT_LIST, channel_sum, init_channel_weights, NULL,
	       "the weight of each input channel", .flags = FV_OPT_REQUIRED),
	FV_OPT("trainable", BOOL, channel_sum, trainable, "false", "learn the weights"),
	{0},
};

static fv_status channel_sum_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	channel_sum *s = fv_module_priv(m);
	const int64_t n = (int64_t)s->init_channel_weights.n;
	if (n == 0)
		return fv_error(FV_ERR_CONFIG, "init_channel_weights: expected at least one weight");
	s->weights = s->trainable ? fv_module_add_param(m, "channel_weights", 1, &n)
	                          : fv_module_add_buffer(m, "channel_weights", 1, &n);
	if (s->weights == NULL)
		return FV_ERR_NOMEM;
	for (int64_t c = 0; c < n; c++)
		s->weights->data[c] = (fv_real)s->init_channel_weights.v[c];
	return FV_OK;
}

static fv_tensor *channel_sum_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                      const fv_forward_args *fa)
{
	(void)fa;
	const channel_sum *s = fv_module_priv(m);
	if (x == NULL || x->ndim != 5) {
		if (x != NULL || fv_errmsg()[0] == '\0')
			fv_error(FV_ERR_SHAPE, NAME ": forward: expected an input (N, C, T, H, W), got %s",
			         x ? fv_shape_str(x->ndim, x->shape) : "none");
		return NULL;
	}
	if (x->shape[1] == 1)
		return x;
	if (x->shape[1] != s->weights->numel) {
		fv_error(FV_ERR_SHAPE, NAME ": forward: the input %s has %lld channels for %lld weights",
		         fv_shape_str(x->ndim, x->shape), (long long)x->shape[1],
		         (long long)s->weights->numel);
		return NULL;
	}
	const int64_t shape[5] = {1, s->weights->numel, 1, 1, 1};
	const int channel_axis = 1;
	fv_tensor *w = fv_reshape(ctx, s->weights, 5, shape);
	return fv_sum(ctx, fv_mul(ctx, x, w), 1, &channel_axis, true);
}

static const char *const channel_sum_names[] = {
	NAME,
	"openretina.modules.layers.reducers.WeightedChannelSumLayer",
	NULL,
};

static const fv_component channel_sum_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LAYER,
	.names = channel_sum_names,
	.doc = "weighted sum over the channels of (N, C, T, H, W) keeping one channel "
	       "(one-channel input passes unchanged)",
	.options = channel_sum_options,
	.priv_size = sizeof(channel_sum),
	.create = channel_sum_create,
	.forward = channel_sum_forward,
};

FV_PLUGIN_DEFINE("layers-channel-sum", &channel_sum_component);
