/*
 * test_util.c - unit tests for src/lib/util.c: parse_u64 (ranges, overflow,
 * junk), parse_size (k/m/g suffixes and overflow), escape_text (escaping
 * and truncation with "..."), and the bounded string helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util.h"

/* Values inside [min, max] parse, including both ends. */
static void test_parse_u64_range(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_true(parse_u64("0", 0, 10, &v));
	assert_int_equal(v, 0);
	assert_true(parse_u64("10", 0, 10, &v));
	assert_int_equal(v, 10);
	assert_true(parse_u64("6", 6, 6, &v));
	assert_int_equal(v, 6);
	assert_true(parse_u64("007", 0, 10, &v));
	assert_int_equal(v, 7);
	assert_true(parse_u64("18446744073709551615", 0, UINT64_MAX, &v));
	assert_true(v == UINT64_MAX);
}

/* Values outside [min, max] and overflow are refused; *out is untouched. */
static void test_parse_u64_out_of_range(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_false(parse_u64("11", 0, 10, &v));
	assert_false(parse_u64("5", 6, 10, &v));
	assert_false(parse_u64("18446744073709551616", 0, UINT64_MAX, &v));
	assert_false(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v));
	assert_int_equal(v, 42);
}

/* Anything but plain decimal digits is junk. */
static void test_parse_u64_junk(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.5", "1e3", "\t1", "1\n", "one",
	};
	uint64_t v = 42;

	(void)state;
	assert_false(parse_u64(NULL, 0, 10, &v));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_u64(bad[i], 0, UINT64_MAX, &v))
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(v, 42);
}

/* k, m and g (either case) multiply by powers of 1024. */
static void test_parse_size_suffixes(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0},
		{"1024", 1024},
		{"10k", 10240},
		{"10K", 10240},
		{"3m", 3u * 1024 * 1024},
		{"35M", 35u * 1024 * 1024},
		{"2g", 2ull * 1024 * 1024 * 1024},
		{"2G", 2ull * 1024 * 1024 * 1024},
		{"0k", 0},
		{"18446744073709551615", UINT64_MAX},
		{"18014398509481983k", 18014398509481983ull * 1024},
		{"17179869183g", 17179869183ull << 30},
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		if (!parse_size(good[i].s, &v))
			fail_msg("\"%s\" refused", good[i].s);
		assert_true(v == good[i].v);
	}
}

/* Bad suffixes, junk and results over 2^64-1 are refused. */
static void test_parse_size_junk(void **state)
{
	static const char *const bad[] = {
		"",
		"k",
		"10kb",
		"10t",
		"10b",
		"-1k",
		"1 k",
		" 1k",
		"1.5m",
		"m10",
		"kk",
		"1kk",
		"18014398509481984k",
		"17179869184g",
		"18446744073709551616",
	};
	uint64_t v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_size(bad[i], &v))
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(v, 42);
}

/* Printable ASCII is kept; quote, backslash, controls and 8-bit are \xNN. */
static void test_escape_text_escapes(void **state)
{
	static const char in[] = "a\"b\\c\r\n\x01\x7f\xff~ ";
	char out[128];

	(void)state;
	escape_text(in, sizeof(in) - 1, out, sizeof(out));
	assert_string_equal(out, "a\\x22b\\x5cc\\x0d\\x0a\\x01\\x7f\\xff~ ");
	escape_text("a\0b", 3, out, sizeof(out));
	assert_string_equal(out, "a\\x00b");
	escape_text("ignored", 0, out, sizeof(out));
	assert_string_equal(out, "");
	escape_text("MAIL FROM:<a@b>", 4, out, sizeof(out));
	assert_string_equal(out, "MAIL");
}

/* Text that does not fit ends in "..." and stays inside the buffer. */
/* escape_word escapes a space as well: a logged address stays one value. */
static void test_escape_word_escapes_spaces(void **state)
{
	char out[ESCAPED_WORD_MAX];

	(void)state;
	escape_word("<\"y x=1 event=queued\"@localhost>", out, sizeof(out));
	assert_string_equal(out, "<\\x22y\\x20x=1\\x20event=queued\\x22@localhost>");
	escape_word("<bob+tag@example.org>", out, sizeof(out));
	assert_string_equal(out, "<bob+tag@example.org>");
}

