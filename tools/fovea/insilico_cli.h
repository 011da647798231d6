/*
** insilico_cli.h: the command line `fovea mei` and `fovea mds` share: the
** options both take, index lists, and the call of the library pipeline
** (fv_insilico_config_compose, fv_optimize_from_config), which does the
** work and prints the progress.
*/
#ifndef FOVEA_TOOLS_INSILICO_CLI_H
#define FOVEA_TOOLS_INSILICO_CLI_H

#include <stdint.h>

#include "cmd.h"
#include "fovea/figure.h"
#include "fovea/insilico.h"

/* A command's own options, each taking a value (`names`, NULL-terminated);
** set() stores one and returns CLI_OK or a usage error. */
typedef struct ins_own {
	const char *const *names;
	int (*set)(void *ud, const char *name, const char *value);
	void *ud;
	const char *const *flags; /* options without a value: set() gets NULL; may be NULL */
} ins_own;

typedef struct ins_args {
	const cli_cmd *cmd;
	const char *checkpoint, *config_file, *session, *out_dir, *model;
	const char *movie;      /* --movie FILE|FORMAT, or NULL */
	fv_figure_output figure; /* --format, --size, --dpi: STEM.EXT beside STEM.png */
	uint64_t seed;
	int threads;
	int progress; /* -1: a live line on a terminal; 0: plain lines; 1: live line */
	bool quiet;
	int n_overrides;
	const char **overrides; /* room for one per argument */
} ins_args;

/* Parse the command line into `a` (whose cmd is set), offering each
** option to `own` first.  Returns CLI_OK, or CLI_USAGE after reporting
** what is wrong.  Free with ins_args_free() either way. */
int ins_parse(ins_args *a, int argc, char **argv, const ins_own *own);
void ins_args_free(ins_args *a);

/* Parse "1,2,3" into a malloc'd list for `opt`; "all" gives the empty list
** when `all_ok`.  CLI_USAGE with a message if bad. */
int ins_parse_indices(const cli_cmd *cmd, const char *opt, const char *noun, const char *text,
                      bool all_ok, fv_indices *out);

/* Compose the config, load the plugins and run the job (its checkpoint
** and seed are taken from `a`); errors are reported.  With --movie each
** stimulus is also written as a movie (ins_movie_path). */
int ins_run(const ins_args *a, fv_insilico_job *job);

/* Like ins_run, with the caller's on_result called after each stimulus
** (after its movie). */
int ins_run_with(const ins_args *a, fv_insilico_job *job, fv_insilico_fn on_result, void *ud);

/* The work of ins_run_with on a loaded registry, reporting nothing:
** the status, its message in fv_errmsg(); *result (may be NULL) filled. */
fv_status ins_optimize(const ins_args *a, fv_registry *reg, fv_insilico_job *job,
                       fv_insilico_fn on_result, void *ud, fv_insilico_result *result);

/* Where --movie VALUE puts the movie of record `r`: a bare format (mp4,
** gif, png) gives DIR/STEM.FORMAT; a file name is used as it is for a
** single unit, and gets _STEM before its extension when the job has
** several. */
void ins_movie_path(char *buf, size_t n, const char *value, bool several,
                    const fv_insilico_record *r);

/* The movie of an optimised stimulus with its response trace. */
fv_status ins_write_movie(const fv_insilico_record *r, const char *path);

/* The usage lines of the shared options. */
#define INS_COMMON_USAGE                                                                     \
	"  --seed N           seed of the random start stimulus (default 0)\n"                 \
	"  --format F         also write each figure as STEM.F (svg or pdf; png: sized\n"     \
	"                     by --size W[xH] inches and --dpi N)\n"                           \
	"  --movie FILE       also write each stimulus as a movie, its response beneath:\n"    \
	"                     FILE.mp4 (H.264), .gif or .png (animated); with several\n"       \
	"                     units FILE gets _STEM; a bare mp4/gif/png writes DIR/STEM.mp4\n"  \
	"  --out DIR          output directory (default .; created if missing)\n"              \
	"  --threads N        threads for the tensor ops (default: all cores)\n"               \
	"  --progress         a live progress line even when stdout is not a terminal\n"       \
	"  --no-progress      plain lines even on a terminal\n"                                 \
	"  --quiet            print nothing but errors\n"                                        \
	"  --model MODEL.yaml the model of a .ckpt without hyper_parameters (a _target_ map\n"   \
	"                     of openretina's constructor arguments)\n"                         \
	"\n"                                                                                     \
	CLI_CHECKPOINT_USAGE                                                                     \
	"\n"                                                                                     \
	"CONFIG.yaml and key=value overrides change the optimisation.  Keys (defaults\n"        \
	"from openretina's visualize_model_neurons):\n"                                         \
	"  time_steps: 50       frames of the stimulus\n"                                       \
	"  init_std: 0.1        the start stimulus is N(0, init_std^2), then postprocessed\n"  \
	"  norm: 5.0            L2 norm of the stimulus (postprocessor and penalty)\n"          \
	"  min_max_values:      one [min, max] per channel, null: unbounded (the default)\n"  \
	"  objective:           {_target_: ..., response_reducer: {_target_: SliceMeanReducer,\n" \
	"                        axis: 0, start: 10, length: 10}} (inner units: start null,\n"  \
	"                        the layer's last `length` frames)\n"                            \
	"  optimizer:           {_target_: torch.optim.SGD, lr: 100.0} (or Adam, AdamW)\n"      \
	"  stopper:             {_target_: OptimizationStopper, max_iterations: 10}\n"          \
	"  regularizers:        [RangeRegularizationLoss(min_max_values, max_norm: norm,\n"     \
	"                        factor: 0.1)]  (penalties)\n"                                  \
	"  postprocessors:      [ChangeNormJointlyClipRangeSeparately(min_max_values, norm)]\n" \
	"A key CONFIG.yaml sets replaces that whole default; overrides apply last.\n"

#endif /* FOVEA_TOOLS_INSILICO_CLI_H */
