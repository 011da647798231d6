/*
** config_yaml.c: YAML text to a configuration tree (libyaml's event parser)
** and back (libyaml's emitter).
**
** Loading follows what openretina's configurations rely on from PyYAML and
** OmegaConf: anchors and aliases (an alias is a copy of the anchored value),
** merge keys (<<: *base; the map's own keys win), duplicate keys rejected,
** one document per file.  Writing keeps quoted strings quoted, so "3", "yes"
** or "null" stay strings when the text is read back.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/config_internal.h"
#include "base/base_internal.h"

/* ---- loading -------------------------------------------------------------------------- */

typedef struct anchor {
	char *name;
	fv_config_node *value; /* a private snapshot, so that later edits of the tree
	                          (merges) never leave an alias pointing at freed nodes */
} anchor;

typedef struct loader {
	yaml_parser_t parser;
	fv_config *cfg;
	fv__fname *file;
	anchor *anchors;
	size_t n_anchors, cap_anchors;
} loader;

static int mark_line(const yaml_mark_t *m)
{
	return (int)m->line + 1;
}

/* A node takes its place from the event that starts it; libyaml counts
** from 0, editors from 1. */
static void place_at(fv_config_node *n, const yaml_mark_t *m)
{
	n->line = mark_line(m);
	n->col = (int)m->column + 1;
}

/* fv_error_at() for a place in the text that has no node (yet). */
static fv_status yaml_error(const loader *ld, const yaml_mark_t *m, fv_status code, const char *fmt,
                            ...) FV_PRINTF(4, 5);
static fv_status yaml_error(const loader *ld, const yaml_mark_t *m, fv_status code, const char *fmt,
                            ...)
{
	fv_config_node at = {.file = ld->file};
	place_at(&at, m);
	va_list ap;
	va_start(ap, fmt);
	fv__verror_at(&at, code, fmt, ap);
	va_end(ap);
	return code;
}

static fv_status syntax_error(loader *ld)
{
	const yaml_parser_t *p = &ld->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";
	if (p->context != NULL)
		return yaml_error(ld, &p->problem_mark, FV_ERR_CONFIG,
		                  "YAML syntax error: %s (%s at line %d)", problem, p->context,
		                  mark_line(&p->context_mark));
	return yaml_error(ld, &p->problem_mark, FV_ERR_CONFIG, "YAML syntax error: %s", problem);
}

static fv_status next_event(loader *ld, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&ld->parser, ev))
		return syntax_error(ld);
	return FV_OK;
}

static fv_status remember_anchor(loader *ld, const yaml_char_t *name, const fv_config_node *n)
{
	if (name == NULL)
		return FV_OK;
	fv_config_node *snap = fv__node_copy(ld->cfg, n);
	if (snap == NULL)
		return fv_errcode();
	for (size_t i = 0; i < ld->n_anchors; i++) {
		if (strcmp(ld->anchors[i].name, (const char *)name) == 0) {
			/* YAML lets a later anchor reuse a name */
			fv__node_free(ld->cfg, ld->anchors[i].value);
			ld->anchors[i].value = snap;
			return FV_OK;
		}
	}
	if (ld->n_anchors == ld->cap_anchors) {
		size_t cap = ld->cap_anchors ? 2 * ld->cap_anchors : 8;
		anchor *a = fv__realloc(ld->anchors, cap * sizeof *a);
		if (a == NULL)
			goto nomem;
		ld->anchors = a;
		ld->cap_anchors = cap;
	}
	char *copy = fv__strdup((const char *)name);
	if (copy == NULL)
		goto nomem;
	ld->anchors[ld->n_anchors++] = (anchor){copy, snap};
	return FV_OK;
nomem:
	fv__node_free(ld->cfg, snap);
	return fv_error(FV_ERR_NOMEM, "out of memory reading %s", ld->file->name);
}

static fv_status load_alias(loader *ld, const yaml_event_t *ev, int depth, fv_config_node **out)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const yaml_mark_t *at = &ev->start_mark;
	for (size_t i = ld->n_anchors; i-- > 0;) {
		if (strcmp(ld->anchors[i].name, name) != 0)
			continue;
		if (depth + fv__node_depth(ld->anchors[i].value) > FV_CONFIG_MAX_DEPTH)
			return yaml_error(ld, at, FV_ERR_CONFIG,
			                  "alias *%s nests values more than %d levels deep", name,
			                  FV_CONFIG_MAX_DEPTH);
		*out = fv__node_copy(ld->cfg, ld->anchors[i].value);
		if (*out == NULL)
			return yaml_error(ld, at, fv_errcode(), "alias *%s: %s", name, fv_errmsg());
		place_at(*out, at);
		return FV_OK;
	}
	return yaml_error(ld, at, FV_ERR_CONFIG, "unknown alias *%s (no anchor &%s before it)", name,
	                  name);
}

