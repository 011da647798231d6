/*
** load_h5_into_dict.c: openretina.utils.h5_handling.load_h5_into_dict as
** a data step: every dataset of an HDF5 file, group by group, as nested
** dicts (h5py's name order).  Numeric datasets become arrays (scalars
** numbers), fixed- or variable-length strings text (a list of them for a
** 1-D dataset).  A group's attributes join its dict after every item, as
** openretina's loop writes them: they follow the first item and win over
** items of the same name, and a group without items gets none.
*/
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include <fovea/data_plugin.h>

#define MAX_DEPTH 32

typedef struct h5_dict {
	const fv_config_node *file_path;
} h5_dict;

static const fv_option h5_dict_options[] = {
	FV_OPT("file_path", NODE, h5_dict, file_path, NULL,
	       "the HDF5 file: a path, or a data step giving one (get_local_file_path)",
	       .flags = FV_OPT_REQUIRED),
	{0},
};

#define NATIVE_REAL (sizeof(fv_real) == sizeof(float) ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE)

/* Strings of a dataset or attribute (`is_attr`) of string type `type`. */
static fv_dvalue *read_strings(hid_t obj, hid_t type, hid_t space, bool is_attr)
{
	hssize_t n = H5Sget_simple_extent_npoints(space);
	int ndims = H5Sget_simple_extent_ndims(space);
	bool var = H5Tis_variable_str(type) > 0;
	size_t size = H5Tget_size(type);
	hid_t mem = H5Tcopy(H5T_C_S1);
	H5Tset_size(mem, var ? H5T_VARIABLE : size + 1);
	H5Tset_cset(mem, H5Tget_cset(type)); /* h5py writes UTF-8; HDF5 converts no charsets */
	size_t item = var ? sizeof(char *) : size + 1;
	char *buf = calloc((size_t)(n > 0 ? n : 1), item);
	herr_t ok = buf == NULL ? -1 : is_attr ? H5Aread(obj, mem, buf)
	                                       : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
	fv_dvalue *v = ok < 0 ? NULL : ndims == 0 ? NULL : fv_dvalue_list();
	for (hssize_t i = 0; ok >= 0 && i < n; i++) {
		const char *s = var ? ((char **)(void *)buf)[i] : buf + (size_t)i * item;
		fv_dvalue *t = fv_dvalue_text(s != NULL ? s : "");
		if (ndims == 0) {
			v = t;
			break;
		}
		if (fv_dvalue_append(v, t) != FV_OK)
			ok = -1;
	}
	if (var && buf != NULL && ok >= 0)
		H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf);
	H5Tclose(mem);
	free(buf);
	if (ok < 0) {
		fv_dvalue_free(v);
		return NULL;
	}
	return v;
}

/* A numeric dataset or attribute as a number (scalar) or an array. */
static fv_dvalue *read_numbers(hid_t obj, hid_t space, bool is_attr)
{
	int ndims = H5Sget_simple_extent_ndims(space);
	if (ndims < 0 || ndims > FV_MAX_DIMS)
		return NULL;
	hsize_t dims[FV_MAX_DIMS];
	H5Sget_simple_extent_dims(space, dims, NULL);
	if (ndims == 0) {
		double x;
		herr_t ok = is_attr ? H5Aread(obj, H5T_NATIVE_DOUBLE, &x)
		                    : H5Dread(obj, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &x);
		return ok < 0 ? NULL : fv_dvalue_number(x);
	}
	int64_t shape[FV_MAX_DIMS];
	for (int i = 0; i < ndims; i++)
		shape[i] = (int64_t)dims[i];
	fv_tensor *t = fv_tensor_new(ndims, shape);
	if (t == NULL)
		return NULL;
	herr_t ok = is_attr ? H5Aread(obj, NATIVE_REAL, t->data)
	                    : H5Dread(obj, NATIVE_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data);
	if (ok < 0) {
		fv_tensor_free(t);
		return NULL;
	}
	return fv_dvalue_tensor(t);
}

/* The value of a dataset or attribute; NULL with the error set. */
static fv_dvalue *read_value(hid_t obj, bool is_attr, const char *file, const char *name)
{
	hid_t type = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
	hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
	H5T_class_t cls = H5Tget_class(type);
	fv_dvalue *v = NULL;
	if (cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_ENUM)
		v = read_numbers(obj, space, is_attr);
	else if (cls == H5T_STRING)
		v = read_strings(obj, type, space, is_attr);
	else
		fv_error(FV_ERR_FORMAT, "%s: %s '%s' has a type fovea cannot read (HDF5 class %d)",
		         file, is_attr ? "attribute" : "dataset", name, (int)cls);
	if (v == NULL && (cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_ENUM ||
	                  cls == H5T_STRING))
		fv_error(FV_ERR_FORMAT, "%s: %s '%s' cannot be read (damaged, or more than %d "
		         "dimensions)", file, is_attr ? "attribute" : "dataset", name, FV_MAX_DIMS);
	H5Sclose(space);
	H5Tclose(type);
	return v;
}

typedef struct attr_walk {
	const char *file;
	fv_dvalue *dict;
	fv_status rc;
} attr_walk;

