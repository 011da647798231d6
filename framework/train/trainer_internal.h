/*
** trainer_internal.h: what the trainer's files share: the run's state
** (trainer.c sets it up and drives the epochs, trainer_epoch.c runs one
** epoch, trainer_state.c writes and reads what survives a restart).
*/
#ifndef FOVEA_TRAINER_INTERNAL_H
#define FOVEA_TRAINER_INTERNAL_H

#include <stdio.h>

#include "fovea/ckpt.h"
#include "fovea/trainer.h"
#include "base/base_internal.h"
#include "train/loggers.h"

/* (trainer_model.c) The data info of a fine-tuning run: the checkpoint's
** sessions and the data's new ones, sorted; it points into both, which
** must outlive it.  *n_new gets the number of new sessions.  Errors name
** the checkpoint: another input shape, another neuron count. */
typedef struct fv__merged_info fv__merged_info;
fv__merged_info *fv__merged_info_new(const fv_data_info *old, const fv_data_info *data,
                                     const char *ckpt, size_t *n_new);
const fv_data_info *fv__merged_info_get(const fv__merged_info *m);
void fv__merged_info_free(fv__merged_info *m);

/* The values logged per epoch, in metrics.csv's column order, named as
** openretina's BaseCoreReadout logs them. */
enum {
	M_TRAIN_LOSS,
	M_TRAIN_TOTAL,
	M_REG_CORE,
	M_REG_READOUT,
	M_TRAIN_EVAL,
	M_VAL_LOSS,
	M_VAL_REG_CORE,
	M_VAL_REG_READOUT,
	M_VAL_TOTAL,
	M_VAL_EVAL,
	N_METRICS
};
extern const char *const fv__metric_names[N_METRICS];
/* The index of a metric name ("val_correlation" is val_evaluation_loss, the
** name openretina's default scheduler watches); -1 when unknown. */
int fv__metric_index(const char *name);

/* Lightning's ModelCheckpoint (model_checkpoint.c). */
typedef struct fv__model_ckpt {
	bool on, max, verbose, weights_only, auto_names, save_last;
	int metric;                  /* index in t->metrics; -1: no monitor */
	int64_t top_k, every;
	char *dir, *pattern;
	char **paths;                /* the files kept, with their monitored values */
	double *values;
	size_t n;
	char *restored_dir;          /* the dirpath of a resumed ranking */
} fv__model_ckpt;

/* A limit_*_batches value as Lightning keeps it: a fraction or a count. */
typedef struct fv__batch_limit {
	bool fraction;
	double value;
} fv__batch_limit;

/* openretina's WeightVisualizationCallback (weight_figures.c). */
typedef struct fv__weight_figures {
	char *dir;                   /* folder_path; NULL: off */
	int64_t every, start;
	bool on_train, on_val;
} fv__weight_figures;

/* data_parallel.c's state: the processes sharing each batch. */
typedef struct fv__dp {
	bool on;                     /* more than one process, asked for */
	bool sync_bn;                /* trainer.sync_batchnorm */
	int rank, size;
	int loss_mean, eval_mean;    /* the losses average over the batch (1) or sum (0);
	                                -1: not measured yet */
	float *bucket;               /* the gradients in flight */
	double allreduce_seconds;    /* gradient allreduces of this run so far */
	size_t allreduce_bytes;
	int64_t allreduce_steps;
} fv__dp;

/* One rank's share of a global batch, and how its terms weigh. */
typedef struct fv__shard {
	fv_batch b;                  /* the rows this rank computes */
	double n;                    /* rows in the global batch */
	double share;                /* the fraction of them here */
	bool replicated;             /* fewer rows than ranks: all on every rank */
	double loss_coef, eval_coef, reg_coef;
} fv__shard;

