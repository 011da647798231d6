/*
** ops_unary.c: elementwise functions of one tensor (neg, exp, log,
** softplus, elu, relu, sigmoid, tanh, abs, sqrt, square, sin, cos, clamp,
** and x + s, x * s, x ^ p for a scalar), driven by one table.
**
** An op is two element functions: its value, and its derivative given the
** input x and the output y (whichever is cheaper: exp' = y, tanh' = 1 - y^2).
** UNARY_LOOPS turns the pair into the array loops the table points at, so
** all ops share one forward and one backward driver while each loop still
** inlines its element function.  Derivatives follow torch at the kinks:
** relu'(0) = 0, abs'(0) = 0, clamp' = 1 on the closed interval [lo, hi],
** elu'(0) = alpha, and softplus is the identity above its threshold.
*/
#include <string.h>
#include <tgmath.h>

#include "tensor/tensor_internal.h"

/* What an element function sees: input, output (derivatives only) and the
** op's two parameters. */
typedef struct unary_arg {
	fv_real x, y, a, b;
} unary_arg;

typedef void (*unary_forward_fn)(int64_t n, const fv_real *x, fv_real *y, fv_real a, fv_real b);
/* gx = (fresh) or += (otherwise) gy * f'(x) */
typedef void (*unary_backward_fn)(int64_t n, const fv_real *x, const fv_real *y,
                                  const fv_real *gy, fv_real *gx, fv_real a, fv_real b,
                                  bool fresh);

#define UNARY_LOOPS(name)                                                                    \
	static void name##_forward(int64_t n, const fv_real *x, fv_real *y, fv_real a,        \
	                           fv_real b)                                                 \
	{                                                                                     \
		for (int64_t i = 0; i < n; i++)                                               \
			y[i] = name##_f((unary_arg){x[i], 0, a, b});                          \
	}                                                                                     \
	static void name##_backward(int64_t n, const fv_real *x, const fv_real *y,            \
	                            const fv_real *gy, fv_real *gx, fv_real a, fv_real b,     \
	                            bool fresh)                                               \
	{                                                                                     \
		if (fresh)                                                                    \
			memset(gx, 0, (size_t)n * sizeof *gx);                                \
		for (int64_t i = 0; i < n; i++)                                               \
			gx[i] += gy[i] * name##_d((unary_arg){x[i], y[i], a, b});             \
	}

/* ---- the element functions ------------------------------------------------- */

static inline fv_real neg_f(unary_arg u) { return -u.x; }
static inline fv_real neg_d(unary_arg u) { (void)u; return -1; }
UNARY_LOOPS(neg)

static inline fv_real exp_f(unary_arg u) { return exp(u.x); }
static inline fv_real exp_d(unary_arg u) { return u.y; }
UNARY_LOOPS(exp)

static inline fv_real log_f(unary_arg u) { return log(u.x); }
static inline fv_real log_d(unary_arg u) { return 1 / u.x; }
UNARY_LOOPS(log)


/* a = alpha.  For x <= 0, elu'(x) = alpha e^x = y + alpha: no exp in the
** backward. */
static inline fv_real elu_f(unary_arg u) { return u.x > 0 ? u.x : u.a * expm1(u.x); }
static inline fv_real elu_d(unary_arg u) { return u.x > 0 ? 1 : u.y + u.a; }

#if defined(__AVX2__) && defined(__FMA__) && !defined(FV_REAL_DOUBLE)
#include <immintrin.h>

/* e^x - 1 and e^x of 8 floats (NaN passes through), within about 1 ulp of
** libm: x = k ln2 + r with |r| <= ln2/2, expm1(r) by its Taylor series to
** r^7 (truncation below 2e-8 relative), then e^x = 2^k expm1(r) + 2^k and
** e^x - 1 = 2^k expm1(r) + (2^k - 1), each in one rounding.  x is clamped
** to [-87, 88]: below, e^x - 1 is -1 in float and e^x under 1.7e-38. */
static __m256 exp_parts_avx2(__m256 x, __m256 *two_k)
{
	const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
	x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), x));
	__m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
	                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
	r = _mm256_fnmadd_ps(k, ln2_lo, r);
	__m256 p = _mm256_set1_ps(1.0f / 5040);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
	__m256i bits = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
	bits = _mm256_slli_epi32(bits, 23);
	*two_k = _mm256_castsi256_ps(bits);
	return _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r); /* expm1(r) */
}

