/*
** test_plugin_cores.c: the SimpleCoreWrapper and DummyCore plugins.
**
** Expected values come from a naive double-precision reimplementation of
** openretina's layer stack written here (dense loops, the temporal basis
** from its formula), from hand computation, or from finite differences;
** state_dict names and shapes are spelled out from openretina's modules.
*/
#include "plugin_testing.h"

/* ---- fixtures ------------------------------------------------------------------ */

PT_SUITE(cores, "cores", "regularizers", "readouts", "models");

static fv_module *build_core(const char *yaml)
{
	return pt_build(reg, yaml, 7);
}

static fv_tensor *T(fv_module *m, const char *name)
{
	return pt_tensor(m, name);
}

/* A SimpleCoreWrapper spec's first keys; the rest of the spec follows as
** YAML text. */
#define CORE(type, channels, temporal, spatial)                                       \
	"_target_: SimpleCoreWrapper\nconvolution_type: " type "\nchannels: " channels \
	"\ntemporal_kernel_sizes: " temporal "\nspatial_kernel_sizes: " spatial "\n"
/* The regularization weights: input, temporal, in_sparse, hidden. */
#define GAMMAS(input, temporal, in_sparse, hidden)                                      \
	"gamma_input: " input "\ngamma_temporal: " temporal "\ngamma_in_sparse: " in_sparse \
	"\ngamma_hidden: " hidden "\n"
#define GAMMAS0 GAMMAS("0", "0", "0", "0")

/* Fill every parameter (not buffers) with deterministic values in [lo, hi). */
typedef struct fill_state {
	uint64_t seed;
	double lo, hi;
} fill_state;

static int fill_param(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	fill_state *s = ud;
	if (is_param)
		gc_fill_uniform(t, s->seed++, s->lo, s->hi);
	return 0;
}

static void fill_params(fv_module *m, uint64_t seed, double lo, double hi)
{
	fill_state s = {seed, lo, hi};
	fv_module_foreach_tensor(m, fill_param, &s);
}

/* Eval-mode running statistics that are not the identity. */
static void set_running_stats(fv_module *m, int n_layers, uint64_t seed)
{
	char name[128];
	for (int i = 0; i < n_layers; i++) {
		snprintf(name, sizeof name, "features.layer%d.norm.running_mean", i);
		gc_fill_uniform(T(m, name), seed + 2 * i, -0.2, 0.2);
		snprintf(name, sizeof name, "features.layer%d.norm.running_var", i);
		gc_fill_uniform(T(m, name), seed + 2 * i + 1, 0.5, 2.0);
	}
}

/* ---- a naive reference in double --------------------------------------------- */

typedef struct arr {
	int64_t s[5]; /* N, C, T, H, W */
	double *v;
} arr;

static int64_t arr_numel(const arr *a)
{
	return a->s[0] * a->s[1] * a->s[2] * a->s[3] * a->s[4];
}

static arr arr_new(int64_t n, int64_t c, int64_t t, int64_t h, int64_t w)
{
	arr a = {{n, c, t, h, w}, NULL};
	a.v = calloc((size_t)arr_numel(&a), sizeof(double));
	return a;
}

#define AT(a, n, c, t, h, w) \
	(a).v[((((n) * (a).s[1] + (c)) * (a).s[2] + (t)) * (a).s[3] + (h)) * (a).s[4] + (w)]

static arr arr_from(const fv_tensor *t)
{
	arr a = arr_new(t->shape[0], t->shape[1], t->shape[2], t->shape[3], t->shape[4]);
	for (int64_t i = 0; i < t->numel; i++)
		a.v[i] = t->data[i];
	return a;
}

/* Dense cross-correlation; w is (O, C, kt, kh, kw) row-major, pad[d] =
** {before, after}. */
static arr naive_conv(arr x, const double *w, int64_t O, const int k[3], const int pad[3][2])
{
	int64_t To = x.s[2] + pad[0][0] + pad[0][1] - k[0] + 1;
	int64_t Ho = x.s[3] + pad[1][0] + pad[1][1] - k[1] + 1;
	int64_t Wo = x.s[4] + pad[2][0] + pad[2][1] - k[2] + 1;
	arr y = arr_new(x.s[0], O, To, Ho, Wo);
	int64_t C = x.s[1];
	for (int64_t n = 0; n < x.s[0]; n++)
		for (int64_t o = 0; o < O; o++)
			for (int64_t t = 0; t < To; t++)
				for (int64_t h = 0; h < Ho; h++)
					for (int64_t ww = 0; ww < Wo; ww++) {
						double acc = 0;
						for (int64_t c = 0; c < C; c++)
							for (int a = 0; a < k[0]; a++)
								for (int b = 0; b < k[1]; b++)
									for (int d = 0; d < k[2]; d++) {
										int64_t ti = t + a - pad[0][0];
										int64_t hi = h + b - pad[1][0];
										int64_t wi = ww + d - pad[2][0];
										if (ti < 0 || ti >= x.s[2] || hi < 0 ||
										    hi >= x.s[3] || wi < 0 || wi >= x.s[4])
											continue;
										acc += w[(((o * C + c) * k[0] + a) * k[1] + b) *
										             k[2] +
										         d] *
										       AT(x, n, c, ti, hi, wi);
									}
						AT(y, n, o, t, h, ww) = acc;
					}
	free(x.v);
	return y;
}

/* BN with given statistics, then the two per-channel shifts, then ELU. */
static void naive_bn_bias_elu(arr x, const double *mean, const double *var, const fv_tensor *w,
                              const fv_tensor *b, const fv_tensor *bias)
{
	int64_t inner = x.s[2] * x.s[3] * x.s[4];
	for (int64_t n = 0; n < x.s[0]; n++)
		for (int64_t c = 0; c < x.s[1]; c++)
			for (int64_t i = 0; i < inner; i++) {
				double *v = &x.v[(n * x.s[1] + c) * inner + i];
				double z = (*v - mean[c]) / sqrt(var[c] + 1e-5) * w->data[c] + b->data[c] +
				           bias->data[c];
				*v = z > 0 ? z : exp(z) - 1;
			}
}

static void batch_stats(arr x, double *mean, double *var_biased, double *var_unbiased)
{
	int64_t inner = x.s[2] * x.s[3] * x.s[4], cnt = x.s[0] * inner;
	for (int64_t c = 0; c < x.s[1]; c++) {
		double s = 0, ss = 0;
		for (int64_t n = 0; n < x.s[0]; n++)
			for (int64_t i = 0; i < inner; i++)
				s += x.v[(n * x.s[1] + c) * inner + i];
		mean[c] = s / (double)cnt;
		for (int64_t n = 0; n < x.s[0]; n++)
			for (int64_t i = 0; i < inner; i++) {
				double d = x.v[(n * x.s[1] + c) * inner + i] - mean[c];
				ss += d * d;
			}
		var_biased[c] = ss / (double)cnt;
		var_unbiased[c] = ss / (double)(cnt - 1);
	}
}

static arr naive_maxpool122(arr x)
{
	arr y = arr_new(x.s[0], x.s[1], x.s[2], x.s[3] / 2, x.s[4] / 2);
	for (int64_t n = 0; n < y.s[0]; n++)
		for (int64_t c = 0; c < y.s[1]; c++)
			for (int64_t t = 0; t < y.s[2]; t++)
				for (int64_t h = 0; h < y.s[3]; h++)
					for (int64_t w = 0; w < y.s[4]; w++) {
						double m = -INFINITY;
						for (int a = 0; a < 2; a++)
							for (int b = 0; b < 2; b++)
								m = fmax(m, AT(x, n, c, t, 2 * h + a, 2 * w + b));
						AT(y, n, c, t, h, w) = m;
					}
	free(x.v);
	return y;
}

static arr naive_avgpool(arr x, const int k[3])
{
	arr y = arr_new(x.s[0], x.s[1], x.s[2] / k[0], x.s[3] / k[1], x.s[4] / k[2]);
	for (int64_t n = 0; n < y.s[0]; n++)
		for (int64_t c = 0; c < y.s[1]; c++)
			for (int64_t t = 0; t < y.s[2]; t++)
				for (int64_t h = 0; h < y.s[3]; h++)
					for (int64_t w = 0; w < y.s[4]; w++) {
						double s = 0;
						for (int a = 0; a < k[0]; a++)
							for (int b = 0; b < k[1]; b++)
								for (int d = 0; d < k[2]; d++)
									s += AT(x, n, c, k[0] * t + a, k[1] * h + b,
									        k[2] * w + d);
						AT(y, n, c, t, h, w) = s / (k[0] * k[1] * k[2]);
					}
	free(x.v);
	return y;
}

