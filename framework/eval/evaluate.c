/*
** evaluate.c: `fovea eval` as a library: run a model on the test stimuli
** of a data set, compute openretina's per-neuron metrics (metrics.c) and
** its summary, and write them as CSV and JSON (see metrics.h).
**
** Each test sample (the whole test movie, or one clip when the data loader
** does not allow crossing clip boundaries) is run on its own, so that the
** model's output can be aligned to the responses sample by sample: the
** output of a sample of `chunk` frames covers its last chunk - lag frames.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/metrics.h"
#include "base/base_internal.h"
#include "io/json.h"

struct fv_eval_result {
	fv_eval_neuron *neurons;
	size_t n, cap;
	char **names; /* interned session and stimulus names */
	size_t n_names, cap_names;
	int64_t *trials_per_set;
	size_t n_sets, cap_sets;
	int64_t max_trials;
	fv_eval_summary summary;
	double var_ratio_cutoff;
	char *model_path, *model_tag, *exp_name, *data_split, *species;
	fv_dataset_stats stats; /* all zero unless attached */
	bool keep_responses;
	const char **info_cols; /* interned session_info keys */
	size_t n_info_cols, cap_info_cols;
	const fv_data_info *data_info; /* while evaluating */
};

/* One (session, stimulus) pair aligned to the model: rows of (T, N). */
typedef struct aligned {
	int64_t rows, n, r;
	double *pred;   /* (rows, N) */
	double *avg;    /* (rows, N) */
	double *trials; /* (r, rows, N) or NULL */
} aligned;

static void aligned_free(aligned *a)
{
	free(a->pred);
	free(a->avg);
	free(a->trials);
}

/* ---- bookkeeping ----------------------------------------------------------------- */

static bool grow(void **p, size_t *cap, size_t count, size_t size)
{
	if (count < *cap)
		return true;
	size_t n = *cap ? 2 * *cap : 16;
	void *q = fv__realloc(*p, n * size);
	if (q == NULL)
		return false;
	*p = q;
	*cap = n;
	return true;
}

static const char *intern(fv_eval_result *r, const char *s)
{
	for (size_t i = 0; i < r->n_names; i++)
		if (strcmp(r->names[i], s) == 0)
			return r->names[i];
	if (!grow((void **)&r->names, &r->cap_names, r->n_names, sizeof *r->names))
		return NULL;
	char *copy = fv__strdup(s);
	if (copy != NULL)
		r->names[r->n_names++] = copy;
	return copy;
}

void fv_eval_result_free(fv_eval_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->neurons[i].corr_by_trial);
		free(r->neurons[i].mse_by_trial);
		free(r->neurons[i].response);
		free(r->neurons[i].info);
	}
	free(r->info_cols);
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	free(r->neurons);
	free(r->trials_per_set);
	free(r->model_path);
	free(r->model_tag);
	free(r->exp_name);
	free(r->data_split);
	free(r->species);
	fv_dataset_stats_free(&r->stats);
	free(r);
}

void fv_eval_set_dataset_stats(fv_eval_result *r, fv_dataset_stats *s)
{
	fv_dataset_stats_free(&r->stats);
	r->stats = *s;
	memset(s, 0, sizeof *s);
}

size_t fv_eval_n_neurons(const fv_eval_result *r)
{
	return r->n;
}

const fv_eval_neuron *fv_eval_neuron_at(const fv_eval_result *r, size_t i)
{
	return i < r->n ? &r->neurons[i] : NULL;
}

const fv_eval_summary *fv_eval_get_summary(const fv_eval_result *r)
{
	return &r->summary;
}

size_t fv_eval_n_info_columns(const fv_eval_result *r)
{
	return r->n_info_cols;
}

const char *fv_eval_info_column(const fv_eval_result *r, size_t k)
{
	return k < r->n_info_cols ? r->info_cols[k] : NULL;
}

/* The column of a session_info key, added on first use; -1 out of memory. */
static int64_t info_column(fv_eval_result *r, const char *key)
{
	const char *name = intern(r, key);
	if (name == NULL)
		return -1;
	for (size_t k = 0; k < r->n_info_cols; k++)
		if (r->info_cols[k] == name)
			return (int64_t)k;
	if (!grow((void **)&r->info_cols, &r->cap_info_cols, r->n_info_cols, sizeof *r->info_cols))
		return -1;
	r->info_cols[r->n_info_cols] = name;
	return (int64_t)r->n_info_cols++;
}

/* openretina's per-neuron and scalar session_kwargs of neuron j: arrays of
** one value per neuron give the neuron's, single values are repeated, and
** arrays of other lengths are left out (openretina writes their Python
** repr; fovea keeps numeric columns). */
static fv_status add_info(fv_eval_result *r, const char *session, int64_t n, int64_t j,
                          fv_eval_neuron *e)
{
	const fv_data_info *di = r->data_info;
	size_t s = 0;
	while (di != NULL && s < di->n_sessions && strcmp(di->sessions[s], session) != 0)
		s++;
	if (di == NULL || s == di->n_sessions || di->n_session_info == NULL)
		return FV_OK;
	for (size_t k = 0; k < di->n_session_info[s]; k++) {
		const fv_tensor *v = di->session_info[s][k];
		if (v->numel != n && v->numel != 1)
			continue;
		int64_t col = info_column(r, di->session_info_names[s][k]);
		if (col < 0)
			return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
		if ((size_t)col >= e->n_info) {
			double *grown = fv__realloc(e->info, ((size_t)col + 1) * sizeof *grown);
			if (grown == NULL)
				return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
			for (size_t i = e->n_info; i <= (size_t)col; i++)
				grown[i] = NAN;
			e->info = grown;
			e->n_info = (size_t)col + 1;
		}
		e->info[col] = v->data[v->numel == 1 ? 0 : j];
	}
	return FV_OK;
}

