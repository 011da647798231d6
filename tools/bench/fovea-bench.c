/*
** fovea-bench.c: timings of the default retina models and of their hot ops.
**
**   fovea-bench [--workload hoefling,hdf5] [--task fwd,fwd_all,train,conv,readout]
**               [--threads 1,2] [--reps R] [--json] [--config-dir DIR]
**               (tasks: fwd, fwd_all, train, stim, conv, readout)
**
** Model workloads (configs/bench/NAME.yaml, or a path to such a file): a
** UnifiedCoreReadout built from the file's `model` spec, run on a random
** batch of `batch` clips of the spec's in_shape.
**   fwd      eval-mode forward of one session (the file's `session`),
**            without recording (torch.no_grad())
**   fwd_all  the same for every session (no data key: all readouts,
**            concatenated)
**   train    one training step as fovea's trainer runs it: train-mode
**            forward, PoissonLoss3d + core and readout regularizers
**            (fv_core_readout_step, with the correlation metric it logs),
**            backward, gradient-norm clipping to 1.0, AdamW step, gradients
**            dropped to none, context reset.  It also checks that memory is
**            flat from the second step on: the step arena's malloc count
**            and the resident set after step 2 and after the last step.
**   stim     one in-silico iteration at batch 1 (fv_optimize_stimulus):
**            eval forward of the session, IncreaseObjective (the mean
**            response of its first neuron), gradient with respect to the
**            stimulus only, Adam step on the stimulus; timed per iteration
**            from the on_iteration callback.
** Op tasks (their shapes are the hoefling model's; no workload needed):
**   conv     the two convolutions of the default core at batch 64,
**            layer 0  x (64, 2, 50, 18, 16), 16 channels, kernel 21x11x11
**            layer 1  x (64, 16, 30, 8, 6),  16 channels, kernel 11x5x5,
**                     padding (0, 2, 2)
**            each as a dense conv3d and through the separable path, forward
**            and backward (input and weight gradients).
**   readout  the feature-times-mask product of a Gaussian-mask readout for
**            10 sessions of 100 neurons: per session a batched matmul
**            (64*30 frames, 16 channels, 8*6 pixels) x (8*6, 100).
** Without --task: the model tasks when --workload is given, else conv and
** readout.  Lists are comma-separated; every combination is measured.
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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fovea/config.h"
#include "fovea/insilico.h"
#include "fovea/optim.h"
#include "fovea/plugin.h"
#include "fovea/tensor.h"
#include "fovea/trainer.h"

#define BATCH 64
#define MAX_LIST 8
#define WARMUPS 2

typedef struct bench_opts {
	int thread_list[MAX_LIST];
	int n_threads;
	int threads; /* of the current measurement */
	int reps;
	bool json;
	bool conv, readout, fwd, fwd_all, train, stim;
	const char *workloads[MAX_LIST];
	int n_workloads;
	char workload_buf[512];
	const char *config_dir;
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

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static clock_pair now_ms(void)
{
	return (clock_pair){clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_PROCESS_CPUTIME_ID)};
}

/* Run r's times: wall-clock in times[r], CPU in times[reps + r]. */
static void record(const bench_opts *o, double *times, int r, clock_pair t0, clock_pair t1)
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

/* The resident set now (not its peak), from /proc; 0 where unknown. */
static double rss_mib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
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

static void report(const bench_opts *o, measurement *m, double *times)
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

static fv_tensor *random_tensor(int ndim, const int64_t *shape, uint64_t seed, double scale)
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

/* ---- model workloads ------------------------------------------------------------- */

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

static void workload_free(workload *w)
{
	fv_optimizer_free(w->opt);
	free(w->params);
	fv_module_free(w->model);
	fv_module_free(w->loss);
	fv_module_free(w->eval_loss);
	fv_tensor_free(w->x);
	fv_tensor_free(w->target);
	fv_config_free(w->cfg);
	memset(w, 0, sizeof *w);
}

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "fovea-bench: %s: %s\n", what, why);
	return 1;
}

static bool file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

