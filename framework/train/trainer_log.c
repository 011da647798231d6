/*
** trainer_log.c: what the trainer hands the config's loggers after each
** epoch, in the order and with the steps Lightning's fit loop logs them:
**
**   1. LearningRateMonitor (logging_interval "epoch", at the epoch's start):
**      lr-OPTIMIZER [, lr-OPTIMIZER-momentum, lr-OPTIMIZER-weight_decay],
**      at the step the epoch began with, without an epoch;
**   2. the validation metrics (val_*), with the epoch, at the global step;
**   3. the training metrics, with the epoch, at the global step minus one
**      (Lightning logs a training epoch's values before counting its last
**      step).
*/
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

typedef struct lr_monitor_opts {
	const char *logging_interval;
	bool log_momentum, log_weight_decay;
} lr_monitor_opts;

#define OFF(f) offsetof(lr_monitor_opts, f)
const fv_option fv__lr_monitor_options[] = {
	{"logging_interval", FV_OPT_ENUM, OFF(logging_interval), "null", 0, 0, FV_OPT_NULLABLE,
	 "epoch|step", "when the learning rate is logged; fovea logs it once per epoch"},
	{"log_momentum", FV_OPT_BOOL, OFF(log_momentum), "false", 0, 0, 0, NULL,
	 "also log the momentum (Adam's first beta) as lr-OPTIMIZER-momentum"},
	{"log_weight_decay", FV_OPT_BOOL, OFF(log_weight_decay), "false", 0, 0, 0, NULL,
	 "also log the weight decay as lr-OPTIMIZER-weight_decay"},
	{0},
};
#undef OFF

static const char *const hydra_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

static fv_status read_lr_monitor(fv__trainer *t, const fv_config_node *root)
{
	const fv_config_node *spec = fv__trainer_callback(root, "LearningRateMonitor");
	if (spec == NULL)
		return FV_OK;
	lr_monitor_opts o = {0};
	fv_status rc = fv_options_parse(fv__lr_monitor_options, spec, &o, fv_node_keypath(spec),
	                                hydra_keys);
	if (rc != FV_OK)
		return rc;
	if (o.logging_interval != NULL && strcmp(o.logging_interval, "step") == 0)
		rc = fv_error_at(spec, FV_ERR_CONFIG, "LearningRateMonitor: logging_interval 'step' "
		                 "is not supported by fovea's loggers (expected \"epoch\" or null)");
	t->lr_monitor = true;
	t->lr_momentum = o.log_momentum;
	t->lr_weight_decay = o.log_weight_decay;
	fv_options_free(fv__lr_monitor_options, &o);
	return rc;
}

/* The model's YAML without the keys openretina keeps out of the loggers'
** hyper-parameters (on_fit_start: data_info and n_neurons_dict).  The
** dumper writes a map's keys at column 0 with their values indented below,
** so a key's block ends at the next line that starts at column 0. */
static char *hparams_of(const char *model_yaml)
{
	static const char *const dropped[] = {"data_info:", "n_neurons_dict:"};
	fv__text out = {0};
	bool skipping = false;
	for (const char *line = model_yaml; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
		if (line[0] != ' ' && line[0] != '-') {
			skipping = false;
			for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
				skipping |= strncmp(line, dropped[i], strlen(dropped[i])) == 0;
		}
		if (!skipping)
			fv__text_printf(&out, "%.*s", (int)len, line);
		line += len;
	}
	return fv__text_take(&out, "the hyper-parameters");
}

fv_status fv__trainer_log_open(fv__trainer *t)
{
	const fv_config_node *root = fv_config_root(t->cfg);
	fv_status rc = read_lr_monitor(t, root);
	if (rc != FV_OK)
		return rc;
	char *model_yaml = NULL, *hparams = NULL;
	if (t->model_config_yaml == NULL && fv_node_get(root, "model") != NULL)
		model_yaml = fv_node_to_yaml(fv_node_get(root, "model"));
	const char *from = t->model_config_yaml ? t->model_config_yaml : model_yaml;
	if (from != NULL && (hparams = hparams_of(from)) == NULL)
		rc = fv_errcode();
	if (rc == FV_OK)
		rc = fv__loggers_open(fv_node_get(root, "logger"), hparams, t->epochs_done,
		                      t->global_step, false, t->quiet ? NULL : t->out, &t->loggers);
	free(model_yaml);
	free(hparams);
	t->epoch_first_step = t->global_step;
	return rc;
}

static const char *optimizer_name(fv_optim_kind kind)
{
	switch (kind) {
	case FV_OPTIM_SGD: return "SGD";
	case FV_OPTIM_ADAM: return "Adam";
	case FV_OPTIM_ADAMW: return "AdamW";
	}
	return "Optimizer";
}

static fv_status log_lr(fv__trainer *t, double lr)
{
	const fv_optim_config *oc = fv_optimizer_config(t->opt);
	char names[3][64];
	fv__log_value v[3];
	size_t n = 0;
	const char *opt = optimizer_name(oc->kind);
	snprintf(names[n], sizeof names[n], "lr-%s", opt);
	v[n] = (fv__log_value){names[n], lr};
	n++;
	if (t->lr_momentum) {
		snprintf(names[n], sizeof names[n], "lr-%s-momentum", opt);
		v[n] = (fv__log_value){names[n], oc->kind == FV_OPTIM_SGD ? oc->momentum : oc->beta1};
		n++;
	}
	if (t->lr_weight_decay) {
		snprintf(names[n], sizeof names[n], "lr-%s-weight_decay", opt);
		v[n] = (fv__log_value){names[n], oc->weight_decay};
		n++;
	}
	return fv__loggers_log(t->loggers, v, n, t->epoch_first_step, -1);
}

/* The epoch's metrics whose names do (val) or do not start with "val_". */
static fv_status log_metrics(fv__trainer *t, bool val, int64_t step)
{
	fv__log_value v[N_METRICS];
	size_t n = 0;
	if (val && !t->val_ran) /* check_val_every_n_epoch: no validation, no row */
		return FV_OK;
	for (int i = 0; i < N_METRICS; i++)
		if ((strncmp(fv__metric_names[i], "val_", 4) == 0) == val)
			v[n++] = (fv__log_value){fv__metric_names[i], t->metrics[i]};
	return fv__loggers_log(t->loggers, v, n, step, t->epochs_done);
}

fv_status fv__trainer_log_epoch(fv__trainer *t, double lr)
{
	fv_status rc = FV_OK;
	if (t->loggers == NULL)
		return FV_OK;
	/* LearningRateMonitor reads the scheduler's optimizer: after an
	** OptimizerResetCallback reset, the old one (optimizer_reset.c) */
	if (t->lr_monitor)
		rc = log_lr(t, t->sched_detached ? t->epoch_sched_lr : lr);
	if (rc == FV_OK)
		rc = log_metrics(t, true, t->global_step);
	if (rc == FV_OK)
		rc = log_metrics(t, false, t->global_step - 1);
	if (rc == FV_OK)
		rc = fv__loggers_flush(t->loggers);
	t->epoch_first_step = t->global_step;
	return rc;
}
