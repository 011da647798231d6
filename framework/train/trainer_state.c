/*
** trainer_state.c: what a training run leaves on disk and reads back to
** resume: metrics.csv, the checkpoints, and the trainer state inside
** last.safetensors (epochs done, learning rate, scheduler and early
** stopping state, the best value so far).
**
** Everything that decides the rest of a run is saved at full precision
** (17 digits, io/json.h), and the random streams are functions of the seed and the epoch
** (see trainer_epoch.c), so a resumed run continues exactly.
*/
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "train/trainer_internal.h"

const char *const fv__metric_names[N_METRICS] = {
	[M_TRAIN_LOSS] = "train_loss",
	[M_TRAIN_TOTAL] = "train_total_loss",
	[M_REG_CORE] = "regularization_loss_core",
	[M_REG_READOUT] = "regularization_loss_readout",
	[M_TRAIN_EVAL] = "train_evaluation_loss",
	[M_VAL_LOSS] = "val_loss",
	[M_VAL_REG_CORE] = "val_regularization_loss_core",
	[M_VAL_REG_READOUT] = "val_regularization_loss_readout",
	[M_VAL_TOTAL] = "val_total_loss",
	[M_VAL_EVAL] = "val_evaluation_loss",
};

int fv__metric_index(const char *name)
{
	if (strcmp(name, "val_correlation") == 0)
		return M_VAL_EVAL;
	for (int i = 0; i < N_METRICS; i++)
		if (strcmp(name, fv__metric_names[i]) == 0)
			return i;
	return -1;
}

fv_status fv__out_path(const fv__trainer *t, const char *name, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", t->dir, name);
	if (n < 0 || (size_t)n >= size)
		return fv_error(FV_ERR_ARG, "output directory name too long: %s", t->dir);
	return FV_OK;
}

/* ---- metrics.csv ------------------------------------------------------------------------ */

void fv__metrics_header(fv__text *csv)
{
	fv__text_printf(csv, "epoch,step,lr");
	for (int i = 0; i < N_METRICS; i++)
		fv__text_printf(csv, ",%s", fv__metric_names[i]);
	fv__text_printf(csv, ",epoch_seconds\n");
}

static fv_status write_text(const char *path, const fv__text *text)
{
	const void *parts[1] = {text->s ? text->s : ""};
	size_t sizes[1] = {text->len};
	if (text->failed)
		return fv_error(FV_ERR_NOMEM, "out of memory writing %s", path);
	return fv__atomic_write(path, 1, parts, sizes);
}

fv_status fv__append_metrics(fv__trainer *t, double lr)
{
	fv__text_printf(&t->csv, "%lld,%lld,%.17g", (long long)t->epochs_done,
	                (long long)t->global_step, lr);
	/* an epoch without validation (check_val_every_n_epoch) has none */
	for (int i = 0; i < N_METRICS; i++)
		fv__text_printf(&t->csv, ",%.17g", i >= M_VAL_LOSS && !t->val_ran ? NAN : t->metrics[i]);
	fv__text_printf(&t->csv, ",%.3f\n", t->epoch_seconds);
	char path[4200];
	fv_status rc = fv__out_path(t, "metrics.csv", path, sizeof path);
	if (rc == FV_OK)
		rc = write_text(path, &t->csv);
	return rc == FV_OK ? fv__trainer_log_epoch(t, lr) : rc;
}

/* Keep the header and the first `rows` rows of DIR/metrics.csv. */
static fv_status reload_metrics(fv__trainer *t, int64_t rows)
{
	char path[4200];
	fv_status rc = fv__out_path(t, "metrics.csv", path, sizeof path);
	if (rc != FV_OK)
		return rc;
	fv__text_free(&t->csv);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fv__metrics_header(&t->csv);
		return FV_OK; /* written again from this epoch on */
	}
	char line[8192];
	int64_t kept = -1; /* the header is row -1 */
	while (kept < rows && fgets(line, sizeof line, f) != NULL) {
		fv__text_printf(&t->csv, "%s", line);
		kept++;
	}
	fclose(f);
	return FV_OK;
}

/* ---- the trainer state ----------------------------------------------------------------- */

