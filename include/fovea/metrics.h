/*
** metrics.h: evaluating a trained model on the test stimuli of a data set
** (`fovea eval`), with openretina's metrics (openretina/eval/metrics.py,
** oracles.py and cli/eval.py).
**
** Per neuron, on the test responses aligned to the model's output (the
** first `lag` frames of every test sample, which the core consumes, are
** dropped):
**   corr_to_average   Pearson correlation of the prediction with the
**                     trial-averaged response (correlation_numpy: population
**                     std, eps 1e-8 added to each std)
**   mse_to_average, poisson_loss_to_average (mean over time of
**                     pred - target * log(pred + 1e-16))
**   where the test responses have trials (R > 1):
**   var_ratio         explainable / total variance (explainable_vs_total_var)
**   feve              fraction of explainable variance explained
**   jackknife         leave-one-out oracle correlation
**   corr_ceiling      fovea's addition: the correlation with the trial
**                     average that a perfect model (the true rate) would
**                     reach, sqrt(ev / (ev + noise / R)) from the same
**                     variance estimates
**   corr_<i>, mse_<i> the prediction against trial i.
** The summary averages the neurons whose var_ratio reaches var_ratio_cutoff
** (all neurons when no var_ratio exists), as openretina's EvaluationSummary.
**
** Arrays are row-major doubles: a (T, N) response has time along rows; a
** trial-resolved one is (R, T, N), trials first, as data.h stores them.
*/
#ifndef FOVEA_METRICS_H
#define FOVEA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "fovea.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the metrics ---------------------------------------------------------------- */

/* Per column of two (T, N) arrays. */
FV_API void fv_metric_correlation(int64_t t, int64_t n, const double *a, const double *b,
                                  double *out);
FV_API void fv_metric_mse(int64_t t, int64_t n, const double *a, const double *b, double *out);
FV_API void fv_metric_poisson(int64_t t, int64_t n, const double *target, const double *pred,
                              double *out);
/* explainable_vs_total_var of trials (R, T, N), R >= 2: var_ratio,
** explainable_var and noise_var (the mean over time of the variance over
** trials) per neuron; any output may be NULL. */
FV_API void fv_metric_explainable_var(int64_t r, int64_t t, int64_t n, const double *trials,
                                      double *var_ratio, double *explainable_var,
                                      double *noise_var);
/* feve of trials (R, T, N) and a prediction (T, N). */
FV_API void fv_metric_feve(int64_t r, int64_t t, int64_t n, const double *trials,
                           const double *pred, double *out);
/* oracle_corr_jackknife of trials (R, T, N). */
FV_API void fv_metric_jackknife(int64_t r, int64_t t, int64_t n, const double *trials,
                                double *out);
/* global_mean_oracle of responses (R, T, N) (R = 1 for (T, N)): per neuron,
** the correlation over all (trial, frame) pairs with the mean over neurons
** of the same pair.  NaN for every neuron when out of memory. */
FV_API void fv_metric_global_mean_oracle(int64_t r, int64_t t, int64_t n, const double *trials,
                                         double *out);
/* The correlation ceiling of the trial average (see above). */
FV_API void fv_metric_corr_ceiling(int64_t r, int64_t t, int64_t n, const double *trials,
                                   double *out);

/* ---- evaluating a model ----------------------------------------------------------- */

typedef struct fv_eval_options {
	const char *split;        /* train, validation or one test stimulus name;
	                             NULL: every test stimulus */
	double var_ratio_cutoff;  /* openretina's default 0.15 */
	const char *model_path;   /* for the summary */
	const char *model_tag;    /* NULL: model_path */
	const char *exp_name;     /* NULL: "unknown" */
	bool keep_responses;      /* keep each neuron's prediction (model_response) */
	const char *species;      /* NULL: none (null in the summary) */
} fv_eval_options;

/* A correlation is undefined where a series has no variance or is not
** finite.  openretina's eps makes it 0 for a constant series (kept in the
** means, as there); a non-finite prediction (NaN weights, an overflowing
** model) makes every metric of the neuron NaN, left out of the means.
** Either way the neuron is counted and reported, never silently dropped. */
typedef enum fv_eval_undefined {
	FV_EVAL_DEFINED = 0,
	FV_EVAL_NONFINITE, /* the prediction is NaN or infinite somewhere */
	FV_EVAL_CONSTANT,  /* the prediction or the trial-averaged response is constant */
} fv_eval_undefined;

typedef struct fv_eval_neuron {
	const char *session;
	const char *split;
	int64_t index;            /* within the session */
	double poisson_loss, corr, mse, feve, jackknife, var_ratio, corr_ceiling;
	int64_t n_trials;
	double *corr_by_trial;    /* n_trials values, or NULL */
	double *mse_by_trial;
	fv_eval_undefined undefined; /* whether corr is defined, and why not */
	double *response;         /* keep_responses: the n_frames aligned predictions */
	int64_t n_frames;
	/* The session's session_info values of this neuron, as openretina adds
	** session_kwargs to each row: info[k] belongs to the column
	** fv_eval_info_column(k); NaN (or k >= n_info) where the session lacks it. */
	double *info;
	size_t n_info;
} fv_eval_neuron;