/* ---- running the model -------------------------------------------------------------- */

/* The sample's frames [start, start + chunk) as a batch of one. */
static fv_tensor *sample_input(fv_ctx *ctx, const fv_tensor *movie, int64_t start, int64_t chunk)
{
	int64_t c = movie->shape[0], t = movie->shape[1], hw = movie->shape[2] * movie->shape[3];
	int64_t shape[5] = {1, c, chunk, movie->shape[2], movie->shape[3]};
	fv_tensor *x = fv_ctx_empty(ctx, 5, shape);
	if (x == NULL)
		return NULL;
	for (int64_t ch = 0; ch < c; ch++)
		memcpy(x->data + ch * chunk * hw, movie->data + (ch * t + start) * hw,
		       (size_t)(chunk * hw) * sizeof *x->data);
	return x;
}

static fv_status set_error(const fv_movie_set *set, const char *what)
{
	return fv_error(FV_ERR_SHAPE, "evaluating session '%s' on stimulus '%s': %s", set->session,
	                set->stimulus ? set->stimulus : "?", what);
}

static fv_status check_set(const fv_movie_set *set)
{
	int64_t frames = set->movie->shape[1], resp = set->responses->shape[0];
	for (int64_t k = 0; k < set->n_samples; k++) {
		int64_t end = set->start_indices[k] + set->chunk_size;
		if (set->start_indices[k] < 0 || end > frames || end > resp)
			return set_error(set, "a test sample runs past the movie or the responses");
		if (set->responses_by_trial != NULL && end > set->responses_by_trial->shape[1])
			return set_error(set, "a test sample runs past the trial-resolved responses");
	}
	return FV_OK;
}

/* Copy the rows [from, from + rows) of a (T, N) tensor as doubles. */
static void copy_rows(double *dst, const fv_tensor *src, int64_t from, int64_t rows, int64_t n)
{
	for (int64_t i = 0; i < rows * n; i++)
		dst[i] = (double)src->data[from * n + i];
}

static fv_status alloc_aligned(aligned *a, const fv_movie_set *set, int64_t out_frames)
{
	a->n = set->responses->shape[1];
	a->rows = set->n_samples * out_frames;
	a->r = set->responses_by_trial != NULL ? set->responses_by_trial->shape[0] : 1;
	size_t cells = (size_t)(a->rows * a->n) + 1;
	a->pred = fv__malloc(cells * sizeof *a->pred);
	a->avg = fv__malloc(cells * sizeof *a->avg);
	if (set->responses_by_trial != NULL)
		a->trials = fv__malloc(cells * (size_t)a->r * sizeof *a->trials);
	if (a->pred == NULL || a->avg == NULL || (set->responses_by_trial && a->trials == NULL))
		return fv_error(FV_ERR_NOMEM, "evaluating session '%s': out of memory", set->session);
	return FV_OK;
}

/* Append sample k's prediction, average and trial rows at row `at`. */
static void append_sample(aligned *a, const fv_movie_set *set, const fv_tensor *y, int64_t k,
                          int64_t lag, int64_t at)
{
	int64_t out_frames = y->shape[1], n = a->n, from = set->start_indices[k] + lag;
	for (int64_t i = 0; i < out_frames * n; i++)
		a->pred[at * n + i] = (double)y->data[i];
	copy_rows(a->avg + at * n, set->responses, from, out_frames, n);
	const fv_tensor *bt = set->responses_by_trial;
	for (int64_t r = 0; bt != NULL && r < a->r; r++) {
		int64_t t_full = bt->shape[1];
		for (int64_t i = 0; i < out_frames * n; i++)
			a->trials[(r * a->rows + at) * n + i] = (double)bt->data[(r * t_full + from) * n + i];
	}
}

static fv_status run_set(fv_module *model, fv_ctx *ctx, const fv_movie_set *set, int64_t *lag,
                         aligned *a)
{
	fv_status rc = check_set(set);
	if (rc != FV_OK)
		return rc;
	fv_forward_args fa = FV_FORWARD_ARGS_INIT;
	fa.data_key = set->session;
	int64_t n = set->responses->shape[1];
	for (int64_t k = 0; k < set->n_samples; k++) {
		fv_ctx_reset(ctx);
		fv_tensor *x = sample_input(ctx, set->movie, set->start_indices[k], set->chunk_size);
		fv_tensor *y = fv_module_forward(model, ctx, x, &fa);
		if (y == NULL) {
			fv_error_prefix("evaluating session '%s' on stimulus '%s': ", set->session,
			                set->stimulus);
			return fv_errcode();
		}
		if (y->ndim != 3 || y->shape[0] != 1 || y->shape[2] != n || y->shape[1] > set->chunk_size ||
		    y->shape[1] < 1) {
			char msg[256];
			snprintf(msg, sizeof msg, "the model's output %s does not fit %lld frames of %lld "
			         "neurons", fv_shape_str(y->ndim, y->shape), (long long)set->chunk_size,
			         (long long)n);
			return set_error(set, msg);
		}
		int64_t this_lag = set->chunk_size - y->shape[1];
		if (k == 0 && (rc = alloc_aligned(a, set, y->shape[1])) != FV_OK)
			return rc;
		if (*lag >= 0 && this_lag != *lag) {
			char msg[256];
			snprintf(msg, sizeof msg, "the model's lag %lld differs from the lag %lld of an "
			         "earlier sample", (long long)this_lag, (long long)*lag);
			return set_error(set, msg);
		}
		*lag = this_lag;
		append_sample(a, set, y, k, this_lag, k * y->shape[1]);
	}
	return FV_OK;
}

/* ---- metrics per neuron --------------------------------------------------------------- */

