/*
** correlation.c: openretina's correlation losses
** (openretina.modules.losses.correlation): CorrelationLoss3d and its
** variants CelltypeCorrelationLoss3d (correlations weighted by cell type,
** group_weights.h), L1CorrelationLoss3d (plus 0.0002 times the L1 norm of
** a pre-calcium trace) and ScaledCorrelationLoss3d (mean correlation over
** windows of `scale` frames).
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
** kept here too (see per_neuron_correlations in docs/components/losses.md);
** the three variants keep them negated, whatever `negate`, as openretina.
*/
#include <stddef.h>

#include <fovea/plugin.h>

#include "group_weights.h"
#include "lagged_target.h"

typedef struct correlation_opts {
	double bias;
	bool per_neuron;
	bool avg;
	bool negate;
	int64_t scale; /* ScaledCorrelationLoss3d only */
} correlation_opts;

/* The options are the whole state: no create(), no destroy(). */
#define BIAS_OPTION                                                   \
	FV_OPT("bias", FLOAT, correlation_opts, bias, "1e-16",        \
	       "eps added to both variances under the square root")

#define REDUCTION_OPTIONS                                                                       \
	FV_OPT("per_neuron", BOOL, correlation_opts, per_neuron, "false",                       \
	       "return one value per neuron (mean over the batch) instead of a scalar"),        \
	FV_OPT("avg", BOOL, correlation_opts, avg, "false",                                     \
	       "scalar: mean instead of sum of the correlations (ignored with per_neuron)"),    \
	FV_OPT("negate", BOOL, correlation_opts, negate, "true",                                \
	       "return minus the correlation (a loss); false gives the correlation (a metric)")

static const fv_option correlation_options[] = {
	BIAS_OPTION,
	REDUCTION_OPTIONS,
	{0},
};

static const fv_option scaled_options[] = {
	BIAS_OPTION,
	FV_OPT("scale", INT, correlation_opts, scale, "30",
	       "frames per window; the correlations of consecutive windows are averaged "
	       "(openretina's float default 30.0 fails: give an integer)", .min = 1, .max = 1e9),
	REDUCTION_OPTIONS,
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

/* openretina keeps the last batch's correlations in the non-persistent
** buffer _per_neuron_correlations; so does fovea, as module state. */
static fv_status remember(fv_module *m, const fv_tensor *per_neuron)
{
	fv_tensor *kept = fv_module_set_state(m, "_per_neuron_correlations", per_neuron->ndim,
	                                      per_neuron->shape);
	return kept ? fv_tensor_copy(kept, per_neuron) : FV_ERR_NOMEM;
}

/* (B, 1, n): the correlation over time of output and t, t already aligned. */
static fv_tensor *correlations(fv_ctx *ctx, const correlation_opts *p, fv_tensor *output,
                               fv_tensor *t)
{
	fv_tensor *d_out = deviation(ctx, output);
	fv_tensor *d_target = deviation(ctx, t);
	fv_tensor *var_out = time_mean(ctx, fv_square(ctx, d_out));
	fv_tensor *var_target = time_mean(ctx, fv_square(ctx, d_target));
	fv_tensor *cov = time_mean(ctx, fv_mul(ctx, d_out, d_target));
	fv_tensor *norm = fv_sqrt(ctx, fv_mul(ctx, fv_add_scalar(ctx, var_out, p->bias),
	                                       fv_add_scalar(ctx, var_target, p->bias)));
	return fv_div(ctx, cov, norm);
}

/* The correlations of output and the lagged target. */
static fv_tensor *lagged_correlations(fv_ctx *ctx, const char *who, const correlation_opts *p,
                                      fv_tensor *output, fv_tensor *target)
{
	if (loss_args_missing(who, output, target))
		return NULL;
	fv_tensor *t = lagged_target(ctx, who, output, target);
	return t ? correlations(ctx, p, output, t) : NULL;
}

/* Keep the batch means (negated when `kept_negated`), then reduce the
** (optionally negated) correlations as the options say. */
static fv_tensor *reduce_correlations(fv_module *m, fv_ctx *ctx, fv_tensor *corrs,
                                      bool kept_negated)
{
	const correlation_opts *p = fv_module_priv(m);
	fv_tensor *per_neuron = mean_per_neuron(ctx, corrs);
	if (per_neuron != NULL && kept_negated)
		per_neuron = fv_neg(ctx, per_neuron);
	if (per_neuron == NULL || remember(m, per_neuron) != FV_OK)
		return NULL;
	if (p->negate)
		corrs = fv_neg(ctx, corrs);
	if (p->per_neuron)
		return mean_per_neuron(ctx, corrs);
	return p->avg ? fv_mean_all(ctx, corrs) : fv_sum_all(ctx, corrs);
}

static fv_tensor *correlation_loss_fn(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                      fv_tensor *target)
{
	const correlation_opts *p = fv_module_priv(m);
	fv_tensor *corrs = lagged_correlations(ctx, "CorrelationLoss3d", p, output, target);
	return corrs ? reduce_correlations(m, ctx, corrs, false) : NULL;
}

/* ---- CelltypeCorrelationLoss3d: correlations weighted by cell type ------ */

static fv_tensor *celltype_with(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target,
                                const fv_loss_extras *ex)
{
	static const char who[] = "CelltypeCorrelationLoss3d";
	const correlation_opts *p = fv_module_priv(m);
	fv_tensor *corrs = lagged_correlations(ctx, who, p, output, target);
	if (corrs == NULL)
		return NULL;
	fv_tensor *w = group_weights(ctx, who, ex, output);
	return w ? reduce_correlations(m, ctx, fv_mul(ctx, corrs, w), true) : NULL;
}

static fv_tensor *celltype_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	return celltype_with(m, ctx, output, target, NULL);
}

