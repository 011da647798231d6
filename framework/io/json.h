/*
** json.h: the rules every JSON reader and writer of the framework shares.
** The JSON itself is libjansson's; what is decided here is how fovea uses
** it, so that the safetensors header, the checkpoint metadata, the trainer
** state, the evaluation summary and the ground truth of synthetic data all
** read and write it the same way.
**
** Reading (fv__json_load): RFC 8259 text as jansson takes it (valid UTF-8,
** no comments, no NaN, nesting at most JSON_PARSER_MAX_DEPTH deep), and
** further: no duplicate keys in an object, since silently taking one of
** them would hide a corrupt file; no "\u0000", so every string is a C
** string; any value may be the root, so that the caller can say what it
** expected instead.  Errors are FV_ERR_FORMAT "WHAT: byte N: problem".
**
** Writing (fv__json_dump): reals with 17 significant digits, so that a
** double reads back bit for bit.  JSON has no NaN or infinity and jansson
** refuses them, so fv__json_number() writes them as null, as fovea always
** has; each reader knows what its null stands for.
*/
#ifndef FOVEA_IO_JSON_H
#define FOVEA_IO_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "fovea/fovea.h"

/* The writers' dump flag for reals: 17 significant digits read back as
** the same double. */
#define FV_JSON_PRECISION JSON_REAL_PRECISION(17)

/* Parse `len` bytes of `text` (need not be NUL-terminated) into *out (the
** caller json_decref()s it).  `what` names the text in messages
** ("model.safetensors: header"). */
fv_status fv__json_load(const char *text, size_t len, const char *what, json_t **out);

/* `v` as JSON text (NUL-terminated, from fv__malloc, *len bytes when `len`
** is not NULL), dumped with `flags` (JSON_COMPACT, JSON_INDENT(n), ...) and
** the writers' precision.  A NULL `v` is a document that could not be
** built: like any failure it yields NULL with a message naming `what`. */
char *fv__json_dump(const json_t *v, size_t flags, const char *what, size_t *len);

/* As fv__json_dump(), but laid out for people and line tools: an object
** or array shallower than `levels` that holds objects or arrays gets one
** member a line (indented by two spaces a level, as JSON_INDENT(2) does),
** everything else one line each.  (JSON_INDENT alone would give every
** number of a long array its own line.)  `precision` is a
** JSON_REAL_PRECISION(n) flag, 0 for the writers' 17 digits: values that
** were float32 read back the same with 9. */
char *fv__json_dump_outline(const json_t *v, int levels, size_t precision, const char *what,
                            size_t *len);

/* A real, or null when `v` is NaN or infinite.  NULL when out of memory,
** which the json_pack() or json_*_set_new() it is passed to reports. */
json_t *fv__json_number(double v);

/* Whether `s` can be a JSON string: UTF-8 (jansson checks; it has no
** public call for it, but its string constructor refuses anything else). */
bool fv__json_utf8(const char *s);

/* "a string", "an array", "null", ...: a value's type for messages. */
const char *fv__json_kind(const json_t *v);

#endif /* FOVEA_IO_JSON_H */
