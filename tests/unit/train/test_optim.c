/*
** test_optim.c: optimizer steps against values worked out by hand from
** torch.optim's documented update rules, clipping, and config parsing.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "fovea/config.h"
#include "fovea/optim.h"

static fv_tensor *scalar_param(double value, double grad)
{
	int64_t shape[1] = {1};
	fv_tensor *p = fv_tensor_new(1, shape);
	p->data[0] = (fv_real)value;
	p->requires_grad = true;
	p->grad = fv_tensor_new(1, shape);
	p->grad->data[0] = (fv_real)grad;
	return p;
}

static double step_once(fv_optim_config cfg, double value, double grad, int steps)
{
	fv_tensor *p = scalar_param(value, grad);
	fv_optimizer *opt = fv_optimizer_new(&cfg, 1, &p);
	for (int i = 0; i < steps; i++)
		cr_assert_eq(fv_optimizer_step(opt), FV_OK);
	double out = p->data[0];
	fv_optimizer_free(opt);
	fv_tensor_free(p);
	return out;
}

/* Adam's first step moves by lr * g/|g| (m/sqrt(v) = g/|g| after bias
** correction): 1 - 0.1 = 0.9. */
Test(optim, adam_first_step)
{
	fv_optim_config c = fv_optim_defaults(FV_OPTIM_ADAM);
	c.lr = 0.1;
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 1), 0.9, 1e-6);
}

/* AdamW decays first: 1*(1 - 0.1*0.01) - 0.1 = 0.899. */
Test(optim, adamw_decoupled_decay)
{
	fv_optim_config c = fv_optim_defaults(FV_OPTIM_ADAMW);
	c.lr = 0.1;
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 1), 0.899, 1e-6);
}

/* Adam with weight_decay adds wd*p to the gradient: g = 0.5 + 0.5*1 = 1;
** the first step is still lr * sign = 0.9. Second step, same gradient:
** m = 0.19, v = 0.001999, bc1 = 0.19, bc2 = 0.001999 -> again 0.1; but
** g now is 0.5 + 0.5*0.9 = 0.95, so compute exactly. */
Test(optim, adam_l2_two_steps)
{
	fv_optim_config c = fv_optim_defaults(FV_OPTIM_ADAM);
	c.lr = 0.1;
	c.weight_decay = 0.5;
	double g1 = 0.5 + 0.5 * 1.0;
	double p1 = 1.0 - 0.1; /* first step */
	double g2 = 0.5 + 0.5 * p1;
	double m = 0.9 * (0.1 * g1) + 0.1 * g2;
	double v = 0.999 * (0.001 * g1 * g1) + 0.001 * g2 * g2;
	double p2 = p1 - 0.1 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.999 * 0.999) + 1e-8);
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 2), p2, 1e-5);
}

Test(optim, sgd_momentum_and_nesterov)
{
	fv_optim_config c = fv_optim_defaults(FV_OPTIM_SGD);
	c.lr = 0.1;
	c.momentum = 0.9;
	/* buf = 0.5 -> 0.95; p = 1 - 0.05 - 0.095 */
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 2), 0.855, 1e-6);
	c.nesterov = true;
	/* d = 0.5 + 0.9*0.5 */
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 1), 0.905, 1e-6);
	c.nesterov = false;
	c.momentum = 0;
	c.maximize = true;
	cr_assert_float_eq(step_once(c, 1.0, 0.5, 1), 1.05, 1e-6);
}

/* A parameter without grad is untouched, even by decoupled decay. */
Test(optim, none_grad_is_skipped)
{
	fv_optim_config c = fv_optim_defaults(FV_OPTIM_ADAMW);
	fv_tensor *p = scalar_param(2.0, 1.0);
	fv_optimizer *opt = fv_optimizer_new(&c, 1, &p);
	fv_optimizer_zero_grad(opt);
	cr_assert_null(p->grad);
	cr_assert_eq(fv_optimizer_step(opt), FV_OK);
	cr_assert_eq(p->data[0], 2.0);
	cr_assert_eq(fv_optimizer_param_steps(opt, 0), 0);
	fv_optimizer_free(opt);
	fv_tensor_free(p);
}

Test(optim, clip_grad_norm)
{
	fv_tensor *a = scalar_param(0, 3), *b = scalar_param(0, 4), *c = scalar_param(0, 0);
	fv_zero_grad_to_none(c);
	fv_tensor *ps[3] = {a, b, c};
	double norm = fv_clip_grad_norm(3, ps, 1.0);
	cr_assert_float_eq(norm, 5.0, 1e-6);
	cr_assert_float_eq(a->grad->data[0], 3 / (5 + 1e-6), 1e-6);
	cr_assert_float_eq(b->grad->data[0], 4 / (5 + 1e-6), 1e-6);
	/* below the limit: unchanged */
	norm = fv_clip_grad_norm(3, ps, 10.0);
	cr_assert_float_eq(a->grad->data[0], 3 / (5 + 1e-6), 1e-6);
	for (int i = 0; i < 3; i++)
		fv_tensor_free(ps[i]);
}