/* null in a number's place stands for an infinite value (json.h): a best
** value before the first epoch, for one */
static char *state_json(const fv__trainer *t)
{
	json_t *state = json_pack(
		"{s:I, s:I, s:I, s:o, s:o, s:I, s:b, "
		"s:{s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:I}, s:{s:I, s:o}}",
		"epochs_done", (json_int_t)t->epochs_done, "global_step", (json_int_t)t->global_step,
		/* all 64 bits, as int64; the reader casts back */
		"seed", (json_int_t)t->seed, "lr", fv__json_number(fv_optimizer_lr(t->opt)),
		"best_value", fv__json_number(t->best_value), "best_epoch", (json_int_t)t->best_epoch,
		"stopped", (int)t->stopped,
		"scheduler", "last_epoch", (json_int_t)t->sched.last_epoch,
		"num_bad_epochs", (json_int_t)t->sched.num_bad_epochs,
		"cooldown_counter", (json_int_t)t->sched.cooldown_counter,
		"best", fv__json_number(t->sched.best),
		"t_i", (json_int_t)t->sched.t_i, "t_cur", (json_int_t)t->sched.t_cur,
		"momentum", fv__json_number(t->sched.momentum),
		"total_steps", (json_int_t)t->sched.total_steps,
		"early_stopping", "wait_count", (json_int_t)t->stop.wait_count,
		"best", fv__json_number(t->stop.best));
	/* Lightning keeps ModelCheckpoint's best_k_models in the checkpoint */
	json_t *mc = state != NULL ? fv__model_checkpoint_state(&t->mc) : NULL;
	char *text = mc != NULL && json_object_set_new(state, "model_checkpoint", mc) == 0
	             ? fv__json_dump(state, 0, "the trainer state", NULL) : NULL;
	json_decref(state);
	return text;
}

fv_status fv__save_checkpoint_path(fv__trainer *t, const char *path, bool weights_only)
{
	char *state = weights_only ? NULL : state_json(t);
	if (!weights_only && state == NULL)
		return FV_ERR_NOMEM;
	fv_checkpoint_content c = {
		.model = t->model,
		.config_yaml = t->config_yaml,
		.model_config_yaml = t->model_config_yaml,
		.data_info = t->info,
		.optimizer = weights_only ? NULL : t->opt,
		.n_optim_params = weights_only ? 0 : t->n_params,
		.optim_params = weights_only ? NULL : t->params,
		.trainer_state = state,
	};
	fv_status rc = fv_checkpoint_save(path, &c);
	free(state);
	return rc;
}

fv_status fv__save_checkpoint(fv__trainer *t, const char *name)
{
	char path[4200];
	fv_status rc = fv__out_path(t, name, path, sizeof path);
	return rc == FV_OK ? fv__save_checkpoint_path(t, path, false) : rc;
}

/* ---- resuming -------------------------------------------------------------------------------- */

typedef struct state_reader {
	const char *path;
	fv_status rc;
} state_reader;

/* The member `key` of `obj` when its type is one of `types` (bits
** 1 << json_type); otherwise NULL, and the first such miss is the message. */
static json_t *member(state_reader *r, const json_t *obj, const char *key, unsigned types,
                      const char *expected)
{
	json_t *v = json_object_get(obj, key);
	if (v != NULL && (types & 1u << json_typeof(v)))
		return v;
	if (r->rc == FV_OK)
		r->rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: '%s' is missing or not %s",
		                 r->path, key, expected);
	return NULL;
}

static int64_t read_int(state_reader *r, const json_t *obj, const char *key)
{
	return json_integer_value(member(r, obj, key, 1u << JSON_INTEGER, "an integer"));
}

/* null stands for an infinite value; `inf` says which. */
static double read_double(state_reader *r, const json_t *obj, const char *key, double inf)
{
	unsigned number = 1u << JSON_INTEGER | 1u << JSON_REAL | 1u << JSON_NULL;
	const json_t *v = member(r, obj, key, number, "a number");
	return v == NULL || json_is_null(v) ? inf : json_number_value(v);
}

/* What the scheduler's arithmetic needs of restored state: a period of at
** least one step, a position inside it, a momentum in [0, 1]. */
static bool sched_state_valid(const fv_lr_scheduler *s)
{
	if (s->kind == FV_SCHED_COSINE_WARM && (s->t_i < 1 || s->t_cur < 0 || s->t_cur >= s->t_i))
		return false;
	if (s->kind == FV_SCHED_ONE_CYCLE && s->total_steps < 1)
		return false;
	return isnan(s->momentum) || (s->momentum >= 0 && s->momentum <= 1);
}

