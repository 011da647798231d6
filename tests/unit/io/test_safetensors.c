/*
** test_safetensors.c: the safetensors reader (the header's JSON, golden
** files and a table of hostile inputs) and the atomic writer.
**
** Expected values are written out by hand (bit patterns of F16/BF16, the
** exact header text) or read independently of the code under test (the
** golden .yaml `tensors:` maps are parsed here with a few lines of C).
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fovea/safetensors.h"

#ifndef FOVEA_TEST_SRCDIR
#define FOVEA_TEST_SRCDIR "tests"
#endif

/* ---- helpers ---------------------------------------------------------------- */

typedef struct buf {
	unsigned char *p;
	size_t len;
} buf;

/* u64 LE header length, the header, then data_len bytes 0, 1, 2, ... */
static buf make_file(const char *header, size_t header_len, size_t data_len)
{
	buf b = {malloc(8 + header_len + data_len + 1), 8 + header_len + data_len};
	cr_assert_not_null(b.p);
	for (int i = 0; i < 8; i++)
		b.p[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
	memcpy(b.p + 8, header, header_len);
	for (size_t i = 0; i < data_len; i++)
		b.p[8 + header_len + i] = (unsigned char)i;
	return b;
}

static buf make_file_str(const char *header, size_t data_len)
{
	return make_file(header, strlen(header), data_len);
}

static void expect_rejected(buf b, const char *fragment)
{
	fv_clear_error();
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "hostile.safetensors");
	cr_expect_null(st, "accepted, expected an error containing \"%s\"", fragment);
	fv_safetensors_close(st);
	const char *msg = fv_errmsg();
	cr_expect(strstr(msg, "hostile.safetensors") != NULL, "message does not name the file: %s",
	          msg);
	cr_expect(strstr(msg, fragment) != NULL, "message \"%s\" lacks \"%s\"", msg, fragment);
	free(b.p);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat sb;
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			chmod(path, 0700);
			remove_tree(path);
		} else {
			unlink(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

/* A new directory under /tmp and the path of `file` in it. */
typedef struct scratch {
	char dir[64];
	char path[4096];
} scratch;

static scratch scratch_new(const char *file)
{
	scratch s = {.dir = "/tmp/fovea_st_XXXXXX"};
	cr_assert_not_null(mkdtemp(s.dir));
	snprintf(s.path, sizeof s.path, "%s/%s", s.dir, file);
	return s;
}

/* Remove the directory and everything in it. */
static void scratch_free(scratch *s)
{
	remove_tree(s->dir);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static buf read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	buf b = {NULL, 0};
	size_t cap = 0;
	int c;
	while ((c = fgetc(f)) != EOF) {
		if (b.len == cap) {
			cap = cap ? cap * 2 : 4096;
			b.p = realloc(b.p, cap);
			cr_assert_not_null(b.p);
		}
		b.p[b.len++] = (unsigned char)c;
	}
	fclose(f);
	return b;
}

/* A tensor entry of a header. */
#define T(dtype, shape, offsets) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

/* ---- the header's JSON ------------------------------------------------------------ */

/* What a header with `meta_json` as its __metadata__ reads as. */
static fv_safetensors *open_meta(const char *meta_json)
{
	char header[4096];
	snprintf(header, sizeof header, "{\"__metadata__\":%s}", meta_json);
	buf b = make_file_str(header, 0);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "meta.safetensors");
	free(b.p);
	return st;
}

Test(safetensors_json, strings_decode_escapes_and_utf8)
{
	fv_safetensors *st = open_meta("{\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t|\\u00e9|\\u20AC|\\ud83d\\ude00|\xc2\xb5\":"
	                               "\"\\u00e9\", \"k\":\"\"}");
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_assert_eq(fv_safetensors_meta_count(st), 2);
	cr_expect_str_eq(fv_safetensors_meta_key(st, 0),
	                 "q\"b\\s/\b\f\n\r\t|\xc3\xa9|\xe2\x82\xac|\xf0\x9f\x98\x80|\xc2\xb5");
	cr_expect_str_eq(fv_safetensors_meta_value(st, 0), "\xc3\xa9");
	cr_expect_str_eq(fv_safetensors_meta_key(st, 1), "k"); /* text order is kept */
	cr_expect_str_eq(fv_safetensors_meta(st, "k"), "");
	fv_safetensors_close(st);
}

Test(safetensors_json, integers_are_exact_to_int64)
{
	/* INT64_MAX is read exactly (and is too many elements); one more is
	** not an integer jansson can hold, so the header is refused */
	expect_rejected(make_file_str("{\"w\":" T("F32", "[9223372036854775807]", "[0,4]") "}", 4),
	                "tensor 'w': shape (9223372036854775807) has too many elements");
	expect_rejected(make_file_str("{\"w\":" T("U8", "[9223372036854775808]", "[0,1]") "}", 1),
	                "header: byte 47: too big integer near '9223372036854775808'");
	/* a real is not a size, even when it is whole */
	expect_rejected(make_file_str("{\"w\":" T("U8", "[1]", "[0,1.0]") "}", 1),
	                "tensor 'w': data_offsets entry 1 is 1.0; expected a non-negative integer");
	expect_rejected(make_file_str("{\"w\":" T("U8", "[1]", "[0,1e0]") "}", 1),
	                "data_offsets entry 1 is 1.0");
}

Test(safetensors_json, malformed_text_is_refused_where_it_is)
{
	static const struct {
		const char *header;
		const char *fragment;
	} cases[] = {
		{"", "header: byte 0: unexpected token near end of file"},
		{"hello", "header: byte 5: invalid token near 'hello'"},
		{"{\"a\":1,}", "header: byte 8: string or '}' expected near '}'"},
		{"{\"a\" 1}", "':' expected near '1'"},
		{"{\"a\":[1 2]}", "']' expected near '2'"},
		{"{\"a\":1 \"b\":2}", "'}' expected near '\"b\"'"},
		{"{\"a\":1", "'}' expected near end of file"},
		{"{\"a\":01}", "invalid token near '0'"},
		{"{\"a\":+1}", "invalid token near '+'"},
		{"{\"a\":NaN}", "invalid token near 'NaN'"},
		{"{\"a\":1.}", "invalid token near '1.'"},
		{"{\"a\":1e400}", "real number overflow near '1e400'"},
		{"{\"a\":tru}", "invalid token near 'tru'"},
		{"// c\n{}", "invalid token near '/'"},
		{"{\"a\":\"x\ty\"}", "control character 0x9"},
		{"{\"a\":\"\\x\"}", "invalid escape"},
		{"{\"a\":\"\\u12G4\"}", "invalid escape"},
		{"{\"a\":\"\\ud800\"}", "invalid Unicode '\\uD800'"},
		{"{\"a\":\"\\udc00\"}", "invalid Unicode '\\uDC00'"},
		{"{\"a\":\"abc}", "premature end of input"},
		{"{\"\xc0\xaf\":1}", "unable to decode byte 0xc0"},         /* overlong '/' */
		{"{\"\xed\xa0\x80\":1}", "unable to decode byte 0xed"},     /* encoded surrogate */
		{"{\"\xf4\x90\x80\x80\":1}", "unable to decode byte 0xf4"}, /* above U+10FFFF */
		{"{\"\xe2\x82\":1}", "unable to decode byte 0xe2"},         /* cut short */
		{"{}\x01", "header: byte 3: end of file expected"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_rejected(make_file_str(cases[i].header, 0), cases[i].fragment);
}

/* Headers nesting `depth` arrays in a metadata value: jansson's limit
** counts the root object and __metadata__ too. */
static buf nested_header(int depth)
{
	const char *open = "{\"__metadata__\":{\"k\":", *close = "}}";
	size_t n = strlen(open) + 2 * (size_t)depth + strlen(close);
	char *header = malloc(n + 1);
	cr_assert_not_null(header);
	size_t at = (size_t)sprintf(header, "%s", open);
	memset(header + at, '[', (size_t)depth);
	memset(header + at + depth, ']', (size_t)depth);
	strcpy(header + at + 2 * (size_t)depth, close);
	buf b = make_file(header, n, 0);
	free(header);
	return b;
}

/* Parse the deepest header jansson takes, then deeper ones, on a thread
** with a small stack: the nesting limit keeps the recursion bounded. */
static void *parse_deep_headers(void *unused)
{
	(void)unused;
	expect_rejected(nested_header(JSON_PARSER_MAX_DEPTH - 2), "__metadata__ key 'k' is an array");
	expect_rejected(nested_header(JSON_PARSER_MAX_DEPTH - 1), "maximum parsing depth reached");
	expect_rejected(nested_header(1000000), "maximum parsing depth reached");
	return NULL;
}

Test(safetensors_json, deep_nesting_stops_at_janssons_limit)
{
	pthread_attr_t attr;
	cr_assert_eq(pthread_attr_init(&attr), 0);
	cr_assert_eq(pthread_attr_setstacksize(&attr, 512 * 1024), 0);
	pthread_t thread;
	cr_assert_eq(pthread_create(&thread, &attr, parse_deep_headers, NULL), 0);
	cr_assert_eq(pthread_join(thread, NULL), 0);
	pthread_attr_destroy(&attr);
}

/* ---- hostile safetensors files --------------------------------------------------- */

Test(safetensors_hostile, too_short)
{
	expect_rejected((buf){memcpy(malloc(5), "\x01\x02\x03\x04\x05", 5), 5},
	                "file is too short (5 bytes)");
	expect_rejected((buf){malloc(1), 0}, "too short (0 bytes)");
}

Test(safetensors_hostile, header_length_beyond_file)
{
	buf b = make_file_str("{}", 0);
	b.p[0] = 3; /* header says 3 bytes, 2 follow */
	expect_rejected(b, "header length 3 exceeds the file size (10 bytes)");
	b = make_file_str("{}", 0);
	b.p[7] = 0x80; /* 2^63 + 2 */
	expect_rejected(b, "header length 9223372036854775810 exceeds the file size");
}

Test(safetensors_hostile, header_length_beyond_cap)
{
	size_t n = 100000001;
	buf b = {calloc(n + 8, 1), n + 8};
	cr_assert_not_null(b.p);
	for (int i = 0; i < 8; i++)
		b.p[i] = (unsigned char)((uint64_t)n >> (8 * i));
	expect_rejected(b, "header length 100000001 exceeds the limit of 100000000");
}

Test(safetensors_hostile, exact_message_for_mismatched_offsets)
{
	buf b = make_file_str("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "model.safetensors");
	cr_expect_null(st);
	cr_expect_str_eq(fv_errmsg(), "model.safetensors: tensor 'w': data_offsets [0, 12] do not "
	                              "match shape (2, 2) of F32 (16 bytes)");
	free(b.p);
}

Test(safetensors_hostile, header_not_an_object)
{
	buf b = make_file_str("[]", 0);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "x");
	cr_expect_null(st);
	cr_expect_str_eq(fv_errmsg(), "x: header is an array; expected a JSON object");
	free(b.p);
}

Test(safetensors_hostile, table)
{
	static const struct {
		const char *header;
		size_t data_len;
		const char *fragment;
	} cases[] = {
		{"\"s\"", 0, "header is a string; expected a JSON object"},
		{"{} x", 0, "header: byte 4: end of file expected near 'x'"},
		{"{\"w\":" T("F8", "[1]", "[0,1]") "}", 1, "tensor 'w': unknown dtype 'F8'"},
		{"{\"w\":" T("f32", "[1]", "[0,4]") "}", 4, "unknown dtype 'f32'"},
		{"{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "tensor 'w': dtype is 5; expected a string"},
		{"{\"w\":" T("F32", "[-1]", "[0,4]") "}", 4,
		 "tensor 'w': shape entry 0 is -1; expected a non-negative integer"},
		{"{\"w\":" T("F32", "[2.5]", "[0,4]") "}", 4, "shape entry 0 is 2.5"},
		{"{\"w\":" T("F32", "[1,\"2\"]", "[0,4]") "}", 4, "shape entry 1 is a string"},
		{"{\"w\":" T("F32", "[1e30]", "[0,4]") "}", 4, "shape entry 0 is 1e30"},
		{"{\"w\":" T("F32", "[4294967296,4294967296]", "[0,4]") "}", 4,
		 "tensor 'w': shape (4294967296, 4294967296) has too many elements"},
		{"{\"w\":" T("F64", "[1152921504606846976,8]", "[0,4]") "}", 4,
		 "has too many elements"},
		{"{\"w\":" T("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1,
		 "tensor 'w': shape has 9 dims; at most 8 are supported"},
		{"{\"w\":" T("F32", "3", "[0,4]") "}", 4, "tensor 'w': shape is 3; expected an array"},
		{"{\"w\":" T("F32", "[1]", "[0,100]") "}", 16,
		 "tensor 'w': data_offsets [0, 100] are out of range: the data section has 16 bytes"},
		{"{\"w\":" T("F32", "[1]", "[8,4]") "}", 16, "data_offsets [8, 4] are out of range"},
		{"{\"w\":" T("F32", "[1]", "[-4,0]") "}", 16, "data_offsets entry 0 is -4"},
		{"{\"w\":" T("F32", "[1]", "[0,1e30]") "}", 16, "data_offsets entry 1 is 1e30"},
		{"{\"w\":" T("F32", "[1]", "[0,4,8]") "}", 16,
		 "tensor 'w': data_offsets must be an array [begin, end]"},
		{"{\"w\":" T("F32", "[1]", "{}") "}", 16, "data_offsets must be an array"},
		{"{\"w\":" T("F32", "[3]", "[0,8]") "}", 16,
		 "data_offsets [0, 8] do not match shape (3) of F32 (12 bytes)"},
		{"{\"w\":" T("BF16", "[]", "[0,4]") "}", 16,
		 "data_offsets [0, 4] do not match shape () of BF16 (2 bytes)"},
		{"{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T("F32", "[2]", "[4,12]") "}", 16,
		 "tensors 'a' [0, 8] and 'b' [4, 12] overlap in the data section"},
		{"{\"b\":" T("U8", "[4]", "[0,4]") ",\"a\":" T("U8", "[2]", "[1,3]") "}", 16,
		 "tensors 'b' [0, 4] and 'a' [1, 3] overlap"},
		{"{\"a\":" T("U8", "[4]", "[0,4]") ",\"b\":" T("U8", "[4]", "[0,4]") "}", 16,
		 "tensors 'a' [0, 4] and 'b' [0, 4] overlap"},
		{"{\"w\":" T("F32", "[1]", "[0,4]") ",\"w\":" T("F32", "[1]", "[4,8]") "}", 16,
		 "header: byte 57: duplicate object key near '\"w\"'"},
		{"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		 "duplicate object key near '\"dtype\"'"},
		{"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate object key near '\"k\"'"},
		/* a key too long to be quoted in jansson's message */
		{"{\"__metadata__\":{\"a_rather_long_key_name\":\"a\",\"a_rather_long_key_name\":\"b\"}}", 0,
		 "header: byte 70: duplicate object key"},
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"foo\":1}}", 4,
		 "tensor 'w': unknown field 'foo' (expected dtype, shape, data_offsets)"},
		{"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing field 'shape'"},
		{"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing field 'dtype'"},
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing field 'data_offsets'"},
		{"{\"w\":5}", 4, "tensor 'w': entry is 5; expected an object"},
		{"{\"w\":null}", 4, "tensor 'w': entry is null"},
		{"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ key 'k' is 1; expected a string value"},
		{"{\"__metadata__\":{\"k\":\"v\",\"j\":{}}}", 0, "__metadata__ key 'j' is an object"},
		{"{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is an array; expected an object of strings"},
		{"{\"\xff\":" T("F32", "[1]", "[0,4]") "}", 4, "header: byte 2: unable to decode byte 0xff"},
		{"{\"__metadata__\":{\"k\":\"\xc3\x28\"}}", 0, "unable to decode byte 0xc3"},
		/* every string is a C string */
		{"{\"w\\u0000x\":" T("F32", "[1]", "[0,4]") "}", 4, "NUL byte in object key not supported"},
		{"{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "\\u0000 is not allowed"},
		{"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4,
		 "'}' expected near end of file"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *h = cases[i].header;
		expect_rejected(make_file(h, strlen(h), cases[i].data_len), cases[i].fragment);
	}
	/* the format pads with spaces; NULs are not JSON whitespace */
	expect_rejected(make_file("{}\0\0\0\0\0\0", 8, 0), "header: byte 3: end of file expected");
}

Test(safetensors_hostile, truncated_data)
{
	/* a valid file cut short: the header survives, the data does not */
	buf b = make_file_str("{\"w\":" T("F32", "[4]", "[0,16]") "}", 16);
	b.len -= 3;
	expect_rejected(b, "data_offsets [0, 16] are out of range: the data section has 13 bytes");
}

Test(safetensors_hostile, missing_file)
{
	fv_clear_error();
	fv_safetensors *st = fv_safetensors_open("/nonexistent/dir/model.safetensors");
	cr_expect_null(st);
	cr_expect_str_eq(fv_errmsg(), "/nonexistent/dir/model.safetensors: cannot open: No such file or directory");
	st = fv_safetensors_open(NULL);
	cr_expect_null(st);
	cr_expect(strstr(fv_errmsg(), "path is NULL") != NULL);
}

Test(safetensors_hostile, directory_instead_of_file)
{
	fv_safetensors *st = fv_safetensors_open("/tmp");
	cr_expect_null(st);
	cr_expect(strstr(fv_errmsg(), "/tmp: cannot read: Is a directory") != NULL, "%s", fv_errmsg());
}

Test(safetensors_hostile, accepts_edge_cases_that_are_valid)
{
	/* empty header object, empty tensors, gaps, metadata last, whitespace */
	buf b = make_file_str(" { \"e\" : " T("F32", "[0,3]", "[4,4]") " , \"w\":" T("U8", "[2]", "[6,8]")
	                      ", \"__metadata__\" : { } }   ", 8);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "ok.safetensors");
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_expect_eq(fv_safetensors_count(st), 2);
	cr_expect_eq(fv_safetensors_meta_count(st), 0);
	const fv_st_entry *e = fv_safetensors_find(st, "e");
	cr_assert_not_null(e);
	cr_expect_eq(e->numel, 0);
	cr_expect_eq(e->nbytes, 0);
	const fv_st_entry *w = fv_safetensors_find(st, "w");
	cr_assert_not_null(w);
	cr_expect_eq(((const unsigned char *)w->data)[0], 6);
	fv_safetensors_close(st);
	free(b.p);

	b = make_file_str("{}", 0);
	st = fv_safetensors_from_memory(b.p, b.len, NULL);
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_expect_eq(fv_safetensors_count(st), 0);
	cr_expect_null(fv_safetensors_at(st, 0));
	cr_expect_null(fv_safetensors_meta(st, "x"));
	fv_safetensors_close(st);
	free(b.p);
}

/* ---- reading values ---------------------------------------------------------------- */

Test(safetensors_read, conversions_of_every_dtype)
{
	/* data written byte by byte, little-endian; values worked out by hand */
	static const unsigned char data[] = {
		/* f64 [0, 8): 1.5 = 0x3FF8000000000000 */
		0, 0, 0, 0, 0, 0, 0xf8, 0x3f,
		/* f32 [8, 12): -2.5 = 0xC0200000 */
		0, 0, 0x20, 0xc0,
		/* f16 [12, 22): 1, -2, 2^-24 (smallest subnormal), 65504 (max), inf */
		0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0xff, 0x7b, 0x00, 0x7c,
		/* bf16 [22, 26): 1, -5 */
		0x80, 0x3f, 0xa0, 0xc0,
		/* i64 [26, 34): -3 */
		0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		/* i32 [34, 38): 100000 = 0x000186A0 */
		0xa0, 0x86, 0x01, 0x00,
		/* i16 [38, 40): -300 = 0xFED4 */
		0xd4, 0xfe,
		/* i8 [40, 41): -128 */
		0x80,
		/* u8 [41, 42): 255 */
		0xff,
		/* bool [42, 45): 0, 1, 2 */
		0, 1, 2,
	};
	const char *header =
		"{\"f64\":" T("F64", "[]", "[0,8]") ",\"f32\":" T("F32", "[1]", "[8,12]")
		",\"f16\":" T("F16", "[5]", "[12,22]") ",\"bf16\":" T("BF16", "[2]", "[22,26]")
		",\"i64\":" T("I64", "[1]", "[26,34]") ",\"i32\":" T("I32", "[1,1]", "[34,38]")
		",\"i16\":" T("I16", "[1]", "[38,40]") ",\"i8\":" T("I8", "[1]", "[40,41]")
		",\"u8\":" T("U8", "[1]", "[41,42]") ",\"bool\":" T("BOOL", "[3]", "[42,45]") "}";
	size_t hl = strlen(header);
	buf b = {malloc(8 + hl + sizeof data), 8 + hl + sizeof data};
	for (int i = 0; i < 8; i++)
		b.p[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	memcpy(b.p + 8, header, hl);
	memcpy(b.p + 8 + hl, data, sizeof data);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "dtypes.safetensors");
	free(b.p);
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_assert_eq(fv_safetensors_count(st), 10);
	/* sorted by name */
	static const char *const sorted[] = {"bf16", "bool", "f16", "f32", "f64",
	                                     "i16",  "i32",  "i64", "i8",  "u8"};
	for (size_t i = 0; i < 10; i++)
		cr_expect_str_eq(fv_safetensors_at(st, i)->name, sorted[i]);

	fv_real v[5];
	cr_assert_eq(fv_safetensors_read(st, "f64", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)1.5);
	cr_assert_eq(fv_safetensors_read(st, "f32", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)-2.5);
	cr_assert_eq(fv_safetensors_read(st, "f16", v, 5), FV_OK);
	cr_expect_eq(v[0], (fv_real)1.0);
	cr_expect_eq(v[1], (fv_real)-2.0);
	cr_expect_eq(v[2], (fv_real)5.9604644775390625e-08);
	cr_expect_eq(v[3], (fv_real)65504.0);
	cr_expect(isinf(v[4]) && v[4] > 0);
	cr_assert_eq(fv_safetensors_read(st, "bf16", v, 2), FV_OK);
	cr_expect_eq(v[0], (fv_real)1.0);
	cr_expect_eq(v[1], (fv_real)-5.0);
	cr_assert_eq(fv_safetensors_read(st, "i64", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)-3.0);
	cr_assert_eq(fv_safetensors_read(st, "i32", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)100000.0);
	cr_assert_eq(fv_safetensors_read(st, "i16", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)-300.0);
	cr_assert_eq(fv_safetensors_read(st, "i8", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)-128.0);
	cr_assert_eq(fv_safetensors_read(st, "u8", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)255.0);
	cr_assert_eq(fv_safetensors_read(st, "bool", v, 3), FV_OK);
	cr_expect(v[0] == 0 && v[1] == 1 && v[2] == 1);

	/* a persistent tensor: scalar shape [] and a 2-D one */
	fv_tensor *t = fv_safetensors_tensor(st, "f64");
	cr_assert_not_null(t, "%s", fv_errmsg());
	cr_expect_eq(t->ndim, 0);
	cr_expect_eq(t->numel, 1);
	cr_expect_eq(t->data[0], (fv_real)1.5);
	cr_expect_str_eq(t->name, "f64");
	fv_tensor_free(t);
	t = fv_safetensors_tensor(st, "i32");
	cr_assert_not_null(t);
	cr_expect(t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 1);
	cr_expect_eq(t->data[0], (fv_real)100000.0);
	fv_tensor_free(t);
	fv_safetensors_close(st);
}

Test(safetensors_read, errors_of_lookups)
{
	buf b = make_file_str("{\"w\":" T("U8", "[2,3]", "[0,6]") ",\"d7\":" T("U8", "[1,1,1,1,1,1,1]", "[6,7]") "}", 8);
	fv_safetensors *st = fv_safetensors_from_memory(b.p, b.len, "m.safetensors");
	free(b.p);
	cr_assert_not_null(st, "%s", fv_errmsg());
	fv_real v[6];
	cr_expect_eq(fv_safetensors_read(st, "nope", v, 6), FV_ERR_NOTFOUND);
	cr_expect_str_eq(fv_errmsg(), "m.safetensors: no tensor named 'nope'");
	cr_expect_null(fv_safetensors_find(st, "nope"));
	cr_expect_null(fv_safetensors_tensor(st, "nope"));
	cr_expect_str_eq(fv_errmsg(), "m.safetensors: no tensor named 'nope'");
	cr_expect_eq(fv_safetensors_read(st, "w", v, 5), FV_ERR_SHAPE);
	cr_expect_str_eq(fv_errmsg(),
	                 "m.safetensors: tensor 'w' has 6 elements (shape (2, 3)), but 5 were asked for");
	cr_expect_eq(fv_safetensors_read(st, "w", NULL, 6), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "destination is NULL") != NULL);
	cr_expect_eq(fv_safetensors_read(NULL, "w", v, 6), FV_ERR_ARG);
	cr_expect_eq(fv_safetensors_read(st, NULL, v, 6), FV_ERR_ARG);
	cr_expect_null(fv_safetensors_tensor(st, "d7"));
	cr_expect_str_eq(fv_errmsg(), "m.safetensors: tensor 'd7' has shape (1, 1, 1, 1, 1, 1, 1); "
	                              "fovea tensors have at most 6 dims");
	/* ...but the entry itself is readable */
	cr_expect_eq(fv_safetensors_read(st, "d7", v, 1), FV_OK);
	cr_expect_eq(v[0], (fv_real)6);
	cr_expect_eq(fv_safetensors_read(st, "w", v, 6), FV_OK);
	for (int i = 0; i < 6; i++)
		cr_expect_eq(v[i], (fv_real)i);
	fv_safetensors_close(st);
	fv_safetensors_close(NULL);
	cr_expect_eq(fv_safetensors_count(NULL), 0);
	cr_expect_null(fv_safetensors_from_memory(NULL, 4, "n"));
	cr_expect(strstr(fv_errmsg(), "n: fv_safetensors_from_memory: buffer is NULL") != NULL);
}

Test(safetensors_read, dtype_names_and_sizes)
{
	static const char *const names[] = {"F64", "F32", "F16", "BF16", "I64",
	                                    "I32", "I16", "I8",  "U8",   "BOOL"};
	static const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
	for (int i = 0; i < 10; i++) {
		cr_expect_str_eq(fv_dtype_name((fv_dtype)i), names[i]);
		cr_expect_eq(fv_dtype_size((fv_dtype)i), sizes[i]);
	}
	cr_expect_eq(fv_dtype_size((fv_dtype)99), 0);
	cr_expect_str_eq(fv_dtype_name((fv_dtype)99), "?");
}

/* ---- the golden files ---------------------------------------------------------------- */

typedef struct yaml_tensor {
	char name[256];
	int ndim;
	int64_t shape[FV_ST_MAX_DIMS];
} yaml_tensor;

/* The `tensors:` map of a golden .yaml: lines "  name: [a, b, c]". */
static int read_yaml_tensors(const char *path, yaml_tensor *out, int max)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s", path);
	char line[1024];
	int n = 0;
	bool in_map = false;
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] != ' ' && line[0] != '\n') {
			in_map = strncmp(line, "tensors:", 8) == 0;
			continue;
		}
		if (!in_map || strncmp(line, "  ", 2) != 0)
			continue;
		cr_assert_lt(n, max);
		char *colon = strstr(line, ": [");
		cr_assert_not_null(colon, "%s: unexpected line %s", path, line);
		*colon = '\0';
		cr_assert_lt(strlen(line + 2), sizeof out[n].name);
		memcpy(out[n].name, line + 2, strlen(line + 2) + 1);
		out[n].ndim = 0;
		char *p = colon + 3;
		while (*p != ']') {
			char *end;
			out[n].shape[out[n].ndim++] = strtoll(p, &end, 10);
			cr_assert(end != p, "%s: bad shape in %s", path, out[n].name);
			p = end;
			while (*p == ',' || *p == ' ')
				p++;
		}
		n++;
	}
	fclose(f);
	return n;
}

