/*
** ops_conv3d.c: dense 3-d convolution (torch.nn.functional.conv3d) and the
** helpers it shares with the separable path (see conv_kernels.h).
**
** Forward: for every sample, group and block of output frames, copy the
** input frames the block reads with their zero padding, vol2col them into a
** column matrix (kept small so it stays in cache) and multiply by the
** group's weight with BLIS.  Backward, per sample: the same column blocks
** give the weight gradient (dOut * cols^T) and the input gradient (col2vol
** of W^T * dOut into padded frames, then unpadded).  The weight gradient is
** summed in a fixed number of partial sums over contiguous sample ranges,
** then added in order, so the result does not depend on the thread count.
*/
#include <stdio.h>
#include <string.h>

#include <blis.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/conv/conv_kernels.h"

/* Bytes of one column block: enough columns to keep GEMM efficient (it
** packs the block into its own cache-sized panels), small enough to stay
** in the outer caches; a whole channel of the default model fits, so the
** separable backward can reuse it. */
#define FV_CONV_BLOCK_BYTES ((int64_t)2 << 20)

/* ---- shape checks ---------------------------------------------------------- */

void fv_conv3d_same_padding(const int kernel[3], const int dilation[3], int pad[3][2])
{
	for (int d = 0; d < 3; d++) {
		int dil = (dilation == NULL || dilation[d] == 0) ? 1 : dilation[d];
		int total = dil * (kernel[d] - 1);
		if (total < 0)
			total = 0;
		pad[d][0] = total / 2;
		pad[d][1] = total - total / 2;
	}
}

static fv_status check_params(const char *op, const fv_conv3d_params *p, bool groups_allowed)
{
	if (p == NULL)
		return FV_OK;
	for (int d = 0; d < 3; d++) {
		if (p->stride[d] < 0)
			return fv_error(FV_ERR_ARG, "%s: stride (%d, %d, %d) must not be negative", op,
			                p->stride[0], p->stride[1], p->stride[2]);
		if (p->dilation[d] < 0)
			return fv_error(FV_ERR_ARG, "%s: dilation (%d, %d, %d) must not be negative", op,
			                p->dilation[0], p->dilation[1], p->dilation[2]);
		if (p->pad[d][0] < 0 || p->pad[d][1] < 0)
			return fv_error(FV_ERR_ARG,
			                "%s: padding ((%d, %d), (%d, %d), (%d, %d)) must not be negative", op,
			                p->pad[0][0], p->pad[0][1], p->pad[1][0], p->pad[1][1],
			                p->pad[2][0], p->pad[2][1]);
	}
	if (p->groups < 0)
		return fv_error(FV_ERR_ARG, "%s: groups=%d must be positive", op, p->groups);
	if (p->groups > 1 && !groups_allowed)
		return fv_error(FV_ERR_ARG, "%s: groups=%d; only groups=1 is supported", op, p->groups);
	return FV_OK;
}

static int one_if_zero(int v)
{
	return v == 0 ? 1 : v;
}

