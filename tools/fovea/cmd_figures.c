/*
** cmd_figures.c: `fovea figures CHECKPOINT [--out DIR]`, the figures of a
** trained model (fv_figures_write_model): readout positions over the
** stimulus field and the first core layer's filters.  `fovea train`
** writes the same figures into its run directory.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fovea/figure.h"
#include "fovea/trainer.h"

int cli_write_model_figures(fv_registry *reg, const char *checkpoint, const char *model_yaml,
                            const char *dir, int *n_written)
{
	fv_checkpoint *c = cli_open_checkpoint(checkpoint, model_yaml);
	if (c == NULL)
		return CLI_FAILED;
	fv_config *cfg = NULL;
	fv_module *model = fv_model_load(reg, c, &cfg);
	fv_status st = model ? fv_figures_write_model(model, fv_checkpoint_data_info(c), dir,
	                                              n_written)
	                     : FV_ERR_IO;
	int rc = st == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	fv_module_free(model);
	fv_config_free(cfg);
	fv_checkpoint_close(c);
	return rc;
}

static int run_figures(int argc, char **argv)
{
	const char *checkpoint = NULL, *dir = ".", *model = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "--model") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(&cli_cmd_figures, "%s needs a value", argv[i]);
			if (strcmp(argv[i++], "--out") == 0)
				dir = argv[i];
			else
				model = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			return cli_usage_error(&cli_cmd_figures, "unknown option '%s'", argv[i]);
		} else if (checkpoint == NULL) {
			checkpoint = argv[i];
		} else {
			return cli_usage_error(&cli_cmd_figures, "unexpected argument '%s'", argv[i]);
		}
	}
	if (checkpoint == NULL)
		return cli_usage_error(&cli_cmd_figures, "expected a checkpoint");
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return cli_fail("%s: cannot create the output directory: %s", dir, strerror(errno));
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	int n = 0;
	int rc = cli_write_model_figures(reg, checkpoint, model, dir, &n);
	if (rc == CLI_OK)
		printf("wrote %d figure%s to %s\n", n, n == 1 ? "" : "s", dir);
	fv_registry_free(reg);
	return rc;
}

const cli_cmd cli_cmd_figures = {
	.name = "figures",
	.summary = "figures of a trained model (readout positions, core filters)",
	.usage = "fovea figures CHECKPOINT [--out DIR] [--model MODEL.yaml]\n"
	         "\n"
	         "Draw the figures of a trained model into DIR (default .), as PNG:\n"
	         "  readout_positions.png  each session's learned receptive-field centres\n"
	         "                         (where the readout reads, e.g. Gaussian-mask\n"
	         "                         centres) over the stimulus field, in pixels,\n"
	         "                         labelled by neuron\n"
	         "  core_filters.png       the first core layer's filters: per output channel\n"
	         "                         the spatial filter of each input channel (at the\n"
	         "                         kernel's peak frame; blue < 0 < red) and the\n"
	         "                         temporal filters at the kernel's peak pixel\n"
	         "A figure the model cannot have (another readout or core) is skipped.\n"
	         "`fovea train` writes both into its output directory after training.\n"
	         CLI_CHECKPOINT_USAGE
	         "\n"
	         CLI_MODEL_USAGE,
	.run = run_figures,
};
