/*
** text.c: growing strings for the text that the trainer and the
** evaluation write (CSV rows, model summaries; JSON goes through jansson,
** io/json.h).
** Errors are sticky, so a writer appends freely and checks once at the end.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"

static bool reserve(fv__text *t, size_t extra)
{
	if (t->failed)
		return false;
	if (t->len + extra + 1 <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : 256;
	while (cap < t->len + extra + 1)
		cap *= 2;
	char *s = fv__realloc(t->s, cap);
	if (s == NULL) {
		t->failed = true;
		return false;
	}
	t->s = s;
	t->cap = cap;
	return true;
}

void fv__text_printf(fv__text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = true;
		return;
	}
	if (!reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

char *fv__text_take(fv__text *t, const char *what)
{
	if (t->failed || !reserve(t, 0)) {
		fv__text_free(t);
		fv_error(FV_ERR_NOMEM, "out of memory writing %s", what);
		return NULL;
	}
	t->s[t->len] = '\0';
	char *s = t->s;
	*t = (fv__text){0};
	return s;
}

void fv__text_free(fv__text *t)
{
	free(t->s);
	*t = (fv__text){0};
}
