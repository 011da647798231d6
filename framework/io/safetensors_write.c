/*
** safetensors_write.c: building a safetensors file and saving it
** atomically.
**
** The writer keeps copies of everything added, so callers may free or
** change their buffers at once.  fv_st_writer_save() lays the file out as
** the format recommends (tensors sorted by name, `__metadata__` first, the
** header padded with spaces so that the data starts 8-byte aligned) and
** replaces PATH only once the new file is complete and on disk:
** write PATH.tmp.XXXXXX, fsync, rename, fsync the directory.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/safetensors.h"
#include "base/base_internal.h"
#include "io/json.h"

/* Tensor data is stored as the caller gives it, and safetensors is
** little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors writer assumes a little-endian host"
#endif

typedef struct st_item {
	char *name;
	fv_dtype dtype;
	int ndim;
	int64_t shape[FV_ST_MAX_DIMS];
	void *data;
	size_t nbytes;
} st_item;

typedef struct st_meta {
	char *key;
	char *value;
} st_meta;

struct fv_st_writer {
	st_item *items;
	size_t count, cap;
	st_meta *meta;
	size_t meta_count, meta_cap;
};

fv_st_writer *fv_st_writer_new(void)
{
	fv_st_writer *w = fv__calloc(1, sizeof *w);
	if (w == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory creating a safetensors writer");
	return w;
}

void fv_st_writer_free(fv_st_writer *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->count; i++) {
		free(w->items[i].name);
		free(w->items[i].data);
	}
	for (size_t i = 0; i < w->meta_count; i++) {
		free(w->meta[i].key);
		free(w->meta[i].value);
	}
	free(w->items);
	free(w->meta);
	free(w);
}

/* Grow `*array` of `size`-byte elements to hold one more than `count`. */
static bool reserve(void **array, size_t *cap, size_t count, size_t size)
{
	if (count < *cap)
		return true;
	size_t n = *cap ? *cap * 2 : 16;
	void *grown = n <= SIZE_MAX / size ? fv__realloc(*array, n * size) : NULL;
	if (grown == NULL)
		return false;
	*array = grown;
	*cap = n;
	return true;
}

/* Strings go into the JSON header, which readers (ours included) require
** to be valid UTF-8. */
static fv_status check_text(const char *what, const char *s)
{
	if (s == NULL)
		return fv_error(FV_ERR_ARG, "safetensors writer: %s is NULL", what);
	if (!fv__json_utf8(s))
		return fv_error(FV_ERR_ARG, "safetensors writer: %s '%s' is not valid UTF-8", what, s);
	return FV_OK;
}

fv_status fv_st_writer_add(fv_st_writer *w, const char *name, fv_dtype dtype, int ndim,
                           const int64_t *shape, const void *data)
{
	if (w == NULL)
		return fv_error(FV_ERR_ARG, "fv_st_writer_add: writer is NULL");
	fv_status s = check_text("tensor name", name);
	if (s != FV_OK)
		return s;
	if (strcmp(name, "__metadata__") == 0)
		return fv_error(FV_ERR_ARG, "safetensors writer: '__metadata__' is reserved, not a tensor name");
	for (size_t i = 0; i < w->count; i++)
		if (strcmp(w->items[i].name, name) == 0)
			return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s' was already added", name);
	if (fv_dtype_size(dtype) == 0)
		return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s': unknown dtype %d", name,
		                (int)dtype);
	if (ndim < 0 || ndim > FV_ST_MAX_DIMS || (ndim > 0 && shape == NULL))
		return fv_error(FV_ERR_ARG,
		                "safetensors writer: tensor '%s': %d dims (expected 0 to %d with a shape)",
		                name, ndim, FV_ST_MAX_DIMS);
	size_t nbytes = fv_dtype_size(dtype);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s': negative size %lld",
			                name, (long long)shape[i]);
		if (shape[i] != 0 && nbytes > SIZE_MAX / (uint64_t)shape[i])
			return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s' is too large", name);
		nbytes *= (size_t)shape[i];
	}
	if (data == NULL && nbytes > 0)
		return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s': data is NULL", name);

	st_item item = {.dtype = dtype, .ndim = ndim, .nbytes = nbytes};
	for (int i = 0; i < ndim; i++)
		item.shape[i] = shape[i];
	item.name = fv__strdup(name);
	item.data = fv__malloc(nbytes ? nbytes : 1);
	if (item.name == NULL || item.data == NULL ||
	    !reserve((void **)&w->items, &w->cap, w->count, sizeof *w->items)) {
		free(item.name);
		free(item.data);
		return fv_error(FV_ERR_NOMEM, "safetensors writer: out of memory adding tensor '%s'", name);
	}
	if (nbytes > 0)
		memcpy(item.data, data, nbytes);
	w->items[w->count++] = item;
	return FV_OK;
}

