/*
** bench_profile.c: fovea-bench --profile, where a training step's time
** goes, op by op (fovea/profile.h's timers).
**
** After the warm-up steps, R training steps run with the timers on; every
** op's line gives its time per step (the mean over the R steps), wall-clock
** and CPU time of all threads, its share of the step's CPU time, GFLOP/s
** per core (over the CPU time) of the FLOPs it performs and of a dense
** conv3d's (convolutions and matmuls only), and the bytes its operands and
** saved buffers take with the rate per core that makes.  Rates are over
** CPU time because the machines this runs on are shared: wall-clock there
** includes other jobs' turns.  The last line is the step's time no op
** accounts for: gradient clipping, the optimizer, the context reset.
*/
#include <stdio.h>

#include "fovea/profile.h"
#include "bench.h"

static void shape_text(const fv_profile_entry *e, char *buf, size_t size)
{
	int n = snprintf(buf, size, "(");
	for (int d = 0; d < e->ndim && n > 0 && (size_t)n < size; d++)
		n += snprintf(buf + n, size - (size_t)n, "%s%lld", d ? "," : "", (long long)e->shape[d]);
	if (n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ")");
}

/* GFLOP/s (or GB/s) of `amount` over `ms`; 0 when nothing is counted. */
static double rate(double amount, double ms)
{
	return ms > 0 ? amount / (ms * 1e6) : 0;
}

static void print_entry(const bench_opts *o, const workload *w, const fv_profile_entry *e,
                        double steps, double step_ms)
{
	char shape[128];
	shape_text(e, shape, sizeof shape);
	double wall = e->ms / steps, ms = e->cpu_ms / steps, bytes = e->bytes / steps;
	double gf = rate(e->flops / steps, ms), dense = rate(e->dense_flops / steps, ms);
	const char *dir = e->backward ? "bwd" : "fwd";
	if (o->json)
		printf("{\"workload\": \"%s\", \"task\": \"profile\", \"threads\": %d, \"dir\": \"%s\", "
		       "\"op\": \"%s\", \"shape\": \"%s\", \"calls\": %.2f, \"ms\": %.4f, \"cpu_ms\": %.4f, "
		       "\"share\": %.4f, \"gflops\": %.2f, \"dense_gflops\": %.2f, \"mb\": %.3f, "
		       "\"gbps\": %.2f}\n",
		       w->name, o->threads, dir, e->op, shape, (double)e->calls / steps, wall, ms,
		       ms / step_ms, gf, dense, bytes * 1e-6, rate(bytes, ms));
	else
		printf("%-4s %-22s %-22s %5.1f %8.3f %8.3f %5.1f%% %7.1f %7.1f %8.2f %7.1f\n", dir,
		       e->op, shape, (double)e->calls / steps, wall, ms, 100 * ms / step_ms, gf, dense,
		       bytes * 1e-6, rate(bytes, ms));
}

static void print_profile(const bench_opts *o, const workload *w, double step_wall,
                          double step_ms)
{
	size_t count;
	const fv_profile_entry *entries = fv_profile_entries(&count);
	double steps = o->reps, accounted = 0;
	if (!o->json)
		printf("profile of %s, %d thread(s), batch %lld: mean of %d training steps, %.2f ms a "
		       "step (CPU %.2f ms)\n%-4s %-22s %-22s %5s %8s %8s %6s %7s %7s %8s %7s\n",
		       w->name, o->threads, (long long)w->batch, o->reps, step_wall, step_ms, "dir",
		       "op", "output", "calls", "ms", "cpu_ms", "share", "GF/s", "dense", "MB", "GB/s");
	for (size_t i = 0; i < count; i++) {
		print_entry(o, w, &entries[i], steps, step_ms);
		accounted += entries[i].cpu_ms / steps;
	}
	double rest = step_ms - accounted;
	if (o->json)
		printf("{\"workload\": \"%s\", \"task\": \"profile\", \"threads\": %d, \"step_ms\": %.4f, "
		       "\"step_cpu_ms\": %.4f, \"unattributed_cpu_ms\": %.4f}\n",
		       w->name, o->threads, step_wall, step_ms, rest);
	else
		printf("     %-54s %8.3f %5.1f%%\n", "(no op: clipping, optimizer, reset)", rest,
		       100 * rest / step_ms);
	fflush(stdout);
}

static int profile_workload(const bench_opts *o, workload *w)
{
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return bench_fail(w->name, fv_errmsg());
	fv_module_set_training(w->model, true);
	double wall = 0, cpu = 0;
	fv_status rc = FV_OK;
	for (int r = -WARMUPS; r < o->reps && rc == FV_OK; r++) {
		if (r == 0)
			fv_profile_start();
		clock_pair t0 = bench_now();
		fv_profile_mark();
		rc = bench_train_step(w, ctx);
		clock_pair t1 = bench_now();
		if (r >= 0) {
			wall += t1.wall - t0.wall;
			cpu += t1.cpu - t0.cpu;
		}
	}
	fv_profile_stop();
	fv_ctx_free(ctx);
	if (rc != FV_OK)
		return bench_fail(w->name, fv_errmsg());
	print_profile(o, w, wall / o->reps, cpu / o->reps);
	return 0;
}

int bench_run_profile(const bench_opts *o, workload *ws)
{
	int rc = 0;
	for (int i = 0; i < o->n_workloads && rc == 0; i++)
		rc = profile_workload(o, &ws[i]);
	return rc;
}
