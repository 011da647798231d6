/*
** gru_cell.c: openretina's GRU_Module (modules/layers/gru.py), a
** convolutional GRU cell run over the frames of a (B, C, T, H, W) input.
**
** From h_0 = 0, for each frame x_t in order:
**     z = sigmoid(update_in(x_t) + update_h(h))
**     r = sigmoid(reset_in(x_t) + reset_h(h))
**     n = tanh(out_in(x_t) + out_h(h * r))
**     h = h * (1 - z) + n * z
** and the output stacks every h on the time axis.  Each gate is a Conv2d
** with bias; the input convs pad input_kern // 2 when pad_input, else
** nothing (the state is then smaller than the frame by input_kern - 1,
** openretina's _shrinkage); the hidden convs pad rec_kern // 2.
**
** The input convs do not depend on the state, so they run once over all
** frames as (1, k, k) 3-D convolutions; only the hidden convs and the gate
** arithmetic are in the loop.  Every op records on the tape, so the
** gradient flows back through time with the ordinary backward, and the
** loop's tensors live in the step's arena: a step allocates nothing on
** the heap.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gru_core.h"

static const fv_option gru_options[] = {
	FV_OPT("rec_channels", INT, gru_cell, rec_channels, NULL,
	       "channels of the hidden state (the core's output channels)", .min = 1, .max = 1e9,
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("input_kern", INT, gru_cell, input_kern, NULL,
	       "square kernel size of the convolutions of the input frame", .min = 1, .max = 1e6,
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("rec_kern", INT, gru_cell, rec_kern, NULL,
	       "square kernel size of the convolutions of the hidden state (odd)", .min = 1,
	       .max = 1e6, .flags = FV_OPT_REQUIRED),
	FV_OPT("groups", INT, gru_cell, groups, "1", "groups of every gate convolution", .min = 1,
	       .max = 1e9),
	FV_OPT("gamma_rec", FLOAT, gru_cell, gamma_rec, "0",
	       "the cell's own bias penalty weight; openretina's core regularizer ignores it"),
	FV_OPT("pad_input", BOOL, gru_cell, pad_input, "true",
	       "pad the input convolutions by input_kern // 2 (false: the state shrinks by "
	       "input_kern - 1)"),
	{0},
};

static const char *const conv_names[GRU_NCONV] = {
	"reset_gate_input",  "reset_gate_hidden", "update_gate_input",
	"update_gate_hidden", "out_gate_input",   "out_gate_hidden",
};

/* openretina's ConvGRUCell builds its convs whatever the sizes; these are
** the ones its first forward then fails on (a gate map one pixel larger
** than the state: "size mismatch"), refused here at construction. */
static fv_status check_cell(const gru_cell *g, int64_t in_channels)
{
	if (g->rec_kern % 2 == 0)
		return fv_error(FV_ERR_CONFIG,
		                "gru_kwargs.rec_kern = %lld: an even kernel padded by rec_kern // 2 "
		                "grows the hidden state by one pixel per frame (openretina fails with "
		                "a size mismatch at the first forward); use an odd rec_kern",
		                (long long)g->rec_kern);
	if (g->pad_input && g->input_kern % 2 == 0)
		return fv_error(FV_ERR_CONFIG,
		                "gru_kwargs.input_kern = %lld with pad_input true: the padded input "
		                "maps are one pixel larger than the hidden state (openretina fails "
		                "with a size mismatch at the first forward); use an odd input_kern "
		                "or pad_input false",
		                (long long)g->input_kern);
	if (in_channels % g->groups != 0 || g->rec_channels % g->groups != 0)
		return fv_error(FV_ERR_CONFIG,
		                "gru_kwargs.groups = %lld must divide the input channels (%lld) and "
		                "rec_channels (%lld)",
		                (long long)g->groups, (long long)in_channels,
		                (long long)g->rec_channels);
	return FV_OK;
}

/* nn.init.xavier_normal_: std = sqrt(2 / (fan_in + fan_out)). */
static void xavier_normal(fv_tensor *w, fv_ctx *rng)
{
	int64_t receptive = w->shape[2] * w->shape[3];
	double fan_in = (double)(w->shape[1] * receptive), fan_out = (double)(w->shape[0] * receptive);
	double std = sqrt(2.0 / (fan_in + fan_out));
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(fv_ctx_random_normal(rng) * std);
}

static void conv_params(fv_conv3d_params *p, int64_t kern, bool padded, int64_t groups)
{
	memset(p, 0, sizeof *p);
	int pad = padded ? (int)(kern / 2) : 0;
	p->pad[1][0] = p->pad[1][1] = p->pad[2][0] = p->pad[2][1] = pad;
	p->groups = (int)groups;
}

