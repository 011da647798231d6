/*
** sta_filters.c: spatial and temporal filters from a spike-triggered
** average, as openretina's sta_processing computes them (see the header).
**
** openretina fits the Gaussian with scipy's curve_fit (trust-region
** reflective within bounds).  Here a Levenberg-Marquardt iteration with an
** analytic Jacobian, each step projected into the same bounds, is run to
** convergence from the same start point: both find the least-squares
** optimum, so the filters agree to rounding.  A Gaussian's parameters are
** not unique (theta + pi, or theta + pi/2 with the sigmas swapped, is the
** same function); the filters and the centre do not depend on which one
** is found.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fovea/npy.h>

#include "sta_filters.h"

#define N_PARAMS 6 /* center_x, center_y, sigma_x, sigma_y, theta, amplitude */
#define MAX_ITERATIONS 2000

/* ---- the model: a rotated 2-D Gaussian -------------------------------------------- */

typedef struct quad {
	double a, b, c;
} quad;

static quad quad_of(const double p[N_PARAMS])
{
	double ct = cos(p[4]), st = sin(p[4]), s2 = sin(2 * p[4]);
	double sx2 = p[2] * p[2], sy2 = p[3] * p[3];
	return (quad){ct * ct / (2 * sx2) + st * st / (2 * sy2), s2 / (4 * sx2) - s2 / (4 * sy2),
	              st * st / (2 * sx2) + ct * ct / (2 * sy2)};
}

static double q_at(quad q, double dx, double dy)
{
	return q.a * dx * dx + 2 * q.b * dx * dy + q.c * dy * dy;
}

static double gaussian_at(const double p[N_PARAMS], quad q, double x, double y)
{
	return p[5] * exp(-q_at(q, x - p[0], y - p[1]));
}

/* d gaussian / d p at (x, y). */
static void gradient_at(const double p[N_PARAMS], quad q, double x, double y,
                        double d[N_PARAMS])
{
	double dx = x - p[0], dy = y - p[1];
	double e = exp(-q_at(q, dx, dy)), g = p[5] * e;
	double ct = cos(p[4]), st = sin(p[4]), s2 = sin(2 * p[4]), c2 = cos(2 * p[4]);
	double sx = p[2], sy = p[3], sx2 = sx * sx, sy2 = sy * sy;
	double sx3 = sx2 * sx, sy3 = sy2 * sy;
	quad dsx = {-ct * ct / sx3, -s2 / (2 * sx3), -st * st / sx3};
	quad dsy = {-st * st / sy3, s2 / (2 * sy3), -ct * ct / sy3};
	quad dth = {s2 * (1 / (2 * sy2) - 1 / (2 * sx2)), c2 / (2 * sx2) - c2 / (2 * sy2),
	            s2 * (1 / (2 * sx2) - 1 / (2 * sy2))};
	d[0] = g * (2 * q.a * dx + 2 * q.b * dy);
	d[1] = g * (2 * q.b * dx + 2 * q.c * dy);
	d[2] = -g * q_at(dsx, dx, dy);
	d[3] = -g * q_at(dsy, dx, dy);
	d[4] = -g * q_at(dth, dx, dy);
	d[5] = e;
}

/* ---- bounded Levenberg-Marquardt ------------------------------------------------ */

typedef struct fit_problem {
	const double *frame; /* (h, w) */
	int64_t h, w;
	double lo[N_PARAMS], hi[N_PARAMS];
} fit_problem;

static double cost_of(const fit_problem *f, const double p[N_PARAMS])
{
	quad q = quad_of(p);
	double cost = 0;
	for (int64_t y = 0; y < f->h; y++)
		for (int64_t x = 0; x < f->w; x++) {
			double r = gaussian_at(p, q, (double)x, (double)y) - f->frame[y * f->w + x];
			cost += r * r;
		}
	return 0.5 * cost;
}

