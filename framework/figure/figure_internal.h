/*
** figure_internal.h: the drawing layer the figures and movies share.  A
** figure is laid out in points (1/72 inch) at its natural size; fv__fig
** maps that onto the page the caller asked for and draws through cairo
** (PNG, PDF, the frames of a movie) or writes SVG itself, so that the
** SVG's text stays <text> (cairo's SVG surface turns text into glyph
** outlines).  Layout code calls the primitives below and never asks which.
*/
#ifndef FOVEA_FIGURE_INTERNAL_H
#define FOVEA_FIGURE_INTERNAL_H

#include <cairo.h>
#include <stdbool.h>

#include "fovea/figure.h"

typedef struct fv__fig fv__fig;

typedef enum fv__align { FV__LEFT, FV__CENTRE, FV__RIGHT } fv__align;

/* The font of every figure (Debian's fonts-dejavu-core). */
#define FV__FONT "DejaVu Sans"

/* A figure of w x h points to be written to `path` (the format from `out`
** or the name).  NULL with the error set on failure. */
fv__fig *fv__fig_begin(double w, double h, const fv_figure_output *out, const char *path);

/* Write the figure atomically and free it (also on failure). */
fv_status fv__fig_end(fv__fig *f);

/* Free without writing (NULL is fine). */
void fv__fig_free(fv__fig *f);

/* A figure drawn on a width x height ARGB32 pixel buffer, w x h points
** scaled to fill it: the frames of a movie.  fv__fig_pixels gives the
** buffer (cairo's ARGB32: B, G, R, A bytes on little-endian machines)
** after flushing what was drawn. */
fv__fig *fv__fig_raster(double w, double h, int width, int height);
const unsigned char *fv__fig_pixels(fv__fig *f, int *stride);

/* ---- primitives (points; y grows downwards) ------------------------------------------ */

void fv__fig_rect(fv__fig *f, double x, double y, double w, double h, fv_rgb fill);
void fv__fig_frame(fv__fig *f, double x, double y, double w, double h, fv_rgb stroke,
                   double line_width);
void fv__fig_line(fv__fig *f, double x0, double y0, double x1, double y1, fv_rgb stroke,
                  double line_width);
/* A line through (x[i], y[i]); a non-finite y breaks it. */
void fv__fig_polyline(fv__fig *f, int n, const double *x, const double *y, fv_rgb stroke,
                      double line_width);
void fv__fig_dot(fv__fig *f, double x, double y, double radius, fv_rgb fill);

/* Text with its baseline at y, anchored at x by `align`; `vertical` turns
** it 90 degrees anticlockwise (an axis label), x then being the baseline. */
void fv__fig_text(fv__fig *f, double x, double y, double size, fv__align align, fv_rgb colour,
                  bool bold, bool vertical, const char *text);
double fv__fig_text_width(fv__fig *f, double size, bool bold, const char *text);

/* A rows x cols image of values[i * row_stride + j * col_stride] through
** the diverging map into the box (x, y, w, h), cells drawn as sharp squares. */
void fv__fig_image(fv__fig *f, double x, double y, double w, double h, int rows, int cols,
                   const fv_real *values, int64_t row_stride, int64_t col_stride, double vmax);

/* ---- axes (figure_axes.c) ------------------------------------------------------------ */

/* At most `max` round tick values covering [lo, hi] (1, 2 or 5 times a
** power of ten apart), ascending; returns how many. */
int fv__nice_ticks(double lo, double hi, int max, double *ticks);

/* A tick label: the shortest of %g that tells the ticks apart. */
void fv__tick_label(char *buf, size_t n, double v, double step);

/* A vertical colour bar from -vmax (bottom) to +vmax (top) in (x, y, w, h),
** with ticks and their values to the right, `label` (may be NULL) beside. */
void fv__fig_colorbar(fv__fig *f, double x, double y, double w, double h, double vmax,
                      const char *label);

/* A line plot: series over x = x0 + i (i = 0 .. n-1), in the box (x, y,
** w, h) of the axes, with ticks and values on both axes, a zero line when
** zero is in range, the title above, the axis labels (each may be NULL)
** and, when cursor is finite, a vertical line at x = cursor. */
typedef struct fv__plot {
	double x, y, w, h;
	const char *title, *xlabel, *ylabel;
	double x_lo, x_hi; /* the x range; equal: from the series */
	double cursor;
} fv__plot;

typedef struct fv__series {
	const double *y;
	int n;
	double x0;
	fv_rgb colour;
} fv__series;

void fv__fig_line_plot(fv__fig *f, const fv__plot *p, int n_series, const fv__series *series);

/* The stimulus (C, T, H, W) or (1, C, T, H, W) as its four dims. */
fv_status fv__stimulus_dims(const fv_tensor *s, int64_t d[4]);

/* The name a title gives a model: its component's name. */
const char *fv__model_name(const fv_module *model);

/* The largest |v| over n values (0 for none). */
double fv__max_abs(const fv_real *v, int64_t n);

#endif /* FOVEA_FIGURE_INTERNAL_H */
