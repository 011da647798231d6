/*
** data_plugin.h: data steps, the plugin kind that reads data sets.
**
** openretina composes its data pipeline in the config as nested `_target_`
** calls, evaluated inside-out as Hydra's instantiate does:
**
**     responses:
**       _target_: ...hoefling_2024.responses.make_final_responses
**       response_type: natural
**       data_dict:
**         _target_: ...hoefling_2024.responses.filter_responses
**         all_responses:
**           _target_: openretina.utils.h5_handling.load_h5_into_dict
**           file_path: /data/responses.h5
**
** In fovea each of those functions is a component of kind FV_KIND_DATA,
** found in the registry by its openretina name.  fv_data_eval() evaluates a
** map with `_target_`: first every option whose value is itself a map with
** `_target_` (recursively), then the step itself.  The step gets its other
** options parsed into its private state from its option table, as any
** component does (a nested step's key is declared there as FV_OPT_NODE),
** and the values of its nested steps through fv_data_input().  It returns
** one fv_dvalue: a tree of numbers, strings, tensors, lists and maps, where
** a map may carry a class name (openretina's dataclasses, e.g.
** "MoviesTrainTestSplit").  Values are owned by whoever holds them; a step
** may take its inputs over (fv_data_input_take) to pass large arrays on
** without a copy.
*/
#ifndef FOVEA_DATA_PLUGIN_H
#define FOVEA_DATA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "data.h"
#include "fovea.h"
#include "plugin.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values ---------------------------------------------------------------- */

typedef struct fv_dvalue fv_dvalue;

typedef enum fv_dvalue_kind {
	FV_DV_NULL,   /* Python's None */
	FV_DV_NUMBER, /* a float or int (double) */
	FV_DV_TEXT,   /* a str */
	FV_DV_TENSOR, /* a numpy array (float32 fv_tensor) */
	FV_DV_LIST,   /* a list */
	FV_DV_MAP     /* a dict (keys in insertion order) or a dataclass */
} fv_dvalue_kind;

/* The class names of openretina's two split dataclasses (base.py). */
#define FV_DV_MOVIES_SPLIT "MoviesTrainTestSplit"
#define FV_DV_RESPONSES_SPLIT "ResponsesTrainTestSplit"

/* Constructors return NULL with the error set when out of memory. */
FV_API fv_dvalue *fv_dvalue_null(void);
FV_API fv_dvalue *fv_dvalue_number(double x);
FV_API fv_dvalue *fv_dvalue_text(const char *s); /* copied */
/* Takes `t` (freed with the value, or at once when this fails). */
FV_API fv_dvalue *fv_dvalue_tensor(fv_tensor *t);
FV_API fv_dvalue *fv_dvalue_list(void);
/* An empty map; class_name NULL is a plain dict. */
FV_API fv_dvalue *fv_dvalue_map(const char *class_name);

/* Add to a list / set a map's key (replacing an earlier value of that key).
** Both take `item` whatever happens: on failure it is freed. */
FV_API fv_status fv_dvalue_append(fv_dvalue *list, fv_dvalue *item);
FV_API fv_status fv_dvalue_set(fv_dvalue *map, const char *key, fv_dvalue *item);

FV_API void fv_dvalue_free(fv_dvalue *v); /* NULL is fine */
FV_API fv_dvalue *fv_dvalue_copy(const fv_dvalue *v);