/* JtJ and Jt r at p. */
static void normal_equations(const fit_problem *f, const double p[N_PARAMS],
                             double jtj[N_PARAMS][N_PARAMS], double jtr[N_PARAMS])
{
	quad q = quad_of(p);
	memset(jtj, 0, sizeof(double) * N_PARAMS * N_PARAMS);
	memset(jtr, 0, sizeof(double) * N_PARAMS);
	for (int64_t y = 0; y < f->h; y++)
		for (int64_t x = 0; x < f->w; x++) {
			double d[N_PARAMS];
			gradient_at(p, q, (double)x, (double)y, d);
			double r = gaussian_at(p, q, (double)x, (double)y) - f->frame[y * f->w + x];
			for (int i = 0; i < N_PARAMS; i++) {
				jtr[i] += d[i] * r;
				for (int j = 0; j < N_PARAMS; j++)
					jtj[i][j] += d[i] * d[j];
			}
		}
}

/* Solve m x = b by Gaussian elimination with partial pivoting; false when
** singular. */
static bool solve(double m[N_PARAMS][N_PARAMS], double b[N_PARAMS], double x[N_PARAMS])
{
	for (int k = 0; k < N_PARAMS; k++) {
		int piv = k;
		for (int i = k + 1; i < N_PARAMS; i++)
			if (fabs(m[i][k]) > fabs(m[piv][k]))
				piv = i;
		if (!(fabs(m[piv][k]) > 0))
			return false;
		for (int j = 0; j < N_PARAMS; j++) {
			double t = m[k][j];
			m[k][j] = m[piv][j];
			m[piv][j] = t;
		}
		double t = b[k];
		b[k] = b[piv];
		b[piv] = t;
		for (int i = k + 1; i < N_PARAMS; i++) {
			double f = m[i][k] / m[k][k];
			for (int j = k; j < N_PARAMS; j++)
				m[i][j] -= f * m[k][j];
			b[i] -= f * b[k];
		}
	}
	for (int i = N_PARAMS - 1; i >= 0; i--) {
		double s = b[i];
		for (int j = i + 1; j < N_PARAMS; j++)
			s -= m[i][j] * x[j];
		x[i] = s / m[i][i];
	}
	return true;
}

/* One damped step from p: true with *next and *cost when it lowers the cost. */
static bool damped_step(const fit_problem *f, const double p[N_PARAMS], double cost,
                        double *lambda, double next[N_PARAMS], double *next_cost)
{
	double jtj[N_PARAMS][N_PARAMS], jtr[N_PARAMS];
	normal_equations(f, p, jtj, jtr);
	for (int tries = 0; tries < 40; tries++, *lambda *= 10) {
		double m[N_PARAMS][N_PARAMS], b[N_PARAMS], d[N_PARAMS];
		for (int i = 0; i < N_PARAMS; i++) {
			for (int j = 0; j < N_PARAMS; j++)
				m[i][j] = jtj[i][j];
			m[i][i] += *lambda * fmax(jtj[i][i], 1e-12);
			b[i] = -jtr[i];
		}
		if (!solve(m, b, d))
			continue;
		for (int i = 0; i < N_PARAMS; i++)
			next[i] = fmin(fmax(p[i] + d[i], f->lo[i]), f->hi[i]);
		*next_cost = cost_of(f, next);
		if (isfinite(*next_cost) && *next_cost <= cost) {
			*lambda = fmax(*lambda / 10, 1e-15);
			return true;
		}
	}
	return false;
}

/* Minimise from p in place; false when it did not converge. */
static bool levenberg_marquardt(const fit_problem *f, double p[N_PARAMS])
{
	double cost = cost_of(f, p), lambda = 1e-3;
	if (!isfinite(cost))
		return false;
	for (int it = 0; it < MAX_ITERATIONS; it++) {
		double next[N_PARAMS], next_cost;
		if (!damped_step(f, p, cost, &lambda, next, &next_cost))
			return true; /* no step lowers the cost: a minimum */
		double moved = 0, size = 0;
		for (int i = 0; i < N_PARAMS; i++) {
			moved += (next[i] - p[i]) * (next[i] - p[i]);
			size += p[i] * p[i];
		}
		bool done = cost - next_cost <= 1e-16 * cost && moved <= 1e-24 * (size + 1e-24);
		memcpy(p, next, sizeof next);
		cost = next_cost;
		if (done)
			return true;
	}
	return false;
}

