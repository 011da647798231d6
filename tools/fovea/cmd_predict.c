/*
** cmd_predict.c: `fovea predict CHECKPOINT STIMULUS.npy --session S`, the
** responses a trained model predicts for a stimulus, as .npy.
**
** The stimulus is a movie in the data directory's own units (channels x
** time x height x width, as the files in DIR/stimuli): it is normalised with the
** checkpoint's stim_mean and stim_std, as the data loader normalises
** training stimuli, unless --raw says it already is.  The output has shape
** (time - lag, neurons): the first `lag` frames feed the core's temporal
** filters and have no prediction.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fovea/npy.h"
#include "fovea/trainer.h"

typedef struct predict_args {
	const char *checkpoint, *stimulus, *session, *output;
	bool raw;
} predict_args;

static int parse_args(int argc, char **argv, predict_args *a)
{
	const cli_cmd *self = &cli_cmd_predict;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool takes_value = strcmp(s, "--session") == 0 || strcmp(s, "--output") == 0 ||
		                   strcmp(s, "-o") == 0;
		if (takes_value && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		if (strcmp(s, "--session") == 0)
			a->session = argv[++i];
		else if (strcmp(s, "--output") == 0 || strcmp(s, "-o") == 0)
			a->output = argv[++i];
		else if (strcmp(s, "--raw") == 0)
			a->raw = true;
		else if (s[0] == '-' && s[1] == '-')
			return cli_usage_error(self, "unknown option '%s'", s);
		else if (a->checkpoint == NULL)
			a->checkpoint = s;
		else if (a->stimulus == NULL)
			a->stimulus = s;
		else
			return cli_usage_error(self, "unexpected argument '%s'", s);
	}
	if (a->checkpoint == NULL || a->stimulus == NULL)
		return cli_usage_error(self, "expected a checkpoint and a stimulus .npy file");
	if (a->session == NULL)
		return cli_usage_error(self, "--session is required (which readout to use)");
	return CLI_OK;
}

static int check_session(const fv_data_info *info, const char *session, const char *ckpt)
{
	if (info == NULL)
		return cli_fail("%s: the checkpoint's metadata has no data_info (sessions, neurons, "
		                "stimulus shape); was it written by fovea train?", ckpt);
	for (size_t i = 0; i < info->n_sessions; i++)
		if (strcmp(info->sessions[i], session) == 0)
			return CLI_OK;
	const char *near = cli_closest(session, info->sessions, info->n_sessions);
	return cli_fail("%s has no session '%s'%s%s%s (it has %zu sessions, the first '%s')", ckpt,
	                session, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "",
	                info->n_sessions, info->n_sessions ? info->sessions[0] : "");
}

/* The stimulus as a normalised batch, (N, C, T, H, W): one movie
** (C, T, H, W) is a batch of one. */
static int stimulus_batch(const predict_args *a, const fv_data_info *info, fv_ctx *ctx,
                          fv_tensor **out, bool *batched)
{
	fv_tensor *s = fv_npy_load(a->stimulus);
	if (s == NULL)
		return cli_fail("%s", fv_errmsg());
	int first = s->ndim == 5 ? 1 : 0;
	*batched = first;
	int rc = CLI_OK;
	/* A std of 0 or a mean of 1e308 turns every pixel into inf or NaN. */
	if (!a->raw && (!isfinite(info->stim_mean) || !isfinite(info->stim_std) ||
	                !(info->stim_std > 0)))
		rc = cli_fail("%s: data_info stim_mean %g and stim_std %g cannot normalise a stimulus "
		              "(the mean must be finite, the std finite and > 0)", a->checkpoint,
		              info->stim_mean, info->stim_std);
	else if (s->ndim - first != 4 || s->shape[first] != info->input_shape[0] ||
	    s->shape[first + 2] != info->input_shape[1] || s->shape[first + 3] != info->input_shape[2]) {
		char want[64];
		snprintf(want, sizeof want, "%s", fv_shape_str(3, info->input_shape));
		rc = cli_fail("%s: shape %s, expected (channels, time, height, width) or a batch of "
		              "them, with (channels, "
		              "height, width) = %s as the model was trained", a->stimulus,
		              fv_shape_str(s->ndim, s->shape), want);
	}
	if (rc == CLI_OK) {
		int64_t shape[5] = {first ? s->shape[0] : 1, s->shape[first], s->shape[first + 1],
		                    s->shape[first + 2], s->shape[first + 3]};
		*out = fv_ctx_from_data(ctx, 5, shape, s->data);
		double mean = a->raw ? 0.0 : info->stim_mean, std = a->raw ? 1.0 : info->stim_std;
		int64_t bad = 0;
		for (int64_t i = 0; *out != NULL && i < (*out)->numel; i++) {
			(*out)->data[i] = (fv_real)(((*out)->data[i] - mean) / std);
			bad += !isfinite((*out)->data[i]);
		}
		/* a finite mean can still push every pixel past float's range */
		if (*out == NULL)
			rc = cli_fail("%s", fv_errmsg());
		else if (bad > 0)
			rc = cli_fail("%s: %lld of its %lld values are not finite%s (stim_mean %g, "
			              "stim_std %g of %s); nothing written", a->stimulus, (long long)bad,
			              (long long)(*out)->numel, a->raw ? "" : " once normalised",
			              mean, std, a->checkpoint);
	}
	fv_tensor_free(s);
	return rc;
}

