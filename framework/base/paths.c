/*
** paths.c: what a path names, and making directories.  Config groups,
** plugin directories and model caches ask whether a path is a directory or
** a file; a broken symlink or a missing path answers "neither" rather than
** an error, because the callers decide what absence means.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>
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

fv_status fv__make_dirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return fv_error(FV_ERR_ARG, "directory name too long: %s", path);
	for (char *p = buf + 1;; p++) {
		bool end = *p == '\0';
		if (*p == '/' || end) {
			*p = '\0';
			if (buf[0] != '\0' && mkdir(buf, 0777) != 0 && errno != EEXIST)
				return fv_error(FV_ERR_IO, "cannot create the directory %s: %s", buf,
				                strerror(errno));
			if (end)
				break;
			*p = '/';
		}
	}
	if (!fv__is_dir(path))
		return fv_error(FV_ERR_IO, "%s exists and is not a directory", path);
	return FV_OK;
}
