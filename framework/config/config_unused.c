/*
** config_unused.c: which keys of a configuration the program never read.
**
** Every lookup by key or path and every read of a value marks the node it
** reaches (config_node.c); composition's own reads are forgotten before the
** program starts.  What stays unmarked was set by the user and ignored, and
** a researcher must be told: a key that silently does nothing is a run they
** believe they made and did not.
*/
#include <string.h>

#include "config/config_internal.h"

static void forget(fv_config_node *n)
{
	n->used = false;
	for (size_t i = 0; i < n->n; i++)
		forget(n->kids[i]);
}

void fv__config_forget_reads(fv_config *cfg)
{
	if (cfg != NULL && cfg->root != NULL)
		forget(cfg->root);
}

static bool skipped(const fv_config_node *n, const char *const *skip)
{
	if (n->key != NULL && n->key[0] == '_')
		return true;
	for (const char *const *s = skip; s != NULL && *s != NULL; s++)
		if (strcmp(fv_node_keypath(n), *s) == 0)
			return true;
	return false;
}

static size_t visit(const fv_config_node *n, const char *const *skip,
                    void (*fn)(void *ud, const fv_config_node *n), void *ud)
{
	if (n->parent != NULL && skipped(n, skip))
		return 0;
	if (n->n == 0 || n->type == FV_NODE_SCALAR || n->type == FV_NODE_NULL) {
		/* null and ??? ask for nothing, so ignoring them changes nothing */
		if (n->used || n->parent == NULL || n->type == FV_NODE_NULL ||
		    fv__node_is_missing(n) || (n->type == FV_NODE_SCALAR && fv__scalar_is_null(n->text)))
			return 0;
		if (fn != NULL)
			fn(ud, n);
		return 1;
	}
	size_t found = 0;
	for (size_t i = 0; i < n->n; i++)
		found += visit(n->kids[i], skip, fn, ud);
	return found;
}

size_t fv_config_unused(const fv_config *cfg, const char *const *skip,
                        void (*fn)(void *ud, const fv_config_node *n), void *ud)
{
	return cfg != NULL && cfg->root != NULL ? visit(cfg->root, skip, fn, ud) : 0;
}
