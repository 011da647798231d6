/*
** config_internal.h: the configuration tree as the config_*.c files and
** options.c see it.  Plugins and tools only see the opaque fv_config_node of
** include/fovea/config.h.
**
** A tree is made of fv_config_node.  A map keeps its entries in order (keys
** in the children, values are the children); a sequence keeps its items.
** Every node knows its parent (for key paths in messages), the file, line
** and column it came from.  File names are shared, reference-counted strings, so
** nodes can be copied between configurations (composition) cheaply.
*/
#ifndef FOVEA_CONFIG_INTERNAL_H
#define FOVEA_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fovea/config.h"

/* Hard limits that keep hostile input (alias or interpolation "bombs",
** absurd nesting) from exhausting memory or the C stack. */
#define FV_CONFIG_MAX_NODES 200000
#define FV_CONFIG_MAX_DEPTH 256
/* Bytes of text that interpolation may produce in one configuration (a
** string-doubling chain of 28 keys would otherwise reach gigabytes with a
** few hundred nodes).  Real configurations produce a few kilobytes. */
#define FV_CONFIG_MAX_RESOLVED_BYTES ((size_t)16 << 20)

typedef struct fv__fname {
	int refs;
	char name[];
} fv__fname;

/* Resolution state of a node (config_resolve.c). */
enum { FV__NODE_TODO = 0, FV__NODE_BUSY = 1, FV__NODE_DONE = 2 };

struct fv_config_node {
	fv_node_type type;
	bool quoted;          /* scalar was quoted (or is a string by construction) */
	unsigned char state;  /* FV__NODE_* */
	bool used;            /* read by key, path or value since composition
	                         (fv_config_unused); set through const pointers:
	                         nodes are never const objects */
	int line, col;        /* 1-based, 0 when unknown: the key's place for
	                         map values */
	char *text;           /* SCALAR only */
	char *key;            /* key in the parent map; for the root of a derived
	                         spec, the key path it continues (fv_config_load_derived) */
	fv__fname *file;
	fv_config_node *parent;
	fv_config_node **kids; /* SEQ items / MAP values */
	size_t n, cap;
	char *keypath;        /* cache of fv_node_keypath() */
	char *error;          /* why a lenient resolution left this value as it is */
};

struct fv_config {
	fv_config_node *root;
	size_t n_nodes;       /* live nodes, checked against FV_CONFIG_MAX_NODES */
	size_t resolved_bytes; /* text made by interpolation, checked against
	                          FV_CONFIG_MAX_RESOLVED_BYTES */
	time_t now;           /* ${now:...}: one instant per configuration */
	bool have_now;
	bool too_big;         /* FV_CONFIG_MAX_NODES was hit: stop, do not retry */
};

/* Mark n and everything below it read (an interpolation copied it). */
void fv__node_mark_used(const fv_config_node *n);
/* Forget that n was read (an option accepted but without effect). */
void fv__node_unmark(const fv_config_node *n);
/* Forget every read of cfg (config_unused.c). */
void fv__config_forget_reads(fv_config *cfg);

/* ---- file names (config_node.c) ---------------------------------------------- */

fv__fname *fv__fname_new(const char *name);
fv__fname *fv__fname_ref(fv__fname *f);
void fv__fname_unref(fv__fname *f);

/* ---- nodes (config_node.c) ------------------------------------------------------ */

/* A new node counted against cfg (which may be NULL for free-standing
** trees).  Returns NULL on failure with the error set: FV_ERR_CONFIG
** (size limit) or FV_ERR_NOMEM, for callers to pass on with fv_errcode().
** The column is 0 (unknown) until the caller sets it. */
fv_config_node *fv__node_new(fv_config *cfg, fv_node_type type, fv__fname *file, int line);
fv_config_node *fv__node_new_scalar(fv_config *cfg, const char *text, size_t len, bool quoted,
                                    fv__fname *file, int line);
/* Free a node and everything below it (it must already be unlinked). */
void fv__node_free(fv_config *cfg, fv_config_node *n);
/* Deep copy, counted against cfg; the copy has no parent and no key. */
fv_config_node *fv__node_copy(fv_config *cfg, const fv_config_node *src);
/* Append a child (a map entry when key != NULL). */
fv_status fv__node_append(fv_config *cfg, fv_config_node *parent, const char *key,
                          fv_config_node *child);
