/*
** filter_responses.c: openretina.data_io.hoefling_2024.responses.
** filter_responses as a data step: the sessions of load_h5_into_dict's
** dict, their neurons filtered by cell type, quality indices, classifier
** confidence and, per session, by count, with openretina's verbose report
** of what each filter removed (on stdout, as its print does).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoefling.h"

typedef struct filter {
	const fv_config_node *all_responses;
	bool filter_cell_types;
	fv_int_list cell_types_list;
	double chirp_qi, d_qi;
	const char *qi_logic;
	bool filter_counts;
	int64_t count_threshold;
	double classifier_confidence;
	bool verbose;
} filter;

static const fv_option filter_options[] = {
	FV_OPT("all_responses", NODE, filter, all_responses, NULL,
	       "the sessions' dict: a data step (load_h5_into_dict)", .flags = FV_OPT_REQUIRED),
	FV_OPT("filter_cell_types", BOOL, filter, filter_cell_types, "false",
	       "keep only the cell types of cell_types_list"),
	FV_OPT("cell_types_list", INT_LIST, filter, cell_types_list, "null",
	       "the group_assignment values kept", .flags = FV_OPT_NULLABLE | FV_OPT_SCALAR_AS_LIST),
	FV_OPT("chirp_qi", FLOAT, filter, chirp_qi, "0.35", "chirp quality index threshold"),
	FV_OPT("d_qi", FLOAT, filter, d_qi, "0.6", "moving-bar (direction) quality index threshold"),
	FV_OPT("qi_logic", ENUM, filter, qi_logic, "or", "how the two thresholds combine",
	       .choices = "and|or"),
	FV_OPT("filter_counts", BOOL, filter, filter_counts, "true",
	       "drop sessions with count_threshold neurons or fewer"),
	FV_OPT("count_threshold", INT, filter, count_threshold, "10", "see filter_counts"),
	FV_OPT("classifier_confidence", FLOAT, filter, classifier_confidence, "0.25",
	       "minimum of the best group_confidences entry (null or 0: no filter)",
	       .flags = FV_OPT_NULLABLE),
	FV_OPT("verbose", BOOL, filter, verbose, "false", "print what each filter removed"),
	{0},
};

static int64_t count_neurons(const fv_dvalue *dict)
{
	int64_t n = 0;
	for (size_t i = 0; i < fv_dvalue_size(dict); i++)
		n += hoef_n_neurons(fv_dvalue_at(dict, i));
	return n;
}

/* Python's f"{x:.2%}" of a share (nan when the whole is 0, as numpy would
** make it; Python itself would raise ZeroDivisionError). */
static double share(int64_t part, int64_t whole)
{
	return whole != 0 ? 100.0 * (double)part / (double)whole : NAN;
}

static void say(bool verbose, const char *line)
{
	if (verbose)
		printf("%s\n", line);
}

#define LINE " ------------------------------------ "

/* Each session's neurons whose keep_fn holds. */
typedef fv_status (*keep_fn)(const fv_dvalue *s, const char *name, const filter *o, bool *keep,
                             int64_t n);

static fv_status mask_all(fv_dvalue *dict, const filter *o, keep_fn fn)
{
	for (size_t i = 0; i < fv_dvalue_size(dict); i++) {
		fv_dvalue *s = (fv_dvalue *)fv_dvalue_at(dict, i);
		const char *name = fv_dvalue_key_at(dict, i);
		int64_t n = hoef_n_neurons(s);
		bool *keep = malloc((size_t)(n > 0 ? n : 1));
		fv_status rc = keep != NULL ? fn(s, name, o, keep, n)
		                            : fv_error(FV_ERR_NOMEM, "out of memory");
		if (rc == FV_OK)
			rc = hoef_mask_session(s, name, keep, n);
		free(keep);
		if (rc != FV_OK)
			return rc;
	}
	hoef_drop_empty(dict);
	return FV_OK;
}

