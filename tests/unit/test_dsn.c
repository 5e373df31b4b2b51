/*
 * test_dsn.c - unit tests for src/common/dsn.c: xtext decoding, and every
 * valid and invalid form of the DSN parameters RET, ENVID, NOTIFY and
 * ORCPT (RFC 3461 §4, RFC 6533 for utf-8 ORCPT), with the NOTIFY text the
 * envelope file keeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dsn.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* xtext: "+XX" escapes (either case of hex), xchars as they are. */
static void test_xtext_decode_valid(void **state)
{
	char out[64];
	size_t n = 0;

	(void)state;
	assert_true(dsn_xtext_decode("abc+2Bdef", out, sizeof(out), &n));
	assert_string_equal(out, "abc+def");
	assert_int_equal(n, 7);
	assert_true(dsn_xtext_decode("+3D+20x", out, sizeof(out), NULL));
	assert_string_equal(out, "= x");
	assert_true(dsn_xtext_decode("+2b", out, sizeof(out), NULL));
	assert_string_equal(out, "+");
	assert_true(dsn_xtext_decode("bob@example.org", out, sizeof(out), &n));
	assert_string_equal(out, "bob@example.org");
	assert_true(dsn_xtext_decode("+C3+A9", out, sizeof(out), &n));
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xc3\xa9", 2);
	/* exactly fits: 3 octets and the NUL */
	assert_true(dsn_xtext_decode("a+2Bb", out, 4, NULL));
	assert_string_equal(out, "a+b");
}

/* Bad escapes, raw "=", space, control and 8-bit octets, "+00", empty,
 * and a result that does not fit are refused. */
static void test_xtext_decode_invalid(void **state)
{
	static const char *const bad[] = {
		"",    "+",   "+2",   "+ZZ",         "a+G0", "+2G",
		"a=b", "a b", "a\tb", "caf\xc3\xa9", "+00x", "\x7f",
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < N(bad); i++)
		if (dsn_xtext_decode(bad[i], out, sizeof(out), NULL))
			fail_msg("\"%s\" decoded", bad[i]);
	assert_false(dsn_xtext_decode("abcd", out, 4, NULL));
	assert_false(dsn_xtext_decode("a", out, 0, NULL));
}

/* RET: FULL or HDRS in any case; anything else is refused. */
static void test_ret(void **state)
{
	static const char *const bad[] = {"",      "BOTH",  "FULLX",    "HDR",
					  "full ", "NEVER", "HDRS,FULL"};
	enum dsn_ret r = DSN_RET_UNSPEC;

	(void)state;
	assert_true(dsn_parse_ret("FULL", &r));
	assert_int_equal(r, DSN_RET_FULL);
	assert_true(dsn_parse_ret("hdrs", &r));
	assert_int_equal(r, DSN_RET_HDRS);
	assert_true(dsn_parse_ret("Full", &r));
	assert_int_equal(r, DSN_RET_FULL);
	for (size_t i = 0; i < N(bad); i++) {
		r = DSN_RET_UNSPEC;
		if (dsn_parse_ret(bad[i], &r))
			fail_msg("RET=%s accepted", bad[i]);
		assert_int_equal(r, DSN_RET_UNSPEC);
	}
	assert_string_equal(dsn_ret_name(DSN_RET_FULL), "full");
	assert_string_equal(dsn_ret_name(DSN_RET_HDRS), "hdrs");
	assert_null(dsn_ret_name(DSN_RET_UNSPEC));
}

/* ENVID: xtext of printable ASCII, at most 100 octets as sent. */
static void test_envid(void **state)
{
	static const char *const bad[] = {
		"",    "+ZZ",    "abc+", "a=b", "a b",         "+0A",
		"+7F", "+C3+A9", "+00",  "x+1", "caf\xc3\xa9",
	};
	char longest[DSN_ENVID_MAX + 2];

	(void)state;
	assert_true(dsn_valid_envid("abc+2Bdef"));
	assert_true(dsn_valid_envid("QQ314159@host.example"));
	assert_true(dsn_valid_envid("with+20space"));
	assert_true(dsn_valid_envid("+7E"));
	for (size_t i = 0; i < N(bad); i++)
		if (dsn_valid_envid(bad[i]))
			fail_msg("ENVID=%s accepted", bad[i]);
	memset(longest, 'x', DSN_ENVID_MAX);
	longest[DSN_ENVID_MAX] = '\0';
	assert_true(dsn_valid_envid(longest));
	longest[DSN_ENVID_MAX] = 'x';
	longest[DSN_ENVID_MAX + 1] = '\0';
	assert_false(dsn_valid_envid(longest)); /* 101 */
	/* the limit is on what was sent: 34 escapes are 102 octets for 34 */
	char escaped[3 * 34 + 1] = "";
	for (int i = 0; i < 34; i++)
		strcat(escaped, "+2B");
	assert_false(dsn_valid_envid(escaped));
	escaped[3 * 33] = '\0';
	assert_true(dsn_valid_envid(escaped));
}

