/*
** test_ops_shape.c: fv_reshape, fv_permute, fv_slice, fv_pad, fv_concat,
** fv_index_select, fv_expand.
**
** Inputs are filled with 0, 1, 2, ... so that an output element names the
** source element it came from; expected outputs are written out by hand.
** Gradients by hand where elements repeat (index_select with repeated
** indices, expand) and by finite differences for every op.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

/* 0, 1, 2, ... in the given shape */
static fv_tensor *iota(fv_ctx *ctx, int ndim, const int64_t *shape)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	cr_assert_not_null(t, "%s", fv_errmsg());
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)i;
	return t;
}

static void expect_exact(const fv_tensor *t, int ndim, const int64_t *shape, const double *want)
{
	cr_assert_not_null(t, "op failed: %s", fv_errmsg());
	cr_assert_eq(t->ndim, ndim, "ndim %d, expected %d", t->ndim, ndim);
	for (int d = 0; d < ndim; d++)
		cr_assert_eq(t->shape[d], shape[d], "dim %d: %lld, expected %lld", d,
		             (long long)t->shape[d], (long long)shape[d]);
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert_eq(t->data[i], (fv_real)want[i], "[%lld] = %g, expected %g", (long long)i,
		             (double)t->data[i], want[i]);
}

/* ---- reshape ------------------------------------------------------------------------ */

Test(shape, reshape_is_a_view_and_infers)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 3, (int64_t[]){2, 3, 4});
	fv_tensor *y = fv_reshape(ctx, x, 2, (int64_t[]){-1, 6});
	expect_exact(y, 2, (int64_t[]){4, 6}, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
	                                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	                                                  22, 23});
	cr_assert_eq(y->data, x->data, "reshape shares its source's data");
	fv_tensor *s = fv_reshape(ctx, fv_sum_all(ctx, x), 3, (int64_t[]){1, 1, 1});
	expect_exact(s, 3, (int64_t[]){1, 1, 1}, (double[]){276});
	fv_tensor *e = fv_reshape(ctx, fv_ctx_zeros(ctx, 1, (int64_t[]){0}), 2, (int64_t[]){3, 0});
	cr_assert_not_null(e, "%s", fv_errmsg());
	fv_ctx_free(ctx);
}

Test(shape, reshape_errors)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 2, (int64_t[]){2, 3});
	cr_assert_null(fv_reshape(ctx, x, 2, (int64_t[]){4, 2}));
	cr_assert_str_eq(fv_errmsg(), "fv_reshape: cannot reshape (2, 3) (6 elements) to (4, 2)");
	cr_assert_null(fv_reshape(ctx, x, 2, (int64_t[]){-1, 4}));
	cr_assert_str_eq(fv_errmsg(), "fv_reshape: cannot reshape (2, 3) (6 elements) to (-1, 4)");
	cr_assert_null(fv_reshape(ctx, x, 3, (int64_t[]){-1, -1, 6}));
	cr_assert_str_eq(fv_errmsg(), "fv_reshape: bad target shape (-1, -1, 6) for (2, 3) (one "
	                              "-1 at most, other sizes >= 0)");
	cr_assert_null(fv_reshape(ctx, x, 7, (int64_t[]){1, 1, 1, 1, 1, 2, 3}));
	cr_assert_str_eq(fv_errmsg(), "fv_reshape: 7 dims given (with a shape); 0 to 6 needed");
	fv_ctx_free(ctx);
}

/* ---- permute ------------------------------------------------------------------------ */