Test(safetensors_golden, every_file_matches_its_yaml)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/golden/cases.txt", FOVEA_TEST_SRCDIR);
	FILE *cases = fopen(path, "r");
	cr_assert_not_null(cases, "cannot open %s", path);
	char name[256];
	int files = 0, checked = 0;
	static yaml_tensor expect[512];
	while (fscanf(cases, "%255s", name) == 1) {
		snprintf(path, sizeof path, "%s/golden/%s.yaml", FOVEA_TEST_SRCDIR, name);
		int n = read_yaml_tensors(path, expect, 512);
		snprintf(path, sizeof path, "%s/golden/%s.safetensors", FOVEA_TEST_SRCDIR, name);
		fv_safetensors *st = fv_safetensors_open(path);
		cr_assert_not_null(st, "%s", fv_errmsg());
		cr_expect_eq(fv_safetensors_count(st), (size_t)n, "%s: %zu tensors, yaml lists %d", name,
		             fv_safetensors_count(st), n);
		cr_expect_str_eq(fv_safetensors_meta(st, "case"), name);
		cr_expect_str_eq(fv_safetensors_meta(st, "storage_dtype"), "float32");
		for (int i = 0; i < n; i++) {
			const fv_st_entry *e = fv_safetensors_find(st, expect[i].name);
			cr_assert_not_null(e, "%s: no tensor %s", name, expect[i].name);
			cr_expect_eq(e->dtype, FV_DTYPE_F32);
			cr_expect_eq(e->ndim, expect[i].ndim, "%s: %s", name, expect[i].name);
			for (int d = 0; d < e->ndim && d < expect[i].ndim; d++)
				cr_expect_eq(e->shape[d], expect[i].shape[d], "%s: %s dim %d", name,
				             expect[i].name, d);
			/* values: F32 read back exactly equal the raw little-endian words */
			fv_real *v = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *v);
			cr_assert_eq(fv_safetensors_read(st, e->name, v, e->numel), FV_OK);
			for (int64_t k = 0; k < e->numel; k++) {
				float raw;
				memcpy(&raw, (const unsigned char *)e->data + 4 * k, 4);
				if (!(isnan(raw) && isnan(v[k])))
					cr_assert_eq(v[k], (fv_real)raw);
			}
			free(v);
			checked++;
		}
		fv_safetensors_close(st);
		files++;
	}
	fclose(cases);
	cr_expect_geq(files, 60);
	cr_expect_geq(checked, 300);
}

