/*
** pickle.c: a pickle machine that builds inert values and calls nothing.
**
** It runs the opcodes of pickle protocols 0 to 5 that a pickle of plain
** data can contain (the stack, marks and memo of Python's Unpickler, with
** the same meaning) and hands every name-bearing operation to the
** allow-list of pickle_globals.c.  The opcodes whose only purpose is to
** import and call (INST, OBJ), the copyreg extension registry (EXT1/2/4)
** and out-of-band buffers are refused outright.
**
** The pickle is read twice.  A first pass walks the opcodes without
** executing them: it checks every argument lies inside data.pkl, that the
** opcodes are known, and that every GLOBAL is on the allow-list, so a
** hostile file is refused before a single object is built (only
** STACK_GLOBAL, whose names come from the stack, waits for the second
** pass).  The second pass executes.  Every failure names the file, the
** byte offset of the opcode in data.pkl and the opcode.
**
** Hostile input is bounded everywhere: the stack, the mark stack and the
** memo have limits, every allocation is charged to the load's budget,
** containers are checked for depth as they grow, and nothing recurses.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "io/ckpt_internal.h"

/* ---- opcodes -------------------------------------------------------------------------- */

/* How an opcode's argument is laid out after it. */
enum {
	ARG_NONE,
	ARG_FIXED,   /* `width` bytes */
	ARG_COUNTED, /* a `width`-byte little-endian length, then that many bytes */
	ARG_LINE,    /* text up to a newline */
	ARG_LINE2    /* two such lines (module, name) */
};

typedef struct opinfo {
	const char *name;
	unsigned char arg;
	unsigned char width;
	bool signed_count;   /* a negative length is an error */
	const char *refused; /* why this opcode is never executed, or NULL */
} opinfo;

static const opinfo ops[256] = {
	/* protocol 0 and 1 */
	['('] = {"MARK", ARG_NONE, 0, false, NULL},
	['.'] = {"STOP", ARG_NONE, 0, false, NULL},
	['0'] = {"POP", ARG_NONE, 0, false, NULL},
	['1'] = {"POP_MARK", ARG_NONE, 0, false, NULL},
	['2'] = {"DUP", ARG_NONE, 0, false, NULL},
	['F'] = {"FLOAT", ARG_LINE, 0, false, NULL},
	['I'] = {"INT", ARG_LINE, 0, false, NULL},
	['J'] = {"BININT", ARG_FIXED, 4, false, NULL},
	['K'] = {"BININT1", ARG_FIXED, 1, false, NULL},
	['L'] = {"LONG", ARG_LINE, 0, false, NULL},
	['M'] = {"BININT2", ARG_FIXED, 2, false, NULL},
	['N'] = {"NONE", ARG_NONE, 0, false, NULL},
	['P'] = {"PERSID", ARG_LINE, 0, false, NULL},
	['Q'] = {"BINPERSID", ARG_NONE, 0, false, NULL},
	['R'] = {"REDUCE", ARG_NONE, 0, false, NULL},
	['S'] = {"STRING", ARG_LINE, 0, false, NULL},
	['T'] = {"BINSTRING", ARG_COUNTED, 4, true, NULL},
	['U'] = {"SHORT_BINSTRING", ARG_COUNTED, 1, false, NULL},
	['V'] = {"UNICODE", ARG_LINE, 0, false, NULL},
	['X'] = {"BINUNICODE", ARG_COUNTED, 4, false, NULL},
	['a'] = {"APPEND", ARG_NONE, 0, false, NULL},
	['b'] = {"BUILD", ARG_NONE, 0, false, NULL},
	['c'] = {"GLOBAL", ARG_LINE2, 0, false, NULL},
	['d'] = {"DICT", ARG_NONE, 0, false, NULL},
	['}'] = {"EMPTY_DICT", ARG_NONE, 0, false, NULL},
	['e'] = {"APPENDS", ARG_NONE, 0, false, NULL},
	['g'] = {"GET", ARG_LINE, 0, false, NULL},
	['h'] = {"BINGET", ARG_FIXED, 1, false, NULL},
	['i'] = {"INST", ARG_LINE2, 0, false,
	         "imports and calls a class by name; torch never writes it"},
	['j'] = {"LONG_BINGET", ARG_FIXED, 4, false, NULL},
	['l'] = {"LIST", ARG_NONE, 0, false, NULL},
	[']'] = {"EMPTY_LIST", ARG_NONE, 0, false, NULL},
	['o'] = {"OBJ", ARG_NONE, 0, false, "calls a class from the stack; torch never writes it"},
	['p'] = {"PUT", ARG_LINE, 0, false, NULL},
	['q'] = {"BINPUT", ARG_FIXED, 1, false, NULL},
	['r'] = {"LONG_BINPUT", ARG_FIXED, 4, false, NULL},
	['s'] = {"SETITEM", ARG_NONE, 0, false, NULL},
	['t'] = {"TUPLE", ARG_NONE, 0, false, NULL},
	[')'] = {"EMPTY_TUPLE", ARG_NONE, 0, false, NULL},
	['u'] = {"SETITEMS", ARG_NONE, 0, false, NULL},
	['G'] = {"BINFLOAT", ARG_FIXED, 8, false, NULL},
	/* protocol 2 */
	[0x80] = {"PROTO", ARG_FIXED, 1, false, NULL},
	[0x81] = {"NEWOBJ", ARG_NONE, 0, false, NULL},
	[0x82] = {"EXT1", ARG_FIXED, 1, false,
	          "names an object of the copyreg extension registry, which a reader cannot know"},
	[0x83] = {"EXT2", ARG_FIXED, 2, false,
	          "names an object of the copyreg extension registry, which a reader cannot know"},
	[0x84] = {"EXT4", ARG_FIXED, 4, false,
	          "names an object of the copyreg extension registry, which a reader cannot know"},
	[0x85] = {"TUPLE1", ARG_NONE, 0, false, NULL},
	[0x86] = {"TUPLE2", ARG_NONE, 0, false, NULL},
	[0x87] = {"TUPLE3", ARG_NONE, 0, false, NULL},
	[0x88] = {"NEWTRUE", ARG_NONE, 0, false, NULL},
	[0x89] = {"NEWFALSE", ARG_NONE, 0, false, NULL},
	[0x8a] = {"LONG1", ARG_COUNTED, 1, false, NULL},
	[0x8b] = {"LONG4", ARG_COUNTED, 4, true, NULL},
	/* protocol 3 */
	['B'] = {"BINBYTES", ARG_COUNTED, 4, false, NULL},
	['C'] = {"SHORT_BINBYTES", ARG_COUNTED, 1, false, NULL},
	/* protocol 4 */
	[0x8c] = {"SHORT_BINUNICODE", ARG_COUNTED, 1, false, NULL},
	[0x8d] = {"BINUNICODE8", ARG_COUNTED, 8, false, NULL},
	[0x8e] = {"BINBYTES8", ARG_COUNTED, 8, false, NULL},
	[0x8f] = {"EMPTY_SET", ARG_NONE, 0, false, NULL},
	[0x90] = {"ADDITEMS", ARG_NONE, 0, false, NULL},
	[0x91] = {"FROZENSET", ARG_NONE, 0, false, NULL},
	[0x92] = {"NEWOBJ_EX", ARG_NONE, 0, false, NULL},
	[0x93] = {"STACK_GLOBAL", ARG_NONE, 0, false, NULL},
	[0x94] = {"MEMOIZE", ARG_NONE, 0, false, NULL},
	[0x95] = {"FRAME", ARG_FIXED, 8, false, NULL},
	/* protocol 5 */
	[0x96] = {"BYTEARRAY8", ARG_COUNTED, 8, false, NULL},
	[0x97] = {"NEXT_BUFFER", ARG_NONE, 0, false,
	          "takes an out-of-band buffer, which a checkpoint file cannot carry"},
	[0x98] = {"READONLY_BUFFER", ARG_NONE, 0, false, NULL},
};

