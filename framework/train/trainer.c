/*
** trainer.c: fv_train(), openretina's train.py with Lightning's fit loop
** (see trainer.h): read the settings, open the data, build (or load) the
** model, then run epochs until max_epochs or early stopping, keeping the
** output directory up to date after every epoch.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "fovea/data_plugin.h"
#include "train/trainer_internal.h"

/* ---- settings ---------------------------------------------------------------------- */

static fv_status read_bool(const fv_config_node *root, const char *path, bool *out)
{
	const fv_config_node *n = fv_node_path(root, path);
	*out = false;
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	return fv_node_to_bool(n, out);
}

static fv_status read_string(const fv_config_node *root, const char *path, const char **out)
{
	const fv_config_node *n = fv_node_path(root, path);
	*out = NULL;
	if (n == NULL || fv_node_is_null(n))
		return FV_OK;
	if (fv_node_kind(n) != FV_NODE_SCALAR)
		return fv_error_at(n, FV_ERR_CONFIG, "%s: expected a string", path);
	const char *s = fv_node_text(n);
	if (!fv_node_quoted(n) && strcmp(s, "???") == 0)
		return fv_error_at(n, FV_ERR_CONFIG, "%s: missing value (?\?\?): set it, e.g. %s=...", path,
		                   path);
	*out = s;
	return FV_OK;
}

/* A map of the config (the model's own key first), or NULL. */
static const fv_config_node *spec_of(const fv_config_node *root, const char *key)
{
	const fv_config_node *n = fv_node_path(root, "model");
	n = n != NULL ? fv_node_get(n, key) : NULL;
	if (n == NULL || fv_node_kind(n) != FV_NODE_MAP)
		n = fv_node_get(root, key);
	return n != NULL && fv_node_kind(n) == FV_NODE_MAP ? n : NULL;
}

const fv_config_node *fv__trainer_callback(const fv_config_node *root, const char *cls)
{
	const fv_config_node *cbs = fv_node_get(root, "training_callbacks");
	for (size_t i = 0; cbs != NULL && i < fv_node_size(cbs); i++) {
		const fv_config_node *cb = fv_node_at(cbs, i);
		const char *target = fv_node_text(fv_node_get(cb, "_target_"));
		size_t n = target ? strlen(target) : 0, m = strlen(cls);
		if (n >= m && strcmp(target + n - m, cls) == 0)
			return cb;
	}
	return NULL;
}

static fv_status metric_of(const char *name, const char *who, int *out)
{
	*out = fv__metric_index(name);
	if (*out >= 0)
		return FV_OK;
	fv__text t = {0};
	for (int i = 0; i < N_METRICS; i++)
		fv__text_printf(&t, "%s%s", i ? ", " : "", fv__metric_names[i]);
	char *list = fv__text_take(&t, "metric names");
	fv_status rc = fv_error(FV_ERR_CONFIG, "%s: unknown monitor '%s' (fovea logs %s)", who, name,
	                        list ? list : "");
	free(list);
	return rc;
}

static fv_status read_checkpoint_monitor(fv__trainer *t, const fv_config_node *root)
{
	const fv_config_node *cb = fv__trainer_callback(root, "ModelCheckpoint");
	const char *monitor = NULL, *mode = NULL;
	fv_status rc = FV_OK;
	if (cb != NULL && (rc = read_string(cb, "monitor", &monitor)) == FV_OK)
		rc = read_string(cb, "mode", &mode);
	if (rc != FV_OK)
		return rc;
	t->best_mode_max = mode == NULL || strcmp(mode, "max") == 0;
	return metric_of(monitor ? monitor : "val_evaluation_loss", "ModelCheckpoint", &t->best_metric);
}

