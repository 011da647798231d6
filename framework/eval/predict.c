/*
** predict.c: a trained model's responses to a stimulus held in memory
** (predict.h): the session and the stimulus are checked against the
** checkpoint's data info, the stimulus becomes a batch tensor (read in
** place when it can be), and the model runs without grad.
*/
#include <math.h>
#include <string.h>

#include "fovea/predict.h"

void fv_stimulus_view_dense(fv_stimulus_view *v, const float *data, int ndim,
                            const int64_t *shape)
{
	memset(v, 0, sizeof *v);
	v->data = data;
	v->ndim = ndim;
	int64_t stride = 1;
	for (int d = ndim - 1; d >= 0 && d < 5; d--) {
		v->shape[d] = shape[d];
		v->strides[d] = stride;
		stride *= shape[d];
	}
}

/* The session to read out: the one named, or the only one. */
static fv_status pick_session(const fv_data_info *info, const char *session, const char **out)
{
	if (session == NULL) {
		if (info->n_sessions == 1) {
			*out = info->sessions[0];
			return FV_OK;
		}
		return fv_error(FV_ERR_ARG, "the model has %zu sessions (the first '%s'): name the one "
		                "whose readout predicts", info->n_sessions,
		                info->n_sessions ? info->sessions[0] : "");
	}
	for (size_t i = 0; i < info->n_sessions; i++)
		if (strcmp(info->sessions[i], session) == 0) {
			*out = info->sessions[i];
			return FV_OK;
		}
	const char *near = fv_closest_name(session, info->sessions, info->n_sessions);
	return fv_error(FV_ERR_NOTFOUND, "the model has no session '%s'%s%s%s (it has %zu, the "
	                "first '%s')", session, near ? "; did you mean '" : "", near ? near : "",
	                near ? "'?" : "", info->n_sessions, info->n_sessions ? info->sessions[0] : "");
}

static fv_status check_stimulus(const fv_data_info *info, const fv_stimulus_view *x)
{
	if (x == NULL || x->data == NULL)
		return fv_error(FV_ERR_ARG, "fv_predict: no stimulus");
	bool ok = x->ndim == 4 || x->ndim == 5;
	int first = x->ndim == 5;
	for (int d = 0; ok && d < x->ndim; d++)
		ok = x->shape[d] > 0;
	if (ok)
		ok = x->shape[first] == info->input_shape[0] &&
		     x->shape[first + 2] == info->input_shape[1] &&
		     x->shape[first + 3] == info->input_shape[2];
	if (ok)
		return FV_OK;
	char want[64];
	snprintf(want, sizeof want, "%s", fv_shape_str(3, info->input_shape));
	int ndim = x->ndim >= 0 && x->ndim <= 5 ? x->ndim : 0;
	return fv_error(FV_ERR_SHAPE, "stimulus of shape %s: expected (channels, time, height, "
	                "width) or a batch of them, with (channels, height, width) = %s as the model "
	                "was trained", fv_shape_str(ndim, x->shape), want);
}

static bool is_dense(const fv_stimulus_view *x)
{
	int64_t stride = 1;
	for (int d = x->ndim - 1; d >= 0; d--) {
		if (x->shape[d] != 1 && x->strides[d] != stride)
			return false;
		stride *= x->shape[d];
	}
	return true;
}

/* The caller's array as a context tensor sharing its memory: ops only read
** their inputs, and the tensor lives no longer than the call. */
static fv_tensor *wrap(fv_ctx *ctx, const fv_stimulus_view *x, const int64_t shape[5])
{
	fv_tensor *t = fv_ctx_alloc(ctx, sizeof *t);
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof *t);
	t->data = (fv_real *)x->data;
	t->ndim = 5;
	t->numel = 1;
	for (int d = 0; d < 5; d++) {
		t->shape[d] = shape[d];
		t->numel *= shape[d];
	}
	return t;
}

