/*
** png_stats.c: prints "WIDTH HEIGHT NONWHITE WARM" of a PNG, the last two
** as fractions of its pixels: NONWHITE differs from white, WARM is clearly
** red-orange (red above blue by more than 64).  The browser test uses it to
** tell a page whose figures drew (the diverging colour maps' warm half, the
** readout dots, the colour bars) from a blank one or one of text, blue
** links and broken-image icons.  Read through libpng's simplified API;
** exit 1 with a message if it cannot.
*/
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	png_image img = {.version = PNG_IMAGE_VERSION};
	if (argc != 2 || !png_image_begin_read_from_file(&img, argv[1])) {
		fprintf(stderr, "png_stats: cannot read %s\n", argc == 2 ? argv[1] : "(usage: FILE)");
		return 1;
	}
	img.format = PNG_FORMAT_RGB;
	size_t n = (size_t)img.width * img.height;
	png_byte *px = malloc(n * 3 > 0 ? n * 3 : 1);
	if (px == NULL || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
		fprintf(stderr, "png_stats: cannot decode %s\n", argv[1]);
		free(px);
		png_image_free(&img);
		return 1;
	}
	size_t nonwhite = 0, warm = 0;
	for (size_t i = 0; i < n; i++) {
		const png_byte *p = px + 3 * i;
		nonwhite += p[0] < 250 || p[1] < 250 || p[2] < 250;
		warm += p[0] > p[2] + 64;
	}
	printf("%u %u %.4f %.4f\n", img.width, img.height, n ? (double)nonwhite / n : 0.0,
	       n ? (double)warm / n : 0.0);
	free(px);
	return 0;
}
