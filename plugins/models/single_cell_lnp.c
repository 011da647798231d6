/*
** single_cell_lnp.c: SingleCellSeparatedLNP, openretina's single-neuron
** linear-nonlinear-Poisson model with a rank-r space-time separable filter
** (openretina.models.linear_nonlinear.SingleCellSeparatedLNP).
**
**   x (B, C, T, kh, kw)                  a patch of the stimulus
**   -> space_conv: Conv3d C -> rank, kernel (1, kh, kw), no bias
**   -> time_conv:  Conv3d rank -> 1, kernel (in_shape[1], 1, 1), no bias
**   -> nonlinearity                      parametrized_softplus: w*softplus(x + b),
**                                        or a torch.nn.functional by name
**   -> y (B, T - in_shape[1] + 1, 1)
**
** The spatial kernel must cover the whole patch, so the output is one value
** per time step.  openretina's forward takes the patch as given; its
** training_step first crops the full stimulus around rf_location (y, x),
** or the frame's centre, to rows [y - min(kh//2, y), y + min(kh//2 + kh%2,
** H - y)) and the same for columns -- only when in_shape's frame differs
** from spat_kernel_size.  fovea does that crop when the caller sets
** fv_forward_args.crop_input, and keeps the patch as module state
** "x_cropped" for inspection.
**
** With normalize_weights, every forward first divides each kernel by its
** Frobenius norm in place, outside autograd, as openretina's
** normalize_kernels() under torch.no_grad().
**
** regularizer() (reduction is ignored: openretina's takes no argument):
**   smooth_weight_spat * spat_reg(space_conv.weight.squeeze(2))
**   + smooth_weight_temp * temp_reg(time_conv.weight)
**   + sparse_weight * (mean|space_conv.weight| + mean|time_conv.weight|)
** where spat_reg / temp_reg are the registered regularizers named by
** smooth_regularizer_spat / _temp, built as the children
** `_smooth_reg_fn_spat` / `_smooth_reg_fn_temp` (so their laplace.filter
** buffers carry openretina's state_dict names) and evaluated with sums.
*/
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/plugin.h>

#define WHO "SingleCellSeparatedLNP"

/* torch.nn.functional.softplus's defaults. */
#define SOFTPLUS_BETA 1.0
#define SOFTPLUS_THRESHOLD 20.0
/* torch.nn.functional.leaky_relu's default slope and selu's constants. */
#define LEAKY_SLOPE 0.01
#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

/* The options: the first member of the state, sc_lnp, parsed in place. */
typedef struct lnp_opts {
	fv_int_list in_shape;
	fv_int_list rf_location;
	fv_int_list spat_kernel_size;
	double learning_rate;
	int64_t rank;
	double smooth_weight_spat;
	double smooth_weight_temp;
	double sparse_weight;
	const char *smooth_regularizer_spat;
	const char *smooth_regularizer_temp;
	const char *smooth_regularizer;
	int64_t laplace_padding;
	const char *nonlinearity;
	bool normalize_weights;
	const fv_config_node *loss;
	const fv_config_node *evaluation_loss;
	bool fit_gaussian;
	const fv_config_node *n_neurons_dict;
	const fv_config_node *data_info;
} lnp_opts;

typedef enum nonlin {
	NL_PARAMETRIZED_SOFTPLUS,
	NL_SOFTPLUS,
	NL_RELU,
	NL_ELU,
	NL_SELU,
	NL_SIGMOID,
	NL_TANH,
	NL_SILU,
	NL_LEAKY_RELU,
	NL_LOGSIGMOID,
	NL_SOFTSIGN,
} nonlin;

/* In the order of NONLINEARITIES. */
static const char *const nonlin_names[] = {
	"parametrized_softplus", "softplus", "relu",     "elu",        "selu",     "sigmoid",
	"tanh",                  "silu",     "leaky_relu", "logsigmoid", "softsign",
};

/* The options first, parsed in place, then what create() builds. */
typedef struct sc_lnp {
	lnp_opts o;
	int64_t channels, frames;   /* in_shape[0], in_shape[1]: the time kernel's length */
	int64_t kernel[2];          /* spat_kernel_size */
	int64_t location[2];        /* rf_location (y, x), resolved */
	bool crop;                  /* in_shape's frame differs from the kernel */
	nonlin nonlin;
	fv_tensor *space_w;         /* space_conv.weight (rank, C, 1, kh, kw) */
	fv_tensor *time_w;          /* time_conv.weight (1, rank, T, 1, 1) */
	fv_tensor *softplus_b;      /* nonlinearity.b, parametrized_softplus only */
	fv_tensor *softplus_w;      /* nonlinearity.w */
	fv_module *spat_reg;        /* child _smooth_reg_fn_spat */
	fv_module *temp_reg;        /* child _smooth_reg_fn_temp */
} sc_lnp;

