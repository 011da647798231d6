/*
** parallel.h: the few collective operations fovea uses to spread work over
** processes (MPI, launched by `mpirun` or Slurm's `srun`).
**
** A build without MPI (meson -Dmpi=disabled, or no libopenmpi-dev) and a
** process not started by a launcher both see one process: rank 0 of size 1,
** every collective a copy or nothing.  So callers write the parallel code
** once and it runs unchanged alone.
**
** fv_parallel_init() is called once by the program (the `fovea` command
** does it in main); the other functions may be called before it and then
** also see one process.  Collectives must be called by every rank in the
** same order, as MPI requires; they return FV_OK or an error whose message
** names the operation.
*/
#ifndef FOVEA_PARALLEL_H
#define FOVEA_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when libfovea was built with MPI. */
FV_API bool fv_parallel_built(void);

/* Join the launcher's job when there is one (environment variables of Open
** MPI, PMIx or PMI say so); otherwise, and without MPI, nothing.  Calling
** it again does nothing.  fv_parallel_finalize() leaves the job (at exit). */
FV_API fv_status fv_parallel_init(void);
FV_API void fv_parallel_finalize(void);

FV_API int fv_parallel_rank(void);
FV_API int fv_parallel_size(void);

/* v[i] = the sum over ranks of v[i], on every rank. */
FV_API fv_status fv_parallel_allreduce_sum(double *v, size_t n);
FV_API fv_status fv_parallel_allreduce_sum_float(float *v, size_t n);

/* `bytes` bytes of `buf` from rank `root` to every rank. */
FV_API fv_status fv_parallel_broadcast(void *buf, size_t bytes, int root);

FV_API fv_status fv_parallel_barrier(void);

/* Rank r sends counts[r] bytes (`send`); `root` receives them one after
** the other, rank order, in `recv` (ignored on other ranks).  Every rank
** passes the same counts. */
FV_API fv_status fv_parallel_gather(const void *send, void *recv, const size_t *counts,
                                    int root);

/* torch.nn.SyncBatchNorm: fv_batch_norm3d (alpha > 0: fv_batch_norm3d_elu
** with that alpha), except that in training, while syncing is switched on
** and the job has more than one process, every channel is normalised with
** the statistics of the batch all ranks hold together (and the running
** statistics take them).  Every rank must then run the same layers in the
** same order, forward and backward: each is a collective.  Data-parallel
** training switches syncing on (trainer.sync_batchnorm, default true). */
FV_API fv_tensor *fv_parallel_batch_norm3d(fv_ctx *ctx, fv_tensor *x, fv_tensor *weight,
                                           fv_tensor *bias, fv_tensor *running_mean,
                                           fv_tensor *running_var,
                                           fv_tensor *num_batches_tracked, bool training,
                                           double momentum, double eps, double alpha);
FV_API void fv_parallel_set_sync_batchnorm(bool on);

/* End the whole job with exit status `code` (one rank failing while the
** others wait in a collective would hang them). */
FV_API void fv_parallel_abort(int code);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_PARALLEL_H */
