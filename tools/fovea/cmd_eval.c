/*
** cmd_eval.c: `fovea eval CHECKPOINT DATA_DIR`, openretina's
** `openretina eval`: the checkpoint's model on the test stimuli of a data
** directory, per-neuron metrics as CSV and a summary as JSON (see
** include/fovea/metrics.h for the metrics).
**
** The data directory is read with the checkpoint's own data settings
** (data_io.*, dataloader.*), which key=value overrides may change.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fovea/metrics.h"
#include "fovea/trainer.h"

typedef struct eval_args {
	const char *checkpoint, *data_dir, *output, *split, *model;
	const char *config_dir, *config_name, *config; /* the config mode */
	char config_buf[4200];
	double cutoff;
	int n_overrides;
	const char **overrides;
} eval_args;

/* With a config, openretina's evaluation.* keys say what the options
** would: the options are refused rather than silently one or the other. */
static int config_mode_args(eval_args *a)
{
	const cli_cmd *self = &cli_cmd_eval;
	if (a->data_dir != NULL)
		return cli_usage_error(self, "with --config-name, '%s' is neither an option nor "
		                       "key=value (the data directory is paths.data_dir)", a->data_dir);
	if (a->output != NULL || a->split != NULL || a->cutoff != 0.15)
		return cli_usage_error(self, "with --config-name, give evaluation.* keys instead of "
		                       "--output, --split and --var-ratio-cutoff "
		                       "(evaluation.data_split=..., evaluation.model_results_path=...)");
	a->config = a->checkpoint; /* a CONFIG.yaml in place of the checkpoint */
	a->checkpoint = NULL;
	return cli_config_from_name(self, a->config_dir, a->config_name, &a->config,
	                            a->config_buf, sizeof a->config_buf);
}

static int parse_args(int argc, char **argv, eval_args *a)
{
	const cli_cmd *self = &cli_cmd_eval;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool dir = cli_is_flag(s, "--config-dir", "--config-path", "-cd") || strcmp(s, "-cp") == 0;
		bool name = cli_is_flag(s, "--config-name", "-cn", NULL);
		bool takes_value = strcmp(s, "--output") == 0 || strcmp(s, "-o") == 0 ||
		                   strcmp(s, "--split") == 0 || strcmp(s, "--var-ratio-cutoff") == 0 ||
		                   strcmp(s, "--model") == 0 || dir || name;
		if (takes_value && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		if (dir || name) {
			*(dir ? &a->config_dir : &a->config_name) = argv[++i];
		} else if (strcmp(s, "--output") == 0 || strcmp(s, "-o") == 0) {
			a->output = argv[++i];
		} else if (strcmp(s, "--model") == 0) {
			a->model = argv[++i];
		} else if (strcmp(s, "--split") == 0) {
			a->split = argv[++i];
		} else if (strcmp(s, "--var-ratio-cutoff") == 0) {
			char *end;
			errno = 0;
			a->cutoff = strtod(argv[++i], &end);
			/* NaN would compare false with every ratio and leave no neuron in
			** the summary without saying so. */
			if (errno != 0 || *end != '\0')
				return cli_usage_error(self, "--var-ratio-cutoff needs a number, got '%s'",
				                       argv[i]);
			if (!isfinite(a->cutoff))
				return cli_usage_error(self, "--var-ratio-cutoff needs a finite number, "
				                       "got '%s'", argv[i]);
		} else if (s[0] == '-' && s[1] == '-') {
			return cli_usage_error(self, "unknown option '%s'", s);
		} else if (strchr(s, '=') != NULL || s[0] == '~') {
			a->overrides[a->n_overrides++] = s;
		} else if (a->checkpoint == NULL) {
			a->checkpoint = s;
		} else if (a->data_dir == NULL) {
			a->data_dir = s;
		} else {
			return cli_usage_error(self, "unexpected argument '%s'", s);
		}
	}
	if (a->config_name != NULL || a->config_dir != NULL)
		return config_mode_args(a);
	if (a->checkpoint == NULL || a->data_dir == NULL)
		return cli_usage_error(self, "expected a checkpoint and a data directory (or "
		                       "--config-dir DIR --config-name NAME)");
	return CLI_OK;
}

