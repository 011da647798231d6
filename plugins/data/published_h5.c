/*
** published_h5.c: the HDF5 reading the published data sets' readers
** share (see published_h5.h).  Arrays are read whole, as h5py's `[()]`
** reads them; numbers follow numpy: a float32 array divided by a Python
** float stays float32 (the divisor rounded to float32 first), any other
** dtype is divided in float64, and the result becomes float32 when the
** dataloader makes tensors of it.
*/
#include <dirent.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "data_files.h"
#include "published_h5.h"

/* ---- files and keys ------------------------------------------------------------ */

fv_status pub_open(const char *path, pub_file *f)
{
	/* libhdf5 prints its error stack by default; the messages here say
	** what failed instead */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	f->path = path;
	f->id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f->id < 0)
		return fv_error(FV_ERR_FORMAT, "%s: not a readable HDF5 file (missing, truncated or "
		                "corrupted?)", path);
	return FV_OK;
}

void pub_close(pub_file *f)
{
	if (f->id >= 0)
		H5Fclose(f->id);
	f->id = -1;
}

/* Every link of `key` exists ("/a/b": "/a", then "/a/b"). */
static bool key_exists(const pub_file *f, const char *key)
{
	size_t n = strlen(key);
	char *prefix = malloc(n + 1);
	bool ok = prefix != NULL && n > 0;
	for (size_t i = 1; ok && i <= n; i++) {
		if (i < n && key[i] != '/')
			continue;
		memcpy(prefix, key, i);
		prefix[i] = '\0';
		ok = H5Lexists(f->id, prefix, H5P_DEFAULT) > 0;
	}
	free(prefix);
	return ok;
}

static H5I_type_t key_type(const pub_file *f, const char *key)
{
	if (!key_exists(f, key))
		return H5I_BADID;
	hid_t o = H5Oopen(f->id, key, H5P_DEFAULT);
	if (o < 0)
		return H5I_BADID;
	H5I_type_t t = H5Iget_type(o);
	H5Oclose(o);
	return t;
}

bool pub_is_group(const pub_file *f, const char *key)
{
	return key_type(f, key) == H5I_GROUP;
}

bool pub_is_dataset(const pub_file *f, const char *key)
{
	return key_type(f, key) == H5I_DATASET;
}

