/*
** pickle_value.c: the values a checkpoint load builds, and the public
** fv_pyval accessors.
**
** Every value, container body and blob of one load lives in a pool and is
** freed by sweeping the pool's lists, so freeing never follows the tree:
** a list nested a million deep costs no C stack, and values shared through
** the pickle memo (or made the same object by an omegaconf BUILD) are
** freed once.  Every allocation is charged to the load's byte budget
** before it is made.
**
** Containers keep their contents in a body; omegaconf's DictConfig
** becomes its `_content` by sharing that body, which is what Python means
** by the two being one object.  Each body knows a lower bound of its
** nesting depth while loading (checked at every insertion, so the deep
** nesting attack stops early); fv__pyval_check_tree computes it exactly at
** the end and refuses cycles, since mutation through shared bodies can
** deepen or close a loop behind the bound's back.
*/
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "io/ckpt_internal.h"

/* ---- the pool -------------------------------------------------------------------- */

#define SLAB_VALUES 256
#define SLAB_BODIES 128

/* Values and container bodies come from chains of slabs, each holding a
** fixed number of items of one type, so a checkpoint of a million values
** costs a few thousand mallocs. */
typedef struct slab {
	struct slab *next;
	size_t used;
	alignas(max_align_t) unsigned char items[];
} slab;

typedef struct blob {
	struct blob *next;
	alignas(16) unsigned char data[];
} blob;

struct fv__pypool {
	size_t max_bytes, used;
	size_t max_depth;
	fv_status failure;  /* why the last allocation failed */
	slab *values;   /* of fv_pyval */
	slab *bodies;   /* of fv__pybody */
	blob *blobs;
	fv_pyval none, yes, no; /* shared: nothing ever changes them */
};

fv__pypool *fv__pypool_new(size_t max_bytes, size_t max_depth)
{
	fv__pypool *p = fv__calloc(1, sizeof *p);
	if (p == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		return NULL;
	}
	p->max_bytes = max_bytes;
	p->max_depth = max_depth;
	p->failure = FV_ERR_NOMEM;
	p->none.kind = FV_PY_NONE;
	p->yes.kind = p->no.kind = FV_PY_BOOL;
	p->yes.u.b = true;
	p->none.flags = p->yes.flags = p->no.flags = FV__PY_SINGLETON;
	return p;
}

