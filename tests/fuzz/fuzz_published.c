/*
** fuzz_published.c: libFuzzer target for the readers of the published
** HDF5 data sets (plugins/data/goldin_2022.c, maheswaranathan_2023.c and
** their published_h5.c).
**
** The input describes one session file rather than being one (libhdf5's
** own parser is not the subject): header bytes pick the reader, which
** keys exist, shapes, dtypes and how the test repeats are stored and
** named; the rest is a stream of values.  The target writes the file in
** the reader's layout with libhdf5, runs load_all_stimuli and
** load_all_responses and, when both succeed, opens the data set from
** their values.  A refusal must leave a message.
**
** Header bytes (each taken modulo its range; a missing byte reads 0):
**   0 reader: even goldin_2022, odd maheswaranathan_2023
**   1 keys: 1 train/stimulus, 2 test/stimulus, 4 train response, 8 test
**     response, 16 test/repeats, 32 responses float32, 64 a 4-D test
**     stimulus, 128 repeats stored per response type (maheswaranathan)
**   2 train frames 1..64   3 test frames 1..16   4 height 1..4
**   5 width 1..4   6 neurons 1..4   7 test neurons: 0 as train, else
**   one more   8 repeats 1..4   9 cell names: 0 cell<k>, 1 cell_<k>,
**   2 xcell0<k>, 3 a group named cell<k>   10 flags: 1 normalize_stimuli,
**   2 test responses the mean of the repeats   11 fr_normalization
**   0.1 + b / 16
** Values: as fuzz_bytes.h reads them.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "fovea/data_plugin.h"
#include "fovea/fovea.h"
#include "fuzz_bytes.h"

/* The readers' entry points, renamed when compiled for this target. */
const fv_plugin *goldin_plugin_entry(void);
const fv_plugin *mahe_plugin_entry(void);

