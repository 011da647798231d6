/*
** tensor.c: tensor allocation (persistent and in a context), shape helpers
** and thread settings.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blis.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/tensor_internal.h"
#include "base/base_internal.h"

static fv_status check_shape(int ndim, const int64_t *shape)
{
	if (ndim < 0 || ndim > FV_MAX_DIMS)
		return fv_error(FV_ERR_SHAPE, "a tensor has %d dims; at most %d are supported", ndim,
		                FV_MAX_DIMS);
	for (int i = 0; i < ndim; i++)
		if (shape[i] < 0)
			return fv_error(FV_ERR_SHAPE, "negative size %lld in shape %s",
			                (long long)shape[i], fv_shape_str(ndim, shape));
	return FV_OK;
}

void fv__strides(int ndim, const int64_t *shape, int64_t *strides)
{
	int64_t s = 1;
	for (int i = ndim - 1; i >= 0; i--) {
		strides[i] = s;
		s *= shape[i];
	}
}

int64_t fv__numel(int ndim, const int64_t *shape)
{
	int64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	return n;
}

int fv__axis(int axis, int ndim)
{
	if (axis < 0)
		axis += ndim;
	return (axis < 0 || axis >= ndim) ? -1 : axis;
}

static void set_shape(fv_tensor *t, int ndim, const int64_t *shape)
{
	t->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		t->shape[i] = shape[i];
	for (int i = ndim; i < FV_MAX_DIMS; i++)
		t->shape[i] = 1;
	t->numel = fv__numel(ndim, shape);
}

/* Refuse a tensor the job cannot hold before allocating it (memory_limit.c);
** the size is computed in floating point so that it cannot wrap. */
static fv_status check_size(int ndim, const int64_t *shape)
{
	double bytes = (double)sizeof(fv_real);
	for (int i = 0; i < ndim; i++)
		bytes *= (double)shape[i];
	if (fv__memory_fits(bytes)) /* the common case, without formatting a message */
		return FV_OK;
	char what[200];
	snprintf(what, sizeof what, "a tensor of shape %s", fv_shape_str(ndim, shape));
	return fv__memory_check(bytes, what);
}

fv_tensor *fv_tensor_new(int ndim, const int64_t *shape)
{
	if (check_shape(ndim, shape) != FV_OK || check_size(ndim, shape) != FV_OK)
		return NULL;
	fv_tensor *t = fv__calloc(1, sizeof *t);
	if (t == NULL)
		goto nomem;
	set_shape(t, ndim, shape);
	t->data = fv__calloc(t->numel > 0 ? (size_t)t->numel : 1, sizeof(fv_real));
	if (t->data == NULL) {
		free(t);
		goto nomem;
	}
	fv__memory_charge(t->data);
	t->persistent = true;
	return t;
nomem:
	fv_error(FV_ERR_NOMEM, "out of memory allocating a tensor of shape %s",
	         fv_shape_str(ndim, shape));
	return NULL;
}

fv_tensor *fv_tensor_clone(const fv_tensor *src)
{
	fv_tensor *t = fv_tensor_new(src->ndim, src->shape);
	if (t != NULL)
		memcpy(t->data, src->data, (size_t)src->numel * sizeof(fv_real));
	return t;
}

void fv_tensor_free(fv_tensor *t)
{
	if (t == NULL)
		return;
	if (!t->persistent) /* context tensors die with their context */
		return;
	if (t->grad != NULL && t->grad->persistent)
		fv_tensor_free(t->grad);
	fv_tensor_free(t->spare_grad);
	fv__memory_release(t->data);
	free(t->data);
	free(t->name);
	free(t);
}

fv_status fv_tensor_set_name(fv_tensor *t, const char *name)
{
	char *copy = fv__strdup(name);
	if (copy == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory naming tensor %s", name);
	free(t->name);
	t->name = copy;
	return FV_OK;
}

void fv_tensor_fill(fv_tensor *t, fv_real v)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = v;
}