fv_status fv__conv_shape_init(fv__conv_shape *s, const char *op, const fv_tensor *x, int64_t o,
                              int64_t c_per_group, const int64_t kernel[3],
                              const fv_conv3d_params *p, bool groups_allowed, const char *wdesc)
{
	if (x->ndim != 5)
		return fv_error(FV_ERR_SHAPE, "%s: input x must be (N, C, T, H, W); got shape %s", op,
		                fv_shape_str(x->ndim, x->shape));
	fv_status rc = check_params(op, p, groups_allowed);
	if (rc != FV_OK)
		return rc;
	static const fv_conv3d_params defaults;
	if (p == NULL)
		p = &defaults;
	int64_t groups = one_if_zero(p->groups), c = x->shape[1];
	if (c % groups != 0)
		return fv_error(FV_ERR_SHAPE, "%s: groups=%lld does not divide the %lld input channels of x %s",
		                op, (long long)groups, (long long)c, fv_shape_str(x->ndim, x->shape));
	if (o % groups != 0)
		return fv_error(FV_ERR_SHAPE, "%s: groups=%lld does not divide the %lld output channels of %s",
		                op, (long long)groups, (long long)o, wdesc);
	if (c_per_group * groups != c)
		return fv_error(FV_ERR_SHAPE,
		                "%s: %s expects %lld input channels (%lld per group, groups=%lld) but x %s has %lld",
		                op, wdesc, (long long)(c_per_group * groups), (long long)c_per_group,
		                (long long)groups, fv_shape_str(x->ndim, x->shape), (long long)c);
	int64_t in[3], eff[3], out[3];
	for (int d = 0; d < 3; d++) {
		if (kernel[d] < 1)
			return fv_error(FV_ERR_SHAPE, "%s: %s has an empty kernel", op, wdesc);
		in[d] = x->shape[2 + d] + p->pad[d][0] + p->pad[d][1];
		eff[d] = (int64_t)one_if_zero(p->dilation[d]) * (kernel[d] - 1) + 1;
	}
	for (int d = 0; d < 3; d++)
		if (eff[d] > in[d])
			return fv_error(FV_ERR_SHAPE,
			                "%s: kernel %s (dilated: %s) is larger than the padded input %s of x %s",
			                op, fv_shape_str(3, kernel), fv_shape_str(3, eff), fv_shape_str(3, in),
			                fv_shape_str(x->ndim, x->shape));
	for (int d = 0; d < 3; d++)
		out[d] = (in[d] - eff[d]) / one_if_zero(p->stride[d]) + 1;
	s->n = x->shape[0];
	s->c = c;
	s->o = o;
	s->groups = groups;
	s->win = (fv__conv_window){
		.c = c_per_group, .t = x->shape[2], .h = x->shape[3], .w = x->shape[4],
		.kt = kernel[0], .kh = kernel[1], .kw = kernel[2],
		.to = out[0], .ho = out[1], .wo = out[2],
		.st = one_if_zero(p->stride[0]), .sh = one_if_zero(p->stride[1]),
		.sw = one_if_zero(p->stride[2]),
		.dt = one_if_zero(p->dilation[0]), .dh = one_if_zero(p->dilation[1]),
		.dw = one_if_zero(p->dilation[2]),
		.pt = p->pad[0][0], .ph = p->pad[1][0], .pw = p->pad[2][0],
	};
	return FV_OK;
}

/* ---- padded frames and vol2col --------------------------------------------------- */

bool fv__window_is_pointwise(const fv__conv_window *w)
{
	return w->kt == 1 && w->kh == 1 && w->kw == 1 && w->st == 1 && w->sh == 1 && w->sw == 1 &&
	       w->pt == 0 && w->ph == 0 && w->pw == 0 && w->to == w->t && w->ho == w->h &&
	       w->wo == w->w;
}

int64_t fv__frames_per_block(const fv__conv_window *w)
{
	int64_t frame_bytes = fv__window_rows(w) * w->ho * w->wo * (int64_t)sizeof(fv_real);
	int64_t f = frame_bytes > 0 ? FV_CONV_BLOCK_BYTES / frame_bytes : w->to;
	if (f < 1)
		f = 1;
	return f < w->to ? f : w->to;
}

/* The padded extent the window reads along one axis. */
static int64_t read_extent(int64_t out, int64_t stride, int64_t k, int64_t dil)
{
	return out > 0 ? (out - 1) * stride + (k - 1) * dil + 1 : 0;
}

void fv__padded_frames(const fv__conv_window *w, int64_t t0, int64_t t1, int64_t *tp0,
                       int64_t *tp1)
{
	*tp0 = t0 * w->st;
	*tp1 = t1 > t0 ? (t1 - 1) * w->st + (w->kt - 1) * w->dt + 1 : *tp0;
}

int64_t fv__padded_plane(const fv__conv_window *w)
{
	return read_extent(w->ho, w->sh, w->kh, w->dh) * read_extent(w->wo, w->sw, w->kw, w->dw);
}

