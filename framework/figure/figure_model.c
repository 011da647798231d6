/*
** figure_model.c: the figures of figure.h drawn from a stimulus or from a
** trained model: the stimulus (MEI) figure, the readout positions, the
** first core layer's filters.
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

static const fv_rgb ink = {0, 0, 0}, border = {190, 190, 190};

#define MARGIN 12
#define GAP 4

/* A cell size that makes an image of `side` pixels about `target` wide. */
static int cell_for(int64_t side, int target)
{
	int cell = side > 0 ? (int)(target / side) : 1;
	return cell < 1 ? 1 : cell > 16 ? 16 : cell;
}

/* The stimulus as (C, T, H, W): dims, and the shape in `d`. */
static fv_status stimulus_dims(const fv_tensor *s, int64_t d[4])
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
	fv_status rc = stimulus_dims(stimulus, d);
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

/* fv_canvas_new has set the message; the status follows from the size. */
static fv_status canvas_failed(int w, int h)
{
	return w < 1 || h < 1 || w > 16384 || h > 16384 ? FV_ERR_ARG : FV_ERR_NOMEM;
}

static double max_abs(const fv_real *v, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		if (fabs((double)v[i]) > m)
			m = fabs((double)v[i]);
	return m;
}

/* ---- the stimulus figure ------------------------------------------------------------ */

typedef struct stim_layout {
	int64_t C, T, H, W;
	int n_frames, cell, fw, fh; /* frames shown, cell size, frame size */
	int left, top, plot_top, plot_h, width, height;
} stim_layout;

static void stim_layout_init(stim_layout *L, const int64_t d[4], int max_frames)
{
	L->C = d[0];
	L->T = d[1];
	L->H = d[2];
	L->W = d[3];
	L->n_frames = (int)(L->T < max_frames ? L->T : max_frames);
	L->cell = cell_for(L->H > L->W ? L->H : L->W, 56);
	L->fw = (int)L->W * L->cell;
	L->fh = (int)L->H * L->cell;
	L->left = 48;
	L->top = 34;
	int frames_w = L->n_frames * (L->fw + GAP);
	L->plot_top = L->top + (int)L->C * (L->fh + GAP) + 34;
	L->plot_h = 110;
	L->width = L->left + (frames_w > 200 ? frames_w : 200) + 70;
	L->height = L->plot_top + L->plot_h + 34;
}

static int64_t frame_index(const stim_layout *L, int k)
{
	return L->n_frames > 1 ? (int64_t)llround((double)k * (double)(L->T - 1) / (L->n_frames - 1)) : 0;
}

static void draw_frames(fv_canvas *cv, const stim_layout *L, const fv_real *x, double vmax)
{
	char label[32];
	for (int k = 0; k < L->n_frames; k++) {
		int64_t t = frame_index(L, k);
		int fx = L->left + k * (L->fw + GAP);
		snprintf(label, sizeof label, "t%lld", (long long)t);
		fv_canvas_text(cv, fx, L->top - 8, 1, ink, label);
		for (int64_t c = 0; c < L->C; c++) {
			int fy = L->top + (int)c * (L->fh + GAP);
			fv_canvas_image(cv, fx, fy, (int)L->H, (int)L->W, x + (c * L->T + t) * L->H * L->W,
			                L->W, 1, L->cell, vmax);
			fv_canvas_frame(cv, fx - 1, fy - 1, L->fw + 2, L->fh + 2, border);
		}
	}
	for (int64_t c = 0; c < L->C; c++) {
		snprintf(label, sizeof label, "ch %lld", (long long)c);
		fv_canvas_text(cv, 6, L->top + (int)c * (L->fh + GAP) + L->fh / 2 - 2, 1,
		               fv_series_colour((int)c), label);
	}
	int bar_x = L->left + L->n_frames * (L->fw + GAP) + 6;
	fv_canvas_colorbar(cv, bar_x, L->top, 8, (int)L->C * (L->fh + GAP) - GAP, vmax);
}

static fv_status draw_traces(fv_canvas *cv, const stim_layout *L, const fv_real *x, int64_t row,
                             int64_t col)
{
	double *y = fv__malloc((size_t)(L->C * L->T) * sizeof *y);
	fv_series *s = fv__malloc((size_t)L->C * sizeof *s);
	if (y == NULL || s == NULL) {
		free(y);
		free(s);
		return fv_error(FV_ERR_NOMEM, "out of memory drawing a stimulus");
	}
	for (int64_t c = 0; c < L->C; c++) {
		for (int64_t t = 0; t < L->T; t++)
			y[c * L->T + t] = (double)x[((c * L->T + t) * L->H + row) * L->W + col];
		s[c] = (fv_series){y + c * L->T, (int)L->T, fv_series_colour((int)c)};
	}
	char title[96];
	snprintf(title, sizeof title, "time course at the peak pixel (row %lld, col %lld)",
	         (long long)row, (long long)col);
	int w = L->width - L->left - 70;
	fv_canvas_line_plot(cv, L->left, L->plot_top, w, L->plot_h, title, (int)L->C, s);
	fv_canvas_text(cv, L->left + w / 2 - 16, L->plot_top + L->plot_h + 12, 1, ink, "frame");
	free(y);
	free(s);
	return FV_OK;
}