static fv_status read_settings(fv__trainer *t, const char **output_dir)
{
	const fv_config_node *root = fv_config_root(t->cfg);
	fv_status rc = fv__read_trainer(t, root);
	int64_t seed = 0;
	const fv_config_node *seed_node = fv_node_get(root, "seed");
	if (rc == FV_OK && seed_node != NULL && !fv_node_is_null(seed_node))
		rc = fv_node_to_int(seed_node, &seed);
	else if (rc == FV_OK)
		seed = (int64_t)time(NULL); /* openretina does not seed either */
	t->seed = (uint64_t)seed;
	/* the saved config records the seed a run used */
	char arg[64];
	snprintf(arg, sizeof arg, "++seed=%lld", (long long)seed);
	if (rc == FV_OK)
		rc = fv_config_override(t->cfg, arg);
	bool check_match = false;
	if (rc == FV_OK)
		rc = read_bool(root, "check_stimuli_responses_match", &check_match);
	if (rc == FV_OK && !check_match) /* fovea always checks: false has no effect */
		fv__node_unmark(fv_node_get(root, "check_stimuli_responses_match"));
	if (rc == FV_OK)
		rc = read_bool(root, "only_train_readout", &t->only_train_readout);
	if (rc == FV_OK)
		rc = read_bool(root, "resume", &t->resume);
	if (rc == FV_OK)
		rc = read_string(root, "paths.output_dir", output_dir);
	if (rc == FV_OK && *output_dir == NULL)
		rc = fv_error(FV_ERR_CONFIG, "paths.output_dir is not set: give it in the config or "
		              "as paths.output_dir=DIR");
	if (rc == FV_OK)
		rc = read_string(root, "paths.load_model_path", &t->load_model_path);
	t->learning_rate = 0.001; /* UnifiedCoreReadout's default */
	const fv_config_node *lr = fv_node_path(root, "model.learning_rate");
	if (rc == FV_OK && lr != NULL && !fv_node_is_null(lr))
		rc = fv_node_to_double(lr, &t->learning_rate);
	if (rc == FV_OK)
		rc = fv_lr_scheduler_parse(spec_of(root, "lr_scheduler"), t->learning_rate, &t->sched);
	if (rc == FV_OK)
		rc = fv_early_stopping_parse(fv__trainer_callback(root, "EarlyStopping"), &t->stop);
	if (rc == FV_OK && t->sched.kind == FV_SCHED_PLATEAU)
		rc = metric_of(t->sched.monitor, "lr_scheduler", &t->sched_metric);
	/* Lightning's EarlyStopping(strict=True) fails on a metric never logged;
	** fovea knows its metric names, so it says so before training */
	if (rc == FV_OK && t->stop.enabled && t->stop.strict)
		rc = metric_of(t->stop.monitor, "EarlyStopping", &t->stop_metric);
	else if (rc == FV_OK && t->stop.enabled)
		t->stop_metric = fv__metric_index(t->stop.monitor);
	if (rc == FV_OK)
		rc = read_checkpoint_monitor(t, root);
	return rc;
}

/* ---- setting up ------------------------------------------------------------------------ */

static fv_status open_data(fv__trainer *t)
{
	fv_status rc = fv_data_open_config(t->reg, fv_config_root(t->cfg), &t->data);
	if (rc != FV_OK)
		return rc;
	t->info = fv_data_get_info(t->data);
	return FV_OK;
}

/* The config a fine-tuned checkpoint rebuilds its model from: the base's.
** A base imported from an openretina .ckpt has only its `model`; the rest
** (data, dataloader, ...) is then this run's, so that `fovea eval` of the
** result reads the data as it was trained on. */
static fv_status keep_model_config(fv__trainer *t, const fv_config *base_cfg)
{
	char *base = fv_config_to_yaml(base_cfg);
	if (base == NULL)
		return fv_errcode();
	if (fv_node_size(fv_config_root(base_cfg)) != 1) {
		t->model_config_yaml = base;
		return FV_OK;
	}
	char *run = fv_config_to_yaml(t->cfg);
	fv_config *rest = run != NULL ? fv_config_load_string(run, strlen(run), "the config") : NULL;
	char *rest_yaml = NULL;
	if (rest != NULL && fv_config_override(rest, "~model") == FV_OK)
		rest_yaml = fv_config_to_yaml(rest);
	fv__text text = {0};
	if (rest_yaml != NULL) {
		fv__text_printf(&text, "%s%s%s", rest_yaml,
		                rest_yaml[0] != '\0' && rest_yaml[strlen(rest_yaml) - 1] != '\n' ? "\n"
		                                                                              : "",
		                base);
		t->model_config_yaml = fv__text_take(&text, "the model config");
	}
	fv_status rc = t->model_config_yaml != NULL ? FV_OK : fv_errcode();
	free(rest_yaml);
	fv_config_free(rest);
	free(run);
	free(base);
	return rc;
}

