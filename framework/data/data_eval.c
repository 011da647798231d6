/*
** data_eval.c: running a configuration's data steps as Hydra's
** instantiate runs openretina's data_io functions: inside-out, each nested
** `_target_` map before the step that takes its value.
**
** A step is a registered component of kind FV_KIND_DATA.  Its map is
** parsed against its option table like any component's (the keys of nested
** steps stay FV_OPT_NODE options there); the nested values travel beside
** it in an fv_data_inputs.  The module lives only for the call: a data step
** keeps no state between runs.
*/
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "data/data_internal.h"
#include "fovea/data_plugin.h"

/* Deeper nesting than any reader has: a cycle or a hostile config. */
#define MAX_DEPTH 64

struct fv_data_inputs {
	fv_registry *reg;
	const fv_config_node *spec;
	fv_dvalue *values; /* a dict: option key -> the value of its nested step */
	/* Values the caller passes beside the config (fv_data_eval_with), borrowed. */
	size_t n_extra;
	const char *const *extra_keys;
	const fv_dvalue *const *extra_values;
};

static const fv_dvalue *extra_input(const fv_data_inputs *in, const char *key)
{
	for (size_t i = 0; key != NULL && i < in->n_extra; i++)
		if (strcmp(in->extra_keys[i], key) == 0)
			return in->extra_values[i];
	return NULL;
}

const fv_dvalue *fv_data_input(const fv_data_inputs *in, const char *key)
{
	if (in == NULL)
		return NULL;
	const fv_dvalue *v = fv_dvalue_get(in->values, key);
	return v != NULL ? v : extra_input(in, key);
}

fv_dvalue *fv_data_input_take(fv_data_inputs *in, const char *key)
{
	if (in == NULL)
		return NULL;
	fv_dvalue *v = fv_dvalue_take(in->values, key);
	if (v != NULL)
		return v;
	/* The caller keeps its own values (openretina's train script uses them
	** again for data_info): the step gets a copy. */
	const fv_dvalue *extra = extra_input(in, key);
	return extra != NULL ? fv_dvalue_copy(extra) : NULL;
}

const fv_config_node *fv_data_input_spec(const fv_data_inputs *in)
{
	return in != NULL ? in->spec : NULL;
}

fv_registry *fv_data_input_registry(const fv_data_inputs *in)
{
	return in != NULL ? in->reg : NULL;
}

static fv_status eval_node(fv_registry *reg, const fv_config_node *n, int depth, fv_dvalue **out);

/* Does n hold a `_target_` map anywhere (then Hydra would call it)? */
static bool has_step(const fv_config_node *n, int depth)
{
	if (depth > MAX_DEPTH)
		return true; /* let eval_node refuse it with a message */
	if (fv_node_kind(n) == FV_NODE_MAP && fv_node_get(n, "_target_") != NULL)
		return true;
	for (size_t i = 0; i < fv_node_size(n); i++)
		if (has_step(fv_node_at(n, i), depth + 1))
			return true;
	return false;
}

/* The closest name of a data step to `name`, or NULL.  Only data steps (a
** readout's name is no useful suggestion for a reader), and the generic
** HDF5 reader's, which fv_data_open() runs itself. */
static const char *closest_data_step(const fv_registry *reg, const char *name)
{
	size_t n_generic, n = 0, total = fv_registry_size(reg);
	const char *const *generic = fv__data_generic_targets(&n_generic);
	for (size_t i = 0; i < total; i++) {
		const fv_component *c = fv_registry_at(reg, i, NULL);
		for (size_t k = 0; c->kind == FV_KIND_DATA && c->names[k] != NULL; k++)
			n++;
	}
	const char **names = fv__malloc((n + n_generic) * sizeof *names);
	if (names == NULL)
		return NULL;
	memcpy(names, generic, n_generic * sizeof *names);
	n = n_generic;
	for (size_t i = 0; i < total; i++) {
		const fv_component *c = fv_registry_at(reg, i, NULL);
		for (size_t k = 0; c->kind == FV_KIND_DATA && c->names[k] != NULL; k++)
			names[n++] = c->names[k];
	}
	const char *near = fv_closest_name(name, names, n);
	free(names);
	return near;
}

