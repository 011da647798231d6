/*
** atomic_file.c: writing a file so that a crash leaves either the old
** file or the complete new one, never a torn one: write PATH.tmp.XXXXXX in
** the same directory, fsync it, rename it over PATH, fsync the directory.
** Checkpoints (safetensors), .npy outputs and metrics all go through here.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base_internal.h"

static bool write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0) {
		ssize_t done = write(fd, p, n);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0) {
			if (done == 0)
				errno = EIO;
			return false;
		}
		p += done;
		n -= (size_t)done;
	}
	return true;
}

/* mkstemp creates files as 0600; a checkpoint should get the permissions
** an ordinary new file would: 0666 less the umask (read from /proc, as
** umask(2) cannot be queried without changing it). */
static mode_t new_file_mode(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0)
		return sb.st_mode & 07777; /* replacing a file keeps its mode */
	mode_t mask = 022;
	FILE *f = fopen("/proc/self/status", "re");
	if (f != NULL) {
		char line[256];
		unsigned m;
		while (fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "Umask: %o", &m) == 1) {
				mask = (mode_t)m;
				break;
			}
		fclose(f);
	}
	return 0666 & ~mask;
}

fv_status fv__sync_dir(const char *path)
{
	char *copy = fv__strdup(path);
	if (copy == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fv_status s = FV_OK;
	/* Some file systems cannot fsync a directory (EINVAL); the rename is
	** then as durable as they allow. */
	if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
		s = fv_error(FV_ERR_IO, "%s: written, but syncing its directory %s failed: %s", path,
		             dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(copy);
	return s;
}

fv_status fv__atomic_write(const char *path, size_t n_parts, const void *const *parts,
                           const size_t *sizes)
{
	size_t tmp_len = strlen(path) + sizeof ".tmp.XXXXXX";
	char *tmp = fv__malloc(tmp_len);
	if (tmp == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", path);
	snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
	mode_t mode = new_file_mode(path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		/* (mkstemp leaves the template undefined on failure: not shown) */
		fv_status s = fv_error(FV_ERR_IO, "%s: cannot create a temporary file in its directory: %s",
		                       path, strerror(errno));
		free(tmp);
		return s;
	}
	const char *step = "write";
	bool ok = true;
	for (size_t i = 0; ok && i < n_parts; i++)
		ok = write_all(fd, parts[i], sizes[i]);
	if (ok && !(ok = fchmod(fd, mode) == 0))
		step = "set the mode of";
	if (ok && !(ok = fsync(fd) == 0))
		step = "fsync";
	int err = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		step = "close";
		err = errno;
	}
	if (ok && !(ok = rename(tmp, path) == 0)) {
		step = "rename";
		err = errno;
	}
	if (!ok) {
		unlink(tmp);
		fv_status s = fv_error(FV_ERR_IO, "%s: cannot %s the temporary file %s: %s", path, step,
		                       tmp, strerror(err));
		free(tmp);
		return s;
	}
	free(tmp);
	return fv__sync_dir(path);
}