typedef struct columns {
	double *corr, *mse, *poisson, *feve, *jack, *ratio, *ceiling, *trial_corr, *trial_mse;
	fv_eval_undefined *undefined;
} columns;

static fv_status columns_alloc(columns *c, int64_t n, int64_t r)
{
	size_t m = (size_t)n + 1;
	c->corr = fv__malloc(m * sizeof(double));
	c->mse = fv__malloc(m * sizeof(double));
	c->poisson = fv__malloc(m * sizeof(double));
	c->feve = fv__malloc(m * sizeof(double));
	c->jack = fv__malloc(m * sizeof(double));
	c->ratio = fv__malloc(m * sizeof(double));
	c->ceiling = fv__malloc(m * sizeof(double));
	c->trial_corr = fv__malloc(m * (size_t)r * sizeof(double));
	c->trial_mse = fv__malloc(m * (size_t)r * sizeof(double));
	c->undefined = fv__malloc(m * sizeof *c->undefined);
	if (!c->corr || !c->mse || !c->poisson || !c->feve || !c->jack || !c->ratio || !c->ceiling ||
	    !c->trial_corr || !c->trial_mse || !c->undefined)
		return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	return FV_OK;
}

static void columns_free(columns *c)
{
	free(c->corr);
	free(c->mse);
	free(c->poisson);
	free(c->feve);
	free(c->jack);
	free(c->ratio);
	free(c->ceiling);
	free(c->trial_corr);
	free(c->trial_mse);
	free(c->undefined);
}

/* Whether column j of a (t, n) array is constant, and whether it is
** finite throughout. */
static void column_shape(int64_t t, int64_t n, const double *a, int64_t j, bool *constant,
                         bool *finite)
{
	*constant = true;
	*finite = true;
	for (int64_t i = 0; i < t; i++) {
		*finite &= isfinite(a[i * n + j]) != 0;
		*constant &= a[i * n + j] == a[j];
	}
}

static fv_eval_undefined undefined_corr(const aligned *a, int64_t j)
{
	bool pred_const, pred_finite, avg_const, avg_finite;
	column_shape(a->rows, a->n, a->pred, j, &pred_const, &pred_finite);
	column_shape(a->rows, a->n, a->avg, j, &avg_const, &avg_finite);
	if (!pred_finite || !avg_finite)
		return FV_EVAL_NONFINITE;
	return pred_const || avg_const ? FV_EVAL_CONSTANT : FV_EVAL_DEFINED;
}

static void compute_columns(const aligned *a, columns *c)
{
	int64_t n = a->n, t = a->rows;
	fv_metric_correlation(t, n, a->avg, a->pred, c->corr);
	fv_metric_mse(t, n, a->avg, a->pred, c->mse);
	fv_metric_poisson(t, n, a->avg, a->pred, c->poisson);
	for (int64_t j = 0; j < n; j++)
		c->undefined[j] = undefined_corr(a, j);
	bool trials = a->trials != NULL && a->r > 1;
	for (int64_t j = 0; j < n && !trials; j++)
		c->feve[j] = c->jack[j] = c->ratio[j] = c->ceiling[j] = NAN;
	if (trials) {
		fv_metric_feve(a->r, t, n, a->trials, a->pred, c->feve);
		fv_metric_jackknife(a->r, t, n, a->trials, c->jack);
		fv_metric_explainable_var(a->r, t, n, a->trials, c->ratio, NULL, NULL);
		fv_metric_corr_ceiling(a->r, t, n, a->trials, c->ceiling);
	}
	/* without trials, the one "trial" is the average itself */
	const double *by = a->trials != NULL ? a->trials : a->avg;
	for (int64_t r = 0; r < a->r; r++) {
		fv_metric_correlation(t, n, by + r * t * n, a->pred, c->trial_corr + r * n);
		fv_metric_mse(t, n, by + r * t * n, a->pred, c->trial_mse + r * n);
	}
}

static fv_status add_neurons(fv_eval_result *res, const fv_movie_set *set, const char *split_name,
                             const aligned *a, const columns *c)
{
	const char *session = intern(res, set->session);
	const char *split = intern(res, split_name);
	if (session == NULL || split == NULL)
		return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	for (int64_t j = 0; j < a->n; j++) {
		if (!grow((void **)&res->neurons, &res->cap, res->n, sizeof *res->neurons))
			return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
		fv_eval_neuron *e = &res->neurons[res->n];
		*e = (fv_eval_neuron){.session = session, .split = split, .index = j,
		                      .poisson_loss = c->poisson[j], .corr = c->corr[j],
		                      .mse = c->mse[j], .feve = c->feve[j], .jackknife = c->jack[j],
		                      .var_ratio = c->ratio[j], .corr_ceiling = c->ceiling[j],
		                      .n_trials = a->r, .undefined = c->undefined[j]};
		e->corr_by_trial = fv__malloc((size_t)a->r * sizeof(double));
		e->mse_by_trial = fv__malloc((size_t)a->r * sizeof(double));
		res->n++;
		if (e->corr_by_trial == NULL || e->mse_by_trial == NULL)
			return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
		for (int64_t r = 0; r < a->r; r++) {
			e->corr_by_trial[r] = c->trial_corr[r * a->n + j];
			e->mse_by_trial[r] = c->trial_mse[r * a->n + j];
		}
		if (res->keep_responses && (e->response = fv__malloc((size_t)a->rows * sizeof(double) + 1)) == NULL)
			return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
		for (int64_t i = 0; res->keep_responses && i < a->rows; i++)
			e->response[i] = a->pred[i * a->n + j];
		e->n_frames = res->keep_responses ? a->rows : 0;
		fv_status rc = add_info(res, set->session, a->n, j, e);
		if (rc != FV_OK)
			return rc;
	}
	if (!grow((void **)&res->trials_per_set, &res->cap_sets, res->n_sets,
	          sizeof *res->trials_per_set))
		return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	res->trials_per_set[res->n_sets++] = a->r;
	if (a->r > res->max_trials)
		res->max_trials = a->r;
	return FV_OK;
}

