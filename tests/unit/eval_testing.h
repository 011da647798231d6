/*
** eval_testing.h: a trained checkpoint evaluated as `fovea eval` does it,
** for the tests that train a model and then judge it: the model rebuilt
** from the checkpoint, the data opened from the checkpoint's own config,
** and the test-set evaluation.  Every step asserts through Criterion.
*/
#ifndef FOVEA_TEST_EVAL_TESTING_H
#define FOVEA_TEST_EVAL_TESTING_H

#include <criterion/criterion.h>

#include "fovea/checkpoint.h"
#include "fovea/metrics.h"
#include "fovea/trainer.h"

typedef struct et_evaluated {
	fv_checkpoint *ck;
	fv_config *cfg;      /* the checkpoint's config */
	fv_module *model;
	fv_data *data;
	fv_eval_options opts;
	fv_eval_result *result;
} et_evaluated;

/* Evaluate the checkpoint at `path` (kept by pointer in e->opts) on the test
** set of the data its config names. */
static inline void et_evaluate(et_evaluated *e, fv_registry *reg, const char *path)
{
	*e = (et_evaluated){.opts = {.var_ratio_cutoff = 0.15, .model_path = path}};
	e->ck = fv_checkpoint_open(path);
	cr_assert_not_null(e->ck, "%s", fv_errmsg());
	e->model = fv_model_load(reg, e->ck, &e->cfg);
	cr_assert_not_null(e->model, "%s", fv_errmsg());
	fv_data_options d;
	fv_data_options_default(&d);
	const fv_config_node *root = fv_config_root(e->cfg);
	cr_assert_eq(fv_data_options_from_config(&d, fv_node_get(root, "data_io"),
	                                         fv_node_get(root, "dataloader")),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_open(&d, &e->data), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_evaluate(e->model, e->data, &e->opts, &e->result), FV_OK, "%s",
	             fv_errmsg());
}

static inline void et_free(et_evaluated *e)
{
	fv_eval_result_free(e->result);
	fv_data_close(e->data);
	fv_module_free(e->model);
	fv_config_free(e->cfg);
	fv_checkpoint_close(e->ck);
}

#endif /* FOVEA_TEST_EVAL_TESTING_H */
