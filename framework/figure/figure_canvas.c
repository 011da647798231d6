/*
** figure_canvas.c: the drawing primitives of figure.h (an RGB canvas,
** a 3x5 bitmap font, a diverging colour map, a colour bar, a line plot)
** and PNG output through libpng.  Figures are small (a few hundred pixels
** a side), so everything is plain loops over bytes.
*/
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/figure.h"
#include "base/base_internal.h"

struct fv_canvas {
	int w, h;
	uint8_t *px; /* h rows of w RGB triples */
};

#define MAX_SIDE 16384

fv_canvas *fv_canvas_new(int width, int height)
{
	if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
		fv_error(FV_ERR_ARG, "canvas of %d x %d pixels: each side must be 1..%d", width,
		         height, MAX_SIDE);
		return NULL;
	}
	fv_canvas *c = fv__malloc(sizeof *c);
	uint8_t *px = fv__malloc((size_t)width * (size_t)height * 3);
	if (c == NULL || px == NULL) {
		free(c);
		free(px);
		fv_error(FV_ERR_NOMEM, "out of memory for a %d x %d canvas", width, height);
		return NULL;
	}
	memset(px, 255, (size_t)width * (size_t)height * 3);
	*c = (fv_canvas){.w = width, .h = height, .px = px};
	return c;
}

void fv_canvas_free(fv_canvas *c)
{
	if (c != NULL)
		free(c->px);
	free(c);
}

int fv_canvas_width(const fv_canvas *c) { return c->w; }
int fv_canvas_height(const fv_canvas *c) { return c->h; }

fv_rgb fv_canvas_pixel(const fv_canvas *c, int x, int y)
{
	if (x < 0 || y < 0 || x >= c->w || y >= c->h)
		return FV_RGB(255, 255, 255);
	const uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
	return FV_RGB(p[0], p[1], p[2]);
}

static void put(fv_canvas *c, int x, int y, fv_rgb col)
{
	if (x < 0 || y < 0 || x >= c->w || y >= c->h)
		return;
	uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
	p[0] = col.r;
	p[1] = col.g;
	p[2] = col.b;
}

void fv_canvas_rect(fv_canvas *c, int x, int y, int w, int h, fv_rgb colour)
{
	for (int j = y; j < y + h; j++)
		for (int i = x; i < x + w; i++)
			put(c, i, j, colour);
}

void fv_canvas_frame(fv_canvas *c, int x, int y, int w, int h, fv_rgb colour)
{
	fv_canvas_rect(c, x, y, w, 1, colour);
	fv_canvas_rect(c, x, y + h - 1, w, 1, colour);
	fv_canvas_rect(c, x, y, 1, h, colour);
	fv_canvas_rect(c, x + w - 1, y, 1, h, colour);
}

/* Bresenham: every pixel on the line, endpoints included. */
void fv_canvas_line(fv_canvas *c, int x0, int y0, int x1, int y1, fv_rgb colour)
{
	int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
	int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
	int err = dx + dy;
	for (;;) {
		put(c, x0, y0, colour);
		if (x0 == x1 && y0 == y1)
			return;
		int e2 = 2 * err;
		if (e2 >= dy) {
			err += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			err += dx;
			y0 += sy;
		}
	}
}

/* ---- text ------------------------------------------------------------------------ */