static bool is_str_tag(const yaml_char_t *tag)
{
	return tag != NULL && (strcmp((const char *)tag, "tag:yaml.org,2002:str") == 0 ||
	                       strcmp((const char *)tag, "!!str") == 0);
}

static fv_status load_scalar(loader *ld, const yaml_event_t *ev, fv_config_node **out)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	if (strlen(text) != len)
		return yaml_error(ld, &ev->start_mark, FV_ERR_CONFIG, "a string contains a NUL character");
	bool quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || is_str_tag(ev->data.scalar.tag);
	*out = fv__node_new_scalar(ld->cfg, text, len, quoted, ld->file,
	                           mark_line(&ev->start_mark));
	if (*out == NULL)
		return fv_errcode();
	place_at(*out, &ev->start_mark);
	fv_status st = remember_anchor(ld, ev->data.scalar.anchor, *out);
	if (st != FV_OK) {
		fv__node_free(ld->cfg, *out);
		*out = NULL;
	}
	return st;
}

static fv_status load_value(loader *ld, yaml_event_t *ev, int depth, fv_config_node **out);

static fv_status load_seq(loader *ld, const yaml_event_t *start, int depth, fv_config_node **out)
{
	fv_config_node *seq = fv__node_new(ld->cfg, FV_NODE_SEQ, ld->file, mark_line(&start->start_mark));
	if (seq == NULL)
		return fv_errcode();
	place_at(seq, &start->start_mark);
	fv_status st;
	for (;;) {
		yaml_event_t ev;
		if ((st = next_event(ld, &ev)) != FV_OK)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		fv_config_node *item = NULL;
		st = load_value(ld, &ev, depth + 1, &item);
		yaml_event_delete(&ev);
		if (st != FV_OK)
			goto fail;
		if ((st = fv__node_append(ld->cfg, seq, NULL, item)) != FV_OK) {
			fv__node_free(ld->cfg, item);
			goto fail;
		}
	}
	if ((st = remember_anchor(ld, start->data.sequence_start.anchor, seq)) != FV_OK)
		goto fail;
	*out = seq;
	return FV_OK;
fail:
	fv__node_free(ld->cfg, seq);
	return st;
}

/* Merge keys: the merged maps' entries come first (the first source wins
** among sources, as PyYAML does), then the map's own entries override or
** extend them. */
static fv_status apply_merges(loader *ld, fv_config_node *map, fv_config_node *sources)
{
	fv_config_node *merged = fv__node_new(ld->cfg, FV_NODE_MAP, map->file, map->line);
	if (merged == NULL)
		return fv_errcode();
	merged->col = map->col;
	fv_status st = FV_OK;
	for (size_t s = 0; s < sources->n && st == FV_OK; s++) {
		fv_config_node *src = sources->kids[s];
		for (size_t i = 0; i < src->n && st == FV_OK; i++) {
			if (fv__node_find(merged, src->kids[i]->key) >= 0)
				continue;
			fv_config_node *copy = fv__node_copy(ld->cfg, src->kids[i]);
			if (copy == NULL)
				st = fv_errcode();
			else if ((st = fv__node_append(ld->cfg, merged, src->kids[i]->key, copy)) != FV_OK)
				fv__node_free(ld->cfg, copy);
		}
	}
	/* the map's own entries move over (take_contents frees what is left) */
	for (size_t i = 0; i < map->n && st == FV_OK; i++) {
		fv_config_node *kid = map->kids[i];
		long at = fv__node_find(merged, kid->key);
		if (at >= 0) {
			map->kids[i] = NULL;
			fv__node_replace_at(ld->cfg, merged, (size_t)at, kid);
		} else if ((st = fv__node_append(ld->cfg, merged, kid->key, kid)) == FV_OK) {
			map->kids[i] = NULL;
		}
	}
	if (st == FV_OK) {
		fv__node_take_contents(ld->cfg, map, merged);
		return FV_OK;
	}
	fv__node_free(ld->cfg, merged);
	return st;
}