Test(shape, permute)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 3, (int64_t[]){2, 3, 2});
	/* y[k][i][j] = x[i][j][k] = 6i + 2j + k */
	expect_exact(fv_permute(ctx, x, (int[]){2, 0, 1}), 3, (int64_t[]){2, 2, 3},
	             (double[]){0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
	expect_exact(fv_permute(ctx, x, (int[]){-2, -3, -1}), 3, (int64_t[]){3, 2, 2},
	             (double[]){0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11});
	cr_assert_null(fv_permute(ctx, x, (int[]){0, 0, 1}));
	cr_assert_str_eq(fv_errmsg(), "fv_permute: entry 1 (0) of the permutation is repeated "
	                              "for a tensor of shape (2, 3, 2)");
	cr_assert_null(fv_permute(ctx, x, (int[]){0, 3, 1}));
	cr_assert_str_eq(fv_errmsg(), "fv_permute: entry 1 (3) of the permutation is out of "
	                              "range for a tensor of shape (2, 3, 2)");
	fv_ctx_free(ctx);
}

/* ---- slice -------------------------------------------------------------------------- */

Test(shape, slice_python_semantics)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *v = iota(ctx, 1, (int64_t[]){10});
	expect_exact(fv_slice(ctx, v, 0, 2, 5, 1), 1, (int64_t[]){3}, (double[]){2, 3, 4});
	expect_exact(fv_slice(ctx, v, 0, -3, 100, 1), 1, (int64_t[]){3}, (double[]){7, 8, 9});
	expect_exact(fv_slice(ctx, v, 0, 1, -1, 3), 1, (int64_t[]){3}, (double[]){1, 4, 7});
	expect_exact(fv_slice(ctx, v, 0, -20, 2, 1), 1, (int64_t[]){2}, (double[]){0, 1});
	expect_exact(fv_slice(ctx, v, 0, 8, 2, -2), 1, (int64_t[]){3}, (double[]){8, 6, 4});
	expect_exact(fv_slice(ctx, v, 0, -1, INT64_MIN, -4), 1, (int64_t[]){3},
	             (double[]){9, 5, 1});
	expect_exact(fv_slice(ctx, v, 0, 5, 5, 1), 1, (int64_t[]){0}, NULL);
	expect_exact(fv_slice(ctx, v, 0, 7, 3, 1), 1, (int64_t[]){0}, NULL);
	fv_tensor *x = iota(ctx, 2, (int64_t[]){3, 4});
	expect_exact(fv_slice(ctx, x, -1, 1, 4, 2), 2, (int64_t[]){3, 2},
	             (double[]){1, 3, 5, 7, 9, 11});
	expect_exact(fv_slice(ctx, x, 0, -1, 3, 1), 2, (int64_t[]){1, 4}, (double[]){8, 9, 10, 11});
	cr_assert_null(fv_slice(ctx, x, 2, 0, 1, 1));
	cr_assert_str_eq(fv_errmsg(), "fv_slice: axis out of range (axis 2, step 1) for a tensor "
	                              "of shape (3, 4)");
	cr_assert_null(fv_slice(ctx, x, 0, 0, 1, 0));
	cr_assert_str_eq(fv_errmsg(), "fv_slice: bad step (axis 0, step 0) for a tensor of shape "
	                              "(3, 4)");
	fv_ctx_free(ctx);
}

/* ---- pad ------------------------------------------------------------------------------ */

Test(shape, pad_constant_and_crop)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 2, (int64_t[]){2, 2});
	expect_exact(fv_pad(ctx, x, (const int64_t[][2]){{1, 0}, {0, 2}}, -1), 2,
	             (int64_t[]){3, 4}, (double[]){-1, -1, -1, -1, 0, 1, -1, -1, 2, 3, -1, -1});
	/* negative pads crop, as torch.nn.functional.pad */
	fv_tensor *y = iota(ctx, 2, (int64_t[]){3, 3});
	expect_exact(fv_pad(ctx, y, (const int64_t[][2]){{-1, 1}, {1, -2}}, 9), 2,
	             (int64_t[]){3, 2}, (double[]){9, 3, 9, 6, 9, 9});
	expect_exact(fv_pad(ctx, y, (const int64_t[][2]){{-3, 1}, {0, 0}}, 5), 2,
	             (int64_t[]){1, 3}, (double[]){5, 5, 5});
	cr_assert_null(fv_pad(ctx, y, (const int64_t[][2]){{0, 0}, {-2, -2}}, 0));
	cr_assert_str_eq(fv_errmsg(), "fv_pad: pads (-2, -2) leave axis 1 of (3, 3) with size -1");
	cr_assert_null(fv_pad(ctx, y, NULL, 0));
	cr_assert_str_eq(fv_errmsg(), "fv_pad: no pads given for a tensor of shape (3, 3)");
	fv_ctx_free(ctx);
}

/* ---- concat ----------------------------------------------------------------------------- */

