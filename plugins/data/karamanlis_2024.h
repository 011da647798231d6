/*
** karamanlis_2024.h: what the files of openretina's karamanlis_2024 reader
** (data_io/karamanlis_2024/{stimuli,responses}.py) share.
**
** A session is a folder (or a .zip of one) holding <...><stim_type>_data.mat,
** a MATLAB file (v7.3 as published; v5 read too) with the variables
** runningImages, frozenImages, runningfixations, frozenfixations,
** runningbin and frozenbin.  openretina reads them with h5py, which shows a
** MATLAB array of dims (d0, ..., dk) as a C-order array of shape
** (dk, ..., d0) over the same bytes; kara_mat_read gives that view for
** both file versions.
*/
#ifndef FOVEA_PLUGINS_KARAMANLIS_2024_H
#define FOVEA_PLUGINS_KARAMANLIS_2024_H

#include <stdbool.h>
#include <stdint.h>

#include <fovea/data_plugin.h>

/* openretina's return_fix_movie_torch draws on a fixed (600, 800) screen. */
#define KARA_SCREEN_H 600
#define KARA_SCREEN_W 800
#define KARA_MAX_DIMS 4

/* ---- .mat variables (karamanlis_2024_mat.c) ------------------------------------- */

/* A numeric MATLAB variable in h5py's view, kept in its own type as
** libmatio read it (no converted copy: image ensembles are large). */
typedef struct kara_array {
	int ndim;
	int64_t shape[KARA_MAX_DIMS];
	int64_t numel;
	const void *raw; /* numel numbers of class `cls` */
	int cls;         /* enum matio_classes */
	void *owner;     /* the matvar_t */
} kara_array;

typedef struct kara_mat kara_mat;

/* Open a MATLAB file; an error naming it when it is none (or damaged). */
fv_status kara_mat_open(const char *path, kara_mat **out);
/* A v5 file's variables declare no more elements than the file holds
** bytes for (karamanlis_2024_mat_scan.c); FV_OK for other files. */
fv_status kara_mat_scan_v5(const char *path);
void kara_mat_close(kara_mat *m);
/* Variable `name` with `ndim` dimensions in h5py's view, real and numeric;
** an error naming the file and the variable otherwise.  `finite`: NaN or
** infinite values are refused too. */
fv_status kara_mat_read(kara_mat *m, const char *name, int ndim, bool finite, kara_array *out);
void kara_array_free(kara_array *a);
/* Number i (flat, C order in h5py's view) as a double. */
double kara_at(const kara_array *a, int64_t i);

/* ---- the fixation movie (karamanlis_2024_movie.c) ------------------------------- */

/* Resampling weights of one axis, as torch's bilinear interpolate with
** antialias=True computes them (karamanlis_2024_resize.c). */
typedef struct kara_axis {
	int64_t in, out;
	int64_t *first; /* per output: first input index */
	int64_t *count; /* per output: number of taps */
	int64_t taps;   /* the row length of weights */
	float *weights; /* out x taps */
} kara_axis;

fv_status kara_axis_init(kara_axis *a, int64_t in, int64_t out);
void kara_axis_free(kara_axis *a);
/* torchvision's Resize((h, w)) of one float frame (in_h x in_w, C order) into
** `dst` (out_h x out_w); `tmp` holds in_h x out_w floats. */
void kara_resize_frame(const kara_axis *ay, const kara_axis *ax, const float *src, float *tmp,
                       float *dst);

/* The frames of return_fix_movie_torch for the fixations `fix` ((frames,
** k) or (trials, frames, k), k >= 3: image (1-based), x, y, then ignored
** columns), the `frames` rows from row `first` on, over the images `images` ((n, x, y) in h5py's
** view), each resized to (h, w) and written in order to `dst` (frames x h
** x w).  An error naming `file` and `key` when a fixation leaves the screen
** empty or names no image. */
fv_status kara_fix_movie(const kara_array *images, const kara_array *fix, int64_t first,
                         int64_t frames, int64_t h, int64_t w, float *dst, const char *file,
                         const char *key);

/* The (1, frames, h, w) test and training movies of a session's .mat file
** (karamanlis_2024_extract.c). */
fv_status kara_extract_stimuli(const char *path, int64_t h, int64_t w, fv_tensor **train,
                               fv_tensor **test);

/* ---- cached stimuli (karamanlis_2024_npz.c) ------------------------------------- */

/* np.load(path)["train_data"], ["test_data"] of the cached .npz. */
fv_status kara_npz_read(const char *path, fv_tensor **train, fv_tensor **test);
/* np.savez_compressed(path, train_data=..., test_data=...), atomically. */
fv_status kara_npz_write(const char *path, const fv_tensor *train, const fv_tensor *test);

/* ---- sessions (karamanlis_2024_sessions.c) -------------------------------------- */

/* The session entries of base_data_path: folders or .zip files whose name
** contains `specie`, sorted by name (openretina takes os.listdir's order,
** which the file system decides).  An error when none is found. */
fv_status kara_sessions(const char *base, const char *specie, char ***names, size_t *n);
void kara_names_free(char **names, size_t n);
/* The folder of session `name`: base/name, unpacked first when a .zip
** (unzip_and_cleanup).  *dir is malloc'd. */
fv_status kara_session_dir(const char *base, const char *name, char **dir);
/* The entries of `dir` whose names end with `suffix`, sorted. */
fv_status kara_find(const char *dir, const char *suffix, char ***names, size_t *n);
/* The dict of all sessions of base_data_path (resolved as
** get_local_file_path does) whose entry names contain `specie`: `load`
** gives a session folder's value, or NULL to skip it. */
typedef fv_status (*kara_session_loader)(const char *dir, const void *opt, fv_dvalue **out);
fv_status kara_load_sessions(const char *base_data_path, const char *specie,
                             fv_data_inputs *in, kara_session_loader load, const void *opt,
                             fv_dvalue **out);
/* str.endswith */
bool kara_ends_with(const char *s, const char *suffix);

/* ---- the steps ------------------------------------------------------------------- */

extern const fv_component kara_stimuli_component;   /* load_all_stimuli */
extern const fv_component kara_responses_component; /* load_all_responses */

#endif /* FOVEA_PLUGINS_KARAMANLIS_2024_H */
