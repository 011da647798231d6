/*
** test_parallel.c: fovea/parallel.h in a process no launcher started: one
** process, rank 0 of 1, whether or not libfovea has MPI (the MPI runs are
** the 'mpi' suite's CLI tests).
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/parallel.h"

static void no_launcher(void)
{
	unsetenv("OMPI_COMM_WORLD_SIZE");
	unsetenv("PMIX_RANK");
	unsetenv("PMI_RANK");
	unsetenv("PMI_SIZE");
	cr_assert_eq(fv_parallel_init(), FV_OK);
	cr_assert_eq(fv_parallel_init(), FV_OK, "a second init does nothing");
}

TestSuite(parallel, .init = no_launcher, .fini = fv_parallel_finalize);

Test(parallel, one_process)
{
	cr_expect_eq(fv_parallel_rank(), 0);
	cr_expect_eq(fv_parallel_size(), 1);
	cr_expect_eq(fv_parallel_barrier(), FV_OK);
}

Test(parallel, reductions_keep_the_values)
{
	double d[3] = {1.5, -2, 1e300};
	float f[2] = {0.25f, 3};
	cr_assert_eq(fv_parallel_allreduce_sum(d, 3), FV_OK);
	cr_assert_eq(fv_parallel_allreduce_sum_float(f, 2), FV_OK);
	cr_expect(d[0] == 1.5 && d[1] == -2 && d[2] == 1e300);
	cr_expect(f[0] == 0.25f && f[1] == 3);
}

Test(parallel, broadcast_from_rank_0_only)
{
	char buf[4] = "abc";
	cr_expect_eq(fv_parallel_broadcast(buf, sizeof buf, 0), FV_OK);
	cr_expect_str_eq(buf, "abc");
	cr_expect_eq(fv_parallel_broadcast(buf, sizeof buf, 1), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "broadcast: root 1 of 1 process") != NULL, "%s", fv_errmsg());
}

Test(parallel, gather_copies_rank_0s_part)
{
	const int send[3] = {7, 8, 9};
	int recv[3] = {0, 0, 0};
	size_t counts[1] = {sizeof send};
	cr_assert_eq(fv_parallel_gather(send, recv, counts, 0), FV_OK);
	cr_expect(recv[0] == 7 && recv[1] == 8 && recv[2] == 9);
	cr_expect_eq(fv_parallel_gather(send, recv, counts, 2), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "gather: root 2 of 1 process") != NULL, "%s", fv_errmsg());
}
