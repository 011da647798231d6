/*
** published_h5.h: what the readers of the published HDF5 data sets
** (maheswaranathan_2023, goldin_2022) share: the session folders as
** os.scandir lists them, load_dataset_from_h5, numpy's division of a
** stored array by fr_normalization, normalize_train_test_movies, the test
** repeats stored one dataset per cell, and the two split values.  Every
** error names the file and the key.
*/
#ifndef FOVEA_PLUGINS_PUBLISHED_H5_H
#define FOVEA_PLUGINS_PUBLISHED_H5_H

#include <stdbool.h>

#include <fovea/data_plugin.h>

/* An open HDF5 file; `path` is for messages. */
typedef struct pub_file {
	int64_t id; /* hid_t */
	const char *path;
} pub_file;

/* A numeric dataset read whole as doubles; `f32` when stored as float32
** (numpy then divides in float32). */
typedef struct pub_array {
	int ndim;
	int64_t shape[FV_MAX_DIMS];
	double *data;
	bool f32;
} pub_array;

fv_status pub_open(const char *path, pub_file *f);
void pub_close(pub_file *f);
/* Does `key` ("a/b/c") name a group / a dataset of the file? */
bool pub_is_group(const pub_file *f, const char *key);
bool pub_is_dataset(const pub_file *f, const char *key);
/* The names directly under group `key`, in h5py's (name) order. */
fv_status pub_keys(const pub_file *f, const char *key, char ***names, size_t *n);

/* load_dataset_from_h5: the dataset `key`, which must have `ndim`
** dimensions (`dims` names them for the message). */
fv_status pub_read(const pub_file *f, const char *key, int ndim, const char *dims,
                   pub_array *out);
void pub_array_free(pub_array *a);
/* `a / divisor` as numpy computes it in a's dtype, as float32; a NaN is an
** error naming the file and `key`. */
fv_status pub_divided(const pub_file *f, const char *key, const pub_array *a, double divisor,
                      fv_tensor **out);

/* The entries of `dir` in os.scandir's order (the directory's own); with
** `dirs_only` only those that are directories (following links). */
fv_status pub_scandir(const char *dir, bool dirs_only, char ***names, size_t *n);
void pub_free_names(char **names, size_t n);
/* a + "/" + b, malloc'd (NULL with the error set). */
char *pub_join(const char *a, const char *b);
/* get_local_file_path(base_data_path) with openretina's cache directory,
** the error prefixed with the step's key. */
fv_status pub_base_path(const fv_data_inputs *in, const char *base_data_path, char **out);

/* A reader's stimuli: /train/stimulus and /test/stimulus (frames, height,
** width) with a channel added, z-scored by normalize_train_test_movies
** when `normalize`, as a MoviesTrainTestSplit. */
fv_status pub_movies(const pub_file *f, bool normalize, const char *stim_id, fv_dvalue **out);

/* The repeats stored one dataset per cell (repeats, time) under group
** `group`, the cells ordered by the integer after their last "cell", as
** (repeats, neurons, time) divided by `fr` (in numpy's dtype, kept as
** doubles: goldin compares their mean); datasets only when `skip_groups`
** (goldin skips the others, maheswaranathan reads them).  out->data NULL
** when there is no cell. */
fv_status pub_cell_repeats(const pub_file *f, const char *group, double fr, bool skip_groups,
                           pub_array *out);
/* The array as a float32 tensor (NULL with the error set). */
fv_tensor *pub_tensor_of(const pub_array *a);

/* Check that repeats (trials, neurons, time) match the test responses. */
fv_status pub_check_repeats(const pub_file *f, const char *key, const fv_tensor *repeats,
                            const fv_tensor *test);
/* A reader's test repeats of file `f` (NULL: none) given its test responses. */
typedef fv_status (*pub_repeats_fn)(const void *opts, const pub_file *f, const fv_tensor *test,
                                    fv_tensor **out);
/* One file's ResponsesTrainTestSplit: /train/response/<response_type> and
** /test/response/<response_type> divided by `fr`, test_by_trial from
** `repeats`, stim_id. */
fv_status pub_session_responses(const pub_file *f, const char *response_type, double fr,
                                const char *stim_id, pub_repeats_fn repeats, const void *opts,
                                fv_dvalue **out);

/* What a reader makes of one open file. */
typedef fv_status (*pub_read_fn)(const void *opts, const pub_file *f, fv_dvalue **out);
/* Open `path`, read it with `read` and set the value as `session` of `all`. */
fv_status pub_read_file(const char *path, const char *session, pub_read_fn read,
                        const void *opts, fv_dvalue *all);

#endif /* FOVEA_PLUGINS_PUBLISHED_H5_H */
