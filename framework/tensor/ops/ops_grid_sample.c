/*
** ops_grid_sample.c: bilinear torch.nn.functional.grid_sample with zero
** padding, for input (N, C, H, W) and grid (N, Ho, Wo, 2).
**
** Follows torch's CPU kernel step by step so results agree to rounding:
** the coordinate is unnormalised as ((x + 1) / 2) * (W - 1) with
** align_corners, ((x + 1) * W - 1) / 2 without; the four corner weights
** come from the fractional parts; corners outside the input read zero and
** receive no gradient.  The gradient w.r.t. the grid treats those corners
** as zeros too and is scaled by d(pixel)/d(coordinate): (W - 1) / 2 or W / 2.
**
** The backward is two loops, each writing disjoint memory: the input
** gradient per (n, c) plane, the grid gradient per output pixel; so results
** do not depend on the thread count.
*/
#include <math.h>

#include "tensor/tensor_internal.h"

/* Below this many elements of work a loop runs on one thread: waking the
** team costs more than it saves. */
#define PARALLEL_MIN_WORK 32768

typedef struct gs_aux {
	bool align_corners;
} gs_aux;

/* Where one output pixel samples: the north-west corner (x0, y0), the
** fractions, and the corner weights as torch forms them. */
typedef struct sample_at {
	int64_t x0, y0;
	fv_real fx, fy;           /* ix - x0, iy - y0 */
	fv_real nw, ne, sw, se;   /* (1-fy)(1-fx), (1-fy)fx, fy(1-fx), fy fx */
	fv_real sx, sy;           /* d ix / d grid_x, d iy / d grid_y */
} sample_at;

static fv_real unnormalize(fv_real coord, int64_t size, bool align_corners, fv_real *scale)
{
	if (align_corners) {
		*scale = (fv_real)(size - 1) / 2;
		return ((coord + 1) / 2) * (fv_real)(size - 1);
	}
	*scale = (fv_real)size / 2;
	return ((coord + 1) * (fv_real)size - 1) / 2;
}

static sample_at locate(const fv_real *g, int64_t H, int64_t W, bool align_corners)
{
	sample_at s;
	fv_real ix = unnormalize(g[0], W, align_corners, &s.sx);
	fv_real iy = unnormalize(g[1], H, align_corners, &s.sy);
	fv_real x0 = floor(ix), y0 = floor(iy);
	s.fx = ix - x0;
	s.fy = iy - y0;
	s.nw = (1 - s.fy) * (1 - s.fx);
	s.ne = (1 - s.fy) * s.fx;
	s.sw = s.fy * (1 - s.fx);
	s.se = s.fy * s.fx;
	/* far outside (or NaN): clamp to a corner that is surely outside, so
	** that the conversion to an integer is defined */
	s.x0 = isfinite(x0) && fabs(x0) < 1e15 ? (int64_t)x0 : -2;
	s.y0 = isfinite(y0) && fabs(y0) < 1e15 ? (int64_t)y0 : -2;
	return s;
}

/* The value of a plane at (y, x), zero outside. */
static inline fv_real at(const fv_real *plane, int64_t H, int64_t W, int64_t y, int64_t x)
{
	return (y >= 0 && y < H && x >= 0 && x < W) ? plane[y * W + x] : 0;
}

static inline void add_at(fv_real *plane, int64_t H, int64_t W, int64_t y, int64_t x, fv_real v)
{
	if (y >= 0 && y < H && x >= 0 && x < W)
		plane[y * W + x] += v;
}

static fv_real interpolate(const fv_real *plane, int64_t H, int64_t W, const sample_at *s)
{
	return at(plane, H, W, s->y0, s->x0) * s->nw + at(plane, H, W, s->y0, s->x0 + 1) * s->ne +
	       at(plane, H, W, s->y0 + 1, s->x0) * s->sw + at(plane, H, W, s->y0 + 1, s->x0 + 1) * s->se;
}

/* ---- backward -------------------------------------------------------------------- */

static void input_grad_plane(const fv_real *grid, const fv_real *gout, int64_t HW_out,
                             int64_t H, int64_t W, bool align, fv_real *dplane)
{
	for (int64_t p = 0; p < HW_out; p++) {
		sample_at s = locate(grid + 2 * p, H, W, align);
		fv_real g = gout[p];
		add_at(dplane, H, W, s.y0, s.x0, s.nw * g);
		add_at(dplane, H, W, s.y0, s.x0 + 1, s.ne * g);
		add_at(dplane, H, W, s.y0 + 1, s.x0, s.sw * g);
		add_at(dplane, H, W, s.y0 + 1, s.x0 + 1, s.se * g);
	}
}

