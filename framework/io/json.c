/*
** json.c: fovea's use of libjansson (see json.h).
*/
#include <math.h>
#include <stdlib.h>

#include "base/base_internal.h"
#include "io/json.h"

/* jansson parses recursively, one level of C stack per level of nesting,
** and stops at JSON_PARSER_MAX_DEPTH (2048 in every release that has it).
** Measured with jansson 2.14, the deepest document it accepts needs under
** 192 KiB of stack, where a thread gets 8 MiB by default; test_safetensors
** parses one on a thread with a 512 KiB stack.  A jansson built with a
** much larger limit would void that, so it is refused here. */
#ifndef JSON_PARSER_MAX_DEPTH
#error "this jansson has no nesting limit (JSON_PARSER_MAX_DEPTH): hostile JSON could exhaust the stack"
#endif
_Static_assert(JSON_PARSER_MAX_DEPTH <= 4096, "jansson's nesting limit is too deep for the stack");

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

fv_status fv__json_load(const char *text, size_t len, const char *what, json_t **out)
{
	json_error_t err;
	*out = json_loadb(text != NULL ? text : "", len, LOAD_FLAGS, &err);
	if (*out != NULL)
		return FV_OK;
	/* jansson leaves the text empty when an allocation fails mid-parse */
	if (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0')
		return fv_error(FV_ERR_NOMEM, "%s: out of memory parsing JSON", what);
	return fv_error(FV_ERR_FORMAT, "%s: byte %d: %s", what, err.position, err.text);
}

/* The message for a document that could not be built: jansson's
** constructors fail alike for want of memory and on a string that is not
** UTF-8. */
static char *not_built(const char *what)
{
	fv_error(FV_ERR_NOMEM, "cannot write %s: out of memory, or a string in it is not UTF-8",
	         what);
	return NULL;
}

char *fv__json_dump(const json_t *v, size_t flags, const char *what, size_t *len)
{
	if (v == NULL)
		return not_built(what);
	flags |= FV_JSON_PRECISION;
	/* json_dumpb() says how much it needs when the buffer is short, so the
	** text lands in fovea's own allocation (json_dumps() would hand out
	** jansson's, which a host program may have redirected). */
	size_t n = json_dumpb(v, NULL, 0, flags);
	char *s = n > 0 ? fv__malloc(n + 1) : NULL;
	if (s == NULL || json_dumpb(v, s, n, flags) != n) {
		free(s);
		fv_error(FV_ERR_NOMEM, "out of memory writing %s", what);
		return NULL;
	}
	s[n] = '\0';
	if (len != NULL)
		*len = n;
	return s;
}

static int append_text(const char *buffer, size_t size, void *data)
{
	fv__text *t = data;
	fv__text_printf(t, "%.*s", (int)size, buffer);
	return t->failed ? -1 : 0;
}

static bool is_container(const json_t *v)
{
	return json_is_object(v) || json_is_array(v);
}

static bool holds_containers(const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;
	if (json_is_object(v))
		json_object_foreach((json_t *)v, key, item)
			if (is_container(item))
				return true;
	if (json_is_array(v))
		json_array_foreach(v, i, item)
			if (is_container(item))
				return true;
	return false;
}

static int dump_outline(const json_t *v, int depth, int levels, size_t precision, fv__text *out)
{
	if (depth >= levels || !holds_containers(v))
		return json_dump_callback(v, append_text, out, JSON_ENCODE_ANY | precision);
	bool object = json_is_object(v);
	size_t n = object ? json_object_size(v) : json_array_size(v);
	void *it = object ? json_object_iter((json_t *)v) : NULL;
	fv__text_printf(out, "%c\n", object ? '{' : '[');
	for (size_t i = 0; i < n; i++) {
		fv__text_printf(out, "%*s", 2 * (depth + 1), "");
		const json_t *item;
		if (object) {
			/* the key as JSON writes it, quoted and escaped */
			json_t *key = json_string(json_object_iter_key(it));
			int rc = json_dump_callback(key, append_text, out, JSON_ENCODE_ANY);
			json_decref(key);
			if (rc != 0)
				return -1;
			fv__text_printf(out, ": ");
			item = json_object_iter_value(it);
			it = json_object_iter_next((json_t *)v, it);
		} else {
			item = json_array_get(v, i);
		}
		if (dump_outline(item, depth + 1, levels, precision, out) != 0)
			return -1;
		fv__text_printf(out, i + 1 < n ? ",\n" : "\n");
	}
	fv__text_printf(out, "%*s%c", 2 * depth, "", object ? '}' : ']');
	return out->failed ? -1 : 0;
}

char *fv__json_dump_outline(const json_t *v, int levels, size_t precision, const char *what,
                            size_t *len)
{
	if (v == NULL)
		return not_built(what);
	fv__text out = {0};
	if (dump_outline(v, 0, levels, precision != 0 ? precision : FV_JSON_PRECISION, &out) != 0) {
		fv__text_free(&out);
		fv_error(FV_ERR_NOMEM, "out of memory writing %s", what);
		return NULL;
	}
	size_t n = out.len;
	char *s = fv__text_take(&out, what);
	if (s != NULL && len != NULL)
		*len = n;
	return s;
}

json_t *fv__json_number(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

bool fv__json_utf8(const char *s)
{
	json_t *j = json_string(s);
	if (j == NULL && (j = json_string_nocheck(s)) != NULL) {
		json_decref(j); /* the text was fine, UTF-8 was not */
		return false;
	}
	json_decref(j);
	return true; /* or out of memory, which the caller meets again */
}

const char *fv__json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}
