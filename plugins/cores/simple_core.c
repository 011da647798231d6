/*
** simple_core.c: SimpleCoreWrapper, openretina's default convolutional core
** (openretina.modules.core.base_core.SimpleCoreWrapper).
**
** The input (N, C, T, H, W) goes through an optional weighted colour sum
** and an optional average-pooling downsample, then through a stack of
** layers, each
**     conv (no bias) -> BatchNorm3d -> Bias3DLayer -> ELU
**     -> [Dropout3d] -> [MaxPool3d(1, 2, 2) every n layers],
** and finally loses its first cut_first_n_frames frames.  The convolution
** flavours live in simple_core_conv.c.
**
** The regularizer is openretina's: gamma_input times the normalised
** spatial Laplace of layer 0's spatial weights, gamma_hidden times the
** group sparsity of layers 1.., gamma_temporal times the temporal
** smoothness, gamma_in_sparse times the group sparsity of all layers; a
** term is evaluated only when its gamma is nonzero.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/insilico.h>
#include <fovea/parallel.h>

#include "simple_core.h"

#define NAME "SimpleCoreWrapper"

typedef struct sc_layer {
	sc_conv conv;
	fv_tensor *norm_w, *norm_b;
	fv_tensor *running_mean, *running_var, *num_batches;
	fv_tensor *bias; /* Bias3DLayer: (1, C, 1, 1, 1) */
	bool pool;
} sc_layer;

typedef struct simple_core {
	/* the options */
	fv_int_list channels;
	fv_int_list temporal_kernel_sizes;
	fv_int_list spatial_kernel_sizes;
	double gamma_input;
	double gamma_temporal;
	double gamma_in_sparse;
	double gamma_hidden;
	double dropout_rate;
	int64_t cut_first_n_frames;
	int64_t maxpool_every_n_layers;
	fv_int_list downsample_input_kernel_size;
	const fv_config_node *input_padding;
	const fv_config_node *hidden_padding;
	fv_float_list color_squashing_weights;
	const char *convolution_type;
	const fv_config_node *n_neurons_dict;
	/* what create() builds from them */
	sc_conv_type conv_type;
	int n_layers;
	sc_layer *layers;
	int down_kernel[3];       /* when downsample_input_kernel_size is set */
	fv_tensor *color_w;       /* color_squashing_layer.channel_weights, or NULL */
	fv_module *reg_spatial;   /* child _input_weights_regularizer_spatial */
	fv_module *reg_temporal;  /* child _input_weights_regularizer_temporal */
} simple_core;