/* configs/bench/NAME.yaml: in --config-dir, else under the working
** directory, else in the source tree the build directory sits in
** (<source>/<build>/tools/fovea-bench). */
static int workload_path(const bench_opts *o, const char *name, char *path, size_t size)
{
	size_t len = strlen(name);
	if (strchr(name, '/') != NULL || (len > 5 && strcmp(name + len - 5, ".yaml") == 0)) {
		snprintf(path, size, "%s", name);
		return file_exists(path) ? 0 : fail(name, "no such workload file");
	}
	char exe[1024] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	if (o->config_dir != NULL) {
		snprintf(path, size, "%s/%s.yaml", o->config_dir, name);
		if (file_exists(path))
			return 0;
	} else {
		snprintf(path, size, "configs/bench/%s.yaml", name);
		if (file_exists(path))
			return 0;
		snprintf(path, size, "%s/../../configs/bench/%s.yaml", exe, name);
		if (exe[0] != '\0' && file_exists(path))
			return 0;
	}
	fprintf(stderr,
	        "fovea-bench: --workload %s: no %s.yaml in %s (known: hoefling, hdf5; or give "
	        "--config-dir DIR or a path to a .yaml file)\n",
	        name, name,
	        o->config_dir ? o->config_dir : "./configs/bench nor in the source tree's configs/bench");
	return 1;
}

static bool read_int(const fv_config_node *n, int64_t *out)
{
	return n != NULL && fv_node_to_int(n, out) == FV_OK;
}

/* A list of `want` integers, or one integer for all of them. */
static bool read_ints(const fv_config_node *n, int64_t *out, size_t want)
{
	if (n != NULL && fv_node_kind(n) == FV_NODE_SCALAR) {
		for (size_t i = 0; i < want; i++)
			if (!read_int(n, &out[i]))
				return false;
		return true;
	}
	if (n == NULL || fv_node_kind(n) != FV_NODE_SEQ || fv_node_size(n) != want)
		return false;
	for (size_t i = 0; i < want; i++)
		if (!read_int(fv_node_at(n, i), &out[i]))
			return false;
	return true;
}

/* (T, H, W) after one layer of kernel (kt, ks, ks) and the padding spec
** openretina accepts: true/'same', false/'valid', an integer or [t, h, w]. */
static void layer_output(const fv_config_node *pad, int64_t kt, int64_t ks, int64_t thw[3])
{
	const char *text = fv_node_text(pad);
	bool same = text != NULL && (strcmp(text, "same") == 0 || strcmp(text, "true") == 0 ||
	                             strcmp(text, "True") == 0);
	int64_t amount[3] = {0, 0, 0}, k[3] = {kt, ks, ks};
	if (!same && pad != NULL && !read_ints(pad, amount, 3))
		amount[0] = amount[1] = amount[2] = 0; /* false / 'valid' */
	for (int d = 0; d < 3 && !same; d++)
		thw[d] = thw[d] + 2 * amount[d] - k[d] + 1;
}

/* Forward FLOPs as torch computes them: every layer a dense conv3d, then
** per session the mask product and the feature weighting of a Gaussian
** mask readout.  Enough for openretina's core + readout configs without
** pooling or downsampling (the bench's); a GFLOP/s figure, not a check. */
static int count_flops(workload *w, const fv_config_node *model, const int64_t in_shape[4],
                       const fv_config_node *neurons)
{
	const fv_config_node *core = fv_node_get(model, "core");
	const fv_config_node *hidden = fv_node_get(model, "hidden_channels");
	size_t layers = hidden ? fv_node_size(hidden) : 0;
	int64_t c = in_shape[0], thw[3] = {in_shape[1], in_shape[2], in_shape[3]};
	int64_t kt[8], ks[8];
	if (core == NULL || layers == 0 || layers > 8 ||
	    !read_ints(fv_node_get(core, "temporal_kernel_sizes"), kt, layers) ||
	    !read_ints(fv_node_get(core, "spatial_kernel_sizes"), ks, layers))
		return fail(w->name, "model: expected hidden_channels (1 to 8 layers) and core "
		                     "temporal_kernel_sizes / spatial_kernel_sizes for them");
	w->core_flops = 0;
	for (size_t i = 0; i < layers; i++) {
		int64_t o;
		if (!read_int(fv_node_at(hidden, i), &o))
			return fail(w->name, "model.hidden_channels: expected integers");
		layer_output(fv_node_get(core, i == 0 ? "input_padding" : "hidden_padding"), kt[i],
		             ks[i], thw);
		w->core_flops += 2.0 * (double)w->batch * (double)(o * thw[0] * thw[1] * thw[2]) *
		                 (double)(c * kt[i] * ks[i] * ks[i]);
		c = o;
	}
	double per_neuron = 2.0 * (double)w->batch * (double)(c * thw[0]) * (double)(thw[1] * thw[2] + 1);
	w->readout_all_flops = 0;
	for (size_t i = 0; i < fv_node_size(neurons); i++) {
		int64_t n = 0;
		read_int(fv_node_at(neurons, i), &n);
		w->readout_all_flops += per_neuron * (double)n;
		if (strcmp(fv_node_key_at(neurons, i), w->session) == 0)
			w->readout_flops = per_neuron * (double)n;
	}
	return 0;
}

