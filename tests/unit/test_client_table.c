/*
 * test_client_table.c - the per-client table (src/smtp/client_table.c)
 * and the limits counted in it (client_limits.c, auth_limit.c): IPv4
 * keyed whole and IPv6 by /64, a table that never grows past its size and
 * reuses the stalest idle entry first, one-minute windows, sessions at
 * once, connections, messages and recipients per minute, and a limit of 0
 * being none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "auth_limit.h"
#include "client_limits.h"
#include "client_table.h"
#include "conf.h"
#include "sockaddr_fixture.h"

#define SA(ss) ((const struct sockaddr *)&(ss))

/* IPv4 addresses are their own entry; IPv6 ones share their /64. */
static void test_keys(void **state)
{
	struct client_table *t = client_table_new(16);
	struct sockaddr_storage a = sockaddr_of("192.0.2.1"), b = sockaddr_of("192.0.2.2");
	struct sockaddr_storage v6a = sockaddr_of("2001:db8:1:2::1"),
				v6b = sockaddr_of("2001:db8:1:2:ffff::9");
	struct sockaddr_storage v6c = sockaddr_of("2001:db8:1:3::1"),
				mapped = sockaddr_of("::ffff:192.0.2.1");

	(void)state;
	client_table_get(t, SA(a))->sessions = 1;
	assert_null(client_table_find(t, SA(b)));
	assert_int_equal(client_table_find(t, SA(mapped))->sessions, 1);
	client_table_get(t, SA(v6a))->sessions = 7;
	assert_int_equal(client_table_find(t, SA(v6b))->sessions, 7);
	assert_null(client_table_find(t, SA(v6c)));
	assert_int_equal(client_table_count(t), 2);
	client_table_free(t);
}

/* Full: the stalest entry without a session goes, never the table's bound. */
static void test_bounded(void **state)
{
	struct client_table *t = client_table_new(16);
	char text[32];

	(void)state;
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		snprintf(text, sizeof(text), "198.51.100.%d", i);
		ss = sockaddr_of(text);
		client_table_get(t, SA(ss))->sessions = i == 0 ? 1 : 0;
	}
	assert_int_equal(client_table_count(t), 16);
	for (int i = 0; i < 1000; i++) {
		struct sockaddr_storage ss;
		snprintf(text, sizeof(text), "203.0.%d.%d", i / 256, i % 256);
		ss = sockaddr_of(text);
		client_table_get(t, SA(ss));
	}
	assert_int_equal(client_table_count(t), 16);
	/* .0 had a session open: it stayed while idle ones went */
	{
		struct sockaddr_storage busy = sockaddr_of("198.51.100.0"),
					idle = sockaddr_of("198.51.100.1");
		assert_non_null(client_table_find(t, SA(busy)));
		assert_null(client_table_find(t, SA(idle)));
	}
	assert_int_equal(client_table_evicted_busy(t), 0);
	client_table_free(t);
}

/* A window counts from its first event and starts again a window later. */
static void test_rate_window(void **state)
{
	struct client_rate r = {0, 0};

	(void)state;
	assert_int_equal(client_rate_add(&r, 1000, 60), 1);
	assert_int_equal(client_rate_add(&r, 1030, 60), 2);
	assert_int_equal(client_rate_add(&r, 1059, 60), 3);
	assert_int_equal(client_rate_add(&r, 1060, 60), 1);
}

/* Sessions at once: refused at the limit, allowed again after one ends. */
static void test_sessions(void **state)
{
	struct client_table *t = client_table_new(64);
	struct limits lim = {.client_sessions_max = 2};
	struct sockaddr_storage a = sockaddr_of("192.0.2.1"), b = sockaddr_of("2001:db8::1"),
				b2 = sockaddr_of("2001:db8::2");

	(void)state;
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_OK);
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_OK);
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_CLIENT_SESSIONS);
	client_limits_disconnect(t, SA(a));
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_OK);
	/* IPv6: one /64 is one client */
	assert_int_equal(client_limits_connect(t, &lim, SA(b), 100), STATUS_OK);
	assert_int_equal(client_limits_connect(t, &lim, SA(b2), 100), STATUS_OK);
	assert_int_equal(client_limits_connect(t, &lim, SA(b), 100), STATUS_CLIENT_SESSIONS);
	/* 0: no limit */
	lim.client_sessions_max = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_OK);
	client_table_free(t);
}

/* Connections per minute, refused ones counted too. */
static void test_connection_rate(void **state)
{
	struct client_table *t = client_table_new(64);
	struct limits lim = {.client_connections_per_minute = 3};
	struct sockaddr_storage a = sockaddr_of("192.0.2.1");

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(client_limits_connect(t, &lim, SA(a), 100), STATUS_OK);
		client_limits_disconnect(t, SA(a));
	}
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 110), STATUS_CLIENT_CONN_RATE);
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 159), STATUS_CLIENT_CONN_RATE);
	assert_int_equal(client_limits_connect(t, &lim, SA(a), 160), STATUS_OK);
	assert_int_equal(client_table_find(t, SA(a))->sessions, 1);
	client_table_free(t);
}

/* Messages and recipients per minute. */
static void test_message_rates(void **state)
{
	struct client_table *t = client_table_new(64);
	struct limits lim = {.client_messages_per_minute = 2, .client_recipients_per_minute = 3};
	struct sockaddr_storage a = sockaddr_of("192.0.2.1"), b = sockaddr_of("192.0.2.2");

	(void)state;
	assert_int_equal(client_limits_message(t, &lim, SA(a), 100), STATUS_OK);
	assert_int_equal(client_limits_message(t, &lim, SA(a), 100), STATUS_OK);
	assert_int_equal(client_limits_message(t, &lim, SA(a), 100), STATUS_CLIENT_MSG_RATE);
	assert_int_equal(client_limits_message(t, &lim, SA(b), 100), STATUS_OK);
	assert_int_equal(client_limits_message(t, &lim, SA(a), 160), STATUS_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(client_limits_recipient(t, &lim, SA(a), 100), STATUS_OK);
	assert_int_equal(client_limits_recipient(t, &lim, SA(a), 100), STATUS_CLIENT_RCPT_RATE);
	lim.client_recipients_per_minute = 0;
	assert_int_equal(client_limits_recipient(t, &lim, SA(a), 100), STATUS_OK);
	client_table_free(t);
}

/* AUTH failures lock the address out, in the same table. */
static void test_auth_lockout(void **state)
{
	struct client_table *t = client_table_new(64);
	struct limits lim = {
		.auth_client_failures = 3, .auth_client_window = 600, .auth_client_lockout = 900};
	struct sockaddr_storage a = sockaddr_of("192.0.2.1");

	(void)state;
	assert_false(auth_limit_locked(t, SA(a), 100));
	assert_false(auth_limit_fail(t, &lim, SA(a), 100));
	assert_false(auth_limit_fail(t, &lim, SA(a), 101));
	assert_true(auth_limit_fail(t, &lim, SA(a), 102));
	assert_true(auth_limit_locked(t, SA(a), 500));
	assert_false(auth_limit_locked(t, SA(a), 1002));
	client_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_rate_window),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_connection_rate),
		cmocka_unit_test(test_message_rates),
		cmocka_unit_test(test_auth_lockout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