/* Index of `key` in a map, or -1. */
long fv__node_find(const fv_config_node *map, const char *key);
/* Replace parent's child i by `child`, freeing the old one. */
void fv__node_replace_at(fv_config *cfg, fv_config_node *parent, size_t i, fv_config_node *child);
/* Remove and free parent's child i. */
void fv__node_remove_at(fv_config *cfg, fv_config_node *parent, size_t i);
/* Turn `dst` into a copy of the contents of `src` (type, text, children),
** keeping dst's key, parent, file and line.  src is consumed (freed). */
void fv__node_take_contents(fv_config *cfg, fv_config_node *dst, fv_config_node *src);
/* Give dst the file, line and column of src. */
void fv__node_take_place(fv_config_node *dst, const fv_config_node *src);
/* Place n and everything below it as the tree it was written from: each
** node where `like`'s node at the same key path is, else where its parent
** (first `up`) is.  like may be NULL: all of n at up. */
void fv__node_take_places(fv_config_node *n, const fv_config_node *like, const fv_config_node *up);
/* Deep merge (OmegaConf): maps merge key by key, anything else replaces;
** a ??? in src never replaces an existing value.  src is consumed. */
fv_status fv__node_merge(fv_config *cfg, fv_config_node *dst, fv_config_node *src);
/* Depth of the subtree (a scalar is 1). */
int fv__node_depth(const fv_config_node *n);
/* Drop cached key paths below n (after a node moved). */
void fv__node_forget_keypaths(fv_config_node *n);

/* "FILE:LINE:COLUMN" of a node into buf (as much of it as is known,
** "<config>" for none), for messages that name a second place. */
const char *fv__node_where(const fv_config_node *n, char *buf, size_t size);
/* fv_error_at() with a va_list. */
fv_status fv__verror_at(const fv_config_node *n, fv_status code, const char *fmt, va_list ap);
/* The key path, or "<root>" for the root, for messages. */
const char *fv__node_name(const fv_config_node *n);

/* FV_OK, or the error a lenient resolution recorded for this value (which
** then becomes the current message): reading such a value reports it. */
fv_status fv__node_check(const fv_config_node *n);

/* True for the mandatory-value marker. */
bool fv__node_is_missing(const fv_config_node *n);

/* ---- scalars as PyYAML/OmegaConf read them (config_node.c) -------------------- */

typedef enum fv__scalar_kind {
	FV__SCALAR_STR,
	FV__SCALAR_NULL,
	FV__SCALAR_BOOL,
	FV__SCALAR_INT,
	FV__SCALAR_FLOAT
} fv__scalar_kind;

bool fv__scalar_is_null(const char *s);
bool fv__scalar_bool(const char *s, bool *out);
/* Integer forms; *overflow set when the text is an integer beyond int64. */
bool fv__scalar_int(const char *s, int64_t *out, bool *overflow);
bool fv__scalar_float(const char *s, double *out);
/* How an unquoted scalar would be typed by the YAML loader. */
fv__scalar_kind fv__scalar_kind_of(const char *s);

/* ---- parsing (config_yaml.c) ------------------------------------------------------- */

/* Parse YAML text into a configuration.  allow_scalar_root: accept a bare
** scalar or null document (override values, option defaults); otherwise the
** top level must be a map or a list, and an empty document is an empty map. */
fv_config *fv__config_parse(const char *text, size_t len, const char *name, bool allow_scalar_root);
fv_config *fv__config_new(void);
/* A whole file, NUL-terminated (malloc'd); *len excludes the NUL. */
char *fv__read_file(const char *path, size_t *len);

/* ---- resolution (config_resolve.c) ---------------------------------------------- */

/* Resolve interpolations.  strict: every ??? is an error (fv_config_resolve);
** otherwise ??? values, and interpolations that need them, stay in place to
** be filled in later (fv_config_compose). */
fv_status fv__config_resolve(fv_config *cfg, bool strict);

/* ---- overrides (config_override.c) --------------------------------------------- */

/* The value of an override, "a.b=VALUE": flow YAML when it starts with [, {
** or a quote, otherwise the verbatim text as a plain scalar. */
fv_config_node *fv__override_value(fv_config *cfg, const char *text, const char *origin);

#endif /* FOVEA_CONFIG_INTERNAL_H */
