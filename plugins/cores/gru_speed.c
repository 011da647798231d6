/*
** gru_speed.c: ConvGRUCore's batch adaptation, a learned temporal log
** speed per recording session.
**
** With batch_adaptation, openretina registers one Parameter
** log_speed_<session> (zero) on the core for each key of n_neurons_dict and
** hands the same tensor to every convolution, so its state_dict lists it
** again under each conv (features.layer0.conv.log_speed_<session>, ...,
** features.projection.0.log_speed_<session>).  Here the core owns the
** parameter; the per-conv entries are non-persistent aliases that a loaded
** state fills and nothing reads, since all entries are one tensor.
**
** forward(x, data_key=k) runs every custom_separable layer with the
** temporal basis stretched by exp(log_speed_k), built from framework ops so
** that the gradient reaches the log speed (the default-speed path treats
** the basis as a constant, simple_core_conv.c); a separable layer scales
** its output by exp(log_speed_k); a full conv ignores it, as openretina's.
*/
#include <math.h>
#include <stdio.h>

#include "gru_core.h"

static fv_status add_alias(fv_module *m, const char *conv_prefix, const char *key)
{
	char name[256];
	const int64_t one = 1;
	snprintf(name, sizeof name, "%s.log_speed_%s", conv_prefix, key);
	return fv_module_set_state(m, name, 1, &one) != NULL ? FV_OK : FV_ERR_NOMEM;
}

fv_status gru_speed_create(fv_module *m, const fv_config_node *n_neurons_dict,
                           const char *const *conv_prefixes, int n_convs)
{
	if (n_neurons_dict == NULL || fv_node_kind(n_neurons_dict) != FV_NODE_MAP ||
	    fv_node_size(n_neurons_dict) == 0)
		return fv_error_at(n_neurons_dict, FV_ERR_CONFIG,
		                   "batch_adaptation is true, so n_neurons_dict must be a map "
		                   "{session: neurons} to learn a log speed per session");
	const int64_t one = 1;
	for (size_t k = 0; k < fv_node_size(n_neurons_dict); k++) {
		const char *key = fv_node_key_at(n_neurons_dict, k);
		char name[256];
		snprintf(name, sizeof name, "log_speed_%s", key);
		if (fv_module_add_param(m, name, 1, &one) == NULL)
			return fv_errcode();
		for (int c = 0; c < n_convs; c++)
			if (add_alias(m, conv_prefixes[c], key) != FV_OK)
				return FV_ERR_NOMEM;
	}
	return FV_OK;
}

fv_tensor *gru_speed_of(const fv_module *m, const char *data_key)
{
	char name[256];
	snprintf(name, sizeof name, "log_speed_%s", data_key);
	fv_tensor *t = fv_module_tensor(m, name);
	if (t == NULL)
		fv_error(FV_ERR_NOTFOUND,
		         "no log speed for data_key '%s' (openretina: no attribute log_speed_%s; "
		         "only batch_adaptation with the session in n_neurons_dict has one)",
		         data_key, data_key);
	return t;
}

/* A (rows, cols) constant of the context from f(r, c). */
static fv_tensor *grid(fv_ctx *ctx, int64_t rows, int64_t cols,
                       double (*f)(int64_t, int64_t, int64_t), int64_t arg)
{
	const int64_t shape[2] = {rows, cols};
	fv_tensor *t = fv_ctx_empty(ctx, 2, shape);
	for (int64_t r = 0; t != NULL && r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			t->data[r * cols + c] = (fv_real)f(r, c, arg);
	return t;
}

static double time_of(int64_t r, int64_t c, int64_t T)
{
	(void)r;
	return (double)(c - T);
}

static double index_of(int64_t r, int64_t c, int64_t unused)
{
	(void)c;
	(void)unused;
	return (double)r;
}

/* The temporal kernel (O, I, T) of a custom_separable conv at speed
** exp(log_speed), differentiable in log_speed:
**   freq = s * time * 2 pi / T,  mask = 1 / (1 + exp(-time - int(0.95 T) / s)),
**   basis[k, t] = mask * sin|cos(k * freq),  w = sin_w . sines + cos_w . cosines. */
static fv_tensor *temporal_kernel(const sc_conv *c, fv_ctx *ctx, fv_tensor *log_speed)
{
	int64_t T = c->kernel[0], K = c->n_basis;
	fv_tensor *time = grid(ctx, 1, T, time_of, T);
	fv_tensor *k = grid(ctx, K, 1, index_of, 0);
	fv_tensor *stretch = fv_exp(ctx, log_speed);
	fv_tensor *freq = fv_mul_scalar(ctx, fv_mul(ctx, stretch, time), 2 * M_PI / (double)T);
	fv_tensor *shift = fv_mul_scalar(ctx, fv_exp(ctx, fv_neg(ctx, log_speed)),
	                                 (double)(int64_t)((double)T * 0.95));
	fv_tensor *mask = fv_sigmoid(ctx, fv_add(ctx, time, shift));
	fv_tensor *arg = fv_mul(ctx, k, freq); /* (K, T) */
	fv_tensor *sines = fv_mul(ctx, mask, fv_sin(ctx, arg));
	fv_tensor *cosines = fv_mul(ctx, mask, fv_cos(ctx, arg));
	const int64_t flat[2] = {(int64_t)c->out_ch * c->in_ch, K};
	const int64_t oit[3] = {c->out_ch, c->in_ch, T};
	fv_tensor *s = fv_matmul(ctx, fv_reshape(ctx, c->sin_w, 2, flat), sines);
	fv_tensor *q = fv_matmul(ctx, fv_reshape(ctx, c->cos_w, 2, flat), cosines);
	return fv_reshape(ctx, fv_add(ctx, s, q), 3, oit);
}

fv_tensor *gru_speed_conv_forward(const sc_conv *c, fv_ctx *ctx, fv_tensor *x,
                                  fv_tensor *log_speed)
{
	if (c->type == SC_CONV_CUSTOM_SEPARABLE) {
		const int64_t oihw[4] = {c->out_ch, c->in_ch, c->kernel[1], c->kernel[2]};
		return fv_conv3d_separable(ctx, x, temporal_kernel(c, ctx, log_speed),
		                           fv_reshape(ctx, c->w_spatial, 4, oihw), &c->p);
	}
	if (c->type == SC_CONV_SEPARABLE) {
		fv_tensor *y = fv_conv3d(ctx, x, c->w_space, NULL, &c->p_space);
		y = fv_conv3d(ctx, y, c->w_time, NULL, &c->p_time);
		return fv_mul(ctx, fv_exp(ctx, log_speed), y);
	}
	return fv_conv3d(ctx, x, c->w_full, NULL, &c->p);
}
