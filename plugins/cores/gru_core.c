/*
** gru_core.c: ConvGRUCore and ConditionedGRUCore
** (openretina.modules.core.gru_core).
**
** openretina's `features` Sequential holds, in order:
**     layer0       conv -> [BatchNorm3d -> Bias3DLayer | Scale3DLayer] -> [nonlinearity]
**     projection   (use_projections) 1x1x1 Conv3d without bias -> nonlinearity
**     layer1..     as layer0
**     gru          (use_gru) GRU_Module, see gru_cell.c
** BatchNorm is affine when bias and batch_norm_scale; otherwise bias adds
** a Bias3DLayer, batch_norm_scale alone a Scale3DLayer.  Quirks kept as
** openretina has them (its reference cases record them):
**   - hidden_padding is only tested for truthiness; layer 1 is never
**     padded, layer n >= 2 pads (0, k/2, k/2) with layer n-1's spatial
**     kernel size k; a truthy input_padding pads layer 0 with its own;
**   - final_nonlinearity false drops the nonlinearity of the last layer
**     and of layer 0;
**   - the regularizer (custom_separable only; 0 for the other types)
**     evaluates all four terms whatever the gammas.
** ConditionedGRUCore adds FiLM after every layer with a norm:
** x = fc_gamma(c) * x + fc_beta(c), named film_<index in features>.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/insilico.h>
#include <fovea/parallel.h>

#include "gru_core.h"

typedef enum nonlinearity {
	NL_ELU,
	NL_SOFTPLUS,
	NL_RELU,
	NL_SIGMOID,
	NL_TANH,
	NL_IDENTITY
} nonlinearity;

typedef struct gru_layer {
	sc_conv conv;
	int feature;       /* index in openretina's features: film_<feature> */
	fv_tensor *norm_w, *norm_b, *running_mean, *running_var, *num_batches;
	fv_tensor *bias;   /* Bias3DLayer (1, C, 1, 1, 1), or NULL */
	fv_tensor *scale;  /* Scale3DLayer (1, C, 1, 1, 1), or NULL */
	bool nonlin;
	fv_tensor *film_gw, *film_gb, *film_bw, *film_bb; /* FiLM, or NULL */
} gru_layer;

typedef struct gru_core {
	/* the options */
	int64_t cond_dim; /* ConditionedGRUCore only */
	fv_int_list channels;
	const fv_config_node *n_neurons_dict;
	const fv_config_node *temporal_kernel_sizes, *spatial_kernel_sizes;
	double gamma_hidden, gamma_input, gamma_in_sparse, gamma_temporal;
	bool final_nonlinearity, bias, batch_norm, batch_norm_scale;
	double batch_norm_momentum;
	const fv_config_node *input_padding, *hidden_padding;
	int64_t laplace_padding;
	bool batch_adaptation, use_avg_reg, use_gru, use_projections;
	const char *nonlinearity, *convolution_type;
	const fv_config_node *gru_kwargs;
	/* what create() builds */
	const char *name;  /* the component's name, for messages */
	bool conditioned;
	nonlinearity nl;
	sc_conv_type conv_type;
	int n_layers;
	gru_layer *layers;
	bool has_projection;
	sc_conv projection; /* features.projection.0 */
	bool has_gru;
	gru_cell gru;
	fv_module *reg_spatial; /* _input_weights_regularizer_spatial */
} gru_core;