static int predict(fv_registry *reg, const predict_args *a)
{
	fv_checkpoint *c = fv_checkpoint_open(a->checkpoint);
	if (c == NULL)
		return cli_fail("%s", fv_errmsg());
	fv_module *model = fv_model_load(reg, c, NULL);
	fv_ctx *ctx = fv_ctx_new();
	int rc = model != NULL && ctx != NULL ? CLI_OK : cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		rc = check_session(fv_checkpoint_data_info(c), a->session, a->checkpoint);
	fv_tensor *x = NULL;
	bool batched = false;
	if (rc == CLI_OK)
		rc = stimulus_batch(a, fv_checkpoint_data_info(c), ctx, &x, &batched);
	if (rc == CLI_OK) {
		fv_ctx_set_grad_enabled(ctx, false);
		fv_forward_args fa = FV_FORWARD_ARGS_INIT;
		fa.data_key = a->session;
		/* the stimulus is a full movie: a SingleCellSeparatedLNP crops it
		** around rf_location, as openretina's training_step does */
		fa.crop_input = true;
		fv_tensor *y = fv_module_forward(model, ctx, x, &fa);
		const char *out = a->output ? a->output : "prediction.npy";
		int64_t bad = 0;
		for (int64_t i = 0; y != NULL && i < y->numel; i++)
			bad += !isfinite(y->data[i]);
		if (y == NULL || y->ndim != 3)
			rc = cli_fail("%s", y == NULL ? fv_errmsg() : "the model's output is not "
			              "(batch, time, neurons)");
		else if (bad > 0)
			rc = cli_fail("%s: %lld of the %lld predicted values are not finite (NaN weights "
			              "in the checkpoint?); nothing written", a->checkpoint,
			              (long long)bad, (long long)y->numel);
		else if (fv_npy_save_data(out, batched ? 3 : 2, y->shape + !batched, y->data) != FV_OK)
			rc = cli_fail("%s", fv_errmsg());
		else {
			printf("wrote %s: ", out);
			if (batched)
				printf("%lld stimuli x ", (long long)y->shape[0]);
			printf("%lld frames x %lld neurons (the first %lld frames of the stimulus have no "
			       "prediction)\n", (long long)y->shape[1], (long long)y->shape[2],
			       (long long)(x->shape[2] - y->shape[1]));
		}
	}
	fv_ctx_free(ctx);
	fv_module_free(model);
	fv_checkpoint_close(c);
	return rc;
}

static int run_predict(int argc, char **argv)
{
	predict_args a = {0};
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc;
	fv_registry *reg = cli_load_registry();
	if (reg == NULL)
		return CLI_FAILED;
	rc = predict(reg, &a);
	fv_registry_free(reg);
	return rc;
}

const cli_cmd cli_cmd_predict = {
	.name = "predict",
	.summary = "predict responses to a stimulus with a trained model",
	.usage = "fovea predict CHECKPOINT STIMULUS.npy --session S [--output OUT.npy] [--raw]\n"
	         "\n"
	         "Run the checkpoint's model on a movie (channels x time x height x width,\n"
	         "in the units of the data directory's stimuli/*.npy) through the readout\n"
	         "of session S, and write the predicted responses, (time - lag) x neurons,\n"
	         "as float32 .npy (default prediction.npy).  A batch of movies (N x channels\n"
	         "x time x height x width) gives N x (time - lag) x neurons.  CHECKPOINT is\n"
	         "a fovea checkpoint or an openretina .ckpt; a SingleCellSeparatedLNP crops\n"
	         "the movie around its rf_location, as openretina's training does.\n"
	         "\n"
	         "  --raw   the stimulus is already normalised (skip (x - stim_mean) / stim_std)\n",
	.run = run_predict,
	.max_memory = true,
};
