/*
** plugin_internal.h: what the plugin area's files (registry, module,
** instantiate, options) share.
*/
#ifndef FOVEA_PLUGIN_INTERNAL_H
#define FOVEA_PLUGIN_INTERNAL_H

#include "fovea/plugin.h"

typedef struct fv_component fv_component;
typedef struct fv_module fv_module;

/* Whether component `c` declares `field`: a plugin built against an older,
** shorter fv_component lacks the fields added since.  Components reach the
** framework through the registry's full-size copies, but
** fv_instantiate_component() also takes a plugin's own descriptor. */
#define FV__HAS_FIELD(c, field) \
	((c)->struct_size >= offsetof(fv_component, field) + sizeof((c)->field))
/* A callback slot that exists and is set. */
#define FV__HAS_SLOT(c, slot) (FV__HAS_FIELD(c, slot) && (c)->slot != NULL)

/* The size of the private state the framework allocates for `c`, 0 for a
** component of the 1.0 kind (options_size, state of its own). */
static inline size_t fv__priv_size(const fv_component *c)
{
	return FV__HAS_FIELD(c, priv_size) ? c->priv_size : 0;
}

/* An empty module of component `c` (training mode, no priv); `name` is its
** instance name, used in messages until a parent adopts it. */
fv_module *fv__module_new(const fv_component *c, const char *name);
/* Give m the private state `priv` (allocated with fv__malloc and parsed by
** fv__options_parse_owned): fv_module_free() releases it. */
void fv__module_own_priv(fv_module *m, void *priv);

/* fv_options_parse into a zero-filled struct that owns its strings: STRING
** and ENUM values are copies, so they outlive the configuration.  On
** failure everything parsed so far is released. */
fv_status fv__options_parse_owned(const fv_option *table, const fv_config_node *map, void *opts,
                                  const char *what);
/* Free the lists and the copied strings of such a struct. */
void fv__options_release(const fv_option *table, void *opts);
/* Set the NODE options of `opts` to NULL: they point into a configuration
** that the module outlives. */
void fv__options_drop_nodes(const fv_option *table, void *opts);

#endif /* FOVEA_PLUGIN_INTERNAL_H */