/* The directory part of a path ("." when none). */
static void dir_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(buf, size, ".");
	else
		snprintf(buf, size, "%.*s", (int)(slash - path), path);
	if (buf[0] == '\0')
		snprintf(buf, size, "/");
}

/* Every session of the data must have a readout in the model. */
static int check_sessions(const fv_checkpoint *c, fv_data *d)
{
	const fv_data_info *model = fv_checkpoint_data_info(c), *data = fv_data_get_info(d);
	if (model == NULL || data == NULL)
		return cli_fail("%s: %s has no data_info (sessions, neurons, stimulus shape); was it "
		                "written by fovea train?", fv_checkpoint_path(c),
		                model == NULL ? "the checkpoint's metadata" : "the data set");
	for (size_t i = 0; i < data->n_sessions; i++) {
		bool found = false;
		for (size_t k = 0; k < model->n_sessions && !found; k++)
			found = strcmp(model->sessions[k], data->sessions[i]) == 0;
		if (!found)
			return cli_fail("session '%s' of the data has no readout in %s (its sessions: "
			                "%s%s)", data->sessions[i], fv_checkpoint_path(c),
			                model->n_sessions ? model->sessions[0] : "none",
			                model->n_sessions > 1 ? ", ..." : "");
	}
	for (int k = 0; k < 3; k++)
		if (model->input_shape[k] != data->input_shape[k]) {
			char want[64];
			snprintf(want, sizeof want, "%s", fv_shape_str(3, model->input_shape));
			return cli_fail("the data's stimuli are %s (channels, height, width); %s was "
			                "trained on %s", fv_shape_str(3, data->input_shape),
			                fv_checkpoint_path(c), want);
		}
	return CLI_OK;
}