static fv_status build_model(fv__trainer *t)
{
	if (t->load_model_path == NULL) {
		t->model = fv_model_build(t->reg, t->cfg, t->info, t->seed);
		return t->model != NULL ? FV_OK : fv_errcode();
	}
	/* fine-tuning: the checkpoint's model, plus readouts for new sessions */
	t->base = fv_checkpoint_open(t->load_model_path);
	if (t->base == NULL)
		return fv_errcode();
	const fv_data_info *old = fv_checkpoint_data_info(t->base);
	const char *yaml = fv_checkpoint_model_config_yaml(t->base);
	if (old == NULL || yaml == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: the checkpoint has no data_info or config",
		                t->load_model_path);
	size_t n_new = 0;
	t->merged = fv__merged_info_new(old, t->info, t->load_model_path, &n_new);
	if (t->merged == NULL)
		return fv_errcode();
	t->info = fv__merged_info_get(t->merged);
	fv_config *base_cfg = fv_config_load_string(yaml, strlen(yaml), t->load_model_path);
	if (base_cfg == NULL)
		return fv_errcode();
	t->model = fv_model_build(t->reg, base_cfg, t->info, t->seed);
	fv_status rc = t->model != NULL ? fv_checkpoint_load_model(t->base, t->model, n_new > 0)
	                                : fv_errcode();
	/* later checkpoints rebuild this model, not the one cfg.model describes */
	if (rc == FV_OK)
		rc = keep_model_config(t, base_cfg);
	fv_config_free(base_cfg);
	if (rc == FV_OK && !t->quiet && n_new > 0)
		fprintf(t->out, "fine-tuning %s: %zu new session(s) get new readouts\n",
		        t->load_model_path, n_new);
	return rc;
}

static int freeze(void *ud, const char *name, fv_tensor *p, bool is_param)
{
	(void)ud;
	(void)name;
	if (is_param)
		p->requires_grad = false;
	return 0;
}

/* The resolved config as the output directory and the checkpoints keep it. */
static fv_status record_config(fv__trainer *t)
{
	t->config_yaml = fv_config_to_yaml(t->cfg);
	return t->config_yaml != NULL ? FV_OK : fv_errcode();
}

static fv_status make_optimizer(fv__trainer *t)
{
	const fv_config_node *spec = spec_of(fv_config_root(t->cfg), "optimizer");
	fv_optim_config oc = fv_optim_defaults(FV_OPTIM_ADAMW);
	oc.lr = t->learning_rate;
	fv_status rc = spec != NULL ? fv_optim_config_parse(spec, &oc) : FV_OK;
	if (rc != FV_OK)
		return rc;
	if (t->only_train_readout) {
		fv_module *core = fv_module_child(t->model, "core");
		if (core == NULL)
			return fv_error(FV_ERR_CONFIG, "only_train_readout: the model has no core");
		fv_module_foreach_tensor(core, freeze, NULL);
	}
	t->params = fv_module_params(t->model, &t->n_params);
	if (t->params == NULL)
		return fv_errcode();
	if (t->n_params == 0)
		return fv_error(FV_ERR_CONFIG, "the model has no trainable parameters%s",
		                t->only_train_readout ? " outside its frozen core" : "");
	t->opt = fv_optimizer_new(&oc, t->n_params, t->params);
	return t->opt != NULL ? FV_OK : fv_errcode();
}

