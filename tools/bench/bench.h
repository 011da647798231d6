/*
** bench.h: what the parts of fovea-bench share.
**
**   bench_main.c       the command line, the clocks and the report lines;
**   bench_workloads.c  the model workloads (configs/bench/NAME.yaml) and
**                      their tasks fwd, fwd_all, train and stim;
**   bench_ops.c        the op tasks conv and readout;
**   bench_profile.c    --profile: a training step op by op;
**   bench_ranks.c      --ranks: the train task over MPI processes.
**   bench_data.c       the data task: reading a large data set, one epoch.
**
** A task runs its measurement WARMUPS times unrecorded, then o->reps times,
** recording each run's wall-clock and CPU time with bench_record() into
** `times` (2 * reps doubles), and prints one line with bench_report().
** Tasks return 0, or 1 after printing why they failed.
*/
#ifndef FOVEA_BENCH_H
#define FOVEA_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "fovea/config.h"
#include "fovea/optim.h"
#include "fovea/plugin.h"
#include "fovea/tensor.h"

#define MAX_LIST 8
#define WARMUPS 2

/* The data task's --data-* options (bench_data.c). */
typedef struct bench_data_opts {
	const char *layout; /* generic, openretina */
	const char *dir;    /* NULL: a temporary directory */
	int64_t sessions, neurons, frames, test_frames, channels, height, width;
} bench_data_opts;

typedef struct bench_opts {
	int thread_list[MAX_LIST];
	int n_threads;
	int threads; /* of the current measurement */
	int reps;
	bool json;
	bool conv, readout, fwd, fwd_all, train, stim;
	bool profile; /* --profile: the per-op profile of a training step instead */
	const char *workloads[MAX_LIST];
	int n_workloads;
	char workload_buf[512];
	const char *config_dir;
	int rank_list[MAX_LIST]; /* --ranks: process counts of the train task */
	int n_ranks;
	bool ranks_child;        /* --ranks-child: this is one of them, under mpirun */
	bool data; /* the data task */
	bench_data_opts data_opt;
} bench_opts;

typedef struct measurement {
	const char *workload, *task;
	int64_t batch, frames;
	double useful_flops, actual_flops;
	double min_ms, median_ms, max_ms;
	const char *extra_json; /* more "key": value pairs, or NULL */
} measurement;

/* Wall-clock time, and the CPU time of the process (all its threads): on a
** machine shared with other jobs the second is the steadier measure of the
** work done. */
typedef struct clock_pair {
	double wall, cpu;
} clock_pair;

/* ---- bench_main.c ---------------------------------------------------------------- */

clock_pair bench_now(void);
/* Run r's times: wall-clock in times[r], CPU in times[reps + r]; warm-up
** runs (r < 0) are not recorded. */
void bench_record(const bench_opts *o, double *times, int r, clock_pair t0, clock_pair t1);
/* One line (one JSON object with --json) for `m` from the recorded times,
** which it sorts. */
void bench_report(const bench_opts *o, measurement *m, double *times);
/* "fovea-bench: WHAT: WHY" on stderr; returns 1. */
int bench_fail(const char *what, const char *why);
/* Deterministic values in [-scale, scale). */
fv_tensor *bench_random_tensor(int ndim, const int64_t *shape, uint64_t seed, double scale);

/* ---- bench_workloads.c ------------------------------------------------------------- */

typedef struct workload {
	char name[64];
	fv_config *cfg;
	fv_registry *reg;
	fv_module *model, *loss, *eval_loss;
	fv_optimizer *opt;
	fv_tensor **params;
	size_t n_params;
	fv_tensor *x, *target;
	const char *session;
	int64_t batch, frames;
	double core_flops, readout_flops, readout_all_flops; /* forward, dense-equivalent */
} workload;

/* The workload `name` (configs/bench/NAME.yaml or a file), its model from
** `reg`, optimizer and random batch. */
int workload_load(const bench_opts *o, fv_registry *reg, const char *name, workload *w);
void workload_free(workload *w);
/* The model tasks of o for each of its workloads (loaded into ws). */
int bench_run_workloads(const bench_opts *o, workload *ws, double *times);

/* One training step as the train task times it. */
fv_status bench_train_step(workload *w, fv_ctx *ctx);

/* ---- bench_profile.c -------------------------------------------------------------------- */

/* The per-op profile of a training step of each workload. */
int bench_run_profile(const bench_opts *o, workload *ws);

/* ---- bench_ranks.c -------------------------------------------------------------------- */

/* --ranks LIST into o; run this program under mpirun for each count; the
** train task as one rank of such a job. */
int bench_parse_ranks(bench_opts *o, const char *list);
int bench_launch_ranks(const bench_opts *o, int argc, char **argv);
int bench_train_ranks(const bench_opts *o, workload *w, double *times);

/* ---- bench_ops.c ----------------------------------------------------------------------- */

/* The op tasks of o. */
int bench_run_ops(const bench_opts *o, double *times);

/* ---- bench_data.c ---------------------------------------------------------------------- */

void bench_data_defaults(bench_data_opts *d);
/* A --data-* option: 0 taken, 1 bad (reported), -1 not a data option. */
int bench_data_option(bench_opts *o, const char *opt, const char *value);
/* The data task; it runs before anything else is loaded (its peak RSS). */
int bench_run_data(const bench_opts *o);

#endif /* FOVEA_BENCH_H */
