/*
** insilico_pipeline.c: fv_optimize_from_config, openretina's
** visualize_model_neurons as a library pipeline driven by a config.
**
** One call loads the checkpoint's model once and, for each unit of the
** job (an output neuron, the central unit of a layer's channel, or one
** ON/OFF contrast), in order:
**   1. sets the unit and the session in the config's objective (so the
**      record's config says exactly what ran);
**   2. builds the objective, stopper, optimizer, regularizers
**      (penalties) and postprocessors (projections) from the config;
**   3. starts from N(0, init_std^2) drawn from the job's seed, then every
**      postprocessor, as visualize_model_neurons' process(randn * 0.1);
**   4. runs fv_optimize_stimulus, recording the objective, loss and time
**      of each iteration and rewriting a progress line;
**   5. evaluates the final stimulus: the objective, the unit's response
**      over time, the peak pixel;
**   6. writes STEM.npy, STEM.png and STEM.json (insilico_record.c), prints
**      one summary line and calls the caller's on_result.
** Every index is checked against the model before the first optimisation,
** so a bad one costs no time.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fovea/figure.h"
#include "fovea/trainer.h"
#include "insilico/insilico_internal.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the job and the model -------------------------------------------------------- */

static fv_status check_indices(const char *what, const fv_indices *ix)
{
	if (ix->n > 0 && ix->v == NULL)
		return fv_error(FV_ERR_ARG, "fv_optimize_from_config: %zu %s given as NULL", ix->n, what);
	return FV_OK;
}

static fv_status check_job(const fv_insilico_job *job)
{
	if (job == NULL || job->checkpoint == NULL)
		return fv_error(FV_ERR_ARG, "fv_optimize_from_config: no %s given",
		                job == NULL ? "job" : "checkpoint");
	const char *missing = NULL;
	switch (job->kind) {
	case FV_INSILICO_MEI:
		if (job->session == NULL)
			missing = "a session (whose neurons)";
		break;
	case FV_INSILICO_INNER_MEI:
		if (job->layer == NULL || job->layer[0] == '\0')
			missing = "a layer (e.g. core.features.layer0)";
		break;
	case FV_INSILICO_MDS:
		if (job->session == NULL)
			missing = "a session (whose neurons)";
		else if (job->on.n == 0)
			missing = "an ON cluster";
		else if (job->n_off == 0 || job->off == NULL)
			missing = "an OFF cluster";
		else if (job->reference != NULL)
			return fv_error(FV_ERR_ARG, "a reference movie is for the MEIs of units, not for "
			                "an MDS");
		break;
	default:
		return fv_error(FV_ERR_ARG, "fv_optimize_from_config: unknown kind %d", (int)job->kind);
	}
	if (missing != NULL)
		return fv_error(FV_ERR_ARG, "fv_optimize_from_config: %s needs %s",
		                job->kind == FV_INSILICO_MDS ? "an MDS" : "an MEI", missing);
	fv_status st = check_indices("units", &job->units);
	if (st == FV_OK)
		st = check_indices("ON cluster indices", &job->on);
	for (size_t k = 0; st == FV_OK && job->kind == FV_INSILICO_MDS && k < job->n_off; k++)
		st = check_indices("OFF cluster indices", &job->off[k]);
	/* A neuron on both sides makes the objective (ON minus OFF) cancel
	** itself: the optimisation runs and means nothing. */
	for (size_t k = 0; st == FV_OK && job->kind == FV_INSILICO_MDS && k < job->n_off; k++)
		for (size_t i = 0; st == FV_OK && i < job->on.n; i++)
			for (size_t j = 0; st == FV_OK && j < job->off[k].n; j++)
				if (job->on.v[i] == job->off[k].v[j])
					st = fv_error(FV_ERR_ARG, "neuron %lld is in both the ON cluster and "
					              "OFF cluster %zu", (long long)job->on.v[i], k);
	return st;
}

