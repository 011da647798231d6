/*
** bench_data.c: the data task (--task data): reading a large synthetic data
** set and one training epoch of its batches, as fovea train reads them.
**
** The data set is written first into a temporary directory (removed after)
** or into --data-dir DIR (kept, and reused when it already holds session
** files), in a layout:
**   generic     fovea create-data's HDF5 layout; by default 10 sessions of
**               hoefling-size recordings: 150 neurons, 2 x 18 x 16 pixels,
**               16200 training frames (2 stimuli), a 750-frame test movie
**               of 10 trials; openretina's hoefling dataloader settings
**               (batch 64, chunks of 50, clips of 150, 15 validation clips);
**   openretina  `openretina create-data`'s layout at its own sizes
**               (--data-sessions only), with configs/dataloader's settings.
** Then, with the peak RSS reset (/proc/self/clear_refs) after writing:
**   open_s        opening the data (fv_data_open: reading, splitting);
**   first_s       from the start of opening to the first training batch;
**   epoch_s       to the end of the first training epoch (LongCycler);
**   peak_mib      the process's peak resident set since the reset (VmHWM);
**   base_mib      the resident set before opening;
**   batch_mib     one training batch's working set (input and target);
**   ratio         (peak - base) / batch: the memory reading takes in units
**                 of one batch (the model's own memory is not part of this
**                 task: no model is built).
*/
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "fovea/data.h"

void bench_data_defaults(bench_data_opts *d)
{
	*d = (bench_data_opts){.layout = "generic", .sessions = 10, .neurons = 150,
	                       .frames = 16200, .test_frames = 750, .channels = 2, .height = 18,
	                       .width = 16};
}

static int parse_size(const char *opt, const char *v, int64_t lo, int64_t *out)
{
	char *end;
	long long x = v != NULL ? strtoll(v, &end, 10) : 0;
	if (v == NULL || *v == '\0' || *end != '\0' || x < lo || x > (1LL << 40)) {
		fprintf(stderr, "fovea-bench: %s needs an integer >= %lld; got '%s'\n", opt,
		        (long long)lo, v ? v : "");
		return 1;
	}
	*out = x;
	return 0;
}

int bench_data_option(bench_opts *o, const char *opt, const char *v)
{
	bench_data_opts *d = &o->data_opt;
	static const struct {
		const char *name;
		size_t offset;
		int64_t lo;
	} sizes[] = {
		{"--data-sessions", offsetof(bench_data_opts, sessions), 1},
		{"--data-neurons", offsetof(bench_data_opts, neurons), 1},
		{"--data-frames", offsetof(bench_data_opts, frames), 2},
		{"--data-test-frames", offsetof(bench_data_opts, test_frames), 1},
		{"--data-channels", offsetof(bench_data_opts, channels), 1},
		{"--data-height", offsetof(bench_data_opts, height), 5},
		{"--data-width", offsetof(bench_data_opts, width), 5},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		if (strcmp(opt, sizes[i].name) == 0)
			return parse_size(opt, v, sizes[i].lo, (int64_t *)((char *)d + sizes[i].offset));
	if (strcmp(opt, "--data-dir") == 0) {
		d->dir = v;
		return v == NULL;
	}
	if (strcmp(opt, "--data-layout") == 0) {
		if (v == NULL || (strcmp(v, "generic") != 0 && strcmp(v, "openretina") != 0)) {
			fprintf(stderr, "fovea-bench: --data-layout: generic or openretina, not '%s'\n",
			        v ? v : "");
			return 1;
		}
		d->layout = v;
		return 0;
	}
	return -1;
}

/* ---- the data set ------------------------------------------------------------------ */

static bool is_openretina(const bench_data_opts *d)
{
	return strcmp(d->layout, "openretina") == 0;
}

static fv_status write_data(const bench_data_opts *d, const char *dir)
{
	if (is_openretina(d)) {
		fv_openretina_data_options o;
		fv_openretina_data_options_default(&o);
		o.num_sessions = (int)d->sessions;
		o.num_colors = d->channels;
		int64_t *neurons = calloc((size_t)d->sessions, sizeof *neurons);
		fv_status rc = neurons != NULL ? fv_openretina_data_write(dir, &o, neurons)
		                               : fv_error(FV_ERR_NOMEM, "out of memory");
		free(neurons);
		return rc;
	}
	fv_synthetic_options o;
	fv_synthetic_options_default(&o);
	o.n_sessions = (int)d->sessions;
	o.n_neurons = &d->neurons;
	o.n_n_neurons = 1;
	o.channels = d->channels;
	o.height = d->height;
	o.width = d->width;
	o.n_train_stimuli = 2;
	o.train_frames = (d->frames + 1) / 2;
	o.test_frames = d->test_frames;
	return fv_synthetic_write(dir, &o);
}

/* Dataloader settings of the layout's own configs. */
static void open_options(const bench_data_opts *d, const char *dir, fv_data_options *o)
{
	static const char *const generic_tests[] = {"test"};
	static const char *const openretina_tests[] = {"random_noise_2", "random_noise_3"};
	fv_data_options_default(o);
	o->data_dir = dir;
	if (is_openretina(d)) {
		o->test_names = openretina_tests;
		o->n_test_names = 2;
		o->batch_size = 64;
		o->clip_length = 75;
		o->num_val_clips = 20;
	} else {
		o->test_names = generic_tests;
		o->n_test_names = 1;
		o->batch_size = 64;
		o->clip_length = 150;
		o->num_val_clips = 15;
	}
	o->train_chunk_size = 50;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int64_t disk_bytes_total;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F)
		disk_bytes_total += st->st_size;
	return 0;
}

