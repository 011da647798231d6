/*
** predict.h: a trained model's responses to stimuli held in memory (a NumPy
** array, a movie the caller read), computed as `fovea predict` computes
** them.  The entry point of the Python package's Model.predict.
**
** The stimulus is a view: a pointer, a shape and strides, so a caller's
** array in any layout is read in place.  A C-contiguous stimulus that needs
** no normalisation is handed to the model as it is, without a copy; any
** other is gathered (and normalised) into the context once.
*/
#ifndef FOVEA_PREDICT_H
#define FOVEA_PREDICT_H

#include <stdint.h>

#include "data.h"
#include "fovea.h"
#include "plugin.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* float32 values at data[i0 * strides[0] + i1 * strides[1] + ...]; strides
** count elements, not bytes, and may be zero or negative (broadcast or
** reversed NumPy views). */
typedef struct fv_stimulus_view {
	const float *data;
	int ndim;            /* 4: one movie (C, T, H, W); 5: a batch (N, C, T, H, W) */
	int64_t shape[5];
	int64_t strides[5];
} fv_stimulus_view;

/* Set shape and C-order strides of a dense array (ndim 4 or 5). */
FV_API void fv_stimulus_view_dense(fv_stimulus_view *v, const float *data, int ndim,
                                   const int64_t *shape);

enum {
	/* (x - stim_mean) / stim_std in double, rounded to float, as the data
	** loader normalises training stimuli; without it the stimulus is in the
	** model's units already (openretina's model(x)). */
	FV_PREDICT_NORMALIZE = 1u << 0
};

/* The responses of `model` (a checkpoint's model, fv_model_load) to the
** stimulus through the readout of `session`, as a tensor (N, T - lag,
** neurons) in `ctx` (valid until the context is reset); one movie is a
** batch of one.  `info` is the checkpoint's data info: its sessions, input
** shape (C, H, W) and normalisation.  A NULL session is the only one of a
** one-session model.  Runs without grad, cropping the stimulus around the
** receptive field of a SingleCellSeparatedLNP (crop_input), as
** openretina's training_step does.  Errors: FV_ERR_ARG (no session named
** for a model with several, a normalisation that cannot be applied),
** FV_ERR_NOTFOUND (an unknown session, with the closest name),
** FV_ERR_SHAPE (a stimulus that is not (C, T, H, W) or (N, C, T, H, W)
** with the model's channels, height and width), and the model's own. */
FV_API fv_tensor *fv_predict(fv_module *model, fv_ctx *ctx, const fv_data_info *info,
                             const fv_stimulus_view *x, const char *session, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_PREDICT_H */