/* The job's session, or the model's first (openretina's readout_keys()[0]). */
static fv_status find_session(fv__ins *s)
{
	const fv_data_info *info = s->info;
	const char *want = s->job->session, *path = s->job->checkpoint;
	/* A checkpoint not written by fovea train (or stripped of its
	** metadata) has no sessions to choose a readout from. */
	if (info == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: the checkpoint's metadata has no data_info "
		                "(sessions, neurons, stimulus shape); was it written by fovea train?",
		                path);
	if (info->n_sessions == 0)
		return fv_error(FV_ERR_FORMAT, "%s: the model has no sessions", path);
	/* Reference movies are normalised with these: a std of 0 or a mean of
	** 1e308 would make every response NaN. */
	if (!isfinite(info->stim_mean) || !isfinite(info->stim_std) || !(info->stim_std > 0))
		return fv_error(FV_ERR_FORMAT, "%s: data_info stim_mean %g and stim_std %g cannot "
		                "normalise a stimulus (the mean must be finite, the std finite and > 0)",
		                path, info->stim_mean, info->stim_std);
	for (size_t i = 0; i < info->n_sessions; i++)
		if (want == NULL || strcmp(info->sessions[i], want) == 0) {
			s->session_index = i;
			s->session = info->sessions[i];
			return FV_OK;
		}
	const char *near = fv_closest_name(want, info->sessions, info->n_sessions);
	if (near != NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: no session '%s'; did you mean '%s'?", path, want,
		                near);
	return fv_error(FV_ERR_NOTFOUND, "%s: no session '%s' (the model's %zu sessions: '%s' ... "
	                "'%s')", path, want, info->n_sessions, info->sessions[0],
	                info->sessions[info->n_sessions - 1]);
}

static fv_status open_model(fv__ins *s)
{
	const fv_insilico_job *job = s->job;
	s->ck = job->model_yaml != NULL ? fv_checkpoint_import(job->checkpoint, job->model_yaml)
	                                : fv_checkpoint_open(job->checkpoint);
	if (s->ck == NULL)
		return FV_ERR_IO;
	s->info = fv_checkpoint_data_info(s->ck);
	fv_status st = find_session(s);
	if (st == FV_OK && (s->module = fv_model_load(s->reg, s->ck, NULL)) == NULL)
		st = FV_ERR_CONFIG;
	if (st == FV_OK && (s->model = fv_model_new(s->module)) == NULL)
		st = FV_ERR_NOMEM;
	return st;
}

static fv_status check_index(const fv__ins *s, const char *what, int64_t i)
{
	if (i >= 0 && i < s->n_units)
		return FV_OK;
	if (s->job->kind == FV_INSILICO_INNER_MEI)
		return fv_error(FV_ERR_ARG, "%s %lld is out of range: layer '%s' has %lld channels "
		                "(0..%lld)", what, (long long)i, s->job->layer, (long long)s->n_units,
		                (long long)s->n_units - 1);
	return fv_error(FV_ERR_ARG, "%s %lld is out of range: session '%s' has %lld neurons (0..%lld)",
	                what, (long long)i, s->session, (long long)s->n_units,
	                (long long)s->n_units - 1);
}

static fv_status check_list(const fv__ins *s, const char *what, const fv_indices *ix)
{
	fv_status st = FV_OK;
	for (size_t k = 0; st == FV_OK && k < ix->n; k++)
		st = check_index(s, what, ix->v[k]);
	return st;
}

/* How many units there are, and whether the job's are among them. */
static fv_status check_units(fv__ins *s)
{
	const fv_insilico_job *job = s->job;
	if (job->kind != FV_INSILICO_INNER_MEI)
		s->n_units = s->info->n_neurons[s->session_index];
	else if (fv__ins_probe_layer(s) != FV_OK)
		return FV_ERR_ARG;
	if (job->kind != FV_INSILICO_MDS)
		return check_list(s, job->kind == FV_INSILICO_MEI ? "neuron" : "channel", &job->units);
	fv_status st = check_list(s, "cluster neuron", &job->on);
	for (size_t k = 0; st == FV_OK && k < job->n_off; k++)
		st = check_list(s, "cluster neuron", &job->off[k]);
	return st;
}

static fv_status make_dir(const char *dir)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return fv_error(FV_ERR_IO, "%s: cannot create the output directory: %s", dir,
		                strerror(errno));
	return FV_OK;
}

/* ---- one optimisation: its components ----------------------------------------------- */