static fv_status add_merge_source(loader *ld, fv_config_node *sources, fv_config_node *value,
                                  const yaml_mark_t *at)
{
	fv_status st = FV_OK;
	if (value->type == FV_NODE_MAP) {
		if ((st = fv__node_append(ld->cfg, sources, NULL, value)) != FV_OK)
			fv__node_free(ld->cfg, value);
		return st;
	}
	if (value->type == FV_NODE_SEQ) {
		for (size_t i = 0; i < value->n; i++)
			if (value->kids[i]->type != FV_NODE_MAP) {
				fv__node_free(ld->cfg, value);
				return yaml_error(ld, at, FV_ERR_CONFIG, "a merge key (<<) takes maps; item %zu is "
				                  "not a map", i);
			}
		while (value->n > 0 && st == FV_OK) {
			fv_config_node *m = value->kids[0];
			memmove(value->kids, value->kids + 1, (value->n - 1) * sizeof *value->kids);
			value->n--;
			if ((st = fv__node_append(ld->cfg, sources, NULL, m)) != FV_OK)
				fv__node_free(ld->cfg, m);
		}
		fv__node_free(ld->cfg, value);
		return st;
	}
	fv__node_free(ld->cfg, value);
	return yaml_error(ld, at, FV_ERR_CONFIG, "a merge key (<<) takes a map or a list of maps");
}

static fv_status load_map_entry(loader *ld, fv_config_node *map, fv_config_node *sources,
                                yaml_event_t *key_ev, int depth)
{
	const yaml_mark_t *at = &key_ev->start_mark;
	if (key_ev->type != YAML_SCALAR_EVENT)
		return yaml_error(ld, at, FV_ERR_CONFIG, "keys must be plain strings, not %s",
		                  key_ev->type == YAML_ALIAS_EVENT ? "aliases" : "lists or maps");
	const char *key = (const char *)key_ev->data.scalar.value;
	if (strlen(key) != key_ev->data.scalar.length)
		return yaml_error(ld, at, FV_ERR_CONFIG, "a key contains a NUL character");
	bool merge = key_ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(key, "<<") == 0;
	long dup = merge ? -1 : fv__node_find(map, key);
	if (dup >= 0)
		return yaml_error(ld, at, FV_ERR_CONFIG, "duplicate key '%s' (first at line %d)", key,
		                  map->kids[dup]->line);
	yaml_event_t ev;
	fv_status st = next_event(ld, &ev);
	if (st != FV_OK)
		return st;
	fv_config_node *value = NULL;
	st = load_value(ld, &ev, depth + 1, &value);
	yaml_event_delete(&ev);
	if (st != FV_OK)
		return st;
	if (merge)
		return add_merge_source(ld, sources, value, at);
	place_at(value, at); /* a map value is found at its key */
	if ((st = fv__node_append(ld->cfg, map, key, value)) != FV_OK)
		fv__node_free(ld->cfg, value);
	return st;
}

static fv_status load_map(loader *ld, const yaml_event_t *start, int depth, fv_config_node **out)
{
	int line = mark_line(&start->start_mark);
	fv_config_node *map = fv__node_new(ld->cfg, FV_NODE_MAP, ld->file, line);
	fv_config_node *sources = fv__node_new(ld->cfg, FV_NODE_SEQ, ld->file, line);
	fv_status st = fv_errcode();
	if (map == NULL || sources == NULL)
		goto fail;
	place_at(map, &start->start_mark);
	for (;;) {
		yaml_event_t ev;
		if ((st = next_event(ld, &ev)) != FV_OK)
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		st = load_map_entry(ld, map, sources, &ev, depth);
		yaml_event_delete(&ev);
		if (st != FV_OK)
			goto fail;
	}
	if (sources->n > 0 && (st = apply_merges(ld, map, sources)) != FV_OK)
		goto fail;
	fv__node_free(ld->cfg, sources);
	sources = NULL;
	if ((st = remember_anchor(ld, start->data.mapping_start.anchor, map)) != FV_OK)
		goto fail;
	*out = map;
	return FV_OK;
fail:
	fv__node_free(ld->cfg, sources);
	fv__node_free(ld->cfg, map);
	return st;
}

static fv_status load_value(loader *ld, yaml_event_t *ev, int depth, fv_config_node **out)
{
	if (depth > FV_CONFIG_MAX_DEPTH)
		return yaml_error(ld, &ev->start_mark, FV_ERR_CONFIG,
		                  "values nested more than %d levels deep", FV_CONFIG_MAX_DEPTH);
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return load_scalar(ld, ev, out);
	case YAML_ALIAS_EVENT: return load_alias(ld, ev, depth, out);
	case YAML_SEQUENCE_START_EVENT: return load_seq(ld, ev, depth, out);
	case YAML_MAPPING_START_EVENT: return load_map(ld, ev, depth, out);
	default:
		return yaml_error(ld, &ev->start_mark, FV_ERR_CONFIG, "unexpected YAML event %d",
		                  (int)ev->type);
	}
}