Test(safetensors_golden, known_shapes)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/golden/core_dummy.safetensors", FOVEA_TEST_SRCDIR);
	fv_safetensors *st = fv_safetensors_open(path);
	cr_assert_not_null(st, "%s", fv_errmsg());
	const fv_st_entry *x = fv_safetensors_find(st, "input.x");
	cr_assert_not_null(x);
	cr_expect_eq(x->ndim, 5);
	int64_t shape[5] = {2, 2, 9, 5, 6};
	for (int i = 0; i < 5; i++)
		cr_expect_eq(x->shape[i], shape[i]);
	cr_expect_eq(x->numel, 1080);
	cr_expect_eq(x->nbytes, 4320);
	const fv_st_entry *r = fv_safetensors_find(st, "output.regularizer");
	cr_assert_not_null(r);
	cr_expect_eq(r->ndim, 0);
	cr_expect_eq(r->numel, 1);
	/* DummyCore is the identity: y equals x */
	fv_tensor *tx = fv_safetensors_tensor(st, "input.x");
	fv_tensor *ty = fv_safetensors_tensor(st, "output.y");
	cr_assert(tx && ty);
	cr_expect_eq(memcmp(tx->data, ty->data, 1080 * sizeof(fv_real)), 0);
	fv_tensor_free(tx);
	fv_tensor_free(ty);
	cr_expect_str_eq(fv_safetensors_meta(st, "target"), "openretina.modules.core.base_core.DummyCore");
	fv_safetensors_close(st);
}

