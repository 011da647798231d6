/*
** cloned.c: ClonedReadout (openretina.modules.readout.base), another
** session's readout with a per-neuron scale and offset:
**
**   y = source(x) * alpha + beta        alpha (n) = 1, beta (n) = 0 at start
**
** It is what clone_readout gives every session after the first in the
** multi-session containers (multi.c), a simple way to share a readout's
** weights between sessions of matched neurons recorded under different
** conditions.  The container owns both modules and sets the source right
** after instantiating the clone (cloned_set_source); the clone does not own
** it, so the source's tensors appear once, under the first session.
*/
#include "multi.h"

typedef struct cloned_readout {
	fv_module *source; /* the first session's readout, owned by the container */
	fv_tensor *alpha, *beta;
} cloned_readout;

static fv_status cloned_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	cloned_readout *c = fv_module_priv(m);
	int64_t n = args->n_neurons;
	c->alpha = ro_param(m, "ClonedReadout", "alpha", 1, &n);
	c->beta = ro_param(m, "ClonedReadout", "beta", 1, &n);
	if (c->alpha == NULL || c->beta == NULL)
		return FV_ERR_NOMEM;
	fv_tensor_fill(c->alpha, 1);
	return FV_OK;
}

static fv_tensor *cloned_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                 const fv_forward_args *fa)
{
	cloned_readout *c = fv_module_priv(m);
	if (c->source == NULL) {
		fv_error(FV_ERR_ARG, "ClonedReadout (session '%s'): has no source readout; only "
		         "clone_readout builds it", fv_module_name(m));
		return NULL;
	}
	fv_tensor *y = fv_module_forward(c->source, ctx, x, fa);
	return fv_add(ctx, fv_mul(ctx, y, c->alpha), c->beta);
}

static fv_tensor *cloned_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)ctx;
	(void)fa;
	fv_error(FV_ERR_ARG, "ClonedReadout (session '%s'): regularizer is not implemented for "
	         "ClonedReadout (as in openretina)",
	         fv_module_name(m));
	return NULL;
}

/* ClonedReadout.initialize(): alpha 1, beta 0; it has no bias of its own. */
static fv_status cloned_initialize_bias(fv_module *m, const fv_tensor *mean_activity)
{
	(void)mean_activity;
	cloned_readout *c = fv_module_priv(m);
	fv_tensor_fill(c->alpha, 1);
	fv_tensor_fill(c->beta, 0);
	return FV_OK;
}

static const char *const cloned_names[] = {
	"ClonedReadout",
	"openretina.modules.readout.base.ClonedReadout",
	NULL,
};

const fv_component cloned_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_READOUT,
	.names = cloned_names,
	.doc = "another session's readout scaled and shifted per neuron (built by clone_readout)",
	.priv_size = sizeof(cloned_readout),
	.create = cloned_create,
	.forward = cloned_forward,
	.regularizer = cloned_regularizer,
	.initialize_bias = cloned_initialize_bias,
};

void cloned_set_source(fv_module *clone, fv_module *source)
{
	((cloned_readout *)fv_module_priv(clone))->source = source;
}
