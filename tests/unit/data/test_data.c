/*
** test_data.c: reading a data directory in openretina's HDF5 layout (the
** layout `openretina create-data` writes: float64 stimuli/<name>.npy,
** session_<k>.hdf5 with responses_<name> and session_info), the
** train/validation/test split, LongCycler batches, data info, every error
** message, and `fovea create-data`'s synthetic data.
**
** The fixture encodes where every value came from: stimulus i frame t has
** value 1000 i + t (+ a quarter per channel and sixteenths per pixel), a
** response 1000 i + t + neuron / 8, so each expectation below is computed
** by hand from the clip arithmetic, independently of the reader.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "data/data_internal.h"
#include "fovea/config.h"
#include "fovea/data.h"
#include "fovea/npy.h"

#define C 2
#define H 3
#define W 4
#define CLIP 10
#define CHUNK 5
#define BATCH 3
#define NORM_MEAN 1.5
#define NORM_STD 2.0

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fovea-data-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void cleanup(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(data, .init = make_tmpdir, .fini = cleanup, .timeout = 120);

static const char *path_in(const char *name)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

/* ---- writing the fixture: float64 .npy and HDF5, by hand ------------------------- */

static void write_npy_f64(const char *path, int ndim, const int64_t *shape, const double *v)
{
	char dict[256];
	int n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
	int64_t numel = 1;
	for (int i = 0; i < ndim; i++) {
		n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i],
		              i + 1 < ndim ? " " : "");
		numel *= shape[i];
	}
	n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
	size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	unsigned short hl = (unsigned short)(total - 10);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hl & 0xff, f);
	fputc(hl >> 8, f);
	fwrite(dict, 1, (size_t)n, f);
	for (size_t i = 10 + (size_t)n; i < total - 1; i++)
		fputc(' ', f);
	fputc('\n', f);
	fwrite(v, sizeof(double), (size_t)numel, f);
	fclose(f);
}