static arr naive_cut(arr x, int64_t cut)
{
	arr y = arr_new(x.s[0], x.s[1], x.s[2] - cut, x.s[3], x.s[4]);
	for (int64_t n = 0; n < y.s[0]; n++)
		for (int64_t c = 0; c < y.s[1]; c++)
			for (int64_t t = 0; t < y.s[2]; t++)
				for (int64_t h = 0; h < y.s[3]; h++)
					for (int64_t w = 0; w < y.s[4]; w++)
						AT(y, n, c, t, h, w) = AT(x, n, c, t + cut, h, w);
	free(x.v);
	return y;
}

/* The custom_separable weight from the README's formula:
** w[o,i,t,h,w] = (Σ_k sin_w·mask·sin(k·freq) + cos_w·mask·cos(k·freq))[o,i,t]
**                · weight_spatial[o,i,0,h,w]. */
static double *custom_separable_weight(fv_module *m, int layer, int kt)
{
	char name[128];
	snprintf(name, sizeof name, "features.layer%d.conv.sin_weights", layer);
	fv_tensor *sw = T(m, name);
	snprintf(name, sizeof name, "features.layer%d.conv.cos_weights", layer);
	fv_tensor *cw = T(m, name);
	snprintf(name, sizeof name, "features.layer%d.conv.weight_spatial", layer);
	fv_tensor *ws = T(m, name);
	snprintf(name, sizeof name, "features.layer%d.conv._log_speed_default", layer);
	double s = exp(T(m, name)->data[0]);
	int64_t O = ws->shape[0], I = ws->shape[1], hw = ws->shape[3] * ws->shape[4];
	int K = kt / 3;
	double *w = calloc((size_t)(O * I * kt * hw), sizeof(double));
	for (int64_t o = 0; o < O; o++)
		for (int64_t i = 0; i < I; i++)
			for (int t = 0; t < kt; t++) {
				double time = t - kt;
				double freq = s * time * 2 * M_PI / kt;
				double mask = 1 / (1 + exp(-time - floor(0.95 * kt) / s));
				double wt = 0;
				for (int k = 0; k < K; k++)
					wt += sw->data[(o * I + i) * K + k] * mask * sin(k * freq) +
					      cw->data[(o * I + i) * K + k] * mask * cos(k * freq);
				for (int64_t j = 0; j < hw; j++)
					w[((o * I + i) * kt + t) * hw + j] = wt * ws->data[(o * I + i) * hw + j];
			}
	return w;
}

static double *weight_of(const fv_tensor *t)
{
	double *w = malloc((size_t)t->numel * sizeof(double));
	for (int64_t i = 0; i < t->numel; i++)
		w[i] = t->data[i];
	return w;
}

/* One layer's BN + bias + ELU in eval mode from the module's tensors. */
static void naive_layer_tail_eval(fv_module *m, int layer, arr y)
{
	char name[5][128];
	const char *parts[5] = {"norm.running_mean", "norm.running_var", "norm.weight", "norm.bias",
	                        "bias.bias"};
	for (int i = 0; i < 5; i++)
		snprintf(name[i], sizeof name[i], "features.layer%d.%s", layer, parts[i]);
	double *mean = weight_of(T(m, name[0])), *var = weight_of(T(m, name[1]));
	naive_bn_bias_elu(y, mean, var, T(m, name[2]), T(m, name[3]), T(m, name[4]));
	free(mean);
	free(var);
}

static void expect_close(const fv_tensor *got, arr want, double atol, double rtol)
{
	cr_assert_eq(got->ndim, 5);
	for (int d = 0; d < 5; d++)
		cr_assert_eq(got->shape[d], want.s[d], "dim %d: got %lld, want %lld", d,
		             (long long)got->shape[d], (long long)want.s[d]);
	for (int64_t i = 0; i < got->numel; i++)
		cr_assert(fabs(got->data[i] - want.v[i]) <= atol + rtol * fabs(want.v[i]),
		          "element %lld: got %.8g, want %.8g", (long long)i, (double)got->data[i],
		          want.v[i]);
	free(want.v);
}

static fv_tensor *forward(fv_module *m, fv_ctx *ctx, fv_tensor *x)
{
	return pt_forward(m, ctx, x, NULL, -1);
}

/* The core of `yaml` in eval mode, its parameters filled from `seed` and
** its running statistics (of `n_layers`) from `stats_seed`. */
static fv_module *eval_core(const char *yaml, uint64_t seed, int n_layers, uint64_t stats_seed)
{
	fv_module *m = build_core(yaml);
	fv_module_set_training(m, false);
	fill_params(m, seed, -0.5, 0.5);
	set_running_stats(m, n_layers, stats_seed);
	return m;
}

/* forward(x) matches the naive `want` (freed); then x and m are freed. */
static void expect_forward_matches(fv_module *m, fv_tensor *x, arr want)
{
	fv_ctx *ctx = fv_ctx_new();
	expect_close(forward(m, ctx, x), want, 1e-5, 1e-4);
	pt_release(m, x, ctx);
}

/* ---- state_dict names ------------------------------------------------------------ */

typedef struct expect_entry {
	const char *name;
	int ndim;
	int64_t shape[5];
	bool is_param;
	bool seen;
} expect_entry;

typedef struct expect_list {
	expect_entry *e;
	int n;
	int unexpected;
	char first_unexpected[128];
} expect_list;

static int check_entry(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	expect_list *l = ud;
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->e[i].name, name) != 0)
			continue;
		cr_expect_eq(t->ndim, l->e[i].ndim, "%s: ndim %d, want %d", name, t->ndim,
		             l->e[i].ndim);
		for (int d = 0; d < l->e[i].ndim; d++)
			cr_expect_eq(t->shape[d], l->e[i].shape[d], "%s: dim %d", name, d);
		cr_expect_eq(is_param, l->e[i].is_param, "%s: is_param %d", name, is_param);
		l->e[i].seen = true;
		return 0;
	}
	if (l->unexpected++ == 0)
		snprintf(l->first_unexpected, sizeof l->first_unexpected, "%s", name);
	return 0;
}

static void expect_tensors(fv_module *m, expect_entry *e, int n)
{
	expect_list l = {e, n, 0, ""};
	fv_module_foreach_tensor(m, check_entry, &l);
	cr_assert_eq(l.unexpected, 0, "%d unexpected tensors, e.g. %s", l.unexpected,
	             l.first_unexpected);
	for (int i = 0; i < n; i++)
		cr_assert(e[i].seen, "missing tensor %s", e[i].name);
}

#define P(name, nd, ...) {name, nd, {__VA_ARGS__}, true, false}
#define B(name, nd, ...) {name, nd, {__VA_ARGS__}, false, false}