static fv_status unknown_step(const fv_registry *reg, const fv_config_node *t, const char *name,
                              const fv_component *c)
{
	const char *key = fv_node_keypath(t);
	if (c == NULL && fv__data_is_generic_target(name))
		return fv_error_at(t, FV_ERR_CONFIG, "%s: '%s' is a step of the generic HDF5 reader, "
		                   "which fovea runs only when every step of data_io is one of its "
		                   "own; it does not mix with data-step plugins", key, name);
	if (c != NULL)
		return fv_error_at(t, FV_ERR_CONFIG, "%s: '%s' is a %s, not a data step", key, name,
		                   fv_kind_name(c->kind));
	const char *near = closest_data_step(reg, name);
	return fv_error_at(t, FV_ERR_NOTFOUND, "%s: no data step '%s' is loaded%s%s%s", key, name,
	                   near != NULL ? "; did you mean '" : " (`fovea plugins` lists them)",
	                   near != NULL ? near : "", near != NULL ? "'?" : "");
}

fv_status fv__data_check_targets(const fv_registry *reg, const fv_config_node *n, int depth)
{
	if (depth > MAX_DEPTH)
		return fv_error_at(n, FV_ERR_CONFIG, "%s: data steps nested more than %d deep",
		                   fv_node_keypath(n), MAX_DEPTH);
	const fv_config_node *t = fv_node_kind(n) == FV_NODE_MAP ? fv_node_get(n, "_target_") : NULL;
	const char *name = fv_node_text(t);
	if (name != NULL && !fv__data_is_generic_target(name)) {
		const fv_component *c = fv_registry_find(reg, name, NULL);
		if (c == NULL || c->kind != FV_KIND_DATA)
			return unknown_step(reg, t, name, c);
	}
	for (size_t i = 0; i < fv_node_size(n); i++) {
		fv_status rc = fv__data_check_targets(reg, fv_node_at(n, i), depth + 1);
		if (rc != FV_OK)
			return rc;
	}
	return FV_OK;
}

