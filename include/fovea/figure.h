/*
** figure.h: PNG figures of stimuli and trained models, drawn without a
** plotting library: an RGB canvas with the few primitives the figures
** need (rectangles, lines, a built-in 3x5 bitmap font, images through a
** diverging colour map centred at zero, a colour bar, a line plot with
** axes), saved through libpng, atomically.
**
** The figures researchers look at:
**   fv_figure_stimulus          a stimulus (an MEI): one row per colour
**                               channel of spatial frames over time, one
**                               shared colour bar, and the time course at
**                               the stimulus' peak pixel per channel;
**   fv_figure_readout_positions the readout's learned receptive-field
**                               centres over the stimulus field, per session;
**   fv_figure_core_filters      the first core layer's spatial and temporal
**                               filters.
*/
#ifndef FOVEA_FIGURE_H
#define FOVEA_FIGURE_H

#include <stdint.h>

#include "config.h"
#include "data.h"
#include "fovea.h"
#include "plugin.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_rgb {
	uint8_t r, g, b;
} fv_rgb;

#define FV_RGB(r, g, b) ((fv_rgb){(r), (g), (b)})

/* ---- the canvas --------------------------------------------------------------------
** Coordinates are pixels, (0, 0) the top-left corner; everything drawn is
** clipped to the canvas. */

typedef struct fv_canvas fv_canvas;

/* A white canvas; NULL (FV_ERR_NOMEM, or FV_ERR_ARG for a size outside
** 1..16384) on failure. */
FV_API fv_canvas *fv_canvas_new(int width, int height);
FV_API void fv_canvas_free(fv_canvas *c);
FV_API int fv_canvas_width(const fv_canvas *c);
FV_API int fv_canvas_height(const fv_canvas *c);
FV_API fv_rgb fv_canvas_pixel(const fv_canvas *c, int x, int y); /* white outside */

FV_API void fv_canvas_rect(fv_canvas *c, int x, int y, int w, int h, fv_rgb colour);
FV_API void fv_canvas_frame(fv_canvas *c, int x, int y, int w, int h, fv_rgb colour);
FV_API void fv_canvas_line(fv_canvas *c, int x0, int y0, int x1, int y1, fv_rgb colour);

/* Text in the built-in 3x5 font, each font pixel `scale` canvas pixels;
** (x, y) is the top-left corner.  Letters are drawn upper-case; characters
** the font lacks are drawn as boxes.  Returns the width drawn. */
FV_API int fv_canvas_text(fv_canvas *c, int x, int y, int scale, fv_rgb colour, const char *text);
FV_API int fv_text_width(const char *text, int scale);
#define FV_TEXT_HEIGHT(scale) (5 * (scale))

/* The diverging colour map: blue for -vmax, white for 0, red for +vmax
** (values beyond are clamped; vmax <= 0 gives white). */
FV_API fv_rgb fv_colormap_diverging(double v, double vmax);

/* A rows x cols image of values[i * row_stride + j * col_stride] through
** the diverging map, each value a cell x cell square, top-left at (x, y). */
FV_API void fv_canvas_image(fv_canvas *c, int x, int y, int rows, int cols, const fv_real *values,
                            int64_t row_stride, int64_t col_stride, int cell, double vmax);

/* A vertical colour bar from +vmax (top) to -vmax (bottom), labelled at
** both ends and at zero, to the right of the bar. */
FV_API void fv_canvas_colorbar(fv_canvas *c, int x, int y, int w, int h, double vmax);

/* A line plot in the box (x, y, w, h): axes, the zero line when zero is in
** range, the y range and the x range (0 .. n-1) as tick labels, a title
** above the box. */
typedef struct fv_series {
	const double *y;
	int n;
	fv_rgb colour;
} fv_series;

FV_API void fv_canvas_line_plot(fv_canvas *c, int x, int y, int w, int h, const char *title,
                                int n_series, const fv_series *series);

/* Encode as an 8-bit RGB PNG and write it atomically. */
FV_API fv_status fv_canvas_save_png(const fv_canvas *c, const char *path);

/* ---- figures ----------------------------------------------------------------------- */

/* A distinct colour per channel/series (cycles after 8). */
FV_API fv_rgb fv_series_colour(int i);

/* The peak of a stimulus (C, T, H, W) or (1, C, T, H, W): the pixel whose
** energy summed over channels and time, sum_c sum_t x[c,t,y,x]^2, is
** largest.  The energy, unlike the largest |value| of one frame, does not
** depend on which frame of a temporal filter happens to be largest, and
** the sum over channels finds the centre whichever channel drives the
** neuron.  *channel gets the channel with most energy at that pixel. */
FV_API fv_status fv_stimulus_peak(const fv_tensor *stimulus, int64_t *channel, int64_t *row,
                                  int64_t *col);

/* The stimulus figure (see the top of this file); at most `max_frames`
** frames are shown, evenly spaced (<= 0: 10). */
FV_API fv_status fv_figure_stimulus(const fv_tensor *stimulus, const char *title, int max_frames,
                                    const char *path);

/* Readout positions: where each neuron of every session of `info` reads
** the core's output (fv_module_neuron_positions: a Gaussian-mask
** readout's mask centres), in stimulus pixels, one panel per session; a
** feature map smaller than the stimulus is centred on it.  A model that
** cannot tell is an FV_ERR_NOTFOUND. */
FV_API fv_status fv_figure_readout_positions(const fv_module *model, const fv_data_info *info,
                                             const char *path);

/* The first core layer's filters (fv_module_first_layer_filters: any of
** SimpleCoreWrapper's three convolution types), one row per output
** channel: the spatial filter for each input channel at the kernel's peak
** time, then the temporal filters at the kernel's peak pixel.  A model
** whose core cannot give them is an FV_ERR_NOTFOUND. */
FV_API fv_status fv_figure_core_filters(const fv_module *model, const char *path);

/* Both model figures into `dir`: readout_positions.png and
** core_filters.png; a figure the model cannot have (FV_ERR_NOTFOUND) is
** skipped.  *n_written (may be NULL) gets how many were written. */
FV_API fv_status fv_figures_write_model(const fv_module *model, const fv_data_info *info,
                                        const char *dir, int *n_written);

/* Write `size` bytes to `path` atomically (temporary file, fsync, rename):
** a crash leaves the old file or the new one.  For tools writing reports. */
FV_API fv_status fv_write_file_atomic(const char *path, const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_FIGURE_H */