/* The highest protocol this machine knows (Python 3.8+ writes up to 5). */
#define MAX_PROTOCOL 5

/* A decoded argument. */
typedef struct arg {
	uint64_t u;             /* ARG_FIXED: the little-endian value */
	const unsigned char *p; /* ARG_COUNTED, ARG_LINE*: the bytes */
	size_t n;
	const unsigned char *p2; /* ARG_LINE2: the second line */
	size_t n2;
} arg;

struct fv__unpickler {
	const unsigned char *pkl;
	size_t len;
	const char *file, *pkl_name;
	const fv__storage_source *src;
	fv_ckpt_limits lim;
	fv__pypool *pool;
	fv_pyval **stack;
	size_t sp, stack_cap;
	size_t *marks;          /* stack heights at each MARK */
	size_t n_marks, marks_cap;
	fv_pyval **memo;
	size_t memo_cap, memo_len; /* slots allocated, slots set */
	int protocol;
};

fv__pypool *fv__unpickler_pool(fv__unpickler *u)
{
	return u->pool;
}

const fv__storage_source *fv__unpickler_storages(fv__unpickler *u)
{
	return u->src;
}

/* ---- limits -------------------------------------------------------------------------- */

fv_ckpt_limits fv__ckpt_limits(const fv_ckpt_limits *lim, size_t file_size)
{
	fv_ckpt_limits l = lim ? *lim : (fv_ckpt_limits){0};
	if (l.max_bytes == 0) {
		size_t extra = file_size > (SIZE_MAX >> 5) ? SIZE_MAX >> 1 : 16 * file_size;
		l.max_bytes = ((size_t)1 << 30) + extra;
	}
	if (l.max_depth == 0)
		l.max_depth = 1000;
	if (l.max_depth > UINT32_MAX - 1)
		l.max_depth = UINT32_MAX - 1;
	if (l.max_stack == 0)
		l.max_stack = (size_t)1 << 20;
	if (l.max_memo == 0)
		l.max_memo = (size_t)1 << 22;
	return l;
}

/* ---- reading arguments ------------------------------------------------------------- */

/* A name from the file, safe to print: at most 120 bytes, no control
** characters. */
typedef struct name_text {
	char s[128];
} name_text;

