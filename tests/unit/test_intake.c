/*
 * test_intake.c - unit tests for src/intake/: the stage every message
 * passes into the queue (intake.c) and the one date function (mail_date.c).
 *
 * Each test runs a real queue in a temporary state directory with an event
 * base for the commit's callback, opens a message, feeds it, finishes it,
 * and reads what the commit wrote: our Received: header for an SMTP client
 * and for a drop file, the loop count at and over received_max, the size
 * limit, the free-space reserve, the submission fix-ups, the order in which
 * failures pick the answer, that a refused or aborted message leaves no
 * file behind, and a message hato makes itself (a delivery report).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "intake.h"
#include "mail_id.h"
#include "queue.h"
#include "spool_fixture.h"
#include "strbuf.h"
#include "util.h"

#define HOST "mx.test.example"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct queue *q;
	struct conf *c;
	struct intake in;
	struct envelope env;
	int commit_err; /* -1 until the commit's callback ran */
};

/* A real queue in a fresh directory, default limits, our host name. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	strcpy(f->dir, "/tmp/hato-test-intake.XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL)
		return -1;
	f->base = event_base_new();
	f->q = queue_open(f->dir, 1, false, f->base, err, sizeof(err));
	f->c = conf_load(NULL, err, sizeof(err));
	if (f->q == NULL || f->c == NULL)
		return -1;
	free(f->c->hostname);
	f->c->hostname = xstrdup(HOST);
	f->c->limits.min_free_space = 0;
	intake_init(&f->in, f->c, f->q);
	envelope_init(&f->env);
	f->env.sender = xstrdup("<a@client.example>");
	f->env.client = xstrdup("192.0.2.1");
	f->env.client_name = xstrdup("client.example");
	f->env.helo = xstrdup("helo.example");
	envelope_add_rcpt(&f->env, "<b@test.example>");
	f->commit_err = -1;
	*state = f;
	return 0;
}

/* Close everything and remove the spool. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	intake_free(&f->in);
	envelope_free(&f->env);
	queue_close(f->q);
	event_base_free(f->base);
	conf_free(f->c);
	spool_rm_tree(f->dir);
	free(f);
	return 0;
}

/* How many files a spool directory (incoming, queue) holds. */
static int files_in(const struct fixture *f, const char *sub)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	return spool_count(path);
}

/* The commit's callback. */
static void committed(void *arg, int err)
{
	struct fixture *f = arg;

	f->commit_err = err;
	event_base_loopbreak(f->base);
}

/* Open with o, feed msg, finish with form; the status intake_finish gave.
 * On STATUS_OK the commit is waited for. */
static enum status run(struct fixture *f, const struct intake_origin *o, const char *msg,
		       enum status form)
{
	enum status st = intake_open(&f->in, &f->env, o, 0);

	assert_int_equal(st, STATUS_OK);
	intake_write(&f->in, msg, strlen(msg));
	st = intake_finish(&f->in, form, committed, f);
	if (st == STATUS_OK) {
		struct timeval tv = {10, 0};
		event_base_loopexit(f->base, &tv);
		event_base_dispatch(f->base);
		assert_int_equal(f->commit_err, 0);
	}
	return st;
}

/* The committed message (queue_read), NUL-terminated. */
static char *committed_message(const struct fixture *f)
{
	uint64_t len;
	int fd = queue_read(f->q, f->env.id, &len);
	char *buf;

	assert_true(fd >= 0);
	buf = xmalloc(len + 1);
	assert_int_equal(read(fd, buf, len), (ssize_t)len);
	buf[len] = '\0';
	close(fd);
	return buf;
}

static const struct intake_origin smtp_plain = {.source = INTAKE_SMTP, .esmtp = true};