static fv_status make_loop(fv__trainer *t)
{
	const fv_config_node *spec = fv_node_path(fv_config_root(t->cfg), "model");
	t->loss = fv_default_loss(t->reg, spec);
	t->eval_loss = t->loss != NULL ? fv_default_evaluation_loss(t->reg, spec) : NULL;
	if (t->eval_loss == NULL)
		return fv_errcode();
	t->train_it = fv_data_train_batches(t->data, t->seed);
	t->val_it = fv_data_validation_batches(t->data);
	t->ctx = fv_ctx_new();
	if (t->train_it == NULL || t->val_it == NULL || t->ctx == NULL)
		return fv_errcode();
	if (fv_batch_iter_len(t->train_it) == 0)
		return fv_error(FV_ERR_CONFIG, "no training batches: every session's training movie is "
		                "shorter than one batch of dataloader.batch_size chunks");
	fv_status rc = fv__trainer_batches(t, fv_batch_iter_len(t->train_it));
	if (rc != FV_OK)
		return rc;
	t->val_batches = fv__batch_limit_apply(&t->val_limit, fv_batch_iter_len(t->val_it));
	if (t->val_batches == 0 && fv_batch_iter_len(t->val_it) > 0)
		return fv_error(FV_ERR_CONFIG, "trainer.limit_val_batches 0 turns validation off: "
		                "fovea trains with a validation split, which picks best.safetensors "
		                "and drives early stopping and the learning-rate scheduler");
	/* Without validation every monitored metric is NaN: no best checkpoint,
	** no early stopping, no plateau. */
	if (fv_batch_iter_len(t->val_it) == 0)
		return fv_error(FV_ERR_CONFIG,
		                "no validation batches (dataloader.num_val_clips is 0 or "
		                "val_clip_indices is empty): fovea trains with a validation split, which "
		                "picks best.safetensors and drives early stopping and the learning-rate "
		                "scheduler; set dataloader.num_val_clips to 1 or more");
	t->best_value = t->best_mode_max ? -INFINITY : INFINITY;
	t->best_epoch = -1;
	fv__metrics_header(&t->csv);
	return FV_OK;
}

/* The scheduler's constructor: its first rate (and momentum).  OneCycleLR
** without total_steps gets Lightning's estimated_stepping_batches, as
** openretina's instantiate_scheduler gives it. */
static fv_status start_schedule(fv__trainer *t)
{
	if (t->sched.kind == FV_SCHED_ONE_CYCLE && t->sched.total_steps == 0)
		t->sched.total_steps = fv_estimated_stepping_batches(
			fv_batch_iter_len(t->train_it), t->accumulate, t->max_epochs, t->max_steps);
	double lr = fv_lr_scheduler_start(&t->sched, fv_optimizer_lr(t->opt));
	if (isnan(lr)) {
		fv_error_prefix("lr_scheduler: ");
		return fv_errcode();
	}
	fv_optimizer_set_lr(t->opt, lr);
	if (!isnan(t->sched.momentum))
		fv_optimizer_set_momentum(t->opt, t->sched.momentum);
	return FV_OK;
}

/* A new run refuses a directory holding another; resume=true continues it. */
static fv_status prepare_output(fv__trainer *t)
{
	char last[4200];
	/* under data parallelism rank 0 alone writes (and holds the lock) */
	fv_status rc = t->writer ? fv__make_dirs(t->dir) : FV_OK;
	/* before anything in the directory is read or written */
	if (rc == FV_OK && t->writer)
		rc = fv__run_lock(t->dir, &t->lock_fd);
	if (rc == FV_OK)
		rc = fv__out_path(t, "last.safetensors", last, sizeof last);
	if (rc != FV_OK)
		return rc;
	bool exists = access(last, F_OK) == 0;
	if (exists && !t->resume)
		return fv_error(FV_ERR_CONFIG, "%s already holds a training run (last.safetensors): "
		                "pass resume=true to continue it, or choose another paths.output_dir",
		                t->dir);
	if (exists) {
		fv_checkpoint *c = fv_checkpoint_open(last);
		rc = c != NULL ? fv__resume(t, c) : FV_ERR_FORMAT;
		fv_checkpoint_close(c);
		if (rc == FV_OK && !t->quiet)
			fprintf(t->out, "resuming %s after epoch %lld\n", t->dir, (long long)t->epochs_done);
	} else if (t->resume && !t->quiet) {
		fprintf(t->out, "resume: no last.safetensors in %s, starting a new run\n", t->dir);
	}
	char path[4200];
	if (rc == FV_OK)
		rc = fv__out_path(t, "config.yaml", path, sizeof path);
	if (rc == FV_OK && t->writer) {
		const void *parts[1] = {t->config_yaml};
		size_t sizes[1] = {strlen(t->config_yaml)};
		rc = fv__atomic_write(path, 1, parts, sizes);
	}
	return rc;
}