int64_t fv__padded_size(const fv__conv_window *w, int64_t t0, int64_t t1)
{
	int64_t tp0, tp1;
	fv__padded_frames(w, t0, t1, &tp0, &tp1);
	return w->c * (tp1 - tp0) * fv__padded_plane(w) + FV_CONV_SLACK;
}

/* The frames of retina models are a few pixels wide: for rows that short,
** per-row memcpy/memset calls cost more than the copying, so compilers are
** told not to turn the loops below into such calls. */
#if defined(__clang__)
#define FV_NO_MEMCPY_CALLS __attribute__((no_builtin("memcpy", "memmove", "memset")))
#elif defined(__GNUC__)
#define FV_NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define FV_NO_MEMCPY_CALLS
#endif

FV_NO_MEMCPY_CALLS static inline void zero_span(fv_real *restrict dst, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		dst[i] = 0;
}

/* The input part of a padded row: padded columns [lo, hi) hold input
** columns [lo - pad, hi - pad). */
static void padded_span(int64_t pad, int64_t n_in, int64_t n_padded, int64_t *lo, int64_t *hi)
{
	*lo = pad < n_padded ? pad : n_padded;
	*hi = pad + n_in < n_padded ? pad + n_in : n_padded;
	if (*hi < *lo)
		*hi = *lo;
}

FV_NO_MEMCPY_CALLS void fv__pad_frames(const fv__conv_window *w, const fv_real *x, int64_t tp0,
                                       int64_t tp1, fv_real *P)
{
	int64_t hp = read_extent(w->ho, w->sh, w->kh, w->dh), wp = read_extent(w->wo, w->sw, w->kw, w->dw);
	int64_t hlo, hhi, wlo, whi;
	padded_span(w->ph, w->h, hp, &hlo, &hhi);
	padded_span(w->pw, w->w, wp, &wlo, &whi);
	fv_real *dst = P;
	for (int64_t c = 0; c < w->c; c++)
		for (int64_t tp = tp0; tp < tp1; tp++, dst += hp * wp) {
			int64_t ti = tp - w->pt;
			if (ti < 0 || ti >= w->t) {
				zero_span(dst, hp * wp);
				continue;
			}
			const fv_real *xf = x + (c * w->t + ti) * w->h * w->w;
			zero_span(dst, hlo * wp);
			for (int64_t r = hlo; r < hhi; r++) {
				fv_real *row = dst + r * wp;
				const fv_real *src = xf + (r - w->ph) * w->w;
				zero_span(row, wlo);
				for (int64_t i = wlo; i < whi; i++)
					row[i] = src[i - w->pw];
				zero_span(row + whi, wp - whi);
			}
			zero_span(dst + hhi * wp, (hp - hhi) * wp);
		}
	zero_span(dst, FV_CONV_SLACK);
}

void fv__unpad_add(const fv__conv_window *w, const fv_real *dP, int64_t tp0, int64_t tp1,
                   fv_real *dx)
{
	int64_t hp = read_extent(w->ho, w->sh, w->kh, w->dh), wp = read_extent(w->wo, w->sw, w->kw, w->dw);
	int64_t hlo, hhi, wlo, whi;
	padded_span(w->ph, w->h, hp, &hlo, &hhi);
	padded_span(w->pw, w->w, wp, &wlo, &whi);
	const fv_real *src = dP;
	for (int64_t c = 0; c < w->c; c++)
		for (int64_t tp = tp0; tp < tp1; tp++, src += hp * wp) {
			int64_t ti = tp - w->pt;
			if (ti < 0 || ti >= w->t)
				continue;
			fv_real *xf = dx + (c * w->t + ti) * w->h * w->w;
			for (int64_t r = hlo; r < hhi; r++) {
				fv_real *restrict row = xf + (r - w->ph) * w->w;
				const fv_real *restrict prow = src + r * wp;
				for (int64_t i = wlo; i < whi; i++)
					row[i - w->pw] += prow[i];
			}
		}
}

