/*
** multi.c: the multi-session readouts of openretina.modules.readout.
** multi_readout: one readout per recording session, selected by data key.
**
**   MultiReadoutBase              any registered readout (`base_readout`)
**   MultiGaussianMaskReadout      GaussianMaskReadout per session
**   MultiFactorizedReadout        FactorizedReadout, mask_size = in_shape[2:]
**   MultiSampledGaussianReadout   PointGaussianReadout over (B*T, C, w, h),
**                                 then a nonlinearity (softplus)
**   MultipleLNPReadout            LNPReadout per session
**   MultiSpatialContrastReadout   SpatialContrastReadout per session, each
**                                 given its own entry of the *_dict options
**                                 (spatial_filters_dict -> spatial_filters)
**
** The sessions come from `n_neurons_dict` (session -> neuron count), in its
** order.  Each session's readout is built through the registry from a spec
** derived from this one: the container's own keys (n_neurons_dict,
** mean_activity_dict, clone_readout, readout_reg_avg, ...) removed, the
** others passed on (gamma -> gamma_readout for the sampled Gaussian) and
** `in_shape` / `outdims` set.  It becomes the child module named by its
** session key, so its tensors are named `session_1.mask_mean` as in
** openretina's state_dict.
**
** forward: fa->data_key selects a session; with no key every session runs
** and the outputs are concatenated on the last axis in SORTED key order
** (openretina's readout_keys()), after a warning (except for the sampled
** Gaussian, which does not warn).  Sessions whose readouts describe
** themselves as fv_linear_readouts run in one product.
** regularizer: fa->data_key's readout with reduction "mean" when
** readout_reg_avg (reg_avg) else "sum", unless the caller asks for one.
**
** clone_readout: every session after the first gets a ClonedReadout of the
** first one: the same readout scaled and shifted per neuron (`alpha`,
** `beta`).  (openretina 1.1 fails constructing this: its initialize() passes
** a positional argument ClonedReadout.initialize() does not take; fovea
** builds what the class describes.)
**
** add_sessions: there is no call for it in the plugin ABI.  The same result
** comes from building the container again with the extended n_neurons_dict
** and copying the old sessions' tensors by name (docs/components/readouts.md).
*/
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "multi.h"

/* ---- options ------------------------------------------------------------------- */

#define N_PASS 33 /* MultiReadoutBase: keys handed to any base readout */

typedef struct multi_opts {
	fv_int_list in_shape;
	const fv_config_node *n_neurons_dict;
	const fv_config_node *mean_activity_dict;
	const char *base_readout;
	bool clone_readout;
	bool readout_reg_avg;
	bool reg_avg;
	const char *nonlinearity_function;
	/* passed on to the session readouts */
	bool scale, bias, positive, batch_sample, align_corners, readout_bias;
	double gaussian_mean_scale, gaussian_var_scale, mask_l1_reg, feature_weights_l1_reg;
	double weights_l1_reg, laplace_mask_reg, init_mu_range, init_sigma_range, gamma;
	double smooth_weight, sparse_weight;
	const char *gauss_type, *weights_constraint, *mask_constraint;
	const char *smooth_regularizer, *nonlinearity;
	int64_t laplace_padding;
	const fv_config_node *init_mask, *init_weights, *init_scales;
	const fv_config_node *grid_mean_predictor, *shared_features, *shared_grid, *init_grid;
	const fv_config_node *spatial_filters_dict, *temporal_filters_dict;
	double w_init, a_init, b_init, c_init;
	int64_t neuron_chunk_size;
	const fv_config_node *kw[N_PASS];
} multi_opts;

/* The state: the options, parsed in place, then the sessions. */
typedef struct multi_readout {
	multi_opts o;
	const struct multi_variant *v;
	size_t n;              /* sessions */
	char **keys;           /* in n_neurons_dict order */
	size_t *sorted;        /* indices of keys in sorted order */
	fv_module **readouts;  /* the children, owned by the module */
	int64_t *n_neurons;    /* each readout's output size */
	bool reg_avg;
	ro_nonlin nonlin;      /* MultiSampledGaussianReadout */
	bool stackable;        /* every session can give an fv_linear_readout */
} multi_readout;

/* The rows the five tables share. */
#define ROW_IN_SHAPE                                                                       \
	FV_OPT("in_shape", INT_LIST, multi_readout, o.in_shape, "null",                    \
	       "core output (channels, time, width, height); null: from the model's core", \
	       .flags = FV_OPT_NULLABLE)
#define ROW_N_NEURONS                                                                  \
	FV_OPT("n_neurons_dict", NODE, multi_readout, o.n_neurons_dict, NULL,          \
	       "{session: number of neurons}; one readout per session, in this order", \
	       .flags = FV_OPT_REQUIRED)
