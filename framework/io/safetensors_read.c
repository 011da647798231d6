/*
** safetensors_read.c: loading and validating a safetensors file, and
** converting its tensors to fv_real.
**
** The whole file is read into memory (not mapped: a mapped file truncated
** by another process would turn a read into SIGBUS).  Everything in the
** header is checked before an entry is handed out, so the accessors below
** can trust an entry's dtype, shape and byte range.
*/
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/safetensors.h"
#include "fovea/fovea.h"
#include "io/json.h"
#include "base/base_internal.h"

/* The reference implementation's limit; real headers are far smaller. */
#define ST_MAX_HEADER ((uint64_t)100000000)

struct fv_safetensors {
	char *name;            /* the path or buffer name, for messages */
	unsigned char *bytes;  /* the whole file */
	size_t size;
	json_t *header;        /* owns every name and metadata string */
	fv_st_entry *entries;  /* sorted by name */
	size_t count;
	json_t *meta;          /* the __metadata__ object, or NULL */
	const char **meta_kv;  /* its keys and values in text order, key i at 2i */
	size_t meta_count;
};

/* ---- dtypes ------------------------------------------------------------------ */

static const struct {
	const char *name;
	size_t size;
} dtype_info[] = {
	[FV_DTYPE_F64] = {"F64", 8},  [FV_DTYPE_F32] = {"F32", 4}, [FV_DTYPE_F16] = {"F16", 2},
	[FV_DTYPE_BF16] = {"BF16", 2}, [FV_DTYPE_I64] = {"I64", 8}, [FV_DTYPE_I32] = {"I32", 4},
	[FV_DTYPE_I16] = {"I16", 2},  [FV_DTYPE_I8] = {"I8", 1},   [FV_DTYPE_U8] = {"U8", 1},
	[FV_DTYPE_BOOL] = {"BOOL", 1},
};

#define N_DTYPES (sizeof dtype_info / sizeof dtype_info[0])

const char *fv_dtype_name(fv_dtype dt)
{
	return (unsigned)dt < N_DTYPES ? dtype_info[dt].name : "?";
}

size_t fv_dtype_size(fv_dtype dt)
{
	return (unsigned)dt < N_DTYPES ? dtype_info[dt].size : 0;
}

static bool dtype_from_name(const char *name, fv_dtype *dt)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (strcmp(name, dtype_info[i].name) == 0) {
			*dt = (fv_dtype)i;
			return true;
		}
	return false;
}

/* ---- messages ---------------------------------------------------------------- */

/* "(2, 3)", "()" for scalars; fits any FV_ST_MAX_DIMS shape. */
typedef struct shape_text {
	char s[FV_ST_MAX_DIMS * 22 + 4];
} shape_text;

static shape_text shape_str(int ndim, const int64_t *shape)
{
	shape_text t;
	size_t len = 0;
	t.s[len++] = '(';
	for (int i = 0; i < ndim; i++)
		len += (size_t)snprintf(t.s + len, sizeof t.s - len, i ? ", %lld" : "%lld",
		                        (long long)shape[i]);
	snprintf(t.s + len, sizeof t.s - len, ")");
	return t;
}

/* A JSON value as a message shows it: numbers as JSON writes them (so a
** real reads as one: 4.0, 1e30), others by type. */
typedef struct value_text {
	char s[48];
} value_text;

static value_text value_str(const json_t *v)
{
	value_text t;
	size_t n = json_is_number(v) ? json_dumpb(v, t.s, sizeof t.s - 1,
	                                          JSON_ENCODE_ANY | FV_JSON_PRECISION) : 0;
	if (n > 0 && n < sizeof t.s)
		t.s[n] = '\0';
	else
		snprintf(t.s, sizeof t.s, "%s", fv__json_kind(v));
	return t;
}