static void h5_write(hid_t file, const char *name, hid_t type, int ndim, const int64_t *shape,
                     const void *data)
{
	hsize_t dims[6];
	for (int i = 0; i < ndim; i++)
		dims[i] = (hsize_t)shape[i];
	hid_t space = H5Screate_simple(ndim, dims, NULL);
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	hid_t ds = H5Dcreate2(file, name, type == H5T_NATIVE_FLOAT ? H5T_IEEE_F32LE
	                                  : type == H5T_NATIVE_INT64 ? H5T_STD_I64LE
	                                                             : H5T_IEEE_F64LE,
	                      space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(ds, 0, "creating %s", name);
	cr_assert_geq(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
	H5Dclose(ds);
	H5Pclose(lcpl);
	H5Sclose(space);
}

static void h5_write_string(hid_t file, const char *name, const char *text)
{
	hid_t type = H5Tcopy(H5T_C_S1);
	H5Tset_size(type, strlen(text));
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	hid_t ds = H5Dcreate2(file, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(ds, 0);
	H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, text);
	H5Dclose(ds);
	H5Pclose(lcpl);
	H5Sclose(space);
	H5Tclose(type);
}

/* The fixture's values, before normalisation. */
static double pixel_part(int64_t c, int64_t y, int64_t x)
{
	return 0.25 * (double)c + 0.0625 * (double)((y * W + x) % 4);
}

static double *movie_values(double base, int64_t frames)
{
	double *v = malloc((size_t)(C * frames * H * W) * sizeof *v);
	for (int64_t c = 0; c < C; c++)
		for (int64_t t = 0; t < frames; t++)
			for (int64_t y = 0; y < H; y++)
				for (int64_t x = 0; x < W; x++)
					v[((c * frames + t) * H + y) * W + x] = base + (double)t + pixel_part(c, y, x);
	return v;
}

static void write_stimulus(const char *name, double base, int64_t frames)
{
	char path[512];
	snprintf(path, sizeof path, "%s/stimuli/%s.npy", tmpdir, name);
	int64_t shape[4] = {C, frames, H, W};
	double *v = movie_values(base, frames);
	write_npy_f64(path, 4, shape, v);
	free(v);
}

/* responses (neurons, frames): base + t + n / 8 */
static void write_responses(hid_t file, const char *key, double base, int64_t neurons,
                            int64_t frames)
{
	double *v = malloc((size_t)(neurons * frames) * sizeof *v);
	for (int64_t n = 0; n < neurons; n++)
		for (int64_t t = 0; t < frames; t++)
			v[n * frames + t] = base + (double)t + (double)n / 8.0;
	int64_t shape[2] = {neurons, frames};
	h5_write(file, key, H5T_NATIVE_DOUBLE, 2, shape, v);
	free(v);
}

/* (trials, neurons, frames): base + t + n / 8 + (k - 1) * step */
static void write_trials(hid_t file, const char *key, double base, int64_t trials,
                         int64_t neurons, int64_t frames, double step)
{
	double *v = malloc((size_t)(trials * neurons * frames) * sizeof *v);
	for (int64_t k = 0; k < trials; k++)
		for (int64_t n = 0; n < neurons; n++)
			for (int64_t t = 0; t < frames; t++)
				v[(k * neurons + n) * frames + t] =
				        base + (double)t + (double)n / 8.0 + (double)(k - 1) * step;
	int64_t shape[3] = {trials, neurons, frames};
	h5_write(file, key, H5T_NATIVE_DOUBLE, 3, shape, v);
	free(v);
}

static hid_t h5_create(const char *name)
{
	hid_t f = H5Fcreate(path_in(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	cr_assert_geq(f, 0);
	return f;
}

/*
** session_0: 3 neurons; random_noise_0 (40 frames) and random_noise_1 (30)
**            for training, random_noise_2 (20) as test with
**            by_trial_random_noise_2 (2 trials, +-0.5), session_info/celltypes.
** session_1: 5 neurons; its own stimulus_random_noise_0 (65 frames, base
**            5000), random_noise_1, and a 3-D responses_random_noise_2 (3
**            trials, -1/0/+1), session_info/celltypes and a string.
*/
static void write_fixture(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/stimuli", tmpdir);
	cr_assert_eq(mkdir(dir, 0777), 0);
	write_stimulus("random_noise_0", 0, 40);
	write_stimulus("random_noise_1", 1000, 30);
	write_stimulus("random_noise_2", 2000, 20);
	write_stimulus("random_noise_3", 3000, 10); /* unused by the sessions */

	hid_t f = h5_create("session_0.hdf5");
	write_responses(f, "responses_random_noise_0", 0, 3, 40);
	write_responses(f, "responses_random_noise_1", 1000, 3, 30);
	write_responses(f, "responses_random_noise_2", 2000, 3, 20);
	double by_trial[2 * 3 * 20];
	for (int k = 0; k < 2; k++)
		for (int n = 0; n < 3; n++)
			for (int t = 0; t < 20; t++)
				by_trial[(k * 3 + n) * 20 + t] = 2000 + t + n / 8.0 + (k ? 0.5 : -0.5);
	int64_t bt_shape[3] = {2, 3, 20};
	h5_write(f, "by_trial_random_noise_2", H5T_NATIVE_DOUBLE, 3, bt_shape, by_trial);
	int64_t cell[3] = {7, 8, 9}, n3 = 3;
	h5_write(f, "session_info/celltypes", H5T_NATIVE_INT64, 1, &n3, cell);
	H5Fclose(f);

	f = h5_create("session_1.hdf5");
	write_responses(f, "responses_random_noise_0", 5000, 5, 65);
	int64_t shape[4] = {C, 65, H, W};
	double *v = movie_values(5000, 65);
	h5_write(f, "stimulus_random_noise_0", H5T_NATIVE_DOUBLE, 4, shape, v);
	free(v);
	write_responses(f, "responses_random_noise_1", 1000, 5, 30);
	write_trials(f, "responses_random_noise_2", 2000, 3, 5, 20, 1.0);
	int64_t cell5[5] = {1, 2, 3, 4, 5}, n5 = 5;
	h5_write(f, "session_info/celltypes", H5T_NATIVE_INT64, 1, &n5, cell5);
	h5_write_string(f, "session_info/label", "retina");
	H5Fclose(f);
}

static const char *test_names[] = {"random_noise_2"};
static const int64_t val_clips[] = {5, 2};

static void fixture_options(fv_data_options *o)
{
	fv_data_options_default(o);
	o->data_dir = tmpdir;
	o->test_names = test_names;
	o->n_test_names = 1;
	o->color_channels = C;
	o->video_height = H;
	o->video_width = W;
	o->norm_mean = NORM_MEAN;
	o->norm_std = NORM_STD;
	o->clip_length = CLIP;
	o->validation_clip_indices = val_clips;
	o->n_validation_clip_indices = 2;
	o->train_chunk_size = CHUNK;
	o->batch_size = BATCH;
}

static fv_data *open_fixture(void)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	return d;
}

/* ---- where each frame of a session's training movie comes from ------------------ */

/* Base value of the session's concatenated (train + validation) frame g. */
static double train_base(int session, int64_t g)
{
	if (session == 0)
		return g < 40 ? (double)g : 1000.0 + (double)(g - 40);
	return g < 65 ? 5000.0 + (double)g : 1000.0 + (double)(g - 65);
}

static float normalised(double raw)
{
	return ((float)raw - (float)NORM_MEAN) / (float)NORM_STD;
}

static int64_t n_clips_of(int session)
{
	return session == 0 ? 7 : 9;
}

/* Frame j of the training movie: the clips other than 5 and 2, ascending. */
static int64_t train_frame(int session, int64_t j)
{
	int64_t kept[16], n = 0;
	for (int64_t c = 0; c < n_clips_of(session); c++)
		if (c != 5 && c != 2)
			kept[n++] = c;
	return kept[j / CLIP] * CLIP + j % CLIP;
}

static void check_movie_frame(const fv_real *movie, int64_t frames, int64_t t, double base,
                              const char *what)
{
	for (int64_t c = 0; c < C; c++)
		for (int64_t y = 0; y < H; y++)
			for (int64_t x = 0; x < W; x++) {
				float want = normalised(base + pixel_part(c, y, x));
				float got = (float)movie[((c * frames + t) * H + y) * W + x];
				cr_assert_eq(got, want, "%s: frame %lld c=%lld y=%lld x=%lld: %g != %g", what,
				             (long long)t, (long long)c, (long long)y, (long long)x, got, want);
			}
}

/* ---- random streams -------------------------------------------------------------- */

Test(data, rng_matches_numpy_and_python)
{
	fv__mt19937 mt;
	/* MT19937 reference: init_genrand(5489) */
	fv__mt_seed_numpy(&mt, 5489);
	cr_assert_eq(fv__mt_next32(&mt), 3499211612u);
	cr_assert_eq(fv__mt_next32(&mt), 581869302u);
	cr_assert_eq(fv__mt_next32(&mt), 3890346734u);
	/* np.random.seed(42); np.random.permutation(10) */
	int64_t v[10], want42[10] = {8, 1, 5, 0, 7, 2, 9, 4, 3, 6}, want0[10] = {2, 8, 4, 9, 1, 6, 7, 3, 0, 5};
	fv__mt_seed_numpy(&mt, 42);
	fv__np_permutation(&mt, 10, v);
	cr_assert_arr_eq(v, want42, sizeof v);
	fv__mt_seed_numpy(&mt, 0);
	fv__np_permutation(&mt, 10, v);
	cr_assert_arr_eq(v, want0, sizeof v);
	/* np.random.seed(42); np.random.randint(0, 10, 5) */
	int64_t r[5], want_r[5] = {6, 3, 7, 4, 6};
	fv__mt_seed_numpy(&mt, 42);
	fv__np_randint(&mt, 0, 10, 5, r);
	cr_assert_arr_eq(r, want_r, sizeof r);
	/* randint with one possible value draws nothing */
	fv__mt_seed_numpy(&mt, 42);
	fv__np_randint(&mt, 3, 4, 5, r);
	cr_assert_eq(r[4], 3);
	cr_assert_eq(fv__mt_next32(&mt), 1608637542u); /* the first word of seed 42 */
	/* random.seed(42); random.random(); random.seed(0); random.random() */
	fv__mt_seed_python(&mt, 42);
	cr_assert_eq(fv__py_random(&mt), 0.6394267984578837);
	fv__mt_seed_python(&mt, 0);
	cr_assert_eq(fv__py_random(&mt), 0.8444218515250481);
	/* random.seed(42); x = list(range(10)); random.shuffle(x) */
	int64_t s[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, want_s[10] = {7, 3, 2, 8, 5, 6, 9, 4, 0, 1};
	fv__mt_seed_python(&mt, 42);
	fv__py_shuffle(&mt, s, 10);
	cr_assert_arr_eq(s, want_s, sizeof s);
}

/* ---- opening the fixture --------------------------------------------------------- */

Test(data, sessions_and_info)
{
	fv_data *d = open_fixture();
	cr_assert_eq(fv_data_n_sessions(d), 2);
	cr_assert_str_eq(fv_data_session_name(d, 0), "session_0");
	cr_assert_str_eq(fv_data_session_name(d, 1), "session_1");
	cr_assert_eq(fv_data_find_session(d, "session_1"), 1);
	cr_assert_eq(fv_data_find_session(d, "session_9"), -1);
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_eq(info->n_sessions, 2);
	cr_assert_str_eq(info->sessions[1], "session_1");
	cr_assert_eq(info->n_neurons[0], 3);
	cr_assert_eq(info->n_neurons[1], 5);
	cr_assert_eq(info->input_shape[0], C);
	cr_assert_eq(info->input_shape[1], H);
	cr_assert_eq(info->input_shape[2], W);
	cr_assert_eq(info->stim_mean, NORM_MEAN);
	cr_assert_eq(info->stim_std, NORM_STD);
	/* mean over all 70 (95) non-test frames, validation included:
	** session_0: (sum_{t<40} t + sum_{t<30} (1000 + t)) / 70 + n / 8 */
	for (int n = 0; n < 3; n++) {
		double want = (780.0 + 30000.0 + 435.0) / 70.0 + n / 8.0;
		cr_assert_eq(info->mean_activity[0]->data[n], (float)want);
	}
	for (int n = 0; n < 5; n++) {
		double want = (65 * 5000.0 + 2080.0 + 30000.0 + 435.0) / 95.0 + n / 8.0;
		cr_assert_eq(info->mean_activity[1]->data[n], (float)want);
	}
	cr_assert_eq(info->mean_activity[1]->ndim, 1);
	cr_assert_eq(info->mean_activity[1]->shape[0], 5);
	/* session_info: numeric datasets only */
	cr_assert_eq(info->n_session_info[0], 1);
	cr_assert_str_eq(info->session_info_names[0][0], "celltypes");
	cr_assert_eq(info->session_info[0][0]->data[2], 9);
	cr_assert_eq(info->n_session_info[1], 1);
	cr_assert_eq(info->session_info[1][0]->shape[0], 5);
	fv_data_close(d);
}

Test(data, validation_and_training_splits)
{
	fv_data *d = open_fixture();
	for (int s = 0; s < 2; s++) {
		int64_t n = s == 0 ? 3 : 5;
		size_t nv;
		const int64_t *clips = fv_data_validation_clips(d, (size_t)s, &nv);
		cr_assert_eq(nv, 2);
		cr_assert_eq(clips[0], 5);
		cr_assert_eq(clips[1], 2);
		/* validation: clip 5 then clip 2 */
		const fv_movie_set *v = fv_data_validation(d, (size_t)s);
		cr_assert_eq(v->movie->shape[1], 20);
		cr_assert_eq(v->responses->shape[0], 20);
		cr_assert_eq(v->responses->shape[1], n);
		for (int64_t t = 0; t < 20; t++) {
			int64_t g = t < 10 ? 50 + t : 20 + (t - 10);
			check_movie_frame(v->movie->data, 20, t, train_base(s, g), "validation");
			for (int64_t k = 0; k < n; k++)
				cr_assert_eq(v->responses->data[t * n + k], (float)(train_base(s, g) + k / 8.0));
		}
		cr_assert_eq(v->chunk_size, CLIP);
		cr_assert_eq(v->n_samples, 2);
		cr_assert_eq(v->start_indices[1], 10);
		cr_assert_eq(v->batch_size, BATCH);
		cr_assert_eq(v->n_batches, 1);
		/* training: the other whole clips */
		const fv_movie_set *tr = fv_data_train(d, (size_t)s);
		int64_t frames = s == 0 ? 50 : 70;
		cr_assert_eq(tr->movie->ndim, 4);
		cr_assert_eq(tr->movie->shape[0], C);
		cr_assert_eq(tr->movie->shape[1], frames);
		for (int64_t j = 0; j < frames; j++)
			check_movie_frame(tr->movie->data, frames, j, train_base(s, train_frame(s, j)), "train");
		cr_assert_eq(tr->chunk_size, CHUNK);
		cr_assert_eq(tr->n_samples, frames / CHUNK);
		cr_assert_eq(tr->start_indices[3], 15);
		cr_assert_eq(tr->n_batches, s == 0 ? 3 : 4);
	}
	/* session_1's responses keep the 5 frames after its last whole clip */
	const fv_movie_set *tr = fv_data_train(d, 1);
	cr_assert_eq(tr->responses->shape[0], 75);
	for (int64_t j = 0; j < 70; j++)
		cr_assert_eq(tr->responses->data[j * 5 + 4], (float)(train_base(1, train_frame(1, j)) + 0.5));
	for (int64_t j = 70; j < 75; j++)
		cr_assert_eq(tr->responses->data[j * 5], (float)(1000 + 25 + (j - 70)));
	cr_assert_eq(fv_data_train(d, 0)->responses->shape[0], 50);
	cr_assert_null(fv_data_train(d, 2));
	fv_data_close(d);
}

Test(data, test_sets_with_trials)
{
	fv_data *d = open_fixture();
	for (size_t s = 0; s < 2; s++) {
		int64_t n = s == 0 ? 3 : 5;
		cr_assert_eq(fv_data_n_test(d, s), 1);
		const fv_movie_set *t = fv_data_test(d, s, 0);
		cr_assert_eq(t, fv_data_test_named(d, s, "random_noise_2"));
		cr_assert_null(fv_data_test_named(d, s, "random_noise_0"));
		cr_assert_str_eq(t->stimulus, "random_noise_2");
		cr_assert_str_eq(t->session, s == 0 ? "session_0" : "session_1");
		for (int64_t f = 0; f < 20; f++) {
			check_movie_frame(t->movie->data, 20, f, 2000.0 + (double)f, "test");
			for (int64_t k = 0; k < n; k++)
				cr_assert_eq(t->responses->data[f * n + k], (float)(2000 + f + k / 8.0));
		}
		/* the whole movie is one sample; batch max(1, 3 * 5 // 20) = 1 */
		cr_assert_eq(t->chunk_size, 20);
		cr_assert_eq(t->n_samples, 1);
		cr_assert_eq(t->batch_size, 1);
		cr_assert_eq(t->n_batches, 1);
		/* trials as (trials, time, neurons) */
		const fv_tensor *bt = t->responses_by_trial;
		cr_assert_not_null(bt);
		int64_t trials = s == 0 ? 2 : 3;
		cr_assert_eq(bt->ndim, 3);
		cr_assert_eq(bt->shape[0], trials);
		cr_assert_eq(bt->shape[1], 20);
		cr_assert_eq(bt->shape[2], n);
		double step = s == 0 ? 0.5 : 1.0;
		for (int64_t k = 0; k < trials; k++) {
			double offset = s == 0 ? (k ? 0.5 : -0.5) : (double)(k - 1) * step;
			cr_assert_eq(bt->data[(k * 20 + 7) * n + 1], (float)(2007 + 1 / 8.0 + offset));
		}
	}
	fv_data_close(d);
}

/* ---- batches ------------------------------------------------------------------------ */

/* openretina's LongCycler + MovieSampler (allow_over_boundaries), written
** out naively from the Python; returns the training-movie start frames of
** each batch and its session. */
typedef struct ref_batch {
	int session;
	int64_t starts[BATCH];
} ref_batch;

static void reference_epochs(uint64_t seed, int epochs, ref_batch *out)
{
	fv__mt19937 np, py;
	fv__mt_seed_numpy(&np, (uint32_t)seed);
	fv__mt_seed_python(&py, seed);
	int64_t frames[2] = {50, 70}, n_batches[2] = {3, 4};
	int k = 0;
	for (int e = 0; e < epochs; e++) {
		int64_t keys[2] = {0, 1};
		fv__py_shuffle(&py, keys, 2);
		int64_t order[2][14], pos[2] = {0, 0};
		bool started[2] = {false, false};
		for (int step = 0; step < 8; step++) {
			int s = (int)keys[step % 2];
			int64_t n = frames[s] / CHUNK;
			if (!started[s] || pos[s] == n_batches[s]) {
				int64_t shifts[14], shifted[14], perm[14];
				fv__np_randint(&np, 0, CHUNK, n, shifts);
				for (int64_t i = 0; i < n; i++) {
					int64_t x = i * CHUNK + shifts[i];
					shifted[i] = x < frames[s] - CHUNK ? x : frames[s] - CHUNK;
				}
				fv__np_permutation(&np, n, perm);
				for (int64_t i = 0; i < n; i++)
					order[s][i] = shifted[perm[i]];
				started[s] = true;
				pos[s] = 0;
			}
			out[k].session = s;
			for (int b = 0; b < BATCH; b++)
				out[k].starts[b] = order[s][pos[s] * BATCH + b];
			pos[s]++;
			k++;
		}
	}
}

static void check_train_batch(const fv_batch *b, const ref_batch *want)
{
	int s = want->session;
	int64_t n = s == 0 ? 3 : 5;
	cr_assert_eq((int)b->session_index, s);
	cr_assert_str_eq(b->session, s == 0 ? "session_0" : "session_1");
	cr_assert_eq(b->input->ndim, 5);
	int64_t in_shape[5] = {BATCH, C, CHUNK, H, W}, tgt_shape[3] = {BATCH, CHUNK, n};
	cr_assert_arr_eq(b->input->shape, in_shape, sizeof in_shape);
	cr_assert_eq(b->target->ndim, 3);
	cr_assert_arr_eq(b->target->shape, tgt_shape, sizeof tgt_shape);
	cr_assert_eq(b->input->numel, BATCH * C * CHUNK * H * W);
	for (int i = 0; i < BATCH; i++) {
		for (int64_t f = 0; f < CHUNK; f++) {
			int64_t j = want->starts[i] + f;
			double base = train_base(s, train_frame(s, j));
			for (int64_t c = 0; c < C; c++) {
				float got = (float)b->input->data[(((i * C + c) * CHUNK + f) * H + 2) * W + 3];
				cr_assert_eq(got, normalised(base + pixel_part(c, 2, 3)));
			}
			cr_assert_eq(b->target->data[(i * CHUNK + f) * n + 1], (float)(base + 1 / 8.0));
		}
	}
}

Test(data, long_cycler_order_and_contents)
{
	fv_data *d = open_fixture();
	fv_batch_iter *it = fv_data_train_batches(d, 7);
	cr_assert_not_null(it, "%s", fv_errmsg());
	cr_assert_eq(fv_batch_iter_len(it), 8); /* 2 sessions x 4 batches of the longest */
	ref_batch want[24];
	reference_epochs(7, 3, want);
	fv_batch b;
	int seen[2] = {0, 0};
	for (int e = 0; e < 3; e++) {
		for (int k = 0; k < 8; k++) {
			cr_assert(fv_batch_next(it, &b), "epoch %d batch %d", e, k);
			cr_assert_eq(fv_batch_iter_epoch(it), e + 1);
			check_train_batch(&b, &want[e * 8 + k]);
			seen[b.session_index]++;
			/* sessions alternate */
			if (k > 0)
				cr_assert_neq(want[e * 8 + k].session, want[e * 8 + k - 1].session);
		}
		cr_assert_not(fv_batch_next(it, &b), "epoch %d has 8 batches", e);
	}
	cr_assert_eq(seen[0], 12);
	cr_assert_eq(seen[1], 12);
	fv_batch_iter_free(it);
	fv_data_close(d);
}

Test(data, seek_replays_the_streams)
{
	fv_data *d = open_fixture();
	fv_batch_iter *a = fv_data_train_batches(d, 11), *b = fv_data_train_batches(d, 11);
	fv_batch x, y;
	for (int i = 0; i < 8 + 8 + 5; i++) {
		cr_assert(fv_batch_next(a, &x) || fv_batch_next(a, &x));
	}
	cr_assert_eq(fv_batch_iter_seek(b, 2, 5), FV_OK);
	cr_assert_eq(fv_batch_iter_epoch(b), 3);
	for (int i = 0; i < 6; i++) {
		bool more_a = fv_batch_next(a, &x), more_b = fv_batch_next(b, &y);
		cr_assert_eq(more_a, more_b);
		if (!more_a)
			continue;
		cr_assert_eq(x.session_index, y.session_index);
		cr_assert_arr_eq(x.input->data, y.input->data, (size_t)x.input->numel * sizeof(fv_real));
	}
	cr_assert_eq(fv_batch_iter_seek(b, 0, 9), FV_ERR_ARG);
	cr_assert(strstr(fv_errmsg(), "0 <= batch <= 8") != NULL, "%s", fv_errmsg());
	fv_batch_iter_free(a);
	fv_batch_iter_free(b);
	cr_assert_null(fv_data_train_batches(d, 1ULL << 32));
	cr_assert(strstr(fv_errmsg(), "2**32 - 1") != NULL, "%s", fv_errmsg());
	fv_data_close(d);
}

Test(data, validation_and_test_batches)
{
	fv_data *d = open_fixture();
	fv_batch_iter *it = fv_data_validation_batches(d);
	cr_assert_eq(fv_batch_iter_len(it), 2);
	fv_batch b;
	for (int s = 0; s < 2; s++) {
		cr_assert(fv_batch_next(it, &b));
		cr_assert_eq((int)b.session_index, s);
		int64_t n = s == 0 ? 3 : 5;
		int64_t in_shape[5] = {2, C, CLIP, H, W}, tgt_shape[3] = {2, CLIP, n};
		cr_assert_arr_eq(b.input->shape, in_shape, sizeof in_shape);
		cr_assert_arr_eq(b.target->shape, tgt_shape, sizeof tgt_shape);
		/* sample 1 is clip 2: frame 20 + f */
		for (int64_t f = 0; f < CLIP; f++)
			cr_assert_eq(b.target->data[(1 * CLIP + f) * n], (float)train_base(s, 20 + f));
	}
	cr_assert_not(fv_batch_next(it, &b));
	cr_assert(fv_batch_next(it, &b)); /* a new pass */
	cr_assert_eq(fv_batch_iter_epoch(it), 2);
	fv_batch_iter_free(it);

	it = fv_data_test_batches(d, "random_noise_2");
	cr_assert_not_null(it);
	cr_assert_eq(fv_batch_iter_len(it), 2);
	cr_assert(fv_batch_next(it, &b));
	int64_t in_shape[5] = {1, C, 20, H, W};
	cr_assert_arr_eq(b.input->shape, in_shape, sizeof in_shape);
	cr_assert(fv_batch_next(it, &b));
	cr_assert_eq(b.target->shape[2], 5);
	cr_assert_eq(b.target->data[19 * 5 + 2], (float)(2019 + 2 / 8.0));
	cr_assert_not(fv_batch_next(it, &b));
	fv_batch_iter_free(it);

	cr_assert_null(fv_data_test_batches(d, "random_noise_7"));
	cr_assert(strstr(fv_errmsg(), "no session has responses to test stimulus 'random_noise_7'"),
	          "%s", fv_errmsg());
	fv_data_close(d);
}

/* MovieSampler with allow_over_boundaries=False: gen_shifts_with_boundaries. */
Test(data, chunks_within_clips)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	o.allow_over_boundaries = false;
	o.train_chunk_size = 4;
	fv_data *d;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	/* tests are cut into clips: 2 clips of 10, batch max(1, 3 * 4 // 10) = 1 */
	const fv_movie_set *t = fv_data_test(d, 0, 0);
	cr_assert_eq(t->chunk_size, CLIP);
	cr_assert_eq(t->n_samples, 2);
	cr_assert_eq(t->batch_size, 1);
	cr_assert_eq(t->n_batches, 2);
	/* session_0: 50 frames, starts 0, 4, ..., 48 (13), 4 batches */
	const fv_movie_set *tr = fv_data_train(d, 0);
	cr_assert_eq(tr->n_samples, 13);
	cr_assert_eq(tr->n_batches, 4);
	/* reference: the first pass of the first session LongCycler picks */
	fv__mt19937 np, py;
	fv__mt_seed_numpy(&np, 5);
	fv__mt_seed_python(&py, 5);
	int64_t keys[2] = {0, 1};
	fv__py_shuffle(&py, keys, 2);
	int s = (int)keys[0];
	int64_t frames = s == 0 ? 50 : 70, n = (frames + 3) / 4, shifts[18], shifted[18], perm[18];
	fv__np_randint(&np, 0, 2, n, shifts);
	for (int64_t i = 0; i < n; i++) {
		int64_t start = 4 * i, bound = (start / CLIP + 1) * CLIP;
		if (bound > frames)
			bound = frames;
		if (start + shifts[i] + 4 < bound)
			shifted[i] = start + shifts[i];
		else if (start + 4 > bound)
			shifted[i] = bound - 4;
		else
			shifted[i] = start;
	}
	if (shifted[n - 1] + 4 > frames)
		shifted[n - 1] = frames - 4;
	fv__np_permutation(&np, n, perm);
	fv_batch_iter *it = fv_data_train_batches(d, 5);
	fv_batch b;
	cr_assert(fv_batch_next(it, &b));
	cr_assert_eq((int)b.session_index, s);
	for (int i = 0; i < BATCH; i++) {
		int64_t start = shifted[perm[i]];
		cr_assert_leq(start % CLIP + 4, CLIP, "a chunk crosses a clip boundary");
		double base = train_base(s, train_frame(s, start));
		cr_assert_eq(b.target->data[(i * 4) * (s == 0 ? 3 : 5)], (float)base);
	}
	fv_batch_iter_free(it);
	fv_data_close(d);
}

Test(data, drawn_validation_clips_follow_numpy)
{
	/* one session of 100 training frames: 10 clips; RandomState(42) picks
	** permutation(10)[:3] = 8, 1, 5 */
	char dir[512];
	snprintf(dir, sizeof dir, "%s/stimuli", tmpdir);
	mkdir(dir, 0777);
	write_stimulus("a", 0, 100);
	hid_t f = h5_create("s.h5");
	write_responses(f, "responses_a", 0, 2, 100);
	H5Fclose(f);
	fv_data_options o;
	fv_data_options_default(&o);
	o.data_dir = tmpdir;
	o.clip_length = 10;
	o.num_val_clips = 3;
	o.train_chunk_size = 10;
	o.batch_size = 2;
	fv_data *d;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_data_session_name(d, 0), "s");
	size_t n;
	const int64_t *clips = fv_data_validation_clips(d, 0, &n);
	cr_assert_eq(n, 3);
	cr_assert_eq(clips[0], 8);
	cr_assert_eq(clips[1], 1);
	cr_assert_eq(clips[2], 5);
	cr_assert_eq(fv_data_n_test(d, 0), 0);
	/* chunk == clip_length: no shifts, no shuffling */
	fv_batch_iter *it = fv_data_train_batches(d, 3);
	fv_batch b;
	cr_assert(fv_batch_next(it, &b));
	cr_assert_eq(b.target->data[0], 0.0f);
	cr_assert_eq(b.target->data[10 * 2], 20.0f); /* second chunk: clip 2 (clip 1 is validation) */
	fv_batch_iter_free(it);
	fv_data_close(d);
	/* seed 0: permutation(10)[:3] = 2, 8, 4 */
	o.seed = 0;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	clips = fv_data_validation_clips(d, 0, &n);
	cr_assert_eq(clips[0], 2);
	cr_assert_eq(clips[1], 8);
	cr_assert_eq(clips[2], 4);
	fv_data_close(d);
}

Test(data, float32_responses_and_stimuli)
{
	/* float32 data on disk; the mean is numpy's float32 mean */
	char dir[512];
	snprintf(dir, sizeof dir, "%s/stimuli", tmpdir);
	mkdir(dir, 0777);
	int64_t shape[4] = {1, 20, 2, 2};
	fv_tensor *m = fv_tensor_new(4, shape);
	for (int64_t i = 0; i < m->numel; i++)
		m->data[i] = (fv_real)(i % 7) * 0.5f;
	cr_assert_eq(fv_npy_save(path_in("stimuli/x.npy"), m), FV_OK);
	fv_tensor_free(m);
	float r[3 * 20];
	for (int i = 0; i < 60; i++)
		r[i] = (float)(i % 5) + 0.25f;
	hid_t f = h5_create("only.hdf5");
	int64_t rs[2] = {3, 20};
	h5_write(f, "responses_x", H5T_NATIVE_FLOAT, 2, rs, r);
	H5Fclose(f);
	fv_data_options o;
	fv_data_options_default(&o);
	o.data_dir = tmpdir;
	o.clip_length = 5;
	o.num_val_clips = 1;
	o.train_chunk_size = 5;
	o.batch_size = 1;
	fv_data *d;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_eq(info->input_shape[0], 1);
	cr_assert_eq(info->input_shape[1], 2);
	/* row k: values (20k + t) % 5 + 0.25 over t: four of each 0..4 */
	cr_assert_eq(info->mean_activity[0]->data[1], 2.25f);
	fv_data_close(d);
}

/* ---- options from a config ---------------------------------------------------------- */

Test(data, options_from_config)
{
	const char *yaml = "data_io:\n"
	                   "  color_channels: 9\n"
	                   "  test_names: [random_noise_2, random_noise_3]\n"
	                   "  stimuli:\n"
	                   "    base_data_path: /some/dir\n"
	                   "    norm_mean: 0.5\n"
	                   "    norm_std: null\n"
	                   "    stimulus_size: [2, 16, 8]\n"
	                   "dataloader:\n"
	                   "  batch_size: 64\n"
	                   "  train_chunk_size: 50\n"
	                   "  clip_length: 75\n"
	                   "  num_val_clips: 20\n"
	                   "  val_clip_indices: [4, 1]\n"
	                   "  allow_over_boundaries: false\n"
	                   "  seed: 7\n";
	fv_config *cfg = fv_config_load_string(yaml, strlen(yaml), "t.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(cfg);
	fv_data_options o;
	fv_data_options_default(&o);
	cr_assert_eq(o.clip_length, 100);
	cr_assert_eq(o.num_val_clips, 10);
	cr_assert_eq(o.batch_size, 32);
	cr_assert_eq(o.seed, 42);
	cr_assert(o.allow_over_boundaries);
	cr_assert_eq(fv_data_options_from_config(&o, fv_node_get(root, "data_io"),
	                                         fv_node_get(root, "dataloader")),
	             FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(o.data_dir, "/some/dir");
	cr_assert_eq(o.n_test_names, 2);
	cr_assert_str_eq(o.test_names[1], "random_noise_3");
	cr_assert_eq(o.color_channels, 2); /* stimulus_size wins, as load_stimuli uses it */
	cr_assert_eq(o.video_height, 16);
	cr_assert_eq(o.video_width, 8);
	cr_assert_eq(o.norm_mean, 0.5);
	cr_assert_eq(o.norm_std, 1.0);
	cr_assert_eq(o.batch_size, 64);
	cr_assert_eq(o.train_chunk_size, 50);
	cr_assert_eq(o.clip_length, 75);
	cr_assert_eq(o.num_val_clips, 20);
	cr_assert_eq(o.n_validation_clip_indices, 2);
	cr_assert_eq(o.validation_clip_indices[1], 1);
	cr_assert_not(o.allow_over_boundaries);
	cr_assert_eq(o.seed, 7);
	fv_config_free(cfg);

	const char *bad = "dataloader:\n  batch_size: lots\n";
	cfg = fv_config_load_string(bad, strlen(bad), "bad.yaml");
	fv_data_options_default(&o);
	cr_assert_eq(fv_data_options_from_config(&o, NULL, fv_node_get(fv_config_root(cfg), "dataloader")),
	             FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "bad.yaml:2:3: dataloader.batch_size: expected an integer"), "%s",
	          fv_errmsg());
	fv_config_free(cfg);

	const char *other = "dataloader:\n  _target_: x.y.movie_loaders\n";
	cfg = fv_config_load_string(other, strlen(other), "other.yaml");
	cr_assert_eq(fv_data_options_from_config(&o, NULL, fv_node_get(fv_config_root(cfg), "dataloader")),
	             FV_ERR_NOTFOUND);
	cr_assert(strstr(fv_errmsg(), "other.yaml:2:3: dataloader._target_: fovea has no data step "
	                              "'x.y.movie_loaders'"), "%s", fv_errmsg());
	fv_config_free(cfg);

	const char *typo = "dataloader:\n  _target_: openretina.data_io.base_dataloader."
	                   "multiple_movies_dataloaders\n  batch_sise: 4\n";
	cfg = fv_config_load_string(typo, strlen(typo), "typo.yaml");
	cr_assert_eq(fv_data_options_from_config(&o, NULL, fv_node_get(fv_config_root(cfg), "dataloader")),
	             FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "typo.yaml:3:3: dataloader.batch_sise: unknown dataloader option; "
	                              "did you mean 'batch_size'?"),
	          "%s", fv_errmsg());
	fv_config_free(cfg);

	const char *bad_names = "data_io:\n  test_names: {a: 1}\n";
	cfg = fv_config_load_string(bad_names, strlen(bad_names), "names.yaml");
	cr_assert_eq(fv_data_options_from_config(&o, fv_node_get(fv_config_root(cfg), "data_io"), NULL),
	             FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), "names.yaml:2:3: data_io.test_names: expected a list of stimulus "
	                              "names"), "%s", fv_errmsg());
	fv_config_free(cfg);
}