void fv__pypool_free(fv__pypool *p)
{
	if (p == NULL)
		return;
	for (slab *s = p->values, *next; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
	for (slab *s = p->bodies, *next; s != NULL; s = next) {
		next = s->next;
		fv__pybody *b = (fv__pybody *)(void *)s->items;
		for (size_t i = 0; i < s->used; i++) {
			free(b[i].items);
			free(b[i].hashes);
			free(b[i].index);
		}
		free(s);
	}
	for (blob *b = p->blobs, *next; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(p);
}

fv_status fv__pypool_charge(fv__pypool *p, size_t n)
{
	if (n > p->max_bytes - p->used)
		return p->failure = fv_error(FV_ERR_FORMAT,
		                "reading it needs more than %zu bytes of memory, the limit for this "
		                "file (fv_ckpt_limits.max_bytes)",
		                p->max_bytes);
	p->used += n;
	return FV_OK;
}

size_t fv__pypool_used(const fv__pypool *p)
{
	return p->used;
}

fv_status fv__pypool_failure(const fv__pypool *p)
{
	return p->failure;
}

static void *nomem(fv__pypool *p)
{
	p->failure = fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	return NULL;
}

void *fv__pypool_blob(fv__pypool *p, size_t n)
{
	if (n > SIZE_MAX - sizeof(blob) || fv__pypool_charge(p, sizeof(blob) + n) != FV_OK)
		return NULL;
	blob *b = fv__malloc(sizeof(blob) + (n ? n : 1));
	if (b == NULL)
		return nomem(p);
	b->next = p->blobs;
	p->blobs = b;
	return b->data;
}

/* A zeroed item of `size` bytes from the chain *head (`per_slab` items a slab). */
static void *slab_item(fv__pypool *p, slab **head, size_t size, size_t per_slab)
{
	slab *s = *head;
	if (s == NULL || s->used == per_slab) {
		size_t bytes = sizeof *s + size * per_slab;
		if (fv__pypool_charge(p, bytes) != FV_OK)
			return NULL;
		s = fv__malloc(bytes);
		if (s == NULL)
			return nomem(p);
		s->used = 0;
		s->next = *head;
		*head = s;
	}
	void *item = s->items + size * s->used++;
	memset(item, 0, size);
	return item;
}

fv_pyval *fv__pyval_new(fv__pypool *p, fv_pyval_kind kind)
{
	fv_pyval *v = slab_item(p, &p->values, sizeof *v, SLAB_VALUES);
	if (v != NULL)
		v->kind = (uint8_t)kind;
	return v;
}

fv_pyval *fv__pyval_none(fv__pypool *p)
{
	return &p->none;
}

fv_pyval *fv__pyval_bool(fv__pypool *p, bool b)
{
	return b ? &p->yes : &p->no;
}

fv_pyval *fv__pyval_int(fv__pypool *p, int64_t i)
{
	fv_pyval *v = fv__pyval_new(p, FV_PY_INT);
	if (v != NULL)
		v->u.i = i;
	return v;
}

fv_pyval *fv__pyval_float(fv__pypool *p, double f)
{
	fv_pyval *v = fv__pyval_new(p, FV_PY_FLOAT);
	if (v != NULL)
		v->u.f = f;
	return v;
}

fv_pyval *fv__pyval_str(fv__pypool *p, fv_pyval_kind kind, const void *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	char *copy = fv__pypool_blob(p, len + 1);
	if (copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	fv_pyval *v = fv__pyval_new(p, kind);
	if (v != NULL) {
		v->u.str.s = copy;
		v->u.str.len = len;
	}
	return v;
}

static bool is_container(const fv_pyval *v)
{
	switch (v->kind) {
	case FV_PY_TUPLE:
	case FV_PY_LIST:
	case FV_PY_SET:
	case FV_PY_DICT:
	case FV_PY_SLICE: return true;
	default: return false;
	}
}

/* Pointers the body's item array holds per entry. */
static size_t per_entry(const fv_pyval *v)
{
	return v->kind == FV_PY_DICT ? 2 : 1;
}

static fv_status body_reserve(fv__pypool *p, fv__pybody *b, bool dict, size_t entries)
{
	size_t want = dict ? 2 * entries : entries;
	if (entries > (size_t)UINT32_MAX / 2)
		return fv_error(FV_ERR_FORMAT, "a container has more than %u items", UINT32_MAX / 2);
	if (want <= b->cap)
		return FV_OK;
	size_t cap = b->cap ? b->cap : 4;
	while (cap < want)
		cap *= 2;
	size_t grow = (cap - b->cap) * sizeof *b->items;
	if (dict)
		grow += (cap - b->cap) / 2 * sizeof *b->hashes;
	if (fv__pypool_charge(p, grow) != FV_OK)
		return FV_ERR_FORMAT;
	fv_pyval **items = fv__realloc(b->items, cap * sizeof *items);
	if (items == NULL)
		return p->failure = fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	b->items = items;
	if (dict) {
		uint64_t *hashes = fv__realloc(b->hashes, cap / 2 * sizeof *hashes);
		if (hashes == NULL)
			return p->failure = fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		b->hashes = hashes;
	}
	b->cap = cap;
	return FV_OK;
}

fv_pyval *fv__pyval_container(fv__pypool *p, fv_pyval_kind kind, size_t n)
{
	fv__pybody *b = slab_item(p, &p->bodies, sizeof *b, SLAB_BODIES);
	if (b == NULL)
		return NULL;
	b->depth = 1;
	fv_pyval *v = fv__pyval_new(p, kind);
	if (v == NULL)
		return NULL;
	v->u.body = b;
	if (n > 0 && body_reserve(p, b, kind == FV_PY_DICT, n) != FV_OK)
		return NULL;
	return v;
}

fv_pyval *fv__pyval_object(fv__pypool *p, const fv__pyglobal *cls)
{
	fv__pyobj *o = fv__pypool_blob(p, sizeof *o);
	if (o == NULL)
		return NULL;
	memset(o, 0, sizeof *o);
	o->cls = cls;
	fv_pyval *v = fv__pyval_new(p, FV_PY_OBJECT);
	if (v != NULL)
		v->u.obj = o;
	return v;
}

uint32_t fv__pyval_depth(const fv_pyval *v)
{
	return is_container(v) ? v->u.body->depth : 0;
}

/* The container holding `child` is at least one deeper than it. */
static fv_status note_depth(fv__pypool *p, fv__pybody *b, const fv_pyval *child)
{
	uint32_t d = fv__pyval_depth(child);
	if (d >= b->depth) {
		if (d + 1 > p->max_depth)
			return fv_error(FV_ERR_FORMAT,
			                "containers nested deeper than %zu levels (the nesting depth "
			                "limit, fv_ckpt_limits.max_depth)",
			                p->max_depth);
		b->depth = d + 1;
	}
	return FV_OK;
}

fv_status fv__pyval_append(fv__pypool *p, fv_pyval *seq, fv_pyval *item)
{
	fv__pybody *b = seq->u.body;
	fv_status s = note_depth(p, b, item);
	if (s == FV_OK)
		s = body_reserve(p, b, false, b->n + 1);
	if (s == FV_OK)
		b->items[b->n++] = item;
	return s;
}

/* ---- dicts ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static uint64_t hash_bytes(const void *s, size_t len, uint64_t seed)
{
	const unsigned char *c = s;
	uint64_t h = 0xcbf29ce484222325u ^ seed;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3u;
	return mix(h);
}

/* Python's hashable values: scalars and strings by value, tuples,
** frozensets and the rest by identity (a pickled dict's keys are distinct
** already; this only decides what a repeated SETITEM replaces). */
static bool key_hash(const fv_pyval *k, uint64_t *h)
{
	switch (k->kind) {
	case FV_PY_NONE: *h = 0x9e3779b97f4a7c15u; return true;
	case FV_PY_BOOL: *h = mix(k->u.b ? 2 : 1); return true;
	case FV_PY_INT: *h = mix((uint64_t)k->u.i ^ 0x5555u); return true;
	case FV_PY_FLOAT: {
		double f = k->u.f == 0 ? 0.0 : k->u.f; /* -0.0 == 0.0 */
		uint64_t bits;
		memcpy(&bits, &f, sizeof bits);
		*h = mix(bits ^ 0xf10a7u);
		return true;
	}
	case FV_PY_STR:
	case FV_PY_BYTES:
		/* Cached: one long string used as a key again and again through
		** the memo must not cost its length every time. */
		if (k->u.str.hash == 0)
			((fv_pyval *)k)->u.str.hash =
				hash_bytes(k->u.str.s, k->u.str.len, k->kind == FV_PY_STR ? 1 : 2) | 1;
		*h = k->u.str.hash;
		return true;
	case FV_PY_LIST:
	case FV_PY_DICT: return false;
	case FV_PY_SET:
		if (!(k->flags & FV__PY_FROZEN))
			return false;
		/* fall through */
	case FV_PY_TUPLE:
	case FV_PY_SLICE: *h = mix((uint64_t)(uintptr_t)k->u.body); return true;
	case FV_PY_TENSOR:
	case FV_PY_NDARRAY: *h = mix((uint64_t)(uintptr_t)k->u.arr); return true;
	case FV_PY_GLOBAL: *h = mix((uint64_t)(uintptr_t)k->u.g); return true;
	default: *h = mix((uint64_t)(uintptr_t)k->u.obj); return true;
	}
}

static bool key_equal(const fv_pyval *a, const fv_pyval *b)
{
	if (a == b)
		return true;
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case FV_PY_NONE: return true;
	case FV_PY_BOOL: return a->u.b == b->u.b;
	case FV_PY_INT: return a->u.i == b->u.i;
	case FV_PY_FLOAT: return a->u.f == b->u.f;
	case FV_PY_STR:
	case FV_PY_BYTES:
		return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case FV_PY_SET:
	case FV_PY_TUPLE:
	case FV_PY_SLICE: return a->u.body == b->u.body;
	case FV_PY_TENSOR:
	case FV_PY_NDARRAY: return a->u.arr == b->u.arr;
	case FV_PY_GLOBAL: return a->u.g == b->u.g;
	default: return a->u.obj == b->u.obj;
	}
}

/* Small dicts are searched linearly; from this many entries on, a table. */
#define INDEX_FROM 8

static void index_insert(fv__pybody *b, size_t entry)
{
	size_t mask = b->index_cap - 1;
	for (size_t i = b->hashes[entry] & mask;; i = (i + 1) & mask)
		if (b->index[i] == 0) {
			b->index[i] = (uint32_t)entry + 1;
			return;
		}
}

/* Keep the table at most half full. */
static fv_status index_grow(fv__pypool *p, fv__pybody *b)
{
	if (b->n < INDEX_FROM || 2 * (b->n + 1) <= b->index_cap)
		return FV_OK;
	size_t cap = b->index_cap ? b->index_cap : 32;
	while (cap < 2 * (b->n + 1))
		cap *= 2;
	if (fv__pypool_charge(p, cap * sizeof *b->index) != FV_OK)
		return FV_ERR_FORMAT;
	uint32_t *index = fv__calloc(cap, sizeof *index);
	if (index == NULL)
		return p->failure = fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	free(b->index);
	b->index = index;
	b->index_cap = cap;
	for (size_t e = 0; e < b->n; e++)
		index_insert(b, e);
	return FV_OK;
}

/* Entry of an equal key, or -1. */
static long dict_find(const fv__pybody *b, const fv_pyval *key, uint64_t h)
{
	if (b->index == NULL) {
		for (size_t e = 0; e < b->n; e++)
			if (b->hashes[e] == h && key_equal(b->items[2 * e], key))
				return (long)e;
		return -1;
	}
	size_t mask = b->index_cap - 1;
	for (size_t i = h & mask; b->index[i] != 0; i = (i + 1) & mask) {
		size_t e = b->index[i] - 1;
		if (b->hashes[e] == h && key_equal(b->items[2 * e], key))
			return (long)e;
	}
	return -1;
}

fv_status fv__pyval_setitem(fv__pypool *p, fv_pyval *dict, fv_pyval *key, fv_pyval *value)
{
	fv__pybody *b = dict->u.body;
	uint64_t h;
	if (!key_hash(key, &h))
		return fv_error(FV_ERR_FORMAT, "a dict key is %s, which Python cannot hash",
		                fv__pyval_a(key));
	fv_status s = note_depth(p, b, key);
	if (s == FV_OK)
		s = note_depth(p, b, value);
	if (s != FV_OK)
		return s;
	long e = dict_find(b, key, h);
	if (e >= 0) {
		b->items[2 * e + 1] = value;
		return FV_OK;
	}
	if ((s = body_reserve(p, b, true, b->n + 1)) != FV_OK)
		return s;
	b->items[2 * b->n] = key;
	b->items[2 * b->n + 1] = value;
	b->hashes[b->n] = h;
	b->n++;
	if (b->index != NULL && 2 * b->n <= b->index_cap) {
		index_insert(b, b->n - 1);
		return FV_OK;
	}
	return index_grow(p, b);
}

fv_pyval *fv__pyval_dict_get(const fv_pyval *dict, const char *key, size_t len)
{
	if (dict == NULL || dict->kind != FV_PY_DICT)
		return NULL;
	fv_pyval k = {.kind = FV_PY_STR, .u.str = {key, len, 0}};
	long e = dict_find(dict->u.body, &k, hash_bytes(key, len, 1) | 1);
	return e < 0 ? NULL : dict->u.body->items[2 * e + 1];
}

void fv__pyval_become(fv_pyval *dst, const fv_pyval *src)
{
	if (dst == src)
		return;
	dst->kind = src->kind;
	dst->flags = src->flags & (uint8_t)~FV__PY_SINGLETON;
	dst->u = src->u;
}

/* ---- the final check ---------------------------------------------------------------- */

enum { WHITE = 0, GREY = 1, BLACK = 2 };

typedef struct frame {
	fv__pybody *b;
	size_t next;     /* next item to visit */
	size_t end;      /* items to visit */
	uint32_t below;  /* deepest child body seen */
} frame;

fv_status fv__pyval_check_tree(fv__pypool *p, const fv_pyval *root)
{
	if (!is_container(root))
		return FV_OK;
	/* A path longer than max_depth is refused, so this bounds the walk. */
	size_t cap = p->max_depth + 1;
	if (fv__pypool_charge(p, cap * sizeof(frame)) != FV_OK)
		return FV_ERR_FORMAT;
	frame *st = fv__malloc(cap * sizeof *st);
	if (st == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	size_t top = 0;
	fv_status s = FV_OK;
	fv__pybody *rb = root->u.body;
	if (rb->mark != WHITE)
		goto done; /* checked before */
	rb->mark = GREY;
	st[top++] = (frame){rb, 0, rb->n * per_entry(root), 0};
	while (top > 0) {
		frame *f = &st[top - 1];
		if (f->next == f->end) {
			uint32_t d = f->below + 1;
			if (d > p->max_depth)
				goto too_deep;
			f->b->depth = d;
			f->b->mark = BLACK;
			top--;
			if (top > 0 && d > st[top - 1].below)
				st[top - 1].below = d;
			continue;
		}
		const fv_pyval *child = f->b->items[f->next++];
		if (!is_container(child))
			continue;
		fv__pybody *cb = child->u.body;
		if (cb->mark == BLACK) {
			if (cb->depth > f->below)
				f->below = cb->depth;
			continue;
		}
		if (cb->mark == GREY) {
			s = fv_error(FV_ERR_FORMAT, "a container contains itself (a cycle): refused, "
			             "a checkpoint's values form a tree");
			goto done;
		}
		if (top == p->max_depth)
			goto too_deep;
		cb->mark = GREY;
		st[top++] = (frame){cb, 0, cb->n * per_entry(child), 0};
	}
	goto done;
too_deep:
	s = fv_error(FV_ERR_FORMAT,
	             "containers nested deeper than %zu levels (the nesting depth limit, "
	             "fv_ckpt_limits.max_depth)",
	             p->max_depth);
done:
	free(st);
	return s;
}

/* ---- public accessors ------------------------------------------------------------- */

fv_pyval_kind fv_pyval_kind_of(const fv_pyval *v)
{
	return v ? (fv_pyval_kind)v->kind : FV_PY_NONE;
}

const char *fv_pyval_type_name(const fv_pyval *v)
{
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_NONE: return "NoneType";
	case FV_PY_BOOL: return "bool";
	case FV_PY_INT: return "int";
	case FV_PY_FLOAT: return "float";
	case FV_PY_STR: return "str";
	case FV_PY_BYTES: return "bytes";
	case FV_PY_TUPLE: return "tuple";
	case FV_PY_LIST: return "list";
	case FV_PY_SET: return v->flags & FV__PY_FROZEN ? "frozenset" : "set";
	case FV_PY_DICT: return "dict";
	case FV_PY_SLICE: return "slice";
	case FV_PY_TENSOR: return v->u.arr->is_parameter ? "torch.nn.Parameter" : "torch.Tensor";
	case FV_PY_NDARRAY: return "numpy.ndarray";
	case FV_PY_GLOBAL: return fv__pyglobal_dotted(v->u.g);
	case FV_PY_OBJECT: return fv__pyglobal_dotted(v->u.obj->cls);
	}
	return "?";
}

const char *fv__pyval_a(const fv_pyval *v)
{
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_NONE: return "None";
	case FV_PY_BOOL: return "a bool";
	case FV_PY_INT: return "an int";
	case FV_PY_FLOAT: return "a float";
	case FV_PY_STR: return "a str";
	case FV_PY_BYTES: return "a bytes";
	case FV_PY_TUPLE: return "a tuple";
	case FV_PY_LIST: return "a list";
	case FV_PY_SET: return "a set";
	case FV_PY_DICT: return "a dict";
	case FV_PY_SLICE: return "a slice";
	case FV_PY_TENSOR: return "a tensor";
	case FV_PY_NDARRAY: return "a numpy array";
	case FV_PY_GLOBAL: return "a class or function";
	case FV_PY_OBJECT: return "an object";
	}
	return "?";
}

static fv_status wrong_kind(const fv_pyval *v, const char *expected)
{
	return fv_error(FV_ERR_FORMAT, "expected %s, got %s (%s)", expected, fv__pyval_a(v),
	                fv_pyval_type_name(v));
}

fv_status fv_pyval_to_bool(const fv_pyval *v, bool *out)
{
	if (fv_pyval_kind_of(v) != FV_PY_BOOL || v == NULL)
		return wrong_kind(v, "a bool");
	*out = v->u.b;
	return FV_OK;
}

fv_status fv_pyval_to_int(const fv_pyval *v, int64_t *out)
{
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_BOOL: *out = v->u.b; return FV_OK;
	case FV_PY_INT: *out = v->u.i; return FV_OK;
	default: return wrong_kind(v, "an int");
	}
}