/* Our Received: for an SMTP client over TLS, authenticated, one recipient. */
static void test_received_smtp(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP,
				  .esmtp = true,
				  .tls_version = "TLSv1.3",
				  .tls_cipher = "TLS_AES_256_GCM_SHA384"};
	char want[512], *m, *date;

	f->env.auth_user = xstrdup("alice");
	assert_int_equal(run(f, &o, "Subject: hi\r\n\r\nbody\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want),
		 "Received: from helo.example (client.example [192.0.2.1])\r\n"
		 "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
		 "\t(Authenticated sender: alice)\r\n"
		 "\tby " HOST " (hato) with ESMTPSA id %s\r\n"
		 "\tfor <b@test.example>;\r\n\t",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	date = m + strlen(want);
	assert_non_null(strstr(date, "\r\nSubject: hi\r\n\r\nbody\r\n"));
	assert_int_equal(strlen(strstr(date, "\r\nSubject")),
			 strlen("\r\nSubject: hi\r\n\r\nbody\r\n"));
	assert_int_equal(f->env.size, strlen("Subject: hi\r\n\r\nbody\r\n"));
	free(m);
}

/* Plain SMTP after HELO, an IPv6 client, two recipients: no "for". */
static void test_received_smtp_plain_v6(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP, .esmtp = false};
	char want[256], *m;

	free(f->env.client);
	f->env.client = xstrdup("2001:db8::1");
	envelope_add_rcpt(&f->env, "<c@test.example>");
	assert_int_equal(run(f, &o, "x\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want),
		 "Received: from helo.example (client.example [IPv6:2001:db8::1])\r\n"
		 "\tby " HOST " (hato) with SMTP id %s;\r\n\t",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	free(m);
}

#define HIDDEN                                                                                     \
	"Received: from helo.example\r\n\t(Authenticated sender: alice)\r\n\tby " HOST             \
	" (hato) with ESMTPA id "

/* received_hide_client leaves an authenticated client's address out. */
static void test_received_hides_client(void **state)
{
	struct fixture *f = *state;
	char *m;

	f->c->received_hide_client = true;
	f->env.auth_user = xstrdup("alice");
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_memory_equal(m, HIDDEN, strlen(HIDDEN));
	assert_null(strstr(m, "192.0.2.1"));
	free(m);
}

/* A drop file's Received: names the user, not a client. */
static void test_received_pickup(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_PICKUP, .uid = 1000};
	char want[256], *m;

	assert_int_equal(run(f, &o, "Subject: cron\r\n\r\ndone\r\n", STATUS_OK), STATUS_OK);
	m = committed_message(f);
	snprintf(want, sizeof(want), "Received: by " HOST " (hato, from userid 1000)\r\n\tid %s; ",
		 f->env.id);
	assert_memory_equal(m, want, strlen(want));
	assert_non_null(strstr(m, "\r\nSubject: cron\r\n\r\ndone\r\n"));
	free(m);
}

/* "Received: x" header lines, n of them, then a body that names more. */
static void looped(char *buf, size_t size, unsigned n)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "Received: from hop%u\r\n", i);
	snprintf(buf + len, size - len, "Subject: l\r\n\r\nReceived: in the body\r\n");
}

/* received_max Received: fields pass; one more is a loop, and nothing stays. */
static void test_loop_count(void **state)
{
	struct fixture *f = *state;
	char msg[1024];

	f->c->limits.received_max = 3;
	looped(msg, sizeof(msg), 3);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_OK);
	assert_int_equal(files_in(f, "queue"), 1);
	looped(msg, sizeof(msg), 4);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_LOOP);
	assert_int_equal(files_in(f, "queue"), 1);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* Over message_size_max the failure sticks; the octets are still counted. */
static void test_size_limit(void **state)
{
	struct fixture *f = *state;
	char big[1500];

	f->c->limits.message_size_max = 1024;
	memset(big, 'x', sizeof(big));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, 1000);
	assert_int_equal(intake_status(&f->in), STATUS_OK);
	intake_write(&f->in, big, 500);
	assert_int_equal(intake_status(&f->in), STATUS_TOO_BIG);
	intake_write(&f->in, big, 500);
	assert_int_equal(f->env.size, 2000);
	assert_int_equal(intake_finish(&f->in, STATUS_OK, committed, f), STATUS_TOO_BIG);
	assert_int_equal(f->commit_err, -1);
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* A reserve the disk cannot keep: nothing opens; intake_has_room says no. */
static void test_free_space(void **state)
{
	struct fixture *f = *state;

	assert_true(intake_has_room(&f->in, 1000));
	f->c->limits.min_free_space = UINT64_MAX / 2;
	assert_false(intake_has_room(&f->in, 0));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_DISK_FULL);
	assert_int_equal(intake_finish(&f->in, STATUS_OK, committed, f), STATUS_LOCAL_ERROR);
	assert_int_equal(files_in(f, "queue"), 0);
}