/* The data set a config's data_io and dataloader describe, read from
** data_dir (NULL: the config's own base_data_path). */
static int open_data(fv_config *cfg, const char *data_dir, fv_data **out)
{
	const fv_config_node *root = fv_config_root(cfg);
	fv_data_options o;
	fv_data_options_default(&o);
	if (fv_data_options_from_config(&o, fv_node_get(root, "data_io"),
	                                fv_node_get(root, "dataloader")) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (data_dir != NULL)
		o.data_dir = data_dir;
	if (fv_data_open(&o, out) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	return CLI_OK;
}

static int write_outputs(const fv_eval_result *r, const eval_args *a)
{
	char dir[4096], csv[4200], json[4200];
	if (a->output != NULL)
		snprintf(dir, sizeof dir, "%s", a->output);
	else
		dir_of(a->checkpoint, dir, sizeof dir);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return cli_fail("cannot create %s: %s", dir, strerror(errno));
	snprintf(csv, sizeof csv, "%s/eval_per_neuron.csv", dir);
	snprintf(json, sizeof json, "%s/eval_summary.json", dir);
	if (fv_eval_write_csv(r, csv) != FV_OK || fv_eval_write_summary(r, json) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	fv_eval_print_report(r, stdout);
	const fv_eval_summary *s = fv_eval_get_summary(r);
	printf("test correlation %.4f", s->corr_to_avg_mean);
	if (s->corr_ceiling_mean == s->corr_ceiling_mean) /* not NaN */
		printf(" (ceiling from the repeated trials %.4f: %.0f%% of it)", s->corr_ceiling_mean,
		       100 * s->corr_to_avg_mean / s->corr_ceiling_mean);
	printf("\nper-neuron results: %s\nsummary: %s\n", csv, json);
	return CLI_OK;
}

/* The outputs say which neurons; the exit status says the model is broken. */
static int nonfinite_status(const fv_eval_result *r, const char *checkpoint)
{
	const fv_eval_summary *sum = fv_eval_get_summary(r);
	if (sum->n_neurons_nonfinite == 0)
		return CLI_OK;
	return cli_fail("%s: the predictions of %lld of the %lld neurons are not finite (NaN "
	                "weights in the checkpoint?); see 'Neurons with an undefined correlation' "
	                "above", checkpoint, (long long)sum->n_neurons_nonfinite,
	                (long long)sum->n_neurons_total);
}

/* openretina's species: data_io.responses.specie, else data_io.stimuli.specie. */
static const char *species_of(const fv_config_node *root)
{
	const char *keys[2] = {"data_io.responses.specie", "data_io.stimuli.specie"};
	for (int i = 0; i < 2; i++) {
		const fv_config_node *n = fv_node_path(root, keys[i]);
		if (n != NULL && !fv_node_is_null(n) && fv_node_text(n) != NULL)
			return fv_node_text(n);
	}
	return NULL;
}

static int evaluate(fv_registry *reg, const eval_args *a)
{
	fv_checkpoint *c = cli_open_checkpoint(a->checkpoint, a->model);
	if (c == NULL)
		return CLI_FAILED;
	fv_config *cfg = NULL;
	fv_data *d = NULL;
	fv_eval_result *r = NULL;
	fv_module *model = fv_model_load(reg, c, &cfg);
	int rc = model != NULL ? CLI_OK : cli_fail("%s", fv_errmsg());
	for (int i = 0; rc == CLI_OK && i < a->n_overrides; i++)
		if (fv_config_override(cfg, a->overrides[i]) != FV_OK)
			rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		rc = open_data(cfg, a->data_dir, &d);
	if (rc == CLI_OK)
		rc = check_sessions(c, d);
	const fv_config_node *name = cfg ? fv_node_get(fv_config_root(cfg), "exp_name") : NULL;
	const char *exp = name != NULL ? fv_node_text(name) : NULL;
	fv_eval_options o = {.split = a->split, .var_ratio_cutoff = a->cutoff,
	                     .model_path = a->checkpoint, .exp_name = exp};
	if (rc == CLI_OK && fv_evaluate(model, d, &o, &r) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		rc = write_outputs(r, a);
	if (rc == CLI_OK)
		rc = nonfinite_status(r, a->checkpoint);
	fv_eval_result_free(r);
	fv_data_close(d);
	fv_module_free(model);
	fv_config_free(cfg);
	fv_checkpoint_close(c);
	return rc;
}

/* The evaluation of a composed config: openretina's evaluate_model. */
typedef struct config_run {
	fv_config *cfg;
	fv_eval_config ec;
	fv_checkpoint *ckpt;
	fv_config *model_cfg;
	fv_module *model;
	fv_data *data;
	fv_eval_result *result;
} config_run;

static void config_run_free(config_run *r)
{
	fv_eval_result_free(r->result);
	fv_data_close(r->data);
	fv_module_free(r->model);
	fv_config_free(r->model_cfg);
	fv_checkpoint_close(r->ckpt);
	fv_config_free(r->cfg);
}

static int config_outputs(const config_run *r)
{
	const fv_eval_config *ec = &r->ec;
	if (ec->model_results_path != NULL &&
	    fv_eval_write_csv(r->result, ec->model_results_path) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (ec->summary_results_path != NULL &&
	    fv_eval_write_summary(r->result, ec->summary_results_path) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	fv_eval_print_report(r->result, stdout);
	if (ec->model_results_path != NULL)
		printf("Per-neuron results saved to %s\n", ec->model_results_path);
	if (ec->summary_results_path != NULL)
		printf("Summary results saved to %s\n", ec->summary_results_path);
	return CLI_OK;
}

static int config_evaluate(config_run *r)
{
	const fv_config_node *root = fv_config_root(r->cfg);
	const fv_config_node *exp = fv_node_get(root, "exp_name"), *seed = fv_node_get(root, "seed");
	int64_t seed_value = 0;
	if (seed != NULL && !fv_node_is_null(seed) && fv_node_to_int(seed, &seed_value) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	fv_eval_options o = {.split = r->ec.data_split, .var_ratio_cutoff = r->ec.var_ratio_cutoff,
	                     .model_path = r->ec.model_path, .model_tag = r->ec.model_tag,
	                     .exp_name = exp ? fv_node_text(exp) : NULL,
	                     .keep_responses = r->ec.add_responses_to_model_results,
	                     .species = species_of(root)};
	if (fv_evaluate(r->model, r->data, &o, &r->result) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	if (r->ec.compute_dataset_statistics) {
		fv_dataset_stats st;
		/* openretina passes the training batches 10 times for their random shifts */
		if (fv_dataset_statistics(r->data, (uint64_t)seed_value, 10, &st) != FV_OK)
			return cli_fail("%s", fv_errmsg());
		fv_eval_set_dataset_stats(r->result, &st);
	}
	int rc = config_outputs(r);
	return rc == CLI_OK ? nonfinite_status(r->result, r->ec.model_path) : rc;
}

static int evaluate_from_config(fv_registry *reg, const eval_args *a)
{
	config_run r = {0};
	int rc = CLI_OK;
	r.cfg = fv_config_compose(a->config, a->config_dir, a->n_overrides, a->overrides);
	if (r.cfg == NULL || fv_eval_config_parse(fv_node_get(fv_config_root(r.cfg), "evaluation"),
	                                          &r.ec) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && (r.ckpt = cli_open_checkpoint(r.ec.model_path, a->model)) == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK && (r.model = fv_model_load(reg, r.ckpt, &r.model_cfg)) == NULL)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		rc = open_data(r.cfg, NULL, &r.data);
	if (rc == CLI_OK)
		rc = check_sessions(r.ckpt, r.data);
	if (rc == CLI_OK)
		rc = config_evaluate(&r);
	config_run_free(&r);
	return rc;
}

static int run_eval(int argc, char **argv)
{
	eval_args a = {.cutoff = 0.15};
	a.overrides = calloc((size_t)argc, sizeof *a.overrides);
	if (a.overrides == NULL)
		return cli_fail("out of memory");
	int rc = parse_args(argc, argv, &a);
	fv_registry *reg = rc == CLI_OK ? cli_load_registry() : NULL;
	if (rc == CLI_OK && reg == NULL)
		rc = CLI_FAILED;
	if (rc == CLI_OK)
		rc = a.config != NULL ? evaluate_from_config(reg, &a) : evaluate(reg, &a);
	fv_registry_free(reg);
	free(a.overrides);
	return rc;
}

const cli_cmd cli_cmd_eval = {
	.name = "eval",
	.summary = "evaluate a trained model on test stimuli",
	.usage = "fovea eval CHECKPOINT DATA_DIR [--split NAME] [--output DIR] "
	         "[--var-ratio-cutoff X] [--model MODEL.yaml] [key=value ...]\n"
	         "       fovea eval --config-dir DIR --config-name NAME [key=value ...]\n"
	         "       fovea eval CONFIG.yaml --config-dir DIR [key=value ...]\n"
	         "\n"
	         "With a config: openretina's `openretina eval`.  The config's `evaluation`\n"
	         "node (openretina's configs/evaluation/default.yaml: model_path, model_tag,\n"
	         "data_split train|validation|test|STIMULUS, add_responses_to_model_results,\n"
	         "model_results_path, summary_results_path, var_ratio_cutoff,\n"
	         "compute_dataset_statistics) says what to evaluate and where the CSV and\n"
	         "JSON go; data_io and dataloader say which data (paths.data_dir).\n"
	         "\n"
	         "Run a checkpoint's model on the test stimuli of DATA_DIR (openretina's\n"
	         "HDF5 layout) and compute openretina's metrics per neuron: correlation,\n"
	         "MSE and Poisson loss to the trial-averaged response, and where the test\n"
	         "responses have repeated trials, the fraction of explainable variance\n"
	         "explained (FEVE), the variance ratio, the jackknife oracle and the\n"
	         "correlation ceiling the trials allow.  Writes eval_per_neuron.csv and\n"
	         "eval_summary.json beside the checkpoint (or into --output DIR) and prints\n"
	         "the summary.\n"
	         "\n"
	         CLI_CHECKPOINT_USAGE
	         "\n"
	         "  --split NAME            one test stimulus (default: every one)\n"
	         "  --var-ratio-cutoff X    summary over neurons with var_ratio >= X (0.15)\n"
	         "  key=value               change the checkpoint's data settings, e.g.\n"
	         "                          'data_io.test_names=[test]'\n"
	         CLI_CONFIG_DIR_USAGE
	         CLI_MODEL_USAGE,
	.run = run_eval,
};
