/*
** trainer.h: `fovea train` as a library: openretina's training of core +
** readout models (train.py with Lightning's fit loop), plus the pieces it is
** made of, which are usable and testable on their own: the learning-rate
** schedulers, early stopping, and building a model for a data set.
**
** One epoch, as Lightning runs openretina's BaseCoreReadout:
**   - every training batch of the LongCycler (fv_data_train_batches):
**     fv_core_readout_step, backward of the total (loss + core and readout
**     regularizers) divided by trainer.accumulate_grad_batches k; after
**     every k-th batch and the epoch's last: clip the gradients
**     (trainer.gradient_clip_val, gradient_clip_algorithm norm or value),
**     one optimizer step, a scheduler with interval "step" steps, and the
**     gradients are dropped (to None); trainer.max_steps optimizer steps
**     end the run, mid-epoch (fovea then still validates that epoch and
**     keeps its row and checkpoints, where Lightning skips the validation);
**   - validation over every session's clips in eval mode without grad;
**     the monitored "val_evaluation_loss" is the evaluation loss
**     (CorrelationLoss3d(avg=True): the mean correlation over neurons) of
**     each batch, averaged over batches weighted by batch size, as
**     Lightning averages a logged value;
**   - then a scheduler with interval "epoch" steps (ReduceLROnPlateau on
**     the monitored value), early stopping looks at the monitored value
**     (a stop takes effect from trainer.min_epochs on), a strictly better value
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
** trainer.max_epochs, min_epochs, max_steps, accumulate_grad_batches,
** gradient_clip_val, gradient_clip_algorithm,
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
** The model must have children "core" and "readout" (UnifiedCoreReadout),
** unless its component has a training_step() of its own, which is called
** instead (SingleCellSpatialContrast). */

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

/* out->eval_loss = eval_loss_fn(out->output, target) without recording, as
** a training step logs it (nothing when eval_loss_fn is NULL); for a
** model's own training_step. */
FV_API fv_status fv_step_evaluate(fv_ctx *ctx, fv_module *eval_loss_fn, fv_tensor *target,
                                  fv_step_terms *out);

/* ---- gradient accumulation (Lightning's accumulate_grad_batches) ------------------
** With accumulate_grad_batches = k Lightning runs training_step on every
** batch and backpropagates total / k, so the gradients of a window of k
** batches add up (the gradients are zeroed only before a window's first
** batch); after the window's last batch it clips the accumulated gradients
** once and takes one optimizer step.  The epoch's last batch always closes
** its window, whose sum is still divided by k.  Windows restart with every
** epoch; the terms in `out` are the unscaled ones Lightning logs. */
/* The backward of one batch of a window: of total / accumulate (total as
** fv_core_readout_step gives it), adding into the parameters' gradients. */
FV_API fv_status fv_accumulate_backward(fv_ctx *ctx, fv_tensor *total, int64_t accumulate);
/* Whether batch `i` (0-based) of an epoch of `n` batches opens a window
** (zero the gradients before it) / closes one (clip and step after it). */
FV_API bool fv_accumulation_opens(int64_t i, int64_t accumulate);
FV_API bool fv_accumulation_closes(int64_t i, int64_t n, int64_t accumulate);

/* The default loss modules of openretina's core-readout models, or the
** ones a model spec names in its `loss` / `evaluation_loss` keys (spec may
** be NULL).  Without such a key, a spec whose `_target_` model declares a
** default for the option (a `_target_` map, e.g. SpatialContrastCoreReadout's
** PoissonLoss3d with avg) gets that one. */
FV_API fv_module *fv_default_loss(fv_registry *reg, const fv_config_node *model_spec);
FV_API fv_module *fv_default_evaluation_loss(fv_registry *reg,
                                             const fv_config_node *model_spec);

/* Every trainable parameter below m (requires_grad), in state_dict order,
** into a malloc'd array the caller frees (an empty one, *n = 0, for a
** module without any); NULL only when out of memory. */
FV_API fv_tensor **fv_module_params(const fv_module *m, size_t *n);

