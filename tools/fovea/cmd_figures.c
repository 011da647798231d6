/*
** cmd_figures.c: `fovea figures CHECKPOINT [--out DIR]`, the figures of a
** trained model (fv_figures_write_model_to): readout positions over the
** stimulus field and the first core layer's filters, as PNG, SVG or PDF.
** `fovea train` writes the same figures into its run directory.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fovea/figure.h"
#include "fovea/trainer.h"

int cli_write_model_figures_to(fv_registry *reg, const char *checkpoint, const char *model_yaml,
                               const char *dir, const fv_figure_output *out, int *n_written)
{
	fv_checkpoint *c = cli_open_checkpoint(checkpoint, model_yaml);
	if (c == NULL)
		return CLI_FAILED;
	fv_config *cfg = NULL;
	fv_module *model = fv_model_load(reg, c, &cfg);
	fv_status st = model ? fv_figures_write_model_to(model, fv_checkpoint_data_info(c), dir, out,
	                                                 n_written)
	                     : FV_ERR_IO;
	int rc = st == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	fv_module_free(model);
	fv_config_free(cfg);
	fv_checkpoint_close(c);
	return rc;
}

int cli_write_model_figures(fv_registry *reg, const char *checkpoint, const char *model_yaml,
                            const char *dir, int *n_written)
{
	return cli_write_model_figures_to(reg, checkpoint, model_yaml, dir, NULL, n_written);
}

/* A positive number of inches or dots per inch, up to `max`. */
static bool positive(const char *text, double max, double *v, char **end)
{
	*v = strtod(text, end);
	return *end != text && isfinite(*v) && *v > 0 && *v <= max;
}

static int parse_size(const cli_cmd *cmd, const char *val, fv_figure_output *out)
{
	char *end;
	if (!positive(val, 200, &out->width_in, &end) ||
	    (*end == 'x' && !positive(end + 1, 200, &out->height_in, &end)) || *end != '\0')
		return -cli_usage_error(cmd, "--size '%s': expected W or WxH in inches (each 0..200], "
		                        "e.g. 8 or 8x5", val);
	return 1;
}

int cli_figure_option(const cli_cmd *cmd, const char *opt, const char *val,
                      fv_figure_output *out)
{
	if (strcmp(opt, "--format") == 0) {
		if (fv_figure_format_parse(val, &out->format) != FV_OK)
			return -cli_usage_error(cmd, "--format: %s", fv_errmsg());
		return 1;
	}
	if (strcmp(opt, "--size") == 0)
		return parse_size(cmd, val, out);
	if (strcmp(opt, "--dpi") == 0) {
		char *end;
		if (!positive(val, 2400, &out->dpi, &end) || *end != '\0')
			return -cli_usage_error(cmd, "--dpi '%s': expected a number of pixels per inch "
			                        "(0..2400]", val);
		return 1;
	}
	return 0;
}

typedef struct figures_args {
	const char *checkpoint, *dir, *model;
	fv_figure_output out;
} figures_args;

static int parse_figures(int argc, char **argv, figures_args *a)
{
	const cli_cmd *self = &cli_cmd_figures;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool valued = strcmp(s, "--out") == 0 || strcmp(s, "--model") == 0 ||
		              strcmp(s, "--format") == 0 || strcmp(s, "--size") == 0 ||
		              strcmp(s, "--dpi") == 0;
		if (valued && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		int fig = valued ? cli_figure_option(self, s, argv[i + 1], &a->out) : 0;
		if (fig < 0)
			return -fig;
		if (fig > 0 || strcmp(s, "--out") == 0 || strcmp(s, "--model") == 0) {
			if (strcmp(s, "--out") == 0)
				a->dir = argv[i + 1];
			else if (strcmp(s, "--model") == 0)
				a->model = argv[i + 1];
			i++;
		} else if (s[0] == '-' && s[1] == '-') {
			return cli_usage_error(self, "unknown option '%s'", s);
		} else if (a->checkpoint == NULL) {
			a->checkpoint = s;
		} else {
			return cli_usage_error(self, "unexpected argument '%s'", s);
		}
	}
	return a->checkpoint == NULL ? cli_usage_error(self, "expected a checkpoint") : CLI_OK;
}

static int run_figures(int argc, char **argv)
{
	figures_args a = {.dir = "."};
	int rc = parse_figures(argc, argv, &a);
	if (rc != CLI_OK)
		return rc;
	if (mkdir(a.dir, 0777) != 0 && errno != EEXIST)
		return cli_fail("%s: cannot create the output directory: %s", a.dir, strerror(errno));
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	int n = 0;
	rc = cli_write_model_figures_to(reg, a.checkpoint, a.model, a.dir, &a.out, &n);
	if (rc == CLI_OK)
		printf("wrote %d figure%s to %s\n", n, n == 1 ? "" : "s", a.dir);
	fv_registry_free(reg);
	return rc;
}

const cli_cmd cli_cmd_figures = {
	.name = "figures",
	.summary = "figures of a trained model (readout positions, core filters)",
	.usage = "fovea figures CHECKPOINT [--out DIR] [--format F] [--size W[xH]] [--dpi N]\n"
	         "                         [--model MODEL.yaml]\n"
	         "\n"
	         "Draw the figures of a trained model into DIR (default .), as PNG, SVG (its\n"
	         "text stays text) or PDF:\n"
	         "  readout_positions.EXT  each session's learned receptive-field centres\n"
	         "                         (where the readout reads, e.g. Gaussian-mask\n"
	         "                         centres) over the stimulus field, in pixels,\n"
	         "                         labelled by neuron\n"
	         "  core_filters.EXT       the first core layer's filters: per output channel\n"
	         "                         the spatial filter of each input channel (at the\n"
	         "                         kernel's peak frame; blue < 0 < red, a colour bar\n"
	         "                         with the weights) and the temporal filters at the\n"
	         "                         kernel's peak pixel\n"
	         "A figure the model cannot have (another readout or core) is skipped.\n"
	         "`fovea train` writes both (PNG) into its output directory after training.\n"
	         "\n"
	         CLI_FIGURE_USAGE
	         CLI_CHECKPOINT_USAGE
	         "\n"
	         CLI_MODEL_USAGE,
	.run = run_figures,
};