/* Each glyph: 5 rows of 3 columns, top row first, '1' for ink. */
static const struct glyph {
	char ch;
	const char *rows;
} font[] = {
	{'0', "111101101101111"}, {'1', "010110010010111"}, {'2', "111001111100111"},
	{'3', "111001111001111"}, {'4', "101101111001001"}, {'5', "111100111001111"},
	{'6', "111100111101111"}, {'7', "111001001001001"}, {'8', "111101111101111"},
	{'9', "111101111001111"}, {'A', "010101111101101"}, {'B', "110101110101110"},
	{'C', "011100100100011"}, {'D', "110101101101110"}, {'E', "111100110100111"},
	{'F', "111100110100100"}, {'G', "011100101101011"}, {'H', "101101111101101"},
	{'I', "111010010010111"}, {'J', "001001001101010"}, {'K', "101101110101101"},
	{'L', "100100100100111"}, {'M', "101111111101101"}, {'N', "110101101101101"},
	{'O', "010101101101010"}, {'P', "110101110100100"}, {'Q', "010101101110011"},
	{'R', "110101110101101"}, {'S', "011100010001110"}, {'T', "111010010010010"},
	{'U', "101101101101111"}, {'V', "101101101101010"}, {'W', "101101111111101"},
	{'X', "101101010101101"}, {'Y', "101101010010010"}, {'Z', "111001010100111"},
	{'-', "000000111000000"}, {'.', "000000000000010"}, {',', "000000000010100"},
	{':', "000010000010000"}, {'=', "000111000111000"}, {'(', "001010010010001"},
	{')', "100010010010100"}, {'_', "000000000000111"}, {'/', "001001010100100"},
	{'+', "000010111010000"}, {' ', "000000000000000"}, {'%', "101001010100101"},
	{'[', "011010010010011"}, {']', "110010010010110"}, {'\'', "010010000000000"},
	{'#', "101111101111101"}, {'<', "001010100010001"}, {'>', "100010001010100"},
};

static const char *glyph_rows(char ch)
{
	if (ch >= 'a' && ch <= 'z')
		ch = (char)(ch - 'a' + 'A');
	for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
		if (font[i].ch == ch)
			return font[i].rows;
	return "111101101101111"; /* a box for what the font lacks */
}

int fv_text_width(const char *text, int scale)
{
	int n = (int)strlen(text);
	return n > 0 ? (4 * n - 1) * scale : 0;
}

int fv_canvas_text(fv_canvas *c, int x, int y, int scale, fv_rgb colour, const char *text)
{
	for (int k = 0; text[k] != '\0'; k++) {
		const char *rows = glyph_rows(text[k]);
		for (int r = 0; r < 5; r++)
			for (int col = 0; col < 3; col++)
				if (rows[r * 3 + col] == '1')
					fv_canvas_rect(c, x + (4 * k + col) * scale, y + r * scale, scale,
					               scale, colour);
	}
	return fv_text_width(text, scale);
}

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

void fv_canvas_image(fv_canvas *c, int x, int y, int rows, int cols, const fv_real *values,
                     int64_t row_stride, int64_t col_stride, int cell, double vmax)
{
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++) {
			double v = (double)values[i * row_stride + j * col_stride];
			fv_canvas_rect(c, x + j * cell, y + i * cell, cell, cell,
			               fv_colormap_diverging(v, vmax));
		}
}

/* A short label for an axis value: 3 significant digits. */
static void number_label(char *buf, size_t n, double v)
{
	snprintf(buf, n, "%.3g", v);
}

void fv_canvas_colorbar(fv_canvas *c, int x, int y, int w, int h, double vmax)
{
	static const fv_rgb ink = {0, 0, 0};
	for (int j = 0; j < h; j++) {
		double v = vmax * (1.0 - 2.0 * j / (h > 1 ? h - 1 : 1));
		fv_canvas_rect(c, x, y + j, w, 1, fv_colormap_diverging(v, vmax));
	}
	fv_canvas_frame(c, x, y, w, h, ink);
	char label[32];
	number_label(label, sizeof label, vmax);
	fv_canvas_text(c, x + w + 3, y, 1, ink, label);
	fv_canvas_text(c, x + w + 3, y + h / 2 - 2, 1, ink, "0");
	number_label(label, sizeof label, -vmax);
	fv_canvas_text(c, x + w + 3, y + h - 5, 1, ink, label);
}

/* ---- line plot ------------------------------------------------------------------------ */

