/*
** data_value.c: the values data steps pass to each other (fv_dvalue): what
** a Python function of openretina's data_io returns, as a small tree.
** Maps keep their keys in insertion order, as Python dicts do, because
** openretina iterates dicts in that order (sessions, stimuli).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "fovea/data_plugin.h"

struct fv_dvalue {
	fv_dvalue_kind kind;
	double number;
	char *text;        /* TEXT; a MAP's class name (NULL: a dict) */
	fv_tensor *tensor;
	size_t n, cap;     /* LIST, MAP */
	fv_dvalue **items;
	char **keys;       /* MAP */
};

static fv_dvalue *value_new(fv_dvalue_kind kind)
{
	fv_dvalue *v = fv__calloc(1, sizeof *v);
	if (v == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory for a data value");
	else
		v->kind = kind;
	return v;
}

fv_dvalue *fv_dvalue_null(void)
{
	return value_new(FV_DV_NULL);
}

fv_dvalue *fv_dvalue_number(double x)
{
	fv_dvalue *v = value_new(FV_DV_NUMBER);
	if (v != NULL)
		v->number = x;
	return v;
}

/* A value owning a copy of `s` (kind TEXT, or MAP with a class name). */
static fv_dvalue *value_with_text(fv_dvalue_kind kind, const char *s)
{
	fv_dvalue *v = value_new(kind);
	if (v == NULL || s == NULL)
		return v;
	v->text = fv__strdup(s);
	if (v->text == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory for a data value");
		free(v);
		return NULL;
	}
	return v;
}

fv_dvalue *fv_dvalue_text(const char *s)
{
	return value_with_text(FV_DV_TEXT, s != NULL ? s : "");
}

fv_dvalue *fv_dvalue_tensor(fv_tensor *t)
{
	if (t == NULL) {
		fv_error(FV_ERR_ARG, "fv_dvalue_tensor: no tensor given");
		return NULL;
	}
	fv_dvalue *v = value_new(FV_DV_TENSOR);
	if (v == NULL)
		fv_tensor_free(t);
	else
		v->tensor = t;
	return v;
}

fv_dvalue *fv_dvalue_list(void)
{
	return value_new(FV_DV_LIST);
}

fv_dvalue *fv_dvalue_map(const char *class_name)
{
	return value_with_text(FV_DV_MAP, class_name);
}

void fv_dvalue_free(fv_dvalue *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		fv_dvalue_free(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	fv_tensor_free(v->tensor);
	free(v);
}

/* Room for one more item (and key, for maps). */
static fv_status grow(fv_dvalue *v)
{
	if (v->n < v->cap)
		return FV_OK;
	size_t cap = v->cap > 0 ? 2 * v->cap : 4;
	fv_dvalue **items = fv__realloc(v->items, cap * sizeof *items);
	if (items == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory growing a data value");
	v->items = items;
	if (v->kind == FV_DV_MAP) {
		char **keys = fv__realloc(v->keys, cap * sizeof *keys);
		if (keys == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory growing a data value");
		v->keys = keys;
	}
	v->cap = cap;
	return FV_OK;
}

fv_status fv_dvalue_append(fv_dvalue *list, fv_dvalue *item)
{
	fv_status st = FV_OK;
	if (list == NULL || list->kind != FV_DV_LIST || item == NULL)
		st = fv_error(FV_ERR_ARG, "fv_dvalue_append: expected a list and an item");
	else
		st = grow(list);
	if (st != FV_OK) {
		fv_dvalue_free(item);
		return st;
	}
	list->items[list->n++] = item;
	return FV_OK;
}

static size_t find_key(const fv_dvalue *map, const char *key)
{
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i], key) == 0)
			return i;
	return map->n;
}

fv_status fv_dvalue_set(fv_dvalue *map, const char *key, fv_dvalue *item)
{
	if (map == NULL || map->kind != FV_DV_MAP || key == NULL || item == NULL) {
		fv_dvalue_free(item);
		return fv_error(FV_ERR_ARG, "fv_dvalue_set: expected a map, a key and an item");
	}
	size_t i = find_key(map, key);
	if (i < map->n) {
		fv_dvalue_free(map->items[i]);
		map->items[i] = item;
		return FV_OK;
	}
	char *k = fv__strdup(key);
	fv_status st = k != NULL ? grow(map) : fv_error(FV_ERR_NOMEM, "out of memory for a key");
	if (st != FV_OK) {
		free(k);
		fv_dvalue_free(item);
		return st;
	}
	map->keys[map->n] = k;
	map->items[map->n++] = item;
	return FV_OK;
}

fv_dvalue *fv_dvalue_copy(const fv_dvalue *v)
{
	if (v == NULL)
		return NULL;
	if (v->kind == FV_DV_TENSOR) {
		fv_tensor *t = fv_tensor_clone(v->tensor);
		return t != NULL ? fv_dvalue_tensor(t) : NULL;
	}
	fv_dvalue *c = value_with_text(v->kind, v->text);
	if (c == NULL)
		return NULL;
	c->number = v->number;
	for (size_t i = 0; i < v->n; i++) {
		fv_dvalue *item = fv_dvalue_copy(v->items[i]);
		fv_status st = item == NULL ? FV_ERR_NOMEM
		               : v->kind == FV_DV_MAP ? fv_dvalue_set(c, v->keys[i], item)
		                                      : fv_dvalue_append(c, item);
		if (st != FV_OK) {
			fv_dvalue_free(c);
			return NULL;
		}
	}
	return c;
}

fv_dvalue_kind fv_dvalue_kind_of(const fv_dvalue *v)
{
	return v != NULL ? v->kind : FV_DV_NULL;
}

const char *fv_dvalue_kind_name(fv_dvalue_kind kind)
{
	static const char *const names[] = {"None", "number", "string", "array", "list", "map"};
	return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown value";
}

const char *fv_dvalue_class(const fv_dvalue *v)
{
	return v != NULL && v->kind == FV_DV_MAP ? v->text : NULL;
}

double fv_dvalue_number_of(const fv_dvalue *v)
{
	return v != NULL && v->kind == FV_DV_NUMBER ? v->number : NAN;
}

const char *fv_dvalue_text_of(const fv_dvalue *v)
{
	return v != NULL && v->kind == FV_DV_TEXT ? v->text : NULL;
}

const fv_tensor *fv_dvalue_tensor_of(const fv_dvalue *v)
{
	return v != NULL && v->kind == FV_DV_TENSOR ? v->tensor : NULL;
}

size_t fv_dvalue_size(const fv_dvalue *v)
{
	return v != NULL ? v->n : 0;
}

const fv_dvalue *fv_dvalue_at(const fv_dvalue *v, size_t i)
{
	return v != NULL && i < v->n ? v->items[i] : NULL;
}

const char *fv_dvalue_key_at(const fv_dvalue *v, size_t i)
{
	return v != NULL && v->kind == FV_DV_MAP && i < v->n ? v->keys[i] : NULL;
}

const fv_dvalue *fv_dvalue_get(const fv_dvalue *map, const char *key)
{
	if (map == NULL || map->kind != FV_DV_MAP || key == NULL)
		return NULL;
	size_t i = find_key(map, key);
	return i < map->n ? map->items[i] : NULL;
}

fv_dvalue *fv_dvalue_take(fv_dvalue *map, const char *key)
{
	if (map == NULL || map->kind != FV_DV_MAP || key == NULL)
		return NULL;
	size_t i = find_key(map, key);
	if (i == map->n)
		return NULL;
	fv_dvalue *item = map->items[i];
	free(map->keys[i]);
	memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof *map->items);
	memmove(map->keys + i, map->keys + i + 1, (map->n - i - 1) * sizeof *map->keys);
	map->n--;
	return item;
}

fv_tensor *fv_dvalue_take_tensor(fv_dvalue *v)
{
	if (v == NULL || v->kind != FV_DV_TENSOR)
		return NULL;
	fv_tensor *t = v->tensor;
	v->tensor = NULL;
	v->kind = FV_DV_NULL;
	return t;
}
