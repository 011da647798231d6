/*
** trainer_unused.c: after the trainer has read its settings, built the
** model and opened the data and loggers, every key of the config it did not
** read is named once (config_unused.c); with `strict` that is an error.
**
** The hydra node is Hydra's own runtime configuration, of which fovea reads
** only run.dir; it is not listed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

static const char *const not_listed[] = {"hydra", NULL};

/* The doc of option `key` of the built-in part `name`, when the table
** declares it without effect. */
static const char *no_effect_doc(const char *name, const char *key)
{
	const fv_builtin *b = name != NULL ? fv_builtin_find(name) : NULL;
	for (const fv_option *o = b != NULL ? b->options : NULL; o != NULL && o->name; o++)
		if (strcmp(o->name, key) == 0 && (o->flags & FV_OPT_NO_EFFECT))
			return o->doc;
	return NULL;
}

/* Why fovea ignores a key: what the option tables say (trainer.KEY, or
** KEY of a callback or logger with a _target_), else a known reason. */
static const char *reason(const fv_config_node *root, const char *path)
{
	const char *dot = strrchr(path, '.');
	const char *key = dot != NULL ? dot + 1 : path;
	if (strncmp(path, "trainer.", 8) == 0 && strchr(path + 8, '.') == NULL)
		return no_effect_doc("Trainer", key);
	char parent_path[512];
	const fv_config_node *parent = NULL;
	if (dot != NULL && (size_t)(dot - path) < sizeof parent_path) {
		snprintf(parent_path, sizeof parent_path, "%.*s", (int)(dot - path), path);
		parent = fv_node_path(root, parent_path);
	}
	const fv_config_node *target = parent != NULL && fv_node_kind(parent) == FV_NODE_MAP
	                               ? fv_node_get(parent, "_target_") : NULL;
	if (target != NULL && fv_node_kind(target) == FV_NODE_SCALAR)
		return no_effect_doc(fv_node_text(target), key);
	if (strncmp(path, "paths.cache_dir", 15) == 0)
		return "openretina's download cache";
	return NULL;
}

typedef struct unused {
	fv__text list;
	const fv_config_node *root;
} unused;

static void add_key(void *ud, const fv_config_node *n)
{
	unused *u = ud;
	fv__text *list = &u->list;
	const char *path = fv_node_keypath(n), *why = reason(u->root, path);
	fv__text_printf(list, "%s%s%s%s%s", list->len ? ", " : "", path, why ? " (" : "",
	                why ? why : "", why ? ")" : "");
}

fv_status fv__report_unused(fv__trainer *t, bool strict)
{
	unused u = {{0}, fv_config_root(t->cfg)};
	size_t n = fv_config_unused(t->cfg, not_listed, add_key, &u);
	char *text = n > 0 ? fv__text_take(&u.list, "the list of unused keys") : NULL;
	fv_status rc = FV_OK;
	if (n > 0 && text == NULL)
		rc = fv_errcode();
	else if (n > 0 && strict)
		rc = fv_error(FV_ERR_CONFIG, "not used by fovea (--strict): %s", text);
	else if (n > 0)
		fprintf(stderr, "fovea: not used: %s\n", text);
	free(text);
	return rc;
}
