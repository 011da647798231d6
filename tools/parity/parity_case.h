/*
** parity_case.h: a loaded reference case and the comparisons made on it,
** shared by parity_case.c (loading, comparing, bookkeeping) and parity.c
** (the flows: module, multi-session, loss, regularizer).
*/
#ifndef FOVEA_PARITY_CASE_H
#define FOVEA_PARITY_CASE_H

#include <stdbool.h>
#include <stdio.h>

#include "fovea/config.h"
#include "parity.h"
#include "fovea/plugin.h"
#include "fovea/safetensors.h"

typedef struct fv_pcase {
	char name[256];
	char yaml_path[1024];
	char st_path[1024];
	fv_config *yaml;
	const fv_config_node *root;
	fv_safetensors *st;
	bool *checked;           /* per safetensors entry: compared by fovea */
	double rtol, atol;
	bool exact;
	FILE *out;
	int n_failed;
	char why[512];           /* first failure */
	char sta_dir[64];        /* the STAs written for the case (parity_kwargs.c), or "" */
} fv_pcase;

fv_status fv__pcase_open(fv_pcase *pc, const char *path, FILE *out);
void fv__pcase_close(fv_pcase *pc);

/* Record a failure (the first one becomes the case's reason). */
void fv__pcase_fail(fv_pcase *pc, const char *fmt, ...) FV_PRINTF(2, 3);

/* Compare a fovea tensor with the stored one; prints a line. Missing
** stored tensor: a failure. */
void fv__pcase_compare(fv_pcase *pc, const char *name, const fv_tensor *t);
/* Compare if stored; returns whether it was. */
bool fv__pcase_compare_if_present(fv_pcase *pc, const char *name, const fv_tensor *t);

/* A stored tensor as a context tensor (or NULL, with a failure recorded). */
fv_tensor *fv__pcase_input(fv_pcase *pc, fv_ctx *ctx, const char *name, bool requires_grad);
bool fv__pcase_has(const fv_pcase *pc, const char *name);
/* Whether some stored tensor's name starts with `prefix`. */
bool fv__pcase_has_prefix(const fv_pcase *pc, const char *prefix);

/* Copy every param.* into the module; a tensor missing on either side fails. */
void fv__pcase_load_state(fv_pcase *pc, fv_module *m);

/* Fail for every stored output/grad/buffer tensor nobody compared. */
void fv__pcase_check_all_compared(fv_pcase *pc);

/* The parity flows of the in-silico reference cases (insilico_parity.c),
** for cases with a `model` or `stops_after_iterations` key; they record
** their comparisons and failures in the case. */
void fv__parity_insilico(fv_pcase *pc, fv_registry *reg);

/* The case's kwargs, with the stored tensors they name ("param.X") written
** in as nested lists (parity_kwargs.c); *derived gets the config to free
** after use, or NULL when the kwargs are used as they are. */
const fv_config_node *fv__pcase_kwargs(fv_pcase *pc, fv_config **derived);
/* Remove the temporary STA directory fv__pcase_kwargs() may have made. */
void fv__pcase_remove_stas(fv_pcase *pc);
/* The learning-rate scheduler cases (lr_parity.c), for cases storing
** output.lr: a trajectory of rates and parameters under the scheduler. */
void fv__parity_lr_schedule(fv_pcase *pc);

/* yaml helpers */
const fv_config_node *fv__pcase_get(const fv_pcase *pc, const char *path);

#endif