/* STREAM-START (DOCUMENT-START value DOCUMENT-END)? STREAM-END */
static fv_status load_stream(loader *ld, bool allow_scalar_root)
{
	yaml_event_t ev;
	fv_status st;
	bool have_doc = false;
	for (;;) {
		if ((st = next_event(ld, &ev)) != FV_OK)
			return st;
		yaml_event_type_t type = ev.type;
		if (type == YAML_DOCUMENT_START_EVENT && have_doc) {
			st = yaml_error(ld, &ev.start_mark, FV_ERR_CONFIG, "a second YAML document; a "
			                "configuration file holds one");
			yaml_event_delete(&ev);
			return st;
		}
		if (type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT ||
		    type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
			have_doc = true;
			st = load_value(ld, &ev, 1, &ld->cfg->root);
		}
		yaml_event_delete(&ev);
		if (st != FV_OK)
			return st;
		if (type == YAML_STREAM_END_EVENT)
			break;
	}
	fv_config_node *root = ld->cfg->root;
	if (root == NULL || (root->type == FV_NODE_NULL && !allow_scalar_root)) {
		fv__node_free(ld->cfg, root);
		ld->cfg->root = fv__node_new(ld->cfg, allow_scalar_root ? FV_NODE_NULL : FV_NODE_MAP,
		                             ld->file, 1);
		return ld->cfg->root ? FV_OK : fv_errcode();
	}
	if (!allow_scalar_root && root->type == FV_NODE_SCALAR)
		return fv_error_at(root, FV_ERR_CONFIG, "the top level of a configuration must be a map, "
		                   "got the value '%.40s'", root->text);
	return FV_OK;
}

fv_config *fv__config_parse(const char *text, size_t len, const char *name, bool allow_scalar_root)
{
	loader ld = {.cfg = fv__config_new(), .file = fv__fname_new(name ? name : "<string>")};
	fv_status st = FV_ERR_NOMEM;
	if (ld.cfg == NULL || ld.file == NULL) {
		fv_error(FV_ERR_NOMEM, "out of memory reading %s", name ? name : "<string>");
		goto done;
	}
	if (!yaml_parser_initialize(&ld.parser)) {
		fv_error(FV_ERR_NOMEM, "out of memory starting the YAML parser");
		goto done;
	}
	yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
	st = load_stream(&ld, allow_scalar_root);
	yaml_parser_delete(&ld.parser);
done:
	for (size_t i = 0; i < ld.n_anchors; i++) {
		free(ld.anchors[i].name);
		fv__node_free(ld.cfg, ld.anchors[i].value);
	}
	free(ld.anchors);
	fv__fname_unref(ld.file);
	if (st != FV_OK) {
		fv_config_free(ld.cfg);
		return NULL;
	}
	return ld.cfg;
}

fv_config *fv_config_load_string(const char *text, size_t len, const char *name)
{
	if (text == NULL)
		return fv_error(FV_ERR_ARG, "fv_config_load_string: no text (NULL)"), NULL;
	return fv__config_parse(text, len, name, false);
}

fv_config *fv_config_load_derived(const char *text, size_t len, const fv_config_node *from)
{
	fv_config *cfg = fv_config_load_string(text, len, "<derived>");
	if (cfg == NULL)
		return cfg;
	if (from == NULL) {
		/* text a program wrote: its lines are nobody's to look up */
		fv__node_take_places(cfg->root, NULL, &(fv_config_node){.line = 0});
		return cfg;
	}
	const char *keypath = fv_node_keypath(from);
	if (keypath != NULL && keypath[0] != '\0' &&
	    (cfg->root->key = fv__strdup(keypath)) == NULL) {
		fv_config_free(cfg);
		return fv_error(FV_ERR_NOMEM, "out of memory deriving a spec from %s", keypath), NULL;
	}
	fv__node_take_places(cfg->root, from, from);
	return cfg;
}

char *fv__read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return fv_error(FV_ERR_IO, "%s: cannot open: %s", path, strerror(errno)), NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 1 >= cap) {
			cap = cap ? 2 * cap : 8192;
			char *b = fv__realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return fv_error(FV_ERR_NOMEM, "%s: out of memory reading the file", path), NULL;
			}
			buf = b;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return fv_error(FV_ERR_IO, "%s: read error", path), NULL;
	}
	buf[len] = '\0';
	*len_out = len;
	return buf;
}

