/*
** test_plugin_ensemble.c: EnsembleModel (plugins/models/ensemble.c): the
** mean of its members' outputs, openretina's state_dict names, a
** checkpoint round trip, the figures' questions and the error paths.
*/
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "plugin_testing.h"

PT_SUITE(ensemble, "cores", "readouts", "regularizers", "models");

/* A small UnifiedCoreReadout's keyword arguments (no _target_). */
#define MEMBER                                                                              \
	"{in_shape: [1, 8, 9, 8], n_neurons_dict: {s1: 3, s2: 2}, hidden_channels: [2],"     \
	" core: {_target_: SimpleCoreWrapper, gamma_input: 0, gamma_hidden: 0,"              \
	" gamma_in_sparse: 0, gamma_temporal: 0, temporal_kernel_sizes: [3],"               \
	" spatial_kernel_sizes: [3], cut_first_n_frames: 0},"                                \
	" readout: {_target_: MultiGaussianMaskReadout, scale: true, bias: true,"            \
	" gaussian_mean_scale: 1.0, gaussian_var_scale: 1.0, positive: false}}"

static fv_module *build(const char *members, uint64_t seed)
{
	char yaml[4096];
	snprintf(yaml, sizeof yaml, "_target_: EnsembleModel\nmembers: %s\n", members);
	fv_module *m = pt_build(reg, yaml, seed);
	fv_module_set_training(m, false);
	return m;
}

Test(ensemble, forward_is_the_mean_of_the_members)
{
	fv_module *m = build("[" MEMBER ", {_target_: UnifiedCoreReadout, in_shape: [1, 8, 9, 8], "
	                     "n_neurons_dict: {s1: 3, s2: 2}, hidden_channels: [2], core: {_target_: "
	                     "SimpleCoreWrapper, gamma_input: 0, gamma_hidden: 0, gamma_in_sparse: 0, "
	                     "gamma_temporal: 0, temporal_kernel_sizes: [3], spatial_kernel_sizes: [3], "
	                     "cut_first_n_frames: 0}, readout: {_target_: MultiGaussianMaskReadout, "
	                     "scale: true, bias: true, gaussian_mean_scale: 1.0, "
	                     "gaussian_var_scale: 1.0, positive: false}}, " MEMBER "]", 3);
	pt_tensor(m, "members.0.core.features.layer0.conv.weight_spatial");
	pt_tensor(m, "members.2.readout.s2.mask_mean");
	cr_assert_null(fv_module_tensor(m, "members.3.readout.s2.mask_mean"));
	/* the members are initialised differently */
	cr_assert_neq(pt_tensor(m, "members.0.core.features.layer0.conv.weight_spatial")->data[0],
	              pt_tensor(m, "members.1.core.features.layer0.conv.weight_spatial")->data[0]);
	int64_t shape[5] = {2, 1, 8, 9, 8};
	fv_tensor *x = pt_input(5, shape, 5, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, "s2", -1);
	fv_tensor *ys[3];
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "members.%d", i);
		ys[i] = pt_forward(fv_module_child(m, name), ctx, x, "s2", -1);
	}
	cr_assert_eq(y->numel, ys[0]->numel);
	for (int64_t k = 0; k < y->numel; k++)
		pt_expect_close(y->data[k], (ys[0]->data[k] + ys[1]->data[k] + ys[2]->data[k]) / 3, 1e-6,
		                "mean");
	fv_tensor *kernel = NULL;
	cr_assert_eq(fv_module_first_layer_filters(m, &kernel), FV_OK, "%s", fv_errmsg());
	fv_tensor_free(kernel);
	pt_release(m, x, ctx);
}

Test(ensemble, a_checkpoint_holds_every_member)
{
	fv_module *a = build("[" MEMBER ", " MEMBER "]", 11);
	fv_module *b = build("[" MEMBER ", " MEMBER "]", 12);
	char path[] = "/tmp/fovea_ensemble_XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	fv_checkpoint_content content = {.model = a};
	cr_assert_eq(fv_checkpoint_save(path, &content), FV_OK, "%s", fv_errmsg());
	fv_checkpoint *c = fv_checkpoint_open(path);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_assert_eq(fv_checkpoint_load_model(c, b, false), FV_OK, "%s", fv_errmsg());
	fv_checkpoint_close(c);
	unlink(path);
	int64_t shape[5] = {1, 1, 8, 9, 8};
	fv_tensor *x = pt_input(5, shape, 6, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *ya = pt_forward(a, ctx, x, "s1", -1), *yb = pt_forward(b, ctx, x, "s1", -1);
	for (int64_t k = 0; k < ya->numel; k++)
		cr_assert_eq(ya->data[k], yb->data[k]);
	fv_module_free(b);
	pt_release(a, x, ctx);
}

Test(ensemble, bad_members_are_refused)
{
	pt_expect_build_error(reg, "_target_: EnsembleModel\nmembers: []\n",
	                      "members: expected a non-empty list of model specs");
	pt_expect_build_error(reg, "_target_: EnsembleModel\nmembers: 3\n", "members: expected");
	pt_expect_build_error(reg, "_target_: EnsembleModel\n", "members");
	pt_expect_build_error(reg, "_target_: EnsembleModel\nmembers: [{in_shape: [1, 8, 9, 8]}]\n",
	                      "members[0]");
	pt_expect_build_error(reg, "_target_: EnsembleModel\nmembers: [{_target_: Nope}]\n",
	                      "unknown component 'Nope'");
}

Test(ensemble, members_of_different_outputs_are_refused)
{
	fv_module *m = build("[" MEMBER ", {_target_: DummyCore}]", 3);
	int64_t shape[5] = {1, 1, 8, 9, 8};
	pt_expect_forward_error(m, "s1", 5, shape, "EnsembleModel: member 1 gives (1, 1, 8, 9, 8)");
	fv_module_free(m);
}