/* One tap's view of one output frame: `rows` rows of n taps read from src
** (rows row_step apart, taps `stride` apart) into contiguous dst.  With
** stride 1 a row is copied in whole chunks of FV_CONV_CHUNK, which may
** write and read up to FV_CONV_CHUNK - 1 elements past its end: callers
** fill buffers in increasing address order, so the next row overwrites what
** ran over, and buffers carry FV_CONV_SLACK spare elements.  A row of the
** default model is 6 pixels: one vector move instead of a memcpy call. */
#define FV_CONV_CHUNK 8

FV_NO_MEMCPY_CALLS static void gather_frame(fv_real *restrict dst, const fv_real *restrict src,
                                            int64_t rows, int64_t n, int64_t row_step,
                                            int64_t stride)
{
	if (stride != 1) {
		for (int64_t r = 0; r < rows; r++, dst += n, src += row_step)
			for (int64_t i = 0; i < n; i++)
				dst[i] = src[i * stride];
		return;
	}
	if (n <= FV_CONV_CHUNK) {
		for (int64_t r = 0; r < rows; r++, dst += n, src += row_step)
			for (int q = 0; q < FV_CONV_CHUNK; q++)
				dst[q] = src[q];
		return;
	}
	for (int64_t r = 0; r < rows; r++, dst += n, src += row_step)
		for (int64_t i = 0; i < n; i += FV_CONV_CHUNK)
			for (int q = 0; q < FV_CONV_CHUNK; q++)
				dst[i + q] = src[i + q];
}

/* The adjoint, dst rows += src.  With AVX2 a short row is added as one
** whole chunk too: the lanes past its end add zero (masked, so whatever lies
** beyond the row is never used), and both buffers have slack for the
** overrun. */
static void scatter_frame(fv_real *restrict dst, const fv_real *restrict src, int64_t rows,
                          int64_t n, int64_t row_step, int64_t stride)
{
#ifdef FV_CONV_AVX2
	if (stride == 1 && n <= FV_CONV_CHUNK) {
		__m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
		__m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lanes));
		for (int64_t r = 0; r < rows; r++, src += n, dst += row_step) {
			__m256 v = _mm256_and_ps(_mm256_loadu_ps(src), keep);
			_mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), v));
		}
		return;
	}
#endif
	for (int64_t r = 0; r < rows; r++, src += n, dst += row_step)
		for (int64_t i = 0; i < n; i++)
			dst[i * stride] += src[i];
}

/* Offset in the padded frames of tap (c, a, b, d) for output frame to. */
static inline int64_t tap_origin(const fv__conv_window *w, int64_t c, int64_t nf, int64_t tp0,
                                 int64_t to, int64_t a, int64_t b, int64_t d, int64_t wp,
                                 int64_t plane_p)
{
	return (c * nf + to * w->st + a * w->dt - tp0) * plane_p + b * w->dh * wp + d * w->dw;
}

void fv__vol2col(const fv__conv_window *w, const fv_real *P, int64_t tp0, int64_t tp1,
                 int64_t t0, int64_t t1, fv_real *cols)
{
	const int64_t wp = read_extent(w->wo, w->sw, w->kw, w->dw), plane_p = fv__padded_plane(w);
	const int64_t nf = tp1 - tp0, row_step = w->sh * wp, plane = w->ho * w->wo;
	fv_real *dst = cols;
	for (int64_t c = 0; c < w->c; c++)
		for (int64_t a = 0; a < w->kt; a++)
			for (int64_t b = 0; b < w->kh; b++)
				for (int64_t d = 0; d < w->kw; d++)
					for (int64_t to = t0; to < t1; to++, dst += plane)
						gather_frame(dst, P + tap_origin(w, c, nf, tp0, to, a, b, d, wp, plane_p),
						             w->ho, w->wo, row_step, w->sw);
}

