/*
** test_alloc_failures.c: every allocation of five jobs fails in turn, as
** SQLite's test harness fails each malloc of a statement (fv_alloc_fail_at):
**
**   compose     configs/example.yaml with the defaults it names and
**               command-line overrides (fv_config_compose);
**   build       its model for a two-session data info, through the
**               registry (fv_model_build);
**   step        two training steps of a fresh model: parameters, AdamW,
**               fv_core_readout_step, backward, clipping, optimizer step,
**               context reset;
**   save        the model after a step, with its optimizer state, as the
**               trainer writes a checkpoint (fv_checkpoint_save);
**   checkpoint  open that checkpoint, rebuild its model, load its weights
**               and optimizer state (fv_checkpoint_open, fv_model_load,
**               fv_checkpoint_load_optimizer).
**
** A job is counted once (fv_alloc_fail_at returns how many allocations it
** made), then run again with the 1st, 2nd, ... of them failing, each once
** alone (the allocations after it succeed: a failure that is swallowed
** shows as a job that succeeds) and once with every later one too (error
** paths that allocate).  Every run must fail with FV_ERR_NOMEM and a
** message that says memory ran out; the sanitizer build of the suite
** checks that none leaks or crashes.  The jobs make at most a few thousand
** allocations, so every one is tested (about 10 s in all).
**
** Plugins allocate with plain malloc (not counted); what they ask of the
** framework (tensors, modules, contexts) is.  One thread, so that the n-th
** allocation is the same one on every run.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "fovea/trainer.h"
#include "plugin_testing.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

/* ---- the driver ----------------------------------------------------------------------- */

/* What a job's run returns when the call that failed returns NULL (the
** message is the only account of the failure then). */
#define RETURNED_NULL ((fv_status)1)

/* A job: `setup` prepares what the job starts from (not counted), `run`
** is the counted part and frees what it made whether it succeeds or not,
** `teardown` frees what setup made.  `state` is the job's own. */
typedef struct alloc_job {
	const char *name;
	void (*setup)(void *state);
	fv_status (*run)(void *state);
	void (*teardown)(void *state);
	void *state;
} alloc_job;

/* Run `j` with its `fail_at`-th allocation failing (0: none), and with
** `sticky` every one after it too; the number of allocations it made. */
static long run_job(const alloc_job *j, long fail_at, bool sticky, fv_status *st)
{
	if (j->setup != NULL)
		j->setup(j->state);
	fv_clear_error();
	fv_alloc_fail_at(fail_at, sticky);
	*st = j->run(j->state);
	long made = fv_alloc_fail_at(0, false);
	if (j->teardown != NULL)
		j->teardown(j->state);
	return made;
}

/* Whether the run with the `fail_at`-th allocation failing failed as it
** should; if not, what went wrong is appended to `report`. */
static bool check_run(const alloc_job *j, long fail_at, bool sticky, char *report, size_t size)
{
	fv_status st;
	long made = run_job(j, fail_at, sticky, &st);
	const char *why = made < fail_at                                  ? "was not made"
	                  : st != FV_ERR_NOMEM && st != RETURNED_NULL     ? "gave another status"
	                  : strstr(fv_errmsg(), "memory") == NULL          ? "is not in the message"
	                                                                   : NULL;
	if (why == NULL)
		return true;
	size_t at = strlen(report);
	snprintf(report + at, size - at, "\n  %s allocation %ld %s: status %d (%s), message '%s'",
	         sticky ? "from" : "only", fail_at, why, st, fv_status_name(st), fv_errmsg());
	return false;
}

/* Fail each allocation of `j` in turn, alone and with all later ones. */
static void fail_each(const alloc_job *j)
{
	fv_status st;
	/* the first run may fill caches (thread pools, lazily built tables) */
	run_job(j, 0, false, &st);
	cr_assert_eq(st, FV_OK, "%s: %s", j->name, fv_errmsg());
	long n = run_job(j, 0, false, &st);
	cr_assert_eq(st, FV_OK, "%s: %s", j->name, fv_errmsg());
	cr_assert_gt(n, 0, "%s made no allocation", j->name);
	char report[4096] = "";
	long bad = 0;
	for (long i = 1; i <= n; i++)
		for (int sticky = 0; sticky < 2; sticky++)
			bad += !check_run(j, i, sticky, report, sizeof report);
	cr_assert_eq(bad, 0, "%s: %ld of %ld failed allocations were mishandled:%s", j->name, bad,
	             2 * n, report);
	cr_log_info("%s: %ld allocations", j->name, n);
}

/* ---- what the jobs share -------------------------------------------------------------- */

static fv_registry *reg;
static char tmp[] = "/tmp/fovea_alloc_XXXXXX";
static char ckpt_path[sizeof tmp + 32];