static name_text printable(const unsigned char *p, size_t n)
{
	name_text t;
	size_t k = 0;
	for (size_t i = 0; i < n && k < 120; i++)
		t.s[k++] = p[i] < 0x20 || p[i] == 0x7f ? '?' : (char)p[i];
	if (n > 120)
		memcpy(t.s + k, "...", 3), k += 3;
	t.s[k] = '\0';
	return t;
}

static uint64_t le_bytes(const unsigned char *p, size_t n)
{
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x |= (uint64_t)p[i] << (8 * i);
	return x;
}

static fv_status truncated(const fv__unpickler *u, const opinfo *o)
{
	return fv_error(FV_ERR_FORMAT, "%s's argument runs past the end of %s (%zu bytes): truncated",
	                o->name, u->pkl_name, u->len);
}

/* The text of a line argument from `at`; sets *end past its newline. */
static bool read_line(const fv__unpickler *u, size_t at, const unsigned char **p, size_t *n,
                      size_t *end)
{
	const unsigned char *nl = memchr(u->pkl + at, '\n', u->len - at);
	if (nl == NULL)
		return false;
	*p = u->pkl + at;
	*n = (size_t)(nl - *p);
	*end = (size_t)(nl - u->pkl) + 1;
	return true;
}

/* Decode the argument of the opcode at `at`; *next is where the next opcode
** starts. */
static fv_status decode(const fv__unpickler *u, size_t at, const opinfo *o, arg *a, size_t *next)
{
	size_t pos = at + 1, left = u->len - pos;
	memset(a, 0, sizeof *a);
	switch (o->arg) {
	case ARG_NONE: break;
	case ARG_FIXED:
		if (left < o->width)
			return truncated(u, o);
		a->u = le_bytes(u->pkl + pos, o->width);
		pos += o->width;
		break;
	case ARG_COUNTED: {
		if (left < o->width)
			return truncated(u, o);
		uint64_t n = le_bytes(u->pkl + pos, o->width);
		if (o->signed_count && (n & 0x80000000u))
			return fv_error(FV_ERR_FORMAT, "%s has a negative length", o->name);
		pos += o->width;
		left -= o->width;
		if (n > left)
			return fv_error(FV_ERR_FORMAT,
			                "%s declares %llu bytes, but only %zu are left in %s: truncated or "
			                "corrupt",
			                o->name, (unsigned long long)n, left, u->pkl_name);
		a->p = u->pkl + pos;
		a->n = (size_t)n;
		pos += (size_t)n;
		break;
	}
	case ARG_LINE:
		if (!read_line(u, pos, &a->p, &a->n, &pos))
			return truncated(u, o);
		break;
	case ARG_LINE2:
		if (!read_line(u, pos, &a->p, &a->n, &pos) || !read_line(u, pos, &a->p2, &a->n2, &pos))
			return truncated(u, o);
		break;
	}
	*next = pos;
	return FV_OK;
}

static fv_status not_allowed(const char *opname, const unsigned char *m, size_t mn,
                             const unsigned char *n, size_t nn)
{
	return fv_error(FV_ERR_FORMAT,
	                "%s %s.%s is not allowed: a checkpoint is read without importing or calling "
	                "anything, and only tensors, plain containers and the classes a checkpoint "
	                "needs are on the allow-list",
	                opname, printable(m, mn).s, printable(n, nn).s);
}

/* ---- the first pass ---------------------------------------------------------------- */

static void prefix_at(const fv__unpickler *u, size_t at, const char *opname)
{
	fv_error_prefix("%s: %s byte %zu (%s): ", u->file, u->pkl_name, at, opname);
}

/* Walk the opcodes without running them: framing, known opcodes, the
** allow-list for GLOBAL, a final STOP. */
static fv_status scan(fv__unpickler *u)
{
	size_t at = 0;
	while (at < u->len) {
		const opinfo *o = &ops[u->pkl[at]];
		arg a;
		size_t next;
		fv_status s = FV_OK;
		if (o->name == NULL) {
			s = fv_error(FV_ERR_FORMAT,
			             "unknown opcode 0x%02x: not a pickle this reader knows (protocols 0 to "
			             "%d)",
			             u->pkl[at], MAX_PROTOCOL);
			prefix_at(u, at, "?");
			return s;
		}
		s = decode(u, at, o, &a, &next);
		if (s == FV_OK && o->refused != NULL) {
			if (o->arg == ARG_LINE2)
				s = fv_error(FV_ERR_FORMAT, "opcode %s %s.%s is refused: it %s", o->name,
				             printable(a.p, a.n).s, printable(a.p2, a.n2).s, o->refused);
			else
				s = fv_error(FV_ERR_FORMAT, "opcode %s is refused: it %s", o->name, o->refused);
		}
		if (s == FV_OK && u->pkl[at] == 'c' &&
		    fv__pyglobal_find((const char *)a.p, a.n, (const char *)a.p2, a.n2) == NULL)
			s = not_allowed("GLOBAL", a.p, a.n, a.p2, a.n2);
		if (s == FV_OK && u->pkl[at] == 0x80 && a.u > MAX_PROTOCOL)
			s = fv_error(FV_ERR_FORMAT, "pickle protocol %llu is newer than this reader (%d)",
			             (unsigned long long)a.u, MAX_PROTOCOL);
		if (s != FV_OK) {
			prefix_at(u, at, o->name);
			return s;
		}
		if (u->pkl[at] == '.')
			return FV_OK;
		at = next;
	}
	return fv_error(FV_ERR_FORMAT, "%s: %s ends without STOP after %zu bytes: truncated", u->file,
	                u->pkl_name, u->len);
}

