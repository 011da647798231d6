/*
** test_data_h5.c: the load_h5_into_dict data step (plugins/data/) on a
** file written here with libhdf5's own calls: nested groups, float64,
** float32 and integer datasets, a scalar, fixed- and variable-length
** strings, and group attributes placed as openretina's loop places them.
*/
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_step_testing.h"
#include "expect_error.h"
#include "fovea/data_plugin.h"

static fv_registry *reg;
static fv_config *cfg;
static char path[64];

static void setup(void)
{
	reg = dt_registry_with("data/data_h5.so");
	snprintf(path, sizeof path, "/tmp/fovea_h5_%d.h5", (int)getpid());
	cfg = NULL;
}

static void teardown(void)
{
	unlink(path);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

TestSuite(data_h5, .init = setup, .fini = teardown);

static void dataset(hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                    const void *data)
{
	hid_t space = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
	hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(d, 0);
	cr_assert_geq(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
	H5Dclose(d);
	H5Sclose(space);
}

static void attribute(hid_t loc, const char *name, hid_t type, const void *data)
{
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(H5Awrite(a, type, data), 0);
	H5Aclose(a);
	H5Sclose(space);
}

/* A small file in the shape of hoefling's responses file. */
static void write_file(void)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(f, 0);
	hid_t g = H5Gcreate2(f, "session_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	const double resp[6] = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5};
	dataset(g, "responses", H5T_NATIVE_DOUBLE, 2, (hsize_t[]){2, 3}, resp);
	const float qi[2] = {0.25f, 0.75f};
	dataset(g, "d_qi", H5T_NATIVE_FLOAT, 1, (hsize_t[]){2}, qi);
	const int64_t types[2] = {3, 41};
	dataset(g, "group_assignment", H5T_NATIVE_INT64, 1, (hsize_t[]){2}, types);
	const int64_t rate_item = -1;
	dataset(g, "rate", H5T_NATIVE_INT64, 0, NULL, &rate_item);
	const double rate = 30;
	attribute(g, "rate", H5T_NATIVE_DOUBLE, &rate);
	hid_t fixed = H5Tcopy(H5T_C_S1);
	H5Tset_size(fixed, 4);
	dataset(g, "names", fixed, 1, (hsize_t[]){2}, "OFF\0ON\0\0");
	hid_t var = H5Tcopy(H5T_C_S1);
	H5Tset_size(var, H5T_VARIABLE);
	const char *stim = "natural";
	attribute(f, "stimulus", var, &stim);
	const int32_t n = 7;
	dataset(f, "a_count", H5T_NATIVE_INT32, 0, NULL, &n);
	H5Tclose(fixed);
	H5Tclose(var);
	H5Gclose(g);
	H5Fclose(f);
}

static fv_status load(fv_dvalue **out)
{
	char yaml[512];
	snprintf(yaml, sizeof yaml,
	         "all_responses:\n"
	         "  _target_: openretina.utils.h5_handling.load_h5_into_dict\n"
	         "  _convert_: object\n"
	         "  file_path: %s\n", path);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "h5.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_data_eval(reg, fv_node_get(fv_config_root(cfg), "all_responses"), out);
}

Test(data_h5, every_dataset_is_read_into_nested_dicts)
{
	write_file();
	fv_dvalue *v = NULL;
	cr_assert_eq(load(&v), FV_OK, "%s", fv_errmsg());
	/* root: a_count, then the attribute (after the first item), then session_1 */
	cr_assert_eq(fv_dvalue_size(v), 3);
	cr_assert_str_eq(fv_dvalue_key_at(v, 0), "a_count");
	cr_assert_str_eq(fv_dvalue_key_at(v, 1), "stimulus");
	cr_assert_str_eq(fv_dvalue_key_at(v, 2), "session_1");
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(v, "a_count")), 7, 0);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_get(v, "stimulus")), "natural");

	const fv_dvalue *s = fv_dvalue_get(v, "session_1");
	const fv_tensor *r = fv_dvalue_tensor_of(fv_dvalue_get(s, "responses"));
	cr_assert_not_null(r);
	cr_assert_eq(r->ndim, 2);
	cr_assert_eq(r->shape[0], 2);
	cr_assert_eq(r->shape[1], 3);
	cr_assert_float_eq(r->data[4], 4.5, 0);
	cr_assert_float_eq(fv_dvalue_tensor_of(fv_dvalue_get(s, "d_qi"))->data[1], 0.75, 0);
	cr_assert_float_eq(fv_dvalue_tensor_of(fv_dvalue_get(s, "group_assignment"))->data[1], 41,
	                   0);
	/* the attribute wins over the dataset of the same name */
	cr_assert_float_eq(fv_dvalue_number_of(fv_dvalue_get(s, "rate")), 30, 0);
	const fv_dvalue *names = fv_dvalue_get(s, "names");
	cr_assert_eq(fv_dvalue_size(names), 2);
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_at(names, 0)), "OFF");
	cr_assert_str_eq(fv_dvalue_text_of(fv_dvalue_at(names, 1)), "ON");
	/* h5py lists names in order: d_qi, group_assignment, names, rate, responses */
	cr_assert_str_eq(fv_dvalue_key_at(s, 0), "d_qi");
	cr_assert_str_eq(fv_dvalue_key_at(s, 1), "rate");
	cr_assert_str_eq(fv_dvalue_key_at(s, 2), "group_assignment");
	fv_dvalue_free(v);
}

Test(data_h5, a_damaged_file_names_the_file_and_key)
{
	FILE *f = fopen(path, "wb");
	fputs("\x89HDF\r\n\x1a\n truncated", f);
	fclose(f);
	fv_dvalue *v = NULL;
	EXPECT_ERROR(load(&v), FV_ERR_FORMAT, "h5.yaml", "all_responses.file_path", path,
	             "not a readable HDF5 file");
	cr_assert_null(v);
}
