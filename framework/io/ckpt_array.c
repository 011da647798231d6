/*
** ckpt_array.c: torch tensors and numpy arrays out of raw storage bytes.
**
** A tensor in a checkpoint is a view of a storage: an element offset, a
** shape and strides in elements.  Before anything is allocated the view's
** furthest element, offset + sum((size_d - 1) * stride_d), is checked to
** lie inside the storage (with overflow checks: the numbers come from the
** file), and the copy it will need is charged to the load's budget, so a
** stride-0 view cannot expand one float into gigabytes.  The copy is dense
** and row-major: floating types become float32 (fovea's real type),
** integers and bools int64, and the file's dtype is kept beside them.
*/
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/ckpt_internal.h"

bool fv__dtype_is_float(fv_dtype dt)
{
	return dt == FV_DTYPE_F64 || dt == FV_DTYPE_F32 || dt == FV_DTYPE_F16 ||
	       dt == FV_DTYPE_BF16;
}

/* ---- one element -------------------------------------------------------------------- */

/* An element's bytes in little-endian order. */
static uint64_t load_bits(const unsigned char *b, size_t size, bool big_endian)
{
	uint64_t x = 0;
	for (size_t i = 0; i < size; i++)
		x |= (uint64_t)b[big_endian ? size - 1 - i : i] << (8 * i);
	return x;
}

static float f32_from_bits(uint32_t bits)
{
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}

/* IEEE half to single: exact (every half is a float). */
static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
	if (exp == 0) {
		if (man == 0)
			return f32_from_bits(sign);
		uint32_t shifts = 0; /* a subnormal: normalise it */
		while (!(man & 0x400u)) {
			man <<= 1;
			shifts++;
		}
		return f32_from_bits(sign | ((113u - shifts) << 23) | ((man & 0x3ffu) << 13));
	}
	if (exp == 31)
		return f32_from_bits(sign | 0x7f800000u | (man << 13));
	return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* A double rounded to float; beyond float's range it is an infinity, as
** the conversion would round it (C leaves that case undefined). */
static float double_to_float(double d)
{
	if (fabs(d) >= 0x1.ffffffp127)
		return d > 0 ? INFINITY : -INFINITY;
	return (float)d;
}

static double element_double(fv_dtype dt, bool big_endian, const unsigned char *b)
{
	uint64_t x = load_bits(b, fv_dtype_size(dt), big_endian);
	double d;
	switch (dt) {
	case FV_DTYPE_F64: memcpy(&d, &x, sizeof d); return d;
	case FV_DTYPE_F32: return f32_from_bits((uint32_t)x);
	case FV_DTYPE_F16: return half_to_float((uint16_t)x);
	case FV_DTYPE_BF16: return f32_from_bits((uint32_t)x << 16);
	default: return 0;
	}
}

static float element_float(fv_dtype dt, bool big_endian, const unsigned char *b)
{
	if (dt == FV_DTYPE_F64)
		return double_to_float(element_double(dt, big_endian, b));
	return (float)element_double(dt, big_endian, b);
}

static int64_t element_int(fv_dtype dt, bool big_endian, const unsigned char *b)
{
	uint64_t x = load_bits(b, fv_dtype_size(dt), big_endian);
	switch (dt) {
	case FV_DTYPE_I64: return (int64_t)x;
	case FV_DTYPE_I32: return (int32_t)(uint32_t)x;
	case FV_DTYPE_I16: return (int16_t)(uint16_t)x;
	case FV_DTYPE_I8: return (int8_t)(uint8_t)x;
	case FV_DTYPE_U8: return (uint8_t)x;
	case FV_DTYPE_BOOL: return x != 0;
	default: return 0;
	}
}

fv_pyval *fv__scalar_from_bytes(fv__pypool *p, fv_dtype dt, bool big_endian,
                                const unsigned char *b)
{
	if (dt == FV_DTYPE_BOOL)
		return fv__pyval_bool(p, b[0] != 0);
	if (fv__dtype_is_float(dt))
		return fv__pyval_float(p, element_double(dt, big_endian, b));
	return fv__pyval_int(p, element_int(dt, big_endian, b));
}

/* ---- views ----------------------------------------------------------------------- */

/* "(2, 3)" for messages; long shapes are cut short. */
typedef struct tuple_text {
	char s[FV_CKPT_MAX_DIMS * 22 + 8];
} tuple_text;

static tuple_text tuple_str(int n, const int64_t *x)
{
	tuple_text t;
	size_t len = 0;
	t.s[len++] = '(';
	for (int i = 0; i < n && len < sizeof t.s - 24; i++)
		len += (size_t)snprintf(t.s + len, sizeof t.s - len, i ? ", %lld" : "%lld",
		                        (long long)x[i]);
	snprintf(t.s + len, sizeof t.s - len, n == 1 ? ",)" : ")");
	return t;
}