fv_config *fv_config_load_file(const char *path)
{
	if (path == NULL)
		return fv_error(FV_ERR_ARG, "fv_config_load_file: no path (NULL)"), NULL;
	size_t len;
	char *buf = fv__read_file(path, &len);
	if (buf == NULL)
		return NULL;
	fv_config *cfg = fv__config_parse(buf, len, path, false);
	free(buf);
	return cfg;
}

/* ---- writing --------------------------------------------------------------------------- */

typedef struct out_buf {
	char *data;
	size_t len, cap;
	bool failed;
} out_buf;

static int write_out(void *ud, unsigned char *bytes, size_t size)
{
	out_buf *ob = ud;
	if (ob->len + size + 1 > ob->cap) {
		size_t cap = ob->cap ? ob->cap : 1024;
		while (cap < ob->len + size + 1)
			cap *= 2;
		char *d = fv__realloc(ob->data, cap);
		if (d == NULL) {
			ob->failed = true;
			return 0;
		}
		ob->data = d;
		ob->cap = cap;
	}
	memcpy(ob->data + ob->len, bytes, size);
	ob->len += size;
	ob->data[ob->len] = '\0';
	return 1;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, bool quoted)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
	if (quoted)
		style = strpbrk(text, "\n\r\t\\") ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
	                                  !quoted, 1, style))
		return 0;
	return yaml_emitter_emit(em, &ev);
}

/* Short lists of simple values read best inline: [16, 16]. */
static bool flow_friendly(const fv_config_node *seq)
{
	for (size_t i = 0; i < seq->n; i++) {
		const fv_config_node *k = seq->kids[i];
		if (k->type == FV_NODE_NULL)
			continue;
		if (k->type != FV_NODE_SCALAR || k->text[0] == '\0')
			return false;
		for (const char *c = k->text; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			      strchr("_.+-/", *c)))
				return false;
	}
	return true;
}

static int emit_node(yaml_emitter_t *em, const fv_config_node *n)
{
	yaml_event_t ev;
	switch (n->type) {
	case FV_NODE_NULL: return emit_scalar(em, "null", false);
	case FV_NODE_SCALAR: return emit_scalar(em, n->text, n->quoted);
	case FV_NODE_SEQ:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          flow_friendly(n) ? YAML_FLOW_SEQUENCE_STYLE
		                                                           : YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return 0;
		for (size_t i = 0; i < n->n; i++)
			if (!emit_node(em, n->kids[i]))
				return 0;
		return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
	case FV_NODE_MAP:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return 0;
		for (size_t i = 0; i < n->n; i++) {
			/* a plain << would read back as a merge key */
			const char *key = n->kids[i]->key;
			if (!emit_scalar(em, key, strcmp(key, "<<") == 0) || !emit_node(em, n->kids[i]))
				return 0;
		}
		return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
	}
	return 0;
}

static int emit_document(yaml_emitter_t *em, const fv_config_node *root)
{
	yaml_event_t ev;
	return yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(em, &ev) &&
	       yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(em, &ev) &&
	       emit_node(em, root) && yaml_document_end_event_initialize(&ev, 1) &&
	       yaml_emitter_emit(em, &ev) && yaml_stream_end_event_initialize(&ev) &&
	       yaml_emitter_emit(em, &ev) && yaml_emitter_flush(em);
}

/* `root` (and below) as one YAML document; NULL with fv_errmsg on failure. */
static char *node_to_yaml(const fv_config_node *root)
{
	yaml_emitter_t em;
	out_buf ob = {0};
	if (!yaml_emitter_initialize(&em))
		return fv_error(FV_ERR_NOMEM, "out of memory starting the YAML writer"), NULL;
	yaml_emitter_set_output(&em, write_out, &ob);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	int ok = emit_document(&em, root);
	if (!ok || ob.failed) {
		fv_error(ob.failed ? FV_ERR_NOMEM : FV_ERR_CONFIG, "cannot write the configuration as YAML: %s",
		         ob.failed ? "out of memory" : em.problem ? em.problem : "emitter error");
		free(ob.data);
		ob.data = NULL;
	}
	yaml_emitter_delete(&em);
	return ob.data;
}

char *fv_config_to_yaml(const fv_config *cfg)
{
	if (cfg == NULL)
		return fv_error(FV_ERR_ARG, "fv_config_to_yaml: no configuration (NULL)"), NULL;
	fv_config_node empty = {.type = FV_NODE_MAP};
	return node_to_yaml(cfg->root ? cfg->root : &empty);
}

char *fv_node_to_yaml(const fv_config_node *n)
{
	if (n == NULL)
		return fv_error(FV_ERR_ARG, "fv_node_to_yaml: no node (NULL)"), NULL;
	return node_to_yaml(n);
}
