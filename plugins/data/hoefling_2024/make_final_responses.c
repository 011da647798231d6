/*
** make_final_responses.c: openretina.data_io.hoefling_2024.responses.
** make_final_responses as a data step: every session's traces upsampled
** to the stimulus frames (upsample_all_responses), the quality mask when
** d_qi or chirp_qi is given, and the natural movie's recording cut as
** compute_test_responses cuts it: clips 0-4, 59-63 and 118-122 are the
** three repeats of the test movie, the 108 others the training movie.
** Each session becomes a ResponsesTrainTestSplit with its session_kwargs
** (eye, scan_sequence_idx, group_assignment, roi_ids, roi_mask).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hoefling.h"
#include "upsample.h"

typedef struct final {
	const fv_config_node *data_dict;
	const char *response_type, *trace_type, *qi_logic;
	double d_qi, chirp_qi, scale_traces;
	bool norm_by_std;
} final;

static const fv_option final_options[] = {
	FV_OPT("data_dict", NODE, final, data_dict, NULL,
	       "the sessions' dict: a data step (filter_responses)", .flags = FV_OPT_REQUIRED),
	FV_OPT("response_type", ENUM, final, response_type, "natural", "the stimulus",
	       .choices = "natural|chirp|mb"),
	FV_OPT("trace_type", ENUM, final, trace_type, "spikes", "which traces are upsampled",
	       .choices = "spikes|raw|preprocessed|detrended"),
	FV_OPT("d_qi", FLOAT, final, d_qi, "null", "quality threshold (null: none)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("chirp_qi", FLOAT, final, chirp_qi, "null", "quality threshold (null: none)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("qi_logic", ENUM, final, qi_logic, "or", "how the thresholds combine",
	       .choices = "and|or"),
	FV_OPT("scale_traces", FLOAT, final, scale_traces, "1.0", "factor on the final responses"),
	FV_OPT("norm_by_std", BOOL, final, norm_by_std, "true",
	       "divide each upsampled trace by its std"),
	{0},
};

#define N_TEST_CLIPS 5
#define N_RECORDED_CLIPS (HOEF_NUM_CLIPS + 3 * N_TEST_CLIPS)

static int stim_id_of(const char *type)
{
	return strcmp(type, "natural") == 0 ? 5 : strcmp(type, "chirp") == 0 ? 1 : 2;
}

static const fv_tensor *need(const fv_dvalue *s, const char *name, const char *key)
{
	return hoef_array(s, name, key, "make_final_responses");
}

/* The traces of trace_type, as doubles (detrended: raw - smoothed). */
static double *read_traces(const fv_dvalue *s, const char *name, const final *o, int64_t *rows,
                           int64_t *cols)
{
	char key[96], key2[96];
	const fv_tensor *a, *b = NULL;
	if (strcmp(o->trace_type, "spikes") == 0) {
		snprintf(key, sizeof key, "%s_inferred_spikes", o->response_type);
		if (fv_dvalue_get(s, key) == NULL) /* the newer exports' name */
			snprintf(key, sizeof key, "%s_spikes", o->response_type);
	} else if (strcmp(o->trace_type, "detrended") == 0) {
		snprintf(key, sizeof key, "%s_raw_traces", o->response_type);
		snprintf(key2, sizeof key2, "%s_smoothed_traces", o->response_type);
		if ((b = need(s, name, key2)) == NULL)
			return NULL;
	} else {
		snprintf(key, sizeof key, "%s_%s_traces", o->response_type, o->trace_type);
	}
	if ((a = need(s, name, key)) == NULL)
		return NULL;
	if (a->ndim != 2 || (b != NULL && (b->ndim != 2 || b->numel != a->numel))) {
		fv_error(FV_ERR_SHAPE, "make_final_responses: session '%s': '%s' is %s, expected "
		         "(neurons, samples)%s", name, key, fv_shape_str(a->ndim, a->shape),
		         b != NULL ? " as its smoothed traces" : "");
		return NULL;
	}
	double *v = malloc((size_t)(a->numel > 0 ? a->numel : 1) * sizeof *v);
	for (int64_t i = 0; v != NULL && i < a->numel; i++) {
		v[i] = (double)a->data[i] - (b != NULL ? (double)b->data[i] : 0.0);
		if (isnan(v[i])) {
			fv_error(FV_ERR_FORMAT, "make_final_responses: session '%s': '%s' holds NaN "
			         "(neuron %lld, sample %lld)", name, key, (long long)(i / a->shape[1]),
			         (long long)(i % a->shape[1]));
			free(v);
			return NULL;
		}
	}
	if (v == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory");
	*rows = a->shape[0];
	*cols = a->shape[1];
	return v;
}

/* The sample times: <type>_traces_times, else t0 + k * dt of the newer exports. */
static double *read_times(const fv_dvalue *s, const char *name, const final *o, int64_t rows,
                          int64_t cols)
{
	char key[96], key2[96];
	snprintf(key, sizeof key, "%s_traces_times", o->response_type);
	const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_get(s, key)), *t0 = NULL, *dt = NULL;
	if (t == NULL) {
		snprintf(key, sizeof key, "%s_traces_t0", o->response_type);
		snprintf(key2, sizeof key2, "%s_traces_dt", o->response_type);
		if ((t0 = need(s, name, key)) == NULL || (dt = need(s, name, key2)) == NULL)
			return NULL;
	}
	if ((t != NULL && (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)) ||
	    (t0 != NULL && (t0->numel != rows || dt->numel != rows))) {
		fv_error(FV_ERR_SHAPE, "make_final_responses: session '%s': '%s' does not match the "
		         "traces (%lld neurons, %lld samples)", name, key, (long long)rows,
		         (long long)cols);
		return NULL;
	}
	double *v = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof *v);
	for (int64_t i = 0; v != NULL && i < rows * cols; i++)
		v[i] = t != NULL ? (double)t->data[i]
		                 : (double)(i % cols) * (double)dt->data[i / cols] +
		                           (double)t0->data[i / cols];
	if (v == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory");
	return v;
}