#define GRU_OPTIONS                                                                               \
	FV_OPT("channels", INT_LIST, gru_core, channels, NULL,                                    \
	       "channels of the input and of every layer's output (at least two entries)",        \
	       .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),                                   \
	FV_OPT("n_neurons_dict", NODE, gru_core, n_neurons_dict, "null",                          \
	       "{session: neurons}; batch_adaptation learns a log speed per session",             \
	       .flags = FV_OPT_NULLABLE),                                                         \
	FV_OPT("temporal_kernel_sizes", NODE, gru_core, temporal_kernel_sizes, "[21]",            \
	       "temporal kernel length of each layer (a list, or one integer for all)"),          \
	FV_OPT("spatial_kernel_sizes", NODE, gru_core, spatial_kernel_sizes, "[14]",              \
	       "square spatial kernel size of each layer (a list, or one integer for all)"),      \
	FV_OPT("gamma_hidden", FLOAT, gru_core, gamma_hidden, "0.0",                              \
	       "weight of the group sparsity of every layer's spatial weights"),                  \
	FV_OPT("gamma_input", FLOAT, gru_core, gamma_input, "0.0",                                \
	       "weight of the normalised spatial Laplace of layer 0's spatial weights"),          \
	FV_OPT("gamma_in_sparse", FLOAT, gru_core, gamma_in_sparse, "0.0",                        \
	       "weight of the group sparsity of layer 0's full space-time weight"),               \
	FV_OPT("gamma_temporal", FLOAT, gru_core, gamma_temporal, "0.0",                          \
	       "weight of the temporal smoothness of every layer's sin/cos weights"),             \
	FV_OPT("final_nonlinearity", BOOL, gru_core, final_nonlinearity, "true",                  \
	       "nonlinearity after the last layer (false also drops layer 0's, as openretina)"),  \
	FV_OPT("bias", BOOL, gru_core, bias, "true",                                              \
	       "per-channel bias after the norm (affine BatchNorm with batch_norm_scale)"),       \
	FV_OPT("input_padding", NODE, gru_core, input_padding, "false",                           \
	       "truthy: pad layer 0 spatially by its kernel size // 2"),                          \
	FV_OPT("hidden_padding", NODE, gru_core, hidden_padding, "true",                          \
	       "truthy: pad layers 2.. spatially by the previous layer's kernel size // 2"),      \
	FV_OPT("batch_norm", BOOL, gru_core, batch_norm, "true", "BatchNorm3d after each conv"),  \
	FV_OPT("batch_norm_scale", BOOL, gru_core, batch_norm_scale, "true",                      \
	       "per-channel scale after the norm (affine BatchNorm with bias)"),                  \
	FV_OPT("batch_norm_momentum", FLOAT, gru_core, batch_norm_momentum, "0.1",                \
	       "BatchNorm3d momentum", .min = 0, .max = 1),                                       \
	FV_OPT("laplace_padding", INT, gru_core, laplace_padding, "0",                            \
	       "padding of the Laplace regularizers (null: kernel // 2)", .min = 0, .max = 1000,  \
	       .flags = FV_OPT_NULLABLE),                                                         \
	FV_OPT("batch_adaptation", BOOL, gru_core, batch_adaptation, "false",                     \
	       "learn a temporal log speed per session of n_neurons_dict"),                       \
	FV_OPT("use_avg_reg", BOOL, gru_core, use_avg_reg, "false",                               \
	       "mean instead of sum in the spatial Laplace regularizer"),                         \
	FV_OPT("nonlinearity", ENUM, gru_core, nonlinearity, "ELU",                               \
	       "torch.nn activation class with its default arguments",                            \
	       .choices = "ELU|Softplus|ReLU|Sigmoid|Tanh|Identity"),                             \
	FV_OPT("convolution_type", ENUM, gru_core, convolution_type, "custom_separable",          \
	       "sin/cos-parametrised separable conv, two torch convs, or a dense conv",           \
	       .choices = "custom_separable|separable|full"),                                     \
	FV_OPT("use_gru", BOOL, gru_core, use_gru, "false",                                       \
	       "close the stack with a convolutional GRU over the frames (gru_kwargs)"),          \
	FV_OPT("use_projections", BOOL, gru_core, use_projections, "false",                       \
	       "a 1x1x1 conv and nonlinearity after layer 0"),                                    \
	FV_OPT("gru_kwargs", NODE, gru_core, gru_kwargs, "null",                                  \
	       "the GRU's rec_channels, input_kern, rec_kern, groups, gamma_rec, pad_input",      \
	       .flags = FV_OPT_NULLABLE),                                                         \
	FV_OPT_KWARGS_ROW("accepted and ignored, as ConvGRUCore's **kwargs (listed as not used)")

static const fv_option gru_core_options[] = {GRU_OPTIONS, {0}};

