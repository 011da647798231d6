/*
** insilico_cli.h: what `fovea mei` and `fovea mds` share: the command
** line options both take, the optimisation config (built-in defaults,
** a YAML file, key=value overrides), the run of one optimisation and its
** outputs (.npy, .png, .json).
*/
#ifndef FOVEA_TOOLS_INSILICO_CLI_H
#define FOVEA_TOOLS_INSILICO_CLI_H

#include <stdint.h>

#include "cmd.h"
#include "fovea/checkpoint.h"
#include "fovea/config.h"

typedef struct ins_args {
	const cli_cmd *cmd;
	const char *checkpoint, *config_file, *session, *out_dir, *reference;
	uint64_t seed;
	int threads;
	int progress; /* -1: a live line on a terminal; 0: plain lines; 1: live line */
	bool quiet;
	int n_overrides;
	const char **overrides;
} ins_args;

/* Parse one shared option or argument at argv[*i] (advancing *i past a value).
** Returns CLI_OK, or CLI_USAGE after reporting what is wrong (an unknown
** option included: commands check their own options first). */
int ins_parse_common(ins_args *a, int argc, char **argv, int *i);
/* After parsing: the checkpoint and --session are present. */
int ins_check_args(const ins_args *a);

/* The usage lines of the shared options. */
#define INS_COMMON_USAGE                                                                     \
	"  --session S        the session (readout) whose neurons are optimised (required)\n"  \
	"  --seed N           seed of the random start stimulus (default 0)\n"                 \
	"  --out DIR          output directory (default .; created if missing)\n"              \
	"  --reference M.npy  also report each neuron's mean predicted response to the\n"      \
	"                     movie M (channels x time x height x width, data units)\n"         \
	"  --threads N        threads for the tensor ops (default: all cores)\n"               \
	"  --progress         a live progress line even when stdout is not a terminal\n"       \
	"  --no-progress      plain lines even on a terminal\n"                                 \
	"  --quiet            print nothing but errors\n"                                        \
	"\n"                                                                                     \
	"CONFIG.yaml and key=value overrides change the optimisation.  Keys (defaults\n"        \
	"from openretina's visualize_model_neurons):\n"                                         \
	"  time_steps: 50       frames of the stimulus\n"                                       \
	"  init_std: 0.1        the start stimulus is N(0, init_std^2), then postprocessed\n"  \
	"  norm: 5.0            L2 norm of the stimulus (postprocessor and penalty)\n"          \
	"  min_max_values:      one [min, max] per channel, null: unbounded (the default)\n"  \
	"  objective:           {_target_: ..., response_reducer: {_target_: SliceMeanReducer,\n" \
	"                        axis: 0, start: 10, length: 10}}\n"                            \
	"  optimizer:           {_target_: torch.optim.SGD, lr: 100.0} (or Adam, AdamW)\n"      \
	"  stopper:             {_target_: OptimizationStopper, max_iterations: 10}\n"          \
	"  regularizers:        [RangeRegularizationLoss(min_max_values, max_norm: norm,\n"     \
	"                        factor: 0.1)]  (penalties)\n"                                  \
	"  postprocessors:      [ChangeNormJointlyClipRangeSeparately(min_max_values, norm)]\n" \
	"A key CONFIG.yaml sets replaces that whole default; overrides apply last.\n"

/* One optimisation: what the objective is, where its outputs go. */
typedef struct ins_job {
	const char *stem;            /* "mei_session_1_3": outputs are DIR/STEM.{npy,png,json} */
	const char *title;           /* the figure's title */
	const char *const *objective_overrides; /* "++objective.neuron_indices=3", ... */
	int n_objective_overrides;
	int64_t neuron;              /* the neuron whose response is reported, or -1 */
	const char *json_extra;      /* JSON members describing the job ("\"neuron\": 3") */
} ins_job;

typedef struct ins_session ins_session;

/* Load the checkpoint's model and compose the optimisation config (the
** objective `objective_default`, flow YAML, is the default of `objective`).
** Errors are reported; NULL then, with *rc the exit code. */
ins_session *ins_open(const ins_args *a, const char *objective_default, int *rc);
void ins_close(ins_session *s);
const fv_data_info *ins_info(const ins_session *s);
/* The index of neuron `n` of the session, or an error (exit code). */
int ins_check_neuron(const ins_session *s, int64_t n, const char *what);
int64_t ins_n_neurons(const ins_session *s);

/* Optimise, report, write the outputs. */
int ins_run(ins_session *s, const ins_job *job);

/* A command's whole run: `parse` fills `args` (whose first member is the
** ins_args `common`) from the command line, then the checkpoint is opened
** and `work` runs on it. */
typedef int (*ins_parse_fn)(int argc, char **argv, void *args);
typedef int (*ins_work_fn)(ins_session *s, const void *args);
int ins_main(int argc, char **argv, ins_args *common, void *args, const char *objective_default,
             ins_parse_fn parse, ins_work_fn work);

/* Parse "1,2,3" into a malloc'd list; CLI_USAGE with a message if bad. */
int ins_parse_indices(const cli_cmd *cmd, const char *opt, const char *text, int64_t **out,
                      int *n);

#endif /* FOVEA_TOOLS_INSILICO_CLI_H */