fv_status gru_cell_create(gru_cell *g, fv_module *m, const fv_config_node *spec,
                          int64_t in_channels, fv_ctx *rng)
{
	memset(g, 0, sizeof *g);
	if (spec == NULL || fv_node_is_null(spec))
		return fv_error(FV_ERR_CONFIG,
		                "use_gru is true but gru_kwargs is not given (rec_channels, "
		                "input_kern, rec_kern, ...)");
	fv_status rc = fv_options_parse(gru_options, spec, g, "gru_kwargs", NULL);
	if (rc == FV_OK)
		rc = check_cell(g, in_channels);
	if (rc != FV_OK)
		return rc;
	g->in_channels = in_channels;
	conv_params(&g->p_in, g->input_kern, g->pad_input, g->groups);
	conv_params(&g->p_rec, g->rec_kern, true, g->groups);
	for (int i = 0; i < GRU_NCONV; i++) {
		bool hidden = i % 2 == 1;
		int64_t k = hidden ? g->rec_kern : g->input_kern;
		int64_t shape[4] = {g->rec_channels, (hidden ? g->rec_channels : in_channels) / g->groups,
		                    k, k};
		char name[96];
		snprintf(name, sizeof name, "features.gru.gru.%s.weight", conv_names[i]);
		g->w[i] = fv_module_add_param(m, name, 4, shape);
		snprintf(name, sizeof name, "features.gru.gru.%s.bias", conv_names[i]);
		g->b[i] = fv_module_add_param(m, name, 1, &g->rec_channels);
		if (g->w[i] == NULL || g->b[i] == NULL)
			return FV_ERR_NOMEM;
		xavier_normal(g->w[i], rng);
	}
	return FV_OK;
}

static int64_t shrinkage(const gru_cell *g)
{
	return g->pad_input ? 0 : g->input_kern - 1;
}

fv_status gru_cell_output_shape(const gru_cell *g, int64_t shape[4])
{
	if (shape[0] != g->in_channels)
		return fv_error(FV_ERR_SHAPE, "GRU_Module: expected %lld input channels, got %lld",
		                (long long)g->in_channels, (long long)shape[0]);
	if (shape[2] <= shrinkage(g) || shape[3] <= shrinkage(g))
		return fv_error(FV_ERR_SHAPE,
		                "GRU_Module: a %lld x %lld map is too small for the unpadded "
		                "input_kern %lld",
		                (long long)shape[2], (long long)shape[3], (long long)g->input_kern);
	shape[0] = g->rec_channels;
	shape[2] -= shrinkage(g);
	shape[3] -= shrinkage(g);
	return FV_OK;
}

/* The convolutions of one forward.  With groups 1 the convs that read the
** same tensor run as one, their weights stacked on the output channels:
** the three input convs, and the update and reset hidden convs. */
typedef struct gru_run {
	fv_tensor *w_in, *b_in; /* (3R, C, k, k): reset, update, out; or NULL */
	fv_tensor *w_zr, *b_zr; /* (2R, R, k, k): update, reset; or NULL */
	fv_tensor *in[3];       /* reset, update, out: the input's share, (R, T, B, H, W) */
} gru_run;

/* conv2d(x, w, b) of each frame of x, as a (1, k, k) 3-D convolution. */
static fv_tensor *conv(fv_ctx *ctx, fv_tensor *w, fv_tensor *b, fv_tensor *x,
                       const fv_conv3d_params *p)
{
	const int64_t w5[5] = {w->shape[0], w->shape[1], 1, w->shape[2], w->shape[3]};
	return fv_conv3d(ctx, x, fv_reshape(ctx, w, 5, w5), b, p);
}

static fv_tensor *stack(fv_ctx *ctx, fv_tensor *a, fv_tensor *b, fv_tensor *c)
{
	fv_tensor *xs[3] = {a, b, c};
	return fv_concat(ctx, c != NULL ? 3 : 2, xs, 0);
}

static fv_tensor *channels(fv_ctx *ctx, fv_tensor *x, int axis, int64_t i, int64_t n)
{
	return fv_slice(ctx, x, axis, i * n, (i + 1) * n, 1);
}

/* Frame t of a gate input (R, T, B, H, W) as the state's (1, R, B, H, W). */
static fv_tensor *frame(fv_ctx *ctx, fv_tensor *in, int64_t t)
{
	const int64_t s[5] = {1, in->shape[0], in->shape[2], in->shape[3], in->shape[4]};
	return fv_reshape(ctx, fv_slice(ctx, in, 1, t, t + 1, 1), 5, s);
}

/* The hidden convs' share of the update and reset gates. */
static void hidden_zr(const gru_cell *g, const gru_run *r, fv_ctx *ctx, fv_tensor *h,
                      fv_tensor **z, fv_tensor **rs)
{
	if (r->w_zr != NULL) {
		fv_tensor *zr = conv(ctx, r->w_zr, r->b_zr, h, &g->p_rec);
		*z = channels(ctx, zr, 1, 0, g->rec_channels);
		*rs = channels(ctx, zr, 1, 1, g->rec_channels);
		return;
	}
	*z = conv(ctx, g->w[GRU_UPDATE_H], g->b[GRU_UPDATE_H], h, &g->p_rec);
	*rs = conv(ctx, g->w[GRU_RESET_H], g->b[GRU_RESET_H], h, &g->p_rec);
}