#define NONLINEARITIES \
	"parametrized_softplus|softplus|relu|elu|selu|sigmoid|tanh|silu|leaky_relu|logsigmoid|softsign"

static const fv_option lnp_options[] = {
	FV_OPT("in_shape", INT_LIST, sc_lnp, o.in_shape, NULL,
	       "stimulus shape (channels, time, height, width); time is the temporal kernel's length",
	       .min = 1, .max = 1e9, .flags = FV_OPT_REQUIRED),
	FV_OPT("rf_location", INT_LIST, sc_lnp, o.rf_location, "null",
	       "(y, x) pixel the crop is centred on; null: (height // 2, width // 2)", .min = 0,
	       .max = 1e9, .flags = FV_OPT_NULLABLE),
	FV_OPT("spat_kernel_size", INT_LIST, sc_lnp, o.spat_kernel_size, "[15, 15]",
	       "(height, width) of the spatial kernel and of the crop", .min = 1, .max = 1e9),
	FV_OPT("learning_rate", FLOAT, sc_lnp, o.learning_rate, "0.001",
	       "learning rate (used by the trainer)"),
	FV_OPT("rank", INT, sc_lnp, o.rank, "1", "number of spatial/temporal kernel pairs", .min = 1,
	       .max = 1e6),
	FV_OPT("smooth_weight_spat", FLOAT, sc_lnp, o.smooth_weight_spat, "0.0",
	       "weight of the spatial smoothness penalty", .min = 0, .max = 1e30),
	FV_OPT("smooth_weight_temp", FLOAT, sc_lnp, o.smooth_weight_temp, "0.0",
	       "weight of the temporal smoothness penalty", .min = 0, .max = 1e30),
	FV_OPT("sparse_weight", FLOAT, sc_lnp, o.sparse_weight, "0.0",
	       "weight of mean|space kernel| + mean|time kernel|", .min = 0, .max = 1e30),
	FV_OPT("smooth_regularizer_spat", STRING, sc_lnp, o.smooth_regularizer_spat, "LaplaceL2norm",
	       "regularizer of the spatial kernels (LaplaceL2norm, GaussianLaplaceL2, ...)"),
	FV_OPT("smooth_regularizer_temp", STRING, sc_lnp, o.smooth_regularizer_temp,
	       "TimeLaplaceL23dnorm", "regularizer of the temporal kernels"),
	FV_OPT("smooth_regularizer", STRING, sc_lnp, o.smooth_regularizer, "LaplaceL2norm",
	       "accepted and unused, as in openretina"),
	FV_OPT("laplace_padding", INT, sc_lnp, o.laplace_padding, "null",
	       "padding of both smoothness regularizers; null: their default", .min = 0, .max = 1e6,
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("nonlinearity", ENUM, sc_lnp, o.nonlinearity, "parametrized_softplus",
	       "output nonlinearity: w*softplus(x + b) with learnt w, b, or a torch.nn.functional",
	       .choices = NONLINEARITIES),
	FV_OPT("normalize_weights", BOOL, sc_lnp, o.normalize_weights, "true",
	       "divide both kernels by their norm, in place, at every forward"),
	FV_OPT("loss", NODE, sc_lnp, o.loss, "null",
	       "training loss spec (trainer; default PoissonLoss3d)", .flags = FV_OPT_NULLABLE),
	FV_OPT("evaluation_loss", NODE, sc_lnp, o.evaluation_loss, "null",
	       "evaluation metric spec (trainer; default CorrelationLoss3d(avg=True, negate=False))",
	       .flags = FV_OPT_NULLABLE),
	/* openretina's **kwargs swallows these; its configs and train CLI pass them. */
	FV_OPT("fit_gaussian", BOOL, sc_lnp, o.fit_gaussian, "false",
	       "accepted and unused (openretina's **kwargs)"),
	FV_OPT("n_neurons_dict", NODE, sc_lnp, o.n_neurons_dict, "null",
	       "accepted and unused (openretina's **kwargs)", .flags = FV_OPT_NULLABLE),
	FV_OPT("data_info", NODE, sc_lnp, o.data_info, "null",
	       "accepted and unused (openretina's **kwargs)", .flags = FV_OPT_NULLABLE),
	FV_OPT_KWARGS_ROW("accepted and ignored, as its **kwargs (listed as not used)"),
	{0},
};

/* ---- construction ------------------------------------------------------------ */

static fv_status check_shapes(const lnp_opts *o, const fv_build_args *args)
{
	if (o->in_shape.n != 4)
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: in_shape: expected 4 sizes (channels, time, height, "
		                   "width), got %zu", WHO, o->in_shape.n);
	if (o->spat_kernel_size.n != 2)
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: spat_kernel_size: expected 2 sizes (height, width), got %zu", WHO,
		                   o->spat_kernel_size.n);
	if (o->rf_location.is_set && o->rf_location.n != 2)
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: rf_location: expected (y, x) or null, got %zu values", WHO,
		                   o->rf_location.n);
	const int64_t *s = o->in_shape.v, *k = o->spat_kernel_size.v;
	if (k[0] > s[2] || k[1] > s[3])
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: spat_kernel_size (%lld, %lld) is larger than the "
		                   "(%lld, %lld) frame of in_shape", WHO, (long long)k[0], (long long)k[1],
		                   (long long)s[2], (long long)s[3]);
	if (o->rf_location.is_set && (o->rf_location.v[0] >= s[2] || o->rf_location.v[1] >= s[3]))
		return fv_error_at(args->spec, FV_ERR_CONFIG,
		                   "%s: rf_location (%lld, %lld) lies outside the (%lld, "
		                   "%lld) frame of in_shape", WHO, (long long)o->rf_location.v[0],
		                   (long long)o->rf_location.v[1], (long long)s[2], (long long)s[3]);
	return FV_OK;
}

