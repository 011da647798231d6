/*
** config.h: YAML configurations as a tree, with OmegaConf/Hydra semantics.
**
** A loaded fv_config owns every node.  Each node remembers the file, line
** and column it came from, so every message about a value can say where it
** is (fv_error_at).
** Supported on top of plain YAML (libyaml):
**   ${a.b.c}               interpolation of another key (absolute path),
**                          also inside a longer string ("run_${seed}")
**   ${oc.env:VAR,default}  an environment variable, with optional default
**   ???                    a required value: resolving it is an error
**   key=value, +key=value, ~key   command-line overrides (Hydra's grammar:
**                          set existing, add new, delete)
**   defaults: [...]        Hydra defaults lists: `- group: option` loads
**                          DIR/group/option.yaml under key `group`
**                          (`- group@pkg: option` under `pkg`), `- name`
**                          merges DIR/name.yaml at the root, `_self_` sets
**                          where the file's own keys merge.
*/
#ifndef FOVEA_CONFIG_H
#define FOVEA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fovea.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fv_config fv_config;
typedef struct fv_config_node fv_config_node;

typedef enum fv_node_type {
	FV_NODE_NULL,
	FV_NODE_SCALAR,
	FV_NODE_SEQ,
	FV_NODE_MAP
} fv_node_type;

/* ---- loading ---------------------------------------------------------------- */

/* Parse one YAML file (no defaults-list composition, no resolution). */
FV_API fv_config *fv_config_load_file(const char *path);
/* Parse YAML text; `name` is used as the file name in messages. */
FV_API fv_config *fv_config_load_string(const char *text, size_t len, const char *name);
/* Parse YAML text written from the node `from`: a composite component's
** spec for a nested one, made with fv_node_to_yaml() plus keys of its own.
** Each value takes the place (fv_error_at) of the value at the same key path
** under `from`, or its parent's place when `from` has none, and key paths
** continue from's ("model.core.gamma"), so messages about the derived spec
** point into the user's file.  With a NULL `from` (text the program wrote
** from nothing the user wrote) the values have no place at all. */
FV_API fv_config *fv_config_load_derived(const char *text, size_t len, const fv_config_node *from);
/* Hydra-style: load `path`, compose its `defaults:` list from the groups in
** the directory `path` lives in (or `config_dir` when not NULL), apply the
** overrides in order, then resolve leniently, as OmegaConf is lazy: a `???`
** or an interpolation that cannot be resolved yet (an unset environment
** variable, a key the program fills in later such as n_neurons_dict) stays
** as written and reports its reason when it is read (typed reads,
** fv_options_parse).  Call fv_config_resolve() after filling in such values
** for the strict check.  The usual entry point of the tools. */
FV_API fv_config *fv_config_compose(const char *path, const char *config_dir, int n_overrides,
                                    const char *const *overrides);
/* Apply one command-line override: "a.b=3", "+a.new=x", "~a.b". */
FV_API fv_status fv_config_override(fv_config *cfg, const char *arg);
/* Resolve every interpolation in place and check that no ??? is left. */
FV_API fv_status fv_config_resolve(fv_config *cfg);
FV_API void fv_config_free(fv_config *cfg);

/* The keys nothing has read since cfg was composed: each scalar, null or
** empty container that was never looked up by key or path (fv_node_get,
** fv_node_path), read as a value (fv_node_text, fv_node_to_*, ...), nor
** copied by an interpolation, is passed to `fn`, in document order.  Keys
** starting with '_' (_target_, _convert_, ...) and the subtrees named in
** `skip` (key paths, NULL-terminated, may be NULL) are left out.  Returns
** how many were found.  This is how `fovea train` lists what a config sets
** and fovea does not act on. */
FV_API size_t fv_config_unused(const fv_config *cfg, const char *const *skip,
                               void (*fn)(void *ud, const fv_config_node *n), void *ud);

/* The resolved tree as YAML text (malloc'd; the caller frees). */
FV_API char *fv_config_to_yaml(const fv_config *cfg);

/* One node (and below) as YAML text (malloc'd), e.g. to give a nested
** component a derived spec via fv_config_load_string(). */
FV_API char *fv_node_to_yaml(const fv_config_node *n);

/* ---- reading nodes ----------------------------------------------------------- */

FV_API const fv_config_node *fv_config_root(const fv_config *cfg);
FV_API fv_node_type fv_node_kind(const fv_config_node *n);
/* Scalar text, or NULL for anything but a scalar. */
FV_API const char *fv_node_text(const fv_config_node *n);
/* True when the scalar was quoted in YAML (so "3" is a string, not a number). */
FV_API bool fv_node_quoted(const fv_config_node *n);
/* Number of items (sequence) or entries (map); 0 otherwise. */
FV_API size_t fv_node_size(const fv_config_node *n);
/* Item i of a sequence, or value i of a map. */
FV_API const fv_config_node *fv_node_at(const fv_config_node *n, size_t i);
/* Key i of a map (NULL otherwise). */
FV_API const char *fv_node_key_at(const fv_config_node *n, size_t i);
/* Direct child of a map by key, or NULL. */
FV_API const fv_config_node *fv_node_get(const fv_config_node *n, const char *key);
/* Dotted path from `n`: "trainer.max_epochs", "model.layers.0". */
FV_API const fv_config_node *fv_node_path(const fv_config_node *n, const char *path);
/* Where the node came from: the file (or "override 'a.b=3'" for a
** command-line value) and the 1-based line, 0 when not known.  Messages
** about a node use fv_error_at() rather than these. */
FV_API const char *fv_node_file(const fv_config_node *n);
FV_API int fv_node_line(const fv_config_node *n);
/* Full dotted key of the node from the root ("model.readout.scale"). */
FV_API const char *fv_node_keypath(const fv_config_node *n);

/* Record a failure about a configuration value, as fv_error() does, with
** the value's place in front: "FILE:LINE:COLUMN: " (line and column 1-based,
** as editors count; a map value is placed at its key), "FILE:LINE: " or
** "FILE: " when the column or line is not known (a command-line override),
** nothing for a NULL node or one built in memory.  Every message about a
** configuration value starts this way, so editors and readers find it:
**     return fv_error_at(n, FV_ERR_CONFIG, "%s: expected a list", key); */
FV_API fv_status fv_error_at(const fv_config_node *n, fv_status code, const char *fmt, ...)
	FV_PRINTF(3, 4);

/* Typed reads with YAML 1.2 core-schema rules (true/false/True/False,
** ints with sign, floats incl. 1e-3, .inf, .nan).  On mismatch: FV_ERR_CONFIG
** with "FILE:LINE:COLUMN: KEY: expected an integer, got 'abc'". */
FV_API fv_status fv_node_to_bool(const fv_config_node *n, bool *out);
FV_API fv_status fv_node_to_int(const fv_config_node *n, int64_t *out);
FV_API fv_status fv_node_to_double(const fv_config_node *n, double *out);
FV_API bool fv_node_is_null(const fv_config_node *n);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_CONFIG_H */
