/*
** pickle_globals.c: the allow-list of the pickle machine, and what each
** allowed name means.
**
** A pickle names classes and functions by (module, name) and asks the
** unpickler to call them (REDUCE, NEWOBJ) and to set the state of what
** they made (BUILD).  Here every name a checkpoint needs has a rule in C
** that builds the equivalent inert value, and nothing else is accepted:
** the table below is the whole list, and a name that is not in it is
** refused the moment the machine meets it.  What a rule accepts is
** checked as strictly as Python itself would (argument counts and kinds),
** so a REDUCE on an allowed name still cannot smuggle anything through.
**
**   collections.OrderedDict, collections.defaultdict   dicts
**   torch._utils._rebuild_tensor_v2, _rebuild_parameter(_with_state)
**                                   tensors from storages (ckpt_array.c)
**   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
**                                   storage types, inside persistent ids
**   omegaconf DictConfig, ListConfig, value nodes   their plain contents
**   omegaconf ContainerMetadata, Metadata, typing.Any   opaque, dropped
**   builtins/__builtin__ dict list tuple set frozenset int long float str
**     unicode bytes bytearray bool slice   inert values, simple calls
**   _codecs.encode                  bytes, as protocol 2 writes them
**   numpy ndarray, dtype, (_)core.multiarray._reconstruct and scalar,
**     (_)core.numeric._frombuffer   arrays, dtypes and scalars
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "io/ckpt_internal.h"

/* What the machine may do with a name. */
typedef enum gkind {
	GK_ORDEREDDICT,
	GK_DEFAULTDICT,
	GK_REBUILD_TENSOR,
	GK_REBUILD_PARAMETER,
	GK_STORAGE,       /* param: its fv_dtype */
	GK_OC_CONTAINER,  /* DictConfig, ListConfig: become `_content` */
	GK_OC_NODE,       /* AnyNode and the typed nodes: become `_val` */
	GK_OC_METADATA,   /* kept opaque */
	GK_INERT,         /* only ever a value (typing.Any) */
	GK_BUILTIN,       /* param: enum builtin */
	GK_CODECS_ENCODE,
	GK_NP_RECONSTRUCT,
	GK_NP_NDARRAY,
	GK_NP_DTYPE,
	GK_NP_SCALAR,
	GK_NP_FROMBUFFER
} gkind;

enum builtin {
	B_DICT,
	B_LIST,
	B_TUPLE,
	B_SET,
	B_FROZENSET,
	B_INT,
	B_FLOAT,
	B_STR,
	B_BYTES,
	B_BYTEARRAY,
	B_BOOL,
	B_SLICE
};

struct fv__pyglobal {
	const char *module, *name, *dotted;
	unsigned char kind;
	unsigned char param;
};

#define G(m, n, k, p) {m, n, m "." n, k, p}
/* Python 3's and Python 2's (pickle protocol 2 with fix_imports) spelling. */
#define B(n, p) G("builtins", n, GK_BUILTIN, p), G("__builtin__", n, GK_BUILTIN, p)

static const fv__pyglobal allowed[] = {
	G("collections", "OrderedDict", GK_ORDEREDDICT, 0),
	G("collections", "defaultdict", GK_DEFAULTDICT, 0),
	G("torch._utils", "_rebuild_tensor_v2", GK_REBUILD_TENSOR, 0),
	G("torch._utils", "_rebuild_parameter", GK_REBUILD_PARAMETER, 0),
	G("torch._utils", "_rebuild_parameter_with_state", GK_REBUILD_PARAMETER, 1),
	G("torch", "FloatStorage", GK_STORAGE, FV_DTYPE_F32),
	G("torch", "DoubleStorage", GK_STORAGE, FV_DTYPE_F64),
	G("torch", "HalfStorage", GK_STORAGE, FV_DTYPE_F16),
	G("torch", "BFloat16Storage", GK_STORAGE, FV_DTYPE_BF16),
	G("torch", "LongStorage", GK_STORAGE, FV_DTYPE_I64),
	G("torch", "IntStorage", GK_STORAGE, FV_DTYPE_I32),
	G("torch", "ShortStorage", GK_STORAGE, FV_DTYPE_I16),
	G("torch", "CharStorage", GK_STORAGE, FV_DTYPE_I8),
	G("torch", "ByteStorage", GK_STORAGE, FV_DTYPE_U8),
	G("torch", "BoolStorage", GK_STORAGE, FV_DTYPE_BOOL),
	G("omegaconf.dictconfig", "DictConfig", GK_OC_CONTAINER, 0),
	G("omegaconf.listconfig", "ListConfig", GK_OC_CONTAINER, 1),
	G("omegaconf.nodes", "AnyNode", GK_OC_NODE, 0),
	G("omegaconf.nodes", "StringNode", GK_OC_NODE, 0),
	G("omegaconf.nodes", "IntegerNode", GK_OC_NODE, 0),
	G("omegaconf.nodes", "FloatNode", GK_OC_NODE, 0),
	G("omegaconf.nodes", "BooleanNode", GK_OC_NODE, 0),
	G("omegaconf.nodes", "BytesNode", GK_OC_NODE, 0),
	G("omegaconf.base", "ContainerMetadata", GK_OC_METADATA, 0),
	G("omegaconf.base", "Metadata", GK_OC_METADATA, 0),
	G("typing", "Any", GK_INERT, 0),
	B("dict", B_DICT),
	B("list", B_LIST),
	B("tuple", B_TUPLE),
	B("set", B_SET),
	B("frozenset", B_FROZENSET),
	B("int", B_INT),
	B("long", B_INT),
	B("float", B_FLOAT),
	B("str", B_STR),
	B("unicode", B_STR),
	B("bytes", B_BYTES),
	B("bytearray", B_BYTEARRAY),
	B("bool", B_BOOL),
	B("slice", B_SLICE),
	G("_codecs", "encode", GK_CODECS_ENCODE, 0),
	G("numpy", "ndarray", GK_NP_NDARRAY, 0),
	G("numpy", "dtype", GK_NP_DTYPE, 0),
	G("numpy.core.multiarray", "_reconstruct", GK_NP_RECONSTRUCT, 0),
	G("numpy._core.multiarray", "_reconstruct", GK_NP_RECONSTRUCT, 0),
	G("numpy.core.multiarray", "scalar", GK_NP_SCALAR, 0),
	G("numpy._core.multiarray", "scalar", GK_NP_SCALAR, 0),
	G("numpy.core.numeric", "_frombuffer", GK_NP_FROMBUFFER, 0),
	G("numpy._core.numeric", "_frombuffer", GK_NP_FROMBUFFER, 0),
};

