/*
** profile.c: the per-op timers of the tape (fovea/profile.h).
**
** The hooks sit in fv_op_record and the tape's backward loop behind one
** flag, so that they cost nothing measurable when off.  An op's forward
** has no hook of its own (ops are plain functions): its time is the time
** from the previous recorded op's end, which in a recorded forward is the
** op plus the module code around it.
*/
#include <string.h>
#include <time.h>

#include "fovea/profile.h"
#include "tensor/tensor_internal.h"

#define MAX_ENTRIES 512

bool fv__profiling;

static struct {
	fv_profile_entry entries[MAX_ENTRIES];
	size_t count;
	double mark, cpu_mark;                   /* the previous forward op's end */
	double flops, dense_flops, extra_bytes;  /* declared by the running op */
	fv_profile_entry sorted[MAX_ENTRIES];
} prof;

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Wall-clock and CPU time now. */
static void now_ms(double *wall, double *cpu)
{
	*wall = clock_ms(CLOCK_MONOTONIC);
	*cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

void fv_profile_start(void)
{
	memset(&prof, 0, sizeof prof);
	now_ms(&prof.mark, &prof.cpu_mark);
	fv__profiling = true;
}

void fv_profile_stop(void)
{
	fv__profiling = false;
}

void fv_profile_mark(void)
{
	now_ms(&prof.mark, &prof.cpu_mark);
	prof.flops = prof.dense_flops = prof.extra_bytes = 0;
}

void fv__profile_note(double flops, double dense_flops, double extra_bytes)
{
	prof.flops += flops;
	prof.dense_flops += dense_flops;
	prof.extra_bytes += extra_bytes;
}

void fv__profile_discard(void)
{
	prof.flops = prof.dense_flops = prof.extra_bytes = 0;
}

/* The entry of (op, direction, shape), made on first use; NULL when full. */
static fv_profile_entry *entry_of(const fv_op_def *def, bool backward, const fv_tensor *out)
{
	for (size_t i = 0; i < prof.count; i++) {
		fv_profile_entry *e = &prof.entries[i];
		if (e->op == def->name && e->backward == backward && e->ndim == out->ndim &&
		    memcmp(e->shape, out->shape, (size_t)out->ndim * sizeof *out->shape) == 0)
			return e;
	}
	if (prof.count == MAX_ENTRIES)
		return NULL;
	fv_profile_entry *e = &prof.entries[prof.count++];
	*e = (fv_profile_entry){.op = def->name, .backward = backward, .ndim = out->ndim};
	memcpy(e->shape, out->shape, (size_t)out->ndim * sizeof *out->shape);
	return e;
}

static double bytes_of(const fv_tensor *t)
{
	return t != NULL ? (double)t->numel * (double)sizeof(fv_real) : 0;
}

/* Adds the call that ended now and the declared counts to e's op. */
static void account(const fv_op_def *def, bool backward, const fv_tensor *out,
                    const double t0[2], double bytes)
{
	double t1[2];
	now_ms(&t1[0], &t1[1]);
	fv_profile_entry *e = entry_of(def, backward, out);
	if (e != NULL) {
		e->calls++;
		e->ms += t1[0] - t0[0];
		e->cpu_ms += t1[1] - t0[1];
		e->flops += prof.flops;
		e->dense_flops += prof.dense_flops;
		e->bytes += bytes + prof.extra_bytes;
	}
	fv__profile_discard();
	now_ms(&prof.mark, &prof.cpu_mark);
}

void fv__profile_forward(const fv_op_def *def, const fv_tensor *out, int n_srcs,
                         fv_tensor *const *srcs)
{
	double bytes = bytes_of(out);
	for (int i = 0; i < n_srcs; i++)
		bytes += bytes_of(srcs[i]);
	double t0[2] = {prof.mark, prof.cpu_mark};
	account(def, false, out, t0, bytes);
}

void fv__profile_backward_begin(double t0[2])
{
	fv__profile_discard();
	now_ms(&t0[0], &t0[1]);
}

void fv__profile_backward_end(const fv_node *n, fv_tensor *const *src_grads, const double t0[2])
{
	double bytes = bytes_of(n->out);
	for (int i = 0; i < n->n_srcs; i++)
		bytes += bytes_of(n->srcs[i]) + bytes_of(src_grads[i]);
	account(n->def, true, n->out, t0, bytes);
}

const fv_profile_entry *fv_profile_entries(size_t *count)
{
	size_t k = 0;
	for (int backward = 0; backward < 2; backward++)
		for (size_t i = 0; i < prof.count; i++)
			if (prof.entries[i].backward == (backward != 0))
				prof.sorted[k++] = prof.entries[i];
	*count = k;
	return prof.sorted;
}
