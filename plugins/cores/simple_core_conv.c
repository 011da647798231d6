/*
** simple_core_conv.c: the convolution of one SimpleCoreWrapper layer, in
** the three flavours openretina's get_conv_class() offers.
**
** custom_separable (STSeparableBatchConv3d) is the hot path of training.
** Its weight is rank one per (out, in) channel pair,
**     w[o,i,t,h,w] = w_time[o,i,t] * weight_spatial[o,i,0,h,w],
** where w_time is a masked sine/cosine basis weighted by sin_weights and
** cos_weights.  openretina materialises w and runs a dense conv3d; we hand
** the two factors to fv_conv3d_separable(), which does ~10x less
** arithmetic and gives the same numbers up to float rounding.  The basis
** depends only on the _log_speed_default buffer, so it is a constant of
** the graph and the gradient reaches sin_weights, cos_weights and
** weight_spatial through ordinary framework ops.
**
** separable (TorchSTSeparableConv3D) really is two convolutions, a
** (1, kh, kw) one mixing channels then a (kt, 1, 1) one, both padded with
** the same padding argument (so an explicit spatial padding p grows the
** map by 2p), and the result is scaled by exp(_log_speed_default).
**
** full (TorchFullConv3D) is a plain dense Conv3d.
**
** time_independent (TimeIndependentConv3D) is a plain Conv3d with a
** (1, kh, kw) kernel: the temporal kernel size is ignored and there is no
** _log_speed_default.  Its padding argument pads every axis, time too.
**
** For figures, each flavour also gives its weight as the one dense kernel
** (out, in, kt, kh, kw) it stands for (sc_conv_dense_kernel).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simple_core.h"

/* ---- padding -------------------------------------------------------------- */

static bool text_is(const char *t, const char *a, const char *b, const char *c)
{
	return strcmp(t, a) == 0 || strcmp(t, b) == 0 || strcmp(t, c) == 0;
}

static fv_status bad_padding(const fv_config_node *n, const char *key)
{
	const char *got = "null";
	if (n != NULL && fv_node_kind(n) == FV_NODE_SCALAR)
		got = fv_node_text(n);
	else if (n != NULL && fv_node_kind(n) == FV_NODE_SEQ)
		got = "a list of another length or with non-integer items";
	else if (n != NULL && fv_node_kind(n) == FV_NODE_MAP)
		got = "a map";
	return fv_error_at(n, FV_ERR_CONFIG,
	                   "SimpleCoreWrapper: %s: expected true, false, 'same', 'valid', a "
	                   "non-negative integer or a list of 3 non-negative integers, got %s", key,
	                   got);
}

static bool parse_amount(const fv_config_node *n, int *out)
{
	int64_t v;
	if (fv_node_kind(n) != FV_NODE_SCALAR || fv_node_quoted(n) ||
	    fv_node_to_int(n, &v) != FV_OK || v < 0 || v > 1000000)
		return false;
	*out = (int)v;
	return true;
}

fv_status sc_padding_parse(const fv_config_node *n, const char *key, sc_padding *out)
{
	memset(out, 0, sizeof *out);
	if (n == NULL || fv_node_kind(n) == FV_NODE_NULL || fv_node_kind(n) == FV_NODE_MAP)
		return bad_padding(n, key);
	if (fv_node_kind(n) == FV_NODE_SEQ) {
		if (fv_node_size(n) != 3)
			return bad_padding(n, key);
		for (int d = 0; d < 3; d++)
			if (!parse_amount(fv_node_at(n, (size_t)d), &out->amount[d]))
				return bad_padding(n, key);
		return FV_OK;
	}
	const char *t = fv_node_text(n);
	/* openretina tests `padding is True` / `is False` before anything else:
	** True means 'same', False means no padding. */
	if (!fv_node_quoted(n) && text_is(t, "true", "True", "TRUE")) {
		out->same = true;
		return FV_OK;
	}
	if (!fv_node_quoted(n) && text_is(t, "false", "False", "FALSE"))
		return FV_OK;
	if (strcmp(t, "same") == 0) {
		out->same = true;
		return FV_OK;
	}
	if (strcmp(t, "valid") == 0)
		return FV_OK;
	int v;
	if (!parse_amount(n, &v))
		return bad_padding(n, key);
	out->amount[0] = out->amount[1] = out->amount[2] = v;
	return FV_OK;
}

