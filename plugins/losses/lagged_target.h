/*
** lagged_target.h: the alignment every openretina loss does first.
**
** A model's output is shorter in time than the recorded target: the first
** frames are eaten by the temporal convolutions.  openretina compares
** output with target[:, T_target - T_output:, :], i.e. the target's last
** T_output frames.  This header checks the pair and returns that slice; it
** is included by each loss plugin (each .so is self-contained).
*/
#ifndef FOVEA_PLUGIN_LAGGED_TARGET_H
#define FOVEA_PLUGIN_LAGGED_TARGET_H

#include <fovea/plugin.h>

/* A NULL argument: keep the message of the op that failed upstream, or
** say which argument is missing when there is none. */
static inline bool loss_args_missing(const char *who, const fv_tensor *output,
                                     const fv_tensor *target)
{
	if (output != NULL && target != NULL)
		return false;
	if (fv_errmsg()[0] == '\0')
		fv_error(FV_ERR_ARG, "%s: %s is NULL", who, output == NULL ? "output" : "target");
	return true;
}

/* target[:, lag:, ...] with lag = T_target - T_output.  Both tensors must be
** (batch, time, ..., neurons) with equal sizes except time, and the target
** may not be shorter than the output. */
static inline fv_tensor *lagged_target(fv_ctx *ctx, const char *who, fv_tensor *output,
                                       fv_tensor *target)
{
	if (output->ndim < 2 || output->ndim != target->ndim) {
		fv_error(FV_ERR_SHAPE,
		         "%s: output %s and target %s must both be (batch, time, ..., neurons)", who,
		         fv_shape_str(output->ndim, output->shape),
		         fv_shape_str(target->ndim, target->shape));
		return NULL;
	}
	for (int d = 0; d < output->ndim; d++) {
		if (d != 1 && output->shape[d] != target->shape[d]) {
			fv_error(FV_ERR_SHAPE,
			         "%s: output %s and target %s differ in dim %d (only time, dim 1, may)",
			         who, fv_shape_str(output->ndim, output->shape),
			         fv_shape_str(target->ndim, target->shape), d);
			return NULL;
		}
	}
	int64_t lag = target->shape[1] - output->shape[1];
	if (lag < 0) {
		fv_error(FV_ERR_SHAPE,
		         "%s: target %s has fewer frames than output %s (expected T_target >= T_output)",
		         who, fv_shape_str(target->ndim, target->shape),
		         fv_shape_str(output->ndim, output->shape));
		return NULL;
	}
	if (lag == 0)
		return target;
	return fv_slice(ctx, target, 1, lag, target->shape[1], 1);
}

/* Per-neuron mean: x viewed as (-1, n), averaged over the first axis. */
static inline fv_tensor *mean_per_neuron(fv_ctx *ctx, fv_tensor *x)
{
	if (x == NULL)
		return NULL;
	int64_t shape[2] = {-1, x->shape[x->ndim - 1]};
	static const int first_axis[1] = {0};
	return fv_mean(ctx, fv_reshape(ctx, x, 2, shape), 1, first_axis, false);
}

#endif