typedef struct fv__trainer {
	fv_registry *reg;
	fv_config *cfg;
	/* settings */
	uint64_t seed;
	int64_t max_epochs;
	int64_t min_epochs;          /* early stopping waits for these */
	int64_t max_steps;           /* optimizer steps; -1: no limit */
	int64_t accumulate;          /* accumulate_grad_batches */
	double clip;                 /* NaN or <= 0: no clipping */
	bool clip_value;             /* gradient_clip_algorithm value (else norm) */
	bool only_train_readout;
	bool resume;
	const char *load_model_path;
	double learning_rate;
	fv__batch_limit train_limit, val_limit, val_interval;
	int64_t val_every;           /* check_val_every_n_epoch */
	int64_t sanity_steps;        /* num_sanity_val_steps; INT64_MAX: all */
	int sched_metric, stop_metric, best_metric;
	bool best_mode_max;
	/* data and model */
	fv_data *data;
	const fv_data_info *info;    /* of the data, or merged for fine-tuning */
	fv__merged_info *merged;
	fv_checkpoint *base;         /* the fine-tuning checkpoint */
	fv_module *model, *loss, *eval_loss;
	fv_tensor **params;
	size_t n_params;
	fv_optimizer *opt;
	fv_lr_scheduler sched;
	fv_early_stopping stop;
	fv_batch_iter *train_it, *val_it;
	int64_t train_batches, val_batches; /* per epoch and pass, after the limits */
	fv_ctx *ctx;
	char *config_yaml;
	char *model_config_yaml;     /* fine-tuning: the config of the model */
	/* progress of the run */
	int64_t epochs_done;
	int64_t global_step;
	double best_value;
	int64_t best_epoch;
	bool stopped;
	bool val_ran;                /* this epoch validated */
	bool val_ever;               /* some epoch validated: the val metrics exist */
	double metrics[N_METRICS];   /* of the last epoch (val: of the last validation) */
	double epoch_seconds;
	double epoch_lr;             /* the rate at the start of the epoch (metrics.csv) */
	fv__text csv;                /* metrics.csv so far */
	fv__loggers *loggers;        /* the config's `logger` group */
	int64_t epoch_first_step;    /* global_step when the epoch being logged began */
	bool lr_monitor, lr_momentum, lr_weight_decay; /* LearningRateMonitor's settings */
	bool strict;                 /* fv_train_options.strict */
	fv__model_ckpt mc;
	fv__weight_figures wv;
	/* OptimizerResetCallback: the rate seen at the last validation end; after
	** a reset the scheduler drives sched_lr (the old optimizer's rate) */
	bool opt_reset, reset_seen, sched_detached;
	double reset_prev_lr, sched_lr;
	double epoch_sched_lr;       /* sched_lr at the epoch's start (LearningRateMonitor) */
	/* output */
	char dir[4096];
	int lock_fd;                 /* on DIR/.fovea.lock, -1 before it is taken */
	FILE *out;
	bool bar, quiet;
	fv_best_checkpoint_fn on_best;
	void *on_best_ud;            /* for every callback */
	fv_epoch_fn on_epoch;
	fv_stop_fn should_stop;
	bool interrupted;            /* should_stop said so */
	fv__dp dp;
	bool writer;                 /* this process writes the outputs (rank 0) */
} fv__trainer;

/* trainer_options.c: the `trainer` node's table (builtins.c), read into t;
** the batch limits; the training batches per epoch from the loader's
** length (an error for Lightning's refusals). */
extern const fv_option fv__trainer_options[];
/* The `evaluation` node's options (eval/eval_config.c). */
extern const fv_option fv__eval_config_options[];
fv_status fv__read_trainer(fv__trainer *t, const fv_config_node *root);
fv_status fv__batch_limit_parse(const fv_config_node *n, const char *name, fv__batch_limit *out);
int64_t fv__batch_limit_apply(const fv__batch_limit *l, int64_t length);
fv_status fv__trainer_batches(fv__trainer *t, int64_t length);

/* Whether should_stop asks to stop now (remembered in t->interrupted). */
bool fv__trainer_interrupted(fv__trainer *t);
/* trainer_sched.c: the schedulers' option tables, for builtins.c */
#define FV__N_LR_SCHEDULERS 7
extern const fv_builtin fv__lr_schedulers[FV__N_LR_SCHEDULERS];

/* trainer_epoch.c: one training pass and one validation pass, filling
** t->metrics. */
fv_status fv__train_epoch(fv__trainer *t);
/* One scheduler step (with the monitored `metric`), applied to the
** optimizer's rate and momentum. */
fv_status fv__schedule_step(fv__trainer *t, double metric);
fv_status fv__validate(fv__trainer *t);
/* Lightning's sanity check: num_sanity_val_steps validation batches before
** training, their metrics dropped. */
fv_status fv__sanity_check(fv__trainer *t);
/* Position the training batches after `epochs` epochs of train_batches. */
fv_status fv__seek_train(fv__trainer *t, int64_t epochs);

/* The training callback whose _target_ ends with `cls`, or NULL. */
const fv_config_node *fv__trainer_callback(const fv_config_node *root, const char *cls);

/* early_stopping.c: Lightning's EarlyStopping at an epoch's end: checks
** after validation, or after every training epoch (check_on_train_epoch_end);
** *stop says whether it asks to stop.  An unknown monitor was refused or
** (strict false) left stop_metric -1. */
extern const fv_option fv__early_stopping_options[];
fv_status fv__early_stopping_epoch(fv__trainer *t, bool *stop);

/* optimizer_reset.c: openretina's OptimizerResetCallback at validation end. */
extern const fv_option fv__optimizer_reset_options[];
fv_status fv__optimizer_reset_open(fv__trainer *t);
fv_status fv__optimizer_reset_epoch(fv__trainer *t);

/* weight_figures.c: read the callback; draw at the start of a new run and
** at the end of epoch `epoch` (0-based); free. */
extern const fv_option fv__weight_figures_options[];
fv_status fv__weight_figures_open(fv__trainer *t);
void fv__weight_figures_start(const fv__trainer *t);
void fv__weight_figures_epoch(const fv__trainer *t, int64_t epoch, bool validated);
void fv__weight_figures_free(fv__weight_figures *w);