fv_status fv_figure_stimulus(const fv_tensor *stimulus, const char *title, int max_frames,
                             const char *path)
{
	int64_t d[4], ch, row, col;
	fv_status rc = stimulus_dims(stimulus, d);
	if (rc == FV_OK)
		rc = fv_stimulus_peak(stimulus, &ch, &row, &col);
	if (rc != FV_OK)
		return rc;
	stim_layout L;
	stim_layout_init(&L, d, max_frames > 0 ? max_frames : 10);
	fv_canvas *cv = fv_canvas_new(L.width, L.height);
	if (cv == NULL)
		return canvas_failed(L.width, L.height);
	if (title != NULL)
		fv_canvas_text(cv, 6, 6, 2, ink, title);
	draw_frames(cv, &L, stimulus->data, max_abs(stimulus->data, stimulus->numel));
	rc = draw_traces(cv, &L, stimulus->data, row, col);
	if (rc == FV_OK)
		rc = fv_canvas_save_png(cv, path);
	fv_canvas_free(cv);
	return rc;
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

static void draw_session(fv_canvas *cv, int x0, int y0, int cell, const fv_data_info *info,
                         size_t s, const session_positions *sp)
{
	static const fv_rgb field = {235, 235, 235}, line = {215, 215, 215}, dot = {200, 30, 30};
	int64_t H = info->input_shape[1], W = info->input_shape[2];
	fv_canvas_rect(cv, x0, y0, (int)W * cell, (int)H * cell, field);
	for (int64_t i = 1; i < H; i++)
		fv_canvas_rect(cv, x0, y0 + (int)i * cell, (int)W * cell, 1, line);
	for (int64_t j = 1; j < W; j++)
		fv_canvas_rect(cv, x0 + (int)j * cell, y0, 1, (int)H * cell, line);
	fv_canvas_frame(cv, x0 - 1, y0 - 1, (int)W * cell + 2, (int)H * cell + 2, ink);
	fv_canvas_text(cv, x0, y0 - 10, 1, ink, info->sessions[s]);
	/* a feature map smaller than the stimulus (unpadded convolutions) is
	** centred on it */
	double off_r = (double)(H - sp->map_h) / 2, off_c = (double)(W - sp->map_w) / 2;
	char label[24];
	for (int64_t n = 0; n < sp->n; n++) {
		double r = off_r + sp->row_col[2 * n];
		double c = off_c + sp->row_col[2 * n + 1];
		int px = x0 + (int)lround((c + 0.5) * cell), py = y0 + (int)lround((r + 0.5) * cell);
		fv_canvas_rect(cv, px - 2, py - 2, 5, 5, dot);
		snprintf(label, sizeof label, "%lld", (long long)n);
		fv_canvas_text(cv, px + 4, py - 2, 1, ink, label);
	}
}

fv_status fv_figure_readout_positions(const fv_module *model, const fv_data_info *info,
                                      const char *path)
{
	if (info->n_sessions == 0)
		return fv_error(FV_ERR_ARG, "readout positions: the data info has no sessions");
	session_positions *sp = fv__calloc(info->n_sessions, sizeof *sp);
	if (sp == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	fv_status rc = find_positions(model, info, sp);
	int64_t H = info->input_shape[1], W = info->input_shape[2];
	int cell = cell_for(H > W ? H : W, 220);
	int per_row = 4, n = (int)info->n_sessions;
	int cols = n < per_row ? n : per_row, rows = (n + per_row - 1) / per_row;
	int pw = (int)W * cell + 2 * MARGIN + 14, ph = (int)H * cell + 2 * MARGIN + 14;
	int width = cols * pw + MARGIN, height = rows * ph + 30;
	fv_canvas *cv = rc == FV_OK ? fv_canvas_new(width, height) : NULL;
	if (rc == FV_OK && cv == NULL)
		rc = canvas_failed(width, height);
	if (rc == FV_OK) {
		fv_canvas_text(cv, MARGIN, 6, 2, ink, "readout positions (pixels)");
		for (int s = 0; s < n; s++)
			draw_session(cv, MARGIN + (s % per_row) * pw, 30 + MARGIN + (s / per_row) * ph, cell,
			             info, (size_t)s, &sp[s]);
		rc = fv_canvas_save_png(cv, path);
	}
	fv_canvas_free(cv);
	for (size_t i = 0; i < info->n_sessions; i++)
		free(sp[i].row_col);
	free(sp);
	return rc;
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
	int cell, sw, sh, left, top, row_h, plot_x, plot_w, width, height;
} filter_layout;

static void draw_filter_row(fv_canvas *cv, const filter_layout *L, const kernel5 *k, int64_t o,
                            double vmax, double *trace, fv_series *s)
{
	int64_t HW = k->H * k->W;
	int y = L->top + (int)o * L->row_h;
	char label[24];
	snprintf(label, sizeof label, "out %lld", (long long)o);
	fv_canvas_text(cv, 6, y + L->sh / 2 - 2, 1, ink, label);
	for (int64_t i = 0; i < k->I; i++) {
		int64_t oi = o * k->I + i, t, p;
		kernel_peak(k, oi, &t, &p);
		const fv_real *w = k->w + oi * k->T * HW;
		fv_canvas_image(cv, L->left + (int)i * (L->sw + GAP), y, (int)k->H, (int)k->W, w + t * HW,
		                k->W, 1, L->cell, vmax);
		for (int64_t j = 0; j < k->T; j++)
			trace[i * k->T + j] = (double)w[j * HW + p];
		s[i] = (fv_series){trace + i * k->T, (int)k->T, fv_series_colour((int)i)};
	}
	fv_canvas_line_plot(cv, L->plot_x, y, L->plot_w, L->row_h - 18, NULL, (int)k->I, s);
}

static fv_status draw_filters(const kernel5 *k, const char *path)
{
	filter_layout L;
	L.cell = cell_for(k->H > k->W ? k->H : k->W, 40);
	L.sw = (int)k->W * L.cell;
	L.sh = (int)k->H * L.cell;
	L.left = 48;
	L.top = 52;
	L.row_h = (L.sh > 44 ? L.sh : 44) + 18;
	L.plot_w = 160;
	/* room for the spatial header and the plot's tick labels */
	int images_w = (int)k->I * (L.sw + GAP);
	L.plot_x = L.left + (images_w > 40 ? images_w : 40) + 48;
	L.width = L.plot_x + L.plot_w + 70;
	L.height = L.top + (int)k->O * L.row_h + 10;
	double *trace = fv__malloc((size_t)(k->I * k->T) * sizeof *trace);
	fv_series *s = fv__malloc((size_t)k->I * sizeof *s);
	fv_canvas *cv = trace && s ? fv_canvas_new(L.width, L.height) : NULL;
	fv_status rc = cv ? FV_OK : fv_error(FV_ERR_NOMEM, "out of memory drawing the core filters");
	if (rc == FV_OK) {
		fv_canvas_text(cv, 6, 6, 2, ink, "core layer 0 filters");
		fv_canvas_text(cv, L.left, L.top - 20, 1, ink, "spatial");
		fv_canvas_text(cv, L.plot_x, L.top - 20, 1, ink, "temporal, at the peak pixel");
		double vmax = max_abs(k->w, k->O * k->I * k->T * k->H * k->W);
		for (int64_t o = 0; o < k->O; o++)
			draw_filter_row(cv, &L, k, o, vmax, trace, s);
		fv_canvas_colorbar(cv, L.plot_x + L.plot_w + 12, L.top, 6, L.row_h, vmax);
		rc = fv_canvas_save_png(cv, path);
	}
	fv_canvas_free(cv);
	free(trace);
	free(s);
	return rc;
}

fv_status fv_figure_core_filters(const fv_module *model, const char *path)
{
	fv_tensor *t = NULL;
	fv_status rc = fv_module_first_layer_filters(model, &t);
	if (rc != FV_OK)
		fv_error_prefix("core filters: ");
	else if (t == NULL || t->ndim != 5)
		rc = fv_error(FV_ERR_SHAPE, "core filters: expected a kernel (out, in, time, height, "
		              "width), got %s", t != NULL ? fv_shape_str(t->ndim, t->shape) : "none");
	if (rc == FV_OK) {
		const int64_t *d = t->shape;
		kernel5 k = {d[0], d[1], d[2], d[3], d[4], t->data};
		rc = draw_filters(&k, path);
	}
	fv_tensor_free(t);
	return rc;
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

fv_status fv_figures_write_model(const fv_module *model, const fv_data_info *info,
                                 const char *dir, int *n_written)
{
	int n = 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/readout_positions.png", dir);
	fv_status rc = count_or_skip(fv_figure_readout_positions(model, info, path), &n);
	if (rc == FV_OK) {
		snprintf(path, sizeof path, "%s/core_filters.png", dir);
		rc = count_or_skip(fv_figure_core_filters(model, path), &n);
	}
	if (n_written != NULL)
		*n_written = n;
	return rc;
}
