/*
** trainer_state.c: what a training run leaves on disk and reads back to
** resume: metrics.csv, the checkpoints, and the trainer state inside
** last.safetensors (epochs done, learning rate, scheduler and early
** stopping state, the best value so far).
**
** Everything that decides the rest of a run is saved at full precision
** (%.17g), and the random streams are functions of the seed and the epoch
** (see trainer_epoch.c), so a resumed run continues exactly.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_scan.h"
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
	for (int i = 0; i < N_METRICS; i++)
		fv__text_printf(&t->csv, ",%.17g", t->metrics[i]);
	fv__text_printf(&t->csv, ",%.3f\n", t->epoch_seconds);
	char path[4200];
	fv_status rc = fv__out_path(t, "metrics.csv", path, sizeof path);
	return rc == FV_OK ? write_text(path, &t->csv) : rc;
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

static void put_number(fv__text *j, const char *key, double v, bool comma)
{
	fv__text_printf(j, "\"%s\": ", key);
	fv__text_json_double(j, v);
	fv__text_printf(j, comma ? ", " : "");
}

static char *state_json(const fv__trainer *t)
{
	fv__text j = {0};
	fv__text_printf(&j, "{\"epochs_done\": %lld, \"global_step\": %lld, \"seed\": %llu, ",
	                (long long)t->epochs_done, (long long)t->global_step,
	                (unsigned long long)t->seed);
	put_number(&j, "lr", fv_optimizer_lr(t->opt), true);
	put_number(&j, "best_value", t->best_value, true);
	fv__text_printf(&j, "\"best_epoch\": %lld, \"stopped\": %s, \"scheduler\": {",
	                (long long)t->best_epoch, t->stopped ? "true" : "false");
	fv__text_printf(&j, "\"last_epoch\": %lld, \"num_bad_epochs\": %lld, "
	                    "\"cooldown_counter\": %lld, ",
	                (long long)t->sched.last_epoch, (long long)t->sched.num_bad_epochs,
	                (long long)t->sched.cooldown_counter);
	put_number(&j, "best", t->sched.best, false);
	fv__text_printf(&j, "}, \"early_stopping\": {\"wait_count\": %lld, ",
	                (long long)t->stop.wait_count);
	put_number(&j, "best", t->stop.best, false);
	fv__text_printf(&j, "}}");
	return fv__text_take(&j, "the trainer state");
}

fv_status fv__save_checkpoint(fv__trainer *t, const char *name)
{
	char path[4200];
	fv_status rc = fv__out_path(t, name, path, sizeof path);
	if (rc != FV_OK)
		return rc;
	char *state = state_json(t);
	if (state == NULL)
		return FV_ERR_NOMEM;
	fv_checkpoint_content c = {
		.model = t->model,
		.config_yaml = t->config_yaml,
		.model_config_yaml = t->model_config_yaml,
		.data_info = t->info,
		.optimizer = t->opt,
		.n_optim_params = t->n_params,
		.optim_params = t->params,
		.trainer_state = state,
	};
	rc = fv_checkpoint_save(path, &c);
	free(state);
	return rc;
}

/* ---- resuming -------------------------------------------------------------------------------- */

typedef struct state_reader {
	const char *path;
	fv_status rc;
} state_reader;

static const fv_json *member(state_reader *r, const fv_json *obj, const char *key,
                             fv_json_type type)
{
	const fv_json *v = fv__json_get(obj, key);
	bool ok = v != NULL && (v->type == type || (type == FV_JSON_NUMBER && v->type == FV_JSON_NULL));
	if (!ok && r->rc == FV_OK)
		r->rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: '%s' is missing or not a%s %s",
		                 r->path, key, type == FV_JSON_OBJECT ? "n" : "",
		                 fv__json_type_name(type));
	return ok ? v : NULL;
}

static int64_t read_int(state_reader *r, const fv_json *obj, const char *key)
{
	const fv_json *v = member(r, obj, key, FV_JSON_NUMBER);
	return v != NULL && v->is_int ? v->integer : 0;
}

/* null stands for an infinite value; `inf` says which. */
static double read_double(state_reader *r, const fv_json *obj, const char *key, double inf)
{
	const fv_json *v = member(r, obj, key, FV_JSON_NUMBER);
	return v == NULL || v->type == FV_JSON_NULL ? inf : v->number;
}

static fv_status apply_state(fv__trainer *t, const fv_json *root, const char *path)
{
	state_reader r = {path, FV_OK};
	t->epochs_done = read_int(&r, root, "epochs_done");
	/* a resumed run keeps its seed, even when the config leaves it to chance */
	const fv_json *seed = member(&r, root, "seed", FV_JSON_NUMBER);
	if (seed != NULL && seed->type == FV_JSON_NUMBER && seed->number >= 0)
		t->seed = seed->is_int ? (uint64_t)seed->integer : (uint64_t)seed->number;
	t->global_step = read_int(&r, root, "global_step");
	fv_optimizer_set_lr(t->opt, read_double(&r, root, "lr", NAN));
	t->best_value = read_double(&r, root, "best_value", t->best_mode_max ? -INFINITY : INFINITY);
	t->best_epoch = read_int(&r, root, "best_epoch");
	const fv_json *stopped = member(&r, root, "stopped", FV_JSON_BOOL);
	t->stopped = stopped != NULL && stopped->boolean;
	const fv_json *s = member(&r, root, "scheduler", FV_JSON_OBJECT);
	if (s != NULL) {
		t->sched.last_epoch = read_int(&r, s, "last_epoch");
		t->sched.num_bad_epochs = read_int(&r, s, "num_bad_epochs");
		t->sched.cooldown_counter = read_int(&r, s, "cooldown_counter");
		t->sched.best = read_double(&r, s, "best", t->sched.mode_max ? -INFINITY : INFINITY);
	}
	const fv_json *e = member(&r, root, "early_stopping", FV_JSON_OBJECT);
	if (e != NULL) {
		t->stop.wait_count = read_int(&r, e, "wait_count");
		t->stop.best = read_double(&r, e, "best", t->stop.mode_max ? -INFINITY : INFINITY);
	}
	if (r.rc == FV_OK && (t->epochs_done < 0 || isnan(fv_optimizer_lr(t->opt))))
		r.rc = fv_error(FV_ERR_FORMAT, "%s: metadata trainer_state: bad epochs_done or lr", path);
	return r.rc;
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
	fv_json_doc *doc = NULL;
	char what[4200];
	snprintf(what, sizeof what, "%s: metadata trainer_state", path);
	if (rc == FV_OK)
		rc = fv__json_parse(json, strlen(json), what, &doc);
	if (rc == FV_OK)
		rc = apply_state(t, fv__json_root(doc), path);
	fv__json_free(doc);
	if (rc == FV_OK)
		rc = reload_metrics(t, t->epochs_done);
	if (rc == FV_OK) {
		fv_batch_iter_free(t->train_it);
		t->train_it = fv_data_train_batches(t->data, t->seed);
		rc = t->train_it != NULL ? fv_batch_iter_seek(t->train_it, t->epochs_done, 0)
		                         : FV_ERR_NOMEM;
	}
	if (rc != FV_OK)
		fv_error_prefix("resuming from %s: ", path);
	return rc;
}