/* NOTIFY: NEVER alone, or SUCCESS, FAILURE, DELAY each at most once. */
static void test_notify_valid(void **state)
{
	static const struct {
		const char *in;
		unsigned bits;
		const char *text;
	} ok[] = {
		{"NEVER", DSN_NOTIFY_NEVER, "never"},
		{"never", DSN_NOTIFY_NEVER, "never"},
		{"success", DSN_NOTIFY_SUCCESS, "success"},
		{"SUCCESS,FAILURE", DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, "success,failure"},
		{"Delay,Success", DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, "success,delay"},
		{"FAILURE,DELAY,SUCCESS",
		 DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
		 "success,failure,delay"},
		{"DELAY", DSN_NOTIFY_DELAY, "delay"},
	};
	char text[DSN_NOTIFY_TEXT_MAX];

	(void)state;
	for (size_t i = 0; i < N(ok); i++) {
		unsigned bits = 0;

		if (!dsn_parse_notify(ok[i].in, &bits))
			fail_msg("NOTIFY=%s refused", ok[i].in);
		assert_int_equal(bits, ok[i].bits);
		assert_true(dsn_format_notify(bits, text, sizeof(text)));
		assert_string_equal(text, ok[i].text);
		/* what the envelope file keeps parses back to the same */
		bits = 0;
		assert_true(dsn_parse_notify(text, &bits));
		assert_int_equal(bits, ok[i].bits);
	}
}

/* NEVER with another word, repeats, unknown words and empty items fail. */
static void test_notify_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"NEVER,SUCCESS",
		"SUCCESS,NEVER",
		"NEVER,NEVER",
		"SUCCESS,SUCCESS",
		"FAILURE,DELAY,FAILURE",
		"ALWAYS",
		"SUCCESS,",
		",SUCCESS",
		"SUCCESS,,FAILURE",
		"SUCCESS FAILURE",
		"SUCCESSFAILURE",
		"SUCC",
		"SUCCESS;FAILURE",
	};

	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		unsigned bits = 12345;

		if (dsn_parse_notify(bad[i], &bits))
			fail_msg("NOTIFY=%s accepted", bad[i]);
		assert_int_equal(bits, 12345);
	}
}

/* dsn_format_notify refuses what cannot be written. */
static void test_notify_format_invalid(void **state)
{
	char text[DSN_NOTIFY_TEXT_MAX];

	(void)state;
	assert_false(dsn_format_notify(0, text, sizeof(text)));
	assert_false(dsn_format_notify(DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY, text, sizeof(text)));
	assert_false(dsn_format_notify(1u << 4, text, sizeof(text)));
	assert_false(dsn_format_notify(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, text, 15));
	assert_true(dsn_format_notify(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, text, 16));
	assert_string_equal(text, "success,failure");
}

