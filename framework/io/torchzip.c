/*
** torchzip.c: the zip container of a torch checkpoint, read with libzip.
**
** torch writes a plain zip: every record STORED (no compression), each
** record's data padded to a multiple of 64 bytes from the start of the
** file, sizes and CRCs in the central directory (the local headers carry
** zeros and a data descriptor), zip64 end records always present.  The
** records are PREFIX/data.pkl, PREFIX/data/KEY per storage and a few small
** ones (version, byteorder, ...), PREFIX being "archive" or the file stem.
**
** Everything that could make a reader allocate or inflate without bound is
** refused when the archive is opened, before any record is read: a
** compressed or encrypted record (torch never writes one, so a deflate
** bomb is never inflated), a declared size larger than the file or sizes
** that together exceed it, duplicate names, no or several data.pkl.
** Legacy (pre-1.6) torch files are not zips; they are refused as
** unsupported rather than reported as corrupt.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "base/base_internal.h"
#include "io/ckpt_internal.h"

struct fv__torchzip {
	char *name;          /* for messages */
	zip_t *za;
	size_t file_size;
	char *prefix;        /* without the slash */
	bool big_endian;
	int64_t n;           /* entries */
	uint64_t *sizes;     /* per entry */
};

void fv__torchzip_close(fv__torchzip *z)
{
	if (z == NULL)
		return;
	if (z->za != NULL)
		zip_discard(z->za);
	free(z->name);
	free(z->prefix);
	free(z->sizes);
	free(z);
}

const char *fv__torchzip_prefix(const fv__torchzip *z)
{
	return z->prefix;
}

size_t fv__torchzip_file_size(const fv__torchzip *z)
{
	return z->file_size;
}

bool fv__torchzip_big_endian(const fv__torchzip *z)
{
	return z->big_endian;
}

int64_t fv__torchzip_count(const fv__torchzip *z)
{
	return z->n;
}

size_t fv__torchzip_size(const fv__torchzip *z, int64_t entry)
{
	return (size_t)z->sizes[entry];
}

/* Longest record prefix accepted: the file stem of a path, in practice. */
#define MAX_PREFIX 512

int64_t fv__torchzip_find(const fv__torchzip *z, const char *name)
{
	char full[2 * MAX_PREFIX];
	size_t plen = strlen(z->prefix), nlen = strlen(name);
	if (plen + nlen + 2 > sizeof full)
		return -1;
	memcpy(full, z->prefix, plen);
	full[plen] = '/';
	memcpy(full + plen + 1, name, nlen + 1);
	return zip_name_locate(z->za, full, 0);
}

fv_status fv__torchzip_read(fv__torchzip *z, int64_t entry, unsigned char *buf)
{
	zip_file_t *f = zip_fopen_index(z->za, (zip_uint64_t)entry, 0);
	const char *rec = zip_get_name(z->za, (zip_uint64_t)entry, 0);
	if (f == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: record '%s' cannot be read: %s", z->name,
		                rec ? rec : "?", zip_error_strerror(zip_get_error(z->za)));
	uint64_t want = z->sizes[entry], got = 0;
	fv_status s = FV_OK;
	while (got < want) {
		zip_int64_t r = zip_fread(f, buf + got, want - got);
		if (r <= 0) {
			s = fv_error(FV_ERR_FORMAT, "%s: record '%s' ends after %llu of its %llu bytes%s%s",
			             z->name, rec ? rec : "?", (unsigned long long)got,
			             (unsigned long long)want, r < 0 ? ": " : " (truncated)",
			             r < 0 ? zip_error_strerror(zip_file_get_error(f)) : "");
			break;
		}
		got += (uint64_t)r;
	}
	/* One more read lets libzip compare the CRC at the end of the data. */
	unsigned char extra;
	if (s == FV_OK && zip_fread(f, &extra, 1) != 0)
		s = fv_error(FV_ERR_FORMAT, "%s: record '%s': %s", z->name, rec ? rec : "?",
		             zip_error_strerror(zip_file_get_error(f)));
	zip_fclose(f);
	return s;
}

/* ---- opening ------------------------------------------------------------------------- */

/* A pre-1.6 torch.save file starts with a pickle (PROTO 2) of its magic
** number rather than a zip header. */
static bool looks_legacy(const unsigned char *head, size_t n)
{
	return n >= 2 && head[0] == 0x80 && head[1] <= 5;
}

