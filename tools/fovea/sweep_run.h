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
	bool maximize;
	char *name, *objective; /* objective: NULL for the monitor's best value */
	char dir[4096];
	int n_fixed;            /* the command line's overrides that are not sweeps */
	const char **fixed;
} sweep_study;

/* Read the study from the config and the command line; CLI_OK, or an error
** reported.  Every process of an MPI job gets rank 0's directory and seed. */
int sweep_study_open(sweep_study *s, const sweep_args *a);
void sweep_study_close(sweep_study *s);

/* Run trial t and write DIR/t/trial.json: CLI_OK also when the trial
** failed (it is recorded so); an error only when the record cannot be
** written. */
int sweep_run_trial(const sweep_study *s, fv_registry *reg, uint64_t t);

/* Write `j` (which this takes over) as DIR/NAME, atomically. */
int sweep_save_json(const char *dir, const char *name, json_t *j);

/* DIR/summary.json and DIR/summary.csv from the trial records there. */
int sweep_write_summary(const sweep_study *s);

#endif /* FOVEA_TOOLS_SWEEP_RUN_H */