static fv_status evaluate_set(fv_module *model, fv_ctx *ctx, const fv_movie_set *set,
                              const char *split, int64_t *lag, fv_eval_result *res)
{
	aligned a = {0};
	columns c = {0};
	fv_status rc = run_set(model, ctx, set, lag, &a);
	if (rc == FV_OK && a.pred == NULL)
		rc = set_error(set, "the test set has no samples");
	if (rc == FV_OK)
		rc = columns_alloc(&c, a.n, a.r);
	if (rc == FV_OK) {
		compute_columns(&a, &c);
		rc = add_neurons(res, set, split, &a, &c);
	}
	columns_free(&c);
	aligned_free(&a);
	return rc;
}

/* ---- the summary ----------------------------------------------------------------------- */

typedef struct nanmean {
	double sum;
	int64_t n;
} nanmean;

static void nm_add(nanmean *m, double v)
{
	if (!isnan(v)) {
		m->sum += v;
		m->n++;
	}
}

static double nm_get(const nanmean *m)
{
	return m->n > 0 ? m->sum / (double)m->n : NAN;
}

static bool passes(const fv_eval_result *r, const fv_eval_neuron *e)
{
	return !r->summary.filtering_applied ||
	       (!isnan(e->var_ratio) && e->var_ratio >= r->var_ratio_cutoff);
}

/* corr_by_trial_mean/std: per trial index, the mean over neurons; then the
** mean and (population) std of those means. */
static void trial_stats(fv_eval_result *r, bool corr, double *mean, double *std)
{
	nanmean over = {0};
	double *avgs = fv__calloc((size_t)r->max_trials + 1, sizeof *avgs);
	int64_t k = 0;
	for (int64_t i = 0; avgs != NULL && i < r->max_trials; i++) {
		nanmean m = {0};
		for (size_t j = 0; j < r->n; j++) {
			const fv_eval_neuron *e = &r->neurons[j];
			if (passes(r, e) && i < e->n_trials)
				nm_add(&m, corr ? e->corr_by_trial[i] : e->mse_by_trial[i]);
		}
		avgs[k] = nm_get(&m);
		nm_add(&over, avgs[k++]);
	}
	*mean = nm_get(&over);
	nanmean var = {0};
	for (int64_t i = 0; i < k; i++)
		if (!isnan(avgs[i]))
			nm_add(&var, (avgs[i] - *mean) * (avgs[i] - *mean));
	*std = var.n > 0 ? sqrt(nm_get(&var)) : NAN;
	free(avgs);
}

static void summarise(fv_eval_result *r, int64_t lag, size_t n_sessions)
{
	fv_eval_summary *s = &r->summary;
	s->data_split = r->data_split;
	s->temporal_lag = lag;
	s->n_sessions = (int64_t)n_sessions;
	s->n_neurons_total = (int64_t)r->n;
	s->n_test_repeats_min = s->n_test_repeats_max = 0;
	double trials = 0;
	for (size_t i = 0; i < r->n_sets; i++) {
		int64_t t = r->trials_per_set[i];
		if (i == 0 || t < s->n_test_repeats_min)
			s->n_test_repeats_min = t;
		if (t > s->n_test_repeats_max)
			s->n_test_repeats_max = t;
		trials += (double)t;
	}
	s->n_test_repeats_avg = r->n_sets ? trials / (double)r->n_sets : 0.0;
	for (size_t i = 0; i < r->n; i++) {
		s->filtering_applied |= !isnan(r->neurons[i].var_ratio);
		s->n_neurons_nonfinite += r->neurons[i].undefined == FV_EVAL_NONFINITE;
		s->n_neurons_constant += r->neurons[i].undefined == FV_EVAL_CONSTANT;
	}
	nanmean corr = {0}, mse = {0}, feve = {0}, fev = {0}, poisson = {0}, jack = {0}, ceil = {0};
	for (size_t i = 0; i < r->n; i++) {
		const fv_eval_neuron *e = &r->neurons[i];
		if (!passes(r, e))
			continue;
		s->n_neurons_filtered++;
		nm_add(&corr, e->corr);
		nm_add(&mse, e->mse);
		nm_add(&feve, e->feve);
		nm_add(&fev, e->var_ratio);
		nm_add(&poisson, e->poisson_loss);
		nm_add(&jack, e->jackknife);
		nm_add(&ceil, e->corr_ceiling);
	}
	s->corr_to_avg_mean = nm_get(&corr);
	s->mse_to_avg_mean = nm_get(&mse);
	s->feve_mean = nm_get(&feve);
	s->fev_mean = nm_get(&fev);
	s->poisson_loss_mean = nm_get(&poisson);
	s->jackknife_mean = nm_get(&jack);
	s->corr_ceiling_mean = nm_get(&ceil);
	trial_stats(r, true, &s->corr_by_trial_mean, &s->corr_by_trial_std);
	trial_stats(r, false, &s->mse_by_trial_mean, &s->mse_by_trial_std);
}

/* ---- the driver ------------------------------------------------------------------------------ */

static bool is_fit_split(const char *split)
{
	return split != NULL && (strcmp(split, "train") == 0 || strcmp(split, "validation") == 0);
}

/* One session's set of a split: openretina's dataloader keys are "train",
** "validation" and the test stimulus names. */
static const fv_movie_set *split_set(fv_data *d, size_t session, const char *split)
{
	if (strcmp(split, "train") == 0)
		return fv_data_train(d, session);
	if (strcmp(split, "validation") == 0)
		return fv_data_validation(d, session);
	return fv_data_test_named(d, session, split);
}