#define ROW_MEAN_ACTIVITY                                                               \
	FV_OPT("mean_activity_dict", NODE, multi_readout, o.mean_activity_dict, "null", \
	       "{session: [mean response per neuron]} the biases start from; null: 0",  \
	       .flags = FV_OPT_NULLABLE)
#define ROW_READOUT_REG_AVG                                                        \
	FV_OPT("readout_reg_avg", BOOL, multi_readout, o.readout_reg_avg, "false", \
	       "regularize with means instead of sums (reduction 'mean')")
#define ROW_CLONE                                                              \
	FV_OPT("clone_readout", BOOL, multi_readout, o.clone_readout, "false", \
	       "sessions after the first reuse its readout with a per-neuron scale and offset")

static const fv_option gm_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	FV_OPT("scale", BOOL, multi_readout, o.scale, NULL, "learn a per-neuron output scale",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("bias", BOOL, multi_readout, o.bias, NULL, "learn a per-neuron bias",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("gaussian_mean_scale", FLOAT, multi_readout, o.gaussian_mean_scale, NULL,
	       "factor applied to the mask centres", .flags = FV_OPT_REQUIRED),
	FV_OPT("gaussian_var_scale", FLOAT, multi_readout, o.gaussian_var_scale, NULL,
	       "factor applied to the mask log variances", .flags = FV_OPT_REQUIRED),
	FV_OPT("positive", BOOL, multi_readout, o.positive, NULL,
	       "clamp the feature weights to >= 0 (in place) at every forward",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("mask_l1_reg", FLOAT, multi_readout, o.mask_l1_reg, "1.0",
	       "weight of the mask penalty", .min = 0, .max = 1e30),
	FV_OPT("feature_weights_l1_reg", FLOAT, multi_readout, o.feature_weights_l1_reg, "1.0",
	       "weight of the L1 penalty on the feature weights", .min = 0, .max = 1e30),
	ROW_READOUT_REG_AVG,
	ROW_MEAN_ACTIVITY,
	{0},
};

static const fv_option fa_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	FV_OPT("mask_l1_reg", FLOAT, multi_readout, o.mask_l1_reg, NULL,
	       "weight of the L1 penalty on the masks",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("weights_l1_reg", FLOAT, multi_readout, o.weights_l1_reg, NULL,
	       "weight of the L1 penalty on the feature weights",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("laplace_mask_reg", FLOAT, multi_readout, o.laplace_mask_reg, NULL,
	       "weight of the Laplace smoothness penalty on the masks",
	       .flags = FV_OPT_REQUIRED, .min = 0, .max = 1e30),
	FV_OPT("readout_bias", BOOL, multi_readout, o.readout_bias, "false",
	       "learn a per-neuron bias"),
	FV_OPT("weights_constraint", ENUM, multi_readout, o.weights_constraint, "null",
	       "applied in place to the feature weights each forward", .flags = FV_OPT_NULLABLE,
	       .choices = "abs|norm|absnorm"),
	FV_OPT("mask_constraint", ENUM, multi_readout, o.mask_constraint, "null",
	       "applied in place to the masks each forward", .flags = FV_OPT_NULLABLE,
	       .choices = "abs"),
	FV_OPT("init_mask", NODE, multi_readout, o.init_mask, "null",
	       "initial masks (see FactorizedReadout)", .flags = FV_OPT_NULLABLE),
	FV_OPT("init_weights", NODE, multi_readout, o.init_weights, "null",
	       "initial feature weights (channels, neurons)", .flags = FV_OPT_NULLABLE),
	FV_OPT("init_scales", NODE, multi_readout, o.init_scales, "null",
	       "[[mask mean, std], [weights mean, std]] of the normal init", .flags = FV_OPT_NULLABLE),
	ROW_READOUT_REG_AVG,
	ROW_MEAN_ACTIVITY,
	{0},
};

static const fv_option sg_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	FV_OPT("bias", BOOL, multi_readout, o.bias, NULL, "learn a per-neuron bias",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("init_mu_range", FLOAT, multi_readout, o.init_mu_range, NULL,
	       "positions start uniform in [-range, range]; in (0, 1]", .flags = FV_OPT_REQUIRED),
	FV_OPT("init_sigma_range", FLOAT, multi_readout, o.init_sigma_range, NULL,
	       "initial sigma (full: uniform in [-range, range]); > 0", .flags = FV_OPT_REQUIRED),
	FV_OPT("batch_sample", BOOL, multi_readout, o.batch_sample, "true",
	       "draw a position per batch element"),
	FV_OPT("align_corners", BOOL, multi_readout, o.align_corners, "true",
	       "grid_sample's align_corners"),
	FV_OPT("gauss_type", ENUM, multi_readout, o.gauss_type, "full",
	       "covariance of the position distribution", .choices = "full|uncorrelated|isotropic"),
	FV_OPT("grid_mean_predictor", NODE, multi_readout, o.grid_mean_predictor, "null",
	       "see PointGaussianReadout (needs source_grid, which this container cannot pass)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("shared_features", NODE, multi_readout, o.shared_features, "null",
	       "{match_ids: [...]} feature sharing within each session", .flags = FV_OPT_NULLABLE),
	FV_OPT("shared_grid", NODE, multi_readout, o.shared_grid, "null",
	       "{match_ids: [...]} position sharing within each session", .flags = FV_OPT_NULLABLE),
	FV_OPT("init_grid", NODE, multi_readout, o.init_grid, "null", "initial positions",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("gamma", FLOAT, multi_readout, o.gamma, "1.0",
	       "weight of the L1 penalty on the feature weights (gamma_readout)",
	       .min = 0, .max = 1e30),
	FV_OPT("reg_avg", BOOL, multi_readout, o.reg_avg, "false",
	       "regularize with means instead of sums"),
	FV_OPT("nonlinearity_function", STRING, multi_readout, o.nonlinearity_function, "softplus",
	       "applied to every session's output"),
	ROW_MEAN_ACTIVITY,
	{0},
};

static const fv_option lnp_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	ROW_MEAN_ACTIVITY,
	ROW_CLONE,
	ROW_READOUT_REG_AVG,
	FV_OPT("smooth_weight", FLOAT, multi_readout, o.smooth_weight, "0.0",
	       "weight of the smoothness penalty", .min = 0, .max = 1e30),
	FV_OPT("sparse_weight", FLOAT, multi_readout, o.sparse_weight, "0.0",
	       "weight of the mean |kernel| penalty", .min = 0, .max = 1e30),
	FV_OPT("smooth_regularizer", STRING, multi_readout, o.smooth_regularizer, "LaplaceL2norm",
	       "smoothness regularizer (e.g. GaussianLaplaceL2)"),
	FV_OPT("laplace_padding", INT, multi_readout, o.laplace_padding, "null",
	       "the smoothness regularizer's padding", .min = 0, .max = 1e6,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("nonlinearity", STRING, multi_readout, o.nonlinearity, "exp", "output nonlinearity"),
	FV_OPT("bias", BOOL, multi_readout, o.bias, "false", "learn a per-neuron bias"),
	{0},
};

/* The per-session entries (`X_dict: {session: value}`) go to the sessions'
** readouts as `X: value` (child_yaml). */
static const fv_option sc_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	FV_OPT("spatial_filters_dict", NODE, multi_readout, o.spatial_filters_dict, NULL,
	       "{session: spatial filters (neurons, height, width)}", .flags = FV_OPT_REQUIRED),
	FV_OPT("temporal_filters_dict", NODE, multi_readout, o.temporal_filters_dict, NULL,
	       "{session: temporal filters (neurons, frames)}", .flags = FV_OPT_REQUIRED),
	FV_OPT("w_init", FLOAT, multi_readout, o.w_init, "0.0", "initial contrast weight w"),
	FV_OPT("a_init", FLOAT, multi_readout, o.a_init, "4.0", "initial output scale nl_a"),
	FV_OPT("b_init", FLOAT, multi_readout, o.b_init, "1.0", "initial input gain nl_b"),
	FV_OPT("c_init", FLOAT, multi_readout, o.c_init, "-5.0", "initial offset nl_c"),
	ROW_MEAN_ACTIVITY,
	ROW_READOUT_REG_AVG,
	FV_OPT("neuron_chunk_size", INT, multi_readout, o.neuron_chunk_size, "32",
	       "neurons per chunk in openretina (GPU memory); no effect on the numbers", .min = 1,
	       .max = 1e12),
	{0},
};

/* MultiReadoutBase passes these on, untyped, to whichever base readout. */
#define PASS(i, name)                                      \
	FV_OPT(name, NODE, multi_readout, o.kw[i], "null", \
	       "passed to base_readout when given", .flags = FV_OPT_NULLABLE)

static const fv_option base_options[] = {
	ROW_IN_SHAPE,
	ROW_N_NEURONS,
	FV_OPT("base_readout", STRING, multi_readout, o.base_readout, NULL,
	       "the readout built per session (a registered name, e.g. GaussianMaskReadout)",
	       .flags = FV_OPT_REQUIRED),
	ROW_MEAN_ACTIVITY,
	ROW_CLONE,
	ROW_READOUT_REG_AVG,
	PASS(0, "gaussian_mean_scale"), PASS(1, "gaussian_var_scale"), PASS(2, "positive"),
	PASS(3, "scale"), PASS(4, "bias"), PASS(5, "nonlinearity_function"),
	PASS(6, "mask_l1_reg"), PASS(7, "feature_weights_l1_reg"), PASS(8, "init_mu_range"),
	PASS(9, "init_sigma_range"), PASS(10, "batch_sample"), PASS(11, "align_corners"),
	PASS(12, "gauss_type"), PASS(13, "grid_mean_predictor"), PASS(14, "shared_features"),
	PASS(15, "shared_grid"), PASS(16, "init_grid"), PASS(17, "source_grid"),
	PASS(18, "gamma_readout"), PASS(19, "weights_l1_reg"), PASS(20, "laplace_mask_reg"),
	PASS(21, "mask_size"), PASS(22, "readout_bias"), PASS(23, "weights_constraint"),
	PASS(24, "mask_constraint"), PASS(25, "init_mask"), PASS(26, "init_weights"),
	PASS(27, "init_scales"), PASS(28, "smooth_weight"), PASS(29, "sparse_weight"),
	PASS(30, "smooth_regularizer"), PASS(31, "laplace_padding"), PASS(32, "nonlinearity"),
	{0},
};

/* What distinguishes the five containers. */
typedef struct multi_variant {
	const char *who;
	const char *base;          /* session readout; NULL: the base_readout option */
	const fv_option *options;
	bool sampled_gaussian;     /* 5-D -> (B*T, C, w, h), nonlinearity after */
	bool mask_size_from_input; /* MultiFactorizedReadout */
	bool session_entries;      /* X_dict options give each session its X */
} multi_variant;

static const multi_variant variants[] = {
	{"MultiReadoutBase", NULL, base_options, false, false, false},
	{"MultiGaussianMaskReadout", "GaussianMaskReadout", gm_options, false, false, false},
	{"MultiFactorizedReadout", "FactorizedReadout", fa_options, false, true, false},
	{"MultiSampledGaussianReadout", "PointGaussianReadout", sg_options, true, false, false},
	{"MultipleLNPReadout", "LNPReadout", lnp_options, false, false, false},
	{"MultiSpatialContrastReadout", "SpatialContrastReadout", sc_options, false, false, true},
};

/* The container's own keys: never passed on to the session readouts. */
static bool own_key(const multi_variant *v, const char *name)
{
	static const char *const own[] = {"in_shape",      "n_neurons_dict",  "mean_activity_dict",
	                                  "base_readout",  "clone_readout",   "readout_reg_avg",
	                                  "reg_avg",       NULL};
	for (int i = 0; own[i] != NULL; i++)
		if (strcmp(name, own[i]) == 0)
			return true;
	return v->sampled_gaussian && strcmp(name, "nonlinearity_function") == 0;
}

static const char *child_key(const char *name)
{
	return strcmp(name, "gamma") == 0 ? "gamma_readout" : name;
}

/* Where option `name` of the variant's table lives in `opts`, or NULL. */
static const void *opt_field(const multi_variant *v, const void *opts, const char *name)
{
	for (const fv_option *o = v->options; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return (const char *)opts + o->offset;
	return NULL;
}

static bool opt_bool(const multi_variant *v, const void *opts, const char *name)
{
	const bool *b = opt_field(v, opts, name);
	return b != NULL && *b;
}

/* A per-session option: "spatial_filters_dict" gives "spatial_filters". */
static bool session_entry(const multi_variant *v, const char *name, char *child, size_t size)
{
	size_t len = strlen(name);
	if (!v->session_entries || len < 6 || strcmp(name + len - 5, "_dict") != 0)
		return false;
	snprintf(child, size, "%.*s", (int)(len - 5), name);
	return true;
}

/* One option of the container for the session `key`: "name: value, ". */
static void child_option(sbuf *b, const multi_variant *v, const fv_option *o, const void *opts,
                         const char *key)
{
	const void *field = (const char *)opts + o->offset;
	char entry[64];
	size_t mark = b->len;
	bool per_session = session_entry(v, o->name, entry, sizeof entry);
	sb_printf(b, "%s: ", per_session ? entry : child_key(o->name));
	if (per_session ? emit_entry(b, field, key) : emit_option(b, o, field))
		sb_printf(b, ", ");
	else if (!b->failed)
		b->s[b->len = mark] = '\0';
}

/* "{key: value, ..., in_shape: [c, t, w, h], outdims: n}" for the session `key`. */
static char *child_yaml(const multi_variant *v, const void *opts, const char *key,
                        const int64_t in_shape[4], int64_t n)
{
	sbuf b = {0};
	sb_printf(&b, "{");
	for (const fv_option *o = v->options; o->name != NULL; o++)
		if (!own_key(v, o->name))
			child_option(&b, v, o, opts, key);
	sb_printf(&b, "in_shape: [%lld, %lld, %lld, %lld], outdims: %lld", (long long)in_shape[0],
	          (long long)in_shape[1], (long long)in_shape[2], (long long)in_shape[3],
	          (long long)n);
	if (v->mask_size_from_input)
		sb_printf(&b, ", mask_size: [%lld, %lld]", (long long)in_shape[2],
		          (long long)in_shape[3]);
	sb_printf(&b, "}");
	if (b.failed) {
		free(b.s);
		fv_error(FV_ERR_NOMEM, "%s: out of memory deriving a session's spec", v->who);
		return NULL;
	}
	return b.s;
}

/* ---- the container --------------------------------------------------------------------- */

/* The session tables; the session readouts are the module's children. */
static void multi_destroy(fv_module *m)
{
	multi_readout *r = fv_module_priv(m);
	for (size_t i = 0; r->keys != NULL && i < r->n; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->sorted);
	free(r->readouts);
	free(r->n_neurons);
}

/* r->sorted = the session indices in sorted key order (Python's sorted()
** on str compares code points, as strcmp does on UTF-8). */
static void sort_sessions(multi_readout *r)
{
	for (size_t i = 0; i < r->n; i++) {
		size_t k = i, j = i;
		for (; j > 0 && strcmp(r->keys[r->sorted[j - 1]], r->keys[k]) > 0; j--)
			r->sorted[j] = r->sorted[j - 1];
		r->sorted[j] = k;
	}
}

/* Sessions and neuron counts from n_neurons_dict, checked as torch's
** ModuleDict would (non-empty names without '.', no duplicates). */
static fv_status read_sessions(multi_readout *r, const fv_config_node *dict)
{
	const char *who = r->v->who;
	if (fv_node_kind(dict) != FV_NODE_MAP || fv_node_size(dict) == 0)
		return fv_error_at(dict, FV_ERR_CONFIG, "%s: n_neurons_dict: expected a non-empty map "
		                   "{session: number of neurons}", who);
	r->n = fv_node_size(dict);
	r->keys = calloc(r->n, sizeof *r->keys);
	r->sorted = calloc(r->n, sizeof *r->sorted);
	r->readouts = calloc(r->n, sizeof *r->readouts);
	r->n_neurons = calloc(r->n, sizeof *r->n_neurons);
	if (!r->keys || !r->sorted || !r->readouts || !r->n_neurons)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for %zu sessions", who, r->n);
	for (size_t i = 0; i < r->n; i++) {
		const char *key = fv_node_key_at(dict, i);
		const fv_config_node *val = fv_node_at(dict, i);
		if (key[0] == '\0' || strchr(key, '.') != NULL)
			return fv_error_at(val, FV_ERR_CONFIG, "%s: n_neurons_dict: session name '%s' cannot "
			                   "name a module (empty or contains '.')", who, key);
		fv_status st = fv_node_to_int(val, &r->n_neurons[i]);
		if (st != FV_OK)
			return st;
		if (r->n_neurons[i] <= 0)
			return fv_error_at(val, FV_ERR_CONFIG, "%s: n_neurons_dict.%s: expected a positive "
			                   "number of neurons, got %lld", who, key, (long long)r->n_neurons[i]);
		size_t len = strlen(key) + 1;
		if ((r->keys[i] = malloc(len)) == NULL)
			return fv_error(FV_ERR_NOMEM, "%s: out of memory", who);
		memcpy(r->keys[i], key, len);
	}
	sort_sessions(r);
	for (size_t i = 1; i < r->n; i++)
		if (strcmp(r->keys[r->sorted[i]], r->keys[r->sorted[i - 1]]) == 0)
			return fv_error_at(dict, FV_ERR_CONFIG,
			                   "%s: n_neurons_dict: session '%s' appears twice", who,
			                   r->keys[r->sorted[i]]);
	return FV_OK;
}

/* mean_activity_dict[key] as a tensor (NULL when there is no dict). */
static fv_status session_mean(const multi_readout *r, const fv_config_node *dict, size_t i,
                              fv_tensor **out)
{
	*out = NULL;
	if (dict == NULL || fv_node_is_null(dict))
		return FV_OK;
	if (fv_node_kind(dict) != FV_NODE_MAP)
		return fv_error_at(dict, FV_ERR_CONFIG, "%s: mean_activity_dict: expected a map {session: "
		                   "[mean response per neuron]}", r->v->who);
	const fv_config_node *node = fv_node_get(dict, r->keys[i]);
	if (node == NULL)
		return fv_error_at(dict, FV_ERR_CONFIG, "%s: mean_activity_dict: no entry for session '%s'",
		                   r->v->who, r->keys[i]);
	fv_build_args none = {.struct_size = sizeof none};
	return ro_mean_activity(r->v->who, node, &none, r->n_neurons[i], out);
}

static fv_module *make_clone(multi_readout *r, const fv_build_args *args, size_t i)
{
	fv_build_args a = *args;
	a.struct_size = sizeof a;
	a.spec = NULL;
	a.session = r->keys[i];
	a.n_neurons = r->n_neurons[0]; /* ClonedReadout mirrors its source's neurons */
	fv_module *clone = fv_instantiate_component(&cloned_component, NULL, &a, r->keys[i]);
	if (clone != NULL)
		cloned_set_source(clone, r->readouts[0]);
	r->n_neurons[i] = r->n_neurons[0];
	return clone;
}

static fv_module *make_session(multi_readout *r, const void *opts, const fv_build_args *args,
                               const int64_t in_shape[4], size_t i)
{
	const multi_variant *v = r->v;
	const char *base = v->base != NULL ? v->base : *(const char *const *)opt_field(v, opts,
	                                                                            "base_readout");
	fv_tensor *mean = NULL;
	fv_status st = session_mean(r, *(const fv_config_node *const *)opt_field(v, opts,
	                                                                        "mean_activity_dict"),
	                            i, &mean);
	if (st != FV_OK)
		return NULL;
	char *yaml = child_yaml(v, opts, r->keys[i], in_shape, r->n_neurons[i]);
	fv_module *child = NULL;
	if (yaml != NULL) {
		fv_build_args a = *args;
		a.struct_size = sizeof a;
		a.spec = NULL;
		a.session = r->keys[i];
		a.in_ndim = 4;
		memcpy(a.in_shape, in_shape, 4 * sizeof *in_shape);
		a.n_neurons = r->n_neurons[i];
		a.mean_activity = mean;
		a.seed = args->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		child = fv_instantiate_named(args->registry, base, yaml, &a, r->keys[i]);
		if (child == NULL)
			fv_error_at(args->spec, fv_errcode(), "%s: session '%s' (%s): %s", v->who, r->keys[i],
			            base, fv_errmsg());
	}
	free(yaml);
	fv_tensor_free(mean);
	return child;
}

static fv_status build_sessions(fv_module *m, multi_readout *r, const void *opts,
                                const fv_build_args *args, const int64_t in_shape[4])
{
	bool clone = opt_bool(r->v, opts, "clone_readout");
	/* The sampled Gaussian's sessions read frames, not the container's input. */
	r->stackable = !r->v->sampled_gaussian;
	for (size_t i = 0; i < r->n; i++) {
		fv_module *child = i > 0 && clone ? make_clone(r, args, i)
		                                  : make_session(r, opts, args, in_shape, i);
		if (child == NULL)
			return FV_ERR_CONFIG;
		fv_status st = fv_module_add_child(m, r->keys[i], child); /* owns it now */
		if (st != FV_OK)
			return st;
		r->readouts[i] = child;
		/* The registry's copy of a component is full-size: the slot is there. */
		r->stackable &= fv_module_component(child)->linear_readout != NULL;
	}
	return FV_OK;
}

/* The variant's options are read through its table (opt_field), which
** gives their offsets in the state. */
static fv_status multi_create_variant(const multi_variant *v, fv_module *m,
                                      const fv_build_args *args)
{
	multi_readout *r = fv_module_priv(m);
	const void *opts = r;
	r->v = v;
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "%s: needs the registry to build its session readouts",
		                v->who);
	int64_t in_shape[4];
	fv_status st = ro_in_shape(v->who, opt_field(v, opts, "in_shape"), args, in_shape);
	if (st != FV_OK)
		return st;
	r->reg_avg = opt_bool(v, opts, v->sampled_gaussian ? "reg_avg" : "readout_reg_avg");
	if (v->sampled_gaussian) {
		const char *f = *(const char *const *)opt_field(v, opts, "nonlinearity_function");
		st = ro_nonlin_parse(args->spec, v->who, "nonlinearity_function", f, &r->nonlin);
		if (st != FV_OK)
			return st;
	}
	st = read_sessions(r, *(const fv_config_node *const *)opt_field(v, opts, "n_neurons_dict"));
	if (st != FV_OK)
		return st;
	return build_sessions(m, r, opts, args, in_shape);
}

/* ---- forward, regularizer, bias ------------------------------------------------------- */

static fv_module *session(const multi_readout *r, const char *key, size_t *index)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->keys[i], key) == 0) {
			if (index != NULL)
				*index = i;
			return r->readouts[i];
		}
	sbuf b = {0};
	for (size_t i = 0; i < r->n; i++)
		sb_printf(&b, "%s%s", i ? ", " : "", r->keys[r->sorted[i]]);
	fv_error(FV_ERR_NOTFOUND, "%s: no session '%s' (sessions: %s)", r->v->who, key,
	         b.s != NULL ? b.s : "?");
	free(b.s);
	return NULL;
}

