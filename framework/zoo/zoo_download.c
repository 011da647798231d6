/*
** zoo_download.c: fv_download(), one file over HTTP(S) with libcurl, so
** that the final name never holds a partial or wrong file:
**   - bytes go to PATH.part; when it exists, the request asks for the rest
**     (Range: bytes=N-) and a 206 answer is appended to it, while a 200
**     (a server that ignores ranges) starts the file over;
**   - the size is checked against what the server announced (the total of
**     Content-Range, else Content-Length), and only a complete file is
**     fsynced and renamed to PATH;
**   - an HTTP error writes nothing; a transfer cut short keeps PATH.part,
**     so the next attempt resumes it.
** Redirects are followed (Hugging Face answers with one to its storage),
** over http and https only.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "zoo/zoo_internal.h"

typedef struct transfer {
	const char *url, *path;
	char *part;
	int fd;
	int64_t offset; /* bytes PATH.part held when the request was made */
	/* the response being received (reset at each status line: redirects) */
	long status;
	char reason[64];
	int64_t length, range_start, range_total; /* -1: not announced */
	bool in_body;
	int64_t base;     /* the body's position in the file */
	fv_status failed; /* an error found inside a callback (its message is set) */
	fv__progress bar;
	char errbuf[CURL_ERROR_SIZE];
} transfer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;

static void init_curl(void)
{
	curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- the response's headers ------------------------------------------------------ */

static bool header_is(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && strncasecmp(line, name, k) == 0;
}

static void parse_status(transfer *t, const char *line, size_t n)
{
	t->status = 0;
	t->reason[0] = '\0';
	t->length = t->range_start = t->range_total = -1;
	t->in_body = false;
	const char *sp = memchr(line, ' ', n);
	if (sp == NULL)
		return;
	char *end;
	t->status = strtol(sp + 1, &end, 10);
	while (end < line + n && *end == ' ')
		end++;
	size_t len = (size_t)(line + n - end);
	while (len > 0 && (end[len - 1] == '\r' || end[len - 1] == '\n'))
		len--;
	snprintf(t->reason, sizeof t->reason, "%.*s", (int)len, end);
}

/* "Content-Range: bytes 100-199/1000" or "bytes *\/1000" (for a 416). */
static void parse_range(transfer *t, const char *v)
{
	long long a = -1, b = -1, total = -1;
	while (*v == ' ')
		v++;
	if (strncasecmp(v, "bytes ", 6) != 0)
		return;
	v += 6;
	if (*v == '*')
		sscanf(v, "*/%lld", &total);
	else if (sscanf(v, "%lld-%lld/%lld", &a, &b, &total) < 2)
		a = -1;
	t->range_start = a;
	t->range_total = total;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
	transfer *t = ud;
	n *= size;
	char value[128];
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
		parse_status(t, line, n);
	else if (header_is(line, n, "content-length:") || header_is(line, n, "content-range:")) {
		const char *colon = memchr(line, ':', n);
		size_t len = (size_t)(line + n - colon - 1);
		snprintf(value, sizeof value, "%.*s", (int)(len < 127 ? len : 127), colon + 1);
		if (tolower((unsigned char)line[8]) == 'l') /* content-[l]ength */
			t->length = strtoll(value, NULL, 10);
		else
			parse_range(t, value);
	}
	return n;
}

/* ---- the body ------------------------------------------------------------------------ */

static fv_status fail_io(transfer *t, const char *what)
{
	return t->failed = fv_error(FV_ERR_IO, "%s: %s %s: %s", t->url, what, t->part,
	                            strerror(errno));
}

/* The first bytes of the final response: where they go in the file. */
static fv_status begin_body(transfer *t)
{
	t->in_body = true;
	if (t->status == 206) {
		if (t->range_start != t->offset)
			return t->failed = fv_error(FV_ERR_FORMAT, "%s: asked for the bytes from %lld on, "
			                            "the server sent them from %lld", t->url,
			                            (long long)t->offset, (long long)t->range_start);
		t->base = t->offset;
		return FV_OK;
	}
	if (t->status != 200)
		return t->failed = FV_ERR_IO; /* reported after the transfer, with the status */
	t->base = 0;
	if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0)
		return fail_io(t, "cannot restart");
	return FV_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	transfer *t = ud;
	n *= size;
	if (!t->in_body && begin_body(t) != FV_OK)
		return 0;
	for (size_t done = 0; done < n;) {
		ssize_t w = write(t->fd, data + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fail_io(t, "cannot write");
			return 0;
		}
		done += (size_t)w;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
	(void)ut;
	(void)un;
	transfer *t = ud;
	int64_t base = t->in_body ? t->base : t->offset;
	fv__progress_update(&t->bar, base + now, total > 0 ? base + total : -1);
	return 0;
}

/* ---- one request ------------------------------------------------------------------- */

static CURLcode perform(transfer *t)
{
	CURL *c = curl_easy_init();
	if (c == NULL)
		return CURLE_FAILED_INIT;
	char range[32];
	snprintf(range, sizeof range, "%lld-", (long long)t->offset);
	t->errbuf[0] = '\0';
	t->status = 0;
	t->in_body = false;
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "fovea/" FV_VERSION_STRING);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled server fails after a minute instead of hanging for ever */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
	if (t->offset > 0)
		curl_easy_setopt(c, CURLOPT_RANGE, range);
	CURLcode rc = curl_easy_perform(c);
	/* a body-less answer (a 404 with no body, a 416) never reached on_body */
	if (rc == CURLE_OK && !t->in_body)
		begin_body(t);
	curl_easy_cleanup(c);
	return rc;
}