static fv_status apply_state(fv__trainer *t, const json_t *root, const char *path)
{
	state_reader r = {path, FV_OK};
	t->epochs_done = read_int(&r, root, "epochs_done");
	/* a resumed run keeps its seed, even when the config leaves it to chance */
	const json_t *seed = member(&r, root, "seed", 1u << JSON_INTEGER, "an integer");
	if (seed != NULL)
		t->seed = (uint64_t)json_integer_value(seed);
	t->global_step = read_int(&r, root, "global_step");
	fv_optimizer_set_lr(t->opt, read_double(&r, root, "lr", NAN));
	t->best_value = read_double(&r, root, "best_value", t->best_mode_max ? -INFINITY : INFINITY);
	t->best_epoch = read_int(&r, root, "best_epoch");
	const json_t *stopped = member(&r, root, "stopped", 1u << JSON_TRUE | 1u << JSON_FALSE,
	                               "a boolean");
	t->stopped = json_is_true(stopped);
	const json_t *s = member(&r, root, "scheduler", 1u << JSON_OBJECT, "an object");
	if (s != NULL) {
		t->sched.last_epoch = read_int(&r, s, "last_epoch");
		t->sched.num_bad_epochs = read_int(&r, s, "num_bad_epochs");
		t->sched.cooldown_counter = read_int(&r, s, "cooldown_counter");
		t->sched.best = read_double(&r, s, "best", t->sched.mode_max ? -INFINITY : INFINITY);
		/* CosineAnnealingWarmRestarts' period, OneCycleLR's momentum and
		** length (kept, as torch's state_dict keeps it, when max_epochs
		** changes); absent from the checkpoints of fovea before them */
		if (json_object_get(s, "t_i") != NULL) {
			t->sched.t_i = read_int(&r, s, "t_i");
			t->sched.t_cur = read_int(&r, s, "t_cur");
			t->sched.momentum = read_double(&r, s, "momentum", NAN);
			t->sched.total_steps = read_int(&r, s, "total_steps");
		}
		if (r.rc == FV_OK && !sched_state_valid(&t->sched))
			r.rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: the scheduler's "
			                "t_i, t_cur, momentum or total_steps is out of range", path);
		if (!isnan(t->sched.momentum))
			fv_optimizer_set_momentum(t->opt, t->sched.momentum);
	}
	const json_t *e = member(&r, root, "early_stopping", 1u << JSON_OBJECT, "an object");
	if (e != NULL) {
		t->stop.wait_count = read_int(&r, e, "wait_count");
		t->stop.best = read_double(&r, e, "best", t->stop.mode_max ? -INFINITY : INFINITY);
	}
	const json_t *mc = json_object_get(root, "model_checkpoint"); /* absent before */
	if (r.rc == FV_OK && mc != NULL)
		r.rc = fv__model_checkpoint_restore(&t->mc, mc, path);
	if (r.rc == FV_OK && (t->epochs_done < 0 || isnan(fv_optimizer_lr(t->opt))))
		r.rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: bad epochs_done or lr", path);
	/* Resuming replays the batch order of every finished epoch, so an
	** epoch count the data does not account for would make that replay
	** endless (epochs_done 2^63-1): every epoch took one optimizer step per
	** window of accumulate_grad_batches batches (the last cut short by
	** max_steps). */
	int64_t batches = t->train_batches > 0  ? t->train_batches
	                  : t->train_it != NULL ? fv_batch_iter_len(t->train_it)
	                                        : 0;
	int64_t per_epoch = batches > 0 ? fv_estimated_stepping_batches(batches, t->accumulate, 1, -1)
	                                : 0;
	bool cut = t->max_steps >= 0 && t->global_step == t->max_steps;
	if (r.rc == FV_OK && (t->global_step < t->epochs_done || t->global_step < 0 ||
	                      (per_epoch > 0 && (t->epochs_done > INT64_MAX / per_epoch ||
	                                         (t->epochs_done * per_epoch != t->global_step &&
	                                          !(cut && t->global_step <
	                                                       t->epochs_done * per_epoch))))))
		r.rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: %lld epochs in %lld steps "
		                "do not fit %lld training batches per epoch (resume with the data and "
		                "dataloader settings of the run)",
		                path, (long long)t->epochs_done, (long long)t->global_step,
		                (long long)per_epoch);
	return r.rc;
}

fv_status fv__apply_trainer_state(fv__trainer *t, const char *json, const char *path)
{
	json_t *state = NULL;
	char what[4200];
	snprintf(what, sizeof what, "%s: metadata trainer_state", path);
	fv_status rc = fv__json_load(json, strlen(json), what, &state);
	if (rc == FV_OK)
		rc = apply_state(t, state, path);
	json_decref(state);
	return rc;
}

fv_status fv__resume(fv__trainer *t, fv_checkpoint *last)
{
	const char *path = fv_checkpoint_path(last);
	const char *json = fv_checkpoint_trainer_state(last);
	if (json == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: no trainer_state in its metadata: not a checkpoint "
		                "of an interrupted run", path);
	fv_status rc = fv_checkpoint_load_model(last, t->model, false);
	if (rc == FV_OK)
		rc = fv_checkpoint_load_optimizer(last, t->opt, t->n_params, t->params);
	if (rc == FV_OK)
		rc = fv__apply_trainer_state(t, json, path);
	if (rc == FV_OK)
		rc = reload_metrics(t, t->epochs_done);
	if (rc == FV_OK) {
		fv_batch_iter_free(t->train_it);
		t->train_it = fv_data_train_batches(t->data, t->seed);
		rc = t->train_it != NULL ? fv__seek_train(t, t->epochs_done) : FV_ERR_NOMEM;
	}
	if (rc != FV_OK)
		fv_error_prefix("resuming from %s: ", path);
	return rc;
}