/* Limits and ranges of the data settings, each message placed at its value. */
static void expect_options_error(const char *text, const char *message)
{
	fv_config *cfg = fv_config_load_string(text, strlen(text), "o.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	const fv_config_node *root = fv_config_root(cfg);
	fv_data_options o;
	fv_data_options_default(&o);
	cr_assert_eq(fv_data_options_from_config(&o, fv_node_get(root, "data_io"),
	                                         fv_node_get(root, "dataloader")), FV_ERR_CONFIG);
	cr_assert(strstr(fv_errmsg(), message) != NULL, "message '%s' lacks '%s'", fv_errmsg(),
	          message);
	fv_config_free(cfg);
}

Test(data, options_errors_are_placed)
{
	char text[2048] = "data_io:\n  test_names: [";
	for (int i = 0; i <= FV_DATA_MAX_TEST_NAMES; i++)
		strcat(text, i ? ", t" : "t");
	strcat(text, "]\n");
	expect_options_error(text, "o.yaml:2:3: data_io.test_names: at most 64 test stimuli are "
	                           "supported, got 65");
	char clips[8192] = "dataloader:\n  validation_clip_indices: [";
	for (int i = 0; i <= FV_DATA_MAX_VAL_CLIPS; i++)
		strcat(clips, i ? ", 1" : "1");
	strcat(clips, "]\n");
	expect_options_error(clips, "o.yaml:2:3: dataloader.validation_clip_indices: at most 1024 "
	                            "validation clips are supported, got 1025");
	expect_options_error("dataloader:\n  batch_size: 2\n  seed: -1\n",
	                     "o.yaml:3:3: dataloader.seed must be between 0 and 2**32 - 1, got -1");
	expect_options_error("dataloader: [1]\n", "o.yaml:1:1: dataloader: expected a map");
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_open_error(fv_data_options *o, fv_status code, const char *text1,
                              const char *text2)
{
	fv_data *d = (fv_data *)0x1;
	fv_status rc = fv_data_open(o, &d);
	cr_assert_eq(rc, code, "got %d (%s), expected %d", rc, fv_errmsg(), code);
	cr_assert_null(d);
	cr_assert(strstr(fv_errmsg(), text1) != NULL, "message '%s' lacks '%s'", fv_errmsg(), text1);
	if (text2 != NULL)
		cr_assert(strstr(fv_errmsg(), text2) != NULL, "message '%s' lacks '%s'", fv_errmsg(),
		          text2);
}

static void expect_fixture_error(fv_status code, const char *text1, const char *text2)
{
	fv_data_options o;
	fixture_options(&o);
	expect_open_error(&o, code, text1, text2);
}

Test(data, error_missing_directory)
{
	fv_data_options o;
	fixture_options(&o);
	o.data_dir = path_in("nowhere");
	expect_open_error(&o, FV_ERR_NOTFOUND, "data directory '", "nowhere' cannot be read");
	FILE *f = fopen(path_in("plain"), "w");
	fclose(f);
	o.data_dir = path_in("plain");
	expect_open_error(&o, FV_ERR_IO, "plain' is not a directory", NULL);
	o.data_dir = NULL;
	expect_open_error(&o, FV_ERR_CONFIG, "no data directory given (paths.data_dir)", NULL);
}

Test(data, error_no_session_files)
{
	expect_fixture_error(FV_ERR_NOTFOUND, tmpdir, "no session files (*.h5 or *.hdf5)");
}

static void truncate_file(const char *name, double fraction)
{
	FILE *f = fopen(path_in(name), "rb");
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fclose(f);
	cr_assert_eq(truncate(path_in(name), (off_t)((double)size * fraction)), 0);
}

Test(data, error_truncated_hdf5)
{
	write_fixture();
	truncate_file("session_1.hdf5", 0.5);
	expect_fixture_error(FV_ERR_FORMAT, "session_1.hdf5", "(truncated or corrupted?)");
}

Test(data, error_not_hdf5)
{
	write_fixture();
	FILE *f = fopen(path_in("session_0.hdf5"), "w");
	fputs("this is not HDF5", f);
	fclose(f);
	expect_fixture_error(FV_ERR_FORMAT, "session_0.hdf5: not a readable HDF5 file", NULL);
}

Test(data, error_truncated_stimulus)
{
	write_fixture();
	truncate_file("stimuli/random_noise_1.npy", 0.7);
	expect_fixture_error(FV_ERR_FORMAT, "random_noise_1.npy", NULL);
}

Test(data, error_responses_do_not_match_stimulus)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	write_responses(f, "responses_random_noise_0", 0, 4, 39);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_SHAPE,
	                     "session 'session_2', stimulus 'random_noise_0': responses of shape (4, 39) "
	                     "(neurons, time) do not match the stimulus of shape (2, 40, 3, 4)",
	                     "39 != 40 frames");
}