static void conv_params(fv_conv3d_params *p, const sc_padding *pad, const int kernel[3])
{
	memset(p, 0, sizeof *p);
	if (pad->same) {
		const int dilation[3] = {1, 1, 1};
		fv_conv3d_same_padding(kernel, dilation, p->pad);
		return;
	}
	for (int d = 0; d < 3; d++)
		p->pad[d][0] = p->pad[d][1] = pad->amount[d];
}

/* ---- initialisation ------------------------------------------------------ */

fv_tensor *sc_add_tensor(fv_module *m, const char *prefix, const char *name, int ndim,
                         const int64_t *shape, bool buffer, fv_real fill)
{
	char full[256];
	snprintf(full, sizeof full, "%s.%s", prefix, name);
	fv_tensor *t = buffer ? fv_module_add_buffer(m, full, ndim, shape)
	                      : fv_module_add_param(m, full, ndim, shape);
	if (t != NULL)
		fv_tensor_fill(t, fill);
	return t;
}

fv_status sc_add_child(fv_module *m, const fv_build_args *args, const char *target,
                       const char *yaml, const char *name, fv_module **out)
{
	fv_build_args child_args = *args;
	child_args.struct_size = sizeof child_args;
	child_args.spec = NULL;
	child_args.session = NULL;
	fv_module *child = fv_instantiate_named(args->registry, target, yaml, &child_args, name);
	if (child == NULL)
		return FV_ERR_NOTFOUND;
	/* add_child owns the child whatever happens */
	fv_status rc = fv_module_add_child(m, name, child);
	if (rc == FV_OK && out != NULL)
		*out = child;
	return rc;
}

static void fill_normal(fv_tensor *t, fv_ctx *rng, double scale)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(fv_ctx_random_normal(rng) * scale);
}

/* torch.nn.Conv3d's default init, kaiming_uniform_(a=sqrt(5)): U(-b, b)
** with b = 1/sqrt(fan_in). */
static void fill_conv_default(fv_tensor *t, fv_ctx *rng)
{
	int64_t fan_in = t->numel / t->shape[0];
	double bound = 1.0 / sqrt((double)fan_in);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)((2.0 * fv_ctx_random_uniform(rng) - 1.0) * bound);
}

static fv_status create_custom_separable(sc_conv *c, fv_module *m, const char *prefix,
                                         fv_ctx *rng)
{
	int64_t O = c->out_ch, I = c->in_ch;
	int64_t basis[3] = {O, I, c->n_basis};
	int64_t spatial[5] = {O, I, 1, c->kernel[1], c->kernel[2]};
	c->sin_w = sc_add_tensor(m, prefix, "sin_weights", 3, basis, false, 0);
	c->cos_w = sc_add_tensor(m, prefix, "cos_weights", 3, basis, false, 0);
	c->w_spatial = sc_add_tensor(m, prefix, "weight_spatial", 5, spatial, false, 0);
	if (c->sin_w == NULL || c->cos_w == NULL || c->w_spatial == NULL)
		return FV_ERR_NOMEM;
	fill_normal(c->sin_w, rng, 0.01);
	fill_normal(c->cos_w, rng, 0.01);
	fill_normal(c->w_spatial, rng, 0.01);
	return FV_OK;
}

static fv_status create_separable(sc_conv *c, fv_module *m, const char *prefix, fv_ctx *rng)
{
	int64_t O = c->out_ch, I = c->in_ch;
	int64_t space[5] = {O, I, 1, c->kernel[1], c->kernel[2]};
	int64_t time[5] = {O, O, c->kernel[0], 1, 1};
	c->w_space = sc_add_tensor(m, prefix, "space_conv.weight", 5, space, false, 0);
	c->w_time = sc_add_tensor(m, prefix, "time_conv.weight", 5, time, false, 0);
	if (c->w_space == NULL || c->w_time == NULL)
		return FV_ERR_NOMEM;
	fill_conv_default(c->w_space, rng);
	fill_conv_default(c->w_time, rng);
	return FV_OK;
}

