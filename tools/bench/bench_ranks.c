/*
** bench_ranks.c: fovea-bench --ranks 1,2: the train task data-parallel, as
** `mpirun fovea train` runs it (docs/parallel.md), over N processes.
**
** For each N, fovea-bench runs itself under `mpirun -np N` (with
** --ranks-child); there each rank computes its share of the workload's
** batch (rows r n/N to (r+1) n/N) with synced batch norm, the gradients are
** summed with one bucketed allreduce, then clipped and stepped.  Rank 0
** reports the step time (the job's: the allreduce waits for the slowest
** rank), the allreduce time per step (packing included) and the gradient
** bytes a step sends, which docs/scaling.md builds its model on.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fovea/parallel.h"
#include "fovea/trainer.h"

int bench_parse_ranks(bench_opts *o, const char *list)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list != NULL ? list : "");
	o->n_ranks = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long v = strtol(t, &end, 10);
		if (*end != '\0' || v < 1 || v > 4096 || o->n_ranks == MAX_LIST) {
			fprintf(stderr, "fovea-bench: --ranks: expected up to %d process counts in "
			        "1..4096, got '%s'\n", MAX_LIST, list);
			return 1;
		}
		o->rank_list[o->n_ranks++] = (int)v;
	}
	if (o->n_ranks == 0)
		fprintf(stderr, "fovea-bench: --ranks needs process counts, e.g. 1,2\n");
	return o->n_ranks == 0;
}

/* `mpirun -np n` of this program with its arguments and --ranks-child. */
static int launch(int n, int argc, char **argv)
{
	char np[16];
	snprintf(np, sizeof np, "%d", n);
	char **args = calloc((size_t)argc + 8, sizeof *args);
	if (args == NULL)
		return bench_fail("--ranks", "out of memory");
	int k = 0;
	args[k++] = "mpirun";
	args[k++] = "--allow-run-as-root";
	args[k++] = "--oversubscribe";
	args[k++] = "-np";
	args[k++] = np;
	args[k++] = "/proc/self/exe";
	for (int i = 1; i < argc; i++)
		args[k++] = argv[i];
	args[k++] = "--ranks-child";
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* the child execs mpirun, which starts this program N times */
		char self[4096];
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
		if (len > 0) {
			self[len] = '\0';
			args[5] = self;
		}
		execvp("mpirun", args);
		perror("fovea-bench: --ranks: mpirun");
		_exit(127);
	}
	free(args);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return bench_fail("--ranks", "cannot start mpirun");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int bench_launch_ranks(const bench_opts *o, int argc, char **argv)
{
	int rc = 0;
	for (int i = 0; i < o->n_ranks; i++)
		rc |= launch(o->rank_list[i], argc, argv);
	return rc;
}

/* The gradients, summed over the ranks through `buf` (their total size);
** *sent gets their bytes. */
static fv_status allreduce_grads(workload *w, float *buf, size_t *sent)
{
	size_t at = 0;
	for (size_t i = 0; i < w->n_params; i++)
		for (int64_t k = 0; w->params[i]->grad != NULL && k < w->params[i]->grad->numel; k++)
			buf[at++] = (float)w->params[i]->grad->data[k];
	fv_status rc = fv_parallel_allreduce_sum_float(buf, at);
	*sent = at * sizeof *buf;
	at = 0;
	for (size_t i = 0; i < w->n_params; i++)
		for (int64_t k = 0; w->params[i]->grad != NULL && k < w->params[i]->grad->numel; k++)
			w->params[i]->grad->data[k] = (fv_real)buf[at++];
	return rc;
}

/* Per step: the forward and backward of this rank's share (with synced
** batch norm), the wait for the slowest rank, the gradient allreduce. */
typedef struct step_ms {
	double compute, wait, allreduce;
} step_ms;

/* One data-parallel step, adding its times to *ms. */
static fv_status step(workload *w, fv_ctx *ctx, float *buf, step_ms *ms, size_t *sent)
{
	int64_t n = w->batch, size = fv_parallel_size(), r = fv_parallel_rank();
	int64_t lo = n >= size ? n * r / size : 0, hi = n >= size ? n * (r + 1) / size : n;
	fv_step_terms s;
	clock_pair t0 = bench_now();
	fv_status rc = fv_core_readout_step(ctx, w->model, w->loss, w->eval_loss,
	                                    fv_slice(ctx, w->x, 0, lo, hi, 1),
	                                    fv_slice(ctx, w->target, 0, lo, hi, 1), w->session, &s);
	if (rc == FV_OK)
		rc = fv_backward(ctx, s.total);
	/* the barrier keeps the load imbalance out of the allreduce's time */
	clock_pair t1 = bench_now();
	if (rc == FV_OK)
		rc = fv_parallel_barrier();
	clock_pair t2 = bench_now();
	if (rc == FV_OK)
		rc = allreduce_grads(w, buf, sent);
	clock_pair t3 = bench_now();
	ms->compute += t1.wall - t0.wall;
	ms->wait += t2.wall - t1.wall;
	ms->allreduce += t3.wall - t2.wall;
	if (rc == FV_OK) {
		fv_clip_grad_norm(w->n_params, w->params, 1.0);
		rc = fv_optimizer_step(w->opt);
	}
	fv_optimizer_zero_grad(w->opt);
	fv_ctx_reset(ctx);
	return rc;
}

