/*
** config_node.c: the configuration tree itself: building, copying, merging
** and freeing nodes, the reading API of include/fovea/config.h, and the
** typed reading of scalars.
**
** Scalars are typed the way openretina's configurations are typed when
** PyYAML (through OmegaConf's loader) reads them: YAML 1.1 booleans
** (yes/no/on/off too), ints in decimal, 0x, 0b, 0o/0 octal and base 60,
** floats with OmegaConf's relaxed exponent form (1e-3) and .inf/.nan.  A
** quoted scalar is a string in the tree (and stays quoted in output), but a
** typed read converts it all the same, as OmegaConf's typed nodes do.
*/
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "base/base_internal.h"

/* ---- file names ------------------------------------------------------------------- */

fv__fname *fv__fname_new(const char *name)
{
	size_t len = strlen(name);
	fv__fname *f = fv__malloc(sizeof *f + len + 1);
	if (f == NULL)
		return NULL;
	f->refs = 1;
	memcpy(f->name, name, len + 1);
	return f;
}

fv__fname *fv__fname_ref(fv__fname *f)
{
	if (f != NULL)
		f->refs++;
	return f;
}

void fv__fname_unref(fv__fname *f)
{
	if (f != NULL && --f->refs == 0)
		free(f);
}

/* ---- nodes ---------------------------------------------------------------------------- */

fv_config_node *fv__node_new(fv_config *cfg, fv_node_type type, fv__fname *file, int line)
{
	if (cfg != NULL && cfg->n_nodes >= FV_CONFIG_MAX_NODES) {
		cfg->too_big = true;
		fv_error_at(&(fv_config_node){.file = file, .line = line}, FV_ERR_CONFIG,
		            "the configuration grows beyond %d values (alias or interpolation "
		            "expansion?)", FV_CONFIG_MAX_NODES);
		return NULL;
	}
	fv_config_node *n = fv__calloc(1, sizeof *n);
	if (n == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory building a configuration");
		return NULL;
	}
	n->type = type;
	n->file = fv__fname_ref(file);
	n->line = line;
	if (cfg != NULL)
		cfg->n_nodes++;
	return n;
}

