/*
** mpi_sync_batchnorm.c: fv_parallel_batch_norm3d over real processes (part
** of mpi_collectives): each rank holds its rows of one batch of 5 (shares
** as the trainer cuts them) and must get, for its rows, the output and
** input gradient that fv_batch_norm3d gives on the whole batch, the same
** running statistics, and weight and bias gradients that sum over the
** ranks to the whole batch's.  Without mpirun the call is fv_batch_norm3d
** itself, which the same checks hold for trivially.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fovea/parallel.h"
#include "fovea/tensor.h"
#include "mpi_checks.h"

#define N 5
#define C 3
#define INNER 8 /* T, H, W = 2, 2, 2 */

static fv_real value(int64_t i, int salt)
{
	return (fv_real)sin(0.37 * (double)i + salt) * (fv_real)(1 + salt);
}

typedef struct bn_result {
	fv_real y[N * C * INNER], dx[N * C * INNER], dw[C], db[C], rm[C], rv[C];
} bn_result;

/* Rows [lo, hi) of the batch through batch norm (synced or not), with the
** gradient of sum(y * cotangent). */
static int run(int64_t lo, int64_t hi, double alpha, bool sync, bn_result *out)
{
	fv_ctx *ctx = fv_ctx_new();
	int64_t s[5] = {hi - lo, C, 2, 2, 2}, c = C;
	fv_tensor *x = fv_tensor_new(5, s), *w = fv_tensor_new(1, &c), *b = fv_tensor_new(1, &c);
	fv_tensor *rm = fv_tensor_new(1, &c), *rv = fv_tensor_new(1, &c), *cot = fv_tensor_new(5, s);
	int bad = ctx == NULL || x == NULL || w == NULL || b == NULL || rm == NULL || rv == NULL ||
	          cot == NULL;
	for (int64_t i = 0; !bad && i < x->numel; i++) {
		x->data[i] = value(lo * C * INNER + i, 1);
		cot->data[i] = value(lo * C * INNER + i, 2);
	}
	for (int64_t k = 0; !bad && k < C; k++) {
		w->data[k] = 1 + 0.1f * (fv_real)k;
		b->data[k] = 0.2f * (fv_real)k;
		rv->data[k] = 1;
	}
	if (!bad) {
		x->requires_grad = w->requires_grad = b->requires_grad = true;
		fv_parallel_set_sync_batchnorm(sync);
		fv_tensor *y = fv_parallel_batch_norm3d(ctx, x, w, b, rm, rv, NULL, true, 0.1, 1e-5,
		                                        alpha);
		fv_parallel_set_sync_batchnorm(false);
		bad = y == NULL || fv_backward_with(ctx, y, cot) != FV_OK;
		if (!bad) {
			memcpy(out->y, y->data, (size_t)y->numel * sizeof *y->data);
			memcpy(out->dx, x->grad->data, (size_t)x->numel * sizeof *x->data);
			memcpy(out->dw, w->grad->data, sizeof out->dw);
			memcpy(out->db, b->grad->data, sizeof out->db);
			memcpy(out->rm, rm->data, sizeof out->rm);
			memcpy(out->rv, rv->data, sizeof out->rv);
		}
	}
	fv_tensor *all[] = {x, w, b, rm, rv, cot};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		fv_tensor_free(all[i]);
	fv_ctx_free(ctx);
	return bad;
}

static bool close_to(const fv_real *a, const fv_real *b, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (fabs((double)a[i] - (double)b[i]) > 1e-5 * (1 + fabs((double)b[i])))
			return false;
	return true;
}

static void check_alpha(int rank, int size, double alpha)
{
	static bn_result whole, part;
	int64_t lo = N * rank / size, hi = N * (rank + 1) / size;
	mpi_check(run(0, N, alpha, false, &whole) == 0, "sync batch norm: the whole batch failed",
	          rank);
	mpi_check(run(lo, hi, alpha, true, &part) == 0, "sync batch norm: the share failed", rank);
	int64_t at = lo * C * INNER, n = (hi - lo) * C * INNER;
	mpi_check(close_to(part.y, whole.y + at, n), "sync batch norm: another output", rank);
	mpi_check(close_to(part.dx, whole.dx + at, n), "sync batch norm: another input gradient",
	          rank);
	mpi_check(close_to(part.rm, whole.rm, C) && close_to(part.rv, whole.rv, C),
	          "sync batch norm: other running statistics", rank);
	float g[2 * C];
	for (int k = 0; k < C; k++) {
		g[k] = (float)part.dw[k];
		g[C + k] = (float)part.db[k];
	}
	mpi_check(fv_parallel_allreduce_sum_float(g, 2 * C) == FV_OK, "allreduce failed", rank);
	fv_real dw[C], db[C];
	for (int k = 0; k < C; k++) {
		dw[k] = g[k];
		db[k] = g[C + k];
	}
	mpi_check(close_to(dw, whole.dw, C) && close_to(db, whole.db, C),
	          "sync batch norm: weight/bias gradients do not sum to the batch's", rank);
}

void mpi_sync_batchnorm_checks(int rank, int size)
{
	check_alpha(rank, size, 0);
	check_alpha(rank, size, 1.0);
}
