/*
** fuzz_data.c: libFuzzer target for a data directory in openretina's HDF5
** layout and the batches read from it.
**
** The input describes a directory rather than being one: a header of
** single bytes (sessions, movie shape, dtypes, which optional datasets
** exist, the loader's options; the layout is below and in
** make_data_seeds.py) and then a stream of values.  The target writes
** DIR/stimuli/{train_0,test}.npy and DIR/session_<k>.h5 with libhdf5
** (responses_<name> as 2-D or with a trials axis, optional stimulus_test,
** by_trial_test, session_info and an attribute), opens the directory with
** fv_data_open and reads every training, validation and test batch,
** touching every element (ASan catches a batch copied from outside a
** movie: issue 12 item 1).  A refusal must leave a message.
**
** Header bytes (each taken modulo its range; a missing byte reads 0):
**   0 sessions 1..3      1 channels 1..2     2 train frames 1..128
**   3 test frames 1..64  4 height 1..4       5 width 1..4
**   6 flags: 1 stimuli float64, 2 test movie inside the session file,
**            4 allow_over_boundaries, 8 expected shape given,
**            16 responses float32, 32 by_trial_test, 64 3-D
**            responses_test, 128 session_info and an attribute
**   7 batch 1..8  8 train_chunk_size 1..128  9 clip_length 1..64
**   10 num_val_clips 0..3  11 validation clip indices given 0..2, then
**   that many bytes (0..7)  then the seed byte
**   per session: neurons 1..4, trials 2..3, response frames (0: as the
**   movie, 1: one fewer, 2: one more, 3: as the movie)
** Values: one byte each, (b - 120) / 16 below 0xf0, else a special value
** (NaN, infinities, 0, +-1e30, ...); when the input is used up, a fixed
** varying sequence, so that a short input still makes a usable data set.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "fovea/data.h"
#include "fovea/fovea.h"
#include "fuzz_bytes.h"

typedef struct plan {
	int64_t sessions, channels, frames, test_frames, height, width;
	unsigned flags;
	fv_data_options o;
	int64_t clips[2];
} plan;

enum { F64_STIM = 1, TEST_IN_SESSION = 2, OVER_BOUNDARIES = 4, GIVE_SHAPE = 8,
       F32_RESP = 16, BY_TRIAL = 32, TRIALS_AXIS = 64, SESSION_INFO = 128 };

static char dir[256];

/* ---- writing the directory ------------------------------------------------------- */

static void write_npy(const char *path, int64_t c, int64_t t, int64_t h, int64_t w, bool f64,
                      cursor *cur)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		abort();
	char header[128];
	int len = snprintf(header, sizeof header, "{'descr': '<%s', 'fortran_order': False, "
	                   "'shape': (%lld, %lld, %lld, %lld), }", f64 ? "f8" : "f4", (long long)c,
	                   (long long)t, (long long)h, (long long)w);
	int total = 10 + len + 1, pad = (64 - total % 64) % 64;
	uint16_t hlen = (uint16_t)(len + pad + 1);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hlen & 0xff, f);
	fputc(hlen >> 8, f);
	fwrite(header, 1, (size_t)len, f);
	for (int i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
	for (int64_t i = 0; i < c * t * h * w; i++) {
		double v = value(cur);
		float s = (float)v;
		fwrite(f64 ? (const void *)&v : (const void *)&s, f64 ? 8 : 4, 1, f);
	}
	fclose(f);
}

static void write_dataset(hid_t file, const char *name, int ndim, const hsize_t *dims,
                          bool f32, cursor *cur)
{
	hsize_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= dims[i];
	double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
	if (v == NULL)
		abort();
	for (hsize_t i = 0; i < n; i++)
		v[i] = value(cur);
	hid_t space = H5Screate_simple(ndim, dims, NULL);
	hid_t ds = H5Dcreate2(file, name, f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space,
	                      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
		abort();
	H5Dclose(ds);
	H5Sclose(space);
	free(v);
}

static void write_info(hid_t file, cursor *cur)
{
	hid_t g = H5Gcreate2(file, "session_info", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t one = 1 + (hsize_t)pick(cur, 0, 3);
	write_dataset(g, "roi_ids", 1, &one, false, cur);
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(g, "note", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT);
	int note = (int)byte(cur);
	H5Awrite(a, H5T_NATIVE_INT, &note);
	H5Aclose(a);
	H5Sclose(space);
	H5Gclose(g);
}

static void write_session(const plan *pl, int64_t k, cursor *cur)
{
	int64_t n = pick(cur, 1, 4), trials = pick(cur, 2, 3), delta = pick(cur, 0, 3);
	int64_t frames = pl->frames + (delta == 1 ? -1 : delta == 2 ? 1 : 0);
	char path[320];
	snprintf(path, sizeof path, "%s/session_%lld.h5", dir, (long long)k);
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (f < 0)
		abort();
	bool f32 = pl->flags & F32_RESP;
	hsize_t train[2] = {(hsize_t)n, (hsize_t)(frames > 0 ? frames : 0)};
	write_dataset(f, "responses_train_0", 2, train, f32, cur);
	hsize_t test3[3] = {(hsize_t)trials, (hsize_t)n, (hsize_t)pl->test_frames};
	if (pl->flags & TRIALS_AXIS)
		write_dataset(f, "responses_test", 3, test3, f32, cur);
	else
		write_dataset(f, "responses_test", 2, test3 + 1, f32, cur);
	if (pl->flags & BY_TRIAL)
		write_dataset(f, "by_trial_test", 3, test3, f32, cur);
	if (pl->flags & TEST_IN_SESSION) {
		hsize_t movie[4] = {(hsize_t)pl->channels, (hsize_t)pl->test_frames,
		                    (hsize_t)pl->height, (hsize_t)pl->width};
		write_dataset(f, "stimulus_test", 4, movie, !(pl->flags & F64_STIM), cur);
	}
	if (pl->flags & SESSION_INFO)
		write_info(f, cur);
	H5Fclose(f);
}

/* Remove what the previous input wrote. */
static void clear_dir(void)
{
	char path[320];
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "%s/session_%d.h5", dir, k);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/stimuli/train_0.npy", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/stimuli/test.npy", dir);
	unlink(path);
}

