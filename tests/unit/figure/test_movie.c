/*
** test_movie.c: fv_movie_write, read back through libavformat/libavcodec:
** the container, the codec, one video frame per stimulus frame, the frame
** size asked for; and the errors for what cannot be a movie.
*/
#include <criterion/criterion.h>
#include <libavformat/avformat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fovea/figure.h"

/* A (2, 7, 5, 6) stimulus with a moving bright pixel. */
static fv_tensor *moving(void)
{
	fv_tensor *t = fv_tensor_new(4, (int64_t[]){2, 7, 5, 6});
	cr_assert_not_null(t);
	for (int64_t c = 0; c < 2; c++)
		for (int64_t k = 0; k < 7; k++)
			t->data[((c * 7 + k) * 5 + 2) * 6 + k % 6] = (fv_real)(c ? -1.0 : 1.0);
	return t;
}

typedef struct movie_info {
	int frames, width, height;
	enum AVCodecID codec;
	char muxer[32];
} movie_info;

/* Count the video packets of `path` and read its stream parameters. */
static movie_info read_movie(const char *path)
{
	movie_info m = {0};
	AVFormatContext *ic = NULL;
	cr_assert_eq(avformat_open_input(&ic, path, NULL, NULL), 0, "cannot open %s", path);
	cr_assert_geq(avformat_find_stream_info(ic, NULL), 0);
	int v = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	cr_assert_geq(v, 0, "%s has no video stream", path);
	m.width = ic->streams[v]->codecpar->width;
	m.height = ic->streams[v]->codecpar->height;
	m.codec = ic->streams[v]->codecpar->codec_id;
	snprintf(m.muxer, sizeof m.muxer, "%s", ic->iformat->name);
	AVPacket *pkt = av_packet_alloc();
	while (av_read_frame(ic, pkt) >= 0) {
		m.frames += pkt->stream_index == v;
		av_packet_unref(pkt);
	}
	av_packet_free(&pkt);
	avformat_close_input(&ic);
	return m;
}

static void temp_name(char *buf, size_t n, const char *suffix)
{
	snprintf(buf, n, "/tmp/fovea_test_movie_XXXXXX%s", suffix);
	int fd = mkstemps(buf, (int)strlen(suffix));
	cr_assert_geq(fd, 0);
	close(fd);
}

Test(movie, mp4_has_a_frame_per_stimulus_frame_and_the_size_asked_for)
{
	fv_tensor *t = moving();
	double resp[5] = {0.1, 0.4, 0.2, 0.9, 0.3};
	fv_movie_args a = {.stimulus = t, .title = "MEI s1 neuron 0", .responses = resp,
	                   .n_time = 5, .n_traces = 1, .width = 641};
	char path[64];
	temp_name(path, sizeof path, ".mp4");
	cr_assert_eq(fv_movie_write(&a, path), FV_OK, "%s", fv_errmsg());
	movie_info m = read_movie(path);
	remove(path);
	cr_expect_eq(m.frames, 7);
	cr_expect_eq(m.width, 642, "even widths for YUV 4:2:0: %d", m.width);
	cr_expect_eq(m.height % 2, 0);
	cr_expect(m.height > 300 && m.height < m.width, "height %d", m.height);
	cr_expect(m.codec == AV_CODEC_ID_H264 || m.codec == AV_CODEC_ID_MPEG4, "codec %d", m.codec);
	cr_expect(strstr(m.muxer, "mp4") != NULL, "%s", m.muxer);
	char part[80];
	snprintf(part, sizeof part, "%s.part", path);
	cr_expect_neq(access(part, F_OK), 0, "the temporary file is gone");
	fv_tensor_free(t);
}

Test(movie, gif_and_animated_png_fallbacks)
{
	fv_tensor *t = moving();
	fv_movie_args a = {.stimulus = t, .width = 300};
	const char *ext[] = {".gif", ".png"};
	const char *muxer[] = {"gif", "apng"};
	for (int i = 0; i < 2; i++) {
		char path[64];
		temp_name(path, sizeof path, ext[i]);
		cr_assert_eq(fv_movie_write(&a, path), FV_OK, "%s", fv_errmsg());
		movie_info m = read_movie(path);
		remove(path);
		cr_expect_eq(m.frames, 7, "%s: %d frames", ext[i], m.frames);
		cr_expect_eq(m.width, 300);
		cr_expect_eq(strcmp(m.muxer, muxer[i]), 0, "%s", m.muxer);
	}
	fv_tensor_free(t);
}

Test(movie, what_cannot_be_a_movie_is_an_error)
{
	fv_tensor *t = moving();
	fv_movie_args a = {.stimulus = t};
	cr_expect_eq(fv_movie_write(&a, "/tmp/x.avi"), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "/tmp/x.avi: cannot tell the movie format") != NULL, "%s",
	          fv_errmsg());
	double resp[9] = {0};
	a.responses = resp;
	a.n_time = 9;
	a.n_traces = 1;
	cr_expect_eq(fv_movie_write(&a, "/tmp/x.mp4"), FV_ERR_SHAPE);
	cr_expect(strstr(fv_errmsg(), "9 response steps of 1 traces under a stimulus of 7 frames") !=
	          NULL, "%s", fv_errmsg());
	a.responses = NULL;
	cr_expect_eq(fv_movie_write(&a, "/nonexistent-dir/x.mp4"), FV_ERR_IO);
	cr_expect(strstr(fv_errmsg(), "/nonexistent-dir/x.mp4") != NULL, "%s", fv_errmsg());
	fv_tensor *flat = fv_tensor_new(2, (int64_t[]){3, 4});
	a.stimulus = flat;
	cr_expect_eq(fv_movie_write(&a, "/tmp/x.mp4"), FV_ERR_SHAPE);
	fv_tensor_free(flat);
	fv_tensor_free(t);
}