static fv_status legacy_error(const char *name)
{
	return fv_error(FV_ERR_FORMAT,
	                "%s: a legacy torch.save file (torch < 1.6, not a zip archive): this format "
	                "is unsupported; save the checkpoint again with torch >= 1.6",
	                name);
}

static fv_status zip_open_error(const char *name, int code)
{
	if (code == ZIP_ER_MEMORY)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory opening the zip archive", name);
	zip_error_t e;
	zip_error_init_with_code(&e, code);
	fv_status s = fv_error(FV_ERR_FORMAT,
	                       "%s: not a readable zip archive (libzip: %s): a torch checkpoint is a "
	                       "zip file with its directory at the end; is it truncated?",
	                       name, zip_error_strerror(&e));
	zip_error_fini(&e);
	return s;
}

static bool ends_with_pkl(const char *s, size_t *prefix_len)
{
	size_t n = strlen(s);
	static const char tail[] = "/data.pkl";
	size_t t = sizeof tail - 1;
	if (n <= t || memcmp(s + n - t, tail, t) != 0)
		return false;
	*prefix_len = n - t;
	return memchr(s, '/', n - t) == NULL; /* PREFIX/data.pkl, not deeper */
}

/* Read the small byteorder record: "little" (or absent, torch 1.13) or "big". */
static fv_status read_byteorder(fv__torchzip *z)
{
	int64_t e = fv__torchzip_find(z, "byteorder");
	if (e < 0)
		return FV_OK;
	unsigned char buf[17];
	if (z->sizes[e] > 16)
		return fv_error(FV_ERR_FORMAT, "%s: record '%s/byteorder' has %llu bytes; expected "
		                "'little' or 'big'",
		                z->name, z->prefix, (unsigned long long)z->sizes[e]);
	fv_status s = fv__torchzip_read(z, e, buf);
	if (s != FV_OK)
		return s;
	size_t n = (size_t)z->sizes[e];
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (strcmp((char *)buf, "little") == 0)
		z->big_endian = false;
	else if (strcmp((char *)buf, "big") == 0)
		z->big_endian = true;
	else
		return fv_error(FV_ERR_FORMAT, "%s: record '%s/byteorder' says '%.16s'; expected 'little' "
		                "or 'big'",
		                z->name, z->prefix, (char *)buf);
	return FV_OK;
}