fv_status fv_pyval_to_double(const fv_pyval *v, double *out)
{
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_BOOL: *out = v->u.b; return FV_OK;
	case FV_PY_INT: *out = (double)v->u.i; return FV_OK;
	case FV_PY_FLOAT: *out = v->u.f; return FV_OK;
	default: return wrong_kind(v, "a number");
	}
}

const char *fv_pyval_str(const fv_pyval *v, size_t *len)
{
	if (fv_pyval_kind_of(v) != FV_PY_STR || v == NULL)
		return NULL;
	if (len != NULL)
		*len = v->u.str.len;
	return v->u.str.s;
}

const unsigned char *fv_pyval_bytes(const fv_pyval *v, size_t *len)
{
	if (fv_pyval_kind_of(v) != FV_PY_BYTES || v == NULL)
		return NULL;
	if (len != NULL)
		*len = v->u.str.len;
	return (const unsigned char *)v->u.str.s;
}

size_t fv_pyval_len(const fv_pyval *v)
{
	return v != NULL && is_container(v) ? v->u.body->n : 0;
}

const fv_pyval *fv_pyval_item(const fv_pyval *v, size_t i)
{
	if (i >= fv_pyval_len(v))
		return NULL;
	return v->kind == FV_PY_DICT ? v->u.body->items[2 * i + 1] : v->u.body->items[i];
}

