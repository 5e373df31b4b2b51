/*
 * test_cmdline.c - unit tests for src/common/cmdline.c: splitting a command
 * line into upper-cased verb and argument (cmdline_split) and parsing ESMTP
 * "KEY[=VALUE]" parameters in place (esmtp_parse_params).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cmdline.h"

/* Split a copy of line; returns the cmdline_split result. */
static bool split(const char *line, char *copy, size_t size, struct cmdline *cmd)
{
	assert_true(strlen(line) < size);
	strcpy(copy, line);
	memset(cmd, 0x55, sizeof(*cmd));
	return cmdline_split(copy, cmd);
}

/* Parse a copy of s into params; returns the esmtp_parse_params result. */
static enum param_error params(const char *s, char *copy, size_t size, struct esmtp_param *p,
			       size_t max, size_t *n)
{
	assert_true(strlen(s) < size);
	strcpy(copy, s);
	*n = 999;
	return esmtp_parse_params(copy, p, max, n);
}

/* The verb is upper-cased; the argument follows the single space. */
static void test_split_verb_and_arg(void **state)
{
	char buf[128];
	struct cmdline cmd;

	(void)state;
	assert_true(split("mail FROM:<a@example.org> SIZE=10", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "MAIL");
	assert_string_equal(cmd.arg, "FROM:<a@example.org> SIZE=10");
	assert_ptr_equal(cmd.arg, buf + 5);
	assert_true(split("EhLo client.example", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "EHLO");
	assert_string_equal(cmd.arg, "client.example");
}

/* A verb alone has an empty argument; an empty line an empty verb. */
static void test_split_no_arg(void **state)
{
	char buf[64];
	struct cmdline cmd;

	(void)state;
	assert_true(split("quit", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "QUIT");
	assert_string_equal(cmd.arg, "");
	assert_true(split("", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "");
	assert_string_equal(cmd.arg, "");
	assert_true(split("NOOP ", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "NOOP");
	assert_string_equal(cmd.arg, "");
}

/* Only one space is eaten: the rest belongs to the argument. */
static void test_split_extra_spaces(void **state)
{
	char buf[64];
	struct cmdline cmd;

	(void)state;
	assert_true(split("HELO  two", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "HELO");
	assert_string_equal(cmd.arg, " two");
	assert_true(split(" leading", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "");
	assert_string_equal(cmd.arg, "leading");
}

/* Verbs of 15 letters fit; 16 letters, digits or punctuation do not. */
static void test_split_bad_verbs(void **state)
{
	static const char *const bad[] = {
		"ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOPQRSTUVWXYZ x",
		"MAIL:FROM",        "X1 a",
		"GET/ HTTP/1.1",    "QU\tIT",
		"DATA\r",           "\xc3\xa9HLO",
	};
	char buf[64];
	struct cmdline cmd;

	(void)state;
	assert_true(split("ABCDEFGHIJKLMNO arg", buf, sizeof(buf), &cmd));
	assert_string_equal(cmd.verb, "ABCDEFGHIJKLMNO");
	assert_string_equal(cmd.arg, "arg");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (split(bad[i], buf, sizeof(buf), &cmd))
			fail_msg("\"%s\" accepted", bad[i]);
}

/* Keys and values are split in place; a key without '=' has value NULL. */
static void test_params_basic(void **state)
{
	char buf[128];
	struct esmtp_param p[ESMTP_PARAMS_MAX];
	size_t n;

	(void)state;
	assert_int_equal(params(" SIZE=1000 BODY=8BITMIME SMTPUTF8", buf, sizeof(buf), p,
				ESMTP_PARAMS_MAX, &n),
			 PARAM_OK);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].key, "SIZE");
	assert_string_equal(p[0].value, "1000");
	assert_string_equal(p[1].key, "BODY");
	assert_string_equal(p[1].value, "8BITMIME");
	assert_string_equal(p[2].key, "SMTPUTF8");
	assert_null(p[2].value);
	/* Pointers are into the caller's buffer. */
	assert_ptr_equal(p[0].key, buf + 1);
}

/* No parameters at all, or only spaces, is n == 0. */
static void test_params_empty(void **state)
{
	char buf[16];
	struct esmtp_param p[4];
	size_t n;

	(void)state;
	assert_int_equal(params("", buf, sizeof(buf), p, 4, &n), PARAM_OK);
	assert_int_equal(n, 0);
	assert_int_equal(params("    ", buf, sizeof(buf), p, 4, &n), PARAM_OK);
	assert_int_equal(n, 0);
}

/* Several spaces between and after parameters are fine. */
static void test_params_spacing(void **state)
{
	char buf[64];
	struct esmtp_param p[4];
	size_t n;

	(void)state;
	assert_int_equal(params("A=1   B-2   ", buf, sizeof(buf), p, 4, &n), PARAM_OK);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].key, "A");
	assert_string_equal(p[0].value, "1");
	assert_string_equal(p[1].key, "B-2");
	assert_null(p[1].value);
}

/* Values may hold any printable octet but '=', and UTF-8 (RFC 6531). */
static void test_params_values(void **state)
{
	char buf[64];
	struct esmtp_param p[4];
	size_t n;

	(void)state;
	assert_int_equal(params("ENVID=a+2Bb<>!~ AUTH=<>", buf, sizeof(buf), p, 4, &n), PARAM_OK);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].value, "a+2Bb<>!~");
	assert_string_equal(p[1].value, "<>");
	assert_int_equal(params("X=j\xc3\xb6rg", buf, sizeof(buf), p, 4, &n), PARAM_OK);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].value, "j\xc3\xb6rg");
}

