/*
** karamanlis_2024_npz.c: the stimuli openretina caches beside a session's
** .mat file, <mat stem>_extracted_stimuli_<h>_<w>.npz, as
** np.savez_compressed writes it: a zip (deflate) of train_data.npy and
** test_data.npy.  The members go through fovea's .npy code by way of a
** temporary file; the archive is written under a temporary name and
** renamed, so a run that stops half-way leaves no cache a later run
** would trust.
*/
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include <fovea/npy.h>

#include "karamanlis_2024.h"

static const char *const members[2] = {"train_data.npy", "test_data.npy"};

/* A fresh temporary path "<dir>/fovea_npz_XXXXXX" (made, empty). */
static char *temp_path(void)
{
	const char *dir = getenv("TMPDIR");
	char *p = malloc(strlen(dir != NULL && *dir ? dir : "/tmp") + 32);
	if (p == NULL)
		return NULL;
	sprintf(p, "%s/fovea_npz_XXXXXX", dir != NULL && *dir ? dir : "/tmp");
	int fd = mkstemp(p);
	if (fd < 0) {
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

/* Member `name` of the open archive, through a temporary .npy file. */
static fv_status read_member(zip_t *za, const char *path, const char *name, fv_tensor **out)
{
	zip_file_t *zf = zip_fopen(za, name, 0);
	if (zf == NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: key '%s' not found in the archive", path,
		                name);
	char *tmp = temp_path();
	FILE *f = tmp != NULL ? fopen(tmp, "wb") : NULL;
	fv_status rc = f != NULL ? FV_OK
	                         : fv_error(FV_ERR_IO, "%s: no temporary file for '%s'", path, name);
	char buf[1 << 16];
	zip_int64_t got = 0;
	while (rc == FV_OK && (got = zip_fread(zf, buf, sizeof buf)) > 0)
		if (fwrite(buf, 1, (size_t)got, f) != (size_t)got)
			rc = fv_error(FV_ERR_IO, "%s: cannot write a temporary copy of '%s'", path, name);
	if (rc == FV_OK && got < 0)
		rc = fv_error(FV_ERR_FORMAT, "%s: key '%s' is damaged: %s", path, name,
		              zip_file_strerror(zf));
	if (f != NULL && fclose(f) != 0 && rc == FV_OK)
		rc = fv_error(FV_ERR_IO, "%s: cannot write a temporary copy of '%s'", path, name);
	zip_fclose(zf);
	*out = rc == FV_OK ? fv_npy_load(tmp) : NULL;
	if (rc == FV_OK && *out == NULL)
		rc = fv_error(fv_errcode(), "%s: key '%s': %s", path, name, fv_errmsg());
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	return rc;
}

fv_status kara_npz_read(const char *path, fv_tensor **train, fv_tensor **test)
{
	*train = *test = NULL;
	int err = 0;
	zip_t *za = zip_open(path, ZIP_RDONLY, &err);
	if (za == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: not a readable .npz (zip) archive", path);
	fv_status rc = read_member(za, path, members[0], train);
	if (rc == FV_OK)
		rc = read_member(za, path, members[1], test);
	zip_discard(za);
	if (rc != FV_OK) {
		fv_tensor_free(*train);
		fv_tensor_free(*test);
		*train = *test = NULL;
	}
	return rc;
}

/* Add `t` as member `name`, from a temporary .npy file kept in *tmp until
** the archive is closed (libzip reads sources then). */
static fv_status add_member(zip_t *za, const char *name, const fv_tensor *t, char **tmp)
{
	*tmp = temp_path();
	if (*tmp == NULL)
		return fv_error(FV_ERR_IO, "no temporary file for '%s'", name);
	fv_status rc = fv_npy_save(*tmp, t);
	if (rc != FV_OK)
		return rc;
	zip_source_t *src = zip_source_file(za, *tmp, 0, -1);
	zip_int64_t i = src != NULL ? zip_file_add(za, name, src, ZIP_FL_OVERWRITE) : -1;
	if (i < 0) {
		zip_source_free(src);
		return fv_error(FV_ERR_IO, "cannot add '%s' to the archive: %s", name,
		                zip_strerror(za));
	}
	zip_set_file_compression(za, (zip_uint64_t)i, ZIP_CM_DEFLATE, 0);
	return FV_OK;
}

static fv_status write_archive(const char *tmp_zip, const fv_tensor *train,
                               const fv_tensor *test, char *tmp[2])
{
	int err = 0;
	zip_t *za = zip_open(tmp_zip, ZIP_CREATE | ZIP_TRUNCATE, &err);
	if (za == NULL)
		return fv_error(FV_ERR_IO, "%s: cannot create the archive", tmp_zip);
	fv_status rc = add_member(za, members[0], train, &tmp[0]);
	if (rc == FV_OK)
		rc = add_member(za, members[1], test, &tmp[1]);
	if (rc != FV_OK) {
		zip_discard(za);
		return rc;
	}
	if (zip_close(za) != 0) {
		rc = fv_error(FV_ERR_IO, "%s: cannot write the archive: %s", tmp_zip,
		              zip_strerror(za));
		zip_discard(za);
	}
	return rc;
}

fv_status kara_npz_write(const char *path, const fv_tensor *train, const fv_tensor *test)
{
	char *tmp_zip = malloc(strlen(path) + 16);
	if (tmp_zip == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	sprintf(tmp_zip, "%s.tmp%ld", path, (long)getpid());
	char *tmp[2] = {NULL, NULL};
	fv_status rc = write_archive(tmp_zip, train, test, tmp);
	if (rc == FV_OK && rename(tmp_zip, path) != 0)
		rc = fv_error(FV_ERR_IO, "%s: cannot move the written cache into place", path);
	if (rc != FV_OK) {
		rc = fv_error(fv_errcode(), "%s: %s", path, fv_errmsg());
		unlink(tmp_zip);
	}
	for (int i = 0; i < 2; i++) {
		if (tmp[i] != NULL)
			unlink(tmp[i]);
		free(tmp[i]);
	}
	free(tmp_zip);
	return rc;
}