/* ---- writing ------------------------------------------------------------------------ */

Test(safetensors_write, round_trip_of_every_dtype_and_metadata)
{
	scratch tmp = scratch_new("rt.safetensors");
	fv_st_writer *w = fv_st_writer_new();
	cr_assert_not_null(w);
	unsigned char bytes[64];
	for (int i = 0; i < 64; i++)
		bytes[i] = (unsigned char)(i * 7 + 1);
	int64_t shape2[2] = {2, 2};
	for (int dt = FV_DTYPE_BOOL; dt >= FV_DTYPE_F64; dt--) { /* added in reverse order */
		char name[16];
		snprintf(name, sizeof name, "t_%s", fv_dtype_name((fv_dtype)dt));
		cr_assert_eq(fv_st_writer_add(w, name, (fv_dtype)dt, 2, shape2, bytes), FV_OK, "%s",
		             fv_errmsg());
	}
	cr_assert_eq(fv_st_writer_add(w, "scalar", FV_DTYPE_F32, 0, NULL, "\0\0\x80\x3f"), FV_OK);
	cr_assert_eq(fv_st_writer_add(w, "empty", FV_DTYPE_F32, 1, (int64_t[]){0}, NULL), FV_OK);
	cr_assert_eq(fv_st_writer_meta(w, "quote\"back\\slash", "line\nbreak\ttab\x01 \xc2\xb5 \xf0\x9f\x98\x80"), FV_OK);
	cr_assert_eq(fv_st_writer_meta(w, "config", "first"), FV_OK);
	cr_assert_eq(fv_st_writer_meta(w, "config", "lr: 0.01"), FV_OK); /* replaces */
	bytes[0] = 0; /* the writer holds copies */
	cr_assert_eq(fv_st_writer_save(w, tmp.path), FV_OK, "%s", fv_errmsg());
	fv_st_writer_free(w);

	/* the file as bytes: header length, `__metadata__` first, padding */
	buf f = read_all(tmp.path);
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | f.p[i];
	cr_expect_eq(hl % 8, 0);
	/* 4 elements of each dtype (32+16+8+8+32+16+8+4+4+4 bytes), the scalar */
	cr_expect_eq(f.len, 8 + hl + 132 + 4);
	const char *expect_start = "{\"__metadata__\":{\"quote\\\"back\\\\slash\":\"line\\nbreak\\ttab\\u0001 "
	                           "\xc2\xb5 \xf0\x9f\x98\x80\",\"config\":\"lr: 0.01\"},"
	                           "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
	                           "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
	                           "\"t_BF16\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[4,12]},";
	cr_expect_eq(memcmp(f.p + 8, expect_start, strlen(expect_start)), 0, "header: %.*s", (int)hl,
	             (const char *)f.p + 8);
	for (uint64_t i = 8 + hl - 1; f.p[i] != '}'; i--)
		cr_expect_eq(f.p[i], ' ');
	free(f.p);

	fv_safetensors *st = fv_safetensors_open(tmp.path);
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_expect_eq(fv_safetensors_count(st), 12);
	for (int dt = FV_DTYPE_F64; dt <= FV_DTYPE_BOOL; dt++) {
		char name[16];
		snprintf(name, sizeof name, "t_%s", fv_dtype_name((fv_dtype)dt));
		const fv_st_entry *e = fv_safetensors_find(st, name);
		cr_assert_not_null(e, "%s", name);
		cr_expect_eq(e->dtype, (fv_dtype)dt);
		cr_expect(e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 2);
		cr_expect_eq(e->nbytes, 4 * fv_dtype_size((fv_dtype)dt));
		const unsigned char *d = e->data;
		cr_expect_eq(d[0], 1); /* the value at add time */
		for (size_t i = 1; i < e->nbytes; i++)
			cr_expect_eq(d[i], (unsigned char)(i * 7 + 1));
	}
	fv_real one;
	cr_expect_eq(fv_safetensors_read(st, "scalar", &one, 1), FV_OK);
	cr_expect_eq(one, (fv_real)1.0);
	cr_expect_eq(fv_safetensors_find(st, "empty")->numel, 0);
	cr_assert_eq(fv_safetensors_meta_count(st), 2);
	cr_expect_str_eq(fv_safetensors_meta_key(st, 0), "quote\"back\\slash");
	cr_expect_str_eq(fv_safetensors_meta_value(st, 0), "line\nbreak\ttab\x01 \xc2\xb5 \xf0\x9f\x98\x80");
	cr_expect_str_eq(fv_safetensors_meta(st, "config"), "lr: 0.01");
	cr_expect_null(fv_safetensors_meta_key(st, 2));
	fv_safetensors_close(st);
	scratch_free(&tmp);
}

