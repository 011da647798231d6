/*
** instantiate.c: turning a YAML map with `_target_` into a module.
**
** The steps are always the same, whatever the component: look the target up
** in the registry, parse the map against the component's option table
** (defaults, types, ranges, unknown keys: all the framework's job) straight
** into the module's private state of priv_size bytes, call create().  A
** component of ABI 1.0 (no priv_size) gets its options in a temporary
** struct of options_size instead, freed after create().  Whatever fails,
** the partly built module is freed and the message says which spec
** (file:line) and which component it was about.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/plugin.h"
#include "plugin/plugin_internal.h"
#include "base/base_internal.h"

static const fv_option no_options[] = {{0}};

static const char *node_kind_name(const fv_config_node *n)
{
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL: return "null";
	case FV_NODE_SCALAR: return "scalar";
	case FV_NODE_SEQ: return "list";
	case FV_NODE_MAP: return "map";
	}
	return "value";
}

/* The node to blame for a spec: the map itself, or, for a map that came
** from no single file (the root of a composed config), its _target_. */
static const fv_config_node *placed(const fv_config_node *n)
{
	if (n != NULL && fv_node_file(n) == NULL && fv_node_kind(n) == FV_NODE_MAP &&
	    fv_node_get(n, "_target_") != NULL)
		return fv_node_get(n, "_target_");
	return n;
}

/* Build args as this framework knows them, whatever the caller's size. */
static fv_build_args complete_args(const fv_build_args *args, const fv_config_node *spec)
{
	fv_build_args a = {0};
	if (args != NULL) {
		size_t n = args->struct_size;
		if (n == 0 || n > sizeof a)
			n = sizeof a;
		memcpy(&a, args, n);
	}
	a.struct_size = sizeof a;
	a.spec = spec;
	return a;
}

/* Prefix the current message with the spec's place unless it already
** starts with it (option errors name the exact key's line themselves). */
static void prefix_with_place(const fv_config_node *spec, const char *target, fv_status st)
{
	const char *file = fv_node_file(placed(spec));
	if (file != NULL && strncmp(fv_errmsg(), file, strlen(file)) == 0)
		return;
	fv_error_at(placed(spec), st, "%s: %s", target, fv_errmsg());
}

fv_module *fv_instantiate_component(const fv_component *c, const fv_config_node *spec,
                                    const fv_build_args *args, const char *name)
{
	if (c == NULL) {
		fv_error(FV_ERR_ARG, "fv_instantiate_component: no component given");
		return NULL;
	}
	const char *target = c->names[0];
	if (spec != NULL && fv_node_is_null(spec))
		spec = NULL; /* `readout: {_target_: X}` and `key:` with nothing both mean defaults */
	if (spec != NULL && fv_node_kind(spec) != FV_NODE_MAP) {
		fv_error_at(placed(spec), FV_ERR_CONFIG, "%s: options must be a map, got a %s", target,
		            node_kind_name(spec));
		return NULL;
	}
	size_t priv_size = fv__priv_size(c);
	size_t size = priv_size > 0 ? priv_size : c->options_size;
	void *opts = fv__calloc(1, size > 0 ? size : 1);
	if (opts == NULL) {
		fv_error_at(placed(spec), FV_ERR_NOMEM, "%s: out of memory for its %s", target,
		            priv_size > 0 ? "private state" : "options");
		return NULL;
	}
	const fv_option *table = c->options != NULL ? c->options : no_options;
	fv_status st = priv_size > 0 ? fv__options_parse_owned(table, spec, opts, target)
	                             : fv_options_parse(table, spec, opts, target, NULL);
	fv_module *m = NULL;
	if (st == FV_OK) {
		m = fv__module_new(c, name);
		st = m != NULL ? FV_OK : FV_ERR_NOMEM;
	}
	if (priv_size > 0 && m != NULL) {
		fv__module_own_priv(m, opts); /* freed with m from here on */
	} else if (priv_size > 0) {
		fv__options_release(table, opts); /* a no-op after a failed parse */
		free(opts);
	}
	if (st == FV_OK && c->create != NULL) {
		fv_build_args a = complete_args(args, spec);
		st = c->create(m, opts, &a);
	}
	/* A data step's module lives only for its call, inside the config's
	** lifetime, so its nested specs stay readable in data_step(). */
	if (priv_size > 0 && st == FV_OK && c->kind != FV_KIND_DATA) {
		fv__options_drop_nodes(table, opts);
	} else if (priv_size == 0) {
		fv_options_free(table, opts);
		free(opts);
	}
	if (st != FV_OK) {
		prefix_with_place(spec, target, st);
		fv_module_free(m);
		return NULL;
	}
	return m;
}

/* The instance name of a nested spec is its key ("readout" for
** model.readout); the topmost spec has none. */
static const char *last_key(const fv_config_node *spec)
{
	const char *path = fv_node_keypath(spec);
	if (path == NULL)
		return "";
	const char *dot = strrchr(path, '.');
	return dot != NULL ? dot + 1 : path;
}

fv_module *fv_instantiate(fv_registry *reg, const fv_config_node *spec, const fv_build_args *args)
{
	if (spec == NULL) {
		fv_error(FV_ERR_ARG, "fv_instantiate: no spec given");
		return NULL;
	}
	const char *key = fv_node_keypath(spec);
	if (key == NULL || key[0] == '\0')
		key = "(root)";
	if (fv_node_kind(spec) != FV_NODE_MAP) {
		fv_error_at(placed(spec), FV_ERR_CONFIG, "%s: expected a map with a _target_, got a %s",
		            key, node_kind_name(spec));
		return NULL;
	}
	const fv_config_node *t = fv_node_get(spec, "_target_");
	if (t == NULL) {
		fv_error_at(placed(spec), FV_ERR_CONFIG,
		            "%s: no _target_: cannot tell which component to build", key);
		return NULL;
	}
	const char *target = fv_node_text(t);
	if (target == NULL || fv_node_is_null(t)) {
		fv_error_at(t, FV_ERR_CONFIG, "%s._target_: expected a component name, got a %s", key,
		            node_kind_name(t));
		return NULL;
	}
	const fv_component *c = fv_registry_find(reg, target, NULL);
	if (c == NULL) {
		const char *near = fv_registry_closest(reg, target);
		if (near != NULL)
			fv_error_at(t, FV_ERR_NOTFOUND, "_target_: unknown component '%s'; did you mean '%s'?",
			            target, near);
		else if (fv_registry_size(reg) == 0)
			fv_error_at(t, FV_ERR_NOTFOUND,
			            "_target_: unknown component '%s' (no plugins are loaded)", target);
		else /* nothing close: say what there is instead of guessing */
			fv_error_at(t, FV_ERR_NOTFOUND,
			            "_target_: unknown component '%s'; no close match among the %zu loaded "
			            "component%s (`fovea plugins` lists them)", target, fv_registry_size(reg),
			            fv_registry_size(reg) == 1 ? "" : "s");
		return NULL;
	}
	fv_build_args a = complete_args(args, spec);
	if (a.registry == NULL)
		a.registry = reg;
	return fv_instantiate_component(c, spec, &a, last_key(spec));
}