static const fv_option conditioned_options[] = {
	FV_OPT("cond_dim", INT, gru_core, cond_dim, NULL, "size of the conditioning vector",
	       .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	GRU_OPTIONS,
	{0},
};

/* ---- options ------------------------------------------------------------------- */

/* Python's bool() of a YAML value. */
static bool truthy(const fv_config_node *n)
{
	if (n == NULL || fv_node_is_null(n))
		return false;
	if (fv_node_kind(n) != FV_NODE_SCALAR)
		return fv_node_size(n) > 0;
	bool b;
	double v;
	if (!fv_node_quoted(n) && fv_node_to_bool(n, &b) == FV_OK)
		return b;
	if (!fv_node_quoted(n) && fv_node_to_double(n, &v) == FV_OK)
		return v != 0;
	return fv_node_text(n)[0] != '\0';
}

/* A kernel-size option: one integer for every layer, or a list with an
** entry per layer at least (openretina indexes it by layer). */
static fv_status kernel_sizes(const gru_core *g, const fv_config_node *n, const char *key,
                              int64_t *out)
{
	int64_t v;
	if (fv_node_kind(n) == FV_NODE_SCALAR && fv_node_to_int(n, &v) == FV_OK && v >= 1) {
		for (int i = 0; i < g->n_layers; i++)
			out[i] = v;
		return FV_OK;
	}
	if (fv_node_kind(n) != FV_NODE_SEQ || fv_node_size(n) < (size_t)g->n_layers)
		return fv_error_at(n, FV_ERR_CONFIG,
		                   "%s: expected a positive integer or a list of at least %d "
		                   "(one per layer)",
		                   key, g->n_layers);
	for (int i = 0; i < g->n_layers; i++)
		if (fv_node_to_int(fv_node_at(n, (size_t)i), &out[i]) != FV_OK || out[i] < 1 ||
		    out[i] > 1000000)
			return fv_error_at(fv_node_at(n, (size_t)i), FV_ERR_CONFIG,
			                   "%s[%d]: expected a positive integer", key, i);
	return FV_OK;
}

static nonlinearity nonlinearity_of(const char *s)
{
	static const char *const names[] = {"ELU", "Softplus", "ReLU", "Sigmoid", "Tanh"};
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return (nonlinearity)i;
	return NL_IDENTITY;
}

static sc_conv_type conv_type_of(const char *s)
{
	if (strcmp(s, "custom_separable") == 0)
		return SC_CONV_CUSTOM_SEPARABLE;
	return strcmp(s, "separable") == 0 ? SC_CONV_SEPARABLE : SC_CONV_FULL;
}

static fv_status check_options(const gru_core *g, const int64_t *kt)
{
	if (g->channels.n < 2)
		return fv_error(FV_ERR_CONFIG,
		                "channels: at least two channels are needed (input and output), "
		                "got %zu",
		                g->channels.n);
	for (int i = 0; g->conv_type == SC_CONV_CUSTOM_SEPARABLE && i < g->n_layers; i++)
		if (kt[i] < 3)
			return fv_error(FV_ERR_CONFIG,
			                "temporal_kernel_sizes[%d] = %lld: custom_separable needs "
			                "a length of at least 3 (its subsampling factor)",
			                i, (long long)kt[i]);
	return FV_OK;
}

/* ---- construction ---------------------------------------------------------------- */

static fv_status create_norm(fv_module *m, const gru_core *g, gru_layer *l, const char *prefix)
{
	int64_t C = l->conv.out_ch;
	const int64_t c5[5] = {1, C, 1, 1, 1};
	if (g->bias && g->batch_norm_scale) {
		l->norm_w = sc_add_tensor(m, prefix, "norm.weight", 1, &C, false, 1);
		l->norm_b = sc_add_tensor(m, prefix, "norm.bias", 1, &C, false, 0);
		if (l->norm_w == NULL || l->norm_b == NULL)
			return FV_ERR_NOMEM;
	}
	l->running_mean = sc_add_tensor(m, prefix, "norm.running_mean", 1, &C, true, 0);
	l->running_var = sc_add_tensor(m, prefix, "norm.running_var", 1, &C, true, 1);
	l->num_batches = sc_add_tensor(m, prefix, "norm.num_batches_tracked", 0, NULL, true, 0);
	if (l->running_mean == NULL || l->running_var == NULL || l->num_batches == NULL)
		return FV_ERR_NOMEM;
	if (g->bias && !g->batch_norm_scale &&
	    (l->bias = sc_add_tensor(m, prefix, "bias.bias", 5, c5, false, 0)) == NULL)
		return FV_ERR_NOMEM;
	if (!g->bias && g->batch_norm_scale &&
	    (l->scale = sc_add_tensor(m, prefix, "scale.scale", 5, c5, false, 1)) == NULL)
		return FV_ERR_NOMEM;
	return FV_OK;
}

/* nn.Linear(cond_dim, C) pairs of FiLM: weights N(0, 0.01), gamma's bias 1. */
static fv_status create_film(fv_module *m, const gru_core *g, gru_layer *l, fv_ctx *rng)
{
	char prefix[32];
	snprintf(prefix, sizeof prefix, "film_%d", l->feature);
	const int64_t C = l->conv.out_ch, w[2] = {C, g->cond_dim};
	l->film_gw = sc_add_tensor(m, prefix, "fc_gamma.weight", 2, w, false, 0);
	l->film_gb = sc_add_tensor(m, prefix, "fc_gamma.bias", 1, &C, false, 1);
	l->film_bw = sc_add_tensor(m, prefix, "fc_beta.weight", 2, w, false, 0);
	l->film_bb = sc_add_tensor(m, prefix, "fc_beta.bias", 1, &C, false, 0);
	if (!l->film_gw || !l->film_gb || !l->film_bw || !l->film_bb)
		return FV_ERR_NOMEM;
	for (int64_t i = 0; i < l->film_gw->numel; i++) {
		l->film_gw->data[i] = (fv_real)(0.01 * fv_ctx_random_normal(rng));
		l->film_bw->data[i] = (fv_real)(0.01 * fv_ctx_random_normal(rng));
	}
	return FV_OK;
}

/* The padding of layer i (see the header comment). */
static sc_padding layer_padding(const gru_core *g, int i, const int64_t *ks)
{
	sc_padding p = {0};
	bool padded = i == 0 ? truthy(g->input_padding) : (i >= 2 && truthy(g->hidden_padding));
	int k = (int)(i == 0 ? ks[0] : ks[i - 1]);
	if (padded)
		p.amount[1] = p.amount[2] = k / 2;
	return p;
}

static fv_status create_layer(fv_module *m, gru_core *g, int i, const int64_t *kt,
                              const int64_t *ks, fv_ctx *rng)
{
	gru_layer *l = &g->layers[i];
	char prefix[48], conv[64];
	snprintf(prefix, sizeof prefix, "features.layer%d", i);
	snprintf(conv, sizeof conv, "%s.conv", prefix);
	sc_padding pad = layer_padding(g, i, ks);
	fv_status rc = sc_conv_create(&l->conv, m, conv, g->conv_type, (int)g->channels.v[i],
	                              (int)g->channels.v[i + 1], (int)kt[i], (int)ks[i], &pad, rng);
	if (rc == FV_OK && g->batch_norm)
		rc = create_norm(m, g, l, prefix);
	if (rc != FV_OK)
		return rc;
	l->feature = i + (g->has_projection && i > 0 ? 1 : 0);
	l->nonlin = g->final_nonlinearity || (i > 0 && i < g->n_layers - 1);
	return FV_OK;
}

/* TorchFullConv3D(C, C, 1, 1, bias=False), initialised by Core3d.init_conv:
** xavier_normal_, std sqrt(2 / (C + C)). */
static fv_status create_projection(fv_module *m, gru_core *g, fv_ctx *rng)
{
	const sc_padding none = {0};
	int C = (int)g->channels.v[1];
	fv_status rc = sc_conv_create(&g->projection, m, "features.projection.0", SC_CONV_FULL, C, C,
	                              1, 1, &none, rng);
	if (rc != FV_OK)
		return rc;
	fv_tensor *w = g->projection.w_full;
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(fv_ctx_random_normal(rng) * sqrt(1.0 / C));
	return FV_OK;
}

/* openretina builds both Laplace regularizers in every core, with
** persistent filters; only the spatial one is ever used. */
static fv_status add_regularizer(fv_module *m, const fv_build_args *args, const char *target,
                                 int64_t padding, const char *name, fv_module **out)
{
	char yaml[64];
	if (padding == FV_NONE_INT)
		snprintf(yaml, sizeof yaml, "padding: null");
	else
		snprintf(yaml, sizeof yaml, "padding: %lld", (long long)padding);
	return sc_add_child(m, args, target, yaml, name, out);
}

/* batch_adaptation: the log speeds, aliased below every conv that
** openretina hands them to (the layers' and the projection's). */
static fv_status create_speeds(fv_module *m, const gru_core *g)
{
	char(*prefixes)[32] = calloc((size_t)g->n_layers + 1, sizeof *prefixes);
	const char **names = calloc((size_t)g->n_layers + 1, sizeof *names);
	if (prefixes == NULL || names == NULL) {
		free(prefixes);
		free(names);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	int n = 0;
	for (; n < g->n_layers; n++) {
		snprintf(prefixes[n], sizeof prefixes[n], "features.layer%d.conv", n);
		names[n] = prefixes[n];
	}
	if (g->has_projection)
		names[n++] = "features.projection.0";
	fv_status rc = gru_speed_create(m, g->n_neurons_dict, names, n);
	free(prefixes);
	free(names);
	return rc;
}

static fv_status build(fv_module *m, gru_core *g, const fv_build_args *args, const int64_t *kt,
                       const int64_t *ks)
{
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "no registry to build the Laplace regularizers from");
	fv_status rc = add_regularizer(m, args, "FlatLaplaceL23dnorm", g->laplace_padding,
	                               "_input_weights_regularizer_spatial", &g->reg_spatial);
	if (rc == FV_OK)
		rc = add_regularizer(m, args, "TimeLaplaceL23dnorm", g->laplace_padding,
		                     "_input_weights_regularizer_temporal", NULL);
	if (rc != FV_OK)
		return rc;
	g->layers = calloc((size_t)g->n_layers, sizeof *g->layers);
	fv_ctx *rng = fv_ctx_new();
	if (g->layers == NULL || rng == NULL) {
		fv_ctx_free(rng);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	fv_ctx_seed(rng, args->seed);
	for (int i = 0; i < g->n_layers && rc == FV_OK; i++) {
		rc = create_layer(m, g, i, kt, ks, rng);
		if (rc == FV_OK && i == 0 && g->has_projection)
			rc = create_projection(m, g, rng);
	}
	if (rc == FV_OK && g->has_gru)
		rc = gru_cell_create(&g->gru, m, g->gru_kwargs, g->channels.v[g->n_layers], rng);
	for (int i = 0; rc == FV_OK && g->conditioned && i < g->n_layers; i++)
		if (g->batch_norm)
			rc = create_film(m, g, &g->layers[i], rng);
	fv_ctx_free(rng);
	if (rc == FV_OK && g->batch_adaptation)
		rc = create_speeds(m, g);
	return rc;
}

static void create_core(fv_module *m, bool conditioned)
{
	gru_core *g = fv_module_priv(m);
	g->name = fv_module_component(m)->names[0];
	g->conditioned = conditioned;
	g->nl = nonlinearity_of(g->nonlinearity);
	g->conv_type = conv_type_of(g->convolution_type);
	g->n_layers = g->channels.n >= 2 ? (int)g->channels.n - 1 : 0;
	g->has_projection = g->use_projections;
	g->has_gru = g->use_gru;
}

static fv_status create_any(fv_module *m, const fv_build_args *args, bool conditioned)
{
	gru_core *g = fv_module_priv(m);
	create_core(m, conditioned);
	if (g->n_layers < 1)
		return check_options(g, NULL);
	int64_t *kt = calloc(2 * (size_t)g->n_layers, sizeof *kt);
	if (kt == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	int64_t *ks = kt + g->n_layers;
	fv_status rc = kernel_sizes(g, g->temporal_kernel_sizes, "temporal_kernel_sizes", kt);
	if (rc == FV_OK)
		rc = kernel_sizes(g, g->spatial_kernel_sizes, "spatial_kernel_sizes", ks);
	if (rc == FV_OK)
		rc = check_options(g, kt);
	if (rc == FV_OK)
		rc = build(m, g, args, kt, ks);
	free(kt);
	return rc;
}

static fv_status gru_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	return create_any(m, args, false);
}

static fv_status conditioned_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	return create_any(m, args, true);
}

static void gru_destroy(fv_module *m)
{
	free(((gru_core *)fv_module_priv(m))->layers);
}

/* ---- shapes ------------------------------------------------------------------------- */

static fv_status gru_output_shape(fv_module *m, int in_ndim, const int64_t *in_shape,
                                  int *out_ndim, int64_t *out_shape)
{
	const gru_core *g = fv_module_priv(m);
	if (in_ndim != 4)
		return fv_error(FV_ERR_SHAPE, "%s: output_shape needs an input shape (C, T, H, W), got %s",
		                g->name, fv_shape_str(in_ndim, in_shape));
	if (in_shape[0] != g->channels.v[0])
		return fv_error(FV_ERR_SHAPE, "%s: the input has %lld channels; channels[0] is %lld",
		                g->name, (long long)in_shape[0], (long long)g->channels.v[0]);
	int64_t s[4] = {in_shape[0], in_shape[1], in_shape[2], in_shape[3]};
	fv_status rc = FV_OK;
	for (int i = 0; rc == FV_OK && i < g->n_layers; i++) {
		char where[64];
		snprintf(where, sizeof where, "%s: layer %d", g->name, i);
		rc = sc_conv_output_shape(&g->layers[i].conv, s, where);
	}
	if (rc == FV_OK && g->has_gru)
		rc = gru_cell_output_shape(&g->gru, s);
	if (rc != FV_OK)
		return rc;
	*out_ndim = 4;
	memcpy(out_shape, s, sizeof s);
	return FV_OK;
}

/* ---- forward ------------------------------------------------------------------------- */

static fv_tensor *activate(nonlinearity nl, fv_ctx *ctx, fv_tensor *x)
{
	switch (nl) {
	case NL_ELU:
		return fv_elu(ctx, x, 1.0);
	case NL_SOFTPLUS:
		return fv_softplus(ctx, x, 1.0, 20.0);
	case NL_RELU:
		return fv_relu(ctx, x);
	case NL_SIGMOID:
		return fv_sigmoid(ctx, x);
	case NL_TANH:
		return fv_tanh(ctx, x);
	default:
		return x;
	}
}

/* Announce x under openretina's module name features[.<part>[<layer>][.<what>]], for
** InnerNeuronVisualizationObjective (insilico.h); free unless capturing. */
static fv_tensor *mark(fv_module *m, fv_ctx *ctx, const char *part, int layer, const char *what,
                       fv_tensor *x)
{
	if (x == NULL || m == NULL || !fv_module_capturing(m))
		return x;
	char name[96];
	int n = snprintf(name, sizeof name, "features%s%s", part[0] != '\0' ? "." : "", part);
	if (layer >= 0)
		n += snprintf(name + n, sizeof name - (size_t)n, "%d", layer);
	if (what != NULL)
		snprintf(name + n, sizeof name - (size_t)n, ".%s", what);
	fv_module_capture(m, ctx, name, x);
	return x;
}

/* BatchNorm3d, then the Bias3DLayer or Scale3DLayer, then the
** nonlinearity.  The bias (scale) of a non-affine norm is folded into the
** norm's shift (factor): the same numbers up to rounding, one pass fewer. */
static fv_tensor *norm(fv_module *m, const gru_core *g, int i, fv_ctx *ctx, fv_tensor *x,
                       bool training)
{
	const gru_layer *l = &g->layers[i];
	const int64_t C = l->conv.out_ch;
	fv_tensor *w = l->scale ? fv_reshape(ctx, l->scale, 1, &C) : l->norm_w;
	fv_tensor *b = l->bias ? fv_reshape(ctx, l->bias, 1, &C) : l->norm_b;
	double momentum = g->batch_norm_momentum;
	if (l->nonlin && g->nl == NL_ELU && !fv_module_capturing(m))
		return fv_parallel_batch_norm3d(ctx, x, w, b, l->running_mean, l->running_var,
		                                l->num_batches, training, momentum, 1e-5, 1.0);
	x = fv_parallel_batch_norm3d(ctx, x, w, b, l->running_mean, l->running_var,
	                             l->num_batches, training, momentum, 1e-5, 0);
	/* with a folded Bias3DLayer / Scale3DLayer the capture point is its output */
	x = mark(m, ctx, "layer", i, l->bias ? "bias" : l->scale ? "scale" : "norm", x);
	return l->nonlin ? mark(m, ctx, "layer", i, "nonlin", activate(g->nl, ctx, x)) : x;
}

/* FiLM: fc_gamma(c) * x + fc_beta(c), the (B, C) factors broadcast over
** (T, H, W). */
static fv_tensor *film(const gru_layer *l, fv_ctx *ctx, fv_tensor *x, fv_tensor *cond)
{
	const int64_t s[5] = {cond->shape[0], l->conv.out_ch, 1, 1, 1};
	fv_tensor *gamma = fv_add(ctx, fv_matmul_ex(ctx, cond, l->film_gw, false, true), l->film_gb);
	fv_tensor *beta = fv_add(ctx, fv_matmul_ex(ctx, cond, l->film_bw, false, true), l->film_bb);
	return fv_add(ctx, fv_mul(ctx, fv_reshape(ctx, gamma, 5, s), x), fv_reshape(ctx, beta, 5, s));
}

/* The run of one forward: the inputs every layer may need. */
typedef struct run {
	bool training;
	fv_tensor *cond;      /* ConditionedGRUCore: (B, cond_dim) */
	fv_tensor *log_speed; /* forward with a data_key: the session's, else NULL */
} run;

static fv_tensor *layer_forward(fv_module *m, const gru_core *g, int i, fv_ctx *ctx,
                                fv_tensor *x, const run *r)
{
	const gru_layer *l = &g->layers[i];
	x = r->log_speed ? gru_speed_conv_forward(&l->conv, ctx, x, r->log_speed)
	                 : sc_conv_forward(&l->conv, ctx, x);
	x = mark(m, ctx, "layer", i, "conv", x);
	if (g->batch_norm)
		x = norm(m, g, i, ctx, x, r->training);
	else if (l->nonlin)
		x = mark(m, ctx, "layer", i, "nonlin", activate(g->nl, ctx, x));
	x = mark(m, ctx, "layer", i, NULL, x);
	return l->film_gw != NULL ? film(l, ctx, x, r->cond) : x;
}

/* The (B, cond_dim) conditioning, zeros when none is given. */
static fv_tensor *conditioning(const gru_core *g, fv_ctx *ctx, const fv_tensor *x,
                               const fv_forward_args *fa)
{
	bool has = fa != NULL && fa->struct_size >= offsetof(fv_forward_args, conditioning) +
	                                                   sizeof fa->conditioning;
	fv_tensor *c = has ? fa->conditioning : NULL;
	if (c == NULL) {
		const int64_t shape[2] = {x->shape[0], g->cond_dim};
		return fv_ctx_zeros(ctx, 2, shape);
	}
	if (c->ndim != 2 || c->shape[0] != x->shape[0] || c->shape[1] != g->cond_dim) {
		fv_error(FV_ERR_SHAPE, "%s: forward: conditioning must be (%lld, %lld), got %s",
		         g->name, (long long)x->shape[0], (long long)g->cond_dim,
		         fv_shape_str(c->ndim, c->shape));
		return NULL;
	}
	return c;
}

static fv_tensor *gru_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	const gru_core *g = fv_module_priv(m);
	if (x == NULL || x->ndim != 5 || x->shape[1] != g->channels.v[0]) {
		fv_error(FV_ERR_SHAPE, "%s: forward: expected an input (N, %lld, T, H, W), got %s",
		         g->name, (long long)g->channels.v[0],
		         x ? fv_shape_str(x->ndim, x->shape) : "none");
		return NULL;
	}
	run r = {.training = fv_module_training(m)};
	if (g->conditioned && (r.cond = conditioning(g, ctx, x, fa)) == NULL)
		return NULL;
	if (fa != NULL && fa->data_key != NULL && (r.log_speed = gru_speed_of(m, fa->data_key)) == NULL) {
		fv_error_prefix("%s: forward: ", g->name);
		return NULL;
	}
	for (int i = 0; i < g->n_layers; i++) {
		x = layer_forward(m, g, i, ctx, x, &r);
		if (i == 0 && g->has_projection)
			x = mark(m, ctx, "projection", -1, NULL,
			         activate(g->nl, ctx, sc_conv_forward(&g->projection, ctx, x)));
	}
	if (g->has_gru)
		x = mark(m, ctx, "gru", -1, NULL, gru_cell_forward(&g->gru, ctx, x));
	x = mark(m, ctx, "", -1, NULL, x);
	if (x == NULL)
		fv_error_prefix("%s: forward: ", g->name);
	return x;
}

