/*
** test_ops_matmul.c: fv_matmul and fv_matmul_ex.
**
** A 2 x 3 by 3 x 2 product is checked by hand; every combination of
** transposes, batch broadcasting and the folded single-gemm case against a
** triple loop written here; gradients against finite differences.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fovea/tensor.h"
#include "gradcheck.h"

#ifdef FV_REAL_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

Test(matmul, by_hand)
{
	fv_ctx *ctx = fv_ctx_new();
	const fv_real av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {7, 8, 9, 10, 11, 12};
	fv_tensor *a = fv_ctx_from_data(ctx, 2, (int64_t[]){2, 3}, av);
	fv_tensor *b = fv_ctx_from_data(ctx, 2, (int64_t[]){3, 2}, bv);
	fv_tensor *c = fv_matmul(ctx, a, b);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_assert(c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 2);
	const fv_real want[4] = {58, 64, 139, 154};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(c->data[i], want[i], "[%d] = %g", i, (double)c->data[i]);
	/* a^T a: (3, 2) x (2, 3) without materialising the transpose */
	fv_tensor *g = fv_matmul_ex(ctx, a, a, true, false);
	const fv_real gram[9] = {17, 22, 27, 22, 29, 36, 27, 36, 45};
	cr_assert(g->shape[0] == 3 && g->shape[1] == 3);
	for (int i = 0; i < 9; i++)
		cr_assert_eq(g->data[i], gram[i]);
	fv_ctx_free(ctx);
}

/* ---- against a triple loop --------------------------------------------------- */

typedef struct mm_case {
	int na, nb;
	int64_t sa[5], sb[5];
	bool ta, tb;
} mm_case;

/* Element (i, j) of op(M) for matrix number `batch` of M's storage. */
static double elem(const fv_tensor *m, int64_t batch, bool t, int64_t i, int64_t j)
{
	int64_t r = m->shape[m->ndim - 2], c = m->shape[m->ndim - 1];
	return m->data[batch * r * c + (t ? j * c + i : i * c + j)];
}

/* The batch number, within an operand of `n` batch dims, of output batch o. */
static int64_t batch_of(const fv_tensor *out, int64_t o, const fv_tensor *m)
{
	int nbo = out->ndim - 2, nbm = m->ndim - 2;
	int64_t b = 0, mul = 1;
	for (int d = nbo - 1; d >= 0; d--) {
		int64_t idx = o % out->shape[d];
		o /= out->shape[d];
		int md = d - (nbo - nbm);
		if (md >= 0) {
			b += (m->shape[md] == 1 ? 0 : idx) * mul;
			mul *= m->shape[md];
		}
	}
	return b;
}

static void check_against_loops(const mm_case *mc)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_empty(ctx, mc->na, mc->sa), *b = fv_ctx_empty(ctx, mc->nb, mc->sb);
	gc_fill_uniform(a, 31, -1, 1);
	gc_fill_uniform(b, 32, -1, 1);
	fv_tensor *c = fv_matmul_ex(ctx, a, b, mc->ta, mc->tb);
	cr_assert_not_null(c, "%s", fv_errmsg());
	int64_t m = c->shape[c->ndim - 2], n = c->shape[c->ndim - 1];
	int64_t k = a->shape[a->ndim - (mc->ta ? 2 : 1)];
	for (int64_t o = 0; o < c->numel / (m * n); o++)
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) {
				double want = 0;
				for (int64_t l = 0; l < k; l++)
					want += elem(a, batch_of(c, o, a), mc->ta, i, l) *
					        elem(b, batch_of(c, o, b), mc->tb, l, j);
				double got = c->data[(o * m + i) * n + j];
				cr_assert(fabs(got - want) <= TOL * (1 + fabs(want)),
				          "batch %lld (%lld, %lld): %.10g vs %.10g", (long long)o,
				          (long long)i, (long long)j, got, want);
			}
	fv_ctx_free(ctx);
}

