/*
** local_path.c: openretina.utils.file_utils.get_local_file_path: a local
** path (with ~ expanded) that must exist, or a remote file of the GIN or
** Hugging Face stores resolved to the cache directory, downloaded when it
** is not there yet and unpacked when it is a zip archive.  Shared by the
** get_local_file_path step and the readers that call it themselves
** (maheswaranathan_2023, goldin_2022, karamanlis_2024's base_data_path).
*/
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fovea/zoo.h>

#include "data_files.h"

#define GIN_BASE_URL "https://gin.g-node.org/"
#define HUGGINGFACE_BASE_URL "https://huggingface.co/"
#define HUGGINGFACE_FILE_URL "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/"

/* os.path.expanduser for "~" and "~/...". */
char *fv_data_expand_user(const char *path)
{
	const char *home = getenv("HOME");
	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home != NULL)
		return path[1] == '\0' ? strdup(home) : fv_data_join(home, path + 2);
	return strdup(path);
}

/* The last `keep` components of a URL path (optionally_download_from_url
** keeps two). */
static const char *last_components(const char *path, int keep)
{
	const char *p = path + strlen(path);
	while (p > path) {
		p--;
		if (*p == '/' && --keep == 0)
			return p + 1;
	}
	return path;
}

/* The cached copy of `rel` under `cache`, else `url` downloaded there;
** then unpacked when it is an archive. */
static fv_status fetch_to_cache(const char *cache, const char *rel, const char *url, char **out)
{
	char *path = NULL;
	fv_status rc = fv_data_find_cached(cache, rel, &path);
	if (rc == FV_OK && path == NULL) {
		path = fv_data_join(cache, rel);
		rc = path != NULL ? fv_data_make_parents(path) : fv_errcode();
		if (rc == FV_OK)
			rc = fv_download(url, path, NULL);
	}
	size_t n = path != NULL ? strlen(path) : 0;
	if (rc == FV_OK && n > 4 && strcmp(path + n - 4, ".zip") == 0) {
		char *unpacked = NULL;
		rc = fv_data_unzip(path, &unpacked);
		free(path);
		path = unpacked;
	}
	if (rc != FV_OK) {
		free(path);
		return rc;
	}
	*out = path;
	return FV_OK;
}

static fv_status resolve(const char *p, const char *cache, char **out)
{
	if (strncmp(p, GIN_BASE_URL, strlen(GIN_BASE_URL)) == 0)
		return fetch_to_cache(cache, last_components(p + strlen(GIN_BASE_URL), 2), p, out);
	if (strncmp(p, HUGGINGFACE_BASE_URL, strlen(HUGGINGFACE_BASE_URL)) == 0) {
		/* file_path.split("main/")[-1]: what follows the last "main/" */
		const char *rel = p;
		for (const char *m = strstr(p, "main/"); m != NULL; m = strstr(m + 1, "main/"))
			rel = m + strlen("main/");
		char *url = malloc(strlen(HUGGINGFACE_FILE_URL) + strlen(rel) + 1);
		if (url == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory");
		strcpy(url, HUGGINGFACE_FILE_URL);
		strcat(url, rel);
		fv_status rc = fetch_to_cache(cache, rel, url, out);
		free(url);
		return rc;
	}
	if (strncmp(p, "https://", 8) == 0)
		return fv_error(FV_ERR_CONFIG, "file_path '%s': only " GIN_BASE_URL " and "
		                HUGGINGFACE_BASE_URL " data storage are supported", p);
	char *local = fv_data_expand_user(p);
	struct stat st;
	if (local == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	if (stat(local, &st) != 0) {
		fv_status rc = fv_error(FV_ERR_NOTFOUND, "Local file path %s does not exist", local);
		free(local);
		return rc;
	}
	*out = local;
	return FV_OK;
}

fv_status fv_data_local_path(const char *file_path, const char *cache_folder, char **out)
{
	*out = NULL;
	char *cache = cache_folder != NULL ? fv_data_expand_user(cache_folder) : fv_zoo_cache_dir();
	fv_status rc = cache != NULL ? resolve(file_path, cache, out)
	                             : fv_error(FV_ERR_NOMEM, "out of memory");
	free(cache);
	return rc;
}
