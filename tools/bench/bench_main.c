/*
** bench_main.c: fovea-bench, timings of the default retina models and of
** their hot ops: the command line, the clocks and the report lines.
**
**   fovea-bench [--workload hoefling,hdf5] [--task fwd,fwd_all,train,conv,readout]
**               [--threads 1,2] [--reps R] [--json] [--config-dir DIR] [--profile]
**               [--ranks 1,2]
**               (tasks: fwd, fwd_all, train, stim, conv, readout, data)
**               [--data-layout generic|openretina] [--data-dir DIR] [--data-sessions N]
**               [--data-neurons N] [--data-frames N] [--data-test-frames N]
**               [--data-channels N] [--data-height N] [--data-width N]
**
** The model tasks fwd, fwd_all, train and stim run on workloads
** (configs/bench/NAME.yaml, or a path to such a file; bench_workloads.c
** says what each measures); the op tasks conv and readout need none
** (bench_ops.c).  Without --task: the model tasks when --workload is given,
** else conv and readout.  Lists are comma-separated; every combination is
** measured.  --profile prints, instead of the tasks, one training step
** of each workload op by op (bench_profile.c).  --ranks N,... runs the train
** task data-parallel under `mpirun -np N` for each N (bench_ranks.c).
** The data task reads a large synthetic data set and one epoch of its
** batches (bench_data.c).
**
** GFLOP/s counts 2 per multiply-add of what torch computes: dense
** convolutions (the "useful" FLOPs), the readout, 3x the forward for a
** training step and 2x a batch-1 forward for an in-silico iteration (its
** backward needs the input gradient only).  For the conv task "actual" divides the FLOPs this path
** really performs.  Each measurement runs twice to warm up (the first run
** grows the step arena, the second touches the merged arena's pages), then
** R times; min/median/max are over the R runs, wall-clock, and cpu_min /
** cpu_median the same for the process's CPU time (all threads), which a
** machine shared with other jobs disturbs less.  With --json each
** measurement is one JSON object per line.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "fovea/parallel.h"

/* ---- clocks and reports -------------------------------------------------------------- */

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

clock_pair bench_now(void)
{
	return (clock_pair){clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_PROCESS_CPUTIME_ID)};
}

void bench_record(const bench_opts *o, double *times, int r, clock_pair t0, clock_pair t1)
{
	if (r < 0)
		return;
	times[r] = t1.wall - t0.wall;
	times[o->reps + r] = t1.cpu - t0.cpu;
}

static double peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_report(const bench_opts *o, measurement *m, double *times)
{
	m->median_ms = median(times, o->reps);
	m->min_ms = times[0];
	m->max_ms = times[o->reps - 1];
	double cpu_median = median(times + o->reps, o->reps), cpu_min = times[o->reps];
	double useful = m->useful_flops / (m->median_ms * 1e6);
	double actual = m->actual_flops / (m->median_ms * 1e6);
	if (o->json)
		printf("{\"workload\": \"%s\", \"task\": \"%s\", \"threads\": %d, \"batch\": %lld, "
		       "\"frames\": %lld, \"min_ms\": %.3f, \"median_ms\": %.3f, \"max_ms\": %.3f, "
		       "\"reps\": %d, \"gflops\": %.2f, \"actual_gflops\": %.2f, "
		       "\"peak_rss_mib\": %.1f, \"cpu_min_ms\": %.3f, \"cpu_median_ms\": %.3f%s%s}\n",
		       m->workload, m->task, o->threads, (long long)m->batch, (long long)m->frames,
		       m->min_ms, m->median_ms, m->max_ms, o->reps, useful, actual, peak_rss_mib(),
		       cpu_min, cpu_median, m->extra_json ? ", " : "", m->extra_json ? m->extra_json : "");
	else
		printf("%-30s %-8s %3d %9.2f %9.2f %9.2f %9.2f %8.1f %8.1f %8.0f\n", m->workload, m->task,
		       o->threads, m->min_ms, m->median_ms, m->max_ms, cpu_min, useful, actual,
		       peak_rss_mib());
	fflush(stdout);
}