static __m256 expm1_avx2(__m256 x)
{
	__m256 two_k, p = exp_parts_avx2(x, &two_k);
	return _mm256_fmadd_ps(two_k, p, _mm256_sub_ps(two_k, _mm256_set1_ps(1.0f)));
}

static __m256 exp_avx2(__m256 x)
{
	__m256 two_k, p = exp_parts_avx2(x, &two_k);
	return _mm256_fmadd_ps(two_k, p, two_k);
}

static void elu_forward(int64_t n, const fv_real *x, fv_real *y, fv_real a, fv_real b)
{
	(void)b;
	int64_t i = 0;
	__m256 alpha = _mm256_set1_ps(a), zero = _mm256_setzero_ps();
	/* the tail through the same vector code, padded: an element's value does
	** not depend on where a row or a thread's share of it starts */
	for (; i < n; i += 8) {
		float tail[8] = {0};
		bool whole = i + 8 <= n;
		if (!whole)
			memcpy(tail, x + i, (size_t)(n - i) * sizeof *tail);
		__m256 v = _mm256_loadu_ps(whole ? x + i : tail);
		__m256 neg = _mm256_mul_ps(alpha, expm1_avx2(_mm256_min_ps(zero, v)));
		v = _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
		_mm256_storeu_ps(whole ? y + i : tail, v);
		if (!whole)
			memcpy(y + i, tail, (size_t)(n - i) * sizeof *tail);
	}
}

static void elu_backward(int64_t n, const fv_real *x, const fv_real *y, const fv_real *gy,
                         fv_real *gx, fv_real a, fv_real b, bool fresh)
{
	int64_t i = 0;
	__m256 alpha = _mm256_set1_ps(a), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
	for (; i + 8 <= n; i += 8) {
		__m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
		__m256 d = _mm256_blendv_ps(_mm256_add_ps(_mm256_loadu_ps(y + i), alpha), one, pos);
		__m256 old = fresh ? zero : _mm256_loadu_ps(gx + i);
		_mm256_storeu_ps(gx + i, _mm256_fmadd_ps(_mm256_loadu_ps(gy + i), d, old));
	}
	for (; i < n; i++)
		gx[i] = (fresh ? 0 : gx[i]) + gy[i] * elu_d((unary_arg){x[i], y[i], a, b});
}
#else
UNARY_LOOPS(elu)
#endif

/* a = beta, b = threshold: x itself once beta x exceeds the threshold */
static inline fv_real softplus_f(unary_arg u)
{
	fv_real bx = u.x * u.a;
	return bx > u.b ? u.x : log1p(exp(bx)) / u.a;
}
static inline fv_real softplus_d(unary_arg u)
{
	fv_real bx = u.x * u.a;
	if (bx > u.b)
		return 1;
	fv_real z = exp(bx);
	return z / (z + 1);
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(FV_REAL_DOUBLE)
/* log of 8 floats in [1, 2] (Cephes' logf reduction and polynomial, within
** about 1 ulp): w = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) = f - f^2/2
** + f^3 P(f) for f = m - 1. */
static __m256 log_1_2_avx2(__m256 w)
{
	__m256 big = _mm256_cmp_ps(w, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
	__m256 e = _mm256_and_ps(big, _mm256_set1_ps(1.0f));
	__m256 f = _mm256_sub_ps(_mm256_blendv_ps(w, _mm256_mul_ps(w, _mm256_set1_ps(0.5f)), big),
	                         _mm256_set1_ps(1.0f));
	__m256 z = _mm256_mul_ps(f, f);
	__m256 p = _mm256_set1_ps(7.0376836292e-2f);
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993e-1f));
	p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174e-1f));
	__m256 y = _mm256_mul_ps(_mm256_mul_ps(p, z), f);
	y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
	y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
	return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(f, y));
}