fv_status fv_tensor_copy(fv_tensor *dst, const fv_tensor *src)
{
	if (dst->numel != src->numel)
		return fv_error(FV_ERR_SHAPE, "cannot copy a tensor of shape %s into one of shape %s",
		                fv_shape_str(src->ndim, src->shape), fv_shape_str(dst->ndim, dst->shape));
	memmove(dst->data, src->data, (size_t)src->numel * sizeof(fv_real));
	return FV_OK;
}

void fv_zero_grad(fv_tensor *t)
{
	if (t->grad != NULL)
		memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(fv_real));
}

void fv_zero_grad_to_none(fv_tensor *t)
{
	if (t->grad == NULL || !t->grad->persistent) {
		t->grad = NULL;
		return;
	}
	fv_tensor_free(t->spare_grad);
	t->spare_grad = t->grad;
	t->grad = NULL;
}

bool fv_same_shape(const fv_tensor *a, const fv_tensor *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return false;
	return true;
}

const char *fv_shape_str(int ndim, const int64_t *shape)
{
	enum { SIZE = 160 };
	static _Thread_local char ring[4][SIZE];
	static _Thread_local int next;
	char *buf = ring[next++ % 4];
	size_t len = 0;
	buf[len++] = '(';
	/* each dim needs at most 22 bytes (", " + 20 digits): 6 dims fit */
	for (int i = 0; i < ndim && i < FV_MAX_DIMS; i++)
		len += (size_t)snprintf(buf + len, SIZE - len, i ? ", %lld" : "%lld", (long long)shape[i]);
	snprintf(buf + len, SIZE - len, ")");
	return buf;
}

/* ---- context tensors ---------------------------------------------------- */

fv_tensor *fv_ctx_empty(fv_ctx *ctx, int ndim, const int64_t *shape)
{
	if (check_shape(ndim, shape) != FV_OK)
		return NULL;
	fv_tensor *t = fv_ctx_alloc(ctx, sizeof *t);
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof *t);
	set_shape(t, ndim, shape);
	t->data = fv_ctx_alloc(ctx, (size_t)t->numel * sizeof(fv_real));
	return t->data ? t : NULL;
}

fv_tensor *fv_ctx_zeros(fv_ctx *ctx, int ndim, const int64_t *shape)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	if (t != NULL)
		memset(t->data, 0, (size_t)t->numel * sizeof(fv_real));
	return t;
}

fv_tensor *fv_ctx_full(fv_ctx *ctx, int ndim, const int64_t *shape, fv_real v)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	if (t != NULL)
		fv_tensor_fill(t, v);
	return t;
}

fv_tensor *fv_ctx_from_data(fv_ctx *ctx, int ndim, const int64_t *shape, const fv_real *data)
{
	fv_tensor *t = fv_ctx_empty(ctx, ndim, shape);
	if (t != NULL)
		memcpy(t->data, data, (size_t)t->numel * sizeof(fv_real));
	return t;
}

fv_tensor *fv_ctx_scalar(fv_ctx *ctx, fv_real v)
{
	return fv_ctx_full(ctx, 0, NULL, v);
}

fv_tensor *fv__ctx_view(fv_ctx *ctx, fv_tensor *src, int ndim, const int64_t *shape)
{
	fv_tensor *t = fv_ctx_alloc(ctx, sizeof *t);
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof *t);
	set_shape(t, ndim, shape);
	t->data = src->data;
	return t;
}

fv_tensor *fv_detach(fv_ctx *ctx, fv_tensor *x)
{
	FV_CHECK_INPUT(x);
	return fv__ctx_view(ctx, x, x->ndim, x->shape);
}

/* ---- threads ------------------------------------------------------------ */

void fv_set_num_threads(int n)
{
#ifdef _OPENMP
	if (n <= 0)
		n = omp_get_num_procs();
	omp_set_num_threads(n);
#else
	if (n <= 0)
		n = 1;
#endif
	bli_thread_set_num_threads(n);
}

int fv_get_num_threads(void)
{
#ifdef _OPENMP
	return omp_get_max_threads();
#else
	return 1;
#endif
}
