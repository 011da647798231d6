/*
** train.h: openretina's training step for core + readout models, shared by
** `fovea train` and the parity harness.
**
** BaseCoreReadout.training_step computes, for one batch of one session:
**   y          = model(x, session)
**   loss       = loss_fn(y, target)            (PoissonLoss3d by default)
**   reg_core   = core.regularizer()
**   reg_readout= readout.regularizer(session)
**   total      = loss + reg_core + reg_readout  (what is differentiated)
**   eval_loss  = evaluation_loss_fn(y, target)  (CorrelationLoss3d(avg=True,
**                                                negate=False) by default)
** The model must have children "core" and "readout" (UnifiedCoreReadout).
*/
#ifndef FOVEA_TRAIN_H
#define FOVEA_TRAIN_H

#include "fovea.h"
#include "plugin.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_step_terms {
	fv_tensor *output;
	fv_tensor *loss;
	fv_tensor *reg_core;
	fv_tensor *reg_readout;
	fv_tensor *total;
	fv_tensor *eval_loss; /* computed without recording (logging only) */
} fv_step_terms;

FV_API fv_status fv_core_readout_step(fv_ctx *ctx, fv_module *model, fv_module *loss_fn,
                                      fv_module *eval_loss_fn, fv_tensor *x, fv_tensor *target,
                                      const char *session, fv_step_terms *out);

/* The default loss modules of openretina's core-readout models, or the
** ones a model spec names in its `loss` / `evaluation_loss` keys (spec may
** be NULL). */
FV_API fv_module *fv_default_loss(fv_registry *reg, const fv_config_node *model_spec);
FV_API fv_module *fv_default_evaluation_loss(fv_registry *reg,
                                             const fv_config_node *model_spec);

/* Every trainable parameter below m (requires_grad), in state_dict order,
** into a malloc'd array the caller frees. */
FV_API fv_tensor **fv_module_params(const fv_module *m, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_TRAIN_H */
