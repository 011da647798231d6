/*
** synthetic_openretina.c: the data set openretina's own `openretina
** create-data` writes (openretina/cli/create_data.py), file for file, so
** that fovea's tests and its users can check that such a directory trains
** without conversion (`fovea create-data DIR --layout openretina`).
**
** What openretina writes, and so what is written here:
**   DIR/stimuli/random_noise_<i>.npy   i < num_stimuli, float64 Gaussian
**       white noise of shape (num_colors, (70 + i) * clip_length, 16, 8),
**       as numpy.save writes it;
**   DIR/session_<k>.hdf5               k < num_sessions, 10..29 neurons
**       (drawn once per session), holding
**       responses_random_noise_<i>     float64 (neurons, frames), and
**       session_info/celltypes         int64 (neurons,), values 0..39.
** No attributes, no test trials, no other files.  A neuron's response is
** openretina's _generate_response: the stimulus summed over a square window
** (side 2..5, top-left corner at row 0..13, column 0..6, on one colour
** channel, cut at the border), smoothed by a centred box filter of 3..6
** frames (numpy.convolve(..., mode="same")), times a scale in [0.5, 1.5)
** plus a bias in [0, 1).  Values are drawn from fovea's generator, so the
** numbers differ from any one openretina run, which is unseeded anyway;
** the draws follow openretina's order.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "fovea/npy.h"
#include "tensor/tensor_internal.h"
#include "base/base_internal.h"

#define OR_HEIGHT 16
#define OR_WIDTH 8
#define OR_FIRST_CLIPS 70 /* stimulus i has 70 + i clips */

void fv_openretina_data_options_default(fv_openretina_data_options *o)
{
	memset(o, 0, sizeof *o);
	o->seed = 1;
	o->num_colors = 3;
	o->num_stimuli = 4;
	o->num_sessions = 2;
	o->clip_length = 75;
}

/* numpy's randint(lo, hi): uniform in [lo, hi). */
static int64_t randint(fv_ctx *rng, int64_t lo, int64_t hi)
{
	int64_t v = lo + (int64_t)(fv_ctx_random_uniform(rng) * (double)(hi - lo));
	return v < hi ? v : hi - 1;
}

static int64_t stimulus_frames(const fv_openretina_data_options *o, int i)
{
	return (OR_FIRST_CLIPS + i) * o->clip_length;
}

static fv_status check_options(const fv_openretina_data_options *o)
{
	if (o->num_colors < 1 || o->num_stimuli < 1 || o->num_sessions < 1 || o->clip_length < 1)
		return fv_error(FV_ERR_ARG,
		                "create-data --layout openretina: num-colors, num-stimuli, num-sessions "
		                "and clip-length must be at least 1, got %lld, %d, %d, %lld",
		                (long long)o->num_colors, o->num_stimuli, o->num_sessions,
		                (long long)o->clip_length);
	int64_t frames = 0;
	for (int i = 0; i < o->num_stimuli; i++)
		frames += stimulus_frames(o, i);
	if (o->num_stimuli > 1000 || o->clip_length > 100000 ||
	    o->num_colors * frames * OR_HEIGHT * OR_WIDTH > ((int64_t)1 << 31))
		return fv_error(FV_ERR_ARG,
		                "create-data --layout openretina: %d stimuli of %lld colours and clip "
		                "length %lld is too large",
		                o->num_stimuli, (long long)o->num_colors, (long long)o->clip_length);
	return FV_OK;
}

/* ---- responses -------------------------------------------------------------------------- */

/* One session's neurons, drawn in openretina's order (all scales, then all
** biases, ...). */
typedef struct neurons {
	int64_t n;
	double *scale, *bias;
	int64_t *color, *rf_width, *row, *col, *t_width, *celltype;
} neurons;

static void neurons_free(neurons *nr)
{
	free(nr->scale);
	free(nr->bias);
	free(nr->color);
	free(nr->rf_width);
	free(nr->row);
	free(nr->col);
	free(nr->t_width);
	free(nr->celltype);
}