/* responses_final of one session: (neurons, frames) doubles. */
static fv_status upsample_session(const fv_dvalue *s, const char *name, const final *o,
                                  double **out, int64_t *rows, int64_t *frames)
{
	char key[96];
	snprintf(key, sizeof key, "%s_trigger_times", o->response_type);
	const fv_tensor *trig = need(s, name, key);
	if (trig == NULL)
		return fv_errcode();
	if (trig->ndim != 2 || trig->shape[1] == 0)
		return fv_error(FV_ERR_SHAPE, "make_final_responses: session '%s': '%s' is %s, "
		                "expected (rows, triggers): the first row is used", name, key,
		                fv_shape_str(trig->ndim, trig->shape));
	int64_t cols = 0;
	double *traces = read_traces(s, name, o, rows, &cols);
	double *times = traces != NULL ? read_times(s, name, o, *rows, cols) : NULL;
	double *x = times != NULL ? hoef_upsampled_times(stim_id_of(o->response_type), trig->data,
	                                                 trig->shape[1], frames) : NULL;
	double *res = x != NULL ? malloc((size_t)(*rows * *frames > 0 ? *rows * *frames : 1) *
	                                 sizeof *res) : NULL;
	double *scratch = res != NULL ? malloc((size_t)(*frames > 0 ? *frames : 1) * sizeof *scratch)
	                              : NULL;
	fv_status rc = scratch != NULL ? FV_OK
	               : times != NULL ? fv_error(FV_ERR_NOMEM, "out of memory") : fv_errcode();
	for (int64_t i = 0; rc == FV_OK && i < *rows; i++) {
		double *r = res + i * *frames;
		if (cols == 0) {
			rc = fv_error(FV_ERR_SHAPE, "make_final_responses: session '%s': no samples", name);
			break;
		}
		hoef_interp(x, *frames, times + i * cols, traces + i * cols, cols, r);
		double sd = o->norm_by_std ? hoef_std(r, *frames, scratch) : 1.0;
		for (int64_t k = 0; k < *frames; k++)
			r[k] = (o->norm_by_std ? r[k] / sd : r[k]) * o->scale_traces;
	}
	free(traces);
	free(times);
	free(x);
	free(scratch);
	if (rc != FV_OK) {
		free(res);
		res = NULL;
	}
	*out = res;
	return rc;
}

/* Frames [from, from + n) of every neuron's row into dst (neurons, n) at column `at`. */
static void copy_span(fv_real *dst, int64_t dst_cols, int64_t at, const double *src,
                      int64_t src_cols, int64_t from, int64_t n, int64_t rows)
{
	for (int64_t i = 0; i < rows; i++)
		for (int64_t k = 0; k < n; k++)
			dst[i * dst_cols + at + k] = (fv_real)src[i * src_cols + from + k];
}

static fv_status kwarg(fv_dvalue *kw, const fv_dvalue *s, const char *name, const char *key)
{
	const fv_dvalue *v = fv_dvalue_get(s, key);
	if (v == NULL)
		return fv_error(FV_ERR_FORMAT, "make_final_responses: session '%s' has no '%s' (a "
		                "session_kwargs entry)", name, key);
	return fv_dvalue_set(kw, key, fv_dvalue_copy(v));
}

