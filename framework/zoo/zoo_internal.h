/*
** zoo_internal.h: what the zoo's files share: the download's progress bar
** (zoo_progress.c), used by the libcurl transfer (zoo_download.c).
*/
#ifndef FOVEA_ZOO_INTERNAL_H
#define FOVEA_ZOO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fovea/zoo.h"
#include "base/base_internal.h"

typedef struct fv__progress {
	FILE *out;         /* NULL: no bar */
	const char *label;
	int64_t start;     /* bytes already there when the transfer began (a resume) */
	double t0, last;   /* monotonic seconds: the start, the last redraw */
	int64_t shown;     /* the bytes the bar shows */
	bool drawn;
} fv__progress;

/* A bar on o->out (stderr by default) when o asks for one or it is a
** terminal; otherwise p->out is NULL and the calls below do nothing. */
void fv__progress_init(fv__progress *p, const fv_download_options *o, const char *label,
                       int64_t start);
/* `done` of `total` bytes of the whole file (total < 0: unknown); redrawn
** at most ten times a second. */
void fv__progress_update(fv__progress *p, int64_t done, int64_t total);
/* Ends the bar's line, if one was drawn. */
void fv__progress_end(fv__progress *p);

#endif /* FOVEA_ZOO_INTERNAL_H */