/* What layer `l` of `c` output channels holds besides its conv weights. */
#define LAYER_TAIL(l, c)                                                  \
	B("features.layer" #l ".conv._log_speed_default", 1, 1),           \
	NORM_AND_BIAS(l, c)
/* BatchNorm3d and Bias3DLayer of layer `l`. */
#define NORM_AND_BIAS(l, c)                                               \
	P("features.layer" #l ".norm.weight", 1, c),                       \
	P("features.layer" #l ".norm.bias", 1, c),                         \
	B("features.layer" #l ".norm.running_mean", 1, c),                 \
	B("features.layer" #l ".norm.running_var", 1, c),                  \
	B("features.layer" #l ".norm.num_batches_tracked", 0, 0),          \
	P("features.layer" #l ".bias.bias", 5, 1, c, 1, 1, 1)

Test(cores, custom_separable_state_dict_names)
{
	fv_module *m = build_core("_target_: openretina.modules.core.base_core.SimpleCoreWrapper\n"
	                          "channels: [2, 4, 5]\ntemporal_kernel_sizes: [6, 4]\n"
	                          "spatial_kernel_sizes: [5, 3]\ncut_first_n_frames: 0\n"
	                          GAMMAS("0.5", "2.0", "0.2", "0.3"));
	expect_entry e[] = {
		B("_input_weights_regularizer_spatial.laplace.filter", 4, 1, 1, 3, 3),
		P("features.layer0.conv.sin_weights", 3, 4, 2, 2),
		P("features.layer0.conv.cos_weights", 3, 4, 2, 2),
		P("features.layer0.conv.weight_spatial", 5, 4, 2, 1, 5, 5),
		LAYER_TAIL(0, 4),
		P("features.layer1.conv.sin_weights", 3, 5, 4, 1),
		P("features.layer1.conv.cos_weights", 3, 5, 4, 1),
		P("features.layer1.conv.weight_spatial", 5, 5, 4, 1, 3, 3),
		LAYER_TAIL(1, 5),
	};
	expect_tensors(m, e, (int)(sizeof e / sizeof e[0]));
	fv_module_free(m);
}

Test(cores, separable_full_and_colour_state_dict_names)
{
	fv_module *m = build_core(CORE("separable", "[2, 3]", "[5]", "[3]")
	                          GAMMAS("0", "1.0", "0", "0"));
	expect_entry e[] = {
		B("_input_weights_regularizer_spatial.laplace.filter", 4, 1, 1, 3, 3),
		P("features.layer0.conv.space_conv.weight", 5, 3, 2, 1, 3, 3),
		P("features.layer0.conv.time_conv.weight", 5, 3, 3, 5, 1, 1),
		LAYER_TAIL(0, 3),
	};
	expect_tensors(m, e, (int)(sizeof e / sizeof e[0]));
	fv_module_free(m);

	m = build_core(CORE("full", "[1, 3]", "[4]", "[3]")
	               "color_squashing_weights: [0.25, 0.75]\n" GAMMAS0);
	expect_entry f[] = {
		B("_input_weights_regularizer_spatial.laplace.filter", 4, 1, 1, 3, 3),
		P("features.layer0.conv.conv.weight", 5, 3, 1, 4, 3, 3),
		LAYER_TAIL(0, 3),
		/* a Parameter with requires_grad=False in openretina: never trained */
		B("color_squashing_layer.channel_weights", 1, 2),
	};
	expect_tensors(m, f, (int)(sizeof f / sizeof f[0]));
	fv_tensor *cw = T(m, "color_squashing_layer.channel_weights");
	cr_assert_float_eq(cw->data[0], 0.25, 1e-7);
	cr_assert_float_eq(cw->data[1], 0.75, 1e-7);
	fv_module_free(m);
}

static void expect_all(const fv_tensor *t, double v, const char *what)
{
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert_eq(t->data[i], (fv_real)v, "%s[%lld] = %g, want %g", what, (long long)i,
		             (double)t->data[i], v);
}

Test(cores, initial_values_are_openretinas)
{
	fv_module *m = build_core(CORE("custom_separable", "[2, 3]", "[6]", "[5]") GAMMAS0);
	expect_all(T(m, "features.layer0.norm.weight"), 1, "norm.weight");
	expect_all(T(m, "features.layer0.norm.bias"), 0, "norm.bias");
	expect_all(T(m, "features.layer0.norm.running_mean"), 0, "running_mean");
	expect_all(T(m, "features.layer0.norm.running_var"), 1, "running_var");
	expect_all(T(m, "features.layer0.norm.num_batches_tracked"), 0, "num_batches_tracked");
	expect_all(T(m, "features.layer0.bias.bias"), 0, "bias.bias");
	expect_all(T(m, "features.layer0.conv._log_speed_default"), 0, "_log_speed_default");
	/* randn * 0.01: small, not all equal */
	const char *scaled[] = {"features.layer0.conv.sin_weights",
	                        "features.layer0.conv.cos_weights",
	                        "features.layer0.conv.weight_spatial"};
	for (int k = 0; k < 3; k++) {
		fv_tensor *t = T(m, scaled[k]);
		double ss = 0;
		for (int64_t i = 0; i < t->numel; i++)
			ss += (double)t->data[i] * t->data[i];
		double rms = sqrt(ss / (double)t->numel);
		cr_assert(rms > 0.003 && rms < 0.03, "%s: rms %g is not ~0.01", scaled[k], rms);
	}
	fv_module_free(m);

	/* torch's Conv3d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
	m = build_core(CORE("full", "[2, 3]", "[4]", "[3]") GAMMAS0);
	fv_tensor *w = T(m, "features.layer0.conv.conv.weight");
	double bound = 1 / sqrt(2.0 * 4 * 3 * 3), maxabs = 0;
	for (int64_t i = 0; i < w->numel; i++)
		maxabs = fmax(maxabs, fabs(w->data[i]));
	cr_assert(maxabs <= bound && maxabs > 0.5 * bound, "max |w| %g vs bound %g", maxabs, bound);
	fv_module_free(m);
}

/* ---- forward against the naive reference ------------------------------------------ */

Test(cores, custom_separable_hand_computed)
{
	/* One channel, 1x1 spatial kernel of weight 1, T = 3: K = 1, only the
	** k = 0 cosine, which is the mask 1/(1 + exp(-time - 2)) at time
	** -3, -2, -1: 1/(1+e), 1/2, 1/(1+1/e), summing to 1.5. */
	fv_module *m = build_core(CORE("custom_separable", "[1, 1]", "[3]", "[1]")
	                          "cut_first_n_frames: 0\n" GAMMAS0);
	fv_module_set_training(m, false);
	fv_tensor_fill(T(m, "features.layer0.conv.cos_weights"), 1);
	fv_tensor_fill(T(m, "features.layer0.conv.sin_weights"), 123); /* sin(0) = 0 */
	fv_tensor_fill(T(m, "features.layer0.conv.weight_spatial"), 1);
	const int64_t shape[5] = {1, 1, 4, 1, 1};
	fv_tensor *x = fv_tensor_new(5, shape);
	fv_tensor_fill(x, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x);
	cr_assert_eq(y->numel, 2);
	double want = 1.5 / sqrt(1 + 1e-5);
	cr_assert_float_eq(y->data[0], want, 1e-6);
	cr_assert_float_eq(y->data[1], want, 1e-6);
	pt_release(m, x, ctx);
}

Test(cores, custom_separable_matches_naive)
{
	/* 'same' padding with an even spatial kernel (asymmetric), a cut, and
	** nonzero log speeds. */
	fv_module *m = eval_core(CORE("custom_separable", "[2, 3, 4]", "[7, 3]", "[3, 4]")
	                         "cut_first_n_frames: 2\ninput_padding: same\n"
	                         "hidden_padding: true\n" GAMMAS0,
	                         11, 2, 100);
	T(m, "features.layer0.conv._log_speed_default")->data[0] = 0.3f;
	T(m, "features.layer1.conv._log_speed_default")->data[0] = -0.2f;
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 9, 6, 5}, 5, -1, 1);

	arr r = arr_from(x);
	const int k0[3] = {7, 3, 3}, p0[3][2] = {{3, 3}, {1, 1}, {1, 1}};
	const int k1[3] = {3, 4, 4}, p1[3][2] = {{1, 1}, {1, 2}, {1, 2}};
	double *w0 = custom_separable_weight(m, 0, 7), *w1 = custom_separable_weight(m, 1, 3);
	r = naive_conv(r, w0, 3, k0, p0);
	naive_layer_tail_eval(m, 0, r);
	r = naive_conv(r, w1, 4, k1, p1);
	naive_layer_tail_eval(m, 1, r);
	r = naive_cut(r, 2);
	free(w0);
	free(w1);
	expect_forward_matches(m, x, r);
}

Test(cores, separable_matches_naive)
{
	/* Both convs of a layer get the padding: [0, 1, 1] grows layer 1's map
	** by 2 pixels, and the output is scaled by exp(_log_speed_default). */
	fv_module *m = eval_core(CORE("separable", "[2, 3, 2]", "[4, 2]", "[3, 3]")
	                         "cut_first_n_frames: 0\ninput_padding: 1\n"
	                         "hidden_padding: [0, 1, 1]\n" GAMMAS0,
	                         21, 2, 200);
	T(m, "features.layer1.conv._log_speed_default")->data[0] = 0.4f;
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 7, 5, 6}, 6, -1, 1);

	arr r = arr_from(x);
	const int ks[3] = {1, 3, 3}, kt0[3] = {4, 1, 1}, kt1[3] = {2, 1, 1};
	const int pad1[3][2] = {{1, 1}, {1, 1}, {1, 1}}, pad011[3][2] = {{0, 0}, {1, 1}, {1, 1}};
	double *ws0 = weight_of(T(m, "features.layer0.conv.space_conv.weight"));
	double *wt0 = weight_of(T(m, "features.layer0.conv.time_conv.weight"));
	double *ws1 = weight_of(T(m, "features.layer1.conv.space_conv.weight"));
	double *wt1 = weight_of(T(m, "features.layer1.conv.time_conv.weight"));
	r = naive_conv(r, ws0, 3, ks, pad1);
	r = naive_conv(r, wt0, 3, kt0, pad1);
	naive_layer_tail_eval(m, 0, r);
	r = naive_conv(r, ws1, 2, ks, pad011);
	r = naive_conv(r, wt1, 2, kt1, pad011);
	for (int64_t i = 0; i < arr_numel(&r); i++)
		r.v[i] *= exp((double)0.4f);
	naive_layer_tail_eval(m, 1, r);
	free(ws0);
	free(wt0);
	free(ws1);
	free(wt1);
	/* time: 7+2-1+1 = 9, then 9+2-4+1 = 8; layer 1: 8-2+1 = 7.
	** space: 5 -> 5+2-3+1 = 5 -> 5+2 = 7 -> 7+2-3+1 = 7 -> 9.  (The
	** forward's shape is checked against the reference's.) */
	cr_assert_eq(r.s[2], 7);
	cr_assert_eq(r.s[3], 9);
	expect_forward_matches(m, x, r);
}

Test(cores, full_with_extras_matches_naive)
{
	/* Colour squashing, input downsampling, max-pool after layer 0,
	** dropout (identity in eval), integer hidden padding. */
	fv_module *m = eval_core(CORE("full", "[1, 3, 2]", "[3, 2]", "[3, 2]")
	                         "cut_first_n_frames: 1\ninput_padding: [1, 1, 1]\n"
	                         "hidden_padding: 1\ncolor_squashing_weights: [0.3, 0.7]\n"
	                         "downsample_input_kernel_size: [1, 2, 2]\n"
	                         "maxpool_every_n_layers: 2\ndropout_rate: 0.5\n" GAMMAS0,
	                         31, 2, 300);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 6, 12, 10}, 7, -1, 1);

	arr in = arr_from(x);
	arr r = arr_new(2, 1, 6, 12, 10);
	for (int64_t n = 0; n < 2; n++)
		for (int64_t t = 0; t < 6; t++)
			for (int64_t h = 0; h < 12; h++)
				for (int64_t w = 0; w < 10; w++)
					AT(r, n, 0, t, h, w) = 0.3 * AT(in, n, 0, t, h, w) +
					                       0.7 * AT(in, n, 1, t, h, w);
	free(in.v);
	const int down[3] = {1, 2, 2};
	r = naive_avgpool(r, down);
	const int k0[3] = {3, 3, 3}, k1[3] = {2, 2, 2}, pad[3][2] = {{1, 1}, {1, 1}, {1, 1}};
	double *w0 = weight_of(T(m, "features.layer0.conv.conv.weight"));
	double *w1 = weight_of(T(m, "features.layer1.conv.conv.weight"));
	r = naive_conv(r, w0, 3, k0, pad);
	naive_layer_tail_eval(m, 0, r);
	r = naive_maxpool122(r);
	r = naive_conv(r, w1, 2, k1, pad);
	naive_layer_tail_eval(m, 1, r);
	r = naive_cut(r, 1);
	free(w0);
	free(w1);
	expect_forward_matches(m, x, r);
}

Test(cores, train_mode_uses_batch_statistics_and_updates_buffers)
{
	fv_module *m = build_core(CORE("full", "[2, 3]", "[2]", "[3]") "cut_first_n_frames: 0\n"
	                          GAMMAS0);
	fv_module_set_training(m, true);
	fill_params(m, 41, -0.5, 0.5);
	set_running_stats(m, 1, 400);
	double old_mean[3], old_var[3];
	for (int c = 0; c < 3; c++) {
		old_mean[c] = T(m, "features.layer0.norm.running_mean")->data[c];
		old_var[c] = T(m, "features.layer0.norm.running_var")->data[c];
	}
	fv_tensor *x = pt_input(5, (int64_t[]){3, 2, 5, 6, 6}, 8, -1, 1);

	double *w = weight_of(T(m, "features.layer0.conv.conv.weight"));
	const int k[3] = {2, 3, 3}, pad[3][2] = {{0, 0}, {0, 0}, {0, 0}};
	arr r = naive_conv(arr_from(x), w, 3, k, pad);
	free(w);
	double mean[3], var_b[3], var_u[3];
	batch_stats(r, mean, var_b, var_u);
	naive_bn_bias_elu(r, mean, var_b, T(m, "features.layer0.norm.weight"),
	                  T(m, "features.layer0.norm.bias"), T(m, "features.layer0.bias.bias"));

	fv_ctx *ctx = fv_ctx_new();
	expect_close(forward(m, ctx, x), r, 1e-5, 1e-4);
	for (int c = 0; c < 3; c++) {
		cr_assert_float_eq(T(m, "features.layer0.norm.running_mean")->data[c],
		                   0.9 * old_mean[c] + 0.1 * mean[c], 1e-5);
		cr_assert_float_eq(T(m, "features.layer0.norm.running_var")->data[c],
		                   0.9 * old_var[c] + 0.1 * var_u[c], 1e-5);
	}
	cr_assert_eq(T(m, "features.layer0.norm.num_batches_tracked")->data[0], 1);
	pt_release(m, x, ctx);
}

/* ---- shapes ---------------------------------------------------------------------- */

static void expect_output_shape(const char *yaml, const int64_t in[5])
{
	fv_module *m = build_core(yaml);
	fv_module_set_training(m, false);
	int out_ndim = 0;
	int64_t out[FV_MAX_DIMS];
	cr_assert_eq(fv_module_output_shape(m, 4, in + 1, &out_ndim, out), FV_OK, "%s", fv_errmsg());
	fv_tensor *x = fv_tensor_new(5, in);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = forward(m, ctx, x);
	cr_assert_eq(out_ndim, 4);
	for (int d = 0; d < 4; d++)
		cr_assert_eq(out[d], y->shape[d + 1], "dim %d: output_shape %lld, forward %lld", d,
		             (long long)out[d], (long long)y->shape[d + 1]);
	pt_release(m, x, ctx);
}

Test(cores, output_shape_matches_forward)
{
	const int64_t a[5] = {1, 2, 20, 14, 12};
	expect_output_shape(CORE("custom_separable", "[2, 3, 4]", "[6, 4]", "[7, 5]")
	                    "hidden_padding: [0, 2, 2]\ncut_first_n_frames: 0\n" GAMMAS0,
	                    a);
	const int64_t b[5] = {1, 3, 13, 17, 11};
	expect_output_shape(CORE("custom_separable", "[1, 2, 2, 3]", "[3, 4, 3]", "[2, 3, 4]")
	                    "input_padding: same\nhidden_padding: true\n"
	                    "cut_first_n_frames: -4\ncolor_squashing_weights: [0.2, 0.3, 0.5]\n"
	                    "downsample_input_kernel_size: [1, 2, 1]\n"
	                    "maxpool_every_n_layers: 1\n" GAMMAS0,
	                    b);
	const int64_t c[5] = {2, 2, 9, 8, 7};
	expect_output_shape(CORE("separable", "[2, 2, 2]", "[3, 2]", "[3, 2]")
	                    "input_padding: 2\nhidden_padding: same\ncut_first_n_frames: 3\n"
	                    GAMMAS0,
	                    c);
}

/* ---- regularizer ------------------------------------------------------------------- */

static double sum_sq(const fv_tensor *t, int64_t from, int64_t n)
{
	double s = 0;
	for (int64_t i = from; i < from + n; i++)
		s += (double)t->data[i] * t->data[i];
	return s;
}

/* FlatLaplaceL23dnorm(padding 0): Σ (L*w)² / (Σ w² + 1e-6), L the 3x3
** Laplace [[0,-1,0],[-1,4,-1],[0,-1,0]] applied to every (o, i) slice. */
static double naive_flat_laplace(const fv_tensor *w)
{
	int slices = (int)(w->shape[0] * w->shape[1]);
	double num = pt_filter_sq_sum(w->data, slices, (int)w->shape[3], (int)w->shape[4],
	                              pt_laplace3(), 3, 0, NULL);
	return num / (sum_sq(w, 0, w->numel) + 1e-6);
}

static double naive_group_sparsity(const fv_tensor *w)
{
	int64_t O = w->shape[0], I = w->shape[1], hw = w->shape[3] * w->shape[4];
	double total = 0;
	for (int64_t o = 0; o < O; o++) {
		double num = 0;
		for (int64_t i = 0; i < I; i++)
			num += sqrt(sum_sq(w, (o * I + i) * hw, hw));
		total += num / sqrt(1e-8 + sum_sq(w, o * I * hw, I * hw));
	}
	return total;
}

static double naive_temporal_smoothing(const fv_tensor *s, const fv_tensor *c)
{
	int64_t K = s->shape[2];
	double total = 0;
	for (int64_t i = 0; i < s->numel; i++) {
		int64_t k = i % K;
		double lin = K > 1 ? 0.1 + 0.8 * (double)k / (double)(K - 1) : 0.1;
		total += pow(lin * s->data[i], 2) + pow(lin * c->data[i], 2);
	}
	return total / (double)s->shape[0];
}

static double regularizer_value(fv_module *m)
{
	fv_ctx *ctx = fv_ctx_new();
	double v = pt_regularizer(m, ctx, NULL, FV_REDUCE_DEFAULT);
	fv_ctx_free(ctx);
	return v;
}

Test(cores, custom_separable_regularizer_matches_naive)
{
	fv_module *m = build_core(CORE("custom_separable", "[2, 3, 4, 2]", "[9, 6, 3]", "[5, 3, 4]")
	                          GAMMAS("0.5", "2.0", "0.2", "0.3"));
	fill_params(m, 51, -1, 1);
	char s[128], c[128], w[128];
	double laplace = naive_flat_laplace(T(m, "features.layer0.conv.weight_spatial"));
	double hidden = 0, all = 0, smooth = 0;
	for (int i = 0; i < 3; i++) {
		snprintf(s, sizeof s, "features.layer%d.conv.sin_weights", i);
		snprintf(c, sizeof c, "features.layer%d.conv.cos_weights", i);
		snprintf(w, sizeof w, "features.layer%d.conv.weight_spatial", i);
		double g = naive_group_sparsity(T(m, w));
		all += g;
		hidden += i > 0 ? g : 0;
		smooth += naive_temporal_smoothing(T(m, s), T(m, c));
	}
	double want = 0.5 * laplace + 0.3 * hidden + 2.0 * smooth + 0.2 * all;
	double got = regularizer_value(m);
	cr_assert(fabs(got - want) <= 1e-5 * fabs(want), "regularizer %.9g, want %.9g", got, want);
	fv_module_free(m);
}

Test(cores, separable_temporal_laplace_and_zero_gammas)
{
	fv_module *m = build_core(CORE("separable", "[2, 3, 2]", "[5, 3]", "[3, 3]")
	                          GAMMAS("0", "1.25", "0", "0"));
	fill_params(m, 61, -1, 1);
	/* TimeLaplaceL23dnorm(padding 0) on layer 0's time_conv.weight (3, 3, 5, 1, 1):
	** Σ (-w[t-1] + 2 w[t] - w[t+1])² / (Σ w² + 1e-6) over the 9 kernels. */
	fv_tensor *wt = T(m, "features.layer0.conv.time_conv.weight");
	double num = 0;
	for (int64_t k = 0; k < 9; k++)
		for (int t = 1; t < 4; t++) {
			const fv_real *p = wt->data + k * 5;
			double v = -p[t - 1] + 2 * p[t] - p[t + 1];
			num += v * v;
		}
	double want = 1.25 * num / (sum_sq(wt, 0, wt->numel) + 1e-6);
	double got = regularizer_value(m);
	cr_assert(fabs(got - want) <= 1e-5 * fabs(want), "regularizer %.9g, want %.9g", got, want);
	fv_module_free(m);

	m = build_core(CORE("full", "[2, 3]", "[2]", "[3]") GAMMAS0);
	cr_assert_eq(regularizer_value(m), 0);
	fv_module_free(m);
}

/* ---- time_independent ----------------------------------------------------------------- */

/* TimeIndependentConv3D: conv.conv.weight (O, I, 1, k, k), no log speed;
** the temporal kernel sizes are ignored. */
Test(cores, time_independent_state_dict_names)
{
	fv_module *m = build_core(CORE("time_independent", "[2, 3, 4]", "[9, 30]", "[5, 3]")
	                          GAMMAS("0.5", "0", "0.2", "0.3"));
	expect_entry e[] = {
		B("_input_weights_regularizer_spatial.laplace.filter", 4, 1, 1, 3, 3),
		P("features.layer0.conv.conv.weight", 5, 3, 2, 1, 5, 5),
		NORM_AND_BIAS(0, 3),
		P("features.layer1.conv.conv.weight", 5, 4, 3, 1, 3, 3),
		NORM_AND_BIAS(1, 4),
	};
	expect_tensors(m, e, (int)(sizeof e / sizeof e[0]));
	fv_module_free(m);
}

/* 'same' keeps every axis; an integer padding pads time too (torch's
** Conv3d padding=p with a (1, k, k) kernel): T grows by 2p. */
Test(cores, time_independent_matches_naive)
{
	fv_module *m = eval_core(CORE("time_independent", "[2, 3, 2]", "[7, 9]", "[3, 2]")
	                         "cut_first_n_frames: 1\ninput_padding: true\n"
	                         "hidden_padding: 1\n" GAMMAS0,
	                         81, 2, 800);
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 4, 6, 5}, 8, -1, 1);
	const int k0[3] = {1, 3, 3}, k1[3] = {1, 2, 2};
	const int same[3][2] = {{0, 0}, {1, 1}, {1, 1}}, one[3][2] = {{1, 1}, {1, 1}, {1, 1}};
	double *w0 = weight_of(T(m, "features.layer0.conv.conv.weight"));
	double *w1 = weight_of(T(m, "features.layer1.conv.conv.weight"));
	arr r = naive_conv(arr_from(x), w0, 3, k0, same);
	naive_layer_tail_eval(m, 0, r);
	r = naive_conv(r, w1, 2, k1, one);
	naive_layer_tail_eval(m, 1, r);
	r = naive_cut(r, 1);
	free(w0);
	free(w1);
	/* time 4 -> 4 -> 6 -> cut 5; space 6x5 -> 6x5 -> 7x6 */
	cr_assert_eq(r.s[2], 5);
	cr_assert_eq(r.s[3], 7);
	expect_output_shape(CORE("time_independent", "[2, 3, 2]", "[7, 9]", "[3, 2]")
	                    "cut_first_n_frames: 1\ninput_padding: true\nhidden_padding: 1\n"
	                    GAMMAS0, (int64_t[]){2, 2, 4, 6, 5});
	expect_forward_matches(m, x, r);
}

