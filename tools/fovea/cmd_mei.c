/*
** cmd_mei.c: `fovea mei CHECKPOINT --session S --neuron N`, the most
** exciting input of one neuron or of many (IncreaseObjective), and
** `fovea mei CHECKPOINT --layer L --channel C`, that of inner units
** (InnerNeuronVisualizationObjective): openretina's
** visualize_model_neurons.  The work is libfovea's fv_optimize_from_config.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insilico_cli.h"

typedef struct mei_args {
	ins_args common;
	const char *neurons;  /* "3", "0,3,7" or "all" */
	const char *layer;
	const char *channels; /* as neurons */
	const char *reference;
} mei_args;

static int set_option(void *ud, const char *name, const char *value)
{
	mei_args *a = ud;
	if (strcmp(name, "--layer") == 0)
		a->layer = value;
	else if (strcmp(name, "--reference") == 0)
		a->reference = value;
	else if (strncmp(name, "--neuron", 8) == 0)
		a->neurons = value;
	else
		a->channels = value;
	return CLI_OK;
}

/* What the options say to optimise, or a usage error. */
static int check_target(const mei_args *a)
{
	const cli_cmd *self = &cli_cmd_mei;
	if (a->layer != NULL && a->neurons != NULL)
		return cli_usage_error(self, "--neuron and --layer exclude each other (neurons of a "
		                             "readout, or channels of a layer)");
	if (a->layer != NULL && a->channels == NULL)
		return cli_usage_error(self, "--channel is required with --layer (an index, a list "
		                             "0,3 or all)");
	if (a->layer == NULL && a->channels != NULL)
		return cli_usage_error(self, "--channel needs --layer (the layer whose channels)");
	if (a->layer == NULL && a->common.session == NULL)
		return cli_usage_error(self, "--session is required (whose readout to use)");
	if (a->layer == NULL && a->neurons == NULL)
		return cli_usage_error(self, "--neuron is required (an index, a list 0,3,7 or all), "
		                             "or --layer and --channel for inner units");
	return CLI_OK;
}

static int run_mei(int argc, char **argv)
{
	static const char *const names[] = {"--neuron", "--neurons", "--layer", "--channel",
	                                    "--channels", "--reference", NULL};
	mei_args a = {.common = {.cmd = &cli_cmd_mei}};
	ins_own own = {names, set_option, &a, NULL};
	fv_insilico_job job = {.kind = FV_INSILICO_MEI};
	int rc = ins_parse(&a.common, argc, argv, &own);
	if (rc == CLI_OK)
		rc = check_target(&a);
	if (rc == CLI_OK && a.layer != NULL) {
		job.kind = FV_INSILICO_INNER_MEI;
		job.layer = a.layer;
		rc = ins_parse_indices(&cli_cmd_mei, "--channel", "channel", a.channels, true, &job.units);
	} else if (rc == CLI_OK) {
		rc = ins_parse_indices(&cli_cmd_mei, "--neuron", "neuron", a.neurons, true, &job.units);
	}
	job.reference = a.reference;
	if (rc == CLI_OK)
		rc = ins_run(&a.common, &job);
	free((void *)job.units.v);
	ins_args_free(&a.common);
	return rc;
}

const cli_cmd cli_cmd_mei = {
	.name = "mei",
	.summary = "most exciting inputs of neurons or inner units of a trained model",
	.usage = "fovea mei CHECKPOINT --session S --neuron N[,N...]|all [CONFIG.yaml] [key=value ...]\n"
	         "       fovea mei CHECKPOINT --layer L --channel C[,C...]|all [--session S] ...\n"
	         "\n"
	         "Optimise a stimulus to drive neuron N of session S (IncreaseObjective), as\n"
	         "openretina's optimize_stimulus does, from a random start of the model's\n"
	         "input shape.  Several neurons (--neuron 0,3,7 or --neurons all) run one\n"
	         "after the other on the one loaded model, each from the same start.  For\n"
	         "each neuron, DIR gets\n"
	         "  mei_S_N.npy    the stimulus, channels x time x height x width, float32, in\n"
	         "                 the model's normalised units (fovea predict --raw reads it)\n"
	         "  mei_S_N.png    one row per channel of frames over time (blue < 0 < red,\n"
	         "                 one colour bar), the time course at the peak pixel\n"
	         "  mei_S_N.json   objective and loss per iteration, seconds per iteration,\n"
	         "                 the final response, the peak pixel (most energy over time\n"
	         "                 and channels), mean_activity, the config used\n"
	         "With --layer, the units are inner ones (InnerNeuronVisualizationObjective):\n"
	         "the central unit of channel C of layer L, a module path below the model as\n"
	         "the model announces it (core.features.layer0, core.features.layer0.conv,\n"
	         "or openretina's core_features_layer0); its response is averaged over the\n"
	         "layer's last 10 frames.  The files are mei_L_C.{npy,png,json}; the\n"
	         "session defaults to the model's first.\n"
	         "\n"
	         "  --session S        the session (readout) whose neurons are optimised\n"
	         "  --neuron LIST      neuron indices (0-based), comma-separated, or all\n"
	         "  --layer L          optimise inner units of layer L instead of neurons\n"
	         "  --channel LIST     channel indices of layer L, comma-separated, or all\n"
	         "  --reference M.npy  also report each unit's mean predicted response to the\n"
	         "                     movie M (channels x time x height x width, data units)\n"
	         INS_COMMON_USAGE,
	.run = run_mei,
	.max_memory = true,
};
