/*
** test_model_combinations.c: every core with every multi-session readout,
** picked by openretina's _target_ paths inside one UnifiedCoreReadout spec.
**
** Each component's own state_dict names are checked against openretina
** elsewhere (the core tests spell them out, the golden cases carry the
** readouts').  What is checked here is the composition: the model's tensors
** are exactly the core's under "core." and the readout's under "readout.",
** the readout was built for the core's output shape, and a forward and a
** training-step loss run for every pairing.
*/
#include <criterion/criterion.h>

#include "plugin_testing.h"

PT_SUITE(combinations, "cores", "readouts", "regularizers", "models");

#define IN_SHAPE "[2, 12, 10, 9]"
#define SESSIONS "{session_a: 3, session_b: 2}"

/* SimpleCoreWrapper's required options.  Its penalties read custom_separable
** weights (other kinds need gamma 0), and openretina's default cut of 30
** frames is more than these inputs have. */
#define CORE_COMMON(gamma)                                                           \
	"  gamma_input: " #gamma "\n  gamma_hidden: " #gamma "\n  gamma_in_sparse: " #gamma "\n" \
	"  cut_first_n_frames: 1\n"

static const char *const cores[] = {
	"_target_: openretina.modules.core.base_core.SimpleCoreWrapper\n"
	"  convolution_type: custom_separable\n  temporal_kernel_sizes: [4, 3]\n"
	"  spatial_kernel_sizes: [5, 3]\n  hidden_padding: [0, 1, 1]\n  gamma_temporal: 4.0\n" CORE_COMMON(0.3),
	"_target_: openretina.modules.core.base_core.SimpleCoreWrapper\n"
	"  convolution_type: separable\n  temporal_kernel_sizes: [4, 3]\n"
	"  spatial_kernel_sizes: [5, 3]\n  hidden_padding: false\n  gamma_temporal: 0.0\n" CORE_COMMON(0),
	"_target_: openretina.modules.core.base_core.SimpleCoreWrapper\n"
	"  convolution_type: full\n  temporal_kernel_sizes: [4, 3]\n"
	"  spatial_kernel_sizes: [5, 3]\n  hidden_padding: same\n  gamma_temporal: 0.0\n" CORE_COMMON(0),
	"_target_: openretina.modules.core.base_core.DummyCore\n  cut_first_n_frames: 2\n",
};

static const char *const readouts[] = {
	"_target_: openretina.modules.readout.multi_readout.MultiGaussianMaskReadout\n"
	"  scale: true\n  bias: true\n  gaussian_mean_scale: 6.0\n  gaussian_var_scale: 4.0\n"
	"  positive: true\n",
	"_target_: openretina.modules.readout.multi_readout.MultiSampledGaussianReadout\n"
	"  bias: true\n  init_mu_range: 0.1\n  init_sigma_range: 0.15\n  gauss_type: full\n",
	"_target_: openretina.modules.readout.multi_readout.MultiFactorizedReadout\n"
	"  mask_l1_reg: 5.0\n  weights_l1_reg: 5.0\n  laplace_mask_reg: 1.0\n"
	"  init_scales: [[0.0, 0.15], [0.0, 0.15]]\n",
	"_target_: openretina.modules.readout.multi_readout.MultipleLNPReadout\n"
	"  nonlinearity: softplus\n  smooth_weight: 1.0\n  sparse_weight: 1.0\n",
};

/* The spec of a UnifiedCoreReadout with core `core` and readout `readout`;
** the caller frees it. */
static char *model_spec(const char *core, const char *readout)
{
	const char *head = "_target_: openretina.models.core_readout.UnifiedCoreReadout\n"
	                   "in_shape: " IN_SHAPE "\nn_neurons_dict: " SESSIONS "\n"
	                   "hidden_channels: [3, 4]\n";
	size_t size = strlen(head) + strlen(core) + strlen(readout) + 64;
	char *spec = malloc(size);
	cr_assert_not_null(spec);
	snprintf(spec, size, "%score:\n  %sreadout:\n  %s", head, core, readout);
	return spec;
}