#define N_ALLOWED (sizeof allowed / sizeof allowed[0])

const fv__pyglobal *fv__pyglobal_find(const char *module, size_t mlen, const char *name,
                                      size_t nlen)
{
	for (size_t i = 0; i < N_ALLOWED; i++) {
		const fv__pyglobal *g = &allowed[i];
		if (strlen(g->module) == mlen && memcmp(g->module, module, mlen) == 0 &&
		    strlen(g->name) == nlen && memcmp(g->name, name, nlen) == 0)
			return g;
	}
	return NULL;
}

const char *fv__pyglobal_dotted(const fv__pyglobal *g)
{
	return g->dotted;
}

/* ---- helpers ------------------------------------------------------------------------ */

static fv_status made(fv__unpickler *u, fv_pyval *v, fv_pyval **out)
{
	if (v == NULL)
		return fv__pypool_failure(fv__unpickler_pool(u));
	*out = v;
	return FV_OK;
}

static const fv_pyval *arg_at(const fv_pyval *args, size_t i)
{
	return fv_pyval_item(args, i);
}

static fv_status bad_args(const fv__pyglobal *g, const char *expected, const fv_pyval *args)
{
	return fv_error(FV_ERR_FORMAT, "%s called with %zu argument%s; expected %s", g->dotted,
	                fv_pyval_len(args), fv_pyval_len(args) == 1 ? "" : "s", expected);
}

static fv_status bad_arg(const fv__pyglobal *g, const char *what, const fv_pyval *v,
                         const char *expected)
{
	return fv_error(FV_ERR_FORMAT, "%s: %s is %s (%s); expected %s", g->dotted, what,
	                fv__pyval_a(v), fv_pyval_type_name(v), expected);
}

/* A tuple of non-negative ints (sizes, strides, shapes). */
static fv_status int_tuple(const fv__pyglobal *g, const char *what, const fv_pyval *t,
                           int64_t *out, int *n)
{
	if (t->kind != FV_PY_TUPLE)
		return bad_arg(g, what, t, "a tuple of ints");
	size_t len = fv_pyval_len(t);
	if (len > FV_CKPT_MAX_DIMS)
		return fv_error(FV_ERR_FORMAT, "%s: %s has %zu entries; at most %d dims are supported",
		                g->dotted, what, len, FV_CKPT_MAX_DIMS);
	for (size_t i = 0; i < len; i++) {
		const fv_pyval *x = fv_pyval_item(t, i);
		if (x->kind != FV_PY_INT || x->u.i < 0)
			return fv_error(FV_ERR_FORMAT, "%s: %s entry %zu is %s; expected an int >= 0",
			                g->dotted, what, i, fv__pyval_a(x));
		out[i] = x->u.i;
	}
	*n = (int)len;
	return FV_OK;
}

/* Items of a tuple, list or set into a new container of `kind`. */
static fv_status copy_seq(fv__unpickler *u, const fv_pyval *src, fv_pyval_kind kind,
                          fv_pyval **out)
{
	fv__pypool *p = fv__unpickler_pool(u);
	fv_pyval *c = fv__pyval_container(p, kind, fv_pyval_len(src));
	if (c == NULL)
		return fv__pypool_failure(p);
	for (size_t i = 0; i < fv_pyval_len(src); i++) {
		fv_status s = fv__pyval_append(p, c, (fv_pyval *)fv_pyval_item(src, i));
		if (s != FV_OK)
			return s;
	}
	*out = c;
	return FV_OK;
}

static bool is_seq(const fv_pyval *v)
{
	return v->kind == FV_PY_TUPLE || v->kind == FV_PY_LIST || v->kind == FV_PY_SET;
}

/* dict(x): a dict, or a sequence of (key, value) pairs, into `d`. */
static fv_status fill_dict(fv__unpickler *u, const fv__pyglobal *g, fv_pyval *d,
                           const fv_pyval *src)
{
	fv__pypool *p = fv__unpickler_pool(u);
	if (src->kind == FV_PY_DICT) {
		for (size_t i = 0; i < fv_pyval_len(src); i++) {
			fv_status s = fv__pyval_setitem(p, d, (fv_pyval *)fv_pyval_key(src, i),
			                                (fv_pyval *)fv_pyval_item(src, i));
			if (s != FV_OK)
				return s;
		}
		return FV_OK;
	}
	if (src->kind != FV_PY_LIST && src->kind != FV_PY_TUPLE)
		return bad_arg(g, "the argument", src, "a dict or a list of (key, value) pairs");
	for (size_t i = 0; i < fv_pyval_len(src); i++) {
		const fv_pyval *pair = fv_pyval_item(src, i);
		if ((pair->kind != FV_PY_TUPLE && pair->kind != FV_PY_LIST) || fv_pyval_len(pair) != 2)
			return bad_arg(g, "an item", pair, "a (key, value) pair");
		fv_status s = fv__pyval_setitem(p, d, (fv_pyval *)fv_pyval_item(pair, 0),
		                                (fv_pyval *)fv_pyval_item(pair, 1));
		if (s != FV_OK)
			return s;
	}
	return FV_OK;
}