static void remove_dir(void)
{
	char path[320];
	clear_dir();
	snprintf(path, sizeof path, "%s/stimuli", dir);
	rmdir(path);
	rmdir(dir);
}

static void read_plan(plan *pl, cursor *c)
{
	pl->sessions = pick(c, 1, 3);
	pl->channels = pick(c, 1, 2);
	pl->frames = pick(c, 1, 128);
	pl->test_frames = pick(c, 1, 64);
	pl->height = pick(c, 1, 4);
	pl->width = pick(c, 1, 4);
	pl->flags = byte(c);
	fv_data_options *o = &pl->o;
	fv_data_options_default(o);
	o->data_dir = dir;
	static const char *const test_names[] = {"test"};
	o->test_names = test_names;
	o->n_test_names = 1;
	o->allow_over_boundaries = pl->flags & OVER_BOUNDARIES;
	if (pl->flags & GIVE_SHAPE) {
		o->color_channels = pl->channels;
		o->video_height = pl->height;
		o->video_width = pl->width;
	}
	o->batch_size = pick(c, 1, 8);
	o->train_chunk_size = pick(c, 1, 128);
	o->clip_length = pick(c, 1, 64);
	o->num_val_clips = pick(c, 0, 3);
	size_t n_clips = (size_t)pick(c, 0, 2);
	for (size_t i = 0; i < n_clips; i++)
		pl->clips[i] = pick(c, 0, 7);
	o->validation_clip_indices = n_clips ? pl->clips : NULL;
	o->n_validation_clip_indices = n_clips;
	o->seed = byte(c);
}

/* ---- reading it back -------------------------------------------------------------- */

static volatile double sink;

static void touch(const fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		sink = t->data[i];
}

static void read_all(fv_batch_iter *it)
{
	if (it == NULL) {
		if (fv_errmsg()[0] == '\0')
			abort();
		return;
	}
	fv_batch b;
	while (fv_batch_next(it, &b)) {
		const fv_tensor *x = b.input, *y = b.target;
		/* (B, C, T, H, W) against (B, T, N) */
		if (x->ndim != 5 || y->ndim != 3 || x->shape[0] != y->shape[0] ||
		    x->shape[2] != y->shape[1])
			abort();
		touch(x);
		touch(y);
	}
	fv_batch_iter_free(it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/fuzz_data.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		char stimuli[300];
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(stimuli, sizeof stimuli, "%s/stimuli", dir);
		mkdir(stimuli, 0777);
		atexit(remove_dir);
		H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	}
	clear_dir();
	cursor c = {.p = data, .n = size};
	plan pl;
	read_plan(&pl, &c);
	bool f64 = pl.flags & F64_STIM;
	char path[320];
	snprintf(path, sizeof path, "%s/stimuli/train_0.npy", dir);
	write_npy(path, pl.channels, pl.frames, pl.height, pl.width, f64, &c);
	if (!(pl.flags & TEST_IN_SESSION)) {
		snprintf(path, sizeof path, "%s/stimuli/test.npy", dir);
		write_npy(path, pl.channels, pl.test_frames, pl.height, pl.width, f64, &c);
	}
	for (int64_t k = 0; k < pl.sessions; k++)
		write_session(&pl, k, &c);

	fv_data *d = NULL;
	if (fv_data_open(&pl.o, &d) != FV_OK) {
		if (fv_errmsg()[0] == '\0')
			abort(); /* every refusal says why */
		return 0;
	}
	read_all(fv_data_train_batches(d, pl.o.seed));
	read_all(fv_data_validation_batches(d));
	read_all(fv_data_test_batches(d, "test"));
	fv_data_close(d);
	return 0;
}