/* ---- openretina's fit_2d_gaussian ---------------------------------------------------- */

static sta_fit fit_gaussian(const double *frame, int64_t h, int64_t w)
{
	int64_t peak = 0;
	for (int64_t i = 1; i < h * w; i++)
		if (fabs(frame[i]) > fabs(frame[peak]))
			peak = i;
	double cy = (double)(peak / w), cx = (double)(peak % w);
	double sigma = (double)(h < w ? h : w) / 6.0;
	double p[N_PARAMS] = {cx, cy, sigma, sigma, 0.0, frame[peak]};
	fit_problem f = {frame, h, w, {0, 0, 0.5, 0.5, -M_PI, -INFINITY},
	                 {(double)(w - 1), (double)(h - 1), (double)w, (double)h, M_PI, INFINITY}};
	sta_fit start = {cx, cy, sigma, sigma, 0.0, frame[peak], false};
	/* scipy refuses empty bounds and a start point outside them */
	for (int i = 0; i < N_PARAMS; i++)
		if (!(f.lo[i] < f.hi[i]) || p[i] < f.lo[i] || p[i] > f.hi[i])
			return start;
	/* The Gaussian is periodic in theta (period pi): it runs free, and is
	** brought back into openretina's [-pi, pi] at the end.  Bounding it
	** would stop the iteration at -pi when the optimum lies across. */
	f.lo[4] = -INFINITY;
	f.hi[4] = INFINITY;
	if (!levenberg_marquardt(&f, p))
		return start;
	double theta = remainder(p[4], M_PI); /* in [-pi/2, pi/2] */
	return (sta_fit){p[0], p[1], p[2], p[3], theta, p[5], true};
}

/* ---- extract_filters_from_sta ------------------------------------------------------------ */

static int64_t peak_frame(const double *sta, int64_t frames, int64_t hw)
{
	int64_t best = 0;
	double best_var = -1;
	for (int64_t t = 0; t < frames; t++) {
		const double *f = sta + t * hw;
		double mean = 0, var = 0;
		for (int64_t i = 0; i < hw; i++)
			mean += f[i];
		mean /= (double)hw;
		for (int64_t i = 0; i < hw; i++)
			var += (f[i] - mean) * (f[i] - mean);
		var /= (double)hw;
		if (var > best_var) {
			best_var = var;
			best = t;
		}
	}
	return best;
}

static void normalise(double *v, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += v[i] * v[i];
	s = sqrt(s);
	for (int64_t i = 0; s > 0 && i < n; i++)
		v[i] /= s;
}

/* The Gaussian with |amplitude| inside sigma_contour radii, then unit norm. */
static void spatial_filter(const sta_fit *g, int64_t h, int64_t w, double sigma_contour,
                           double *out)
{
	double p[N_PARAMS] = {g->center_x, g->center_y, g->sigma_x, g->sigma_y, g->theta,
	                      fabs(g->amplitude)};
	quad q = quad_of(p);
	double ct = cos(g->theta), st = sin(g->theta);
	for (int64_t y = 0; y < h; y++)
		for (int64_t x = 0; x < w; x++) {
			double dx = (double)x - g->center_x, dy = (double)y - g->center_y;
			double xr = (ct * dx + st * dy) / g->sigma_x, yr = (-st * dx + ct * dy) / g->sigma_y;
			bool inside = sqrt(xr * xr + yr * yr) <= sigma_contour;
			out[y * w + x] = inside ? gaussian_at(p, q, (double)x, (double)y) : 0.0;
		}
	normalise(out, h * w);
}

/* np.clip(np.round(v), 0, n - 1): round half to even, as numpy. */
static int64_t centre_pixel(double v, int64_t n)
{
	double r = nearbyint(v);
	return r < 0 ? 0 : r > (double)(n - 1) ? n - 1 : (int64_t)r;
}

