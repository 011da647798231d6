/*
** synthetic_data.c: a data set in openretina's HDF5 layout generated from a
** known ground truth, so that a fresh clone can train a model and check
** that it recovers what was planted (`fovea create-data`).
**
** Stimuli: Gaussian white noise, channels x time x height x width, one
** movie per training stimulus and one test movie, shared by all sessions.
** Each neuron is a linear-nonlinear-Poisson cell:
**   p(t)     = sum_xy rf(x, y) * stimulus[channel, t, y, x]
**              rf: a Gaussian of the neuron's centre and size on one colour
**              channel, times its sign (ON +1, OFF -1), unit L2 norm;
**   drive(t) = sum_k filter[k] * p(t - k)     (zero before the first frame)
**              filter: biphasic, a positive lobe then a negative one,
**              unit L2 norm;
**   rate(t)  = amplitude * softplus(gain * drive(t) + bias)
**              amplitude set so that the mean rate over the training
**              stimuli is `rate` spikes per frame;
**   counts   ~ Poisson(rate(t)), independently per frame (and per trial
**              for the test stimulus).
** Because the noise is white and the filters have unit norm, drive(t) has
** unit variance whatever the neuron's size, so all neurons are equally
** learnable.  Centres are in pixel coordinates: x indexes width (columns),
** y height (rows), the centre of pixel (row i, column j) is (x=j, y=i).
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "fovea/npy.h"
#include "tensor/tensor_internal.h"
#include "base/base_internal.h"
#include "io/json.h"

#define TEST_STIMULUS "test"

void fv_synthetic_options_default(fv_synthetic_options *o)
{
	memset(o, 0, sizeof *o);
	o->seed = 1;
	o->n_sessions = 3;
	o->channels = 2;
	o->height = 18;
	o->width = 16;
	o->train_frames = 1500;
	o->n_train_stimuli = 2;
	o->test_frames = 300;
	o->n_test_trials = 10;
	o->filter_length = 12;
	o->rate = 1.0;
}

/* One planted neuron. */
typedef struct neuron {
	double cx, cy, size;
	int sign;
	int64_t channel;
	double gain, bias, amplitude;
	double *filter;
	float *rf; /* height x width, on `channel` */
} neuron;

typedef struct generator {
	const fv_synthetic_options *o;
	fv_ctx *rng;
	const char *dir;
	int64_t hw;
	fv_tensor **train;  /* n_train_stimuli movies */
	fv_tensor *test;
} generator;

static double uniform(generator *g, double lo, double hi)
{
	return lo + (hi - lo) * fv_ctx_random_uniform(g->rng);
}

/* Knuth's product of uniforms for small means, a rounded normal above
** (rates here rarely pass a few spikes per frame). */
static double poisson(generator *g, double mean)
{
	if (mean <= 0.0)
		return 0.0;
	if (mean > 60.0) {
		double v = floor(mean + sqrt(mean) * fv_ctx_random_normal(g->rng) + 0.5);
		return v > 0.0 ? v : 0.0;
	}
	double limit = exp(-mean), p = 1.0;
	int k = -1;
	do {
		k++;
		p *= fv_ctx_random_uniform(g->rng);
	} while (p > limit);
	return (double)k;
}

static double softplus(double x)
{
	return x > 20.0 ? x : log1p(exp(x));
}

/* ---- options and stimuli ------------------------------------------------------- */

static int64_t neurons_in_session(const fv_synthetic_options *o, int session)
{
	if (o->n_neurons != NULL && o->n_n_neurons > 0)
		return o->n_neurons[(size_t)session % o->n_n_neurons];
	return 12 + 6 * (int64_t)session;
}

static fv_status check_options(const fv_synthetic_options *o)
{
	struct {
		const char *name;
		int64_t value, min;
	} checks[] = {
		{"sessions", o->n_sessions, 1},
		{"channels", o->channels, 1},
		{"height", o->height, 5},
		{"width", o->width, 5},
		{"frames", o->train_frames, 1},
		{"train-stimuli", o->n_train_stimuli, 1},
		{"test-frames", o->test_frames, 1},
		{"trials", o->n_test_trials, 1},
		{"filter-length", o->filter_length, 2},
	};
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
		if (checks[i].value < checks[i].min)
			return fv_error(FV_ERR_ARG, "create-data: %s must be at least %lld, got %lld",
			                checks[i].name, (long long)checks[i].min, (long long)checks[i].value);
	for (int s = 0; s < o->n_sessions; s++)
		if (neurons_in_session(o, s) < 1)
			return fv_error(FV_ERR_ARG, "create-data: session %d would have %lld neurons, need at least 1",
			                s, (long long)neurons_in_session(o, s));
	if (!(o->rate > 0.0 && isfinite(o->rate)))
		return fv_error(FV_ERR_ARG, "create-data: rate must be positive, got %g", o->rate);
	int64_t elements = o->channels * o->height * o->width *
	                   (o->train_frames * o->n_train_stimuli + o->test_frames);
	if (elements > ((int64_t)1 << 32))
		return fv_error(FV_ERR_ARG, "create-data: %lld stimulus values is too large",
		                (long long)elements);
	return FV_OK;
}

