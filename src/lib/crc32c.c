/*
 * crc32c.c - CRC-32C, reflected polynomial 0x82F63B78: the SSE4.2 crc32
 * instruction where the CPU has it, else a table of 256 entries built at
 * the first call.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* Fill the byte-at-a-time table. */
static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[i] = c;
	}
}

/* See crc32c.h: the table's way, a byte at a time. */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t c = ~crc;

	pthread_once(&table_once, table_init);
	while (n--)
		c = table[(c ^ *s++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
/* The SSE4.2 way, eight bytes at a time. */
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *s,
							    size_t n)
{
	uint64_t c64 = c;

	for (; n >= 8; n -= 8, s += 8) {
		uint64_t v;
		memcpy(&v, s, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	for (; n > 0; n--)
		c = __builtin_ia32_crc32qi(c, *s++);
	return c;
}
#endif

/* See crc32c.h. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_sse42(~crc, p, n);
#endif
	return crc32c_sw(crc, p, n);
}
