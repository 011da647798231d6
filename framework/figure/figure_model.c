/*
** figure_model.c: the figures of figure.h drawn from a stimulus or from a
** trained model: the stimulus (MEI) figure, the readout positions, the
** first core layer's filters, laid out in points (figure_internal.h).
**
** Model figures ask the model what to draw, through the optional
** callbacks of its components (fv_module_neuron_positions,
** fv_module_first_layer_filters): which tensors mean what is the plugins'
** business, and a model whose components cannot answer has no such figure.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/figure.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"
#include "figure/figure_internal.h"

static const fv_rgb ink = {0, 0, 0}, border = {170, 170, 170};

#define GAP 4.0
#define TITLE_FONT 12.0
#define SMALL_FONT 7.5
#define LABEL_FONT 8.5

/* The stimulus as (C, T, H, W): dims, and the shape in `d`. */
fv_status fv__stimulus_dims(const fv_tensor *s, int64_t d[4])
{
	int first = s->ndim == 5 && s->shape[0] == 1 ? 1 : 0;
	if (s->ndim - first != 4)
		return fv_error(FV_ERR_SHAPE,
		                "a stimulus figure needs (channels, time, height, width) or a batch of "
		                "one of them, got shape %s",
		                fv_shape_str(s->ndim, s->shape));
	memcpy(d, s->shape + first, 4 * sizeof *d);
	return FV_OK;
}

fv_status fv_stimulus_peak(const fv_tensor *stimulus, int64_t *channel, int64_t *row, int64_t *col)
{
	int64_t d[4];
	fv_status rc = fv__stimulus_dims(stimulus, d);
	if (rc != FV_OK)
		return rc;
	int64_t C = d[0], T = d[1], HW = d[2] * d[3];
	double best = -1;
	for (int64_t p = 0; p < HW; p++) {
		double total = 0, best_c = -1;
		int64_t arg_c = 0;
		for (int64_t c = 0; c < C; c++) {
			double e = 0;
			for (int64_t t = 0; t < T; t++) {
				double v = (double)stimulus->data[(c * T + t) * HW + p];
				e += v * v;
			}
			total += e;
			if (e > best_c) {
				best_c = e;
				arg_c = c;
			}
		}
		if (total > best) {
			best = total;
			*row = p / d[3];
			*col = p % d[3];
			*channel = arg_c;
		}
	}
	return FV_OK;
}

const char *fv__model_name(const fv_module *model)
{
	const fv_component *c = fv_module_component(model);
	return c != NULL && c->names != NULL && c->names[0] != NULL ? c->names[0]
	                                                            : fv_module_name(model);
}

/* ---- the stimulus figure ------------------------------------------------------------ */

typedef struct stim_layout {
	int64_t C, T, H, W;
	int n_frames;
	double fw, fh;   /* one frame, points */
	double left, top, plot_top, plot_w, plot_h, width, height;
} stim_layout;

static void stim_layout_init(stim_layout *L, const int64_t d[4], int max_frames)
{
	L->C = d[0];
	L->T = d[1];
	L->H = d[2];
	L->W = d[3];
	L->n_frames = (int)(L->T < max_frames ? L->T : max_frames);
	double side = (double)(L->H > L->W ? L->H : L->W);
	L->fw = 52 * (double)L->W / side;
	L->fh = 52 * (double)L->H / side;
	L->left = 64;
	L->top = 48;
	double frames_w = L->n_frames * (L->fw + GAP);
	L->plot_w = frames_w > 280 ? frames_w : 280;
	L->plot_top = L->top + (double)L->C * (L->fh + GAP) + 36;
	L->plot_h = 120;
	L->width = L->left + L->plot_w + 78;
	L->height = L->plot_top + L->plot_h + 44;
}

static int64_t frame_index(const stim_layout *L, int k)
{
	return L->n_frames > 1 ? (int64_t)llround((double)k * (double)(L->T - 1) / (L->n_frames - 1)) : 0;
}

