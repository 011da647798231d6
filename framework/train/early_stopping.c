/*
** early_stopping.c: when Lightning's EarlyStopping looks at its metric
** (the comparison itself is fv_early_stopping_step, trainer_sched.c).
**
** check_on_train_epoch_end null means: after every training epoch when the
** trainer validates every epoch at its end, else after each validation.
** Checking after a training epoch that did not validate sees the last
** validation's value (Lightning's callback_metrics keep it); before any
** validation the metric does not exist: strict makes that an error.
*/
#include <stdio.h>

#include "train/trainer_internal.h"

static bool checks_now(const fv__trainer *t)
{
	int on_train = t->stop.on_train_epoch_end;
	if (on_train < 0)
		on_train = t->val_every == 1;
	return on_train ? true : t->val_ran;
}

static fv_status missing(fv__trainer *t, const char *why)
{
	if (t->stop.strict)
		return fv_error(FV_ERR_CONFIG, "EarlyStopping conditioned on metric '%s' which is not "
		                "available (%s); set strict=false to go on without early stopping",
		                t->stop.monitor, why);
	if (t->stop.verbose)
		fprintf(stderr, "fovea: EarlyStopping: metric '%s' is not available (%s): no check\n",
		        t->stop.monitor, why);
	return FV_OK;
}

fv_status fv__early_stopping_epoch(fv__trainer *t, bool *stop)
{
	*stop = false;
	if (!t->stop.enabled || !checks_now(t))
		return FV_OK;
	if (t->stop_metric < 0)
		return missing(t, "fovea does not log it");
	if (!t->val_ever)
		return missing(t, "no validation has run yet");
	*stop = fv_early_stopping_step(&t->stop, t->metrics[t->stop_metric]);
	if (t->stop.verbose && t->stop.message[0] != '\0')
		fprintf(stderr, "fovea: EarlyStopping: %s\n", t->stop.message);
	return FV_OK;
}
