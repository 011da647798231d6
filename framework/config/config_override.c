/*
** config_override.c: command-line overrides in Hydra's grammar.
**
**   a.b=VALUE     set an existing key (a map value merges into a map)
**   +a.b=VALUE    add a key, creating the maps above it
**   ++a.b=VALUE   set or add, whichever applies
**   ~a.b[=VALUE]  delete a key (only if it holds VALUE, when given)
**
** Paths use dots, list items their index ("layers.0" or "layers[0]").
** VALUE is YAML flow when it starts with [ { ' or " (x=[1,2], x={a: 1},
** x='007'), otherwise the text itself, typed like any plain YAML scalar
** (x=3 is a number, x=null is null, x=${a.b} an interpolation).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

/* A value parsed from an override has lines and columns of its own text,
** which no editor would find: its place is the origin alone. */
static void forget_lines(fv_config_node *n)
{
	n->line = n->col = 0;
	for (size_t i = 0; i < n->n; i++)
		forget_lines(n->kids[i]);
}

fv_config_node *fv__override_value(fv_config *cfg, const char *text, const char *origin)
{
	while (*text == ' ' || *text == '\t')
		text++;
	size_t len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	fv__fname *file = fv__fname_new(origin ? origin : "<override>");
	if (file == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading an override"), NULL;
	fv_config_node *n = NULL;
	if (len > 0 && strchr("[{'\"", text[0]) != NULL) {
		fv_config *tmp = fv__config_parse(text, len, file->name, true);
		if (tmp != NULL)
			n = fv__node_copy(cfg, tmp->root);
		fv_config_free(tmp);
	} else {
		/* Hydra reads "key=" as the empty string, not null */
		n = fv__node_new_scalar(cfg, text, len, len == 0, file, 0);
	}
	fv__fname_unref(file);
	if (n != NULL)
		forget_lines(n);
	return n;
}

/* ---- paths ------------------------------------------------------------------------------ */

typedef struct segment {
	const char *s;
	size_t len;
} segment;

#define MAX_SEGMENTS 64

static fv_status split_path(const char *arg, const char *key, segment *segs, int *n)
{
	const char *p = key;
	*n = 0;
	while (*p != '\0') {
		if (*n == MAX_SEGMENTS)
			return fv_error(FV_ERR_CONFIG, "override '%s': the key has more than %d parts", arg,
			                MAX_SEGMENTS);
		segment sg;
		if (*p == '[') {
			const char *close = strchr(p, ']');
			if (close == NULL)
				return fv_error(FV_ERR_CONFIG, "override '%s': missing ']' in the key", arg);
			sg = (segment){p + 1, (size_t)(close - p - 1)};
			p = close + 1;
		} else {
			sg = (segment){p, strcspn(p, ".[")};
			p += sg.len;
		}
		if (sg.len == 0)
			return fv_error(FV_ERR_CONFIG, "override '%s': empty part in the key '%s'", arg, key);
		segs[(*n)++] = sg;
		if (*p == '.') {
			p++;
			if (*p == '\0')
				return fv_error(FV_ERR_CONFIG, "override '%s': the key '%s' ends with '.'", arg, key);
		}
	}
	if (*n == 0)
		return fv_error(FV_ERR_CONFIG, "override '%s': no key before '='", arg);
	return FV_OK;
}

static bool seg_index(segment sg, size_t *idx)
{
	if (sg.len == 0 || sg.len > 15)
		return false;
	size_t v = 0;
	for (size_t i = 0; i < sg.len; i++) {
		if (sg.s[i] < '0' || sg.s[i] > '9')
			return false;
		v = v * 10 + (size_t)(sg.s[i] - '0');
	}
	*idx = v;
	return true;
}

/* Child of n named by sg: its index, or -1. */
static long child_index(const fv_config_node *n, segment sg)
{
	if (n->type == FV_NODE_MAP) {
		for (size_t i = 0; i < n->n; i++)
			if (strlen(n->kids[i]->key) == sg.len && memcmp(n->kids[i]->key, sg.s, sg.len) == 0)
				return (long)i;
		return -1;
	}
	size_t idx;
	if (n->type == FV_NODE_SEQ && seg_index(sg, &idx) && idx < n->n)
		return (long)idx;
	return -1;
}

/* "a.b" for the segments [0, upto). */
static void join(const segment *segs, int upto, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = '\0';
	for (int i = 0; i < upto && at + 1 < size; i++) {
		int w = snprintf(buf + at, size - at, "%s%.*s", i ? "." : "", (int)segs[i].len, segs[i].s);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	if (at >= size)
		buf[size - 1] = '\0';
}

/* ", did you mean 'a.bc'?" for a missing segment i under n, or "". */
static void suggest(const fv_config_node *n, const segment *segs, int i, char *buf, size_t size)
{
	buf[0] = '\0';
	if (n->type != FV_NODE_MAP || n->n == 0)
		return;
	const char **keys = fv__malloc(n->n * sizeof *keys);
	if (keys == NULL)
		return;
	for (size_t k = 0; k < n->n; k++)
		keys[k] = n->kids[k]->key;
	char want[256], up[512];
	snprintf(want, sizeof want, "%.*s", (int)segs[i].len, segs[i].s);
	const char *best = fv_closest_name(want, keys, n->n);
	if (best != NULL) {
		join(segs, i, up, sizeof up);
		snprintf(buf, size, " (did you mean '%s%s%s'?)", up, up[0] ? "." : "", best);
	}
	free(keys);
}

/* ---- the four forms ---------------------------------------------------------------------- */

typedef enum { OV_SET, OV_ADD, OV_FORCE, OV_DELETE } ov_kind;

static bool same_value(const fv_config_node *a, const fv_config_node *b)
{
	if (a->type != b->type || a->n != b->n)
		return false;
	if (a->type == FV_NODE_SCALAR && strcmp(a->text, b->text) != 0)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (a->type == FV_NODE_MAP && strcmp(a->kids[i]->key, b->kids[i]->key) != 0)
			return false;
		if (!same_value(a->kids[i], b->kids[i]))
			return false;
	}
	return true;
}

/* Walk to the parent of the last segment, creating maps for +/++. */
static fv_status walk_to_parent(fv_config *cfg, const char *arg, ov_kind kind, const segment *segs,
                                int n, fv__fname *file, fv_config_node **out)
{
	fv_config_node *cur = cfg->root;
	char path[512], hint[640];
	for (int i = 0; i < n - 1; i++) {
		long at = child_index(cur, segs[i]);
		if (at < 0 && (kind == OV_ADD || kind == OV_FORCE) && cur->type == FV_NODE_MAP) {
			fv_config_node *map = fv__node_new(cfg, FV_NODE_MAP, file, 0);
			char key[256];
			snprintf(key, sizeof key, "%.*s", (int)segs[i].len, segs[i].s);
			fv_status st = map ? fv__node_append(cfg, cur, key, map) : fv_errcode();
			if (st != FV_OK) {
				fv__node_free(cfg, map);
				return st;
			}
			at = (long)cur->n - 1;
		}
		if (at < 0) {
			join(segs, i + 1, path, sizeof path);
			suggest(cur, segs, i, hint, sizeof hint);
			if (cur->type != FV_NODE_MAP && cur->type != FV_NODE_SEQ)
				return fv_error(FV_ERR_CONFIG, "override '%s': '%s' is not a map or a list, so it "
				                "has no key '%.*s'", arg, fv__node_name(cur), (int)segs[i].len, segs[i].s);
			return fv_error(FV_ERR_CONFIG, "override '%s': the key '%s' does not exist%s%s", arg, path,
			                hint, kind == OV_SET ? "; to add it, use +KEY=VALUE" : "");
		}
		cur = cur->kids[at];
	}
	if (cur->type != FV_NODE_MAP && cur->type != FV_NODE_SEQ)
		return fv_error(FV_ERR_CONFIG, "override '%s': '%s' is not a map or a list, so it has no "
		                "key '%.*s'", arg, fv__node_name(cur), (int)segs[n - 1].len, segs[n - 1].s);
	*out = cur;
	return FV_OK;
}

static fv_status apply_delete(fv_config *cfg, const char *arg, fv_config_node *parent, const segment *segs,
                              int n, const char *value)
{
	long at = child_index(parent, segs[n - 1]);
	char path[512], hint[640];
	if (at < 0) {
		join(segs, n, path, sizeof path);
		suggest(parent, segs, n - 1, hint, sizeof hint);
		return fv_error(FV_ERR_CONFIG, "override '%s': cannot delete '%s', it does not exist%s", arg,
		                path, hint);
	}
	if (value != NULL) {
		fv_config_node *want = fv__override_value(NULL, value, arg);
		if (want == NULL)
			return fv_errcode();
		bool same = same_value(want, parent->kids[at]);
		fv__node_free(NULL, want);
		if (!same) {
			join(segs, n, path, sizeof path);
			return fv_error(FV_ERR_CONFIG, "override '%s': not deleting '%s': its value is not '%s'",
			                arg, path, value);
		}
	}
	fv__node_remove_at(cfg, parent, (size_t)at);
	return FV_OK;
}

/* body: the override without its + or ++ */
static fv_status apply_value(fv_config *cfg, const char *arg, const char *body, ov_kind kind,
                             fv_config_node *parent, const segment *segs, int n, fv_config_node *value)
{
	segment last = segs[n - 1];
	long at = child_index(parent, last);
	char path[512], hint[640];
	join(segs, n, path, sizeof path);
	if (at >= 0) {
		fv_config_node *old = parent->kids[at];
		if (kind == OV_ADD && old->type != FV_NODE_NULL)
			fprintf(stderr, "fovea: note: override '%s': '%s' already exists and is replaced "
			        "(Hydra refuses this; write '%s' or '++%s')\n", arg, path, body, body);
		if (old->type == FV_NODE_MAP && value->type == FV_NODE_MAP)
			return fv__node_merge(cfg, old, value);
		fv__node_replace_at(cfg, parent, (size_t)at, value);
		return FV_OK;
	}
	if (kind == OV_SET) {
		suggest(parent, segs, n - 1, hint, sizeof hint);
		fv__node_free(cfg, value);
		return fv_error(FV_ERR_CONFIG, "override '%s': the key '%s' does not exist%s; to add it, "
		                "use '+%s'", arg, path, hint, body);
	}
	size_t idx;
	if (parent->type == FV_NODE_SEQ) {
		/* + on a list appends at its end, the only index that does not exist yet */
		if (!seg_index(last, &idx) || idx != parent->n) {
			fv__node_free(cfg, value);
			return fv_error(FV_ERR_CONFIG, "override '%s': the list '%s' has %zu items; '%.*s' "
			                "is not an index that can be added", arg, fv__node_name(parent),
			                parent->n, (int)last.len, last.s);
		}
		fv_status st = fv__node_append(cfg, parent, NULL, value);
		if (st != FV_OK)
			fv__node_free(cfg, value);
		return st;
	}
	char key[256];
	snprintf(key, sizeof key, "%.*s", (int)last.len, last.s);
	fv_status st = fv__node_append(cfg, parent, key, value);
	if (st != FV_OK)
		fv__node_free(cfg, value);
	return st;
}

fv_status fv_config_override(fv_config *cfg, const char *arg)
{
	if (cfg == NULL || cfg->root == NULL || arg == NULL)
		return fv_error(FV_ERR_ARG, "fv_config_override: no configuration or no override (NULL)");
	const char *p = arg;
	while (*p == ' ' || *p == '\t')
		p++;
	ov_kind kind = OV_SET;
	if (p[0] == '~')
		kind = OV_DELETE;
	else if (p[0] == '+' && p[1] == '+')
		kind = OV_FORCE;
	else if (p[0] == '+')
		kind = OV_ADD;
	p += kind == OV_FORCE ? 2 : kind == OV_SET ? 0 : 1;
	const char *eq = strchr(p, '=');
	if (eq == NULL && kind != OV_DELETE)
		return fv_error(FV_ERR_CONFIG, "override '%s': expected KEY=VALUE, +KEY=VALUE, "
		                "++KEY=VALUE or ~KEY", arg);
	size_t klen = eq ? (size_t)(eq - p) : strlen(p);
	while (klen > 0 && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
		klen--;
	char *key = fv__strndup(p, klen);
	if (key == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory applying override '%s'", arg);
	segment segs[MAX_SEGMENTS];
	int n = 0;
	fv_status st = FV_OK;
	if (strchr(key, '@') != NULL)
		st = fv_error(FV_ERR_CONFIG, "override '%s': KEY@PACKAGE selects a config group, which "
		              "only composition (fv_config_compose) can do", arg);
	if (st == FV_OK)
		st = split_path(arg, key, segs, &n);
	/* values remember where they came from: "override 'a.b=3'" */
	char *origin = st == FV_OK ? fv__malloc(strlen(arg) + 16) : NULL;
	if (origin != NULL)
		sprintf(origin, "override '%s'", arg);
	fv__fname *file = origin ? fv__fname_new(origin) : NULL;
	if (st == FV_OK && file == NULL)
		st = fv_error(FV_ERR_NOMEM, "out of memory applying override '%s'", arg);
	/* the value is read first, so that a bad one changes nothing */
	fv_config_node *parent = NULL, *value = NULL;
	if (st == FV_OK && kind != OV_DELETE && (value = fv__override_value(cfg, eq + 1, origin)) == NULL)
		st = fv_errcode();
	/* a value the program sets is the program's own reading (composition
	** forgets the reads of command-line overrides afterwards) */
	fv__node_mark_used(value);
	if (st == FV_OK)
		st = walk_to_parent(cfg, arg, kind, segs, n, file, &parent);
	if (st == FV_OK && kind == OV_DELETE)
		st = apply_delete(cfg, arg, parent, segs, n, eq ? eq + 1 : NULL);
	else if (st == FV_OK)
		st = apply_value(cfg, arg, p, kind, parent, segs, n, value);
	else
		fv__node_free(cfg, value);
	fv__fname_unref(file);
	free(origin);
	free(key);
	return st;
}
