/*
** test_run_lock.c: one writer per run directory (framework/train/run_lock.c,
** issue 12 item 12): a second lock on a held directory is refused with a
** message naming the directory and the holder's pid, and the lock is free
** again once the holder closes it or dies.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "expect_error.h"
#include "train/trainer_internal.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/fv_run_lock_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(run_lock, .init = make_dir, .fini = remove_dir);

Test(run_lock, second_writer_refused_with_the_holders_pid)
{
	int fd, fd2;
	cr_assert_eq(fv__run_lock(dir, &fd), FV_OK, "%s", fv_errmsg());
	cr_assert_geq(fd, 0);
	/* flock locks belong to the open file: a second open conflicts even
	** within one process */
	char pid[64];
	snprintf(pid, sizeof pid, "process %ld holds .fovea.lock", (long)getpid());
	EXPECT_ERROR(fv__run_lock(dir, &fd2), FV_ERR_IO, dir, "is in use by another training", pid,
	             "paths.output_dir");
	cr_assert_eq(fd2, -1);
	fv__run_unlock(fd);
	cr_assert_eq(fv__run_lock(dir, &fd2), FV_OK, "%s", fv_errmsg());
	fv__run_unlock(fd2);
}

Test(run_lock, released_when_the_holder_is_killed)
{
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		int fd;
		char c = fv__run_lock(dir, &fd) == FV_OK ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	cr_assert_eq(read(ready[0], &c, 1), 1);
	cr_assert_eq(c, 'y');
	int fd;
	char pid[64];
	snprintf(pid, sizeof pid, "process %ld", (long)child);
	EXPECT_ERROR(fv__run_lock(dir, &fd), FV_ERR_IO, pid);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert_eq(fv__run_lock(dir, &fd), FV_OK, "a killed holder left the lock: %s", fv_errmsg());
	fv__run_unlock(fd);
	close(ready[0]);
	close(ready[1]);
}

Test(run_lock, missing_directory)
{
	int fd;
	char missing[128];
	snprintf(missing, sizeof missing, "%s/no/such", dir);
	EXPECT_ERROR(fv__run_lock(missing, &fd), FV_ERR_IO, "cannot open the lock file", missing);
}
