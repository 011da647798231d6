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

/* A temporary file name ending in `suffix` (".svg"), the file created. */
static void temp_name(char *buf, size_t n, const char *suffix)
{
	snprintf(buf, n, "/tmp/fovea_test_figure_XXXXXX%s", suffix);
	int fd = mkstemps(buf, (int)strlen(suffix));
	cr_assert_geq(fd, 0);
	close(fd);
}

/* The whole file as a string (malloc'd). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_not_null(s);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* The SVG has a <text ...>want</text> element. */
static bool has_text(const char *svg, const char *want)
{
	char needle[512];
	snprintf(needle, sizeof needle, ">%s</text>", want);
	return strstr(svg, needle) != NULL;
}

#define EXPECT_TEXT(svg, want) cr_expect(has_text((svg), (want)), "no <text> '%s'", (want))

/* Is any pixel of the box (x, y, w, h) far from white? */
static bool inked(const rgb_image *im, int x, int y, int w, int h)
{
	for (int j = y; j < y + h; j++)
		for (int i = x; i < x + w; i++) {
			fv_rgb c = pixel_at(im, i, j);
			if (c.r + c.g + c.b < 600)
				return true;
		}
	return false;
}

/* points -> pixels at the default 100 dpi */
#define PX(pt) ((int)((pt) * 100.0 / 72.0))