/* Submission fix-ups: Date and Message-ID added, Bcc gone; not without. */
static void test_fixups(void **state)
{
	struct fixture *f = *state;
	struct intake_origin o = {.source = INTAKE_SMTP, .esmtp = true, .fixups = true};
	const char *msg = "To: b@test.example\r\nBcc: hidden@test.example\r\nSubject: s\r\n\r\n"
			  "Bcc: in the body stays\r\n";
	char want[256], *m, *date;

	assert_int_equal(run(f, &o, msg, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_null(strstr(m, "hidden"));
	date = strstr(m, "\r\nSubject: s\r\nDate: ");
	assert_non_null(date);
	snprintf(want, sizeof(want),
		 "\r\nMessage-ID: <%s@" HOST ">\r\n\r\nBcc: in the body stays\r\n", f->env.id);
	assert_non_null(strstr(date, want));
	/* the Date: is mail_date's: "Www, DD Mmm YYYY HH:MM:SS +ZZZZ" */
	date += strlen("\r\nSubject: s\r\nDate: ");
	assert_int_equal(strchr(date, '\r') - date, strlen("Mon, 01 Jan 2024 00:00:00 +0000"));
	assert_int_equal(f->env.size, strlen(msg)); /* what the client sent */
	free(m);

	assert_int_equal(run(f, &smtp_plain, msg, STATUS_OK), STATUS_OK);
	m = committed_message(f);
	assert_non_null(strstr(m, "Bcc: hidden@test.example\r\n"));
	assert_null(strstr(m, "Message-ID:"));
	free(m);
}

/* The limits rank before the receiver's verdict on the form; the form
 * alone refuses too. */
static void test_failure_order(void **state)
{
	struct fixture *f = *state;
	char msg[1024];

	f->c->limits.received_max = 1;
	looped(msg, sizeof(msg), 2);
	assert_int_equal(run(f, &smtp_plain, msg, STATUS_BAD_LINE_ENDING), STATUS_LOOP);
	assert_int_equal(run(f, &smtp_plain, "x\r\n", STATUS_BAD_LINE_ENDING),
			 STATUS_BAD_LINE_ENDING);
	assert_int_equal(files_in(f, "queue"), 0);
	assert_int_equal(files_in(f, "incoming"), 0);
}

/* An aborted message leaves nothing; the intake opens the next one. */
static void test_abort(void **state)
{
	struct fixture *f = *state;
	char big[QFILE_BUFSIZE + 100];

	memset(big, 'y', sizeof(big));
	assert_int_equal(intake_open(&f->in, &f->env, &smtp_plain, 0), STATUS_OK);
	intake_write(&f->in, big, sizeof(big)); /* streamed to incoming/ */
	assert_int_equal(files_in(f, "incoming"), 1);
	intake_abort(&f->in);
	assert_int_equal(files_in(f, "incoming"), 0);
	assert_int_equal(run(f, &smtp_plain, "again\r\n", STATUS_OK), STATUS_OK);
	assert_int_equal(files_in(f, "queue"), 1);
}

/* A message hato makes itself: our Received: first, the local origin in
 * the envelope, its size without our header, committed at once. */
static void test_inject_local(void **state)
{
	struct fixture *f = *state;
	struct strbuf msg;
	const char *body = "From: Mail Delivery System <MAILER-DAEMON@" HOST ">\r\n\r\nreport\r\n";
	size_t hdr;
	char *m;

	strbuf_init(&msg);
	hdr = intake_local_begin(f->c, &msg);
	assert_int_equal(hdr, msg.len);
	assert_memory_equal(msg.s, "Received: by " HOST " (hato);\r\n\t",
			    strlen("Received: by " HOST " (hato);\r\n\t"));
	strbuf_adds(&msg, body);
	assert_true(intake_inject(f->c, f->q, &f->env, msg.s, msg.len, hdr));
	assert_int_equal(strlen(f->env.id), QUEUE_ID_LEN);
	assert_string_equal(f->env.client, "127.0.0.1");
	assert_string_equal(f->env.client_name, HOST);
	assert_string_equal(f->env.helo, HOST);
	assert_int_equal(f->env.size, strlen(body));
	assert_true(f->env.arrival > 0);
	m = committed_message(f);
	assert_memory_equal(m, msg.s, msg.len);
	assert_int_equal(strlen(m), msg.len);
	free(m);
	strbuf_free(&msg);
}

/* mail_date: RFC 5322 §3.3 in the local zone, offsets of any sign and
 * minutes, C-locale names; a short buffer gives false and no date. */
static void test_mail_date(void **state)
{
	char buf[MAIL_DATE_SIZE];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_true(mail_date(1704067200, buf, sizeof(buf))); /* 2024-01-01 */
	assert_string_equal(buf, "Mon, 01 Jan 2024 00:00:00 +0000");
	setenv("TZ", "<-0330>3:30", 1); /* 3 h 30 min west of UTC */
	tzset();
	assert_true(mail_date(1704067200, buf, sizeof(buf)));
	assert_string_equal(buf, "Sun, 31 Dec 2023 20:30:00 -0330");
	setenv("TZ", "<+0545>-5:45", 1);
	tzset();
	assert_true(mail_date(1719835200, buf, sizeof(buf))); /* 2024-07-01 12:00 */
	assert_string_equal(buf, "Mon, 01 Jul 2024 17:45:00 +0545");
	assert_false(mail_date(1719835200, buf, 10));
	assert_string_equal(buf, "");
	setenv("TZ", "UTC", 1);
	tzset();
}

/* mail_msgid: the date in UTC, 16 random hex digits, the host (localhost
 * when it is not a domain); never the same twice. */
static void test_mail_msgid(void **state)
{
	char a[MAIL_MSGID_SIZE], b[MAIL_MSGID_SIZE];

	(void)state;
	mail_msgid(1704067200, "host.example", a, sizeof(a)); /* 2024-01-01 00:00:00 UTC */
	mail_msgid(1704067200, "host.example", b, sizeof(b));
	assert_int_equal(strlen(a), strlen("<20240101000000.0123456789abcdef@host.example>"));
	assert_memory_equal(a, "<20240101000000.", 16);
	for (size_t i = 16; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_equal(a + 32, "@host.example>");
	assert_string_not_equal(a, b);
	mail_msgid(1704067200, "not a domain", a, sizeof(a));
	assert_string_equal(a + 32, "@localhost>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_received_smtp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_smtp_plain_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_hides_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_received_pickup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inject_local, setup, teardown),
		cmocka_unit_test(test_mail_date),
		cmocka_unit_test(test_mail_msgid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
