/*
** insilico.h: in-silico stimulus optimisation (openretina's
** insilico.stimulus_optimization): a trained model seen as a function of
** its stimulus, the objectives that score a stimulus, and the loop that
** changes the stimulus to raise the score.
**
** The loop is openretina's optimize_stimulus, step for step.  Per iteration:
**   1. objective = objective(model, stimulus)            (a scalar)
**   2. loss = -objective + sum of the penalties of the stimulus regularizers
**   3. zero the stimulus gradient, backward (w.r.t. the stimulus only: the
**      model is frozen), optimizer step (torch's SGD/Adam/AdamW rules)
**   4. every postprocessor, in order, replaces the stimulus values by its
**      projection (the REGULARIZER `project` slot)
**   5. the stopper sees the loss value and may end the loop.
**
** Components involved (all plugins, see docs/components/insilico.md):
**   OBJECTIVE    objective(model, stimulus) -> scalar to maximise
**   REDUCER      forward(responses) -> reduced responses (inside objectives)
**   REGULARIZER  penalty(stimulus) -> scalar and/or project(stimulus) in place
**   STOPPER      should_stop(loss): called once per iteration, after the
**                postprocessors; it counts iterations itself, so
**                max_iterations is the stopper's option, as in openretina.
*/
#ifndef FOVEA_INSILICO_H
#define FOVEA_INSILICO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea.h"
#include "optim.h"
#include "plugin.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the model as objectives see it ---------------------------------------------
**
** fv_model is opaque.  It wraps a model module (e.g. UnifiedCoreReadout)
** without owning it and, while it exists, keeps the module in eval mode
** with every parameter frozen (requires_grad off), so that a backward from
** an objective reaches the stimulus only.  fv_model_free() restores the
** module's mode and flags. */

FV_API fv_model *fv_model_new(fv_module *module);
FV_API void fv_model_free(fv_model *model);
FV_API fv_module *fv_model_module(const fv_model *model);

/* The model's responses to `stimulus` (N, C, T, H, W) for session
** `data_key` (NULL: the module's default, e.g. every session). */
FV_API fv_tensor *fv_model_forward(fv_model *model, fv_ctx *ctx, fv_tensor *stimulus,
                                   const char *data_key);

/* The same forward, also returning in *captured the intermediate output
** named `layer`, as openretina's forward hooks record it.  Names are module
** paths below the model, dotted ("core.features.layer1.conv") or joined
** with underscores as openretina's InnerNeuronVisualizationObjective keys
** them ("core_features_layer1_conv").  A name the forward never produced
** is an FV_ERR_NOTFOUND whose message lists the names it did produce. */
FV_API fv_tensor *fv_model_forward_capture(fv_model *model, fv_ctx *ctx, fv_tensor *stimulus,
                                           const char *data_key, const char *layer,
                                           fv_tensor **captured);

/* For plugins: announce an intermediate output `t` of module m under its
** openretina module name relative to m ("features.layer0.conv").  Costs a
** load and a branch unless a capture is under way on this thread;
** fv_module_capturing() tells a plugin whether formatting a name is worth
** it. */
FV_API void fv_module_capture(fv_module *m, fv_ctx *ctx, const char *name, fv_tensor *t);
FV_API bool fv_module_capturing(const fv_module *m);

/* Call an OBJECTIVE module (checks that it has the slot and returns a
** scalar). */
FV_API fv_tensor *fv_module_objective(fv_module *objective, fv_ctx *ctx, fv_model *model,
                                      fv_tensor *stimulus);

/* ---- the optimisation loop --------------------------------------------------------- */

/* What one iteration leaves behind, for traces and progress lines. */
typedef struct fv_iteration {
	int64_t index;             /* 0-based */
	double objective;          /* evaluated before this iteration's step */
	double loss;               /* -objective + penalties, before the step */
	const fv_tensor *stimulus; /* after this iteration's postprocessing */
} fv_iteration;

/* Called after every iteration; a status other than FV_OK ends the
** optimisation with that status. */
typedef fv_status (*fv_iteration_fn)(void *ud, const fv_iteration *it);

typedef struct fv_optimize_args {
	size_t struct_size;            /* sizeof(fv_optimize_args) of the caller */
	fv_model *model;
	fv_module *objective;          /* OBJECTIVE */
	fv_module *stopper;            /* STOPPER */
	const fv_optim_config *optimizer;
	size_t n_penalties;            /* REGULARIZERs with a penalty */
	fv_module *const *penalties;
	size_t n_postprocessors;       /* REGULARIZERs with a projection */
	fv_module *const *postprocessors;
	fv_iteration_fn on_iteration;  /* may be NULL */
	void *ud;
} fv_optimize_args;

/* Optimise `stimulus` (a persistent tensor (N, C, T, H, W), changed in
** place; its requires_grad and grad are restored/dropped at the end).
** *n_iterations (may be NULL) gets the number of iterations completed,
** also on failure.  Errors name the iteration and the component that failed. */
FV_API fv_status fv_optimize_stimulus(fv_tensor *stimulus, const fv_optimize_args *args,
                                      int64_t *n_iterations);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_INSILICO_H */