Test(figure, stimulus_svg_has_titles_ticks_and_colour_bar_values)
{
	fv_tensor *t = planted();
	char path[64];
	temp_name(path, sizeof path, ".svg");
	cr_assert_eq(fv_figure_stimulus(t, "MEI session_1 neuron 3", 3, path), FV_OK, "%s",
	             fv_errmsg());
	char *svg = slurp(path);
	remove(path);
	cr_expect(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>") != NULL);
	EXPECT_TEXT(svg, "MEI session_1 neuron 3");
	/* 3 of 4 frames, evenly spaced: 0, 2 (1.5 rounded), 3 */
	EXPECT_TEXT(svg, "t = 0");
	EXPECT_TEXT(svg, "t = 2");
	EXPECT_TEXT(svg, "t = 3");
	cr_expect(!has_text(svg, "t = 1"));
	EXPECT_TEXT(svg, "channel 0");
	EXPECT_TEXT(svg, "channel 1");
	EXPECT_TEXT(svg, "time course at the peak pixel (row 3, column 1)");
	EXPECT_TEXT(svg, "frame");
	EXPECT_TEXT(svg, "value");
	/* the colour bar spans the largest |value|, 1: ticks every 0.5 */
	const char *bar[] = {"-1.0", "-0.5", "0.0", "0.5", "1.0"};
	for (int i = 0; i < 5; i++)
		EXPECT_TEXT(svg, bar[i]);
	/* the time axis: frames 0..3 */
	for (int i = 0; i < 4; i++) {
		char v[8];
		snprintf(v, sizeof v, "%d", i);
		EXPECT_TEXT(svg, v);
	}
	cr_expect(strstr(svg, "font-family=\"DejaVu Sans") != NULL);
	cr_expect(strstr(svg, "data:image/png;base64,") != NULL, "the frames are images");
	free(svg);
	fv_tensor_free(t);
}

Test(figure, stimulus_png_has_its_size_and_inked_regions)
{
	fv_tensor *t = planted();
	char path[64];
	temp_name(path, sizeof path, ".png");
	cr_assert_eq(fv_figure_stimulus(t, "a title", 3, path), FV_OK, "%s", fv_errmsg());
	rgb_image im = read_png(path);
	/* 64 + 280 + 78 = 422 points wide; 48 + 2 * (43.3 + 4) + 36 + 120 + 44
	** = 342.7 points high; at 100 dpi */
	cr_expect_eq(im.info.width, 586u);
	cr_expect_eq(im.info.height, 476u);
	cr_expect(inked(&im, PX(12), PX(10), PX(60), PX(14)), "the title");
	/* channel 1, frame 0: the planted pixel (row 3, column 1) is +0.8,
	** a strong red on the map of |max| 1 */
	fv_rgb peak = pixel_at(&im, PX(64 + 1.5 * 52 / 6), PX(48 + 47.33 + 3.5 * 52 / 6));
	cr_expect(peak.r > 180 && peak.g < 90, "the peak is %d %d %d", peak.r, peak.g, peak.b);
	cr_expect(inked(&im, PX(64), PX(178.7), PX(280), PX(120)), "the time course");
	cr_expect(!inked(&im, PX(422 - 20), PX(342.7 - 10), PX(18), PX(8)), "the corner is blank");
	free(im.px);
	/* a chosen size and resolution */
	fv_figure_output out = {.width_in = 8, .dpi = 50};
	cr_assert_eq(fv_figure_stimulus_to(t, "a title", 3, &out, path), FV_OK, "%s", fv_errmsg());
	im = read_png(path);
	cr_expect_eq(im.info.width, 400u);
	cr_expect_eq(im.info.height, 325u, "the aspect kept: %u", im.info.height);
	free(im.px);
	remove(path);
	fv_tensor_free(t);
}

Test(figure, pdf_by_name_or_format_and_bad_names_are_errors)
{
	fv_tensor *t = planted();
	char path[64];
	temp_name(path, sizeof path, ".pdf");
	cr_assert_eq(fv_figure_stimulus(t, "a title", 3, path), FV_OK, "%s", fv_errmsg());
	char *pdf = slurp(path);
	cr_expect(strncmp(pdf, "%PDF-", 5) == 0);
	free(pdf);
	fv_figure_output svg = {.format = FV_FIGURE_SVG};
	cr_assert_eq(fv_figure_stimulus_to(t, "a title", 3, &svg, path), FV_OK, "%s", fv_errmsg());
	char *text = slurp(path);
	cr_expect(strstr(text, "<svg") != NULL, "--format svg wins over the name");
	free(text);
	remove(path);
	cr_expect_eq(fv_figure_stimulus(t, NULL, 3, "/tmp/x.jpg"), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "/tmp/x.jpg: cannot tell the figure format") != NULL, "%s",
	          fv_errmsg());
	fv_figure_output huge = {.width_in = 1000, .dpi = 300};
	cr_expect_eq(fv_figure_stimulus_to(t, NULL, 3, &huge, "/tmp/x.png"), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "each side must be 1..16384") != NULL, "%s", fv_errmsg());
	cr_expect_eq(fv_figure_stimulus(t, NULL, 3, "/nonexistent-dir/x.png"), FV_ERR_IO);
	cr_expect(strstr(fv_errmsg(), "/nonexistent-dir/x.png") != NULL, "%s", fv_errmsg());
	fv_figure_format fmt;
	cr_expect_eq(fv_figure_format_parse("SVG", &fmt), FV_OK);
	cr_expect_eq(fmt, FV_FIGURE_SVG);
	cr_expect_eq(fv_figure_format_parse("tiff", &fmt), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "'tiff': expected png, svg or pdf") != NULL, "%s", fv_errmsg());
	fv_tensor_free(t);
}

Test(figure, readout_positions_come_from_the_model)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &fig_plugin, "test_figure.c"), FV_OK, "%s", fv_errmsg());
	fv_module *m = fig_model_new(reg, "FigModel", NULL);
	char path[64];
	temp_name(path, sizeof path, ".png");
	cr_assert_eq(fv_figure_readout_positions(m, &fig_info, path), FV_OK, "%s", fv_errmsg());
	rgb_image im = read_png(path);
	/* One panel at (56, 52) points, 50-point cells on the 4 x 3 stimulus;
	** a dot at ((column + 0.5) * 50, (row + 0.5) * 50) of the panel. */
	fv_rgb dot0 = pixel_at(&im, PX(56 + 125), PX(52 + 75));
	fv_rgb dot1 = pixel_at(&im, PX(56 + 25), PX(52 + 175));
	cr_expect(dot0.r > 180 && dot0.g < 60, "neuron 0 is %d %d %d", dot0.r, dot0.g, dot0.b);
	cr_expect(dot1.r > 180 && dot1.g < 60, "neuron 1 is %d %d %d", dot1.r, dot1.g, dot1.b);
	fv_rgb empty = pixel_at(&im, PX(56 + 25), PX(52 + 25));
	cr_expect(RGB_EQ(empty, 238, 238, 238), "no neuron at (0, 0): %d %d %d", empty.r, empty.g,
	          empty.b);
	free(im.px);
	remove(path);
	temp_name(path, sizeof path, ".svg");
	cr_assert_eq(fv_figure_readout_positions(m, &fig_info, path), FV_OK, "%s", fv_errmsg());
	char *svg = slurp(path);
	remove(path);
	EXPECT_TEXT(svg, "Readout positions: FigModel");
	EXPECT_TEXT(svg, "session s1 (2 neurons)");
	EXPECT_TEXT(svg, "column (pixels)");
	EXPECT_TEXT(svg, "row (pixels)");
	EXPECT_TEXT(svg, "1");
	cr_expect(strstr(svg, "<circle cx=\"181.00\" cy=\"127.00\"") != NULL, "neuron 0's dot");
	free(svg);
	fv_module_free(m);
	fv_registry_free(reg);
}

