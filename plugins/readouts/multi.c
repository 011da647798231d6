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
** Gaussian, which does not warn).
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
	const fv_config_node *kw[N_PASS];
} multi_opts;

#define OPT(name, type, field, def, flags, choices, doc) \
	{name, type, offsetof(multi_opts, field), def, 0, 0, flags, choices, doc}
#define REQ FV_OPT_REQUIRED
#define NUL FV_OPT_NULLABLE
#define END {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL}

#define OPT_IN_SHAPE                                                            \
	OPT("in_shape", FV_OPT_INT_LIST, in_shape, "null", NUL, NULL,           \
	    "core output (channels, time, width, height); null: from the model's core")
#define OPT_N_NEURONS                                                            \
	OPT("n_neurons_dict", FV_OPT_NODE, n_neurons_dict, NULL, REQ, NULL,      \
	    "{session: number of neurons}; one readout per session, in this order")
#define OPT_MEAN_ACTIVITY                                                        \
	OPT("mean_activity_dict", FV_OPT_NODE, mean_activity_dict, "null", NUL, NULL, \
	    "{session: [mean response per neuron]} the biases start from; null: 0")
#define OPT_READOUT_REG_AVG                                                      \
	OPT("readout_reg_avg", FV_OPT_BOOL, readout_reg_avg, "false", 0, NULL,    \
	    "regularize with means instead of sums (reduction 'mean')")
#define OPT_CLONE                                                                \
	OPT("clone_readout", FV_OPT_BOOL, clone_readout, "false", 0, NULL,        \
	    "sessions after the first reuse its readout with a per-neuron scale and offset")

static const fv_option gm_options[] = {
	OPT_IN_SHAPE,
	OPT_N_NEURONS,
	OPT("scale", FV_OPT_BOOL, scale, NULL, REQ, NULL, "learn a per-neuron output scale"),
	OPT("bias", FV_OPT_BOOL, bias, NULL, REQ, NULL, "learn a per-neuron bias"),
	OPT("gaussian_mean_scale", FV_OPT_FLOAT, gaussian_mean_scale, NULL, REQ, NULL,
	    "factor applied to the mask centres"),
	OPT("gaussian_var_scale", FV_OPT_FLOAT, gaussian_var_scale, NULL, REQ, NULL,
	    "factor applied to the mask log variances"),
	OPT("positive", FV_OPT_BOOL, positive, NULL, REQ, NULL,
	    "clamp the feature weights to >= 0 (in place) at every forward"),
	OPT("mask_l1_reg", FV_OPT_FLOAT, mask_l1_reg, "1.0", 0, NULL, "weight of the mask penalty"),
	OPT("feature_weights_l1_reg", FV_OPT_FLOAT, feature_weights_l1_reg, "1.0", 0, NULL,
	    "weight of the L1 penalty on the feature weights"),
	OPT_READOUT_REG_AVG,
	OPT_MEAN_ACTIVITY,
	END,
};

static const fv_option fa_options[] = {
	OPT_IN_SHAPE,
	OPT_N_NEURONS,
	OPT("mask_l1_reg", FV_OPT_FLOAT, mask_l1_reg, NULL, REQ, NULL,
	    "weight of the L1 penalty on the masks"),
	OPT("weights_l1_reg", FV_OPT_FLOAT, weights_l1_reg, NULL, REQ, NULL,
	    "weight of the L1 penalty on the feature weights"),
	OPT("laplace_mask_reg", FV_OPT_FLOAT, laplace_mask_reg, NULL, REQ, NULL,
	    "weight of the Laplace smoothness penalty on the masks"),
	OPT("readout_bias", FV_OPT_BOOL, readout_bias, "false", 0, NULL, "learn a per-neuron bias"),
	OPT("weights_constraint", FV_OPT_ENUM, weights_constraint, "null", NUL, "abs|norm|absnorm",
	    "applied in place to the feature weights each forward"),
	OPT("mask_constraint", FV_OPT_ENUM, mask_constraint, "null", NUL, "abs",
	    "applied in place to the masks each forward"),
	OPT("init_mask", FV_OPT_NODE, init_mask, "null", NUL, NULL,
	    "initial masks (see FactorizedReadout)"),
	OPT("init_weights", FV_OPT_NODE, init_weights, "null", NUL, NULL,
	    "initial feature weights (channels, neurons)"),
	OPT("init_scales", FV_OPT_NODE, init_scales, "null", NUL, NULL,
	    "[[mask mean, std], [weights mean, std]] of the normal init"),
	OPT_READOUT_REG_AVG,
	OPT_MEAN_ACTIVITY,
	END,
};

