/*
** trainer.h: `fovea train` as a library: openretina's training of core +
** readout models (train.py with Lightning's fit loop), plus the pieces it is
** made of, which are usable and testable on their own: the learning-rate
** schedulers, early stopping, and building a model for a data set.
**
** One epoch, as Lightning runs openretina's BaseCoreReadout:
**   - every training batch of the LongCycler (fv_data_train_batches): zero
**     the gradients (to None), fv_core_readout_step, backward of the total
**     (loss + core and readout regularizers), clip the gradient norm
**     (trainer.gradient_clip_val), one optimizer step;
**   - validation over every session's clips in eval mode without grad;
**     the monitored "val_evaluation_loss" is the evaluation loss
**     (CorrelationLoss3d(avg=True): the mean correlation over neurons) of
**     each batch, averaged over batches weighted by batch size, as
**     Lightning averages a logged value;
**   - then the scheduler steps (ReduceLROnPlateau on the monitored value),
**     early stopping looks at the monitored value, a strictly better value
**     writes best.safetensors, a row goes to metrics.csv and
**     last.safetensors is rewritten (with the optimizer and trainer state).
** After the last epoch the best weights are restored.  The output directory
** gets config.yaml (the resolved config), metrics.csv, best.safetensors
** and last.safetensors, each written atomically.
**
** Configuration (openretina's keys): seed, only_train_readout,
** paths.output_dir, paths.load_model_path (fine-tuning: the checkpoint's
** model, with readouts added for the data's new sessions), model.* (the
** model, model.learning_rate, model.optimizer, model.lr_scheduler; the
** top-level optimizer / lr_scheduler when the model names none),
** trainer.max_epochs, trainer.gradient_clip_val,
** training_callbacks.*: EarlyStopping (monitor, min_delta, patience, mode,
** check_finite) and ModelCheckpoint (monitor, mode), data_io.* and
** dataloader.* (see data.h).  fovea's own: resume (continue the run in
** paths.output_dir from its last.safetensors).
*/
#ifndef FOVEA_TRAINER_H
#define FOVEA_TRAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "fovea.h"
#include "optim.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one training step ------------------------------------------------------------
** BaseCoreReadout.training_step computes, for one batch of one session:
**   y          = model(x, session)
**   loss       = loss_fn(y, target)            (PoissonLoss3d by default)
**   reg_core   = core.regularizer()
**   reg_readout= readout.regularizer(session)
**   total      = loss + reg_core + reg_readout  (what is differentiated)
**   eval_loss  = evaluation_loss_fn(y, target)  (CorrelationLoss3d(avg=True,
**                                                negate=False) by default)
** The model must have children "core" and "readout" (UnifiedCoreReadout). */

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
** into a malloc'd array the caller frees (an empty one, *n = 0, for a
** module without any); NULL only when out of memory. */
FV_API fv_tensor **fv_module_params(const fv_module *m, size_t *n);

/* ---- learning-rate schedulers (torch.optim.lr_scheduler) -------------------------
** Stepped once per epoch (Lightning's interval "epoch"), after validation;
** `frequency` N steps at the end of every N-th epoch.  The state is plain
** data so the trainer can checkpoint it. */

typedef enum fv_sched_kind {
	FV_SCHED_NONE,
	FV_SCHED_PLATEAU,     /* ReduceLROnPlateau */
	FV_SCHED_STEP,        /* StepLR */
	FV_SCHED_EXPONENTIAL, /* ExponentialLR */
	FV_SCHED_COSINE       /* CosineAnnealingLR */
} fv_sched_kind;

typedef struct fv_lr_scheduler {
	fv_sched_kind kind;
	const char *monitor;  /* the metric ReduceLROnPlateau watches */
	int64_t frequency;
	/* ReduceLROnPlateau */
	bool mode_max;
	double factor;
	int64_t patience;
	double threshold;
	bool threshold_rel;
	int64_t cooldown;
	double min_lr;
	double eps;
	/* StepLR, ExponentialLR */
	int64_t step_size;
	double gamma;
	/* CosineAnnealingLR */
	int64_t t_max;
	double eta_min;
	/* state */
	double base_lr;
	int64_t last_epoch;   /* steps taken */
	double best;
	int64_t num_bad_epochs;
	int64_t cooldown_counter;
} fv_lr_scheduler;