Test(safetensors_write, tensors_as_f32)
{
	scratch tmp = scratch_new("t.safetensors");
	fv_tensor *t = fv_tensor_new(3, (int64_t[]){2, 3, 4});
	for (int i = 0; i < 24; i++)
		t->data[i] = (fv_real)(i * 0.25 - 3);
	fv_st_writer *w = fv_st_writer_new();
	cr_assert_eq(fv_st_writer_add_tensor(w, "core.features.layer0.conv.weight", t), FV_OK);
	cr_expect_eq(fv_st_writer_add_tensor(w, "x", NULL), FV_ERR_ARG);
	cr_assert_eq(fv_st_writer_save(w, tmp.path), FV_OK, "%s", fv_errmsg());
	fv_st_writer_free(w);
	fv_safetensors *st = fv_safetensors_open(tmp.path);
	cr_assert_not_null(st, "%s", fv_errmsg());
	fv_tensor *back = fv_safetensors_tensor(st, "core.features.layer0.conv.weight");
	cr_assert_not_null(back);
	cr_expect_eq(fv_safetensors_find(st, "core.features.layer0.conv.weight")->dtype, FV_DTYPE_F32);
	cr_expect(back->ndim == 3 && back->shape[0] == 2 && back->shape[1] == 3 && back->shape[2] == 4);
	for (int i = 0; i < 24; i++)
		cr_expect_eq(back->data[i], (fv_real)(i * 0.25 - 3));
	fv_tensor_free(back);
	fv_tensor_free(t);
	fv_safetensors_close(st);
	scratch_free(&tmp);
}

