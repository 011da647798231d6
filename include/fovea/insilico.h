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
**
** On top of the loop, fv_optimize_from_config is the pipeline of `fovea
** mei` and `fovea mds` (openretina's visualize_model_neurons): a model
** from a checkpoint, the components from a config, a seeded start, and
** the stimulus, its figure and its JSON record per unit.
*/
#ifndef FOVEA_INSILICO_H
#define FOVEA_INSILICO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
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

/* ---- the pipeline: `fovea mei` and `fovea mds` as a library ------------------------
**
** openretina's visualize_model_neurons, generalised: load a trained model,
** and for each unit asked for, build the optimisation's components from a
** config, start from a seeded random stimulus, run fv_optimize_stimulus and
** write DIR/STEM.npy (the stimulus), DIR/STEM.png (fv_figure_stimulus) and
** DIR/STEM.json (the record: traces, timing, response, peak, the config).
** The keys of the optimisation config and their defaults (those of
** visualize_model_neurons) are in docs/components/insilico.md. */

/* What is optimised. */
typedef enum fv_insilico_kind {
	FV_INSILICO_MEI,       /* output neurons: IncreaseObjective, one stimulus per neuron */
	FV_INSILICO_INNER_MEI, /* inner units: InnerNeuronVisualizationObjective, the central
	                       ** unit of channels of a layer, one stimulus per channel */
	FV_INSILICO_MDS        /* one stimulus: ContrastiveNeuronObjective, an ON cluster of
	                       ** neurons against OFF clusters */
} fv_insilico_kind;

/* A list of indices (neurons or channels). */
typedef struct fv_indices {
	size_t n;
	const int64_t *v;
} fv_indices;

/* The optimisations of one call: a model and the units whose stimuli are
** wanted.  Indices are checked against the model before any optimisation
** runs. */
typedef struct fv_insilico_job {
	const char *checkpoint; /* a checkpoint or model name (fv_checkpoint_open) */
	fv_insilico_kind kind;
	const char *session;    /* the readout (data_key); NULL: the model's first session,
	                        ** allowed for inner units only (their layer is in the core) */
	const char *layer;      /* INNER_MEI: the layer, e.g. "core.features.layer0" */
	fv_indices units;       /* MEI: neurons; INNER_MEI: channels; n == 0: every one */
	fv_indices on;          /* MDS: the cluster to drive */
	size_t n_off;           /* MDS: the clusters to discriminate against (>= 1) */
	const fv_indices *off;
	uint64_t seed;          /* of the start stimulus; every unit starts from the same one */
	const char *reference;  /* MEI, INNER_MEI: a movie .npy (C, T, H, W) in data units;
	                        ** the record gets each unit's mean predicted response to it.
	                        ** NULL: none */
	const char *model_yaml; /* the model of a .ckpt without hyper_parameters
	                        ** (fv_checkpoint_import); NULL: none needed */
} fv_insilico_job;

/* One finished optimisation, after its files are written.  Pointers are
** valid during the call only. */
typedef struct fv_insilico_record {
	const char *stem;           /* "mei_session_0_3": the files are DIR/STEM.{npy,png,json} */
	const char *dir;
	int64_t unit;               /* the neuron or channel; -1 for an MDS */
	const fv_tensor *stimulus;  /* (1, C, T, H, W), in the model's normalised units */
	size_t iterations;
	const double *objective_trace, *loss_trace; /* per iteration, before its step */
	double final_objective;     /* at the final stimulus */
	double seconds_per_iteration;
	int64_t peak_channel, peak_row, peak_col; /* fv_stimulus_peak */
	const double *response_trace; /* the unit's response over the model's output time
	                              ** (its last frames align with the stimulus'), or NULL */
	int64_t n_response;
	const char *title;            /* the figure's: what was optimised, the session */
} fv_insilico_record;

/* Called after each optimisation; a status other than FV_OK ends the run
** with that status. */
typedef fv_status (*fv_insilico_fn)(void *ud, const fv_insilico_record *r);

/* How a run reports, as fv_train_options. */
typedef struct fv_insilico_options {
	const char *out_dir;      /* NULL: "."; created if missing */
	int progress;             /* -1: a live line when `out` is a terminal; 0: summary lines
	                          ** only; 1: a live line */
	FILE *out;                /* progress and one summary line per stimulus; NULL: stdout */
	bool quiet;               /* nothing on `out` */
	fv_insilico_fn on_result; /* may be NULL */
	void *ud;                 /* for on_result */
	/* Run only this process's share of the units, for processes that split
	** a job (`mpirun fovea mei`): the k-th unit (0-based, in the job's order;
	** an MDS is unit 0) when k % shard_count == shard_index.  Each stimulus
	** depends on its unit alone, so the shards' files are those of one
	** process.  shard_count 0 or 1: every unit. */
	int shard_index, shard_count;
} fv_insilico_options;

typedef struct fv_insilico_result {
	size_t n_stimuli;         /* optimisations completed (files written) */
	int64_t iterations;       /* over all of them */
	double seconds;           /* wall time of the call */
} fv_insilico_result;

/* The optimisation config for `kind`: visualize_model_neurons' defaults,
** replaced key by key (top-level keys) by the YAML file `path` (may be NULL;
** its `defaults:` list is composed as fv_config_compose does), then the
** overrides ("stopper.max_iterations=100", Hydra's grammar).  The defaults
** come first so that an override can reach into them.  NULL on error. */
FV_API fv_config *fv_insilico_config_compose(fv_insilico_kind kind, const char *path,
                                             int n_overrides, const char *const *overrides);

/* Run the job's optimisations one after the other on one loaded model,
** with the components `cfg` describes (NULL: the defaults; top-level keys
** it lacks get theirs).  `cfg` is completed in place with what the records
** store: the model's channel ranges for a null min_max_values, the
** objective's unit and data_key, and for inner units a null
** objective.response_reducer.start, which becomes the layer's last
** `length` frames as visualize_model_neurons sets it.  `o` and `res` may
** be NULL.  Errors name the checkpoint, the session, the unit or the
** config key at fault; an error in one optimisation ends the run (the
** files of the ones before it stay). */
FV_API fv_status fv_optimize_from_config(fv_registry *reg, fv_config *cfg,
                                         const fv_insilico_job *job,
                                         const fv_insilico_options *o, fv_insilico_result *res);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_INSILICO_H */
