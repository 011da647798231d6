/*
** cached_file.c: openretina's is_target_present: is a remote file, or
** what its archive unpacked to, already in the cache directory?
**
** The file itself at cache/rel wins.  Otherwise openretina globs
** cache.rglob(parent/stem + "*") and keeps matches whose own stem is the
** file's stem: "responses/rgc.zip" is also found as the unpacked
** "responses/rgc" folder or "responses/rgc.h5" file, at any depth.
*/
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_files.h"

char *fv_data_join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 2);
	if (s == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory for a path");
		return NULL;
	}
	memcpy(s, a, na);
	s[na] = '/';
	memcpy(s + na + 1, b, nb + 1);
	return s;
}

fv_status fv_data_make_parents(const char *path)
{
	char *dir = strdup(path);
	if (dir == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory for a path");
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		struct stat st;
		if (stat(dir, &st) != 0 && mkdir(dir, 0777) != 0) {
			fv_status rc = fv_error(FV_ERR_IO, "cannot create the directory '%s'", dir);
			free(dir);
			return rc;
		}
		*p = '/';
	}
	free(dir);
	return FV_OK;
}

/* Path.stem of the last component: without its last suffix. */
static size_t stem_length(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot != NULL && dot != name ? (size_t)(dot - name) : strlen(name);
}

/* nftw gives no user pointer: the search's state, one search at a time. */
static struct {
	const char *pattern; /* parent/stem, relative */
	size_t pattern_len, stem_len;
	const char *stem;
	size_t cache_len;
	char *found;
} search;

static bool ends_with_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	return n >= k && strcmp(name + n - k, suffix) == 0;
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0;
	const char *name = path + ftw->base;
	if (stem_length(name) != search.stem_len || strncmp(name, search.stem, search.stem_len) != 0)
		return 0;
	/* the path relative to the cache ends with parent/stem..., and that
	** suffix starts at a component boundary (rglob's pattern) */
	const char *rel = path + search.cache_len + 1;
	size_t rel_prefix = (size_t)(name - rel);
	size_t parent_len = search.pattern_len - search.stem_len;
	if (rel_prefix < parent_len ||
	    strncmp(name - parent_len, search.pattern, parent_len) != 0 ||
	    (rel_prefix > parent_len && name[-(long)parent_len - 1] != '/'))
		return 0;
	bool is_dir = type == FTW_D || type == FTW_DP;
	if (!is_dir && (ends_with_suffix(name, ".metadata") || ends_with_suffix(name, ".lock")))
		return 0;
	search.found = strdup(path);
	return 1; /* the first match, in walk order */
}

fv_status fv_data_find_cached(const char *cache, const char *rel, char **out)
{
	*out = NULL;
	char *direct = fv_data_join(cache, rel);
	if (direct == NULL)
		return fv_errcode();
	struct stat st;
	if (stat(direct, &st) == 0) {
		*out = direct;
		return FV_OK;
	}
	free(direct);
	if (stat(cache, &st) != 0)
		return FV_OK;
	const char *base = strrchr(rel, '/');
	base = base != NULL ? base + 1 : rel;
	search.stem = base;
	search.stem_len = stem_length(base);
	search.pattern = rel;
	search.pattern_len = (size_t)(base - rel) + search.stem_len;
	search.cache_len = strlen(cache);
	search.found = NULL;
	nftw(cache, visit, 16, FTW_PHYS);
	*out = search.found;
	return FV_OK;
}