/* softplus(x) = (max(bx, 0) + log1p(e^-|bx|)) / b below the threshold:
** e^-|bx| is in (0, 1], so nothing overflows, and log1p(u) is formed as
** log(1 + u) * u / ((1 + u) - 1), exact to a few ulp even for tiny u. */
static void softplus_forward(int64_t n, const fv_real *x, fv_real *y, fv_real a, fv_real b)
{
	int64_t i = 0;
	__m256 beta = _mm256_set1_ps(a), thr = _mm256_set1_ps(b), zero = _mm256_setzero_ps();
	__m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i), bx = _mm256_mul_ps(v, beta);
		__m256 nabs = _mm256_or_ps(bx, sign), floor = _mm256_set1_ps(-87.0f);
		__m256 u = _mm256_and_ps(exp_avx2(nabs), _mm256_cmp_ps(nabs, floor, _CMP_GE_OQ)); /* e^-|bx| */
		__m256 w = _mm256_add_ps(one, u), d = _mm256_sub_ps(w, one);
		__m256 l1p = _mm256_mul_ps(log_1_2_avx2(w), _mm256_div_ps(u, d));
		l1p = _mm256_blendv_ps(l1p, u, _mm256_cmp_ps(d, zero, _CMP_EQ_OQ));
		__m256 sp = _mm256_div_ps(_mm256_add_ps(_mm256_max_ps(bx, zero), l1p), beta);
		sp = _mm256_blendv_ps(sp, bx, _mm256_cmp_ps(bx, bx, _CMP_UNORD_Q)); /* NaN */
		_mm256_storeu_ps(y + i, _mm256_blendv_ps(sp, v, _mm256_cmp_ps(bx, thr, _CMP_GT_OQ)));
	}
	for (; i < n; i++)
		y[i] = softplus_f((unary_arg){x[i], 0, a, b});
}

static void softplus_backward(int64_t n, const fv_real *x, const fv_real *y, const fv_real *gy,
                              fv_real *gx, fv_real a, fv_real b, bool fresh)
{
	if (fresh)
		memset(gx, 0, (size_t)n * sizeof *gx);
	for (int64_t i = 0; i < n; i++)
		gx[i] += gy[i] * softplus_d((unary_arg){x[i], y[i], a, b});
}
#else
UNARY_LOOPS(softplus)
#endif

/* `x < 0 ? 0 : x` lets NaN through, as torch.relu does */
static inline fv_real relu_f(unary_arg u) { return u.x < 0 ? 0 : u.x; }
static inline fv_real relu_d(unary_arg u) { return u.y > 0 ? 1 : 0; }
UNARY_LOOPS(relu)

static inline fv_real sigmoid_f(unary_arg u) { return 1 / (1 + exp(-u.x)); }
static inline fv_real sigmoid_d(unary_arg u) { return u.y * (1 - u.y); }
UNARY_LOOPS(sigmoid)

static inline fv_real tanh_f(unary_arg u) { return tanh(u.x); }
static inline fv_real tanh_d(unary_arg u) { return 1 - u.y * u.y; }
UNARY_LOOPS(tanh)

static inline fv_real abs_f(unary_arg u) { return fabs(u.x); }
static inline fv_real abs_d(unary_arg u) { return u.x > 0 ? 1 : u.x < 0 ? -1 : 0; }
UNARY_LOOPS(abs)

static inline fv_real sqrt_f(unary_arg u) { return sqrt(u.x); }
static inline fv_real sqrt_d(unary_arg u) { return (fv_real)0.5 / u.y; }
UNARY_LOOPS(sqrt)

static inline fv_real square_f(unary_arg u) { return u.x * u.x; }
static inline fv_real square_d(unary_arg u) { return 2 * u.x; }
UNARY_LOOPS(square)

static inline fv_real sin_f(unary_arg u) { return sin(u.x); }
static inline fv_real sin_d(unary_arg u) { return cos(u.x); }
UNARY_LOOPS(sin)

static inline fv_real cos_f(unary_arg u) { return cos(u.x); }
static inline fv_real cos_d(unary_arg u) { return -sin(u.x); }
UNARY_LOOPS(cos)

