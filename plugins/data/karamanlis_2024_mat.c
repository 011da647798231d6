/*
** karamanlis_2024_mat.c: the variables of a session's MATLAB file through
** libmatio, which reads v5 and v7.3 (HDF5) files alike.
**
** openretina reads the (v7.3) files with h5py: a MATLAB array of dims
** (d0, ..., dk), stored column-major, shows there as a C-order array of
** shape (dk, ..., d0) over the same bytes.  matio gives MATLAB's dims and
** column-major data, so reversing the dims gives h5py's view without
** moving a number -- for a v5 file too.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <hdf5.h>
#include <matio.h>

#include "karamanlis_2024.h"

struct kara_mat {
	mat_t *mat;
	char *path;
	double file_bytes;
};

/* matio reports through a global log function: keep its last message for
** ours instead of letting it print. */
static char mat_message[256];

static void mat_log(int level, char *message)
{
	(void)level;
	snprintf(mat_message, sizeof mat_message, "%s", message != NULL ? message : "");
}

static void quiet_matio(void)
{
	mat_message[0] = '\0';
	Mat_LogInitFunc("fovea", mat_log);
}

fv_status kara_mat_open(const char *path, kara_mat **out)
{
	*out = NULL;
	fv_status rc = kara_mat_scan_v5(path);
	if (rc != FV_OK)
		return rc;
	quiet_matio();
	mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
	if (mat == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: not a readable MATLAB file (v5 or v7.3; missing, "
		                "truncated or damaged?)%s%s", path, mat_message[0] ? ": " : "",
		                mat_message);
	kara_mat *m = calloc(1, sizeof *m);
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		Mat_Close(mat);
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	}
	m->mat = mat;
	struct stat st;
	m->file_bytes = stat(path, &st) == 0 ? (double)st.st_size : 0;
	*out = m;
	return FV_OK;
}

void kara_mat_close(kara_mat *m)
{
	if (m == NULL)
		return;
	Mat_Close(m->mat);
	free(m->path);
	free(m);
}

void kara_array_free(kara_array *a)
{
	if (a->owner != NULL)
		Mat_VarFree(a->owner);
	memset(a, 0, sizeof *a);
}

/* Element i of matio's data of class `c` as a double; false for a class
** that holds no plain numbers. */
static bool element(const void *data, enum matio_classes c, size_t i, double *x)
{
	switch (c) {
	case MAT_C_DOUBLE: *x = ((const double *)data)[i]; return true;
	case MAT_C_SINGLE: *x = ((const float *)data)[i]; return true;
	case MAT_C_INT8: *x = ((const int8_t *)data)[i]; return true;
	case MAT_C_UINT8: *x = ((const uint8_t *)data)[i]; return true;
	case MAT_C_INT16: *x = ((const int16_t *)data)[i]; return true;
	case MAT_C_UINT16: *x = ((const uint16_t *)data)[i]; return true;
	case MAT_C_INT32: *x = ((const int32_t *)data)[i]; return true;
	case MAT_C_UINT32: *x = ((const uint32_t *)data)[i]; return true;
	case MAT_C_INT64: *x = (double)((const int64_t *)data)[i]; return true;
	case MAT_C_UINT64: *x = (double)((const uint64_t *)data)[i]; return true;
	default: return false;
	}
}

/* The h5py shape of `v` in `a`; an error when it has not `ndim` dims. */
static fv_status h5py_shape(const kara_mat *m, const char *name, const matvar_t *v, int ndim,
                            kara_array *a)
{
	char dims[128] = "";
	int64_t numel = 1;
	for (int i = 0; i < v->rank && strlen(dims) < sizeof dims - 24; i++) {
		size_t d = v->dims[v->rank - 1 - i];
		snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%zu", i ? ", " : "", d);
		numel = d > 0 && (uint64_t)numel <= (uint64_t)INT64_MAX / d ? numel * (int64_t)d : 0;
		if (i < KARA_MAX_DIMS)
			a->shape[i] = (int64_t)d;
	}
	if (v->rank != ndim)
		return fv_error(FV_ERR_SHAPE, "%s: variable '%s' has shape (%s) as h5py reads it; "
		                "expected %d dimensions", m->path, name, dims, ndim);
	if (numel == 0)
		return fv_error(FV_ERR_SHAPE, "%s: variable '%s' has shape (%s): expected no empty "
		                "dimension", m->path, name, dims);
	a->ndim = ndim;
	a->numel = numel;
	return FV_OK;
}

