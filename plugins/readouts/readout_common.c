/*
** readout_common.c: the shared base of the readout plugins (see
** readout_common.h): geometry, mean activity and bias, nested-list arrays,
** nonlinearities by name, random initialisers.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "readout_common.h"

fv_status ro_in_shape(const char *who, const fv_int_list *opt, const fv_build_args *args,
                      int64_t out[4])
{
	if (opt->is_set) {
		if (opt->n != 4)
			return fv_error_at(args->spec, FV_ERR_CONFIG,
			                   "%s: in_shape: expected 4 sizes (channels, time, width, "
			                   "height), got %zu", who, opt->n);
		for (int i = 0; i < 4; i++)
			out[i] = opt->v[i];
	} else {
		if (args->in_ndim != 4)
			return fv_error_at(args->spec, FV_ERR_CONFIG,
			                   "%s: in_shape: required (channels, time, width, height); "
			                   "neither the spec nor the model gives it", who);
		for (int i = 0; i < 4; i++)
			out[i] = args->in_shape[i];
	}
	for (int i = 0; i < 4; i++)
		if (out[i] <= 0)
			return fv_error_at(args->spec, FV_ERR_CONFIG,
			                   "%s: in_shape: sizes must be positive, got %s", who,
			                   fv_shape_str(4, out));
	return FV_OK;
}

fv_status ro_outdims(const char *who, int64_t opt, const fv_build_args *args, int64_t *out)
{
	*out = opt != FV_NONE_INT ? opt : args->n_neurons;
	if (*out <= 0)
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: outdims: expected a positive number of neurons, got %lld%s", who,
		                   (long long)*out,
		                   opt == FV_NONE_INT ? " (not in the spec, none from the model)" : "");
	return FV_OK;
}

fv_status ro_dims(const char *who, const fv_int_list *in_shape, int64_t outdims,
                  const fv_build_args *args, int64_t shape[4], int64_t *n)
{
	fv_status st = ro_in_shape(who, in_shape, args, shape);
	return st == FV_OK ? ro_outdims(who, outdims, args, n) : st;
}

fv_status ro_mean_activity(const char *who, const fv_config_node *node, const fv_build_args *args,
                           int64_t n, fv_tensor **out)
{
	*out = NULL;
	if (node != NULL && !fv_node_is_null(node)) {
		ro_array a;
		fv_status st = ro_array_from_node(who, "mean_activity", node, &a);
		if (st != FV_OK)
			return st;
		if (a.numel != n) {
			ro_array_free(&a);
			return fv_error_at(node, FV_ERR_CONFIG, "%s: mean_activity: expected %lld values (one "
			                   "per neuron), got %lld", who, (long long)n, (long long)a.numel);
		}
		*out = fv_tensor_new(1, &n);
		if (*out != NULL)
			for (int64_t i = 0; i < n; i++)
				(*out)->data[i] = (fv_real)a.v[i];
		ro_array_free(&a);
		return *out != NULL ? FV_OK : FV_ERR_NOMEM;
	}
	if (args->mean_activity == NULL)
		return FV_OK;
	if (args->mean_activity->numel != n)
		return fv_error(FV_ERR_SHAPE, "%s: mean_activity has shape %s; expected (%lld), one "
		                "value per neuron",
		                who, fv_shape_str(args->mean_activity->ndim, args->mean_activity->shape),
		                (long long)n);
	*out = fv_tensor_clone(args->mean_activity);
	return *out != NULL ? FV_OK : FV_ERR_NOMEM;
}

void ro_warn_once(bool *flag, const char *msg)
{
	if (*flag)
		return;
	*flag = true;
	fprintf(stderr, "UserWarning: %s\n", msg);
}

fv_status ro_initialize_bias(const char *who, fv_tensor *bias, const fv_tensor *mean)
{
	static bool warned;
	if (mean == NULL) {
		ro_warn_once(&warned, "Readout is NOT initialized with mean activity but with 0!");
		fv_tensor_fill(bias, 0);
		return FV_OK;
	}
	if (mean->numel != bias->numel)
		return fv_error(FV_ERR_SHAPE, "%s: initialize_bias: mean activity has shape %s; the "
		                "bias has %lld neurons",
		                who, fv_shape_str(mean->ndim, mean->shape), (long long)bias->numel);
	return fv_tensor_copy(bias, mean);
}

fv_status ro_init_bias(const char *who, fv_tensor *bias, int64_t n, const fv_config_node *node,
                       const fv_build_args *args, bool warn_without)
{
	fv_tensor *mean = NULL;
	fv_status st = ro_mean_activity(who, node, args, n, &mean);
	if (st == FV_OK && bias != NULL && (mean != NULL || warn_without))
		st = ro_initialize_bias(who, bias, mean);
	fv_tensor_free(mean);
	return st;
}

/* ---- nested lists ---------------------------------------------------------- */

