/*
** upsample.h: openretina's upsample_traces in pieces (upsample.c).
*/
#ifndef FOVEA_PLUGINS_HOEFLING_UPSAMPLE_H
#define FOVEA_PLUGINS_HOEFLING_UPSAMPLE_H

#include <stdint.h>

#include <fovea/tensor.h>

/* numpy's pairwise sum of n doubles. */
double hoef_pairwise_sum(const double *a, int64_t n);
/* _upsample_triggertimes for stim_id 1, 2 or 5: a malloc'd array of *n_out
** times, NULL for another stim_id (or out of memory). */
double *hoef_upsampled_times(int stim_id, const fv_real *triggers, int64_t n_triggers,
                             int64_t *n_out);
/* numpy.interp(x, xp, fp) into out (n values; xp, fp m >= 1 values). */
void hoef_interp(const double *x, int64_t n, const double *xp, const double *fp, int64_t m,
                 double *out);
/* numpy.std of n values (ddof 0); scratch holds n doubles. */
double hoef_std(const double *a, int64_t n, double *scratch);

#endif /* FOVEA_PLUGINS_HOEFLING_UPSAMPLE_H */