static void draw_frames(fv__fig *f, const stim_layout *L, const fv_real *x, double vmax)
{
	char label[48];
	for (int k = 0; k < L->n_frames; k++) {
		int64_t t = frame_index(L, k);
		double fx = L->left + k * (L->fw + GAP);
		snprintf(label, sizeof label, "t = %lld", (long long)t);
		fv__fig_text(f, fx + L->fw / 2, L->top - 4, SMALL_FONT, FV__CENTRE, ink, false, false,
		             label);
		for (int64_t c = 0; c < L->C; c++) {
			double fy = L->top + (double)c * (L->fh + GAP);
			fv__fig_image(f, fx, fy, L->fw, L->fh, (int)L->H, (int)L->W,
			              x + (c * L->T + t) * L->H * L->W, L->W, 1, vmax);
			fv__fig_frame(f, fx, fy, L->fw, L->fh, border, 0.5);
		}
	}
	for (int64_t c = 0; c < L->C; c++) {
		snprintf(label, sizeof label, "channel %lld", (long long)c);
		fv__fig_text(f, L->left - 8, L->top + (double)c * (L->fh + GAP) + L->fh / 2, LABEL_FONT,
		             FV__CENTRE, fv_series_colour((int)c), false, true, label);
	}
	double bar_x = L->left + L->n_frames * (L->fw + GAP) + 8;
	fv__fig_colorbar(f, bar_x, L->top, 8, (double)L->C * (L->fh + GAP) - GAP, vmax, "value");
}

/* One legend entry per channel, right-aligned above the plot. */
static void draw_legend(fv__fig *f, double right, double y, int n, const char *noun)
{
	char label[48];
	for (int c = n - 1; c >= 0; c--) {
		snprintf(label, sizeof label, "%s %d", noun, c);
		double w = fv__fig_text_width(f, SMALL_FONT, false, label);
		fv__fig_text(f, right, y, SMALL_FONT, FV__RIGHT, fv_series_colour(c), false, false, label);
		fv__fig_line(f, right - w - 14, y - 2.5, right - w - 3, y - 2.5, fv_series_colour(c),
		             1.2);
		right -= w + 22;
	}
}

static fv_status draw_traces(fv__fig *f, const stim_layout *L, const fv_real *x, int64_t row,
                             int64_t col)
{
	double *y = fv__malloc((size_t)(L->C * L->T) * sizeof *y);
	fv__series *s = fv__malloc((size_t)L->C * sizeof *s);
	if (y == NULL || s == NULL) {
		free(y);
		free(s);
		return fv_error(FV_ERR_NOMEM, "out of memory drawing a stimulus");
	}
	for (int64_t c = 0; c < L->C; c++) {
		for (int64_t t = 0; t < L->T; t++)
			y[c * L->T + t] = (double)x[((c * L->T + t) * L->H + row) * L->W + col];
		s[c] = (fv__series){y + c * L->T, (int)L->T, 0, fv_series_colour((int)c)};
	}
	char title[96];
	snprintf(title, sizeof title, "time course at the peak pixel (row %lld, column %lld)",
	         (long long)row, (long long)col);
	fv__plot p = {L->left, L->plot_top, L->plot_w, L->plot_h, title, "frame", "value",
	              0, 0, NAN};
	fv__fig_line_plot(f, &p, (int)L->C, s);
	if (L->C > 1)
		draw_legend(f, L->left + L->plot_w, L->plot_top - 5, (int)L->C, "channel");
	free(y);
	free(s);
	return FV_OK;
}

fv_status fv_figure_stimulus_to(const fv_tensor *stimulus, const char *title, int max_frames,
                                const fv_figure_output *out, const char *path)
{
	int64_t d[4], ch, row, col;
	fv_status rc = fv__stimulus_dims(stimulus, d);
	if (rc == FV_OK)
		rc = fv_stimulus_peak(stimulus, &ch, &row, &col);
	if (rc != FV_OK)
		return rc;
	stim_layout L;
	stim_layout_init(&L, d, max_frames > 0 ? max_frames : 10);
	fv__fig *f = fv__fig_begin(L.width, L.height, out, path);
	if (f == NULL)
		return fv_errcode();
	if (title != NULL)
		fv__fig_text(f, 12, 22, TITLE_FONT, FV__LEFT, ink, true, false, title);
	draw_frames(f, &L, stimulus->data, fv__max_abs(stimulus->data, stimulus->numel));
	rc = draw_traces(f, &L, stimulus->data, row, col);
	if (rc != FV_OK) {
		fv__fig_free(f);
		return rc;
	}
	return fv__fig_end(f);
}

fv_status fv_figure_stimulus(const fv_tensor *stimulus, const char *title, int max_frames,
                             const char *path)
{
	return fv_figure_stimulus_to(stimulus, title, max_frames, NULL, path);
}

/* ---- readout positions ---------------------------------------------------------------- */

typedef struct session_positions {
	double *row_col;       /* (n, 2) in feature-map pixels */
	int64_t n;
	int64_t map_h, map_w;  /* the feature map the readout reads */
} session_positions;