fv_config_node *fv__node_new_scalar(fv_config *cfg, const char *text, size_t len, bool quoted,
                                    fv__fname *file, int line)
{
	char *copy = fv__malloc(len + 1);
	if (copy == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory building a configuration");
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	bool is_null = !quoted && strlen(copy) == len && fv__scalar_is_null(copy);
	fv_config_node *n = fv__node_new(cfg, is_null ? FV_NODE_NULL : FV_NODE_SCALAR, file, line);
	if (n == NULL || is_null) {
		free(copy);
		return n;
	}
	n->text = copy;
	n->quoted = quoted;
	return n;
}

static void node_clear_contents(fv_config *cfg, fv_config_node *n)
{
	for (size_t i = 0; i < n->n; i++)
		fv__node_free(cfg, n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n->error);
	n->kids = NULL;
	n->n = n->cap = 0;
	n->text = NULL;
	n->error = NULL;
}

void fv__node_free(fv_config *cfg, fv_config_node *n)
{
	if (n == NULL)
		return;
	node_clear_contents(cfg, n);
	free(n->key);
	free(n->keypath);
	free(n->error);
	fv__fname_unref(n->file);
	if (cfg != NULL && cfg->n_nodes > 0)
		cfg->n_nodes--;
	free(n);
}

static fv_status node_reserve(fv_config_node *n, size_t want)
{
	if (want <= n->cap)
		return FV_OK;
	size_t cap = n->cap ? n->cap * 2 : 4;
	while (cap < want)
		cap *= 2;
	fv_config_node **kids = fv__realloc(n->kids, cap * sizeof *kids);
	if (kids == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory building a configuration");
	n->kids = kids;
	n->cap = cap;
	return FV_OK;
}

fv_status fv__node_append(fv_config *cfg, fv_config_node *parent, const char *key,
                          fv_config_node *child)
{
	(void)cfg;
	if (node_reserve(parent, parent->n + 1) != FV_OK)
		return FV_ERR_NOMEM;
	if (key != NULL && key != child->key) {
		char *copy = fv__strdup(key);
		if (copy == NULL)
			return fv_error(FV_ERR_NOMEM, "out of memory building a configuration");
		free(child->key);
		child->key = copy;
	}
	child->parent = parent;
	parent->kids[parent->n++] = child;
	return FV_OK;
}

fv_config_node *fv__node_copy(fv_config *cfg, const fv_config_node *src)
{
	fv_config_node *n = fv__node_new(cfg, src->type, src->file, src->line);
	if (n == NULL)
		return NULL;
	n->col = src->col;
	n->quoted = src->quoted;
	n->state = src->state;
	if (src->text != NULL && (n->text = fv__strdup(src->text)) == NULL)
		goto nomem;
	if (src->error != NULL && (n->error = fv__strdup(src->error)) == NULL)
		goto nomem;
	if (node_reserve(n, src->n) != FV_OK)
		goto fail;
	for (size_t i = 0; i < src->n; i++) {
		fv_config_node *kid = fv__node_copy(cfg, src->kids[i]);
		if (kid == NULL)
			goto fail;
		if (fv__node_append(cfg, n, src->kids[i]->key, kid) != FV_OK) {
			fv__node_free(cfg, kid);
			goto fail;
		}
	}
	return n;
nomem:
	fv_error(FV_ERR_NOMEM, "out of memory copying a configuration");
fail:
	fv__node_free(cfg, n);
	return NULL;
}

long fv__node_find(const fv_config_node *map, const char *key)
{
	if (map == NULL || map->type != FV_NODE_MAP)
		return -1;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->kids[i]->key, key) == 0)
			return (long)i;
	return -1;
}

void fv__node_replace_at(fv_config *cfg, fv_config_node *parent, size_t i, fv_config_node *child)
{
	fv_config_node *old = parent->kids[i];
	child->parent = parent;
	if (old->key != NULL && child->key == NULL) {
		child->key = old->key;
		old->key = NULL;
	}
	parent->kids[i] = child;
	fv__node_free(cfg, old);
}

void fv__node_remove_at(fv_config *cfg, fv_config_node *parent, size_t i)
{
	fv__node_free(cfg, parent->kids[i]);
	memmove(parent->kids + i, parent->kids + i + 1, (parent->n - i - 1) * sizeof *parent->kids);
	parent->n--;
	fv__node_forget_keypaths(parent);
}

void fv__node_take_contents(fv_config *cfg, fv_config_node *dst, fv_config_node *src)
{
	node_clear_contents(cfg, dst);
	dst->type = src->type;
	dst->quoted = src->quoted;
	dst->state = src->state;
	dst->text = src->text;
	dst->error = src->error;
	dst->kids = src->kids;
	dst->n = src->n;
	dst->cap = src->cap;
	for (size_t i = 0; i < dst->n; i++)
		dst->kids[i]->parent = dst;
	src->text = NULL;
	src->error = NULL;
	src->kids = NULL;
	src->n = src->cap = 0;
	fv__node_free(cfg, src);
	fv__node_forget_keypaths(dst);
}

void fv__node_take_place(fv_config_node *dst, const fv_config_node *src)
{
	fv__fname *f = fv__fname_ref(src->file);
	fv__fname_unref(dst->file);
	dst->file = f;
	dst->line = src->line;
	dst->col = src->col;
}

