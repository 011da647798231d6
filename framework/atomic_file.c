/*
** atomic_file.c: writing a file so that a crash leaves either the old
** file or the complete new one, never a torn one: write PATH.tmp.XXXXXX in
** the same directory, fsync it, rename it over PATH, fsync the directory.
** Checkpoints, .npy outputs and metrics files all go through here.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static bool write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void sync_parent_directory(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

fv_status fv__atomic_write(const char *path, size_t n_parts, const void *const *parts,
                           const size_t *sizes)
{
	size_t len = strlen(path) + 16;
	char *tmp = malloc(len);
	if (tmp == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	snprintf(tmp, len, "%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		fv_status rc = fv_error(FV_ERR_IO, "%s: cannot create a temporary file: %s", path,
		                        strerror(errno));
		free(tmp);
		return rc;
	}
	bool ok = fchmod(fd, 0644) == 0;
	for (size_t i = 0; ok && i < n_parts; i++)
		ok = write_all(fd, parts[i], sizes[i]);
	ok = ok && fsync(fd) == 0;
	int saved = errno;
	ok = (close(fd) == 0) && ok;
	if (ok && rename(tmp, path) != 0) {
		saved = errno;
		ok = false;
	}
	if (!ok) {
		unlink(tmp);
		free(tmp);
		return fv_error(FV_ERR_IO, "%s: write failed: %s", path, strerror(saved));
	}
	free(tmp);
	sync_parent_directory(path);
	return FV_OK;
}
