/*
 * test_log_json.c - unit tests for src/lib/log_json.c: key=value lines as
 * JSON objects (pairs, quoted values, \xHH decoding, JSON escapes, UTF-8
 * checks, repeated keys, free text, and cutting a line that does not fit).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "log_json.h"
#include "util.h"

/* The JSON of msg at level info, without a time, into a static buffer. */
static const char *json_of(const char *msg, const char *err)
{
	static char out[LOG_JSON_MAX];
	size_t n = log_json_line(NULL, "info", msg, strlen(msg), err, out, sizeof(out));

	assert_int_equal(n, strlen(out));
	return out;
}

/* Plain and quoted pairs keep their order; the time comes first when given. */
static void test_pairs(void **state)
{
	char out[256];
	const char *msg = "event=queued session=ab12 note=\"two words\" size=42";

	(void)state;
	assert_string_equal(json_of(msg, NULL),
			    "{\"level\":\"info\",\"event\":\"queued\",\"session\":\"ab12\","
			    "\"note\":\"two words\",\"size\":\"42\"}\n");
	log_json_line("2024-01-02T03:04:05.678Z", "warning", "event=x", 7,
		      "No space left on device", out, sizeof(out));
	assert_string_equal(out, "{\"time\":\"2024-01-02T03:04:05.678Z\",\"level\":\"warning\","
				 "\"event\":\"x\",\"error\":\"No space left on device\"}\n");
}

/* \xHH from escape_text comes back as its byte, written as JSON wants it. */
static void test_escapes_decoded(void **state)
{
	const char peer[] = "a\"b\\c\x01\n\t\x7f\r";
	char esc[128], msg[256];

	(void)state;
	escape_text(peer, sizeof(peer) - 1, esc, sizeof(esc));
	snprintf(msg, sizeof(msg), "event=ehlo helo=\"%s\"", esc);
	assert_string_equal(json_of(msg, NULL),
			    "{\"level\":\"info\",\"event\":\"ehlo\","
			    "\"helo\":\"a\\\"b\\\\c\\u0001\\n\\t\\u007f\\r\"}\n");
	/* a backslash that starts no \xHH stays one */
	assert_string_equal(json_of("path=C:\\x1 q=\\xZZ", NULL),
			    "{\"level\":\"info\",\"path\":\"C:\\\\x1\",\"q\":\"\\\\xZZ\"}\n");
}

/* Valid UTF-8 stays as it is, escaped or raw; every other byte is U+FFFD. */
static void test_utf8(void **state)
{
	char esc[128], msg[256];
	const char good[] = "j\xc3\xb6rg\xe2\x82\xac\xf0\x9f\x93\xa7";

	(void)state;
	escape_word(good, esc, sizeof(esc));
	snprintf(msg, sizeof(msg), "from=%s", esc);
	assert_string_equal(json_of(msg, NULL), "{\"level\":\"info\",\"from\":\"" /* */
						"j\xc3\xb6rg\xe2\x82\xac\xf0\x9f\x93\xa7\"}\n");
	/* raw bytes, as a value no escape went through */
	assert_string_equal(json_of("from=j\xc3\xb6rg", NULL),
			    "{\"level\":\"info\",\"from\":\"j\xc3\xb6rg\"}\n");
	/* lone continuation, cut sequence, overlong, surrogate, above U+10FFFF, 0xff */
	assert_string_equal(
		json_of("a=\\x80 b=\\xc3x c=\\xc0\\xaf d=\\xed\\xa0\\x80 "
			"e=\\xf4\\x90\\x80\\x80 f=\\xff\\xe2\\x82\\xac",
			NULL),
		"{\"level\":\"info\",\"a\":\"\\ufffd\",\"b\":\"\\ufffdx\","
		"\"c\":\"\\ufffd\\ufffd\",\"d\":\"\\ufffd\\ufffd\\ufffd\","
		"\"e\":\"\\ufffd\\ufffd\\ufffd\\ufffd\",\"f\":\"\\ufffd\xe2\x82\xac\"}\n");
}

/* A key seen before gets _2, _3; time, level and msg count as seen. */
static void test_repeated_keys(void **state)
{
	(void)state;
	assert_string_equal(json_of("event=x error=fsync level=9", "Input/output error"),
			    "{\"level\":\"info\",\"event\":\"x\",\"error\":\"fsync\","
			    "\"level_2\":\"9\",\"error_2\":\"Input/output error\"}\n");
	assert_string_equal(json_of("a=1 a=2 a=3", NULL),
			    "{\"level\":\"info\",\"a\":\"1\",\"a_2\":\"2\",\"a_3\":\"3\"}\n");
	/* a suffix never makes a key that is written already */
	assert_string_equal(json_of("a_2=x a=1 a=2", NULL),
			    "{\"level\":\"info\",\"a_2\":\"x\",\"a\":\"1\",\"a_3\":\"2\"}\n");
}

/* Words before the first pair are msg; words after a pair join its value. */
static void test_free_text(void **state)
{
	(void)state;
	assert_string_equal(json_of("key table: the default of \"x\" is bad", NULL),
			    "{\"level\":\"info\",\"msg\":\"key table: the default of \\\"x\\\" "
			    "is bad\"}\n");
	assert_string_equal(json_of("cannot open  dir=/a b c=d", NULL),
			    "{\"level\":\"info\",\"msg\":\"cannot open\",\"dir\":\"/a b\","
			    "\"c\":\"d\"}\n");
	/* a quote inside a quoted value: only a quote that ends a word closes it */
	assert_string_equal(
		json_of("error=\"file \"x\" is bad\" n=1", NULL),
		"{\"level\":\"info\",\"error\":\"file \\\"x\\\" is bad\",\"n\":\"1\"}\n");
	/* an unclosed quote runs to the end; an empty line is level alone */
	assert_string_equal(json_of("why=\"cut sho", NULL),
			    "{\"level\":\"info\",\"why\":\"cut sho\"}\n");
	assert_string_equal(json_of("", NULL), "{\"level\":\"info\"}\n");
	assert_string_equal(json_of("e= f=\"\"", NULL),
			    "{\"level\":\"info\",\"e\":\"\",\"f\":\"\"}\n");
}

/* A line too long for the buffer is cut at a whole escape and still closes. */
static void test_cut(void **state)
{
	char msg[600], out[LOG_JSON_OUT_MIN + 40];
	size_t n;

	(void)state;
	memset(msg, 0, sizeof(msg));
	strcpy(msg, "event=long text=\"");
	for (size_t i = strlen(msg); i + 4 < sizeof(msg); i += 4)
		memcpy(msg + i, "\\x01", 4);
	for (size_t size = LOG_JSON_OUT_MIN; size <= sizeof(out); size++) {
		n = log_json_line(NULL, "info", msg, strlen(msg), "an error", out, size);
		assert_true(n < size);
		assert_int_equal(n, strlen(out));
		assert_memory_equal(out + n - 2, "}\n", 2);
		/* never half an escape: the cut value ends in ..." */
		if (strstr(out, "\"text\":\"") != NULL)
			assert_non_null(strstr(out, "...\"}\n"));
	}
	/* a field cut in its key is left out */
	memset(msg, 'k', 200);
	strcpy(msg + 200, "=v");
	n = log_json_line(NULL, "info", msg, strlen(msg), NULL, out, LOG_JSON_OUT_MIN);
	assert_string_equal(out, "{\"level\":\"info\"}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),     cmocka_unit_test(test_escapes_decoded),
		cmocka_unit_test(test_utf8),      cmocka_unit_test(test_repeated_keys),
		cmocka_unit_test(test_free_text), cmocka_unit_test(test_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
