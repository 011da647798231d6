/*
** cmd_sweep.c: `fovea sweep CONFIG [key=value ...]`, openretina's
** hyper-parameter searches (its *_hparams_search.yaml configs, run by
** Hydra's Optuna sweeper with `openretina train -m`): the search space of
** hydra.sweeper.params (sweep.h), n_trials trials, each a `fovea train` of
** the config with the trial's values as overrides in its own directory,
** scored by the metric `objective_target` at the best epoch (the value
** train.py's final validation of the best checkpoint returns).
**
** Trials are spread over the processes of an MPI job and over the tasks of
** a Slurm array: trial t runs on worker t % workers.  Every trial writes
** DIR/t/trial.json (params, status, objective, error); a trial that fails
** is recorded failed and the search goes on.  The summary (DIR/summary.json
** and .csv) is written from the trial records once every worker of the
** job is done.
*/
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fovea/parallel.h"
#include "sweep_run.h"

static int set_value(sweep_args *a, const char *opt, const char *val)
{
	char *end;
	if (strcmp(opt, "--out") == 0) {
		a->out = val;
	} else if (strcmp(opt, "--sampler") == 0) {
		if (strcmp(val, "random") != 0 && strcmp(val, "grid") != 0)
			return cli_usage_error(&cli_cmd_sweep, "--sampler: expected random or grid, got "
			                                       "'%s'", val);
		a->sampler = val;
	} else { /* --threads */
		long v = strtol(val, &end, 10);
		if (*end != '\0' || v < 1 || v > 4096)
			return cli_usage_error(&cli_cmd_sweep, "--threads needs an integer in 1..4096, "
			                                       "got '%s'", val);
		a->threads = (int)v;
	}
	return CLI_OK;
}

static int parse_args(int argc, char **argv, sweep_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (strcmp(s, "--out") == 0 || strcmp(s, "--sampler") == 0 ||
		    strcmp(s, "--threads") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(&cli_cmd_sweep, "%s needs a value", s);
			int rc = set_value(a, s, argv[++i]);
			if (rc != CLI_OK)
				return rc;
		} else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
			a->quiet = true;
		} else if (s[0] == '-' && s[1] == '-') {
			return cli_usage_error(&cli_cmd_sweep, "unknown option '%s'", s);
		} else if (strchr(s, '=') != NULL || s[0] == '~') {
			a->overrides[a->n_overrides++] = s;
		} else if (a->config == NULL) {
			a->config = s;
		} else {
			return cli_usage_error(&cli_cmd_sweep, "unexpected argument '%s'", s);
		}
	}
	return a->config != NULL ? CLI_OK
	                         : cli_usage_error(&cli_cmd_sweep, "expected a config file");
}

/* Which worker this process is: MPI ranks within each task of a Slurm
** array. */
static void worker(int *index, int *count)
{
	const char *id = getenv("SLURM_ARRAY_TASK_ID"), *n = getenv("SLURM_ARRAY_TASK_COUNT");
	const char *min = getenv("SLURM_ARRAY_TASK_MIN");
	int task = 0, tasks = 1;
	if (id != NULL && n != NULL) {
		task = atoi(id) - (min != NULL ? atoi(min) : 0);
		tasks = atoi(n) > 0 ? atoi(n) : 1;
	}
	*index = task * fv_parallel_size() + fv_parallel_rank();
	*count = tasks * fv_parallel_size();
}

static int run_sweep(int argc, char **argv)
{
	sweep_args a = {.sampler = NULL};
	a.overrides = calloc((size_t)argc, sizeof *a.overrides);
	if (a.overrides == NULL)
		return cli_fail("out of memory");
	int rc = parse_args(argc, argv, &a);
	if (a.threads > 0)
		fv_set_num_threads(a.threads);
	sweep_study study = {0};
	if (rc == CLI_OK)
		rc = sweep_study_open(&study, &a);
	fv_registry *reg = rc == CLI_OK ? cli_load_registry() : NULL;
	if (rc == CLI_OK && reg == NULL)
		rc = CLI_FAILED;
	int index = 0, count = 1;
	worker(&index, &count);
	for (uint64_t t = (uint64_t)index; rc == CLI_OK && t < study.n_trials; t += (uint64_t)count)
		rc = sweep_run_trial(&study, reg, t);
	/* every worker of this job is done before its rank 0 sums them up */
	if (fv_parallel_barrier() != FV_OK && rc == CLI_OK)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && fv_parallel_rank() == 0)
		rc = sweep_write_summary(&study);
	fv_registry_free(reg);
	sweep_study_close(&study);
	free(a.overrides);
	return rc;
}

const cli_cmd cli_cmd_sweep = {
	.name = "sweep",
	.summary = "hyper-parameter search over hydra.sweeper.params (Hydra's Optuna sweeper)",
	.usage = "fovea sweep CONFIG.yaml [key=value ...] [--out DIR] [--sampler random|grid]\n"
	         "                         [--threads N] [--quiet]\n"
	         "\n"
	         "Run the hyper-parameter search a config describes, as openretina's\n"
	         "`openretina train -m` with Hydra's Optuna sweeper: hydra.sweeper.params maps\n"
	         "config keys to choice(a, b, ...), range(start, stop[, step]) (stop included),\n"
	         "interval(a, b) or tag(log, interval(a, b)); a key=choice(...) override joins\n"
	         "them.  hydra.sweeper.n_trials trials (default 20) each train the config with\n"
	         "their values as overrides, in DIR/N (N = 0, 1, ...), and are scored by the\n"
	         "metric named by the config's objective_target at the best epoch (without\n"
	         "it: the checkpoint monitor's best value); hydra.sweeper.direction\n"
	         "(minimize or maximize) picks the best trial.  A trial that fails (a bad\n"
	         "value, an error, a non-finite objective) is recorded failed; the search\n"
	         "goes on.  DIR gets\n"
	         "  N/trial.json       the trial: params, status, objective, error, seconds\n"
	         "  summary.json       the study (name, direction, sampler, seed) and every\n"
	         "                     trial, with the best one\n"
	         "  summary.csv        one row per trial: number, status, objective, params\n"
	         "\n"
	         "Samplers (hydra.sweeper.sampler.seed seeds them; null: the time, in a Slurm\n"
	         "array SLURM_ARRAY_JOB_ID):\n"
	         "  random   each trial's values drawn independently (the default, and what\n"
	         "           a config whose sampler is Optuna's TPE gets: fovea has no TPE)\n"
	         "  grid     every combination of choice and range values, the last key\n"
	         "           varying fastest, at most n_trials of them\n"
	         "\n"
	         "Under `mpirun -np N` (or srun) the trials are shared out over the N\n"
	         "processes, trial t on rank t % N; in a Slurm array each task takes its\n"
	         "share (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT) and every task must\n"
	         "name the same --out DIR.\n"
	         "\n"
	         "  --out DIR       the sweep directory (default: hydra.sweep.dir, else\n"
	         "                  multirun/DATE/TIME)\n"
	         "  --sampler S     random or grid (default: hydra.sweeper.sampler's\n"
	         "                  _target_ when it names Optuna's GridSampler, else random)\n"
	         "  --threads N     threads for the tensor ops of each trial\n"
	         "  --quiet         print only one line per trial, the outcome and errors\n",
	.run = run_sweep,
	.max_memory = true,
};
