/*
** options.c: a component's YAML map read against its option table, the way
** FFmpeg's AVOption tables drive parsing: the plugin declares name, type,
** offset, default, range and flags; this file fills the plugin's options
** struct, checks everything and writes the messages, and prints the table
** as documentation (`fovea describe`).
**
** Strings and FV_OPT_NODE values point into the configuration tree (or into
** the parsed default, kept for the life of the process), so they are valid
** while the configuration is; only lists are allocated here, and
** fv_options_free() releases them.  A module's private state (priv_size)
** outlives the configuration it was built from, so the framework parses
** into it with fv__options_parse_owned(): strings and enums are copies
** there, released by fv__options_release().
*/
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "plugin/plugin_internal.h"
#include "fovea/plugin.h"
#include "fovea/fovea.h"
#include "base/base_internal.h"

/* Keys Hydra's instantiate() reserves; openretina's configs use them. */
static const char *const hydra_keys[] = {"_target_", "_convert_", "_recursive_", "_partial_", "_args_"};

/* ---- defaults, parsed once ------------------------------------------------------------------- */

typedef struct parsed_default {
	struct parsed_default *next;
	char *text;
	fv_config *cfg;
} parsed_default;

static parsed_default *defaults;
static pthread_mutex_t defaults_lock = PTHREAD_MUTEX_INITIALIZER;

/* The tree of a default's YAML text.  Option tables are static data, so the
** parsed defaults are kept (and shared) rather than rebuilt per component. */
static const fv_config_node *default_node(const char *text)
{
	const fv_config_node *found = NULL;
	pthread_mutex_lock(&defaults_lock);
	for (parsed_default *d = defaults; d != NULL && found == NULL; d = d->next)
		if (strcmp(d->text, text) == 0)
			found = d->cfg->root;
	if (found == NULL) {
		parsed_default *d = fv__calloc(1, sizeof *d);
		if (d != NULL && (d->text = fv__strdup(text)) != NULL &&
		    (d->cfg = fv__config_parse(text, strlen(text), "<default>", true)) != NULL) {
			d->next = defaults;
			defaults = d;
			found = d->cfg->root;
		} else if (d != NULL) {
			free(d->text);
			free(d);
		}
	}
	pthread_mutex_unlock(&defaults_lock);
	return found;
}

/* ---- messages ---------------------------------------------------------------------------------- */

typedef struct ctx {
	const fv_option *opt;
	const char *what;
	bool from_default;
	bool owned; /* strings are copies the struct owns */
} ctx;

static void got_text(const fv_config_node *n, char *buf, size_t size)
{
	switch (fv_node_kind(n)) {
	case FV_NODE_NULL: snprintf(buf, size, "null"); break;
	case FV_NODE_SEQ: snprintf(buf, size, "a list"); break;
	case FV_NODE_MAP: snprintf(buf, size, "a map"); break;
	case FV_NODE_SCALAR: snprintf(buf, size, "'%.60s'", n->text); break;
	}
}

/* "FILE:LINE:COLUMN: KEY: expected X (option 'o' of C), got 'v'" */
static fv_status expected(const ctx *c, const fv_config_node *n, const char *what_expected)
{
	char got[96];
	got_text(n, got, sizeof got);
	if (c->from_default)
		return fv_error(FV_ERR_ARG, "%s: the default of option '%s' is %s, expected %s "
		                "(a bug in the component's option table)", c->what, c->opt->name, got,
		                what_expected);
	if (fv__node_is_missing(n))
		return fv_error_at(n, FV_ERR_CONFIG,
		                   "%s: missing mandatory value (\?\?\?) (option '%s' of %s)",
		                   fv__node_name(n), c->opt->name, c->what);
	return fv_error_at(n, FV_ERR_CONFIG, "%s: expected %s (option '%s' of %s), got %s",
	                   fv__node_name(n), what_expected, c->opt->name, c->what, got);
}

static fv_status out_of_range(const ctx *c, const fv_config_node *n, const char *value)
{
	if (c->from_default)
		return fv_error(FV_ERR_ARG, "%s: the default %s of option '%s' is outside [%g, %g] "
		                "(a bug in the component's option table)", c->what, value, c->opt->name,
		                c->opt->min, c->opt->max);
	return fv_error_at(n, FV_ERR_CONFIG, "%s: %s is out of range [%g, %g] (option '%s' of %s)",
	                   fv__node_name(n), value, c->opt->min, c->opt->max, c->opt->name, c->what);
}

/* ---- typed values --------------------------------------------------------------------------------- */

