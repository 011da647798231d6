/*
** json_scan.c: the strict, bounded JSON reader declared in json_scan.h.
**
** A recursive-descent parser over a byte range that is never read past its
** end.  Values are built bottom-up: the members of an open array or object
** wait on a scratch stack and are copied into one contiguous block when the
** container closes, so the finished tree needs no per-node allocation.  All
** nodes and strings live in a chunked pool owned by the document and freed
** with it.  Recursion depth is bounded, so the C stack use is too.
*/
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/fovea.h"
#include "io/json_scan.h"
#include "base/base_internal.h"

/* ---- the pool ------------------------------------------------------------ */

#define POOL_ALIGN 16
#define POOL_FIRST_CHUNK ((size_t)4096)
#define POOL_MAX_CHUNK ((size_t)1 << 20)

typedef struct pool_chunk pool_chunk;
struct pool_chunk {
	pool_chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
};

#define CHUNK_HEADER ((sizeof(pool_chunk) + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN)

struct fv_json_doc {
	pool_chunk *chunks; /* newest first */
	fv_json root;
};

static void *pool_alloc(fv_json_doc *doc, size_t n)
{
	if (n > SIZE_MAX - 2 * POOL_ALIGN - CHUNK_HEADER)
		return NULL;
	n = (n + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
	pool_chunk *c = doc->chunks;
	if (c == NULL || c->size - c->used < n) {
		size_t size = c == NULL ? POOL_FIRST_CHUNK : c->size * 2;
		if (size > POOL_MAX_CHUNK)
			size = POOL_MAX_CHUNK;
		if (size < n)
			size = n;
		pool_chunk *fresh = fv__malloc(CHUNK_HEADER + size);
		if (fresh == NULL)
			return NULL;
		fresh->next = c;
		fresh->size = size;
		fresh->used = 0;
		doc->chunks = c = fresh;
	}
	void *p = (unsigned char *)c + CHUNK_HEADER + c->used;
	c->used += n;
	return p;
}

void fv__json_free(fv_json_doc *doc)
{
	if (doc == NULL)
		return;
	pool_chunk *c = doc->chunks;
	while (c != NULL) {
		pool_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(doc);
}

const fv_json *fv__json_root(const fv_json_doc *doc)
{
	return &doc->root;
}

/* ---- the parser state ------------------------------------------------------ */

typedef struct parser {
	const char *start, *p, *end;
	const char *what;
	fv_json_doc *doc;
	fv_json *stack; /* members of the open containers, innermost last */
	size_t top, cap;
} parser;

FV_PRINTF(3, 4)
static fv_status fail_at(const parser *ps, const char *at, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fv_error(FV_ERR_FORMAT, "%s: byte %zu: %s", ps->what, (size_t)(at - ps->start), msg);
}

static fv_status fail_nomem(const parser *ps)
{
	return fv_error(FV_ERR_NOMEM, "%s: out of memory parsing JSON", ps->what);
}

/* What the parser found instead of what it expected, for messages. */
static const char *found(const parser *ps)
{
	static _Thread_local char buf[32];
	if (ps->p >= ps->end)
		return "the end of the text";
	unsigned char c = (unsigned char)*ps->p;
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, sizeof buf, "'%c'", c);
	else
		snprintf(buf, sizeof buf, "byte 0x%02x", c);
	return buf;
}

static void skip_space(parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* Consume `c` when it is the next character. */
static bool accept(parser *ps, char c)
{
	if (ps->p >= ps->end || *ps->p != c)
		return false;
	ps->p++;
	return true;
}

static fv_status push(parser *ps, const fv_json *v)
{
	if (ps->top == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		fv_json *grown = fv__realloc(ps->stack, cap * sizeof *grown);
		if (grown == NULL)
			return fail_nomem(ps);
		ps->stack = grown;
		ps->cap = cap;
	}
	ps->stack[ps->top++] = *v;
	return FV_OK;
}

/* Move the members pushed since `base` into the pool, as `v`'s items. */
static fv_status pop_members(parser *ps, size_t base, fv_json *v)
{
	v->count = ps->top - base;
	v->items = NULL;
	if (v->count > 0) {
		if (v->count > SIZE_MAX / sizeof *v->items)
			return fail_nomem(ps);
		v->items = pool_alloc(ps->doc, v->count * sizeof *v->items);
		if (v->items == NULL)
			return fail_nomem(ps);
		memcpy(v->items, ps->stack + base, v->count * sizeof *v->items);
	}
	ps->top = base;
	return FV_OK;
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table), 0 if none. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlongs */
		if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

bool fv__utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq_len(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- strings ---------------------------------------------------------------- */

/* Four hex digits after "\u" at `at`; -1 when malformed. */
static long hex4(const parser *ps, const char *at)
{
	if (ps->end - at < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		char c = at[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* One escape sequence at ps->p (just after the backslash); appends its
** UTF-8 to `out` and advances. */
static fv_status decode_escape(parser *ps, char *out, size_t *n)
{
	const char *at = ps->p - 1;
	char c = *ps->p++;
	switch (c) {
	case '"': out[(*n)++] = '"'; return FV_OK;
	case '\\': out[(*n)++] = '\\'; return FV_OK;
	case '/': out[(*n)++] = '/'; return FV_OK;
	case 'b': out[(*n)++] = '\b'; return FV_OK;
	case 'f': out[(*n)++] = '\f'; return FV_OK;
	case 'n': out[(*n)++] = '\n'; return FV_OK;
	case 'r': out[(*n)++] = '\r'; return FV_OK;
	case 't': out[(*n)++] = '\t'; return FV_OK;
	case 'u': break;
	default:
		if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
			return fail_at(ps, at, "invalid escape '\\%c' in a string", c);
		return fail_at(ps, at, "invalid escape: backslash before byte 0x%02x in a string",
		               (unsigned char)c);
	}
	long cp = hex4(ps, ps->p);
	if (cp < 0)
		return fail_at(ps, at, "'\\u' must be followed by four hex digits");
	ps->p += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail_at(ps, at, "unpaired low surrogate \\u%04lx in a string", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		long low = -1;
		if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u')
			low = hex4(ps, ps->p + 2);
		if (low < 0xdc00 || low > 0xdfff)
			return fail_at(ps, at, "high surrogate \\u%04lx is not followed by a low surrogate",
			               cp);
		ps->p += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
	}
	if (cp == 0)
		return fail_at(ps, at, "'\\u0000' in a string is not supported");
	*n += utf8_encode((uint32_t)cp, out + *n);
	return FV_OK;
}

/* A string at ps->p (on the opening quote), decoded into the pool. */
static fv_status parse_string(parser *ps, const char **str, size_t *len)
{
	const char *open = ps->p++;
	/* Find the closing quote first: the decoded text is never longer than
	** the raw one, so one allocation of that size suffices. */
	const char *q = ps->p;
	while (q < ps->end && *q != '"') {
		if ((unsigned char)*q < 0x20)
			return fail_at(ps, q, "control character 0x%02x in a string (must be escaped)",
			               (unsigned char)*q);
		if (*q == '\\' && ps->end - q < 2)
			break;
		q += *q == '\\' ? 2 : 1;
	}
	if (q >= ps->end || *q != '"')
		return fail_at(ps, open, "unterminated string");
	char *out = pool_alloc(ps->doc, (size_t)(q - ps->p) + 1);
	if (out == NULL)
		return fail_nomem(ps);
	size_t n = 0;
	while (ps->p < q) {
		if (*ps->p == '\\') {
			ps->p++;
			fv_status s = decode_escape(ps, out, &n);
			if (s != FV_OK)
				return s;
		} else {
			out[n++] = *ps->p++;
		}
	}
	ps->p = q + 1;
	out[n] = '\0';
	/* Escapes always yield complete sequences, so checking the decoded
	** bytes checks the raw ones. */
	if (!fv__utf8_valid(out, n))
		return fail_at(ps, open, "invalid UTF-8 in a string");
	*str = out;
	*len = n;
	return FV_OK;
}

/* ---- numbers ---------------------------------------------------------------- */

static bool is_digit(const parser *ps, const char *at)
{
	return at < ps->end && *at >= '0' && *at <= '9';
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* strtod, but always with '.' as the decimal point whatever the process
** locale is. */
static double strtod_c(const char *s)
{
	pthread_once(&c_locale_once, make_c_locale);
	if (c_locale != (locale_t)0)
		return strtod_l(s, NULL, c_locale);
	return strtod(s, NULL);
}

/* An integer literal as int64, exactly; false when it does not fit. */
static bool integer_value(const char *digits, const char *end, bool negative, int64_t *out)
{
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (const char *d = digits; d < end; d++) {
		unsigned digit = (unsigned)(*d - '0');
		if (v > (limit - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	if (negative)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return true;
}

static fv_status parse_number(parser *ps, fv_json *v)
{
	const char *start = ps->p;
	bool negative = false;
	if (*ps->p == '-') {
		negative = true;
		ps->p++;
	}
	const char *digits = ps->p;
	if (!is_digit(ps, ps->p))
		return fail_at(ps, start, "expected a digit in a number, found %s", found(ps));
	if (*ps->p == '0') {
		ps->p++;
		if (is_digit(ps, ps->p))
			return fail_at(ps, start, "a number may not have leading zeros");
	} else {
		while (is_digit(ps, ps->p))
			ps->p++;
	}
	const char *int_end = ps->p;
	bool integral = true;
	if (accept(ps, '.')) {
		integral = false;
		if (!is_digit(ps, ps->p))
			return fail_at(ps, start, "expected a digit after '.' in a number");
		while (is_digit(ps, ps->p))
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integral = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!is_digit(ps, ps->p))
			return fail_at(ps, start, "expected a digit in the exponent of a number");
		while (is_digit(ps, ps->p))
			ps->p++;
	}
	v->type = FV_JSON_NUMBER;
	v->is_int = integral && integer_value(digits, int_end, negative, &v->integer);

	size_t n = (size_t)(ps->p - start);
	char small[64];
	char *copy = n < sizeof small ? small : fv__malloc(n + 1);
	if (copy == NULL)
		return fail_nomem(ps);
	memcpy(copy, start, n);
	copy[n] = '\0';
	v->number = strtod_c(copy);
	if (copy != small)
		free(copy);
	if (!isfinite(v->number))
		return fail_at(ps, start, "number %.*s is out of the range of a double",
		               n > 40 ? 40 : (int)n, start);
	return FV_OK;
}

/* ---- values ------------------------------------------------------------------ */

static fv_status parse_value(parser *ps, fv_json *v, int depth);

static fv_status expect_literal(parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail_at(ps, ps->p, "expected a value, found %s", found(ps));
	ps->p += n;
	return FV_OK;
}

static int compare_keys(const void *a, const void *b)
{
	const fv_json *x = *(const fv_json *const *)a;
	const fv_json *y = *(const fv_json *const *)b;
	return strcmp(x->key, y->key);
}

/* RFC 8259 leaves duplicate names to the reader; silently taking one of
** them would hide a corrupt file, so they are an error. */
static fv_status check_unique_keys(parser *ps, const fv_json *obj)
{
	if (obj->count < 2)
		return FV_OK;
	const fv_json **sorted = fv__malloc(obj->count * sizeof *sorted);
	if (sorted == NULL)
		return fail_nomem(ps);
	for (size_t i = 0; i < obj->count; i++)
		sorted[i] = &obj->items[i];
	qsort(sorted, obj->count, sizeof *sorted, compare_keys);
	const fv_json *dup = NULL;
	for (size_t i = 1; i < obj->count && dup == NULL; i++)
		if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
			dup = sorted[i]->pos > sorted[i - 1]->pos ? sorted[i] : sorted[i - 1];
	free(sorted);
	if (dup != NULL)
		return fail_at(ps, ps->start + dup->pos, "duplicate key '%s'", dup->key);
	return FV_OK;
}

static fv_status parse_array(parser *ps, fv_json *v, int depth)
{
	size_t base = ps->top;
	v->type = FV_JSON_ARRAY;
	ps->p++; /* '[' */
	skip_space(ps);
	if (accept(ps, ']'))
		return pop_members(ps, base, v);
	for (;;) {
		fv_json item;
		fv_status s = parse_value(ps, &item, depth + 1);
		if (s == FV_OK)
			s = push(ps, &item);
		if (s != FV_OK)
			return s;
		skip_space(ps);
		if (accept(ps, ','))
			continue;
		if (accept(ps, ']'))
			return pop_members(ps, base, v);
		return fail_at(ps, ps->p, "expected ',' or ']' in an array, found %s", found(ps));
	}
}

static fv_status parse_object(parser *ps, fv_json *v, int depth)
{
	size_t base = ps->top;
	v->type = FV_JSON_OBJECT;
	ps->p++; /* '{' */
	skip_space(ps);
	if (accept(ps, '}'))
		return pop_members(ps, base, v);
	for (;;) {
		skip_space(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return fail_at(ps, ps->p, "expected a string key in an object, found %s",
			               found(ps));
		const char *key;
		size_t key_len;
		fv_status s = parse_string(ps, &key, &key_len);
		if (s != FV_OK)
			return s;
		skip_space(ps);
		if (!accept(ps, ':'))
			return fail_at(ps, ps->p, "expected ':' after key '%s', found %s", key, found(ps));
		fv_json member;
		s = parse_value(ps, &member, depth + 1);
		member.key = key;
		if (s == FV_OK)
			s = push(ps, &member);
		if (s != FV_OK)
			return s;
		skip_space(ps);
		if (accept(ps, ','))
			continue;
		if (accept(ps, '}')) {
			s = pop_members(ps, base, v);
			return s != FV_OK ? s : check_unique_keys(ps, v);
		}
		return fail_at(ps, ps->p, "expected ',' or '}' in an object, found %s", found(ps));
	}
}

static fv_status parse_value(parser *ps, fv_json *v, int depth)
{
	memset(v, 0, sizeof *v);
	skip_space(ps);
	v->pos = (size_t)(ps->p - ps->start);
	if (ps->p >= ps->end)
		return fail_at(ps, ps->p, "expected a value, found the end of the text");
	switch (*ps->p) {
	case '{':
	case '[':
		if (depth >= FV_JSON_MAX_DEPTH)
			return fail_at(ps, ps->p, "nesting is deeper than %d levels", FV_JSON_MAX_DEPTH);
		return *ps->p == '{' ? parse_object(ps, v, depth) : parse_array(ps, v, depth);
	case '"':
		v->type = FV_JSON_STRING;
		return parse_string(ps, &v->str, &v->len);
	case 't':
		v->type = FV_JSON_BOOL;
		v->boolean = true;
		return expect_literal(ps, "true");
	case 'f':
		v->type = FV_JSON_BOOL;
		return expect_literal(ps, "false");
	case 'n':
		v->type = FV_JSON_NULL;
		return expect_literal(ps, "null");
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, v);
		return fail_at(ps, ps->p, "expected a value, found %s", found(ps));
	}
}

fv_status fv__json_parse(const char *text, size_t len, const char *what, fv_json_doc **out)
{
	*out = NULL;
	fv_json_doc *doc = fv__calloc(1, sizeof *doc);
	if (doc == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory parsing JSON", what);
	if (text == NULL)
		text = "";
	parser ps = {.start = text, .p = text, .end = text + len, .what = what, .doc = doc};
	fv_status s = parse_value(&ps, &doc->root, 0);
	if (s == FV_OK) {
		skip_space(&ps);
		if (ps.p < ps.end)
			s = fail_at(&ps, ps.p, "unexpected %s after the JSON value", found(&ps));
	}
	free(ps.stack);
	if (s != FV_OK) {
		fv__json_free(doc);
		return s;
	}
	*out = doc;
	return FV_OK;
}

/* ---- queries ------------------------------------------------------------------ */

const fv_json *fv__json_get(const fv_json *obj, const char *key)
{
	if (obj == NULL || obj->type != FV_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (strcmp(obj->items[i].key, key) == 0)
			return &obj->items[i];
	return NULL;
}

const char *fv__json_type_name(fv_json_type type)
{
	switch (type) {
	case FV_JSON_NULL: return "null";
	case FV_JSON_BOOL: return "boolean";
	case FV_JSON_NUMBER: return "number";
	case FV_JSON_STRING: return "string";
	case FV_JSON_ARRAY: return "array";
	case FV_JSON_OBJECT: return "object";
	}
	return "unknown";
}
