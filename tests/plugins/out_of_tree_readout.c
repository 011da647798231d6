/*
** out_of_tree_readout.c: a readout written the way a researcher outside the
** fovea tree would, compiled by tests/cli/out_of_tree.sh against the
** *installed* headers and library (pkg-config fovea), never by meson.
**
** Each neuron weighs the spatial mean of every channel:
**
**     y[b, t, n] = sum_c mean_{h,w}(x[b, c, t, h, w]) * features[n, c] + bias[n]
*/
#include <stdlib.h>

#include <fovea/plugin.h>

typedef struct opts {
	double init;
} opts;

static const fv_option options[] = {
	{"init", FV_OPT_FLOAT, offsetof(opts, init), "0.5", -1, 1, 0, NULL,
	 "initial value of every feature weight"},
	{0}, /* the end of the table */
};

static fv_status create(fv_module *m, const void *o, const fv_build_args *args)
{
	const opts *op = o;
	if (args->in_ndim != 4 || args->n_neurons <= 0)
		return fv_error(FV_ERR_ARG, "needs --in-shape C,T,H,W and --neurons N");
	const int64_t shape[2] = {args->n_neurons, args->in_shape[0]};
	fv_tensor *features = fv_module_add_param(m, "features", 2, shape);
	fv_tensor *bias = fv_module_add_param(m, "bias", 1, &args->n_neurons);
	if (features == NULL || bias == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(features, (fv_real)op->init);
	return FV_OK;
}

static fv_tensor *forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const int space[2] = {3, 4};
	const int to_btc[3] = {0, 2, 1};
	fv_tensor *pooled = fv_permute(ctx, fv_mean(ctx, x, 2, space, false), to_btc); /* (B,T,C) */
	fv_tensor *y = fv_matmul_ex(ctx, pooled, fv_module_tensor(m, "features"), false, true);
	return fv_add(ctx, y, fv_module_tensor(m, "bias"));
}

static const char *const names[] = {"OutOfTreeReadout", "my_lab.readouts.MeanChannelReadout",
                                    NULL};

static const fv_component readout = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = names,
	.doc = "per-neuron weights of the spatially averaged channels (out-of-tree test)",
	.options = options,
	.options_size = sizeof(opts),
	.create = create,
	.forward = forward,
};

static const fv_component *const components[] = {&readout};

static const fv_plugin plugin = {
	.abi_major = FV_ABI_MAJOR,
	.abi_minor = FV_ABI_MINOR,
	.name = "out-of-tree-readout",
	.n_components = 1,
	.components = components,
};

FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void)
{
	return &plugin;
}