/* A str's code points as latin-1 bytes (how protocol 2 carries bytes). */
static fv_status latin1_bytes(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *str,
                              fv_pyval **out)
{
	fv__pypool *p = fv__unpickler_pool(u);
	const unsigned char *s = (const unsigned char *)str->u.str.s;
	size_t n = str->u.str.len, k = 0;
	unsigned char *o = fv__malloc(n + 1);
	if (o == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	for (size_t i = 0; i < n;) {
		uint32_t cp = s[i];
		if (cp < 0x80) {
			i++;
		} else if ((cp & 0xe0) == 0xc0) { /* validated UTF-8: two bytes */
			cp = (cp & 0x1f) << 6 | (s[i + 1] & 0x3fu);
			i += 2;
		} else {
			free(o);
			return fv_error(FV_ERR_FORMAT,
			                "%s: the text holds a character beyond U+00FF, which latin-1 cannot "
			                "encode",
			                g->dotted);
		}
		if (cp > 0xff) {
			free(o);
			return fv_error(FV_ERR_FORMAT, "%s: character U+%04X is beyond latin-1", g->dotted,
			                (unsigned)cp);
		}
		o[k++] = (unsigned char)cp;
	}
	fv_pyval *v = fv__pyval_str(p, FV_PY_BYTES, o, k);
	free(o);
	return made(u, v, out);
}

static bool str_is(const fv_pyval *v, const char *s)
{
	return v->kind == FV_PY_STR && v->u.str.len == strlen(s) &&
	       memcmp(v->u.str.s, s, v->u.str.len) == 0;
}

/* bytes from (str, encoding) as _codecs.encode and bytearray's protocol 2
** form write them. */
static fv_status encode_str(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *str,
                            const fv_pyval *enc, fv_pyval **out)
{
	fv__pypool *p = fv__unpickler_pool(u);
	if (str->kind != FV_PY_STR)
		return bad_arg(g, "the text", str, "a str");
	if (enc == NULL || str_is(enc, "utf-8") || str_is(enc, "utf8") || str_is(enc, "utf_8"))
		return made(u, fv__pyval_str(p, FV_PY_BYTES, str->u.str.s, str->u.str.len), out);
	if (str_is(enc, "latin1") || str_is(enc, "latin-1") || str_is(enc, "latin_1") ||
	    str_is(enc, "iso-8859-1") || str_is(enc, "iso8859-1"))
		return latin1_bytes(u, g, str, out);
	return bad_arg(g, "the encoding", enc, "'latin1' or 'utf-8'");
}

/* ---- builtins ------------------------------------------------------------------------ */

static fv_status call_builtin(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *args,
                              fv_pyval **out)
{
	fv__pypool *p = fv__unpickler_pool(u);
	size_t n = fv_pyval_len(args);
	const fv_pyval *x = n > 0 ? arg_at(args, 0) : NULL;
	switch ((enum builtin)g->param) {
	case B_DICT: {
		if (n > 1)
			return bad_args(g, "at most 1", args);
		fv_pyval *d = fv__pyval_container(p, FV_PY_DICT, 0);
		if (d == NULL)
			return fv__pypool_failure(p);
		*out = d;
		return x ? fill_dict(u, g, d, x) : FV_OK;
	}
	case B_LIST:
	case B_TUPLE:
	case B_SET:
	case B_FROZENSET: {
		static const fv_pyval_kind kinds[] = {
			[B_LIST] = FV_PY_LIST, [B_TUPLE] = FV_PY_TUPLE, [B_SET] = FV_PY_SET,
			[B_FROZENSET] = FV_PY_SET};
		if (n > 1)
			return bad_args(g, "at most 1", args);
		if (x != NULL && !is_seq(x))
			return bad_arg(g, "the argument", x, "a tuple, list or set");
		fv_status s = copy_seq(u, x ? x : args, kinds[g->param], out);
		if (s == FV_OK && g->param == B_FROZENSET)
			(*out)->flags |= FV__PY_FROZEN;
		return s;
	}
	case B_INT:
		if (n > 1)
			return bad_args(g, "at most 1", args);
		if (x == NULL)
			return made(u, fv__pyval_int(p, 0), out);
		if (x->kind == FV_PY_INT || x->kind == FV_PY_BOOL)
			return made(u, fv__pyval_int(p, x->kind == FV_PY_INT ? x->u.i : x->u.b), out);
		if (x->kind == FV_PY_FLOAT && x->u.f > -0x1p63 && x->u.f < 0x1p63)
			return made(u, fv__pyval_int(p, (int64_t)x->u.f), out);
		return bad_arg(g, "the argument", x, "an int, a bool or a float within 64 bits");
	case B_FLOAT:
		if (n > 1)
			return bad_args(g, "at most 1", args);
		if (x == NULL)
			return made(u, fv__pyval_float(p, 0), out);
		if (x->kind == FV_PY_FLOAT)
			return made(u, fv__pyval_float(p, x->u.f), out);
		if (x->kind == FV_PY_INT || x->kind == FV_PY_BOOL)
			return made(u, fv__pyval_float(p, x->kind == FV_PY_INT ? (double)x->u.i : x->u.b),
			            out);
		if (x->kind == FV_PY_STR) { /* float('inf'), float('nan') */
			char *end;
			double d = strtod(x->u.str.s, &end);
			if (x->u.str.len > 0 && end == x->u.str.s + x->u.str.len)
				return made(u, fv__pyval_float(p, d), out);
		}
		return bad_arg(g, "the argument", x, "a number or the text of one");
	case B_STR:
		if (n > 1)
			return bad_args(g, "at most 1", args);
		if (x == NULL)
			return made(u, fv__pyval_str(p, FV_PY_STR, "", 0), out);
		if (x->kind != FV_PY_STR)
			return bad_arg(g, "the argument", x, "a str");
		*out = (fv_pyval *)x;
		return FV_OK;
	case B_BYTES:
	case B_BYTEARRAY:
		if (n > 2)
			return bad_args(g, "at most 2", args);
		if (x == NULL)
			return made(u, fv__pyval_str(p, FV_PY_BYTES, "", 0), out);
		if (x->kind == FV_PY_BYTES && n == 1)
			return made(u, fv__pyval_str(p, FV_PY_BYTES, x->u.str.s, x->u.str.len), out);
		if (x->kind == FV_PY_STR)
			return encode_str(u, g, x, n == 2 ? arg_at(args, 1) : NULL, out);
		if ((x->kind == FV_PY_LIST || x->kind == FV_PY_TUPLE) && n == 1) {
			size_t len = fv_pyval_len(x);
			unsigned char *b = fv__pypool_blob(p, len + 1);
			if (b == NULL)
				return fv__pypool_failure(p);
			for (size_t i = 0; i < len; i++) {
				const fv_pyval *e = fv_pyval_item(x, i);
				if (e->kind != FV_PY_INT || e->u.i < 0 || e->u.i > 255)
					return bad_arg(g, "an item", e, "an int in 0..255");
				b[i] = (unsigned char)e->u.i;
			}
			return made(u, fv__pyval_str(p, FV_PY_BYTES, b, len), out);
		}
		return bad_arg(g, "the argument", x, "bytes, a str with its encoding, or a list of ints");
	case B_BOOL:
		if (n > 1)
			return bad_args(g, "at most 1", args);
		if (x == NULL)
			return made(u, fv__pyval_bool(p, false), out);
		switch (x->kind) {
		case FV_PY_NONE: return made(u, fv__pyval_bool(p, false), out);
		case FV_PY_BOOL: return made(u, fv__pyval_bool(p, x->u.b), out);
		case FV_PY_INT: return made(u, fv__pyval_bool(p, x->u.i != 0), out);
		case FV_PY_FLOAT: return made(u, fv__pyval_bool(p, x->u.f != 0), out);
		default: return bad_arg(g, "the argument", x, "None, a bool or a number");
		}
	case B_SLICE: {
		if (n < 1 || n > 3)
			return bad_args(g, "1 to 3", args);
		fv_pyval *sl = fv__pyval_container(p, FV_PY_SLICE, 3);
		if (sl == NULL)
			return fv__pypool_failure(p);
		fv_pyval *none = fv__pyval_none(p);
		fv_pyval *parts[3] = {none, (fv_pyval *)x, none}; /* slice(stop) */
		if (n >= 2)
			parts[0] = (fv_pyval *)x, parts[1] = (fv_pyval *)arg_at(args, 1);
		if (n == 3)
			parts[2] = (fv_pyval *)arg_at(args, 2);
		for (int i = 0; i < 3; i++) {
			fv_status s = fv__pyval_append(p, sl, parts[i]);
			if (s != FV_OK)
				return s;
		}
		*out = sl;
		return FV_OK;
	}
	}
	return bad_args(g, "nothing", args);
}

/* ---- torch ------------------------------------------------------------------------------- */

static const fv__pyobj *storage_of(const fv_pyval *v)
{
	if (v->kind != FV_PY_OBJECT || v->u.obj->cls->kind != GK_STORAGE)
		return NULL;
	return v->u.obj;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
** backward_hooks[, metadata]) */
static fv_status rebuild_tensor(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *args,
                                fv_pyval **out)
{
	size_t n = fv_pyval_len(args);
	if (n != 6 && n != 7)
		return bad_args(g, "6 or 7 (storage, storage_offset, size, stride, requires_grad, "
		                   "backward_hooks[, metadata])",
		                args);
	const fv__pyobj *st = storage_of(arg_at(args, 0));
	if (st == NULL)
		return bad_arg(g, "the storage", arg_at(args, 0), "a storage from a persistent id");
	const fv_pyval *off = arg_at(args, 1), *rg = arg_at(args, 4), *hooks = arg_at(args, 5);
	if (off->kind != FV_PY_INT)
		return bad_arg(g, "storage_offset", off, "an int");
	if (rg->kind != FV_PY_BOOL)
		return bad_arg(g, "requires_grad", rg, "a bool");
	if (hooks->kind != FV_PY_DICT)
		return bad_arg(g, "backward_hooks", hooks, "an OrderedDict");
	fv__view v = {.data = st->data,
	              .src_numel = st->numel,
	              .dtype = st->dtype,
	              .big_endian = fv__unpickler_storages(u)->big_endian,
	              .offset = off->u.i};
	int nstride;
	fv_status s = int_tuple(g, "size", arg_at(args, 2), v.shape, &v.ndim);
	if (s == FV_OK)
		s = int_tuple(g, "stride", arg_at(args, 3), v.stride, &nstride);
	if (s == FV_OK && nstride != v.ndim)
		s = fv_error(FV_ERR_FORMAT, "%s: size has %d dims but stride %d", g->dotted, v.ndim,
		             nstride);
	fv__pypool *p = fv__unpickler_pool(u);
	fv_ckpt_array *a;
	if (s == FV_OK)
		s = fv__array_from_view(p, &v, &a);
	if (s != FV_OK)
		return s;
	a->requires_grad = rg->u.b;
	fv_pyval *t = fv__pyval_new(p, FV_PY_TENSOR);
	if (t != NULL)
		t->u.arr = a;
	return made(u, t, out);
}

/* _rebuild_parameter(data, requires_grad, backward_hooks) and
** _rebuild_parameter_with_state(..., state): the tensor, marked. */
static fv_status rebuild_parameter(fv__unpickler *u, const fv__pyglobal *g,
                                   const fv_pyval *args, fv_pyval **out)
{
	size_t want = g->param ? 4 : 3;
	if (fv_pyval_len(args) != want)
		return bad_args(g, g->param ? "4 (data, requires_grad, backward_hooks, state)"
		                            : "3 (data, requires_grad, backward_hooks)",
		                args);
	const fv_pyval *data = arg_at(args, 0), *rg = arg_at(args, 1);
	if (data->kind != FV_PY_TENSOR)
		return bad_arg(g, "data", data, "a tensor");
	if (rg->kind != FV_PY_BOOL)
		return bad_arg(g, "requires_grad", rg, "a bool");
	fv__pypool *p = fv__unpickler_pool(u);
	fv_ckpt_array *a = fv__pypool_blob(p, sizeof *a);
	fv_pyval *t = a ? fv__pyval_new(p, FV_PY_TENSOR) : NULL;
	if (t == NULL)
		return fv__pypool_failure(p);
	*a = *data->u.arr; /* the elements are shared */
	a->requires_grad = rg->u.b;
	a->is_parameter = true;
	t->u.arr = a;
	*out = t;
	return FV_OK;
}

static bool key_ok(const char *k, size_t n)
{
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == '/' || k[i] == 0x7f)
			return false;
	return true;
}

