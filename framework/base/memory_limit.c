/*
** memory_limit.c: how much memory one job may use, and the check that
** refuses a request above it before anything is allocated.
**
** Sizes inside their option ranges can still be more than any machine holds
** (hidden_channels=[1000000000], an MEI of 100000000 frames).  Linux
** overcommits, so calloc of such a tensor often "succeeds" and the process
** is killed later by the OOM killer, or swaps for hours.  Every large
** request (a tensor, the growth of a step's arena, a model's parameters with
** their optimizer state) is therefore checked here first, against the
** smaller of a limit the user set (fv_set_max_memory, FOVEA_MAX_MEMORY,
** `fovea ... --max-memory`) and what the machine has available now.
*/
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base_internal.h"

/* Requests below this are not checked: they cannot matter, and reading
** /proc/meminfo for each small tensor would cost more than the tensor. */
#define CHECK_FROM ((double)(64u << 20))

static size_t explicit_limit; /* fv_set_max_memory(); 0 = none */

fv_status fv_parse_size(const char *text, size_t *out)
{
	if (text == NULL || out == NULL)
		return fv_error(FV_ERR_ARG, "fv_parse_size: NULL argument");
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p) && *p != '.')
		goto bad;
	errno = 0;
	char *end;
	double v = strtod(p, &end);
	if (errno != 0 || end == p || !isfinite(v) || v <= 0)
		goto bad;
	double unit = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': unit = 0x1p10; end++; break;
	case 'M': unit = 0x1p20; end++; break;
	case 'G': unit = 0x1p30; end++; break;
	case 'T': unit = 0x1p40; end++; break;
	case 'B': break;
	case '\0': break;
	default: goto bad;
	}
	if (unit > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v * unit >= 0x1p63)
		goto bad;
	*out = (size_t)(v * unit);
	if (*out == 0)
		goto bad;
	return FV_OK;
bad:
	return fv_error(FV_ERR_ARG, "'%s' is not a memory size (a positive number of bytes, or "
	                "with a unit: 512M, 4G, 1.5GiB)", text);
}

fv_status fv_set_max_memory(size_t bytes)
{
	explicit_limit = bytes;
	return FV_OK;
}

/* The limit the user asked for: fv_set_max_memory(), else $FOVEA_MAX_MEMORY
** (0 = none; a malformed variable is reported by the check that reads it). */
static fv_status user_limit(size_t *out)
{
	*out = explicit_limit;
	const char *env = getenv("FOVEA_MAX_MEMORY");
	if (*out != 0 || env == NULL || env[0] == '\0')
		return FV_OK;
	if (fv_parse_size(env, out) != FV_OK)
		return fv_error(FV_ERR_ARG, "FOVEA_MAX_MEMORY: %s", fv_errmsg());
	return FV_OK;
}

size_t fv_memory_available(void)
{
	/* MemAvailable counts reclaimable caches, which is what a new job can
	** really use; physical memory is the fallback elsewhere */
	FILE *f = fopen("/proc/meminfo", "r");
	if (f != NULL) {
		char line[256];
		unsigned long long kib;
		while (fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
				fclose(f);
				return (size_t)kib * 1024;
			}
		fclose(f);
	}
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && page > 0)
		return (size_t)pages * (size_t)page;
	return 0;
}

static double gib(double bytes)
{
	return bytes / 0x1p30;
}

fv_status fv__memory_check(double bytes, const char *what)
{
	if (!(bytes >= CHECK_FROM)) /* also lets a NaN through to the caller's own checks */
		return FV_OK;
	size_t user;
	if (user_limit(&user) != FV_OK)
		return fv_errcode();
	size_t avail = fv_memory_available();
	if (user != 0 && bytes > (double)user)
		return fv_error(FV_ERR_NOMEM, "%s needs %.1f GiB, more than the limit of %.1f GiB "
		                "(--max-memory or FOVEA_MAX_MEMORY)", what, gib(bytes), gib((double)user));
	if (avail != 0 && bytes > (double)avail)
		return fv_error(FV_ERR_NOMEM, "%s needs %.1f GiB, more than the %.1f GiB this machine "
		                "has available", what, gib(bytes), gib((double)avail));
	return FV_OK;
}