static int workload_optimizer(workload *w, const fv_config_node *model)
{
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	const fv_config_node *lr = fv_node_get(model, "learning_rate");
	const fv_config_node *spec = fv_node_get(model, "optimizer");
	if (lr != NULL && fv_node_to_double(lr, &oc.lr) != FV_OK)
		return fail(w->name, fv_errmsg());
	if (spec != NULL && !fv_node_is_null(spec) && fv_optim_config_parse(spec, &oc) != FV_OK)
		return fail(w->name, fv_errmsg());
	w->params = fv_module_params(w->model, &w->n_params);
	if (w->params == NULL)
		return fail(w->name, fv_errmsg());
	if (w->n_params == 0)
		return fail(w->name, "the model has no trainable parameters");
	w->opt = fv_optimizer_new(&oc, w->n_params, w->params);
	return w->opt ? 0 : fail(w->name, fv_errmsg());
}

/* The random batch: a stimulus of the spec's in_shape and non-negative
** targets (spike counts) of the session's neurons for every input frame
** (the loss lags them to the output's frames, as openretina's). */
static int workload_data(workload *w, const int64_t in_shape[4], int64_t neurons)
{
	int64_t xs[5] = {w->batch, in_shape[0], in_shape[1], in_shape[2], in_shape[3]};
	int64_t ts[3] = {w->batch, in_shape[1], neurons};
	w->x = random_tensor(5, xs, 11, 1.0);
	w->target = random_tensor(3, ts, 12, 2.0);
	if (w->x == NULL || w->target == NULL)
		return fail(w->name, fv_errmsg());
	for (int64_t i = 0; i < w->target->numel; i++)
		w->target->data[i] = fabsf(w->target->data[i]);
	return 0;
}

static int workload_load(const bench_opts *o, fv_registry *reg, const char *name, workload *w)
{
	char path[2048];
	memset(w, 0, sizeof *w);
	snprintf(w->name, sizeof w->name, "%s", name);
	w->reg = reg;
	if (workload_path(o, name, path, sizeof path))
		return 1;
	if ((w->cfg = fv_config_load_file(path)) == NULL)
		return fail(path, fv_errmsg());
	const fv_config_node *root = fv_config_root(w->cfg), *model = fv_node_get(root, "model");
	const fv_config_node *neurons = model ? fv_node_get(model, "n_neurons_dict") : NULL;
	const fv_config_node *session = fv_node_get(root, "session");
	int64_t in_shape[4], n_session = 0;
	if (model == NULL || fv_node_kind(model) != FV_NODE_MAP)
		return fail(path, "expected a 'model' map (a UnifiedCoreReadout spec)");
	if (!read_int(fv_node_get(root, "batch"), &w->batch) || w->batch < 1)
		return fail(path, "expected 'batch': a positive integer");
	if (!read_ints(fv_node_get(model, "in_shape"), in_shape, 4))
		return fail(path, "model.in_shape: expected (channels, time, height, width)");
	if (neurons == NULL || fv_node_kind(neurons) != FV_NODE_MAP || fv_node_size(neurons) == 0)
		return fail(path, "model.n_neurons_dict: expected a map {session: neurons}");
	w->session = session ? fv_node_text(session) : fv_node_key_at(neurons, 0);
	if (w->session == NULL || !read_int(fv_node_get(neurons, w->session), &n_session))
		return fail(path, "'session' must be a key of model.n_neurons_dict");
	w->frames = in_shape[1];
	fv_build_args args = {.struct_size = sizeof args, .registry = reg, .seed = 42};
	if ((w->model = fv_instantiate(reg, model, &args)) == NULL ||
	    (w->loss = fv_default_loss(reg, model)) == NULL ||
	    (w->eval_loss = fv_default_evaluation_loss(reg, model)) == NULL)
		return fail(path, fv_errmsg());
	if (workload_optimizer(w, model) || workload_data(w, in_shape, n_session))
		return 1;
	return count_flops(w, model, in_shape, neurons);
}

