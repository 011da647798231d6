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
#include "fovea/figure.h"
#include "fovea/npy.h"
#include "fovea/parallel.h"
#include "fovea/predict.h"
#include "fovea/trainer.h"

typedef struct predict_args {
	const char *checkpoint, *stimulus, *session, *output, *model, *movie;
	bool raw;
} predict_args;

static int parse_args(int argc, char **argv, predict_args *a)
{
	const cli_cmd *self = &cli_cmd_predict;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool takes_value = strcmp(s, "--session") == 0 || strcmp(s, "--output") == 0 ||
		                   strcmp(s, "-o") == 0 || strcmp(s, "--model") == 0 ||
		                   strcmp(s, "--movie") == 0;
		if (takes_value && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		if (strcmp(s, "--session") == 0)
			a->session = argv[++i];
		else if (strcmp(s, "--output") == 0 || strcmp(s, "-o") == 0)
			a->output = argv[++i];
		else if (strcmp(s, "--model") == 0)
			a->model = argv[++i];
		else if (strcmp(s, "--movie") == 0)
			a->movie = argv[++i];
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

/* --movie: the (first) stimulus, normalised as the model sees it, its
** predicted responses beneath, one trace per neuron. */
static int write_movie(const predict_args *a, const fv_data_info *info, const fv_tensor *s,
                       const fv_tensor *y)
{
	if (s->ndim != 4 && s->ndim != 5)
		return cli_fail("%s: a movie needs (channels, time, height, width)", a->stimulus);
	const int64_t *d = s->shape + (s->ndim == 5);
	fv_tensor *x = fv_tensor_new(4, d);
	double *r = y != NULL ? malloc((size_t)(y->shape[y->ndim - 2] * y->shape[y->ndim - 1]) *
	                               sizeof *r) : NULL;
	if (x == NULL || r == NULL) {
		fv_tensor_free(x);
		free(r);
		return cli_fail("out of memory for the movie");
	}
	double mean = a->raw ? 0 : info->stim_mean;
	double sd = a->raw || !(info->stim_std > 0) ? 1 : info->stim_std;
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(((double)s->data[i] - mean) / sd);
	int64_t n_time = y->shape[y->ndim - 2], n = y->shape[y->ndim - 1];
	for (int64_t i = 0; i < n_time * n; i++)
		r[i] = (double)y->data[i];
	char title[512];
	snprintf(title, sizeof title, "predicted responses, session %s", a->session);
	fv_movie_args m = {.stimulus = x, .title = title, .responses = r, .n_time = n_time,
	                   .n_traces = (int)n, .trace_label = "predicted response"};
	int rc = fv_movie_write(&m, a->movie) == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK)
		printf("wrote %s\n", a->movie);
	fv_tensor_free(x);
	free(r);
	return rc;
}

/* Under mpirun a batch is split: rank r predicts stimuli [lo, hi), blocks
** in rank order with the first ranks one group larger, so that rank 0 has
** one whenever there is one.  A single movie is rank 0's.  The blocks start
** at multiples of GROUP stimuli because the vectorised loops of the tensor
** ops may round a value differently at another alignment: a stimulus at
** the same offset modulo 64 bytes in every layer's batch gives the same
** bits, so the file written is that of one process. */
#define GROUP 16

static void block_of(int64_t r, int64_t n, int64_t *lo, int64_t *hi)
{
	int64_t size = fv_parallel_size(), groups = (n + GROUP - 1) / GROUP;
	int64_t base = groups / size, extra = groups % size;
	int64_t first = r * base + (r < extra ? r : extra), count = base + (r < extra);
	*lo = first * GROUP < n ? first * GROUP : n;
	*hi = (first + count) * GROUP < n ? (first + count) * GROUP : n;
}

static void my_block(int64_t n, int64_t *lo, int64_t *hi)
{
	block_of(fv_parallel_rank(), n, lo, hi);
}

/* The stimulus file through fv_predict(), this process's share of it; *y
** gets the output in ctx, or stays NULL when the share is empty. */
static int run_model(const predict_args *a, fv_module *model, const fv_data_info *info,
                     fv_ctx *ctx, fv_tensor **y, int64_t *n_stimuli, int64_t *frames)
{
	fv_tensor *s = fv_npy_load(a->stimulus);
	if (s == NULL)
		return cli_fail("%s", fv_errmsg());
	*n_stimuli = s->ndim == 5 ? s->shape[0] : -1;
	*frames = s->ndim >= 4 ? s->shape[s->ndim - 3] : 0;
	fv_stimulus_view v = {.ndim = s->ndim};
	if (s->ndim == 4 || s->ndim == 5)
		fv_stimulus_view_dense(&v, s->data, s->ndim, s->shape);
	else
		memcpy(v.shape, s->shape, (size_t)(s->ndim < 5 ? s->ndim : 5) * sizeof *v.shape);
	v.data = s->data;
	int64_t lo = 0, hi = 1;
	bool split = *n_stimuli > 0; /* an empty batch is rank 0's error to report */
	my_block(split ? *n_stimuli : 1, &lo, &hi);
	if (split) {
		v.data += lo * v.strides[0];
		v.shape[0] = hi - lo;
	}
	int rc = CLI_OK;
	if (hi > lo && (*y = fv_predict(model, ctx, info, &v, a->session,
	                                a->raw ? 0 : FV_PREDICT_NORMALIZE)) == NULL)
		rc = fv_errcode() == FV_ERR_SHAPE
		         ? cli_fail("%s: %s", a->stimulus, fv_errmsg())
		         : cli_fail("%s: %s", a->checkpoint, fv_errmsg());
	/* the movie shows the first stimulus, which is rank 0's */
	if (rc == CLI_OK && a->movie != NULL && fv_parallel_rank() == 0 && *y != NULL)
		rc = write_movie(a, info, s, *y);
	fv_tensor_free(s);
	return rc;
}

static int write_prediction(const predict_args *a, const fv_tensor *y, bool batched,
                            int64_t frames)
{
	const char *out = a->output ? a->output : "prediction.npy";
	int64_t bad = 0;
	for (int64_t i = 0; i < y->numel; i++)
		bad += !isfinite(y->data[i]);
	if (bad > 0)
		return cli_fail("%s: %lld of the %lld predicted values are not finite (NaN weights "
		                "in the checkpoint?); nothing written", a->checkpoint, (long long)bad,
		                (long long)y->numel);
	if (fv_npy_save_data(out, batched ? 3 : 2, y->shape + !batched, y->data) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	printf("wrote %s: ", out);
	if (batched)
		printf("%lld stimuli x ", (long long)y->shape[0]);
	printf("%lld frames x %lld neurons (the first %lld frames of the stimulus have no "
	       "prediction)\n", (long long)y->shape[1], (long long)y->shape[2],
	       (long long)(frames - y->shape[1]));
	return CLI_OK;
}

/* Whether every process got here without an error (a process that failed
** reported why); a lone process just passes its own code on. */
static int all_ok(int rc)
{
	double failed = rc != CLI_OK;
	if (fv_parallel_allreduce_sum(&failed, 1) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	return failed > 0 ? CLI_FAILED : CLI_OK;
}

/* Rank 0 collects the shares of a split batch into *y (in ctx), in the
** order of the stimuli: the file written is that of one process. */
static int gather_prediction(fv_ctx *ctx, fv_tensor **y, int64_t n)
{
	int size = fv_parallel_size(), rank = fv_parallel_rank();
	int64_t shape[3] = {0, 0, 0}; /* rank 0 always has a share */
	if (rank == 0)
		memcpy(shape, (*y)->shape, sizeof shape);
	if (fv_parallel_broadcast(shape, sizeof shape, 0) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	size_t per = (size_t)(shape[1] * shape[2]) * sizeof(float);
	size_t *counts = malloc((size_t)size * sizeof *counts);
	shape[0] = n;
	fv_tensor *all = rank == 0 ? fv_ctx_empty(ctx, 3, shape) : NULL;
	if (counts == NULL || (rank == 0 && all == NULL)) {
		free(counts);
		return cli_fail("out of memory for the predictions of %lld stimuli", (long long)n);
	}
	for (int r = 0; r < size; r++) {
		int64_t lo, hi;
		block_of(r, n, &lo, &hi);
		counts[r] = (size_t)(hi - lo) * per;
	}
	fv_status st = fv_parallel_gather(*y != NULL ? (*y)->data : NULL,
	                                  all != NULL ? all->data : NULL, counts, 0);
	free(counts);
	*y = all;
	return st == FV_OK ? CLI_OK : cli_fail("%s", fv_errmsg());
}

static int predict(fv_registry *reg, const predict_args *a)
{
	fv_checkpoint *c = cli_open_checkpoint(a->checkpoint, a->model);
	if (c == NULL)
		return all_ok(CLI_FAILED);
	fv_module *model = fv_model_load(reg, c, NULL);
	fv_ctx *ctx = fv_ctx_new();
	int rc = model != NULL && ctx != NULL ? CLI_OK : cli_fail("%s", fv_errmsg());
	fv_tensor *y = NULL;
	int64_t n = -1, frames = 0; /* n: stimuli in a batch, -1: one movie */
	if (rc == CLI_OK)
		rc = run_model(a, model, fv_checkpoint_data_info(c), ctx, &y, &n, &frames);
	rc = all_ok(rc);
	if (rc == CLI_OK && n > 0 && fv_parallel_size() > 1)
		rc = gather_prediction(ctx, &y, n);
	if (rc == CLI_OK && fv_parallel_rank() == 0)
		rc = write_prediction(a, y, n >= 0, frames);
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
	         "                     [--movie FILE] [--model MODEL.yaml]\n"
	         "\n"
	         "Run the checkpoint's model on a movie (channels x time x height x width,\n"
	         "in the units of the data directory's stimuli/*.npy) through the readout\n"
	         "of session S, and write the predicted responses, (time - lag) x neurons,\n"
	         "as float32 .npy (default prediction.npy).  A batch of movies (N x channels\n"
	         "x time x height x width) gives N x (time - lag) x neurons.  A\n"
	         "SingleCellSeparatedLNP crops the movie around its rf_location, as\n"
	         "openretina's training does.\n"
	         CLI_CHECKPOINT_USAGE
	         "\n"
	         "  --raw               the stimulus is already normalised (skip\n"
	         "                      (x - stim_mean) / stim_std)\n"
	         "  --movie FILE        also write the stimulus (normalised; the first of a\n"
	         "                      batch) as a movie, the predicted responses of every\n"
	         "                      neuron beneath: FILE.mp4, .gif or .png (animated)\n"
	         CLI_MODEL_USAGE,
	.run = run_predict,
	.max_memory = true,
};
