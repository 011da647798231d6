/*
** tfrecord.h: TensorFlow's record framing, the container of TensorBoard's
** event files (tfrecord.c).
*/
#ifndef FOVEA_TFRECORD_H
#define FOVEA_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fovea/fovea.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow's
** crc32c::Value computes it. */
uint32_t fv__crc32c(const void *data, size_t n);
/* TensorFlow's crc32c::Mask: rotate right by 15 and add a constant, so that
** a CRC stored inside data that is itself CRC'd does not cancel out. */
uint32_t fv__crc32c_mask(uint32_t crc);
/* Append one record to f: the length (uint64 little-endian), the masked
** CRC of those 8 bytes, the data, the masked CRC of the data.  `path`
** names the file in messages. */
fv_status fv__tfrecord_write(FILE *f, const void *data, size_t n, const char *path);

#endif /* FOVEA_TFRECORD_H */
