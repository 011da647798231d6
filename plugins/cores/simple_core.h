/*
** simple_core.h: what the two files of the SimpleCoreWrapper plugin share.
**
** simple_core.c is the component (options, layer stack, forward,
** regularizer); simple_core_conv.c holds the three convolution flavours a
** layer can use, each registering its tensors under openretina's names:
**
**   custom_separable  STSeparableBatchConv3d: sin_weights, cos_weights,
**                     weight_spatial, _log_speed_default (buffer)
**   separable         TorchSTSeparableConv3D: space_conv.weight,
**                     time_conv.weight, _log_speed_default (buffer)
**   full              TorchFullConv3D: conv.weight, _log_speed_default
**   time_independent  TimeIndependentConv3D: conv.weight (O, I, 1, kh, kw);
**                     no temporal kernel and no _log_speed_default
*/
#ifndef FOVEA_PLUGIN_SIMPLE_CORE_H
#define FOVEA_PLUGIN_SIMPLE_CORE_H

#include <fovea/plugin.h>

typedef enum sc_conv_type {
	SC_CONV_CUSTOM_SEPARABLE,
	SC_CONV_SEPARABLE,
	SC_CONV_FULL,
	SC_CONV_TIME_INDEPENDENT
} sc_conv_type;

/* A padding argument as openretina accepts it: 'same' (also `true`), or an
** explicit symmetric amount per axis (t, h, w). */
typedef struct sc_padding {
	bool same;
	int amount[3];
} sc_padding;

typedef struct sc_conv {
	sc_conv_type type;
	int in_ch, out_ch;
	int kernel[3];          /* t, h, w */
	fv_conv3d_params p;       /* custom_separable and full */
	fv_conv3d_params p_space; /* separable: the (1, kh, kw) conv */
	fv_conv3d_params p_time;  /* separable: the (kt, 1, 1) conv */
	int n_basis;              /* custom_separable: kt / 3 sines and cosines */
	fv_tensor *log_speed;     /* buffer (1), every flavour but time_independent */
	fv_tensor *sin_w, *cos_w; /* custom_separable: (O, I, n_basis) */
	fv_tensor *w_spatial;     /* custom_separable: (O, I, 1, kh, kw); time_independent:
	                             w_full, which openretina's regularizers see detached */
	fv_tensor *w_space;       /* separable: (O, I, 1, kh, kw) */
	fv_tensor *w_time;        /* separable: (O, O, kt, 1, 1) */
	fv_tensor *w_full;        /* full: (O, I, kt, kh, kw); time_independent: kt = 1 */
} sc_conv;

/* A parameter (or buffer) "prefix.name" of m filled with `fill`. */
fv_tensor *sc_add_tensor(fv_module *m, const char *prefix, const char *name, int ndim,
                         const int64_t *shape, bool buffer, fv_real fill);

/* Build the registered component `target` from `yaml` as m's child `name`
** (openretina's Laplace regularizers of a core); *out (may be NULL) gets it. */
fv_status sc_add_child(fv_module *m, const fv_build_args *args, const char *target,
                       const char *yaml, const char *name, fv_module **out);

/* Parse an input_padding / hidden_padding value (`key` names it). */
fv_status sc_padding_parse(const fv_config_node *n, const char *key, sc_padding *out);

/* Register the conv's tensors below `prefix` ("features.layer0.conv") on
** m and initialise them as openretina does, drawing from `rng`. */
fv_status sc_conv_create(sc_conv *c, fv_module *m, const char *prefix, sc_conv_type type,
                         int in_ch, int out_ch, int kt, int ks, const sc_padding *pad,
                         fv_ctx *rng);

fv_tensor *sc_conv_forward(const sc_conv *c, fv_ctx *ctx, fv_tensor *x);

/* The weight as the dense kernel (out, in, kt, kh, kw) it stands for: *out
** gets a new tensor the caller frees. */
fv_status sc_conv_dense_kernel(const sc_conv *c, fv_tensor **out);

/* custom_separable: the temporal kernel (O, I, kt) at `log_speed` (the
** basis is a constant of the graph; the gradient reaches sin/cos weights). */
fv_tensor *sc_conv_temporal_kernel(const sc_conv *c, fv_ctx *ctx, double log_speed);

/* custom_separable: openretina's temporal_smoothing(sin_weights,
** cos_weights) = sum (lin*sin)^2 / O + sum (lin*cos)^2 / O, lin =
** linspace(0.1, 0.9, K). */
fv_tensor *sc_conv_temporal_smoothing(const sc_conv *c, fv_ctx *ctx);

/* Map (C, T, H, W) to the conv's output shape in place; fails when a
** dimension would not be positive (`where` names the layer). */
fv_status sc_conv_output_shape(const sc_conv *c, int64_t shape[4], const char *where);

#endif
