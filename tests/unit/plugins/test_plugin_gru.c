/*
** test_plugin_gru.c: the ConvGRUCore, ConditionedGRUCore, Scale2DLayer and
** Scale3DLayer plugins.
**
** Expected values come from naive double-precision loops written here (the
** GRU recurrence with direct 2-D convolutions, FiLM, the scale layers),
** applied to the module's own parameters and to the output of the same
** layer stack without its GRU (cores built with one seed share the layer
** weights: the GRU and FiLM are created after the layers); state_dict
** names are spelled out from openretina's modules.
*/
#include "plugin_testing.h"

PT_SUITE(gru, "cores", "regularizers");

/* A ConvGRUCore with one custom_separable layer (2 -> 3 channels) of
** kernel (3, 3, 3), unpadded, ELU, affine BatchNorm; `extra` follows. */
#define GRU_CORE_C(channels, extra)                                                    \
	"_target_: ConvGRUCore\nchannels: " channels "\ntemporal_kernel_sizes: [3]\n"  \
	"spatial_kernel_sizes: [3]\ngamma_input: 0.1\ngamma_temporal: 1\n" extra
#define GRU_CORE(extra) GRU_CORE_C("[2, 3]", extra)

#define GRU_KWARGS(pad)                                                                \
	"use_gru: true\ngru_kwargs: {rec_channels: 2, input_kern: 3, rec_kern: 3, "     \
	"pad_input: " pad "}\n"

static fv_tensor *run(fv_module *m, fv_ctx *ctx, fv_tensor *x)
{
	fv_module_set_training(m, false);
	return pt_forward(m, ctx, x, NULL, -1);
}

/* ---- the GRU recurrence against a naive one --------------------------------- */

static double sigmoid(double v)
{
	return 1 / (1 + exp(-v));
}

/* conv2d of the (C, H, W) map `in` (batch b, frame t of a (B, C, T, H, W)
** array, or a state (C, H, W)) with weight (R, C, k, k), bias, padding p,
** at output pixel (r, y, x). */
typedef struct map {
	const double *v;
	int64_t C, H, W, stride_c; /* element (c, y, x) at v[c*stride_c + y*W + x] */
} map;

/* With groups: output r reads the input channels of its group, weight
** (R, C / groups, k, k). */
static double conv_at(const map *in, const fv_tensor *w, const fv_tensor *b, int64_t p,
                      int64_t r, int64_t y, int64_t x)
{
	int64_t k = w->shape[2], cg = w->shape[1], groups = in->C / cg;
	int64_t c0 = r / (w->shape[0] / groups) * cg;
	double s = b->data[r];
	for (int64_t c = 0; c < cg; c++)
		for (int64_t i = 0; i < k; i++)
			for (int64_t j = 0; j < k; j++) {
				int64_t yy = y + i - p, xx = x + j - p;
				if (yy < 0 || yy >= in->H || xx < 0 || xx >= in->W)
					continue;
				s += w->data[((r * cg + c) * k + i) * k + j] *
				     in->v[(c0 + c) * in->stride_c + yy * in->W + xx];
			}
	return s;
}

