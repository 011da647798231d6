/*
** alloc.c: every heap allocation of libfovea goes through here, so that a
** test can make the n-th one fail and check that each caller turns the
** failure into FV_ERR_NOMEM with a message, frees what it had and crashes
** nothing (the fault injection of SQLite's test harness).  Memory from
** these functions is plain malloc memory, released with free().
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"

/* Allocations made since the last fv_alloc_fail_at(); which one fails
** (0: none) and whether every later one fails too.  Atomic because the
** OpenMP loops of the ops may allocate from several threads. */
static atomic_long alloc_count;
static atomic_long alloc_fail_at;
static atomic_bool alloc_sticky;

/* Depth of fv__benign_begin() on this thread. */
static _Thread_local int benign_depth;

void fv__benign_begin(void)
{
	benign_depth++;
}

void fv__benign_end(void)
{
	benign_depth--;
}

long fv_alloc_fail_at(long n, bool sticky)
{
	long made = atomic_exchange(&alloc_count, 0);
	atomic_store(&alloc_sticky, sticky);
	atomic_store(&alloc_fail_at, n > 0 ? n : 0);
	return made;
}

/* Whether this allocation is one a test asked to fail.  Benign ones are
** neither failed nor counted: a test that fails each allocation in turn
** expects the job to fail, which theirs by design does not. */
static bool injected_failure(void)
{
	if (benign_depth > 0)
		return false;
	long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
	long i = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
	if (at == 0)
		return false;
	return i == at || (i > at && atomic_load_explicit(&alloc_sticky, memory_order_relaxed));
}

void *fv__malloc(size_t n)
{
	return injected_failure() ? NULL : malloc(n);
}

void *fv__calloc(size_t n, size_t size)
{
	return injected_failure() ? NULL : calloc(n, size);
}

void *fv__realloc(void *p, size_t n)
{
	return injected_failure() ? NULL : realloc(p, n);
}

void *fv__aligned_alloc(size_t alignment, size_t n)
{
	return injected_failure() ? NULL : aligned_alloc(alignment, n);
}

char *fv__strdup(const char *s)
{
	return injected_failure() ? NULL : strdup(s);
}

char *fv__strndup(const char *s, size_t n)
{
	return injected_failure() ? NULL : strndup(s, n);
}
