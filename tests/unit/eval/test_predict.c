/*
** test_predict.c: fv_predict (predict.h) on an openretina checkpoint of
** tests/data/ckpt: openretina's own predictions, the same numbers from any
** layout of the stimulus, normalisation as `fovea predict` applies it, and
** every error with its message.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expect_error.h"
#include "fovea/checkpoint.h"
#include "fovea/npy.h"
#include "fovea/predict.h"
#include "fovea/trainer.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

#define CASE FOVEA_TEST_SRCDIR "/data/ckpt/hoefling_low_res_gmask"
#define SESSION "session_2_ventral2_20200626"

static fv_registry *reg;
static fv_checkpoint *ck;
static fv_module *model;
static fv_ctx *ctx;
static fv_tensor *stim; /* (2, 2, 50, 18, 16) */

static void setup(void)
{
	reg = fv_registry_new();
	cr_assert_eq(fv_registry_load_default(reg), FV_OK, "%s", fv_errmsg());
	ck = fv_checkpoint_open(CASE ".ckpt");
	cr_assert_not_null(ck, "%s", fv_errmsg());
	model = fv_model_load(reg, ck, NULL);
	cr_assert_not_null(model, "%s", fv_errmsg());
	ctx = fv_ctx_new();
	stim = fv_npy_load(CASE ".stimulus.npy");
	cr_assert_not_null(stim, "%s", fv_errmsg());
	cr_assert_eq(stim->ndim, 5);
}

static void teardown(void)
{
	fv_tensor_free(stim);
	fv_ctx_free(ctx);
	fv_module_free(model);
	fv_checkpoint_close(ck);
	fv_registry_free(reg);
}

TestSuite(predict, .init = setup, .fini = teardown);

static const fv_data_info *info(void)
{
	return fv_checkpoint_data_info(ck);
}

static fv_tensor *predict_dense(const fv_tensor *x, const char *session, unsigned flags)
{
	fv_stimulus_view v;
	fv_stimulus_view_dense(&v, x->data, x->ndim, x->shape);
	return fv_predict(model, ctx, info(), &v, session, flags);
}

/* A persistent copy of a context tensor (the next call resets nothing, but
** the copy outlives later calls' allocations). */
static fv_tensor *keep(const fv_tensor *y)
{
	cr_assert_not_null(y, "%s", fv_errmsg());
	fv_tensor *c = fv_tensor_clone(y);
	cr_assert_not_null(c);
	return c;
}

static void assert_identical(const fv_tensor *a, const fv_tensor *b)
{
	cr_assert(fv_same_shape(a, b), "shapes %s and %s", fv_shape_str(a->ndim, a->shape),
	          fv_shape_str(b->ndim, b->shape));
	cr_assert_eq(memcmp(a->data, b->data, (size_t)a->numel * sizeof(fv_real)), 0,
	             "the values differ");
}

Test(predict, gives_openretinas_responses)
{
	fv_tensor *y = keep(predict_dense(stim, SESSION, 0));
	fv_tensor *want = fv_npy_load(CASE ".expected_" SESSION ".npy");
	cr_assert_not_null(want, "%s", fv_errmsg());
	cr_assert_eq(y->numel, want->numel, "%s vs %s", fv_shape_str(y->ndim, y->shape),
	             fv_shape_str(want->ndim, want->shape));
	cr_assert_eq(y->ndim, 3);
	cr_assert_eq(y->shape[0], 2);
	for (int64_t i = 0; i < y->numel; i++)
		cr_assert(fabs(y->data[i] - want->data[i]) <= 1e-5 + 1e-4 * fabs(want->data[i]),
		          "element %lld: %g, openretina %g", (long long)i, y->data[i], want->data[i]);
	fv_tensor_free(want);
	fv_tensor_free(y);
}

Test(predict, one_movie_is_a_batch_of_one)
{
	fv_tensor *all = keep(predict_dense(stim, SESSION, 0));
	fv_stimulus_view v;
	int64_t per = stim->numel / stim->shape[0];
	fv_stimulus_view_dense(&v, stim->data + per, 4, stim->shape + 1); /* the second movie */
	fv_tensor *one = keep(fv_predict(model, ctx, info(), &v, SESSION, 0));
	cr_assert_eq(one->shape[0], 1);
	/* the same up to rounding: a batch of another size blocks the GEMMs
	** differently */
	int64_t n = one->numel;
	for (int64_t i = 0; i < n; i++)
		cr_assert(fabs(one->data[i] - all->data[n + i]) <= 1e-6 * (1 + fabs(all->data[n + i])),
		          "element %lld: %g alone, %g in the batch", (long long)i, one->data[i],
		          all->data[n + i]);
	fv_tensor_free(one);
	fv_tensor_free(all);
}