/* Every tensor of `part` appears in `model` under `prefix` ("core."), with
** the same shape; counts them in *n. */
typedef struct part_check {
	const fv_module *model;
	const char *prefix;
	int n;
} part_check;

static int expect_in_model(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	part_check *pc = ud;
	char full[256];
	snprintf(full, sizeof full, "%s%s", pc->prefix, name);
	fv_tensor *mt = fv_module_tensor(pc->model, full);
	cr_assert_not_null(mt, "the model lacks '%s' (%s of its child)", full,
	                   is_param ? "a parameter" : "a buffer");
	pt_expect_shape(mt, t->ndim, t->shape, full);
	pc->n++;
	return 0;
}

static int count_tensor(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name, (void)t, (void)is_param;
	++*(int *)ud;
	return 0;
}

/* The model's tensors are exactly its children's, under their prefixes. */
static void expect_composed_names(const fv_module *m)
{
	part_check core = {m, "core.", 0}, readout = {m, "readout.", 0};
	fv_module_foreach_tensor(fv_module_child(m, "core"), expect_in_model, &core);
	fv_module_foreach_tensor(fv_module_child(m, "readout"), expect_in_model, &readout);
	int total = 0;
	fv_module_foreach_tensor(m, count_tensor, &total);
	cr_assert_eq(total, core.n + readout.n, "the model has %d tensors, its children %d + %d",
	             total, core.n, readout.n);
	cr_assert_gt(readout.n, 0);
}

/* Forward of session_b and the training-step loss terms are finite, the
** output has session_b's two neurons. */
static void expect_runs(fv_module *m)
{
	fv_tensor *x = pt_input(5, (int64_t[]){2, 2, 12, 10, 9}, 3, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = "session_b";
	fv_tensor *y = fv_module_forward(m, ctx, x, &fa);
	cr_assert_not_null(y, "%s", fv_errmsg());
	cr_assert_eq(y->shape[0], 2);
	cr_assert_eq(y->shape[y->ndim - 1], 2, "session_b has 2 neurons");
	for (int64_t i = 0; i < y->numel; i++)
		cr_assert(isfinite(y->data[i]));
	fv_tensor *r = fv_module_regularizer(m, ctx, &fa);
	cr_assert_not_null(r, "%s", fv_errmsg());
	cr_assert(isfinite(r->data[0]));
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(combinations, every_core_with_every_readout)
{
	for (size_t c = 0; c < sizeof cores / sizeof cores[0]; c++)
		for (size_t r = 0; r < sizeof readouts / sizeof readouts[0]; r++) {
			char *spec = model_spec(cores[c], readouts[r]);
			fv_module *m = pt_try_build(reg, spec, 11);
			cr_assert_not_null(m, "%s\n%s", spec, fv_errmsg());
			expect_composed_names(m);
			expect_runs(m);
			fv_module_free(m);
			free(spec);
		}
}

/* The readout's in_shape is the core's output shape, per core kind: the
** LNP readout's kernel is (neurons, channels, 1, height, width) of it. */
Test(combinations, readout_sees_the_core_output_shape)
{
	/* input 2 x 12 x 10 x 9; spatial kernels 5 then 3.  custom_separable:
	** 10-5+1 = 6, then padding 1 keeps 6 (and 5); separable without hidden
	** padding (false): 6-3+1 = 4, 5-3+1 = 3; full with "same": 6 and 5; DummyCore:
	** the input's channels and frame. */
	const int64_t want[4][5] = {
		{3, 4, 1, 6, 5}, {3, 4, 1, 4, 3}, {3, 4, 1, 6, 5}, {3, 2, 1, 10, 9},
	};
	for (size_t c = 0; c < sizeof cores / sizeof cores[0]; c++) {
		char *spec = model_spec(cores[c], readouts[3]);
		fv_module *m = pt_build(reg, spec, 5);
		pt_expect_shape(pt_tensor(m, "readout.session_a.inner_product_kernel.weight"), 5,
		                want[c], spec);
		fv_module_free(m);
		free(spec);
	}
}
