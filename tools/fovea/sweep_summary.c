/*
** sweep_summary.c: DIR/summary.json and DIR/summary.csv of `fovea sweep`,
** from the records DIR/t/trial.json that the trials wrote (whichever
** process or Slurm task ran them).  A trial without a record is listed as
** missing: it has not run (another array task's) or its process died.
*/
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/figure.h"
#include "sweep_run.h"

static json_t *load_trial(const sweep_study *s, uint64_t t)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/%llu/trial.json", s->dir, (unsigned long long)t);
	json_t *j = json_load_file(path, 0, NULL);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		j = json_pack("{s:I, s:s}", "number", (json_int_t)t, "status", "missing");
	}
	return j;
}

/* The best complete trial's record in `trials`, or NULL. */
static json_t *best_of(const sweep_study *s, json_t *trials)
{
	json_t *best = NULL;
	size_t i;
	json_t *t;
	json_array_foreach(trials, i, t) {
		json_t *v = json_object_get(t, "objective");
		if (!json_is_number(v))
			continue;
		double x = json_number_value(v);
		double b = best ? json_number_value(json_object_get(best, "objective")) : 0;
		if (best == NULL || (s->maximize ? x > b : x < b))
			best = t;
	}
	return best;
}

/* A CSV field, quoted when it holds a comma, quote or newline. */
static void csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void csv_row(FILE *f, const sweep_study *s, json_t *t)
{
	json_t *obj = json_object_get(t, "objective"), *params = json_object_get(t, "params");
	fprintf(f, "%lld,%s,", (long long)json_integer_value(json_object_get(t, "number")),
	        json_string_value(json_object_get(t, "status")));
	if (json_is_number(obj))
		fprintf(f, "%.17g", json_number_value(obj));
	fputc(',', f);
	if (json_is_number(json_object_get(t, "seconds")))
		fprintf(f, "%.3f", json_number_value(json_object_get(t, "seconds")));
	for (size_t k = 0; k < s->space.n; k++) {
		const char *v = json_string_value(json_object_get(params, s->space.params[k].key));
		fputc(',', f);
		csv_field(f, v ? v : "");
	}
	fputc(',', f);
	const char *err = json_string_value(json_object_get(t, "error"));
	csv_field(f, err ? err : "");
	fputc('\n', f);
}

static int write_csv(const sweep_study *s, json_t *trials)
{
	char *text = NULL, path[4300];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return cli_fail("out of memory");
	fputs("number,status,objective,seconds", f);
	for (size_t k = 0; k < s->space.n; k++) {
		fputc(',', f);
		csv_field(f, s->space.params[k].key);
	}
	fputs(",error\n", f);
	size_t i;
	json_t *t;
	json_array_foreach(trials, i, t)
		csv_row(f, s, t);
	fclose(f);
	snprintf(path, sizeof path, "%s/summary.csv", s->dir);
	int rc = fv_write_file_atomic(path, text, len) == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	free(text);
	return rc;
}

int sweep_save_json(const char *dir, const char *name, json_t *j)
{
	char path[4300];
	char *text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int rc = text != NULL ? CLI_OK : cli_fail("out of memory");
	if (rc == CLI_OK && fv_write_file_atomic(path, text, strlen(text)) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	free(text);
	json_decref(j);
	return rc;
}

static int write_json(const sweep_study *s, json_t *trials, json_t *best)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:O, s:O}", "study_name", s->name,
	                      "direction", s->maximize ? "maximize" : "minimize",
	                      "sampler", sweep_sampler_name(s->sampler),
	                      "seed", (json_int_t)s->seed, "n_trials", (json_int_t)s->n_listed,
	                      "objective_target",
	                      s->objective ? json_string(s->objective) : json_null(),
	                      "best_trial", best ? best : json_null(), "trials", trials);
	if (j != NULL && s->storage != NULL) /* Optuna's study, for its own tools */
		json_object_set_new(j, "storage", json_string(s->storage));
	return sweep_save_json(s->dir, "summary.json", j);
}

int sweep_write_summary(const sweep_study *s)
{
	json_t *trials = json_array();
	size_t failed = 0, done = 0;
	for (uint64_t t = 0; trials != NULL && t < s->n_listed; t++) {
		json_t *r = load_trial(s, t);
		const char *status = json_string_value(json_object_get(r, "status"));
		failed += status != NULL && strcmp(status, "failed") == 0;
		done += status != NULL && strcmp(status, "complete") == 0;
		json_array_append_new(trials, r);
	}
	if (trials == NULL)
		return cli_fail("out of memory");
	json_t *best = best_of(s, trials);
	int rc = write_csv(s, trials);
	if (rc == CLI_OK)
		rc = write_json(s, trials, best);
	if (rc == CLI_OK) /* the outcome, --quiet or not */
		printf("sweep %s: %zu complete, %zu failed, %zu not run; summary in %s/summary.{json,"
		       "csv}\n", s->name, done, failed, (size_t)s->n_listed - done - failed, s->dir);
	if (rc == CLI_OK && best != NULL)
		printf("best trial %lld: objective %.6g\n",
		       (long long)json_integer_value(json_object_get(best, "number")),
		       json_number_value(json_object_get(best, "objective")));
	json_decref(trials);
	return rc == CLI_OK && done == 0 ? cli_fail("sweep %s: no trial completed", s->name) : rc;
}
