/*
** masks.c: masking a session's neurons (openretina's _apply_mask_to_field,
** _apply_qi_mask and _clean_up_empty_fields in hoefling_2024/responses.py).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoefling.h"

const fv_tensor *hoef_array(const fv_dvalue *session, const char *name, const char *key,
                            const char *what)
{
	const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_get(session, key));
	if (t == NULL)
		fv_error(FV_ERR_FORMAT, "%s: session '%s' has no array '%s'%s", what, name, key,
		         fv_dvalue_get(session, key) != NULL ? " (another kind of value)" : "");
	return t;
}

int64_t hoef_n_neurons(const fv_dvalue *session)
{
	const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_get(session, "group_assignment"));
	return t != NULL ? t->shape[0] : 0;
}

/* Rows (axis 0) or columns (axis 1) of a 1-D / 2-D tensor kept. */
static fv_tensor *keep_along(const fv_tensor *t, int axis, const bool *keep)
{
	int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1, k = 0;
	int64_t n = axis == 0 ? rows : cols;
	for (int64_t i = 0; i < n; i++)
		k += keep[i];
	int64_t shape[2] = {axis == 0 ? k : rows, axis == 0 ? cols : k};
	if (t->ndim == 1)
		shape[0] = k;
	fv_tensor *out = fv_tensor_new(t->ndim, shape);
	if (out == NULL)
		return NULL;
	fv_real *dst = out->data;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			if (keep[axis == 0 ? r : c])
				*dst++ = t->data[r * cols + c];
	return out;
}

fv_status hoef_mask_session(fv_dvalue *session, const char *name, const bool *keep,
                            int64_t n_neurons)
{
	for (size_t i = 0; i < fv_dvalue_size(session); i++) {
		const char *key = fv_dvalue_key_at(session, i);
		const fv_tensor *t = fv_dvalue_tensor_of(fv_dvalue_at(session, i));
		if (t == NULL || strcmp(key, "roi_mask") == 0 || strcmp(key, "roi_coords") == 0 ||
		    t->shape[0] == 0)
			continue;
		int axis = t->ndim == 2 && t->shape[0] != n_neurons ? 1 : 0;
		if (t->ndim > 2 || t->shape[axis] != n_neurons)
			return fv_error(FV_ERR_SHAPE, "session '%s': array '%s' %s has no axis of its %lld "
			                "neurons to filter (openretina: IndexError)", name, key,
			                fv_shape_str(t->ndim, t->shape), (long long)n_neurons);
		fv_tensor *kept = keep_along(t, axis, keep);
		fv_dvalue *v = kept != NULL ? fv_dvalue_tensor(kept) : NULL;
		if (v == NULL || fv_dvalue_set(session, key, v) != FV_OK)
			return fv_errcode();
	}
	return FV_OK;
}

void hoef_drop_empty(fv_dvalue *dict)
{
	for (size_t i = fv_dvalue_size(dict); i-- > 0;)
		if (hoef_n_neurons(fv_dvalue_at(dict, i)) == 0)
			fv_dvalue_free(fv_dvalue_take(dict, fv_dvalue_key_at(dict, i)));
}

static fv_status qi_mask_session(fv_dvalue *s, const char *name, double d_qi, double chirp_qi,
                                 bool logic_and)
{
	const fv_tensor *d = hoef_array(s, name, "d_qi", "quality filter");
	const fv_tensor *c = d != NULL ? hoef_array(s, name, "chirp_qi", "quality filter") : NULL;
	int64_t n = hoef_n_neurons(s);
	if (c == NULL)
		return fv_errcode();
	if (d->numel != n || c->numel != n)
		return fv_error(FV_ERR_SHAPE, "quality filter: session '%s': d_qi has %lld values, "
		                "chirp_qi %lld, group_assignment %lld", name, (long long)d->numel,
		                (long long)c->numel, (long long)n);
	bool *keep = malloc((size_t)(n > 0 ? n : 1));
	if (keep == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (int64_t i = 0; i < n; i++) {
		bool a = d->data[i] >= d_qi, b = c->data[i] >= chirp_qi;
		keep[i] = logic_and ? a && b : a || b;
	}
	fv_status rc = hoef_mask_session(s, name, keep, n);
	free(keep);
	return rc;
}

fv_status hoef_apply_qi_mask(fv_dvalue *dict, double d_qi, double chirp_qi, bool logic_and)
{
	for (size_t i = 0; i < fv_dvalue_size(dict); i++) {
		fv_status rc = qi_mask_session((fv_dvalue *)fv_dvalue_at(dict, i),
		                               fv_dvalue_key_at(dict, i), d_qi, chirp_qi, logic_and);
		if (rc != FV_OK)
			return rc;
	}
	hoef_drop_empty(dict);
	return FV_OK;
}

/* The first file_path text under n, depth first (the responses file). */
static const char *source_file(const fv_config_node *n, int depth)
{
	if (n == NULL || depth > 16)
		return NULL;
	const char *path = fv_node_text(fv_node_get(n, "file_path"));
	for (size_t i = 0; path == NULL && i < fv_node_size(n); i++)
		path = source_file(fv_node_at(n, i), depth + 1);
	return path;
}

fv_status hoef_name_file(fv_status rc, const fv_config_node *spec)
{
	const char *file = source_file(spec, 0);
	if (rc == FV_OK || file == NULL || fv_errcode() != rc)
		return rc;
	char why[768];
	snprintf(why, sizeof why, "%s", fv_errmsg());
	return fv_error(rc, "%s: %s", file, why);
}
