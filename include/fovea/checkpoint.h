/*
** checkpoint.h: trained models on disk, as safetensors files.
**
** A checkpoint holds
**   - the model's state_dict: one tensor per parameter and buffer, named as
**     openretina's state_dict names them ("core.features.layer0.conv.
**     weight_spatial", "readout.session_1.mask_mean"), F32 (I64 for the
**     BatchNorm counters "num_batches_tracked", as torch stores them);
**   - optionally the optimizer state, under "optimizer.<param>.<buffer>"
**     (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer) and
**     "optimizer.<param>.step" (I64, 0-dim), so that a resumed run takes
**     exactly the steps an uninterrupted one takes;
**   - `__metadata__` strings:
**       format         "fovea-checkpoint"
**       fovea_version  FV_VERSION_STRING of the writer
**       config         the resolved configuration as YAML
**       model_config   when the model was built from another config (a
**                      fine-tuned checkpoint's model), that config
**       data_info      JSON: sessions, n_neurons_dict, mean_activity_dict,
**                      input_shape (C, H, W), stim_mean, stim_std
**       trainer_state  JSON owned by the trainer (epoch, scheduler, ...)
**       imported_from  an imported openretina .ckpt: its path
**       pretrained_performance  an imported .ckpt whose data_info holds
**                      openretina's test results: JSON {"metric": ...,
**                      "model_cut_frames": N, "sessions": {session:
**                      per-neuron values or one number}}
** The file is written atomically (temporary file, fsync, rename), so a crash
** leaves the previous checkpoint or the new one, never a broken file.
*/
#ifndef FOVEA_CHECKPOINT_H
#define FOVEA_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "data.h"
#include "fovea.h"
#include "optim.h"
#include "plugin.h"
#include "safetensors.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FV_CHECKPOINT_FORMAT "fovea-checkpoint"

/* What fv_checkpoint_save() writes.  Every pointer may be NULL except
** `model`; the optimizer needs its parameter list (the array it was made
** with) to name its state. */
typedef struct fv_checkpoint_content {
	const fv_module *model;
	const char *config_yaml;
	const char *model_config_yaml;
	const fv_data_info *data_info;
	fv_optimizer *optimizer;
	size_t n_optim_params;
	fv_tensor *const *optim_params;
	const char *trainer_state;
} fv_checkpoint_content;

FV_API fv_status fv_checkpoint_save(const char *path, const fv_checkpoint_content *c);

typedef struct fv_checkpoint fv_checkpoint;

/* Open and validate a checkpoint: a well-formed safetensors file whose
** metadata says it is a fovea checkpoint, with a parseable data_info.
** Errors name the file and what is wrong (truncated, not a checkpoint,
** malformed data_info). */
FV_API fv_checkpoint *fv_checkpoint_open(const char *path);
FV_API void fv_checkpoint_close(fv_checkpoint *c);
/* fv_checkpoint_open() also takes an openretina PyTorch Lightning
** checkpoint (.ckpt, a zip file): it is read without executing anything
** (ckpt.h) and converted in memory: hyper_parameters become the `model`
** config (openretina's argument names are fovea's option names),
** state_dict the tensors, hyper_parameters.data_info the data info.
** fv_checkpoint_import() does the same with the model's constructor
** arguments taken from `model_yaml` (a `_target_` map; may be NULL), for
** files without hyper_parameters (SingleCellSeparatedLNP). */
FV_API fv_checkpoint *fv_checkpoint_import(const char *path, const char *model_yaml);
/* Write an imported checkpoint as a fovea .safetensors checkpoint
** (atomically). */
FV_API fv_status fv_checkpoint_write(const fv_checkpoint *c, const char *path);

FV_API const char *fv_checkpoint_path(const fv_checkpoint *c);
/* Metadata; NULL when the checkpoint has none. */
FV_API const char *fv_checkpoint_config_yaml(const fv_checkpoint *c);
FV_API const char *fv_checkpoint_version(const fv_checkpoint *c);
/* The config the model is built from: model_config, else config. */
FV_API const char *fv_checkpoint_model_config_yaml(const fv_checkpoint *c);
FV_API const char *fv_checkpoint_trainer_state(const fv_checkpoint *c);
/* The data info, owned by the checkpoint (session_info is empty). */
FV_API const fv_data_info *fv_checkpoint_data_info(const fv_checkpoint *c);
FV_API const fv_safetensors *fv_checkpoint_tensors(const fv_checkpoint *c);

/* Copy the state_dict into `model`.  Every model tensor must be in the file
** with the same shape, unless `allow_missing` (fine-tuning: readouts of new
** sessions keep their initial values); every non-optimizer tensor of the
** file must be in the model.  Errors name the file and the tensor. */
FV_API fv_status fv_checkpoint_load_model(const fv_checkpoint *c, fv_module *model,
                                          bool allow_missing);
/* Restore the optimizer state saved for `params` (the same names).  A
** parameter without saved state keeps none, as it had none when saved. */
FV_API fv_status fv_checkpoint_load_optimizer(const fv_checkpoint *c, fv_optimizer *opt,
                                              size_t n_params, fv_tensor *const *params);

/* data_info as the JSON stored in the metadata (malloc'd). */
FV_API char *fv_data_info_to_json(const fv_data_info *info);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_CHECKPOINT_H */