/* A non-negative JSON integer (sizes and offsets). */
static bool is_size(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* ---- one header entry --------------------------------------------------------- */

static fv_status parse_dtype(const char *file, const char *tensor, const json_t *v, fv_dtype *dt)
{
	if (!json_is_string(v))
		return fv_error(FV_ERR_FORMAT, "%s: tensor '%s': dtype is %s; expected a string such as \"F32\"",
		                file, tensor, value_str(v).s);
	if (!dtype_from_name(json_string_value(v), dt))
		return fv_error(FV_ERR_FORMAT,
		                "%s: tensor '%s': unknown dtype '%s' (expected F64, F32, F16, BF16, I64, "
		                "I32, I16, I8, U8 or BOOL)",
		                file, tensor, json_string_value(v));
	return FV_OK;
}

static fv_status parse_shape(const char *file, const char *tensor, const json_t *v,
                             fv_st_entry *e)
{
	if (!json_is_array(v))
		return fv_error(FV_ERR_FORMAT, "%s: tensor '%s': shape is %s; expected an array of sizes",
		                file, tensor, value_str(v).s);
	if (json_array_size(v) > FV_ST_MAX_DIMS)
		return fv_error(FV_ERR_FORMAT, "%s: tensor '%s': shape has %zu dims; at most %d are supported",
		                file, tensor, json_array_size(v), FV_ST_MAX_DIMS);
	e->ndim = (int)json_array_size(v);
	e->numel = 1;
	for (int i = 0; i < e->ndim; i++) {
		const json_t *d = json_array_get(v, (size_t)i);
		if (!is_size(d))
			return fv_error(FV_ERR_FORMAT,
			                "%s: tensor '%s': shape entry %d is %s; expected a non-negative integer",
			                file, tensor, i, value_str(d).s);
		e->shape[i] = json_integer_value(d);
	}
	for (int i = 0; i < e->ndim; i++) {
		if (e->shape[i] != 0 && e->numel > INT64_MAX / e->shape[i])
			goto too_big;
		e->numel *= e->shape[i];
	}
	if ((uint64_t)e->numel > SIZE_MAX / fv_dtype_size(e->dtype))
		goto too_big;
	e->nbytes = (size_t)e->numel * fv_dtype_size(e->dtype);
	return FV_OK;
too_big:
	return fv_error(FV_ERR_FORMAT, "%s: tensor '%s': shape %s has too many elements", file, tensor,
	                shape_str(e->ndim, e->shape).s);
}

static fv_status parse_offsets(const char *file, const char *tensor, const json_t *v,
                               const unsigned char *data, size_t data_len, fv_st_entry *e)
{
	if (!json_is_array(v) || json_array_size(v) != 2)
		return fv_error(FV_ERR_FORMAT,
		                "%s: tensor '%s': data_offsets must be an array [begin, end] of two integers",
		                file, tensor);
	for (size_t i = 0; i < 2; i++)
		if (!is_size(json_array_get(v, i)))
			return fv_error(FV_ERR_FORMAT,
			                "%s: tensor '%s': data_offsets entry %zu is %s; expected a non-negative "
			                "integer",
			                file, tensor, i, value_str(json_array_get(v, i)).s);
	long long begin = json_integer_value(json_array_get(v, 0));
	long long end = json_integer_value(json_array_get(v, 1));
	if (begin > end || (uint64_t)end > data_len)
		return fv_error(FV_ERR_FORMAT,
		                "%s: tensor '%s': data_offsets [%lld, %lld] are out of range: the data "
		                "section has %zu bytes",
		                file, tensor, begin, end, data_len);
	if ((uint64_t)(end - begin) != e->nbytes)
		return fv_error(FV_ERR_FORMAT,
		                "%s: tensor '%s': data_offsets [%lld, %lld] do not match shape %s of %s "
		                "(%zu bytes)",
		                file, tensor, begin, end, shape_str(e->ndim, e->shape).s,
		                fv_dtype_name(e->dtype), e->nbytes);
	e->data = data + begin;
	return FV_OK;
}

static fv_status parse_entry(const char *file, const char *tensor, json_t *v,
                             const unsigned char *data, size_t data_len, fv_st_entry *e)
{
	if (!json_is_object(v))
		return fv_error(FV_ERR_FORMAT,
		                "%s: tensor '%s': entry is %s; expected an object with dtype, shape and "
		                "data_offsets",
		                file, tensor, value_str(v).s);
	for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
		const char *field = json_object_iter_key(it);
		if (strcmp(field, "dtype") != 0 && strcmp(field, "shape") != 0 &&
		    strcmp(field, "data_offsets") != 0)
			return fv_error(FV_ERR_FORMAT,
			                "%s: tensor '%s': unknown field '%s' (expected dtype, shape, "
			                "data_offsets)",
			                file, tensor, field);
	}
	static const char *const required[] = {"dtype", "shape", "data_offsets"};
	for (int i = 0; i < 3; i++)
		if (json_object_get(v, required[i]) == NULL)
			return fv_error(FV_ERR_FORMAT, "%s: tensor '%s': missing field '%s'", file, tensor,
			                required[i]);
	e->name = tensor;
	fv_status s = parse_dtype(file, tensor, json_object_get(v, "dtype"), &e->dtype);
	if (s == FV_OK)
		s = parse_shape(file, tensor, json_object_get(v, "shape"), e);
	if (s == FV_OK)
		s = parse_offsets(file, tensor, json_object_get(v, "data_offsets"), data, data_len, e);
	return s;
}