Test(shape, concat)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = iota(ctx, 2, (int64_t[]){2, 2});
	fv_tensor *b = fv_add_scalar(ctx, iota(ctx, 2, (int64_t[]){2, 1}), 10);
	expect_exact(fv_concat(ctx, 2, (fv_tensor *[]){a, b}, 1), 2, (int64_t[]){2, 3},
	             (double[]){0, 1, 10, 2, 3, 11});
	expect_exact(fv_concat(ctx, 2, (fv_tensor *[]){a, a}, 0), 2, (int64_t[]){4, 2},
	             (double[]){0, 1, 2, 3, 0, 1, 2, 3});
	/* more sources than a tape node holds */
	fv_tensor *many[11];
	double want[11];
	for (int i = 0; i < 11; i++) {
		many[i] = fv_ctx_full(ctx, 1, (int64_t[]){1}, (fv_real)i);
		want[i] = i;
	}
	expect_exact(fv_concat(ctx, 11, many, 0), 1, (int64_t[]){11}, want);
	cr_assert_null(fv_concat(ctx, 2, (fv_tensor *[]){a, b}, 0));
	cr_assert_str_eq(fv_errmsg(), "fv_concat: tensor 1 has shape (2, 1), tensor 0 (2, 2); they "
	                              "may differ only along axis 0");
	cr_assert_null(fv_concat(ctx, 0, NULL, 0));
	cr_assert_str_eq(fv_errmsg(), "fv_concat: no tensors to concatenate (n = 0)");
	cr_assert_null(fv_concat(ctx, 1, &a, 2));
	cr_assert_str_eq(fv_errmsg(), "fv_concat: axis 2 is out of range for tensor 0 of shape "
	                              "(2, 2)");
	fv_error(FV_ERR_IO, "first");
	cr_assert_null(fv_concat(ctx, 2, (fv_tensor *[]){a, NULL}, 0));
	cr_assert_str_eq(fv_errmsg(), "first");
	fv_ctx_free(ctx);
}

/* ---- index_select ---------------------------------------------------------------------- */

Test(shape, index_select)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 2, (int64_t[]){3, 2});
	expect_exact(fv_index_select(ctx, x, 0, 4, (int64_t[]){2, 0, 2, 1}), 2, (int64_t[]){4, 2},
	             (double[]){4, 5, 0, 1, 4, 5, 2, 3});
	expect_exact(fv_index_select(ctx, x, -1, 1, (int64_t[]){1}), 2, (int64_t[]){3, 1},
	             (double[]){1, 3, 5});
	expect_exact(fv_index_select(ctx, x, 1, 0, NULL), 2, (int64_t[]){3, 0}, NULL);
	cr_assert_null(fv_index_select(ctx, x, 0, 2, (int64_t[]){0, 3}));
	cr_assert_str_eq(fv_errmsg(), "fv_index_select: index 3 (entry 1) is out of range for "
	                              "axis 0 of a tensor of shape (3, 2)");
	cr_assert_null(fv_index_select(ctx, x, 0, 1, (int64_t[]){-1}));
	cr_assert(strstr(fv_errmsg(), "index -1 (entry 0) is out of range") != NULL);
	cr_assert_null(fv_index_select(ctx, x, 2, 1, (int64_t[]){0}));
	cr_assert_str_eq(fv_errmsg(), "fv_index_select: axis 2 is out of range for a tensor of "
	                              "shape (3, 2)");
	cr_assert_null(fv_index_select(ctx, x, 0, 2, NULL));
	cr_assert_str_eq(fv_errmsg(), "fv_index_select: 2 indices given (with no list)");
	fv_ctx_free(ctx);
}

Test(shape, index_select_repeated_indices_accumulate)
{
	fv_tensor *x = fv_tensor_new(1, (int64_t[]){3});
	x->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	int64_t index[4] = {2, 0, 2, 2};
	fv_tensor *y = fv_index_select(ctx, x, 0, 4, index);
	index[0] = 1; /* the op keeps its own copy of the indices */
	fv_tensor *w = fv_ctx_from_data(ctx, 1, (int64_t[]){4}, (fv_real[]){1, 10, 100, 1000});
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, fv_mul(ctx, y, w))), FV_OK);
	cr_assert_eq(x->grad->data[0], 10);
	cr_assert_eq(x->grad->data[1], 0);
	cr_assert_eq(x->grad->data[2], 1101);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

/* ---- expand ------------------------------------------------------------------------------ */

