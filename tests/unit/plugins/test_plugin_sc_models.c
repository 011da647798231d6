/*
** test_plugin_sc_models.c: SingleCellSpatialContrast and
** SpatialContrastCoreReadout (plugins/models/spatial_contrast.c,
** sta_filters.c).  The filters fovea extracts from the golden cases' STAs
** (the Gaussian fit included) must equal the buffers openretina built from
** them; the forward is checked against a naive reference; errors name the
** file and what is wrong.
*/
#include <stdlib.h>
#include <unistd.h>

#include "fovea/npy.h"
#include "fovea/safetensors.h"
#include "plugin_testing.h"

PT_SUITE(sc_models, "readouts", "cores", "models");

typedef struct sta_dir {
	char path[64];
	fv_safetensors *st;
} sta_dir;

/* A temporary directory holding the case's input.sta* tensors as .npy
** files named by `names` (NULL-terminated pairs: tensor, file). */
static sta_dir write_stas(const char *case_name, const char *const *names)
{
	sta_dir d;
	snprintf(d.path, sizeof d.path, "/tmp/fovea_sta_XXXXXX");
	cr_assert_not_null(mkdtemp(d.path));
	char file[1024];
	snprintf(file, sizeof file, "%s/golden/%s.safetensors", FOVEA_TEST_SRCDIR, case_name);
	d.st = fv_safetensors_open(file);
	cr_assert_not_null(d.st, "%s", fv_errmsg());
	for (; names[0] != NULL; names += 2) {
		fv_tensor *t = fv_safetensors_tensor(d.st, names[0]);
		cr_assert_not_null(t, "%s: %s", names[0], fv_errmsg());
		snprintf(file, sizeof file, "%s/%s", d.path, names[1]);
		cr_assert_eq(fv_npy_save(file, t), FV_OK, "%s", fv_errmsg());
		fv_tensor_free(t);
	}
	return d;
}

static void remove_stas(sta_dir *d, const char *const *names)
{
	char file[1024];
	for (; names[0] != NULL; names += 2) {
		snprintf(file, sizeof file, "%s/%s", d->path, names[1]);
		unlink(file);
	}
	rmdir(d->path);
	fv_safetensors_close(d->st);
}

/* Module tensor `name` equals the case's param.<name>. */
static void expect_buffer(const sta_dir *d, fv_module *m, const char *name, double atol)
{
	char key[256];
	snprintf(key, sizeof key, "param.%s", name);
	fv_tensor *want = fv_safetensors_tensor(d->st, key);
	fv_tensor *got = pt_tensor(m, name);
	cr_assert_not_null(want, "%s", key);
	cr_assert_eq(got->numel, want->numel, "%s: %s vs %s", name, fv_shape_str(got->ndim, got->shape),
	             fv_shape_str(want->ndim, want->shape));
	for (int64_t i = 0; i < got->numel; i++)
		cr_assert(fabs(got->data[i] - want->data[i]) <= atol + 1e-4 * fabs(want->data[i]),
		          "%s[%lld]: %.9g vs openretina %.9g", name, (long long)i, (double)got->data[i],
		          (double)want->data[i]);
	fv_tensor_free(want);
}

static const char *const single_files[] = {"input.sta", "cell.npy", NULL};

static fv_module *build_single(const sta_dir *d, const char *options)
{
	char yaml[1024];
	snprintf(yaml, sizeof yaml, "_target_: SingleCellSpatialContrast\nsta_dir: %s\n"
	         "sta_file_name: cell.npy\n%s", d->path, options);
	return pt_build(reg, yaml, 1);
}

/* The golden case's construction: crop to 17 x 16, the fit, a 9 x 9 patch. */
Test(sc_models, single_cell_filters_are_openretinas)
{
	sta_dir d = write_stas("spatial_contrast_single_cell_crop", single_files);
	fv_module *m = build_single(&d, "in_shape: [1, 14, 17, 16]\ntemporal_crop_frames: 8\n"
	                                "spat_crop_size: [9, 9]\na_init: 4.0\nc_init: -5.0\n");
	expect_buffer(&d, m, "spatial_filter", 1e-6);
	expect_buffer(&d, m, "temporal_filter", 1e-6);
	expect_buffer(&d, m, "spatial_filter_sum", 1e-5);
	cr_assert_eq(pt_tensor(m, "nl_a")->data[0], 4);
	cr_assert_eq(pt_tensor(m, "nl_c")->data[0], -5);
	fv_module_free(m);
	remove_stas(&d, single_files);
}

Test(sc_models, single_cell_flipped_filters_are_openretinas)
{
	sta_dir d = write_stas("spatial_contrast_single_cell_nocrop_flip", single_files);
	fv_module *m = build_single(&d, "in_shape: [1, 12, 11, 12]\nflip_sta: true\n"
	                                "sigma_contour: 2.0\n");
	expect_buffer(&d, m, "spatial_filter", 1e-6);
	expect_buffer(&d, m, "temporal_filter", 1e-6);
	fv_module_free(m);
	remove_stas(&d, single_files);
}

static double softplus(double x)
{
	return x > 20 ? x : log1p(exp(x));
}

