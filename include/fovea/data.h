/*
** data.h: recorded (or synthetic) stimulus/response data in openretina's
** HDF5 layout, split and batched as openretina's movie dataloaders do.
**
** A data directory holds
**   DIR/stimuli/<name>.npy   one movie per stimulus name, float32 or float64,
**                            channels x time x height x width, C order;
**   DIR/<session>.h5|.hdf5   one file per recording session with
**       responses_<name>     neurons x time (or trials x neurons x time: the
**                            trial average is used, the trials are kept for
**                            test stimuli),
**       by_trial_<name>      optional trials x neurons x time beside a 2-D
**                            responses_<name> (fovea's addition; openretina
**                            ignores the key),
**       stimulus_<name>      optional, overrides the shared movie for this
**                            session,
**       session_info/<key>   optional numeric arrays (openretina's
**                            session_kwargs).
** The session name is the file name without its last suffix.  Sessions are
** kept in sorted (strcmp) order everywhere.
**
** Per session, as openretina's load_stimuli/load_responses and
** multiple_movies_dataloaders do: every stimulus with responses whose name
** is not a test name is normalised ((x - norm_mean) / norm_std, float32) and
** concatenated over time in sorted name order; the result is cut into clips
** of clip_length frames; num_val_clips of them, drawn with
** numpy.random.RandomState(seed).choice(n_clips, num_val_clips,
** replace=False) unless validation_clip_indices are given, form the
** validation movie (in that order), the others the training movie.
** Training samples are chunks of train_chunk_size frames starting every
** train_chunk_size frames, shifted at random each epoch (MovieSampler);
** validation samples are whole clips; a test sample is the whole test movie
** (allow_over_boundaries) or one whole clip (a shorter last one is left
** out).
**
** Every tensor here is owned by the fv_data and freed by fv_data_close().
*/
#ifndef FOVEA_DATA_H
#define FOVEA_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- options ---------------------------------------------------------------
** Named as openretina's configs name them (data_io.* and dataloader.* of
** configs/hdf5_core_readout.yaml).  Pointers are borrowed: they need to
** live only until fv_data_open() returns. */
#define FV_DATA_MAX_TEST_NAMES 64
#define FV_DATA_MAX_VAL_CLIPS 1024

typedef struct fv_data_options {
	const char *data_dir;            /* paths.data_dir (base_data_path) */
	const char *const *test_names;   /* data_io.test_names */
	size_t n_test_names;
	/* The expected stimulus size (data_io.color_channels, video_height,
	** video_width); 0 takes it from the data. */
	int64_t color_channels;
	int64_t video_height;
	int64_t video_width;
	double norm_mean;                /* 0.0 */
	double norm_std;                 /* 1.0 */
	int64_t clip_length;             /* 100 (openretina's function default) */
	int64_t num_val_clips;           /* 10 */
	/* dataloader.val_clip_indices (alias validation_clip_indices); NULL
	** draws num_val_clips with the seed. */
	const int64_t *validation_clip_indices;
	size_t n_validation_clip_indices;
	int64_t train_chunk_size;        /* 50 */
	int64_t batch_size;              /* 32 */
	uint64_t seed;                   /* 42: dataloader.seed (validation clips) */
	bool allow_over_boundaries;      /* true */
	/* Room for the lists fv_data_options_from_config() reads, so that
	** options never own memory (not to be used directly). */
	const char *test_names_storage_[FV_DATA_MAX_TEST_NAMES];
	int64_t validation_clips_storage_[FV_DATA_MAX_VAL_CLIPS];
} fv_data_options;

/* openretina's defaults (the values noted above), no directory. */
FV_API void fv_data_options_default(fv_data_options *o);

/* Fill `o` (after fv_data_options_default) from a resolved config: the
** `data_io` map (test_names, color_channels, video_height, video_width,
** stimuli.base_data_path, stimuli.norm_mean, stimuli.norm_std,
** stimuli.stimulus_size; a missing key keeps its default) and the `dataloader` map (batch_size,
** train_chunk_size, clip_length, num_val_clips, val_clip_indices or
** validation_clip_indices, allow_over_boundaries, seed).  Either map may be
** NULL.  The strings point into the config, which must outlive `o`'s
** use; the lists are copied into `o`.  Bad types name the file, line and
** key. */
FV_API fv_status fv_data_options_from_config(fv_data_options *o, const fv_config_node *data_io,
                                             const fv_config_node *dataloader);

/* ---- the data set ----------------------------------------------------------- */

typedef struct fv_data fv_data;

