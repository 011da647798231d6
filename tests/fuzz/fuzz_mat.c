/*
** fuzz_mat.c: libFuzzer target for the .mat reading path of the
** karamanlis_2024 reader (plugins/data/karamanlis_2024_mat.c, through
** libmatio) and the fixation movie drawn from what it read.
**
** libmatio opens files by name only, so each input is written to one
** scratch file.  Every variable the reader uses is read with its expected
** rank; an accepted array must hold as many numbers as its shape says
** (ASan catches a shorter buffer), a rejection must leave a message
** naming the file.  When images and fixations were read, the first two
** frames are drawn (any fixation: a bad one must be an error, not an
** out-of-bounds read).  The seeds (corpus/mat/, make_mat_seeds.py) are
** small v5 and v7.3 files.
**
** Every input is made a v5 file (its version field set): libmatio parses
** v5 itself, where fovea bounds what a file may declare before libmatio
** allocates it (karamanlis_2024_mat_scan.c), while a v7.3 file is parsed
** by libhdf5, whose own parser is not safe against damaged bytes (fuzzing
** found a use-after-free inside H5Aopen_by_name of Debian's 1.10.8).  The
** v7.3 path is tested on damaged files built by h5py (test_data_karamanlis).
** libmatio's v5 parser also allocates what nested elements declare, which
** the scan does not bound: it may ask for gigabytes it never touches, so
** this target runs with an 8 GB allocation limit (fuzz_mat.options).
*/
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "karamanlis_2024.h"

static volatile double sink;

static const struct {
	const char *name;
	int ndim;
} variables[] = {
	{"runningImages", 3}, {"frozenImages", 3},   {"frozenfixations", 2},
	{"runningfixations", 3}, {"runningbin", 3}, {"frozenbin", 3},
};
#define N_VARS (sizeof variables / sizeof variables[0])

static char path[64];

static void check_rejection(void)
{
	if (strstr(fv_errmsg(), path) == NULL)
		abort(); /* every rejection names the file */
}

static void draw_some(const kara_array *images, const kara_array *fix)
{
	int64_t stride = fix->shape[fix->ndim - 1];
	int64_t frames = fix->numel / stride;
	if (stride < 3)
		return;
	frames = frames < 2 ? frames : 2;
	float out[2 * 6 * 8];
	if (kara_fix_movie(images, fix, 0, frames, 6, 8, out, path, "fix") != FV_OK)
		check_rejection();
	else
		for (int i = 0; i < frames * 48; i++)
			sink = out[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (path[0] == '\0')
		snprintf(path, sizeof path, "/tmp/fovea_fuzz_mat_%ld.mat", (long)getpid());
	FILE *f = fopen(path, "wb");
	bool ok = f != NULL && fwrite(data, 1, size, f) == size;
	if (ok && size >= 128) { /* version 0x0100, in the order "IM" / "MI" gives */
		bool little = data[126] == 'I';
		ok = fseek(f, 124, SEEK_SET) == 0 && fputc(little ? 0x00 : 0x01, f) != EOF &&
		     fputc(little ? 0x01 : 0x00, f) != EOF;
	}
	if (!ok) {
		if (f != NULL)
			fclose(f);
		return 0;
	}
	fclose(f);
	kara_mat *m = NULL;
	if (kara_mat_open(path, &m) != FV_OK) {
		check_rejection();
		return 0;
	}
	kara_array a[N_VARS];
	for (size_t i = 0; i < N_VARS; i++) {
		if (kara_mat_read(m, variables[i].name, variables[i].ndim, i >= 4, &a[i]) != FV_OK) {
			check_rejection();
			continue;
		}
		int64_t n = 1;
		for (int d = 0; d < a[i].ndim; d++)
			n *= a[i].shape[d];
		if (n != a[i].numel)
			abort();
		for (int64_t k = 0; k < a[i].numel; k++)
			sink = kara_at(&a[i], k);
	}
	if (a[0].raw != NULL && a[3].raw != NULL)
		draw_some(&a[0], &a[3]);
	for (size_t i = 0; i < N_VARS; i++)
		kara_array_free(&a[i]);
	kara_mat_close(m);
	return 0;
}