/* a = lo, b = hi; min(max(x, lo), hi) as torch, NaN passing through */
static inline fv_real clamp_f(unary_arg u)
{
	fv_real r = u.x < u.a ? u.a : u.x;
	return r > u.b ? u.b : r;
}
static inline fv_real clamp_d(unary_arg u) { return u.x >= u.a && u.x <= u.b ? 1 : 0; }
UNARY_LOOPS(clamp)

static inline fv_real add_scalar_f(unary_arg u) { return u.x + u.a; }
static inline fv_real add_scalar_d(unary_arg u) { (void)u; return 1; }
UNARY_LOOPS(add_scalar)

static inline fv_real mul_scalar_f(unary_arg u) { return u.x * u.a; }
static inline fv_real mul_scalar_d(unary_arg u) { return u.a; }
UNARY_LOOPS(mul_scalar)

/* torch's pow backward: exactly 0 for p = 0, even at x = 0 */
static inline fv_real pow_scalar_f(unary_arg u) { return pow(u.x, u.a); }
static inline fv_real pow_scalar_d(unary_arg u) { return u.a == 0 ? 0 : u.a * pow(u.x, u.a - 1); }
UNARY_LOOPS(pow_scalar)

/* ---- the table and its drivers -------------------------------------------- */

typedef enum unary_kind {
	U_NEG, U_EXP, U_LOG, U_SOFTPLUS, U_ELU, U_RELU, U_SIGMOID, U_TANH, U_ABS, U_SQRT,
	U_SQUARE, U_SIN, U_COS, U_CLAMP, U_ADD_SCALAR, U_MUL_SCALAR, U_POW_SCALAR
} unary_kind;

typedef struct unary_op {
	fv_op_def def;
	unary_forward_fn forward;
	unary_backward_fn backward;
} unary_op;

static fv_status unary_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                fv_tensor *const *src_grads, const void *aux);

#define UNARY_ENTRY(kind, name) [kind] = {{#name, unary_backward}, name##_forward, name##_backward}

static const unary_op UNARY[] = {
	UNARY_ENTRY(U_NEG, neg),
	UNARY_ENTRY(U_EXP, exp),
	UNARY_ENTRY(U_LOG, log),
	UNARY_ENTRY(U_SOFTPLUS, softplus),
	UNARY_ENTRY(U_ELU, elu),
	UNARY_ENTRY(U_RELU, relu),
	UNARY_ENTRY(U_SIGMOID, sigmoid),
	UNARY_ENTRY(U_TANH, tanh),
	UNARY_ENTRY(U_ABS, abs),
	UNARY_ENTRY(U_SQRT, sqrt),
	UNARY_ENTRY(U_SQUARE, square),
	UNARY_ENTRY(U_SIN, sin),
	UNARY_ENTRY(U_COS, cos),
	UNARY_ENTRY(U_CLAMP, clamp),
	UNARY_ENTRY(U_ADD_SCALAR, add_scalar),
	UNARY_ENTRY(U_MUL_SCALAR, mul_scalar),
	UNARY_ENTRY(U_POW_SCALAR, pow_scalar),
};

typedef struct unary_aux {
	unary_kind kind;
	fv_real a, b;
} unary_aux;

typedef struct unary_job {
	const unary_op *op;
	fv_real a, b;
	const fv_real *x, *y, *gy;
	fv_real *out; /* forward: y; backward: gx */
	bool fresh;   /* backward: gx is unset */
} unary_job;

/* Every operand is contiguous in x's shape: one offset serves all. */
static void unary_forward_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	(void)step;
	const unary_job *j = ud;
	j->op->forward(n, j->x + off[0], j->out + off[0], j->a, j->b);
}

static void unary_backward_run(void *ud, int64_t n, const int64_t *off, const int64_t *step)
{
	(void)step;
	const unary_job *j = ud;
	j->op->backward(n, j->x + off[0], j->y + off[0], j->gy + off[0], j->out + off[0], j->a,
	                j->b, j->fresh);
}

