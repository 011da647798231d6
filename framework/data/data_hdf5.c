/*
** data_hdf5.c: the little of libhdf5 the data reader and `fovea create-data`
** need (list a group, read a numeric dataset as doubles, write one), plus
** directory listing and path helpers for the data_*.c files.
**
** libhdf5 prints its error stack to stderr unless told not to; fovea turns
** that off while it works and says what went wrong in fv_errmsg instead,
** naming the file and the dataset.  Only calls present in HDF5 1.10 and
** later are used, so the code builds against Debian's and newer releases.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "data/data_internal.h"
#include "base/base_internal.h"

/* Datasets larger than this many elements are taken for corruption. */
#define H5_MAX_ELEMENTS ((int64_t)1 << 36)

static int quiet_depth;
static H5E_auto2_t saved_func;
static void *saved_data;

void fv__h5_quiet_begin(void)
{
	if (quiet_depth++ == 0) {
		H5Eget_auto2(H5E_DEFAULT, &saved_func, &saved_data);
		H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	}
}

void fv__h5_quiet_end(void)
{
	if (quiet_depth > 0 && --quiet_depth == 0)
		H5Eset_auto2(H5E_DEFAULT, saved_func, saved_data);
}

fv_status fv__h5_open(const char *path, fv__h5_id *file)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return fv_error(FV_ERR_FORMAT, "%s: not a readable HDF5 file (truncated or corrupted?)",
		                path);
	*file = f;
	return FV_OK;
}

fv_status fv__h5_create(const char *path, fv__h5_id *file)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (f < 0)
		return fv_error(FV_ERR_IO, "%s: cannot create HDF5 file", path);
	*file = f;
	return FV_OK;
}

void fv__h5_close(fv__h5_id file)
{
	if (file >= 0)
		H5Fclose(file);
}