static const fv_option sc_options[] = {
	FV_OPT("channels", INT_LIST, simple_core, channels, NULL,
	       "channels of the input and of every layer's output (at least two entries)",
	       .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("temporal_kernel_sizes", INT_LIST, simple_core, temporal_kernel_sizes, NULL,
	       "temporal kernel length of each layer", .min = 1, .max = 1e9,
	       .flags = FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("spatial_kernel_sizes", INT_LIST, simple_core, spatial_kernel_sizes, NULL,
	       "square spatial kernel size of each layer", .min = 1, .max = 1e9,
	       .flags = FV_OPT_REQUIRED | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("gamma_input", FLOAT, simple_core, gamma_input, NULL,
	       "weight of the normalised spatial Laplace of layer 0's spatial weights",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("gamma_temporal", FLOAT, simple_core, gamma_temporal, NULL,
	       "weight of the temporal smoothness (custom_separable) or temporal Laplace (separable)",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("gamma_in_sparse", FLOAT, simple_core, gamma_in_sparse, NULL,
	       "weight of the group sparsity of all layers' spatial weights",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("gamma_hidden", FLOAT, simple_core, gamma_hidden, NULL,
	       "weight of the group sparsity of the spatial weights of layers 1..",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("dropout_rate", FLOAT, simple_core, dropout_rate, "0.0",
	       "Dropout3d probability after each layer's ELU (0: no dropout)", .min = 0, .max = 1),
	FV_OPT("cut_first_n_frames", INT, simple_core, cut_first_n_frames, "30",
	       "frames dropped from the start of the output, as x[:, :, n:]"),
	FV_OPT("maxpool_every_n_layers", INT, simple_core, maxpool_every_n_layers, "null",
	       "MaxPool3d((1, 2, 2)) after layers whose index is a multiple of n", .min = 1, .max = 1e9,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("downsample_input_kernel_size", INT_LIST, simple_core, downsample_input_kernel_size,
	       "null", "avg_pool3d kernel (= stride) applied to the input, (t, h, w)", .min = 1,
	       .max = 1e9, .flags = FV_OPT_NULLABLE | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("input_padding", NODE, simple_core, input_padding, "false",
	       "padding of layer 0: true/'same', false/'valid', an integer or [t, h, w]"),
	FV_OPT("hidden_padding", NODE, simple_core, hidden_padding, "true",
	       "padding of layers 1..: true/'same', false/'valid', an integer or [t, h, w]"),
	FV_OPT("color_squashing_weights", FLOAT_LIST, simple_core, color_squashing_weights, "null",
	       "weights of a channel sum turning colour input into one channel (channels[0] must be 1)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("convolution_type", ENUM, simple_core, convolution_type, "custom_separable",
	       "sin/cos-parametrised separable conv, two torch convs, a dense conv, or a "
	       "(1, k, k) conv ignoring temporal_kernel_sizes",
	       .choices = "custom_separable|separable|full|time_independent"),
	FV_OPT("n_neurons_dict", NODE, simple_core, n_neurons_dict, "null",
	       "accepted for compatibility with openretina's model configs; unused",
	       .flags = FV_OPT_NULLABLE),
	{0},
};
/* ---- construction ------------------------------------------------------------ */

static fv_status check_options(const simple_core *o)
{
	if (o->channels.n < 2)
		return fv_error(FV_ERR_CONFIG,
		                "channels: at least two channels are needed (input and "
		                "output), got %zu",
		                o->channels.n);
	size_t n_layers = o->channels.n - 1;
	if (o->temporal_kernel_sizes.n != n_layers)
		return fv_error(FV_ERR_CONFIG,
		                "temporal_kernel_sizes: %zu layers need %zu temporal kernel "
		                "sizes, got %zu",
		                n_layers, n_layers, o->temporal_kernel_sizes.n);
	if (o->spatial_kernel_sizes.n != n_layers)
		return fv_error(FV_ERR_CONFIG,
		                "spatial_kernel_sizes: %zu layers need %zu spatial kernel "
		                "sizes, got %zu",
		                n_layers, n_layers, o->spatial_kernel_sizes.n);
	if (o->color_squashing_weights.is_set && o->channels.v[0] != 1)
		return fv_error(FV_ERR_CONFIG,
		                "color_squashing_weights squash colour input to one channel, "
		                "so channels[0] must be 1, got %lld",
		                (long long)o->channels.v[0]);
	if (o->downsample_input_kernel_size.is_set && o->downsample_input_kernel_size.n != 3 &&
	    o->downsample_input_kernel_size.n != 1)
		return fv_error(FV_ERR_CONFIG,
		                "downsample_input_kernel_size: expected one integer or [t, h, w], "
		                "got %zu values",
		                o->downsample_input_kernel_size.n);
	bool custom = strcmp(o->convolution_type, "custom_separable") == 0;
	for (size_t i = 0; custom && i < n_layers; i++)
		if (o->temporal_kernel_sizes.v[i] < 3)
			return fv_error(FV_ERR_CONFIG,
			                "temporal_kernel_sizes[%zu] = %lld: custom_separable "
			                "parametrises a kernel with length/3 sines and cosines, so the "
			                "length must be at least 3",
			                i, (long long)o->temporal_kernel_sizes.v[i]);
	return FV_OK;
}

/* openretina fails on the first regularizer() call when a nonzero gamma
** needs a weight the conv flavour lacks; we refuse the configuration.
** time_independent has spatial weights (weight_spatial) but no temporal
** ones. */
static fv_status check_gammas(const simple_core *o)
{
	const char *type = o->convolution_type;
	bool custom = strcmp(type, "custom_separable") == 0;
	bool spatial = custom || strcmp(type, "time_independent") == 0;
	bool separable = strcmp(type, "separable") == 0;
	size_t n_layers = o->channels.n - 1;
	if (!spatial && o->gamma_input != 0)
		return fv_error(FV_ERR_CONFIG,
		                "gamma_input = %g needs the spatial weights of a "
		                "custom_separable or time_independent conv; convolution_type is %s "
		                "(set gamma_input to 0)",
		                o->gamma_input, type);
	if (!spatial && o->gamma_in_sparse != 0)
		return fv_error(FV_ERR_CONFIG,
		                "gamma_in_sparse = %g needs the spatial weights of a "
		                "custom_separable or time_independent conv; convolution_type is %s "
		                "(set gamma_in_sparse to 0)",
		                o->gamma_in_sparse, type);
	if (!spatial && o->gamma_hidden != 0 && n_layers > 1)
		return fv_error(FV_ERR_CONFIG,
		                "gamma_hidden = %g needs the spatial weights of a "
		                "custom_separable or time_independent conv; convolution_type is %s "
		                "(set gamma_hidden to 0)",
		                o->gamma_hidden, type);
	if (!custom && !separable && o->gamma_temporal != 0)
		return fv_error(FV_ERR_CONFIG,
		                "gamma_temporal = %g: temporal smoothness is not supported for "
		                "convolution_type %s (set gamma_temporal to 0)",
		                o->gamma_temporal, type);
	return FV_OK;
}

static sc_conv_type conv_type_of(const char *s)
{
	if (strcmp(s, "custom_separable") == 0)
		return SC_CONV_CUSTOM_SEPARABLE;
	if (strcmp(s, "time_independent") == 0)
		return SC_CONV_TIME_INDEPENDENT;
	return strcmp(s, "separable") == 0 ? SC_CONV_SEPARABLE : SC_CONV_FULL;
}

static fv_tensor *add_tensor(fv_module *m, int layer, const char *name, int ndim,
                             const int64_t *shape, bool buffer, fv_real fill)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "features.layer%d", layer);
	return sc_add_tensor(m, prefix, name, ndim, shape, buffer, fill);
}

static fv_status create_layer(fv_module *m, simple_core *sc, int i, fv_ctx *rng)
{
	sc_layer *l = &sc->layers[i];
	sc_padding pad;
	const fv_config_node *pad_node = i == 0 ? sc->input_padding : sc->hidden_padding;
	fv_status rc = sc_padding_parse(pad_node, i == 0 ? "input_padding" : "hidden_padding", &pad);
	if (rc != FV_OK)
		return rc;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "features.layer%d.conv", i);
	int64_t C = sc->channels.v[i + 1];
	rc = sc_conv_create(&l->conv, m, prefix, sc->conv_type, (int)sc->channels.v[i], (int)C,
	                    (int)sc->temporal_kernel_sizes.v[i], (int)sc->spatial_kernel_sizes.v[i],
	                    &pad, rng);
	if (rc != FV_OK)
		return rc;
	const int64_t bias_shape[5] = {1, C, 1, 1, 1};
	l->norm_w = add_tensor(m, i, "norm.weight", 1, &C, false, 1);
	l->norm_b = add_tensor(m, i, "norm.bias", 1, &C, false, 0);
	l->running_mean = add_tensor(m, i, "norm.running_mean", 1, &C, true, 0);
	l->running_var = add_tensor(m, i, "norm.running_var", 1, &C, true, 1);
	l->num_batches = add_tensor(m, i, "norm.num_batches_tracked", 0, NULL, true, 0);
	l->bias = add_tensor(m, i, "bias.bias", 5, bias_shape, false, 0);
	if (!l->norm_w || !l->norm_b || !l->running_mean || !l->running_var || !l->num_batches ||
	    !l->bias)
		return FV_ERR_NOMEM;
	l->pool = sc->maxpool_every_n_layers != FV_NONE_INT && i % sc->maxpool_every_n_layers == 0;
	return FV_OK;
}

/* openretina builds both Laplace regularizers in every core; the temporal
** one with a non-persistent filter, so it has no state_dict entry. */
static fv_status create_regularizers(fv_module *m, simple_core *sc, const fv_build_args *args)
{
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "no registry to build the Laplace regularizers from");
	fv_status rc = sc_add_child(m, args, "FlatLaplaceL23dnorm", "padding: 0",
	                            "_input_weights_regularizer_spatial", &sc->reg_spatial);
	if (rc != FV_OK)
		return rc;
	return sc_add_child(m, args, "TimeLaplaceL23dnorm", "padding: 0\npersistent_buffer: false",
	                    "_input_weights_regularizer_temporal", &sc->reg_temporal);
}

static void derive(simple_core *sc)
{
	const fv_int_list *down = &sc->downsample_input_kernel_size;
	sc->conv_type = conv_type_of(sc->convolution_type);
	sc->n_layers = (int)sc->channels.n - 1;
	for (int d = 0; down->is_set && d < 3; d++)
		sc->down_kernel[d] = (int)down->v[down->n == 1 ? 0 : d];
}

static void warn_unpadded_cut(const simple_core *o)
{
	if (o->cut_first_n_frames == 0)
		return;
	sc_padding pad;
	if (sc_padding_parse(o->input_padding, "input_padding", &pad) != FV_OK)
		return;
	/* Python's `not input_padding` is true for False and 0 only. */
	bool unpadded = !pad.same && fv_node_kind(o->input_padding) == FV_NODE_SCALAR &&
	                pad.amount[0] == 0 && strcmp(fv_node_text(o->input_padding), "valid") != 0;
	if (unpadded)
		fprintf(stderr,
		        "UserWarning: " NAME ": cutting %lld frames from the core output can lead "
		        "to unexpected results if the input is not padded (input_padding is %s); "
		        "double check the core output shape\n",
		        (long long)o->cut_first_n_frames, fv_node_text(o->input_padding));
}

static void sc_destroy(fv_module *m)
{
	free(((simple_core *)fv_module_priv(m))->layers);
}

static fv_status build(fv_module *m, simple_core *sc, const fv_build_args *args)
{
	fv_status rc = create_regularizers(m, sc, args);
	if (rc != FV_OK)
		return rc;
	sc->layers = calloc((size_t)sc->n_layers, sizeof *sc->layers);
	fv_ctx *rng = fv_ctx_new();
	if (sc->layers == NULL || rng == NULL) {
		fv_ctx_free(rng);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	fv_ctx_seed(rng, args->seed);
	for (int i = 0; i < sc->n_layers && rc == FV_OK; i++)
		rc = create_layer(m, sc, i, rng);
	fv_ctx_free(rng);
	if (rc != FV_OK || !sc->color_squashing_weights.is_set)
		return rc;
	const int64_t n = (int64_t)sc->color_squashing_weights.n;
	sc->color_w = fv_module_add_buffer(m, "color_squashing_layer.channel_weights", 1, &n);
	if (sc->color_w == NULL)
		return FV_ERR_NOMEM;
	for (int64_t c = 0; c < n; c++)
		sc->color_w->data[c] = (fv_real)sc->color_squashing_weights.v[c];
	return FV_OK;
}

static fv_status sc_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	simple_core *sc = fv_module_priv(m);
	fv_status rc = check_options(sc);
	if (rc == FV_OK)
		rc = check_gammas(sc);
	if (rc != FV_OK)
		return rc;
	derive(sc);
	rc = build(m, sc, args);
	if (rc == FV_OK)
		warn_unpadded_cut(sc);
	return rc;
}

/* ---- shapes ---------------------------------------------------------------- */

/* Length of range(T)[cut:] in Python. */
static int64_t cut_length(int64_t T, int64_t cut)
{
	if (cut >= 0)
		return cut >= T ? 0 : T - cut;
	return -cut >= T ? T : -cut;
}

static fv_status input_channels(const simple_core *sc, int64_t *C)
{
	if (sc->color_w != NULL && *C != 1) {
		if (*C != sc->color_w->numel)
			return fv_error(FV_ERR_SHAPE,
			                NAME ": the input has %lld channels but color_squashing_weights "
			                "has %lld weights",
			                (long long)*C, (long long)sc->color_w->numel);
		*C = 1;
	}
	if (*C != sc->channels.v[0])
		return fv_error(FV_ERR_SHAPE,
		                NAME ": the input has %lld channels; channels[0] is %lld",
		                (long long)*C, (long long)sc->channels.v[0]);
	return FV_OK;
}

static fv_status sc_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape,
                                 int *out_ndim, int64_t *out_shape)
{
	const simple_core *sc = fv_module_priv(m);
	if (in_ndim != 4)
		return fv_error(FV_ERR_SHAPE,
		                NAME ": output_shape needs an input shape (C, T, H, W), got %s",
		                fv_shape_str(in_ndim, in_shape));
	int64_t s[4] = {in_shape[0], in_shape[1], in_shape[2], in_shape[3]};
	fv_status rc = input_channels(sc, &s[0]);
	for (int d = 0; rc == FV_OK && sc->downsample_input_kernel_size.is_set && d < 3; d++) {
		if (s[1 + d] < sc->down_kernel[d])
			rc = fv_error(FV_ERR_SHAPE,
			              NAME ": the input %s is smaller than downsample_input_kernel_size",
			              fv_shape_str(in_ndim, in_shape));
		s[1 + d] /= sc->down_kernel[d];
	}
	for (int i = 0; rc == FV_OK && i < sc->n_layers; i++) {
		char where[64];
		snprintf(where, sizeof where, NAME ": layer %d", i);
		rc = sc_conv_output_shape(&sc->layers[i].conv, s, where);
		if (rc == FV_OK && sc->layers[i].pool && (s[2] < 2 || s[3] < 2))
			rc = fv_error(FV_ERR_SHAPE,
			              NAME ": layer %d: a %lld x %lld map is too small for "
			              "MaxPool3d((1, 2, 2))",
			              i, (long long)s[2], (long long)s[3]);
		if (sc->layers[i].pool) {
			s[2] /= 2;
			s[3] /= 2;
		}
	}
	if (rc != FV_OK)
		return rc;
	s[1] = cut_length(s[1], sc->cut_first_n_frames);
	*out_ndim = 4;
	memcpy(out_shape, s, sizeof s);
	return FV_OK;
}

/* ---- forward ---------------------------------------------------------------- */

static fv_tensor *squash_colors(const simple_core *sc, fv_ctx *ctx, fv_tensor *x)
{
	const int64_t shape[5] = {1, sc->color_w->numel, 1, 1, 1};
	const int channel_axis = 1;
	fv_tensor *w = fv_reshape(ctx, sc->color_w, 5, shape);
	return fv_sum(ctx, fv_mul(ctx, x, w), 1, &channel_axis, true);
}

/* Announce x under openretina's module name features.layer<i>[.<what>], for
** InnerNeuronVisualizationObjective (insilico.h); free unless capturing. */
static fv_tensor *mark(fv_module *m, fv_ctx *ctx, int layer, const char *what, fv_tensor *x)
{
	if (x == NULL || !fv_module_capturing(m))
		return x;
	char name[64];
	if (what != NULL)
		snprintf(name, sizeof name, "features.layer%d.%s", layer, what);
	else
		snprintf(name, sizeof name, "features.layer%d", layer);
	fv_module_capture(m, ctx, name, x);
	return x;
}

static fv_tensor *layer_forward(fv_module *m, const simple_core *sc, int i, fv_ctx *ctx,
                                fv_tensor *x, bool training)
{
	const sc_layer *l = &sc->layers[i];
	x = mark(m, ctx, i, "conv", sc_conv_forward(&l->conv, ctx, x));
	/* BatchNorm's shift and the Bias3DLayer are both per-channel additions,
	** so they are folded into one: BN(x) + b == xhat*w + (beta + b) up to
	** float rounding, and the gradient of each is the same sum over
	** (n, t, h, w).  This saves a pass over the activations.  (So the
	** norm output alone is not a capture point; "bias" is.) */
	const int64_t C = l->conv.out_ch;
	fv_tensor *shift = fv_add(ctx, l->norm_b, fv_reshape(ctx, l->bias, 1, &C));
	if (fv_module_capturing(m)) {
		x = fv_parallel_batch_norm3d(ctx, x, l->norm_w, shift, l->running_mean,
		                             l->running_var, l->num_batches, training, 0.1, 1e-5, 0);
		x = mark(m, ctx, i, "bias", x);
		x = mark(m, ctx, i, "nonlin", fv_elu(ctx, x, 1.0));
	} else { /* the same numbers, two passes over the activations fewer */
		x = fv_parallel_batch_norm3d(ctx, x, l->norm_w, shift, l->running_mean,
		                             l->running_var, l->num_batches, training, 0.1, 1e-5, 1.0);
	}
	if (sc->dropout_rate > 0)
		x = mark(m, ctx, i, "dropout", fv_dropout3d(ctx, x, sc->dropout_rate, training));
	if (l->pool) {
		const fv_pool3d_params pool = {.kernel = {1, 2, 2}};
		x = mark(m, ctx, i, "pool", fv_max_pool3d(ctx, x, &pool));
	}
	return mark(m, ctx, i, NULL, x);
}

static fv_tensor *sc_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const simple_core *sc = fv_module_priv(m);
	if (x == NULL) {
		fv_error(FV_ERR_ARG, NAME ": forward: no input");
		return NULL;
	}
	if (x->ndim != 5) {
		fv_error(FV_ERR_SHAPE, NAME ": forward: expected an input (N, C, T, H, W), got %s",
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t C = x->shape[1];
	if (input_channels(sc, &C) != FV_OK)
		return NULL;
	if (sc->color_w != NULL && x->shape[1] != 1)
		x = squash_colors(sc, ctx, x);
	if (sc->downsample_input_kernel_size.is_set) {
		const fv_pool3d_params down = {
			.kernel = {sc->down_kernel[0], sc->down_kernel[1], sc->down_kernel[2]}};
		x = fv_avg_pool3d(ctx, x, &down);
	}
	bool training = fv_module_training(m);
	for (int i = 0; i < sc->n_layers; i++)
		x = layer_forward(m, sc, i, ctx, x, training);
	if (x != NULL && fv_module_capturing(m))
		fv_module_capture(m, ctx, "features", x);
	if (x != NULL && sc->cut_first_n_frames != 0)
		x = fv_slice(ctx, x, 2, sc->cut_first_n_frames, INT64_MAX, 1);
	if (x == NULL)
		fv_error_prefix(NAME ": forward: ");
	return x;
}

/* ---- regularizer ----------------------------------------------------------- */

/* A layer's weight_spatial as openretina's regularizers see it:
** TimeIndependentConv3D returns conv.weight.data, so its terms have a value
** but no gradient (they only shift the logged loss). */
static fv_tensor *spatial_weight(fv_ctx *ctx, const sc_conv *c)
{
	return c->type == SC_CONV_TIME_INDEPENDENT ? fv_detach(ctx, c->w_spatial) : c->w_spatial;
}

/* Σ_o  Σ_i ||w[o,i]|| / sqrt(1e-8 + ||w[o]||²)  for w = (O, I, 1, kh, kw). */
static fv_tensor *group_sparsity_of(fv_ctx *ctx, fv_tensor *w)
{
	const int per_pair[3] = {2, 3, 4}, per_out[4] = {1, 2, 3, 4}, in_axis = 1;
	fv_tensor *sq = fv_square(ctx, w);
	fv_tensor *pair_norms = fv_sqrt(ctx, fv_sum(ctx, sq, 3, per_pair, false));
	fv_tensor *num = fv_sum(ctx, pair_norms, 1, &in_axis, false);
	fv_tensor *den = fv_sqrt(ctx, fv_add_scalar(ctx, fv_sum(ctx, sq, 4, per_out, false), 1e-8));
	return fv_sum_all(ctx, fv_div(ctx, num, den));
}

static fv_tensor *group_sparsity(const simple_core *sc, fv_ctx *ctx, int first_layer)
{
	fv_tensor *total = fv_ctx_scalar(ctx, 0);
	for (int i = first_layer; i < sc->n_layers; i++)
		total = fv_add(ctx, total,
		               group_sparsity_of(ctx, spatial_weight(ctx, &sc->layers[i].conv)));
	return total;
}

static fv_tensor *temporal_smoothness(const simple_core *sc, fv_ctx *ctx)
{
	fv_forward_args sum = FV_FORWARD_ARGS_INIT;
	sum.reduction = FV_REDUCE_SUM;
	if (sc->conv_type == SC_CONV_SEPARABLE)
		return fv_module_penalty(sc->reg_temporal, ctx, sc->layers[0].conv.w_time, &sum);
	fv_tensor *total = fv_ctx_scalar(ctx, 0);
	for (int i = 0; i < sc->n_layers; i++)
		total = fv_add(ctx, total, sc_conv_temporal_smoothing(&sc->layers[i].conv, ctx));
	return total;
}

static fv_tensor *add_term(fv_ctx *ctx, fv_tensor *total, double gamma, fv_tensor *term)
{
	return fv_add(ctx, total, fv_mul_scalar(ctx, term, gamma));
}

static fv_tensor *sc_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)fa; /* openretina's core regularizer() takes no arguments */
	const simple_core *sc = fv_module_priv(m);
	fv_forward_args sum = FV_FORWARD_ARGS_INIT;
	sum.reduction = FV_REDUCE_SUM;
	fv_tensor *total = fv_ctx_scalar(ctx, 0);
	if (sc->gamma_input != 0)
		total = add_term(ctx, total, sc->gamma_input,
		                 fv_module_penalty(sc->reg_spatial, ctx,
		                                   spatial_weight(ctx, &sc->layers[0].conv), &sum));
	if (sc->gamma_hidden != 0)
		total = add_term(ctx, total, sc->gamma_hidden, group_sparsity(sc, ctx, 1));
	if (sc->gamma_temporal != 0)
		total = add_term(ctx, total, sc->gamma_temporal, temporal_smoothness(sc, ctx));
	if (sc->gamma_in_sparse != 0)
		total = add_term(ctx, total, sc->gamma_in_sparse, group_sparsity(sc, ctx, 0));
	if (total == NULL)
		fv_error_prefix(NAME ": regularizer: ");
	return total;
}

/* ---- figures -------------------------------------------------------------------- */

static fv_status sc_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out)
{
	const simple_core *sc = fv_module_priv(m);
	if (layer < 0 || layer >= sc->n_layers)
		return fv_error(FV_ERR_NOTFOUND, NAME ": no layer %lld (it has %d)", (long long)layer,
		                sc->n_layers);
	return sc_conv_dense_kernel(&sc->layers[layer].conv, out);
}

static fv_status sc_first_layer_filters(const fv_module *m, fv_tensor **out)
{
	return sc_layer_filters(m, 0, out);
}

/* ---- descriptor -------------------------------------------------------------- */

static const char *const sc_names[] = {
	NAME,
	"openretina.modules.core.base_core.SimpleCoreWrapper",
	NULL,
};

static const fv_component simple_core_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = sc_names,
	.doc = "stack of space-time convolution layers (conv, BatchNorm, bias, ELU) as "
	       "openretina's SimpleCoreWrapper",
	.options = sc_options,
	.priv_size = sizeof(simple_core),
	.create = sc_create,
	.destroy = sc_destroy,
	.forward = sc_forward,
	.regularizer = sc_regularizer,
	.output_shape = sc_output_shape,
	.first_layer_filters = sc_first_layer_filters,
	.layer_filters = sc_layer_filters,
};

FV_PLUGIN_DEFINE("cores-simple", &simple_core_component);