/* configs/example.yaml scaled down to a tiny model, as test_trainer's. */
static const char *const overrides[] = {
	"paths.data_dir=/nonexistent", "paths.output_dir=/nonexistent/run",
	"data_io.color_channels=1", "data_io.video_height=6", "data_io.video_width=5",
	"dataloader.batch_size=2", "dataloader.train_chunk_size=12",
	"model.core.temporal_kernel_sizes=[5]", "model.hidden_channels=[3]", "seed=7",
	"+notes=${exp_name}-${seed}", "~check_stimuli_responses_match",
};
#define N_OVERRIDES ((int)(sizeof overrides / sizeof overrides[0]))

static fv_config *compose(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/../configs/example.yaml", FOVEA_TEST_SRCDIR);
	return fv_config_compose(path, NULL, N_OVERRIDES, overrides);
}

/* Two sessions of 3 and 2 neurons, 1 x 6 x 5 pixels. */
static const char *const sessions[] = {"session_0", "session_1"};
static const int64_t n_neurons[] = {3, 2};
static fv_tensor *mean_activity[2];
static fv_data_info info = {
	.n_sessions = 2, .sessions = sessions, .n_neurons = n_neurons,
	.mean_activity = mean_activity, .input_shape = {1, 6, 5}, .stim_mean = 0, .stim_std = 1,
};

static void suite_load(void)
{
	fv_set_num_threads(1);
	reg = PT_REGISTRY("cores", "readouts", "losses", "regularizers", "models");
	for (int i = 0; i < 2; i++) {
		mean_activity[i] = fv_tensor_new(1, &n_neurons[i]);
		cr_assert_not_null(mean_activity[i]);
		fv_tensor_fill(mean_activity[i], 0.5f * (fv_real)(i + 1));
	}
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(ckpt_path, sizeof ckpt_path, "%s/model.safetensors", tmp);
}

static void suite_unload(void)
{
	unlink(ckpt_path);
	rmdir(tmp);
	for (int i = 0; i < 2; i++)
		fv_tensor_free(mean_activity[i]);
	fv_registry_free(reg);
}

TestSuite(alloc_failures, .init = suite_load, .fini = suite_unload, .timeout = 120);

/* ---- compose ------------------------------------------------------------------------------ */

static fv_status run_compose(void *state)
{
	(void)state;
	fv_config *cfg = compose();
	fv_config_free(cfg);
	return cfg != NULL ? FV_OK : RETURNED_NULL;
}

Test(alloc_failures, compose_a_config)
{
	alloc_job j = {"compose", NULL, run_compose, NULL, NULL};
	fail_each(&j);
}

/* ---- build -------------------------------------------------------------------------------- */

typedef struct model_job {
	fv_config *cfg;
	fv_module *model, *loss, *eval_loss;
	fv_tensor *x, *target;
	fv_optimizer *opt; /* after a step, with its parameter list */
	fv_tensor **params;
	size_t n_params;
} model_job;

static void setup_config(void *state)
{
	model_job *mj = state;
	*mj = (model_job){0};
	mj->cfg = compose();
	cr_assert_not_null(mj->cfg, "%s", fv_errmsg());
}

static fv_module *build(fv_config *cfg)
{
	return fv_model_build(reg, cfg, &info, 7);
}

static fv_status run_build(void *state)
{
	model_job *mj = state;
	fv_module *m = build(mj->cfg);
	fv_module_free(m);
	return m != NULL ? FV_OK : RETURNED_NULL;
}

static void teardown_model_job(void *state)
{
	model_job *mj = state;
	fv_optimizer_free(mj->opt);
	free(mj->params);
	fv_module_free(mj->model);
	fv_module_free(mj->loss);
	fv_module_free(mj->eval_loss);
	fv_tensor_free(mj->x);
	fv_tensor_free(mj->target);
	fv_config_free(mj->cfg);
}

Test(alloc_failures, build_a_model)
{
	model_job mj;
	alloc_job j = {"build", setup_config, run_build, teardown_model_job, &mj};
	fail_each(&j);
}

/* ---- step ------------------------------------------------------------------------------- */

/* A fresh model (its gradients not yet allocated), its losses and a batch
** of session_1: 16 clips of 40 frames, 2 neurons, enough for a step to
** need more than the arena's first chunk. */
static void setup_step(void *state)
{
	model_job *mj = state;
	setup_config(mj);
	mj->model = build(mj->cfg);
	cr_assert_not_null(mj->model, "%s", fv_errmsg());
	const fv_config_node *spec = fv_node_get(fv_config_root(mj->cfg), "model");
	mj->loss = fv_default_loss(reg, spec);
	mj->eval_loss = fv_default_evaluation_loss(reg, spec);
	cr_assert(mj->loss != NULL && mj->eval_loss != NULL, "%s", fv_errmsg());
	mj->x = pt_input(5, (int64_t[]){16, 1, 40, 6, 5}, 1, -1, 1);
	mj->target = pt_input(3, (int64_t[]){16, 40, 2}, 2, 0, 3);
}

