/*
** zoo_progress.c: the progress bar of a model download, on stderr when it
** is a terminal (a log file gets no carriage returns):
**   hoefling_2024_low_res [##########..........]  48%  12.1/25.3 MiB  3.2 MiB/s
*/
#include <time.h>
#include <unistd.h>

#include "zoo/zoo_internal.h"

#define BAR_WIDTH 24
#define MIB (1024.0 * 1024.0)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fv__progress_init(fv__progress *p, const fv_download_options *o, const char *label,
                       int64_t start)
{
	FILE *out = o != NULL && o->out != NULL ? o->out : stderr;
	int want = o != NULL ? o->progress : -1;
	bool bar = want == 1 || (want < 0 && isatty(fileno(out)));
	*p = (fv__progress){.out = bar ? out : NULL, .label = label, .start = start,
	                    .t0 = now(), .last = -1.0};
}

static void draw(fv__progress *p, int64_t done, int64_t total, double t)
{
	double rate = t > p->t0 ? (double)(done - p->start) / (t - p->t0) : 0.0;
	char bar[BAR_WIDTH + 1];
	int filled = total > 0 ? (int)((double)BAR_WIDTH * (double)done / (double)total) : 0;
	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	if (total > 0)
		fprintf(p->out, "\r%s [%s] %3d%%  %.1f/%.1f MiB  %.1f MiB/s ", p->label, bar,
		        (int)(100.0 * (double)done / (double)total), (double)done / MIB,
		        (double)total / MIB, rate / MIB);
	else
		fprintf(p->out, "\r%s  %.1f MiB  %.1f MiB/s ", p->label, (double)done / MIB,
		        rate / MIB);
	fflush(p->out);
	p->drawn = true;
}

void fv__progress_update(fv__progress *p, int64_t done, int64_t total)
{
	if (p->out == NULL || (p->drawn && done == p->shown))
		return;
	double t = now();
	if (p->last >= 0.0 && t - p->last < 0.1 && done != total)
		return;
	p->last = t;
	p->shown = done;
	draw(p, done, total, t);
}

void fv__progress_end(fv__progress *p)
{
	if (p->out != NULL && p->drawn)
		fputc('\n', p->out);
	p->drawn = false;
}