static const fv_option sg_options[] = {
	OPT_IN_SHAPE,
	OPT_N_NEURONS,
	OPT("bias", FV_OPT_BOOL, bias, NULL, REQ, NULL, "learn a per-neuron bias"),
	OPT("init_mu_range", FV_OPT_FLOAT, init_mu_range, NULL, REQ, NULL,
	    "positions start uniform in [-range, range]; in (0, 1]"),
	OPT("init_sigma_range", FV_OPT_FLOAT, init_sigma_range, NULL, REQ, NULL,
	    "initial sigma (full: uniform in [-range, range]); > 0"),
	OPT("batch_sample", FV_OPT_BOOL, batch_sample, "true", 0, NULL,
	    "draw a position per batch element"),
	OPT("align_corners", FV_OPT_BOOL, align_corners, "true", 0, NULL, "grid_sample's align_corners"),
	OPT("gauss_type", FV_OPT_ENUM, gauss_type, "full", 0, "full|uncorrelated|isotropic",
	    "covariance of the position distribution"),
	OPT("grid_mean_predictor", FV_OPT_NODE, grid_mean_predictor, "null", NUL, NULL,
	    "see PointGaussianReadout (needs source_grid, which this container cannot pass)"),
	OPT("shared_features", FV_OPT_NODE, shared_features, "null", NUL, NULL,
	    "{match_ids: [...]} feature sharing within each session"),
	OPT("shared_grid", FV_OPT_NODE, shared_grid, "null", NUL, NULL,
	    "{match_ids: [...]} position sharing within each session"),
	OPT("init_grid", FV_OPT_NODE, init_grid, "null", NUL, NULL, "initial positions"),
	OPT("gamma", FV_OPT_FLOAT, gamma, "1.0", 0, NULL,
	    "weight of the L1 penalty on the feature weights (gamma_readout)"),
	OPT("reg_avg", FV_OPT_BOOL, reg_avg, "false", 0, NULL, "regularize with means instead of sums"),
	OPT("nonlinearity_function", FV_OPT_STRING, nonlinearity_function, "softplus", 0, NULL,
	    "applied to every session's output"),
	OPT_MEAN_ACTIVITY,
	END,
};

#define LNP_OPTIONS                                                                             \
	OPT("smooth_weight", FV_OPT_FLOAT, smooth_weight, "0.0", 0, NULL,                      \
	    "weight of the smoothness penalty"),                                               \
	OPT("sparse_weight", FV_OPT_FLOAT, sparse_weight, "0.0", 0, NULL,                      \
	    "weight of the mean |kernel| penalty"),                                            \
	OPT("smooth_regularizer", FV_OPT_STRING, smooth_regularizer, "LaplaceL2norm", 0, NULL,  \
	    "smoothness regularizer (e.g. GaussianLaplaceL2)"),                                 \
	{"laplace_padding", FV_OPT_INT, offsetof(multi_opts, laplace_padding), "null", 0, 1e6, \
	 NUL, NULL, "the smoothness regularizer's padding"},                                   \
	OPT("nonlinearity", FV_OPT_STRING, nonlinearity, "exp", 0, NULL, "output nonlinearity"), \
	OPT("bias", FV_OPT_BOOL, bias, "false", 0, NULL, "learn a per-neuron bias")

