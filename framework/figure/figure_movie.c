/*
** figure_movie.c: fv_movie_write, a stimulus as a movie.  Every frame is
** drawn with the figure layer (figure_internal.h) on a pixel buffer and
** handed to FFmpeg's libraries: libswscale converts it to the encoder's
** pixel format, libavcodec encodes it (H.264 for .mp4, or MPEG-4 part 2
** where this libavcodec has no H.264 encoder; GIF; animated PNG) and
** libavformat writes the container, to a temporary file renamed at the end.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "base/base_internal.h"
#include "figure/figure_internal.h"

static const fv_rgb ink = {0, 0, 0}, border = {170, 170, 170};

/* ---- the frames ------------------------------------------------------------------------ */

typedef struct movie_layout {
	int64_t C, T, H, W;
	double pw, ph;          /* one channel panel, points */
	double top, plot_top, plot_h, width, height;
	double vmax;
} movie_layout;

static void layout_init(movie_layout *L, const int64_t d[4], const fv_movie_args *a,
                        const fv_tensor *x)
{
	L->C = d[0];
	L->T = d[1];
	L->H = d[2];
	L->W = d[3];
	double side = (double)(L->H > L->W ? L->H : L->W);
	L->pw = 150 * (double)L->W / side;
	L->ph = 150 * (double)L->H / side;
	L->top = 58;
	double panels = (double)L->C * (L->pw + 10);
	L->width = 24 + (panels > 300 ? panels : 300) + 70;
	L->plot_top = L->top + L->ph + 34;
	L->plot_h = a->responses != NULL ? 100 : 0;
	L->height = a->responses != NULL ? L->plot_top + L->plot_h + 40 : L->top + L->ph + 16;
	L->vmax = fv__max_abs(x->data, x->numel);
	if (L->width < 360)
		L->width = 360;
}

static void draw_stimulus_frame(fv__fig *f, const movie_layout *L, const fv_real *x, int64_t t)
{
	char label[64];
	for (int64_t c = 0; c < L->C; c++) {
		double px = 40 + (double)c * (L->pw + 10);
		fv__fig_image(f, px, L->top, L->pw, L->ph, (int)L->H, (int)L->W,
		              x + (c * L->T + t) * L->H * L->W, L->W, 1, L->vmax);
		fv__fig_frame(f, px, L->top, L->pw, L->ph, border, 0.5);
		snprintf(label, sizeof label, "channel %lld", (long long)c);
		fv__fig_text(f, px + L->pw / 2, L->top - 5, 8.5, FV__CENTRE, fv_series_colour((int)c),
		             false, false, label);
	}
	fv__fig_colorbar(f, 40 + (double)L->C * (L->pw + 10), L->top, 7, L->ph, L->vmax, NULL);
}

static void draw_responses(fv__fig *f, const movie_layout *L, const fv_movie_args *a,
                           double *column, fv__series *s, int64_t t)
{
	int64_t n = a->n_time;
	for (int k = 0; k < a->n_traces; k++) {
		for (int64_t i = 0; i < n; i++)
			column[k * n + i] = a->responses[i * a->n_traces + k];
		s[k] = (fv__series){column + k * n, (int)n, (double)(L->T - n),
		                    a->n_traces == 1 ? FV_RGB(20, 20, 20) : fv_series_colour(k)};
	}
	fv__plot p = {40, L->plot_top, L->width - 110, L->plot_h, NULL, "frame",
	              a->trace_label ? a->trace_label : "response", 0, (double)(L->T - 1),
	              (double)t};
	fv__fig_line_plot(f, &p, a->n_traces, s);
}

static void draw_frame(fv__fig *f, const movie_layout *L, const fv_movie_args *a,
                       const fv_real *x, double *column, fv__series *s, int64_t t)
{
	fv__fig_rect(f, 0, 0, L->width, L->height, FV_RGB(255, 255, 255));
	if (a->title != NULL)
		fv__fig_text(f, 12, 22, 12, FV__LEFT, ink, true, false, a->title);
	char counter[64];
	snprintf(counter, sizeof counter, "frame %lld / %lld", (long long)t + 1, (long long)L->T);
	fv__fig_text(f, L->width - 12, 40, 9.5, FV__RIGHT, ink, false, false, counter);
	draw_stimulus_frame(f, L, x, t);
	if (a->responses != NULL)
		draw_responses(f, L, a, column, s, t);
}

/* ---- the encoder ------------------------------------------------------------------------- */

typedef struct encoder {
	AVFormatContext *oc;
	AVCodecContext *cc;
	AVStream *st;
	AVFrame *frame;
	AVPacket *pkt;
	struct SwsContext *sws;
	const char *path;
	bool header_written;
} encoder;

typedef struct container {
	const char *ext, *muxer;
	enum AVCodecID codec, fallback;
	enum AVPixelFormat pix;
} container;

