/*
** test_npy.c: .npy reading (dtypes, versions) and writing, and the errors
** for files that are not what they claim.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fovea/npy.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fovea-npy-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void cleanup(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(npy, .init = make_tmpdir, .fini = cleanup);

/* Write a v1 file by hand: header dict padded to 64 bytes, then data. */
static const char *write_raw(const char *name, const char *dict, const void *data, size_t n)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	size_t dl = strlen(dict);
	size_t total = (10 + dl + 1 + 63) / 64 * 64;
	unsigned short hl = (unsigned short)(total - 10);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hl & 0xff, f);
	fputc(hl >> 8, f);
	fwrite(dict, 1, dl, f);
	for (size_t i = 10 + dl; i < total - 1; i++)
		fputc(' ', f);
	fputc('\n', f);
	fwrite(data, 1, n, f);
	fclose(f);
	return path;
}

Test(npy, reads_float64_c_order)
{
	double v[6] = {1.5, -2, 3, 4, 5, 6.25};
	const char *p = write_raw("a.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
	                          v, sizeof v);
	fv_tensor *t = fv_npy_load(p);
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_eq(t->ndim, 2);
	cr_assert_eq(t->shape[0], 2);
	cr_assert_eq(t->shape[1], 3);
	cr_assert_float_eq(t->data[0], 1.5, 1e-7);
	cr_assert_float_eq(t->data[5], 6.25, 1e-7);
	fv_tensor_free(t);
}

