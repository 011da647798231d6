/*
** optim.h: optimizers with torch.optim's exact update rules (SGD, Adam,
** AdamW), gradient-norm clipping as torch.nn.utils.clip_grad_norm_.
**
** Parameters whose ->grad is NULL are skipped entirely (no weight decay,
** no moment update, no step count), as torch skips parameters whose grad
** is None.  Use fv_zero_grad_to_none() between steps to get that meaning.
*/
#ifndef FOVEA_OPTIM_H
#define FOVEA_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fv_optim_kind {
	FV_OPTIM_SGD,
	FV_OPTIM_ADAM,
	FV_OPTIM_ADAMW
} fv_optim_kind;

typedef struct fv_optim_config {
	fv_optim_kind kind;
	double lr;
	double beta1, beta2;   /* Adam/AdamW betas */
	double eps;
	double weight_decay;   /* Adam: L2 added to the gradient; AdamW: decoupled */
	bool amsgrad;
	bool maximize;
	double momentum;       /* SGD */
	double dampening;      /* SGD */
	bool nesterov;         /* SGD */
} fv_optim_config;

/* torch's defaults for a kind (Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8;
** AdamW additionally weight_decay 1e-2; SGD lr 1e-3 (torch >= 2.2), no
** momentum). */
FV_API fv_optim_config fv_optim_defaults(fv_optim_kind kind);

/* Read `{_target_: torch.optim.AdamW, lr: ..., betas: [..], ...}` (also
** Adam, SGD, and the fovea names "AdamW", "Adam", "SGD").  Unknown keys
** are errors naming file:line and the closest valid key. */
FV_API fv_status fv_optim_config_parse(const fv_config_node *spec, fv_optim_config *out);

typedef struct fv_optimizer fv_optimizer;

/* The optimizer keeps the parameter pointers (not owned). */
FV_API fv_optimizer *fv_optimizer_new(const fv_optim_config *cfg, size_t n_params,
                                      fv_tensor *const *params);
FV_API void fv_optimizer_free(fv_optimizer *opt);
FV_API fv_status fv_optimizer_step(fv_optimizer *opt);
/* Drop every parameter's gradient (grad = NULL, memory kept). */
FV_API void fv_optimizer_zero_grad(fv_optimizer *opt);
FV_API double fv_optimizer_lr(const fv_optimizer *opt);
FV_API void fv_optimizer_set_lr(fv_optimizer *opt, double lr);
/* The momentum a scheduler cycles (torch's OneCycleLR): Adam's and AdamW's
** beta1, SGD's momentum. */
FV_API void fv_optimizer_set_momentum(fv_optimizer *opt, double momentum);
FV_API const fv_optim_config *fv_optimizer_config(const fv_optimizer *opt);

/* State for checkpoints: per parameter i, the step count and the moment
** buffers (exp_avg, exp_avg_sq, max_exp_avg_sq / momentum_buffer); NULL
** where the state does not exist (yet). */
FV_API int64_t fv_optimizer_param_steps(const fv_optimizer *opt, size_t i);
FV_API fv_tensor *fv_optimizer_state(fv_optimizer *opt, size_t i, const char *which);
/* Restore parameter i's step count from a checkpoint and create, zero-filled,
** the buffers its kind keeps after that many steps (none for steps == 0),
** so that fv_optimizer_state() returns them to be filled. */
FV_API fv_status fv_optimizer_set_param_steps(fv_optimizer *opt, size_t i, int64_t steps);

/* torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2): the total
** L2 norm over all existing grads; if above max_norm, grads are scaled by
** max_norm / (norm + 1e-6).  Returns the norm before clipping. */
FV_API double fv_clip_grad_norm(size_t n_params, fv_tensor *const *params, double max_norm);
/* torch.nn.utils.clip_grad_value_: every existing gradient element clamped
** to [-clip_value, clip_value] (Lightning's gradient_clip_algorithm
** "value"). */
FV_API void fv_clip_grad_value(size_t n_params, fv_tensor *const *params, double clip_value);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_OPTIM_H */