Test(data, error_neuron_counts_differ)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	write_responses(f, "responses_random_noise_0", 0, 4, 40);
	write_responses(f, "responses_random_noise_1", 1000, 6, 30);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_SHAPE, "session 'session_2': responses_random_noise_1 has 6 neurons",
	                     "other responses have 4");
}

Test(data, error_missing_stimulus)
{
	write_fixture();
	hid_t f = h5_create("session_2.h5");
	write_responses(f, "responses_flicker", 0, 4, 40);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_NOTFOUND, "session 'session_2': responses_flicker has no stimulus",
	                     "stimuli/flicker.npy nor");
}

Test(data, error_stimulus_size)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	o.color_channels = 3;
	expect_open_error(&o, FV_ERR_SHAPE, "has (channels, height, width) = (2, 3, 4), expected (3, 3, 4)",
	                  "data_io.color_channels");
}

Test(data, error_session_stimulus_size)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	write_responses(f, "responses_random_noise_0", 0, 4, 40);
	int64_t shape[4] = {2, 40, 5, 4};
	double *v = calloc(2 * 40 * 5 * 4, sizeof *v);
	h5_write(f, "stimulus_random_noise_0", H5T_NATIVE_DOUBLE, 4, shape, v);
	free(v);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_SHAPE, "session_2.hdf5/stimulus_random_noise_0",
	                     "(2, 5, 4), expected (2, 3, 4)");
}