Test(safetensors_write, argument_errors)
{
	fv_st_writer *w = fv_st_writer_new();
	float f[4] = {0};
	int64_t s2[2] = {2, 2};
	cr_assert_eq(fv_st_writer_add(w, "a", FV_DTYPE_F32, 2, s2, f), FV_OK);
	cr_expect_eq(fv_st_writer_add(w, "a", FV_DTYPE_F32, 2, s2, f), FV_ERR_ARG);
	cr_expect_str_eq(fv_errmsg(), "safetensors writer: tensor 'a' was already added");
	cr_expect_eq(fv_st_writer_add(w, "__metadata__", FV_DTYPE_F32, 2, s2, f), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "'__metadata__' is reserved") != NULL);
	cr_expect_eq(fv_st_writer_add(w, "b", (fv_dtype)42, 2, s2, f), FV_ERR_ARG);
	cr_expect_str_eq(fv_errmsg(), "safetensors writer: tensor 'b': unknown dtype 42");
	cr_expect_eq(fv_st_writer_add(w, "b", FV_DTYPE_F32, 2, (int64_t[]){2, -1}, f), FV_ERR_ARG);
	cr_expect_str_eq(fv_errmsg(), "safetensors writer: tensor 'b': negative size -1");
	cr_expect_eq(fv_st_writer_add(w, "b", FV_DTYPE_F32, 9, s2, f), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "tensor 'b': 9 dims") != NULL);
	cr_expect_eq(fv_st_writer_add(w, "b", FV_DTYPE_F32, 2, s2, NULL), FV_ERR_ARG);
	cr_expect_str_eq(fv_errmsg(), "safetensors writer: tensor 'b': data is NULL");
	cr_expect_eq(fv_st_writer_add(w, "b", FV_DTYPE_F64, 2, (int64_t[]){INT64_MAX, 4}, f), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "tensor 'b' is too large") != NULL);
	cr_expect_eq(fv_st_writer_add(w, "\xff", FV_DTYPE_F32, 2, s2, f), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "tensor name '\xff' is not valid UTF-8") != NULL);
	cr_expect_eq(fv_st_writer_add(w, NULL, FV_DTYPE_F32, 2, s2, f), FV_ERR_ARG);
	cr_expect_eq(fv_st_writer_meta(w, "k", "\xc3"), FV_ERR_ARG);
	cr_expect(strstr(fv_errmsg(), "metadata value") != NULL);
	cr_expect_eq(fv_st_writer_meta(w, NULL, "v"), FV_ERR_ARG);
	cr_expect_eq(fv_st_writer_add(NULL, "z", FV_DTYPE_F32, 2, s2, f), FV_ERR_ARG);
	cr_expect_eq(fv_st_writer_save(w, NULL), FV_ERR_ARG);
	cr_expect_eq(fv_st_writer_save(NULL, "x"), FV_ERR_ARG);
	fv_st_writer_free(w);
	fv_st_writer_free(NULL);
}

