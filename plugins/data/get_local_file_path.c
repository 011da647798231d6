/*
** get_local_file_path.c: openretina.utils.file_utils.get_local_file_path
** as a data step: a local path (with ~ expanded) that must exist, or a
** remote file of the GIN or Hugging Face stores resolved to the cache
** directory (paths.cache_dir), downloaded when it is not there yet and
** unpacked when it is a zip archive.  Its value is the path, as text.
*/
#include <stdlib.h>

#include <fovea/data_plugin.h>

#include "data_files.h"

typedef struct local_file {
	const char *file_path;
	const char *cache_folder;
} local_file;

static const fv_option local_file_options[] = {
	FV_OPT("file_path", STRING, local_file, file_path, NULL,
	       "a local path, or a file of the GIN or Hugging Face data stores",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("cache_folder", STRING, local_file, cache_folder, "null",
	       "where remote files are kept (null: $OPENRETINA_CACHE_DIRECTORY, else "
	       "~/openretina_cache)", .flags = FV_OPT_NULLABLE),
	{0},
};

static fv_status local_file_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const local_file *o = fv_module_priv(m);
	char *path = NULL;
	fv_status rc = fv_data_local_path(o->file_path, o->cache_folder, &path);
	if (rc != FV_OK)
		return fv_error_at(fv_data_input_spec(in), rc, "%s: %s",
		                   fv_node_keypath(fv_data_input_spec(in)), fv_errmsg());
	*out = fv_dvalue_text(path);
	free(path);
	return *out != NULL ? FV_OK : fv_errcode();
}

static const char *const local_file_names[] = {
	"get_local_file_path", "openretina.utils.file_utils.get_local_file_path", NULL,
};

static const fv_component local_file_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = local_file_names,
	.doc = "the local path of a data file, remote ones through the cache directory",
	.options = local_file_options,
	.priv_size = sizeof(local_file),
	.data_step = local_file_step,
};

FV_PLUGIN_DEFINE("data-files", &local_file_component);
