/*
** figure_plot.c: fv__fig, the page a figure is drawn on (figure_internal.h):
** a cairo surface for PNG, PDF and movie frames, or SVG written here with
** its text as <text> elements and its images as embedded PNG.  The page is
** the caller's size; the figure's natural layout is scaled to fit it.
*/
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-ft.h>
#include <cairo-pdf.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <pthread.h>

#include "base/base_internal.h"
#include "figure/figure_internal.h"

typedef struct membuf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
} membuf;

struct fv__fig {
	fv_figure_format format; /* PNG also for a raster */
	char *path;              /* NULL for a raster */
	cairo_surface_t *surface;
	cairo_t *cr;             /* draws (PNG, PDF, raster) or only measures (SVG) */
	membuf out;              /* the PNG, PDF or SVG bytes */
	double scale, dx, dy;    /* natural layout -> page, in points */
};

#define MAX_PIXELS 16384

static void put_bytes(membuf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		unsigned char *p = fv__realloc(b->data, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static cairo_status_t put_stream(void *closure, const unsigned char *data, unsigned int n)
{
	membuf *b = closure;
	put_bytes(b, data, n);
	return b->failed ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

static void svg_printf(fv__fig *f, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		f->out.failed = true;
		return;
	}
	if ((size_t)n < sizeof small) {
		put_bytes(&f->out, small, (size_t)n);
		return;
	}
	char *big = fv__malloc((size_t)n + 1);
	if (big == NULL) {
		f->out.failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put_bytes(&f->out, big, (size_t)n);
	free(big);
}

/* ---- formats ------------------------------------------------------------------------ */

static const char *const format_names[] = {"auto", "png", "svg", "pdf"};

fv_status fv_figure_format_parse(const char *name, fv_figure_format *format)
{
	*format = FV_FIGURE_AUTO;
	if (name == NULL)
		return FV_OK;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, format_names[i]) == 0) {
			*format = (fv_figure_format)i;
			return FV_OK;
		}
	return fv_error(FV_ERR_ARG, "figure format '%s': expected png, svg or pdf", name);
}

const char *fv_figure_format_ext(fv_figure_format format)
{
	return format == FV_FIGURE_SVG || format == FV_FIGURE_PDF ? format_names[format] : "png";
}

/* The format of `path` by its extension. */
static fv_status format_of(const char *path, fv_figure_format *format)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (dot != NULL && (slash == NULL || dot > slash)) {
		for (int i = 1; i < 4; i++)
			if (strcasecmp(dot + 1, format_names[i]) == 0) {
				*format = (fv_figure_format)i;
				return FV_OK;
			}
	}
	return fv_error(FV_ERR_ARG, "%s: cannot tell the figure format from the file name "
	                "(expected .png, .svg or .pdf, or a format given)", path);
}

/* ---- the page ------------------------------------------------------------------------ */

/* Page size in points and the scale/offset that fit w x h points onto it. */
static void fit_page(fv__fig *f, double w, double h, const fv_figure_output *out, double *pw,
                     double *ph)
{
	double wi = out ? out->width_in : 0, hi = out ? out->height_in : 0;
	*pw = w;
	*ph = h;
	f->scale = 1;
	if (wi > 0 && hi > 0) {
		*pw = wi * 72;
		*ph = hi * 72;
		f->scale = fmin(*pw / w, *ph / h);
	} else if (wi > 0 || hi > 0) {
		f->scale = wi > 0 ? wi * 72 / w : hi * 72 / h;
		*pw = w * f->scale;
		*ph = h * f->scale;
	}
	f->dx = (*pw - w * f->scale) / 2;
	f->dy = (*ph - h * f->scale) / 2;
}

static fv__fig *fig_failed(fv__fig *f, fv_status code, const char *what)
{
	if (code == FV_ERR_NOMEM)
		fv_error(FV_ERR_NOMEM, "%s: out of memory for the figure", what);
	fv__fig_free(f);
	return NULL;
}

