/*
** figure.h: figures and movies of stimuli and trained models, drawn with
** cairo (anti-aliased, DejaVu Sans) and written as PNG, SVG or PDF; movies
** are encoded with FFmpeg's libraries as mp4 (H.264), animated PNG or GIF.
**
** The figures researchers look at:
**   fv_figure_stimulus          a stimulus (an MEI): one row per colour
**                               channel of spatial frames over time, one
**                               shared colour bar with its values, and the
**                               time course at the stimulus' peak pixel per
**                               channel, on axes with ticks and labels;
**   fv_figure_readout_positions the readout's learned receptive-field
**                               centres over the stimulus field, per session;
**   fv_figure_core_filters      the first core layer's spatial and temporal
**                               filters;
**   fv_movie_write              a stimulus as a movie: the colour channels
**                               side by side, a frame counter, response
**                               traces advancing beneath.
** Every figure function writes `path` atomically; its format comes from the
** file name (.png, .svg, .pdf) unless an fv_figure_output says otherwise.
** SVG text stays text (<text> elements), so titles and tick labels can be
** edited on a slide and searched.
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

/* The diverging colour map: blue for -vmax, white for 0, red for +vmax
** (values beyond are clamped; vmax <= 0 gives white). */
FV_API fv_rgb fv_colormap_diverging(double v, double vmax);

/* A distinct colour per channel/series (cycles after 8). */
FV_API fv_rgb fv_series_colour(int i);

/* ---- output ------------------------------------------------------------------------ */

typedef enum fv_figure_format {
	FV_FIGURE_AUTO, /* from the file name: .png, .svg or .pdf (anything else is an error) */
	FV_FIGURE_PNG,
	FV_FIGURE_SVG,
	FV_FIGURE_PDF
} fv_figure_format;

/* How a figure is written.  A NULL fv_figure_output, or a zeroed one, means
** the format from the file name at the figure's natural size, 100 dpi. */
typedef struct fv_figure_output {
	fv_figure_format format;
	double width_in, height_in; /* the page in inches; 0: natural (one given: the other
	                            ** keeps the aspect ratio); the figure is scaled to fit */
	double dpi;                 /* PNG pixels per inch; 0: 100 */
} fv_figure_output;

/* "png", "svg" or "pdf" (any case; NULL or "auto": FV_FIGURE_AUTO) into
** *format; FV_ERR_ARG naming the value otherwise. */
FV_API fv_status fv_figure_format_parse(const char *name, fv_figure_format *format);

/* The file extension of a format ("png", "svg", "pdf"; AUTO: "png"). */
FV_API const char *fv_figure_format_ext(fv_figure_format format);

/* ---- figures ----------------------------------------------------------------------- */

/* The peak of a stimulus (C, T, H, W) or (1, C, T, H, W): the pixel whose
** energy summed over channels and time, sum_c sum_t x[c,t,y,x]^2, is
** largest.  The energy, unlike the largest |value| of one frame, does not
** depend on which frame of a temporal filter happens to be largest, and
** the sum over channels finds the centre whichever channel drives the
** neuron.  *channel gets the channel with most energy at that pixel. */
FV_API fv_status fv_stimulus_peak(const fv_tensor *stimulus, int64_t *channel, int64_t *row,
                                  int64_t *col);

/* The stimulus figure (see the top of this file); at most `max_frames`
** frames are shown, evenly spaced (<= 0: 10).  `title` (may be NULL) heads
** it: the callers name the model, session and neuron there. */
FV_API fv_status fv_figure_stimulus(const fv_tensor *stimulus, const char *title, int max_frames,
                                    const char *path);
FV_API fv_status fv_figure_stimulus_to(const fv_tensor *stimulus, const char *title,
                                       int max_frames, const fv_figure_output *out,
                                       const char *path);

/* Readout positions: where each neuron of every session of `info` reads
** the core's output (fv_module_neuron_positions: a Gaussian-mask
** readout's mask centres), in stimulus pixels, one panel per session; a
** feature map smaller than the stimulus is centred on it.  A model that
** cannot tell is an FV_ERR_NOTFOUND. */
FV_API fv_status fv_figure_readout_positions(const fv_module *model, const fv_data_info *info,
                                             const char *path);
FV_API fv_status fv_figure_readout_positions_to(const fv_module *model,
                                                const fv_data_info *info,
                                                const fv_figure_output *out, const char *path);

/* The first core layer's filters (fv_module_first_layer_filters: any of
** SimpleCoreWrapper's three convolution types), one row per output
** channel: the spatial filter for each input channel at the kernel's peak
** time, then the temporal filters at the kernel's peak pixel.  A model
** whose core cannot give them is an FV_ERR_NOTFOUND. */
FV_API fv_status fv_figure_core_filters(const fv_module *model, const char *path);
FV_API fv_status fv_figure_core_filters_to(const fv_module *model, const fv_figure_output *out,
                                           const char *path);
/* The same for core layer `layer` (fv_module_layer_filters); FV_ERR_NOTFOUND
** past the core's last layer. */
FV_API fv_status fv_figure_layer_filters_to(const fv_module *model, int64_t layer,
                                            const fv_figure_output *out, const char *path);

/* The model figures into `dir`: readout_positions.EXT, core_filters.EXT
** (layer 0) and core_filters_layerN.EXT for every further core layer (EXT
** from out->format; NULL or AUTO: png); a figure the model cannot have
** (FV_ERR_NOTFOUND) is skipped.  *n_written (may be
** NULL) gets how many were written. */
FV_API fv_status fv_figures_write_model(const fv_module *model, const fv_data_info *info,
                                        const char *dir, int *n_written);
FV_API fv_status fv_figures_write_model_to(const fv_module *model, const fv_data_info *info,
                                           const char *dir, const fv_figure_output *out,
                                           int *n_written);

/* ---- movies ------------------------------------------------------------------------ */

/* A stimulus as a movie, one video frame per stimulus frame: every colour
** channel side by side on the diverging map (one scale for the whole
** movie, a colour bar with its values), "frame t / T", and beneath, when
** given, response traces with a cursor at the current frame.  Responses
** are (n_time, n_traces), time-major; a model's output is often shorter
** than its input (unpadded temporal convolutions), so response step k is
** drawn under stimulus frame k + T - n_time (the last frames align). */
typedef struct fv_movie_args {
	const fv_tensor *stimulus;  /* (C, T, H, W) or (1, C, T, H, W) */
	const char *title;          /* may be NULL */
	const double *responses;    /* may be NULL */
	int64_t n_time;
	int n_traces;
	const char *trace_label;    /* the response axis label, e.g. "response"; may be NULL */
	int fps;                    /* <= 0: 5, as openretina's save_stimulus_to_mp4_video */
	int width;                  /* frame width in pixels; <= 0: natural (even sizes) */
} fv_movie_args;

/* Encode the movie as `path`: .mp4 (H.264 when the FFmpeg libraries have
** an encoder for it, MPEG-4 part 2 otherwise), .gif, or .png/.apng (an
** animated PNG).  Written to a temporary file, then renamed. */
FV_API fv_status fv_movie_write(const fv_movie_args *args, const char *path);

/* Write `size` bytes to `path` atomically (temporary file, fsync, rename):
** a crash leaves the old file or the new one.  For tools writing reports. */
FV_API fv_status fv_write_file_atomic(const char *path, const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_FIGURE_H */
