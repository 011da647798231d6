/*
** no_entry.c: a test shared object that is not a plugin: it exports a
** function, but not fv_plugin_entry.
*/
#include <fovea/plugin.h>

FV_PLUGIN_EXPORT int not_the_entry_point(void);

FV_PLUGIN_EXPORT int not_the_entry_point(void)
{
	return 42;
}