void fv__col2vol(const fv__conv_window *w, const fv_real *cols, int64_t t0, int64_t t1,
                 fv_real *dP, int64_t tp0, int64_t tp1)
{
	const int64_t wp = read_extent(w->wo, w->sw, w->kw, w->dw), plane_p = fv__padded_plane(w);
	const int64_t nf = tp1 - tp0, row_step = w->sh * wp, plane = w->ho * w->wo;
	const fv_real *src = cols;
	for (int64_t c = 0; c < w->c; c++)
		for (int64_t a = 0; a < w->kt; a++)
			for (int64_t b = 0; b < w->kh; b++)
				for (int64_t d = 0; d < w->kw; d++)
					for (int64_t to = t0; to < t1; to++, src += plane)
						scatter_frame(dP + tap_origin(w, c, nf, tp0, to, a, b, d, wp, plane_p),
						              src, w->ho, w->wo, row_step, w->sw);
}

/* ---- GEMM and tasks -------------------------------------------------------------- */

void fv__gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, fv_real alpha,
              const fv_real *a, int64_t lda, const fv_real *b, int64_t ldb, fv_real beta,
              fv_real *c, int64_t ldc, int threads)
{
	rntm_t rntm = BLIS_RNTM_INITIALIZER;
	bli_rntm_set_num_threads(threads > 0 ? threads : 1, &rntm);
	/* Row-major op(A)(i, p): a[i*lda + p], or a[p*lda + i] when transposed. */
	inc_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;
	inc_t rsb = trans_b ? 1 : ldb, csb = trans_b ? ldb : 1;
#ifdef FV_REAL_DOUBLE
	bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (double *)a, rsa, csa,
	             (double *)b, rsb, csb, &beta, c, ldc, 1, NULL, &rntm);
#else
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)a, rsa, csa,
	             (float *)b, rsb, csb, &beta, c, ldc, 1, NULL, &rntm);
#endif
}

fv__task_plan fv__plan_tasks(int64_t ntasks, double macs)
{
	int threads = fv_get_num_threads();
	if (threads <= 1 || macs < FV_PARALLEL_MIN_MACS)
		return (fv__task_plan){1, 1};
	if (ntasks >= threads)
		return (fv__task_plan){threads, 1};
	return (fv__task_plan){1, threads};
}

void fv__run_tasks(const fv__task_plan *plan, int64_t ntasks, fv__task_fn fn, void *ud)
{
	if (plan->tasks > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(plan->tasks) schedule(dynamic, 1)
		for (int64_t i = 0; i < ntasks; i++)
			fn(ud, i, omp_get_thread_num(), 1);
		return;
#endif
	}
	for (int64_t i = 0; i < ntasks; i++)
		fn(ud, i, 0, plan->inner);
}

/* ---- the dense op -------------------------------------------------------------------- */

typedef struct conv_aux {
	fv__conv_shape s;
} conv_aux;

static double conv_macs(const fv__conv_shape *s)
{
	return fv__dense_conv_macs(s);
}

/* What the tasks of one forward or backward call share. */
typedef struct conv_job {
	const fv__conv_shape *s;
	const fv_real *x, *w, *bias, *gout;
	fv_real *out, *dx, *dw_partials;
	fv_real *scratch;       /* plan.tasks slots of slot_size */
	int64_t slot_size;
	int64_t frames, blocks; /* output frames per column block, blocks per sample */
	int64_t partials;       /* backward: tasks, each a contiguous range of samples */
} conv_job;

static void add_bias(const conv_job *j, int64_t g, int64_t t0, int64_t t1, fv_real *out)
{
	const fv__conv_window *w = &j->s->win;
	int64_t og = j->s->o / j->s->groups, plane = w->ho * w->wo;
	for (int64_t o = 0; o < og; o++) {
		fv_real b = j->bias[g * og + o], *row = out + o * w->to * plane;
		for (int64_t i = 0; i < (t1 - t0) * plane; i++)
			row[i] += b;
	}
}