/* The samples of a set that lie within its movie and responses: the
** training chunks of openretina's MovieDataSet, which leaves out the frames
** after the last whole chunk (other splits have only whole samples). */
static fv_movie_set whole_chunks(const fv_movie_set *set)
{
	fv_movie_set v = *set;
	int64_t frames = set->movie->shape[1], resp = set->responses->shape[0];
	while (v.n_samples > 0 && (set->start_indices[v.n_samples - 1] + set->chunk_size > frames ||
	                           set->start_indices[v.n_samples - 1] + set->chunk_size > resp))
		v.n_samples--;
	return v;
}

/* The error of a split no dataloader has, listing those there are. */
static fv_status collect_splits(fv_data *d, const char *only, char ***out, size_t *n_out);

static fv_status no_such_split(fv_data *d, const char *only)
{
	fv__text t = {0};
	fv__text_printf(&t, "train, validation");
	char **names = NULL;
	size_t n = 0;
	if (collect_splits(d, NULL, &names, &n) == FV_OK)
		for (size_t i = 0; i < n; i++)
			fv__text_printf(&t, ", %s", names[i]);
	free(names);
	char *list = fv__text_take(&t, "the split names");
	fv_status rc = fv_error(FV_ERR_NOTFOUND, "data_split '%s': no such dataloader (there are: %s)",
	                        only, list ? list : "?");
	free(list);
	return rc;
}

/* The splits to evaluate: train or validation alone, or test stimulus
** names, sorted and unique. */
static fv_status collect_splits(fv_data *d, const char *only, char ***out, size_t *n_out)
{
	size_t n = 0, cap = 0;
	char **names = NULL;
	if (is_fit_split(only)) {
		names = fv__malloc(sizeof *names);
		if (names == NULL)
			return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
		names[0] = (char *)only;
		*out = names;
		*n_out = 1;
		return FV_OK;
	}
	for (size_t s = 0; s < fv_data_n_sessions(d); s++)
		for (size_t i = 0; i < fv_data_n_test(d, s); i++) {
			const char *name = fv_data_test(d, s, i)->stimulus;
			bool seen = false;
			for (size_t k = 0; k < n; k++)
				seen |= strcmp(names[k], name) == 0;
			if (seen || (only != NULL && strcmp(only, name) != 0))
				continue;
			if (!grow((void **)&names, &cap, n, sizeof *names)) {
				free(names);
				return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
			}
			names[n++] = (char *)name;
		}
	if (n == 0) {
		free(names);
		if (only != NULL)
			return no_such_split(d, only);
		return fv_error(FV_ERR_NOTFOUND, "the data set has no test stimuli (data_io.test_names)");
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: few names */
		for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
			char *tmp = names[k];
			names[k] = names[k - 1];
			names[k - 1] = tmp;
		}
	*out = names;
	*n_out = n;
	return FV_OK;
}

static char *join_names(char **names, size_t n)
{
	fv__text t = {0};
	for (size_t i = 0; i < n; i++)
		fv__text_printf(&t, "%s%s", i ? "," : "", names[i]);
	return fv__text_take(&t, "the split names");
}

static fv_status init_result(fv_eval_result *r, const fv_eval_options *o, char **splits,
                             size_t n_splits)
{
	r->var_ratio_cutoff = o->var_ratio_cutoff;
	r->keep_responses = o->keep_responses;
	r->data_info = NULL;
	r->model_path = fv__strdup(o->model_path ? o->model_path : "");
	r->model_tag = fv__strdup(o->model_tag ? o->model_tag : o->model_path ? o->model_path : "");
	r->exp_name = fv__strdup(o->exp_name ? o->exp_name : "unknown");
	r->data_split = join_names(splits, n_splits);
	if (o->species != NULL && (r->species = fv__strdup(o->species)) == NULL)
		return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	if (!r->model_path || !r->model_tag || !r->exp_name || !r->data_split)
		return fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	return FV_OK;
}

fv_status fv_evaluate(fv_module *model, fv_data *data, const fv_eval_options *o,
                      fv_eval_result **out)
{
	*out = NULL;
	char **splits = NULL;
	size_t n_splits = 0;
	fv_status rc = collect_splits(data, o->split, &splits, &n_splits);
	if (rc != FV_OK)
		return rc;
	fv_eval_result *r = fv__calloc(1, sizeof *r);
	fv_ctx *ctx = fv_ctx_new();
	if (r == NULL || ctx == NULL)
		rc = fv_error(FV_ERR_NOMEM, "evaluation: out of memory");
	if (rc == FV_OK)
		rc = init_result(r, o, splits, n_splits);
	if (r != NULL)
		r->data_info = fv_data_get_info(data);
	bool was_training = fv_module_training(model);
	fv_module_set_training(model, false);
	if (ctx != NULL)
		fv_ctx_set_grad_enabled(ctx, false);
	int64_t lag = -1;
	size_t n_sessions = 0;
	for (size_t s = 0; rc == FV_OK && s < fv_data_n_sessions(data); s++) {
		bool any = false;
		for (size_t k = 0; rc == FV_OK && k < n_splits; k++) {
			const fv_movie_set *set = split_set(data, s, splits[k]);
			if (set != NULL) {
				fv_movie_set whole = strcmp(splits[k], "train") == 0 ? whole_chunks(set) : *set;
				rc = evaluate_set(model, ctx, &whole, splits[k], &lag, r);
				any = true;
			}
		}
		n_sessions += any;
	}
	fv_module_set_training(model, was_training);
	if (r != NULL)
		r->data_info = NULL; /* owned by the data set, which may close first */
	fv_ctx_free(ctx);
	free(splits);
	if (rc != FV_OK) {
		fv_eval_result_free(r);
		return rc;
	}
	summarise(r, lag, n_sessions);
	*out = r;
	return FV_OK;
}