/* openretina's weight_spatial of a TimeIndependentConv3D is conv.weight.data:
** the regularizer has its value and no gradient. */
Test(cores, time_independent_regularizer_is_detached)
{
	fv_module *m = build_core(CORE("time_independent", "[2, 3, 2]", "[1, 1]", "[5, 3]")
	                          GAMMAS("0.5", "0", "0.2", "0.3"));
	fill_params(m, 91, -1, 1);
	fv_tensor *w0 = T(m, "features.layer0.conv.conv.weight");
	fv_tensor *w1 = T(m, "features.layer1.conv.conv.weight");
	double g0 = naive_group_sparsity(w0), g1 = naive_group_sparsity(w1);
	double want = 0.5 * naive_flat_laplace(w0) + 0.3 * g1 + 0.2 * (g0 + g1);
	fv_ctx *ctx = fv_ctx_new();
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
	cr_assert_not_null(r, "%s", fv_errmsg());
	cr_assert(fabs(r->data[0] - want) <= 1e-5 * fabs(want), "regularizer %.9g, want %.9g",
	          (double)r->data[0], want);
	cr_assert_neq(fv_backward(ctx, r), FV_OK, "the regularizer has a gradient");
	pt_expect_msg("does not require grad");
	cr_assert_null(w0->grad);
	pt_release(m, NULL, ctx);
	pt_expect_build_error(reg, CORE("time_independent", "[2, 3]", "[1]", "[3]")
	                      GAMMAS("0", "0.5", "0", "0"),
	                      "temporal smoothness is not supported for convolution_type "
	                      "time_independent");
}