typedef struct stages {
	fv_module *objective, *stopper;
	fv_module **pen, **post;
	size_t n_pen, n_post;
	fv_optim_config optim;
} stages;

static fv_module *build(const fv__ins *s, const fv_config_node *spec, const char *key)
{
	if (spec == NULL || fv_node_is_null(spec)) {
		fv_error(FV_ERR_CONFIG, "%s: missing", key);
		return NULL;
	}
	fv_build_args args = {.struct_size = sizeof args, .registry = s->reg};
	fv_module *m = fv_instantiate(s->reg, spec, &args);
	if (m == NULL)
		fv_error_prefix("%s: ", key);
	return m;
}

/* A list of components; one spec or null also do, as openretina's
** convert_to_list allows. */
static fv_status build_list(const fv__ins *s, const char *key, fv_module ***mods, size_t *n)
{
	const fv_config_node *node = fv_node_get(fv_config_root(s->cfg), key);
	if (node == NULL || fv_node_is_null(node))
		return FV_OK;
	bool seq = fv_node_kind(node) == FV_NODE_SEQ;
	size_t count = seq ? fv_node_size(node) : 1;
	if (count == 0)
		return FV_OK;
	if ((*mods = fv__calloc(count, sizeof **mods)) == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", key);
	for (; *n < count; ++*n)
		if (((*mods)[*n] = build(s, seq ? fv_node_at(node, *n) : node, key)) == NULL)
			return FV_ERR_CONFIG;
	return FV_OK;
}

static void stages_free(stages *sg)
{
	fv_module_free(sg->objective);
	fv_module_free(sg->stopper);
	for (size_t i = 0; i < sg->n_pen; i++)
		fv_module_free(sg->pen[i]);
	for (size_t i = 0; i < sg->n_post; i++)
		fv_module_free(sg->post[i]);
	free(sg->pen);
	free(sg->post);
}

static fv_status build_stages(const fv__ins *s, stages *sg)
{
	const fv_config_node *root = fv_config_root(s->cfg);
	if (fv_optim_config_parse(fv_node_get(root, "optimizer"), &sg->optim) != FV_OK) {
		fv_error_prefix("optimizer: ");
		return FV_ERR_CONFIG;
	}
	if ((sg->objective = build(s, fv_node_get(root, "objective"), "objective")) == NULL ||
	    (sg->stopper = build(s, fv_node_get(root, "stopper"), "stopper")) == NULL)
		return FV_ERR_CONFIG;
	fv_status st = build_list(s, "regularizers", &sg->pen, &sg->n_pen);
	return st == FV_OK ? build_list(s, "postprocessors", &sg->post, &sg->n_post) : st;
}

/* The unit and the session, in the config's objective. */
static fv_status set_objective(fv__ins *s, int64_t unit)
{
	const fv_insilico_job *job = s->job;
	fv_config *cfg = s->cfg;
	fv_status st = FV_OK;
	switch (job->kind) {
	case FV_INSILICO_MEI:
		st = fv__ins_config_set(cfg, "objective.neuron_indices", json_integer(unit));
		break;
	case FV_INSILICO_INNER_MEI:
		st = fv__ins_config_set(cfg, "objective.layer", json_string(job->layer));
		if (st == FV_OK)
			st = fv__ins_config_set(cfg, "objective.channel", json_integer(unit));
		break;
	case FV_INSILICO_MDS:
		st = fv__ins_config_set(cfg, "objective.on_cluster_idc", fv__ins_json_indices(&job->on));
		if (st == FV_OK)
			st = fv__ins_config_set(cfg, "objective.off_cluster_idc_list",
			                        fv__ins_json_off_clusters(job));
		break;
	}
	return st == FV_OK ? fv__ins_config_set(cfg, "objective.data_key", json_string(s->session))
	                   : st;
}

/* ---- one optimisation: naming, start, loop, evaluation ---------------------------------- */

/* mei_SESSION_NEURON, mei_LAYER_CHANNEL or mds_SESSION_ON (ON joined by
** '-'), with any '/' made '_' so that the files stay in DIR. */
static fv_status name_stimulus(const fv__ins *s, fv__ins_stimulus *st)
{
	const fv_insilico_job *job = s->job;
	size_t n = sizeof st->stem, len = 0;
	if (job->kind == FV_INSILICO_MEI) {
		len = (size_t)snprintf(st->stem, n, "mei_%s_%lld", s->session, (long long)st->unit);
		snprintf(st->title, sizeof st->title, "MEI %s neuron %lld", s->session,
		         (long long)st->unit);
	} else if (job->kind == FV_INSILICO_INNER_MEI) {
		len = (size_t)snprintf(st->stem, n, "mei_%s_%lld", job->layer, (long long)st->unit);
		snprintf(st->title, sizeof st->title, "MEI %s channel %lld", job->layer,
		         (long long)st->unit);
	} else {
		len = (size_t)snprintf(st->stem, n, "mds_%s", s->session);
		for (size_t k = 0; k < job->on.n && len < n; k++)
			len += (size_t)snprintf(st->stem + len, n - len, "%c%lld", k ? '-' : '_',
			                        (long long)job->on.v[k]);
		json_t *on = fv__ins_json_indices(&job->on);
		char *text = on != NULL ? json_dumps(on, 0) : NULL;
		snprintf(st->title, sizeof st->title, "MDS %s on %s", s->session, text ? text : "?");
		free(text);
		json_decref(on);
	}
	/* the figure names the model too: the checkpoint's file name */
	const char *base = strrchr(job->checkpoint, '/');
	size_t t = strlen(st->title);
	snprintf(st->title + t, sizeof st->title - t, ", %s", base ? base + 1 : job->checkpoint);
	if (len >= n)
		return fv_error(FV_ERR_ARG, "%s: the name of the output files is too long", st->stem);
	for (char *p = st->stem; *p; p++)
		*p = *p == '/' ? '_' : *p;
	return FV_OK;
}

/* N(0, init_std^2) from the job's seed (the same for every unit, so that
** units are compared from one start), then every postprocessor. */
static fv_status start_stimulus(const fv__ins *s, const stages *sg, fv__ins_stimulus *st)
{
	const int64_t *in = s->info->input_shape;
	const int64_t shape[5] = {1, in[0], s->time_steps, in[1], in[2]};
	fv_ctx *rng = fv_ctx_new();
	st->x = rng != NULL ? fv_tensor_new(5, shape) : NULL;
	if (st->x == NULL) {
		fv_ctx_free(rng);
		return fv_error(FV_ERR_NOMEM, "out of memory for the start stimulus");
	}
	fv_ctx_seed(rng, s->job->seed);
	for (int64_t i = 0; i < st->x->numel; i++)
		st->x->data[i] = (fv_real)(fv_ctx_random_normal(rng) * s->init_std);
	fv_ctx_free(rng);
	for (size_t i = 0; i < sg->n_post; i++)
		if (fv_module_project(sg->post[i], st->x) != FV_OK) {
			fv_error_prefix("postprocessors[%zu]: ", i);
			return FV_ERR_ARG;
		}
	return FV_OK;
}

typedef struct tracer {
	const fv__ins *s;
	fv__ins_stimulus *st;
} tracer;

static bool grow(double **a, size_t cap)
{
	double *p = fv__realloc(*a, cap * sizeof *p);
	if (p != NULL)
		*a = p;
	return p != NULL;
}

static fv_status on_iteration(void *ud, const fv_iteration *it)
{
	const fv__ins *s = ((tracer *)ud)->s;
	fv__ins_stimulus *st = ((tracer *)ud)->st;
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 64;
		if (!grow(&st->objective, cap) || !grow(&st->loss, cap) || !grow(&st->seconds, cap))
			return fv_error(FV_ERR_NOMEM, "out of memory recording the objective trace");
		st->cap = cap;
	}
	double t = now();
	st->objective[st->n] = it->objective;
	st->loss[st->n] = it->loss;
	st->seconds[st->n] = t - st->last;
	st->last = t;
	st->n++;
	if (s->live) {
		fprintf(s->out, "\r%s: iteration %lld", st->stem, (long long)it->index + 1);
		if (s->max_iterations > 0)
			fprintf(s->out, "/%lld", (long long)s->max_iterations);
		fprintf(s->out, "  objective %.5g ", it->objective);
		fflush(s->out);
	}
	return FV_OK;
}

