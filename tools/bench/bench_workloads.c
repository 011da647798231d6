/*
** bench_workloads.c: the model tasks of fovea-bench (see bench_main.c).
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
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/insilico.h"
#include "fovea/trainer.h"
#include "bench.h"

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

void workload_free(workload *w)
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
		return file_exists(path) ? 0 : bench_fail(name, "no such workload file");
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
	        "fovea-bench: --workload %s: no %s.yaml in %s (known: hoefling, hdf5, gru, "
	        "convgru; or give --config-dir DIR or a path to a .yaml file)\n",
	        name, name,
	        o->config_dir ? o->config_dir : "./configs/bench nor in the source tree's configs/bench");
	return 1;
}

static bool read_int(const fv_config_node *n, int64_t *out)
{
	return n != NULL && fv_node_to_int(n, out) == FV_OK;
}

/* A list of `want` integers, or one integer for all of them; with
** `longer`, a longer list's first `want` (openretina's ConvGRUCore config
** gives three kernel sizes for two layers). */
static bool read_ints_ex(const fv_config_node *n, int64_t *out, size_t want, bool longer)
{
	if (n != NULL && fv_node_kind(n) == FV_NODE_SCALAR) {
		for (size_t i = 0; i < want; i++)
			if (!read_int(n, &out[i]))
				return false;
		return true;
	}
	if (n == NULL || fv_node_kind(n) != FV_NODE_SEQ || fv_node_size(n) < want ||
	    (!longer && fv_node_size(n) != want))
		return false;
	for (size_t i = 0; i < want; i++)
		if (!read_int(fv_node_at(n, i), &out[i]))
			return false;
	return true;
}

static bool read_ints(const fv_config_node *n, int64_t *out, size_t want)
{
	return read_ints_ex(n, out, want, false);
}

/* Python's bool() of a padding value, as ConvGRUCore tests it. */
static bool truthy(const fv_config_node *n)
{
	if (n == NULL || fv_node_is_null(n))
		return false;
	if (fv_node_kind(n) != FV_NODE_SCALAR)
		return fv_node_size(n) > 0;
	const char *t = fv_node_text(n);
	return strcmp(t, "0") != 0 && strcmp(t, "false") != 0 && strcmp(t, "False") != 0 &&
	       t[0] != '\0';
}

/* (T, H, W) after ConvGRUCore's layer i: spatial padding by truthiness,
** layer 1 never padded, layer n >= 2 by layer n-1's kernel size // 2. */
static void gru_layer_output(const fv_config_node *core, size_t i, const int64_t *kt,
                             const int64_t *ks, int64_t thw[3])
{
	bool padded = i == 0 ? truthy(fv_node_get(core, "input_padding"))
	                     : i >= 2 && truthy(fv_node_get(core, "hidden_padding"));
	int64_t p = padded ? ks[i == 0 ? 0 : i - 1] / 2 : 0;
	thw[0] -= kt[i] - 1;
	thw[1] += 2 * p - ks[i] + 1;
	thw[2] += 2 * p - ks[i] + 1;
}