Test(data, error_stimulus_not_4d)
{
	write_fixture();
	int64_t shape[3] = {2, 40, 12};
	double v[2 * 40 * 12] = {0};
	write_npy_f64(path_in("stimuli/random_noise_0.npy"), 3, shape, v);
	expect_fixture_error(FV_ERR_SHAPE, "random_noise_0.npy: expected a stimulus of 4 dims",
	                     "got shape (2, 40, 12)");
}

Test(data, error_responses_rank)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	double v[40] = {0};
	int64_t n = 40;
	h5_write(f, "responses_random_noise_0", H5T_NATIVE_DOUBLE, 1, &n, v);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_SHAPE, "responses_random_noise_0 has shape (40)",
	                     "expected (neurons, time) or (trials, neurons, time)");
}

Test(data, error_no_responses)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	double v[4] = {0};
	int64_t n = 4;
	h5_write(f, "spikes", H5T_NATIVE_DOUBLE, 1, &n, v);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_FORMAT, "session 'session_2' has no responses_<stimulus> datasets",
	                     "(keys: spikes)");
}

Test(data, error_only_test_stimuli)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	write_responses(f, "responses_random_noise_2", 2000, 4, 20);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_CONFIG, "session 'session_2': no training stimuli", "data_io.test_names");
}