/* The GRU output (B, R, T, Hs, Ws) of the features f (B, C, T, H, W). */
static double *naive_gru(const fv_module *m, const fv_tensor *f, int64_t pad_in, int64_t shrink)
{
	const char *g = "features.gru.gru.";
	char n[12][96];
	const char *parts[6] = {"reset_gate_input", "reset_gate_hidden", "update_gate_input",
	                        "update_gate_hidden", "out_gate_input", "out_gate_hidden"};
	fv_tensor *w[6], *bias[6];
	for (int i = 0; i < 6; i++) {
		snprintf(n[2 * i], sizeof n[0], "%s%s.weight", g, parts[i]);
		snprintf(n[2 * i + 1], sizeof n[0], "%s%s.bias", g, parts[i]);
		w[i] = pt_tensor(m, n[2 * i]);
		bias[i] = pt_tensor(m, n[2 * i + 1]);
	}
	int64_t B = f->shape[0], C = f->shape[1], T = f->shape[2], H = f->shape[3], W = f->shape[4];
	int64_t R = w[0]->shape[0], Hs = H - shrink, Ws = W - shrink, S = Hs * Ws;
	double *fd = malloc((size_t)f->numel * sizeof *fd);
	double *out = calloc((size_t)(B * R * T * S), sizeof *out);
	double *h = calloc((size_t)(R * S), sizeof *h), *hr = calloc((size_t)(R * S), sizeof *hr);
	double *z = calloc((size_t)(R * S), sizeof *z), *rg = calloc((size_t)(R * S), sizeof *rg);
	cr_assert(fd && out && h && hr && z && rg);
	for (int64_t i = 0; i < f->numel; i++)
		fd[i] = f->data[i];
	for (int64_t b = 0; b < B; b++) {
		memset(h, 0, (size_t)(R * S) * sizeof *h);
		for (int64_t t = 0; t < T; t++) {
			map in = {fd + (b * C * T + t) * H * W, C, H, W, T * H * W};
			map hm = {h, R, Hs, Ws, S};
			for (int64_t r = 0; r < R; r++)
				for (int64_t p = 0; p < S; p++) {
					int64_t y = p / Ws, x = p % Ws;
					z[r * S + p] = sigmoid(conv_at(&in, w[2], bias[2], pad_in, r, y, x) +
					                       conv_at(&hm, w[3], bias[3], 1, r, y, x));
					rg[r * S + p] = sigmoid(conv_at(&in, w[0], bias[0], pad_in, r, y, x) +
					                        conv_at(&hm, w[1], bias[1], 1, r, y, x));
					hr[r * S + p] = h[r * S + p] * rg[r * S + p];
				}
			map hrm = {hr, R, Hs, Ws, S};
			for (int64_t r = 0; r < R; r++)
				for (int64_t p = 0; p < S; p++) {
					int64_t y = p / Ws, x = p % Ws;
					double nn = tanh(conv_at(&in, w[4], bias[4], pad_in, r, y, x) +
					                 conv_at(&hrm, w[5], bias[5], 1, r, y, x));
					double zz = z[r * S + p];
					out[((b * R + r) * T + t) * S + p] = h[r * S + p] * (1 - zz) + nn * zz;
				}
			for (int64_t r = 0; r < R; r++)
				for (int64_t p = 0; p < S; p++)
					h[r * S + p] = out[((b * R + r) * T + t) * S + p];
		}
	}
	free(fd);
	free(h);
	free(hr);
	free(z);
	free(rg);
	return out;
}

static void expect_gru_matches(const char *channels, const char *kwargs, int64_t pad_in,
                               int64_t shrink)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml, GRU_CORE_C("%s", ""), channels);
	fv_module *plain = pt_build(reg, yaml, 3);
	snprintf(yaml, sizeof yaml, GRU_CORE_C("%s", "%s"), channels, kwargs);
	fv_module *gru = pt_build(reg, yaml, 3);
	/* nonzero biases, so that every conv's bias is checked */
	for (int i = 0; i < 6; i++)
		gc_fill_uniform(fv_module_tensor(gru, (const char *[]){
		                        "features.gru.gru.reset_gate_input.bias",
		                        "features.gru.gru.reset_gate_hidden.bias",
		                        "features.gru.gru.update_gate_input.bias",
		                        "features.gru.gru.update_gate_hidden.bias",
		                        "features.gru.gru.out_gate_input.bias",
		                        "features.gru.gru.out_gate_hidden.bias"}[i]),
		                40 + (uint64_t)i, -0.5, 0.5);
	const int64_t xs[5] = {2, 2, 6, 7, 6};
	fv_tensor *x = pt_input(5, xs, 11, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *f = run(plain, ctx, x), *y = run(gru, ctx, x);
	const int64_t R = pt_tensor(gru, "features.gru.gru.out_gate_hidden.bias")->numel;
	const int64_t want[5] = {2, R, 4, 5 - shrink, 4 - shrink};
	pt_expect_shape(y, 5, want, "GRU output");
	double *ref = naive_gru(gru, f, pad_in, shrink);
	for (int64_t i = 0; i < y->numel; i++)
		cr_assert_float_eq(y->data[i], ref[i], 1e-5, "element %lld: %g vs %g", (long long)i,
		                   y->data[i], ref[i]);
	/* output_shape agrees with the forward */
	int nd;
	int64_t s[4];
	cr_assert_eq(fv_module_output_shape(gru, 4, xs + 1, &nd, s), FV_OK, "%s", fv_errmsg());
	for (int d = 0; d < 4; d++)
		cr_assert_eq(s[d], want[d + 1]);
	free(ref);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(plain);
	fv_module_free(gru);
}

