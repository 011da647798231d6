/*
** sweep_trial.c: one trial of `fovea sweep`: the config with the trial's
** values, a training run in DIR/t through fv_train (as `fovea train`
** runs it), the objective, and the record DIR/t/trial.json.  A failure
** of the trial itself is its record's status, not an error of the sweep.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fovea/config.h"
#include "fovea/trainer.h"
#include "sweep_run.h"

typedef struct trial {
	const sweep_study *study;
	uint64_t number;
	char dir[4200];
	char **values;          /* one per entry of the space */
	const char **overrides; /* the fixed ones, then KEY=VALUE per entry, then the dir */
	int n_overrides;
	double objective;       /* NAN until the best epoch's metric is seen */
	bool metric_missing;
	char error[2048];
} trial;

/* Remembers objective_target's value at every epoch that became the best. */
static fv_status on_epoch(void *ud, const fv_epoch_report *e)
{
	trial *t = ud;
	const char *want = t->study->objective;
	if (!e->best || want == NULL)
		return FV_OK;
	if (strcmp(want, "val_correlation") == 0) /* the trainer's name for the monitor too */
		want = "val_evaluation_loss";
	for (size_t i = 0; i < e->n_metrics; i++)
		if (strcmp(e->names[i], want) == 0) {
			t->objective = e->values[i];
			return FV_OK;
		}
	t->metric_missing = true;
	return FV_OK;
}

static bool add_override(trial *t, const char *fmt, const char *a, const char *b)
{
	int n = snprintf(NULL, 0, fmt, a, b);
	char *s = malloc((size_t)n + 1);
	if (s == NULL)
		return false;
	snprintf(s, (size_t)n + 1, fmt, a, b);
	t->overrides[t->n_overrides++] = s;
	return true;
}

/* The trial's values: given (copied), or the built-in sampler's. */
static bool choose_values(trial *t, char *const *given)
{
	const sweep_study *s = t->study;
	if (given == NULL)
		return sweep_trial_values(&s->space, s->sampler, s->seed, t->number, t->values);
	for (size_t i = 0; i < s->space.n; i++)
		if ((t->values[i] = strdup(given[i])) == NULL)
			return false;
	return true;
}

static bool build_overrides(trial *t, char *const *given)
{
	const sweep_study *s = t->study;
	size_t n = (size_t)s->n_fixed + s->space.n + 2;
	if ((t->values = calloc(s->space.n, sizeof *t->values)) == NULL ||
	    (t->overrides = calloc(n, sizeof *t->overrides)) == NULL)
		return false;
	if (!choose_values(t, given))
		return false;
	bool ok = true;
	for (int i = 0; ok && i < s->n_fixed; i++)
		ok = add_override(t, "%s%s", s->fixed[i], "");
	for (size_t i = 0; ok && i < s->space.n; i++)
		ok = add_override(t, "%s=%s", s->space.params[i].key, t->values[i]);
	/* the sweep reads objective_target, the trainer does not: no "not used" */
	if (ok && s->objective != NULL)
		ok = add_override(t, "~objective_target%s%s", "", "");
	return ok && add_override(t, "++paths.output_dir=%s%s", t->dir, "");
}

/* Train; the failure, if any, goes to t->error. */
static void train(trial *t, fv_registry *reg)
{
	const sweep_args *a = t->study->args;
	fv_config *cfg = fv_config_compose(a->config, NULL, t->n_overrides, t->overrides);
	fv_train_options o = {.struct_size = sizeof o, .progress = 0, .quiet = a->quiet,
	                      .ud = t, .on_epoch = on_epoch};
	fv_train_result res;
	if (cfg == NULL || fv_train(reg, cfg, &o, &res) != FV_OK)
		snprintf(t->error, sizeof t->error, "%s", fv_errmsg());
	else if (t->study->objective == NULL)
		t->objective = res.best_epoch >= 0 ? res.best_value : NAN;
	if (t->error[0] == '\0' && t->metric_missing)
		snprintf(t->error, sizeof t->error, "objective_target '%s' is not one of the run's "
		         "metrics (metrics.csv names them)", t->study->objective);
	else if (t->error[0] == '\0' && !isfinite(t->objective))
		snprintf(t->error, sizeof t->error, "the objective is %s (no epoch improved, or the "
		         "loss diverged)", isnan(t->objective) ? "NaN" : "infinite");
	fv_config_free(cfg);
}

static json_t *record(const trial *t, double seconds)
{
	const sweep_study *s = t->study;
	json_t *params = json_object();
	for (size_t i = 0; params != NULL && i < s->space.n; i++)
		json_object_set_new(params, s->space.params[i].key, json_string(t->values[i]));
	bool ok = t->error[0] == '\0';
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:f}", "number", (json_int_t)t->number,
	                 "status", ok ? "complete" : "failed", "params", params,
	                 "objective", ok ? json_real(t->objective) : json_null(),
	                 "error", ok ? json_null() : json_string(t->error), "dir", t->dir,
	                 "seconds", seconds);
}

static int write_record(const trial *t, double seconds)
{
	return sweep_save_json(t->dir, "trial.json", record(t, seconds));
}

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_outcome(const trial *t)
{
	printf("trial %llu:", (unsigned long long)t->number);
	for (size_t i = 0; i < t->study->space.n; i++)
		printf(" %s=%s", t->study->space.params[i].key, t->values[i]);
	if (t->error[0] == '\0')
		printf(" -> %.6g\n", t->objective);
	else
		printf(" -> failed: %s\n", t->error);
	fflush(stdout);
}

int sweep_run_trial(const sweep_study *s, fv_registry *reg, uint64_t number, char *const *given,
                    double *objective)
{
	trial t = {.study = s, .number = number, .objective = NAN};
	double t0 = seconds_now();
	snprintf(t.dir, sizeof t.dir, "%s/%llu", s->dir, (unsigned long long)number);
	int rc = CLI_OK;
	if (mkdir(t.dir, 0777) != 0 && errno != EEXIST)
		rc = cli_fail("cannot create %s: %s", t.dir, strerror(errno));
	if (rc == CLI_OK && !build_overrides(&t, given))
		rc = cli_fail("out of memory");
	if (rc == CLI_OK) {
		train(&t, reg);
		print_outcome(&t);
		rc = write_record(&t, seconds_now() - t0);
	}
	*objective = t.error[0] == '\0' ? t.objective : NAN;
	for (size_t i = 0; t.values != NULL && i < s->space.n; i++)
		free(t.values[i]);
	for (int i = 0; i < t.n_overrides; i++)
		free((void *)t.overrides[i]);
	free(t.values);
	free(t.overrides);
	return rc;
}
