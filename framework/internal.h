/*
** internal.h: what the framework's files share and plugins never see:
** the tape node, the context layout, and small shape helpers for ops.
*/
#ifndef FOVEA_INTERNAL_H
#define FOVEA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/fovea.h"
#include "fovea/tensor.h"

/* One recorded op: the output it produced and how to send gradient back. */
struct fv_node {
	const fv_op_def *def;
	fv_tensor *out;
	int n_srcs;
	fv_tensor *srcs[FV_MAX_OP_SRCS];
	void *aux;
	fv_node *prev; /* the tape is a list, newest first, living in the arena */
};

typedef struct fv_arena_chunk fv_arena_chunk;

struct fv_ctx {
	fv_arena_chunk *chunks; /* newest first */
	size_t used_total;      /* bytes handed out since the last reset */
	size_t malloc_count;    /* chunk allocations, for the steady-state test */
	fv_node *tape;          /* newest op */
	bool grad_enabled;
	uint64_t rng[4];        /* xoshiro256** state */
	bool have_spare_normal;
	double spare_normal;
};

/* Row-major strides of a shape, in elements. */
void fv__strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t fv__numel(int ndim, const int64_t *shape);
/* Normalise a possibly negative axis; -1 when out of range. */
int fv__axis(int axis, int ndim);
/* A context tensor struct sharing `data` (for reshape-like views). */
fv_tensor *fv__ctx_view(fv_ctx *ctx, fv_tensor *src, int ndim, const int64_t *shape);
/* The gradient buffer of `t`, created zero-filled on first use (arena for
** context tensors, heap for persistent ones). */
fv_tensor *fv__grad_of(fv_ctx *ctx, fv_tensor *t);

/* Shared argument checks of every op: NULL inputs propagate silently. */
#define FV_CHECK_INPUT(t)            \
	do {                          \
		if ((t) == NULL)      \
			return NULL;  \
	} while (0)

#endif /* FOVEA_INTERNAL_H */
