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

static const fv_builtin *const all[] = {
	&fv__csv_logger.info,
	&fv__tensorboard_logger.info,
	&lr_monitor,
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
