/*
** movie_info.c: prints "FRAMES WIDTH HEIGHT CODEC" of a movie's video
** stream, read back through libavformat, for the CLI tests (there is no
** ffprobe on a build machine).  Exit 1 with a message if it cannot.
*/
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	AVFormatContext *ic = NULL;
	if (argc != 2 || avformat_open_input(&ic, argv[1], NULL, NULL) < 0) {
		fprintf(stderr, "movie_info: cannot open %s\n", argc == 2 ? argv[1] : "(usage: FILE)");
		return 1;
	}
	int v = avformat_find_stream_info(ic, NULL) >= 0
	            ? av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0)
	            : -1;
	if (v < 0) {
		fprintf(stderr, "movie_info: %s has no video stream\n", argv[1]);
		avformat_close_input(&ic);
		return 1;
	}
	long frames = 0;
	AVPacket *pkt = av_packet_alloc();
	while (pkt != NULL && av_read_frame(ic, pkt) >= 0) {
		frames += pkt->stream_index == v;
		av_packet_unref(pkt);
	}
	const AVCodecParameters *p = ic->streams[v]->codecpar;
	printf("%ld %d %d %s\n", frames, p->width, p->height, avcodec_get_name(p->codec_id));
	av_packet_free(&pkt);
	avformat_close_input(&ic);
	return 0;
}