const fv_pyval *fv_pyval_key(const fv_pyval *v, size_t i)
{
	if (fv_pyval_kind_of(v) != FV_PY_DICT || i >= fv_pyval_len(v))
		return NULL;
	return v->u.body->items[2 * i];
}

const fv_pyval *fv_pyval_get(const fv_pyval *dict, const char *key)
{
	return key == NULL ? NULL : fv__pyval_dict_get(dict, key, strlen(key));
}

const fv_pyval *fv_pyval_path(const fv_pyval *v, const char *path)
{
	if (path == NULL)
		return NULL;
	const char *seg = path;
	while (v != NULL) {
		const char *dot = strchr(seg, '.');
		size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
		if (v->kind == FV_PY_DICT) {
			v = fv__pyval_dict_get(v, seg, len);
		} else if (v->kind == FV_PY_LIST || v->kind == FV_PY_TUPLE) {
			size_t i = 0;
			if (len == 0 || len > 18)
				return NULL;
			for (size_t k = 0; k < len; k++) {
				if (seg[k] < '0' || seg[k] > '9')
					return NULL;
				i = 10 * i + (size_t)(seg[k] - '0');
			}
			v = fv_pyval_item(v, i);
		} else {
			return NULL;
		}
		if (dot == NULL)
			return v;
		seg = dot + 1;
	}
	return NULL;
}

const fv_ckpt_array *fv_pyval_array(const fv_pyval *v)
{
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_TENSOR:
	case FV_PY_NDARRAY: return v->u.arr;
	default: return NULL;
	}
}

fv_tensor *fv_pyval_tensor(const fv_pyval *v, const char *name)
{
	const fv_ckpt_array *a = fv_pyval_array(v);
	if (a == NULL) {
		wrong_kind(v, "a tensor or numpy array");
		return NULL;
	}
	if (a->ndim > FV_MAX_DIMS) {
		fv_error(FV_ERR_SHAPE, "%s%s%s has %d dims; fovea tensors have at most %d",
		         name ? "tensor '" : "a tensor", name ? name : "", name ? "'" : "", a->ndim,
		         FV_MAX_DIMS);
		return NULL;
	}
	fv_tensor *t = fv_tensor_new(a->ndim, a->shape);
	if (t == NULL)
		return NULL;
	for (int64_t i = 0; i < a->numel; i++)
		t->data[i] = a->f32 ? (fv_real)a->f32[i] : (fv_real)a->i64[i];
	if (name != NULL && fv_tensor_set_name(t, name) != FV_OK) {
		fv_tensor_free(t);
		return NULL;
	}
	return t;
}