/* One split of one session: a movie and the responses to it, and how it is
** cut into samples.  Train and validation as MovieDataSet holds them. */
typedef struct fv_movie_set {
	const char *session;
	const char *stimulus;          /* test: the stimulus name; else NULL */
	const fv_tensor *movie;        /* (C, T, H, W), normalised */
	const fv_tensor *responses;    /* (T', N), T' >= T (train keeps the
	                                  frames after the last whole clip, as
	                                  openretina does; they are never sampled) */
	const fv_tensor *responses_by_trial; /* test only: (trials, T, N), or NULL */
	int64_t chunk_size;            /* frames per sample */
	int64_t n_samples;             /* start indices per pass (sampler length) */
	const int64_t *start_indices;  /* n_samples unshifted start frames */
	int64_t batch_size;
	int64_t n_batches;             /* per pass; train drops the last partial batch */
} fv_movie_set;

/* Read DIR and build every session's splits.  Errors (FV_ERR_IO,
** FV_ERR_FORMAT, FV_ERR_SHAPE, FV_ERR_CONFIG, FV_ERR_NOTFOUND) name the
** directory or file, the session, the stimulus and the shapes involved. */
FV_API fv_status fv_data_open(const fv_data_options *o, fv_data **out);
/* Frees the data set and everything it owns (NULL is fine). */
FV_API void fv_data_close(fv_data *d);

FV_API size_t fv_data_n_sessions(const fv_data *d);
FV_API const char *fv_data_session_name(const fv_data *d, size_t session);
/* The index of a session, or -1. */
FV_API int64_t fv_data_find_session(const fv_data *d, const char *name);

FV_API const fv_movie_set *fv_data_train(const fv_data *d, size_t session);
FV_API const fv_movie_set *fv_data_validation(const fv_data *d, size_t session);
/* The session's test stimuli (those of the test names it has responses
** for), in sorted name order. */
FV_API size_t fv_data_n_test(const fv_data *d, size_t session);
FV_API const fv_movie_set *fv_data_test(const fv_data *d, size_t session, size_t i);
/* The test set of one stimulus name, or NULL when the session has none. */
FV_API const fv_movie_set *fv_data_test_named(const fv_data *d, size_t session,
                                              const char *stimulus);
/* What a reader's filters removed from a session: the number of filters
** (0 when the reader reports none; the generic HDF5 reader filters
** nothing) and, for filter i in the order applied, its name and in
** *removed how many neurons it removed.  Readers report them as the map
** "filter_counts" ({filter name: neurons removed}, numbers) of the
** session's ResponsesTrainTestSplit value (a key openretina's dataclass
** does not have; fovea's data-info prints it). */
FV_API size_t fv_data_n_filters(const fv_data *d, size_t session);
FV_API const char *fv_data_filter(const fv_data *d, size_t session, size_t i, int64_t *removed);
/* The validation clip indices used (drawn or given), for logs and tests. */
FV_API const int64_t *fv_data_validation_clips(const fv_data *d, size_t session, size_t *n);

/* ---- data info (openretina's compute_data_info) ----------------------------- */

typedef struct fv_data_info {
	size_t n_sessions;
	const char *const *sessions;   /* sorted */
	const int64_t *n_neurons;      /* n_neurons_dict */
	/* mean_activity_dict: per session (N), the mean over time of all
	** non-test responses (validation frames included), summed pairwise as
	** numpy's mean does (in float64, or float32 for float32 files),
	** rounded to float32. */
	fv_tensor *const *mean_activity;
	int64_t input_shape[3];        /* (C, H, W) */
	double stim_mean;              /* norm_mean */
	double stim_std;               /* norm_std */
	/* sessions_kwargs: the session_info/<key> datasets per session (numeric ones;
	** others are skipped). */
	const size_t *n_session_info;
	const char *const *const *session_info_names;
	fv_tensor *const *const *session_info;
} fv_data_info;

FV_API const fv_data_info *fv_data_get_info(const fv_data *d);

/* ---- batches ------------------------------------------------------------------ */

/* One batch: input (B, C, T, H, W) and target (B, T, N).  The tensors
** belong to the iterator and stay valid until its next call. */
typedef struct fv_batch {
	const char *session;
	size_t session_index;
	fv_tensor *input;
	fv_tensor *target;
} fv_batch;

typedef struct fv_batch_iter fv_batch_iter;