/* ---- gradients ------------------------------------------------------------------------ */

typedef struct core_fn {
	fv_module *m;
	bool regularizer; /* check the regularizer instead of the forward */
} core_fn;

static fv_tensor *run_core(fv_ctx *ctx, fv_tensor *const *inputs, void *ud)
{
	core_fn *f = ud;
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	if (f->regularizer)
		return fv_module_regularizer(f->m, ctx, &fa);
	return fv_module_forward(f->m, ctx, inputs[0], &fa);
}

typedef struct param_list {
	fv_tensor *t[64];
	int n;
} param_list;

static int collect_param(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	param_list *l = ud;
	if (is_param && l->n < 64)
		l->t[l->n++] = t;
	return 0;
}

static void gradcheck_core(const char *yaml, bool training, bool check_regularizer,
                           const int64_t shape[5])
{
	fv_module *m = build_core(yaml);
	fv_module_set_training(m, training);
	/* Positive weights: a BatchNorm'd channel whose inputs nearly cancel
	** is so curved that float32 central differences with h = 1e-2 are off
	** by a third (they converge to the analytic value as h shrinks). */
	fill_params(m, 71, 0.1, 0.7);
	if (!training)
		set_running_stats(m, 2, 700);
	param_list l = {.n = 1};
	l.t[0] = gc_input(5, shape, 9, -1, 1);
	fv_module_foreach_tensor(m, collect_param, &l);
	for (int i = 1; i < l.n; i++)
		l.t[i]->requires_grad = true;
	core_fn f = {m, false};
	gradcheck("core forward", run_core, l.n, l.t, &f);
	if (check_regularizer) {
		f.regularizer = true;
		l.t[0]->requires_grad = false;
		gradcheck("core regularizer", run_core, l.n, l.t, &f);
	}
	fv_tensor_free(l.t[0]);
	fv_module_free(m);
}

