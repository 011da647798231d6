/*
** ckpt_config.c: a checkpoint value (a dict or a list) as an fv_config
** tree, so that hyper_parameters read from a checkpoint reach fovea's
** typed reads and option tables the same way a YAML file does.
**
** Strings become quoted scalars: "3" stays a string, and `${...}` or `???`
** keep the meaning OmegaConf gave them (an interpolation, a missing value)
** for a later fv_config_resolve(); nothing is resolved here.  Numbers are
** plain scalars written as Python prints them, so a float reads back as a
** float (1.0, not 1) and as the same double.  Tensors and arrays become
** nested sequences of numbers.
**
** The walk keeps its own stack: a value tree may be up to max_depth
** containers deep.  Values shared through the pickle memo are copied at
** each place they occur; the configuration's node limit bounds that.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_internal.h"
#include "config/config_internal.h"
#include "io/ckpt_internal.h"

/* ---- scalars ------------------------------------------------------------------------ */

/* A double as Python's repr() writes it (shortest text that reads back
** the same), in YAML's spelling for infinities and NaN. */
static void format_double(double d, char *out, size_t size)
{
	if (isnan(d)) {
		snprintf(out, size, ".nan");
		return;
	}
	if (isinf(d)) {
		snprintf(out, size, d > 0 ? ".inf" : "-.inf");
		return;
	}
	char buf[40];
	int prec = 0;
	for (; prec < 17; prec++) {
		snprintf(buf, sizeof buf, "%.*e", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* buf is [-]D[.DDD]e[+-]XX: split into sign, digits, exponent. */
	const char *p = buf;
	bool neg = *p == '-';
	if (neg)
		p++;
	char digits[24];
	size_t nd = 0;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	int exp = atoi(p + 1);
	size_t k = 0;
	char o[64];
	if (neg)
		o[k++] = '-';
	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			o[k++] = '0';
			o[k++] = '.';
			for (int z = 0; z < -exp - 1; z++)
				o[k++] = '0';
			memcpy(o + k, digits, nd);
			k += nd;
		} else {
			for (int i = 0; i <= exp; i++)
				o[k++] = (size_t)i < nd ? digits[i] : '0';
			o[k++] = '.';
			if ((size_t)exp + 1 < nd) {
				memcpy(o + k, digits + exp + 1, nd - (size_t)exp - 1);
				k += nd - (size_t)exp - 1;
			} else {
				o[k++] = '0';
			}
		}
		o[k] = '\0';
	} else {
		o[k++] = digits[0];
		if (nd > 1) {
			o[k++] = '.';
			memcpy(o + k, digits + 1, nd - 1);
			k += nd - 1;
		}
		snprintf(o + k, sizeof o - k, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
	snprintf(out, size, "%s", o);
}

/* ---- the walk ------------------------------------------------------------------------ */

typedef struct frame {
	const fv_pyval *src;
	fv_config_node *dst;
	size_t next;
	bool check_keys; /* keys of several kinds (or floats) may read the same as text */
} frame;

typedef struct walk {
	fv_config *cfg;
	fv__fname *file;
	const char *name;
	frame st[FV_CONFIG_MAX_DEPTH];
	size_t top;
} walk;

/* "a.b.3" of the child being converted, for messages. */
static const char *where(const walk *w, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < w->top && len + 2 < size; i++) {
		const frame *f = &w->st[i];
		size_t at = f->next - 1;
		const fv_pyval *k = fv_pyval_key(f->src, at);
		int n;
		if (k != NULL && fv_pyval_kind_of(k) == FV_PY_STR)
			n = snprintf(buf + len, size - len, "%s%s", len ? "." : "", fv_pyval_str(k, NULL));
		else if (k != NULL && fv_pyval_kind_of(k) == FV_PY_INT)
			n = snprintf(buf + len, size - len, "%s%lld", len ? "." : "", (long long)k->u.i);
		else
			n = snprintf(buf + len, size - len, "%s%zu", len ? "." : "", at);
		if (n < 0)
			break;
		len += (size_t)n;
		if (len >= size)
			len = size - 1;
	}
	return len ? buf : "<root>";
}

static fv_status fail(const walk *w, const char *what)
{
	char path[512];
	return fv_error(FV_ERR_CONFIG, "%s: %s: %s", w->name, where(w, path, sizeof path), what);
}

static fv_config_node *scalar(walk *w, const char *text, bool quoted)
{
	return fv__node_new_scalar(w->cfg, text, strlen(text), quoted, w->file, 0);
}

static fv_config_node *number_node(walk *w, const fv_ckpt_array *a, int64_t i)
{
	char buf[64];
	if (a->f32 != NULL)
		format_double(a->f32[i], buf, sizeof buf);
	else
		snprintf(buf, sizeof buf, "%lld", (long long)a->i64[i]);
	return scalar(w, buf, false);
}

static fv_status append(walk *w, fv_config_node *parent, const char *key, fv_config_node *kid)
{
	if (kid == NULL)
		return fv_errcode();
	fv_status s = fv__node_append(w->cfg, parent, key, kid);
	if (s != FV_OK)
		fv__node_free(w->cfg, kid);
	return s;
}

/* A new empty sequence as the last item of level[d - 1], made level[d]. */
static fv_status open_level(walk *w, fv_config_node **level, int d)
{
	fv_status s = append(w, level[d - 1], NULL, fv__node_new(w->cfg, FV_NODE_SEQ, w->file, 0));
	if (s == FV_OK)
		level[d] = level[d - 1]->kids[level[d - 1]->n - 1];
	return s;
}

/* A tensor or array: nested sequences, row-major (a 0-d one: a number). */
static fv_status array_node(walk *w, const fv_ckpt_array *a, fv_config_node **out)
{
	if (a->ndim == 0) {
		*out = number_node(w, a, 0);
		return *out ? FV_OK : fv_errcode();
	}
	/* Leaves are at the first empty dim, or at the last dim. */
	int outer = a->ndim - 1;
	for (int d = 0; d < a->ndim - 1; d++)
		if (a->shape[d] == 0) {
			outer = d;
			break;
		}
	fv_config_node *level[FV_CKPT_MAX_DIMS];
	int64_t idx[FV_CKPT_MAX_DIMS] = {0};
	if ((level[0] = fv__node_new(w->cfg, FV_NODE_SEQ, w->file, 0)) == NULL)
		return fv_errcode();
	*out = level[0];
	fv_status s = FV_OK;
	for (int d = 1; d <= outer && s == FV_OK; d++)
		s = open_level(w, level, d);
	int64_t elem = 0;
	while (s == FV_OK) {
		if (outer == a->ndim - 1)
			for (int64_t j = 0; j < a->shape[outer] && s == FV_OK; j++)
				s = append(w, level[outer], NULL, number_node(w, a, elem++));
		int d = outer - 1;
		while (d >= 0 && ++idx[d] == a->shape[d])
			idx[d--] = 0;
		if (d < 0)
			break;
		for (int e = d + 1; e <= outer && s == FV_OK; e++)
			s = open_level(w, level, e);
	}
	if (s != FV_OK) {
		fv__node_free(w->cfg, *out);
		*out = NULL;
	}
	return s;
}

/* The node for a value; containers come back empty with *push set. */
static fv_status node_for(walk *w, const fv_pyval *v, fv_config_node **out, bool *push)
{
	char buf[64];
	size_t len;
	*push = false;
	*out = NULL;
	switch (fv_pyval_kind_of(v)) {
	case FV_PY_NONE: *out = fv__node_new(w->cfg, FV_NODE_NULL, w->file, 0); break;
	case FV_PY_BOOL: *out = scalar(w, v->u.b ? "true" : "false", false); break;
	case FV_PY_INT:
		snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
		*out = scalar(w, buf, false);
		break;
	case FV_PY_FLOAT:
		format_double(v->u.f, buf, sizeof buf);
		*out = scalar(w, buf, false);
		break;
	case FV_PY_STR: {
		const char *s = fv_pyval_str(v, &len);
		if (strlen(s) != len)
			return fail(w, "a str holding a NUL character cannot be a configuration value");
		*out = fv__node_new_scalar(w->cfg, s, len, true, w->file, 0);
		break;
	}
	case FV_PY_GLOBAL: *out = scalar(w, fv_pyval_type_name(v), true); break;
	case FV_PY_TUPLE:
	case FV_PY_LIST:
	case FV_PY_SET:
		*push = true;
		*out = fv__node_new(w->cfg, FV_NODE_SEQ, w->file, 0);
		break;
	case FV_PY_DICT:
		*push = true;
		*out = fv__node_new(w->cfg, FV_NODE_MAP, w->file, 0);
		break;
	case FV_PY_TENSOR:
	case FV_PY_NDARRAY: return array_node(w, fv_pyval_array(v), out);
	case FV_PY_BYTES: return fail(w, "a bytes value cannot be a configuration value");
	case FV_PY_SLICE: return fail(w, "a slice cannot be a configuration value");
	case FV_PY_OBJECT: {
		char msg[200];
		snprintf(msg, sizeof msg, "a %s object cannot be a configuration value",
		         fv_pyval_type_name(v));
		return fail(w, msg);
	}
	}
	return *out ? FV_OK : fv_errcode();
}

/* A dict key as map key text. */
static fv_status key_text(walk *w, const fv_pyval *k, char *buf, size_t size, const char **out)
{
	size_t len;
	switch (fv_pyval_kind_of(k)) {
	case FV_PY_STR:
		*out = fv_pyval_str(k, &len);
		if (strlen(*out) != len)
			return fail(w, "a key holding a NUL character cannot be a configuration key");
		return FV_OK;
	case FV_PY_INT: snprintf(buf, size, "%lld", (long long)k->u.i); break;
	case FV_PY_BOOL: snprintf(buf, size, "%s", k->u.b ? "true" : "false"); break;
	case FV_PY_FLOAT: format_double(k->u.f, buf, size); break;
	case FV_PY_NONE: snprintf(buf, size, "null"); break;
	default: {
		char msg[120];
		snprintf(msg, sizeof msg, "a key that is %s cannot be a configuration key",
		         fv__pyval_a(k));
		return fail(w, msg);
	}
	}
	*out = buf;
	return FV_OK;
}

/* Keys of one kind are distinct as values, so distinct as text, except
** floats (two NaNs); only other dicts need the (linear) duplicate check. */
static bool mixed_keys(const fv_pyval *d)
{
	if (fv_pyval_kind_of(d) != FV_PY_DICT || fv_pyval_len(d) == 0)
		return false;
	fv_pyval_kind k0 = fv_pyval_kind_of(fv_pyval_key(d, 0));
	if (k0 == FV_PY_FLOAT)
		return true;
	for (size_t i = 1; i < fv_pyval_len(d); i++)
		if (fv_pyval_kind_of(fv_pyval_key(d, i)) != k0)
			return true;
	return false;
}

fv_config *fv_pyval_to_config(const fv_pyval *v, const char *name)
{
	fv_pyval_kind k = fv_pyval_kind_of(v);
	if (name == NULL)
		name = "<checkpoint>";
	if (k != FV_PY_DICT && k != FV_PY_LIST && k != FV_PY_TUPLE) {
		fv_error(FV_ERR_CONFIG, "%s: the value is %s; a configuration is a dict or a list", name,
		         fv__pyval_a(v));
		return NULL;
	}
	walk *w = fv__calloc(1, sizeof *w);
	fv_config *cfg = fv__config_new();
	fv__fname *file = fv__fname_new(name);
	fv_status s = FV_OK;
	if (w == NULL || cfg == NULL || file == NULL) {
		s = fv_error(FV_ERR_NOMEM, "out of memory converting %s", name);
		goto out;
	}
	w->cfg = cfg;
	w->file = file;
	w->name = name;
	bool push;
	if ((s = node_for(w, v, &cfg->root, &push)) != FV_OK)
		goto out;
	w->st[w->top++] = (frame){v, cfg->root, 0, mixed_keys(v)};
	while (w->top > 0) {
		frame *f = &w->st[w->top - 1];
		if (f->next == fv_pyval_len(f->src)) {
			w->top--;
			continue;
		}
		size_t i = f->next++;
		const fv_pyval *item = fv_pyval_item(f->src, i);
		char kbuf[64];
		const char *key = NULL;
		if (f->src->kind == FV_PY_DICT) {
			if ((s = key_text(w, fv_pyval_key(f->src, i), kbuf, sizeof kbuf, &key)) != FV_OK)
				goto out;
			if (f->check_keys && fv__node_find(f->dst, key) >= 0) {
				s = fail(w, "two keys read the same once written as text");
				goto out;
			}
		}
		fv_config_node *n;
		if ((s = node_for(w, item, &n, &push)) != FV_OK)
			goto out;
		if ((s = append(w, f->dst, key, n)) != FV_OK)
			goto out;
		if (push) {
			if (w->top == FV_CONFIG_MAX_DEPTH) {
				s = fail(w, "nested deeper than a configuration may be");
				goto out;
			}
			w->st[w->top++] = (frame){item, n, 0, mixed_keys(item)};
		}
	}
out:
	fv__fname_unref(file);
	free(w);
	if (s != FV_OK) {
		fv_config_free(cfg);
		return NULL;
	}
	return cfg;
}