static const container containers[] = {
	{"mp4", "mp4", AV_CODEC_ID_H264, AV_CODEC_ID_MPEG4, AV_PIX_FMT_YUV420P},
	{"gif", "gif", AV_CODEC_ID_GIF, AV_CODEC_ID_NONE, AV_PIX_FMT_RGB8},
	{"png", "apng", AV_CODEC_ID_APNG, AV_CODEC_ID_NONE, AV_PIX_FMT_RGB24},
	{"apng", "apng", AV_CODEC_ID_APNG, AV_CODEC_ID_NONE, AV_PIX_FMT_RGB24},
};

static const container *container_of(const char *path)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (dot == NULL || (slash != NULL && dot < slash))
		return NULL;
	for (size_t i = 0; i < sizeof containers / sizeof containers[0]; i++)
		if (strcasecmp(dot + 1, containers[i].ext) == 0)
			return &containers[i];
	return NULL;
}

static fv_status av_failed(const encoder *e, const char *what, int err)
{
	char msg[AV_ERROR_MAX_STRING_SIZE] = "";
	av_strerror(err, msg, sizeof msg);
	return fv_error(err == AVERROR(ENOMEM) ? FV_ERR_NOMEM : FV_ERR_IO, "%s: %s: %s", e->path,
	                what, msg);
}

