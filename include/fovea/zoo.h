/*
** zoo.h: openretina's published models by name.
**
** openretina's `load_core_readout_from_remote(name)` knows nine trained
** models (its _MODEL_NAME_TO_REMOTE_LOCATION): "hoefling_2024_low_res",
** "karamanlis_2024_mouse", ...  fovea accepts those names wherever it takes
** a checkpoint (fv_checkpoint_open resolves them through fv_zoo_resolve).
**
** A name resolves to a file in openretina's own cache, laid out as
** openretina's Hugging Face download leaves it, so that files openretina
** has already downloaded are used as they are:
**   $OPENRETINA_CACHE_DIRECTORY/model_checkpoints/<date>/<file>.ckpt
** (default cache: ~/openretina_cache).  A model not in the cache is
** downloaded first (libcurl): to <file>.ckpt.part beside it, resumed from
** that partial file on the next attempt (an HTTP Range request), its size
** checked against what the server announced, then renamed into place, so
** the final name only ever holds a complete file.
**
** Where the files come from: https://huggingface.co/datasets/open-retina/
** open-retina/resolve/main/<file>; $HF_ENDPOINT replaces
** https://huggingface.co as it does for huggingface_hub, and
** $FOVEA_MODEL_BASE_URL replaces the whole prefix before <file> (a mirror,
** or a local server in tests).
*/
#ifndef FOVEA_ZOO_H
#define FOVEA_ZOO_H

#include <stdint.h>
#include <stdio.h>

#include "fovea.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_zoo_model {
	const char *name; /* openretina's name, "hoefling_2024_low_res" */
	const char *file; /* its path in openretina's Hugging Face repository and in the
	                  ** cache: "model_checkpoints/2026-03-09/hoefling_2024_cnn_low_res.ckpt" */
} fv_zoo_model;

/* The models, in openretina's order; fv_zoo_at() is NULL past the end. */
FV_API size_t fv_zoo_count(void);
FV_API const fv_zoo_model *fv_zoo_at(size_t i);
/* The model called `name` (exactly), or NULL. */
FV_API const fv_zoo_model *fv_zoo_find(const char *name);

/* openretina's cache directory: $OPENRETINA_CACHE_DIRECTORY, else
** $HOME/openretina_cache.  The strings returned below are malloc'd (the
** caller frees them); NULL with the error set when out of memory. */
FV_API char *fv_zoo_cache_dir(void);
/* Where the model's file is (or would be) in the cache. */
FV_API char *fv_zoo_cached_path(const fv_zoo_model *m);
/* Where it is downloaded from (see the top of this file). */
FV_API char *fv_zoo_url(const fv_zoo_model *m);

/* How a download reports. */
typedef struct fv_download_options {
	int progress;      /* -1: a progress bar when `out` is a terminal; 0: none; 1: a bar */
	FILE *out;         /* the bar; NULL: stderr */
	const char *label; /* named on the bar; NULL: the file's name */
} fv_download_options;

/* Download `url` into `path`: through PATH.part (resumed when it exists),
** the size checked against the server's Content-Length or Content-Range,
** then renamed to `path`.  HTTP errors, network errors and a size mismatch
** are errors naming the URL and the file; a short transfer keeps PATH.part
** for the next attempt to resume.  `o` may be NULL (the defaults). */
FV_API fv_status fv_download(const char *url, const char *path, const fv_download_options *o);

/* The cached file of model `m`, downloaded first if absent (downloads of
** one cache directory wait for each other).  Returns the path (malloc'd)
** or NULL with the error set. */
FV_API char *fv_zoo_fetch(const fv_zoo_model *m, const fv_download_options *o);

/* What a checkpoint argument names.  For a model name *local gets its
** cached file, downloaded if need be (malloc'd); for anything else *local
** is NULL and FV_OK is returned, unless the argument is no existing file,
** has no '/', and could be a misspelt model name: then FV_ERR_NOTFOUND
** with the closest model names.  Names win over files, as in openretina. */
FV_API fv_status fv_zoo_resolve(const char *name_or_path, const fv_download_options *o,
                                char **local);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_ZOO_H */
