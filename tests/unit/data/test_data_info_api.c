/*
** test_data_info_api.c: what `fovea data-info` reads besides the splits:
** the readers' filter counts (fv_data_n_filters, fv_data_filter) and the
** start frames of each batch (fv_batch_iter_starts).
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fovea/data_plugin.h"

/* A (1, frames, 1, 3) movie whose every pixel of frame t holds t: a batch's
** first input value names the frame its chunk starts at. */
static fv_tensor *frame_numbered_movie(int64_t frames)
{
	fv_tensor *t = fv_tensor_new(4, (int64_t[]){1, frames, 1, 3});
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (fv_real)(i / 3);
	return t;
}

static fv_dvalue *test_dict(fv_tensor *t)
{
	fv_dvalue *d = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(d, "test", fv_dvalue_tensor(t)), FV_OK);
	return d;
}

static fv_dvalue *split_with_counts(int64_t neurons, int64_t frames, fv_dvalue *counts)
{
	fv_tensor *train = fv_tensor_new(2, (int64_t[]){neurons, frames});
	fv_tensor *test = fv_tensor_new(2, (int64_t[]){neurons, 6});
	for (int64_t i = 0; i < train->numel; i++)
		train->data[i] = (fv_real)(i % 7);
	fv_dvalue *s = fv_dvalue_responses_split(train, test_dict(test), NULL, NULL, NULL);
	cr_assert_not_null(s, "%s", fv_errmsg());
	if (counts != NULL)
		cr_assert_eq(fv_dvalue_set(s, "filter_counts", counts), FV_OK);
	return s;
}

static fv_dvalue *counts_of(const char *a, double na, const char *b, double nb)
{
	fv_dvalue *m = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(m, a, fv_dvalue_number(na)), FV_OK);
	cr_assert_eq(fv_dvalue_set(m, b, fv_dvalue_number(nb)), FV_OK);
	return m;
}

static fv_dvalue *shared_movies(int64_t frames)
{
	return fv_dvalue_movies_split(frame_numbered_movie(frames),
	                              test_dict(frame_numbered_movie(6)), NULL, 0.0, 1.0, NULL);
}

static void small_options(fv_data_options *o)
{
	fv_data_options_default(o);
	o->clip_length = 10;
	o->num_val_clips = 2;
	o->train_chunk_size = 4;
	o->batch_size = 3;
}

Test(data_info_api, filter_counts_are_kept_per_session_in_order)
{
	fv_dvalue *movies = shared_movies(60);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "b",
	                           split_with_counts(2, 60, counts_of("quality", 5, "celltype", 2))),
	             FV_OK);
	cr_assert_eq(fv_dvalue_set(responses, "a", split_with_counts(3, 60, NULL)), FV_OK);
	fv_data_options o;
	small_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, movies, responses, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_data_session_name(d, 0), "a");
	cr_assert_eq(fv_data_n_filters(d, 0), 0);
	cr_assert_eq(fv_data_n_filters(d, 1), 2);
	int64_t removed = -1;
	cr_assert_str_eq(fv_data_filter(d, 1, 0, &removed), "quality");
	cr_assert_eq(removed, 5);
	cr_assert_str_eq(fv_data_filter(d, 1, 1, &removed), "celltype");
	cr_assert_eq(removed, 2);
	cr_assert_null(fv_data_filter(d, 1, 2, &removed));
	cr_assert_eq(removed, 0);
	cr_assert_eq(fv_data_n_filters(d, 7), 0, "no such session");
	fv_data_close(d);
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

Test(data_info_api, a_filter_count_that_is_no_count_names_the_session_and_filter)
{
	fv_dvalue *movies = shared_movies(60);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "s",
	                           split_with_counts(2, 60, counts_of("quality", 1.5, "x", 0))),
	             FV_OK);
	fv_data_options o;
	small_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, movies, responses, &d), FV_ERR_FORMAT);
	cr_assert_null(d);
	cr_assert(strstr(fv_errmsg(), "session 's'") != NULL, "%s", fv_errmsg());
	cr_assert(strstr(fv_errmsg(), "filter_counts['quality']") != NULL, "%s", fv_errmsg());
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