/* ---- the epochs ----------------------------------------------------------------------- */

static bool improves(const fv__trainer *t, double v)
{
	/* ModelCheckpoint keeps the top 1 by a strict comparison, in float32 */
	float value = (float)v, best = (float)t->best_value;
	return t->best_mode_max ? value > best : value < best;
}

static void print_epoch(const fv__trainer *t, double lr, bool best)
{
	if (t->quiet)
		return;
	fprintf(t->out,
	        "epoch %lld/%lld  train_loss %.6g  train_corr %.4f  val_loss %.6g  val_corr %.4f  "
	        "lr %.3g  %.1f s%s\n",
	        (long long)t->epochs_done + 1, (long long)t->max_epochs, t->metrics[M_TRAIN_LOSS],
	        t->metrics[M_TRAIN_EVAL], t->metrics[M_VAL_LOSS], t->metrics[M_VAL_EVAL], lr,
	        t->epoch_seconds, best ? "  (best)" : "");
	fflush(t->out);
}

static void announce_best(fv__trainer *t)
{
	char path[sizeof t->dir + 32];
	if (fv__out_path(t, "best.safetensors", path, sizeof path) == FV_OK)
		t->on_best(t->on_best_ud, path, t->best_epoch);
}

bool fv__trainer_interrupted(fv__trainer *t)
{
	if (!t->interrupted && t->should_stop != NULL && t->should_stop(t->on_best_ud))
		t->interrupted = true;
	return t->interrupted;
}

static fv_status report_epoch(fv__trainer *t, double lr, bool best)
{
	fv_epoch_report e = {
		.epoch = t->epochs_done - 1, .max_epochs = t->max_epochs, .n_metrics = N_METRICS,
		.names = fv__metric_names, .values = t->metrics, .lr = lr,
		.seconds = t->epoch_seconds, .best = best,
	};
	fv_status rc = t->on_epoch(t->on_best_ud, &e);
	if (rc != FV_OK)
		return fv_error(rc, "training stopped by the epoch callback after epoch %lld/%lld "
		                "(its checkpoints are written)", (long long)t->epochs_done,
		                (long long)t->max_epochs);
	return FV_OK;
}

/* Lightning's interval "epoch": non-plateau schedulers step after the
** epoch's last batch, ReduceLROnPlateau after validation, both at every
** frequency-th epoch; the rate is not used in between. */
static fv_status epoch_schedule(fv__trainer *t)
{
	if (t->sched.kind == FV_SCHED_NONE || t->sched.per_step ||
	    (t->epochs_done + 1) % t->sched.frequency != 0)
		return FV_OK;
	bool plateau = t->sched.kind == FV_SCHED_PLATEAU;
	/* Lightning reads the monitor from callback_metrics, which keep the last
	** validation's values; before any there is none (strict) */
	if (plateau && !t->val_ever)
		return fv_error(FV_ERR_CONFIG, "lr_scheduler: ReduceLROnPlateau conditioned on %s, "
		                "which is not available at the end of epoch %lld: no validation has "
		                "run yet (trainer.check_val_every_n_epoch=%lld)",
		                fv__metric_names[t->sched_metric], (long long)t->epochs_done + 1,
		                (long long)t->val_every);
	return fv__schedule_step(t, plateau ? t->metrics[t->sched_metric] : 0);
}

