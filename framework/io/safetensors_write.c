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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/safetensors.h"
#include "base/base_internal.h"
#include "io/json_scan.h"

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
	if (!fv__utf8_valid(s, strlen(s)))
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

typedef struct text {
	char *s;
	size_t len, cap;
	bool failed; /* out of memory: later appends do nothing */
} text;

static void append(text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->cap - t->len < n + 1) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap - t->len < n + 1 && cap < SIZE_MAX / 2)
			cap *= 2;
		char *grown = cap - t->len >= n + 1 ? fv__realloc(t->s, cap) : NULL;
		if (grown == NULL) {
			t->failed = true;
			return;
		}
		t->s = grown;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void append_str(text *t, const char *s)
{
	append(t, s, strlen(s));
}

FV_PRINTF(2, 3)
static void appendf(text *t, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	append(t, buf, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters
** escaped, everything else (valid UTF-8) verbatim. */
static void append_json_string(text *t, const char *s)
{
	append(t, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
			continue;
		append(t, run, (size_t)(s - run));
		if (c == '\0')
			break;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			append(t, esc, 2);
		} else if (c == '\n') {
			append(t, "\\n", 2);
		} else if (c == '\t') {
			append(t, "\\t", 2);
		} else if (c == '\r') {
			append(t, "\\r", 2);
		} else {
			appendf(t, "\\u%04x", c);
		}
		run = s + 1;
	}
	append(t, "\"", 1);
}

static int compare_items(const void *a, const void *b)
{
	return strcmp(((const st_item *)a)->name, ((const st_item *)b)->name);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static fv_status build_header(fv_st_writer *w, text *h)
{
	if (w->count > 1)
		qsort(w->items, w->count, sizeof *w->items, compare_items);
	append(h, "{", 1);
	if (w->meta_count > 0) {
		append_str(h, "\"__metadata__\":{");
		for (size_t i = 0; i < w->meta_count; i++) {
			if (i > 0)
				append(h, ",", 1);
			append_json_string(h, w->meta[i].key);
			append(h, ":", 1);
			append_json_string(h, w->meta[i].value);
		}
		append(h, "}", 1);
	}
	size_t offset = 0;
	for (size_t i = 0; i < w->count; i++) {
		const st_item *it = &w->items[i];
		if (i > 0 || w->meta_count > 0)
			append(h, ",", 1);
		append_json_string(h, it->name);
		appendf(h, ":{\"dtype\":\"%s\",\"shape\":[", fv_dtype_name(it->dtype));
		for (int d = 0; d < it->ndim; d++)
			appendf(h, d ? ",%lld" : "%lld", (long long)it->shape[d]);
		appendf(h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + it->nbytes);
		offset += it->nbytes;
	}
	append(h, "}", 1);
	while (!h->failed && h->len % 8 != 0)
		append(h, " ", 1);
	if (h->failed)
		return fv_error(FV_ERR_NOMEM, "safetensors writer: out of memory building the header");
	return FV_OK;
}

/* The file is the 8-byte header length, the header, then every tensor's
** bytes, written atomically (framework/atomic_file.c). */
static fv_status write_file(const fv_st_writer *w, const text *h, const char *path)
{
	size_t n = 2 + w->count;
	const void **parts = fv__malloc(n * sizeof *parts);
	size_t *sizes = fv__malloc(n * sizeof *sizes);
	if (parts == NULL || sizes == NULL) {
		free(parts);
		free(sizes);
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	}
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
	parts[0] = len8;
	sizes[0] = 8;
	parts[1] = h->s;
	sizes[1] = h->len;
	for (size_t i = 0; i < w->count; i++) {
		parts[2 + i] = w->items[i].data;
		sizes[2 + i] = w->items[i].nbytes;
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
	text h = {0};
	fv_status s = build_header(w, &h);
	if (s == FV_OK)
		s = write_file(w, &h, path);
	free(h.s);
	return s;
}