/* ---- stack, marks, memo ------------------------------------------------------------- */

/* Grow an array of `elem`-byte entries to hold `want`, charging the
** growth; `limit` entries at most. */
static fv_status grow(fv__unpickler *u, void **arr, size_t *cap, size_t elem, size_t want,
                      size_t limit, const char *what, const char *field)
{
	if (want > limit)
		return fv_error(FV_ERR_FORMAT, "the %s grows beyond %zu entries (fv_ckpt_limits.%s)", what,
		                limit, field);
	if (want <= *cap)
		return FV_OK;
	size_t c = *cap ? *cap : limit < 64 ? limit : 64;
	while (c < want)
		c = c > limit / 2 ? limit : 2 * c;
	if (fv__pypool_charge(u->pool, (c - *cap) * elem) != FV_OK)
		return FV_ERR_FORMAT;
	void *p = fv__realloc(*arr, c * elem);
	if (p == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	*arr = p;
	*cap = c;
	return FV_OK;
}

/* Push a value just made; NULL means making it failed. */
static fv_status push(fv__unpickler *u, fv_pyval *v)
{
	if (v == NULL)
		return fv__pypool_failure(u->pool);
	fv_status s = grow(u, (void **)&u->stack, &u->stack_cap, sizeof *u->stack, u->sp + 1,
	                   u->lim.max_stack, "stack", "max_stack");
	if (s == FV_OK)
		u->stack[u->sp++] = v;
	return s;
}

/* The lowest stack slot the current MARK frame may touch. */
static size_t fence(const fv__unpickler *u)
{
	return u->n_marks ? u->marks[u->n_marks - 1] : 0;
}

static fv_status underflow(void)
{
	return fv_error(FV_ERR_FORMAT, "stack underflow: the opcode needs more values than the "
	                               "stack holds above the last MARK");
}

/* The k-th value from the top (0 = top), within the current frame. */
static fv_status peek(fv__unpickler *u, size_t k, fv_pyval **v)
{
	if (u->sp - fence(u) <= k)
		return underflow();
	*v = u->stack[u->sp - 1 - k];
	return FV_OK;
}

static fv_status pop(fv__unpickler *u, fv_pyval **v)
{
	fv_status s = peek(u, 0, v);
	if (s == FV_OK)
		u->sp--;
	return s;
}

/* Items from the last MARK up; the caller sets u->sp = *base when done. */
static fv_status pop_mark(fv__unpickler *u, size_t *base)
{
	if (u->n_marks == 0)
		return fv_error(FV_ERR_FORMAT, "no MARK to take the items from");
	*base = u->marks[--u->n_marks];
	return FV_OK;
}

static fv_status memo_put(fv__unpickler *u, uint64_t idx)
{
	fv_pyval *v = NULL;
	fv_status s = peek(u, 0, &v);
	if (s != FV_OK)
		return s;
	if (idx >= u->lim.max_memo)
		return fv_error(FV_ERR_FORMAT,
		                "memo index %llu is beyond the limit of %zu entries "
		                "(fv_ckpt_limits.max_memo)",
		                (unsigned long long)idx, u->lim.max_memo);
	size_t old = u->memo_cap;
	s = grow(u, (void **)&u->memo, &u->memo_cap, sizeof *u->memo, (size_t)idx + 1,
	         u->lim.max_memo, "memo", "max_memo");
	if (s != FV_OK)
		return s;
	if (u->memo_cap > old)
		memset(u->memo + old, 0, (u->memo_cap - old) * sizeof *u->memo);
	if (u->memo[idx] == NULL)
		u->memo_len++;
	u->memo[idx] = v;
	return FV_OK;
}

static fv_status memo_get(fv__unpickler *u, uint64_t idx)
{
	if (idx >= u->memo_cap || u->memo[idx] == NULL)
		return fv_error(FV_ERR_FORMAT, "memo entry %llu was never stored",
		                (unsigned long long)idx);
	return push(u, u->memo[idx]);
}

/* ---- text arguments (protocol 0) ---------------------------------------------------- */

/* A decimal integer, optionally signed, optionally with Python 2's 'L'. */
static fv_status parse_decimal(const unsigned char *p, size_t n, bool allow_l, int64_t *out)
{
	if (allow_l && n > 0 && p[n - 1] == 'L')
		n--;
	size_t i = 0;
	bool neg = false;
	if (i < n && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	if (i == n)
		goto bad;
	uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		unsigned d = p[i] - '0';
		if (x > (lim - d) / 10)
			return fv_error(FV_ERR_FORMAT, "integer '%s' is wider than 64 bits",
			                printable(p, n).s);
		x = 10 * x + d;
	}
	*out = neg ? (int64_t)(0 - x) : (int64_t)x;
	return FV_OK;
bad:
	return fv_error(FV_ERR_FORMAT, "'%s' is not a decimal integer", printable(p, n).s);
}

static fv_status parse_index(const unsigned char *p, size_t n, uint64_t *out)
{
	int64_t i = 0;
	fv_status s = parse_decimal(p, n, false, &i);
	if (s == FV_OK && i < 0)
		s = fv_error(FV_ERR_FORMAT, "memo index %lld is negative", (long long)i);
	*out = (uint64_t)i;
	return s;
}

/* Two's complement little-endian of any length (LONG1, LONG4), if it fits. */
static fv_status parse_long(const unsigned char *p, size_t n, int64_t *out)
{
	if (n == 0) {
		*out = 0;
		return FV_OK;
	}
	bool neg = p[n - 1] & 0x80;
	size_t k = n < 8 ? n : 8;
	for (size_t i = 8; i < n; i++)
		if (p[i] != (neg ? 0xff : 0x00))
			goto wide;
	uint64_t x = le_bytes(p, k);
	if (k < 8 && neg)
		x |= ~(uint64_t)0 << (8 * k);
	if (n > 8 && ((x >> 63) != 0) != neg)
		goto wide;
	*out = (int64_t)x;
	return FV_OK;
wide:
	return fv_error(FV_ERR_FORMAT, "an integer of %zu bytes is wider than 64 bits", n);
}

/* Python's UTF-8 with surrogates allowed ('surrogatepass'). */
static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff)
			return false;
		i += k + 1;
	}
	return true;
}