static bool checks_range(const fv_option *o)
{
	return o->min != o->max;
}

static fv_status read_int(const ctx *c, const fv_config_node *n, int64_t *out)
{
	bool overflow = false;
	if (n->type != FV_NODE_SCALAR || !fv__scalar_int(n->text, out, &overflow))
		return expected(c, n, "an integer");
	if (overflow)
		return expected(c, n, "an integer that fits in 64 bits");
	if (checks_range(c->opt) && ((double)*out < c->opt->min || (double)*out > c->opt->max)) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)*out);
		return out_of_range(c, n, v);
	}
	return FV_OK;
}

static fv_status read_float(const ctx *c, const fv_config_node *n, double *out)
{
	int64_t i;
	bool overflow = false;
	if (n->type != FV_NODE_SCALAR)
		return expected(c, n, "a number");
	if (!fv__scalar_float(n->text, out)) {
		if (!fv__scalar_int(n->text, &i, &overflow) || overflow)
			return expected(c, n, "a number");
		*out = (double)i;
	}
	if (checks_range(c->opt) && !(*out >= c->opt->min && *out <= c->opt->max)) {
		char v[32];
		snprintf(v, sizeof v, "%g", *out);
		return out_of_range(c, n, v);
	}
	return FV_OK;
}

/* ENUM: one of "a|b|c"; the message names the choices and the closest. */
static fv_status read_enum(const ctx *c, const fv_config_node *n, const char **out)
{
	const char *choices = c->opt->choices ? c->opt->choices : "";
	if (n->type == FV_NODE_SCALAR) {
		size_t len = strlen(n->text);
		for (const char *p = choices; *p;) {
			size_t k = strcspn(p, "|");
			if (k == len && strncmp(p, n->text, k) == 0) {
				*out = n->text;
				return FV_OK;
			}
			p += k + (p[k] == '|');
		}
	}
	char *copy = fv__strdup(choices);
	const char *names[64];
	size_t count = 0;
	for (char *tok = copy ? strtok(copy, "|") : NULL; tok && count < 64; tok = strtok(NULL, "|"))
		names[count++] = tok;
	const char *best = n->type == FV_NODE_SCALAR ? fv_closest_name(n->text, names, count) : NULL;
	char want[512];
	snprintf(want, sizeof want, "one of %s", choices);
	fv_status st = expected(c, n, want);
	if (best != NULL && !c->from_default)
		st = fv_error(st, "%s; did you mean '%s'?", fv_errmsg(), best);
	free(copy);
	return st;
}

