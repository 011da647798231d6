/*
** insilico_memory.c: the memory one optimisation of the run will need,
** checked before anything of its size is allocated or computed.
**
** time_steps is the one size of an in-silico run the user chooses freely
** (the model fixes channels, height and width), and everything of the run
** grows with it: the start stimulus drawn from N(0, init_std^2), the
** postprocessors' passes, an inner layer's probe, every forward.  With
** time_steps=100000000 the random start alone ran for minutes before any
** tensor check could object.  So before the first of those, the run
** estimates its peak:
**   - the stimulus (1, C, T, H, W), its gradient and the optimizer's two
**     moments (Adam's; SGD needs fewer), persistent for the whole run;
**   - one iteration's forward and backward through the model, which live
**     in the step's arena.  The model's cost per frame is unknown to the
**     framework (it is the plugins'), so it is measured: a forward and
**     backward at two short lengths, and a straight line through them to
**     time_steps.  Convolutions, pooling and readouts are all linear in
**     the number of frames.
** and refuses with fv__memory_check's "needs N GiB" when it exceeds the
** job's budget.
*/
#include <stdio.h>

#include "insilico/insilico_internal.h"
#include "tensor/tensor_internal.h"

/* Probe lengths: the first doubles from here until the model accepts it
** (a model needs at least its temporal receptive field). */
#define PROBE_FIRST 16
#define PROBE_LAST 4096

/* Arena bytes of one forward and backward at `frames` frames, 0 when the
** model refuses that length (its error is cleared: this is a question,
** not the run). */
static double probe(const fv__ins *s, int64_t frames)
{
	const int64_t *in = s->info->input_shape;
	const int64_t shape[5] = {1, in[0], frames, in[1], in[2]};
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = ctx != NULL ? fv_ctx_zeros(ctx, 5, shape) : NULL;
	if (x != NULL)
		x->requires_grad = true;
	fv_tensor *y = x != NULL ? fv_model_forward(s->model, ctx, x, s->session) : NULL;
	fv_tensor *loss = y != NULL ? fv_sum_all(ctx, y) : NULL;
	double bytes = 0;
	if (loss != NULL && fv_backward(ctx, loss) == FV_OK)
		bytes = (double)ctx->used_total;
	fv_ctx_free(ctx);
	if (bytes == 0)
		fv_clear_error();
	return bytes;
}

/* One iteration's activations at s->time_steps frames, extrapolated from
** two probes; 0 when the model accepts no probe length below time_steps
** (then the run is short, and the arena's own check still applies). */
static double activations(const fv__ins *s)
{
	int64_t T = s->time_steps;
	for (int64_t t = PROBE_FIRST; t <= PROBE_LAST && 2 * t < T; t *= 2) {
		double a = probe(s, t);
		if (a == 0)
			continue;
		double b = probe(s, 2 * t);
		if (b == 0)
			return 0;
		double per_frame = (b - a) / (double)t;
		return b + (per_frame > 0 ? per_frame : 0) * (double)(T - 2 * t);
	}
	return 0;
}

fv_status fv__ins_check_memory(const fv__ins *s)
{
	const int64_t *in = s->info->input_shape;
	double stimulus = (double)sizeof(fv_real) * (double)in[0] * (double)s->time_steps *
	                  (double)in[1] * (double)in[2];
	char what[256];
	snprintf(what, sizeof what, "a stimulus of %lld frames (1 x %lld x %lld x %lld x %lld: "
	         "it, its gradient and the optimizer's state)", (long long)s->time_steps,
	         (long long)in[0], (long long)s->time_steps, (long long)in[1], (long long)in[2]);
	/* when the stimulus alone is too much, nothing needs probing */
	fv_status st = fv__memory_check(4 * stimulus, what);
	if (st != FV_OK)
		return st;
	double act = activations(s);
	if (act == 0)
		return FV_OK;
	snprintf(what, sizeof what, "an optimisation of a stimulus of %lld frames (1 x %lld x %lld "
	         "x %lld x %lld: it, its gradient, the optimizer's state and one forward's "
	         "activations)", (long long)s->time_steps, (long long)in[0],
	         (long long)s->time_steps, (long long)in[1], (long long)in[2]);
	return fv__memory_check(4 * stimulus + act, what);
}
