/*
** reducers.c: openretina's response reducers
** (openretina.insilico.stimulus_optimization.objective), which objectives
** use to turn a response trace into the score they maximise.
**
**   MeanReducer(axis=0):              mean over `axis`.
**   SliceMeanReducer(axis, start, length):
**                                     mean over `length` entries of `axis`
**                                     from `start`; cut short at the end of
**                                     the axis, and when `start` lies beyond
**                                     it, taken from 0 instead (openretina
**                                     warns and does the same).
*/
#include <stddef.h>

#include <fovea/plugin.h>

/* The options are the whole state: no create(), no destroy(). */
typedef struct reducer_opts {
	int64_t axis;
	int64_t start;  /* SliceMeanReducer */
	int64_t length; /* SliceMeanReducer */
} reducer_opts;

static const fv_option mean_options[] = {
	FV_OPT("axis", INT, reducer_opts, axis, "0",
	       "axis to average over (negative: counted from the end)"),
	{0},
};

static const fv_option slice_mean_options[] = {
	FV_OPT("axis", INT, reducer_opts, axis, NULL,
	       "axis to average over (negative: counted from the end)", .flags = FV_OPT_REQUIRED),
	FV_OPT("start", INT, reducer_opts, start, NULL, "first index of the averaged slice",
	       .min = 0, .max = 1e15, .flags = FV_OPT_REQUIRED),
	FV_OPT("length", INT, reducer_opts, length, NULL,
	       "number of entries averaged (fewer when the axis ends first)", .min = 1, .max = 1e15,
	       .flags = FV_OPT_REQUIRED),
	{0},
};

/* The axis as a non-negative index of x, or -1 with a message. */
static int axis_of(const fv_module *m, const fv_tensor *x, int64_t axis)
{
	int64_t a = axis < 0 ? axis + x->ndim : axis;
	if (a < 0 || a >= x->ndim) {
		fv_error(FV_ERR_SHAPE, "%s: axis %lld does not exist in responses of shape %s",
		         fv_module_component(m)->names[0], (long long)axis,
		         fv_shape_str(x->ndim, x->shape));
		return -1;
	}
	return (int)a;
}

static fv_tensor *mean_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const reducer_opts *r = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	int axis = axis_of(m, x, r->axis);
	return axis < 0 ? NULL : fv_mean(ctx, x, 1, &axis, false);
}

static fv_tensor *slice_mean_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                     const fv_forward_args *fa)
{
	(void)fa;
	const reducer_opts *r = fv_module_priv(m);
	if (x == NULL)
		return NULL;
	int axis = axis_of(m, x, r->axis);
	if (axis < 0)
		return NULL;
	int64_t size = x->shape[axis], start = r->start;
	int64_t length = size - start < r->length ? size - start : r->length;
	if (length <= 0) { /* start beyond the end: openretina falls back to 0 */
		start = 0;
		length = r->length < size ? r->length : size;
	}
	if (length <= 0) {
		fv_error(FV_ERR_SHAPE, "SliceMeanReducer: axis %d of responses %s is empty", axis,
		         fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	fv_tensor *slice = fv_slice(ctx, x, axis, start, start + length, 1);
	return fv_mean(ctx, slice, 1, &axis, false);
}

static const char *const mean_names[] = {
	"MeanReducer",
	"openretina.insilico.stimulus_optimization.objective.MeanReducer",
	"openretina.insilico.MeanReducer",
	NULL,
};

static const char *const slice_mean_names[] = {
	"SliceMeanReducer",
	"openretina.insilico.stimulus_optimization.objective.SliceMeanReducer",
	"openretina.insilico.SliceMeanReducer",
	NULL,
};

static const fv_component mean_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REDUCER,
	.names = mean_names,
	.doc = "mean of the responses over one axis (time, for a (time, neuron) trace)",
	.options = mean_options,
	.priv_size = sizeof(reducer_opts),
	.forward = mean_forward,
};

static const fv_component slice_mean_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_REDUCER,
	.names = slice_mean_names,
	.doc = "mean of the responses over a window [start, start+length) of one axis",
	.options = slice_mean_options,
	.priv_size = sizeof(reducer_opts),
	.forward = slice_mean_forward,
};

FV_PLUGIN_DEFINE("reducers", &mean_component, &slice_mean_component);