Test(gru, recurrence_matches_a_naive_gru_padded_input)
{
	expect_gru_matches("[2, 3]", GRU_KWARGS("true"), 1, 0);
}

Test(gru, recurrence_matches_a_naive_gru_unpadded_input_shrinks_the_state)
{
	expect_gru_matches("[2, 3]", GRU_KWARGS("false"), 0, 2);
}

/* groups > 1 runs every gate conv on its own (the fused path needs groups 1) */
Test(gru, recurrence_matches_a_naive_gru_with_groups)
{
	expect_gru_matches("[2, 4]",
	                   "use_gru: true\ngru_kwargs: {rec_channels: 6, input_kern: 3, "
	                   "rec_kern: 3, groups: 2}\n",
	                   1, 0);
}

/* ---- memory: the recurrent loop allocates nothing in steady state -------------- */

Test(gru, training_steps_allocate_nothing_after_the_first)
{
	fv_module *m = pt_build(reg, GRU_CORE(GRU_KWARGS("true")), 5);
	const int64_t xs[5] = {2, 2, 12, 6, 6};
	fv_tensor *x = pt_input(5, xs, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	size_t counts[3];
	for (int step = 0; step < 3; step++) {
		fv_forward_args fa = FV_FORWARD_ARGS_INIT;
		fv_tensor *loss = fv_add(ctx, fv_sum_all(ctx, fv_module_forward(m, ctx, x, &fa)),
		                         fv_module_regularizer(m, ctx, &fa));
		cr_assert_not_null(loss, "%s", fv_errmsg());
		cr_assert_eq(fv_backward(ctx, loss), FV_OK, "%s", fv_errmsg());
		fv_ctx_reset(ctx);
		counts[step] = fv_ctx_malloc_count(ctx);
	}
	cr_assert_eq(counts[2], counts[1], "step 3 allocated %zu chunks", counts[2] - counts[1]);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_module_free(m);
}

/* ---- ConditionedGRUCore ------------------------------------------------------ */

#define COND_CORE(extra)                                                                \
	"_target_: ConditionedGRUCore\ncond_dim: 2\nchannels: [2, 3]\n"                   \
	"temporal_kernel_sizes: 3\nspatial_kernel_sizes: 3\n" extra

Test(gru, film_scales_and_shifts_each_layer_by_the_conditioning)
{
	fv_module *plain = pt_build(reg, GRU_CORE(""), 9);
	fv_module *cond = pt_build(reg, COND_CORE(""), 9);
	fv_tensor *gw = pt_tensor(cond, "film_0.fc_gamma.weight");
	fv_tensor *gb = pt_tensor(cond, "film_0.fc_gamma.bias");
	fv_tensor *bw = pt_tensor(cond, "film_0.fc_beta.weight");
	fv_tensor *bb = pt_tensor(cond, "film_0.fc_beta.bias");
	gc_fill_uniform(gw, 1, -1, 1);
	gc_fill_uniform(gb, 2, -1, 1);
	gc_fill_uniform(bw, 3, -1, 1);
	gc_fill_uniform(bb, 4, -1, 1);
	const int64_t xs[5] = {2, 2, 5, 5, 5}, cs[2] = {2, 2};
	fv_tensor *x = pt_input(5, xs, 1, -1, 1), *c = pt_input(2, cs, 2, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *f = run(plain, ctx, x);
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.conditioning = c;
	fv_module_set_training(cond, false);
	fv_tensor *y = fv_module_forward(cond, ctx, x, &fa);
	cr_assert_not_null(y, "%s", fv_errmsg());
	int64_t per = f->numel / (2 * 3);
	for (int64_t i = 0; i < f->numel; i++) {
		int64_t b = i / (3 * per), ch = (i / per) % 3;
		double gamma = gb->data[ch], beta = bb->data[ch];
		for (int k = 0; k < 2; k++) {
			gamma += gw->data[ch * 2 + k] * c->data[b * 2 + k];
			beta += bw->data[ch * 2 + k] * c->data[b * 2 + k];
		}
		cr_assert_float_eq(y->data[i], gamma * f->data[i] + beta, 1e-5, "element %lld",
		                   (long long)i);
	}
	/* no conditioning: zeros, so FiLM is fc_gamma.bias * x + fc_beta.bias */
	fa.conditioning = NULL;
	fv_tensor *y0 = fv_module_forward(cond, ctx, x, &fa);
	cr_assert_not_null(y0);
	for (int64_t i = 0; i < f->numel; i++) {
		int64_t ch = (i / per) % 3;
		cr_assert_float_eq(y0->data[i], gb->data[ch] * f->data[i] + bb->data[ch], 1e-5);
	}
	/* a conditioning of another shape is refused */
	const int64_t bad[2] = {2, 3};
	fa.conditioning = fv_ctx_zeros(ctx, 2, bad);
	cr_assert_null(fv_module_forward(cond, ctx, x, &fa));
	pt_expect_msg("conditioning must be (2, 2)");
	fv_ctx_free(ctx);
	fv_tensor_free(x);
	fv_tensor_free(c);
	fv_module_free(plain);
	fv_module_free(cond);
}

/* ---- names, options, errors ------------------------------------------------------ */

Test(gru, registered_under_openretina_names)
{
	const char *cores[] = {"ConvGRUCore", "openretina.modules.core.gru_core.ConvGRUCore",
	                       "ConditionedGRUCore",
	                       "openretina.modules.core.gru_core.ConditionedGRUCore",
	                       "Scale2DLayer", "openretina.modules.layers.scaling.Scale2DLayer",
	                       "Scale3DLayer", "openretina.modules.layers.scaling.Scale3DLayer"};
	pt_expect_registered(reg, cores, 8, FV_KIND_CORE);
}

/* The core of configs/model/GRU_core_readout.yaml: openretina's state_dict. */
Test(gru, gru_core_readout_config_has_openretina_state_dict_names)
{
	fv_module *m = pt_build(reg,
	                        "_target_: ConvGRUCore\nchannels: [2, 3, 4]\n"
	                        "temporal_kernel_sizes: [21, 11, 11]\nspatial_kernel_sizes: [11, 5, 5]\n"
	                        "gamma_input: 0.3\ngamma_in_sparse: 1.0\ngamma_temporal: 40.0\n"
	                        "input_padding: 0\nhidden_padding: [0, 2, 2]\nuse_projections: true\n"
	                        "gru_kwargs: {rec_channels: 64, input_kern: 4, rec_kern: 4, groups: 1, "
	                        "gamma_rec: 1, pad_input: true}\n",
	                        1);
	const char *want[] = {
		"_input_weights_regularizer_spatial.laplace.filter",
		"_input_weights_regularizer_temporal.laplace.filter",
		"features.layer0.conv.sin_weights", "features.layer0.conv.cos_weights",
		"features.layer0.conv.weight_spatial", "features.layer0.conv._log_speed_default",
		"features.layer0.norm.weight", "features.layer0.norm.bias",
		"features.layer0.norm.running_mean", "features.layer0.norm.running_var",
		"features.layer0.norm.num_batches_tracked",
		"features.projection.0._log_speed_default", "features.projection.0.conv.weight",
		"features.layer1.conv.sin_weights", "features.layer1.conv.cos_weights",
		"features.layer1.conv.weight_spatial", "features.layer1.conv._log_speed_default",
		"features.layer1.norm.weight", "features.layer1.norm.bias",
		"features.layer1.norm.running_mean", "features.layer1.norm.running_var",
		"features.layer1.norm.num_batches_tracked",
	};
	pt_expect_names(m, want, (int)(sizeof want / sizeof want[0]));
	/* layer 1 is unpadded whatever hidden_padding says: 64 - 10 - 4 */
	const int64_t in[4] = {2, 40, 64, 64};
	int nd;
	int64_t s[4];
	cr_assert_eq(fv_module_output_shape(m, 4, in, &nd, s), FV_OK, "%s", fv_errmsg());
	cr_assert(s[0] == 4 && s[1] == 40 - 20 - 10 && s[2] == 50 && s[3] == 50, "%s",
	          fv_shape_str(4, s));
	fv_module_free(m);
}

Test(gru, bad_specs_are_refused_with_what_openretina_fails_on)
{
	static const pt_bad_spec bad[] = {
		{GRU_CORE("use_gru: true\ngru_kwargs: {rec_channels: 2, input_kern: 3, rec_kern: 4}\n"),
		 "use an odd rec_kern"},
		{GRU_CORE("use_gru: true\ngru_kwargs: {rec_channels: 2, input_kern: 4, rec_kern: 3}\n"),
		 "input_kern = 4 with pad_input true"},
		{GRU_CORE("use_gru: true\n"), "gru_kwargs is not given"},
		{GRU_CORE("use_gru: true\ngru_kwargs: {rec_channels: 2, input_kern: 3, rec_kern: 3, "
		          "groups: 2}\n"),
		 "must divide"},
		{GRU_CORE("batch_adaptation: true\n"), "n_neurons_dict must be a map"},
		{"_target_: ConvGRUCore\nchannels: [2, 3, 4]\ntemporal_kernel_sizes: [3]\n"
		 "spatial_kernel_sizes: 3\n",
		 "temporal_kernel_sizes: expected a positive integer or a list of at least 2"},
		{"_target_: ConvGRUCore\nchannels: [2, 3]\ntemporal_kernel_sizes: [2]\n"
		 "spatial_kernel_sizes: 3\n",
		 "custom_separable needs a length of at least 3"},
		{"_target_: ConvGRUCore\nchannels: [2]\n", "at least two channels"},
		{"_target_: ConditionedGRUCore\nchannels: [2, 3]\n", "cond_dim"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
}

/* ---- Scale2DLayer, Scale3DLayer ------------------------------------------------ */

Test(gru, scale_layers_multiply_each_channel_and_check_the_input)
{
	static const struct {
		const char *target;
		int ndim;
	} layers[] = {{"Scale2DLayer", 4}, {"Scale3DLayer", 5}};
	for (int k = 0; k < 2; k++) {
		fv_module *m = pt_make(reg, layers[k].target, "num_channels: 3\ninitial: 0.5", "s");
		fv_tensor *scale = pt_tensor(m, "scale");
		cr_assert_eq(scale->ndim, layers[k].ndim);
		cr_assert_float_eq(scale->data[2], 0.5, 0);
		gc_fill_uniform(scale, 4, -2, 2);
		const int64_t xs[5] = {2, 3, 4, 5, 2};
		fv_tensor *x = pt_input(layers[k].ndim, xs, 5, -1, 1);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
		int64_t per = x->numel / (2 * 3);
		for (int64_t i = 0; i < x->numel; i++)
			cr_assert_float_eq(y->data[i], x->data[i] * scale->data[(i / per) % 3], 1e-6);
		const int64_t bad[5] = {2, 4, 4, 5, 2};
		pt_expect_forward_error(m, NULL, layers[k].ndim, bad, "expected an input (B, 3,");
		fv_ctx_free(ctx);
		fv_tensor_free(x);
		fv_module_free(m);
	}
	pt_expect_make_error(reg, "Scale3DLayer", "initial: 2", "num_channels");
}