fv_tensor *bench_random_tensor(int ndim, const int64_t *shape, uint64_t seed, double scale)
{
	fv_tensor *t = fv_tensor_new(ndim, shape);
	if (t == NULL)
		return NULL;
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (int64_t i = 0; i < t->numel; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		t->data[i] = (fv_real)(scale * ((double)(s >> 11) * 0x1.0p-53 * 2 - 1));
	}
	return t;
}

int bench_fail(const char *what, const char *why)
{
	fprintf(stderr, "fovea-bench: %s: %s\n", what, why);
	return 1;
}

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fovea-bench [--workload hoefling,hdf5|FILE.yaml] "
	           "[--task fwd,fwd_all,train,stim,conv,readout]\n"
	           "                   [--threads N[,N...]] [--reps R] [--json] "
	           "[--config-dir DIR] [--profile]\n"
	           "                   [--ranks N[,N...]]  (the train task under mpirun -np N)\n"
	           "                   [--data-layout generic|openretina] [--data-dir DIR] "
	           "[--data-sessions N]\n"
	           "                   [--data-neurons N] [--data-frames N] [--data-test-frames N]\n"
	           "                   [--data-channels N] [--data-height N] [--data-width N]\n");
}

static int parse_tasks(bench_opts *o, const char *list)
{
	static const char *const known = "fwd, fwd_all, train, stim, conv, readout, data";
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool *flag = strcmp(t, "fwd") == 0       ? &o->fwd
		             : strcmp(t, "fwd_all") == 0 ? &o->fwd_all
		             : strcmp(t, "train") == 0   ? &o->train
		             : strcmp(t, "stim") == 0    ? &o->stim
		             : strcmp(t, "conv") == 0    ? &o->conv
		             : strcmp(t, "readout") == 0 ? &o->readout
		             : strcmp(t, "data") == 0    ? &o->data
		                                         : NULL;
		if (flag != NULL) {
			*flag = true;
		} else {
			fprintf(stderr, "fovea-bench: --task: unknown task '%s' (known: %s)\n", t, known);
			return 1;
		}
	}
	return 0;
}

static int parse_int(const char *opt, const char *s, int lo, int *out)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;
	if (s == NULL || *s == '\0' || *end != '\0' || v < lo || v > 1 << 20) {
		fprintf(stderr, "fovea-bench: %s needs an integer >= %d; got '%s'\n", opt, lo,
		        s ? s : "");
		return 1;
	}
	*out = (int)v;
	return 0;
}

static int parse_threads(bench_opts *o, const char *list)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	o->n_threads = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->n_threads == MAX_LIST) {
			fprintf(stderr, "fovea-bench: --threads: at most %d values\n", MAX_LIST);
			return 1;
		}
		if (parse_int("--threads", t, 0, &o->thread_list[o->n_threads++]))
			return 1;
	}
	return o->n_threads == 0 ? parse_int("--threads", "", 0, &o->threads) : 0;
}

static int parse_workloads(bench_opts *o, const char *list)
{
	snprintf(o->workload_buf, sizeof o->workload_buf, "%s", list);
	o->n_workloads = 0;
	char *save = NULL;
	for (char *t = strtok_r(o->workload_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->n_workloads == MAX_LIST) {
			fprintf(stderr, "fovea-bench: --workload: at most %d workloads\n", MAX_LIST);
			return 1;
		}
		o->workloads[o->n_workloads++] = t;
	}
	if (o->n_workloads == 0)
		fprintf(stderr, "fovea-bench: --workload needs a name (hoefling, hdf5) or a file\n");
	return o->n_workloads == 0;
}