static fv_status find_positions(const fv_module *model, const fv_data_info *info,
                                session_positions *out)
{
	for (size_t i = 0; i < info->n_sessions; i++) {
		session_positions *sp = &out[i];
		sp->n = info->n_neurons[i];
		sp->row_col = fv__malloc((size_t)(2 * (sp->n > 0 ? sp->n : 1)) * sizeof *sp->row_col);
		if (sp->row_col == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory");
		int64_t map_hw[2];
		fv_status rc = fv_module_neuron_positions(model, info->sessions[i], sp->n, sp->row_col,
		                                          map_hw);
		if (rc != FV_OK) {
			fv_error_prefix("readout positions, session %s: ", info->sessions[i]);
			return rc;
		}
		sp->map_h = map_hw[0];
		sp->map_w = map_hw[1];
	}
	return FV_OK;
}

typedef struct field_box {
	double x, y, cell;
	int64_t H, W;
} field_box;

/* The stimulus field with pixel ticks: columns below, rows at the left. */
static void draw_field(fv__fig *f, const field_box *b)
{
	static const fv_rgb field = {238, 238, 238}, line = {218, 218, 218};
	double w = (double)b->W * b->cell, h = (double)b->H * b->cell;
	fv__fig_rect(f, b->x, b->y, w, h, field);
	if (b->cell >= 5) {
		for (int64_t i = 1; i < b->H; i++)
			fv__fig_line(f, b->x, b->y + (double)i * b->cell, b->x + w,
			             b->y + (double)i * b->cell, line, 0.4);
		for (int64_t j = 1; j < b->W; j++)
			fv__fig_line(f, b->x + (double)j * b->cell, b->y, b->x + (double)j * b->cell,
			             b->y + h, line, 0.4);
	}
	fv__fig_frame(f, b->x, b->y, w, h, ink, 0.7);
	double ticks[8];
	char label[24];
	int n = fv__nice_ticks(0, (double)(b->W - 1), 6, ticks);
	for (int i = 0; i < n; i++) {
		double x = b->x + (ticks[i] + 0.5) * b->cell;
		fv__fig_line(f, x, b->y + h, x, b->y + h + 3, ink, 0.6);
		fv__tick_label(label, sizeof label, ticks[i], 1);
		fv__fig_text(f, x, b->y + h + 11, SMALL_FONT, FV__CENTRE, ink, false, false, label);
	}
	fv__fig_text(f, b->x + w / 2, b->y + h + 23, LABEL_FONT, FV__CENTRE, ink, false, false,
	             "column (pixels)");
	n = fv__nice_ticks(0, (double)(b->H - 1), 6, ticks);
	for (int i = 0; i < n; i++) {
		double y = b->y + (ticks[i] + 0.5) * b->cell;
		fv__fig_line(f, b->x - 3, y, b->x, y, ink, 0.6);
		fv__tick_label(label, sizeof label, ticks[i], 1);
		fv__fig_text(f, b->x - 5, y + 2.6, SMALL_FONT, FV__RIGHT, ink, false, false, label);
	}
	fv__fig_text(f, b->x - 22, b->y + h / 2, LABEL_FONT, FV__CENTRE, ink, false, true,
	             "row (pixels)");
}

static void draw_session(fv__fig *f, const field_box *b, const char *session,
                         const session_positions *sp)
{
	static const fv_rgb dot = {200, 30, 30};
	draw_field(f, b);
	char label[300];
	snprintf(label, sizeof label, "session %s (%lld neurons)", session, (long long)sp->n);
	fv__fig_text(f, b->x, b->y - 6, LABEL_FONT, FV__LEFT, ink, false, false, label);
	/* a feature map smaller than the stimulus (unpadded convolutions) is
	** centred on it */
	double off_r = (double)(b->H - sp->map_h) / 2, off_c = (double)(b->W - sp->map_w) / 2;
	for (int64_t n = 0; n < sp->n; n++) {
		double r = off_r + sp->row_col[2 * n], c = off_c + sp->row_col[2 * n + 1];
		double px = b->x + (c + 0.5) * b->cell, py = b->y + (r + 0.5) * b->cell;
		fv__fig_dot(f, px, py, 2.5, dot);
		snprintf(label, sizeof label, "%lld", (long long)n);
		fv__fig_text(f, px + 3.5, py - 2.5, 6, FV__LEFT, ink, false, false, label);
	}
}

fv_status fv_figure_readout_positions_to(const fv_module *model, const fv_data_info *info,
                                         const fv_figure_output *out, const char *path)
{
	if (info->n_sessions == 0)
		return fv_error(FV_ERR_ARG, "readout positions: the data info has no sessions");
	session_positions *sp = fv__calloc(info->n_sessions, sizeof *sp);
	if (sp == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_status rc = find_positions(model, info, sp);
	int64_t H = info->input_shape[1], W = info->input_shape[2];
	double cell = 200.0 / (double)(H > W ? H : W);
	int per_row = 3, n = (int)info->n_sessions;
	int cols = n < per_row ? n : per_row, rows = (n + per_row - 1) / per_row;
	double pw = (double)W * cell + 64, ph = (double)H * cell + 60;
	fv__fig *f = rc == FV_OK ? fv__fig_begin(cols * pw + 16, rows * ph + 40, out, path) : NULL;
	if (rc == FV_OK && f == NULL)
		rc = fv_errcode();
	if (rc == FV_OK) {
		char title[300];
		snprintf(title, sizeof title, "Readout positions: %s", fv__model_name(model));
		fv__fig_text(f, 12, 22, TITLE_FONT, FV__LEFT, ink, true, false, title);
		for (int s = 0; s < n; s++) {
			field_box b = {56 + (s % per_row) * pw, 52 + (s / per_row) * ph, cell, H, W};
			draw_session(f, &b, info->sessions[s], &sp[s]);
		}
		rc = fv__fig_end(f);
	}
	for (size_t i = 0; i < info->n_sessions; i++)
		free(sp[i].row_col);
	free(sp);
	return rc;
}

fv_status fv_figure_readout_positions(const fv_module *model, const fv_data_info *info,
                                      const char *path)
{
	return fv_figure_readout_positions_to(model, info, NULL, path);
}

/* ---- first-layer filters ---------------------------------------------------------------- */

/* The dense kernel the model's core gives, as dims and data. */
typedef struct kernel5 {
	int64_t O, I, T, H, W;
	const fv_real *w; /* (O, I, T, H, W) */
} kernel5;

/* Per (o, i): the peak of |w| over (t, h, w). */
static void kernel_peak(const kernel5 *k, int64_t oi, int64_t *t, int64_t *p)
{
	int64_t HW = k->H * k->W, n = k->T * HW, arg = 0;
	const fv_real *w = k->w + oi * n;
	for (int64_t j = 1; j < n; j++)
		if (fabs((double)w[j]) > fabs((double)w[arg]))
			arg = j;
	*t = arg / HW;
	*p = arg % HW;
}

typedef struct filter_layout {
	double sw, sh, left, top, row_h, plot_x, plot_w, width, height;
} filter_layout;

static void draw_filter_row(fv__fig *f, const filter_layout *L, const kernel5 *k, int64_t o,
                            double vmax, double *trace, fv__series *s)
{
	int64_t HW = k->H * k->W;
	double y = L->top + (double)o * L->row_h;
	char label[48];
	snprintf(label, sizeof label, "out %lld", (long long)o);
	fv__fig_text(f, L->left - 8, y + L->sh / 2, LABEL_FONT, FV__CENTRE, ink, false, true, label);
	for (int64_t i = 0; i < k->I; i++) {
		int64_t oi = o * k->I + i, t, p;
		kernel_peak(k, oi, &t, &p);
		const fv_real *w = k->w + oi * k->T * HW;
		double x = L->left + (double)i * (L->sw + GAP);
		fv__fig_image(f, x, y, L->sw, L->sh, (int)k->H, (int)k->W, w + t * HW, k->W, 1, vmax);
		fv__fig_frame(f, x, y, L->sw, L->sh, border, 0.5);
		for (int64_t j = 0; j < k->T; j++)
			trace[i * k->T + j] = (double)w[j * HW + p];
		s[i] = (fv__series){trace + i * k->T, (int)k->T, 0, fv_series_colour((int)i)};
	}
	fv__plot p = {L->plot_x, y, L->plot_w, L->row_h - 30, NULL,
	              o == k->O - 1 ? "frame" : NULL, NULL, 0, 0, NAN};
	fv__fig_line_plot(f, &p, (int)k->I, s);
}

static void filter_layout_init(filter_layout *L, const kernel5 *k)
{
	double side = (double)(k->H > k->W ? k->H : k->W);
	L->sw = 44 * (double)k->W / side;
	L->sh = 44 * (double)k->H / side;
	L->left = 40;
	L->top = 64;
	L->row_h = (L->sh > 50 ? L->sh : 50) + 30;
	L->plot_w = 200;
	double images_w = (double)k->I * (L->sw + GAP);
	L->plot_x = L->left + (images_w > 60 ? images_w : 60) + 56;
	L->width = L->plot_x + L->plot_w + 78;
	L->height = L->top + (double)k->O * L->row_h + 20;
}

static fv_status draw_filters(const fv_module *model, int64_t layer, const kernel5 *k,
                              const fv_figure_output *out, const char *path)
{
	filter_layout L;
	filter_layout_init(&L, k);
	double *trace = fv__malloc((size_t)(k->I * k->T) * sizeof *trace);
	fv__series *s = fv__malloc((size_t)k->I * sizeof *s);
	fv__fig *f = trace && s ? fv__fig_begin(L.width, L.height, out, path) : NULL;
	fv_status rc = f ? FV_OK : trace && s ? fv_errcode()
	                                      : fv_error(FV_ERR_NOMEM, "out of memory drawing the "
	                                                               "core filters");
	if (rc == FV_OK) {
		char title[300];
		snprintf(title, sizeof title, "Core layer %lld filters: %s", (long long)layer,
		         fv__model_name(model));
		fv__fig_text(f, 12, 22, TITLE_FONT, FV__LEFT, ink, true, false, title);
		fv__fig_text(f, L.left, L.top - 10, LABEL_FONT, FV__LEFT, ink, false, false,
		             "spatial, peak frame");
		double vmax = fv__max_abs(k->w, k->O * k->I * k->T * k->H * k->W);
		for (int64_t o = 0; o < k->O; o++)
			draw_filter_row(f, &L, k, o, vmax, trace, s);
		fv__fig_text(f, L.plot_x, L.top - 10, LABEL_FONT, FV__LEFT, ink, false, false,
		             "temporal, peak pixel");
		double bar_h = (double)k->O * L.row_h - 30;
		fv__fig_colorbar(f, L.plot_x + L.plot_w + 12, L.top, 7, bar_h < 200 ? bar_h : 200, vmax,
		                 "weight");
		rc = fv__fig_end(f);
	}
	free(trace);
	free(s);
	return rc;
}

fv_status fv_figure_layer_filters_to(const fv_module *model, int64_t layer,
                                     const fv_figure_output *out, const char *path)
{
	fv_tensor *t = NULL;
	fv_status rc = fv_module_layer_filters(model, layer, &t);
	if (rc != FV_OK)
		fv_error_prefix("core filters: ");
	else if (t == NULL || t->ndim != 5)
		rc = fv_error(FV_ERR_SHAPE, "core filters: expected a kernel (out, in, time, height, "
		              "width), got %s", t != NULL ? fv_shape_str(t->ndim, t->shape) : "none");
	if (rc == FV_OK) {
		const int64_t *d = t->shape;
		kernel5 k = {d[0], d[1], d[2], d[3], d[4], t->data};
		rc = draw_filters(model, layer, &k, out, path);
	}
	fv_tensor_free(t);
	return rc;
}

fv_status fv_figure_core_filters_to(const fv_module *model, const fv_figure_output *out,
                                    const char *path)
{
	return fv_figure_layer_filters_to(model, 0, out, path);
}

fv_status fv_figure_core_filters(const fv_module *model, const char *path)
{
	return fv_figure_core_filters_to(model, NULL, path);
}

/* ---- both ------------------------------------------------------------------------------ */

/* A figure this model cannot have is skipped, not an error. */
static fv_status count_or_skip(fv_status rc, int *n)
{
	if (rc == FV_OK)
		(*n)++;
	else if (rc == FV_ERR_NOTFOUND) {
		fv_clear_error();
		rc = FV_OK;
	}
	return rc;
}

fv_status fv_figures_write_model_to(const fv_module *model, const fv_data_info *info,
                                    const char *dir, const fv_figure_output *out, int *n_written)
{
	int n = 0;
	char path[4096];
	const char *ext = fv_figure_format_ext(out ? out->format : FV_FIGURE_AUTO);
	snprintf(path, sizeof path, "%s/readout_positions.%s", dir, ext);
	fv_status rc = count_or_skip(fv_figure_readout_positions_to(model, info, out, path), &n);
	/* core_filters.EXT, then core_filters_layer1.EXT, ... to the last layer */
	for (int64_t layer = 0; rc == FV_OK; layer++) {
		if (layer == 0)
			snprintf(path, sizeof path, "%s/core_filters.%s", dir, ext);
		else
			snprintf(path, sizeof path, "%s/core_filters_layer%lld.%s", dir, (long long)layer,
			         ext);
		int before = n;
		rc = count_or_skip(fv_figure_layer_filters_to(model, layer, out, path), &n);
		if (n == before)
			break;
	}
	if (n_written != NULL)
		*n_written = n;
	return rc;
}

fv_status fv_figures_write_model(const fv_module *model, const fv_data_info *info,
                                 const char *dir, int *n_written)
{
	return fv_figures_write_model_to(model, info, dir, NULL, n_written);
}
