/*
** natmov.h: what natmov_dataloaders_v2 (natmov_dataloaders.c) shares with
** its movies and start indices (movie_combinations.c).
*/
#ifndef FOVEA_PLUGINS_HOEFLING_NATMOV_H
#define FOVEA_PLUGINS_HOEFLING_NATMOV_H

#include "hoefling.h"

typedef struct natmov {
	const fv_tensor *train, *test;       /* the MoviesTrainTestSplit's */
	fv_tensor *random_sequences;         /* (clips, sequences) */
	const int64_t *val;                  /* validation_clip_indices */
	size_t n_val;
	int64_t num_clips, clip_length, train_chunk_size;
	int64_t n_train_clips;               /* num_clips less the distinct validation clips */
	int64_t batch_size, test_batch_size; /* _compute_test_batch_size */
	bool allow_over_boundaries;
	fv_dvalue *movies;                   /* the shared movies made so far */
} natmov;

/* Make (once) the movie of `eye` ("left" / "right") for `fold` ("train"
** with sequence `seq`, "validation", "test") and put its name in `name`. */
fv_status natmov_movie(natmov *nm, const char *eye, const char *fold, int64_t seq, char *name,
                       size_t size);
/* The start indices of a fold, as gen_start_indices gives them. */
fv_dvalue *natmov_starts(const natmov *nm, const char *fold);

/* openretina's NeuronDataSplitHoefling for one session: its loaders' fields
** (responses, roi_coords, ...) added to the three loader maps. */
fv_status natmov_session(natmov *nm, const char *name, const fv_dvalue *split,
                         fv_dvalue *loaders[3]);

#endif /* FOVEA_PLUGINS_HOEFLING_NATMOV_H */