static nonlin nonlin_of(const char *name)
{
	for (size_t i = 0; i < sizeof nonlin_names / sizeof nonlin_names[0]; i++)
		if (strcmp(name, nonlin_names[i]) == 0)
			return (nonlin)i;
	return NL_PARAMETRIZED_SOFTPLUS; /* unreachable: the option is an ENUM */
}

static bool is_gaussian_laplace(const fv_registry *reg, const char *name)
{
	const fv_component *c = fv_registry_find(reg, name, NULL);
	return c != NULL && strcmp(c->names[0], "GaussianLaplaceL2") == 0;
}

/* A smoothness regularizer as openretina builds it: padding=laplace_padding,
** plus kernel=... for GaussianLaplaceL2 (the spatial kernel's size, or the
** temporal kernel's length). */
static fv_module *add_smooth_reg(fv_module *m, const fv_build_args *args, const char *option,
                                 const char *target, int64_t padding, const char *kernel,
                                 const char *child_name)
{
	if (args->registry == NULL) {
		fv_error_at(args->spec, FV_ERR_ARG, "%s: %s: needs the registry to build '%s'", WHO, option,
		            target);
		return NULL;
	}
	const fv_component *c = fv_registry_find(args->registry, target, NULL);
	if (c != NULL && c->kind != FV_KIND_REGULARIZER) {
		fv_error_at(args->spec, FV_ERR_CONFIG, "%s: %s: '%s' is a %s, not a regularizer", WHO,
		            option, target, fv_kind_name(c->kind));
		return NULL;
	}
	char yaml[128], pad[32] = "null";
	if (padding != FV_NONE_INT)
		snprintf(pad, sizeof pad, "%lld", (long long)padding);
	if (is_gaussian_laplace(args->registry, target))
		snprintf(yaml, sizeof yaml, "{padding: %s, kernel: %s}", pad, kernel);
	else
		snprintf(yaml, sizeof yaml, "{padding: %s}", pad);
	fv_build_args child_args = *args;
	child_args.struct_size = sizeof child_args;
	child_args.spec = NULL;
	child_args.session = NULL;
	child_args.mean_activity = NULL;
	fv_module *child = fv_instantiate_named(args->registry, target, yaml, &child_args, child_name);
	if (child == NULL) {
		fv_error_at(args->spec, fv_errcode(), "%s: %s: %s", WHO, option, fv_errmsg());
		return NULL;
	}
	/* fv_module_add_child owns the child whatever happens. */
	return fv_module_add_child(m, child_name, child) == FV_OK ? child : NULL;
}

static fv_tensor *add_param(fv_module *m, const char *name, int ndim, const int64_t *shape)
{
	fv_tensor *t = fv_module_add_param(m, name, ndim, shape);
	if (t == NULL)
		fv_error_prefix("%s: ", WHO);
	return t;
}

