/*
** test_trainer.c: the training loop (include/fovea/trainer.h).
**
**   - the learning-rate schedulers and early stopping, against sequences
**     worked out by hand from torch's and Lightning's definitions;
**   - whole runs of configs/example.yaml on a tiny synthetic data set: the
**     output directory, bit-for-bit repeatability, resume == uninterrupted,
**     fine-tuning with new sessions and a frozen core, early stopping,
**     evaluation of the result, and the errors of bad settings.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/metrics.h"
#include "fovea/trainer.h"
#include "eval_testing.h"
#include "plugin_testing.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

/* ---- schedulers -------------------------------------------------------------------- */

static fv_config *yaml(const char *text)
{
	fv_config *c = fv_config_load_string(text, strlen(text), "sched.yaml");
	cr_assert_not_null(c, "%s", fv_errmsg());
	return c;
}

static void parse_sched(fv_config *c, double lr, fv_lr_scheduler *s)
{
	cr_assert_eq(fv_lr_scheduler_parse(fv_config_root(c), lr, s), FV_OK, "%s", fv_errmsg());
}

/* Step through `metrics`, expecting the rate after each step. */
static void expect_rates(fv_lr_scheduler *s, double lr, int n, const double *metrics,
                         const double *rates)
{
	for (int i = 0; i < n; i++) {
		lr = fv_lr_scheduler_step(s, lr, metrics[i]);
		cr_expect_float_eq(lr, rates[i], 1e-12, "step %d: lr %.17g, expected %.17g", i, lr,
		                   rates[i]);
	}
}