/* ---- output ------------------------------------------------------------------------------------ */

/* The neurons of one session whose correlation is undefined. */
typedef struct session_undefined {
	const char *session;
	int64_t nonfinite, constant;
} session_undefined;

/* Per session with any, in the order of the results; NULL with *n = 0 when
** none (or out of memory: the totals of the summary still say it). */
static session_undefined *undefined_by_session(const fv_eval_result *r, size_t *n)
{
	*n = 0;
	if (r->summary.n_neurons_nonfinite + r->summary.n_neurons_constant == 0)
		return NULL;
	session_undefined *list = fv__calloc(r->n_names + 1, sizeof *list);
	for (size_t i = 0; list != NULL && i < r->n; i++) {
		const fv_eval_neuron *e = &r->neurons[i];
		if (e->undefined == FV_EVAL_DEFINED)
			continue;
		size_t k = 0;
		while (k < *n && list[k].session != e->session)
			k++;
		if (k == *n)
			list[(*n)++].session = e->session;
		list[k].nonfinite += e->undefined == FV_EVAL_NONFINITE;
		list[k].constant += e->undefined == FV_EVAL_CONSTANT;
	}
	return list;
}

/* {"SESSION": {"non_finite": N, "constant": M}, ...} */
static json_t *undefined_json(const fv_eval_result *r)
{
	size_t n;
	session_undefined *list = undefined_by_session(r, &n);
	json_t *o = json_object();
	for (size_t k = 0; o != NULL && k < n; k++)
		if (json_object_set_new(o, list[k].session,
		                        json_pack("{s:I, s:I}", "non_finite",
		                                  (json_int_t)list[k].nonfinite, "constant",
		                                  (json_int_t)list[k].constant)) != 0) {
			json_decref(o);
			o = NULL;
		}
	free(list);
	return o;
}

static void print_undefined(const fv_eval_result *r, FILE *out)
{
	const fv_eval_summary *s = &r->summary;
	if (s->n_neurons_nonfinite + s->n_neurons_constant == 0)
		return;
	fprintf(out, "Neurons with an undefined correlation: %lld\n",
	        (long long)(s->n_neurons_nonfinite + s->n_neurons_constant));
	size_t n;
	session_undefined *list = undefined_by_session(r, &n);
	for (size_t k = 0; k < n; k++) {
		fprintf(out, "  %s:", list[k].session);
		if (list[k].nonfinite > 0)
			fprintf(out, " %lld with a non-finite prediction (NaN metrics, left out of the "
			        "means)%s", (long long)list[k].nonfinite, list[k].constant ? ";" : "");
		if (list[k].constant > 0)
			fprintf(out, " %lld with a constant prediction or response (correlation 0, as "
			        "openretina's eps gives)", (long long)list[k].constant);
		fputc('\n', out);
	}
	free(list);
}

/* pandas writes NaN as an empty field. */
static void csv_value(fv__text *t, double v)
{
	if (isnan(v))
		fv__text_printf(t, ",");
	else
		fv__text_printf(t, ",%.9g", v);
}