static void set_font_options(cairo_t *cr)
{
	cairo_font_options_t *o = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(o, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_antialias(o, CAIRO_ANTIALIAS_GRAY);
	cairo_set_font_options(cr, o);
	cairo_font_options_destroy(o);
}

static bool start_cairo(fv__fig *f, cairo_surface_t *surface, double pixel_scale, bool white)
{
	f->surface = surface;
	f->cr = cairo_create(surface);
	if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS)
		return false;
	set_font_options(f->cr);
	if (white) {
		cairo_set_source_rgb(f->cr, 1, 1, 1);
		cairo_paint(f->cr);
	}
	cairo_scale(f->cr, pixel_scale, pixel_scale);
	cairo_translate(f->cr, f->dx, f->dy);
	cairo_scale(f->cr, f->scale, f->scale);
	return true;
}

static bool start_png(fv__fig *f, double pw, double ph, const fv_figure_output *out)
{
	double dpi = out && out->dpi > 0 ? out->dpi : 100;
	double wpx = round(pw * dpi / 72), hpx = round(ph * dpi / 72);
	if (!(wpx >= 1 && hpx >= 1 && wpx <= MAX_PIXELS && hpx <= MAX_PIXELS)) {
		fv_error(FV_ERR_ARG, "%s: a figure of %.0f x %.0f pixels: each side must be 1..%d "
		         "(a smaller --size or --dpi)", f->path, wpx, hpx, MAX_PIXELS);
		return false;
	}
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)wpx, (int)hpx);
	return start_cairo(f, s, dpi / 72, true);
}

static void start_svg(fv__fig *f, double pw, double ph)
{
	svg_printf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	              "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	              "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%.2fpt\" "
	              "height=\"%.2fpt\" viewBox=\"0 0 %.2f %.2f\">\n"
	              "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
	              "<g transform=\"translate(%.3f %.3f) scale(%.5f)\">\n",
	           pw, ph, pw, ph, f->dx, f->dy, f->scale);
}

fv__fig *fv__fig_begin(double w, double h, const fv_figure_output *out, const char *path)
{
	fv__fig *f = fv__calloc(1, sizeof *f);
	if (f == NULL || (f->path = fv__strdup(path)) == NULL)
		return fig_failed(f, FV_ERR_NOMEM, path);
	f->format = out ? out->format : FV_FIGURE_AUTO;
	if (f->format == FV_FIGURE_AUTO && format_of(path, &f->format) != FV_OK)
		return fig_failed(f, FV_ERR_ARG, path);
	double pw, ph;
	fit_page(f, w, h, out, &pw, &ph);
	bool ok;
	if (f->format == FV_FIGURE_PNG) {
		if (!start_png(f, pw, ph, out))
			return fig_failed(f, FV_ERR_ARG, path);
		ok = true;
	} else if (f->format == FV_FIGURE_PDF) {
		ok = start_cairo(f, cairo_pdf_surface_create_for_stream(put_stream, &f->out, pw, ph), 1,
		                 true);
	} else {
		/* SVG is written here; cairo only measures text */
		ok = start_cairo(f, cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1), 1, false);
		cairo_identity_matrix(f->cr);
		start_svg(f, pw, ph);
	}
	return ok && !f->out.failed ? f : fig_failed(f, FV_ERR_NOMEM, path);
}

fv__fig *fv__fig_raster(double w, double h, int width, int height)
{
	fv__fig *f = fv__calloc(1, sizeof *f);
	if (f == NULL)
		return fig_failed(f, FV_ERR_NOMEM, "a movie frame");
	f->format = FV_FIGURE_PNG;
	f->scale = fmin(width / w, height / h);
	f->dx = (width - w * f->scale) / 2;
	f->dy = (height - h * f->scale) / 2;
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
	return start_cairo(f, s, 1, true) ? f : fig_failed(f, FV_ERR_NOMEM, "a movie frame");
}