/* Check every entry; find the prefix. */
static fv_status check_entries(fv__torchzip *z)
{
	zip_int64_t n = zip_get_num_entries(z->za, 0);
	if (n <= 0)
		return fv_error(FV_ERR_FORMAT, "%s: the zip archive is empty; a torch checkpoint has a "
		                "data.pkl record",
		                z->name);
	z->n = n;
	z->sizes = fv__calloc((size_t)n, sizeof *z->sizes);
	if (z->sizes == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	const char *pkl = NULL;
	size_t prefix_len = 0;
	uint64_t total = 0;
	for (zip_int64_t i = 0; i < n; i++) {
		zip_stat_t st;
		if (zip_stat_index(z->za, (zip_uint64_t)i, 0, &st) != 0)
			return fv_error(FV_ERR_FORMAT, "%s: zip entry %lld: %s", z->name, (long long)i,
			                zip_error_strerror(zip_get_error(z->za)));
		const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
		                          ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
		if ((st.valid & need) != need)
			return fv_error(FV_ERR_FORMAT, "%s: zip entry %lld has no complete directory entry",
			                z->name, (long long)i);
		if (st.comp_method != ZIP_CM_STORE)
			return fv_error(FV_ERR_FORMAT,
			                "%s: record '%s' is compressed (zip method %d%s): torch writes every "
			                "record stored, so it is refused without being inflated",
			                z->name, st.name, st.comp_method,
			                st.comp_method == ZIP_CM_DEFLATE ? ", deflate" : "");
		if (st.encryption_method != ZIP_EM_NONE)
			return fv_error(FV_ERR_FORMAT, "%s: record '%s' is encrypted; torch never encrypts",
			                z->name, st.name);
		if (st.size != st.comp_size || st.size > z->file_size)
			return fv_error(FV_ERR_FORMAT,
			                "%s: record '%s' declares %llu bytes (%llu stored), but the whole "
			                "file has %zu",
			                z->name, st.name, (unsigned long long)st.size,
			                (unsigned long long)st.comp_size, z->file_size);
		total += st.size;
		if (total > z->file_size)
			return fv_error(FV_ERR_FORMAT,
			                "%s: the records declare more bytes together than the file has (%zu): "
			                "records overlap",
			                z->name, z->file_size);
		if (zip_name_locate(z->za, st.name, 0) != i)
			return fv_error(FV_ERR_FORMAT, "%s: record '%s' appears twice", z->name, st.name);
		z->sizes[i] = st.size;
		size_t plen;
		if (ends_with_pkl(st.name, &plen)) {
			if (pkl != NULL)
				return fv_error(FV_ERR_FORMAT, "%s: two pickles, '%s' and '%s': which one is the "
				                "checkpoint?",
				                z->name, pkl, st.name);
			pkl = st.name;
			prefix_len = plen;
		}
	}
	if (pkl == NULL)
		return fv_error(FV_ERR_FORMAT, "%s: no record PREFIX/data.pkl: a zip archive, but not a "
		                "torch checkpoint",
		                z->name);
	if (prefix_len > MAX_PREFIX)
		return fv_error(FV_ERR_FORMAT, "%s: the record prefix has %zu bytes; at most %d are "
		                "accepted",
		                z->name, prefix_len, MAX_PREFIX);
	z->prefix = fv__strndup(pkl, prefix_len);
	if (z->prefix == NULL)
		return fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
	return read_byteorder(z);
}

static fv__torchzip *open_source(fv__torchzip *z, zip_source_t *src)
{
	zip_error_t err;
	zip_error_init(&err);
	z->za = zip_open_from_source(src, ZIP_RDONLY, &err);
	if (z->za == NULL) {
		zip_source_free(src);
		zip_open_error(z->name, zip_error_code_zip(&err));
		zip_error_fini(&err);
		fv__torchzip_close(z);
		return NULL;
	}
	zip_error_fini(&err);
	if (check_entries(z) != FV_OK) {
		fv__torchzip_close(z);
		return NULL;
	}
	return z;
}

static fv__torchzip *new_zip(const char *name, size_t size)
{
	fv__torchzip *z = fv__calloc(1, sizeof *z);
	if (z == NULL || (z->name = fv__strdup(name)) == NULL) {
		free(z);
		fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		return NULL;
	}
	z->file_size = size;
	return z;
}

fv__torchzip *fv__torchzip_open_memory(const void *buf, size_t len, const char *name)
{
	if (buf == NULL && len > 0) {
		fv_error(FV_ERR_ARG, "fv_ckpt_from_memory: NULL buffer");
		return NULL;
	}
	if (looks_legacy(buf, len)) {
		legacy_error(name);
		return NULL;
	}
	fv__torchzip *z = new_zip(name, len);
	if (z == NULL)
		return NULL;
	zip_error_t err;
	zip_error_init(&err);
	zip_source_t *src = zip_source_buffer_create(buf, len, 0, &err);
	zip_error_fini(&err);
	if (src == NULL) {
		fv__torchzip_close(z);
		fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		return NULL;
	}
	return open_source(z, src);
}

fv__torchzip *fv__torchzip_open_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		fv_error(FV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	struct stat sb;
	if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fv_error(FV_ERR_IO, "%s: not a regular file", path);
		fclose(fp);
		return NULL;
	}
	unsigned char head[2];
	size_t got = fread(head, 1, sizeof head, fp);
	if (looks_legacy(head, got)) {
		legacy_error(path);
		fclose(fp);
		return NULL;
	}
	rewind(fp);
	fv__torchzip *z = new_zip(path, (size_t)sb.st_size);
	if (z == NULL) {
		fclose(fp);
		return NULL;
	}
	zip_error_t err;
	zip_error_init(&err);
	zip_source_t *src = zip_source_filep_create(fp, 0, -1, &err);
	zip_error_fini(&err);
	if (src == NULL) {
		fclose(fp);
		fv__torchzip_close(z);
		fv_error(FV_ERR_NOMEM, "out of memory reading a checkpoint");
		return NULL;
	}
	return open_source(z, src);
}