static size_t utf8_put(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A str value from UTF-8 bytes (the str opcodes; a Python 2 str is read as
** UTF-8, the encoding torch.load uses). */
static fv_status push_utf8(fv__unpickler *u, const unsigned char *p, size_t n)
{
	if (!utf8_valid(p, n))
		return fv_error(FV_ERR_FORMAT, "a string is not valid UTF-8");
	return push(u, fv__pyval_str(u->pool, FV_PY_STR, p, n));
}

/* STRING: a quoted Python 2 literal with backslash escapes
** (codecs.escape_decode), then UTF-8. */
static fv_status push_string_literal(fv__unpickler *u, const unsigned char *p, size_t n)
{
	if (n < 2 || p[0] != p[n - 1] || (p[0] != '\'' && p[0] != '"'))
		return fv_error(FV_ERR_FORMAT, "the STRING argument must be quoted");
	p++, n -= 2;
	unsigned char *o = fv__malloc(n + 1);
	if (o == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	size_t k = 0;
	fv_status s = FV_OK;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\\' || i + 1 == n) {
			o[k++] = p[i];
			continue;
		}
		unsigned char c = p[++i];
		static const char plain[] = "\\'\"abfnrtv", real[] = "\\'\"\a\b\f\n\r\t\v";
		const char *e = memchr(plain, c, sizeof plain - 1);
		if (e != NULL) {
			o[k++] = (unsigned char)real[e - plain];
		} else if (c == '\n') {
			/* a line continuation: nothing */
		} else if (c == 'x') {
			int h1 = i + 1 < n ? hex_value(p[i + 1]) : -1;
			int h2 = i + 2 < n ? hex_value(p[i + 2]) : -1;
			if (h1 < 0 || h2 < 0) {
				s = fv_error(FV_ERR_FORMAT, "STRING has an invalid \\x escape");
				break;
			}
			o[k++] = (unsigned char)(h1 * 16 + h2);
			i += 2;
		} else if (c >= '0' && c <= '7') {
			unsigned v = c - '0';
			for (int d = 0; d < 2 && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '7'; d++)
				v = v * 8 + (unsigned)(p[++i] - '0');
			o[k++] = (unsigned char)v;
		} else {
			o[k++] = '\\';
			o[k++] = c;
		}
	}
	if (s == FV_OK)
		s = push_utf8(u, o, k);
	free(o);
	return s;
}

