/*
** point_gaussian.c: PointGaussianReadout (openretina.modules.readout.gaussian,
** the Gaussian2d readout of Lurz et al. 2021, alias FullGaussian2d).
**
** Each neuron reads the feature map (N, c, w, h) at one point: bilinear
** grid_sample at a position drawn from N(mu, Sigma) in training, at mu in
** eval (or as the `sample` forward argument says), then weights the c
** features and adds a bias:
**
**   grid = clamp(mu + Sigma * z, -1, 1)          z ~ N(0, 1) or 0
**   y[., n] = sum_c grid_sample(x, grid)[., c, n] * features[c, n] + bias[n]
**
** Sigma is sigma (1, n, 2, 2) applied as a matrix for gauss_type "full", a
** per-axis (1, n, 1, 2) or single (1, n, 1, 1) scale otherwise.  grid[..., 0]
** (mu[..., 0]) is grid_sample's x: it indexes the LAST input dim.  Before
** sampling, openretina clamps mu to [-1, 1] in place when mu is the
** readout's own `_mu` parameter (not with a shared or predicted grid, where
** mu is a computed copy); the clamp is not differentiated.
**
** Where the positions come from:
**   _mu (1, n, 1, 2)                 the default;
**   shared_grid: {match_ids: [...]}  _mu (1, unique ids, 1, 2) gathered per
**                                    neuron through grid_sharing_index;
**   grid_mean_predictor + source_grid  an MLP mu_transform.* maps each
**                                    neuron's (normalised) source_grid row
**                                    to its position.
** shared_features: {match_ids: [...]} likewise gives _features
** (1, c, 1, unique ids) times per-neuron `scales`.  Sharing a Parameter of
** another readout (shared_grid.shared_grid / shared_features.shared_features)
** cannot be written in YAML and is refused.
*/
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "readout_common.h"

#define WHO "PointGaussianReadout"
#define MAX_MLP_LAYERS 64

/* The options: the first member of the state, pg_readout, parsed in place. */
typedef struct pg_opts {
	fv_int_list in_shape;
	int64_t outdims;
	bool bias;
	double init_mu_range;
	double init_sigma_range;
	bool batch_sample;
	bool align_corners;
	const char *gauss_type;
	const fv_config_node *grid_mean_predictor;
	const fv_config_node *shared_features;
	const fv_config_node *shared_grid;
	const fv_config_node *init_grid;
	const fv_config_node *source_grid;
	const fv_config_node *mean_activity;
	double gamma_readout;
} pg_opts;

typedef enum pg_gauss { PG_FULL, PG_UNCORRELATED, PG_ISOTROPIC } pg_gauss;
typedef enum pg_grid { PG_OWN_GRID, PG_SHARED_GRID, PG_PREDICTED_GRID } pg_grid;

/* The options first, parsed in place, then what create() builds. */
typedef struct pg_readout {
	pg_opts o;
	int64_t c, w, h, n;
	pg_gauss gauss;
	pg_grid grid_kind;
	fv_tensor *mu;           /* _mu: (1, n or unique ids, 1, 2); NULL when predicted */
	int64_t *grid_index;     /* shared grid: unique-id index per neuron */
	fv_tensor *sigma;        /* (1, n, 2, 2) / (1, n, 1, 2) / (1, n, 1, 1) */
	fv_tensor *features;     /* _features: (1, c, 1, n or unique ids) */
	fv_tensor *scales;       /* shared features: (1, 1, 1, n) */
	int64_t *feature_index;  /* shared features: unique-id index per neuron */
	fv_tensor *bias;         /* (n) or NULL */
	fv_tensor *source_grid;  /* predicted grid: (n, d) buffer */
	int n_linear;            /* predicted grid: mu_transform's Linear layers */
	fv_tensor *lin_w[MAX_MLP_LAYERS], *lin_b[MAX_MLP_LAYERS];
	bool final_tanh;
} pg_readout;

