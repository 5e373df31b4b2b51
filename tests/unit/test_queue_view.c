/*
 * test_queue_view.c - unit tests for src/client/queue_view.c: the exact
 * text of `hato queue show ID` for a held message with an attempt history
 * (times in UTC, waits rounded up to the minute), of a recipient from
 * before the history, of the listing's HELD line, and control characters
 * from the network printed as \xNN.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "queue_view.h"
#include "util.h"

#define NOW 1764370600 /* 2025-11-28 22:56:40 UTC */

/* A message from alice to bob (two attempts, pending) and carol (queued
 * before attempts were recorded), held. */
static void make_envelope(struct envelope *e)
{
	envelope_init(e);
	strcpy(e->id, "0006A1B2C3D4E5F60001");
	e->arrival = NOW - 3700;
	e->sender = xstrdup("<alice@example.org>");
	e->size = 2000;
	e->body = BODY_8BITMIME;
	e->client = xstrdup("192.0.2.1");
	e->client_name = xstrdup("mail.example.org");
	e->helo = xstrdup("mail\x1b[2J.example.org");
	envelope_add_rcpt(e, "<bob@example.net>");
	envelope_add_rcpt(e, "<carol@example.net>");
	e->rcpts[0].attempts = 2;
	e->rcpts[0].next_attempt = NOW + 299;
	env_rcpt_set_error(&e->rcpts[0], "4.7.1 greylisted");
	env_rcpt_add_attempt(&e->rcpts[0], NOW - 600, OUTCOME_TEMPFAIL, "mx[192.0.2.7]:25",
			     "TLSv1.3", "4.7.1 greylisted");
	env_rcpt_add_attempt(&e->rcpts[0], NOW - 300, OUTCOME_TEMPFAIL, NULL, NULL,
			     "4.4.1 connection refused");
	e->rcpts[1].attempts = 1;
	e->rcpts[1].next_attempt = NOW - 5;
}

/* What fn printed for e, as a string (the caller frees it). */
static char *printed(void (*fn)(FILE *, const struct envelope *, uint64_t, time_t),
		     const struct envelope *e)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, e, 2100, NOW);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The timeline of a message that is not held. */
static void test_show(void **state)
{
	struct envelope e;
	char *out;

	(void)state;
	make_envelope(&e);
	out = printed(queue_view_show, &e);
	assert_string_equal(
		out, "message    0006A1B2C3D4E5F60001\n"
		     "arrival    2025-11-28 21:55:00 +0000 (1h1m ago)\n"
		     "sender     <alice@example.org>\n"
		     "size       2100 octets queued (2000 declared), body 8bitmime\n"
		     "client     mail.example.org [192.0.2.1] helo mail\\x1b[2J.example.org\n"
		     "status     2 of 2 recipients pending\n"
		     "\n"
		     "recipient  <bob@example.net>\n"
		     "  state    pending after 2 attempts\n"
		     "  result   4.7.1 greylisted\n"
		     "  next     2025-11-28 23:01:39 +0000 (in 5m)\n"
		     "  attempts oldest first: time, result, host, TLS, reply\n"
		     "    2025-11-28 22:46:40 +0000  deferred   mx[192.0.2.7]:25  TLSv1.3  "
		     "4.7.1 greylisted\n"
		     "    2025-11-28 22:51:40 +0000  deferred   -  -  4.4.1 connection refused\n"
		     "\n"
		     "recipient  <carol@example.net>\n"
		     "  state    pending after 1 attempt\n"
		     "  next     now\n"
		     "  attempts none recorded (queued before hato kept them)\n");
	free(out);
	envelope_free(&e);
}

/* Held: the status line says since when and why; no next attempt. */
static void test_show_held_and_listing(void **state)
{
	struct envelope e;
	char *out;

	(void)state;
	make_envelope(&e);
	envelope_set_hold(&e, "spam\trun", NOW - 120);
	out = printed(queue_view_show, &e);
	assert_non_null(strstr(out, "status     held since 2025-11-28 22:54:40 +0000 (2m ago): "
				    "spam\\x09run\n"
				    "           nothing is delivered until hato queue release\n"));
	assert_non_null(strstr(out, "  next     none while the message is held\n"));
	free(out);
	out = printed(queue_view_list_message, &e);
	assert_string_equal(out, "0006A1B2C3D4E5F60001   1h1m      2100 <alice@example.org>\n"
				 "  HELD      since 2m: spam\\x09run\n"
				 "  pending       2 held      <bob@example.net>\n"
				 "                            error: 4.7.1 greylisted\n"
				 "  pending       1 held      <carol@example.net>\n");
	free(out);
	envelope_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_show),
		cmocka_unit_test(test_show_held_and_listing),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