/* compute_test_responses (natural) and the ResponsesTrainTestSplit. */
static fv_status split_session(const fv_dvalue *s, const char *name, const double *r,
                               int64_t rows, int64_t frames, const char *stim, fv_dvalue **out)
{
	const int64_t L = HOEF_CLIP_LENGTH, test = N_TEST_CLIPS * L;
	if (frames != N_RECORDED_CLIPS * L)
		return fv_error(FV_ERR_SHAPE, "make_final_responses: session '%s': %lld upsampled "
		                "frames, expected %d clips of %lld (natural_trigger_times should hold "
		                "%d triggers)", name, (long long)frames, N_RECORDED_CLIPS, (long long)L,
		                N_RECORDED_CLIPS);
	fv_tensor *train = fv_tensor_new(2, (int64_t[]){rows, HOEF_NUM_CLIPS * L});
	fv_tensor *avg = fv_tensor_new(2, (int64_t[]){rows, test});
	fv_tensor *trials = fv_tensor_new(3, (int64_t[]){3, rows, test});
	fv_dvalue *test_dict = fv_dvalue_map(NULL), *by_trial = fv_dvalue_map(NULL);
	fv_dvalue *kw = fv_dvalue_map(NULL);
	fv_status rc = train && avg && trials && test_dict && by_trial && kw ? FV_OK : fv_errcode();
	static const int64_t starts[3] = {0, 59, 118};
	for (int k = 0; rc == FV_OK && k < 3; k++)
		copy_span(trials->data + k * rows * test, test, 0, r, frames, starts[k] * L, test, rows);
	for (int64_t i = 0; rc == FV_OK && i < rows; i++)
		for (int64_t k = 0; k < test; k++) {
			const double *row = r + i * frames + k;
			avg->data[i * test + k] = (fv_real)(((row[0] + row[starts[1] * L]) +
			                                      row[starts[2] * L]) / 3.0);
		}
	if (rc == FV_OK) {
		copy_span(train->data, train->shape[1], 0, r, frames, 5 * L, 54 * L, rows);
		copy_span(train->data, train->shape[1], 54 * L, r, frames, 64 * L, 54 * L, rows);
	}
	static const char *const keys[] = {"eye", "scan_sequence_idx", "group_assignment",
	                                   "roi_ids", "roi_mask"};
	for (size_t k = 0; rc == FV_OK && k < sizeof keys / sizeof keys[0]; k++)
		rc = kwarg(kw, s, name, keys[k]);
	if (rc == FV_OK) {
		rc = fv_dvalue_set(test_dict, "test", fv_dvalue_tensor(avg));
		avg = NULL;
	}
	if (rc == FV_OK) {
		rc = fv_dvalue_set(by_trial, "test", fv_dvalue_tensor(trials));
		trials = NULL;
	}
	if (rc != FV_OK) {
		fv_tensor_free(train);
		fv_tensor_free(avg);
		fv_tensor_free(trials);
		fv_dvalue_free(test_dict);
		fv_dvalue_free(by_trial);
		fv_dvalue_free(kw);
		return rc;
	}
	*out = fv_dvalue_responses_split(train, test_dict, by_trial, stim, kw);
	return *out != NULL ? FV_OK : fv_errcode();
}

/* One session: upsampled, then split. */
static fv_status final_session(const fv_dvalue *s, const char *name, const final *o,
                               fv_dvalue **split)
{
	double *r = NULL;
	int64_t rows = 0, frames = 0;
	fv_status rc = upsample_session(s, name, o, &r, &rows, &frames);
	if (rc == FV_OK)
		rc = split_session(s, name, r, rows, frames, o->response_type, split);
	free(r);
	return rc;
}

static fv_status final_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const final *o = fv_module_priv(m);
	const fv_config_node *spec = fv_data_input_spec(in);
	if (strcmp(o->response_type, "natural") != 0)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.response_type: '%s' responses have no "
		                   "test clips; openretina's make_final_responses fails on them too "
		                   "(ResponsesTrainTestSplit refuses a 0-d test response)",
		                   fv_node_keypath(spec), o->response_type);
	fv_dvalue *dict = fv_data_input_take(in, "data_dict");
	if (fv_dvalue_kind_of(dict) != FV_DV_MAP) {
		fv_dvalue_free(dict);
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.data_dict: expected a data step giving "
		                   "the sessions' dict (filter_responses)", fv_node_keypath(spec));
	}
	/* openretina masks after upsampling; each trace is upsampled and
	** normalised on its own, so masking first gives the same neurons and
	** keeps the float64 values to the split. */
	double d_qi = isnan(o->d_qi) ? 0.0 : o->d_qi, chirp_qi = isnan(o->chirp_qi) ? 0.0 : o->chirp_qi;
	fv_status rc = FV_OK;
	if (d_qi > 0.0 || chirp_qi > 0.0)
		rc = hoef_apply_qi_mask(dict, d_qi, chirp_qi, strcmp(o->qi_logic, "and") == 0);
	fv_dvalue *result = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (rc == FV_OK && result == NULL)
		rc = fv_errcode();
	for (size_t i = 0; rc == FV_OK && i < fv_dvalue_size(dict); i++) {
		fv_dvalue *split = NULL;
		rc = final_session(fv_dvalue_at(dict, i), fv_dvalue_key_at(dict, i), o, &split);
		if (rc == FV_OK)
			rc = fv_dvalue_set(result, fv_dvalue_key_at(dict, i), split);
	}
	fv_dvalue_free(dict);
	if (rc != FV_OK) {
		fv_dvalue_free(result);
		return hoef_name_file(rc, spec);
	}
	*out = result;
	return FV_OK;
}

static const char *const final_names[] = {
	"make_final_responses", "openretina.data_io.hoefling_2024.responses.make_final_responses",
	NULL,
};

const fv_component hoef_final_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = final_names,
	.doc = "Hoefling 2024 traces upsampled to the movie frames, split into train and test",
	.options = final_options,
	.priv_size = sizeof(final),
	.data_step = final_step,
};
