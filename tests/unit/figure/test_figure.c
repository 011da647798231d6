/*
** test_figure.c: the figure primitives of figure.h (canvas, colour map,
** font, lines, PNG output), fv_stimulus_peak / fv_figure_stimulus, and the
** model figures drawn from what a model's components declare (a model
** declared here, read back through libpng).  Expected values are written
** down here, not computed by the code under test.
*/
#include <criterion/criterion.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/figure.h"
#include "fovea/plugin.h"

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

/* ---- model figures, from what the model's components declare ------------------------ */

/* A model that answers the figures' questions with planted values:
** neurons of session "s1" at (row 1, column 2) and (row 3, column 0) of a
** 4 x 3 feature map, and a (1, 1, 2, 2, 2) first-layer kernel whose
** largest |value| is +2 at t 1, pixel (0, 0). */
typedef struct fig_model {
	bool broken; /* positions fail with FV_ERR_SHAPE */
} fig_model;

static const fv_option fig_options[] = {
	FV_OPT("broken", BOOL, fig_model, broken, "false", "fail to give positions"),
	{0},
};

static fv_tensor *fig_forward(fv_module *m, fv_ctx *ctx, fv_tensor *x, const fv_forward_args *fa)
{
	(void)m;
	(void)ctx;
	(void)fa;
	return x;
}

static fv_status fig_positions(const fv_module *m, const char *session, int64_t n,
                               double *row_col, int64_t map_hw[2])
{
	const fig_model *f = fv_module_priv(m);
	if (f->broken || strcmp(session, "s1") != 0 || n != 2)
		return fv_error(FV_ERR_SHAPE, "asked for %lld neurons of %s", (long long)n, session);
	const double planted_rc[4] = {1, 2, 3, 0};
	memcpy(row_col, planted_rc, sizeof planted_rc);
	map_hw[0] = 4;
	map_hw[1] = 3;
	return FV_OK;
}

static fv_status fig_filters(const fv_module *m, fv_tensor **out)
{
	(void)m;
	*out = fv_tensor_new(5, (int64_t[]){1, 1, 2, 2, 2});
	if (*out == NULL)
		return FV_ERR_NOMEM;
	const fv_real w[8] = {0.5f, -0.25f, 0.1f, 0, 2.0f, 0.3f, -1.0f, 0.2f};
	memcpy((*out)->data, w, sizeof w);
	return FV_OK;
}

static const char *const fig_names[] = {"FigModel", NULL};
static const char *const plain_names[] = {"PlainModel", NULL};
static const fv_component fig_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = fig_names,
	.doc = "answers the figures",
	.options = fig_options,
	.priv_size = sizeof(fig_model),
	.forward = fig_forward,
	.neuron_positions = fig_positions,
	.first_layer_filters = fig_filters,
};
static const fv_component plain_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_MODEL,
	.names = plain_names,
	.doc = "answers nothing",
	.forward = fig_forward,
};
static const fv_component *const fig_list[] = {&fig_component, &plain_component};
static const fv_plugin fig_plugin = {
	.abi_major = FV_ABI_MAJOR, .abi_minor = FV_ABI_MINOR, .name = "figures",
	.n_components = 2, .components = fig_list,
};

static fv_module *fig_model_new(fv_registry *reg, const char *name, const char *yaml)
{
	fv_config *cfg = yaml ? fv_config_load_string(yaml, strlen(yaml), "fig.yaml") : NULL;
	fv_module *m = fv_instantiate_component(fv_registry_find(reg, name, NULL),
	                                        cfg ? fv_config_root(cfg) : NULL, NULL, "model");
	cr_assert_not_null(m, "%s", fv_errmsg());
	fv_config_free(cfg);
	return m;
}

/* The PNG at `path` as RGB rows, through libpng's simplified API. */
typedef struct rgb_image {
	png_image info;
	unsigned char *px;
} rgb_image;

static rgb_image read_png(const char *path)
{
	rgb_image im = {.info = {.version = PNG_IMAGE_VERSION}};
	cr_assert(png_image_begin_read_from_file(&im.info, path), "%s", im.info.message);
	im.info.format = PNG_FORMAT_RGB;
	im.px = malloc(PNG_IMAGE_SIZE(im.info));
	cr_assert_not_null(im.px);
	cr_assert(png_image_finish_read(&im.info, NULL, im.px, 0, NULL), "%s", im.info.message);
	return im;
}

static fv_rgb pixel_at(const rgb_image *im, int x, int y)
{
	const unsigned char *p = im->px + ((size_t)y * im->info.width + (size_t)x) * 3;
	return FV_RGB(p[0], p[1], p[2]);
}

static const char *const fig_sessions[] = {"s1"};
static const int64_t fig_neurons[] = {2};
static const fv_data_info fig_info = {
	.n_sessions = 1, .sessions = fig_sessions, .n_neurons = fig_neurons,
	.input_shape = {1, 4, 3},
};