/* UNICODE: raw-unicode-escape (latin-1 bytes, \uXXXX and \UXXXXXXXX after
** an odd number of backslashes). */
static fv_status push_raw_unicode(fv__unpickler *u, const unsigned char *p, size_t n)
{
	if (n > (SIZE_MAX - 1) / 2)
		return fv_error(FV_ERR_FORMAT, "UNICODE argument too long");
	unsigned char *o = fv__malloc(2 * n + 1);
	if (o == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	size_t k = 0, i = 0;
	fv_status s = FV_OK;
	while (i < n) {
		if (p[i] != '\\') {
			k += utf8_put(o + k, p[i++]);
			continue;
		}
		size_t run = 0;
		while (i < n && p[i] == '\\')
			o[k++] = p[i++], run++;
		if (run % 2 == 0 || i == n || (p[i] != 'u' && p[i] != 'U'))
			continue;
		k--; /* the escaping backslash */
		size_t digits = p[i] == 'u' ? 4 : 8;
		i++;
		uint32_t cp = 0;
		for (size_t d = 0; d < digits; d++, i++) {
			int h = i < n ? hex_value(p[i]) : -1;
			if (h < 0 || cp > 0x10ffff) {
				s = fv_error(FV_ERR_FORMAT, "UNICODE has a truncated \\u escape");
				goto out;
			}
			cp = cp * 16 + (uint32_t)h;
		}
		if (cp > 0x10ffff) {
			s = fv_error(FV_ERR_FORMAT, "UNICODE escape beyond U+10FFFF");
			goto out;
		}
		k += utf8_put(o + k, cp);
	}
	s = push(u, fv__pyval_str(u->pool, FV_PY_STR, o, k));
out:
	free(o);
	return s;
}

static fv_status push_float_text(fv__unpickler *u, const unsigned char *p, size_t n)
{
	char buf[64];
	if (n == 0 || n >= sizeof buf)
		goto bad;
	memcpy(buf, p, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	double d = strtod(buf, &end);
	if (end != buf + n)
		goto bad;
	return push(u, fv__pyval_float(u->pool, d));
bad:
	return fv_error(FV_ERR_FORMAT, "'%s' is not a float", printable(p, n).s);
}

/* ---- containers ------------------------------------------------------------------------ */

/* A tuple (or list, set) of stack[base..sp); pops them. */
static fv_status push_seq(fv__unpickler *u, fv_pyval_kind kind, size_t base)
{
	fv_pyval *t = fv__pyval_container(u->pool, kind, u->sp - base);
	if (t == NULL)
		return fv__pypool_failure(u->pool);
	for (size_t i = base; i < u->sp; i++) {
		fv_status s = fv__pyval_append(u->pool, t, u->stack[i]);
		if (s != FV_OK)
			return s;
	}
	u->sp = base;
	return push(u, t);
}

static fv_status add_items(fv__unpickler *u, fv_pyval *target, size_t base, fv_pyval_kind want)
{
	if (target->kind != want || (target->flags & FV__PY_FROZEN))
		return fv_error(FV_ERR_FORMAT, "the target is %s (%s), not a %s", fv__pyval_a(target),
		                fv_pyval_type_name(target), want == FV_PY_LIST ? "list" : "set");
	for (size_t i = base; i < u->sp; i++) {
		fv_status s = fv__pyval_append(u->pool, target, u->stack[i]);
		if (s != FV_OK)
			return s;
	}
	u->sp = base;
	return FV_OK;
}

static fv_status set_items(fv__unpickler *u, fv_pyval *dict, size_t base)
{
	if (dict->kind != FV_PY_DICT)
		return fv_error(FV_ERR_FORMAT, "the target is %s (%s), not a dict", fv__pyval_a(dict),
		                fv_pyval_type_name(dict));
	if ((u->sp - base) % 2 != 0)
		return fv_error(FV_ERR_FORMAT, "an odd number of items for key/value pairs");
	for (size_t i = base; i < u->sp; i += 2) {
		fv_status s = fv__pyval_setitem(u->pool, dict, u->stack[i], u->stack[i + 1]);
		if (s != FV_OK)
			return s;
	}
	u->sp = base;
	return FV_OK;
}

/* ---- one opcode -------------------------------------------------------------------------- */

static fv_status stack_global(fv__unpickler *u)
{
	fv_pyval *name = NULL, *module = NULL;
	fv_status s = pop(u, &name);
	if (s == FV_OK)
		s = pop(u, &module);
	if (s != FV_OK)
		return s;
	if (module->kind != FV_PY_STR || name->kind != FV_PY_STR)
		return fv_error(FV_ERR_FORMAT, "STACK_GLOBAL needs two str values, got %s and %s",
		                fv__pyval_a(module), fv__pyval_a(name));
	const fv__pyglobal *g = fv__pyglobal_find(module->u.str.s, module->u.str.len, name->u.str.s,
	                                          name->u.str.len);
	if (g == NULL)
		return not_allowed("STACK_GLOBAL", (const unsigned char *)module->u.str.s,
		                   module->u.str.len, (const unsigned char *)name->u.str.s,
		                   name->u.str.len);
	fv_pyval *v = fv__pyval_new(u->pool, FV_PY_GLOBAL);
	if (v != NULL)
		v->u.g = g;
	return push(u, v);
}

static fv_status exec_op(fv__unpickler *u, unsigned char op, const arg *a, bool *stop)
{
	fv__pypool *p = u->pool;
	fv_pyval *x = NULL, *y = NULL, *z = NULL;
	size_t base = 0;
	int64_t i = 0;
	uint64_t idx = 0;
	fv_status s = FV_OK;
	switch (op) {
	case 0x80: /* PROTO */
		if (u->protocol < 0)
			u->protocol = (int)a->u;
		return FV_OK;
	case 0x95: /* FRAME: a hint for buffering; the data is all here */
		return FV_OK;
	case '.': /* STOP */
		if (u->sp != 1 || u->n_marks != 0)
			return fv_error(FV_ERR_FORMAT,
			                "STOP with %zu values and %zu marks on the stack; a pickle ends "
			                "with exactly one value",
			                u->sp, u->n_marks);
		*stop = true;
		return FV_OK;
	case '(': /* MARK */
		s = grow(u, (void **)&u->marks, &u->marks_cap, sizeof *u->marks, u->n_marks + 1,
		         u->lim.max_stack, "mark stack", "max_stack");
		if (s == FV_OK)
			u->marks[u->n_marks++] = u->sp;
		return s;
	case '0': /* POP */
		if (u->sp > fence(u)) {
			u->sp--;
			return FV_OK;
		}
		if (u->n_marks > 0) {
			u->n_marks--;
			return FV_OK;
		}
		return underflow();
	case '1': /* POP_MARK */
		if ((s = pop_mark(u, &base)) == FV_OK)
			u->sp = base;
		return s;
	case '2': /* DUP */
		if ((s = peek(u, 0, &x)) == FV_OK)
			s = push(u, x);
		return s;

	/* numbers */
	case 'I': /* INT: "00"/"01" are Python 2's False/True */
		if (a->n == 2 && a->p[0] == '0' && (a->p[1] == '0' || a->p[1] == '1'))
			return push(u, fv__pyval_bool(p, a->p[1] == '1'));
		if ((s = parse_decimal(a->p, a->n, false, &i)) == FV_OK)
			s = push(u, fv__pyval_int(p, i));
		return s;
	case 'L': /* LONG */
		if ((s = parse_decimal(a->p, a->n, true, &i)) == FV_OK)
			s = push(u, fv__pyval_int(p, i));
		return s;
	case 'J': return push(u, fv__pyval_int(p, (int32_t)(uint32_t)a->u));
	case 'K':
	case 'M': return push(u, fv__pyval_int(p, (int64_t)a->u));
	case 0x8a: /* LONG1 */
	case 0x8b: /* LONG4 */
		if ((s = parse_long(a->p, a->n, &i)) == FV_OK)
			s = push(u, fv__pyval_int(p, i));
		return s;
	case 'F': return push_float_text(u, a->p, a->n);
	case 'G': { /* BINFLOAT: big-endian */
		uint64_t bits = 0;
		for (int k = 0; k < 8; k++) /* a->u holds the bytes little-endian */
			bits = bits << 8 | (uint64_t)((a->u >> (8 * k)) & 0xff);
		double d;
		memcpy(&d, &bits, sizeof d);
		return push(u, fv__pyval_float(p, d));
	}
	case 'N': return push(u, fv__pyval_none(p));
	case 0x88: return push(u, fv__pyval_bool(p, true));
	case 0x89: return push(u, fv__pyval_bool(p, false));

	/* strings */
	case 'S': return push_string_literal(u, a->p, a->n);
	case 'T':
	case 'U':
	case 'X':
	case 0x8c:
	case 0x8d: return push_utf8(u, a->p, a->n);
	case 'V': return push_raw_unicode(u, a->p, a->n);
	case 'B':
	case 'C':
	case 0x8e:
	case 0x96: return push(u, fv__pyval_str(p, FV_PY_BYTES, a->p, a->n));
	case 0x98: /* READONLY_BUFFER: bytes are read-only already */
		if ((s = peek(u, 0, &x)) == FV_OK && x->kind != FV_PY_BYTES)
			s = fv_error(FV_ERR_FORMAT, "READONLY_BUFFER on %s", fv__pyval_a(x));
		return s;

	/* containers */
	case ')': return push(u, fv__pyval_container(p, FV_PY_TUPLE, 0));
	case 0x85:
	case 0x86:
	case 0x87: {
		size_t k = (size_t)(op - 0x84);
		if (u->sp - fence(u) < k)
			return underflow();
		return push_seq(u, FV_PY_TUPLE, u->sp - k);
	}
	case 't':
		if ((s = pop_mark(u, &base)) == FV_OK)
			s = push_seq(u, FV_PY_TUPLE, base);
		return s;
	case ']': return push(u, fv__pyval_container(p, FV_PY_LIST, 0));
	case 'l':
		if ((s = pop_mark(u, &base)) == FV_OK)
			s = push_seq(u, FV_PY_LIST, base);
		return s;
	case 'a': /* APPEND */
		if ((s = pop(u, &x)) != FV_OK || (s = peek(u, 0, &y)) != FV_OK)
			return s;
		if (y->kind != FV_PY_LIST)
			return fv_error(FV_ERR_FORMAT, "the target is %s (%s), not a list", fv__pyval_a(y),
			                fv_pyval_type_name(y));
		return fv__pyval_append(p, y, x);
	case 'e': /* APPENDS: the list is below the mark */
		if ((s = pop_mark(u, &base)) != FV_OK)
			return s;
		if (base <= fence(u))
			return underflow();
		return add_items(u, u->stack[base - 1], base, FV_PY_LIST);
	case '}': return push(u, fv__pyval_container(p, FV_PY_DICT, 0));
	case 'd': /* DICT */
		if ((s = pop_mark(u, &base)) != FV_OK)
			return s;
		if ((x = fv__pyval_container(p, FV_PY_DICT, (u->sp - base) / 2)) == NULL)
			return fv__pypool_failure(p);
		if ((s = set_items(u, x, base)) == FV_OK)
			s = push(u, x);
		return s;
	case 's': /* SETITEM */
		if ((s = pop(u, &y)) == FV_OK && (s = pop(u, &x)) == FV_OK &&
		    (s = peek(u, 0, &z)) == FV_OK) {
			if (z->kind != FV_PY_DICT)
				return fv_error(FV_ERR_FORMAT, "the target is %s (%s), not a dict",
				                fv__pyval_a(z), fv_pyval_type_name(z));
			s = fv__pyval_setitem(p, z, x, y);
		}
		return s;
	case 'u': /* SETITEMS */
		if ((s = pop_mark(u, &base)) != FV_OK)
			return s;
		if (base <= fence(u))
			return underflow();
		return set_items(u, u->stack[base - 1], base);
	case 0x8f: return push(u, fv__pyval_container(p, FV_PY_SET, 0));
	case 0x90: /* ADDITEMS */
		if ((s = pop_mark(u, &base)) != FV_OK)
			return s;
		if (base <= fence(u))
			return underflow();
		return add_items(u, u->stack[base - 1], base, FV_PY_SET);
	case 0x91: /* FROZENSET */
		if ((s = pop_mark(u, &base)) != FV_OK)
			return s;
		if ((s = push_seq(u, FV_PY_SET, base)) == FV_OK)
			u->stack[u->sp - 1]->flags |= FV__PY_FROZEN;
		return s;

	/* memo */
	case 'g':
		if ((s = parse_index(a->p, a->n, &idx)) == FV_OK)
			s = memo_get(u, idx);
		return s;
	case 'h':
	case 'j': return memo_get(u, a->u);
	case 'p':
		if ((s = parse_index(a->p, a->n, &idx)) == FV_OK)
			s = memo_put(u, idx);
		return s;
	case 'q':
	case 'r': return memo_put(u, a->u);
	case 0x94: return memo_put(u, u->memo_len);

	/* names and objects: the allow-list decides */
	case 'c': {
		const fv__pyglobal *g =
			fv__pyglobal_find((const char *)a->p, a->n, (const char *)a->p2, a->n2);
		if (g == NULL)
			return not_allowed("GLOBAL", a->p, a->n, a->p2, a->n2);
		if ((x = fv__pyval_new(p, FV_PY_GLOBAL)) != NULL)
			x->u.g = g;
		return push(u, x);
	}
	case 0x93: return stack_global(u);
	case 'R': /* REDUCE */
		if ((s = pop(u, &y)) == FV_OK && (s = pop(u, &x)) == FV_OK &&
		    (s = fv__pyglobal_reduce(u, x, y, &z)) == FV_OK)
			s = push(u, z);
		return s;
	case 0x81: /* NEWOBJ */
		if ((s = pop(u, &y)) == FV_OK && (s = pop(u, &x)) == FV_OK &&
		    (s = fv__pyglobal_newobj(u, x, y, &z)) == FV_OK)
			s = push(u, z);
		return s;
	case 0x92: /* NEWOBJ_EX: keyword arguments must be empty */
		if ((s = pop(u, &z)) != FV_OK || (s = pop(u, &y)) != FV_OK || (s = pop(u, &x)) != FV_OK)
			return s;
		if (z->kind != FV_PY_DICT || fv_pyval_len(z) != 0)
			return fv_error(FV_ERR_FORMAT, "NEWOBJ_EX with keyword arguments (%s)",
			                fv__pyval_a(z));
		if ((s = fv__pyglobal_newobj(u, x, y, &z)) == FV_OK)
			s = push(u, z);
		return s;
	case 'b': /* BUILD */
		if ((s = pop(u, &y)) == FV_OK && (s = peek(u, 0, &x)) == FV_OK)
			s = fv__pyglobal_build(u, x, y);
		return s;
	case 'P': /* PERSID: a text persistent id (torch uses BINPERSID with a tuple) */
		if ((x = fv__pyval_str(p, FV_PY_STR, a->p, a->n)) == NULL)
			return fv__pypool_failure(p);
		if ((s = fv__persistent_load(u, x, &z)) == FV_OK)
			s = push(u, z);
		return s;
	case 'Q': /* BINPERSID */
		if ((s = pop(u, &x)) == FV_OK && (s = fv__persistent_load(u, x, &z)) == FV_OK)
			s = push(u, z);
		return s;
	}
	return fv_error(FV_ERR_FORMAT, "opcode 0x%02x is not handled", op);
}

/* ---- the whole pickle ----------------------------------------------------------------- */

fv_status fv__unpickle(const unsigned char *pkl, size_t len, const char *file,
                       const char *pkl_name, const fv__storage_source *src,
                       const fv_ckpt_limits *lim, fv__pypool *pool, fv_pyval **root,
                       int *protocol)
{
	fv__unpickler u = {
		.pkl = pkl,
		.len = len,
		.file = file,
		.pkl_name = pkl_name,
		.src = src,
		.lim = fv__ckpt_limits(lim, len),
		.pool = pool,
		.protocol = -1,
	};
	fv_status s = scan(&u);
	size_t at = 0;
	bool stop = false;
	while (s == FV_OK && !stop) {
		const opinfo *o = &ops[pkl[at]];
		arg a;
		size_t next;
		s = decode(&u, at, o, &a, &next);
		if (s == FV_OK)
			s = exec_op(&u, pkl[at], &a, &stop);
		if (s != FV_OK)
			prefix_at(&u, at, o->name);
		at = next;
	}
	if (s == FV_OK) {
		s = fv__pyval_check_tree(pool, u.stack[0]);
		if (s != FV_OK)
			fv_error_prefix("%s: %s: ", file, pkl_name);
	}
	if (s == FV_OK) {
		*root = u.stack[0];
		*protocol = u.protocol < 0 ? 0 : u.protocol;
	}
	free(u.stack);
	free(u.marks);
	free(u.memo);
	return s;
}
