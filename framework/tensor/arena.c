/*
** arena.c: the per-step context's memory.  Every activation, gradient and
** tape node of a step is bump-allocated here and dropped at once by
** fv_ctx_reset().  A reset after a step that needed several chunks merges
** them into one chunk of the total size, so from the second identical step
** on a training loop performs no allocation at all.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor_internal.h"
#include "base/base_internal.h"

#define FV_ARENA_ALIGN 64
#define FV_ARENA_MIN_CHUNK ((size_t)1 << 20)

struct fv_arena_chunk {
	fv_arena_chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	unsigned char *base;
};

static fv_arena_chunk *chunk_new(fv_ctx *ctx, size_t size)
{
	fv_arena_chunk *c = fv__malloc(sizeof *c);
	if (c == NULL)
		return NULL;
	c->base = fv__aligned_alloc(FV_ARENA_ALIGN, (size + FV_ARENA_ALIGN - 1) / FV_ARENA_ALIGN * FV_ARENA_ALIGN);
	if (c->base == NULL) {
		free(c);
		return NULL;
	}
	fv__memory_charge(c->base);
	c->size = size;
	c->used = 0;
	c->next = NULL;
	ctx->malloc_count++;
	return c;
}

static void chunks_free(fv_arena_chunk *c)
{
	while (c != NULL) {
		fv_arena_chunk *next = c->next;
		fv__memory_release(c->base);
		free(c->base);
		free(c);
		c = next;
	}
}

fv_ctx *fv_ctx_new(void)
{
	fv_ctx *ctx = fv__calloc(1, sizeof *ctx);
	if (ctx == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory creating a context");
		return NULL;
	}
	ctx->grad_enabled = true;
	fv_ctx_seed(ctx, 0);
	return ctx;
}

void fv_ctx_free(fv_ctx *ctx)
{
	if (ctx == NULL)
		return;
	chunks_free(ctx->chunks);
	free(ctx);
}

void fv_ctx_reset(fv_ctx *ctx)
{
	size_t total = 0;
	for (fv_arena_chunk *c = ctx->chunks; c != NULL; c = c->next)
		total += c->size;
	if (ctx->chunks != NULL && ctx->chunks->next != NULL) {
		/* the merge only saves the next step its allocations: when it
		** fails the arena starts empty and grows again (benign) */
		chunks_free(ctx->chunks);
		fv__benign_begin();
		ctx->chunks = chunk_new(ctx, total);
		fv__benign_end();
	} else if (ctx->chunks != NULL) {
		ctx->chunks->used = 0;
	}
	ctx->used_total = 0;
	ctx->tape = NULL;
}

void *fv_ctx_alloc(fv_ctx *ctx, size_t bytes)
{
	size_t need = (bytes + FV_ARENA_ALIGN - 1) / FV_ARENA_ALIGN * FV_ARENA_ALIGN;
	fv_arena_chunk *c = ctx->chunks;
	if (need == 0)
		need = FV_ARENA_ALIGN;
	if (c == NULL || c->size - c->used < need) {
		/* the arena holds one step's activations and gradients: this is
		** where a batch or a stimulus too large for the machine shows.
		** Doubling keeps the number of chunks small, but near the limit
		** the chunk is only as large as the request. */
		char what[96];
		snprintf(what, sizeof what, "one step's activations and gradients (%.1f MiB so far)",
		         (double)ctx->used_total / 0x1p20);
		if (fv__memory_check((double)need, what) != FV_OK)
			return NULL;
		size_t size = c ? c->size * 2 : FV_ARENA_MIN_CHUNK;
		if (size < need || !fv__memory_fits((double)size))
			size = need;
		fv_arena_chunk *fresh = chunk_new(ctx, size);
		if (fresh == NULL) {
			fv_error(FV_ERR_NOMEM, "out of memory: the step arena could not grow by %zu bytes",
			         size);
			return NULL;
		}
		fresh->next = c;
		ctx->chunks = c = fresh;
	}
	void *p = c->base + c->used;
	c->used += need;
	ctx->used_total += need;
	return p;
}

size_t fv_ctx_arena_capacity(const fv_ctx *ctx)
{
	size_t total = 0;
	for (const fv_arena_chunk *c = ctx->chunks; c != NULL; c = c->next)
		total += c->size;
	return total;
}

size_t fv_ctx_malloc_count(const fv_ctx *ctx)
{
	return ctx->malloc_count;
}

bool fv_ctx_set_grad_enabled(fv_ctx *ctx, bool enabled)
{
	bool old = ctx->grad_enabled;
	ctx->grad_enabled = enabled;
	return old;
}

bool fv_ctx_grad_enabled(const fv_ctx *ctx)
{
	return ctx->grad_enabled;
}