static const fv_option lnp_options[] = {
	OPT_IN_SHAPE, OPT_N_NEURONS, OPT_MEAN_ACTIVITY, OPT_CLONE, OPT_READOUT_REG_AVG,
	LNP_OPTIONS,  END,
};

#define PASS(i, name) \
	OPT(name, FV_OPT_NODE, kw[i], "null", NUL, NULL, "passed to base_readout when given")

static const fv_option base_options[] = {
	OPT_IN_SHAPE,
	OPT_N_NEURONS,
	OPT("base_readout", FV_OPT_STRING, base_readout, NULL, REQ, NULL,
	    "the readout built per session (a registered name, e.g. GaussianMaskReadout)"),
	OPT_MEAN_ACTIVITY,
	OPT_CLONE,
	OPT_READOUT_REG_AVG,
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
	END,
};

/* What distinguishes the five containers. */
typedef struct multi_variant {
	const char *who;
	const char *base;          /* session readout; NULL: the base_readout option */
	const fv_option *options;
	bool sampled_gaussian;     /* 5-D -> (B*T, C, w, h), nonlinearity after */
	bool mask_size_from_input; /* MultiFactorizedReadout */
} multi_variant;

static const multi_variant variants[] = {
	{"MultiReadoutBase", NULL, base_options, false, false},
	{"MultiGaussianMaskReadout", "GaussianMaskReadout", gm_options, false, false},
	{"MultiFactorizedReadout", "FactorizedReadout", fa_options, false, true},
	{"MultiSampledGaussianReadout", "PointGaussianReadout", sg_options, true, false},
	{"MultipleLNPReadout", "LNPReadout", lnp_options, false, false},
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

/* "{key: value, ..., in_shape: [c, t, w, h], outdims: n}" for a session. */
static char *child_yaml(const multi_variant *v, const void *opts, const int64_t in_shape[4],
                        int64_t n)
{
	sbuf b = {0};
	sb_printf(&b, "{");
	for (const fv_option *o = v->options; o->name != NULL; o++) {
		if (own_key(v, o->name))
			continue;
		size_t mark = b.len;
		sb_printf(&b, "%s: ", child_key(o->name));
		if (emit_option(&b, o, (const char *)opts + o->offset))
			sb_printf(&b, ", ");
		else if (!b.failed)
			b.s[b.len = mark] = '\0';
	}
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

typedef struct multi_readout {
	const multi_variant *v;
	size_t n;              /* sessions */
	char **keys;           /* in n_neurons_dict order */
	size_t *sorted;        /* indices of keys in sorted order */
	fv_module **readouts;  /* the children, owned by the module */
	int64_t *n_neurons;    /* each readout's output size */
	bool reg_avg;
	ro_nonlin nonlin;      /* MultiSampledGaussianReadout */
} multi_readout;

static void multi_free(multi_readout *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->keys != NULL && i < r->n; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->sorted);
	free(r->readouts);
	free(r->n_neurons);
	free(r);
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
	char *yaml = child_yaml(v, opts, in_shape, r->n_neurons[i]);
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
	for (size_t i = 0; i < r->n; i++) {
		fv_module *child = i > 0 && clone ? make_clone(r, args, i)
		                                  : make_session(r, opts, args, in_shape, i);
		if (child == NULL)
			return FV_ERR_CONFIG;
		fv_status st = fv_module_add_child(m, r->keys[i], child); /* owns it now */
		if (st != FV_OK)
			return st;
		r->readouts[i] = child;
	}
	return FV_OK;
}

static fv_status multi_create_variant(const multi_variant *v, fv_module *m, const void *opts,
                                      const fv_build_args *args)
{
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "%s: needs the registry to build its session readouts",
		                v->who);
	int64_t in_shape[4];
	fv_status st = ro_in_shape(v->who, opt_field(v, opts, "in_shape"), args, in_shape);
	if (st != FV_OK)
		return st;
	multi_readout *r = calloc(1, sizeof *r);
	if (r == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", v->who);
	fv_module_set_priv(m, r);
	r->v = v;
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

static void multi_destroy(fv_module *m)
{
	multi_free(fv_module_priv(m)); /* the session readouts are the module's children */
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

/* Whether every session is a GaussianMaskReadout, all with the same
** output nonlinearity. */
static bool all_gaussian_masks(const multi_readout *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const fv_component *c = fv_module_component(r->readouts[i]);
		if (c->names == NULL || strcmp(c->names[0], RO_GAUSSIAN_MASK) != 0)
			return false;
		const ro_gaussian_mask *g = fv_module_priv(r->readouts[i]);
		if (g->nonlin != ((const ro_gaussian_mask *)fv_module_priv(r->readouts[0]))->nonlin)
			return false;
	}
	return r->n > 0;
}

/* Every GaussianMaskReadout session at once: their weights, scales and
** biases stacked in sorted key order, so that x is rearranged once and
** multiplied in one product instead of once per session.  The result is
** the sessions' outputs concatenated, as from each on its own. */
static fv_tensor *forward_gaussian_masks(const multi_readout *r, fv_ctx *ctx, fv_tensor *x)
{
	size_t n = r->n;
	fv_tensor **parts = fv_ctx_alloc(ctx, 3 * n * sizeof *parts);
	if (parts == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		ro_gaussian_mask *g = fv_module_priv(r->readouts[r->sorted[i]]);
		if (!ro_gm_input_ok(RO_GAUSSIAN_MASK, g, x) || !(parts[i] = ro_gm_weight(ctx, g)))
			return NULL;
		parts[n + i] = g->scale_param;
		parts[2 * n + i] = g->bias;
	}
	const ro_gaussian_mask *first = fv_module_priv(r->readouts[0]);
	return ro_gm_output(ctx, x, fv_concat(ctx, (int)n, parts, 0),
	                    fv_concat(ctx, (int)n, parts + n, 0),
	                    fv_concat(ctx, (int)n, parts + 2 * n, 0), first->nonlin);
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
	if (all_gaussian_masks(r))
		return forward_gaussian_masks(r, ctx, x);
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

/* ---- the five components ----------------------------------------------------------------- */

#define VARIANT_CREATE(fn, idx)                                                        \
	static fv_status fn(fv_module *m, const void *opts, const fv_build_args *args) \
	{                                                                              \
		return multi_create_variant(&variants[idx], m, opts, args);            \
	}
VARIANT_CREATE(base_create, 0)
VARIANT_CREATE(gm_create, 1)
VARIANT_CREATE(fa_create, 2)
VARIANT_CREATE(sg_create, 3)
VARIANT_CREATE(lnp_create, 4)

#define MULTI_COMPONENT(var, names_, doc_, options_, create_)  \
	static const fv_component var = {                      \
		.struct_size = sizeof(fv_component),           \
		.kind = FV_KIND_READOUT,                       \
		.names = names_,                               \
		.doc = doc_,                                   \
		.options = options_,                           \
		.options_size = sizeof(multi_opts),            \
		.create = create_,                             \
		.destroy = multi_destroy,                      \
		.forward = multi_forward,                      \
		.regularizer = multi_regularizer,              \
		.initialize_bias = multi_initialize_bias,      \
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

static const fv_component *const components[] = {&base_component, &gm_component, &fa_component,
                                                 &sg_component, &lnp_component};

static const fv_plugin plugin = {
	.abi_major = FV_ABI_MAJOR,
	.abi_minor = FV_ABI_MINOR,
	.name = "readouts-multi",
	.n_components = sizeof components / sizeof components[0],
	.components = components,
};

FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void)
{
	return &plugin;
}
