/*
 * test_dovecot_proto.c - unit tests for src/lookup/dovecot_proto.c: the
 * lines Dovecot's auth server sends (as Dovecot 2.3 sends them), the
 * malformed ones refused, and the AUTH request hato writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base64.h"
#include "dovecot_proto.h"

/* Parse a C string line. */
static bool parse(const char *s, struct dovecot_line *l)
{
	return dovecot_line_parse(s, strlen(s), l);
}

static void test_handshake(void **state)
{
	struct dovecot_line l;

	(void)state;
	assert_true(parse("VERSION\t1\t2", &l));
	assert_int_equal(l.type, DOVECOT_LINE_VERSION);
	assert_int_equal(l.major, 1);
	assert_int_equal(l.minor, 2);
	assert_true(parse("MECH\tPLAIN\tplaintext", &l));
	assert_int_equal(l.type, DOVECOT_LINE_MECH);
	assert_string_equal(l.mech, "PLAIN");
	assert_true(parse("MECH\tSCRAM-SHA-256\tmutual-auth", &l));
	assert_string_equal(l.mech, "SCRAM-SHA-256");
	assert_true(parse("SPID\t29577", &l));
	assert_int_equal(l.type, DOVECOT_LINE_OTHER);
	assert_true(parse("COOKIE\t0d905bb4d9a4f6ab4cc4310c3ba3bf6b", &l));
	assert_int_equal(l.type, DOVECOT_LINE_OTHER);
	assert_true(parse("DONE", &l));
	assert_int_equal(l.type, DOVECOT_LINE_DONE);
}

static void test_answers(void **state)
{
	struct dovecot_line l;

	(void)state;
	assert_true(parse("OK\t1\tuser=alice", &l));
	assert_int_equal(l.type, DOVECOT_LINE_OK);
	assert_int_equal(l.id, 1);
	assert_string_equal(l.user, "alice");
	assert_true(parse("FAIL\t7\tuser=nobody", &l));
	assert_int_equal(l.type, DOVECOT_LINE_FAIL);
	assert_int_equal(l.id, 7);
	assert_false(l.temp);
	assert_true(parse("FAIL\t2\ttemp\treason=Internal error", &l));
	assert_true(l.temp);
	assert_string_equal(l.user, "");
	assert_true(parse("CONT\t3\tVXNlcm5hbWU6", &l));
	assert_int_equal(l.type, DOVECOT_LINE_CONT);
	/* fields it does not know are skipped, whatever they hold */
	assert_true(parse("OK\t1\tuser=bob\tx-extra=\001t\001n", &l));
	assert_string_equal(l.user, "bob");
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"VERSION\t1", "VERSION\tx\t2", "VERSION\t99999999999\t1",
		"MECH",       "MECH\t",        "OK",
		"OK\t",       "OK\tx",         "FAIL\t-1",
	};
	struct dovecot_line l;
	char big[DOVECOT_LINE_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(parse(bad[i], &l));
	/* control characters in a user name (escaped or not), bad escapes,
	 * over-long names */
	assert_false(parse("OK\t1\tuser=a\001"
			   "1b",
			   &l));
	assert_false(parse("OK\t1\tuser=a\001tb", &l));
	assert_false(parse("OK\t1\tuser=a\001nb", &l));
	assert_false(parse("OK\t1\tuser=a\001", &l));
	assert_false(parse("OK\t1\tuser=a\001x", &l));
	assert_false(parse("OK\t1\tuser=a\033b", &l));
	memset(big, 'u', sizeof(big));
	memcpy(big, "OK\t1\tuser=", 10);
	assert_false(dovecot_line_parse(big, 10 + DOVECOT_USER_MAX, &l));
	assert_false(dovecot_line_parse(big, sizeof(big), &l)); /* longer than a line */
	assert_false(dovecot_line_parse("OK\t1\0", 5, &l));
}

static void test_request(void **state)
{
	struct dovecot_query q = {.user = "alice",
				  .password = "pw\tx",
				  .client_addr = "192.0.2.7",
				  .local_addr = "198.51.100.1",
				  .session = "0123456789ABCDEF"};
	char out[512], *resp;
	unsigned char dec[64];
	size_t n, dlen;

	(void)state;
	n = dovecot_auth_line(out, sizeof(out), 1, &q);
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_memory_equal(
		out,
		"AUTH\t1\tPLAIN\tservice=smtp\tsecured\tnologin\tsession=0123456789ABCDEF"
		"\trip=192.0.2.7\tlip=198.51.100.1\tresp=",
		strlen("AUTH\t1\tPLAIN\tservice=smtp\tsecured\tnologin\tsession="
		       "0123456789ABCDEF\trip=192.0.2.7\tlip=198.51.100.1\tresp="));
	resp = strstr(out, "resp=") + 5;
	assert_true(base64_decode(resp, strlen(resp) - 1, dec, &dlen));
	assert_int_equal(dlen, 11);
	assert_memory_equal(dec, "\0alice\0pw\tx", 11); /* base64 carries any octet */
	/* too small a buffer, or a field that would break the line */
	assert_int_equal(dovecot_auth_line(out, 40, 1, &q), 0);
	q.client_addr = "1.2.3.4\tuser=root";
	assert_int_equal(dovecot_auth_line(out, sizeof(out), 1, &q), 0);
	q.client_addr = "1.2.3.4";
	q.local_addr = NULL;
	n = dovecot_auth_line(out, sizeof(out), 5, &q);
	assert_true(n > 0 && strstr(out, "lip=") == NULL && strncmp(out, "AUTH\t5\t", 7) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