/* Output frames [t0, t1) of sample n, group g. */
static void forward_task(void *ud, int64_t task, int slot, int threads)
{
	const conv_job *j = ud;
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t blk = task % j->blocks, g = task / j->blocks % s->groups,
	        n = task / j->blocks / s->groups;
	int64_t og = s->o / s->groups, k = fv__window_rows(w), plane = w->ho * w->wo;
	int64_t t0 = blk * j->frames, t1 = t0 + j->frames < w->to ? t0 + j->frames : w->to;
	const fv_real *xg = j->x + (n * s->c + g * w->c) * w->t * w->h * w->w, *cols = xg + t0 * plane;
	int64_t ld = w->t * plane;
	if (!fv__window_is_pointwise(w)) {
		fv_real *P = j->scratch + slot * j->slot_size, *c = P + fv__padded_size(w, 0, j->frames);
		int64_t tp0, tp1;
		fv__padded_frames(w, t0, t1, &tp0, &tp1);
		fv__pad_frames(w, xg, tp0, tp1, P);
		fv__vol2col(w, P, tp0, tp1, t0, t1, c);
		cols = c;
		ld = (t1 - t0) * plane;
	}
	fv_real *out = j->out + ((n * s->o + g * og) * w->to + t0) * plane;
	fv__gemm(false, false, og, (t1 - t0) * plane, k, 1, j->w + g * og * k, k, cols, ld, 0, out,
	         w->to * plane, threads);
	if (j->bias != NULL)
		add_bias(j, g, t0, t1, out);
}

/* A backward slot: the group's padded input P and its gradient dP (all
** frames), a column block and its gradient. */
typedef struct backward_slot {
	fv_real *P, *dP, *cols, *dcols;
} backward_slot;

static int64_t backward_slot_size(const fv__conv_window *w, int64_t frames)
{
	int64_t cols = fv__window_rows(w) * frames * w->ho * w->wo + FV_CONV_SLACK;
	return 2 * fv__padded_size(w, 0, w->to) + 2 * cols;
}

static backward_slot backward_slot_at(const fv__conv_window *w, int64_t frames, fv_real *base)
{
	int64_t psize = fv__padded_size(w, 0, w->to);
	int64_t csize = fv__window_rows(w) * frames * w->ho * w->wo + FV_CONV_SLACK;
	backward_slot b = {base, base + psize, base + 2 * psize, base + 2 * psize + csize};
	/* col2vol reads into the slack of dcols (and ignores what it finds) */
	memset(b.dcols + csize - FV_CONV_SLACK, 0, FV_CONV_SLACK * sizeof(fv_real));
	return b;
}

/* One group of one sample: dw += dOut * cols^T, dx += col2vol(W^T * dOut),
** block by block. */
static void backward_group(const conv_job *j, int64_t n, int64_t g, fv_real *dw,
                           const backward_slot *b, int threads)
{
	const fv__conv_shape *s = j->s;
	const fv__conv_window *w = &s->win;
	int64_t og = s->o / s->groups, k = fv__window_rows(w), plane = w->ho * w->wo;
	int64_t vol = w->t * w->h * w->w, tp0, tp1;
	const fv_real *xg = j->x + (n * s->c + g * w->c) * vol, *wg = j->w + g * og * k;
	fv_real *dxg = j->dx ? j->dx + (n * s->c + g * w->c) * vol : NULL;
	bool pointwise = fv__window_is_pointwise(w);
	fv__padded_frames(w, 0, w->to, &tp0, &tp1);
	if (!pointwise) {
		fv__pad_frames(w, xg, tp0, tp1, b->P);
		if (dxg != NULL)
			memset(b->dP, 0, (size_t)(fv__padded_size(w, 0, w->to)) * sizeof(fv_real));
	}
	for (int64_t t0 = 0; t0 < w->to; t0 += j->frames) {
		int64_t t1 = t0 + j->frames < w->to ? t0 + j->frames : w->to, lb = (t1 - t0) * plane;
		const fv_real *gout = j->gout + ((n * s->o + g * og) * w->to + t0) * plane;
		int64_t ldg = w->to * plane;
		if (pointwise) {
			if (dw != NULL)
				fv__gemm(false, true, og, k, lb, 1, gout, ldg, xg + t0 * plane, vol, 1,
				         dw + g * og * k, k, threads);
			if (dxg != NULL)
				fv__gemm(true, false, k, lb, og, 1, wg, k, gout, ldg, 1, dxg + t0 * plane, vol,
				         threads);
			continue;
		}
		if (dw != NULL) {
			fv__vol2col(w, b->P, tp0, tp1, t0, t1, b->cols);
			fv__gemm(false, true, og, k, lb, 1, gout, ldg, b->cols, lb, 1, dw + g * og * k, k,
			         threads);
		}
		if (dxg != NULL) {
			fv__gemm(true, false, k, lb, og, 1, wg, k, gout, ldg, 0, b->dcols, lb, threads);
			fv__col2vol(w, b->dcols, t0, t1, b->dP, tp0, tp1);
		}
	}
	if (!pointwise && dxg != NULL)
		fv__unpad_add(w, b->dP, tp0, tp1, dxg);
}