static fv_status create_full(sc_conv *c, fv_module *m, const char *prefix, fv_ctx *rng)
{
	int64_t shape[5] = {c->out_ch, c->in_ch, c->kernel[0], c->kernel[1], c->kernel[2]};
	c->w_full = sc_add_tensor(m, prefix, "conv.weight", 5, shape, false, 0);
	if (c->w_full == NULL)
		return FV_ERR_NOMEM;
	fill_conv_default(c->w_full, rng);
	return FV_OK;
}

fv_status sc_conv_create(sc_conv *c, fv_module *m, const char *prefix, sc_conv_type type,
                         int in_ch, int out_ch, int kt, int ks, const sc_padding *pad,
                         fv_ctx *rng)
{
	memset(c, 0, sizeof *c);
	c->type = type;
	c->in_ch = in_ch;
	c->out_ch = out_ch;
	c->kernel[0] = kt;
	c->kernel[1] = c->kernel[2] = ks;
	const int space[3] = {1, ks, ks}, time[3] = {kt, 1, 1};
	conv_params(&c->p, pad, c->kernel);
	conv_params(&c->p_space, pad, space);
	conv_params(&c->p_time, pad, time);

	if (type == SC_CONV_TIME_INDEPENDENT) {
		c->kernel[0] = 1;
		conv_params(&c->p, pad, c->kernel);
		fv_status rc = create_full(c, m, prefix, rng);
		c->w_spatial = c->w_full;
		return rc;
	}
	fv_status rc;
	switch (type) {
	case SC_CONV_CUSTOM_SEPARABLE:
		c->n_basis = kt / 3;
		rc = create_custom_separable(c, m, prefix, rng);
		break;
	case SC_CONV_SEPARABLE:
		rc = create_separable(c, m, prefix, rng);
		break;
	default:
		rc = create_full(c, m, prefix, rng);
		break;
	}
	if (rc != FV_OK)
		return rc;
	/* Every flavour registers the batch-adaptation buffer, zero. */
	const int64_t one = 1;
	c->log_speed = sc_add_tensor(m, prefix, "_log_speed_default", 1, &one, true, 0);
	return c->log_speed ? FV_OK : FV_ERR_NOMEM;
}

/* ---- forward ---------------------------------------------------------------- */

/* openretina's STSeparableBatchConv3d.temporal_basis for length T and the
** current log speed: rows k = 0..K-1 of mask*sin(k*freq) and mask*cos(k*freq),
** with time = t - T, freq = exp(log_speed)*time*2pi/T and the sigmoid mask
** 1/(1 + exp(-time - int(0.95 T)/exp(log_speed))). */
static void basis_frame(const sc_conv *c, double log_speed, int t, double *mask, double *freq)
{
	int T = c->kernel[0];
	double stretch = exp(log_speed);
	double shift = (double)(int64_t)(T * 0.95) / stretch;
	double time = (double)(t - T);
	*freq = stretch * time * 2 * M_PI / T;
	*mask = 1.0 / (1.0 + exp(-time - shift));
}

static fv_status temporal_basis(const sc_conv *c, double log_speed, fv_ctx *ctx,
                                fv_tensor **sines, fv_tensor **cosines)
{
	int T = c->kernel[0], K = c->n_basis;
	const int64_t shape[2] = {K, T};
	*sines = fv_ctx_empty(ctx, 2, shape);
	*cosines = fv_ctx_empty(ctx, 2, shape);
	if (*sines == NULL || *cosines == NULL)
		return FV_ERR_NOMEM;
	for (int t = 0; t < T; t++) {
		double mask, freq;
		basis_frame(c, log_speed, t, &mask, &freq);
		for (int k = 0; k < K; k++) {
			(*sines)->data[k * T + t] = (fv_real)(mask * sin(freq * k));
			(*cosines)->data[k * T + t] = (fv_real)(mask * cos(freq * k));
		}
	}
	return FV_OK;
}