void fv__node_take_places(fv_config_node *n, const fv_config_node *like, const fv_config_node *up)
{
	fv__node_take_place(n, like != NULL ? like : up);
	for (size_t i = 0; i < n->n; i++) {
		const fv_config_node *kid = NULL;
		if (like != NULL && like->type == FV_NODE_MAP && n->type == FV_NODE_MAP)
			kid = fv__node_find(like, n->kids[i]->key) >= 0
			          ? like->kids[fv__node_find(like, n->kids[i]->key)]
			          : NULL;
		else if (like != NULL && like->type == FV_NODE_SEQ && n->type == FV_NODE_SEQ)
			kid = fv_node_at(like, i);
		fv__node_take_places(n->kids[i], kid, n);
	}
}

fv_status fv__node_merge(fv_config *cfg, fv_config_node *dst, fv_config_node *src)
{
	/* OmegaConf keeps an existing value when the incoming one is ??? */
	if (fv__node_is_missing(src)) {
		fv__node_free(cfg, src);
		return FV_OK;
	}
	if (dst->type != FV_NODE_MAP || src->type != FV_NODE_MAP) {
		fv__node_take_place(dst, src);
		fv__node_take_contents(cfg, dst, src);
		return FV_OK;
	}
	fv_status st = FV_OK;
	size_t i = 0;
	for (; i < src->n && st == FV_OK; i++) {
		fv_config_node *kid = src->kids[i];
		long at = fv__node_find(dst, kid->key);
		src->kids[i] = NULL;
		if (at >= 0) {
			st = fv__node_merge(cfg, dst->kids[at], kid);
		} else if ((st = fv__node_append(cfg, dst, kid->key, kid)) != FV_OK) {
			fv__node_free(cfg, kid);
		}
	}
	for (; i < src->n; i++)
		fv__node_free(cfg, src->kids[i]);
	src->n = 0;
	fv__node_free(cfg, src);
	return st;
}