/* ---- the checks after it ---------------------------------------------------------------- */

static int64_t file_size(int fd)
{
	struct stat sb;
	return fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* What the server said the whole file holds; -1 when it did not say. */
static int64_t announced(const transfer *t)
{
	if (t->status == 206)
		return t->range_total >= 0 ? t->range_total
		       : t->length >= 0    ? t->offset + t->length
		                           : -1;
	return t->length;
}

static fv_status http_error(transfer *t)
{
	if (t->status == 0)
		return fv_error(FV_ERR_IO, "%s: no HTTP answer (%s); nothing written to %s", t->url,
		                t->errbuf[0] ? t->errbuf : "no status line", t->path);
	return fv_error(FV_ERR_IO, "%s: HTTP %ld%s%s; nothing written to %s", t->url, t->status,
	                t->reason[0] ? " " : "", t->reason, t->path);
}

/* After a transfer: FV_OK when PATH.part is the complete file. */
static fv_status check(transfer *t, CURLcode rc)
{
	bool answered = t->status == 200 || t->status == 206;
	if (answered && t->failed != FV_OK)
		return t->failed;
	if (!answered && t->status != 0)
		return http_error(t);
	int64_t size = file_size(t->fd), want = answered ? announced(t) : -1;
	const char *why = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
	if (want >= 0 && size > want) {
		unlink(t->part);
		return fv_error(FV_ERR_FORMAT, "%s: size mismatch: %lld bytes received, more than the "
		                "%lld the server announced; %s removed", t->url, (long long)size,
		                (long long)want, t->part);
	}
	if (want >= 0 && size < want)
		return fv_error(FV_ERR_IO, "%s: size mismatch: %lld of the %lld bytes the server "
		                "announced were received (%s); %s keeps them and the next attempt "
		                "resumes", t->url, (long long)size, (long long)want,
		                rc != CURLE_OK ? why : "the body ended early", t->part);
	if (rc != CURLE_OK || !answered)
		return fv_error(FV_ERR_IO, "%s: %s; %s not downloaded%s%s", t->url, why, t->path,
		                size > 0 ? "; the next attempt resumes " : "", size > 0 ? t->part : "");
	return FV_OK;
}

/* A 416 to a resumed request: PATH.part is already complete (the server's
** total is its size) or is no prefix of the file; then start over. */
static bool range_refused(transfer *t, bool *complete)
{
	if (t->status != 416 || t->offset == 0)
		return false;
	*complete = t->range_total == t->offset;
	if (!*complete) {
		t->offset = 0;
		if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0)
			return false;
	}
	return true;
}

static fv_status finish(transfer *t)
{
	if (fsync(t->fd) != 0)
		return fail_io(t, "cannot sync");
	if (rename(t->part, t->path) != 0)
		return fv_error(FV_ERR_IO, "%s: downloaded, but renaming %s to %s failed: %s", t->url,
		                t->part, t->path, strerror(errno));
	return fv__sync_dir(t->path);
}

static fv_status download(transfer *t, const fv_download_options *o)
{
	t->offset = lseek(t->fd, 0, SEEK_END);
	if (t->offset < 0)
		return fail_io(t, "cannot read");
	const char *label = o != NULL && o->label != NULL ? o->label : t->path;
	fv__progress_init(&t->bar, o, label, t->offset);
	CURLcode rc = perform(t);
	bool complete = false;
	if (range_refused(t, &complete) && !complete) {
		t->failed = FV_OK;
		rc = perform(t);
	}
	fv__progress_end(&t->bar);
	fv_status st = complete ? FV_OK : check(t, rc);
	if (st == FV_OK)
		return finish(t);
	if (file_size(t->fd) == 0)
		unlink(t->part); /* nothing worth resuming */
	return st;
}

fv_status fv_download(const char *url, const char *path, const fv_download_options *o)
{
	if (url == NULL || path == NULL)
		return fv_error(FV_ERR_ARG, "fv_download: %s is NULL", url ? "path" : "url");
	pthread_once(&curl_once, init_curl);
	if (curl_init_code != CURLE_OK)
		return fv_error(FV_ERR_IO, "%s: libcurl cannot start: %s", url,
		                curl_easy_strerror(curl_init_code));
	transfer t = {.url = url, .path = path, .fd = -1, .failed = FV_OK};
	fv__text name = {0};
	fv__text_printf(&name, "%s.part", path);
	if ((t.part = fv__text_take(&name, "a download's name")) == NULL)
		return FV_ERR_NOMEM;
	t.fd = open(t.part, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	fv_status st = t.fd >= 0 ? download(&t, o) : fail_io(&t, "cannot create");
	if (t.fd >= 0)
		close(t.fd);
	free(t.part);
	return st;
}
