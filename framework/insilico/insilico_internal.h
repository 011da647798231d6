/*
** insilico_internal.h: what the files of the in-silico pipeline
** (fv_optimize_from_config) share: the run's state, set up and driven by
** insilico_pipeline.c, with the config in insilico_config.c, the units'
** responses in insilico_units.c and the output files in insilico_record.c.
*/
#ifndef FOVEA_INSILICO_INTERNAL_H
#define FOVEA_INSILICO_INTERNAL_H

#include <jansson.h>
#include <stdio.h>

#include "fovea/checkpoint.h"
#include "fovea/insilico.h"
#include "base/base_internal.h"

/* One run of fv_optimize_from_config. */
typedef struct fv__ins {
	fv_registry *reg;
	fv_config *cfg;
	const fv_insilico_job *job;
	const char *dir;          /* the output directory */
	FILE *out;
	bool quiet, live;         /* live: the progress line is rewritten in place */
	fv_insilico_fn on_result;
	void *ud;
	int shard_index, shard_count; /* this process's units (fv_insilico_options) */
	/* the model */
	fv_checkpoint *ck;
	const fv_data_info *info;
	fv_module *module;
	fv_model *model;
	const char *session;      /* the job's, or the model's first */
	size_t session_index;
	/* settings of the config */
	int64_t time_steps;
	double init_std;
	int64_t max_iterations;   /* for the progress line; 0: unknown */
	/* the units: the session's neurons (MEI) or the layer's channels
	** (INNER_MEI), 0 for an MDS */
	int64_t n_units;
	int64_t layer_frames;     /* INNER_MEI: time steps of the layer's output */
	double *reference_mean;   /* per unit, or NULL */
} fv__ins;

/* One optimisation and what it leaves behind. */
typedef struct fv__ins_stimulus {
	char stem[1024];          /* DIR/STEM.{npy,png,json} */
	char title[1024];         /* the figure's */
	int64_t unit;             /* neuron or channel; -1: an MDS */
	fv_tensor *x;             /* (1, C, T, H, W) */
	/* per iteration */
	size_t n, cap;
	double *objective, *loss, *seconds;
	double last;              /* monotonic time of the last iteration's end */
	/* at the final stimulus */
	double total_seconds, final_objective;
	double *response_trace;   /* the unit's response over time, or NULL */
	int64_t n_response;
	int64_t peak[3];          /* channel, row, col */
} fv__ins_stimulus;

/* ---- insilico_config.c ---------------------------------------------------------- */

/* Give every top-level key `cfg` lacks its default (the objective's by
** `kind`). */
fv_status fv__ins_config_defaults(fv_config *cfg, fv_insilico_kind kind);
/* Complete the config for the loaded model (a null min_max_values becomes
** one unbounded pair per channel), resolve it and read the settings the
** run needs (time_steps, init_std, the stopper's max_iterations). */
fv_status fv__ins_config_complete(fv__ins *s);
/* For inner units: a null objective.response_reducer.start becomes the
** layer's last `length` frames (visualize_model_neurons). */
fv_status fv__ins_config_inner_start(fv__ins *s);
/* Set `key` (dotted) to `value`, written as JSON (a YAML flow value),
** adding it if missing.  Takes `value` (a new reference) even on error. */
fv_status fv__ins_config_set(fv_config *cfg, const char *key, json_t *value);

/* ---- insilico_units.c ------------------------------------------------------------- */

/* The responses (frames, units) of every unit to the stimulus x (1, C, T,
** H, W), in ctx without recording: the session's neurons (MEI, MDS) or
** the central unit of every channel of the job's layer (INNER_MEI), as
** InnerNeuronVisualizationObjective reads it. */
fv_tensor *fv__ins_responses(const fv__ins *s, fv_ctx *ctx, fv_tensor *x);
/* INNER_MEI: the layer's channels and frames (s->n_units, s->layer_frames). */
fv_status fv__ins_probe_layer(fv__ins *s);
/* The job's reference movie: each unit's mean response (s->reference_mean). */
fv_status fv__ins_reference(fv__ins *s);

/* ---- insilico_memory.c ------------------------------------------------------------ */

/* Refuse, before anything of the stimulus's size is allocated or computed,
** an optimisation whose stimulus, gradient, optimizer state and one
** forward's activations at s->time_steps frames exceed the job's memory
** budget (memory_limit.c). */
fv_status fv__ins_check_memory(const fv__ins *s);

/* ---- insilico_record.c --------------------------------------------------------------- */

/* DIR/STEM.npy, DIR/STEM.png and DIR/STEM.json. */
fv_status fv__ins_write(const fv__ins *s, const fv__ins_stimulus *st);
/* The JSON array of a list of indices, and of an MDS job's OFF clusters
** (NULL when out of memory). */
json_t *fv__ins_json_indices(const fv_indices *ix);
json_t *fv__ins_json_off_clusters(const fv_insilico_job *job);

#endif /* FOVEA_INSILICO_INTERNAL_H */
