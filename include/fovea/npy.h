/*
** npy.h: NumPy .npy files (format versions 1.0, 2.0, 3.0), the stimulus
** format of openretina's data directories and of fovea's outputs (MEIs,
** predictions).
**
** Reading accepts little-endian or native float32/float64, signed and
** unsigned integers and bool in C order, converting to fv_real.  The
** header is parsed with bounds: a truncated or malformed file is an
** FV_ERR_FORMAT naming the file and what is wrong.  Writing is atomic
** (temporary file, fsync, rename).
*/
#ifndef FOVEA_NPY_H
#define FOVEA_NPY_H

#include "fovea.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A new persistent tensor with the array (ndim <= FV_MAX_DIMS). */
FV_API fv_tensor *fv_npy_load(const char *path);
/* Write float32 ('<f4'), C order. */
FV_API fv_status fv_npy_save(const char *path, const fv_tensor *t);
FV_API fv_status fv_npy_save_data(const char *path, int ndim, const int64_t *shape,
                                  const fv_real *data);
/* Write float64 ('<f8'), C order, as numpy.save does for a float64 array
** (openretina's own data sets store their stimuli so). */
FV_API fv_status fv_npy_save_f64(const char *path, int ndim, const int64_t *shape,
                                 const double *data);

#ifdef __cplusplus
}
#endif

#endif /* FOVEA_NPY_H */