Test(figure, core_filters_come_from_the_model)
{
	fv_registry *reg = fv_registry_new();
	cr_assert_eq(fv_registry_add(reg, &fig_plugin, "test_figure.c"), FV_OK, "%s", fv_errmsg());
	fv_module *m = fig_model_new(reg, "FigModel", NULL);
	char path[64];
	temp_name(path, sizeof path, ".png");
	cr_assert_eq(fv_figure_core_filters(m, path), FV_OK, "%s", fv_errmsg());
	rgb_image im = read_png(path);
	/* One output row, one input column of a 2 x 2 kernel in 44 points at
	** (40, 64): cells of 22.  The spatial filter is the frame at the
	** peak, t 1: +2 (the colour map's red end) at (0, 0), -1 at (1, 0). */
	fv_rgb peak = pixel_at(&im, PX(40 + 11), PX(64 + 11));
	fv_rgb neg = pixel_at(&im, PX(40 + 11), PX(64 + 33));
	cr_expect(RGB_EQ(peak, 178, 24, 43), "the peak is %d %d %d", peak.r, peak.g, peak.b);
	fv_rgb want = fv_colormap_diverging(-1.0, 2.0);
	cr_expect(RGB_EQ(neg, want.r, want.g, want.b), "-1 is %d %d %d", neg.r, neg.g, neg.b);
	free(im.px);
	remove(path);
	temp_name(path, sizeof path, ".svg");
	cr_assert_eq(fv_figure_core_filters(m, path), FV_OK, "%s", fv_errmsg());
	char *svg = slurp(path);
	remove(path);
	EXPECT_TEXT(svg, "Core layer 0 filters: FigModel");
	/* a model with only first_layer_filters() has no other layer */
	cr_expect_eq(fv_figure_layer_filters_to(m, 1, NULL, path), FV_ERR_NOTFOUND);
	fv_clear_error();
	EXPECT_TEXT(svg, "out 0");
	EXPECT_TEXT(svg, "temporal, peak pixel");
	EXPECT_TEXT(svg, "spatial, peak frame");
	EXPECT_TEXT(svg, "weight");
	const char *bar[] = {"-2", "-1", "0", "1", "2"}; /* the largest |weight| is 2 */
	for (int i = 0; i < 5; i++)
		EXPECT_TEXT(svg, bar[i]);
	free(svg);
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

	fv_module *fig2 = fig_model_new(reg, "FigModel", NULL);
	fv_figure_output svg = {.format = FV_FIGURE_SVG};
	cr_assert_eq(fv_figures_write_model_to(fig2, &fig_info, dir, &svg, &n), FV_OK, "%s",
	             fv_errmsg());
	cr_expect_eq(n, 2);
	fv_module_free(fig2);
	const char *const written[] = {"readout_positions.png", "core_filters.png",
	                               "readout_positions.svg", "core_filters.svg"};
	for (int i = 0; i < 4; i++) {
		snprintf(file, sizeof file, "%s/%s", dir, written[i]);
		cr_expect_eq(access(file, F_OK), 0, "%s written", written[i]);
		snprintf(file, sizeof file, "%s/%s", dir, written[i]);
		remove(file);
	}
	remove(dir);
	fv_registry_free(reg);
}