static herr_t read_attr(hid_t g, const char *name, const H5A_info_t *info, void *p)
{
	(void)info;
	attr_walk *w = p;
	hid_t a = H5Aopen(g, name, H5P_DEFAULT);
	fv_dvalue *v = a >= 0 ? read_value(a, true, w->file, name) : NULL;
	if (a >= 0)
		H5Aclose(a);
	if (v == NULL)
		w->rc = a >= 0 ? fv_errcode()
		               : fv_error(FV_ERR_FORMAT, "%s: attribute '%s' cannot be read", w->file,
		                          name);
	else
		w->rc = fv_dvalue_set(w->dict, name, v);
	return w->rc == FV_OK ? 0 : 1;
}

/* The attributes of a group, as a dict (h5py's name order). */
static fv_status read_attrs(hid_t g, const char *file, const char *where, fv_dvalue **out)
{
	attr_walk w = {.file = file, .dict = fv_dvalue_map(NULL), .rc = FV_OK};
	*out = w.dict;
	if (w.dict == NULL)
		return fv_errcode();
	hsize_t at = 0;
	if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &at, read_attr, &w) < 0 && w.rc == FV_OK)
		w.rc = fv_error(FV_ERR_FORMAT, "%s: the attributes of '%s' cannot be read", file,
		                where);
	return w.rc;
}

static fv_status load_group(hid_t g, const char *file, const char *where, int depth,
                            fv_dvalue *dict);

/* One link of a group: a dataset's value or a group's dict. */
static fv_status load_item(hid_t g, const char *file, const char *name, int depth,
                           fv_dvalue **out)
{
	*out = NULL;
	hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
	if (obj < 0)
		return fv_error(FV_ERR_FORMAT, "%s: '%s' cannot be opened", file, name);
	fv_status rc = FV_OK;
	H5I_type_t type = H5Iget_type(obj);
	if (type == H5I_DATASET) {
		*out = read_value(obj, false, file, name);
		rc = *out != NULL ? FV_OK : fv_errcode();
	} else if (type == H5I_GROUP) {
		*out = fv_dvalue_map(NULL);
		rc = *out != NULL ? load_group(obj, file, name, depth + 1, *out) : fv_errcode();
	}
	H5Oclose(obj); /* other objects (named types) are not items, as in h5py's loop */
	return rc;
}

static fv_status load_group(hid_t g, const char *file, const char *where, int depth,
                            fv_dvalue *dict)
{
	if (depth > MAX_DEPTH)
		return fv_error(FV_ERR_FORMAT, "%s: groups nested more than %d deep", file, MAX_DEPTH);
	H5G_info_t info;
	if (H5Gget_info(g, &info) < 0)
		return fv_error(FV_ERR_FORMAT, "%s: group '%s' cannot be listed", file, where);
	fv_dvalue *attrs = NULL;
	fv_status rc = read_attrs(g, file, where, &attrs);
	for (hsize_t i = 0; rc == FV_OK && i < info.nlinks; i++) {
		char name[1024] = "";
		if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
		                       H5P_DEFAULT) < 0) {
			rc = fv_error(FV_ERR_FORMAT, "%s: group '%s' cannot be listed", file, where);
			break;
		}
		fv_dvalue *item = NULL;
		rc = load_item(g, file, name, depth, &item);
		if (rc == FV_OK && item != NULL)
			rc = fv_dvalue_set(dict, name, item);
		for (size_t k = 0; rc == FV_OK && k < fv_dvalue_size(attrs); k++)
			rc = fv_dvalue_set(dict, fv_dvalue_key_at(attrs, k),
			                   fv_dvalue_copy(fv_dvalue_at(attrs, k)));
	}
	fv_dvalue_free(attrs);
	return rc;
}

/* The path option: a nested step's text value, or the text given. */
static const char *path_of(const h5_dict *o, const fv_data_inputs *in)
{
	const fv_dvalue *v = fv_data_input(in, "file_path");
	return v != NULL ? fv_dvalue_text_of(v) : fv_node_text(o->file_path);
}

static fv_status h5_dict_step(fv_module *m, fv_data_inputs *in, fv_dvalue **out)
{
	const h5_dict *o = fv_module_priv(m);
	const char *path = path_of(o, in);
	const fv_config_node *spec = fv_data_input_spec(in);
	if (path == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.file_path: expected a path",
		                   fv_node_keypath(spec));
	H5E_auto2_t func;
	void *data;
	H5Eget_auto2(H5E_DEFAULT, &func, &data);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* fovea's message says what failed */
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	fv_status rc = FV_OK;
	if (f < 0)
		rc = fv_error_at(spec, FV_ERR_FORMAT, "%s.file_path: %s is not a readable HDF5 file "
		                 "(missing, truncated or corrupted?)", fv_node_keypath(spec), path);
	*out = rc == FV_OK ? fv_dvalue_map(NULL) : NULL;
	if (rc == FV_OK)
		rc = *out != NULL ? load_group(f, path, "/", 0, *out) : fv_errcode();
	if (f >= 0)
		H5Fclose(f);
	H5Eset_auto2(H5E_DEFAULT, func, data);
	if (rc != FV_OK) {
		fv_dvalue_free(*out);
		*out = NULL;
	}
	return rc;
}

static const char *const h5_dict_names[] = {
	"load_h5_into_dict", "openretina.utils.h5_handling.load_h5_into_dict", NULL,
};

static const fv_component h5_dict_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_DATA,
	.names = h5_dict_names,
	.doc = "every dataset of an HDF5 file as nested dicts of arrays",
	.options = h5_dict_options,
	.priv_size = sizeof(h5_dict),
	.data_step = h5_dict_step,
};

FV_PLUGIN_DEFINE("data-h5", &h5_dict_component);
