/*
** npy.c: reading and writing NumPy .npy files.
**
** The header is a Python dict literal, e.g.
**   {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, 4), }
** Only the three keys NumPy writes are understood; anything else in the
** header is an error, as is data shorter or longer than the shape says.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/npy.h"
#include "io/npy_internal.h"
#include "tensor/tensor_internal.h"
#include "base/base_internal.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1 << 20)

typedef struct npy_header {
	char kind;      /* 'f', 'i', 'u', 'b' */
	int itemsize;
	bool fortran;
	int ndim;
	int64_t shape[FV_MAX_DIMS];
} npy_header;

typedef struct cursor {
	const char *p, *end;
	const char *path;
} cursor;

static void skip_space(cursor *c)
{
	while (c->p < c->end && (isspace((unsigned char)*c->p) || *c->p == ','))
		c->p++;
}

static bool eat(cursor *c, char ch)
{
	skip_space(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A quoted Python string (no escapes needed for NumPy's keys/descrs). */
static bool read_quoted(cursor *c, char *out, size_t size)
{
	skip_space(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return false;
	char q = *c->p++;
	size_t n = 0;
	while (c->p < c->end && *c->p != q) {
		if (n + 1 >= size)
			return false;
		out[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	out[n] = '\0';
	return true;
}

static fv_status parse_descr(cursor *c, npy_header *h)
{
	char d[16];
	if (!read_quoted(c, d, sizeof d))
		return fv_error(FV_ERR_FORMAT, "%s: 'descr' is not a string", c->path);
	size_t n = strlen(d);
	const char *type = d;
	if (n >= 1 && (d[0] == '<' || d[0] == '|' || d[0] == '=')) {
		type = d + 1;
	} else if (n >= 1 && d[0] == '>') {
		return fv_error(FV_ERR_FORMAT, "%s: big-endian data ('%s') is not supported", c->path, d);
	}
	h->kind = type[0];
	h->itemsize = atoi(type + 1);
	bool known = (h->kind == 'f' && (h->itemsize == 4 || h->itemsize == 8)) ||
	             ((h->kind == 'i' || h->kind == 'u') &&
	              (h->itemsize == 1 || h->itemsize == 2 || h->itemsize == 4 || h->itemsize == 8)) ||
	             (h->kind == 'b' && h->itemsize == 1);
	if (!known)
		return fv_error(FV_ERR_FORMAT, "%s: unsupported dtype '%s' (expected float32/64, "
		                               "integers or bool)",
		                c->path, d);
	return FV_OK;
}

static fv_status parse_shape(cursor *c, npy_header *h)
{
	if (!eat(c, '('))
		return fv_error(FV_ERR_FORMAT, "%s: 'shape' is not a tuple", c->path);
	h->ndim = 0;
	while (!eat(c, ')')) {
		skip_space(c);
		char *end;
		errno = 0;
		long long v = strtoll(c->p, &end, 10);
		if (end == c->p || end > c->end || v < 0 || errno != 0)
			return fv_error(FV_ERR_FORMAT, "%s: bad dimension in 'shape'", c->path);
		if (h->ndim == FV_MAX_DIMS)
			return fv_error(FV_ERR_FORMAT, "%s: more than %d dimensions", c->path,
			                FV_MAX_DIMS);
		h->shape[h->ndim++] = v;
		c->p = end;
	}
	return FV_OK;
}

static fv_status parse_dict(cursor *c, npy_header *h)
{
	bool seen_descr = false, seen_shape = false;
	if (!eat(c, '{'))
		return fv_error(FV_ERR_FORMAT, "%s: header is not a dict", c->path);
	while (!eat(c, '}')) {
		char key[32];
		fv_status rc = FV_OK;
		if (!read_quoted(c, key, sizeof key) || !eat(c, ':'))
			return fv_error(FV_ERR_FORMAT, "%s: malformed header dict", c->path);
		skip_space(c);
		if (strcmp(key, "descr") == 0) {
			rc = parse_descr(c, h);
			seen_descr = true;
		} else if (strcmp(key, "fortran_order") == 0) {
			h->fortran = c->end - c->p >= 4 && strncmp(c->p, "True", 4) == 0;
			if (!h->fortran && !(c->end - c->p >= 5 && strncmp(c->p, "False", 5) == 0))
				return fv_error(FV_ERR_FORMAT, "%s: 'fortran_order' is not True/False",
				                c->path);
			c->p += h->fortran ? 4 : 5;
		} else if (strcmp(key, "shape") == 0) {
			rc = parse_shape(c, h);
			seen_shape = true;
		} else {
			return fv_error(FV_ERR_FORMAT, "%s: unknown header key '%s'", c->path, key);
		}
		if (rc != FV_OK)
			return rc;
	}
	if (!seen_descr || !seen_shape)
		return fv_error(FV_ERR_FORMAT, "%s: header lacks '%s'", c->path,
		                seen_descr ? "shape" : "descr");
	if (h->fortran)
		return fv_error(FV_ERR_FORMAT, "%s: Fortran-ordered arrays are not supported; "
		                               "save with np.ascontiguousarray",
		                c->path);
	return FV_OK;
}

static double element(const unsigned char *p, const npy_header *h)
{
	switch (h->kind) {
	case 'f':
		if (h->itemsize == 4) {
			float f;
			memcpy(&f, p, 4);
			return f;
		} else {
			double d;
			memcpy(&d, p, 8);
			return d;
		}
	case 'i': {
		int64_t v = 0;
		memcpy(&v, p, (size_t)h->itemsize);
		int shift = 64 - 8 * h->itemsize; /* sign-extend */
		return (double)(shift ? (int64_t)((uint64_t)v << shift) >> shift : v);
	}
	default: { /* 'u', 'b' */
		uint64_t v = 0;
		memcpy(&v, p, (size_t)h->itemsize);
		return (double)v;
	}
	}
}

static fv_status read_header(FILE *f, const char *path, npy_header *h, long *data_start)
{
	unsigned char pre[12];
	if (fread(pre, 1, 10, f) != 10 || memcmp(pre, NPY_MAGIC, 6) != 0)
		return fv_error(FV_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
	uint32_t hlen;
	int major = pre[6];
	if (major == 1) {
		hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
		*data_start = 10;
	} else if (major == 2 || major == 3) {
		if (fread(pre + 10, 1, 2, f) != 2)
			return fv_error(FV_ERR_FORMAT, "%s: truncated header", path);
		hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 |
		       (uint32_t)pre[11] << 24;
		*data_start = 12;
	} else {
		return fv_error(FV_ERR_FORMAT, "%s: unsupported .npy version %d", path, major);
	}
	if (hlen > NPY_MAX_HEADER)
		return fv_error(FV_ERR_FORMAT, "%s: header of %u bytes is too large", path, hlen);
	char *text = fv__malloc(hlen + 1);
	if (text == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	fv_status rc = FV_OK;
	if (fread(text, 1, hlen, f) != hlen)
		rc = fv_error(FV_ERR_FORMAT, "%s: truncated header", path);
	if (rc == FV_OK) {
		memset(h, 0, sizeof *h);
		cursor c = {text, text + hlen, path};
		rc = parse_dict(&c, h);
	}
	free(text);
	*data_start += hlen;
	return rc;
}

/* The data must be exactly what the shape says: the element count and byte
** count are checked for overflow (a crafted shape such as (55,
** 1111111111111111111) would otherwise wrap) and against the bytes actually
** left in the file before anything is allocated, so a lying header costs
** nothing. */
static fv_status check_size(FILE *f, const char *path, const npy_header *h)
{
	int64_t n = 1, bytes;
	bool overflow = false;
	for (int i = 0; i < h->ndim; i++)
		overflow |= __builtin_mul_overflow(n, h->shape[i], &n);
	overflow |= __builtin_mul_overflow(n, (int64_t)h->itemsize, &bytes);
	if (overflow)
		return fv_error(FV_ERR_FORMAT, "%s: shape %s has too many elements", path,
		                fv_shape_str(h->ndim, h->shape));
	long here = ftell(f);
	if (here < 0 || fseek(f, 0, SEEK_END) != 0)
		return fv_error(FV_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
	long end = ftell(f);
	if (end < 0 || fseek(f, here, SEEK_SET) != 0)
		return fv_error(FV_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
	int64_t have = (int64_t)end - (int64_t)here;
	if (bytes > have)
		return fv_error(FV_ERR_FORMAT, "%s: data truncated: shape %s needs %lld bytes, "
		                               "the file has %lld after the header",
		                path, fv_shape_str(h->ndim, h->shape), (long long)bytes, (long long)have);
	if (bytes < have)
		return fv_error(FV_ERR_FORMAT, "%s: unexpected data after the array of shape %s "
		                               "(%lld bytes more than its %lld)",
		                path, fv_shape_str(h->ndim, h->shape), (long long)(have - bytes),
		                (long long)bytes);
	return FV_OK;
}

static fv_status read_data(FILE *f, const char *path, const npy_header *h, fv_tensor *t)
{
	enum { CHUNK = 1 << 16 };
	unsigned char *buf = fv__malloc((size_t)CHUNK * (size_t)h->itemsize);
	if (buf == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	int64_t done = 0;
	while (done < t->numel) {
		size_t want = (size_t)(t->numel - done < CHUNK ? t->numel - done : CHUNK);
		if (fread(buf, (size_t)h->itemsize, want, f) != want) {
			free(buf);
			return fv_error(FV_ERR_FORMAT, "%s: data truncated: %lld of %lld elements present",
			                path, (long long)done, (long long)t->numel);
		}
		for (size_t i = 0; i < want; i++)
			t->data[done + (int64_t)i] = (fv_real)element(buf + i * (size_t)h->itemsize, h);
		done += (int64_t)want;
	}
	free(buf);
	if (fgetc(f) != EOF)
		return fv_error(FV_ERR_FORMAT, "%s: unexpected data after the array of %lld elements",
		                path, (long long)t->numel);
	return FV_OK;
}

fv_tensor *fv__npy_read(FILE *f, const char *path)
{
	npy_header h;
	long data_start;
	fv_tensor *t = NULL;
	if (read_header(f, path, &h, &data_start) == FV_OK && check_size(f, path, &h) == FV_OK) {
		t = fv_tensor_new(h.ndim, h.shape);
		if (t != NULL && read_data(f, path, &h, t) != FV_OK) {
			fv_tensor_free(t);
			t = NULL;
		}
	}
	return t;
}

fv_tensor *fv_npy_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fv_error(FV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	fv_tensor *t = fv__npy_read(f, path);
	fclose(f);
	return t;
}

/* The header numpy's np.save writes (numpy >= 1.24, byte for byte): the
** dict with the shape as Python's repr of a tuple ("(3,)", "(2, 4)"), the
** spare spaces numpy leaves so that the first axis can grow in place (21
** digits' worth), then spaces up to a multiple of 64 bytes (a whole 64 more
** when already aligned, as numpy's formula gives) and a newline.  Returns
** its length. */
static size_t write_header(unsigned char *head, const char *descr, int ndim, const int64_t *shape)
{
	char dict[640];
	int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int i = 0; i < ndim; i++)
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
	n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
	if (ndim > 0) {
		int digits = snprintf(NULL, 0, "%lld", (long long)shape[0]);
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%*s", 21 - digits, "");
	}
	size_t hlen = (size_t)n + 1, pad = 64 - (10 + hlen) % 64;
	memcpy(head, NPY_MAGIC, 6);
	head[6] = 1;
	head[7] = 0;
	head[8] = (unsigned char)((hlen + pad) & 0xff);
	head[9] = (unsigned char)((hlen + pad) >> 8);
	memcpy(head + 10, dict, (size_t)n);
	memset(head + 10 + n, ' ', pad);
	head[10 + hlen + pad - 1] = '\n';
	return 10 + hlen + pad;
}

static fv_status save_raw(const char *path, const char *descr, int ndim, const int64_t *shape,
                          const void *data, size_t size)
{
	unsigned char head[768];
	size_t len = write_header(head, descr, ndim, shape);
	const void *parts[2] = {head, data};
	size_t sizes[2] = {len, size};
	return fv__atomic_write(path, 2, parts, sizes);
}

fv_status fv_npy_save_data(const char *path, int ndim, const int64_t *shape, const fv_real *data)
{
	int64_t numel = fv__numel(ndim, shape);
	float *f32 = fv__malloc((size_t)(numel ? numel : 1) * sizeof *f32);
	if (f32 == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	for (int64_t i = 0; i < numel; i++)
		f32[i] = (float)data[i];
	fv_status rc = save_raw(path, "<f4", ndim, shape, f32, (size_t)numel * sizeof(float));
	free(f32);
	return rc;
}

fv_status fv_npy_save_f64(const char *path, int ndim, const int64_t *shape, const double *data)
{
	return save_raw(path, "<f8", ndim, shape, data, (size_t)fv__numel(ndim, shape) * sizeof(double));
}

fv_status fv_npy_save(const char *path, const fv_tensor *t)
{
	return fv_npy_save_data(path, t->ndim, t->shape, t->data);
}