Test(cores, custom_separable_gradients, .timeout = 120)
{
	const int64_t shape[5] = {2, 2, 8, 6, 6};
	gradcheck_core(CORE("custom_separable", "[2, 3, 2]", "[4, 3]", "[3, 2]")
	               "cut_first_n_frames: 1\ninput_padding: false\nhidden_padding: true\n"
	               GAMMAS("0.5", "2.0", "0.2", "0.3"),
	               true, true, shape);
}

Test(cores, separable_gradients_eval, .timeout = 120)
{
	const int64_t shape[5] = {2, 2, 7, 5, 5};
	gradcheck_core(CORE("separable", "[2, 2, 3]", "[3, 2]", "[3, 3]")
	               "cut_first_n_frames: 0\ninput_padding: [1, 0, 0]\n"
	               "hidden_padding: [0, 1, 1]\n" GAMMAS("0", "1.5", "0", "0"),
	               false, true, shape);
}

Test(cores, full_gradients_with_colour_and_downsampling, .timeout = 120)
{
	const int64_t shape[5] = {2, 3, 6, 8, 6};
	gradcheck_core(CORE("full", "[1, 2, 2]", "[2, 2]", "[2, 2]")
	               "cut_first_n_frames: 0\ncolor_squashing_weights: [0.2, 0.5, 0.3]\n"
	               "downsample_input_kernel_size: [1, 2, 2]\n" GAMMAS0,
	               true, false, shape);
}

/* ---- errors ------------------------------------------------------------------------------ */


#define ONE_LAYER(type) CORE(type, "[2, 3]", "[3]", "[3]")

/* The first layer as one dense kernel (fv_module_first_layer_filters, for
** the figures): convolving with it is what the layer computes, whatever
** the flavour, the log speed included. */
Test(cores, first_layer_filters_are_the_layers_kernel)
{
	static const char *const types[] = {"custom_separable", "separable", "full"};
	for (int k = 0; k < 3; k++) {
		/* (time_independent's kernel is its weight: see the tests above) */
		char yaml[512];
		snprintf(yaml, sizeof yaml,
		         CORE("%s", "[2, 3]", "[6]", "[3]") "cut_first_n_frames: 0\n"
		                                            "input_padding: false\n" GAMMAS0,
		         types[k]);
		fv_module *m = eval_core(yaml, 40 + (uint64_t)k, 1, 400 + (uint64_t)k);
		T(m, "features.layer0.conv._log_speed_default")->data[0] = 0.25f;
		fv_tensor *kernel = NULL;
		cr_assert_eq(fv_module_first_layer_filters(m, &kernel), FV_OK, "%s", fv_errmsg());
		pt_expect_shape(kernel, 5, (int64_t[]){3, 2, 6, 3, 3}, types[k]);
		if (k == 0) { /* and it is the formula's */
			double *want = custom_separable_weight(m, 0, 6);
			for (int64_t i = 0; i < kernel->numel; i++)
				cr_assert_float_eq(kernel->data[i], want[i], 1e-6, "%s [%lld]", types[k],
				                   (long long)i);
			free(want);
		}
		fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 8, 5, 5}, 9, -1, 1);
		double *w = weight_of(kernel);
		const int ks[3] = {6, 3, 3}, valid[3][2] = {{0, 0}, {0, 0}, {0, 0}};
		arr r = naive_conv(arr_from(x), w, 3, ks, valid);
		naive_layer_tail_eval(m, 0, r);
		free(w);
		fv_tensor_free(kernel);
		expect_forward_matches(m, x, r);
	}
	fv_module *dummy = build_core("_target_: DummyCore\n");
	fv_tensor *none = NULL;
	cr_assert_eq(fv_module_first_layer_filters(dummy, &none), FV_ERR_NOTFOUND);
	cr_assert_null(none);
	pt_expect_msg("core 'DummyCore' (");
	pt_expect_msg(") has no first_layer_filters");
	fv_module_free(dummy);
}