/* torch.nn.init.xavier_normal_: std = sqrt(2 / (fan_in + fan_out)). */
static void xavier_normal(fv_ctx *rng, fv_tensor *w)
{
	double field = 1;
	for (int d = 2; d < w->ndim; d++)
		field *= (double)w->shape[d];
	double fan_in = (double)w->shape[1] * field, fan_out = (double)w->shape[0] * field;
	double std = sqrt(2.0 / (fan_in + fan_out));
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] = (fv_real)(std * fv_ctx_random_normal(rng));
}

static fv_status add_params(fv_module *m, sc_lnp *s, int64_t rank, uint64_t seed)
{
	if (s->nonlin == NL_PARAMETRIZED_SOFTPLUS) {
		s->softplus_b = add_param(m, "nonlinearity.b", 0, NULL);
		s->softplus_w = add_param(m, "nonlinearity.w", 0, NULL);
		if (s->softplus_b == NULL || s->softplus_w == NULL)
			return fv_errcode();
		s->softplus_w->data[0] = 1; /* ParametrizedSoftplus(a=1, b=0, w=1) */
	}
	int64_t space[5] = {rank, s->channels, 1, s->kernel[0], s->kernel[1]};
	int64_t time[5] = {1, rank, s->frames, 1, 1};
	s->space_w = add_param(m, "space_conv.weight", 5, space);
	s->time_w = add_param(m, "time_conv.weight", 5, time);
	if (s->space_w == NULL || s->time_w == NULL)
		return fv_errcode();
	fv_ctx *rng = fv_ctx_new();
	if (rng == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory initialising its kernels", WHO);
	fv_ctx_seed(rng, seed);
	xavier_normal(rng, s->space_w);
	xavier_normal(rng, s->time_w);
	fv_ctx_free(rng);
	return FV_OK;
}

static fv_status lnp_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	sc_lnp *s = fv_module_priv(m);
	const lnp_opts *o = &s->o;
	fv_status st = check_shapes(o, args);
	if (st != FV_OK)
		return st;
	const int64_t *in = o->in_shape.v;
	s->channels = in[0];
	s->frames = in[1];
	s->kernel[0] = o->spat_kernel_size.v[0];
	s->kernel[1] = o->spat_kernel_size.v[1];
	s->crop = in[2] != s->kernel[0] || in[3] != s->kernel[1];
	s->location[0] = o->rf_location.is_set ? o->rf_location.v[0] : in[2] / 2;
	s->location[1] = o->rf_location.is_set ? o->rf_location.v[1] : in[3] / 2;
	s->nonlin = nonlin_of(o->nonlinearity);

	char spat_kernel[64], temp_kernel[32];
	snprintf(spat_kernel, sizeof spat_kernel, "[%lld, %lld]", (long long)s->kernel[0],
	         (long long)s->kernel[1]);
	snprintf(temp_kernel, sizeof temp_kernel, "%lld", (long long)s->frames);
	s->spat_reg = add_smooth_reg(m, args, "smooth_regularizer_spat", o->smooth_regularizer_spat,
	                             o->laplace_padding, spat_kernel, "_smooth_reg_fn_spat");
	if (s->spat_reg == NULL)
		return fv_errcode();
	s->temp_reg = add_smooth_reg(m, args, "smooth_regularizer_temp", o->smooth_regularizer_temp,
	                             o->laplace_padding, temp_kernel, "_smooth_reg_fn_temp");
	if (s->temp_reg == NULL)
		return fv_errcode();
	return add_params(m, s, o->rank, args->seed);
}

/* ---- forward --------------------------------------------------------------------- */

/* openretina's crop_input along one axis: [c - min(k//2, c), c + min(k//2 + k%2, n - c)). */
static void crop_range(int64_t centre, int64_t k, int64_t n, int64_t *start, int64_t *stop)
{
	int64_t before = k / 2 < centre ? k / 2 : centre;
	int64_t after = k / 2 + k % 2 < n - centre ? k / 2 + k % 2 : n - centre;
	*start = centre - before;
	*stop = centre + after;
}