static fv_status array_shape(const char *who, const char *key, const fv_config_node *n,
                             ro_array *a)
{
	a->ndim = 0;
	while (fv_node_kind(n) == FV_NODE_SEQ) {
		if (a->ndim == FV_MAX_DIMS)
			return fv_error_at(n, FV_ERR_CONFIG, "%s: %s: more than %d levels of nesting", who, key,
			                   FV_MAX_DIMS);
		if (fv_node_size(n) == 0)
			return fv_error_at(n, FV_ERR_CONFIG, "%s: %s: empty list", who, key);
		a->shape[a->ndim++] = (int64_t)fv_node_size(n);
		n = fv_node_at(n, 0);
	}
	a->numel = 1;
	for (int i = 0; i < a->ndim; i++)
		a->numel *= a->shape[i];
	return FV_OK;
}

static fv_status array_fill(const char *who, const char *key, const fv_config_node *n,
                            const ro_array *a, int depth, int64_t *pos)
{
	if (depth == a->ndim) {
		if (fv_node_kind(n) != FV_NODE_SCALAR)
			return fv_error_at(n, FV_ERR_CONFIG, "%s: %s: expected a number at nesting depth %d",
			                   who, key, depth);
		fv_status st = fv_node_to_double(n, &a->v[(*pos)++]);
		return st;
	}
	if (fv_node_kind(n) != FV_NODE_SEQ || (int64_t)fv_node_size(n) != a->shape[depth])
		return fv_error_at(n, FV_ERR_CONFIG,
		                   "%s: %s: ragged nested list: expected %lld items at depth %d", who, key,
		                   (long long)a->shape[depth], depth);
	for (size_t i = 0; i < fv_node_size(n); i++) {
		fv_status st = array_fill(who, key, fv_node_at(n, i), a, depth + 1, pos);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

fv_status ro_array_from_node(const char *who, const char *key, const fv_config_node *n,
                             ro_array *out)
{
	memset(out, 0, sizeof *out);
	fv_status st = array_shape(who, key, n, out);
	if (st != FV_OK)
		return st;
	out->v = malloc((size_t)out->numel * sizeof *out->v);
	if (out->v == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory reading %s", who, key);
	int64_t pos = 0;
	st = array_fill(who, key, n, out, 0, &pos);
	if (st != FV_OK)
		ro_array_free(out);
	return st;
}

void ro_array_free(ro_array *a)
{
	free(a->v);
	a->v = NULL;
}

/* ---- nonlinearities -------------------------------------------------------- */

static const struct {
	const char *name;
	ro_nonlin f;
} nonlins[] = {
	{"softplus", RO_SOFTPLUS}, {"exp", RO_EXP},         {"relu", RO_RELU},
	{"elu", RO_ELU},           {"sigmoid", RO_SIGMOID}, {"tanh", RO_TANH},
	{"identity", RO_IDENTITY}, {"Identity", RO_IDENTITY},
};

fv_status ro_nonlin_parse(const fv_config_node *spec, const char *who, const char *key,
                          const char *name, ro_nonlin *out)
{
	const char *dot = name != NULL ? strrchr(name, '.') : NULL;
	const char *base = dot != NULL ? dot + 1 : name;
	for (size_t i = 0; base != NULL && i < sizeof nonlins / sizeof nonlins[0]; i++) {
		if (strcmp(base, nonlins[i].name) == 0) {
			*out = nonlins[i].f;
			return FV_OK;
		}
	}
	return fv_error_at(spec, FV_ERR_CONFIG,
	                   "%s: %s: unknown nonlinearity '%s'; expected one of softplus, exp, relu, "
	                   "elu, sigmoid, tanh, identity (optionally as torch.nn.functional.NAME)", who,
	                   key, name != NULL ? name : "null");
}

fv_tensor *ro_nonlin_apply(fv_ctx *ctx, ro_nonlin f, fv_tensor *x)
{
	switch (f) {
	case RO_SOFTPLUS:
		return fv_softplus(ctx, x, 1.0, 20.0); /* torch's defaults */
	case RO_EXP:
		return fv_exp(ctx, x);
	case RO_RELU:
		return fv_relu(ctx, x);
	case RO_ELU:
		return fv_elu(ctx, x, 1.0);
	case RO_SIGMOID:
		return fv_sigmoid(ctx, x);
	case RO_TANH:
		return fv_tanh(ctx, x);
	case RO_IDENTITY:
		break;
	}
	return x;
}

fv_tensor *ro_reduce_all(fv_ctx *ctx, fv_tensor *x, bool mean)
{
	return mean ? fv_mean_all(ctx, x) : fv_sum_all(ctx, x);
}

/* ---- initialisation and registration ------------------------------------------ */

fv_ctx *ro_rng_new(const char *who, uint64_t seed)
{
	fv_ctx *rng = fv_ctx_new();
	if (rng == NULL) {
		fv_error(FV_ERR_NOMEM, "%s: out of memory", who);
		return NULL;
	}
	fv_ctx_seed(rng, seed);
	return rng;
}

void ro_fill_normal(fv_ctx *rng, fv_tensor *t, double mean, double std)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(mean + std * fv_ctx_random_normal(rng));
}

void ro_fill_uniform(fv_ctx *rng, fv_tensor *t, double lo, double hi)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(lo + (hi - lo) * fv_ctx_random_uniform(rng));
}

/* `t` as made, or NULL with the message prefixed by what it was to be. */
static fv_tensor *named(fv_tensor *t, const char *who, const char *what, const char *name)
{
	if (t == NULL)
		fv_error_prefix("%s: %s %s: ", who, what, name);
	return t;
}

fv_tensor *ro_param(fv_module *m, const char *who, const char *name, int ndim,
                    const int64_t *shape)
{
	return named(fv_module_add_param(m, name, ndim, shape), who, "parameter", name);
}

fv_tensor *ro_buffer(fv_module *m, const char *who, const char *name, int ndim,
                     const int64_t *shape)
{
	return named(fv_module_add_buffer(m, name, ndim, shape), who, "buffer", name);
}

fv_module *ro_child(fv_module *m, const fv_build_args *args, const char *who, const char *target,
                    const char *yaml, const char *name)
{
	if (args->registry == NULL) {
		fv_error(FV_ERR_ARG, "%s: needs the registry to build its %s (%s)", who, name, target);
		return NULL;
	}
	fv_build_args child_args = *args;
	child_args.struct_size = sizeof child_args;
	child_args.spec = NULL;
	child_args.session = NULL;
	child_args.mean_activity = NULL;
	fv_module *child = fv_instantiate_named(args->registry, target, yaml, &child_args, name);
	if (child == NULL) {
		fv_error_at(args->spec, fv_errcode(), "%s: building %s (%s): %s", who, name, target,
		            fv_errmsg());
		return NULL;
	}
	/* fv_module_add_child owns the child whatever happens. */
	return fv_module_add_child(m, name, child) == FV_OK ? child : NULL;
}

/* ---- linear readouts ------------------------------------------------------------------ */

static fv_tensor *softplus_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_SOFTPLUS, x);
}

