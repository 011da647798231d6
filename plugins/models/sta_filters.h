/*
** sta_filters.h: the frozen filters of openretina's spatial-contrast models
** from a spike-triggered average (openretina.utils.sta_processing), shared
** by SingleCellSpatialContrast and SpatialContrastCoreReadout (compiled
** into each plugin).
**
** load: STA (frames, height, width) from a .npy file, optionally flipped
** along the width, cropped symmetrically to the stimulus' (height, width).
** extract:
**   - peak frame = argmax over frames of the spatial variance;
**   - a rotated 2-D Gaussian (centre, sigmas, angle, amplitude) fitted to
**     it by bounded least squares from openretina's start point;
**   - spatial filter = the Gaussian with |amplitude|, zero outside
**     sigma_contour normalised elliptic radii, divided by its L2 norm;
**   - temporal filter = the STA at the rounded centre pixel, its last
**     temporal_crop_frames frames, divided by its L2 norm.
** A non-finite STA gives zero filters; a fit that cannot start (bounds or
** start point infeasible) or does not converge keeps the start point, as
** openretina's fallback does.
*/
#ifndef FOVEA_PLUGIN_STA_FILTERS_H
#define FOVEA_PLUGIN_STA_FILTERS_H

#include <fovea/plugin.h>

typedef struct sta_fit {
	double center_x, center_y, sigma_x, sigma_y, theta, amplitude;
	bool success;
} sta_fit;

typedef struct sta_filters {
	int64_t h, w, frames; /* spatial filter (h, w); temporal filter (frames) */
	double *spatial;
	double *temporal;
	sta_fit fit;
} sta_filters;

/* Extract from `sta` (frames, h, w), row-major. temporal_crop may be
** FV_NONE_INT (all frames). */
fv_status sta_extract(const char *who, const double *sta, int64_t frames, int64_t h, int64_t w,
                      int64_t temporal_crop, double sigma_contour, sta_filters *out);

/* Load DIR/FILE and extract, cropping the STA to (target_h, target_w). */
fv_status sta_load_filters(const char *who, const char *dir, const char *file, bool flip,
                           int64_t target_h, int64_t target_w, int64_t temporal_crop,
                           double sigma_contour, sta_filters *out);

void sta_filters_free(sta_filters *f);

#endif