/* Without --task: the model tasks for workloads, else the op tasks; model
** tasks without --workload: the default model. */
static void default_tasks(bench_opts *o, bool tasks_given)
{
	if (o->profile && o->n_workloads == 0)
		o->workloads[o->n_workloads++] = "hoefling";
	if (!tasks_given) {
		o->fwd = o->fwd_all = o->train = o->n_workloads > 0;
		o->conv = o->readout = o->n_workloads == 0;
	}
	if ((o->fwd || o->fwd_all || o->train || o->stim) && o->n_workloads == 0)
		o->workloads[o->n_workloads++] = "hoefling";
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
	*o = (bench_opts){.n_threads = 1, .reps = 5};
	bench_data_defaults(&o->data_opt);
	bool tasks_given = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;
		int rc = strncmp(a, "--data-", 7) == 0 ? bench_data_option(o, a, v) : -1;
		if (rc >= 0)
			; /* a data task option */
		else if ((rc = 0), strcmp(a, "--threads") == 0)
			rc = v ? parse_threads(o, v) : parse_int(a, v, 0, &o->threads);
		else if (strcmp(a, "--reps") == 0)
			rc = parse_int(a, v, 1, &o->reps);
		else if (strcmp(a, "--task") == 0)
			rc = v == NULL || (tasks_given = true, parse_tasks(o, v));
		else if (strcmp(a, "--workload") == 0)
			rc = v == NULL || parse_workloads(o, v);
		else if (strcmp(a, "--ranks") == 0)
			rc = bench_parse_ranks(o, v);
		else if (strcmp(a, "--ranks-child") == 0)
			o->ranks_child = true, takes_value = false;
		else if (strcmp(a, "--config-dir") == 0)
			rc = (o->config_dir = v) == NULL;
		else if (strcmp(a, "--profile") == 0)
			o->profile = true, takes_value = false;
		else if (strcmp(a, "--json") == 0)
			o->json = true, takes_value = false;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "fovea-bench: unknown option '%s'\n", a);
			return 1;
		}
		if (rc != 0)
			return 1;
		i += takes_value;
	}
	default_tasks(o, tasks_given);
	return 0;
}

int main(int argc, char **argv)
{
	bench_opts o;
	if (parse_args(&o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	if (o.n_ranks > 0 && !o.ranks_child)
		return bench_launch_ranks(&o, argc, argv);
	if (fv_parallel_init() != FV_OK)
		return bench_fail("MPI", fv_errmsg());
	atexit(fv_parallel_finalize);
	if (o.data) { /* first, so that its peak RSS is its own */
		fv_set_num_threads(o.thread_list[0]);
		o.threads = fv_get_num_threads();
		if (bench_run_data(&o) != 0)
			return 1;
		if (!(o.fwd || o.fwd_all || o.train || o.stim || o.conv || o.readout || o.profile))
			return 0;
	}
	double *times = malloc(2 * (size_t)o.reps * sizeof *times);
	workload ws[MAX_LIST] = {0};
	fv_registry *reg = o.n_workloads > 0 ? fv_registry_new() : NULL;
	int rc = times == NULL;
	if (reg != NULL && fv_registry_load_default(reg) != FV_OK)
		rc = bench_fail("plugins", fv_errmsg());
	for (int i = 0; rc == 0 && i < o.n_workloads; i++)
		rc = workload_load(&o, reg, o.workloads[i], &ws[i]);
	if (rc == 0 && !o.json && !o.profile && fv_parallel_rank() == 0)
		printf("%-30s %-8s %3s %9s %9s %9s %9s %8s %8s %8s\n", "workload", "task", "thr",
		       "min_ms", "median_ms", "max_ms", "cpu_min", "GF/s", "act_GF/s", "peak_MiB");
	for (int t = 0; rc == 0 && t < o.n_threads; t++) {
		fv_set_num_threads(o.thread_list[t]);
		o.threads = fv_get_num_threads();
		if (o.profile) {
			rc |= bench_run_profile(&o, ws);
			continue;
		}
		rc |= bench_run_workloads(&o, ws, times);
		rc |= bench_run_ops(&o, times);
	}
	for (int i = 0; i < o.n_workloads; i++)
		workload_free(&ws[i]);
	fv_registry_free(reg);
	free(times);
	return rc;
}