/* A double as Python's repr writes it: the fewest digits that read back
** the same value, positional for exponents -4 to 15, with ".0" on whole
** numbers ("100.0", "0.30000001192092896", "1e-05", "1.5e+16"). */
static void py_repr(fv__text *t, double v)
{
	if (!isfinite(v)) {
		fv__text_printf(t, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
		return;
	}
	char e[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(e, sizeof e, "%.*e", p - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/* e is [-]D[.DDD]e(+|-)XX: split it into sign, digits and exponent */
	char digits[24];
	int nd = 0, exp = atoi(strchr(e, 'e') + 1);
	bool neg = e[0] == '-';
	for (const char *c = e + neg; *c != 'e'; c++)
		if (*c != '.')
			digits[nd++] = *c;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	if (exp < -4 || exp >= 16) {
		fv__text_printf(t, "%s%c%s%se%c%02d", neg ? "-" : "", digits[0], nd > 1 ? "." : "",
		                digits + 1, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	} else if (exp < 0) {
		fv__text_printf(t, "%s0.", neg ? "-" : "");
		for (int i = 1; i < -exp; i++)
			fv__text_printf(t, "0");
		fv__text_printf(t, "%s", digits);
	} else {
		int whole = exp + 1;
		fv__text_printf(t, "%s%.*s", neg ? "-" : "", nd < whole ? nd : whole, digits);
		for (int i = nd; i < whole; i++)
			fv__text_printf(t, "0");
		fv__text_printf(t, ".%s", nd > whole ? digits + whole : "0");
	}
}

/* A session_info value: fovea keeps them as float32, so a whole number is
** written as the integer it most likely was (cell types, indices), others
** as Python writes a float. */
static void csv_info(fv__text *t, double v)
{
	if (isnan(v))
		fv__text_printf(t, ",");
	else if (v == floor(v) && fabs(v) < 1e15)
		fv__text_printf(t, ",%lld", (long long)v);
	else {
		fv__text_printf(t, ",");
		py_repr(t, v);
	}
}

/* A list cell as pandas writes a Python list: "[a, b, ...]", quoted. */
static void csv_list(fv__text *t, const double *v, int64_t n)
{
	fv__text_printf(t, ",\"[");
	for (int64_t i = 0; i < n; i++) {
		if (i > 0)
			fv__text_printf(t, ", ");
		py_repr(t, v[i]);
	}
	fv__text_printf(t, "]\"");
}

fv_status fv_eval_write_csv(const fv_eval_result *r, const char *path)
{
	fv__text t = {0};
	fv__text_printf(&t, ",session,neuron_relative_idx,data_split,poisson_loss_to_average,"
	                    "corr_to_average,mse_to_average,feve,jackknife,var_ratio,corr_ceiling");
	for (int64_t i = 0; i < r->max_trials; i++)
		fv__text_printf(&t, ",corr_%lld,mse_%lld", (long long)i, (long long)i);
	for (size_t k = 0; k < r->n_info_cols; k++)
		fv__text_printf(&t, ",%s", r->info_cols[k]);
	fv__text_printf(&t, "%s\n", r->keep_responses ? ",model_response" : "");
	for (size_t j = 0; j < r->n; j++) {
		const fv_eval_neuron *e = &r->neurons[j];
		fv__text_printf(&t, "%zu,%s,%lld,%s", j, e->session, (long long)e->index, e->split);
		csv_value(&t, e->poisson_loss);
		csv_value(&t, e->corr);
		csv_value(&t, e->mse);
		csv_value(&t, e->feve);
		csv_value(&t, e->jackknife);
		csv_value(&t, e->var_ratio);
		csv_value(&t, e->corr_ceiling);
		for (int64_t i = 0; i < r->max_trials; i++) {
			csv_value(&t, i < e->n_trials ? e->corr_by_trial[i] : NAN);
			csv_value(&t, i < e->n_trials ? e->mse_by_trial[i] : NAN);
		}
		for (size_t k = 0; k < r->n_info_cols; k++)
			csv_info(&t, k < e->n_info ? e->info[k] : NAN);
		if (r->keep_responses)
			csv_list(&t, e->response, e->n_frames);
		fv__text_printf(&t, "\n");
	}
	char *s = fv__text_take(&t, path);
	if (s == NULL)
		return FV_ERR_NOMEM;
	const void *parts[1] = {s};
	size_t sizes[1] = {strlen(s)};
	fv_status rc = fv__atomic_write(path, 1, parts, sizes);
	free(s);
	return rc;
}

/* {"NAME": count, ...} of the test stimuli. */
static json_t *per_test(const fv_dataset_stats *st, const int64_t *v)
{
	json_t *o = json_object();
	for (size_t i = 0; o != NULL && i < st->n_test; i++)
		if (json_object_set_new(o, st->test_names[i], json_integer(v[i])) != 0) {
			json_decref(o);
			o = NULL;
		}
	return o;
}

/* EvaluationSummary's dataset fields (all 0 and {} without statistics).
** openretina's n_sessions comes from DatasetStatistics too: with them it
** replaces the count of evaluated sessions. */
static int add_stats_json(json_t *summary, const fv_dataset_stats *st)
{
	if (st->n_sessions > 0 &&
	    json_object_set_new(summary, "n_sessions", json_integer(st->n_sessions)) != 0)
		return 1;
	json_t *f = per_test(st, st->unique_test_frames), *t = per_test(st, st->unique_test_transitions);
	json_t *add = json_pack("{s:I, s:I, s:I, s:o*, s:I, s:I, s:o*}",
	                        "unique_train_frames", (json_int_t)st->unique_train_frames,
	                        "unique_val_frames", (json_int_t)st->unique_val_frames,
	                        "unique_train_val_frames", (json_int_t)st->unique_train_val_frames,
	                        "unique_test_frames", f,
	                        "unique_train_transitions", (json_int_t)st->unique_train_transitions,
	                        "unique_val_transitions", (json_int_t)st->unique_val_transitions,
	                        "unique_test_transitions", t);
	int rc = add == NULL || f == NULL || t == NULL || json_object_update(summary, add) != 0;
	json_decref(add);
	return rc;
}

/* openretina's EvaluationSummary.save_json, field for field, plus
** corr_ceiling_mean; a mean over no neurons is NaN and written as null. */
fv_status fv_eval_write_summary(const fv_eval_result *r, const char *path)
{
	const fv_eval_summary *s = &r->summary;
	json_t *summary = json_pack(
		"{s:s, s:s, s:s, s:s?, s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:b,"
		" s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
		"model_path", r->model_path,
		"model_tag", r->model_tag,
		"exp_name", r->exp_name,
		"species", r->species,
		"data_split", s->data_split,
		"temporal_lag", (json_int_t)s->temporal_lag,
		"n_test_repeats_min", (json_int_t)s->n_test_repeats_min,
		"n_test_repeats_max", (json_int_t)s->n_test_repeats_max,
		"n_test_repeats_avg", fv__json_number(s->n_test_repeats_avg),
		"n_neurons_total", (json_int_t)s->n_neurons_total,
		"n_neurons_filtered", (json_int_t)s->n_neurons_filtered,
		"var_ratio_cutoff", fv__json_number(r->var_ratio_cutoff),
		"filtering_applied", (int)s->filtering_applied,
		"corr_to_avg_mean", fv__json_number(s->corr_to_avg_mean),
		"corr_by_trial_mean", fv__json_number(s->corr_by_trial_mean),
		"corr_by_trial_std", fv__json_number(s->corr_by_trial_std),
		"mse_to_avg_mean", fv__json_number(s->mse_to_avg_mean),
		"mse_by_trial_mean", fv__json_number(s->mse_by_trial_mean),
		"mse_by_trial_std", fv__json_number(s->mse_by_trial_std),
		"feve_mean", fv__json_number(s->feve_mean),
		"fev_mean", fv__json_number(s->fev_mean),
		"poisson_loss_mean", fv__json_number(s->poisson_loss_mean),
		"jackknife_mean", fv__json_number(s->jackknife_mean),
		"n_sessions", (json_int_t)s->n_sessions,
		"corr_ceiling_mean", fv__json_number(s->corr_ceiling_mean));
	if (summary != NULL && add_stats_json(summary, &r->stats) != 0) {
		json_decref(summary);
		summary = NULL;
	}
	json_t *count = json_integer(s->n_neurons_nonfinite + s->n_neurons_constant);
	json_t *by_session = undefined_json(r);
	if (summary != NULL &&
	    (count == NULL || by_session == NULL ||
	     json_object_set(summary, "n_neurons_undefined_corr", count) != 0 ||
	     json_object_set(summary, "undefined_corr_by_session", by_session) != 0)) {
		json_decref(summary);
		summary = NULL;
	}
	json_decref(count);
	json_decref(by_session);
	char *text = fv__json_dump(summary, JSON_INDENT(2), path, NULL);
	json_decref(summary);
	if (text == NULL)
		return FV_ERR_NOMEM;
	const void *parts[2] = {text, "\n"};
	size_t sizes[2] = {strlen(text), 1};
	fv_status rc = fv__atomic_write(path, 2, parts, sizes);
	free(text);
	return rc;
}

static void rule(FILE *out, char c)
{
	for (int i = 0; i < 80; i++)
		fputc(c, out);
	fputc('\n', out);
}

/* A count with thousands separators, as Python's {:,} writes it. */
static const char *grouped(int64_t v, char buf[32])
{
	char digits[24];
	int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v)), k = 0;
	if (v < 0)
		buf[k++] = '-';
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[k++] = ',';
		buf[k++] = digits[i];
	}
	buf[k] = '\0';
	return buf;
}

/* print_report's dataset section, shown when statistics were computed. */
static void print_stats(const fv_dataset_stats *st, FILE *out)
{
	char a[32], b[32];
	if (st->n_sessions == 0 && st->unique_train_val_frames == 0 && st->n_test == 0)
		return;
	rule(out, '-');
	fprintf(out, "Dataset Statistics (unique frames/frame transitions across sessions, from "
	        "dataloaders):\n  Sessions: %lld\n", (long long)st->n_sessions);
	if (st->unique_train_frames > 0 && st->unique_val_frames > 0) {
		fprintf(out, "  Training frames: %s\n", grouped(st->unique_train_frames, a));
		fprintf(out, "  Training pairwise frame transitions: %s\n",
		        grouped(st->unique_train_transitions, a));
		fprintf(out, "  Validation frames: %s\n", grouped(st->unique_val_frames, a));
		fprintf(out, "  Validation pairwise frame transitions: %s\n",
		        grouped(st->unique_val_transitions, a));
	} else {
		fprintf(out, "  Training + validation frames: %s\n",
		        grouped(st->unique_train_val_frames, a));
	}
	for (size_t i = 0; i < st->n_test; i++)
		fprintf(out, "  Test frames (%s): %s (%s transitions)\n", st->test_names[i],
		        grouped(st->unique_test_frames[i], a), grouped(st->unique_test_transitions[i], b));
}

void fv_eval_print_report(const fv_eval_result *r, FILE *out)
{
	const fv_eval_summary *s = &r->summary;
	rule(out, '=');
	fprintf(out, "Model Evaluation Results\n");
	rule(out, '=');
	fprintf(out, "Model path: %s\nData split: %s\nTemporal lag: %lld\n", r->model_path,
	        s->data_split, (long long)s->temporal_lag);
	print_stats(&r->stats, out);
	rule(out, '-');
	/* several test stimuli at once (fovea's default split): a neuron
	** counts once per stimulus, as openretina run once per split would */
	size_t n_stimuli = 1;
	for (const char *c = s->data_split; c != NULL && *c; c++)
		n_stimuli += *c == ',';
	fprintf(out, "Total neurons: %lld", (long long)s->n_neurons_total);
	if (n_stimuli > 1)
		fprintf(out, " (one row per neuron and test stimulus, %zu stimuli)", n_stimuli);
	fputc('\n', out);
	print_undefined(r, out);
	if (s->filtering_applied) {
		fprintf(out, "Variance ratio cutoff: %g\n", r->var_ratio_cutoff);
		fprintf(out, "Neurons above var_ratio threshold (>=%g): %lld\n", r->var_ratio_cutoff,
		        (long long)s->n_neurons_filtered);
	} else {
		fprintf(out, "Variance ratio cutoff: %g (NOT APPLIED - no trial/repeats data "
		        "available)\n", r->var_ratio_cutoff);
	}
	rule(out, '-');
	if (s->n_test_repeats_max <= 1)
		fprintf(out, "(Number of trials/repeats: N/A)\n");
	else if (s->n_test_repeats_min == s->n_test_repeats_max)
		fprintf(out, "(Number of trials/repeats: %lld (constant across all sessions))\n",
		        (long long)s->n_test_repeats_min);
	else
		fprintf(out, "(Number of trials/repeats: min=%lld, max=%lld, avg=%.1f)\n",
		        (long long)s->n_test_repeats_min, (long long)s->n_test_repeats_max,
		        s->n_test_repeats_avg);
	const struct {
		const char *name;
		double v;
	} rows[] = {{"Correlation", s->corr_to_avg_mean}, {"Correlation ceiling (trials)", s->corr_ceiling_mean},
	            {"MSE", s->mse_to_avg_mean},          {"FEVe", s->feve_mean},
	            {"FEV (expl. var ratio)", s->fev_mean}, {"Jackknife oracle", s->jackknife_mean},
	            {"Poisson loss", s->poisson_loss_mean}};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		fprintf(out, "  %-30s: %.3f\n", rows[i].name, rows[i].v);
	if (!isnan(s->corr_by_trial_mean))
		fprintf(out, "  %-30s: %.3f (+/-%.3f)\n", "Correlation per trial", s->corr_by_trial_mean,
		        s->corr_by_trial_std);
	rule(out, '=');
}
