/*
** test_tfrecord.c: CRC-32C against its published check values, and the
** framing of one record byte for byte.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "io/tfrecord.h"

Test(tfrecord, crc32c_check_values)
{
	/* the standard check value of CRC-32C (RFC 3720, appendix B.4 lists
	** the same polynomial), and the iSCSI test vectors of 32 zero and 32
	** 0xFF bytes */
	cr_assert_eq(fv__crc32c("123456789", 9), 0xE3069283u);
	unsigned char zeros[32] = {0}, ones[32];
	memset(ones, 0xFF, sizeof ones);
	cr_assert_eq(fv__crc32c(zeros, sizeof zeros), 0x8A9136AAu);
	cr_assert_eq(fv__crc32c(ones, sizeof ones), 0x62A8AB43u);
	cr_assert_eq(fv__crc32c("", 0), 0u);
}

Test(tfrecord, mask_is_tensorflows)
{
	/* ((crc >> 15) | (crc << 17)) + 0xa282ead8, computed by hand for 1 */
	cr_assert_eq(fv__crc32c_mask(1u), 0x00020000u + 0xA282EAD8u);
	cr_assert_eq(fv__crc32c_mask(0u), 0xA282EAD8u);
}

Test(tfrecord, record_layout)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	cr_assert_eq(fv__tfrecord_write(f, "abc", 3, "memory"), FV_OK);
	fclose(f);
	cr_assert_eq(len, 8 + 4 + 3 + 4);
	const unsigned char *p = (const unsigned char *)buf;
	for (int i = 0; i < 8; i++)
		cr_assert_eq(p[i], i == 0 ? 3 : 0, "length byte %d", i);
	uint32_t head = p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24;
	cr_assert_eq(head, fv__crc32c_mask(fv__crc32c(p, 8)));
	cr_assert_eq(memcmp(p + 12, "abc", 3), 0);
	uint32_t tail = p[15] | p[16] << 8 | p[17] << 16 | (uint32_t)p[18] << 24;
	/* CRC-32C("abc") is 0x364B3FB7 */
	cr_assert_eq(tail, fv__crc32c_mask(0x364B3FB7u));
	free(buf);
}