/* w_time (O, I, T) = sin_weights . sines + cos_weights . cosines. */
fv_tensor *sc_conv_temporal_kernel(const sc_conv *c, fv_ctx *ctx, double log_speed)
{
	fv_tensor *sines, *cosines;
	if (temporal_basis(c, log_speed, ctx, &sines, &cosines) != FV_OK)
		return NULL;
	const int64_t flat[2] = {(int64_t)c->out_ch * c->in_ch, c->n_basis};
	const int64_t oit[3] = {c->out_ch, c->in_ch, c->kernel[0]};
	fv_tensor *s = fv_matmul(ctx, fv_reshape(ctx, c->sin_w, 2, flat), sines);
	fv_tensor *k = fv_matmul(ctx, fv_reshape(ctx, c->cos_w, 2, flat), cosines);
	return fv_reshape(ctx, fv_add(ctx, s, k), 3, oit);
}

static fv_tensor *forward_custom_separable(const sc_conv *c, fv_ctx *ctx, fv_tensor *x)
{
	const int64_t oihw[4] = {c->out_ch, c->in_ch, c->kernel[1], c->kernel[2]};
	fv_tensor *w_time = sc_conv_temporal_kernel(c, ctx, (double)c->log_speed->data[0]);
	fv_tensor *w_space = fv_reshape(ctx, c->w_spatial, 4, oihw);
	return fv_conv3d_separable(ctx, x, w_time, w_space, &c->p);
}

static fv_tensor *forward_separable(const sc_conv *c, fv_ctx *ctx, fv_tensor *x)
{
	fv_tensor *y = fv_conv3d(ctx, x, c->w_space, NULL, &c->p_space);
	y = fv_conv3d(ctx, y, c->w_time, NULL, &c->p_time);
	double speed = exp((double)c->log_speed->data[0]);
	/* exp(0) = 1 exactly: skip a pass over the activations. */
	return (y == NULL || speed == 1.0) ? y : fv_mul_scalar(ctx, y, speed);
}

fv_tensor *sc_conv_forward(const sc_conv *c, fv_ctx *ctx, fv_tensor *x)
{
	switch (c->type) {
	case SC_CONV_CUSTOM_SEPARABLE:
		return forward_custom_separable(c, ctx, x);
	case SC_CONV_SEPARABLE:
		return forward_separable(c, ctx, x);
	default: /* full, time_independent */
		return fv_conv3d(ctx, x, c->w_full, NULL, &c->p);
	}
}

/* ---- temporal smoothness ------------------------------------------------------ */

/* torch.linspace(0.1, 0.9, K) as (1, 1, K), with torch's symmetric formula. */
static fv_tensor *smoother(fv_ctx *ctx, int64_t K)
{
	const int64_t shape[3] = {1, 1, K};
	fv_tensor *s = fv_ctx_empty(ctx, 3, shape);
	if (s == NULL)
		return NULL;
	double start = 0.1, end = 0.9, step = K > 1 ? (end - start) / (double)(K - 1) : 0;
	/* one step is `start` alone, as in torch */
	for (int64_t k = 0; k < K; k++)
		s->data[k] = (fv_real)(K == 1 || k < K / 2 ? start + step * (double)k
		                                           : end - step * (double)(K - 1 - k));
	return s;
}

fv_tensor *sc_conv_temporal_smoothing(const sc_conv *c, fv_ctx *ctx)
{
	fv_tensor *lin = smoother(ctx, c->n_basis);
	double inv_out = 1.0 / (double)c->out_ch;
	fv_tensor *s = fv_sum_all(ctx, fv_square(ctx, fv_mul(ctx, lin, c->sin_w)));
	fv_tensor *k = fv_sum_all(ctx, fv_square(ctx, fv_mul(ctx, lin, c->cos_w)));
	return fv_add(ctx, fv_mul_scalar(ctx, s, inv_out), fv_mul_scalar(ctx, k, inv_out));
}

/* ---- shapes --------------------------------------------------------------- */