static void report(const bench_opts *o, workload *w, double *times, const step_ms *ms,
                   size_t bytes)
{
	int n = fv_parallel_size();
	double step_ms = 0;
	for (int r = 0; r < o->reps; r++)
		step_ms += times[r] / o->reps;
	char extra[256];
	snprintf(extra, sizeof extra,
	         "\"ranks\": %d, \"compute_ms\": %.3f, \"wait_ms\": %.3f, \"allreduce_ms\": %.3f, "
	         "\"grad_bytes\": %zu",
	         n, ms->compute, ms->wait, ms->allreduce, bytes);
	char task[32];
	snprintf(task, sizeof task, "train/%d", n);
	double flops = 3 * (w->core_flops + w->readout_flops);
	measurement m = {w->name, task, w->batch, w->frames, flops, flops, 0, 0, 0, extra};
	bench_report(o, &m, times);
	if (!o->json)
		printf("    %d rank(s), batch %lld: step %.2f ms (mean): share %.2f, waiting %.2f, "
		       "allreduce %.3f (%.1f%%) of %zu gradient bytes\n",
		       n, (long long)w->batch, step_ms, ms->compute, ms->wait, ms->allreduce,
		       100 * ms->allreduce / step_ms, bytes);
}

/* The mean time of `reps` allreduces of n floats, after a barrier, in ms. */
static double allreduce_ms(float *buf, size_t n, int reps)
{
	fv_parallel_barrier();
	clock_pair t0 = bench_now();
	for (int r = 0; r < reps; r++)
		fv_parallel_allreduce_sum_float(buf, n);
	return (bench_now().wall - t0.wall) / reps;
}

/* The allreduce's latency (one float) and its time for 4 MiB, which
** docs/scaling.md's model takes as alpha and 1 / bandwidth. */
static void probe_allreduce(const bench_opts *o)
{
	size_t n = (size_t)1 << 20;
	float *buf = calloc(n, sizeof *buf);
	if (buf == NULL || fv_parallel_size() == 1) {
		free(buf);
		return;
	}
	double small = allreduce_ms(buf, 1, 1000), big = allreduce_ms(buf, n, 20);
	free(buf);
	if (fv_parallel_rank() != 0)
		return;
	if (o->json)
		printf("{\"task\": \"allreduce\", \"ranks\": %d, \"latency_us\": %.2f, "
		       "\"ms_4mib\": %.3f, \"gb_per_s\": %.3f}\n", fv_parallel_size(), 1e3 * small,
		       big, 4.194304 / big);
	else
		printf("    allreduce over %d ranks: %.2f us for one float, %.3f ms for 4 MiB "
		       "(%.2f GB/s)\n", fv_parallel_size(), 1e3 * small, big, 4.194304 / big);
}

int bench_train_ranks(const bench_opts *o, workload *w, double *times)
{
	size_t bytes = 0, sent = 0;
	for (size_t i = 0; i < w->n_params; i++)
		bytes += (size_t)w->params[i]->numel * sizeof(float);
	fv_ctx *ctx = fv_ctx_new();
	float *buf = malloc(bytes > 0 ? bytes : 1);
	if (ctx == NULL || buf == NULL) {
		fv_ctx_free(ctx);
		free(buf);
		return bench_fail(w->name, "out of memory");
	}
	fv_parallel_set_sync_batchnorm(true);
	fv_module_set_training(w->model, true);
	step_ms total = {0};
	fv_status rc = FV_OK;
	for (int r = -WARMUPS; rc == FV_OK && r < o->reps; r++) {
		/* every rank starts the step together */
		rc = fv_parallel_barrier();
		step_ms ms = {0};
		clock_pair t0 = bench_now();
		if (rc == FV_OK)
			rc = step(w, ctx, buf, &ms, &sent);
		bench_record(o, times, r, t0, bench_now());
		if (r >= 0) {
			total.compute += ms.compute / o->reps;
			total.wait += ms.wait / o->reps;
			total.allreduce += ms.allreduce / o->reps;
		}
	}
	fv_parallel_set_sync_batchnorm(false);
	fv_ctx_free(ctx);
	free(buf);
	if (rc != FV_OK)
		return bench_fail(w->name, fv_errmsg());
	if (fv_parallel_rank() == 0)
		report(o, w, times, &total, sent);
	probe_allreduce(o);
	return 0;
}
