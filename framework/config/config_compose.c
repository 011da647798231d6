/*
** config_compose.c: Hydra's defaults lists (Hydra 1.1+ semantics).
**
** A configuration file may start with a `defaults:` list naming other files
** of its config directory:
**
**   - group: option       DIR/group/option.yaml, placed under key `group`
**   - group@pkg: option   ... placed under `pkg` (`_global_`: at the top)
**   - group: [a, b]       several options of one group, merged in order
**   - group: null         nothing (a place-holder for an override)
**   - optional group: x   no error when the file does not exist
**   - override group: x   change the option an earlier list chose
**   - path/name           DIR/path/name.yaml unconditionally (under `path`)
**   - _self_              where the file's own keys are merged
**
** The list is expanded depth first (a group file may have its own list,
** relative to its group) into an ordered list of files, which are merged:
** later files win, maps merge key by key, lists are replaced.  Without
** _self_ a file's own keys come last, i.e. they override its defaults
** (Hydra 1.1).  A `# @package pkg` comment heading a file moves it like
** @pkg does.  Command-line overrides that name a config group
** (`model=other`, `+group=opt`, `~group`) change the list; all others are
** applied to the composed tree, in order.  Finally interpolations are
** resolved leniently, the way OmegaConf is lazy: ??? values (which the
** program fills in, as openretina does for n_neurons_dict), interpolations
** that need them, and broken ones (an unset environment variable in a
** section the program never reads) stay as written; reading such a value
** reports why, and fv_config_resolve() reports the first one.
**
** fovea has no Hydra runtime: `override hydra/...` entries and command-line
** overrides of hydra/ groups that match nothing are ignored.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

#define MAX_NESTING 32

/* A group choice made by the command line or by an `override` entry. */
typedef struct choice {
	char *key;             /* "group" or "group@pkg" */
	fv_config_node *value; /* option name, list of names, or null */
	const fv_config_node *at; /* its place, for messages */
	bool external, used;
} choice;

typedef struct deletion {
	char *key;
	char *name; /* NULL: whatever option */
	bool used;
} deletion;

/* One entry of a defaults list. */
typedef enum { D_SELF, D_CONFIG, D_GROUP } dkind;

typedef struct dentry {
	dkind kind;
	bool optional, override;
	char *path;                  /* D_CONFIG: path/name; D_GROUP: group as written */
	char *package;               /* explicit @pkg, or NULL */
	const fv_config_node *value; /* D_GROUP: the option(s), owned elsewhere */
	const fv_config_node *at;    /* its place, for messages: an entry of a
	                                list or a command-line value, which live
	                                as long as the composer (keep_value) */
} dentry;

/* A file in composition order, with the package it lands in. */
typedef struct item {
	fv_config *cfg;
	char *package;
} item;

typedef struct composer {
	const char *dir;
	choice *choices;
	size_t n_choices;
	deletion *deletions;
	size_t n_deletions;
	dentry *appends; /* +group=option from the command line */
	size_t n_appends;
	fv_config_node **cli_values; /* owners of command-line option values */
	size_t n_cli_values;
	char **known;     /* group keys already in the list */
	const fv_config_node **known_at;
	size_t n_known;
	fv_config **loaded; /* every file read, freed at the end */
	size_t n_loaded;
	item *items;
	size_t n_items;
	const char *stack[MAX_NESTING]; /* files being expanded, for cycles */
	int depth;
} composer;

/* ---- small helpers ---------------------------------------------------------------------- */

static char *fmt(const char *f, ...) FV_PRINTF(1, 2);

static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int len = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	char *s = len >= 0 ? fv__malloc((size_t)len + 1) : NULL;
	if (s != NULL) {
		va_start(ap, f);
		vsnprintf(s, (size_t)len + 1, f, ap);
		va_end(ap);
	}
	return s;
}

static fv_status nomem(void)
{
	return fv_error(FV_ERR_NOMEM, "out of memory composing a configuration");
}

/* Room for element n of *arrayp, whose capacity is the power of two above n. */
static bool grow(void *arrayp, size_t n, size_t elem)
{
	void **array = arrayp;
	if (n != 0 && (n & (n - 1)) != 0)
		return true;
	size_t cap = n ? 2 * n : 1;
	void *a = fv__realloc(*array, cap * elem);
	if (a == NULL)
		return false;
	*array = a;
	return true;
}

