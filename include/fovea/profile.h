/*
** fovea/profile.h: per-op timers of the tape, for finding where a training
** step's time goes (fovea-bench --profile).
**
** Compiled in, off unless started: when off an op pays one test of a flag.
** While on, every op recorded on a tape is timed forward (from the end of
** the previous recorded op, or fv_profile_mark(), to its own recording) and
** backward (its backward function), and its calls are summed under its
** name, direction and output shape.  One thread's ops at a time.
**
** FLOPs are counted by the ops that declare them (the convolutions: what
** they perform, "actual", and what a dense conv3d of the same shape
** performs, "dense"); 0 for the others.  Bytes are what the op's operands
** take (sources and output forward; the output's gradient, sources and
** source gradients backward) plus what the op declares (saved buffers):
** the least traffic the op can have, not a measurement of it.
*/
#ifndef FOVEA_PROFILE_H
#define FOVEA_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/fovea.h"
#include "fovea/tensor.h"

typedef struct fv_profile_entry {
	const char *op;       /* the op's name */
	bool backward;
	int ndim;             /* the output's shape */
	int64_t shape[FV_MAX_DIMS];
	int64_t calls;
	double ms;            /* wall-clock, summed over calls */
	double cpu_ms;        /* the process's CPU time (all threads), summed: on a
	                      ** machine shared with other jobs the steadier one */
	double flops, dense_flops, bytes; /* summed over calls */
} fv_profile_entry;

/* Clear the counters and start timing. */
FV_API void fv_profile_start(void);
/* Stop timing; the counters stay. */
FV_API void fv_profile_stop(void);
/* The forward time of the next recorded op starts now. */
FV_API void fv_profile_mark(void);
/* The entries so far, forward ones in the order first seen, then backward
** ones; valid until the next fv_profile_start. */
FV_API const fv_profile_entry *fv_profile_entries(size_t *count);

#endif /* FOVEA_PROFILE_H */