/* persistent_load(('storage', storage_type, key, location, numel)) */
fv_status fv__persistent_load(fv__unpickler *u, fv_pyval *pid, fv_pyval **out)
{
	const fv__storage_source *src = fv__unpickler_storages(u);
	if (pid->kind != FV_PY_TUPLE || fv_pyval_len(pid) != 5 || !str_is(arg_at(pid, 0), "storage"))
		return fv_error(FV_ERR_FORMAT,
		                "a persistent id is %s (%s); torch writes ('storage', storage type, key, "
		                "location, numel)",
		                fv__pyval_a(pid), fv_pyval_type_name(pid));
	const fv_pyval *type = arg_at(pid, 1), *key = arg_at(pid, 2), *loc = arg_at(pid, 3),
	               *numel = arg_at(pid, 4);
	if (type->kind != FV_PY_GLOBAL || type->u.g->kind != GK_STORAGE)
		return fv_error(FV_ERR_FORMAT, "a persistent id's storage type is %s (%s), not a torch "
		                "storage type such as torch.FloatStorage",
		                fv__pyval_a(type), fv_pyval_type_name(type));
	if (key->kind != FV_PY_STR || !key_ok(key->u.str.s, key->u.str.len))
		return fv_error(FV_ERR_FORMAT, "a persistent id's key is %s; expected a record name "
		                "such as '0'",
		                fv__pyval_a(key));
	if (loc->kind != FV_PY_STR)
		return fv_error(FV_ERR_FORMAT, "storage '%s': its location is %s; expected a str such "
		                "as 'cpu'",
		                key->u.str.s, fv__pyval_a(loc));
	if (numel->kind != FV_PY_INT || numel->u.i < 0)
		return fv_error(FV_ERR_FORMAT, "storage '%s': numel is %s; expected an int >= 0",
		                key->u.str.s, fv__pyval_a(numel));
	if (src == NULL)
		return fv_error(FV_ERR_FORMAT, "storage '%s': a bare pickle has no storage records",
		                key->u.str.s);
	fv_dtype dt = (fv_dtype)type->u.g->param;
	size_t esize = fv_dtype_size(dt);
	const unsigned char *data;
	size_t len;
	fv_status s = src->get(src->ctx, key->u.str.s, &data, &len);
	if (s != FV_OK)
		return s;
	if ((uint64_t)numel->u.i > len / esize)
		return fv_error(FV_ERR_FORMAT,
		                "storage '%s' (%s): numel %lld x %zu bytes does not fit in its record "
		                "data/%s of %zu bytes (a storage larger than its record)",
		                key->u.str.s, type->u.g->dotted, (long long)numel->u.i, esize,
		                key->u.str.s, len);
	fv_pyval *v = fv__pyval_object(fv__unpickler_pool(u), type->u.g);
	if (v == NULL)
		return fv__pypool_failure(fv__unpickler_pool(u));
	v->u.obj->dtype = dt;
	v->u.obj->data = data;
	v->u.obj->numel = numel->u.i;
	v->u.obj->built = true;
	*out = v;
	return FV_OK;
}