static fv_status read_list(const ctx *c, const fv_config_node *n, void *field)
{
	bool ints = c->opt->type == FV_OPT_INT_LIST;
	const char *want = ints ? "a list of integers" : "a list of numbers";
	const fv_config_node *const *items;
	size_t count;
	if (n->type == FV_NODE_SEQ) {
		items = (const fv_config_node *const *)n->kids;
		count = n->n;
	} else if (n->type == FV_NODE_SCALAR && (c->opt->flags & FV_OPT_SCALAR_AS_LIST) &&
	           !fv__node_is_missing(n)) {
		items = (const fv_config_node *const *)&n;
		count = 1;
	} else {
		return expected(c, n, want);
	}
	void *v = NULL;
	if (count > 0 && (v = fv__calloc(count, ints ? sizeof(int64_t) : sizeof(double))) == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading option '%s' of %s", c->opt->name, c->what);
	for (size_t i = 0; i < count; i++) {
		fv_status st = fv__node_check(items[i]);
		if (st == FV_OK)
			st = ints ? read_int(c, items[i], (int64_t *)v + i) : read_float(c, items[i], (double *)v + i);
		if (st != FV_OK) {
			free(v);
			return st;
		}
	}
	if (ints) {
		fv_int_list *l = field;
		free(l->v); /* an earlier entry sharing this offset */
		*l = (fv_int_list){.n = count, .v = v, .is_set = true};
	} else {
		fv_float_list *l = field;
		free(l->v);
		*l = (fv_float_list){.n = count, .v = v, .is_set = true};
	}
	return FV_OK;
}

/* A STRING or ENUM value: the node's text, or a copy of it in an owning
** struct (where the field may already hold an earlier copy). */
static fv_status set_string(const ctx *c, void *field, const char *text)
{
	if (!c->owned) {
		*(const char **)field = text;
		return FV_OK;
	}
	char *copy = text != NULL ? fv__strdup(text) : NULL;
	if (text != NULL && copy == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading option '%s' of %s", c->opt->name,
		                c->what);
	free(*(char **)field);
	*(char **)field = copy;
	return FV_OK;
}

static void set_null(const ctx *c, void *field)
{
	const fv_option *o = c->opt;
	switch (o->type) {
	case FV_OPT_BOOL: *(bool *)field = false; break;
	case FV_OPT_INT: *(int64_t *)field = FV_NONE_INT; break;
	case FV_OPT_FLOAT: *(double *)field = NAN; break;
	case FV_OPT_STRING:
	case FV_OPT_ENUM: set_string(c, field, NULL); break;
	case FV_OPT_NODE: *(const fv_config_node **)field = NULL; break;
	case FV_OPT_INT_LIST:
		free(((fv_int_list *)field)->v);
		*(fv_int_list *)field = (fv_int_list){0};
		break;
	case FV_OPT_FLOAT_LIST:
		free(((fv_float_list *)field)->v);
		*(fv_float_list *)field = (fv_float_list){0};
		break;
	case FV_OPT_KWARGS: break;
	}
}

static fv_status read_value(const ctx *c, const fv_config_node *n, void *field)
{
	const fv_option *o = c->opt;
	fv_status st = fv__node_check(n);
	if (st != FV_OK)
		return st;
	if (n->type == FV_NODE_NULL && (o->flags & FV_OPT_NULLABLE)) {
		set_null(c, field);
		return FV_OK;
	}
	if (fv__node_is_missing(n))
		return expected(c, n, "a value");
	switch (o->type) {
	case FV_OPT_BOOL:
		if (n->type == FV_NODE_SCALAR && fv__scalar_bool(n->text, field))
			return FV_OK;
		return expected(c, n, "a boolean (true/false)");
	case FV_OPT_INT: return read_int(c, n, field);
	case FV_OPT_FLOAT: return read_float(c, n, field);
	case FV_OPT_STRING:
		if (n->type != FV_NODE_SCALAR)
			return expected(c, n, "a string");
		return set_string(c, field, n->text);
	case FV_OPT_ENUM: {
		const char *choice = NULL;
		st = read_enum(c, n, &choice);
		return st == FV_OK ? set_string(c, field, choice) : st;
	}
	case FV_OPT_INT_LIST:
	case FV_OPT_FLOAT_LIST: return read_list(c, n, field);
	case FV_OPT_NODE: *(const fv_config_node **)field = n; return FV_OK;
	case FV_OPT_KWARGS: break;
	}
	return fv_error(FV_ERR_ARG, "%s: option '%s' has an unknown type %d", c->what, o->name, (int)o->type);
}

/* ---- the table ------------------------------------------------------------------------------------- */

static bool in_table(const fv_option *table, const char *key)
{
	for (const fv_option *o = table; o && o->name; o++)
		if (o->type != FV_OPT_KWARGS && strcmp(o->name, key) == 0)
			return true;
	return false;
}

static bool takes_kwargs(const fv_option *table)
{
	for (const fv_option *o = table; o && o->name; o++)
		if (o->type == FV_OPT_KWARGS)
			return true;
	return false;
}

static bool ignored(const char *key, const char *const *ignore)
{
	for (size_t i = 0; i < sizeof hydra_keys / sizeof *hydra_keys; i++)
		if (strcmp(key, hydra_keys[i]) == 0)
			return true;
	for (size_t i = 0; ignore && ignore[i]; i++)
		if (strcmp(key, ignore[i]) == 0)
			return true;
	return false;
}

/* The table's option names (without its **kwargs row), malloc'd; *n their count. */
static const char **option_names(const fv_option *table, size_t *n)
{
	*n = 0;
	for (const fv_option *o = table; o && o->name; o++)
		*n += o->type != FV_OPT_KWARGS;
	const char **names = fv__malloc((*n + 1) * sizeof *names);
	size_t k = 0;
	for (const fv_option *o = table; names != NULL && o && o->name; o++)
		if (o->type != FV_OPT_KWARGS)
			names[k++] = o->name;
	return names;
}

/* A key the class's **kwargs takes: one that is not a plausible typo of an
** option (a misspelt option is still an error, with its correction). */
static bool admitted_by_kwargs(const fv_option *table, const char *key)
{
	if (!takes_kwargs(table))
		return false;
	size_t n;
	const char **names = option_names(table, &n);
	bool typo = names == NULL || fv_closest_name(key, names, n) != NULL;
	free(names);
	return !typo;
}

static fv_status unknown_key(const fv_option *table, const fv_config_node *map, size_t i, const char *what)
{
	size_t n;
	const char **names = option_names(table, &n);
	const fv_config_node *entry = map->kids[i];
	const char *key = entry->key;
	if (names == NULL)
		return fv_error_at(entry, FV_ERR_CONFIG, "unknown option '%s' for %s", key, what);
	const char *best = fv_closest_name(key, names, n);
	fv_status st;
	if (best != NULL) {
		st = fv_error_at(entry, FV_ERR_CONFIG, "unknown option '%s' for %s; did you mean '%s'?",
		                 key, what, best);
	} else {
		char list[1024];
		size_t at = 0;
		list[0] = '\0';
		for (size_t k = 0; k < n && at < sizeof list; k++) {
			int w = snprintf(list + at, sizeof list - at, "%s%s", k ? ", " : "", names[k]);
			at += w > 0 ? (size_t)w : 0;
		}
		st = fv_error_at(entry, FV_ERR_CONFIG, "unknown option '%s' for %s; valid options: %s", key,
		                 what, n ? list : "(none)");
	}
	free(names);
	return st;
}

static fv_status parse_option(const fv_option *o, const fv_config_node *map, void *opts, const char *what,
                              bool owned)
{
	if (o->type == FV_OPT_KWARGS)
		return FV_OK; /* the keys it admits stay unread */
	void *field = (char *)opts + o->offset;
	const fv_config_node *given = fv_node_get(map, o->name);
	ctx c = {o, what, given == NULL, owned};
	if (given != NULL) {
		fv_status st = read_value(&c, given, field);
		if (o->flags & FV_OPT_NO_EFFECT)
			fv__node_unmark(given); /* checked, but nothing acts on it */
		else if (st == FV_OK && o->type != FV_OPT_NODE)
			fv__node_mark_used(given); /* a list was read item by item */
		return st;
	}
	if (o->flags & FV_OPT_REQUIRED) {
		if (map == NULL)
			return fv_error(FV_ERR_CONFIG, "%s: missing required option '%s'", what, o->name);
		return fv_error_at(map, FV_ERR_CONFIG, "%s: missing required option '%s' of %s",
		                   fv__node_name(map), o->name, what);
	}
	if (o->def == NULL) {
		if (o->flags & FV_OPT_NULLABLE)
			set_null(&c, field);
		return FV_OK;
	}
	const fv_config_node *def = default_node(o->def);
	if (def == NULL)
		return fv_error(FV_ERR_ARG, "%s: the default '%s' of option '%s' is not valid YAML: %s",
		                what, o->def, o->name, fv_errmsg());
	return read_value(&c, def, field);
}

static void zero_field(const fv_option *o, void *opts)
{
	void *field = (char *)opts + o->offset;
	switch (o->type) {
	case FV_OPT_BOOL: *(bool *)field = false; break;
	case FV_OPT_INT: *(int64_t *)field = 0; break;
	case FV_OPT_FLOAT: *(double *)field = 0; break;
	case FV_OPT_STRING:
	case FV_OPT_ENUM: *(const char **)field = NULL; break;
	case FV_OPT_NODE: *(const fv_config_node **)field = NULL; break;
	case FV_OPT_INT_LIST: *(fv_int_list *)field = (fv_int_list){0}; break;
	case FV_OPT_FLOAT_LIST: *(fv_float_list *)field = (fv_float_list){0}; break;
	case FV_OPT_KWARGS: break;
	}
}

static fv_status parse_table(const fv_option *table, const fv_config_node *map, void *opts,
                             const char *what, const char *const *ignore, bool owned)
{
	if (what == NULL)
		what = "this component";
	if (table != NULL && opts == NULL)
		return fv_error(FV_ERR_ARG, "fv_options_parse: no options struct for %s", what);
	/* An owning struct starts zero-filled (fv__options_parse_owned): its
	** string fields may hold nothing but copies. */
	for (const fv_option *o = table; o && o->name && !owned; o++)
		zero_field(o, opts);
	if (map != NULL && map->type == FV_NODE_NULL)
		map = NULL;
	if (map != NULL && map->type != FV_NODE_MAP) {
		char got[96];
		got_text(map, got, sizeof got);
		return fv_error_at(map, FV_ERR_CONFIG, "%s: expected the options of %s as a map, got %s",
		                   fv__node_name(map), what, got);
	}
	for (size_t i = 0; map != NULL && i < map->n; i++)
		if (!in_table(table, map->kids[i]->key) && !ignored(map->kids[i]->key, ignore) &&
		    !admitted_by_kwargs(table, map->kids[i]->key))
			return unknown_key(table, map, i, what);
	for (const fv_option *o = table; o && o->name; o++) {
		fv_status st = parse_option(o, map, opts, what, owned);
		if (st != FV_OK) {
			if (owned)
				fv__options_release(table, opts);
			else
				fv_options_free(table, opts);
			return st;
		}
	}
	return FV_OK;
}

fv_status fv_options_parse(const fv_option *table, const fv_config_node *map, void *opts,
                           const char *what, const char *const *ignore)
{
	return parse_table(table, map, opts, what, ignore, false);
}

fv_status fv__options_parse_owned(const fv_option *table, const fv_config_node *map, void *opts,
                                  const char *what)
{
	return parse_table(table, map, opts, what, NULL, true);
}

void fv_options_free(const fv_option *table, void *opts)
{
	if (opts == NULL)
		return;
	for (const fv_option *o = table; o && o->name; o++) {
		void *field = (char *)opts + o->offset;
		if (o->type == FV_OPT_INT_LIST) {
			free(((fv_int_list *)field)->v);
			*(fv_int_list *)field = (fv_int_list){0};
		} else if (o->type == FV_OPT_FLOAT_LIST) {
			free(((fv_float_list *)field)->v);
			*(fv_float_list *)field = (fv_float_list){0};
		}
	}
}

void fv__options_release(const fv_option *table, void *opts)
{
	fv_options_free(table, opts);
	for (const fv_option *o = table; opts != NULL && o && o->name; o++) {
		if (o->type == FV_OPT_STRING || o->type == FV_OPT_ENUM) {
			char **field = (char **)((char *)opts + o->offset);
			free(*field);
			*field = NULL;
		}
	}
}

void fv__options_drop_nodes(const fv_option *table, void *opts)
{
	for (const fv_option *o = table; o && o->name; o++)
		if (o->type == FV_OPT_NODE)
			*(const fv_config_node **)((char *)opts + o->offset) = NULL;
}

/* ---- documentation ------------------------------------------------------------------------------ */

static const char *type_name(const fv_option *o)
{
	switch (o->type) {
	case FV_OPT_BOOL: return "bool";
	case FV_OPT_INT: return "int";
	case FV_OPT_FLOAT: return "float";
	case FV_OPT_STRING: return "string";
	case FV_OPT_ENUM: return "choice";
	case FV_OPT_INT_LIST: return o->flags & FV_OPT_SCALAR_AS_LIST ? "int or int list" : "int list";
	case FV_OPT_FLOAT_LIST: return o->flags & FV_OPT_SCALAR_AS_LIST ? "float or float list" : "float list";
	case FV_OPT_NODE: return "any";
	case FV_OPT_KWARGS: return "other keys";
	}
	return "?";
}

typedef struct row {
	char type[48], def[48], range[160];
} row;

static void describe_row(const fv_option *o, row *r)
{
	snprintf(r->type, sizeof r->type, "%s%s", type_name(o), o->flags & FV_OPT_NULLABLE ? " or null" : "");
	if (o->flags & FV_OPT_REQUIRED)
		snprintf(r->def, sizeof r->def, "(required)");
	else
		snprintf(r->def, sizeof r->def, "%s", o->def ? o->def : "-");
	r->range[0] = '\0';
	if (o->type == FV_OPT_ENUM && o->choices)
		snprintf(r->range, sizeof r->range, "%s", o->choices);
	else if (checks_range(o))
		snprintf(r->range, sizeof r->range, "[%g, %g]", o->min, o->max);
}

void fv_options_describe(const fv_option *table, FILE *out)
{
	if (out == NULL)
		return;
	if (table == NULL || table->name == NULL) {
		fprintf(out, "  (no options)\n");
		return;
	}
	int wn = 6, wt = 4, wd = 7, wr = 5;
	for (const fv_option *o = table; o->name; o++) {
		row r;
		describe_row(o, &r);
		int ln = (int)strlen(o->name), lt = (int)strlen(r.type), ld = (int)strlen(r.def),
		    lr = (int)strlen(r.range);
		wn = ln > wn ? ln : wn;
		wt = lt > wt ? lt : wt;
		wd = ld > wd ? ld : wd;
		wr = lr > wr ? lr : wr;
	}
	fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", wn, "OPTION", wt, "TYPE", wd, "DEFAULT", wr,
	        "RANGE", "DESCRIPTION");
	for (const fv_option *o = table; o->name; o++) {
		row r;
		describe_row(o, &r);
		fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", wn, o->name, wt, r.type, wd, r.def, wr, r.range,
		        o->doc ? o->doc : "");
	}
}