/* `n_steps` steps as the trainer takes them, the context reset between
** them (which merges the arena's chunks); with `keep` the optimizer and
** its parameter list stay in mj, for a checkpoint. */
static fv_status steps(model_job *mj, int n_steps, bool keep)
{
	size_t n = 0;
	fv_tensor **params = fv_module_params(mj->model, &n);
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	fv_optimizer *opt = params != NULL ? fv_optimizer_new(&oc, n, params) : NULL;
	fv_ctx *ctx = opt != NULL ? fv_ctx_new() : NULL;
	fv_status st = ctx != NULL ? FV_OK : RETURNED_NULL;
	for (int k = 0; k < n_steps && st == FV_OK; k++) {
		fv_step_terms terms;
		fv_ctx_reset(ctx);
		st = fv_core_readout_step(ctx, mj->model, mj->loss, mj->eval_loss, mj->x, mj->target,
		                          "session_1", &terms);
		if (st == FV_OK)
			st = fv_backward(ctx, terms.total);
		if (st == FV_OK) {
			fv_clip_grad_norm(n, params, 1.0);
			st = fv_optimizer_step(opt);
		}
		fv_optimizer_zero_grad(opt);
	}
	fv_ctx_free(ctx);
	if (st == FV_OK && keep) {
		mj->opt = opt;
		mj->params = params;
		mj->n_params = n;
	} else {
		fv_optimizer_free(opt);
		free(params);
	}
	return st;
}

/* Two steps: the first allocates the gradients, the optimizer state and
** the arena's chunks, the second reuses them after the merge. */
static fv_status run_step(void *state)
{
	return steps(state, 2, false);
}

Test(alloc_failures, take_a_training_step)
{
	model_job mj;
	alloc_job j = {"step", setup_step, run_step, teardown_model_job, &mj};
	fail_each(&j);
}

/* ---- save ------------------------------------------------------------------------------- */

/* The model after one step, with its optimizer state. */
static void setup_trained(void *state)
{
	model_job *mj = state;
	setup_step(mj);
	cr_assert_eq(steps(mj, 1, true), FV_OK, "%s", fv_errmsg());
}

/* What the trainer writes: the config as YAML, the model, the optimizer
** state, the data info and a trainer state. */
static fv_status run_save(void *state)
{
	model_job *mj = state;
	char *yaml = fv_config_to_yaml(mj->cfg);
	if (yaml == NULL)
		return RETURNED_NULL;
	fv_checkpoint_content c = {.model = mj->model, .config_yaml = yaml, .data_info = &info,
	                           .optimizer = mj->opt, .n_optim_params = mj->n_params,
	                           .optim_params = mj->params, .trainer_state = "{\"epoch\": 1}"};
	fv_status st = fv_checkpoint_save(ckpt_path, &c);
	free(yaml);
	return st;
}

/* A failed save leaves nothing behind: the directory holds the checkpoint
** of an earlier successful run or nothing (no temporary file). */
static void teardown_save(void *state)
{
	teardown_model_job(state);
	DIR *d = opendir(tmp);
	cr_assert_not_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		cr_assert(e->d_name[0] == '.' || strcmp(e->d_name, "model.safetensors") == 0,
		          "a save left '%s' in %s", e->d_name, tmp);
	closedir(d);
}

Test(alloc_failures, save_a_checkpoint)
{
	model_job mj;
	alloc_job j = {"save", setup_trained, run_save, teardown_save, &mj};
	fail_each(&j);
}

/* ---- checkpoint ----------------------------------------------------------------------------- */

static void write_checkpoint(void)
{
	model_job mj;
	setup_trained(&mj);
	cr_assert_eq(run_save(&mj), FV_OK, "%s", fv_errmsg());
	teardown_model_job(&mj);
}

static fv_status run_checkpoint(void *state)
{
	(void)state;
	fv_checkpoint *ck = fv_checkpoint_open(ckpt_path);
	fv_config *cfg = NULL;
	fv_module *model = ck != NULL ? fv_model_load(reg, ck, &cfg) : NULL;
	size_t n = 0;
	fv_tensor **params = model != NULL ? fv_module_params(model, &n) : NULL;
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	fv_optimizer *opt = params != NULL ? fv_optimizer_new(&oc, n, params) : NULL;
	fv_status st = opt != NULL ? fv_checkpoint_load_optimizer(ck, opt, n, params)
	                           : RETURNED_NULL;
	fv_optimizer_free(opt);
	free(params);
	fv_module_free(model);
	fv_config_free(cfg);
	fv_checkpoint_close(ck);
	return st;
}

Test(alloc_failures, load_a_checkpoint)
{
	write_checkpoint();
	alloc_job j = {"checkpoint", NULL, run_checkpoint, NULL, NULL};
	fail_each(&j);
}