/* mode max, abs threshold 0.1, patience 1: 1.0 is the first best; 1.05 and
** 1.08 are not above 1.1, so the second bad epoch (2 > patience) halves the
** rate; 1.2 is a new best; two more bad epochs halve it again. */
Test(scheduler, plateau_max_abs_patience)
{
	fv_config *c = yaml("_target_: torch.optim.lr_scheduler.ReduceLROnPlateau\nmode: max\n"
	                    "factor: 0.5\npatience: 1\nthreshold: 0.1\nthreshold_mode: abs\n"
	                    "min_lr: 0.01\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[] = {1.0, 1.05, 1.08, 1.2, 1.2, 1.2};
	double r[] = {1.0, 1.0, 0.5, 0.5, 0.5, 0.25};
	expect_rates(&s, 1.0, 6, m, r);
	cr_expect_eq(s.best, 1.2);
	fv_config_free(c);
}

/* mode min, rel threshold 0.1 (torch's default threshold_mode): after 10,
** only a value below 10 * 0.9 = 9 is better: 9.5 is bad, 8.9 is not. */
Test(scheduler, plateau_min_rel)
{
	fv_config *c = yaml("_target_: ReduceLROnPlateau\nfactor: 0.1\npatience: 0\n"
	                    "threshold: 0.1\nmin_lr: 0\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[] = {10, 8.9, 8.5, 7.9};
	double r[] = {1.0, 1.0, 0.1, 0.1};
	expect_rates(&s, 1.0, 4, m, r);
	fv_config_free(c);
}

/* patience 0, cooldown 2: a drop at the first bad epoch, then two epochs
** of cooldown in which bad epochs do not count, then the next drop. */
Test(scheduler, plateau_cooldown)
{
	fv_config *c = yaml("_target_: ReduceLROnPlateau\nmode: max\nfactor: 0.5\npatience: 0\n"
	                    "cooldown: 2\nmin_lr: 0\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[] = {5, 5, 5, 5, 5};
	double r[] = {1.0, 0.5, 0.5, 0.5, 0.25};
	expect_rates(&s, 1.0, 5, m, r);
	fv_config_free(c);
}

/* The floor: 0.02 * 0.5 = 0.01 is below min_lr 0.015, so the rate becomes
** 0.015; at the floor a further drop changes less than eps: no change. */
Test(scheduler, plateau_min_lr_and_eps)
{
	fv_config *c = yaml("_target_: ReduceLROnPlateau\nfactor: 0.5\npatience: 0\n"
	                    "min_lr: 0.015\n");
	fv_lr_scheduler s;
	parse_sched(c, 0.02, &s);
	double m[] = {1, 1, 1};
	double r[] = {0.02, 0.015, 0.015};
	expect_rates(&s, 0.02, 3, m, r);
	fv_config_free(c);
}

/* Without min_lr, openretina sets lr * factor^3; without a spec at all,
** its default ReduceLROnPlateau. */
Test(scheduler, plateau_defaults_as_openretina)
{
	fv_config *c = yaml("_target_: ReduceLROnPlateau\nfactor: 0.5\n");
	fv_lr_scheduler s;
	parse_sched(c, 0.08, &s);
	cr_expect_float_eq(s.min_lr, 0.01, 1e-15);
	fv_config_free(c);
	cr_assert_eq(fv_lr_scheduler_parse(NULL, 0.01, &s), FV_OK);
	cr_expect_eq(s.kind, FV_SCHED_PLATEAU);
	cr_expect(s.mode_max && !s.threshold_rel);
	cr_expect_eq(s.patience, 5);
	cr_expect_float_eq(s.factor, 0.3, 1e-15);
	cr_expect_float_eq(s.threshold, 0.0005, 1e-15);
	cr_expect_float_eq(s.min_lr, 0.01 * 0.027, 1e-15);
}

/* StepLR(step_size 2, gamma 0.1): epochs 2 and 4 decay. */
Test(scheduler, step_lr)
{
	fv_config *c = yaml("_target_: torch.optim.lr_scheduler.StepLR\nstep_size: 2\ngamma: 0.1\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[4] = {0};
	double r[] = {1.0, 0.1, 0.1, 0.01};
	expect_rates(&s, 1.0, 4, m, r);
	fv_config_free(c);
}

Test(scheduler, exponential_lr)
{
	fv_config *c = yaml("_target_: ExponentialLR\ngamma: 0.5\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[3] = {0};
	double r[] = {0.5, 0.25, 0.125};
	expect_rates(&s, 1.0, 3, m, r);
	fv_config_free(c);
}

/* CosineAnnealingLR(T_max 4, eta_min 0) from 1: the closed form
** (1 + cos(pi e / 4)) / 2 for e = 1..4, and past T_max the cosine rises
** again: e = 5 and 6 give (1 - cos(pi/4)) / 2 and 1/2. */
Test(scheduler, cosine_annealing)
{
	fv_config *c = yaml("_target_: CosineAnnealingLR\nT_max: 4\n");
	fv_lr_scheduler s;
	parse_sched(c, 1.0, &s);
	double m[6] = {0};
	double r[6];
	for (int e = 1; e <= 6; e++)
		r[e - 1] = (1 + cos(M_PI * e / 4)) / 2;
	expect_rates(&s, 1.0, 6, m, r);
	fv_config_free(c);
}

static void expect_sched_error(const char *text, const char *fragment)
{
	fv_config *c = yaml(text);
	fv_lr_scheduler s;
	cr_expect_eq(fv_lr_scheduler_parse(fv_config_root(c), 0.1, &s), FV_ERR_CONFIG);
	pt_expect_msg(fragment);
	fv_config_free(c);
}

/* As the trainer reads it: under lr_scheduler, placed at the value at fault. */
Test(scheduler, errors_are_placed)
{
	fv_config *c = yaml("lr_scheduler:\n  _target_: StepLR\n  step_size: 2\n  last_epoch: 3\n");
	fv_lr_scheduler s;
	const fv_config_node *spec = fv_node_get(fv_config_root(c), "lr_scheduler");
	cr_expect_eq(fv_lr_scheduler_parse(spec, 0.1, &s), FV_ERR_CONFIG);
	pt_expect_msg("sched.yaml:4:3: lr_scheduler.last_epoch: only -1 (a new run)");
	fv_config_free(c);
	c = yaml("lr_scheduler:\n  _target_: StepLr\n");
	spec = fv_node_get(fv_config_root(c), "lr_scheduler");
	cr_expect_eq(fv_lr_scheduler_parse(spec, 0.1, &s), FV_ERR_CONFIG);
	pt_expect_msg("sched.yaml:2:3: lr_scheduler._target_: unknown scheduler 'StepLr'; did you "
	              "mean 'StepLR'?");
	fv_config_free(c);
	c = yaml("lr_scheduler:\n  step_size: 2\n");
	spec = fv_node_get(fv_config_root(c), "lr_scheduler");
	cr_expect_eq(fv_lr_scheduler_parse(spec, 0.1, &s), FV_ERR_CONFIG);
	pt_expect_msg("sched.yaml:1:1: lr_scheduler: a scheduler needs a _target_");
	fv_config_free(c);
}

/* The model's spec is checked before anything is built from it. */
Test(model, spec_must_be_a_map)
{
	fv_config *c = yaml("seed: 1\nmodel: 3\n");
	cr_assert_null(fv_model_build(NULL, c, NULL, 0));
	cr_expect_eq(fv_errcode(), FV_ERR_CONFIG);
	pt_expect_msg("sched.yaml:2:1: model: expected a map (the model's spec)");
	fv_config_free(c);
	c = yaml("seed: 1\n");
	cr_assert_null(fv_model_build(NULL, c, NULL, 0));
	cr_expect_eq(fv_errcode(), FV_ERR_CONFIG);
	pt_expect_msg("model: expected a map (the model's spec); the configuration has no model key");
	fv_config_free(c);
}

Test(scheduler, bad_specs)
{
	expect_sched_error("_target_: torch.optim.lr_scheduler.StepLr\nstep_size: 2\n",
	                   "did you mean 'torch.optim.lr_scheduler.StepLR'?");
	expect_sched_error("_target_: CyclicLR\n", "unknown scheduler 'CyclicLR'");
	expect_sched_error("_target_: OneCycleLR\n", "missing required option 'max_lr' of OneCycleLR");
	expect_sched_error("mode: max\n", "a scheduler needs a _target_");
	expect_sched_error("_target_: ReduceLROnPlateau\npatiense: 3\n", "did you mean 'patience'");
	expect_sched_error("_target_: ReduceLROnPlateau\nfactor: 1.5\n", "factor");
	expect_sched_error("_target_: ReduceLROnPlateau\nthreshold_mode: relative\n",
	                   "threshold_mode");
	expect_sched_error("_target_: StepLR\ngamma: 0.5\n", "step_size");
	expect_sched_error("_target_: ExponentialLR\ngamma: 0.5\ninterval: batch\n", "interval");
	expect_sched_error("_target_: ReduceLROnPlateau\ninterval: step\n",
	                   "interval: ReduceLROnPlateau steps after validation");
	expect_sched_error("_target_: OneCycleLR\nmax_lr: 0.1\nepochs: 3\n",
	                   "epochs: give both epochs and steps_per_epoch");
	expect_sched_error("_target_: MultiStepLR\nmilestones: [3, -1]\n", "milestones");
}

/* ---- early stopping ----------------------------------------------------------------------- */

static fv_early_stopping parse_stop(const char *text)
{
	fv_config *c = yaml(text);
	fv_early_stopping e;
	cr_assert_eq(fv_early_stopping_parse(fv_config_root(c), &e), FV_OK, "%s", fv_errmsg());
	fv_config_free(c);
	return e;
}

/* max, min_delta 0.1, patience 2: 0.5 improves on -inf; 0.55 - 0.1 is not
** above 0.5 (wait 1); 0.65 - 0.1 is (new best 0.65); 0.7 and 0.7 are not
** 0.1 better: the second makes wait 2 = patience, stop. */
Test(early_stopping, max_mode_with_min_delta)
{
	fv_early_stopping e = parse_stop("monitor: val_evaluation_loss\nmode: max\n"
	                                 "min_delta: 0.1\npatience: 2\n");
	double v[] = {0.5, 0.55, 0.65, 0.7, 0.7};
	bool stop[] = {false, false, false, false, true};
	for (int i = 0; i < 5; i++)
		cr_expect_eq(fv_early_stopping_step(&e, v[i]), stop[i], "epoch %d", i);
	cr_expect_float_eq(e.best, 0.65, 1e-6);
}

/* min mode (Lightning's default): improved when value + min_delta < best. */
Test(early_stopping, min_mode)
{
	fv_early_stopping e = parse_stop("monitor: val_loss\nmin_delta: 0.5\npatience: 1\n");
	cr_expect_not(fv_early_stopping_step(&e, 10));
	cr_expect_not(fv_early_stopping_step(&e, 9));   /* 9.5 < 10: better */
	cr_expect(fv_early_stopping_step(&e, 8.6));     /* 9.1 is not < 9 */
}

/* check_finite (Lightning's default true) stops at NaN; without it a NaN
** is just not an improvement. */
Test(early_stopping, non_finite_values)
{
	fv_early_stopping e = parse_stop("monitor: val_loss\npatience: 2\n");
	cr_expect_not(fv_early_stopping_step(&e, 1));
	cr_expect(fv_early_stopping_step(&e, NAN));
	e = parse_stop("monitor: val_loss\npatience: 2\ncheck_finite: false\n");
	cr_expect_not(fv_early_stopping_step(&e, 1));
	cr_expect_not(fv_early_stopping_step(&e, NAN));
	cr_expect_eq(e.wait_count, 1);
}

Test(early_stopping, thresholds)
{
	fv_early_stopping e = parse_stop("monitor: val_correlation\nmode: max\npatience: 9\n"
	                                 "stopping_threshold: 0.9\ndivergence_threshold: 0.1\n");
	cr_expect_not(fv_early_stopping_step(&e, 0.5));
	cr_expect(fv_early_stopping_step(&e, 0.95));
	cr_expect(fv_early_stopping_step(&e, 0.05));
}

/* verbose: Lightning's log lines, one per verdict; strict and
** check_on_train_epoch_end as given (null: -1, the trainer decides). */
Test(early_stopping, verbose_messages_and_flags)
{
	/* the monitor's name is the config's: it stays alive while stepping */
	fv_config *c = yaml("monitor: val_correlation\nmode: max\npatience: 1\n"
	                    "min_delta: 0.01\nverbose: true\nstrict: false\n"
	                    "check_on_train_epoch_end: true\n");
	fv_early_stopping e;
	cr_assert_eq(fv_early_stopping_parse(fv_config_root(c), &e), FV_OK, "%s", fv_errmsg());
	cr_expect(e.verbose);
	cr_expect_not(e.strict);
	cr_expect_eq(e.on_train_epoch_end, 1);
	cr_expect_not(fv_early_stopping_step(&e, 0.5));
	cr_expect_str_eq(e.message, "Metric val_correlation improved. New best score: 0.500");
	cr_expect_not(fv_early_stopping_step(&e, 0.75));
	cr_expect_str_eq(e.message, "Metric val_correlation improved by 0.250 >= min_delta = 0.01. "
	                            "New best score: 0.750");
	cr_expect(fv_early_stopping_step(&e, 0.755));
	cr_expect_str_eq(e.message, "Monitored metric val_correlation did not improve in the last 1 "
	                            "records. Best score: 0.750. Signaling Trainer to stop.");
	cr_expect(fv_early_stopping_step(&e, NAN), "check_finite, Lightning's default");
	cr_expect_str_eq(e.message, "Monitored metric val_correlation = nan is not finite. Previous "
	                            "best value was 0.750. Signaling Trainer to stop.");
	fv_config_free(c);
	e = parse_stop("monitor: val_loss\n");
	cr_expect(e.strict, "Lightning's default");
	cr_expect_not(e.verbose);
	cr_expect_eq(e.on_train_epoch_end, -1);
	cr_expect(fv_early_stopping_step(&e, INFINITY));
	cr_expect_str_eq(e.message, "", "no lines without verbose");
}

Test(early_stopping, disabled_and_bad_specs)
{
	fv_early_stopping e;
	cr_assert_eq(fv_early_stopping_parse(NULL, &e), FV_OK);
	cr_expect_not(e.enabled);
	cr_expect_not(fv_early_stopping_step(&e, NAN));
	fv_config *c = yaml("mode: max\n");
	cr_expect_eq(fv_early_stopping_parse(fv_config_root(c), &e), FV_ERR_CONFIG);
	pt_expect_msg("missing required option 'monitor'");
	fv_config_free(c);
	c = yaml("monitor: x\nmode: maximum\n");
	cr_expect_eq(fv_early_stopping_parse(fv_config_root(c), &e), FV_ERR_CONFIG);
	pt_expect_msg("mode");
	fv_config_free(c);
}

/* ---- whole runs --------------------------------------------------------------------------- */

static fv_registry *reg;
static char tmp[256];

static void make_tmp(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/fovea_test_trainer_XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void remove_tmp(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

static const char *in_tmp(const char *name)
{
	static char p[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
	return p[k];
}

/* Two sessions (3 and 4 neurons), 1 x 6 x 5 pixels, 240 training frames. */
static void write_data(const char *name, int n_sessions)
{
	fv_synthetic_options o;
	fv_synthetic_options_default(&o);
	int64_t neurons[] = {3, 4, 5};
	o.seed = 3;
	o.n_sessions = n_sessions;
	o.n_neurons = neurons;
	o.n_n_neurons = 3;
	o.channels = 1;
	o.height = 6;
	o.width = 5;
	o.train_frames = 240;
	o.n_train_stimuli = 1;
	o.test_frames = 60;
	o.n_test_trials = 3;
	o.filter_length = 4;
	cr_assert_eq(fv_synthetic_write(in_tmp(name), &o), FV_OK, "%s", fv_errmsg());
}

/* configs/example.yaml scaled down to the tiny data set. */
static fv_config *config(const char *data, const char *out, int n_extra, const char **extra)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/../configs/example.yaml", FOVEA_TEST_SRCDIR);
	char data_arg[600], out_arg[600];
	snprintf(data_arg, sizeof data_arg, "paths.data_dir=%s", in_tmp(data));
	snprintf(out_arg, sizeof out_arg, "paths.output_dir=%s", in_tmp(out));
	const char *base[] = {
		data_arg, out_arg, "data_io.color_channels=1", "data_io.video_height=6",
		"data_io.video_width=5", "dataloader.batch_size=4", "dataloader.train_chunk_size=20",
		"dataloader.clip_length=40", "dataloader.num_val_clips=1",
		"model.core.temporal_kernel_sizes=[5]", "trainer.max_epochs=3", "seed=7",
	};
	const char *all[32];
	int n = 0;
	for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
		all[n++] = base[i];
	for (int i = 0; i < n_extra; i++)
		all[n++] = extra[i];
	fv_config *cfg = fv_config_compose(path, NULL, n, all);
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return cfg;
}

static fv_status train(const char *data, const char *out, int n_extra, const char **extra,
                       fv_train_result *res)
{
	fv_config *cfg = config(data, out, n_extra, extra);
	fv_train_options o = {.struct_size = sizeof o, .quiet = true};
	fv_status rc = fv_train(reg, cfg, &o, res);
	fv_config_free(cfg);
	return rc;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* metrics.csv without its last column (the wall time of each epoch). */
static char *metrics_without_time(const char *run)
{
	char path[600];
	snprintf(path, sizeof path, "%s/metrics.csv", in_tmp(run));
	char *s = read_text(path), *out = malloc(strlen(s) + 1), *o = out;
	for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char *comma = strrchr(line, ',');
		size_t n = comma ? (size_t)(comma - line) : strlen(line);
		memcpy(o, line, n);
		o += n;
		*o++ = '\n';
	}
	*o = '\0';
	free(s);
	return out;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Every tensor of two checkpoints, bit for bit. */
static void expect_same_tensors(const char *a, const char *b)
{
	fv_safetensors *x = fv_safetensors_open(a), *y = fv_safetensors_open(b);
	cr_assert(x && y, "%s", fv_errmsg());
	cr_assert_eq(fv_safetensors_count(x), fv_safetensors_count(y));
	for (size_t i = 0; i < fv_safetensors_count(x); i++) {
		const fv_st_entry *e = fv_safetensors_at(x, i);
		const fv_st_entry *f = fv_safetensors_find(y, e->name);
		cr_assert_not_null(f, "%s lacks %s", b, e->name);
		cr_assert_eq(e->nbytes, f->nbytes);
		cr_expect_eq(memcmp(e->data, f->data, e->nbytes), 0, "tensor %s differs", e->name);
	}
	fv_safetensors_close(x);
	fv_safetensors_close(y);
}

static void setup_runs(void)
{
	reg = PT_REGISTRY("cores", "readouts", "losses", "regularizers", "models");
	make_tmp();
}

static void teardown_runs(void)
{
	remove_tmp();
	fv_registry_free(reg);
}

#define RUN_TEST(name) Test(runs, name, .init = setup_runs, .fini = teardown_runs)

RUN_TEST(writes_the_output_directory)
{
	write_data("d", 2);
	fv_train_result res;
	cr_assert_eq(train("d", "run", 0, NULL, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.epochs, 3);
	cr_expect_str_eq(res.output_dir, in_tmp("run"));
	const char *files[] = {"config.yaml", "metrics.csv", "best.safetensors", "last.safetensors"};
	char path[600];
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", in_tmp("run"), files[i]);
		cr_expect_eq(access(path, F_OK), 0, "missing %s", path);
	}
	char *csv = metrics_without_time("run");
	cr_expect_eq(count_lines(csv), 4, "a header and 3 rows:\n%s", csv);
	cr_expect(strncmp(csv, "epoch,step,lr,train_loss,train_total_loss,", 42) == 0, "%s", csv);
	cr_expect(strstr(csv, "val_evaluation_loss") != NULL);
	free(csv);
	/* the saved config has what train.py fills in */
	snprintf(path, sizeof path, "%s/config.yaml", in_tmp("run"));
	char *yaml_text = read_text(path);
	cr_expect(strstr(yaml_text, "session_0: 3") != NULL, "n_neurons_dict missing:\n%s",
	          yaml_text);
	cr_expect(strstr(yaml_text, "data_info") == NULL, "data_info leaked into the config");
	free(yaml_text);
	/* the checkpoint rebuilds the model, with the state_dict names */
	snprintf(path, sizeof path, "%s/best.safetensors", in_tmp("run"));
	fv_checkpoint *ck = fv_checkpoint_open(path);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	const fv_data_info *info = fv_checkpoint_data_info(ck);
	cr_assert_not_null(info);
	cr_expect_eq(info->n_sessions, 2);
	cr_expect_eq(info->n_neurons[1], 4);
	cr_expect_eq(info->input_shape[1], 6);
	cr_expect_not_null(fv_safetensors_find(fv_checkpoint_tensors(ck),
	                                       "readout.session_1.mask_mean"));
	cr_expect_not_null(fv_safetensors_find(fv_checkpoint_tensors(ck),
	                                       "optimizer.readout.session_1.mask_mean.exp_avg"));
	fv_module *model = fv_model_load(reg, ck, NULL);
	cr_assert_not_null(model, "%s", fv_errmsg());
	cr_expect_not(fv_module_training(model));
	fv_module_free(model);
	fv_checkpoint_close(ck);
}

/* on_best sees each new best checkpoint once it is on disk. */
typedef struct best_calls {
	int n;
	int64_t last_epoch;
	char path[600];
	bool file_was_there;
} best_calls;

static void record_best(void *ud, const char *path, int64_t epoch)
{
	best_calls *b = ud;
	b->n++;
	b->last_epoch = epoch;
	snprintf(b->path, sizeof b->path, "%s", path);
	b->file_was_there = access(path, R_OK) == 0;
}

RUN_TEST(on_best_follows_the_best_checkpoint)
{
	write_data("d", 2);
	fv_config *cfg = config("d", "run", 0, NULL);
	best_calls calls = {0, -1, "", false};
	fv_train_options o = {.struct_size = sizeof o, .quiet = true, .on_best = record_best, .ud = &calls};
	fv_train_result res;
	cr_assert_eq(fv_train(reg, cfg, &o, &res), FV_OK, "%s", fv_errmsg());
	fv_config_free(cfg);
	cr_assert_geq(calls.n, 1, "no best checkpoint announced");
	cr_expect_leq(calls.n, res.epochs);
	cr_expect_eq(calls.last_epoch, res.best_epoch);
	char want[600];
	snprintf(want, sizeof want, "%s/best.safetensors", in_tmp("run"));
	cr_expect_str_eq(calls.path, want);
	cr_expect(calls.file_was_there, "on_best ran before %s was written", want);
}

RUN_TEST(same_seed_same_run)
{
	write_data("d", 2);
	cr_assert_eq(train("d", "a", 0, NULL, NULL), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(train("d", "b", 0, NULL, NULL), FV_OK, "%s", fv_errmsg());
	char *a = metrics_without_time("a"), *b = metrics_without_time("b");
	cr_expect_str_eq(a, b);
	free(a);
	free(b);
	char pa[600], pb[600];
	snprintf(pa, sizeof pa, "%s/last.safetensors", in_tmp("a"));
	snprintf(pb, sizeof pb, "%s/last.safetensors", in_tmp("b"));
	expect_same_tensors(pa, pb);
	/* another seed is another run */
	const char *seed[] = {"seed=8"};
	cr_assert_eq(train("d", "c", 1, seed, NULL), FV_OK, "%s", fv_errmsg());
	char *c = metrics_without_time("c");
	a = metrics_without_time("a");
	cr_expect_str_neq(a, c);
	free(a);
	free(c);
}

/* Train 4 epochs in one go and as 2 + 2 resumed; both must end the same. */
static void expect_resume_exact(int n_extra, const char **extra)
{
	write_data("d", 2);
	const char *four[8] = {"trainer.max_epochs=4"}, *two[8] = {"trainer.max_epochs=2"};
	const char *more[8] = {"trainer.max_epochs=4", "resume=true"};
	for (int i = 0; i < n_extra; i++)
		four[1 + i] = two[1 + i] = more[2 + i] = extra[i];
	cr_assert_eq(train("d", "whole", 1 + n_extra, four, NULL), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(train("d", "parts", 1 + n_extra, two, NULL), FV_OK, "%s", fv_errmsg());
	/* without resume=true the directory is refused */
	cr_expect_eq(train("d", "parts", 1 + n_extra, four, NULL), FV_ERR_CONFIG);
	pt_expect_msg("already holds a training run");
	pt_expect_msg("resume=true");
	fv_train_result res;
	cr_assert_eq(train("d", "parts", 2 + n_extra, more, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.epochs, 4);
	char *a = metrics_without_time("whole"), *b = metrics_without_time("parts");
	cr_expect_str_eq(a, b);
	free(a);
	free(b);
	char pa[600], pb[600];
	snprintf(pa, sizeof pa, "%s/last.safetensors", in_tmp("whole"));
	snprintf(pb, sizeof pb, "%s/last.safetensors", in_tmp("parts"));
	expect_same_tensors(pa, pb);
	snprintf(pa, sizeof pa, "%s/best.safetensors", in_tmp("whole"));
	snprintf(pb, sizeof pb, "%s/best.safetensors", in_tmp("parts"));
	expect_same_tensors(pa, pb);
}

RUN_TEST(resume_continues_exactly)
{
	expect_resume_exact(0, NULL);
}

/* The state of a restarting cosine and of accumulation survives too. */
RUN_TEST(resume_continues_warm_restarts_with_accumulation)
{
	const char *extra[] = {"lr_scheduler=cosine_annealing_warm_restarts", "lr_scheduler.T_0=1",
	                       "trainer.accumulate_grad_batches=3"};
	expect_resume_exact(3, extra);
}

/* OneCycleLR steps per optimizer step and cycles AdamW's beta1; its
** total_steps is fixed so that both runs have the same cycle. */
RUN_TEST(resume_continues_one_cycle)
{
	const char *extra[] = {"lr_scheduler=one_cycle_lr", "+lr_scheduler.total_steps=500",
	                       "trainer.accumulate_grad_batches=2"};
	expect_resume_exact(3, extra);
}

static float tensor_value(const char *ckpt, const char *name, int64_t i)
{
	fv_safetensors *st = fv_safetensors_open(ckpt);
	cr_assert_not_null(st, "%s", fv_errmsg());
	const fv_st_entry *e = fv_safetensors_find(st, name);
	cr_assert_not_null(e, "%s has no %s", ckpt, name);
	float v;
	memcpy(&v, (const char *)e->data + 4 * i, 4);
	fv_safetensors_close(st);
	return v;
}

/* Fine-tuning: a model trained on session_0 gets a readout for session_1;
** with only_train_readout the core stays as it was. */
RUN_TEST(fine_tuning_adds_sessions_and_freezes_the_core)
{
	write_data("one", 1);
	write_data("two", 2);
	const char *one_epoch[] = {"trainer.max_epochs=1"};
	cr_assert_eq(train("one", "base", 1, one_epoch, NULL), FV_OK, "%s", fv_errmsg());
	char base[600], load[700], tuned[600];
	snprintf(base, sizeof base, "%s/best.safetensors", in_tmp("base"));
	snprintf(load, sizeof load, "paths.load_model_path=%s", base);
	const char *tune[] = {"trainer.max_epochs=2", load, "only_train_readout=true"};
	cr_assert_eq(train("two", "tuned", 3, tune, NULL), FV_OK, "%s", fv_errmsg());
	snprintf(tuned, sizeof tuned, "%s/last.safetensors", in_tmp("tuned"));
	const char *core = "core.features.layer0.conv.sin_weights";
	for (int i = 0; i < 5; i++)
		cr_expect_eq(tensor_value(base, core, i), tensor_value(tuned, core, i),
		             "the frozen core changed");
	cr_expect_neq(tensor_value(base, "readout.session_0.bias", 0),
	              tensor_value(tuned, "readout.session_0.bias", 0), "the readout did not train");
	fv_checkpoint *ck = fv_checkpoint_open(tuned);
	cr_assert_not_null(ck, "%s", fv_errmsg());
	const fv_data_info *info = fv_checkpoint_data_info(ck);
	cr_expect_eq(info->n_sessions, 2);
	cr_expect_str_eq(info->sessions[1], "session_1");
	fv_module *model = fv_model_load(reg, ck, NULL);
	cr_expect_not_null(model, "a fine-tuned checkpoint rebuilds: %s", fv_errmsg());
	fv_module_free(model);
	fv_checkpoint_close(ck);
}

/* min_delta 10 makes every epoch after the first a non-improvement; with
** patience 1 the run stops after epoch 2 and keeps epoch 1's weights. */
RUN_TEST(early_stopping_stops_and_restores_the_best)
{
	write_data("d", 2);
	const char *stop[] = {"trainer.max_epochs=5",
	                      "training_callbacks.early_stopping.min_delta=10",
	                      "training_callbacks.early_stopping.patience=1"};
	fv_train_result res;
	cr_assert_eq(train("d", "run", 3, stop, &res), FV_OK, "%s", fv_errmsg());
	cr_expect(res.stopped_early);
	cr_expect_eq(res.epochs, 2);
	char *csv = metrics_without_time("run");
	cr_expect_eq(count_lines(csv), 3);
	free(csv);
}

static void expect_train_error(const char *setting, fv_status code, const char *fragment)
{
	write_data("d", 2);
	const char *extra[] = {setting};
	cr_expect_eq(train("d", "run", 1, extra, NULL), code, "%s", fv_errmsg());
	pt_expect_msg(fragment);
}

RUN_TEST(bad_trainer_key)
{
	expect_train_error("+trainer.max_epoch=3", FV_ERR_CONFIG, "did you mean 'max_epochs'?");
}

RUN_TEST(bad_monitor)
{
	expect_train_error("training_callbacks.early_stopping.monitor=val_corr", FV_ERR_CONFIG,
	                   "unknown monitor 'val_corr'");
}

RUN_TEST(bad_optimizer)
{
	expect_train_error("optimizer.betas=[0.9]", FV_ERR_CONFIG, "betas");
}

RUN_TEST(paths_are_strings)
{
	expect_train_error("paths.load_model_path=[a, b]", FV_ERR_CONFIG,
	                   "override 'paths.load_model_path=[a, b]': paths.load_model_path: expected a "
	                   "string");
	expect_train_error("paths.load_model_path=\?\?\?", FV_ERR_CONFIG,
	                   "override 'paths.load_model_path=\?\?\?': paths.load_model_path: missing "
	                   "value (\?\?\?): set it, e.g. paths.load_model_path=...");
}

/* The data's refusal of the seed comes back as it is, not as a guess. */
RUN_TEST(seed_out_of_numpy_range)
{
	expect_train_error("seed=4294967296", FV_ERR_ARG,
	                   "training seed 4294967296: must be between 0 and 2**32 - 1");
}

RUN_TEST(missing_data_directory)
{
	expect_train_error("paths.data_dir=/nonexistent/fovea", FV_ERR_NOTFOUND, "/nonexistent/fovea");
}

RUN_TEST(bad_trainer_values)
{
	expect_train_error("trainer.accumulate_grad_batches=0", FV_ERR_CONFIG,
	                   "accumulate_grad_batches");
	expect_train_error("+trainer.gradient_clip_algorithm=clamp", FV_ERR_CONFIG,
	                   "gradient_clip_algorithm");
	expect_train_error("+trainer.max_steps=-2", FV_ERR_CONFIG, "max_steps");
}

/* ---- accumulation, max_steps, min_epochs, per-step schedules ------------------------------- */

/* Column `col` (0: epoch, 1: step, 2: lr) of row `row` of metrics.csv. */
static double csv_value(const char *run, int row, int col)
{
	char path[600];
	snprintf(path, sizeof path, "%s/metrics.csv", in_tmp(run));
	char *s = read_text(path), *save = NULL;
	char *line = strtok_r(s, "\n", &save);
	for (int i = 0; i <= row && line != NULL; i++)
		line = strtok_r(NULL, "\n", &save);
	cr_assert_not_null(line, "%s has no row %d", path, row);
	char *field = line;
	for (int i = 0; i < col; i++)
		field = strchr(field, ',') + 1;
	double v = strtod(field, NULL);
	free(s);
	return v;
}

/* The training batches of one epoch of the tiny data: the steps of a
** one-epoch run without accumulation. */
static int64_t batches_per_epoch(void)
{
	const char *one[] = {"trainer.max_epochs=1"};
	cr_assert_eq(train("d", "one", 1, one, NULL), FV_OK, "%s", fv_errmsg());
	return (int64_t)csv_value("one", 0, 1);
}

/* accumulate_grad_batches 3: one optimizer step per 3 batches, the epoch's
** last (partial) window stepping too, per epoch. */
RUN_TEST(accumulation_steps_once_per_window)
{
	write_data("d", 2);
	int64_t n = batches_per_epoch();
	cr_assert_gt(n, 3);
	const char *acc[] = {"trainer.max_epochs=2", "trainer.accumulate_grad_batches=3"};
	fv_train_result res;
	cr_assert_eq(train("d", "run", 2, acc, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.epochs, 2);
	cr_expect_eq((int64_t)csv_value("run", 0, 1), (n + 2) / 3);
	cr_expect_eq((int64_t)csv_value("run", 1, 1), 2 * ((n + 2) / 3));
}

/* A window as long as the epoch (or longer) takes its only step at the
** epoch's last batch: every batch of epoch 1 sees the initial weights, so
** the logged training loss is the same for k = n and k = 2n (and one step). */
RUN_TEST(accumulation_window_spans_the_epoch)
{
	write_data("d", 2);
	int64_t n = batches_per_epoch();
	char k1[64], k2[64];
	snprintf(k1, sizeof k1, "trainer.accumulate_grad_batches=%lld", (long long)n);
	snprintf(k2, sizeof k2, "trainer.accumulate_grad_batches=%lld", (long long)(2 * n));
	const char *a[] = {"trainer.max_epochs=1", k1}, *b[] = {"trainer.max_epochs=1", k2};
	cr_assert_eq(train("d", "a", 2, a, NULL), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(train("d", "b", 2, b, NULL), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(csv_value("a", 0, 1), 1);
	cr_expect_eq(csv_value("b", 0, 1), 1);
	cr_expect_eq(csv_value("a", 0, 3), csv_value("b", 0, 3), "train_loss");
	cr_expect_neq(csv_value("one", 0, 3), csv_value("a", 0, 3), "k = 1 steps within the epoch");
}

/* max_steps ends the run after the step that reaches it, mid-epoch. */
RUN_TEST(max_steps_ends_the_run)
{
	write_data("d", 2);
	const char *steps[] = {"trainer.max_epochs=5", "+trainer.max_steps=2"};
	fv_train_result res;
	cr_assert_eq(train("d", "run", 2, steps, &res), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(res.epochs, 1);
	cr_expect_eq(csv_value("run", 0, 1), 2);
}

/* As early_stopping_stops_and_restores_the_best, but min_epochs 4: the
** stop requested after epoch 2 waits until epoch 4. */
RUN_TEST(min_epochs_delays_early_stopping)
{
	write_data("d", 2);
	const char *stop[] = {"trainer.max_epochs=6", "+trainer.min_epochs=4",
	                      "training_callbacks.early_stopping.min_delta=10",
	                      "training_callbacks.early_stopping.patience=1"};
	fv_train_result res;
	cr_assert_eq(train("d", "run", 4, stop, &res), FV_OK, "%s", fv_errmsg());
	cr_expect(res.stopped_early);
	cr_expect_eq(res.epochs, 4);
}

/* torch's _annealing_cos from `a` to `b`. */
static double cos_anneal(double a, double b, double pct)
{
	return b + (a - b) / 2 * (cos(M_PI * pct) + 1);
}

/* configs/lr_scheduler/one_cycle_lr.yaml (interval step) with accumulation
** 2 over 2 epochs: total_steps is Lightning's estimate, 2 ceil(n / 2), and
** the rate moves once per optimizer step: epoch 2 starts at the rate of
** step ceil(n / 2) of the cycle (model.learning_rate 0.02 is max_lr). */
RUN_TEST(one_cycle_steps_per_optimizer_step)
{
	write_data("d", 2);
	int64_t n = batches_per_epoch(), m = (n + 1) / 2;
	const char *oc[] = {"trainer.max_epochs=2", "trainer.accumulate_grad_batches=2",
	                    "lr_scheduler=one_cycle_lr", "+trainer.gradient_clip_algorithm=value",
	                    "trainer.gradient_clip_val=0.5"};
	cr_assert_eq(train("d", "run", 5, oc, NULL), FV_OK, "%s", fv_errmsg());
	double max_lr = 0.02, initial = max_lr / 25, final = initial / 1e4;
	double up_end = 0.3 * (double)(2 * m) - 1, down_end = (double)(2 * m) - 1;
	double want = (double)m <= up_end
	                      ? cos_anneal(initial, max_lr, (double)m / up_end)
	                      : cos_anneal(max_lr, final, ((double)m - up_end) / (down_end - up_end));
	cr_expect_float_eq(csv_value("run", 0, 2), initial, 1e-12 * initial);
	cr_expect_float_eq(csv_value("run", 1, 2), want, 1e-12 * want, "lr %.17g, expected %.17g",
	                   csv_value("run", 1, 2), want);
}

RUN_TEST(bad_fine_tuning_checkpoint)
{
	expect_train_error("paths.load_model_path=/nonexistent.safetensors", FV_ERR_IO,
	                   "/nonexistent.safetensors");
}

/* ---- evaluating the result ----------------------------------------------------------------- */

RUN_TEST(evaluate_a_trained_model)
{
	write_data("d", 2);
	cr_assert_eq(train("d", "run", 0, NULL, NULL), FV_OK, "%s", fv_errmsg());
	char path[600];
	snprintf(path, sizeof path, "%s/best.safetensors", in_tmp("run"));
	et_evaluated ev;
	et_evaluate(&ev, reg, path);
	fv_eval_result *r = ev.result;
	cr_expect_eq(fv_eval_n_neurons(r), 7);
	const fv_eval_summary *s = fv_eval_get_summary(r);
	cr_expect_eq(s->n_neurons_total, 7);
	cr_expect_eq(s->n_test_repeats_max, 3);
	cr_expect_eq(s->temporal_lag, 4, "a 5-frame temporal kernel consumes 4 frames");
	cr_expect_str_eq(s->data_split, "test");
	const fv_eval_neuron *e = fv_eval_neuron_at(r, 4);
	cr_expect_str_eq(e->session, "session_1");
	cr_expect_eq(e->index, 1);
	cr_expect_eq(e->n_trials, 3);
	cr_expect(e->corr >= -1 && e->corr <= 1);
	cr_expect(e->var_ratio > 0 && e->var_ratio <= 1);
	/* an unknown split */
	fv_eval_options eo = ev.opts;
	eo.split = "nope";
	fv_eval_result *none = NULL;
	cr_expect_eq(fv_evaluate(ev.model, ev.data, &eo, &none), FV_ERR_NOTFOUND);
	pt_expect_msg("data_split 'nope': no such dataloader (there are: train, validation, test)");
	snprintf(path, sizeof path, "%s/eval.csv", in_tmp("run"));
	cr_assert_eq(fv_eval_write_csv(r, path), FV_OK, "%s", fv_errmsg());
	char *csv = read_text(path);
	cr_expect(strncmp(csv, ",session,neuron_relative_idx,data_split,poisson_loss_to_average,"
	                       "corr_to_average,mse_to_average,feve,jackknife,var_ratio,corr_ceiling,"
	                       "corr_0,mse_0,corr_1,mse_1,corr_2,mse_2,channel,sign\n0,session_0,0,test,",
	                  204) == 0,
	          "%s", csv);
	cr_expect_eq(count_lines(csv), 8);
	free(csv);
	snprintf(path, sizeof path, "%s/eval.json", in_tmp("run"));
	cr_assert_eq(fv_eval_write_summary(r, path), FV_OK, "%s", fv_errmsg());
	char *json = read_text(path);
	cr_expect(strstr(json, "\"n_neurons_total\": 7,") != NULL, "%s", json);
	cr_expect(strstr(json, "\"filtering_applied\": true") != NULL, "%s", json);
	/* openretina's layout: two-space indent, None as null, a float as a float */
	cr_expect(strncmp(json, "{\n  \"model_path\": ", 18) == 0, "%s", json);
	cr_expect(strstr(json, ",\n  \"species\": null,\n") != NULL, "%s", json);
	cr_expect(strstr(json, "\"n_test_repeats_avg\": 3.0,\n") != NULL, "%s", json);
	cr_expect(strcmp(json + strlen(json) - 3, "\n}\n") == 0, "%s", json);
	free(json);
	et_free(&ev);
}
