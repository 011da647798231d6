/*
** mpi_collectives.c: fovea/parallel.h's collectives across real processes,
** run by tests/cli/mpi_test.sh under `mpirun -np N` (case collectives).
** Each rank contributes values that depend on its rank, and checks what
** comes back; the exit status is the number of failed checks (on any
** rank, mpirun's status is non-zero).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/parallel.h"
#include "mpi_checks.h"

static int failures;

void mpi_check(int ok, const char *what, int rank)
{
	if (!ok) {
		fprintf(stderr, "rank %d: %s\n", rank, what);
		failures++;
	}
}

/* r + 1 bytes of value r from rank r, gathered at the last rank. */
static void gather(int rank, int size)
{
	size_t *counts = malloc((size_t)size * sizeof *counts), total = 0;
	for (int r = 0; r < size; r++)
		total += counts[r] = (size_t)r + 1;
	unsigned char *send = malloc((size_t)rank + 1), *recv = malloc(total);
	memset(send, rank, (size_t)rank + 1);
	mpi_check(fv_parallel_gather(send, recv, counts, size - 1) == FV_OK, "gather failed", rank);
	for (int r = 0, at = 0; rank == size - 1 && r < size; at += r + 1, r++)
		for (int k = 0; k <= r; k++)
			mpi_check(recv[at + k] == r, "gather: wrong byte", rank);
	free(counts);
	free(send);
	free(recv);
}

int main(void)
{
	if (fv_parallel_init() != FV_OK) {
		fprintf(stderr, "%s\n", fv_errmsg());
		return 1;
	}
	int rank = fv_parallel_rank(), size = fv_parallel_size();
	double d[2] = {rank, 1};
	float f[3] = {(float)rank, 0.5f, -1};
	mpi_check(fv_parallel_allreduce_sum(d, 2) == FV_OK, "allreduce failed", rank);
	mpi_check(d[0] == size * (size - 1) / 2.0 && d[1] == size, "allreduce (double): wrong sum", rank);
	mpi_check(fv_parallel_allreduce_sum_float(f, 3) == FV_OK, "allreduce failed", rank);
	mpi_check(f[0] == size * (size - 1) / 2.0f && f[1] == 0.5f * size && f[2] == -size,
	      "allreduce (float): wrong sum", rank);
	char word[8] = "";
	if (rank == size - 1)
		strcpy(word, "fovea");
	mpi_check(fv_parallel_broadcast(word, sizeof word, size - 1) == FV_OK, "broadcast failed", rank);
	mpi_check(strcmp(word, "fovea") == 0, "broadcast: wrong text", rank);
	mpi_check(fv_parallel_broadcast(word, 1, size) == FV_ERR_ARG, "broadcast: a bad root passed",
	      rank);
	gather(rank, size);
	mpi_sync_batchnorm_checks(rank, size);
	mpi_check(fv_parallel_barrier() == FV_OK, "barrier failed", rank);
	if (rank == 0)
		printf("collectives over %d processes: %s\n", size, failures ? "FAILED" : "ok");
	fv_parallel_finalize();
	return failures;
}