/* The sampled Gaussian reads (B*T, C, w, h) frames and maps the result back
** to (B, T, n) through its nonlinearity. */
static fv_tensor *forward_session(const multi_readout *r, fv_module *readout, fv_ctx *ctx,
                                  fv_tensor *x, const fv_forward_args *fa)
{
	if (!r->v->sampled_gaussian)
		return fv_module_forward(readout, ctx, x, fa);
	if (x->ndim != 5) {
		fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, channels, time, "
		         "width, height)",
		         r->v->who, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t b = x->shape[0], t = x->shape[2];
	int64_t frames[4] = {b * t, x->shape[1], x->shape[3], x->shape[4]};
	int bt[5] = {0, 2, 1, 3, 4};
	fv_tensor *xf = fv_reshape(ctx, fv_permute(ctx, x, bt), 4, frames);
	fv_tensor *y = fv_module_forward(readout, ctx, xf, fa);
	if (y == NULL)
		return NULL;
	int64_t out[3] = {b, t, y->numel / (b * t)};
	return ro_nonlin_apply(ctx, r->nonlin, fv_reshape(ctx, y, 3, out));
}

/* Every session at once, when each readout is an fv_linear_readout with the
** same activation and the same kind of scale and bias: their weights,
** scales and biases stacked in sorted key order, so that x is rearranged
** once and multiplied in one product instead of once per session.  The
** result is the sessions' outputs concatenated, as from each on its own.
** Returns false when the sessions differ so and must run one by one; else
** *y is the output, or NULL (with the message) on failure. */
static bool forward_stacked(const multi_readout *r, fv_ctx *ctx, fv_tensor *x, fv_tensor **y)
{
	size_t n = r->n;
	fv_linear_readout *lin = fv_ctx_alloc(ctx, n * sizeof *lin);
	fv_tensor **parts = fv_ctx_alloc(ctx, 3 * n * sizeof *parts);
	*y = NULL;
	if (lin == NULL || parts == NULL)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (fv_module_linear_readout(r->readouts[r->sorted[i]], ctx, x, &lin[i]) != FV_OK)
			return true;
		if (lin[i].activation != lin[0].activation ||
		    (lin[i].scale == NULL) != (lin[0].scale == NULL) ||
		    (lin[i].bias == NULL) != (lin[0].bias == NULL))
			return false;
		parts[i] = lin[i].weight;
		parts[n + i] = lin[i].scale;
		parts[2 * n + i] = lin[i].bias;
	}
	fv_linear_readout all = {.weight = fv_concat(ctx, (int)n, parts, 0),
	                         .activation = lin[0].activation};
	if (lin[0].scale != NULL && (all.scale = fv_concat(ctx, (int)n, parts + n, 0)) == NULL)
		return true;
	if (lin[0].bias != NULL && (all.bias = fv_concat(ctx, (int)n, parts + 2 * n, 0)) == NULL)
		return true;
	*y = ro_linear_output(ctx, x, &all);
	return true;
}