Test(data, error_by_trial_shape)
{
	write_fixture();
	hid_t f = H5Fopen(path_in("session_0.hdf5"), H5F_ACC_RDWR, H5P_DEFAULT);
	H5Ldelete(f, "by_trial_random_noise_2", H5P_DEFAULT);
	double v[2 * 3 * 19] = {0};
	int64_t shape[3] = {2, 3, 19};
	h5_write(f, "by_trial_random_noise_2", H5T_NATIVE_DOUBLE, 3, shape, v);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_SHAPE, "by_trial_random_noise_2 has shape (2, 3, 19)",
	                     "expected (trials, 3, 20)");
}

Test(data, error_duplicate_session)
{
	write_fixture();
	hid_t f = h5_create("session_0.h5");
	write_responses(f, "responses_random_noise_0", 0, 3, 40);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_FORMAT, "two files for session 'session_0'", NULL);
}

Test(data, error_validation_clips)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	int64_t bad[] = {1, 7};
	o.validation_clip_indices = bad;
	expect_open_error(&o, FV_ERR_CONFIG, "val_clip_indices: clip 7 is out of range",
	                  "session 'session_0' has 7 clips of clip_length=10 frames (70 training frames)");
	o.validation_clip_indices = NULL;
	o.num_val_clips = 8;
	expect_open_error(&o, FV_ERR_CONFIG, "num_val_clips=8, but session 'session_0' has only 7 clips",
	                  NULL);
	o.num_val_clips = 7;
	expect_open_error(&o, FV_ERR_CONFIG, "every one of its 7 clips is a validation clip", NULL);
}

Test(data, error_no_training_batch)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	o.batch_size = 11;
	expect_open_error(&o, FV_ERR_CONFIG,
	                  "session 'session_0': its training movie (50 frames) gives 10 chunks of "
	                  "train_chunk_size=5 frames, fewer than batch_size=11",
	                  NULL);
}

Test(data, error_unknown_test_names)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	const char *names[] = {"natural_movie", "chirp"};
	o.test_names = names;
	o.n_test_names = 2;
	expect_open_error(&o, FV_ERR_NOTFOUND,
	                  "none of the test stimuli (data_io.test_names: natural_movie, chirp)", NULL);
}

Test(data, error_bad_options)
{
	fv_data_options o;
	fixture_options(&o);
	o.clip_length = 0;
	expect_open_error(&o, FV_ERR_CONFIG, "dataloader.clip_length must be positive, got 0", NULL);
	fixture_options(&o);
	o.batch_size = -1;
	expect_open_error(&o, FV_ERR_CONFIG, "dataloader.batch_size must be positive, got -1", NULL);
	fixture_options(&o);
	o.train_chunk_size = 0;
	expect_open_error(&o, FV_ERR_CONFIG, "train_chunk_size must be positive", NULL);
	fixture_options(&o);
	o.num_val_clips = -2;
	o.validation_clip_indices = NULL;
	expect_open_error(&o, FV_ERR_CONFIG, "num_val_clips must not be negative", NULL);
	fixture_options(&o);
	o.seed = 1ULL << 33;
	expect_open_error(&o, FV_ERR_CONFIG, "dataloader.seed must be between 0 and 2**32 - 1", NULL);
	fixture_options(&o);
	o.norm_std = 0.0;
	expect_open_error(&o, FV_ERR_CONFIG, "norm_std must be finite and non-zero", NULL);
	fixture_options(&o);
	o.allow_over_boundaries = false;
	o.train_chunk_size = 11;
	expect_open_error(&o, FV_ERR_CONFIG,
	                  "train_chunk_size (11) must not exceed clip_length (10) when "
	                  "allow_over_boundaries is false",
	                  NULL);
}

/* ---- synthetic data ------------------------------------------------------------------------ */

/* The n-th number after `key` in a JSON text. */
static double json_number(const char *text, const char *key, int nth)
{
	const char *p = text;
	for (int i = 0; i <= nth; i++) {
		p = strstr(p, key);
		cr_assert_not_null(p, "%s #%d missing", key, nth);
		p += strlen(key);
	}
	return strtod(p, NULL);
}

static double *read_h5_doubles(const char *file, const char *name, int64_t *numel)
{
	hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
	hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
	cr_assert_geq(ds, 0, "%s in %s", name, file);
	hid_t space = H5Dget_space(ds);
	*numel = H5Sget_simple_extent_npoints(space);
	double *v = malloc((size_t)*numel * sizeof *v);
	H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
	H5Sclose(space);
	H5Dclose(ds);
	H5Fclose(f);
	return v;
}

/* Open `dir` with these test names and {clip_length, num_val_clips,
** train_chunk_size, batch_size}, the rest openretina's defaults. */
static fv_data *open_dir(const char *dir, const char **names, size_t n_names, const int64_t *cut)
{
	fv_data_options o;
	fv_data_options_default(&o);
	o.data_dir = dir;
	o.test_names = names;
	o.n_test_names = n_names;
	o.clip_length = cut[0];
	o.num_val_clips = cut[1];
	o.train_chunk_size = cut[2];
	o.batch_size = cut[3];
	fv_data *d;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	return d;
}

Test(data, synthetic_reads_back)
{
	const char *dir = path_in("synth");
	fv_synthetic_options so;
	fv_synthetic_options_default(&so);
	cr_assert_eq(so.channels, 2);
	cr_assert_eq(so.height, 18);
	cr_assert_eq(so.width, 16);
	int64_t neurons[] = {4, 6};
	so.seed = 3;
	so.n_sessions = 2;
	so.n_neurons = neurons;
	so.n_n_neurons = 2;
	so.height = 10;
	so.width = 12;
	so.train_frames = 1500;
	so.n_train_stimuli = 1;
	so.test_frames = 60;
	so.n_test_trials = 4;
	cr_assert_eq(fv_synthetic_write(dir, &so), FV_OK, "%s", fv_errmsg());

	static const char *names[] = {"test"};
	fv_data *d = open_dir(dir, names, 1, (const int64_t[]){50, 2, 25, 4});
	cr_assert_eq(fv_data_n_sessions(d), 2);
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_eq(info->n_neurons[0], 4);
	cr_assert_eq(info->n_neurons[1], 6);
	int64_t want_shape[3] = {2, 10, 12};
	cr_assert_arr_eq(info->input_shape, want_shape, sizeof want_shape);
	cr_assert_eq(fv_data_train(d, 0)->movie->shape[1], 1400);
	const fv_movie_set *t = fv_data_test(d, 1, 0);
	cr_assert_str_eq(t->stimulus, "test");
	cr_assert_eq(t->responses_by_trial->shape[0], 4);
	cr_assert_eq(t->responses_by_trial->shape[1], 60);
	cr_assert_eq(t->responses_by_trial->shape[2], 6);
	/* the stored average is the mean of the trials */
	for (int64_t i = 0; i < 60 * 6; i++) {
		double sum = 0;
		for (int k = 0; k < 4; k++)
			sum += t->responses_by_trial->data[k * 360 + i];
		cr_assert_float_eq(t->responses->data[i], sum / 4, 1e-5);
	}
	cr_assert_eq(info->n_session_info[0], 2); /* channel, sign */
	fv_data_close(d);

	/* planted receptive fields: the spike-triggered average at the
	** filter's peak lag peaks at the planted centre, channel and sign */
	char gt_path[600];
	snprintf(gt_path, sizeof gt_path, "%s/ground_truth.json", dir);
	FILE *f = fopen(gt_path, "r");
	cr_assert_not_null(f);
	char *text = calloc(1, 1 << 16);
	size_t len = fread(text, 1, (1 << 16) - 1, f);
	fclose(f);
	cr_assert_gt(len, 100);
	cr_assert(strstr(text, "\"session_1\"") && strstr(text, "\"n_neurons\": 6"));
	char stim_path[600];
	snprintf(stim_path, sizeof stim_path, "%s/stimuli/train_0.npy", dir);
	fv_tensor *movie = fv_npy_load(stim_path);
	cr_assert_not_null(movie);
	int64_t frames = 1500, hw = 120, numel;
	char resp_path[600];
	snprintf(resp_path, sizeof resp_path, "%s/session_0.hdf5", dir);
	double *resp = read_h5_doubles(resp_path, "responses_train_0", &numel);
	cr_assert_eq(numel, 4 * frames);
	double total_spikes = 0;
	for (int j = 0; j < 4; j++) {
		double cx = json_number(text, "\"centre_x\": ", j), cy = json_number(text, "\"centre_y\": ", j);
		int sign = (int)json_number(text, "\"sign\": ", j);
		int channel = (int)json_number(text, "\"channel\": ", j);
		/* the lag of the filter's largest tap */
		const char *filt = strstr(text, "\"temporal_filter\": [");
		for (int k = 0; k < j; k++)
			filt = strstr(filt + 1, "\"temporal_filter\": [");
		filt += strlen("\"temporal_filter\": [");
		int lag = 0;
		double best = -1;
		for (int k = 0; k < 12; k++) {
			char *end;
			double w = strtod(filt, &end);
			if (w > best) {
				best = w;
				lag = k;
			}
			filt = end + 1;
		}
		double best_sta = 0;
		int best_c = -1, best_p = -1;
		for (int c = 0; c < 2; c++) {
			for (int p = 0; p < hw; p++) {
				double sta = 0;
				for (int64_t tt = lag; tt < frames; tt++)
					sta += resp[j * frames + tt] * movie->data[(c * frames + tt - lag) * hw + p];
				if (fabs(sta) > fabs(best_sta)) {
					best_sta = sta;
					best_c = c;
					best_p = p;
				}
			}
		}
		double px = best_p % 12, py = best_p / 12;
		cr_assert_eq(best_c, channel, "neuron %d: channel", j);
		cr_assert_eq(best_sta > 0 ? 1 : -1, sign, "neuron %d: sign", j);
		cr_assert_leq(hypot(px - cx, py - cy), 1.5, "neuron %d: peak (%g, %g) vs centre (%g, %g)", j,
		              px, py, cx, cy);
		for (int64_t tt = 0; tt < frames; tt++)
			total_spikes += resp[j * frames + tt];
	}
	/* about `rate` = 1 spike per frame */
	cr_assert_float_eq(total_spikes / (4.0 * (double)frames), 1.0, 0.15);
	free(resp);
	fv_tensor_free(movie);
	free(text);
}

