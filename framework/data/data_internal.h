/*
** data_internal.h: what the data_*.c files (and synthetic_data.c) share:
** the layout of an opened data set, a small HDF5 layer, and the random
** streams that reproduce openretina's shuffling (numpy's legacy MT19937
** and CPython's random module).
*/
#ifndef FOVEA_DATA_INTERNAL_H
#define FOVEA_DATA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/data.h"
#include "fovea/plugin.h"

/* ---- the opened data set (data_sessions.c, data_split.c, data_info.c) ---- */

/* A movie set and the memory behind its const pointers. */
typedef struct fv__movie_set {
	fv_movie_set pub;
	char *stimulus;
	fv_tensor *movie;
	bool movie_borrowed;          /* movie is another set's or the data set's */
	fv_tensor *responses;
	fv_tensor *by_trial;
	int64_t *starts;
} fv__movie_set;

/* A session as read from its file, before the split. */
typedef struct fv__session fv__session;

typedef struct fv__session_raw {
	fv_tensor *train_movie;       /* (C, T, H, W) normalised, non-test stimuli */
	/* An earlier session of the same training movie and frames: the split
	** borrows its training and validation movies (the validation clips
	** are the same) and train_movie may be NULL (fv__session_same_movie). */
	const fv__session *movies_from;
	double *train_responses;      /* (N, T) as stored, non-test stimuli */
	bool train_responses_f32;     /* every part was float32 (numpy's mean dtype) */
	int64_t n_train_frames;
	size_t n_test;
	char **test_names;
	fv_tensor **test_movies;      /* (C, T, H, W) */
	double **test_responses;      /* (N, T) */
	int64_t *test_frames;
	fv_tensor **test_by_trial;    /* (trials, T, N) or NULL */
} fv__session_raw;

struct fv__session {
	char *name;
	char *path;
	int64_t n_neurons;
	fv__movie_set train;
	fv__movie_set validation;
	size_t n_test;
	fv__movie_set *tests;
	int64_t *val_clips;
	size_t n_val_clips;
	fv_tensor *mean_activity;
	size_t n_info;
	char **info_names;
	fv_tensor **info;
	/* what the training movie was made of, for sharing it (NULL: its own) */
	char *movie_key;
	/* what the reader's filters removed (fv_data_filter) */
	size_t n_filters;
	char **filter_names;
	int64_t *filter_removed;
};

struct fv_data {
	char *dir;
	fv_data_options opt;          /* scalars only; pointers cleared */
	size_t n_sessions;
	fv__session *sessions;        /* sorted by name */
	/* Movies the sessions' sets borrow, e.g. a test movie every session
	** shows: read and normalised once (fv__data_share). */
	size_t n_shared;
	char **shared_keys;
	fv_tensor **shared;
	fv_data_info info;
	/* arrays behind info */
	const char **info_sessions;
	int64_t *info_n_neurons;
	fv_tensor **info_mean;
	size_t *info_n_extra;
	const char *const **info_extra_names;
	fv_tensor *const **info_extra;
};

/* Is `name` a step of openretina's generic HDF5 reader, which
** fv_data_open() runs itself (data_options.c)? */
bool fv__data_is_generic_target(const char *name);
const char *const *fv__data_generic_targets(size_t *n);
/* Every _target_ under n is a loaded data step or one of the generic
** reader's: else the error fv_data_eval() would give, before anything
** runs (data_eval.c). */
fv_status fv__data_check_targets(const fv_registry *reg, const fv_config_node *n, int depth);
/* The dataloader options and the normalisation, checked (data_sessions.c). */
fv_status fv__data_check_options(const fv_data_options *o);
/* Keep in d->opt what outlives the caller's options: the scalars. */
void fv__data_keep_options(fv_data *d, const fv_data_options *o);
/* Sort the sessions by name, set the input shape and build the info. */
fv_status fv__data_finish(fv_data *d, const int64_t input_shape[3]);
void fv__movie_set_free(fv__movie_set *s);
/* Bounded memory: sessions that show the same movies hold them once.
** fv__data_shared() finds a movie kept under `key` (NULL if none);
** fv__data_share() keeps `t` under `key` (taking it, freed on failure).
** fv__session_same_movie() is an earlier session than i of the same
** movie_key and training frames, whose movies session i can borrow
** (fv__session_raw.movies_from), or NULL. */
fv_tensor *fv__data_shared(const fv_data *d, const char *key);
fv_status fv__data_share(fv_data *d, const char *key, fv_tensor *t);
const fv__session *fv__session_same_movie(const fv_data *d, size_t i, int64_t frames);
/* After the split of session s from raw: raw forgets the movies the data
** set keeps (so freeing raw leaves them), and s's test sets showing them
** are marked as borrowing them. */
void fv__session_forget_shared(const fv_data *d, fv__session *s, fv__session_raw *raw);
void fv__session_raw_free(fv__session_raw *r);
/* Cut the raw session into train / validation / test sets (data_split.c). */
fv_status fv__session_split(fv__session *s, fv__session_raw *raw, const fv_data_options *o);
/* mean_activity and the info arrays (data_info.c). */
fv_status fv__session_mean_activity(fv__session *s, const fv__session_raw *raw);
fv_status fv__data_build_info(fv_data *d);
void fv__data_free_info(fv_data *d);

