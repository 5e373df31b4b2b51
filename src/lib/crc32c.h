/*
 * crc32c.h - CRC-32C (Castagnoli, RFC 3720 appendix B.4), the checksum in
 * the queue file's trailer.
 */
#ifndef HATO_CRC32C_H
#define HATO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over p[0..n). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

/* The same without the CPU's instruction (what crc32c falls back to). */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