/* One step of the cell from the input convs' frame t. */
static fv_tensor *step(const gru_cell *g, const gru_run *r, fv_ctx *ctx, int64_t t, fv_tensor *h)
{
	fv_tensor *zh, *rh;
	hidden_zr(g, r, ctx, h, &zh, &rh);
	fv_tensor *z = fv_sigmoid(ctx, fv_add(ctx, frame(ctx, r->in[1], t), zh));
	fv_tensor *rg = fv_sigmoid(ctx, fv_add(ctx, frame(ctx, r->in[0], t), rh));
	fv_tensor *oh = conv(ctx, g->w[GRU_OUT_H], g->b[GRU_OUT_H], fv_mul(ctx, h, rg), &g->p_rec);
	fv_tensor *n = fv_tanh(ctx, fv_add(ctx, frame(ctx, r->in[2], t), oh));
	fv_tensor *keep = fv_add_scalar(ctx, fv_neg(ctx, z), 1);
	return fv_add(ctx, fv_mul(ctx, h, keep), fv_mul(ctx, n, z));
}

/* The input's share of every gate for every frame, (B, R, T, H, W) as
** (R, T, B, H, W): frames then batch, so that a frame is one block. */
static void gate_inputs(const gru_cell *g, gru_run *r, fv_ctx *ctx, fv_tensor *x)
{
	static const int to_rtb[5] = {1, 2, 0, 3, 4};
	static const int in_convs[3] = {GRU_RESET_IN, GRU_UPDATE_IN, GRU_OUT_IN};
	if (r->w_in != NULL) {
		fv_tensor *all = fv_permute(ctx, conv(ctx, r->w_in, r->b_in, x, &g->p_in), to_rtb);
		for (int i = 0; i < 3; i++)
			r->in[i] = channels(ctx, all, 0, i, g->rec_channels);
		return;
	}
	for (int i = 0; i < 3; i++)
		r->in[i] = fv_permute(
		        ctx, conv(ctx, g->w[in_convs[i]], g->b[in_convs[i]], x, &g->p_in), to_rtb);
}

static void fuse(const gru_cell *g, gru_run *r, fv_ctx *ctx)
{
	if (g->groups != 1)
		return;
	fv_tensor *const *w = g->w, *const *b = g->b;
	r->w_in = stack(ctx, w[GRU_RESET_IN], w[GRU_UPDATE_IN], w[GRU_OUT_IN]);
	r->b_in = stack(ctx, b[GRU_RESET_IN], b[GRU_UPDATE_IN], b[GRU_OUT_IN]);
	r->w_zr = stack(ctx, w[GRU_UPDATE_H], w[GRU_RESET_H], NULL);
	r->b_zr = stack(ctx, b[GRU_UPDATE_H], b[GRU_RESET_H], NULL);
}

/* The state lives as (1, R, B, H, W), the batch on the time axis of the
** (1, k, k) hidden convolutions: each is then one product over the whole
** batch rather than one per sample. */
fv_tensor *gru_cell_forward(const gru_cell *g, fv_ctx *ctx, fv_tensor *x)
{
	if (x == NULL)
		return NULL;
	if (x->ndim != 5 || x->shape[1] != g->in_channels || x->shape[2] < 1) {
		fv_error(FV_ERR_SHAPE,
		         "GRU_Module: expected an input (B, %lld, T >= 1, H, W), got %s",
		         (long long)g->in_channels, fv_shape_str(x->ndim, x->shape));
		return NULL;
	}
	int64_t s[4] = {x->shape[1], x->shape[2], x->shape[3], x->shape[4]};
	if (gru_cell_output_shape(g, s) != FV_OK)
		return NULL;
	gru_run r = {0};
	fuse(g, &r, ctx);
	gate_inputs(g, &r, ctx, x);
	int64_t T = x->shape[2];
	const int64_t state[5] = {1, g->rec_channels, x->shape[0], s[2], s[3]};
	fv_tensor *h = fv_ctx_zeros(ctx, 5, state);
	fv_tensor **hs = fv_ctx_alloc(ctx, (size_t)T * sizeof *hs);
	if (hs == NULL || h == NULL || !r.in[0] || !r.in[1] || !r.in[2])
		return NULL;
	for (int64_t t = 0; t < T; t++) {
		h = step(g, &r, ctx, t, h);
		if (h == NULL)
			return NULL;
		hs[t] = h;
	}
	/* (T, R, B, H, W) -> (B, R, T, H, W) */
	static const int to_brt[5] = {2, 1, 0, 3, 4};
	return fv_permute(ctx, fv_concat(ctx, (int)T, hs, 0), to_brt);
}
