/*
** figure_axes.c: what makes a picture a figure: round tick values, axes
** with ticks and labels around line plots, colour bars with their values,
** and the two colour maps (diverging for signed values, a palette for
** series).
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "figure/figure_internal.h"

static const fv_rgb ink = {0, 0, 0}, grey = {150, 150, 150}, cursor_ink = {60, 60, 60};

#define TICK 3.0
#define TICK_FONT 7.5
#define LABEL_FONT 8.5
#define TITLE_FONT 9.5

/* ---- colour ------------------------------------------------------------------------ */

static uint8_t mix(uint8_t a, uint8_t b, double t)
{
	return (uint8_t)lround((double)a + ((double)b - (double)a) * t);
}

fv_rgb fv_colormap_diverging(double v, double vmax)
{
	static const fv_rgb neg = {33, 102, 172}, pos = {178, 24, 43}, mid = {255, 255, 255};
	if (!(vmax > 0) || !isfinite(v))
		return mid;
	double t = v / vmax;
	t = t > 1 ? 1 : t < -1 ? -1 : t;
	const fv_rgb end = t < 0 ? neg : pos;
	double a = fabs(t);
	return FV_RGB(mix(mid.r, end.r, a), mix(mid.g, end.g, a), mix(mid.b, end.b, a));
}

fv_rgb fv_series_colour(int i)
{
	static const fv_rgb palette[] = {{0, 140, 60},  {120, 40, 200}, {230, 120, 0},
	                                 {0, 90, 200},  {200, 30, 30},  {0, 160, 170},
	                                 {150, 110, 0}, {200, 0, 140}};
	return palette[(i % 8 + 8) % 8];
}

double fv__max_abs(const fv_real *v, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		if (fabs((double)v[i]) > m)
			m = fabs((double)v[i]);
	return m;
}

/* ---- ticks ------------------------------------------------------------------------- */

static double nice_step(double range, int max)
{
	double raw = range / (max > 1 ? max - 1 : 1);
	double p = pow(10, floor(log10(raw)));
	static const double m[] = {1, 2, 2.5, 5, 10};
	for (int i = 0; i < 5; i++)
		if (m[i] * p >= raw * (1 - 1e-9))
			return m[i] * p;
	return 10 * p;
}

int fv__nice_ticks(double lo, double hi, int max, double *ticks)
{
	if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
		ticks[0] = isfinite(lo) ? lo : 0;
		return 1;
	}
	double step = nice_step(hi - lo, max);
	int n = 0;
	for (double k = ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && n < max; k++)
		ticks[n++] = fabs(k) < 0.5 ? 0.0 : k * step;
	return n;
}

void fv__tick_label(char *buf, size_t n, double v, double step)
{
	if (fabs(v) < step * 1e-9)
		v = 0; /* never "-0" */
	double mag = fmax(fabs(v), step);
	if (!(step > 0) || mag >= 1e5 || mag < 1e-3) {
		snprintf(buf, n, "%.3g", v);
		return;
	}
	int decimals = (int)fmax(0, ceil(-log10(step) - 1e-9));
	snprintf(buf, n, "%.*f", decimals, v);
}

/* ---- colour bar --------------------------------------------------------------------- */

void fv__fig_colorbar(fv__fig *f, double x, double y, double w, double h, double vmax,
                      const char *label)
{
	enum { STEPS = 64 };
	fv_real ramp[STEPS];
	for (int i = 0; i < STEPS; i++)
		ramp[i] = (fv_real)(vmax * (1.0 - 2.0 * (i + 0.5) / STEPS));
	fv__fig_image(f, x, y, w, h, STEPS, 1, ramp, 1, 0, vmax);
	fv__fig_frame(f, x, y, w, h, ink, 0.6);
	double ticks[8];
	int n = vmax > 0 ? fv__nice_ticks(-vmax, vmax, 5, ticks) : 1;
	if (!(vmax > 0))
		ticks[0] = 0;
	double step = n > 1 ? ticks[1] - ticks[0] : 1;
	char text[32];
	double widest = 0;
	for (int i = 0; i < n; i++) {
		double ty = vmax > 0 ? y + h / 2 - ticks[i] / vmax * h / 2 : y + h / 2;
		fv__fig_line(f, x + w, ty, x + w + TICK, ty, ink, 0.6);
		fv__tick_label(text, sizeof text, ticks[i], step);
		fv__fig_text(f, x + w + TICK + 2, ty + TICK_FONT * 0.35, TICK_FONT, FV__LEFT, ink, false,
		             false, text);
		widest = fmax(widest, fv__fig_text_width(f, TICK_FONT, false, text));
	}
	if (label != NULL)
		fv__fig_text(f, x + w + TICK + 6 + widest + LABEL_FONT, y + h / 2, LABEL_FONT,
		             FV__CENTRE, ink, false, true, label);
}

/* ---- line plot ----------------------------------------------------------------------- */

typedef struct range {
	double x_lo, x_hi, y_lo, y_hi;
} range;