static void backward_task(void *ud, int64_t task, int slot, int threads)
{
	const conv_job *j = ud;
	int64_t n0 = task * j->s->n / j->partials, n1 = (task + 1) * j->s->n / j->partials;
	int64_t wsize = j->s->o * fv__window_rows(&j->s->win);
	fv_real *dw = j->dw_partials ? j->dw_partials + task * wsize : NULL;
	backward_slot b = backward_slot_at(&j->s->win, j->frames, j->scratch + slot * j->slot_size);
	if (dw != NULL)
		memset(dw, 0, (size_t)wsize * sizeof(fv_real));
	for (int64_t n = n0; n < n1; n++)
		for (int64_t g = 0; g < j->s->groups; g++)
			backward_group(j, n, g, dw, &b, threads);
}

static void bias_grad(const fv__conv_shape *s, const fv_real *gout, fv_real *db)
{
	int64_t len = s->win.to * s->win.ho * s->win.wo;
	bool big = (double)len * (double)s->n * (double)s->o > FV_PARALLEL_MIN_MACS;
#pragma omp parallel for schedule(static) if (big)
	for (int64_t o = 0; o < s->o; o++) {
		double acc = 0;
		for (int64_t n = 0; n < s->n; n++) {
			const fv_real *row = gout + (n * s->o + o) * len;
			fv_real part = 0;
#pragma omp simd reduction(+ : part)
			for (int64_t i = 0; i < len; i++)
				part += row[i];
			acc += part;
		}
		db[o] += (fv_real)acc;
	}
}

void fv__add_partials(fv_real *dw, const fv_real *partials, int64_t count, int64_t size)
{
#pragma omp parallel for schedule(static) if ((double)size * (double)count > FV_PARALLEL_MIN_MACS)
	for (int64_t i = 0; i < size; i++) {
		fv_real acc = 0;
		for (int64_t p = 0; p < count; p++)
			acc += partials[p * size + i];
		dw[i] += acc;
	}
}