/* ---- numpy ------------------------------------------------------------------------------- */

/* A numpy type string: "f8", "<i4", "|b1", "float32", ... */
static fv_status parse_np_dtype(const fv__pyglobal *g, const fv_pyval *code, fv_dtype *dt,
                                bool *big_endian)
{
	if (code->kind != FV_PY_STR)
		return bad_arg(g, "the type", code, "a str such as 'f8'");
	const char *s = code->u.str.s;
	size_t n = code->u.str.len;
	*big_endian = false;
	if (n > 0 && strchr("<>=|", s[0]) != NULL) {
		*big_endian = s[0] == '>';
		s++, n--;
	}
	static const struct {
		const char *code, *name;
		fv_dtype dt;
	} types[] = {
		{"f8", "float64", FV_DTYPE_F64}, {"f4", "float32", FV_DTYPE_F32},
		{"f2", "float16", FV_DTYPE_F16}, {"i8", "int64", FV_DTYPE_I64},
		{"i4", "int32", FV_DTYPE_I32},   {"i2", "int16", FV_DTYPE_I16},
		{"i1", "int8", FV_DTYPE_I8},     {"u1", "uint8", FV_DTYPE_U8},
		{"b1", "bool", FV_DTYPE_BOOL},
	};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if ((strlen(types[i].code) == n && memcmp(types[i].code, s, n) == 0) ||
		    (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0)) {
			*dt = types[i].dt;
			return FV_OK;
		}
	return fv_error(FV_ERR_FORMAT,
	                "%s: numpy type '%s' is not supported (floats f2/f4/f8, ints i1/i2/i4/i8, "
	                "u1 and b1 are)",
	                g->dotted, code->u.str.s);
}