FV_API fv_dvalue_kind fv_dvalue_kind_of(const fv_dvalue *v);
FV_API const char *fv_dvalue_kind_name(fv_dvalue_kind kind); /* "None", "number", ... */
/* A map's class name, NULL for a dict or a value that is no map. */
FV_API const char *fv_dvalue_class(const fv_dvalue *v);
FV_API double fv_dvalue_number_of(const fv_dvalue *v);     /* NAN unless a number */
FV_API const char *fv_dvalue_text_of(const fv_dvalue *v);  /* NULL unless text */
FV_API const fv_tensor *fv_dvalue_tensor_of(const fv_dvalue *v); /* NULL unless a tensor */
/* Items of a list or map (0 for the others), a map's keys, a map's item by key. */
FV_API size_t fv_dvalue_size(const fv_dvalue *v);
FV_API const fv_dvalue *fv_dvalue_at(const fv_dvalue *v, size_t i);
FV_API const char *fv_dvalue_key_at(const fv_dvalue *v, size_t i);
FV_API const fv_dvalue *fv_dvalue_get(const fv_dvalue *map, const char *key);
/* Remove a map's item and hand it over (NULL when absent). */
FV_API fv_dvalue *fv_dvalue_take(fv_dvalue *map, const char *key);
/* Hand over a tensor value's tensor (the value becomes None), so that a
** large array moves on without a copy; NULL unless v is a tensor. */
FV_API fv_tensor *fv_dvalue_take_tensor(fv_dvalue *v);

/* openretina's MoviesTrainTestSplit: train (C, T, H, W), test_dict a map
** of name -> (C, T', H, W) tensors (at least one), random_sequences a
** tensor or NULL (None), norm_mean / norm_std NAN for None, stim_id NULL
** for None.  Checked as its __post_init__ does (4-D movies, the same
** channels and spatial size); takes train, test_dict and random_sequences
** whatever happens.  NULL with the error set on a mismatch. */
FV_API fv_dvalue *fv_dvalue_movies_split(fv_tensor *train, fv_dvalue *test_dict,
                                         fv_tensor *random_sequences, double norm_mean,
                                         double norm_std, const char *stim_id);
/* openretina's ResponsesTrainTestSplit: train (N, T), test_dict name ->
** (N, T'), test_by_trial_dict name -> (trials, N, T') or NULL (empty),
** session_kwargs a map or NULL (empty); checked (2-D responses, the same
** neurons everywhere) and taken as above. */
FV_API fv_dvalue *fv_dvalue_responses_split(fv_tensor *train, fv_dvalue *test_dict,
                                            fv_dvalue *test_by_trial_dict, const char *stim_id,
                                            fv_dvalue *session_kwargs);

/* ---- running steps ----------------------------------------------------------- */

typedef struct fv_data_inputs fv_data_inputs;

/* The value of the nested step under option `key`, or NULL when the key
** held no `_target_` map (read it from the options then). */
FV_API const fv_dvalue *fv_data_input(const fv_data_inputs *in, const char *key);
/* The same, handed over to the step (the inputs no longer hold it). */
FV_API fv_dvalue *fv_data_input_take(fv_data_inputs *in, const char *key);
/* The step's map in the configuration, for messages (fv_error_at). */
FV_API const fv_config_node *fv_data_input_spec(const fv_data_inputs *in);
/* The registry the step was found in (to run further steps). */
FV_API fv_registry *fv_data_input_registry(const fv_data_inputs *in);

/* Evaluate `spec`: a map with `_target_` naming a data step runs as above;
** any other node is converted as Hydra leaves it (null, a number or a
** string, lists and maps item by item, nested steps evaluated).  *out gets
** the value, owned by the caller.  An unknown _target_, or one that is no
** data step, is an error naming it, its key and the closest data steps. */
FV_API fv_status fv_data_eval(fv_registry *reg, const fv_config_node *spec, fv_dvalue **out);

/* Evaluate the step `spec` (a map with `_target_`) with n further inputs
** beside its options, as Hydra's instantiate(cfg, key=value, ...) passes
** them: the step reads values[i] with fv_data_input(in, keys[i]).  The
** values stay the caller's (fv_data_input_take gives the step a copy).
** A dataloader is such a step: fovea calls it with
** "neuron_data_dictionary" (data_io.responses' value) and
** "movies_dictionary" (data_io.stimuli's), as openretina's train script
** does, and it returns FV_DV_DATALOADERS (below). */
FV_API fv_status fv_data_eval_with(fv_registry *reg, const fv_config_node *spec, size_t n,
                                   const char *const *keys, const fv_dvalue *const *values,
                                   fv_dvalue **out);

