/*
** data_open_config.c: a training config's data set, whichever reader its
** `data_io` names.  openretina's train script calls data_io.stimuli and
** data_io.responses (hydra.utils.call) and hands their values to the
** dataloader function; fovea does the same through the registry's data
** steps, except for the generic HDF5 layout, which fv_data_open() reads
** directly (lazily, file by file) as it always has.
*/
#include <string.h>

#include "data/data_internal.h"
#include "fovea/data_plugin.h"

/* openretina's generic dataloader, which fovea runs itself
** (fv_data_open_values) with the dataloader section's options. */
static bool is_builtin_loader(const char *name)
{
	return name == NULL || strcmp(name, "multiple_movies_dataloaders") == 0 ||
	       strcmp(name, "openretina.data_io.base_dataloader.multiple_movies_dataloaders") == 0;
}

/* Every _target_ under n is one of the generic HDF5 reader's. */
static bool only_generic(const fv_config_node *n, int depth)
{
	if (depth > 32)
		return false;
	if (fv_node_kind(n) == FV_NODE_MAP) {
		const char *name = fv_node_text(fv_node_get(n, "_target_"));
		if (name != NULL && !fv__data_is_generic_target(name))
			return false;
	}
	for (size_t i = 0; i < fv_node_size(n); i++)
		if (!only_generic(fv_node_at(n, i), depth + 1))
			return false;
	return true;
}

static fv_status open_generic(const fv_config_node *io, const fv_config_node *dl, fv_data **out)
{
	fv_data_options o;
	fv_data_options_default(&o);
	fv_status rc = fv_data_options_from_config(&o, io, dl);
	if (rc == FV_OK && o.data_dir == NULL)
		rc = fv_error(FV_ERR_CONFIG, "no data directory: set paths.data_dir (used by "
		              "data_io.stimuli.base_data_path)");
	return rc == FV_OK ? fv_data_open(&o, out) : rc;
}

static fv_status eval_key(fv_registry *reg, const fv_config_node *io, const char *key,
                          fv_dvalue **out)
{
	const fv_config_node *spec = fv_node_get(io, key);
	if (spec == NULL || fv_node_is_null(spec))
		return fv_error_at(io, FV_ERR_CONFIG, "data_io.%s: missing; openretina's train script "
		                   "calls data_io.stimuli and data_io.responses", key);
	return fv_data_eval(reg, spec, out);
}

/* hydra.utils.instantiate(cfg.dataloader, neuron_data_dictionary=...,
** movies_dictionary=...), then its DataLoaders as the data set. */
static fv_status run_loader(fv_registry *reg, const fv_config_node *dl, const fv_dvalue *movies,
                            const fv_dvalue *responses, fv_data **out)
{
	static const char *const keys[] = {"neuron_data_dictionary", "movies_dictionary"};
	const fv_dvalue *values[] = {responses, movies};
	fv_dvalue *loaders = NULL;
	fv_status rc = fv_data_eval_with(reg, dl, 2, keys, values, &loaders);
	return rc == FV_OK ? fv_data_from_loaders(loaders, responses, movies, out) : rc;
}

fv_status fv_data_open_config(fv_registry *reg, const fv_config_node *root, fv_data **out)
{
	*out = NULL;
	const fv_config_node *io = fv_node_get(root, "data_io");
	const fv_config_node *dl = fv_node_get(root, "dataloader");
	const char *loader = fv_node_text(fv_node_get(dl, "_target_"));
	if ((io == NULL || only_generic(io, 0)) && !is_builtin_loader(loader)) {
		fv_status rc = reg != NULL ? fv__data_check_targets(reg, dl, 0) : FV_OK;
		return rc != FV_OK ? rc : fv_error_at(fv_node_get(dl, "_target_"), FV_ERR_CONFIG,
		                                      "dataloader._target_: '%s' takes the values of "
		                                      "data steps; the generic HDF5 reader's data goes "
		                                      "through multiple_movies_dataloaders", loader);
	}
	if (io == NULL || only_generic(io, 0))
		return open_generic(io, dl, out);
	if (reg == NULL)
		return fv_error(FV_ERR_ARG, "fv_data_open_config: data_io names data steps, but no "
		                "registry was given to find them in");
	fv_data_options o;
	fv_data_options_default(&o);
	fv_status rc = fv__data_check_targets(reg, io, 0);
	if (rc == FV_OK && !is_builtin_loader(loader))
		rc = fv__data_check_targets(reg, dl, 0);
	if (rc == FV_OK && is_builtin_loader(loader))
		rc = fv_data_options_from_config(&o, NULL, dl);
	fv_dvalue *movies = NULL, *responses = NULL;
	if (rc == FV_OK)
		rc = eval_key(reg, io, "stimuli", &movies);
	if (rc == FV_OK)
		rc = eval_key(reg, io, "responses", &responses);
	if (rc == FV_OK)
		rc = is_builtin_loader(loader) ? fv_data_open_values(&o, movies, responses, out)
		                               : run_loader(reg, dl, movies, responses, out);
	fv_dvalue_free(movies);
	fv_dvalue_free(responses);
	return rc;
}
