/*
** test_figure.c: the figure primitives of figure.h (canvas, colour map,
** font, lines, PNG output) and fv_stimulus_peak / fv_figure_stimulus.
** Expected values are written down here, not computed by the code under
** test.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/figure.h"

#define RGB_EQ(c, R, G, B) ((c).r == (R) && (c).g == (G) && (c).b == (B))

Test(figure, diverging_map_is_white_at_zero_and_saturates_at_the_ends)
{
	fv_rgb z = fv_colormap_diverging(0.0, 2.0);
	cr_expect(RGB_EQ(z, 255, 255, 255));
	fv_rgb hi = fv_colormap_diverging(2.0, 2.0), beyond = fv_colormap_diverging(9.0, 2.0);
	cr_expect(RGB_EQ(hi, 178, 24, 43), "+vmax is %d %d %d", hi.r, hi.g, hi.b);
	cr_expect(RGB_EQ(beyond, 178, 24, 43), "values past vmax are clamped");
	fv_rgb lo = fv_colormap_diverging(-2.0, 2.0);
	cr_expect(RGB_EQ(lo, 33, 102, 172), "-vmax is %d %d %d", lo.r, lo.g, lo.b);
	/* halfway to +vmax: halfway from white to the red end */
	fv_rgb half = fv_colormap_diverging(1.0, 2.0);
	cr_expect(RGB_EQ(half, 217, 140, 149), "half is %d %d %d", half.r, half.g, half.b);
	fv_rgb flat = fv_colormap_diverging(1.0, 0.0);
	cr_expect(RGB_EQ(flat, 255, 255, 255), "vmax 0 draws white");
}

Test(figure, rectangles_and_lines_are_clipped_to_the_canvas)
{
	fv_canvas *c = fv_canvas_new(10, 8);
	cr_assert_not_null(c);
	cr_expect_eq(fv_canvas_width(c), 10);
	cr_expect_eq(fv_canvas_height(c), 8);
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 3, 3), 255, 255, 255), "a new canvas is white");
	fv_canvas_rect(c, 8, 6, 5, 5, FV_RGB(1, 2, 3));
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 9, 7), 1, 2, 3));
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 7, 7), 255, 255, 255));
	fv_canvas_line(c, 0, 0, 4, 4, FV_RGB(9, 9, 9));
	for (int i = 0; i <= 4; i++)
		cr_expect(RGB_EQ(fv_canvas_pixel(c, i, i), 9, 9, 9), "diagonal pixel %d", i);
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 1, 0), 255, 255, 255));
	fv_canvas_line(c, -5, 2, 20, 2, FV_RGB(7, 7, 7)); /* off both sides: no crash */
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 9, 2), 7, 7, 7));
	fv_canvas_free(c);
	cr_expect_null(fv_canvas_new(0, 5));
	cr_expect(strstr(fv_errmsg(), "0 x 5") != NULL, "%s", fv_errmsg());
}

Test(figure, text_draws_the_glyphs_of_the_font)
{
	fv_canvas *c = fv_canvas_new(40, 12);
	cr_assert_not_null(c);
	cr_expect_eq(fv_text_width("10", 2), 14, "two glyphs of 3 + a gap of 1, scale 2");
	int w = fv_canvas_text(c, 0, 0, 1, FV_RGB(0, 0, 0), "1-");
	cr_expect_eq(w, 7);
	/* '1' is 010/110/010/010/111: ink at (1, 0), none at (0, 0), a full bottom row */
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 1, 0), 0, 0, 0));
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 0, 0), 255, 255, 255));
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 0, 4), 0, 0, 0));
	/* '-' (the second glyph, from x = 4) is its middle row only */
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 5, 2), 0, 0, 0));
	cr_expect(RGB_EQ(fv_canvas_pixel(c, 5, 1), 255, 255, 255));
	fv_canvas_free(c);
}

static unsigned be32(const unsigned char *p)
{
	return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

Test(figure, png_has_the_signature_and_size)
{
	fv_canvas *c = fv_canvas_new(13, 7);
	cr_assert_not_null(c);
	char path[] = "/tmp/fovea_test_figure_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fv_canvas_save_png(c, path), FV_OK, "%s", fv_errmsg());
	unsigned char head[33];
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	cr_assert_eq(fread(head, 1, sizeof head, f), sizeof head);
	fclose(f);
	remove(path);
	cr_expect_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0);
	cr_expect_eq(memcmp(head + 12, "IHDR", 4), 0);
	cr_expect_eq(be32(head + 16), 13u);
	cr_expect_eq(be32(head + 20), 7u);
	cr_expect_eq(head[24], 8, "8 bits per sample");
	cr_expect_eq(head[25], 2, "colour type RGB");
	cr_expect_eq(fv_canvas_save_png(c, "/nonexistent-dir/x.png"), FV_ERR_IO);
	cr_expect(strstr(fv_errmsg(), "/nonexistent-dir/x.png") != NULL, "%s", fv_errmsg());
	fv_canvas_free(c);
}

/* A (2, 4, 5, 6) stimulus: small noise everywhere, a strong time course
** on channel 1 at (row 3, col 1). */
static fv_tensor *planted(void)
{
	int64_t shape[4] = {2, 4, 5, 6};
	fv_tensor *t = fv_tensor_new(4, shape);
	cr_assert_not_null(t);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(0.01 * (double)((i * 7) % 5 - 2));
	for (int64_t k = 0; k < 4; k++)
		t->data[((1 * 4 + k) * 5 + 3) * 6 + 1] = (fv_real)(k % 2 ? -1.0 : 0.8);
	return t;
}

Test(figure, stimulus_peak_is_the_pixel_with_most_energy)
{
	fv_tensor *t = planted();
	int64_t ch = -1, row = -1, col = -1;
	cr_assert_eq(fv_stimulus_peak(t, &ch, &row, &col), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(ch, 1);
	cr_expect_eq(row, 3);
	cr_expect_eq(col, 1);
	int64_t flat[2] = {4, 5};
	fv_tensor *bad = fv_tensor_new(2, flat);
	cr_expect_eq(fv_stimulus_peak(bad, &ch, &row, &col), FV_ERR_SHAPE);
	cr_expect(strstr(fv_errmsg(), "(channels, time, height, width)") != NULL, "%s", fv_errmsg());
	fv_tensor_free(bad);
	fv_tensor_free(t);
}

Test(figure, stimulus_figure_is_written)
{
	fv_tensor *t = planted();
	char path[] = "/tmp/fovea_test_stimulus_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fv_figure_stimulus(t, "a title", 3, path), FV_OK, "%s", fv_errmsg());
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	unsigned char head[8];
	cr_expect_eq(fread(head, 1, 8, f), 8u);
	fclose(f);
	remove(path);
	cr_expect_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0);
	fv_tensor_free(t);
}
