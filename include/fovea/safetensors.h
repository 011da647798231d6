/*
** safetensors.h: reading and writing the safetensors format
** (u64 little-endian header length N, N bytes of JSON, raw data).
**
** The reader validates everything before anything is used: the header
** length against the file size (and 100 MB at most), the JSON (read by
** libjansson: bounded nesting, no duplicate keys), every dtype, shape and
** data_offsets pair (in bounds, matching dtype size x element count, no
** overlaps), and `__metadata__` being a map of strings.  A truncated or hostile file yields FV_ERR_FORMAT with a
** message naming the file and the problem, never a crash.
**
** The writer is atomic: it writes PATH.tmp.XXXXXX in the same directory,
** fsyncs it, renames it over PATH and fsyncs the directory, so a crash
** leaves either the old file or the new one.
*/
#ifndef FOVEA_SAFETENSORS_H
#define FOVEA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fv_dtype {
	FV_DTYPE_F64,
	FV_DTYPE_F32,
	FV_DTYPE_F16,
	FV_DTYPE_BF16,
	FV_DTYPE_I64,
	FV_DTYPE_I32,
	FV_DTYPE_I16,
	FV_DTYPE_I8,
	FV_DTYPE_U8,
	FV_DTYPE_BOOL
} fv_dtype;

FV_API const char *fv_dtype_name(fv_dtype dt); /* "F32", ... */
FV_API size_t fv_dtype_size(fv_dtype dt);

#define FV_ST_MAX_DIMS 8

typedef struct fv_st_entry {
	const char *name;
	fv_dtype dtype;
	int ndim;
	int64_t shape[FV_ST_MAX_DIMS];
	int64_t numel;
	const void *data; /* little-endian raw bytes inside the loaded file */
	size_t nbytes;
} fv_st_entry;

typedef struct fv_safetensors fv_safetensors;

FV_API fv_safetensors *fv_safetensors_open(const char *path);
/* Parse a buffer (copied); `name` is used in messages. */
FV_API fv_safetensors *fv_safetensors_from_memory(const void *buf, size_t len, const char *name);
FV_API void fv_safetensors_close(fv_safetensors *st);

FV_API size_t fv_safetensors_count(const fv_safetensors *st);
FV_API const fv_st_entry *fv_safetensors_at(const fv_safetensors *st, size_t i);
FV_API const fv_st_entry *fv_safetensors_find(const fv_safetensors *st, const char *name);
/* __metadata__ values; NULL when absent. */
FV_API const char *fv_safetensors_meta(const fv_safetensors *st, const char *key);
FV_API size_t fv_safetensors_meta_count(const fv_safetensors *st);
FV_API const char *fv_safetensors_meta_key(const fv_safetensors *st, size_t i);
FV_API const char *fv_safetensors_meta_value(const fv_safetensors *st, size_t i);

/* Convert an entry of a float or integer dtype to fv_real into `dst`, which
** must have exactly the entry's element count (shape is not checked, numel
** is). */
FV_API fv_status fv_safetensors_read(const fv_safetensors *st, const char *name, fv_real *dst,
                                     int64_t numel);
/* A new persistent tensor holding the entry (ndim <= FV_MAX_DIMS). */
FV_API fv_tensor *fv_safetensors_tensor(const fv_safetensors *st, const char *name);

/* ---- writing ------------------------------------------------------------------- */

typedef struct fv_st_writer fv_st_writer;

FV_API fv_st_writer *fv_st_writer_new(void);
FV_API void fv_st_writer_free(fv_st_writer *w);
/* Data is copied at add time.  Names must be unique. */
FV_API fv_status fv_st_writer_add(fv_st_writer *w, const char *name, fv_dtype dtype, int ndim,
                                  const int64_t *shape, const void *data);
/* A tensor as F32 (converted from fv_real). */
FV_API fv_status fv_st_writer_add_tensor(fv_st_writer *w, const char *name, const fv_tensor *t);
FV_API fv_status fv_st_writer_meta(fv_st_writer *w, const char *key, const char *value);
/* Write atomically (see above).  Tensors are stored sorted by name. */
FV_API fv_status fv_st_writer_save(fv_st_writer *w, const char *path);
/* The bytes fv_st_writer_save() would write, in a malloc'd buffer. */
FV_API fv_status fv_st_writer_to_memory(fv_st_writer *w, void **buf, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_SAFETENSORS_H */