/* Check __metadata__ and list its entries, which the API hands out by index. */
static fv_status parse_metadata(fv_safetensors *st, json_t *meta)
{
	if (!json_is_object(meta))
		return fv_error(FV_ERR_FORMAT, "%s: __metadata__ is %s; expected an object of strings",
		                st->name, value_str(meta).s);
	st->meta = meta;
	st->meta_kv = fv__calloc(2 * json_object_size(meta) + 1, sizeof *st->meta_kv);
	if (st->meta_kv == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory reading the header", st->name);
	const char *key;
	json_t *value;
	json_object_foreach(meta, key, value) {
		if (!json_is_string(value))
			return fv_error(FV_ERR_FORMAT,
			                "%s: __metadata__ key '%s' is %s; expected a string value", st->name,
			                key, value_str(value).s);
		st->meta_kv[2 * st->meta_count] = key;
		st->meta_kv[2 * st->meta_count + 1] = json_string_value(value);
		st->meta_count++;
	}
	return FV_OK;
}

/* ---- the whole header ----------------------------------------------------------- */

static int compare_by_name(const void *a, const void *b)
{
	return strcmp(((const fv_st_entry *)a)->name, ((const fv_st_entry *)b)->name);
}

static int compare_by_offset(const void *a, const void *b)
{
	const fv_st_entry *x = *(const fv_st_entry *const *)a;
	const fv_st_entry *y = *(const fv_st_entry *const *)b;
	const unsigned char *px = x->data, *py = y->data;
	if (px != py)
		return px < py ? -1 : 1;
	return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Where an entry's bytes begin within the data section. */
static size_t begin_of(const fv_st_entry *e, const unsigned char *data)
{
	return (size_t)((const unsigned char *)e->data - data);
}

/* Two tensors sharing bytes would alias each other's data. */
static fv_status check_overlaps(const fv_safetensors *st, const unsigned char *data)
{
	if (st->count < 2)
		return FV_OK;
	const fv_st_entry **order = fv__malloc(st->count * sizeof *order);
	if (order == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory checking the header", st->name);
	size_t n = 0;
	for (size_t i = 0; i < st->count; i++)
		if (st->entries[i].nbytes > 0) /* empty tensors occupy nothing */
			order[n++] = &st->entries[i];
	qsort(order, n, sizeof *order, compare_by_offset);
	fv_status s = FV_OK;
	for (size_t i = 1; i < n && s == FV_OK; i++) {
		const fv_st_entry *a = order[i - 1], *b = order[i];
		size_t a_begin = begin_of(a, data), b_begin = begin_of(b, data);
		if (b_begin < a_begin + a->nbytes)
			s = fv_error(FV_ERR_FORMAT,
			             "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data "
			             "section",
			             st->name, a->name, a_begin, a_begin + a->nbytes, b->name, b_begin,
			             b_begin + b->nbytes);
	}
	free(order);
	return s;
}

static fv_status parse_header(fv_safetensors *st)
{
	if (st->size < 8)
		return fv_error(FV_ERR_FORMAT,
		                "%s: file is too short (%zu bytes) to hold the 8-byte header length",
		                st->name, st->size);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | st->bytes[i];
	if (n > st->size - 8)
		return fv_error(FV_ERR_FORMAT,
		                "%s: header length %llu exceeds the file size (%zu bytes): truncated or "
		                "not a safetensors file",
		                st->name, (unsigned long long)n, st->size);
	if (n > ST_MAX_HEADER)
		return fv_error(FV_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes",
		                st->name, (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);

	char what[1024];
	snprintf(what, sizeof what, "%s: header", st->name);
	fv_status s = fv__json_load((const char *)st->bytes + 8, (size_t)n, what, &st->header);
	if (s != FV_OK)
		return s;
	json_t *root = st->header;
	if (!json_is_object(root))
		return fv_error(FV_ERR_FORMAT, "%s: header is %s; expected a JSON object", st->name,
		                value_str(root).s);

	const unsigned char *data = st->bytes + 8 + n;
	size_t data_len = st->size - 8 - (size_t)n;
	st->entries = fv__calloc(json_object_size(root) + 1, sizeof *st->entries);
	if (st->entries == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory reading the header", st->name);
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0)
			s = parse_metadata(st, v);
		else
			s = parse_entry(st->name, key, v, data, data_len, &st->entries[st->count++]);
		if (s != FV_OK)
			return s;
	}
	qsort(st->entries, st->count, sizeof *st->entries, compare_by_name);
	return check_overlaps(st, data);
}

/* ---- opening ------------------------------------------------------------------- */

/* The whole file, read until end of file (its size may differ from what
** stat said, e.g. for a pipe). */
static fv_status read_file(const char *path, unsigned char **out, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_error(FV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat sb;
	size_t cap = 1 << 16;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size < SIZE_MAX)
		cap = (size_t)sb.st_size + 1; /* + 1 so that end of file needs no realloc */
	unsigned char *buf = fv__malloc(cap);
	size_t len = 0;
	fv_status s = FV_OK;
	while (buf != NULL) {
		if (len == cap) {
			unsigned char *grown = cap <= SIZE_MAX / 2 ? fv__realloc(buf, cap * 2) : NULL;
			if (grown == NULL)
				break;
			buf = grown;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			s = fv_error(FV_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
			break;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (s == FV_OK && (buf == NULL || len == cap))
		s = fv_error(FV_ERR_NOMEM, "%s: out of memory reading the file", path);
	if (s != FV_OK) {
		free(buf);
		return s;
	}
	*out = buf;
	*size = len;
	return FV_OK;
}

void fv_safetensors_close(fv_safetensors *st)
{
	if (st == NULL)
		return;
	json_decref(st->header);
	free(st->meta_kv);
	free(st->entries);
	free(st->bytes);
	free(st->name);
	free(st);
}

/* Takes ownership of `bytes`. */
static fv_safetensors *load(const char *name, unsigned char *bytes, size_t size)
{
	fv_safetensors *st = fv__calloc(1, sizeof *st);
	if (st == NULL || (st->name = fv__strdup(name)) == NULL) {
		free(st);
		free(bytes);
		fv_error(FV_ERR_NOMEM, "%s: out of memory", name);
		return NULL;
	}
	st->bytes = bytes;
	st->size = size;
	if (parse_header(st) != FV_OK) {
		fv_safetensors_close(st);
		return NULL;
	}
	return st;
}

fv_safetensors *fv_safetensors_open(const char *path)
{
	if (path == NULL) {
		fv_error(FV_ERR_ARG, "fv_safetensors_open: path is NULL");
		return NULL;
	}
	unsigned char *bytes = NULL;
	size_t size = 0;
	if (read_file(path, &bytes, &size) != FV_OK)
		return NULL;
	return load(path, bytes, size);
}

fv_safetensors *fv_safetensors_from_memory(const void *buf, size_t len, const char *name)
{
	if (name == NULL)
		name = "<memory>";
	if (buf == NULL && len > 0) {
		fv_error(FV_ERR_ARG, "%s: fv_safetensors_from_memory: buffer is NULL", name);
		return NULL;
	}
	unsigned char *copy = fv__malloc(len ? len : 1);
	if (copy == NULL) {
		fv_error(FV_ERR_NOMEM, "%s: out of memory copying %zu bytes", name, len);
		return NULL;
	}
	if (len > 0)
		memcpy(copy, buf, len);
	return load(name, copy, len);
}

/* ---- lookups -------------------------------------------------------------------- */

size_t fv_safetensors_count(const fv_safetensors *st)
{
	return st ? st->count : 0;
}

const fv_st_entry *fv_safetensors_at(const fv_safetensors *st, size_t i)
{
	return st && i < st->count ? &st->entries[i] : NULL;
}

const fv_st_entry *fv_safetensors_find(const fv_safetensors *st, const char *name)
{
	if (st == NULL || name == NULL)
		return NULL;
	fv_st_entry key = {.name = name};
	return bsearch(&key, st->entries, st->count, sizeof key, compare_by_name);
}

const char *fv_safetensors_meta(const fv_safetensors *st, const char *key)
{
	return st && key ? json_string_value(json_object_get(st->meta, key)) : NULL;
}

size_t fv_safetensors_meta_count(const fv_safetensors *st)
{
	return st ? st->meta_count : 0;
}

const char *fv_safetensors_meta_key(const fv_safetensors *st, size_t i)
{
	return i < fv_safetensors_meta_count(st) ? st->meta_kv[2 * i] : NULL;
}

const char *fv_safetensors_meta_value(const fv_safetensors *st, size_t i)
{
	return i < fv_safetensors_meta_count(st) ? st->meta_kv[2 * i + 1] : NULL;
}

/* ---- conversion ------------------------------------------------------------------ */

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* IEEE 754 binary64 and binary32 from their little-endian bytes. */
static double le_f64(const unsigned char *p)
{
	uint64_t bits = le64(p);
	double v;
	memcpy(&v, &bits, sizeof v);
	return v;
}

static float f32_of_bits(uint32_t bits)
{
	float v;
	memcpy(&v, &bits, sizeof v);
	return v;
}

static float le_f32(const unsigned char *p)
{
	return f32_of_bits(le32(p));
}

/* IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
static float half_to_float(uint16_t h)
{
	int exponent = (h >> 10) & 0x1f;
	int mantissa = h & 0x3ff;
	float v;
	if (exponent == 0)
		v = ldexpf((float)mantissa, -24); /* zero and subnormals */
	else if (exponent == 31)
		v = mantissa ? NAN : INFINITY;
	else
		v = ldexpf((float)(mantissa | 0x400), exponent - 25);
	return (h & 0x8000) ? -v : v;
}

/* bfloat16 is the upper half of a float32. */
static float bf16_to_float(uint16_t h)
{
	return f32_of_bits((uint32_t)h << 16);
}

static void convert(const fv_st_entry *e, fv_real *dst)
{
	const unsigned char *p = e->data;
	int64_t n = e->numel;
	switch (e->dtype) {
	case FV_DTYPE_F64:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)le_f64(p + 8 * i);
		break;
	case FV_DTYPE_F32:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)le_f32(p + 4 * i);
		break;
	case FV_DTYPE_F16:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)half_to_float(le16(p + 2 * i));
		break;
	case FV_DTYPE_BF16:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)bf16_to_float(le16(p + 2 * i));
		break;
	case FV_DTYPE_I64:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)(int64_t)le64(p + 8 * i);
		break;
	case FV_DTYPE_I32:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)(int32_t)le32(p + 4 * i);
		break;
	case FV_DTYPE_I16:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)(int16_t)le16(p + 2 * i);
		break;
	case FV_DTYPE_I8:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)(int8_t)p[i];
		break;
	case FV_DTYPE_U8:
		for (int64_t i = 0; i < n; i++)
			dst[i] = (fv_real)p[i];
		break;
	case FV_DTYPE_BOOL:
		for (int64_t i = 0; i < n; i++)
			dst[i] = p[i] != 0;
		break;
	}
}

