/*
** karamanlis_2024_mat_scan.c: a v5 MATLAB file's declared sizes, checked
** before libmatio sees them.
**
** libmatio allocates what a variable's header declares (its dims, its
** non-zeros) before it reads the data, so a few damaged bytes in a file
** of a few hundred bytes can make it ask for gigabytes.  A real file
** spends bytes on every element it declares: at least one a number
** (MATLAB stores numbers in the smallest type that holds them) or a cell,
** and a compressed variable inflates at most 1032-fold (deflate's limit).
** Every top-level variable is held to that; the walk reads only the tags
** and the first bytes of each variable.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "karamanlis_2024.h"

enum { MI_MATRIX = 14, MI_COMPRESSED = 15, MX_SPARSE = 5 };
#define HEADER_BYTES 128
#define HEAD_BYTES 128      /* of a variable: its tag, flags and dims */
#define DEFLATE_RATIO 1032.0
#define MAX_VARIABLES 100000

typedef struct scan {
	const char *path;
	FILE *f;
	bool swap;              /* the file's byte order is not ours */
	long size;
} scan;

static uint32_t u32(const scan *s, const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return s->swap ? __builtin_bswap32(v) : v;
}

/* A data element's tag at p (n bytes there): type, payload size and where
** the payload starts; the small form keeps both in 4 bytes. */
static bool tag(const scan *s, const unsigned char *p, size_t n, uint32_t *type, uint32_t *bytes,
                size_t *data)
{
	if (n < 8)
		return false;
	uint32_t first = u32(s, p);
	if (first >> 16 != 0) {
		*type = first & 0xffff, *bytes = first >> 16, *data = 4;
		return true;
	}
	*type = first, *bytes = u32(s, p + 4), *data = 8;
	return true;
}

static fv_status too_big(const scan *s, const char *what, double count, double budget)
{
	return fv_error(FV_ERR_FORMAT, "%s: a variable declares %.3g %s in %.0f bytes (damaged "
	                "file)", s->path, count, what, budget);
}

/* The head of a miMATRIX payload -- its flags, dims and name subelements,
** whatever their tags say, as libmatio reads them -- against the bytes
** behind it: no subelement larger, no more elements. */
static fv_status check_matrix(const scan *s, const unsigned char *p, size_t n, double budget)
{
	static const char *const parts[] = {"bytes of flags", "bytes of dimensions", "bytes of name"};
	uint32_t cls = 0;
	double count = 0;
	for (int part = 0; part < 3; part++) {
		uint32_t type, bytes;
		size_t off;
		if (!tag(s, p, n, &type, &bytes, &off))
			break;
		if (bytes > budget)
			return too_big(s, parts[part], bytes, budget);
		if (part == 0 && off + 8 <= n) {
			cls = u32(s, p + off) & 0xff;
			count = u32(s, p + off + 4); /* a sparse array's non-zeros */
		} else if (part == 1 && cls != MX_SPARSE) {
			count = 1;
			for (size_t k = 0; k + 4 <= bytes && off + k + 4 <= n; k += 4) {
				int32_t d = (int32_t)u32(s, p + off + k);
				count *= d < 0 ? 1e300 : (double)d;
			}
		}
		size_t skip = off + (off == 4 ? 4 : (bytes + 7) & ~7u);
		if (skip >= n)
			break;
		p += skip, n -= skip;
	}
	return count > budget ? too_big(s, "elements", count, budget) : FV_OK;
}

/* The inflated head of a compressed variable. */
static fv_status check_compressed(const scan *s, long at, uint32_t bytes)
{
	unsigned char in[4096], out[HEAD_BYTES];
	size_t want = bytes < sizeof in ? bytes : sizeof in;
	/* a truncated file too: libmatio reads what is there */
	size_t have = fseek(s->f, at, SEEK_SET) == 0 ? fread(in, 1, want, s->f) : 0;
	z_stream z = {.next_in = in, .avail_in = (uInt)have, .next_out = out,
	              .avail_out = sizeof out};
	if (inflateInit(&z) != Z_OK)
		return fv_error(FV_ERR_NOMEM, "%s: out of memory", s->path);
	inflate(&z, Z_SYNC_FLUSH);
	size_t got = sizeof out - z.avail_out;
	inflateEnd(&z);
	uint32_t type, inner;
	size_t off;
	if (!tag(s, out, got, &type, &inner, &off) || type != MI_MATRIX)
		return FV_OK;
	if (inner > DEFLATE_RATIO * bytes + HEAD_BYTES)
		return fv_error(FV_ERR_FORMAT, "%s: a compressed variable of %u bytes claims %u "
		                "(damaged file)", s->path, bytes, inner);
	return check_matrix(s, out + off, got - off, inner);
}

static fv_status walk(scan *s)
{
	long at = HEADER_BYTES;
	for (int k = 0; k < MAX_VARIABLES && at + 8 <= s->size; k++) {
		unsigned char head[HEAD_BYTES];
		size_t n = s->size - at < (long)sizeof head ? (size_t)(s->size - at) : sizeof head;
		if (fseek(s->f, at, SEEK_SET) != 0 || fread(head, 1, n, s->f) != n)
			return FV_OK;
		uint32_t type, bytes;
		size_t off;
		if (!tag(s, head, n, &type, &bytes, &off))
			return FV_OK;
		fv_status rc = type == MI_COMPRESSED ? check_compressed(s, at + 8, bytes)
		               : type == MI_MATRIX ? check_matrix(s, head + off, n - off, bytes)
		                                   : FV_OK;
		if (rc != FV_OK)
			return rc;
		at += (long)off + (type == MI_COMPRESSED ? bytes : (bytes + 7) & ~7u);
	}
	return FV_OK;
}

fv_status kara_mat_scan_v5(const char *path)
{
	scan s = {.path = path, .f = fopen(path, "rb")};
	unsigned char header[HEADER_BYTES];
	if (s.f == NULL)
		return FV_OK; /* libmatio reports it */
	fv_status rc = FV_OK;
	if (fread(header, 1, sizeof header, s.f) == sizeof header && fseek(s.f, 0, SEEK_END) == 0 &&
	    (s.size = ftell(s.f)) > 0) {
		uint16_t version;
		memcpy(&version, header + 124, 2);
		s.swap = header[126] == 'M'; /* "IM" as written by a machine of our order */
		if ((s.swap ? __builtin_bswap16(version) : version) == 0x0100)
			rc = walk(&s);
	}
	fclose(s.f);
	return rc;
}