Test(shape, expand)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *x = iota(ctx, 2, (int64_t[]){2, 1});
	expect_exact(fv_expand(ctx, x, 3, (int64_t[]){2, -1, 3}), 3, (int64_t[]){2, 2, 3},
	             (double[]){0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1});
	cr_assert_null(fv_expand(ctx, x, 2, (int64_t[]){3, 3}));
	cr_assert_str_eq(fv_errmsg(), "fv_expand: cannot expand (2, 1) to (3, 3) (dim 0)");
	cr_assert_null(fv_expand(ctx, x, 2, (int64_t[]){-1, -1 - 1}));
	cr_assert_str_eq(fv_errmsg(), "fv_expand: cannot expand (2, 1) to (-1, -2) (dim 1)");
	cr_assert_null(fv_expand(ctx, x, 3, (int64_t[]){-1, 2, 1}));
	cr_assert_str_eq(fv_errmsg(), "fv_expand: cannot expand (2, 1) to (-1, 2, 1) (dim 0)");
	cr_assert_null(fv_expand(ctx, x, 1, (int64_t[]){2}));
	cr_assert_str_eq(fv_errmsg(), "fv_expand: cannot expand (2, 1) to 1 dims");
	fv_ctx_free(ctx);
}

Test(shape, expand_gradient_sums_repeats)
{
	fv_tensor *x = fv_tensor_new(2, (int64_t[]){1, 3});
	x->requires_grad = true;
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *y = fv_expand(ctx, x, 3, (int64_t[]){4, 5, 3});
	cr_assert_eq(fv_backward(ctx, fv_sum_all(ctx, y)), FV_OK);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(x->grad->data[i], 20);
	fv_ctx_free(ctx);
	fv_tensor_free(x);
}

Test(shape, null_propagates)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_error(FV_ERR_IO, "first");
	cr_assert_null(fv_reshape(ctx, NULL, 1, (int64_t[]){-1}));
	cr_assert_null(fv_permute(ctx, NULL, NULL));
	cr_assert_null(fv_slice(ctx, NULL, 9, 0, 0, 0));
	cr_assert_null(fv_pad(ctx, NULL, NULL, 0));
	cr_assert_null(fv_index_select(ctx, NULL, 0, 1, NULL));
	cr_assert_null(fv_expand(ctx, NULL, 1, NULL));
	cr_assert_str_eq(fv_errmsg(), "first");
	fv_ctx_free(ctx);
}

/* ---- finite differences ---------------------------------------------------------------------- */

enum { RESHAPE, PERMUTE, SLICE, SLICE_BACK, PAD, CONCAT, INDEX, EXPAND };

/* Each op followed by a square, so that the check also sees where every
** gradient element lands (a plain copy has a constant Jacobian). */
static fv_tensor *gc_shape(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	fv_tensor *x = in[0], *y = NULL;
	switch (*(int *)ud) {
	case RESHAPE: y = fv_reshape(ctx, x, 2, (int64_t[]){4, -1}); break;
	case PERMUTE: y = fv_permute(ctx, x, (int[]){1, 2, 0}); break;
	case SLICE: y = fv_slice(ctx, x, 1, 1, 3, 1); break;
	case SLICE_BACK: y = fv_slice(ctx, x, 2, -1, INT64_MIN, -2); break;
	case PAD: y = fv_pad(ctx, x, (const int64_t[][2]){{1, -1}, {0, 2}, {-1, 1}}, 0.5); break;
	case CONCAT: y = fv_concat(ctx, 3, (fv_tensor *[]){x, in[1], x}, 2); break;
	case INDEX: y = fv_index_select(ctx, x, 1, 4, (int64_t[]){2, 0, 0, 1}); break;
	case EXPAND: y = fv_expand(ctx, in[1], 4, (int64_t[]){2, 2, 3, 2}); break;
	}
	return fv_mul(ctx, y, y);
}

Test(shape, gradcheck)
{
	for (int op = RESHAPE; op <= EXPAND; op++) {
		fv_tensor *in[2] = {gc_input(3, (int64_t[]){2, 3, 4}, 90 + op, -1, 1),
		                    gc_input(3, (int64_t[]){2, 3, 2}, 80 + op, -1, 1)};
		if (op == EXPAND) {
			fv_tensor_free(in[1]);
			in[1] = gc_input(3, (int64_t[]){2, 1, 2}, 80, -1, 1);
		}
		in[0]->requires_grad = op != EXPAND;
		in[1]->requires_grad = op == CONCAT || op == EXPAND;
		char what[16];
		snprintf(what, sizeof what, "op %d", op);
		gradcheck(what, gc_shape, 2, in, &op);
		fv_tensor_free(in[0]);
		fv_tensor_free(in[1]);
	}
}