/* ---- regularizer ------------------------------------------------------------------- */

/* Σ_o Σ_i ||w[o,i]|| / ||w[o]|| over the spatial weights (O, I, 1, kh, kw),
** without an epsilon, as openretina's ConvGRUCore.group_sparsity. */
static fv_tensor *layer_group_sparsity(fv_ctx *ctx, fv_tensor *w)
{
	const int per_pair[3] = {2, 3, 4}, per_out[4] = {1, 2, 3, 4}, in_axis = 1;
	fv_tensor *sq = fv_square(ctx, w);
	fv_tensor *num = fv_sum(ctx, fv_sqrt(ctx, fv_sum(ctx, sq, 3, per_pair, false)), 1, &in_axis,
	                        false);
	fv_tensor *den = fv_sqrt(ctx, fv_sum(ctx, sq, 4, per_out, false));
	return fv_sum_all(ctx, fv_div(ctx, num, den));
}

static fv_tensor *group_sparsity(const gru_core *g, fv_ctx *ctx)
{
	fv_tensor *total = fv_ctx_scalar(ctx, 0);
	for (int i = 0; i < g->n_layers; i++)
		total = fv_add(ctx, total, layer_group_sparsity(ctx, g->layers[i].conv.w_spatial));
	return total;
}

/* The same for layer 0's full weight W = w_time ⊗ w_spatial at log speed 0,
** with sqrt(1e-8 + ||W[o]||²): ||W[o,i]||² = Σ_t w_time² · Σ_hw w_spatial². */
static fv_tensor *group_sparsity0(const gru_core *g, fv_ctx *ctx)
{
	const sc_conv *c = &g->layers[0].conv;
	const int last = 2, hw[3] = {2, 3, 4}, in_axis = 1;
	fv_tensor *t2 = fv_sum(ctx, fv_square(ctx, sc_conv_temporal_kernel(c, ctx, 0.0)), 1, &last,
	                       false);
	fv_tensor *s2 = fv_sum(ctx, fv_square(ctx, c->w_spatial), 3, hw, false);
	fv_tensor *pair = fv_mul(ctx, t2, s2); /* (O, I) */
	fv_tensor *num = fv_sum(ctx, fv_sqrt(ctx, pair), 1, &in_axis, false);
	fv_tensor *den = fv_sqrt(ctx, fv_add_scalar(ctx, fv_sum(ctx, pair, 1, &in_axis, false), 1e-8));
	return fv_sum_all(ctx, fv_div(ctx, num, den));
}