/* The stimulus stored with its axes reversed (Fortran order, as a NumPy
** transpose leaves it) and read through strides: the same bits. */
Test(predict, any_layout_gives_the_same_bits)
{
	fv_tensor *dense = keep(predict_dense(stim, SESSION, 0));
	const int64_t *s = stim->shape;
	float *f = malloc((size_t)stim->numel * sizeof *f);
	int64_t fstride[5] = {1, s[0], s[0] * s[1], s[0] * s[1] * s[2], s[0] * s[1] * s[2] * s[3]};
	int64_t i = 0;
	for (int64_t a = 0; a < s[0]; a++)
		for (int64_t b = 0; b < s[1]; b++)
			for (int64_t c = 0; c < s[2]; c++)
				for (int64_t d = 0; d < s[3]; d++)
					for (int64_t e = 0; e < s[4]; e++)
						f[a * fstride[0] + b * fstride[1] + c * fstride[2] + d * fstride[3] +
						  e * fstride[4]] = stim->data[i++];
	fv_stimulus_view v = {.data = f, .ndim = 5};
	memcpy(v.shape, s, sizeof v.shape);
	memcpy(v.strides, fstride, sizeof v.strides);
	fv_tensor *strided = keep(fv_predict(model, ctx, info(), &v, SESSION, 0));
	assert_identical(dense, strided);
	/* the data was read, not written */
	cr_assert_eq(f[1], stim->data[s[1] * s[2] * s[3] * s[4]]);
	free(f);
	fv_tensor_free(strided);
	fv_tensor_free(dense);
}

Test(predict, normalize_is_fovea_predicts)
{
	const fv_data_info *in = info();
	fv_tensor *x = fv_tensor_clone(stim);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = (fv_real)(((double)x->data[i] - in->stim_mean) / in->stim_std);
	fv_tensor *by_hand = keep(predict_dense(x, SESSION, 0));
	fv_tensor *flagged = keep(predict_dense(stim, SESSION, FV_PREDICT_NORMALIZE));
	assert_identical(by_hand, flagged);
	fv_tensor_free(flagged);
	fv_tensor_free(by_hand);
	fv_tensor_free(x);
}

Test(predict, the_only_session_needs_no_name)
{
	fv_data_info one = *info();
	one.n_sessions = 1;
	one.sessions = info()->sessions + 1; /* session_2 alone */
	fv_stimulus_view v;
	fv_stimulus_view_dense(&v, stim->data, 5, stim->shape);
	fv_tensor *unnamed = keep(fv_predict(model, ctx, &one, &v, NULL, 0));
	fv_tensor *named = keep(predict_dense(stim, SESSION, 0));
	assert_identical(unnamed, named);
	fv_tensor_free(named);
	fv_tensor_free(unnamed);
}

Test(predict, errors_say_what_is_wrong)
{
	fv_tensor *y = predict_dense(stim, NULL, 0);
	cr_assert_null(y);
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "3 sessions", "name the one");
	cr_assert_null(predict_dense(stim, "session_2_ventral2_2020062", 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOTFOUND, "no session 'session_2_ventral2_2020062'",
	             "did you mean '" SESSION "'?");
	fv_stimulus_view v;
	fv_stimulus_view_dense(&v, stim->data, 5, stim->shape);
	v.shape[3] = 17;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_SHAPE, "(2, 2, 50, 17, 16)", "(2, 18, 16)");
	v.ndim = 3;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_SHAPE, "expected (channels, time, height, width)");
	v.ndim = 9;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_SHAPE, "expected (channels, time, height, width)");
	fv_stimulus_view_dense(&v, stim->data, 5, stim->shape);
	v.shape[2] = 0;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_SHAPE, "(2, 2, 0, 18, 16)");
	v.data = NULL;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "no stimulus");
	cr_assert_null(fv_predict(NULL, ctx, info(), &v, SESSION, 0));
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "no model");
	fv_data_info bad = *info();
	bad.stim_std = 0;
	fv_stimulus_view_dense(&v, stim->data, 5, stim->shape);
	cr_assert_null(fv_predict(model, ctx, &bad, &v, SESSION, FV_PREDICT_NORMALIZE));
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "stim_std 0", "cannot normalise");
	/* without normalisation the std does not matter */
	cr_assert_not_null(fv_predict(model, ctx, &bad, &v, SESSION, 0), "%s", fv_errmsg());
}

/* A stimulus shorter than the model's temporal kernels is the model's
** error, passed on with its code. */
Test(predict, too_short_a_movie_is_the_models_error)
{
	fv_stimulus_view v;
	fv_stimulus_view_dense(&v, stim->data, 5, stim->shape);
	v.shape[2] = 3;
	v.strides[0] = stim->numel / 2; /* the original layout, fewer frames read */
	v.strides[1] = 50 * 18 * 16;
	cr_assert_null(fv_predict(model, ctx, info(), &v, SESSION, 0));
	cr_assert_neq(fv_errcode(), FV_OK);
	cr_assert_neq(fv_errmsg()[0], '\0');
}