/* ConvGRUCore's GRU (use_gru): its FLOPs over the (c, T, H, W) map, which
** becomes its output (rec_channels, T, H - s, W - s), s the shrinkage. */
static double gru_stage(const workload *w, const fv_config_node *core, int64_t *c,
                        int64_t thw[3])
{
	const fv_config_node *g = fv_node_get(core, "gru_kwargs");
	int64_t r = 0, ik = 0, rk = 0;
	if (!truthy(fv_node_get(core, "use_gru")) || g == NULL ||
	    !read_int(fv_node_get(g, "rec_channels"), &r) ||
	    !read_int(fv_node_get(g, "input_kern"), &ik) || !read_int(fv_node_get(g, "rec_kern"), &rk))
		return 0;
	int64_t shrink = truthy(fv_node_get(g, "pad_input")) ? 0 : ik - 1;
	thw[1] -= shrink;
	thw[2] -= shrink;
	double flops = 2.0 * (double)w->batch * (double)(thw[0] * thw[1] * thw[2]) * (double)r *
	               (double)(3 * *c * ik * ik + 3 * r * rk * rk);
	*c = r;
	return flops;
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
	const char *target = core ? fv_node_text(fv_node_get(core, "_target_")) : NULL;
	bool gru = target != NULL && strstr(target, "GRUCore") != NULL;
	if (core == NULL || layers == 0 || layers > 8 ||
	    !read_ints_ex(fv_node_get(core, "temporal_kernel_sizes"), kt, layers, gru) ||
	    !read_ints_ex(fv_node_get(core, "spatial_kernel_sizes"), ks, layers, gru))
		return bench_fail(w->name, "model: expected hidden_channels (1 to 8 layers) and core "
		                     "temporal_kernel_sizes / spatial_kernel_sizes for them");
	w->core_flops = 0;
	for (size_t i = 0; i < layers; i++) {
		int64_t o;
		if (!read_int(fv_node_at(hidden, i), &o))
			return bench_fail(w->name, "model.hidden_channels: expected integers");
		if (gru)
			gru_layer_output(core, i, kt, ks, thw);
		else
			layer_output(fv_node_get(core, i == 0 ? "input_padding" : "hidden_padding"),
			             kt[i], ks[i], thw);
		double pixels = (double)(thw[0] * thw[1] * thw[2]);
		w->core_flops += 2.0 * (double)w->batch * (double)o * pixels *
		                 (double)(c * kt[i] * ks[i] * ks[i]);
		if (gru && i == 0 && truthy(fv_node_get(core, "use_projections")))
			w->core_flops += 2.0 * (double)w->batch * (double)(o * o) * pixels;
		c = o;
	}
	if (gru)
		w->core_flops += gru_stage(w, core, &c, thw);
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
		return bench_fail(w->name, fv_errmsg());
	if (spec != NULL && !fv_node_is_null(spec) && fv_optim_config_parse(spec, &oc) != FV_OK)
		return bench_fail(w->name, fv_errmsg());
	w->params = fv_module_params(w->model, &w->n_params);
	if (w->params == NULL)
		return bench_fail(w->name, fv_errmsg());
	if (w->n_params == 0)
		return bench_fail(w->name, "the model has no trainable parameters");
	w->opt = fv_optimizer_new(&oc, w->n_params, w->params);
	return w->opt ? 0 : bench_fail(w->name, fv_errmsg());
}

/* The random batch: a stimulus of the spec's in_shape and non-negative
** targets (spike counts) of the session's neurons for every input frame
** (the loss lags them to the output's frames, as openretina's). */
static int workload_data(workload *w, const int64_t in_shape[4], int64_t neurons)
{
	int64_t xs[5] = {w->batch, in_shape[0], in_shape[1], in_shape[2], in_shape[3]};
	int64_t ts[3] = {w->batch, in_shape[1], neurons};
	w->x = bench_random_tensor(5, xs, 11, 1.0);
	w->target = bench_random_tensor(3, ts, 12, 2.0);
	if (w->x == NULL || w->target == NULL)
		return bench_fail(w->name, fv_errmsg());
	for (int64_t i = 0; i < w->target->numel; i++)
		w->target->data[i] = fabsf(w->target->data[i]);
	return 0;
}

int workload_load(const bench_opts *o, fv_registry *reg, const char *name, workload *w)
{
	char path[2048];
	memset(w, 0, sizeof *w);
	snprintf(w->name, sizeof w->name, "%s", name);
	w->reg = reg;
	if (workload_path(o, name, path, sizeof path))
		return 1;
	if ((w->cfg = fv_config_load_file(path)) == NULL)
		return bench_fail(path, fv_errmsg());
	const fv_config_node *root = fv_config_root(w->cfg), *model = fv_node_get(root, "model");
	const fv_config_node *neurons = model ? fv_node_get(model, "n_neurons_dict") : NULL;
	const fv_config_node *session = fv_node_get(root, "session");
	int64_t in_shape[4], n_session = 0;
	if (model == NULL || fv_node_kind(model) != FV_NODE_MAP)
		return bench_fail(path, "expected a 'model' map (a UnifiedCoreReadout spec)");
	if (!read_int(fv_node_get(root, "batch"), &w->batch) || w->batch < 1)
		return bench_fail(path, "expected 'batch': a positive integer");
	if (!read_ints(fv_node_get(model, "in_shape"), in_shape, 4))
		return bench_fail(path, "model.in_shape: expected (channels, time, height, width)");
	if (neurons == NULL || fv_node_kind(neurons) != FV_NODE_MAP || fv_node_size(neurons) == 0)
		return bench_fail(path, "model.n_neurons_dict: expected a map {session: neurons}");
	w->session = session ? fv_node_text(session) : fv_node_key_at(neurons, 0);
	if (w->session == NULL || !read_int(fv_node_get(neurons, w->session), &n_session))
		return bench_fail(path, "'session' must be a key of model.n_neurons_dict");
	w->frames = in_shape[1];
	fv_build_args args = {.struct_size = sizeof args, .registry = reg, .seed = 42};
	if ((w->model = fv_instantiate(reg, model, &args)) == NULL ||
	    (w->loss = fv_default_loss(reg, model)) == NULL ||
	    (w->eval_loss = fv_default_evaluation_loss(reg, model)) == NULL)
		return bench_fail(path, fv_errmsg());
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
		return bench_fail(w->name, fv_errmsg());
	fv_module_set_training(w->model, false);
	fv_ctx_set_grad_enabled(ctx, false);
	int rc = 0;
	for (int r = -WARMUPS; r < o->reps && rc == 0; r++) {
		fv_ctx_reset(ctx);
		clock_pair t0 = bench_now();
		fv_tensor *y = model_forward(w, ctx, all ? NULL : w->session);
		clock_pair t1 = bench_now();
		if (y == NULL)
			rc = bench_fail(w->name, fv_errmsg());
		else
			bench_record(o, times, r, t0, t1);
	}
	fv_ctx_free(ctx);
	if (rc != 0)
		return rc;
	double flops = w->core_flops + (all ? w->readout_all_flops : w->readout_flops);
	measurement m = {w->name, all ? "fwd_all" : "fwd", w->batch, w->frames, flops, flops,
	                 0, 0, 0, NULL};
	bench_report(o, &m, times);
	return 0;
}