fv_status fv_st_writer_add_tensor(fv_st_writer *w, const char *name, const fv_tensor *t)
{
	if (t == NULL)
		return fv_error(FV_ERR_ARG, "safetensors writer: tensor '%s' is NULL", name ? name : "?");
	float *f32 = fv__malloc(t->numel > 0 ? (size_t)t->numel * sizeof *f32 : 1);
	if (f32 == NULL)
		return fv_error(FV_ERR_NOMEM, "safetensors writer: out of memory converting '%s'",
		                name ? name : "?");
	for (int64_t i = 0; i < t->numel; i++)
		f32[i] = (float)t->data[i];
	fv_status s = fv_st_writer_add(w, name, FV_DTYPE_F32, t->ndim, t->shape, f32);
	free(f32);
	return s;
}

fv_status fv_st_writer_meta(fv_st_writer *w, const char *key, const char *value)
{
	if (w == NULL)
		return fv_error(FV_ERR_ARG, "fv_st_writer_meta: writer is NULL");
	fv_status s = check_text("metadata key", key);
	if (s == FV_OK)
		s = check_text("metadata value", value);
	if (s != FV_OK)
		return s;
	char *copy = fv__strdup(value);
	if (copy == NULL)
		return fv_error(FV_ERR_NOMEM, "safetensors writer: out of memory");
	for (size_t i = 0; i < w->meta_count; i++)
		if (strcmp(w->meta[i].key, key) == 0) { /* a later value replaces an earlier one */
			free(w->meta[i].value);
			w->meta[i].value = copy;
			return FV_OK;
		}
	char *key_copy = fv__strdup(key);
	if (key_copy == NULL ||
	    !reserve((void **)&w->meta, &w->meta_cap, w->meta_count, sizeof *w->meta)) {
		free(key_copy);
		free(copy);
		return fv_error(FV_ERR_NOMEM, "safetensors writer: out of memory");
	}
	w->meta[w->meta_count++] = (st_meta){key_copy, copy};
	return FV_OK;
}

/* ---- the header ---------------------------------------------------------------- */

static int compare_items(const void *a, const void *b)
{
	return strcmp(((const st_item *)a)->name, ((const st_item *)b)->name);
}

/* The header as a JSON object: `__metadata__` first, then the tensors by
** name, each tensor's bytes following the previous one's.  NULL when out
** of memory. */
static json_t *header_json(fv_st_writer *w)
{
	if (w->count > 1)
		qsort(w->items, w->count, sizeof *w->items, compare_items);
	json_t *root = json_object();
	/* every call below takes its value even when it fails, so a failure
	** only needs noting */
	bool ok = true;
	if (w->meta_count > 0) {
		json_t *meta = json_object();
		for (size_t i = 0; i < w->meta_count; i++)
			ok &= json_object_set_new(meta, w->meta[i].key, json_string(w->meta[i].value)) == 0;
		ok &= json_object_set_new(root, "__metadata__", meta) == 0;
	}
	size_t offset = 0;
	for (size_t i = 0; i < w->count; i++) {
		const st_item *it = &w->items[i];
		json_t *shape = json_array();
		for (int d = 0; d < it->ndim; d++)
			ok &= json_array_append_new(shape, json_integer(it->shape[d])) == 0;
		json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", fv_dtype_name(it->dtype),
		                          "shape", shape, "data_offsets", (json_int_t)offset,
		                          (json_int_t)(offset + it->nbytes));
		ok &= json_object_set_new(root, it->name, entry) == 0;
		offset += it->nbytes;
	}
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}