Test(cores, bad_configurations_are_refused)
{
	const pt_bad_spec bad[] = {
		{CORE("custom_separable", "[2]", "[]", "[]") GAMMAS0, "at least two channels"},
		{CORE("custom_separable", "[2, 3, 4]", "[3]", "[3, 3]") GAMMAS0,
		 "temporal_kernel_sizes: 2 layers need 2"},
		{CORE("custom_separable", "[2, 3]", "[3]", "[3, 3]") GAMMAS0,
		 "spatial_kernel_sizes: 1 layers need 1"},
		{ONE_LAYER("custom_separable") "color_squashing_weights: [0.5, 0.5]\n" GAMMAS0,
		 "channels[0] must be 1"},
		{CORE("custom_separable", "[2, 3]", "[2]", "[3]") GAMMAS0, "temporal_kernel_sizes[0] = 2"},
		{ONE_LAYER("custom_separable") "input_padding: middle\n" GAMMAS0,
		 "spec.yaml:6:1: SimpleCoreWrapper: input_padding: expected true, false, 'same'"},
		{CORE("custom_separable", "[2, 3, 3]", "[3, 3]", "[3, 3]") "hidden_padding: [1, 2]\n"
		 GAMMAS0, "hidden_padding: expected"},
		{ONE_LAYER("custom_separable") "input_padding: -1\n" GAMMAS0, "got -1"},
		{ONE_LAYER("full") GAMMAS("0", "1", "0", "0"),
		 "temporal smoothness is not supported for convolution_type full"},
		{ONE_LAYER("separable") GAMMAS("1", "0", "0", "0"),
		 "gamma_input = 1 needs the spatial weights"},
		{CORE("separable", "[2, 3, 3]", "[3, 3]", "[3, 3]") GAMMAS("0", "0", "0", "2"),
		 "gamma_hidden = 2 needs the spatial weights"},
		{ONE_LAYER("full") GAMMAS("0", "0", "3", "0"),
		 "gamma_in_sparse = 3 needs the spatial weights"},
		{ONE_LAYER("custom_separable") "downsample_input_kernel_size: [1, 2]\n" GAMMAS0,
		 "downsample_input_kernel_size: expected one integer or [t, h, w]"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
}

/* output_shape() refuses the input shape `in` (ndim sizes), saying `needle`. */
static void expect_output_shape_error(fv_module *m, int ndim, const int64_t *in,
                                      const char *needle)
{
	int nd;
	int64_t out[FV_MAX_DIMS];
	cr_assert_eq(fv_module_output_shape(m, ndim, in, &nd, out), FV_ERR_SHAPE);
	pt_expect_msg(needle);
}

Test(cores, bad_inputs_are_refused)
{
	fv_module *m = build_core(CORE("custom_separable", "[2, 3]", "[4]", "[5]")
	                          "cut_first_n_frames: 0\n" GAMMAS0);
	pt_expect_forward_error(m, NULL, 4, (int64_t[]){2, 8, 9, 9},
	                        "expected an input (N, C, T, H, W), got (2, 8, 9, 9)");
	pt_expect_forward_error(m, NULL, 5, (int64_t[]){1, 3, 8, 9, 9},
	                        "the input has 3 channels; channels[0] is 2");
	const int64_t small[4] = {2, 3, 9, 9};
	expect_output_shape_error(m, 4, small, "layer 0: the input is too small in time: 3");
	expect_output_shape_error(m, 3, small, "output_shape needs an input shape (C, T, H, W)");
	fv_module_free(m);
}

Test(cores, shape_errors_name_the_layer_and_input)
{
	fv_module *m = build_core(CORE("custom_separable", "[1, 2, 2]", "[3, 3]", "[3, 3]")
	                          "cut_first_n_frames: 0\nmaxpool_every_n_layers: 1\n"
	                          "downsample_input_kernel_size: 2\nhidden_padding: 0\n"
	                          "color_squashing_weights: [0.5, 0.5]\n" GAMMAS0);
	expect_output_shape_error(m, 4, (int64_t[]){2, 8, 1, 9},
	                          "the input (2, 8, 1, 9) is smaller than "
	                          "downsample_input_kernel_size");
	/* 14 -> 7 (downsample) -> 5 (conv) -> 2 (pool) -> 0: layer 1's conv */
	expect_output_shape_error(m, 4, (int64_t[]){2, 12, 14, 40},
	                          "layer 1: the input is too small in height: 2");
	int nd;
	int64_t out[FV_MAX_DIMS];
	const int64_t odd[4] = {1, 12, 20, 20};
	cr_assert_eq(fv_module_output_shape(m, 4, odd, &nd, out), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(out[2], 1); /* 20 -> 10 -> 8 -> 4 -> 2 -> 1 */
	/* 16 -> 8 -> 6 -> 3 (pool) -> 1 (conv): nothing left to pool */
	expect_output_shape_error(m, 4, (int64_t[]){1, 12, 16, 16},
	                          "layer 1: a 1 x 1 map is too small for MaxPool3d((1, 2, 2))");
	pt_expect_forward_error(m, NULL, 5, (int64_t[]){1, 3, 12, 20, 20},
	                        "SimpleCoreWrapper: the input has 3 channels but "
	                        "color_squashing_weights has 2 weights");
	/* a grey input passes the colour sum untouched */
	const int64_t grey[5] = {1, 1, 12, 20, 20};
	fv_tensor *x = fv_tensor_new(5, grey);
	fv_ctx *ctx = fv_ctx_new();
	fv_module_set_training(m, false);
	forward(m, ctx, x);
	fv_tensor_free(x);
	fv_ctx_free(ctx);
	fv_module_free(m);
}

/* ---- DummyCore --------------------------------------------------------------------------- */

Test(cores, dummy_core_cuts_frames)
{
	const char *yamls[] = {("_target_: openretina.modules.core.base_core.DummyCore\n"
	                        "cut_first_n_frames: 3\n"),
	                       "_target_: DummyCore\n", "_target_: DummyCore\ncut_first_n_frames: -2\n"};
	const int64_t expect_t[] = {6, 9, 2}, first_t[] = {3, 0, 7};
	for (int k = 0; k < 3; k++) {
		fv_module *m = build_core(yamls[k]);
		const int64_t shape[5] = {2, 2, 9, 2, 3};
		fv_tensor *x = gc_input(5, shape, 3, -1, 1);
		fv_ctx *ctx = fv_ctx_new();
		fv_tensor *y = forward(m, ctx, x);
		cr_assert_eq(y->shape[2], expect_t[k]);
		/* y[n, c, t] = x[n, c, t + first] */
		for (int64_t i = 0; i < y->numel; i++) {
			int64_t w = i % 6, t = (i / 6) % expect_t[k], nc = i / (6 * expect_t[k]);
			cr_assert_eq(y->data[i], x->data[(nc * 9 + t + first_t[k]) * 6 + w]);
		}
		int nd;
		int64_t out[FV_MAX_DIMS];
		cr_assert_eq(fv_module_output_shape(m, 4, shape + 1, &nd, out), FV_OK);
		cr_assert_eq(out[1], expect_t[k]);
		fv_forward_args fa = FV_FORWARD_ARGS_INIT;
		fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
		cr_assert_not_null(r);
		cr_assert_eq(r->data[0], 0);

		/* the gradient is the upstream on the kept frames, zero on the cut ones */
		fv_tensor *up = fv_tensor_new(y->ndim, y->shape);
		fv_tensor_fill(up, 2);
		fv_zero_grad(x);
		cr_assert_eq(fv_backward_with(ctx, y, up), FV_OK, "%s", fv_errmsg());
		for (int64_t i = 0; i < x->numel; i++) {
			int64_t t = (i / 6) % 9;
			bool kept = t >= first_t[k] && t < first_t[k] + expect_t[k];
			cr_assert_eq(x->grad->data[i], kept ? 2 : 0);
		}
		fv_tensor_free(up);
		fv_ctx_free(ctx);
		fv_tensor_free(x);
		fv_module_free(m);
	}
}

Test(cores, dummy_core_refuses_flat_input)
{
	fv_module *m = build_core("_target_: DummyCore\ncut_first_n_frames: 1\n");
	const int64_t flat[2] = {4, 5};
	pt_expect_forward_error(m, NULL, 2, flat,
	                        "DummyCore: forward: expected an input (N, C, T, ...), got (4, 5)");
	expect_output_shape_error(m, 1, flat, "output_shape needs an input shape (C, T, ...)");
	fv_module_free(m);
}

/* ---- UnifiedCoreReadout -------------------------------------------------------------------- */

#define MODEL_CORE                                                                  \
	"core:\n"                                                                   \
	"  _target_: openretina.modules.core.base_core.SimpleCoreWrapper\n"         \
	"  _convert_: object\n"                                                     \
	"  gamma_input: 0.3\n  gamma_hidden: 0.2\n  gamma_in_sparse: 0.1\n"         \
	"  gamma_temporal: 4.0\n  input_padding: 0\n  hidden_padding: [0, 2, 2]\n"  \
	"  temporal_kernel_sizes: [6, 4]\n  spatial_kernel_sizes: [7, 5]\n"         \
	"  cut_first_n_frames: 0\n  channels: ???\n"
#define MODEL_READOUT                                                               \
	"readout:\n"                                                                \
	"  _target_: openretina.modules.readout.multi_readout.MultiGaussianMaskReadout\n" \
	"  _convert_: object\n"                                                     \
	"  in_shape: ???\n  scale: true\n  bias: true\n  gaussian_mean_scale: 6.0\n" \
	"  gaussian_var_scale: 4.0\n  positive: true\n"

static const char model_yaml[] = "_target_: openretina.models.core_readout.UnifiedCoreReadout\n"
                                 "in_shape: [2, 20, 14, 12]\n"
                                 "n_neurons_dict: {session_1: 5, session_2: 4}\n"
                                 "hidden_channels: [3, 4]\n"
                                 "learning_rate: 0.01\n"
                                 "optimizer: {_target_: torch.optim.AdamW, lr: 0.01}\n"
                                 "lr_scheduler: null\n" MODEL_CORE MODEL_READOUT;

Test(cores, model_builds_core_then_readout_as_openretina)
{
	fv_module *m = build_core(model_yaml);
	/* channels = (in_shape[0], *hidden_channels) */
	cr_assert_eq(T(m, "core.features.layer0.conv.weight_spatial")->shape[1], 2);
	cr_assert_eq(T(m, "core.features.layer0.conv.weight_spatial")->shape[0], 3);
	cr_assert_eq(T(m, "core.features.layer1.conv.weight_spatial")->shape[0], 4);
	/* The core ran once on zeros in train mode: batch mean 0 and variance
	** 0, so running_var = 0.9*1 + 0.1*0 and one batch tracked. */
	for (int i = 0; i < 2; i++) {
		char name[128];
		snprintf(name, sizeof name, "core.features.layer%d.norm.running_var", i);
		for (int64_t c = 0; c < T(m, name)->numel; c++)
			cr_assert_float_eq(T(m, name)->data[c], 0.9, 1e-7);
		snprintf(name, sizeof name, "core.features.layer%d.norm.num_batches_tracked", i);
		cr_assert_eq(T(m, name)->data[0], 1);
	}
	/* The readout's in_shape is the core's output (4, 12, 8, 6):
	** time 20-6+1 = 15, 15-4+1 = 12; height 14-7+1 = 8, 8+4-5+1 = 8;
	** width 12-7+1 = 6, 6+4-5+1 = 6. */
	fv_tensor *grid = T(m, "readout.session_1.grid");
	cr_assert_eq(grid->shape[0], 5);
	cr_assert_eq(grid->shape[1], 8);
	cr_assert_eq(grid->shape[2], 6);
	cr_assert_eq(T(m, "readout.session_2.features")->shape[1], 4);
	cr_assert(fv_module_training(m), "a new model is in train mode, as a torch module");
	fv_module_free(m);
}

/* What figures ask a model, it asks its parts: the core's first filters, the
** readout's neuron positions per session. */
Test(cores, model_answers_figures_through_its_children)
{
	fv_module *m = build_core(model_yaml);
	fv_module *core = fv_module_child(m, "core"), *readout = fv_module_child(m, "readout");
	fv_tensor *from_model = NULL, *from_core = NULL;
	cr_assert_eq(fv_module_first_layer_filters(m, &from_model), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_module_first_layer_filters(core, &from_core), FV_OK, "%s", fv_errmsg());
	pt_expect_shape(from_model, 5, (int64_t[]){3, 2, 6, 7, 7}, "layer 0 as a dense kernel");
	for (int64_t i = 0; i < from_model->numel; i++)
		cr_assert_eq(from_model->data[i], from_core->data[i]);
	double a[8], b[8];
	int64_t hw_a[2], hw_b[2];
	cr_assert_eq(fv_module_neuron_positions(m, "session_2", 4, a, hw_a), FV_OK, "%s",
	             fv_errmsg());
	cr_assert_eq(fv_module_neuron_positions(readout, "session_2", 4, b, hw_b), FV_OK);
	cr_assert(hw_a[0] == 8 && hw_a[1] == 6 && hw_b[0] == 8 && hw_b[1] == 6,
	          "the readout's feature map");
	cr_assert_arr_eq(a, b, sizeof a);
	fv_tensor_free(from_model);
	fv_tensor_free(from_core);
	fv_module_free(m);
}

Test(cores, model_forward_and_regularizer_compose_the_children)
{
	fv_module *m = build_core(model_yaml);
	fv_module_set_training(m, false);
	fill_params(m, 81, 0.1, 0.6);
	fv_module *core = fv_module_child(m, "core"), *readout = fv_module_child(m, "readout");
	cr_assert_not_null(core);
	cr_assert_not_null(readout);
	const int64_t shape[5] = {2, 2, 20, 14, 12};
	fv_tensor *x = gc_input(5, shape, 12, -1, 1);
	x->requires_grad = false;
	fv_ctx *ctx = fv_ctx_new();
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = "session_2";
	fv_tensor *y = fv_module_forward(m, ctx, x, &fa);
	cr_assert_not_null(y, "%s", fv_errmsg());
	fv_tensor *want = fv_module_forward(readout, ctx, fv_module_forward(core, ctx, x, &fa), &fa);
	cr_assert_not_null(want, "%s", fv_errmsg());
	cr_assert(fv_same_shape(y, want));
	cr_assert_eq(y->shape[2], 4, "session_2 has 4 neurons");
	for (int64_t i = 0; i < y->numel; i++)
		cr_assert_eq(y->data[i], want->data[i]);

	fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
	fv_tensor *rc = fv_module_regularizer(core, ctx, &fa);
	fv_tensor *rr = fv_module_regularizer(readout, ctx, &fa);
	cr_assert(r && rc && rr, "%s", fv_errmsg());
	cr_assert_float_eq(r->data[0], rc->data[0] + rr->data[0], 1e-5 * fabs(r->data[0]));
	cr_assert(rc->data[0] > 0 && rr->data[0] > 0);
	pt_release(m, x, ctx);
}

#define GM_ARGS                                                                      \
	"scale: true, bias: true, gaussian_mean_scale: 6.0, gaussian_var_scale: 4.0,"  \
	" positive: false"

Test(cores, model_keeps_a_given_readout_in_shape)
{
	/* With in_shape in the readout spec the core is not run: BatchNorm keeps
	** its initial state, and the readout uses the given shape. */
	fv_module *m = build_core("_target_: UnifiedCoreReadout\n"
	                          "in_shape: [1, 40, 10, 10]\n"
	                          "n_neurons_dict: {a: 3}\n"
	                          "core: {_target_: DummyCore, cut_first_n_frames: 5}\n"
	                          "readout: {_target_: MultiGaussianMaskReadout,"
	                          " in_shape: [1, 35, 9, 7]," GM_ARGS "}\n");
	fv_tensor *grid = T(m, "readout.a.grid");
	cr_assert_eq(grid->shape[1], 9);
	cr_assert_eq(grid->shape[2], 7);
	fv_module_free(m);

	m = build_core("_target_: UnifiedCoreReadout\n"
	               "in_shape: [1, 40, 10, 10]\n"
	               "n_neurons_dict: {a: 3}\n"
	               "core: {_target_: DummyCore, cut_first_n_frames: 5}\n"
	               "readout: {_target_: MultiGaussianMaskReadout, " GM_ARGS "}\n");
	grid = T(m, "readout.a.grid");
	cr_assert_eq(grid->shape[1], 10);
	cr_assert_eq(grid->shape[2], 10);
	fv_module_free(m);
}

/* A UnifiedCoreReadout of `in_shape` and `sessions` with the core `core`
** and a MultiGaussianMaskReadout. */
#define MODEL(in_shape, sessions, core)                                                   \
	"_target_: UnifiedCoreReadout\nin_shape: " in_shape "\nn_neurons_dict: " sessions "\n" \
	"core: " core "\nreadout: {_target_: MultiGaussianMaskReadout, " GM_ARGS "}\n"

Test(cores, model_refuses_bad_specs)
{
	const pt_bad_spec bad[] = {
		{MODEL("[2, 20, 14]", "{a: 3}", "{_target_: DummyCore}"),
		 "in_shape: expected (channels, time, height, width), got 3 sizes"},
		{MODEL("[2, 20, 14, 12]", "[3]", "{_target_: DummyCore}"),
		 "spec.yaml:3:1: n_neurons_dict: expected a map {session: neurons}"},
		{MODEL("[2, 20, 14, 12]", "{a: 3}", "DummyCore"),
		 "spec.yaml:4:1: core: expected a map with a _target_"},
		/* the core's own spec is derived; its messages point into the model's */
		{MODEL("[2, 20, 14, 12]", "{a: 3}",
		       "{_target_: SimpleCoreWrapper, channels: [2, 3], temporal_kernel_sizes: [3],"
		       " spatial_kernel_sizes: [3], gamma_input: x, gamma_hidden: 0,"
		       " gamma_in_sparse: 0, gamma_temporal: 0}"),
		 "spec.yaml:4:110: core.gamma_input: expected a number (option 'gamma_input' of "
		 "SimpleCoreWrapper), got 'x'"},
		{MODEL("[2, 20, 14, 12]", "{a: 3}",
		       "{_target_: SimpleCoreWrapper, channels: [2, 3], temporal_kernel_sizes: [3],"
		       " spatial_kernel_sizes: [3]}"),
		 "spec.yaml:4:1: core: missing required option 'gamma_input' of SimpleCoreWrapper"},
		{MODEL("[2, 20, 14, 12]", "{a: 3}",
		       "{_target_: SimpleCoreWrapper, channels: [2, 3], temporal_kernel_sizes: [30],"
		       " spatial_kernel_sizes: [3], gamma_input: 0, gamma_hidden: 0,"
		       " gamma_in_sparse: 0, gamma_temporal: 0}"),
		 "running the core on zeros (1, 2, 20, 14, 12) to find the readout's in_shape"},
		{MODEL("[2, 20, 14, 12]", "{a: 3}", "{_target_: NoSuchCore}"),
		 "unknown component 'NoSuchCore'"},
	};
	PT_EXPECT_BUILD_ERRORS(reg, bad);
}

Test(cores, model_forward_errors_name_the_child)
{
	fv_module *m = build_core(model_yaml);
	pt_expect_forward_error(m, "session_1", 5, (int64_t[]){1, 3, 20, 14, 12},
	                        "UnifiedCoreReadout: core: SimpleCoreWrapper: the input has 3 "
	                        "channels; channels[0] is 2");
	fv_module_free(m);
}