static fv_tensor *temporal_smoothness(const gru_core *g, fv_ctx *ctx)
{
	fv_tensor *total = fv_ctx_scalar(ctx, 0);
	for (int i = 0; i < g->n_layers; i++)
		total = fv_add(ctx, total, sc_conv_temporal_smoothing(&g->layers[i].conv, ctx));
	return total;
}

/* Keep a term's value as module state regularizer_terms.<name> (the
** reference cases store them) and return gamma * term. */
static fv_tensor *term(fv_module *m, fv_ctx *ctx, const char *name, double gamma, fv_tensor *t)
{
	char full[64];
	snprintf(full, sizeof full, "regularizer_terms.%s", name);
	const int64_t scalar[1] = {1}; /* unused: 0 dims; not NULL, which memcmp may not see */
	fv_tensor *keep = t != NULL ? fv_module_set_state(m, full, 0, scalar) : NULL;
	if (keep != NULL)
		keep->data[0] = t->data[0];
	return fv_mul_scalar(ctx, t, gamma);
}

static fv_tensor *gru_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)fa; /* openretina's core regularizer() takes no arguments */
	const gru_core *g = fv_module_priv(m);
	if (g->conv_type != SC_CONV_CUSTOM_SEPARABLE)
		return fv_ctx_scalar(ctx, 0);
	fv_forward_args red = FV_FORWARD_ARGS_INIT;
	red.reduction = g->use_avg_reg ? FV_REDUCE_MEAN : FV_REDUCE_SUM;
	fv_tensor *laplace = fv_module_penalty(g->reg_spatial, ctx, g->layers[0].conv.w_spatial, &red);
	fv_tensor *total = term(m, ctx, "group_sparsity", g->gamma_hidden, group_sparsity(g, ctx));
	total = fv_add(ctx, total, term(m, ctx, "spatial_laplace", g->gamma_input, laplace));
	total = fv_add(ctx, total, term(m, ctx, "temporal_smoothness", g->gamma_temporal,
	                                temporal_smoothness(g, ctx)));
	total = fv_add(ctx, total,
	               term(m, ctx, "group_sparsity0", g->gamma_in_sparse, group_sparsity0(g, ctx)));
	if (total == NULL)
		fv_error_prefix("%s: regularizer: ", g->name);
	return total;
}