static fv_tensor *model_forward(workload *w, fv_ctx *ctx, const char *key)
{
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = key;
	return fv_module_forward(w->model, ctx, w->x, &fa);
}

/* Eval-mode forward of one session, or of all (key NULL), without recording. */
static int bench_forward(const bench_opts *o, workload *w, bool all, double *times)
{
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return fail(w->name, fv_errmsg());
	fv_module_set_training(w->model, false);
	fv_ctx_set_grad_enabled(ctx, false);
	int rc = 0;
	for (int r = -WARMUPS; r < o->reps && rc == 0; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = now_ms();
		fv_tensor *y = model_forward(w, ctx, all ? NULL : w->session);
		clock_pair t1 = now_ms();
		if (y == NULL)
			rc = fail(w->name, fv_errmsg());
		else
			record(o, times, r, t0, t1);
	}
	fv_ctx_free(ctx);
	if (rc != 0)
		return rc;
	double flops = w->core_flops + (all ? w->readout_all_flops : w->readout_flops);
	measurement m = {w->name, all ? "fwd_all" : "fwd", w->batch, w->frames, flops, flops,
	                 0, 0, 0, NULL};
	report(o, &m, times);
	return 0;
}

static fv_status train_step(workload *w, fv_ctx *ctx)
{
	fv_step_terms s;
	fv_status rc = fv_core_readout_step(ctx, w->model, w->loss, w->eval_loss, w->x, w->target,
	                                    w->session, &s);
	if (rc == FV_OK)
		rc = fv_backward(ctx, s.total);
	if (rc == FV_OK) {
		fv_clip_grad_norm(w->n_params, w->params, 1.0);
		rc = fv_optimizer_step(w->opt);
	}
	fv_optimizer_zero_grad(w->opt);
	fv_ctx_reset(ctx);
	return rc;
}

/* One training step per run.  The warm-ups are steps 1 and 2; memory must
** not grow from step 2 on. */
static int bench_train(const bench_opts *o, workload *w, double *times)
{
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return fail(w->name, fv_errmsg());
	fv_module_set_training(w->model, true);
	size_t mallocs2 = 0;
	double rss2 = 0;
	for (int r = -WARMUPS; r < o->reps; r++) {
		clock_pair t0 = now_ms();
		fv_status rc = train_step(w, ctx);
		clock_pair t1 = now_ms();
		if (rc != FV_OK) {
			fv_ctx_free(ctx);
			return fail(w->name, fv_errmsg());
		}
		record(o, times, r, t0, t1);
		if (r == 1 - WARMUPS) { /* after step 2 */
			mallocs2 = fv_ctx_malloc_count(ctx);
			rss2 = rss_mib();
		}
	}
	size_t mallocs = fv_ctx_malloc_count(ctx);
	double rss = rss_mib(), arena = (double)fv_ctx_arena_capacity(ctx) / (1024.0 * 1024.0);
	fv_ctx_free(ctx);
	/* a page or two of slack for stdio and the thread pools' bookkeeping */
	bool flat = mallocs == mallocs2 && rss <= rss2 + 1.0;
	char extra[256];
	snprintf(extra, sizeof extra,
	         "\"arena_mib\": %.1f, \"arena_mallocs_step2\": %zu, \"arena_mallocs_last\": %zu, "
	         "\"rss_mib_step2\": %.1f, \"rss_mib_last\": %.1f, \"memory_flat\": %s",
	         arena, mallocs2, mallocs, rss2, rss, flat ? "true" : "false");
	double flops = 3 * (w->core_flops + w->readout_flops);
	measurement m = {w->name, "train", w->batch, w->frames, flops, flops, 0, 0, 0, extra};
	report(o, &m, times);
	if (!o->json)
		printf("    memory: arena %.1f MiB, arena mallocs %zu after step 2 and %zu after step "
		       "%d; RSS %.1f / %.1f MiB: %s\n",
		       arena, mallocs2, mallocs, o->reps + WARMUPS, rss2, rss, flat ? "flat" : "GROWING");
	return flat ? 0 : fail(w->name, "memory grew after the second training step");
}

/* ---- in-silico iteration ------------------------------------------------------- */

typedef struct stim_timer {
	const bench_opts *o;
	double *times;
	clock_pair last; /* the end of the previous iteration (or the start) */
} stim_timer;

