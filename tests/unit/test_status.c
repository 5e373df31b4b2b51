/*
 * test_status.c - unit tests for src/common/status.c: reply codes and
 * enhanced status codes from the one table, and status_format() wire lines
 * (last and continuation forms, 354 without an enhanced code, custom text,
 * 0 instead of a truncated line when the buffer is too small).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "status.h"

/* The default OK reply. */
static void test_format_ok(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(status_format(buf, sizeof(buf), STATUS_OK, NULL, true), 14);
	assert_string_equal(buf, "250 2.0.0 OK\r\n");
}

/* last == false gives the "250-" continuation form. */
static void test_format_continuation(void **state)
{
	char buf[128];
	size_t n;

	(void)state;
	n = status_format(buf, sizeof(buf), STATUS_OK, "hato.example", false);
	assert_string_equal(buf, "250-2.0.0 hato.example\r\n");
	assert_int_equal(n, strlen(buf));
}

/* 354 is an intermediate reply: no enhanced status code. */
static void test_format_354(void **state)
{
	char buf[128];
	size_t n;

	(void)state;
	n = status_format(buf, sizeof(buf), STATUS_START_DATA, NULL, true);
	assert_string_equal(buf, "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(n, strlen(buf));
	assert_int_equal(status_code(STATUS_START_DATA), 354);
	assert_string_equal(status_esc(STATUS_START_DATA), "");
	n = status_format(buf, sizeof(buf), STATUS_START_DATA, "Go ahead", true);
	assert_string_equal(buf, "354 Go ahead\r\n");
}

/* Custom text replaces the default text but never the codes. */
static void test_format_custom_text(void **state)
{
	char buf[128];

	(void)state;
	status_format(buf, sizeof(buf), STATUS_QUEUED, "OK queued as 0006A1B2C3D4E5F60001", true);
	assert_string_equal(buf, "250 2.0.0 OK queued as 0006A1B2C3D4E5F60001\r\n");
	status_format(buf, sizeof(buf), STATUS_RELAY_DENIED, "Relay access denied for you", true);
	assert_string_equal(buf, "554 5.7.1 Relay access denied for you\r\n");
	status_format(buf, sizeof(buf), STATUS_BAD_SEQUENCE, "", true);
	assert_string_equal(buf, "503 5.5.1 \r\n");
}

/* A buffer one byte too small gives 0, not a truncated line. */
static void test_format_too_small(void **state)
{
	char buf[32];
	size_t need = strlen("250 2.0.0 OK\r\n");

	(void)state;
	assert_int_equal(status_format(buf, need + 1, STATUS_OK, NULL, true), need);
	assert_string_equal(buf, "250 2.0.0 OK\r\n");
	assert_int_equal(status_format(buf, need, STATUS_OK, NULL, true), 0);
	assert_int_equal(status_format(buf, 1, STATUS_OK, NULL, true), 0);
	assert_int_equal(status_format(buf, 0, STATUS_OK, NULL, true), 0);
	assert_int_equal(status_format(buf, 5, STATUS_START_DATA, NULL, true), 0);
}

/* Codes and enhanced codes of some replies are what RFC 5321/3463 say. */
static void test_codes(void **state)
{
	static const struct {
		enum status st;
		int code;
		const char *esc;
	} want[] = {
		{STATUS_OK, 250, "2.0.0"},           {STATUS_RCPT_OK, 250, "2.1.5"},
		{STATUS_BYE, 221, "2.0.0"},          {STATUS_SHUTDOWN, 421, "4.3.2"},
		{STATUS_DISK_FULL, 452, "4.3.1"},    {STATUS_UNKNOWN_CMD, 500, "5.5.1"},
		{STATUS_BAD_SEQUENCE, 503, "5.5.1"}, {STATUS_TOO_BIG, 552, "5.3.4"},
		{STATUS_NON_ASCII, 553, "5.6.7"},    {STATUS_RELAY_DENIED, 554, "5.7.1"},
		{STATUS_LOOP, 554, "5.4.6"},         {STATUS_UNKNOWN_PARAM, 555, "5.5.4"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(status_code(want[i].st), want[i].code);
		assert_string_equal(status_esc(want[i].st), want[i].esc);
	}
}

/* Every status formats to "CODE SP [ESC SP] TEXT CRLF" consistent with its table row. */
static void test_every_status_well_formed(void **state)
{
	char buf[512], cont[512], prefix[32];

	(void)state;
	for (int st = 0; st < STATUS_COUNT; st++) {
		int code = status_code((enum status)st);
		const char *esc = status_esc((enum status)st);
		size_t n = status_format(buf, sizeof(buf), (enum status)st, NULL, true);

		assert_true(code >= 200 && code <= 599);
		assert_true(n >= 6); /* "334 \r\n": an empty SASL challenge */
		assert_int_equal(n, strlen(buf));
		assert_memory_equal(buf + n - 2, "\r\n", 2);
		assert_null(memchr(buf, '\r', n - 2));
		assert_null(memchr(buf, '\n', n - 2));
		if (*esc) {
			/* The enhanced code's class matches the reply's first digit. */
			assert_int_equal(esc[0] - '0', code / 100);
			snprintf(prefix, sizeof(prefix), "%d %s ", code, esc);
		} else {
			snprintf(prefix, sizeof(prefix), "%d ", code);
		}
		if (strncmp(buf, prefix, strlen(prefix)) != 0)
			fail_msg("status %d: \"%s\" does not start with \"%s\"", st, buf, prefix);
		/* The continuation form differs only in the fourth byte. */
		assert_int_equal(status_format(cont, sizeof(cont), (enum status)st, NULL, false),
				 n);
		assert_int_equal(cont[3], '-');
		cont[3] = ' ';
		assert_string_equal(cont, buf);
	}
}

/* Every status has its own name, a Prometheus label value: [a-z0-9_]+. */
static void test_every_status_named(void **state)
{
	(void)state;
	assert_string_equal(status_name(STATUS_RELAY_DENIED), "relay_denied");
	assert_string_equal(status_name(STATUS_USER_UNKNOWN), "user_unknown");
	assert_string_equal(status_name(STATUS_COUNT), "unnamed");
	for (int st = 0; st < STATUS_COUNT; st++) {
		const char *n = status_name((enum status)st);

		if (strcmp(n, "unnamed") == 0)
			fail_msg("status %d has no name in status.c's status_names", st);
		assert_int_equal(strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(n));
		for (int other = 0; other < st; other++)
			assert_string_not_equal(n, status_name((enum status)other));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_ok),
		cmocka_unit_test(test_format_continuation),
		cmocka_unit_test(test_format_354),
		cmocka_unit_test(test_format_custom_text),
		cmocka_unit_test(test_format_too_small),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_every_status_well_formed),
		cmocka_unit_test(test_every_status_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
