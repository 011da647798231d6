/*
** bad_abi.c: a test plugin from an incompatible fovea (ABI 99.3).  The
** registry must refuse it, naming the file and both versions.
*/
#include <fovea/plugin.h>

static const fv_plugin plugin = {
	.abi_major = 99,
	.abi_minor = 3,
	.name = "test-bad-abi",
};

FV_PLUGIN_EXPORT const fv_plugin *fv_plugin_entry(void)
{
	return &plugin;
}