Test(figure, readout_positions_come_from_the_model)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &fig_plugin, "test_figure.c"), FV_OK, "%s", fv_errmsg());
	fv_module *m = fig_model_new(reg, "FigModel", NULL);
	char path[] = "/tmp/fovea_test_positions_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fv_figure_readout_positions(m, &fig_info, path), FV_OK, "%s", fv_errmsg());
	rgb_image im = read_png(path);
	remove(path);
	/* One panel at (12, 42), 16-pixel cells on the 4 x 3 stimulus; a dot is
	** 5 x 5 around ((column + 0.5) * 16, (row + 0.5) * 16) of the panel. */
	fv_rgb dot0 = pixel_at(&im, 12 + 40, 42 + 24), dot1 = pixel_at(&im, 12 + 8, 42 + 56);
	cr_expect(RGB_EQ(dot0, 200, 30, 30), "neuron 0 is %d %d %d", dot0.r, dot0.g, dot0.b);
	cr_expect(RGB_EQ(dot1, 200, 30, 30), "neuron 1 is %d %d %d", dot1.r, dot1.g, dot1.b);
	fv_rgb empty = pixel_at(&im, 12 + 8, 42 + 8);
	cr_expect(RGB_EQ(empty, 235, 235, 235), "no neuron at (0, 0): %d %d %d", empty.r, empty.g,
	          empty.b);
	free(im.px);
	fv_module_free(m);
	fv_registry_free(reg);
}

Test(figure, core_filters_come_from_the_model)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &fig_plugin, "test_figure.c"), FV_OK, "%s", fv_errmsg());
	fv_module *m = fig_model_new(reg, "FigModel", NULL);
	char path[] = "/tmp/fovea_test_filters_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fv_figure_core_filters(m, path), FV_OK, "%s", fv_errmsg());
	rgb_image im = read_png(path);
	remove(path);
	/* One output row and one input column of a 2 x 2 kernel (16-pixel
	** cells): 48 + 40 + 48 + 160 + 70 wide, 52 + 62 + 10 high. */
	cr_expect_eq(im.info.width, 366u);
	cr_expect_eq(im.info.height, 124u);
	/* The spatial filter is the frame at the peak, t 1: +2 (the colour
	** map's red end) at (0, 0), -1 at (1, 0). */
	fv_rgb peak = pixel_at(&im, 48 + 8, 52 + 8), neg = pixel_at(&im, 48 + 8, 52 + 24);
	cr_expect(RGB_EQ(peak, 178, 24, 43), "the peak is %d %d %d", peak.r, peak.g, peak.b);
	fv_rgb want = fv_colormap_diverging(-1.0, 2.0);
	cr_expect(RGB_EQ(neg, want.r, want.g, want.b), "-1 is %d %d %d", neg.r, neg.g, neg.b);
	free(im.px);
	fv_module_free(m);
	fv_registry_free(reg);
}

/* A model that cannot answer has no such figure; one that fails is an error. */
Test(figure, model_figures_are_skipped_or_fail)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &fig_plugin, "test_figure.c"), FV_OK, "%s", fv_errmsg());
	char dir[] = "/tmp/fovea_test_figures_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char file[512];

	fv_module *plain = fig_model_new(reg, "PlainModel", NULL);
	cr_assert_eq(fv_figure_readout_positions(plain, &fig_info, "/nonexistent/x.png"),
	             FV_ERR_NOTFOUND);
	cr_expect(strstr(fv_errmsg(), "model 'PlainModel' (model) has no neuron_positions") != NULL,
	          "%s", fv_errmsg());
	int n = -1;
	cr_assert_eq(fv_figures_write_model(plain, &fig_info, dir, &n), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(n, 0);
	snprintf(file, sizeof file, "%s/core_filters.png", dir);
	cr_expect_neq(access(file, F_OK), 0, "no figure without the callbacks");
	fv_module_free(plain);

	fv_module *fig = fig_model_new(reg, "FigModel", NULL);
	cr_assert_eq(fv_figures_write_model(fig, &fig_info, dir, &n), FV_OK, "%s", fv_errmsg());
	cr_expect_eq(n, 2);
	fv_module_free(fig);
	fv_module *broken = fig_model_new(reg, "FigModel", "broken: true\n");
	cr_expect_eq(fv_figures_write_model(broken, &fig_info, dir, &n), FV_ERR_SHAPE);
	cr_expect(strstr(fv_errmsg(), "readout positions, session s1: asked for 2 neurons") != NULL,
	          "%s", fv_errmsg());
	fv_module_free(broken);

	const char *const written[] = {"readout_positions.png", "core_filters.png"};
	for (int i = 0; i < 2; i++) {
		snprintf(file, sizeof file, "%s/%s", dir, written[i]);
		remove(file);
	}
	remove(dir);
	fv_registry_free(reg);
}
