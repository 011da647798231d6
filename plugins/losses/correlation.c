/*
** correlation.c: openretina's CorrelationLoss3d
** (openretina.modules.losses.correlation).
**
** The Pearson correlation over time between output and the lagged target,
** per batch element and neuron:
**
**     corr = mean_t(do * dt) / sqrt((mean_t(do^2) + eps) * (mean_t(dt^2) + eps))
**
** with do, dt the deviations from the time means and eps the `bias`
** argument.  With negate (the default: a loss to minimise) the sign is
** flipped; the result is the sum or (avg) the mean of every correlation,
** or with per_neuron the mean over the batch per neuron.  openretina also
** keeps the batch-mean correlations, never negated, for logging; they are
** kept here too (see per_neuron_correlations in docs/components/losses.md).
*/
#include <stddef.h>

#include <fovea/plugin.h>

#include "lagged_target.h"

/* The options are the whole state: no create(), no destroy(). */
typedef struct correlation_opts {
	double bias;
	bool per_neuron;
	bool avg;
	bool negate;
} correlation_opts;

static const fv_option correlation_options[] = {
	FV_OPT("bias", FLOAT, correlation_opts, bias, "1e-16",
	       "eps added to both variances under the square root"),
	FV_OPT("per_neuron", BOOL, correlation_opts, per_neuron, "false",
	       "return one value per neuron (mean over the batch) instead of a scalar"),
	FV_OPT("avg", BOOL, correlation_opts, avg, "false",
	       "scalar: mean instead of sum of the correlations (ignored with per_neuron)"),
	FV_OPT("negate", BOOL, correlation_opts, negate, "true",
	       "return minus the correlation (a loss); false gives the correlation (a metric)"),
	{0},
};

static const int time_axis[1] = {1};

/* x - mean over time (keepdim). */
static fv_tensor *deviation(fv_ctx *ctx, fv_tensor *x)
{
	return fv_sub(ctx, x, fv_mean(ctx, x, 1, time_axis, true));
}

static fv_tensor *time_mean(fv_ctx *ctx, fv_tensor *x)
{
	return fv_mean(ctx, x, 1, time_axis, true);
}

/* Keep a detached copy of the per-neuron correlations. */
/* openretina keeps the last batch's correlations in the non-persistent
** buffer _per_neuron_correlations; so does fovea, as module state. */
static fv_status remember(fv_module *m, const fv_tensor *per_neuron)
{
	fv_tensor *kept = fv_module_set_state(m, "_per_neuron_correlations", per_neuron->ndim,
	                                      per_neuron->shape);
	return kept ? fv_tensor_copy(kept, per_neuron) : FV_ERR_NOMEM;
}

static fv_tensor *correlation_loss_fn(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                      fv_tensor *target)
{
	const correlation_opts *p = fv_module_priv(m);
	if (loss_args_missing("CorrelationLoss3d", output, target))
		return NULL;
	fv_tensor *t = lagged_target(ctx, "CorrelationLoss3d", output, target);
	if (t == NULL)
		return NULL;
	fv_tensor *d_out = deviation(ctx, output);
	fv_tensor *d_target = deviation(ctx, t);
	fv_tensor *var_out = time_mean(ctx, fv_square(ctx, d_out));
	fv_tensor *var_target = time_mean(ctx, fv_square(ctx, d_target));
	fv_tensor *cov = time_mean(ctx, fv_mul(ctx, d_out, d_target));
	fv_tensor *norm = fv_sqrt(ctx, fv_mul(ctx, fv_add_scalar(ctx, var_out, p->bias),
	                                       fv_add_scalar(ctx, var_target, p->bias)));
	fv_tensor *corrs = fv_div(ctx, cov, norm);
	fv_tensor *per_neuron = mean_per_neuron(ctx, corrs);
	if (per_neuron == NULL || remember(m, per_neuron) != FV_OK)
		return NULL;

	if (p->negate)
		corrs = fv_neg(ctx, corrs);
	if (p->per_neuron)
		return p->negate ? mean_per_neuron(ctx, corrs) : per_neuron;
	return p->avg ? fv_mean_all(ctx, corrs) : fv_sum_all(ctx, corrs);
}

static const char *const correlation_names[] = {
	"CorrelationLoss3d",
	"openretina.modules.losses.correlation.CorrelationLoss3d",
	"openretina.modules.losses.CorrelationLoss3d",
	"openretina.modules.measures.CorrelationLoss3d",
	NULL,
};

static const fv_component correlation_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = correlation_names,
	.doc = "(negated) Pearson correlation over time of output and lagged target",
	.options = correlation_options,
	.priv_size = sizeof(correlation_opts),
	.loss = correlation_loss_fn,
};

FV_PLUGIN_DEFINE("losses-correlation", &correlation_component);
