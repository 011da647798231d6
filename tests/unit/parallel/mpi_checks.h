/* mpi_checks.h: what the parts of the mpi_collectives program share. */
#ifndef FOVEA_TEST_MPI_CHECKS_H
#define FOVEA_TEST_MPI_CHECKS_H

/* Count a failed check, saying which rank and what. */
void mpi_check(int ok, const char *what, int rank);
/* mpi_sync_batchnorm.c: SyncBatchNorm against one process's batch norm. */
void mpi_sync_batchnorm_checks(int rank, int size);

#endif