static fv_status check_numeric(const kara_mat *m, const char *name, const matvar_t *v)
{
	double x;
	if (v->isComplex || v->data == NULL || !element(v->data, v->class_type, 0, &x))
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s' is no real numeric array (MATLAB "
		                "class %d%s)", m->path, name, (int)v->class_type,
		                v->isComplex ? ", complex"
		                : v->class_type == MAT_C_EMPTY && Mat_GetVersion(m->mat) == MAT_FT_MAT73
		                        ? "; a v7.3 file names it in the dataset's MATLAB_class "
		                          "attribute, a null-terminated string" : "");
	return FV_OK;
}

double kara_at(const kara_array *a, int64_t i)
{
	double x = 0.0;
	element(a->raw, (enum matio_classes)a->cls, (size_t)i, &x);
	return x;
}

static fv_status check_values(const kara_mat *m, const char *name, const matvar_t *v,
                              bool finite, const kara_array *a)
{
	/* matio sizes the data from the dims; a damaged file may disagree */
	if (v->nbytes / Mat_SizeOfClass(v->class_type) < (size_t)a->numel)
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s' holds fewer numbers than its dims "
		                "say (damaged file?)", m->path, name);
	for (int64_t i = 0; finite && i < a->numel; i++) {
		double x = kara_at(a, i);
		if (!isfinite(x))
			return fv_error(FV_ERR_FORMAT, "%s: variable '%s' holds %s at flat index %lld",
			                m->path, name, isnan(x) ? "NaN" : "an infinite value", (long long)i);
	}
	return FV_OK;
}

/* libmatio (and libhdf5 under it) allocates what the variable declares
** before reading it: a damaged file can declare gigabytes.  A real file
** holds its numbers, compressed at most 1032-fold (deflate's limit), and
** they must fit in memory. */
/* A v7.3 variable's bytes as libhdf5 will read them: its stored type
** (damage can inflate that too), NAN when it cannot be asked. */
static double h5_declared(const char *path, const char *name)
{
	double bytes = NAN;
	H5E_BEGIN_TRY {
		hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
		hid_t t = d >= 0 ? H5Dget_type(d) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
		hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
		if (t >= 0 && n >= 0)
			bytes = (double)n * (double)H5Tget_size(t);
		if (sp >= 0)
			H5Sclose(sp);
		if (t >= 0)
			H5Tclose(t);
		if (d >= 0)
			H5Dclose(d);
		if (f >= 0)
			H5Fclose(f);
	} H5E_END_TRY;
	return bytes;
}

static fv_status check_declared(const kara_mat *m, const char *name, const matvar_t *info,
                                int64_t numel)
{
	size_t each = Mat_SizeOfClass(info->class_type);
	double bytes = (double)numel * (double)(each > 0 ? each : 1);
	if (Mat_GetVersion(m->mat) == MAT_FT_MAT73) {
		double stored = h5_declared(m->path, name);
		bytes = isnan(stored) || stored < bytes ? bytes : stored;
	}
	if (bytes > 1032.0 * m->file_bytes + 65536.0)
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s' declares %.3g bytes, more than a "
		                "file of %.0f bytes can hold (damaged file?)", m->path, name, bytes,
		                m->file_bytes);
	if (bytes > (double)fv_memory_available())
		return fv_error(FV_ERR_NOMEM, "%s: variable '%s' needs %.3g bytes, more than the "
		                "memory available (%.3g)", m->path, name, bytes,
		                (double)fv_memory_available());
	return FV_OK;
}

fv_status kara_mat_read(kara_mat *m, const char *name, int ndim, bool finite, kara_array *out)
{
	memset(out, 0, sizeof *out);
	quiet_matio();
	matvar_t *info = Mat_VarReadInfo(m->mat, name);
	if (info == NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: variable '%s' not found (or unreadable)%s%s",
		                m->path, name, mat_message[0] ? ": " : "", mat_message);
	fv_status rc = h5py_shape(m, name, info, ndim, out);
	if (rc == FV_OK)
		rc = check_declared(m, name, info, out->numel);
	Mat_VarFree(info);
	if (rc != FV_OK)
		return rc;
	matvar_t *v = Mat_VarRead(m->mat, name);
	if (v == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: variable '%s' cannot be read (damaged or "
		                "truncated file?)%s%s", m->path, name, mat_message[0] ? ": " : "",
		                mat_message);
	out->owner = v;
	rc = h5py_shape(m, name, v, ndim, out);
	if (rc == FV_OK)
		rc = check_numeric(m, name, v);
	out->raw = v->data;
	out->cls = (int)v->class_type;
	if (rc == FV_OK)
		rc = check_values(m, name, v, finite, out);
	if (rc != FV_OK)
		kara_array_free(out);
	return rc;
}