static const fv__pyobj *dtype_of(const fv_pyval *v)
{
	if (v->kind != FV_PY_OBJECT || v->u.obj->cls->kind != GK_NP_DTYPE)
		return NULL;
	return v->u.obj;
}

/* numpy.dtype(code, align, copy) */
static fv_status np_dtype(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *args,
                          fv_pyval **out)
{
	size_t n = fv_pyval_len(args);
	if (n < 1 || n > 3)
		return bad_args(g, "1 to 3 (type, align, copy)", args);
	fv_dtype dt = FV_DTYPE_F64;
	bool be = false;
	fv_status s = parse_np_dtype(g, arg_at(args, 0), &dt, &be);
	if (s != FV_OK)
		return s;
	fv_pyval *v = fv__pyval_object(fv__unpickler_pool(u), g);
	if (v == NULL)
		return fv__pypool_failure(fv__unpickler_pool(u));
	v->u.obj->dtype = dt;
	v->u.obj->big_endian = be && fv_dtype_size(dt) > 1;
	*out = v;
	return FV_OK;
}

/* The dtype's state (version, byte order, subarray, names, fields, ...):
** only the byte order matters for the plain types read here. */
static fv_status np_dtype_state(const fv__pyglobal *g, fv__pyobj *o, const fv_pyval *state)
{
	size_t n = fv_pyval_len(state);
	if (state->kind != FV_PY_TUPLE || n < 2)
		return bad_arg(g, "the state", state, "a tuple (version, byte order, ...)");
	const fv_pyval *order = arg_at(state, 1);
	if (!(str_is(order, "<") || str_is(order, ">") || str_is(order, "=") || str_is(order, "|")))
		return bad_arg(g, "the byte order", order, "'<', '>', '=' or '|'");
	for (size_t i = 2; i < 5 && i < n; i++)
		if (arg_at(state, i)->kind != FV_PY_NONE)
			return fv_error(FV_ERR_FORMAT, "%s: structured or subarray dtypes are not supported",
			                g->dotted);
	o->big_endian = str_is(order, ">") && fv_dtype_size(o->dtype) > 1;
	return FV_OK;
}

/* Raw array bytes: bytes, or a str of latin-1 code points (Python 2). */
static fv_status raw_bytes(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *v,
                           const fv_pyval **out)
{
	if (v->kind == FV_PY_BYTES) {
		*out = v;
		return FV_OK;
	}
	if (v->kind == FV_PY_STR) {
		fv_pyval *b = NULL;
		fv_status s = latin1_bytes(u, g, v, &b);
		*out = b;
		return s;
	}
	if (v->kind == FV_PY_LIST)
		return fv_error(FV_ERR_FORMAT, "%s: numpy object arrays are not supported", g->dotted);
	return bad_arg(g, "the data", v, "bytes");
}

/* An NDARRAY from dense bytes in C or Fortran order. */
static fv_status np_array(fv__unpickler *u, const fv__pyglobal *g, const fv__pyobj *dt,
                          const fv_pyval *shape, bool fortran, const fv_pyval *data,
                          fv_pyval **out)
{
	fv__view v = {.dtype = dt->dtype, .big_endian = dt->big_endian};
	fv_status s = int_tuple(g, "the shape", shape, v.shape, &v.ndim);
	if (s != FV_OK)
		return s;
	const fv_pyval *raw = NULL;
	if ((s = raw_bytes(u, g, data, &raw)) != FV_OK)
		return s;
	int64_t numel = 1;
	for (int d = 0; d < v.ndim; d++)
		if (__builtin_mul_overflow(numel, v.shape[d], &numel))
			return fv_error(FV_ERR_FORMAT, "%s: the shape has too many elements", g->dotted);
	size_t esize = fv_dtype_size(dt->dtype);
	if ((uint64_t)numel > raw->u.str.len / esize || (size_t)numel * esize != raw->u.str.len)
		return fv_error(FV_ERR_FORMAT,
		                "%s: %lld elements of %zu bytes need %llu bytes of data, but there are "
		                "%zu",
		                g->dotted, (long long)numel, esize,
		                (unsigned long long)numel * (unsigned long long)esize, raw->u.str.len);
	if (numel > 0) { /* strides fit: their products are at most numel */
		int64_t step = 1;
		for (int k = 0; k < v.ndim; k++) {
			int d = fortran ? k : v.ndim - 1 - k;
			v.stride[d] = step;
			step *= v.shape[d];
		}
	}
	v.data = (const unsigned char *)raw->u.str.s;
	v.src_numel = numel;
	fv__pypool *p = fv__unpickler_pool(u);
	fv_ckpt_array *a;
	if ((s = fv__array_from_view(p, &v, &a)) != FV_OK)
		return s;
	fv_pyval *r = fv__pyval_new(p, FV_PY_NDARRAY);
	if (r != NULL)
		r->u.arr = a;
	return made(u, r, out);
}

