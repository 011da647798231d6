/*
** run_lock.c: one writer per run directory.  Two trainings writing into
** the same paths.output_dir would leave a mixture of both runs' files, so
** a training holds an exclusive flock(2) on DIR/.fovea.lock for as long as
** it runs.  flock rather than a pid file alone: the kernel releases the
** lock when the holder exits or is killed, so a crashed run never leaves a
** stale lock behind.  The holder writes its pid into the file, only so the
** refusal can name it.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "train/trainer_internal.h"

#define LOCK_NAME ".fovea.lock"

/* The pid the holder wrote, or 0 when unreadable (it may be writing it). */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long pid = 0;
	return sscanf(buf, "%ld", &pid) == 1 ? pid : 0;
}

fv_status fv__run_lock(const char *dir, int *fd_out)
{
	char path[4200];
	*fd_out = -1;
	if (snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME) >= (int)sizeof path)
		return fv_error(FV_ERR_ARG, "output directory name too long: %s", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return fv_error(FV_ERR_IO, "cannot open the lock file %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		long pid = err == EWOULDBLOCK ? holder_pid(fd) : 0;
		close(fd);
		if (err != EWOULDBLOCK)
			return fv_error(FV_ERR_IO, "cannot lock %s: %s", path, strerror(err));
		char who[48] = "another process";
		if (pid > 0)
			snprintf(who, sizeof who, "process %ld", pid);
		return fv_error(FV_ERR_IO, "%s is in use by another training (%s holds %s): wait for "
		                "it to finish, or choose another paths.output_dir", dir, who, LOCK_NAME);
	}
	/* the pid, for the message above; a failure here costs only that */
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		/* nothing to do: the lock itself holds */
	}
	*fd_out = fd;
	return FV_OK;
}

void fv__run_unlock(int fd)
{
	/* closing the last descriptor releases the flock; the file stays, as
	** removing it would race with a writer that just opened it */
	if (fd >= 0)
		close(fd);
}
