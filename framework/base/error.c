/*
** error.c: the per-thread error message and code behind fv_error(),
** fv_errmsg() and fv_errcode().
**
** The code is kept beside the message (as SQLite keeps sqlite3_errcode()
** beside sqlite3_errmsg()) so that a function which sees a callee fail
** passes the callee's code on rather than guessing one.
*/
#include <stdio.h>
#include <string.h>

#include "fovea/fovea.h"
#include "base/base_internal.h"

#define FV_ERRMSG_MAX 2048

static _Thread_local char errmsg[FV_ERRMSG_MAX];
static _Thread_local fv_status errcode = FV_OK;

const char *fv_errmsg(void)
{
	return errmsg;
}

fv_status fv_errcode(void)
{
	return errcode;
}

/* The message is formatted aside and then copied, because the arguments
** may point into errmsg itself (a caller restating fv_errmsg()). */
fv_status fv_verror(fv_status code, const char *fmt, va_list ap)
{
	char msg[FV_ERRMSG_MAX];
	vsnprintf(msg, sizeof msg, fmt, ap);
	memcpy(errmsg, msg, strlen(msg) + 1);
	errcode = code;
	return code;
}

fv_status fv_error(fv_status code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fv_verror(code, fmt, ap);
	va_end(ap);
	return code;
}

void fv_error_prefix(const char *fmt, ...)
{
	char prefix[FV_ERRMSG_MAX];
	char old[FV_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	size_t n = strlen(prefix);
	memcpy(old, errmsg, sizeof old);
	if (n >= sizeof errmsg)
		n = sizeof errmsg - 1;
	memcpy(errmsg, prefix, n);
	size_t rest = strnlen(old, sizeof old - 1);
	if (rest > sizeof errmsg - 1 - n)
		rest = sizeof errmsg - 1 - n;
	memcpy(errmsg + n, old, rest);
	errmsg[n + rest] = '\0';
}

void fv_clear_error(void)
{
	errmsg[0] = '\0';
	errcode = FV_OK;
}

const char *fv_status_name(fv_status code)
{
	switch (code) {
	case FV_OK: return "ok";
	case FV_ERR_NOMEM: return "out of memory";
	case FV_ERR_IO: return "i/o error";
	case FV_ERR_FORMAT: return "bad file format";
	case FV_ERR_CONFIG: return "configuration error";
	case FV_ERR_SHAPE: return "shape mismatch";
	case FV_ERR_ARG: return "invalid argument";
	case FV_ERR_PLUGIN: return "plugin error";
	case FV_ERR_NOTFOUND: return "not found";
	}
	return "unknown error";
}
