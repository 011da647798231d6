/*
** cmd_train.c: `fovea train CONFIG.yaml [key=value ...]`, openretina's
** `openretina train` (see include/fovea/trainer.h for what a run does and
** which config keys it reads).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "fovea/parallel.h"
#include "fovea/trainer.h"

typedef struct train_args {
	cli_config_args c; /* the config, Hydra's --config-dir / --config-name, overrides */
	const char *cfg;   /* --cfg job|hydra|all: print, do not train */
	bool strict;  /* keys fovea does not act on are an error */
	bool resolve; /* accepted: composing resolves every interpolation it can already */
	int threads;
	int progress;
	bool quiet;
} train_args;

#define is_flag cli_is_flag

static int parse_args(int argc, char **argv, train_args *a)
{
	const cli_cmd *self = &cli_cmd_train;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (is_flag(s, "--cfg", "-c", NULL)) {
			if (i + 1 >= argc)
				return cli_usage_error(self, "%s needs a value", s);
			a->cfg = argv[++i];
			continue;
		}
		int rc = cli_config_arg(self, argc, argv, &i, &a->c);
		if (rc == CLI_OK)
			continue;
		if (rc > 0)
			return rc;
		if (strcmp(s, "--resolve") == 0) {
			a->resolve = true;
		} else if (strcmp(s, "--strict") == 0) {
			a->strict = true;
		} else if (strcmp(s, "--threads") == 0 || strcmp(s, "-j") == 0) {
			char *end;
			errno = 0;
			long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
			if (i + 1 >= argc || errno != 0 || *end != '\0' || v < 1 || v > 4096)
				return cli_usage_error(self, "%s needs a number of threads (1 or more)", s);
			a->threads = (int)v;
			i++;
		} else if (strcmp(s, "--progress") == 0) {
			a->progress = 1;
		} else if (strcmp(s, "--no-progress") == 0) {
			a->progress = 0;
		} else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
			a->quiet = true;
		} else {
			return cli_usage_error(self, "unknown option '%s'", s);
		}
	}
	if (a->cfg != NULL && !is_flag(a->cfg, "job", "hydra", "all"))
		return cli_usage_error(self, "--cfg takes job, hydra or all, not '%s'", a->cfg);
	return cli_config_finish(self, &a->c);
}

/* --cfg: print the composed config as Hydra does (job: without the hydra
** node; hydra: only it; all: everything) instead of training. */
static int print_config(fv_config *cfg, const train_args *a)
{
	if (strcmp(a->cfg, "job") == 0 && fv_node_get(fv_config_root(cfg), "hydra") != NULL &&
	    fv_config_override(cfg, "~hydra") != FV_OK)
		return cli_fail("%s", fv_errmsg());
	const fv_config_node *hydra = fv_node_get(fv_config_root(cfg), "hydra");
	char *text = strcmp(a->cfg, "hydra") == 0
	                 ? (hydra != NULL ? fv_node_to_yaml(hydra) : strdup("{}\n"))
	                 : fv_config_to_yaml(cfg);
	if (text == NULL)
		return cli_fail("%s", fv_errmsg()[0] ? fv_errmsg() : "out of memory");
	if (strcmp(a->cfg, "hydra") == 0) { /* the node's lines, under its key */
		fputs("hydra:\n", stdout);
		for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
			printf("  %s\n", line);
	} else {
		fputs(text, stdout);
	}
	free(text);
	return CLI_OK;
}

/* The model figures follow the best checkpoint into the run directory:
** while the run goes on at most every FIGURE_INTERVAL seconds (drawing
** rebuilds the model from the checkpoint, which short epochs would feel),
** and once more at the end unless that best was drawn already.  A figure
** that cannot be drawn is a warning: the training itself succeeded. */
#define FIGURE_INTERVAL 30.0

typedef struct figure_hook {
	fv_registry *reg;
	double last;         /* monotonic seconds of the last drawing; < 0: never */
	int64_t drawn_epoch; /* the best epoch last drawn; -1: none */
	int n_written;       /* figures of that drawing */
} figure_hook;

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw_figures(figure_hook *h, const char *dir, int64_t epoch)
{
	char best[4300]; /* dir is shorter than 4200 */
	snprintf(best, sizeof best, "%s/best.safetensors", dir);
	h->last = monotonic_seconds();
	h->drawn_epoch = -1;
	if (cli_write_model_figures(h->reg, best, NULL, dir, &h->n_written) != CLI_OK)
		fputs("fovea: warning: the model figures were not written\n", stderr);
	else
		h->drawn_epoch = epoch;
}

static void on_best_checkpoint(void *ud, const char *path, int64_t epoch)
{
	figure_hook *h = ud;
	if (h->last >= 0 && monotonic_seconds() - h->last < FIGURE_INTERVAL)
		return;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	draw_figures(h, dir, epoch);
}

