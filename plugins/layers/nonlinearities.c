/*
** nonlinearities.c: openretina's parametrised nonlinearities
** (openretina.modules.nonlinearities), each a layer with learnt 0-d
** parameters under openretina's state_dict names:
**
**   ParametrizedSoftplus  y = w * softplus(a x + b)   (torch softplus:
**                         beta 1, threshold 20); a is a parameter only
**                         with learn_a, else a constant outside the
**                         state_dict, as openretina keeps it.
**   ParametrizedELU       y = c x where x > 0, a (exp(x / b) - 1) elsewhere
**                         (x == 0 takes the exponential branch).
*/
#include <stddef.h>

#include <fovea/plugin.h>

/* torch.nn.functional.softplus's defaults. */
#define SOFTPLUS_BETA 1.0
#define SOFTPLUS_THRESHOLD 20.0

typedef struct softplus_layer {
	double a, b, w;
	bool learn_a;
	fv_tensor *pa, *pb, *pw; /* pa: NULL without learn_a */
} softplus_layer;

static const fv_option softplus_options[] = {
	FV_OPT("a", FLOAT, softplus_layer, a, "1.0", "input gain (learnt only with learn_a)"),
	FV_OPT("b", FLOAT, softplus_layer, b, "0.0", "initial input offset (learnt)"),
	FV_OPT("w", FLOAT, softplus_layer, w, "1.0", "initial output gain (learnt)"),
	FV_OPT("learn_a", BOOL, softplus_layer, learn_a, "false",
	       "make a a parameter (first in the state_dict) instead of a constant"),
	{0},
};

typedef struct elu_layer {
	double a, b, c;
	const char *device;
	fv_tensor *pa, *pb, *pc;
} elu_layer;

static const fv_option elu_options[] = {
	FV_OPT("a", FLOAT, elu_layer, a, "1.0", "initial gain of the exponential branch (learnt)"),
	FV_OPT("b", FLOAT, elu_layer, b, "1.0", "initial time constant of the exponential (learnt)"),
	FV_OPT("c", FLOAT, elu_layer, c, "1.0", "initial slope of the linear branch (learnt)"),
	FV_OPT("device", STRING, elu_layer, device, "cuda",
	       "accepted for compatibility with openretina's signature; fovea runs on the CPU"),
	{0},
};

/* A 0-d parameter holding `v`. */
static fv_tensor *scalar_param(fv_module *m, const char *name, double v)
{
	fv_tensor *t = fv_module_add_param(m, name, 0, NULL);
	if (t != NULL)
		t->data[0] = (fv_real)v;
	return t;
}

static fv_status softplus_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	softplus_layer *s = fv_module_priv(m);
	if (s->learn_a && (s->pa = scalar_param(m, "a", s->a)) == NULL)
		return FV_ERR_NOMEM;
	s->pb = scalar_param(m, "b", s->b);
	s->pw = scalar_param(m, "w", s->w);
	return s->pb && s->pw ? FV_OK : FV_ERR_NOMEM;
}

static bool have_input(const char *who, const fv_tensor *x)
{
	if (x == NULL && fv_errmsg()[0] == '\0')
		fv_error(FV_ERR_ARG, "%s: forward: no input", who);
	return x != NULL;
}

static fv_tensor *softplus_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x,
                                   const fv_forward_args *fa)
{
	(void)fa;
	const softplus_layer *s = fv_module_priv(m);
	if (!have_input("ParametrizedSoftplus", x))
		return NULL;
	fv_tensor *scaled = s->pa ? fv_mul(ctx, s->pa, x) : fv_mul_scalar(ctx, x, s->a);
	fv_tensor *sp = fv_softplus(ctx, fv_add(ctx, scaled, s->pb), SOFTPLUS_BETA,
	                            SOFTPLUS_THRESHOLD);
	return fv_mul(ctx, s->pw, sp);
}

static fv_status elu_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	(void)args;
	elu_layer *e = fv_module_priv(m);
	e->pa = scalar_param(m, "a", e->a);
	e->pb = scalar_param(m, "b", e->b);
	e->pc = scalar_param(m, "c", e->c);
	return e->pa && e->pb && e->pc ? FV_OK : FV_ERR_NOMEM;
}

/* torch.where(x > 0, c x, a (exp(x / b) - 1)) as a blend with a constant
** mask: each branch gets the gradient of its own elements, as where's
** backward gives (an overflowing exp of an unselected element makes NaN
** gradients in both). */
static fv_tensor *elu_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)fa;
	const elu_layer *e = fv_module_priv(m);
	if (!have_input("ParametrizedELU", x))
		return NULL;
	fv_tensor *pos = fv_ctx_empty(ctx, x->ndim, x->shape);
	fv_tensor *neg = fv_ctx_empty(ctx, x->ndim, x->shape);
	if (pos == NULL || neg == NULL)
		return NULL;
	for (int64_t i = 0; i < x->numel; i++) {
		pos->data[i] = x->data[i] > 0 ? 1 : 0;
		neg->data[i] = 1 - pos->data[i];
	}
	fv_tensor *linear = fv_mul(ctx, e->pc, x);
	fv_tensor *expo = fv_mul(ctx, e->pa, fv_add_scalar(ctx, fv_exp(ctx, fv_div(ctx, x, e->pb)), -1));
	return fv_add(ctx, fv_mul(ctx, pos, linear), fv_mul(ctx, neg, expo));
}

static const char *const softplus_names[] = {
	"ParametrizedSoftplus",
	"openretina.modules.nonlinearities.ParametrizedSoftplus",
	NULL,
};

static const fv_component softplus_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LAYER,
	.names = softplus_names,
	.doc = "w * softplus(a x + b) with learnt b, w (and a with learn_a)",
	.options = softplus_options,
	.priv_size = sizeof(softplus_layer),
	.create = softplus_create,
	.forward = softplus_forward,
};

static const char *const elu_names[] = {
	"ParametrizedELU",
	"openretina.modules.nonlinearities.ParametrizedELU",
	NULL,
};

static const fv_component elu_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LAYER,
	.names = elu_names,
	.doc = "c x for x > 0, a (exp(x / b) - 1) elsewhere, with learnt a, b, c",
	.options = elu_options,
	.priv_size = sizeof(elu_layer),
	.create = elu_create,
	.forward = elu_forward,
};

FV_PLUGIN_DEFINE("layers-nonlinearities", &softplus_component, &elu_component);
