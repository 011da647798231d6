/*
** tfrecord.c: TensorFlow's record framing (record_writer.cc), the layout
** of every TensorBoard event file.
**
** The CRC is CRC-32C, which Debian packages no library for (zlib's crc32
** is the other polynomial), so its table is built here, once.
*/
#include <errno.h>
#include <string.h>

#include "io/tfrecord.h"

static uint32_t crc_table[256];

static void build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t fv__crc32c(const void *data, size_t n)
{
	if (crc_table[1] == 0) /* idempotent: racing threads write the same values */
		build_table();
	const unsigned char *p = data;
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

uint32_t fv__crc32c_mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

static void put_le(unsigned char *out, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		out[i] = (unsigned char)(v >> (8 * i));
}

fv_status fv__tfrecord_write(FILE *f, const void *data, size_t n, const char *path)
{
	unsigned char head[12], tail[4];
	put_le(head, (uint64_t)n, 8);
	put_le(head + 8, fv__crc32c_mask(fv__crc32c(head, 8)), 4);
	put_le(tail, fv__crc32c_mask(fv__crc32c(data, n)), 4);
	if (fwrite(head, 1, sizeof head, f) != sizeof head || fwrite(data, 1, n, f) != n ||
	    fwrite(tail, 1, sizeof tail, f) != sizeof tail)
		return fv_error(FV_ERR_IO, "%s: cannot write an event: %s", path, strerror(errno));
	return FV_OK;
}
