/*
** test_zoo.c: openretina's published models (zoo.h): the nine names and
** their files, openretina's cache directory and its environment, the
** download URLs, the resolution of a checkpoint argument, and
** fv_download against a one-shot HTTP server on 127.0.0.1 in a thread
** (whole file, resume with a Range request, a short body, a 404).  Each
** Test runs in its own process (Criterion), so setenv stays local to it.
*/
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/checkpoint.h"
#include "fovea/zoo.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif
#define FIXTURE FOVEA_TEST_SRCDIR "/data/ckpt/hoefling_low_res_gmask.ckpt"

/* openretina 0aadd97, openretina/models/core_readout.py */
static const char *const openretina_models[9][2] = {
	{"hoefling_2024_low_res", "2026-03-09/hoefling_2024_cnn_low_res.ckpt"},
	{"hoefling_2024_high_res", "2026-03-09/hoefling_2024_cnn_high_res.ckpt"},
	{"karamanlis_2024_mouse", "2026-03-09/karamanlis_2024_mouse.ckpt"},
	{"karamanlis_2024_marmoset", "2026-03-09/karamanlis_2024_marmoset.ckpt"},
	{"maheswaranathan_2023", "2026-03-09/maheswaranathan_2023.ckpt"},
	{"sridhar_2025", "2026-03-09/sridhar_2025.ckpt"},
	{"goldin_2022_axolotl", "2026-03-09/goldin_2022_axolotl.ckpt"},
	{"goldin_2022_mouse", "2026-03-09/goldin_2022_mouse.ckpt"},
	{"hoefling_2024_base_low_res", "27-11-2025/hoefling_2024_base_low_res.ckpt"},
};

static char dir[] = "/tmp/fovea_zoo_XXXXXX";