const unsigned char *fv__fig_pixels(fv__fig *f, int *stride)
{
	cairo_surface_flush(f->surface);
	*stride = cairo_image_surface_get_stride(f->surface);
	return cairo_image_surface_get_data(f->surface);
}

void fv__fig_free(fv__fig *f)
{
	if (f == NULL)
		return;
	if (f->cr != NULL)
		cairo_destroy(f->cr);
	if (f->surface != NULL)
		cairo_surface_destroy(f->surface);
	free(f->out.data);
	free(f->path);
	free(f);
}

fv_status fv__fig_end(fv__fig *f)
{
	cairo_status_t cs = cairo_status(f->cr);
	if (cs == CAIRO_STATUS_SUCCESS && f->format == FV_FIGURE_PNG)
		cs = cairo_surface_write_to_png_stream(f->surface, put_stream, &f->out);
	else if (cs == CAIRO_STATUS_SUCCESS && f->format == FV_FIGURE_PDF) {
		cairo_destroy(f->cr);
		f->cr = NULL;
		cairo_surface_finish(f->surface);
		cs = cairo_surface_status(f->surface);
	} else if (f->format == FV_FIGURE_SVG) {
		svg_printf(f, "</g>\n</svg>\n");
	}
	fv_status rc;
	if (cs != CAIRO_STATUS_SUCCESS || f->out.failed)
		rc = fv_error(f->out.failed ? FV_ERR_NOMEM : FV_ERR_IO, "%s: drawing the figure failed: %s",
		              f->path, f->out.failed ? "out of memory" : cairo_status_to_string(cs));
	else
		rc = fv_write_file_atomic(f->path, f->out.data, f->out.len);
	fv__fig_free(f);
	return rc;
}

fv_status fv_write_file_atomic(const char *path, const void *data, size_t size)
{
	const void *parts[1] = {data};
	size_t sizes[1] = {size};
	return fv__atomic_write(path, 1, parts, sizes);
}

/* ---- primitives ----------------------------------------------------------------------- */

static bool is_svg(const fv__fig *f) { return f->format == FV_FIGURE_SVG; }

static void source(cairo_t *cr, fv_rgb c)
{
	cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

#define HEX "#%02x%02x%02x"
#define HEXV(c) (c).r, (c).g, (c).b

void fv__fig_rect(fv__fig *f, double x, double y, double w, double h, fv_rgb fill)
{
	if (is_svg(f)) {
		svg_printf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"" HEX
		              "\"/>\n", x, y, w, h, HEXV(fill));
		return;
	}
	source(f->cr, fill);
	cairo_rectangle(f->cr, x, y, w, h);
	cairo_fill(f->cr);
}

void fv__fig_frame(fv__fig *f, double x, double y, double w, double h, fv_rgb stroke,
                   double line_width)
{
	if (is_svg(f)) {
		svg_printf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
		              "stroke=\"" HEX "\" stroke-width=\"%.2f\"/>\n", x, y, w, h, HEXV(stroke),
		           line_width);
		return;
	}
	source(f->cr, stroke);
	cairo_set_line_width(f->cr, line_width);
	cairo_rectangle(f->cr, x, y, w, h);
	cairo_stroke(f->cr);
}

void fv__fig_line(fv__fig *f, double x0, double y0, double x1, double y1, fv_rgb stroke,
                  double line_width)
{
	double x[2] = {x0, x1}, y[2] = {y0, y1};
	fv__fig_polyline(f, 2, x, y, stroke, line_width);
}