static fv_status optimise(const fv__ins *s, stages *sg, fv__ins_stimulus *st)
{
	tracer tr = {s, st};
	fv_optimize_args args = {.struct_size = sizeof args, .model = s->model,
	                         .objective = sg->objective, .stopper = sg->stopper,
	                         .optimizer = &sg->optim, .n_penalties = sg->n_pen,
	                         .penalties = sg->pen, .n_postprocessors = sg->n_post,
	                         .postprocessors = sg->post, .on_iteration = on_iteration, .ud = &tr};
	double t0 = st->last = now();
	fv_status rc = fv_optimize_stimulus(st->x, &args, NULL);
	st->total_seconds = now() - t0;
	if (rc != FV_OK && s->live)
		fputc('\n', s->out); /* end the progress line before the error */
	return rc;
}

/* The objective, the unit's response over time and the peak at the final
** stimulus. */
static fv_status evaluate(const fv__ins *s, const stages *sg, fv__ins_stimulus *st)
{
	fv_ctx *ctx = fv_ctx_new();
	if (ctx == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_ctx_set_grad_enabled(ctx, false);
	fv_status rc = FV_OK;
	fv_tensor *obj = fv_module_objective(sg->objective, ctx, s->model, st->x);
	if (obj == NULL) {
		fv_error_prefix("objective: ");
		rc = FV_ERR_ARG;
	} else {
		st->final_objective = (double)obj->data[0];
	}
	fv_tensor *y = rc == FV_OK && st->unit >= 0 ? fv__ins_responses(s, ctx, st->x)
	                                            : NULL;
	if (rc == FV_OK && st->unit >= 0 && y == NULL)
		rc = FV_ERR_ARG;
	size_t bytes = y != NULL ? (size_t)y->shape[0] * sizeof(double) : 0;
	if (y != NULL && (st->response_trace = fv__malloc(bytes)) == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	if (y != NULL && st->response_trace != NULL) {
		st->n_response = y->shape[0];
		for (int64_t t = 0; t < st->n_response; t++)
			st->response_trace[t] = (double)y->data[t * y->shape[1] + st->unit];
	}
	fv_ctx_free(ctx);
	if (rc == FV_OK)
		rc = fv_stimulus_peak(st->x, &st->peak[0], &st->peak[1], &st->peak[2]);
	return rc;
}

static void report(const fv__ins *s, const fv__ins_stimulus *st)
{
	if (s->quiet)
		return;
	fprintf(s->out, "%s%s: %zu iterations, objective %.5g -> %.5g, %.1f ms/iteration; peak at "
	        "row %lld, col %lld (channel %lld); wrote %s/%s.{npy,png,json}\n",
	        s->live ? "\r\033[K" : "", st->stem, st->n, st->n ? st->objective[0] : NAN,
	        st->final_objective, st->n ? 1e3 * st->total_seconds / (double)st->n : NAN,
	        (long long)st->peak[1], (long long)st->peak[2], (long long)st->peak[0], s->dir,
	        st->stem);
	fflush(s->out);
}

static fv_status announce(const fv__ins *s, const fv__ins_stimulus *st)
{
	if (s->on_result == NULL)
		return FV_OK;
	fv_insilico_record r = {
		.stem = st->stem, .dir = s->dir, .unit = st->unit, .stimulus = st->x,
		.iterations = st->n, .objective_trace = st->objective, .loss_trace = st->loss,
		.final_objective = st->final_objective,
		.seconds_per_iteration = st->n ? st->total_seconds / (double)st->n : NAN,
		.peak_channel = st->peak[0], .peak_row = st->peak[1], .peak_col = st->peak[2],
		.response_trace = st->response_trace, .n_response = st->n_response,
		.title = st->title,
	};
	return s->on_result(s->ud, &r);
}

static fv_status optimise_unit(fv__ins *s, int64_t unit, fv_insilico_result *res)
{
	fv__ins_stimulus st = {.unit = unit};
	stages sg = {0};
	fv_status rc = name_stimulus(s, &st);
	if (rc == FV_OK)
		rc = set_objective(s, unit);
	if (rc == FV_OK)
		rc = build_stages(s, &sg);
	if (rc == FV_OK)
		rc = start_stimulus(s, &sg, &st);
	if (rc == FV_OK)
		rc = optimise(s, &sg, &st);
	if (rc == FV_OK)
		rc = evaluate(s, &sg, &st);
	if (rc == FV_OK)
		rc = fv__ins_write(s, &st);
	if (rc == FV_OK)
		report(s, &st);
	if (rc == FV_OK)
		rc = announce(s, &st);
	if (rc == FV_OK) {
		res->n_stimuli++;
		res->iterations += (int64_t)st.n;
	} else {
		fv_error_prefix("%s: ", st.stem);
	}
	stages_free(&sg);
	fv_tensor_free(st.x);
	free(st.objective);
	free(st.loss);
	free(st.seconds);
	free(st.response_trace);
	return rc;
}

/* ---- the run ------------------------------------------------------------------------- */

/* Whether the k-th unit of the job is this process's (every unit checks
** and loads alike on every process, so errors are the same everywhere). */
static bool mine(const fv__ins *s, int64_t k)
{
	return s->shard_count <= 1 || k % s->shard_count == s->shard_index;
}

static fv_status run(fv__ins *s, fv_insilico_result *res)
{
	fv_status st = open_model(s);
	if (st == FV_OK)
		st = fv__ins_config_complete(s);
	if (st == FV_OK)
		st = fv__ins_check_memory(s);
	if (st == FV_OK)
		st = check_units(s);
	if (st == FV_OK && s->job->kind == FV_INSILICO_INNER_MEI)
		st = fv__ins_config_inner_start(s);
	if (st == FV_OK && s->job->reference != NULL)
		st = fv__ins_reference(s);
	if (st == FV_OK)
		st = make_dir(s->dir);
	if (st != FV_OK || s->job->kind == FV_INSILICO_MDS)
		return st == FV_OK && mine(s, 0) ? optimise_unit(s, -1, res) : st;
	const fv_indices *units = &s->job->units;
	int64_t n = units->n > 0 ? (int64_t)units->n : s->n_units;
	for (int64_t k = 0; st == FV_OK && k < n; k++)
		if (mine(s, k))
			st = optimise_unit(s, units->n > 0 ? units->v[k] : k, res);
	return st;
}

fv_status fv_optimize_from_config(fv_registry *reg, fv_config *cfg, const fv_insilico_job *job,
                                  const fv_insilico_options *o, fv_insilico_result *res)
{
	double t0 = now();
	fv_insilico_result scratch;
	res = res != NULL ? res : &scratch;
	*res = (fv_insilico_result){0};
	fv_status st = check_job(job);
	if (st == FV_OK && reg == NULL)
		st = fv_error(FV_ERR_ARG, "fv_optimize_from_config: no registry given");
	if (st != FV_OK)
		return st;
	fv__ins s = {.reg = reg, .job = job, .cfg = cfg};
	s.out = o != NULL && o->out != NULL ? o->out : stdout;
	s.quiet = o != NULL && o->quiet;
	s.dir = o != NULL && o->out_dir != NULL ? o->out_dir : ".";
	s.on_result = o != NULL ? o->on_result : NULL;
	s.ud = o != NULL ? o->ud : NULL;
	s.shard_index = o != NULL ? o->shard_index : 0;
	s.shard_count = o != NULL ? o->shard_count : 0;
	if (s.shard_count > 1 && (s.shard_index < 0 || s.shard_index >= s.shard_count))
		return fv_error(FV_ERR_ARG, "fv_optimize_from_config: shard %d of %d",
		                s.shard_index, s.shard_count);
	int progress = o != NULL ? o->progress : -1;
	s.live = !s.quiet && (progress == 1 || (progress < 0 && isatty(fileno(s.out))));
	fv_config *own = NULL;
	if (cfg == NULL && (s.cfg = own = fv_insilico_config_compose(job->kind, NULL, 0, NULL)) == NULL)
		return FV_ERR_NOMEM;
	st = fv__ins_config_defaults(s.cfg, job->kind);
	if (st == FV_OK)
		st = run(&s, res);
	free(s.reference_mean);
	fv_model_free(s.model);
	fv_module_free(s.module);
	fv_checkpoint_close(s.ck);
	fv_config_free(own);
	res->seconds = now() - t0;
	return st;
}