static fv_tensor *exp_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_EXP, x);
}

static fv_tensor *relu_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_RELU, x);
}

static fv_tensor *elu_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_ELU, x);
}

static fv_tensor *sigmoid_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_SIGMOID, x);
}

static fv_tensor *tanh_fn(fv_ctx *ctx, fv_tensor *x)
{
	return ro_nonlin_apply(ctx, RO_TANH, x);
}

fv_tensor *(*ro_nonlin_fn(ro_nonlin f))(fv_ctx *ctx, fv_tensor *x)
{
	switch (f) {
	case RO_SOFTPLUS: return softplus_fn;
	case RO_EXP: return exp_fn;
	case RO_RELU: return relu_fn;
	case RO_ELU: return elu_fn;
	case RO_SIGMOID: return sigmoid_fn;
	case RO_TANH: return tanh_fn;
	case RO_IDENTITY: break;
	}
	return NULL;
}

fv_tensor *ro_time_rows(fv_ctx *ctx, fv_tensor *x)
{
	const int time_first[5] = {0, 2, 1, 3, 4};
	int64_t rows[2] = {x->shape[0] * x->shape[2], x->shape[1] * x->shape[3] * x->shape[4]};
	return fv_reshape(ctx, fv_permute(ctx, x, time_first), 2, rows);
}

fv_tensor *ro_linear_output(fv_ctx *ctx, fv_tensor *x, const fv_linear_readout *lin)
{
	if (lin->weight == NULL)
		return NULL;
	int64_t y3[3] = {x->shape[0], x->shape[2], lin->weight->shape[0]};
	fv_tensor *rows = ro_time_rows(ctx, x);
	fv_tensor *y = fv_reshape(ctx, fv_matmul_ex(ctx, rows, lin->weight, false, true), 3, y3);
	if (lin->scale != NULL)
		y = fv_mul(ctx, y, lin->scale);
	if (lin->bias != NULL)
		y = fv_add(ctx, y, lin->bias);
	return lin->activation != NULL ? lin->activation(ctx, y) : y;
}