static fv_tensor *white_noise(generator *g, int64_t frames)
{
	int64_t shape[4] = {g->o->channels, frames, g->o->height, g->o->width};
	fv_tensor *t = fv_tensor_new(4, shape);
	if (t != NULL)
		for (int64_t i = 0; i < t->numel; i++)
			t->data[i] = (fv_real)(float)fv_ctx_random_normal(g->rng);
	return t;
}

static fv_status write_stimuli(generator *g)
{
	char *stim_dir = fv__data_path_join(g->dir, "stimuli");
	if (stim_dir == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_status rc = FV_OK;
	if (mkdir(stim_dir, 0777) != 0 && errno != EEXIST)
		rc = fv_error(FV_ERR_IO, "%s: cannot create directory: %s", stim_dir, strerror(errno));
	int n = g->o->n_train_stimuli;
	for (int i = 0; rc == FV_OK && i <= n; i++) {
		fv_tensor *movie = i < n ? white_noise(g, g->o->train_frames)
		                         : white_noise(g, g->o->test_frames);
		if (movie == NULL) {
			rc = fv_errcode();
			break;
		}
		if (i < n)
			g->train[i] = movie;
		else
			g->test = movie;
		char name[64];
		if (i < n)
			snprintf(name, sizeof name, "train_%d.npy", i);
		else
			snprintf(name, sizeof name, TEST_STIMULUS ".npy");
		char *path = fv__data_path_join(stim_dir, name);
		rc = path != NULL ? fv_npy_save(path, movie) : fv_error(FV_ERR_NOMEM, "out of memory");
		free(path);
	}
	free(stim_dir);
	return rc;
}

/* ---- neurons ------------------------------------------------------------------------- */

static void normalise(double *v, int64_t n)
{
	double ss = 0.0;
	for (int64_t i = 0; i < n; i++)
		ss += v[i] * v[i];
	double scale = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
	for (int64_t i = 0; i < n; i++)
		v[i] *= scale;
}

static fv_status plant_neuron(generator *g, neuron *nr)
{
	const fv_synthetic_options *o = g->o;
	/* keep the centre two sizes away from the border where possible */
	double margin_x = o->width > 8 ? 3.0 : 1.0, margin_y = o->height > 8 ? 3.0 : 1.0;
	nr->cx = uniform(g, margin_x, (double)o->width - 1.0 - margin_x);
	nr->cy = uniform(g, margin_y, (double)o->height - 1.0 - margin_y);
	nr->size = uniform(g, 0.8, 1.6);
	nr->sign = fv_ctx_random_uniform(g->rng) < 0.5 ? 1 : -1;
	nr->channel = (int64_t)(fv_ctx_random_uniform(g->rng) * (double)o->channels);
	if (nr->channel >= o->channels)
		nr->channel = o->channels - 1;
	nr->gain = uniform(g, 2.0, 3.0);
	nr->bias = uniform(g, -1.5, -0.5);
	nr->filter = fv__malloc((size_t)o->filter_length * sizeof *nr->filter);
	double *rf = fv__malloc((size_t)g->hw * sizeof *rf);
	nr->rf = fv__malloc((size_t)g->hw * sizeof *nr->rf);
	if (nr->filter == NULL || rf == NULL || nr->rf == NULL) {
		free(rf);
		return fv_error(FV_ERR_NOMEM, "out of memory");
	}
	for (int64_t y = 0; y < o->height; y++) {
		for (int64_t x = 0; x < o->width; x++) {
			double dx = (double)x - nr->cx, dy = (double)y - nr->cy;
			rf[y * o->width + x] = exp(-(dx * dx + dy * dy) / (2.0 * nr->size * nr->size));
		}
	}
	normalise(rf, g->hw);
	for (int64_t i = 0; i < g->hw; i++)
		nr->rf[i] = (float)(nr->sign * rf[i]);
	free(rf);
	/* biphasic: a positive lobe, then a smaller negative one three frames later */
	double peak = uniform(g, 1.5, 3.0), width = uniform(g, 0.9, 1.4);
	for (int64_t k = 0; k < o->filter_length; k++) {
		double a = ((double)k - peak) / width, b = ((double)k - peak - 3.0) / (1.5 * width);
		nr->filter[k] = exp(-0.5 * a * a) - 0.5 * exp(-0.5 * b * b);
	}
	normalise(nr->filter, o->filter_length);
	return FV_OK;
}

/* drive(t) for a movie: spatial projection, then the causal filter. */
static void neuron_drive(const generator *g, const neuron *nr, const fv_tensor *movie,
                         double *proj, double *drive)
{
	int64_t frames = movie->shape[1];
	const fv_real *base = movie->data + nr->channel * frames * g->hw;
	for (int64_t t = 0; t < frames; t++) {
		double s = 0.0;
		for (int64_t i = 0; i < g->hw; i++)
			s += (double)nr->rf[i] * (double)base[t * g->hw + i];
		proj[t] = s;
	}
	for (int64_t t = 0; t < frames; t++) {
		double s = 0.0;
		for (int64_t k = 0; k < g->o->filter_length && k <= t; k++)
			s += nr->filter[k] * proj[t - k];
		drive[t] = s;
	}
}

/* ---- sessions -------------------------------------------------------------------------- */

typedef struct session_data {
	int64_t n;
	neuron *neurons;
	double **train;     /* per training stimulus: (n, frames) counts */
	double *test_trials; /* (trials, n, test_frames) */
	double *test_avg;    /* (n, test_frames) */
} session_data;

static void session_data_free(const generator *g, session_data *s)
{
	for (int64_t i = 0; s->neurons != NULL && i < s->n; i++) {
		free(s->neurons[i].filter);
		free(s->neurons[i].rf);
	}
	free(s->neurons);
	for (int i = 0; s->train != NULL && i < g->o->n_train_stimuli; i++)
		free(s->train[i]);
	free(s->train);
	free(s->test_trials);
	free(s->test_avg);
}

static fv_status simulate_session(generator *g, session_data *s)
{
	const fv_synthetic_options *o = g->o;
	int64_t n = s->n, t_train = o->train_frames, t_test = o->test_frames;
	int64_t longest = t_train > t_test ? t_train : t_test;
	int n_stim = o->n_train_stimuli;
	s->neurons = fv__calloc((size_t)n, sizeof *s->neurons);
	s->train = fv__calloc((size_t)n_stim, sizeof *s->train);
	s->test_trials = fv__malloc((size_t)(o->n_test_trials * n * t_test) * sizeof(double));
	s->test_avg = fv__calloc((size_t)(n * t_test), sizeof(double));
	double *proj = fv__malloc((size_t)longest * sizeof *proj);
	/* the drives of one neuron for every training stimulus, back to back */
	double *drives = fv__malloc((size_t)(n_stim * t_train) * sizeof *drives);
	double *test_drive = fv__malloc((size_t)t_test * sizeof *test_drive);
	fv_status rc = FV_OK;
	if (s->neurons == NULL || s->train == NULL || s->test_trials == NULL || s->test_avg == NULL ||
	    proj == NULL || drives == NULL || test_drive == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (int i = 0; rc == FV_OK && i < n_stim; i++)
		if ((s->train[i] = fv__malloc((size_t)(n * t_train) * sizeof(double))) == NULL)
			rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (int64_t j = 0; rc == FV_OK && j < n; j++) {
		neuron *nr = &s->neurons[j];
		if ((rc = plant_neuron(g, nr)) != FV_OK)
			break;
		double total = 0.0;
		for (int i = 0; i < n_stim; i++) {
			neuron_drive(g, nr, g->train[i], proj, drives + i * t_train);
			for (int64_t t = 0; t < t_train; t++)
				total += softplus(nr->gain * drives[i * t_train + t] + nr->bias);
		}
		nr->amplitude = o->rate / (total / (double)(n_stim * t_train));
		for (int i = 0; i < n_stim; i++)
			for (int64_t t = 0; t < t_train; t++)
				s->train[i][j * t_train + t] = poisson(
				        g, nr->amplitude * softplus(nr->gain * drives[i * t_train + t] + nr->bias));
		neuron_drive(g, nr, g->test, proj, test_drive);
		for (int k = 0; k < o->n_test_trials; k++) {
			for (int64_t t = 0; t < t_test; t++) {
				double c = poisson(g, nr->amplitude * softplus(nr->gain * test_drive[t] + nr->bias));
				s->test_trials[(k * n + j) * t_test + t] = c;
				s->test_avg[j * t_test + t] += c / (double)o->n_test_trials;
			}
		}
	}
	free(proj);
	free(drives);
	free(test_drive);
	return rc;
}

typedef struct session_file {
	const generator *g;
	const session_data *s;
} session_file;

static fv_status fill_session_file(fv__h5_id file, const char *tmp, const void *ud)
{
	const generator *g = ((const session_file *)ud)->g;
	const session_data *s = ((const session_file *)ud)->s;
	const fv_synthetic_options *o = g->o;
	fv_status rc = FV_OK;
	int64_t n = s->n;
	for (int i = 0; rc == FV_OK && i < o->n_train_stimuli; i++) {
		char key[64];
		snprintf(key, sizeof key, "responses_train_%d", i);
		int64_t shape[2] = {n, o->train_frames};
		rc = fv__h5_write_f64(file, tmp, key, 2, shape, s->train[i]);
	}
	int64_t avg_shape[2] = {n, o->test_frames};
	int64_t trial_shape[3] = {o->n_test_trials, n, o->test_frames};
	if (rc == FV_OK)
		rc = fv__h5_write_f64(file, tmp, "responses_" TEST_STIMULUS, 2, avg_shape, s->test_avg);
	if (rc == FV_OK)
		rc = fv__h5_write_f64(file, tmp, "by_trial_" TEST_STIMULUS, 3, trial_shape, s->test_trials);
	int64_t *channel = fv__malloc((size_t)n * sizeof *channel), *sign = fv__malloc((size_t)n * sizeof *sign);
	if (rc == FV_OK && (channel == NULL || sign == NULL))
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (int64_t j = 0; rc == FV_OK && j < n; j++) {
		channel[j] = s->neurons[j].channel;
		sign[j] = s->neurons[j].sign;
	}
	if (rc == FV_OK)
		rc = fv__h5_write_i64(file, tmp, "session_info/channel", 1, &n, channel);
	if (rc == FV_OK)
		rc = fv__h5_write_i64(file, tmp, "session_info/sign", 1, &n, sign);
	free(channel);
	free(sign);
	return rc;
}

static fv_status write_session_file(generator *g, const char *path, const session_data *s)
{
	session_file sf = {g, s};
	return fv__h5_write_file(path, fill_session_file, &sf);
}

/* ---- ground_truth.json -------------------------------------------------------------------- */

/* Where the neurons sit in the document (root, "sessions", a session, its
** list): the levels above are laid out one member a line, each neuron on
** one line of its own, which line tools (and tests/cli) rely on. */
#define NEURON_DEPTH 4

static json_t *neuron_json(const neuron *nr, int64_t filter_length)
{
	json_t *filter = json_array();
	bool ok = true; /* json_array_append_new() takes its value, failing or not */
	for (int64_t k = 0; k < filter_length; k++)
		ok &= json_array_append_new(filter, json_real(nr->filter[k])) == 0;
	json_t *v = json_pack("{s:f, s:f, s:f, s:i, s:I, s:f, s:f, s:f, s:o}", "centre_x", nr->cx,
	                      "centre_y", nr->cy, "size", nr->size, "sign", nr->sign, "channel",
	                      (json_int_t)nr->channel, "gain", nr->gain, "bias", nr->bias,
	                      "amplitude", nr->amplitude, "temporal_filter", filter);
	if (!ok) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static json_t *ground_truth_json(const fv_synthetic_options *o, const session_data *sessions)
{
	json_t *train = json_array(), *by_session = json_object();
	bool ok = true; /* as in neuron_json() */
	char name[64];
	for (int i = 0; i < o->n_train_stimuli; i++) {
		snprintf(name, sizeof name, "train_%d", i);
		ok &= json_array_append_new(train, json_string(name)) == 0;
	}
	for (int s = 0; s < o->n_sessions; s++) {
		json_t *list = json_array();
		for (int64_t j = 0; j < sessions[s].n; j++)
			ok &= json_array_append_new(list, neuron_json(&sessions[s].neurons[j],
			                                              o->filter_length)) == 0;
		json_t *session = json_pack("{s:I, s:o}", "n_neurons", (json_int_t)sessions[s].n,
		                            "neurons", list);
		snprintf(name, sizeof name, "session_%d", s);
		ok &= json_object_set_new(by_session, name, session) == 0;
	}
	json_t *v = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:[s], s:I, s:I, s:i, s:I, s:f, s:s, s:s, s:o}",
		"generator", "fovea create-data", "fovea_version", FV_VERSION_STRING,
		"seed", (json_int_t)o->seed, "channels", (json_int_t)o->channels,
		"height", (json_int_t)o->height, "width", (json_int_t)o->width,
		"train_stimuli", train, "test_stimuli", TEST_STIMULUS,
		"frames_per_train_stimulus", (json_int_t)o->train_frames,
		"test_frames", (json_int_t)o->test_frames, "test_trials", o->n_test_trials,
		"filter_length", (json_int_t)o->filter_length, "mean_rate", o->rate,
		"model", "rate(t) = amplitude * softplus(gain * drive(t) + bias), drive(t) = "
		         "sum_k temporal_filter[k] * sum_xy rf(x, y) * stimulus[channel, t - k, y, "
		         "x], rf = sign * exp(-((x - centre_x)^2 + (y - centre_y)^2) / (2 size^2)) "
		         "/ norm, counts ~ Poisson(rate)",
		"coordinates", "pixels: x indexes width (columns), y indexes height (rows); "
		               "(x, y) = (j, i) is the centre of pixel [i, j]",
		"sessions", by_session);
	if (!ok) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static fv_status write_ground_truth(generator *g, session_data *sessions)
{
	char *path = fv__data_path_join(g->dir, "ground_truth.json");
	if (path == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	json_t *truth = ground_truth_json(g->o, sessions);
	size_t len = 0;
	char *text = fv__json_dump_outline(truth, NEURON_DEPTH, 0, path, &len);
	json_decref(truth);
	fv_status rc = text != NULL ? FV_OK : FV_ERR_NOMEM;
	if (rc == FV_OK) {
		const void *parts[2] = {text, "\n"};
		size_t sizes[2] = {len, 1};
		rc = fv__atomic_write(path, 2, parts, sizes);
	}
	free(path);
	free(text);
	return rc;
}

/* ---- the directory ------------------------------------------------------------------------- */

/* Session files this run would not write would join the data set when it
** is read: refuse rather than mix two data sets. */
fv_status fv__synthetic_check_target(const char *dir, int n_sessions)
{
	struct stat st;
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return fv_error(FV_ERR_IO, "%s exists and is not a directory", dir);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return fv_error(FV_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
	char **files;
	size_t n;
	fv_status rc = fv__data_list_dir(dir, ".h5", ".hdf5", &files, &n);
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		int k = -1, used = 0;
		if (sscanf(files[i], "session_%d.hdf5%n", &k, &used) != 1 || files[i][used] != '\0' ||
		    k < 0 || k >= n_sessions)
			rc = fv_error(FV_ERR_IO,
			              "%s already holds session files this data set would not replace "
			              "(%s); remove them or choose an empty directory",
			              dir, files[i]);
	}
	fv__data_free_names(files, n);
	return rc;
}

static fv_status generate(generator *g)
{
	const fv_synthetic_options *o = g->o;
	fv_status rc = write_stimuli(g);
	session_data *sessions = fv__calloc((size_t)o->n_sessions, sizeof *sessions);
	if (rc == FV_OK && sessions == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (int s = 0; rc == FV_OK && s < o->n_sessions; s++) {
		sessions[s].n = neurons_in_session(o, s);
		rc = simulate_session(g, &sessions[s]);
		char name[64];
		snprintf(name, sizeof name, "session_%d.hdf5", s);
		char *path = rc == FV_OK ? fv__data_path_join(g->dir, name) : NULL;
		if (rc == FV_OK)
			rc = path != NULL ? write_session_file(g, path, &sessions[s])
			                  : fv_error(FV_ERR_NOMEM, "out of memory");
		free(path);
	}
	if (rc == FV_OK)
		rc = write_ground_truth(g, sessions);
	for (int s = 0; sessions != NULL && s < o->n_sessions; s++)
		session_data_free(g, &sessions[s]);
	free(sessions);
	return rc;
}

fv_status fv_synthetic_write(const char *dir, const fv_synthetic_options *o)
{
	fv_status rc = check_options(o);
	if (rc != FV_OK || (rc = fv__synthetic_check_target(dir, o->n_sessions)) != FV_OK)
		return rc;
	generator g = {.o = o, .dir = dir, .hw = o->height * o->width};
	g.rng = fv_ctx_new();
	g.train = fv__calloc((size_t)o->n_train_stimuli, sizeof *g.train);
	if (g.rng == NULL || g.train == NULL) {
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	} else {
		fv_ctx_seed(g.rng, o->seed);
		fv__h5_quiet_begin();
		rc = generate(&g);
		fv__h5_quiet_end();
	}
	for (int i = 0; g.train != NULL && i < o->n_train_stimuli; i++)
		fv_tensor_free(g.train[i]);
	free(g.train);
	fv_tensor_free(g.test);
	fv_ctx_free(g.rng);
	return rc;
}