static void test_escape_text_truncates(void **state)
{
	char in[200], out[64];

	(void)state;
	memset(in, 'x', sizeof(in));
	for (size_t size = 4; size <= sizeof(out); size++) {
		memset(out, '#', sizeof(out));
		escape_text(in, sizeof(in), out, size);
		assert_true(strlen(out) < size);
		assert_true(strlen(out) >= 3);
		assert_string_equal(out + strlen(out) - 3, "...");
		assert_int_equal(strspn(out, "x"), strlen(out) - 3);
		if (size < sizeof(out))
			assert_int_equal(out[size], '#');
	}
	/* An escape is never cut in half. */
	memset(in, '\x01', sizeof(in));
	escape_text(in, sizeof(in), out, 10);
	assert_string_equal(out, "\\x01...");
}

/* Tiny buffers: nothing written for 0, an empty string below 4. */
static void test_escape_text_tiny(void **state)
{
	char out[8];

	(void)state;
	memset(out, '#', sizeof(out));
	escape_text("abc", 3, out, 0);
	assert_int_equal(out[0], '#');
	for (size_t size = 1; size < 4; size++) {
		memset(out, '#', sizeof(out));
		escape_text("abcdef", 6, out, size);
		assert_true(strlen(out) < size);
		assert_int_equal(out[size], '#');
	}
}

/* Text whose escaped form fits the buffer exactly is not truncated. */
static void test_escape_text_exact_fit(void **state)
{
	char in[64], out[64];

	(void)state;
	memset(in, 'a', sizeof(in));
	for (size_t n = 0; n < 40; n++) {
		escape_text(in, n, out, n + 1);
		if (strlen(out) != n || strspn(out, "a") != n)
			fail_msg("%zu octets into a %zu-byte buffer gave \"%s\"", n, n + 1, out);
	}
	escape_text("\x01", 1, out, 5);
	assert_string_equal(out, "\\x01");
}

/* strcpy_bounded copies, or truncates and says so. */
static void test_strcpy_bounded(void **state)
{
	char buf[6];

	(void)state;
	assert_true(strcpy_bounded(buf, "hello", sizeof(buf)));
	assert_string_equal(buf, "hello");
	assert_false(strcpy_bounded(buf, "hello!", sizeof(buf)));
	assert_string_equal(buf, "hello");
	assert_false(strcpy_bounded(buf, "x", 0));
	assert_true(strcpy_bounded(buf, "", 1));
	assert_string_equal(buf, "");
}

/* xsnprintf_ok reports truncation. */
static void test_xsnprintf_ok(void **state)
{
	char buf[6];

	(void)state;
	assert_true(xsnprintf_ok(buf, sizeof(buf), "%s%d", "abc", 12));
	assert_string_equal(buf, "abc12");
	assert_false(xsnprintf_ok(buf, sizeof(buf), "%s%d", "abc", 123));
}

/* has_prefix_ci ignores ASCII case; trim strips both ends. */
static void test_prefix_and_trim(void **state)
{
	char s1[] = "  \t value \r\n", s2[] = "   ", s3[] = "x";

	(void)state;
	assert_true(has_prefix_ci("FROM:<a>", "from:"));
	assert_true(has_prefix_ci("anything", ""));
	assert_false(has_prefix_ci("FRO", "from:"));
	assert_false(has_prefix_ci("TO:<a>", "from:"));
	assert_string_equal(trim(s1), "value");
	assert_string_equal(trim(s2), "");
	assert_string_equal(trim(s3), "x");
}

/* has_8bit: any octet above 127, none in ASCII or nothing. */
static void test_has_8bit(void **state)
{
	(void)state;
	assert_false(has_8bit("plain\r\n", 7));
	assert_true(has_8bit("caf\xc3\xa9", 5));
	assert_true(has_8bit("\x80", 1));
	assert_false(has_8bit("\x7f", 1));
	assert_false(has_8bit("", 0));
}

/* random_octets: fills all of the buffer, and not twice the same. */
static void test_random_octets(void **state)
{
	unsigned char a[16], b[16], zero[16] = {0};

	(void)state;
	random_octets(a, sizeof(a));
	random_octets(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has_8bit),
		cmocka_unit_test(test_random_octets),
		cmocka_unit_test(test_parse_u64_range),
		cmocka_unit_test(test_parse_u64_out_of_range),
		cmocka_unit_test(test_parse_u64_junk),
		cmocka_unit_test(test_parse_size_suffixes),
		cmocka_unit_test(test_parse_size_junk),
		cmocka_unit_test(test_escape_text_escapes),
		cmocka_unit_test(test_escape_text_truncates),
		cmocka_unit_test(test_escape_word_escapes_spaces),
		cmocka_unit_test(test_escape_text_tiny),
		cmocka_unit_test(test_escape_text_exact_fit),
		cmocka_unit_test(test_strcpy_bounded),
		cmocka_unit_test(test_xsnprintf_ok),
		cmocka_unit_test(test_prefix_and_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