/* ---- learning-rate schedulers (torch.optim.lr_scheduler) -------------------------
** The seven schedulers of openretina's configs/lr_scheduler/, with torch's
** option names, defaults and step() arithmetic (the recursive "chainable"
** forms where torch uses them, so rates match to the last bit), and
** Lightning's stepping: `interval` "epoch" steps once per epoch (every
** `frequency`-th), ReduceLROnPlateau after validation with the monitored
** value, the others after the epoch's last batch; "step" steps after every
** optimizer step (batches that only accumulate do not count).  Each is an
** fv_builtin of kind "scheduler" (`fovea describe OneCycleLR`).
** The state is plain data so the trainer can checkpoint it. */

typedef enum fv_sched_kind {
	FV_SCHED_NONE,
	FV_SCHED_PLATEAU,     /* ReduceLROnPlateau */
	FV_SCHED_STEP,        /* StepLR */
	FV_SCHED_EXPONENTIAL, /* ExponentialLR */
	FV_SCHED_COSINE,      /* CosineAnnealingLR */
	FV_SCHED_MULTISTEP,   /* MultiStepLR */
	FV_SCHED_COSINE_WARM, /* CosineAnnealingWarmRestarts */
	FV_SCHED_ONE_CYCLE    /* OneCycleLR */
} fv_sched_kind;

#define FV_SCHED_MAX_MILESTONES 64

typedef struct fv_lr_scheduler {
	fv_sched_kind kind;
	const char *monitor;  /* the metric ReduceLROnPlateau watches */
	int64_t frequency;
	bool per_step;        /* interval "step" (else "epoch") */
	/* ReduceLROnPlateau */
	bool mode_max;
	double factor;
	int64_t patience;
	double threshold;
	bool threshold_rel;
	int64_t cooldown;
	double min_lr;        /* also OneCycleLR's final rate: initial_lr / final_div_factor */
	double eps;
	/* StepLR, ExponentialLR, MultiStepLR */
	int64_t step_size;
	double gamma;
	/* MultiStepLR: distinct milestones, ascending, and how often each was listed */
	size_t n_milestones;
	int64_t milestones[FV_SCHED_MAX_MILESTONES];
	int64_t milestone_count[FV_SCHED_MAX_MILESTONES];
	/* CosineAnnealingLR, CosineAnnealingWarmRestarts */
	int64_t t_max;
	double eta_min;
	int64_t t_0, t_mult;
	/* OneCycleLR; total_steps 0: the trainer's estimate of its optimizer steps */
	double max_lr, initial_lr;
	int64_t total_steps;
	double pct_start;
	bool anneal_linear;
	bool cycle_momentum;
	double base_momentum, max_momentum;
	double div_factor, final_div_factor;
	bool three_phase;
	/* state */
	double base_lr;
	int64_t last_epoch;   /* steps taken */
	double best;
	int64_t num_bad_epochs;
	int64_t cooldown_counter;
	int64_t t_i, t_cur;   /* CosineAnnealingWarmRestarts */
	double momentum;      /* OneCycleLR's momentum of the current step; NaN: not cycled */
} fv_lr_scheduler;

/* Read a scheduler spec ({_target_: torch.optim.lr_scheduler.StepLR, ...},
** also the bare class names; NULL or null: openretina's default
** ReduceLROnPlateau(mode=max, factor=0.3, patience=5, threshold=0.0005,
** threshold_mode=abs, min_lr=lr*0.3^3)).  `lr` is the initial learning
** rate; a ReduceLROnPlateau without min_lr gets lr * factor^3 (factor 0.3
** when not given) as openretina's instantiate_scheduler gives it.  The
** result is the constructed scheduler (torch's last_epoch 0); call
** fv_lr_scheduler_start() for the rate (and momentum) it sets. */
FV_API fv_status fv_lr_scheduler_parse(const fv_config_node *spec, double lr,
                                       fv_lr_scheduler *out);