static fv_status keep_cell_types(const fv_dvalue *s, const char *name, const filter *o,
                                 bool *keep, int64_t n)
{
	const fv_tensor *g = hoef_array(s, name, "group_assignment", "filter_responses");
	for (int64_t i = 0; g != NULL && i < n; i++) {
		keep[i] = false;
		for (size_t k = 0; k < o->cell_types_list.n; k++)
			keep[i] |= g->data[i] == (fv_real)o->cell_types_list.v[k];
	}
	return g != NULL ? FV_OK : fv_errcode();
}

static fv_status keep_confident(const fv_dvalue *s, const char *name, const filter *o,
                                bool *keep, int64_t n)
{
	const fv_tensor *c = hoef_array(s, name, "group_confidences", "filter_responses");
	if (c == NULL)
		return fv_errcode();
	if (c->ndim != 2 || c->shape[0] != n || c->shape[1] == 0)
		return fv_error(FV_ERR_SHAPE, "filter_responses: session '%s': group_confidences is "
		                "%s, expected (%lld neurons, groups)", name,
		                fv_shape_str(c->ndim, c->shape), (long long)n);
	for (int64_t i = 0; i < n; i++) {
		fv_real best = c->data[i * c->shape[1]];
		for (int64_t k = 1; k < c->shape[1]; k++)
			best = c->data[i * c->shape[1] + k] > best ? c->data[i * c->shape[1] + k] : best;
		keep[i] = best >= o->classifier_confidence;
	}
	return FV_OK;
}

static void drop_small(fv_dvalue *dict, int64_t threshold)
{
	for (size_t i = fv_dvalue_size(dict); i-- > 0;)
		if (hoef_n_neurons(fv_dvalue_at(dict, i)) <= threshold)
			fv_dvalue_free(fv_dvalue_take(dict, fv_dvalue_key_at(dict, i)));
}

static fv_status by_cell_type(fv_dvalue *dict, const filter *o, int64_t original)
{
	size_t fields = fv_dvalue_size(dict);
	fv_status rc = mask_all(dict, o, keep_cell_types);
	if (rc != FV_OK)
		return rc;
	char msg[256];
	snprintf(msg, sizeof msg, "Dropped %zu fields that did not contain the target cell types "
	         "(%zu remaining)", fields - fv_dvalue_size(dict), fv_dvalue_size(dict));
	say(o->verbose, msg);
	int64_t dropped = original - count_neurons(dict);
	snprintf(msg, sizeof msg, "Overall, dropped %lld neurons of non-target cell types (-%.2f%%).",
	         (long long)dropped, share(dropped, original));
	say(o->verbose, msg);
	say(o->verbose, LINE);
	return FV_OK;
}

static fv_status by_quality(fv_dvalue *dict, const filter *o, size_t original_fields)
{
	int64_t before = count_neurons(dict);
	fv_status rc = hoef_apply_qi_mask(dict, o->d_qi, o->chirp_qi, strcmp(o->qi_logic, "and") == 0);
	if (rc != FV_OK)
		return rc;
	char msg[256];
	int64_t dropped = before - count_neurons(dict);
	snprintf(msg, sizeof msg, "Dropped %zu fields with quality indices below threshold "
	         "(%zu remaining)", original_fields - fv_dvalue_size(dict), fv_dvalue_size(dict));
	say(o->verbose, msg);
	snprintf(msg, sizeof msg, "Overall, dropped %lld neurons over quality checks (-%.2f%%).",
	         (long long)dropped, share(dropped, before));
	say(o->verbose, msg);
	say(o->verbose, LINE);
	return FV_OK;
}

static fv_status by_confidence(fv_dvalue *dict, const filter *o)
{
	int64_t before = count_neurons(dict);
	size_t fields = fv_dvalue_size(dict);
	fv_status rc = mask_all(dict, o, keep_confident);
	if (rc != FV_OK)
		return rc;
	char msg[256];
	int64_t dropped = before - count_neurons(dict);
	snprintf(msg, sizeof msg, "Dropped %zu fields with classifier confidences below %g",
	         fields - fv_dvalue_size(dict), o->classifier_confidence);
	say(o->verbose, msg);
	snprintf(msg, sizeof msg, "Overall, dropped %lld neurons with classifier confidences below "
	         "%g (-%.2f%%).", (long long)dropped, o->classifier_confidence, share(dropped, before));
	say(o->verbose, msg);
	say(o->verbose, LINE);
	return FV_OK;
}

