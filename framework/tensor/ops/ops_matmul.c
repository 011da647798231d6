/*
** ops_matmul.c: (batched) matrix products on BLIS, forward and backward.
**
** Every product, including the two of the backward pass, is one call of
** BLIS's typed gemm per batch entry.  Transposes cost nothing: a matrix is
** a pointer with a row and a column stride, and transposing swaps them.
** The gradient of a transposed operand is written through the same
** transposed view, so one formula serves all four transpose combinations:
**     C = op(A) op(B)  =>  d op(A) = dC op(B)^T,   d op(B) = op(A)^T dC.
** Batch dims broadcast; a gradient shared by several batch entries is
** accumulated by successive gemms in batch order, which keeps it
** deterministic.  When B has no batch dims and A is not transposed, the
** batch folds into A's rows and the whole product is a single gemm.
*/
#include <stdio.h>
#include <string.h>

#include <blis.h>

#include "tensor/tensor_internal.h"

/* A strided matrix view. */
typedef struct mat {
	fv_real *p;
	int64_t rs, cs;
} mat;

static mat mat_t(mat x)
{
	return (mat){x.p, x.cs, x.rs};
}

/* C (m x n) = A (m x k) B (k x n) + beta C, beta 0 or 1. */
static void gemm(int64_t m, int64_t n, int64_t k, mat a, mat b, mat c, fv_real beta)
{
	if (m == 0 || n == 0)
		return;
	if (k == 0) { /* an empty sum; don't trust BLIS with uninitialised C */
		if (beta == 0)
			for (int64_t i = 0; i < m; i++)
				for (int64_t j = 0; j < n; j++)
					c.p[i * c.rs + j * c.cs] = 0;
		return;
	}
	fv_real one = 1;
#ifdef FV_REAL_DOUBLE
	bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, a.p, a.rs, a.cs, b.p, b.rs,
	          b.cs, &beta, c.p, c.rs, c.cs);
#else
	bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, a.p, a.rs, a.cs, b.p, b.rs,
	          b.cs, &beta, c.p, c.rs, c.cs);
#endif
}

typedef struct matmul_plan {
	bool ta, tb;
	int64_t m, n, k;
	int64_t rows;     /* rows of op(A) per gemm: m, or batch * m when folded */
	int nb;           /* output batch dims */
	int64_t batch[FV_MAX_DIMS];
	fv__walk walk;    /* over the gemms: offsets of A, B and C */
} matmul_plan;

static fv_status plan_init(matmul_plan *p, const fv_tensor *a, const fv_tensor *b, bool ta,
                           bool tb)
{
	if (a->ndim < 2 || b->ndim < 2)
		return fv_error(FV_ERR_SHAPE, "fv_matmul: a %s and b %s: both need at least 2 dims",
		                fv_shape_str(a->ndim, a->shape), fv_shape_str(b->ndim, b->shape));
	int na = a->ndim - 2, nb = b->ndim - 2;
	int64_t ar = a->shape[na], ac = a->shape[na + 1];
	int64_t br = b->shape[nb], bc = b->shape[nb + 1];
	p->ta = ta;
	p->tb = tb;
	p->m = ta ? ac : ar;
	p->k = ta ? ar : ac;
	p->n = tb ? br : bc;
	int64_t kb = tb ? bc : br;
	if (p->k != kb)
		return fv_error(FV_ERR_SHAPE,
		                "fv_matmul: a %s%s and b %s%s: inner dims %lld and %lld differ",
		                fv_shape_str(a->ndim, a->shape), ta ? " (transposed)" : "",
		                fv_shape_str(b->ndim, b->shape), tb ? " (transposed)" : "",
		                (long long)p->k, (long long)kb);
	char op[192];
	snprintf(op, sizeof op, "fv_matmul: batch dims of a %s and b %s",
	         fv_shape_str(a->ndim, a->shape), fv_shape_str(b->ndim, b->shape));
	fv_status st = fv__broadcast_shape(op, na, a->shape, nb, b->shape, &p->nb, p->batch);
	if (st != FV_OK)
		return st;

	int64_t strides[3][FV_MAX_DIMS];
	fv__broadcast_strides(p->nb, p->batch, na, a->shape, strides[0]);
	fv__broadcast_strides(p->nb, p->batch, nb, b->shape, strides[1]);
	fv__strides(p->nb, p->batch, strides[2]);
	for (int d = 0; d < p->nb; d++) {
		strides[0][d] *= ar * ac;
		strides[1][d] *= br * bc;
		strides[2][d] *= p->m * p->n;
	}
	int64_t nbatch = fv__numel(p->nb, p->batch);
	bool fold = !ta && fv__numel(nb, b->shape) == 1;
	p->rows = fold ? nbatch * p->m : p->m;
	fv__walk_init(&p->walk, fold ? 0 : p->nb, p->batch, 3, strides);
	return FV_OK;
}

/* op(A) and op(B) as views of a batch entry's storage. */
static mat view_a(const matmul_plan *p, fv_real *data)
{
	mat a = {data, p->k, 1};
	return p->ta ? (mat){data, 1, p->m} : a;
}

