/*
** test_lr_schedulers.c: every learning-rate scheduler of openretina's
** configs/lr_scheduler/ against torch's own trajectories, the reference
** cases tests/golden/lr_<scheduler>_{config,alt,...}: kwargs and the exact
** python floats of lr_float64 (and beta1_float64 for OneCycleLR's cycled
** momentum), stepped with input.metrics for ReduceLROnPlateau.  Only the
** scheduler runs here (no optimizer), in double: the rates must agree to
** 1e-12 relative.  Also the options the registry documents, and the
** trainer's estimate of its optimizer steps (OneCycleLR's default).
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/safetensors.h"
#include "fovea/trainer.h"
#include "plugin_testing.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

static double node_double(const fv_config_node *n)
{
	double v = NAN;
	cr_assert_eq(fv_node_to_double(n, &v), FV_OK, "%s", fv_errmsg());
	return v;
}

/* input.metrics of the case, or NULL (the caller frees). */
static float *read_metrics(const char *name, size_t *n)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/golden/%s.safetensors", FOVEA_TEST_SRCDIR, name);
	fv_safetensors *st = fv_safetensors_open(path);
	cr_assert_not_null(st, "%s", fv_errmsg());
	const fv_st_entry *e = fv_safetensors_find(st, "input.metrics");
	float *v = NULL;
	*n = 0;
	if (e != NULL) {
		v = malloc((size_t)e->numel * sizeof *v);
		cr_assert_eq(fv_safetensors_read(st, "input.metrics", v, e->numel), FV_OK);
		*n = (size_t)e->numel;
	}
	fv_safetensors_close(st);
	return v;
}

static void expect_close(const char *what, size_t i, double got, double want)
{
	cr_expect(fabs(got - want) <= 1e-12 * fabs(want), "%s[%zu] = %.17g, torch %.17g", what, i,
	          got, want);
}

/* The whole trajectory of case `name`: rate (and momentum) before each
** step and after the last. */
static void check_case(const char *name, fv_sched_kind kind)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/golden/%s.yaml", FOVEA_TEST_SRCDIR, name);
	fv_config *c = fv_config_load_file(path);
	cr_assert_not_null(c, "%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(c);
	const fv_config_node *lrs = fv_node_get(root, "lr_float64");
	const fv_config_node *betas = fv_node_get(root, "beta1_float64");
	cr_assert_not_null(lrs);
	size_t steps = fv_node_size(lrs) - 1, n_metrics = 0;
	float *metrics = read_metrics(name, &n_metrics);
	fv_lr_scheduler s;
	double lr = node_double(fv_node_get(root, "learning_rate"));
	cr_assert_eq(fv_lr_scheduler_parse(fv_node_get(root, "kwargs"), lr, &s), FV_OK, "%s",
	             fv_errmsg());
	cr_assert_eq(s.kind, kind);
	if (s.kind == FV_SCHED_ONE_CYCLE && s.total_steps == 0)
		s.total_steps = (int64_t)steps; /* the case's stand-in trainer */
	lr = fv_lr_scheduler_start(&s, lr);
	for (size_t i = 0;; i++) {
		expect_close("lr", i, lr, node_double(fv_node_at(lrs, i)));
		if (betas != NULL)
			expect_close("beta1", i, s.momentum, node_double(fv_node_at(betas, i)));
		if (i == steps)
			break;
		lr = fv_lr_scheduler_step(&s, lr, i < n_metrics ? metrics[i] : 0);
	}
	free(metrics);
	fv_config_free(c);
}

Test(lr_schedulers, step_lr)
{
	check_case("lr_step_config", FV_SCHED_STEP);
	check_case("lr_step_alt", FV_SCHED_STEP);
}

/* The alt case lists milestone 25 twice: gamma^2 there. */
Test(lr_schedulers, multi_step_lr)
{
	check_case("lr_multistep_config", FV_SCHED_MULTISTEP);
	check_case("lr_multistep_alt", FV_SCHED_MULTISTEP);
}

Test(lr_schedulers, exponential_lr)
{
	check_case("lr_exponential_config", FV_SCHED_EXPONENTIAL);
	check_case("lr_exponential_alt", FV_SCHED_EXPONENTIAL);
}

/* The alt case runs three periods past T_max: torch's recursive form rises
** again instead of staying at eta_min. */
Test(lr_schedulers, cosine_annealing_lr)
{
	check_case("lr_cosine_config", FV_SCHED_COSINE);
	check_case("lr_cosine_alt", FV_SCHED_COSINE);
}

Test(lr_schedulers, cosine_annealing_warm_restarts)
{
	check_case("lr_cosine_warm_restarts_config", FV_SCHED_COSINE_WARM);
	check_case("lr_cosine_warm_restarts_alt", FV_SCHED_COSINE_WARM);
}

