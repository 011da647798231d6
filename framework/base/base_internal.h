/*
** base_internal.h: the small services every framework area uses: atomic
** file writes (atomic_file.c), growing strings (text.c) and the
** allocator (alloc.c).
*/
#ifndef FOVEA_BASE_INTERNAL_H
#define FOVEA_BASE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "fovea/fovea.h"

/* The allocator of every framework file (alloc.c): malloc and friends,
** with the fault injection of fv_alloc_fail_at().  Free with free(). */
void *fv__malloc(size_t n);
void *fv__calloc(size_t n, size_t size);
void *fv__realloc(void *p, size_t n);
void *fv__aligned_alloc(size_t alignment, size_t n);
char *fv__strdup(const char *s);
char *fv__strndup(const char *s, size_t n);

/* Between these, allocations are benign (SQLite's sqlite3BeginBenignMalloc):
** the caller absorbs their failure by design (a string that only serves
** messages falls back to a shorter one, an optimisation is skipped), so
** fault injection leaves them alone.  They nest. */
void fv__benign_begin(void);
void fv__benign_end(void);

/* The job's memory (memory_limit.c).  Persistent tensor data and arena
** chunks are charged when allocated and released when freed.  A request
** of `bytes` (a double, so that an absurd size cannot wrap) that would
** bring what the job holds above its budget is refused before allocating
** by fv__memory_check: FV_ERR_NOMEM with "WHAT needs N GiB, ... more than
** ...".  fv__memory_fits answers the same question without a message
** (false for a malformed FOVEA_MAX_MEMORY, which the check reports). */
void fv__memory_charge(const void *p);
void fv__memory_release(const void *p);
/* Bytes a job will need for what it holds and counted as held until
** unreserved: a parameter's gradient and optimizer state. */
void fv__memory_reserve(size_t bytes);
void fv__memory_unreserve(size_t bytes);
fv_status fv__memory_check(double bytes, const char *what);
bool fv__memory_fits(double bytes);

/* What a path names (paths.c): false for anything missing or else. */
bool fv__is_dir(const char *path);
bool fv__is_file(const char *path);
/* mkdir -p: create `path` and its missing parents. */
fv_status fv__make_dirs(const char *path);

/* Write `parts` to `path` atomically (temp file, fsync, rename). */
fv_status fv__atomic_write(const char *path, size_t n_parts, const void *const *parts,
                           const size_t *sizes);
/* fsync the directory holding `path`, after a rename into it. */
fv_status fv__sync_dir(const char *path);

/* A growing string; after a failed allocation every call is a no-op and
** `failed` stays set, so a sequence of appends is checked once. */
typedef struct fv__text {
	char *s;
	size_t len, cap;
	bool failed;
} fv__text;

void fv__text_printf(fv__text *t, const char *fmt, ...) FV_PRINTF(2, 3);
/* The string (the caller frees), or NULL with an FV_ERR_NOMEM message
** naming `what` if an append failed. */
char *fv__text_take(fv__text *t, const char *what);
void fv__text_free(fv__text *t);

#endif /* FOVEA_BASE_INTERNAL_H */
