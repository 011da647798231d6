/*
** dup_name.c: a test plugin claiming a name the example plugin already has
** (its alias, so the check covers every name, not only the first).
*/
#include <fovea/plugin.h>

static fv_status create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)m;
	(void)opts;
	(void)args;
	return FV_OK;
}

static const char *const names[] = {"DupNameReadout", "fovea.examples.LinearReadout", NULL};

static const fv_component dup = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = names,
	.doc = "a test component whose alias is already taken",
	.create = create,
};

static const fv_component *const components[] = {&dup};

static const fv_plugin plugin = {
	.abi_major = FV_ABI_MAJOR,
	.abi_minor = FV_ABI_MINOR,
	.name = "test-dup-name",
	.n_components = 1,
	.components = components,
};

FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void)
{
	return &plugin;
}
