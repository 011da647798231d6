/*
** sweep_run.h: a study of `fovea sweep` (cmd_sweep.c): its settings from
** the config's hydra.sweeper node, one trial, and the summary.
*/
#ifndef FOVEA_TOOLS_SWEEP_RUN_H
#define FOVEA_TOOLS_SWEEP_RUN_H

#include <jansson.h>

#include "cmd.h"
#include "sweep.h"

typedef struct sweep_args {
	const char *config, *out, *sampler;
	int n_overrides;
	const char **overrides; /* room for one per argument */
	int threads;
	bool quiet;
} sweep_args;

typedef struct sweep_study {
	const sweep_args *args;
	sweep_space space;
	sweep_sampler sampler;
	uint64_t seed, n_trials;
	bool seed_given;        /* hydra.sweeper.sampler.seed was set */
	uint64_t n_listed;      /* trials the summary lists (Optuna: the study's) */
	bool maximize;
	char *storage;          /* SAMPLER_OPTUNA: the study's storage URL */
	char *sampler_yaml;     /* SAMPLER_OPTUNA: hydra.sweeper.sampler */
	char *name, *objective; /* objective: NULL for the monitor's best value */
	char dir[4096];
	int n_fixed;            /* the command line's overrides that are not sweeps */
	const char **fixed;
} sweep_study;

/* Read the study from the config and the command line; CLI_OK, or an error
** reported.  Every process of an MPI job gets rank 0's directory and seed. */
int sweep_study_open(sweep_study *s, const sweep_args *a);
void sweep_study_close(sweep_study *s);
const char *sweep_sampler_name(sweep_sampler sampler); /* "random", "grid", "optuna" */

/* Run trial t and write DIR/t/trial.json: CLI_OK also when the trial
** failed (it is recorded so); an error only when the record cannot be
** written.  `given` holds the value of every entry of the space (a
** sampler outside fovea chose them), or is NULL for the built-in
** sampler's; *objective gets the trial's objective, NAN when it failed. */
int sweep_run_trial(const sweep_study *s, fv_registry *reg, uint64_t t, char *const *given,
                    double *objective);

/* ---- Optuna's samplers (sweep_optuna.c) ---------------------------------------- */

typedef struct sweep_optuna sweep_optuna;

/* Start the bridge and open (or create) the study; `task` offsets the
** sampler's seed for the tasks of a Slurm array. */
int sweep_optuna_open(const sweep_study *s, int64_t task, sweep_optuna **out);
/* `count` new trials: a JSON array of {"number", "params": {key: text}}. */
int sweep_optuna_ask(sweep_optuna *o, size_t count, json_t **trials);
/* The outcome of a trial asked for: its objective, or NAN for a failure. */
int sweep_optuna_tell(sweep_optuna *o, uint64_t number, double objective);
/* The number of trials in the study. */
int sweep_optuna_count(sweep_optuna *o, uint64_t *n);
void sweep_optuna_close(sweep_optuna *o); /* NULL is fine */

/* Write `j` (which this takes over) as DIR/NAME, atomically. */
int sweep_save_json(const char *dir, const char *name, json_t *j);

/* DIR/summary.json and DIR/summary.csv from the trial records there. */
int sweep_write_summary(const sweep_study *s);

#endif /* FOVEA_TOOLS_SWEEP_RUN_H */
