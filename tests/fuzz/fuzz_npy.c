/*
** fuzz_npy.c: libFuzzer target for the .npy reader.
**
** Each input is read as a whole .npy file from memory (fmemopen, so no disk
** traffic per run).  An accepted array must have the element count its
** shape says and every element must be readable (ASan catches a buffer
** shorter than the shape); a rejection must leave a message naming the
** input.  The seed corpus (corpus/npy/) holds valid files of every dtype
** and the overflowing shapes of issue 12.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/npy.h"
#include "io/npy_internal.h"

#define NAME "fuzz.npy"

/* Every element is read into this, so that none can be optimised away. */
static volatile fv_real sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0; /* fmemopen refuses an empty buffer */
	FILE *f = fmemopen((void *)data, size, "rb");
	if (f == NULL)
		return 0;
	fv_tensor *t = fv__npy_read(f, NAME);
	fclose(f);
	if (t == NULL) {
		if (strstr(fv_errmsg(), NAME) == NULL)
			abort(); /* every rejection names the file */
		return 0;
	}
	int64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= t->shape[i];
	if (n != t->numel || (size_t)t->numel > size)
		abort(); /* the data came from the input, so it cannot be larger */
	for (int64_t i = 0; i < t->numel; i++)
		sink = t->data[i];
	fv_tensor_free(t);
	return 0;
}
