/*
** unzip.c: openretina's unzip_and_cleanup with libzip.  Where the members
** go depends on what the archive holds (see data_files.h); the archive is
** removed afterwards, as openretina removes it, so the cache holds each
** data set once.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "data_files.h"

/* A member name that stays inside the directory it is unpacked into. */
static bool safe_member(const char *name)
{
	if (name[0] == '/' || name[0] == '\0')
		return false;
	for (const char *p = name; *p != '\0';) {
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
			return false;
		const char *slash = strchr(p, '/');
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return true;
}

static fv_status extract_member(zip_t *za, zip_int64_t i, const char *name, const char *dir,
                                const char *zip_path)
{
	char *path = fv_data_join(dir, name);
	if (path == NULL)
		return fv_errcode();
	fv_status rc = fv_data_make_parents(path);
	size_t n = strlen(name);
	if (rc == FV_OK && n > 0 && name[n - 1] == '/') { /* a folder entry */
		free(path);
		return FV_OK;
	}
	zip_file_t *zf = rc == FV_OK ? zip_fopen_index(za, (zip_uint64_t)i, 0) : NULL;
	FILE *f = zf != NULL ? fopen(path, "wb") : NULL;
	if (rc == FV_OK && f == NULL)
		rc = fv_error(FV_ERR_IO, "%s: cannot extract '%s' to '%s'", zip_path, name, path);
	char buf[1 << 16];
	zip_int64_t got;
	while (rc == FV_OK && (got = zip_fread(zf, buf, sizeof buf)) > 0)
		if (fwrite(buf, 1, (size_t)got, f) != (size_t)got)
			rc = fv_error(FV_ERR_IO, "%s: cannot write '%s'", zip_path, path);
	if (rc == FV_OK && got < 0)
		rc = fv_error(FV_ERR_FORMAT, "%s: member '%s' is damaged: %s", zip_path, name,
		              zip_file_strerror(zf));
	if (f != NULL && fclose(f) != 0 && rc == FV_OK)
		rc = fv_error(FV_ERR_IO, "%s: cannot write '%s'", zip_path, path);
	if (zf != NULL)
		zip_fclose(zf);
	free(path);
	return rc;
}

/* The first path component of a member name (its length). */
static size_t top_length(const char *name)
{
	const char *slash = strchr(name, '/');
	return slash != NULL ? (size_t)(slash - name) : strlen(name);
}

/* Where the members go and what the caller gets back. */
static fv_status choose_target(zip_t *za, zip_int64_t n, const char *zip_path, char **dir,
                               char **result)
{
	size_t len = strlen(zip_path);
	char *stem_path = strndup(zip_path, len - (len > 4 && strcmp(zip_path + len - 4, ".zip") == 0
	                                            ? 4 : 0));
	const char *slash = strrchr(zip_path, '/');
	char *parent = slash != NULL ? strndup(zip_path, (size_t)(slash - zip_path)) : strdup(".");
	if (stem_path == NULL || parent == NULL) {
		free(stem_path);
		free(parent);
		return fv_error(FV_ERR_NOMEM, "out of memory for a path");
	}
	const char *stem = strrchr(stem_path, '/') != NULL ? strrchr(stem_path, '/') + 1 : stem_path;
	if (n == 1) { /* one file: beside the archive */
		*result = fv_data_join(parent, zip_get_name(za, 0, 0));
		*dir = parent;
		free(stem_path);
		return *result != NULL ? FV_OK : fv_errcode();
	}
	bool one_top_named_as_zip = n > 0;
	for (zip_int64_t i = 0; i < n && one_top_named_as_zip; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
		one_top_named_as_zip = top_length(name) == strlen(stem) &&
		                       strncmp(name, stem, strlen(stem)) == 0;
	}
	*result = stem_path; /* openretina returns the archive's path without .zip */
	if (one_top_named_as_zip) {
		*dir = parent;
	} else {
		free(parent);
		*dir = strdup(stem_path);
	}
	return *dir != NULL ? FV_OK : fv_error(FV_ERR_NOMEM, "out of memory for a path");
}

fv_status fv_data_unzip(const char *zip_path, char **out)
{
	*out = NULL;
	int err = 0;
	zip_t *za = zip_open(zip_path, ZIP_RDONLY, &err);
	if (za == NULL) {
		zip_error_t ze;
		zip_error_init_with_code(&ze, err);
		fv_status rc = fv_error(FV_ERR_FORMAT, "%s: not a readable zip archive: %s", zip_path,
		                        zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return rc;
	}
	zip_int64_t n = zip_get_num_entries(za, 0);
	fv_status rc = FV_OK;
	for (zip_int64_t i = 0; rc == FV_OK && i < n; i++)
		if (!safe_member(zip_get_name(za, (zip_uint64_t)i, 0)))
			rc = fv_error(FV_ERR_FORMAT, "%s: member '%s' would be unpacked outside its "
			              "folder", zip_path, zip_get_name(za, (zip_uint64_t)i, 0));
	char *dir = NULL, *result = NULL;
	if (rc == FV_OK && n == 0)
		rc = fv_error(FV_ERR_FORMAT, "%s: the archive is empty", zip_path);
	if (rc == FV_OK)
		rc = choose_target(za, n, zip_path, &dir, &result);
	for (zip_int64_t i = 0; rc == FV_OK && i < n; i++)
		rc = extract_member(za, i, zip_get_name(za, (zip_uint64_t)i, 0), dir, zip_path);
	zip_discard(za);
	free(dir);
	if (rc == FV_OK && unlink(zip_path) != 0)
		rc = fv_error(FV_ERR_IO, "%s: cannot remove the archive after unpacking it", zip_path);
	if (rc != FV_OK) {
		free(result);
		return rc;
	}
	*out = result;
	return FV_OK;
}