static mat view_b(const matmul_plan *p, fv_real *data)
{
	mat b = {data, p->n, 1};
	return p->tb ? (mat){data, 1, p->k} : b;
}

typedef enum matmul_pass { MM_FORWARD, MM_GRAD_A, MM_GRAD_B } matmul_pass;

/* a, b: A and B, or their gradients for the pass that writes them; c: the
** output, or its gradient. */
typedef struct matmul_job {
	const matmul_plan *plan;
	matmul_pass pass;
	fv_real *a, *b, *c;
	fv_real beta; /* gradient passes: 0 sets the gradient, 1 adds to it */
} matmul_job;

static void matmul_run(void *ud, int64_t count, const int64_t *off, const int64_t *step)
{
	const matmul_job *j = ud;
	const matmul_plan *p = j->plan;
	for (int64_t i = 0; i < count; i++) {
		mat a = view_a(p, j->a + off[0] + i * step[0]);
		mat b = view_b(p, j->b + off[1] + i * step[1]);
		mat c = {j->c + off[2] + i * step[2], p->n, 1};
		switch (j->pass) {
		case MM_FORWARD: gemm(p->rows, p->n, p->k, a, b, c, 0); break;
		case MM_GRAD_A: gemm(p->rows, p->k, p->n, c, mat_t(b), a, j->beta); break;
		case MM_GRAD_B: gemm(p->k, p->n, p->rows, mat_t(a), c, b, j->beta); break;
		}
	}
}

/* The gemms run one after another (BLIS threads each of them), so that
** accumulation into a shared gradient happens in a fixed order. */
static void matmul_pass_run(const matmul_plan *p, matmul_pass pass, fv_real *a, fv_real *b,
                            fv_real *c, fv_real beta)
{
	matmul_job job = {p, pass, a, b, c, beta};
	fv__walk_range(&p->walk, 0, p->walk.numel, matmul_run, &job);
}

typedef struct matmul_aux {
	bool ta, tb;
} matmul_aux;

/* The gemms' beta for source i's gradient: 0 when it is unset and they
** write each element once (`written` elements, no broadcast batch), else
** 1, into a cleared gradient if it was unset. */
static fv_real grad_beta(const fv_ctx *ctx, int i, fv_tensor *grad, int64_t written)
{
	if (!fv__grad_fresh(ctx, i))
		return 1;
	if (grad->numel == written)
		return 0;
	memset(grad->data, 0, (size_t)grad->numel * sizeof(fv_real));
	return 1;
}

static fv_status matmul_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *src_grads, const void *aux)
{
	const matmul_aux *t = aux;
	matmul_plan p;
	fv_status rc = plan_init(&p, srcs[0], srcs[1], t->ta, t->tb);
	if (rc != FV_OK)
		return rc;
	int64_t nbatch = fv__numel(p.nb, p.batch);
	if (src_grads[0] != NULL) {
		fv_real beta = grad_beta(ctx, 0, src_grads[0], nbatch * p.m * p.k);
		matmul_pass_run(&p, MM_GRAD_A, src_grads[0]->data, srcs[1]->data, out->grad->data, beta);
	}
	if (src_grads[1] != NULL) {
		fv_real beta = grad_beta(ctx, 1, src_grads[1], nbatch * p.k * p.n);
		matmul_pass_run(&p, MM_GRAD_B, srcs[0]->data, src_grads[1]->data, out->grad->data, beta);
	}
	if (fv__profiling) {
		double flops = 2.0 * (double)(nbatch * p.m * p.n * p.k) *
		               ((src_grads[0] != NULL) + (src_grads[1] != NULL));
		fv__profile_note(flops, flops, 0);
	}
	return FV_OK;
}

static const fv_op_def MATMUL_DEF = {"matmul", matmul_backward};

fv_tensor *fv_matmul_ex(fv_ctx *ctx, fv_tensor *a, fv_tensor *b, bool trans_a, bool trans_b)
{
	FV_CHECK_INPUT(a);
	FV_CHECK_INPUT(b);
	matmul_plan p;
	if (plan_init(&p, a, b, trans_a, trans_b) != FV_OK)
		return NULL;
	int64_t shape[FV_MAX_DIMS];
	memcpy(shape, p.batch, (size_t)p.nb * sizeof *shape);
	shape[p.nb] = p.m;
	shape[p.nb + 1] = p.n;
	fv_tensor *out = fv_ctx_empty(ctx, p.nb + 2, shape);
	if (out == NULL)
		return NULL;
	matmul_pass_run(&p, MM_FORWARD, a->data, b->data, out->data, 0);
	if (fv__profiling) {
		double flops = 2.0 * (double)(fv__numel(p.nb, p.batch) * p.m * p.n * p.k);
		fv__profile_note(flops, flops, 0);
	}
	matmul_aux t = {trans_a, trans_b};
	fv_tensor *srcs[2] = {a, b};
	if (fv_op_record(ctx, out, &MATMUL_DEF, 2, srcs, &t, sizeof t) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

fv_tensor *fv_matmul(fv_ctx *ctx, fv_tensor *a, fv_tensor *b)
{
	return fv_matmul_ex(ctx, a, b, false, false);
}
