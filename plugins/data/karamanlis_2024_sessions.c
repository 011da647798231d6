/*
** karamanlis_2024_sessions.c: the session folders of base_data_path and
** the files in them, as load_all_stimuli / load_all_responses list them:
** entries that are folders or end in .zip and contain the species name,
** archives unpacked (unzip_and_cleanup) when a session is read.
*/
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_files.h"
#include "karamanlis_2024.h"

void kara_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool kara_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

typedef bool (*entry_filter)(const char *dir, const char *name, const char *arg);

/* The entries of `dir` that `keep` accepts, sorted (os.listdir's order is
** the file system's; fovea's is reproducible). */
static fv_status list_dir(const char *dir, entry_filter keep, const char *arg, char ***names,
                          size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: not a readable folder", dir);
	size_t cap = 0;
	fv_status rc = FV_OK;
	for (struct dirent *e; rc == FV_OK && (e = readdir(d)) != NULL;) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    !keep(dir, e->d_name, arg))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			char **grown = realloc(*names, cap * sizeof *grown);
			if (grown == NULL)
				rc = fv_error(FV_ERR_NOMEM, "out of memory listing %s", dir);
			else
				*names = grown;
		}
		if (rc == FV_OK && ((*names)[*n] = strdup(e->d_name)) != NULL)
			(*n)++;
		else if (rc == FV_OK)
			rc = fv_error(FV_ERR_NOMEM, "out of memory listing %s", dir);
	}
	closedir(d);
	if (rc != FV_OK) {
		kara_names_free(*names, *n);
		*names = NULL;
		*n = 0;
		return rc;
	}
	if (*n > 1)
		qsort(*names, *n, sizeof **names, by_name);
	return FV_OK;
}

static bool is_session(const char *dir, const char *name, const char *specie)
{
	if (strstr(name, specie) == NULL)
		return false;
	if (kara_ends_with(name, ".zip"))
		return true;
	char *path = fv_data_join(dir, name);
	struct stat st;
	bool folder = path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	free(path);
	return folder;
}

fv_status kara_sessions(const char *base, const char *specie, char ***names, size_t *n)
{
	fv_status rc = list_dir(base, is_session, specie, names, n);
	if (rc == FV_OK && *n == 0)
		rc = fv_error(FV_ERR_NOTFOUND, "No data directories found in %s for animal %s. "
		              "Please check the path and the animal species provided, and that you "
		              "un-archived the data files.", base, specie);
	return rc;
}

fv_status kara_session_dir(const char *base, const char *name, char **dir)
{
	char *path = fv_data_join(base, name);
	if (path == NULL || !kara_ends_with(name, ".zip")) {
		*dir = path;
		return path != NULL ? FV_OK : fv_errcode();
	}
	fv_status rc = fv_data_unzip(path, dir);
	free(path);
	return rc;
}

static bool has_suffix(const char *dir, const char *name, const char *suffix)
{
	(void)dir;
	return kara_ends_with(name, suffix);
}

fv_status kara_find(const char *dir, const char *suffix, char ***names, size_t *n)
{
	return list_dir(dir, has_suffix, suffix, names, n);
}

/* base_data_path as get_local_file_path resolves it (a nested step's text
** value, or the text given). */
static fv_status base_path(const char *base_data_path, const fv_data_inputs *in, char **out)
{
	const fv_config_node *spec = fv_data_input_spec(in);
	const fv_dvalue *v = fv_data_input(in, "base_data_path");
	const char *path = v != NULL ? fv_dvalue_text_of(v) : base_data_path;
	if (path == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.base_data_path: expected a path",
		                   fv_node_keypath(spec));
	fv_status rc = fv_data_local_path(path, NULL, out);
	if (rc != FV_OK)
		fv_error_at(spec, rc, "%s.base_data_path: %s", fv_node_keypath(spec), fv_errmsg());
	return rc;
}

fv_status kara_load_sessions(const char *base_data_path, const char *specie,
                             fv_data_inputs *in, kara_session_loader load, const void *opt,
                             fv_dvalue **out)
{
	char *base = NULL, **names = NULL;
	size_t n = 0;
	*out = NULL;
	fv_status rc = base_path(base_data_path, in, &base);
	if (rc == FV_OK)
		rc = kara_sessions(base, specie, &names, &n);
	fv_dvalue *all = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (rc == FV_OK && all == NULL)
		rc = fv_errcode();
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		char *dir = NULL;
		fv_dvalue *split = NULL;
		rc = kara_session_dir(base, names[i], &dir);
		if (rc == FV_OK)
			rc = load(dir, opt, &split);
		if (rc == FV_OK && split != NULL)
			rc = fv_dvalue_set(all, names[i], split);
		free(dir);
	}
	kara_names_free(names, n);
	free(base);
	if (rc != FV_OK) {
		fv_dvalue_free(all);
		return rc;
	}
	*out = all;
	return FV_OK;
}