/* One unbroken run of points [i, j). */
static void run(fv__fig *f, int i, int j, const double *x, const double *y, fv_rgb stroke,
                double line_width)
{
	if (is_svg(f)) {
		svg_printf(f, "<polyline fill=\"none\" stroke=\"" HEX "\" stroke-width=\"%.2f\" "
		              "stroke-linejoin=\"round\" points=\"", HEXV(stroke), line_width);
		for (int k = i; k < j; k++)
			svg_printf(f, "%s%.2f,%.2f", k > i ? " " : "", x[k], y[k]);
		svg_printf(f, "\"/>\n");
		return;
	}
	source(f->cr, stroke);
	cairo_set_line_width(f->cr, line_width);
	cairo_set_line_join(f->cr, CAIRO_LINE_JOIN_ROUND);
	for (int k = i; k < j; k++)
		(k == i ? cairo_move_to : cairo_line_to)(f->cr, x[k], y[k]);
	cairo_stroke(f->cr);
}

void fv__fig_polyline(fv__fig *f, int n, const double *x, const double *y, fv_rgb stroke,
                      double line_width)
{
	int i = 0;
	while (i < n) {
		while (i < n && !isfinite(y[i]))
			i++;
		int j = i;
		while (j < n && isfinite(y[j]))
			j++;
		if (j - i >= 2)
			run(f, i, j, x, y, stroke, line_width);
		i = j;
	}
}

void fv__fig_dot(fv__fig *f, double x, double y, double radius, fv_rgb fill)
{
	if (is_svg(f)) {
		svg_printf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"" HEX "\"/>\n", x, y,
		           radius, HEXV(fill));
		return;
	}
	source(f->cr, fill);
	cairo_arc(f->cr, x, y, radius, 0, 2 * M_PI);
	cairo_fill(f->cr);
}

/* ---- text ------------------------------------------------------------------------------ */

/* DejaVu Sans from Debian's fonts-dejavu-core, opened once through
** FreeType and shared by every figure.  Going through fontconfig instead
** (cairo's toy font API) would read the system's font configuration, which
** fontconfig never frees: a leak in every program that draws a figure. */
#define FONT_DIR "/usr/share/fonts/truetype/dejavu/"

static cairo_font_face_t *faces[2]; /* regular, bold; NULL: not found */
static pthread_once_t faces_once = PTHREAD_ONCE_INIT;

static void open_faces(void)
{
	static const char *const files[2] = {FONT_DIR "DejaVuSans.ttf",
	                                     FONT_DIR "DejaVuSans-Bold.ttf"};
	static FT_Library ft; /* lives as long as the process, as the faces do */
	static FT_Face face[2];
	if (FT_Init_FreeType(&ft) != 0)
		return;
	for (int i = 0; i < 2; i++)
		if (FT_New_Face(ft, files[i], 0, &face[i]) == 0)
			faces[i] = cairo_ft_font_face_create_for_ft_face(face[i], 0);
}

static void use_font(cairo_t *cr, double size, bool bold)
{
	pthread_once(&faces_once, open_faces);
	if (faces[bold] != NULL)
		cairo_set_font_face(cr, faces[bold]);
	else /* the font package is missing: whatever fontconfig offers */
		cairo_select_font_face(cr, FV__FONT, CAIRO_FONT_SLANT_NORMAL,
		                       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

double fv__fig_text_width(fv__fig *f, double size, bool bold, const char *text)
{
	cairo_text_extents_t e;
	use_font(f->cr, size, bold);
	cairo_text_extents(f->cr, text, &e);
	return e.x_advance;
}

static void svg_escaped(fv__fig *f, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '&': svg_printf(f, "&amp;"); break;
		case '<': svg_printf(f, "&lt;"); break;
		case '>': svg_printf(f, "&gt;"); break;
		case '"': svg_printf(f, "&quot;"); break;
		default:
			/* control characters are not allowed in XML */
			if ((unsigned char)*p >= 0x20 || *p == '\t')
				put_bytes(&f->out, p, 1);
		}
	}
}