/* d/d(grid) of one output pixel, summed over channels. */
static void grid_grad_pixel(const fv_real *input_n, const fv_real *gout_n, int64_t C,
                            int64_t HW_out, int64_t p, int64_t H, int64_t W, bool align,
                            const fv_real *grid_p, fv_real *dgrid_p)
{
	sample_at s = locate(grid_p, H, W, align);
	fv_real gx = 0, gy = 0;
	for (int64_t c = 0; c < C; c++) {
		const fv_real *plane = input_n + c * H * W;
		fv_real nw = at(plane, H, W, s.y0, s.x0), ne = at(plane, H, W, s.y0, s.x0 + 1);
		fv_real sw = at(plane, H, W, s.y0 + 1, s.x0), se = at(plane, H, W, s.y0 + 1, s.x0 + 1);
		fv_real g = gout_n[c * HW_out + p];
		gx += ((ne - nw) * (1 - s.fy) + (se - sw) * s.fy) * g;
		gy += ((sw - nw) * (1 - s.fx) + (se - ne) * s.fx) * g;
	}
	dgrid_p[0] += gx * s.sx;
	dgrid_p[1] += gy * s.sy;
}

static fv_status grid_sample_backward(fv_ctx *ctx, fv_tensor *out, fv_tensor *const *srcs,
                                      fv_tensor *const *grads, const void *aux_)
{
	const gs_aux *aux = aux_;
	const fv_tensor *in = srcs[0], *grid = srcs[1];
	int64_t N = in->shape[0], C = in->shape[1], H = in->shape[2], W = in->shape[3];
	int64_t HWo = out->shape[2] * out->shape[3];
	const fv_real *gout = out->grad->data;
	(void)ctx;
	if (grads[0] != NULL) {
		fv_real *din = grads[0]->data;
#pragma omp parallel for schedule(static) if (N * C * HWo > PARALLEL_MIN_WORK)
		for (int64_t nc = 0; nc < N * C; nc++)
			input_grad_plane(grid->data + nc / C * HWo * 2, gout + nc * HWo, HWo, H, W,
			                 aux->align_corners, din + nc * H * W);
	}
	if (grads[1] != NULL) {
		fv_real *dgrid = grads[1]->data;
#pragma omp parallel for schedule(static) if (N * C * HWo > PARALLEL_MIN_WORK)
		for (int64_t np = 0; np < N * HWo; np++) {
			int64_t n = np / HWo, p = np % HWo;
			grid_grad_pixel(in->data + n * C * H * W, gout + n * C * HWo, C, HWo, p, H, W,
			                aux->align_corners, grid->data + 2 * np, dgrid + 2 * np);
		}
	}
	return FV_OK;
}

static const fv_op_def grid_sample_def = {"grid_sample", grid_sample_backward};

static fv_status check_shapes(const fv_tensor *in, const fv_tensor *grid)
{
	if (in->ndim != 4)
		return fv_error(FV_ERR_SHAPE, "fv_grid_sample: input must be (N, C, H, W); got shape %s",
		                fv_shape_str(in->ndim, in->shape));
	if (grid->ndim != 4 || grid->shape[3] != 2)
		return fv_error(FV_ERR_SHAPE, "fv_grid_sample: grid must be (N, Ho, Wo, 2); got shape %s",
		                fv_shape_str(grid->ndim, grid->shape));
	if (grid->shape[0] != in->shape[0])
		return fv_error(FV_ERR_SHAPE,
		                "fv_grid_sample: grid %s and input %s differ in batch size",
		                fv_shape_str(grid->ndim, grid->shape), fv_shape_str(in->ndim, in->shape));
	if (in->shape[2] < 1 || in->shape[3] < 1)
		return fv_error(FV_ERR_SHAPE, "fv_grid_sample: input %s has an empty plane",
		                fv_shape_str(in->ndim, in->shape));
	return FV_OK;
}

fv_tensor *fv_grid_sample(fv_ctx *ctx, fv_tensor *input, fv_tensor *grid, bool align_corners)
{
	FV_CHECK_INPUT(input);
	FV_CHECK_INPUT(grid);
	if (check_shapes(input, grid) != FV_OK)
		return NULL;
	int64_t N = input->shape[0], C = input->shape[1], H = input->shape[2], W = input->shape[3];
	int64_t shape[4] = {N, C, grid->shape[1], grid->shape[2]}, HWo = shape[2] * shape[3];
	fv_tensor *out = fv_ctx_empty(ctx, 4, shape);
	if (out == NULL)
		return NULL;
#pragma omp parallel for schedule(static) if (N * C * HWo > PARALLEL_MIN_WORK)
	for (int64_t np = 0; np < N * HWo; np++) {
		int64_t n = np / HWo, p = np % HWo;
		sample_at s = locate(grid->data + 2 * np, H, W, align_corners);
		for (int64_t c = 0; c < C; c++)
			out->data[(n * C + c) * HWo + p] =
				interpolate(input->data + (n * C + c) * H * W, H, W, &s);
	}
	gs_aux aux = {align_corners};
	fv_tensor *srcs[2] = {input, grid};
	if (fv_op_record(ctx, out, &grid_sample_def, 2, srcs, &aux, sizeof aux) != FV_OK)
		return NULL;
	return out;
}