int fv__node_depth(const fv_config_node *n)
{
	int deepest = 0;
	for (size_t i = 0; i < n->n; i++) {
		int d = fv__node_depth(n->kids[i]);
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

void fv__node_forget_keypaths(fv_config_node *n)
{
	free(n->keypath);
	n->keypath = NULL;
	for (size_t i = 0; i < n->n; i++)
		fv__node_forget_keypaths(n->kids[i]);
}

fv_status fv__node_check(const fv_config_node *n)
{
	if (n != NULL && n->error != NULL)
		return fv_error(FV_ERR_CONFIG, "%s", n->error);
	return FV_OK;
}

bool fv__node_is_missing(const fv_config_node *n)
{
	return n != NULL && n->type == FV_NODE_SCALAR && strcmp(n->text, "\?\?\?") == 0;
}

/* As much of "FILE:LINE:COLUMN" as the node knows; false for none. */
static bool node_place(const fv_config_node *n, char *buf, size_t size)
{
	if (n == NULL || n->file == NULL)
		return false;
	if (n->line <= 0)
		snprintf(buf, size, "%s", n->file->name);
	else if (n->col <= 0)
		snprintf(buf, size, "%s:%d", n->file->name, n->line);
	else
		snprintf(buf, size, "%s:%d:%d", n->file->name, n->line, n->col);
	return true;
}

const char *fv__node_where(const fv_config_node *n, char *buf, size_t size)
{
	if (!node_place(n, buf, size))
		snprintf(buf, size, "<config>");
	return buf;
}

fv_status fv__verror_at(const fv_config_node *n, fv_status code, const char *fmt, va_list ap)
{
	char place[512], msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (!node_place(n, place, sizeof place))
		return fv_error(code, "%s", msg);
	return fv_error(code, "%s: %s", place, msg);
}

fv_status fv_error_at(const fv_config_node *n, fv_status code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fv__verror_at(n, code, fmt, ap);
	va_end(ap);
	return code;
}

const char *fv__node_name(const fv_config_node *n)
{
	const char *kp = fv_node_keypath(n);
	return kp == NULL || kp[0] == '\0' ? "<root>" : kp;
}

/* ---- the configuration ----------------------------------------------------------------- */

fv_config *fv__config_new(void)
{
	fv_config *cfg = fv__calloc(1, sizeof *cfg);
	if (cfg == NULL)
		fv_error(FV_ERR_NOMEM, "out of memory creating a configuration");
	return cfg;
}

void fv_config_free(fv_config *cfg)
{
	if (cfg == NULL)
		return;
	fv__node_free(cfg, cfg->root);
	free(cfg);
}

const fv_config_node *fv_config_root(const fv_config *cfg)
{
	return cfg ? cfg->root : NULL;
}

/* ---- reading nodes ---------------------------------------------------------------------- */

fv_node_type fv_node_kind(const fv_config_node *n)
{
	return n ? n->type : FV_NODE_NULL;
}

/* A read marks the node used (see fv_config_unused).  Walking a tree's shape
** (kinds, sizes, keys, fv_node_at) does not: only asking for a key or a
** value does. */
static const fv_config_node *mark(const fv_config_node *n)
{
	if (n != NULL)
		((fv_config_node *)n)->used = true;
	return n;
}

void fv__node_mark_used(const fv_config_node *n)
{
	if (n == NULL)
		return;
	mark(n);
	for (size_t i = 0; i < n->n; i++)
		fv__node_mark_used(n->kids[i]);
}

void fv__node_unmark(const fv_config_node *n)
{
	if (n != NULL)
		((fv_config_node *)n)->used = false;
}

const char *fv_node_text(const fv_config_node *n)
{
	return n && n->type == FV_NODE_SCALAR ? mark(n)->text : NULL;
}

bool fv_node_quoted(const fv_config_node *n)
{
	return n && n->type == FV_NODE_SCALAR && n->quoted;
}

size_t fv_node_size(const fv_config_node *n)
{
	return n && (n->type == FV_NODE_SEQ || n->type == FV_NODE_MAP) ? n->n : 0;
}

const fv_config_node *fv_node_at(const fv_config_node *n, size_t i)
{
	return i < fv_node_size(n) ? n->kids[i] : NULL;
}

const char *fv_node_key_at(const fv_config_node *n, size_t i)
{
	return n && n->type == FV_NODE_MAP && i < n->n ? n->kids[i]->key : NULL;
}

const fv_config_node *fv_node_get(const fv_config_node *n, const char *key)
{
	if (key == NULL)
		return NULL;
	long i = fv__node_find(n, key);
	return i >= 0 ? mark(n->kids[i]) : NULL;
}

/* A list index: decimal digits only, no sign. */
static bool parse_index(const char *s, size_t len, size_t *out)
{
	if (len == 0 || len > 18)
		return false;
	size_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static const fv_config_node *child_by_segment(const fv_config_node *n, const char *seg, size_t len)
{
	if (n == NULL)
		return NULL;
	if (n->type == FV_NODE_MAP) {
		for (size_t i = 0; i < n->n; i++)
			if (strncmp(n->kids[i]->key, seg, len) == 0 && n->kids[i]->key[len] == '\0')
				return n->kids[i];
		return NULL;
	}
	size_t idx;
	if (n->type == FV_NODE_SEQ && parse_index(seg, len, &idx) && idx < n->n)
		return n->kids[idx];
	return NULL;
}

/* Segments are separated by '.'; "a[0]" is accepted for "a.0". */
const fv_config_node *fv_node_path(const fv_config_node *n, const char *path)
{
	if (path == NULL)
		return NULL;
	const char *p = path;
	while (n != NULL && *p != '\0') {
		size_t len;
		if (*p == '[') {
			const char *close = strchr(p, ']');
			if (close == NULL)
				return NULL;
			n = child_by_segment(n, p + 1, (size_t)(close - p - 1));
			p = close + 1;
		} else {
			len = strcspn(p, ".[");
			if (len == 0)
				return NULL;
			n = child_by_segment(n, p, len);
			p += len;
		}
		if (*p == '.')
			p++;
		mark(n);
	}
	return n;
}

const char *fv_node_file(const fv_config_node *n)
{
	return n && n->file ? n->file->name : NULL;
}

int fv_node_line(const fv_config_node *n)
{
	return n ? n->line : 0;
}

static size_t index_in_parent(const fv_config_node *n)
{
	for (size_t i = 0; i < n->parent->n; i++)
		if (n->parent->kids[i] == n)
			return i;
	return 0;
}

static char *build_keypath(const fv_config_node *n)
{
	if (n->parent == NULL)
		return fv__strdup(n->key ? n->key : "");
	char *up = build_keypath(n->parent);
	if (up == NULL)
		return NULL;
	char idx[32];
	const char *seg = n->key;
	if (n->parent->type == FV_NODE_SEQ || seg == NULL) {
		snprintf(idx, sizeof idx, "%zu", index_in_parent(n));
		seg = idx;
	}
	size_t a = strlen(up), b = strlen(seg);
	char *s = fv__malloc(a + b + 2);
	if (s != NULL) {
		memcpy(s, up, a);
		size_t at = a;
		if (a > 0)
			s[at++] = '.';
		memcpy(s + at, seg, b + 1);
	}
	free(up);
	return s;
}

/* The result is cached in the node (hence the cast): it stays valid while
** the tree above the node is unchanged.  It serves messages and names in
** them, and callers cannot check it, so out of memory gives the previous
** path or "" (a benign allocation). */
const char *fv_node_keypath(const fv_config_node *n)
{
	if (n == NULL)
		return NULL;
	fv_config_node *m = (fv_config_node *)n;
	fv__benign_begin();
	char *kp = build_keypath(n);
	fv__benign_end();
	if (kp == NULL)
		return m->keypath ? m->keypath : "";
	if (m->keypath != NULL && strcmp(m->keypath, kp) == 0) {
		free(kp);
		return m->keypath;
	}
	free(m->keypath);
	m->keypath = kp;
	return kp;
}

/* ---- scalars ------------------------------------------------------------------------------ */

bool fv__scalar_is_null(const char *s)
{
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

bool fv__scalar_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Digits of `base` with '_' separators (when allowed); at least one digit. */
static bool accumulate(const char *p, int base, bool underscores, uint64_t *acc, bool *overflow)
{
	int ndigits = 0;
	for (; *p; p++) {
		if (*p == '_' && underscores)
			continue;
		int d = digit_value(*p);
		if (d >= base)
			return false;
		if (*acc > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			*overflow = true;
		else
			*acc = *acc * (uint64_t)base + (uint64_t)d;
		ndigits++;
	}
	return ndigits > 0;
}

/* The part [0-5]?[0-9] after a ':' of a base-60 number at *p, moving *p
** past it; -1 when there is none. */
static int sexagesimal_part(const char **p)
{
	int part = 0, nd = 0;
	while (**p >= '0' && **p <= '9' && nd < 2) {
		part = part * 10 + (**p - '0');
		(*p)++;
		nd++;
	}
	if (nd == 0 || (nd == 2 && (*p)[-2] > '5'))
		return -1;
	return part;
}

/* [1-9][0-9_]*(:[0-5]?[0-9])+ : base 60, as YAML 1.1 reads "1:30". */
static bool sexagesimal_int(const char *p, uint64_t *acc, bool *overflow)
{
	if (*p < '1' || *p > '9')
		return false;
	size_t head = strcspn(p, ":");
	if (p[head] != ':')
		return false;
	for (size_t i = 0; i < head; i++)
		if (!(p[i] == '_' || (p[i] >= '0' && p[i] <= '9')))
			return false;
	char buf[64];
	if (head >= sizeof buf)
		return false;
	memcpy(buf, p, head);
	buf[head] = '\0';
	if (!accumulate(buf, 10, true, acc, overflow))
		return false;
	p += head;
	while (*p == ':') {
		p++;
		int part = sexagesimal_part(&p);
		if (part < 0)
			return false;
		if (*acc > (UINT64_MAX - (uint64_t)part) / 60)
			*overflow = true;
		else
			*acc = *acc * 60 + (uint64_t)part;
	}
	return *p == '\0';
}

bool fv__scalar_int(const char *s, int64_t *out, bool *overflow)
{
	const char *p = s;
	bool neg = false;
	uint64_t acc = 0;
	bool ovf = false, ok;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && p[1] == 'b')
		ok = accumulate(p + 2, 2, true, &acc, &ovf);
	else if (p[0] == '0' && p[1] == 'x')
		ok = accumulate(p + 2, 16, true, &acc, &ovf);
	else if (p[0] == '0' && p[1] == 'o')
		ok = accumulate(p + 2, 8, false, &acc, &ovf);
	else if (p[0] == '0' && p[1] != '\0')
		ok = accumulate(p + 1, 8, true, &acc, &ovf);
	else if (p[0] == '0')
		ok = true;
	else if (p[0] >= '1' && p[0] <= '9' && strchr(p, ':') != NULL)
		ok = sexagesimal_int(p, &acc, &ovf);
	else if (p[0] >= '1' && p[0] <= '9')
		ok = accumulate(p, 10, true, &acc, &ovf);
	else
		ok = false;
	if (!ok)
		return false;
	if (!ovf && acc > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
		ovf = true;
	if (overflow != NULL)
		*overflow = ovf;
	if (ovf)
		return true;
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return true;
}

/* Skip [0-9_]*; returns how many real digits were seen. */
static int skip_digits(const char **p)
{
	int n = 0;
	while ((**p >= '0' && **p <= '9') || **p == '_') {
		n += **p != '_';
		(*p)++;
	}
	return n;
}

static bool float_sexagesimal(const char *s, double *out)
{
	const char *p = s;
	double sign = 1;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (*p < '0' || *p > '9')
		return false;
	double v = 0;
	for (; (*p >= '0' && *p <= '9') || *p == '_'; p++)
		if (*p != '_')
			v = v * 10 + (*p - '0');
	if (*p != ':')
		return false;
	while (*p == ':') {
		p++;
		int part = sexagesimal_part(&p);
		if (part < 0)
			return false;
		v = v * 60 + part;
	}
	if (*p != '.')
		return false;
	p++;
	char frac[64] = "0.";
	size_t k = 2;
	for (; (*p >= '0' && *p <= '9') || *p == '_'; p++)
		if (*p != '_' && k < sizeof frac - 1)
			frac[k++] = *p;
	frac[k] = '\0';
	if (*p != '\0')
		return false;
	*out = sign * (v + strtod(frac, NULL));
	return true;
}

bool fv__scalar_float(const char *s, double *out)
{
	const char *p = s;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
		*out = neg ? -INFINITY : INFINITY;
		return true;
	}
	if (p == s && (strcmp(p, ".nan") == 0 || strcmp(p, ".NaN") == 0 || strcmp(p, ".NAN") == 0)) {
		*out = NAN;
		return true;
	}
	if (strchr(p, ':') != NULL)
		return float_sexagesimal(s, out);
	/* [0-9][0-9_]* (. [0-9_]*)? | . [0-9_]+ ; then ([eE][-+]?[0-9]+)? ; a dot
	** or an exponent is required, else it is an int or a string. */
	int digits = skip_digits(&p);
	bool dot = false, exp = false;
	if (*p == '.') {
		dot = true;
		p++;
		digits += skip_digits(&p);
	}
	if (digits == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		exp = true;
	}
	if (*p != '\0' || !(dot || exp))
		return false;
	/* An int part must start with a digit (not '_') */
	const char *q = s + (s[0] == '+' || s[0] == '-');
	if (*q == '_')
		return false;
	size_t len = strlen(s);
	char stack[64];
	char *buf = len < sizeof stack ? stack : fv__malloc(len + 1);
	if (buf == NULL)
		return false;
	size_t k = 0;
	for (const char *c = s; *c; c++)
		if (*c != '_')
			buf[k++] = *c;
	buf[k] = '\0';
	*out = strtod(buf, NULL);
	if (buf != stack)
		free(buf);
	return true;
}

fv__scalar_kind fv__scalar_kind_of(const char *s)
{
	bool b;
	int64_t i;
	double d;
	bool ovf;
	if (fv__scalar_is_null(s))
		return FV__SCALAR_NULL;
	if (fv__scalar_bool(s, &b))
		return FV__SCALAR_BOOL;
	if (fv__scalar_int(s, &i, &ovf))
		return FV__SCALAR_INT;
	if (fv__scalar_float(s, &d))
		return FV__SCALAR_FLOAT;
	return FV__SCALAR_STR;
}

/* ---- typed reads ------------------------------------------------------------------------- */

/* What a node holds, for "got ..." in messages. */
static void describe_value(const fv_config_node *n, char *buf, size_t size)
{
	switch (n->type) {
	case FV_NODE_NULL: snprintf(buf, size, "null"); break;
	case FV_NODE_SEQ: snprintf(buf, size, "a list"); break;
	case FV_NODE_MAP: snprintf(buf, size, "a map"); break;
	case FV_NODE_SCALAR:
		if (strlen(n->text) > 60)
			snprintf(buf, size, "'%.57s...'", n->text);
		else
			snprintf(buf, size, "'%s'", n->text);
		break;
	}
}

static fv_status type_error(const fv_config_node *n, const char *expected)
{
	char got[80];
	if (fv__node_is_missing(n))
		return fv_error_at(n, FV_ERR_CONFIG, "%s: missing mandatory value (\?\?\?)",
		                   fv__node_name(n));
	describe_value(n, got, sizeof got);
	return fv_error_at(n, FV_ERR_CONFIG, "%s: expected %s, got %s", fv__node_name(n), expected,
	                   got);
}

fv_status fv_node_to_bool(const fv_config_node *n, bool *out)
{
	if (n == NULL)
		return fv_error(FV_ERR_ARG, "fv_node_to_bool: no node (NULL)");
	mark(n);
	if (n->error != NULL)
		return fv__node_check(n);
	if (n->type == FV_NODE_SCALAR && fv__scalar_bool(n->text, out))
		return FV_OK;
	return type_error(n, "a boolean (true/false)");
}

fv_status fv_node_to_int(const fv_config_node *n, int64_t *out)
{
	if (n == NULL)
		return fv_error(FV_ERR_ARG, "fv_node_to_int: no node (NULL)");
	mark(n);
	if (n->error != NULL)
		return fv__node_check(n);
	bool overflow = false;
	int64_t v;
	if (n->type == FV_NODE_SCALAR && fv__scalar_int(n->text, &v, &overflow)) {
		if (overflow)
			return fv_error_at(n, FV_ERR_CONFIG, "%s: integer '%s' does not fit in 64 bits",
			                   fv__node_name(n), n->text);
		*out = v;
		return FV_OK;
	}
	return type_error(n, "an integer");
}

fv_status fv_node_to_double(const fv_config_node *n, double *out)
{
	if (n == NULL)
		return fv_error(FV_ERR_ARG, "fv_node_to_double: no node (NULL)");
	mark(n);
	if (n->error != NULL)
		return fv__node_check(n);
	if (n->type == FV_NODE_SCALAR) {
		int64_t v;
		bool overflow = false;
		if (fv__scalar_float(n->text, out))
			return FV_OK;
		if (fv__scalar_int(n->text, &v, &overflow)) {
			if (!overflow) {
				*out = (double)v;
				return FV_OK;
			}
			/* a huge decimal int is still a fine double */
			errno = 0;
			char *end;
			double d = strtod(n->text, &end);
			if (*end == '\0' && errno == 0) {
				*out = d;
				return FV_OK;
			}
		}
	}
	return type_error(n, "a number");
}

bool fv_node_is_null(const fv_config_node *n)
{
	return n == NULL || mark(n)->type == FV_NODE_NULL;
}