/* y = a softplus(b (imean + w lsc) + c) over the 9 x 9 patch around the
** receptive field, from the module's own buffers. */
Test(sc_models, single_cell_forward_matches_the_formula)
{
	sta_dir d = write_stas("spatial_contrast_single_cell_crop", single_files);
	fv_module *m = build_single(&d, "in_shape: [1, 14, 17, 16]\ntemporal_crop_frames: 8\n"
	                                "spat_crop_size: [9, 9]\nw_init: 0.3\n");
	int64_t shape[5] = {2, 1, 14, 17, 16};
	fv_tensor *x = pt_input(5, shape, 7, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = pt_forward(m, ctx, x, NULL, -1);
	const fv_real *sf = pt_tensor(m, "spatial_filter")->data, *tf = pt_tensor(m, "temporal_filter")->data;
	double sum = pt_tensor(m, "spatial_filter_sum")->data[0];
	const int y0 = 3, x0 = 3; /* derived.crop_bounds of the case: rows and columns 3..11 */
	for (int b = 0; b < 2; b++)
		for (int t = 0; t < 7; t++) {
			double f[81], imean = 0, var = 0;
			for (int p = 0; p < 81; p++) {
				f[p] = 0;
				for (int j = 0; j < 8; j++)
					f[p] += tf[j] * x->data[((b * 14 + t + j) * 17 + y0 + p / 9) * 16 + x0 + p % 9];
				imean += sf[p] * f[p] / (sum + 1e-8);
			}
			for (int p = 0; p < 81; p++)
				var += sf[p] * (f[p] - imean) * (f[p] - imean) / (sum + 1e-8);
			double want = 1.0 * softplus(1.0 * (imean + 0.3 * sqrt(var)) + 0.0);
			pt_expect_close(y->data[b * 7 + t], want, 1e-5, "y");
		}
	const int64_t patch[5] = {2, 1, 14, 9, 9};
	pt_expect_shape(pt_tensor(m, "x_cropped"), 5, patch, "x_cropped");
	pt_release(m, x, ctx);
	remove_stas(&d, single_files);
}

static const char *const multi_files[] = {
	"input.sta.session_1.2", "cell_data_session_1_WN_stas_cell_2.npy",
	"input.sta.session_1.5", "cell_data_session_1_WN_stas_cell_5.npy",
	"input.sta.session_1.7", "cell_data_session_1_WN_stas_cell_7.npy",
	"input.sta.session_2.1", "cell_data_session_2_WN_stas_cell_1.npy",
	"input.sta.session_2.4", "cell_data_session_2_WN_stas_cell_4.npy",
	NULL,
};

Test(sc_models, core_readout_filters_are_openretinas)
{
	sta_dir d = write_stas("spatial_contrast_core_readout_train_step", multi_files);
	char yaml[1024];
	snprintf(yaml, sizeof yaml,
	         "_target_: openretina.models.spatial_contrast.SpatialContrastCoreReadout\n"
	         "in_shape: [1, 14, 12, 13]\nn_neurons_dict: {session_1: 3, session_2: 2}\n"
	         "sta_dir: %s\ntemporal_crop_frames: 6\ncut_first_n_frames: 2\n"
	         "neuron_chunk_size: 2\ndata_info: {sessions_kwargs: {session_1: {cell_indices: "
	         "[2, 5, 7]}, session_2: {cell_indices: [1, 4]}}}\n", d.path);
	fv_module *m = pt_build(reg, yaml, 1);
	const char *names[] = {"readout.session_1.spatial_filters", "readout.session_1.temporal_filters",
	                       "readout.session_2.spatial_filters", "readout.session_2.temporal_filters"};
	for (int i = 0; i < 4; i++)
		expect_buffer(&d, m, names[i], 1e-6);
	expect_buffer(&d, m, "readout.session_1.sf_sums", 1e-5);
	cr_assert_eq(pt_tensor(m, "readout.session_2.nl_c")->data[1], -5);
	int64_t shape[5] = {2, 1, 14, 12, 13};
	fv_tensor *x = pt_input(5, shape, 8, -1, 1);
	fv_ctx *ctx = fv_ctx_new();
	const int64_t yshape[3] = {2, 7, 3}; /* 14 - 2 cut - 6 + 1 frames */
	pt_expect_shape(pt_forward(m, ctx, x, "session_1", -1), 3, yshape, "y");
	pt_release(m, x, ctx);
	remove_stas(&d, multi_files);
}

Test(sc_models, bad_configurations_are_refused)
{
	sta_dir d = write_stas("spatial_contrast_single_cell_crop", single_files);
	char yaml[1024];
	snprintf(yaml, sizeof yaml, "_target_: SingleCellSpatialContrast\nsta_dir: %s\n"
	         "sta_file_name: nope.npy\nin_shape: [1, 14, 17, 16]\n", d.path);
	pt_expect_build_error(reg, yaml, "nope.npy");
	fv_module *m = build_single(&d, "in_shape: [1, 14, 17, 16]\n");
	int64_t two[5] = {1, 2, 14, 17, 16}, other[5] = {1, 1, 14, 17, 15};
	pt_expect_forward_error(m, NULL, 5, two, "expected an input (N, 1, T, H, W)");
	pt_expect_forward_error(m, NULL, 5, other, "do not match the spatial filter (17, 16)");
	fv_module_free(m);
	pt_expect_build_error(reg, "_target_: SingleCellSpatialContrast\nsta_dir: /tmp\n"
	                      "sta_file_name: x.npy\nin_shape: [3, 14, 17, 16]\n",
	                      "only supports a single input channel");
	snprintf(yaml, sizeof yaml, "_target_: SingleCellSpatialContrast\nsta_dir: %s\n"
	         "sta_file_name: cell.npy\nin_shape: [1, 14, 40, 16]\n", d.path);
	pt_expect_build_error(reg, yaml, "smaller than the stimulus (40, 16)");
	snprintf(yaml, sizeof yaml, "_target_: SpatialContrastCoreReadout\nsta_dir: %s\n"
	         "in_shape: [1, 14, 17, 16]\nn_neurons_dict: {a: 1}\n"
	         "data_info: {sessions_kwargs: {}}\n", d.path);
	pt_expect_build_error(reg, yaml, "sessions_kwargs.a.cell_indices");
	remove_stas(&d, single_files);
}