static void unary_walk(int64_t numel, fv__run_fn run, unary_job *job)
{
	static const int64_t unit[1][FV_MAX_DIMS] = {{1}};
	fv__walk w;
	fv__walk_init(&w, 1, &numel, 1, unit);
	fv__walk_all(&w, run, job);
}

static fv_status unary_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                fv_tensor *const *src_grads, const void *aux)
{
	const unary_aux *u = aux;
	unary_job job = {&UNARY[u->kind], u->a, u->b, srcs[0]->data, out->data, out->grad->data,
	                 src_grads[0]->data, fv__grad_fresh(ctx, 0)};
	unary_walk(out->numel, unary_backward_run, &job);
	return FV_OK;
}

static fv_tensor *unary(fv_ctx *ctx, unary_kind kind, fv_tensor *x, double a, double b)
{
	FV_CHECK_INPUT(x);
	fv_tensor *out = fv_ctx_empty(ctx, x->ndim, x->shape);
	if (out == NULL)
		return NULL;
	unary_aux u = {kind, (fv_real)a, (fv_real)b};
	unary_job job = {&UNARY[kind], u.a, u.b, x->data, NULL, NULL, out->data, false};
	unary_walk(x->numel, unary_forward_run, &job);
	fv_tensor *srcs[1] = {x};
	if (fv_op_record(ctx, out, &UNARY[kind].def, 1, srcs, &u, sizeof u) != FV_OK)
		return NULL;
	fv__op_assigns_fresh_grads(out);
	return out;
}

/* ---- the public ops ----------------------------------------------------------- */

fv_tensor *fv_neg(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_NEG, x, 0, 0); }
fv_tensor *fv_exp(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_EXP, x, 0, 0); }
fv_tensor *fv_log(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_LOG, x, 0, 0); }
fv_tensor *fv_relu(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_RELU, x, 0, 0); }
fv_tensor *fv_sigmoid(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_SIGMOID, x, 0, 0); }
fv_tensor *fv_tanh(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_TANH, x, 0, 0); }
fv_tensor *fv_abs(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_ABS, x, 0, 0); }
fv_tensor *fv_sqrt(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_SQRT, x, 0, 0); }
fv_tensor *fv_square(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_SQUARE, x, 0, 0); }
fv_tensor *fv_sin(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_SIN, x, 0, 0); }
fv_tensor *fv_cos(fv_ctx *ctx, fv_tensor *x) { return unary(ctx, U_COS, x, 0, 0); }
fv_tensor *fv_elu(fv_ctx *ctx, fv_tensor *x, double alpha) { return unary(ctx, U_ELU, x, alpha, 0); }

void fv__elu_rows(int64_t n, const fv_real *x, fv_real *y, fv_real alpha)
{
	elu_forward(n, x, y, alpha, 0);
}

void fv__elu_grad_rows(int64_t n, const fv_real *y, const fv_real *gy, fv_real *gz, fv_real alpha)
{
	/* z > 0 exactly where y = elu(z) > 0 (alpha > 0): y stands in for z */
	elu_backward(n, y, y, gy, gz, alpha, 0, true);
}

fv_tensor *fv_softplus(fv_ctx *ctx, fv_tensor *x, double beta, double threshold)
{
	if (x != NULL && beta == 0) {
		fv_error(FV_ERR_ARG, "fv_softplus: beta must not be 0");
		return NULL;
	}
	return unary(ctx, U_SOFTPLUS, x, beta, threshold);
}

fv_tensor *fv_clamp(fv_ctx *ctx, fv_tensor *x, double lo, double hi)
{
	return unary(ctx, U_CLAMP, x, lo, hi);
}

fv_tensor *fv_add_scalar(fv_ctx *ctx, fv_tensor *x, double s)
{
	return unary(ctx, U_ADD_SCALAR, x, s, 0);
}

fv_tensor *fv_mul_scalar(fv_ctx *ctx, fv_tensor *x, double s)
{
	return unary(ctx, U_MUL_SCALAR, x, s, 0);
}

fv_tensor *fv_pow_scalar(fv_ctx *ctx, fv_tensor *x, double p)
{
	return unary(ctx, U_POW_SCALAR, x, p, 0);
}
