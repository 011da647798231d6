/*
** objective_common.h: what openretina's AbstractObjective gives every
** objective, shared by the objective plugins (compiled into each):
** the model's response with the batch dim squeezed, the response reducer
** as a child module built through the registry, and neuron selection.
*/
#ifndef FOVEA_PLUGIN_OBJECTIVE_COMMON_H
#define FOVEA_PLUGIN_OBJECTIVE_COMMON_H

#include <fovea/insilico.h>
#include <fovea/plugin.h>

/* Instantiate `spec` (a map with _target_ naming a REDUCER) as m's child
** "response_reducer"; *out gets it (owned by m). */
fv_status obj_build_reducer(fv_module *m, const char *who, const fv_config_node *spec,
                            const fv_build_args *args, fv_module **out);

/* responses = model(stimulus, data_key).squeeze(0), as
** AbstractObjective.model_forward. */
fv_tensor *obj_model_forward(fv_ctx *ctx, const char *who, fv_model *model, fv_tensor *stimulus,
                             const char *data_key);

/* The reducer's forward of x. */
fv_tensor *obj_reduce(fv_ctx *ctx, const char *who, fv_module *reducer, fv_tensor *x);

/* x.index_select(axis, idx), negative indices counted from the end as
** Python does; an index out of range is an error naming `who`, `what`
** ("neuron") and the size. */
fv_tensor *obj_select(fv_ctx *ctx, const char *who, const char *what, fv_tensor *x, int axis,
                      size_t n, const int64_t *idx);

/* A list of integers from a YAML sequence (or a single integer), copied
** into a malloc'd array; `key` names it in messages. */
fv_status obj_int_list(const fv_config_node *node, const char *who, const char *key,
                       int64_t **out, size_t *n);

#endif