/* What the constructor does to the optimizer: `lr` is its learning rate
** (torch's base_lrs); returns the rate to train the first step with (the
** same, but for OneCycleLR: max_lr / div_factor), and sets s->momentum
** (OneCycleLR with cycle_momentum: max_momentum, else NaN).  OneCycleLR
** needs total_steps (set it first when the config left it to the
** trainer); without one this is an error and returns NaN. */
FV_API double fv_lr_scheduler_start(fv_lr_scheduler *s, double lr);
/* One step: returns the learning rate to use next given the current one and
** the monitored metric (ignored but by ReduceLROnPlateau), and updates
** s->momentum.  Stepping OneCycleLR past total_steps is an error (as
** torch's ValueError) and returns NaN. */
FV_API double fv_lr_scheduler_step(fv_lr_scheduler *s, double lr, double metric);
/* Lightning's Trainer.estimated_stepping_batches: the optimizer steps of a
** run of max_epochs epochs of `batches` batches each, accumulating
** `accumulate` batches per step, capped by max_steps (< 0: none). */
FV_API int64_t fv_estimated_stepping_batches(int64_t batches, int64_t accumulate,
                                             int64_t max_epochs, int64_t max_steps);

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
	bool verbose;                /* say why at each check, as Lightning's log lines */
	bool strict;                 /* an unknown monitor is an error (else: never stops) */
	int on_train_epoch_end;      /* check_on_train_epoch_end: 1, 0, -1 (null: the trainer
	                             ** decides, Lightning's rule) */
	/* state */
	double best;
	int64_t wait_count;
	char message[256];           /* the last step's verdict, in Lightning's words */
} fv_early_stopping;

/* Read an EarlyStopping spec; NULL gives a disabled one. */
FV_API fv_status fv_early_stopping_parse(const fv_config_node *spec, fv_early_stopping *out);
/* Look at one epoch's value; true when training should stop.  The
** comparison is Lightning's, in float32: improved when
** value - min_delta > best (max mode) or value + min_delta < best (min).
** With verbose, e->message gets Lightning's line for the check ("" for none). */
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

/* One finished epoch, for live plots: after its metrics.csv row and its
** checkpoints are written.  Pointers are valid during the call only. */
typedef struct fv_epoch_report {
	int64_t epoch;              /* 0-based */
	int64_t max_epochs;
	size_t n_metrics;
	const char *const *names;   /* metrics.csv's names: train_loss, ..., val_evaluation_loss */
	const double *values;
	double lr;                  /* the learning rate the epoch ran with */
	double seconds;             /* wall time of the epoch, validation included */
	bool best;                  /* best.safetensors was written for it */
} fv_epoch_report;

/* A status other than FV_OK ends the run with that status. */
typedef fv_status (*fv_epoch_fn)(void *ud, const fv_epoch_report *e);
/* Polled before every training and validation step; true stops the run
** there (Ctrl-C in an interactive session): the unfinished epoch is
** dropped, so last.safetensors holds the last finished one and
** resume=true continues exactly as an uninterrupted run would. */
typedef bool (*fv_stop_fn)(void *ud);

typedef struct fv_train_options {
	/* sizeof(fv_train_options) as the caller was compiled; fields beyond it
	** are taken as zero, so later releases can add fields.  0 stands for the
	** first release's fields (up to ud). */
	size_t struct_size;
	int progress;       /* -1: a bar when `out` is a terminal; 0: plain lines; 1: bar */
	FILE *out;          /* progress and summary lines; NULL: stdout */
	bool quiet;         /* nothing on `out` */
	fv_best_checkpoint_fn on_best; /* may be NULL */
	void *ud;           /* for every callback */
	fv_epoch_fn on_epoch;       /* may be NULL */
	fv_stop_fn should_stop;     /* may be NULL */
	bool strict;        /* keys of the config fovea does not act on are an error, not a
	                    ** warning (fv_config_unused) */
	/* The processes of an MPI job (fovea/parallel.h) train this run
	** together, each on its share of every batch; only rank 0 writes the
	** outputs and calls the callbacks (docs/parallel.md).  Every rank must
	** call fv_train with the same config.  Ignored in one process. */
	bool data_parallel;
} fv_train_options;

typedef struct fv_train_result {
	int64_t epochs;        /* epochs completed, resumed ones included */
	int64_t best_epoch;    /* 0-based; -1 when no epoch improved */
	double best_value;     /* the checkpoint monitor's best value */
	double seconds;        /* wall time of this invocation */
	double seconds_per_epoch; /* mean over the epochs this invocation ran */
	bool stopped_early;
	char output_dir[4096];
	bool interrupted;      /* should_stop ended the run */
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
