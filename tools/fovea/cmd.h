/*
** cmd.h: what the `fovea` program's subcommands share.
**
** Each subcommand lives in its own file, tools/cmd_<name>.c, and defines one
** `const cli_cmd cli_cmd_<name>`.  Adding one takes three lines elsewhere:
** its extern below, its entry in the table in fovea.c, and its file in the
** fovea target of tools/meson.build.  The dispatcher handles `--help`, `-h`
** and `fovea help NAME` for every command from `usage`, so a command's run()
** sees only real arguments.
**
** Exit codes: 0 success, 1 the work failed (bad config, missing file,
** broken plugin), 2 the command line itself was wrong.
*/
#ifndef FOVEA_TOOLS_CMD_H
#define FOVEA_TOOLS_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "fovea/checkpoint.h"
#include "fovea/fovea.h"
#include "fovea/plugin.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef struct cli_cmd {
	const char *name;
	const char *summary; /* one line, for `fovea --help` */
	const char *usage;   /* "fovea NAME ARGS..." then a blank line and the details */
	int (*run)(int argc, char **argv); /* argv[0] is the command's name */
	bool max_memory; /* takes --max-memory SIZE, handled by the dispatcher */
} cli_cmd;

extern const cli_cmd cli_cmd_plugins;
extern const cli_cmd cli_cmd_describe;
extern const cli_cmd cli_cmd_instantiate;
extern const cli_cmd cli_cmd_parity;
extern const cli_cmd cli_cmd_create_data;
extern const cli_cmd cli_cmd_train;
extern const cli_cmd cli_cmd_data_info;
extern const cli_cmd cli_cmd_eval;
extern const cli_cmd cli_cmd_visualize;
extern const cli_cmd cli_cmd_predict;
extern const cli_cmd cli_cmd_mei;
extern const cli_cmd cli_cmd_mds;
extern const cli_cmd cli_cmd_figures;
extern const cli_cmd cli_cmd_import;
extern const cli_cmd cli_cmd_models;
extern const cli_cmd cli_cmd_sweep;

/* ---- helpers, in fovea.c ------------------------------------------------------ */

/* "fovea: MESSAGE" on stderr; returns CLI_FAILED. */
int cli_fail(const char *fmt, ...) FV_PRINTF(1, 2);
/* "fovea NAME: MESSAGE" and the command's synopsis on stderr; returns CLI_USAGE. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) FV_PRINTF(2, 3);
/* The built-in plugins and $FOVEA_PLUGIN_PATH, or NULL after printing why. */
fv_registry *cli_load_registry(void);
/* "Did you mean" suggestions come from libfovea's fv_closest_name(); this
** older name remains for the commands not yet moved over. */
#define cli_closest fv_closest_name

/* In cli_checkpoint.c: open a checkpoint argument (a fovea checkpoint, an
** openretina .ckpt or one of openretina's model names, downloaded if need
** be); `model_yaml` (--model, may be NULL) gives the model of a .ckpt
** without hyper_parameters.  NULL after printing why. */
fv_checkpoint *cli_open_checkpoint(const char *path, const char *model_yaml);
/* The --model line of the usage texts. */
#define CLI_MODEL_USAGE                                                                      \
	"  --model MODEL.yaml  the model of a .ckpt without hyper_parameters (a _target_ map\n"  \
	"                      of openretina's constructor arguments; SingleCellSeparatedLNP)\n"
#define CLI_CHECKPOINT_USAGE                                                                 \
	"CHECKPOINT is a fovea checkpoint, an openretina .ckpt, or the name of one of\n"         \
	"openretina's published models (`fovea models`; downloaded when not cached).\n"

/* In cli_config.c: whether s is one of up to three spellings of a flag. */
bool cli_is_flag(const char *s, const char *a, const char *b, const char *c);
/* Hydra's --config-dir DIR --config-name NAME: *config becomes DIR/NAME.yaml
** (in buf), the directory being the config directory of the composition.
** Usage errors for a directory without a name, or a name and a file. */
int cli_config_from_name(const cli_cmd *self, const char *dir, const char *name,
                         const char **config, char *buf, size_t size);
/* The config arguments of `fovea train` and `fovea data-info`. */
typedef struct cli_config_args {
	const char *config, *config_dir, *config_name;
	int n_overrides;
	const char **overrides; /* room for argc entries, the caller's */
	char buf[4200];
} cli_config_args;
/* argv[*i] as one of them: Hydra's --config-dir / --config-name (*i then
** advanced past the value), key=value, +key=value or ~key, or the config
** file.  CLI_OK when taken, -1 for another option (argv[*i] begins with
** -), CLI_USAGE after reporting a bad one. */
int cli_config_arg(const cli_cmd *self, int argc, char **argv, int *i, cli_config_args *a);
/* After the arguments: --config-name made a path, and a config given. */
int cli_config_finish(const cli_cmd *self, cli_config_args *a);
/* The usage lines of these options. */
#define CLI_CONFIG_DIR_USAGE                                                                 \
	"  --config-dir DIR, --config-path DIR, -cd DIR, -cp DIR\n"                          \
	"                  the config directory (Hydra's; openretina's configs/ as it is)\n"    \
	"  --config-name NAME, -cn NAME\n"                                                    \
	"                  the config DIR/NAME.yaml, composed with DIR's groups\n"

/* In cmd_figures.c: the model figures of a checkpoint into `dir` (which
** must exist); *n_written gets how many.  Reports errors. */
int cli_write_model_figures(fv_registry *reg, const char *checkpoint, const char *model_yaml,
                            const char *dir, int *n_written);
struct fv_figure_output;
int cli_write_model_figures_to(fv_registry *reg, const char *checkpoint, const char *model_yaml,
                               const char *dir, const struct fv_figure_output *out,
                               int *n_written);
/* In cmd_figures.c: --format png|svg|pdf, --size W[xH] (inches), --dpi N
** into *out.  1 when `opt` is one of them (its value used), 0 when not,
** CLI_USAGE after reporting a bad value (as -CLI_USAGE). */
int cli_figure_option(const cli_cmd *cmd, const char *opt, const char *val,
                      struct fv_figure_output *out);
#define CLI_FIGURE_USAGE                                                                     \
	"  --format F          png, svg or pdf (default: png)\n"                                \
	"  --size W[xH]        the page in inches (one side given: the other keeps the\n"       \
	"                      figure's proportions; default: the figure's natural size)\n"     \
	"  --dpi N             pixels per inch of PNGs (default 100)\n"

#endif /* FOVEA_TOOLS_CMD_H */