static void svg_text(fv__fig *f, double x, double y, double size, fv__align align, fv_rgb colour,
                     bool bold, bool vertical, const char *text)
{
	static const char *const anchor[] = {"start", "middle", "end"};
	svg_printf(f, "<text x=\"%.2f\" y=\"%.2f\" font-family=\"%s, sans-serif\" "
	              "font-size=\"%.2f\"%s text-anchor=\"%s\" fill=\"" HEX "\"", x, y, FV__FONT, size,
	           bold ? " font-weight=\"bold\"" : "", anchor[align], HEXV(colour));
	if (vertical)
		svg_printf(f, " transform=\"rotate(-90 %.2f %.2f)\"", x, y);
	svg_printf(f, ">");
	svg_escaped(f, text);
	svg_printf(f, "</text>\n");
}

void fv__fig_text(fv__fig *f, double x, double y, double size, fv__align align, fv_rgb colour,
                  bool bold, bool vertical, const char *text)
{
	if (is_svg(f)) {
		svg_text(f, x, y, size, align, colour, bold, vertical, text);
		return;
	}
	double w = fv__fig_text_width(f, size, bold, text);
	double shift = align == FV__LEFT ? 0 : align == FV__CENTRE ? w / 2 : w;
	cairo_save(f->cr);
	cairo_translate(f->cr, x, y);
	if (vertical)
		cairo_rotate(f->cr, -M_PI / 2);
	source(f->cr, colour);
	cairo_move_to(f->cr, -shift, 0);
	cairo_show_text(f->cr, text);
	cairo_restore(f->cr);
}

/* ---- images ------------------------------------------------------------------------------ */

/* The values as a cols x rows RGB24 cairo image. */
static cairo_surface_t *value_image(int rows, int cols, const fv_real *values, int64_t rs,
                                    int64_t cs, double vmax)
{
	cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, cols, rows);
	if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS)
		return img;
	unsigned char *px = cairo_image_surface_get_data(img);
	int stride = cairo_image_surface_get_stride(img);
	for (int i = 0; i < rows; i++) {
		uint32_t *row = (uint32_t *)(void *)(px + (size_t)i * (size_t)stride);
		for (int j = 0; j < cols; j++) {
			fv_rgb c = fv_colormap_diverging((double)values[i * rs + j * cs], vmax);
			row[j] = 0xff000000u | (uint32_t)c.r << 16 | (uint32_t)c.g << 8 | c.b;
		}
	}
	cairo_surface_mark_dirty(img);
	return img;
}

static void base64(membuf *b, const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
		             i + 2 < n ? a[v & 63] : '='};
		put_bytes(b, q, 4);
	}
}

static void svg_image(fv__fig *f, double x, double y, double w, double h, cairo_surface_t *img)
{
	membuf png = {0};
	if (cairo_surface_write_to_png_stream(img, put_stream, &png) != CAIRO_STATUS_SUCCESS) {
		f->out.failed = true;
		free(png.data);
		return;
	}
	svg_printf(f, "<image x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
	              "preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" "
	              "xlink:href=\"data:image/png;base64,", x, y, w, h);
	base64(&f->out, png.data, png.len);
	svg_printf(f, "\"/>\n");
	free(png.data);
}

void fv__fig_image(fv__fig *f, double x, double y, double w, double h, int rows, int cols,
                   const fv_real *values, int64_t row_stride, int64_t col_stride, double vmax)
{
	if (rows < 1 || cols < 1)
		return;
	cairo_surface_t *img = value_image(rows, cols, values, row_stride, col_stride, vmax);
	if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
		f->out.failed = true;
	} else if (is_svg(f)) {
		svg_image(f, x, y, w, h, img);
	} else {
		cairo_save(f->cr);
		cairo_translate(f->cr, x, y);
		cairo_scale(f->cr, w / cols, h / rows);
		cairo_set_source_surface(f->cr, img, 0, 0);
		cairo_pattern_set_filter(cairo_get_source(f->cr), CAIRO_FILTER_NEAREST);
		cairo_rectangle(f->cr, 0, 0, cols, rows);
		cairo_fill(f->cr);
		cairo_restore(f->cr);
	}
	cairo_surface_destroy(img);
}