/* Every training batch's starts are the frames its chunks begin at, all
** of them inside the training movie; together they are each chunk of a pass
** once (a pass is n_samples / batch_size whole batches). */
Test(data_info_api, batch_starts_name_the_frames_of_each_chunk)
{
	fv_dvalue *movies = shared_movies(80);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "s", split_with_counts(2, 80, NULL)), FV_OK);
	fv_data_options o;
	small_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, movies, responses, &d), FV_OK, "%s", fv_errmsg());
	fv_batch_iter *it = fv_data_train_batches(d, 11);
	cr_assert_not_null(it, "%s", fv_errmsg());
	int64_t n = -1;
	cr_assert_null(fv_batch_iter_starts(it, &n));
	cr_assert_eq(n, 0);
	const fv_movie_set *train = fv_data_train(d, 0);
	int64_t frames = train->movie->shape[1], batches = 0;
	fv_batch b;
	while (fv_batch_next(it, &b)) {
		const int64_t *starts = fv_batch_iter_starts(it, &n);
		cr_assert_eq(n, 3);
		cr_assert_eq(b.input->shape[0], n);
		for (int64_t i = 0; i < n; i++) {
			cr_assert(starts[i] >= 0 && starts[i] + 4 <= frames, "start %lld", (long long)starts[i]);
			/* input (B, C=1, T=4, H=1, W=3): the chunk's first pixel */
			fv_real first = b.input->data[i * 4 * 3];
			fv_real want = train->movie->data[starts[i] * 3];
			cr_assert_float_eq(first, want, 0, "batch %lld sample %lld", (long long)batches,
			                   (long long)i);
		}
		batches++;
	}
	cr_assert_eq(batches, train->n_batches);
	fv_batch_iter_free(it);
	fv_data_close(d);
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

/* ---- bounded memory: sessions showing the same movies hold them once ---------------- */

Test(data_info_api, sessions_of_one_movie_split_share_its_movies_and_own_their_responses)
{
	fv_dvalue *movies = shared_movies(60);
	fv_dvalue *responses = fv_dvalue_map(NULL);
	cr_assert_eq(fv_dvalue_set(responses, "a", split_with_counts(2, 60, NULL)), FV_OK);
	cr_assert_eq(fv_dvalue_set(responses, "b", split_with_counts(3, 60, NULL)), FV_OK);
	fv_data_options o;
	small_options(&o);
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open_values(&o, movies, responses, &d), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(fv_data_train(d, 0)->movie, fv_data_train(d, 1)->movie);
	cr_assert_eq(fv_data_validation(d, 0)->movie, fv_data_validation(d, 1)->movie);
	cr_assert_eq(fv_data_test(d, 0, 0)->movie, fv_data_test(d, 0, 0)->movie);
	cr_assert_eq(fv_data_test(d, 0, 0)->movie, fv_data_test(d, 1, 0)->movie);
	cr_assert_neq(fv_data_train(d, 0)->responses, fv_data_train(d, 1)->responses);
	/* the shared movie is still the split's: frame t of the training movie */
	const fv_tensor *train = fv_data_train(d, 1)->movie;
	cr_assert_eq(train->shape[1], 40, "60 frames: 6 clips of 10, 2 for validation");
	fv_data_close(d);
	fv_dvalue_free(responses);
	fv_dvalue_free(movies);
}

Test(data_info_api, the_hdf5_layout_shares_the_stimuli_of_its_sessions)
{
	char dir[] = "/tmp/fovea_share_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	fv_synthetic_options so;
	fv_synthetic_options_default(&so);
	so.n_sessions = 3;
	so.train_frames = 120;
	so.test_frames = 30;
	so.height = 6;
	so.width = 5;
	so.channels = 1;
	cr_assert_eq(fv_synthetic_write(dir, &so), FV_OK, "%s", fv_errmsg());
	static const char *const tests[] = {"test"};
	fv_data_options o;
	small_options(&o);
	o.data_dir = dir;
	o.test_names = tests;
	o.n_test_names = 1;
	fv_data *d = NULL;
	cr_assert_eq(fv_data_open(&o, &d), FV_OK, "%s", fv_errmsg());
	for (size_t s = 1; s < 3; s++) {
		cr_assert_eq(fv_data_train(d, s)->movie, fv_data_train(d, 0)->movie);
		cr_assert_eq(fv_data_validation(d, s)->movie, fv_data_validation(d, 0)->movie);
		cr_assert_eq(fv_data_test(d, s, 0)->movie, fv_data_test(d, 0, 0)->movie);
	}
	/* 2 x 120 frames: 24 clips of 10, 2 for validation */
	cr_assert_eq(fv_data_train(d, 2)->movie->shape[1], 220);
	fv_data_close(d);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}
