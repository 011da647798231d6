/*
** hoefling.h: what the steps of openretina.data_io.hoefling_2024 share:
** the recording's constants, reading a field of a session's dict, and
** masking a session's neurons as openretina's _apply_mask_to_field does.
*/
#ifndef FOVEA_PLUGINS_HOEFLING_H
#define FOVEA_PLUGINS_HOEFLING_H

#include <stdbool.h>

#include <fovea/data_plugin.h>

/* constants.py */
#define HOEF_CLIP_LENGTH 150
#define HOEF_NUM_CLIPS 108

/* A session's array `key`, or NULL with an error naming the session, the
** key and the step (`what`), e.g. "filter_responses". */
const fv_tensor *hoef_array(const fv_dvalue *session, const char *name, const char *key,
                            const char *what);

/* Keep the neurons whose keep[i] is set in every neuron-indexed array of
** the session dict (1-D arrays, 2-D arrays along the axis of n_neurons
** entries; roi_mask and roi_coords stay): openretina's
** _apply_mask_to_field.  Errors as openretina's IndexError, naming the key. */
fv_status hoef_mask_session(fv_dvalue *session, const char *name, const bool *keep,
                            int64_t n_neurons);

/* The neurons of a session: its group_assignment's length. */
int64_t hoef_n_neurons(const fv_dvalue *session);

/* openretina's _apply_qi_mask then _clean_up_empty_fields over every
** session of `dict` (thresholds for d_qi and chirp_qi, "and" / "or"). */
fv_status hoef_apply_qi_mask(fv_dvalue *dict, double d_qi, double chirp_qi, bool logic_and);

/* Remove the sessions whose group_assignment is empty (_clean_up_empty_fields). */
void hoef_drop_empty(fv_dvalue *dict);

/* rc, its message prefixed with the file the step's data comes from (the
** first file_path under its spec), so that a bad key names its file. */
fv_status hoef_name_file(fv_status rc, const fv_config_node *spec);

#endif /* FOVEA_PLUGINS_HOEFLING_H */