/* Training batches of all sessions, interleaved as openretina's
** LongCycler(shuffle=True): each epoch shuffles the session order, then
** takes one batch per session in turn, n_sessions * max(n_batches) batches
** in all; a session that runs out starts a new pass (new shifts, new
** order).  Randomness follows openretina after seed_everything(seed):
** session order from Python's random, shifts and sample order from
** numpy's global MT19937 stream, drawn in the same order. */
FV_API fv_batch_iter *fv_data_train_batches(fv_data *d, uint64_t seed);
/* Validation batches (ShortCycler): sessions in sorted order, each
** session's clips in order, last batch possibly smaller. */
FV_API fv_batch_iter *fv_data_validation_batches(fv_data *d);
/* Test batches of one stimulus name over the sessions that have it. */
FV_API fv_batch_iter *fv_data_test_batches(fv_data *d, const char *stimulus);

/* The next batch: true, or false at the end of an epoch (pass); the call
** after that begins the next epoch.  It never allocates and cannot fail.
** An iterator must be freed before its data set is closed. */
FV_API bool fv_batch_next(fv_batch_iter *it, fv_batch *b);
/* The start frames (within its session's movie of that split) of the
** samples of the batch fv_batch_next() handed out last, in batch order;
** *n gets their number (0 and NULL before the first batch).  Valid until
** the next call of fv_batch_next(). */
FV_API const int64_t *fv_batch_iter_starts(const fv_batch_iter *it, int64_t *n);
/* Batches per epoch. */
FV_API int64_t fv_batch_iter_len(const fv_batch_iter *it);
/* Epochs begun so far (0 before the first batch). */
FV_API int64_t fv_batch_iter_epoch(const fv_batch_iter *it);
/* Position the iterator as if `epoch` whole epochs and then `batch`
** batches had been taken (for resuming a run); only indices are replayed. */
FV_API fv_status fv_batch_iter_seek(fv_batch_iter *it, int64_t epoch, int64_t batch);
/* End the current epoch now, as Lightning abandons the loader's iterator
** after limit_train_batches: the rest of the epoch is not drawn, and the
** next call of fv_batch_next begins the next epoch. */
FV_API void fv_batch_iter_end_epoch(fv_batch_iter *it);
FV_API void fv_batch_iter_free(fv_batch_iter *it);

/* ---- synthetic data (`fovea create-data`) ------------------------------------------ */

typedef struct fv_synthetic_options {
	uint64_t seed;                 /* 1 */
	int n_sessions;                /* 3 */
	const int64_t *n_neurons;      /* per session; NULL: 12, 18, 24, ... */
	size_t n_n_neurons;            /* entries in n_neurons (cycled) */
	int64_t channels;              /* 2 */
	int64_t height;                /* 18 */
	int64_t width;                 /* 16 */
	int64_t train_frames;          /* frames per training stimulus (1500) */
	int n_train_stimuli;           /* 2 */
	int64_t test_frames;           /* 300 */
	int n_test_trials;             /* 10 */
	int64_t filter_length;         /* temporal filter taps (12) */
	double rate;                   /* mean spikes per frame (1.0) */
} fv_synthetic_options;

FV_API void fv_synthetic_options_default(fv_synthetic_options *o);
/* Write DIR/stimuli/train_<i>.npy and test.npy (float32), DIR/session_<k>.hdf5
** (responses_<stimulus>; responses_test trial-averaged beside by_trial_test;
** session_info/<key>) and DIR/ground_truth.json.  DIR is created if
** missing.  The test stimulus name is "test". */
FV_API fv_status fv_synthetic_write(const char *dir, const fv_synthetic_options *o);

/* The directory openretina's `openretina create-data` writes (same file
** names, dtypes, shapes and value model; see
** framework/synthetic_openretina.c), options named as its command line's. */
typedef struct fv_openretina_data_options {
	uint64_t seed;                 /* 1 (openretina's own run is unseeded) */
	int64_t num_colors;            /* 3 */
	int num_stimuli;               /* 4: random_noise_0 .. random_noise_3 */
	int num_sessions;              /* 2: session_0.hdf5, session_1.hdf5 */
	int64_t clip_length;           /* 75: stimulus i has (70 + i) clips */
} fv_openretina_data_options;

FV_API void fv_openretina_data_options_default(fv_openretina_data_options *o);
/* Write DIR/stimuli/random_noise_<i>.npy (float64) and DIR/session_<k>.hdf5
** (responses_random_noise_<i> float64, session_info/celltypes int64); DIR
** is created if missing.  The neuron count of each session goes to
** n_neurons[0 .. num_sessions). */
FV_API fv_status fv_openretina_data_write(const char *dir, const fv_openretina_data_options *o,
                                          int64_t *n_neurons);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_DATA_H */