/* Iteration i took from the previous callback to this one; the first
** WARMUPS are not recorded. */
static fv_status stim_iteration(void *ud, const fv_iteration *it)
{
	stim_timer *t = ud;
	clock_pair now = now_ms();
	record(t->o, t->times, (int)it->index - WARMUPS, t->last, now);
	t->last = now_ms();
	return FV_OK;
}

/* IncreaseObjective on the first neuron of the session (mean over time) and
** a stopper after the runs, built from the registry as a config would. */
static int stim_modules(workload *w, int iterations, fv_module **objective, fv_module **stopper)
{
	char yaml[512];
	fv_build_args args = {.struct_size = sizeof args, .registry = w->reg, .seed = 1};
	snprintf(yaml, sizeof yaml,
	         "neuron_indices: 0\ndata_key: '%s'\nresponse_reducer: {_target_: MeanReducer, "
	         "axis: 0}\n",
	         w->session);
	*objective = fv_instantiate_named(w->reg, "IncreaseObjective", yaml, &args, "objective");
	snprintf(yaml, sizeof yaml, "max_iterations: %d\n", iterations);
	*stopper = fv_instantiate_named(w->reg, "OptimizationStopper", yaml, &args, "stopper");
	return *objective && *stopper ? 0 : fail(w->name, fv_errmsg());
}

static int bench_stim(const bench_opts *o, workload *w, double *times)
{
	int64_t xs[5] = {1, w->x->shape[1], w->x->shape[2], w->x->shape[3], w->x->shape[4]};
	fv_module *objective = NULL, *stopper = NULL;
	fv_tensor *stimulus = random_tensor(5, xs, 13, 1.0);
	fv_model *model = fv_model_new(w->model);
	int rc = stimulus && model ? stim_modules(w, o->reps + WARMUPS, &objective, &stopper)
	                           : fail(w->name, fv_errmsg());
	int64_t done = 0;
	if (rc == 0) {
		fv_optim_config adam = fv_optim_defaults(FV_OPTIM_ADAM);
		stim_timer timer = {o, times, now_ms()};
		fv_optimize_args args = {.struct_size = sizeof args, .model = model,
		                         .objective = objective, .stopper = stopper,
		                         .optimizer = &adam, .on_iteration = stim_iteration,
		                         .ud = &timer};
		if (fv_optimize_stimulus(stimulus, &args, &done) != FV_OK)
			rc = fail(w->name, fv_errmsg());
		else if (done != o->reps + WARMUPS)
			rc = fail(w->name, "the stopper ended the optimisation early");
	}
	if (rc == 0) {
		double flops = 2 * (w->core_flops + w->readout_flops) / (double)w->batch;
		measurement m = {w->name, "stim", 1, w->frames, flops, flops, 0, 0, 0, NULL};
		report(o, &m, times);
	}
	fv_module_free(objective);
	fv_module_free(stopper);
	fv_model_free(model);
	fv_tensor_free(stimulus);
	return rc;
}

/* ---- convolutions ------------------------------------------------------------ */

typedef struct conv_layer {
	const char *name;
	int64_t c, t, h, w, o, kt, kh, kw;
	fv_conv3d_params p;
} conv_layer;

typedef struct conv_setup {
	const conv_layer *l;
	bool separable;
	fv_tensor *x, *w, *wt, *ws, *gout;
} conv_setup;

static fv_tensor *conv_forward(fv_ctx *ctx, conv_setup *s)
{
	if (s->separable)
		return fv_conv3d_separable(ctx, s->x, s->wt, s->ws, &s->l->p);
	return fv_conv3d(ctx, s->x, s->w, NULL, &s->l->p);
}

static int64_t out_len(int64_t in, int64_t k, const int pad[2])
{
	return in + pad[0] + pad[1] - k + 1;
}

/* Forward FLOPs: dense-equivalent and those of the separable passes. */
static void conv_flops(const conv_layer *l, double *dense, double *spatial, double *temporal)
{
	double to = (double)out_len(l->t, l->kt, l->p.pad[0]);
	double plane = (double)(out_len(l->h, l->kh, l->p.pad[1]) * out_len(l->w, l->kw, l->p.pad[2]));
	double n = BATCH, c = (double)l->c, o = (double)l->o;
	*dense = 2 * n * o * to * plane * c * (double)(l->kt * l->kh * l->kw);
	*spatial = 2 * n * c * o * (double)l->t * plane * (double)(l->kh * l->kw);
	*temporal = 2 * n * o * c * to * plane * (double)l->kt;
}