/* A gathered copy, normalised as cmd_predict always has: in double, then
** rounded once. */
static fv_tensor *gather(fv_ctx *ctx, const fv_stimulus_view *x, const int64_t shape[5],
                         double mean, double std)
{
	fv_tensor *t = fv_ctx_empty(ctx, 5, shape);
	if (t == NULL)
		return NULL;
	int64_t st[5] = {0};
	for (int d = 0; d < x->ndim; d++)
		st[5 - x->ndim + d] = x->strides[d];
	fv_real *out = t->data;
	int64_t bad = 0;
	for (int64_t n = 0; n < shape[0]; n++)
		for (int64_t c = 0; c < shape[1]; c++)
			for (int64_t f = 0; f < shape[2]; f++)
				for (int64_t h = 0; h < shape[3]; h++) {
					const float *row = x->data + n * st[0] + c * st[1] + f * st[2] + h * st[3];
					for (int64_t w = 0; w < shape[4]; w++, out++) {
						*out = (fv_real)(((double)row[w * st[4]] - mean) / std);
						bad += !isfinite(*out);
					}
				}
	/* a finite mean can still push every pixel past float's range */
	if (bad > 0) {
		fv_error(FV_ERR_ARG, "%lld of its %lld values are not finite%s (stim_mean %g, "
		         "stim_std %g); nothing predicted", (long long)bad, (long long)t->numel,
		         mean != 0.0 || std != 1.0 ? " once normalised" : "", mean, std);
		return NULL;
	}
	return t;
}

static fv_tensor *as_batch(fv_ctx *ctx, const fv_data_info *info, const fv_stimulus_view *x,
                           unsigned flags)
{
	bool normalize = (flags & FV_PREDICT_NORMALIZE) != 0;
	if (normalize && (!isfinite(info->stim_mean) || !isfinite(info->stim_std) ||
	                  !(info->stim_std > 0))) {
		fv_error(FV_ERR_ARG, "data_info stim_mean %g and stim_std %g cannot normalise a "
		         "stimulus (the mean must be finite, the std finite and > 0)",
		         info->stim_mean, info->stim_std);
		return NULL;
	}
	int first = x->ndim == 5;
	int64_t shape[5] = {first ? x->shape[0] : 1, x->shape[first], x->shape[first + 1],
	                    x->shape[first + 2], x->shape[first + 3]};
	if (!normalize && is_dense(x))
		return wrap(ctx, x, shape);
	return gather(ctx, x, shape, normalize ? info->stim_mean : 0.0,
	              normalize ? info->stim_std : 1.0);
}

fv_tensor *fv_predict(fv_module *model, fv_ctx *ctx, const fv_data_info *info,
                      const fv_stimulus_view *x, const char *session, unsigned flags)
{
	if (model == NULL || ctx == NULL || info == NULL) {
		fv_error(FV_ERR_ARG, "fv_predict: no %s", model == NULL ? "model"
		                                           : ctx == NULL ? "context" : "data info");
		return NULL;
	}
	const char *key = NULL;
	if (pick_session(info, session, &key) != FV_OK || check_stimulus(info, x) != FV_OK)
		return NULL;
	fv_tensor *batch = as_batch(ctx, info, x, flags);
	if (batch == NULL)
		return NULL;
	bool was = fv_ctx_set_grad_enabled(ctx, false);
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = key;
	/* the stimulus is a full movie: a SingleCellSeparatedLNP crops it
	** around rf_location, as openretina's training_step does */
	fa.crop_input = true;
	fv_tensor *y = fv_module_forward(model, ctx, batch, &fa);
	fv_ctx_set_grad_enabled(ctx, was);
	if (y != NULL && y->ndim != 3) {
		fv_error(FV_ERR_SHAPE, "the model's output %s is not (batch, time, neurons)",
		         fv_shape_str(y->ndim, y->shape));
		return NULL;
	}
	return y;
}