static void by_count(fv_dvalue *dict, const filter *o)
{
	int64_t before = count_neurons(dict);
	size_t fields = fv_dvalue_size(dict);
	drop_small(dict, o->count_threshold);
	char msg[256];
	int64_t dropped = before - count_neurons(dict);
	snprintf(msg, sizeof msg, "Dropped %zu fields with less than %lld responding cells (%zu "
	         "remaining)", fields - fv_dvalue_size(dict), (long long)o->count_threshold,
	         fv_dvalue_size(dict));
	say(o->verbose, msg);
	snprintf(msg, sizeof msg, "Overall, dropped %lld neurons in fields with less than %lld "
	         "responding cells (-%.2f%%).", (long long)dropped, (long long)o->count_threshold,
	         share(dropped, before));
	say(o->verbose, msg);
}

static fv_status check_sessions(const fv_dvalue *dict)
{
	if (fv_dvalue_kind_of(dict) != FV_DV_MAP)
		return fv_error(FV_ERR_FORMAT, "filter_responses: all_responses should be a dict of "
		                "sessions");
	for (size_t i = 0; i < fv_dvalue_size(dict); i++)
		if (hoef_array(fv_dvalue_at(dict, i), fv_dvalue_key_at(dict, i), "group_assignment",
		               "filter_responses") == NULL)
			return fv_errcode();
	return FV_OK;
}

static fv_status filter_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const filter *o = fv_module_priv(m);
	fv_dvalue *dict = fv_data_input_take(in, "all_responses");
	if (dict == NULL)
		return fv_error_at(fv_data_input_spec(in), FV_ERR_CONFIG, "%s.all_responses: expected "
		                   "a data step giving the sessions' dict (load_h5_into_dict)",
		                   fv_node_keypath(fv_data_input_spec(in)));
	fv_status rc = check_sessions(dict);
	int64_t original = count_neurons(dict);
	size_t original_fields = fv_dvalue_size(dict);
	char msg[256];
	snprintf(msg, sizeof msg, "Original dataset contains %lld neurons over %zu fields",
	         (long long)original, original_fields);
	if (rc == FV_OK) {
		say(o->verbose, msg);
		say(o->verbose, LINE);
	}
	if (rc == FV_OK && o->filter_cell_types && o->cell_types_list.is_set)
		rc = by_cell_type(dict, o, original);
	if (rc == FV_OK)
		rc = by_quality(dict, o, original_fields);
	if (rc == FV_OK && !isnan(o->classifier_confidence) && o->classifier_confidence > 0.0)
		rc = by_confidence(dict, o);
	if (rc == FV_OK && o->filter_counts)
		by_count(dict, o);
	if (rc != FV_OK) {
		fv_dvalue_free(dict);
		return hoef_name_file(rc, fv_data_input_spec(in));
	}
	say(o->verbose, LINE);
	snprintf(msg, sizeof msg, "Final dataset contains %lld neurons over %zu fields",
	         (long long)count_neurons(dict), fv_dvalue_size(dict));
	say(o->verbose, msg);
	int64_t dropped = original - count_neurons(dict);
	printf("Total number of cells dropped: %lld (-%.2f%%)\n", (long long)dropped,
	       share(dropped, original));
	fflush(stdout);
	*out = dict;
	return FV_OK;
}

static const char *const filter_names[] = {
	"filter_responses", "openretina.data_io.hoefling_2024.responses.filter_responses", NULL,
};

const fv_component hoef_filter_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = filter_names,
	.doc = "Hoefling 2024 sessions filtered by cell type, quality, confidence and count",
	.options = filter_options,
	.priv_size = sizeof(filter),
	.data_step = filter_step,
};
