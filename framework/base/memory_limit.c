/*
** memory_limit.c: how much memory one job may use, what it uses, and the
** check that refuses a request above the limit before anything is
** allocated.
**
** Sizes inside their option ranges can still be more than any machine holds
** (hidden_channels=[1000000000], an MEI of 100000000 frames).  Linux
** overcommits, so calloc of such a tensor often "succeeds" and the process
** is killed later by the OOM killer, or fills gigabytes of random numbers
** for minutes first.  Every large request (a tensor, the growth of a step's
** arena, a model's parameters with their optimizer state, an in-silico
** optimisation as a whole) is therefore checked here first: what the job
** already holds plus the request, against the smaller of a limit the user
** set (fv_set_max_memory, FOVEA_MAX_MEMORY, `fovea ... --max-memory`) and
** what the machine had available.
**
** "What the job holds" is the data of its persistent tensors and its
** arenas' chunks (fv__memory_charge/release, by malloc_usable_size so that
** a release always matches its charge).  "What the machine had" is read
** from /proc/meminfo once, at the first check, and the job's holding then
** added: pages calloc handed out but nobody has touched yet do not lower
** MemAvailable, so reading it again after each allocation would let three
** untouched 4 GiB tensors through on a 16 GiB machine.  A later reading
** that is lower (another process took memory) lowers the budget.
*/
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base_internal.h"

/* The machine's memory is read again only for requests from this size on
** (to notice another process taking memory); smaller ones are checked
** against the last reading, since reading /proc/meminfo for each small
** tensor would cost more than the tensor. */
#define REREAD_FROM ((double)(64u << 20))

static _Atomic size_t explicit_limit; /* fv_set_max_memory(); 0 = none */
static _Atomic size_t in_use;         /* bytes of tensor data and arena chunks */
static _Atomic size_t reserved;       /* fv__memory_reserve() */
static _Atomic double machine_budget; /* first MemAvailable + in_use then; 0 = not read */

/* fv_parse_size without the message. */
static bool parse_size(const char *text, size_t *out)
{
	const char *p = text;
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p) && *p != '.')
		return false;
	errno = 0;
	char *end;
	double v = strtod(p, &end);
	if (errno != 0 || end == p || !isfinite(v) || v <= 0)
		return false;
	double unit = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': unit = 0x1p10; end++; break;
	case 'M': unit = 0x1p20; end++; break;
	case 'G': unit = 0x1p30; end++; break;
	case 'T': unit = 0x1p40; end++; break;
	default: break;
	}
	if (unit > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	/* below 2^63 also keeps the cast in range on every size_t we build for */
	if (*end != '\0' || v * unit >= 0x1p63 || v * unit < 1)
		return false;
	*out = (size_t)(v * unit);
	return true;
}

fv_status fv_parse_size(const char *text, size_t *out)
{
	if (text == NULL || out == NULL)
		return fv_error(FV_ERR_ARG, "fv_parse_size: NULL argument");
	if (!parse_size(text, out))
		return fv_error(FV_ERR_ARG, "'%s' is not a memory size (a positive number of bytes, "
		                "or with a unit: 512M, 4G, 1.5GiB)", text);
	return FV_OK;
}

fv_status fv_set_max_memory(size_t bytes)
{
	atomic_store(&explicit_limit, bytes);
	return FV_OK;
}

void fv__memory_charge(const void *p)
{
	if (p != NULL)
		atomic_fetch_add(&in_use, malloc_usable_size((void *)p));
}

void fv__memory_release(const void *p)
{
	if (p != NULL)
		atomic_fetch_sub(&in_use, malloc_usable_size((void *)p));
}

void fv__memory_reserve(size_t bytes)
{
	atomic_fetch_add(&reserved, bytes);
}

void fv__memory_unreserve(size_t bytes)
{
	atomic_fetch_sub(&reserved, bytes);
}

/* What the job holds, or will for what it holds. */
static double held(void)
{
	return (double)atomic_load(&in_use) + (double)atomic_load(&reserved);
}

size_t fv_memory_in_use(void)
{
	return atomic_load(&in_use);
}

/* The limit the user asked for: fv_set_max_memory(), else $FOVEA_MAX_MEMORY
** (0 = none); false when the variable is malformed. */
static bool user_limit(size_t *out)
{
	*out = atomic_load(&explicit_limit);
	const char *env = getenv("FOVEA_MAX_MEMORY");
	if (*out != 0 || env == NULL || env[0] == '\0')
		return true;
	return parse_size(env, out);
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

/* What the machine can give this job in all, 0 when unknown (see the top);
** `reread`: read /proc/meminfo again rather than trust the last reading. */
static double machine(bool reread)
{
	double first = atomic_load(&machine_budget);
	if (first != 0 && !reread)
		return first;
	double now = (double)fv_memory_available();
	if (now == 0)
		return first;
	now += (double)atomic_load(&in_use); /* reserved memory is still in MemAvailable */
	if (first == 0 || now < first)
		atomic_store(&machine_budget, now);
	return first == 0 || now < first ? now : first;
}

/* "44.7 GiB", or "100.0 MiB" below a GiB. */
typedef struct size_text {
	char s[32];
} size_text;

static size_text human(double bytes)
{
	size_text t;
	if (bytes >= 0x1p30)
		snprintf(t.s, sizeof t.s, "%.1f GiB", bytes / 0x1p30);
	else
		snprintf(t.s, sizeof t.s, "%.1f MiB", bytes / 0x1p20);
	return t;
}

/* The budget `total` bytes exceed: the user's limit (*user set) or the
** machine's; 0 when they fit. */
static double exceeded(size_t user, double total, bool reread, bool *by_user)
{
	*by_user = user != 0 && total > (double)user;
	if (*by_user)
		return (double)user;
	double avail = machine(reread);
	return avail != 0 && total > avail ? avail : 0;
}

fv_status fv__memory_check(double bytes, const char *what)
{
	if (!(bytes >= 0)) /* a NaN is for the caller's own checks */
		return FV_OK;
	size_t user;
	if (!user_limit(&user)) {
		fv_parse_size(getenv("FOVEA_MAX_MEMORY"), &user);
		return fv_error(FV_ERR_ARG, "FOVEA_MAX_MEMORY: %s", fv_errmsg());
	}
	double have = held(), total = have + bytes;
	bool by_user;
	double budget = exceeded(user, total, bytes >= REREAD_FROM, &by_user);
	if (budget == 0)
		return FV_OK;
	char with[128] = ",";
	if (have >= 0x1p20)
		snprintf(with, sizeof with, "; with the %s the job holds or has reserved that is %s,",
		         human(have).s, human(total).s);
	if (by_user)
		return fv_error(FV_ERR_NOMEM, "%s needs %s%s more than the limit of %s (--max-memory "
		                "or FOVEA_MAX_MEMORY)", what, human(bytes).s, with, human(budget).s);
	return fv_error(FV_ERR_NOMEM, "%s needs %s%s more than the %s this machine has available",
	                what, human(bytes).s, with, human(budget).s);
}

bool fv__memory_fits(double bytes)
{
	size_t user;
	bool by_user;
	/* false for a malformed variable: fv__memory_check then reports it */
	return !(bytes >= 0) || (user_limit(&user) &&
	                         exceeded(user, held() + bytes, bytes >= REREAD_FROM, &by_user) == 0);
}
