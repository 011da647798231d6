/*
** ensemble.c: EnsembleModel (openretina.modules.layers.ensemble), several
** models of the same data averaged:
**
**     forward(x, data_key) = mean_i members[i](x, data_key)
**
** Each member is a model spec; one without _target_ is a UnifiedCoreReadout
** (the keyword arguments of openretina's default model).  The members are
** the children members.0, members.1, ... so that the state_dict names are
** openretina's (members.0.core.features.layer0.conv.weight_spatial), and a
** checkpoint of the ensemble holds every member.  openretina's ensemble has
** no regularizer; the figures ask the first member.
*/
#include <stdio.h>
#include <stdlib.h>

#include <fovea/plugin.h>

#define NAME "EnsembleModel"
#define DEFAULT_MEMBER "UnifiedCoreReadout"

typedef struct ensemble {
	const fv_config_node *members_spec;
	size_t n;
	fv_module **members; /* the children, owned by the module */
} ensemble;

static const fv_option ensemble_options[] = {
	FV_OPT("members", NODE, ensemble, members_spec, NULL,
	       "the member models: a list of model specs (without _target_: UnifiedCoreReadout)",
	       .flags = FV_OPT_REQUIRED),
	{0},
};

static fv_module *build_member(const fv_config_node *spec, const fv_build_args *args, size_t i)
{
	char name[32];
	snprintf(name, sizeof name, "members.%zu", i);
	fv_build_args a = *args;
	a.struct_size = sizeof a;
	a.spec = spec;
	a.seed = args->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
	if (fv_node_kind(spec) == FV_NODE_MAP && fv_node_get(spec, "_target_") != NULL)
		return fv_instantiate(args->registry, spec, &a);
	const fv_component *c = fv_registry_find(args->registry, DEFAULT_MEMBER, NULL);
	if (c == NULL) {
		fv_error_at(spec, FV_ERR_NOTFOUND, NAME ": members[%zu]: no _target_, and the default "
		            DEFAULT_MEMBER " is not loaded", i);
		return NULL;
	}
	return fv_instantiate_component(c, spec, &a, name);
}

static fv_status ensemble_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	ensemble *e = fv_module_priv(m);
	const fv_config_node *list = e->members_spec;
	if (fv_node_kind(list) != FV_NODE_SEQ || fv_node_size(list) == 0)
		return fv_error_at(list, FV_ERR_CONFIG,
		                   NAME ": members: expected a non-empty list of model specs");
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, NAME ": needs the registry to build its members");
	e->n = fv_node_size(list);
	e->members = calloc(e->n, sizeof *e->members);
	if (e->members == NULL)
		return fv_error(FV_ERR_NOMEM, NAME ": out of memory for %zu members", e->n);
	for (size_t i = 0; i < e->n; i++) {
		fv_module *member = build_member(fv_node_at(list, i), args, i);
		if (member == NULL)
			return fv_error_at(fv_node_at(list, i), fv_errcode(), NAME ": members[%zu]: %s", i,
			                   fv_errmsg());
		char name[32];
		snprintf(name, sizeof name, "members.%zu", i);
		fv_status st = fv_module_add_child(m, name, member); /* owns it now */
		if (st != FV_OK)
			return st;
		e->members[i] = member;
	}
	return FV_OK;
}

static void ensemble_destroy(fv_module *m)
{
	free(((ensemble *)fv_module_priv(m))->members);
}

static fv_tensor *ensemble_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                   const fv_forward_args *fa)
{
	const ensemble *e = fv_module_priv(m);
	fv_tensor *sum = NULL;
	for (size_t i = 0; i < e->n; i++) {
		fv_tensor *y = fv_module_forward(e->members[i], ctx, x, fa);
		if (y == NULL)
			return NULL;
		if (sum != NULL && (y->ndim != sum->ndim || y->numel != sum->numel)) {
			fv_error(FV_ERR_SHAPE, NAME ": member %zu gives %s, member 0 %s", i,
			         fv_shape_str(y->ndim, y->shape), fv_shape_str(sum->ndim, sum->shape));
			return NULL;
		}
		sum = sum ? fv_add(ctx, sum, y) : y;
	}
	return fv_mul_scalar(ctx, sum, 1.0 / (double)e->n);
}

static fv_status ensemble_neuron_positions(const fv_module *m, const char *session, int64_t n,
                                           double *row_col, int64_t map_hw[2])
{
	const ensemble *e = fv_module_priv(m);
	return fv_module_neuron_positions(e->members[0], session, n, row_col, map_hw);
}

static fv_status ensemble_first_layer_filters(const fv_module *m, fv_tensor **out)
{
	const ensemble *e = fv_module_priv(m);
	return fv_module_first_layer_filters(e->members[0], out);
}

static fv_status ensemble_layer_filters(const fv_module *m, int64_t layer, fv_tensor **out)
{
	const ensemble *e = fv_module_priv(m);
	return fv_module_layer_filters(e->members[0], layer, out);
}

static const char *const ensemble_names[] = {
	NAME,
	"openretina.modules.layers.ensemble.EnsembleModel",
	NULL,
};

static const fv_component ensemble_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = ensemble_names,
	.doc = "the mean output of several models (members.0, members.1, ...)",
	.options = ensemble_options,
	.priv_size = sizeof(ensemble),
	.create = ensemble_create,
	.destroy = ensemble_destroy,
	.forward = ensemble_forward,
	.neuron_positions = ensemble_neuron_positions,
	.first_layer_filters = ensemble_first_layer_filters,
	.layer_filters = ensemble_layer_filters,
};

FV_PLUGIN_DEFINE("models-ensemble", &ensemble_component);