static fv_status end_of_epoch(fv__trainer *t)
{
	double lr = t->epoch_lr; /* the rate this epoch started with */
	bool best = t->val_ran && improves(t, t->metrics[t->best_metric]);
	if (best) {
		t->best_value = t->metrics[t->best_metric];
		t->best_epoch = t->epochs_done;
	}
	/* Lightning: on_validation_end (the reset), then the epoch's schedulers */
	fv_status rc = t->val_ran ? fv__optimizer_reset_epoch(t) : FV_OK;
	fv__weight_figures_epoch(t, t->epochs_done, t->val_ran);
	if (rc == FV_OK)
		rc = epoch_schedule(t);
	bool stop = false;
	if (rc == FV_OK)
		rc = fv__early_stopping_epoch(t, &stop);
	/* Lightning's fit loop ignores a stop request before min_epochs */
	if (stop && t->epochs_done + 1 >= t->min_epochs)
		t->stopped = true;
	print_epoch(t, lr, best);
	if (rc == FV_OK && t->writer)
		rc = fv__append_metrics(t, lr);
	t->epochs_done++;
	if (rc == FV_OK && best && t->writer)
		rc = fv__save_checkpoint(t, "best.safetensors");
	if (rc == FV_OK && best && t->on_best != NULL)
		announce_best(t);
	/* the ranking first, so that last.safetensors keeps it for resume=true */
	if (rc == FV_OK && t->val_ran && t->writer) /* at validation end (Lightning) */
		rc = fv__model_checkpoint_epoch(t);
	if (rc == FV_OK && t->writer)
		rc = fv__save_checkpoint(t, "last.safetensors");
	if (rc == FV_OK && t->on_epoch != NULL)
		rc = report_epoch(t, lr, best);
	return rc;
}

static fv_status run_epochs(fv__trainer *t, fv_train_result *res)
{
	double seconds = 0;
	int64_t ran = 0;
	fv_status rc0 = fv__sanity_check(t);
	if (rc0 != FV_OK)
		return rc0;
	fv__weight_figures_start(t); /* on_train_start */
	while (!t->stopped && t->epochs_done < t->max_epochs &&
	       (t->max_steps < 0 || t->global_step < t->max_steps)) {
		fv_status rc = fv__train_epoch(t);
		t->val_ran = (t->epochs_done + 1) % t->val_every == 0;
		if (rc == FV_OK && t->val_ran)
			rc = fv__validate(t);
		t->val_ever |= t->val_ran;
		if (rc == FV_OK && t->interrupted) {
			if (!t->quiet)
				fprintf(t->out, "%sinterrupted during epoch %lld: %s\n", t->bar ? "\n" : "",
				        (long long)t->epochs_done + 1, t->epochs_done > 0
				        ? "last.safetensors holds the last finished epoch (resume=true "
				          "continues from it)" : "no epoch finished");
			break;
		}
		if (rc == FV_OK)
			rc = end_of_epoch(t);
		if (rc != FV_OK)
			return rc;
		seconds += t->epoch_seconds;
		ran++;
	}
	res->seconds_per_epoch = ran > 0 ? seconds / (double)ran : 0;
	return FV_OK;
}

/* Lightning's trainer.test(ckpt_path="best"): continue with the best weights. */
static fv_status restore_best(fv__trainer *t)
{
	char path[4200];
	fv_status rc = fv__out_path(t, "best.safetensors", path, sizeof path);
	if (rc != FV_OK || !t->writer || t->best_epoch < 0 || access(path, F_OK) != 0)
		return rc;
	fv_checkpoint *c = fv_checkpoint_open(path);
	if (c == NULL)
		return fv_errcode();
	rc = fv_checkpoint_load_model(c, t->model, false);
	fv_checkpoint_close(c);
	return rc;
}

static void trainer_free(fv__trainer *t)
{
	fv_ctx_free(t->ctx);
	fv_batch_iter_free(t->train_it);
	fv_batch_iter_free(t->val_it);
	fv_optimizer_free(t->opt);
	free(t->params);
	fv_module_free(t->loss);
	fv_module_free(t->eval_loss);
	fv_module_free(t->model);
	fv__merged_info_free(t->merged);
	fv_checkpoint_close(t->base);
	fv_data_close(t->data);
	free(t->config_yaml);
	free(t->model_config_yaml);
	fv__text_free(&t->csv);
	fv__loggers_close(t->loggers);
	fv__model_checkpoint_free(&t->mc);
	fv__weight_figures_free(&t->wv);
	fv__run_unlock(t->lock_fd);
	fv__dp_close(t);
}

