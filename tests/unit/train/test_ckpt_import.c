/*
** test_ckpt_import.c: an openretina Lightning .ckpt opened as a fovea
** checkpoint (fv_checkpoint_open, fv_checkpoint_import,
** fv_checkpoint_write): the model config, the tensors and the data info
** it yields, and the errors of a file it cannot convert.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/checkpoint.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif
#define DATA FOVEA_TEST_SRCDIR "/data/ckpt/"

Test(ckpt_import, lightning_checkpoint_opens_as_fovea_checkpoint)
{
	fv_checkpoint *c = fv_checkpoint_open(DATA "hoefling_low_res_gmask.ckpt");
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_data_info *info = fv_checkpoint_data_info(c);
	cr_assert_not_null(info);
	cr_assert_eq(info->n_sessions, 3);
	/* sorted, as fovea keeps them */
	cr_assert_str_eq(info->sessions[0], "session_1_ventral1_20200226");
	cr_assert_str_eq(info->sessions[2], "session_3_dorsal1_20201021");
	cr_assert_eq(info->n_neurons[1], 27);
	cr_assert_eq(info->input_shape[0], 2);
	cr_assert_eq(info->input_shape[1], 18);
	cr_assert_eq(info->input_shape[2], 16);
	cr_assert_not_null(info->mean_activity[0]);
	cr_assert_float_eq(info->mean_activity[0]->data[0], 0.6024288535118103, 1e-6);
	cr_assert(info->stim_std > 0);
	const char *yaml = fv_checkpoint_model_config_yaml(c);
	cr_assert_not_null(yaml);
	cr_assert_not_null(strstr(yaml, "MultiGaussianMaskReadout"), "%s", yaml);
	cr_assert_null(strstr(yaml, "data_info"), "%s", yaml);
	cr_assert_null(strstr(yaml, "lr_scheduler"), "%s", yaml);
	const fv_st_entry *e = fv_safetensors_find(fv_checkpoint_tensors(c),
	                                           "core.features.layer0.conv.weight_spatial");
	cr_assert_not_null(e);
	cr_assert_eq(e->dtype, FV_DTYPE_F32);
	fv_checkpoint_close(c);
}

Test(ckpt_import, written_file_reopens_with_the_same_contents)
{
	char path[] = "/tmp/fovea_ckpt_import_XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	fv_checkpoint *c = fv_checkpoint_open(DATA "lnp_dummy_core.ckpt");
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_assert_eq(fv_checkpoint_write(c, path), FV_OK, "%s", fv_errmsg());
	fv_checkpoint *d = fv_checkpoint_open(path);
	cr_assert_not_null(d, "%s", fv_errmsg());
	cr_assert_str_eq(fv_checkpoint_model_config_yaml(c), fv_checkpoint_model_config_yaml(d));
	cr_assert_eq(fv_safetensors_count(fv_checkpoint_tensors(c)),
	             fv_safetensors_count(fv_checkpoint_tensors(d)));
	cr_assert_eq(fv_checkpoint_data_info(d)->n_sessions, 3);
	/* a checkpoint read from disk is not written again */
	cr_assert_eq(fv_checkpoint_write(d, path), FV_ERR_ARG);
	fv_checkpoint_close(d);
	fv_checkpoint_close(c);
	unlink(path);
}

Test(ckpt_import, without_hyper_parameters_needs_the_model)
{
	cr_assert_null(fv_checkpoint_open(DATA "single_cell_lnp.ckpt"));
	cr_assert_eq(fv_errcode(), FV_ERR_CONFIG);
	cr_assert_not_null(strstr(fv_errmsg(), "no hyper_parameters"), "%s", fv_errmsg());
	fv_checkpoint *c = fv_checkpoint_import(DATA "single_cell_lnp.ckpt",
	                                        DATA "single_cell_lnp.model.yaml");
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_data_info *info = fv_checkpoint_data_info(c);
	cr_assert_eq(info->n_sessions, 1);
	cr_assert_str_eq(info->sessions[0], "single_cell");
	cr_assert_eq(info->input_shape[1], 20);
	cr_assert_not_null(strstr(fv_checkpoint_model_config_yaml(c), "SingleCellSeparatedLNP"));
	fv_checkpoint_close(c);
}

/* tests/data/ckpt/make_pretrained.py: hoefling_low_res_gmask.ckpt with
** what openretina's test_step adds to data_info. */
Test(ckpt_import, pretrained_performance_is_kept)
{
	fv_checkpoint *c = fv_checkpoint_open(DATA "pretrained_performance.ckpt");
	cr_assert_not_null(c, "%s", fv_errmsg());
	const char *text = fv_safetensors_meta(fv_checkpoint_tensors(c), "pretrained_performance");
	cr_assert_not_null(text);
	json_error_t e;
	json_t *root = json_loads(text, 0, &e);
	cr_assert_not_null(root, "%s", text);
	cr_assert_str_eq(json_string_value(json_object_get(root, "metric")), "test CorrelationLoss3d");
	cr_assert_eq(json_integer_value(json_object_get(root, "model_cut_frames")), 30);
	json_t *sessions = json_object_get(root, "sessions");
	cr_assert_eq(json_object_size(sessions), 3);
	json_t *s1 = json_object_get(sessions, "session_1_ventral1_20200226");
	cr_assert_eq(json_array_size(s1), 14);
	for (size_t k = 0; k < 14; k++)
		cr_assert_float_eq(json_number_value(json_array_get(s1, k)), k / 16.0 - 0.25, 1e-12);
	cr_assert_eq(json_array_size(json_object_get(sessions, "session_2_ventral2_20200626")), 27);
	/* a 0-dim tensor (a loss without per-neuron values) is one number */
	json_t *s3 = json_object_get(sessions, "session_3_dorsal1_20201021");
	cr_assert(json_is_number(s3));
	cr_assert_float_eq(json_number_value(s3), 0.375, 1e-12);
	json_decref(root);
	/* the model is the fixture's */
	fv_checkpoint *h = fv_checkpoint_open(DATA "hoefling_low_res_gmask.ckpt");
	cr_assert_not_null(h, "%s", fv_errmsg());
	cr_assert_eq(fv_safetensors_count(fv_checkpoint_tensors(h)),
	             fv_safetensors_count(fv_checkpoint_tensors(c)));
	cr_assert_null(fv_safetensors_meta(fv_checkpoint_tensors(h), "pretrained_performance"));
	fv_checkpoint_close(h);
	fv_checkpoint_close(c);
}

Test(ckpt_import, hostile_file_is_refused)
{
	cr_assert_null(fv_checkpoint_open(DATA "hostile/reduce_posix_system.ckpt"));
	cr_assert_not_null(strstr(fv_errmsg(), "posix.system"), "%s", fv_errmsg());
	cr_assert_eq(access("/tmp/fovea_pwned", F_OK), -1);
}
