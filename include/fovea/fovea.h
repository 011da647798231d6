/*
** fovea.h: the umbrella header of libfovea, the version and the error model.
**
** Every fallible function of the public API returns an fv_status: FV_OK (0)
** on success, a negative code otherwise.  The message that explains the
** failure (which file, which key, what was expected) is kept per thread and
** read with fv_errmsg(), its code with fv_errcode(); both stay until the
** next failing call on the same thread.  Functions returning pointers return
** NULL on failure and set the message and code the same way, so a caller
** passes the callee's code on with fv_errcode() instead of guessing one.
*/
#ifndef FOVEA_FOVEA_H
#define FOVEA_FOVEA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define FV_VERSION_MAJOR 0
#define FV_VERSION_MINOR 1
#define FV_VERSION_PATCH 0
#define FV_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define FV_API __attribute__((visibility("default")))
#define FV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FV_API
#define FV_PRINTF(fmt, args)
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fv_status {
	FV_OK = 0,
	FV_ERR_NOMEM = -1,   /* allocation failed */
	FV_ERR_IO = -2,      /* a file could not be read or written */
	FV_ERR_FORMAT = -3,  /* a file is malformed or truncated */
	FV_ERR_CONFIG = -4,  /* a configuration is invalid */
	FV_ERR_SHAPE = -5,   /* tensor shapes do not fit an operation */
	FV_ERR_ARG = -6,     /* an argument is out of its documented domain */
	FV_ERR_PLUGIN = -7,  /* a plugin could not be loaded or is incompatible */
	FV_ERR_NOTFOUND = -8 /* a name (component, tensor, key) is unknown */
} fv_status;

/* The message of the last failure on this thread ("" when none). */
FV_API const char *fv_errmsg(void);
/* The code of the last failure on this thread (FV_OK when none). */
FV_API fv_status fv_errcode(void);

/* Record a failure: formats the message, keeps `code` for fv_errcode() and
** returns it, so that error paths read
** `return fv_error(FV_ERR_SHAPE, "fv_add: a %s and b %s", ...);`.  The
** arguments may include fv_errmsg() itself, which is how a caller restates
** a callee's failure in its own words:
** `fv_error(fv_errcode(), "loading %s: %s", path, fv_errmsg())`.
** For a message about a configuration value, fv_error_at() (config.h) puts
** the value's file:line:column in front. */
FV_API fv_status fv_error(fv_status code, const char *fmt, ...) FV_PRINTF(2, 3);
FV_API fv_status fv_verror(fv_status code, const char *fmt, va_list ap);

/* Prefix the current message with more context ("while loading X: ...");
** the code stays. */
FV_API void fv_error_prefix(const char *fmt, ...) FV_PRINTF(1, 2);

/* Forget the last failure: fv_errmsg() is "" and fv_errcode() FV_OK. */
FV_API void fv_clear_error(void);

/* A short name for a status code ("out of memory", "bad format", ...). */
FV_API const char *fv_status_name(fv_status code);

/* For "did you mean ...?" messages: the candidate closest to `name` by edit
** distance, provided it is a plausible typo (at most max(2, len/3) edits and
** fewer than len, len being name's length), else NULL.  NULL entries of
** `candidates` are skipped; a NULL name or list gives NULL. */
FV_API const char *fv_closest_name(const char *name, const char *const *candidates, size_t n);

/* The memory one job may use.  Large requests (a tensor, the activations of
** a step, a model's parameters with gradients and optimizer state, a whole
** stimulus optimisation) are checked before they are allocated and refused
** with FV_ERR_NOMEM and "needs N GiB" when, with what the job already
** holds, they exceed the smaller of this limit and the memory the machine
** had available.  0 (the default) means no limit of the user's
** own; then the environment variable FOVEA_MAX_MEMORY (a size such as 4G)
** is read, if set.  The setting is process-wide. */
FV_API fv_status fv_set_max_memory(size_t bytes);
/* A size in bytes from text: "1073741824", "512M", "4G", "1.5GiB", "2TB"
** (units are powers of 1024).  FV_ERR_ARG for anything else or zero. */
FV_API fv_status fv_parse_size(const char *text, size_t *out);
/* The machine's available memory in bytes (MemAvailable of /proc/meminfo,
** else physical memory), 0 when unknown. */
FV_API size_t fv_memory_available(void);
/* Bytes the process's libfovea holds now: the data of its persistent
** tensors (parameters, gradients, optimizer state, data sets) and its
** contexts' arenas.  The limit above applies to this plus a request. */
FV_API size_t fv_memory_in_use(void);

/* Fault injection, for tests: from now on the n-th heap allocation of
** libfovea fails (n >= 1), and with `sticky` every one after it too;
** n = 0 turns failures off.  Returns the number of allocations made since
** the previous call, so a test can count a job's allocations first and
** then fail each one in turn. */
FV_API long fv_alloc_fail_at(long n, bool sticky);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_FOVEA_H */