typedef struct fv_eval_summary {
	const char *data_split;
	int64_t temporal_lag;
	int64_t n_test_repeats_min, n_test_repeats_max;
	double n_test_repeats_avg;
	int64_t n_neurons_total, n_neurons_filtered;
	bool filtering_applied;
	double corr_to_avg_mean, corr_by_trial_mean, corr_by_trial_std;
	double mse_to_avg_mean, mse_by_trial_mean, mse_by_trial_std;
	double feve_mean, fev_mean, poisson_loss_mean, jackknife_mean;
	double corr_ceiling_mean;
	int64_t n_sessions;
	/* neurons (rows) whose correlation is undefined, by cause */
	int64_t n_neurons_nonfinite, n_neurons_constant;
} fv_eval_summary;

typedef struct fv_eval_result fv_eval_result;

/* ---- openretina's evaluation config (configs/evaluation/default.yaml) ------------ */

typedef struct fv_eval_config {
	const char *model_path;           /* required: the checkpoint */
	const char *model_tag;            /* null: model_path */
	const char *data_split;           /* train, validation, test or a test stimulus name */
	bool add_responses_to_model_results; /* a model_response column in the CSV */
	const char *model_results_path;   /* the per-neuron CSV; null: not written */
	const char *summary_results_path; /* the summary JSON; null: not written */
	double var_ratio_cutoff;
	bool compute_dataset_statistics;  /* unique frames and transitions per split */
} fv_eval_config;

/* The option table of the `evaluation` node (`fovea describe Evaluation`). */
FV_API const fv_option *fv_eval_config_options(void);
/* Parse the `evaluation` node of a composed config; errors name the key.
** The strings belong to the config. */
FV_API fv_status fv_eval_config_parse(const fv_config_node *evaluation, fv_eval_config *out);

/* ---- dataset statistics (openretina's DatasetStatistics) -------------------------
** Unique frames and consecutive-frame transitions the dataloaders show, a
** frame known by its fingerprint (mean, std with ddof 1, first, last and
** an off-centre pixel: channel 0, row H/2, column W/3) as openretina's
** compute_dataloader_statistics counts them: the training batches over
** `train_passes` epochs (openretina: 10, for the random shifts), the
** validation and each test stimulus's batches once. */
typedef struct fv_dataset_stats {
	int64_t unique_train_frames, unique_val_frames, unique_train_val_frames;
	int64_t unique_train_transitions, unique_val_transitions;
	size_t n_test;
	char **test_names;                 /* sorted */
	int64_t *unique_test_frames, *unique_test_transitions;
	int64_t n_sessions;
} fv_dataset_stats;

FV_API fv_status fv_dataset_statistics(fv_data *d, uint64_t seed, int train_passes,
                                       fv_dataset_stats *out);
FV_API void fv_dataset_stats_free(fv_dataset_stats *s);

/* Run `model` (in eval mode, without grad) on the test stimuli of `data`
** and compute every metric.  Errors name the session and stimulus. */
FV_API fv_status fv_evaluate(fv_module *model, fv_data *data, const fv_eval_options *o,
                             fv_eval_result **out);
FV_API void fv_eval_result_free(fv_eval_result *r);
/* Attach dataset statistics to the summary, its JSON and the report (the
** result takes them over; `s` is left empty). */
FV_API void fv_eval_set_dataset_stats(fv_eval_result *r, fv_dataset_stats *s);
FV_API size_t fv_eval_n_neurons(const fv_eval_result *r);
FV_API const fv_eval_neuron *fv_eval_neuron_at(const fv_eval_result *r, size_t i);
FV_API const fv_eval_summary *fv_eval_get_summary(const fv_eval_result *r);
/* The session_info columns of the per-neuron table, in order of first use. */
FV_API size_t fv_eval_n_info_columns(const fv_eval_result *r);
FV_API const char *fv_eval_info_column(const fv_eval_result *r, size_t k);
/* One row per neuron (pandas' to_csv layout: an index column first). */
FV_API fv_status fv_eval_write_csv(const fv_eval_result *r, const char *path);
/* EvaluationSummary.save_json's fields plus corr_ceiling_mean and the
** neurons with an undefined correlation (in all and per session). */
FV_API fv_status fv_eval_write_summary(const fv_eval_result *r, const char *path);
/* The report openretina's print_report prints, plus a line per session
** with neurons whose correlation is undefined. */
FV_API void fv_eval_print_report(const fv_eval_result *r, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_METRICS_H */
