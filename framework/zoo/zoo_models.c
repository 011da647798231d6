/*
** zoo_models.c: openretina's published models: their names, where
** openretina's cache keeps them, where they are downloaded from, and the
** resolution of a checkpoint argument that names one (see zoo.h).
**
** The table is openretina's _MODEL_NAME_TO_REMOTE_LOCATION
** (openretina/models/core_readout.py): every entry is a file of the
** Hugging Face dataset open-retina/open-retina.  openretina fetches it with
** hf_hub_download(local_dir=cache), which leaves it at cache/<file>; its
** next run finds it there (is_target_present) and downloads nothing.
** fovea reads and writes the same place.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/zoo.h"
#include "zoo/zoo_internal.h"

#define HF_ENDPOINT "https://huggingface.co"
#define HF_REPO "/datasets/open-retina/open-retina/resolve/main/"

static const fv_zoo_model models[] = {
	{"hoefling_2024_low_res", "model_checkpoints/2026-03-09/hoefling_2024_cnn_low_res.ckpt"},
	{"hoefling_2024_high_res", "model_checkpoints/2026-03-09/hoefling_2024_cnn_high_res.ckpt"},
	{"karamanlis_2024_mouse", "model_checkpoints/2026-03-09/karamanlis_2024_mouse.ckpt"},
	{"karamanlis_2024_marmoset", "model_checkpoints/2026-03-09/karamanlis_2024_marmoset.ckpt"},
	{"maheswaranathan_2023", "model_checkpoints/2026-03-09/maheswaranathan_2023.ckpt"},
	{"sridhar_2025", "model_checkpoints/2026-03-09/sridhar_2025.ckpt"},
	{"goldin_2022_axolotl", "model_checkpoints/2026-03-09/goldin_2022_axolotl.ckpt"},
	{"goldin_2022_mouse", "model_checkpoints/2026-03-09/goldin_2022_mouse.ckpt"},
	/* the model of the first bioRxiv version of openretina's paper */
	{"hoefling_2024_base_low_res", "model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt"},
};
#define N_MODELS (sizeof models / sizeof models[0])

size_t fv_zoo_count(void)
{
	return N_MODELS;
}

const fv_zoo_model *fv_zoo_at(size_t i)
{
	return i < N_MODELS ? &models[i] : NULL;
}

const fv_zoo_model *fv_zoo_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_MODELS; i++)
		if (strcmp(models[i].name, name) == 0)
			return &models[i];
	return NULL;
}

/* ---- places ------------------------------------------------------------------------- */

static char *joined(const char *a, const char *sep, const char *b)
{
	fv__text t = {0};
	fv__text_printf(&t, "%s%s%s", a, sep, b);
	return fv__text_take(&t, "a model's path");
}

char *fv_zoo_cache_dir(void)
{
	/* openretina: os.getenv("OPENRETINA_CACHE_DIRECTORY", ~/openretina_cache),
	** so a variable set to "" means the current directory */
	const char *env = getenv("OPENRETINA_CACHE_DIRECTORY");
	if (env != NULL)
		return fv__strdup(env[0] != '\0' ? env : ".");
	const char *home = getenv("HOME");
	return joined(home != NULL && home[0] != '\0' ? home : ".", "/", "openretina_cache");
}

char *fv_zoo_cached_path(const fv_zoo_model *m)
{
	char *dir = fv_zoo_cache_dir();
	char *path = dir != NULL ? joined(dir, "/", m->file) : NULL;
	free(dir);
	return path;
}

char *fv_zoo_url(const fv_zoo_model *m)
{
	const char *base = getenv("FOVEA_MODEL_BASE_URL");
	if (base != NULL && base[0] != '\0') {
		size_t n = strlen(base);
		return joined(base, base[n - 1] == '/' ? "" : "/", m->file);
	}
	const char *endpoint = getenv("HF_ENDPOINT");
	fv__text t = {0};
	if (endpoint == NULL || endpoint[0] == '\0')
		endpoint = HF_ENDPOINT;
	size_t n = strlen(endpoint);
	fv__text_printf(&t, "%.*s%s%s", (int)(n - (endpoint[n - 1] == '/')), endpoint, HF_REPO,
	                m->file);
	return fv__text_take(&t, "a model's URL");
}

/* ---- fetching ----------------------------------------------------------------------- */