/* ---- HDF5 (data_hdf5.c) ------------------------------------------------------ */

/* An HDF5 dataset read as doubles. */
typedef struct fv__h5_array {
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	double *data;
	bool is_float32;
} fv__h5_array;

typedef int64_t fv__h5_id; /* hid_t */

/* libhdf5 prints its error stack by default; fovea reports through
** fv_errmsg instead.  Calls nest. */
void fv__h5_quiet_begin(void);
void fv__h5_quiet_end(void);

fv_status fv__h5_open(const char *path, fv__h5_id *file);
fv_status fv__h5_create(const char *path, fv__h5_id *file);
void fv__h5_close(fv__h5_id file);
/* Write `path` whole or not at all: `fill` writes the datasets into a
** new path.tmp (named `tmp` in messages), which is then renamed. */
typedef fv_status (*fv__h5_fill)(fv__h5_id file, const char *tmp, const void *ud);
fv_status fv__h5_write_file(const char *path, fv__h5_fill fill, const void *ud);
/* The names directly under `group` ("/" for the root), sorted; the caller
** frees them with fv__data_free_names(). */
fv_status fv__h5_list(fv__h5_id file, const char *path, const char *group, char ***names,
                      size_t *n);
bool fv__h5_is_dataset(fv__h5_id file, const char *name);
bool fv__h5_is_group(fv__h5_id file, const char *name);
/* A dataset of integer or float class (session_info may hold strings). */
bool fv__h5_is_numeric(fv__h5_id file, const char *name);
/* Read a numeric dataset (integer or float class); FV_ERR_FORMAT otherwise
** or when the file is damaged. `path` is for messages. */
fv_status fv__h5_read(fv__h5_id file, const char *path, const char *name, fv__h5_array *out);
void fv__h5_array_free(fv__h5_array *a);
/* Write a float64 / int64 dataset, creating intermediate groups. */
fv_status fv__h5_write_f64(fv__h5_id file, const char *path, const char *name, int ndim,
                           const int64_t *shape, const double *data);
fv_status fv__h5_write_i64(fv__h5_id file, const char *path, const char *name, int ndim,
                           const int64_t *shape, const int64_t *data);

void fv__data_free_names(char **names, size_t n);
/* Sorted (strcmp) names in a directory ending with `suffix` (or one of two). */
fv_status fv__data_list_dir(const char *dir, const char *suffix1, const char *suffix2, char ***names,
                       size_t *n);
char *fv__data_strdup(const char *s);
char *fv__data_path_join(const char *a, const char *b);

/* ---- synthetic data sets (synthetic_data.c, synthetic_openretina.c) ---------- */

/* Create DIR if missing and refuse one holding session files other than
** session_<k>.hdf5 for k < n_sessions: they would join the data set. */
fv_status fv__synthetic_check_target(const char *dir, int n_sessions);

/* ---- random streams (data_rng.c) ----------------------------------------------
** MT19937 as both numpy's legacy RandomState and CPython's random module use
** it; the seeding and the way integers are drawn differ and are both here. */

typedef struct fv__mt19937 {
	uint32_t key[624];
	int pos;
} fv__mt19937;

/* numpy.random.seed(s) / RandomState(s): init_genrand. */
void fv__mt_seed_numpy(fv__mt19937 *mt, uint32_t seed);
/* random.seed(s) for a non-negative int s < 2**64: init_by_array. */
void fv__mt_seed_python(fv__mt19937 *mt, uint64_t seed);
uint32_t fv__mt_next32(fv__mt19937 *mt);

/* numpy's legacy random_interval: uniform in [0, max] by masked rejection. */
uint64_t fv__np_interval(fv__mt19937 *mt, uint64_t max);
/* RandomState.randint(low, high, n) (int64 dtype). */
void fv__np_randint(fv__mt19937 *mt, int64_t low, int64_t high, int64_t n, int64_t *out);
/* RandomState.shuffle of out[0..n) / permutation(n). */
void fv__np_shuffle(fv__mt19937 *mt, int64_t *v, int64_t n);
void fv__np_permutation(fv__mt19937 *mt, int64_t n, int64_t *out);
/* random.shuffle(v) of CPython. */
void fv__py_shuffle(fv__mt19937 *mt, int64_t *v, int64_t n);
/* random.random() of CPython (53 bits), for tests against known values. */
double fv__py_random(fv__mt19937 *mt);

#endif /* FOVEA_DATA_INTERNAL_H */