Test(data, synthetic_errors)
{
	fv_synthetic_options so;
	fv_synthetic_options_default(&so);
	so.height = 2;
	cr_assert_eq(fv_synthetic_write(path_in("s"), &so), FV_ERR_ARG);
	cr_assert(strstr(fv_errmsg(), "create-data: height must be at least 5, got 2"), "%s", fv_errmsg());
	fv_synthetic_options_default(&so);
	so.rate = -1;
	cr_assert_eq(fv_synthetic_write(path_in("s"), &so), FV_ERR_ARG);
	cr_assert(strstr(fv_errmsg(), "rate must be positive"), "%s", fv_errmsg());
	/* a directory with other session files is not mixed into */
	fv_synthetic_options_default(&so);
	so.train_frames = 50;
	so.test_frames = 20;
	cr_assert_eq(mkdir(path_in("s"), 0777), 0);
	FILE *f = fopen(path_in("s/recording_7.h5"), "w");
	fclose(f);
	cr_assert_eq(fv_synthetic_write(path_in("s"), &so), FV_ERR_IO);
	cr_assert(strstr(fv_errmsg(), "already holds session files this data set would not replace "
	                              "(recording_7.h5)"),
	          "%s", fv_errmsg());
	f = fopen(path_in("file"), "w");
	fclose(f);
	cr_assert_eq(fv_synthetic_write(path_in("file"), &so), FV_ERR_IO);
	cr_assert(strstr(fv_errmsg(), "file exists and is not a directory"), "%s", fv_errmsg());
}

/* ---- openretina's own `openretina create-data` layout ---------------------------------------- */

/* The names a directory holds, sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t size)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "ls '%s' | tr '\\n' ' '", dir);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	pclose(p);
}

/* Dataset `name`: its file type is `type`, it has no attributes, and its
** shape is returned. */
static int h5_dataset_shape(hid_t f, const char *name, hid_t type, hsize_t *dims)
{
	hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
	cr_assert_geq(ds, 0, "no dataset %s", name);
	hid_t t = H5Dget_type(ds);
	cr_assert_gt(H5Tequal(t, type), 0, "%s has another dtype", name);
	H5Tclose(t);
	H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
	H5Oget_info3(ds, &info, H5O_INFO_NUM_ATTRS);
#else
	H5Oget_info(ds, &info);
#endif
	cr_assert_eq(info.num_attrs, 0, "%s has attributes", name);
	hid_t space = H5Dget_space(ds);
	int nd = H5Sget_simple_extent_dims(space, dims, NULL);
	H5Sclose(space);
	H5Dclose(ds);
	return nd;
}

/* How well openretina's response model with one choice of window fits
** response `r`: the least-squares line through (box-smoothed window sum,
** r); returns the residual RMS and the fitted scale and bias. */
static double fit_window(const double *stim, int64_t frames, int64_t color, int64_t row,
                         int64_t col, int64_t side, int64_t m, const double *r, double *scale,
                         double *bias)
{
	double *sum = calloc((size_t)frames, sizeof *sum), *x = calloc((size_t)frames, sizeof *x);
	for (int64_t t = 0; t < frames; t++)
		for (int64_t y = row; y < row + side && y < 16; y++)
			for (int64_t c = col; c < col + side && c < 8; c++)
				sum[t] += stim[((color * frames + t) * 16 + y) * 8 + c];
	/* numpy.convolve(sum, ones(m) / m, "same"), written out: for full =
	** sum * box (length frames + m - 1), "same" keeps full[(m - 1) / 2 ...] */
	for (int64_t t = 0; t < frames; t++) {
		int64_t k_full = t + (m - 1) / 2;
		for (int64_t j = k_full - (m - 1); j <= k_full; j++)
			if (j >= 0 && j < frames)
				x[t] += sum[j] / (double)m;
	}
	double mx = 0, my = 0, sxx = 0, sxy = 0;
	for (int64_t t = 0; t < frames; t++) {
		mx += x[t] / (double)frames;
		my += r[t] / (double)frames;
	}
	for (int64_t t = 0; t < frames; t++) {
		sxx += (x[t] - mx) * (x[t] - mx);
		sxy += (x[t] - mx) * (r[t] - my);
	}
	*scale = sxx > 0 ? sxy / sxx : 0;
	*bias = my - *scale * mx;
	double ss = 0;
	for (int64_t t = 0; t < frames; t++) {
		double e = r[t] - (*scale * x[t] + *bias);
		ss += e * e;
	}
	free(sum);
	free(x);
	return sqrt(ss / (double)frames);
}

Test(data, openretina_create_data_layout)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path_in("or"));
	fv_openretina_data_options o;
	fv_openretina_data_options_default(&o);
	/* openretina's command-line defaults */
	cr_assert_eq(o.num_colors, 3);
	cr_assert_eq(o.num_stimuli, 4);
	cr_assert_eq(o.num_sessions, 2);
	cr_assert_eq(o.clip_length, 75);
	o.num_colors = 2;
	o.num_sessions = 3;
	o.clip_length = 5;
	o.seed = 7;
	int64_t n_neurons[3];
	cr_assert_eq(fv_openretina_data_write(dir, &o, n_neurons), FV_OK, "%s", fv_errmsg());

	/* exactly openretina's files, nothing else */
	char names[1024];
	list_dir(dir, names, sizeof names);
	cr_assert_str_eq(names, "session_0.hdf5 session_1.hdf5 session_2.hdf5 stimuli ");
	list_dir(path_in("or/stimuli"), names, sizeof names);
	cr_assert_str_eq(names, "random_noise_0.npy random_noise_1.npy random_noise_2.npy "
	                        "random_noise_3.npy ");
	double *stim[4];
	for (int i = 0; i < 4; i++) {
		char p[64], want[128];
		snprintf(p, sizeof p, "or/stimuli/random_noise_%d.npy", i);
		FILE *f = fopen(path_in(p), "rb");
		char head[129] = {0};
		cr_assert_eq(fread(head, 1, 128, f), 128);
		/* float64, (colors, (70 + i) * clip_length, 16, 8), as np.save writes it:
		** a 128-byte header, then the doubles */
		snprintf(want, sizeof want,
		         "{'descr': '<f8', 'fortran_order': False, 'shape': (2, %d, 16, 8), }",
		         (70 + i) * 5);
		cr_assert(strstr(head + 10, want) == head + 10, "%s: %s", p, head + 10);
		cr_assert_eq(head[8] + 256 * head[9], 118);
		cr_assert_eq(head[127], '\n');
		size_t numel = (size_t)(2 * (70 + i) * 5 * 128);
		stim[i] = malloc(numel * sizeof(double) + 1);
		cr_assert_eq(fread(stim[i], 1, numel * sizeof(double) + 1, f), numel * sizeof(double),
		             "%s: the data is not (2, %d, 16, 8) float64", p, (70 + i) * 5);
		fclose(f);
	}
	/* white noise: mean 0, variance 1 */
	double s = 0, ss = 0;
	for (int64_t k = 0; k < 2 * 350 * 128; k++) {
		s += stim[0][k];
		ss += stim[0][k] * stim[0][k];
	}
	cr_assert_float_eq(s / (2 * 350 * 128), 0.0, 0.02);
	cr_assert_float_eq(ss / (2 * 350 * 128), 1.0, 0.03);

	for (int k = 0; k < 3; k++) {
		char p[64];
		snprintf(p, sizeof p, "or/session_%d.hdf5", k);
		hid_t f = H5Fopen(path_in(p), H5F_ACC_RDONLY, H5P_DEFAULT);
		cr_assert_geq(f, 0);
		H5G_info_t gi;
		H5Gget_info(f, &gi);
		cr_assert_eq(gi.nlinks, 5, "%s: 4 responses and session_info", p);
		H5Gget_info_by_name(f, "session_info", &gi, H5P_DEFAULT);
		cr_assert_eq(gi.nlinks, 1, "%s: session_info holds celltypes only", p);
		hsize_t dims[4];
		cr_assert_eq(h5_dataset_shape(f, "session_info/celltypes", H5T_STD_I64LE, dims), 1);
		int64_t n = (int64_t)dims[0];
		cr_assert_eq(n, n_neurons[k]);
		cr_assert(n >= 10 && n <= 29, "%s: %lld neurons", p, (long long)n);
		int64_t *types = malloc((size_t)n * sizeof *types);
		H5Dread(H5Dopen2(f, "session_info/celltypes", H5P_DEFAULT), H5T_NATIVE_INT64, H5S_ALL,
		        H5S_ALL, H5P_DEFAULT, types);
		for (int64_t j = 0; j < n; j++)
			cr_assert(types[j] >= 0 && types[j] < 40);
		free(types);
		for (int i = 0; i < 4; i++) {
			char key[64];
			snprintf(key, sizeof key, "responses_random_noise_%d", i);
			cr_assert_eq(h5_dataset_shape(f, key, H5T_IEEE_F64LE, dims), 2);
			cr_assert_eq(dims[0], (hsize_t)n);
			cr_assert_eq(dims[1], (hsize_t)((70 + i) * 5));
		}
		H5Fclose(f);
	}

	/* openretina's response model: the first neurons of session 0 are a
	** window sum on one colour, smoothed and scaled, to rounding error */
	int64_t numel;
	double *resp = read_h5_doubles(path_in("or/session_0.hdf5"), "responses_random_noise_0", &numel);
	for (int j = 0; j < 3; j++) {
		double best = INFINITY, scale = 0, bias = 0;
		for (int64_t c = 0; c < 2; c++)
			for (int64_t side = 2; side <= 5; side++)
				for (int64_t row = 0; row < 15; row++)
					for (int64_t col = 0; col < 7; col++)
						for (int64_t m = 3; m <= 6; m++) {
							double a, b;
							double e = fit_window(stim[0], 350, c, row, col, side, m,
							                      resp + j * 350, &a, &b);
							if (e < best) {
								best = e;
								scale = a;
								bias = b;
							}
						}
		cr_assert_lt(best, 1e-9, "neuron %d: no window explains the response (rms %g)", j, best);
		cr_assert(scale >= 0.5 && scale < 1.5, "neuron %d: scale %g", j, scale);
		cr_assert(bias >= -1e-9 && bias < 1.0, "neuron %d: bias %g", j, bias);
	}
	free(resp);
	for (int i = 0; i < 4; i++)
		free(stim[i]);

	/* read with openretina's hdf5_reader / hdf5_loader values */
	static const char *test_names[] = {"random_noise_2", "random_noise_3"};
	fv_data *d = open_dir(dir, test_names, 2, (const int64_t[]){5, 20, 5, 8});
	cr_assert_eq(fv_data_n_sessions(d), 3);
	const fv_data_info *info = fv_data_get_info(d);
	cr_assert_arr_eq(info->input_shape, ((int64_t[]){2, 16, 8}), 3 * sizeof(int64_t));
	for (size_t k = 0; k < 3; k++) {
		cr_assert_eq(info->n_neurons[k], n_neurons[k]);
		cr_assert_eq(fv_data_n_test(d, k), 2);
		cr_assert_null(fv_data_test(d, k, 0)->responses_by_trial);
		cr_assert_str_eq(info->session_info_names[k][0], "celltypes");
		/* (350 + 355) / 5 = 141 clips, 20 for validation */
		cr_assert_eq(fv_data_train(d, k)->movie->shape[1], 121 * 5);
		cr_assert_eq(fv_data_validation(d, k)->movie->shape[1], 20 * 5);
	}
	fv_data_close(d);
}