static fv_status draw_neurons(fv_ctx *rng, int64_t n_colors, neurons *nr)
{
	size_t n = (size_t)nr->n;
	nr->scale = fv__malloc(n * sizeof(double));
	nr->bias = fv__malloc(n * sizeof(double));
	int64_t **ints[] = {&nr->color, &nr->rf_width, &nr->row, &nr->col, &nr->t_width, &nr->celltype};
	bool ok = nr->scale != NULL && nr->bias != NULL;
	for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
		ok = (*ints[k] = fv__malloc(n * sizeof(int64_t))) != NULL && ok;
	if (!ok)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (size_t j = 0; j < n; j++)
		nr->scale[j] = fv_ctx_random_uniform(rng) + 0.5;
	for (size_t j = 0; j < n; j++)
		nr->bias[j] = fv_ctx_random_uniform(rng);
	const int64_t range[5][2] = {
		{0, n_colors}, {2, 6}, {0, OR_HEIGHT - 1}, {0, OR_WIDTH - 1}, {3, 7},
	};
	for (size_t k = 0; k < 5; k++)
		for (size_t j = 0; j < n; j++)
			(*ints[k])[j] = randint(rng, range[k][0], range[k][1]);
	return FV_OK;
}

/* Neuron j's response to a movie (C, frames, 16, 8) into out[0..frames). */
static void respond(const neurons *nr, int64_t j, int64_t frames, const double *stim, double *sum,
                    double *out)
{
	int64_t hw = OR_HEIGHT * OR_WIDTH;
	int64_t r_end = nr->row[j] + nr->rf_width[j], c_end = nr->col[j] + nr->rf_width[j];
	r_end = r_end < OR_HEIGHT ? r_end : OR_HEIGHT;
	c_end = c_end < OR_WIDTH ? c_end : OR_WIDTH;
	const double *base = stim + nr->color[j] * frames * hw;
	for (int64_t t = 0; t < frames; t++) {
		double s = 0.0;
		for (int64_t r = nr->row[j]; r < r_end; r++)
			for (int64_t c = nr->col[j]; c < c_end; c++)
				s += base[t * hw + r * OR_WIDTH + c];
		sum[t] = s;
	}
	/* numpy.convolve(sum, ones(m) / m, "same"): frames t - m/2 .. t - m/2 + m - 1 */
	int64_t m = nr->t_width[j];
	for (int64_t t = 0; t < frames; t++) {
		double s = 0.0;
		for (int64_t u = t - m / 2; u < t - m / 2 + m; u++)
			if (u >= 0 && u < frames)
				s += sum[u] / (double)m;
		out[t] = s * nr->scale[j] + nr->bias[j];
	}
}

/* ---- files ---------------------------------------------------------------------------------- */

typedef struct generator {
	const fv_openretina_data_options *o;
	fv_ctx *rng;
	const char *dir;
	double **stimuli; /* per stimulus, (C, frames, 16, 8) float64 */
} generator;

