/*
** npy_internal.h: the .npy reader on an open stream, so that the fuzzer
** can feed it from memory (fmemopen) without touching the disk.
*/
#ifndef FV_IO_NPY_INTERNAL_H
#define FV_IO_NPY_INTERNAL_H

#include <stdio.h>

#include "fovea/tensor.h"

/* Reads a whole .npy from f (positioned at its start, seekable); path names
** it in messages.  NULL with the error set on failure. */
fv_tensor *fv__npy_read(FILE *f, const char *path);

#endif
