/*
** example_linear_readout.c: the smallest complete readout, as a template.
**
** Each neuron n reads every frame t of the core's output with its own
** spatial weights:
**
**     y[b, t, n] = sum_{c,h,w} x[b, c, t, h, w] * weight[n, c, h, w] + bias[n]
**
** It shows everything a readout plugin needs and nothing more: its private
** state with the options first and their table (the framework allocates
** the state, parses the options into it and frees it), create() reading the
** input shape and neuron count from the build args, parameters added to the
** module (their names become checkpoint names), a forward pass made only of
** framework ops (so the gradient comes for free), an L2 regularizer, and
** initialize_bias.  It includes nothing but <fovea/plugin.h>, so the same
** file builds outside the fovea tree against the installed headers (see
** docs/writing-a-plugin.md).
*/
#include <math.h>

#include <fovea/plugin.h>

/* ---- the module's private state: the options, then what create() sets ---- */

typedef struct linear {
	bool use_bias;
	double init_std;
	double gamma;
	int64_t channels, height, width, neurons;
	fv_tensor *weight; /* (neurons, channels, height, width), owned by the module */
	fv_tensor *bias;   /* (neurons) or NULL */
} linear;

static const fv_option linear_options[] = {
	FV_OPT("bias", BOOL, linear, use_bias, "true", "add a learned per-neuron bias"),
	FV_OPT("init_std", FLOAT, linear, init_std, "0.01",
	       "standard deviation of the normal initialisation of the weights", .min = 0, .max = 10),
	FV_OPT("gamma", FLOAT, linear, gamma, "0.0", "strength of the L2 penalty gamma * sum(weight^2)",
	       .min = 0, .max = INFINITY),
	{0}, /* the end of the table */
};

static fv_status init_weight(fv_tensor *w, double std, uint64_t seed)
{
	/* A throw-away context is the framework's seeded random stream. */
	fv_ctx *rng = fv_ctx_new();
	if (rng == NULL)
		return FV_ERR_NOMEM;
	fv_ctx_seed(rng, seed);
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(std * fv_ctx_random_normal(rng));
	fv_ctx_free(rng);
	return FV_OK;
}

static fv_status linear_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	linear *r = fv_module_priv(m);
	if (r->bias == NULL)
		return FV_OK;
	if (mean_activity == NULL) {
		fv_tensor_fill(r->bias, 0);
		return FV_OK;
	}
	if (mean_activity->numel != r->neurons)
		return fv_error(FV_ERR_SHAPE,
		                "ExampleLinearReadout: mean_activity has %lld values for %lld neurons",
		                (long long)mean_activity->numel,
		                (long long)r->neurons);
	return fv_tensor_copy(r->bias, mean_activity);
}

static fv_status linear_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts; /* the options are in the private state */
	linear *r = fv_module_priv(m);
	if (args->in_ndim != 4)
		return fv_error(FV_ERR_SHAPE, "needs an input shape (C, T, H, W), got %d dims",
		                args->in_ndim);
	if (args->in_shape[0] <= 0 || args->in_shape[2] <= 0 || args->in_shape[3] <= 0)
		return fv_error(FV_ERR_SHAPE, "needs C, H, W > 0, got input shape %s",
		                fv_shape_str(4, args->in_shape));
	if (args->n_neurons <= 0)
		return fv_error(FV_ERR_ARG, "needs n_neurons > 0, got %lld",
		                (long long)args->n_neurons);
	r->channels = args->in_shape[0];
	r->height = args->in_shape[2];
	r->width = args->in_shape[3];
	r->neurons = args->n_neurons;

	const int64_t wshape[4] = {r->neurons, r->channels, r->height, r->width};
	r->weight = fv_module_add_param(m, "weight", 4, wshape);
	if (r->weight == NULL)
		return FV_ERR_NOMEM;
	fv_status st = init_weight(r->weight, r->init_std, args->seed);
	if (st != FV_OK || !r->use_bias)
		return st;
	r->bias = fv_module_add_param(m, "bias", 1, &r->neurons);
	if (r->bias == NULL)
		return FV_ERR_NOMEM;
	return linear_initialize_bias(m, args->mean_activity);
}

/* (B, C, T, H, W) -> (B, T, C, H, W) -> (B*T, C*H*W) x weight^T -> (B, T, N). */
static fv_tensor *linear_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                 const fv_forward_args *fa)
{
	(void)fa;
	linear *r = fv_module_priv(m);
	if (x->ndim != 5 || x->shape[1] != r->channels || x->shape[3] != r->height ||
	    x->shape[4] != r->width) {
		fv_error(FV_ERR_SHAPE, "ExampleLinearReadout: expected input (B, %lld, T, %lld, %lld), "
		         "got %s", (long long)r->channels, (long long)r->height,
		         (long long)r->width, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	const int64_t batch = x->shape[0], frames = x->shape[2];
	const int to_frames_first[5] = {0, 2, 1, 3, 4};
	const int64_t rows[2] = {batch * frames, r->channels * r->height * r->width};
	const int64_t wrows[2] = {r->neurons, rows[1]};
	const int64_t out[3] = {batch, frames, r->neurons};

	fv_tensor *xf = fv_reshape(ctx, fv_permute(ctx, x, to_frames_first), 2, rows);
	fv_tensor *w = fv_reshape(ctx, r->weight, 2, wrows);
	fv_tensor *y = fv_reshape(ctx, fv_matmul_ex(ctx, xf, w, false, true), 3, out);
	return r->bias != NULL ? fv_add(ctx, y, r->bias) : y; /* NULL anywhere propagates */
}

static fv_tensor *linear_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)fa;
	linear *r = fv_module_priv(m);
	return fv_mul_scalar(ctx, fv_sum_all(ctx, fv_square(ctx, r->weight)), r->gamma);
}

/* ---- the descriptor the framework reads ------------------------------------------ */

static const char *const linear_names[] = {
	"ExampleLinearReadout",          /* the fovea name */
	"fovea.examples.LinearReadout",  /* an alias, as openretina class paths are */
	NULL,
};

static const fv_component linear_readout = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = linear_names,
	.doc = "per-neuron spatial linear readout of every frame (example plugin)",
	.options = linear_options,
	.priv_size = sizeof(linear),
	.create = linear_create,
	.forward = linear_forward,
	.regularizer = linear_regularizer,
	.initialize_bias = linear_initialize_bias,
};

/* The exported entry point fv_plugin_entry(), listing the components. */
FV_PLUGIN_DEFINE("examples-linear-readout", &linear_readout);