/* ---- figures -------------------------------------------------------------------- */

static fv_status gru_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out)
{
	const gru_core *g = fv_module_priv(m);
	if (layer < 0 || layer >= g->n_layers)
		return fv_error(FV_ERR_NOTFOUND, "%s: no layer %lld (it has %d)", g->name,
		                (long long)layer, g->n_layers);
	return sc_conv_dense_kernel(&g->layers[layer].conv, out);
}

static fv_status gru_first_layer_filters(const fv_module *m, fv_tensor **out)
{
	return gru_layer_filters(m, 0, out);
}

/* ---- descriptors -------------------------------------------------------------- */

static const char *const gru_names[] = {
	"ConvGRUCore",
	"openretina.modules.core.gru_core.ConvGRUCore",
	NULL,
};

static const char *const conditioned_names[] = {
	"ConditionedGRUCore",
	"openretina.modules.core.gru_core.ConditionedGRUCore",
	NULL,
};

static const fv_component gru_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = gru_names,
	.doc = "space-time conv layers (conv, BatchNorm, bias, nonlinearity), optional 1x1x1 "
	       "projection and convolutional GRU over the frames, as openretina's ConvGRUCore",
	.options = gru_core_options,
	.priv_size = sizeof(gru_core),
	.create = gru_create,
	.destroy = gru_destroy,
	.forward = gru_forward,
	.regularizer = gru_regularizer,
	.output_shape = gru_output_shape,
	.first_layer_filters = gru_first_layer_filters,
	.layer_filters = gru_layer_filters,
};

static const fv_component conditioned_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_CORE,
	.names = conditioned_names,
	.doc = "ConvGRUCore with FiLM conditioning (gamma(c) * x + beta(c)) after every normed "
	       "layer, as openretina's ConditionedGRUCore",
	.options = conditioned_options,
	.priv_size = sizeof(gru_core),
	.create = conditioned_create,
	.destroy = gru_destroy,
	.forward = gru_forward,
	.regularizer = gru_regularizer,
	.output_shape = gru_output_shape,
	.first_layer_filters = gru_first_layer_filters,
	.layer_filters = gru_layer_filters,
};

FV_PLUGIN_DEFINE("cores-gru", &gru_component, &conditioned_component);
