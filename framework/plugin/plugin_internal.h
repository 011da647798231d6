/*
** plugin_internal.h: what the plugin area's files (registry, module,
** instantiate, options) share.
*/
#ifndef FOVEA_PLUGIN_INTERNAL_H
#define FOVEA_PLUGIN_INTERNAL_H

#include "fovea/plugin.h"

typedef struct fv_component fv_component;
typedef struct fv_module fv_module;
/* An empty module of component `c` (training mode, no priv); `name` is its
** instance name, used in messages until a parent adopts it. */
fv_module *fv__module_new(const fv_component *c, const char *name);

#endif /* FOVEA_PLUGIN_INTERNAL_H */