/* The file is the 8-byte header length, the header padded with spaces to
** a multiple of 8 bytes (so that the data starts aligned), then every
** tensor's bytes, written atomically (base/atomic_file.c). */
static fv_status write_file(const fv_st_writer *w, const char *header, size_t len,
                            const char *path)
{
	size_t n = 3 + w->count;
	const void **parts = fv__malloc(n * sizeof *parts);
	size_t *sizes = fv__malloc(n * sizeof *sizes);
	if (parts == NULL || sizes == NULL) {
		free(parts);
		free(sizes);
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	}
	size_t pad = (8 - len % 8) % 8;
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)(len + pad) >> (8 * i));
	parts[0] = len8;
	sizes[0] = 8;
	parts[1] = header;
	sizes[1] = len;
	parts[2] = "       ";
	sizes[2] = pad;
	for (size_t i = 0; i < w->count; i++) {
		parts[3 + i] = w->items[i].data;
		sizes[3 + i] = w->items[i].nbytes;
	}
	fv_status s = fv__atomic_write(path, n, parts, sizes);
	free(parts);
	free(sizes);
	return s;
}

fv_status fv_st_writer_save(fv_st_writer *w, const char *path)
{
	if (w == NULL || path == NULL)
		return fv_error(FV_ERR_ARG, "fv_st_writer_save: %s is NULL", w == NULL ? "writer" : "path");
	json_t *header = header_json(w);
	size_t len = 0;
	char *text = fv__json_dump(header, JSON_COMPACT, "the safetensors header", &len);
	json_decref(header);
	if (text == NULL) {
		fv_error_prefix("%s: ", path);
		return FV_ERR_NOMEM;
	}
	fv_status s = write_file(w, text, len, path);
	free(text);
	return s;
}

fv_status fv_st_writer_to_memory(fv_st_writer *w, void **buf, size_t *len)
{
	if (w == NULL || buf == NULL || len == NULL)
		return fv_error(FV_ERR_ARG, "fv_st_writer_to_memory: an argument is NULL");
	*buf = NULL;
	*len = 0;
	json_t *header = header_json(w);
	size_t hlen = 0;
	char *text = fv__json_dump(header, JSON_COMPACT, "the safetensors header", &hlen);
	json_decref(header);
	if (text == NULL)
		return FV_ERR_NOMEM;
	/* the same bytes write_file() writes */
	size_t pad = (8 - hlen % 8) % 8, total = 8 + hlen + pad;
	for (size_t i = 0; i < w->count; i++)
		total += w->items[i].nbytes;
	unsigned char *out = fv__malloc(total);
	if (out == NULL) {
		free(text);
		return fv_error(FV_ERR_NOMEM, "out of memory building a safetensors buffer");
	}
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)((uint64_t)(hlen + pad) >> (8 * i));
	memcpy(out + 8, text, hlen);
	memset(out + 8 + hlen, ' ', pad);
	size_t at = 8 + hlen + pad;
	for (size_t i = 0; i < w->count; i++) {
		if (w->items[i].nbytes > 0)
			memcpy(out + at, w->items[i].data, w->items[i].nbytes);
		at += w->items[i].nbytes;
	}
	free(text);
	*buf = out;
	*len = total;
	return FV_OK;
}