static fv_status conv3d_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                 fv_tensor *const *grads, const void *aux_)
{
	const conv_aux *aux = aux_;
	const fv__conv_shape *s = &aux->s;
	const fv__conv_window *w = &s->win;
	conv_job j = {.s = s, .x = srcs[0]->data, .w = srcs[1]->data, .gout = out->grad->data};
	if (grads[2] != NULL)
		bias_grad(s, j.gout, grads[2]->data);
	if (grads[0] == NULL && grads[1] == NULL)
		return FV_OK;
	int64_t wsize = s->o * fv__window_rows(w);
	j.frames = fv__frames_per_block(w);
	j.dx = grads[0] ? grads[0]->data : NULL;
	/* Without a weight gradient every sample is its own task. */
	j.partials = s->n;
	if (grads[1] != NULL && j.partials > FV_CONV_MAX_PARTIALS)
		j.partials = FV_CONV_MAX_PARTIALS;
	j.slot_size = backward_slot_size(w, j.frames);
	fv__task_plan plan = fv__plan_tasks(j.partials, 2 * conv_macs(s));
	j.scratch = fv_ctx_alloc(ctx, (size_t)(plan.tasks * j.slot_size) * sizeof(fv_real));
	if (grads[1] != NULL)
		j.dw_partials = fv_ctx_alloc(ctx, (size_t)(j.partials * wsize) * sizeof(fv_real));
	if (j.scratch == NULL || (grads[1] != NULL && j.dw_partials == NULL))
		return FV_ERR_NOMEM;
	fv__run_tasks(&plan, j.partials, backward_task, &j);
	if (grads[1] != NULL)
		fv__add_partials(grads[1]->data, j.dw_partials, j.partials, wsize);
	if (fv__profiling) {
		double flops = 2 * conv_macs(s) * ((grads[0] != NULL) + (grads[1] != NULL));
		fv__profile_note(flops, flops, 0);
	}
	return FV_OK;
}

static const fv_op_def conv3d_def = {"conv3d", conv3d_backward};

fv_tensor *fv_conv3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *w, fv_tensor *bias,
                     const fv_conv3d_params *p)
{
	FV_CHECK_INPUT(x);
	FV_CHECK_INPUT(w);
	if (w->ndim != 5) {
		fv_error(FV_ERR_SHAPE, "fv_conv3d: weight must be (O, C/groups, kt, kh, kw); got shape %s",
		         fv_shape_str(w->ndim, w->shape));
		return NULL;
	}
	char wdesc[160];
	snprintf(wdesc, sizeof wdesc, "weight %s", fv_shape_str(w->ndim, w->shape));
	conv_aux aux;
	fv__conv_shape *s = &aux.s;
	if (fv__conv_shape_init(s, "fv_conv3d", x, w->shape[0], w->shape[1], w->shape + 2, p, true,
	                        wdesc) != FV_OK)
		return NULL;
	if (bias != NULL && (bias->ndim != 1 || bias->shape[0] != s->o)) {
		fv_error(FV_ERR_SHAPE, "fv_conv3d: bias must be (%lld) for %s; got shape %s",
		         (long long)s->o, wdesc, fv_shape_str(bias->ndim, bias->shape));
		return NULL;
	}
	const fv__conv_window *win = &s->win;
	int64_t shape[5] = {s->n, s->o, win->to, win->ho, win->wo};
	fv_tensor *out = fv_ctx_empty(ctx, 5, shape);
	if (out == NULL)
		return NULL;
	conv_job j = {.s = s, .x = x->data, .w = w->data, .bias = bias ? bias->data : NULL,
	              .out = out->data};
	j.frames = fv__frames_per_block(win);
	j.blocks = win->to > 0 ? (win->to + j.frames - 1) / j.frames : 0;
	int64_t ntasks = s->n * s->groups * j.blocks;
	j.slot_size = fv__window_is_pointwise(win)
	                      ? 0
	                      : fv__padded_size(win, 0, j.frames) +
	                                fv__window_rows(win) * j.frames * win->ho * win->wo + FV_CONV_SLACK;
	fv__task_plan plan = fv__plan_tasks(ntasks, conv_macs(s));
	j.scratch = fv_ctx_alloc(ctx, (size_t)(plan.tasks * j.slot_size) * sizeof(fv_real));
	if (j.scratch == NULL)
		return NULL;
	fv__run_tasks(&plan, ntasks, forward_task, &j);
	if (fv__profiling)
		fv__profile_note(2 * conv_macs(s), 2 * conv_macs(s), 0);
	fv_tensor *srcs[3] = {x, w, bias};
	if (fv_op_record(ctx, out, &conv3d_def, 3, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	return out;
}
