/*
 * test_sql_query.c - unit tests for src/lookup/sql_query.c: placeholders
 * become positional parameters in each backend's style, numbered by first
 * use; %% stays a percent sign; quoting is understood, and placeholders
 * inside quotes, parameters written by hand, unknown placeholders and
 * unclosed quotes are refused with a message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sql_query.h"

/* Compile in and expect out with the given parameters. */
static void compiles(const char *in, enum sql_style style, const char *out, size_t n,
		     const enum sql_param *params)
{
	struct sql_query q;
	char err[256] = "";

	assert_true(sql_query_compile(in, style, &q, err, sizeof(err)));
	assert_string_equal(q.text, out);
	assert_int_equal(q.nparams, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(q.params[i], params[i]);
	sql_query_free(&q);
}

/* Compile in and expect a refusal whose message holds want. */
static void refused(const char *in, const char *want)
{
	struct sql_query q = {0};
	char err[256] = "";

	assert_false(sql_query_compile(in, SQL_STYLE_DOLLAR, &q, err, sizeof(err)));
	assert_non_null(strstr(err, want));
	assert_null(q.text);
}

static void test_placeholders(void **state)
{
	const enum sql_param su[] = {SQL_PARAM_ADDRESS, SQL_PARAM_LOCAL};
	const enum sql_param dus[] = {SQL_PARAM_DOMAIN, SQL_PARAM_LOCAL, SQL_PARAM_ADDRESS};

	(void)state;
	compiles("SELECT goto FROM alias WHERE address = %s AND active", SQL_STYLE_DOLLAR,
		 "SELECT goto FROM alias WHERE address = $1 AND active", 1, su);
	compiles("SELECT 1 WHERE a = %s OR b = %u OR c = %s", SQL_STYLE_QUESTION,
		 "SELECT 1 WHERE a = ?1 OR b = ?2 OR c = ?1", 2, su);
	compiles("SELECT 1 FROM t WHERE d = %d AND l = %u AND a = %s", SQL_STYLE_DOLLAR,
		 "SELECT 1 FROM t WHERE d = $1 AND l = $2 AND a = $3", 3, dus);
	compiles("SELECT 1", SQL_STYLE_DOLLAR, "SELECT 1", 0, NULL);
}

static void test_quotes_and_percent(void **state)
{
	const enum sql_param s[] = {SQL_PARAM_ADDRESS};

	(void)state;
	/* quoted text is passed as it is, placeholder-like text that is not one too */
	compiles("SELECT 'it''s 50%' FROM \"my table\" WHERE x LIKE '%x' AND a = %s",
		 SQL_STYLE_DOLLAR,
		 "SELECT 'it''s 50%' FROM \"my table\" WHERE x LIKE '%x' AND a = $1", 1, s);
	compiles("SELECT 100 %% 7 WHERE a = %s", SQL_STYLE_QUESTION, "SELECT 100 % 7 WHERE a = ?1",
		 1, s);
	compiles("SELECT '?' WHERE a = %s", SQL_STYLE_QUESTION, "SELECT '?' WHERE a = ?1", 1, s);
}

static void test_refusals(void **state)
{
	char big[SQL_QUERY_MAX + 2];

	(void)state;
	refused("SELECT 1 FROM mailbox WHERE username = '%s'", "inside quotes");
	refused("SELECT 1 FROM \"%u\"", "inside quotes");
	refused("SELECT 1 WHERE a = ?", "not \"?\"");
	refused("SELECT 1 WHERE a = $1", "not \"$\"");
	refused("SELECT 1 WHERE a = %x", "unknown placeholder \"%x\"");
	refused("SELECT 1 WHERE a = %", "unknown placeholder");
	refused("SELECT 'unclosed", "unclosed ' quote");
	refused("", "1 to");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	refused(big, "1 to");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_quotes_and_percent),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
