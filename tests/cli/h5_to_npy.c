/*
** h5_to_npy FILE.h5 --list GROUP: the names under GROUP, one a line.
** h5_to_npy FILE.h5 DATASET OUT.npy: one dataset of an HDF5 file as a
** float64 .npy, read with libhdf5 alone (not fovea's reader), so that the
** tests can check fovea's data against values numpy computes from the same
** file.  Exit 1 with a message on any failure.
*/
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *name)
{
	fprintf(stderr, "h5_to_npy: %s: %s\n", what, name);
	return 1;
}

/* The .npy 1.0 header of a little-endian float64 C-order array, padded to 64. */
static void write_header(FILE *f, int ndim, const hsize_t *dims)
{
	char dict[512];
	int at = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
	for (int i = 0; i < ndim; i++)
		at += snprintf(dict + at, sizeof dict - (size_t)at, "%llu,%s",
		               (unsigned long long)dims[i], i + 1 < ndim ? " " : "");
	at += snprintf(dict + at, sizeof dict - (size_t)at, "), }");
	int total = 10 + at + 1;
	int pad = (64 - total % 64) % 64;
	unsigned short hlen = (unsigned short)(at + pad + 1);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hlen & 0xff, f);
	fputc(hlen >> 8, f);
	fwrite(dict, 1, (size_t)at, f);
	for (int i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
}

static herr_t print_name(hid_t group, const char *name, const H5L_info_t *info, void *ud)
{
	(void)group, (void)info, (void)ud;
	puts(name);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return fail("usage", "h5_to_npy FILE.h5 DATASET OUT.npy | FILE.h5 --list GROUP");
	hid_t file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
	if (file < 0)
		return fail("cannot open", argv[1]);
	if (strcmp(argv[2], "--list") == 0) {
		if (!H5Lexists(file, argv[3], H5P_DEFAULT) && strcmp(argv[3], "/") != 0)
			return 0;
		hsize_t at = 0;
		H5Literate_by_name(file, argv[3], H5_INDEX_NAME, H5_ITER_INC, &at, print_name, NULL,
		                    H5P_DEFAULT);
		H5Fclose(file);
		return 0;
	}
	hid_t ds = H5Dopen2(file, argv[2], H5P_DEFAULT);
	if (ds < 0)
		return fail("no dataset", argv[2]);
	hid_t space = H5Dget_space(ds);
	hsize_t dims[32];
	int ndim = H5Sget_simple_extent_ndims(space);
	if (ndim < 0 || ndim > 32)
		return fail("bad rank", argv[2]);
	H5Sget_simple_extent_dims(space, dims, NULL);
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)dims[i];
	double *v = malloc((n ? n : 1) * sizeof *v);
	if (v == NULL || H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
		return fail("cannot read", argv[2]);
	FILE *f = fopen(argv[3], "wb");
	if (f == NULL)
		return fail("cannot write", argv[3]);
	write_header(f, ndim, dims);
	fwrite(v, sizeof *v, n, f);
	fclose(f);
	free(v);
	H5Sclose(space);
	H5Dclose(ds);
	H5Fclose(file);
	return 0;
}