static void put(hid_t f, const char *key, int ndim, const hsize_t *dims, const double *data,
                  bool f32)
{
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	hid_t space = H5Screate_simple(ndim, dims, NULL);
	hid_t type = f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
	hid_t ds = H5Dcreate2(f, key, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	if (ds >= 0) {
		H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
		H5Dclose(ds);
	}
	H5Sclose(space);
	H5Pclose(lcpl);
}

static double *values(cursor *c, size_t n)
{
	double *v = malloc((n ? n : 1) * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = value(c);
	return v;
}

typedef struct shape {
	unsigned keys, names, flags;
	hsize_t frames, test_frames, h, w, neurons, test_neurons, repeats;
	bool mahe;
} shape;

static void write_repeats(hid_t f, cursor *c, const shape *s, const char *rtype, double *test)
{
	hsize_t n = s->test_neurons, t = s->test_frames, r = s->repeats;
	double *all = values(c, (size_t)(n * r * t));
	if (s->flags & 2) /* the test responses: the mean of the repeats */
		for (hsize_t i = 0; i < n * t; i++) {
			double sum = 0;
			for (hsize_t k = 0; k < r; k++)
				sum += all[k * n * t + i];
			test[i] = sum / (double)r;
		}
	char key[128];
	if (s->mahe && (s->keys & 128)) {
		snprintf(key, sizeof key, "test/repeats/%s", rtype);
		put(f, key, 3, (hsize_t[]){r, n, t}, all, false);
	}
	double *cell = malloc((size_t)(r * t) * sizeof *cell);
	for (hsize_t i = 0; !(s->mahe && (s->keys & 128)) && i < n; i++) {
		static const char *const fmt[] = {"test/repeats/cell%u", "test/repeats/cell_%u",
		                                  "test/repeats/xcell0%u", "test/repeats/cell%u/x"};
		snprintf(key, sizeof key, fmt[s->names], (unsigned)i);
		for (hsize_t k = 0; k < r; k++)
			memcpy(cell + k * t, all + (k * n + i) * t, (size_t)t * sizeof *cell);
		put(f, key, 2, (hsize_t[]){r, t}, cell, s->keys & 32);
	}
	free(cell);
	free(all);
}

static void write_file(const char *path, cursor *c, const shape *s, const char *rtype)
{
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (f < 0)
		return;
	hsize_t hw = s->h * s->w, n = s->neurons;
	double *train = values(c, (size_t)(s->frames * hw));
	double *test = values(c, (size_t)(s->test_frames * hw * 2));
	if (s->keys & 1)
		put(f, "train/stimulus", 3, (hsize_t[]){s->frames, s->h, s->w}, train, false);
	if ((s->keys & 2) && (s->keys & 64))
		put(f, "test/stimulus", 4, (hsize_t[]){2, s->test_frames, s->h, s->w}, test, false);
	else if (s->keys & 2)
		put(f, "test/stimulus", 3, (hsize_t[]){s->test_frames, s->h, s->w}, test, false);
	double *resp = values(c, (size_t)(n * s->frames));
	double *tresp = values(c, (size_t)(s->test_neurons * s->test_frames));
	if (s->keys & 16)
		write_repeats(f, c, s, rtype, tresp);
	char key[128];
	snprintf(key, sizeof key, "train/response/%s", rtype);
	if (s->keys & 4)
		put(f, key, 2, (hsize_t[]){n, s->frames}, resp, s->keys & 32);
	snprintf(key, sizeof key, "test/response/%s", rtype);
	if (s->keys & 8)
		put(f, key, 2, (hsize_t[]){s->test_neurons, s->test_frames}, tresp, s->keys & 32);
	free(train);
	free(test);
	free(resp);
	free(tresp);
	H5Fclose(f);
}

static fv_status eval(fv_registry *reg, const char *yaml, fv_dvalue **out)
{
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "fuzz.yaml");
	if (cfg == NULL)
		abort();
	fv_status rc = fv_data_eval(reg, fv_config_root(cfg), out);
	fv_config_free(cfg);
	return rc;
}

static void check(fv_status rc)
{
	if (rc != FV_OK && fv_errmsg()[0] == '\0')
		abort(); /* a refusal without a message */
}

static void run(fv_registry *reg, const char *base, const shape *s, double fr)
{
	const char *set = s->mahe ? "maheswaranathan_2023" : "goldin_2022";
	const char *rtype = s->mahe ? "firing_rate_10ms" : "binned";
	char yaml[1024];
	fv_dvalue *movies = NULL, *responses = NULL;
	snprintf(yaml, sizeof yaml, "_target_: openretina.data_io.%s.stimuli.load_all_stimuli\n"
	         "base_data_path: %s\nnormalize_stimuli: %s\n", set, base,
	         (s->flags & 1) ? "true" : "false");
	fv_status rc = eval(reg, yaml, &movies);
	check(rc);
	snprintf(yaml, sizeof yaml, "_target_: openretina.data_io.%s.responses.load_all_responses\n"
	         "base_data_path: %s\nresponse_type: %s\nfr_normalization: %.17g\n", set, base,
	         rtype, fr);
	fv_status rc2 = eval(reg, yaml, &responses);
	check(rc2);
	if (rc == FV_OK && rc2 == FV_OK) {
		fv_data_options o;
		fv_data_options_default(&o);
		o.batch_size = 1;
		o.train_chunk_size = 1;
		o.clip_length = 1;
		o.num_val_clips = 1;
		fv_data *d = NULL;
		check(fv_data_open_values(&o, movies, responses, &d));
		fv_data_close(d);
	}
	fv_dvalue_free(movies);
	fv_dvalue_free(responses);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fv_registry *reg;
	static char dir[64];
	if (reg == NULL) {
		H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
		reg = fv_registry_new();
		if (reg == NULL || fv_registry_add(reg, goldin_plugin_entry(), "goldin") != FV_OK ||
		    fv_registry_add(reg, mahe_plugin_entry(), "mahe") != FV_OK)
			abort();
		snprintf(dir, sizeof dir, "/tmp/fuzz_published_%d", (int)getpid());
	}
	cursor c = {.p = data, .n = size, .fallback = 1};
	shape s = {.mahe = byte(&c) & 1, .keys = byte(&c)};
	s.frames = (hsize_t)pick(&c, 1, 64);
	s.test_frames = (hsize_t)pick(&c, 1, 16);
	s.h = (hsize_t)pick(&c, 1, 4);
	s.w = (hsize_t)pick(&c, 1, 4);
	s.neurons = (hsize_t)pick(&c, 1, 4);
	s.test_neurons = s.neurons + (byte(&c) ? 1 : 0);
	s.repeats = (hsize_t)pick(&c, 1, 4);
	s.names = (unsigned)pick(&c, 0, 3);
	s.flags = byte(&c);
	double fr = 0.1 + byte(&c) / 16.0;

	char folder[160], path[200];
	snprintf(folder, sizeof folder, "%s/ganglion_cell_data", dir);
	mkdir(dir, 0700);
	mkdir(folder, 0700);
	strcat(folder, "/s1");
	mkdir(folder, 0700);
	if (s.mahe)
		snprintf(path, sizeof path, "%s/naturalscene.h5", folder);
	else
		snprintf(path, sizeof path, "%s/mouse_1.h5", dir);
	write_file(path, &c, &s, s.mahe ? "firing_rate_10ms" : "binned");
	run(reg, dir, &s, fr);
	unlink(path);
	return 0;
}
