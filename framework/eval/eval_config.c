/*
** eval_config.c: the `evaluation` node of a config, openretina's
** configs/evaluation/default.yaml, as an option table (metrics.h).
*/
#include <stddef.h>
#include <string.h>

#include "fovea/metrics.h"

/* Not static: `fovea describe Evaluation` shows it (train/builtins.c). */
const fv_option fv__eval_config_options[] = {
	FV_OPT("model_path", STRING, fv_eval_config, model_path, NULL,
	       "the checkpoint to evaluate (evaluation.model_path=PATH)", .flags = FV_OPT_REQUIRED),
	FV_OPT("model_tag", STRING, fv_eval_config, model_tag, "null",
	       "the model's name in the summary (null: model_path)", .flags = FV_OPT_NULLABLE),
	FV_OPT("data_split", STRING, fv_eval_config, data_split, "test",
	       "train, validation, test, or the name of a test stimulus"),
	FV_OPT("add_responses_to_model_results", BOOL, fv_eval_config,
	       add_responses_to_model_results, "false",
	       "add each neuron's predicted responses to the per-neuron table (model_response)"),
	FV_OPT("model_results_path", STRING, fv_eval_config, model_results_path, "null",
	       "where to write the per-neuron results as CSV (null: not written)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("summary_results_path", STRING, fv_eval_config, summary_results_path, "null",
	       "where to write the summary as JSON (null: not written)", .flags = FV_OPT_NULLABLE),
	FV_OPT("var_ratio_cutoff", FLOAT, fv_eval_config, var_ratio_cutoff, "0.15",
	       "neurons whose explainable/total variance ratio is below are left out of the means",
	       .min = -1e300, .max = 1e300),
	FV_OPT("compute_dataset_statistics", BOOL, fv_eval_config, compute_dataset_statistics,
	       "true", "count the unique frames and frame transitions of every split"),
	{0},
};

const fv_option *fv_eval_config_options(void)
{
	return fv__eval_config_options;
}

fv_status fv_eval_config_parse(const fv_config_node *evaluation, fv_eval_config *out)
{
	memset(out, 0, sizeof *out);
	if (evaluation == NULL)
		return fv_error(FV_ERR_CONFIG, "the config has no 'evaluation' node: add "
		                "'- evaluation: default' to its defaults (openretina's "
		                "configs/evaluation/default.yaml) or give +evaluation.model_path=PATH");
	return fv_options_parse(fv__eval_config_options, evaluation, out, "evaluation", NULL);
}