/* Elements [pos, pos + n*stride) of the source (stride apart) into out[0..n). */
static void copy_run(const fv__view *v, void *out, uint64_t pos, int64_t n, int64_t stride)
{
	size_t esize = fv_dtype_size(v->dtype);
	if (fv__dtype_is_float(v->dtype)) {
		float *o = out;
		if (v->dtype == FV_DTYPE_F32 && !v->big_endian && stride == 1) {
			memcpy(o, v->data + pos * esize, (size_t)n * esize);
			return;
		}
		for (int64_t k = 0; k < n; k++, pos += (uint64_t)stride)
			o[k] = element_float(v->dtype, v->big_endian, v->data + pos * esize);
	} else {
		int64_t *o = out;
		for (int64_t k = 0; k < n; k++, pos += (uint64_t)stride)
			o[k] = element_int(v->dtype, v->big_endian, v->data + pos * esize);
	}
}

fv_status fv__array_from_view(fv__pypool *p, const fv__view *v, fv_ckpt_array **out)
{
	if (v->ndim < 0 || v->ndim > FV_CKPT_MAX_DIMS)
		return fv_error(FV_ERR_FORMAT, "a tensor has %d dims; at most %d are supported", v->ndim,
		                FV_CKPT_MAX_DIMS);
	if (v->offset < 0)
		return fv_error(FV_ERR_FORMAT, "a tensor has storage offset %lld; offsets are >= 0",
		                (long long)v->offset);
	int64_t numel = 1, last = v->offset;
	bool overflow = false;
	for (int d = 0; d < v->ndim; d++) {
		if (v->shape[d] < 0 || v->stride[d] < 0)
			return fv_error(FV_ERR_FORMAT,
			                "a tensor has size %lld and stride %lld in dim %d; both must be >= 0",
			                (long long)v->shape[d], (long long)v->stride[d], d);
		if (__builtin_mul_overflow(numel, v->shape[d], &numel))
			goto too_big;
	}
	if (numel > 0) {
		for (int d = 0; d < v->ndim; d++) {
			int64_t reach;
			if (__builtin_mul_overflow(v->shape[d] - 1, v->stride[d], &reach) ||
			    __builtin_add_overflow(last, reach, &last)) {
				overflow = true;
				goto past_end;
			}
		}
		if (last >= v->src_numel)
			goto past_end;
	}
	bool is_float = fv__dtype_is_float(v->dtype);
	size_t osize = is_float ? sizeof(float) : sizeof(int64_t);
	if ((uint64_t)numel > SIZE_MAX / osize)
		goto too_big;
	fv_ckpt_array *a = fv__pypool_blob(p, sizeof *a);
	void *data = a ? fv__pypool_blob(p, (size_t)numel * osize) : NULL;
	if (data == NULL)
		return fv__pypool_failure(p);
	memset(a, 0, sizeof *a);
	a->dtype = v->dtype;
	a->ndim = v->ndim;
	memcpy(a->shape, v->shape, (size_t)v->ndim * sizeof *a->shape);
	a->numel = numel;
	if (numel > 0) {
		if (is_float)
			a->f32 = data;
		else
			a->i64 = data;
	}
	/* Odometer over all but the last dim; each step copies one row. */
	int64_t idx[FV_CKPT_MAX_DIMS] = {0};
	int64_t row = v->ndim ? v->shape[v->ndim - 1] : 1;
	int64_t step = v->ndim ? v->stride[v->ndim - 1] : 0;
	uint64_t pos = (uint64_t)v->offset;
	for (int64_t k = 0; k < numel; k += row) {
		copy_run(v, (unsigned char *)data + (size_t)k * osize, pos, row, step);
		for (int d = v->ndim - 2; d >= 0; d--) {
			pos += (uint64_t)v->stride[d];
			if (++idx[d] < v->shape[d])
				break;
			pos -= (uint64_t)v->stride[d] * (uint64_t)v->shape[d];
			idx[d] = 0;
		}
	}
	*out = a;
	return FV_OK;
too_big:
	return fv_error(FV_ERR_FORMAT, "a tensor has more elements than memory can hold");
past_end:
	if (overflow)
		return fv_error(FV_ERR_FORMAT,
		                "a tensor view reaches past its storage: storage_offset %lld, size %s, "
		                "stride %s reach beyond element 2^63",
		                (long long)v->offset, tuple_str(v->ndim, v->shape).s,
		                tuple_str(v->ndim, v->stride).s);
	return fv_error(FV_ERR_FORMAT,
	                "a tensor view reaches past its storage: storage_offset %lld + "
	                "sum((size-1)*stride) with size %s, stride %s is element %lld, but the "
	                "storage has %lld elements",
	                (long long)v->offset, tuple_str(v->ndim, v->shape).s,
	                tuple_str(v->ndim, v->stride).s, (long long)last, (long long)v->src_numel);
}