Test(safetensors_write, atomic_replace_leaves_no_temp_file)
{
	scratch tmp = scratch_new("m.safetensors");
	for (int round = 0; round < 2; round++) { /* create, then replace */
		fv_st_writer *w = fv_st_writer_new();
		unsigned char v = (unsigned char)(round + 10);
		cr_assert_eq(fv_st_writer_add(w, "v", FV_DTYPE_U8, 1, (int64_t[]){1}, &v), FV_OK);
		cr_assert_eq(fv_st_writer_save(w, tmp.path), FV_OK, "%s", fv_errmsg());
		fv_st_writer_free(w);
		cr_expect_eq(count_entries(tmp.dir), 1);
		fv_safetensors *st = fv_safetensors_open(tmp.path);
		cr_assert_not_null(st);
		cr_expect_eq(*(const unsigned char *)fv_safetensors_find(st, "v")->data, v);
		fv_safetensors_close(st);
	}
	/* a new file gets 0666 less the umask, not mkstemp's 0600 */
	mode_t old = umask(022);
	unlink(tmp.path);
	fv_st_writer *w = fv_st_writer_new();
	cr_assert_eq(fv_st_writer_save(w, tmp.path), FV_OK);
	fv_st_writer_free(w);
	umask(old);
	struct stat sb;
	cr_assert_eq(stat(tmp.path, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0644);
	/* an empty writer is a valid, empty file */
	fv_safetensors *st = fv_safetensors_open(tmp.path);
	cr_assert_not_null(st, "%s", fv_errmsg());
	cr_expect_eq(fv_safetensors_count(st), 0);
	fv_safetensors_close(st);
	scratch_free(&tmp);
}

static void write_small(const char *path, unsigned char value)
{
	fv_st_writer *w = fv_st_writer_new();
	cr_assert_eq(fv_st_writer_add(w, "v", FV_DTYPE_U8, 1, (int64_t[]){1}, &value), FV_OK);
	cr_assert_eq(fv_st_writer_save(w, path), FV_OK, "%s", fv_errmsg());
	fv_st_writer_free(w);
}

static fv_st_writer *big_writer(void)
{
	static unsigned char big[1 << 16];
	fv_st_writer *w = fv_st_writer_new();
	cr_assert_eq(fv_st_writer_add(w, "big", FV_DTYPE_U8, 1, (int64_t[]){sizeof big}, big), FV_OK);
	return w;
}

Test(safetensors_write, failed_write_keeps_the_old_file)
{
	scratch tmp = scratch_new("m.safetensors");
	write_small(tmp.path, 42);
	buf before = read_all(tmp.path);
	/* the file size limit makes write(2) fail with EFBIG even for root */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit lim = {4096, 4096};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fv_st_writer *w = big_writer();
	cr_expect_eq(fv_st_writer_save(w, tmp.path), FV_ERR_IO);
	fv_st_writer_free(w);
	const char *msg = fv_errmsg();
	cr_expect(strncmp(msg, tmp.path, strlen(tmp.path)) == 0, "message does not name the path: %s",
	          msg);
	cr_expect(strstr(msg, "cannot write the temporary file") != NULL, "%s", msg);
	cr_expect(strstr(msg, strerror(EFBIG)) != NULL, "%s", msg);
	buf after = read_all(tmp.path);
	cr_expect_eq(after.len, before.len);
	cr_expect_eq(memcmp(after.p, before.p, before.len), 0);
	cr_expect_eq(count_entries(tmp.dir), 1, "the temporary file was left behind");
	free(before.p);
	free(after.p);
	scratch_free(&tmp);
}

Test(safetensors_write, failed_rename_removes_the_temp_file)
{
	scratch tmp = scratch_new("taken");
	cr_assert_eq(mkdir(tmp.path, 0755), 0);
	char inner[4200];
	snprintf(inner, sizeof inner, "%s/keep", tmp.path);
	write_small(inner, 1); /* a non-empty directory cannot be replaced */
	fv_st_writer *w = big_writer();
	cr_expect_eq(fv_st_writer_save(w, tmp.path), FV_ERR_IO);
	fv_st_writer_free(w);
	cr_expect(strncmp(fv_errmsg(), tmp.path, strlen(tmp.path)) == 0, "%s", fv_errmsg());
	cr_expect(strstr(fv_errmsg(), "cannot rename the temporary file") != NULL, "%s", fv_errmsg());
	cr_expect_eq(count_entries(tmp.dir), 1, "the temporary file was left behind");
	cr_expect_eq(count_entries(tmp.path), 1);
	scratch_free(&tmp);
}

Test(safetensors_write, missing_directory)
{
	fv_st_writer *w = big_writer();
	cr_expect_eq(fv_st_writer_save(w, "/nonexistent/dir/m.safetensors"), FV_ERR_IO);
	fv_st_writer_free(w);
	cr_expect_str_eq(fv_errmsg(), "/nonexistent/dir/m.safetensors: cannot create a temporary file "
	                              "in its directory: No such file or directory");
}

Test(safetensors_write, read_only_directory)
{
	if (geteuid() == 0)
		cr_skip_test("root ignores directory permissions (covered by the RLIMIT_FSIZE test)");
	scratch tmp = scratch_new("m.safetensors");
	write_small(tmp.path, 7);
	buf before = read_all(tmp.path);
	cr_assert_eq(chmod(tmp.dir, 0555), 0);
	fv_st_writer *w = big_writer();
	cr_expect_eq(fv_st_writer_save(w, tmp.path), FV_ERR_IO);
	fv_st_writer_free(w);
	cr_expect(strncmp(fv_errmsg(), tmp.path, strlen(tmp.path)) == 0, "%s", fv_errmsg());
	cr_expect(strstr(fv_errmsg(), strerror(EACCES)) != NULL, "%s", fv_errmsg());
	chmod(tmp.dir, 0700);
	buf after = read_all(tmp.path);
	cr_expect(after.len == before.len && memcmp(after.p, before.p, before.len) == 0);
	cr_expect_eq(count_entries(tmp.dir), 1);
	free(before.p);
	free(after.p);
	scratch_free(&tmp);
}
