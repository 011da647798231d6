/*
** insilico_units.c: the units of an in-silico run and their responses.
**
** A unit is what one optimisation drives: an output neuron of a session,
** or for inner units the central unit of one channel of a layer, read as
** openretina's InnerNeuronVisualizationObjective reads it
** (out[:, channel][..., H // 2, W // 2]).  The pipeline needs every
** unit's response over time for three things: the record's response
** trace at the final stimulus, the mean response to a reference movie
** (one forward gives every unit's), and, for a layer, its number of
** channels and frames before any optimisation (visualize_model_neurons'
** get_output_shape_for_layer).
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/npy.h"
#include "insilico/insilico_internal.h"

/* (1, T', N) -> (T', N) for the session's N neurons. */
static fv_tensor *neuron_responses(const fv__ins *s, fv_ctx *ctx, fv_tensor *x)
{
	fv_tensor *y = fv_model_forward(s->model, ctx, x, s->session);
	if (y == NULL)
		return NULL;
	int64_t n = s->info->n_neurons[s->session_index];
	if (y->ndim != 3 || y->shape[0] != 1 || y->shape[2] != n) {
		fv_error(FV_ERR_SHAPE, "the model's output %s is not (1, time, neurons) with the %lld "
		                       "neurons of session '%s'",
		         fv_shape_str(y->ndim, y->shape), (long long)n, s->session);
		return NULL;
	}
	return fv_reshape(ctx, y, 2, y->shape + 1);
}

/* The layer's output (1, C, ..., H, W) -> (frames, C): every channel's
** central unit, frames being the dims between channel and height. */
static fv_tensor *central_units(const fv__ins *s, fv_ctx *ctx, fv_tensor *x)
{
	fv_tensor *out = NULL;
	if (fv_model_forward_capture(s->model, ctx, x, s->session, s->job->layer, &out) == NULL)
		return NULL;
	int nd = out->ndim;
	if (nd < 4) {
		fv_error(FV_ERR_SHAPE, "layer '%s': output %s has no (batch, channel, ..., height, "
		                       "width) dims",
		         s->job->layer, fv_shape_str(nd, out->shape));
		return NULL;
	}
	int64_t C = out->shape[1], H = out->shape[nd - 2], W = out->shape[nd - 1], T = 1;
	for (int d = 2; d < nd - 2; d++)
		T *= out->shape[d];
	int64_t shape[2] = {T, C};
	fv_tensor *r = fv_ctx_empty(ctx, 2, shape);
	if (r == NULL)
		return NULL;
	/* batch element 0: the stimulus is a batch of one */
	for (int64_t c = 0; c < C; c++)
		for (int64_t t = 0; t < T; t++)
			r->data[t * C + c] = out->data[((c * T + t) * H + H / 2) * W + W / 2];
	return r;
}

fv_tensor *fv__ins_responses(const fv__ins *s, fv_ctx *ctx, fv_tensor *x)
{
	fv_ctx_set_grad_enabled(ctx, false);
	return s->job->kind == FV_INSILICO_INNER_MEI ? central_units(s, ctx, x)
	                                             : neuron_responses(s, ctx, x);
}

fv_status fv__ins_probe_layer(fv__ins *s)
{
	const int64_t *in = s->info->input_shape;
	const int64_t shape[5] = {1, in[0], s->time_steps, in[1], in[2]};
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = ctx ? fv_ctx_zeros(ctx, 5, shape) : NULL;
	fv_tensor *r = x ? fv__ins_responses(s, ctx, x) : NULL;
	if (r != NULL) {
		s->layer_frames = r->shape[0];
		s->n_units = r->shape[1];
	}
	fv_ctx_free(ctx);
	return r != NULL ? FV_OK : FV_ERR_ARG;
}

static fv_status check_movie(const fv__ins *s, const fv_tensor *m)
{
	const int64_t *in = s->info->input_shape;
	if (m->ndim == 4 && m->shape[0] == in[0] && m->shape[2] == in[1] && m->shape[3] == in[2])
		return FV_OK;
	return fv_error(FV_ERR_SHAPE, "%s: shape %s, expected (channels, time, height, width) with "
	                "(channels, height, width) = (%lld, %lld, %lld)", s->job->reference,
	                fv_shape_str(m->ndim, m->shape), (long long)in[0], (long long)in[1],
	                (long long)in[2]);
}

/* The mean over time of every unit's response to movie `m`, normalised
** as the data loader normalises training stimuli. */
static fv_status mean_responses(fv__ins *s, fv_ctx *ctx, const fv_tensor *m)
{
	const int64_t shape[5] = {1, m->shape[0], m->shape[1], m->shape[2], m->shape[3]};
	fv_tensor *x = fv_ctx_from_data(ctx, 5, shape, m->data);
	if (x == NULL)
		return FV_ERR_NOMEM;
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(((double)x->data[i] - s->info->stim_mean) / s->info->stim_std);
	fv_tensor *y = fv__ins_responses(s, ctx, x);
	if (y == NULL)
		return FV_ERR_ARG;
	int64_t T = y->shape[0], U = y->shape[1];
	if ((s->reference_mean = fv__calloc((size_t)U, sizeof(double))) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (int64_t t = 0; t < T; t++)
		for (int64_t u = 0; u < U; u++)
			s->reference_mean[u] += (double)y->data[t * U + u] / (double)T;
	return FV_OK;
}

fv_status fv__ins_reference(fv__ins *s)
{
	fv_tensor *m = fv_npy_load(s->job->reference);
	fv_ctx *ctx = NULL;
	fv_status st = m != NULL ? check_movie(s, m) : FV_ERR_IO;
	if (st == FV_OK && (ctx = fv_ctx_new()) == NULL)
		st = fv_error(FV_ERR_NOMEM, "out of memory");
	if (st == FV_OK)
		st = mean_responses(s, ctx, m);
	if (st != FV_OK)
		fv_error_prefix("reference movie: ");
	fv_ctx_free(ctx);
	fv_tensor_free(m);
	return st;
}