/* ---- a data set from the steps' values ------------------------------------------- */

/* What a dataloader step returns: openretina's dict of DataLoaders, one
** map per fold ("train", "validation", and each test stimulus: "test" or
** its name), each a map session -> FV_DV_MOVIE_LOADER.  A loader holds
** get_movie_dataloader's arguments:
**   movie           (C, T, H, W) tensor, normalised; or the text name of an
**                   entry of the DataLoaders' own "movies" map (name ->
**                   tensor), for a movie several sessions share (stored once)
**   responses       (T', N) tensor, T' >= T
**   responses_by_trial  test folds, optional: (trials, T, N)
**   start_indices   a tensor or list of frames, or None / absent: every
**                   chunk_size (train), scene_length (validation), the whole
**                   movie or every scene_length (test), as get_movie_dataloader
**   chunk_size, batch_size, scene_length   numbers
**   allow_over_boundaries   number (1 / 0), default 1
**   drop_last       number, default 1 (only train drops a partial batch)
**   roi_ids, roi_coords, group_assignment, mean_response   optional tensors
**                   (kept as the MovieDataSet keeps them; not used to train)
** Every session has a train and a validation loader, with the same scene
** length and allow_over_boundaries everywhere (one sampler setting).
** openretina's loader returns None for responses holding NaN: a step
** leaves such a session out of the fold instead. */
#define FV_DV_DATALOADERS "DataLoaders"
#define FV_DV_MOVIE_LOADER "MovieDataLoader"

/* The data set of `loaders` (FV_DV_DATALOADERS, consumed: its tensors move
** into the data set), with data_info as openretina's compute_data_info
** builds it from `responses` (the dict of ResponsesTrainTestSplit: neurons,
** mean activity of each session's train responses, session_kwargs) and
** `movies` (norm_mean / norm_std), which stay the caller's.  Errors name
** the fold, the session and the field. */
FV_API fv_status fv_data_from_loaders(fv_dvalue *loaders, const fv_dvalue *responses,
                                      const fv_dvalue *movies, fv_data **out);

/* The data set openretina's multiple_movies_dataloaders builds from
** `responses`, a dict of ResponsesTrainTestSplit per session, and `movies`,
** one MoviesTrainTestSplit shared by all sessions or a dict of them per
** session: each session's movies and responses are checked against each
** other (check_matching_stimulus), the train responses cut into clips,
** validation clips and chunks with `o`'s dataloader options exactly as
** fv_data_open() cuts the HDF5 layout's, the movies taken as the reader
** normalised them (o's norm_mean / norm_std are replaced by the split's
** when it records them).  o->data_dir and o->test_names are not used: the
** test stimuli are those of the splits.  The values stay the caller's. */
FV_API fv_status fv_data_open_values(const fv_data_options *o, const fv_dvalue *movies,
                                     const fv_dvalue *responses, fv_data **out);

/* The data set of a training config (`root`): data_io's stimuli and
** responses steps evaluated through `reg` (fv_data_eval), then the
** dataloader: its `_target_` found in the registry and run with
** fv_data_eval_with() and the two values, its DataLoaders made the data set
** by fv_data_from_loaders().  openretina's multiple_movies_dataloaders (or
** no `_target_`) is fovea's own: fv_data_open_values() with the dataloader
** section's options.  When every _target_ of data_io is the generic HDF5
** reader's, the directory is read by fv_data_open() as
** fv_data_options_from_config() describes it.  An unknown dataloader is an
** error naming it and the closest data steps. */
FV_API fv_status fv_data_open_config(fv_registry *reg, const fv_config_node *root,
                                     fv_data **out);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_DATA_PLUGIN_H */
