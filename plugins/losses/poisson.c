/*
** poisson.c: openretina's Poisson losses (openretina.modules.losses.poisson).
**
**   PoissonLoss3d:   l = output - target * log(output + bias), elementwise
**                    on the lagged target, reduced to a scalar (sum, or mean
**                    with avg) or, with per_neuron, to the mean over every
**                    axis but the last (then avg is ignored, as openretina).
**   L1PoissonLoss3d: the same plus gamma_l1 times the same reduction of
**                    |output|: a sparsity pressure on predicted rates.
**   CelltypePoissonLoss3d: the elementwise loss weighted per neuron by its
**                    cell type (group_weights.h) before the reduction.
**   StandardPoissonLoss3d: PoissonLoss3d that accepts group_assignment and
**                    group_counts and ignores them (openretina's legacy
**                    measures module, for the cell-type data loader).
**
** It is the negative Poisson log-likelihood up to the log(target!) term,
** which does not depend on the model.
*/
#include <stddef.h>

#include <fovea/plugin.h>

#include "group_weights.h"
#include "lagged_target.h"

typedef struct poisson_opts {
	double bias;
	bool per_neuron;
	bool avg;
	double gamma_l1; /* L1PoissonLoss3d only */
} poisson_opts;

/* The options are the whole state: no create(), no destroy(). */
#define POISSON_OPTIONS                                                                      \
	FV_OPT("bias", FLOAT, poisson_opts, bias, "1e-16",                                   \
	       "added to output inside the log (keeps log finite at zero rate)"),            \
	FV_OPT("per_neuron", BOOL, poisson_opts, per_neuron, "false",                        \
	       "return one loss per neuron (mean over batch and time) instead of a scalar"), \
	FV_OPT("avg", BOOL, poisson_opts, avg, "false",                                      \
	       "scalar loss: mean instead of sum (ignored with per_neuron)")

static const fv_option poisson_options[] = {
	POISSON_OPTIONS,
	{0},
};

static const fv_option l1_poisson_options[] = {
	POISSON_OPTIONS,
	FV_OPT("gamma_l1", FLOAT, poisson_opts, gamma_l1, "0.001",
	       "weight of the L1 penalty on the output", .min = 0, .max = 1e30),
	{0},
};

/* openretina's reduction: per neuron, else mean or sum of everything. */
static fv_tensor *reduce(fv_ctx *ctx, fv_tensor *x, const poisson_opts *p)
{
	if (p->per_neuron)
		return mean_per_neuron(ctx, x);
	return p->avg ? fv_mean_all(ctx, x) : fv_sum_all(ctx, x);
}

static fv_tensor *poisson_terms(fv_ctx *ctx, const char *who, const poisson_opts *p,
                                fv_tensor *output, fv_tensor *target)
{
	if (loss_args_missing(who, output, target))
		return NULL;
	fv_tensor *t = lagged_target(ctx, who, output, target);
	if (t == NULL)
		return NULL;
	fv_tensor *log_rate = fv_log(ctx, fv_add_scalar(ctx, output, p->bias));
	return fv_sub(ctx, output, fv_mul(ctx, t, log_rate));
}

static fv_tensor *poisson_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	const poisson_opts *p = fv_module_priv(m);
	return reduce(ctx, poisson_terms(ctx, "PoissonLoss3d", p, output, target), p);
}

static fv_tensor *l1_poisson_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	const poisson_opts *p = fv_module_priv(m);
	fv_tensor *poisson = reduce(ctx, poisson_terms(ctx, "L1PoissonLoss3d", p, output, target), p);
	if (poisson == NULL)
		return NULL;
	fv_tensor *l1 = reduce(ctx, fv_abs(ctx, output), p);
	return fv_add(ctx, poisson, fv_mul_scalar(ctx, l1, p->gamma_l1));
}

static fv_tensor *celltype_poisson_with(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                        fv_tensor *target, const fv_loss_extras *ex)
{
	static const char who[] = "CelltypePoissonLoss3d";
	const poisson_opts *p = fv_module_priv(m);
	fv_tensor *terms = poisson_terms(ctx, who, p, output, target);
	if (terms == NULL)
		return NULL;
	return reduce(ctx, fv_mul(ctx, terms, group_weights(ctx, who, ex, output)), p);
}

static fv_tensor *celltype_poisson_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                        fv_tensor *target)
{
	return celltype_poisson_with(m, ctx, output, target, NULL);
}

/* The groups are accepted and unused, as openretina's legacy class does. */
static fv_tensor *standard_poisson_with(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                        fv_tensor *target, const fv_loss_extras *ex)
{
	(void)ex;
	const poisson_opts *p = fv_module_priv(m);
	return reduce(ctx, poisson_terms(ctx, "StandardPoissonLoss3d", p, output, target), p);
}

static fv_tensor *standard_poisson_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output,
                                        fv_tensor *target)
{
	return standard_poisson_with(m, ctx, output, target, NULL);
}

static const char *const poisson_names[] = {
	"PoissonLoss3d",
	"openretina.modules.losses.poisson.PoissonLoss3d",
	"openretina.modules.losses.PoissonLoss3d",
	"openretina.modules.measures.PoissonLoss3d",
	NULL,
};

static const fv_component poisson_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = poisson_names,
	.doc = "Poisson negative log-likelihood output - target*log(output+bias), target lagged",
	.options = poisson_options,
	.priv_size = sizeof(poisson_opts),
	.loss = poisson_loss,
};

static const char *const l1_poisson_names[] = {
	"L1PoissonLoss3d",
	"openretina.modules.losses.poisson.L1PoissonLoss3d",
	NULL,
};

static const fv_component l1_poisson_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = l1_poisson_names,
	.doc = "PoissonLoss3d plus gamma_l1 times the same reduction of |output|",
	.options = l1_poisson_options,
	.priv_size = sizeof(poisson_opts),
	.loss = l1_poisson_loss,
};

static const char *const celltype_poisson_names[] = {
	"CelltypePoissonLoss3d",
	"openretina.modules.losses.poisson.CelltypePoissonLoss3d",
	"openretina.modules.measures.CelltypePoissonLoss3d",
	NULL,
};

static const fv_component celltype_poisson_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = celltype_poisson_names,
	.doc = "PoissonLoss3d weighted per neuron by cell type: needs the inputs group_assignment "
	       "(batch, neurons; 1-based ids) and group_counts",
	.options = poisson_options,
	.priv_size = sizeof(poisson_opts),
	.loss = celltype_poisson_loss,
	.loss_with = celltype_poisson_with,
};

static const char *const standard_poisson_names[] = {
	"StandardPoissonLoss3d",
	"openretina.modules.measures.StandardPoissonLoss3d",
	NULL,
};

static const fv_component standard_poisson_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = standard_poisson_names,
	.doc = "PoissonLoss3d that accepts group_assignment and group_counts and ignores them",
	.options = poisson_options,
	.priv_size = sizeof(poisson_opts),
	.loss = standard_poisson_loss,
	.loss_with = standard_poisson_with,
};

FV_PLUGIN_DEFINE("losses-poisson", &poisson_component, &l1_poisson_component,
                 &celltype_poisson_component, &standard_poisson_component);