/* ORCPT: rfc822 and utf-8, any case, the type lower-cased in the result. */
static void test_orcpt_valid(void **state)
{
	static const struct {
		const char *in;
		bool utf8;
		const char *out;
	} ok[] = {
		{"rfc822;bob@example.org", false, "rfc822;bob@example.org"},
		{"RFC822;bob@example.org", false, "rfc822;bob@example.org"},
		{"Rfc822;a+2Bb@example.org", false, "rfc822;a+2Bb@example.org"},
		{"rfc822;+22john+20smith+22@example.org", false,
		 "rfc822;+22john+20smith+22@example.org"},
		{"rfc822;a;b", false, "rfc822;a;b"},
		{"UTF-8;bob@example.org", false, "utf-8;bob@example.org"},
		{"utf-8;j\\x{F6}rg@example.org", false, "utf-8;j\\x{F6}rg@example.org"},
		{"utf-8;\\x{10FFFF}\\x{20}\\x{2B}@x", false, "utf-8;\\x{10FFFF}\\x{20}\\x{2B}@x"},
		{"utf-8;j\xc3\xb6rg@example.org", true, "utf-8;j\xc3\xb6rg@example.org"},
		{"utf-8;back\\slash@x", false, "utf-8;back\\slash@x"},
	};
	char out[DSN_ORCPT_MAX + 1];

	(void)state;
	for (size_t i = 0; i < N(ok); i++) {
		if (!dsn_parse_orcpt(ok[i].in, ok[i].utf8, out, sizeof(out)))
			fail_msg("ORCPT=%s refused", ok[i].in);
		assert_string_equal(out, ok[i].out);
	}
}

/* No ";", unknown or empty types, bad xtext, controls, 8-bit without
 * SMTPUTF8 and bad \x{} escapes are refused. */
static void test_orcpt_invalid(void **state)
{
	static const char *const bad[] = {
		"bob@example.org",
		";bob@example.org",
		"rfc822;",
		"rfc822",
		"x400;bob@example.org",
		"rfc8222;bob@example.org",
		"utf8;bob@example.org",
		"rfc822;+ZZ@example.org",
		"rfc822;bob+@example.org",
		"rfc822;bob=x@example.org",
		"rfc822;+0D+0A@example.org",
		"rfc822;+00@example.org",
		"rfc822;+C3+B6@example.org",
		"rfc822;j\xc3\xb6rg@example.org",
		"utf-8;j\xc3\xb6rg@example.org", /* 8-bit only with SMTPUTF8 */
		"utf-8;a+2Bb@example.org",
		"utf-8;a=b@example.org",
		"utf-8;\\x{}@x",
		"utf-8;\\x{F6@x",
		"utf-8;\\x{0A}@x",
		"utf-8;\\x{7F}@x",
		"utf-8;\\x{D800}@x",
		"utf-8;\\x{110000}@x",
		"utf-8;\\x{0000041}@x",
		"utf-8;\\x{ZZ}@x",
		"utf-8;",
	};
	char out[DSN_ORCPT_MAX + 1];

	(void)state;
	for (size_t i = 0; i < N(bad); i++)
		if (dsn_parse_orcpt(bad[i], false, out, sizeof(out)))
			fail_msg("ORCPT=%s accepted", bad[i]);
	/* malformed UTF-8 is refused even with SMTPUTF8 */
	assert_false(dsn_parse_orcpt("utf-8;\xc3@x", true, out, sizeof(out)));
	assert_false(dsn_parse_orcpt("utf-8;\xed\xa0\x80@x", true, out, sizeof(out)));
	assert_false(dsn_parse_orcpt("rfc822;j\xc3\xb6rg@x", true, out, sizeof(out)));
}

/* ORCPT: at most 500 octets, addr-type included; out must hold it. */
static void test_orcpt_length(void **state)
{
	char in[DSN_ORCPT_MAX + 2], out[DSN_ORCPT_MAX + 1];

	(void)state;
	memcpy(in, "rfc822;", 7);
	memset(in + 7, 'a', DSN_ORCPT_MAX - 7);
	in[DSN_ORCPT_MAX] = '\0';
	assert_true(dsn_parse_orcpt(in, false, out, sizeof(out)));
	assert_string_equal(out, in);
	assert_false(dsn_parse_orcpt(in, false, out, DSN_ORCPT_MAX)); /* no room for the NUL */
	in[DSN_ORCPT_MAX] = 'a';
	in[DSN_ORCPT_MAX + 1] = '\0';
	assert_false(dsn_parse_orcpt(in, false, out, sizeof(out)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_decode_valid),
		cmocka_unit_test(test_xtext_decode_invalid),
		cmocka_unit_test(test_ret),
		cmocka_unit_test(test_envid),
		cmocka_unit_test(test_notify_valid),
		cmocka_unit_test(test_notify_invalid),
		cmocka_unit_test(test_notify_format_invalid),
		cmocka_unit_test(test_orcpt_valid),
		cmocka_unit_test(test_orcpt_invalid),
		cmocka_unit_test(test_orcpt_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