static fv_status conv_shape(int64_t shape[4], const int kernel[3], const fv_conv3d_params *p,
                            const char *where)
{
	static const char *const axis[3] = {"time", "height", "width"};
	for (int d = 0; d < 3; d++) {
		int64_t out = shape[1 + d] + p->pad[d][0] + p->pad[d][1] - kernel[d] + 1;
		if (out <= 0)
			return fv_error(FV_ERR_SHAPE,
			                "%s: the input is too small in %s: %lld "
			                "(padded by %d + %d) for a kernel of %d",
			                where, axis[d], (long long)shape[1 + d], p->pad[d][0],
			                p->pad[d][1], kernel[d]);
		shape[1 + d] = out;
	}
	return FV_OK;
}

fv_status sc_conv_output_shape(const sc_conv *c, int64_t shape[4], const char *where)
{
	fv_status rc;
	if (c->type == SC_CONV_SEPARABLE) {
		const int space[3] = {1, c->kernel[1], c->kernel[2]}, time[3] = {c->kernel[0], 1, 1};
		rc = conv_shape(shape, space, &c->p_space, where);
		if (rc == FV_OK)
			rc = conv_shape(shape, time, &c->p_time, where);
	} else {
		rc = conv_shape(shape, c->kernel, &c->p, where);
	}
	shape[0] = c->out_ch;
	return rc;
}

/* ---- the dense kernel ------------------------------------------------------------ */

/* custom_separable: w[o,i,t] * weight_spatial[o,i], with w[o,i,t] the
** temporal basis weighted by sin_weights and cos_weights, summed in double
** (the forward's float basis and product differ in the last bits). */
static void dense_custom_separable(const sc_conv *c, fv_real *k)
{
	int64_t OI = (int64_t)c->out_ch * c->in_ch, T = c->kernel[0], K = c->n_basis;
	int64_t HW = (int64_t)c->kernel[1] * c->kernel[2];
	const fv_real *sw = c->sin_w->data, *cw = c->cos_w->data, *ws = c->w_spatial->data;
	for (int64_t oi = 0; oi < OI; oi++)
		for (int64_t t = 0; t < T; t++) {
			double mask, freq, wt = 0;
			basis_frame(c, (double)c->log_speed->data[0], (int)t, &mask, &freq);
			for (int64_t b = 0; b < K; b++)
				wt += mask * ((double)sw[oi * K + b] * sin(freq * (double)b) +
				              (double)cw[oi * K + b] * cos(freq * (double)b));
			for (int64_t p = 0; p < HW; p++)
				k[(oi * T + t) * HW + p] = (fv_real)(wt * (double)ws[oi * HW + p]);
		}
}

/* separable: the (kt, 1, 1) conv mixing the (1, kh, kw) conv's channels,
** scaled by exp(log_speed): w[o,i,t] = sum_m time[o,m,t] space[m,i]. */
static void dense_separable(const sc_conv *c, fv_real *k)
{
	int64_t O = c->out_ch, I = c->in_ch, T = c->kernel[0];
	int64_t HW = (int64_t)c->kernel[1] * c->kernel[2];
	const fv_real *sp = c->w_space->data, *tm = c->w_time->data;
	double speed = exp((double)c->log_speed->data[0]);
	for (int64_t o = 0; o < O; o++)
		for (int64_t i = 0; i < I; i++)
			for (int64_t t = 0; t < T; t++)
				for (int64_t p = 0; p < HW; p++) {
					double v = 0;
					for (int64_t m = 0; m < O; m++)
						v += (double)tm[(o * O + m) * T + t] *
						     (double)sp[(m * I + i) * HW + p];
					k[((o * I + i) * T + t) * HW + p] = (fv_real)(v * speed);
				}
}

fv_status sc_conv_dense_kernel(const sc_conv *c, fv_tensor **out)
{
	const int64_t shape[5] = {c->out_ch, c->in_ch, c->kernel[0], c->kernel[1], c->kernel[2]};
	*out = fv_tensor_new(5, shape);
	if (*out == NULL)
		return FV_ERR_NOMEM;
	if (c->type == SC_CONV_CUSTOM_SEPARABLE)
		dense_custom_separable(c, (*out)->data);
	else if (c->type == SC_CONV_SEPARABLE)
		dense_separable(c, (*out)->data);
	else
		memcpy((*out)->data, c->w_full->data, (size_t)c->w_full->numel * sizeof(fv_real));
	return FV_OK;
}
