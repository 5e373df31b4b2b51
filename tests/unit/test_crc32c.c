/*
 * test_crc32c.c - unit tests for src/lib/crc32c.c: the check value of
 * CRC-32C, RFC 3720's test patterns, extending over pieces, and the
 * instruction and table ways agreeing at every length and alignment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "crc32c.h"

/* The catalogue's check value and RFC 3720 B.4's 32-octet patterns. */
static void test_known_values(void **state)
{
	unsigned char buf[32];

	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(0, "", 0), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

/* Over pieces as over the whole; both ways at every length and offset. */
static void test_pieces_and_ways(void **state)
{
	unsigned char buf[300];
	uint32_t x = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 24);
	}
	for (size_t off = 0; off < 9; off++) {
		for (size_t n = 0; off + n <= sizeof(buf); n += 7) {
			uint32_t whole = crc32c(0, buf + off, n);

			assert_int_equal(whole, crc32c_sw(0, buf + off, n));
			for (size_t cut = 0; cut <= n; cut += 5)
				assert_int_equal(
					crc32c(crc32c(0, buf + off, cut), buf + off + cut, n - cut),
					whole);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_pieces_and_ways),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
