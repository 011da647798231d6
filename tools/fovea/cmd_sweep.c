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
** a Slurm array: with the built-in samplers trial t runs on worker
** t % workers; with Optuna's, in batches of one trial per process.  Every trial writes
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
		if (strcmp(val, "random") != 0 && strcmp(val, "grid") != 0 && strcmp(val, "optuna") != 0)
			return cli_usage_error(&cli_cmd_sweep, "--sampler: expected random, grid or optuna, "
			                                       "got '%s'", val);
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

/* The built-in samplers: any process computes any trial's values, so
** trial t simply runs on worker t % workers. */
static int run_builtin(const sweep_study *s, fv_registry *reg, int index, int count)
{
	int rc = CLI_OK;
	double objective;
	for (uint64_t t = (uint64_t)index; rc == CLI_OK && t < s->n_trials; t += (uint64_t)count)
		rc = sweep_run_trial(s, reg, t, NULL, &objective);
	return rc;
}

/* Every rank learns whether any failed: they stop together. */
static int agree(int rc)
{
	double failed = rc != CLI_OK;
	if (fv_parallel_allreduce_sum(&failed, 1) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	return failed > 0 ? CLI_FAILED : CLI_OK;
}

/* Rank 0's text to every rank (*text malloc'd on the others). */
static int share_text(char **text)
{
	uint64_t len = fv_parallel_rank() == 0 ? strlen(*text) + 1 : 0;
	if (fv_parallel_broadcast(&len, sizeof len, 0) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (fv_parallel_rank() != 0 && (*text = malloc(len)) == NULL)
		return cli_fail("out of memory");
	return fv_parallel_broadcast(*text, len, 0) == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
}

/* This rank's trial of the batch (rank r runs the r-th): its number and
** the value of every entry of the space, in order. */
static int run_asked(const sweep_study *s, fv_registry *reg, json_t *batch, double *objectives)
{
	json_t *trial = json_array_get(batch, (size_t)fv_parallel_rank());
	if (trial == NULL)
		return CLI_OK; /* the last batch may be smaller than the job */
	json_t *params = json_object_get(trial, "params");
	char **values = calloc(s->space.n + 1, sizeof *values);
	if (values == NULL)
		return cli_fail("out of memory");
	for (size_t i = 0; i < s->space.n; i++)
		values[i] = (char *)json_string_value(json_object_get(params, s->space.params[i].key));
	for (size_t i = 0; i < s->space.n; i++)
		if (values[i] == NULL) {
			free(values);
			return cli_fail("sweep: Optuna's trial lacks a value of %s", s->space.params[i].key);
		}
	uint64_t number = (uint64_t)json_integer_value(json_object_get(trial, "number"));
	int rc = sweep_run_trial(s, reg, number, values, &objectives[fv_parallel_rank()]);
	free(values);
	return rc;
}

/* One batch, as Hydra's Optuna sweeper runs n_jobs trials at once: rank 0
** asks for one trial per rank, every rank runs its own, rank 0 tells
** Optuna the outcomes. */
static int run_batch(const sweep_study *s, fv_registry *reg, sweep_optuna *o, size_t k)
{
	int size = fv_parallel_size();
	json_t *batch = NULL;
	char *text = NULL;
	int rc = fv_parallel_rank() == 0 ? sweep_optuna_ask(o, k, &batch) : CLI_OK;
	if (rc == CLI_OK && fv_parallel_rank() == 0 &&
	    (text = json_dumps(batch, JSON_COMPACT)) == NULL)
		rc = cli_fail("out of memory");
	if ((rc = agree(rc)) == CLI_OK)
		rc = share_text(&text);
	if (rc == CLI_OK && batch == NULL && (batch = json_loads(text, 0, NULL)) == NULL)
		rc = cli_fail("sweep: rank %d cannot read the batch of trials", fv_parallel_rank());
	double *objectives = calloc((size_t)size, sizeof *objectives);
	if (rc == CLI_OK && objectives == NULL)
		rc = cli_fail("out of memory");
	if (rc == CLI_OK)
		rc = run_asked(s, reg, batch, objectives);
	if ((rc = agree(rc)) == CLI_OK && fv_parallel_allreduce_sum(objectives, (size_t)size) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	for (size_t i = 0; rc == CLI_OK && fv_parallel_rank() == 0 && i < k; i++)
		rc = sweep_optuna_tell(o, (uint64_t)json_integer_value(json_object_get(
		                                  json_array_get(batch, i), "number")), objectives[i]);
	free(objectives);
	free(text);
	json_decref(batch);
	return agree(rc);
}

/* Optuna's samplers: each task of a Slurm array runs its share of the
** trials in batches of one per rank, against the one shared study. */
static int run_optuna(sweep_study *s, fv_registry *reg, int task, int tasks)
{
	uint64_t quota = s->n_trials / (uint64_t)tasks + ((uint64_t)task < s->n_trials % (uint64_t)tasks);
	sweep_optuna *o = NULL;
	int rc = agree(fv_parallel_rank() == 0 ? sweep_optuna_open(s, task, &o) : CLI_OK);
	for (uint64_t done = 0; rc == CLI_OK && done < quota;) {
		uint64_t k = quota - done < (uint64_t)fv_parallel_size() ? quota - done
		                                                        : (uint64_t)fv_parallel_size();
		rc = run_batch(s, reg, o, (size_t)k);
		done += k;
	}
	/* the summary lists the whole study: other tasks' trials, earlier runs' */
	if (rc == CLI_OK && fv_parallel_rank() == 0)
		rc = sweep_optuna_count(o, &s->n_listed);
	sweep_optuna_close(o);
	return rc;
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
	if (rc == CLI_OK && study.sampler == SAMPLER_OPTUNA)
		rc = run_optuna(&study, reg, index / fv_parallel_size(), count / fv_parallel_size());
	else if (rc == CLI_OK)
		rc = run_builtin(&study, reg, index, count);
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
	.usage = "fovea sweep CONFIG.yaml [key=value ...] [--out DIR]\n"
	         "                         [--sampler random|grid|optuna]\n"
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
	         "  random   each trial's values drawn independently (the default)\n"
	         "  grid     every combination of choice and range values, the last key\n"
	         "           varying fastest, at most n_trials of them\n"
	         "  optuna   the sampler hydra.sweeper.sampler names (TPESampler, CmaEsSampler,\n"
	         "           ...), run by Optuna itself (Debian python3-optuna) by ask and\n"
	         "           tell, one batch of trials per round, one per process; the study\n"
	         "           in hydra.sweeper.storage, else DIR/optuna.db\n"
	         "\n"
	         "Under `mpirun -np N` (or srun) the trials are shared out over the N\n"
	         "processes, trial t on rank t % N; in a Slurm array each task takes its\n"
	         "share (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT) and every task must\n"
	         "name the same --out DIR.\n"
	         "\n"
	         "  --out DIR       the sweep directory (default: hydra.sweep.dir, else\n"
	         "                  multirun/DATE/TIME)\n"
	         "  --sampler S     random, grid or optuna (default: as hydra.sweeper.sampler's\n"
	         "                  _target_ names it: RandomSampler or none random,\n"
	         "                  GridSampler grid, any other optuna)\n"
	         "  --threads N     threads for the tensor ops of each trial\n"
	         "  --quiet         print only one line per trial, the outcome and errors\n",
	.run = run_sweep,
	.max_memory = true,
};