/* BUILD on an ndarray from _reconstruct: ([version,] shape, dtype,
** is_fortran, data). */
static fv_status np_ndarray_state(fv__unpickler *u, const fv__pyglobal *g, fv_pyval *obj,
                                  const fv_pyval *state)
{
	size_t n = fv_pyval_len(state);
	if (state->kind != FV_PY_TUPLE || (n != 4 && n != 5))
		return bad_arg(g, "the state", state, "a tuple (version, shape, dtype, is_fortran, data)");
	size_t k = n - 4;
	const fv_pyval *shape = arg_at(state, k), *dtype = arg_at(state, k + 1),
	               *fortran = arg_at(state, k + 2), *data = arg_at(state, k + 3);
	const fv__pyobj *dt = dtype_of(dtype);
	if (dt == NULL)
		return bad_arg(g, "the dtype", dtype, "a numpy.dtype");
	if (fortran->kind != FV_PY_BOOL && fortran->kind != FV_PY_INT)
		return bad_arg(g, "is_fortran", fortran, "a bool");
	bool f = fortran->kind == FV_PY_BOOL ? fortran->u.b : fortran->u.i != 0;
	fv_pyval *arr;
	fv_status s = np_array(u, g, dt, shape, f, data, &arr);
	if (s == FV_OK)
		fv__pyval_become(obj, arr);
	return s;
}

/* numpy.core.multiarray.scalar(dtype, bytes) */
static fv_status np_scalar(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *args,
                           fv_pyval **out)
{
	if (fv_pyval_len(args) != 2)
		return bad_args(g, "2 (dtype, bytes)", args);
	const fv__pyobj *dt = dtype_of(arg_at(args, 0));
	if (dt == NULL)
		return bad_arg(g, "the dtype", arg_at(args, 0), "a numpy.dtype");
	const fv_pyval *raw = NULL;
	fv_status s = raw_bytes(u, g, arg_at(args, 1), &raw);
	if (s != FV_OK)
		return s;
	if (raw->u.str.len != fv_dtype_size(dt->dtype))
		return fv_error(FV_ERR_FORMAT, "%s: %zu bytes for a %zu-byte scalar", g->dotted,
		                raw->u.str.len, fv_dtype_size(dt->dtype));
	return made(u,
	            fv__scalar_from_bytes(fv__unpickler_pool(u), dt->dtype, dt->big_endian,
	                                  (const unsigned char *)raw->u.str.s),
	            out);
}

/* numpy.core.numeric._frombuffer(buffer, dtype, shape, order) */
static fv_status np_frombuffer(fv__unpickler *u, const fv__pyglobal *g, const fv_pyval *args,
                               fv_pyval **out)
{
	if (fv_pyval_len(args) != 4)
		return bad_args(g, "4 (buffer, dtype, shape, order)", args);
	const fv__pyobj *dt = dtype_of(arg_at(args, 1));
	if (dt == NULL)
		return bad_arg(g, "the dtype", arg_at(args, 1), "a numpy.dtype");
	const fv_pyval *order = arg_at(args, 3);
	if (!str_is(order, "C") && !str_is(order, "F"))
		return bad_arg(g, "the order", order, "'C' or 'F'");
	return np_array(u, g, dt, arg_at(args, 2), str_is(order, "F"), arg_at(args, 0), out);
}

/* ---- REDUCE, NEWOBJ, BUILD ------------------------------------------------------------- */

static fv_status not_callable(const char *op, const fv_pyval *f)
{
	if (f->kind == FV_PY_GLOBAL)
		return fv_error(FV_ERR_FORMAT,
		                "%s on %s is not allowed: a checkpoint never asks for that, and this "
		                "reader calls nothing it does not know",
		                op, f->u.g->dotted);
	return fv_error(FV_ERR_FORMAT,
	                "%s on %s (%s): only allow-listed functions and classes can be %s", op,
	                fv__pyval_a(f), fv_pyval_type_name(f), op[0] == 'R' ? "called" : "made");
}

fv_status fv__pyglobal_reduce(fv__unpickler *u, const fv_pyval *callable, fv_pyval *args,
                              fv_pyval **out)
{
	if (callable->kind != FV_PY_GLOBAL)
		return not_callable("REDUCE", callable);
	const fv__pyglobal *g = callable->u.g;
	if (args->kind != FV_PY_TUPLE)
		return fv_error(FV_ERR_FORMAT, "REDUCE on %s: the arguments are %s, not a tuple",
		                g->dotted, fv__pyval_a(args));
	fv__pypool *p = fv__unpickler_pool(u);
	size_t n = fv_pyval_len(args);
	switch ((gkind)g->kind) {
	case GK_ORDEREDDICT:
	case GK_DEFAULTDICT: {
		size_t max = g->kind == GK_ORDEREDDICT ? 1 : 2;
		if (n > max)
			return bad_args(g, max == 1 ? "at most 1" : "at most 2 (default_factory, items)",
			                args);
		fv_pyval *d = fv__pyval_container(p, FV_PY_DICT, 0);
		if (d == NULL)
			return fv__pypool_failure(p);
		if (g->kind == GK_ORDEREDDICT)
			d->flags |= FV__PY_ORDERED;
		*out = d;
		if (g->kind == GK_DEFAULTDICT && n >= 1) {
			const fv_pyval *f = arg_at(args, 0); /* kept by name only: never called */
			if (f->kind != FV_PY_GLOBAL && f->kind != FV_PY_NONE)
				return bad_arg(g, "default_factory", f, "an allow-listed class or None");
			return n == 2 ? fill_dict(u, g, d, arg_at(args, 1)) : FV_OK;
		}
		return n == 1 ? fill_dict(u, g, d, arg_at(args, 0)) : FV_OK;
	}
	case GK_REBUILD_TENSOR: return rebuild_tensor(u, g, args, out);
	case GK_REBUILD_PARAMETER: return rebuild_parameter(u, g, args, out);
	case GK_BUILTIN: return call_builtin(u, g, args, out);
	case GK_CODECS_ENCODE:
		if (n < 1 || n > 2)
			return bad_args(g, "1 or 2 (text, encoding)", args);
		return encode_str(u, g, arg_at(args, 0), n == 2 ? arg_at(args, 1) : NULL, out);
	case GK_NP_RECONSTRUCT: {
		if (n != 3)
			return bad_args(g, "3 (ndarray, shape, dtype)", args);
		const fv_pyval *sub = arg_at(args, 0);
		if (sub->kind != FV_PY_GLOBAL || sub->u.g->kind != GK_NP_NDARRAY)
			return bad_arg(g, "the array type", sub, "numpy.ndarray");
		return made(u, fv__pyval_object(p, sub->u.g), out);
	}
	case GK_NP_DTYPE: return np_dtype(u, g, args, out);
	case GK_NP_SCALAR: return np_scalar(u, g, args, out);
	case GK_NP_FROMBUFFER: return np_frombuffer(u, g, args, out);
	case GK_STORAGE:
	case GK_OC_CONTAINER:
	case GK_OC_NODE:
	case GK_OC_METADATA:
	case GK_INERT:
	case GK_NP_NDARRAY: break;
	}
	return not_callable("REDUCE", callable);
}

