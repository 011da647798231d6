/*
** pickle_file.c: a plain pickle file (pickle.dump of data, as openretina
** stores its movie stimuli) read by the checkpoint's safe machine: the
** same allow-list and limits, no storages (a persistent id is refused).
*/
#include <stdio.h>
#include <stdlib.h>

#include "base/base_internal.h"
#include "fovea/ckpt.h"
#include "io/ckpt_internal.h"

static unsigned char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fv_error(FV_ERR_IO, "%s: cannot open the pickle file", path);
		return NULL;
	}
	long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	unsigned char *buf = size >= 0 && fseek(f, 0, SEEK_SET) == 0
	                             ? fv__malloc((size_t)size + 1) : NULL;
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fv_error(size < 0 ? FV_ERR_IO : FV_ERR_NOMEM, "%s: cannot read the pickle file", path);
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)size;
	return buf;
}

fv_ckpt *fv_pickle_open(const char *path, const fv_ckpt_limits *limits)
{
	if (path == NULL) {
		fv_error(FV_ERR_ARG, "fv_pickle_open: NULL path");
		return NULL;
	}
	size_t len = 0;
	unsigned char *buf = read_whole(path, &len);
	if (buf == NULL)
		return NULL;
	fv_ckpt *c = fv__ckpt_from_pickle(buf, len, path, NULL, limits);
	free(buf);
	return c;
}