fv_status bench_train_step(workload *w, fv_ctx *ctx)
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
		return bench_fail(w->name, fv_errmsg());
	fv_module_set_training(w->model, true);
	size_t mallocs2 = 0;
	double rss2 = 0;
	for (int r = -WARMUPS; r < o->reps; r++) {
		clock_pair t0 = bench_now();
		fv_status rc = bench_train_step(w, ctx);
		clock_pair t1 = bench_now();
		if (rc != FV_OK) {
			fv_ctx_free(ctx);
			return bench_fail(w->name, fv_errmsg());
		}
		bench_record(o, times, r, t0, t1);
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
	bench_report(o, &m, times);
	if (!o->json)
		printf("    memory: arena %.1f MiB, arena mallocs %zu after step 2 and %zu after step "
		       "%d; RSS %.1f / %.1f MiB: %s\n",
		       arena, mallocs2, mallocs, o->reps + WARMUPS, rss2, rss, flat ? "flat" : "GROWING");
	return flat ? 0 : bench_fail(w->name, "memory grew after the second training step");
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
	clock_pair now = bench_now();
	bench_record(t->o, t->times, (int)it->index - WARMUPS, t->last, now);
	t->last = bench_now();
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
	return *objective && *stopper ? 0 : bench_fail(w->name, fv_errmsg());
}

static int bench_stim(const bench_opts *o, workload *w, double *times)
{
	int64_t xs[5] = {1, w->x->shape[1], w->x->shape[2], w->x->shape[3], w->x->shape[4]};
	fv_module *objective = NULL, *stopper = NULL;
	fv_tensor *stimulus = bench_random_tensor(5, xs, 13, 1.0);
	fv_model *model = fv_model_new(w->model);
	int rc = stimulus && model ? stim_modules(w, o->reps + WARMUPS, &objective, &stopper)
	                           : bench_fail(w->name, fv_errmsg());
	int64_t done = 0;
	if (rc == 0) {
		fv_optim_config adam = fv_optim_defaults(FV_OPTIM_ADAM);
		stim_timer timer = {o, times, bench_now()};
		fv_optimize_args args = {.struct_size = sizeof args, .model = model,
		                         .objective = objective, .stopper = stopper,
		                         .optimizer = &adam, .on_iteration = stim_iteration,
		                         .ud = &timer};
		if (fv_optimize_stimulus(stimulus, &args, &done) != FV_OK)
			rc = bench_fail(w->name, fv_errmsg());
		else if (done != o->reps + WARMUPS)
			rc = bench_fail(w->name, "the stopper ended the optimisation early");
	}
	if (rc == 0) {
		double flops = 2 * (w->core_flops + w->readout_flops) / (double)w->batch;
		measurement m = {w->name, "stim", 1, w->frames, flops, flops, 0, 0, 0, NULL};
		bench_report(o, &m, times);
	}
	fv_module_free(objective);
	fv_module_free(stopper);
	fv_model_free(model);
	fv_tensor_free(stimulus);
	return rc;
}

int bench_run_workloads(const bench_opts *o, workload *ws, double *times)
{
	int rc = 0;
	for (int i = 0; i < o->n_workloads; i++) {
		if (o->fwd)
			rc |= bench_forward(o, &ws[i], false, times);
		if (o->fwd_all)
			rc |= bench_forward(o, &ws[i], true, times);
		if (o->train)
			rc |= o->ranks_child ? bench_train_ranks(o, &ws[i], times)
			                     : bench_train(o, &ws[i], times);
		if (o->stim)
			rc |= bench_stim(o, &ws[i], times);
	}
	return rc;
}