static range data_range(const fv__plot *p, int n_series, const fv__series *s)
{
	range r = {INFINITY, -INFINITY, INFINITY, -INFINITY};
	for (int k = 0; k < n_series; k++) {
		if (s[k].n > 0) {
			r.x_lo = fmin(r.x_lo, s[k].x0);
			r.x_hi = fmax(r.x_hi, s[k].x0 + s[k].n - 1);
		}
		for (int i = 0; i < s[k].n; i++)
			if (isfinite(s[k].y[i])) {
				r.y_lo = fmin(r.y_lo, s[k].y[i]);
				r.y_hi = fmax(r.y_hi, s[k].y[i]);
			}
	}
	if (p->x_hi > p->x_lo) {
		r.x_lo = p->x_lo;
		r.x_hi = p->x_hi;
	}
	if (!(r.x_lo < r.x_hi)) {
		r.x_lo = isfinite(r.x_lo) ? r.x_lo - 1 : 0;
		r.x_hi = r.x_lo + 2;
	}
	if (!(r.y_lo <= r.y_hi))
		r.y_lo = r.y_hi = 0;
	double pad = (r.y_hi - r.y_lo) * 0.06;
	if (pad < 1e-12 * fmax(1.0, fabs(r.y_hi)))
		pad = fmax(1e-3, fabs(r.y_hi) * 0.1); /* a flat line: give it room */
	r.y_lo -= pad;
	r.y_hi += pad;
	return r;
}

#define PX(v) (p->x + ((v) - r->x_lo) / (r->x_hi - r->x_lo) * p->w)
#define PY(v) (p->y + p->h - ((v) - r->y_lo) / (r->y_hi - r->y_lo) * p->h)

static void x_axis(fv__fig *f, const fv__plot *p, const range *r)
{
	double ticks[8];
	int n = fv__nice_ticks(r->x_lo, r->x_hi, 6, ticks);
	double step = n > 1 ? ticks[1] - ticks[0] : 1;
	char text[32];
	for (int i = 0; i < n; i++) {
		double x = PX(ticks[i]);
		fv__fig_line(f, x, p->y + p->h, x, p->y + p->h + TICK, ink, 0.6);
		fv__tick_label(text, sizeof text, ticks[i], step);
		fv__fig_text(f, x, p->y + p->h + TICK + TICK_FONT + 1, TICK_FONT, FV__CENTRE, ink, false,
		             false, text);
	}
	if (p->xlabel != NULL)
		fv__fig_text(f, p->x + p->w / 2, p->y + p->h + TICK + 2 * TICK_FONT + LABEL_FONT * 0.6,
		             LABEL_FONT, FV__CENTRE, ink, false, false, p->xlabel);
}

static void y_axis(fv__fig *f, const fv__plot *p, const range *r)
{
	double ticks[8], widest = 0;
	int n = fv__nice_ticks(r->y_lo, r->y_hi, 5, ticks);
	double step = n > 1 ? ticks[1] - ticks[0] : 1;
	char text[32];
	for (int i = 0; i < n; i++) {
		double y = PY(ticks[i]);
		fv__fig_line(f, p->x - TICK, y, p->x, y, ink, 0.6);
		fv__tick_label(text, sizeof text, ticks[i], step);
		fv__fig_text(f, p->x - TICK - 2, y + TICK_FONT * 0.35, TICK_FONT, FV__RIGHT, ink, false,
		             false, text);
		widest = fmax(widest, fv__fig_text_width(f, TICK_FONT, false, text));
	}
	if (p->ylabel != NULL)
		fv__fig_text(f, p->x - TICK - 5 - widest, p->y + p->h / 2, LABEL_FONT, FV__CENTRE, ink,
		             false, true, p->ylabel);
}

static void draw_series(fv__fig *f, const fv__plot *p, const range *r, const fv__series *s,
                        double *xs, double *ys)
{
	for (int i = 0; i < s->n; i++) {
		xs[i] = PX(s->x0 + i);
		ys[i] = isfinite(s->y[i]) ? PY(s->y[i]) : NAN;
	}
	fv__fig_polyline(f, s->n, xs, ys, s->colour, 1.2);
}

void fv__fig_line_plot(fv__fig *f, const fv__plot *p, int n_series, const fv__series *series)
{
	range rr = data_range(p, n_series, series), *r = &rr;
	if (r->y_lo < 0 && r->y_hi > 0)
		fv__fig_line(f, p->x, PY(0.0), p->x + p->w, PY(0.0), grey, 0.5);
	for (int k = 0; k < n_series; k++) {
		double xs[512], ys[512];
		fv__series part = series[k];
		/* long series in pieces that overlap by one point */
		for (int i = 0; i < series[k].n - 1 || (i == 0 && series[k].n == 1); i += 511) {
			part.y = series[k].y + i;
			part.x0 = series[k].x0 + i;
			part.n = series[k].n - i < 512 ? series[k].n - i : 512;
			draw_series(f, p, r, &part, xs, ys);
		}
	}
	if (isfinite(p->cursor))
		fv__fig_line(f, PX(p->cursor), p->y, PX(p->cursor), p->y + p->h, cursor_ink, 0.9);
	fv__fig_frame(f, p->x, p->y, p->w, p->h, ink, 0.7);
	x_axis(f, p, r);
	y_axis(f, p, r);
	if (p->title != NULL)
		fv__fig_text(f, p->x, p->y - 5, TITLE_FONT, FV__LEFT, ink, false, false, p->title);
}
#undef PX
#undef PY