static const fv_st_entry *find_or_fail(const fv_safetensors *st, const char *name)
{
	if (st == NULL || name == NULL) {
		fv_error(FV_ERR_ARG, "safetensors: %s is NULL", st == NULL ? "file" : "tensor name");
		return NULL;
	}
	const fv_st_entry *e = fv_safetensors_find(st, name);
	if (e == NULL)
		fv_error(FV_ERR_NOTFOUND, "%s: no tensor named '%s'", st->name, name);
	return e;
}

fv_status fv_safetensors_read(const fv_safetensors *st, const char *name, fv_real *dst,
                              int64_t numel)
{
	const fv_st_entry *e = find_or_fail(st, name);
	if (e == NULL)
		return st == NULL || name == NULL ? FV_ERR_ARG : FV_ERR_NOTFOUND;
	if (numel != e->numel)
		return fv_error(FV_ERR_SHAPE,
		                "%s: tensor '%s' has %lld elements (shape %s), but %lld were asked for",
		                st->name, name, (long long)e->numel, shape_str(e->ndim, e->shape).s,
		                (long long)numel);
	if (dst == NULL && numel > 0)
		return fv_error(FV_ERR_ARG, "%s: tensor '%s': destination is NULL", st->name, name);
	convert(e, dst);
	return FV_OK;
}

fv_tensor *fv_safetensors_tensor(const fv_safetensors *st, const char *name)
{
	const fv_st_entry *e = find_or_fail(st, name);
	if (e == NULL)
		return NULL;
	if (e->ndim > FV_MAX_DIMS) {
		fv_error(FV_ERR_SHAPE, "%s: tensor '%s' has shape %s; fovea tensors have at most %d dims",
		         st->name, name, shape_str(e->ndim, e->shape).s, FV_MAX_DIMS);
		return NULL;
	}
	fv_tensor *t = fv_tensor_new(e->ndim, e->shape);
	if (t == NULL) {
		fv_error_prefix("%s: tensor '%s': ", st->name, name);
		return NULL;
	}
	convert(e, t->data);
	if (fv_tensor_set_name(t, name) != FV_OK) {
		fv_tensor_free(t);
		return NULL;
	}
	return t;
}
