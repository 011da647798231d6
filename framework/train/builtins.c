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

static const fv_builtin *const all[] = {
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
