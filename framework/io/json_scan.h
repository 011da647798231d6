/*
** json_scan.h: a small, strict, bounded JSON reader for the framework's own
** use (safetensors headers, ground-truth and summary files).
**
** fv__json_parse() reads RFC 8259 JSON into a read-only tree owned by one
** fv_json_doc.  It accepts nothing else: no comments, no trailing commas,
** no NaN, no duplicate keys in an object, no invalid UTF-8, no unpaired
** surrogates, and no "\u0000" (every string is a C string).  Nesting is
** limited to FV_JSON_MAX_DEPTH, so hostile input cannot exhaust the stack.
** Errors are FV_ERR_FORMAT (FV_ERR_NOMEM when memory runs out) with a
** message "WHAT: byte N: problem".
*/
#ifndef FOVEA_JSON_SCAN_H
#define FOVEA_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fovea/fovea.h"

#define FV_JSON_MAX_DEPTH 64

typedef enum fv_json_type {
	FV_JSON_NULL,
	FV_JSON_BOOL,
	FV_JSON_NUMBER,
	FV_JSON_STRING,
	FV_JSON_ARRAY,
	FV_JSON_OBJECT
} fv_json_type;

typedef struct fv_json fv_json;
typedef struct fv_json_doc fv_json_doc;

struct fv_json {
	fv_json_type type;
	bool boolean;    /* FV_JSON_BOOL */
	bool is_int;     /* a number written without fraction or exponent that fits int64 */
	int64_t integer; /* its value when is_int */
	double number;   /* every number, rounded to the nearest double */
	const char *str; /* FV_JSON_STRING: decoded UTF-8, NUL-terminated */
	size_t len;      /* its length in bytes */
	const char *key; /* the member name when this value is inside an object */
	fv_json *items;  /* FV_JSON_ARRAY elements / FV_JSON_OBJECT members, in text order */
	size_t count;
	size_t pos;      /* byte offset of the value in the text, for messages */
};

/* Parse `len` bytes of `text` (need not be NUL-terminated) into *out.
** `what` names the text in messages ("model.safetensors: header"). */
fv_status fv__json_parse(const char *text, size_t len, const char *what, fv_json_doc **out);
void fv__json_free(fv_json_doc *doc);
const fv_json *fv__json_root(const fv_json_doc *doc);

/* The member `key` of an object; NULL when absent or `obj` is no object. */
const fv_json *fv__json_get(const fv_json *obj, const char *key);
/* "null", "boolean", "number", "string", "array", "object". */
const char *fv__json_type_name(fv_json_type type);
/* Whether `s[0..len)` is well-formed UTF-8 (no overlongs, no surrogates). */
bool fv__utf8_valid(const char *s, size_t len);

#endif /* FOVEA_JSON_SCAN_H */
