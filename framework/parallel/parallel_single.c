/*
** parallel_single.c: fovea/parallel.h without MPI.  One process, rank 0
** of size 1: a reduction or broadcast leaves the data as it is, a gather
** copies rank 0's part.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/parallel.h"

bool fv_parallel_built(void) { return false; }
fv_status fv_parallel_init(void) { return FV_OK; }
void fv_parallel_finalize(void) {}
int fv_parallel_rank(void) { return 0; }
int fv_parallel_size(void) { return 1; }
fv_status fv_parallel_barrier(void) { return FV_OK; }

fv_status fv_parallel_allreduce_sum(double *v, size_t n)
{
	(void)v;
	(void)n;
	return FV_OK;
}

fv_status fv_parallel_allreduce_sum_float(float *v, size_t n)
{
	(void)v;
	(void)n;
	return FV_OK;
}

fv_status fv_parallel_broadcast(void *buf, size_t bytes, int root)
{
	(void)buf;
	(void)bytes;
	return root == 0 ? FV_OK : fv_error(FV_ERR_ARG, "broadcast: root %d of 1 process", root);
}

fv_status fv_parallel_gather(const void *send, void *recv, const size_t *counts, int root)
{
	if (root != 0)
		return fv_error(FV_ERR_ARG, "gather: root %d of 1 process", root);
	if (counts[0] > 0)
		memmove(recv, send, counts[0]);
	return FV_OK;
}

void fv_parallel_abort(int code) { exit(code); }