/* mkdir -p of the directory part of `path`. */
static fv_status make_parents(const char *path)
{
	char *p = fv__strdup(path);
	if (p == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	fv_status rc = FV_OK;
	for (char *s = strchr(p + 1, '/'); rc == FV_OK && s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			rc = fv_error(FV_ERR_IO, "%s: cannot create the directory %s of the model cache: %s",
			              path, p, strerror(errno));
		*s = '/';
	}
	free(p);
	return rc;
}

static bool is_file(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Two processes fetching into one directory take turns: the second finds
** the first one's file instead of writing the same .part.  The lock is on
** the directory itself, so nothing is left behind in the cache. */
static int lock_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash != NULL ? fv__strndup(path, (size_t)(slash - path)) : fv__strdup(".");
	int fd = dir != NULL ? open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fv_error(dir ? FV_ERR_IO : FV_ERR_NOMEM, "%s: cannot lock the directory %s: %s", path,
		         dir ? dir : "", strerror(errno));
	free(dir);
	return fd;
}

char *fv_zoo_fetch(const fv_zoo_model *m, const fv_download_options *o)
{
	if (m == NULL) {
		fv_error(FV_ERR_ARG, "fv_zoo_fetch: the model is NULL");
		return NULL;
	}
	char *path = fv_zoo_cached_path(m);
	if (path == NULL || is_file(path))
		return path;
	char *url = fv_zoo_url(m);
	fv_status rc = url != NULL ? make_parents(path) : FV_ERR_NOMEM;
	int lock = rc == FV_OK ? lock_dir_of(path) : -1;
	if (rc == FV_OK && lock < 0)
		rc = fv_errcode();
	if (rc == FV_OK && !is_file(path)) { /* another process may have fetched it meanwhile */
		fv_download_options d = o != NULL ? *o : (fv_download_options){.progress = -1};
		if (d.label == NULL)
			d.label = m->name;
		if ((rc = fv_download(url, path, &d)) != FV_OK)
			fv_error_prefix("model %s: ", m->name);
	}
	if (lock >= 0)
		close(lock);
	free(url);
	if (rc != FV_OK) {
		free(path);
		return NULL;
	}
	return path;
}

/* ---- resolution ------------------------------------------------------------------- */

/* The length of the leading letters of `s` (an author's name). */
static size_t letters(const char *s)
{
	size_t n = 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
		n++;
	return n;
}

/* Up to four model names for a misspelt one: the closest by edit distance,
** then those starting with the same author ("hoefling"). */
static size_t suggestions(const char *name, const char *out[4])
{
	const char *names[N_MODELS];
	for (size_t i = 0; i < N_MODELS; i++)
		names[i] = models[i].name;
	size_t n = 0;
	const char *near = fv_closest_name(name, names, N_MODELS);
	if (near != NULL)
		out[n++] = near;
	size_t word = letters(name);
	for (size_t i = 0; i < N_MODELS && n < 4 && word >= 3; i++)
		if (names[i] != near && letters(names[i]) == word &&
		    strncmp(names[i], name, word) == 0)
			out[n++] = names[i];
	return n;
}

static fv_status unknown_model(const char *name)
{
	const char *near[4];
	size_t n = suggestions(name, near);
	bool plain = strchr(name, '.') == NULL;
	if (n == 0 && !plain)
		return FV_OK; /* a missing file: its reader says so */
	fv__text t = {0};
	fv__text_printf(&t, "%s: no such file, and no openretina model of that name", name);
	for (size_t i = 0; i < n; i++)
		fv__text_printf(&t, "%s'%s'", i == 0 ? "; did you mean " : i + 1 < n ? ", " : " or ",
		                near[i]);
	fv__text_printf(&t, "%s (`fovea models` lists the %zu models)", n ? "?" : "", N_MODELS);
	char *msg = fv__text_take(&t, "a message");
	fv_status rc = msg ? fv_error(FV_ERR_NOTFOUND, "%s", msg) : FV_ERR_NOMEM;
	free(msg);
	return rc;
}

fv_status fv_zoo_resolve(const char *name_or_path, const fv_download_options *o, char **local)
{
	if (local == NULL || name_or_path == NULL)
		return fv_error(FV_ERR_ARG, "fv_zoo_resolve: %s is NULL", local ? "the name" : "local");
	*local = NULL;
	const fv_zoo_model *m = fv_zoo_find(name_or_path);
	if (m != NULL) {
		*local = fv_zoo_fetch(m, o);
		return *local != NULL ? FV_OK : fv_errcode();
	}
	if (strchr(name_or_path, '/') != NULL || name_or_path[0] == '\0' ||
	    access(name_or_path, F_OK) == 0)
		return FV_OK;
	return unknown_model(name_or_path);
}
