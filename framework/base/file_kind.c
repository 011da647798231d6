/*
** file_kind.c: is a path a directory or a regular file?  Config groups,
** plugin directories and model caches all ask, and a broken symlink or a
** missing path answers "neither" rather than an error: the callers decide
** what absence means.
*/
#include <sys/stat.h>

#include "base/base_internal.h"

bool fv__is_dir(const char *path)
{
	struct stat st;
	return path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fv__is_file(const char *path)
{
	struct stat st;
	return path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
