/*
** data_files.h: what the files of the data_files plugin share: finding a
** remote file in openretina's cache directory and unpacking a zip archive
** there, as openretina.utils.file_utils does.
*/
#ifndef FOVEA_PLUGINS_DATA_FILES_H
#define FOVEA_PLUGINS_DATA_FILES_H

#include <fovea/fovea.h>

/* get_local_file_path: `file_path` itself (~ expanded) when local, which
** must exist; a GIN or Hugging Face file found in, else downloaded to,
** `cache_folder` (NULL: $OPENRETINA_CACHE_DIRECTORY, else
** ~/openretina_cache) and unpacked when a zip archive.  *out gets a
** malloc'd path. */
fv_status fv_data_local_path(const char *file_path, const char *cache_folder, char **out);

/* is_target_present: `rel` itself under `cache`, else the first entry under
** `cache` whose path ends in rel's parent plus rel's stem and whose own
** stem is rel's stem (a folder, or a file not ending in .metadata or
** .lock).  *out gets a malloc'd path, or NULL when nothing is there. */
fv_status fv_data_find_cached(const char *cache, const char *rel, char **out);

/* unzip_and_cleanup: unpack `zip_path` (one member: beside the archive;
** a single top folder named as the archive: into its directory; else into
** a folder named as the archive without .zip), remove the archive, and
** give the path of what it held (malloc'd) in *out.  Members that would
** land outside the target directory are refused. */
fv_status fv_data_unzip(const char *zip_path, char **out);

/* os.path.expanduser of "~" and "~/...": a malloc'd copy (NULL when out of
** memory). */
char *fv_data_expand_user(const char *path);

/* Make every directory of `path` up to its last '/'. */
fv_status fv_data_make_parents(const char *path);

/* a + "/" + b, malloc'd (NULL with the error set). */
char *fv_data_join(const char *a, const char *b);

#endif /* FOVEA_PLUGINS_DATA_FILES_H */