/* DIR/group/option.yaml (or .yml) in *out; NULL when neither exists.  Out
** of memory is an error of its own, not a missing file. */
static fv_status option_file(const composer *c, const char *path, char **out)
{
	static const char *const ext[] = {"yaml", "yml"};
	*out = NULL;
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		char *f = fmt("%s/%s.%s", c->dir, path, ext[i]);
		if (f == NULL)
			return nomem();
		if (fv__is_file(f)) {
			*out = f;
			return FV_OK;
		}
		free(f);
	}
	return FV_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "; available options in 'group': a, b, c (did you mean 'b'?)" */
static char *describe_options(const composer *c, const char *group, const char *wanted)
{
	char *dirpath = fmt("%s/%s", c->dir, group);
	DIR *d = dirpath ? opendir(dirpath) : NULL;
	free(dirpath);
	if (d == NULL)
		return fmt("; there is no config group '%s' in %s", group, c->dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		size_t ext = len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0 ? 5
		             : len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0 ? 4 : 0;
		if (ext == 0 || !grow(&names, n, sizeof *names))
			continue;
		if ((names[n] = fv__strndup(e->d_name, len - ext)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, cmp_str);
	size_t total = strlen(group) + 64;
	for (size_t i = 0; i < n; i++)
		total += strlen(names[i]) + 2;
	const char *best = wanted ? fv_closest_name(wanted, (const char *const *)names, n) : NULL;
	if (best != NULL)
		total += strlen(best) + 32;
	char *list = fv__malloc(total);
	if (list != NULL) {
		size_t at = (size_t)snprintf(list, total, "; available options in '%s': %s", group,
		                             n ? "" : "(none)");
		for (size_t i = 0; i < n && at < total; i++)
			at += (size_t)snprintf(list + at, total - at, "%s%s", i ? ", " : "", names[i]);
		if (best != NULL && at < total)
			snprintf(list + at, total - at, " (did you mean '%s'?)", best);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return list;
}

/* ---- packages ----------------------------------------------------------------------------- */

/* Hydra: a package is relative to the containing config's package, and
** `_global_` anywhere in it means "from the top". */
static char *final_package(const char *parent, const char *pkg)
{
	char *p;
	if (strcmp(pkg, "_here_") == 0)
		pkg = "";
	if (parent[0] == '\0')
		p = fv__strdup(pkg);
	else if (pkg[0] == '\0')
		p = fv__strdup(parent);
	else
		p = fmt("%s.%s", parent, pkg);
	if (p == NULL)
		return NULL;
	char *g = NULL;
	for (char *s = strstr(p, "_global_"); s != NULL; s = strstr(s + 1, "_global_"))
		g = s;
	if (g != NULL) {
		g += strlen("_global_");
		if (*g == '.')
			g++;
		memmove(p, g, strlen(g) + 1);
	}
	return p;
}

/* The group path as written, relative to the containing config's group. */
static char *full_group(const char *parent_group, const char *group)
{
	if (group[0] == '/')
		return fv__strdup(group + 1);
	if (parent_group[0] == '\0')
		return fv__strdup(group);
	return fmt("%s/%s", parent_group, group);
}

/* "# @package pkg" among the comment lines that open a file, in *pkg (NULL
** when there is none). */
static fv_status package_header(const char *text, char **pkg)
{
	const char *p = text;
	*pkg = NULL;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '#')
			return FV_OK;
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *at = memchr(p, '@', len);
		if (at != NULL && len - (size_t)(at - p) > 8 && strncmp(at, "@package", 8) == 0) {
			const char *v = at + 8;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vlen = 0;
			while (v + vlen < p + len && v[vlen] != ' ' && v[vlen] != '\t' && v[vlen] != '\r')
				vlen++;
			*pkg = fv__strndup(v, vlen);
			return *pkg != NULL ? FV_OK : nomem();
		}
		p += len;
	}
	return FV_OK;
}

/* ---- reading defaults lists ------------------------------------------------------------ */

static void dentry_free(dentry *d)
{
	free(d->path);
	free(d->package);
}

static fv_status entry_error(const fv_config_node *n, const char *msg)
{
	return fv_error_at(n, FV_ERR_CONFIG, "defaults: %s", msg);
}

/* "[optional|override ]*group[@pkg]" */
static fv_status parse_group_key(const fv_config_node *at, const char *key, dentry *d)
{
	const char *p = key;
	for (;;) {
		while (*p == ' ')
			p++;
		if (strncmp(p, "optional ", 9) == 0) {
			d->optional = true;
			p += 9;
		} else if (strncmp(p, "override ", 9) == 0) {
			d->override = true;
			p += 9;
		} else {
			break;
		}
	}
	size_t len = strcspn(p, " ");
	if (len == 0 || p[len + strspn(p + len, " ")] != '\0')
		return entry_error(at, "expected '[optional|override] GROUP[@PACKAGE]: OPTION'");
	const char *atsign = memchr(p, '@', len);
	size_t glen = atsign ? (size_t)(atsign - p) : len;
	if (glen == 0)
		return entry_error(at, "an entry has no group name before '@'");
	d->path = fv__strndup(p, glen);
	if (atsign != NULL)
		d->package = fv__strndup(atsign + 1, len - glen - 1);
	if (d->path == NULL || (atsign != NULL && d->package == NULL))
		return nomem();
	return FV_OK;
}

static fv_status check_option_value(const fv_config_node *v)
{
	if (v->type == FV_NODE_MAP)
		return entry_error(v, "the option of a group is a name, a list of names or null, not a map");
	const fv_config_node *items[1] = {v};
	size_t n = v->type == FV_NODE_SEQ ? v->n : 1;
	for (size_t i = 0; i < n; i++) {
		const fv_config_node *x = v->type == FV_NODE_SEQ ? v->kids[i] : items[0];
		if (v->type == FV_NODE_SEQ && x->type != FV_NODE_SCALAR)
			return entry_error(x, "a list of options holds names only");
		if (x->type == FV_NODE_SCALAR && strstr(x->text, "${") != NULL)
			return entry_error(x, "interpolation in a defaults list is not supported by fovea");
	}
	return FV_OK;
}

static fv_status parse_entry(const fv_config_node *n, dentry *d)
{
	memset(d, 0, sizeof *d);
	d->at = n;
	if (n->type == FV_NODE_SCALAR) {
		if (strcmp(n->text, "_self_") == 0) {
			d->kind = D_SELF;
			return FV_OK;
		}
		if (n->text[0] == '~' || strchr(n->text, ' ') != NULL)
			return entry_error(n, "expected a config name, 'GROUP: OPTION' or _self_ "
			                      "(deleting entries in a defaults list is not supported)");
		if (strstr(n->text, "${") != NULL)
			return entry_error(n, "interpolation in a defaults list is not supported by fovea");
		d->kind = D_CONFIG;
		const char *at = strchr(n->text, '@');
		d->path = at ? fv__strndup(n->text, (size_t)(at - n->text)) : fv__strdup(n->text);
		if (at != NULL)
			d->package = fv__strdup(at + 1);
		if (d->path == NULL || (at != NULL && d->package == NULL))
			return nomem();
		if (d->path[0] == '\0')
			return entry_error(n, "an entry has no config name before '@'");
		return FV_OK;
	}
	if (n->type != FV_NODE_MAP || n->n != 1)
		return entry_error(n, "an entry is either a name or a map with one key "
		                      "('GROUP: OPTION')");
	d->kind = D_GROUP;
	d->value = n->kids[0];
	fv_status st = parse_group_key(n->kids[0], n->kids[0]->key, d);
	if (st == FV_OK)
		st = check_option_value(d->value);
	return st;
}

/* The `defaults` list of a loaded file, removed from its tree. */
static fv_status take_defaults(fv_config *cfg, fv_config_node **out)
{
	*out = NULL;
	long at = fv__node_find(cfg->root, "defaults");
	if (at < 0)
		return FV_OK;
	fv_config_node *list = cfg->root->kids[at];
	if (list->type != FV_NODE_SEQ && list->type != FV_NODE_NULL)
		return fv_error_at(list, FV_ERR_CONFIG, "defaults: expected a list");
	if (list->type == FV_NODE_NULL)
		list = NULL;
	else if ((list = fv__node_copy(NULL, list)) == NULL)
		return fv_errcode();
	fv__node_remove_at(cfg, cfg->root, (size_t)at);
	*out = list;
	return FV_OK;
}

static fv_status keep_value(composer *c, fv_config_node *v)
{
	if (!grow(&c->cli_values, c->n_cli_values, sizeof *c->cli_values)) {
		fv__node_free(NULL, v);
		return nomem();
	}
	c->cli_values[c->n_cli_values++] = v;
	return FV_OK;
}

/* ---- choices, deletions, known groups ------------------------------------------------------ */

static choice *find_choice(composer *c, const char *key)
{
	for (size_t i = 0; i < c->n_choices; i++)
		if (strcmp(c->choices[i].key, key) == 0)
			return &c->choices[i];
	return NULL;
}

static fv_status add_choice(composer *c, const char *key, fv_config_node *value,
                            const fv_config_node *at, bool external)
{
	if (find_choice(c, key) != NULL)
		return FV_OK; /* the first registered wins: command line, then outer files */
	if (!grow(&c->choices, c->n_choices, sizeof *c->choices))
		return nomem();
	choice *ch = &c->choices[c->n_choices];
	*ch = (choice){.key = fv__strdup(key), .value = value, .at = at, .external = external};
	if (ch->key == NULL)
		return nomem();
	c->n_choices++;
	return FV_OK;
}

static fv_status note_known(composer *c, const char *key, const fv_config_node *at)
{
	char first[512];
	for (size_t i = 0; i < c->n_known; i++)
		if (strcmp(c->known[i], key) == 0)
			return fv_error_at(at, FV_ERR_CONFIG, "defaults: the group '%s' appears more than "
			                   "once in the defaults list (also at %s); to change its option "
			                   "write 'override %s: OPTION'", key,
			                   fv__node_where(c->known_at[i], first, sizeof first), key);
	if (!grow(&c->known, c->n_known, sizeof *c->known) ||
	    !grow(&c->known_at, c->n_known, sizeof *c->known_at))
		return nomem();
	c->known_at[c->n_known] = at;
	if ((c->known[c->n_known] = fv__strdup(key)) == NULL)
		return nomem();
	c->n_known++;
	return FV_OK;
}

/* A deletion (~group[=option]) that applies to this choice. */
static bool deleted(composer *c, const char *key, const fv_config_node *value)
{
	for (size_t i = 0; i < c->n_deletions; i++) {
		deletion *d = &c->deletions[i];
		if (strcmp(d->key, key) != 0)
			continue;
		if (d->name == NULL || (value->type == FV_NODE_SCALAR && strcmp(d->name, value->text) == 0)) {
			d->used = true;
			return true;
		}
	}
	return false;
}

/* ---- expansion ------------------------------------------------------------------------------ */

typedef struct context {
	const char *group;   /* group path of the containing config ("" at the top) */
	const char *package; /* its final package */
} context;

static fv_status expand_file(composer *c, const char *path, const char *explicit_pkg,
                             const char *default_pkg, const context *parent, bool optional,
                             bool primary_file, const fv_config_node *at,
                             const char *group_for_msg);

static fv_status add_item(composer *c, fv_config *cfg, const char *package)
{
	if (!grow(&c->items, c->n_items, sizeof *c->items))
		return nomem();
	c->items[c->n_items].cfg = cfg;
	if ((c->items[c->n_items].package = fv__strdup(package)) == NULL)
		return nomem();
	c->n_items++;
	return FV_OK;
}

static fv_status expand_group(composer *c, const dentry *d, const context *ctx)
{
	char *group = full_group(ctx->group, d->path);
	char *key = group && d->package ? fmt("%s@%s", group, d->package) : group ? fv__strdup(group) : NULL;
	/* by default a group lands under its own (relative) path: a/b -> a.b */
	char *rel_pkg = fv__strdup(d->path[0] == '/' ? d->path + 1 : d->path);
	fv_status st = FV_OK;
	if (group == NULL || key == NULL || rel_pkg == NULL) {
		st = nomem();
		goto done;
	}
	for (char *s = rel_pkg; *s; s++)
		if (*s == '/')
			*s = '.';
	const fv_config_node *value = d->value;
	const fv_config_node *at = d->at;
	choice *ch = find_choice(c, key);
	if (ch != NULL) {
		value = ch->value;
		ch->used = true;
		at = ch->at;
	}
	if (deleted(c, key, value))
		goto done;
	if ((st = note_known(c, key, d->at)) != FV_OK)
		goto done;
	if (value->type == FV_NODE_NULL)
		goto done;
	/* Hydra's own groups (hydra/launcher, ...) are not fovea's business */
	if (strncmp(group, "hydra/", 6) == 0) {
		char *dirpath = fmt("%s/%s", c->dir, group);
		bool present = dirpath && fv__is_dir(dirpath);
		free(dirpath);
		if (!present)
			goto done;
	}
	if (value->type == FV_NODE_SCALAR && strcmp(value->text, "\?\?\?") == 0) {
		char *opts = describe_options(c, group, NULL);
		st = fv_error_at(at, FV_ERR_CONFIG, "defaults: you must choose an option for '%s', e.g. "
		                 "%s=OPTION on the command line%s", key, key, opts ? opts : "");
		free(opts);
		goto done;
	}
	size_t n = value->type == FV_NODE_SEQ ? value->n : 1;
	for (size_t i = 0; i < n && st == FV_OK; i++) {
		const char *name = value->type == FV_NODE_SEQ ? value->kids[i]->text : value->text;
		char *path = fmt("%s/%s", group, name);
		if (path == NULL) {
			st = nomem();
			break;
		}
		st = expand_file(c, path, d->package, rel_pkg, ctx, d->optional, false, at, group);
		free(path);
	}
done:
	free(group);
	free(key);
	free(rel_pkg);
	return st;
}

static fv_status expand_config(composer *c, const dentry *d, const context *ctx)
{
	char *path = full_group(ctx->group, d->path);
	if (path == NULL)
		return nomem();
	/* the package of "a/b/name" is "a.b" */
	const char *rel = d->path[0] == '/' ? d->path + 1 : d->path;
	const char *slash = strrchr(rel, '/');
	char *pkg = slash ? fv__strndup(rel, (size_t)(slash - rel)) : fv__strdup("");
	fv_status st = pkg ? FV_OK : nomem();
	if (st == FV_OK) {
		for (char *s = pkg; *s; s++)
			if (*s == '/')
				*s = '.';
		st = expand_file(c, path, d->package, pkg, ctx, d->optional, false, d->at, NULL);
	}
	free(pkg);
	free(path);
	return st;
}

/* Hydra: without _self_, a file's own keys come after its defaults. */
static fv_status read_list(composer *c, const fv_config_node *list, bool primary_file,
                           dentry **out, size_t *n_out)
{
	size_t n = list ? list->n : 0;
	dentry *ds = fv__calloc(n + c->n_appends + 1, sizeof *ds);
	if (ds == NULL)
		return nomem();
	fv_status st = FV_OK;
	bool has_self = false;
	size_t k = 0;
	for (size_t i = 0; i < n && st == FV_OK; i++, k++) {
		st = parse_entry(list->kids[i], &ds[k]);
		if (st != FV_OK) {
			dentry_free(&ds[k]);
			break;
		}
		if (ds[k].kind == D_SELF && has_self)
			st = entry_error(list->kids[i], "_self_ appears twice");
		has_self |= ds[k].kind == D_SELF;
	}
	if (st == FV_OK && !has_self)
		ds[k++].kind = D_SELF;
	/* +group=option from the command line go last in the primary list */
	for (size_t i = 0; primary_file && i < c->n_appends && st == FV_OK; i++, k++) {
		ds[k] = c->appends[i];
		ds[k].path = fv__strdup(c->appends[i].path);
		ds[k].package = c->appends[i].package ? fv__strdup(c->appends[i].package) : NULL;
		if (ds[k].path == NULL)
			st = nomem();
	}
	*out = ds;
	*n_out = k;
	return st;
}

static fv_status register_overrides(composer *c, const dentry *ds, size_t n, const context *ctx)
{
	for (size_t i = 0; i < n; i++) {
		if (!ds[i].override)
			continue;
		char *group = full_group(ctx->group, ds[i].path);
		char *key = group && ds[i].package ? fmt("%s@%s", group, ds[i].package)
		            : group ? fv__strdup(group) : NULL;
		fv_status st = key ? add_choice(c, key, (fv_config_node *)ds[i].value, ds[i].at, false)
		                   : nomem();
		free(group);
		free(key);
		if (st != FV_OK)
			return st;
	}
	return FV_OK;
}

/* Expand one list.  Entries are visited last to first, as Hydra does, so
** that an `override` in a later entry's subtree applies to earlier ones;
** the blocks of files they produce are then put back in list order. */
static fv_status expand_list(composer *c, fv_config *self, dentry *ds, size_t n, const context *ctx)
{
	size_t *start = fv__calloc(2 * n + 1, sizeof *start), *end = start + n;
	fv_status st = start ? FV_OK : nomem();
	size_t base = c->n_items;
	for (size_t j = n; j-- > 0 && st == FV_OK;) {
		start[j] = c->n_items;
		if (ds[j].kind == D_SELF)
			st = add_item(c, self, ctx->package);
		else if (ds[j].kind == D_GROUP && !ds[j].override)
			st = expand_group(c, &ds[j], ctx);
		else if (ds[j].kind == D_CONFIG)
			st = expand_config(c, &ds[j], ctx);
		end[j] = c->n_items;
	}
	size_t total = c->n_items - base;
	item *saved = st == FV_OK && total > 0 ? fv__malloc(total * sizeof *saved) : NULL;
	if (st == FV_OK && total > 0 && saved == NULL)
		st = nomem();
	if (saved != NULL) {
		memcpy(saved, c->items + base, total * sizeof *saved);
		size_t at = base;
		for (size_t j = 0; j < n; j++) {
			memcpy(c->items + at, saved + (start[j] - base), (end[j] - start[j]) * sizeof *saved);
			at += end[j] - start[j];
		}
	}
	free(saved);
	free(start);
	return st;
}

/* Read a file of the composition; it stays in c->loaded until the end. */
static fv_status load_for_compose(composer *c, const char *file, fv_config **cfg, char **header)
{
	size_t len;
	char *text = fv__read_file(file, &len);
	if (text == NULL)
		return fv_errcode();
	*cfg = fv__config_parse(text, len, file, false);
	fv_status st = *cfg ? package_header(text, header) : fv_errcode();
	free(text);
	if (st != FV_OK) {
		fv_config_free(*cfg);
		*cfg = NULL;
		return st;
	}
	if (!grow(&c->loaded, c->n_loaded, sizeof *c->loaded)) {
		fv_config_free(*cfg);
		free(*header);
		return nomem();
	}
	c->loaded[c->n_loaded++] = *cfg;
	if ((*cfg)->root->type != FV_NODE_MAP)
		return fv_error_at((*cfg)->root, FV_ERR_CONFIG, "a configuration composed from a defaults "
		                   "list must be a map");
	return FV_OK;
}

/* The file itself, or its defaults list expanded around it. */
static fv_status expand_loaded(composer *c, fv_config *cfg, const char *file, const char *path,
                               const char *final, bool primary_file)
{
	fv_config_node *list = NULL;
	fv_status st = take_defaults(cfg, &list);
	if (st != FV_OK)
		return st;
	if (list == NULL && !(primary_file && c->n_appends > 0))
		return add_item(c, cfg, final);
	/* choices registered from this list point into it: it lives as long as c */
	if ((st = keep_value(c, list)) != FV_OK)
		return st;
	/* a nested list is relative to the file's group: "a/b" for a/b/name */
	const char *slash = strrchr(path, '/');
	char *group = primary_file ? fv__strdup("") : slash ? fv__strndup(path, (size_t)(slash - path)) : fv__strdup("");
	if (group == NULL)
		return nomem();
	dentry *ds = NULL;
	size_t n = 0;
	context ctx = {group, final};
	st = read_list(c, list, primary_file, &ds, &n);
	if (st == FV_OK)
		st = register_overrides(c, ds, n, &ctx);
	if (st == FV_OK) {
		c->stack[c->depth++] = file;
		st = expand_list(c, cfg, ds, n, &ctx);
		c->depth--;
	}
	for (size_t i = 0; ds != NULL && i < n; i++)
		dentry_free(&ds[i]);
	free(ds);
	free(group);
	return st;
}

static fv_status expand_file(composer *c, const char *path, const char *explicit_pkg,
                             const char *default_pkg, const context *parent, bool optional,
                             bool primary_file, const fv_config_node *at,
                             const char *group_for_msg)
{
	char *file = NULL;
	fv_status found = primary_file ? ((file = fv__strdup(path)) != NULL ? FV_OK : nomem())
	                               : option_file(c, path, &file);
	if (found != FV_OK)
		return found;
	if (file == NULL) {
		if (optional)
			return FV_OK;
		const char *slash = strrchr(path, '/');
		char *opts = group_for_msg ? describe_options(c, group_for_msg, slash ? slash + 1 : path) : NULL;
		fv_status st = fv_error_at(at, FV_ERR_CONFIG, "defaults: cannot find '%s.yaml' in %s%s",
		                           path, c->dir, opts ? opts : "");
		free(opts);
		return st;
	}
	for (int i = 0; i < c->depth; i++)
		if (strcmp(c->stack[i], file) == 0) {
			fv_status st = fv_error_at(at, FV_ERR_CONFIG, "defaults: '%s' includes itself", file);
			free(file);
			return st;
		}
	if (c->depth == MAX_NESTING) {
		free(file);
		return fv_error_at(at, FV_ERR_CONFIG, "defaults lists nest more than %d levels",
		                   MAX_NESTING);
	}
	fv_config *cfg = NULL;
	char *header = NULL, *final = NULL;
	fv_status st = load_for_compose(c, file, &cfg, &header);
	if (st == FV_OK) {
		const char *pkg = explicit_pkg ? explicit_pkg : header ? header : default_pkg;
		final = final_package(parent->package, pkg);
		st = final ? expand_loaded(c, cfg, file, path, final, primary_file) : nomem();
	}
	free(final);
	free(header);
	free(file);
	return st;
}

/* ---- the command line ------------------------------------------------------------------------ */

/* Is `arg` about a config group (a directory of the config dir)?  Then it
** changes the defaults list; otherwise it is applied after composition. */
static fv_status classify(composer *c, const char *arg, bool *is_group)
{
	const char *p = arg;
	int plus = 0;
	bool del = *p == '~';
	if (del)
		p++;
	while (*p == '+' && plus < 2)
		p++, plus++;
	const char *eq = strchr(p, '=');
	size_t klen = eq ? (size_t)(eq - p) : strlen(p);
	char *key = fv__strndup(p, klen);
	if (key == NULL)
		return nomem();
	char *at = strchr(key, '@');
	char *group = at ? fv__strndup(key, (size_t)(at - key)) : fv__strdup(key);
	char *dirpath = group ? fmt("%s/%s", c->dir, group) : NULL;
	fv_status st = FV_OK;
	*is_group = false;
	if (group == NULL || dirpath == NULL) {
		st = nomem();
		goto done;
	}
	bool value_is_map = eq && eq[1] == '{';
	if (!fv__is_dir(dirpath) || value_is_map || group[0] == '\0') {
		if (strchr(group, '/') != NULL && strncmp(group, "hydra/", 6) != 0)
			st = fv_error(FV_ERR_CONFIG, "override '%s': there is no config group '%s' in %s", arg,
			              group, c->dir);
		else if (strncmp(group, "hydra/", 6) == 0)
			*is_group = true; /* Hydra's own groups: accepted and ignored */
		goto done;
	}
	*is_group = true;
	if (plus == 2) {
		st = fv_error(FV_ERR_CONFIG, "override '%s': ++ cannot add a config group; use '+%s'", arg,
		              p);
		goto done;
	}
	fv_config_node *value = NULL;
	if (eq != NULL) {
		/* the value is the place of messages about this choice */
		char *origin = fmt("override '%s'", arg);
		if (origin == NULL) {
			st = nomem();
			goto done;
		}
		value = fv__override_value(NULL, eq + 1, origin);
		free(origin);
		if (value == NULL) {
			st = fv_errcode();
			goto done;
		}
		if ((st = keep_value(c, value)) != FV_OK)
			goto done;
		if (value->type == FV_NODE_MAP ||
		    (value->type == FV_NODE_SEQ && (st = check_option_value(value)) != FV_OK)) {
			st = fv_error(FV_ERR_CONFIG, "override '%s': a config group takes an option name or a "
			              "list of names", arg);
			goto done;
		}
	} else if (!del) {
		st = fv_error(FV_ERR_CONFIG, "override '%s': expected %s=OPTION", arg, key);
		goto done;
	}
	if (del) {
		if (!grow(&c->deletions, c->n_deletions, sizeof *c->deletions)) {
			st = nomem();
			goto done;
		}
		deletion *d = &c->deletions[c->n_deletions++];
		*d = (deletion){.key = fv__strdup(key)};
		if (value != NULL && value->type == FV_NODE_SCALAR)
			d->name = fv__strdup(value->text);
		if (d->key == NULL)
			st = nomem();
	} else if (plus == 1) {
		if (!grow(&c->appends, c->n_appends, sizeof *c->appends)) {
			st = nomem();
			goto done;
		}
		dentry *d = &c->appends[c->n_appends++];
		*d = (dentry){.kind = D_GROUP, .path = fv__strdup(group), .value = value,
		              .package = at ? fv__strdup(at + 1) : NULL, .at = value};
		if (d->path == NULL)
			st = nomem();
	} else {
		st = add_choice(c, key, value, value, true);
	}
done:
	free(key);
	free(group);
	free(dirpath);
	return st;
}

static fv_status check_unused(composer *c)
{
	for (size_t i = 0; i < c->n_choices; i++) {
		choice *ch = &c->choices[i];
		if (ch->used || strncmp(ch->key, "hydra/", 6) == 0)
			continue;
		if (ch->external)
			return fv_error_at(ch->at, FV_ERR_CONFIG, "the group '%s' is not in the defaults list; "
			                   "to add it, use +%s=OPTION", ch->key, ch->key);
		return fv_error_at(ch->at, FV_ERR_CONFIG, "defaults: 'override %s' matches no earlier "
		                   "entry of the defaults list", ch->key);
	}
	for (size_t i = 0; i < c->n_deletions; i++)
		if (!c->deletions[i].used)
			return fv_error(FV_ERR_CONFIG, "override '~%s%s%s': no such entry in the defaults list",
			                c->deletions[i].key, c->deletions[i].name ? "=" : "",
			                c->deletions[i].name ? c->deletions[i].name : "");
	return FV_OK;
}

/* ---- merging ----------------------------------------------------------------------------------- */

static fv_status merge_item(fv_config *out, const item *it)
{
	fv_config_node *content = fv__node_copy(out, it->cfg->root);
	if (content == NULL)
		return fv_errcode();
	/* wrap it in maps along the package path, innermost first */
	const char *pkg = it->package;
	size_t len = strlen(pkg);
	while (len > 0) {
		size_t start = len;
		while (start > 0 && pkg[start - 1] != '.')
			start--;
		char *key = fv__strndup(pkg + start, len - start);
		fv_config_node *wrap = fv__node_new(out, FV_NODE_MAP, content->file, 1);
		fv_status st = key && wrap ? fv__node_append(out, wrap, key, content) : nomem();
		free(key);
		if (st != FV_OK) {
			fv__node_free(out, wrap);
			fv__node_free(out, content);
			return st;
		}
		content = wrap;
		len = start > 0 ? start - 1 : 0;
	}
	return fv__node_merge(out, out->root, content);
}

static void composer_free(composer *c)
{
	for (size_t i = 0; i < c->n_choices; i++)
		free(c->choices[i].key);
	free(c->choices);
	for (size_t i = 0; i < c->n_deletions; i++) {
		free(c->deletions[i].key);
		free(c->deletions[i].name);
	}
	free(c->deletions);
	for (size_t i = 0; i < c->n_appends; i++)
		dentry_free(&c->appends[i]);
	free(c->appends);
	for (size_t i = 0; i < c->n_cli_values; i++)
		fv__node_free(NULL, c->cli_values[i]);
	free(c->cli_values);
	for (size_t i = 0; i < c->n_known; i++)
		free(c->known[i]);
	free(c->known);
	free(c->known_at);
	for (size_t i = 0; i < c->n_loaded; i++)
		fv_config_free(c->loaded[i]);
	free(c->loaded);
	for (size_t i = 0; i < c->n_items; i++)
		free(c->items[i].package);
	free(c->items);
}

fv_config *fv_config_compose(const char *path, const char *config_dir, int n_overrides,
                             const char *const *overrides)
{
	if (path == NULL || (n_overrides > 0 && overrides == NULL) || n_overrides < 0)
		return fv_error(FV_ERR_ARG, "fv_config_compose: no path, or overrides missing"), NULL;
	char *dir = config_dir ? fv__strdup(config_dir) : NULL;
	if (config_dir == NULL) {
		const char *slash = strrchr(path, '/');
		dir = slash ? fv__strndup(path, (size_t)(slash - path)) : fv__strdup(".");
	}
	composer c = {.dir = dir};
	fv_config *out = NULL;
	fv_status st = dir ? FV_OK : nomem();
	bool *is_group = fv__calloc((size_t)n_overrides + 1, sizeof *is_group);
	if (st == FV_OK && is_group == NULL)
		st = nomem();
	for (int i = 0; i < n_overrides && st == FV_OK; i++)
		st = classify(&c, overrides[i], &is_group[i]);
	if (st == FV_OK && !fv__is_file(path))
		st = fv_error(FV_ERR_IO, "%s: cannot open the configuration file", path);
	context top = {"", ""};
	if (st == FV_OK)
		st = expand_file(&c, path, NULL, "", &top, false, true, NULL, NULL);
	if (st == FV_OK)
		st = check_unused(&c);
	if (st == FV_OK && (out = fv__config_new()) == NULL)
		st = FV_ERR_NOMEM;
	if (st == FV_OK && (out->root = fv__node_new(out, FV_NODE_MAP, NULL, 1)) == NULL)
		st = fv_errcode();
	for (size_t i = 0; i < c.n_items && st == FV_OK; i++)
		st = merge_item(out, &c.items[i]);
	for (int i = 0; i < n_overrides && st == FV_OK; i++)
		if (!is_group[i])
			st = fv_config_override(out, overrides[i]);
	if (st == FV_OK) {
		fv__config_forget_reads(out); /* composing read keys; the program has not yet */
		st = fv__config_resolve(out, false);
	}
	composer_free(&c);
	free(is_group);
	free(dir);
	if (st != FV_OK) {
		fv_config_free(out);
		return NULL;
	}
	return out;
}