static fv_tensor *multi_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	static bool warned;
	const multi_readout *r = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	if (fa != NULL && fa->data_key != NULL) {
		fv_module *readout = session(r, fa->data_key, NULL);
		return readout != NULL ? forward_session(r, readout, ctx, x, fa) : NULL;
	}
	if (!r->v->sampled_gaussian)
		ro_warn_once(&warned,
		             "No data key provided, returning concatenated responses from all readouts");
	fv_tensor *y;
	if (r->stackable && forward_stacked(r, ctx, x, &y))
		return y;
	fv_tensor **ys = fv_ctx_alloc(ctx, r->n * sizeof *ys);
	if (ys == NULL)
		return NULL;
	for (size_t i = 0; i < r->n; i++) {
		ys[i] = forward_session(r, r->readouts[r->sorted[i]], ctx, x, fa);
		if (ys[i] == NULL)
			return NULL;
	}
	return fv_concat(ctx, (int)r->n, ys, -1);
}

static fv_tensor *multi_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const multi_readout *r = fv_module_priv(m);
	fv_forward_args a = FV_FORWARD_ARGS_INIT;
	if (fa != NULL)
		a = *fa;
	a.struct_size = sizeof a;
	if (a.reduction != FV_REDUCE_SUM && a.reduction != FV_REDUCE_MEAN)
		a.reduction = r->reg_avg ? FV_REDUCE_MEAN : FV_REDUCE_SUM;
	fv_module *readout;
	if (a.data_key != NULL)
		readout = session(r, a.data_key, NULL);
	else if (r->n == 1)
		readout = r->readouts[0];
	else {
		fv_error(FV_ERR_ARG, "%s: data_key is required when there are multiple sessions",
		         r->v->who);
		return NULL;
	}
	return readout != NULL ? fv_module_regularizer(readout, ctx, &a) : NULL;
}