/* ---- memory --------------------------------------------------------------------------- */

/* A /proc/self/status field in MiB (VmRSS, VmHWM); 0 where unknown. */
static double status_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kib = 0;
	size_t n = strlen(field);
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kib = strtod(line + n + 1, NULL);
	if (f != NULL)
		fclose(f);
	return kib / 1024.0;
}

/* Start a new peak: writing 5 to clear_refs resets VmHWM to VmRSS. */
static void reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

/* ---- the measurement --------------------------------------------------------------------- */

typedef struct data_result {
	double open_s, first_s, epoch_s, peak_mib, base_mib, batch_mib, disk_mib;
	int64_t batches;
} data_result;

static int measure(const bench_data_opts *d, const char *dir, data_result *r)
{
	fv_data_options o;
	open_options(d, dir, &o);
	r->base_mib = status_mib("VmRSS");
	reset_peak();
	clock_pair t0 = bench_now();
	fv_data *data = NULL;
	if (fv_data_open(&o, &data) != FV_OK)
		return bench_fail(dir, fv_errmsg());
	r->open_s = (bench_now().wall - t0.wall) / 1e3;
	fv_batch_iter *it = fv_data_train_batches(data, 42);
	if (it == NULL) {
		fv_data_close(data);
		return bench_fail("batches", fv_errmsg());
	}
	fv_batch b;
	double batch_bytes = 0;
	while (fv_batch_next(it, &b)) {
		double bytes = (double)(b.input->numel + b.target->numel) * sizeof(fv_real);
		if (r->batches++ == 0)
			r->first_s = (bench_now().wall - t0.wall) / 1e3;
		if (bytes > batch_bytes)
			batch_bytes = bytes;
	}
	r->epoch_s = (bench_now().wall - t0.wall) / 1e3;
	r->peak_mib = status_mib("VmHWM");
	r->batch_mib = batch_bytes / (1024.0 * 1024.0);
	fv_batch_iter_free(it);
	fv_data_close(data);
	return 0;
}

static void report(const bench_opts *o, const bench_data_opts *d, const data_result *r)
{
	double ratio = r->batch_mib > 0 ? (r->peak_mib - r->base_mib) / r->batch_mib : 0;
	if (o->json) {
		printf("{\"task\": \"data\", \"layout\": \"%s\", \"sessions\": %lld, \"threads\": %d, "
		       "\"disk_mib\": %.1f, \"open_s\": %.3f, \"first_batch_s\": %.3f, "
		       "\"epoch_s\": %.3f, \"batches\": %lld, \"peak_rss_mib\": %.1f, "
		       "\"base_rss_mib\": %.1f, \"batch_mib\": %.2f, \"ratio\": %.2f}\n",
		       d->layout, (long long)d->sessions, o->threads, r->disk_mib, r->open_s,
		       r->first_s, r->epoch_s, (long long)r->batches, r->peak_mib, r->base_mib,
		       r->batch_mib, ratio);
		return;
	}
	printf("data %s: %lld sessions, %.0f MiB on disk: open %.2f s, first batch %.2f s, "
	       "epoch %.2f s (%lld batches); peak RSS %.0f MiB (%.0f before opening), one batch "
	       "%.1f MiB: (peak - before) / batch = %.1f\n",
	       d->layout, (long long)d->sessions, r->disk_mib, r->open_s, r->first_s, r->epoch_s,
	       (long long)r->batches, r->peak_mib, r->base_mib, r->batch_mib, ratio);
}

/* Whether DIR already holds session files (then it is read as it is). */
static bool has_sessions(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/session_0.hdf5", dir);
	struct stat st;
	return stat(path, &st) == 0;
}

int bench_run_data(const bench_opts *o)
{
	const bench_data_opts *d = &o->data_opt;
	char tmp[4096];
	const char *dir = d->dir;
	if (dir == NULL) {
		const char *base = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/fovea-bench-data-XXXXXX", base && *base ? base : "/tmp");
		if (mkdtemp(tmp) == NULL)
			return bench_fail(tmp, strerror(errno));
		dir = tmp;
	}
	int rc = 0;
	if ((d->dir == NULL || !has_sessions(dir)) && write_data(d, dir) != FV_OK)
		rc = bench_fail(dir, fv_errmsg());
	data_result r = {0};
	disk_bytes_total = 0;
	if (rc == 0 && nftw(dir, add_size, 16, FTW_PHYS) == 0)
		r.disk_mib = (double)disk_bytes_total / (1024.0 * 1024.0);
	if (rc == 0)
		rc = measure(d, dir, &r);
	if (rc == 0)
		report(o, d, &r);
	if (d->dir == NULL)
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
