/*
** parallel_mpi.c: fovea/parallel.h over MPI (Open MPI from Debian).
**
** MPI is joined only when a launcher started this process: calling
** MPI_Init in a plain `fovea` run would make Open MPI start a singleton
** runtime (slow, and noisy without a network), and a plain run must stay
** what it was.  The launcher's environment says whether there is a job.
** MPI counts in int: larger transfers go in pieces of at most CHUNK.
*/
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/parallel.h"

#define CHUNK ((size_t)1 << 30)

static bool joined;

bool fv_parallel_built(void) { return true; }

/* Open MPI's mpirun, PMIx (srun --mpi=pmix) and PMI-1/2 (srun, MPICH's
** hydra) each export one of these to the processes they start. */
static bool launched(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
	                                   "PMI_SIZE", NULL};
	for (const char *const *v = vars; *v != NULL; v++)
		if (getenv(*v) != NULL)
			return true;
	return false;
}

fv_status fv_parallel_init(void)
{
	int already = 0;
	if (joined || !launched())
		return FV_OK;
	MPI_Initialized(&already);
	int provided = 0;
	/* the tensor ops run OpenMP threads, but only the main thread calls MPI */
	if (!already && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return fv_error(FV_ERR_IO, "MPI_Init_thread failed: cannot join the launcher's job");
	joined = true;
	return FV_OK;
}

void fv_parallel_finalize(void)
{
	int done = 0;
	if (!joined)
		return;
	MPI_Finalized(&done);
	if (!done)
		MPI_Finalize();
	joined = false;
}

int fv_parallel_rank(void)
{
	int r = 0;
	if (joined)
		MPI_Comm_rank(MPI_COMM_WORLD, &r);
	return r;
}

int fv_parallel_size(void)
{
	int n = 1;
	if (joined)
		MPI_Comm_size(MPI_COMM_WORLD, &n);
	return n;
}

static fv_status check(int rc, const char *op)
{
	if (rc == MPI_SUCCESS)
		return FV_OK;
	char text[MPI_MAX_ERROR_STRING];
	int len = 0;
	MPI_Error_string(rc, text, &len);
	return fv_error(FV_ERR_IO, "%s: %s", op, text);
}

fv_status fv_parallel_barrier(void)
{
	return joined ? check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier") : FV_OK;
}

static fv_status allreduce(void *v, size_t n, size_t size, MPI_Datatype type)
{
	fv_status st = FV_OK;
	size_t step = CHUNK / size;
	for (size_t at = 0; joined && st == FV_OK && at < n; at += step) {
		int count = (int)(n - at < step ? n - at : step);
		st = check(MPI_Allreduce(MPI_IN_PLACE, (char *)v + at * size, count, type, MPI_SUM,
		                         MPI_COMM_WORLD),
		           "MPI_Allreduce");
	}
	return st;
}

fv_status fv_parallel_allreduce_sum(double *v, size_t n)
{
	return allreduce(v, n, sizeof *v, MPI_DOUBLE);
}

fv_status fv_parallel_allreduce_sum_float(float *v, size_t n)
{
	return allreduce(v, n, sizeof *v, MPI_FLOAT);
}

static fv_status check_root(int root, const char *op)
{
	int n = fv_parallel_size();
	if (root >= 0 && root < n)
		return FV_OK;
	return fv_error(FV_ERR_ARG, "%s: root %d of %d processes", op, root, n);
}

fv_status fv_parallel_broadcast(void *buf, size_t bytes, int root)
{
	fv_status st = check_root(root, "broadcast");
	for (size_t at = 0; joined && st == FV_OK && at < bytes; at += CHUNK) {
		int count = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
		st = check(MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD),
		           "MPI_Bcast");
	}
	return st;
}

/* MPI_Gatherv with byte counts and offsets that must fit an int. */
static fv_status gatherv(const void *send, void *recv, const size_t *counts, int root, int n)
{
	int *cnt = malloc((size_t)n * sizeof *cnt), *off = malloc((size_t)n * sizeof *off);
	fv_status st = cnt && off ? FV_OK : fv_error(FV_ERR_NOMEM, "gather: out of memory");
	size_t total = 0;
	for (int r = 0; st == FV_OK && r < n; r++) {
		if (counts[r] > INT_MAX || total > (size_t)INT_MAX - counts[r])
			st = fv_error(FV_ERR_ARG, "gather: %zu bytes from rank %d: more than MPI's "
			              "2 GiB in one gather", counts[r], r);
		cnt[r] = (int)counts[r];
		off[r] = (int)total;
		total += counts[r];
	}
	int me = fv_parallel_rank();
	if (st == FV_OK)
		st = check(MPI_Gatherv(send, cnt[me], MPI_BYTE, recv, cnt, off, MPI_BYTE, root,
		                       MPI_COMM_WORLD),
		           "MPI_Gatherv");
	free(cnt);
	free(off);
	return st;
}

fv_status fv_parallel_gather(const void *send, void *recv, const size_t *counts, int root)
{
	fv_status st = check_root(root, "gather");
	if (st != FV_OK)
		return st;
	if (!joined) {
		if (counts[0] > 0)
			memmove(recv, send, counts[0]);
		return FV_OK;
	}
	return gatherv(send, recv, counts, root, fv_parallel_size());
}

void fv_parallel_abort(int code)
{
	if (joined)
		MPI_Abort(MPI_COMM_WORLD, code);
	exit(code);
}