static const mm_case CASES[] = {
	{2, 2, {3, 4}, {4, 5}, false, false},
	{2, 2, {4, 3}, {4, 5}, true, false},
	{2, 2, {3, 4}, {5, 4}, false, true},
	{2, 2, {4, 3}, {5, 4}, true, true},
	{3, 2, {2, 3, 4}, {4, 5}, false, false},          /* folds into one gemm */
	{3, 2, {2, 4, 3}, {4, 5}, true, false},           /* shared b, a transposed */
	{2, 3, {3, 4}, {2, 4, 5}, false, false},          /* shared a */
	{4, 3, {2, 1, 3, 4}, {5, 5, 4}, false, true},     /* batch dims broadcast both ways */
	{3, 3, {1, 4, 3}, {3, 5, 4}, true, true},
	{3, 4, {2, 3, 4}, {1, 1, 4, 2}, false, false},    /* b's batch dims all 1 */
};

Test(matmul, against_triple_loop)
{
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
		check_against_loops(&CASES[i]);
}

Test(matmul, large_enough_for_threads)
{
	check_against_loops(&(mm_case){3, 2, {4, 70, 90}, {90, 60}, false, false});
	check_against_loops(&(mm_case){3, 3, {4, 90, 70}, {4, 60, 90}, true, true});
}

Test(matmul, empty_inner_dim_gives_zeros)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 0});
	fv_tensor *b = fv_ctx_zeros(ctx, 2, (int64_t[]){0, 3});
	fv_tensor *c = fv_matmul(ctx, a, b);
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_assert_eq(c->numel, 6);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(c->data[i], 0);
	fv_ctx_free(ctx);
}

/* ---- errors --------------------------------------------------------------------- */

Test(matmul, errors_name_both_shapes)
{
	fv_ctx *ctx = fv_ctx_new();
	fv_tensor *a = fv_ctx_zeros(ctx, 2, (int64_t[]){2, 3});
	fv_tensor *b = fv_ctx_zeros(ctx, 2, (int64_t[]){4, 5});
	fv_tensor *v = fv_ctx_zeros(ctx, 1, (int64_t[]){3});
	cr_assert_null(fv_matmul(ctx, a, b));
	cr_assert_str_eq(fv_errmsg(),
	                 "fv_matmul: a (2, 3) and b (4, 5): inner dims 3 and 4 differ");
	cr_assert_null(fv_matmul_ex(ctx, a, b, true, false));
	cr_assert_str_eq(fv_errmsg(), "fv_matmul: a (2, 3) (transposed) and b (4, 5): inner "
	                              "dims 2 and 4 differ");
	cr_assert_null(fv_matmul(ctx, a, v));
	cr_assert_str_eq(fv_errmsg(), "fv_matmul: a (2, 3) and b (3): both need at least 2 dims");
	fv_tensor *x = fv_ctx_zeros(ctx, 3, (int64_t[]){2, 2, 3});
	fv_tensor *y = fv_ctx_zeros(ctx, 3, (int64_t[]){3, 3, 2});
	cr_assert_null(fv_matmul(ctx, x, y));
	cr_assert_str_eq(fv_errmsg(), "fv_matmul: batch dims of a (2, 2, 3) and b (3, 3, 2): "
	                              "shapes (2) and (3) do not broadcast (dim -1: 2 vs 3)");
	fv_error(FV_ERR_IO, "first");
	cr_assert_null(fv_matmul(ctx, NULL, a));
	cr_assert_null(fv_matmul_ex(ctx, a, NULL, false, true));
	cr_assert_str_eq(fv_errmsg(), "first");
	fv_ctx_free(ctx);
}

/* ---- finite differences ------------------------------------------------------------- */

static fv_tensor *gc_matmul(fv_ctx *ctx, fv_tensor *const *in, void *ud)
{
	const mm_case *mc = ud;
	return fv_matmul_ex(ctx, in[0], in[1], mc->ta, mc->tb);
}

Test(matmul, gradcheck)
{
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		const mm_case *mc = &CASES[i];
		fv_tensor *in[2] = {gc_input(mc->na, mc->sa, 40 + i, -1, 1),
		                    gc_input(mc->nb, mc->sb, 60 + i, -1, 1)};
		char what[32];
		snprintf(what, sizeof what, "case %zu", i);
		gradcheck(what, gc_matmul, 2, in, (void *)mc);
		fv_tensor_free(in[0]);
		fv_tensor_free(in[1]);
	}
}