static const fv_option pg_options[] = {
	FV_OPT("in_shape", INT_LIST, pg_readout, o.in_shape, "null",
	       "feature map (channels, time, width, height); time is unused; null: from the core",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("outdims", INT, pg_readout, o.outdims, "null",
	       "number of neurons; null: from the session's data", .min = 1, .max = 1e12,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("bias", BOOL, pg_readout, o.bias, NULL, "add a learned per-neuron bias",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("init_mu_range", FLOAT, pg_readout, o.init_mu_range, "0.1",
	       "mu starts uniform in [-init_mu_range, init_mu_range]; must lie in (0, 1]"),
	FV_OPT("init_sigma_range", FLOAT, pg_readout, o.init_sigma_range, "0.15",
	       "sigma starts at this value (full: uniform in [-range, range]); must be > 0"),
	FV_OPT("batch_sample", BOOL, pg_readout, o.batch_sample, "true",
	       "draw a position per batch element (else one for the whole batch)"),
	FV_OPT("align_corners", BOOL, pg_readout, o.align_corners, "true",
	       "grid_sample's align_corners: -1/+1 are the outer pixel centres (else edges)"),
	FV_OPT("gauss_type", ENUM, pg_readout, o.gauss_type, "full",
	       "shape of the position distribution's covariance",
	       .choices = "full|uncorrelated|isotropic"),
	FV_OPT("grid_mean_predictor", NODE, pg_readout, o.grid_mean_predictor, "null",
	       "{hidden_features: 20, hidden_layers: 0, final_tanh: false}: predict mu from source_grid",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("shared_features", NODE, pg_readout, o.shared_features, "null",
	       "{match_ids: [...]}: neurons with equal ids share feature vectors",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("shared_grid", NODE, pg_readout, o.shared_grid, "null",
	       "{match_ids: [...]}: neurons with equal ids share a position", .flags = FV_OPT_NULLABLE),
	FV_OPT("init_grid", NODE, pg_readout, o.init_grid, "null",
	       "initial positions, one (x, y) pair per neuron (see the docs)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("source_grid", NODE, pg_readout, o.source_grid, "null",
	       "neurons x input_dimensions: the grid_mean_predictor's input", .flags = FV_OPT_NULLABLE),
	FV_OPT("mean_activity", NODE, pg_readout, o.mean_activity, "null",
	       "per-neuron mean response the bias starts from (list); null: 0",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("gamma_readout", FLOAT, pg_readout, o.gamma_readout, "1.0",
	       "weight of the L1 penalty on the feature weights", .min = 0, .max = 1e30),
	{0},
};

static bool warned_shape;

/* ---- construction ------------------------------------------------------------ */

/* np.unique(ids, return_inverse=True): the index of each id among the
** sorted distinct ids, and how many distinct ids there are. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static fv_status unique_inverse(const ro_array *ids, int64_t **index, int64_t *n_unique)
{
	size_t n = (size_t)ids->numel;
	double *sorted = malloc(n * sizeof *sorted);
	*index = malloc(n * sizeof **index);
	if (sorted == NULL || *index == NULL) {
		free(sorted);
		free(*index);
		*index = NULL;
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for match_ids", WHO);
	}
	memcpy(sorted, ids->v, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_double);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || sorted[i] != sorted[u - 1])
			sorted[u++] = sorted[i];
	for (size_t i = 0; i < n; i++) {
		double *hit = bsearch(&ids->v[i], sorted, u, sizeof *sorted, cmp_double);
		(*index)[i] = hit - sorted;
	}
	*n_unique = (int64_t)u;
	free(sorted);
	return FV_OK;
}

/* Read a {match_ids: [...], <param_key>: null} sharing spec.  `match_ids`
** may be absent only when `ids_optional`. */
static fv_status read_sharing(const fv_config_node *spec, const char *key, const char *param_key,
                              int64_t n, bool ids_optional, int64_t **index, int64_t *n_unique)
{
	*index = NULL;
	if (fv_node_kind(spec) != FV_NODE_MAP)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s: %s: expected a map {match_ids: [...]}", WHO,
		                   key);
	const fv_config_node *ids_node = NULL;
	for (size_t i = 0; i < fv_node_size(spec); i++) {
		const char *k = fv_node_key_at(spec, i);
		const fv_config_node *v = fv_node_at(spec, i);
		if (strcmp(k, "match_ids") == 0)
			ids_node = v;
		else if (strcmp(k, param_key) == 0) {
			if (!fv_node_is_null(v))
				return fv_error_at(v, FV_ERR_CONFIG,
				                   "%s: %s.%s: must be null; sharing another readout's "
				                   "Parameter cannot be written in a config", WHO, key, param_key);
		} else
			return fv_error_at(v, FV_ERR_CONFIG,
			                   "%s: %s: unknown key '%s' (expected match_ids, %s)", WHO, key, k,
			                   param_key);
	}
	if (ids_node == NULL || fv_node_is_null(ids_node)) {
		if (ids_optional)
			return FV_OK;
		return fv_error_at(spec, FV_ERR_CONFIG, "%s: %s: match_ids must be set for sharing grid",
		                   WHO, key);
	}
	ro_array ids;
	fv_status st = ro_array_from_node(WHO, "match_ids", ids_node, &ids);
	if (st != FV_OK)
		return st;
	if (ids.ndim != 1 || ids.numel != n)
		st = fv_error_at(ids_node, FV_ERR_CONFIG,
		                 "%s: %s.match_ids: there must be one match ID per output "
		                 "dimension: expected %lld, got %lld", WHO, key, (long long)n,
		                 (long long)ids.numel);
	if (st == FV_OK)
		st = unique_inverse(&ids, index, n_unique);
	ro_array_free(&ids);
	return st;
}

static fv_status read_predictor(const fv_config_node *spec, int64_t *hidden_features,
                                int64_t *hidden_layers, bool *final_tanh)
{
	*hidden_features = 20;
	*hidden_layers = 0;
	*final_tanh = false;
	if (fv_node_kind(spec) != FV_NODE_MAP)
		return fv_error_at(spec, FV_ERR_CONFIG,
		                   "%s: grid_mean_predictor: expected a map {hidden_features, "
		                   "hidden_layers, final_tanh}", WHO);
	for (size_t i = 0; i < fv_node_size(spec); i++) {
		const char *k = fv_node_key_at(spec, i);
		const fv_config_node *v = fv_node_at(spec, i);
		fv_status st;
		if (strcmp(k, "hidden_features") == 0)
			st = fv_node_to_int(v, hidden_features);
		else if (strcmp(k, "hidden_layers") == 0)
			st = fv_node_to_int(v, hidden_layers);
		else if (strcmp(k, "final_tanh") == 0)
			st = fv_node_to_bool(v, final_tanh);
		else
			st = fv_error_at(v, FV_ERR_CONFIG,
			                 "%s: grid_mean_predictor: unknown key '%s' (expected "
			                 "hidden_features, hidden_layers, final_tanh)", WHO, k);
		if (st != FV_OK)
			return st;
	}
	if (*hidden_features < 1 || *hidden_layers < 0 || *hidden_layers >= MAX_MLP_LAYERS)
		return fv_error_at(spec, FV_ERR_CONFIG,
		                   "%s: grid_mean_predictor: need hidden_features >= 1 and 0 <= "
		                   "hidden_layers < %d, got %lld and %lld", WHO, MAX_MLP_LAYERS,
		                   (long long)*hidden_features, (long long)*hidden_layers);
	return FV_OK;
}

/* source_grid, centred per column and divided by its largest magnitude. */
static fv_status load_source_grid(fv_module *m, pg_readout *r, const fv_config_node *node,
                                  int64_t *dims)
{
	if (node == NULL || fv_node_is_null(node))
		return fv_error(FV_ERR_CONFIG,
		                "%s: grid_mean_predictor needs source_grid (neurons x input_dimensions, "
		                "e.g. each neuron's recorded position), which the config does not give",
		                WHO);
	ro_array a;
	fv_status st = ro_array_from_node(WHO, "source_grid", node, &a);
	if (st != FV_OK)
		return st;
	if (a.ndim != 2 || a.shape[0] != r->n) {
		st = fv_error_at(node, FV_ERR_CONFIG, "%s: source_grid: expected %lld rows (neurons) of "
		                 "coordinates, got shape %s", WHO, (long long)r->n,
		                 fv_shape_str(a.ndim, a.shape));
		ro_array_free(&a);
		return st;
	}
	int64_t rows = a.shape[0], d = a.shape[1];
	double big = 0;
	for (int64_t j = 0; j < d; j++) {
		double mean = 0;
		for (int64_t i = 0; i < rows; i++)
			mean += a.v[i * d + j];
		mean /= (double)rows;
		for (int64_t i = 0; i < rows; i++) {
			a.v[i * d + j] -= mean;
			big = fmax(big, fabs(a.v[i * d + j]));
		}
	}
	if (big == 0) {
		ro_array_free(&a);
		return fv_error_at(node, FV_ERR_CONFIG, "%s: source_grid: every row is the same; its "
		                   "normalisation would divide by 0", WHO);
	}
	int64_t shape[2] = {rows, d};
	r->source_grid = ro_buffer(m, WHO, "source_grid", 2, shape);
	if (r->source_grid != NULL)
		for (int64_t i = 0; i < rows * d; i++)
			r->source_grid->data[i] = (fv_real)(a.v[i] / big);
	ro_array_free(&a);
	*dims = d;
	return r->source_grid != NULL ? FV_OK : FV_ERR_NOMEM;
}

/* mu_transform = Sequential(Linear, [ELU, Linear]*, [Tanh]) with torch's
** default Linear init, named as nn.Sequential numbers its children. */
static fv_status make_predictor(fv_module *m, pg_readout *r, const fv_config_node *spec,
                                const fv_config_node *source, fv_ctx *rng)
{
	int64_t hidden, layers, d = 0;
	fv_status st = read_predictor(spec, &hidden, &layers, &r->final_tanh);
	if (st == FV_OK)
		st = load_source_grid(m, r, source, &d);
	if (st != FV_OK)
		return st;
	r->n_linear = (int)layers + 1;
	for (int i = 0; i < r->n_linear; i++) {
		int64_t in = i == 0 ? d : hidden, out = i == r->n_linear - 1 ? 2 : hidden;
		int64_t ws[2] = {out, in};
		char name[64];
		snprintf(name, sizeof name, "mu_transform.%d.weight", 2 * i);
		r->lin_w[i] = ro_param(m, WHO, name, 2, ws);
		snprintf(name, sizeof name, "mu_transform.%d.bias", 2 * i);
		r->lin_b[i] = ro_param(m, WHO, name, 1, &out);
		if (r->lin_w[i] == NULL || r->lin_b[i] == NULL)
			return FV_ERR_NOMEM;
		double bound = 1.0 / sqrt((double)in);
		ro_fill_uniform(rng, r->lin_w[i], -bound, bound);
		ro_fill_uniform(rng, r->lin_b[i], -bound, bound);
	}
	r->grid_kind = PG_PREDICTED_GRID;
	return FV_OK;
}

/* init_grid: one (x, y) pair per neuron, in any nesting ((n, 2) or
** (1, n, 1, 2)). */
static fv_status load_init_grid(pg_readout *r, const fv_config_node *node)
{
	ro_array a;
	fv_status st = ro_array_from_node(WHO, "init_grid", node, &a);
	if (st != FV_OK)
		return st;
	if (a.numel != 2 * r->n)
		st = fv_error_at(node, FV_ERR_CONFIG,
		                 "%s: init_grid: expected %lld (x, y) pairs, got shape %s", WHO,
		                 (long long)r->n, fv_shape_str(a.ndim, a.shape));
	else
		for (int64_t i = 0; i < a.numel; i++)
			r->mu->data[i] = (fv_real)a.v[i];
	ro_array_free(&a);
	return st;
}

static fv_status make_grid(fv_module *m, pg_readout *r, const pg_opts *o, fv_ctx *rng)
{
	bool predicted = o->grid_mean_predictor != NULL && !fv_node_is_null(o->grid_mean_predictor);
	bool shared = o->shared_grid != NULL && !fv_node_is_null(o->shared_grid);
	if (predicted && shared)
		return fv_error_at(o->shared_grid, FV_ERR_CONFIG,
		                   "%s: Shared grid_mean_predictor and shared_grid_mean cannot both be set",
		                   WHO);
	if (predicted)
		return make_predictor(m, r, o->grid_mean_predictor, o->source_grid, rng);
	int64_t n_mu = r->n;
	if (shared) {
		fv_status st = read_sharing(o->shared_grid, "shared_grid", "shared_grid", r->n, false,
		                            &r->grid_index, &n_mu);
		if (st != FV_OK)
			return st;
		int64_t ns[1] = {r->n};
		fv_tensor *idx = ro_buffer(m, WHO, "grid_sharing_index", 1, ns);
		if (idx == NULL)
			return FV_ERR_NOMEM;
		for (int64_t i = 0; i < r->n; i++)
			idx->data[i] = (fv_real)r->grid_index[i];
		r->grid_kind = PG_SHARED_GRID;
	}
	int64_t mu_shape[4] = {1, n_mu, 1, 2};
	r->mu = ro_param(m, WHO, "_mu", 4, mu_shape);
	if (r->mu == NULL)
		return FV_ERR_NOMEM;
	ro_fill_uniform(rng, r->mu, -o->init_mu_range, o->init_mu_range);
	if (!shared && o->init_grid != NULL && !fv_node_is_null(o->init_grid))
		return load_init_grid(r, o->init_grid);
	return FV_OK;
}

static fv_status make_features(fv_module *m, pg_readout *r, const pg_opts *o)
{
	int64_t n_feat = r->n;
	if (o->shared_features != NULL && !fv_node_is_null(o->shared_features)) {
		fv_status st = read_sharing(o->shared_features, "shared_features", "shared_features",
		                            r->n, true, &r->feature_index, &n_feat);
		if (st != FV_OK)
			return st;
	}
	int64_t fs[4] = {1, r->c, 1, n_feat};
	r->features = ro_param(m, WHO, "_features", 4, fs);
	if (r->features == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(r->features, (fv_real)(1.0 / (double)r->c));
	if (r->feature_index == NULL)
		return FV_OK;
	int64_t ss[4] = {1, 1, 1, r->n}, ns[1] = {r->n};
	r->scales = ro_param(m, WHO, "scales", 4, ss);
	fv_tensor *idx = ro_buffer(m, WHO, "feature_sharing_index", 1, ns);
	if (r->scales == NULL || idx == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(r->scales, 1);
	for (int64_t i = 0; i < r->n; i++)
		idx->data[i] = (fv_real)r->feature_index[i];
	return FV_OK;
}

static fv_status make_sigma(fv_module *m, pg_readout *r, const pg_opts *o, fv_ctx *rng)
{
	int64_t shape[4] = {1, r->n, r->gauss == PG_FULL ? 2 : 1, r->gauss == PG_ISOTROPIC ? 1 : 2};
	r->sigma = ro_param(m, WHO, "sigma", 4, shape);
	if (r->sigma == NULL)
		return FV_ERR_NOMEM;
	if (r->gauss == PG_FULL)
		ro_fill_uniform(rng, r->sigma, -o->init_sigma_range, o->init_sigma_range);
	else
		fv_tensor_fill(r->sigma, (fv_real)o->init_sigma_range);
	return FV_OK;
}

static fv_status pg_build(fv_module *m, pg_readout *r, const pg_opts *o,
                          const fv_build_args *args)
{
	fv_ctx *rng = ro_rng_new(WHO, args->seed);
	if (rng == NULL)
		return FV_ERR_NOMEM;
	fv_status st = make_grid(m, r, o, rng);
	if (st == FV_OK)
		st = make_sigma(m, r, o, rng);
	if (st == FV_OK)
		st = make_features(m, r, o);
	fv_ctx_free(rng);
	if (st != FV_OK || !o->bias)
		return st;
	int64_t ns[1] = {r->n};
	r->bias = ro_param(m, WHO, "bias", 1, ns);
	if (r->bias == NULL)
		return FV_ERR_NOMEM;
	return ro_init_bias(WHO, r->bias, r->n, o->mean_activity, args, true);
}

static fv_status pg_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	pg_readout *r = fv_module_priv(m);
	const pg_opts *o = &r->o;
	if (o->init_mu_range > 1.0 || o->init_mu_range <= 0.0 || o->init_sigma_range <= 0.0)
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: either init_mu_range doesn't belong to [0.0, 1.0] or "
		                   "init_sigma_range is non-positive (init_mu_range %g, "
		                   "init_sigma_range %g)", WHO, o->init_mu_range, o->init_sigma_range);
	int64_t shape[4], n;
	fv_status st = ro_dims(WHO, &o->in_shape, o->outdims, args, shape, &n);
	if (st != FV_OK)
		return st;
	r->c = shape[0];
	r->w = shape[2];
	r->h = shape[3];
	r->n = n;
	r->gauss = strcmp(o->gauss_type, "full") == 0           ? PG_FULL
	           : strcmp(o->gauss_type, "uncorrelated") == 0 ? PG_UNCORRELATED
	                                                         : PG_ISOTROPIC;
	return pg_build(m, r, o, args);
}

/* The index arrays of shared grids and features; the rest is the module's. */
static void pg_destroy(fv_module *m)
{
	pg_readout *r = fv_module_priv(m);
	free(r->grid_index);
	free(r->feature_index);
}

/* ---- forward ----------------------------------------------------------------- */

/* mu (1, n, 1, 2) as openretina's `mu` property. */
static fv_tensor *pg_mu(fv_ctx *ctx, const pg_readout *r)
{
	if (r->grid_kind == PG_SHARED_GRID)
		return fv_index_select(ctx, r->mu, 1, r->n, r->grid_index);
	if (r->grid_kind == PG_OWN_GRID)
		return r->mu;
	fv_tensor *h = r->source_grid;
	for (int i = 0; i < r->n_linear; i++) {
		if (i > 0)
			h = fv_elu(ctx, h, 1.0);
		h = fv_add(ctx, fv_matmul_ex(ctx, h, r->lin_w[i], false, true), r->lin_b[i]);
	}
	if (r->final_tanh)
		h = fv_tanh(ctx, h);
	int64_t shape[4] = {1, r->n, 1, 2};
	return fv_reshape(ctx, h, 4, shape);
}

/* features (1, c, 1, n) as openretina's `features` property. */
static fv_tensor *pg_features(fv_ctx *ctx, const pg_readout *r)
{
	if (r->feature_index == NULL)
		return r->features;
	fv_tensor *f = fv_index_select(ctx, r->features, 3, r->n, r->feature_index);
	return fv_mul(ctx, r->scales, f);
}

static void clamp_unit(fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = t->data[i] < -1 ? -1 : t->data[i] > 1 ? 1 : t->data[i];
}

/* openretina's sample_grid: positions (batch, n, 1, 2) in [-1, 1]. */
static fv_tensor *pg_sample_grid(fv_ctx *ctx, const pg_readout *r, int64_t batch, bool sample)
{
	if (r->grid_kind == PG_OWN_GRID)
		clamp_unit(r->mu);
	int64_t shape[4] = {batch, r->n, 1, 2};
	fv_tensor *z = fv_ctx_zeros(ctx, 4, shape);
	if (z == NULL)
		return NULL;
	if (sample)
		for (int64_t i = 0; i < z->numel; i++)
			z->data[i] = (fv_real)fv_ctx_random_normal(ctx);
	fv_tensor *mu = pg_mu(ctx, r);
	fv_tensor *offset;
	if (r->gauss != PG_FULL) {
		offset = fv_mul(ctx, z, r->sigma);
	} else {
		/* einsum("ancd,bnid->bnic"): offset[b,n,0,c] = sum_d sigma[n,c,d] z[b,n,0,d]. */
		int64_t s5[5] = {1, r->n, 1, 2, 2}, z5[5] = {batch, r->n, 1, 1, 2};
		int last = -1;
		fv_tensor *prod = fv_mul(ctx, fv_reshape(ctx, r->sigma, 5, s5), fv_reshape(ctx, z, 5, z5));
		offset = fv_sum(ctx, prod, 1, &last, false);
	}
	return fv_clamp(ctx, fv_add(ctx, offset, mu), -1, 1);
}

static bool pg_check_input(const pg_readout *r, const fv_tensor *x)
{
	if (x->ndim != 4 || x->shape[1] != r->c) {
		fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, %lld, width, height)",
		         WHO, fv_shape_str(x->ndim, x->shape), (long long)r->c);
		return false;
	}
	if (x->shape[2] != r->w || x->shape[3] != r->h)
		ro_warn_once(&warned_shape, "the specified feature map dimension is not the readout's "
		                            "expected input dimension");
	return true;
}

static fv_tensor *pg_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	pg_readout *r = fv_module_priv(m);
	if (x == NULL || !pg_check_input(r, x))
		return NULL;
	int64_t batch = x->shape[0];
	bool sample = (fa == NULL || fa->sample < 0) ? fv_module_training(m) : fa->sample != 0;
	fv_tensor *grid = pg_sample_grid(ctx, r, r->o.batch_sample ? batch : 1, sample);
	if (!r->o.batch_sample) {
		int64_t shape[4] = {batch, r->n, 1, 2};
		grid = fv_expand(ctx, grid, 4, shape);
	}
	int64_t y3[3] = {batch, r->c, r->n}, f3[3] = {1, r->c, r->n};
	int channels = 1;
	fv_tensor *y = fv_grid_sample(ctx, x, grid, r->o.align_corners); /* (N, c, n, 1) */
	fv_tensor *feat = fv_reshape(ctx, pg_features(ctx, r), 3, f3);
	y = fv_sum(ctx, fv_mul(ctx, fv_reshape(ctx, y, 3, y3), feat), 1, &channels, false);
	return r->bias != NULL ? fv_add(ctx, y, r->bias) : y;
}

/* gamma_readout * feature_l1(reduction): "sum" (openretina's default),
** "mean", or None for the unreduced |features| (1, c, 1, n). */
static fv_tensor *pg_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	const pg_readout *r = fv_module_priv(m);
	fv_reduction red = fa != NULL ? fa->reduction : FV_REDUCE_DEFAULT;
	fv_tensor *l1 = fv_abs(ctx, pg_features(ctx, r));
	if (red != FV_REDUCE_NONE)
		l1 = ro_reduce_all(ctx, l1, red == FV_REDUCE_MEAN);
	return fv_mul_scalar(ctx, l1, r->o.gamma_readout);
}

/* openretina's initialize(): the bias, when there is one, from the mean
** activity (or 0 with the warning). */
static fv_status pg_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	pg_readout *r = fv_module_priv(m);
	return r->bias != NULL ? ro_initialize_bias(WHO, r->bias, mean_activity) : FV_OK;
}

static const char *const pg_names[] = {
	"PointGaussianReadout",
	"openretina.modules.readout.gaussian.PointGaussianReadout",
	"FullGaussian2d",
	"openretina.modules.readout.gaussian.FullGaussian2d",
	NULL,
};

static const fv_component pg_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = pg_names,
	.doc = "reads each neuron's features at one point drawn from a learned 2-D Gaussian "
	       "(Lurz et al. 2021); input (N, c, w, h), output (N, neurons)",
	.options = pg_options,
	.priv_size = sizeof(pg_readout),
	.create = pg_create,
	.destroy = pg_destroy,
	.forward = pg_forward,
	.regularizer = pg_regularizer,
	.initialize_bias = pg_initialize_bias,
};

FV_PLUGIN_DEFINE("readouts-point-gaussian", &pg_component);