static fv_status open_codec(encoder *e, const container *k, int width, int height, int fps)
{
	const AVCodec *codec = avcodec_find_encoder(k->codec);
	if (codec == NULL && k->fallback != AV_CODEC_ID_NONE)
		codec = avcodec_find_encoder(k->fallback);
	if (codec == NULL)
		return fv_error(FV_ERR_NOTFOUND, "%s: this FFmpeg has no %s encoder", e->path, k->ext);
	e->cc = avcodec_alloc_context3(codec);
	e->st = avformat_new_stream(e->oc, NULL);
	if (e->cc == NULL || e->st == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for the encoder", e->path);
	e->cc->width = width;
	e->cc->height = height;
	e->cc->pix_fmt = k->pix;
	e->cc->time_base = (AVRational){1, fps};
	e->cc->framerate = (AVRational){fps, 1};
	e->st->time_base = e->cc->time_base;
	if (codec->id == AV_CODEC_ID_MPEG4)
		e->cc->bit_rate = 4000000;
	if (codec->id == AV_CODEC_ID_H264)
		av_opt_set(e->cc->priv_data, "crf", "18", 0); /* near-lossless: the colours matter */
	if (e->oc->oformat->flags & AVFMT_GLOBALHEADER)
		e->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	int err = avcodec_open2(e->cc, codec, NULL);
	if (err < 0)
		return av_failed(e, "opening the encoder", err);
	err = avcodec_parameters_from_context(e->st->codecpar, e->cc);
	return err < 0 ? av_failed(e, "the stream parameters", err) : FV_OK;
}

static fv_status open_encoder(encoder *e, const container *k, const char *tmp, int width,
                              int height, int fps)
{
	int err = avformat_alloc_output_context2(&e->oc, NULL, k->muxer, tmp);
	if (err < 0)
		return av_failed(e, "the container", err);
	fv_status rc = open_codec(e, k, width, height, fps);
	if (rc != FV_OK)
		return rc;
	e->frame = av_frame_alloc();
	e->pkt = av_packet_alloc();
	e->sws = sws_getContext(width, height, AV_PIX_FMT_BGR0, width, height, k->pix, SWS_BICUBIC,
	                        NULL, NULL, NULL);
	if (e->frame == NULL || e->pkt == NULL || e->sws == NULL)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory for the encoder", e->path);
	e->frame->format = k->pix;
	e->frame->width = width;
	e->frame->height = height;
	if ((err = av_frame_get_buffer(e->frame, 0)) < 0)
		return av_failed(e, "a frame buffer", err);
	if ((err = avio_open(&e->oc->pb, tmp, AVIO_FLAG_WRITE)) < 0)
		return av_failed(e, "opening the file", err);
	if ((err = avformat_write_header(e->oc, NULL)) < 0)
		return av_failed(e, "writing the header", err);
	e->header_written = true;
	return FV_OK;
}

/* Send one frame (NULL: flush) and write the packets the encoder has ready. */
static fv_status encode(encoder *e, AVFrame *frame)
{
	int err = avcodec_send_frame(e->cc, frame);
	while (err >= 0) {
		err = avcodec_receive_packet(e->cc, e->pkt);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return FV_OK;
		if (err < 0)
			break;
		av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
		e->pkt->stream_index = e->st->index;
		err = av_interleaved_write_frame(e->oc, e->pkt);
	}
	return av_failed(e, "encoding", err);
}

static fv_status add_frame(encoder *e, const unsigned char *px, int stride, int64_t pts)
{
	int err = av_frame_make_writable(e->frame);
	if (err < 0)
		return av_failed(e, "a frame buffer", err);
	const uint8_t *src[4] = {px, NULL, NULL, NULL};
	const int src_stride[4] = {stride, 0, 0, 0};
	sws_scale(e->sws, src, src_stride, 0, e->cc->height, e->frame->data, e->frame->linesize);
	e->frame->pts = pts;
	return encode(e, e->frame);
}

static void close_encoder(encoder *e)
{
	sws_freeContext(e->sws);
	av_packet_free(&e->pkt);
	av_frame_free(&e->frame);
	avcodec_free_context(&e->cc);
	if (e->oc != NULL && e->oc->pb != NULL)
		avio_closep(&e->oc->pb);
	avformat_free_context(e->oc);
}

/* ---- the movie ----------------------------------------------------------------------------- */

static fv_status check_args(const fv_movie_args *a, const char *path, int64_t d[4],
                            const container **k)
{
	if ((*k = container_of(path)) == NULL)
		return fv_error(FV_ERR_ARG, "%s: cannot tell the movie format from the file name "
		                "(expected .mp4, .gif, .png or .apng)", path);
	if (a->stimulus == NULL || fv__stimulus_dims(a->stimulus, d) != FV_OK)
		return a->stimulus == NULL ? fv_error(FV_ERR_ARG, "%s: no stimulus", path) : fv_errcode();
	if (a->responses != NULL && (a->n_time < 1 || a->n_time > d[1] || a->n_traces < 1))
		return fv_error(FV_ERR_SHAPE, "%s: %lld response steps of %d traces under a stimulus "
		                "of %lld frames (expected 1..%lld steps, >= 1 trace)", path,
		                (long long)a->n_time, a->n_traces, (long long)d[1], (long long)d[1]);
	return FV_OK;
}

/* Even pixel sizes (YUV 4:2:0 halves both), `width` wide or twice the
** natural size in points. */
static void frame_size(const movie_layout *L, int want, int *w, int *h)
{
	double width = want > 0 ? want : 2 * L->width;
	if (width > 4096)
		width = 4096;
	*w = 2 * (int)lround(width / 2);
	*h = 2 * (int)lround(width * L->height / L->width / 2);
	if (*w < 16)
		*w = 16;
	if (*h < 16)
		*h = 16;
}

static fv_status render_all(encoder *e, const fv_movie_args *a, const movie_layout *L,
                            fv__fig *f)
{
	double *column = NULL;
	fv__series *s = NULL;
	if (a->responses != NULL) {
		column = fv__malloc((size_t)(a->n_time * a->n_traces) * sizeof *column);
		s = fv__malloc((size_t)a->n_traces * sizeof *s);
		if (column == NULL || s == NULL) {
			free(column);
			free(s);
			return fv_error(FV_ERR_NOMEM, "%s: out of memory for the traces", e->path);
		}
	}
	fv_status rc = FV_OK;
	for (int64_t t = 0; t < L->T && rc == FV_OK; t++) {
		draw_frame(f, L, a, a->stimulus->data, column, s, t);
		int stride;
		const unsigned char *px = fv__fig_pixels(f, &stride);
		rc = add_frame(e, px, stride, t);
	}
	if (rc == FV_OK)
		rc = encode(e, NULL);
	free(column);
	free(s);
	return rc;
}

fv_status fv_movie_write(const fv_movie_args *a, const char *path)
{
	int64_t d[4];
	const container *k;
	fv_status rc = check_args(a, path, d, &k);
	if (rc != FV_OK)
		return rc;
	movie_layout L;
	layout_init(&L, d, a, a->stimulus);
	int w, h;
	frame_size(&L, a->width, &w, &h);
	char tmp[4200];
	if (snprintf(tmp, sizeof tmp, "%s.part", path) >= (int)sizeof tmp)
		return fv_error(FV_ERR_ARG, "%s: the path is too long", path);
	av_log_set_level(AV_LOG_ERROR); /* libx264's statistics are not for our users */
	encoder e = {.path = path};
	fv__fig *f = fv__fig_raster(L.width, L.height, w, h);
	rc = f != NULL ? open_encoder(&e, k, tmp, w, h, a->fps > 0 ? a->fps : 5) : fv_errcode();
	if (rc == FV_OK)
		rc = render_all(&e, a, &L, f);
	if (e.header_written) {
		int err = av_write_trailer(e.oc);
		if (rc == FV_OK && err < 0)
			rc = av_failed(&e, "writing the trailer", err);
	}
	close_encoder(&e);
	fv__fig_free(f);
	if (rc == FV_OK && rename(tmp, path) != 0)
		rc = fv_error(FV_ERR_IO, "%s: cannot rename %s into place", path, tmp);
	if (rc != FV_OK)
		unlink(tmp);
	return rc;
}