static double wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The caller's options as far as its struct_size reaches (0: the fields of
** the first release, up to ud); the rest keep their zero defaults. */
static fv_train_options options_of(const fv_train_options *o)
{
	fv_train_options copy = {.progress = -1};
	if (o == NULL)
		return copy;
	size_t n = o->struct_size != 0 ? o->struct_size : offsetof(fv_train_options, on_epoch);
	memcpy(&copy, o, n < sizeof copy ? n : sizeof copy);
	return copy;
}

/* Data parallelism: the other ranks neither write nor print nor call back. */
static fv_status data_parallel(fv__trainer *t, const fv_train_options *o)
{
	fv_status rc = fv__dp_open(t, o->data_parallel);
	t->writer = !t->dp.on || t->dp.rank == 0;
	if (!t->dp.on)
		return rc;
	t->bar = false; /* the ranks share one terminal */
	if (!t->writer) {
		t->quiet = true;
		t->stop.verbose = false;
		t->on_best = NULL;
		t->on_epoch = NULL;
	}
	if (rc == FV_OK && !t->quiet)
		fprintf(t->out, "data-parallel training over %d processes (batch norm %s)\n",
		        t->dp.size, t->dp.sync_bn ? "synced" : "per process");
	return rc;
}

static fv_status setup(fv__trainer *t, const fv_train_options *given)
{
	const char *dir = NULL;
	fv_train_options opts = options_of(given);
	const fv_train_options *o = &opts;
	t->out = o->out != NULL ? o->out : stdout;
	t->quiet = o->quiet;
	t->on_best = o->on_best;
	t->on_best_ud = o->ud;
	t->on_epoch = o->on_epoch;
	t->should_stop = o->should_stop;
	t->strict = o->strict;
	int progress = o->progress;
	t->bar = !t->quiet && (progress == 1 || (progress < 0 && isatty(fileno(t->out))));
	fv_status rc = read_settings(t, &dir);
	if (rc == FV_OK)
		rc = data_parallel(t, o);
	if (rc == FV_OK && snprintf(t->dir, sizeof t->dir, "%s", dir) >= (int)sizeof t->dir)
		rc = fv_error(FV_ERR_ARG, "output directory name too long: %s", dir);
	if (rc == FV_OK)
		rc = open_data(t);
	if (rc == FV_OK)
		rc = build_model(t);
	if (rc == FV_OK)
		rc = record_config(t);
	if (rc == FV_OK)
		rc = make_optimizer(t);
	if (rc == FV_OK)
		rc = make_loop(t);
	if (rc == FV_OK)
		rc = start_schedule(t);
	if (rc == FV_OK)
		rc = prepare_output(t);
	if (rc == FV_OK && t->writer)
		rc = fv__trainer_log_open(t);
	if (rc == FV_OK && t->writer)
		rc = fv__model_checkpoint_open(t);
	if (rc == FV_OK)
		rc = fv__optimizer_reset_open(t);
	if (rc == FV_OK && t->writer)
		rc = fv__weight_figures_open(t);
	if (rc == FV_OK && (t->writer || t->strict))
		rc = fv__report_unused(t, t->strict);
	return rc;
}

fv_status fv_train(fv_registry *reg, fv_config *cfg, const fv_train_options *o,
                   fv_train_result *res)
{
	double start = wall_seconds();
	fv_train_result scratch;
	res = res != NULL ? res : &scratch;
	memset(res, 0, sizeof *res);
	res->best_epoch = -1;
	fv__trainer t = {.reg = reg, .cfg = cfg, .lock_fd = -1};
	fv_status rc = setup(&t, o);
	if (rc == FV_OK)
		rc = run_epochs(&t, res);
	if (rc == FV_OK)
		rc = restore_best(&t);
	if (rc == FV_OK) {
		res->epochs = t.epochs_done;
		res->best_epoch = t.best_epoch;
		res->best_value = t.best_value;
		res->stopped_early = t.stopped;
		res->interrupted = t.interrupted;
		snprintf(res->output_dir, sizeof res->output_dir, "%s", t.dir);
	}
	res->seconds = wall_seconds() - start;
	trainer_free(&t);
	return rc;
}