static void make_dir(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *path_in(const char *name)
{
	static char buf[512];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

static long size_of(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void copy_prefix(const char *to, long n)
{
	FILE *in = fopen(FIXTURE, "rb"), *out = fopen(to, "wb");
	cr_assert(in && out);
	for (int c; n-- > 0 && (c = fgetc(in)) != EOF;)
		fputc(c, out);
	fclose(in);
	fclose(out);
}

static bool same_as_fixture(const char *path)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", path, FIXTURE);
	return system(cmd) == 0;
}

Test(zoo, nine_names_in_openretinas_order)
{
	cr_assert_eq(fv_zoo_count(), 9);
	for (size_t i = 0; i < 9; i++) {
		const fv_zoo_model *m = fv_zoo_at(i);
		cr_assert_str_eq(m->name, openretina_models[i][0]);
		char file[256];
		snprintf(file, sizeof file, "model_checkpoints/%s", openretina_models[i][1]);
		cr_assert_str_eq(m->file, file);
		cr_assert_eq(fv_zoo_find(m->name), m);
	}
	cr_assert_null(fv_zoo_at(9));
	cr_assert_null(fv_zoo_find("hoefling_2024"));
	cr_assert_null(fv_zoo_find(NULL));
}

static void expect_string(char *got, const char *want)
{
	cr_assert_not_null(got);
	cr_assert_str_eq(got, want);
	free(got);
}

Test(zoo, cache_directory_as_openretina_finds_it)
{
	const fv_zoo_model *m = fv_zoo_find("goldin_2022_mouse");
	setenv("HOME", "/home/someone", 1);
	unsetenv("OPENRETINA_CACHE_DIRECTORY");
	expect_string(fv_zoo_cache_dir(), "/home/someone/openretina_cache");
	expect_string(fv_zoo_cached_path(m), "/home/someone/openretina_cache/model_checkpoints/"
	              "2026-03-09/goldin_2022_mouse.ckpt");
	setenv("OPENRETINA_CACHE_DIRECTORY", "/data/cache", 1);
	expect_string(fv_zoo_cached_path(m), "/data/cache/model_checkpoints/2026-03-09/"
	              "goldin_2022_mouse.ckpt");
	/* os.getenv gives "": Path("") is the current directory */
	setenv("OPENRETINA_CACHE_DIRECTORY", "", 1);
	expect_string(fv_zoo_cache_dir(), ".");
}

Test(zoo, download_urls)
{
	const fv_zoo_model *m = fv_zoo_find("hoefling_2024_base_low_res");
	unsetenv("FOVEA_MODEL_BASE_URL");
	unsetenv("HF_ENDPOINT");
	expect_string(fv_zoo_url(m), "https://huggingface.co/datasets/open-retina/open-retina/"
	              "resolve/main/model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt");
	setenv("HF_ENDPOINT", "https://hf-mirror.example/", 1);
	expect_string(fv_zoo_url(m), "https://hf-mirror.example/datasets/open-retina/open-retina/"
	              "resolve/main/model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt");
	setenv("FOVEA_MODEL_BASE_URL", "http://127.0.0.1:8000/zoo", 1);
	expect_string(fv_zoo_url(m), "http://127.0.0.1:8000/zoo/model_checkpoints/27-11-2025/"
	              "hoefling_2024_base_low_res.ckpt");
	setenv("FOVEA_MODEL_BASE_URL", "http://127.0.0.1:8000/zoo/", 1);
	expect_string(fv_zoo_url(m), "http://127.0.0.1:8000/zoo/model_checkpoints/27-11-2025/"
	              "hoefling_2024_base_low_res.ckpt");
}

Test(zoo, resolve_names_paths_and_typos, .init = make_dir, .fini = remove_dir)
{
	setenv("OPENRETINA_CACHE_DIRECTORY", dir, 1);
	setenv("FOVEA_MODEL_BASE_URL", "http://127.0.0.1:1/", 1); /* closed */
	char *local = (char *)"unset";
	/* a path, existing or not, is left to the checkpoint readers */
	cr_assert_eq(fv_zoo_resolve(FIXTURE, NULL, &local), FV_OK);
	cr_assert_null(local);
	cr_assert_eq(fv_zoo_resolve("missing.ckpt", NULL, &local), FV_OK);
	cr_assert_null(local);
	/* a misspelt name */
	cr_assert_eq(fv_zoo_resolve("sridhar_2052", NULL, &local), FV_ERR_NOTFOUND);
	cr_assert_not_null(strstr(fv_errmsg(), "did you mean 'sridhar_2025'?"), "%s", fv_errmsg());
	cr_assert_eq(fv_zoo_resolve("goldin", NULL, &local), FV_ERR_NOTFOUND);
	cr_assert_not_null(strstr(fv_errmsg(), "'goldin_2022_axolotl' or 'goldin_2022_mouse'?"),
	                   "%s", fv_errmsg());
	/* a name not cached: the download fails (nothing listens) */
	cr_assert_eq(fv_zoo_resolve("sridhar_2025", NULL, &local), FV_ERR_IO);
	cr_assert_null(local);
	cr_assert_not_null(strstr(fv_errmsg(), "model sridhar_2025: http://127.0.0.1:1/model_"
	                          "checkpoints/2026-03-09/sridhar_2025.ckpt: "), "%s", fv_errmsg());
	/* a cached one: its file, and it opens as a checkpoint */
	char sub[600];
	snprintf(sub, sizeof sub, "mkdir -p '%s/model_checkpoints/2026-03-09'", dir);
	cr_assert_eq(system(sub), 0);
	copy_prefix(path_in("model_checkpoints/2026-03-09/hoefling_2024_cnn_low_res.ckpt"), 1L << 30);
	cr_assert_eq(fv_zoo_resolve("hoefling_2024_low_res", NULL, &local), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(local, path_in("model_checkpoints/2026-03-09/hoefling_2024_cnn_low_res.ckpt"));
	free(local);
	fv_checkpoint *c = fv_checkpoint_open("hoefling_2024_low_res");
	cr_assert_not_null(c, "%s", fv_errmsg());
	cr_assert_eq(fv_checkpoint_data_info(c)->n_sessions, 3);
	cr_assert_str_eq(fv_checkpoint_path(c), path_in("model_checkpoints/2026-03-09/"
	                                                "hoefling_2024_cnn_low_res.ckpt"));
	fv_checkpoint_close(c);
	cr_assert_null(fv_checkpoint_open("hoefling_2024_lowres"));
	cr_assert_eq(fv_errcode(), FV_ERR_NOTFOUND);
}

/* ---- a one-shot HTTP server ---------------------------------------------------------- */

enum { SERVE_FILE, SERVE_SHORT, SERVE_404 };

typedef struct server {
	int fd, port, mode;
	long range;       /* the request's "Range: bytes=N-", -1 without one */
	unsigned char *data;
	long size;
	pthread_t thread;
} server;

static void send_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void answer(server *s, int c)
{
	char req[4096] = "";
	size_t n = 0;
	while (n < sizeof req - 1 && strstr(req, "\r\n\r\n") == NULL) {
		ssize_t r = read(c, req + n, sizeof req - 1 - n);
		if (r <= 0)
			return;
		req[n += (size_t)r] = '\0';
	}
	const char *range = strstr(req, "Range: bytes=");
	s->range = range != NULL ? atol(range + 13) : -1;
	char head[256];
	if (s->mode == SERVE_404) {
		snprintf(head, sizeof head, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
		send_all(c, head, strlen(head));
		return;
	}
	long from = s->range > 0 ? s->range : 0, len = s->size - from;
	if (s->range > 0)
		snprintf(head, sizeof head, "HTTP/1.0 206 Partial Content\r\nContent-Length: %ld\r\n"
		         "Content-Range: bytes %ld-%ld/%ld\r\n\r\n", len, from, s->size - 1, s->size);
	else
		snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %ld\r\n\r\n", len);
	send_all(c, head, strlen(head));
	send_all(c, s->data + from, (size_t)(s->mode == SERVE_SHORT ? len / 2 : len));
}

static void *serve_once(void *ud)
{
	server *s = ud;
	int c = accept(s->fd, NULL, NULL);
	if (c >= 0) {
		answer(s, c);
		close(c);
	}
	return NULL;
}

static void start(server *s, int mode)
{
	*s = (server){.mode = mode, .range = -2};
	FILE *f = fopen(FIXTURE, "rb");
	cr_assert_not_null(f);
	s->data = malloc(1 << 20);
	s->size = (long)fread(s->data, 1, 1 << 20, f);
	fclose(f);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(s->fd, 1), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, serve_once, s), 0);
}

static void stop(server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
	free(s->data);
}

static fv_status download(server *s, const char *file)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/model.ckpt", s->port);
	fv_download_options o = {.progress = 0};
	fv_status rc = fv_download(url, path_in(file), &o);
	stop(s);
	return rc;
}

Test(zoo, download_whole_file, .init = make_dir, .fini = remove_dir)
{
	server s;
	start(&s, SERVE_FILE);
	cr_assert_eq(download(&s, "m.ckpt"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(s.range, -1);
	cr_assert(same_as_fixture(path_in("m.ckpt")));
	cr_assert_eq(size_of(path_in("m.ckpt.part")), -1);
}

Test(zoo, download_resumes_a_partial_file, .init = make_dir, .fini = remove_dir)
{
	copy_prefix(path_in("m.ckpt.part"), 1234);
	server s;
	start(&s, SERVE_FILE);
	cr_assert_eq(download(&s, "m.ckpt"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(s.range, 1234);
	cr_assert(same_as_fixture(path_in("m.ckpt")));
	cr_assert_eq(size_of(path_in("m.ckpt.part")), -1);
}

Test(zoo, short_body_is_a_size_mismatch, .init = make_dir, .fini = remove_dir)
{
	server s;
	start(&s, SERVE_SHORT);
	long half = s.size / 2;
	cr_assert_eq(download(&s, "m.ckpt"), FV_ERR_IO);
	cr_assert_not_null(strstr(fv_errmsg(), "size mismatch"), "%s", fv_errmsg());
	cr_assert_not_null(strstr(fv_errmsg(), "/model.ckpt"), "%s", fv_errmsg());
	cr_assert_not_null(strstr(fv_errmsg(), path_in("m.ckpt.part")), "%s", fv_errmsg());
	cr_assert_eq(size_of(path_in("m.ckpt")), -1, "a final file after a short body");
	cr_assert_eq(size_of(path_in("m.ckpt.part")), half);
	/* the next attempt asks for the rest */
	start(&s, SERVE_FILE);
	cr_assert_eq(download(&s, "m.ckpt"), FV_OK, "%s", fv_errmsg());
	cr_assert_eq(s.range, half);
	cr_assert(same_as_fixture(path_in("m.ckpt")));
}

Test(zoo, http_error_writes_nothing, .init = make_dir, .fini = remove_dir)
{
	server s;
	start(&s, SERVE_404);
	cr_assert_eq(download(&s, "m.ckpt"), FV_ERR_IO);
	cr_assert_not_null(strstr(fv_errmsg(), "/model.ckpt: HTTP 404 Not Found; nothing written to"),
	                   "%s", fv_errmsg());
	cr_assert_eq(size_of(path_in("m.ckpt")), -1);
	cr_assert_eq(size_of(path_in("m.ckpt.part")), -1);
	cr_assert_eq(fv_download(NULL, "x", NULL), FV_ERR_ARG);
	cr_assert_eq(fv_download("http://127.0.0.1:1/", NULL, NULL), FV_ERR_ARG);
}