/* The values of the step's nested steps, by option key. */
static fv_status eval_inputs(fv_registry *reg, const fv_config_node *spec, int depth,
                             fv_dvalue *values)
{
	for (size_t i = 0; i < fv_node_size(spec); i++) {
		const fv_config_node *child = fv_node_at(spec, i);
		const char *key = fv_node_key_at(spec, i);
		if (key[0] == '_' || !has_step(child, depth + 1))
			continue;
		fv_dvalue *v = NULL;
		fv_status st = eval_node(reg, child, depth + 1, &v);
		if (st == FV_OK)
			st = fv_dvalue_set(values, key, v);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

/* The instance name of a step, for messages: its key. */
static const char *last_key(const fv_config_node *spec)
{
	const char *path = fv_node_keypath(spec);
	const char *dot = path != NULL ? strrchr(path, '.') : NULL;
	return dot != NULL ? dot + 1 : path != NULL ? path : "";
}

static fv_status run_step(fv_registry *reg, const fv_config_node *spec, int depth,
                          const fv_data_inputs *extra, fv_dvalue **out)
{
	const fv_config_node *t = fv_node_get(spec, "_target_");
	const char *name = fv_node_text(t);
	if (name == NULL || fv_node_is_null(t))
		return fv_error_at(t, FV_ERR_CONFIG, "%s: expected the name of a data step",
		                   fv_node_keypath(t));
	const fv_component *c = fv_registry_find(reg, name, NULL);
	if (c == NULL || c->kind != FV_KIND_DATA)
		return unknown_step(reg, t, name, c);
	fv_data_inputs in = {.reg = reg, .spec = spec, .values = fv_dvalue_map(NULL)};
	if (extra != NULL) {
		in.n_extra = extra->n_extra;
		in.extra_keys = extra->extra_keys;
		in.extra_values = extra->extra_values;
	}
	if (in.values == NULL)
		return fv_errcode();
	fv_status st = eval_inputs(reg, spec, depth, in.values);
	fv_module *m = NULL;
	if (st == FV_OK) {
		fv_build_args args = {.struct_size = sizeof args, .registry = reg};
		m = fv_instantiate_component(c, spec, &args, last_key(spec));
		st = m != NULL ? FV_OK : fv_errcode();
	}
	if (st == FV_OK) {
		st = c->data_step(m, &in, out);
		if (st == FV_OK && *out == NULL)
			st = fv_error_at(t, FV_ERR_PLUGIN, "%s: data step '%s' returned no value",
			                 fv_node_keypath(t), name);
	}
	fv_module_free(m);
	fv_dvalue_free(in.values);
	return st;
}

static fv_status eval_scalar(const fv_config_node *n, fv_dvalue **out)
{
	const char *s = fv_node_text(n);
	char *end = NULL;
	double x = s != NULL && s[0] != '\0' ? strtod(s, &end) : 0.0;
	if (fv_node_is_null(n))
		*out = fv_dvalue_null();
	else if (end != NULL && *end == '\0')
		*out = fv_dvalue_number(x);
	else
		*out = fv_dvalue_text(s);
	return *out != NULL ? FV_OK : fv_errcode();
}

/* A list or a map without _target_: item by item, as Hydra passes them. */
static fv_status eval_container(fv_registry *reg, const fv_config_node *n, int depth,
                                fv_dvalue **out)
{
	bool is_map = fv_node_kind(n) == FV_NODE_MAP;
	fv_dvalue *v = is_map ? fv_dvalue_map(NULL) : fv_dvalue_list();
	fv_status st = v != NULL ? FV_OK : fv_errcode();
	for (size_t i = 0; st == FV_OK && i < fv_node_size(n); i++) {
		fv_dvalue *item = NULL;
		st = eval_node(reg, fv_node_at(n, i), depth + 1, &item);
		if (st == FV_OK)
			st = is_map ? fv_dvalue_set(v, fv_node_key_at(n, i), item)
			            : fv_dvalue_append(v, item);
	}
	if (st != FV_OK) {
		fv_dvalue_free(v);
		return st;
	}
	*out = v;
	return FV_OK;
}

static fv_status eval_node(fv_registry *reg, const fv_config_node *n, int depth, fv_dvalue **out)
{
	*out = NULL;
	if (depth > MAX_DEPTH)
		return fv_error_at(n, FV_ERR_CONFIG, "%s: data steps nested more than %d deep",
		                   fv_node_keypath(n), MAX_DEPTH);
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL: *out = fv_dvalue_null(); return *out != NULL ? FV_OK : fv_errcode();
	case FV_NODE_SCALAR: return eval_scalar(n, out);
	case FV_NODE_SEQ: return eval_container(reg, n, depth, out);
	case FV_NODE_MAP:
		return fv_node_get(n, "_target_") != NULL ? run_step(reg, n, depth, NULL, out)
		                                         : eval_container(reg, n, depth, out);
	}
	return fv_error_at(n, FV_ERR_CONFIG, "%s: not a value", fv_node_keypath(n));
}

fv_status fv_data_eval(fv_registry *reg, const fv_config_node *spec, fv_dvalue **out)
{
	if (out == NULL)
		return fv_error(FV_ERR_ARG, "fv_data_eval: no place for the value");
	*out = NULL;
	if (reg == NULL || spec == NULL)
		return fv_error(FV_ERR_ARG, "fv_data_eval: no registry or no spec");
	return eval_node(reg, spec, 0, out);
}

fv_status fv_data_eval_with(fv_registry *reg, const fv_config_node *spec, size_t n,
                            const char *const *keys, const fv_dvalue *const *values,
                            fv_dvalue **out)
{
	if (out == NULL)
		return fv_error(FV_ERR_ARG, "fv_data_eval_with: no place for the value");
	*out = NULL;
	if (reg == NULL || spec == NULL || (n > 0 && (keys == NULL || values == NULL)))
		return fv_error(FV_ERR_ARG, "fv_data_eval_with: no registry, spec or inputs");
	const fv_config_node *t = fv_node_get(spec, "_target_");
	if (fv_node_kind(spec) != FV_NODE_MAP || t == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s: expected a map with _target_ naming a "
		                   "data step", fv_node_keypath(spec));
	fv_data_inputs extra = {.n_extra = n, .extra_keys = keys, .extra_values = values};
	return run_step(reg, spec, 0, &extra, out);
}