/* trainer_log.c: open the config's loggers (after a resume is restored),
** and hand them one epoch's rows as Lightning's fit loop logs them. */
fv_status fv__trainer_log_open(fv__trainer *t);
extern const fv_option fv__lr_monitor_options[]; /* LearningRateMonitor's */
fv_status fv__trainer_log_epoch(fv__trainer *t, double lr);

/* model_checkpoint.c: read the callback (after the output directory is
** known), save and rank after an epoch (epochs_done counts it), free. */
extern const fv_option fv__model_checkpoint_options[];
fv_status fv__model_checkpoint_open(fv__trainer *t);
fv_status fv__model_checkpoint_epoch(fv__trainer *t);
void fv__model_checkpoint_free(fv__model_ckpt *m);
/* Its ranking as checkpoints keep it ({"dirpath", "paths", "values"}),
** and restored from one (before fv__model_checkpoint_open, which keeps it
** only for the same dirpath, as Lightning). */
typedef struct json_t json_t;
json_t *fv__model_checkpoint_state(const fv__model_ckpt *m);
fv_status fv__model_checkpoint_restore(fv__model_ckpt *m, const json_t *state, const char *path);
/* trainer_state.c: a checkpoint at `path`; weights_only leaves the
** optimizer and trainer state out. */
fv_status fv__save_checkpoint_path(fv__trainer *t, const char *path, bool weights_only);

/* trainer_unused.c: name the config's keys nothing read (an error when
** strict). */
fv_status fv__report_unused(fv__trainer *t, bool strict);

/* trainer_state.c */
/* DIR/NAME into buf (an error when it does not fit). */
fv_status fv__out_path(const fv__trainer *t, const char *name, char *buf, size_t size);
fv_status fv__save_checkpoint(fv__trainer *t, const char *name);
fv_status fv__append_metrics(fv__trainer *t, double lr);
/* Restore the run from DIR/last.safetensors (the model, the optimizer,
** the trainer state and the first rows of metrics.csv). */
fv_status fv__resume(fv__trainer *t, fv_checkpoint *last);

/* ckpt_import.c: the bytes of the fovea checkpoint an openretina .ckpt
** holds (malloc'd); `model_yaml` (may be NULL) gives the model when the
** file has no hyper_parameters. */
fv_status fv__ckpt_import(const char *path, const char *model_yaml, void **buf, size_t *len);
/* ckpt_performance.c: the test performance openretina keeps in data_info
** (pretrained_performance, its metric, model_cut_frames) as JSON for the
** metadata key "pretrained_performance"; *json is NULL when the data info
** holds none of them. */
fv_status fv__ckpt_performance(const fv_pyval *data_info, const char *path, char **json);

/* The part of fv__resume that reads the metadata's trainer_state JSON (of
** the checkpoint at `path`) into t: the epoch, the seed, the step, the
** learning rate of t->opt, the best value, the scheduler and early stopping
** state.  Separate so that the checkpoint-metadata fuzzer reaches it. */
fv_status fv__apply_trainer_state(fv__trainer *t, const char *json, const char *path);
/* metrics.csv's header line. */
void fv__metrics_header(fv__text *csv);

/* data_parallel.c: data-parallel training over the processes of an MPI
** job (`wanted`: fv_train_options.data_parallel); everything is a no-op
** when t->dp.on is false.  fv__dp_shard slices a batch in t->ctx (after
** its reset); fv__dp_objective gives the tensor to backpropagate (NULL on
** error); fv__dp_validation_weights sets a validation share's
** coefficients; fv__dp_reduce_sums sums a pass's weighted sums over the
** ranks; fv__dp_sync_buffers gives every rank rank 0's
** running statistics when they are not synced. */
fv_status fv__dp_open(fv__trainer *t, bool wanted);
void fv__dp_close(fv__trainer *t);
fv_status fv__dp_shard(fv__trainer *t, const fv_batch *in, fv__shard *sh);
fv_tensor *fv__dp_objective(fv__trainer *t, fv__shard *sh, const fv_step_terms *s);
fv_status fv__dp_validation_weights(fv__trainer *t, fv__shard *sh, const fv_step_terms *s);
fv_status fv__dp_reduce_sums(const fv__trainer *t, double *sum, size_t n, double *weight);
fv_status fv__dp_allreduce_grads(fv__trainer *t);
fv_status fv__dp_sync_buffers(fv__trainer *t);

/* run_lock.c: take DIR/.fovea.lock exclusively (*fd gets the descriptor,
** held until fv__run_unlock), or refuse, naming DIR and the holder's pid. */
fv_status fv__run_lock(const char *dir, int *fd);
void fv__run_unlock(int fd);

#endif /* FOVEA_TRAINER_INTERNAL_H */