Test(npy, reads_integers_and_scalars)
{
	short v[3] = {-3, 0, 7};
	fv_tensor *t = fv_npy_load(write_raw("i.npy", "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", v, sizeof v));
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_float_eq(t->data[0], -3, 0);
	cr_assert_float_eq(t->data[2], 7, 0);
	fv_tensor_free(t);
	float s = 2.5f;
	t = fv_npy_load(write_raw("s.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &s, 4));
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_eq(t->ndim, 0);
	cr_assert_float_eq(t->data[0], 2.5, 0);
	fv_tensor_free(t);
}

Test(npy, round_trip)
{
	int64_t shape[4] = {2, 3, 4, 5};
	fv_tensor *t = fv_tensor_new(4, shape);
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(i * 0.25 - 7);
	char path[512];
	snprintf(path, sizeof path, "%s/rt.npy", tmpdir);
	cr_assert_eq(fv_npy_save(path, t), FV_OK, "%s", fv_errmsg());
	fv_tensor *u = fv_npy_load(path);
	cr_assert_not_null(u, "%s", fv_errmsg());
	cr_assert_eq(u->ndim, 4);
	for (int d = 0; d < 4; d++)
		cr_assert_eq(u->shape[d], shape[d]);
	for (int64_t i = 0; i < t->numel; i++)
		cr_assert_float_eq(u->data[i], t->data[i], 1e-6);
	fv_tensor_free(t);
	fv_tensor_free(u);
}

static unsigned char *slurp(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	*len = ftell(f);
	rewind(f);
	unsigned char *buf = malloc((size_t)*len);
	cr_assert_eq(fread(buf, 1, (size_t)*len, f), (size_t)*len);
	fclose(f);
	return buf;
}

/* np.save(path, np.arange(6.0).reshape(2, 3)) with numpy >= 1.24 writes
** exactly these bytes: the header (with 20 spare spaces after the dict for
** the growth axis, then 38 to reach 128 bytes) and the doubles. */
Test(npy, float64_is_byte_identical_to_numpy)
{
	char path[512];
	snprintf(path, sizeof path, "%s/f8.npy", tmpdir);
	const double v[6] = {0, 1, 2, 3, 4, 5};
	cr_assert_eq(fv_npy_save_f64(path, 2, (const int64_t[]){2, 3}, v), FV_OK, "%s", fv_errmsg());
	long len;
	unsigned char *got = slurp(path, &len);
	const char dict[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
	unsigned char want[128 + sizeof v];
	memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
	memcpy(want + 10, dict, sizeof dict - 1);
	memset(want + 10 + sizeof dict - 1, ' ', 20 + 38);
	want[127] = '\n';
	memcpy(want + 128, v, sizeof v);
	cr_assert_eq(len, (long)sizeof want);
	cr_assert(memcmp(got, want, sizeof want) == 0, "header: %.128s", (const char *)got);
	free(got);
	fv_tensor *t = fv_npy_load(path);
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_assert_eq(t->ndim, 2);
	cr_assert_float_eq(t->data[5], 5.0, 0);
	fv_tensor_free(t);
	/* a 1-D shape is written as Python writes a 1-tuple */
	cr_assert_eq(fv_npy_save_f64(path, 1, (const int64_t[]){6}, v), FV_OK);
	got = slurp(path, &len);
	cr_assert(strstr((const char *)got + 10, "'shape': (6,), }") != NULL, "%.64s", got + 10);
	cr_assert_eq(len, 128 + (long)sizeof v);
	free(got);
}

static void expect_error(const char *path, const char *fragment)
{
	fv_tensor *t = fv_npy_load(path);
	cr_assert_null(t);
	cr_assert(strstr(fv_errmsg(), fragment) != NULL, "'%s' lacks '%s'", fv_errmsg(), fragment);
	cr_assert(strstr(fv_errmsg(), path) != NULL, "'%s' does not name the file", fv_errmsg());
}

Test(npy, errors_name_file_and_problem)
{
	float v[4] = {0};
	expect_error(write_raw("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", v, sizeof v),
	             "truncated");
	expect_error(write_raw("long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", v, sizeof v),
	             "after the array");
	expect_error(write_raw("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v, sizeof v),
	             "Fortran");
	expect_error(write_raw("big.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", v, sizeof v),
	             "big-endian");
	expect_error(write_raw("cplx.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", v, sizeof v),
	             "unsupported dtype");
	expect_error(write_raw("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", v, sizeof v),
	             "lacks 'shape'");
	expect_error(write_raw("neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", v, sizeof v),
	             "bad dimension");
	char path[512];
	snprintf(path, sizeof path, "%s/magic.npy", tmpdir);
	FILE *f = fopen(path, "wb");
	fputs("PK\x03\x04 not numpy", f);
	fclose(f);
	expect_error(path, "bad magic");
	snprintf(path, sizeof path, "%s/missing.npy", tmpdir);
	expect_error(path, "cannot open");
}

Test(npy, write_into_missing_directory_fails_cleanly)
{
	int64_t shape[1] = {2};
	fv_tensor *t = fv_tensor_new(1, shape);
	char path[512];
	snprintf(path, sizeof path, "%s/no/such/dir/x.npy", tmpdir);
	cr_assert_eq(fv_npy_save(path, t), FV_ERR_IO);
	cr_assert(strstr(fv_errmsg(), path) != NULL, "%s", fv_errmsg());
	fv_tensor_free(t);
}

/* Issue 12 item 4: a shape whose element count overflows int64 (or whose
** bytes the file does not hold) is refused before anything is allocated,
** naming the file and the shape. */
Test(npy, overflowing_or_oversized_shape_is_refused)
{
	float v[4] = {0};
	const char *p = write_raw("ovf.npy", "{'descr': '<f4', 'fortran_order': False, "
	                                     "'shape': (55, 1111111111111111111), }", v, sizeof v);
	expect_error(p, "too many elements");
	cr_assert(strstr(fv_errmsg(), "1111111111111111111") != NULL, "%s", fv_errmsg());
	p = write_raw("ovf4.npy", "{'descr': '<f4', 'fortran_order': False, "
	                          "'shape': (1, 9223372036854775807, 6, 5), }", v, sizeof v);
	expect_error(p, "too many elements");
	/* Fits in int64 but not in the file: refused without a 32 GiB calloc. */
	p = write_raw("huge.npy", "{'descr': '<f8', 'fortran_order': False, "
	                          "'shape': (65536, 65536), }", v, sizeof v);
	expect_error(p, "needs 34359738368 bytes");
}