/* NULL: every session's default (0 and the warning for readouts with a
** bias); otherwise the sessions' means concatenated in sorted key order,
** as the outputs are. */
static fv_status multi_initialize_bias(fv_module *m, const fv_tensor *mean)
{
	const multi_readout *r = fv_module_priv(m);
	int64_t total = 0;
	for (size_t i = 0; i < r->n; i++)
		total += r->n_neurons[i];
	if (mean != NULL && mean->numel != total)
		return fv_error(FV_ERR_SHAPE, "%s: initialize_bias: mean activity has shape %s; the "
		                "sessions have %lld neurons in all (concatenated in sorted key order)",
		                r->v->who, fv_shape_str(mean->ndim, mean->shape), (long long)total);
	int64_t offset = 0;
	for (size_t k = 0; k < r->n; k++) {
		size_t i = r->sorted[k];
		fv_tensor *part = NULL;
		if (mean != NULL) {
			part = fv_tensor_new(1, &r->n_neurons[i]);
			if (part == NULL)
				return FV_ERR_NOMEM;
			memcpy(part->data, mean->data + offset, (size_t)r->n_neurons[i] * sizeof(fv_real));
		}
		offset += r->n_neurons[i];
		fv_status st = fv_module_initialize_bias(r->readouts[i], part);
		fv_tensor_free(part);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

/* Where the neurons of one session read the feature map: its readout's
** answer (FV_ERR_NOTFOUND when that readout cannot tell). */
static fv_status multi_neuron_positions(const fv_module *m, const char *key, int64_t n,
                                        double *row_col, int64_t map_hw[2])
{
	const multi_readout *r = fv_module_priv(m);
	fv_module *readout = NULL;
	if (key != NULL)
		readout = session(r, key, NULL);
	else if (r->n == 1)
		readout = r->readouts[0];
	else
		return fv_error(FV_ERR_ARG, "%s: neuron positions: a session is needed when there "
		                "are several", r->v->who);
	if (readout == NULL)
		return FV_ERR_NOTFOUND;
	return fv_module_neuron_positions(readout, key, n, row_col, map_hw);
}

/* ---- the six components ----------------------------------------------------------------- */

#define VARIANT_CREATE(fn, idx)                                                        \
	static fv_status fn(fv_module *m, const void *opts, const fv_build_args *args) \
	{                                                                              \
		(void)opts;                                                            \
		return multi_create_variant(&variants[idx], m, args);                  \
	}
VARIANT_CREATE(base_create, 0)
VARIANT_CREATE(gm_create, 1)
VARIANT_CREATE(fa_create, 2)
VARIANT_CREATE(sg_create, 3)
VARIANT_CREATE(lnp_create, 4)
VARIANT_CREATE(sc_create, 5)

#define MULTI_COMPONENT(var, names_, doc_, options_, create_)  \
	static const fv_component var = {                      \
		.struct_size = sizeof(fv_component),           \
		.kind = FV_KIND_READOUT,                       \
		.names = names_,                               \
		.doc = doc_,                                   \
		.options = options_,                           \
		.priv_size = sizeof(multi_readout),            \
		.create = create_,                             \
		.destroy = multi_destroy,                      \
		.forward = multi_forward,                      \
		.regularizer = multi_regularizer,              \
		.initialize_bias = multi_initialize_bias,      \
		.neuron_positions = multi_neuron_positions,    \
	}

#define MULTI_NAMES(var, name) \
	static const char *const var[] = {name, "openretina.modules.readout.multi_readout." name, NULL}
MULTI_NAMES(base_names, "MultiReadoutBase");
MULTI_NAMES(gm_names, "MultiGaussianMaskReadout");
MULTI_NAMES(fa_names, "MultiFactorizedReadout");
MULTI_NAMES(sg_names, "MultiSampledGaussianReadout");
MULTI_NAMES(lnp_names, "MultipleLNPReadout");

MULTI_COMPONENT(base_component, base_names,
                "one readout of any registered kind (base_readout) per session", base_options,
                base_create);
MULTI_COMPONENT(gm_component, gm_names, "a GaussianMaskReadout per session", gm_options,
                gm_create);
MULTI_COMPONENT(fa_component, fa_names,
                "a FactorizedReadout per session (mask_size = in_shape[2:])", fa_options,
                fa_create);
MULTI_COMPONENT(sg_component, sg_names,
                "a PointGaussianReadout per session over every frame, then softplus; "
                "output (N, t, neurons)",
                sg_options, sg_create);
MULTI_COMPONENT(lnp_component, lnp_names, "an LNPReadout per session", lnp_options, lnp_create);

static const char *const sc_names[] = {
	"MultiSpatialContrastReadout",
	"openretina.modules.readout.spatial_contrast_model_readout.MultiSpatialContrastReadout",
	NULL,
};
MULTI_COMPONENT(sc_component, sc_names,
                "a SpatialContrastReadout per session with its own filters (the *_dict entries)",
                sc_options, sc_create);

FV_PLUGIN_DEFINE("readouts-multi", &base_component, &gm_component, &fa_component,
                 &sg_component, &lnp_component, &sc_component);