/* training_step's input preparation; the patch is kept as "x_cropped". */
static fv_tensor *crop_input(fv_module *m, fv_ctx *ctx, fv_tensor *x)
{
	const sc_lnp *s = fv_module_priv(m);
	if (s->crop) {
		int64_t r0, r1, c0, c1;
		crop_range(s->location[0], s->kernel[0], x->shape[3], &r0, &r1);
		crop_range(s->location[1], s->kernel[1], x->shape[4], &c0, &c1);
		if (r1 - r0 != s->kernel[0] || c1 - c0 != s->kernel[1]) {
			fv_error(FV_ERR_SHAPE, "%s: cropping the %s input around rf_location (%lld, %lld) "
			         "gives rows [%lld, %lld) and columns [%lld, %lld), smaller than "
			         "spat_kernel_size (%lld, %lld): the receptive field is too close to the "
			         "frame's edge", WHO, fv_shape_str(x->ndim, x->shape),
			         (long long)s->location[0], (long long)s->location[1], (long long)r0,
			         (long long)r1, (long long)c0, (long long)c1, (long long)s->kernel[0],
			         (long long)s->kernel[1]);
			return NULL;
		}
		x = fv_slice(ctx, fv_slice(ctx, x, 3, r0, r1, 1), 4, c0, c1, 1);
		if (x == NULL)
			return NULL;
	}
	fv_tensor *kept = fv_module_set_state(m, "x_cropped", x->ndim, x->shape);
	if (kept == NULL || fv_tensor_copy(kept, x) != FV_OK) {
		fv_error_prefix("%s: keeping x_cropped: ", WHO);
		return NULL;
	}
	return x;
}

/* normalize_kernels(): w /= ||w|| in place, outside autograd.  A zero
** kernel is left as it is (openretina would turn it into NaNs). */
static void normalize_in_place(fv_tensor *w)
{
	double sum_sq = 0;
	for (int64_t i = 0; i < w->numel; i++)
		sum_sq += (double)w->data[i] * (double)w->data[i];
	fv_real norm = (fv_real)sqrt(sum_sq);
	if (norm == 0)
		return;
	for (int64_t i = 0; i < w->numel; i++)
		w->data[i] /= norm;
}

static fv_tensor *apply_nonlinearity(fv_ctx *ctx, const sc_lnp *s, fv_tensor *x)
{
	switch (s->nonlin) {
	case NL_PARAMETRIZED_SOFTPLUS: /* a = 1, not learnt: a*x is x */
		return fv_mul(ctx, s->softplus_w,
		              fv_softplus(ctx, fv_add(ctx, x, s->softplus_b), SOFTPLUS_BETA,
		                          SOFTPLUS_THRESHOLD));
	case NL_SOFTPLUS:
		return fv_softplus(ctx, x, SOFTPLUS_BETA, SOFTPLUS_THRESHOLD);
	case NL_RELU:
		return fv_relu(ctx, x);
	case NL_ELU:
		return fv_elu(ctx, x, 1.0);
	case NL_SELU:
		return fv_mul_scalar(ctx, fv_elu(ctx, x, SELU_ALPHA), SELU_SCALE);
	case NL_SIGMOID:
		return fv_sigmoid(ctx, x);
	case NL_TANH:
		return fv_tanh(ctx, x);
	case NL_SILU:
		return fv_mul(ctx, x, fv_sigmoid(ctx, x));
	case NL_LEAKY_RELU:
		return fv_sub(ctx, fv_relu(ctx, x),
		              fv_mul_scalar(ctx, fv_relu(ctx, fv_neg(ctx, x)), LEAKY_SLOPE));
	case NL_LOGSIGMOID:
		return fv_neg(ctx, fv_softplus(ctx, fv_neg(ctx, x), SOFTPLUS_BETA, SOFTPLUS_THRESHOLD));
	case NL_SOFTSIGN:
		return fv_div(ctx, x, fv_add_scalar(ctx, fv_abs(ctx, x), 1.0));
	}
	return x;
}

static bool wants_crop(const fv_forward_args *fa)
{
	return fa->struct_size >= offsetof(fv_forward_args, crop_input) + sizeof fa->crop_input &&
	       fa->crop_input;
}

static fv_status check_input(const sc_lnp *s, const fv_tensor *x, bool cropped)
{
	if (x->ndim != 5 || x->shape[1] != s->channels || x->shape[2] < s->frames)
		return fv_error(FV_ERR_SHAPE, "%s: input has shape %s; expected (batch, %lld, time >= "
		                "%lld, height, width)", WHO, fv_shape_str(x->ndim, x->shape),
		                (long long)s->channels, (long long)s->frames);
	if (cropped && (x->shape[3] != s->kernel[0] || x->shape[4] != s->kernel[1]))
		return fv_error(FV_ERR_SHAPE, "%s: input frames are (%lld, %lld) but the forward needs "
		                "patches of spat_kernel_size (%lld, %lld): crop the stimulus first "
		                "(crop_input)", WHO, (long long)x->shape[3], (long long)x->shape[4],
		                (long long)s->kernel[0], (long long)s->kernel[1]);
	return FV_OK;
}