/* config: cos annealing, total_steps from the trainer; alt: three phases,
** linear, stepped once past its last phase (the rate turns negative, as
** torch's extrapolation does). */
Test(lr_schedulers, one_cycle_lr)
{
	check_case("lr_one_cycle_config", FV_SCHED_ONE_CYCLE);
	check_case("lr_one_cycle_alt", FV_SCHED_ONE_CYCLE);
}

/* config: openretina's reduce_lr_on_plateau.yaml (abs threshold, min_lr from
** factor^3); rel_cooldown: relative threshold and cooldown. */
Test(lr_schedulers, reduce_lr_on_plateau)
{
	check_case("lr_plateau_config", FV_SCHED_PLATEAU);
	check_case("lr_plateau_rel_cooldown", FV_SCHED_PLATEAU);
}

/* ---- OneCycleLR's limits ---------------------------------------------------------------- */

static fv_lr_scheduler one_cycle(const char *yaml_text)
{
	fv_config *c = fv_config_load_string(yaml_text, strlen(yaml_text), "sched.yaml");
	cr_assert_not_null(c, "%s", fv_errmsg());
	fv_lr_scheduler s;
	cr_assert_eq(fv_lr_scheduler_parse(fv_config_root(c), 0.1, &s), FV_OK, "%s", fv_errmsg());
	fv_config_free(c);
	return s;
}

/* torch raises ValueError when stepped past total_steps; and without a
** total_steps the constructor cannot run. */
Test(lr_schedulers, one_cycle_limits)
{
	fv_lr_scheduler s = one_cycle("_target_: OneCycleLR\nmax_lr: 0.1\ntotal_steps: 4\n");
	double lr = fv_lr_scheduler_start(&s, 0.1);
	cr_expect_float_eq(lr, 0.1 / 25, 1e-15);
	cr_expect_float_eq(s.momentum, 0.95, 1e-15);
	for (int i = 0; i < 4; i++)
		lr = fv_lr_scheduler_step(&s, lr, 0);
	cr_expect(!isnan(lr));
	cr_expect(isnan(fv_lr_scheduler_step(&s, lr, 0)));
	pt_expect_msg("OneCycleLR: tried to step 5 times; total_steps is 4");
	s = one_cycle("_target_: OneCycleLR\nmax_lr: 0.1\n");
	cr_expect_eq(s.total_steps, 0);
	cr_expect(isnan(fv_lr_scheduler_start(&s, 0.1)));
	pt_expect_msg("OneCycleLR: total_steps is not set");
	s = one_cycle("_target_: OneCycleLR\nmax_lr: 0.1\nepochs: 3\nsteps_per_epoch: 5\n");
	cr_expect_eq(s.total_steps, 15);
	s = one_cycle("_target_: OneCycleLR\nmax_lr: 0.1\ncycle_momentum: false\ntotal_steps: 9\n");
	fv_lr_scheduler_start(&s, 0.1);
	cr_expect(isnan(s.momentum));
}

/* Lightning's estimated_stepping_batches: ceil(batches / k) per epoch,
** times max_epochs, capped by max_steps. */
Test(lr_schedulers, estimated_stepping_batches)
{
	cr_expect_eq(fv_estimated_stepping_batches(10, 1, 3, -1), 30);
	cr_expect_eq(fv_estimated_stepping_batches(10, 3, 3, -1), 12);
	cr_expect_eq(fv_estimated_stepping_batches(9, 3, 2, -1), 6);
	cr_expect_eq(fv_estimated_stepping_batches(10, 3, 3, 5), 5);
	cr_expect_eq(fv_estimated_stepping_batches(10, 1, 0, -1), 10);
}

/* `fovea describe OneCycleLR` reads the built-in table: every scheduler
** is there under both of its names, with the option table its parser uses
** (an option only OneCycleLR has is in its table). */
Test(lr_schedulers, described)
{
	const char *names[] = {"ReduceLROnPlateau", "StepLR", "MultiStepLR", "ExponentialLR",
	                       "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char full[128];
		snprintf(full, sizeof full, "torch.optim.lr_scheduler.%s", names[i]);
		const fv_builtin *b = fv_builtin_find(full);
		cr_assert_not_null(b, "%s", full);
		cr_expect_eq(b, fv_builtin_find(names[i]));
		cr_expect_str_eq(b->kind, "scheduler");
		cr_expect_not_null(b->options);
	}
	const fv_option *o = fv_builtin_find("OneCycleLR")->options;
	while (o->name != NULL && strcmp(o->name, "three_phase") != 0)
		o++;
	cr_expect_not_null(o->name, "OneCycleLR documents three_phase");
}
