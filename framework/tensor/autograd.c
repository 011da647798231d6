/*
** autograd.c: the tape and reverse-mode differentiation.
**
** Ops append a node to the context's tape when they need grad.  Backward
** walks the tape newest-first; since every node's sources were made before
** it, this order is a valid reverse topological order.  A node whose output
** received no gradient is skipped.
*/
#include <string.h>

#include "tensor/tensor_internal.h"

bool fv_op_needs_grad(const fv_ctx *ctx, int n_srcs, fv_tensor *const *srcs)
{
	if (!ctx->grad_enabled)
		return false;
	for (int i = 0; i < n_srcs; i++)
		if (srcs[i] != NULL && srcs[i]->requires_grad)
			return true;
	return false;
}

fv_status fv_op_record(fv_ctx *ctx, fv_tensor *out, const fv_op_def *def, int n_srcs,
                       fv_tensor *const *srcs, const void *aux, size_t aux_size)
{
	if (n_srcs > FV_MAX_OP_SRCS)
		return fv_error(FV_ERR_ARG, "op %s has %d sources; at most %d are supported", def->name,
		                n_srcs, FV_MAX_OP_SRCS);
	if (!fv_op_needs_grad(ctx, n_srcs, srcs)) {
		if (fv__profiling)
			fv__profile_discard();
		return FV_OK;
	}
	fv_node *node = fv_ctx_alloc(ctx, sizeof *node);
	if (node == NULL)
		return FV_ERR_NOMEM;
	memset(node, 0, sizeof *node);
	node->def = def;
	node->out = out;
	node->n_srcs = n_srcs;
	for (int i = 0; i < n_srcs; i++)
		node->srcs[i] = srcs[i];
	if (aux_size > 0) {
		node->aux = fv_ctx_alloc(ctx, aux_size);
		if (node->aux == NULL)
			return FV_ERR_NOMEM;
		memcpy(node->aux, aux, aux_size);
	}
	node->prev = ctx->tape;
	ctx->tape = node;
	out->node = node;
	out->requires_grad = true;
	if (fv__profiling)
		fv__profile_forward(def, out, n_srcs, srcs);
	return FV_OK;
}

fv_tensor *fv__grad_of(fv_ctx *ctx, fv_tensor *t)
{
	if (t->grad != NULL)
		return t->grad;
	if (t->persistent && t->spare_grad != NULL) {
		t->grad = t->spare_grad;
		t->spare_grad = NULL;
		memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(fv_real));
	} else if (t->persistent) {
		t->grad = fv_tensor_new(t->ndim, t->shape);
	}
	else
		t->grad = fv_ctx_zeros(ctx, t->ndim, t->shape);
	return t->grad;
}

void fv__op_assigns_fresh_grads(fv_tensor *out)
{
	if (out != NULL && out->node != NULL)
		out->node->assigns_fresh = true;
}

/* Source i's gradient for node n's backward.  A context tensor's first
** gradient of the pass is left unset for an op that sets it (its bit in
** *fresh), zero-filled for one that adds to it.  A source listed twice is
** always zero-filled: the op's second write must add. */
static fv_tensor *source_grad(fv_ctx *ctx, const fv_node *n, int i, unsigned *fresh)
{
	fv_tensor *s = n->srcs[i];
	bool repeated = false;
	for (int k = 0; k < n->n_srcs; k++)
		repeated |= k != i && n->srcs[k] == s;
	if (s->grad != NULL || s->persistent || !n->assigns_fresh || repeated)
		return fv__grad_of(ctx, s);
	s->grad = fv_ctx_empty(ctx, s->ndim, s->shape);
	*fresh |= 1u << i;
	return s->grad;
}

/* Intermediate gradients belong to one backward pass; leaves accumulate. */
static void clear_intermediate_grads(fv_ctx *ctx)
{
	for (fv_node *n = ctx->tape; n != NULL; n = n->prev)
		n->out->grad = NULL;
}

static fv_status run_tape(fv_ctx *ctx)
{
	fv_tensor *src_grads[FV_MAX_OP_SRCS];
	for (fv_node *n = ctx->tape; n != NULL; n = n->prev) {
		if (n->out->grad == NULL)
			continue;
		unsigned fresh = 0;
		for (int i = 0; i < n->n_srcs; i++) {
			fv_tensor *s = n->srcs[i];
			src_grads[i] = NULL;
			if (s != NULL && s->requires_grad) {
				src_grads[i] = source_grad(ctx, n, i, &fresh);
				if (src_grads[i] == NULL)
					return FV_ERR_NOMEM;
			}
		}
		ctx->fresh_grads = fresh;
		double t0[2] = {0, 0};
		if (fv__profiling)
			fv__profile_backward_begin(t0);
		fv_status rc = n->def->backward(ctx, n->out, n->srcs, src_grads, n->aux);
		if (fv__profiling)
			fv__profile_backward_end(n, src_grads, t0);
		ctx->fresh_grads = 0;
		if (rc != FV_OK) {
			fv_error_prefix("backward of %s: ", n->def->name);
			return rc;
		}
	}
	return FV_OK;
}

fv_status fv_backward_with(fv_ctx *ctx, fv_tensor *out, const fv_tensor *cotangent)
{
	if (out == NULL)
		return fv_error(FV_ERR_ARG, "fv_backward: no output (an earlier op failed?)");
	if (out->numel != cotangent->numel)
		return fv_error(FV_ERR_SHAPE, "fv_backward: cotangent %s does not match output %s",
		                fv_shape_str(cotangent->ndim, cotangent->shape),
		                fv_shape_str(out->ndim, out->shape));
	if (!out->requires_grad)
		return fv_error(FV_ERR_ARG, "fv_backward: the output does not require grad "
		                            "(nothing it depends on requires grad, or grad mode was off)");
	clear_intermediate_grads(ctx);
	fv_tensor *g = fv__grad_of(ctx, out);
	if (g == NULL)
		return FV_ERR_NOMEM;
	for (int64_t i = 0; i < g->numel; i++)
		g->data[i] += cotangent->data[i];
	return run_tape(ctx);
}

fv_status fv_backward(fv_ctx *ctx, fv_tensor *loss)
{
	if (loss == NULL)
		return fv_error(FV_ERR_ARG, "fv_backward: no loss (an earlier op failed?)");
	if (loss->numel != 1)
		return fv_error(FV_ERR_SHAPE, "fv_backward: the loss has shape %s; a scalar is needed",
		                fv_shape_str(loss->ndim, loss->shape));
	fv_real one = 1;
	fv_tensor seed = {.data = &one, .ndim = 0, .numel = 1};
	return fv_backward_with(ctx, loss, &seed);
}
