/*
** builtins.c: the table of a training config's parts that are not plugins
** (include/fovea/trainer.h, fv_builtin), for `fovea describe`.  Each entry
** points at the option table its parser uses, so the documentation is the
** parser's own.
*/
#include <string.h>

#include "train/trainer_internal.h"

static const char *const lr_monitor_names[] = {
	"LearningRateMonitor",
	"lightning.pytorch.callbacks.LearningRateMonitor",
	"lightning.pytorch.callbacks.lr_monitor.LearningRateMonitor",
	NULL,
};

static const fv_builtin lr_monitor = {
	lr_monitor_names, "callback",
	"Lightning's LearningRateMonitor: logs lr-OPTIMIZER (and its momentum and weight decay) "
	"at each epoch's start to the loggers",
	fv__lr_monitor_options,
};

static const char *const model_checkpoint_names[] = {
	"ModelCheckpoint",
	"lightning.pytorch.callbacks.ModelCheckpoint",
	"lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint",
	NULL,
};

static const fv_builtin model_checkpoint = {
	model_checkpoint_names, "callback",
	"Lightning's ModelCheckpoint: the best save_top_k epochs by the monitored metric as "
	"DIRPATH/FILENAME.safetensors, and DIRPATH/last.safetensors with save_last",
	fv__model_checkpoint_options,
};

static const char *const trainer_names[] = {"Trainer", "lightning.Trainer",
                                            "lightning.pytorch.Trainer", NULL};

static const fv_builtin trainer = {
	trainer_names, "trainer",
	"Lightning's Trainer arguments (the config's `trainer` node): the training loop's "
	"length, batch limits, validation schedule, accumulation and clipping",
	fv__trainer_options,
};

static const char *const early_stopping_names[] = {
	"EarlyStopping",
	"lightning.pytorch.callbacks.EarlyStopping",
	"lightning.pytorch.callbacks.early_stopping.EarlyStopping",
	NULL,
};

static const fv_builtin early_stopping = {
	early_stopping_names, "callback",
	"Lightning's EarlyStopping: stops training when the monitored metric has not improved "
	"by min_delta for patience checks, or crosses a threshold",
	fv__early_stopping_options,
};

static const char *const optimizer_reset_names[] = {
	"OptimizerResetCallback",
	"openretina.utils.model_utils.OptimizerResetCallback",
	NULL,
};

static const fv_builtin optimizer_reset = {
	optimizer_reset_names, "callback",
	"openretina's OptimizerResetCallback: when the learning rate has dropped since the last "
	"validation, a fresh AdamW at the new rate replaces the optimizer (the LR scheduler keeps "
	"driving the old one, as in openretina)",
	fv__optimizer_reset_options,
};

static const char *const weight_figures_names[] = {
	"WeightVisualizationCallback",
	"openretina.callbacks.weight_visualization_callback.WeightVisualizationCallback",
	NULL,
};

static const fv_builtin weight_figures = {
	weight_figures_names, "callback",
	"openretina's WeightVisualizationCallback: figures of the model's weights (the first core "
	"layer's filters, the readout positions) every n epochs into folder_path",
	fv__weight_figures_options,
};

static const char *const evaluation_names[] = {"Evaluation", "evaluation", NULL};

static const fv_builtin evaluation = {
	evaluation_names, "evaluation",
	"openretina eval's settings (the config's `evaluation` node, configs/evaluation/"
	"default.yaml): which checkpoint and split, which outputs, the variance cutoff",
	fv__eval_config_options,
};

static const fv_builtin *const all[] = {
	&weight_figures,
	&trainer,
	&evaluation,
	&early_stopping,
	&optimizer_reset,
	&model_checkpoint,
	&fv__csv_logger.info,
	&fv__tensorboard_logger.info,
	&lr_monitor,
	&fv__lr_schedulers[0],
	&fv__lr_schedulers[1],
	&fv__lr_schedulers[2],
	&fv__lr_schedulers[3],
	&fv__lr_schedulers[4],
	&fv__lr_schedulers[5],
	&fv__lr_schedulers[6],
};
#define N_BUILTINS (sizeof all / sizeof all[0])

const fv_builtin *const *fv_builtins(size_t *n)
{
	if (n != NULL)
		*n = N_BUILTINS;
	return all;
}

const fv_builtin *fv_builtin_find(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_BUILTINS; i++)
		for (const char *const *s = all[i]->names; *s != NULL; s++)
			if (strcmp(*s, name) == 0)
				return all[i];
	return NULL;
}