/* ---- L1CorrelationLoss3d: plus an L1 penalty on the pre-calcium trace --- */

/* openretina hard-codes the weight of the L1 term. */
#define L1_CORRELATION_GAMMA 0.0002

static fv_tensor *l1_with(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target,
                          const fv_loss_extras *ex)
{
	static const char who[] = "L1CorrelationLoss3d";
	const correlation_opts *p = fv_module_priv(m);
	fv_tensor *pre_ca = fv_loss_extra(ex, "pre_ca");
	if (pre_ca == NULL && output != NULL && target != NULL) {
		fv_error(FV_ERR_ARG, "%s: needs the input pre_ca (the second item of openretina's "
		         "output pair) beside output and target", who);
		return NULL;
	}
	/* openretina's per_neuron branch views a transposed tensor and fails
	** for every batch > 1; there is no loss to reproduce. */
	if (p->per_neuron) {
		fv_error(FV_ERR_ARG, "%s: per_neuron: true is not supported (openretina's "
		         "per-neuron L1 term raises for any batch > 1)", who);
		return NULL;
	}
	fv_tensor *corrs = lagged_correlations(ctx, who, p, output, target);
	fv_tensor *loss = corrs ? reduce_correlations(m, ctx, corrs, true) : NULL;
	fv_tensor *l1 = fv_abs(ctx, pre_ca);
	l1 = p->avg ? fv_mean_all(ctx, l1) : fv_sum_all(ctx, l1);
	return loss ? fv_add(ctx, loss, fv_mul_scalar(ctx, l1, L1_CORRELATION_GAMMA)) : NULL;
}

static fv_tensor *l1_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	return l1_with(m, ctx, output, target, NULL);
}

/* ---- ScaledCorrelationLoss3d: mean correlation over windows ------------ */

/* Correlations over consecutive windows of `scale` frames, averaged; the
** last T_out % scale frames are left out, as openretina's loop does. */
static fv_tensor *scaled_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	static const char who[] = "ScaledCorrelationLoss3d";
	const correlation_opts *p = fv_module_priv(m);
	if (loss_args_missing(who, output, target) || lagged_target(ctx, who, output, target) == NULL)
		return NULL;
	int64_t s = p->scale, windows = output->shape[1] / s;
	int64_t lag = target->shape[1] - output->shape[1];
	if (windows == 0) {
		fv_error(FV_ERR_SHAPE, "%s: output %s has fewer frames than scale %lld (openretina "
		         "divides by zero windows)", who, fv_shape_str(output->ndim, output->shape),
		         (long long)s);
		return NULL;
	}
	fv_tensor *sum = NULL;
	for (int64_t i = 0; i < windows; i++) {
		fv_tensor *o = fv_slice(ctx, output, 1, i * s, (i + 1) * s, 1);
		fv_tensor *t = fv_slice(ctx, target, 1, lag + i * s, lag + (i + 1) * s, 1);
		fv_tensor *c = correlations(ctx, p, o, t);
		sum = sum ? fv_add(ctx, sum, c) : c;
	}
	fv_tensor *corrs = fv_mul_scalar(ctx, sum, 1.0 / (double)windows);
	return corrs ? reduce_correlations(m, ctx, corrs, true) : NULL;
}

/* openretina's forward takes **kwargs (the legacy one group_assignment and
** group_counts) and ignores them. */
static fv_tensor *scaled_with(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target,
                              const fv_loss_extras *ex)
{
	(void)ex;
	return scaled_loss(m, ctx, output, target);
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

static const char *const celltype_names[] = {
	"CelltypeCorrelationLoss3d",
	"openretina.modules.losses.correlation.CelltypeCorrelationLoss3d",
	"openretina.modules.measures.CelltypeCorrelationLoss3d",
	NULL,
};

static const fv_component celltype_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = celltype_names,
	.doc = "CorrelationLoss3d weighted per neuron by cell type: needs the inputs "
	       "group_assignment (batch, neurons; 1-based ids) and group_counts",
	.options = correlation_options,
	.priv_size = sizeof(correlation_opts),
	.loss = celltype_loss,
	.loss_with = celltype_with,
};

static const char *const l1_names[] = {
	"L1CorrelationLoss3d",
	"openretina.modules.losses.correlation.L1CorrelationLoss3d",
	"openretina.modules.measures.L1CorrelationLoss3d",
	NULL,
};

static const fv_component l1_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = l1_names,
	.doc = "CorrelationLoss3d plus 0.0002 times the (mean|sum) of |pre_ca|: needs the input "
	       "pre_ca",
	.options = correlation_options,
	.priv_size = sizeof(correlation_opts),
	.loss = l1_loss,
	.loss_with = l1_with,
};

static const char *const scaled_names[] = {
	"ScaledCorrelationLoss3d",
	"openretina.modules.losses.correlation.ScaledCorrelationLoss3d",
	"openretina.modules.measures.ScaledCorrelationLoss3d",
	NULL,
};

static const fv_component scaled_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = scaled_names,
	.doc = "(negated) correlation averaged over consecutive windows of `scale` frames",
	.options = scaled_options,
	.priv_size = sizeof(correlation_opts),
	.loss = scaled_loss,
	.loss_with = scaled_with,
};

FV_PLUGIN_DEFINE("losses-correlation", &correlation_component, &celltype_component,
                 &l1_component, &scaled_component);