fv_status fv__h5_write_file(const char *path, fv__h5_fill fill, const void *ud)
{
	size_t n_tmp = strlen(path) + 5;
	char *tmp = fv__malloc(n_tmp);
	if (tmp == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	snprintf(tmp, n_tmp, "%s.tmp", path);
	fv__h5_id file = -1;
	fv_status rc = fv__h5_create(tmp, &file);
	if (rc == FV_OK) {
		rc = fill(file, tmp, ud);
		if (H5Fclose(file) < 0 && rc == FV_OK)
			rc = fv_error(FV_ERR_IO, "%s: cannot finish writing the HDF5 file", tmp);
		if (rc == FV_OK && rename(tmp, path) != 0)
			rc = fv_error(FV_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
			              strerror(errno));
		if (rc != FV_OK)
			remove(tmp);
	}
	free(tmp);
	return rc;
}

void fv__data_free_names(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

fv_status fv__h5_list(fv__h5_id file, const char *path, const char *group, char ***names,
                      size_t *n)
{
	*names = NULL;
	*n = 0;
	H5G_info_t info;
	if (H5Gget_info_by_name(file, group, &info, H5P_DEFAULT) < 0)
		return fv_error(FV_ERR_FORMAT, "%s: cannot list group '%s' (truncated or corrupted?)",
		                path, group);
	char **list = fv__calloc(info.nlinks ? info.nlinks : 1, sizeof *list);
	if (list == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	for (hsize_t i = 0; i < info.nlinks; i++) {
		ssize_t len = H5Lget_name_by_idx(file, group, H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0,
		                                 H5P_DEFAULT);
		char *name = len >= 0 ? fv__malloc((size_t)len + 1) : NULL;
		if (name == NULL || H5Lget_name_by_idx(file, group, H5_INDEX_NAME, H5_ITER_INC, i, name,
		                                       (size_t)len + 1, H5P_DEFAULT) < 0) {
			bool nomem = len >= 0 && name == NULL;
			free(name);
			fv__data_free_names(list, (size_t)i);
			if (nomem)
				return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
			return fv_error(FV_ERR_FORMAT, "%s: cannot read the names in group '%s'", path,
			                group);
		}
		list[i] = name;
	}
	qsort(list, info.nlinks, sizeof *list, compare_names);
	*names = list;
	*n = info.nlinks;
	return FV_OK;
}

static H5I_type_t object_type(fv__h5_id file, const char *name)
{
	if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
		return H5I_BADID;
	hid_t obj = H5Oopen(file, name, H5P_DEFAULT);
	if (obj < 0)
		return H5I_BADID;
	H5I_type_t type = H5Iget_type(obj);
	H5Oclose(obj);
	return type;
}

bool fv__h5_is_dataset(fv__h5_id file, const char *name)
{
	return object_type(file, name) == H5I_DATASET;
}

bool fv__h5_is_group(fv__h5_id file, const char *name)
{
	return object_type(file, name) == H5I_GROUP;
}

bool fv__h5_is_numeric(fv__h5_id file, const char *name)
{
	if (!fv__h5_is_dataset(file, name))
		return false;
	hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
	hid_t type = ds >= 0 ? H5Dget_type(ds) : -1;
	H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
	if (type >= 0)
		H5Tclose(type);
	if (ds >= 0)
		H5Dclose(ds);
	return cls == H5T_INTEGER || cls == H5T_FLOAT;
}

void fv__h5_array_free(fv__h5_array *a)
{
	free(a->data);
	a->data = NULL;
}

/* The shape of a dataset, checked to be a plain numeric array. */
static fv_status dataset_shape(hid_t ds, const char *path, const char *name, fv__h5_array *out)
{
	hid_t type = H5Dget_type(ds);
	H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
	size_t size = type >= 0 ? H5Tget_size(type) : 0;
	if (type >= 0)
		H5Tclose(type);
	if (cls != H5T_INTEGER && cls != H5T_FLOAT)
		return fv_error(FV_ERR_FORMAT, "%s: dataset '%s' is not numeric", path, name);
	out->is_float32 = cls == H5T_FLOAT && size == 4;
	hid_t space = H5Dget_space(ds);
	int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
	hsize_t dims[FV_MAX_DIMS];
	if (ndim > FV_MAX_DIMS || ndim < 0 || (ndim > 0 && H5Sget_simple_extent_dims(space, dims, NULL) < 0)) {
		if (space >= 0)
			H5Sclose(space);
		return ndim > FV_MAX_DIMS
		               ? fv_error(FV_ERR_FORMAT, "%s: dataset '%s' has %d dims, at most %d supported",
		                          path, name, ndim, FV_MAX_DIMS)
		               : fv_error(FV_ERR_FORMAT, "%s: cannot read the shape of dataset '%s'", path,
		                          name);
	}
	H5Sclose(space);
	/* Each size is bounded before the product so that the shape can be
	** printed, and the product is checked for overflow: two sizes of 2^36
	** each would wrap int64 and pass a plain comparison. */
	int64_t numel = 1;
	bool overflow = false;
	out->ndim = ndim;
	for (int i = 0; i < ndim; i++) {
		overflow |= dims[i] > (hsize_t)H5_MAX_ELEMENTS;
		out->shape[i] = overflow ? 0 : (int64_t)dims[i];
		overflow |= __builtin_mul_overflow(numel, out->shape[i], &numel);
	}
	if (overflow || numel > H5_MAX_ELEMENTS) {
		char shape[FV_MAX_DIMS * 24 + 4];
		int n = snprintf(shape, sizeof shape, "(");
		for (int i = 0; i < ndim; i++)
			n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%llu", i ? ", " : "",
			              (unsigned long long)dims[i]);
		snprintf(shape + n, sizeof shape - (size_t)n, ")");
		return fv_error(FV_ERR_FORMAT, "%s: dataset '%s' of shape %s is implausibly large "
		                               "(more than %lld elements)",
		                path, name, shape, (long long)H5_MAX_ELEMENTS);
	}
	return FV_OK;
}

fv_status fv__h5_read(fv__h5_id file, const char *path, const char *name, fv__h5_array *out)
{
	memset(out, 0, sizeof *out);
	hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
	if (ds < 0)
		return fv_error(FV_ERR_FORMAT, "%s: cannot open dataset '%s' (truncated or corrupted?)",
		                path, name);
	fv_status rc = dataset_shape(ds, path, name, out);
	if (rc == FV_OK) {
		int64_t numel = 1;
		for (int i = 0; i < out->ndim; i++)
			numel *= out->shape[i];
		out->data = fv__malloc((size_t)(numel ? numel : 1) * sizeof(double));
		if (out->data == NULL)
			rc = fv_error(FV_ERR_NOMEM, "%s: out of memory reading '%s'", path, name);
		else if (numel > 0 &&
		         H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0)
			rc = fv_error(FV_ERR_FORMAT,
			              "%s: cannot read dataset '%s' (truncated or corrupted?)", path, name);
	}
	H5Dclose(ds);
	if (rc != FV_OK)
		fv__h5_array_free(out);
	return rc;
}

static fv_status write_dataset(fv__h5_id file, const char *path, const char *name, int ndim,
                               const int64_t *shape, hid_t file_type, hid_t mem_type,
                               const void *data)
{
	hsize_t dims[FV_MAX_DIMS];
	for (int i = 0; i < ndim; i++)
		dims[i] = (hsize_t)shape[i];
	hid_t space = H5Screate_simple(ndim, dims, NULL);
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	if (lcpl >= 0)
		H5Pset_create_intermediate_group(lcpl, 1);
	hid_t ds = space >= 0 && lcpl >= 0
	                   ? H5Dcreate2(file, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT)
	                   : -1;
	herr_t wr = ds >= 0 ? H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
	if (ds >= 0)
		H5Dclose(ds);
	if (lcpl >= 0)
		H5Pclose(lcpl);
	if (space >= 0)
		H5Sclose(space);
	if (wr < 0)
		return fv_error(FV_ERR_IO, "%s: cannot write dataset '%s'", path, name);
	return FV_OK;
}

fv_status fv__h5_write_f64(fv__h5_id file, const char *path, const char *name, int ndim,
                           const int64_t *shape, const double *data)
{
	return write_dataset(file, path, name, ndim, shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data);
}

fv_status fv__h5_write_i64(fv__h5_id file, const char *path, const char *name, int ndim,
                           const int64_t *shape, const int64_t *data)
{
	return write_dataset(file, path, name, ndim, shape, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

/* ---- files and paths ---------------------------------------------------------- */

char *fv__data_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = fv__malloc(n);
	if (copy != NULL)
		memcpy(copy, s, n);
	return copy;
}

char *fv__data_path_join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	bool slash = na > 0 && a[na - 1] != '/';
	char *p = fv__malloc(na + slash + nb + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, a, na);
	if (slash)
		p[na] = '/';
	memcpy(p + na + slash, b, nb + 1);
	return p;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t ns = strlen(s), nx = strlen(suffix);
	return ns > nx && strcmp(s + ns - nx, suffix) == 0;
}

fv_status fv__data_list_dir(const char *dir, const char *suffix1, const char *suffix2, char ***names,
                       size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return fv_error(errno == ENOENT ? FV_ERR_NOTFOUND : FV_ERR_IO, "%s: cannot open directory: %s",
		                dir, strerror(errno));
	size_t count = 0, cap = 16;
	char **list = fv__malloc(cap * sizeof *list);
	fv_status rc = list != NULL ? FV_OK : fv_error(FV_ERR_NOMEM, "%s: out of memory", dir);
	struct dirent *e;
	while (rc == FV_OK && (e = readdir(d)) != NULL) {
		if (!ends_with(e->d_name, suffix1) && (suffix2 == NULL || !ends_with(e->d_name, suffix2)))
			continue;
		if (count == cap) {
			char **grown = fv__realloc(list, 2 * cap * sizeof *list);
			if (grown == NULL) {
				rc = fv_error(FV_ERR_NOMEM, "%s: out of memory", dir);
				break;
			}
			list = grown;
			cap *= 2;
		}
		if ((list[count] = fv__data_strdup(e->d_name)) == NULL)
			rc = fv_error(FV_ERR_NOMEM, "%s: out of memory", dir);
		else
			count++;
	}
	closedir(d);
	if (rc != FV_OK) {
		fv__data_free_names(list, count);
		return rc;
	}
	qsort(list, count, sizeof *list, compare_names);
	*names = list;
	*n = count;
	return FV_OK;
}
