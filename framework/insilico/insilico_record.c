/*
** insilico_record.c: the files one optimisation of the pipeline leaves:
**   STEM.npy   the stimulus (channels, time, height, width), float32, in
**              the model's normalised units (`fovea predict --raw` takes it)
**   STEM.png   fv_figure_stimulus
**   STEM.json  the record: what was optimised, the objective and loss per
**              iteration, time per iteration, the final objective and the
**              unit's response, the peak pixel, and the config used.
** Each is written atomically (temporary file, rename).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/figure.h"
#include "fovea/npy.h"
#include "insilico/insilico_internal.h"
#include "io/json.h"

json_t *fv__ins_json_indices(const fv_indices *ix)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < ix->n; i++)
		if (json_array_append_new(a, json_integer(ix->v[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/* JSON has no NaN or infinity: null stands for "none". */
static json_t *number(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *numbers(const double *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, number(v[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

json_t *fv__ins_json_off_clusters(const fv_insilico_job *job)
{
	json_t *a = json_array();
	for (size_t k = 0; a != NULL && k < job->n_off; k++)
		if (json_array_append_new(a, fv__ins_json_indices(&job->off[k])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/* What was optimised: the unit, or the clusters. */
static bool put_target(json_t *r, const fv__ins *s, const fv__ins_stimulus *st)
{
	const fv_insilico_job *job = s->job;
	switch (job->kind) {
	case FV_INSILICO_MEI:
		return json_object_set_new(r, "neuron", json_integer(st->unit)) == 0;
	case FV_INSILICO_INNER_MEI:
		return json_object_set_new(r, "layer", json_string(job->layer)) == 0 &&
		       json_object_set_new(r, "channel", json_integer(st->unit)) == 0;
	case FV_INSILICO_MDS:
		return json_object_set_new(r, "on_cluster", fv__ins_json_indices(&job->on)) == 0 &&
		       json_object_set_new(r, "off_clusters", fv__ins_json_off_clusters(job)) == 0;
	}
	return false;
}

/* The unit's response: the objective at the final stimulus, the
** checkpoint's mean recorded response (neurons), the mean predicted
** response to the reference movie, the response over time. */
static bool put_response(json_t *r, const fv__ins *s, const fv__ins_stimulus *st)
{
	bool ok = json_object_set_new(r, "response", number(st->final_objective)) == 0;
	if (s->job->kind == FV_INSILICO_MEI) {
		const fv_tensor *mean = s->info->mean_activity ? s->info->mean_activity[s->session_index]
		                                                : NULL;
		ok = ok && json_object_set_new(r, "mean_activity",
		                               number(mean ? (double)mean->data[st->unit] : NAN)) == 0;
	}
	double ref = s->reference_mean ? s->reference_mean[st->unit] : NAN;
	return ok && json_object_set_new(r, "reference_mean_response", number(ref)) == 0 &&
	       json_object_set_new(r, "response_trace",
	                           numbers(st->response_trace, (size_t)st->n_response)) == 0;
}

static json_t *record(const fv__ins *s, const fv__ins_stimulus *st)
{
	const fv_insilico_job *job = s->job;
	const int64_t *sh = st->x->shape;
	double per_iteration = st->n ? st->total_seconds / (double)st->n : NAN;
	const char *command = job->kind == FV_INSILICO_MDS ? "mds" : "mei";
	json_t *r = json_pack("{s:s, s:s, s:s}", "command", command, "checkpoint", job->checkpoint,
	                      "session", s->session);
	bool ok = r != NULL && put_target(r, s, st);
	ok = ok && json_object_update_new(
	               r, json_pack("{s:I, s:[IIII], s:I, s:o, s:o, s:o}", "seed",
	                            (json_int_t)job->seed, "stimulus_shape", (json_int_t)sh[1],
	                            (json_int_t)sh[2],
	                            (json_int_t)sh[3], (json_int_t)sh[4], "iterations",
	                            (json_int_t)st->n, "seconds", number(st->total_seconds),
	                            "seconds_per_iteration", number(per_iteration),
	                            "final_objective", number(st->final_objective))) == 0;
	ok = ok && (st->unit < 0 || put_response(r, s, st));
	ok = ok && json_object_update_new(
	               r, json_pack("{s:I, s:I, s:I}", "peak_channel", (json_int_t)st->peak[0],
	                            "peak_row", (json_int_t)st->peak[1], "peak_col",
	                            (json_int_t)st->peak[2])) == 0;
	ok = ok && json_object_update_new(
	               r, json_pack("{s:o, s:o, s:o}", "objective_trace", numbers(st->objective, st->n),
	                            "loss_trace", numbers(st->loss, st->n), "iteration_seconds",
	                            numbers(st->seconds, st->n))) == 0;
	char *yaml = ok ? fv_config_to_yaml(s->cfg) : NULL;
	ok = ok && yaml != NULL && json_object_set_new(r, "config", json_string(yaml)) == 0;
	free(yaml);
	if (!ok) {
		json_decref(r);
		fv_error(FV_ERR_NOMEM, "%s.json: out of memory, or a name or the config is not UTF-8",
		         st->stem);
		return NULL;
	}
	return r;
}

static fv_status write_record(const fv__ins *s, const fv__ins_stimulus *st, const char *path)
{
	json_t *r = record(s, st);
	char *text = fv__json_dump_outline(r, 1, JSON_REAL_PRECISION(9), "the record", NULL);
	json_decref(r);
	if (text == NULL)
		return FV_ERR_NOMEM;
	const void *parts[1] = {text};
	size_t sizes[1] = {strlen(text)};
	fv_status rc = fv__atomic_write(path, 1, parts, sizes);
	free(text);
	return rc;
}

fv_status fv__ins_write(const fv__ins *s, const fv__ins_stimulus *st)
{
	char path[4200];
	if (snprintf(path, sizeof path, "%s/%s.json", s->dir, st->stem) >= (int)sizeof path)
		return fv_error(FV_ERR_ARG, "%s/%s: the output path is too long", s->dir, st->stem);
	const fv_tensor *x = st->x;
	/* NaN weights (or an optimisation that diverged) give a NaN stimulus;
	** a file of NaN looks like a result, so none is written. */
	int64_t bad = 0;
	for (int64_t i = 0; i < x->numel; i++)
		bad += !isfinite(x->data[i]);
	if (bad > 0)
		return fv_error(FV_ERR_ARG, "%s: %s: %lld of the %lld stimulus values are not finite "
		                "(NaN weights in the checkpoint?); nothing written", s->job->checkpoint,
		                st->stem, (long long)bad, (long long)x->numel);
	snprintf(path, sizeof path, "%s/%s.npy", s->dir, st->stem);
	fv_status rc = fv_npy_save_data(path, 4, x->shape + 1, x->data);
	snprintf(path, sizeof path, "%s/%s.png", s->dir, st->stem);
	if (rc == FV_OK)
		rc = fv_figure_stimulus(x, st->title, 10, path);
	snprintf(path, sizeof path, "%s/%s.json", s->dir, st->stem);
	return rc == FV_OK ? write_record(s, st, path) : rc;
}
