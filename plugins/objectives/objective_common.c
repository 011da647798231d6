/*
** objective_common.c: the parts of openretina's AbstractObjective every
** objective plugin shares (see objective_common.h).
*/
#include <stdlib.h>
#include <string.h>

#include "objective_common.h"

fv_status obj_build_reducer(fv_module *m, const char *who, const fv_config_node *spec,
                            const fv_build_args *args, fv_module **out)
{
	*out = NULL;
	if (args->registry == NULL)
		return fv_error(FV_ERR_ARG, "%s: no registry to build the response_reducer from", who);
	if (spec == NULL || fv_node_kind(spec) != FV_NODE_MAP)
		return fv_error(FV_ERR_CONFIG,
		                "%s: response_reducer: expected a map with a _target_ such as "
		                "SliceMeanReducer",
		                who);
	fv_build_args child_args = {.struct_size = sizeof child_args, .registry = args->registry};
	fv_module *r = fv_instantiate(args->registry, spec, &child_args);
	if (r == NULL) {
		fv_error_prefix("%s: response_reducer: ", who);
		return fv_errcode();
	}
	const fv_component *c = fv_module_component(r);
	if (c->kind != FV_KIND_REDUCER || c->forward == NULL) {
		fv_status st = fv_error_at(spec, FV_ERR_CONFIG,
		                           "%s: response_reducer: '%s' is a %s, expected a reducer "
		                           "such as SliceMeanReducer", who, c->names[0],
		                           fv_kind_name(c->kind));
		fv_module_free(r);
		return st;
	}
	fv_status st = fv_module_add_child(m, "response_reducer", r); /* owns r either way */
	if (st == FV_OK)
		*out = r;
	return st;
}

fv_tensor *obj_model_forward(fv_ctx *ctx, const char *who, fv_model *model, fv_tensor *stimulus,
                             const char *data_key)
{
	if (model == NULL) {
		fv_error(FV_ERR_ARG, "%s: no model given", who);
		return NULL;
	}
	fv_tensor *y = fv_model_forward(model, ctx, stimulus, data_key);
	if (y == NULL) {
		fv_error_prefix("%s: model: ", who);
		return NULL;
	}
	if (y->ndim == 0 || y->shape[0] != 1) /* torch's squeeze(0) leaves it */
		return y;
	return fv_reshape(ctx, y, y->ndim - 1, y->shape + 1);
}

fv_tensor *obj_reduce(fv_ctx *ctx, const char *who, fv_module *reducer, fv_tensor *x)
{
	if (x == NULL)
		return NULL;
	fv_tensor *y = fv_module_forward(reducer, ctx, x, NULL);
	if (y == NULL)
		fv_error_prefix("%s: response_reducer: ", who);
	return y;
}

fv_tensor *obj_select(fv_ctx *ctx, const char *who, const char *what, fv_tensor *x, int axis,
                      size_t n, const int64_t *idx)
{
	if (x == NULL)
		return NULL;
	int a = axis < 0 ? axis + x->ndim : axis;
	if (a < 0 || a >= x->ndim) {
		fv_error(FV_ERR_SHAPE, "%s: cannot select %ss from responses of shape %s", who, what,
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t size = x->shape[a];
	int64_t *norm = fv_ctx_alloc(ctx, (n ? n : 1) * sizeof *norm);
	if (norm == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		norm[i] = idx[i] < 0 ? idx[i] + size : idx[i];
		if (norm[i] < 0 || norm[i] >= size) {
			fv_error(FV_ERR_ARG, "%s: %s index %lld is out of range for %lld %ss", who, what,
			         (long long)idx[i], (long long)size, what);
			return NULL;
		}
	}
	return fv_index_select(ctx, x, a, (int64_t)n, norm);
}

static fv_status int_item(const fv_config_node *item, const char *who, const char *key,
                          int64_t *out)
{
	if (fv_node_kind(item) == FV_NODE_SCALAR && fv_node_to_int(item, out) == FV_OK)
		return FV_OK;
	return fv_error_at(item, FV_ERR_CONFIG, "%s: %s: expected an integer index", who, key);
}

fv_status obj_int_list(const fv_config_node *node, const char *who, const char *key,
                       int64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	bool scalar = fv_node_kind(node) == FV_NODE_SCALAR;
	if (!scalar && fv_node_kind(node) != FV_NODE_SEQ)
		return fv_error_at(node, FV_ERR_CONFIG, "%s: %s: expected a list of neuron indices", who,
		                   key);
	size_t count = scalar ? 1 : fv_node_size(node);
	if (count == 0)
		return fv_error_at(node, FV_ERR_CONFIG, "%s: %s: the list of neuron indices is empty", who,
		                   key);
	int64_t *v = malloc(count * sizeof *v);
	if (v == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", who);
	for (size_t i = 0; i < count; i++) {
		fv_status st = int_item(scalar ? node : fv_node_at(node, i), who, key, &v[i]);
		if (st != FV_OK) {
			free(v);
			return st;
		}
	}
	*out = v;
	*n = count;
	return FV_OK;
}
