/*
** optimizer_reset.c: openretina's OptimizerResetCallback
** (openretina.utils.model_utils).  At each validation end it compares the
** optimizer's learning rate with the one it saw at the previous validation
** end; when it has dropped, it replaces the optimizer with a new AdamW at
** the current rate with the old one's betas, eps, weight_decay and amsgrad,
** so that the moment estimates and step counts start again from zero.
**
** openretina's quirk, reproduced: the callback sets trainer.optimizers but
** the LR scheduler keeps the old optimizer, so from the reset on the
** scheduler steps the old optimizer's rate (kept in t->sched_lr) and the
** new optimizer trains at the rate of the reset for the rest of the run.
** Lightning checks validation end before the epoch's schedulers step, so
** a ReduceLROnPlateau reduction is seen one validation later.  The
** callback keeps no state in checkpoints: after resume=true it starts
** afresh, and the scheduler drives the restored optimizer again.
*/
#include <stdio.h>
#include <string.h>

#include "train/trainer_internal.h"

const fv_option fv__optimizer_reset_options[] = {{0}};

static const char *const hydra_keys[] = {"_partial_", "_convert_", "_recursive_", NULL};

fv_status fv__optimizer_reset_open(fv__trainer *t)
{
	const fv_config_node *root = fv_config_root(t->cfg);
	const fv_config_node *cbs = fv_node_get(root, "training_callbacks");
	const fv_config_node *bare = cbs != NULL ? fv_node_get(cbs, "_target_") : NULL;
	if (bare != NULL && fv_node_kind(bare) == FV_NODE_SCALAR)
		return fv_error_at(bare, FV_ERR_CONFIG, "training_callbacks._target_: a callback needs "
		                   "a key of its own (openretina's hydra.utils.instantiate fails on the "
		                   "bare values of optimizer_reset.yaml); write it as "
		                   "training_callbacks.optimizer_reset._target_");
	const fv_config_node *spec = fv__trainer_callback(root, "OptimizerResetCallback");
	if (spec == NULL)
		return FV_OK;
	char dummy;
	fv_status rc = fv_options_parse(fv__optimizer_reset_options, spec, &dummy,
	                                fv_node_keypath(spec), hydra_keys);
	if (rc != FV_OK)
		return rc;
	fv_optim_kind kind = fv_optimizer_config(t->opt)->kind;
	if (kind == FV_OPTIM_SGD)
		return fv_error_at(spec, FV_ERR_CONFIG, "OptimizerResetCallback: it builds an AdamW from "
		                   "the optimizer's betas and eps, which SGD does not have (openretina "
		                   "fails with a KeyError)");
	t->opt_reset = true;
	return FV_OK;
}

/* openretina's new torch.optim.AdamW(params, lr=current, betas, eps,
** weight_decay, amsgrad, maximize) with fresh state. */
static fv_status reset(fv__trainer *t, double lr)
{
	fv_optim_config oc = *fv_optimizer_config(t->opt);
	oc.kind = FV_OPTIM_ADAMW;
	oc.lr = lr;
	fv_optimizer *fresh = fv_optimizer_new(&oc, t->n_params, t->params);
	if (fresh == NULL)
		return fv_errcode();
	if (!t->quiet)
		fprintf(t->out, "Learning rate decreased from %.17g to %.17g. Resetting optimizer.\n",
		        t->reset_prev_lr, lr);
	fv_optimizer_free(t->opt);
	t->opt = fresh;
	if (!t->sched_detached) {
		t->sched_detached = t->sched.kind != FV_SCHED_NONE;
		t->sched_lr = lr;
	}
	return FV_OK;
}

fv_status fv__optimizer_reset_epoch(fv__trainer *t)
{
	if (!t->opt_reset)
		return FV_OK;
	double lr = fv_optimizer_lr(t->opt);
	fv_status rc = FV_OK;
	if (t->reset_seen && lr < t->reset_prev_lr)
		rc = reset(t, lr);
	t->reset_prev_lr = lr;
	t->reset_seen = true;
	return rc;
}