static fv_status write_stimuli(generator *g)
{
	char *folder = fv__data_path_join(g->dir, "stimuli");
	if (folder == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_status rc = FV_OK;
	if (mkdir(folder, 0777) != 0 && errno != EEXIST)
		rc = fv_error(FV_ERR_IO, "%s: cannot create directory: %s", folder, strerror(errno));
	for (int i = 0; rc == FV_OK && i < g->o->num_stimuli; i++) {
		int64_t shape[4] = {g->o->num_colors, stimulus_frames(g->o, i), OR_HEIGHT, OR_WIDTH};
		int64_t numel = fv__numel(4, shape);
		if ((g->stimuli[i] = fv__malloc((size_t)numel * sizeof(double))) == NULL) {
			rc = fv_error(FV_ERR_NOMEM, "out of memory");
			break;
		}
		for (int64_t k = 0; k < numel; k++)
			g->stimuli[i][k] = fv_ctx_random_normal(g->rng);
		char name[64];
		snprintf(name, sizeof name, "random_noise_%d.npy", i);
		char *path = fv__data_path_join(folder, name);
		rc = path != NULL ? fv_npy_save_f64(path, 4, shape, g->stimuli[i])
		                  : fv_error(FV_ERR_NOMEM, "out of memory");
		free(path);
	}
	free(folder);
	return rc;
}

typedef struct session_file {
	const generator *g;
	const neurons *nr;
} session_file;

static fv_status fill_session(fv__h5_id file, const char *tmp, const void *ud)
{
	const generator *g = ((const session_file *)ud)->g;
	const neurons *nr = ((const session_file *)ud)->nr;
	int64_t longest = stimulus_frames(g->o, g->o->num_stimuli - 1);
	double *sum = fv__malloc((size_t)longest * sizeof *sum);
	double *resp = fv__malloc((size_t)(nr->n * longest) * sizeof *resp);
	fv_status rc = sum != NULL && resp != NULL ? FV_OK : fv_error(FV_ERR_NOMEM, "out of memory");
	for (int i = 0; rc == FV_OK && i < g->o->num_stimuli; i++) {
		int64_t frames = stimulus_frames(g->o, i);
		for (int64_t j = 0; j < nr->n; j++)
			respond(nr, j, frames, g->stimuli[i], sum, resp + j * frames);
		char key[64];
		snprintf(key, sizeof key, "responses_random_noise_%d", i);
		rc = fv__h5_write_f64(file, tmp, key, 2, (const int64_t[]){nr->n, frames}, resp);
	}
	if (rc == FV_OK)
		rc = fv__h5_write_i64(file, tmp, "session_info/celltypes", 1, &nr->n, nr->celltype);
	free(sum);
	free(resp);
	return rc;
}

static fv_status write_sessions(generator *g, const int64_t *n_neurons)
{
	fv_status rc = FV_OK;
	for (int k = 0; rc == FV_OK && k < g->o->num_sessions; k++) {
		neurons nr = {.n = n_neurons[k]};
		rc = draw_neurons(g->rng, g->o->num_colors, &nr);
		for (int64_t j = 0; rc == FV_OK && j < nr.n; j++)
			nr.celltype[j] = randint(g->rng, 0, 40);
		char name[64];
		snprintf(name, sizeof name, "session_%d.hdf5", k);
		char *path = rc == FV_OK ? fv__data_path_join(g->dir, name) : NULL;
		if (rc == FV_OK) {
			session_file sf = {g, &nr};
			rc = path != NULL ? fv__h5_write_file(path, fill_session, &sf)
			                  : fv_error(FV_ERR_NOMEM, "out of memory");
		}
		free(path);
		neurons_free(&nr);
	}
	return rc;
}

fv_status fv_openretina_data_write(const char *dir, const fv_openretina_data_options *o,
                                   int64_t *n_neurons)
{
	fv_status rc = check_options(o);
	if (rc != FV_OK || (rc = fv__synthetic_check_target(dir, o->num_sessions)) != FV_OK)
		return rc;
	generator g = {.o = o, .dir = dir};
	g.rng = fv_ctx_new();
	g.stimuli = fv__calloc((size_t)o->num_stimuli, sizeof *g.stimuli);
	if (g.rng == NULL || g.stimuli == NULL) {
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	} else {
		fv_ctx_seed(g.rng, o->seed);
		/* openretina draws the neuron counts first: 10 + randint(20) */
		for (int k = 0; k < o->num_sessions; k++)
			n_neurons[k] = randint(g.rng, 10, 30);
		fv__h5_quiet_begin();
		rc = write_stimuli(&g);
		if (rc == FV_OK)
			rc = write_sessions(&g, n_neurons);
		fv__h5_quiet_end();
	}
	for (int i = 0; g.stimuli != NULL && i < o->num_stimuli; i++)
		free(g.stimuli[i]);
	free(g.stimuli);
	fv_ctx_free(g.rng);
	return rc;
}