fv_status sta_extract(const char *who, const double *sta, int64_t frames, int64_t h, int64_t w,
                      int64_t temporal_crop, double sigma_contour, sta_filters *out)
{
	memset(out, 0, sizeof *out);
	int64_t keep = temporal_crop != FV_NONE_INT && temporal_crop < frames ? temporal_crop : frames;
	out->h = h;
	out->w = w;
	out->frames = keep;
	out->spatial = calloc((size_t)(h * w), sizeof *out->spatial);
	out->temporal = calloc((size_t)keep, sizeof *out->temporal);
	if (out->spatial == NULL || out->temporal == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for the STA filters", who);
	bool finite = true;
	for (int64_t i = 0; i < frames * h * w; i++)
		finite &= isfinite(sta[i]) != 0;
	if (!finite) { /* zero filters: the neuron gives a constant baseline */
		if (temporal_crop != FV_NONE_INT)
			out->frames = temporal_crop;
		out->fit = (sta_fit){(double)w / 2, (double)h / 2, 1, 1, 0, 0, false};
		return FV_OK;
	}
	out->fit = fit_gaussian(sta + peak_frame(sta, frames, h * w) * h * w, h, w);
	spatial_filter(&out->fit, h, w, sigma_contour, out->spatial);
	int64_t cy = centre_pixel(out->fit.center_y, h), cx = centre_pixel(out->fit.center_x, w);
	for (int64_t t = 0; t < keep; t++)
		out->temporal[t] = sta[((frames - keep + t) * h + cy) * w + cx];
	normalise(out->temporal, keep);
	return FV_OK;
}

/* ---- load_sta_and_extract_filters --------------------------------------------------------- */

fv_status sta_load_filters(const char *who, const char *dir, const char *file, bool flip,
                           int64_t target_h, int64_t target_w, int64_t temporal_crop,
                           double sigma_contour, sta_filters *out)
{
	memset(out, 0, sizeof *out);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	fv_tensor *t = fv_npy_load(path);
	if (t == NULL) /* the message names the file */
		return fv_error(fv_errcode(), "the STA: %s", fv_errmsg());
	fv_status st = FV_OK;
	if (t->ndim != 3)
		st = fv_error(FV_ERR_SHAPE, "the STA %s: expected (frames, height, width), got %s",
		              path, fv_shape_str(t->ndim, t->shape));
	int64_t frames = t->shape[0], sh = t->shape[1], sw = t->shape[2];
	if (st == FV_OK && (sh < target_h || sw < target_w))
		st = fv_error(FV_ERR_SHAPE, "the STA %s: its frames (%lld, %lld) are smaller than the "
		              "stimulus (%lld, %lld)", path, (long long)sh, (long long)sw,
		              (long long)target_h, (long long)target_w);
	double *sta = st == FV_OK ? malloc((size_t)(frames * target_h * target_w) * sizeof *sta) : NULL;
	if (st == FV_OK && sta == NULL)
		st = fv_error(FV_ERR_NOMEM, "%s: out of memory for the STA %s", who, path);
	if (st == FV_OK) {
		int64_t top = (sh - target_h) / 2, left = (sw - target_w) / 2;
		for (int64_t f = 0; f < frames; f++)
			for (int64_t y = 0; y < target_h; y++)
				for (int64_t x = 0; x < target_w; x++) {
					int64_t sx = flip ? sw - 1 - (left + x) : left + x;
					sta[(f * target_h + y) * target_w + x] =
						(double)t->data[(f * sh + top + y) * sw + sx];
				}
		st = sta_extract(who, sta, frames, target_h, target_w, temporal_crop, sigma_contour, out);
	}
	free(sta);
	fv_tensor_free(t);
	return st;
}

void sta_filters_free(sta_filters *f)
{
	free(f->spatial);
	free(f->temporal);
	f->spatial = f->temporal = NULL;
}