static void series_range(int n_series, const fv_series *s, double *lo, double *hi, int *n_max)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	*n_max = 1;
	for (int k = 0; k < n_series; k++) {
		for (int i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].y[i]))
				continue;
			*lo = fmin(*lo, s[k].y[i]);
			*hi = fmax(*hi, s[k].y[i]);
		}
		if (s[k].n > *n_max)
			*n_max = s[k].n;
	}
	if (!(*lo <= *hi))
		*lo = *hi = 0;
	if (*hi - *lo < 1e-12 * fmax(1.0, fabs(*hi))) { /* a flat line: give it room */
		*lo -= 1;
		*hi += 1;
	}
}

void fv_canvas_line_plot(fv_canvas *c, int x, int y, int w, int h, const char *title,
                         int n_series, const fv_series *series)
{
	static const fv_rgb ink = {0, 0, 0}, grey = {170, 170, 170};
	double lo, hi;
	int n_max;
	series_range(n_series, series, &lo, &hi, &n_max);
	/* value -> canvas row, index -> canvas column, inside the frame */
#define ROW(v) (y + h - 2 - (int)lround(((v) - lo) / (hi - lo) * (h - 3)))
#define COL(i) (x + 1 + (n_max > 1 ? (int)lround((double)(i) * (w - 3) / (n_max - 1)) : 0))
	if (lo < 0 && hi > 0)
		fv_canvas_line(c, x, ROW(0.0), x + w - 1, ROW(0.0), grey);
	for (int k = 0; k < n_series; k++)
		for (int i = 1; i < series[k].n; i++)
			if (isfinite(series[k].y[i - 1]) && isfinite(series[k].y[i]))
				fv_canvas_line(c, COL(i - 1), ROW(series[k].y[i - 1]), COL(i),
				               ROW(series[k].y[i]), series[k].colour);
#undef ROW
#undef COL
	fv_canvas_frame(c, x, y, w, h, ink);
	char label[32];
	number_label(label, sizeof label, hi);
	fv_canvas_text(c, x - fv_text_width(label, 1) - 3, y, 1, ink, label);
	number_label(label, sizeof label, lo);
	fv_canvas_text(c, x - fv_text_width(label, 1) - 3, y + h - 5, 1, ink, label);
	fv_canvas_text(c, x, y + h + 3, 1, ink, "0");
	snprintf(label, sizeof label, "%d", n_max - 1);
	fv_canvas_text(c, x + w - fv_text_width(label, 1), y + h + 3, 1, ink, label);
	if (title != NULL)
		fv_canvas_text(c, x, y - 9, 1, ink, title);
}

/* ---- PNG --------------------------------------------------------------------------------- */

typedef struct membuf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
} membuf;

static void png_write_mem(png_structp png, png_bytep data, png_size_t n)
{
	membuf *b = png_get_io_ptr(png);
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
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
}

static void png_flush_mem(png_structp png) { (void)png; }

/* libpng reports errors by longjmp; the encoder runs in its own function
** so that nothing of ours lives across the setjmp. */
static bool encode_png(const fv_canvas *c, membuf *out)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (info == NULL) {
		png_destroy_write_struct(&png, NULL);
		return false;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return false;
	}
	png_set_write_fn(png, out, png_write_mem, png_flush_mem);
	png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
	             PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < c->h; y++)
		png_write_row(png, c->px + (size_t)y * (size_t)c->w * 3);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return !out->failed;
}

fv_status fv_canvas_save_png(const fv_canvas *c, const char *path)
{
	membuf b = {0};
	fv_status rc = encode_png(c, &b)
	                   ? fv_write_file_atomic(path, b.data, b.len)
	                   : fv_error(FV_ERR_NOMEM, "%s: encoding the PNG failed (out of memory)", path);
	free(b.data);
	return rc;
}

fv_status fv_write_file_atomic(const char *path, const void *data, size_t size)
{
	const void *parts[1] = {data};
	size_t sizes[1] = {size};
	return fv__atomic_write(path, 1, parts, sizes);
}