static int bench_conv(const bench_opts *o, const conv_layer *l, bool separable, double *times)
{
	int64_t xs[5] = {BATCH, l->c, l->t, l->h, l->w};
	int64_t ws[5] = {l->o, l->c, l->kt, l->kh, l->kw};
	int64_t ts[3] = {l->o, l->c, l->kt}, ss[4] = {l->o, l->c, l->kh, l->kw};
	conv_setup s = {.l = l, .separable = separable};
	const char *path = separable ? "separable" : "dense";
	s.x = random_tensor(5, xs, 1, 1.0);
	if (separable) {
		s.wt = random_tensor(3, ts, 2, 0.3);
		s.ws = random_tensor(4, ss, 3, 0.1);
	} else {
		s.w = random_tensor(5, ws, 2, 0.03);
	}
	fv_ctx *ctx = fv_ctx_new();
	int rc = 1;
	if (s.x == NULL || ctx == NULL || (separable ? !s.wt || !s.ws : !s.w))
		goto done;
	fv_tensor *params[3] = {s.x, separable ? s.wt : s.w, s.ws};
	for (int i = 0; i < 3; i++)
		if (params[i] != NULL)
			params[i]->requires_grad = true;

	double dense, spatial, temporal;
	conv_flops(l, &dense, &spatial, &temporal);
	char fwd_name[64], bwd_name[64];
	snprintf(fwd_name, sizeof fwd_name, "%s.%s.forward", l->name, path);
	snprintf(bwd_name, sizeof bwd_name, "%s.%s.backward", l->name, path);
	measurement fwd = {fwd_name, "conv", BATCH, l->t, dense,
	                   separable ? spatial + temporal : dense, 0, 0, 0, NULL};
	/* backward: input and weight gradients; the separable path keeps the
	** spatial pass of the forward and runs both passes transposed */
	measurement bwd = {bwd_name, "conv", BATCH, l->t, 2 * dense,
	                   separable ? 2 * spatial + 2 * temporal : 2 * dense, 0, 0, 0, NULL};

	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = now_ms();
		fv_tensor *out = conv_forward(ctx, &s);
		clock_pair t1 = now_ms();
		if (out == NULL)
			goto done;
		record(o, times, r, t0, t1);
	}
	report(o, &fwd, times);
	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		fv_tensor *out = conv_forward(ctx, &s);
		if (out == NULL)
			goto done;
		if (s.gout == NULL && (s.gout = random_tensor(out->ndim, out->shape, 4, 1.0)) == NULL)
			goto done;
		clock_pair t0 = now_ms();
		fv_status st = fv_backward_with(ctx, out, s.gout);
		clock_pair t1 = now_ms();
		if (st != FV_OK)
			goto done;
		record(o, times, r, t0, t1);
	}
	report(o, &bwd, times);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "fovea-bench: %s %s: %s\n", l->name, path, fv_errmsg());
	fv_ctx_free(ctx);
	fv_tensor_free(s.x);
	fv_tensor_free(s.w);
	fv_tensor_free(s.wt);
	fv_tensor_free(s.ws);
	fv_tensor_free(s.gout);
	return rc;
}

static const conv_layer layers[] = {
	{"layer0", 2, 50, 18, 16, 16, 21, 11, 11, {.groups = 1}},
	{"layer1", 16, 30, 8, 6, 16, 11, 5, 5, {.pad = {{0, 0}, {2, 2}, {2, 2}}}},
};

/* ---- readout ---------------------------------------------------------------------- */

#define SESSIONS 10
#define NEURONS 100