Test(data, openretina_create_data_errors)
{
	fv_openretina_data_options o;
	fv_openretina_data_options_default(&o);
	o.num_stimuli = 0;
	int64_t n[2];
	cr_assert_eq(fv_openretina_data_write(path_in("x"), &o, n), FV_ERR_ARG);
	cr_assert(strstr(fv_errmsg(), "must be at least 1, got 3, 0, 2, 75"), "%s", fv_errmsg());
	fv_openretina_data_options_default(&o);
	o.clip_length = 100000;
	cr_assert_eq(fv_openretina_data_write(path_in("x"), &o, n), FV_ERR_ARG);
	cr_assert(strstr(fv_errmsg(), "is too large"), "%s", fv_errmsg());
}

/* ---- out of memory ---------------------------------------------------------------------- */

/* Opening the fixture and drawing a batch of each split. */
static fv_status data_job(void)
{
	fv_data_options o;
	fixture_options(&o);
	fv_data *d = NULL;
	fv_status st = fv_data_open(&o, &d);
	if (st != FV_OK)
		return st;
	fv_batch_iter *it[3] = {fv_data_train_batches(d, 7), fv_data_validation_batches(d),
	                        fv_data_test_batches(d, "random_noise_2")};
	fv_batch b;
	for (int i = 0; i < 3 && st == FV_OK; i++)
		if (it[i] == NULL)
			st = fv_errcode();
		else if (!fv_batch_next(it[i], &b))
			st = fv_errcode() != FV_OK ? fv_errcode() : FV_ERR_ARG;
	for (int i = 0; i < 3; i++)
		fv_batch_iter_free(it[i]);
	fv_data_close(d);
	return st;
}

/* Each allocation fails in turn: the job reports FV_ERR_NOMEM, never a
** code a caller guessed. */
Test(data, every_allocation_failure_is_out_of_memory)
{
	write_fixture();
	fv_alloc_fail_at(0, false);
	cr_assert_eq(data_job(), FV_OK, "%s", fv_errmsg());
	long n = fv_alloc_fail_at(0, false);
	cr_assert_gt(n, 10, "the job allocates");
	for (long i = 1; i <= n; i++) {
		fv_clear_error();
		fv_alloc_fail_at(i, false);
		fv_status st = data_job();
		fv_alloc_fail_at(0, false);
		if (st != FV_OK)
			cr_assert_eq(st, FV_ERR_NOMEM, "allocation %ld of %ld: code %d: %s", i, n, st,
			             fv_errmsg());
	}
}

/* Issue 12 item 4: a dataset whose element count overflows int64 (two
** sizes of 2^36, each plausible alone) is refused with its shape, before
** any allocation.  Chunked and never written, so the file stays tiny. */
Test(data, error_dataset_shape_overflows)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	hsize_t dims[2] = {(hsize_t)1 << 36, (hsize_t)1 << 36}, chunk[2] = {1, 1};
	hid_t space = H5Screate_simple(2, dims, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_chunk(dcpl, 2, chunk);
	hid_t ds = H5Dcreate2(f, "responses_random_noise_0", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl,
	                      H5P_DEFAULT);
	cr_assert_geq(ds, 0);
	H5Dclose(ds);
	H5Pclose(dcpl);
	H5Sclose(space);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_FORMAT, "session_2.hdf5",
	                     "shape (68719476736, 68719476736) is implausibly large");
}

/* ---- issue 12: bad data and bad loader options ------------------------------------------ */

/* A chunk longer than the training movie made the chunk start negative and
** the batch copy read before the movie. */
Test(data, error_chunk_longer_than_training_movie)
{
	write_fixture();
	fv_data_options o;
	fixture_options(&o);
	o.train_chunk_size = 60;
	o.batch_size = 1;
	expect_open_error(&o, FV_ERR_CONFIG,
	                  "session 'session_0': dataloader.train_chunk_size=60 is longer than its "
	                  "training movie (50 frames", NULL);
	o.train_chunk_size = 50; /* exactly the movie: one chunk, valid */
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	fv_batch_iter *it = fv_data_train_batches(d, 3);
	cr_assert_not_null(it, "%s", fv_errmsg());
	fv_batch b;
	for (int i = 0; i < 4 && fv_batch_next(it, &b); i++)
		cr_assert_eq(b.input->shape[2], 50);
	fv_batch_iter_free(it);
	fv_data_close(d);
}

Test(data, error_non_finite_responses)
{
	write_fixture();
	hid_t f = h5_create("session_2.hdf5");
	double v[4 * 40] = {0};
	v[77] = NAN;
	int64_t shape[2] = {4, 40};
	h5_write(f, "responses_random_noise_0", H5T_NATIVE_DOUBLE, 2, shape, v);
	H5Fclose(f);
	expect_fixture_error(FV_ERR_FORMAT, "session_2.hdf5: dataset 'responses_random_noise_0' holds "
	                     "a non-finite value (nan at flat index 77)", NULL);
}

Test(data, error_non_finite_stimulus)
{
	write_fixture();
	char path[512];
	snprintf(path, sizeof path, "%s/stimuli/random_noise_1.npy", tmpdir);
	int64_t shape[4] = {C, 30, H, W};
	double *v = movie_values(1000, 30);
	v[5] = INFINITY;
	write_npy_f64(path, 4, shape, v);
	free(v);
	expect_fixture_error(FV_ERR_FORMAT, "random_noise_1.npy: dataset 'random_noise_1' holds a "
	                     "non-finite value (inf at flat index 5)", NULL);
}

Test(data, error_duplicate_validation_clips)
{
	expect_options_error("dataloader:\n  validation_clip_indices: [1, 2, 1]\n",
	                     "o.yaml:2:35: dataloader.validation_clip_indices: clip 1 is listed twice "
	                     "(items 0 and 2)");
}
