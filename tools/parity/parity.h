/*
** parity.h: checking fovea against openretina's reference cases.
**
** A case is a pair NAME.yaml + NAME.safetensors (format: tests/golden/README.md):
** the component's openretina `target` and constructor `kwargs`, its
** state_dict (`param.*`), inputs, and the expected outputs, gradients and
** buffers computed by openretina in float64.  fv_parity_run() builds the
** component through the registry, loads the state, runs what the case
** describes (forward, regularizer, backward of its L), and compares every
** stored output, gradient and buffer within the case's tolerance.  A stored
** tensor that fovea cannot check makes the case fail: nothing is skipped.
*/
#ifndef FOVEA_PARITY_H
#define FOVEA_PARITY_H

#include <stdio.h>

#include "fovea/fovea.h"
#include "fovea/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Run one case.  `path` is the case's .yaml, its .safetensors or the path
** without extension.  Writes one line per compared tensor (max abs and max
** relative error, PASS/FAIL) and a last line "PASS NAME" or
** "FAIL NAME: WHY" to `out` (may be NULL).  Returns FV_OK when the case ran
** and passed; otherwise an error whose message is the WHY. */
fv_status fv_parity_run(fv_registry *reg, const char *path, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_PARITY_H */
