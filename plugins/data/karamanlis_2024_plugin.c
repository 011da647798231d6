/*
** karamanlis_2024_plugin.c: the karamanlis_2024 data steps as one plugin.
*/
#include "karamanlis_2024.h"

FV_PLUGIN_DEFINE("data-karamanlis-2024", &kara_stimuli_component, &kara_responses_component);
