/*
** test_dataset_stats.c: openretina's DatasetStatistics (dataset_stats.c)
** and the evaluation config (eval_config.c).
**
** The data are `openretina create-data`'s layout, written by
** fv_openretina_data_write: random noise, so no two frames are equal, and
** the two sessions share the movies.  The counts then follow from how the
** loaders cut the movies (data.h), worked out in the comments.
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/config.h"
#include "fovea/metrics.h"

static char dir[] = "/tmp/fovea_stats_XXXXXX";

static void make_data(void)
{
	cr_assert_not_null(mkdtemp(dir));
	fv_openretina_data_options o;
	fv_openretina_data_options_default(&o);
	o.num_colors = 1;
	o.clip_length = 5;
	int64_t n[2];
	cr_assert_eq(fv_openretina_data_write(dir, &o, n), FV_OK, "%s", fv_errmsg());
}

static void remove_data(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* Stimuli random_noise_0 .. 3 have 70 .. 73 clips of 5 frames; 2 and 3
** are the test stimuli.  Clips of 5 frames (clip_length), 4 of them for
** validation.  Validation: 4 clips, 20 frames, 4 transitions each: 16.
** Training: the other (70 + 71) * 5 - 20 = 685 frames; ten passes of
** chunks of 4 frames shifted at random cover all of them here, and the
** union with validation is the whole 705.  A test stimulus is one sample
** of all its frames (allow_over_boundaries): 72 * 5 = 360 frames and 359
** transitions, 73 * 5 = 365 and 364. */
Test(dataset_stats, counts_as_openretina, .init = make_data, .fini = remove_data)
{
	const char *tests[2] = {"random_noise_2", "random_noise_3"};
	fv_data_options o;
	fv_data_options_default(&o);
	o.data_dir = dir;
	o.test_names = tests;
	o.n_test_names = 2;
	o.clip_length = 5;
	o.num_val_clips = 4;
	o.train_chunk_size = 4;
	o.batch_size = 8;
	fv_data *d;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	fv_dataset_stats s;
	cr_assert_eq(fv_dataset_statistics(d, 42, 10, &s), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(s.n_sessions, 2);
	cr_expect_eq(s.unique_val_frames, 20);
	cr_expect_eq(s.unique_val_transitions, 16);
	cr_expect_eq(s.unique_train_frames, 685);
	cr_expect_eq(s.unique_train_val_frames, 705);
	/* chunks of 4 frames: never more transitions than 3 per 4 frames of a
	** pass, and shifted chunks add ones across chunk borders */
	cr_expect_gt(s.unique_train_transitions, 685 / 4 * 3);
	cr_expect_lt(s.unique_train_transitions, 685);
	cr_assert_eq(s.n_test, 2);
	cr_expect_str_eq(s.test_names[0], "random_noise_2");
	cr_expect_str_eq(s.test_names[1], "random_noise_3");
	cr_expect_eq(s.unique_test_frames[0], 360);
	cr_expect_eq(s.unique_test_transitions[0], 359);
	cr_expect_eq(s.unique_test_frames[1], 365);
	cr_expect_eq(s.unique_test_transitions[1], 364);
	/* one training pass of unshifted-or-shifted chunks covers less */
	fv_dataset_stats one;
	cr_assert_eq(fv_dataset_statistics(d, 42, 1, &one), FV_OK, "%s", fv_errmsg());
	cr_expect_leq(one.unique_train_frames, s.unique_train_frames);
	cr_expect_eq(one.unique_val_frames, 20);
	fv_dataset_stats_free(&one);
	fv_dataset_stats_free(&s);
	cr_expect_null(s.test_names);
	fv_data_close(d);
}

static fv_config *config_of(const char *yaml)
{
	char path[] = "/tmp/fovea_evalcfg_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	fv_config *cfg = fv_config_compose(path, NULL, 0, NULL);
	unlink(path);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return cfg;
}

/* configs/evaluation/default.yaml's defaults; model_path is required. */
Test(eval_config, defaults_and_errors)
{
	fv_config *cfg = config_of("evaluation:\n  model_path: m.safetensors\n");
	fv_eval_config ec;
	cr_assert_eq(fv_eval_config_parse(fv_node_get(fv_config_root(cfg), "evaluation"), &ec),
	             FV_OK, "%s", fv_errmsg());
	cr_expect_str_eq(ec.model_path, "m.safetensors");
	cr_expect_null(ec.model_tag);
	cr_expect_str_eq(ec.data_split, "test");
	cr_expect_not(ec.add_responses_to_model_results);
	cr_expect_null(ec.model_results_path);
	cr_expect_null(ec.summary_results_path);
	cr_expect_float_eq(ec.var_ratio_cutoff, 0.15, 1e-12);
	cr_expect(ec.compute_dataset_statistics);
	fv_config_free(cfg);

	cfg = config_of("evaluation:\n  data_split: train\n");
	cr_expect_neq(fv_eval_config_parse(fv_node_get(fv_config_root(cfg), "evaluation"), &ec),
	              FV_OK);
	cr_expect(strstr(fv_errmsg(), "model_path"), "%s", fv_errmsg());
	fv_config_free(cfg);

	cfg = config_of("evaluation:\n  model_path: m\n  data_splt: train\n");
	cr_expect_neq(fv_eval_config_parse(fv_node_get(fv_config_root(cfg), "evaluation"), &ec),
	              FV_OK);
	cr_expect(strstr(fv_errmsg(), "data_split"), "did you mean: %s", fv_errmsg());
	fv_config_free(cfg);

	cr_expect_neq(fv_eval_config_parse(NULL, &ec), FV_OK);
	cr_expect(strstr(fv_errmsg(), "no 'evaluation' node"), "%s", fv_errmsg());
}
