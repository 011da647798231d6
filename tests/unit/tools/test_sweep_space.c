/*
** test_sweep_space.c: the search space of `fovea sweep` (tools/fovea/
** sweep_space.c): parsing hydra.sweeper.params entries as Hydra's Optuna
** sweeper reads them, the grid, and seeded random draws.
*/
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep.h"

/* sweep_space.c reports through the fovea program's cli_fail */
static char last_error[1024];
int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	return 1;
}

static sweep_space space;
static void reset(void) { last_error[0] = '\0'; }
static void drop(void) { sweep_space_free(&space); }
TestSuite(sweep_space, .init = reset, .fini = drop);

Test(sweep_space, choice_keeps_each_value_as_written)
{
	cr_assert(sweep_space_add(&space, "model.hidden_channels",
	                          "choice([8, 8], [16, 16], 'a, b', 3)", "p"));
	const sweep_param *p = &space.params[0];
	cr_assert_eq(p->kind, SWEEP_CHOICE);
	cr_assert_eq(p->n_choices, 4);
	cr_expect_str_eq(p->choices[0], "[8, 8]");
	cr_expect_str_eq(p->choices[1], "[16, 16]");
	cr_expect_str_eq(p->choices[2], "'a, b'");
	cr_expect_str_eq(p->choices[3], "3");
}

Test(sweep_space, range_includes_stop_as_optunas_int_distribution)
{
	cr_assert(sweep_space_add(&space, "a", "range(2, 10, 4)", "p"));
	cr_assert(sweep_space_add(&space, "b", "choice(x, y)", "p"));
	cr_assert_eq(sweep_grid_size(&space), 6); /* 2, 6, 10 times x, y */
	char *v[2];
	const char *want[6][2] = {{"2", "x"}, {"2", "y"}, {"6", "x"},
	                          {"6", "y"}, {"10", "x"}, {"10", "y"}};
	for (int t = 0; t < 6; t++) {
		cr_assert(sweep_trial_values(&space, SAMPLER_GRID, 0, (uint64_t)t, v));
		cr_expect_str_eq(v[0], want[t][0], "trial %d", t);
		cr_expect_str_eq(v[1], want[t][1], "trial %d", t);
		free(v[0]);
		free(v[1]);
	}
}

Test(sweep_space, float_range_and_fixed_value)
{
	cr_assert(sweep_space_add(&space, "lr", "range(0.5, 1.5, 0.5)", "p"));
	cr_assert(sweep_space_add(&space, "fixed", "42", "p"));
	cr_expect(!space.params[0].integer);
	cr_expect_eq(space.params[1].kind, SWEEP_FIXED);
	cr_assert_eq(sweep_grid_size(&space), 3);
	char *v[2];
	cr_assert(sweep_trial_values(&space, SAMPLER_GRID, 0, 2, v));
	cr_expect_str_eq(v[0], "1.5");
	cr_expect_str_eq(v[1], "42");
	free(v[0]);
	free(v[1]);
}

Test(sweep_space, log_interval_draws_stay_in_bounds_and_repeat_per_seed)
{
	cr_assert(sweep_space_add(&space, "g", "tag(log, interval(1e-5, 1e-2))", "p"));
	cr_assert(sweep_space_add(&space, "n", "interval(1, 4)", "p"));
	cr_expect(space.params[0].log && !space.params[0].integer);
	cr_expect(space.params[1].integer, "two integer bounds: IntDistribution");
	int below_1e3 = 0;
	bool seen[5] = {false};
	for (uint64_t t = 0; t < 200; t++) {
		char *a[2], *b[2];
		cr_assert(sweep_trial_values(&space, SAMPLER_RANDOM, 7, t, a));
		cr_assert(sweep_trial_values(&space, SAMPLER_RANDOM, 7, t, b));
		cr_expect_str_eq(a[0], b[0], "the same seed and trial draw the same value");
		double g = strtod(a[0], NULL);
		long n = strtol(a[1], NULL, 10);
		cr_expect(g >= 1e-5 && g <= 1e-2, "%g", g);
		cr_expect(n >= 1 && n <= 4, "%ld", n);
		below_1e3 += g < 1e-3;
		seen[n] = true;
		for (int k = 0; k < 2; k++)
			free(a[k]), free(b[k]);
	}
	/* uniform in log space: 2/3 of the draws below 1e-3 (uniform: 10%) */
	cr_expect(below_1e3 > 100 && below_1e3 < 170, "%d of 200 below 1e-3", below_1e3);
	cr_expect(seen[1] && seen[2] && seen[3] && seen[4], "every integer is drawn");
}

Test(sweep_space, log_tags_only_intervals)
{
	cr_assert(sweep_space_add(&space, "c", "tag(log, choice(1, 2))", "p"));
	cr_assert(sweep_space_add(&space, "r", "tag(log, range(1, 3))", "p"));
	cr_expect(space.params[0].kind == SWEEP_CHOICE && !space.params[0].log);
	cr_expect(space.params[1].kind == SWEEP_RANGE && !space.params[1].log);
}

Test(sweep_space, interval_has_no_grid)
{
	cr_assert(sweep_space_add(&space, "x", "interval(0, 1)", "p"));
	cr_expect_eq(sweep_grid_size(&space), 0);
	cr_expect(strstr(last_error, "x: an interval has no grid") != NULL, "%s", last_error);
}

Test(sweep_space, bad_entries_are_named)
{
	cr_expect(!sweep_space_add(&space, "x", "interval(2, 1)", "params.x"));
	cr_expect(strstr(last_error, "params.x: interval expects (start, end) numbers") != NULL,
	          "%s", last_error);
	cr_expect(!sweep_space_add(&space, "y", "range(1, 5, 0)", "params.y"));
	cr_expect(strstr(last_error, "params.y: range expects") != NULL, "%s", last_error);
	cr_expect(!sweep_space_add(&space, "z", "tag(log, interval(0, 2))", "params.z"));
	cr_expect(strstr(last_error, "params.z: tag(log, interval(a, b)) needs a > 0") != NULL, "%s",
	          last_error);
	cr_expect(!sweep_space_add(&space, "w", "choice()", "params.w"));
	cr_expect(!sweep_space_add(&space, "v", "range(a, b)", "params.v"));
	cr_expect(sweep_is_sweep("choice(1)") && !sweep_is_sweep("[1, 2]"));
}