void pub_free_names(char **names, size_t n)
{
	for (size_t i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
}

fv_status pub_keys(const pub_file *f, const char *key, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	H5G_info_t info;
	if (H5Gget_info_by_name(f->id, key, &info, H5P_DEFAULT) < 0)
		return fv_error(FV_ERR_FORMAT, "%s: group '%s' cannot be listed", f->path, key);
	char **v = calloc(info.nlinks ? info.nlinks : 1, sizeof *v);
	if (v == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory");
	for (hsize_t i = 0; i < info.nlinks; i++) {
		ssize_t len = H5Lget_name_by_idx(f->id, key, H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0,
		                                 H5P_DEFAULT);
		v[i] = len >= 0 ? malloc((size_t)len + 1) : NULL;
		if (v[i] == NULL || H5Lget_name_by_idx(f->id, key, H5_INDEX_NAME, H5_ITER_INC, i, v[i],
		                                       (size_t)len + 1, H5P_DEFAULT) < 0) {
			pub_free_names(v, i + 1);
			return fv_error(FV_ERR_FORMAT, "%s: group '%s' cannot be listed", f->path, key);
		}
	}
	*names = v;
	*n = info.nlinks;
	return FV_OK;
}

/* ---- arrays ------------------------------------------------------------------------ */

void pub_array_free(pub_array *a)
{
	free(a->data);
	a->data = NULL;
}

static fv_status read_open(const pub_file *f, hid_t ds, const char *key, int ndim,
                           const char *dims, pub_array *out)
{
	hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
	H5T_class_t cls = H5Tget_class(type);
	int nd = H5Sget_simple_extent_ndims(space);
	hsize_t d[FV_MAX_DIMS];
	fv_status rc = FV_OK;
	if (cls != H5T_INTEGER && cls != H5T_FLOAT)
		rc = fv_error(FV_ERR_FORMAT, "%s: dataset '%s' is not numeric", f->path, key);
	else if (nd != ndim)
		rc = fv_error(FV_ERR_SHAPE, "%s: dataset '%s' has %d dimensions, expected %d (%s)",
		              f->path, key, nd, ndim, dims);
	size_t count = 1;
	if (rc == FV_OK) {
		H5Sget_simple_extent_dims(space, d, NULL);
		out->ndim = nd;
		for (int i = 0; i < nd; i++) {
			out->shape[i] = (int64_t)d[i];
			count *= (size_t)d[i];
		}
		out->f32 = cls == H5T_FLOAT && H5Tget_size(type) == sizeof(float);
		out->data = malloc((count ? count : 1) * sizeof(double));
		if (out->data == NULL)
			rc = fv_error(FV_ERR_NOMEM, "%s: dataset '%s': out of memory", f->path, key);
	}
	if (rc == FV_OK &&
	    H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0)
		rc = fv_error(FV_ERR_FORMAT, "%s: dataset '%s' cannot be read (truncated or damaged "
		              "file?)", f->path, key);
	H5Sclose(space);
	H5Tclose(type);
	return rc;
}

fv_status pub_read(const pub_file *f, const char *key, int ndim, const char *dims,
                   pub_array *out)
{
	memset(out, 0, sizeof *out);
	if (!pub_is_dataset(f, key))
		return fv_error(FV_ERR_NOTFOUND, "%s: dataset '%s' not found in the file", f->path,
		                key);
	hid_t ds = H5Dopen2(f->id, key, H5P_DEFAULT);
	if (ds < 0)
		return fv_error(FV_ERR_FORMAT, "%s: dataset '%s' cannot be opened", f->path, key);
	fv_status rc = read_open(f, ds, key, ndim, dims, out);
	H5Dclose(ds);
	if (rc != FV_OK)
		pub_array_free(out);
	return rc;
}

/* One item of `a / divisor` in numpy's arithmetic. */
static double divide(double x, double divisor, bool f32)
{
	if (f32)
		return (float)x / (float)divisor;
	return x / divisor;
}

static fv_status check_finite(const pub_file *f, const char *key, const fv_tensor *t)
{
	for (int64_t i = 0; i < t->numel; i++)
		if (isnan(t->data[i]))
			return fv_error(FV_ERR_FORMAT, "%s: dataset '%s' holds NaN (item %lld): openretina "
			                "would skip the session's dataloader", f->path, key, (long long)i);
	return FV_OK;
}

fv_tensor *pub_tensor_of(const pub_array *a)
{
	fv_tensor *t = fv_tensor_new(a->ndim, a->shape);
	for (int64_t i = 0; t != NULL && i < t->numel; i++)
		t->data[i] = (fv_real)a->data[i];
	return t;
}

fv_status pub_divided(const pub_file *f, const char *key, const pub_array *a, double divisor,
                      fv_tensor **out)
{
	*out = fv_tensor_new(a->ndim, a->shape);
	if (*out == NULL)
		return fv_errcode();
	for (int64_t i = 0; i < (*out)->numel; i++)
		(*out)->data[i] = (fv_real)divide(a->data[i], divisor, a->f32);
	fv_status rc = check_finite(f, key, *out);
	if (rc != FV_OK) {
		fv_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- folders ----------------------------------------------------------------------- */

char *pub_join(const char *a, const char *b)
{
	return fv_data_join(a, b);
}

static bool is_dir(const char *dir, const char *name)
{
	char *p = pub_join(dir, name);
	struct stat st;
	bool yes = p != NULL && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	return yes;
}

fv_status pub_scandir(const char *dir, bool dirs_only, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: not a readable directory", dir);
	size_t cap = 0;
	fv_status rc = FV_OK;
	for (struct dirent *e = readdir(d); rc == FV_OK && e != NULL; e = readdir(d)) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    (dirs_only && !is_dir(dir, e->d_name)))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			char **grown = realloc(*names, cap * sizeof *grown);
			if (grown == NULL) {
				rc = fv_error(FV_ERR_NOMEM, "out of memory");
				break;
			}
			*names = grown;
		}
		(*names)[*n] = strdup(e->d_name);
		if ((*names)[(*n)++] == NULL)
			rc = fv_error(FV_ERR_NOMEM, "out of memory");
	}
	closedir(d);
	if (rc != FV_OK) {
		pub_free_names(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

fv_status pub_base_path(const fv_data_inputs *in, const char *base_data_path, char **out)
{
	const fv_config_node *spec = fv_data_input_spec(in);
	if (base_data_path == NULL)
		return fv_error_at(spec, FV_ERR_CONFIG, "%s.base_data_path: expected a path",
		                   fv_node_keypath(spec));
	fv_status rc = fv_data_local_path(base_data_path, NULL, out);
	if (rc != FV_OK)
		return fv_error_at(spec, rc, "%s.base_data_path: %s", fv_node_keypath(spec),
		                   fv_errmsg());
	return FV_OK;
}

/* ---- stimuli ----------------------------------------------------------------------- */

/* (frames, h, w) as a (1, frames, h, w) float32 movie. */
static fv_tensor *movie_of(const pub_array *a)
{
	int64_t shape[4] = {1, a->shape[0], a->shape[1], a->shape[2]};
	fv_tensor *t = fv_tensor_new(4, shape);
	for (int64_t i = 0; t != NULL && i < t->numel; i++)
		t->data[i] = (fv_real)(float)a->data[i];
	return t;
}

/* normalize_train_test_movies: torch's float32 mean and unbiased std of
** the train movie, subtracted and divided in float32. */
static void normalize(fv_tensor *train, fv_tensor *test, double *mean_out, double *std_out)
{
	double sum = 0, ss = 0;
	for (int64_t i = 0; i < train->numel; i++)
		sum += train->data[i];
	double mean = sum / (double)train->numel;
	for (int64_t i = 0; i < train->numel; i++)
		ss += (train->data[i] - mean) * (train->data[i] - mean);
	float m = (float)mean, s = (float)sqrt(ss / (double)(train->numel - 1));
	fv_tensor *movies[2] = {train, test};
	for (int k = 0; k < 2; k++)
		for (int64_t i = 0; i < movies[k]->numel; i++)
			movies[k]->data[i] = (fv_real)(((float)movies[k]->data[i] - m) / s);
	*mean_out = m;
	*std_out = s;
}

static fv_status read_movie(const pub_file *f, const char *key, fv_tensor **out)
{
	pub_array a;
	fv_status rc = pub_read(f, key, 3, "frames, height, width", &a);
	if (rc != FV_OK)
		return rc;
	*out = movie_of(&a);
	pub_array_free(&a);
	return *out != NULL ? FV_OK : fv_errcode();
}

fv_status pub_movies(const pub_file *f, bool normalize_stimuli, const char *stim_id,
                     fv_dvalue **out)
{
	fv_tensor *train = NULL, *test = NULL;
	fv_status rc = read_movie(f, "/train/stimulus", &train);
	if (rc == FV_OK)
		rc = read_movie(f, "/test/stimulus", &test);
	if (rc == FV_OK && (train->shape[2] != test->shape[2] || train->shape[3] != test->shape[3]))
		rc = fv_error(FV_ERR_SHAPE, "%s: dataset '/test/stimulus' has frames of %lldx%lld, "
		              "'/train/stimulus' of %lldx%lld", f->path, (long long)test->shape[2],
		              (long long)test->shape[3], (long long)train->shape[2],
		              (long long)train->shape[3]);
	if (rc == FV_OK && train->shape[1] < 2 && normalize_stimuli)
		rc = fv_error(FV_ERR_SHAPE, "%s: dataset '/train/stimulus' has %lld frames: its "
		              "standard deviation (normalize_stimuli) needs two", f->path,
		              (long long)train->shape[1]);
	if (rc != FV_OK) {
		fv_tensor_free(train);
		fv_tensor_free(test);
		return rc;
	}
	double mean = NAN, std = NAN;
	if (normalize_stimuli)
		normalize(train, test, &mean, &std);
	fv_dvalue *tests = fv_dvalue_map(NULL);
	if (tests == NULL || fv_dvalue_set(tests, "test", fv_dvalue_tensor(test)) != FV_OK) {
		fv_tensor_free(train);
		fv_dvalue_free(tests);
		if (tests == NULL)
			fv_tensor_free(test);
		return fv_errcode();
	}
	*out = fv_dvalue_movies_split(train, tests, NULL, mean, std, stim_id);
	return *out != NULL ? FV_OK : fv_errcode();
}

/* ---- test repeats, one dataset per cell ---------------------------------------------- */

/* Python's int() of what follows the last "cell" of `name`: optional
** blanks and sign, digits with single underscores between them. */
static bool cell_number(const char *name, long long *out)
{
	const char *p = name, *m;
	while ((m = strstr(p, "cell")) != NULL)
		p = m + 4;
	while (*p == ' ' || *p == '\t')
		p++;
	int sign = *p == '-' ? -1 : 1;
	if (*p == '+' || *p == '-')
		p++;
	long long v = 0;
	bool digit = false;
	for (; *p != '\0' && *p != ' ' && *p != '\t'; p++) {
		if (*p == '_' && digit && p[1] >= '0' && p[1] <= '9')
			continue;
		if (*p < '0' || *p > '9' || v > (1LL << 58))
			return false;
		v = v * 10 + (*p - '0');
		digit = true;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	*out = sign * v;
	return digit && *p == '\0';
}

typedef struct cell {
	char *key;
	long long number;
	pub_array a;
} cell;

/* The keys holding "cell" and their numbers, in sorted()'s stable order. */
static fv_status list_cells(const pub_file *f, const char *group, cell **cells, size_t *n)
{
	char **names;
	size_t k;
	fv_status rc = pub_keys(f, group, &names, &k);
	*cells = rc == FV_OK ? calloc(k ? k : 1, sizeof **cells) : NULL;
	*n = 0;
	if (rc == FV_OK && *cells == NULL)
		rc = fv_error(FV_ERR_NOMEM, "out of memory");
	for (size_t i = 0; rc == FV_OK && i < k; i++) {
		if (strstr(names[i], "cell") == NULL)
			continue;
		cell c = {.key = pub_join(group, names[i])};
		if (c.key == NULL)
			rc = fv_errcode();
		else if (!cell_number(names[i], &c.number))
			rc = fv_error(FV_ERR_FORMAT, "%s: '%s': openretina orders the cells by the "
			              "integer after 'cell', which this name lacks", f->path, c.key);
		size_t j = (*n)++;
		for (; j > 0 && (*cells)[j - 1].number > c.number; j--)
			(*cells)[j] = (*cells)[j - 1];
		(*cells)[j] = c;
	}
	pub_free_names(names, k);
	return rc;
}

static void free_cells(cell *cells, size_t n)
{
	for (size_t i = 0; cells != NULL && i < n; i++) {
		free(cells[i].key);
		pub_array_free(&cells[i].a);
	}
	free(cells);
}

/* np.stack(cells) / fr rearranged to (repeats, neurons, time). */
static fv_status stack_cells(const pub_file *f, const cell *cells, size_t n, double fr,
                             pub_array *out)
{
	bool f32 = true;
	for (size_t i = 0; i < n; i++) {
		f32 = f32 && cells[i].a.f32;
		if (cells[i].a.shape[0] != cells[0].a.shape[0] ||
		    cells[i].a.shape[1] != cells[0].a.shape[1])
			return fv_error(FV_ERR_SHAPE, "%s: dataset '%s' is %s, '%s' %s: the cells' "
			                "repeats should have one shape", f->path, cells[i].key,
			                fv_shape_str(2, cells[i].a.shape), cells[0].key,
			                fv_shape_str(2, cells[0].a.shape));
	}
	int64_t reps = cells[0].a.shape[0], frames = cells[0].a.shape[1];
	*out = (pub_array){.ndim = 3, .shape = {reps, (int64_t)n, frames}, .f32 = f32};
	out->data = malloc((size_t)(reps * (int64_t)n * frames + 1) * sizeof(double));
	if (out->data == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: the test repeats: out of memory", f->path);
	for (size_t c = 0; c < n; c++)
		for (int64_t r = 0; r < reps; r++)
			for (int64_t t = 0; t < frames; t++)
				out->data[(r * (int64_t)n + (int64_t)c) * frames + t] =
					divide(cells[c].a.data[r * frames + t], fr, f32);
	return FV_OK;
}

fv_status pub_cell_repeats(const pub_file *f, const char *group, double fr, bool skip_groups,
                           pub_array *out)
{
	memset(out, 0, sizeof *out);
	cell *cells = NULL;
	size_t n = 0, used = 0;
	fv_status rc = list_cells(f, group, &cells, &n);
	for (size_t i = 0; rc == FV_OK && i < n; i++) {
		if (skip_groups && !pub_is_dataset(f, cells[i].key)) {
			free(cells[i].key);
			cells[i].key = NULL;
			continue;
		}
		cells[used] = cells[i];
		if (used++ != i)
			cells[i] = (cell){0};
		rc = pub_read(f, cells[used - 1].key, 2, "repeats, time", &cells[used - 1].a);
	}
	if (rc == FV_OK && used > 0)
		rc = stack_cells(f, cells, used, fr, out);
	free_cells(cells, n);
	return rc;
}

/* ---- responses --------------------------------------------------------------------- */

static fv_status read_responses(const pub_file *f, const char *train_key, const char *test_key,
                        double fr, fv_tensor **train, fv_tensor **test)
{
	*train = *test = NULL;
	pub_array a = {0}, b = {0};
	fv_status rc = pub_read(f, train_key, 2, "neurons, time", &a);
	if (rc == FV_OK)
		rc = pub_read(f, test_key, 2, "neurons, time", &b);
	if (rc == FV_OK && a.shape[0] != b.shape[0])
		rc = fv_error(FV_ERR_SHAPE, "%s: dataset '%s' has %lld neurons, '%s' %lld: train and "
		              "test responses should have the same number of neurons", f->path,
		              train_key, (long long)a.shape[0], test_key, (long long)b.shape[0]);
	if (rc == FV_OK)
		rc = pub_divided(f, train_key, &a, fr, train);
	if (rc == FV_OK)
		rc = pub_divided(f, test_key, &b, fr, test);
	pub_array_free(&a);
	pub_array_free(&b);
	if (rc != FV_OK) {
		fv_tensor_free(*train);
		fv_tensor_free(*test);
		*train = *test = NULL;
	}
	return rc;
}

fv_status pub_check_repeats(const pub_file *f, const char *key, const fv_tensor *repeats,
                            const fv_tensor *test)
{
	if (repeats->ndim != 3 || repeats->shape[1] != test->shape[0] ||
	    repeats->shape[2] != test->shape[1])
		return fv_error(FV_ERR_SHAPE, "%s: the test repeats under '%s' are %s, expected "
		                "(repeats, %lld neurons, %lld frames) as the test responses",
		                f->path, key, fv_shape_str(repeats->ndim, repeats->shape),
		                (long long)test->shape[0], (long long)test->shape[1]);
	return check_finite(f, key, repeats);
}

static fv_dvalue *single_test(fv_tensor *t)
{
	fv_dvalue *m = fv_dvalue_map(NULL);
	if (m == NULL) {
		fv_tensor_free(t);
		return NULL;
	}
	if (fv_dvalue_set(m, "test", fv_dvalue_tensor(t)) != FV_OK) {
		fv_dvalue_free(m);
		return NULL;
	}
	return m;
}

static fv_status responses_split(fv_tensor *train, fv_tensor *test, fv_tensor *by_trial,
                              const char *stim_id, fv_dvalue **out)
{
	fv_dvalue *tests = single_test(test);
	fv_dvalue *trials = by_trial != NULL ? single_test(by_trial) : NULL;
	if (tests == NULL || (by_trial != NULL && trials == NULL)) {
		/* single_test took its tensor either way */
		fv_tensor_free(train);
		fv_dvalue_free(tests);
		fv_dvalue_free(trials);
		return fv_errcode();
	}
	*out = fv_dvalue_responses_split(train, tests, trials, stim_id, NULL);
	return *out != NULL ? FV_OK : fv_errcode();
}

fv_status pub_session_responses(const pub_file *f, const char *response_type, double fr,
                                const char *stim_id, pub_repeats_fn repeats, const void *opts,
                                fv_dvalue **out)
{
	char train_key[512], test_key[512];
	snprintf(train_key, sizeof train_key, "/train/response/%s", response_type);
	snprintf(test_key, sizeof test_key, "/test/response/%s", response_type);
	fv_tensor *train, *test, *by_trial = NULL;
	fv_status rc = read_responses(f, train_key, test_key, fr, &train, &test);
	if (rc == FV_OK)
		rc = repeats(opts, f, test, &by_trial);
	if (rc != FV_OK) {
		fv_tensor_free(train);
		fv_tensor_free(test);
		return rc;
	}
	return responses_split(train, test, by_trial, stim_id, out);
}

fv_status pub_read_file(const char *path, const char *session, pub_read_fn read,
                        const void *opts, fv_dvalue *all)
{
	pub_file f;
	fv_dvalue *v = NULL;
	fv_status rc = pub_open(path, &f);
	if (rc == FV_OK) {
		rc = read(opts, &f, &v);
		pub_close(&f);
	}
	return rc == FV_OK ? fv_dvalue_set(all, session, v) : rc;
}