/* cls.__new__(cls, *args): only for the classes whose state comes from a
** BUILD afterwards (omegaconf) and those whose NEWOBJ means the same as a
** call (OrderedDict, numpy.dtype). */
fv_status fv__pyglobal_newobj(fv__unpickler *u, const fv_pyval *cls, fv_pyval *args,
                              fv_pyval **out)
{
	if (cls->kind != FV_PY_GLOBAL)
		return not_callable("NEWOBJ", cls);
	const fv__pyglobal *g = cls->u.g;
	if (args->kind != FV_PY_TUPLE)
		return fv_error(FV_ERR_FORMAT, "NEWOBJ on %s: the arguments are %s, not a tuple",
		                g->dotted, fv__pyval_a(args));
	fv__pypool *p = fv__unpickler_pool(u);
	switch ((gkind)g->kind) {
	case GK_OC_CONTAINER:
	case GK_OC_NODE:
	case GK_OC_METADATA:
		if (fv_pyval_len(args) != 0)
			return bad_args(g, "none (omegaconf objects get their state from BUILD)", args);
		return made(u, fv__pyval_object(p, g), out);
	case GK_ORDEREDDICT: {
		fv_pyval *d = fv__pyval_container(p, FV_PY_DICT, 0);
		if (d != NULL)
			d->flags |= FV__PY_ORDERED;
		return made(u, d, out);
	}
	case GK_NP_DTYPE: return np_dtype(u, g, args, out);
	default: break;
	}
	return not_callable("NEWOBJ", cls);
}

fv_status fv__pyglobal_build(fv__unpickler *u, fv_pyval *obj, fv_pyval *state)
{
	if (obj->kind == FV_PY_DICT && (obj->flags & FV__PY_ORDERED)) {
		/* An OrderedDict's attributes (state_dict._metadata): not data. */
		if (state->kind != FV_PY_DICT && state->kind != FV_PY_NONE && state->kind != FV_PY_TUPLE)
			return fv_error(FV_ERR_FORMAT,
			                "BUILD on an OrderedDict with %s; expected a dict of attributes",
			                fv__pyval_a(state));
		return FV_OK;
	}
	if (obj->kind != FV_PY_OBJECT)
		return fv_error(FV_ERR_FORMAT,
		                "BUILD on %s (%s) is not allowed: BUILD only sets the state of "
		                "omegaconf objects, numpy arrays and dtypes and OrderedDict attributes",
		                fv__pyval_a(obj), fv_pyval_type_name(obj));
	fv__pyobj *o = obj->u.obj;
	const fv__pyglobal *g = o->cls;
	if (o->built)
		return fv_error(FV_ERR_FORMAT, "BUILD on a %s that was built already", g->dotted);
	switch ((gkind)g->kind) {
	case GK_OC_CONTAINER:
	case GK_OC_NODE: {
		if (state->kind != FV_PY_DICT)
			return bad_arg(g, "the BUILD state", state, "a dict");
		/* `_content` (a dict, list, None or an interpolation string) or
		** `_val`; `_parent` and `_metadata` are dropped, which also cuts
		** the loops omegaconf's parent links make. */
		const char *field = g->kind == GK_OC_CONTAINER ? "_content" : "_val";
		fv_pyval *v = fv__pyval_dict_get(state, field, strlen(field));
		o->built = true;
		fv__pyval_become(obj, v ? v : fv__pyval_none(fv__unpickler_pool(u)));
		return FV_OK;
	}
	case GK_OC_METADATA:
		if (state->kind != FV_PY_DICT)
			return bad_arg(g, "the BUILD state", state, "a dict");
		o->built = true;
		return FV_OK;
	case GK_NP_DTYPE: {
		fv_status s = np_dtype_state(g, o, state);
		if (s == FV_OK)
			o->built = true;
		return s;
	}
	case GK_NP_NDARRAY: {
		fv_status s = np_ndarray_state(u, g, obj, state);
		if (s == FV_OK)
			o->built = true;
		return s;
	}
	default: break;
	}
	return fv_error(FV_ERR_FORMAT, "BUILD on a %s is not allowed", g->dotted);
}
