/*
** cmd_mei.c: `fovea mei CHECKPOINT --session S --neuron N`, the most
** exciting input of one neuron or of many (one optimisation each, one
** loaded model), with IncreaseObjective: openretina's
** visualize_model_neurons for output neurons.  The work is in
** insilico_cli.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insilico_cli.h"

static const char objective_default[] =
	"{_target_: IncreaseObjective, response_reducer: {_target_: SliceMeanReducer, axis: 0, "
	"start: 10, length: 10}}";

typedef struct mei_args {
	ins_args common;
	const char *neurons; /* "3", "0,3,7" or "all" */
} mei_args;

static int parse_args(int argc, char **argv, void *args)
{
	mei_args *a = args;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--neuron") == 0 || strcmp(argv[i], "--neurons") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(&cli_cmd_mei, "%s needs a value", argv[i]);
			a->neurons = argv[++i];
			continue;
		}
		int rc = ins_parse_common(&a->common, argc, argv, &i);
		if (rc != CLI_OK)
			return rc;
	}
	int rc = ins_check_args(&a->common);
	if (rc == CLI_OK && a->neurons == NULL)
		rc = cli_usage_error(&cli_cmd_mei, "--neuron is required (an index, a list 0,3,7 or all)");
	return rc;
}

static int run_neuron(ins_session *s, const char *session, int64_t n)
{
	char stem[512], title[600], extra[64], set_neuron[64], set_key[600];
	snprintf(stem, sizeof stem, "mei_%s_%lld", session, (long long)n);
	snprintf(title, sizeof title, "MEI %s neuron %lld", session, (long long)n);
	snprintf(extra, sizeof extra, "\"neuron\": %lld", (long long)n);
	snprintf(set_neuron, sizeof set_neuron, "++objective.neuron_indices=%lld", (long long)n);
	snprintf(set_key, sizeof set_key, "++objective.data_key='%s'", session);
	const char *const overrides[] = {set_neuron, set_key};
	ins_job job = {.stem = stem, .title = title, .objective_overrides = overrides,
	               .n_objective_overrides = 2, .neuron = n, .json_extra = extra};
	return ins_run(s, &job);
}

static int run_neurons(ins_session *s, const void *args)
{
	const mei_args *a = args;
	int64_t *list = NULL;
	int n = 0, rc = CLI_OK;
	if (strcmp(a->neurons, "all") == 0) {
		n = (int)ins_n_neurons(s);
		list = malloc((size_t)n * sizeof *list);
		for (int k = 0; list != NULL && k < n; k++)
			list[k] = k;
		if (list == NULL)
			rc = cli_fail("out of memory");
	} else {
		rc = ins_parse_indices(&cli_cmd_mei, "--neuron", a->neurons, &list, &n);
	}
	for (int k = 0; rc == CLI_OK && k < n; k++)
		rc = ins_check_neuron(s, list[k], "neuron");
	for (int k = 0; rc == CLI_OK && k < n; k++)
		rc = run_neuron(s, a->common.session, list[k]);
	free(list);
	return rc;
}

static int run_mei(int argc, char **argv)
{
	mei_args a = {.common = {.cmd = &cli_cmd_mei}};
	return ins_main(argc, argv, &a.common, &a, objective_default, parse_args, run_neurons);
}

const cli_cmd cli_cmd_mei = {
	.name = "mei",
	.summary = "most exciting inputs of neurons of a trained model",
	.usage = "fovea mei CHECKPOINT --session S --neuron N[,N...]|all [CONFIG.yaml] [key=value ...]\n"
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
	         "\n"
	         "  --neuron LIST      neuron indices (0-based), comma-separated, or all\n"
	         INS_COMMON_USAGE,
	.run = run_mei,
};