/* Read a scheduler spec ({_target_: torch.optim.lr_scheduler.StepLR, ...},
** also the bare class names; NULL or null: openretina's default
** ReduceLROnPlateau(mode=max, factor=0.3, patience=5, threshold=0.0005,
** threshold_mode=abs, min_lr=lr*0.3^3)).  `lr` is the initial learning
** rate; a ReduceLROnPlateau without min_lr gets lr * factor^3 as
** openretina's instantiate_scheduler gives it. */
FV_API fv_status fv_lr_scheduler_parse(const fv_config_node *spec, double lr,
                                       fv_lr_scheduler *out);
/* One epoch-end step: returns the learning rate for the next epoch given
** the current one and the monitored metric (ignored but by
** ReduceLROnPlateau). */
FV_API double fv_lr_scheduler_step(fv_lr_scheduler *s, double lr, double metric);

/* ---- early stopping (Lightning's EarlyStopping) --------------------------------- */

typedef struct fv_early_stopping {
	bool enabled;
	const char *monitor;
	bool mode_max;
	double min_delta;
	int64_t patience;
	bool check_finite;
	double stopping_threshold;   /* stop once better than this; NaN: none */
	double divergence_threshold; /* stop once worse than this; NaN: none */
	/* state */
	double best;
	int64_t wait_count;
} fv_early_stopping;

/* Read an EarlyStopping spec; NULL gives a disabled one. */
FV_API fv_status fv_early_stopping_parse(const fv_config_node *spec, fv_early_stopping *out);
/* Look at one epoch's value; true when training should stop.  The
** comparison is Lightning's, in float32: improved when
** value - min_delta > best (max mode) or value + min_delta < best (min). */
FV_API bool fv_early_stopping_step(fv_early_stopping *e, double value);

/* ---- models for data -------------------------------------------------------------- */

/* Instantiate the config's `model` for the sessions of `info`, as
** openretina's train.py does: model.n_neurons_dict is set from the data
** (in `cfg`, as train.py sets it), data_info (whose mean_activity_dict
** initialises the readout biases) is passed along, and a spec naming no
** _target_ is a UnifiedCoreReadout.  `seed` seeds the initialisation. */
FV_API fv_module *fv_model_build(fv_registry *reg, fv_config *cfg, const fv_data_info *info,
                                 uint64_t seed);

/* Rebuild a checkpoint's model from its metadata (the config its model
** was built from, and the data info) and load its weights, in eval mode.  *cfg_out (may be NULL) gets the checkpoint's
** config, which the caller frees. */
FV_API fv_module *fv_model_load(fv_registry *reg, const fv_checkpoint *c, fv_config **cfg_out);

/* ---- the training run ---------------------------------------------------------------- */

/* Called after each new best checkpoint is written (path: its file,
** epoch: 0-based), e.g. to redraw figures while a long run goes on. */
typedef void (*fv_best_checkpoint_fn)(void *ud, const char *path, int64_t epoch);

typedef struct fv_train_options {
	int progress;       /* -1: a bar when `out` is a terminal; 0: plain lines; 1: bar */
	FILE *out;          /* progress and summary lines; NULL: stdout */
	bool quiet;         /* nothing on `out` */
	fv_best_checkpoint_fn on_best; /* may be NULL */
	void *ud;           /* for on_best */
	bool strict;        /* keys of the config fovea does not act on are an error, not a
	                    ** warning (fv_config_unused) */
} fv_train_options;

typedef struct fv_train_result {
	int64_t epochs;        /* epochs completed, resumed ones included */
	int64_t best_epoch;    /* 0-based; -1 when no epoch improved */
	double best_value;     /* the checkpoint monitor's best value */
	double seconds;        /* wall time of this invocation */
	double seconds_per_epoch; /* mean over the epochs this invocation ran */
	bool stopped_early;
	char output_dir[4096];
} fv_train_result;

/* Train as configured (the config as fv_config_compose gives it).  The
** trainer fills in what the saved config.yaml records: model.n_neurons_dict
** (as train.py does) and the seed it used (a null seed becomes the time).
** `res` may be NULL. */
FV_API fv_status fv_train(fv_registry *reg, fv_config *cfg, const fv_train_options *o,
                          fv_train_result *res);

/* The parts of a training config that are not plugins (loggers, callbacks,
** the trainer's own settings) declare their options in tables too, so that
** `fovea describe` documents them like components. */
typedef struct fv_builtin {
	const char *const *names; /* NULL-terminated: the short name, then _target_ spellings */
	const char *kind;         /* "logger", "callback", ... */
	const char *doc;
	const fv_option *options;
} fv_builtin;

/* The built-in part called `name` (any of its names), or NULL. */
FV_API const fv_builtin *fv_builtin_find(const char *name);
/* All of them, *n set to their number. */
FV_API const fv_builtin *const *fv_builtins(size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_TRAINER_H */
