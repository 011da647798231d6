/*
** optim.c: SGD, Adam and AdamW with torch.optim's update rules (the
** single-tensor "for-loop" implementations, which define the semantics),
** and clip_grad_norm_.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/optim.h"
#include "fovea/plugin.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

typedef struct param_state {
	int64_t steps;
	fv_tensor *exp_avg;        /* Adam m, or SGD momentum_buffer */
	fv_tensor *exp_avg_sq;     /* Adam v */
	fv_tensor *max_exp_avg_sq; /* amsgrad */
} param_state;

struct fv_optimizer {
	fv_optim_config cfg;
	size_t n;
	fv_tensor **params;
	param_state *state;
};

fv_optim_config fv_optim_defaults(fv_optim_kind kind)
{
	fv_optim_config c = {.kind = kind, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
	if (kind == FV_OPTIM_ADAMW)
		c.weight_decay = 1e-2;
	return c;
}

/* ---- configuration ----------------------------------------------------------- */

typedef struct optim_opts {
	double lr;
	fv_float_list betas;
	double eps, weight_decay, momentum, dampening;
	bool amsgrad, maximize, nesterov;
	const fv_config_node *ignored; /* torch knobs without numeric effect */
} optim_opts;

#define OFF(f) offsetof(optim_opts, f)
static const fv_option adam_options[] = {
	{"lr", FV_OPT_FLOAT, OFF(lr), "0.001", 0, 1e9, 0, NULL, "learning rate"},
	{"betas", FV_OPT_FLOAT_LIST, OFF(betas), "[0.9, 0.999]", 0, 1, 0, NULL,
	 "coefficients of the running averages of the gradient and its square"},
	{"eps", FV_OPT_FLOAT, OFF(eps), "1e-8", 0, 1, 0, NULL, "added to the denominator"},
	{"weight_decay", FV_OPT_FLOAT, OFF(weight_decay), "null", 0, 1e9, FV_OPT_NULLABLE, NULL,
	 "L2 penalty (Adam) / decoupled decay (AdamW); default 0 (Adam), 0.01 (AdamW)"},
	{"amsgrad", FV_OPT_BOOL, OFF(amsgrad), "false", 0, 0, 0, NULL, "AMSGrad variant"},
	{"maximize", FV_OPT_BOOL, OFF(maximize), "false", 0, 0, 0, NULL, "maximise the objective"},
	{"foreach", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{"capturable", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{"differentiable", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{"fused", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{0},
};
static const fv_option sgd_options[] = {
	{"lr", FV_OPT_FLOAT, OFF(lr), "0.001", 0, 1e9, 0, NULL, "learning rate"},
	{"momentum", FV_OPT_FLOAT, OFF(momentum), "0", 0, 1e9, 0, NULL, "momentum factor"},
	{"dampening", FV_OPT_FLOAT, OFF(dampening), "0", 0, 1, 0, NULL, "dampening for momentum"},
	{"weight_decay", FV_OPT_FLOAT, OFF(weight_decay), "0", 0, 1e9, 0, NULL, "L2 penalty"},
	{"nesterov", FV_OPT_BOOL, OFF(nesterov), "false", 0, 0, 0, NULL, "Nesterov momentum"},
	{"maximize", FV_OPT_BOOL, OFF(maximize), "false", 0, 0, 0, NULL, "maximise the objective"},
	{"foreach", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{"differentiable", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{"fused", FV_OPT_NODE, OFF(ignored), "null", 0, 0, FV_OPT_NULLABLE, NULL, "accepted, no effect"},
	{0},
};
#undef OFF

static const struct {
	const char *name;
	fv_optim_kind kind;
} optim_names[] = {
	{"torch.optim.AdamW", FV_OPTIM_ADAMW}, {"AdamW", FV_OPTIM_ADAMW},
	{"torch.optim.Adam", FV_OPTIM_ADAM},   {"Adam", FV_OPTIM_ADAM},
	{"torch.optim.SGD", FV_OPTIM_SGD},     {"SGD", FV_OPTIM_SGD},
};

static fv_status optim_kind_of(const fv_config_node *spec, fv_optim_kind *kind)
{
	const fv_config_node *t = fv_node_get(spec, "_target_");
	const char *name = t ? fv_node_text(t) : NULL;
	if (name == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "optimizer: missing _target_ "
		                   "(torch.optim.Adam, torch.optim.AdamW or torch.optim.SGD)");
	for (size_t i = 0; i < sizeof optim_names / sizeof optim_names[0]; i++)
		if (strcmp(name, optim_names[i].name) == 0) {
			*kind = optim_names[i].kind;
			return FV_OK;
		}
	return fv_error_at(t, FV_ERR_CONFIG, "_target_: unknown optimizer '%s'; expected "
	                   "torch.optim.Adam, torch.optim.AdamW or torch.optim.SGD", name);
}

fv_status fv_optim_config_parse(const fv_config_node *spec, fv_optim_config *out)
{
	fv_optim_kind kind = FV_OPTIM_ADAM;
	fv_status rc = optim_kind_of(spec, &kind);
	if (rc != FV_OK)
		return rc;
	const fv_option *table = kind == FV_OPTIM_SGD ? sgd_options : adam_options;
	optim_opts o;
	memset(&o, 0, sizeof o);
	rc = fv_options_parse(table, spec, &o, "optimizer", NULL);
	if (rc != FV_OK)
		return rc;
	*out = fv_optim_defaults(kind);
	out->lr = o.lr;
	out->eps = o.eps;
	out->amsgrad = o.amsgrad;
	out->maximize = o.maximize;
	if (!isnan(o.weight_decay)) /* null: the kind's default */
		out->weight_decay = o.weight_decay;
	if (kind == FV_OPTIM_SGD) {
		out->momentum = o.momentum;
		out->dampening = o.dampening;
		out->nesterov = o.nesterov;
		if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
			rc = fv_error_at(spec, FV_ERR_CONFIG, "optimizer: nesterov momentum requires a "
			                 "momentum > 0 and zero dampening");
	} else if (o.betas.n != 2) {
		rc = fv_error_at(spec, FV_ERR_CONFIG, "optimizer: betas must be two numbers, got %zu",
		                 o.betas.n);
	} else {
		out->beta1 = o.betas.v[0];
		out->beta2 = o.betas.v[1];
	}
	fv_options_free(table, &o);
	return rc;
}

/* ---- the optimizer ---------------------------------------------------------------- */

fv_optimizer *fv_optimizer_new(const fv_optim_config *cfg, size_t n_params,
                               fv_tensor *const *params)
{
	fv_optimizer *opt = fv__calloc(1, sizeof *opt);
	if (opt == NULL)
		goto nomem;
	opt->cfg = *cfg;
	opt->n = n_params;
	opt->params = fv__calloc(n_params ? n_params : 1, sizeof *opt->params);
	opt->state = fv__calloc(n_params ? n_params : 1, sizeof *opt->state);
	if (opt->params == NULL || opt->state == NULL)
		goto nomem;
	memcpy(opt->params, params, n_params * sizeof *params);
	return opt;
nomem:
	fv_optimizer_free(opt);
	fv_error(FV_ERR_NOMEM, "out of memory creating an optimizer");
	return NULL;
}

void fv_optimizer_free(fv_optimizer *opt)
{
	if (opt == NULL)
		return;
	for (size_t i = 0; opt->state && i < opt->n; i++) {
		fv_tensor_free(opt->state[i].exp_avg);
		fv_tensor_free(opt->state[i].exp_avg_sq);
		fv_tensor_free(opt->state[i].max_exp_avg_sq);
	}
	free(opt->params);
	free(opt->state);
	free(opt);
}

static fv_tensor *state_buffer(fv_tensor **slot, const fv_tensor *like)
{
	if (*slot == NULL)
		*slot = fv_tensor_new(like->ndim, like->shape);
	return *slot;
}

static fv_status sgd_update(const fv_optim_config *c, param_state *s, fv_tensor *p)
{
	const fv_real *g = p->grad->data;
	bool first = s->exp_avg == NULL;
	fv_real *buf = NULL;
	if (c->momentum != 0) {
		if (state_buffer(&s->exp_avg, p) == NULL)
			return FV_ERR_NOMEM;
		buf = s->exp_avg->data;
	}
	for (int64_t i = 0; i < p->numel; i++) {
		double d = c->maximize ? -g[i] : g[i];
		d += c->weight_decay * p->data[i];
		if (buf != NULL) {
			buf[i] = (fv_real)(first ? d : c->momentum * buf[i] + (1 - c->dampening) * d);
			d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
		}
		p->data[i] = (fv_real)(p->data[i] - c->lr * d);
	}
	return FV_OK;
}

static fv_status adam_update(const fv_optim_config *c, param_state *s, fv_tensor *p)
{
	if (state_buffer(&s->exp_avg, p) == NULL || state_buffer(&s->exp_avg_sq, p) == NULL ||
	    (c->amsgrad && state_buffer(&s->max_exp_avg_sq, p) == NULL))
		return FV_ERR_NOMEM;
	const fv_real *g = p->grad->data;
	fv_real *m = s->exp_avg->data, *v = s->exp_avg_sq->data;
	fv_real *vmax = c->amsgrad ? s->max_exp_avg_sq->data : NULL;
	double t = (double)s->steps;
	double bc1 = 1 - pow(c->beta1, t), bc2_sqrt = sqrt(1 - pow(c->beta2, t));
	double step_size = c->lr / bc1;
	double decay = c->kind == FV_OPTIM_ADAMW ? 1 - c->lr * c->weight_decay : 1;
	double l2 = c->kind == FV_OPTIM_ADAM ? c->weight_decay : 0;
	for (int64_t i = 0; i < p->numel; i++) {
		double gi = c->maximize ? -g[i] : g[i];
		double pi = p->data[i] * decay;
		gi += l2 * p->data[i];
		m[i] = (fv_real)(c->beta1 * m[i] + (1 - c->beta1) * gi);
		v[i] = (fv_real)(c->beta2 * v[i] + (1 - c->beta2) * gi * gi);
		double second = v[i];
		if (vmax != NULL) {
			if (v[i] > vmax[i])
				vmax[i] = v[i];
			second = vmax[i];
		}
		double denom = sqrt(second) / bc2_sqrt + c->eps;
		p->data[i] = (fv_real)(pi - step_size * m[i] / denom);
	}
	return FV_OK;
}

fv_status fv_optimizer_step(fv_optimizer *opt)
{
	for (size_t i = 0; i < opt->n; i++) {
		fv_tensor *p = opt->params[i];
		if (p->grad == NULL)
			continue;
		param_state *s = &opt->state[i];
		s->steps++;
		fv_status rc = opt->cfg.kind == FV_OPTIM_SGD ? sgd_update(&opt->cfg, s, p)
		                                             : adam_update(&opt->cfg, s, p);
		if (rc != FV_OK)
			return fv_error(rc, "out of memory for the optimizer state of %s",
			                p->name ? p->name : "a parameter");
	}
	return FV_OK;
}

void fv_optimizer_zero_grad(fv_optimizer *opt)
{
	for (size_t i = 0; i < opt->n; i++)
		fv_zero_grad_to_none(opt->params[i]);
}

double fv_optimizer_lr(const fv_optimizer *opt)
{
	return opt->cfg.lr;
}

void fv_optimizer_set_lr(fv_optimizer *opt, double lr)
{
	opt->cfg.lr = lr;
}

void fv_optimizer_set_momentum(fv_optimizer *opt, double momentum)
{
	if (opt->cfg.kind == FV_OPTIM_SGD)
		opt->cfg.momentum = momentum;
	else
		opt->cfg.beta1 = momentum;
}

const fv_optim_config *fv_optimizer_config(const fv_optimizer *opt)
{
	return &opt->cfg;
}

int64_t fv_optimizer_param_steps(const fv_optimizer *opt, size_t i)
{
	return i < opt->n ? opt->state[i].steps : 0;
}

fv_tensor *fv_optimizer_state(fv_optimizer *opt, size_t i, const char *which)
{
	if (i >= opt->n)
		return NULL;
	param_state *s = &opt->state[i];
	if (strcmp(which, "exp_avg") == 0 || strcmp(which, "momentum_buffer") == 0)
		return s->exp_avg;
	if (strcmp(which, "exp_avg_sq") == 0)
		return s->exp_avg_sq;
	if (strcmp(which, "max_exp_avg_sq") == 0)
		return s->max_exp_avg_sq;
	return NULL;
}

fv_status fv_optimizer_set_param_steps(fv_optimizer *opt, size_t i, int64_t steps)
{
	if (i >= opt->n || steps < 0)
		return fv_error(FV_ERR_ARG, "fv_optimizer_set_param_steps: parameter %zu of %zu, "
		                "steps %lld", i, opt->n, (long long)steps);
	param_state *s = &opt->state[i];
	const fv_tensor *p = opt->params[i];
	s->steps = steps;
	if (steps == 0)
		return FV_OK;
	bool adam = opt->cfg.kind != FV_OPTIM_SGD;
	if ((adam || opt->cfg.momentum != 0) && state_buffer(&s->exp_avg, p) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory for the optimizer state");
	if (adam && state_buffer(&s->exp_avg_sq, p) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory for the optimizer state");
	if (adam && opt->cfg.amsgrad && state_buffer(&s->max_exp_avg_sq, p) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory for the optimizer state");
	return FV_OK;
}

double fv_clip_grad_norm(size_t n_params, fv_tensor *const *params, double max_norm)
{
	double sq = 0;
	for (size_t i = 0; i < n_params; i++) {
		const fv_tensor *g = params[i]->grad;
		for (int64_t j = 0; g != NULL && j < g->numel; j++)
			sq += (double)g->data[j] * g->data[j];
	}
	double norm = sqrt(sq);
	double coef = max_norm / (norm + 1e-6);
	if (coef < 1)
		for (size_t i = 0; i < n_params; i++) {
			fv_tensor *g = params[i]->grad;
			for (int64_t j = 0; g != NULL && j < g->numel; j++)
				g->data[j] = (fv_real)(g->data[j] * coef);
		}
	return norm;
}

void fv_clip_grad_value(size_t n_params, fv_tensor *const *params, double clip_value)
{
	fv_real hi = (fv_real)clip_value, lo = -hi;
	for (size_t i = 0; i < n_params; i++) {
		fv_tensor *g = params[i]->grad;
		for (int64_t j = 0; g != NULL && j < g->numel; j++)
			g->data[j] = g->data[j] < lo ? lo : g->data[j] > hi ? hi : g->data[j];
	}
}