/* Malformed keywords and values are PARAM_ERR_SYNTAX. */
static void test_params_syntax_errors(void **state)
{
	static const char *const bad[] = {
		"=1",   "-A=1",      "SIZE=",  "SIZE==1", "SIZE=1=2", "SI_ZE=1", "SIZE=a\tb",
		"A\tB", "SIZE=\x7f", "A=\x01", "A.B",     "A B=",     "=",       "\xc3\xa9=1",
	};
	char buf[64];
	struct esmtp_param p[4];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (params(bad[i], buf, sizeof(buf), p, 4, &n) != PARAM_ERR_SYNTAX)
			fail_msg("\"%s\" not a syntax error", bad[i]);
}

/* max parameters are fine; one more is PARAM_ERR_TOO_MANY. */
static void test_params_too_many(void **state)
{
	char buf[256], line[256] = "";
	struct esmtp_param p[ESMTP_PARAMS_MAX + 1];
	size_t n;

	(void)state;
	for (int i = 0; i < ESMTP_PARAMS_MAX; i++) {
		char one[16];
		snprintf(one, sizeof(one), " K%d=%d", i, i);
		strcat(line, one);
	}
	assert_int_equal(params(line, buf, sizeof(buf), p, ESMTP_PARAMS_MAX, &n), PARAM_OK);
	assert_int_equal(n, ESMTP_PARAMS_MAX);
	assert_string_equal(p[ESMTP_PARAMS_MAX - 1].key, "K15");
	assert_string_equal(p[ESMTP_PARAMS_MAX - 1].value, "15");
	strcat(line, " ONEMORE");
	assert_int_equal(params(line, buf, sizeof(buf), p, ESMTP_PARAMS_MAX, &n),
			 PARAM_ERR_TOO_MANY);
	assert_int_equal(params("A B", buf, sizeof(buf), p, 0, &n), PARAM_ERR_TOO_MANY);
	assert_int_equal(params("", buf, sizeof(buf), p, 0, &n), PARAM_OK);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_verb_and_arg),   cmocka_unit_test(test_split_no_arg),
		cmocka_unit_test(test_split_extra_spaces),   cmocka_unit_test(test_split_bad_verbs),
		cmocka_unit_test(test_params_basic),         cmocka_unit_test(test_params_empty),
		cmocka_unit_test(test_params_spacing),       cmocka_unit_test(test_params_values),
		cmocka_unit_test(test_params_syntax_errors), cmocka_unit_test(test_params_too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