static void final_figures(figure_hook *h, const fv_train_result *res, bool quiet)
{
	if (res->best_epoch < 0)
		return; /* no best checkpoint */
	if (h->drawn_epoch != res->best_epoch)
		draw_figures(h, res->output_dir, res->best_epoch);
	if (!quiet && h->drawn_epoch == res->best_epoch && h->n_written > 0)
		printf("figures: %s/{readout_positions,core_filters}.png\n", res->output_dir);
}

static int run_train(int argc, char **argv)
{
	train_args a = {.progress = -1};
	a.c.overrides = calloc((size_t)argc, sizeof *a.c.overrides);
	if (a.c.overrides == NULL)
		return cli_fail("out of memory");
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK) {
		free(a.c.overrides);
		return rc;
	}
	if (a.threads > 0)
		fv_set_num_threads(a.threads);
	fv_config *cfg = fv_config_compose(a.c.config, a.c.config_dir, a.c.n_overrides,
	                                   a.c.overrides);
	free(a.c.overrides);
	if (cfg == NULL)
		return cli_fail("%s", fv_errmsg());
	if (a.cfg != NULL) {
		rc = print_config(cfg, &a);
		fv_config_free(cfg);
		return rc;
	}
	fv_registry *reg = cli_load_registry();
	if (reg == NULL) {
		fv_config_free(cfg);
		return CLI_FAILED;
	}
	figure_hook hook = {reg, -1, -1, 0};
	/* under mpirun the processes train one run together; rank 0 writes */
	bool parallel = fv_parallel_size() > 1, writer = fv_parallel_rank() == 0;
	fv_train_options o = {.struct_size = sizeof o, .progress = a.progress, .quiet = a.quiet,
	                      .on_best = on_best_checkpoint, .ud = &hook, .strict = a.strict,
	                      .data_parallel = parallel};
	fv_train_result res;
	rc = CLI_OK;
	if (fv_train(reg, cfg, &o, &res) != FV_OK) {
		rc = cli_fail("%s", fv_errmsg());
		if (parallel) /* the other processes wait in a collective: end the job */
			fv_parallel_abort(rc);
	} else if (!a.quiet && writer)
		printf("trained %lld epochs%s in %.1f s (%.2f s per epoch); best val_evaluation_loss "
		       "%.4f at epoch %lld; outputs in %s\n",
		       (long long)res.epochs, res.stopped_early ? " (stopped early)" : "", res.seconds,
		       res.seconds_per_epoch, res.best_value, (long long)res.best_epoch + 1,
		       res.output_dir);
	if (rc == CLI_OK && writer)
		final_figures(&hook, &res, a.quiet);
	fv_registry_free(reg);
	fv_config_free(cfg);
	return rc;
}

const cli_cmd cli_cmd_train = {
	.name = "train",
	.summary = "train a model on a data directory",
	.usage = "fovea train CONFIG.yaml [key=value ...] [--threads N] [--progress|--no-progress] "
	         "[--quiet]\n"
	         "       fovea train --config-dir DIR --config-name NAME [key=value ...] [...]\n"
	         "\n"
	         "Train the model a config describes (openretina's `openretina train`): the\n"
	         "config is composed from its `defaults:` groups, then the key=value\n"
	         "overrides apply (Hydra's grammar: key=value, +key=value, ~key).  The data\n"
	         "directory is paths.data_dir; outputs go to paths.output_dir:\n"
	         "  config.yaml        the resolved config\n"
	         "  metrics.csv        one row per epoch (losses, correlations, learning rate)\n"
	         "  best.safetensors   the weights of the best validation epoch\n"
	         "  last.safetensors   the latest weights, optimizer and trainer state\n"
	         "resume=true continues the run in paths.output_dir from last.safetensors;\n"
	         "paths.load_model_path=CKPT fine-tunes a trained model, adding readouts\n"
	         "for new sessions; only_train_readout=true freezes the core.\n"
	         "Under mpirun -np N the N processes train the run together, each on its\n"
	         "share of every batch (docs/parallel.md); rank 0 writes the outputs.\n"
	         "\n"
	         "  --config-dir DIR, --config-path DIR, -cd DIR, -cp DIR\n"
	         "                  the config directory (Hydra's spellings); with\n"
	         "  --config-name NAME, -cn NAME\n"
	         "                  the config DIR/NAME.yaml, e.g. openretina's own configs/\n"
	         "  --cfg job|hydra|all  print the composed config (all of it, without or only\n"
	         "                  the hydra node) and exit without training; values are\n"
	         "                  resolved as far as composing can (--resolve is accepted);\n"
	         "                  ??? marks what training fills in (n_neurons_dict, ...)\n"
	         "  --strict        keys of the config fovea does not act on are an error (they\n"
	         "                  are listed as \"not used\" at the start otherwise)\n"
	         "  --threads N     threads for the tensor ops (default: all cores)\n"
	         "  --progress      a progress bar even when stdout is not a terminal\n"
	         "  --no-progress   one line per epoch even on a terminal\n"
	         "  --quiet         print nothing but errors\n",
	.run = run_train,
	.max_memory = true,
};
