/*
** group_weights.h: the cell-type weighting of openretina's Celltype*Loss3d.
**
** Each neuron of each batch element belongs to a group (a cell type) and
** its term of the loss is weighted so that every group counts as much as
** the average group:
**
**     w[b, n] = sum(group_counts) / n_groups / group_counts[group_assignment[b, n] - 1]
**
** shaped (B, 1, n) to multiply the (B, T, n) elementwise loss or the
** (B, 1, n) correlations.  Group ids are 1-based; as Python's indexing
** does, id 0 reads the last group (an index of -1).  The weights are
** constants of the graph: openretina differentiates neither input.
*/
#ifndef FOVEA_PLUGIN_GROUP_WEIGHTS_H
#define FOVEA_PLUGIN_GROUP_WEIGHTS_H

#include <math.h>

#include <fovea/plugin.h>

static inline fv_status group_inputs(const char *who, const fv_loss_extras *ex,
                                     const fv_tensor *output, const fv_tensor **ga,
                                     const fv_tensor **gc)
{
	*ga = fv_loss_extra(ex, "group_assignment");
	*gc = fv_loss_extra(ex, "group_counts");
	if (*ga == NULL || *gc == NULL)
		return fv_error(FV_ERR_ARG,
		                "%s: needs the inputs group_assignment (batch, neurons) and "
		                "group_counts (groups) beside output and target", who);
	if (output->ndim != 3 || (*ga)->ndim != 2 || (*ga)->shape[0] != output->shape[0] ||
	    (*ga)->shape[1] != output->shape[2])
		return fv_error(FV_ERR_SHAPE,
		                "%s: group_assignment %s must be (batch, neurons) of output %s "
		                "(batch, time, neurons)", who, fv_shape_str((*ga)->ndim, (*ga)->shape),
		                fv_shape_str(output->ndim, output->shape));
	if ((*gc)->ndim != 1 || (*gc)->shape[0] < 1)
		return fv_error(FV_ERR_SHAPE, "%s: group_counts %s must be a non-empty vector", who,
		                fv_shape_str((*gc)->ndim, (*gc)->shape));
	return FV_OK;
}

/* The (B, 1, n) weights as a context tensor, or NULL with the error set. */
static inline fv_tensor *group_weights(fv_ctx *ctx, const char *who, const fv_loss_extras *ex,
                                       const fv_tensor *output)
{
	const fv_tensor *ga, *gc;
	if (group_inputs(who, ex, output, &ga, &gc) != FV_OK)
		return NULL;
	int64_t groups = gc->shape[0];
	double total = 0;
	for (int64_t g = 0; g < groups; g++)
		total += (double)gc->data[g];
	const int64_t shape[3] = {ga->shape[0], 1, ga->shape[1]};
	fv_tensor *w = fv_ctx_empty(ctx, 3, shape);
	if (w == NULL)
		return NULL;
	for (int64_t i = 0; i < ga->numel; i++) {
		double id = (double)ga->data[i];
		int64_t g = (int64_t)id - 1;
		if (g < 0)
			g += groups; /* Python's negative index */
		if (id != floor(id) || g < 0 || g >= groups) {
			fv_error(FV_ERR_ARG, "%s: group_assignment holds %g; expected a group id in "
			         "1..%lld (the length of group_counts)", who, id, (long long)groups);
			return NULL;
		}
		w->data[i] = (fv_real)(total / (double)groups / (double)gc->data[g]);
	}
	return w;
}

#endif
