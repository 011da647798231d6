/*
** multi.h: what the three files of the multi-session readout plugin share:
** multi.c (the containers), multi_yaml.c (writing a session's derived spec
** as YAML) and cloned.c (ClonedReadout).
*/
#ifndef FOVEA_PLUGIN_MULTI_H
#define FOVEA_PLUGIN_MULTI_H

#include "readout_common.h"

/* A growing string; after a failed allocation every call is a no-op and
** `failed` stays set, so a sequence of appends is checked once. */
typedef struct sbuf {
	char *s;
	size_t len, cap;
	bool failed;
} sbuf;

void sb_printf(sbuf *b, const char *fmt, ...) FV_PRINTF(2, 3);

/* Append one parsed option value (the field at `field`) as flow YAML.
** Returns false, appending nothing, when there is nothing to pass on: an
** absent NODE option (the receiving readout's default applies) or a list. */
bool emit_option(sbuf *b, const fv_option *o, const void *field);

/* Append the entry `key` of a map NODE option (the field at `field`) as flow
** YAML: a per-session value such as spatial_filters_dict[key].  Returns
** false, appending nothing, when the map or the entry is missing. */
bool emit_entry(sbuf *b, const void *field, const char *key);

/* ClonedReadout; instantiated with fv_instantiate_component() and
** args->n_neurons, then given its source. */
extern const fv_component cloned_component;
void cloned_set_source(fv_module *clone, fv_module *source);

#endif