static int bench_readout(const bench_opts *o, double *times)
{
	int64_t fs[3] = {BATCH * 30, 16, 8 * 6}, ms[2] = {8 * 6, NEURONS};
	fv_tensor *feat = random_tensor(3, fs, 5, 1.0), *mask[SESSIONS] = {0};
	fv_ctx *ctx = fv_ctx_new();
	int rc = 1;
	if (feat == NULL || ctx == NULL)
		goto done;
	for (int i = 0; i < SESSIONS; i++)
		if ((mask[i] = random_tensor(2, ms, 6 + (uint64_t)i, 0.1)) == NULL)
			goto done;
	double flops = SESSIONS * 2.0 * (double)(fs[0] * fs[1] * fs[2]) * NEURONS;
	measurement m = {"readout.matmul.forward", "readout", BATCH, 30, flops, flops, 0, 0, 0, NULL};
	for (int r = -WARMUPS; r < o->reps; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = now_ms();
		for (int i = 0; i < SESSIONS; i++)
			if (fv_matmul(ctx, feat, mask[i]) == NULL)
				goto done;
		clock_pair t1 = now_ms();
		record(o, times, r, t0, t1);
	}
	report(o, &m, times);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "fovea-bench: readout: %s\n", fv_errmsg());
	fv_ctx_free(ctx);
	fv_tensor_free(feat);
	for (int i = 0; i < SESSIONS; i++)
		fv_tensor_free(mask[i]);
	return rc;
}

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fovea-bench [--workload hoefling,hdf5|FILE.yaml] "
	           "[--task fwd,fwd_all,train,stim,conv,readout]\n"
	           "                   [--threads N[,N...]] [--reps R] [--json] "
	           "[--config-dir DIR]\n");
}

static int parse_tasks(bench_opts *o, const char *list)
{
	static const char *const known = "fwd, fwd_all, train, stim, conv, readout";
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool *flag = strcmp(t, "fwd") == 0       ? &o->fwd
		             : strcmp(t, "fwd_all") == 0 ? &o->fwd_all
		             : strcmp(t, "train") == 0   ? &o->train
		             : strcmp(t, "stim") == 0    ? &o->stim
		             : strcmp(t, "conv") == 0    ? &o->conv
		             : strcmp(t, "readout") == 0 ? &o->readout
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
	bool tasks_given = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes_value = true;
		int rc = 0;
		if (strcmp(a, "--threads") == 0)
			rc = v ? parse_threads(o, v) : parse_int(a, v, 0, &o->threads);
		else if (strcmp(a, "--reps") == 0)
			rc = parse_int(a, v, 1, &o->reps);
		else if (strcmp(a, "--task") == 0)
			rc = v == NULL || (tasks_given = true, parse_tasks(o, v));
		else if (strcmp(a, "--workload") == 0)
			rc = v == NULL || parse_workloads(o, v);
		else if (strcmp(a, "--config-dir") == 0)
			rc = (o->config_dir = v) == NULL;
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

static int run_models(const bench_opts *o, workload *ws, double *times)
{
	int rc = 0;
	for (int i = 0; i < o->n_workloads; i++) {
		if (o->fwd)
			rc |= bench_forward(o, &ws[i], false, times);
		if (o->fwd_all)
			rc |= bench_forward(o, &ws[i], true, times);
		if (o->train)
			rc |= bench_train(o, &ws[i], times);
		if (o->stim)
			rc |= bench_stim(o, &ws[i], times);
	}
	return rc;
}

static int run_ops(const bench_opts *o, double *times)
{
	int rc = 0;
	for (size_t i = 0; o->conv && i < sizeof layers / sizeof layers[0]; i++) {
		rc |= bench_conv(o, &layers[i], false, times);
		rc |= bench_conv(o, &layers[i], true, times);
	}
	if (o->readout)
		rc |= bench_readout(o, times);
	return rc;
}

int main(int argc, char **argv)
{
	bench_opts o;
	if (parse_args(&o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	double *times = malloc(2 * (size_t)o.reps * sizeof *times);
	workload ws[MAX_LIST] = {0};
	fv_registry *reg = o.n_workloads > 0 ? fv_registry_new() : NULL;
	int rc = times == NULL;
	if (reg != NULL && fv_registry_load_default(reg) != FV_OK)
		rc = fail("plugins", fv_errmsg());
	for (int i = 0; rc == 0 && i < o.n_workloads; i++)
		rc = workload_load(&o, reg, o.workloads[i], &ws[i]);
	if (rc == 0 && !o.json)
		printf("%-30s %-8s %3s %9s %9s %9s %9s %8s %8s %8s\n", "workload", "task", "thr",
		       "min_ms", "median_ms", "max_ms", "cpu_min", "GF/s", "act_GF/s", "peak_MiB");
	for (int t = 0; rc == 0 && t < o.n_threads; t++) {
		fv_set_num_threads(o.thread_list[t]);
		o.threads = fv_get_num_threads();
		rc |= run_models(&o, ws, times);
		rc |= run_ops(&o, times);
	}
	for (int i = 0; i < o.n_workloads; i++)
		workload_free(&ws[i]);
	fv_registry_free(reg);
	free(times);
	return rc;
}