static fv_tensor *lnp_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	sc_lnp *s = fv_module_priv(m);
	if (x == NULL || check_input(s, x, false) != FV_OK)
		return NULL;
	if (wants_crop(fa) && (x = crop_input(m, ctx, x)) == NULL)
		return NULL;
	if (check_input(s, x, true) != FV_OK)
		return NULL;
	if (s->o.normalize_weights) {
		normalize_in_place(s->space_w);
		normalize_in_place(s->time_w);
	}
	fv_conv3d_params p = {0};
	fv_tensor *y = fv_conv3d(ctx, x, s->space_w, NULL, &p);  /* (B, rank, T, 1, 1) */
	y = fv_conv3d(ctx, y, s->time_w, NULL, &p);              /* (B, 1, T_out, 1, 1) */
	y = apply_nonlinearity(ctx, s, y);
	int64_t out[3] = {x->shape[0], x->shape[2] - s->frames + 1, 1};
	return y != NULL ? fv_reshape(ctx, y, 3, out) : NULL;
}

/* ---- regularizer ------------------------------------------------------------------ */

static fv_tensor *smooth_penalty(fv_ctx *ctx, fv_module *reg, fv_tensor *w, const char *option)
{
	fv_forward_args sum = FV_FORWARD_ARGS_INIT;
	sum.reduction = FV_REDUCE_SUM; /* openretina calls them with avg=False */
	fv_tensor *r = fv_module_penalty(reg, ctx, w, &sum);
	if (r == NULL) {
		fv_error_prefix("%s: %s: ", WHO, option);
		return NULL;
	}
	if (r->numel != 1) {
		fv_error(FV_ERR_SHAPE, "%s: %s: the regularizer gave a %s tensor, not a scalar penalty",
		         WHO, option, fv_shape_str(r->ndim, r->shape));
		return NULL;
	}
	return r;
}

static fv_tensor *lnp_regularizer(fv_module *m, fv_ctx *ctx, const fv_forward_args *fa)
{
	(void)fa;
	sc_lnp *s = fv_module_priv(m);
	const int64_t *ws = s->space_w->shape;
	int64_t squeezed[4] = {ws[0], ws[1], ws[3], ws[4]}; /* space_conv.weight.squeeze(2) */
	fv_tensor *spat = smooth_penalty(ctx, s->spat_reg, fv_reshape(ctx, s->space_w, 4, squeezed),
	                                 "smooth_regularizer_spat");
	if (spat == NULL)
		return NULL;
	fv_tensor *temp = smooth_penalty(ctx, s->temp_reg, s->time_w, "smooth_regularizer_temp");
	if (temp == NULL)
		return NULL;
	fv_tensor *laplace = fv_add(ctx, fv_mul_scalar(ctx, spat, s->o.smooth_weight_spat),
	                            fv_mul_scalar(ctx, temp, s->o.smooth_weight_temp));
	fv_tensor *l1 = fv_add(ctx, fv_mean_all(ctx, fv_abs(ctx, s->space_w)),
	                       fv_mean_all(ctx, fv_abs(ctx, s->time_w)));
	fv_tensor *total = fv_add(ctx, laplace, fv_mul_scalar(ctx, l1, s->o.sparse_weight));
	return total != NULL ? fv_reshape(ctx, total, 0, NULL) : NULL;
}

/* ---- descriptor --------------------------------------------------------------------- */

static const char *const lnp_names[] = {
	"SingleCellSeparatedLNP",
	"openretina.models.linear_nonlinear.SingleCellSeparatedLNP",
	NULL,
};

static const fv_component lnp_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = lnp_names,
	.doc = "single-neuron LNP model: rank-r space-time separable filter on a patch cropped "
	       "around rf_location, then a nonlinearity; output (N, t, 1)",
	.options = lnp_options,
	.priv_size = sizeof(sc_lnp),
	.create = lnp_create,
	.forward = lnp_forward,
	.regularizer = lnp_regularizer,
};

FV_PLUGIN_DEFINE("models-single-cell-lnp", &lnp_component);
