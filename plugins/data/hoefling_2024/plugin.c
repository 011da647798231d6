/*
** plugin.c: the data steps of openretina.data_io.hoefling_2024, one .so.
*/
#include <fovea/data_plugin.h>

extern const fv_component hoef_movies_component;
extern const fv_component hoef_filter_component;
extern const fv_component hoef_final_component;
extern const fv_component hoef_natmov_component;

FV_PLUGIN_DEFINE("data-hoefling-2024", &hoef_movies_component, &hoef_filter_component,
                 &hoef_final_component, &hoef_natmov_component);