/* torch's clip_grad_value_: each element clamped; a missing grad stays. */
Test(optim, clip_grad_value)
{
	fv_tensor *a = scalar_param(0, 3), *b = scalar_param(0, -4), *c = scalar_param(0, 0.25);
	fv_tensor *d = scalar_param(0, 9);
	fv_zero_grad_to_none(d);
	fv_tensor *ps[4] = {a, b, c, d};
	fv_clip_grad_value(4, ps, 0.5);
	cr_expect_eq(a->grad->data[0], 0.5f);
	cr_expect_eq(b->grad->data[0], -0.5f);
	cr_expect_eq(c->grad->data[0], 0.25f);
	cr_expect_null(d->grad);
	for (int i = 0; i < 4; i++)
		fv_tensor_free(ps[i]);
}

/* OneCycleLR cycles Adam's beta1 and SGD's momentum. */
Test(optim, set_momentum)
{
	fv_tensor *p = scalar_param(1, 1);
	fv_optim_config adam = fv_optim_defaults(FV_OPTIM_ADAMW), sgd = fv_optim_defaults(FV_OPTIM_SGD);
	fv_optimizer *o = fv_optimizer_new(&adam, 1, &p);
	fv_optimizer_set_momentum(o, 0.85);
	cr_expect_eq(fv_optimizer_config(o)->beta1, 0.85);
	cr_expect_eq(fv_optimizer_config(o)->beta2, 0.999);
	fv_optimizer_free(o);
	o = fv_optimizer_new(&sgd, 1, &p);
	fv_optimizer_set_momentum(o, 0.9);
	cr_expect_eq(fv_optimizer_config(o)->momentum, 0.9);
	fv_optimizer_free(o);
	fv_tensor_free(p);
}

static fv_status parse(const char *yaml, fv_optim_config *c)
{
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "opt.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	fv_status rc = fv_optim_config_parse(fv_config_root(cfg), c);
	fv_config_free(cfg);
	return rc;
}

Test(optim, parse_torch_configs)
{
	fv_optim_config c;
	cr_assert_eq(parse("_target_: torch.optim.AdamW\nlr: 0.01\nbetas: [0.8, 0.99]\n", &c), FV_OK,
	             "%s", fv_errmsg());
	cr_assert_eq(c.kind, FV_OPTIM_ADAMW);
	cr_assert_float_eq(c.lr, 0.01, 1e-12);
	cr_assert_float_eq(c.beta1, 0.8, 1e-12);
	cr_assert_float_eq(c.weight_decay, 0.01, 1e-12); /* AdamW's default */
	cr_assert_eq(parse("_target_: torch.optim.Adam\n", &c), FV_OK, "%s", fv_errmsg());
	cr_assert_float_eq(c.weight_decay, 0.0, 1e-12);
	cr_assert_eq(parse("_target_: torch.optim.SGD\nlr: 0.5\nmomentum: 0.9\n", &c), FV_OK);
	cr_assert_float_eq(c.momentum, 0.9, 1e-12);
}

Test(optim, parse_errors_name_the_key)
{
	fv_optim_config c;
	cr_assert_eq(parse("_target_: torch.optim.Adamax\n", &c), FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "opt.yaml:1:1: _target_: unknown optimizer 'torch.optim.Adamax'"),
	          "%s", fv_errmsg());
	cr_assert_neq(parse("_target_: torch.optim.Adam\nlrr: 0.1\n", &c), FV_OK);
	cr_assert(strstr(fv_errmsg(), "lrr") && strstr(fv_errmsg(), "'lr'"), "%s", fv_errmsg());
	cr_assert_eq(parse("_target_: torch.optim.Adam\nbetas: [0.9]\n", &c), FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "opt.yaml:1:1: optimizer: betas must be two numbers, got 1"), "%s",
	          fv_errmsg());
	cr_assert_eq(parse("lr: 0.1\n", &c), FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "opt.yaml:1:1: optimizer: missing _target_"), "%s", fv_errmsg());
	cr_assert_eq(parse("_target_: torch.optim.SGD\nnesterov: true\n", &c), FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "opt.yaml:1:1: optimizer: nesterov momentum requires a momentum "
	                              "> 0"), "%s", fv_errmsg());
}
