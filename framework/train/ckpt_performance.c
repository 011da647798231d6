/*
** ckpt_performance.c: the test performance openretina leaves in a model's
** data_info, kept in the imported checkpoint's metadata.
**
** openretina's BaseCoreReadout.test_step adds to data_info
** "pretrained_performance_metric" ("test CorrelationLoss3d"),
** "pretrained_performance" (per session: the per-neuron correlations, a
** tensor (n,), or the evaluation loss, a 0-dim tensor) and
** "model_cut_frames"; a checkpoint saved after testing carries them.  fovea
** keeps them as the metadata string "pretrained_performance", JSON:
**   {"metric": "test CorrelationLoss3d", "model_cut_frames": 30,
**    "sessions": {"session_1": [0.61, 0.43, ...], "session_2": 0.52}}
** (members absent from the file are absent here; a tensor of one value
** with no dimensions is a number).
*/
#include <stdlib.h>

#include "fovea/ckpt.h"
#include "io/json.h"
#include "trainer_internal.h"

static json_t *value_json(const fv_pyval *v)
{
	const fv_ckpt_array *a = fv_pyval_array(v);
	double d;
	if (a == NULL)
		return fv_pyval_to_double(v, &d) == FV_OK ? fv__json_number(d) : NULL;
	if (a->ndim == 0)
		return fv__json_number(a->f32 != NULL ? a->f32[0] : (double)a->i64[0]);
	json_t *list = json_array();
	for (int64_t i = 0; list != NULL && i < a->numel; i++) {
		double x = a->f32 != NULL ? a->f32[i] : (double)a->i64[i];
		if (json_array_append_new(list, fv__json_number(x)) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static fv_status sessions_json(const fv_pyval *perf, const char *path, json_t *out)
{
	for (size_t i = 0; i < fv_pyval_len(perf); i++) {
		const char *session = fv_pyval_str(fv_pyval_key(perf, i), NULL);
		json_t *v = value_json(fv_pyval_item(perf, i));
		if (session == NULL || v == NULL || !fv__json_utf8(session)) {
			json_decref(v);
			return fv_error(FV_ERR_FORMAT, "%s: hyper_parameters.data_info."
			                "pretrained_performance: entry %zu is not a session name with a "
			                "number or a tensor of numbers", path, i);
		}
		if (json_object_set_new(out, session, v) != 0)
			return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	}
	return FV_OK;
}

fv_status fv__ckpt_performance(const fv_pyval *data_info, const char *path, char **json)
{
	*json = NULL;
	const fv_pyval *perf = fv_pyval_get(data_info, "pretrained_performance");
	const fv_pyval *metric = fv_pyval_get(data_info, "pretrained_performance_metric");
	const fv_pyval *cut = fv_pyval_get(data_info, "model_cut_frames");
	if (perf == NULL && metric == NULL && cut == NULL)
		return FV_OK;
	json_t *root = json_object(), *sessions = json_object();
	int64_t frames;
	fv_status rc = root && sessions ? FV_OK : fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	const char *name = fv_pyval_str(metric, NULL);
	if (rc == FV_OK && name != NULL && fv__json_utf8(name))
		json_object_set_new(root, "metric", json_string(name));
	if (rc == FV_OK && cut != NULL && fv_pyval_to_int(cut, &frames) == FV_OK)
		json_object_set_new(root, "model_cut_frames", json_integer(frames));
	if (rc == FV_OK && fv_pyval_kind_of(perf) == FV_PY_DICT)
		rc = sessions_json(perf, path, sessions);
	if (rc == FV_OK && json_object_set(root, "sessions", sessions) == 0)
		*json = fv__json_dump(root, JSON_COMPACT, "the pretrained performance", NULL);
	if (rc == FV_OK && *json == NULL)
		rc = fv_errcode() != FV_OK ? fv_errcode() : FV_ERR_NOMEM;
	json_decref(sessions);
	json_decref(root);
	return rc;
}
